#include "verdict.h"

#include <apr_strings.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "claim_rules.h"
#include "claims.h"
#include "json_util.h"
#include "propagate.h"

/* A claim fit to be REMOTE_USER: it ends up in headers and logs, so a value
 * with control characters counts as absent (the next candidate is used). */
static const char *claim_as_user(apr_pool_t *p, const json_t *claims, const char *name)
{
    int unsafe;
    return mcp_claim_text(p, mcp_claim_path(claims, name), &unsafe);
}

static int time_claim(const json_t *claims, const char *name, double *out)
{
    json_t *v = json_object_get(claims, name);
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return 0;
    *out = json_number_value(v);
    return 1;
}

int mcp_verdict_from_claims(apr_pool_t *p, const json_t *claims, int issuer_index, mcp_alg alg,
                            const char *user_claim, const char *scope_claim, mcp_verdict_t *v)
{
    static const char *const fallback[] = {"sub", "client_id", "username"};
    int i, unsafe;

    memset(v, 0, sizeof(*v));
    v->issuer_index = issuer_index;
    v->alg = alg;
    v->has_exp = time_claim(claims, "exp", &v->exp);
    v->has_nbf = time_claim(claims, "nbf", &v->nbf);
    v->has_iat = time_claim(claims, "iat", &v->iat);
    v->user = user_claim ? claim_as_user(p, claims, user_claim) : NULL;
    for (i = 0; !v->user && i < 3; i++)
        v->user = claim_as_user(p, claims, fallback[i]);
    if (!v->user)
        v->user = "";
    v->sub = mcp_claim_text(p, json_object_get(claims, "sub"), &unsafe);
    v->iss = mcp_claim_text(p, json_object_get(claims, "iss"), &unsafe);
    v->scope = mcp_scope_join(p, mcp_token_scopes(p, claims, scope_claim));
    if (!v->scope)
        v->scope = "";
    v->claims = mcp_json_compact(p, claims);
    return v->claims ? 0 : -1;
}

int mcp_verdict_time_check(apr_pool_t *p, const mcp_verdict_t *v, long long now, long long skew, int exp_optional,
                           mcp_fail_t *fail)
{
    return mcp_time_claims_check(p, v->has_exp ? &v->exp : NULL, v->has_nbf ? &v->nbf : NULL,
                                 v->has_iat ? &v->iat : NULL, now, skew, exp_optional, fail);
}

apr_time_t mcp_time_cap(apr_time_t until, double seconds)
{
    apr_time_t t;
    /* Range-checked as a double first: converting a double outside the
     * range of apr_time_t is undefined behaviour. 9e12 s (285,000 years)
     * in microseconds still fits an int64 with room to spare. NaN fails
     * every comparison: it caps to 0 like a date before the epoch. */
    if (!(seconds > 0))
        return until > 0 ? 0 : until;
    if (seconds >= 9e12)
        return until;
    t = (apr_time_t)(seconds * APR_USEC_PER_SEC);
    return t < until ? t : until;
}

/* Text: a header line of numbers and field lengths, then the fields. Every
 * string is length-prefixed, so claims may hold any byte. */
const char *mcp_verdict_encode(apr_pool_t *p, const mcp_verdict_t *v, size_t *len)
{
    const char *s = v->sub ? v->sub : "", *i = v->iss ? v->iss : "";
    char head[400];
    const char *out;

    /* snprintf, not apr_psprintf: APR's formatter has no %a, and %.17g
     * carries every bit of a double. */
    snprintf(head, sizeof(head), "v2 %d %d %d %.17g %d %.17g %d %.17g %lu %d %lu %d %lu %lu %lu\n", v->issuer_index,
             (int)v->alg, v->has_exp, v->exp, v->has_nbf, v->nbf, v->has_iat, v->iat, (unsigned long)strlen(v->user),
             v->sub != NULL, (unsigned long)strlen(s), v->iss != NULL, (unsigned long)strlen(i),
             (unsigned long)strlen(v->scope), (unsigned long)strlen(v->claims));
    out = apr_pstrcat(p, head, v->user, s, i, v->scope, v->claims, NULL);
    *len = strlen(out);
    return out;
}

static const char *take(apr_pool_t *p, const char **cur, const char *end, unsigned long n)
{
    const char *s;
    if ((unsigned long)(end - *cur) < n)
        return NULL;
    s = apr_pstrmemdup(p, *cur, n);
    *cur += n;
    return s;
}

int mcp_verdict_decode(apr_pool_t *p, const char *text, size_t len, mcp_verdict_t *v)
{
    const char *nl = memchr(text, '\n', len), *cur, *end = text + len;
    unsigned long lu, ls, li, lsc, lc;
    int alg, has_sub, has_iss;
    char head[512];

    if (!nl || (size_t)(nl - text) >= sizeof(head))
        return -1;
    memcpy(head, text, (size_t)(nl - text));
    head[nl - text] = '\0';
    memset(v, 0, sizeof(*v));
    if (sscanf(head, "v2 %d %d %d %lg %d %lg %d %lg %lu %d %lu %d %lu %lu %lu", &v->issuer_index, &alg, &v->has_exp,
               &v->exp, &v->has_nbf, &v->nbf, &v->has_iat, &v->iat, &lu, &has_sub, &ls, &has_iss, &li, &lsc,
               &lc) != 15 ||
        v->issuer_index < 0 || alg < MCP_ALG_UNKNOWN || alg >= MCP_ALG_COUNT)
        return -1;
    v->alg = (mcp_alg)alg;
    cur = nl + 1;
    if (!(v->user = take(p, &cur, end, lu)) || !(v->sub = take(p, &cur, end, ls)) ||
        !(v->iss = take(p, &cur, end, li)) || !(v->scope = take(p, &cur, end, lsc)) ||
        !(v->claims = take(p, &cur, end, lc)) || cur != end)
        return -1;
    if (!has_sub)
        v->sub = NULL;
    if (!has_iss)
        v->iss = NULL;
    return 0;
}
