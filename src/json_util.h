/* SPDX-License-Identifier: Apache-2.0 */
/* jansson glue with the engine's rules: duplicate members rejected, values
 * owned by an APR pool (decref'd by a pool cleanup), compact output. */
#ifndef MCP_JSON_UTIL_H
#define MCP_JSON_UTIL_H

#include <apr_pools.h>
#include <jansson.h>

/* Parses buf[0..len) strictly (RFC 8259, duplicate members rejected, no NUL
 * in strings). Returns NULL on any error; the result lives as long as p. */
json_t *mcp_json_parse(apr_pool_t *p, const char *buf, size_t len);

/* Ties an existing reference to p: json_decref when p is cleared. */
json_t *mcp_json_own(apr_pool_t *p, json_t *j);

/* Compact JSON text in p (NULL on allocation failure). */
char *mcp_json_compact(apr_pool_t *p, const json_t *j);

/* Member as C string when present and a JSON string; NULL otherwise. */
const char *mcp_json_str(const json_t *obj, const char *key);

#endif
