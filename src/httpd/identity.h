/* SPDX-License-Identifier: Apache-2.0 */
/* Hands the verified identity to the backend: request headers for a proxied
 * MCP server, subprocess environment for CGI and httpd expressions; and
 * removes what a client could have sent to impersonate it. */
#ifndef MCP_IDENTITY_H
#define MCP_IDENTITY_H

#include <httpd.h>

#include "conf.h"

/* header_parser: before anything reads them, drop client-sent copies of
 * every MCPAuthClaimHeader (all case and '-'/'_' spellings). */
void mcp_identity_scrub(request_rec *r, const mcp_dir_conf_t *conf);

/* After a token is accepted: env and headers from its claims. */
void mcp_identity_export(request_rec *r, const mcp_dir_conf_t *conf, const char *token, size_t len);

/* After the body was read before the handler (tool scopes): headers_in
 * back to the table that was authorized (trailers merged by MergeTrailers On
 * are dropped from it), identity headers scrubbed from it and from
 * r->trailers_in, then set again from the token. */
void mcp_identity_after_body(request_rec *r, const mcp_dir_conf_t *conf, apr_table_t *authorized);

/* fixups: an internal redirect under the same configuration keeps the user
 * (httpd skips authentication) but its header_parser scrubbed the shared
 * headers again: the identity of the request it came from is set anew. */
void mcp_identity_redirected(request_rec *r, const mcp_dir_conf_t *conf);

/* fixups: MCPAuthForwardToken Off removes the token before the backend. */
void mcp_identity_forward(request_rec *r, const mcp_dir_conf_t *conf);

#endif
