/* SPDX-License-Identifier: Apache-2.0 */
/* The module's configuration as httpd holds it: per-directory settings,
 * the server-wide settings and the registry of trusted issuers. Shared by
 * the glue (mod_mcp_auth.c), the directive handlers and the request steps,
 * which read unset values only through the accessors below (conf.c): the
 * defaults live in src/defaults.h, "unset" is known here alone. */
#ifndef MCP_CONF_H
#define MCP_CONF_H

#include <apr_hash.h>
#include <apr_tables.h>
#include <httpd.h>
#include <http_config.h>

#include "defaults.h"
#include "introspect.h"
#include "jwk.h"
#include "keyring.h"
#include "scope_implies.h"
#include "verifier.h"

#define MCP_AUTH_TYPE "mcp-jwt"

/* Per-directory configuration; "unset" is NULL, MCP_UNSET (-1, conf.c) or
 * a *_set flag so a nested section inherits what it does not override;
 * outside conf.c and the directive handlers, read through the accessors. */
typedef struct {
    apr_array_header_t *issuers;   /* mcp_trusted_issuer_t */
    apr_array_header_t *audiences; /* const char * */
    const char *resource;
    unsigned alg_mask;
    int alg_set;
    const mcp_jwk_t *hmac_key;
    int skew;
    apr_array_header_t *required_claims; /* const char * */
    const char *token_type;
    const char *token_header;
    const char *remote_user_claim;
    long max_token_size;
    const char *location;                       /* <Location> path the directives were written in */
    const char *scope_claim;                    /* MCPAuthScopeClaim: its claims joined by spaces (a list in one
                                                 * string, so the fingerprint and memo cover it whole); NULL: scope then scp */
    apr_array_header_t *scopes_supported;       /* const char * */
    int resource_metadata;                      /* MCP_UNSET, 0 Off, 1 On */
    apr_array_header_t *tool_scopes;            /* mcp_tool_scope_t */
    apr_array_header_t *claim_headers;          /* mcp_claim_export_t */
    apr_array_header_t *claim_envs;             /* mcp_claim_export_t */
    int pass_token;                             /* MCP_UNSET, 0 Off, 1 On */
    int forward_token;                          /* MCP_UNSET, 0 Off, 1 On */
    const mcp_introspect_conf_t *introspection; /* MCPAuthIntrospection */
    int from_htaccess;                          /* a directive of ours came from .htaccess: request-pool data */
    int required_claims_add;                    /* set in .htaccess: adds to the inherited list, never replaces */
    apr_array_header_t *allowed_origins;        /* MCPAuthAllowedOrigins: canonical origins, or just "*"; NULL: own */
    mcp_scope_implies_t *scope_implies; /* MCPAuthScopeImplies with its closure; NULL: none (never from .htaccess) */
    const char *scope_request_prefix;   /* MCPAuthScopeRequestPrefix; NULL: scopes spelled as configured */
} mcp_dir_conf_t;

typedef struct {
    const char *name; /* header name, or env name (upper-cased) */
    const char *expr; /* $, $.a, $.a.b */
} mcp_claim_export_t;

typedef struct {
    const char *tool;
    apr_array_header_t *scopes; /* const char * */
    int narrow_only;            /* from .htaccess: adds scopes, never replaces an inherited entry */
} mcp_tool_scope_t;

/* One configuration section (or a server's top level) holding our
 * directives, recorded at configuration time for the checks across
 * sections (HMAC length, usable ServerName) and never at request time. */
typedef struct {
    server_rec *server;
    const char *kind; /* "<Location", "<Directory", ...; NULL: the server's top level */
    const char *path; /* prefix path for <Location>/<Directory>, NULL otherwise */
    const mcp_dir_conf_t *conf;
    const char *where;             /* file:line of the first directive */
    const char *where_alg;         /* MCPAuthAlgorithms */
    const char *where_secret;      /* MCPAuthHMACSecret */
    const char *where_audience;    /* MCPAuthAudience (startup warnings) */
    const char *where_user_claim;  /* MCPAuthRemoteUserClaim */
    const char *where_max_token;   /* MCPAuthMaxTokenSize */
    const ap_directive_t *section; /* the section's own directive; NULL: top level */
} mcp_section_t;

/* Server-wide settings (httpd's server config: create_server_conf and
 * merge_server_conf in conf.c). Every one is process-wide -- the one
 * shared-memory store, keyrings shared by every virtual host, the outbound
 * call limits, one log limiter per process -- so each directive is refused
 * inside <VirtualHost> (GLOBAL_ONLY) and every virtual host reads the main
 * server's values. Holds values, never "unset": the defaults are filled in
 * when it is created. */
typedef struct {
    mcp_fetch_settings_t fetch;               /* JWKS TTL, cooldown, max stale; HTTP timeout, TLS, max size */
    unsigned cache_entries;                   /* MCPAuthCacheEntries */
    apr_size_t cache_entry_size;              /* MCPAuthCacheEntrySize */
    apr_interval_time_t token_ttl;            /* MCPAuthTokenCacheTTL; 0 disables */
    apr_interval_time_t refusal_log_interval; /* MCPAuthRefusalLogInterval; 0 logs every refusal */
} mcp_server_conf_t;

/* Bookkeeping of one configuration generation (reset by pre_config): what
 * the directive handlers record while httpd reads the files, for the
 * checks across sections, the startup warnings, the identity scrub, the
 * root metadata document and the shared-memory layout. None of it is a
 * setting (no directive sets a value here, nothing merges): it describes
 * the configuration as a whole, across servers and sections, which neither
 * a server nor a directory configuration can hold. */
typedef struct {
    apr_array_header_t *issuer_defs;          /* mcp_issuer_def_t, one per distinct issuer + key source */
    int any_hmac_secret;                      /* some section has MCPAuthHMACSecret */
    const char *hmac_without_secret;          /* "file:line" of a section allowing HS* without a secret */
    apr_hash_t *locations;                    /* server_rec * -> apr_array_header_t of <Location> paths */
    apr_hash_t *identity_headers;             /* server_rec * -> apr_array_header_t of MCPAuthClaimHeader names */
    apr_array_header_t *sections;             /* mcp_section_t * */
    apr_hash_t *section_of;                   /* mcp_dir_conf_t * -> mcp_section_t * */
    apr_array_header_t *warnings;             /* const char *: startup warnings found while reading */
    mcp_scope_implies_memo_t *implies_merged; /* MCPAuthScopeImplies of nested sections, merged by check_config */
    apr_pool_t *pconf;
} mcp_config_gen_t;

typedef struct {
    const char *issuer;
    const char *jwks_uri;
    const char *jwks_file;
    const char *introspection_endpoint;
    mcp_keyring_t *ring;
} mcp_issuer_def_t;

extern module AP_MODULE_DECLARE_DATA mcp_auth_module;
extern mcp_config_gen_t mcp_gen;

/* Empty bookkeeping for a configuration generation (pre_config). */
void mcp_gen_reset(apr_pool_t *pconf);

/* httpd's configuration callbacks (conf.c), named in the module record. */
void *mcp_create_dir_conf(apr_pool_t *p, char *dir);
void *mcp_merge_dir_conf(apr_pool_t *p, void *basev, void *addv);
void *mcp_create_server_conf(apr_pool_t *p, server_rec *s);
void *mcp_merge_server_conf(apr_pool_t *p, void *basev, void *addv);
/* pre_config: remembers a blank directory configuration (merge shortcut). */
void mcp_conf_pre_config(apr_pool_t *pconf);

/* The server-wide settings that apply to s (the main server's). */
const mcp_server_conf_t *mcp_srv_conf(const server_rec *s);
/* The main server's, to fill in while the configuration is read. */
mcp_server_conf_t *mcp_srv_conf_main(void);

/* Per-directory values with unset ones resolved to their defaults. */
int mcp_conf_skew(const mcp_dir_conf_t *c);
size_t mcp_conf_max_token_size(const mcp_dir_conf_t *c);
unsigned mcp_conf_alg_mask(const mcp_dir_conf_t *c);
int mcp_conf_resource_metadata(const mcp_dir_conf_t *c);
int mcp_conf_pass_token(const mcp_dir_conf_t *c);
int mcp_conf_forward_token(const mcp_dir_conf_t *c);
/* Required claims: MCPAuthRequiredClaims, else "sub" for a JWT and nothing
 * beyond "active" for an introspection answer. */
const char *const *mcp_conf_required_claims(const mcp_dir_conf_t *c, int introspection, int *n);

/* Directive handlers (directives.c). */
const char *mcp_cmd_issuer(cmd_parms *cmd, void *dconf, const char *args);
const char *mcp_cmd_audience(cmd_parms *cmd, void *dconf, const char *arg);
const char *mcp_cmd_resource(cmd_parms *cmd, void *dconf, const char *arg);
const char *mcp_cmd_algorithms(cmd_parms *cmd, void *dconf, const char *arg);
const char *mcp_cmd_hmac_secret(cmd_parms *cmd, void *dconf, const char *arg);
const char *mcp_cmd_clock_skew(cmd_parms *cmd, void *dconf, const char *arg);
const char *mcp_cmd_required_claims(cmd_parms *cmd, void *dconf, const char *arg);
const char *mcp_cmd_dir_string(cmd_parms *cmd, void *dconf, const char *arg);
const char *mcp_cmd_dir_flag(cmd_parms *cmd, void *dconf, int on);
const char *mcp_cmd_token_header(cmd_parms *cmd, void *dconf, const char *arg);
const char *mcp_cmd_max_token_size(cmd_parms *cmd, void *dconf, const char *arg);
const char *mcp_cmd_scopes_supported(cmd_parms *cmd, void *dconf, const char *arg);
const char *mcp_cmd_tool_scope(cmd_parms *cmd, void *dconf, const char *args);
const char *mcp_cmd_introspection(cmd_parms *cmd, void *dconf, const char *args);
const char *mcp_cmd_claim_header(cmd_parms *cmd, void *dconf, const char *name, const char *expr);
const char *mcp_cmd_claim_env(cmd_parms *cmd, void *dconf, const char *name, const char *expr);
/* A server-wide number: where it goes in mcp_server_conf_t and what it
 * may be (the command table's cmd->info, so one handler reads them all). */
typedef enum { MCP_NUM_SECONDS, MCP_NUM_LONG, MCP_NUM_SIZE, MCP_NUM_UNSIGNED } mcp_num_kind_t;
typedef struct {
    apr_size_t offset;   /* APR_OFFSETOF(mcp_server_conf_t, ...) */
    mcp_num_kind_t kind; /* the field's type; SECONDS: apr_interval_time_t */
    long min, max;
    const char *range; /* "seconds from 1 to 300", for the refusal */
} mcp_srv_number_t;
const char *mcp_cmd_server_number(cmd_parms *cmd, void *dconf, const char *arg);
const char *mcp_cmd_ssl_verify(cmd_parms *cmd, void *dconf, int on);
const char *mcp_cmd_ca_file(cmd_parms *cmd, void *dconf, const char *arg);
const char *mcp_cmd_allowed_origins(cmd_parms *cmd, void *dconf, const char *arg);
const char *mcp_cmd_scope_implies(cmd_parms *cmd, void *dconf, const char *args);
const char *mcp_cmd_scope_claim(cmd_parms *cmd, void *dconf, const char *arg);
const char *mcp_cmd_remote_user_claim(cmd_parms *cmd, void *dconf, const char *arg);

/* Checks that need the whole configuration (check_config): HS* without a
 * secret, secrets too short for the merged algorithm set, protected
 * sections without a usable ServerName or MCPAuthResource. */
const char *mcp_config_check(apr_pool_t *p);

/* Startup warnings (plain http IdP URLs, MCPAuthAudience *). */
void mcp_config_warnings(server_rec *s);

/* Every MCPAuthClaimHeader name configured for the virtual host of r (its
 * sections and the main server's), for the identity scrub. */
const apr_array_header_t *mcp_identity_header_names(const server_rec *s);

/* A startup warning, kept until check_config logs it (configuration files
 * only: nothing is kept for .htaccess). */
void mcp_cmd_note_warning(cmd_parms *cmd, const char *text);

/* Why a rule that needs offline_access deserves a warning (challenges
 * never name that scope, MCP 2026-07-28). */
#define MCP_OFFLINE_ACCESS_UNASKED                                                                                     \
    "challenges never name offline_access, so a client without it cannot learn that it must ask for it"

/* True while httpd reads its configuration files, false in .htaccess. */
int mcp_cmd_at_config_time(const cmd_parms *cmd);

#endif
