/* SPDX-License-Identifier: Apache-2.0 */
/* The client-facing side of a refusal: HTTP status, the one Bearer
 * challenge (RFC 6750 3, RFC 9728 5.1) and the small JSON error body. */
#ifndef MCP_CHALLENGE_H
#define MCP_CHALLENGE_H

#include <apr_pools.h>

#include "fail.h"

typedef struct {
    const char *realm;             /* AuthName, or NULL */
    const char *resource_metadata; /* absolute URL of the RFC 9728 document, or NULL */
    const char *scope;             /* scope hint (no-token 401) or needed scopes (403), or NULL */
} mcp_challenge_t;

int mcp_fail_status(mcp_fail_kind kind);

/* WWW-Authenticate value, or NULL when the status carries no challenge. */
const char *mcp_challenge_header(apr_pool_t *p, const mcp_fail_t *fail, const mcp_challenge_t *c);

/* {"error":"...","error_description":"..."} for this refusal. */
const char *mcp_error_body(apr_pool_t *p, const mcp_fail_t *fail);

/* RFC 7230 quoted-string of s ('"' and '\\' escaped, controls dropped). */
const char *mcp_quote(apr_pool_t *p, const char *s);

#endif
