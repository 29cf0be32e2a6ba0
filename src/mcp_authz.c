#include "mcp_authz.h"

#include <apr_strings.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_auth.h>
#include <string.h>

#include "challenge.h"
#include "claims.h"
#include "mcp_request.h"

APLOG_USE_MODULE(mcp_auth);

#define JSON_ERROR_FILTER "MCP_AUTH_JSON_ERROR"

typedef struct {
    const char *path;            /* mcp-claim only */
    const char **values;
    int n;
} require_args;

/* Arguments are parsed once, at configuration time. */
static const char *parse_words(cmd_parms *cmd, const char *line, const void **parsed, int with_path)
{
    require_args *a = apr_pcalloc(cmd->pool, sizeof(*a));
    apr_array_header_t *words = apr_array_make(cmd->pool, 4, sizeof(const char *));
    const char *w;

    while (*(w = ap_getword_conf(cmd->pool, &line)))
        APR_ARRAY_PUSH(words, const char *) = w;
    if (with_path) {
        if (words->nelts < 2)
            return "Require mcp-claim needs a claim path and at least one value";
        a->path = APR_ARRAY_IDX(words, 0, const char *);
        a->values = (const char **)words->elts + 1;
        a->n = words->nelts - 1;
    }
    else {
        if (words->nelts < 1)
            return "Require mcp-scope needs at least one scope";
        a->values = (const char **)words->elts;
        a->n = words->nelts;
    }
    *parsed = a;
    return NULL;
}

static const char *parse_scope(cmd_parms *cmd, const char *line, const void **parsed)
{
    return parse_words(cmd, line, parsed, 0);
}

static const char *parse_claim(cmd_parms *cmd, const char *line, const void **parsed)
{
    return parse_words(cmd, line, parsed, 1);
}

/* The token's state, or why there is none. Before authentication (the
 * userless pass of mod_authz_core) there is no user yet. */
static authz_status token_state(request_rec *r, mcp_request_t **st)
{
    if (!r->user)
        return AUTHZ_DENIED_NO_USER;
    *st = mcp_request_peek(r);
    return *st && (*st)->verified ? AUTHZ_GRANTED : AUTHZ_DENIED;
}

static authz_status check_scope(request_rec *r, const char *line, const void *parsed)
{
    const require_args *a = parsed;
    mcp_request_t *st = NULL;
    authz_status s = token_state(r, &st);
    int i, lacking = 0;
    (void)line;

    if (s != AUTHZ_GRANTED)
        return s;
    for (i = 0; i < a->n; i++)
        if (!mcp_scope_has(st->granted, a->values[i])) {
            /* Remembered for the challenge; it is only sent if the whole
             * Require tree refuses (a RequireAny sibling may still grant). */
            mcp_scope_add(st->missing, a->values[i]);
            lacking = 1;
        }
    st->refused_by_rule |= lacking;
    return lacking ? AUTHZ_DENIED : AUTHZ_GRANTED;
}

static authz_status check_claim(request_rec *r, const char *line, const void *parsed)
{
    const require_args *a = parsed;
    mcp_request_t *st = NULL;
    authz_status s = token_state(r, &st);
    (void)line;

    if (s != AUTHZ_GRANTED)
        return s;
    if (mcp_claim_matches(mcp_claim_path(mcp_request_claims(r, st), a->path), a->values, a->n))
        return AUTHZ_GRANTED;
    st->refused_by_rule = 1;
    return AUTHZ_DENIED;
}

static const authz_provider scope_provider = {check_scope, parse_scope};
static const authz_provider claim_provider = {check_claim, parse_claim};

/* Error pages are HTML; ours is JSON. Runs before the HTTP header filter. */
static apr_status_t json_error_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    ap_set_content_type(f->r, "application/json");
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

void mcp_authz_register(apr_pool_t *p)
{
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "mcp-scope", AUTHZ_PROVIDER_VERSION, &scope_provider,
                              AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "mcp-claim", AUTHZ_PROVIDER_VERSION, &claim_provider,
                              AP_AUTH_INTERNAL_PER_CONF);
    ap_register_output_filter(JSON_ERROR_FILTER, json_error_filter, NULL, AP_FTYPE_RESOURCE);
}

void mcp_authz_note_failure(request_rec *r, const mcp_dir_conf_t *conf)
{
    mcp_request_t *st = mcp_request_peek(r);
    /* mod_authz_core calls this only when the whole Require tree refused. */
    if (st && st->verified && !st->has_fail)
        st->denied = 1;
    mcp_set_challenge(r, conf);
}

void mcp_authz_error_response(request_rec *r, const mcp_dir_conf_t *conf)
{
    mcp_request_t *st = mcp_request_peek(r);
    mcp_fail_t fail = {MCP_FAIL_INSUFFICIENT_SCOPE, "Insufficient scope", NULL};
    int status = r->status;

    if (st && st->responded) {
        ap_add_output_filter(JSON_ERROR_FILTER, NULL, r, r->connection);
        return;
    }
    if (!st || !st->verified || st->has_fail)
        return;
    /* 401 after note_auth_failure: a valid token was refused by Require.
     * 403 (AuthzSendForbiddenOnFailure On): one of our rules refused it. */
    if (!((status == HTTP_UNAUTHORIZED && st->denied) || (status == HTTP_FORBIDDEN && st->refused_by_rule)))
        return;
    st->denied = 1;
    st->responded = 1;
    r->status = HTTP_FORBIDDEN;
    r->status_line = NULL;
    mcp_set_challenge(r, conf);
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    /* The error page text for the status the error was raised with. */
    ap_custom_response(r, status, mcp_error_body(r->pool, &fail));
    ap_add_output_filter(JSON_ERROR_FILTER, NULL, r, r->connection);
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "Insufficient scope: user %s, missing %s (%s %s)",
                  mcp_printable(r->pool, r->user, 128),
                  st->missing->nelts ? mcp_printable(r->pool, mcp_scope_join(r->pool, st->missing), 256)
                                     : "(a Require rule refused the token)",
                  r->method, mcp_printable(r->pool, r->uri, 256));
}
