/* mod_mcp_auth: Apache httpd as the OAuth resource server in front of MCP
 * servers. This file is the table of contents: directives, per-directory
 * configuration, and the hooks that hand each request to src/. */
#include <stddef.h> /* before APR: APR_OFFSETOF then uses offsetof */
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_auth.h>
#include <mpm_common.h>
#include <http_main.h>
#include <scoreboard.h>
#include <apr_strings.h>
#include <curl/curl.h>

#include "jose_alg.h"
#include "authn.h"
#include "authz.h"
#include "identity.h"
#include "conf.h"
#include "well_known.h"
#include "request.h"
#include "shm.h"
#include "toolscope.h"
#include "stopping.h"
#include "http_fetch.h"
#include "version.h"

/* ---- per-directory configuration ------------------------------------ */

static void *create_dir_conf(apr_pool_t *p, char *dir)
{
    mcp_dir_conf_t *c = apr_pcalloc(p, sizeof(*c));
    (void)dir;
    c->skew = -1;
    c->max_token_size = -1;
    c->resource_metadata = -1;
    c->pass_token = -1;
    c->forward_token = -1;
    return c;
}

#define MERGE(field, unset) (add->field != (unset) ? add->field : base->field)

/* Claim exports merge as a union: a child entry replaces only the parent's
 * entry for the same name (headers case-insensitively; env names are
 * already upper-cased), so a nested section never drops the parent's. */
static apr_array_header_t *merge_exports(apr_pool_t *p, const apr_array_header_t *base,
                                         const apr_array_header_t *add)
{
    apr_array_header_t *out;
    int i, j;
    if (!base || !add)
        return (apr_array_header_t *)(add ? add : base);
    out = apr_array_make(p, base->nelts + add->nelts, sizeof(mcp_claim_export_t));
    for (i = 0; i < base->nelts; i++) {
        const mcp_claim_export_t *b = &APR_ARRAY_IDX(base, i, mcp_claim_export_t);
        for (j = 0; j < add->nelts; j++)
            if (strcasecmp(b->name, APR_ARRAY_IDX(add, j, mcp_claim_export_t).name) == 0)
                break;
        if (j == add->nelts)
            *(mcp_claim_export_t *)apr_array_push(out) = *b;
    }
    apr_array_cat(out, add);
    return out;
}

/* Tool scopes merge the same way (tool names case-insensitively, as the
 * check compares them); an entry from .htaccess never replaces one: both
 * stay and a call needs the scopes of each. */
static apr_array_header_t *merge_tool_scopes(apr_pool_t *p, const apr_array_header_t *base,
                                             const apr_array_header_t *add)
{
    apr_array_header_t *out;
    int i, j;
    if (!base || !add)
        return (apr_array_header_t *)(add ? add : base);
    out = apr_array_make(p, base->nelts + add->nelts, sizeof(mcp_tool_scope_t));
    for (i = 0; i < base->nelts; i++) {
        const mcp_tool_scope_t *b = &APR_ARRAY_IDX(base, i, mcp_tool_scope_t);
        for (j = 0; j < add->nelts; j++) {
            const mcp_tool_scope_t *a = &APR_ARRAY_IDX(add, j, mcp_tool_scope_t);
            if (!a->narrow_only && strcasecmp(b->tool, a->tool) == 0)
                break;
        }
        if (j == add->nelts)
            *(mcp_tool_scope_t *)apr_array_push(out) = *b;
    }
    apr_array_cat(out, add);
    return out;
}

/* Required claims from .htaccess add to the inherited ones (the default
 * sub included); elsewhere a section's list replaces its parent's. */
static apr_array_header_t *merge_required_claims(apr_pool_t *p, const mcp_dir_conf_t *base,
                                                 const mcp_dir_conf_t *add)
{
    apr_array_header_t *out;
    if (!add->required_claims || !add->required_claims_add)
        return add->required_claims ? add->required_claims : base->required_claims;
    if (base->required_claims)
        out = apr_array_copy(p, base->required_claims);
    else {
        out = apr_array_make(p, add->required_claims->nelts + 1, sizeof(const char *));
        APR_ARRAY_PUSH(out, const char *) = "sub";
    }
    apr_array_cat(out, add->required_claims);
    return out;
}

/* A configuration with none of our directives, as create_dir_conf makes
 * it (pre_config): what httpd merges a protected <Location> onto, twice
 * per request (the location walk before and after the directory walk). */
static const mcp_dir_conf_t *blank_conf;

static void *merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    const mcp_dir_conf_t *base = basev, *add = addv;
    mcp_dir_conf_t *c;

    /* Onto a blank base every line below yields add's field (MERGE and the
     * list merges pick add or an unset base; the flags were 0), except
     * .htaccess required claims, which add to the default "sub". Keep it
     * so when adding a field. A copy, as the full merge: the merged
     * configuration's address is per merge (late_checks compares it). */
    /* NOLINTNEXTLINE(bugprone-suspicious-memory-comparison): both apr_pcalloc'd or copies: zero padding */
    if (blank_conf && !add->required_claims_add && memcmp(base, blank_conf, sizeof(*base)) == 0) {
        c = apr_palloc(p, sizeof(*c));
        memcpy(c, add, sizeof(*c));
        return c;
    }
    c = apr_pcalloc(p, sizeof(*c));
    c->issuers = MERGE(issuers, NULL);
    c->audiences = MERGE(audiences, NULL);
    c->resource = MERGE(resource, NULL);
    c->alg_set = add->alg_set || base->alg_set;
    c->alg_mask = add->alg_set ? add->alg_mask : base->alg_mask;
    c->hmac_key = MERGE(hmac_key, NULL);
    c->skew = MERGE(skew, -1);
    c->from_htaccess = base->from_htaccess || add->from_htaccess;
    c->required_claims = merge_required_claims(p, base, add);
    c->required_claims_add = add->required_claims ? add->required_claims_add : base->required_claims_add;
    c->token_type = MERGE(token_type, NULL);
    c->token_header = MERGE(token_header, NULL);
    c->remote_user_claim = MERGE(remote_user_claim, NULL);
    c->max_token_size = MERGE(max_token_size, -1);
    c->location = MERGE(location, NULL);
    c->scope_claim = MERGE(scope_claim, NULL);
    c->scopes_supported = MERGE(scopes_supported, NULL);
    c->resource_metadata = MERGE(resource_metadata, -1);
    c->tool_scopes = merge_tool_scopes(p, base->tool_scopes, add->tool_scopes);
    c->claim_headers = merge_exports(p, base->claim_headers, add->claim_headers);
    c->claim_envs = merge_exports(p, base->claim_envs, add->claim_envs);
    c->pass_token = MERGE(pass_token, -1);
    c->forward_token = MERGE(forward_token, -1);
    c->introspection = MERGE(introspection, NULL);
    c->allowed_origins = MERGE(allowed_origins, NULL);
    c->scope_request_prefix = MERGE(scope_request_prefix, NULL);
    /* One side's closure is shared; a pair check_config merged comes from
     * its memo; only other pairs (rare) build a merged closure here. */
    c->scope_implies = (mcp_scope_implies_t *)mcp_scope_implies_merge_memo(mcp_global.implies_merged, 0, p,
                                                                           base->scope_implies, add->scope_implies, NULL);
    return c;
}

/* ---- directives ------------------------------------------------------ */

/* DIR_*: also in .htaccess (AllowOverride AuthConfig): only what narrows
 * access. TRUST_*: what decides which tokens are trusted or accepted, the
 * identity they yield, or where the token goes -- server configuration
 * files only; in .htaccess httpd answers "not allowed here". */
#define DIR_CMD(kind, name, fn, help) kind(name, fn, NULL, OR_AUTHCFG, help)
#define DIR_STR(name, field, help)                                                                                   \
    AP_INIT_TAKE1(name, mcp_cmd_dir_string, (void *)APR_OFFSETOF(mcp_dir_conf_t, field), OR_AUTHCFG, help)
#define TRUST_CMD(kind, name, fn, help) kind(name, fn, NULL, ACCESS_CONF | RSRC_CONF, help)
#define TRUST_STR(name, field, help)                                                                                 \
    AP_INIT_TAKE1(name, mcp_cmd_dir_string, (void *)APR_OFFSETOF(mcp_dir_conf_t, field), ACCESS_CONF | RSRC_CONF, help)
#define SRV_CMD(kind, name, fn, info, help) kind(name, fn, (void *)(info), RSRC_CONF, help)

/* One line per directive, aligned by hand: the formatter leaves the table
 * alone. */
/* clang-format off */
static const command_rec mcp_cmds[] = {
    TRUST_CMD(AP_INIT_RAW_ARGS, "MCPAuthIssuer", mcp_cmd_issuer,
            "a trusted issuer URL [jwks_uri=URL] [jwks_file=PATH] [introspection_endpoint=URL]; repeat for several"),
    TRUST_CMD(AP_INIT_ITERATE, "MCPAuthAudience", mcp_cmd_audience,
            "accepted audiences (default: the MCPAuthResource value)"),
    TRUST_CMD(AP_INIT_TAKE1, "MCPAuthResource", mcp_cmd_resource,
            "the canonical resource URI (default: scheme://host[:port]<location>)"),
    TRUST_CMD(AP_INIT_ITERATE, "MCPAuthAlgorithms", mcp_cmd_algorithms,
            "allowed JWS algorithms (default: all RS*, PS*, ES*, EdDSA; HS* needs MCPAuthHMACSecret)"),
    TRUST_CMD(AP_INIT_TAKE1, "MCPAuthHMACSecret", mcp_cmd_hmac_secret,
            "shared key for HS256/384/512 (at least 32/48/64 bytes)"),
    TRUST_CMD(AP_INIT_TAKE1, "MCPAuthClockSkew", mcp_cmd_clock_skew,
              "seconds of leeway for exp, nbf, iat (default 30)"),
    DIR_CMD(AP_INIT_ITERATE, "MCPAuthRequiredClaims", mcp_cmd_required_claims,
            "claims that must be present (default: sub; exp always; \"none\" for nothing more)"),
    TRUST_STR("MCPAuthTokenType", token_type,
            "required JWS typ header, e.g. at+jwt (default: not checked)"),
    TRUST_CMD(AP_INIT_TAKE1, "MCPAuthTokenHeader", mcp_cmd_token_header,
            "also accept the raw token in this request header"),
    TRUST_CMD(AP_INIT_TAKE1, "MCPAuthRemoteUserClaim", mcp_cmd_remote_user_claim,
            "claim that names REMOTE_USER (default: sub; then sub, client_id, username)"),
    TRUST_CMD(AP_INIT_TAKE1, "MCPAuthMaxTokenSize", mcp_cmd_max_token_size,
            "larger tokens are rejected without parsing (default 16384 bytes)"),
    TRUST_CMD(AP_INIT_RAW_ARGS, "MCPAuthIntrospection", mcp_cmd_introspection,
            "<url|discover> [auth=client_secret_basic|client_secret_post|none] [client_id=] [client_secret=] "
            "[method=POST|GET] [param=token] [cache=300]: RFC 7662 introspection of opaque tokens"),
    TRUST_CMD(AP_INIT_ITERATE, "MCPAuthScopeClaim", mcp_cmd_scope_claim,
            "claims holding the token's scopes, the union of all (default: scope, then scp)"),
    DIR_CMD(AP_INIT_ITERATE, "MCPAuthScopesSupported", mcp_cmd_scopes_supported,
            "scopes_supported of the metadata document and the scope hint of 401 challenges"),
    DIR_CMD(AP_INIT_FLAG, "MCPAuthResourceMetadata", mcp_cmd_resource_metadata,
            "serve the RFC 9728 document for this location (default On)"),
    DIR_CMD(AP_INIT_RAW_ARGS, "MCPAuthToolScope", mcp_cmd_tool_scope,
            "<tool-name> <scope>...: an MCP tools/call of this tool also needs these scopes"),
    DIR_CMD(AP_INIT_TAKE2, "MCPAuthClaimHeader", mcp_cmd_claim_header,
            "<Header-Name> <$.claim>: request header for the backend from a claim ($ = all claims as JSON)"),
    DIR_CMD(AP_INIT_TAKE2, "MCPAuthClaimEnv", mcp_cmd_claim_env,
            "<NAME> <$.claim>: subprocess environment variable from a claim"),
    TRUST_CMD(AP_INIT_FLAG, "MCPAuthPassToken", mcp_cmd_pass_token,
            "also export the raw token as MCP_AUTH_TOKEN (default Off)"),
    TRUST_CMD(AP_INIT_FLAG, "MCPAuthForwardToken", mcp_cmd_forward_token,
            "keep (On, default) or remove (Off) the client's Authorization header towards the backend"),
    TRUST_CMD(AP_INIT_ITERATE, "MCPAuthAllowedOrigins", mcp_cmd_allowed_origins,
              "<origin>... or *: browser origins allowed to call (default: the resource's own origin)"),
    /* Widens what a token may do: never from .htaccess. */
    TRUST_CMD(AP_INIT_RAW_ARGS, "MCPAuthScopeImplies", mcp_cmd_scope_implies,
              "<scope> <implied-scope>...: a token with <scope> also satisfies these (transitive; no cycles)"),
    /* Also how granted scopes are matched (prefixed ones count as the short
     * form): that can widen, so never from .htaccess. */
    TRUST_STR("MCPAuthScopeRequestPrefix", scope_request_prefix,
              "<prefix>: scopes in challenges and scopes_supported are written prefix+scope (Entra: "
              "https://host/path/); tokens match the short form"),
    SRV_CMD(AP_INIT_TAKE1, "MCPAuthJWKSMaxSize", mcp_cmd_jwks_max_size, 0,
            "largest JWKS or discovery document accepted (default 65536 bytes)"),
    SRV_CMD(AP_INIT_TAKE1, "MCPAuthJWKSCacheTTL", mcp_cmd_server_seconds, APR_OFFSETOF(mcp_fetch_settings_t, ttl),
            "seconds fetched JWKS and discovery documents stay fresh (default 86400)"),
    SRV_CMD(AP_INIT_TAKE1, "MCPAuthJWKSRefreshCooldown", mcp_cmd_server_seconds,
            APR_OFFSETOF(mcp_fetch_settings_t, cooldown),
            "at most one unscheduled JWKS fetch per issuer in this many seconds (default 30)"),
    SRV_CMD(AP_INIT_TAKE1, "MCPAuthJWKSMaxStale", mcp_cmd_server_seconds,
            APR_OFFSETOF(mcp_fetch_settings_t, max_stale),
            "seconds the last good JWKS is used past its TTL while the IdP is down (default 604800)"),
    SRV_CMD(AP_INIT_TAKE1, "MCPAuthCacheEntries", mcp_cmd_cache_entries, 0,
            "shared-memory slots for verified tokens (default 4096)"),
    SRV_CMD(AP_INIT_TAKE1, "MCPAuthCacheEntrySize", mcp_cmd_cache_entry_size, 0,
            "bytes per slot: claims JSON and bookkeeping (default 4096)"),
    SRV_CMD(AP_INIT_TAKE1, "MCPAuthTokenCacheTTL", mcp_cmd_server_seconds, 0,
            "seconds a verified token's result is reused, never past its exp; 0 disables (default 300)"),
    SRV_CMD(AP_INIT_TAKE1, "MCPAuthHTTPTimeout", mcp_cmd_server_seconds, 0,
            "connect+total timeout in seconds for calls to the IdP (default 5)"),
    SRV_CMD(AP_INIT_FLAG, "MCPAuthSSLVerify", mcp_cmd_ssl_verify, 0, "verify IdP TLS certificates (default On)"),
    SRV_CMD(AP_INIT_TAKE1, "MCPAuthCAFile", mcp_cmd_ca_file, 0, "CA bundle for IdP TLS (default: system store)"),
    SRV_CMD(AP_INIT_TAKE1, "MCPAuthRefusalLogInterval", mcp_cmd_refusal_log_interval, 0,
            "seconds in which each process logs one refusal per reason and counts the rest (default 1; 0: all)"),
    {NULL},
};
/* clang-format on */

/* ---- hooks ----------------------------------------------------------- */

static int is_ours(request_rec *r)
{
    const char *type = ap_auth_type(r);
    return type && strcasecmp(type, MCP_AUTH_TYPE) == 0;
}

static const mcp_dir_conf_t *dir_conf(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &mcp_auth_module);
}

static int check_authn(request_rec *r)
{
    int rc;
    if (!is_ours(r))
        return DECLINED;
    rc = mcp_authenticate(r, dir_conf(r));
    if (rc == OK)
        mcp_toolscope_inspect(r, dir_conf(r));
    return rc;
}

/* access_checker_ex: OK skips authn and authz -- for the lookups the
 * metadata handler makes. */
static int skip_access_control(request_rec *r)
{
    if (!is_ours(r) || !mcp_metadata_is_lookup(r))
        return DECLINED;
    return OK;
}

/* access_checker_ex, after mod_authz_core's pass without a user: `Require
 * ip`, `Require all denied` and the like have already refused what they
 * refuse. What is left waits for a user, which a CORS preflight (no
 * credentials, by definition) never has: skip authentication, and let the
 * fixups and handler below answer it. */
static int pass_preflight(request_rec *r)
{
    if (!is_ours(r) || !mcp_is_preflight(r, dir_conf(r)))
        return DECLINED;
    return OK;
}

/* header_parser: a browser page from an origin not allowed here (DNS
 * rebinding) is refused before anything else looks at the request. */
static int check_origin(request_rec *r)
{
    if (!is_ours(r) || mcp_metadata_is_lookup(r))
        return DECLINED;
    return mcp_authz_check_origin(r, dir_conf(r));
}

static int note_auth_failure(request_rec *r, const char *auth_type)
{
    if (strcasecmp(auth_type, MCP_AUTH_TYPE) != 0)
        return DECLINED;
    mcp_authz_note_failure(r, dir_conf(r));
    return OK;
}

static void insert_error_filter(request_rec *r)
{
    if (is_ours(r)) {
        mcp_authz_error_response(r, dir_conf(r));
        /* A preflight passes only by our 204: a refused one gets no grant. */
        if (!mcp_is_preflight(r, dir_conf(r)))
            mcp_authz_cors_error(r, dir_conf(r));
    }
}

/* Before authentication: client-sent copies of identity headers go. */
static int scrub_identity(request_rec *r)
{
    /* Every request of the virtual host, protected or not (SPEC 4): an open
     * sibling location in front of the same backend must not let a client
     * speak for a user either. */
    mcp_identity_scrub(r, dir_conf(r));
    return DECLINED;
}

/* Which configuration before_handler ran under (r->notes: a subrequest
 * that mod_dir merges into r brings its notes, never this one). */
#define FIXUPS_NOTE "mcp_auth_fixups"

/* The note's value: the configuration's address in lower-case hex, as
 * apr_psprintf's "%pp" writes it, without running its formatter twice on
 * every request. */
#define CONF_ID_LEN (2 * sizeof(void *) + 1)
static const char *conf_id(char buf[CONF_ID_LEN], const mcp_dir_conf_t *conf)
{
    apr_uintptr_t v = (apr_uintptr_t)conf;
    /* cppcheck-suppress ctuPointerArith ; buf has CONF_ID_LEN bytes: e points at its last one */
    char *e = buf + CONF_ID_LEN - 1;
    *e = '\0';
    do
        *--e = "0123456789abcdef"[v & 15];
    while (v >>= 4);
    return e;
}

/* After authorization, before the handler: a preflight's answer, per-tool
 * scopes, then what the backend gets to see of the token -- also from a
 * subrequest (SSI, a lookup that proxies), which carries a copy of the
 * client's headers but reads no body of its own. */
static int before_handler(request_rec *r)
{
    const mcp_dir_conf_t *conf;
    char id[CONF_ID_LEN];
    int rc = DECLINED;

    if (!is_ours(r))
        return DECLINED;
    conf = dir_conf(r);
    if (!r->main)
        apr_table_set(r->notes, FIXUPS_NOTE, conf_id(id, conf));
    if (mcp_is_preflight(r, conf)) {
        mcp_authz_preflight_prepare(r, conf);
        return DECLINED;
    }
    mcp_authz_granted(r);
    mcp_identity_redirected(r, conf);
    if (!r->main)
        rc = mcp_toolscope_check(r, conf);
    if (rc == OK || rc == DECLINED)
        mcp_identity_forward(r, conf);
    return rc;
}

/* mod_dir's FallbackResource and DirectoryIndex merge a looked-up
 * subrequest into the request (ap_internal_fast_redirect) during the
 * fixups: the request may have become ours after our steps ran for it.
 * The lookup passed authentication and Require under this configuration;
 * what it did not do for this request -- scrub, identity, tool scopes, the
 * token towards the backend -- is done here, before any handler. */
static int late_checks(request_rec *r)
{
    const mcp_dir_conf_t *conf;
    const char *done = apr_table_get(r->notes, FIXUPS_NOTE);
    char id[CONF_ID_LEN];
    int rc;

    if (!is_ours(r) || r->main)
        return DECLINED;
    conf = dir_conf(r);
    if (done && strcmp(done, conf_id(id, conf)) == 0)
        return DECLINED;
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "configuration changed after the fixups: checking %s again",
                  r->uri);
    scrub_identity(r);
    if (!mcp_is_preflight(r, conf) && (rc = mcp_authenticate(r, conf)) != OK)
        return rc;
    return before_handler(r);
}

/* handler, before any other: the late checks, then a preflight's answer. */
static int first_handler(request_rec *r)
{
    int rc = late_checks(r);
    if (rc != DECLINED && rc != OK)
        return rc;
    return mcp_authz_preflight_answer(r);
}

static int pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    mcp_global_reset(pconf);
    blank_conf = create_dir_conf(pconf, NULL);
    return mcp_shm_pre_config(pconf) == APR_SUCCESS ? OK : !OK;
}

/* The shared per-endpoint failure table of this generation (idp_health.h),
 * made in post_config, inherited by the children. */
static mcp_idp_health_t *idp_health;

/* At most half the threads of a child wait on the IdP at once: the others
 * stay free for everything else (static pages, cached tokens) however
 * many random tokens arrive while the IdP is slow. A single-threaded
 * child keeps its one call. */
static int mpm_count(int query)
{
    int n = 1;
    return ap_mpm_query(query, &n) == APR_SUCCESS && n >= 1 ? n : 1;
}

static int outbound_cap(void)
{
    int threads = mpm_count(AP_MPMQ_MAX_THREADS);
    return threads > 1 ? threads / 2 : 1;
}

/* Half of all the workers of the server may wait on one endpoint: what a
 * per-process cap cannot bound when every process has one thread
 * (prefork). */
static int server_outbound_cap(void)
{
    int workers = mpm_count(AP_MPMQ_MAX_DAEMONS) * mpm_count(AP_MPMQ_MAX_THREADS);
    return workers > 1 ? workers / 2 : 1;
}

/* The generation this child was started for (see child_stopping). */
static ap_generation_t child_generation;

static void child_init(apr_pool_t *p, server_rec *s)
{
    int gen = 0;
    if (ap_mpm_query(AP_MPMQ_GENERATION, &gen) == APR_SUCCESS)
        child_generation = (ap_generation_t)gen;
    else if (ap_scoreboard_image && ap_scoreboard_image->global)
        child_generation = ap_scoreboard_image->global->running_generation;
    mcp_shm_child_init(p, s);
    mcp_refusal_log_child_init(p, s);
    /* Handles of this process only, freed with it (never across a fork). */
    mcp_http_child_init(p, outbound_cap(), server_outbound_cap(), idp_health);
}

/* Threaded MPMs tell the child before they wait for its requests. On a
 * stop or a hard restart, loops waiting on the IdP or on another process
 * give up at once (httpd would SIGKILL the child otherwise). A graceful
 * signal gives them a short grace (2 s: enough for a healthy IdP, and for
 * the parent to read the configuration again under load), and then,
 * unless a new generation has started (a graceful restart, e.g. for log
 * rotation: nobody will kill this child, and its requests are served to
 * their own MCPAuthHTTPTimeout), they give up too: graceful-stop, and a
 * stop that httpd delivers to a child as a graceful one, never wait for a
 * hung IdP. */
#define GRACEFUL_GRACE apr_time_from_msec(2000)

static int new_generation_started(void)
{
    return ap_scoreboard_image && ap_scoreboard_image->global &&
           ap_scoreboard_image->global->running_generation != child_generation;
}

static void child_stopping(apr_pool_t *pchild, int graceful)
{
    (void)pchild;
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, ap_server_conf, "child stopping (%s)",
                 graceful ? "graceful: calls to the IdP go on for a restart, 2 s otherwise"
                          : "calls to the IdP end now");
    if (graceful)
        mcp_stopping_set_graceful(GRACEFUL_GRACE, new_generation_started);
    else
        mcp_stopping_set();
}

/* Runs for configtest and for every start: checks across sections. */
static int check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    const char *err = mcp_config_check(pconf);
    (void)plog;
    (void)ptemp;
    if (err) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, 0, s, "%s", err);
        return !OK;
    }
    /* The first reading (configtest, the terminal that starts httpd) shows
     * them on stderr; later readings log them from post_config, once the
     * error log is open -- a daemon's stderr is /dev/null until then. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        mcp_config_warnings(s);
    return OK;
}

static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    static int libraries_ready;
    const char *err;
    (void)plog;
    (void)ptemp;
    err = mcp_shm_post_config(pconf, s);
    if (err) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, 0, s, "%s", err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG)
        mcp_config_warnings(s);
    idp_health = mcp_idp_health_create(pconf);
    if (!idp_health)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "no shared memory for the IdP failure table: a failing IdP is asked by every request");
    /* Once per configuration generation (start, restart, graceful), not
     * in the first reading httpd makes at start-up to check the files. */
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG)
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "%s", mcp_version_line(ptemp, "mod_mcp_auth"));
    /* Once, in the parent, before any thread exists. */
    if (!libraries_ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        mcp_jose_init();
        libraries_ready = 1;
    }
    return OK;
}

static void register_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_stopping(child_stopping, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_quick_handler(mcp_metadata_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_access_ex(skip_access_control, NULL, NULL, APR_HOOK_MIDDLE, AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_check_access_ex(pass_preflight, NULL, NULL, APR_HOOK_REALLY_LAST, AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_check_authn(check_authn, NULL, NULL, APR_HOOK_MIDDLE, AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_note_auth_failure(note_auth_failure, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(insert_error_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_header_parser(scrub_identity, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_header_parser(check_origin, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_fixups(before_handler, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(first_handler, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_insert_filter(mcp_toolscope_insert_filter, NULL, NULL, APR_HOOK_MIDDLE);
    /* Require mcp-scope <scope>... and Require mcp-claim <$.path> <value>... */
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "mcp-scope", AUTHZ_PROVIDER_VERSION, &mcp_authz_scope_provider,
                              AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "mcp-claim", AUTHZ_PROVIDER_VERSION, &mcp_authz_claim_provider,
                              AP_AUTH_INTERNAL_PER_CONF);
    /* Our refusals' JSON content type, and CORS on them (added by the
     * error filter above); the body read for tool scopes, replayed. */
    ap_register_output_filter(MCP_JSON_ERROR_FILTER, mcp_authz_json_error_filter, NULL, AP_FTYPE_RESOURCE);
    ap_register_output_filter(MCP_CORS_ERROR_FILTER, mcp_authz_cors_error_filter, NULL, AP_FTYPE_CONTENT_SET + 5);
    mcp_toolscope_kept_body_handle = ap_register_input_filter(MCP_KEPT_BODY_FILTER, mcp_toolscope_kept_body_filter,
                                                              NULL, AP_FTYPE_RESOURCE);
}

/* clang-format off */
AP_DECLARE_MODULE(mcp_auth) = {
    STANDARD20_MODULE_STUFF,
    create_dir_conf,         /* dir config creater */
    merge_dir_conf,          /* dir merger --- default is to override */
    NULL,                    /* server config */
    NULL,                    /* merge server config */
    mcp_cmds,                /* command apr_table_t */
    register_hooks,          /* register hooks */
    AP_MODULE_FLAG_NONE      /* flags */
};
/* clang-format on */
