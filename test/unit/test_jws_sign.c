/* SPDX-License-Identifier: Apache-2.0 */
/* jws_sign.c, the signing half (CLI and tests): key generation per
 * algorithm, the public JWK (never a private member), and the compact JWS
 * -- ECDSA in the raw R||S form of RFC 7518 3.4, HMAC only with a secret.
 * Verification of what it signs, for every algorithm, is in
 * test_jws_verify.c. */
#include "test_util.h"

static void test_keygen_per_alg(void **state)
{
    EVP_PKEY *k;
    (void)state;
    assert_null(mcp_keygen(MCP_ALG_HS256, 0));
    k = mcp_keygen(MCP_ALG_ES384, 0);
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_get_bits(k), 384);
    EVP_PKEY_free(k);
    k = mcp_keygen(MCP_ALG_RS256, 0);
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_get_bits(k), 2048);
    EVP_PKEY_free(k);
}

static void test_public_jwk_has_no_private_member(void **state)
{
    EVP_PKEY *ec = mcp_keygen(MCP_ALG_ES256, 0), *rsa = mcp_keygen(MCP_ALG_PS256, 0);
    json_t *j;
    (void)state;

    j = mcp_jwk_public(ec, "k1", MCP_ALG_ES256);
    assert_string_equal(mcp_json_str(j, "kty"), "EC");
    assert_string_equal(mcp_json_str(j, "crv"), "P-256");
    assert_string_equal(mcp_json_str(j, "kid"), "k1");
    assert_string_equal(mcp_json_str(j, "alg"), "ES256");
    assert_string_equal(mcp_json_str(j, "use"), "sig");
    assert_null(json_object_get(j, "d"));
    json_decref(j);
    j = mcp_jwk_public(rsa, "k2", MCP_ALG_PS256);
    assert_string_equal(mcp_json_str(j, "kty"), "RSA");
    assert_non_null(mcp_json_str(j, "n"));
    assert_null(json_object_get(j, "d"));
    assert_null(json_object_get(j, "p"));
    json_decref(j);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
}

static void test_ecdsa_signature_is_raw_r_s(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    EVP_PKEY *k = tu_own_pkey(p, mcp_keygen(MCP_ALG_ES512, 0));
    const char *tok = tu_sign(p, MCP_ALG_ES512, k, NULL, 0, "{\"alg\":\"ES512\"}", "{}");
    const char *sig = strrchr(tok, '.') + 1;
    unsigned char *raw;
    size_t len;

    assert_int_equal(mcp_b64url_decode(p, sig, strlen(sig), &raw, &len), 0);
    assert_int_equal(len, 2 * 66); /* two P-521 coordinates, not DER */
}

static void test_hmac_needs_a_secret(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    json_t *h = tu_json(p, "{\"alg\":\"HS256\"}");
    const char *err = NULL;

    assert_null(mcp_jws_sign(p, MCP_ALG_HS256, NULL, NULL, 0, h, "{}", 2, &err));
    assert_non_null(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_keygen_per_alg),
        TU_TEST(test_public_jwk_has_no_private_member),
        TU_TEST(test_ecdsa_signature_is_raw_r_s),
        TU_TEST(test_hmac_needs_a_secret),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("jws_sign", tests, NULL, NULL);
}
