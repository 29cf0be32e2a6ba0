/* SPDX-License-Identifier: Apache-2.0 */
/* Verified-token cache: SHA-256 of the location's policy fingerprint and
 * the token -> the verified claims, in the shared store, bounded by the
 * token's exp and by the JWKS generation that verified it. */
#ifndef MCP_TOKEN_CACHE_H
#define MCP_TOKEN_CACHE_H

#include "introspect.h"
#include "shm_cache.h"
#include "verdict.h"
#include "verifier.h"

/* Everything besides the token that can change a verdict. */
typedef struct {
    const mcp_verify_policy_t *verify;
    const char *user_claim;                     /* MCPAuthRemoteUserClaim (NULL: sub, ...) */
    const char *scope_claim;                    /* MCPAuthScopeClaim (NULL: scope, then scp) */
    const mcp_introspect_conf_t *introspection; /* MCPAuthIntrospection, NULL: none */
} mcp_cache_policy_t;

#define MCP_FINGERPRINT_LEN 32

/* The one place that names a policy for the caches: SHA-256 of an
 * unambiguous (tagged, length-prefixed) encoding of the content of every
 * input above -- never of addresses, so .htaccess sections rebuilt per
 * request and identical sections compare equal, and two sections that
 * trust the same issuer string with other keys (jwks_uri, jwks_file path
 * and content digest, discovery URLs) never do. Secrets enter as digests.
 * The request time (claims.now) is not part of it. p: scratch for the
 * discovery URLs. */
void mcp_policy_fingerprint(apr_pool_t *p, const mcp_cache_policy_t *cp, unsigned char fp[MCP_FINGERPRINT_LEN]);

/* The shared-cache key: SHA-256(fingerprint || token). */
void mcp_token_cache_key(const unsigned char fp[MCP_FINGERPRINT_LEN], const char *token, size_t len,
                         unsigned char key[32]);

/* A live cached verdict. The caller re-checks the time claims (exp, nbf,
 * iat) on every hit; everything else was checked under the same rules.
 * meta (may be NULL): the entry's expiry and the JWKS generation it was
 * stored under, read together with the verdict -- what a per-process copy
 * must carry. */
int mcp_token_cache_get(mcp_store_t *st, const unsigned char key[32], apr_time_t now, apr_pool_t *p, mcp_verdict_t *out,
                        mcp_entry_meta_t *meta);

/* Keeps a verdict for at most ttl and never past exp, and only while the
 * JWKS generation that verified it (key_doc, key_generation) is current.
 * *evicted: the store was full. -1 when it does not fit an entry. */
int mcp_token_cache_put(mcp_store_t *st, const unsigned char key[32], apr_time_t now, apr_interval_time_t ttl,
                        apr_pool_t *p, const mcp_verdict_t *v, int key_doc, uint64_t key_generation, int *evicted);

#endif
