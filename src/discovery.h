/* SPDX-License-Identifier: Apache-2.0 */
/* OIDC / RFC 8414 discovery for a keyring's issuer: where the document is,
 * and its members (jwks_uri, introspection_endpoint), fetched into the
 * shared store when due. */
#ifndef MCP_DISCOVERY_H
#define MCP_DISCOVERY_H

#include <apr_pools.h>

#include "fail.h"
#include "keyring.h"

/* Discovery URLs for an issuer, in the order they are tried: OIDC
 * (issuer + /.well-known/openid-configuration) then RFC 8414 with the
 * well-known segment inserted before the issuer's path. */
void mcp_discovery_urls(apr_pool_t *p, const char *issuer, const char **oidc, const char **rfc8414);

/* The member of the discovery document (OIDC / RFC 8414) of the keyring's
 * issuer, the document fetched if due; NULL when not available, or when an
 * https issuer's jwks_uri or introspection_endpoint is not https (SPEC 7).
 * Other engine parts (introspection) use it. */
const char *mcp_keyring_discovered(mcp_keyring_t *kr, apr_pool_t *p, const mcp_log_t *log, const char *member);

#endif
