/* SPDX-License-Identifier: Apache-2.0 */
/* bearer.c: the extraction rules (test_bearer_extract), and
 * mcp_bearer_extract against a plain byte-by-byte reference (the rules of
 * RFC 6750 2.1 as the module had them before its scan was vectorised and
 * memoised): the same answer -- token, length, failure kind and reason --
 * for every byte value at every position of tokens that cross the 16-byte
 * blocks of the fast scan, and for a refused token right after an equal-
 * length well-formed one (the per-thread memo must not accept it). */
#include "test_util.h"

#include <strings.h>

#include "bearer.h"

/* ---- the reference ----------------------------------------------------- */

static int ref_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c && strchr("-._~+/", c));
}

static int ref_token_len(const char *s, size_t *len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (ref_char(u[i]))
        i++;
    if (i == 0)
        return -1;
    while (u[i] == '=')
        i++;
    if (u[i] != '\0')
        return -1;
    *len = i;
    return 0;
}

static int ref_extract(const char *authorization, const char *alt, const char **token, size_t *len, mcp_fail_t *fail)
{
    const char *found = NULL;
    size_t found_len = 0;

    if (authorization) {
        const char *sp = authorization + strcspn(authorization, " \t");
        if (strchr(authorization, ','))
            return mcp_fail(fail, MCP_FAIL_INVALID_REQUEST, "More than one Authorization header", NULL);
        if (sp - authorization == 6 && strncasecmp(authorization, "Bearer", 6) == 0) {
            while (*sp == ' ' || *sp == '\t')
                sp++;
            if (*sp == '\0')
                return mcp_fail(fail, MCP_FAIL_INVALID_REQUEST, "Empty bearer token", NULL);
            if (ref_token_len(sp, &found_len))
                return mcp_fail(fail, MCP_FAIL_INVALID_REQUEST, "Malformed Authorization header", NULL);
            found = sp;
        }
    }
    if (alt) {
        size_t alt_len;
        while (*alt == ' ' || *alt == '\t')
            alt++;
        if (strchr(alt, ','))
            return mcp_fail(fail, MCP_FAIL_INVALID_REQUEST, "More than one token header", NULL);
        if (ref_token_len(alt, &alt_len))
            return mcp_fail(fail, MCP_FAIL_INVALID_REQUEST, "Malformed token header", NULL);
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

/* ---- comparison -------------------------------------------------------- */

static unsigned long compared;

static void same(const char *authz, const char *alt)
{
    const char *t1 = NULL, *t2 = NULL;
    size_t l1 = 0, l2 = 0;
    mcp_fail_t f1 = {0}, f2 = {0};
    int r1 = mcp_bearer_extract(authz, alt, &t1, &l1, &f1);
    int r2 = ref_extract(authz, alt, &t2, &l2, &f2);

    compared++;
    if (r1 != r2 || t1 != t2 || l1 != l2 || f1.kind != f2.kind ||
        (f1.reason != f2.reason && (!f1.reason || !f2.reason || strcmp(f1.reason, f2.reason) != 0)))
        fail_msg("Authorization \"%s\" / alt \"%s\": got %d %s len %zu, reference %d %s len %zu",
                 authz ? authz : "(null)", alt ? alt : "(null)", r1, f1.reason ? f1.reason : "-", l1, r2,
                 f2.reason ? f2.reason : "-", l2);
}

/* A well-formed token of n bytes cycling through the whole alphabet, so
 * every character class sits at every offset of a 16-byte block. */
static void good_token(char *buf, size_t n, size_t shift)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/";
    size_t i;
    for (i = 0; i < n; i++)
        buf[i] = alphabet[(i + shift) % (sizeof(alphabet) - 1)];
    buf[n] = '\0';
}

#define MAXLEN 40

/* Every byte value at every position of tokens of 1..40 bytes, each right
 * after the well-formed token of the same length (which the memo keeps):
 * in the Authorization header and in the configured token header. */
static void test_every_byte_everywhere(void **state)
{
    char authz[8 + MAXLEN + 1], *tok = authz + 7;
    size_t n, pos;
    int c;
    (void)state;

    memcpy(authz, "Bearer ", 7);
    for (n = 1; n <= MAXLEN; n++)
        for (pos = 0; pos < n; pos++)
            for (c = 1; c < 256; c++) {
                good_token(tok, n, pos);
                same(authz, NULL);
                same(NULL, tok);
                tok[pos] = (char)c;
                same(authz, NULL);
                same(NULL, tok);
                same("Basic dXNlcjpw", tok);
            }
    assert_true(compared > 500000);
}

/* Padding: '=' only at the end, after at least one token character;
 * anything after it refused; with the memo holding the unpadded token. */
static void test_padding(void **state)
{
    char authz[8 + MAXLEN + 4], *tok = authz + 7;
    size_t n, k;
    (void)state;

    memcpy(authz, "Bearer ", 7);
    for (n = 1; n <= MAXLEN; n++)
        for (k = 0; k <= 3; k++) {
            good_token(tok, n, 0);
            same(authz, NULL);
            memset(tok + n, '=', k);
            tok[n + k] = '\0';
            same(authz, NULL);
            same(NULL, tok);
            tok[n + k] = 'a'; /* "...=a": refused */
            tok[n + k + 1] = '\0';
            same(authz, NULL);
            tok[0] = '='; /* leading '=': refused */
            same(authz, NULL);
        }
}

/* The comma answer ("More than one ... header") wins wherever it did: in
 * the token, after it, in another scheme, in the configured header. */
static void test_comma_precedence(void **state)
{
    static const char *const authz[] = {
        "Bearer abc, Bearer def",
        "Bearer abc,def",
        "Bearer ,abc",
        "Bearer abc ,",
        "Basic a,b",
        "Bearer abc, Basic dXN",
        "bearer\tabc,",
        "Bearer abc=,",
        "Bearer a\"b,c",
        "Bearer a b,c",
        "Bearer ,",
        ",",
        "Bearer abc",
        "Bearer abc=",
        "Bearer",
        "Bearer   ",
        "Bearerabc,def",
        "Token a,b",
        NULL,
    };
    static const char *const alt[] = {NULL, "a,b", " ,", "abc", "abc=", "a b", ",", "", "  "};
    size_t i, j;
    (void)state;

    for (i = 0; i < sizeof(authz) / sizeof(*authz); i++)
        for (j = 0; j < sizeof(alt) / sizeof(*alt); j++)
            same(authz[i], alt[j]);
}

/* The memo is a cache of one token: a different token of the same length,
 * and a prefix or extension of the remembered one, are judged afresh. */
static void test_memo_never_vouches_for_other_bytes(void **state)
{
    char a[64], b[64];
    (void)state;

    good_token(a, 40, 3);
    same(NULL, a);
    memcpy(b, a, sizeof(b));
    b[39] = '"';
    same(NULL, b); /* same length, last byte bad */
    b[39] = '\0';
    same(NULL, b); /* a prefix */
    memcpy(b, a, 40);
    b[40] = '*';
    b[41] = '\0';
    same(NULL, b); /* longer by a bad byte */
    b[0] = ' ';
    same(NULL, b + 0); /* leading blank in the configured header: skipped */
}

/* ---- bearer ------------------------------------------------------------- */

static int bearer(const char *auth, const char *alt, const char **tok, size_t *len, mcp_fail_t *fail)
{
    *tok = NULL;
    *len = 0;
    memset(fail, 0, sizeof(*fail));
    return mcp_bearer_extract(auth, alt, tok, len, fail);
}

static void assert_bearer_ok(const char *auth, const char *alt, const char *want)
{
    const char *tok;
    size_t len;
    mcp_fail_t fail;
    if (bearer(auth, alt, &tok, &len, &fail) != 0)
        fail_msg("Authorization \"%s\" / alt \"%s\" refused: %s", auth ? auth : "(null)", alt ? alt : "(null)",
                 fail.reason);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(tok, want, len);
}

static void assert_bearer_fail(const char *auth, const char *alt, mcp_fail_kind kind)
{
    const char *tok;
    size_t len;
    mcp_fail_t fail;
    if (bearer(auth, alt, &tok, &len, &fail) != -1)
        fail_msg("Authorization \"%s\" / alt \"%s\" accepted", auth ? auth : "(null)", alt ? alt : "(null)");
    assert_int_equal(fail.kind, kind);
    assert_non_null(fail.reason);
}

static void test_bearer_extract(void **state)
{
    const char *auth = "Bearer abc.def.ghi", *tok;
    size_t len;
    mcp_fail_t fail;

    assert_int_equal(bearer(auth, NULL, &tok, &len, &fail), 0);
    assert_ptr_equal(tok, auth + 7); /* points into the header value */
    assert_int_equal(len, 11);

    assert_bearer_ok("Bearer abc", NULL, "abc");
    assert_bearer_ok("bearer abc", NULL, "abc");
    assert_bearer_ok("BEARER  abc", NULL, "abc");
    assert_bearer_ok("Bearer\tabc", NULL, "abc");
    assert_bearer_ok("Bearer aZ09-._~+/==", NULL, "aZ09-._~+/==");
    assert_bearer_ok("Bearer abc=", NULL, "abc=");

    assert_bearer_fail("Bearer", NULL, MCP_FAIL_INVALID_REQUEST);
    assert_bearer_fail("Bearer ", NULL, MCP_FAIL_INVALID_REQUEST);
    assert_bearer_fail("Bearer a b", NULL, MCP_FAIL_INVALID_REQUEST);
    assert_bearer_fail("Bearer a, Bearer b", NULL, MCP_FAIL_INVALID_REQUEST);
    assert_bearer_fail("Bearer abc, Basic dXNlcjpw", NULL, MCP_FAIL_INVALID_REQUEST);
    assert_bearer_fail("Bearer a=b", NULL, MCP_FAIL_INVALID_REQUEST);
    assert_bearer_fail("Bearer =abc", NULL, MCP_FAIL_INVALID_REQUEST);
    assert_bearer_fail("Bearer a\"b", NULL, MCP_FAIL_INVALID_REQUEST);
    assert_bearer_fail("Bearer a\r\nX-Evil: 1", NULL, MCP_FAIL_INVALID_REQUEST);

    assert_bearer_fail("Basic dXNlcjpw", NULL, MCP_FAIL_NO_TOKEN);
    assert_bearer_fail("Bearerabc", NULL, MCP_FAIL_NO_TOKEN);
    assert_bearer_fail("Token abc", NULL, MCP_FAIL_NO_TOKEN);
    assert_bearer_fail(NULL, NULL, MCP_FAIL_NO_TOKEN);

    /* The configured raw-token header. */
    assert_bearer_ok(NULL, "abc.def.ghi", "abc.def.ghi");
    assert_bearer_ok("Basic dXNlcjpw", "abc.def.ghi", "abc.def.ghi");
    assert_bearer_fail("Bearer abc", "def", MCP_FAIL_INVALID_REQUEST);
    assert_bearer_fail("Bearer abc", "abc", MCP_FAIL_INVALID_REQUEST);
    assert_bearer_fail(NULL, "a, b", MCP_FAIL_INVALID_REQUEST);
    assert_bearer_fail(NULL, "a b", MCP_FAIL_INVALID_REQUEST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_every_byte_everywhere), TU_TEST(test_padding),
        TU_TEST(test_comma_precedence),      TU_TEST(test_memo_never_vouches_for_other_bytes),
        TU_TEST(test_bearer_extract),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("bearer", tests, NULL, NULL);
}
