/* SPDX-License-Identifier: Apache-2.0 */
/* defaults.h: the defaults written out for administrators (help strings,
 * README) are the ones the code applies. */
#include "test_util.h"

#include "defaults.h"
#include "jose_alg.h"

/* MCPAuthAlgorithms: the names in MCP_DEFAULT_ALGORITHMS are exactly the
 * algorithms of MCP_ALG_MASK_DEFAULT, which the policy builder applies. */
static void test_default_algorithm_names_are_the_default_mask(void **state)
{
    char names[] = MCP_DEFAULT_ALGORITHMS;
    char *name, *save = NULL;
    unsigned mask = 0;
    (void)state;

    for (name = apr_strtok(names, " ", &save); name; name = apr_strtok(NULL, " ", &save)) {
        mcp_alg alg = mcp_alg_from_name(name);
        assert_int_not_equal(alg, MCP_ALG_UNKNOWN);
        assert_false(mask & MCP_ALG_BIT(alg)); /* each once */
        mask |= MCP_ALG_BIT(alg);
    }
    assert_int_equal(mask, MCP_ALG_MASK_DEFAULT);
    assert_int_equal(mask & MCP_ALG_MASK_HMAC, 0);
}

/* Help strings are built by stringizing: the text is the value. */
static void test_stringized_defaults(void **state)
{
    (void)state;
    assert_string_equal(MCP_STR(MCP_DEFAULT_CLOCK_SKEW), "30");
    assert_int_equal(atoi(MCP_STR(MCP_DEFAULT_JWKS_MAX_SIZE)), MCP_DEFAULT_JWKS_MAX_SIZE);
    assert_int_equal(atoi(MCP_STR(MCP_DEFAULT_CACHE_ENTRIES)), MCP_DEFAULT_CACHE_ENTRIES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_algorithm_names_are_the_default_mask),
        cmocka_unit_test(test_stringized_defaults),
    };
    tu_global_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
