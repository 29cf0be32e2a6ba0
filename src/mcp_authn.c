#include "mcp_authn.h"

#include <apr_strings.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <string.h>

#include "bearer.h"
#include "claims.h"
#include "json_util.h"
#include "l1_cache.h"
#include "mcp_identity.h"
#include "mcp_request.h"
#include "mcp_shm.h"
#include "token_cache.h"

APLOG_USE_MODULE(mcp_auth);

static void log_to_request(void *ctx, int level, const char *msg)
{
    request_rec *r = ctx;
    ap_log_rerror(APLOG_MARK, level, 0, r, "%s", msg);
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
        if (pol->claims.n_audiences == 1 && strcmp(pol->claims.audiences[0], "*") == 0)
            pol->claims.n_audiences = 0; /* MCPAuthAudience *: not checked */
    }
    else {
        const char **aud = apr_palloc(r->pool, sizeof(*aud));
        aud[0] = mcp_resource_uri(r, conf);
        pol->claims.audiences = aud;
        pol->claims.n_audiences = 1;
    }
}

/* Names the rules a verdict was reached under, cheaply: the configuration
 * objects themselves (stable for the life of this process) plus the
 * request-derived resource when it is the audience. */
typedef struct {
    const void *issuers, *audiences, *required, *hmac, *typ, *user_claim, *scope_claim;
    unsigned alg_mask;
    long max_token_size;
} l1_rules;

static const void *l1_context(request_rec *r, const mcp_dir_conf_t *conf, const mcp_verify_policy_t *pol,
                              size_t *len)
{
    l1_rules k;
    const char *resource = conf->audiences ? "" : pol->claims.audiences[0];
    size_t rlen = strlen(resource);
    char *buf = apr_palloc(r->pool, sizeof(k) + rlen);

    memset(&k, 0, sizeof(k));
    k.issuers = conf->issuers;
    k.audiences = conf->audiences;
    k.required = conf->required_claims;
    k.hmac = conf->hmac_key;
    k.typ = conf->token_type;
    k.user_claim = conf->remote_user_claim;
    k.scope_claim = conf->scope_claim;
    k.alg_mask = pol->alg_mask;
    k.max_token_size = (long)pol->max_token_size;
    memcpy(buf, &k, sizeof(k));
    memcpy(buf + sizeof(k), resource, rlen);
    *len = sizeof(k) + rlen;
    return buf;
}

/* The JWKS document a verdict depends on (-1: an HMAC secret). */
static int key_doc_of(const mcp_verify_policy_t *pol, const mcp_verdict_t *v)
{
    const mcp_trusted_issuer_t *ti = &pol->issuers[v->issuer_index];
    return mcp_alg_kty(v->alg) == MCP_KTY_OCT || !ti->ring ? -1 : mcp_keyring_jwks_doc(ti->ring);
}

static apr_time_t keep_until(const mcp_verdict_t *v, apr_time_t now)
{
    apr_time_t until = now + mcp_global.token_ttl;
    if (v->has_exp && v->exp * APR_USEC_PER_SEC < (double)until)
        until = (apr_time_t)(v->exp * APR_USEC_PER_SEC);
    return until;
}

/* Verification behind two caches: this process's (whole token compared,
 * no hashing, no global lock) and the shared one (SHA-256 key). Every hit
 * re-checks the time claims. */
static int verify_cached(request_rec *r, const mcp_dir_conf_t *conf, const mcp_verify_policy_t *pol,
                         const char *token, size_t len, const mcp_log_t *log, mcp_verdict_t *verdict,
                         json_t **claims, mcp_fail_t *fail)
{
    mcp_store_t *store = mcp_shm_store();
    unsigned char key[32];
    mcp_verified_t v;
    const void *ctx = NULL;
    size_t ctx_len = 0;
    int evicted, doc, use_cache = store && mcp_global.token_ttl > 0;

    *claims = NULL;
    if (use_cache) {
        const char *extra;
        ctx = l1_context(r, conf, pol, &ctx_len);
        if (mcp_l1_get(mcp_shm_l1(), ctx, ctx_len, token, len, r->request_time, store, r->pool, verdict) == 0 &&
            verdict->issuer_index < pol->n_issuers) {
            ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "verified-token cache hit (this process)");
            return mcp_verdict_time_check(r->pool, verdict, pol->claims.now, pol->claims.skew, 0, fail);
        }
        extra = apr_pstrcat(r->pool, "user=", conf->remote_user_claim ? conf->remote_user_claim : "",
                            " scopes=", conf->scope_claim ? conf->scope_claim : "", NULL);
        mcp_token_cache_key(mcp_policy_fingerprint(r->pool, pol, extra), token, len, key);
        if (mcp_token_cache_get(store, key, r->request_time, r->pool, verdict) == 0 &&
            verdict->issuer_index < pol->n_issuers) {
            if (mcp_verdict_time_check(r->pool, verdict, pol->claims.now, pol->claims.skew, 0, fail) == 0) {
                ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "verified-token cache hit");
                doc = key_doc_of(pol, verdict);
                mcp_l1_put(mcp_shm_l1(), ctx, ctx_len, token, len, keep_until(verdict, r->request_time), doc,
                           doc < 0 ? 0 : mcp_store_doc_generation(store, doc), verdict);
                return 0;
            }
            mcp_store_remove(store, key);
            return -1;
        }
    }
    if (mcp_verify_jwt(r->pool, token, len, pol, log, &v, fail))
        return -1;
    if (mcp_verdict_from_claims(r->pool, v.claims, v.issuer_index, v.alg, conf->remote_user_claim,
                                conf->scope_claim, verdict))
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Malformed token", "claims cannot be serialized");
    *claims = v.claims;
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "signature verified (%s)%s", mcp_alg_name(v.alg),
                  use_cache ? ", verdict cached" : "");
    if (use_cache) {
        if (mcp_token_cache_put(store, key, r->request_time, mcp_global.token_ttl, r->pool, verdict, v.key_doc,
                                v.key_generation, &evicted) == 0 &&
            evicted)
            mcp_shm_note_eviction(r);
        mcp_l1_put(mcp_shm_l1(), ctx, ctx_len, token, len, keep_until(verdict, r->request_time), v.key_doc,
                   v.key_generation, verdict);
    }
    return 0;
}

/* A browser's CORS preflight (Fetch standard): OPTIONS with Origin and
 * Access-Control-Request-Method, and never credentials. Any other OPTIONS
 * is a request like the rest. */
int mcp_is_preflight(request_rec *r, const mcp_dir_conf_t *conf)
{
    return r->method_number == M_OPTIONS && apr_table_get(r->headers_in, "Origin") &&
           apr_table_get(r->headers_in, "Access-Control-Request-Method") &&
           !apr_table_get(r->headers_in, "Authorization") &&
           !(conf->token_header && apr_table_get(r->headers_in, conf->token_header));
}

/* Both paths end here: the request now has a user and an identity. */
static int accept_token(request_rec *r, const mcp_dir_conf_t *conf, const mcp_verdict_t *verdict, json_t *claims,
                        const char *token, size_t len, const char *how)
{
    mcp_request_t *st = mcp_request(r);
    st->verified = 1;
    st->verdict = verdict;
    st->claims = claims;
    st->granted = mcp_scope_split(r->pool, verdict->scope);
    r->user = apr_pstrdup(r->pool, verdict->user);
    r->ap_auth_type = (char *)MCP_AUTH_TYPE;
    mcp_identity_export(r, conf, token, len);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "token accepted (%s): user %s", how,
                  mcp_printable(r->pool, r->user, 128));
    return OK;
}

/* The introspection endpoint: configured, from the issuer's option, or
 * from the issuer's discovery document. */
static const char *introspection_url(request_rec *r, const mcp_dir_conf_t *conf, const mcp_log_t *log)
{
    int i;
    if (conf->introspection->url)
        return conf->introspection->url;
    for (i = 0; conf->issuers && i < conf->issuers->nelts; i++) {
        const mcp_trusted_issuer_t *ti = &APR_ARRAY_IDX(conf->issuers, i, mcp_trusted_issuer_t);
        const char *url = ti->introspection_endpoint;
        if (!url && ti->ring)
            url = mcp_keyring_discovered(ti->ring, r->pool, log, "introspection_endpoint");
        if (url && (strncasecmp(url, "https://", 8) == 0 || strncasecmp(url, "http://", 7) == 0))
            return url;
    }
    return NULL;
}

/* How long an introspection answer stays in a child's own cache. */
#define INTROSPECTION_L1_TTL apr_time_from_msec(250)

/* Opaque tokens (not a compact JWS): RFC 7662 introspection. */
static int authenticate_opaque(request_rec *r, const mcp_dir_conf_t *conf, mcp_verify_policy_t *pol,
                               const char *token, size_t len, const mcp_log_t *log)
{
    const char *url, *ctx = NULL;
    size_t ctx_len = 0;
    json_t *result;
    mcp_verdict_t *verdict;
    mcp_fail_t fail;
    int idx;

    url = introspection_url(r, conf, log);
    if (!url) {
        mcp_fail(&fail, MCP_FAIL_UNAVAILABLE, "Introspection failed",
                 "no introspection endpoint configured or discovered");
        return mcp_respond(r, conf, &fail);
    }
    verdict = apr_palloc(r->pool, sizeof(*verdict));
    if (conf->introspection->cache > 0) {
        /* This process's cache first, for a fraction of a second only: the
         * shared answer decides how long a revoked token can live. */
        /* The rules (binary, NULs included) followed by the endpoint. */
        const void *rules = l1_context(r, conf, pol, &ctx_len);
        size_t ulen = strlen(url);
        char *buf = apr_palloc(r->pool, ctx_len + ulen);
        memcpy(buf, rules, ctx_len);
        memcpy(buf + ctx_len, url, ulen);
        ctx = buf;
        ctx_len += ulen;
        if (mcp_l1_get(mcp_shm_l1(), ctx, ctx_len, token, len, r->request_time, NULL, r->pool, verdict) == 0) {
            if (mcp_verdict_time_check(r->pool, verdict, pol->claims.now, pol->claims.skew, 1, &fail))
                return mcp_respond(r, conf, &fail);
            return accept_token(r, conf, verdict, NULL, token, len, "introspection, cached");
        }
    }
    if (mcp_introspect(r->pool, mcp_shm_store(), conf->introspection, url, &mcp_global.fetch.http, token, len, log,
                       &result, &fail))
        return mcp_respond(r, conf, &fail);
    /* Nothing beyond "active" is required unless the location says so. */
    if (!conf->required_claims)
        pol->claims.n_required = 0;
    if (mcp_introspect_check(r->pool, result, pol, &idx, &fail))
        return mcp_respond(r, conf, &fail);
    if (mcp_verdict_from_claims(r->pool, result, idx < 0 ? 0 : idx, MCP_ALG_UNKNOWN, conf->remote_user_claim,
                                conf->scope_claim, verdict)) {
        mcp_fail(&fail, MCP_FAIL_UNAVAILABLE, "Introspection failed", "the answer cannot be serialized");
        return mcp_respond(r, conf, &fail);
    }
    if (ctx) {
        apr_time_t until = r->request_time + (conf->introspection->cache < INTROSPECTION_L1_TTL
                                                   ? conf->introspection->cache
                                                   : INTROSPECTION_L1_TTL);
        if (verdict->has_exp && verdict->exp * APR_USEC_PER_SEC < (double)until)
            until = (apr_time_t)(verdict->exp * APR_USEC_PER_SEC);
        mcp_l1_put(mcp_shm_l1(), ctx, ctx_len, token, len, until, -1, 0, verdict);
    }
    return accept_token(r, conf, verdict, result, token, len, "introspection");
}

int mcp_authenticate(request_rec *r, const mcp_dir_conf_t *conf)
{
    mcp_log_t log = {log_to_request, r};
    mcp_verify_policy_t pol;
    mcp_verdict_t *verdict = apr_palloc(r->pool, sizeof(*verdict));
    json_t *claims;
    mcp_fail_t fail;
    const char *token;
    size_t len;
    int parts;

    if (mcp_bearer_extract(apr_table_get(r->headers_in, "Authorization"),
                           conf->token_header ? apr_table_get(r->headers_in, conf->token_header) : NULL, &token,
                           &len, &fail))
        return mcp_respond(r, conf, &fail);
    build_policy(r, conf, &pol);
    if (len > pol.max_token_size) {
        mcp_fail(&fail, MCP_FAIL_INVALID_TOKEN, "Token too large",
                 apr_psprintf(r->pool, "%lu bytes, limit %lu", (unsigned long)len, (unsigned long)pol.max_token_size));
        return mcp_respond(r, conf, &fail);
    }
    /* The token's shape decides: a compact JWS is verified here, anything
     * else but a JWE is an opaque token for the introspection endpoint. */
    parts = mcp_compact_parts(token, len);
    if (parts != 3 && parts != 5) {
        if (conf->introspection)
            return authenticate_opaque(r, conf, &pol, token, len, &log);
        mcp_fail(&fail, MCP_FAIL_INVALID_TOKEN, "Malformed token",
                 "not a JWT and no introspection endpoint is configured");
        return mcp_respond(r, conf, &fail);
    }
    if (verify_cached(r, conf, &pol, token, len, &log, verdict, &claims, &fail))
        return mcp_respond(r, conf, &fail);
    return accept_token(r, conf, verdict, claims, token, len, mcp_alg_name(verdict->alg));
}
