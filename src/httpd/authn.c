/* SPDX-License-Identifier: Apache-2.0 */
#include "authn.h"
#include "metrics.h"

#include <apr_strings.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <string.h>

#include "bearer.h"
#include "discovery.h"
#include "scopes.h"
#include "http_fetch.h"
#include "json_util.h"
#include "l1_cache.h"
#include "identity.h"
#include "refusal.h"
#include "request.h"
#include "shared_cache.h"
#include "shm.h"
#include "token_cache.h"

APLOG_USE_MODULE(mcp_auth);

/* The engine's file and line, not this callback's: ErrorLogFormat %F. */
static void log_to_request(void *ctx, const char *file, int line, int level, const char *msg)
{
    request_rec *r = ctx;
    ap_log_rerror(file, line, APLOG_MODULE_INDEX, level, 0, r, "%s", msg);
}

static void build_policy(request_rec *r, const mcp_dir_conf_t *conf, mcp_verify_policy_t *pol)
{
    memset(pol, 0, sizeof(*pol));
    pol->issuers = conf->issuers ? (const mcp_trusted_issuer_t *)conf->issuers->elts : NULL;
    pol->n_issuers = conf->issuers ? conf->issuers->nelts : 0;
    pol->alg_mask = mcp_conf_alg_mask(conf);
    pol->hmac_key = conf->hmac_key;
    pol->token_type = conf->token_type;
    pol->max_token_size = mcp_conf_max_token_size(conf);
    pol->claims.skew = mcp_conf_skew(conf);
    pol->claims.now = (long long)apr_time_sec(r->request_time);
    pol->claims.required = mcp_conf_required_claims(conf, 0, &pol->claims.n_required);
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

/* What the memo knows a configuration by: the policy as build_policy made
 * it, whose pointers lead to objects that stay unchanged for the whole
 * configuration generation (the generation is part of the key), minus the
 * request time; the default audience, built per request, by its text. */
typedef struct {
    int generation;
    mcp_verify_policy_t verify;
    const char *user_claim, *scope_claim;
    const mcp_introspect_conf_t *introspection;
} memo_key;

/* The location's policy fingerprint, which names the rules a verdict was
 * reached under in both cache levels: computed from content (never from
 * addresses of configuration objects, which .htaccess rebuilds per
 * request) -- one SHA-256 over a few hundred bytes, remembered per
 * configuration in this process unless .htaccess took part in it. */
static void policy_fingerprint(request_rec *r, const mcp_dir_conf_t *conf, const mcp_verify_policy_t *pol,
                               unsigned char fp[MCP_FINGERPRINT_LEN])
{
    mcp_cache_policy_t cp;
    memo_key *k = NULL;
    size_t klen = 0;

    cp.verify = pol;
    cp.user_claim = conf->remote_user_claim;
    cp.scope_claim = conf->scope_claim;
    cp.introspection = conf->introspection;
    if (!conf->from_htaccess) {
        const char *resource = conf->audiences ? "" : pol->claims.audiences[0];
        size_t rlen = strlen(resource);
        klen = sizeof(*k) + rlen;
        k = apr_pcalloc(r->pool, klen); /* padding included: compared byte for byte */
        k->generation = ap_state_query(AP_SQ_CONFIG_GEN);
        memcpy(&k->verify, pol, sizeof(*pol)); /* build_policy zeroed its padding */
        k->verify.claims.now = 0;
        if (!conf->audiences)
            k->verify.claims.audiences = NULL;
        k->user_claim = cp.user_claim;
        k->scope_claim = cp.scope_claim;
        k->introspection = cp.introspection;
        memcpy((char *)k + sizeof(*k), resource, rlen);
        if (mcp_policy_memo_get(mcp_shm_policy_memo(), k, klen, fp) == 0)
            return;
    }
    mcp_policy_fingerprint(r->pool, &cp, fp);
    if (k)
        mcp_policy_memo_put(mcp_shm_policy_memo(), k, klen, fp);
}

static apr_time_t keep_until(const mcp_verdict_t *v, apr_time_t now)
{
    return mcp_verdict_keep_until(v, now + mcp_srv_conf_main()->token_ttl);
}

/* How long a child remembers a lasting refusal (verifier.h): never past
 * a key change (the copy depends on the JWKS generation it was checked
 * against), and short, since only a token sent again and again gains. */
#define REFUSAL_TTL apr_time_from_sec(60)

/* A refusal kept in this process's cache: issuer_index -1 marks it, its
 * fixed reason text rides in .claims. */
static void remember_refusal(const unsigned char *fp, const char *token, size_t len, const mcp_verified_t *v,
                             const mcp_fail_t *fail, apr_time_t now)
{
    mcp_verdict_t refused;
    mcp_l1_deps_t deps = {now + REFUSAL_TTL, v->key_doc, v->key_generation, 0, 0};
    memset(&refused, 0, sizeof(refused));
    refused.issuer_index = -1;
    refused.user = refused.scope = "";
    refused.claims = fail->reason;
    mcp_l1_put(mcp_shm_l1(), fp, MCP_FINGERPRINT_LEN, token, len, &deps, &refused);
}

/* Verification behind two caches: this process's (fingerprint and whole
 * token compared, no hashing of the token, no global lock) and the shared
 * one (SHA-256 of fingerprint and token). Every hit re-checks the time
 * claims. */
static int verify_cached(request_rec *r, const mcp_dir_conf_t *conf, const mcp_verify_policy_t *pol, const char *token,
                         size_t len, const mcp_log_t *log, mcp_verdict_t *verdict, json_t **claims, mcp_fail_t *fail)
{
    mcp_store_t *store = mcp_shm_store();
    unsigned char fp[MCP_FINGERPRINT_LEN], key[32];
    mcp_verified_t v;
    mcp_entry_meta_t meta;
    mcp_l1_deps_t deps = {0, -1, 0, 0, 0};
    int evicted, use_cache = store && mcp_srv_conf(r->server)->token_ttl > 0;

    *claims = NULL;
    if (use_cache) {
        policy_fingerprint(r, conf, pol, fp);
        if (mcp_l1_get(mcp_shm_l1(), fp, sizeof(fp), token, len, r->request_time, store, r->pool, verdict) == 0) {
            mcp_metric_add(MCP_M_CACHE_L1_HIT, 1);
            if (verdict->issuer_index < 0)
                return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, verdict->claims,
                                "the same token was refused moments ago (remembered until the keys change)");
            if (verdict->issuer_index < pol->n_issuers) {
                ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "verified-token cache hit (this process)");
                return mcp_verdict_time_check(r->pool, verdict, pol->claims.now, pol->claims.skew, 0, fail);
            }
        }
        mcp_token_cache_key(fp, token, len, key);
        if (mcp_token_cache_get(store, key, r->request_time, r->pool, verdict, &meta) == 0 &&
            verdict->issuer_index < pol->n_issuers) {
            if (mcp_verdict_time_check(r->pool, verdict, pol->claims.now, pol->claims.skew, 0, fail) == 0) {
                ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "verified-token cache hit");
                mcp_metric_add(MCP_M_CACHE_SHM_HIT, 1);
                /* The copy carries what the shared entry was stored with
                 * (expiry, JWKS generation), read with it under one lock. */
                deps.expires = keep_until(verdict, r->request_time);
                if (meta.expires < deps.expires)
                    deps.expires = meta.expires;
                deps.dep_doc = meta.dep_doc;
                deps.dep_generation = meta.dep_generation;
                mcp_l1_put(mcp_shm_l1(), fp, sizeof(fp), token, len, &deps, verdict);
                return 0;
            }
            mcp_store_remove(store, key);
            return -1;
        }
    }
    if (use_cache)
        mcp_metric_add(MCP_M_CACHE_MISS, 1);
    if (mcp_verify_jwt(r->pool, token, len, pol, log, &v, fail)) {
        if (use_cache && v.refusal_lasts)
            remember_refusal(fp, token, len, &v, fail, r->request_time);
        return -1;
    }
    if (mcp_verdict_from_claims(r->pool, v.claims, v.issuer_index, v.alg, conf->remote_user_claim, conf->scope_claim,
                                verdict))
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Malformed token", "claims cannot be serialized");
    *claims = v.claims;
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "signature verified (%s)%s", mcp_alg_name(v.alg),
                  use_cache ? ", verdict cached" : "");
    if (use_cache) {
        if (mcp_token_cache_put(store, key, r->request_time, mcp_srv_conf(r->server)->token_ttl, r->pool, verdict,
                                v.key_doc, v.key_generation, &evicted) == 0 &&
            evicted)
            mcp_shm_note_eviction(r);
        deps.expires = keep_until(verdict, r->request_time);
        deps.dep_doc = v.key_doc;
        deps.dep_generation = v.key_generation;
        mcp_l1_put(mcp_shm_l1(), fp, sizeof(fp), token, len, &deps, verdict);
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

/* The token's scopes as the rules are written: with MCPAuthScopeRequestPrefix
 * a scope carrying the prefix (an IdP that puts the requestable form in the
 * token) also counts as its short form. */
static apr_array_header_t *granted_scopes(request_rec *r, const mcp_dir_conf_t *conf, const mcp_verdict_t *verdict)
{
    apr_array_header_t *set = mcp_scope_split(r->pool, verdict->scope);
    int i, n = set->nelts;
    for (i = 0; conf->scope_request_prefix && i < n; i++) {
        const char *sh = mcp_scope_short(APR_ARRAY_IDX(set, i, const char *), conf->scope_request_prefix);
        if (sh)
            mcp_scope_add(set, sh);
    }
    return set;
}

/* Both paths end here: the request now has a user and an identity. */
static int accept_token(request_rec *r, const mcp_dir_conf_t *conf, const mcp_verdict_t *verdict, json_t *claims,
                        const char *token, size_t len, const char *how)
{
    mcp_request_t *st = mcp_request(r);
    mcp_state_accepted(st);
    st->verdict = verdict;
    st->claims = claims;
    /* The token's scopes plus what MCPAuthScopeImplies derives from them,
     * for Require mcp-scope and MCPAuthToolScope alike; the verdict (cached,
     * and MCP_AUTH_SCOPE) keeps the token's own. */
    st->granted = mcp_scope_expand(r->pool, granted_scopes(r, conf, verdict), conf->scope_implies);
    r->user = apr_pstrdup(r->pool, verdict->user);
    r->ap_auth_type = (char *)MCP_AUTH_TYPE;
    mcp_identity_export(r, conf, token, len);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "token accepted (%s): user %s", how,
                  mcp_printable(r->pool, r->user, 128));
    return 0;
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

/* How long an introspection answer stays in a child's own cache: never
 * longer than this, than the location's cache time, than the shared entry
 * it came from, nor past the revocation epoch it was read under. */
#define INTROSPECTION_L1_TTL apr_time_from_msec(250)

/* Opaque tokens (not a compact JWS): RFC 7662 introspection. 0: accepted;
 * -1: *fail says why. */
static int authenticate_opaque(request_rec *r, const mcp_dir_conf_t *conf, mcp_verify_policy_t *pol, const char *token,
                               size_t len, const mcp_log_t *log, mcp_fail_t *fail)
{
    mcp_store_t *store = mcp_shm_store();
    unsigned char fp[MCP_FINGERPRINT_LEN];
    const char *url;
    char *ctx = NULL;
    size_t ctx_len = 0;
    json_t *result;
    mcp_verdict_t *verdict;
    mcp_l1_deps_t deps = {0, -1, 0, 1, 0};
    apr_time_t valid_until;
    int idx, cache = conf->introspection->cache > 0;

    url = introspection_url(r, conf, log);
    if (!url)
        return mcp_fail(fail, MCP_FAIL_UNAVAILABLE, "Introspection failed",
                        "no introspection endpoint configured or discovered");
    /* Nothing beyond "active" is required unless the location says so. */
    pol->claims.required = mcp_conf_required_claims(conf, 1, &pol->claims.n_required);
    verdict = apr_palloc(r->pool, sizeof(*verdict));
    if (cache)
        policy_fingerprint(r, conf, pol, fp);
    /* The epoch is read before the shared answer: a token refused as
     * inactive after this point makes the copy kept below dead at once. */
    if (cache && mcp_store_epoch(store, &deps.epoch) == 0) {
        size_t ulen = strlen(url);
        ctx_len = sizeof(fp) + ulen;
        ctx = apr_palloc(r->pool, ctx_len);
        memcpy(ctx, fp, sizeof(fp));
        /* NOLINTNEXTLINE(bugprone-not-null-terminated-result): a binary key of ctx_len bytes, not a string */
        memcpy(ctx + sizeof(fp), url, ulen);
        if (mcp_l1_get(mcp_shm_l1(), ctx, ctx_len, token, len, apr_time_now(), store, r->pool, verdict) == 0) {
            mcp_metric_add(MCP_M_CACHE_L1_HIT, 1);
            if (mcp_verdict_time_check(r->pool, verdict, pol->claims.now, pol->claims.skew, 1, fail))
                return -1;
            return accept_token(r, conf, verdict, NULL, token, len, "introspection, cached");
        }
    }
    if (mcp_introspect(r->pool, store, mcp_shared_cache(), conf->introspection, cache ? fp : NULL, url,
                       &mcp_srv_conf(r->server)->fetch.http, token, len, log, &result, &valid_until, fail))
        return -1;
    if (mcp_introspect_check(r->pool, result, pol, &idx, fail))
        return -1;
    if (mcp_verdict_from_claims(r->pool, result, idx < 0 ? 0 : idx, MCP_ALG_UNKNOWN, conf->remote_user_claim,
                                conf->scope_claim, verdict))
        return mcp_fail(fail, MCP_FAIL_UNAVAILABLE, "Introspection failed", "the answer cannot be serialized");
    if (ctx && valid_until > 0) {
        deps.expires = r->request_time + (conf->introspection->cache < INTROSPECTION_L1_TTL ? conf->introspection->cache
                                                                                            : INTROSPECTION_L1_TTL);
        if (valid_until < deps.expires)
            deps.expires = valid_until;
        deps.expires = mcp_verdict_keep_until(verdict, deps.expires);
        mcp_l1_put(mcp_shm_l1(), ctx, ctx_len, token, len, &deps, verdict);
    }
    return accept_token(r, conf, verdict, result, token, len, "introspection");
}

/* The steps of authentication: 0 when the token is accepted (the request
 * has its user), -1 when *fail says why not. */
static int authenticate(request_rec *r, const mcp_dir_conf_t *conf, mcp_fail_t *fail)
{
    mcp_log_t log = {log_to_request, r};
    mcp_verify_policy_t pol;
    mcp_verdict_t *verdict = apr_palloc(r->pool, sizeof(*verdict));
    json_t *claims;
    const char *token;
    size_t len;
    int parts;

    if (mcp_bearer_extract(apr_table_get(r->headers_in, "Authorization"),
                           conf->token_header ? apr_table_get(r->headers_in, conf->token_header) : NULL, &token, &len,
                           fail))
        return -1;
    build_policy(r, conf, &pol);
    if (len > pol.max_token_size)
        return mcp_fail(
            fail, MCP_FAIL_INVALID_TOKEN, "Token too large",
            apr_psprintf(r->pool, "%lu bytes, limit %lu", (unsigned long)len, (unsigned long)pol.max_token_size));
    /* The token's shape decides: a compact JWS is verified here, anything
     * else but a JWE is an opaque token for the introspection endpoint. */
    parts = mcp_compact_parts(token, len);
    if (parts != 3 && parts != 5) {
        if (conf->introspection)
            return authenticate_opaque(r, conf, &pol, token, len, &log, fail);
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Malformed token",
                        "not a JWT and no introspection endpoint is configured");
    }
    if (pol.n_issuers == 0) {
        /* configtest refuses a section no issuer reaches: what gets here is
         * AuthType from .htaccess (or a section with an introspection URL
         * only, which serves opaque tokens). Say what is wrong in the line
         * the operator reads. */
        return mcp_fail(fail, MCP_FAIL_CONFIG, "No issuer configured",
                        "AuthType mcp-jwt applies here but no MCPAuthIssuer does (AuthType from .htaccess? "
                        "configtest cannot see it there): every JWT is answered 500 until the server "
                        "configuration gives this place an issuer");
    }
    if (verify_cached(r, conf, &pol, token, len, &log, verdict, &claims, fail))
        return -1;
    return accept_token(r, conf, verdict, claims, token, len, mcp_alg_name(verdict->alg));
}

/* SPEC 7: every wait of the request for the IdP (discovery, JWKS,
 * introspection, in any sequence) ends within one MCPAuthHTTPTimeout. The
 * one refusal is answered inside that scope: a 503's Retry-After is the
 * backoff its calls learned. */
int mcp_authenticate(request_rec *r, const mcp_dir_conf_t *conf)
{
    mcp_fail_t fail;
    int rc;
    mcp_http_scope_begin(mcp_http_wait_end(&mcp_srv_conf(r->server)->fetch.http, apr_time_now()));
    rc = authenticate(r, conf, &fail) == 0 ? OK : mcp_refuse(r, conf, &fail);
    mcp_http_scope_end();
    return rc;
}
