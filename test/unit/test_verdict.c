/* SPDX-License-Identifier: Apache-2.0 */
/* verdict.c: the flat binary form of a verdict kept in the shared cache
 * (any bytes kept, damaged values refused) and the cap of a lifetime at a
 * NumericDate (range-checked before any conversion); how long a verdict
 * may be kept (never past its exp). */
#include "test_util.h"

#include <math.h>

#include "shm_cache.h"
#include "verdict.h"

#include "store_util.h"

static void verdict_encoding_keeps_any_bytes(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_verdict_t v, back;
    const char *text;
    size_t len;

    memset(&v, 0, sizeof(v));
    v.issuer_index = 2;
    v.alg = MCP_ALG_RS256;
    v.has_exp = 1;
    v.exp = 1700000000.25;
    v.has_iat = 1;
    v.iat = -5;
    v.user = "u\nv 7";
    v.sub = NULL;
    v.iss = "https://idp";
    v.scope = "";
    v.claims = "{\"x\":\"1 2\\n\"}";
    text = mcp_verdict_encode(p, &v, &len);
    assert_int_equal(mcp_verdict_decode(p, text, len, &back), 0);
    assert_string_equal(back.user, v.user);
    assert_null(back.sub);
    assert_string_equal(back.iss, v.iss);
    assert_string_equal(back.scope, "");
    assert_string_equal(back.claims, v.claims);
    assert_true(back.exp == v.exp && back.iat == v.iat && back.has_exp && !back.has_nbf && back.has_iat);
    /* Truncated or extended text is refused. */
    assert_int_equal(mcp_verdict_decode(p, text, len - 1, &back), -1);
    {
        char *longer = apr_palloc(p, len + 1);
        memcpy(longer, text, len);
        longer[len] = 'x';
        assert_int_equal(mcp_verdict_decode(p, longer, len + 1, &back), -1);
    }
}

/* The stored form is binary: every length is checked against the value,
 * each string must end with its NUL where its length says, and a form of
 * another version (another build after a graceful restart) is refused. */
static void verdict_decoding_refuses_damaged_values(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_verdict_t v, back;
    const char *text;
    char *copy;
    size_t len, i;

    memset(&v, 0, sizeof(v));
    v.user = "alice";
    v.sub = "alice";
    v.iss = "https://idp";
    v.scope = "a b";
    v.claims = "{\"sub\":\"alice\"}";
    text = mcp_verdict_encode(p, &v, &len);
    assert_int_equal(mcp_verdict_decode(p, text, len, &back), 0);
    assert_string_equal(back.scope, "a b");
    copy = apr_pmemdup(p, text, len);
    /* Every single-byte truncation fails. */
    for (i = 0; i < len; i++)
        assert_int_equal(mcp_verdict_decode(p, copy, i, &back), -1);
    /* A terminator turned into a character: the string would run on. */
    copy[len - 1] = 'x';
    assert_int_equal(mcp_verdict_decode(p, copy, len, &back), -1);
    /* An embedded NUL inside a string (a length that lies). */
    copy = apr_pmemdup(p, text, len);
    copy[len - 3] = '\0';
    assert_int_equal(mcp_verdict_decode(p, copy, len, &back), -1);
    /* Another version of the form. */
    copy = apr_pmemdup(p, text, len);
    copy[0] ^= 1;
    assert_int_equal(mcp_verdict_decode(p, copy, len, &back), -1);
}

/* A flag is 0 or 1 as the encoder writes it; a 2 (damage) is refused, not
 * read as true and re-encoded as 1 (libFuzzer's verdict round trip). */
static void verdict_decoding_refuses_a_flag_that_is_not_0_or_1(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_verdict_t v, back;
    const char *without, *with;
    char *copy;
    size_t len, len2, i, flag = 0, found = 0;

    memset(&v, 0, sizeof(v));
    v.user = v.scope = v.claims = "x";
    without = mcp_verdict_encode(p, &v, &len);
    v.has_exp = 1;
    with = mcp_verdict_encode(p, &v, &len2);
    assert_int_equal(len, len2);
    /* The one byte that says "has exp" (exp itself is 0 in both). */
    for (i = 0; i < len; i++)
        if (without[i] != with[i]) {
            flag = i;
            found++;
        }
    assert_int_equal(found, 1);
    assert_int_equal(mcp_verdict_decode(p, with, len, &back), 0);
    assert_true(back.has_exp == 1);
    copy = apr_pmemdup(p, with, len);
    copy[flag] = 2;
    assert_int_equal(mcp_verdict_decode(p, copy, len, &back), -1);
}

/* The audit record's client (client_id, else azp; strings only) and
 * whether sub, iss, scope and client are log-safe as they are: found once
 * when the verdict is made, kept by the stored form. */
static void verdict_knows_its_client_and_whether_it_logs_clean(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_verdict_t v, back;
    const char *text;
    size_t len;
    json_t *c;

    c = json_pack("{s:s, s:s, s:s, s:s, s:s}", "sub", "alice", "iss", "https://idp", "scope", "a b", "client_id",
                  "app-1", "azp", "other");
    assert_int_equal(mcp_verdict_from_claims(p, c, 0, MCP_ALG_RS256, NULL, NULL, &v), 0);
    assert_string_equal(v.client_id, "app-1");
    assert_true(v.log_clean);
    text = mcp_verdict_encode(p, &v, &len);
    assert_int_equal(mcp_verdict_decode(p, text, len, &back), 0);
    assert_string_equal(back.client_id, "app-1");
    assert_true(back.log_clean);
    json_decref(c);

    /* azp when there is no client_id; a number is no client. */
    c = json_pack("{s:s, s:i, s:s}", "sub", "alice", "client_id", 7, "azp", "web");
    assert_int_equal(mcp_verdict_from_claims(p, c, 0, MCP_ALG_RS256, NULL, NULL, &v), 0);
    assert_string_equal(v.client_id, "web");
    json_decref(c);
    c = json_pack("{s:s}", "sub", "alice");
    assert_int_equal(mcp_verdict_from_claims(p, c, 0, MCP_ALG_RS256, NULL, NULL, &v), 0);
    assert_null(v.client_id);
    assert_true(v.log_clean);
    text = mcp_verdict_encode(p, &v, &len);
    assert_int_equal(mcp_verdict_decode(p, text, len, &back), 0);
    assert_null(back.client_id);
    json_decref(c);

    /* Any field that would need encoding makes the whole record go
     * through mcp_audit_value: a percent sign, a non-ASCII byte. */
    c = json_pack("{s:s, s:s}", "sub", "alice", "client_id", "app%41");
    assert_int_equal(mcp_verdict_from_claims(p, c, 0, MCP_ALG_RS256, NULL, NULL, &v), 0);
    assert_false(v.log_clean);
    text = mcp_verdict_encode(p, &v, &len);
    assert_int_equal(mcp_verdict_decode(p, text, len, &back), 0);
    assert_false(back.log_clean);
    json_decref(c);
    c = json_pack("{s:s}", "sub",
                  "al\xc3\xaf"
                  "ce");
    assert_int_equal(mcp_verdict_from_claims(p, c, 0, MCP_ALG_RS256, NULL, NULL, &v), 0);
    assert_false(v.log_clean);
    json_decref(c);
}

/* Item 12: exp / iat / nbf are IdP numbers of any size. Every conversion to
 * apr_time_t is range-checked first (under UBSan an unchecked one aborts). */
static void time_cap_is_range_checked(void **state)
{
    const apr_time_t until = apr_time_from_sec(1700000300);
    (void)state;
    assert_true(mcp_time_cap(until, -1e300) == 0);
    assert_true(mcp_time_cap(until, -1e18) == 0);
    assert_true(mcp_time_cap(until, -0.0) == 0);
    assert_true(mcp_time_cap(until, 1e300) == until);
    assert_true(mcp_time_cap(until, 1e19) == until);
    assert_true(mcp_time_cap(until, 9.3e12) == until);
    assert_true(mcp_time_cap(until, NAN) == 0);
    assert_true(mcp_time_cap(until, INFINITY) == until);
    assert_true(mcp_time_cap(until, -INFINITY) == 0);
    assert_true(mcp_time_cap(until, 1700000000.5) == 1700000000500000LL);
    assert_true(mcp_time_cap(until, 1700000300) == until);
    assert_true(mcp_time_cap(until, 1700000301) == until);
    assert_true(mcp_time_cap(-5, -1e300) == -5);
}

/* How long a verdict may be kept: until, but never past the token's exp. */
static void keep_until_never_past_exp(void **state)
{
    const apr_time_t until = apr_time_from_sec(1700000300);
    mcp_verdict_t v;
    (void)state;

    memset(&v, 0, sizeof(v));
    assert_true(mcp_verdict_keep_until(&v, until) == until); /* no exp: until */
    v.has_exp = 1;
    v.exp = 1700000100;
    assert_true(mcp_verdict_keep_until(&v, until) == apr_time_from_sec(1700000100));
    v.exp = 1700000900;
    assert_true(mcp_verdict_keep_until(&v, until) == until);
    v.exp = NAN; /* never a longer lifetime */
    assert_true(mcp_verdict_keep_until(&v, until) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(verdict_encoding_keeps_any_bytes),
        TU_TEST(verdict_decoding_refuses_damaged_values),
        TU_TEST(verdict_decoding_refuses_a_flag_that_is_not_0_or_1),
        TU_TEST(verdict_knows_its_client_and_whether_it_logs_clean),
        TU_TEST(time_cap_is_range_checked),
        TU_TEST(keep_until_never_past_exp),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("verdict", tests, NULL, NULL);
}
