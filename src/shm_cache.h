/* SPDX-License-Identifier: Apache-2.0 */
/* The shared store: a fixed layout in shared memory (no pointers inside)
 * with small entries (verified tokens, introspection results) in a
 * set-associative LRU table and large document slots (JWKS, discovery). */
#ifndef MCP_SHM_CACHE_H
#define MCP_SHM_CACHE_H

#include <apr_pools.h>
#include <apr_time.h>
#include <stddef.h>
#include <stdint.h>

/* The lock every change takes (a global mutex in httpd). lock returns 0 on
 * success; a store whose lock fails behaves as empty and never blocks. */
typedef struct {
    int (*lock)(void *ctx);
    void (*unlock)(void *ctx);
    void *ctx;
    /* Lookups take no lock (a seqlock per slot): this says whether the
     * store may still be read at all -- 0 once a newer generation owns it,
     * as lock would fail. NULL: always. */
    int (*readable)(void *ctx);
} mcp_store_lock_t;

typedef struct mcp_store mcp_store_t;

#define MCP_ENTRY_HEADER 80 /* bytes of bookkeeping in each entry slot */
#define MCP_DOC_HEADER 128  /* bytes of bookkeeping in each document slot */
#define MCP_STORE_WAYS 8    /* an entry lives in one of 8 consecutive slots */

/* entry_ptrs[i] / doc_ptrs[i]: where slot i is mapped in this process. */
mcp_store_t *mcp_store_create(apr_pool_t *p, void **entry_ptrs, unsigned n_entries, size_t entry_size, void **doc_ptrs,
                              unsigned n_docs, size_t doc_size, mcp_store_lock_t lock);

/* A private store in plain memory (CLI, unit tests): thread lock only. */
mcp_store_t *mcp_store_create_local(apr_pool_t *p, unsigned n_entries, size_t entry_size, unsigned n_docs,
                                    size_t doc_size);

size_t mcp_store_entry_capacity(const mcp_store_t *st); /* largest value an entry holds */
size_t mcp_store_doc_capacity(const mcp_store_t *st);

/* ---- entries ------------------------------------------------------------ */

typedef struct {
    const unsigned char *key; /* 32 bytes (SHA-256) */
    uint32_t kind;            /* caller's tag, never 0 */
    apr_time_t expires;
    /* Validity tied to a document: the entry is ignored once that document's
     * generation differs from dep_generation. dep_doc < 0: no dependency. */
    int dep_doc;
    uint64_t dep_generation;
} mcp_entry_key_t;

/* Copies the value into a pool buffer. 0 on a live hit, -1 otherwise. */
int mcp_store_get(mcp_store_t *st, const mcp_entry_key_t *k, apr_time_t now, apr_pool_t *p, char **value, size_t *len);

/* What an entry was stored with, read under the same lock as its value. */
typedef struct {
    apr_time_t expires;
    int dep_doc;
    uint64_t dep_generation;
} mcp_entry_meta_t;

/* mcp_store_get, and the entry's expiry and dependency: a per-process copy
 * of the value must carry these (never a generation read afterwards, which
 * may already be a newer key set's), so it never outlives the entry. */
int mcp_store_get_meta(mcp_store_t *st, const mcp_entry_key_t *k, apr_time_t now, apr_pool_t *p, char **value,
                       size_t *len, mcp_entry_meta_t *meta);

/* Stores a value; 0 ok, -1 when it does not fit or the lock failed.
 * *evicted is set when a live entry had to make room (the store is full). */
int mcp_store_put(mcp_store_t *st, const mcp_entry_key_t *k, apr_time_t now, const void *value, size_t len,
                  int *evicted);

void mcp_store_remove(mcp_store_t *st, const unsigned char *key);

/* Transient entries (negative answers, "being asked" and "failed" marks)
 * take at most MCP_STORE_TRANSIENT_WAYS ways of a set and never push out a
 * live ordinary entry: a flood of random tokens churns through them and
 * leaves the cached positive answers alone. */
#define MCP_ENTRY_TRANSIENT 1u
#define MCP_STORE_TRANSIENT_WAYS 2

/* mcp_store_put / mcp_store_add with flags (MCP_ENTRY_TRANSIENT or 0). A
 * transient entry that finds no room is not stored (-1). */
int mcp_store_put_ex(mcp_store_t *st, const mcp_entry_key_t *k, apr_time_t now, const void *value, size_t len,
                     unsigned flags, int *evicted);
int mcp_store_add_ex(mcp_store_t *st, const mcp_entry_key_t *k, apr_time_t now, const void *value, size_t len,
                     unsigned flags);

/* Compare and swap: stores the value when the key has no live entry or its
 * live entry is of kind `expect` (which it replaces). 1 stored, 0 another
 * kind is there, -1 no room or lock failure. */
int mcp_store_replace(mcp_store_t *st, const mcp_entry_key_t *k, apr_time_t now, const void *value, size_t len,
                      unsigned flags, uint32_t expect);

/* The live entry with this key whatever its kind (*kind says which). */
int mcp_store_get_any(mcp_store_t *st, const unsigned char *key, apr_time_t now, apr_pool_t *p, uint32_t *kind,
                      char **value, size_t *len, mcp_entry_meta_t *meta);

/* ---- entry statistics --------------------------------------------------- */

/* What the entry table had to give up, counted in this process since it
 * attached the store (the metrics of issue 12 read them here). */
typedef struct {
    uint64_t evicted_live;      /* live ordinary entries pushed out to make room */
    uint64_t evicted_transient; /* live transient entries pushed out */
    uint64_t refused_transient; /* transient entries not stored: the set held only live ordinary ones */
    uint64_t too_large;         /* values larger than any slot (not stored) */
} mcp_store_stats_t;

void mcp_store_stats(mcp_store_t *st, mcp_store_stats_t *out);

/* MCPAuthCacheEntries as the store was created with (for warnings). */
unsigned mcp_store_entries(const mcp_store_t *st);

/* Live entries now (a gauge for the metrics): read without the lock, so a
 * figure of the moment, never used for a decision. */
unsigned mcp_store_live_entries(const mcp_store_t *st, apr_time_t now);

/* How many entries the table holds at most (small cells and whole slots:
 * more than MCPAuthCacheEntries when verdicts are small). */
unsigned mcp_store_slots(const mcp_store_t *st);

/* Rate-limited notice: 1 at most once per interval per process, when
 * something was evicted or refused since the last notice; *since gets the
 * counts since then (the caller logs one warning naming
 * MCPAuthCacheEntries). */
int mcp_store_eviction_notice(mcp_store_t *st, apr_time_t now, apr_interval_time_t interval, mcp_store_stats_t *since);

/* Stores the value only when no live entry of any kind has this key: the
 * building block of "one caller does the work, the others wait".
 * 1 stored, 0 another entry is there, -1 no room or lock failure. */
int mcp_store_add(mcp_store_t *st, const mcp_entry_key_t *k, apr_time_t now, const void *value, size_t len);

/* ---- documents ---------------------------------------------------------- */

typedef struct {
    apr_time_t fetched_at;   /* last successful fetch (0: never) */
    apr_time_t attempted_at; /* last attempt */
    apr_time_t lease_until;  /* a process is fetching until then */
    uint64_t generation;     /* bumped when the content changes (0: empty) */
    uint32_t len;
} mcp_doc_meta_t;

typedef enum {
    MCP_DOC_USE,        /* the shared copy is fresh (or another process refreshes it) */
    MCP_DOC_FETCH,      /* the caller holds the lease: fetch, then mcp_store_doc_finish */
    MCP_DOC_WAIT,       /* another process is fetching and the caller needs its result
                           (nothing stored yet, or refresh): mcp_store_doc_wait */
    MCP_DOC_UNAVAILABLE /* no shared slot or its lock is gone (an old generation) */
} mcp_doc_decision;

typedef struct {
    apr_interval_time_t ttl, cooldown, lease;
} mcp_doc_policy_t;

/* Under the lock: reads the slot's meta (a slot owned by another key is
 * reset to empty for this key) and decides who fetches. FETCH takes the
 * lease: the caller must call mcp_store_doc_finish. refresh: the caller
 * wants a fetch even though the copy is fresh (rate-limited by cooldown). */
mcp_doc_decision mcp_store_doc_begin(mcp_store_t *st, int doc, const unsigned char *key, apr_time_t now,
                                     const mcp_doc_policy_t *pol, int refresh, mcp_doc_meta_t *meta);

/* Ends a fetch: data != NULL stores it (generation bumps only when the bytes
 * differ); data == NULL records a failure. Releases the lease. Returns -1
 * when data is larger than the slot, -2 when the store cannot be locked. */
int mcp_store_doc_finish(mcp_store_t *st, int doc, const unsigned char *key, apr_time_t now, const char *data,
                         size_t len);

/* Meta only: 0 when the slot is this key's (generation 0: nothing stored yet). */
int mcp_store_doc_meta(mcp_store_t *st, int doc, const unsigned char *key, mcp_doc_meta_t *meta);

/* Copies the document when its generation is still `generation`. */
int mcp_store_doc_copy(mcp_store_t *st, int doc, const unsigned char *key, uint64_t generation, apr_pool_t *p,
                       char **data, size_t *len);

/* Returns when the fetch in flight on the slot has ended (woken by
 * mcp_store_doc_finish in any process), its lease ran out, or at `until`;
 * at once when no fetch is in flight. No polling on Linux (futex). */
void mcp_store_doc_wait(mcp_store_t *st, int doc, const unsigned char *key, apr_time_t until);

/* Lock-free: the slot's generation and last successful fetch, when the slot
 * is this key's (0), for the hot path that only needs to know its parsed
 * copy is still current and fresh. A fetch landing meanwhile may show a
 * new generation with the old time (the caller takes the locked path). */
int mcp_store_doc_peek(mcp_store_t *st, int doc, const unsigned char *key, uint64_t *generation,
                       apr_time_t *fetched_at);

/* Current generation of a document slot (0 when empty), lock-free read. */
uint64_t mcp_store_doc_generation(mcp_store_t *st, int doc);

/* ---- generations and layouts (graceful restart) -------------------------- */

/* Gives each of n keys a document slot: the slot already holding that key,
 * else one holding none of the keys (reset for it). slots[i] is keys[i]'s
 * slot, -1 when there are more distinct keys than slots. Documents are
 * found by key, so adding or reordering issuers keeps every cached copy. */
void mcp_store_doc_place(mcp_store_t *st, const unsigned char *const *keys, unsigned n, int *slots);

/* Carries documents over from an older layout (n_old slots of old_size
 * bytes at old[i], read-only) into the slots placed for the same keys,
 * unless those already hold a newer copy. Returns how many were copied. */
unsigned mcp_store_doc_import(mcp_store_t *st, void *const *old, unsigned n_old, size_t old_size,
                              const unsigned char *const *keys, const int *slots, unsigned n);

/* A new generation takes the store over: fetches leased by processes of an
 * older one will never land here, so their leases (and the attempt times
 * they set) go; no waiter and no cooldown waits for them. */
void mcp_store_doc_adopt(mcp_store_t *st);

/* The same for entries: empty values are markers ("a process is asking",
 * mcp_store_add) that a retired process will never replace or remove; those
 * written before now count as gone, so no new request polls until their
 * lease runs out. */
void mcp_store_entries_adopt(mcp_store_t *st, apr_time_t now);

/* ---- revocation epoch --------------------------------------------------- */

/* A counter shared by every process, read without the lock (an aligned
 * 64-bit word, atomic loads): bumped whenever a process records a token as
 * inactive, so per-process copies of introspection answers taken under an
 * older epoch are dead everywhere at once. word: 8-byte aligned, in the
 * same shared memory as the store (a local store has its own). */
void mcp_store_attach_epoch(mcp_store_t *st, uint64_t *word);

/* 0 and the current epoch, or -1 when the store has no epoch word (then
 * nothing may be cached per process on its strength). */
int mcp_store_epoch(mcp_store_t *st, uint64_t *epoch);

/* Bumps the epoch (no-op without a word). */
void mcp_store_bump_epoch(mcp_store_t *st);

#endif
