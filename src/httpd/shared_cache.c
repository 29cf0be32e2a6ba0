/* SPDX-License-Identifier: Apache-2.0 */
#include "shared_cache.h"

#include <ap_provider.h>
#include <ap_socache.h>
#include <apr_network_io.h>
#include <apr_strings.h>
#include <http_log.h>

#include "conf.h"

APLOG_USE_MODULE(mcp_auth);

/* The namespace the providers prefix our keys with (at most 16 bytes). */
#define CACHE_NAME "mcp_auth"

/* This configuration generation's choice (reset by pre_config). */
typedef struct {
    const ap_socache_provider_t *provider;
    ap_socache_instance_t *instance;
    const char *spec; /* as written, for log lines */
    server_rec *s;
} shared_cache_t;

static shared_cache_t cfg;
static mcp_remote_t *handle; /* this child's */

void mcp_shared_cache_pre_config(void)
{
    memset(&cfg, 0, sizeof(cfg));
    handle = NULL;
}

/* The module that registers a provider of this name, for the message. */
static const char *module_hint(apr_pool_t *p, const char *name)
{
    return apr_psprintf(p, "load mod_socache_%s first (LoadModule socache_%s_module modules/mod_socache_%s.so)", name,
                        name, name);
}

/* redis and memcache read their HOST[:PORT][,HOST[:PORT]...] only in
 * post_config (init): checked here too, so configtest refuses a typo. */
static const char *check_servers(cmd_parms *cmd, const char *name, const char *args)
{
    char *list, *item, *last;

    if (strcmp(name, "redis") != 0 && strcmp(name, "memcache") != 0)
        return NULL;
    if (!args || !*args)
        return apr_psprintf(cmd->pool, "MCPAuthSharedCache %s: name the server(s): %s:HOST:PORT[,HOST:PORT...]", name,
                            name);
    list = apr_pstrdup(cmd->temp_pool, args);
    for (item = apr_strtok(list, ",", &last); item; item = apr_strtok(NULL, ",", &last)) {
        char *host = NULL, *scope = NULL;
        apr_port_t port;
        /* APR takes "host:notaport" for a host name: a colon outside
         * brackets must be followed by a port. */
        if (apr_parse_addr_port(&host, &scope, &port, item, cmd->temp_pool) != APR_SUCCESS || !host ||
            (!port && item[0] != '[' && strchr(host, ':')))
            return apr_psprintf(cmd->pool, "MCPAuthSharedCache %s: \"%s\" is not HOST[:PORT] (IPv6: [ADDR]:PORT)", name,
                                item);
    }
    return NULL;
}

/* MCPAuthSharedCache provider[:args], as mod_ssl reads SSLSessionCache:
 * the provider is looked up and its instance created while the file is
 * read, so configtest refuses what it cannot use. */
const char *mcp_cmd_shared_cache(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *colon = strchr(arg, ':');
    const char *name = colon ? apr_pstrndup(cmd->temp_pool, arg, (apr_size_t)(colon - arg)) : arg;
    const ap_socache_provider_t *provider;
    (void)dconf;

    if (err)
        return err;
    if (!*name)
        return "MCPAuthSharedCache takes provider[:arguments], e.g. redis:127.0.0.1:6379";
    provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name, AP_SOCACHE_PROVIDER_VERSION);
    if (!provider)
        return apr_psprintf(cmd->pool, "MCPAuthSharedCache: no socache provider \"%s\" is loaded: %s", name,
                            module_hint(cmd->temp_pool, name));
    /* shmcb, dbm: one machine's cache, serialised by a lock the caller
     * must hold -- the module's own shared memory is that level already. */
    if (provider->flags & AP_SOCACHE_FLAG_NOTMPSAFE)
        return apr_psprintf(cmd->pool,
                            "MCPAuthSharedCache: the socache provider \"%s\" is local to one machine and needs a "
                            "global lock; the module's shared memory is that level already: name a provider shared "
                            "by the nodes (redis, memcache)",
                            name);
    err = check_servers(cmd, name, colon ? colon + 1 : NULL);
    if (err)
        return err;
    err = provider->create(&cfg.instance, colon ? colon + 1 : NULL, cmd->temp_pool, cmd->pool);
    if (err)
        return apr_psprintf(cmd->pool, "MCPAuthSharedCache %s: %s", arg, err);
    cfg.provider = provider;
    cfg.spec = apr_pstrdup(cmd->pool, arg);
    return NULL;
}

static apr_status_t destroy(void *data)
{
    shared_cache_t *c = data;
    if (c->provider && c->instance)
        c->provider->destroy(c->instance, c->s);
    return APR_SUCCESS;
}

const char *mcp_shared_cache_post_config(apr_pool_t *pconf, server_rec *s)
{
    struct ap_socache_hints hints = {MCP_REMOTE_KEY_LEN * 2, 1024, apr_time_from_sec(30)};
    apr_status_t rv;

    if (!cfg.provider)
        return NULL;
    cfg.s = s;
    rv = cfg.provider->init(cfg.instance, CACHE_NAME, &hints, s, pconf);
    if (rv != APR_SUCCESS)
        return apr_psprintf(pconf, "MCPAuthSharedCache %s: the provider could not be initialised (%pm)", cfg.spec, &rv);
    apr_pool_cleanup_register(pconf, &cfg, destroy, apr_pool_cleanup_null);
    return NULL;
}

/* ---- the engine's callbacks, on its threads --------------------------- */

static int cache_get(void *ctx, const unsigned char *key, size_t klen, unsigned char *buf, size_t *len)
{
    shared_cache_t *c = ctx;
    unsigned int n = (unsigned int)*len;
    apr_pool_t *p;
    apr_status_t rv;

    if (apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS)
        return MCP_REMOTE_ERROR;
    rv = c->provider->retrieve(c->instance, c->s, key, (unsigned int)klen, buf, &n, p);
    apr_pool_destroy(p);
    if (rv == APR_SUCCESS) {
        *len = n;
        return MCP_REMOTE_FOUND;
    }
    /* Larger than any value of ours: not ours (the providers say ENOMEM). */
    return rv == APR_NOTFOUND || rv == APR_ENOMEM ? MCP_REMOTE_NOTFOUND : MCP_REMOTE_ERROR;
}

static int cache_put(void *ctx, const unsigned char *key, size_t klen, apr_time_t expires, const unsigned char *value,
                     size_t len)
{
    shared_cache_t *c = ctx;
    apr_pool_t *p;
    apr_status_t rv;

    if (apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS)
        return MCP_REMOTE_ERROR;
    /* The providers keep whole seconds, rounded down (under a second is
     * refused): a second more, and the value's own expiry decides. */
    rv = c->provider->store(c->instance, c->s, key, (unsigned int)klen, expires + apr_time_from_sec(1),
                            (unsigned char *)value, (unsigned int)len, p);
    apr_pool_destroy(p);
    return rv == APR_SUCCESS ? MCP_REMOTE_FOUND : MCP_REMOTE_ERROR;
}

void mcp_shared_cache_child_init(apr_pool_t *pchild, server_rec *s)
{
    mcp_remote_ops_t ops;
    (void)pchild;
    if (!cfg.provider)
        return;
    ops.get = cache_get;
    ops.put = cache_put;
    ops.ctx = &cfg;
    ops.name = cfg.spec;
    handle = mcp_remote_create(&ops, MCP_REMOTE_CALL_MAX, MCP_REMOTE_DOWN_FOR);
    if (!handle)
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "MCPAuthSharedCache %s: no memory for this process's handle",
                     cfg.spec);
}

mcp_remote_t *mcp_shared_cache(void)
{
    return handle;
}
