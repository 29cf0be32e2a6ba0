/* SPDX-License-Identifier: Apache-2.0 */
/* remote_cache: the wire form refuses every value but an intact live entry
 * of its own key; calls never hold the caller past their bound or the
 * request's deadline; a failure turns the level off for a while, then it is
 * tried again; calls that never return are capped. */
#include "test_util.h"

#include "http_fetch.h"
#include "metrics.h"
#include "remote_cache.h"
#include "remote_fake.h"

static const unsigned char KEY[MCP_REMOTE_KEY_LEN] = {1, 2, 3};
static const unsigned char OTHER[MCP_REMOTE_KEY_LEN] = {9, 9, 9};

static size_t encoded(unsigned char *buf, const unsigned char *key, apr_time_t expires, const char *v)
{
    return mcp_remote_encode(key, 7, expires, v, strlen(v), buf);
}

static void test_entry_round_trip(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    static unsigned char buf[MCP_REMOTE_ENCODED_MAX];
    apr_time_t now = apr_time_now();
    mcp_remote_entry_t e;
    size_t n = encoded(buf, KEY, now + apr_time_from_sec(30), "{\"active\":true}");

    assert_int_equal(mcp_remote_decode(KEY, buf, n, now, p, &e), 0);
    assert_int_equal(e.kind, 7);
    assert_true(e.expires == now + apr_time_from_sec(30));
    assert_int_equal(e.len, 15);
    assert_string_equal(e.value, "{\"active\":true}");
}

static void test_decode_refuses_foreign_expired_damaged_and_garbage(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    static unsigned char buf[MCP_REMOTE_ENCODED_MAX];
    apr_time_t now = apr_time_now();
    mcp_remote_entry_t e;
    size_t n = encoded(buf, KEY, now + apr_time_from_sec(30), "{\"active\":true}"), i;

    /* another key's entry, intact */
    assert_int_equal(mcp_remote_decode(OTHER, buf, n, now, p, &e), -1);
    /* expired, intact */
    assert_int_equal(mcp_remote_decode(KEY, buf, n, now + apr_time_from_sec(30), p, &e), -1);
    /* truncated, extended */
    assert_int_equal(mcp_remote_decode(KEY, buf, n - 1, now, p, &e), -1);
    assert_int_equal(mcp_remote_decode(KEY, buf, n + 1, now, p, &e), -1);
    assert_int_equal(mcp_remote_decode(KEY, buf, 3, now, p, &e), -1);
    assert_int_equal(mcp_remote_decode(KEY, buf, 0, now, p, &e), -1);
    /* any byte changed (expiry pushed, payload edited, hash bent) */
    for (i = 0; i < n; i++) {
        buf[i] ^= 0x20;
        assert_int_equal(mcp_remote_decode(KEY, buf, n, now, p, &e), -1);
        buf[i] ^= 0x20;
    }
    assert_int_equal(mcp_remote_decode(KEY, buf, n, now, p, &e), 0); /* the neighbour: intact */
    /* garbage the length of an entry */
    memset(buf, 'A', n);
    assert_int_equal(mcp_remote_decode(KEY, buf, n, now, p, &e), -1);
    /* a payload larger than any of ours is not encoded */
    assert_int_equal(mcp_remote_encode(KEY, 1, now, buf, MCP_REMOTE_MAX_PAYLOAD + 1, buf), 0);
}

static void test_key_is_a_digest_per_label(void **state)
{
    unsigned char a[32], b[32], c[32];
    (void)state;
    mcp_remote_key("introspection-remote-1", KEY, a);
    mcp_remote_key("verdict-remote-1", KEY, b);
    mcp_remote_key("introspection-remote-1", OTHER, c);
    assert_memory_not_equal(a, b, 32);
    assert_memory_not_equal(a, c, 32);
    assert_memory_not_equal(a, KEY, 32);
}

static fake_store_t store;

static void test_put_then_get_and_hostile_value_is_a_miss(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_remote_t *rc;
    mcp_remote_entry_t e;
    uint64_t stores = mcp_metric_get(MCP_M_REMOTE_STORE), misses = mcp_metric_get(MCP_M_REMOTE_MISS);

    fake_init(&store);
    rc = fake_remote(&store, apr_time_from_msec(500), apr_time_from_sec(5));
    assert_int_equal(mcp_remote_get(rc, KEY, apr_time_now(), p, &e, NULL), MCP_REMOTE_NOTFOUND);
    assert_int_equal(mcp_remote_put(rc, KEY, 3, apr_time_now() + apr_time_from_sec(10), "hello", 5, p, NULL), 0);
    assert_int_equal(mcp_remote_get(rc, KEY, apr_time_now(), p, &e, NULL), MCP_REMOTE_FOUND);
    assert_int_equal(e.kind, 3);
    assert_string_equal(e.value, "hello");
    /* the server hands back something else under the key */
    fake_set(&store, KEY, "garbage", 7);
    assert_int_equal(mcp_remote_get(rc, KEY, apr_time_now(), p, &e, NULL), MCP_REMOTE_NOTFOUND);
    assert_int_equal(mcp_metric_get(MCP_M_REMOTE_STORE) - stores, 1);
    assert_int_equal(mcp_metric_get(MCP_M_REMOTE_MISS) - misses, 2);
    assert_false(mcp_remote_is_down(rc, apr_time_now()));
    assert_int_equal(mcp_remote_free(rc), 0); /* no call of it still under way */
}

static void test_slow_server_bounded_then_skipped_then_retried(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_remote_t *rc;
    mcp_remote_entry_t e;
    apr_time_t t0;
    int calls;

    fake_init(&store);
    store.delay_ms = 400;
    rc = fake_remote(&store, apr_time_from_msec(100), apr_time_from_msec(300));
    t0 = apr_time_now();
    assert_int_equal(mcp_remote_get(rc, KEY, t0, p, &e, NULL), MCP_REMOTE_ERROR);
    assert_true(apr_time_now() - t0 < apr_time_from_msec(250)); /* the bound, not the server's 400 ms */
    assert_true(mcp_remote_is_down(rc, apr_time_now()));
    calls = store.calls;
    t0 = apr_time_now();
    assert_int_equal(mcp_remote_get(rc, KEY, t0, p, &e, NULL), MCP_REMOTE_ERROR); /* skipped: no call */
    assert_true(apr_time_now() - t0 < apr_time_from_msec(50));
    assert_int_equal(store.calls, calls);
    usleep(700 * 1000); /* past down_for, and the slow call has come back */
    store.delay_ms = 0;
    assert_int_equal(mcp_remote_get(rc, KEY, apr_time_now(), p, &e, NULL), MCP_REMOTE_NOTFOUND); /* tried again */
    assert_int_equal(store.calls, calls + 1);
    assert_int_equal(mcp_remote_free(rc), 0); /* no call of it still under way */
}

static void test_failing_server_is_an_error_and_marks_down(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_remote_t *rc;
    mcp_remote_entry_t e;
    uint64_t errors = mcp_metric_get(MCP_M_REMOTE_ERROR);

    fake_init(&store);
    store.fail = 1;
    rc = fake_remote(&store, apr_time_from_msec(500), apr_time_from_sec(5));
    assert_int_equal(mcp_remote_put(rc, KEY, 1, apr_time_now() + apr_time_from_sec(5), "x", 1, p, NULL),
                     MCP_REMOTE_ERROR);
    assert_true(mcp_remote_is_down(rc, apr_time_now()));
    assert_int_equal(mcp_remote_get(rc, KEY, apr_time_now(), p, &e, NULL), MCP_REMOTE_ERROR);
    assert_int_equal(mcp_metric_get(MCP_M_REMOTE_ERROR) - errors, 2);
    assert_int_equal(mcp_remote_free(rc), 0); /* no call of it still under way */
}

static void test_request_deadline_bounds_the_call(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_remote_t *rc;
    mcp_remote_entry_t e;
    apr_time_t t0 = apr_time_now();

    fake_init(&store);
    store.delay_ms = 500;
    rc = fake_remote(&store, apr_time_from_sec(5), apr_time_from_sec(5));
    mcp_http_scope_begin(t0 + apr_time_from_msec(80));
    assert_int_equal(mcp_remote_get(rc, KEY, t0, p, &e, NULL), MCP_REMOTE_ERROR);
    mcp_http_scope_end();
    assert_true(apr_time_now() - t0 < apr_time_from_msec(300));
    usleep(600 * 1000);                       /* let the slow call end before store is reused */
    assert_int_equal(mcp_remote_free(rc), 0); /* no call of it still under way */
}

static void test_calls_that_never_return_are_capped(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_remote_t *rc;
    mcp_remote_entry_t e;
    apr_time_t t0;
    int i;

    fake_init(&store);
    store.silent = 1;
    rc = fake_remote(&store, apr_time_from_msec(20), 0); /* down_for 0: each call tries */
    for (i = 0; i < MCP_REMOTE_MAX_IN_FLIGHT; i++)
        assert_int_equal(mcp_remote_get(rc, KEY, apr_time_now(), p, &e, NULL), MCP_REMOTE_ERROR);
    assert_int_equal(store.calls, MCP_REMOTE_MAX_IN_FLIGHT);
    t0 = apr_time_now();
    assert_int_equal(mcp_remote_get(rc, KEY, t0, p, &e, NULL), MCP_REMOTE_ERROR);
    assert_true(apr_time_now() - t0 < apr_time_from_msec(15)); /* refused at once, no thread started */
    assert_false(mcp_remote_is_down(rc, apr_time_now()));      /* a full house is no failure */
    usleep(50 * 1000);
    assert_int_equal(store.calls, MCP_REMOTE_MAX_IN_FLIGHT);
    fake_release(&store);
    usleep(100 * 1000);
    store.silent = 0;
    assert_int_equal(mcp_remote_get(rc, KEY, apr_time_now(), p, &e, NULL), MCP_REMOTE_NOTFOUND); /* back */
    assert_int_equal(mcp_remote_free(rc), 0); /* no call of it still under way */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_entry_round_trip),
        TU_TEST(test_decode_refuses_foreign_expired_damaged_and_garbage),
        TU_TEST(test_key_is_a_digest_per_label),
        TU_TEST(test_put_then_get_and_hostile_value_is_a_miss),
        TU_TEST(test_slow_server_bounded_then_skipped_then_retried),
        TU_TEST(test_failing_server_is_an_error_and_marks_down),
        TU_TEST(test_request_deadline_bounds_the_call),
        TU_TEST(test_calls_that_never_return_are_capped),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("remote_cache", tests, NULL, NULL);
}
