/* SPDX-License-Identifier: Apache-2.0 */
/* Registered-claim validation (RFC 7519 4.1, RFC 9068): exp, nbf, iat
 * with clock skew, audience with RFC 8707 canonical-URI comparison, and
 * the claims a location requires to be present. */
#ifndef MCP_CLAIM_RULES_H
#define MCP_CLAIM_RULES_H

#include <apr_pools.h>
#include <jansson.h>

#include "fail.h"

typedef struct {
    const char *const *audiences; /* accepted audiences; n_audiences 0: aud not checked */
    int n_audiences;
    const char *const *required; /* claims that must be present (exp always is) */
    int n_required;
    long long skew;   /* seconds of leeway for exp, nbf, iat */
    long long now;    /* seconds since the epoch */
    int exp_optional; /* introspection results may lack exp */
} mcp_claim_policy_t;

int mcp_claims_check(apr_pool_t *p, const json_t *claims, const mcp_claim_policy_t *pol, mcp_fail_t *fail);

/* 1 when a refusal by mcp_claims_check stays true as time passes (expired,
 * another audience, a claim missing); 0 for "not yet valid" and "issued
 * in the future", which time lifts. */
int mcp_claims_refusal_lasts(const mcp_fail_t *fail);

/* The time part alone (exp, nbf, iat; NULL when absent), for cached
 * verdicts whose other claims were checked when they were cached. */
int mcp_time_claims_check(apr_pool_t *p, const double *exp, const double *nbf, const double *iat, long long now,
                          long long skew, int exp_optional, mcp_fail_t *fail);

/* RFC 8707 / RFC 3986 6.2.2 comparison of two audience values: scheme and
 * host case-insensitively, default port equal to no port, and a single
 * trailing '/' on either side ignored. Non-URI values compare exactly. */
int mcp_audience_equal(const char *a, const char *b);

/* Does the aud claim (string or array of strings) contain an accepted value? */
int mcp_audience_accepted(const json_t *aud, const char *const *accepted, int n);

#endif
