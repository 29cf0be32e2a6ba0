/* Verified-token cache: SHA-256 of the location's rules and the token ->
 * the verified claims, in the shared store, bounded by the token's exp and
 * by the JWKS generation that verified it. */
#ifndef MCP_TOKEN_CACHE_H
#define MCP_TOKEN_CACHE_H

#include "shm_cache.h"
#include "verdict.h"
#include "verifier.h"

/* What a verdict depends on besides the token: two locations with different
 * rules never share one. Stable text built from the policy plus `extra`
 * (what else shapes the verdict: the user and scope claims). */
const char *mcp_policy_fingerprint(apr_pool_t *p, const mcp_verify_policy_t *pol, const char *extra);

void mcp_token_cache_key(const char *fingerprint, const char *token, size_t len, unsigned char key[32]);

/* A live cached verdict. The caller re-checks the time claims (exp, nbf,
 * iat) on every hit; everything else was checked under the same rules. */
int mcp_token_cache_get(mcp_store_t *st, const unsigned char key[32], apr_time_t now, apr_pool_t *p,
                        mcp_verdict_t *out);

/* Keeps a verdict for at most ttl and never past exp, and only while the
 * JWKS generation that verified it (key_doc, key_generation) is current.
 * *evicted: the store was full. -1 when it does not fit an entry. */
int mcp_token_cache_put(mcp_store_t *st, const unsigned char key[32], apr_time_t now, apr_interval_time_t ttl,
                        apr_pool_t *p, const mcp_verdict_t *v, int key_doc, uint64_t key_generation, int *evicted);

#endif
