/* SPDX-License-Identifier: Apache-2.0 */
#include "rpc_headers.h"

#include <string.h>

#include "b64url.h"

#define SENTINEL_OPEN "=?base64?"
#define SENTINEL_CLOSE "?="

/* RFC 9110 field-value characters: visible ASCII, space and tab. */
static int header_safe(const char *v)
{
    const unsigned char *c;
    for (c = (const unsigned char *)v; *c; c++)
        if (!((*c >= 0x21 && *c <= 0x7e) || *c == ' ' || *c == '\t'))
            return 0;
    return 1;
}

int mcp_rpc_header_value(apr_pool_t *p, const char *value, const char **out, size_t *outlen)
{
    size_t n = strlen(value), open = sizeof(SENTINEL_OPEN) - 1, close = sizeof(SENTINEL_CLOSE) - 1;
    unsigned char *dec;

    if (!header_safe(value))
        return -1;
    /* The markers are case-sensitive; a plain value that merely looks like
     * one had to be encoded by the client, so this reading is the only one. */
    if (n >= open + close && strncmp(value, SENTINEL_OPEN, open) == 0 &&
        strcmp(value + n - close, SENTINEL_CLOSE) == 0) {
        if (mcp_b64_decode(p, value + open, n - open - close, &dec, outlen) != 0)
            return -1;
        *out = (const char *)dec;
        return 0;
    }
    *out = value;
    *outlen = n;
    return 0;
}

static int same_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* The body value Mcp-Name mirrors for this method, or NULL: params.name of
 * tools/call and prompts/get, params.uri of resources/read. The method is
 * recognised as loosely as the tool-scope check reads it, so a backend
 * that matches methods case-insensitively cannot get a name unchecked. */
static const char *name_source(const mcp_rpc_body_t *rpc, size_t *len)
{
    if (mcp_jsonrpc_name_equal(rpc->method, "tools/call") || mcp_jsonrpc_name_equal(rpc->method, "prompts/get")) {
        *len = rpc->name_len;
        return rpc->name;
    }
    if (mcp_jsonrpc_name_equal(rpc->method, "resources/read")) {
        *len = rpc->uri_len;
        return rpc->uri;
    }
    return NULL;
}

const char *mcp_rpc_headers_mismatch(apr_pool_t *p, const char *method_hdr, const char *name_hdr,
                                     const mcp_rpc_body_t *rpc)
{
    const char *name_val = NULL, *src;
    size_t name_len = 0, src_len = 0;

    if (!method_hdr && !name_hdr)
        return NULL; /* a client of an earlier revision: nothing to check */
    if (!rpc)
        return "Mcp-Method/Mcp-Name on a request without a JSON-RPC body";
    if (!rpc->method)
        return rpc->is_batch ? "Mcp-Method/Mcp-Name on a batch (no single method to mirror)"
                             : "Mcp-Method/Mcp-Name on a message without a string method";
    /* Mcp-Method is required on every request once either header is used. */
    if (!method_hdr)
        return "Mcp-Name without Mcp-Method";
    if (!header_safe(method_hdr))
        return "Mcp-Method has characters a header may not carry";
    if (!same_bytes(method_hdr, strlen(method_hdr), rpc->method, rpc->method_len))
        return "Mcp-Method does not match the body's method";
    src = name_source(rpc, &src_len);
    if (name_hdr && mcp_rpc_header_value(p, name_hdr, &name_val, &name_len) != 0)
        return "Mcp-Name is not a header-safe value or valid =?base64?...?= form";
    if (!src)
        return name_hdr ? "Mcp-Name on a method that has no name or uri to mirror" : NULL;
    if (!name_hdr)
        return "Mcp-Name missing for a method whose name or uri the body carries";
    if (!same_bytes(name_val, name_len, src, src_len))
        return "Mcp-Name does not match the body's params.name or params.uri";
    return NULL;
}
