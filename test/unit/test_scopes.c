/* SPDX-License-Identifier: Apache-2.0 */
/* scopes.c: the scopes of a token (every scope claim, one union), the
 * name a client should request, and mcp_scope_split.
 *
 * mcp_scope_split (the verdict's scope string, split on every request)
 * against the apr_strtok(" \t") loop it replaced: the same scopes in the
 * same order, duplicates dropped, for every string over a small alphabet
 * that holds both separators and characters that are not separators. */
#include "test_util.h"

#include "scopes.h"

static apr_array_header_t *reference(apr_pool_t *p, const char *s)
{
    apr_array_header_t *set = apr_array_make(p, 8, sizeof(const char *));
    char *copy, *tok, *state;
    if (!s)
        return set;
    copy = apr_pstrdup(p, s);
    for (tok = apr_strtok(copy, " \t", &state); tok; tok = apr_strtok(NULL, " \t", &state))
        mcp_scope_add(set, tok);
    return set;
}

static void same(apr_pool_t *p, const char *s)
{
    const apr_array_header_t *got = mcp_scope_split(p, s), *want = reference(p, s);
    int i;
    if (got->nelts != want->nelts)
        fail_msg("\"%s\": %d scopes, reference %d", s ? s : "(null)", got->nelts, want->nelts);
    for (i = 0; i < got->nelts; i++)
        if (strcmp(APR_ARRAY_IDX(got, i, const char *), APR_ARRAY_IDX(want, i, const char *)) != 0)
            fail_msg("\"%s\": scope %d is \"%s\", reference \"%s\"", s, i, APR_ARRAY_IDX(got, i, const char *),
                     APR_ARRAY_IDX(want, i, const char *));
}

/* Every string of up to 6 characters over " \ta:\n,b" (137,257 of them). */
static void test_every_short_string(void **state)
{
    static const char alpha[] = " \ta:\n,b";
    const size_t k = sizeof(alpha) - 1;
    apr_pool_t *p = *state, *sub;
    char s[8];
    size_t n, i, code, total;

    apr_pool_create(&sub, p);
    same(p, NULL);
    for (n = 0; n <= 6; n++) {
        for (total = 1, i = 0; i < n; i++)
            total *= k;
        for (code = 0; code < total; code++) {
            size_t c = code;
            for (i = 0; i < n; i++, c /= k)
                s[i] = alpha[c % k];
            s[n] = '\0';
            same(sub, s);
            if ((code & 1023) == 0)
                apr_pool_clear(sub);
        }
    }
}

static void test_typical(void **state)
{
    apr_pool_t *p = *state;
    const apr_array_header_t *set = mcp_scope_split(p, "  mcp:tools\tmcp:read mcp:tools  openid ");
    assert_int_equal(set->nelts, 3);
    assert_string_equal(APR_ARRAY_IDX(set, 0, const char *), "mcp:tools");
    assert_string_equal(APR_ARRAY_IDX(set, 1, const char *), "mcp:read");
    assert_string_equal(APR_ARRAY_IDX(set, 2, const char *), "openid");
    same(p, "a\vb"); /* only space and tab separate */
}

/* MCPAuthScopeClaim with several claims: the union, duplicates once; a
 * single claim reads only that one; the default scope-then-scp rule. */
static void test_token_scopes_union(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    json_t *c = json_loads("{\"scope\":\"s1\",\"scp\":\"a b\",\"roles\":[\"b\",\"r1\"],"
                           "\"realm_access\":{\"roles\":[\"k1\"]}}",
                           0, NULL);
    assert_non_null(c);
    assert_string_equal(mcp_scope_join(p, mcp_token_scopes(p, c, "scp roles")), "a b r1");
    assert_string_equal(mcp_scope_join(p, mcp_token_scopes(p, c, "scp")), "a b");
    assert_string_equal(mcp_scope_join(p, mcp_token_scopes(p, c, "roles $.realm_access.roles missing")), "b r1 k1");
    assert_string_equal(mcp_scope_join(p, mcp_token_scopes(p, c, NULL)), "s1");
    json_decref(c);
}

/* MCPAuthScopeRequestPrefix: prefixed once, never twice; the short form
 * only of a scope that carries the prefix and has something after it. */
static void test_scope_request_prefix(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *pre = "https://mcp.example.com/mcp/";
    assert_string_equal(mcp_scope_requestable(p, "mcp.tools", pre), "https://mcp.example.com/mcp/mcp.tools");
    assert_string_equal(mcp_scope_requestable(p, "https://mcp.example.com/mcp/mcp.tools", pre),
                        "https://mcp.example.com/mcp/mcp.tools");
    assert_string_equal(mcp_scope_requestable(p, "mcp.tools", NULL), "mcp.tools");
    assert_string_equal(mcp_scope_requestable(p, "mcp.tools", ""), "mcp.tools");
    assert_string_equal(mcp_scope_short("https://mcp.example.com/mcp/mcp.tools", pre), "mcp.tools");
    assert_null(mcp_scope_short("mcp.tools", pre));
    assert_null(mcp_scope_short("https://mcp.example.com/mcp/", pre));
    assert_null(mcp_scope_short("https://mcp.example.com/mcpmcp.tools", pre));
    assert_null(mcp_scope_short("https://mcp.example.com/mcp/mcp.tools", NULL));
}

/* Claim paths: "$.a.b", "a.b", "$" -- NULL when a step is missing or
 * not an object. */
static void test_claim_path(void **state)
{
    json_t *c = json_loads("{\"a\":{\"b\":\"deep\",\"n\":1},\"top\":\"t\"}", 0, NULL);
    (void)state;
    assert_non_null(c);
    assert_string_equal(json_string_value(mcp_claim_path(c, "$.a.b")), "deep");
    assert_string_equal(json_string_value(mcp_claim_path(c, "a.b")), "deep");
    assert_string_equal(json_string_value(mcp_claim_path(c, "top")), "t");
    assert_ptr_equal(mcp_claim_path(c, "$"), c);
    assert_null(mcp_claim_path(c, "$.a.missing"));
    assert_null(mcp_claim_path(c, "top.x")); /* "t" is not an object */
    assert_null(mcp_claim_path(c, "a.n.x"));
    json_decref(c);
}

/* Require mcp-claim: strings, numbers and booleans by their JSON text, or
 * any member of an array of them. */
static void test_claim_matches(void **state)
{
    const char *const want[] = {"admin", "42", "true"};
    json_t *v;
    (void)state;

    v = json_string("admin");
    assert_true(mcp_claim_matches(v, want, 3));
    json_decref(v);
    v = json_integer(42);
    assert_true(mcp_claim_matches(v, want, 3));
    json_decref(v);
    v = json_true();
    assert_true(mcp_claim_matches(v, want, 3));
    v = json_loads("[\"user\",\"admin\"]", 0, NULL);
    assert_true(mcp_claim_matches(v, want, 3));
    json_decref(v);
    v = json_loads("[\"user\",43,false]", 0, NULL);
    assert_false(mcp_claim_matches(v, want, 3));
    json_decref(v);
    v = json_string("Admin"); /* exact, case included */
    assert_false(mcp_claim_matches(v, want, 3));
    json_decref(v);
}

/* The set: duplicates dropped, joined with spaces, empty is NULL; the
 * short form of a prefixed scope. */
static void test_scope_set_and_short_form(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    apr_array_header_t *set = mcp_scope_split(p, "b a b");
    const char *pre = "https://mcp.example.com/mcp/";

    assert_string_equal(mcp_scope_join(p, set), "b a");
    assert_true(mcp_scope_has(set, "a"));
    assert_false(mcp_scope_has(set, "c"));
    mcp_scope_add(set, "c");
    mcp_scope_add(set, "a");
    assert_string_equal(mcp_scope_join(p, set), "b a c");
    assert_null(mcp_scope_join(p, mcp_scope_split(p, "  ")));
    assert_string_equal(mcp_scope_short("https://mcp.example.com/mcp/mcp.tools", pre), "mcp.tools");
    assert_null(mcp_scope_short("mcp.tools", pre));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_every_short_string),       TU_TEST(test_typical),    TU_TEST(test_token_scopes_union),
        TU_TEST(test_scope_request_prefix),     TU_TEST(test_claim_path), TU_TEST(test_claim_matches),
        TU_TEST(test_scope_set_and_short_form),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("scopes", tests, NULL, NULL);
}
