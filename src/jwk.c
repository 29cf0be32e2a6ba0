#include "jwk.h"

#include <apr_strings.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <string.h>

#include "b64url.h"
#include "json_util.h"

static apr_status_t pkey_cleanup(void *data)
{
    EVP_PKEY_free((EVP_PKEY *)data);
    return APR_SUCCESS;
}

static int fail_why(const char **why, const char *text)
{
    if (why)
        *why = text;
    return -1;
}

/* base64url member decoded; -1 when absent or not canonical. */
static int b64_member(apr_pool_t *p, const json_t *obj, const char *name, unsigned char **out, size_t *len)
{
    const char *s = mcp_json_str(obj, name);
    if (!s)
        return -1;
    return mcp_b64url_decode(p, s, strlen(s), out, len);
}

static int rsa_from_jwk(apr_pool_t *p, const json_t *obj, mcp_jwk_t *k, const char **why)
{
    unsigned char *n, *e;
    size_t nlen, elen;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    int rc = -1;

    if (b64_member(p, obj, "n", &n, &nlen) || b64_member(p, obj, "e", &e, &elen))
        return fail_why(why, "RSA key without valid n/e");
    /* Some IdPs prefix a zero byte to n; tolerate it, it names the same key. */
    while (nlen > 0 && n[0] == 0) {
        n++;
        nlen--;
    }
    if (elen == 0 || elen > 8 || nlen == 0)
        return fail_why(why, "RSA key with bad n/e size");
    bn_n = BN_bin2bn(n, (int)nlen, NULL);
    bn_e = BN_bin2bn(e, (int)elen, NULL);
    if (!bn_n || !bn_e)
        goto done;
    k->bits = BN_num_bits(bn_n);
    if (k->bits < MCP_RSA_MIN_BITS) {
        fail_why(why, "RSA key shorter than 2048 bits");
        goto done;
    }
    if (k->bits > MCP_RSA_MAX_BITS) {
        fail_why(why, "RSA key longer than 16384 bits");
        goto done;
    }
    if (!BN_is_odd(bn_e) || BN_is_one(bn_e)) {
        fail_why(why, "RSA key with bad exponent");
        goto done;
    }
    bld = OSSL_PARAM_BLD_new();
    if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
        goto done;
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &k->pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        fail_why(why, "RSA key rejected by OpenSSL");
        goto done;
    }
    rc = 0;
done:
    if (rc && why && !*why)
        *why = "RSA key could not be built";
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    BN_free(bn_n);
    BN_free(bn_e);
    return rc;
}

static int ec_from_jwk(apr_pool_t *p, const json_t *obj, mcp_jwk_t *k, const char **why)
{
    unsigned char *x, *y, pub[1 + 2 * 66];
    size_t xlen, ylen, clen;
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *ctx = NULL, *check = NULL;
    int rc = -1;

    k->crv = mcp_crv_from_name(mcp_json_str(obj, "crv"));
    if (k->crv == MCP_CRV_NONE || k->crv == MCP_CRV_ED25519)
        return fail_why(why, "EC key with unsupported crv");
    clen = mcp_crv_coord_len(k->crv);
    /* RFC 7518 6.2.1.2: coordinates are full-length octet strings. */
    if (b64_member(p, obj, "x", &x, &xlen) || b64_member(p, obj, "y", &y, &ylen) || xlen != clen ||
        ylen != clen)
        return fail_why(why, "EC key with bad x/y");
    pub[0] = 0x04;
    memcpy(pub + 1, x, clen);
    memcpy(pub + 1 + clen, y, clen);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)mcp_crv_name(k->crv), 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * clen);
    params[2] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &k->pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        fail_why(why, "EC point is not on the curve");
        goto done;
    }
    /* Invalid-curve attacks: make sure the point really is on this curve. */
    check = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    if (!check || EVP_PKEY_public_check(check) != 1) {
        fail_why(why, "EC point is not on the curve");
        goto done;
    }
    k->bits = EVP_PKEY_get_bits(k->pkey);
    rc = 0;
done:
    if (rc && k->pkey) {
        EVP_PKEY_free(k->pkey);
        k->pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_CTX_free(check);
    return rc;
}

static int okp_from_jwk(apr_pool_t *p, const json_t *obj, mcp_jwk_t *k, const char **why)
{
    unsigned char *x;
    size_t xlen;

    k->crv = mcp_crv_from_name(mcp_json_str(obj, "crv"));
    if (k->crv != MCP_CRV_ED25519)
        return fail_why(why, "OKP key with unsupported crv");
    if (b64_member(p, obj, "x", &x, &xlen) || xlen != 32)
        return fail_why(why, "OKP key with bad x");
    k->pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, x, xlen);
    if (!k->pkey)
        return fail_why(why, "Ed25519 key rejected by OpenSSL");
    k->bits = 256;
    return 0;
}

static int oct_from_jwk(apr_pool_t *p, const json_t *obj, mcp_jwk_t *k, const char **why)
{
    unsigned char *s;
    size_t len;
    if (b64_member(p, obj, "k", &s, &len) || len == 0)
        return fail_why(why, "oct key without valid k");
    k->secret = s;
    k->secret_len = len;
    k->bits = (int)(len * 8);
    return 0;
}

static int ops_allow_verify(const json_t *ops)
{
    size_t i;
    json_t *v;
    if (!json_is_array(ops))
        return 0;
    json_array_foreach(ops, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), "verify") == 0)
            return 1;
    }
    return 0;
}

int mcp_jwk_from_json(apr_pool_t *p, const json_t *obj, int allow_oct, mcp_jwk_t **out, const char **why)
{
    mcp_jwk_t *k;
    const char *kty, *use, *alg;
    json_t *kid, *ops;
    int rc;

    if (why)
        *why = NULL;
    if (!json_is_object(obj))
        return fail_why(why, "JWK is not a JSON object");
    kty = mcp_json_str(obj, "kty");
    if (!kty)
        return fail_why(why, "JWK without kty");
    kid = json_object_get(obj, "kid");
    if (kid && !json_is_string(kid))
        return fail_why(why, "JWK kid is not a string");
    use = mcp_json_str(obj, "use");
    if (json_object_get(obj, "use") && (!use || strcmp(use, "sig") != 0))
        return fail_why(why, "JWK use is not sig");
    ops = json_object_get(obj, "key_ops");
    if (ops && !ops_allow_verify(ops))
        return fail_why(why, "JWK key_ops lacks verify");

    k = apr_pcalloc(p, sizeof(*k));
    k->kid = kid ? apr_pstrdup(p, json_string_value(kid)) : NULL;
    alg = mcp_json_str(obj, "alg");
    if (json_object_get(obj, "alg")) {
        k->alg = mcp_alg_from_name(alg);
        if (k->alg == MCP_ALG_UNKNOWN)
            return fail_why(why, "JWK alg is not a known signature algorithm");
    }

    if (strcmp(kty, "RSA") == 0) {
        k->kty = MCP_KTY_RSA;
        rc = rsa_from_jwk(p, obj, k, why);
    }
    else if (strcmp(kty, "EC") == 0) {
        k->kty = MCP_KTY_EC;
        rc = ec_from_jwk(p, obj, k, why);
    }
    else if (strcmp(kty, "OKP") == 0) {
        k->kty = MCP_KTY_OKP;
        rc = okp_from_jwk(p, obj, k, why);
    }
    else if (strcmp(kty, "oct") == 0) {
        if (!allow_oct)
            return fail_why(why, "oct keys are never taken from a JWKS");
        k->kty = MCP_KTY_OCT;
        rc = oct_from_jwk(p, obj, k, why);
    }
    else {
        return fail_why(why, "JWK kty is not supported");
    }
    if (rc)
        return -1;
    if (k->pkey)
        apr_pool_cleanup_register(p, k->pkey, pkey_cleanup, apr_pool_cleanup_null);
    if (k->alg != MCP_ALG_UNKNOWN && !mcp_jwk_fits_alg(k, k->alg))
        return fail_why(why, "JWK alg does not fit its key type");
    *out = k;
    return 0;
}

int mcp_jwks_parse(apr_pool_t *p, const char *text, size_t len, mcp_jwks_t **out, const char **why)
{
    json_t *doc = mcp_json_parse(p, text, len), *keys, *member;
    mcp_jwks_t *set;
    size_t i;

    if (!json_is_object(doc))
        return fail_why(why, "JWKS is not a JSON object");
    keys = json_object_get(doc, "keys");
    if (!json_is_array(keys))
        return fail_why(why, "JWKS has no keys array");
    set = apr_pcalloc(p, sizeof(*set));
    set->keys = apr_pcalloc(p, (json_array_size(keys) + 1) * sizeof(mcp_jwk_t *));
    json_array_foreach(keys, i, member)
    {
        mcp_jwk_t *k;
        const char *reason;
        if (mcp_jwk_from_json(p, member, 0, &k, &reason) == 0) {
            set->keys[set->nkeys++] = k;
        }
        else if (set->skipped++ == 0) {
            set->skip_reason = reason;
        }
    }
    if (set->nkeys == 0)
        return fail_why(why, set->skip_reason ? set->skip_reason : "JWKS has no keys");
    *out = set;
    return 0;
}

mcp_jwk_t *mcp_jwk_from_secret(apr_pool_t *p, const unsigned char *secret, size_t len)
{
    mcp_jwk_t *k = apr_pcalloc(p, sizeof(*k));
    k->kty = MCP_KTY_OCT;
    k->secret = secret;
    k->secret_len = len;
    k->bits = (int)(len * 8);
    return k;
}

int mcp_jwk_fits_alg(const mcp_jwk_t *key, mcp_alg alg)
{
    if (!key || mcp_alg_kty(alg) != key->kty)
        return 0;
    if (key->alg != MCP_ALG_UNKNOWN && key->alg != alg)
        return 0;
    switch (key->kty) {
    case MCP_KTY_RSA:
        return key->bits >= MCP_RSA_MIN_BITS;
    case MCP_KTY_EC:
    case MCP_KTY_OKP:
        return key->crv == mcp_alg_crv(alg);
    case MCP_KTY_OCT:
        /* RFC 7518 3.2: a key at least as long as the hash output. */
        return key->secret_len >= mcp_alg_hash_len(alg);
    default:
        return 0;
    }
}
