/* SPDX-License-Identifier: Apache-2.0 */
/* Every refusal of the module: its status, Bearer challenge, JSON error
 * page and one log line, and the request state they move (the diagram is
 * in refusal.c). Each refusal returns its status for httpd's error path, so
 * ErrorDocument and `Header always` apply as to any error. */
#ifndef MCP_REFUSAL_H
#define MCP_REFUSAL_H

#include <httpd.h>
#include <util_filter.h>

#include "conf.h"
#include "fail.h"
#include "request.h"

/* Authentication refused (the one exit of mcp_authenticate): 401 with the
 * challenge, 400, 500 or 503 with Retry-After. */
int mcp_refuse(request_rec *r, const mcp_dir_conf_t *conf, const mcp_fail_t *fail);

/* fixups: the body's tools/call need scopes the token lacks
 * (st->tool_missing): 403 insufficient_scope naming them. */
int mcp_refuse_tool_scope(request_rec *r, const mcp_dir_conf_t *conf, mcp_request_t *st);

/* Refuses a JSON-RPC body (SPEC 6): 400, a JSON-RPC error body with code
 * (-32700 parse error, -32600 invalid request, -32020 header mismatch) and id (raw JSON text,
 * "null" when unknown), no challenge, one log line naming the cause (never
 * the body). */
int mcp_refuse_jsonrpc(request_rec *r, int code, const char *id, const char *cause);

/* header_parser: 403 for an Origin not allowed, without a challenge (no
 * token can make it acceptable). */
int mcp_refuse_origin(request_rec *r);

/* A Require mcp-scope / mcp-claim rule refused the valid token of st; only
 * answered if the whole Require tree refuses. */
void mcp_refusal_by_rule(request_rec *r, mcp_request_t *st);

/* fixups: authorization granted after all (a RequireAny sibling), so a
 * rule's earlier refusal no longer shapes this request's 403s. */
void mcp_refusal_withdrawn(request_rec *r);

/* The transitions outside refusals: authentication accepted a token; an
 * internal redirect's copy of an earlier request's state keeps the token,
 * not that request's refusals. */
void mcp_state_accepted(mcp_request_t *st);
void mcp_state_redirected(mcp_request_t *st);

/* Hooks: note_auth_failure for AuthType mcp-jwt (the challenge), and
 * insert_error_filter (JSON content type, the 401 -> 403 step-up, CORS). */
int mcp_refusal_note_auth_failure(request_rec *r, const char *auth_type);
void mcp_refusal_insert_error_filter(request_rec *r);

/* The output filter that gives our refusals their JSON content type
 * (registered by register_hooks under this name). */
#define MCP_JSON_ERROR_FILTER "MCP_AUTH_JSON_ERROR"
apr_status_t mcp_refusal_json_error_filter(ap_filter_t *f, apr_bucket_brigade *bb);

/* One refusal's log line, rate-limited per reason and process
 * (log_limit.h): the first of each reason per second is logged, the rest
 * counted and summed up in one line. reason is the fixed text the line is
 * counted under. */
void mcp_log_refusal(request_rec *r, int level, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Registers the child-exit report of refusals still held back. */
void mcp_refusal_log_child_init(apr_pool_t *pchild, server_rec *s);

#endif
