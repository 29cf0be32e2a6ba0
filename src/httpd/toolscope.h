/* SPDX-License-Identifier: Apache-2.0 */
/* MCPAuthToolScope: reads a POST body in the fixups phase, finds the MCP
 * tools/call requests in it, demands their scopes, and hands the body on
 * byte-for-byte to the backend (mod_proxy, CGI) through an input filter. */
#ifndef MCP_TOOLSCOPE_H
#define MCP_TOOLSCOPE_H

#include <httpd.h>
#include <util_filter.h>

#include "conf.h"
#include "request.h"

#define MCP_TOOL_BODY_LIMIT (1024 * 1024)

/* The input filter that replays a body read here; register_hooks
 * (mod_mcp_auth.c) registers it and keeps its handle. */
#define MCP_KEPT_BODY_FILTER "MCP_AUTH_KEPT_BODY"
extern ap_filter_rec_t *mcp_toolscope_kept_body_handle;
apr_status_t mcp_toolscope_kept_body_filter(ap_filter_t *f, apr_bucket_brigade *b, ap_input_mode_t mode,
                                            apr_read_type_e block, apr_off_t readbytes);

/* insert_filter: an internal redirect of a request whose body was read
 * here replays that same body to its handler. */
void mcp_toolscope_insert_filter(request_rec *r);

/* After authentication: reads and parses the body of a POST that needs it
 * (tool scopes, or Mcp-Method/Mcp-Name headers) and notes the scopes its
 * tools lack, so that a 403 from Require already names them (one
 * challenge for the whole operation). Refuses nothing itself. */
void mcp_toolscope_inspect(request_rec *r, const mcp_dir_conf_t *conf);

/* DECLINED to go on, or the status of the refusal (400/403/413/415): the
 * body's JSON-RPC, Mcp-Method/Mcp-Name against it, then tool scopes. */
int mcp_toolscope_check(request_rec *r, const mcp_dir_conf_t *conf);

/* The tools/call names the body held (NULL: the body was not read or not
 * valid JSON-RPC), for the audit log. */
const apr_array_header_t *mcp_toolscope_called(const mcp_request_t *st);

#endif
