/* SPDX-License-Identifier: Apache-2.0 */
#include "jws_sign.h"

#include <apr_strings.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"

EVP_PKEY *mcp_keygen(mcp_alg alg, int bits)
{
    switch (mcp_alg_kty(alg)) {
    case MCP_KTY_RSA:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)(bits > 0 ? bits : 2048));
    case MCP_KTY_EC:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", mcp_crv_name(mcp_alg_crv(alg)));
    case MCP_KTY_OKP:
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    default:
        return NULL;
    }
}

static json_t *b64_json(const unsigned char *buf, size_t len)
{
    apr_pool_t *p;
    json_t *s;
    apr_pool_create(&p, NULL);
    s = json_string(mcp_b64url_encode(p, buf, len));
    apr_pool_destroy(p);
    return s;
}

/* A BIGNUM parameter as base64url, left-padded to pad bytes when pad > 0. */
static json_t *bn_member(const EVP_PKEY *pkey, const char *param, int pad)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];
    int len;
    json_t *out = NULL;

    if (!EVP_PKEY_get_bn_param(pkey, param, &bn))
        return NULL;
    len = pad > 0 ? pad : BN_num_bytes(bn);
    if (len <= (int)sizeof(buf) && BN_bn2binpad(bn, buf, len) == len)
        out = b64_json(buf, (size_t)len);
    BN_free(bn);
    return out;
}

json_t *mcp_jwk_public(const EVP_PKEY *pkey, const char *kid, mcp_alg alg)
{
    json_t *jwk = json_object();
    unsigned char raw[64];
    size_t rawlen = sizeof(raw);

    switch (mcp_alg_kty(alg)) {
    case MCP_KTY_RSA:
        json_object_set_new(jwk, "kty", json_string("RSA"));
        json_object_set_new(jwk, "n", bn_member(pkey, OSSL_PKEY_PARAM_RSA_N, 0));
        json_object_set_new(jwk, "e", bn_member(pkey, OSSL_PKEY_PARAM_RSA_E, 0));
        break;
    case MCP_KTY_EC: {
        int clen = (int)mcp_crv_coord_len(mcp_alg_crv(alg));
        json_object_set_new(jwk, "kty", json_string("EC"));
        json_object_set_new(jwk, "crv", json_string(mcp_crv_name(mcp_alg_crv(alg))));
        json_object_set_new(jwk, "x", bn_member(pkey, OSSL_PKEY_PARAM_EC_PUB_X, clen));
        json_object_set_new(jwk, "y", bn_member(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, clen));
        break;
    }
    case MCP_KTY_OKP:
        if (!EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen)) {
            json_decref(jwk);
            return NULL;
        }
        json_object_set_new(jwk, "kty", json_string("OKP"));
        json_object_set_new(jwk, "crv", json_string("Ed25519"));
        json_object_set_new(jwk, "x", b64_json(raw, rawlen));
        break;
    default:
        json_decref(jwk);
        return NULL;
    }
    if (kid)
        json_object_set_new(jwk, "kid", json_string(kid));
    json_object_set_new(jwk, "use", json_string("sig"));
    json_object_set_new(jwk, "alg", json_string(mcp_alg_name(alg)));
    return jwk;
}

/* DER ECDSA-Sig-Value to fixed-width R||S. */
static int der_to_raw(const unsigned char *der, size_t derlen, size_t clen, unsigned char *out)
{
    const unsigned char *q = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &q, (long)derlen);
    const BIGNUM *r, *s;
    int ok;
    if (!sig)
        return -1;
    ECDSA_SIG_get0(sig, &r, &s);
    ok = BN_bn2binpad(r, out, (int)clen) == (int)clen && BN_bn2binpad(s, out + clen, (int)clen) == (int)clen;
    ECDSA_SIG_free(sig);
    return ok ? 0 : -1;
}

static int sign_evp(mcp_alg alg, EVP_PKEY *pkey, const char *msg, size_t msglen, unsigned char *sig, size_t *siglen)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char der[256];
    size_t derlen = sizeof(der);
    int ok = 0;

    if (!mctx || EVP_DigestSignInit(mctx, &pctx, mcp_alg_md(alg), NULL, pkey) != 1)
        goto done;
    if (alg == MCP_ALG_PS256 || alg == MCP_ALG_PS384 || alg == MCP_ALG_PS512) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, mcp_alg_md(alg)) <= 0 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0)
            goto done;
    }
    if (mcp_alg_kty(alg) == MCP_KTY_EC) {
        size_t clen = mcp_crv_coord_len(mcp_alg_crv(alg));
        if (EVP_DigestSign(mctx, der, &derlen, (const unsigned char *)msg, msglen) != 1 ||
            der_to_raw(der, derlen, clen, sig))
            goto done;
        *siglen = 2 * clen;
    }
    else if (EVP_DigestSign(mctx, sig, siglen, (const unsigned char *)msg, msglen) != 1) {
        goto done;
    }
    ok = 1;
done:
    EVP_MD_CTX_free(mctx);
    return ok;
}

char *mcp_jws_sign(apr_pool_t *p, mcp_alg alg, EVP_PKEY *pkey, const unsigned char *secret, size_t secret_len,
                   const json_t *header, const char *payload, size_t payload_len, const char **err)
{
    char *hdr_json = json_dumps(header, JSON_COMPACT);
    const char *input;
    unsigned char sig[2048];
    size_t siglen = sizeof(sig);
    int ok;

    if (!hdr_json) {
        *err = "header is not serializable";
        return NULL;
    }
    input = apr_pstrcat(p, mcp_b64url_encode(p, (const unsigned char *)hdr_json, strlen(hdr_json)), ".",
                        mcp_b64url_encode(p, (const unsigned char *)payload, payload_len), NULL);
    free(hdr_json);
    if (mcp_alg_kty(alg) == MCP_KTY_OCT) {
        const EVP_MD *md = mcp_alg_md(alg);
        ok = secret && EVP_Q_mac(NULL, "HMAC", NULL, EVP_MD_get0_name(md), NULL, secret, secret_len,
                                 (const unsigned char *)input, strlen(input), sig, sizeof(sig), &siglen) != NULL;
    }
    else {
        ok = pkey && sign_evp(alg, pkey, input, strlen(input), sig, &siglen);
    }
    if (!ok) {
        const char *why = ERR_reason_error_string(ERR_get_error());
        *err = why ? apr_pstrdup(p, why) : "signing failed (does the key fit the algorithm?)";
        ERR_clear_error();
        return NULL;
    }
    return apr_pstrcat(p, input, ".", mcp_b64url_encode(p, sig, siglen), NULL);
}
