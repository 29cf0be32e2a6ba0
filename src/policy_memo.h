/* SPDX-License-Identifier: Apache-2.0 */
/* A small per-process memo of policy fingerprints: the configuration a
 * request runs under is made of objects that live, unchanged, for the whole
 * configuration generation, so the SHA-256 over their content need not be
 * recomputed per request. Callers key it only on such objects (never on
 * .htaccess data, which lives in a request pool). */
#ifndef MCP_POLICY_MEMO_H
#define MCP_POLICY_MEMO_H

#include <apr_pools.h>

#include "token_cache.h"

typedef struct mcp_policy_memo mcp_policy_memo_t;

/* slots: rounded up to a power of two. Entries are freed with p. */
mcp_policy_memo_t *mcp_policy_memo_create(apr_pool_t *p, unsigned slots);

/* 0 and fp filled when key (compared byte for byte) was put before. */
int mcp_policy_memo_get(mcp_policy_memo_t *m, const void *key, size_t len, unsigned char fp[MCP_FINGERPRINT_LEN]);

void mcp_policy_memo_put(mcp_policy_memo_t *m, const void *key, size_t len,
                         const unsigned char fp[MCP_FINGERPRINT_LEN]);

#endif
