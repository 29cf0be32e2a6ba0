/* SPDX-License-Identifier: Apache-2.0 */
/* The one home of the module's refusals: what each sends (status, Bearer
 * challenge, JSON error page, one log line) and the request state it
 * moves. Only this file writes mcp_request_t.state; httpd reaches it
 * through three hooks (note_auth_failure, insert_error_filter, fixups via
 * mod_mcp_auth.c) and the other glue files through the calls below.
 *
 * The states of one request and what moves them (in brackets: the phase):
 *
 *   NEW --- Origin not allowed [header_parser] ------------------------> REFUSED_ORIGIN  403, no challenge
 *    |
 *    |  a CORS preflight skips authn and authz and stays NEW: the handler answers 204
 *    |  (refused by `Require ip` and the like: httpd's own 403, without a CORS grant)
 *    |
 *    +--- no token, bad token, IdP down [check_authn] -----------------> REFUSED_AUTHN   401 + challenge,
 *    |                                             ^                                     400, 500,
 *    |                                             |                                     503 + Retry-After
 *    `--- token accepted --> VERIFIED -------------'  the configuration changed after the fixups
 *         [check_authn]       |  ^  |                 and refuses the token [late_checks]
 *                             |  |  |
 *                             |  |  +-- a tools/call lacks a scope [fixups] --------> REFUSED_SCOPE  403 + step-up
 *                             |  |  `-- bad JSON-RPC body, or Mcp-Method/Mcp-Name
 *                             |  |      against it [fixups] ------------------------> REFUSED_RPC    400, no challenge
 *    a Require mcp-scope or   |  |
 *    mcp-claim rule says no   |  |  a RequireAny sibling granted after all [fixups]
 *    [authz]                  v  |
 *                        DENIED_BY_RULE
 *                             |  |
 *                             |  `-- AuthzSendForbiddenOnFailure On: 403 [error filter] --> REFUSED_SCOPE
 *    the Require tree         |
 *    refuses [authz]:         v
 *    note_auth_failure     DENIED --- mod_authz_core's 401 [error filter: 403] ---------> REFUSED_SCOPE
 *    (also from VERIFIED)
 *
 * The REFUSED_* states are answered: the error filter gives their page its
 * JSON content type. The states from VERIFIED on hold a token; an internal
 * redirect (ErrorDocument, mod_rewrite) that skips authentication copies
 * it as VERIFIED (mcp_state_redirected). A subrequest has a state of its
 * own and sets no error page: its refusal is the main request's to answer.
 *
 * The challenge (WWW-Authenticate) is one function, as httpd's
 * note_basic_auth_failure is: the state says which (no token, the failure,
 * or step-up with the scopes still needed). */
#include "refusal.h"

#include <apr_strings.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <stdarg.h>
#include <string.h>

#include "audit.h"
#include "authn.h"
#include "authz.h"
#include "challenge.h"
#include "http_fetch.h"
#include "log_limit.h"
#include "scopes.h"

APLOG_USE_MODULE(mcp_auth);

/* ---- the log line ---------------------------------------------------- */

/* Summary lines of refusals the limit held back. Not about this request:
 * logged for its server, without its client. */
static void log_summaries(server_rec *s, const mcp_log_summary_t *due, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        /* cppcheck-suppress uninitvar ; the callers pass the n entries mcp_log_limit_admit/flush wrote */
        apr_time_t secs = apr_time_sec(due[i].span + APR_USEC_PER_SEC - 1);
        ap_log_error(APLOG_MARK, due[i].level, 0, s,
                     "%" APR_UINT64_T_FMT " more \"%s\" refusals suppressed in the last %ld s "
                     "(each process logs the first of each reason per MCPAuthRefusalLogInterval)",
                     due[i].count, due[i].reason, (long)(secs > 0 ? secs : 1));
    }
}

void mcp_log_refusal(request_rec *r, int level, const char *reason, const char *fmt, ...)
{
    mcp_log_summary_t due[16];
    int n, admit;
    va_list ap;

    admit = mcp_log_limit_admit(mcp_log_limit_process(), reason, level, apr_time_now(), due, 16, &n);
    log_summaries(r->server, due, n);
    if (!admit)
        return;
    va_start(ap, fmt);
    ap_log_rerror(APLOG_MARK, level, 0, r, "%s", apr_pvsprintf(r->pool, fmt, ap));
    va_end(ap);
}

static apr_status_t flush_refusal_counts(void *s)
{
    mcp_log_summary_t due[MCP_LOG_LIMIT_KINDS];
    log_summaries(s, due, mcp_log_limit_flush(mcp_log_limit_process(), apr_time_now(), due, MCP_LOG_LIMIT_KINDS));
    return APR_SUCCESS;
}

void mcp_refusal_log_child_init(apr_pool_t *pchild, server_rec *s)
{
    mcp_log_limit_process()->interval = mcp_srv_conf(s)->refusal_log_interval;
    /* The last interval's count has no later refusal to report it. */
    apr_pool_cleanup_register(pchild, s, flush_refusal_counts, apr_pool_cleanup_null);
}

/* ---- the state ------------------------------------------------------- */

/* The only assignment of st->state: every arrow of the diagram above. */
static void enter(mcp_request_t *st, mcp_req_state_t to)
{
    st->state = to;
}

void mcp_state_accepted(mcp_request_t *st)
{
    enter(st, MCP_REQ_VERIFIED);
}

void mcp_state_redirected(mcp_request_t *st)
{
    enter(st, MCP_REQ_VERIFIED);
}

/* This request's refusal set its error page (not a subrequest's: that is
 * the main request's to answer). */
static int answered(request_rec *r, const mcp_request_t *st)
{
    if (!st || r->main)
        return 0;
    return st->state == MCP_REQ_REFUSED_ORIGIN || st->state == MCP_REQ_REFUSED_AUTHN ||
           st->state == MCP_REQ_REFUSED_SCOPE || st->state == MCP_REQ_REFUSED_RPC;
}

/* ---- the challenge --------------------------------------------------- */

/* Space-delimited scopes for a challenge, without offline_access: a
 * refresh-token grant is the client's business with its authorization
 * server, never something a resource asks for (MCP 2026-07-28 SHOULD NOT). */
static const char *challenge_scopes(apr_pool_t *p, const apr_array_header_t *set, const char *prefix)
{
    apr_array_header_t *out;
    int i;

    if (!set)
        return NULL;
    out = apr_array_make(p, set->nelts, sizeof(const char *));
    for (i = 0; i < set->nelts; i++) {
        const char *s = APR_ARRAY_IDX(set, i, const char *), *sh = mcp_scope_short(s, prefix);
        if (strcmp(sh ? sh : s, "offline_access") != 0)
            /* MCPAuthScopeRequestPrefix: the spelling the client must ask
             * the authorization server for (Entra resolves a bare name
             * against Microsoft Graph). */
            mcp_scope_add(out, mcp_scope_requestable(p, s, prefix));
    }
    return mcp_scope_join(p, out);
}

/* A valid token that may not do this: step-up (RFC 6750 3.1). One
 * challenge names the token's own scopes plus everything this operation
 * still needs -- the location's rules and every tool the body calls -- so
 * one re-authorization suffices. */
static const char *step_up_scopes(request_rec *r, const mcp_dir_conf_t *conf, const mcp_request_t *st)
{
    apr_array_header_t *want = mcp_scope_split(r->pool, st->verdict ? st->verdict->scope : NULL);
    int i;
    for (i = 0; i < st->missing->nelts; i++)
        mcp_scope_add(want, APR_ARRAY_IDX(st->missing, i, const char *));
    for (i = 0; st->tool_missing && i < st->tool_missing->nelts; i++)
        mcp_scope_add(want, APR_ARRAY_IDX(st->tool_missing, i, const char *));
    return challenge_scopes(r->pool, want, conf->scope_request_prefix);
}

/* WWW-Authenticate for what the state says: the failure of a refused
 * token, step-up for a valid one, else no token. */
static void set_challenge(request_rec *r, const mcp_dir_conf_t *conf)
{
    mcp_request_t *st = mcp_request_peek(r);
    mcp_fail_t fail = {MCP_FAIL_NO_TOKEN, "No bearer token", NULL};
    mcp_challenge_t c;
    const char *h;

    c.realm = ap_auth_name(r);
    c.resource_metadata = mcp_conf_resource_metadata(conf) ? mcp_metadata_url(r, conf) : NULL;
    /* Least privilege first: what this location's Require mcp-scope rules
     * named (tool scopes come later, by step-up), else the advertised set. */
    c.scope = challenge_scopes(r->pool, st && st->hint && st->hint->nelts ? st->hint : conf->scopes_supported,
                               conf->scope_request_prefix);
    if (st && st->state == MCP_REQ_REFUSED_AUTHN) {
        fail = st->fail;
    }
    else if (st && mcp_request_verified(st)) {
        fail.kind = MCP_FAIL_INSUFFICIENT_SCOPE;
        fail.reason = "Insufficient scope";
        c.scope = step_up_scopes(r, conf, st);
    }
    h = mcp_challenge_header(r->pool, &fail, &c);
    if (h)
        apr_table_setn(r->err_headers_out, "WWW-Authenticate", h);
}

/* ---- the refusals ---------------------------------------------------- */

/* Sets the refusal's page -- one challenge, the JSON error body, one log
 * line -- for a request already in its refused state, and returns its
 * status for httpd's error path. */
static int render(request_rec *r, const mcp_dir_conf_t *conf, const mcp_fail_t *fail)
{
    int status = mcp_fail_status(fail->kind);
    int level = fail->kind == MCP_FAIL_NO_TOKEN                                       ? APLOG_DEBUG
                : fail->kind == MCP_FAIL_UNAVAILABLE || fail->kind == MCP_FAIL_CONFIG ? APLOG_ERR
                                                                                      : APLOG_WARNING;

    mcp_log_refusal(r, level, fail->reason, "%s%s%s (%s %s)", fail->reason, fail->detail ? ": " : "",
                    fail->detail ? fail->detail : "", r->method, mcp_printable(r->pool, r->uri, 256));
    /* For a 401 this is what note_auth_failure does (the hook below). */
    set_challenge(r, conf);
    if (status == HTTP_SERVICE_UNAVAILABLE) {
        /* The backoff of the endpoint that failed or was not asked (whole
         * seconds, >= 1); 30 when no call of this request told us more. */
        long retry = mcp_http_retry_after();
        apr_table_setn(r->err_headers_out, "Retry-After", retry > 0 ? apr_ltoa(r->pool, retry) : "30");
    }
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    mcp_audit_count(r);
    if (r->main)
        return status; /* a subrequest's refusal is the main request's to answer */
    /* The error page's text; the error filter makes it application/json. */
    ap_custom_response(r, status, mcp_error_body(r->pool, fail));
    return status;
}

int mcp_refuse(request_rec *r, const mcp_dir_conf_t *conf, const mcp_fail_t *fail)
{
    mcp_request_t *st = mcp_request(r);
    st->fail = *fail;
    st->reason = mcp_reason_of(fail->reason);
    enter(st, MCP_REQ_REFUSED_AUTHN);
    return render(r, conf, fail);
}

int mcp_refuse_tool_scope(request_rec *r, const mcp_dir_conf_t *conf, mcp_request_t *st)
{
    mcp_fail_t fail;

    /* Only what the tools need: scopes a RequireAny branch asked for but
     * did not need are not owed here. */
    apr_array_clear(st->missing);
    mcp_fail(&fail, MCP_FAIL_INSUFFICIENT_SCOPE, "Insufficient scope",
             apr_psprintf(r->pool, "user %s calls a tool that needs %s", mcp_printable(r->pool, r->user, 128),
                          mcp_printable(r->pool, mcp_scope_join(r->pool, st->tool_missing), 256)));
    st->reason = MCP_R_TOOL_SCOPE;
    enter(st, MCP_REQ_REFUSED_SCOPE);
    return render(r, conf, &fail);
}

int mcp_refuse_jsonrpc(request_rec *r, int code, const char *id, const char *cause)
{
    mcp_request_t *st = mcp_request(r);
    const char *message = code == -32700 ? "Parse error" : code == -32020 ? "Header mismatch" : "Invalid Request";
    const char *reason = code == -32020 ? "Header mismatch" : "JSON-RPC body refused";

    mcp_log_refusal(r, APLOG_WARNING, reason, "%s (%d %s): %s (%s %s)", reason, code, message,
                    cause ? cause : "(no cause)", r->method, mcp_printable(r->pool, r->uri, 256));
    st->reason = code == -32020 ? MCP_R_HEADER_MISMATCH : MCP_R_JSONRPC;
    enter(st, MCP_REQ_REFUSED_RPC);
    /* Not an authorization failure: no challenge, whatever ran before. */
    apr_table_unset(r->err_headers_out, "WWW-Authenticate");
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    mcp_audit_count(r);
    if (r->main)
        return HTTP_BAD_REQUEST;
    /* The error page's text; the error filter makes it application/json. */
    ap_custom_response(r, HTTP_BAD_REQUEST,
                       apr_psprintf(r->pool,
                                    "{\"jsonrpc\":\"2.0\",\"id\":%s,\"error\":{\"code\":%d,\"message\":\"%s\"}}\n",
                                    id ? id : "null", code, message));
    return HTTP_BAD_REQUEST;
}

int mcp_refuse_origin(request_rec *r)
{
    mcp_log_refusal(r, APLOG_WARNING, "Origin not allowed", "Origin not allowed: %s (%s %s)",
                    mcp_printable(r->pool, apr_table_get(r->headers_in, "Origin"), 128), r->method,
                    mcp_printable(r->pool, r->uri, 256));
    if (!r->main) {
        /* No challenge: no token can make this origin acceptable. */
        mcp_request(r)->reason = MCP_R_ORIGIN;
        enter(mcp_request(r), MCP_REQ_REFUSED_ORIGIN);
        mcp_audit_count(r);
        apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
        ap_custom_response(r, HTTP_FORBIDDEN,
                           "{\"error\":\"access_denied\",\"error_description\":\"Origin not allowed\"}\n");
    }
    return HTTP_FORBIDDEN;
}

/* Under AuthzSendForbiddenOnFailure On mod_authz_core answers 403 straight
 * away, and ap_die would follow an `ErrorDocument 403 /url` before the
 * error filter could add the step-up challenge: this request's own text
 * for 403 takes precedence over it. Undone by mcp_refusal_withdrawn. */
void mcp_refusal_by_rule(request_rec *r, mcp_request_t *st)
{
    mcp_fail_t fail = {MCP_FAIL_INSUFFICIENT_SCOPE, "Insufficient scope", NULL};
    if (st->state != MCP_REQ_VERIFIED)
        return; /* the first rule that refused has set it */
    if (!r->main)
        ap_custom_response(r, HTTP_FORBIDDEN, mcp_error_body(r->pool, &fail));
    enter(st, MCP_REQ_DENIED_BY_RULE);
}

void mcp_refusal_withdrawn(request_rec *r)
{
    mcp_request_t *st = mcp_request_peek(r);
    core_request_config *rc = ap_get_core_module_config(r->request_config);

    if (!st || st->state != MCP_REQ_DENIED_BY_RULE)
        return;
    enter(st, MCP_REQ_VERIFIED);
    if (rc && rc->response_code_strings)
        rc->response_code_strings[ap_index_of_response(HTTP_FORBIDDEN)] = NULL;
}

/* ---- the hooks ------------------------------------------------------- */

int mcp_refusal_note_auth_failure(request_rec *r, const char *auth_type)
{
    mcp_request_t *st;

    if (strcasecmp(auth_type, MCP_AUTH_TYPE) != 0)
        return DECLINED;
    st = mcp_request_peek(r);
    /* mod_authz_core calls this for a user only when the whole Require
     * tree refused: a valid token that may not do this. */
    if (st && (st->state == MCP_REQ_VERIFIED || st->state == MCP_REQ_DENIED_BY_RULE || st->state == MCP_REQ_DENIED)) {
        mcp_fail_t fail = {MCP_FAIL_INSUFFICIENT_SCOPE, "Insufficient scope", NULL};
        enter(st, MCP_REQ_DENIED);
        /* The 401 on its way becomes our 403 in the error filter, which only
         * runs if ap_die does not follow an `ErrorDocument 401 /url` first:
         * this request's own error text for 401 takes precedence over it. */
        if (!r->main)
            ap_custom_response(r, HTTP_UNAUTHORIZED, mcp_error_body(r->pool, &fail));
    }
    set_challenge(r, mcp_dir_conf(r));
    return OK;
}

/* Error pages are HTML; ours is JSON. Runs before the HTTP header filter. */
apr_status_t mcp_refusal_json_error_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    ap_set_content_type(f->r, "application/json");
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

/* Our refusals get their JSON content type, and mod_authz_core's refusal
 * of a valid token -- 401 after note_auth_failure, or 403 under
 * AuthzSendForbiddenOnFailure On when one of our rules refused -- becomes
 * 403 insufficient_scope with the step-up challenge. */
static void error_response(request_rec *r, const mcp_dir_conf_t *conf)
{
    mcp_request_t *st = mcp_request_peek(r);
    mcp_fail_t fail = {MCP_FAIL_INSUFFICIENT_SCOPE, "Insufficient scope", NULL};
    int status = r->status;

    if (answered(r, st)) {
        ap_add_output_filter(MCP_JSON_ERROR_FILTER, NULL, r, r->connection);
        return;
    }
    if (!st || !((status == HTTP_UNAUTHORIZED && st->state == MCP_REQ_DENIED) ||
                 (status == HTTP_FORBIDDEN && st->state == MCP_REQ_DENIED_BY_RULE)))
        return;
    st->reason = MCP_R_STEP_UP;
    enter(st, MCP_REQ_REFUSED_SCOPE);
    r->status = HTTP_FORBIDDEN;
    r->status_line = NULL;
    set_challenge(r, conf);
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    /* The error page text for the status the error was raised with. */
    ap_custom_response(r, status, mcp_error_body(r->pool, &fail));
    ap_add_output_filter(MCP_JSON_ERROR_FILTER, NULL, r, r->connection);
    mcp_log_refusal(r, APLOG_WARNING, "Insufficient scope", "Insufficient scope: user %s, missing %s (%s %s)",
                    mcp_printable(r->pool, r->user, 128),
                    st->missing->nelts ? mcp_printable(r->pool, mcp_scope_join(r->pool, st->missing), 256)
                                       : "(a Require rule refused the token)",
                    r->method, mcp_printable(r->pool, r->uri, 256));
}

void mcp_refusal_insert_error_filter(request_rec *r)
{
    const mcp_dir_conf_t *conf;

    if (!mcp_is_ours(r))
        return;
    conf = mcp_dir_conf(r);
    error_response(r, conf);
    /* Every error of ours is counted by now; httpd's own refusal (Require
     * ip, all denied) before any token is counted here. */
    if (!r->main && (r->status == HTTP_FORBIDDEN || r->status == HTTP_UNAUTHORIZED))
        mcp_request(r);
    mcp_audit_count(r);
    /* A preflight passes only by our 204: a refused one gets no grant. */
    if (!mcp_is_preflight(r, conf))
        mcp_authz_cors_error(r, conf);
}
