/* mcp_scope_split (the verdict's scope string, split on every request)
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_every_short_string),
        TU_TEST(test_typical),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("scope_split", tests, NULL, NULL);
}
