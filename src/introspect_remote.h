/* SPDX-License-Identifier: Apache-2.0 */
/* Introspection answers in the fleet-wide cache (remote_cache.h): looked
 * up after the node's shared memory misses and before the IdP is asked,
 * written once the IdP has answered. A best-effort "being asked" mark
 * keeps two nodes from asking at once: socache has no atomic add, so the
 * mark is written, then read back after a short settle time; the node
 * whose mark is there asks, the other waits (bounded) for its answer. Two
 * nodes whose write and read-back interleave across more than the settle
 * time both ask (README, "Several httpd nodes"). */
#ifndef MCP_INTROSPECT_REMOTE_H
#define MCP_INTROSPECT_REMOTE_H

#include <apr_pools.h>
#include <jansson.h>
#include <stdint.h>

#include "fail.h"
#include "remote_cache.h"

/* How long a node that read back another node's mark polls for its answer. */
#define MCP_REMOTE_SETTLE apr_time_from_msec(20)
#define MCP_REMOTE_POLL apr_time_from_msec(20)

/* 1 with *result and *expires (a live answer another node stored), or 0:
 * ask the IdP, *mark naming this node's "being asked" mark (0: none of
 * ours stands). Waits for another node's call at most until wait_end; the
 * mark stands until lease_end. */
int mcp_introspect_remote_find(mcp_remote_t *rc, const unsigned char local_key[32], apr_time_t wait_end,
                               apr_time_t lease_end, apr_pool_t *p, const mcp_log_t *log, json_t **result,
                               apr_time_t *expires, uint64_t *mark);

/* Stores the IdP's answer until expires. A positive answer never replaces
 * a negative one already there (another node learnt the token is
 * inactive: a positive answer here is the older news). */
void mcp_introspect_remote_keep(mcp_remote_t *rc, const unsigned char local_key[32], const json_t *result,
                                apr_time_t expires, apr_pool_t *p, const mcp_log_t *log);

/* This node's call failed: its mark is replaced by a short "failed" one,
 * so the nodes waiting for it ask at once instead of waiting it out. */
void mcp_introspect_remote_failed(mcp_remote_t *rc, const unsigned char local_key[32], uint64_t mark, apr_pool_t *p,
                                  const mcp_log_t *log);

#endif
