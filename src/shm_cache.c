/* SPDX-License-Identifier: Apache-2.0 */
#include "shm_cache.h"
#include "metrics.h"

#include "sha256.h"
#include "stopping.h"

#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <string.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <limits.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif

/* Slot layouts. Only fixed-size integers and bytes: the same bytes are
 * read by processes of different generations after a graceful restart. */
typedef struct {
    unsigned char key[32];
    uint32_t kind; /* 0: empty */
    uint32_t len;
    int64_t expires;
    int64_t last_used;
    uint64_t dep_generation;
    int32_t dep_doc;
    /* MCP_ENTRY_TRANSIENT or 0. Was padding: slots written by an older
     * module read as 0 (ordinary entries). */
    uint32_t flags;
    /* Sequence count of the slot's writes (seqlock): odd while a writer
     * (holding the lock) changes the slot, even otherwise. Readers take no
     * lock: they copy the slot and keep the copy only if the count was
     * even and unchanged around it. Was padding: 0 in slots an older
     * module wrote. */
    uint32_t seq;
    unsigned char pad[4];
} entry_hdr;

typedef struct {
    unsigned char key[32];
    unsigned char content_hash[32];
    int64_t fetched_at;
    int64_t attempted_at;
    int64_t lease_until;
    uint64_t generation; /* read without the lock: naturally aligned */
    uint32_t len;
    /* Bumped (under the lock) each time a fetch ends; waiters sleep on it
     * with a futex. Not a private futex: waiters and the fetcher are
     * different processes sharing this segment. */
    uint32_t fetch_seq;
    /* Failed attempts in a row while nothing is stored: a first fetch that
     * fails (IdP not up yet at boot) is retried after 1 s, 2 s, 4 s, ...
     * up to the cooldown, not after the whole cooldown. */
    uint32_t failures;
    unsigned char pad[20];
} doc_hdr;

_Static_assert(sizeof(entry_hdr) == MCP_ENTRY_HEADER, "entry header size");
_Static_assert(sizeof(doc_hdr) == MCP_DOC_HEADER, "document header size");

/* A table of equal-sized entry slots, searched MCP_STORE_WAYS at a time. */
typedef struct {
    void **slots;
    unsigned n;
    size_t size;
} table;

struct mcp_store {
    /* Most verdicts are a few hundred bytes: they live in small cells cut
     * from half of the entry slots, so the same memory holds several times
     * MCPAuthCacheEntries of them; larger ones use whole slots. */
    table small, large;
    void **docs;
    unsigned n_docs;
    size_t doc_size;
    mcp_store_lock_t lock;
    uint64_t *epoch;    /* revocation epoch, NULL: none */
    unsigned n_entries; /* MCPAuthCacheEntries, for warnings */
    /* This process's counts (atomic: threaded MPMs), and what the last
     * eviction notice had already reported. */
    mcp_store_stats_t stats, reported;
    apr_time_t last_notice;
    /* Transient entries ("being asked"/"failed" marks, negative answers)
     * written before this time belong to retired processes
     * (mcp_store_entries_adopt): dead. */
    apr_time_t markers_before;
};

#define MCP_SMALL_CELL 512

mcp_store_t *mcp_store_create(apr_pool_t *p, void **entry_ptrs, unsigned n_entries, size_t entry_size, void **doc_ptrs,
                              unsigned n_docs, size_t doc_size, mcp_store_lock_t lock)
{
    mcp_store_t *st = apr_pcalloc(p, sizeof(*st));
    unsigned split = 0, per = (unsigned)(entry_size / MCP_SMALL_CELL), i, j;

    if (entry_size <= MCP_ENTRY_HEADER)
        n_entries = 0;
    /* Split only when a slot holds at least two cells and some slots remain whole. */
    if (per >= 2 && n_entries >= 2 * MCP_STORE_WAYS)
        split = n_entries / 2;
    st->small.n = split * per;
    st->small.size = MCP_SMALL_CELL;
    st->small.slots = apr_palloc(p, (st->small.n + 1) * sizeof(void *));
    for (i = 0; i < split; i++)
        for (j = 0; j < per; j++)
            st->small.slots[i * per + j] = (char *)entry_ptrs[i] + j * MCP_SMALL_CELL;
    st->large.slots = entry_ptrs ? entry_ptrs + split : NULL; /* no entries: no pointer arithmetic on NULL */
    st->large.n = n_entries - split;
    st->large.size = entry_size;
    st->docs = doc_ptrs;
    st->n_docs = doc_size > MCP_DOC_HEADER ? n_docs : 0;
    st->doc_size = doc_size;
    st->lock = lock;
    st->n_entries = n_entries;
    return st;
}

static int thread_lock(void *ctx)
{
    return apr_thread_mutex_lock(ctx) == APR_SUCCESS ? 0 : -1;
}

static void thread_unlock(void *ctx)
{
    apr_thread_mutex_unlock(ctx);
}

mcp_store_t *mcp_store_create_local(apr_pool_t *p, unsigned n_entries, size_t entry_size, unsigned n_docs,
                                    size_t doc_size)
{
    void **e = apr_pcalloc(p, (n_entries + 1) * sizeof(void *));
    void **d = apr_pcalloc(p, (n_docs + 1) * sizeof(void *));
    char *emem = apr_pcalloc(p, n_entries * entry_size + 1), *dmem = apr_pcalloc(p, n_docs * doc_size + 1);
    apr_thread_mutex_t *m;
    mcp_store_lock_t lock;
    mcp_store_t *st;
    unsigned i;

    for (i = 0; i < n_entries; i++)
        e[i] = emem + i * entry_size;
    for (i = 0; i < n_docs; i++)
        d[i] = dmem + i * doc_size;
    apr_thread_mutex_create(&m, APR_THREAD_MUTEX_DEFAULT, p);
    lock.lock = thread_lock;
    lock.unlock = thread_unlock;
    lock.readable = NULL;
    lock.ctx = m;
    st = mcp_store_create(p, e, n_entries, entry_size, d, n_docs, doc_size, lock);
    mcp_store_attach_epoch(st, apr_pcalloc(p, sizeof(uint64_t)));
    return st;
}

size_t mcp_store_entry_capacity(const mcp_store_t *st)
{
    return st->large.n ? st->large.size - MCP_ENTRY_HEADER : 0;
}

size_t mcp_store_doc_capacity(const mcp_store_t *st)
{
    return st->n_docs ? st->doc_size - MCP_DOC_HEADER : 0;
}

static int lock(mcp_store_t *st)
{
    return st->lock.lock(st->lock.ctx);
}

static void unlock(mcp_store_t *st)
{
    st->lock.unlock(st->lock.ctx);
}

/* ---- entries ------------------------------------------------------------ */

static unsigned first_slot(const table *t, const unsigned char *key)
{
    uint32_t h = (uint32_t)key[0] << 24 | (uint32_t)key[1] << 16 | (uint32_t)key[2] << 8 | key[3];
    return h % t->n;
}

static entry_hdr *entry_at(const table *t, unsigned start, unsigned way)
{
    return (entry_hdr *)t->slots[(start + way) % t->n];
}

static unsigned ways(const table *t)
{
    return t->n < MCP_STORE_WAYS ? t->n : MCP_STORE_WAYS;
}

static int dependency_holds(const mcp_store_t *st, const entry_hdr *e)
{
    if (e->dep_doc < 0)
        return 1;
    if ((unsigned)e->dep_doc >= st->n_docs)
        return 0;
    return __atomic_load_n(&((doc_hdr *)st->docs[e->dep_doc])->generation, __ATOMIC_ACQUIRE) == e->dep_generation;
}

static int live(const mcp_store_t *st, const entry_hdr *e, apr_time_t now)
{
    return e->kind && e->expires > now && dependency_holds(st, e) &&
           !((e->flags & MCP_ENTRY_TRANSIENT) && e->last_used < st->markers_before);
}

/* The entry with this key in table t (any kind), or NULL. */
static entry_hdr *find(const table *t, const unsigned char *key)
{
    unsigned start, w;
    if (!t->n)
        return NULL;
    start = first_slot(t, key);
    for (w = 0; w < ways(t); w++) {
        entry_hdr *e = entry_at(t, start, w);
        if (e->kind && memcmp(e->key, key, 32) == 0)
            return e;
    }
    return NULL;
}

/* The table a value of len bytes goes to (NULL: too large for any). */
static const table *table_for(const mcp_store_t *st, size_t len)
{
    if (st->small.n && len <= st->small.size - MCP_ENTRY_HEADER)
        return &st->small;
    if (st->large.n && len <= st->large.size - MCP_ENTRY_HEADER)
        return &st->large;
    return NULL;
}

int mcp_store_get(mcp_store_t *st, const mcp_entry_key_t *k, apr_time_t now, apr_pool_t *p, char **value, size_t *len)
{
    mcp_entry_meta_t meta;
    return mcp_store_get_meta(st, k, now, p, value, len, &meta);
}

/* ---- lock-free reads (seqlock) ----------------------------------------
 * Every change to an entry slot happens under the store's lock between
 * write_begin and write_end. Lookups take no lock at all: with every
 * child's threads looking up verdicts, one global mutex was the cost of a
 * shared-cache hit (futex sleeps and wake-ups, not instructions). */

static void write_begin(entry_hdr *e)
{
    __atomic_store_n(&e->seq, e->seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE); /* the odd count is seen before any change */
}

static void write_end(entry_hdr *e)
{
    __atomic_store_n(&e->seq, e->seq + 1, __ATOMIC_RELEASE);
}

/* Frees a slot (caller holds the lock). */
static void clear_entry(entry_hdr *e)
{
    write_begin(e);
    e->kind = 0;
    write_end(e);
}

/* Whether lock-free readers may look at the store at all (a retired
 * generation's children may not; see mcp_store_lock_t.readable). */
static int readable(const mcp_store_t *st)
{
    return st && (!st->lock.readable || st->lock.readable(st->lock.ctx));
}

/* How often a hit refreshes the entry's last use (for LRU eviction): not
 * on every hit, so readers in two processes do not keep writing the
 * same cache line. */
#define LRU_GRAIN apr_time_from_msec(100)

/* How many times a reader retries a slot a writer was changing. A miss
 * after that costs speed only (the caller verifies the token). */
#define READ_TRIES 4

/* Copies slot e's header into *h and its value into a pool buffer of
 * exactly its length (*value, NUL-terminated), as one consistent
 * snapshot. 0: both are as some writer left them; -1: a writer kept
 * changing the slot, or the length does not fit the slot. The bytes read
 * during a write are thrown away unread. */
static int snapshot(const table *t, entry_hdr *e, apr_pool_t *p, entry_hdr *h, char **value)
{
    size_t room = 0;
    int tries;

    *value = NULL;
    for (tries = 0; tries < READ_TRIES; tries++) {
        uint32_t before = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
        if (before & 1)
            continue;
        memcpy(h, e, MCP_ENTRY_HEADER);
        if (h->len <= t->size - MCP_ENTRY_HEADER) {
            if (room < (size_t)h->len + 1)
                *value = apr_palloc(p, room = (size_t)h->len + 1);
            memcpy(*value, (char *)e + MCP_ENTRY_HEADER, h->len);
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&e->seq, __ATOMIC_RELAXED) != before)
            continue;
        if (h->len > t->size - MCP_ENTRY_HEADER)
            return -1;
        (*value)[h->len] = '\0';
        return 0;
    }
    return -1;
}

/* The live entry with this key and kind (0: any kind) in t, copied. The
 * slot is found by an unlocked look (find), then copied and checked again:
 * a key has one slot per table, so a slot rewritten for another key
 * meanwhile is a miss. */
static int read_entry(mcp_store_t *st, const table *t, const unsigned char *key, uint32_t kind, apr_time_t now,
                      apr_pool_t *p, uint32_t *found, char **value, size_t *len, mcp_entry_meta_t *meta)
{
    entry_hdr *e = find(t, key), h;

    if (!e || snapshot(t, e, p, &h, value))
        return -1;
    if (!h.kind || memcmp(h.key, key, 32) != 0 || (kind && h.kind != kind) || !live(st, &h, now))
        return -1;
    if (now - h.last_used > LRU_GRAIN)
        __atomic_store_n(&e->last_used, now, __ATOMIC_RELAXED);
    *len = h.len;
    *found = h.kind;
    meta->expires = h.expires;
    meta->dep_doc = h.dep_doc;
    meta->dep_generation = h.dep_generation;
    return 0;
}

/* The live entry with this key and kind (0: any kind) and a copy of its
 * value, without the lock. Dead entries stay for a writer to reuse. */
static int lookup(mcp_store_t *st, const unsigned char *key, uint32_t kind, apr_time_t now, apr_pool_t *p,
                  uint32_t *found, char **value, size_t *len, mcp_entry_meta_t *meta)
{
    if (!readable(st))
        return -1;
    if (read_entry(st, &st->small, key, kind, now, p, found, value, len, meta) == 0)
        return 0;
    return read_entry(st, &st->large, key, kind, now, p, found, value, len, meta);
}

int mcp_store_get_meta(mcp_store_t *st, const mcp_entry_key_t *k, apr_time_t now, apr_pool_t *p, char **value,
                       size_t *len, mcp_entry_meta_t *meta)
{
    uint32_t kind;
    return lookup(st, k->key, k->kind, now, p, &kind, value, len, meta);
}

int mcp_store_get_any(mcp_store_t *st, const unsigned char *key, apr_time_t now, apr_pool_t *p, uint32_t *kind,
                      char **value, size_t *len, mcp_entry_meta_t *meta)
{
    return lookup(st, key, 0, now, p, kind, value, len, meta);
}

static void write_entry(entry_hdr *slot, const mcp_entry_key_t *k, apr_time_t now, const void *value, size_t len,
                        unsigned flags)
{
    write_begin(slot);
    memcpy(slot->key, k->key, 32);
    slot->kind = k->kind;
    slot->len = (uint32_t)len;
    slot->expires = k->expires;
    slot->last_used = now;
    slot->dep_doc = k->dep_doc;
    slot->dep_generation = k->dep_generation;
    slot->flags = flags & MCP_ENTRY_TRANSIENT;
    memcpy((char *)slot + MCP_ENTRY_HEADER, value, len);
    write_end(slot);
}

static void count(uint64_t *counter)
{
    __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
}

/* How many ways of a set transient entries may hold between them: a flood
 * of random tokens (each a "being asked" mark, then a negative answer)
 * churns through these and never reaches the ordinary entries. */
static unsigned transient_ways(const table *t)
{
    return ways(t) < MCP_STORE_TRANSIENT_WAYS ? ways(t) : MCP_STORE_TRANSIENT_WAYS;
}

/* Where a new entry goes in t, or NULL. An ordinary entry takes a free or
 * dead slot, else the least recently used transient one, else the least
 * recently used of the set (*evicted). A transient entry never pushes out
 * a live ordinary one: a free slot while fewer than transient_ways() of
 * the set are transient, else the least recently used transient one, else
 * nothing. Every eviction and refusal is counted. Caller holds the lock. */
static entry_hdr *room_in(mcp_store_t *st, const table *t, const unsigned char *key, apr_time_t now, unsigned flags,
                          int *evicted)
{
    unsigned start = first_slot(t, key), w, n_transient = 0;
    entry_hdr *free_slot = NULL, *old_transient = NULL, *old_ordinary = NULL, *victim;

    for (w = 0; w < ways(t); w++) {
        entry_hdr *e = entry_at(t, start, w);
        if (!live(st, e, now)) {
            if (!free_slot)
                free_slot = e;
        }
        else if (e->flags & MCP_ENTRY_TRANSIENT) {
            n_transient++;
            if (!old_transient || e->last_used < old_transient->last_used)
                old_transient = e;
        }
        else if (!old_ordinary || e->last_used < old_ordinary->last_used) {
            old_ordinary = e;
        }
    }
    if (flags & MCP_ENTRY_TRANSIENT) {
        if (free_slot && n_transient < transient_ways(t))
            return free_slot;
        victim = old_transient;
    }
    else {
        if (free_slot)
            return free_slot;
        victim = old_transient ? old_transient : old_ordinary;
    }
    if (!victim) {
        count(&st->stats.refused_transient);
        return NULL;
    }
    if (victim->flags & MCP_ENTRY_TRANSIENT) {
        count(&st->stats.evicted_transient);
        mcp_metric_add(MCP_M_CACHE_EVICTION, 1);
    }
    else {
        count(&st->stats.evicted_live);
        mcp_metric_add(MCP_M_CACHE_EVICTION, 1);
        *evicted = 1;
    }
    return victim;
}

/* The table for len bytes, counting values too large for any. */
static const table *table_counted(mcp_store_t *st, size_t len)
{
    const table *t = st ? table_for(st, len) : NULL;
    if (st && !t)
        count(&st->stats.too_large);
    return t;
}

int mcp_store_put(mcp_store_t *st, const mcp_entry_key_t *k, apr_time_t now, const void *value, size_t len,
                  int *evicted)
{
    return mcp_store_put_ex(st, k, now, value, len, 0, evicted);
}

int mcp_store_put_ex(mcp_store_t *st, const mcp_entry_key_t *k, apr_time_t now, const void *value, size_t len,
                     unsigned flags, int *evicted)
{
    const table *t;
    entry_hdr *slot, *other;

    *evicted = 0;
    if (!(t = table_counted(st, len)) || lock(st))
        return -1;
    /* One entry per key: replace ours in place, drop a copy in the other table. */
    slot = find(t, k->key);
    other = find(t == &st->small ? &st->large : &st->small, k->key);
    if (other)
        clear_entry(other);
    if (!slot)
        slot = room_in(st, t, k->key, now, flags, evicted);
    if (slot)
        write_entry(slot, k, now, value, len, flags);
    unlock(st);
    return slot ? 0 : -1;
}

/* Stores the value unless the key has a live entry of another kind than
 * `expect` (0: of any kind). 1 stored, 0 not, -1 no room or no lock. */
static int store_unless(mcp_store_t *st, const mcp_entry_key_t *k, apr_time_t now, const void *value, size_t len,
                        unsigned flags, uint32_t expect)
{
    const table *t;
    entry_hdr *mine, *other, *slot;
    int evicted = 0;

    if (!(t = table_counted(st, len)) || lock(st))
        return -1;
    mine = find(t, k->key);
    other = find(t == &st->small ? &st->large : &st->small, k->key);
    if ((mine && live(st, mine, now) && mine->kind != expect) ||
        (other && live(st, other, now) && other->kind != expect)) {
        unlock(st);
        return 0;
    }
    if (other)
        clear_entry(other);
    /* A dead or expected entry with this key is reused in place, so a key
     * never has two slots in one set. */
    slot = mine ? mine : room_in(st, t, k->key, now, flags, &evicted);
    if (slot)
        write_entry(slot, k, now, value, len, flags);
    unlock(st);
    return slot ? 1 : -1;
}

int mcp_store_add(mcp_store_t *st, const mcp_entry_key_t *k, apr_time_t now, const void *value, size_t len)
{
    return store_unless(st, k, now, value, len, 0, 0);
}

int mcp_store_add_ex(mcp_store_t *st, const mcp_entry_key_t *k, apr_time_t now, const void *value, size_t len,
                     unsigned flags)
{
    return store_unless(st, k, now, value, len, flags, 0);
}

int mcp_store_replace(mcp_store_t *st, const mcp_entry_key_t *k, apr_time_t now, const void *value, size_t len,
                      unsigned flags, uint32_t expect)
{
    return store_unless(st, k, now, value, len, flags, expect);
}

void mcp_store_remove(mcp_store_t *st, const unsigned char *key)
{
    entry_hdr *e;
    if (!st || lock(st))
        return;
    if ((e = find(&st->small, key)) != NULL)
        clear_entry(e);
    if ((e = find(&st->large, key)) != NULL)
        clear_entry(e);
    unlock(st);
}

/* ---- entry statistics --------------------------------------------------- */

static void stats_load(const mcp_store_stats_t *from, mcp_store_stats_t *to)
{
    to->evicted_live = __atomic_load_n(&from->evicted_live, __ATOMIC_RELAXED);
    to->evicted_transient = __atomic_load_n(&from->evicted_transient, __ATOMIC_RELAXED);
    to->refused_transient = __atomic_load_n(&from->refused_transient, __ATOMIC_RELAXED);
    to->too_large = __atomic_load_n(&from->too_large, __ATOMIC_RELAXED);
}

void mcp_store_stats(mcp_store_t *st, mcp_store_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (st)
        stats_load(&st->stats, out);
}

unsigned mcp_store_entries(const mcp_store_t *st)
{
    return st ? st->n_entries : 0;
}

static unsigned live_in(const mcp_store_t *st, const table *t, apr_time_t now)
{
    unsigned i, n = 0;
    for (i = 0; i < t->n; i++)
        n += live(st, t->slots[i], now) != 0;
    return n;
}

unsigned mcp_store_live_entries(const mcp_store_t *st, apr_time_t now)
{
    return st ? live_in(st, &st->small, now) + live_in(st, &st->large, now) : 0;
}

unsigned mcp_store_slots(const mcp_store_t *st)
{
    return st ? st->small.n + st->large.n : 0;
}

int mcp_store_eviction_notice(mcp_store_t *st, apr_time_t now, apr_interval_time_t interval, mcp_store_stats_t *since)
{
    apr_time_t last;
    mcp_store_stats_t cur, old;

    if (!st)
        return 0;
    last = __atomic_load_n(&st->last_notice, __ATOMIC_RELAXED);
    if (last && now - last < interval)
        return 0;
    mcp_store_stats(st, &cur);
    stats_load(&st->reported, &old);
    if (cur.evicted_live == old.evicted_live && cur.evicted_transient == old.evicted_transient &&
        cur.refused_transient == old.refused_transient)
        return 0;
    /* One thread of the process wins the interval. */
    if (!__atomic_compare_exchange_n(&st->last_notice, &last, now, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return 0;
    since->evicted_live = cur.evicted_live - old.evicted_live;
    since->evicted_transient = cur.evicted_transient - old.evicted_transient;
    since->refused_transient = cur.refused_transient - old.refused_transient;
    since->too_large = cur.too_large - old.too_large;
    __atomic_store_n(&st->reported.evicted_live, cur.evicted_live, __ATOMIC_RELAXED);
    __atomic_store_n(&st->reported.evicted_transient, cur.evicted_transient, __ATOMIC_RELAXED);
    __atomic_store_n(&st->reported.refused_transient, cur.refused_transient, __ATOMIC_RELAXED);
    __atomic_store_n(&st->reported.too_large, cur.too_large, __ATOMIC_RELAXED);
    return 1;
}

/* ---- documents ---------------------------------------------------------- */

static doc_hdr *doc_at(const mcp_store_t *st, int doc)
{
    if (doc < 0 || (unsigned)doc >= st->n_docs)
        return NULL;
    return (doc_hdr *)st->docs[doc];
}

/* A slot left by another configuration (graceful restart) is reset. */
static void claim_doc(doc_hdr *d, const unsigned char *key)
{
    if (memcmp(d->key, key, 32) == 0)
        return;
    memset(d, 0, sizeof(*d));
    memcpy(d->key, key, 32);
}

static void meta_of(const doc_hdr *d, mcp_doc_meta_t *meta)
{
    meta->fetched_at = d->fetched_at;
    meta->attempted_at = d->attempted_at;
    meta->lease_until = d->lease_until;
    meta->generation = d->generation;
    meta->len = d->len;
}

/* How long after a failed attempt the next unscheduled one may start. */
static apr_interval_time_t retry_after(const doc_hdr *d, const mcp_doc_policy_t *pol)
{
    apr_interval_time_t wait;
    if (d->generation != 0 || d->failures == 0)
        return pol->cooldown;
    wait = apr_time_from_sec(1) << (d->failures - 1 < 20 ? d->failures - 1 : 20);
    return wait < pol->cooldown ? wait : pol->cooldown;
}

mcp_doc_decision mcp_store_doc_begin(mcp_store_t *st, int doc, const unsigned char *key, apr_time_t now,
                                     const mcp_doc_policy_t *pol, int refresh, mcp_doc_meta_t *meta)
{
    doc_hdr *d = doc_at(st, doc);
    mcp_doc_decision decision = MCP_DOC_USE;
    int due, allowed, leased;

    memset(meta, 0, sizeof(*meta));
    if (!d || lock(st))
        return MCP_DOC_UNAVAILABLE;
    claim_doc(d, key);
    due = d->generation == 0 || now - d->fetched_at >= pol->ttl;
    /* Unscheduled attempts (forced, or retries after a failure) are spaced
     * by the cooldown; a copy past its TTL is always due once; with nothing
     * stored, failures back off from 1 s (keys as soon as the IdP is up). */
    allowed = d->attempted_at == 0 || now - d->attempted_at >= retry_after(d, pol) ||
              (due && d->generation != 0 && d->attempted_at <= d->fetched_at);
    leased = d->lease_until > now;
    if ((due || refresh) && allowed && !leased) {
        d->lease_until = now + pol->lease;
        d->attempted_at = now;
        decision = MCP_DOC_FETCH;
    }
    else if (leased && (d->generation == 0 || refresh)) {
        /* Nothing to use yet, or the caller's keys may be in the document
         * being fetched right now (a rotation): wait for it. */
        decision = MCP_DOC_WAIT;
    }
    meta_of(d, meta);
    unlock(st);
    return decision;
}

/* Sleeps until *word differs from seen, a wake-up, or `until` (absolute).
 * Linux: a futex in the shared segment, so the fetcher's wake-up reaches
 * waiters in every process. Elsewhere: short bounded sleeps (the caller
 * re-checks the slot after each). */
static void sleep_on(uint32_t *word, uint32_t seen, apr_time_t until)
{
    apr_interval_time_t left = until - apr_time_now();
    if (left <= 0)
        return;
#if defined(__linux__)
    {
        struct timespec ts;
        ts.tv_sec = (time_t)(left / APR_USEC_PER_SEC);
        ts.tv_nsec = (long)(left % APR_USEC_PER_SEC) * 1000;
        /* EAGAIN (already changed), EINTR, ETIMEDOUT: the caller re-checks. */
        syscall(SYS_futex, word, FUTEX_WAIT, seen, &ts, NULL, 0);
    }
#else
    (void)word;
    (void)seen;
    apr_sleep(left < apr_time_from_msec(10) ? left : apr_time_from_msec(10));
#endif
}

static void wake_waiters(doc_hdr *d)
{
#if defined(__linux__)
    syscall(SYS_futex, &d->fetch_seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
#else
    (void)d;
#endif
}

int mcp_store_doc_finish(mcp_store_t *st, int doc, const unsigned char *key, apr_time_t now, const char *data,
                         size_t len)
{
    doc_hdr *d = doc_at(st, doc);
    unsigned char hash[32];
    int rc = 0;

    if (!d)
        return -2;
    if (data && len > st->doc_size - MCP_DOC_HEADER)
        data = NULL, rc = -1;
    if (data)
        mcp_sha256(data, len, hash);
    if (lock(st))
        return -2;
    claim_doc(d, key);
    d->lease_until = 0;
    __atomic_add_fetch(&d->fetch_seq, 1, __ATOMIC_RELEASE);
    /* A failed attempt's cooldown runs from its end, not its start: a fetch
     * that took the whole timeout must not be followed at once by another
     * (a request that queued behind the first would then wait for both). */
    if (!data) {
        d->attempted_at = now;
        d->failures++;
    }
    if (data) {
        d->failures = 0;
        if (d->generation == 0 || d->len != len || memcmp(d->content_hash, hash, 32) != 0) {
            memcpy((char *)d + MCP_DOC_HEADER, data, len);
            memcpy(d->content_hash, hash, 32);
            d->len = (uint32_t)len;
            /* Generations never repeat, even for a slot that changed owner
             * across a graceful restart: entries tied to an old owner's
             * generation can never match the new owner's. */
            uint64_t g = (uint64_t)now > d->generation ? (uint64_t)now : d->generation + 1;
            __atomic_store_n(&d->generation, g, __ATOMIC_RELEASE);
        }
        __atomic_store_n(&d->fetched_at, now, __ATOMIC_RELEASE); /* after the generation: peek */
    }
    unlock(st);
    wake_waiters(d);
    return rc;
}

int mcp_store_doc_meta(mcp_store_t *st, int doc, const unsigned char *key, mcp_doc_meta_t *meta)
{
    doc_hdr *d = doc_at(st, doc);
    int rc = -1;
    if (!d || lock(st))
        return -1;
    if (memcmp(d->key, key, 32) == 0) {
        meta_of(d, meta);
        rc = 0;
    }
    unlock(st);
    return rc;
}

int mcp_store_doc_copy(mcp_store_t *st, int doc, const unsigned char *key, uint64_t generation, apr_pool_t *p,
                       char **data, size_t *len)
{
    doc_hdr *d = doc_at(st, doc);
    int rc = -1;
    if (!d || lock(st))
        return -1;
    if (memcmp(d->key, key, 32) == 0 && d->generation == generation && generation != 0 &&
        d->len <= st->doc_size - MCP_DOC_HEADER) {
        *data = apr_palloc(p, d->len + 1);
        memcpy(*data, (char *)d + MCP_DOC_HEADER, d->len);
        (*data)[d->len] = '\0';
        *len = d->len;
        rc = 0;
    }
    unlock(st);
    return rc;
}

void mcp_store_doc_wait(mcp_store_t *st, int doc, const unsigned char *key, apr_time_t until)
{
    doc_hdr *d = doc_at(st, doc);
    for (;;) {
        apr_time_t now = apr_time_now(), end = until;
        uint32_t seen;
        if (!d || now >= until || mcp_stopping() || lock(st))
            return;
        /* The sequence is read under the lock the fetcher bumps it under:
         * a fetch ending after this point changes it, so no wake-up is lost. */
        seen = d->fetch_seq;
        if (memcmp(d->key, key, 32) != 0 || d->lease_until <= now) {
            unlock(st);
            return;
        }
        if (d->lease_until < end)
            end = d->lease_until; /* a crashed fetcher's lease runs out */
        /* A stop (mcp_stopping) or a newer generation taking the store
         * over wakes no futex: look again at least every 100 ms. */
        if (end - now > apr_time_from_msec(100))
            end = now + apr_time_from_msec(100);
        unlock(st);
        sleep_on(&d->fetch_seq, seen, end);
    }
}

int mcp_store_doc_peek(mcp_store_t *st, int doc, const unsigned char *key, uint64_t *generation, apr_time_t *fetched_at)
{
    doc_hdr *d = readable(st) ? doc_at(st, doc) : NULL;
    if (!d || memcmp(d->key, key, 32) != 0)
        return -1;
    *generation = __atomic_load_n(&d->generation, __ATOMIC_ACQUIRE);
    *fetched_at = __atomic_load_n(&d->fetched_at, __ATOMIC_ACQUIRE);
    return 0;
}

uint64_t mcp_store_doc_generation(mcp_store_t *st, int doc)
{
    doc_hdr *d = doc_at(st, doc);
    return d ? __atomic_load_n(&d->generation, __ATOMIC_ACQUIRE) : 0;
}

/* ---- generations and layouts (graceful restart) -------------------------- */

static int find_doc(const mcp_store_t *st, const unsigned char *key)
{
    unsigned i;
    for (i = 0; i < st->n_docs; i++)
        if (memcmp(((const doc_hdr *)st->docs[i])->key, key, 32) == 0)
            return (int)i;
    return -1;
}

static int is_wanted(const unsigned char *slot_key, const unsigned char *const *keys, unsigned n)
{
    unsigned i;
    for (i = 0; i < n; i++)
        if (memcmp(slot_key, keys[i], 32) == 0)
            return 1;
    return 0;
}

void mcp_store_doc_place(mcp_store_t *st, const unsigned char *const *keys, unsigned n, int *slots)
{
    unsigned i, j, next_free = 0;

    for (i = 0; i < n; i++)
        slots[i] = st ? find_doc(st, keys[i]) : -1;
    for (i = 0; i < n && st; i++) {
        if (slots[i] >= 0)
            continue;
        /* A key listed twice shares the slot placed for its first mention. */
        for (j = 0; j < i && slots[i] < 0; j++)
            if (memcmp(keys[j], keys[i], 32) == 0)
                slots[i] = slots[j];
        while (slots[i] < 0 && next_free < st->n_docs) {
            doc_hdr *d = st->docs[next_free];
            if (!is_wanted(d->key, keys, n)) {
                claim_doc(d, keys[i]);
                slots[i] = (int)next_free;
            }
            next_free++;
        }
    }
}

unsigned mcp_store_doc_import(mcp_store_t *st, void *const *old, unsigned n_old, size_t old_size,
                              const unsigned char *const *keys, const int *slots, unsigned n)
{
    unsigned i, j, copied = 0;

    if (!st || old_size <= MCP_DOC_HEADER)
        return 0;
    for (i = 0; i < n_old; i++) {
        const doc_hdr *from = old[i];
        for (j = 0; j < n; j++) {
            doc_hdr *to = doc_at(st, slots[j]);
            if (!to || from->generation == 0 || memcmp(from->key, keys[j], 32) != 0 ||
                from->len > old_size - MCP_DOC_HEADER || from->len > st->doc_size - MCP_DOC_HEADER ||
                memcmp(to->key, keys[j], 32) != 0 || (to->generation != 0 && to->fetched_at >= from->fetched_at))
                continue;
            /* The generation goes along: entries tied to it stay valid,
             * since the bytes (the keys they were verified with) are the same. */
            memcpy(to, from, MCP_DOC_HEADER + from->len);
            to->lease_until = 0;
            to->fetch_seq = 0;
            copied++;
            break;
        }
    }
    return copied;
}

void mcp_store_doc_adopt(mcp_store_t *st)
{
    unsigned i;
    if (!st)
        return;
    for (i = 0; i < st->n_docs; i++) {
        doc_hdr *d = st->docs[i];
        if (d->lease_until != 0) {
            /* A fetch in flight in a retired process: its attempt time would
             * start a cooldown for a result this generation never sees. */
            d->lease_until = 0;
            d->attempted_at = d->fetched_at;
            __atomic_add_fetch(&d->fetch_seq, 1, __ATOMIC_RELEASE);
        }
    }
}

void mcp_store_entries_adopt(mcp_store_t *st, apr_time_t now)
{
    /* Lazily (see live): scanning would touch every page of a large cache. */
    if (st)
        st->markers_before = now;
}

/* ---- revocation epoch --------------------------------------------------- */

void mcp_store_attach_epoch(mcp_store_t *st, uint64_t *word)
{
    if (st)
        st->epoch = word;
}

int mcp_store_epoch(mcp_store_t *st, uint64_t *epoch)
{
    if (!st || !st->epoch)
        return -1;
    *epoch = __atomic_load_n(st->epoch, __ATOMIC_ACQUIRE);
    return 0;
}

void mcp_store_bump_epoch(mcp_store_t *st)
{
    if (st && st->epoch)
        __atomic_add_fetch(st->epoch, 1, __ATOMIC_ACQ_REL);
}
