/* Authorization for MCP: the `Require mcp-scope` and `Require mcp-claim`
 * providers, and the step-up answer (403 insufficient_scope) when
 * mod_authz_core refuses a valid token. */
#ifndef MCP_AUTHZ_H
#define MCP_AUTHZ_H

#include <httpd.h>

#include "mcp_conf.h"

void mcp_authz_register(apr_pool_t *p);

/* insert_error_filter: our refusals get their JSON content type, and
 * authz_core's 401 for a valid token becomes 403 insufficient_scope. */
void mcp_authz_error_response(request_rec *r, const mcp_dir_conf_t *conf);

/* note_auth_failure for AuthType mcp-jwt. */
void mcp_authz_note_failure(request_rec *r, const mcp_dir_conf_t *conf);

#endif
