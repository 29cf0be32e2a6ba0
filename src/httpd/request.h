/* What one request learned about its token, shared by authentication,
 * the Require providers, tool scopes and the error responses. */
#ifndef MCP_REQUEST_H
#define MCP_REQUEST_H

#include <httpd.h>
#include <jansson.h>

#include "conf.h"
#include "fail.h"
#include "verdict.h"

typedef struct {
    int has_fail;
    mcp_fail_t fail;                /* why authentication refused */
    int verified;                   /* a token was accepted */
    const mcp_verdict_t *verdict;   /* what is known of it (cached form) */
    json_t *claims;                 /* parsed only when a rule needs a claim */
    apr_array_header_t *granted;    /* the token's scopes */
    apr_array_header_t *missing;    /* scopes a Require rule wanted */
    apr_array_header_t *tool_missing; /* scopes the body's tools/call need and the token lacks (or NULL) */
    apr_array_header_t *hint;       /* scopes the Require mcp-scope rules named before authentication */
    int denied;                     /* authorization refused a valid token */
    int refused_by_rule;            /* a Require mcp-scope / mcp-claim said no */
    int responded;                  /* mcp_respond set the error page: JSON */
    const void *kept_body;          /* toolscope.c: the body as read, for this request's internal redirects */
    const void *inspection;         /* toolscope.c: what reading and parsing that body found */
} mcp_request_t;

/* The state of r, created on first use; NULL from mcp_request_peek when
 * none was created. */
mcp_request_t *mcp_request(request_rec *r);
mcp_request_t *mcp_request_peek(request_rec *r);

/* The accepted token's claims, parsed from the verdict on first use. */
json_t *mcp_request_claims(request_rec *r, mcp_request_t *st);

/* The location's canonical resource URI and its RFC 9728 document URL. */
const char *mcp_resource_uri(request_rec *r, const mcp_dir_conf_t *conf);
const char *mcp_metadata_url(request_rec *r, const mcp_dir_conf_t *conf);

/* Prepares the refusal -- one Bearer challenge, a JSON error page, one log
 * line -- and returns its status for httpd's error path (so ErrorDocument
 * and `Header always` apply as to any error). */
int mcp_respond(request_rec *r, const mcp_dir_conf_t *conf, const mcp_fail_t *fail);

/* Refuses a JSON-RPC body (SPEC 6): 400, a JSON-RPC error body with code
 * (-32700 parse error, -32600 invalid request, -32020 header mismatch) and id (raw JSON text,
 * "null" when unknown), no challenge, one log line naming the cause (never
 * the body). Through httpd's error path like mcp_respond. */
int mcp_respond_jsonrpc(request_rec *r, int code, const char *id, const char *cause);

/* One refusal's log line, rate-limited per reason and process
 * (log_limit.h): the first of each reason per second is logged, the rest
 * counted and summed up in one line. reason is the fixed text the line is
 * counted under. */
void mcp_log_refusal(request_rec *r, int level, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Registers the child-exit report of refusals still held back. */
void mcp_refusal_log_child_init(apr_pool_t *pchild, server_rec *s);

/* WWW-Authenticate for what the state says (note_auth_failure and errors). */
void mcp_set_challenge(request_rec *r, const mcp_dir_conf_t *conf);

#endif
