#include "shm_cache.h"

#include "stopping.h"

#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <openssl/evp.h>
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
    unsigned char pad[12];
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
    uint64_t *epoch; /* revocation epoch, NULL: none */
    /* Empty entries (markers) written before this time belong to retired
     * processes (mcp_store_entries_adopt): dead. */
    apr_time_t markers_before;
};

#define MCP_SMALL_CELL 512

mcp_store_t *mcp_store_create(apr_pool_t *p, void **entry_ptrs, unsigned n_entries, size_t entry_size,
                              void **doc_ptrs, unsigned n_docs, size_t doc_size, mcp_store_lock_t lock)
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
    st->large.slots = entry_ptrs + split;
    st->large.n = n_entries - split;
    st->large.size = entry_size;
    st->docs = doc_ptrs;
    st->n_docs = doc_size > MCP_DOC_HEADER ? n_docs : 0;
    st->doc_size = doc_size;
    st->lock = lock;
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
    return ((const doc_hdr *)st->docs[e->dep_doc])->generation == e->dep_generation;
}

static int live(const mcp_store_t *st, const entry_hdr *e, apr_time_t now)
{
    return e->kind && e->expires > now && dependency_holds(st, e) &&
           !(e->len == 0 && e->last_used < st->markers_before);
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

int mcp_store_get(mcp_store_t *st, const mcp_entry_key_t *k, apr_time_t now, apr_pool_t *p, char **value,
                  size_t *len)
{
    mcp_entry_meta_t meta;
    return mcp_store_get_meta(st, k, now, p, value, len, &meta);
}

int mcp_store_get_meta(mcp_store_t *st, const mcp_entry_key_t *k, apr_time_t now, apr_pool_t *p, char **value,
                       size_t *len, mcp_entry_meta_t *meta)
{
    const table *tables[2];
    int i, rc = -1;

    if (!st || lock(st))
        return -1;
    tables[0] = &st->small;
    tables[1] = &st->large;
    for (i = 0; i < 2 && rc != 0; i++) {
        entry_hdr *e = find(tables[i], k->key);
        if (!e || e->kind != k->kind)
            continue;
        if (!live(st, e, now) || e->len > tables[i]->size - MCP_ENTRY_HEADER) {
            e->kind = 0; /* dead: free the slot */
            continue;
        }
        *value = apr_palloc(p, e->len + 1);
        memcpy(*value, (char *)e + MCP_ENTRY_HEADER, e->len);
        (*value)[e->len] = '\0';
        *len = e->len;
        meta->expires = e->expires;
        meta->dep_doc = e->dep_doc;
        meta->dep_generation = e->dep_generation;
        e->last_used = now;
        rc = 0;
    }
    unlock(st);
    return rc;
}

static void write_entry(entry_hdr *slot, const mcp_entry_key_t *k, apr_time_t now, const void *value, size_t len)
{
    memcpy(slot->key, k->key, 32);
    slot->kind = k->kind;
    slot->len = (uint32_t)len;
    slot->expires = k->expires;
    slot->last_used = now;
    slot->dep_doc = k->dep_doc;
    slot->dep_generation = k->dep_generation;
    memcpy((char *)slot + MCP_ENTRY_HEADER, value, len);
}

/* Where a new entry goes in t: a free or dead slot, else the least recently
 * used of the set (*evicted). Caller holds the lock. */
static entry_hdr *room_in(const mcp_store_t *st, const table *t, const unsigned char *key, apr_time_t now,
                          int *evicted)
{
    unsigned start = first_slot(t, key), w;
    entry_hdr *oldest = NULL;
    for (w = 0; w < ways(t); w++) {
        entry_hdr *e = entry_at(t, start, w);
        if (!live(st, e, now))
            return e;
        if (!oldest || e->last_used < oldest->last_used)
            oldest = e;
    }
    *evicted = 1;
    return oldest;
}

int mcp_store_put(mcp_store_t *st, const mcp_entry_key_t *k, apr_time_t now, const void *value, size_t len,
                  int *evicted)
{
    const table *t;
    entry_hdr *slot, *other;

    *evicted = 0;
    if (!st || !(t = table_for(st, len)) || lock(st))
        return -1;
    /* One entry per key: replace ours in place, drop a copy in the other table. */
    slot = find(t, k->key);
    other = find(t == &st->small ? &st->large : &st->small, k->key);
    if (other)
        other->kind = 0;
    if (!slot)
        slot = room_in(st, t, k->key, now, evicted);
    write_entry(slot, k, now, value, len);
    unlock(st);
    return 0;
}

int mcp_store_add(mcp_store_t *st, const mcp_entry_key_t *k, apr_time_t now, const void *value, size_t len)
{
    const table *t;
    entry_hdr *mine, *other;
    int evicted = 0;

    if (!st || !(t = table_for(st, len)) || lock(st))
        return -1;
    mine = find(&st->small, k->key);
    other = find(&st->large, k->key);
    if ((mine && live(st, mine, now)) || (other && live(st, other, now))) {
        unlock(st);
        return 0;
    }
    write_entry(room_in(st, t, k->key, now, &evicted), k, now, value, len);
    unlock(st);
    return 1;
}

void mcp_store_remove(mcp_store_t *st, const unsigned char *key)
{
    entry_hdr *e;
    if (!st || lock(st))
        return;
    if ((e = find(&st->small, key)) != NULL)
        e->kind = 0;
    if ((e = find(&st->large, key)) != NULL)
        e->kind = 0;
    unlock(st);
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
    unsigned int hlen = 0;
    int rc = 0;

    if (!d)
        return -2;
    if (data && len > st->doc_size - MCP_DOC_HEADER)
        data = NULL, rc = -1;
    if (data)
        EVP_Digest(data, len, hash, &hlen, EVP_sha256(), NULL);
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
        d->fetched_at = now;
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
