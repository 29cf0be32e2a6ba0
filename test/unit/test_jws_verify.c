/* SPDX-License-Identifier: Apache-2.0 */
/* JWS signature verification for every algorithm, its failure modes, the
 * ECDSA raw-to-DER conversion, and published RFC test vectors. */
#include "test_util.h"

#include <openssl/ec.h>
#include <openssl/rsa.h>

#include "verifier.h"

static const mcp_alg ALL_ALGS[] = {
    MCP_ALG_RS256, MCP_ALG_RS384, MCP_ALG_RS512, MCP_ALG_PS256, MCP_ALG_PS384, MCP_ALG_PS512, MCP_ALG_ES256,
    MCP_ALG_ES384, MCP_ALG_ES512, MCP_ALG_EDDSA, MCP_ALG_HS256, MCP_ALG_HS384, MCP_ALG_HS512,
};
#define N_ALGS (sizeof(ALL_ALGS) / sizeof(ALL_ALGS[0]))

/* Two keys of each kind, so "wrong key of the same type" has a candidate. */
static struct {
    EVP_PKEY *rsa[2], *p256[2], *p384[2], *p521[2], *ed[2];
    unsigned char hmac[2][64];
} K;

static int group_setup(void **state)
{
    int i;
    for (i = 0; i < 2; i++) {
        K.rsa[i] = tu_keygen(MCP_ALG_RS256, 2048);
        K.p256[i] = tu_keygen(MCP_ALG_ES256, 0);
        K.p384[i] = tu_keygen(MCP_ALG_ES384, 0);
        K.p521[i] = tu_keygen(MCP_ALG_ES512, 0);
        K.ed[i] = tu_keygen(MCP_ALG_EDDSA, 0);
        if (RAND_bytes(K.hmac[i], sizeof(K.hmac[i])) != 1)
            return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    int i;
    for (i = 0; i < 2; i++) {
        EVP_PKEY_free(K.rsa[i]);
        EVP_PKEY_free(K.p256[i]);
        EVP_PKEY_free(K.p384[i]);
        EVP_PKEY_free(K.p521[i]);
        EVP_PKEY_free(K.ed[i]);
    }
    return 0;
}

static EVP_PKEY *priv_key(mcp_alg alg, int i)
{
    switch (alg) {
    case MCP_ALG_ES256:
        return K.p256[i];
    case MCP_ALG_ES384:
        return K.p384[i];
    case MCP_ALG_ES512:
        return K.p521[i];
    case MCP_ALG_EDDSA:
        return K.ed[i];
    case MCP_ALG_HS256:
    case MCP_ALG_HS384:
    case MCP_ALG_HS512:
        return NULL;
    default:
        return K.rsa[i];
    }
}

/* Verification key number i for alg. */
static const mcp_jwk_t *pub_key(apr_pool_t *p, mcp_alg alg, int i)
{
    if (mcp_alg_kty(alg) == MCP_KTY_OCT)
        return mcp_jwk_from_secret(p, K.hmac[i], sizeof(K.hmac[i]));
    return tu_jwk(p, priv_key(alg, i), NULL, alg, 1);
}

typedef struct {
    unsigned char *msg; /* signing input, copied so it can be tampered with */
    size_t msglen;
    unsigned char *sig;
    size_t siglen;
} signed_t;

/* Signs a small JWT with key i and splits it into signing input + signature. */
static signed_t sign_with(apr_pool_t *p, mcp_alg alg, int i)
{
    signed_t s;
    mcp_jws_t jws;
    mcp_fail_t fail = {0};
    const char *hdr = apr_psprintf(p, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", mcp_alg_name(alg));
    const char *tok =
        tu_sign(p, alg, priv_key(alg, i), K.hmac[i], sizeof(K.hmac[i]), hdr, "{\"sub\":\"alice\",\"exp\":2000000000}");
    if (mcp_jws_parse(p, tok, strlen(tok), &jws, &fail) != 0)
        fail_msg("%s token does not parse: %s", mcp_alg_name(alg), fail.reason);
    assert_int_equal(jws.alg, alg);
    s.msglen = jws.signing_input_len;
    s.msg = apr_pmemdup(p, jws.signing_input, s.msglen);
    s.siglen = jws.sig_len;
    s.sig = apr_pmemdup(p, jws.sig, s.siglen + 1);
    return s;
}

static int verify(mcp_alg alg, const mcp_jwk_t *key, const unsigned char *msg, size_t msglen, const unsigned char *sig,
                  size_t siglen)
{
    return mcp_jws_verify(alg, key, msg, msglen, sig, siglen);
}

static size_t expected_sig_len(mcp_alg alg)
{
    switch (mcp_alg_kty(alg)) {
    case MCP_KTY_RSA:
        return 256;
    case MCP_KTY_EC:
        return 2 * mcp_crv_coord_len(mcp_alg_crv(alg));
    case MCP_KTY_OKP:
        return 64;
    default:
        return mcp_alg_hash_len(alg);
    }
}

static void test_sign_verify_all_algs(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    size_t a;
    for (a = 0; a < N_ALGS; a++) {
        mcp_alg alg = ALL_ALGS[a];
        signed_t s = sign_with(p, alg, 0);
        assert_int_equal(s.siglen, expected_sig_len(alg));
        if (!verify(alg, pub_key(p, alg, 0), s.msg, s.msglen, s.sig, s.siglen))
            fail_msg("%s: a valid signature did not verify", mcp_alg_name(alg));
        /* The second key works just as well for its own signatures. */
        s = sign_with(p, alg, 1);
        if (!verify(alg, pub_key(p, alg, 1), s.msg, s.msglen, s.sig, s.siglen))
            fail_msg("%s: a valid signature (key 2) did not verify", mcp_alg_name(alg));
    }
}

static void test_flipped_signature_bit(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    size_t a, i;
    for (a = 0; a < N_ALGS; a++) {
        mcp_alg alg = ALL_ALGS[a];
        signed_t s = sign_with(p, alg, 0);
        const mcp_jwk_t *key = pub_key(p, alg, 0);
        assert_true(verify(alg, key, s.msg, s.msglen, s.sig, s.siglen));
        for (i = 0; i < s.siglen; i += (i + 7 < s.siglen ? 7 : 1)) {
            int bit = (int)(i % 8);
            s.sig[i] ^= (unsigned char)(1u << bit);
            if (verify(alg, key, s.msg, s.msglen, s.sig, s.siglen))
                fail_msg("%s: signature with bit %d of byte %zu flipped verified", mcp_alg_name(alg), bit, i);
            s.sig[i] ^= (unsigned char)(1u << bit);
        }
        assert_true(verify(alg, key, s.msg, s.msglen, s.sig, s.siglen)); /* restored */
    }
}

static void test_tampered_signing_input(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    size_t a;
    for (a = 0; a < N_ALGS; a++) {
        mcp_alg alg = ALL_ALGS[a];
        signed_t s = sign_with(p, alg, 0);
        const mcp_jwk_t *key = pub_key(p, alg, 0);
        size_t pos[3] = {0, s.msglen / 2, s.msglen - 1}, i;
        unsigned char *longer = apr_palloc(p, s.msglen + 1);

        for (i = 0; i < 3; i++) {
            s.msg[pos[i]] ^= 0x01;
            if (verify(alg, key, s.msg, s.msglen, s.sig, s.siglen))
                fail_msg("%s: tampered signing input (byte %zu) verified", mcp_alg_name(alg), pos[i]);
            s.msg[pos[i]] ^= 0x01;
        }
        assert_false(verify(alg, key, s.msg, s.msglen - 1, s.sig, s.siglen));
        memcpy(longer, s.msg, s.msglen);
        longer[s.msglen] = 'A';
        assert_false(verify(alg, key, longer, s.msglen + 1, s.sig, s.siglen));
        assert_false(verify(alg, key, s.msg, 0, s.sig, s.siglen));
        assert_true(verify(alg, key, s.msg, s.msglen, s.sig, s.siglen));
    }
}

static void test_wrong_key_same_type(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    size_t a;
    for (a = 0; a < N_ALGS; a++) {
        mcp_alg alg = ALL_ALGS[a];
        signed_t s = sign_with(p, alg, 0);
        const mcp_jwk_t *other = pub_key(p, alg, 1);
        assert_true(mcp_jwk_fits_alg(other, alg)); /* a candidate, just the wrong one */
        if (verify(alg, other, s.msg, s.msglen, s.sig, s.siglen))
            fail_msg("%s: verified with the wrong key", mcp_alg_name(alg));
    }
}

static void test_signature_length(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    size_t a;
    for (a = 0; a < N_ALGS; a++) {
        mcp_alg alg = ALL_ALGS[a];
        signed_t s = sign_with(p, alg, 0);
        const mcp_jwk_t *key = pub_key(p, alg, 0);
        unsigned char *ext = apr_pcalloc(p, 2 * s.siglen + 1);

        assert_false(verify(alg, key, s.msg, s.msglen, s.sig, s.siglen - 1)); /* truncated */
        assert_false(verify(alg, key, s.msg, s.msglen, s.sig, s.siglen / 2)); /* half */
        assert_false(verify(alg, key, s.msg, s.msglen, s.sig, 0));            /* empty */
        memcpy(ext, s.sig, s.siglen);
        assert_false(verify(alg, key, s.msg, s.msglen, ext, s.siglen + 1)); /* trailing 0 */
        memcpy(ext + s.siglen, s.sig, s.siglen);
        assert_false(verify(alg, key, s.msg, s.msglen, ext, 2 * s.siglen)); /* doubled */
        ext[0] = 0;
        memcpy(ext + 1, s.sig, s.siglen);
        assert_false(verify(alg, key, s.msg, s.msglen, ext, s.siglen + 1)); /* leading 0 */
        assert_true(verify(alg, key, s.msg, s.msglen, s.sig, s.siglen));
    }
}

/* EVP signature over msg: RSA padding/salt/MGF1 when pad != 0. */
static size_t evp_sign(EVP_PKEY *pk, const EVP_MD *md, int pad, int saltlen, const EVP_MD *mgf1,
                       const unsigned char *msg, size_t msglen, unsigned char *sig, size_t sigsize)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    size_t len = sigsize;
    int ok = m && EVP_DigestSignInit(m, &pc, md, NULL, pk) == 1;
    if (ok && pad) {
        ok = EVP_PKEY_CTX_set_rsa_padding(pc, pad) > 0;
        if (ok && pad == RSA_PKCS1_PSS_PADDING)
            ok = EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, saltlen) > 0 && EVP_PKEY_CTX_set_rsa_mgf1_md(pc, mgf1) > 0;
    }
    ok = ok && EVP_DigestSign(m, sig, &len, msg, msglen) == 1;
    EVP_MD_CTX_free(m);
    if (!ok)
        fail_msg("EVP signing failed");
    return len;
}

/* Same with EVP verify; independent oracle that the signature is genuine. */
static int evp_verify(EVP_PKEY *pk, const EVP_MD *md, int pad, int saltlen, const EVP_MD *mgf1,
                      const unsigned char *msg, size_t msglen, const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    int ok = m && EVP_DigestVerifyInit(m, &pc, md, NULL, pk) == 1;
    if (ok && pad) {
        ok = EVP_PKEY_CTX_set_rsa_padding(pc, pad) > 0;
        if (ok && pad == RSA_PKCS1_PSS_PADDING)
            ok = EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, saltlen) > 0 && EVP_PKEY_CTX_set_rsa_mgf1_md(pc, mgf1) > 0;
    }
    ok = ok && EVP_DigestVerify(m, sig, siglen, msg, msglen) == 1;
    EVP_MD_CTX_free(m);
    return ok;
}

static void test_ecdsa_der_signature_rejected(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const mcp_alg algs[] = {MCP_ALG_ES256, MCP_ALG_ES384, MCP_ALG_ES512};
    const unsigned char msg[] = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0";
    size_t i;
    for (i = 0; i < 3; i++) {
        mcp_alg alg = algs[i];
        unsigned char der[256];
        size_t derlen = evp_sign(priv_key(alg, 0), mcp_alg_md(alg), 0, 0, NULL, msg, sizeof(msg) - 1, der, sizeof(der));
        /* Genuine signature in DER form (OpenSSL agrees)... */
        assert_true(evp_verify(priv_key(alg, 0), mcp_alg_md(alg), 0, 0, NULL, msg, sizeof(msg) - 1, der, derlen));
        /* ...but JWS wants raw R||S, so the DER form is not a JWS signature. */
        if (verify(alg, pub_key(p, alg, 0), msg, sizeof(msg) - 1, der, derlen))
            fail_msg("%s: DER signature accepted", mcp_alg_name(alg));
    }
}

static void test_pss_salt_length(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const unsigned char msg[] = "eyJhbGciOiJQUzI1NiJ9.eyJzdWIiOiJhIn0";
    size_t mlen = sizeof(msg) - 1;
    unsigned char sig[512];
    size_t len;
    EVP_PKEY *pk = K.rsa[0];
    const EVP_MD *sha256 = mcp_alg_md(MCP_ALG_PS256), *sha384 = mcp_alg_md(MCP_ALG_PS384);
    const EVP_MD *sha512 = mcp_alg_md(MCP_ALG_PS512), *sha1 = EVP_sha1();

    /* Control: salt = hash length, made outside the engine, verifies. */
    len = evp_sign(pk, sha256, RSA_PKCS1_PSS_PADDING, 32, sha256, msg, mlen, sig, sizeof(sig));
    assert_true(verify(MCP_ALG_PS256, pub_key(p, MCP_ALG_PS256, 0), msg, mlen, sig, len));

    /* Salt 20 with SHA-256: a genuine PSS signature, not a PS256 one. */
    len = evp_sign(pk, sha256, RSA_PKCS1_PSS_PADDING, 20, sha256, msg, mlen, sig, sizeof(sig));
    assert_true(evp_verify(pk, sha256, RSA_PKCS1_PSS_PADDING, 20, sha256, msg, mlen, sig, len));
    assert_false(verify(MCP_ALG_PS256, pub_key(p, MCP_ALG_PS256, 0), msg, mlen, sig, len));

    /* Salt 0 and the maximum salt are refused too. */
    len = evp_sign(pk, sha256, RSA_PKCS1_PSS_PADDING, 0, sha256, msg, mlen, sig, sizeof(sig));
    assert_false(verify(MCP_ALG_PS256, pub_key(p, MCP_ALG_PS256, 0), msg, mlen, sig, len));
    len = evp_sign(pk, sha256, RSA_PKCS1_PSS_PADDING, RSA_PSS_SALTLEN_MAX, sha256, msg, mlen, sig, sizeof(sig));
    assert_false(verify(MCP_ALG_PS256, pub_key(p, MCP_ALG_PS256, 0), msg, mlen, sig, len));

    /* PS384 with a 32-byte salt, PS512 with a 48-byte salt. */
    len = evp_sign(pk, sha384, RSA_PKCS1_PSS_PADDING, 32, sha384, msg, mlen, sig, sizeof(sig));
    assert_false(verify(MCP_ALG_PS384, pub_key(p, MCP_ALG_PS384, 0), msg, mlen, sig, len));
    len = evp_sign(pk, sha512, RSA_PKCS1_PSS_PADDING, 48, sha512, msg, mlen, sig, sizeof(sig));
    assert_false(verify(MCP_ALG_PS512, pub_key(p, MCP_ALG_PS512, 0), msg, mlen, sig, len));

    /* MGF1 must use the same hash as the message digest. */
    len = evp_sign(pk, sha256, RSA_PKCS1_PSS_PADDING, 32, sha1, msg, mlen, sig, sizeof(sig));
    assert_true(evp_verify(pk, sha256, RSA_PKCS1_PSS_PADDING, 32, sha1, msg, mlen, sig, len));
    assert_false(verify(MCP_ALG_PS256, pub_key(p, MCP_ALG_PS256, 0), msg, mlen, sig, len));
}

static void test_pkcs1_vs_pss(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const mcp_alg rs[] = {MCP_ALG_RS256, MCP_ALG_RS384, MCP_ALG_RS512};
    const mcp_alg ps[] = {MCP_ALG_PS256, MCP_ALG_PS384, MCP_ALG_PS512};
    size_t i;
    for (i = 0; i < 3; i++) {
        signed_t s = sign_with(p, rs[i], 0);
        assert_true(verify(rs[i], pub_key(p, rs[i], 0), s.msg, s.msglen, s.sig, s.siglen));
        if (verify(ps[i], tu_jwk(p, K.rsa[0], NULL, ps[i], 0), s.msg, s.msglen, s.sig, s.siglen))
            fail_msg("%s signature verified as %s", mcp_alg_name(rs[i]), mcp_alg_name(ps[i]));
        s = sign_with(p, ps[i], 0);
        if (verify(rs[i], tu_jwk(p, K.rsa[0], NULL, rs[i], 0), s.msg, s.msglen, s.sig, s.siglen))
            fail_msg("%s signature verified as %s", mcp_alg_name(ps[i]), mcp_alg_name(rs[i]));
    }
    /* Same padding, other hash. */
    {
        signed_t s = sign_with(p, MCP_ALG_RS256, 0);
        assert_false(
            verify(MCP_ALG_RS384, tu_jwk(p, K.rsa[0], NULL, MCP_ALG_RS384, 0), s.msg, s.msglen, s.sig, s.siglen));
    }
}

static void test_key_must_fit_alg(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    signed_t s;
    unsigned char short_secret[31];
    mcp_jwk_t *k;

    /* ES256 signature, P-384 key. */
    s = sign_with(p, MCP_ALG_ES256, 0);
    assert_false(verify(MCP_ALG_ES256, tu_jwk(p, K.p384[0], NULL, MCP_ALG_ES384, 0), s.msg, s.msglen, s.sig, s.siglen));
    /* A key whose JWK alg is RS256 does not verify RS512, even its own. */
    s = sign_with(p, MCP_ALG_RS512, 0);
    assert_false(verify(MCP_ALG_RS512, tu_jwk(p, K.rsa[0], NULL, MCP_ALG_RS256, 1), s.msg, s.msglen, s.sig, s.siglen));
    assert_true(verify(MCP_ALG_RS512, tu_jwk(p, K.rsa[0], NULL, MCP_ALG_RS256, 0), s.msg, s.msglen, s.sig, s.siglen));

    /* HMAC keys shorter than the hash output are refused even when the MAC matches. */
    memcpy(short_secret, K.hmac[0], sizeof(short_secret));
    {
        const char *tok =
            tu_sign(p, MCP_ALG_HS256, NULL, short_secret, sizeof(short_secret), "{\"alg\":\"HS256\"}", "{}");
        k = mcp_jwk_from_secret(p, short_secret, sizeof(short_secret));
        assert_false(tu_verify_token(p, MCP_ALG_HS256, k, tok));
        k = mcp_jwk_from_secret(p, K.hmac[0], 32);
        tok = tu_sign(p, MCP_ALG_HS256, NULL, K.hmac[0], 32, "{\"alg\":\"HS256\"}", "{}");
        assert_true(tu_verify_token(p, MCP_ALG_HS256, k, tok));
        tok = tu_sign(p, MCP_ALG_HS512, NULL, K.hmac[0], 32, "{\"alg\":\"HS512\"}", "{}");
        assert_false(tu_verify_token(p, MCP_ALG_HS512, k, tok));
    }
    /* An RSA key cannot check an HMAC, nor an EdDSA signature. */
    s = sign_with(p, MCP_ALG_HS256, 0);
    assert_false(verify(MCP_ALG_HS256, tu_jwk(p, K.rsa[0], NULL, MCP_ALG_RS256, 0), s.msg, s.msglen, s.sig, s.siglen));
    s = sign_with(p, MCP_ALG_EDDSA, 0);
    assert_false(verify(MCP_ALG_EDDSA, tu_jwk(p, K.rsa[0], NULL, MCP_ALG_RS256, 0), s.msg, s.msglen, s.sig, s.siglen));
    assert_false(verify(MCP_ALG_UNKNOWN, pub_key(p, MCP_ALG_EDDSA, 0), s.msg, s.msglen, s.sig, s.siglen));
}

/* ---- mcp_ecdsa_raw_to_der ------------------------------------------------- */

static size_t put_int(unsigned char *o, const unsigned char *v, size_t len, int pad)
{
    size_t n = 0;
    o[n++] = 0x02;
    o[n++] = (unsigned char)(len + (pad ? 1 : 0));
    if (pad)
        o[n++] = 0x00;
    memcpy(o + n, v, len);
    return n + len;
}

/* Parses der as an ECDSA-Sig-Value and compares r and s with raw. */
static void assert_der_matches(const unsigned char *der, size_t derlen, const unsigned char *raw, size_t clen)
{
    const unsigned char *q = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &q, (long)derlen);
    const BIGNUM *r, *s;
    BIGNUM *wr = BN_bin2bn(raw, (int)clen, NULL), *ws = BN_bin2bn(raw + clen, (int)clen, NULL);
    assert_non_null(sig);
    assert_ptr_equal(q, der + derlen); /* consumed exactly */
    ECDSA_SIG_get0(sig, &r, &s);
    assert_int_equal(BN_cmp(r, wr), 0);
    assert_int_equal(BN_cmp(s, ws), 0);
    BN_free(wr);
    BN_free(ws);
    ECDSA_SIG_free(sig);
}

static void test_raw_to_der_high_bit(void **state)
{
    unsigned char raw[64], der[160], want[160];
    size_t n, w = 0, body;
    memset(raw, 0x11, 32);
    raw[0] = 0x80; /* r negative as two's complement: needs 0x00 */
    memset(raw + 32, 0x22, 32);
    raw[32] = 0x7f; /* s positive: no prefix */

    want[w++] = 0x30;
    want[w++] = 0; /* patched below */
    w += put_int(want + w, raw, 32, 1);
    w += put_int(want + w, raw + 32, 32, 0);
    body = w - 2;
    want[1] = (unsigned char)body;
    assert_int_equal(body, 35 + 34);

    n = mcp_ecdsa_raw_to_der(raw, 32, der, sizeof(der));
    assert_int_equal(n, w);
    assert_memory_equal(der, want, w);
    assert_der_matches(der, n, raw, 32);
}

static void test_raw_to_der_leading_zeros(void **state)
{
    unsigned char raw[64], der[160], want[160];
    size_t n, w = 0;
    unsigned char zero = 0;
    memset(raw, 0x01, 64);
    raw[0] = raw[1] = raw[2] = 0x00; /* r: 29 significant bytes */
    memset(raw + 32, 0x00, 32);      /* s = 0: INTEGER 0 is one 0x00 byte */

    want[w++] = 0x30;
    want[w++] = 0;
    w += put_int(want + w, raw + 3, 29, 0);
    w += put_int(want + w, &zero, 1, 0);
    want[1] = (unsigned char)(w - 2);
    n = mcp_ecdsa_raw_to_der(raw, 32, der, sizeof(der));
    assert_int_equal(n, w);
    assert_memory_equal(der, want, w);
    assert_der_matches(der, n, raw, 32);

    /* Stripped zeros then a high bit: the 0x00 comes back as the sign byte. */
    memset(raw, 0, 64);
    raw[2] = 0x80;
    raw[3] = 0x01;
    raw[63] = 0x05;
    w = 0;
    want[w++] = 0x30;
    want[w++] = 0;
    w += put_int(want + w, raw + 2, 30, 1);
    w += put_int(want + w, raw + 63, 1, 0);
    want[1] = (unsigned char)(w - 2);
    n = mcp_ecdsa_raw_to_der(raw, 32, der, sizeof(der));
    assert_int_equal(n, w);
    assert_memory_equal(der, want, w);
    assert_der_matches(der, n, raw, 32);
}

static void test_raw_to_der_p521(void **state)
{
    unsigned char raw[132], der[200], want[200];
    size_t n, w = 0;
    memset(raw, 0xff, sizeof(raw));
    raw[0] = 0x01; /* r: 66 bytes, top byte 0x01 (521 bits) */
    /* s: 66 bytes of 0xff: 67 with the sign byte */
    want[w++] = 0x30;
    want[w++] = 0x81; /* body > 127 bytes: long form length */
    want[w++] = 0;
    w += put_int(want + w, raw, 66, 0);
    w += put_int(want + w, raw + 66, 66, 1);
    want[2] = (unsigned char)(w - 3);
    assert_int_equal(w - 3, 68 + 69);

    n = mcp_ecdsa_raw_to_der(raw, 66, der, sizeof(der));
    assert_int_equal(n, w);
    assert_memory_equal(der, want, w);
    assert_der_matches(der, n, raw, 66);

    /* The largest P-521 DER fits the engine's own buffer size. */
    assert_true(n <= 160);
}

static void test_raw_to_der_small_buffer(void **state)
{
    unsigned char raw[132], der[200];
    size_t clens[] = {32, 48, 66}, i, n;
    for (i = 0; i < 3; i++) {
        memset(raw, 0xc3, sizeof(raw));
        n = mcp_ecdsa_raw_to_der(raw, clens[i], der, sizeof(der));
        assert_true(n > 2 * clens[i]);
        assert_int_equal(mcp_ecdsa_raw_to_der(raw, clens[i], der, n - 1), 0);
        assert_int_equal(mcp_ecdsa_raw_to_der(raw, clens[i], der, 0), 0);
        assert_int_equal(mcp_ecdsa_raw_to_der(raw, clens[i], der, n), n);
    }
    assert_int_equal(mcp_ecdsa_raw_to_der(raw, 0, der, sizeof(der)), 0);
    assert_int_equal(mcp_ecdsa_raw_to_der(raw, 200, der, sizeof(der)), 0);
}

/* Cross-check against OpenSSL's own encoder on random values. */
static void test_raw_to_der_matches_openssl(void **state)
{
    size_t clens[] = {32, 48, 66}, c;
    int iter;
    for (c = 0; c < 3; c++) {
        size_t clen = clens[c];
        for (iter = 0; iter < 200; iter++) {
            unsigned char raw[132], der[200], *ref = NULL;
            size_t n;
            int reflen;
            ECDSA_SIG *sig = ECDSA_SIG_new();
            assert_int_equal(RAND_bytes(raw, (int)(2 * clen)), 1);
            /* Vary the shape: leading zero bytes, forced high bits. */
            if (iter % 4 == 1)
                memset(raw, 0, (size_t)(iter % 5) + 1);
            if (iter % 4 == 2)
                raw[clen] |= 0x80;
            if (iter % 7 == 3)
                memset(raw + clen, 0, clen);
            assert_int_equal(
                ECDSA_SIG_set0(sig, BN_bin2bn(raw, (int)clen, NULL), BN_bin2bn(raw + clen, (int)clen, NULL)), 1);
            reflen = i2d_ECDSA_SIG(sig, &ref);
            assert_true(reflen > 0);
            n = mcp_ecdsa_raw_to_der(raw, clen, der, sizeof(der));
            assert_int_equal(n, (size_t)reflen);
            assert_memory_equal(der, ref, n);
            OPENSSL_free(ref);
            ECDSA_SIG_free(sig);
        }
    }
}

/* ---- RFC vectors through mcp_verify_jwt ------------------------------------ */

typedef struct {
    mcp_trusted_issuer_t ti;
    mcp_verify_policy_t pol;
} jws_only_policy;

/* jws_only policy trusting the vector's public_jwk (or its oct key as the HMAC secret). */
static void vector_policy(apr_pool_t *p, const json_t *vec, jws_only_policy *vp)
{
    const json_t *pub = json_object_get(vec, "public_jwk");
    mcp_jwk_t *k = NULL;
    const char *why = NULL;
    int oct = strcmp(tu_str(pub, "kty"), "oct") == 0;

    memset(vp, 0, sizeof(*vp));
    if (mcp_jwk_from_json(p, pub, oct, &k, &why) != 0)
        fail_msg("vector public_jwk refused: %s", why);
    vp->ti.issuer = NULL;
    vp->pol.issuers = &vp->ti;
    vp->pol.n_issuers = 1;
    vp->pol.alg_mask = MCP_ALG_MASK_DEFAULT;
    vp->pol.max_token_size = 16384;
    vp->pol.jws_only = 1;
    if (oct) {
        vp->pol.hmac_key = k;
        vp->pol.alg_mask |= MCP_ALG_BIT(MCP_ALG_HS256);
    }
    else {
        vp->ti.keys = tu_jwks(p, 1, k);
    }
}

static const char *const GOOD_VECTORS[] = {
    "rfc7520_4_1_rs256.json", "rfc7520_4_2_ps384.json",  "rfc7520_4_3_es512.json",
    "rfc7520_4_4_hs256.json", "rfc8037_a4_ed25519.json",
};

static void test_rfc_vectors_verify(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    size_t i;
    for (i = 0; i < sizeof(GOOD_VECTORS) / sizeof(GOOD_VECTORS[0]); i++) {
        json_t *vec = tu_vector(p, GOOD_VECTORS[i]);
        const char *compact = tu_str(vec, "compact"), *payload = tu_str(vec, "payload");
        mcp_alg alg = mcp_alg_from_name(tu_str(vec, "alg"));
        jws_only_policy vp;
        mcp_verified_t out;
        mcp_fail_t fail = {0};
        mcp_jws_t jws;

        vector_policy(p, vec, &vp);
        if (mcp_verify_jwt(p, compact, strlen(compact), &vp.pol, NULL, &out, &fail) != 0)
            fail_msg("%s: %s (%s)", GOOD_VECTORS[i], fail.reason, fail.detail ? fail.detail : "");
        assert_int_equal(out.alg, alg);
        assert_null(out.claims); /* jws_only: the payload is not taken as claims */
        assert_non_null(out.header);
        assert_string_equal(tu_str(out.header, "alg"), tu_str(vec, "alg"));

        /* The payload decodes to exactly the RFC's text. */
        assert_int_equal(mcp_jws_parse(p, compact, strlen(compact), &jws, &fail), 0);
        assert_int_equal(jws.payload_len, strlen(payload));
        assert_memory_equal(jws.payload, payload, jws.payload_len);
    }
}

static void test_rfc_vectors_tampered(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    size_t i;
    for (i = 0; i < sizeof(GOOD_VECTORS) / sizeof(GOOD_VECTORS[0]); i++) {
        json_t *vec = tu_vector(p, GOOD_VECTORS[i]);
        const char *compact = tu_str(vec, "compact");
        jws_only_policy vp;
        mcp_verified_t out;
        mcp_fail_t fail = {0};
        const char *bad;

        vector_policy(p, vec, &vp);
        bad = tu_tamper_sig(p, compact, 5, 2);
        assert_int_equal(mcp_verify_jwt(p, bad, strlen(bad), &vp.pol, NULL, &out, &fail), -1);
        assert_string_equal(fail.reason, "Invalid signature");
        assert_int_equal(fail.kind, MCP_FAIL_INVALID_TOKEN);

        fail.reason = NULL;
        bad = tu_tamper_payload(p, compact, 3, 0);
        assert_int_equal(mcp_verify_jwt(p, bad, strlen(bad), &vp.pol, NULL, &out, &fail), -1);
        assert_string_equal(fail.reason, "Invalid signature");
    }
}

/* The vectors' "jwk" members carry private parts; only the public part is used. */
static void test_rfc_vectors_private_jwk(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *files[] = {"rfc7520_4_1_rs256.json", "rfc7520_4_2_ps384.json", "rfc7520_4_3_es512.json",
                           "rfc8037_a4_ed25519.json"};
    size_t i;
    for (i = 0; i < 4; i++) {
        json_t *vec = tu_vector(p, files[i]);
        const json_t *priv = json_object_get(vec, "jwk");
        mcp_jwk_t *k = NULL;
        const char *why = NULL;
        assert_non_null(json_object_get(priv, "d"));
        if (mcp_jwk_from_json(p, priv, 0, &k, &why) != 0)
            fail_msg("%s: private JWK refused: %s", files[i], why);
        assert_true(tu_verify_token(p, mcp_alg_from_name(tu_str(vec, "alg")), k, tu_str(vec, "compact")));
    }
}

static void test_rfc7797_b64_false_rejected(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    json_t *vec = tu_vector(p, "rfc7797_4_2_b64false.json");
    const char *compact = tu_str(vec, "compact"), *payload = tu_str(vec, "payload");
    const char *dot = strchr(compact, '.');
    jws_only_policy vp;
    mcp_verified_t out;
    mcp_fail_t fail = {0};
    mcp_jws_t jws;
    const char *unencoded;

    vector_policy(p, vec, &vp);
    assert_int_equal(mcp_verify_jwt(p, compact, strlen(compact), &vp.pol, NULL, &out, &fail), -1);
    assert_int_equal(fail.kind, MCP_FAIL_INVALID_TOKEN);
    assert_string_equal(fail.reason, "Unsupported crit header");
    assert_null(out.header);

    /* Not a signature problem: the MAC is genuine over the unencoded
     * signing input RFC 7797 defines; the header alone is the reason. */
    assert_non_null(dot);
    unencoded = apr_pstrcat(p, apr_pstrmemdup(p, compact, (apr_size_t)(dot - compact)), ".", payload, NULL);
    assert_int_equal(mcp_jws_parse(p, compact, strlen(compact), &jws, &fail), -1);
    {
        const char *sig_b64 = strrchr(compact, '.') + 1;
        size_t siglen;
        unsigned char *sig = tu_b64dec(p, sig_b64, strlen(sig_b64), &siglen);
        assert_true(mcp_jws_verify(MCP_ALG_HS256, vp.pol.hmac_key, (const unsigned char *)unencoded, strlen(unencoded),
                                   sig, siglen));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_sign_verify_all_algs),     TU_TEST(test_flipped_signature_bit),
        TU_TEST(test_tampered_signing_input),   TU_TEST(test_wrong_key_same_type),
        TU_TEST(test_signature_length),         TU_TEST(test_ecdsa_der_signature_rejected),
        TU_TEST(test_pss_salt_length),          TU_TEST(test_pkcs1_vs_pss),
        TU_TEST(test_key_must_fit_alg),         TU_TEST(test_raw_to_der_high_bit),
        TU_TEST(test_raw_to_der_leading_zeros), TU_TEST(test_raw_to_der_p521),
        TU_TEST(test_raw_to_der_small_buffer),  TU_TEST(test_raw_to_der_matches_openssl),
        TU_TEST(test_rfc_vectors_verify),       TU_TEST(test_rfc_vectors_tampered),
        TU_TEST(test_rfc_vectors_private_jwk),  TU_TEST(test_rfc7797_b64_false_rejected),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("jws", tests, group_setup, group_teardown);
}
