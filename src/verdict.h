/* SPDX-License-Identifier: Apache-2.0 */
/* An accepted token reduced to what requests need: time claims, the user
 * name, subject, issuer, scopes and the compact claims. Computed once per
 * token and cached, so a cache hit parses no JSON at all. */
#ifndef MCP_VERDICT_H
#define MCP_VERDICT_H

#include <apr_pools.h>
#include <apr_time.h>
#include <jansson.h>

#include "jose_alg.h"
#include "fail.h"

typedef struct {
    int issuer_index;
    mcp_alg alg; /* MCP_ALG_UNKNOWN for introspection answers */
    int has_exp, has_nbf, has_iat;
    double exp, nbf, iat;
    const char *user;      /* REMOTE_USER ("" when no claim names one) */
    const char *sub, *iss; /* NULL when absent or not fit for a header */
    const char *scope;     /* granted scopes, space-delimited ("" for none) */
    const char *claims;    /* all claims, compact JSON */
    const char *client_id; /* client_id, else azp (strings only); NULL when neither */
    int log_clean;         /* sub, iss, scope and client_id are audit values as they are (mcp_audit_clean) */
} mcp_verdict_t;

/* user_claim: MCPAuthRemoteUserClaim (NULL: sub); then sub, client_id,
 * username. scope_claim: MCPAuthScopeClaim (NULL: scope, then scp). */
int mcp_verdict_from_claims(apr_pool_t *p, const json_t *claims, int issuer_index, mcp_alg alg, const char *user_claim,
                            const char *scope_claim, mcp_verdict_t *v);

/* exp / nbf / iat against now with the skew (exp optional for
 * introspection answers): the checks that must run on every cache hit. */
int mcp_verdict_time_check(apr_pool_t *p, const mcp_verdict_t *v, long long now, long long skew, int exp_optional,
                           mcp_fail_t *fail);

/* The earlier of until and a NumericDate (seconds, any double: -1e300,
 * 1e300, NaN, ...), as apr_time_t. Range-checked before any conversion:
 * a date at or before the epoch, -inf and NaN give 0 (never a longer
 * lifetime), one at or after until (+inf included) leaves until. */
apr_time_t mcp_time_cap(apr_time_t until, double seconds);

/* until, but never past the token's exp (when it has one): how long a
 * verdict may be kept in any cache. */
apr_time_t mcp_verdict_keep_until(const mcp_verdict_t *v, apr_time_t until);

/* Flat binary form for the shared cache, and back. Decoding validates
 * every length and copies nothing: v's strings point into text, which
 * must outlive v (p is unused). */
const char *mcp_verdict_encode(apr_pool_t *p, const mcp_verdict_t *v, size_t *len);
int mcp_verdict_decode(apr_pool_t *p, const char *text, size_t len, mcp_verdict_t *v);

#endif
