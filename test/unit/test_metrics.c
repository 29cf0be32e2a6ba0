/* SPDX-License-Identifier: Apache-2.0 */
/* metrics.c: counters add up; an out-of-range id changes nothing. */
#include "test_util.h"

#include "metrics.h"

static void test_counter_adds_up(void **state)
{
    uint64_t before = mcp_metric_get(MCP_M_CACHE_MISS);
    (void)state;
    mcp_metric_add(MCP_M_CACHE_MISS, 1);
    mcp_metric_add(MCP_M_CACHE_MISS, 2);
    assert_int_equal(mcp_metric_get(MCP_M_CACHE_MISS), before + 3);
    assert_int_equal(mcp_metric_get(MCP_M_CACHE_L1_HIT), 0);
}

static void test_out_of_range_id_is_ignored(void **state)
{
    (void)state;
    mcp_metric_add(MCP_M_COUNT, 5);
    assert_int_equal(mcp_metric_get(MCP_M_COUNT), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_counter_adds_up),
        TU_TEST(test_out_of_range_id_is_ignored),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
