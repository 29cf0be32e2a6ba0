/* SPDX-License-Identifier: Apache-2.0 */
/* json_util.c: strict parsing (duplicate members, NUL in strings, trailing
 * text refused), values tied to a pool, compact text, string members. */
#include "test_util.h"

static json_t *parse(apr_pool_t *p, const char *s)
{
    return mcp_json_parse(p, s, strlen(s));
}

static void test_strict_parse(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char nul_in_string[] = "{\"a\":\"x\\u0000y\"}";

    assert_non_null(parse(p, "{\"a\":1,\"b\":[true,null]}"));
    assert_null(parse(p, "{\"a\":1,\"a\":2}"));
    assert_null(parse(p, nul_in_string));
    assert_null(parse(p, "{\"a\":1} trailing"));
    assert_null(parse(p, "{\"a\":"));
    assert_null(parse(p, ""));
    /* The length given is the whole text: a NUL byte inside it is refused. */
    assert_null(mcp_json_parse(p, "{\"a\":1}\0{}", 10));
    assert_non_null(mcp_json_parse(p, "{\"a\":1}\0{}", 7));
}

static void test_members_and_compact_text(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    json_t *doc = parse(p, "{ \"s\" : \"v\", \"n\" : 1, \"o\" : { \"k\" : [ 1 , 2 ] } }");

    assert_non_null(doc);
    assert_string_equal(mcp_json_str(doc, "s"), "v");
    assert_null(mcp_json_str(doc, "n"));
    assert_null(mcp_json_str(doc, "missing"));
    assert_null(mcp_json_str(NULL, "s"));
    assert_string_equal(mcp_json_compact(p, json_object_get(doc, "o")), "{\"k\":[1,2]}");
}

/* An owned reference is released with the pool (valgrind would report
 * the object lost otherwise). */
static void test_owned_by_the_pool(void **state)
{
    apr_pool_t *p = TU_POOL(state), *sub;
    json_t *j;

    apr_pool_create(&sub, p);
    j = mcp_json_own(sub, json_pack("{s:s}", "k", "v"));
    assert_non_null(j);
    assert_string_equal(mcp_json_str(j, "k"), "v");
    apr_pool_destroy(sub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_strict_parse),
        TU_TEST(test_members_and_compact_text),
        TU_TEST(test_owned_by_the_pool),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("json_util", tests, NULL, NULL);
}
