/* The authentication step of one request: take the bearer token, verify
 * it under the location's policy (through the verified-token cache), and
 * name the user -- or answer the refusal. */
#ifndef MCP_AUTHN_H
#define MCP_AUTHN_H

#include <httpd.h>

#include "mcp_conf.h"

/* check_authn for AuthType mcp-jwt: OK, or the status of the refusal
 * (whose challenge and JSON error page are already set). */
int mcp_authenticate(request_rec *r, const mcp_dir_conf_t *conf);

/* A token-less OPTIONS request (CORS preflight) passes untouched. */
int mcp_is_preflight(request_rec *r, const mcp_dir_conf_t *conf);

#endif
