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

/* POST an application/x-www-form-urlencoded body (form != NULL) or GET
 * (form == NULL). authorization: an Authorization header value or NULL.
 * Same bounds and result rules as mcp_http_get. */
int mcp_http_request(apr_pool_t *p, const char *url, const mcp_http_opts_t *o, const char *form,
                     const char *authorization, mcp_http_resp_t *resp, const char **err);

/* RFC 3986 / RFC 6749 2.3.1 form encoding (application/x-www-form-urlencoded). */
char *mcp_form_encode(apr_pool_t *p, const char *s);

/* Reads a local file with the same size rule. */
int mcp_file_read(apr_pool_t *p, const char *path, size_t max_size, mcp_http_resp_t *resp, const char **err);

#endif
