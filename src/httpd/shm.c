/* SPDX-License-Identifier: Apache-2.0 */
#include "shm.h"

#include <ap_slotmem.h>
#include <apr_strings.h>
#include <http_log.h>
#include <http_core.h>
#include <http_main.h>
#include <dirent.h>
#include <string.h>
#include <unistd.h>
#include <util_cfgtree.h>
#include <util_mutex.h>

#include "conf.h"
#include "metrics.h"

APLOG_USE_MODULE(mcp_auth);

/* What the parent keeps across restarts in retained data (this module's
 * statics vanish when httpd reloads it): the lock, the word that says which
 * configuration generation owns the store, and the store itself. The store
 * is anonymous shared memory of the parent: children of every generation
 * inherit it, so a graceful restart copies nothing (no persist file, no
 * stall while a large cache is copied) and the new generation starts with
 * everything the old one cached. The new generation's post_config takes it
 * over under the lock; from then on old children find the store "not
 * theirs" (their lock fails), finish their requests without it, and never
 * write to it again. A changed layout gets fresh segments, and documents
 * (JWKS, discovery) are carried over by key. */
#define RETAINED "mcp_auth_shm_retained"
typedef struct {
    apr_global_mutex_t *mutex;
    char mutex_conf[1024]; /* the Mutex lines the lock was made from */
    apr_shm_t *ctl;        /* 64 bytes; the first word: the owning generation */
    apr_shm_t *entries, *docs;
    unsigned n_entries, n_docs;
    apr_size_t entry_size, doc_size;
} retained_t;

/* The counters (metrics.h) in retained data of their own: a module of
 * another version with another retained_t still finds them, and the
 * block's own layout word says whether they can be read on. A graceful
 * restart keeps them; a full restart (stop and start) makes them anew. */
#define METRICS_RETAINED "mcp_auth_metrics_retained"
typedef struct {
    apr_shm_t *shm;
    apr_size_t size;
} metrics_retained_t;

static apr_global_mutex_t *shm_mutex;
static volatile uint64_t *owner_word;
static uint64_t my_generation;
static mcp_store_t *store;
static mcp_l1_t *l1;
static mcp_policy_memo_t *policy_memo;
static apr_time_t last_eviction_warning;
/* The runtime directory, kept for the sweep at stop (a cleanup cannot
 * allocate from the pool being destroyed). */
static char runtime_dir[4096];

/* Persist files of earlier versions of this module (mod_slotmem_shm's
 * copies of its segments) all start with this. */
#define PERSIST_PREFIX "slotmem-shm-mcp_auth_"
#define PERSIST_SUFFIX ".shm.persist"

int mcp_shm_pre_config(apr_pool_t *pconf)
{
    return ap_mutex_register(pconf, MCP_MUTEX_TYPE, NULL, APR_LOCK_DEFAULT, 0);
}

/* The store's lock: this generation's, as long as no newer one owns it. */
static int global_lock(void *ctx)
{
    (void)ctx;
    if (!owner_word || apr_global_mutex_lock(shm_mutex) != APR_SUCCESS)
        return -1;
    if (*owner_word != my_generation) {
        apr_global_mutex_unlock(shm_mutex);
        return -1; /* retired: a newer generation owns the store */
    }
    return 0;
}

/* Lock-free lookups read the store only while this generation owns it. */
static int global_readable(void *ctx)
{
    (void)ctx;
    return owner_word && __atomic_load_n(owner_word, __ATOMIC_ACQUIRE) == my_generation;
}

static void global_unlock(void *ctx)
{
    (void)ctx;
    apr_global_mutex_unlock(shm_mutex);
}

/* Removes every persist file of ours in the runtime directory, those of
 * earlier configurations (other sizes, other names) included. */
static void sweep_persist_files(void)
{
    size_t plen = strlen(PERSIST_PREFIX), slen = strlen(PERSIST_SUFFIX);
    DIR *d;
    struct dirent *e;
    char path[sizeof(runtime_dir) + 256];

    if (!runtime_dir[0] || !(d = opendir(runtime_dir)))
        return;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n <= plen + slen || strncmp(e->d_name, PERSIST_PREFIX, plen) != 0 ||
            strcmp(e->d_name + n - slen, PERSIST_SUFFIX) != 0)
            continue;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", runtime_dir, e->d_name) < sizeof(path))
            unlink(path);
    }
    closedir(d);
}

/* A stop leaves nothing behind (persist files of earlier versions of the
 * module included); restarts keep the store in memory. */
static apr_status_t forget_on_exit(void *data)
{
    (void)data;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_EXITING)
        sweep_persist_files();
    return APR_SUCCESS;
}

/* Parsed keys live in pools whose cleanups are this module's code: they go
 * with the configuration, before httpd unloads the module. */
static apr_status_t forget_parsed_keys(void *data)
{
    mcp_issuer_def_t *defs = (mcp_issuer_def_t *)mcp_gen.issuer_defs->elts;
    int i;
    (void)data;
    for (i = 0; i < mcp_gen.issuer_defs->nelts; i++)
        mcp_keyring_forget(defs[i].ring);
    return APR_SUCCESS;
}

/* The Mutex lines that configure our lock (ours, "default", or a bare
 * mechanism), in order: when they change, the lock is made anew. */
static void mutex_lines(const ap_directive_t *d, char *out, size_t size)
{
    for (; d; d = d->next) {
        if (d->first_child)
            mutex_lines(d->first_child, out, size);
        if (strcasecmp(d->directive, "Mutex") != 0 || !d->args)
            continue;
        if (!strstr(d->args, MCP_MUTEX_TYPE) && !strstr(d->args, "default") && strchr(d->args, ' '))
            continue;
        apr_cpystrn(out + strlen(out), d->args, size - strlen(out));
        apr_cpystrn(out + strlen(out), "\n", size - strlen(out));
    }
}

/* The lock of this generation. Made once; made again when its Mutex lines
 * changed (the old generation is retired first, so no process shares data
 * under two locks). The old lock stays until httpd exits: old children may
 * still take it to learn that they are retired. */
static const char *the_mutex(retained_t *kept, apr_pool_t *pconf, server_rec *s)
{
    char conf[sizeof(kept->mutex_conf)] = "";
    apr_global_mutex_t *m = NULL;
    apr_status_t rv;

    mutex_lines(ap_conftree, conf, sizeof(conf));
    if (kept->mutex && strcmp(conf, kept->mutex_conf) == 0)
        return NULL;
    rv = ap_global_mutex_create(&m, NULL, MCP_MUTEX_TYPE, NULL, s, s->process->pool, 0);
    if (rv != APR_SUCCESS) {
        if (!kept->mutex)
            return apr_psprintf(pconf, "cannot create the %s mutex (error %d)", MCP_MUTEX_TYPE, rv);
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     "The changed Mutex line for %s does not take effect: the new lock cannot be created; "
                     "the previous lock (%s) stays in use",
                     MCP_MUTEX_TYPE, apr_global_mutex_name(kept->mutex));
        return NULL;
    }
    if (kept->mutex)
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "The %s lock changed from %s to %s with the Mutex line",
                     MCP_MUTEX_TYPE, apr_global_mutex_name(kept->mutex), apr_global_mutex_name(m));
    kept->mutex = m;
    apr_cpystrn(kept->mutex_conf, conf, sizeof(kept->mutex_conf));
    return NULL;
}

/* Anonymous shared memory of the parent (inherited by every child). */
static const char *segment(apr_shm_t **shm, apr_size_t size, server_rec *s, apr_pool_t *pconf)
{
    /* Anonymous mappings start zeroed: no page is touched before it is used. */
    apr_status_t rv = apr_shm_create(shm, size ? size : 64, NULL, s->process->pool);
    if (rv != APR_SUCCESS)
        return apr_psprintf(pconf, "cannot create shared memory of %lu bytes: error %d", (unsigned long)size, rv);
    return NULL;
}

static void **slot_ptrs(apr_pool_t *p, apr_shm_t *shm, unsigned n, apr_size_t size)
{
    void **ptrs = apr_pcalloc(p, (n + 1) * sizeof(void *));
    char *base = apr_shm_baseaddr_get(shm);
    unsigned i;
    for (i = 0; i < n; i++)
        ptrs[i] = base + (apr_size_t)i * size;
    return ptrs;
}

/* Takes the store over for this generation: from now on the lock fails in
 * older children, so nothing they still do reaches the shared memory. */
static void retire_older_generations(retained_t *kept)
{
    uint64_t *word = apr_shm_baseaddr_get(kept->ctl);
    apr_global_mutex_lock(kept->mutex);
    my_generation = *word + 1;
    *word = my_generation;
    apr_global_mutex_unlock(kept->mutex);
    owner_word = word;
}

/* The documents' segment for this layout; a changed layout gets a new one,
 * and the cached documents move over by key (SPEC 7: stale keys stay
 * usable while the IdP is down, whatever the configuration change). */
static const char *doc_segment(retained_t *kept, unsigned n_docs, apr_size_t doc_size, const unsigned char **keys,
                               unsigned n_keys, int *placed, apr_pool_t *pconf, server_rec *s)
{
    apr_shm_t *old = kept->docs;
    const char *err;

    if (old && kept->n_docs == n_docs && kept->doc_size == doc_size)
        return NULL;
    if ((err = segment(&kept->docs, n_docs * doc_size, s, pconf)) != NULL) {
        kept->docs = old;
        return err;
    }
    if (old) {
        mcp_store_t *tmp = mcp_store_create(pconf, NULL, 0, 0, slot_ptrs(pconf, kept->docs, n_docs, doc_size), n_docs,
                                            doc_size, (mcp_store_lock_t){global_lock, global_unlock, NULL, NULL});
        unsigned carried;
        mcp_store_doc_place(tmp, keys, n_keys, placed);
        carried = mcp_store_doc_import(tmp, slot_ptrs(pconf, old, kept->n_docs, kept->doc_size), kept->n_docs,
                                       kept->doc_size, keys, placed, n_keys);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "Shared document layout changed: %u cached document(s) kept",
                     carried);
        apr_shm_destroy(old);
    }
    kept->n_docs = n_docs;
    kept->doc_size = doc_size;
    return NULL;
}

static const char *entry_segment(retained_t *kept, unsigned n, apr_size_t size, apr_pool_t *pconf, server_rec *s)
{
    apr_shm_t *old = kept->entries;
    const char *err;

    if (old && kept->n_entries == n && kept->entry_size == size)
        return NULL;
    /* Entries of another layout are dropped: each is one token's verdict,
     * cheap to make again, unlike keys from an IdP that may be down. */
    if ((err = segment(&kept->entries, (apr_size_t)n * size, s, pconf)) != NULL) {
        kept->entries = old;
        return err;
    }
    if (old)
        apr_shm_destroy(old);
    kept->n_entries = n;
    kept->entry_size = size;
    return NULL;
}

/* The revocation epoch word (shm_cache.h): a slot of its own, never
 * persisted (per-process copies it guards die with their children). NULL
 * when unavailable: then no introspection answer is kept per process. */
static uint64_t *epoch_word(const ap_slotmem_provider_t *sm, apr_pool_t *pconf)
{
    ap_slotmem_instance_t *inst;
    void *ptr;
    if (sm->create(&inst, "mcp_auth_epoch", 64, 1, 0, pconf) != APR_SUCCESS || sm->dptr(inst, 0, &ptr) != APR_SUCCESS ||
        (uintptr_t)ptr % sizeof(uint64_t) != 0)
        return NULL;
    return ptr;
}

/* The engine's file and line, not this callback's: ErrorLogFormat %F. */
static void log_to_server(void *ctx, const char *file, int line, int level, const char *msg)
{
    ap_log_error(file, line, APLOG_MODULE_INDEX, level, 0, (server_rec *)ctx, "%s", msg);
}

/* The shared copy of a jwks_file survives graceful restarts (persisted
 * segments): compare it with the file now, or a replaced file's old keys
 * would keep verifying until the TTL runs out. */
static void reload_jwks_files(apr_pool_t *pconf, server_rec *s)
{
    mcp_issuer_def_t *defs = (mcp_issuer_def_t *)mcp_gen.issuer_defs->elts;
    mcp_log_t log = {log_to_server, s};
    apr_pool_t *tmp;
    int i;

    apr_pool_create(&tmp, pconf);
    for (i = 0; i < mcp_gen.issuer_defs->nelts; i++)
        if (defs[i].jwks_file)
            mcp_keyring_reload_file(defs[i].ring, tmp, &log);
    apr_pool_destroy(tmp);
}

/* The counters' block: made once, kept across graceful restarts, and
 * attached here in the parent so every child inherits it. */
static const char *metrics_segment(apr_pool_t *pconf, server_rec *s)
{
    metrics_retained_t *kept = ap_retained_data_get(METRICS_RETAINED);
    apr_size_t size = APR_ALIGN(mcp_metrics_block_size(), 64);
    const char *err;

    if (!kept)
        kept = ap_retained_data_create(METRICS_RETAINED, sizeof(*kept));
    if (!kept->shm || kept->size != size) {
        apr_shm_t *old = kept->shm;
        if ((err = segment(&kept->shm, size, s, pconf)) != NULL)
            return err;
        if (old)
            apr_shm_destroy(old);
        kept->size = size;
    }
    mcp_metrics_attach(apr_shm_baseaddr_get(kept->shm));
    return NULL;
}

const char *mcp_shm_post_config(apr_pool_t *pconf, server_rec *s)
{
    const ap_slotmem_provider_t *sm = ap_lookup_provider(AP_SLOTMEM_PROVIDER_GROUP, "shm", AP_SLOTMEM_PROVIDER_VERSION);
    mcp_issuer_def_t *defs = (mcp_issuer_def_t *)mcp_gen.issuer_defs->elts;
    unsigned n_issuers = (unsigned)mcp_gen.issuer_defs->nelts, n_docs = n_issuers * 2;
    apr_size_t doc_size = APR_ALIGN(MCP_DOC_HEADER + mcp_srv_conf(s)->fetch.http.max_size, 64);
    apr_size_t entry_size = APR_ALIGN(mcp_srv_conf(s)->cache_entry_size, 64);
    mcp_store_lock_t lock = {global_lock, global_unlock, NULL, global_readable};
    const unsigned char **keys;
    int *placed;
    retained_t *kept;
    const char *err;
    unsigned i;

    store = NULL;
    {
        const char *dir = ap_runtime_dir_relative(pconf, "");
        if (dir && strlen(dir) < sizeof(runtime_dir))
            apr_cpystrn(runtime_dir, dir, sizeof(runtime_dir));
        /* Persist files of earlier versions of the module (and of a run that
         * was killed) mean nothing to this one. */
        sweep_persist_files();
    }
    if (!sm)
        return "mod_mcp_auth needs mod_slotmem_shm for its shared cache: "
               "LoadModule slotmem_shm_module modules/mod_slotmem_shm.so (Debian: a2enmod slotmem_shm)";
    if ((err = metrics_segment(pconf, s)) != NULL)
        return err;
    if (!(kept = ap_retained_data_get(RETAINED)))
        kept = ap_retained_data_create(RETAINED, sizeof(*kept));
    if (!kept->ctl && (err = segment(&kept->ctl, 64, s, pconf)) != NULL)
        return err;
    /* Older children are retired under the lock they know, before the lock
     * or the segments may be replaced. */
    if (kept->mutex)
        retire_older_generations(kept);
    if ((err = the_mutex(kept, pconf, s)) != NULL)
        return err;
    shm_mutex = kept->mutex;
    retire_older_generations(kept);
    keys = apr_pcalloc(pconf, (n_docs + 1) * sizeof(*keys));
    placed = apr_pcalloc(pconf, (n_docs + 1) * sizeof(*placed));
    for (i = 0; i < n_issuers; i++)
        mcp_keyring_doc_keys(defs[i].ring, &keys[2 * i], &keys[2 * i + 1]);
    if (n_docs == 0)
        n_docs = 1; /* a slot nobody uses: the segment is never empty */
    if ((err = entry_segment(kept, mcp_srv_conf(s)->cache_entries, entry_size, pconf, s)) != NULL ||
        (err = doc_segment(kept, n_docs, doc_size, keys, n_issuers * 2, placed, pconf, s)) != NULL)
        return err;
    apr_pool_cleanup_register(pconf, NULL, forget_on_exit, apr_pool_cleanup_null);
    apr_pool_cleanup_register(pconf, NULL, forget_parsed_keys, apr_pool_cleanup_null);
    store = mcp_store_create(pconf, slot_ptrs(pconf, kept->entries, kept->n_entries, entry_size), kept->n_entries,
                             entry_size, slot_ptrs(pconf, kept->docs, n_docs, doc_size), n_docs, doc_size, lock);
    mcp_store_attach_epoch(store, epoch_word(sm, pconf));
    /* Fetches leased by retired children never land: nobody waits for them. */
    mcp_store_doc_adopt(store);
    mcp_store_entries_adopt(store, apr_time_now());
    mcp_store_doc_place(store, keys, n_issuers * 2, placed);
    for (i = 0; i < n_issuers; i++)
        mcp_keyring_attach(defs[i].ring, store, placed[2 * i], placed[2 * i + 1]);
    reload_jwks_files(pconf, s);
    return NULL;
}

mcp_l1_t *mcp_shm_l1(void)
{
    return l1;
}

mcp_policy_memo_t *mcp_shm_policy_memo(void)
{
    return policy_memo;
}

void mcp_shm_child_init(apr_pool_t *p, server_rec *s)
{
    apr_status_t rv;
    /* Sized for the tokens one child sees in a burst; misses fall through
     * to the shared cache. */
    l1 = mcp_l1_create(p, 1024);
    policy_memo = mcp_policy_memo_create(p, 64);
    if (!shm_mutex)
        return;
    rv = apr_global_mutex_child_init(&shm_mutex, apr_global_mutex_lockfile(shm_mutex), p);
    if (rv != APR_SUCCESS)
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "cannot attach the %s mutex in this child", MCP_MUTEX_TYPE);
}

mcp_store_t *mcp_shm_store(void)
{
    return store;
}

void mcp_shm_note_eviction(request_rec *r)
{
    apr_time_t now = apr_time_now();
    /* Unsynchronized on purpose: an extra warning line is harmless. */
    if (now - last_eviction_warning < apr_time_from_sec(60))
        return;
    last_eviction_warning = now;
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  "Token cache full: live entries are being evicted; raise MCPAuthCacheEntries (now %u)",
                  mcp_srv_conf(r->server)->cache_entries);
}
