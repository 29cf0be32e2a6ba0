/* SPDX-License-Identifier: Apache-2.0 */
#include "identity.h"

#include <apr_strings.h>
#include <http_log.h>
#include <http_main.h>
#include <string.h>

#include "scopes.h"
#include "json_util.h"
#include "propagate.h"
#include "refusal.h"
#include "request.h"

APLOG_USE_MODULE(mcp_auth);

/* Appends the name field (at offset) of each element of more. */
static void add_names(apr_array_header_t *names, const apr_array_header_t *more, size_t offset)
{
    int i;
    for (i = 0; more && i < more->nelts; i++) {
        const char *elt = more->elts + (size_t)i * (size_t)more->elt_size;
        APR_ARRAY_PUSH(names, const char *) = *(const char *const *)(elt + offset);
    }
}

/* Every identity header name of the virtual host goes from table t, not
 * just this section's: a sibling or parent section's header must not
 * arrive spoofed where this one forwards the request. The merged list adds
 * names that came from .htaccess (never recorded server-wide). */
static void scrub_table(request_rec *r, const mcp_dir_conf_t *conf, apr_table_t *t)
{
    const apr_array_header_t *vhost = mcp_identity_header_names(r->server);
    const apr_array_header_t *main_srv = r->server != ap_server_conf ? mcp_identity_header_names(ap_server_conf) : NULL;
    apr_array_header_t *names;

    if (!vhost && !main_srv && !conf->claim_headers)
        return; /* most requests of a server without identity headers */
    names = apr_array_make(r->pool, 8, sizeof(const char *));
    add_names(names, vhost, 0);
    add_names(names, main_srv, 0);
    add_names(names, conf->claim_headers, APR_OFFSETOF(mcp_claim_export_t, name));
    if (names->nelts)
        mcp_scrub_headers(r->pool, t, (const char *const *)names->elts, names->nelts);
}

void mcp_identity_scrub(request_rec *r, const mcp_dir_conf_t *conf)
{
    scrub_table(r, conf, r->headers_in);
}

/* Linux refuses to exec a program with one environment string
 * ("NAME=value" and its NUL) over MAX_ARG_STRLEN, 32 pages: a CGI would
 * fail (E2BIG) for every request of that token. */
#define MCP_ENV_STRING_MAX (32 * 4096)

/* A variable for the backend's environment, left out (with a log line
 * naming it, never its value) when no exec could carry it: the other
 * variables still reach the CGI. value lives in the request's pool (or
 * longer) and is never changed: the table keeps the pointer, no copy. */
static void set_env(request_rec *r, apr_table_t *env, const char *name, const char *value)
{
    size_t len;

    if (!value)
        return;
    len = strlen(name) + 1 + strlen(value) + 1;
    if (len > MCP_ENV_STRING_MAX) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "%s not set: %" APR_SIZE_T_FMT " bytes, over the %d-byte limit of one environment variable "
                      "(a CGI could not be started with it)",
                      name, len, MCP_ENV_STRING_MAX);
        apr_table_unset(env, name);
        return;
    }
    apr_table_setn(env, name, value);
}

/* One claim into a table; a value with control characters is never set. */
static void export_claim(request_rec *r, apr_table_t *t, const char *what, const char *name, const json_t *claims,
                         const char *expr)
{
    int unsafe;
    const char *text = mcp_claim_text(r->pool, mcp_claim_path(claims, expr), &unsafe);
    if (unsafe)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "Claim %s holds control characters: %s %s not set (header injection refused)",
                      mcp_printable(r->pool, expr, 64), what, name);
    if (text && t == r->subprocess_env)
        set_env(r, t, name, text);
    else if (text)
        apr_table_set(t, name, text);
}

static void export_headers(request_rec *r, const mcp_dir_conf_t *conf, mcp_request_t *st)
{
    int i;
    for (i = 0; conf->claim_headers && i < conf->claim_headers->nelts; i++) {
        const mcp_claim_export_t *ex = &APR_ARRAY_IDX(conf->claim_headers, i, mcp_claim_export_t);
        export_claim(r, r->headers_in, "header", ex->name, mcp_request_claims(r, st), ex->expr);
    }
}

void mcp_identity_export(request_rec *r, const mcp_dir_conf_t *conf, const char *token, size_t len)
{
    mcp_request_t *st = mcp_request(r);
    const mcp_verdict_t *v = st->verdict;
    apr_table_t *env = r->subprocess_env;
    int i;

    /* The fixed set comes ready-made from the verdict: no JSON on a hit. */
    set_env(r, env, "REMOTE_USER", r->user);
    apr_table_setn(env, "AUTH_TYPE", MCP_AUTH_TYPE);
    if (v->sub)
        set_env(r, env, "MCP_AUTH_SUB", v->sub);
    if (v->iss)
        set_env(r, env, "MCP_AUTH_ISS", v->iss);
    set_env(r, env, "MCP_AUTH_SCOPE", v->scope);
    set_env(r, env, "MCP_AUTH_CLAIMS", v->claims);
    for (i = 0; conf->claim_envs && i < conf->claim_envs->nelts; i++) {
        const mcp_claim_export_t *ex = &APR_ARRAY_IDX(conf->claim_envs, i, mcp_claim_export_t);
        export_claim(r, env, "variable", ex->name, mcp_request_claims(r, st), ex->expr);
    }
    export_headers(r, conf, st);
    if (mcp_conf_pass_token(conf))
        set_env(r, env, "MCP_AUTH_TOKEN", apr_pstrmemdup(r->pool, token, len));
}

void mcp_identity_forward(request_rec *r, const mcp_dir_conf_t *conf)
{
    if (mcp_conf_forward_token(conf))
        return;
    apr_table_unset(r->headers_in, "Authorization");
    if (conf->token_header)
        apr_table_unset(r->headers_in, conf->token_header);
}

void mcp_identity_after_body(request_rec *r, const mcp_dir_conf_t *conf, apr_table_t *authorized)
{
    mcp_request_t *st = mcp_request_peek(r);
    apr_table_t *merged = r->headers_in;

    /* MergeTrailers On replaced headers_in by headers + trailers while the
     * body was read. The backend gets the headers that were authorized:
     * a trailer can add no Authorization, Mcp-Method or identity header. */
    r->headers_in = authorized;
    if (merged != authorized)
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "chunked trailers not merged into the request headers");
    /* The trailers themselves, for handlers that read r->trailers_in. */
    if (r->trailers_in)
        scrub_table(r, conf, r->trailers_in);
    mcp_identity_scrub(r, conf);
    /* Last: nothing read after this point can replace them. */
    if (mcp_request_verified(st))
        export_headers(r, conf, st);
}

void mcp_identity_redirected(request_rec *r, const mcp_dir_conf_t *conf)
{
    request_rec *p;
    mcp_request_t *from = NULL, *st;
    const char *token;

    if (!r->prev || !r->user || mcp_request_peek(r))
        return;
    for (p = r->prev; p && !(from = mcp_request_peek(p)); p = p->prev)
        ;
    if (!p || !mcp_request_verified(from))
        return;
    /* The token's state, not the earlier request's refusals or body. */
    st = apr_pmemdup(r->pool, from, sizeof(*st));
    st->missing = apr_array_make(r->pool, 2, sizeof(const char *));
    mcp_state_redirected(st);
    st->kept_body = NULL;
    ap_set_module_config(r->request_config, &mcp_auth_module, st);
    token = apr_table_get(p->subprocess_env, "MCP_AUTH_TOKEN");
    mcp_identity_export(r, conf, token ? token : "", token ? strlen(token) : 0);
}
