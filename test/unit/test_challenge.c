/* SPDX-License-Identifier: Apache-2.0 */
/* challenge.c: the client-facing WWW-Authenticate challenge (one Bearer
 * challenge, nothing log-only in it, quoting) and the error body. */
#include "test_util.h"

#include "challenge.h"

/* ---- challenge and error body ------------------------------------------- */

static const mcp_challenge_t CH = {"mcp", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
                                   "mcp:read mcp:write"};

static mcp_fail_t mkfail(mcp_fail_kind kind, const char *reason)
{
    mcp_fail_t f;
    f.kind = kind;
    f.reason = reason;
    f.detail = "log only: kid x issuer y";
    return f;
}

/* One Bearer challenge, at the start, and nothing log-only in it. */
static void assert_one_bearer(const char *h)
{
    assert_non_null(h);
    assert_int_equal(strncmp(h, "Bearer", 6), 0);
    assert_int_equal(tu_count(h, "Bearer"), 1);
    assert_false(tu_contains(h, "log only"));
    assert_false(tu_contains(h, "\r"));
    assert_false(tu_contains(h, "\n"));
}

/* The quoted value of param in h (assumes it is well formed). */
static const char *param(apr_pool_t *p, const char *h, const char *name)
{
    const char *start = strstr(h, apr_pstrcat(p, name, "=\"", NULL)), *end;
    if (!start)
        return NULL;
    start += strlen(name) + 2;
    end = start;
    while (*end && *end != '"') {
        if (*end == '\\' && end[1])
            end++;
        end++;
    }
    return apr_pstrmemdup(p, start, (apr_size_t)(end - start));
}

static void test_challenge_no_token(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_fail_t f = mkfail(MCP_FAIL_NO_TOKEN, "No bearer token");
    mcp_challenge_t none = {NULL, NULL, NULL};
    const char *h = mcp_challenge_header(p, &f, &CH);

    assert_int_equal(mcp_fail_status(f.kind), 401);
    assert_one_bearer(h);
    assert_string_equal(h, "Bearer realm=\"mcp\", resource_metadata=\"https://mcp.example.com/.well-known/"
                           "oauth-protected-resource/mcp\", scope=\"mcp:read mcp:write\"");
    assert_false(tu_contains(h, "error"));
    assert_string_equal(mcp_challenge_header(p, &f, &none), "Bearer");
}

static void test_challenge_invalid_token(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_fail_t f = mkfail(MCP_FAIL_INVALID_TOKEN, "Bad \"quoted\" \\ reason\r\nX-Injected: 1\x01\xc3\xa9");
    const char *h = mcp_challenge_header(p, &f, &CH), *desc, *after;

    assert_int_equal(mcp_fail_status(f.kind), 401);
    assert_one_bearer(h);
    assert_string_equal(param(p, h, "error"), "invalid_token");
    assert_string_equal(param(p, h, "realm"), "mcp");
    assert_string_equal(param(p, h, "resource_metadata"), CH.resource_metadata);
    assert_false(tu_contains(h, "scope="));
    desc = param(p, h, "error_description");
    assert_non_null(desc);
    assert_null(strchr(desc, '"'));
    assert_null(strchr(desc, '\\'));
    assert_true(tu_contains(desc, "Bad"));
    assert_true(tu_contains(desc, "reason"));
    /* The description's closing quote ends the header: nothing leaked out. */
    after = strstr(h, "error_description=\"") + strlen("error_description=\"") + strlen(desc);
    assert_string_equal(after, "\"");
    /* Every byte is printable ASCII (RFC 6750 error_description charset). */
    for (after = h; *after; after++)
        if ((unsigned char)*after < 0x20 || (unsigned char)*after > 0x7e)
            fail_msg("byte 0x%02x in challenge", (unsigned char)*after);

    f = mkfail(MCP_FAIL_INVALID_TOKEN, "Token expired");
    h = mcp_challenge_header(p, &f, &CH);
    assert_one_bearer(h);
    assert_string_equal(param(p, h, "error_description"), "Token expired");
}

static void test_challenge_other_kinds(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_fail_t f = mkfail(MCP_FAIL_INVALID_REQUEST, "Malformed Authorization header");
    const char *h = mcp_challenge_header(p, &f, &CH);

    assert_int_equal(mcp_fail_status(f.kind), 400);
    assert_one_bearer(h);
    assert_string_equal(param(p, h, "error"), "invalid_request");
    assert_string_equal(param(p, h, "error_description"), "Malformed Authorization header");

    f = mkfail(MCP_FAIL_INSUFFICIENT_SCOPE, "Insufficient scope");
    h = mcp_challenge_header(p, &f, &CH);
    assert_int_equal(mcp_fail_status(f.kind), 403);
    assert_one_bearer(h);
    assert_string_equal(param(p, h, "error"), "insufficient_scope");
    assert_string_equal(param(p, h, "scope"), "mcp:read mcp:write");
    assert_string_equal(param(p, h, "resource_metadata"), CH.resource_metadata);

    f = mkfail(MCP_FAIL_UNAVAILABLE, "JWKS fetch failed");
    assert_int_equal(mcp_fail_status(f.kind), 503);
    assert_null(mcp_challenge_header(p, &f, &CH));
    f = mkfail(MCP_FAIL_CONFIG, "No keys configured");
    assert_int_equal(mcp_fail_status(f.kind), 500);
    assert_null(mcp_challenge_header(p, &f, &CH));
}

static void test_quote(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_challenge_t c = {"my \"realm\" \\ x", NULL, NULL};
    mcp_fail_t f = mkfail(MCP_FAIL_NO_TOKEN, "No bearer token");
    assert_string_equal(mcp_quote(p, "plain"), "\"plain\"");
    assert_string_equal(mcp_quote(p, "a\"b\\c"), "\"a\\\"b\\\\c\"");
    assert_string_equal(mcp_quote(p, "a\r\nb\x7f"), "\"ab\"");
    assert_string_equal(mcp_quote(p, ""), "\"\"");
    assert_string_equal(mcp_challenge_header(p, &f, &c), "Bearer realm=\"my \\\"realm\\\" \\\\ x\"");
}

static void test_error_body(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const struct {
        mcp_fail_kind kind;
        const char *error; /* NULL: no "error" member */
    } cases[] = {
        {MCP_FAIL_INVALID_TOKEN, "invalid_token"},
        {MCP_FAIL_INVALID_REQUEST, "invalid_request"},
        {MCP_FAIL_INSUFFICIENT_SCOPE, "insufficient_scope"},
        {MCP_FAIL_UNAVAILABLE, "temporarily_unavailable"},
        {MCP_FAIL_CONFIG, "server_error"},
        {MCP_FAIL_NO_TOKEN, NULL},
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mcp_fail_t f = mkfail(cases[i].kind, "Bad \"thing\" \\ here");
        const char *body = mcp_error_body(p, &f), *desc;
        json_t *j = tu_json(p, body);
        assert_true(json_is_object(j));
        if (cases[i].error)
            assert_string_equal(tu_str(j, "error"), cases[i].error);
        else
            assert_null(json_object_get(j, "error"));
        desc = tu_str(j, "error_description");
        assert_null(strchr(desc, '"'));
        assert_null(strchr(desc, '\\'));
        assert_false(tu_contains(body, "log only"));
    }
    {
        mcp_fail_t f = mkfail(MCP_FAIL_INVALID_TOKEN, "Token expired");
        json_t *j = tu_json(p, mcp_error_body(p, &f));
        assert_string_equal(tu_str(j, "error_description"), "Token expired");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_challenge_no_token),
        TU_TEST(test_challenge_invalid_token),
        TU_TEST(test_challenge_other_kinds),
        TU_TEST(test_quote),
        TU_TEST(test_error_body),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("challenge", tests, NULL, NULL);
}
