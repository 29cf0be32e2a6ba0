/* SPDX-License-Identifier: Apache-2.0 */
/* The version of mod_mcp_auth and of the libraries it runs with: the
 * module's startup line and `mcp-auth-token --version` say the same. */
#ifndef MCP_VERSION_H
#define MCP_VERSION_H

#include <apr_pools.h>

/* One step per landed issue (ChangeLog). */
#define MCP_AUTH_VERSION "0.14.0"

/* "mod_mcp_auth/0.14.0 (OpenSSL 3.0.x ..., libcurl/7.88.1, jansson/2.14)":
 * the versions of the libraries loaded in this process, which may differ
 * from the headers it was built with. */
const char *mcp_version_line(apr_pool_t *p, const char *program);

#endif
