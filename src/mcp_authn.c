#include "mcp_authn.h"

#include <apr_strings.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <string.h>

#include "bearer.h"
#include "challenge.h"
#include "json_util.h"
#include "mcp_shm.h"
#include "token_cache.h"

APLOG_USE_MODULE(mcp_auth);


static void log_to_request(void *ctx, int level, const char *msg)
{
    request_rec *r = ctx;
    ap_log_rerror(APLOG_MARK, level, 0, r, "%s", msg);
}

/* scheme://host[:port] as the client addressed us (UseCanonicalName rules). */
static const char *public_origin(request_rec *r)
{
    return ap_construct_url(r->pool, "", r);
}

static const char *resource_uri(request_rec *r, const mcp_dir_conf_t *conf)
{
    if (conf->resource)
        return conf->resource;
    return apr_pstrcat(r->pool, public_origin(r), conf->location ? conf->location : "/", NULL);
}

/* RFC 9728 3.1: the well-known segment goes between the origin and the path. */
static const char *metadata_url(request_rec *r, const mcp_dir_conf_t *conf)
{
    const char *res = resource_uri(r, conf), *sep = strstr(res, "://");
    const char *path = sep ? strchr(sep + 3, '/') : NULL;
    const char *origin = path ? apr_pstrmemdup(r->pool, res, (apr_size_t)(path - res)) : res;
    if (!path || strcmp(path, "/") == 0)
        path = "";
    return apr_pstrcat(r->pool, origin, "/.well-known/oauth-protected-resource", path, NULL);
}

void mcp_set_challenge(request_rec *r, const mcp_dir_conf_t *conf)
{
    const mcp_fail_t *noted = ap_get_module_config(r->request_config, &mcp_auth_module);
    mcp_fail_t fail = {MCP_FAIL_NO_TOKEN, "No bearer token", NULL};
    mcp_challenge_t c;
    const char *h;

    if (noted)
        fail = *noted;
    c.realm = ap_auth_name(r);
    c.resource_metadata = metadata_url(r, conf);
    c.scope = NULL;
    h = mcp_challenge_header(r->pool, &fail, &c);
    if (h)
        apr_table_setn(r->err_headers_out, "WWW-Authenticate", h);
}

static int refuse(request_rec *r, const mcp_dir_conf_t *conf, const mcp_fail_t *fail)
{
    int status = mcp_fail_status(fail->kind);
    int level = fail->kind == MCP_FAIL_NO_TOKEN    ? APLOG_DEBUG
                : fail->kind == MCP_FAIL_UNAVAILABLE || fail->kind == MCP_FAIL_CONFIG ? APLOG_ERR
                                                                                      : APLOG_WARNING;
    mcp_fail_t *kept = apr_pmemdup(r->pool, fail, sizeof(*fail));

    ap_log_rerror(APLOG_MARK, level, 0, r, "%s%s%s (%s %s)", fail->reason, fail->detail ? ": " : "",
                  fail->detail ? fail->detail : "", r->method, mcp_printable(r->pool, r->uri, 256));
    ap_set_module_config(r->request_config, &mcp_auth_module, kept);
    if (status == HTTP_UNAUTHORIZED)
        ap_note_auth_failure(r); /* runs our note_auth_failure hook: the challenge */
    else
        mcp_set_challenge(r, conf);
    if (status == HTTP_SERVICE_UNAVAILABLE)
        apr_table_setn(r->err_headers_out, "Retry-After", "30");
    if (r->main)
        return status; /* a subrequest's refusal is the main request's to answer */

    /* Answer here with a JSON body: httpd's error pages would be HTML. */
    r->status = status;
    if (ap_discard_request_body(r) != OK)
        r->connection->keepalive = AP_CONN_CLOSE;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    ap_rputs(mcp_error_body(r->pool, fail), r);
    return DONE;
}

static const char *claim_as_user(apr_pool_t *p, const json_t *claims, const char *name)
{
    json_t *v = json_object_get(claims, name);
    if (!v || json_is_null(v))
        return NULL;
    if (json_is_string(v))
        return json_string_value(v);
    return mcp_json_compact(p, v);
}

/* r->user from MCPAuthRemoteUserClaim, then sub, client_id, username. */
static const char *user_name(apr_pool_t *p, const mcp_dir_conf_t *conf, const json_t *claims)
{
    static const char *const fallback[] = {"sub", "client_id", "username"};
    const char *u = conf->remote_user_claim ? claim_as_user(p, claims, conf->remote_user_claim) : NULL;
    int i;
    for (i = 0; !u && i < 3; i++)
        u = claim_as_user(p, claims, fallback[i]);
    return u ? u : "";
}

static void build_policy(request_rec *r, const mcp_dir_conf_t *conf, mcp_verify_policy_t *pol)
{
    static const char *const default_required[] = {"sub"};

    memset(pol, 0, sizeof(*pol));
    pol->issuers = conf->issuers ? (const mcp_trusted_issuer_t *)conf->issuers->elts : NULL;
    pol->n_issuers = conf->issuers ? conf->issuers->nelts : 0;
    pol->alg_mask = conf->alg_set ? conf->alg_mask : MCP_ALG_MASK_DEFAULT;
    pol->hmac_key = conf->hmac_key;
    pol->token_type = conf->token_type;
    pol->max_token_size = conf->max_token_size > 0 ? (size_t)conf->max_token_size : MCP_DEFAULT_MAX_TOKEN;
    pol->claims.skew = conf->skew >= 0 ? conf->skew : MCP_DEFAULT_SKEW;
    pol->claims.now = (long long)apr_time_sec(r->request_time);
    if (conf->required_claims) {
        pol->claims.required = (const char *const *)conf->required_claims->elts;
        pol->claims.n_required = conf->required_claims->nelts;
    }
    else {
        pol->claims.required = default_required;
        pol->claims.n_required = 1;
    }
    if (conf->audiences) {
        pol->claims.audiences = (const char *const *)conf->audiences->elts;
        pol->claims.n_audiences = conf->audiences->nelts;
    }
    else {
        const char **aud = apr_palloc(r->pool, sizeof(*aud));
        aud[0] = resource_uri(r, conf);
        pol->claims.audiences = aud;
        pol->claims.n_audiences = 1;
    }
}

/* The verified-token cache in front of mcp_verify_jwt: a hit costs a
 * SHA-256 and a copy; its time claims are checked again on every hit. */
static int verify_cached(request_rec *r, const mcp_verify_policy_t *pol, const char *token, size_t len,
                         const mcp_log_t *log, mcp_verified_t *v, mcp_fail_t *fail)
{
    mcp_store_t *store = mcp_shm_store();
    unsigned char key[32];
    int evicted;

    if (!store || mcp_global.token_ttl <= 0)
        return mcp_verify_jwt(r->pool, token, len, pol, log, v, fail);
    mcp_token_cache_key(mcp_policy_fingerprint(r->pool, pol), token, len, key);
    if (mcp_token_cache_get(store, key, r->request_time, r->pool, v) == 0 && v->issuer_index < pol->n_issuers) {
        if (mcp_claims_check(r->pool, v->claims, &pol->claims, fail) == 0) {
            ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "verified-token cache hit");
            return 0;
        }
        mcp_store_remove(store, key);
        return -1;
    }
    if (mcp_verify_jwt(r->pool, token, len, pol, log, v, fail))
        return -1;
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "signature verified (%s), verdict cached", mcp_alg_name(v->alg));
    if (mcp_token_cache_put(store, key, r->request_time, mcp_global.token_ttl, r->pool, v, &evicted) == 0 &&
        evicted)
        mcp_shm_note_eviction(r);
    return 0;
}

int mcp_is_preflight(request_rec *r, const mcp_dir_conf_t *conf)
{
    return r->method_number == M_OPTIONS && !apr_table_get(r->headers_in, "Authorization") &&
           !(conf->token_header && apr_table_get(r->headers_in, conf->token_header));
}

int mcp_authenticate(request_rec *r, const mcp_dir_conf_t *conf)
{
    mcp_log_t log = {log_to_request, r};
    mcp_verify_policy_t pol;
    mcp_verified_t v;
    mcp_fail_t fail;
    const char *token;
    size_t len;

    if (mcp_bearer_extract(apr_table_get(r->headers_in, "Authorization"),
                           conf->token_header ? apr_table_get(r->headers_in, conf->token_header) : NULL, &token,
                           &len, &fail))
        return refuse(r, conf, &fail);
    build_policy(r, conf, &pol);
    /* Not a compact JWS: an opaque token, for which introspection is needed. */
    if (mcp_compact_parts(token, len) != 3 && mcp_compact_parts(token, len) != 5) {
        mcp_fail(&fail, MCP_FAIL_INVALID_TOKEN, "Malformed token",
                 "not a JWT and no introspection endpoint is configured");
        return refuse(r, conf, &fail);
    }
    if (verify_cached(r, &pol, token, len, &log, &v, &fail))
        return refuse(r, conf, &fail);

    r->user = apr_pstrdup(r->pool, user_name(r->pool, conf, v.claims));
    r->ap_auth_type = (char *)MCP_AUTH_TYPE;
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "token accepted: iss %s, user %s, alg %s",
                  mcp_printable(r->pool, pol.issuers[v.issuer_index].issuer, 256),
                  mcp_printable(r->pool, r->user, 128), mcp_alg_name(v.alg));
    return OK;
}
