#include "bearer.h"

#include <string.h>
#include <strings.h>

/* b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static int b64token_len(const char *s, size_t *len)
{
    size_t i = 0;
    while ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
           strchr("-._~+/", s[i]) != NULL) {
        if (s[i] == '\0')
            break;
        i++;
    }
    if (i == 0)
        return -1;
    while (s[i] == '=')
        i++;
    if (s[i] != '\0')
        return -1;
    *len = i;
    return 0;
}

int mcp_bearer_extract(const char *authorization, const char *alt, const char **token, size_t *len,
                       mcp_fail_t *fail)
{
    const char *found = NULL;
    size_t found_len = 0;

    if (authorization) {
        const char *sp = authorization + strcspn(authorization, " \t");
        /* httpd merges repeated headers with ", "; no single credential has a comma. */
        if (strchr(authorization, ','))
            return mcp_fail(fail, MCP_FAIL_INVALID_REQUEST, "More than one Authorization header", NULL);
        if (sp - authorization == 6 && strncasecmp(authorization, "Bearer", 6) == 0) {
            while (*sp == ' ' || *sp == '\t')
                sp++;
            if (*sp == '\0')
                return mcp_fail(fail, MCP_FAIL_INVALID_REQUEST, "Empty bearer token", NULL);
            if (b64token_len(sp, &found_len))
                return mcp_fail(fail, MCP_FAIL_INVALID_REQUEST, "Malformed Authorization header", NULL);
            found = sp;
        }
        /* Another scheme (Basic, ...) carries no bearer token: not an error. */
    }
    if (alt) {
        size_t alt_len;
        while (*alt == ' ' || *alt == '\t')
            alt++;
        if (strchr(alt, ','))
            return mcp_fail(fail, MCP_FAIL_INVALID_REQUEST, "More than one token header", NULL);
        if (b64token_len(alt, &alt_len))
            return mcp_fail(fail, MCP_FAIL_INVALID_REQUEST, "Malformed token header", NULL);
        /* RFC 6750 2: a client must not use more than one method. */
        if (found)
            return mcp_fail(fail, MCP_FAIL_INVALID_REQUEST, "Token in more than one header", NULL);
        found = alt;
        found_len = alt_len;
    }
    if (!found)
        return mcp_fail(fail, MCP_FAIL_NO_TOKEN, "No bearer token", NULL);
    *token = found;
    *len = found_len;
    return 0;
}
