#include "request.h"

#include <apr_strings.h>
#include <apr_uri.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <stdarg.h>
#include <string.h>

#include "challenge.h"
#include "scopes.h"
#include "http_fetch.h"
#include "json_util.h"
#include "log_limit.h"

APLOG_USE_MODULE(mcp_auth);

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
    mcp_log_limit_process()->interval = mcp_global.refusal_log_interval;
    /* The last interval's count has no later refusal to report it. */
    apr_pool_cleanup_register(pchild, s, flush_refusal_counts, apr_pool_cleanup_null);
}

mcp_request_t *mcp_request_peek(request_rec *r)
{
    return ap_get_module_config(r->request_config, &mcp_auth_module);
}

mcp_request_t *mcp_request(request_rec *r)
{
    mcp_request_t *st = mcp_request_peek(r);
    if (!st) {
        st = apr_pcalloc(r->pool, sizeof(*st));
        st->missing = apr_array_make(r->pool, 2, sizeof(const char *));
        ap_set_module_config(r->request_config, &mcp_auth_module, st);
    }
    return st;
}

json_t *mcp_request_claims(request_rec *r, mcp_request_t *st)
{
    if (!st->claims && st->verdict)
        st->claims = mcp_json_parse(r->pool, st->verdict->claims, strlen(st->verdict->claims));
    return st->claims;
}

/* scheme://host[:port] of the virtual host as UseCanonicalName On builds
 * it, from configuration only: ServerName's scheme (else the connection's,
 * https when mod_ssl serves it), host and port (else the scheme's default,
 * then omitted). Never the Host header, never X-Forwarded-*: a client must
 * not choose the audience its token is checked against. */
static const char *configured_origin(request_rec *r)
{
    const server_rec *s = r->server;
    const char *scheme = s->server_scheme ? s->server_scheme : ap_http_scheme(r);
    const char *host = s->server_hostname ? s->server_hostname : "localhost";
    apr_port_t def = apr_uri_port_of_scheme(scheme);
    apr_port_t port = s->port ? s->port : def;
    const char *lb = "", *rb = "";

    if (strchr(host, ':') && host[0] != '[') {
        lb = "[";
        rb = "]"; /* an IPv6 literal */
    }
    if (port == def)
        return apr_pstrcat(r->pool, scheme, "://", lb, host, rb, NULL);
    return apr_psprintf(r->pool, "%s://%s%s%s:%u", scheme, lb, host, rb, (unsigned)port);
}

const char *mcp_resource_uri(request_rec *r, const mcp_dir_conf_t *conf)
{
    if (conf->resource)
        return conf->resource;
    return apr_pstrcat(r->pool, configured_origin(r), conf->location ? conf->location : "/", NULL);
}

const char *mcp_metadata_url(request_rec *r, const mcp_dir_conf_t *conf)
{
    /* RFC 9728 3.1: the well-known segment goes between origin and path. */
    const char *res = mcp_resource_uri(r, conf), *sep = strstr(res, "://");
    const char *path = sep ? strchr(sep + 3, '/') : NULL;
    const char *origin = path ? apr_pstrmemdup(r->pool, res, (apr_size_t)(path - res)) : res;
    if (!path || strcmp(path, "/") == 0)
        path = "";
    return apr_pstrcat(r->pool, origin, "/.well-known/oauth-protected-resource", path, NULL);
}

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

void mcp_set_challenge(request_rec *r, const mcp_dir_conf_t *conf)
{
    mcp_request_t *st = mcp_request_peek(r);
    mcp_fail_t fail = {MCP_FAIL_NO_TOKEN, "No bearer token", NULL};
    mcp_challenge_t c;
    const char *h;

    c.realm = ap_auth_name(r);
    c.resource_metadata = conf->resource_metadata != 0 ? mcp_metadata_url(r, conf) : NULL;
    /* Least privilege first: what this location's Require mcp-scope rules
     * named (tool scopes come later, by step-up), else the advertised set. */
    c.scope = challenge_scopes(r->pool, st && st->hint && st->hint->nelts ? st->hint : conf->scopes_supported,
                               conf->scope_request_prefix);
    if (st && st->has_fail) {
        fail = st->fail;
    }
    else if (st && st->verified) {
        /* A valid token that may not do this: step-up (RFC 6750 3.1). One
         * challenge names the token's own scopes plus everything this
         * operation still needs -- the location's rules and every tool the
         * body calls -- so one re-authorization suffices. */
        apr_array_header_t *want = mcp_scope_split(r->pool, st->verdict ? st->verdict->scope : NULL);
        int i;
        for (i = 0; i < st->missing->nelts; i++)
            mcp_scope_add(want, APR_ARRAY_IDX(st->missing, i, const char *));
        for (i = 0; st->tool_missing && i < st->tool_missing->nelts; i++)
            mcp_scope_add(want, APR_ARRAY_IDX(st->tool_missing, i, const char *));
        fail.kind = MCP_FAIL_INSUFFICIENT_SCOPE;
        fail.reason = "Insufficient scope";
        c.scope = challenge_scopes(r->pool, want, conf->scope_request_prefix);
    }
    h = mcp_challenge_header(r->pool, &fail, &c);
    if (h)
        apr_table_setn(r->err_headers_out, "WWW-Authenticate", h);
}

int mcp_respond(request_rec *r, const mcp_dir_conf_t *conf, const mcp_fail_t *fail)
{
    mcp_request_t *st = mcp_request(r);
    int status = mcp_fail_status(fail->kind);
    int level = fail->kind == MCP_FAIL_NO_TOKEN                                            ? APLOG_DEBUG
                : fail->kind == MCP_FAIL_UNAVAILABLE || fail->kind == MCP_FAIL_CONFIG ? APLOG_ERR
                                                                                      : APLOG_WARNING;

    mcp_log_refusal(r, level, fail->reason, "%s%s%s (%s %s)", fail->reason, fail->detail ? ": " : "",
                    fail->detail ? fail->detail : "", r->method, mcp_printable(r->pool, r->uri, 256));
    st->has_fail = fail->kind != MCP_FAIL_INSUFFICIENT_SCOPE;
    st->fail = *fail;
    if (status == HTTP_UNAUTHORIZED)
        ap_note_auth_failure(r); /* runs our note_auth_failure hook: the challenge */
    else
        mcp_set_challenge(r, conf);
    if (status == HTTP_SERVICE_UNAVAILABLE) {
        /* The backoff of the endpoint that failed or was not asked (whole
         * seconds, >= 1); 30 when no call of this request told us more. */
        long retry = mcp_http_retry_after();
        apr_table_setn(r->err_headers_out, "Retry-After", retry > 0 ? apr_ltoa(r->pool, retry) : "30");
    }
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    if (r->main)
        return status; /* a subrequest's refusal is the main request's to answer */
    /* The error page's text; insert_error_filter makes it application/json. */
    ap_custom_response(r, status, mcp_error_body(r->pool, fail));
    st->responded = 1;
    return status;
}

int mcp_respond_jsonrpc(request_rec *r, int code, const char *id, const char *cause)
{
    mcp_request_t *st = mcp_request(r);
    const char *message = code == -32700 ? "Parse error" : code == -32020 ? "Header mismatch" : "Invalid Request";
    const char *reason = code == -32020 ? "Header mismatch" : "JSON-RPC body refused";

    mcp_log_refusal(r, APLOG_WARNING, reason, "%s (%d %s): %s (%s %s)", reason, code, message,
                    cause ? cause : "(no cause)", r->method, mcp_printable(r->pool, r->uri, 256));
    /* Not an authorization failure: no challenge, whatever ran before. */
    apr_table_unset(r->err_headers_out, "WWW-Authenticate");
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    if (r->main)
        return HTTP_BAD_REQUEST;
    /* The error page's text; insert_error_filter makes it application/json. */
    ap_custom_response(r, HTTP_BAD_REQUEST,
                       apr_psprintf(r->pool,
                                    "{\"jsonrpc\":\"2.0\",\"id\":%s,\"error\":{\"code\":%d,\"message\":\"%s\"}}\n",
                                    id ? id : "null", code, message));
    st->responded = 1;
    return HTTP_BAD_REQUEST;
}
