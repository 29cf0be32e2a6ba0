/* SPDX-License-Identifier: Apache-2.0 */
/* Server-wide counters (SPEC 10): what the module did, counted for the
 * whole server so the Prometheus handler and mod_status show one set of
 * figures whichever child answers. The engine and the glue count through
 * these calls only; where the counters live (shared memory attached at
 * child init, or this process's own until then) is metrics.c's business.
 * Counting never fails and never blocks: an increment is one atomic add. */
#ifndef MCP_METRICS_H
#define MCP_METRICS_H

#include <apr_time.h>
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

#endif
