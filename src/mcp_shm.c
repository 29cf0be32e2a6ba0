#include "mcp_shm.h"

#include <ap_slotmem.h>
#include <apr_strings.h>
#include <http_log.h>
#include <http_core.h>
#include <http_main.h>
#include <dirent.h>
#include <string.h>
#include <unistd.h>
#include <util_mutex.h>

#include "mcp_conf.h"

APLOG_USE_MODULE(mcp_auth);

/* One mutex for the life of httpd, kept across restarts in retained data
 * (this module's statics vanish when httpd reloads it). Children of an old
 * generation still finish their requests on the old segments after a
 * graceful restart, and the parent copies those segments out for the next
 * generation: both sides must take the same lock. */
#define RETAINED_MUTEX "mcp_auth_shm_mutex"
static apr_global_mutex_t *shm_mutex;
static mcp_store_t *store;
static mcp_l1_t *l1;
static mcp_policy_memo_t *policy_memo;
static apr_time_t last_eviction_warning;
static const char *persist_files[2];
/* The runtime directory, kept for the stop-time sweep (a cleanup cannot
 * allocate from the pool being destroyed). */
static char runtime_dir[4096];

/* Our segment names all start with this (see mcp_shm_post_config); the
 * sizes in the rest of the name change with the configuration. */
#define PERSIST_PREFIX "slotmem-shm-mcp_auth_"
#define PERSIST_SUFFIX ".shm.persist"

int mcp_shm_pre_config(apr_pool_t *pconf)
{
    return ap_mutex_register(pconf, MCP_MUTEX_TYPE, NULL, APR_LOCK_DEFAULT, 0);
}

static int global_lock(void *ctx)
{
    (void)ctx;
    return apr_global_mutex_lock(shm_mutex) == APR_SUCCESS ? 0 : -1;
}

static void global_unlock(void *ctx)
{
    (void)ctx;
    apr_global_mutex_unlock(shm_mutex);
}

/* Slot pointers for this process (slotmem hands them out one by one). */
/* mod_slotmem_shm's name for the content it keeps across restarts. */
static const char *persist_file(apr_pool_t *p, const char *name)
{
    return ap_runtime_dir_relative(p, apr_pstrcat(p, "slotmem-shm-", name, ".shm.persist", NULL));
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

/* Runs after mod_slotmem_shm has written the content out (cleanups run in
 * reverse order of registration): a stop leaves nothing behind, a graceful
 * restart keeps it for the next generation. */
static apr_status_t forget_on_exit(void *data)
{
    int i;
    (void)data;
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_EXITING)
        return APR_SUCCESS;
    for (i = 0; i < 2; i++)
        if (persist_files[i])
            unlink(persist_files[i]);
    sweep_persist_files();
    return APR_SUCCESS;
}

/* While mod_slotmem_shm copies the segments out at the end of a generation,
 * children still running must not write to them: the copy and its checksum
 * would disagree and the next generation would start empty. Our lock is
 * held from just before that copy (a cleanup registered after
 * mod_slotmem_shm's, so run before it) to just after (registered before). */
static apr_status_t hold_during_persist(void *data)
{
    apr_global_mutex_t *m = data;
    apr_global_mutex_lock(m);
    return APR_SUCCESS;
}

static apr_status_t release_after_persist(void *data)
{
    apr_global_mutex_t *m = data;
    apr_global_mutex_unlock(m);
    return APR_SUCCESS;
}

/* post_config, after mod_slotmem_shm's (APR_HOOK_REALLY_LAST). */
void mcp_shm_guard_persist(apr_pool_t *pconf)
{
    if (shm_mutex && store)
        apr_pool_cleanup_register(pconf, shm_mutex, hold_during_persist, apr_pool_cleanup_null);
}

/* Parsed keys live in pools whose cleanups are this module's code: they go
 * with the configuration, before httpd unloads the module. */
static apr_status_t forget_parsed_keys(void *data)
{
    mcp_issuer_def_t *defs = (mcp_issuer_def_t *)mcp_global.issuer_defs->elts;
    int i;
    (void)data;
    for (i = 0; i < mcp_global.issuer_defs->nelts; i++)
        mcp_keyring_forget(defs[i].ring);
    return APR_SUCCESS;
}

static const char *slots(const ap_slotmem_provider_t *sm, apr_pool_t *p, const char *name, apr_size_t size,
                         unsigned n, int which, void ***out)
{
    ap_slotmem_instance_t *inst;
    void **ptrs = apr_pcalloc(p, (n + 1) * sizeof(void *));
    apr_status_t rv;

    /* A fresh start (not a restart) begins empty: drop what a previous run
     * left. Restarts restore the content mod_slotmem_shm persisted. */
    persist_files[which] = persist_file(p, name);
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        unlink(persist_files[which]);
    rv = sm->create(&inst, name, size, n, AP_SLOTMEM_TYPE_PERSIST, p);
    unsigned i;

    if (rv != APR_SUCCESS)
        return apr_psprintf(p, "cannot create shared memory %s (%u x %lu bytes): error %d", name, n,
                            (unsigned long)size, rv);
    for (i = 0; i < n; i++)
        if (sm->dptr(inst, i, &ptrs[i]) != APR_SUCCESS)
            return apr_psprintf(p, "shared memory %s: slot %u not addressable", name, i);
    *out = ptrs;
    return NULL;
}

/* The revocation epoch word (shm_cache.h): a slot of its own, never
 * persisted (per-process copies it guards die with their children). NULL
 * when unavailable: then no introspection answer is kept per process. */
static uint64_t *epoch_word(const ap_slotmem_provider_t *sm, apr_pool_t *pconf)
{
    ap_slotmem_instance_t *inst;
    void *ptr;
    if (sm->create(&inst, "mcp_auth_epoch", 64, 1, 0, pconf) != APR_SUCCESS ||
        sm->dptr(inst, 0, &ptr) != APR_SUCCESS || (uintptr_t)ptr % sizeof(uint64_t) != 0)
        return NULL;
    return ptr;
}

static void log_to_server(void *ctx, int level, const char *msg)
{
    ap_log_error(APLOG_MARK, level, 0, (server_rec *)ctx, "%s", msg);
}

/* The shared copy of a jwks_file survives graceful restarts (persisted
 * segments): compare it with the file now, or a replaced file's old keys
 * would keep verifying until the TTL runs out. */
static void reload_jwks_files(apr_pool_t *pconf, server_rec *s)
{
    mcp_issuer_def_t *defs = (mcp_issuer_def_t *)mcp_global.issuer_defs->elts;
    mcp_log_t log = {log_to_server, s};
    apr_pool_t *tmp;
    int i;

    apr_pool_create(&tmp, pconf);
    for (i = 0; i < mcp_global.issuer_defs->nelts; i++)
        if (defs[i].jwks_file)
            mcp_keyring_reload_file(defs[i].ring, tmp, &log);
    apr_pool_destroy(tmp);
}

const char *mcp_shm_post_config(apr_pool_t *pconf, server_rec *s)
{
    const ap_slotmem_provider_t *sm =
        ap_lookup_provider(AP_SLOTMEM_PROVIDER_GROUP, "shm", AP_SLOTMEM_PROVIDER_VERSION);
    mcp_issuer_def_t *defs = (mcp_issuer_def_t *)mcp_global.issuer_defs->elts;
    unsigned n_docs = (unsigned)mcp_global.issuer_defs->nelts * 2;
    apr_size_t doc_size = APR_ALIGN(MCP_DOC_HEADER + mcp_global.fetch.http.max_size, 64);
    apr_size_t entry_size = APR_ALIGN(mcp_global.cache_entry_size, 64);
    mcp_store_lock_t lock = {global_lock, global_unlock, NULL};
    void **entries, **docs;
    const char *err;
    int i;

    store = NULL;
    {
        const char *dir = ap_runtime_dir_relative(pconf, "");
        if (dir && strlen(dir) < sizeof(runtime_dir))
            apr_cpystrn(runtime_dir, dir, sizeof(runtime_dir));
        /* A fresh start begins empty: nothing a previous run left counts. */
        if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
            sweep_persist_files();
    }
    if (!sm)
        return "mod_mcp_auth needs mod_slotmem_shm for its shared cache: "
               "LoadModule slotmem_shm_module modules/mod_slotmem_shm.so (Debian: a2enmod slotmem_shm)";
    {
        apr_global_mutex_t **kept = ap_retained_data_get(RETAINED_MUTEX);
        if (!kept)
            kept = ap_retained_data_create(RETAINED_MUTEX, sizeof(*kept));
        if (!*kept) {
            apr_status_t rv = ap_global_mutex_create(kept, NULL, MCP_MUTEX_TYPE, NULL, s, s->process->pool, 0);
            if (rv != APR_SUCCESS)
                return apr_psprintf(pconf, "cannot create the %s mutex (error %d)", MCP_MUTEX_TYPE, rv);
        }
        shm_mutex = *kept;
    }
    if (n_docs == 0)
        n_docs = 1;
    /* Sizes are part of the names: a changed size gets a fresh segment
     * instead of a mismatched one after a graceful restart. */
    err = slots(sm, pconf, apr_psprintf(pconf, "mcp_auth_e%ux%lu", mcp_global.cache_entries, (unsigned long)entry_size),
                entry_size, mcp_global.cache_entries, 0, &entries);
    if (!err)
        err = slots(sm, pconf, apr_psprintf(pconf, "mcp_auth_d%ux%lu", n_docs, (unsigned long)doc_size), doc_size,
                    n_docs, 1, &docs);
    if (err)
        return err;
    apr_pool_cleanup_register(pconf, NULL, forget_on_exit, apr_pool_cleanup_null);
    apr_pool_cleanup_register(pconf, NULL, forget_parsed_keys, apr_pool_cleanup_null);
    apr_pool_cleanup_register(pconf, shm_mutex, release_after_persist, apr_pool_cleanup_null);
    store = mcp_store_create(pconf, entries, mcp_global.cache_entries, entry_size, docs, n_docs, doc_size, lock);
    mcp_store_attach_epoch(store, epoch_word(sm, pconf));
    for (i = 0; i < mcp_global.issuer_defs->nelts; i++)
        mcp_keyring_attach(defs[i].ring, store, 2 * i, 2 * i + 1);
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
                  mcp_global.cache_entries);
}
