/* SPDX-License-Identifier: Apache-2.0 */
#include "fail.h"

#include <apr_strings.h>
#include <stdarg.h>

int mcp_fail(mcp_fail_t *fail, mcp_fail_kind kind, const char *reason, const char *detail)
{
    if (fail) {
        fail->kind = kind;
        fail->reason = reason;
        fail->detail = detail;
    }
    return -1;
}

void mcp_log_at(const mcp_log_t *log, apr_pool_t *p, const char *file, int line, int level, const char *fmt, ...)
{
    va_list ap;
    if (!log || !log->fn)
        return;
    va_start(ap, fmt);
    log->fn(log->ctx, file, line, level, apr_pvsprintf(p, fmt, ap));
    va_end(ap);
}

const char *mcp_printable(apr_pool_t *p, const char *s, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, n = 0;
    char *out;

    if (!s)
        return "(none)";
    out = apr_palloc(p, max * 4 + 4);
    for (i = 0; s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
        else {
            out[n++] = (char)c;
        }
    }
    if (s[i]) {
        out[n++] = '.';
        out[n++] = '.';
        out[n++] = '.';
    }
    out[n] = '\0';
    return out;
}
