/* SPDX-License-Identifier: Apache-2.0 */
#include "keyring.h"
#include "metrics.h"

#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <string.h>

#include "discovery.h"
#include "keyring_internal.h"
#include "sha256.h"

struct mcp_keyset {
    apr_pool_t *pool; /* owns jwks and every EVP_PKEY in it */
    mcp_jwks_t *jwks;
    uint64_t generation;
    int refs; /* guarded by the keyring's lock */
};

const mcp_jwks_t *mcp_keyset_jwks(const mcp_keyset_t *ks)
{
    return ks->jwks;
}

uint64_t mcp_keyset_generation(const mcp_keyset_t *ks)
{
    return ks->generation;
}

/* Each string with its NUL: no two (what, issuer, source) share a name. */
static void slot_name(unsigned char out[32], const char *what, const char *issuer, const char *source)
{
    const char *iss = issuer ? issuer : "", *src = source ? source : "";
    mcp_bytes_t parts[3] = {{what, strlen(what) + 1}, {iss, strlen(iss) + 1}, {src, strlen(src) + 1}};
    mcp_sha256_key(out, parts, 3);
}

mcp_keyring_t *mcp_keyring_create(apr_pool_t *pconf, const char *issuer, const char *jwks_uri, const char *jwks_file,
                                  const mcp_fetch_settings_t *settings)
{
    mcp_keyring_t *kr = apr_pcalloc(pconf, sizeof(*kr));
    kr->issuer = issuer;
    kr->jwks_uri = jwks_uri;
    kr->jwks_file = jwks_file;
    kr->settings = settings;
    kr->jwks_doc = kr->disc_doc = -1;
    slot_name(kr->jwks_key, "jwks", issuer, jwks_file ? jwks_file : jwks_uri);
    slot_name(kr->disc_key, "discovery", issuer, NULL);
    apr_thread_mutex_create(&kr->lock, APR_THREAD_MUTEX_DEFAULT, pconf);
    apr_thread_mutex_create(&kr->private_fetch, APR_THREAD_MUTEX_DEFAULT, pconf);
    return kr;
}

void mcp_keyring_attach(mcp_keyring_t *kr, mcp_store_t *store, int jwks_doc, int discovery_doc)
{
    kr->store = store;
    kr->jwks_doc = jwks_doc;
    kr->disc_doc = discovery_doc;
}

void mcp_keyring_doc_keys(const mcp_keyring_t *kr, const unsigned char **jwks_key, const unsigned char **disc_key)
{
    *jwks_key = kr->jwks_key;
    *disc_key = kr->disc_key;
}

int mcp_keyring_jwks_doc(const mcp_keyring_t *kr)
{
    return kr->jwks_doc;
}

mcp_doc_policy_t mcp_keyring_doc_policy(const mcp_fetch_settings_t *s)
{
    mcp_doc_policy_t pol;
    pol.ttl = s->ttl;
    pol.cooldown = s->cooldown;
    /* The fetcher's lease outlives the slowest fetch it can make (discovery
     * with two URLs, then the JWKS). */
    pol.lease = mcp_http_lease(&s->http, 3);
    return pol;
}

/* Fetches the JWKS text and checks it holds usable keys before it may
 * replace the shared copy (a broken answer never evicts good keys). */
static char *fetch_jwks_text(mcp_keyring_t *kr, apr_pool_t *p, const mcp_log_t *log, const char **where, size_t *len,
                             const char **err)
{
    mcp_http_resp_t resp;
    mcp_jwks_t *set;
    const char *why = NULL;
    apr_pool_t *scratch;
    size_t max = kr->settings->http.max_size;
    int bad;

    if (kr->jwks_file) {
        *where = kr->jwks_file;
        if (mcp_file_read(p, kr->jwks_file, max, &resp, err))
            return NULL;
    }
    else {
        *where = kr->jwks_uri ? kr->jwks_uri : mcp_keyring_discovered(kr, p, log, "jwks_uri");
        if (!*where) {
            *where = apr_psprintf(p, "discovery for %s", kr->issuer);
            *err = "no usable jwks_uri discovered";
            return NULL;
        }
        if (strncasecmp(*where, "https://", 8) != 0 && strncasecmp(*where, "http://", 7) != 0) {
            *err = "discovered jwks_uri is not an http(s) URL";
            return NULL;
        }
        if (mcp_http_get(p, *where, &kr->settings->http, &resp, err))
            return NULL;
        if (resp.status != 200) {
            *err = apr_psprintf(p, "HTTP %ld", resp.status);
            return NULL;
        }
    }
    apr_pool_create(&scratch, p);
    bad = mcp_jwks_parse(scratch, resp.body, resp.len, &set, &why);
    apr_pool_destroy(scratch);
    if (bad) {
        *err = apr_pstrdup(p, why);
        return NULL;
    }
    *len = resp.len;
    return resp.body;
}

/* fetch_jwks_text, counted (metrics.h) when the keys come from the IdP. */
static char *fetch_jwks(mcp_keyring_t *kr, apr_pool_t *p, const mcp_log_t *log, const char **where, size_t *len,
                        const char **err)
{
    char *text = fetch_jwks_text(kr, p, log, where, len, err);
    if (!kr->jwks_file)
        mcp_metric_add(text ? MCP_M_JWKS_FETCH_OK : MCP_M_JWKS_FETCH_FAILED, 1);
    return text;
}

static void keyset_unref_locked(mcp_keyset_t *ks)
{
    if (ks && --ks->refs == 0)
        apr_pool_destroy(ks->pool);
}

/* Parses text into a key set of this process (refs 1, for the caller). */
static mcp_keyset_t *parse_keyset(mcp_keyring_t *kr, const char *text, size_t len, uint64_t generation, apr_pool_t *p,
                                  const mcp_log_t *log)
{
    mcp_keyset_t *ks;
    apr_pool_t *pool;
    const char *why = NULL;

    /* Unmanaged by the request: a key set outlives the request that parsed it. */
    apr_pool_create(&pool, NULL);
    ks = apr_pcalloc(pool, sizeof(*ks));
    ks->pool = pool;
    ks->generation = generation;
    ks->refs = 1;
    if (mcp_jwks_parse(pool, text, len, &ks->jwks, &why)) {
        apr_pool_destroy(pool);
        return NULL;
    }
    if (ks->jwks->skipped)
        mcp_logf(log, p, MCP_LOG_DEBUG, "JWKS of %s: %d key(s) skipped, the first because: %s",
                 kr->issuer ? kr->issuer : "(any issuer)", ks->jwks->skipped, ks->jwks->skip_reason);
    return ks;
}

/* Makes ks this process's current set (when newer) and hands it out. */
static void adopt(mcp_keyring_t *kr, mcp_keyset_t *ks, mcp_keyset_t **out)
{
    apr_thread_mutex_lock(kr->lock);
    if (!kr->current || kr->current->generation <= ks->generation) {
        keyset_unref_locked(kr->current);
        kr->current = ks;
        ks->refs++;
    }
    *out = ks;
    apr_thread_mutex_unlock(kr->lock);
}

/* Without the shared store (its lock went away with the configuration
 * generation this process belongs to): the keys this process already has,
 * or keys fetched for this process alone. */
static int private_keys_locked(mcp_keyring_t *kr, apr_pool_t *p, const mcp_log_t *log, mcp_keyset_t **out,
                               const char **where, const char **err)
{
    mcp_keyset_t *ks;
    char *text;
    size_t len = 0;
    apr_time_t now = apr_time_now();

    apr_thread_mutex_lock(kr->lock);
    if (kr->current) {
        kr->current->refs++;
        *out = kr->current;
        apr_thread_mutex_unlock(kr->lock);
        return 0;
    }
    /* Without the shared lock every request would otherwise fetch: at most
     * one attempt per cooldown in this process (its threads included). */
    if (kr->private_attempt && now - kr->private_attempt < kr->settings->cooldown && now >= kr->private_attempt) {
        apr_thread_mutex_unlock(kr->lock);
        *err = "the shared store is unavailable and this process fetched within MCPAuthJWKSRefreshCooldown";
        return -1;
    }
    kr->private_attempt = now;
    apr_thread_mutex_unlock(kr->lock);
    text = fetch_jwks(kr, p, log, where, &len, err);
    if (!text || !(ks = parse_keyset(kr, text, len, 0, p, log)))
        return -1;
    adopt(kr, ks, out);
    return 0;
}

static int private_keys(mcp_keyring_t *kr, apr_pool_t *p, const mcp_log_t *log, mcp_keyset_t **out, const char **where,
                        const char **err)
{
    int rc;
    apr_thread_mutex_lock(kr->private_fetch);
    rc = private_keys_locked(kr, p, log, out, where, err);
    apr_thread_mutex_unlock(kr->private_fetch);
    return rc;
}

/* The keys this process already parsed, if they are of this generation
 * (a reference taken). */
static int parsed_keys(mcp_keyring_t *kr, uint64_t generation, mcp_keyset_t **out)
{
    int rc = -1;
    apr_thread_mutex_lock(kr->lock);
    if (kr->current && kr->current->generation == generation) {
        kr->current->refs++;
        *out = kr->current;
        rc = 0;
    }
    apr_thread_mutex_unlock(kr->lock);
    return rc;
}

/* This process's parsed keys for the shared generation, parsing on change. */
static int local_keys(mcp_keyring_t *kr, uint64_t generation, apr_pool_t *p, const mcp_log_t *log, mcp_keyset_t **out)
{
    mcp_keyset_t *ks;
    char *text;
    size_t len;

    if (parsed_keys(kr, generation, out) == 0)
        return 0;
    if (mcp_store_doc_copy(kr->store, kr->jwks_doc, kr->jwks_key, generation, p, &text, &len))
        return -1;
    ks = parse_keyset(kr, text, len, generation, p, log);
    if (!ks)
        return -1;
    adopt(kr, ks, out);
    return 0;
}

apr_time_t mcp_keyring_wait_deadline(const mcp_keyring_t *kr)
{
    return mcp_http_wait_end(&kr->settings->http, apr_time_now());
}

int mcp_keyring_acquire(mcp_keyring_t *kr, int refresh, apr_pool_t *p, const mcp_log_t *log, mcp_keyset_t **out,
                        mcp_fail_t *fail)
{
    return mcp_keyring_acquire_until(kr, refresh, mcp_keyring_wait_deadline(kr), p, log, out, fail);
}

/* The common case without the shared lock: the shared copy is within its
 * TTL (so mcp_store_doc_begin would say "use it") and this process has
 * already parsed that generation. Every verification of a new token comes
 * here; taking the global lock twice for it made threads of every child
 * queue behind whichever holder the scheduler had preempted. */
static int current_keys(mcp_keyring_t *kr, apr_time_t now, mcp_keyset_t **out)
{
    uint64_t generation;
    apr_time_t fetched_at;

    if (mcp_store_doc_peek(kr->store, kr->jwks_doc, kr->jwks_key, &generation, &fetched_at) || generation == 0 ||
        now - fetched_at >= kr->settings->ttl || now < fetched_at)
        return -1;
    return parsed_keys(kr, generation, out);
}

int mcp_keyring_acquire_until(mcp_keyring_t *kr, int refresh, apr_time_t wait_until, apr_pool_t *p,
                              const mcp_log_t *log, mcp_keyset_t **out, mcp_fail_t *fail)
{
    const mcp_fetch_settings_t *s = kr->settings;
    mcp_doc_policy_t pol = mcp_keyring_doc_policy(s);
    mcp_doc_meta_t meta;
    apr_time_t now = apr_time_now();
    const char *where = kr->jwks_file ? kr->jwks_file : kr->jwks_uri, *err = NULL;
    int tries;

    if (!refresh && current_keys(kr, now, out) == 0)
        return 0;

    switch (mcp_store_doc_begin(kr->store, kr->jwks_doc, kr->jwks_key, now, &pol, refresh, &meta)) {
    case MCP_DOC_UNAVAILABLE:
        if (private_keys(kr, p, log, out, &where, &err) == 0)
            return 0;
        break;
    case MCP_DOC_FETCH: {
        size_t len = 0;
        char *text = fetch_jwks(kr, p, log, &where, &len, &err);
        int stored = mcp_store_doc_finish(kr->store, kr->jwks_doc, kr->jwks_key, apr_time_now(), text, len);
        if (text && stored == -2) {
            mcp_keyset_t *ks = parse_keyset(kr, text, len, 0, p, log);
            if (ks) {
                adopt(kr, ks, out);
                return 0;
            }
        }
        if (stored == -1) {
            err = "larger than MCPAuthJWKSMaxSize";
            text = NULL;
        }
        if (!text)
            mcp_logf(log, p, MCP_LOG_ERR, "JWKS fetch failed: %s: %s%s", mcp_printable(p, where, 512),
                     mcp_printable(p, err, 512),
                     meta.generation && now - meta.fetched_at <= s->ttl + s->max_stale
                         ? " (still using the last good keys)"
                         : "");
        break;
    }
    case MCP_DOC_WAIT:
        mcp_store_doc_wait(kr->store, kr->jwks_doc, kr->jwks_key, wait_until);
        break;
    default:
        break;
    }

    /* A generation may be replaced between reading it and copying it. */
    for (tries = 0; tries < 3; tries++) {
        now = apr_time_now();
        if (mcp_store_doc_meta(kr->store, kr->jwks_doc, kr->jwks_key, &meta) || meta.generation == 0 ||
            now - meta.fetched_at > s->ttl + s->max_stale)
            break;
        if (local_keys(kr, meta.generation, p, log, out) == 0)
            return 0;
    }
    return mcp_fail(fail, MCP_FAIL_UNAVAILABLE, "JWKS fetch failed",
                    apr_psprintf(p, "no usable keys for %s from %s%s%s",
                                 kr->issuer ? mcp_printable(p, kr->issuer, 256) : "(any issuer)",
                                 where ? mcp_printable(p, where, 512) : "discovery", err ? ": " : "",
                                 err ? mcp_printable(p, err, 256) : ""));
}

int mcp_keyring_reload_file(mcp_keyring_t *kr, apr_pool_t *p, const mcp_log_t *log)
{
    const char *where = NULL, *err = NULL;
    size_t len = 0;
    char *text;

    if (!kr->jwks_file || !kr->store)
        return 0;
    text = fetch_jwks(kr, p, log, &where, &len, &err);
    if (!text) {
        mcp_logf(log, p, MCP_LOG_ERR, "jwks_file %s: %s (the keys of the previous start stay)",
                 mcp_printable(p, where, 512), mcp_printable(p, err, 256));
        return -1;
    }
    /* The store compares the content digest with the shared copy: a changed
     * file gets a new generation, and every verdict made with the old keys
     * (shared and per-process caches) dies with it. */
    return mcp_store_doc_finish(kr->store, kr->jwks_doc, kr->jwks_key, apr_time_now(), text, len) == 0 ? 0 : -1;
}

void mcp_keyring_release(mcp_keyring_t *kr, mcp_keyset_t *ks)
{
    if (!ks)
        return;
    apr_thread_mutex_lock(kr->lock);
    keyset_unref_locked(ks);
    apr_thread_mutex_unlock(kr->lock);
}

void mcp_keyring_forget(mcp_keyring_t *kr)
{
    apr_thread_mutex_lock(kr->lock);
    keyset_unref_locked(kr->current);
    kr->current = NULL;
    apr_thread_mutex_unlock(kr->lock);
}
