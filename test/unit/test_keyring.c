/* SPDX-License-Identifier: Apache-2.0 */
/* keyring.c: keys from a jwks_file and their rotation, a refresh within
 * the cooldown served by another process's fetch, a missing source, and a
 * store without its lock (one fetch per cooldown). */
#include "test_util.h"

#include <apr_file_io.h>

#include "keyring.h"
#include "shm_cache.h"

#include "store_util.h"

static void write_jwks(apr_pool_t *p, const char *path, const EVP_PKEY *pk, const char *kid)
{
    json_t *doc = json_pack("{s:[o]}", "keys", mcp_jwk_public(pk, kid, MCP_ALG_ES256));
    assert_int_equal(json_dump_file(doc, path, 0), 0);
    json_decref(doc);
    (void)p;
}

static void keyring_file_source_and_rotation(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    static mcp_fetch_settings_t s;
    const char *path = tu_fmt(p, "/tmp/mcp-unit-jwks-%d.json", (int)getpid());
    EVP_PKEY *k1 = tu_own_pkey(p, tu_keygen(MCP_ALG_ES256, 0)), *k2 = tu_own_pkey(p, tu_keygen(MCP_ALG_ES256, 0));
    mcp_keyring_t *kr;
    mcp_keyset_t *ks;
    mcp_fail_t fail;
    uint64_t g1;

    s.ttl = SEC(3600);
    s.cooldown = 0; /* every forced refresh may fetch */
    s.max_stale = SEC(3600);
    s.http.max_size = 65536;
    write_jwks(p, path, k1, "one");
    kr = mcp_keyring_create(p, "https://idp", NULL, path, &s);
    mcp_keyring_attach(kr, mcp_store_create_local(p, 0, 0, 2, MCP_DOC_HEADER + 65536), 0, 1);
    assert_int_equal(mcp_keyring_acquire(kr, 0, p, NULL, &ks, &fail), 0);
    assert_int_equal(mcp_keyset_jwks(ks)->nkeys, 1);
    assert_string_equal(mcp_keyset_jwks(ks)->keys[0]->kid, "one");
    g1 = mcp_keyset_generation(ks);
    mcp_keyring_release(kr, ks);

    write_jwks(p, path, k2, "two");
    /* Not due and not forced: the parsed keys stay as they were. */
    assert_int_equal(mcp_keyring_acquire(kr, 0, p, NULL, &ks, &fail), 0);
    assert_string_equal(mcp_keyset_jwks(ks)->keys[0]->kid, "one");
    mcp_keyring_release(kr, ks);
    /* An unknown kid forces the refetch: new generation, new keys. */
    apr_sleep(1000); /* attempts are timestamped; keep them apart */
    assert_int_equal(mcp_keyring_acquire(kr, 1, p, NULL, &ks, &fail), 0);
    assert_string_equal(mcp_keyset_jwks(ks)->keys[0]->kid, "two");
    assert_true(mcp_keyset_generation(ks) != g1);
    mcp_keyring_release(kr, ks);

    /* A broken file never replaces good keys. */
    {
        FILE *f = fopen(path, "w");
        fputs("{\"keys\":[]}", f);
        fclose(f);
    }
    apr_sleep(1000);
    assert_int_equal(mcp_keyring_acquire(kr, 1, p, NULL, &ks, &fail), 0);
    assert_string_equal(mcp_keyset_jwks(ks)->keys[0]->kid, "two");
    mcp_keyring_release(kr, ks);
    apr_file_remove(path, p);
}

/* Two processes (two keyrings on one store): A's unknown-kid refetch falls
 * inside the cooldown because B just refetched; A must use B's new keys. */
static void keyring_refresh_in_cooldown_uses_keys_fetched_by_another(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    static mcp_fetch_settings_t sa, sb;
    const char *path = tu_fmt(p, "/tmp/mcp-unit-jwks-cool-%d.json", (int)getpid());
    EVP_PKEY *k1 = tu_own_pkey(p, tu_keygen(MCP_ALG_ES256, 0)), *k2 = tu_own_pkey(p, tu_keygen(MCP_ALG_ES256, 0));
    mcp_store_t *st = mcp_store_create_local(p, 0, 0, 2, MCP_DOC_HEADER + 65536);
    mcp_keyring_t *a, *b;
    mcp_keyset_t *ks;
    mcp_fail_t fail;

    sa.ttl = SEC(3600);
    sa.cooldown = SEC(3600);
    sa.max_stale = SEC(3600);
    sa.http.max_size = 65536;
    sa.http.timeout_s = 5;
    sb = sa;
    sb.cooldown = 0; /* B's refetch is the one the cooldown allows */
    write_jwks(p, path, k1, "one");
    a = mcp_keyring_create(p, "https://idp", NULL, path, &sa);
    b = mcp_keyring_create(p, "https://idp", NULL, path, &sb);
    mcp_keyring_attach(a, st, 0, 1);
    mcp_keyring_attach(b, st, 0, 1);
    assert_int_equal(mcp_keyring_acquire(a, 0, p, NULL, &ks, &fail), 0);
    assert_string_equal(mcp_keyset_jwks(ks)->keys[0]->kid, "one");
    mcp_keyring_release(a, ks);

    write_jwks(p, path, k2, "two");
    apr_sleep(1000);
    assert_int_equal(mcp_keyring_acquire(b, 1, p, NULL, &ks, &fail), 0);
    assert_string_equal(mcp_keyset_jwks(ks)->keys[0]->kid, "two");
    mcp_keyring_release(b, ks);
    /* A's forced refresh is suppressed (cooldown), yet it sees "two". */
    assert_int_equal(mcp_keyring_acquire(a, 1, p, NULL, &ks, &fail), 0);
    assert_string_equal(mcp_keyset_jwks(ks)->keys[0]->kid, "two");
    mcp_keyring_release(a, ks);
    mcp_keyring_forget(a);
    mcp_keyring_forget(b);
    apr_file_remove(path, p);
}

static void keyring_missing_source_is_unavailable(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    static mcp_fetch_settings_t s;
    mcp_keyring_t *kr;
    mcp_keyset_t *ks;
    mcp_fail_t fail;

    s.ttl = SEC(3600);
    s.cooldown = SEC(30);
    s.http.max_size = 65536;
    kr = mcp_keyring_create(p, "https://idp", NULL, "/nonexistent/jwks.json", &s);
    mcp_keyring_attach(kr, mcp_store_create_local(p, 0, 0, 2, MCP_DOC_HEADER + 65536), 0, 1);
    assert_int_equal(mcp_keyring_acquire(kr, 0, p, NULL, &ks, &fail), -1);
    assert_int_equal(fail.kind, MCP_FAIL_UNAVAILABLE);
    assert_string_equal(fail.reason, "JWKS fetch failed");
    assert_true(tu_contains(fail.detail, "/nonexistent/jwks.json"));
}

/* A store whose lock always fails (its generation was retired, or the
 * mutex is broken). */
static int failing_lock(void *ctx)
{
    (void)ctx;
    return -1;
}

static void no_unlock(void *ctx)
{
    (void)ctx;
}

static void keyring_without_lock_fetches_once_per_cooldown(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    static mcp_fetch_settings_t s, s0;
    const char *path = tu_fmt(p, "/tmp/mcp-unit-jwks-nolock-%d.json", (int)getpid());
    EVP_PKEY *k = tu_own_pkey(p, tu_keygen(MCP_ALG_ES256, 0));
    mcp_store_lock_t broken = {failing_lock, no_unlock, NULL, NULL};
    void **docs = apr_pcalloc(p, 3 * sizeof(void *));
    mcp_store_t *st;
    mcp_keyring_t *kr, *kr0;
    mcp_keyset_t *ks;
    mcp_fail_t fail;

    docs[0] = apr_pcalloc(p, MCP_DOC_HEADER + 65536);
    docs[1] = apr_pcalloc(p, MCP_DOC_HEADER + 65536);
    st = mcp_store_create(p, NULL, 0, 0, docs, 2, MCP_DOC_HEADER + 65536, broken);
    s.ttl = SEC(3600);
    s.cooldown = SEC(30);
    s.http.max_size = 65536;
    s0 = s;
    s0.cooldown = 0;
    unlink(path);
    kr = mcp_keyring_create(p, "https://idp", NULL, path, &s);
    kr0 = mcp_keyring_create(p, "https://idp", NULL, path, &s0);
    mcp_keyring_attach(kr, st, 0, 1);
    mcp_keyring_attach(kr0, st, 0, 1);
    /* The source fails: one attempt. */
    assert_int_equal(mcp_keyring_acquire(kr, 0, p, NULL, &ks, &fail), -1);
    assert_int_equal(mcp_keyring_acquire(kr0, 0, p, NULL, &ks, &fail), -1);
    /* It is back, but this process attempted within the cooldown: no new
     * attempt for every request while the shared store is unusable. */
    write_jwks(p, path, k, "one");
    assert_int_equal(mcp_keyring_acquire(kr, 0, p, NULL, &ks, &fail), -1);
    assert_int_equal(fail.kind, MCP_FAIL_UNAVAILABLE);
    assert_true(tu_contains(fail.detail, "MCPAuthJWKSRefreshCooldown"));
    /* The neighbour: without a cooldown the keys are fetched and kept. */
    assert_int_equal(mcp_keyring_acquire(kr0, 0, p, NULL, &ks, &fail), 0);
    assert_int_equal(mcp_keyset_jwks(ks)->nkeys, 1);
    mcp_keyring_release(kr0, ks);
    unlink(path);
    assert_int_equal(mcp_keyring_acquire(kr0, 0, p, NULL, &ks, &fail), 0);
    mcp_keyring_release(kr0, ks);
    mcp_keyring_forget(kr0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(keyring_file_source_and_rotation),
        TU_TEST(keyring_refresh_in_cooldown_uses_keys_fetched_by_another),
        TU_TEST(keyring_missing_source_is_unavailable),
        TU_TEST(keyring_without_lock_fetches_once_per_cooldown),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("keyring", tests, NULL, NULL);
}
