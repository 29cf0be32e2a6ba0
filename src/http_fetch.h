/* Outbound HTTP for IdP documents (JWKS, discovery) through libcurl:
 * bounded time and size, TLS verified by default, http/https only, no
 * signals (threaded MPMs). curl_global_init is the caller's, once. */
#ifndef MCP_HTTP_FETCH_H
#define MCP_HTTP_FETCH_H

#include <apr_pools.h>

typedef struct {
    long timeout_s;       /* connect + total */
    int ssl_verify;       /* verify peer and host name */
    const char *ca_file;  /* NULL: system store */
    size_t max_size;      /* larger bodies are an error */
} mcp_http_opts_t;

typedef struct {
    long status;
    char *body;           /* NUL-terminated */
    size_t len;
} mcp_http_resp_t;

/* GET url. Returns 0 when a response arrived (any status), -1 with *err
 * (printable, names the cause) when none did or it exceeded max_size. */
int mcp_http_get(apr_pool_t *p, const char *url, const mcp_http_opts_t *o, mcp_http_resp_t *resp,
                 const char **err);

/* Reads a local file with the same size rule. */
int mcp_file_read(apr_pool_t *p, const char *path, size_t max_size, mcp_http_resp_t *resp, const char **err);

#endif
