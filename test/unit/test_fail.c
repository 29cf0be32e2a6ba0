/* SPDX-License-Identifier: Apache-2.0 */
/* fail.c: the failure value, log lines stamped with the file and line of
 * the engine code that wrote them (the glue hands them to httpd for
 * ErrorLogFormat %F), and printable copies for log lines. */
#include "test_util.h"

typedef struct {
    const char *file, *msg;
    int line, level, calls;
} seen_t;

static void remember(void *ctx, const char *file, int line, int level, const char *msg)
{
    seen_t *s = ctx;
    s->file = file;
    s->line = line;
    s->level = level;
    s->msg = msg;
    s->calls++;
}

static void test_fail_fills_and_returns_minus_one(void **state)
{
    mcp_fail_t f = {MCP_OK, NULL, NULL};
    (void)state;
    assert_int_equal(mcp_fail(&f, MCP_FAIL_INVALID_TOKEN, "Bad", "detail"), -1);
    assert_int_equal(f.kind, MCP_FAIL_INVALID_TOKEN);
    assert_string_equal(f.reason, "Bad");
    assert_string_equal(f.detail, "detail");
    assert_int_equal(mcp_fail(NULL, MCP_FAIL_CONFIG, "x", NULL), -1);
}

static void test_logf_names_the_callers_file_and_line(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    seen_t s = {0};
    mcp_log_t log = {remember, &s};
    int here;

    here = __LINE__ + 1;
    mcp_logf(&log, p, MCP_LOG_WARNING, "%d keys, %s", 3, "one skipped");
    assert_int_equal(s.calls, 1);
    assert_string_equal(s.file, __FILE__);
    assert_int_equal(s.line, here);
    assert_int_equal(s.level, MCP_LOG_WARNING);
    assert_string_equal(s.msg, "3 keys, one skipped");
    /* No logger, or one without a function: dropped, no crash. */
    mcp_logf(NULL, p, MCP_LOG_ERR, "dropped");
    log.fn = NULL;
    mcp_logf(&log, p, MCP_LOG_ERR, "dropped");
    assert_int_equal(s.calls, 1);
}

static void test_printable(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    assert_string_equal(mcp_printable(p, NULL, 10), "(none)");
    assert_string_equal(mcp_printable(p, "plain", 10), "plain");
    assert_string_equal(mcp_printable(p, "a\"b\\c\r\n\xc3", 20), "a\\x22b\\x5cc\\x0d\\x0a\\xc3");
    assert_string_equal(mcp_printable(p, "abcdef", 3), "abc...");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_fail_fills_and_returns_minus_one),
        TU_TEST(test_logf_names_the_callers_file_and_line),
        TU_TEST(test_printable),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("fail", tests, NULL, NULL);
}
