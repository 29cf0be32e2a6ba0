#include "token_cache.h"

#include <apr_strings.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "b64url.h"
#include "json_util.h"

#define KIND_JWT_VERDICT 0x4a575432u /* "JWT2" */

const char *mcp_policy_fingerprint(apr_pool_t *p, const mcp_verify_policy_t *pol, const char *extra)
{
    unsigned char digest[32];
    unsigned int n = 0;
    const char *f;
    int i;

    /* The HMAC secret is named by its digest, never by its bytes. */
    if (pol->hmac_key)
        EVP_Digest(pol->hmac_key->secret, pol->hmac_key->secret_len, digest, &n, EVP_sha256(), NULL);
    f = apr_psprintf(p, "%s alg=%x typ=%s max=%lu hmac=%s iss=", extra ? extra : "", pol->alg_mask,
                     pol->token_type ? pol->token_type : "", (unsigned long)pol->max_token_size,
                     n ? mcp_b64url_encode(p, digest, n) : "");
    for (i = 0; i < pol->n_issuers; i++)
        f = apr_pstrcat(p, f, pol->issuers[i].issuer ? pol->issuers[i].issuer : "*", "\n", NULL);
    f = apr_pstrcat(p, f, " aud=", NULL);
    for (i = 0; i < pol->claims.n_audiences; i++)
        f = apr_pstrcat(p, f, pol->claims.audiences[i], "\n", NULL);
    f = apr_pstrcat(p, f, " req=", NULL);
    for (i = 0; i < pol->claims.n_required; i++)
        f = apr_pstrcat(p, f, pol->claims.required[i], "\n", NULL);
    return f;
}

void mcp_token_cache_key(const char *fingerprint, const char *token, size_t len, unsigned char key[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int n;
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    EVP_DigestUpdate(c, fingerprint, strlen(fingerprint) + 1);
    EVP_DigestUpdate(c, token, len);
    EVP_DigestFinal_ex(c, key, &n);
    EVP_MD_CTX_free(c);
}

int mcp_token_cache_get(mcp_store_t *st, const unsigned char key[32], apr_time_t now, apr_pool_t *p,
                        mcp_verdict_t *out)
{
    mcp_entry_key_t k = {key, KIND_JWT_VERDICT, 0, -1, 0};
    char *value;
    size_t len;

    if (mcp_store_get(st, &k, now, p, &value, &len))
        return -1;
    return mcp_verdict_decode(p, value, len, out);
}

int mcp_token_cache_put(mcp_store_t *st, const unsigned char key[32], apr_time_t now, apr_interval_time_t ttl,
                        apr_pool_t *p, const mcp_verdict_t *v, int key_doc, uint64_t key_generation, int *evicted)
{
    mcp_entry_key_t k = {key, KIND_JWT_VERDICT, now + ttl, key_doc, key_generation};
    const char *value;
    size_t len;

    *evicted = 0;
    /* Never past exp: the time claims are re-checked on a hit anyway. */
    if (v->has_exp && v->exp * APR_USEC_PER_SEC < (double)k.expires)
        k.expires = (apr_time_t)(v->exp * APR_USEC_PER_SEC);
    if (k.expires <= now)
        return 0;
    value = mcp_verdict_encode(p, v, &len);
    return mcp_store_put(st, &k, now, value, len, evicted);
}
