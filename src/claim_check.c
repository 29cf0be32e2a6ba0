/* SPDX-License-Identifier: Apache-2.0 */
#include "claim_check.h"

#include <apr_strings.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* NumericDate (RFC 7519 2) is any JSON number; strings, booleans and
 * non-finite values are malformed. Returns -1 when the claim is absent,
 * -2 when it is malformed. */
static int numeric_date(const json_t *claims, const char *name, double *out)
{
    json_t *v = json_object_get(claims, name);
    if (!v)
        return -1;
    if (!json_is_number(v))
        return -2;
    *out = json_number_value(v);
    return isfinite(*out) ? 0 : -2;
}

/* A NumericDate for a log line. apr_psprintf's "%.0f" mishandles huge
 * values (garbage digits, reads uninitialised memory), so use the C library. */
static const char *date_str(apr_pool_t *p, double v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), fabs(v) < 1e15 ? "%.0f" : "%.6g", v);
    return apr_pstrdup(p, buf);
}

/* The two refusals above that time lifts; the reasons are this file's. */
#define NOT_YET_VALID "Token not yet valid"
#define ISSUED_IN_FUTURE "Token issued in the future"

int mcp_claims_refusal_lasts(const mcp_fail_t *fail)
{
    return fail->kind == MCP_FAIL_INVALID_TOKEN && fail->reason && strcmp(fail->reason, NOT_YET_VALID) != 0 &&
           strcmp(fail->reason, ISSUED_IN_FUTURE) != 0;
}

int mcp_time_claims_check(apr_pool_t *p, const double *exp, const double *nbf, const double *iat, long long now,
                          long long skew, int exp_optional, mcp_fail_t *fail)
{
    double n = (double)now, s = (double)skew;

    if (!exp && !exp_optional)
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Missing required claims", "exp");
    /* RFC 7519 4.1.4: the current time must be before exp (plus leeway). */
    if (exp && !(n < *exp + s))
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Token expired",
                        apr_psprintf(p, "exp %s, now %s, skew %s", date_str(p, *exp), date_str(p, n), date_str(p, s)));
    if (nbf && n + s < *nbf)
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, NOT_YET_VALID,
                        apr_psprintf(p, "nbf %s, now %s, skew %s", date_str(p, *nbf), date_str(p, n), date_str(p, s)));
    if (iat && *iat > n + s)
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, ISSUED_IN_FUTURE,
                        apr_psprintf(p, "iat %s, now %s, skew %s", date_str(p, *iat), date_str(p, n), date_str(p, s)));
    return 0;
}

int mcp_claims_check(apr_pool_t *p, const json_t *claims, const mcp_claim_policy_t *pol, mcp_fail_t *fail)
{
    double exp, nbf, iat;
    int rc_exp, rc_nbf, rc_iat, i;

    rc_exp = numeric_date(claims, "exp", &exp);
    if (rc_exp == -2)
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Malformed token", "exp is not a number");
    rc_nbf = numeric_date(claims, "nbf", &nbf);
    if (rc_nbf == -2)
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Malformed token", "nbf is not a number");
    rc_iat = numeric_date(claims, "iat", &iat);
    if (rc_iat == -2)
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Malformed token", "iat is not a number");
    if (mcp_time_claims_check(p, rc_exp == 0 ? &exp : NULL, rc_nbf == 0 ? &nbf : NULL, rc_iat == 0 ? &iat : NULL,
                              pol->now, pol->skew, pol->exp_optional, fail))
        return -1;

    for (i = 0; i < pol->n_required; i++) {
        json_t *v = json_object_get(claims, pol->required[i]);
        if (!v || json_is_null(v))
            return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Missing required claims",
                            mcp_printable(p, pol->required[i], 64));
    }

    if (pol->n_audiences > 0 &&
        !mcp_audience_accepted(json_object_get(claims, "aud"), pol->audiences, pol->n_audiences)) {
        json_t *aud = json_object_get(claims, "aud");
        const char *shown = json_is_string(aud) ? json_string_value(aud) : (aud ? "(array)" : "(none)");
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Invalid audience",
                        apr_psprintf(p, "aud %s, expected %s", mcp_printable(p, shown, 128),
                                     mcp_printable(p, pol->audiences[0], 128)));
    }
    return 0;
}

typedef struct {
    const char *scheme, *host, *port, *rest;
    size_t scheme_len, host_len, port_len, rest_len;
} uri_parts;

/* Splits "scheme://authority/rest" without allocating; 0 if not that shape. */
static int split_uri(const char *s, uri_parts *u)
{
    const char *sep = strstr(s, "://"), *auth, *end, *colon, *at;
    size_t i;

    if (!sep || sep == s)
        return 0;
    for (i = 0; s + i < sep; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.", s[i]))
            return 0;
    memset(u, 0, sizeof(*u));
    u->scheme = s;
    u->scheme_len = (size_t)(sep - s);
    auth = sep + 3;
    end = auth + strcspn(auth, "/?#");
    at = memchr(auth, '@', (size_t)(end - auth));
    if (at)
        return 0; /* userinfo: no canonical form worth guessing; compare exactly */
    colon = NULL;
    if (*auth == '[') {
        const char *close = memchr(auth, ']', (size_t)(end - auth));
        if (close && close + 1 < end && close[1] == ':')
            colon = close + 1;
    }
    else {
        colon = memchr(auth, ':', (size_t)(end - auth));
    }
    u->host = auth;
    u->host_len = (size_t)((colon ? colon : end) - auth);
    if (colon) {
        u->port = colon + 1;
        u->port_len = (size_t)(end - colon - 1);
    }
    u->rest = end;
    u->rest_len = strlen(end);
    /* One trailing '/' names the same resource (RFC 8707 canonical form). */
    if (u->rest_len > 0 && u->rest[u->rest_len - 1] == '/')
        u->rest_len--;
    return 1;
}

static void effective_port(const uri_parts *u, const char **port, size_t *len)
{
    if (u->port_len) {
        *port = u->port;
        *len = u->port_len;
    }
    else if (u->scheme_len == 5 && strncasecmp(u->scheme, "https", 5) == 0) {
        *port = "443";
        *len = 3;
    }
    else if (u->scheme_len == 4 && strncasecmp(u->scheme, "http", 4) == 0) {
        *port = "80";
        *len = 2;
    }
    else {
        *port = "";
        *len = 0;
    }
}

int mcp_audience_equal(const char *a, const char *b)
{
    uri_parts ua, ub;
    const char *pa, *pb;
    size_t la, lb;

    if (strcmp(a, b) == 0)
        return 1;
    if (!split_uri(a, &ua) || !split_uri(b, &ub))
        return 0;
    effective_port(&ua, &pa, &la);
    effective_port(&ub, &pb, &lb);
    return ua.scheme_len == ub.scheme_len && strncasecmp(ua.scheme, ub.scheme, ua.scheme_len) == 0 &&
           ua.host_len == ub.host_len && strncasecmp(ua.host, ub.host, ua.host_len) == 0 && la == lb &&
           memcmp(pa, pb, la) == 0 && ua.rest_len == ub.rest_len && memcmp(ua.rest, ub.rest, ua.rest_len) == 0;
}

int mcp_audience_accepted(const json_t *aud, const char *const *accepted, int n)
{
    size_t i;
    int j;
    json_t *v;

    if (json_is_string(aud)) {
        for (j = 0; j < n; j++)
            if (mcp_audience_equal(json_string_value(aud), accepted[j]))
                return 1;
        return 0;
    }
    if (!json_is_array(aud))
        return 0;
    json_array_foreach(aud, i, v)
    {
        if (!json_is_string(v))
            continue;
        for (j = 0; j < n; j++)
            if (mcp_audience_equal(json_string_value(v), accepted[j]))
                return 1;
    }
    return 0;
}
