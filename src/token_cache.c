/* SPDX-License-Identifier: Apache-2.0 */
#include "token_cache.h"

#include <apr_strings.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <string.h>

#include "discovery.h"
#include "keyring.h"
#include "sha256.h"

/* "JWT4": keyed by the content fingerprint, binary verdict (version 3 of
 * verdict.c's form). A new form gets a new kind: entries of another build
 * met after a graceful restart are misses, never misread. */
#define KIND_JWT_VERDICT 0x4a575434u

/* ---- the policy fingerprint -------------------------------------------------
 * Every input is written as a one-byte tag naming the field, then its value:
 * integers as 8 bytes big-endian, strings and bytes as an 8-byte length and
 * the bytes (NULL has a length no string can have), lists as their count
 * first. So no two different policies encode to the same bytes: a value can
 * never be read as the end of one field and the start of the next. The bytes
 * are collected in a buffer and hashed in a few large updates (hot path). */

enum {
    T_USER_CLAIM = 1,
    T_SCOPE_CLAIM,
    T_ALG_MASK,
    T_HMAC,
    T_HMAC_KID,
    T_HMAC_ALG,
    T_HMAC_SECRET,
    T_TYP,
    T_MAX_SIZE,
    T_JWS_ONLY,
    T_AUDIENCES,
    T_AUDIENCE,
    T_REQUIRED,
    T_REQUIRED_ONE,
    T_SKEW,
    T_EXP_OPTIONAL,
    T_ISSUERS,
    T_ISSUER,
    T_ISS_INTROSPECTION,
    T_ISS_JWKS_URI,
    T_ISS_JWKS_FILE,
    T_ISS_JWKS_FILE_SHA256,
    T_ISS_RING,
    T_ISS_DISCOVERY_OIDC,
    T_ISS_DISCOVERY_RFC8414,
    T_ISS_KEYS,
    T_ISS_KEY,
    T_INTRO,
    T_INTRO_URL,
    T_INTRO_AUTH,
    T_INTRO_CLIENT_ID,
    T_INTRO_SECRET,
    T_INTRO_GET,
    T_INTRO_PARAM,
    T_INTRO_CACHE,
    T_ISS_ALIASES,
    T_ISS_ALIAS,
    T_END
};

typedef struct {
    EVP_MD_CTX *md, *inner; /* the fingerprint; the digests of secrets */
    const EVP_MD *sha256;
    size_t n;
    unsigned char buf[1024];
} enc_t;

static void enc_raw(enc_t *e, const void *data, size_t len)
{
    if (e->n + len > sizeof(e->buf)) {
        EVP_DigestUpdate(e->md, e->buf, e->n);
        e->n = 0;
        if (len > sizeof(e->buf)) {
            EVP_DigestUpdate(e->md, data, len);
            return;
        }
    }
    memcpy(e->buf + e->n, data, len);
    e->n += len;
}

static void enc_u64(enc_t *e, unsigned char tag, uint64_t v)
{
    unsigned char b[9];
    int i;
    b[0] = tag;
    for (i = 0; i < 8; i++)
        b[1 + i] = (unsigned char)(v >> (56 - 8 * i));
    enc_raw(e, b, sizeof(b));
}

static void enc_bytes(enc_t *e, unsigned char tag, const void *data, size_t len)
{
    enc_u64(e, tag, (uint64_t)len);
    enc_raw(e, data, len);
}

static void enc_str(enc_t *e, unsigned char tag, const char *s)
{
    if (!s)
        enc_u64(e, tag, UINT64_MAX);
    else
        enc_bytes(e, tag, s, strlen(s));
}

/* Secrets are named by their SHA-256, never by their bytes. */
static void enc_secret(enc_t *e, unsigned char tag, const void *secret, size_t len, int present)
{
    unsigned char d[32];
    if (!present) {
        enc_u64(e, tag, UINT64_MAX);
        return;
    }
    if (!e->inner)
        e->inner = EVP_MD_CTX_new();
    EVP_DigestInit_ex(e->inner, e->sha256, NULL);
    EVP_DigestUpdate(e->inner, secret, len);
    EVP_DigestFinal_ex(e->inner, d, NULL);
    enc_bytes(e, tag, d, sizeof(d));
}

static void enc_list(enc_t *e, unsigned char tag, unsigned char item_tag, const char *const *v, int n)
{
    int i;
    enc_u64(e, tag, (uint64_t)(int64_t)n);
    for (i = 0; i < n; i++)
        enc_str(e, item_tag, v[i]);
}

/* A key: its name, algorithm and type, and the key itself (the public key's
 * DER, or the secret's digest). Only fixed key sets (CLI) and the HMAC key
 * get here; a fetched key set is named by where it comes from. */
static void enc_key(enc_t *e, unsigned char tag, const mcp_jwk_t *k)
{
    unsigned char *der = NULL;
    int n;
    enc_u64(e, tag, k ? 1 : 0);
    if (!k)
        return;
    enc_str(e, T_HMAC_KID, k->kid);
    enc_u64(e, T_HMAC_ALG, ((uint64_t)k->alg << 32) | ((uint64_t)k->kty << 16) | (uint64_t)k->crv);
    enc_secret(e, T_HMAC_SECRET, k->secret, k->secret_len, k->secret != NULL);
    if (k->pkey && (n = i2d_PUBKEY(k->pkey, &der)) > 0) {
        enc_secret(e, T_ISS_KEY, der, (size_t)n, 1);
        OPENSSL_free(der);
    }
}

static void enc_issuer(apr_pool_t *p, enc_t *e, const mcp_trusted_issuer_t *ti)
{
    int i;
    enc_str(e, T_ISSUER, ti->issuer);
    enc_str(e, T_ISS_INTROSPECTION, ti->introspection_endpoint);
    enc_str(e, T_ISS_JWKS_URI, ti->jwks_uri);
    enc_str(e, T_ISS_JWKS_FILE, ti->jwks_file);
    enc_bytes(e, T_ISS_JWKS_FILE_SHA256, ti->jwks_file_sha256, sizeof(ti->jwks_file_sha256));
    enc_u64(e, T_ISS_RING, ti->ring != NULL);
    /* A token accepted under an alias here must not be a cache hit where
     * the same issuer has no such alias. */
    enc_list(e, T_ISS_ALIASES, T_ISS_ALIAS, ti->aliases, ti->n_aliases);
    if (ti->ring && !ti->jwks_uri && !ti->jwks_file && ti->issuer) {
        const char *oidc, *rfc8414;
        mcp_discovery_urls(p, ti->issuer, &oidc, &rfc8414);
        enc_str(e, T_ISS_DISCOVERY_OIDC, oidc);
        enc_str(e, T_ISS_DISCOVERY_RFC8414, rfc8414);
    }
    enc_u64(e, T_ISS_KEYS, ti->keys ? (uint64_t)ti->keys->nkeys : UINT64_MAX);
    for (i = 0; ti->keys && i < ti->keys->nkeys; i++)
        enc_key(e, T_ISS_KEY, ti->keys->keys[i]);
}

static void enc_introspection(enc_t *e, const mcp_introspect_conf_t *c)
{
    enc_u64(e, T_INTRO, c != NULL);
    if (!c)
        return;
    enc_str(e, T_INTRO_URL, c->url);
    enc_u64(e, T_INTRO_AUTH, (uint64_t)c->auth);
    enc_str(e, T_INTRO_CLIENT_ID, c->client_id);
    enc_secret(e, T_INTRO_SECRET, c->client_secret, c->client_secret ? strlen(c->client_secret) : 0,
               c->client_secret != NULL);
    enc_u64(e, T_INTRO_GET, (uint64_t)c->use_get);
    enc_str(e, T_INTRO_PARAM, c->param);
    enc_u64(e, T_INTRO_CACHE, (uint64_t)c->cache);
}

void mcp_policy_fingerprint(apr_pool_t *p, const mcp_cache_policy_t *cp, unsigned char fp[MCP_FINGERPRINT_LEN])
{
    const mcp_verify_policy_t *pol = cp->verify;
    enc_t e;
    int i;

    /* SHA-256 as fetched once per process (mcp_jose_init): an implicit
     * fetch per call would cost more than the hashing. */
    e.sha256 = mcp_alg_md(MCP_ALG_HS256);
    e.md = EVP_MD_CTX_new();
    e.inner = NULL;
    e.n = 0;
    EVP_DigestInit_ex(e.md, e.sha256, NULL);
    enc_raw(&e, "mcp-policy-1", 12);
    enc_str(&e, T_USER_CLAIM, cp->user_claim);
    enc_str(&e, T_SCOPE_CLAIM, cp->scope_claim);
    enc_introspection(&e, cp->introspection);
    enc_u64(&e, T_ALG_MASK, pol->alg_mask);
    enc_key(&e, T_HMAC, pol->hmac_key);
    enc_str(&e, T_TYP, pol->token_type);
    enc_u64(&e, T_MAX_SIZE, (uint64_t)pol->max_token_size);
    enc_u64(&e, T_JWS_ONLY, (uint64_t)pol->jws_only);
    enc_list(&e, T_AUDIENCES, T_AUDIENCE, pol->claims.audiences, pol->claims.n_audiences);
    enc_list(&e, T_REQUIRED, T_REQUIRED_ONE, pol->claims.required, pol->claims.n_required);
    enc_u64(&e, T_SKEW, (uint64_t)pol->claims.skew);
    enc_u64(&e, T_EXP_OPTIONAL, (uint64_t)pol->claims.exp_optional);
    enc_u64(&e, T_ISSUERS, (uint64_t)(int64_t)pol->n_issuers);
    for (i = 0; i < pol->n_issuers; i++)
        enc_issuer(p, &e, &pol->issuers[i]);
    enc_u64(&e, T_END, 0);
    EVP_DigestUpdate(e.md, e.buf, e.n);
    EVP_DigestFinal_ex(e.md, fp, NULL);
    EVP_MD_CTX_free(e.md);
    EVP_MD_CTX_free(e.inner);
}

void mcp_token_cache_key(const unsigned char fp[MCP_FINGERPRINT_LEN], const char *token, size_t len,
                         unsigned char key[32])
{
    mcp_bytes_t parts[2] = {{fp, MCP_FINGERPRINT_LEN}, {token, len}};
    mcp_sha256_key(key, parts, 2);
}

int mcp_token_cache_get(mcp_store_t *st, const unsigned char key[32], apr_time_t now, apr_pool_t *p, mcp_verdict_t *out,
                        mcp_entry_meta_t *meta)
{
    mcp_entry_key_t k = {key, KIND_JWT_VERDICT, 0, -1, 0};
    mcp_entry_meta_t m;
    char *value;
    size_t len;

    if (mcp_store_get_meta(st, &k, now, p, &value, &len, &m))
        return -1;
    if (meta)
        *meta = m;
    return mcp_verdict_decode(p, value, len, out);
}

int mcp_token_cache_put(mcp_store_t *st, const unsigned char key[32], apr_time_t now, apr_interval_time_t ttl,
                        apr_pool_t *p, const mcp_verdict_t *v, int key_doc, uint64_t key_generation, int *evicted)
{
    /* Never past exp: the time claims are re-checked on a hit anyway. */
    mcp_entry_key_t k = {key, KIND_JWT_VERDICT, mcp_verdict_keep_until(v, now + ttl), key_doc, key_generation};
    const char *value;
    size_t len;

    *evicted = 0;
    if (k.expires <= now)
        return 0;
    if (!(value = mcp_verdict_encode(p, v, &len)))
        return -1;
    return mcp_store_put(st, &k, now, value, len, evicted);
}
