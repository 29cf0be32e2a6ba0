/* SPDX-License-Identifier: Apache-2.0 */
/* JWK / JWKS parsing: which keys survive, and only their public part. */
#include "test_util.h"

#include <openssl/core_names.h>

static struct {
    EVP_PKEY *rsa, *rsa1024, *p256, *p384, *p521, *ed25519, *ed448;
} K;

static int group_setup(void **state)
{
    K.rsa = tu_keygen(MCP_ALG_RS256, 2048);
    K.rsa1024 = tu_keygen(MCP_ALG_RS256, 1024);
    K.p256 = tu_keygen(MCP_ALG_ES256, 0);
    K.p384 = tu_keygen(MCP_ALG_ES384, 0);
    K.p521 = tu_keygen(MCP_ALG_ES512, 0);
    K.ed25519 = tu_keygen(MCP_ALG_EDDSA, 0);
    K.ed448 = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
    return K.ed448 ? 0 : -1;
}

static int group_teardown(void **state)
{
    EVP_PKEY_free(K.rsa);
    EVP_PKEY_free(K.rsa1024);
    EVP_PKEY_free(K.p256);
    EVP_PKEY_free(K.p384);
    EVP_PKEY_free(K.p521);
    EVP_PKEY_free(K.ed25519);
    EVP_PKEY_free(K.ed448);
    return 0;
}

/* mcp_jwk_from_json; returns rc, key and why. */
static int parse(apr_pool_t *p, const json_t *j, int allow_oct, mcp_jwk_t **k, const char **why)
{
    *k = NULL;
    *why = NULL;
    return mcp_jwk_from_json(p, j, allow_oct, k, why);
}

/* Asserts that j is refused with exactly this reason. */
static void assert_refused(apr_pool_t *p, const json_t *j, int allow_oct, const char *reason)
{
    mcp_jwk_t *k;
    const char *why;
    int rc = parse(p, j, allow_oct, &k, &why);
    if (rc != -1)
        fail_msg("JWK %s accepted, expected refusal: %s", mcp_json_compact(p, j), reason);
    assert_non_null(why);
    assert_string_equal(why, reason);
}

static mcp_jwk_t *assert_parsed(apr_pool_t *p, const json_t *j, int allow_oct)
{
    mcp_jwk_t *k;
    const char *why;
    if (parse(p, j, allow_oct, &k, &why) != 0)
        fail_msg("JWK %s refused: %s", mcp_json_compact(p, j), why ? why : "?");
    assert_non_null(k);
    return k;
}

/* base64url of a BIGNUM parameter of pkey (minimal length). */
static json_t *bn_b64(apr_pool_t *p, const EVP_PKEY *pkey, const char *param)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];
    int n;
    if (!EVP_PKEY_get_bn_param(pkey, param, &bn))
        fail_msg("no %s in key", param);
    n = BN_bn2bin(bn, buf);
    BN_free(bn);
    return json_string(mcp_b64url_encode(p, buf, (size_t)n));
}

/* Rewrites the base64url member name of j with fn applied to its bytes. */
static void edit_member(apr_pool_t *p, json_t *j, const char *name,
                        unsigned char *(*fn)(apr_pool_t *, unsigned char *, size_t *))
{
    const char *s = tu_str(j, name);
    size_t len;
    unsigned char *raw = tu_b64dec(p, s, strlen(s), &len);
    raw = fn(p, raw, &len);
    json_object_set_new(j, name, json_string(mcp_b64url_encode(p, raw, len)));
}

static unsigned char *prepend_zero(apr_pool_t *p, unsigned char *raw, size_t *len)
{
    unsigned char *out = apr_palloc(p, *len + 1);
    out[0] = 0;
    memcpy(out + 1, raw, *len);
    (*len)++;
    return out;
}

static unsigned char *drop_first(apr_pool_t *p, unsigned char *raw, size_t *len)
{
    (*len)--;
    return raw + 1;
}

static unsigned char *flip_last_byte(apr_pool_t *p, unsigned char *raw, size_t *len)
{
    raw[*len - 1] ^= 0x01;
    return raw;
}

static unsigned char *flip_mid_byte(apr_pool_t *p, unsigned char *raw, size_t *len)
{
    raw[*len / 2] ^= 0x5a;
    return raw;
}

static void test_rsa2048_ok(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_jwk_t *k = assert_parsed(p, tu_pub_jwk_json(p, K.rsa, "r1", MCP_ALG_RS256, 1), 0);
    assert_int_equal(k->kty, MCP_KTY_RSA);
    assert_int_equal(k->bits, 2048);
    assert_string_equal(k->kid, "r1");
    assert_int_equal(k->alg, MCP_ALG_RS256);
    assert_non_null(k->pkey);
    assert_int_equal(EVP_PKEY_eq(k->pkey, K.rsa), 1);
    assert_true(mcp_jwk_fits_alg(k, MCP_ALG_RS256));
    assert_false(mcp_jwk_fits_alg(k, MCP_ALG_PS256)); /* the JWK alg pins it */

    /* Without a JWK alg it fits every RSA algorithm and nothing else. */
    k = assert_parsed(p, tu_pub_jwk_json(p, K.rsa, NULL, MCP_ALG_RS256, 0), 0);
    assert_null(k->kid);
    assert_int_equal(k->alg, MCP_ALG_UNKNOWN);
    assert_true(mcp_jwk_fits_alg(k, MCP_ALG_RS512));
    assert_true(mcp_jwk_fits_alg(k, MCP_ALG_PS384));
    assert_false(mcp_jwk_fits_alg(k, MCP_ALG_ES256));
    assert_false(mcp_jwk_fits_alg(k, MCP_ALG_HS256));
    assert_false(mcp_jwk_fits_alg(k, MCP_ALG_EDDSA));
}

static void test_rsa1024_rejected(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    assert_refused(p, tu_pub_jwk_json(p, K.rsa1024, "weak", MCP_ALG_RS256, 1), 0, "RSA key shorter than 2048 bits");
    assert_refused(p, tu_pub_jwk_json(p, K.rsa1024, "weak", MCP_ALG_RS256, 0), 0, "RSA key shorter than 2048 bits");
}

/* A modulus with the ROCA fingerprint (test/unit/vectors/roca/roca_gen.py) is
 * refused like a short key, in a JWK and inside a JWKS; a normal 2048-bit
 * key beside it still parses. */
static void test_rsa_roca_fingerprint_rejected(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    json_t *v = tu_vector(p, "roca/rsa2048.json");
    json_t *roca = json_object_get(v, "public_jwk");
    const char *why = NULL;
    mcp_jwks_t *set;
    char *doc;

    assert_non_null(roca);
    assert_refused(p, roca, 0, "RSA key has the ROCA weakness (CVE-2017-15361)");
    assert_refused(p, roca, 1, "RSA key has the ROCA weakness (CVE-2017-15361)");
    assert_parsed(p, tu_pub_jwk_json(p, K.rsa, "normal", MCP_ALG_RS256, 1), 0);

    doc = apr_psprintf(p, "{\"keys\":[%s,%s]}", mcp_json_compact(p, roca),
                       mcp_json_compact(p, tu_pub_jwk_json(p, K.rsa, "normal", MCP_ALG_RS256, 1)));
    assert_int_equal(mcp_jwks_parse(p, doc, strlen(doc), &set, &why), 0);
    assert_int_equal(set->nkeys, 1);
    assert_string_equal(set->keys[0]->kid, "normal");
    assert_int_equal(set->skipped, 1);
    assert_string_equal(set->skip_reason, "RSA key has the ROCA weakness (CVE-2017-15361)");
    doc = apr_psprintf(p, "{\"keys\":[%s]}", mcp_json_compact(p, roca));
    assert_int_equal(mcp_jwks_parse(p, doc, strlen(doc), &set, &why), -1);
}

static void test_rsa_leading_zero_tolerated(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    json_t *j = tu_pub_jwk_json(p, K.rsa, "z", MCP_ALG_RS256, 1);
    mcp_jwk_t *k;
    size_t len;
    const char *n;

    edit_member(p, j, "n", prepend_zero);
    n = tu_str(j, "n");
    tu_b64dec(p, n, strlen(n), &len);
    assert_int_equal(len, 257); /* really carries the extra byte */
    k = assert_parsed(p, j, 0);
    assert_int_equal(k->bits, 2048);
    assert_int_equal(EVP_PKEY_eq(k->pkey, K.rsa), 1);
    /* And the key still verifies what the private key signs. */
    assert_true(tu_verify_token(p, MCP_ALG_RS256, k,
                                tu_sign(p, MCP_ALG_RS256, K.rsa, NULL, 0, "{\"alg\":\"RS256\"}", "{\"x\":1}")));
}

static void test_rsa_bad_members(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    json_t *j;

    j = tu_pub_jwk_json(p, K.rsa, NULL, MCP_ALG_RS256, 1);
    json_object_del(j, "e");
    assert_refused(p, j, 0, "RSA key without valid n/e");

    j = tu_pub_jwk_json(p, K.rsa, NULL, MCP_ALG_RS256, 1);
    json_object_set_new(j, "n", json_integer(12345));
    assert_refused(p, j, 0, "RSA key without valid n/e");

    /* Padded (non-canonical) base64url is not a JWK value. */
    j = tu_pub_jwk_json(p, K.rsa, NULL, MCP_ALG_RS256, 1);
    json_object_set_new(j, "e", json_string("AQAB=="));
    assert_refused(p, j, 0, "RSA key without valid n/e");

    /* e = 1 and even exponents are not RSA public keys. */
    j = tu_pub_jwk_json(p, K.rsa, NULL, MCP_ALG_RS256, 1);
    json_object_set_new(j, "e", json_string("AQ"));
    assert_refused(p, j, 0, "RSA key with bad exponent");
    j = tu_pub_jwk_json(p, K.rsa, NULL, MCP_ALG_RS256, 1);
    json_object_set_new(j, "e", json_string("AQAA"));
    assert_refused(p, j, 0, "RSA key with bad exponent");
}

static void test_ec_curves_ok(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const struct {
        EVP_PKEY *pk;
        mcp_alg alg;
        mcp_crv crv;
        int bits;
    } cases[] = {
        {K.p256, MCP_ALG_ES256, MCP_CRV_P256, 256},
        {K.p384, MCP_ALG_ES384, MCP_CRV_P384, 384},
        {K.p521, MCP_ALG_ES512, MCP_CRV_P521, 521},
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mcp_jwk_t *k = assert_parsed(p, tu_pub_jwk_json(p, cases[i].pk, "e", cases[i].alg, 1), 0);
        assert_int_equal(k->kty, MCP_KTY_EC);
        assert_int_equal(k->crv, cases[i].crv);
        assert_int_equal(k->bits, cases[i].bits);
        assert_int_equal(EVP_PKEY_eq(k->pkey, cases[i].pk), 1);
        assert_true(mcp_jwk_fits_alg(k, cases[i].alg));
        assert_true(tu_verify_token(p, cases[i].alg, k,
                                    tu_sign(p, cases[i].alg, cases[i].pk, NULL, 0,
                                            apr_psprintf(p, "{\"alg\":\"%s\"}", mcp_alg_name(cases[i].alg)), "{}")));
    }
}

static void test_ec_wrong_length_coordinates(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    json_t *j;

    j = tu_pub_jwk_json(p, K.p256, NULL, MCP_ALG_ES256, 1);
    edit_member(p, j, "x", drop_first);
    assert_refused(p, j, 0, "EC key with bad x/y");

    j = tu_pub_jwk_json(p, K.p256, NULL, MCP_ALG_ES256, 1);
    edit_member(p, j, "x", prepend_zero);
    assert_refused(p, j, 0, "EC key with bad x/y");

    j = tu_pub_jwk_json(p, K.p521, NULL, MCP_ALG_ES512, 1);
    edit_member(p, j, "y", drop_first);
    assert_refused(p, j, 0, "EC key with bad x/y");

    /* A P-384 point labelled P-256. */
    j = tu_pub_jwk_json(p, K.p384, NULL, MCP_ALG_ES384, 0);
    json_object_set_new(j, "crv", json_string("P-256"));
    assert_refused(p, j, 0, "EC key with bad x/y");

    j = tu_pub_jwk_json(p, K.p256, NULL, MCP_ALG_ES256, 1);
    json_object_del(j, "y");
    assert_refused(p, j, 0, "EC key with bad x/y");
}

static void test_ec_point_not_on_curve(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    EVP_PKEY *keys[] = {K.p256, K.p384, K.p521};
    mcp_alg algs[] = {MCP_ALG_ES256, MCP_ALG_ES384, MCP_ALG_ES512};
    size_t i;
    for (i = 0; i < 3; i++) {
        json_t *j = tu_pub_jwk_json(p, keys[i], NULL, algs[i], 1);
        edit_member(p, j, "y", flip_last_byte);
        assert_refused(p, j, 0, "EC point is not on the curve");
        j = tu_pub_jwk_json(p, keys[i], NULL, algs[i], 1);
        edit_member(p, j, "x", flip_mid_byte);
        assert_refused(p, j, 0, "EC point is not on the curve");
    }
}

static void test_ec_unsupported_curves(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    json_t *j = tu_pub_jwk_json(p, K.p256, NULL, MCP_ALG_ES256, 0);
    json_object_set_new(j, "crv", json_string("secp256k1"));
    assert_refused(p, j, 0, "EC key with unsupported crv");
    json_object_set_new(j, "crv", json_string("Ed25519"));
    assert_refused(p, j, 0, "EC key with unsupported crv");
    json_object_set_new(j, "crv", json_string("p-256")); /* names are case-sensitive */
    assert_refused(p, j, 0, "EC key with unsupported crv");
    json_object_del(j, "crv");
    assert_refused(p, j, 0, "EC key with unsupported crv");
}

static void test_crv_mismatch_vs_alg(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_jwk_t *k384 = assert_parsed(p, tu_pub_jwk_json(p, K.p384, NULL, MCP_ALG_ES384, 0), 0);
    mcp_jwk_t *k256 = assert_parsed(p, tu_pub_jwk_json(p, K.p256, NULL, MCP_ALG_ES256, 0), 0);
    mcp_jwk_t *k521 = assert_parsed(p, tu_pub_jwk_json(p, K.p521, NULL, MCP_ALG_ES512, 0), 0);

    assert_false(mcp_jwk_fits_alg(k384, MCP_ALG_ES256));
    assert_true(mcp_jwk_fits_alg(k384, MCP_ALG_ES384));
    assert_false(mcp_jwk_fits_alg(k384, MCP_ALG_ES512));
    assert_true(mcp_jwk_fits_alg(k256, MCP_ALG_ES256));
    assert_false(mcp_jwk_fits_alg(k256, MCP_ALG_ES384));
    assert_false(mcp_jwk_fits_alg(k521, MCP_ALG_ES384));
    assert_true(mcp_jwk_fits_alg(k521, MCP_ALG_ES512));
    assert_false(mcp_jwk_fits_alg(k256, MCP_ALG_RS256));
    assert_false(mcp_jwk_fits_alg(k256, MCP_ALG_EDDSA));
    assert_false(mcp_jwk_fits_alg(k256, MCP_ALG_HS256));
    assert_false(mcp_jwk_fits_alg(NULL, MCP_ALG_ES256));
    assert_false(mcp_jwk_fits_alg(k256, MCP_ALG_UNKNOWN));
}

static void test_okp_ed25519_ok(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_jwk_t *k = assert_parsed(p, tu_pub_jwk_json(p, K.ed25519, "ed", MCP_ALG_EDDSA, 1), 0);
    assert_int_equal(k->kty, MCP_KTY_OKP);
    assert_int_equal(k->crv, MCP_CRV_ED25519);
    assert_int_equal(EVP_PKEY_eq(k->pkey, K.ed25519), 1);
    assert_true(mcp_jwk_fits_alg(k, MCP_ALG_EDDSA));
    assert_false(mcp_jwk_fits_alg(k, MCP_ALG_ES256));
    assert_true(tu_verify_token(p, MCP_ALG_EDDSA, k,
                                tu_sign(p, MCP_ALG_EDDSA, K.ed25519, NULL, 0, "{\"alg\":\"EdDSA\"}", "hello")));
}

static void test_okp_bad(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    unsigned char raw[57];
    size_t rawlen = sizeof(raw);
    json_t *j;

    /* A real Ed448 public key: a valid OKP JWK for an unsupported curve. */
    assert_int_equal(EVP_PKEY_get_raw_public_key(K.ed448, raw, &rawlen), 1);
    assert_int_equal(rawlen, 57);
    j = json_pack("{s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed448", "x", mcp_b64url_encode(p, raw, rawlen));
    mcp_json_own(p, j);
    assert_refused(p, j, 0, "OKP key with unsupported crv");
    json_object_set_new(j, "crv", json_string("X25519"));
    json_object_set_new(j, "x", json_string(mcp_b64url_encode(p, raw, 32)));
    assert_refused(p, j, 0, "OKP key with unsupported crv");

    /* Ed25519 with a 31-byte x. */
    j = tu_pub_jwk_json(p, K.ed25519, NULL, MCP_ALG_EDDSA, 1);
    edit_member(p, j, "x", drop_first);
    assert_refused(p, j, 0, "OKP key with bad x");
}

static void test_oct(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    unsigned char *secret = tu_random(p, 32);
    json_t *j = json_pack("{s:s, s:s}", "kty", "oct", "k", mcp_b64url_encode(p, secret, 32));
    mcp_jwk_t *k;

    mcp_json_own(p, j);
    assert_refused(p, j, 0, "oct keys are never taken from a JWKS");
    k = assert_parsed(p, j, 1);
    assert_int_equal(k->kty, MCP_KTY_OCT);
    assert_null(k->pkey);
    assert_int_equal(k->secret_len, 32);
    assert_memory_equal(k->secret, secret, 32);
    assert_true(mcp_jwk_fits_alg(k, MCP_ALG_HS256));
    assert_false(mcp_jwk_fits_alg(k, MCP_ALG_HS384)); /* shorter than the hash */
    assert_false(mcp_jwk_fits_alg(k, MCP_ALG_RS256));

    json_object_set_new(j, "k", json_string(""));
    assert_refused(p, j, 1, "oct key without valid k");
}

static void test_use_enc_rejected(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    json_t *j = tu_pub_jwk_json(p, K.rsa, NULL, MCP_ALG_RS256, 1);
    json_object_set_new(j, "use", json_string("enc"));
    assert_refused(p, j, 0, "JWK use is not sig");
    json_object_set_new(j, "use", json_string("SIG"));
    assert_refused(p, j, 0, "JWK use is not sig");
    json_object_set_new(j, "use", json_true());
    assert_refused(p, j, 0, "JWK use is not sig");
    json_object_del(j, "use"); /* absent use is fine */
    assert_parsed(p, j, 0);
}

static void test_key_ops(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    json_t *j = tu_pub_jwk_json(p, K.p256, NULL, MCP_ALG_ES256, 1);

    json_object_set_new(j, "key_ops", json_pack("[s]", "sign"));
    assert_refused(p, j, 0, "JWK key_ops lacks verify");
    json_object_set_new(j, "key_ops", json_pack("[s, s]", "encrypt", "wrapKey"));
    assert_refused(p, j, 0, "JWK key_ops lacks verify");
    json_object_set_new(j, "key_ops", json_array());
    assert_refused(p, j, 0, "JWK key_ops lacks verify");
    json_object_set_new(j, "key_ops", json_string("verify")); /* must be an array */
    assert_refused(p, j, 0, "JWK key_ops lacks verify");
    json_object_set_new(j, "key_ops", json_pack("[s]", "VERIFY"));
    assert_refused(p, j, 0, "JWK key_ops lacks verify");
    json_object_set_new(j, "key_ops", json_pack("[s, s]", "sign", "verify"));
    assert_parsed(p, j, 0);
}

static void test_unknown_alg_rejected(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *names[] = {"RS1", "none", "rs256", "RS256 ", "ES256K", "RSA-OAEP", "Ed25519", ""};
    size_t i;
    json_t *j = tu_pub_jwk_json(p, K.rsa, NULL, MCP_ALG_RS256, 1);

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        json_object_set_new(j, "alg", json_string(names[i]));
        assert_refused(p, j, 0, "JWK alg is not a known signature algorithm");
    }
    json_object_set_new(j, "alg", json_integer(256));
    assert_refused(p, j, 0, "JWK alg is not a known signature algorithm");
    json_object_set_new(j, "alg", json_null());
    assert_refused(p, j, 0, "JWK alg is not a known signature algorithm");
}

static void test_alg_not_fitting_kty(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    json_t *j;

    j = tu_pub_jwk_json(p, K.rsa, NULL, MCP_ALG_RS256, 1);
    json_object_set_new(j, "alg", json_string("ES256"));
    assert_refused(p, j, 0, "JWK alg does not fit its key type");
    json_object_set_new(j, "alg", json_string("HS256"));
    assert_refused(p, j, 0, "JWK alg does not fit its key type");

    j = tu_pub_jwk_json(p, K.p256, NULL, MCP_ALG_ES256, 1);
    json_object_set_new(j, "alg", json_string("RS256"));
    assert_refused(p, j, 0, "JWK alg does not fit its key type");
    json_object_set_new(j, "alg", json_string("ES384"));
    assert_refused(p, j, 0, "JWK alg does not fit its key type");

    j = tu_pub_jwk_json(p, K.ed25519, NULL, MCP_ALG_EDDSA, 1);
    json_object_set_new(j, "alg", json_string("ES256"));
    assert_refused(p, j, 0, "JWK alg does not fit its key type");

    /* kty names are case-sensitive, and only four are known. */
    j = tu_pub_jwk_json(p, K.rsa, NULL, MCP_ALG_RS256, 1);
    json_object_set_new(j, "kty", json_string("rsa"));
    assert_refused(p, j, 0, "JWK kty is not supported");
    json_object_del(j, "kty");
    assert_refused(p, j, 0, "JWK without kty");
    assert_refused(p, mcp_json_own(p, json_pack("[s]", "RSA")), 0, "JWK is not a JSON object");
}

static void test_kid_not_string_rejected(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    json_t *j = tu_pub_jwk_json(p, K.rsa, NULL, MCP_ALG_RS256, 1);
    json_object_set_new(j, "kid", json_integer(5));
    assert_refused(p, j, 0, "JWK kid is not a string");
    json_object_set_new(j, "kid", json_null());
    assert_refused(p, j, 0, "JWK kid is not a string");
    json_object_set_new(j, "kid", json_pack("[s]", "k"));
    assert_refused(p, j, 0, "JWK kid is not a string");
    json_object_set_new(j, "kid", json_string(""));
    assert_string_equal(assert_parsed(p, j, 0)->kid, "");
}

/* A JWK with the private members of an RSA key. */
static json_t *rsa_private_jwk(apr_pool_t *p, EVP_PKEY *pk, const char *kid)
{
    json_t *j = tu_pub_jwk_json(p, pk, kid, MCP_ALG_RS256, 1);
    json_object_set_new(j, "d", bn_b64(p, pk, OSSL_PKEY_PARAM_RSA_D));
    json_object_set_new(j, "p", bn_b64(p, pk, OSSL_PKEY_PARAM_RSA_FACTOR1));
    json_object_set_new(j, "q", bn_b64(p, pk, OSSL_PKEY_PARAM_RSA_FACTOR2));
    json_object_set_new(j, "dp", bn_b64(p, pk, OSSL_PKEY_PARAM_RSA_EXPONENT1));
    json_object_set_new(j, "dq", bn_b64(p, pk, OSSL_PKEY_PARAM_RSA_EXPONENT2));
    json_object_set_new(j, "qi", bn_b64(p, pk, OSSL_PKEY_PARAM_RSA_COEFFICIENT1));
    return j;
}

static void test_private_members_ignored(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    BIGNUM *bn = NULL;
    unsigned char raw[64];
    size_t rawlen = sizeof(raw);
    json_t *j;
    mcp_jwk_t *k;

    /* RSA: d, p, q, dp, dq, qi present. */
    j = rsa_private_jwk(p, K.rsa, "priv");
    k = assert_parsed(p, j, 0);
    assert_int_equal(EVP_PKEY_eq(k->pkey, K.rsa), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_D, &bn), 0); /* public only */
    BN_free(bn);
    bn = NULL;
    assert_true(tu_verify_token(p, MCP_ALG_RS256, k,
                                tu_sign(p, MCP_ALG_RS256, K.rsa, NULL, 0, "{\"alg\":\"RS256\"}", "signed")));
    /* Private members are not even looked at: garbage in d changes nothing. */
    json_object_set_new(j, "d", json_string("not base64url!"));
    json_object_set_new(j, "p", json_integer(3));
    k = assert_parsed(p, j, 0);
    assert_int_equal(EVP_PKEY_eq(k->pkey, K.rsa), 1);

    /* EC with d. */
    j = tu_pub_jwk_json(p, K.p256, "ecpriv", MCP_ALG_ES256, 1);
    json_object_set_new(j, "d", bn_b64(p, K.p256, OSSL_PKEY_PARAM_PRIV_KEY));
    k = assert_parsed(p, j, 0);
    assert_int_equal(EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_PRIV_KEY, &bn), 0);
    BN_free(bn);
    bn = NULL;
    assert_true(tu_verify_token(p, MCP_ALG_ES256, k,
                                tu_sign(p, MCP_ALG_ES256, K.p256, NULL, 0, "{\"alg\":\"ES256\"}", "signed")));

    /* OKP with d. */
    j = tu_pub_jwk_json(p, K.ed25519, "edpriv", MCP_ALG_EDDSA, 1);
    assert_int_equal(EVP_PKEY_get_raw_private_key(K.ed25519, raw, &rawlen), 1);
    json_object_set_new(j, "d", json_string(mcp_b64url_encode(p, raw, rawlen)));
    k = assert_parsed(p, j, 0);
    rawlen = sizeof(raw);
    assert_int_equal(EVP_PKEY_get_raw_private_key(k->pkey, raw, &rawlen), 0);
    assert_true(tu_verify_token(p, MCP_ALG_EDDSA, k,
                                tu_sign(p, MCP_ALG_EDDSA, K.ed25519, NULL, 0, "{\"alg\":\"EdDSA\"}", "signed")));
}

static const char *compact(apr_pool_t *p, EVP_PKEY *pk, const char *kid, mcp_alg alg)
{
    return mcp_json_compact(p, tu_pub_jwk_json(p, pk, kid, alg, 1));
}

static void test_jwks_skips_unusable(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_jwks_t *set = NULL;
    const char *why = NULL;
    const char *doc =
        apr_psprintf(p,
                     "{\"keys\":[%s,%s,{\"kty\":\"oct\",\"k\":\"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\"},"
                     "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"},%s,\"not a key\",42,"
                     "{\"kty\":\"RSA\",\"use\":\"enc\"}],\"other\":true}",
                     compact(p, K.rsa, "good-rsa", MCP_ALG_RS256), compact(p, K.rsa1024, "weak", MCP_ALG_RS256),
                     compact(p, K.ed25519, "good-ed", MCP_ALG_EDDSA));

    assert_int_equal(mcp_jwks_parse(p, doc, strlen(doc), &set, &why), 0);
    assert_non_null(set);
    assert_int_equal(set->nkeys, 2);
    assert_int_equal(set->skipped, 6);
    assert_string_equal(set->keys[0]->kid, "good-rsa");
    assert_string_equal(set->keys[1]->kid, "good-ed");
    assert_int_equal(set->keys[1]->kty, MCP_KTY_OKP);
    assert_non_null(set->skip_reason);
    assert_string_equal(set->skip_reason, "RSA key shorter than 2048 bits");
}

static void test_jwks_no_usable_key(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_jwks_t *set = NULL;
    const char *why = NULL;
    const char *doc = apr_psprintf(p, "{\"keys\":[%s]}", compact(p, K.rsa1024, "weak", MCP_ALG_RS256));

    assert_int_equal(mcp_jwks_parse(p, doc, strlen(doc), &set, &why), -1);
    assert_null(set);
    assert_non_null(why);
    assert_string_equal(why, "RSA key shorter than 2048 bits");

    why = NULL;
    doc = "{\"keys\":[]}";
    assert_int_equal(mcp_jwks_parse(p, doc, strlen(doc), &set, &why), -1);
    assert_string_equal(why, "JWKS has no keys");

    why = NULL;
    doc = "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\"}]}";
    assert_int_equal(mcp_jwks_parse(p, doc, strlen(doc), &set, &why), -1);
    assert_string_equal(why, "oct keys are never taken from a JWKS");
}

static void test_jwks_not_object(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *not_obj[] = {"[]", "\"keys\"", "nope", "", "null", "{\"keys\":[]", "42"};
    const char *no_keys[] = {"{}", "{\"Keys\":[]}", "{\"keys\":{}}", "{\"keys\":null}", "{\"keys\":\"[]\"}"};
    size_t i;
    for (i = 0; i < sizeof(not_obj) / sizeof(not_obj[0]); i++) {
        mcp_jwks_t *set = NULL;
        const char *why = NULL;
        assert_int_equal(mcp_jwks_parse(p, not_obj[i], strlen(not_obj[i]), &set, &why), -1);
        assert_string_equal(why, "JWKS is not a JSON object");
    }
    for (i = 0; i < sizeof(no_keys) / sizeof(no_keys[0]); i++) {
        mcp_jwks_t *set = NULL;
        const char *why = NULL;
        assert_int_equal(mcp_jwks_parse(p, no_keys[i], strlen(no_keys[i]), &set, &why), -1);
        assert_string_equal(why, "JWKS has no keys array");
    }
}

static void test_jwks_duplicate_members(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *key = compact(p, K.rsa, "a", MCP_ALG_RS256);
    mcp_jwks_t *set = NULL;
    const char *why = NULL;
    const char *ok = apr_psprintf(p, "{\"keys\":[%s]}", key);
    const char *dup_keys = apr_psprintf(p, "{\"keys\":[%s],\"keys\":[]}", key);
    /* A duplicate inside one key: the first "kty" says RSA, the second EC. */
    const char *dup_inner = apr_psprintf(p, "{\"keys\":[{\"kty\":\"EC\",%s]}", key + 1);

    assert_int_equal(mcp_jwks_parse(p, ok, strlen(ok), &set, &why), 0); /* control */
    set = NULL;
    assert_int_equal(mcp_jwks_parse(p, dup_keys, strlen(dup_keys), &set, &why), -1);
    assert_null(set);
    assert_int_equal(mcp_jwks_parse(p, dup_inner, strlen(dup_inner), &set, &why), -1);
    assert_null(set);
}

static void test_jwk_from_secret(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    unsigned char *s = tu_random(p, 48);
    mcp_jwk_t *k = mcp_jwk_from_secret(p, s, 48);
    assert_int_equal(k->kty, MCP_KTY_OCT);
    assert_int_equal(k->secret_len, 48);
    assert_true(mcp_jwk_fits_alg(k, MCP_ALG_HS256));
    assert_true(mcp_jwk_fits_alg(k, MCP_ALG_HS384));
    assert_false(mcp_jwk_fits_alg(k, MCP_ALG_HS512));
    assert_false(mcp_jwk_fits_alg(k, MCP_ALG_RS256));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_rsa2048_ok),
        TU_TEST(test_rsa1024_rejected),
        TU_TEST(test_rsa_roca_fingerprint_rejected),
        TU_TEST(test_rsa_leading_zero_tolerated),
        TU_TEST(test_rsa_bad_members),
        TU_TEST(test_ec_curves_ok),
        TU_TEST(test_ec_wrong_length_coordinates),
        TU_TEST(test_ec_point_not_on_curve),
        TU_TEST(test_ec_unsupported_curves),
        TU_TEST(test_crv_mismatch_vs_alg),
        TU_TEST(test_okp_ed25519_ok),
        TU_TEST(test_okp_bad),
        TU_TEST(test_oct),
        TU_TEST(test_use_enc_rejected),
        TU_TEST(test_key_ops),
        TU_TEST(test_unknown_alg_rejected),
        TU_TEST(test_alg_not_fitting_kty),
        TU_TEST(test_kid_not_string_rejected),
        TU_TEST(test_private_members_ignored),
        TU_TEST(test_jwks_skips_unusable),
        TU_TEST(test_jwks_no_usable_key),
        TU_TEST(test_jwks_not_object),
        TU_TEST(test_jwks_duplicate_members),
        TU_TEST(test_jwk_from_secret),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("jwk", tests, group_setup, group_teardown);
}
