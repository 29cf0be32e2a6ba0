/* SPDX-License-Identifier: Apache-2.0 */
/* http_fetch.c, the parts that need no IdP (the transfers themselves are
 * exercised against real servers by test_introspect.c and the integration
 * suite): form encoding, the lease and wait arithmetic every caller of the
 * IdP shares, and local files with the size rule. */
#include "test_util.h"

#include <unistd.h>

#include "http_fetch.h"

static void test_form_encode(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    assert_string_equal(mcp_form_encode(p, "AZaz09-._~"), "AZaz09-._~");
    assert_string_equal(mcp_form_encode(p, "a b+c&d=e/f"), "a%20b%2Bc%26d%3De%2Ff");
    assert_string_equal(mcp_form_encode(p, "\xc3\xa9\x01"), "%C3%A9%01");
    assert_string_equal(mcp_form_encode(p, ""), "");
}

/* A mark "calling the IdP for everyone" stands for the calls it covers,
 * each bounded by MCPAuthHTTPTimeout, plus 2 s; a wait ends one timeout
 * from its start. */
static void test_lease_and_wait_end(void **state)
{
    mcp_http_opts_t o = {5, 1, NULL, 1024};
    (void)state;
    assert_true(mcp_http_lease(&o, 1) == apr_time_from_sec(7));
    assert_true(mcp_http_lease(&o, 3) == apr_time_from_sec(17)); /* discovery: two URLs, then the JWKS */
    o.timeout_s = 1;
    assert_true(mcp_http_lease(&o, 3) == apr_time_from_sec(5));
    assert_true(mcp_http_wait_end(&o, apr_time_from_sec(100)) == apr_time_from_sec(101));
}

static void test_file_read_size_rule(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *path = tu_fmt(p, "/tmp/mcp-unit-fetch-%d.json", (int)getpid());
    mcp_http_resp_t resp;
    const char *err = NULL;
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs("{\"keys\":[]}", f);
    fclose(f);
    assert_int_equal(mcp_file_read(p, path, 11, &resp, &err), 0);
    assert_int_equal(resp.len, 11);
    assert_string_equal(resp.body, "{\"keys\":[]}");
    assert_int_equal(mcp_file_read(p, path, 10, &resp, &err), -1);
    assert_true(tu_contains(err, "larger than 10 bytes"));
    unlink(path);
    err = NULL;
    assert_int_equal(mcp_file_read(p, path, 10, &resp, &err), -1);
    assert_non_null(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_form_encode),
        TU_TEST(test_lease_and_wait_end),
        TU_TEST(test_file_read_size_rule),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("http_fetch", tests, NULL, NULL);
}
