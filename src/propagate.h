/* SPDX-License-Identifier: Apache-2.0 */
/* Identity for the backend: claim values encoded for headers and the
 * environment, and the scrubbing of client-sent headers that could
 * impersonate them (case and '-'/'_' variants, which CGI maps together). */
#ifndef MCP_PROPAGATE_H
#define MCP_PROPAGATE_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <jansson.h>

/* Strings as they are; numbers and booleans as JSON text; arrays and objects
 * as compact JSON. NULL when absent, null, or when the text would carry a
 * control character (CR, LF, ...), which must never reach a header. */
const char *mcp_claim_text(apr_pool_t *p, const json_t *value, int *unsafe);

/* Environment variable name: upper case, '-' becomes '_'. */
const char *mcp_env_name(apr_pool_t *p, const char *name);

/* Removes every header whose name equals one of names ignoring case and
 * treating '-' and '_' alike. */
void mcp_scrub_headers(apr_pool_t *p, apr_table_t *headers, const char *const *names, int n);

#endif
