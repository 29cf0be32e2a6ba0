/* SPDX-License-Identifier: Apache-2.0 */
/* Per-endpoint failure state, shared by every process of a generation: a
 * small circuit breaker in front of each IdP URL. After a timeout, a
 * connection failure or a 5xx, calls to that URL are refused at once for a
 * backoff (1 s, doubling while failures continue, at most 10 s; reset by
 * any answer), so a hung IdP costs one worker one MCPAuthHTTPTimeout per
 * backoff instead of every worker that asks. When a backoff ends, one call
 * (the probe) goes through; the others keep being refused until it ends.
 *
 * The table lives in anonymous shared memory created in the parent before
 * the children fork; entries are updated with atomics, no lock: a lost
 * race costs one extra call or one extra refusal, never a wrong answer. */
#ifndef MCP_IDP_HEALTH_H
#define MCP_IDP_HEALTH_H

#include <apr_pools.h>
#include <apr_time.h>
#include <stdint.h>

typedef struct mcp_idp_health mcp_idp_health_t;

#define MCP_BACKOFF_FIRST apr_time_from_sec(1)
#define MCP_BACKOFF_MAX apr_time_from_sec(10)

/* A table in shared memory that lives as long as pool (NULL when no shared
 * memory can be had: then nothing is ever refused). */
mcp_idp_health_t *mcp_idp_health_create(apr_pool_t *pool);

/* Before a call to url (anything after '?' or '#' is ignored: GET-mode
 * introspection puts the token there). 0: call. -1: refused; *wait is the
 * backoff left (> 0). probe_lease: how long a probe may take before
 * another caller may probe (the transfer's time limit plus a margin). */
int mcp_idp_health_admit(mcp_idp_health_t *h, const char *url, apr_time_t now, apr_interval_time_t probe_lease,
                         apr_interval_time_t *wait);

/* The call started at `started` failed (timeout, connection, 5xx) at now.
 * Returns the backoff now in force. A call that was already under way when
 * an earlier failure was recorded does not double the backoff again (many
 * hung calls ending together are one failure of the endpoint). */
apr_interval_time_t mcp_idp_health_failed(mcp_idp_health_t *h, const char *url, apr_time_t started, apr_time_t now);

/* The endpoint answered: no backoff any more. */
void mcp_idp_health_ok(mcp_idp_health_t *h, const char *url);

/* A place among the calls under way to one endpoint, server-wide (all
 * processes): bounds how many workers of the whole server one endpoint
 * can hold before its first timeout is known (a prefork server has one
 * thread per process, so a per-process cap alone does not). */
typedef struct {
    int index;     /* -1: untracked (no table, no slot) */
    int64_t taken; /* the value written there, to give back only our own */
} mcp_idp_lease_t;

#define MCP_IDP_MAX_LEASES 64

/* 0: *lease taken (or untracked). -1: max (at most MCP_IDP_MAX_LEASES)
 * calls to url are under way; places older than stale_after (a process
 * that died in a call) are taken over. */
int mcp_idp_health_enter(mcp_idp_health_t *h, const char *url, int max, apr_time_t now, apr_interval_time_t stale_after,
                         mcp_idp_lease_t *lease);
void mcp_idp_health_leave(mcp_idp_health_t *h, const mcp_idp_lease_t *lease);

/* When the most recent of the calls under way to url started (0: none):
 * a caller that finds every place taken waits for one only while calls
 * keep starting (the endpoint answers), not behind calls that hang. */
apr_time_t mcp_idp_health_last_start(mcp_idp_health_t *h, const char *url, int max);

#endif
