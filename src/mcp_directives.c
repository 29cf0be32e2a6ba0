/* Directive handlers: every configuration mistake is refused here, at
 * configtest time, with a message that names the directive. */
#include "mcp_conf.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_uri.h>
#include <http_log.h>
#include <openssl/evp.h>
#include <string.h>

#include "json_util.h"
#include "propagate.h"

APLOG_USE_MODULE(mcp_auth);

mcp_global_t mcp_global;

void mcp_global_reset(apr_pool_t *pconf)
{
    memset(&mcp_global, 0, sizeof(mcp_global));
    mcp_global.pconf = pconf;
    mcp_global.issuer_defs = apr_array_make(pconf, 4, sizeof(mcp_issuer_def_t));
    mcp_global.locations = apr_hash_make(pconf);
    mcp_global.fetch.ttl = apr_time_from_sec(86400);
    mcp_global.fetch.cooldown = apr_time_from_sec(30);
    mcp_global.fetch.max_stale = apr_time_from_sec(604800);
    mcp_global.fetch.http.timeout_s = 5;
    mcp_global.fetch.http.ssl_verify = 1;
    mcp_global.fetch.http.ca_file = NULL;
    mcp_global.fetch.http.max_size = 65536;
    mcp_global.cache_entries = 4096;
    mcp_global.cache_entry_size = 4096;
    mcp_global.token_ttl = apr_time_from_sec(300);
}

/* Remembers which <Location> the directives of this section belong to:
 * the default resource URI is built from it. */
static void note_section(cmd_parms *cmd, mcp_dir_conf_t *conf)
{
    const ap_directive_t *sec = cmd->directive ? cmd->directive->parent : NULL;
    apr_array_header_t *paths;
    int i;

    if (!sec || strcasecmp(sec->directive, "<Location") != 0 || !cmd->path || cmd->path[0] != '/')
        return;
    conf->location = cmd->path;
    /* Remembered per virtual host for the root metadata document. Not from
     * .htaccess (request time): those are never <Location> sections. */
    paths = apr_hash_get(mcp_global.locations, &cmd->server, sizeof(cmd->server));
    if (!paths) {
        server_rec **key = apr_palloc(mcp_global.pconf, sizeof(*key));
        *key = cmd->server;
        paths = apr_array_make(mcp_global.pconf, 2, sizeof(const char *));
        apr_hash_set(mcp_global.locations, key, sizeof(*key), paths);
    }
    for (i = 0; i < paths->nelts; i++)
        if (strcmp(APR_ARRAY_IDX(paths, i, const char *), cmd->path) == 0)
            return;
    APR_ARRAY_PUSH(paths, const char *) = apr_pstrdup(mcp_global.pconf, cmd->path);
}

static const char *where(cmd_parms *cmd)
{
    if (!cmd->directive)
        return "";
    return apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename, cmd->directive->line_num);
}

/* An absolute http(s) URL with a host, no fragment. */
static const char *check_url(cmd_parms *cmd, const char *what, const char *url)
{
    apr_uri_t u;
    if (apr_uri_parse(cmd->pool, url, &u) != APR_SUCCESS || !u.scheme || !u.hostname || !*u.hostname ||
        (strcasecmp(u.scheme, "https") != 0 && strcasecmp(u.scheme, "http") != 0) || u.fragment)
        return apr_psprintf(cmd->pool, "%s: %s is not an absolute http(s) URL: %s", cmd->cmd->name, what, url);
    return NULL;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    apr_int64_t v;
    if (!s || !*s)
        return -1;
    v = apr_strtoi64(s, &end, 10);
    if (*end || v < min || v > max)
        return -1;
    *out = (long)v;
    return 0;
}

static mcp_keyring_t *ring_for(cmd_parms *cmd, mcp_issuer_def_t *def)
{
    mcp_issuer_def_t *defs = (mcp_issuer_def_t *)mcp_global.issuer_defs->elts;
    int i;
    /* One keyring per issuer and key source, shared by every location. */
    for (i = 0; i < mcp_global.issuer_defs->nelts; i++) {
        if (strcmp(defs[i].issuer, def->issuer) == 0 && !apr_strnatcmp(defs[i].jwks_uri ? defs[i].jwks_uri : "",
                                                                      def->jwks_uri ? def->jwks_uri : "") &&
            !apr_strnatcmp(defs[i].jwks_file ? defs[i].jwks_file : "", def->jwks_file ? def->jwks_file : ""))
            return defs[i].ring;
    }
    def->ring = mcp_keyring_create(mcp_global.pconf, def->issuer, def->jwks_uri, def->jwks_file, &mcp_global.fetch);
    *(mcp_issuer_def_t *)apr_array_push(mcp_global.issuer_defs) = *def;
    (void)cmd;
    return def->ring;
}

/* A jwks_file must be readable and hold usable keys already at configtest.
 * Its content digest names the keys in the verdict caches' fingerprint. */
static const char *check_jwks_file(cmd_parms *cmd, const char *path, unsigned char sha256[32])
{
    mcp_http_resp_t resp;
    mcp_jwks_t *set;
    const char *err = NULL;

    if (mcp_file_read(cmd->temp_pool, path, 1 << 20, &resp, &err))
        return apr_psprintf(cmd->pool, "MCPAuthIssuer: cannot read jwks_file %s: %s", path, err);
    if (mcp_jwks_parse(cmd->temp_pool, resp.body, resp.len, &set, &err))
        return apr_psprintf(cmd->pool, "MCPAuthIssuer: jwks_file %s has no usable key: %s", path, err);
    EVP_Digest(resp.body, resp.len, sha256, NULL, EVP_sha256(), NULL);
    return NULL;
}

/* The next key=value word of a directive line: *key NULL at the end.
 * key="value with spaces" arrives with its quotes: they are dropped. */
static const char *next_option(cmd_parms *cmd, const char **args, const char **key, const char **val)
{
    const char *word = ap_getword_conf(cmd->temp_pool, args), *eq;
    char *v;
    size_t vlen;

    *key = *val = NULL;
    if (!*word)
        return NULL;
    eq = strchr(word, '=');
    *key = eq ? apr_pstrmemdup(cmd->pool, word, (apr_size_t)(eq - word)) : apr_pstrdup(cmd->pool, word);
    v = eq ? apr_pstrdup(cmd->pool, eq + 1) : NULL;
    vlen = v ? strlen(v) : 0;
    if (vlen >= 2 && (v[0] == '"' || v[0] == '\'') && v[vlen - 1] == v[0]) {
        v[vlen - 1] = '\0';
        v++;
    }
    if (!v || !*v)
        return apr_psprintf(cmd->pool, "%s: option %s needs a value (key=value)", cmd->cmd->name, *key);
    *val = v;
    return NULL;
}

const char *mcp_cmd_issuer(cmd_parms *cmd, void *dconf, const char *args)
{
    mcp_dir_conf_t *conf = dconf;
    mcp_issuer_def_t def;
    mcp_trusted_issuer_t *ti;
    const char *key, *val, *err;
    unsigned char file_sha256[32] = {0};

    memset(&def, 0, sizeof(def));
    def.issuer = ap_getword_conf(cmd->pool, &args);
    if (!*def.issuer)
        return "MCPAuthIssuer needs an issuer URL";
    if ((err = check_url(cmd, "issuer", def.issuer)))
        return err;
    while ((err = next_option(cmd, &args, &key, &val)) == NULL && key) {
        if (strcmp(key, "jwks_uri") == 0) {
            if ((err = check_url(cmd, "jwks_uri", val)))
                return err;
            def.jwks_uri = val;
        }
        else if (strcmp(key, "jwks_file") == 0) {
            def.jwks_file = ap_server_root_relative(cmd->pool, val);
            if (!def.jwks_file)
                return apr_psprintf(cmd->pool, "MCPAuthIssuer: bad jwks_file path %s", val);
            if ((err = check_jwks_file(cmd, def.jwks_file, file_sha256)))
                return err;
        }
        else if (strcmp(key, "introspection_endpoint") == 0) {
            if ((err = check_url(cmd, "introspection_endpoint", val)))
                return err;
            def.introspection_endpoint = val;
        }
        else {
            return apr_psprintf(cmd->pool,
                                "MCPAuthIssuer: unknown option %s (known: jwks_uri, jwks_file, "
                                "introspection_endpoint)",
                                key);
        }
    }
    if (err)
        return err;
    if (def.jwks_uri && def.jwks_file)
        return "MCPAuthIssuer: give jwks_uri or jwks_file, not both";

    note_section(cmd, conf);
    if (!conf->issuers)
        conf->issuers = apr_array_make(cmd->pool, 2, sizeof(mcp_trusted_issuer_t));
    ti = apr_array_push(conf->issuers);
    ti->issuer = def.issuer;
    ti->keys = NULL;
    ti->introspection_endpoint = def.introspection_endpoint;
    ti->ring = ring_for(cmd, &def);
    ti->jwks_uri = def.jwks_uri;
    ti->jwks_file = def.jwks_file;
    memcpy(ti->jwks_file_sha256, file_sha256, sizeof(file_sha256));
    return NULL;
}

const char *mcp_cmd_audience(cmd_parms *cmd, void *dconf, const char *arg)
{
    mcp_dir_conf_t *conf = dconf;
    note_section(cmd, conf);
    if (!conf->audiences)
        conf->audiences = apr_array_make(cmd->pool, 2, sizeof(const char *));
    /* "*" alone: tokens without an audience (AWS Cognito access tokens). */
    if ((strcmp(arg, "*") == 0 && conf->audiences->nelts > 0) ||
        (conf->audiences->nelts == 1 && strcmp(APR_ARRAY_IDX(conf->audiences, 0, const char *), "*") == 0))
        return "MCPAuthAudience: \"*\" (audience not checked) must stand alone";
    *(const char **)apr_array_push(conf->audiences) = arg;
    return NULL;
}

const char *mcp_cmd_resource(cmd_parms *cmd, void *dconf, const char *arg)
{
    mcp_dir_conf_t *conf = dconf;
    const char *err = check_url(cmd, "resource", arg);
    if (err)
        return err;
    note_section(cmd, conf);
    conf->resource = arg;
    return NULL;
}

static const char *hmac_fits(cmd_parms *cmd, const mcp_dir_conf_t *conf)
{
    int a;
    if (!conf->hmac_key || !conf->alg_set)
        return NULL;
    for (a = MCP_ALG_HS256; a <= MCP_ALG_HS512; a++)
        if ((conf->alg_mask & MCP_ALG_BIT(a)) && conf->hmac_key->secret_len < mcp_alg_hash_len((mcp_alg)a))
            return apr_psprintf(cmd->pool, "MCPAuthHMACSecret is %lu bytes: %s needs at least %lu",
                                (unsigned long)conf->hmac_key->secret_len, mcp_alg_name((mcp_alg)a),
                                (unsigned long)mcp_alg_hash_len((mcp_alg)a));
    return NULL;
}

const char *mcp_cmd_algorithms(cmd_parms *cmd, void *dconf, const char *arg)
{
    mcp_dir_conf_t *conf = dconf;
    mcp_alg alg = mcp_alg_from_name(arg);

    if (strcasecmp(arg, "none") == 0)
        return "MCPAuthAlgorithms: \"none\" can never be allowed";
    if (alg == MCP_ALG_UNKNOWN)
        return apr_psprintf(cmd->pool,
                            "MCPAuthAlgorithms: unknown algorithm %s (known: RS256 RS384 RS512 PS256 PS384 PS512 "
                            "ES256 ES384 ES512 EdDSA HS256 HS384 HS512)",
                            arg);
    note_section(cmd, conf);
    if (!conf->alg_set) {
        conf->alg_set = 1;
        conf->alg_mask = 0;
    }
    conf->alg_mask |= MCP_ALG_BIT(alg);
    if (mcp_alg_kty(alg) == MCP_KTY_OCT && !conf->hmac_key && !mcp_global.hmac_without_secret)
        mcp_global.hmac_without_secret = where(cmd);
    return hmac_fits(cmd, conf);
}

const char *mcp_cmd_hmac_secret(cmd_parms *cmd, void *dconf, const char *arg)
{
    mcp_dir_conf_t *conf = dconf;
    size_t len = strlen(arg);
    if (len == 0)
        return "MCPAuthHMACSecret must not be empty";
    note_section(cmd, conf);
    conf->hmac_key = mcp_jwk_from_secret(cmd->pool, (const unsigned char *)arg, len);
    mcp_global.any_hmac_secret = 1;
    /* Shorter than the shortest HMAC output is useless for every HS alg. */
    if (len < 32)
        return apr_psprintf(cmd->pool, "MCPAuthHMACSecret is %lu bytes: HS256 needs at least 32",
                            (unsigned long)len);
    return hmac_fits(cmd, conf);
}

const char *mcp_cmd_clock_skew(cmd_parms *cmd, void *dconf, const char *arg)
{
    mcp_dir_conf_t *conf = dconf;
    long v;
    if (parse_long(arg, 0, 86400, &v))
        return "MCPAuthClockSkew takes seconds from 0 to 86400";
    note_section(cmd, conf);
    conf->skew = (int)v;
    return NULL;
}

const char *mcp_cmd_required_claims(cmd_parms *cmd, void *dconf, const char *arg)
{
    mcp_dir_conf_t *conf = dconf;
    note_section(cmd, conf);
    if (!conf->required_claims)
        conf->required_claims = apr_array_make(cmd->pool, 2, sizeof(const char *));
    /* "none" alone: nothing beyond exp is required. */
    if (strcmp(arg, "none") != 0)
        *(const char **)apr_array_push(conf->required_claims) = arg;
    return NULL;
}

/* A per-directory string; cmd->info is the offset of the field. */
const char *mcp_cmd_dir_string(cmd_parms *cmd, void *dconf, const char *arg)
{
    mcp_dir_conf_t *conf = dconf;
    note_section(cmd, conf);
    *(const char **)((char *)conf + (apr_size_t)cmd->info) = arg;
    return NULL;
}

const char *mcp_cmd_token_header(cmd_parms *cmd, void *dconf, const char *arg)
{
    mcp_dir_conf_t *conf = dconf;
    const char *c;
    for (c = arg; *c; c++)
        if (!apr_isalnum(*c) && !strchr("!#$%&'*+-.^_`|~", *c))
            return apr_psprintf(cmd->pool, "MCPAuthTokenHeader: %s is not a valid header name", arg);
    if (!*arg || strcasecmp(arg, "Authorization") == 0)
        return "MCPAuthTokenHeader: name another header than Authorization";
    note_section(cmd, conf);
    conf->token_header = arg;
    return NULL;
}

const char *mcp_cmd_max_token_size(cmd_parms *cmd, void *dconf, const char *arg)
{
    mcp_dir_conf_t *conf = dconf;
    long v;
    if (parse_long(arg, 64, 1048576, &v))
        return "MCPAuthMaxTokenSize takes bytes from 64 to 1048576";
    note_section(cmd, conf);
    conf->max_token_size = v;
    return NULL;
}

const char *mcp_cmd_scopes_supported(cmd_parms *cmd, void *dconf, const char *arg)
{
    mcp_dir_conf_t *conf = dconf;
    note_section(cmd, conf);
    if (!conf->scopes_supported)
        conf->scopes_supported = apr_array_make(cmd->pool, 4, sizeof(const char *));
    APR_ARRAY_PUSH(conf->scopes_supported, const char *) = arg;
    return NULL;
}

const char *mcp_cmd_resource_metadata(cmd_parms *cmd, void *dconf, int on)
{
    mcp_dir_conf_t *conf = dconf;
    note_section(cmd, conf);
    conf->resource_metadata = on;
    return NULL;
}

const char *mcp_cmd_tool_scope(cmd_parms *cmd, void *dconf, const char *args)
{
    mcp_dir_conf_t *conf = dconf;
    mcp_tool_scope_t *ts;
    const char *word;

    note_section(cmd, conf);
    if (!conf->tool_scopes)
        conf->tool_scopes = apr_array_make(cmd->pool, 4, sizeof(mcp_tool_scope_t));
    ts = apr_array_push(conf->tool_scopes);
    ts->tool = ap_getword_conf(cmd->pool, &args);
    ts->scopes = apr_array_make(cmd->pool, 2, sizeof(const char *));
    if (!*ts->tool)
        return "MCPAuthToolScope needs a tool name and at least one scope";
    while (*(word = ap_getword_conf(cmd->pool, &args)))
        APR_ARRAY_PUSH(ts->scopes, const char *) = word;
    if (ts->scopes->nelts == 0)
        return apr_psprintf(cmd->pool, "MCPAuthToolScope %s: name at least one scope", ts->tool);
    return NULL;
}

const char *mcp_cmd_introspection(cmd_parms *cmd, void *dconf, const char *args)
{
    mcp_dir_conf_t *conf = dconf;
    mcp_introspect_conf_t *c = apr_pcalloc(cmd->pool, sizeof(*c));
    const char *url = ap_getword_conf(cmd->pool, &args), *key, *val, *err;
    long secs;

    c->auth = MCP_AUTH_BASIC;
    c->param = "token";
    c->cache = apr_time_from_sec(300);
    if (!*url)
        return "MCPAuthIntrospection needs the endpoint URL (or discover)";
    if (strcmp(url, "discover") != 0) {
        if ((err = check_url(cmd, "endpoint", url)))
            return err;
        c->url = url;
    }
    while ((err = next_option(cmd, &args, &key, &val)) == NULL && key) {
        if (strcmp(key, "auth") == 0) {
            if (strcmp(val, "client_secret_basic") == 0)
                c->auth = MCP_AUTH_BASIC;
            else if (strcmp(val, "client_secret_post") == 0)
                c->auth = MCP_AUTH_POST;
            else if (strcmp(val, "none") == 0)
                c->auth = MCP_AUTH_NONE;
            else
                return apr_psprintf(cmd->pool,
                                    "MCPAuthIntrospection: auth=%s (known: client_secret_basic, client_secret_post, "
                                    "none)",
                                    val);
        }
        else if (strcmp(key, "client_id") == 0)
            c->client_id = val;
        else if (strcmp(key, "client_secret") == 0)
            c->client_secret = val;
        else if (strcmp(key, "method") == 0) {
            if (strcasecmp(val, "POST") != 0 && strcasecmp(val, "GET") != 0)
                return "MCPAuthIntrospection: method=POST or method=GET";
            c->use_get = strcasecmp(val, "GET") == 0;
        }
        else if (strcmp(key, "param") == 0)
            c->param = val;
        else if (strcmp(key, "cache") == 0) {
            if (parse_long(val, 0, 86400, &secs))
                return "MCPAuthIntrospection: cache= takes seconds from 0 to 86400";
            c->cache = apr_time_from_sec(secs);
        }
        else
            return apr_psprintf(cmd->pool,
                                "MCPAuthIntrospection: unknown option %s (known: auth, client_id, client_secret, "
                                "method, param, cache)",
                                key);
    }
    if (err)
        return err;
    if (c->auth != MCP_AUTH_NONE && (!c->client_id || !c->client_secret))
        return "MCPAuthIntrospection: client_secret_basic and client_secret_post need client_id= and client_secret= "
               "(or auth=none)";
    note_section(cmd, conf);
    conf->introspection = c;
    return NULL;
}

/* $ (all claims), $.name or $.a.b: nothing else, so typos fail configtest. */
static int valid_claim_expr(const char *e)
{
    const char *c;
    if (strcmp(e, "$") == 0)
        return 1;
    if (strncmp(e, "$.", 2) != 0 || !e[2])
        return 0;
    for (c = e + 2; *c; c++)
        if (*c == '.' && (c[1] == '.' || c[1] == '\0'))
            return 0;
    return 1;
}

static const char *claim_export(cmd_parms *cmd, mcp_dir_conf_t *conf, apr_array_header_t **list, const char *name,
                                const char *expr, int is_env)
{
    mcp_claim_export_t *ex;
    const char *c;

    if (!valid_claim_expr(expr))
        return apr_psprintf(cmd->pool, "%s %s: %s is not a claim expression ($, $.name or $.a.b)", cmd->cmd->name,
                            name, expr);
    for (c = name; *c; c++)
        if (!(apr_isalnum(*c) || *c == '-' || *c == '_'))
            return apr_psprintf(cmd->pool, "%s: %s is not a valid %s name", cmd->cmd->name, name,
                                is_env ? "variable" : "header");
    if (!*name || (!is_env && strcasecmp(name, "Authorization") == 0))
        return apr_psprintf(cmd->pool, "%s: %s cannot be set from a claim", cmd->cmd->name, name);
    note_section(cmd, conf);
    if (!*list)
        *list = apr_array_make(cmd->pool, 4, sizeof(mcp_claim_export_t));
    ex = apr_array_push(*list);
    ex->name = is_env ? mcp_env_name(cmd->pool, name) : name;
    ex->expr = expr;
    return NULL;
}

const char *mcp_cmd_claim_header(cmd_parms *cmd, void *dconf, const char *name, const char *expr)
{
    mcp_dir_conf_t *conf = dconf;
    return claim_export(cmd, conf, &conf->claim_headers, name, expr, 0);
}

const char *mcp_cmd_claim_env(cmd_parms *cmd, void *dconf, const char *name, const char *expr)
{
    mcp_dir_conf_t *conf = dconf;
    return claim_export(cmd, conf, &conf->claim_envs, name, expr, 1);
}

const char *mcp_cmd_pass_token(cmd_parms *cmd, void *dconf, int on)
{
    mcp_dir_conf_t *conf = dconf;
    note_section(cmd, conf);
    conf->pass_token = on;
    return NULL;
}

const char *mcp_cmd_forward_token(cmd_parms *cmd, void *dconf, int on)
{
    mcp_dir_conf_t *conf = dconf;
    note_section(cmd, conf);
    conf->forward_token = on;
    return NULL;
}

/* Server-wide durations; cmd->info is the offset of the field. */
const char *mcp_cmd_server_seconds(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    long v, max = 365L * 86400;
    (void)dconf;
    if (err)
        return err;
    if (strcmp(cmd->cmd->name, "MCPAuthHTTPTimeout") == 0) {
        if (parse_long(arg, 1, 300, &v))
            return "MCPAuthHTTPTimeout takes seconds from 1 to 300";
        mcp_global.fetch.http.timeout_s = v;
        return NULL;
    }
    if (strcmp(cmd->cmd->name, "MCPAuthTokenCacheTTL") == 0) {
        if (parse_long(arg, 0, 86400, &v))
            return "MCPAuthTokenCacheTTL takes seconds from 0 (off) to 86400";
        mcp_global.token_ttl = apr_time_from_sec(v);
        return NULL;
    }
    if (parse_long(arg, strcmp(cmd->cmd->name, "MCPAuthJWKSCacheTTL") == 0 ? 1 : 0, max, &v))
        return apr_psprintf(cmd->pool, "%s takes seconds from 0 to %ld", cmd->cmd->name, max);
    *(apr_interval_time_t *)((char *)&mcp_global.fetch + (apr_size_t)cmd->info) = apr_time_from_sec(v);
    return NULL;
}

const char *mcp_cmd_jwks_max_size(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    long v;
    (void)dconf;
    if (err)
        return err;
    if (parse_long(arg, 1024, 16L << 20, &v))
        return "MCPAuthJWKSMaxSize takes bytes from 1024 to 16777216";
    mcp_global.fetch.http.max_size = (size_t)v;
    return NULL;
}

const char *mcp_cmd_cache_entries(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    long v;
    (void)dconf;
    if (err)
        return err;
    if (parse_long(arg, 8, 4L << 20, &v))
        return "MCPAuthCacheEntries takes a number from 8 to 4194304";
    mcp_global.cache_entries = (unsigned)v;
    return NULL;
}

const char *mcp_cmd_cache_entry_size(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    long v;
    (void)dconf;
    if (err)
        return err;
    if (parse_long(arg, 512, 1L << 20, &v))
        return "MCPAuthCacheEntrySize takes bytes from 512 to 1048576";
    mcp_global.cache_entry_size = (apr_size_t)v;
    return NULL;
}

const char *mcp_cmd_ssl_verify(cmd_parms *cmd, void *dconf, int on)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    (void)dconf;
    if (err)
        return err;
    mcp_global.fetch.http.ssl_verify = on;
    return NULL;
}

const char *mcp_cmd_ca_file(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *path;
    apr_finfo_t fi;
    (void)dconf;
    if (err)
        return err;
    path = ap_server_root_relative(cmd->pool, arg);
    if (!path || apr_stat(&fi, path, APR_FINFO_TYPE, cmd->temp_pool) != APR_SUCCESS || fi.filetype != APR_REG)
        return apr_psprintf(cmd->pool, "MCPAuthCAFile: %s is not a readable file", arg);
    mcp_global.fetch.http.ca_file = path;
    return NULL;
}

const char *mcp_config_check(apr_pool_t *p)
{
    if (mcp_global.hmac_without_secret && !mcp_global.any_hmac_secret)
        return apr_psprintf(p, "MCPAuthAlgorithms at %s allows HS256/384/512 but no MCPAuthHMACSecret is set",
                            mcp_global.hmac_without_secret);
    return NULL;
}

void mcp_config_warnings(server_rec *s)
{
    mcp_issuer_def_t *defs = (mcp_issuer_def_t *)mcp_global.issuer_defs->elts;
    int i;
    for (i = 0; i < mcp_global.issuer_defs->nelts; i++) {
        const char *urls[] = {defs[i].issuer, defs[i].jwks_uri, defs[i].introspection_endpoint};
        int j;
        for (j = 0; j < 3; j++)
            if (urls[j] && strncasecmp(urls[j], "http://", 7) == 0)
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                             "MCPAuthIssuer: %s uses plain http: keys and tokens can be tampered with in transit",
                             urls[j]);
    }
    if (!mcp_global.fetch.http.ssl_verify)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "MCPAuthSSLVerify Off: IdP certificates are not verified; use only for testing");
}
