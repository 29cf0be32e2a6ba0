/* SPDX-License-Identifier: Apache-2.0 */
/* shm_cache.c: the shared store (entries + documents) with explicit
 * clocks. The caches and the keyring built on it have their own files
 * (test_token_cache.c, test_l1_cache.c, test_verdict.c, test_keyring.c). */
#include "test_util.h"

#include <apr_file_io.h>
#include <apr_thread_proc.h>
#include <pthread.h>
#include <string.h>

#include "shm_cache.h"
#include "stopping.h"

#include "store_util.h"

static mcp_entry_key_t ekey(const unsigned char *k, apr_time_t expires)
{
    mcp_entry_key_t e = {k, 7, expires, -1, 0};
    return e;
}

/* The metrics gauge: entries live now, neither expired nor removed ones
 * (a large value, in a whole slot, counts too). */
static void live_entries_counts_what_a_lookup_would_find(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 64, 2048, 0, 0);
    mcp_entry_key_t a = ekey(key_of(p, "a"), T0 + SEC(10)), b = ekey(key_of(p, "b"), T0 + SEC(20));
    mcp_entry_key_t c = ekey(key_of(p, "c"), T0 + SEC(20));
    char big[1500];
    int ev;

    memset(big, 'x', sizeof(big));
    assert_int_equal(mcp_store_live_entries(st, T0), 0);
    assert_int_equal(mcp_store_put(st, &a, T0, "1", 1, &ev), 0);
    assert_int_equal(mcp_store_put(st, &b, T0, "2", 1, &ev), 0);
    assert_int_equal(mcp_store_put(st, &c, T0, big, sizeof(big), &ev), 0);
    assert_int_equal(mcp_store_live_entries(st, T0 + SEC(1)), 3);
    assert_int_equal(mcp_store_live_entries(st, T0 + SEC(15)), 2); /* a expired */
    mcp_store_remove(st, b.key);
    assert_int_equal(mcp_store_live_entries(st, T0 + SEC(15)), 1);
    assert_int_equal(mcp_store_live_entries(NULL, T0), 0);
    assert_true(mcp_store_slots(st) >= 64);
}

static void entry_roundtrip(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 64, 256, 0, 0);
    mcp_entry_key_t k = ekey(key_of(p, "a"), T0 + SEC(10));
    char *v;
    size_t len;
    int ev;

    assert_int_equal(mcp_store_get(st, &k, T0, p, &v, &len), -1);
    assert_int_equal(mcp_store_put(st, &k, T0, "hello", 5, &ev), 0);
    assert_int_equal(ev, 0);
    assert_int_equal(mcp_store_get(st, &k, T0 + SEC(1), p, &v, &len), 0);
    assert_int_equal(len, 5);
    assert_string_equal(v, "hello");
    /* Same key, another kind: a miss. */
    k.kind = 8;
    assert_int_equal(mcp_store_get(st, &k, T0 + SEC(1), p, &v, &len), -1);
    k.kind = 7;
    /* Replacing our own entry updates it in place. */
    assert_int_equal(mcp_store_put(st, &k, T0, "world!", 6, &ev), 0);
    assert_int_equal(ev, 0);
    assert_int_equal(mcp_store_get(st, &k, T0 + SEC(1), p, &v, &len), 0);
    assert_string_equal(v, "world!");
    mcp_store_remove(st, k.key);
    assert_int_equal(mcp_store_get(st, &k, T0 + SEC(1), p, &v, &len), -1);
}

static void entry_expiry_and_size(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 64, 256, 0, 0);
    mcp_entry_key_t k = ekey(key_of(p, "b"), T0 + SEC(10));
    char big[300], *v;
    size_t len;
    int ev;

    assert_int_equal(mcp_store_entry_capacity(st), 256 - MCP_ENTRY_HEADER);
    assert_int_equal(mcp_store_put(st, &k, T0, "x", 1, &ev), 0);
    assert_int_equal(mcp_store_get(st, &k, T0 + SEC(10) - 1, p, &v, &len), 0);
    assert_int_equal(mcp_store_get(st, &k, T0 + SEC(10), p, &v, &len), -1);
    memset(big, 'y', sizeof(big));
    assert_int_equal(mcp_store_put(st, &k, T0, big, 256 - MCP_ENTRY_HEADER + 1, &ev), -1);
    assert_int_equal(mcp_store_put(st, &k, T0, big, 256 - MCP_ENTRY_HEADER, &ev), 0);
}

static void entry_lru_eviction(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    /* 8 slots: every key shares the one set, so the 9th must evict. */
    mcp_store_t *st = mcp_store_create_local(p, 8, 128, 0, 0);
    mcp_entry_key_t k[9];
    char *v;
    size_t len;
    int i, ev;

    for (i = 0; i < 9; i++)
        k[i] = ekey(key_of(p, tu_fmt(p, "key-%d", i)), T0 + SEC(100));
    for (i = 0; i < 8; i++) {
        assert_int_equal(mcp_store_put(st, &k[i], T0 + i, "v", 1, &ev), 0);
        assert_int_equal(ev, 0);
    }
    /* Touch all but key-3: it becomes the least recently used. */
    for (i = 0; i < 8; i++)
        if (i != 3)
            assert_int_equal(mcp_store_get(st, &k[i], T0 + SEC(1) + i, p, &v, &len), 0);
    assert_int_equal(mcp_store_put(st, &k[8], T0 + SEC(2), "new", 3, &ev), 0);
    assert_int_equal(ev, 1);
    assert_int_equal(mcp_store_get(st, &k[3], T0 + SEC(3), p, &v, &len), -1);
    for (i = 0; i < 9; i++)
        if (i != 3)
            assert_int_equal(mcp_store_get(st, &k[i], T0 + SEC(3), p, &v, &len), 0);
}

static void entry_expired_slot_reused_without_eviction(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 8, 128, 0, 0);
    mcp_entry_key_t k;
    int i, ev;
    for (i = 0; i < 8; i++) {
        k = ekey(key_of(p, tu_fmt(p, "short-%d", i)), T0 + SEC(1));
        assert_int_equal(mcp_store_put(st, &k, T0, "v", 1, &ev), 0);
    }
    k = ekey(key_of(p, "later"), T0 + SEC(100));
    assert_int_equal(mcp_store_put(st, &k, T0 + SEC(2), "v", 1, &ev), 0);
    assert_int_equal(ev, 0); /* expired entries are free room, not evictions */
}

static void small_values_share_slots(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    /* 32 slots of 4 KiB: half are cut into 512-byte cells (128 of them). */
    mcp_store_t *st = mcp_store_create_local(p, 32, 4096, 0, 0);
    char big[1000], *v;
    size_t len;
    int i, ev, found = 0, evictions = 0;
    mcp_entry_key_t k;

    for (i = 0; i < 100; i++) {
        k = ekey(key_of(p, tu_fmt(p, "small-%d", i)), T0 + SEC(100));
        assert_int_equal(mcp_store_put(st, &k, T0, "verdict", 7, &ev), 0);
        evictions += ev;
    }
    for (i = 0; i < 100; i++) {
        k = ekey(key_of(p, tu_fmt(p, "small-%d", i)), T0 + SEC(100));
        found += mcp_store_get(st, &k, T0 + 1, p, &v, &len) == 0;
    }
    /* Far more than 32 small entries fit (a few sets may overflow). */
    assert_true(found >= 90);
    assert_int_equal(found + evictions, 100);
    /* A large value goes to a whole slot, and replaces a small copy. */
    memset(big, 'b', sizeof(big));
    k = ekey(key_of(p, "small-1"), T0 + SEC(100));
    assert_int_equal(mcp_store_put(st, &k, T0, big, sizeof(big), &ev), 0);
    assert_int_equal(mcp_store_get(st, &k, T0 + 1, p, &v, &len), 0);
    assert_int_equal(len, sizeof(big));
    assert_int_equal(mcp_store_entry_capacity(st), 4096 - MCP_ENTRY_HEADER);
    /* And back: the large copy goes when a small one is stored. */
    assert_int_equal(mcp_store_put(st, &k, T0, "x", 1, &ev), 0);
    assert_int_equal(mcp_store_get(st, &k, T0 + 1, p, &v, &len), 0);
    assert_int_equal(len, 1);
    mcp_store_remove(st, k.key);
    assert_int_equal(mcp_store_get(st, &k, T0 + 1, p, &v, &len), -1);
}

static void doc_lease_and_generations(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 0, 0, 2, MCP_DOC_HEADER + 64);
    const unsigned char *key = key_of(p, "jwks-a");
    mcp_doc_meta_t m;
    uint64_t g1;
    char *data;
    size_t len;

    assert_int_equal(mcp_store_doc_begin(st, 0, key, T0, &POLICY, 0, &m), MCP_DOC_FETCH);
    /* Another caller while the first fetch runs and nothing is cached: wait. */
    assert_int_equal(mcp_store_doc_begin(st, 0, key, T0 + 1, &POLICY, 0, &m), MCP_DOC_WAIT);
    assert_int_equal(mcp_store_doc_finish(st, 0, key, T0 + SEC(1), "{\"keys\":1}", 10), 0);
    assert_int_equal(mcp_store_doc_meta(st, 0, key, &m), 0);
    g1 = m.generation;
    assert_true(g1 != 0);
    assert_int_equal(mcp_store_doc_generation(st, 0), g1);
    assert_int_equal(mcp_store_doc_copy(st, 0, key, g1, p, &data, &len), 0);
    assert_string_equal(data, "{\"keys\":1}");
    assert_int_equal(mcp_store_doc_copy(st, 0, key, g1 + 1, p, &data, &len), -1);

    /* Fresh: used as is; a forced refresh inside the cooldown is refused. */
    assert_int_equal(mcp_store_doc_begin(st, 0, key, T0 + SEC(2), &POLICY, 0, &m), MCP_DOC_USE);
    assert_int_equal(mcp_store_doc_begin(st, 0, key, T0 + SEC(20), &POLICY, 1, &m), MCP_DOC_USE);
    /* After the cooldown a forced refresh is allowed, once. */
    assert_int_equal(mcp_store_doc_begin(st, 0, key, T0 + SEC(40), &POLICY, 1, &m), MCP_DOC_FETCH);
    /* A second unknown kid while that fetch runs waits for it (SPEC 7: a
     * rotation refuses no valid token); a known kid uses the copy. */
    assert_int_equal(mcp_store_doc_begin(st, 0, key, T0 + SEC(41), &POLICY, 1, &m), MCP_DOC_WAIT);
    assert_int_equal(mcp_store_doc_begin(st, 0, key, T0 + SEC(41), &POLICY, 0, &m), MCP_DOC_USE);
    /* Same bytes: generation kept, fetched_at moves. */
    assert_int_equal(mcp_store_doc_finish(st, 0, key, T0 + SEC(42), "{\"keys\":1}", 10), 0);
    assert_int_equal(mcp_store_doc_meta(st, 0, key, &m), 0);
    assert_true(m.generation == g1);
    assert_true(m.fetched_at == T0 + SEC(42));
    /* Due by TTL: fetched even inside the cooldown after a good fetch. */
    assert_int_equal(mcp_store_doc_begin(st, 0, key, T0 + SEC(142), &POLICY, 0, &m), MCP_DOC_FETCH);
    assert_int_equal(mcp_store_doc_finish(st, 0, key, T0 + SEC(143), "{\"keys\":2}", 10), 0);
    assert_int_equal(mcp_store_doc_meta(st, 0, key, &m), 0);
    assert_true(m.generation > g1);
}

/* ---- waiting for a fetch in flight (real clock, real threads) ---------- */

typedef struct {
    mcp_store_t *st;
    const unsigned char *key;
    const char *data; /* NULL: the fetch fails */
    apr_interval_time_t delay;
} finisher_t;

static void *APR_THREAD_FUNC finish_later(apr_thread_t *t, void *arg)
{
    finisher_t *f = arg;
    apr_sleep(f->delay);
    mcp_store_doc_finish(f->st, 0, f->key, apr_time_now(), f->data, f->data ? strlen(f->data) : 0);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static apr_interval_time_t timed_wait(mcp_store_t *st, const unsigned char *key, apr_interval_time_t bound)
{
    apr_time_t t0 = apr_time_now();
    mcp_store_doc_wait(st, 0, key, t0 + bound);
    return apr_time_now() - t0;
}

/* The cooldown after a failed fetch runs from the failure: a fetch that
 * took the whole timeout is not followed at once by another one (requests
 * queued behind the first would otherwise wait for two timeouts). */
static void failed_fetch_cooldown_runs_from_its_end(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 0, 0, 2, MCP_DOC_HEADER + 64);
    const unsigned char *key = key_of(p, "jwks-fail");
    mcp_doc_meta_t m;

    /* A stored copy past its TTL: the refresh fails after 8 s. (Issue 15:
     * with nothing stored, retries back off from 1 s instead; see
     * doc_failure_backs_off. The cooldown governs once keys exist.) */
    assert_int_equal(mcp_store_doc_begin(st, 0, key, T0, &POLICY, 0, &m), MCP_DOC_FETCH);
    assert_int_equal(mcp_store_doc_finish(st, 0, key, T0, "{}", 2), 0);
    assert_int_equal(mcp_store_doc_begin(st, 0, key, T0 + SEC(100), &POLICY, 0, &m), MCP_DOC_FETCH);
    assert_int_equal(mcp_store_doc_finish(st, 0, key, T0 + SEC(108), NULL, 0), 0); /* failed after 8 s */
    /* 31 s after the start, 23 s after the failure: still cooling down. */
    assert_int_equal(mcp_store_doc_begin(st, 0, key, T0 + SEC(131), &POLICY, 0, &m), MCP_DOC_USE);
    assert_true(m.generation != 0);
    assert_int_equal(mcp_store_doc_begin(st, 0, key, T0 + SEC(137), &POLICY, 1, &m), MCP_DOC_USE);
    /* 30 s after the failure: the next attempt. */
    assert_int_equal(mcp_store_doc_begin(st, 0, key, T0 + SEC(138), &POLICY, 0, &m), MCP_DOC_FETCH);
    /* With nothing stored, the first retry comes 1 s after the failure's end (not its start). */
    assert_int_equal(mcp_store_doc_begin(st, 1, key, T0, &POLICY, 0, &m), MCP_DOC_FETCH);
    assert_int_equal(mcp_store_doc_finish(st, 1, key, T0 + SEC(8), NULL, 0), 0);
    assert_int_equal(mcp_store_doc_begin(st, 1, key, T0 + SEC(8) + SEC(1) / 2, &POLICY, 0, &m), MCP_DOC_USE);
    assert_int_equal(mcp_store_doc_begin(st, 1, key, T0 + SEC(9), &POLICY, 0, &m), MCP_DOC_FETCH);
}

static void doc_wait_is_woken_when_the_fetch_lands(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 0, 0, 1, MCP_DOC_HEADER + 64);
    const unsigned char *key = key_of(p, "jwks-wait");
    mcp_doc_policy_t pol = {SEC(100), SEC(30), SEC(10)};
    finisher_t f = {st, key, "{\"keys\":2}", apr_time_from_msec(300)};
    apr_thread_t *t;
    apr_status_t rv;
    mcp_doc_meta_t m;
    uint64_t g1;
    apr_interval_time_t took;

    assert_int_equal(mcp_store_doc_begin(st, 0, key, apr_time_now(), &pol, 0, &m), MCP_DOC_FETCH);
    assert_int_equal(mcp_store_doc_finish(st, 0, key, apr_time_now(), "{\"keys\":1}", 10), 0);
    g1 = mcp_store_doc_generation(st, 0);
    /* No fetch in flight: no wait at all. */
    assert_true(timed_wait(st, key, SEC(5)) < apr_time_from_msec(50));

    /* Rotation: one caller refetches (slowly), the next unknown kid waits
     * and is woken by the fetch's end, long before its bound. */
    pol.cooldown = 0;
    assert_int_equal(mcp_store_doc_begin(st, 0, key, apr_time_now(), &pol, 1, &m), MCP_DOC_FETCH);
    assert_int_equal(mcp_store_doc_begin(st, 0, key, apr_time_now(), &pol, 1, &m), MCP_DOC_WAIT);
    assert_int_equal(apr_thread_create(&t, NULL, finish_later, &f, p), APR_SUCCESS);
    took = timed_wait(st, key, SEC(5));
    apr_thread_join(&rv, t);
    assert_true(took >= apr_time_from_msec(250));
    assert_true(took < SEC(2));
    assert_true(mcp_store_doc_generation(st, 0) != g1);

    /* A failed fetch wakes the waiters too. */
    f.data = NULL;
    assert_int_equal(mcp_store_doc_begin(st, 0, key, apr_time_now(), &pol, 1, &m), MCP_DOC_FETCH);
    assert_int_equal(apr_thread_create(&t, NULL, finish_later, &f, p), APR_SUCCESS);
    took = timed_wait(st, key, SEC(5));
    apr_thread_join(&rv, t);
    assert_true(took >= apr_time_from_msec(250));
    assert_true(took < SEC(2));
}

static void doc_wait_is_bounded(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 0, 0, 1, MCP_DOC_HEADER + 64);
    const unsigned char *key = key_of(p, "jwks-bound");
    mcp_doc_policy_t pol = {SEC(100), 0, SEC(10)};
    mcp_doc_meta_t m;
    apr_interval_time_t took;

    /* The fetcher never finishes: the waiter gives up at its bound... */
    assert_int_equal(mcp_store_doc_begin(st, 0, key, apr_time_now(), &pol, 0, &m), MCP_DOC_FETCH);
    took = timed_wait(st, key, apr_time_from_msec(200));
    assert_true(took >= apr_time_from_msec(190));
    assert_true(took < SEC(1));
    /* ...or when the (crashed) fetcher's lease runs out, if that is sooner. */
    mcp_store_doc_finish(st, 0, key, apr_time_now(), "x", 1);
    pol.lease = apr_time_from_msec(150);
    assert_int_equal(mcp_store_doc_begin(st, 0, key, apr_time_now(), &pol, 1, &m), MCP_DOC_FETCH);
    took = timed_wait(st, key, SEC(5));
    assert_true(took >= apr_time_from_msec(100));
    assert_true(took < SEC(1));
}

static void doc_failure_backs_off(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 0, 0, 1, MCP_DOC_HEADER + 64);
    const unsigned char *key = key_of(p, "jwks-b");
    apr_interval_time_t expect[] = {SEC(1), SEC(2), SEC(4), SEC(8), SEC(16), SEC(30), SEC(30)};
    apr_time_t t = T0;
    mcp_doc_meta_t m;
    unsigned i;

    assert_int_equal(mcp_store_doc_begin(st, 0, key, t, &POLICY, 0, &m), MCP_DOC_FETCH);
    assert_int_equal(mcp_store_doc_finish(st, 0, key, t, NULL, 0), 0);
    assert_int_equal(mcp_store_doc_meta(st, 0, key, &m), 0);
    assert_true(m.generation == 0 && m.lease_until == 0);
    /* Issue 15: an IdP not up yet at boot is asked again after 1 s, 2 s,
     * 4 s, ... (never more often), then once per cooldown. */
    for (i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        assert_int_equal(mcp_store_doc_begin(st, 0, key, t + expect[i] - 1, &POLICY, 0, &m), MCP_DOC_USE);
        assert_int_equal(mcp_store_doc_begin(st, 0, key, t + expect[i], &POLICY, 0, &m), MCP_DOC_FETCH);
        t += expect[i];
        assert_int_equal(mcp_store_doc_finish(st, 0, key, t, NULL, 0), 0);
    }
    /* A success resets the backoff; keys in hand: the cooldown governs again. */
    assert_int_equal(mcp_store_doc_begin(st, 0, key, t + SEC(30), &POLICY, 0, &m), MCP_DOC_FETCH);
    assert_int_equal(mcp_store_doc_finish(st, 0, key, t + SEC(30), "{}", 2), 0);
    assert_int_equal(mcp_store_doc_begin(st, 0, key, t + SEC(31), &POLICY, 1, &m), MCP_DOC_USE);
}

static void doc_too_large_and_foreign_slot(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 0, 0, 1, MCP_DOC_HEADER + 16);
    const unsigned char *a = key_of(p, "a"), *b = key_of(p, "b");
    mcp_doc_meta_t m;

    assert_int_equal(mcp_store_doc_capacity(st), 16);
    assert_int_equal(mcp_store_doc_begin(st, 0, a, T0, &POLICY, 0, &m), MCP_DOC_FETCH);
    assert_int_equal(mcp_store_doc_finish(st, 0, a, T0, "0123456789abcdefX", 17), -1);
    assert_int_equal(mcp_store_doc_meta(st, 0, a, &m), 0);
    assert_true(m.generation == 0);
    assert_int_equal(mcp_store_doc_finish(st, 0, a, T0, "0123456789abcdef", 16), 0);
    assert_int_equal(mcp_store_doc_meta(st, 0, a, &m), 0);
    assert_true(m.generation != 0);
    /* The slot now belongs to a: b does not see a's document... */
    assert_int_equal(mcp_store_doc_meta(st, 0, b, &m), -1);
    /* ...and claiming it for b starts empty. */
    assert_int_equal(mcp_store_doc_begin(st, 0, b, T0 + SEC(1), &POLICY, 0, &m), MCP_DOC_FETCH);
    assert_true(m.generation == 0);
}

static void entry_dependency_on_document(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 16, 256, 1, MCP_DOC_HEADER + 64);
    const unsigned char *dk = key_of(p, "doc");
    mcp_entry_key_t k = ekey(key_of(p, "tok"), T0 + SEC(300));
    mcp_doc_meta_t m;
    char *v;
    size_t len;
    int ev;

    mcp_store_doc_begin(st, 0, dk, T0, &POLICY, 0, &m);
    mcp_store_doc_finish(st, 0, dk, T0, "one", 3);
    k.dep_doc = 0;
    k.dep_generation = mcp_store_doc_generation(st, 0);
    assert_int_equal(mcp_store_put(st, &k, T0, "v", 1, &ev), 0);
    assert_int_equal(mcp_store_get(st, &k, T0 + SEC(1), p, &v, &len), 0);
    /* The document changes (a key was removed): the entry is dead. */
    mcp_store_doc_begin(st, 0, dk, T0 + SEC(200), &POLICY, 0, &m);
    mcp_store_doc_finish(st, 0, dk, T0 + SEC(200), "two", 3);
    assert_int_equal(mcp_store_get(st, &k, T0 + SEC(201), p, &v, &len), -1);
}

/* ---- issue 15: transient entries, counters, compare and swap ---------------- */

static int has(mcp_store_t *st, apr_pool_t *p, const char *name, uint32_t kind, apr_time_t now)
{
    mcp_entry_key_t k = {key_of(p, name), kind, 0, -1, 0};
    char *v;
    size_t len;
    return mcp_store_get(st, &k, now, p, &v, &len) == 0;
}

/* One set of 8 ways: random tokens' negative answers and marks churn
 * through two of them and never push out a live ordinary entry. */
static void transient_entries_never_evict_live_ones(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 8, 256, 0, 0);
    mcp_store_stats_t s, d;
    int ev, i;

    for (i = 0; i < 6; i++) {
        mcp_entry_key_t k = ekey(key_of(p, tu_fmt(p, "good%d", i)), T0 + SEC(100));
        assert_int_equal(mcp_store_put(st, &k, T0 + i, "good", 4, &ev), 0);
    }
    /* A flood of 100 transients: the two free ways, then each other. */
    for (i = 0; i < 100; i++) {
        mcp_entry_key_t k = ekey(key_of(p, tu_fmt(p, "rnd%d", i)), T0 + SEC(30));
        assert_int_equal(mcp_store_put_ex(st, &k, T0 + 10 + i, "{}", 2, MCP_ENTRY_TRANSIENT, &ev), 0);
        assert_int_equal(ev, 0);
    }
    for (i = 0; i < 6; i++)
        assert_true(has(st, p, tu_fmt(p, "good%d", i), 7, T0 + SEC(1)));
    assert_true(has(st, p, "rnd99", 7, T0 + SEC(1)) && has(st, p, "rnd98", 7, T0 + SEC(1)));
    assert_false(has(st, p, "rnd97", 7, T0 + SEC(1)));
    mcp_store_stats(st, &s);
    assert_true(s.evicted_transient == 98 && s.evicted_live == 0 && s.refused_transient == 0);

    /* Ordinary entries take the transient ways back first (not an
     * eviction of a live answer: *evicted stays 0). */
    for (i = 6; i < 8; i++) {
        mcp_entry_key_t k = ekey(key_of(p, tu_fmt(p, "good%d", i)), T0 + SEC(100));
        assert_int_equal(mcp_store_put(st, &k, T0 + SEC(2) + i, "good", 4, &ev), 0);
        assert_int_equal(ev, 0);
    }
    assert_false(has(st, p, "rnd99", 7, T0 + SEC(3)) || has(st, p, "rnd98", 7, T0 + SEC(3)));
    /* The set holds only live ordinary entries: a transient one is refused,
     * by put, add and replace alike. */
    {
        mcp_entry_key_t k = ekey(key_of(p, "rnd-late"), T0 + SEC(30));
        assert_int_equal(mcp_store_put_ex(st, &k, T0 + SEC(4), "{}", 2, MCP_ENTRY_TRANSIENT, &ev), -1);
        assert_int_equal(mcp_store_add_ex(st, &k, T0 + SEC(4), "", 0, MCP_ENTRY_TRANSIENT), -1);
        assert_int_equal(mcp_store_replace(st, &k, T0 + SEC(4), "", 0, MCP_ENTRY_TRANSIENT, 9), -1);
    }
    for (i = 0; i < 8; i++)
        assert_true(has(st, p, tu_fmt(p, "good%d", i), 7, T0 + SEC(5)));
    /* An ordinary entry still evicts the least recently used one. */
    {
        mcp_entry_key_t k = ekey(key_of(p, "good8"), T0 + SEC(100));
        assert_int_equal(mcp_store_put(st, &k, T0 + SEC(6), "good", 4, &ev), 0);
        assert_int_equal(ev, 1);
    }
    {
        mcp_entry_key_t k = ekey(key_of(p, "huge"), T0 + SEC(100));
        char big[300] = {0};
        assert_int_equal(mcp_store_put(st, &k, T0 + SEC(6), big, sizeof(big), &ev), -1);
    }
    mcp_store_stats(st, &s);
    assert_true(s.evicted_transient == 100 && s.evicted_live == 1 && s.refused_transient == 3 && s.too_large == 1);
    assert_int_equal(mcp_store_entries(st), 8);

    /* The notice: once per interval, with the counts since the last one. */
    assert_int_equal(mcp_store_eviction_notice(st, T0 + SEC(10), SEC(60), &d), 1);
    assert_true(d.evicted_transient == 100 && d.evicted_live == 1 && d.refused_transient == 3);
    assert_int_equal(mcp_store_eviction_notice(st, T0 + SEC(11), SEC(60), &d), 0);
    assert_int_equal(mcp_store_eviction_notice(st, T0 + SEC(100), SEC(60), &d), 0); /* nothing new */
    {
        mcp_entry_key_t k = ekey(key_of(p, "good9"), T0 + SEC(200));
        assert_int_equal(mcp_store_put(st, &k, T0 + SEC(50), "good", 4, &ev), 0); /* all live: evicts one */
    }
    assert_int_equal(mcp_store_eviction_notice(st, T0 + SEC(30), SEC(60), &d), 0); /* within the interval */
    assert_int_equal(mcp_store_eviction_notice(st, T0 + SEC(102), SEC(60), &d), 1);
    assert_true(d.evicted_live == 1 && d.evicted_transient == 0 && d.refused_transient == 0);
}

/* Transient entries take at most MCP_STORE_TRANSIENT_WAYS ways of a set
 * even when it has free ones: the rest stay for ordinary entries. */
static void transient_entries_leave_free_ways_to_ordinary_ones(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 8, 256, 0, 0);
    mcp_store_stats_t s;
    int ev, i, kept = 0;

    for (i = 0; i < 50; i++) {
        mcp_entry_key_t k = ekey(key_of(p, tu_fmt(p, "neg%d", i)), T0 + SEC(30));
        assert_int_equal(mcp_store_put_ex(st, &k, T0 + i, "{}", 2, MCP_ENTRY_TRANSIENT, &ev), 0);
    }
    for (i = 0; i < 50; i++)
        kept += has(st, p, tu_fmt(p, "neg%d", i), 7, T0 + SEC(1));
    assert_int_equal(kept, MCP_STORE_TRANSIENT_WAYS);
    for (i = 0; i < 6; i++) {
        mcp_entry_key_t k = ekey(key_of(p, tu_fmt(p, "pos%d", i)), T0 + SEC(100));
        assert_int_equal(mcp_store_put(st, &k, T0 + SEC(2), "pos", 3, &ev), 0);
        assert_int_equal(ev, 0);
    }
    mcp_store_stats(st, &s);
    assert_true(s.evicted_live == 0);
}

/* The single-flight marks: add, compare and swap, and a lookup of any kind. */
static void replace_and_get_any(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 64, 1024, 0, 0);
    const unsigned char *key = key_of(p, "token");
    mcp_entry_key_t pending = {key, 0x50, T0 + SEC(5), -1, 0}, failed = {key, 0x46, T0 + SEC(2), -1, 0};
    mcp_entry_key_t answer = {key, 0x41, T0 + SEC(300), -1, 0};
    mcp_entry_meta_t meta;
    uint32_t kind;
    char *v;
    size_t len;
    int ev;

    assert_int_equal(mcp_store_get_any(st, key, T0, p, &kind, &v, &len, &meta), -1);
    assert_int_equal(mcp_store_add_ex(st, &pending, T0, "", 0, MCP_ENTRY_TRANSIENT), 1);
    assert_int_equal(mcp_store_add_ex(st, &pending, T0, "", 0, MCP_ENTRY_TRANSIENT), 0);
    assert_int_equal(mcp_store_get_any(st, key, T0, p, &kind, &v, &len, &meta), 0);
    assert_true(kind == 0x50 && len == 0 && meta.expires == T0 + SEC(5));
    /* Only the expected kind is replaced. */
    assert_int_equal(mcp_store_replace(st, &failed, T0, "at", 2, MCP_ENTRY_TRANSIENT, 0x41), 0);
    assert_int_equal(mcp_store_replace(st, &failed, T0, "at", 2, MCP_ENTRY_TRANSIENT, 0x50), 1);
    assert_int_equal(mcp_store_get_any(st, key, T0 + SEC(1), p, &kind, &v, &len, &meta), 0);
    assert_true(kind == 0x46 && len == 2 && memcmp(v, "at", 2) == 0);
    /* Expired: the key is free again for anyone. */
    assert_int_equal(mcp_store_get_any(st, key, T0 + SEC(3), p, &kind, &v, &len, &meta), -1);
    assert_int_equal(mcp_store_replace(st, &pending, T0 + SEC(3), "", 0, MCP_ENTRY_TRANSIENT, 0x46), 1);
    /* The answer replaces the mark in place (an ordinary entry). */
    assert_int_equal(mcp_store_put(st, &answer, T0 + SEC(4), "{\"active\":true}", 15, &ev), 0);
    assert_int_equal(mcp_store_get_any(st, key, T0 + SEC(4), p, &kind, &v, &len, &meta), 0);
    assert_true(kind == 0x41 && len == 15);
    assert_int_equal(mcp_store_add_ex(st, &pending, T0 + SEC(4), "", 0, MCP_ENTRY_TRANSIENT), 0);
}

/* ---- issue 15: generations, layouts, lock failure ----------------------- */

static void doc_place_finds_documents_by_key(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 0, 0, 4, MCP_DOC_HEADER + 64);
    const unsigned char *a = key_of(p, "a"), *b = key_of(p, "b"), *c = key_of(p, "c");
    const unsigned char *first[2], *later[3];
    int slots[3];
    mcp_doc_meta_t m;

    first[0] = a, first[1] = b;
    mcp_store_doc_place(st, first, 2, slots);
    assert_true(slots[0] == 0 && slots[1] == 1);
    assert_int_equal(mcp_store_doc_finish(st, slots[1], b, T0, "{\"b\":1}", 7), 0);
    /* A new key in front (an issuer added before the others): b keeps its
     * slot and its document; c gets a slot nobody listed. */
    later[0] = c, later[1] = a, later[2] = b;
    mcp_store_doc_place(st, later, 3, slots);
    assert_int_equal(slots[2], 1);
    assert_int_equal(slots[1], 0);
    assert_true(slots[0] == 2 || slots[0] == 3);
    assert_int_equal(mcp_store_doc_meta(st, slots[2], b, &m), 0);
    assert_true(m.generation != 0);
    /* More distinct keys than slots: the rest get none. */
    {
        mcp_store_t *tiny = mcp_store_create_local(p, 0, 0, 1, MCP_DOC_HEADER + 64);
        mcp_store_doc_place(tiny, later, 3, slots);
        assert_true(slots[0] == 0 && slots[1] == -1 && slots[2] == -1);
    }
}

static int plain_lock(void *ctx)
{
    (void)ctx;
    return 0;
}

static void plain_unlock(void *ctx)
{
    (void)ctx;
}

/* ---- lock-free lookups ---------------------------------------------------
 * Lookups take no lock (per-slot sequence counts): a reader racing a
 * writer of the same slot must see the old value or the new one, whole --
 * never the new length with the old bytes, nor half of each. */

typedef struct {
    mcp_store_t *st;
    const unsigned char *key;
    int stop; /* atomic */
    int torn, hits, reads;
} race_t;

#define KIND 7
#define RACE_A 1000
#define RACE_B 3000
#define RACE_WRITES 100000

static void *race_writer(void *arg)
{
    race_t *r = arg;
    static char a[RACE_A], b[RACE_B];
    int i, evicted;
    memset(a, 'a', sizeof(a));
    memset(b, 'b', sizeof(b));
    /* At least RACE_WRITES writes, and on until the readers have looked
     * often enough: a scheduler that runs one thread at a time (valgrind)
     * must not let the writes end before the reads begin. */
    for (i = 0; i < RACE_WRITES || __atomic_load_n(&r->reads, __ATOMIC_RELAXED) < 2000; i++) {
        mcp_entry_key_t k = {r->key, KIND, T0 + SEC(60), -1, 0};
        mcp_store_put(r->st, &k, T0, (i & 1) ? b : a, (i & 1) ? sizeof(b) : sizeof(a), &evicted);
    }
    __atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* One lookup: 1 a whole value, 0 a miss, -1 a torn one. */
static int race_read(race_t *r, apr_pool_t *p)
{
    mcp_entry_key_t k = {r->key, KIND, 0, -1, 0};
    char *v;
    size_t len, j;
    if (mcp_store_get(r->st, &k, T0, p, &v, &len) != 0)
        return 0;
    if (len != RACE_A && len != RACE_B)
        return -1;
    for (j = 0; j < len; j++)
        if (v[j] != (len == RACE_A ? 'a' : 'b'))
            return -1;
    return 1;
}

static void *race_reader(void *arg)
{
    race_t *r = arg;
    apr_pool_t *p;
    int rc;
    apr_pool_create(&p, NULL);
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        __atomic_add_fetch(&r->reads, 1, __ATOMIC_RELAXED);
        if ((rc = race_read(r, p)) < 0)
            __atomic_add_fetch(&r->torn, 1, __ATOMIC_RELAXED);
        else if (rc > 0)
            __atomic_add_fetch(&r->hits, 1, __ATOMIC_RELAXED);
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    return NULL;
}

static void lookups_never_see_a_half_written_entry(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    race_t r = {mcp_store_create_local(p, 64, 4096, 0, 0), key_of(p, "raced"), 0, 0, 0, 0};
    pthread_t w, rd1, rd2;

    pthread_create(&rd1, NULL, race_reader, &r);
    pthread_create(&rd2, NULL, race_reader, &r);
    pthread_create(&w, NULL, race_writer, &r);
    pthread_join(w, NULL);
    pthread_join(rd1, NULL);
    pthread_join(rd2, NULL);
    assert_int_equal(r.torn, 0);
    /* Readers are not starved: some lookups hit during the writes, and
     * once the writes stop the last value is there, whole. */
    assert_true(r.hits > 0);
    assert_int_equal(race_read(&r, p), 1);
}

static int refuse_reads(void *ctx)
{
    (void)ctx;
    return 0;
}

/* A process of a retired generation reads nothing: the store's readable()
 * says so even though lookups take no lock. */
static void lookups_stop_when_the_store_is_not_readable(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_lock_t lk = {plain_lock, plain_unlock, NULL, NULL};
    char *mem = apr_pcalloc(p, 32 * 1024);
    void **ptrs = apr_pcalloc(p, 33 * sizeof(void *));
    const unsigned char *key = key_of(p, "k");
    mcp_entry_key_t k = {key, KIND, T0 + SEC(60), -1, 0};
    mcp_store_t *st, *retired;
    char *v;
    size_t len;
    unsigned i;
    int evicted;

    for (i = 0; i < 32; i++)
        ptrs[i] = mem + i * 1024;
    st = mcp_store_create(p, ptrs, 32, 1024, NULL, 0, 0, lk);
    assert_int_equal(mcp_store_put(st, &k, T0, "value", 5, &evicted), 0);
    assert_int_equal(mcp_store_get(st, &k, T0, p, &v, &len), 0);
    lk.readable = refuse_reads;
    retired = mcp_store_create(p, ptrs, 32, 1024, NULL, 0, 0, lk);
    assert_int_equal(mcp_store_get(retired, &k, T0, p, &v, &len), -1);
}

/* The keyring's lock-free look at a document: its generation and fetch
 * time for the right key only, nothing once the store is not readable. */
static void doc_peek_reads_generation_and_time_without_the_lock(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_lock_t lk = {plain_lock, plain_unlock, NULL, NULL};
    void **docs = apr_pcalloc(p, 2 * sizeof(void *));
    const unsigned char *a = key_of(p, "a"), *b = key_of(p, "b");
    mcp_store_t *st, *retired;
    mcp_doc_meta_t m;
    uint64_t gen = 99;
    apr_time_t at = 99;
    int slot;

    docs[0] = apr_pcalloc(p, MCP_DOC_HEADER + 256);
    st = mcp_store_create(p, NULL, 0, 0, docs, 1, MCP_DOC_HEADER + 256, lk);
    mcp_store_doc_place(st, &a, 1, &slot);
    assert_int_equal(mcp_store_doc_peek(st, slot, a, &gen, &at), 0);
    assert_true(gen == 0); /* nothing stored yet */
    assert_int_equal(mcp_store_doc_begin(st, slot, a, T0, &POLICY, 0, &m), MCP_DOC_FETCH);
    assert_int_equal(mcp_store_doc_finish(st, slot, a, T0 + SEC(1), "{\"keys\":[]}", 11), 0);
    assert_int_equal(mcp_store_doc_peek(st, slot, a, &gen, &at), 0);
    assert_true(gen != 0 && gen == mcp_store_doc_generation(st, slot));
    assert_true(at == T0 + SEC(1));
    assert_int_equal(mcp_store_doc_peek(st, slot, b, &gen, &at), -1);
    assert_int_equal(mcp_store_doc_peek(st, 5, a, &gen, &at), -1);
    lk.readable = refuse_reads;
    retired = mcp_store_create(p, NULL, 0, 0, docs, 1, MCP_DOC_HEADER + 256, lk);
    assert_int_equal(mcp_store_doc_peek(retired, slot, a, &gen, &at), -1);
}

/* A store over plain memory (slot i at mem + i * size), as a process of
 * one layout maps the shared segment. */
static mcp_store_t *store_over(apr_pool_t *p, unsigned n, size_t size, void ***ptrs_out)
{
    mcp_store_lock_t lk = {plain_lock, plain_unlock, NULL, NULL};
    char *mem = apr_pcalloc(p, n * size);
    void **ptrs = apr_pcalloc(p, (n + 1) * sizeof(void *));
    unsigned i;
    for (i = 0; i < n; i++)
        ptrs[i] = mem + i * size;
    *ptrs_out = ptrs;
    return mcp_store_create(p, NULL, 0, 0, ptrs, n, size, lk);
}

static void doc_import_carries_documents_to_a_new_layout(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    void **old_ptrs, **new_ptrs;
    /* The old layout: 2 slots of 64 bytes; the new one: 4 slots of 128. */
    mcp_store_t *old = store_over(p, 2, MCP_DOC_HEADER + 64, &old_ptrs);
    mcp_store_t *st = store_over(p, 4, MCP_DOC_HEADER + 128, &new_ptrs);
    const unsigned char *a = key_of(p, "a"), *b = key_of(p, "b"), *c = key_of(p, "c");
    const unsigned char *keys[3];
    int slots[3];
    mcp_doc_meta_t m, old_meta;
    char *text;
    size_t len;

    keys[0] = a, keys[1] = b;
    mcp_store_doc_place(old, keys, 2, slots);
    assert_int_equal(mcp_store_doc_finish(old, slots[0], a, T0, "{\"a\":1}", 7), 0);
    assert_int_equal(mcp_store_doc_meta(old, slots[0], a, &old_meta), 0);
    /* A fetch in flight in the old layout does not travel. */
    assert_int_equal(mcp_store_doc_begin(old, slots[1], b, T0, &POLICY, 0, &m), MCP_DOC_FETCH);

    keys[0] = c, keys[1] = b, keys[2] = a;
    mcp_store_doc_place(st, keys, 3, slots);
    assert_int_equal(mcp_store_doc_import(st, old_ptrs, 2, MCP_DOC_HEADER + 64, keys, slots, 3), 1);
    assert_int_equal(mcp_store_doc_meta(st, slots[2], a, &m), 0);
    /* The same generation (entries tied to it stay valid) and the same bytes. */
    assert_true(m.generation == old_meta.generation && m.fetched_at == T0 && m.lease_until == 0);
    assert_int_equal(mcp_store_doc_copy(st, slots[2], a, m.generation, p, &text, &len), 0);
    assert_string_equal(text, "{\"a\":1}");
    /* b was never fetched: nothing to carry, and no lease either. */
    assert_int_equal(mcp_store_doc_meta(st, slots[1], b, &m), 0);
    assert_true(m.generation == 0 && m.lease_until == 0);
    /* A newer copy already in the new layout is not replaced by an older one. */
    assert_int_equal(mcp_store_doc_finish(st, slots[2], a, T0 + SEC(5), "{\"a\":2}", 7), 0);
    assert_int_equal(mcp_store_doc_import(st, old_ptrs, 2, MCP_DOC_HEADER + 64, keys, slots, 3), 0);
    /* A document larger than the new slots stays behind. */
    {
        void **tiny_ptrs;
        mcp_store_t *tiny = store_over(p, 1, MCP_DOC_HEADER + 4, &tiny_ptrs);
        const unsigned char *only[1];
        int slot;
        only[0] = a;
        mcp_store_doc_place(tiny, only, 1, &slot);
        assert_int_equal(mcp_store_doc_import(tiny, old_ptrs, 2, MCP_DOC_HEADER + 64, only, &slot, 1), 0);
    }
}

static void doc_adopt_drops_leases_of_retired_processes(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 0, 0, 2, MCP_DOC_HEADER + 64);
    const unsigned char *a = key_of(p, "a"), *b = key_of(p, "b");
    apr_time_t now = apr_time_now();
    mcp_doc_meta_t m;

    /* a: a first fetch in flight in a process of the old generation. */
    assert_int_equal(mcp_store_doc_begin(st, 0, a, now, &POLICY, 0, &m), MCP_DOC_FETCH);
    assert_int_equal(mcp_store_doc_begin(st, 0, a, now + 1, &POLICY, 0, &m), MCP_DOC_WAIT);
    /* b: keys fetched, then a forced refresh in flight. */
    assert_int_equal(mcp_store_doc_begin(st, 1, b, now, &POLICY, 0, &m), MCP_DOC_FETCH);
    assert_int_equal(mcp_store_doc_finish(st, 1, b, now, "{}", 2), 0);
    assert_int_equal(mcp_store_doc_begin(st, 1, b, now + SEC(40), &POLICY, 1, &m), MCP_DOC_FETCH);

    mcp_store_doc_adopt(st);
    /* The new generation fetches at once: no lease to wait out, no cooldown
     * started by an attempt whose result it will never see. */
    assert_int_equal(mcp_store_doc_begin(st, 0, a, now + 2, &POLICY, 0, &m), MCP_DOC_FETCH);
    assert_int_equal(mcp_store_doc_begin(st, 1, b, now + SEC(41), &POLICY, 1, &m), MCP_DOC_FETCH);
    /* Markers of retired askers go; values stay. */
    {
        mcp_store_t *es = mcp_store_create_local(p, 64, 256, 0, 0);
        mcp_entry_key_t marker = ekey(key_of(p, "asking"), now + SEC(10)), value = ekey(key_of(p, "v"), now + SEC(10));
        char *v;
        size_t len;
        int ev;
        assert_int_equal(mcp_store_add_ex(es, &marker, now, "", 0, MCP_ENTRY_TRANSIENT), 1);
        assert_int_equal(mcp_store_put(es, &value, now, "kept", 4, &ev), 0);
        assert_int_equal(mcp_store_add_ex(es, &marker, now + 1, "", 0, MCP_ENTRY_TRANSIENT), 0);
        mcp_store_entries_adopt(es, now + 2);
        assert_int_equal(mcp_store_add_ex(es, &marker, now + 2, "", 0, MCP_ENTRY_TRANSIENT), 1);
        assert_int_equal(mcp_store_get(es, &value, now + 2, p, &v, &len), 0);
        assert_string_equal(v, "kept");
    }
    /* A wait for the retired fetch returns at once. */
    {
        mcp_store_t *st2 = mcp_store_create_local(p, 0, 0, 1, MCP_DOC_HEADER + 64);
        apr_time_t t0;
        assert_int_equal(mcp_store_doc_begin(st2, 0, a, apr_time_now(), &POLICY, 0, &m), MCP_DOC_FETCH);
        mcp_store_doc_adopt(st2);
        t0 = apr_time_now();
        mcp_store_doc_wait(st2, 0, a, t0 + SEC(5));
        assert_true(apr_time_now() - t0 < apr_time_from_msec(50));
    }
}

static void *APR_THREAD_FUNC stop_later(apr_thread_t *t, void *data)
{
    (void)data;
    apr_sleep(apr_time_from_msec(200));
    mcp_stopping_set();
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void doc_wait_notices_stopping(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 0, 0, 1, MCP_DOC_HEADER + 64);
    const unsigned char *key = key_of(p, "jwks-stop");
    mcp_doc_policy_t pol = {SEC(100), SEC(30), SEC(10)};
    apr_thread_t *t;
    apr_status_t rv;
    apr_time_t t0;
    mcp_doc_meta_t m;

    assert_int_equal(mcp_store_doc_begin(st, 0, key, apr_time_now(), &pol, 0, &m), MCP_DOC_FETCH);
    /* httpd tells the child to stop 200 ms into a wait for a hung fetch. */
    apr_thread_create(&t, NULL, stop_later, NULL, p);
    t0 = apr_time_now();
    mcp_store_doc_wait(st, 0, key, t0 + SEC(5));
    assert_true(apr_time_now() - t0 < apr_time_from_msec(450));
    apr_thread_join(&rv, t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(entry_roundtrip),
        TU_TEST(entry_expiry_and_size),
        TU_TEST(entry_lru_eviction),
        TU_TEST(entry_expired_slot_reused_without_eviction),
        TU_TEST(small_values_share_slots),
        TU_TEST(doc_lease_and_generations),
        TU_TEST(failed_fetch_cooldown_runs_from_its_end),
        TU_TEST(doc_wait_is_woken_when_the_fetch_lands),
        TU_TEST(doc_wait_is_bounded),
        TU_TEST(doc_failure_backs_off),
        TU_TEST(doc_too_large_and_foreign_slot),
        TU_TEST(entry_dependency_on_document),
        TU_TEST(lookups_never_see_a_half_written_entry),
        TU_TEST(lookups_stop_when_the_store_is_not_readable),
        TU_TEST(doc_peek_reads_generation_and_time_without_the_lock),
        TU_TEST(transient_entries_never_evict_live_ones),
        TU_TEST(transient_entries_leave_free_ways_to_ordinary_ones),
        TU_TEST(replace_and_get_any),
        TU_TEST(doc_place_finds_documents_by_key),
        TU_TEST(doc_import_carries_documents_to_a_new_layout),
        TU_TEST(doc_adopt_drops_leases_of_retired_processes),
        TU_TEST(live_entries_counts_what_a_lookup_would_find),
        /* Last: the stopping flag stays set for the rest of the process. */
        TU_TEST(doc_wait_notices_stopping),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
