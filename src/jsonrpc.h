/* SPDX-License-Identifier: Apache-2.0 */
/* MCP JSON-RPC body inspection for per-tool scopes (SPEC 6): which tools
 * does a request body call? The module must see the same message every
 * backend parser sees, so the body is read by a strict RFC 8259 parser of
 * our own (numbers of any size are numbers) in one pass and bounded memory,
 * and anything two parsers could read differently is refused: not exactly one
 * JSON value, a duplicated member, or a member name that only equals a
 * JSON-RPC/MCP member name under Unicode simple case folding (Go's
 * encoding/json matches `paramſ` to `params`). */
#ifndef MCP_JSONRPC_H
#define MCP_JSONRPC_H

#include <apr_pools.h>
#include <apr_tables.h>

#define MCP_RPC_PARSE_ERROR (-32700)     /* not exactly one JSON value */
#define MCP_RPC_INVALID_REQUEST (-32600) /* JSON, but ambiguous to read, or nested too deep */
/* Not a JSON-RPC code: more messages or members than any MCP client sends
 * (answered with HTTP 413, like a body over the size limit). */
#define MCP_RPC_TOO_MANY 413

/* Limits (SPEC 6), far above what MCP messages reach and low enough that
 * reading an adversarial body keeps no state per element. */
#define MCP_RPC_MAX_DEPTH 128     /* nesting of arrays and objects, the whole body -> -32600 */
#define MCP_RPC_MAX_MESSAGES 1024 /* messages in one batch -> 413 */
#define MCP_RPC_MAX_MEMBERS 256   /* members of one message or of its params object -> 413 */

typedef struct {
    int code;          /* 0, MCP_RPC_PARSE_ERROR, MCP_RPC_INVALID_REQUEST or MCP_RPC_TOO_MANY */
    const char *cause; /* why refused, for the log: never body text */
    int is_batch;      /* the body is an array of messages */
    /* Every tools/call's params.name (NUL-terminated copies: a name with an
     * escaped NUL is judged by the part a C string parser would see). */
    apr_array_header_t *tool_calls;
    /* The id to answer a refusal with: raw JSON text of a single message's
     * string or number id, else "null". */
    const char *id;
    /* A single message's method, params.name and params.uri when strings
     * (NULL otherwise): for checks that compare the body with headers. */
    const char *method, *name, *uri;
    /* Their lengths: a string with an escaped NUL is longer than its C
     * string view, and is compared with a header in full. */
    size_t method_len, name_len, uri_len;
} mcp_rpc_body_t;

/* Reads body[0..len). Returns out->code (0: out->tool_calls is complete). */
int mcp_jsonrpc_parse(apr_pool_t *p, const char *body, size_t len, mcp_rpc_body_t *out);

/* a and b are equal under ASCII case and the simple case folds onto ASCII
 * letters (U+017F -> s, U+212A -> k); both NUL-terminated UTF-8. Used for
 * the method and tool names, so a backend that compares them loosely
 * cannot be reached under a spelling we did not check. */
int mcp_jsonrpc_name_equal(const char *a, const char *b);

/* A key for s that two names share exactly when mcp_jsonrpc_name_equal
 * holds (their folded code points, 4 bytes each): tool names are looked up
 * in a hash instead of compared with every MCPAuthToolScope line. */
const char *mcp_jsonrpc_name_key(apr_pool_t *p, const char *s, apr_size_t *klen);

#endif
