/* SPDX-License-Identifier: Apache-2.0 */
#include "request.h"

#include <apr_strings.h>
#include <apr_uri.h>
#include <http_core.h>
#include <http_config.h>
#include <http_protocol.h>
#include <string.h>

#include "json_util.h"

APLOG_USE_MODULE(mcp_auth);

mcp_request_t *mcp_request_peek(request_rec *r)
{
    return ap_get_module_config(r->request_config, &mcp_auth_module);
}

mcp_request_t *mcp_request(request_rec *r)
{
    mcp_request_t *st = mcp_request_peek(r);
    if (!st) {
        st = apr_pcalloc(r->pool, sizeof(*st));
        st->missing = apr_array_make(r->pool, 2, sizeof(const char *));
        ap_set_module_config(r->request_config, &mcp_auth_module, st);
    }
    return st;
}

json_t *mcp_request_claims(request_rec *r, mcp_request_t *st)
{
    if (!st->claims && st->verdict)
        st->claims = mcp_json_parse(r->pool, st->verdict->claims, strlen(st->verdict->claims));
    return st->claims;
}

/* scheme://host[:port] of the virtual host as UseCanonicalName On builds
 * it, from configuration only: ServerName's scheme (else the connection's,
 * https when mod_ssl serves it), host and port (else the scheme's default,
 * then omitted). Never the Host header, never X-Forwarded-*: a client must
 * not choose the audience its token is checked against. */
static const char *configured_origin(request_rec *r)
{
    const server_rec *s = r->server;
    const char *scheme = s->server_scheme ? s->server_scheme : ap_http_scheme(r);
    const char *host = s->server_hostname ? s->server_hostname : "localhost";
    apr_port_t def = apr_uri_port_of_scheme(scheme);
    apr_port_t port = s->port ? s->port : def;
    const char *lb = "", *rb = "";

    if (strchr(host, ':') && host[0] != '[') {
        lb = "[";
        rb = "]"; /* an IPv6 literal */
    }
    if (port == def)
        return apr_pstrcat(r->pool, scheme, "://", lb, host, rb, NULL);
    return apr_psprintf(r->pool, "%s://%s%s%s:%u", scheme, lb, host, rb, (unsigned)port);
}

const char *mcp_resource_uri(request_rec *r, const mcp_dir_conf_t *conf)
{
    if (conf->resource)
        return conf->resource;
    return apr_pstrcat(r->pool, configured_origin(r), conf->location ? conf->location : "/", NULL);
}

const char *mcp_metadata_url(request_rec *r, const mcp_dir_conf_t *conf)
{
    /* RFC 9728 3.1: the well-known segment goes between origin and path. */
    const char *res = mcp_resource_uri(r, conf), *sep = strstr(res, "://");
    const char *path = sep ? strchr(sep + 3, '/') : NULL;
    const char *origin = path ? apr_pstrmemdup(r->pool, res, (apr_size_t)(path - res)) : res;
    if (!path || strcmp(path, "/") == 0)
        path = "";
    return apr_pstrcat(r->pool, origin, "/.well-known/oauth-protected-resource", path, NULL);
}

int mcp_request_verified(const mcp_request_t *st)
{
    return st && st->state >= MCP_REQ_VERIFIED;
}

/* Asked by most hooks of every request; ap_auth_type is an optional
 * function's call and a compare each time. The answer depends on the
 * per-directory configuration alone, which stays alive for the whole
 * request: once a request has state, a yes is remembered for the
 * configuration it was given for (a fast redirect brings another). */
int mcp_is_ours(request_rec *r)
{
    mcp_request_t *st = mcp_request_peek(r);
    const char *type;
    if (st && st->ours_for == r->per_dir_config)
        return 1;
    type = ap_auth_type(r);
    if (!type || strcasecmp(type, MCP_AUTH_TYPE) != 0)
        return 0;
    if (st)
        st->ours_for = r->per_dir_config;
    return 1;
}

const mcp_dir_conf_t *mcp_dir_conf(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &mcp_auth_module);
}
