/* SPDX-License-Identifier: Apache-2.0 */
/* Mcp-Method / Mcp-Name against the body (MCP 2026-07-28, SPEC 6) and the
 * strict standard base64 of the `=?base64?...?=` form. */
#include "test_util.h"

#include "jsonrpc.h"
#include "rpc_headers.h"

static mcp_rpc_body_t parse(apr_pool_t *p, const char *body)
{
    mcp_rpc_body_t rpc;
    assert_int_equal(mcp_jsonrpc_parse(p, body, strlen(body), &rpc), 0);
    return rpc;
}

static const char *check(apr_pool_t *p, const char *body, const char *method, const char *name)
{
    mcp_rpc_body_t rpc;
    if (!body)
        return mcp_rpc_headers_mismatch(p, method, name, NULL);
    rpc = parse(p, body);
    return mcp_rpc_headers_mismatch(p, method, name, &rpc);
}

#define CALL(n) "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":" n "}}"
#define READ(u) "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":" u "}}"
#define PROMPT(n) "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/get\",\"params\":{\"name\":" n "}}"
#define LIST "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}"

static void test_no_headers_no_check(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    assert_null(check(p, CALL("\"x\""), NULL, NULL));
    assert_null(check(p, NULL, NULL, NULL));
}

static void test_matching_pairs(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    assert_null(check(p, CALL("\"get_weather\""), "tools/call", "get_weather"));
    assert_null(check(p, READ("\"file:///a b.txt\""), "resources/read", "file:///a b.txt"));
    assert_null(check(p, PROMPT("\"summarize\""), "prompts/get", "summarize"));
    assert_null(check(p, LIST, "tools/list", NULL));
    /* escapes in the body decode before comparing */
    assert_null(check(p, CALL("\"a\\/b\\u0041\""), "tools/call", "a/bA"));
}

static void test_mismatches(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    assert_non_null(check(p, CALL("\"delete\""), "tools/call", "read"));
    assert_non_null(check(p, CALL("\"delete\""), "tools/list", "delete"));
    assert_non_null(check(p, CALL("\"delete\""), "TOOLS/CALL", "delete"));
    assert_non_null(check(p, CALL("\"delete\""), "tools/call", "DELETE"));
    assert_non_null(check(p, CALL("\"delete\""), "tools/call ", "delete"));
    assert_non_null(check(p, READ("\"file:///s\""), "resources/read", "file:///p"));
    assert_non_null(check(p, PROMPT("\"a\""), "prompts/get", "b"));
}

static void test_missing_or_orphan_headers(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    assert_non_null(check(p, CALL("\"x\""), "tools/call", NULL));        /* name required beside method */
    assert_non_null(check(p, CALL("\"x\""), NULL, "x"));                 /* method required */
    assert_non_null(check(p, LIST, "tools/list", "x"));                  /* nothing to mirror */
    assert_non_null(check(p, NULL, "tools/call", "x"));                  /* no body */
    assert_non_null(check(p, "[" CALL("\"x\"") "]", "tools/call", "x")); /* a batch */
    assert_non_null(check(p, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", "5", NULL));
}

static void test_case_variant_method_still_mirrors_its_name(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    /* a loose backend runs "Tools/Call" as tools/call: its name is checked */
    const char *body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"Tools/Call\",\"params\":{\"name\":\"del\"}}";
    assert_null(check(p, body, "Tools/Call", "del"));
    assert_non_null(check(p, body, "Tools/Call", "read"));
    assert_non_null(check(p, body, "Tools/Call", NULL));
}

static void test_escaped_nul_compared_in_full(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    assert_non_null(check(p, CALL("\"read\\u0000x\""), "tools/call", "read"));
    /* "read\0x" base64: cmVhZAB4 */
    assert_null(check(p, CALL("\"read\\u0000x\""), "tools/call", "=?base64?cmVhZAB4?="));
    assert_non_null(check(p,
                          "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\\u0000x\","
                          "\"params\":{\"name\":\"a\"}}",
                          "tools/call", "a"));
}

static void test_base64_form(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    /* "Hello, 世界" from the specification's table */
    assert_null(check(p, CALL("\"Hello, \\u4e16\\u754c\""), "tools/call", "=?base64?SGVsbG8sIOS4lueVjA==?="));
    assert_null(check(p, CALL("\" padded \""), "tools/call", "=?base64?IHBhZGRlZCA=?="));
    assert_null(check(p, CALL("\"=?base64?literal?=\""), "tools/call", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="));
    /* a plain value that looks like the sentinel is read as the sentinel */
    assert_non_null(check(p, CALL("\"=?base64?YQ==?=\""), "tools/call", "=?base64?YQ==?="));
    assert_null(check(p, CALL("\"a\""), "tools/call", "=?base64?YQ==?="));
    /* the empty value */
    assert_null(check(p, CALL("\"\""), "tools/call",
                      "=?base64?"
                      "?="));
    /* markers are case-sensitive: this is a plain value, and not the name */
    assert_non_null(check(p, CALL("\"a\""), "tools/call", "=?BASE64?YQ==?="));
}

static void test_invalid_header_values(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *bad[] = {
        "=?base64?YQ?=",    /* padding missing */
        "=?base64?YR==?=",  /* non-zero unused bits */
        "=?base64?Y Q==?=", /* whitespace */
        "=?base64?YQ-_?=",  /* url alphabet */
        "=?base64?YQ=a?=",  /* '=' inside */
        "=?base64?=?=",     /* padding alone */
        "caf\xc3\xa9",      /* non-ASCII raw bytes */
        "a\x01z",           /* control character */
    };
    size_t i;
    const char *out;
    size_t len;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (mcp_rpc_header_value(p, bad[i], &out, &len) == 0)
            fail_msg("accepted header value #%zu", i);
        assert_non_null(check(p, CALL("\"a\""), "tools/call", bad[i]));
    }
    assert_non_null(check(p, CALL("\"a\""), "tools/call\x01", "a"));
}

static void test_standard_base64_strict(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    unsigned char *out;
    size_t len;
    assert_int_equal(mcp_b64_decode(p, "Zm9vYmE=", 8, &out, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "fooba", 5);
    assert_int_equal(mcp_b64_decode(p, "Zm9vYg==", 8, &out, &len), 0);
    assert_int_equal(len, 4);
    assert_int_equal(mcp_b64_decode(p, "+/+/", 4, &out, &len), 0);
    assert_int_equal(len, 3);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(mcp_b64_decode(p, "", 0, &out, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(mcp_b64_decode(p, "Zm9vYg", 6, &out, &len), -1);   /* unpadded */
    assert_int_equal(mcp_b64_decode(p, "Zm9vYg=", 7, &out, &len), -1);  /* short padding */
    assert_int_equal(mcp_b64_decode(p, "Zm9vY===", 8, &out, &len), -1); /* too much padding */
    assert_int_equal(mcp_b64_decode(p, "Zm9vYh==", 8, &out, &len), -1); /* unused bits */
    assert_int_equal(mcp_b64_decode(p, "-_-_", 4, &out, &len), -1);     /* url alphabet */
    assert_int_equal(mcp_b64_decode(p, "====", 4, &out, &len), -1);
    /* the url-safe decoder keeps refusing the standard alphabet */
    assert_int_equal(mcp_b64url_decode(p, "+/+/", 4, &out, &len), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_no_headers_no_check),
        TU_TEST(test_matching_pairs),
        TU_TEST(test_mismatches),
        TU_TEST(test_missing_or_orphan_headers),
        TU_TEST(test_case_variant_method_still_mirrors_its_name),
        TU_TEST(test_escaped_nul_compared_in_full),
        TU_TEST(test_base64_form),
        TU_TEST(test_invalid_header_values),
        TU_TEST(test_standard_base64_strict),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("rpc_headers", tests, NULL, NULL);
}
