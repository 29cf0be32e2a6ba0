/* SPDX-License-Identifier: Apache-2.0 */
/* RFC 6750 section 2.1: the bearer token from an Authorization header
 * value (or a configured raw-token header). Strict syntax; two merged
 * Authorization headers or two token sources are a malformed request. */
#ifndef MCP_BEARER_H
#define MCP_BEARER_H

#include <stddef.h>

#include "fail.h"

/* authorization: the Authorization header value or NULL; alt: the
 * MCPAuthTokenHeader value or NULL. On success *token points into one of
 * them. MCP_FAIL_NO_TOKEN when neither carries a bearer token. */
int mcp_bearer_extract(const char *authorization, const char *alt, const char **token, size_t *len, mcp_fail_t *fail);

#endif
