/* SPDX-License-Identifier: Apache-2.0 */
/* policy_memo.c: a memo answers only for its key (memo_answers_only_its_key).
 * The policy memo's per-thread last hit (looked at before the lock): it
 * answers only for the memo and the entries it was read from -- never
 * after a put, never for another memo made later at the same address,
 * never for another thread's keys -- and the slots still answer when it
 * cannot (keys longer than it keeps). */
#include "test_util.h"

#include <apr_thread_proc.h>

#include "policy_memo.h"

static void fill(unsigned char fp[MCP_FINGERPRINT_LEN], int v)
{
    memset(fp, v, MCP_FINGERPRINT_LEN);
}

static void test_put_forgets_the_last_hit(void **state)
{
    apr_pool_t *p = *state;
    mcp_policy_memo_t *m = mcp_policy_memo_create(p, 1);
    unsigned char a[MCP_FINGERPRINT_LEN], b[MCP_FINGERPRINT_LEN], out[MCP_FINGERPRINT_LEN];
    const char k1[] = "policy one", k2[] = "policy two";

    fill(a, 1);
    fill(b, 2);
    mcp_policy_memo_put(m, k1, sizeof(k1), a);
    assert_int_equal(mcp_policy_memo_get(m, k1, sizeof(k1), out), 0); /* the last hit now */
    assert_int_equal(mcp_policy_memo_get(m, k1, sizeof(k1), out), 0); /* from it */
    assert_memory_equal(out, a, sizeof(a));
    mcp_policy_memo_put(m, k2, sizeof(k2), b); /* the one slot: k1 is gone */
    assert_int_equal(mcp_policy_memo_get(m, k1, sizeof(k1), out), -1);
}

static void test_new_memo_same_address(void **state)
{
    apr_pool_t *p = *state, *sub;
    unsigned char a[MCP_FINGERPRINT_LEN], out[MCP_FINGERPRINT_LEN];
    const char k[] = "policy of the old configuration";
    mcp_policy_memo_t *m;
    int i;

    fill(a, 3);
    for (i = 0; i < 4; i++) {
        apr_pool_create(&sub, p);
        m = mcp_policy_memo_create(sub, 4);
        /* a fresh memo (often at the old one's address) knows nothing */
        assert_int_equal(mcp_policy_memo_get(m, k, sizeof(k), out), -1);
        mcp_policy_memo_put(m, k, sizeof(k), a);
        assert_int_equal(mcp_policy_memo_get(m, k, sizeof(k), out), 0);
        apr_pool_destroy(sub);
    }
}

static void test_long_keys_from_the_slots(void **state)
{
    apr_pool_t *p = *state;
    mcp_policy_memo_t *m = mcp_policy_memo_create(p, 8);
    unsigned char a[MCP_FINGERPRINT_LEN], out[MCP_FINGERPRINT_LEN];
    char k[2000], k2[2000];

    fill(a, 4);
    memset(k, 'x', sizeof(k));
    memcpy(k2, k, sizeof(k));
    k2[sizeof(k2) - 1] = 'y'; /* differs in the last byte only */
    mcp_policy_memo_put(m, k, sizeof(k), a);
    assert_int_equal(mcp_policy_memo_get(m, k, sizeof(k), out), 0);
    assert_int_equal(mcp_policy_memo_get(m, k, sizeof(k), out), 0);
    assert_memory_equal(out, a, sizeof(a));
    assert_int_equal(mcp_policy_memo_get(m, k2, sizeof(k2), out), -1);
}

/* Another thread's last hit is its own: a key this thread never read is
 * answered from the slots (here: not at all, it was never put). */
typedef struct {
    mcp_policy_memo_t *m;
    int rc_known, rc_unknown;
} thread_arg;

static void *APR_THREAD_FUNC other_thread(apr_thread_t *t, void *data)
{
    thread_arg *arg = data;
    unsigned char out[MCP_FINGERPRINT_LEN];
    const char known[] = "put by the main thread", unknown[] = "read by main thread";
    arg->rc_known = mcp_policy_memo_get(arg->m, known, sizeof(known), out);
    arg->rc_unknown = mcp_policy_memo_get(arg->m, unknown, sizeof(unknown), out);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_threads_keep_their_own(void **state)
{
    apr_pool_t *p = *state;
    mcp_policy_memo_t *m = mcp_policy_memo_create(p, 1);
    unsigned char a[MCP_FINGERPRINT_LEN], out[MCP_FINGERPRINT_LEN];
    const char known[] = "put by the main thread";
    thread_arg arg = {m, 9, 9};
    apr_thread_t *t;
    apr_status_t rv;

    fill(a, 5);
    mcp_policy_memo_put(m, known, sizeof(known), a);
    assert_int_equal(mcp_policy_memo_get(m, known, sizeof(known), out), 0);
    assert_int_equal(apr_thread_create(&t, NULL, other_thread, &arg, p), APR_SUCCESS);
    apr_thread_join(&rv, t);
    assert_int_equal(arg.rc_known, 0);    /* from the slot */
    assert_int_equal(arg.rc_unknown, -1); /* never put */
}

/* The per-process memo answers only for the exact key bytes it was given,
 * and a replaced slot forgets the old key. */
static void memo_answers_only_its_key(void **state)
{
    apr_pool_t *p = *state;
    mcp_policy_memo_t *m = mcp_policy_memo_create(p, 1); /* one slot: every key collides */
    unsigned char a[MCP_FINGERPRINT_LEN], b[MCP_FINGERPRINT_LEN], out[MCP_FINGERPRINT_LEN];
    const char k1[] = "generation 1 policy A", k2[] = "generation 1 policy B";

    memset(a, 0xaa, sizeof(a));
    memset(b, 0xbb, sizeof(b));
    assert_int_equal(mcp_policy_memo_get(m, k1, sizeof(k1), out), -1);
    mcp_policy_memo_put(m, k1, sizeof(k1), a);
    assert_int_equal(mcp_policy_memo_get(m, k1, sizeof(k1), out), 0);
    assert_memory_equal(out, a, sizeof(a));
    /* same length, one byte apart; a prefix; a longer key */
    assert_int_equal(mcp_policy_memo_get(m, k2, sizeof(k2), out), -1);
    assert_int_equal(mcp_policy_memo_get(m, k1, sizeof(k1) - 1, out), -1);
    mcp_policy_memo_put(m, k2, sizeof(k2), b);
    assert_int_equal(mcp_policy_memo_get(m, k1, sizeof(k1), out), -1);
    assert_int_equal(mcp_policy_memo_get(m, k2, sizeof(k2), out), 0);
    assert_memory_equal(out, b, sizeof(b));
    assert_int_equal(mcp_policy_memo_get(NULL, k2, sizeof(k2), out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_put_forgets_the_last_hit), TU_TEST(test_new_memo_same_address),
        TU_TEST(test_long_keys_from_the_slots), TU_TEST(test_threads_keep_their_own),
        TU_TEST(memo_answers_only_its_key),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("policy_memo", tests, NULL, NULL);
}
