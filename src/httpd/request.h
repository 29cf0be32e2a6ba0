/* SPDX-License-Identifier: Apache-2.0 */
/* What one request learned about its token, shared by authentication,
 * the Require providers, tool scopes and the error responses. */
#ifndef MCP_REQUEST_H
#define MCP_REQUEST_H

#include <httpd.h>
#include <jansson.h>

#include "conf.h"
#include "fail.h"
#include "metrics.h"
#include "verdict.h"

/* Where a request stands: one value, written only by the transitions in
 * refusal.c (its header comment draws them). The states from
 * MCP_REQ_VERIFIED on all have an accepted token. */
typedef enum {
    MCP_REQ_NEW = 0,        /* no token accepted or refused yet (a CORS preflight stays here) */
    MCP_REQ_REFUSED_ORIGIN, /* 403: Origin not allowed, before authentication */
    MCP_REQ_REFUSED_AUTHN,  /* 401, 400, 500 or 503: authentication refused, .fail says why */
    MCP_REQ_VERIFIED,       /* a token was accepted */
    MCP_REQ_DENIED_BY_RULE, /* a Require mcp-scope / mcp-claim refused it (a RequireAny sibling may still grant) */
    MCP_REQ_DENIED,         /* the whole Require tree refused it: mod_authz_core's 401 is on its way */
    MCP_REQ_REFUSED_SCOPE,  /* 403 insufficient_scope: a Require refusal stepped up, or a tool's scopes */
    MCP_REQ_REFUSED_RPC     /* 400: the JSON-RPC body or Mcp-Method/Mcp-Name (no challenge) */
} mcp_req_state_t;

typedef struct {
    mcp_req_state_t state;            /* refusal.c's transitions only */
    mcp_fail_t fail;                  /* why authentication refused (MCP_REQ_REFUSED_AUTHN) */
    mcp_reason reason;                /* why the request was refused (refusal.c; metrics and audit) */
    int counted;                      /* its outcome is in the metrics (audit.c: once per request) */
    const void *ours_for;             /* the per-directory configuration mcp_is_ours last said yes to */
    const mcp_verdict_t *verdict;     /* what is known of it (cached form) */
    json_t *claims;                   /* parsed only when a rule needs a claim */
    apr_array_header_t *granted;      /* the token's scopes */
    apr_array_header_t *missing;      /* scopes a Require rule wanted */
    apr_array_header_t *tool_missing; /* scopes the body's tools/call need and the token lacks (or NULL) */
    apr_array_header_t *hint;         /* scopes the Require mcp-scope rules named before authentication */
    const void *kept_body;            /* toolscope.c: the body as read, for this request's internal redirects */
    const void *inspection;           /* toolscope.c: what reading and parsing that body found */
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

/* A token was accepted for this request and authentication has not
 * refused since: MCP_REQ_VERIFIED or a state after it, whatever
 * authorization or the body refused later. */
int mcp_request_verified(const mcp_request_t *st);

/* Whether the request is ours (AuthType mcp-jwt) and its configuration. */
int mcp_is_ours(request_rec *r);
const mcp_dir_conf_t *mcp_dir_conf(request_rec *r);

#endif
