/* SPDX-License-Identifier: Apache-2.0 */
#include "challenge.h"

#include <apr_strings.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int mcp_fail_status(mcp_fail_kind kind)
{
    switch (kind) {
    case MCP_FAIL_NO_TOKEN:
    case MCP_FAIL_INVALID_TOKEN:
        return 401;
    case MCP_FAIL_INVALID_REQUEST:
        return 400;
    case MCP_FAIL_INSUFFICIENT_SCOPE:
        return 403;
    case MCP_FAIL_UNAVAILABLE:
        return 503;
    default:
        return 500;
    }
}

static const char *error_code(mcp_fail_kind kind)
{
    switch (kind) {
    case MCP_FAIL_INVALID_TOKEN:
        return "invalid_token";
    case MCP_FAIL_INVALID_REQUEST:
        return "invalid_request";
    case MCP_FAIL_INSUFFICIENT_SCOPE:
        return "insufficient_scope";
    case MCP_FAIL_UNAVAILABLE:
        return "temporarily_unavailable";
    case MCP_FAIL_CONFIG:
        return "server_error";
    default:
        return NULL;
    }
}

const char *mcp_quote(apr_pool_t *p, const char *s)
{
    size_t i, o = 0, n = strlen(s);
    char *out = apr_palloc(p, 2 * n + 3);
    out[o++] = '"';
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            continue;
        if (c == '"' || c == '\\')
            out[o++] = '\\';
        out[o++] = (char)c;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

/* error_description must stay inside RFC 6750's %x20-21 / %x23-5B / %x5D-7E. */
static const char *description(apr_pool_t *p, const char *reason)
{
    char *d = apr_pstrdup(p, reason ? reason : "");
    char *c;
    for (c = d; *c; c++)
        if (*c < 0x20 || *c > 0x7e || *c == '"' || *c == '\\')
            *c = ' ';
    return d;
}

const char *mcp_challenge_header(apr_pool_t *p, const mcp_fail_t *fail, const mcp_challenge_t *c)
{
    const char *h = "Bearer", *sep = " ";
    const char *code = error_code(fail->kind);

    switch (fail->kind) {
    case MCP_FAIL_NO_TOKEN:
    case MCP_FAIL_INVALID_TOKEN:
        if (c->realm) {
            h = apr_pstrcat(p, h, sep, "realm=", mcp_quote(p, c->realm), NULL);
            sep = ", ";
        }
        if (c->resource_metadata) {
            h = apr_pstrcat(p, h, sep, "resource_metadata=", mcp_quote(p, c->resource_metadata), NULL);
            sep = ", ";
        }
        if (fail->kind == MCP_FAIL_NO_TOKEN) {
            if (c->scope)
                h = apr_pstrcat(p, h, sep, "scope=", mcp_quote(p, c->scope), NULL);
            return h;
        }
        return apr_pstrcat(p, h, sep, "error=\"", code, "\", error_description=\"", description(p, fail->reason), "\"",
                           NULL);
    case MCP_FAIL_INVALID_REQUEST:
        return apr_pstrcat(p, h, " error=\"invalid_request\", error_description=\"", description(p, fail->reason), "\"",
                           NULL);
    case MCP_FAIL_INSUFFICIENT_SCOPE:
        h = apr_pstrcat(p, h, " error=\"insufficient_scope\"", NULL);
        if (c->scope)
            h = apr_pstrcat(p, h, ", scope=", mcp_quote(p, c->scope), NULL);
        if (c->resource_metadata)
            h = apr_pstrcat(p, h, ", resource_metadata=", mcp_quote(p, c->resource_metadata), NULL);
        return apr_pstrcat(p, h, ", error_description=\"", description(p, fail->reason), "\"", NULL);
    default:
        return NULL;
    }
}

const char *mcp_error_body(apr_pool_t *p, const mcp_fail_t *fail)
{
    const char *code = error_code(fail->kind);
    json_t *o = json_object();
    char *s;
    const char *copy;

    if (code)
        json_object_set_new(o, "error", json_string(code));
    json_object_set_new(
        o, "error_description",
        json_string(fail->kind == MCP_FAIL_NO_TOKEN ? "A bearer token is required" : description(p, fail->reason)));
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    copy = apr_pstrcat(p, s ? s : "{}", "\n", NULL);
    free(s);
    return copy;
}
