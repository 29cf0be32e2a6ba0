/* SPDX-License-Identifier: Apache-2.0 */
/* Authorization for MCP: the `Require mcp-scope` and `Require mcp-claim`
 * providers, the Origin check and CORS (their refusals: refusal.c). */
#ifndef MCP_AUTHZ_H
#define MCP_AUTHZ_H

#include <httpd.h>
#include <mod_auth.h>
#include <util_filter.h>

#include "conf.h"

/* Registered by register_hooks (mod_mcp_auth.c), under the names it shows:
 * `Require mcp-scope` and `Require mcp-claim`. */
extern const authz_provider mcp_authz_scope_provider;
extern const authz_provider mcp_authz_claim_provider;

/* scheme://host[:port] in lower case without a default port; NULL when
 * origin is not one (with allow_path, the origin of an absolute URL). */
const char *mcp_origin_canonical(apr_pool_t *p, const char *origin, int allow_path);

/* header_parser: a request whose Origin is present and not allowed by
 * MCPAuthAllowedOrigins is refused (403) before anything else. */
int mcp_authz_check_origin(request_rec *r, const mcp_dir_conf_t *conf);

/* fixups: a CORS preflight that passed host-based access control gets its
 * answer headers; the handler hook (before any other handler) sends 204,
 * so a preflight never reaches the backend. */
void mcp_authz_preflight_prepare(request_rec *r, const mcp_dir_conf_t *conf);
int mcp_authz_preflight_answer(request_rec *r);

/* Access-Control-Allow-Origin for an answer of the module to this request:
 * the Origin as sent when MCPAuthAllowedOrigins allows it; "*" for a public
 * document (public_doc) when the list is *; NULL: no CORS grant. */
const char *mcp_authz_cors_origin(request_rec *r, const mcp_dir_conf_t *conf, int public_doc);

/* insert_error_filter, not for a preflight: a refusal (401, 403
 * insufficient_scope, 400, 503) to an allowed origin carries CORS headers,
 * so a browser client can read the challenge; unless the configuration
 * (mod_headers `Header always`) already set them. */
#define MCP_CORS_ERROR_FILTER "MCP_AUTH_CORS_ERROR"
apr_status_t mcp_authz_cors_error_filter(ap_filter_t *f, apr_bucket_brigade *bb);
void mcp_authz_cors_error(request_rec *r, const mcp_dir_conf_t *conf);

#endif
