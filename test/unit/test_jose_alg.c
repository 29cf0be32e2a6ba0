/* SPDX-License-Identifier: Apache-2.0 */
/* jose_alg.c: the table of JWS algorithms -- exact names both ways, the
 * key type, curve and sizes each algorithm needs. */
#include "test_util.h"

static void test_names_round_trip(void **state)
{
    int a;
    (void)state;
    for (a = MCP_ALG_UNKNOWN + 1; a < MCP_ALG_COUNT; a++) {
        const char *name = mcp_alg_name((mcp_alg)a);
        assert_non_null(name);
        assert_int_equal(mcp_alg_from_name(name), a);
    }
    /* Exact and case-sensitive; "none" is no algorithm here. */
    assert_int_equal(mcp_alg_from_name("rs256"), MCP_ALG_UNKNOWN);
    assert_int_equal(mcp_alg_from_name("RS256 "), MCP_ALG_UNKNOWN);
    assert_int_equal(mcp_alg_from_name("none"), MCP_ALG_UNKNOWN);
    assert_int_equal(mcp_alg_from_name(""), MCP_ALG_UNKNOWN);
}

static void test_what_each_needs(void **state)
{
    (void)state;
    assert_int_equal(mcp_alg_kty(MCP_ALG_RS256), MCP_KTY_RSA);
    assert_int_equal(mcp_alg_kty(MCP_ALG_PS512), MCP_KTY_RSA);
    assert_int_equal(mcp_alg_kty(MCP_ALG_ES384), MCP_KTY_EC);
    assert_int_equal(mcp_alg_kty(MCP_ALG_EDDSA), MCP_KTY_OKP);
    assert_int_equal(mcp_alg_kty(MCP_ALG_HS256), MCP_KTY_OCT);
    assert_int_equal(mcp_alg_crv(MCP_ALG_ES256), MCP_CRV_P256);
    assert_int_equal(mcp_alg_crv(MCP_ALG_ES512), MCP_CRV_P521);
    assert_int_equal(mcp_alg_crv(MCP_ALG_EDDSA), MCP_CRV_ED25519);
    assert_int_equal(mcp_alg_crv(MCP_ALG_RS256), MCP_CRV_NONE);
    assert_int_equal(mcp_alg_hash_len(MCP_ALG_HS256), 32);
    assert_int_equal(mcp_alg_hash_len(MCP_ALG_HS384), 48);
    assert_int_equal(mcp_alg_hash_len(MCP_ALG_ES512), 64);
    assert_null(mcp_alg_md(MCP_ALG_EDDSA));
    assert_non_null(mcp_alg_md(MCP_ALG_PS384));
    assert_int_equal(mcp_crv_coord_len(MCP_CRV_P256), 32);
    assert_int_equal(mcp_crv_coord_len(MCP_CRV_P384), 48);
    assert_int_equal(mcp_crv_coord_len(MCP_CRV_P521), 66);
    assert_int_equal(mcp_crv_from_name(mcp_crv_name(MCP_CRV_P384)), MCP_CRV_P384);
    assert_int_equal(mcp_crv_from_name("p-256"), MCP_CRV_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_names_round_trip),
        TU_TEST(test_what_each_needs),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("jose_alg", tests, NULL, NULL);
}
