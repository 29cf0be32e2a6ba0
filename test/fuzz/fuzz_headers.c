/* SPDX-License-Identifier: Apache-2.0 */
/* What reaches HTTP headers and the environment: the Bearer challenge and
 * error body (challenge.c) and claim values / names for the backend
 * (propagate.c). Input: "<realm>\0<scope>\0<claims JSON>". Nothing built
 * here may carry a control character (header injection), quoted strings
 * must unquote to their input, the error body must be JSON, and scrubbing
 * must remove every case and '-'/'_' spelling of a name. */
#include "challenge.h"
#include "fuzz_common.h"
#include "json_util.h"
#include "propagate.h"

#include <ctype.h>
#include <strings.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_global_init();
    return 0;
}

static void no_controls(const char *s)
{
    for (; s && *s; s++)
        FZ_ASSERT((unsigned char)*s >= 0x20 && *s != 0x7f);
}

/* mcp_quote(s) read back: the input without its control characters. */
static void check_quote(apr_pool_t *p, const char *s)
{
    const char *q = mcp_quote(p, s), *c;
    char *back = apr_palloc(p, strlen(q) + 1), *b = back;
    size_t n = strlen(q);
    const char *in;

    no_controls(q);
    FZ_ASSERT(n >= 2 && q[0] == '"' && q[n - 1] == '"');
    for (c = q + 1; c < q + n - 1; c++) {
        FZ_ASSERT(*c != '"');
        if (*c == '\\') {
            c++;
            FZ_ASSERT(c < q + n - 1 && (*c == '"' || *c == '\\'));
        }
        *b++ = *c;
    }
    *b = '\0';
    for (in = s, b = back; *in; in++)
        if ((unsigned char)*in >= 0x20 && *in != 0x7f)
            FZ_ASSERT(*b++ == *in);
    FZ_ASSERT(*b == '\0');
}

static int same_header(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        int x = *a == '_' ? '-' : tolower((unsigned char)*a), y = *b == '_' ? '-' : tolower((unsigned char)*b);
        if (x != y)
            return 0;
    }
    return *a == *b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    const uint8_t *r1, *r2 = NULL;
    size_t l1, l2 = 0, l0 = fz_split(data, size, &r1, &l1);
    const char *realm = fz_cstr(p, data, l0), *scope = NULL;
    json_t *claims = NULL, *v;
    const char *key;
    int kind;

    if (r1) {
        l1 = fz_split(r1, l1, &r2, &l2);
        scope = fz_cstr(p, r1, l1);
    }
    if (r2)
        claims = mcp_json_parse(p, (const char *)r2, l2);

    check_quote(p, realm);
    for (kind = MCP_FAIL_NO_TOKEN; kind <= MCP_FAIL_CONFIG; kind++) {
        mcp_fail_t fail = {(mcp_fail_kind)kind, scope ? scope : "Invalid token", realm};
        mcp_challenge_t ch = {realm, scope, scope};
        const char *h = mcp_challenge_header(p, &fail, &ch), *body = mcp_error_body(p, &fail);
        json_t *j;
        int status = mcp_fail_status((mcp_fail_kind)kind);
        FZ_ASSERT(status >= 400 && status <= 599);
        no_controls(h);
        if (h)
            FZ_ASSERT(strncmp(h, "Bearer", 6) == 0);
        if (body) {
            j = mcp_json_parse(p, body, strlen(body));
            FZ_ASSERT(json_is_object(j) && json_is_string(json_object_get(j, "error_description")));
        }
    }

    if (json_is_object(claims)) {
        apr_table_t *t = apr_table_make(p, 8);
        const char *names[1];
        const apr_array_header_t *arr;
        int i, unsafe;

        json_object_foreach(claims, key, v)
        {
            const char *text = mcp_claim_text(p, v, &unsafe), *env = mcp_env_name(p, key), *c;
            no_controls(text);
            FZ_ASSERT(!unsafe || text == NULL);
            for (c = env; *c; c++)
                FZ_ASSERT(*c != '-' && !(*c >= 'a' && *c <= 'z'));
            FZ_ASSERT(strlen(env) == strlen(key));
            apr_table_add(t, key, "x");
        }
        (void)mcp_claim_text(p, claims, &unsafe);
        names[0] = realm;
        mcp_scrub_headers(p, t, names, 1);
        arr = apr_table_elts(t);
        for (i = 0; i < arr->nelts; i++)
            FZ_ASSERT(!same_header(((const apr_table_entry_t *)arr->elts)[i].key, realm));
    }
    apr_pool_destroy(p);
    return 0;
}
