/* SPDX-License-Identifier: Apache-2.0 */
/* The figures of metrics.h for operators: `SetHandler mcp-auth-metrics`
 * (Prometheus text exposition) and mod_status's page (status_hook). */
#ifndef MCP_METRICS_HANDLER_H
#define MCP_METRICS_HANDLER_H

#include <httpd.h>

#define MCP_METRICS_HANDLER "mcp-auth-metrics"

/* handler hook: answers requests whose handler is MCP_METRICS_HANDLER. */
int mcp_metrics_handler(request_rec *r);

/* register_hooks: mod_status's optional status_hook (nothing happens
 * when mod_status is not loaded). */
void mcp_metrics_register_status(void);

#endif
