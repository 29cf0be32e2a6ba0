/* SPDX-License-Identifier: Apache-2.0 */
/* MCP JSON-RPC body reading for MCPAuthToolScope (SPEC 6). Properties:
 * 1. the parse-error verdict agrees with an independent RFC 8259 validator
 *    written here (recursive, strict UTF-8, no lone surrogate escapes);
 * 2. a body jansson reads (without a raw NUL byte) is never a parse error;
 * 3. when jansson reads it, the verdict and the tool list are what a reader
 *    walking jansson's tree finds: -32600 exactly when a message or params
 *    object has a duplicate member or a member that only folds onto a
 *    JSON-RPC/MCP member name, or a tools/call has no string params.name;
 *    otherwise every tools/call's params.name, in order, and nothing else.
 * Limits (SPEC 6): a body whose nesting passes MCP_RPC_MAX_DEPTH before any
 * syntax error is -32600, found by the validator too; a 413 (too many
 * messages or members) needs a body that can hold that many. Properties
 * 1-3 hold for the rest. */
#include "fuzz_common.h"
#include "jsonrpc.h"

#include <jansson.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_global_init();
    return 0;
}

/* ---- an independent RFC 8259 validator ---------------------------------- */

typedef struct {
    const unsigned char *s;
    size_t n, i;
    int depth, too_deep; /* too_deep: nesting passed the limit before any error */
} rd_t;

static void ws(rd_t *r)
{
    while (r->i < r->n && (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\n' || r->s[r->i] == '\r'))
        r->i++;
}

static int hexval(rd_t *r, unsigned *v)
{
    size_t k;
    if (r->i + 4 > r->n)
        return 0;
    *v = 0;
    for (k = 0; k < 4; k++) {
        char c = (char)r->s[r->i + k];
        const char *h = "0123456789abcdef0123456789ABCDEF", *q = c ? strchr(h, c) : NULL;
        if (!q)
            return 0;
        *v = *v * 16 + (unsigned)((q - h) % 16);
    }
    r->i += 4;
    return 1;
}

/* One UTF-8 character by its code point range (RFC 3629 table). */
static int utf8_char(rd_t *r)
{
    unsigned c = r->s[r->i], cp, k, need, min;
    if (c < 0x80) {
        r->i++;
        return 1;
    }
    if (c < 0xC0 || c >= 0xF8)
        return 0;
    need = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
    if (r->i + need >= r->n)
        return 0;
    cp = c & (0x7F >> (need + 1));
    for (k = 1; k <= need; k++) {
        if (r->i + k >= r->n || (r->s[r->i + k] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (r->s[r->i + k] & 0x3F);
    }
    min = need == 1 ? 0x80 : need == 2 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    r->i += need + 1;
    return 1;
}

static int string(rd_t *r)
{
    unsigned v, w;
    r->i++;
    while (r->i < r->n) {
        unsigned char c = r->s[r->i];
        if (c == '"') {
            r->i++;
            return 1;
        }
        if (c < 0x20)
            return 0;
        if (c != '\\') {
            if (!utf8_char(r))
                return 0;
            continue;
        }
        if (++r->i >= r->n)
            return 0;
        c = r->s[r->i++];
        if (c == 'u') {
            if (!hexval(r, &v))
                return 0;
            if (v >= 0xDC00 && v <= 0xDFFF)
                return 0;
            if (v >= 0xD800 && v <= 0xDBFF) {
                if (r->i + 2 > r->n || r->s[r->i] != '\\' || r->s[r->i + 1] != 'u')
                    return 0;
                r->i += 2;
                if (!hexval(r, &w) || w < 0xDC00 || w > 0xDFFF)
                    return 0;
            }
        }
        else if (!memchr("\"\\/bfnrt", c, 8))
            return 0;
    }
    return 0;
}

static int isdig(rd_t *r)
{
    return r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9';
}

static int number(rd_t *r)
{
    if (r->s[r->i] == '-')
        r->i++;
    if (!isdig(r))
        return 0;
    if (r->s[r->i++] != '0')
        while (isdig(r))
            r->i++;
    if (r->i < r->n && r->s[r->i] == '.') {
        r->i++;
        if (!isdig(r))
            return 0;
        while (isdig(r))
            r->i++;
    }
    if (r->i < r->n && (r->s[r->i] == 'e' || r->s[r->i] == 'E')) {
        r->i++;
        if (r->i < r->n && (r->s[r->i] == '+' || r->s[r->i] == '-'))
            r->i++;
        if (!isdig(r))
            return 0;
        while (isdig(r))
            r->i++;
    }
    return 1;
}

static int value(rd_t *r)
{
    static const char *const lit[] = {"true", "false", "null"};
    size_t k;
    char close;

    ws(r);
    if (r->i >= r->n)
        return 0;
    switch (r->s[r->i]) {
    case '"':
        return string(r);
    case '{':
    case '[':
        if (r->depth == MCP_RPC_MAX_DEPTH) {
            r->too_deep = 1;
            return 0;
        }
        close = r->s[r->i] == '{' ? '}' : ']';
        r->i++;
        ws(r);
        if (r->i < r->n && r->s[r->i] == close) {
            r->i++;
            return 1;
        }
        r->depth++;
        for (;;) {
            if (close == '}') {
                ws(r);
                if (r->i >= r->n || r->s[r->i] != '"' || !string(r))
                    return 0;
                ws(r);
                if (r->i >= r->n || r->s[r->i++] != ':')
                    return 0;
            }
            if (!value(r))
                return 0;
            ws(r);
            if (r->i >= r->n)
                return 0;
            if (r->s[r->i] == close) {
                r->i++;
                r->depth--;
                return 1;
            }
            if (r->s[r->i++] != ',')
                return 0;
        }
    default:
        if (r->s[r->i] == '-' || isdig(r))
            return number(r);
        for (k = 0; k < 3; k++)
            if (r->n - r->i >= strlen(lit[k]) && memcmp(r->s + r->i, lit[k], strlen(lit[k])) == 0) {
                r->i += strlen(lit[k]);
                return 1;
            }
        return 0;
    }
}

/* 1 valid, 0 not, -1 nested deeper than the limit before any error. */
static int rfc8259(const uint8_t *data, size_t size)
{
    rd_t r = {data, size, 0, 0, 0};
    if (!value(&r))
        return r.too_deep ? -1 : 0;
    ws(&r);
    return r.i == r.n;
}

/* ---- what a reader of jansson's tree finds ------------------------------ */

static const char *const MEMBERS[] = {"jsonrpc", "id", "method", "params", "name", "arguments", "uri"};

/* 1 when obj has a member that folds onto a member name without being it
 * (keys as C strings see them, as the module does). */
static int folded_member(json_t *obj)
{
    const char *key;
    size_t klen, i;
    json_t *v;
    json_object_keylen_foreach(obj, key, klen, v)
    {
        for (i = 0; i < sizeof(MEMBERS) / sizeof(MEMBERS[0]); i++)
            if (mcp_jsonrpc_name_equal(key, MEMBERS[i]) &&
                !(klen == strlen(MEMBERS[i]) && strcmp(key, MEMBERS[i]) == 0))
                return 1;
    }
    return 0;
}

/* Expected verdict of one message; pushes its tools/call name. */
static int expect_message(json_t *msg, apr_array_header_t *names)
{
    json_t *method, *params, *name;
    int bad;
    if (!json_is_object(msg))
        return 0;
    params = json_object_get(msg, "params");
    bad = folded_member(msg) || (json_is_object(params) && folded_member(params));
    method = json_object_get(msg, "method");
    if (json_is_string(method) && mcp_jsonrpc_name_equal(json_string_value(method), "tools/call")) {
        name = json_is_object(params) ? json_object_get(params, "name") : NULL;
        if (!json_is_string(name))
            return 1;
        APR_ARRAY_PUSH(names, const char *) = json_string_value(name);
    }
    return bad;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    apr_array_header_t *want = apr_array_make(p, 4, sizeof(const char *));
    mcp_rpc_body_t rpc;
    json_error_t err;
    json_t *doc, *loose;
    int code, bad = 0, i, valid;
    size_t k;

    code = mcp_jsonrpc_parse(p, (const char *)data, size, &rpc);
    FZ_ASSERT(code == rpc.code);
    FZ_ASSERT(code == 0 || code == MCP_RPC_PARSE_ERROR || code == MCP_RPC_INVALID_REQUEST || code == MCP_RPC_TOO_MANY);
    FZ_ASSERT((code == 0) == (rpc.cause == NULL));
    FZ_ASSERT(code == 0 || rpc.tool_calls->nelts == 0);
    FZ_ASSERT(rpc.id != NULL);
    if (code == MCP_RPC_TOO_MANY) { /* 257 members or 1025 messages: "":0, / {}, each */
        FZ_ASSERT(size > 2 * MCP_RPC_MAX_MEMBERS);
        apr_pool_destroy(p);
        return 0;
    }
    valid = rfc8259(data, size);
    if (valid < 0) {
        FZ_ASSERT(code == MCP_RPC_INVALID_REQUEST && strstr(rpc.cause, "nested deeper"));
        apr_pool_destroy(p);
        return 0;
    }
    FZ_ASSERT(!strstr(rpc.cause ? rpc.cause : "", "nested deeper"));
    /* 1 */
    FZ_ASSERT((code == MCP_RPC_PARSE_ERROR) == !valid);
    /* 2 (jansson stops at a raw NUL byte: "0\0" is 0 to it) */
    loose = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (loose && memchr(data, 0, size)) {
        json_decref(loose);
        loose = NULL;
    }
    FZ_ASSERT(!loose || code != MCP_RPC_PARSE_ERROR);
    /* 3: jansson refuses duplicates anywhere, so bodies with one are left
     * to the unit tests; the rest are compared member by member. */
    doc = loose ? json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &err)
                : NULL;
    if (doc) {
        if (json_is_array(doc)) {
            json_t *msg;
            json_array_foreach(doc, k, msg) bad |= expect_message(msg, want);
        }
        else
            bad = expect_message(doc, want);
        FZ_ASSERT(code == (bad ? MCP_RPC_INVALID_REQUEST : 0));
        if (!bad) {
            FZ_ASSERT(rpc.tool_calls->nelts == want->nelts);
            for (i = 0; i < want->nelts; i++)
                FZ_ASSERT(
                    strcmp(APR_ARRAY_IDX(rpc.tool_calls, i, const char *), APR_ARRAY_IDX(want, i, const char *)) == 0);
        }
    }
    json_decref(doc);
    json_decref(loose);
    apr_pool_destroy(p);
    return 0;
}
