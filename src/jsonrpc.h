/* MCP JSON-RPC body inspection for per-tool scopes: which tools does a
 * request body call? Built to agree with lenient backends: a body we
 * cannot parse is judged by the tool names its bytes could spell. */
#ifndef MCP_JSONRPC_H
#define MCP_JSONRPC_H

#include <apr_pools.h>
#include <apr_tables.h>

typedef enum {
    MCP_RPC_PARSED,     /* JSON: names holds every tools/call params.name */
    MCP_RPC_OPAQUE,     /* not JSON to us: names holds the configured tools it may name */
    MCP_RPC_DUPLICATES  /* duplicate member names: parsers disagree on the winner */
} mcp_rpc_shape;

/* known: the configured tool names (for the opaque case). Tool names and
 * JSON keys are compared case-insensitively, so a backend that matches keys
 * loosely (Go) cannot be reached with a spelling we did not check. */
mcp_rpc_shape mcp_jsonrpc_tool_calls(apr_pool_t *p, const char *body, size_t len, const apr_array_header_t *known,
                                     apr_array_header_t *names);

#endif
