/* SPDX-License-Identifier: Apache-2.0 */
#include "bearer.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

/* b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static const unsigned char b64token_char[256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1, ['+'] = 1, ['/'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1,
    ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1,
    ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
    ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

#if defined(__GNUC__) && (defined(__SSE2__) || defined(__ARM_NEON))
/* The token is most of every request's header bytes: 16 of them per step
 * (GNU C vectors: SSE2 on x86-64, NEON on arm64) instead of one table
 * lookup each. The same set as the table: letters (b | 0x20 folds the
 * upper case onto the lower, and nothing else onto it), '-' '.' '/' and
 * the digits (one run, 0x2d..0x39), '+', '_', '~'. */
typedef unsigned char v16u __attribute__((vector_size(16)));

static int block_ok(const unsigned char *u)
{
    v16u b, ok;
    uint64_t half[2];
    memcpy(&b, u, sizeof(b));
    ok = (v16u)((v16u)((b | 0x20) - 'a') <= 'z' - 'a') | (v16u)((v16u)(b - '-') <= '9' - '-') | (v16u)(b == '+') |
         (v16u)(b == '_') | (v16u)(b == '~');
    memcpy(half, &ok, sizeof(half));
    return (half[0] & half[1]) == UINT64_MAX;
}
#define BLOCK 16
#else
#define BLOCK 0
#endif

/* How many of the n bytes at u, from the first, are b64token characters. */
static size_t b64token_run(const unsigned char *u, size_t n)
{
    size_t i = 0;
#if BLOCK
    while (i + BLOCK <= n && block_ok(u + i))
        i += BLOCK;
#endif
    while (i < n && b64token_char[u[i]])
        i++;
    return i;
}

/* The last well-formed token this thread scanned. A client sends the same
 * token request after request, and bytes equal to bytes found well-formed
 * are well-formed: one comparison instead of the scan. Longer tokens
 * (rare) are scanned every time. */
#define MEMO_MAX 4096
static __thread size_t memo_len;
static __thread unsigned char memo_tok[MEMO_MAX];

static int b64token_len(const char *s, size_t *len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), i;
    if (n > 0 && n == memo_len && memcmp(u, memo_tok, n) == 0) {
        *len = n;
        return 0;
    }
    i = b64token_run(u, n);
    if (i == 0)
        return -1;
    while (u[i] == '=')
        i++;
    if (i != n)
        return -1;
    if (n <= MEMO_MAX) {
        memcpy(memo_tok, u, n);
        memo_len = n;
    }
    *len = n;
    return 0;
}

int mcp_bearer_extract(const char *authorization, const char *alt, const char **token, size_t *len, mcp_fail_t *fail)
{
    const char *found = NULL;
    size_t found_len = 0;

    /* httpd merges repeated headers with ", "; no single credential has a
     * comma. A well-formed token has none either, so the whole value is
     * searched for one only when the token is refused, or is not ours:
     * "More than one ... header" stays the answer whenever it was. */
    if (authorization) {
        const char *sp = authorization + strcspn(authorization, " \t");
        if (sp - authorization == 6 && strncasecmp(authorization, "Bearer", 6) == 0) {
            while (*sp == ' ' || *sp == '\t')
                sp++;
            if (*sp == '\0')
                return mcp_fail(fail, MCP_FAIL_INVALID_REQUEST, "Empty bearer token", NULL);
            if (b64token_len(sp, &found_len)) {
                if (strchr(authorization, ','))
                    return mcp_fail(fail, MCP_FAIL_INVALID_REQUEST, "More than one Authorization header", NULL);
                return mcp_fail(fail, MCP_FAIL_INVALID_REQUEST, "Malformed Authorization header", NULL);
            }
            found = sp;
        }
        /* Another scheme (Basic, ...) carries no bearer token: not an error. */
        else if (strchr(authorization, ','))
            return mcp_fail(fail, MCP_FAIL_INVALID_REQUEST, "More than one Authorization header", NULL);
    }
    if (alt) {
        size_t alt_len;
        while (*alt == ' ' || *alt == '\t')
            alt++;
        if (b64token_len(alt, &alt_len)) {
            if (strchr(alt, ','))
                return mcp_fail(fail, MCP_FAIL_INVALID_REQUEST, "More than one token header", NULL);
            return mcp_fail(fail, MCP_FAIL_INVALID_REQUEST, "Malformed token header", NULL);
        }
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
