/* SPDX-License-Identifier: Apache-2.0 */
/* metrics.c: counters add up (in the process's own block, then in an
 * attached one); an out-of-range id changes nothing; every fixed reason
 * text of mcp_fail_t maps to its slug and anything else to "other"; the
 * Prometheus exposition is well-formed (HELP and TYPE before each family,
 * label values from the closed set, cumulative histogram buckets); audit
 * values are JSON-safe once mod_log_config has escaped them. */
#include "test_util.h"

#include "metrics.h"

static void test_counter_adds_up(void **state)
{
    uint64_t before = mcp_metric_get(MCP_M_CACHE_MISS);
    (void)state;
    mcp_metric_add(MCP_M_CACHE_MISS, 1);
    mcp_metric_add(MCP_M_CACHE_MISS, 2);
    assert_int_equal(mcp_metric_get(MCP_M_CACHE_MISS), before + 3);
    assert_int_equal(mcp_metric_get(MCP_M_CACHE_L1_HIT), 0);
}

static void test_out_of_range_id_is_ignored(void **state)
{
    (void)state;
    mcp_metric_add(MCP_M_COUNT, 5);
    assert_int_equal(mcp_metric_get(MCP_M_COUNT), 0);
    mcp_metric_request(MCP_OUTCOME_COUNT, MCP_R_NONE);
    mcp_metric_request(MCP_OUTCOME_ACCEPTED, MCP_R_COUNT);
    assert_int_equal(mcp_metric_requests(MCP_OUTCOME_COUNT, MCP_R_NONE), 0);
    mcp_metric_observe(MCP_CALL_KINDS, 5);
}

/* Two "processes" sharing one block see one figure; a block of another
 * layout (a stale magic word) starts from zero, a kept one keeps counting. */
static void test_attached_block_is_shared_and_kept(void **state)
{
    size_t size = mcp_metrics_block_size();
    uint64_t *block = calloc(1, size + 64);
    (void)state;
    assert_non_null(block);
    block[1] = 12345; /* garbage where a counter will be: no valid layout word */
    mcp_metrics_attach(block);
    assert_int_equal(mcp_metric_get(MCP_M_CACHE_L1_HIT), 0);
    mcp_metric_add(MCP_M_CACHE_L1_HIT, 2);
    mcp_metric_request(MCP_OUTCOME_INVALID_TOKEN, MCP_R_EXPIRED);
    /* re-attached (a graceful restart): the counts stay */
    mcp_metrics_attach(block);
    assert_int_equal(mcp_metric_get(MCP_M_CACHE_L1_HIT), 2);
    assert_int_equal(mcp_metric_requests(MCP_OUTCOME_INVALID_TOKEN, MCP_R_EXPIRED), 1);
    /* the counts are in the block, not in the process */
    assert_int_not_equal(memchr(block, 2, size), NULL);
    free(block);
    mcp_metrics_attach(calloc(1, size)); /* the later tests count somewhere valid (leaked on purpose) */
}

static void test_reason_mapping(void **state)
{
    static const struct {
        const char *text, *slug;
    } cases[] = {
        {"Token expired", "expired"},
        {"Invalid signature", "invalid_signature"},
        {"Invalid audience", "invalid_audience"},
        {"Malformed token", "malformed"},
        {"Unknown key id", "unknown_kid"},
        {"Token inactive", "inactive"},
        {"No bearer token", "none"},
        {"Token not yet valid", "not_yet_valid"},
        {"Token issued in the future", "issued_in_future"},
        {"JWKS fetch failed", "jwks_unavailable"},
        {"Introspection failed", "introspection_unavailable"},
        {"More than one Authorization header", "multiple_tokens"},
        {"Encrypted tokens (JWE) are not accepted", "encrypted"},
        {"Insufficient scope", "step_up"},
        /* never a client's text: anything unknown is "other" */
        {"token expired", "other"},
        {"Token expired ", "other"},
        {"evil\"} 1\nmcp_auth_requests_total{", "other"},
        {"", "other"},
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(mcp_reason_slug(mcp_reason_of(cases[i].text)), cases[i].slug);
    assert_string_equal(mcp_reason_slug(mcp_reason_of(NULL)), "other");
    assert_string_equal(mcp_reason_slug(MCP_R_COUNT), "other");
    assert_string_equal(mcp_outcome_name(MCP_OUTCOME_INVALID_TOKEN), "invalid_token");
}

/* Every fixed reason text the sources hand to mcp_fail maps to a slug of
 * its own: the list is read from the sources themselves. */
static void test_every_fail_reason_in_the_sources_is_mapped(void **state)
{
    const char *files[] = {"bearer.c",     "verifier.c", "jwt.c",        "claim_check.c",
                           "introspect.c", "keyring.c",  "httpd/authn.c"};
    char path[512], line[4096];
    size_t i;
    int found = 0;
    (void)state;
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        FILE *f;
        snprintf(path, sizeof(path), "%s/../../../src/%s", VECTOR_DIR, files[i]);
        f = fopen(path, "r");
        assert_non_null(f);
        while (fgets(line, sizeof(line), f)) {
            char *m = strstr(line, "MCP_FAIL_"), *q, *e;
            if (!m || !strstr(line, "mcp_fail(") || !(q = strchr(m, ',')) || !(q = strchr(q, '"')) ||
                !(e = strchr(q + 1, '"')))
                continue;
            *e = '\0';
            if (mcp_reason_of(q + 1) == MCP_R_OTHER)
                fail_msg("%s: reason \"%s\" has no slug (metrics.c reason_table)", files[i], q + 1);
            found++;
        }
        fclose(f);
    }
    assert_true(found > 30);
}

/* A strict reading of the text format: each sample line is
 * name{labels} value, each family announced by HELP and TYPE first. */
static void test_render_is_prometheus_text(void **state)
{
    apr_pool_t *p = *state;
    mcp_metrics_gauges_t g = {1, 7, 1024};
    char *text, *line, *save = NULL;
    const char *family = NULL;
    int samples = 0;

    mcp_metric_request(MCP_OUTCOME_INVALID_TOKEN, MCP_R_EXPIRED);
    mcp_metric_add(MCP_M_JWKS_FETCH_OK, 1);
    mcp_metric_observe(MCP_CALL_DOCUMENT, 30000);  /* 0.03 s */
    mcp_metric_observe(MCP_CALL_DOCUMENT, 700000); /* 0.7 s */
    mcp_metric_observe(MCP_CALL_DOCUMENT, apr_time_from_sec(60));
    text = mcp_metrics_render(p, &g);
    assert_non_null(strstr(text, "mcp_auth_requests_total{outcome=\"invalid_token\",reason=\"expired\"} "));
    assert_non_null(strstr(text, "mcp_auth_requests_total{outcome=\"accepted\",reason=\"none\"} "));
    assert_non_null(strstr(text, "mcp_auth_idp_fetches_total{kind=\"jwks\",result=\"ok\"} 1\n"));
    assert_non_null(strstr(text, "mcp_auth_cache_hits_total{level=\"l1\"} "));
    assert_non_null(strstr(text, "mcp_auth_cache_entries 7\n"));
    assert_non_null(strstr(text, "mcp_auth_cache_capacity 1024\n"));
    assert_non_null(strstr(text, "# TYPE mcp_auth_outbound_request_duration_seconds histogram\n"));
    /* cumulative: 0.03 s is under 0.05, 0.7 s under 1, 60 s only in +Inf */
    assert_non_null(
        strstr(text, "mcp_auth_outbound_request_duration_seconds_bucket{kind=\"document\",le=\"0.025\"} 0\n"));
    assert_non_null(
        strstr(text, "mcp_auth_outbound_request_duration_seconds_bucket{kind=\"document\",le=\"0.05\"} 1\n"));
    assert_non_null(strstr(text, "mcp_auth_outbound_request_duration_seconds_bucket{kind=\"document\",le=\"1\"} 2\n"));
    assert_non_null(strstr(text, "mcp_auth_outbound_request_duration_seconds_bucket{kind=\"document\",le=\"10\"} 2\n"));
    assert_non_null(
        strstr(text, "mcp_auth_outbound_request_duration_seconds_bucket{kind=\"document\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(text, "mcp_auth_outbound_request_duration_seconds_sum{kind=\"document\"} 60.730000\n"));
    assert_non_null(strstr(text, "mcp_auth_outbound_request_duration_seconds_count{kind=\"document\"} 3\n"));
    assert_true(text[strlen(text) - 1] == '\n');

    for (line = apr_strtok(text, "\n", &save); line; line = apr_strtok(NULL, "\n", &save)) {
        if (strncmp(line, "# HELP ", 7) == 0) {
            family = apr_pstrndup(p, line + 7, strcspn(line + 7, " "));
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_non_null(family);
            assert_true(strncmp(line + 7, family, strlen(family)) == 0);
            continue;
        }
        /* a sample of the family announced last */
        assert_non_null(family);
        assert_true(strncmp(line, family, strlen(family)) == 0);
        assert_true(strspn(line, "abcdefghijklmnopqrstuvwxyz_{}=\",.+0123456789 InfABCDEFGHIJKLMNOPQRSTUVWXYZ") ==
                    strlen(line));
        samples++;
    }
    assert_true(samples > 30);
}

static void test_status_lines(void **state)
{
    apr_pool_t *p = *state;
    mcp_metrics_gauges_t g = {1, 3, 16};
    char *text = mcp_metrics_render_status(p, &g, 0), *html;
    assert_non_null(strstr(text, "MCPAuthRequests_accepted: "));
    assert_non_null(strstr(text, "MCPAuthCacheHitsL1: "));
    assert_non_null(strstr(text, "MCPAuthCacheEntries: 3\n"));
    assert_null(strchr(text, '<'));
    html = mcp_metrics_render_status(p, &g, 1);
    assert_non_null(strstr(html, "<table"));
    assert_non_null(strstr(html, "<tr><td>MCPAuthCacheEntries</td><td>3</td></tr>"));
}

/* What mod_log_config leaves of a value (its ap_escape_logitem) parses as a
 * JSON string, and percent-decoding gives the value back. */
static void test_audit_value_is_json_safe(void **state)
{
    apr_pool_t *p = *state;
    const char *clean = "alice@example.com read write:notes";
    (void)p;
    assert_ptr_equal(mcp_audit_value(p, clean, NULL), clean); /* nothing to do: no copy */
    assert_string_equal(mcp_audit_value(p, "a\"b\\c", NULL), "a\"b\\c");
    assert_string_equal(mcp_audit_value(p, "x\ny\x01z%", NULL), "x%0Ay%01z%25");
    assert_string_equal(mcp_audit_value(p, "J\xc3\xbcrgen\x7f", NULL), "J%C3%BCrgen%7F");
    assert_string_equal(mcp_audit_value(p, "a,b c", ","), "a%2Cb c");
    assert_null(mcp_audit_value(p, NULL, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_counter_adds_up),
        TU_TEST(test_out_of_range_id_is_ignored),
        TU_TEST(test_attached_block_is_shared_and_kept),
        TU_TEST(test_reason_mapping),
        TU_TEST(test_every_fail_reason_in_the_sources_is_mapped),
        TU_TEST(test_render_is_prometheus_text),
        TU_TEST(test_status_lines),
        TU_TEST(test_audit_value_is_json_safe),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
