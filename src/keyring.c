#include "keyring.h"

#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <string.h>

#include "json_util.h"

struct mcp_keyset {
    apr_pool_t *pool; /* owns jwks and every EVP_PKEY in it */
    mcp_jwks_t *jwks;
    int refs;         /* guarded by the keyring's lock */
};

struct mcp_keyring {
    const char *issuer;
    const char *jwks_uri;  /* configured; NULL means discover */
    const char *jwks_file;
    const mcp_fetch_settings_t *settings;
    apr_thread_mutex_t *lock;
    apr_thread_cond_t *fetched;
    /* Everything below is guarded by lock. */
    mcp_keyset_t *current;
    apr_time_t fetched_at;    /* last successful fetch */
    apr_time_t attempted_at;  /* last fetch attempt, successful or not */
    int fetching;
    apr_pool_t *discovery_pool; /* holds discovered_uri */
    const char *discovered_uri;
    apr_time_t discovered_at;
};

const mcp_jwks_t *mcp_keyset_jwks(const mcp_keyset_t *ks)
{
    return ks->jwks;
}

mcp_keyring_t *mcp_keyring_create(apr_pool_t *pconf, const char *issuer, const char *jwks_uri,
                                  const char *jwks_file, const mcp_fetch_settings_t *settings)
{
    mcp_keyring_t *kr = apr_pcalloc(pconf, sizeof(*kr));
    kr->issuer = issuer;
    kr->jwks_uri = jwks_uri;
    kr->jwks_file = jwks_file;
    kr->settings = settings;
    apr_thread_mutex_create(&kr->lock, APR_THREAD_MUTEX_DEFAULT, pconf);
    apr_thread_cond_create(&kr->fetched, pconf);
    return kr;
}

/* Caller holds the lock (the discovered URI can be replaced). */
static const char *keyring_source(const mcp_keyring_t *kr)
{
    if (kr->jwks_file)
        return kr->jwks_file;
    if (kr->jwks_uri)
        return kr->jwks_uri;
    return kr->discovered_uri ? kr->discovered_uri : "discovery";
}

void mcp_discovery_urls(apr_pool_t *p, const char *issuer, const char **oidc, const char **rfc8414)
{
    size_t len = strlen(issuer);
    const char *after_scheme = strstr(issuer, "://"), *path;

    /* OpenID Connect Discovery 1.0 section 4: strip a trailing '/', append. */
    while (len > 0 && issuer[len - 1] == '/')
        len--;
    *oidc = apr_psprintf(p, "%.*s/.well-known/openid-configuration", (int)len, issuer);
    /* RFC 8414 section 3.1: insert the well-known segment between host and path. */
    path = after_scheme ? strchr(after_scheme + 3, '/') : NULL;
    if (!path || (size_t)(path - issuer) >= len)
        *rfc8414 = apr_psprintf(p, "%.*s/.well-known/oauth-authorization-server", (int)len, issuer);
    else
        *rfc8414 = apr_psprintf(p, "%.*s/.well-known/oauth-authorization-server%.*s", (int)(path - issuer),
                                issuer, (int)(len - (size_t)(path - issuer)), path);
}

static void keyset_unref_locked(mcp_keyset_t *ks)
{
    if (ks && --ks->refs == 0)
        apr_pool_destroy(ks->pool);
}

/* One discovery document: must name this issuer exactly and a jwks_uri. */
static const char *try_discovery(mcp_keyring_t *kr, apr_pool_t *p, const char *url, const char **err)
{
    mcp_http_resp_t resp;
    json_t *doc;
    const char *iss, *jwks;

    if (mcp_http_get(p, url, &kr->settings->http, &resp, err))
        return NULL;
    if (resp.status != 200) {
        *err = apr_psprintf(p, "HTTP %ld", resp.status);
        return NULL;
    }
    doc = mcp_json_parse(p, resp.body, resp.len);
    if (!json_is_object(doc)) {
        *err = "response is not a JSON object";
        return NULL;
    }
    iss = mcp_json_str(doc, "issuer");
    if (!iss || strcmp(iss, kr->issuer) != 0) {
        *err = apr_psprintf(p, "document issuer %s does not equal the configured issuer",
                            mcp_printable(p, iss, 200));
        return NULL;
    }
    jwks = mcp_json_str(doc, "jwks_uri");
    if (!jwks || (strncasecmp(jwks, "https://", 8) != 0 && strncasecmp(jwks, "http://", 7) != 0)) {
        *err = "document has no http(s) jwks_uri";
        return NULL;
    }
    return jwks;
}

/* The JWKS URL, discovering it when not configured (cached for the TTL). */
static const char *jwks_location(mcp_keyring_t *kr, apr_pool_t *p, const mcp_log_t *log, const char **err)
{
    const char *oidc, *rfc8414, *found, *err2 = NULL;
    apr_time_t now = apr_time_now();

    if (kr->jwks_uri)
        return kr->jwks_uri;
    apr_thread_mutex_lock(kr->lock);
    found = (kr->discovered_uri && now - kr->discovered_at < kr->settings->ttl)
                ? apr_pstrdup(p, kr->discovered_uri)
                : NULL;
    apr_thread_mutex_unlock(kr->lock);
    if (found)
        return found;

    mcp_discovery_urls(p, kr->issuer, &oidc, &rfc8414);
    found = try_discovery(kr, p, oidc, err);
    if (!found)
        found = try_discovery(kr, p, rfc8414, &err2);
    if (!found) {
        *err = apr_psprintf(p, "discovery failed: %s: %s; %s: %s", oidc, *err, rfc8414, err2);
        apr_thread_mutex_lock(kr->lock);
        found = kr->discovered_uri ? apr_pstrdup(p, kr->discovered_uri) : NULL;
        apr_thread_mutex_unlock(kr->lock);
        return found; /* a stale location is better than none */
    }
    mcp_logf(log, p, MCP_LOG_DEBUG, "discovered jwks_uri %s for issuer %s", mcp_printable(p, found, 512),
             kr->issuer);
    apr_thread_mutex_lock(kr->lock);
    if (kr->discovery_pool)
        apr_pool_clear(kr->discovery_pool);
    else
        apr_pool_create(&kr->discovery_pool, NULL);
    kr->discovered_uri = apr_pstrdup(kr->discovery_pool, found);
    kr->discovered_at = now;
    apr_thread_mutex_unlock(kr->lock);
    return found;
}

/* Fetches and parses a new key set without holding the lock. */
static mcp_keyset_t *fetch_keyset(mcp_keyring_t *kr, apr_pool_t *p, const mcp_log_t *log, const char **where,
                                  const char **err)
{
    mcp_http_resp_t resp;
    mcp_keyset_t *ks;
    apr_pool_t *pool;
    const char *why = NULL;
    size_t max = kr->settings->http.max_size;

    if (kr->jwks_file) {
        *where = kr->jwks_file;
        if (mcp_file_read(p, kr->jwks_file, max, &resp, err))
            return NULL;
    }
    else {
        *where = jwks_location(kr, p, log, err);
        if (!*where) {
            *where = kr->issuer;
            return NULL;
        }
        if (mcp_http_get(p, *where, &kr->settings->http, &resp, err))
            return NULL;
        if (resp.status != 200) {
            *err = apr_psprintf(p, "HTTP %ld", resp.status);
            return NULL;
        }
    }
    /* Unmanaged by the request: a key set outlives the request that fetched it. */
    apr_pool_create(&pool, NULL);
    ks = apr_pcalloc(pool, sizeof(*ks));
    ks->pool = pool;
    ks->refs = 1;
    if (mcp_jwks_parse(pool, resp.body, resp.len, &ks->jwks, &why)) {
        *err = apr_pstrdup(p, why);
        apr_pool_destroy(pool);
        return NULL;
    }
    if (ks->jwks->skipped)
        mcp_logf(log, p, MCP_LOG_DEBUG, "JWKS %s: %d key(s) skipped, first because: %s", *where, ks->jwks->skipped,
                 ks->jwks->skip_reason);
    return ks;
}

static int usable(const mcp_keyring_t *kr, apr_time_t now)
{
    return kr->current && now - kr->fetched_at <= kr->settings->ttl + kr->settings->max_stale;
}

int mcp_keyring_acquire(mcp_keyring_t *kr, int refresh, apr_pool_t *p, const mcp_log_t *log,
                        mcp_keyset_t **out, mcp_fail_t *fail)
{
    const mcp_fetch_settings_t *s = kr->settings;
    apr_time_t now = apr_time_now();
    const char *where, *err = NULL;
    int waited = 0;

    apr_thread_mutex_lock(kr->lock);
    /* Copied under the lock: a rediscovery may replace the discovered URI. */
    where = apr_pstrdup(p, keyring_source(kr));
    for (;;) {
        int due = !kr->current || now - kr->fetched_at >= s->ttl;
        /* A failed or forced attempt is not repeated within the cooldown, so
         * forged kids or a dead IdP cost at most one request per interval. */
        int allowed = kr->attempted_at == 0 || now - kr->attempted_at >= s->cooldown;

        if ((due || refresh) && allowed && !kr->fetching) {
            mcp_keyset_t *ks;
            kr->fetching = 1;
            kr->attempted_at = now;
            apr_thread_mutex_unlock(kr->lock);
            ks = fetch_keyset(kr, p, log, &where, &err);
            apr_thread_mutex_lock(kr->lock);
            kr->fetching = 0;
            if (ks) {
                keyset_unref_locked(kr->current);
                kr->current = ks;
                kr->fetched_at = apr_time_now();
            }
            else {
                mcp_logf(log, p, MCP_LOG_ERR, "JWKS fetch failed: %s: %s%s", mcp_printable(p, where, 512),
                         mcp_printable(p, err, 512),
                         usable(kr, now) ? " (still using the last good keys)" : "");
            }
            apr_thread_cond_broadcast(kr->fetched);
            break;
        }
        /* Nothing to serve yet and another thread is fetching: wait for it. */
        if (!kr->current && kr->fetching && !waited) {
            waited = 1;
            apr_thread_cond_timedwait(kr->fetched, kr->lock, apr_time_from_sec(s->http.timeout_s * 3 + 1));
            now = apr_time_now();
            continue;
        }
        break;
    }
    if (!usable(kr, now)) {
        apr_thread_mutex_unlock(kr->lock);
        return mcp_fail(fail, MCP_FAIL_UNAVAILABLE, "JWKS fetch failed",
                        apr_psprintf(p, "no usable keys for %s from %s%s%s",
                                     kr->issuer ? mcp_printable(p, kr->issuer, 256) : "(any issuer)",
                                     mcp_printable(p, where, 512), err ? ": " : "",
                                     err ? mcp_printable(p, err, 256) : ""));
    }
    kr->current->refs++;
    *out = kr->current;
    apr_thread_mutex_unlock(kr->lock);
    return 0;
}

void mcp_keyring_release(mcp_keyring_t *kr, mcp_keyset_t *ks)
{
    if (!ks)
        return;
    apr_thread_mutex_lock(kr->lock);
    keyset_unref_locked(ks);
    apr_thread_mutex_unlock(kr->lock);
}
