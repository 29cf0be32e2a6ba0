/* SPDX-License-Identifier: Apache-2.0 */
/* RFC 7662 token introspection for opaque tokens: the client call (POST
 * form or GET parameter, client_secret_basic/post/none), the strict check
 * of the answer, and a shared cache in which one process asks the IdP while
 * the others wait for its answer. */
#ifndef MCP_INTROSPECT_H
#define MCP_INTROSPECT_H

#include <apr_pools.h>
#include <jansson.h>

#include "http_fetch.h"
#include "fail.h"
#include "remote_cache.h"
#include "shm_cache.h"
#include "verifier.h"

typedef enum { MCP_AUTH_BASIC = 0, MCP_AUTH_POST, MCP_AUTH_NONE } mcp_client_auth;

typedef struct {
    const char *url; /* NULL: discovered (introspection_endpoint) */
    mcp_client_auth auth;
    const char *client_id;
    const char *client_secret; /* never logged */
    int use_get;               /* GET url?param=token (Google tokeninfo style) */
    const char *param;         /* "token" */
    apr_interval_time_t cache; /* 0: every request asks the IdP */
} mcp_introspect_conf_t;

/* Negative answers are cached at most this long (and never longer than cache). */
#define MCP_INTROSPECT_NEGATIVE_TTL apr_time_from_sec(30)

/* The result for token: from the cache, or from url (asking once across
 * processes). 0 with the endpoint's JSON object (check it next), or -1 with
 * MCP_FAIL_UNAVAILABLE ("Introspection failed"). policy_fp (32 bytes, may
 * be NULL): the location's policy fingerprint, part of the cache key.
 * *valid_until: expiry of the shared entry the answer came from or was
 * stored in (0: not cached; no copy of it may be kept). An inactive answer
 * moves the store's revocation epoch (after it is stored). remote (may be
 * NULL): the fleet's cache (MCPAuthSharedCache), asked after st misses and
 * before the IdP, written after the IdP answers; never with cache=0. */
int mcp_introspect(apr_pool_t *p, mcp_store_t *st, mcp_remote_t *remote, const mcp_introspect_conf_t *c,
                   const unsigned char *policy_fp, const char *url, const mcp_http_opts_t *http, const char *token,
                   size_t len, const mcp_log_t *log, json_t **result, apr_time_t *valid_until, mcp_fail_t *fail);

/* RFC 7662 2.2 under the location's rules: "active" must be true; exp (with
 * skew), iss (a configured issuer) and aud are checked when present, and the
 * explicitly required claims must be there. *issuer_index: the matching
 * issuer, or -1 when the answer names none. */
int mcp_introspect_check(apr_pool_t *p, const json_t *result, const mcp_verify_policy_t *pol, int *issuer_index,
                         mcp_fail_t *fail);

#endif
