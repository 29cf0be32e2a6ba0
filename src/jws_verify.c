/* SPDX-License-Identifier: Apache-2.0 */
#include "jws_verify.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <string.h>

/* Largest DER for P-521: 2 INTEGERs of up to 67 bytes (66 + a sign byte),
 * each with a 2-byte header, inside a SEQUENCE with a 3-byte header. */
#define MCP_MAX_ECDSA_DER 160

/* Appends INTEGER(v) in minimal two's complement form. */
static size_t der_integer(const unsigned char *v, size_t len, unsigned char *out)
{
    size_t o = 0;
    while (len > 1 && v[0] == 0) {
        v++;
        len--;
    }
    out[o++] = 0x02;
    if (v[0] & 0x80) {
        out[o++] = (unsigned char)(len + 1);
        out[o++] = 0x00;
    }
    else {
        out[o++] = (unsigned char)len;
    }
    memcpy(out + o, v, len);
    return o + len;
}

size_t mcp_ecdsa_raw_to_der(const unsigned char *raw, size_t coord_len, unsigned char *out, size_t outsize)
{
    unsigned char body[MCP_MAX_ECDSA_DER];
    size_t blen, o = 0;

    /* Each INTEGER needs at most coord_len + 3 bytes; refuse what cannot fit. */
    if (coord_len == 0 || 2 * (coord_len + 3) > sizeof(body))
        return 0;
    blen = der_integer(raw, coord_len, body);
    blen += der_integer(raw + coord_len, coord_len, body + blen);
    /* SEQUENCE header: tag + short length, or tag + 0x81 + length. */
    if (blen + (blen >= 0x80 ? 3 : 2) > outsize)
        return 0;
    out[o++] = 0x30;
    if (blen >= 0x80) {
        out[o++] = 0x81;
    }
    out[o++] = (unsigned char)blen;
    memcpy(out + o, body, blen);
    return o + blen;
}

static int verify_hmac(mcp_alg alg, const mcp_jwk_t *key, const unsigned char *msg, size_t msglen,
                       const unsigned char *sig, size_t siglen)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0, want = mcp_alg_hash_len(alg);
    const EVP_MD *md = mcp_alg_md(alg);

    if (siglen != want || !md)
        return 0;
    if (!EVP_Q_mac(NULL, "HMAC", NULL, EVP_MD_get0_name(md), NULL, key->secret, key->secret_len, msg, msglen, mac,
                   sizeof(mac), &maclen) ||
        maclen != want)
        return 0;
    return CRYPTO_memcmp(mac, sig, want) == 0;
}

static int verify_evp(mcp_alg alg, const mcp_jwk_t *key, const unsigned char *msg, size_t msglen,
                      const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *mctx;
    EVP_PKEY_CTX *pctx = NULL;
    const EVP_MD *md = mcp_alg_md(alg);
    unsigned char der[MCP_MAX_ECDSA_DER];
    int ok = 0;

    switch (mcp_alg_kty(alg)) {
    case MCP_KTY_RSA:
        /* A shorter or longer RSA signature is malformed, not merely wrong. */
        if ((int)siglen != EVP_PKEY_get_size(key->pkey))
            return 0;
        break;
    case MCP_KTY_EC: {
        size_t clen = mcp_crv_coord_len(mcp_alg_crv(alg));
        /* Only the JWS form (raw R||S of exactly this size) is a signature. */
        if (siglen != 2 * clen)
            return 0;
        siglen = mcp_ecdsa_raw_to_der(sig, clen, der, sizeof(der));
        if (!siglen)
            return 0;
        sig = der;
        break;
    }
    case MCP_KTY_OKP:
        if (siglen != 64)
            return 0;
        md = NULL;
        break;
    default:
        return 0;
    }

    mctx = EVP_MD_CTX_new();
    if (!mctx)
        return 0;
    if (EVP_DigestVerifyInit(mctx, &pctx, md, NULL, key->pkey) != 1)
        goto done;
    if (mcp_alg_kty(alg) == MCP_KTY_RSA) {
        int pss = alg == MCP_ALG_PS256 || alg == MCP_ALG_PS384 || alg == MCP_ALG_PS512;
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) <= 0)
            goto done;
        /* RFC 7518 3.5: MGF1 with the same hash and a salt as long as the
         * hash. Set explicitly: the "auto" salt length would also accept
         * signatures made with other salt lengths. */
        if (pss && (EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) <= 0 ||
                    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0))
            goto done;
    }
    ok = EVP_DigestVerify(mctx, sig, siglen, msg, msglen) == 1;
done:
    EVP_MD_CTX_free(mctx);
    if (!ok)
        ERR_clear_error(); /* a bad signature is not an error to keep queued */
    return ok;
}

int mcp_jws_verify(mcp_alg alg, const mcp_jwk_t *key, const unsigned char *msg, size_t msglen, const unsigned char *sig,
                   size_t siglen)
{
    if (!mcp_jwk_fits_alg(key, alg))
        return 0;
    if (key->kty == MCP_KTY_OCT)
        return verify_hmac(alg, key, msg, msglen, sig, siglen);
    return verify_evp(alg, key, msg, msglen, sig, siglen);
}
