/* SPDX-License-Identifier: Apache-2.0 */
/* Failure values and logging callbacks shared by the whole engine.
 * A refusal travels from the engine to the HTTP layer as one mcp_fail_t
 * (kind + fixed reason + optional log-only detail); logging goes through
 * mcp_log_t so src/ never depends on httpd. */
#ifndef MCP_FAIL_H
#define MCP_FAIL_H

#include <apr_pools.h>

typedef enum {
    MCP_OK = 0,
    MCP_FAIL_NO_TOKEN,           /* 401 challenge without error code */
    MCP_FAIL_INVALID_REQUEST,    /* 400 invalid_request */
    MCP_FAIL_INVALID_TOKEN,      /* 401 invalid_token */
    MCP_FAIL_INSUFFICIENT_SCOPE, /* 403 insufficient_scope */
    MCP_FAIL_UNAVAILABLE,        /* 503: the IdP cannot be reached and nothing usable is cached */
    MCP_FAIL_CONFIG              /* 500: the location is misconfigured */
} mcp_fail_kind;

typedef struct {
    mcp_fail_kind kind;
    /* Fixed, short English text: used as error_description and as the
     * searchable words of the log line. Never contains '"' or '\\'. */
    const char *reason;
    /* Optional log-only context (issuer, URL, kid), already made printable.
     * Never contains a token or a secret. */
    const char *detail;
} mcp_fail_t;

/* Log levels, numerically equal to httpd's APLOG_* values. */
enum { MCP_LOG_ERR = 3, MCP_LOG_WARNING = 4, MCP_LOG_NOTICE = 5, MCP_LOG_INFO = 6, MCP_LOG_DEBUG = 7 };

/* file and line: where the engine wrote the line (the glue hands them to
 * httpd, so ErrorLogFormat %F names the engine file, not the callback). */
typedef struct {
    void (*fn)(void *ctx, const char *file, int line, int level, const char *msg);
    void *ctx;
} mcp_log_t;

/* Fills *fail and returns -1, so failure paths read `return mcp_fail(...)`. */
int mcp_fail(mcp_fail_t *fail, mcp_fail_kind kind, const char *reason, const char *detail);

/* printf-style log through an optional logger (NULL logger: dropped),
 * stamped with the caller's file and line. */
#define mcp_logf(log, p, level, ...) mcp_log_at((log), (p), __FILE__, __LINE__, (level), __VA_ARGS__)
void mcp_log_at(const mcp_log_t *log, apr_pool_t *p, const char *file, int line, int level, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Copy of s safe for a log line: at most max bytes, control characters,
 * quotes, backslashes and non-ASCII bytes shown as \xNN. */
const char *mcp_printable(apr_pool_t *p, const char *s, size_t max);

#endif
