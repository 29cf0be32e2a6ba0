/* SPDX-License-Identifier: Apache-2.0 */
/* Compact JWS split/decode and the JOSE header rules (RFC 7515, RFC 8725). */
#include "test_util.h"

/* A token whose header is exactly hdr[0..len) (payload {} and a dummy signature). */
static const char *tok_hdr_bytes(apr_pool_t *p, const char *hdr, size_t len)
{
    return tu_compact(p, hdr, len, "{}", 2, "sig", 3);
}

static const char *tok_hdr(apr_pool_t *p, const char *hdr)
{
    return tok_hdr_bytes(p, hdr, strlen(hdr));
}

static int parse(apr_pool_t *p, const char *tok, mcp_jws_t *jws, mcp_fail_t *fail)
{
    fail->kind = MCP_OK;
    fail->reason = NULL;
    fail->detail = NULL;
    return mcp_jws_parse(p, tok, strlen(tok), jws, fail);
}

/* tok must be refused as invalid_token with exactly this reason. */
static void assert_refused(apr_pool_t *p, const char *tok, const char *reason)
{
    mcp_jws_t jws;
    mcp_fail_t fail;
    if (parse(p, tok, &jws, &fail) != -1)
        fail_msg("token %s accepted, expected \"%s\"", tok, reason);
    assert_int_equal(fail.kind, MCP_FAIL_INVALID_TOKEN);
    assert_non_null(fail.reason);
    assert_string_equal(fail.reason, reason);
}

static void assert_hdr_refused(apr_pool_t *p, const char *hdr, const char *reason)
{
    assert_refused(p, tok_hdr(p, hdr), reason);
}

static void test_good_token_parts(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    static const unsigned char sig[] = {0x00, 0xff, 0x10, 0x80};
    const char *hdr = "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"at+jwt\"}";
    const char *payload = "{\"sub\":\"alice\"}";
    const char *tok = tu_compact(p, hdr, strlen(hdr), payload, strlen(payload), sig, sizeof(sig));
    const char *dot2 = strrchr(tok, '.');
    mcp_jws_t jws;
    mcp_fail_t fail;
    json_t *claims = NULL;

    assert_int_equal(parse(p, tok, &jws, &fail), 0);
    assert_int_equal(jws.alg, MCP_ALG_RS256);
    assert_string_equal(jws.kid, "k1");
    assert_string_equal(jws.typ, "at+jwt");
    assert_ptr_equal(jws.signing_input, tok);
    assert_int_equal(jws.signing_input_len, (size_t)(dot2 - tok));
    assert_int_equal(jws.payload_len, strlen(payload));
    assert_memory_equal(jws.payload, payload, jws.payload_len);
    assert_int_equal(jws.payload[jws.payload_len], '\0');
    assert_int_equal(jws.sig_len, sizeof(sig));
    assert_memory_equal(jws.sig, sig, sizeof(sig));
    assert_true(json_is_object(jws.header));

    assert_int_equal(mcp_jws_claims(p, &jws, &claims, &fail), 0);
    assert_string_equal(tu_str(claims, "sub"), "alice");

    /* Without kid and typ. */
    assert_int_equal(parse(p, tok_hdr(p, "{\"alg\":\"ES256\"}"), &jws, &fail), 0);
    assert_null(jws.kid);
    assert_null(jws.typ);
    assert_int_equal(jws.alg, MCP_ALG_ES256);
}

static void test_every_alg_name(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    int a;
    for (a = MCP_ALG_UNKNOWN + 1; a < MCP_ALG_COUNT; a++) {
        mcp_jws_t jws;
        mcp_fail_t fail;
        const char *hdr = apr_psprintf(p, "{\"alg\":\"%s\"}", mcp_alg_name((mcp_alg)a));
        assert_int_equal(parse(p, tok_hdr(p, hdr), &jws, &fail), 0);
        assert_int_equal(jws.alg, a);
        assert_int_equal(mcp_alg_from_name(mcp_alg_name((mcp_alg)a)), a);
    }
}

static void test_part_count(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *good = tok_hdr(p, "{\"alg\":\"RS256\"}");

    assert_int_equal(mcp_compact_parts("", 0), 1);
    assert_int_equal(mcp_compact_parts("a.b.c", 5), 3);
    assert_int_equal(mcp_compact_parts("..", 2), 3);
    assert_int_equal(mcp_compact_parts("a.b.c.d.e", 9), 5);
    assert_int_equal(mcp_compact_parts(good, strlen(good)), 3);

    assert_refused(p, "eyJhbGciOiJSUzI1NiJ9", "Malformed token");
    assert_refused(p, "eyJhbGciOiJSUzI1NiJ9.e30", "Malformed token");
    assert_refused(p, apr_pstrcat(p, good, ".e30", NULL), "Malformed token");
    assert_refused(p, "a.b.c.d", "Malformed token");
    assert_refused(p, "", "Malformed token");
    assert_refused(p, "a.b.c.d.e.f", "Malformed token");
    assert_refused(p, "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", "Encrypted tokens (JWE) are not accepted");
    assert_refused(p, "....", "Encrypted tokens (JWE) are not accepted");
    /* Control: three parts parse. */
    {
        mcp_jws_t jws;
        mcp_fail_t fail;
        assert_int_equal(parse(p, good, &jws, &fail), 0);
    }
}

static void test_empty_and_bad_parts(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *good = tok_hdr(p, "{\"alg\":\"RS256\"}");
    const char *d1 = strchr(good, '.');

    assert_refused(p, ".e30.c2ln", "Malformed token");
    assert_refused(p, "..", "Malformed token");
    /* Each part must be canonical base64url. */
    assert_refused(p, apr_pstrcat(p, "eyJhbGciOiJSUzI1NiJ9=", d1, NULL), "Malformed token");
    assert_refused(p, apr_pstrcat(p, "eyJhbGciOiJSUzI1NiJ9.e30=.c2ln", NULL), "Malformed token");
    assert_refused(p, apr_pstrcat(p, "eyJhbGciOiJSUzI1NiJ9.e30.c2l+", NULL), "Malformed token");
    assert_refused(p, apr_pstrcat(p, "eyJhbGciOiJSUzI1NiJ9.e3 0.c2ln", NULL), "Malformed token");
}

static void test_header_not_json(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *bad[] = {
        "not json",       "{", "{\"alg\":\"RS256\"", "{\"alg\":\"RS256\"} x", "{'alg':'RS256'}", "{\"alg\":\"RS256\",}",
        "{alg:\"RS256\"}"};
    size_t i;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_hdr_refused(p, bad[i], "Malformed token");
}

static void test_header_not_object(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *bad[] = {"[\"alg\",\"RS256\"]", "[{\"alg\":\"RS256\"}]", "\"RS256\"", "null", "42", "true"};
    size_t i;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_hdr_refused(p, bad[i], "Malformed token");
}

static void test_duplicate_header_member(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    assert_hdr_refused(p, "{\"alg\":\"RS256\",\"alg\":\"none\"}", "Malformed token");
    assert_hdr_refused(p, "{\"alg\":\"none\",\"alg\":\"RS256\"}", "Malformed token");
    assert_hdr_refused(p, "{\"alg\":\"RS256\",\"kid\":\"a\",\"kid\":\"b\"}", "Malformed token");
}

static void test_bad_alg_values(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *bad[] = {
        "{\"alg\":\"none\"}",
        "{\"alg\":\"None\"}",
        "{\"alg\":\"NONE\"}",
        "{\"alg\":\"\"}",
        "{\"alg\":\"rs256\"}",
        "{\"alg\":\"RS256 \"}",
        "{\"alg\":\" RS256\"}",
        "{\"alg\":\"RS-256\"}",
        "{\"alg\":256}",
        "{\"alg\":null}",
        "{\"alg\":true}",
        "{\"alg\":[\"RS256\"]}",
        "{\"alg\":{\"name\":\"RS256\"}}",
        "{\"typ\":\"JWT\"}",
        "{}",
        "{\"alg\":\"ES256K\"}",
        "{\"alg\":\"RSA-OAEP\"}",
        "{\"alg\":\"HS1\"}",
        "{\"ALG\":\"RS256\"}",
        "{\"alg\":\"eddsa\"}",
    };
    size_t i;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mcp_jws_t jws;
        mcp_fail_t fail;
        if (parse(p, tok_hdr(p, bad[i]), &jws, &fail) != -1)
            fail_msg("header %s accepted", bad[i]);
        assert_int_equal(fail.kind, MCP_FAIL_INVALID_TOKEN);
        assert_non_null(fail.reason);
        if (strcmp(fail.reason, "Algorithm not allowed") != 0 && strcmp(fail.reason, "Malformed token") != 0)
            fail_msg("header %s: unexpected reason \"%s\"", bad[i], fail.reason);
    }
    /* A string that names no algorithm is an algorithm problem, a non-string a format one. */
    assert_hdr_refused(p, "{\"alg\":\"none\"}", "Algorithm not allowed");
    assert_hdr_refused(p, "{\"alg\":\"rs256\"}", "Algorithm not allowed");
    assert_hdr_refused(p, "{\"alg\":256}", "Malformed token");
    assert_hdr_refused(p, "{}", "Malformed token");
}

static void test_crit_rejected(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    assert_hdr_refused(p, "{\"alg\":\"RS256\",\"crit\":[\"exp\"],\"exp\":1}", "Unsupported crit header");
    assert_hdr_refused(p, "{\"alg\":\"RS256\",\"crit\":[]}", "Unsupported crit header");
    assert_hdr_refused(p, "{\"alg\":\"RS256\",\"crit\":\"b64\"}", "Unsupported crit header");
    assert_hdr_refused(p, "{\"alg\":\"RS256\",\"crit\":null}", "Unsupported crit header");
    /* Even with an otherwise unacceptable alg, crit is what is reported. */
    assert_hdr_refused(p, "{\"alg\":\"none\",\"crit\":[\"x\"]}", "Unsupported crit header");
}

static void test_b64_false_rejected(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_jws_t jws;
    mcp_fail_t fail;
    assert_hdr_refused(p, "{\"alg\":\"HS256\",\"b64\":false}", "Unsupported b64 header");
    assert_hdr_refused(p, "{\"alg\":\"HS256\",\"b64\":\"false\"}", "Unsupported b64 header");
    assert_hdr_refused(p, "{\"alg\":\"HS256\",\"b64\":0}", "Unsupported b64 header");
    assert_hdr_refused(p, "{\"alg\":\"HS256\",\"b64\":null}", "Unsupported b64 header");
    assert_hdr_refused(p, "{\"alg\":\"HS256\",\"b64\":false,\"crit\":[\"b64\"]}", "Unsupported crit header");
    /* b64:true leaves the signing input as RFC 7515 defines it. */
    assert_int_equal(parse(p, tok_hdr(p, "{\"alg\":\"HS256\",\"b64\":true}"), &jws, &fail), 0);
}

static void test_kid_and_typ_must_be_strings(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *kids[] = {"1", "null", "[]", "[\"k\"]", "{}", "true"};
    size_t i;
    for (i = 0; i < sizeof(kids) / sizeof(kids[0]); i++) {
        assert_hdr_refused(p, apr_psprintf(p, "{\"alg\":\"RS256\",\"kid\":%s}", kids[i]), "Malformed token");
        assert_hdr_refused(p, apr_psprintf(p, "{\"alg\":\"RS256\",\"typ\":%s}", kids[i]), "Malformed token");
    }
}

static void test_nul_in_header(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    static const char raw_nul[] = "{\"alg\":\"RS256\",\"kid\":\"a\0b\"}";
    static const char raw_nul_outside[] = "{\"alg\":\"RS256\"}\0";
    static const char raw_nul_alg[] = "{\"alg\":\"RS256\0\"}";

    /* The \u0000 escape: a kid "a<NUL>b" would compare equal to "a" in C. */
    assert_hdr_refused(p, "{\"alg\":\"RS256\",\"kid\":\"a\\u0000b\"}", "Malformed token");
    assert_hdr_refused(p, "{\"alg\":\"RS256\\u0000\"}", "Malformed token");
    assert_hdr_refused(p, "{\"alg\\u0000x\":\"none\",\"alg\":\"RS256\"}", "Malformed token");
    /* A raw NUL byte inside or after the JSON text. */
    assert_refused(p, tok_hdr_bytes(p, raw_nul, sizeof(raw_nul) - 1), "Malformed token");
    assert_refused(p, tok_hdr_bytes(p, raw_nul_outside, sizeof(raw_nul_outside) - 1), "Malformed token");
    assert_refused(p, tok_hdr_bytes(p, raw_nul_alg, sizeof(raw_nul_alg) - 1), "Malformed token");
}

static void test_invalid_utf8_in_header(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *bad[] = {
        "{\"alg\":\"RS256\",\"kid\":\"\xff\xfe\"}",         /* never valid */
        "{\"alg\":\"RS256\",\"kid\":\"\xc0\xaf\"}",         /* overlong '/' */
        "{\"alg\":\"RS256\",\"kid\":\"\xe0\x80\xaf\"}",     /* overlong, 3 bytes */
        "{\"alg\":\"RS256\",\"kid\":\"\xed\xa0\x80\"}",     /* UTF-16 surrogate */
        "{\"alg\":\"RS256\",\"kid\":\"\x80\"}",             /* lone continuation */
        "{\"alg\":\"RS256\",\"kid\":\"\xc3\"}",             /* truncated sequence */
        "{\"alg\":\"RS256\",\"kid\":\"\xf4\x90\x80\x80\"}", /* above U+10FFFF */
        "{\"alg\":\"RS256\",\"k\xffid\":\"a\"}",            /* in a member name */
    };
    size_t i;
    mcp_jws_t jws;
    mcp_fail_t fail;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_hdr_refused(p, bad[i], "Malformed token");
    /* Control: well-formed UTF-8 is fine. */
    assert_int_equal(parse(p, tok_hdr(p, "{\"alg\":\"RS256\",\"kid\":\"caf\xc3\xa9-\xe2\x80\x99\"}"), &jws, &fail), 0);
    assert_string_equal(jws.kid, "caf\xc3\xa9-\xe2\x80\x99");
}

static void test_claims_payload(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *hdr = "{\"alg\":\"RS256\"}";
    const char *bad[] = {"[]", "\"sub\"", "not json", "{\"sub\":\"a\",\"sub\":\"b\"}", "{\"sub\":\"a\\u0000\"}", ""};
    size_t i;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mcp_jws_t jws;
        mcp_fail_t fail;
        json_t *claims = NULL;
        const char *tok = tu_compact(p, hdr, strlen(hdr), bad[i], strlen(bad[i]), "s", 1);
        /* The header is fine, so the split succeeds; the payload is judged later. */
        assert_int_equal(parse(p, tok, &jws, &fail), 0);
        assert_int_equal(mcp_jws_claims(p, &jws, &claims, &fail), -1);
        assert_string_equal(fail.reason, "Malformed token");
        assert_null(claims);
    }
}

static void test_typ_matches(void **state)
{
    assert_true(mcp_typ_matches("at+jwt", "at+jwt"));
    assert_true(mcp_typ_matches("at+jwt", "application/at+jwt"));
    assert_true(mcp_typ_matches("application/at+jwt", "at+jwt"));
    assert_true(mcp_typ_matches("at+jwt", "AT+JWT"));
    assert_true(mcp_typ_matches("at+jwt", "Application/AT+JWT"));
    assert_true(mcp_typ_matches("application/at+jwt", "application/at+jwt"));
    assert_false(mcp_typ_matches("at+jwt", "JWT"));
    assert_false(mcp_typ_matches("JWT", "at+jwt"));
    assert_false(mcp_typ_matches("at+jwt", "at+jwt "));
    assert_false(mcp_typ_matches("at+jwt", "application/"));
    assert_false(mcp_typ_matches("at+jwt", "text/at+jwt"));
    assert_false(mcp_typ_matches("at+jwt", ""));
    assert_false(mcp_typ_matches("at+jwt", NULL));
    assert_false(mcp_typ_matches(NULL, "at+jwt"));
    assert_true(mcp_typ_matches("JWT", "jwt"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_good_token_parts),
        TU_TEST(test_every_alg_name),
        TU_TEST(test_part_count),
        TU_TEST(test_empty_and_bad_parts),
        TU_TEST(test_header_not_json),
        TU_TEST(test_header_not_object),
        TU_TEST(test_duplicate_header_member),
        TU_TEST(test_bad_alg_values),
        TU_TEST(test_crit_rejected),
        TU_TEST(test_b64_false_rejected),
        TU_TEST(test_kid_and_typ_must_be_strings),
        TU_TEST(test_nul_in_header),
        TU_TEST(test_invalid_utf8_in_header),
        TU_TEST(test_claims_payload),
        TU_TEST(test_typ_matches),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("jwt", tests, NULL, NULL);
}
