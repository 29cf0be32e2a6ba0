/* SPDX-License-Identifier: Apache-2.0 */
/* log_limit: the first refusal of each reason per interval is logged, the
 * rest counted and reported once the interval is over; counts never lost. */
#include "test_util.h"

#include "log_limit.h"

#define SEC APR_USEC_PER_SEC
#define T0 ((apr_time_t)1000 * SEC)

static int admit(mcp_log_limit_t *t, const char *reason, int level, apr_time_t now, mcp_log_summary_t *due, int *n_due)
{
    return mcp_log_limit_admit(t, reason, level, now, due, MCP_LOG_LIMIT_KINDS, n_due);
}

static void test_first_per_interval_then_summary(void **state)
{
    mcp_log_limit_t t;
    mcp_log_summary_t due[MCP_LOG_LIMIT_KINDS];
    int n, i;
    (void)state;

    mcp_log_limit_init(&t, SEC);
    assert_int_equal(admit(&t, "Malformed token", MCP_LOG_WARNING, T0, due, &n), 1);
    assert_int_equal(n, 0);
    for (i = 1; i < 1000; i++)
        assert_int_equal(admit(&t, "Malformed token", MCP_LOG_WARNING, T0 + i * 500, due, &n), 0);
    /* A different reason in the same interval keeps its first line. */
    assert_int_equal(admit(&t, "Token expired", MCP_LOG_WARNING, T0 + SEC / 2, due, &n), 1);
    assert_int_equal(admit(&t, "Token expired", MCP_LOG_WARNING, T0 + SEC / 2 + 1, due, &n), 0);
    /* Both intervals are over: their summaries come first, then a new line. */
    assert_int_equal(admit(&t, "Malformed token", MCP_LOG_WARNING, T0 + 2 * SEC, due, &n), 1);
    assert_int_equal(n, 2);
    assert_string_equal(due[0].reason, "Malformed token");
    assert_int_equal(due[0].count, 999);
    assert_int_equal(due[0].span, 2 * SEC);
    assert_int_equal(due[0].level, MCP_LOG_WARNING);
    assert_string_equal(due[1].reason, "Token expired");
    assert_int_equal(due[1].count, 1);
    /* Reported once: the next one of the new interval is only counted. */
    assert_int_equal(admit(&t, "Malformed token", MCP_LOG_WARNING, T0 + 2 * SEC + 1, due, &n), 0);
    assert_int_equal(n, 0);
    {
        mcp_log_kind_t k[4];
        assert_int_equal(mcp_log_limit_snapshot(&t, k, 4), 2);
        assert_string_equal(k[0].reason, "Malformed token");
        assert_int_equal(k[0].total, 1002);
        assert_int_equal(k[0].suppressed, 1000);
        assert_int_equal(k[1].total, 2);
        assert_int_equal(k[1].suppressed, 1);
    }
    /* Child exit: whatever is pending, interval over or not. */
    assert_int_equal(mcp_log_limit_flush(&t, T0 + 2 * SEC + 2, due, MCP_LOG_LIMIT_KINDS), 1);
    assert_int_equal(due[0].count, 1);
    assert_int_equal(mcp_log_limit_flush(&t, T0 + 2 * SEC + 3, due, MCP_LOG_LIMIT_KINDS), 0);
}

static void test_less_severe_lines_are_counted_not_held(void **state)
{
    mcp_log_limit_t t;
    mcp_log_summary_t due[MCP_LOG_LIMIT_KINDS];
    mcp_log_kind_t k[1];
    int n, i;
    (void)state;

    mcp_log_limit_init(&t, SEC);
    for (i = 0; i < 10; i++)
        assert_int_equal(admit(&t, "No bearer token", MCP_LOG_DEBUG, T0 + i, due, &n), 1);
    assert_int_equal(mcp_log_limit_snapshot(&t, k, 1), 1);
    assert_int_equal(k[0].total, 10);
    assert_int_equal(k[0].suppressed, 0);
    /* Errors are limited like warnings. */
    assert_int_equal(admit(&t, "Introspection failed", MCP_LOG_ERR, T0, due, &n), 1);
    assert_int_equal(admit(&t, "Introspection failed", MCP_LOG_ERR, T0 + 1, due, &n), 0);
}

static void test_interval_zero_logs_everything(void **state)
{
    mcp_log_limit_t t;
    mcp_log_summary_t due[MCP_LOG_LIMIT_KINDS];
    int n, i;
    (void)state;

    mcp_log_limit_init(&t, 0);
    for (i = 0; i < 100; i++) {
        assert_int_equal(admit(&t, "Invalid signature", MCP_LOG_WARNING, T0, due, &n), 1);
        assert_int_equal(n, 0);
    }
}

static void test_full_table_shares_the_last_slot(void **state)
{
    mcp_log_limit_t t;
    mcp_log_summary_t due[MCP_LOG_LIMIT_KINDS];
    mcp_log_kind_t k[MCP_LOG_LIMIT_KINDS];
    char reason[32];
    int n, i;
    (void)state;

    mcp_log_limit_init(&t, SEC);
    for (i = 0; i < MCP_LOG_LIMIT_KINDS + 10; i++) {
        snprintf(reason, sizeof(reason), "reason %d", i);
        admit(&t, reason, MCP_LOG_WARNING, T0, due, &n);
    }
    assert_int_equal(mcp_log_limit_snapshot(&t, k, MCP_LOG_LIMIT_KINDS), MCP_LOG_LIMIT_KINDS);
    assert_string_equal(k[MCP_LOG_LIMIT_KINDS - 1].reason, MCP_LOG_LIMIT_OTHER);
    assert_int_equal(k[MCP_LOG_LIMIT_KINDS - 1].total, 11);
    /* A reason longer than a slot is cut, not overflowed. */
    mcp_log_limit_init(&t, SEC);
    memset(due, 0, sizeof(due));
    {
        char longer[200];
        memset(longer, 'x', sizeof(longer) - 1);
        longer[sizeof(longer) - 1] = '\0';
        assert_int_equal(admit(&t, longer, MCP_LOG_WARNING, T0, due, &n), 1);
        assert_int_equal(admit(&t, longer, MCP_LOG_WARNING, T0 + 1, due, &n), 0);
        assert_int_equal(mcp_log_limit_snapshot(&t, k, 1), 1);
        assert_int_equal(strlen(k[0].reason), MCP_LOG_LIMIT_REASON - 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_per_interval_then_summary),
        cmocka_unit_test(test_less_severe_lines_are_counted_not_held),
        cmocka_unit_test(test_interval_zero_logs_everything),
        cmocka_unit_test(test_full_table_shares_the_last_slot),
    };
    tu_global_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
