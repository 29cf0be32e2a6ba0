/* SPDX-License-Identifier: Apache-2.0 */
/* stopping.c: the process-wide "stopping" deadline. One process, one
 * story, told in order: not stopping; a graceful stop holds for its grace
 * and then says stopping unless the server is restarting gracefully; a
 * hard stop ends the exception and cannot be undone. */
#include "test_util.h"

#include "stopping.h"

static int restarting_answer;

static int restarting(void)
{
    return restarting_answer;
}

static void test_graceful_then_hard(void **state)
{
    (void)state;
    assert_false(mcp_stopping());

    restarting_answer = 0;
    mcp_stopping_set_graceful(apr_time_from_sec(1), restarting);
    assert_false(mcp_stopping()); /* within the grace */
    apr_sleep(apr_time_from_msec(1200));
    assert_true(mcp_stopping());
    /* A new generation took over: nobody will SIGKILL us, serve on. */
    restarting_answer = 1;
    assert_false(mcp_stopping());
    /* A later, longer grace never moves the deadline back. */
    restarting_answer = 0;
    mcp_stopping_set_graceful(apr_time_from_sec(3600), restarting);
    assert_true(mcp_stopping());
    /* A hard stop: stopping whatever the restart says. */
    restarting_answer = 1;
    mcp_stopping_set();
    assert_true(mcp_stopping());
    mcp_stopping_set();
    assert_true(mcp_stopping());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_graceful_then_hard),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("stopping", tests, NULL, NULL);
}
