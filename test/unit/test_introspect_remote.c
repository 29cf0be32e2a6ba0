/* SPDX-License-Identifier: Apache-2.0 */
/* introspect_remote: a miss claims the call with a mark that is read back;
 * a node that reads another's mark waits (bounded) for its answer; a failed
 * call lets the others ask at once; a positive answer never replaces a
 * negative one; garbage under the key counts as nothing. */
#include "test_util.h"

#include "introspect_remote.h"
#include "metrics.h"
#include "remote_fake.h"

static const unsigned char LOCAL[32] = {7, 7, 7};
static fake_store_t store;

static mcp_remote_t *last;

/* A new handle on an empty store; the previous one, whose calls are all
 * done by then, is freed. */
static mcp_remote_t *fresh(void)
{
    assert_int_equal(mcp_remote_free(last), 0);
    fake_init(&store);
    return last = fake_remote(&store, apr_time_from_msec(500), apr_time_from_sec(5));
}

static json_t *answer(const char *text)
{
    return json_loads(text, 0, NULL);
}

static int find(mcp_remote_t *rc, apr_pool_t *p, apr_interval_time_t wait, json_t **result, uint64_t *mark)
{
    apr_time_t now = apr_time_now(), expires;
    return mcp_introspect_remote_find(rc, LOCAL, now + wait, now + apr_time_from_sec(3), p, NULL, result, &expires,
                                      mark);
}

static void test_miss_claims_the_call_then_the_answer_is_found(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_remote_t *rc = fresh();
    json_t *result = NULL, *pos = answer("{\"active\":true,\"sub\":\"alice\"}");
    uint64_t mark, hits = mcp_metric_get(MCP_M_CACHE_REMOTE_HIT);
    apr_time_t now = apr_time_now(), expires;

    assert_int_equal(find(rc, p, apr_time_from_sec(1), &result, &mark), 0);
    assert_true(mark != 0); /* our mark was read back: we ask */
    mcp_introspect_remote_keep(rc, LOCAL, pos, now + apr_time_from_sec(60), p, NULL);
    assert_int_equal(mcp_introspect_remote_find(rc, LOCAL, now + apr_time_from_sec(1), now + apr_time_from_sec(3), p,
                                                NULL, &result, &expires, &mark),
                     1);
    assert_string_equal(json_string_value(json_object_get(result, "sub")), "alice");
    assert_true(expires == now + apr_time_from_sec(60));
    assert_int_equal(mcp_metric_get(MCP_M_CACHE_REMOTE_HIT) - hits, 1);
    json_decref(pos);
}

static void test_negative_is_never_replaced_by_a_positive_but_replaces_one(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_remote_t *rc = fresh();
    json_t *result = NULL, *pos = answer("{\"active\":true,\"sub\":\"bob\"}"), *neg = answer("{\"active\":false}");
    apr_time_t now = apr_time_now();
    uint64_t mark;

    mcp_introspect_remote_keep(rc, LOCAL, pos, now + apr_time_from_sec(60), p, NULL);
    mcp_introspect_remote_keep(rc, LOCAL, neg, now + apr_time_from_sec(30), p, NULL); /* revocation spreads */
    assert_int_equal(find(rc, p, apr_time_from_sec(1), &result, &mark), 1);
    assert_false(json_is_true(json_object_get(result, "active")));
    mcp_introspect_remote_keep(rc, LOCAL, pos, now + apr_time_from_sec(60), p, NULL); /* the older news */
    assert_int_equal(find(rc, p, apr_time_from_sec(1), &result, &mark), 1);
    assert_false(json_is_true(json_object_get(result, "active")));
    json_decref(pos);
    json_decref(neg);
}

typedef struct {
    mcp_remote_t *rc;
    apr_pool_t *p;
    int fail;
} later_t;

/* The other node: answers (or fails) 100 ms after claiming. */
static void *other_node(void *arg)
{
    later_t *l = arg;
    json_t *pos = answer("{\"active\":true,\"sub\":\"carol\"}");
    usleep(100 * 1000);
    if (l->fail)
        mcp_introspect_remote_failed(l->rc, LOCAL, 0, l->p, NULL); /* mark 0: nothing */
    else
        mcp_introspect_remote_keep(l->rc, LOCAL, pos, apr_time_now() + apr_time_from_sec(60), l->p, NULL);
    json_decref(pos);
    return NULL;
}

static void test_another_nodes_mark_is_waited_for_bounded(void **state)
{
    apr_pool_t *p = TU_POOL(state), *q;
    mcp_remote_t *rc = fresh();
    json_t *result = NULL;
    uint64_t first, second;
    later_t l = {rc, NULL, 0};
    pthread_t t;
    apr_time_t t0;

    apr_pool_create(&q, NULL);
    l.p = q;
    assert_int_equal(find(rc, p, apr_time_from_sec(1), &result, &first), 0); /* node 1 claims */
    pthread_create(&t, NULL, other_node, &l);
    t0 = apr_time_now();
    assert_int_equal(find(rc, p, apr_time_from_sec(2), &result, &second), 1); /* node 2 waits for it */
    assert_true(apr_time_now() - t0 < apr_time_from_msec(600));
    assert_string_equal(json_string_value(json_object_get(result, "sub")), "carol");
    pthread_join(t, NULL);

    /* neighbour: a mark nobody answers is waited for no longer than wait_end */
    rc = fresh();
    assert_int_equal(find(rc, p, apr_time_from_sec(1), &result, &first), 0);
    t0 = apr_time_now();
    assert_int_equal(find(rc, p, apr_time_from_msec(200), &result, &second), 0);
    assert_true(apr_time_now() - t0 < apr_time_from_msec(400));
    assert_int_equal(second, 0); /* the mark is the other's: none of ours stands */
    apr_pool_destroy(q);
}

static void test_failed_call_lets_the_next_node_ask_at_once(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_remote_t *rc = fresh();
    json_t *result = NULL;
    uint64_t first, second;
    apr_time_t t0;

    assert_int_equal(find(rc, p, apr_time_from_sec(1), &result, &first), 0);
    mcp_introspect_remote_failed(rc, LOCAL, first, p, NULL);
    t0 = apr_time_now();
    assert_int_equal(find(rc, p, apr_time_from_sec(2), &result, &second), 0);
    assert_true(apr_time_now() - t0 < apr_time_from_msec(300)); /* no waiting out the failed mark */
    assert_true(second != 0 && second != first);
}

static void test_garbage_under_the_key_is_nothing(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_remote_t *rc = fresh();
    json_t *result = NULL;
    unsigned char key[32];
    uint64_t mark;

    mcp_remote_key("introspection-remote-1", LOCAL, key);
    fake_set(&store, key, "{\"active\":true,\"sub\":\"mallory\"}", 31);
    assert_int_equal(find(rc, p, apr_time_from_sec(1), &result, &mark), 0);
    assert_true(mark != 0);
}

static void test_down_cache_means_ask_without_waiting(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_remote_t *rc = fresh();
    json_t *result = NULL;
    uint64_t mark;
    apr_time_t t0 = apr_time_now();

    store.fail = 1;
    assert_int_equal(find(rc, p, apr_time_from_sec(2), &result, &mark), 0);
    assert_int_equal(mark, 0);
    assert_true(apr_time_now() - t0 < apr_time_from_msec(200));
    assert_int_equal(find(NULL, p, apr_time_from_sec(2), &result, &mark), 0); /* no cache configured */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_miss_claims_the_call_then_the_answer_is_found),
        TU_TEST(test_negative_is_never_replaced_by_a_positive_but_replaces_one),
        TU_TEST(test_another_nodes_mark_is_waited_for_bounded),
        TU_TEST(test_failed_call_lets_the_next_node_ask_at_once),
        TU_TEST(test_garbage_under_the_key_is_nothing),
        TU_TEST(test_down_cache_means_ask_without_waiting),
    };
    int failed;
    tu_global_init();
    failed = cmocka_run_group_tests_name("introspect_remote", tests, NULL, NULL);
    mcp_remote_free(last);
    return failed;
}
