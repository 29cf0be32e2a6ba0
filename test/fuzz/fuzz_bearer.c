/* SPDX-License-Identifier: Apache-2.0 */
/* RFC 6750 bearer extraction. The input up to its first NUL is the
 * Authorization value, the rest (when there is a NUL) the MCPAuthTokenHeader
 * value. A token found is a non-empty b64token that ends its header value,
 * lies inside one of the two values, and never comes with a second one. */
#include "bearer.h"
#include "fuzz_common.h"

#include <strings.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_global_init();
    return 0;
}

static int b64token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-._~+/", c);
}

static int inside(const char *tok, size_t len, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return s && tok >= s && tok + len <= s + n;
}

static void check(const char *authz, const char *alt)
{
    const char *tok = NULL;
    size_t len = 0, i;
    mcp_fail_t fail = {0};

    if (mcp_bearer_extract(authz, alt, &tok, &len, &fail) == 0) {
        FZ_ASSERT(tok && len > 0 && tok[len] == '\0');
        FZ_ASSERT(inside(tok, len, authz) || inside(tok, len, alt));
        for (i = 0; i < len && tok[i] != '='; i++)
            FZ_ASSERT(b64token_char(tok[i]));
        FZ_ASSERT(i > 0);
        for (; i < len; i++)
            FZ_ASSERT(tok[i] == '=');
        /* RFC 6750 2: one method only. */
        if (inside(tok, len, authz))
            FZ_ASSERT(alt == NULL);
        else
            FZ_ASSERT(authz == NULL || strncasecmp(authz, "Bearer", 6) != 0 ||
                      (authz[6] != ' ' && authz[6] != '\t' && authz[6]));
    }
    else {
        FZ_ASSERT(fail.reason != NULL);
        FZ_ASSERT(fail.kind == MCP_FAIL_NO_TOKEN || fail.kind == MCP_FAIL_INVALID_REQUEST);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    const uint8_t *rest;
    size_t rest_len, first = fz_split(data, size, &rest, &rest_len);
    const char *authz = fz_cstr(p, data, first);
    const char *alt = rest ? fz_cstr(p, rest, rest_len) : NULL;

    check(authz, alt);
    check(authz, NULL);
    if (alt)
        check(NULL, alt);
    apr_pool_destroy(p);
    return 0;
}
