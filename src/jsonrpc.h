/* MCP JSON-RPC body inspection for per-tool scopes (SPEC 6): which tools
 * does a request body call? The module must see the same message every
 * backend parser sees, so the body is read by a strict RFC 8259 parser of
 * our own (numbers of any size are numbers, no caps on depth or size) and
 * anything two parsers could read differently is refused: not exactly one
 * JSON value, a duplicated member, or a member name that only equals a
 * JSON-RPC/MCP member name under Unicode simple case folding (Go's
 * encoding/json matches `paramſ` to `params`). */
#ifndef MCP_JSONRPC_H
#define MCP_JSONRPC_H

#include <apr_pools.h>
#include <apr_tables.h>

#define MCP_RPC_PARSE_ERROR (-32700)     /* not exactly one JSON value */
#define MCP_RPC_INVALID_REQUEST (-32600) /* JSON, but ambiguous to read */

typedef struct {
    int code;          /* 0, MCP_RPC_PARSE_ERROR or MCP_RPC_INVALID_REQUEST */
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
} mcp_rpc_body_t;

/* Reads body[0..len). Returns out->code (0: out->tool_calls is complete). */
int mcp_jsonrpc_parse(apr_pool_t *p, const char *body, size_t len, mcp_rpc_body_t *out);

/* a and b are equal under ASCII case and the simple case folds onto ASCII
 * letters (U+017F -> s, U+212A -> k); both NUL-terminated UTF-8. Used for
 * the method and tool names, so a backend that compares them loosely
 * cannot be reached under a spelling we did not check. */
int mcp_jsonrpc_name_equal(const char *a, const char *b);

#endif
