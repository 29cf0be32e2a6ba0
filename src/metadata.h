/* SPDX-License-Identifier: Apache-2.0 */
/* RFC 9728 OAuth 2.0 Protected Resource Metadata: the JSON document an
 * MCP client fetches (from the challenge's resource_metadata URL) to learn
 * which authorization servers and scopes this resource accepts. */
#ifndef MCP_METADATA_H
#define MCP_METADATA_H

#include <apr_pools.h>

#define MCP_METADATA_PREFIX "/.well-known/oauth-protected-resource"

const char *mcp_metadata_document(apr_pool_t *p, const char *resource, const char *const *issuers, int n_issuers,
                                  const char *const *scopes, int n_scopes);

#endif
