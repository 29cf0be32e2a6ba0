/* SPDX-License-Identifier: Apache-2.0 */
/* OIDC / RFC 8414 discovery of an issuer's metadata: the URLs tried, the
 * fetch of the document into the keyring's shared discovery slot, and the
 * check that an https issuer's document sends us nowhere in clear text.
 * The keyring asks for jwks_uri here; introspection for its endpoint. */
#include "discovery.h"
#include "metrics.h"

#include <apr_strings.h>
#include <string.h>

#include "json_util.h"
#include "keyring_internal.h"

void mcp_discovery_urls(apr_pool_t *p, const char *issuer, const char **oidc, const char **rfc8414)
{
    size_t len = strlen(issuer);
    const char *after_scheme = strstr(issuer, "://"), *path;

    /* OpenID Connect Discovery 1.0 section 4: strip a trailing '/', append. */
    while (len > 0 && issuer[len - 1] == '/')
        len--;
    *oidc = apr_psprintf(p, "%.*s/.well-known/openid-configuration", (int)len, issuer);
    /* RFC 8414 section 3.1: insert the well-known segment between host and path. */
    path = after_scheme ? strchr(after_scheme + 3, '/') : NULL;
    if (!path || (size_t)(path - issuer) >= len)
        *rfc8414 = apr_psprintf(p, "%.*s/.well-known/oauth-authorization-server", (int)len, issuer);
    else
        *rfc8414 = apr_psprintf(p, "%.*s/.well-known/oauth-authorization-server%.*s", (int)(path - issuer), issuer,
                                (int)(len - (size_t)(path - issuer)), path);
}

/* One discovery document: must name this issuer exactly. */
static char *try_discovery_once(mcp_keyring_t *kr, apr_pool_t *p, const char *url, size_t *len, const char **err)
{
    mcp_http_resp_t resp;
    json_t *doc;
    const char *iss;

    if (mcp_http_get(p, url, &kr->settings->http, &resp, err))
        return NULL;
    if (resp.status != 200) {
        *err = apr_psprintf(p, "HTTP %ld", resp.status);
        return NULL;
    }
    doc = mcp_json_parse(p, resp.body, resp.len);
    if (!json_is_object(doc)) {
        *err = "response is not a JSON object";
        return NULL;
    }
    iss = mcp_json_str(doc, "issuer");
    if (!iss || strcmp(iss, kr->issuer) != 0) {
        *err = apr_psprintf(p, "document issuer %s does not equal the configured issuer", mcp_printable(p, iss, 200));
        return NULL;
    }
    *len = resp.len;
    return resp.body;
}

/* try_discovery_once, counted (metrics.h). */
static char *try_discovery(mcp_keyring_t *kr, apr_pool_t *p, const char *url, size_t *len, const char **err)
{
    char *text = try_discovery_once(kr, p, url, len, err);
    mcp_metric_add(text ? MCP_M_DISCOVERY_FETCH_OK : MCP_M_DISCOVERY_FETCH_FAILED, 1);
    return text;
}

/* SPEC 7: an https issuer's discovery document cannot send us to clear
 * text (keys an on-path attacker could swap, a client secret in clear). */
static const char *secure_member(mcp_keyring_t *kr, apr_pool_t *p, const mcp_log_t *log, const char *member,
                                 const char *value)
{
    if (!value || strncasecmp(kr->issuer, "https://", 8) != 0 || strncasecmp(value, "https://", 8) == 0)
        return value;
    if (strcmp(member, "jwks_uri") != 0 && strcmp(member, "introspection_endpoint") != 0)
        return value;
    mcp_logf(log, p, MCP_LOG_ERR, "Discovery failed: insecure %s %s in the discovery document of issuer %s", member,
             mcp_printable(p, value, 256), mcp_printable(p, kr->issuer, 256));
    return NULL;
}

const char *mcp_keyring_discovered(mcp_keyring_t *kr, apr_pool_t *p, const mcp_log_t *log, const char *member)
{
    mcp_doc_policy_t pol = mcp_keyring_doc_policy(kr->settings);
    mcp_doc_meta_t meta;
    mcp_doc_decision d;
    char *text = NULL;
    size_t len = 0;
    json_t *doc;

    if (!kr->issuer)
        return NULL;
    d = mcp_store_doc_begin(kr->store, kr->disc_doc, kr->disc_key, apr_time_now(), &pol, 0, &meta);
    if (d == MCP_DOC_FETCH || d == MCP_DOC_UNAVAILABLE) {
        const char *oidc, *rfc8414, *err1 = NULL, *err2 = NULL;
        mcp_discovery_urls(p, kr->issuer, &oidc, &rfc8414);
        text = try_discovery(kr, p, oidc, &len, &err1);
        if (!text)
            text = try_discovery(kr, p, rfc8414, &len, &err2);
        if (d == MCP_DOC_FETCH &&
            mcp_store_doc_finish(kr->store, kr->disc_doc, kr->disc_key, apr_time_now(), text, len) == -1) {
            mcp_logf(log, p, MCP_LOG_ERR, "Discovery document of %s is larger than MCPAuthJWKSMaxSize", kr->issuer);
        }
        if (!text)
            mcp_logf(log, p, MCP_LOG_ERR, "Discovery failed for issuer %s: %s: %s; %s: %s",
                     mcp_printable(p, kr->issuer, 256), oidc, mcp_printable(p, err1, 256), rfc8414,
                     mcp_printable(p, err2, 256));
    }
    else if (d == MCP_DOC_WAIT) {
        /* Another process is fetching it and nothing usable is cached:
         * sleep until that fetch lands (woken by it, SPEC 7), at most
         * MCPAuthHTTPTimeout. */
        mcp_store_doc_wait(kr->store, kr->disc_doc, kr->disc_key, mcp_keyring_wait_deadline(kr));
    }
    if (!text) {
        /* The shared copy: ours just now, another process's, or a stale one. */
        if (mcp_store_doc_meta(kr->store, kr->disc_doc, kr->disc_key, &meta) || meta.generation == 0 ||
            mcp_store_doc_copy(kr->store, kr->disc_doc, kr->disc_key, meta.generation, p, &text, &len))
            return NULL;
    }
    doc = mcp_json_parse(p, text, len);
    return secure_member(kr, p, log, member, mcp_json_str(doc, member));
}
