/* SPDX-License-Identifier: Apache-2.0 */
/* httpd side of MCPAuthSharedCache (SPEC 10): the socache provider named
 * by the directive (redis, memcache, ...) looked up, created and
 * initialised the way mod_ssl does it for SSLSessionCache, and its
 * retrieve/store calls handed to the engine (remote_cache.h), which runs
 * them on threads of its own with bounded waits. */
#ifndef MCP_SHARED_CACHE_H
#define MCP_SHARED_CACHE_H

#include <httpd.h>
#include <http_config.h>

#include "remote_cache.h"

/* The directive: provider[:args]; refused inside <VirtualHost>. */
const char *mcp_cmd_shared_cache(cmd_parms *cmd, void *dconf, const char *arg);

/* pre_config: forget the previous generation's choice. */
void mcp_shared_cache_pre_config(void);

/* post_config: the provider's init (a server it cannot reach is not an
 * error: requests fall back to the IdP). NULL or an error text. */
const char *mcp_shared_cache_post_config(apr_pool_t *pconf, server_rec *s);

/* child_init: this process's handle. */
void mcp_shared_cache_child_init(apr_pool_t *pchild, server_rec *s);

/* This process's handle; NULL when MCPAuthSharedCache is not set. */
mcp_remote_t *mcp_shared_cache(void);

#endif
