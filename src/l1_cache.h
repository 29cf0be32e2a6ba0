/* SPDX-License-Identifier: Apache-2.0 */
/* A small per-process cache in front of the shared one: the whole token
 * and the location's rules are compared byte for byte, so a hit needs no
 * SHA-256, no global lock and no decoding -- just a copy of the verdict. */
#ifndef MCP_L1_CACHE_H
#define MCP_L1_CACHE_H

#include <apr_pools.h>
#include <apr_time.h>

#include "shm_cache.h"
#include "verdict.h"

typedef struct mcp_l1 mcp_l1_t;

/* slots: a power of two. The cache frees its entries when p is destroyed. */
mcp_l1_t *mcp_l1_create(apr_pool_t *p, unsigned slots);

/* What a copy depends on. A copy never outlives the shared entry it came
 * from (expires), nor the JWKS generation that entry was stored under, nor
 * (introspection answers) the revocation epoch read before that entry. */
typedef struct {
    apr_time_t expires;
    int dep_doc;             /* JWKS document slot, -1: none */
    uint64_t dep_generation; /* its generation when the verdict was reached */
    int dep_epoch;           /* 1: dead once the store's epoch differs from epoch */
    uint64_t epoch;
} mcp_l1_deps_t;

/* ctx: bytes naming the rules the verdict was reached under (the policy
 * fingerprint). A hit is live (before expires), its JWKS generation still
 * current in st and its revocation epoch still st's (st NULL: a copy with
 * a dependency is a miss). */
int mcp_l1_get(mcp_l1_t *c, const void *ctx, size_t ctx_len, const char *token, size_t len, apr_time_t now,
               mcp_store_t *st, apr_pool_t *p, mcp_verdict_t *out);

void mcp_l1_put(mcp_l1_t *c, const void *ctx, size_t ctx_len, const char *token, size_t len, const mcp_l1_deps_t *deps,
                const mcp_verdict_t *v);

#endif
