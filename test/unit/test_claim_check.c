/* SPDX-License-Identifier: Apache-2.0 */
/* Registered-claim checks (exp/nbf/iat with skew, required claims,
 * audience) and RFC 8707 audience comparison. */
#include "test_util.h"

#include "claim_check.h"

#define NOW 1700000000LL
#define SKEW 30LL

static const char *const AUD[] = {"https://mcp.example.com/mcp"};

static const char *const SUB[] = {"sub"};

static mcp_claim_policy_t policy(void)
{
    mcp_claim_policy_t pol;
    memset(&pol, 0, sizeof(pol));
    pol.skew = SKEW;
    pol.now = NOW;
    return pol;
}

/* Runs mcp_claims_check on claims JSON text; returns rc, fills *fail. */
static int check(apr_pool_t *p, const char *claims_json, const mcp_claim_policy_t *pol, mcp_fail_t *fail)
{
    json_t *c = tu_json(p, claims_json);
    memset(fail, 0, sizeof(*fail));
    return mcp_claims_check(p, c, pol, fail);
}

static void assert_ok(apr_pool_t *p, const char *claims_json, const mcp_claim_policy_t *pol)
{
    mcp_fail_t fail;
    if (check(p, claims_json, pol, &fail) != 0)
        fail_msg("claims %s refused: %s (%s)", claims_json, fail.reason, fail.detail ? fail.detail : "");
}

static void assert_refused(apr_pool_t *p, const char *claims_json, const mcp_claim_policy_t *pol, const char *reason)
{
    mcp_fail_t fail;
    if (check(p, claims_json, pol, &fail) != -1)
        fail_msg("claims %s accepted, expected \"%s\"", claims_json, reason);
    assert_int_equal(fail.kind, MCP_FAIL_INVALID_TOKEN);
    assert_non_null(fail.reason);
    assert_string_equal(fail.reason, reason);
}

/* {"exp": NOW + off} */
static const char *exp_at(apr_pool_t *p, long long off)
{
    return tu_fmt(p, "{\"exp\":%lld}", NOW + off);
}

static void test_exp_boundaries(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_claim_policy_t pol = policy();
    assert_ok(p, exp_at(p, 3600), &pol);
    assert_ok(p, exp_at(p, 0), &pol);
    assert_ok(p, exp_at(p, -29), &pol);
    assert_refused(p, exp_at(p, -30), &pol, "Token expired");
    assert_refused(p, exp_at(p, -31), &pol, "Token expired");
    assert_refused(p, exp_at(p, -86400), &pol, "Token expired");

    /* Without skew the boundary is exp itself. */
    pol.skew = 0;
    assert_ok(p, exp_at(p, 1), &pol);
    assert_refused(p, exp_at(p, 0), &pol, "Token expired");
}

static void test_exp_missing(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_claim_policy_t pol = policy();
    assert_refused(p, "{}", &pol, "Missing required claims");
    assert_refused(p, "{\"sub\":\"a\",\"iat\":1700000000}", &pol, "Missing required claims");
    assert_refused(p, "{\"EXP\":1800000000}", &pol, "Missing required claims");
    /* Introspection results may lack exp. */
    pol.exp_optional = 1;
    assert_ok(p, "{}", &pol);
    /* ...but when present it is still checked. */
    assert_refused(p, exp_at(p, -31), &pol, "Token expired");
}

static void test_exp_types(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_claim_policy_t pol = policy();
    const char *bad[] = {"{\"exp\":\"1800000000\"}", "{\"exp\":true}",         "{\"exp\":false}",
                         "{\"exp\":null}",           "{\"exp\":[1800000000]}", "{\"exp\":{\"t\":1800000000}}"};
    size_t i;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mcp_fail_t fail;
        if (check(p, bad[i], &pol, &fail) != -1)
            fail_msg("claims %s accepted", bad[i]);
        assert_int_equal(fail.kind, MCP_FAIL_INVALID_TOKEN);
        assert_string_equal(fail.reason, "Malformed token");
    }
    /* Any JSON number is a NumericDate: fractions and huge values too. */
    assert_ok(p, tu_fmt(p, "{\"exp\":%lld.5}", NOW + 100), &pol);
    assert_ok(p, tu_fmt(p, "{\"exp\":%lld.5}", NOW - 30), &pol); /* now < exp + skew by 0.5 s */
    assert_refused(p, tu_fmt(p, "{\"exp\":%lld.5}", NOW - 31), &pol, "Token expired");
    assert_ok(p, "{\"exp\":1e300}", &pol);
    assert_ok(p, "{\"exp\":9223372036854775807}", &pol);
    assert_refused(p, "{\"exp\":-1}", &pol, "Token expired");
    assert_refused(p, "{\"exp\":-9223372036854775807}", &pol, "Token expired");
    assert_refused(p, "{\"exp\":-1e300}", &pol, "Token expired");
    assert_refused(p, "{\"exp\":0}", &pol, "Token expired");
}

/* The log detail names the offending value legibly, even a huge one. */
static void test_detail_huge_values(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_claim_policy_t pol = policy();
    mcp_fail_t fail;

    assert_int_equal(check(p, "{\"exp\":-1e300}", &pol, &fail), -1);
    assert_string_equal(fail.reason, "Token expired");
    assert_non_null(fail.detail);
    assert_true(tu_contains(fail.detail, "e+300"));
    assert_true(tu_contains(fail.detail, "1700000000"));

    assert_int_equal(check(p, "{\"exp\":1e300,\"nbf\":1e300}", &pol, &fail), -1);
    assert_string_equal(fail.reason, "Token not yet valid");
    assert_true(tu_contains(fail.detail, "e+300"));

    assert_int_equal(check(p, "{\"exp\":1e300,\"iat\":1.5e200}", &pol, &fail), -1);
    assert_string_equal(fail.reason, "Token issued in the future");
    assert_true(tu_contains(fail.detail, "e+200"));

    assert_int_equal(check(p, tu_fmt(p, "{\"exp\":%lld}", NOW - 100), &pol, &fail), -1);
    assert_true(tu_contains(fail.detail, tu_fmt(p, "exp %lld", NOW - 100)));
}

/* A literal, so the compiler checks the format against its arguments. */
#define NBF_FMT "{\"exp\":%lld,\"nbf\":%lld}"

static void test_nbf(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_claim_policy_t pol = policy();
    assert_ok(p, tu_fmt(p, NBF_FMT, NOW + 600, NOW - 100), &pol);
    assert_ok(p, tu_fmt(p, NBF_FMT, NOW + 600, NOW + 29), &pol);
    assert_ok(p, tu_fmt(p, NBF_FMT, NOW + 600, NOW + 30), &pol);
    assert_refused(p, tu_fmt(p, NBF_FMT, NOW + 600, NOW + 31), &pol, "Token not yet valid");
    assert_refused(p, tu_fmt(p, NBF_FMT, NOW + 600, NOW + 3600), &pol, "Token not yet valid");
    assert_refused(p, tu_fmt(p, "{\"exp\":%lld,\"nbf\":\"%lld\"}", NOW + 600, NOW), &pol, "Malformed token");
    assert_refused(p, tu_fmt(p, "{\"exp\":%lld,\"nbf\":null}", NOW + 600), &pol, "Malformed token");
}

/* A literal, so the compiler checks the format against its arguments. */
#define IAT_FMT "{\"exp\":%lld,\"iat\":%lld}"

static void test_iat(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_claim_policy_t pol = policy();
    assert_ok(p, tu_fmt(p, IAT_FMT, NOW + 600, NOW), &pol);
    assert_ok(p, tu_fmt(p, IAT_FMT, NOW + 600, NOW - 100000), &pol);
    assert_ok(p, tu_fmt(p, IAT_FMT, NOW + 600, NOW + 29), &pol);
    assert_ok(p, tu_fmt(p, IAT_FMT, NOW + 600, NOW + 30), &pol);
    assert_refused(p, tu_fmt(p, IAT_FMT, NOW + 600, NOW + 31), &pol, "Token issued in the future");
    assert_refused(p, tu_fmt(p, "{\"exp\":%lld,\"iat\":true}", NOW + 600), &pol, "Malformed token");
}

static void test_required_claims(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_claim_policy_t pol = policy();
    const char *const two[] = {"sub", "client_id"};
    const char *e = tu_fmt(p, "\"exp\":%lld", NOW + 600);

    pol.required = SUB;
    pol.n_required = 1;
    assert_ok(p, tu_fmt(p, "{%s,\"sub\":\"alice\"}", e), &pol);
    assert_refused(p, tu_fmt(p, "{%s}", e), &pol, "Missing required claims");
    assert_refused(p, tu_fmt(p, "{%s,\"sub\":null}", e), &pol, "Missing required claims");
    assert_refused(p, tu_fmt(p, "{%s,\"Sub\":\"alice\"}", e), &pol, "Missing required claims");
    /* Present with any non-null value. */
    assert_ok(p, tu_fmt(p, "{%s,\"sub\":\"\"}", e), &pol);
    assert_ok(p, tu_fmt(p, "{%s,\"sub\":0}", e), &pol);
    assert_ok(p, tu_fmt(p, "{%s,\"sub\":false}", e), &pol);

    pol.required = two;
    pol.n_required = 2;
    assert_ok(p, tu_fmt(p, "{%s,\"sub\":\"a\",\"client_id\":\"c\"}", e), &pol);
    assert_refused(p, tu_fmt(p, "{%s,\"sub\":\"a\"}", e), &pol, "Missing required claims");
    assert_refused(p, tu_fmt(p, "{%s,\"client_id\":\"c\"}", e), &pol, "Missing required claims");
}

static void test_audience(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_claim_policy_t pol = policy();
    const char *const two[] = {"https://other.example.com", "https://mcp.example.com/mcp"};
    const char *e = tu_fmt(p, "\"exp\":%lld", NOW + 600);

    pol.audiences = AUD;
    pol.n_audiences = 1;
    assert_ok(p, tu_fmt(p, "{%s,\"aud\":\"https://mcp.example.com/mcp\"}", e), &pol);
    assert_ok(p, tu_fmt(p, "{%s,\"aud\":\"https://MCP.Example.com:443/mcp/\"}", e), &pol);
    assert_refused(p, tu_fmt(p, "{%s,\"aud\":\"https://mcp.example.com/other\"}", e), &pol, "Invalid audience");
    assert_ok(p, tu_fmt(p, "{%s,\"aud\":[\"https://a.example\",\"https://mcp.example.com/mcp\"]}", e), &pol);
    assert_refused(p, tu_fmt(p, "{%s,\"aud\":[\"https://a.example\",\"https://b.example\"]}", e), &pol,
                   "Invalid audience");
    assert_refused(p, tu_fmt(p, "{%s,\"aud\":[]}", e), &pol, "Invalid audience");
    /* Non-string members are skipped, not fatal, and never match. */
    assert_ok(
        p,
        tu_fmt(p, "{%s,\"aud\":[1,null,{\"u\":\"https://mcp.example.com/mcp\"},\"https://mcp.example.com/mcp\"]}", e),
        &pol);
    assert_refused(p, tu_fmt(p, "{%s,\"aud\":[[\"https://mcp.example.com/mcp\"],{\"a\":1},true]}", e), &pol,
                   "Invalid audience");
    assert_refused(p, tu_fmt(p, "{%s,\"aud\":{\"aud\":\"https://mcp.example.com/mcp\"}}", e), &pol, "Invalid audience");
    assert_refused(p, tu_fmt(p, "{%s}", e), &pol, "Invalid audience");
    assert_refused(p, tu_fmt(p, "{%s,\"aud\":null}", e), &pol, "Invalid audience");
    assert_refused(p, tu_fmt(p, "{%s,\"aud\":\"\"}", e), &pol, "Invalid audience");

    /* Several accepted audiences: any one will do. */
    pol.audiences = two;
    pol.n_audiences = 2;
    assert_ok(p, tu_fmt(p, "{%s,\"aud\":\"https://mcp.example.com/mcp\"}", e), &pol);
    assert_ok(p, tu_fmt(p, "{%s,\"aud\":[\"x\",\"https://other.example.com/\"]}", e), &pol);

    /* n_audiences 0: aud is not checked at all. */
    pol.n_audiences = 0;
    assert_ok(p, tu_fmt(p, "{%s}", e), &pol);
    assert_ok(p, tu_fmt(p, "{%s,\"aud\":\"https://elsewhere\"}", e), &pol);
}

static void test_audience_accepted_direct(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    assert_false(mcp_audience_accepted(NULL, AUD, 1));
    assert_true(mcp_audience_accepted(tu_json(p, "\"https://mcp.example.com/mcp\""), AUD, 1));
    assert_false(mcp_audience_accepted(tu_json(p, "\"https://mcp.example.com/mcp\""), AUD, 0));
    assert_false(mcp_audience_accepted(tu_json(p, "42"), AUD, 1));
}

static void assert_aud_eq(const char *a, const char *b)
{
    if (!mcp_audience_equal(a, b) || !mcp_audience_equal(b, a))
        fail_msg("\"%s\" and \"%s\" should compare equal", a, b);
}

static void assert_aud_ne(const char *a, const char *b)
{
    if (mcp_audience_equal(a, b) || mcp_audience_equal(b, a))
        fail_msg("\"%s\" and \"%s\" should differ", a, b);
}

static void test_audience_equal(void **state)
{
    assert_aud_eq("https://example.com/mcp", "https://example.com/mcp");
    assert_aud_eq("https://Example.COM/mcp", "https://example.com/mcp");
    assert_aud_eq("HTTPS://example.com/mcp", "https://example.com/mcp");
    assert_aud_eq("https://example.com/", "https://example.com");
    assert_aud_eq("https://example.com:443/mcp", "https://example.com/mcp");
    assert_aud_eq("http://example.com:80/mcp", "http://example.com/mcp");
    assert_aud_eq("https://example.com/mcp/", "https://example.com/mcp");
    assert_aud_eq("https://example.com:8443/mcp", "https://EXAMPLE.com:8443/mcp/");
    assert_aud_eq("mcp", "mcp");

    assert_aud_ne("https://example.com/MCP", "https://example.com/mcp");
    assert_aud_ne("http://x", "https://x");
    assert_aud_ne("mcp", "MCP");
    assert_aud_ne("https://example.com//", "https://example.com");
    assert_aud_ne("https://example.com/mcp//", "https://example.com/mcp");
    assert_aud_ne("https://example.com:8443/mcp", "https://example.com/mcp");
    assert_aud_ne("https://example.com:80/mcp", "https://example.com/mcp");
    assert_aud_ne("http://example.com:443/mcp", "http://example.com/mcp");
    assert_aud_ne("https://example.com.evil/mcp", "https://example.com/mcp");
    assert_aud_ne("https://example.com/mcp", "https://example.com/mcpx");
    assert_aud_ne("https://example.com/mcp", "https://example.org/mcp");
    assert_aud_ne("https://example.com/mcp?x=1", "https://example.com/mcp");
    assert_aud_ne("https://user@example.com/mcp", "https://example.com/mcp");
    assert_aud_ne("", "https://example.com");
    assert_aud_ne("example.com", "https://example.com");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_exp_boundaries),     TU_TEST(test_exp_missing), TU_TEST(test_exp_types),
        TU_TEST(test_detail_huge_values), TU_TEST(test_nbf),         TU_TEST(test_iat),
        TU_TEST(test_required_claims),    TU_TEST(test_audience),    TU_TEST(test_audience_accepted_direct),
        TU_TEST(test_audience_equal),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("claim_check", tests, NULL, NULL);
}
