/* SPDX-License-Identifier: Apache-2.0 */
/* Serves the RFC 9728 document of every location with AuthType mcp-jwt at
 * /.well-known/oauth-protected-resource<location> (and at the root when a
 * virtual host protects exactly one location), without a token and with
 * CORS, before any access control of the well-known path itself. */
#ifndef MCP_METADATA_HTTPD_H
#define MCP_METADATA_HTTPD_H

#include <httpd.h>

/* quick_handler */
int mcp_metadata_handler(request_rec *r, int lookup_uri);

/* Subrequests made to find a location's configuration skip access control. */
int mcp_metadata_is_lookup(request_rec *r);

#endif
