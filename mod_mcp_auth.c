/* SPDX-License-Identifier: Apache-2.0 */
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
#include "audit.h"
#include "authn.h"
#include "authz.h"
#include "identity.h"
#include "conf.h"
#include "well_known.h"
#include "refusal.h"
#include "request.h"
#include "metrics_handler.h"
#include "shared_cache.h"
#include "shm.h"
#include "toolscope.h"
#include "stopping.h"
#include "http_fetch.h"
#include "version.h"

/* ---- directives ------------------------------------------------------ */

/* DIR_*: also in .htaccess (AllowOverride AuthConfig): only what narrows
 * access. TRUST_*: what decides which tokens are trusted or accepted, the
 * identity they yield, or where the token goes -- server configuration
 * files only; in .htaccess httpd answers "not allowed here". */
#define DIR_CMD(kind, name, fn, help) kind(name, fn, NULL, OR_AUTHCFG, help)
#define DIR_STR(name, field, help)                                                                                     \
    AP_INIT_TAKE1(name, mcp_cmd_dir_string, (void *)APR_OFFSETOF(mcp_dir_conf_t, field), OR_AUTHCFG, help)
#define TRUST_CMD(kind, name, fn, help) kind(name, fn, NULL, ACCESS_CONF | RSRC_CONF, help)
#define TRUST_STR(name, field, help)                                                                                   \
    AP_INIT_TAKE1(name, mcp_cmd_dir_string, (void *)APR_OFFSETOF(mcp_dir_conf_t, field), ACCESS_CONF | RSRC_CONF, help)
#define DIR_FLAG(name, field, help)                                                                                    \
    AP_INIT_FLAG(name, mcp_cmd_dir_flag, (void *)APR_OFFSETOF(mcp_dir_conf_t, field), OR_AUTHCFG, help)
#define TRUST_FLAG(name, field, help)                                                                                  \
    AP_INIT_FLAG(name, mcp_cmd_dir_flag, (void *)APR_OFFSETOF(mcp_dir_conf_t, field), ACCESS_CONF | RSRC_CONF, help)
#define SRV_CMD(kind, name, fn, help) kind(name, fn, NULL, RSRC_CONF, help)
#define SRV_NUM(name, num, help) AP_INIT_TAKE1(name, mcp_cmd_server_number, (void *)&(num), RSRC_CONF, help)
/* " (default 30)" from a constant of defaults.h. */
#define DEFAULT(value) " (default " MCP_STR(value) ")"

/* Where each server-wide number goes and what it may be. */
#define SRV_FIELD(field) APR_OFFSETOF(mcp_server_conf_t, field)
#define YEAR_S 31536000
static const mcp_srv_number_t jwks_max_size = {SRV_FIELD(fetch.http.max_size), MCP_NUM_SIZE, 1024, 16L << 20,
                                               "bytes from 1024 to 16777216"};
static const mcp_srv_number_t jwks_cache_ttl = {SRV_FIELD(fetch.ttl), MCP_NUM_SECONDS, 1, YEAR_S,
                                                "seconds from 1 to " MCP_STR(YEAR_S)};
static const mcp_srv_number_t jwks_cooldown = {SRV_FIELD(fetch.cooldown), MCP_NUM_SECONDS, 0, YEAR_S,
                                               "seconds from 0 to " MCP_STR(YEAR_S)};
static const mcp_srv_number_t jwks_max_stale = {SRV_FIELD(fetch.max_stale), MCP_NUM_SECONDS, 0, YEAR_S,
                                                "seconds from 0 to " MCP_STR(YEAR_S)};
static const mcp_srv_number_t cache_entries = {SRV_FIELD(cache_entries), MCP_NUM_UNSIGNED, 8, 4L << 20,
                                               "a number from 8 to 4194304"};
static const mcp_srv_number_t cache_entry_size = {SRV_FIELD(cache_entry_size), MCP_NUM_SIZE, 512, 1L << 20,
                                                  "bytes from 512 to 1048576"};
static const mcp_srv_number_t token_cache_ttl = {SRV_FIELD(token_ttl), MCP_NUM_SECONDS, 0, 86400,
                                                 "seconds from 0 (off) to 86400"};
static const mcp_srv_number_t http_timeout = {SRV_FIELD(fetch.http.timeout_s), MCP_NUM_LONG, 1, 300,
                                              "seconds from 1 to 300"};
static const mcp_srv_number_t refusal_log_interval = {SRV_FIELD(refusal_log_interval), MCP_NUM_SECONDS, 0, 3600,
                                                      "seconds from 0 (log every refusal) to 3600"};

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
            "allowed JWS algorithms (default: " MCP_DEFAULT_ALGORITHMS "; HS* needs MCPAuthHMACSecret)"),
    TRUST_CMD(AP_INIT_TAKE1, "MCPAuthHMACSecret", mcp_cmd_hmac_secret,
            "shared key for HS256/384/512 (at least 32/48/64 bytes)"),
    TRUST_CMD(AP_INIT_TAKE1, "MCPAuthClockSkew", mcp_cmd_clock_skew,
              "seconds of leeway for exp, nbf, iat" DEFAULT(MCP_DEFAULT_CLOCK_SKEW)),
    DIR_CMD(AP_INIT_ITERATE, "MCPAuthRequiredClaims", mcp_cmd_required_claims,
            "claims that must be present (default: " MCP_DEFAULT_REQUIRED_CLAIM "; exp always; \"none\" for nothing more)"),
    TRUST_STR("MCPAuthTokenType", token_type,
            "required JWS typ header, e.g. at+jwt (default: not checked)"),
    TRUST_CMD(AP_INIT_TAKE1, "MCPAuthTokenHeader", mcp_cmd_token_header,
            "also accept the raw token in this request header"),
    TRUST_CMD(AP_INIT_TAKE1, "MCPAuthRemoteUserClaim", mcp_cmd_remote_user_claim,
            "claim that names REMOTE_USER (default: " MCP_DEFAULT_REMOTE_USER_CLAIM "; then sub, client_id, username)"),
    TRUST_CMD(AP_INIT_TAKE1, "MCPAuthMaxTokenSize", mcp_cmd_max_token_size,
            "larger tokens are rejected without parsing, in bytes" DEFAULT(MCP_DEFAULT_MAX_TOKEN_SIZE)),
    TRUST_CMD(AP_INIT_RAW_ARGS, "MCPAuthIntrospection", mcp_cmd_introspection,
            "<url|discover> [auth=client_secret_basic|client_secret_post|none] [client_id=] [client_secret=] "
            "[method=POST|GET] [param=" MCP_DEFAULT_INTROSPECTION_PARAM "] [cache=" MCP_STR(MCP_DEFAULT_INTROSPECTION_CACHE)
            "]: RFC 7662 introspection of opaque tokens"),
    TRUST_CMD(AP_INIT_ITERATE, "MCPAuthScopeClaim", mcp_cmd_scope_claim,
            "claims holding the token's scopes, the union of all (default: scope, then scp)"),
    DIR_CMD(AP_INIT_ITERATE, "MCPAuthScopesSupported", mcp_cmd_scopes_supported,
            "scopes_supported of the metadata document and the scope hint of 401 challenges"),
    DIR_FLAG("MCPAuthResourceMetadata", resource_metadata, "serve the RFC 9728 document for this location (default On)"),
    DIR_CMD(AP_INIT_RAW_ARGS, "MCPAuthToolScope", mcp_cmd_tool_scope,
            "<tool-name> <scope>...: an MCP tools/call of this tool also needs these scopes"),
    DIR_CMD(AP_INIT_TAKE2, "MCPAuthClaimHeader", mcp_cmd_claim_header,
            "<Header-Name> <$.claim>: request header for the backend from a claim ($ = all claims as JSON)"),
    DIR_CMD(AP_INIT_TAKE2, "MCPAuthClaimEnv", mcp_cmd_claim_env,
            "<NAME> <$.claim>: subprocess environment variable from a claim"),
    TRUST_FLAG("MCPAuthPassToken", pass_token, "also export the raw token as MCP_AUTH_TOKEN (default Off)"),
    TRUST_FLAG("MCPAuthForwardToken", forward_token,
               "keep (On) or remove (Off) the client's Authorization header towards the backend (default On)"),
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
    SRV_NUM("MCPAuthJWKSMaxSize", jwks_max_size,
            "largest JWKS or discovery document accepted, in bytes" DEFAULT(MCP_DEFAULT_JWKS_MAX_SIZE)),
    SRV_NUM("MCPAuthJWKSCacheTTL", jwks_cache_ttl,
            "seconds fetched JWKS and discovery documents stay fresh" DEFAULT(MCP_DEFAULT_JWKS_CACHE_TTL)),
    SRV_NUM("MCPAuthJWKSRefreshCooldown", jwks_cooldown,
            "at most one unscheduled JWKS fetch per issuer in this many seconds"
            DEFAULT(MCP_DEFAULT_JWKS_REFRESH_COOLDOWN)),
    SRV_NUM("MCPAuthJWKSMaxStale", jwks_max_stale,
            "seconds the last good JWKS is used past its TTL while the IdP is down" DEFAULT(MCP_DEFAULT_JWKS_MAX_STALE)),
    SRV_NUM("MCPAuthCacheEntries", cache_entries,
            "shared-memory slots for verified tokens" DEFAULT(MCP_DEFAULT_CACHE_ENTRIES)),
    SRV_NUM("MCPAuthCacheEntrySize", cache_entry_size,
            "bytes per slot: claims JSON and bookkeeping" DEFAULT(MCP_DEFAULT_CACHE_ENTRY_SIZE)),
    SRV_NUM("MCPAuthTokenCacheTTL", token_cache_ttl,
            "seconds a verified token's result is reused, never past its exp; 0 disables"
            DEFAULT(MCP_DEFAULT_TOKEN_CACHE_TTL)),
    SRV_NUM("MCPAuthHTTPTimeout", http_timeout,
            "connect+total timeout in seconds for calls to the IdP" DEFAULT(MCP_DEFAULT_HTTP_TIMEOUT)),
    SRV_CMD(AP_INIT_FLAG, "MCPAuthSSLVerify", mcp_cmd_ssl_verify, "verify IdP TLS certificates (default On)"),
    SRV_CMD(AP_INIT_TAKE1, "MCPAuthCAFile", mcp_cmd_ca_file, "CA bundle for IdP TLS (default: system store)"),
    SRV_CMD(AP_INIT_TAKE1, "MCPAuthSharedCache", mcp_cmd_shared_cache,
            "<provider>[:<args>]: a cache shared by several httpd nodes through an httpd socache provider "
            "(redis:HOST:PORT, memcache:HOST:PORT; default: none)"),
    SRV_NUM("MCPAuthRefusalLogInterval", refusal_log_interval,
            "seconds in which each process logs one refusal per reason and counts the rest; 0: all"
            DEFAULT(MCP_DEFAULT_REFUSAL_LOG_INTERVAL)),
    {NULL},
};
/* clang-format on */

/* ---- hooks ----------------------------------------------------------- */

static int is_ours(request_rec *r)
{
    return mcp_is_ours(r);
}

static const mcp_dir_conf_t *dir_conf(request_rec *r)
{
    return mcp_dir_conf(r);
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
    mcp_refusal_withdrawn(r);
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
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "configuration changed after the fixups: checking %s again", r->uri);
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
    mcp_audit_count(r); /* accepted: counted before the backend answers */
    return mcp_authz_preflight_answer(r);
}

static int pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    mcp_gen_reset(pconf);
    mcp_conf_pre_config(pconf);
    mcp_shared_cache_pre_config();
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
    mcp_shared_cache_child_init(p, s);
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
    err = mcp_shared_cache_post_config(pconf, s);
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
    ap_hook_note_auth_failure(mcp_refusal_note_auth_failure, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(mcp_refusal_insert_error_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_header_parser(scrub_identity, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_header_parser(check_origin, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_fixups(before_handler, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(first_handler, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_insert_filter(mcp_toolscope_insert_filter, NULL, NULL, APR_HOOK_MIDDLE);
    /* SPEC 10: the metrics handler, mod_status's page, and the per-request
     * count and audit record, before mod_log_config writes the lines. */
    ap_hook_handler(mcp_metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_log_transaction(mcp_audit_log_transaction, NULL, NULL, APR_HOOK_FIRST);
    mcp_metrics_register_status();
    /* Require mcp-scope <scope>... and Require mcp-claim <$.path> <value>... */
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "mcp-scope", AUTHZ_PROVIDER_VERSION, &mcp_authz_scope_provider,
                              AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "mcp-claim", AUTHZ_PROVIDER_VERSION, &mcp_authz_claim_provider,
                              AP_AUTH_INTERNAL_PER_CONF);
    /* Our refusals' JSON content type, and CORS on them (added by the
     * error filter above); the body read for tool scopes, replayed. */
    ap_register_output_filter(MCP_JSON_ERROR_FILTER, mcp_refusal_json_error_filter, NULL, AP_FTYPE_RESOURCE);
    ap_register_output_filter(MCP_CORS_ERROR_FILTER, mcp_authz_cors_error_filter, NULL, AP_FTYPE_CONTENT_SET + 5);
    mcp_toolscope_kept_body_handle =
        ap_register_input_filter(MCP_KEPT_BODY_FILTER, mcp_toolscope_kept_body_filter, NULL, AP_FTYPE_RESOURCE);
}

/* clang-format off */
AP_DECLARE_MODULE(mcp_auth) = {
    STANDARD20_MODULE_STUFF,
    mcp_create_dir_conf,     /* dir config creater */
    mcp_merge_dir_conf,      /* dir merger --- default is to override */
    mcp_create_server_conf,  /* server config */
    mcp_merge_server_conf,   /* merge server config */
    mcp_cmds,                /* command apr_table_t */
    register_hooks,          /* register hooks */
    AP_MODULE_FLAG_NONE      /* flags */
};
/* clang-format on */
