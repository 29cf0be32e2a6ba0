/* discovery.c: the discovery URLs of an issuer (OIDC, then RFC 8414). */
#include "test_util.h"

#include "discovery.h"

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
    };
    tu_global_init();
    return cmocka_run_group_tests_name("discovery", tests, NULL, NULL);
}
