/* SPDX-License-Identifier: Apache-2.0 */
#include "metrics_handler.h"

#include <apr_optional_hooks.h>
#include <http_config.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_status.h>
#include <string.h>

#include "metrics.h"
#include "shm.h"

/* The gauges read now from this generation's shared store. */
static void gauges(mcp_metrics_gauges_t *g)
{
    mcp_store_t *st = mcp_shm_store();
    memset(g, 0, sizeof(*g));
    if (!st)
        return;
    g->have_store = 1;
    g->entries = mcp_store_live_entries(st, apr_time_now());
    g->capacity = mcp_store_slots(st);
}

int mcp_metrics_handler(request_rec *r)
{
    mcp_metrics_gauges_t g;
    const char *text;

    if (!r->handler || strcmp(r->handler, MCP_METRICS_HANDLER) != 0)
        return DECLINED;
    /* The Allow header of the 405 (httpd adds HEAD to GET). */
    ap_allow_methods(r, REPLACE_ALLOW, "GET", NULL);
    if (r->method_number != M_GET)
        return HTTP_METHOD_NOT_ALLOWED; /* HEAD is a GET to httpd: it answers it without the body */
    gauges(&g);
    text = mcp_metrics_render(r->pool, &g);
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_set_content_length(r, (apr_off_t)strlen(text));
    if (!r->header_only)
        ap_rputs(text, r);
    return OK;
}

/* mod_status: ?auto gets "Key: value" lines, the page an HTML table. */
static int status_hook(request_rec *r, int flags)
{
    mcp_metrics_gauges_t g;
    gauges(&g);
    ap_rputs(mcp_metrics_render_status(r->pool, &g, !(flags & AP_STATUS_SHORT)), r);
    return OK;
}

void mcp_metrics_register_status(void)
{
    APR_OPTIONAL_HOOK(ap, status_hook, status_hook, NULL, NULL, APR_HOOK_MIDDLE);
}
