/* SPDX-License-Identifier: Apache-2.0 */
/* Shared helpers for the cmocka unit tests: one APR pool per test, test
 * vectors, token minting with the engine's own signer, one-key JWK sets
 * built from freshly generated keys, and base64url tampering. Everything
 * is static inline so each test file uses only what it needs. */
#ifndef MCP_TEST_UTIL_H
#define MCP_TEST_UTIL_H

/* cmocka needs these before its header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"
#include "jose_alg.h"
#include "json_util.h"
#include "jwk.h"
#include "jws_sign.h"
#include "jws_verify.h"
#include "jwt.h"
#include "fail.h"

#ifndef VECTOR_DIR
#error "VECTOR_DIR must be defined by the build (apxs.mk)"
#endif

/* ---- per-test pool ----------------------------------------------------- */

static inline int tu_pool_setup(void **state)
{
    apr_pool_t *p = NULL;
    if (apr_pool_create(&p, NULL) != APR_SUCCESS || !p)
        return -1;
    *state = p;
    return 0;
}

static inline int tu_pool_teardown(void **state)
{
    if (*state)
        apr_pool_destroy((apr_pool_t *)*state);
    *state = NULL;
    return 0;
}

/* A unit test that receives a fresh pool as *state. */
#define TU_TEST(f) cmocka_unit_test_setup_teardown(f, tu_pool_setup, tu_pool_teardown)
#define TU_POOL(state) ((apr_pool_t *)*(state))

/* apr_initialize + mcp_jose_init once per process; call at the top of main. */
static inline void tu_global_init(void)
{
    if (apr_initialize() != APR_SUCCESS) {
        fprintf(stderr, "apr_initialize failed\n");
        exit(1);
    }
    atexit(apr_terminate);
    mcp_jose_init();
}

/* ---- ownership ---------------------------------------------------------- */

static inline apr_status_t tu_pkey_cleanup(void *data)
{
    EVP_PKEY_free((EVP_PKEY *)data);
    return APR_SUCCESS;
}

/* Frees pkey when p is destroyed; returns pkey. */
static inline EVP_PKEY *tu_own_pkey(apr_pool_t *p, EVP_PKEY *pkey)
{
    if (pkey)
        apr_pool_cleanup_register(p, pkey, tu_pkey_cleanup, apr_pool_cleanup_null);
    return pkey;
}

/* A new private key for alg (bits for RSA, 0 = 2048); the test fails without one. */
static inline EVP_PKEY *tu_keygen(mcp_alg alg, int bits)
{
    EVP_PKEY *k = mcp_keygen(alg, bits);
    if (!k)
        fail_msg("mcp_keygen(%s, %d) failed", mcp_alg_name(alg), bits);
    return k;
}

/* ---- files and vectors --------------------------------------------------- */

static inline char *tu_read_file(apr_pool_t *p, const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size = -1;
    size_t got = 0;

    if (f && fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (f && size >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = apr_palloc(p, (apr_size_t)size + 1);
        got = fread(buf, 1, (size_t)size, f);
        buf[got] = '\0';
    }
    if (f)
        fclose(f);
    if (!buf || got != (size_t)size) {
        fail_msg("cannot read %s", path);
        return NULL;
    }
    if (len)
        *len = got;
    return buf;
}

/* A test vector file from VECTOR_DIR as a JSON object owned by p. */
static inline json_t *tu_vector(apr_pool_t *p, const char *name)
{
    size_t len = 0;
    const char *text = tu_read_file(p, apr_pstrcat(p, VECTOR_DIR, "/", name, NULL), &len);
    json_error_t err;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(j))
        fail_msg("vector %s: %s (line %d)", name, err.text, err.line);
    return mcp_json_own(p, j);
}

/* Member of a JSON object that must be a string. */
static inline const char *tu_str(const json_t *obj, const char *key)
{
    const char *s = mcp_json_str(obj, key);
    if (!s)
        fail_msg("JSON member %s is missing or not a string", key);
    return s;
}

/* Parses JSON text (strictly, duplicates rejected); fails the test on error. */
static inline json_t *tu_json(apr_pool_t *p, const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (!j)
        fail_msg("bad JSON in test: %s: %s", text, err.text);
    return mcp_json_own(p, j);
}

/* printf into p with the C library's formatter (apr_psprintf has no %lld). */
static inline char *tu_fmt(apr_pool_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline char *tu_fmt(apr_pool_t *p, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *out;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        fail_msg("bad format %s", fmt);
    out = apr_palloc(p, (apr_size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return out;
}

/* ---- tokens --------------------------------------------------------------- */

/* Compact JWS of header_json (JSON text) and payload (bytes, NUL-terminated)
 * made by mcp_jws_sign. For HS* pass secret, else pkey. */
static inline char *tu_sign(apr_pool_t *p, mcp_alg alg, EVP_PKEY *pkey, const unsigned char *secret, size_t secret_len,
                            const char *header_json, const char *payload)
{
    const char *err = NULL;
    json_t *h = tu_json(p, header_json);
    char *tok = mcp_jws_sign(p, alg, pkey, secret, secret_len, h, payload, strlen(payload), &err);
    if (!tok)
        fail_msg("mcp_jws_sign(%s): %s", mcp_alg_name(alg), err ? err : "?");
    return tok;
}

/* A compact token made of raw header bytes, raw payload bytes and raw
 * signature bytes, each base64url-encoded (nothing is signed). */
static inline char *tu_compact(apr_pool_t *p, const void *hdr, size_t hdr_len, const void *payload, size_t payload_len,
                               const void *sig, size_t sig_len)
{
    return apr_pstrcat(p, mcp_b64url_encode(p, hdr, hdr_len), ".", mcp_b64url_encode(p, payload, payload_len), ".",
                       mcp_b64url_encode(p, sig, sig_len), NULL);
}

/* Decodes b64url text that must be canonical. */
static inline unsigned char *tu_b64dec(apr_pool_t *p, const char *s, size_t len, size_t *outlen)
{
    unsigned char *out = NULL;
    *outlen = 0;
    if (mcp_b64url_decode(p, s, len, &out, outlen) != 0)
        fail_msg("test expected canonical base64url: %.*s", (int)len, s);
    return out;
}

/* Flips bit `bit` of decoded byte `byte_index` (negative: from the end) of
 * the base64url string s and returns the re-encoded string. */
static inline char *tu_b64_flip(apr_pool_t *p, const char *s, size_t len, long byte_index, int bit)
{
    size_t n = 0, i;
    unsigned char *raw = tu_b64dec(p, s, len, &n);
    if (n == 0)
        fail_msg("cannot flip a bit of an empty value");
    i = byte_index < 0 ? n - (size_t)(-byte_index) : (size_t)byte_index;
    if (i >= n)
        fail_msg("flip index %ld out of range (%zu bytes)", byte_index, n);
    raw[i] ^= (unsigned char)(1u << bit);
    return mcp_b64url_encode(p, raw, n);
}

/* Token with one bit of its signature flipped (byte_index as above). */
static inline char *tu_tamper_sig(apr_pool_t *p, const char *token, long byte_index, int bit)
{
    const char *dot = strrchr(token, '.');
    if (!dot)
        fail_msg("not a compact token");
    return apr_pstrcat(p, apr_pstrmemdup(p, token, (apr_size_t)(dot - token + 1)),
                       tu_b64_flip(p, dot + 1, strlen(dot + 1), byte_index, bit), NULL);
}

/* Token with one bit of its decoded payload flipped (signature kept). */
static inline char *tu_tamper_payload(apr_pool_t *p, const char *token, long byte_index, int bit)
{
    const char *d1 = strchr(token, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d2)
        fail_msg("not a compact token");
    return apr_pstrcat(p, apr_pstrmemdup(p, token, (apr_size_t)(d1 - token + 1)),
                       tu_b64_flip(p, d1 + 1, (size_t)(d2 - d1 - 1), byte_index, bit), d2, NULL);
}

/* Token with its payload replaced by payload (header and signature kept). */
static inline char *tu_swap_payload(apr_pool_t *p, const char *token, const char *payload)
{
    const char *d1 = strchr(token, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d2)
        fail_msg("not a compact token");
    return apr_pstrcat(p, apr_pstrmemdup(p, token, (apr_size_t)(d1 - token + 1)),
                       mcp_b64url_encode(p, (const unsigned char *)payload, strlen(payload)), d2, NULL);
}

/* ---- keys ------------------------------------------------------------------ */

/* Public JWK object of pkey (mcp_jwk_public), owned by p. with_alg = 0 drops
 * the "alg" member so only kty/crv decide which algorithms fit. */
static inline json_t *tu_pub_jwk_json(apr_pool_t *p, const EVP_PKEY *pkey, const char *kid, mcp_alg alg, int with_alg)
{
    json_t *j = mcp_jwk_public(pkey, kid, alg);
    if (!j)
        fail_msg("mcp_jwk_public(%s) failed", mcp_alg_name(alg));
    if (!with_alg)
        json_object_del(j, "alg");
    return mcp_json_own(p, j);
}

/* Parsed verification key for pkey, through mcp_jwk_public + mcp_jwk_from_json. */
static inline mcp_jwk_t *tu_jwk(apr_pool_t *p, const EVP_PKEY *pkey, const char *kid, mcp_alg alg, int with_alg)
{
    mcp_jwk_t *k = NULL;
    const char *why = NULL;
    json_t *j = tu_pub_jwk_json(p, pkey, kid, alg, with_alg);
    if (mcp_jwk_from_json(p, j, 0, &k, &why) != 0)
        fail_msg("mcp_jwk_from_json(%s): %s", mcp_alg_name(alg), why ? why : "?");
    return k;
}

/* A key set of n keys (mcp_jwk_t *, ...). */
static inline mcp_jwks_t *tu_jwks(apr_pool_t *p, int n, ...)
{
    mcp_jwks_t *set = apr_pcalloc(p, sizeof(*set));
    va_list ap;
    int i;
    set->keys = apr_pcalloc(p, (size_t)(n + 1) * sizeof(mcp_jwk_t *));
    va_start(ap, n);
    for (i = 0; i < n; i++)
        set->keys[set->nkeys++] = va_arg(ap, mcp_jwk_t *);
    va_end(ap);
    return set;
}

/* A one-key set from a freshly generated key for alg; the private key is
 * returned through *priv (owned by p). */
static inline mcp_jwks_t *tu_fresh_jwks(apr_pool_t *p, mcp_alg alg, const char *kid, EVP_PKEY **priv)
{
    EVP_PKEY *k = tu_own_pkey(p, tu_keygen(alg, 0));
    if (priv)
        *priv = k;
    return tu_jwks(p, 1, tu_jwk(p, k, kid, alg, 1));
}

/* Random bytes from OpenSSL's CSPRNG, in p. */
static inline unsigned char *tu_random(apr_pool_t *p, size_t n)
{
    unsigned char *b = apr_palloc(p, n ? n : 1);
    if (n && RAND_bytes(b, (int)n) != 1)
        fail_msg("RAND_bytes failed");
    return b;
}

/* 1 when token's signature verifies with key for alg (mcp_jws_parse +
 * mcp_jws_verify); the token must parse. */
static inline int tu_verify_token(apr_pool_t *p, mcp_alg alg, const mcp_jwk_t *key, const char *token)
{
    mcp_jws_t jws;
    mcp_fail_t fail = {0};
    if (mcp_jws_parse(p, token, strlen(token), &jws, &fail) != 0)
        fail_msg("token does not parse: %s", fail.reason ? fail.reason : "?");
    return mcp_jws_verify(alg, key, (const unsigned char *)jws.signing_input, jws.signing_input_len, jws.sig,
                          jws.sig_len);
}

/* Does s contain the substring sub? */
static inline int tu_contains(const char *s, const char *sub)
{
    return s && strstr(s, sub) != NULL;
}

/* Number of non-overlapping occurrences of sub in s. */
static inline int tu_count(const char *s, const char *sub)
{
    int n = 0;
    size_t l = strlen(sub);
    while (s && (s = strstr(s, sub)) != NULL) {
        n++;
        s += l;
    }
    return n;
}

#endif
