/* SPDX-License-Identifier: Apache-2.0 */
/* Server-wide counters (SPEC 10): what the module did, counted for the
 * whole server so the Prometheus handler and mod_status show one set of
 * figures whichever child answers. The engine and the glue count through
 * these calls only; where the counters live (shared memory attached at
 * child init, or this process's own until then) is metrics.c's business.
 * Counting never fails and never blocks: an increment is one atomic add. */
#ifndef MCP_METRICS_H
#define MCP_METRICS_H

#include <apr_pools.h>
#include <apr_time.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    /* verdict caches: per-process L1, shared-memory store, remote (MCPAuthSharedCache) */
    MCP_M_CACHE_L1_HIT = 0,
    MCP_M_CACHE_SHM_HIT,
    MCP_M_CACHE_REMOTE_HIT,
    MCP_M_CACHE_MISS,     /* no level had it: the token was verified or the IdP asked */
    MCP_M_REMOTE_MISS,    /* the remote cache answered "not there" */
    MCP_M_REMOTE_ERROR,   /* the remote cache failed, timed out or was skipped as down */
    MCP_M_REMOTE_STORE,   /* entries written to the remote cache */
    MCP_M_CACHE_EVICTION, /* live entries pushed out of the shared-memory store */
    /* outbound calls to the IdP */
    MCP_M_JWKS_FETCH_OK,
    MCP_M_JWKS_FETCH_FAILED,
    MCP_M_DISCOVERY_FETCH_OK,
    MCP_M_DISCOVERY_FETCH_FAILED,
    MCP_M_INTROSPECTION_OK,
    MCP_M_INTROSPECTION_FAILED,
    MCP_M_COUNT
} mcp_metric;

/* Adds n to one counter. */
void mcp_metric_add(mcp_metric m, uint64_t n);

/* The counter's current value (tests, the handler). */
uint64_t mcp_metric_get(mcp_metric m);

/* ---- requests by outcome and reason ---------------------------------- */

/* What happened to one request the module answered: the error code of the
 * refusal (or accepted). */
typedef enum {
    MCP_OUTCOME_ACCEPTED = 0,
    MCP_OUTCOME_NO_TOKEN,           /* 401 without error code */
    MCP_OUTCOME_INVALID_REQUEST,    /* 400 */
    MCP_OUTCOME_INVALID_TOKEN,      /* 401 invalid_token */
    MCP_OUTCOME_INSUFFICIENT_SCOPE, /* 403 insufficient_scope (step-up) */
    MCP_OUTCOME_FORBIDDEN,          /* 403 without a challenge (Origin, a Require rule before authentication) */
    MCP_OUTCOME_UNAVAILABLE,        /* 503 */
    MCP_OUTCOME_CONFIG,             /* 500 */
    MCP_OUTCOME_COUNT
} mcp_outcome;

/* Why: a closed set of slugs (a label value never comes from a client). */
typedef enum {
    MCP_R_NONE = 0,
    MCP_R_MALFORMED_HEADER,
    MCP_R_MULTIPLE_TOKENS,
    MCP_R_TOO_LARGE,
    MCP_R_MALFORMED,
    MCP_R_UNSUPPORTED_HEADER,
    MCP_R_ENCRYPTED,
    MCP_R_ALGORITHM_NOT_ALLOWED,
    MCP_R_INVALID_TYPE,
    MCP_R_UNKNOWN_KID,
    MCP_R_AMBIGUOUS_KID,
    MCP_R_KEY_MISMATCH,
    MCP_R_INVALID_SIGNATURE,
    MCP_R_INVALID_ISSUER,
    MCP_R_INVALID_AUDIENCE,
    MCP_R_MISSING_CLAIMS,
    MCP_R_EXPIRED,
    MCP_R_NOT_YET_VALID,
    MCP_R_ISSUED_IN_FUTURE,
    MCP_R_INACTIVE,
    MCP_R_JWKS_UNAVAILABLE,
    MCP_R_INTROSPECTION_UNAVAILABLE,
    MCP_R_NO_KEYS,
    MCP_R_NO_ISSUER,
    MCP_R_STEP_UP,         /* a Require rule wants more than the token has */
    MCP_R_TOOL_SCOPE,      /* a tools/call in the body wants more (MCPAuthToolScope) */
    MCP_R_JSONRPC,         /* the JSON-RPC body was refused */
    MCP_R_HEADER_MISMATCH, /* Mcp-Method / Mcp-Name against the body */
    MCP_R_ORIGIN,          /* Origin not allowed */
    MCP_R_RULE,            /* httpd's Require refused before any token was looked at */
    MCP_R_OTHER,
    MCP_R_COUNT
} mcp_reason;

/* The slug of a fixed reason text of mcp_fail_t ("Token expired" ->
 * MCP_R_EXPIRED); MCP_R_OTHER for any text not in the table. */
mcp_reason mcp_reason_of(const char *fixed_reason);
const char *mcp_reason_slug(mcp_reason r);
const char *mcp_outcome_name(mcp_outcome o);

void mcp_metric_request(mcp_outcome o, mcp_reason r);
uint64_t mcp_metric_requests(mcp_outcome o, mcp_reason r);

/* ---- outbound call latency ------------------------------------------- */

typedef enum { MCP_CALL_DOCUMENT = 0, MCP_CALL_INTROSPECTION, MCP_CALL_KINDS } mcp_call_kind;

/* One call to the IdP that took t (whatever its outcome). */
void mcp_metric_observe(mcp_call_kind k, apr_interval_time_t t);

/* ---- the shared block -------------------------------------------------- */

/* Bytes the counters take: the glue makes a block this size (zeroed, or
 * kept from an earlier generation) in memory every child shares. */
size_t mcp_metrics_block_size(void);

/* From now on this process counts into block (aligned to 8 bytes). A
 * block of another layout (another module version) starts from zero. */
void mcp_metrics_attach(void *block);

/* Figures read at render time (the shared store's gauges). */
typedef struct {
    int have_store;
    unsigned entries, capacity;
} mcp_metrics_gauges_t;

/* Prometheus text exposition format 0.0.4 of every figure. */
char *mcp_metrics_render(apr_pool_t *p, const mcp_metrics_gauges_t *g);

/* The same figures for mod_status: "Key: value" lines (html 0), or an
 * HTML table (html 1). */
char *mcp_metrics_render_status(apr_pool_t *p, const mcp_metrics_gauges_t *g, int html);

/* ---- audit values ---------------------------------------------------- */

/* s as an audit value that mod_log_config writes into a JSON string
 * unharmed: bytes outside printable ASCII, and '%' itself, become %XX
 * (percent-decoding gives s back); '"' and '\\' stay, since mod_log_config
 * escapes them as \" and \\ -- valid JSON -- while it would write any
 * other byte as \xNN, which JSON has not. s itself when nothing changes.
 * also: more characters to encode (a list's separator), or NULL. */
const char *mcp_audit_value(apr_pool_t *p, const char *s, const char *also);

/* 1 when mcp_audit_value(p, s, NULL) would return s itself (NULL counts as
 * clean): verdicts remember it, so a cache hit logs without a scan. */
int mcp_audit_clean(const char *s);

#endif
