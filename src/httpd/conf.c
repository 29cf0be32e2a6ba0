/* SPDX-License-Identifier: Apache-2.0 */
/* The configuration as httpd creates and merges it, and the one place that
 * knows what "unset" is: per-directory values stay unset (MCP_UNSET, NULL
 * or a *_set flag) so a nested section inherits what it does not override,
 * and the accessors below resolve them to the defaults of src/defaults.h.
 * Adding a directive: README, "Adding a directive". */
#include "conf.h"

#include <apr_strings.h>
#include <http_main.h>

#include "jose_alg.h"

/* An unset number or flag of mcp_dir_conf_t. */
#define MCP_UNSET (-1)

/* ---- per-directory configuration: create and merge ---------------- */

void *mcp_create_dir_conf(apr_pool_t *p, char *dir)
{
    mcp_dir_conf_t *c = apr_pcalloc(p, sizeof(*c));
    (void)dir;
    c->skew = MCP_UNSET;
    c->max_token_size = MCP_UNSET;
    c->resource_metadata = MCP_UNSET;
    c->pass_token = MCP_UNSET;
    c->forward_token = MCP_UNSET;
    return c;
}

#define MERGE(field, unset) (add->field != (unset) ? add->field : base->field)

/* Claim exports merge as a union: a child entry replaces only the parent's
 * entry for the same name (headers case-insensitively; env names are
 * already upper-cased), so a nested section never drops the parent's. */
static apr_array_header_t *merge_exports(apr_pool_t *p, const apr_array_header_t *base, const apr_array_header_t *add)
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
static apr_array_header_t *merge_required_claims(apr_pool_t *p, const mcp_dir_conf_t *base, const mcp_dir_conf_t *add)
{
    apr_array_header_t *out;
    if (!add->required_claims || !add->required_claims_add)
        return add->required_claims ? add->required_claims : base->required_claims;
    if (base->required_claims)
        out = apr_array_copy(p, base->required_claims);
    else {
        out = apr_array_make(p, add->required_claims->nelts + 1, sizeof(const char *));
        APR_ARRAY_PUSH(out, const char *) = MCP_DEFAULT_REQUIRED_CLAIM;
    }
    apr_array_cat(out, add->required_claims);
    return out;
}

/* A configuration with none of our directives, as create_dir_conf makes
 * it (pre_config): what httpd merges a protected <Location> onto, twice
 * per request (the location walk before and after the directory walk). */
static const mcp_dir_conf_t *blank_conf;

void mcp_conf_pre_config(apr_pool_t *pconf)
{
    blank_conf = mcp_create_dir_conf(pconf, NULL);
}

void *mcp_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
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
    c->skew = MERGE(skew, MCP_UNSET);
    c->from_htaccess = base->from_htaccess || add->from_htaccess;
    c->required_claims = merge_required_claims(p, base, add);
    c->required_claims_add = add->required_claims ? add->required_claims_add : base->required_claims_add;
    c->token_type = MERGE(token_type, NULL);
    c->token_header = MERGE(token_header, NULL);
    c->remote_user_claim = MERGE(remote_user_claim, NULL);
    c->max_token_size = MERGE(max_token_size, MCP_UNSET);
    c->location = MERGE(location, NULL);
    c->scope_claim = MERGE(scope_claim, NULL);
    c->scopes_supported = MERGE(scopes_supported, NULL);
    c->resource_metadata = MERGE(resource_metadata, MCP_UNSET);
    c->tool_scopes = merge_tool_scopes(p, base->tool_scopes, add->tool_scopes);
    c->claim_headers = merge_exports(p, base->claim_headers, add->claim_headers);
    c->claim_envs = merge_exports(p, base->claim_envs, add->claim_envs);
    c->pass_token = MERGE(pass_token, MCP_UNSET);
    c->forward_token = MERGE(forward_token, MCP_UNSET);
    c->introspection = MERGE(introspection, NULL);
    c->allowed_origins = MERGE(allowed_origins, NULL);
    c->scope_request_prefix = MERGE(scope_request_prefix, NULL);
    /* One side's closure is shared; a pair check_config merged comes from
     * its memo; only other pairs (rare) build a merged closure here. */
    c->scope_implies = (mcp_scope_implies_t *)mcp_scope_implies_merge_memo(
        mcp_gen.implies_merged, 0, p, base->scope_implies, add->scope_implies, NULL);
    return c;
}

/* ---- per-directory values, unset resolved ---------------------------- */

int mcp_conf_skew(const mcp_dir_conf_t *c)
{
    return c->skew != MCP_UNSET ? c->skew : MCP_DEFAULT_CLOCK_SKEW;
}

size_t mcp_conf_max_token_size(const mcp_dir_conf_t *c)
{
    return c->max_token_size != MCP_UNSET ? (size_t)c->max_token_size : MCP_DEFAULT_MAX_TOKEN_SIZE;
}

unsigned mcp_conf_alg_mask(const mcp_dir_conf_t *c)
{
    return c->alg_set ? c->alg_mask : MCP_ALG_MASK_DEFAULT;
}

int mcp_conf_resource_metadata(const mcp_dir_conf_t *c)
{
    return c->resource_metadata != MCP_UNSET ? c->resource_metadata : MCP_DEFAULT_RESOURCE_METADATA;
}

int mcp_conf_pass_token(const mcp_dir_conf_t *c)
{
    return c->pass_token != MCP_UNSET ? c->pass_token : MCP_DEFAULT_PASS_TOKEN;
}

int mcp_conf_forward_token(const mcp_dir_conf_t *c)
{
    return c->forward_token != MCP_UNSET ? c->forward_token : MCP_DEFAULT_FORWARD_TOKEN;
}

const char *const *mcp_conf_required_claims(const mcp_dir_conf_t *c, int introspection, int *n)
{
    static const char *const jwt_default[] = {MCP_DEFAULT_REQUIRED_CLAIM};
    if (c->required_claims) {
        *n = c->required_claims->nelts;
        return (const char *const *)c->required_claims->elts;
    }
    *n = introspection ? 0 : 1;
    return jwt_default;
}

/* ---- server-wide configuration ---------------------------------------- */

/* The defaults, whole: the server configuration holds values only (see
 * mcp_server_conf_t). */
void *mcp_create_server_conf(apr_pool_t *p, server_rec *s)
{
    mcp_server_conf_t *c = apr_pcalloc(p, sizeof(*c));
    (void)s;
    c->fetch.ttl = apr_time_from_sec(MCP_DEFAULT_JWKS_CACHE_TTL);
    c->fetch.cooldown = apr_time_from_sec(MCP_DEFAULT_JWKS_REFRESH_COOLDOWN);
    c->fetch.max_stale = apr_time_from_sec(MCP_DEFAULT_JWKS_MAX_STALE);
    c->fetch.http.timeout_s = MCP_DEFAULT_HTTP_TIMEOUT;
    c->fetch.http.ssl_verify = MCP_DEFAULT_SSL_VERIFY;
    c->fetch.http.ca_file = NULL;
    c->fetch.http.max_size = MCP_DEFAULT_JWKS_MAX_SIZE;
    c->cache_entries = MCP_DEFAULT_CACHE_ENTRIES;
    c->cache_entry_size = MCP_DEFAULT_CACHE_ENTRY_SIZE;
    c->token_ttl = apr_time_from_sec(MCP_DEFAULT_TOKEN_CACHE_TTL);
    c->refusal_log_interval = apr_time_from_sec(MCP_DEFAULT_REFUSAL_LOG_INTERVAL);
    return c;
}

/* A virtual host gets the main server's settings, the same object: every
 * server-wide directive is refused inside <VirtualHost> (they are all
 * process-wide, see mcp_server_conf_t), and the keyrings read the main
 * server's fetch settings through a pointer taken while reading. httpd
 * calls this only for a virtual host with a directive of ours (its other
 * hosts share the main server's vector entry already). */
void *mcp_merge_server_conf(apr_pool_t *p, void *basev, void *addv)
{
    (void)p;
    (void)addv;
    return basev;
}

const mcp_server_conf_t *mcp_srv_conf(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &mcp_auth_module);
}

/* ap_server_conf is the main server of the configuration being read:
 * httpd sets it (ap_read_config) before it processes the directives. */
mcp_server_conf_t *mcp_srv_conf_main(void)
{
    return ap_get_module_config(ap_server_conf->module_config, &mcp_auth_module);
}
