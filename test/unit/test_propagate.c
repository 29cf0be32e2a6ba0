/* SPDX-License-Identifier: Apache-2.0 */
/* propagate.c: claim values as header and environment text (never a
 * control character), environment names, and the scrubbing of client
 * headers that could pose as the identity (case and '-'/'_' variants). */
#include "test_util.h"

#include <apr_tables.h>

#include "propagate.h"

static const char *text_of(apr_pool_t *p, const char *json, int *unsafe)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    const char *t;
    assert_non_null(v);
    t = mcp_claim_text(p, v, unsafe);
    t = t ? apr_pstrdup(p, t) : NULL; /* a string claim's text is the value's own */
    json_decref(v);
    return t;
}

static void test_claim_text(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    int unsafe = -1;

    assert_string_equal(text_of(p, "\"alice\"", &unsafe), "alice");
    assert_int_equal(unsafe, 0);
    assert_string_equal(text_of(p, "42", &unsafe), "42");
    assert_string_equal(text_of(p, "true", &unsafe), "true");
    assert_string_equal(text_of(p, "[\"a\",1]", &unsafe), "[\"a\",1]");
    assert_string_equal(text_of(p, "{\"k\":\"v\"}", &unsafe), "{\"k\":\"v\"}");
    /* Absent and null: no text, and not "unsafe". */
    assert_null(mcp_claim_text(p, NULL, &unsafe));
    assert_int_equal(unsafe, 0);
    assert_null(text_of(p, "null", &unsafe));
    assert_int_equal(unsafe, 0);
}

/* A control character must never reach a header: CR/LF would split it. */
static void test_claim_text_refuses_control_characters(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    int unsafe = 0;

    assert_null(text_of(p, "\"a\\r\\nX-Injected: 1\"", &unsafe));
    assert_int_equal(unsafe, 1);
    unsafe = 0;
    assert_null(text_of(p, "\"tab\\there\"", &unsafe));
    assert_int_equal(unsafe, 1);
    unsafe = 0;
    assert_null(text_of(p, "\"del\\u007f\"", &unsafe));
    assert_int_equal(unsafe, 1);
    /* Escaped in JSON text, so an array holding one is safe as compact JSON. */
    assert_string_equal(text_of(p, "[\"a\\nb\"]", &unsafe), "[\"a\\nb\"]");
    assert_int_equal(unsafe, 0);
}

static void test_env_name(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    assert_string_equal(mcp_env_name(p, "mcp-user"), "MCP_USER");
    assert_string_equal(mcp_env_name(p, "Already_Upper-1"), "ALREADY_UPPER_1");
    assert_string_equal(mcp_env_name(p, ""), "");
}

static void test_scrub_headers_catches_variants(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    apr_table_t *h = apr_table_make(p, 8);
    const char *const names[] = {"X-MCP-User", "X-MCP-Scopes"};

    apr_table_add(h, "x-mcp-user", "forged");
    apr_table_add(h, "X_MCP_USER", "forged");
    apr_table_add(h, "X-Mcp_Scopes", "forged");
    apr_table_add(h, "X-MCP-User-Agent", "kept: longer name");
    apr_table_add(h, "X-MCP-Use", "kept: shorter name");
    apr_table_add(h, "Accept", "kept");
    mcp_scrub_headers(p, h, names, 2);
    assert_null(apr_table_get(h, "X-MCP-User"));
    assert_null(apr_table_get(h, "X_MCP_USER"));
    assert_null(apr_table_get(h, "X-Mcp_Scopes"));
    assert_string_equal(apr_table_get(h, "X-MCP-User-Agent"), "kept: longer name");
    assert_string_equal(apr_table_get(h, "X-MCP-Use"), "kept: shorter name");
    assert_string_equal(apr_table_get(h, "Accept"), "kept");
    assert_int_equal(apr_table_elts(h)->nelts, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_claim_text),
        TU_TEST(test_claim_text_refuses_control_characters),
        TU_TEST(test_env_name),
        TU_TEST(test_scrub_headers_catches_variants),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("propagate", tests, NULL, NULL);
}
