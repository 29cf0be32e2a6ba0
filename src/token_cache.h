/* Verified-token cache: SHA-256 of the location's rules and the token ->
 * the verified claims, in the shared store, bounded by the token's exp and
 * by the JWKS generation that verified it. */
#ifndef MCP_TOKEN_CACHE_H
#define MCP_TOKEN_CACHE_H

#include "shm_cache.h"
#include "verifier.h"

/* What a verdict depends on besides the token: two locations with different
 * rules never share one. Stable text built from the policy. */
const char *mcp_policy_fingerprint(apr_pool_t *p, const mcp_verify_policy_t *pol);

void mcp_token_cache_key(const char *fingerprint, const char *token, size_t len, unsigned char key[32]);

/* A live cached verdict: out gets claims, alg and issuer index. The caller
 * re-checks the time claims (exp, nbf, iat) on every hit. */
int mcp_token_cache_get(mcp_store_t *st, const unsigned char key[32], apr_time_t now, apr_pool_t *p,
                        mcp_verified_t *out);

/* Keeps a verdict for at most ttl and never past exp. *evicted: the store
 * was full. Returns -1 when the claims do not fit an entry. */
int mcp_token_cache_put(mcp_store_t *st, const unsigned char key[32], apr_time_t now, apr_interval_time_t ttl,
                        apr_pool_t *p, const mcp_verified_t *v, int *evicted);

#endif
