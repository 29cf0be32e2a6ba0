/* SPDX-License-Identifier: Apache-2.0 */
/* MCP 2026-07-28 mirrors parts of a JSON-RPC request into HTTP headers
 * (`Mcp-Method`, `Mcp-Name`) so that proxies can route on them. Anything
 * that routes or decides on a header while the backend executes the body
 * must see the same values: a header that disagrees with the body, a
 * header the body has nothing to match, or a required header missing
 * beside its sibling, is a mismatch (-32020, SPEC 6). Policy is always
 * decided from the body; the headers are only checked. */
#ifndef MCP_RPC_HEADERS_H
#define MCP_RPC_HEADERS_H

#include <apr_pools.h>

#include "jsonrpc.h"

#define MCP_RPC_HEADER_MISMATCH (-32020)

/* An `Mcp-Name` value as the bytes it stands for: plain visible ASCII (and
 * inner spaces/tabs), or `=?base64?<standard, padded base64>?=` decoded.
 * Returns 0, or -1 for a value with characters a header may not carry or
 * a sentinel whose content is not canonical base64. */
int mcp_rpc_header_value(apr_pool_t *p, const char *value, const char **out, size_t *outlen);

/* NULL when the headers agree with the body, else why not (for the log;
 * no body text in it). method_hdr / name_hdr: the header values, NULL when
 * absent. rpc: the parsed body, NULL when the request has none. */
const char *mcp_rpc_headers_mismatch(apr_pool_t *p, const char *method_hdr, const char *name_hdr,
                                     const mcp_rpc_body_t *rpc);

#endif
