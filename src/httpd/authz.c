/* SPDX-License-Identifier: Apache-2.0 */
#include "authz.h"

#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_uri.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_auth.h>
#include <string.h>

#include "challenge.h"
#include "scopes.h"
#include "refusal.h"
#include "request.h"

APLOG_USE_MODULE(mcp_auth);

typedef struct {
    const char *path; /* mcp-claim only */
    const char **values;
    int n;
    int negated; /* under `Require not` or <RequireNone>: refuses by granting */
} require_args;

/* Whether the Require line being parsed grants by refusing: `Require not
 * ...`, or inside an odd number of <RequireNone> sections. Such a rule never
 * names a scope the request needs. cmd->directive is the Require line itself
 * (mod_authz_core calls the parser while that line is being processed). */
static int negated_rule(cmd_parms *cmd)
{
    const ap_directive_t *d = cmd->directive;
    int n = 0;

    if (d && d->args) {
        const char *args = d->args;
        if (strcasecmp(ap_getword_conf(cmd->pool, &args), "not") == 0)
            n++;
    }
    for (d = d ? d->parent : NULL; d; d = d->parent)
        if (d->directive && strcasecmp(d->directive, "<RequireNone") == 0)
            n++;
    return n % 2;
}

/* A rule that needs offline_access: challenges never ask for it (MCP
 * 2026-07-28), so a client cannot learn it must; said once at startup. */
static void warn_offline_access(cmd_parms *cmd, const require_args *a)
{
    int i;
    for (i = 0; i < a->n; i++)
        if (strcmp(a->values[i], "offline_access") == 0 && cmd->directive)
            mcp_cmd_note_warning(cmd,
                                 apr_psprintf(cmd->temp_pool,
                                              "Require mcp-scope offline_access (%s:%d): " MCP_OFFLINE_ACCESS_UNASKED,
                                              cmd->directive->filename, cmd->directive->line_num));
}

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
    a->negated = negated_rule(cmd);
    if (!with_path && !a->negated)
        warn_offline_access(cmd, a);
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
    return mcp_request_verified(*st) ? AUTHZ_GRANTED : AUTHZ_DENIED;
}

static authz_status check_scope(request_rec *r, const char *line, const void *parsed)
{
    const require_args *a = parsed;
    mcp_request_t *st = NULL;
    authz_status s = token_state(r, &st);
    int i, lacking = 0;
    (void)line;

    if (s == AUTHZ_DENIED_NO_USER && !a->negated) {
        /* mod_authz_core's pass before authentication reaches every rule
         * that a user could satisfy (RequireAll goes on past it, a rule
         * for other methods or under RequireNone is not asked): what the
         * no-token challenge asks for is exactly what these rules name. */
        mcp_request_t *hint = mcp_request(r);
        if (!hint->hint)
            hint->hint = apr_array_make(r->pool, a->n, sizeof(const char *));
        for (i = 0; i < a->n; i++)
            mcp_scope_add(hint->hint, a->values[i]);
    }
    if (s != AUTHZ_GRANTED)
        return s;
    for (i = 0; i < a->n; i++)
        if (!mcp_scope_has(st->granted, a->values[i])) {
            /* Remembered for the challenge; it is only sent if the whole
             * Require tree refuses (a RequireAny sibling may still grant).
             * A negated rule's scopes are what the token must NOT carry:
             * asking the client to obtain them would be nonsense. */
            if (!a->negated)
                mcp_scope_add(st->missing, a->values[i]);
            lacking = 1;
        }
    /* A negated rule refuses when it grants. */
    if (a->negated ? !lacking : lacking)
        mcp_refusal_by_rule(r, st);
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
    if (mcp_claim_matches(mcp_claim_path(mcp_request_claims(r, st), a->path), a->values, a->n)) {
        if (a->negated)
            mcp_refusal_by_rule(r, st);
        return AUTHZ_GRANTED;
    }
    if (!a->negated)
        mcp_refusal_by_rule(r, st);
    return AUTHZ_DENIED;
}

const authz_provider mcp_authz_scope_provider = {check_scope, parse_scope};
const authz_provider mcp_authz_claim_provider = {check_claim, parse_claim};

/* ---- browsers: Origin and CORS preflights (SPEC section 3 step 2) ------- */

#define PREFLIGHT_NOTE "mcp_auth_preflight"

const char *mcp_origin_canonical(apr_pool_t *p, const char *origin, int allow_path)
{
    apr_uri_t u;
    char *scheme, *host, *c;
    const char *port = NULL;

    if (!origin || apr_uri_parse(p, origin, &u) != APR_SUCCESS || !u.scheme || !*u.scheme || !u.hostname ||
        !*u.hostname || u.user || u.password || u.query || u.fragment || (!allow_path && u.path && *u.path))
        return NULL;
    scheme = apr_pstrdup(p, u.scheme);
    host = apr_pstrdup(p, u.hostname);
    for (c = scheme; *c; c++)
        *c = (char)apr_tolower(*c);
    for (c = host; *c; c++)
        *c = (char)apr_tolower(*c);
    /* A default port is what a browser leaves out of Origin. */
    if (u.port_str && *u.port_str && u.port != apr_uri_port_of_scheme(scheme))
        port = apr_itoa(p, u.port);
    return apr_pstrcat(p, scheme, "://", strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
                       port ? ":" : "", port ? port : "", NULL);
}

static int count_origin(void *rec, const char *key, const char *value)
{
    (void)key;
    (void)value;
    ++*(int *)rec;
    return 1;
}

/* MCPAuthAllowedOrigins *: every page may call. */
static int any_origin(const mcp_dir_conf_t *conf)
{
    return conf->allowed_origins && strcmp(APR_ARRAY_IDX(conf->allowed_origins, 0, const char *), "*") == 0;
}

/* The request's Origin in canonical form if the location allows it; NULL
 * when it is not allowed (or not one well-formed origin). Two Origin
 * headers are never allowed: no browser sends them, and whichever one a
 * reader takes, another could take the other. */
static const char *allowed_origin(request_rec *r, const mcp_dir_conf_t *conf)
{
    const apr_array_header_t *list = conf->allowed_origins;
    const char *origin = apr_table_get(r->headers_in, "Origin"), *canon;
    int i, n = 0;

    apr_table_do(count_origin, &n, r->headers_in, "Origin", NULL);
    if (n != 1)
        return NULL;
    /* An opaque origin (sandboxed frame, file:) is "null": only * lets it
     * in -- listing it would let in every sandboxed page of the web. */
    if (any_origin(conf) && strcmp(origin, "null") == 0)
        return origin;
    if (!(canon = mcp_origin_canonical(r->pool, origin, 0)))
        return NULL;
    if (!list)
        return strcmp(canon, mcp_origin_canonical(r->pool, mcp_resource_uri(r, conf), 1)) == 0 ? canon : NULL;
    for (i = 0; i < list->nelts; i++) {
        const char *o = APR_ARRAY_IDX(list, i, const char *);
        if (strcmp(o, "*") == 0 || strcmp(o, canon) == 0)
            return canon;
    }
    return NULL;
}

int mcp_authz_check_origin(request_rec *r, const mcp_dir_conf_t *conf)
{
    if (!apr_table_get(r->headers_in, "Origin") || allowed_origin(r, conf))
        return DECLINED;
    return mcp_refuse_origin(r);
}

/* MCP 2026-07-28: a tool may have its client mirror arguments into
 * Mcp-Param-{Name} headers (x-mcp-header), names only the backend knows. A
 * preflight asking for such names is told they are allowed -- they are
 * forwarded unchanged, never checked here. Only well-formed names
 * (RFC 9110 token) are repeated. */
static const char *param_headers(request_rec *r)
{
    static const char tchar[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~";
    const char *asked = apr_table_get(r->headers_in, "Access-Control-Request-Headers");
    const char *out = NULL;
    char *list, *tok, *last, *end;

    if (!asked)
        return NULL;
    list = apr_pstrdup(r->pool, asked);
    for (tok = apr_strtok(list, ",", &last); tok; tok = apr_strtok(NULL, ",", &last)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        for (end = tok + strlen(tok); end > tok && (end[-1] == ' ' || end[-1] == '\t'); end--)
            ;
        *end = '\0';
        if (strncasecmp(tok, "mcp-param-", 10) == 0 && tok[10] && strspn(tok, tchar) == strlen(tok))
            out = out ? apr_pstrcat(r->pool, out, ", ", tok, NULL) : tok;
    }
    return out;
}

void mcp_authz_preflight_prepare(request_rec *r, const mcp_dir_conf_t *conf)
{
    const char *origin = allowed_origin(r, conf);
    const char *headers = "Authorization, Content-Type, Mcp-Session-Id, Mcp-Protocol-Version, Mcp-Method, Mcp-Name, "
                          "Last-Event-ID";
    const char *params = param_headers(r);

    /* Decided now, with this location's configuration: a later fixup
     * (FallbackResource) may swap the request's configuration. */
    apr_table_setn(r->notes, PREFLIGHT_NOTE, "1");
    if (origin)
        apr_table_set(r->headers_out, "Access-Control-Allow-Origin", apr_table_get(r->headers_in, "Origin"));
    apr_table_setn(r->headers_out, "Access-Control-Allow-Methods", "GET, POST, DELETE");
    if (conf->token_header)
        headers = apr_pstrcat(r->pool, headers, ", ", conf->token_header, NULL);
    if (params)
        headers = apr_pstrcat(r->pool, headers, ", ", params, NULL);
    apr_table_set(r->headers_out, "Access-Control-Allow-Headers", headers);
    apr_table_setn(r->headers_out, "Access-Control-Expose-Headers", "WWW-Authenticate, Mcp-Session-Id");
    apr_table_setn(r->headers_out, "Access-Control-Max-Age", "600");
    apr_table_mergen(r->headers_out, "Vary", "Origin");
    if (params)
        apr_table_mergen(r->headers_out, "Vary", "Access-Control-Request-Headers");
}

int mcp_authz_preflight_answer(request_rec *r)
{
    if (!apr_table_get(r->notes, PREFLIGHT_NOTE))
        return DECLINED;
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "CORS preflight answered (%s)", mcp_printable(r->pool, r->uri, 256));
    r->status = HTTP_NO_CONTENT;
    return OK;
}

/* ---- CORS on the module's own answers ----------------------------------- */

#define CORS_ERROR_FILTER MCP_CORS_ERROR_FILTER
#define ACAO "Access-Control-Allow-Origin"

const char *mcp_authz_cors_origin(request_rec *r, const mcp_dir_conf_t *conf, int public_doc)
{
    /* A public document for every page may say so; anything else names the
     * one origin that may read it, never "*" (a cache or a second origin
     * must not reuse the grant: Vary: Origin goes with it). */
    if (public_doc && any_origin(conf))
        return "*";
    if (!apr_table_get(r->headers_in, "Origin") || !allowed_origin(r, conf))
        return NULL;
    return apr_table_get(r->headers_in, "Origin");
}

/* Runs after mod_headers' `Header always` (AP_FTYPE_CONTENT_SET) and before
 * the HTTP header filter: an operator's own CORS headers win, and the
 * refusal never carries two Access-Control-Allow-Origin values (a browser
 * rejects that). */
apr_status_t mcp_authz_cors_error_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;

    if (!apr_table_get(r->headers_out, ACAO) && !apr_table_get(r->err_headers_out, ACAO)) {
        apr_table_setn(r->headers_out, ACAO, f->ctx);
        /* A browser client reads the challenge (resource_metadata, scope)
         * and when to come back only if they are exposed. */
        if (!apr_table_get(r->headers_out, "Access-Control-Expose-Headers") &&
            !apr_table_get(r->err_headers_out, "Access-Control-Expose-Headers"))
            apr_table_setn(r->headers_out, "Access-Control-Expose-Headers", "WWW-Authenticate, Retry-After");
    }
    apr_table_mergen(r->headers_out, "Vary", "Origin");
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

void mcp_authz_cors_error(request_rec *r, const mcp_dir_conf_t *conf)
{
    const char *origin;

    /* A subrequest's error is not what the client gets. */
    if (r->main || !(origin = mcp_authz_cors_origin(r, conf, 0)))
        return;
    ap_add_output_filter(CORS_ERROR_FILTER, (void *)origin, r, r->connection);
}
