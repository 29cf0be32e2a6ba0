/* SPDX-License-Identifier: Apache-2.0 */
/* discovery.c: the discovery URLs of an issuer (OIDC, then RFC 8414), and
 * the members read from the shared copy of the discovery document -- an
 * https issuer's document never sends us to clear text (SPEC 7). The
 * documents are put into the store as another process's fetch would, so
 * no network is needed. */
#include "test_util.h"

#include "discovery.h"
#include "shm_cache.h"
#include "store_util.h"

typedef struct {
    const char *file, *msg;
    int calls;
} seen_t;

static void remember(void *ctx, const char *file, int line, int level, const char *msg)
{
    seen_t *s = ctx;
    s->file = file;
    s->msg = msg;
    s->calls++;
}

/* A keyring of issuer whose discovery document is doc, fetched just now. */
static mcp_keyring_t *discovered_ring(apr_pool_t *p, const char *issuer, const char *doc)
{
    mcp_fetch_settings_t *s = apr_pcalloc(p, sizeof(*s));
    mcp_doc_policy_t pol = {SEC(3600), SEC(30), SEC(10)};
    const unsigned char *jwks_key, *disc_key;
    mcp_store_t *st = mcp_store_create_local(p, 0, 0, 2, MCP_DOC_HEADER + 4096);
    mcp_keyring_t *kr;
    mcp_doc_meta_t m;
    apr_time_t now = apr_time_now();

    s->ttl = SEC(3600);
    s->cooldown = SEC(30);
    s->max_stale = SEC(3600);
    s->http.timeout_s = 1;
    s->http.max_size = 4096;
    kr = mcp_keyring_create(p, issuer, NULL, NULL, s);
    mcp_keyring_attach(kr, st, 0, 1);
    mcp_keyring_doc_keys(kr, &jwks_key, &disc_key);
    assert_int_equal(mcp_store_doc_begin(st, 1, disc_key, now, &pol, 0, &m), MCP_DOC_FETCH);
    assert_int_equal(mcp_store_doc_finish(st, 1, disc_key, now, doc, strlen(doc)), 0);
    return kr;
}

static void https_issuer_refuses_clear_text_endpoints(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    seen_t seen = {0};
    mcp_log_t log = {remember, &seen};
    mcp_keyring_t *kr = discovered_ring(p, "https://idp.example",
                                        "{\"issuer\":\"https://idp.example\",\"jwks_uri\":\"http://idp.example/jwks\","
                                        "\"introspection_endpoint\":\"HTTP://idp.example/introspect\","
                                        "\"token_endpoint\":\"http://idp.example/token\"}");

    assert_null(mcp_keyring_discovered(kr, p, &log, "jwks_uri"));
    assert_int_equal(seen.calls, 1);
    assert_true(tu_contains(seen.msg, "Discovery failed: insecure jwks_uri"));
    /* The line names discovery.c, where it was written (ErrorLogFormat %F). */
    assert_true(tu_contains(seen.file, "discovery.c"));
    assert_null(mcp_keyring_discovered(kr, p, &log, "introspection_endpoint"));
    assert_int_equal(seen.calls, 2);
    /* Only the members we would call are checked; others pass as they are. */
    assert_string_equal(mcp_keyring_discovered(kr, p, &log, "token_endpoint"), "http://idp.example/token");
    assert_null(mcp_keyring_discovered(kr, p, &log, "absent_member"));
    assert_int_equal(seen.calls, 2);
}

static void https_endpoints_and_http_issuers_pass(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    seen_t seen = {0};
    mcp_log_t log = {remember, &seen};
    mcp_keyring_t *tls = discovered_ring(
        p, "https://idp.example", "{\"issuer\":\"https://idp.example\",\"jwks_uri\":\"https://idp.example/jwks\"}");
    mcp_keyring_t *clear =
        discovered_ring(p, "http://idp.test", "{\"issuer\":\"http://idp.test\",\"jwks_uri\":\"http://idp.test/jwks\"}");

    assert_string_equal(mcp_keyring_discovered(tls, p, &log, "jwks_uri"), "https://idp.example/jwks");
    /* A clear-text issuer was configured so: nothing to downgrade. */
    assert_string_equal(mcp_keyring_discovered(clear, p, &log, "jwks_uri"), "http://idp.test/jwks");
    assert_int_equal(seen.calls, 0);
}

static void no_issuer_no_discovery(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_fetch_settings_t s = {SEC(60), SEC(30), SEC(60), {1, 1, NULL, 4096}};
    mcp_keyring_t *kr = mcp_keyring_create(p, NULL, "https://idp.example/jwks", NULL, &s);
    assert_null(mcp_keyring_discovered(kr, p, NULL, "jwks_uri"));
}

static void discovery_urls(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *oidc, *rfc;
    mcp_discovery_urls(p, "https://a.example", &oidc, &rfc);
    assert_string_equal(oidc, "https://a.example/.well-known/openid-configuration");
    assert_string_equal(rfc, "https://a.example/.well-known/oauth-authorization-server");
    mcp_discovery_urls(p, "https://a.example/", &oidc, &rfc);
    assert_string_equal(oidc, "https://a.example/.well-known/openid-configuration");
    assert_string_equal(rfc, "https://a.example/.well-known/oauth-authorization-server");
    mcp_discovery_urls(p, "https://a.example/tenant/v2/", &oidc, &rfc);
    assert_string_equal(oidc, "https://a.example/tenant/v2/.well-known/openid-configuration");
    assert_string_equal(rfc, "https://a.example/.well-known/oauth-authorization-server/tenant/v2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(discovery_urls),
        TU_TEST(https_issuer_refuses_clear_text_endpoints),
        TU_TEST(https_endpoints_and_http_issuers_pass),
        TU_TEST(no_issuer_no_discovery),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("discovery", tests, NULL, NULL);
}
