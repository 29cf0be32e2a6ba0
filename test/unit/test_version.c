/* SPDX-License-Identifier: Apache-2.0 */
/* version.c: the line names the program, MCP_AUTH_VERSION and the versions
 * of the libraries loaded in this process (not the headers built with). */
#include "test_util.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "version.h"

static void test_line_names_program_version_and_loaded_libraries(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *line = mcp_version_line(p, "mod_mcp_auth");
    const curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);
    char want[512];

    snprintf(want, sizeof(want), "mod_mcp_auth/%s (%s, libcurl/%s, jansson/%s)", MCP_AUTH_VERSION,
             OpenSSL_version(OPENSSL_VERSION), curl->version, jansson_version_str());
    assert_string_equal(line, want);
}

static void test_version_is_three_numbers(void **state)
{
    unsigned a, b, c;
    char end;
    (void)state;
    assert_int_equal(sscanf(MCP_AUTH_VERSION, "%u.%u.%u%c", &a, &b, &c, &end), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_line_names_program_version_and_loaded_libraries),
        TU_TEST(test_version_is_three_numbers),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("version", tests, NULL, NULL);
}
