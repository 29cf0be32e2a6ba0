/* SPDX-License-Identifier: Apache-2.0 */
/* Directive handlers: every configuration mistake is refused here, at
 * configtest time, with a message that names the directive. */
#include "conf.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_uri.h>
#include <http_log.h>
#include <http_main.h>
#include <string.h>
#include <util_cfgtree.h>

#include "json_util.h"
#include "authz.h"
#include "propagate.h"
#include "sha256.h"

APLOG_USE_MODULE(mcp_auth);

/* See mcp_config_gen_t: bookkeeping, not settings. */
mcp_config_gen_t mcp_gen;

void mcp_gen_reset(apr_pool_t *pconf)
{
    memset(&mcp_gen, 0, sizeof(mcp_gen));
    mcp_gen.pconf = pconf;
    mcp_gen.issuer_defs = apr_array_make(pconf, 4, sizeof(mcp_issuer_def_t));
    mcp_gen.locations = apr_hash_make(pconf);
    mcp_gen.identity_headers = apr_hash_make(pconf);
    mcp_gen.sections = apr_array_make(pconf, 8, sizeof(mcp_section_t *));
    mcp_gen.section_of = apr_hash_make(pconf);
    mcp_gen.warnings = apr_array_make(pconf, 2, sizeof(const char *));
    mcp_gen.implies_merged = mcp_scope_implies_memo_make(pconf);
}

int mcp_cmd_at_config_time(const cmd_parms *cmd)
{
    /* httpd reads its own files with RSRC_CONF (top level, <VirtualHost>)
     * or ACCESS_CONF (sections) in the override mask; .htaccess files are
     * read per request with only their AllowOverride bits. */
    return (cmd->override & (RSRC_CONF | ACCESS_CONF)) != 0;
}

static const char *where(cmd_parms *cmd);

/* Is d a per-directory section (its settings merge per request)? */
static int is_dir_section(const ap_directive_t *d)
{
    static const char *const kinds[] = {"<Location", "<LocationMatch", "<Directory",  "<DirectoryMatch",
                                        "<Files",    "<FilesMatch",    "<If",         "<ElseIf",
                                        "<Else",     "<Proxy",         "<ProxyMatch", NULL};
    int i;
    for (i = 0; kinds[i]; i++)
        if (strcasecmp(d->directive, kinds[i]) == 0)
            return 1;
    return 0;
}

/* The innermost per-directory section around the current directive. */
static const ap_directive_t *enclosing_section(cmd_parms *cmd)
{
    const ap_directive_t *d;
    for (d = cmd->directive ? cmd->directive->parent : NULL; d; d = d->parent) {
        if (strcasecmp(d->directive, "<VirtualHost") == 0)
            return NULL;
        if (is_dir_section(d))
            return d;
    }
    return NULL;
}

/* Records the section (or server top level) once, for the checks across
 * sections; NULL in .htaccess: nothing request-time goes into pconf. */
static mcp_section_t *record_section(cmd_parms *cmd, const mcp_dir_conf_t *conf, const ap_directive_t *sec)
{
    mcp_section_t *rec;
    const char *kind = sec ? sec->directive : NULL;

    if (!mcp_cmd_at_config_time(cmd))
        return NULL;
    rec = apr_hash_get(mcp_gen.section_of, &conf, sizeof(conf));
    if (rec)
        return rec;
    rec = apr_pcalloc(mcp_gen.pconf, sizeof(*rec));
    rec->server = cmd->server;
    rec->kind = kind;
    rec->conf = conf;
    rec->where = apr_pstrdup(mcp_gen.pconf, where(cmd));
    rec->section = sec;
    /* Only plain <Location /path> and <Directory /path> nest by prefix;
     * regular expressions and the rest are checked on their own. */
    if (kind && cmd->path && (strcasecmp(kind, "<Location") == 0 || strcasecmp(kind, "<Directory") == 0) &&
        !(sec->args && sec->args[0] == '~'))
        rec->path = apr_pstrdup(mcp_gen.pconf, cmd->path);
    {
        const mcp_dir_conf_t **key = apr_palloc(mcp_gen.pconf, sizeof(*key));
        *key = conf;
        apr_hash_set(mcp_gen.section_of, key, sizeof(*key), rec);
    }
    APR_ARRAY_PUSH(mcp_gen.sections, mcp_section_t *) = rec;
    return rec;
}

/* Adds value (once, as same() sees it) to the per-server list of h; all of
 * it lives in pconf, so only at configuration time. */
static void server_list_add(apr_hash_t *h, server_rec *s, const char *value, int (*same)(const char *, const char *))
{
    apr_array_header_t *list = apr_hash_get(h, &s, sizeof(s));
    int i;
    if (!list) {
        server_rec **key = apr_palloc(mcp_gen.pconf, sizeof(*key));
        *key = s;
        list = apr_array_make(mcp_gen.pconf, 4, sizeof(const char *));
        apr_hash_set(h, key, sizeof(*key), list);
    }
    for (i = 0; i < list->nelts; i++)
        if (same(APR_ARRAY_IDX(list, i, const char *), value) == 0)
            return;
    APR_ARRAY_PUSH(list, const char *) = apr_pstrdup(mcp_gen.pconf, value);
}

/* Remembers which <Location> the directives of this section belong to (the
 * default resource URI is built from it) and records the section for the
 * checks across sections. Allocates from pconf only at configuration
 * time: in .htaccess (request time) it returns NULL without a trace. */
static mcp_section_t *note_section(cmd_parms *cmd, mcp_dir_conf_t *conf)
{
    const ap_directive_t *sec = enclosing_section(cmd);
    mcp_section_t *rec;

    if (!mcp_cmd_at_config_time(cmd)) {
        conf->from_htaccess = 1;
        return NULL;
    }
    rec = record_section(cmd, conf, sec);
    if (!sec || strcasecmp(sec->directive, "<Location") != 0 || !cmd->path || cmd->path[0] != '/')
        return rec;
    conf->location = cmd->path;
    /* Remembered per virtual host for the root metadata document. */
    server_list_add(mcp_gen.locations, cmd->server, cmd->path, strcmp);
    return rec;
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
    mcp_issuer_def_t *defs = (mcp_issuer_def_t *)mcp_gen.issuer_defs->elts;
    int i;
    /* One keyring per issuer and key source, shared by every location. */
    for (i = 0; i < mcp_gen.issuer_defs->nelts; i++) {
        if (strcmp(defs[i].issuer, def->issuer) == 0 &&
            !apr_strnatcmp(defs[i].jwks_uri ? defs[i].jwks_uri : "", def->jwks_uri ? def->jwks_uri : "") &&
            !apr_strnatcmp(defs[i].jwks_file ? defs[i].jwks_file : "", def->jwks_file ? def->jwks_file : ""))
            return defs[i].ring;
    }
    /* The main server's settings, read when keys are fetched: those written
     * after this line count too. */
    def->ring =
        mcp_keyring_create(mcp_gen.pconf, def->issuer, def->jwks_uri, def->jwks_file, &mcp_srv_conf_main()->fetch);
    *(mcp_issuer_def_t *)apr_array_push(mcp_gen.issuer_defs) = *def;
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
    mcp_sha256(resp.body, resp.len, sha256);
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
    apr_array_header_t *aliases = apr_array_make(cmd->pool, 1, sizeof(const char *));

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
        else if (strcmp(key, "alias") == 0) {
            /* An exact iss spelling, not necessarily a URL (accounts.google.com). */
            if (strcmp(val, def.issuer) == 0)
                return apr_psprintf(cmd->pool, "MCPAuthIssuer: alias=%s is the issuer itself", val);
            APR_ARRAY_PUSH(aliases, const char *) = val;
        }
        else {
            return apr_psprintf(cmd->pool,
                                "MCPAuthIssuer: unknown option %s (known: jwks_uri, jwks_file, "
                                "introspection_endpoint, alias)",
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
    ti->aliases = (const char *const *)aliases->elts;
    ti->n_aliases = aliases->nelts;
    return NULL;
}

/* A warning for the startup log, kept until check_config prints it. */
void mcp_cmd_note_warning(cmd_parms *cmd, const char *text)
{
    if (mcp_cmd_at_config_time(cmd))
        APR_ARRAY_PUSH(mcp_gen.warnings, const char *) = apr_pstrdup(mcp_gen.pconf, text);
}

const char *mcp_cmd_audience(cmd_parms *cmd, void *dconf, const char *arg)
{
    mcp_dir_conf_t *conf = dconf;
    mcp_section_t *rec = note_section(cmd, conf);
    if (rec && !rec->where_audience)
        rec->where_audience = apr_pstrdup(mcp_gen.pconf, where(cmd));
    if (strcmp(arg, "*") == 0)
        mcp_cmd_note_warning(cmd,
                             apr_psprintf(cmd->temp_pool,
                                          "MCPAuthAudience * at %s: the audience is not checked, tokens issued for "
                                          "any other resource of the same issuer are accepted here",
                                          where(cmd)));
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
    mcp_section_t *rec;

    if (strcasecmp(arg, "none") == 0)
        return "MCPAuthAlgorithms: \"none\" can never be allowed";
    if (alg == MCP_ALG_UNKNOWN)
        return apr_psprintf(cmd->pool,
                            "MCPAuthAlgorithms: unknown algorithm %s (known: RS256 RS384 RS512 PS256 PS384 PS512 "
                            "ES256 ES384 ES512 EdDSA HS256 HS384 HS512)",
                            arg);
    rec = note_section(cmd, conf);
    if (rec && !rec->where_alg)
        rec->where_alg = apr_pstrdup(mcp_gen.pconf, where(cmd));
    if (!conf->alg_set) {
        conf->alg_set = 1;
        conf->alg_mask = 0;
    }
    conf->alg_mask |= MCP_ALG_BIT(alg);
    if (mcp_alg_kty(alg) == MCP_KTY_OCT && !conf->hmac_key && !mcp_gen.hmac_without_secret)
        mcp_gen.hmac_without_secret = where(cmd);
    return hmac_fits(cmd, conf);
}

const char *mcp_cmd_hmac_secret(cmd_parms *cmd, void *dconf, const char *arg)
{
    mcp_dir_conf_t *conf = dconf;
    size_t len = strlen(arg);
    mcp_section_t *rec;
    if (len == 0)
        return "MCPAuthHMACSecret must not be empty";
    rec = note_section(cmd, conf);
    if (rec)
        rec->where_secret = apr_pstrdup(mcp_gen.pconf, where(cmd));
    conf->hmac_key = mcp_jwk_from_secret(cmd->pool, (const unsigned char *)arg, len);
    mcp_gen.any_hmac_secret = 1;
    /* Shorter than the shortest HMAC output is useless for every HS alg. */
    if (len < 32)
        return apr_psprintf(cmd->pool, "MCPAuthHMACSecret is %lu bytes: HS256 needs at least 32", (unsigned long)len);
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
    /* .htaccess may only narrow: its claims add to the inherited ones. */
    if (!mcp_cmd_at_config_time(cmd)) {
        if (strcmp(arg, "none") == 0)
            return "MCPAuthRequiredClaims none cannot be used in .htaccess: there it only adds required claims";
        conf->required_claims_add = 1;
    }
    if (!conf->required_claims)
        conf->required_claims = apr_array_make(cmd->pool, 2, sizeof(const char *));
    /* "none" alone: nothing beyond exp is required. */
    if (strcmp(arg, "none") != 0)
        *(const char **)apr_array_push(conf->required_claims) = arg;
    return NULL;
}

/* A per-directory string or flag: httpd's slot setter writes it (cmd->info
 * is the field's offset), after the section is noted as for every other
 * directive of ours (.htaccess origin, <Location> path, checks across
 * sections). */
const char *mcp_cmd_dir_string(cmd_parms *cmd, void *dconf, const char *arg)
{
    note_section(cmd, dconf);
    return ap_set_string_slot(cmd, dconf, arg);
}

const char *mcp_cmd_dir_flag(cmd_parms *cmd, void *dconf, int on)
{
    note_section(cmd, dconf);
    return ap_set_flag_slot(cmd, dconf, on);
}

/* MCPAuthScopeClaim <claim>...: kept as one space-joined string (claim
 * names and paths hold no spaces), so everything that names the policy --
 * the cache fingerprint, the per-process memo -- covers the whole list. */
const char *mcp_cmd_scope_claim(cmd_parms *cmd, void *dconf, const char *arg)
{
    mcp_dir_conf_t *conf = dconf;
    if (!*arg || strchr(arg, ' ') || strchr(arg, '\t'))
        return "MCPAuthScopeClaim: a claim name or $.path without spaces";
    note_section(cmd, conf);
    /* A section's list replaces the inherited one whole (merge); within
     * the section, every name (and every repeated line) adds to it. */
    if (conf->scope_claim)
        conf->scope_claim = apr_pstrcat(cmd->pool, conf->scope_claim, " ", arg, NULL);
    else
        conf->scope_claim = arg;
    return NULL;
}

const char *mcp_cmd_remote_user_claim(cmd_parms *cmd, void *dconf, const char *arg)
{
    mcp_dir_conf_t *conf = dconf;
    mcp_section_t *rec = note_section(cmd, conf);
    if (rec)
        rec->where_user_claim = apr_pstrdup(mcp_gen.pconf, where(cmd));
    conf->remote_user_claim = arg;
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
    mcp_section_t *rec;
    if (parse_long(arg, 64, 1048576, &v))
        return "MCPAuthMaxTokenSize takes bytes from 64 to 1048576";
    rec = note_section(cmd, conf);
    if (rec && !rec->where_max_token)
        rec->where_max_token = apr_pstrdup(mcp_gen.pconf, where(cmd));
    conf->max_token_size = v;
    return NULL;
}

const char *mcp_cmd_scopes_supported(cmd_parms *cmd, void *dconf, const char *arg)
{
    mcp_dir_conf_t *conf = dconf;
    note_section(cmd, conf);
    if (!conf->scopes_supported)
        conf->scopes_supported = apr_array_make(cmd->pool, 4, sizeof(const char *));
    /* MCP 2026-07-28: refresh tokens are the client's and the AS's business,
     * not a resource requirement -- never advertised, never challenged for. */
    if (strcmp(arg, "offline_access") == 0) {
        mcp_cmd_note_warning(cmd,
                             apr_psprintf(cmd->temp_pool,
                                          "MCPAuthScopesSupported at %s: offline_access dropped (a resource does not "
                                          "ask for refresh tokens: it is never in scopes_supported or a challenge)",
                                          where(cmd)));
        return NULL;
    }
    APR_ARRAY_PUSH(conf->scopes_supported, const char *) = arg;
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
    /* From .htaccess an entry adds scopes to an inherited one for the same
     * tool instead of replacing it: .htaccess only narrows. */
    ts->narrow_only = !mcp_cmd_at_config_time(cmd);
    ts->tool = ap_getword_conf(cmd->pool, &args);
    ts->scopes = apr_array_make(cmd->pool, 2, sizeof(const char *));
    if (!*ts->tool)
        return "MCPAuthToolScope needs a tool name and at least one scope";
    while (*(word = ap_getword_conf(cmd->pool, &args))) {
        APR_ARRAY_PUSH(ts->scopes, const char *) = word;
        if (strcmp(word, "offline_access") == 0)
            mcp_cmd_note_warning(cmd,
                                 apr_psprintf(cmd->temp_pool,
                                              "MCPAuthToolScope %s offline_access (%s:%d): " MCP_OFFLINE_ACCESS_UNASKED,
                                              ts->tool, cmd->directive->filename, cmd->directive->line_num));
    }
    if (ts->scopes->nelts == 0)
        return apr_psprintf(cmd->pool, "MCPAuthToolScope %s: name at least one scope", ts->tool);
    return NULL;
}

/* MCPAuthScopeImplies <scope> <implied>...: the section's closure grows as
 * each line is read (scope_implies.c), so a cycle is refused on the line
 * that closes it and requests only look scopes up. Scopes are compared as
 * exact strings: one that no token could carry is a typo, refused here. */
const char *mcp_cmd_scope_implies(cmd_parms *cmd, void *dconf, const char *args)
{
    mcp_dir_conf_t *conf = dconf;
    apr_array_header_t *implied = apr_array_make(cmd->pool, 4, sizeof(const char *));
    const char *scope = ap_getword_conf(cmd->pool, &args), *word, *cycle;
    int i;

    note_section(cmd, conf);
    if (!*scope)
        return "MCPAuthScopeImplies needs a scope and at least one implied scope";
    while (*(word = ap_getword_conf(cmd->pool, &args)))
        APR_ARRAY_PUSH(implied, const char *) = word;
    if (implied->nelts == 0)
        return apr_psprintf(cmd->pool, "MCPAuthScopeImplies %s: name at least one implied scope", scope);
    for (i = -1; i < implied->nelts; i++) {
        word = i < 0 ? scope : APR_ARRAY_IDX(implied, i, const char *);
        if (!mcp_scope_token_ok(word))
            return apr_psprintf(cmd->pool,
                                "MCPAuthScopeImplies: \"%s\" is not a scope (RFC 6749 3.3: printable "
                                "ASCII, no space, quote or backslash)",
                                word);
    }
    if (!conf->scope_implies)
        conf->scope_implies = mcp_scope_implies_make(cmd->pool);
    cycle = mcp_scope_implies_add(conf->scope_implies, scope, implied, where(cmd));
    if (cycle)
        return apr_psprintf(cmd->pool, "MCPAuthScopeImplies at %s closes the cycle %s: a scope must not imply itself",
                            where(cmd), cycle);
    return NULL;
}

const char *mcp_cmd_introspection(cmd_parms *cmd, void *dconf, const char *args)
{
    mcp_dir_conf_t *conf = dconf;
    mcp_introspect_conf_t *c = apr_pcalloc(cmd->pool, sizeof(*c));
    const char *url = ap_getword_conf(cmd->pool, &args), *key, *val, *err;
    long secs;

    c->auth = MCP_AUTH_BASIC;
    c->param = MCP_DEFAULT_INTROSPECTION_PARAM;
    c->cache = apr_time_from_sec(MCP_DEFAULT_INTROSPECTION_CACHE);
    if (!*url)
        return "MCPAuthIntrospection needs the endpoint URL (or discover)";
    if (strcmp(url, "discover") != 0) {
        if ((err = check_url(cmd, "endpoint", url)))
            return err;
        c->url = url;
    }
    while ((err = next_option(cmd, &args, &key, &val)) == NULL && key) {
        if (strcmp(key, "auth") == 0) {
            /* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): next_option sets val with every key */
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
            /* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): next_option sets val with every key */
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
    if (c->url && strncasecmp(c->url, "http://", 7) == 0)
        mcp_cmd_note_warning(cmd, apr_psprintf(cmd->temp_pool,
                                               "MCPAuthIntrospection at %s: %s uses plain http: tokens and the client "
                                               "secret travel in clear text and answers can be forged",
                                               where(cmd), c->url));
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

/* Every identity header name of a virtual host, whatever section it was
 * written in: the scrub removes them all (.htaccess names come from the
 * request's merged list instead, nothing request-time goes into pconf). */
static void note_identity_header(cmd_parms *cmd, const char *name)
{
    if (mcp_cmd_at_config_time(cmd))
        server_list_add(mcp_gen.identity_headers, cmd->server, name, strcasecmp);
}

const apr_array_header_t *mcp_identity_header_names(const server_rec *s)
{
    return mcp_gen.identity_headers ? apr_hash_get(mcp_gen.identity_headers, &s, sizeof(s)) : NULL;
}

static const char *claim_export(cmd_parms *cmd, mcp_dir_conf_t *conf, apr_array_header_t **list, const char *name,
                                const char *expr, int is_env)
{
    mcp_claim_export_t *ex;
    const char *c;

    if (!valid_claim_expr(expr))
        return apr_psprintf(cmd->pool, "%s %s: %s is not a claim expression ($, $.name or $.a.b)", cmd->cmd->name, name,
                            expr);
    for (c = name; *c; c++)
        if (!(apr_isalnum(*c) || *c == '-' || *c == '_'))
            return apr_psprintf(cmd->pool, "%s: %s is not a valid %s name", cmd->cmd->name, name,
                                is_env ? "variable" : "header");
    if (!*name || (!is_env && strcasecmp(name, "Authorization") == 0))
        return apr_psprintf(cmd->pool, "%s: %s cannot be set from a claim", cmd->cmd->name, name);
    /* HTTP_* is where CGI puts request headers: a claim there could pass
     * for a header the client sent, or a client header for a claim. */
    if (is_env && strncmp(mcp_env_name(cmd->temp_pool, name), "HTTP_", 5) == 0)
        return apr_psprintf(cmd->pool,
                            "%s: %s cannot be used: names starting with HTTP_ are request headers "
                            "for CGI",
                            cmd->cmd->name, name);
    note_section(cmd, conf);
    if (!*list)
        *list = apr_array_make(cmd->pool, 4, sizeof(mcp_claim_export_t));
    ex = apr_array_push(*list);
    ex->name = is_env ? mcp_env_name(cmd->pool, name) : name;
    ex->expr = expr;
    if (!is_env)
        note_identity_header(cmd, name);
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

/* A server-wide number (cmd->info: its mcp_srv_number_t), main server
 * only: every server-wide setting is process-wide (mcp_server_conf_t), so
 * inside <VirtualHost> httpd's own message refuses it. */
const char *mcp_cmd_server_number(cmd_parms *cmd, void *dconf, const char *arg)
{
    const mcp_srv_number_t *num = cmd->info;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    char *field = (char *)mcp_srv_conf_main() + num->offset;
    long v;
    (void)dconf;
    if (err)
        return err;
    if (parse_long(arg, num->min, num->max, &v))
        return apr_pstrcat(cmd->pool, cmd->cmd->name, " takes ", num->range, NULL);
    switch (num->kind) {
    case MCP_NUM_SECONDS:
        *(apr_interval_time_t *)field = apr_time_from_sec(v);
        break;
    case MCP_NUM_LONG:
        *(long *)field = v;
        break;
    case MCP_NUM_SIZE:
        *(apr_size_t *)field = (apr_size_t)v;
        break;
    case MCP_NUM_UNSIGNED:
        *(unsigned *)field = (unsigned)v;
        break;
    }
    return NULL;
}

const char *mcp_cmd_ssl_verify(cmd_parms *cmd, void *dconf, int on)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    (void)dconf;
    if (err)
        return err;
    mcp_srv_conf_main()->fetch.http.ssl_verify = on;
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
    mcp_srv_conf_main()->fetch.http.ca_file = path;
    return NULL;
}

/* ---- checks across sections (check_config) ---------------------------- */

/* Can section a's settings reach a request that section b's settings
 * reach, as the part b inherits from? The main server's top level and
 * sections apply in every virtual host; a server's top level under all its
 * sections; <Location>/<Directory> under the longer paths of the same kind. */
static int inherits_from(const mcp_section_t *b, const mcp_section_t *a)
{
    if (a == b || a->conf == b->conf || (a->server != b->server && a->server->is_virtual))
        return 0;
    if (!a->kind)
        return b->kind || (a->server != b->server); /* top level under sections, main under vhosts */
    if (!a->path || !b->path || strcasecmp(a->kind, b->kind) != 0)
        return 0;
    return strlen(a->path) < strlen(b->path) && strncmp(a->path, b->path, strlen(a->path)) == 0;
}

/* Higher wins a merge: deeper paths, then the virtual host over the main
 * server; a section over every top level. */
static apr_size_t merge_rank(const mcp_section_t *a)
{
    return (a->kind ? 4 + 2 * (a->path ? strlen(a->path) : 0) : 0) + (a->server->is_virtual ? 1 : 0);
}

/* The nearest section b inherits a setting from (pick says which), or NULL. */
static const mcp_section_t *inherited(const mcp_section_t *b, int (*pick)(const mcp_dir_conf_t *))
{
    const mcp_section_t *best = NULL;
    int i;
    for (i = 0; i < mcp_gen.sections->nelts; i++) {
        const mcp_section_t *a = APR_ARRAY_IDX(mcp_gen.sections, i, const mcp_section_t *);
        if (pick(a->conf) && inherits_from(b, a) && (!best || merge_rank(a) > merge_rank(best)))
            best = a;
    }
    return best;
}

static int has_algs(const mcp_dir_conf_t *c)
{
    return c->alg_set;
}

static int has_secret(const mcp_dir_conf_t *c)
{
    return c->hmac_key != NULL;
}

static int has_resource(const mcp_dir_conf_t *c)
{
    return c->resource != NULL;
}

/* A secret long enough for the algorithms of its own section may still be
 * too short for the HS* a parent section allows: check the merged pair, in
 * every server the section applies in (the main server's in each vhost). */
static const char *check_hmac_pair(apr_pool_t *p, const mcp_section_t *b)
{
    const mcp_section_t *algs = b->conf->alg_set ? b : inherited(b, has_algs);
    const mcp_section_t *key = b->conf->hmac_key ? b : inherited(b, has_secret);
    int a;
    if (!algs || !key || (b->conf->alg_set && b->conf->hmac_key))
        return NULL; /* nothing merged: the directive itself checked the pair */
    for (a = MCP_ALG_HS256; a <= MCP_ALG_HS512; a++)
        if ((algs->conf->alg_mask & MCP_ALG_BIT(a)) && key->conf->hmac_key->secret_len < mcp_alg_hash_len((mcp_alg)a))
            return apr_psprintf(p,
                                "MCPAuthHMACSecret at %s is %lu bytes: %s, allowed by MCPAuthAlgorithms at %s for "
                                "the same requests, needs at least %lu",
                                key->where_secret ? key->where_secret : key->where,
                                (unsigned long)key->conf->hmac_key->secret_len, mcp_alg_name((mcp_alg)a),
                                algs->where_alg ? algs->where_alg : algs->where,
                                (unsigned long)mcp_alg_hash_len((mcp_alg)a));
    return NULL;
}

/* Section i as it applies in server s (a main server section applies in
 * every virtual host too); 0 when it does not apply there. */
static int applies_in(int i, server_rec *s, mcp_section_t *here)
{
    const mcp_section_t *b = APR_ARRAY_IDX(mcp_gen.sections, i, const mcp_section_t *);
    if (b->server != s && (b->server->is_virtual || !s->is_virtual))
        return 0;
    *here = *b;
    here->server = s;
    return 1;
}

/* check over every section as it applies in every server; the first error. */
static const char *check_each_section(apr_pool_t *p, const char *(*check)(apr_pool_t *, const mcp_section_t *))
{
    server_rec *s;
    mcp_section_t here;
    const char *err;
    int i;
    for (s = ap_server_conf; s; s = s->next)
        for (i = 0; i < mcp_gen.sections->nelts; i++)
            if (applies_in(i, s, &here) && (err = check(p, &here)))
                return err;
    return NULL;
}

/* Does section a's MCPAuthScopeImplies merge into b's requests? What
 * inherits_from says, and also another section for the same path (httpd
 * merges both, the later over the earlier). */
static int implies_merge_into(const mcp_section_t *b, const mcp_section_t *a)
{
    if (!a->conf->scope_implies || a->conf == b->conf)
        return 0;
    if (inherits_from(b, a))
        return 1;
    return a->kind && b->kind && a->path && b->path && strcasecmp(a->kind, b->kind) == 0 &&
           strcmp(a->path, b->path) == 0 && (a->server == b->server || !a->server->is_virtual);
}

/* Merge order: lower rank first, then as written. */
static int implies_order(const void *x, const void *y)
{
    const mcp_section_t *a = *(const mcp_section_t *const *)x, *b = *(const mcp_section_t *const *)y;
    apr_size_t ra = merge_rank(a), rb = merge_rank(b);
    return ra != rb ? (ra < rb ? -1 : 1) : 0;
}

/* The chain merged as httpd merges it for a request: top levels and
 * <Directory> sections one by one, <Location> sections among themselves
 * first and then onto the rest (ap_location_walk) -- the same pairs, so a
 * request finds each in the memo (p is pconf) instead of building the
 * merged closure. Returns the first cycle, or NULL. */
static const char *fold_implies(apr_pool_t *p, const apr_array_header_t *chain)
{
    const mcp_scope_implies_t *base = NULL, *locations = NULL;
    const char *cycle = NULL;
    int i;
    for (i = 0; i < chain->nelts && !cycle; i++) {
        const mcp_section_t *a = APR_ARRAY_IDX(chain, i, const mcp_section_t *);
        if (a->kind && strcasecmp(a->kind, "<Location") == 0)
            locations =
                mcp_scope_implies_merge_memo(mcp_gen.implies_merged, 1, p, locations, a->conf->scope_implies, &cycle);
        else
            base = mcp_scope_implies_merge_memo(mcp_gen.implies_merged, 1, p, base, a->conf->scope_implies, &cycle);
    }
    if (!cycle && locations)
        mcp_scope_implies_merge_memo(mcp_gen.implies_merged, 1, p, base, locations, &cycle);
    return cycle;
}

/* Each section's own lines were checked as they were read; a cycle can
 * still come from the merge with the sections it is nested in (<Location
 * /a> x -> y, <Location /a/b> y -> x): merge them as a request would. */
static const char *check_implies_merge(apr_pool_t *p, const mcp_section_t *b)
{
    apr_array_header_t *chain = apr_array_make(p, 4, sizeof(const mcp_section_t *));
    const char *cycle;
    int i;

    /* b itself in its place among the rest: the order written */
    for (i = 0; i < mcp_gen.sections->nelts; i++) {
        const mcp_section_t *a = APR_ARRAY_IDX(mcp_gen.sections, i, const mcp_section_t *);
        if (a->conf == b->conf ? a->conf->scope_implies != NULL : implies_merge_into(b, a))
            APR_ARRAY_PUSH(chain, const mcp_section_t *) = a;
    }
    if (chain->nelts < 2)
        return NULL; /* nothing merged: the directive lines checked it */
    /* stable for equal ranks: insertion sort keeps the order written */
    for (i = 1; i < chain->nelts; i++) {
        int j;
        for (j = i; j > 0 && implies_order(&APR_ARRAY_IDX(chain, j - 1, const mcp_section_t *),
                                           &APR_ARRAY_IDX(chain, j, const mcp_section_t *)) > 0;
             j--) {
            const mcp_section_t *t = APR_ARRAY_IDX(chain, j, const mcp_section_t *);
            APR_ARRAY_IDX(chain, j, const mcp_section_t *) = APR_ARRAY_IDX(chain, j - 1, const mcp_section_t *);
            APR_ARRAY_IDX(chain, j - 1, const mcp_section_t *) = t;
        }
    }
    if (!(cycle = fold_implies(p, chain)))
        return NULL;
    return apr_psprintf(p,
                        "MCPAuthScopeImplies: the section at %s, merged with the sections it is nested in, makes "
                        "the cycle %s: a scope must not imply itself",
                        b->where, cycle);
}

/* Was ServerName written for this server (the main server: outside every
 * <VirtualHost>)? httpd fills in a guessed name otherwise, which must not
 * become a resource URI. */
static int wrote_server_name(const ap_directive_t *d, const ap_directive_t *vhost, const server_rec *s)
{
    for (; d; d = d->next) {
        int is_vhost = strcasecmp(d->directive, "<VirtualHost") == 0;
        if (!is_vhost && strcasecmp(d->directive, "ServerName") == 0) {
            if (s->is_virtual ? (vhost && (unsigned)vhost->line_num == s->defn_line_number && s->defn_name &&
                                 strcmp(vhost->filename, s->defn_name) == 0)
                              : !vhost)
                return 1;
        }
        if (d->first_child && wrote_server_name(d->first_child, is_vhost ? d : vhost, s))
            return 1;
    }
    return 0;
}

static int usable_server_name(const server_rec *s)
{
    if (wrote_server_name(ap_conftree, NULL, s))
        return 1;
    /* A virtual host without one inherits the main server's, if written. */
    return s->is_virtual && wrote_server_name(ap_conftree, NULL, ap_server_conf) && s->server_hostname &&
           ap_server_conf->server_hostname && strcmp(s->server_hostname, ap_server_conf->server_hostname) == 0;
}

/* The default resource comes from ServerName, never from the request:
 * every section that needs the default must have a written ServerName. */
static const char *check_resource_sources(apr_pool_t *p)
{
    server_rec *s;
    int i;
    for (s = ap_server_conf; s; s = s->next) {
        int usable = -1;
        for (i = 0; i < mcp_gen.sections->nelts; i++) {
            mcp_section_t here;
            if (!applies_in(i, s, &here) || here.conf->resource || inherited(&here, has_resource))
                continue;
            if (usable < 0)
                usable = usable_server_name(s);
            if (usable)
                break;
            return apr_psprintf(p,
                                "mod_mcp_auth: the section at %s protects %s without MCPAuthResource, and %s has "
                                "no ServerName: set ServerName (e.g. ServerName https://mcp.example.com) or "
                                "MCPAuthResource -- the resource URI is never taken from the request's Host header",
                                here.where,
                                s->is_virtual
                                    ? apr_psprintf(p, "<VirtualHost> at %s:%u", s->defn_name, s->defn_line_number)
                                    : "the main server",
                                s->is_virtual ? "that virtual host" : "the main server");
        }
    }
    return NULL;
}

/* Origins are kept canonical (mcp_origin_canonical) so a request's Origin
 * compares as a string; "*" only stands alone. */
const char *mcp_cmd_allowed_origins(cmd_parms *cmd, void *dconf, const char *arg)
{
    mcp_dir_conf_t *conf = dconf;
    const char *canon = strcmp(arg, "*") == 0 ? "*" : mcp_origin_canonical(cmd->pool, arg, 0);
    note_section(cmd, conf);
    if (!canon)
        return apr_psprintf(cmd->pool, "MCPAuthAllowedOrigins: %s is not an origin (scheme://host[:port]) or *", arg);
    if (!conf->allowed_origins)
        conf->allowed_origins = apr_array_make(cmd->pool, 2, sizeof(const char *));
    else if (*canon == '*' || strcmp(APR_ARRAY_IDX(conf->allowed_origins, 0, const char *), "*") == 0)
        return "MCPAuthAllowedOrigins: * stands alone";
    APR_ARRAY_PUSH(conf->allowed_origins, const char *) = canon;
    return NULL;
}

/* ---- AuthType mcp-jwt without an issuer (configtest) -------------------- */

/* Can any token pass here? A JWT needs an issuer to be matched to (an
 * HMAC secret alone is not enough: find_issuer refuses every token with
 * 500); an opaque token needs an introspection endpoint given as a URL
 * ("discover" needs an issuer again). */
static int has_token_source(const mcp_dir_conf_t *c)
{
    return (c->issuers && c->issuers->nelts > 0) || (c->introspection && c->introspection->url);
}

/* The innermost per-directory section around d and its <VirtualHost>. */
static const ap_directive_t *section_around(const ap_directive_t *d, const ap_directive_t **vhost)
{
    const ap_directive_t *sec = NULL;
    *vhost = NULL;
    for (d = d->parent; d; d = d->parent) {
        if (strcasecmp(d->directive, "<VirtualHost") == 0) {
            *vhost = d;
            break;
        }
        if (!sec && is_dir_section(d))
            sec = d;
    }
    return sec;
}

static server_rec *server_of(const ap_directive_t *vhost)
{
    server_rec *s;
    if (!vhost)
        return ap_server_conf;
    for (s = ap_server_conf->next; s; s = s->next)
        if (s->defn_name && (unsigned)vhost->line_num == s->defn_line_number &&
            strcmp(vhost->filename, s->defn_name) == 0)
            return s;
    return NULL;
}

/* "/mcp" of <Location "/mcp">; NULL for a regular expression or a kind
 * that does not nest by path. */
static const char *section_path(apr_pool_t *p, const ap_directive_t *sec)
{
    char *args, *end;
    const char *a;
    if (!sec->args || (strcasecmp(sec->directive, "<Location") != 0 && strcasecmp(sec->directive, "<Directory") != 0))
        return NULL;
    args = apr_pstrdup(p, sec->args);
    if ((end = strrchr(args, '>')))
        *end = '\0';
    a = args;
    a = ap_getword_conf(p, &a);
    return *a && *a != '~' ? a : NULL;
}

/* a's path covers b's (a Directory's trailing slash aside). */
static int path_covers(const char *a, const char *b)
{
    size_t n = strlen(a);
    if (n > 1 && a[n - 1] == '/')
        n--;
    return strncmp(a, b, n) == 0;
}

/* Can a's settings be merged into the requests section b (in its server)
 * answers? When the two are of kinds that do not nest by path (a
 * <Directory> and a <Location>, an <If>, a regular expression) nobody can
 * tell at configtest: assume they can -- a false refusal to start is
 * worse than the 500 this check exists to prevent. */
static int may_reach(const mcp_section_t *a, const mcp_section_t *b)
{
    if (a->server != b->server && (a->server->is_virtual || !b->server->is_virtual))
        return 0;
    if (!a->kind)
        return 1;
    if (!a->path || !b->path || strcasecmp(a->kind, b->kind) != 0)
        return 1;
    return path_covers(a->path, b->path);
}

/* Section b as the AuthType line at d sees it: the record of its own
 * directives if it has one, else only where it is. */
static void auth_section(apr_pool_t *p, const ap_directive_t *d, const ap_directive_t *sec, server_rec *s,
                         mcp_section_t *b)
{
    int i;
    memset(b, 0, sizeof(*b));
    for (i = 0; i < mcp_gen.sections->nelts; i++) {
        const mcp_section_t *r = APR_ARRAY_IDX(mcp_gen.sections, i, const mcp_section_t *);
        if (r->section == sec && r->server == s)
            *b = *r;
    }
    b->server = s;
    b->kind = sec->directive;
    if (!b->conf)
        b->path = section_path(p, sec);
    b->where = apr_psprintf(p, "%s:%d", d->filename, d->line_num);
}

static const char *check_auth_section(apr_pool_t *p, const ap_directive_t *d)
{
    const ap_directive_t *vhost, *sec = section_around(d, &vhost);
    const char *args = d->args, *type;
    server_rec *s;
    mcp_section_t b;
    int i, all;

    type = ap_getword_conf(p, &args);
    if (strcasecmp(type, MCP_AUTH_TYPE) != 0 || !sec || !(s = server_of(vhost)))
        return NULL;
    auth_section(p, d, sec, s, &b);
    if (b.conf && has_token_source(b.conf))
        return NULL;
    /* A main server section applies in every virtual host too: an issuer
     * reaching it in any of them lets it pass (which ones serve requests
     * is not for configtest to guess). */
    for (all = !s->is_virtual; s; s = all ? s->next : NULL) {
        b.server = s;
        for (i = 0; i < mcp_gen.sections->nelts; i++) {
            const mcp_section_t *a = APR_ARRAY_IDX(mcp_gen.sections, i, const mcp_section_t *);
            if (a->conf != b.conf && has_token_source(a->conf) && may_reach(a, &b))
                return NULL;
        }
    }
    return apr_psprintf(p,
                        "mod_mcp_auth: AuthType %s at %s (in %s %s at %s:%d) has no issuer: no MCPAuthIssuer or "
                        "MCPAuthIntrospection <url> in this section or one it inherits from, so every token would "
                        "be answered 500. Add MCPAuthIssuer there (MCPAuthHMACSecret alone is not enough: a token "
                        "is matched to an issuer by its iss)",
                        MCP_AUTH_TYPE, b.where, sec->directive, sec->args ? sec->args : ">", sec->filename,
                        sec->line_num);
}

static const char *check_auth_sections(apr_pool_t *p, const ap_directive_t *d)
{
    const char *err;
    for (; d; d = d->next) {
        if (strcasecmp(d->directive, "AuthType") == 0 && d->args && (err = check_auth_section(p, d)))
            return err;
        if (d->first_child && (err = check_auth_sections(p, d->first_child)))
            return err;
    }
    return NULL;
}

/* The shared cache is one segment of entries x entry size: each directive
 * has its own range, and their product must stay a sane allocation. */
#define MCP_CACHE_MAX_BYTES ((apr_uint64_t)1 << 30)

static const char *check_cache_size(apr_pool_t *p)
{
    const mcp_server_conf_t *sc = mcp_srv_conf_main();
    apr_uint64_t bytes = (apr_uint64_t)sc->cache_entries * (apr_uint64_t)sc->cache_entry_size;
    if (bytes <= MCP_CACHE_MAX_BYTES)
        return NULL;
    return apr_psprintf(p,
                        "MCPAuthCacheEntries %u x MCPAuthCacheEntrySize %" APR_UINT64_T_FMT " is %" APR_UINT64_T_FMT
                        " MiB of shared memory: keep the product at most 1024 MiB (1 GiB)",
                        sc->cache_entries, (apr_uint64_t)sc->cache_entry_size, bytes >> 20);
}

/* An alias names one issuer everywhere: it must not be another configured
 * issuer's URL or alias, or a token's iss would pick that issuer's keys in
 * one place and these in another. */
static const char *check_issuer_aliases(apr_pool_t *p)
{
    apr_hash_t *owner = apr_hash_make(p); /* iss -> issuer URL */
    int pass, i, j, k;
    for (pass = 0; pass < 2; pass++)
        for (i = 0; i < mcp_gen.sections->nelts; i++) {
            const mcp_section_t *sec = APR_ARRAY_IDX(mcp_gen.sections, i, const mcp_section_t *);
            const apr_array_header_t *iss = sec->conf->issuers;
            for (j = 0; iss && j < iss->nelts; j++) {
                const mcp_trusted_issuer_t *ti = &APR_ARRAY_IDX(iss, j, mcp_trusted_issuer_t);
                if (pass == 0) {
                    apr_hash_set(owner, ti->issuer, APR_HASH_KEY_STRING, ti->issuer);
                    continue;
                }
                for (k = 0; k < ti->n_aliases; k++) {
                    const char *had = apr_hash_get(owner, ti->aliases[k], APR_HASH_KEY_STRING);
                    if (had && strcmp(had, ti->issuer) != 0)
                        return apr_psprintf(p,
                                            "MCPAuthIssuer %s alias=%s (section at %s): %s is already the issuer "
                                            "or an alias of %s; an alias must name one issuer only",
                                            ti->issuer, ti->aliases[k], sec->where, ti->aliases[k], had);
                    apr_hash_set(owner, ti->aliases[k], APR_HASH_KEY_STRING, ti->issuer);
                }
            }
        }
    return NULL;
}

const char *mcp_config_check(apr_pool_t *p)
{
    const char *err;
    if (mcp_gen.hmac_without_secret && !mcp_gen.any_hmac_secret)
        return apr_psprintf(p, "MCPAuthAlgorithms at %s allows HS256/384/512 but no MCPAuthHMACSecret is set",
                            mcp_gen.hmac_without_secret);
    if ((err = check_each_section(p, check_hmac_pair)))
        return err;
    if ((err = check_each_section(p, check_implies_merge)))
        return err;
    if ((err = check_cache_size(p)))
        return err;
    if ((err = check_issuer_aliases(p)))
        return err;
    if ((err = check_auth_sections(p, ap_conftree)))
        return err;
    return check_resource_sources(p);
}

/* ---- startup warnings about what a section's settings add up to ---- */

static int has_audiences(const mcp_dir_conf_t *c)
{
    return c->audiences != NULL;
}

static int has_user_claim(const mcp_dir_conf_t *c)
{
    return c->remote_user_claim != NULL;
}

static int has_required(const mcp_dir_conf_t *c)
{
    return c->required_claims != NULL;
}

static int has_max_token(const mcp_dir_conf_t *c)
{
    return c->max_token_size > 0;
}

/* The section that gives b this setting: b itself or the nearest one it
 * inherits from. */
static const mcp_section_t *effective(const mcp_section_t *b, int (*pick)(const mcp_dir_conf_t *))
{
    return pick(b->conf) ? b : inherited(b, pick);
}

/* MCPAuthAudience without the explicit MCPAuthResource: tokens a client got
 * for this resource (RFC 8707: aud = resource) are refused, while tokens
 * for the listed audiences are accepted. Only when every audience is a URL:
 * Entra's audience is the API's client id (a GUID), never the resource. */
static const char *audience_warning(apr_pool_t *p, const mcp_section_t *b)
{
    const mcp_section_t *a = effective(b, has_audiences), *r = effective(b, has_resource);
    const apr_array_header_t *auds;
    int i;
    if (!a || !r)
        return NULL;
    auds = a->conf->audiences;
    for (i = 0; i < auds->nelts; i++) {
        const char *aud = APR_ARRAY_IDX(auds, i, const char *);
        if (!strstr(aud, "://") || mcp_audience_equal(aud, r->conf->resource))
            return NULL;
    }
    return apr_psprintf(
        p,
        "MCPAuthAudience at %s does not contain the resource %s (MCPAuthResource of the section at %s): "
        "tokens a "
        "client obtains for this resource (aud = resource, RFC 8707) are refused here, tokens for "
        "%s are accepted; add the resource to MCPAuthAudience",
        a->where_audience ? a->where_audience : a->where, r->conf->resource, r->where, apr_array_pstrcat(p, auds, ' '));
}

/* A token must fit the request header line it arrives in: httpd refuses a
 * longer field with 400 before any module sees it. */
static const char *max_token_warning(apr_pool_t *p, const mcp_section_t *b, const server_rec *s)
{
    static const char prefix[] = "Authorization: Bearer ";
    const mcp_section_t *m = effective(b, has_max_token);
    long fits = (long)s->limit_req_fieldsize - (long)(sizeof(prefix) - 1);
    if (!m || m->conf->max_token_size <= fits)
        return NULL;
    return apr_psprintf(p,
                        "MCPAuthMaxTokenSize %ld at %s is above what LimitRequestFieldSize %d lets through (%ld "
                        "bytes of token after \"%s\"): httpd answers 400 to a larger header before the module "
                        "sees it; raise LimitRequestFieldSize (for HTTP/2 also H2MaxHeaderListSize) or lower "
                        "MCPAuthMaxTokenSize",
                        m->conf->max_token_size, m->where_max_token ? m->where_max_token : m->where,
                        s->limit_req_fieldsize, fits, prefix);
}

/* REMOTE_USER falls back to sub, client_id, username when the named claim
 * is missing: only MCPAuthRequiredClaims makes the claim mandatory. */
static const char *user_claim_warning(apr_pool_t *p, const mcp_section_t *b)
{
    const mcp_section_t *u = effective(b, has_user_claim), *q = effective(b, has_required);
    const char *claim, *name;
    int i;
    if (!u)
        return NULL;
    claim = u->conf->remote_user_claim;
    name = strncmp(claim, "$.", 2) == 0 ? claim + 2 : claim;
    if (!q) {
        if (strcmp(name, MCP_DEFAULT_REQUIRED_CLAIM) == 0)
            return NULL; /* the default MCPAuthRequiredClaims */
    }
    else
        for (i = 0; i < q->conf->required_claims->nelts; i++)
            if (strcmp(APR_ARRAY_IDX(q->conf->required_claims, i, const char *), name) == 0)
                return NULL;
    return apr_psprintf(p,
                        "MCPAuthRemoteUserClaim %s at %s is not in MCPAuthRequiredClaims: a token without it is "
                        "still accepted and REMOTE_USER falls back to sub, client_id or username; add "
                        "\"MCPAuthRequiredClaims %s\" (with the other required claims) to make it strict",
                        claim, u->where_user_claim ? u->where_user_claim : u->where, name);
}

/* Each distinct warning once, though a section applies in several servers. */
static void section_warnings(server_rec *main_s)
{
    apr_pool_t *p;
    apr_hash_t *seen;
    server_rec *s;
    int i, k;

    apr_pool_create(&p, mcp_gen.pconf);
    seen = apr_hash_make(p);
    for (s = ap_server_conf; s; s = s->next)
        for (i = 0; i < mcp_gen.sections->nelts; i++) {
            mcp_section_t here;
            const char *w[3];
            if (!applies_in(i, s, &here))
                continue;
            w[0] = audience_warning(p, &here);
            w[1] = max_token_warning(p, &here, s);
            w[2] = user_claim_warning(p, &here);
            for (k = 0; k < 3; k++)
                if (w[k] && !apr_hash_get(seen, w[k], APR_HASH_KEY_STRING)) {
                    apr_hash_set(seen, w[k], APR_HASH_KEY_STRING, "");
                    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_s, "%s", w[k]);
                }
        }
    apr_pool_destroy(p);
}

void mcp_config_warnings(server_rec *s)
{
    mcp_issuer_def_t *defs = (mcp_issuer_def_t *)mcp_gen.issuer_defs->elts;
    int i;
    for (i = 0; i < mcp_gen.issuer_defs->nelts; i++) {
        const char *urls[] = {defs[i].issuer, defs[i].jwks_uri, defs[i].introspection_endpoint};
        int j;
        for (j = 0; j < 3; j++)
            if (urls[j] && strncasecmp(urls[j], "http://", 7) == 0)
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                             "MCPAuthIssuer: %s uses plain http: keys and tokens can be tampered with in transit",
                             urls[j]);
    }
    if (!mcp_srv_conf(s)->fetch.http.ssl_verify)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "MCPAuthSSLVerify Off: IdP certificates are not verified; use only for testing");
    for (i = 0; i < mcp_gen.warnings->nelts; i++)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "%s", APR_ARRAY_IDX(mcp_gen.warnings, i, const char *));
    section_warnings(s);
}
