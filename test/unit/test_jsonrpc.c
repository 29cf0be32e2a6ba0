/* SPDX-License-Identifier: Apache-2.0 */
/* The strict JSON-RPC reader behind MCPAuthToolScope (SPEC 6): each attack
 * body of issue 10 item 2 is refused with the right JSON-RPC code, beside
 * the legitimate neighbour that must still be read, with its tool calls. */
#include "test_util.h"

#include "jsonrpc.h"

#include <unistd.h>

/* Parses a NUL-free literal body. */
static int parse(apr_pool_t *p, const char *body, mcp_rpc_body_t *out)
{
    return mcp_jsonrpc_parse(p, body, strlen(body), out);
}

static void assert_calls(apr_pool_t *p, const char *body, int n, const char *const *names)
{
    mcp_rpc_body_t rpc;
    int i;
    if (parse(p, body, &rpc) != 0)
        fail_msg("refused (%d: %s): %s", rpc.code, rpc.cause, body);
    if (rpc.tool_calls->nelts != n)
        fail_msg("%d tool calls, want %d: %s", rpc.tool_calls->nelts, n, body);
    for (i = 0; i < n; i++)
        assert_string_equal(APR_ARRAY_IDX(rpc.tool_calls, i, const char *), names[i]);
}

static void assert_code_len(apr_pool_t *p, const char *body, size_t len, int code)
{
    mcp_rpc_body_t rpc;
    int got = mcp_jsonrpc_parse(p, body, len, &rpc);
    if (got != code)
        fail_msg("code %d (%s), want %d: %.*s", got, rpc.cause ? rpc.cause : "-", code, (int)(len > 200 ? 200 : len),
                 body);
    assert_int_equal(rpc.code, code);
    assert_non_null(rpc.cause);
    assert_int_equal(rpc.tool_calls->nelts, 0);
}

static void assert_code(apr_pool_t *p, const char *body, int code)
{
    assert_code_len(p, body, strlen(body), code);
}

#define CALL(params) "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":" params "}"

/* ---- the reported attacks ------------------------------------------------ */

static void test_many_case_variants_of_name(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    /* members_named saw only the first four: the fifth ran delete_notes. */
    assert_code(p, CALL("{\"NAME\":\"x\",\"Name\":\"x\",\"nAme\":\"x\",\"naMe\":\"x\",\"name\":\"delete_notes\"}"),
                MCP_RPC_INVALID_REQUEST);
    assert_code(p, CALL("{\"Name\":\"delete_notes\"}"), MCP_RPC_INVALID_REQUEST);
    assert_code(p, CALL("{\"name\":\"read_notes\",\"NAME\":\"delete_notes\"}"), MCP_RPC_INVALID_REQUEST);
}

static void test_decoy_method_and_params(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    assert_code(p,
                "{\"METHOD\":\"x\",\"Method\":\"x\",\"mEthod\":\"x\",\"meThod\":\"x\",\"method\":\"tools/call\","
                "\"params\":{\"name\":\"delete_notes\"}}",
                MCP_RPC_INVALID_REQUEST);
    assert_code(p,
                "{\"method\":\"tools/call\",\"PARAMS\":{},\"Params\":{},\"pArams\":{},\"paRams\":{},"
                "\"params\":{\"name\":\"delete_notes\"}}",
                MCP_RPC_INVALID_REQUEST);
    assert_code(p, "{\"method\":\"tools/list\",\"Method\":\"tools/call\",\"params\":{\"name\":\"delete_notes\"}}",
                MCP_RPC_INVALID_REQUEST);
}

static void test_unicode_folds_onto_member_names(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    /* U+017F LATIN SMALL LETTER LONG S: "paramſ" is "params" to Go. */
    assert_code(p,
                "{\"method\":\"tools/call\",\"params\":{\"name\":\"read_notes\"},"
                "\"param\xC5\xBF\":{\"name\":\"delete_notes\"}}",
                MCP_RPC_INVALID_REQUEST);
    assert_code(p, "{\"method\":\"tool\xC5\xBF/call\",\"param\\u017f\":{\"name\":\"delete_notes\"}}",
                MCP_RPC_INVALID_REQUEST);
    assert_code(p,
                "{\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"\\u017fname\":1,"
                "\"na\\u006de\":\"delete_notes\"}}",
                MCP_RPC_INVALID_REQUEST);
    /* U+212A KELVIN SIGN has no member to land on; it still folds for names. */
    assert_true(mcp_jsonrpc_name_equal("\xE2\x84\xAA"
                                       "ey",
                                       "key"));
    assert_true(mcp_jsonrpc_name_equal("delete_note\xC5\xBF", "DELETE_NOTES"));
    assert_true(mcp_jsonrpc_name_equal("tools/call", "TOOLS/CALL"));
    assert_false(mcp_jsonrpc_name_equal("tools/call", "tools/cal"));
    assert_false(mcp_jsonrpc_name_equal("tools/callx", "tools/call"));
    assert_false(mcp_jsonrpc_name_equal("\xC4\xB1"
                                        "d",
                                        "id")); /* dotless i: no simple fold */
    /* a member that only a C string reader sees as "name" */
    assert_code(p, CALL("{\"name\\u0000x\":\"delete_notes\",\"name\":\"read_notes\"}"), MCP_RPC_INVALID_REQUEST);
    /* in the message object too */
    assert_code(p, "{\"\\u004dethod\":\"tools/call\",\"params\":{\"name\":\"delete_notes\"}}", MCP_RPC_INVALID_REQUEST);
    assert_code(p, "{\"method\":\"tools/call\",\"params\":{\"name\":\"x\"},\"I\\u0044\":7}", MCP_RPC_INVALID_REQUEST);
}

static void test_duplicates_after_unescaping(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    assert_code(p, CALL("{\"name\":\"read_notes\",\"na\\u006de\":\"delete_notes\"}"), MCP_RPC_INVALID_REQUEST);
    assert_code(p, CALL("{\"name\":\"read_notes\",\"name\":\"delete_notes\"}"), MCP_RPC_INVALID_REQUEST);
    assert_code(p, "{\"method\":\"tools/call\",\"params\":{\"name\":\"a\"},\"params\":{\"name\":\"b\"}}",
                MCP_RPC_INVALID_REQUEST);
    assert_code(p, "{\"method\":\"ping\",\"method\":\"tools/call\",\"params\":{\"name\":\"a\"}}",
                MCP_RPC_INVALID_REQUEST);
    /* any duplicated member of an object the module reads */
    assert_code(p, CALL("{\"name\":\"a\",\"x\\/y\":1,\"x/y\":2}"), MCP_RPC_INVALID_REQUEST);
    assert_code(p, "[{\"method\":\"ping\"},{\"id\":1,\"id\":2,\"method\":\"ping\"}]", MCP_RPC_INVALID_REQUEST);
}

static void test_big_numbers_are_numbers(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    static const char *const admin[] = {"admin/reset"};
    static const char *const del[] = {"delete_notes"};
    mcp_rpc_body_t rpc;
    /* jansson refused 1e400; the old fallback then missed "\/" in a name. */
    assert_calls(p,
                 "{\"jsonrpc\":\"2.0\",\"id\":1e400,\"method\":\"tools/call\",\"params\":{\"name\":\"admin\\/reset\"}}",
                 1, admin);
    assert_calls(p,
                 "{\"id\":1234567890123456789012345,\"method\":\"tools/call\",\"params\":{\"name\":\"delete_notes\"}}",
                 1, del);
    assert_calls(p, CALL("{\"name\":\"delete_notes\",\"arguments\":{\"n\":-0.000000000000000000000001e-99999}}"), 1,
                 del);
    assert_int_equal(parse(p, "{\"id\":1234567890123456789012345,\"method\":\"ping\",\"ID\":2}", &rpc),
                     MCP_RPC_INVALID_REQUEST);
    assert_string_equal(rpc.id, "null"); /* two ids: neither is answered */
    assert_int_equal(parse(p, "{\"id\":1234567890123456789012345,\"method\":\"tools/call\"}", &rpc),
                     MCP_RPC_INVALID_REQUEST);
    assert_string_equal(rpc.id, "1234567890123456789012345");
    assert_int_equal(parse(p, "{\"id\":\"a\\\"b\",\"method\":\"tools/call\",\"params\":{\"name\":7}}", &rpc),
                     MCP_RPC_INVALID_REQUEST);
    assert_string_equal(rpc.id, "\"a\\\"b\"");
}

static void test_not_exactly_one_json_value(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    static const char *const bad[] = {
        "",
        " \r\n\t",
        "\xEF\xBB\xBF" CALL("{\"name\":\"delete_notes\"}"),
        CALL("{\"name\":\"delete_notes\"}") "x",
        CALL("{\"name\":\"delete_notes\"}") "{}",
        CALL("{\"name\":\"delete_notes\"}") "\f",
        CALL("{\"name\":\"delete_notes\"}") " \xC2\xA0",
        CALL("{\"name\":\"delete_notes\",}"),
        "{\"method\":\"tools/call\",\"params\":{\"name\":\"delete_notes\"}",
        "{\"method\":\"tools/call\",\"params\":{\"name\":\"delete_notes\", NaN}}",
        "{\"id\":NaN}",
        "{\"id\":Infinity}",
        "{\"id\":-Infinity}",
        "{\"id\":01}",
        "{\"id\":1.}",
        "{\"id\":.5}",
        "{\"id\":+1}",
        "{\"id\":1e}",
        "{\"id\":0x10}",
        "{\"id\":-}",
        "{'id':1}",
        "{\"id\":tru}",
        "{\"id\":nulll}",
        "{\"id\":\"\\ud800\"}",        /* lone high surrogate */
        "{\"id\":\"\\udc00\"}",        /* lone low surrogate */
        "{\"id\":\"\\ud800\\u0041\"}", /* high surrogate, no low */
        "{\"id\":\"\\x41\"}",
        "{\"id\":\"\\u12\"}",
        "{\"id\":\"\t\"}",
        "{\"id\":\"\xC0\xAF\"}",         /* overlong '/' */
        "{\"id\":\"\xED\xA0\x80\"}",     /* UTF-8 encoded surrogate */
        "{\"id\":\"\xF4\x90\x80\x80\"}", /* above U+10FFFF */
        "{\"id\":\"\xFF\"}",
        "{\"id\":\"\xE2\x82\"}",
        "{\"method\":\"tools/call\"} // comment",
        "[1,]",
        "[,1]",
        "{,}",
        "{\"a\" 1}",
        "{\"a\":}",
        "{1:2}",
    };
    size_t i;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_code(p, bad[i], MCP_RPC_PARSE_ERROR);
    /* a NUL byte, raw */
    assert_code_len(p, "{\"id\":1}\0", 9, MCP_RPC_PARSE_ERROR);
    assert_code_len(p, "{\"id\":\"a\0b\"}", 12, MCP_RPC_PARSE_ERROR);
}

/* A body nested d levels inside a tools/call's arguments (total depth
 * d + 3: message, params, arguments). */
static char *nested(apr_pool_t *p, size_t d, size_t *n)
{
    const char *head = "{\"method\":\"tools/call\",\"params\":{\"name\":\"delete_notes\",\"arguments\":{\"a\":";
    const char *tail = "}}}";
    size_t hl = strlen(head), tl = strlen(tail);
    char *b = apr_palloc(p, hl + 2 * d + tl + 2);

    memcpy(b, head, hl);
    *n = hl;
    memset(b + *n, '[', d);
    *n += d;
    memset(b + *n, ']', d);
    *n += d;
    memcpy(b + *n, tail, tl);
    *n += tl;
    b[*n] = '\0';
    return b;
}

/* Was: no cap (an explicit stack grown per level). Now a fixed stack of
 * MCP_RPC_MAX_DEPTH levels: deeper is -32600, whatever follows. */
static void test_nesting_deeper_than_the_limit_is_invalid(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    static const char *const del[] = {"delete_notes"};
    mcp_rpc_body_t rpc;
    size_t n;
    char *b;

    /* the legitimate neighbours: 32 levels in arguments, and exactly the limit */
    assert_calls(p, nested(p, 32, &n), 1, del);
    assert_calls(p, nested(p, MCP_RPC_MAX_DEPTH - 3, &n), 1, del);
    /* one more, and 100000 more: refused before the stack grows */
    assert_code(p, nested(p, MCP_RPC_MAX_DEPTH - 2, &n), MCP_RPC_INVALID_REQUEST);
    b = nested(p, 100000, &n);
    assert_code_len(p, b, n, MCP_RPC_INVALID_REQUEST);
    assert_non_null(strstr((parse(p, b, &rpc), rpc.cause), "nested deeper than 128"));
    /* a syntax error beyond the limit is never reached: still -32600 */
    assert_code_len(p, b, n - 1, MCP_RPC_INVALID_REQUEST);
    /* a deep top-level array: the same limit */
    memset(b, '[', 100000);
    memset(b + 100000, ']', 100000);
    assert_code_len(p, b, 200000, MCP_RPC_INVALID_REQUEST);
    memset(b, '[', MCP_RPC_MAX_DEPTH);
    memset(b + MCP_RPC_MAX_DEPTH, ']', MCP_RPC_MAX_DEPTH);
    assert_int_equal(mcp_jsonrpc_parse(p, b, 2 * MCP_RPC_MAX_DEPTH, &rpc), 0);
    assert_true(rpc.is_batch);
}

/* A batch of n copies of one message, "[m,m,...]". */
static char *batch(apr_pool_t *p, const char *m, int count, size_t *n)
{
    size_t ml = strlen(m);
    char *b = apr_palloc(p, (ml + 1) * (size_t)count + 2), *o = b;
    int i;

    *o++ = '[';
    for (i = 0; i < count; i++) {
        memcpy(o, m, ml);
        o += ml;
        *o++ = i + 1 < count ? ',' : ']';
    }
    *o = '\0';
    *n = (size_t)(o - b);
    return b;
}

static void test_more_messages_than_the_limit_is_too_many(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *m = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"delete_notes\"}}";
    mcp_rpc_body_t rpc;
    size_t n;
    char *b;
    int i;

    /* the legitimate neighbour: 100, and exactly the limit, all seen */
    b = batch(p, m, 100, &n);
    assert_int_equal(mcp_jsonrpc_parse(p, b, n, &rpc), 0);
    assert_int_equal(rpc.tool_calls->nelts, 100);
    b = batch(p, m, MCP_RPC_MAX_MESSAGES, &n);
    assert_int_equal(mcp_jsonrpc_parse(p, b, n, &rpc), 0);
    assert_int_equal(rpc.tool_calls->nelts, MCP_RPC_MAX_MESSAGES);
    for (i = 0; i < MCP_RPC_MAX_MESSAGES; i++)
        assert_string_equal(APR_ARRAY_IDX(rpc.tool_calls, i, const char *), "delete_notes");
    /* one more message, and 300000 empty ones */
    b = batch(p, m, MCP_RPC_MAX_MESSAGES + 1, &n);
    assert_code_len(p, b, n, MCP_RPC_TOO_MANY);
    b = batch(p, "{}", 300000, &n);
    assert_code_len(p, b, n, MCP_RPC_TOO_MANY);
    /* arrays of anything else are not messages: no limit but the body's */
    b = batch(p, "[{}]", 1, &n);
    assert_int_equal(mcp_jsonrpc_parse(p, b, n, &rpc), 0);
    b = apr_pstrcat(p, "{\"method\":\"tools/call\",\"params\":{\"name\":\"delete_notes\",\"arguments\":",
                    batch(p, "{\"a\":1,\"b\":2}", 100000, &n), "}}", NULL);
    assert_calls(p, b, 1, (const char *const[]){"delete_notes"});
}

static void test_more_members_than_the_limit_is_too_many(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    static const char *const del[] = {"delete_notes"};
    const char *params = "\"params\":{\"name\":\"delete_notes\"";
    char *m = "", *pm = "";
    int i;

    /* m: 253 members; pm: 254 */
    for (i = 0; i < MCP_RPC_MAX_MEMBERS - 3; i++)
        m = apr_psprintf(p, "%s,\"m%d\":%d", m, i, i);
    pm = apr_psprintf(p, "%s,\"m%d\":%d", m, i, i);
    /* the limit exactly: method + 253 + params + last; name + 254 + last */
    assert_calls(p, apr_pstrcat(p, "{\"method\":\"tools/call\"", m, ",", params, "},\"last\":1}", NULL), 1, del);
    assert_calls(p, apr_pstrcat(p, "{\"method\":\"tools/call\",", params, pm, ",\"last\":1}}", NULL), 1, del);
    /* one more in either object */
    assert_code(p, apr_pstrcat(p, "{\"method\":\"tools/call\"", m, ",", params, "},\"last\":1,\"x\":1}", NULL),
                MCP_RPC_TOO_MANY);
    assert_code(p, apr_pstrcat(p, "{\"method\":\"tools/call\",", params, pm, ",\"last\":1,\"x\":1}}", NULL),
                MCP_RPC_TOO_MANY);
    /* duplicates are still found among many members, at either end */
    assert_code(p, apr_pstrcat(p, "{\"method\":\"tools/call\",", params, pm, ",\"m0\":1}}", NULL),
                MCP_RPC_INVALID_REQUEST);
    assert_code(p, apr_pstrcat(p, "{\"method\":\"tools/call\"", m, ",", params, "},\"m252\":1}", NULL),
                MCP_RPC_INVALID_REQUEST);
    /* other objects (arguments) have no member limit */
    assert_calls(p,
                 apr_pstrcat(p, "{\"method\":\"tools/call\",", params, ",\"arguments\":{\"a\":0", pm, pm, "}}}", NULL),
                 1, del);
}

/* Resident bytes of this process: APR pools take their blocks with mmap
 * here, which malloc's counters do not see. */
static size_t heap_in_use(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* What parsing body costs beyond the body, in a pool of its own (fresh
 * allocator: no free blocks of earlier tests hide the cost). */
static size_t parse_cost(const char *body, size_t len, int *code)
{
    apr_allocator_t *a;
    apr_pool_t *p;
    mcp_rpc_body_t rpc;
    size_t before, after;

    assert_int_equal(apr_allocator_create(&a), APR_SUCCESS);
    assert_int_equal(apr_pool_create_ex(&p, NULL, NULL, a), APR_SUCCESS);
    apr_allocator_owner_set(a, p);
    before = heap_in_use();
    *code = mcp_jsonrpc_parse(p, body, len, &rpc);
    after = heap_in_use();
    apr_pool_destroy(p);
    return after > before ? after - before : 0;
}

/* Issue 15 item 2: a 1 MiB body of any shape costs at most 2 MiB more
 * (jansson: ~80 MB for [{},{},...]; the first version of this reader: an
 * apr_hash entry per member name, ~7 MB for 1 MiB of distinct names). */
static void test_memory_per_body_is_bounded(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const size_t mib = 1024 * 1024;
    char *b = apr_palloc(p, mib + 64);
    const char *preload = getenv("LD_PRELOAD");
    size_t n, i, cost;
    int code, k;

    if (preload && strstr(preload, "vgpreload")) /* valgrind's own shadow memory is resident too */
        skip();
    memset(b, ' ', mib + 64); /* resident before any measurement */

    for (k = 0; k < 6; k++) {
        n = 0;
        switch (k) {
        case 0: /* [{},{},...] */
            b[n++] = '[';
            while (n < mib - 4)
                n += (size_t)sprintf(b + n, "{},");
            n += (size_t)sprintf(b + n, "{}]");
            break;
        case 1: /* one message, distinct member names */
        case 2: /* its params, the same */
            n += (size_t)sprintf(b, k == 1 ? "{" : "{\"method\":\"tools/call\",\"params\":{\"name\":\"x\",");
            for (i = 0; n < mib - 32; i++)
                n += (size_t)sprintf(b + n, "\"k%zu\":1,", i);
            n += (size_t)sprintf(b + n, k == 1 ? "\"z\":1}" : "\"z\":1}}");
            break;
        case 3: /* deep nesting */
            memset(b, '[', mib / 2);
            memset(b + mib / 2, ']', mib / 2);
            n = mib;
            break;
        case 4: /* a 1 MiB tool name of escapes */
            n += (size_t)sprintf(b, "{\"method\":\"tools/call\",\"params\":{\"name\":\"");
            while (n < mib - 16)
                n += (size_t)sprintf(b + n, "\\u00e9\\n");
            n += (size_t)sprintf(b + n, "\"}}");
            break;
        case 5: /* a full batch of calls with 900-byte names */
            b[n++] = '[';
            for (i = 0; i < MCP_RPC_MAX_MESSAGES; i++) {
                n += (size_t)sprintf(b + n, "{\"method\":\"tools/call\",\"params\":{\"name\":\"");
                memset(b + n, 'a', 900);
                n += 900;
                n += (size_t)sprintf(b + n, "\"}}%s", i + 1 < MCP_RPC_MAX_MESSAGES ? "," : "]");
            }
            break;
        }
        assert_true(n <= mib + 64);
        cost = parse_cost(b, n, &code);
        print_message("body %d (%zu bytes): code %d, %zu bytes beyond the body\n", k, n, code, cost);
        if (cost > 2 * mib)
            fail_msg("body %d: parsing cost %zu bytes, more than 2 MiB", k, cost);
    }
}

/* Tool names are looked up by this key: equal exactly when names are. */
static void test_name_key_matches_name_equal(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    static const char *const names[] = {"delete_notes",
                                        "DELETE_NOTES",
                                        "delete_note\xc5\xbf",
                                        ("\xe2\x84\xaa"
                                         "ey"),
                                        "key",
                                        "kex",
                                        "delete_notes ",
                                        "",
                                        "\xc5",
                                        "\xc5\xbf",
                                        "s",
                                        "\xff"};
    size_t i, j;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        for (j = 0; j < sizeof(names) / sizeof(names[0]); j++) {
            apr_size_t la, lb;
            const char *a = mcp_jsonrpc_name_key(p, names[i], &la), *b = mcp_jsonrpc_name_key(p, names[j], &lb);
            int same = la == lb && memcmp(a, b, la) == 0;
            if (same != mcp_jsonrpc_name_equal(names[i], names[j]))
                fail_msg("key and name_equal disagree on \"%s\" / \"%s\"", names[i], names[j]);
        }
}

static void test_tools_call_needs_a_string_name(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    assert_code(p, CALL("{\"name\":[\"delete_notes\"]}"), MCP_RPC_INVALID_REQUEST);
    assert_code(p, CALL("{\"name\":null}"), MCP_RPC_INVALID_REQUEST);
    assert_code(p, CALL("[\"delete_notes\"]"), MCP_RPC_INVALID_REQUEST);
    assert_code(p, "{\"method\":\"TOOLS/CALL\"}", MCP_RPC_INVALID_REQUEST);
    assert_code(p, "[{\"method\":\"ping\"},{\"method\":\"tools/call\",\"params\":{}}]", MCP_RPC_INVALID_REQUEST);
}

/* ---- the legitimate neighbours ------------------------------------------ */

static void test_plain_calls_and_batches(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    static const char *const del[] = {"delete_notes"};
    static const char *const two[] = {"read_notes", "delete_notes"};
    static const char *const upper[] = {"DELETE_NOTES"};
    mcp_rpc_body_t rpc;

    assert_calls(p, CALL("{\"name\":\"delete_notes\",\"arguments\":{}}"), 1, del);
    assert_calls(p, " \r\n\t" CALL("{\"name\":\"delete_notes\"}") " \r\n\t", 1, del);
    assert_calls(p,
                 "{\"params\":{\"arguments\":{\"name\":\"x\",\"NAME\":\"y\",\"name\":\"z\"},\"name\":\"delete_notes\"},"
                 "\"method\":\"tools/call\",\"id\":\"abc\",\"jsonrpc\":\"2.0\"}",
                 1, del);
    assert_calls(p, "{\"method\":\"Tools/Call\",\"params\":{\"name\":\"DELETE_NOTES\"}}", 1, upper);
    assert_calls(p, CALL("{\"name\":\"delete\\u005fnotes\"}"), 1, del);
    assert_calls(p,
                 "[" CALL("{\"name\":\"read_notes\"}") ",{\"method\":\"notifications/initialized\"},"
                                                       "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/"
                                                       "call\",\"params\":{\"name\":\"delete_notes\"}}]",
                 2, two);
    assert_calls(p, "{\"method\":\"tools/list\",\"params\":{\"cursor\":\"delete_notes\"}}", 0, NULL);
    assert_calls(p, "{\"method\":\"prompts/get\",\"params\":{\"name\":\"delete_notes\"}}", 0, NULL);
    assert_calls(p, "[]", 0, NULL);
    assert_calls(p, "[1,\"x\",null,[{\"method\":\"tools/call\"}]]", 0, NULL);
    assert_calls(p, "\"tools/call\"", 0, NULL);
    assert_calls(p, "{}", 0, NULL);
    /* unknown members, non-ASCII text and escapes in values are fine */
    assert_calls(p,
                 CALL("{\"name\":\"delete_notes\",\"x-trace\":\"\xC5\xBF\xE2\x84\xAA \\ud83d\\ude00 \xF0\x9F\x98\x80\","
                      "\"nom\":1,\"names\":2}"),
                 1, del);
    /* a single message's readable id and method come back */
    assert_int_equal(
        parse(p, "{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"resources/read\",\"params\":{\"uri\":\"file:\\/\\/a\"}}",
              &rpc),
        0);
    assert_false(rpc.is_batch);
    assert_string_equal(rpc.id, "42");
    assert_string_equal(rpc.method, "resources/read");
    assert_string_equal(rpc.uri, "file://a");
    assert_null(rpc.name);
}

static void test_escaped_nul_in_a_name_counts_up_to_the_nul(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    static const char *const del[] = {"delete_notes"};
    /* a C backend reading the name as a C string sees delete_notes */
    assert_calls(p, CALL("{\"name\":\"delete_notes\\u0000junk\"}"), 1, del);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_many_case_variants_of_name),
        TU_TEST(test_decoy_method_and_params),
        TU_TEST(test_unicode_folds_onto_member_names),
        TU_TEST(test_duplicates_after_unescaping),
        TU_TEST(test_big_numbers_are_numbers),
        TU_TEST(test_not_exactly_one_json_value),
        TU_TEST(test_nesting_deeper_than_the_limit_is_invalid),
        TU_TEST(test_more_messages_than_the_limit_is_too_many),
        TU_TEST(test_more_members_than_the_limit_is_too_many),
        TU_TEST(test_name_key_matches_name_equal),
        TU_TEST(test_memory_per_body_is_bounded),
        TU_TEST(test_tools_call_needs_a_string_name),
        TU_TEST(test_plain_calls_and_batches),
        TU_TEST(test_escaped_nul_in_a_name_counts_up_to_the_nul),
    };
    apr_initialize();
    return cmocka_run_group_tests_name("jsonrpc", tests, NULL, NULL);
}
