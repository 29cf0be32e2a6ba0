/* SPDX-License-Identifier: Apache-2.0 */
#include "policy_memo.h"

#include <apr_thread_mutex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One malloc'd block per entry: the fingerprint, then the key bytes. */
typedef struct {
    size_t len;
    unsigned char fp[MCP_FINGERPRINT_LEN];
    unsigned char key[];
} entry;

struct mcp_policy_memo {
    apr_thread_mutex_t *lock;
    unsigned mask;
    entry **slots;
    unsigned long serial; /* changes with every put: see last_hit */
};

/* The last hit of this thread, looked at before the lock and the hash: a
 * thread serves one location request after request. It counts only while
 * the memo's serial is the one it was read under, so a put (a new entry
 * that may have replaced this one) or a memo of another configuration
 * made at the same address never answers from it. */
#define LAST_MAX 512
static __thread struct {
    unsigned long serial;
    size_t len;
    unsigned char fp[MCP_FINGERPRINT_LEN];
    unsigned char key[LAST_MAX];
} last_hit;
static unsigned long serial_counter;

static unsigned long new_serial(void)
{
    return __atomic_add_fetch(&serial_counter, 1, __ATOMIC_RELAXED);
}

static apr_status_t free_all(void *data)
{
    mcp_policy_memo_t *m = data;
    unsigned i;
    for (i = 0; i <= m->mask; i++) {
        free(m->slots[i]);
        m->slots[i] = NULL;
    }
    return APR_SUCCESS;
}

mcp_policy_memo_t *mcp_policy_memo_create(apr_pool_t *p, unsigned slots)
{
    mcp_policy_memo_t *m = apr_pcalloc(p, sizeof(*m));
    unsigned n = 1;
    while (n < slots)
        n <<= 1;
    m->mask = n - 1;
    m->slots = apr_pcalloc(p, n * sizeof(entry *));
    m->serial = new_serial();
    apr_thread_mutex_create(&m->lock, APR_THREAD_MUTEX_DEFAULT, p);
    apr_pool_cleanup_register(p, m, free_all, apr_pool_cleanup_null);
    return m;
}

/* Eight bytes per step: the key is a few hundred bytes and this runs for
 * every request (a byte-wise hash cost more than the rest of the lookup). */
static unsigned slot_of(const mcp_policy_memo_t *m, const unsigned char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u ^ len, w;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&w, key + i, 8);
        h = (h ^ w) * 0x100000001b3u;
        h ^= h >> 29;
    }
    for (; i < len; i++)
        h = (h ^ key[i]) * 0x100000001b3u;
    return (unsigned)(h ^ (h >> 32)) & m->mask;
}

int mcp_policy_memo_get(mcp_policy_memo_t *m, const void *key, size_t len, unsigned char fp[MCP_FINGERPRINT_LEN])
{
    entry *e;
    unsigned long serial;
    int hit = 0;
    if (!m)
        return -1;
    serial = __atomic_load_n(&m->serial, __ATOMIC_ACQUIRE);
    if (last_hit.serial == serial && last_hit.len == len && memcmp(last_hit.key, key, len) == 0) {
        memcpy(fp, last_hit.fp, MCP_FINGERPRINT_LEN);
        return 0;
    }
    apr_thread_mutex_lock(m->lock);
    e = m->slots[slot_of(m, key, len)];
    if (e && e->len == len && memcmp(e->key, key, len) == 0) {
        memcpy(fp, e->fp, MCP_FINGERPRINT_LEN);
        hit = 1;
    }
    serial = m->serial;
    apr_thread_mutex_unlock(m->lock);
    if (hit && len <= LAST_MAX) {
        last_hit.serial = serial;
        last_hit.len = len;
        memcpy(last_hit.fp, fp, MCP_FINGERPRINT_LEN);
        memcpy(last_hit.key, key, len);
    }
    return hit ? 0 : -1;
}

void mcp_policy_memo_put(mcp_policy_memo_t *m, const void *key, size_t len, const unsigned char fp[MCP_FINGERPRINT_LEN])
{
    entry *e, *old;
    unsigned slot;
    if (!m)
        return;
    e = malloc(sizeof(*e) + len);
    if (!e)
        return; /* a lost memo entry costs one SHA-256 */
    e->len = len;
    memcpy(e->fp, fp, MCP_FINGERPRINT_LEN);
    memcpy(e->key, key, len);
    slot = slot_of(m, key, len);
    apr_thread_mutex_lock(m->lock);
    old = m->slots[slot];
    m->slots[slot] = e;
    __atomic_store_n(&m->serial, new_serial(), __ATOMIC_RELEASE);
    apr_thread_mutex_unlock(m->lock);
    free(old);
}
