/* SPDX-License-Identifier: Apache-2.0 */
/* metadata.c: the RFC 9728 protected resource metadata document -- the
 * resource, each authorization server once, scopes only when there are
 * some, bearer tokens in the header only. */
#include "test_util.h"

#include "metadata.h"

static void test_document(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *const issuers[] = {"https://a.example", "https://b.example", "https://a.example"};
    const char *const scopes[] = {"mcp:read", "mcp:write"};
    const char *text = mcp_metadata_document(p, "https://mcp.example/mcp", issuers, 3, scopes, 2);

    assert_string_equal(text, "{\"resource\":\"https://mcp.example/mcp\","
                              "\"authorization_servers\":[\"https://a.example\",\"https://b.example\"],"
                              "\"scopes_supported\":[\"mcp:read\",\"mcp:write\"],"
                              "\"bearer_methods_supported\":[\"header\"]}\n");
}

static void test_no_scopes_no_member(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *const issuers[] = {"https://a.example"};
    const char *text = mcp_metadata_document(p, "https://mcp.example/mcp", issuers, 1, NULL, 0);
    json_t *doc = mcp_json_parse(p, text, strlen(text));

    assert_non_null(doc);
    assert_null(json_object_get(doc, "scopes_supported"));
    assert_int_equal(json_array_size(json_object_get(doc, "authorization_servers")), 1);
    /* A resource with quotes stays valid JSON (jansson escapes it). */
    text = mcp_metadata_document(p, "https://mcp.example/\"x\"", issuers, 1, NULL, 0);
    doc = mcp_json_parse(p, text, strlen(text));
    assert_string_equal(mcp_json_str(doc, "resource"), "https://mcp.example/\"x\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_document),
        TU_TEST(test_no_scopes_no_member),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("metadata", tests, NULL, NULL);
}
