/* SPDX-License-Identifier: Apache-2.0 */
/* Cached verdicts (verdict.c): what a cache hit reuses instead of the
 * token. Input: "<user claim>\0<scope claim>\0<claims JSON>" (empty names
 * mean the defaults). A verdict made from claims survives encode + decode
 * unchanged; where mcp_claims_check accepts the time claims, the cache-hit
 * check mcp_verdict_time_check accepts them too (and the other way round);
 * the whole input, read as an encoded verdict, decodes or is refused, and
 * what decodes re-encodes to something that decodes the same. Any time
 * value, from claims or from a stored verdict (-1e300, 1e300, ...), caps a
 * cache lifetime through mcp_time_cap without an undefined conversion
 * (UBSan aborts on one) and never extends it. */
#include "claim_check.h"
#include "fuzz_common.h"
#include "json_util.h"
#include "verdict.h"

#include <math.h>

#define NOW 1700000000LL

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_global_init();
    return 0;
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_same(const mcp_verdict_t *a, const mcp_verdict_t *b)
{
    FZ_ASSERT(a->issuer_index == b->issuer_index && a->alg == b->alg);
    FZ_ASSERT(a->has_exp == b->has_exp && a->has_nbf == b->has_nbf && a->has_iat == b->has_iat);
    FZ_ASSERT(!a->has_exp || a->exp == b->exp);
    FZ_ASSERT(!a->has_nbf || a->nbf == b->nbf);
    FZ_ASSERT(!a->has_iat || a->iat == b->iat);
    FZ_ASSERT(same_str(a->user, b->user) && same_str(a->sub, b->sub) && same_str(a->iss, b->iss));
    FZ_ASSERT(same_str(a->scope, b->scope) && same_str(a->claims, b->claims));
    FZ_ASSERT(same_str(a->client_id, b->client_id) && a->log_clean == b->log_clean);
}

static void cap_bounds(double d)
{
    const apr_time_t until = apr_time_from_sec(NOW + 300);
    apr_time_t c = mcp_time_cap(until, d);
    FZ_ASSERT(c >= 0 && c <= until);
    if (d >= (double)(NOW + 300))
        FZ_ASSERT(c == until);
    if (!(d > 0))
        FZ_ASSERT(c == 0); /* the epoch or before, -inf, NaN */
}

static void caps(const mcp_verdict_t *v)
{
    cap_bounds(v->exp);
    cap_bounds(v->nbf);
    cap_bounds(v->iat);
}

static void round_trip(apr_pool_t *p, const mcp_verdict_t *v)
{
    mcp_verdict_t back;
    size_t len = 0;
    const char *text = mcp_verdict_encode(p, v, &len);
    FZ_ASSERT(text && len > 0);
    FZ_ASSERT(mcp_verdict_decode(p, text, len, &back) == 0);
    check_same(v, &back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    const uint8_t *r1, *r2 = NULL;
    size_t l1, l2 = 0, l0 = fz_split(data, size, &r1, &l1);
    const char *user_claim = l0 ? fz_cstr(p, data, l0) : NULL, *scope_claim = NULL;
    json_t *claims = NULL;
    mcp_verdict_t v;

    if (r1) {
        l1 = fz_split(r1, l1, &r2, &l2);
        scope_claim = l1 ? fz_cstr(p, r1, l1) : NULL;
    }
    if (r2)
        claims = mcp_json_parse(p, (const char *)r2, l2);

    if (json_is_object(claims) && mcp_verdict_from_claims(p, claims, (int)(size % 3), (mcp_alg)(size % MCP_ALG_COUNT),
                                                          user_claim, scope_claim, &v) == 0) {
        long long skews[] = {0, 30, 300};
        int i;
        FZ_ASSERT(v.user && v.scope && v.claims);
        round_trip(p, &v);
        caps(&v);
        for (i = 0; i < 3; i++) {
            mcp_claim_policy_t pol = {NULL, 0, NULL, 0, skews[i], NOW, i == 2};
            mcp_fail_t f1 = {0}, f2 = {0};
            int full = mcp_claims_check(p, claims, &pol, &f1);
            int hit = mcp_verdict_time_check(p, &v, NOW, skews[i], i == 2, &f2);
            /* Malformed time claims never make it into a verdict (the full
             * check refuses them first), so only compare well-formed ones. */
            if (full == 0)
                FZ_ASSERT(hit == 0);
            else if (strcmp(f1.reason, "Malformed token") != 0)
                FZ_ASSERT(hit != 0);
        }
    }

    /* The raw input as a stored verdict. */
    if (mcp_verdict_decode(p, (const char *)data, size, &v) == 0) {
        FZ_ASSERT(v.user && v.scope && v.claims && v.issuer_index >= 0);
        FZ_ASSERT(v.alg >= MCP_ALG_UNKNOWN && v.alg < MCP_ALG_COUNT);
        caps(&v);
        if (isfinite(v.exp) && isfinite(v.nbf) && isfinite(v.iat))
            round_trip(p, &v);
    }
    apr_pool_destroy(p);
    return 0;
}
