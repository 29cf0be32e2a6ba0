/* SPDX-License-Identifier: Apache-2.0 */
/* Reading claims for authorization: claim paths ($.a.b), the token's
 * scopes (space-delimited string or JSON array, scope then scp), scope-set
 * arithmetic, and value matching for Require mcp-claim. */
#ifndef MCP_CLAIMS_H
#define MCP_CLAIMS_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <jansson.h>

/* "$.a.b", "$.a", "a.b" or "a" -> the value, "$" -> the whole object;
 * NULL when any step is missing or not an object. */
json_t *mcp_claim_path(const json_t *claims, const char *path);

/* Scopes granted by the token: from the claims named in `claim` (one name
 * or path, or several separated by spaces: the union) when given, else
 * "scope" then "scp". Strings are split on spaces; arrays contribute their strings. */
apr_array_header_t *mcp_token_scopes(apr_pool_t *p, const json_t *claims, const char *claim);

/* MCPAuthScopeRequestPrefix (Entra): the requestable spelling of a scope,
 * prefix + scope, unless it already carries the prefix (never twice).
 * prefix NULL or "": the scope itself. */
const char *mcp_scope_requestable(apr_pool_t *p, const char *scope, const char *prefix);

/* The short form of a granted scope that carries the prefix (what the
 * rules are written in); NULL when it does not carry it. */
const char *mcp_scope_short(const char *scope, const char *prefix);

/* Splits a space-delimited scope string into a set (duplicates dropped). */
apr_array_header_t *mcp_scope_split(apr_pool_t *p, const char *s);

int mcp_scope_has(const apr_array_header_t *set, const char *scope);

/* Adds what is not there yet. */
void mcp_scope_add(apr_array_header_t *set, const char *scope);

/* Space-delimited text of a set (NULL for an empty set). */
const char *mcp_scope_join(apr_pool_t *p, const apr_array_header_t *set);

/* Require mcp-claim: does the value (string, number, boolean, or an array
 * of them) equal, or contain, one of the wanted texts? Numbers and booleans
 * compare by their JSON text ("42", "true"). */
int mcp_claim_matches(const json_t *value, const char *const *wanted, int n);

#endif
