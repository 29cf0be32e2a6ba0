/* SPDX-License-Identifier: Apache-2.0 */
/* The authentication step of one request: take the bearer token, verify
 * it under the location's policy (through the verified-token cache), and
 * name the user -- or answer the refusal. */
#ifndef MCP_AUTHN_H
#define MCP_AUTHN_H

#include <httpd.h>

#include "conf.h"

/* check_authn for AuthType mcp-jwt: OK, or the status of the refusal
 * (whose challenge and JSON error page are already set). */
int mcp_authenticate(request_rec *r, const mcp_dir_conf_t *conf);

/* A CORS preflight: OPTIONS with Origin and Access-Control-Request-Method,
 * no credentials. The module answers it itself (mcp_authz_preflight_*). */
int mcp_is_preflight(request_rec *r, const mcp_dir_conf_t *conf);

#endif
