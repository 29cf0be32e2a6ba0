/* SPDX-License-Identifier: Apache-2.0 */
#include "verdict.h"

#include <apr_strings.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "claim_check.h"
#include "scopes.h"
#include "json_util.h"
#include "metrics.h"
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

int mcp_verdict_from_claims(apr_pool_t *p, const json_t *claims, int issuer_index, mcp_alg alg, const char *user_claim,
                            const char *scope_claim, mcp_verdict_t *v)
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
    v->client_id = json_string_value(json_object_get(claims, "client_id"));
    if (!v->client_id)
        v->client_id = json_string_value(json_object_get(claims, "azp"));
    if (v->client_id)
        v->client_id = apr_pstrdup(p, v->client_id);
    /* Once per token, so that a cache hit's audit record needs no scan. */
    v->log_clean = mcp_audit_clean(v->sub) && mcp_audit_clean(v->iss) && mcp_audit_clean(v->scope) &&
                   mcp_audit_clean(v->client_id);
    v->claims = mcp_json_compact(p, claims);
    return v->claims ? 0 : -1;
}

int mcp_verdict_time_check(apr_pool_t *p, const mcp_verdict_t *v, long long now, long long skew, int exp_optional,
                           mcp_fail_t *fail)
{
    return mcp_time_claims_check(p, v->has_exp ? &v->exp : NULL, v->has_nbf ? &v->nbf : NULL,
                                 v->has_iat ? &v->iat : NULL, now, skew, exp_optional, fail);
}

apr_time_t mcp_verdict_keep_until(const mcp_verdict_t *v, apr_time_t until)
{
    return v->has_exp ? mcp_time_cap(until, v->exp) : until;
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

/* The stored form: a fixed binary head, then the six strings, each with
 * its NUL. Decoding copies nothing: the strings are used where they lie
 * (the caller's buffer), so a shared-cache hit costs one copy of the
 * entry and no parsing of numbers. The head's layout is versioned: a
 * graceful restart may hand entries written by another build to this one
 * (the cache kind changes with the version too). */
#define VERDICT_WIRE_VERSION 4u
#define NFIELDS 6

typedef struct {
    uint32_t version;
    int32_t issuer_index, alg;
    uint8_t has_exp, has_nbf, has_iat, has_sub, has_iss, has_client_id, log_clean, pad;
    double exp, nbf, iat;
    uint32_t len[NFIELDS]; /* user, sub, iss, scope, claims, client_id: bytes without the NUL */
} wire_head;

const char *mcp_verdict_encode(apr_pool_t *p, const mcp_verdict_t *v, size_t *len)
{
    const char *field[NFIELDS];
    wire_head h;
    size_t total = sizeof(h);
    char *out, *at;
    int i;

    memset(&h, 0, sizeof(h));
    h.version = VERDICT_WIRE_VERSION;
    h.issuer_index = v->issuer_index;
    h.alg = (int32_t)v->alg;
    h.has_exp = (uint8_t) !!v->has_exp;
    h.has_nbf = (uint8_t) !!v->has_nbf;
    h.has_iat = (uint8_t) !!v->has_iat;
    h.has_sub = v->sub != NULL;
    h.has_iss = v->iss != NULL;
    h.has_client_id = v->client_id != NULL;
    h.log_clean = (uint8_t) !!v->log_clean;
    h.exp = v->exp;
    h.nbf = v->nbf;
    h.iat = v->iat;
    field[0] = v->user;
    field[1] = v->sub ? v->sub : "";
    field[2] = v->iss ? v->iss : "";
    field[3] = v->scope;
    field[4] = v->claims;
    field[5] = v->client_id ? v->client_id : "";
    for (i = 0; i < NFIELDS; i++) {
        size_t n = strlen(field[i]);
        if (n >= UINT32_MAX)
            return NULL;
        h.len[i] = (uint32_t)n;
        total += n + 1;
    }
    at = out = apr_palloc(p, total);
    memcpy(at, &h, sizeof(h));
    at += sizeof(h);
    for (i = 0; i < NFIELDS; i++) {
        memcpy(at, field[i], h.len[i] + 1);
        at += h.len[i] + 1;
    }
    *len = total;
    return out;
}

int mcp_verdict_decode(apr_pool_t *p, const char *text, size_t len, mcp_verdict_t *v)
{
    const char *field[NFIELDS], *cur = text + sizeof(wire_head), *end = text + len;
    wire_head h;
    int i;

    (void)p;
    if (len < sizeof(h))
        return -1;
    memcpy(&h, text, sizeof(h));
    if (h.version != VERDICT_WIRE_VERSION || h.issuer_index < 0 || h.alg < MCP_ALG_UNKNOWN || h.alg >= MCP_ALG_COUNT)
        return -1;
    /* The encoder writes each flag as 0 or 1: any other byte is damage,
     * refused like the rest (a flag of 2 would read as true here and as 1
     * after a re-encode: the fuzzer's round trip found it). */
    if ((h.has_exp | h.has_nbf | h.has_iat | h.has_sub | h.has_iss | h.has_client_id | h.log_clean) > 1)
        return -1;
    /* Every string ends with its NUL exactly where its length says, and
     * the last one ends the value: nothing is read outside it. */
    for (i = 0; i < NFIELDS; i++) {
        if ((size_t)(end - cur) <= h.len[i] || cur[h.len[i]] != '\0' || memchr(cur, '\0', h.len[i]))
            return -1;
        field[i] = cur;
        cur += h.len[i] + 1;
    }
    if (cur != end)
        return -1;
    memset(v, 0, sizeof(*v));
    v->issuer_index = h.issuer_index;
    v->alg = (mcp_alg)h.alg;
    v->has_exp = h.has_exp;
    v->has_nbf = h.has_nbf;
    v->has_iat = h.has_iat;
    v->exp = h.exp;
    v->nbf = h.nbf;
    v->iat = h.iat;
    v->user = field[0];
    v->sub = h.has_sub ? field[1] : NULL;
    v->iss = h.has_iss ? field[2] : NULL;
    v->scope = field[3];
    v->claims = field[4];
    v->client_id = h.has_client_id ? field[5] : NULL;
    v->log_clean = h.log_clean;
    return 0;
}
