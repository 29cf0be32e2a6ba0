/* SPDX-License-Identifier: Apache-2.0 */
/* Scope hierarchy (scope_implies.c): closure, transitivity, cycles (a self
 * cycle, two scopes, a long chain closed at its end), merge of nested
 * sections (union, a child entry replaces the parent's, one side shared),
 * and the expansion of a token's granted set. */
#include "test_util.h"

#include "scope_implies.h"

/* "b c d" -> array of const char * */
static apr_array_header_t *words(apr_pool_t *p, const char *text)
{
    apr_array_header_t *a = apr_array_make(p, 4, sizeof(const char *));
    char *copy = apr_pstrdup(p, text), *state = NULL, *w;
    for (w = apr_strtok(copy, " ", &state); w; w = apr_strtok(NULL, " ", &state))
        APR_ARRAY_PUSH(a, const char *) = w;
    return a;
}

static const char *joined(apr_pool_t *p, const apr_array_header_t *a)
{
    const char *out = "";
    int i;
    for (i = 0; a && i < a->nelts; i++)
        out = apr_pstrcat(p, out, i ? " " : "", APR_ARRAY_IDX(a, i, const char *), NULL);
    return out;
}

/* One line, expected to close no cycle. */
static void line(mcp_scope_implies_t *si, apr_pool_t *p, const char *scope, const char *implied, const char *where)
{
    const char *cycle = mcp_scope_implies_add(si, scope, words(p, implied), where);
    if (cycle)
        fail_msg("%s -> %s: unexpected cycle %s", scope, implied, cycle);
}

static void assert_implies(apr_pool_t *p, const mcp_scope_implies_t *si, const char *scope, const char *want)
{
    const char *got = joined(p, mcp_scope_implied_by(p, si, scope));
    if (strcmp(got, want) != 0)
        fail_msg("%s implies \"%s\", expected \"%s\"", scope, got, want);
}

static void test_scope_token(void **state)
{
    (void)state;
    assert_true(mcp_scope_token_ok("notes:read"));
    assert_true(mcp_scope_token_ok("https://api.example.com/notes.read"));
    assert_true(mcp_scope_token_ok("!#[]~"));
    assert_false(mcp_scope_token_ok(""));
    assert_false(mcp_scope_token_ok(NULL));
    assert_false(mcp_scope_token_ok("two words"));
    assert_false(mcp_scope_token_ok("quote\"d"));
    assert_false(mcp_scope_token_ok("back\\slash"));
    assert_false(mcp_scope_token_ok("tab\there"));
    assert_false(mcp_scope_token_ok("caf\xc3\xa9"));
}

static void test_direct_and_union(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_scope_implies_t *si = mcp_scope_implies_make(p);
    assert_int_equal(mcp_scope_implies_count(si), 0);
    line(si, p, "notes:admin", "notes:read notes:delete", "f:1");
    assert_implies(p, si, "notes:admin", "notes:read notes:delete");
    /* the same scope again in the section: union, no duplicates */
    line(si, p, "notes:admin", "notes:delete notes:write", "f:2");
    assert_implies(p, si, "notes:admin", "notes:read notes:delete notes:write");
    assert_int_equal(mcp_scope_implies_count(si), 1);
    /* not backwards, not for unrelated scopes */
    assert_null(mcp_scope_implied_by(p, si, "notes:read"));
    assert_null(mcp_scope_implied_by(p, si, "other"));
    assert_null(mcp_scope_implied_by(p, NULL, "notes:admin"));
}

static void test_case_sensitive(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_scope_implies_t *si = mcp_scope_implies_make(p);
    line(si, p, "notes:admin", "notes:delete", "f:1");
    assert_null(mcp_scope_implied_by(p, si, "Notes:Admin"));
    assert_null(mcp_scope_implied_by(p, si, "NOTES:ADMIN"));
    assert_null(mcp_scope_implied_by(p, si, "notes:admin "));
    /* a different case of a scope is a different scope: no cycle */
    line(si, p, "notes:delete", "Notes:Admin", "f:2");
    assert_implies(p, si, "notes:admin", "notes:delete Notes:Admin");
}

static void test_transitive_any_order(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_scope_implies_t *fwd = mcp_scope_implies_make(p), *rev = mcp_scope_implies_make(p);
    line(fwd, p, "a", "b", "f:1");
    line(fwd, p, "b", "c", "f:2");
    line(rev, p, "b", "c", "f:1");
    line(rev, p, "a", "b", "f:2");
    assert_implies(p, fwd, "a", "b c");
    assert_implies(p, rev, "a", "b c");
    assert_implies(p, fwd, "b", "c");
    assert_null(mcp_scope_implied_by(p, fwd, "c"));
    /* a scope that already reached a gains what a gains later */
    line(fwd, p, "x", "a", "f:3");
    line(fwd, p, "c", "d e", "f:4");
    assert_implies(p, fwd, "x", "a b c d e");
    assert_implies(p, fwd, "a", "b c d e");
    /* a diamond: no duplicates */
    line(fwd, p, "top", "left right", "f:5");
    line(fwd, p, "left", "bottom", "f:6");
    line(fwd, p, "right", "bottom", "f:7");
    assert_implies(p, fwd, "top", "left right bottom");
}

static void test_self_cycle(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_scope_implies_t *si = mcp_scope_implies_make(p);
    const char *cycle = mcp_scope_implies_add(si, "a", words(p, "b a"), "conf:7");
    assert_non_null(cycle);
    assert_string_equal(cycle, "a -> a (conf:7)");
}

static void test_two_scope_cycle(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_scope_implies_t *si = mcp_scope_implies_make(p);
    const char *cycle;
    line(si, p, "notes:admin", "notes:read", "conf:3");
    cycle = mcp_scope_implies_add(si, "notes:read", words(p, "notes:admin"), "conf:4");
    assert_non_null(cycle);
    assert_string_equal(cycle, "notes:read -> notes:admin (conf:4) -> notes:read (conf:3)");
    /* the closure is still consistent: each implies the other (and itself) */
    assert_implies(p, si, "notes:admin", "notes:admin notes:read");
    assert_implies(p, si, "notes:read", "notes:admin notes:read");
}

static void test_three_scope_cycle_through_union(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_scope_implies_t *si = mcp_scope_implies_make(p);
    const char *cycle;
    line(si, p, "a", "b", "f:1");
    line(si, p, "b", "x c", "f:2");
    cycle = mcp_scope_implies_add(si, "c", words(p, "y a"), "f:3");
    assert_non_null(cycle);
    assert_string_equal(cycle, "c -> a (f:3) -> b (f:1) -> c (f:2)");
}

/* 1000 scopes: the bitsets grow from 64 bits to 1024 on the way. */
#define CHAIN 1000

static void test_long_chain(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_scope_implies_t *fwd = mcp_scope_implies_make(p), *rev = mcp_scope_implies_make(p);
    const apr_array_header_t *all;
    const char *cycle;
    int i;
    for (i = 0; i < CHAIN - 1; i++)
        line(fwd, p, apr_psprintf(p, "s%d", i), apr_psprintf(p, "s%d", i + 1), apr_psprintf(p, "f:%d", i));
    for (i = CHAIN - 2; i >= 0; i--)
        line(rev, p, apr_psprintf(p, "s%d", i), apr_psprintf(p, "s%d", i + 1), apr_psprintf(p, "f:%d", i));
    all = mcp_scope_implied_by(p, fwd, "s0");
    assert_non_null(all);
    assert_int_equal(all->nelts, CHAIN - 1);
    assert_int_equal(mcp_scope_implied_by(p, rev, "s0")->nelts, CHAIN - 1);
    assert_int_equal(mcp_scope_implied_by(p, fwd, "s100")->nelts, CHAIN - 101);
    assert_string_equal(APR_ARRAY_IDX(all, CHAIN - 2, const char *), "s999");
    /* the reverse-built chain expands a granted set the same way */
    assert_int_equal(mcp_scope_expand(p, words(p, "s0"), rev)->nelts, CHAIN);
    /* closing the chain at its end names the cycle: its first steps, how
     * many are left out, and the lines that close it */
    cycle = mcp_scope_implies_add(fwd, "s999", words(p, "s0"), "f:end");
    assert_non_null(cycle);
    assert_string_equal(cycle, "s999 -> s0 (f:end) -> s1 (f:0) -> s2 (f:1) -> s3 (f:2) -> s4 (f:3) -> s5 (f:4)"
                               " -> s6 (f:5) -> s7 (f:6) -> ... (989 more) -> s997 (f:996) -> s998 (f:997)"
                               " -> s999 (f:998)");
    /* every scope of the cycle now implies every other one, itself too */
    assert_int_equal(mcp_scope_implied_by(p, fwd, "s500")->nelts, CHAIN);
}

/* 12 steps are shown whole; 13 elide. */
static void test_cycle_text_bounds(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_scope_implies_t *a = mcp_scope_implies_make(p), *b = mcp_scope_implies_make(p);
    const char *cycle;
    int i;
    for (i = 0; i < 11; i++)
        line(a, p, apr_psprintf(p, "s%d", i), apr_psprintf(p, "s%d", i + 1), apr_psprintf(p, "%d", i));
    cycle = mcp_scope_implies_add(a, "s11", words(p, "s0"), "x");
    assert_string_equal(cycle, "s11 -> s0 (x) -> s1 (0) -> s2 (1) -> s3 (2) -> s4 (3) -> s5 (4) -> s6 (5) -> s7 (6)"
                               " -> s8 (7) -> s9 (8) -> s10 (9) -> s11 (10)");
    for (i = 0; i < 12; i++)
        line(b, p, apr_psprintf(p, "s%d", i), apr_psprintf(p, "s%d", i + 1), apr_psprintf(p, "%d", i));
    cycle = mcp_scope_implies_add(b, "s12", words(p, "s0"), "x");
    assert_string_equal(cycle, "s12 -> s0 (x) -> s1 (0) -> s2 (1) -> s3 (2) -> s4 (3) -> s5 (4) -> s6 (5) -> s7 (6)"
                               " -> ... (2 more) -> s10 (9) -> s11 (10) -> s12 (11)");
}

static void test_merge_shares_one_side(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_scope_implies_t *a = mcp_scope_implies_make(p), *empty = mcp_scope_implies_make(p);
    const char *cycle = "x";
    line(a, p, "a", "b", "f:1");
    assert_ptr_equal(mcp_scope_implies_merge(p, NULL, a, &cycle), a);
    assert_null(cycle);
    assert_ptr_equal(mcp_scope_implies_merge(p, a, NULL, NULL), a);
    assert_ptr_equal(mcp_scope_implies_merge(p, a, empty, NULL), a);
    assert_ptr_equal(mcp_scope_implies_merge(p, empty, a, NULL), a);
    assert_null(mcp_scope_implies_merge(p, NULL, NULL, NULL));
}

static void test_merge_union_and_replace(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_scope_implies_t *parent = mcp_scope_implies_make(p), *child = mcp_scope_implies_make(p);
    const mcp_scope_implies_t *m;
    const char *cycle = "x";
    line(parent, p, "notes:admin", "notes:read notes:delete", "f:1");
    line(parent, p, "files:admin", "files:read", "f:2");
    line(child, p, "notes:admin", "notes:read", "f:10"); /* replaces the parent's entry only */
    line(child, p, "mail:admin", "mail:send", "f:11");   /* adds */
    line(child, p, "files:read", "files:list", "f:12");  /* extends the parent's entry transitively */
    m = mcp_scope_implies_merge(p, parent, child, &cycle);
    assert_null(cycle);
    assert_int_equal(mcp_scope_implies_count(m), 4);
    assert_implies(p, m, "notes:admin", "notes:read");
    assert_implies(p, m, "files:admin", "files:read files:list");
    assert_implies(p, m, "mail:admin", "mail:send");
    /* the inputs are unchanged (the parent's closure is shared by others) */
    assert_implies(p, parent, "notes:admin", "notes:read notes:delete");
    assert_implies(p, parent, "files:admin", "files:read");
    assert_null(mcp_scope_implied_by(p, parent, "mail:admin"));
    assert_implies(p, child, "notes:admin", "notes:read");
}

static void test_merge_makes_cycle(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_scope_implies_t *parent = mcp_scope_implies_make(p), *child = mcp_scope_implies_make(p);
    mcp_scope_implies_t *fixed = mcp_scope_implies_make(p);
    const mcp_scope_implies_t *m;
    const char *cycle = NULL;
    line(parent, p, "x", "y", "a.conf:5");
    line(child, p, "y", "x", "a.conf:9");
    m = mcp_scope_implies_merge(p, parent, child, &cycle);
    assert_non_null(cycle);
    assert_string_equal(cycle, "y -> x (a.conf:9) -> y (a.conf:5)");
    /* still usable: the scopes are equivalent */
    assert_implies(p, m, "x", "x y");
    /* the child replacing the parent's entry for x breaks the cycle */
    line(fixed, p, "x", "z", "a.conf:12");
    line(fixed, p, "y", "x", "a.conf:13");
    m = mcp_scope_implies_merge(p, parent, fixed, &cycle);
    assert_null(cycle);
    assert_implies(p, m, "y", "x z");
}

/* The configuration check remembers merged pairs; a request merging the
 * same pair gets the same object back, never a new closure; pairs it did
 * not see are merged as usual and, at request time, not remembered. */
static void test_merge_memo(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_scope_implies_memo_t *memo = mcp_scope_implies_memo_make(p);
    mcp_scope_implies_t *parent = mcp_scope_implies_make(p), *child = mcp_scope_implies_make(p);
    mcp_scope_implies_t *other = mcp_scope_implies_make(p), *loop = mcp_scope_implies_make(p);
    const mcp_scope_implies_t *once, *again, *fresh;
    const char *cycle = NULL;
    line(parent, p, "a", "b", "f:1");
    line(child, p, "b", "c", "f:2");
    line(other, p, "c", "d", "f:3");
    line(loop, p, "b", "a", "f:4");

    once = mcp_scope_implies_merge_memo(memo, 1, p, parent, child, &cycle);
    assert_null(cycle);
    assert_implies(p, once, "a", "b c");
    again = mcp_scope_implies_merge_memo(memo, 0, p, parent, child, NULL);
    assert_ptr_equal(again, once);
    /* the other order is another pair */
    fresh = mcp_scope_implies_merge_memo(memo, 0, p, child, parent, NULL);
    assert_true(fresh != once);
    assert_implies(p, fresh, "a", "b c");
    /* not remembered without `remember` */
    fresh = mcp_scope_implies_merge_memo(memo, 0, p, parent, other, NULL);
    assert_true(mcp_scope_implies_merge_memo(memo, 0, p, parent, other, NULL) != fresh);
    /* one side only: shared as without a memo */
    assert_ptr_equal(mcp_scope_implies_merge_memo(memo, 1, p, NULL, child, NULL), child);
    assert_ptr_equal(mcp_scope_implies_merge_memo(memo, 1, p, parent, NULL, NULL), parent);
    /* a remembered cycle is reported again */
    mcp_scope_implies_merge_memo(memo, 1, p, parent, loop, &cycle);
    assert_non_null(cycle);
    cycle = NULL;
    mcp_scope_implies_merge_memo(memo, 0, p, parent, loop, &cycle);
    assert_string_equal(cycle, "b -> a (f:4) -> b (f:1)");
    /* without a memo: a plain merge */
    fresh = mcp_scope_implies_merge_memo(NULL, 1, p, parent, child, NULL);
    assert_true(fresh != once);
    assert_implies(p, fresh, "a", "b c");
}

static void test_expand(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_scope_implies_t *si = mcp_scope_implies_make(p);
    apr_array_header_t *granted, *out;
    line(si, p, "notes:admin", "notes:read notes:delete", "f:1");
    line(si, p, "notes:delete", "notes:list", "f:2");

    granted = words(p, "mcp:tools notes:admin");
    out = mcp_scope_expand(p, granted, si);
    assert_string_equal(joined(p, out), "mcp:tools notes:admin notes:read notes:delete notes:list");
    assert_string_equal(joined(p, granted), "mcp:tools notes:admin"); /* the token's own set stays */

    /* already granted: not twice */
    out = mcp_scope_expand(p, words(p, "notes:read notes:admin notes:list"), si);
    assert_string_equal(joined(p, out), "notes:read notes:admin notes:list notes:delete");

    /* a narrow scope implies no broad one; case variants imply nothing */
    granted = words(p, "notes:delete Notes:Admin");
    out = mcp_scope_expand(p, granted, si);
    assert_string_equal(joined(p, out), "notes:delete Notes:Admin notes:list");
    granted = words(p, "notes:read NOTES:ADMIN");
    assert_ptr_equal(mcp_scope_expand(p, granted, si), granted); /* nothing implied: no copy */
    assert_ptr_equal(mcp_scope_expand(p, granted, NULL), granted);
    granted = words(p, "");
    assert_ptr_equal(mcp_scope_expand(p, granted, si), granted);
    assert_null(mcp_scope_expand(p, NULL, si));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_scope_token),
        TU_TEST(test_direct_and_union),
        TU_TEST(test_case_sensitive),
        TU_TEST(test_transitive_any_order),
        TU_TEST(test_self_cycle),
        TU_TEST(test_two_scope_cycle),
        TU_TEST(test_three_scope_cycle_through_union),
        TU_TEST(test_long_chain),
        TU_TEST(test_cycle_text_bounds),
        TU_TEST(test_merge_shares_one_side),
        TU_TEST(test_merge_union_and_replace),
        TU_TEST(test_merge_makes_cycle),
        TU_TEST(test_merge_memo),
        TU_TEST(test_expand),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("scope_implies", tests, NULL, NULL);
}
