/* SPDX-License-Identifier: Apache-2.0 */
/* Once per request, just before mod_log_config writes its lines: the
 * request's figure in the server-wide counters (metrics.h) and its audit
 * record as request notes and environment variables (SPEC 10). */
#ifndef MCP_AUDIT_H
#define MCP_AUDIT_H

#include <httpd.h>

/* log_transaction hook (runs before mod_log_config's). */
int mcp_audit_log_transaction(request_rec *r);

#endif
