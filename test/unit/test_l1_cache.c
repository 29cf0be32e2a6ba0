/* SPDX-License-Identifier: Apache-2.0 */
/* l1_cache.c: the per-process copy of verdicts -- compared on token, rules,
 * time and keys, and dead with the revocation epoch it was made under. */
#include "test_util.h"

#include "l1_cache.h"
#include "shm_cache.h"
#include "token_cache.h"

#include "store_util.h"

static void l1_cache_compares_token_rules_time_and_keys(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 0, 0, 1, MCP_DOC_HEADER + 64);
    mcp_l1_t *c = mcp_l1_create(p, 8);
    const unsigned char *dk = key_of(p, "jwks");
    mcp_doc_meta_t m;
    mcp_verdict_t v, got;
    uint64_t gen;
    mcp_l1_deps_t deps = {T0 + SEC(10), 0, 0, 0, 0}, nodep = {T0 + SEC(10), -1, 0, 0, 0};

    mcp_store_doc_begin(st, 0, dk, T0, &POLICY, 0, &m);
    mcp_store_doc_finish(st, 0, dk, T0, "one", 3);
    gen = mcp_store_doc_generation(st, 0);
    deps.dep_generation = gen;
    assert_int_equal(
        mcp_verdict_from_claims(p, tu_json(p, "{\"sub\":\"bob\",\"scope\":\"x y\"}"), 0, MCP_ALG_RS256, NULL, NULL, &v),
        0);
    mcp_l1_put(c, "rules", 5, "aaa.bbb.ccc", 11, &deps, &v);
    assert_int_equal(mcp_l1_get(c, "rules", 5, "aaa.bbb.ccc", 11, T0 + SEC(1), st, p, &got), 0);
    assert_string_equal(got.user, "bob");
    assert_string_equal(got.scope, "x y");
    assert_string_equal(got.claims, v.claims);
    assert_null(got.iss);
    /* Other rules, another token of the same length, too late: misses. */
    assert_int_equal(mcp_l1_get(c, "rulez", 5, "aaa.bbb.ccc", 11, T0 + SEC(1), st, p, &got), -1);
    assert_int_equal(mcp_l1_get(c, "rules", 5, "aaa.bbb.ccd", 11, T0 + SEC(1), st, p, &got), -1);
    assert_int_equal(mcp_l1_get(c, "rules", 5, "aaa.bbb.ccc", 11, T0 + SEC(10), st, p, &got), -1);
    /* The JWKS changed (a key was removed): the verdict is gone. */
    mcp_store_doc_begin(st, 0, dk, T0 + SEC(200), &POLICY, 0, &m);
    mcp_store_doc_finish(st, 0, dk, T0 + SEC(200), "two", 3);
    assert_int_equal(mcp_l1_get(c, "rules", 5, "aaa.bbb.ccc", 11, T0 + SEC(1), st, p, &got), -1);
    /* No dependency (HMAC): only time matters. */
    mcp_l1_put(c, "rules", 5, "aaa.bbb.ccc", 11, &nodep, &v);
    assert_int_equal(mcp_l1_get(c, "rules", 5, "aaa.bbb.ccc", 11, T0 + SEC(1), st, p, &got), 0);
    /* NULL cache: always a miss, never a crash. */
    assert_int_equal(mcp_l1_get(NULL, "rules", 5, "aaa.bbb.ccc", 11, T0, st, p, &got), -1);
    mcp_l1_put(NULL, "rules", 5, "aaa.bbb.ccc", 11, &nodep, &v);
}

/* Item 11: a per-process copy of an introspection answer is dead in every
 * process once any of them moved the revocation epoch. */
static void l1_copy_dies_with_the_revocation_epoch(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 16, 512, 0, 0);
    mcp_l1_t *c = mcp_l1_create(p, 8);
    mcp_l1_deps_t deps = {T0 + SEC(10), -1, 0, 1, 0};
    mcp_verdict_t v, got;
    uint64_t e0, e1;

    assert_int_equal(
        mcp_verdict_from_claims(p, tu_json(p, "{\"sub\":\"bob\",\"active\":true}"), 0, MCP_ALG_UNKNOWN, NULL, NULL, &v),
        0);
    assert_int_equal(mcp_store_epoch(st, &e0), 0);
    deps.epoch = e0;
    mcp_l1_put(c, "rules", 5, "opaque-token", 12, &deps, &v);
    assert_int_equal(mcp_l1_get(c, "rules", 5, "opaque-token", 12, T0 + SEC(1), st, p, &got), 0);
    mcp_store_bump_epoch(st);
    assert_int_equal(mcp_store_epoch(st, &e1), 0);
    assert_true(e1 != e0);
    assert_int_equal(mcp_l1_get(c, "rules", 5, "opaque-token", 12, T0 + SEC(1), st, p, &got), -1);
    /* A copy taken under an epoch read before the bump is dead on arrival. */
    mcp_l1_put(c, "rules", 5, "opaque-token", 12, &deps, &v);
    assert_int_equal(mcp_l1_get(c, "rules", 5, "opaque-token", 12, T0 + SEC(1), st, p, &got), -1);
    /* Without a store (no epoch to compare with) a dependent copy is a miss. */
    deps.epoch = e1;
    mcp_l1_put(c, "rules", 5, "opaque-token", 12, &deps, &v);
    assert_int_equal(mcp_l1_get(c, "rules", 5, "opaque-token", 12, T0 + SEC(1), st, p, &got), 0);
    assert_int_equal(mcp_l1_get(c, "rules", 5, "opaque-token", 12, T0 + SEC(1), NULL, p, &got), -1);
    /* A store without an epoch word offers none. */
    mcp_store_attach_epoch(st, NULL);
    assert_int_equal(mcp_store_epoch(st, &e0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(l1_cache_compares_token_rules_time_and_keys),
        TU_TEST(l1_copy_dies_with_the_revocation_epoch),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("l1_cache", tests, NULL, NULL);
}
