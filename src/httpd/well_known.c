/* SPDX-License-Identifier: Apache-2.0 */
#include "well_known.h"

#include <apr_strings.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <string.h>

#include "scopes.h"
#include "authz.h"
#include "conf.h"
#include "request.h"
#include "metadata.h"

APLOG_USE_MODULE(mcp_auth);

#define LOOKUP_NOTE "mcp_auth_metadata_lookup"

int mcp_metadata_is_lookup(request_rec *r)
{
    return r->main && apr_table_get(r->main->notes, LOOKUP_NOTE) != NULL;
}

/* The merged configuration of path, when it is protected by us with
 * metadata on; NULL otherwise. */
static const mcp_dir_conf_t *protected_conf(request_rec *r, const char *path, request_rec **sub)
{
    const char *type;
    const mcp_dir_conf_t *conf;

    *sub = ap_sub_req_lookup_uri(path, r, NULL);
    if (!*sub)
        return NULL;
    type = ap_auth_type(*sub);
    conf = ap_get_module_config((*sub)->per_dir_config, &mcp_auth_module);
    if (!type || strcasecmp(type, MCP_AUTH_TYPE) != 0 || !conf || !mcp_conf_resource_metadata(conf)) {
        ap_destroy_sub_req(*sub);
        *sub = NULL;
        return NULL;
    }
    return conf;
}

/* The root document stands for the one protected location of this host. */
static const char *single_location(request_rec *r)
{
    apr_array_header_t *paths = apr_hash_get(mcp_gen.locations, &r->server, sizeof(r->server));
    const char *found = NULL;
    request_rec *sub;
    int i;

    for (i = 0; paths && i < paths->nelts; i++) {
        const char *path = APR_ARRAY_IDX(paths, i, const char *);
        if (protected_conf(r, path, &sub)) {
            ap_destroy_sub_req(sub);
            if (found)
                return NULL;
            found = path;
        }
    }
    return found;
}

/* The document is public, but which pages may read it is the location's
 * MCPAuthAllowedOrigins: "*" only when that is *, otherwise the echo of an
 * allowed Origin (and nothing for another origin: the document is still
 * served, a browser page from there just cannot read it). */
static void cors(request_rec *r, const mcp_dir_conf_t *conf)
{
    const char *origin = mcp_authz_cors_origin(r, conf, 1);

    if (!origin || strcmp(origin, "*") != 0)
        apr_table_mergen(r->headers_out, "Vary", "Origin");
    if (!origin)
        return;
    apr_table_setn(r->headers_out, "Access-Control-Allow-Origin", origin);
    apr_table_setn(r->headers_out, "Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
    apr_table_setn(r->headers_out, "Access-Control-Allow-Headers", "Authorization, Content-Type, MCP-Protocol-Version");
    apr_table_setn(r->headers_out, "Access-Control-Max-Age", "86400");
}

/* scopes_supported as a client must request them (MCPAuthScopeRequestPrefix). */
static const char *const *requestable_scopes(request_rec *r, const mcp_dir_conf_t *conf)
{
    const char **out;
    int i;
    if (!conf->scopes_supported)
        return NULL;
    out = apr_palloc(r->pool, sizeof(*out) * (apr_size_t)(conf->scopes_supported->nelts + 1));
    for (i = 0; i < conf->scopes_supported->nelts; i++)
        out[i] = mcp_scope_requestable(r->pool, APR_ARRAY_IDX(conf->scopes_supported, i, const char *),
                                       conf->scope_request_prefix);
    return out;
}

int mcp_metadata_handler(request_rec *r, int lookup_uri)
{
    const char *rest, *path, *doc;
    const mcp_dir_conf_t *conf;
    request_rec *sub;
    const char **issuers;
    int i;

    if (lookup_uri || r->main || strncmp(r->uri, MCP_METADATA_PREFIX, sizeof(MCP_METADATA_PREFIX) - 1) != 0)
        return DECLINED;
    rest = r->uri + sizeof(MCP_METADATA_PREFIX) - 1;
    if (*rest && *rest != '/')
        return DECLINED;
    apr_table_setn(r->notes, LOOKUP_NOTE, "1");
    path = (*rest && strcmp(rest, "/") != 0) ? rest : single_location(r);
    conf = path ? protected_conf(r, path, &sub) : NULL;
    apr_table_unset(r->notes, LOOKUP_NOTE);
    if (!conf)
        return DECLINED; /* not ours: whatever else serves it, or 404 */

    if (r->method_number == M_OPTIONS) {
        cors(r, conf);
        apr_table_setn(r->headers_out, "Allow", "GET, HEAD, OPTIONS");
        ap_destroy_sub_req(sub);
        r->status = HTTP_NO_CONTENT;
        ap_set_content_length(r, 0);
        return OK;
    }
    if (r->method_number != M_GET) {
        ap_destroy_sub_req(sub);
        r->allowed = (AP_METHOD_BIT << M_GET) | (AP_METHOD_BIT << M_OPTIONS);
        return HTTP_METHOD_NOT_ALLOWED;
    }
    issuers = apr_palloc(r->pool, sizeof(char *) * (conf->issuers ? conf->issuers->nelts + 1 : 1));
    for (i = 0; conf->issuers && i < conf->issuers->nelts; i++)
        issuers[i] = APR_ARRAY_IDX(conf->issuers, i, mcp_trusted_issuer_t).issuer;
    doc =
        mcp_metadata_document(r->pool, mcp_resource_uri(r, conf), issuers, conf->issuers ? conf->issuers->nelts : 0,
                              requestable_scopes(r, conf), conf->scopes_supported ? conf->scopes_supported->nelts : 0);
    cors(r, conf);
    ap_destroy_sub_req(sub);
    apr_table_setn(r->headers_out, "Cache-Control", "public, max-age=3600");
    ap_set_content_type(r, "application/json");
    ap_set_content_length(r, (apr_off_t)strlen(doc));
    if (!r->header_only)
        ap_rputs(doc, r);
    return OK;
}
