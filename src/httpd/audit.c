/* SPDX-License-Identifier: Apache-2.0 */
#include "audit.h"

#include <apr_strings.h>
#include <string.h>

#include "metrics.h"
#include "request.h"
#include "scopes.h"
#include "toolscope.h"

/* The outcome of a request the module decided (-1: nothing to count: not
 * ours, a CORS preflight, a metadata lookup), and why. */
static int outcome_of(const mcp_request_t *st, int status, mcp_reason *why)
{
    static const mcp_outcome by_kind[] = {
        [MCP_FAIL_NO_TOKEN] = MCP_OUTCOME_NO_TOKEN,
        [MCP_FAIL_INVALID_REQUEST] = MCP_OUTCOME_INVALID_REQUEST,
        [MCP_FAIL_INVALID_TOKEN] = MCP_OUTCOME_INVALID_TOKEN,
        [MCP_FAIL_INSUFFICIENT_SCOPE] = MCP_OUTCOME_INSUFFICIENT_SCOPE,
        [MCP_FAIL_UNAVAILABLE] = MCP_OUTCOME_UNAVAILABLE,
        [MCP_FAIL_CONFIG] = MCP_OUTCOME_CONFIG,
    };
    *why = st ? st->reason : MCP_R_NONE;
    switch (st ? st->state : MCP_REQ_NEW) {
    case MCP_REQ_VERIFIED:
        *why = MCP_R_NONE;
        return MCP_OUTCOME_ACCEPTED;
    case MCP_REQ_REFUSED_AUTHN:
        return (unsigned)st->fail.kind < sizeof(by_kind) / sizeof(by_kind[0]) && st->fail.kind != MCP_OK
                   ? (int)by_kind[st->fail.kind]
                   : MCP_OUTCOME_CONFIG;
    case MCP_REQ_REFUSED_SCOPE:
        if (*why == MCP_R_NONE)
            *why = MCP_R_STEP_UP;
        return MCP_OUTCOME_INSUFFICIENT_SCOPE;
    case MCP_REQ_REFUSED_RPC:
        return MCP_OUTCOME_INVALID_REQUEST;
    case MCP_REQ_REFUSED_ORIGIN:
        *why = MCP_R_ORIGIN;
        return MCP_OUTCOME_FORBIDDEN;
    case MCP_REQ_DENIED_BY_RULE:
    case MCP_REQ_DENIED:
    case MCP_REQ_NEW:
    default:
        /* httpd's own Require refused (Require ip, all denied): before or
         * without our answer. */
        if (status == HTTP_FORBIDDEN || status == HTTP_UNAUTHORIZED) {
            *why = MCP_R_RULE;
            return MCP_OUTCOME_FORBIDDEN;
        }
        return -1;
    }
}

/* One audit field: a note for %{NAME}n and a variable for %{NAME}e, on
 * the request and on the final one of its internal redirects (an
 * ErrorDocument): mod_log_config reads %{..}n and %{..}e from the final
 * request, %<{..}n and CustomLog's env= condition from the first. */
static void put_one(request_rec *r, const char *name, const char *value, int env);
static void put(request_rec *r, const char *name, const char *value, int env)
{
    request_rec *last = r;
    while (last->next)
        last = last->next;
    put_one(r, name, value, env);
    if (last != r)
        put_one(last, name, value, env);
}

static void put_one(request_rec *r, const char *name, const char *value, int env)
{
    if (!value)
        return;
    /* Added without a search for an earlier value (apr_table_setn compares
     * the name with every MCP_AUTH_* already there): nothing else sets these
     * names, and this runs once per request. */
    apr_table_addn(r->notes, name, value);
    if (env)
        apr_table_addn(r->subprocess_env, name, value);
}

static const char *tool_names(request_rec *r, const mcp_request_t *st)
{
    const apr_array_header_t *called = mcp_toolscope_called(st);
    apr_array_header_t *enc;
    int i;
    if (!called || called->nelts == 0)
        return NULL;
    enc = apr_array_make(r->pool, called->nelts, sizeof(const char *));
    for (i = 0; i < called->nelts; i++)
        APR_ARRAY_PUSH(enc, const char *) = mcp_audit_value(r->pool, APR_ARRAY_IDX(called, i, const char *), ",");
    return apr_array_pstrcat(r->pool, enc, ',');
}

/* Scopes this request asked for: what a step-up names, else what the
 * location's Require mcp-scope rules named. */
static const char *scopes_required(request_rec *r, const mcp_request_t *st)
{
    apr_array_header_t *want;
    int i;
    if (st->state != MCP_REQ_REFUSED_SCOPE)
        return st->hint && st->hint->nelts ? mcp_scope_join(r->pool, st->hint) : NULL;
    want = apr_array_copy(r->pool, st->missing);
    for (i = 0; st->tool_missing && i < st->tool_missing->nelts; i++)
        mcp_scope_add(want, APR_ARRAY_IDX(st->tool_missing, i, const char *));
    return want->nelts ? mcp_scope_join(r->pool, want) : NULL;
}

/* What the token said, for a request that had one accepted. Values from
 * a verified token, still encoded: a sub may hold any character. The
 * verdict knows whether they need encoding (checked once per token), so
 * a cache hit's record is four table entries and no scan. The
 * environment already has MCP_AUTH_SUB, _ISS and _SCOPE from identity.c
 * (raw, for the backend): only the notes are set for them here. */
static const char *audit_field(request_rec *r, const mcp_verdict_t *v, const char *s)
{
    return v->log_clean ? s : mcp_audit_value(r->pool, s, NULL);
}

static void audit_token(request_rec *r, const mcp_request_t *st)
{
    const mcp_verdict_t *v = st->verdict;
    put(r, "MCP_AUTH_SUB", audit_field(r, v, v->sub), 0);
    put(r, "MCP_AUTH_ISS", audit_field(r, v, v->iss), 0);
    if (v->scope && *v->scope)
        put(r, "MCP_AUTH_SCOPE", audit_field(r, v, v->scope), 0);
    put(r, "MCP_AUTH_CLIENT_ID", audit_field(r, v, v->client_id), 1);
}

/* The request's outcome into the counters, once. */
static void count(mcp_request_t *st, int outcome, mcp_reason why)
{
    if (st && st->counted)
        return;
    if (st)
        st->counted = 1;
    mcp_metric_request((mcp_outcome)outcome, why);
}

void mcp_audit_count(request_rec *r)
{
    mcp_request_t *st;
    mcp_reason why;
    int outcome;

    if (r->main || !(st = mcp_request_peek(r)) || st->counted)
        return;
    outcome = outcome_of(st, r->status, &why);
    if (outcome >= 0)
        count(st, outcome, why);
}

static int counted_in_chain(request_rec *r)
{
    for (; r; r = r->next) {
        const mcp_request_t *st = mcp_request_peek(r);
        if (st && st->counted)
            return 1;
    }
    return 0;
}

int mcp_audit_log_transaction(request_rec *r)
{
    mcp_request_t *st;
    mcp_reason why;
    int outcome;

    if (r->main || (!(st = mcp_request_peek(r)) && !mcp_is_ours(r)))
        return DECLINED;
    outcome = outcome_of(st, r->status, &why);
    if (outcome < 0)
        return DECLINED;
    /* Counted at the decision already, unless an ErrorDocument redirect
     * took the request past those points. An internal redirect's request
     * (its copy of the token's state) may have been counted instead. */
    if (!counted_in_chain(r))
        count(st, outcome, why);
    put(r, "MCP_AUTH_DECISION", outcome == MCP_OUTCOME_ACCEPTED ? "allow" : "deny", 1);
    /* A refusal's reason word; a refusal without one (no token) by its
     * outcome's name. */
    if (outcome != MCP_OUTCOME_ACCEPTED)
        put(r, "MCP_AUTH_REASON", why != MCP_R_NONE ? mcp_reason_slug(why) : mcp_outcome_name((mcp_outcome)outcome), 1);
    if (!st)
        return DECLINED;
    if (mcp_request_verified(st) && st->verdict)
        audit_token(r, st);
    put(r, "MCP_AUTH_TOOL", tool_names(r, st), 1);
    put(r, "MCP_AUTH_SCOPE_REQUIRED", mcp_audit_value(r->pool, scopes_required(r, st), NULL), 1);
    return DECLINED;
}
