/* SPDX-License-Identifier: Apache-2.0 */
/* Once per request, just before mod_log_config writes its lines: the
 * request's figure in the server-wide counters (metrics.h) and its audit
 * record as request notes and environment variables (SPEC 10). */
#ifndef MCP_AUDIT_H
#define MCP_AUDIT_H

#include <httpd.h>

/* The request's outcome into the server-wide counters, once per request,
 * where it is decided -- a refusal, or the handler about to run for an
 * accepted token -- so a figure has moved before the client has its
 * answer. Subrequests and requests not decided yet count nothing. */
void mcp_audit_count(request_rec *r);

/* log_transaction hook (runs before mod_log_config's): the count of a
 * request no decision point saw, and the audit notes and variables. */
int mcp_audit_log_transaction(request_rec *r);

#endif
