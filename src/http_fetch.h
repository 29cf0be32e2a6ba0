/* SPDX-License-Identifier: Apache-2.0 */
/* Outbound HTTP to the IdP (JWKS, discovery, introspection) through
 * libcurl: bounded time and size, TLS verified by default, http/https
 * only, no signals (threaded MPMs). curl_global_init is the caller's, once.
 *
 * In an httpd child (after mcp_http_child_init) transfers reuse this
 * process's curl handles: connections, DNS answers, TLS sessions and the
 * parsed CA bundle survive from one call to the next, so a call to a warm
 * IdP costs no handshake and no re-read of the trust store (a set of
 * handles per call that may be in flight, each keeping at most 2 idle
 * connections; their sockets are close-on-exec). The number of
 * calls under way at once in the process is capped, every call gives up
 * when the process is told to stop (mcp_stopping), and an endpoint that
 * just failed is not asked again before its backoff ends (idp_health.h).
 * Outside a child (CLI, unit tests) each call uses handles of its own. */
#ifndef MCP_HTTP_FETCH_H
#define MCP_HTTP_FETCH_H

#include <apr_pools.h>
#include <apr_time.h>

#include "idp_health.h"

typedef struct {
    long timeout_s;      /* connect + total */
    int ssl_verify;      /* verify peer and host name */
    const char *ca_file; /* NULL: system store */
    size_t max_size;     /* larger bodies are an error */
} mcp_http_opts_t;

typedef struct {
    long status;
    char *body; /* NUL-terminated */
    size_t len;
} mcp_http_resp_t;

/* GET a document (JWKS, discovery). Returns 0 when a response arrived
 * (any status), -1 with *err (printable, names the cause) when none did,
 * it exceeded max_size, or the call was not made (backoff, cap, no time
 * left, stopping). Documents are fetched once for all processes (the
 * store's lease), so they may use a small reserve above the cap that
 * per-token calls cannot take. */
int mcp_http_get(apr_pool_t *p, const char *url, const mcp_http_opts_t *o, mcp_http_resp_t *resp, const char **err);

/* A per-token call (introspection): POST an
 * application/x-www-form-urlencoded body (form != NULL) or GET (form ==
 * NULL). authorization: an Authorization header value or NULL. Same bounds
 * and result rules as mcp_http_get, without the reserve. */
int mcp_http_request(apr_pool_t *p, const char *url, const mcp_http_opts_t *o, const char *form,
                     const char *authorization, mcp_http_resp_t *resp, const char **err);

/* child_init: this process's handles, at most max_calls per-token calls
 * under way at once (documents: two more), freed when pchild is cleared;
 * and at most server_calls per-token calls to one endpoint in the whole
 * server. health: the shared failure table (NULL: no backoff, no
 * server-wide bound). */
void mcp_http_child_init(apr_pool_t *pchild, int max_calls, int server_calls, mcp_idp_health_t *health);

/* One request's IdP time budget, for the calling thread: every transfer
 * between begin and end ends by deadline (SPEC 7: MCPAuthHTTPTimeout for
 * all the waits of a request together, not per call). 0: no deadline. */
void mcp_http_scope_begin(apr_time_t deadline);
void mcp_http_scope_end(void);

/* The calling thread's deadline (0: none), for other waits of the request. */
apr_time_t mcp_http_deadline(void);

/* How long a mark "this process is calling the IdP for everyone" may
 * stand: calls transfers of MCPAuthHTTPTimeout each, plus a margin. The
 * others wait for the caller meanwhile; a caller that crashed blocks them
 * no longer than that. */
apr_interval_time_t mcp_http_lease(const mcp_http_opts_t *o, int calls);

/* now + MCPAuthHTTPTimeout: the end of one wait for the IdP. */
apr_time_t mcp_http_wait_end(const mcp_http_opts_t *o, apr_time_t now);

/* Seconds a client should wait before retrying, learnt by the calls of the
 * current scope (the backoff of an endpoint that failed or was not asked,
 * 1 for a refusal by the cap); 0 when no call was refused or failed. */
long mcp_http_retry_after(void);

/* RFC 3986 / RFC 6749 2.3.1 form encoding (application/x-www-form-urlencoded). */
char *mcp_form_encode(apr_pool_t *p, const char *s);

/* Reads a local file with the same size rule. */
int mcp_file_read(apr_pool_t *p, const char *path, size_t max_size, mcp_http_resp_t *resp, const char **err);

#endif
