/* SPDX-License-Identifier: Apache-2.0 */
/* The per-endpoint failure table (idp_health.c) and the bounds of an
 * outbound call (http_fetch.c): backoff doubling and ceiling, one probe
 * after a backoff, concurrent failures counted once, reset on an answer;
 * a call ends by the request's deadline, is refused beyond the process's
 * cap or during a backoff, and gives up when the process stops. */
#include "test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <curl/curl.h>

#include "http_fetch.h"
#include "idp_health.h"
#include "stopping.h"

#define SEC(n) apr_time_from_sec(n)
#define URL "https://idp.example/introspect"

static void unknown_endpoint_is_admitted(void **state)
{
    mcp_idp_health_t *h = mcp_idp_health_create(TU_POOL(state));
    apr_interval_time_t wait;
    assert_non_null(h);
    assert_int_equal(mcp_idp_health_admit(h, URL, SEC(100), SEC(3), &wait), 0);
    assert_int_equal(mcp_idp_health_admit(NULL, URL, SEC(100), SEC(3), &wait), 0);
}

static void failure_refuses_for_the_backoff(void **state)
{
    mcp_idp_health_t *h = mcp_idp_health_create(TU_POOL(state));
    apr_interval_time_t wait;
    apr_time_t t = SEC(1000);

    assert_true(mcp_idp_health_failed(h, URL, t - SEC(3), t) == SEC(1));
    assert_int_equal(mcp_idp_health_admit(h, URL, t + apr_time_from_msec(200), SEC(3), &wait), -1);
    assert_true(wait == apr_time_from_msec(800));
    /* The query (GET-mode introspection carries the token there) is not
     * part of the endpoint. */
    assert_int_equal(mcp_idp_health_admit(h, URL "?token=x", t, SEC(3), &wait), -1);
    /* Another endpoint is not affected. */
    assert_int_equal(mcp_idp_health_admit(h, "https://idp.example/jwks", t, SEC(3), &wait), 0);
}

static void backoff_doubles_up_to_ten_seconds(void **state)
{
    mcp_idp_health_t *h = mcp_idp_health_create(TU_POOL(state));
    apr_interval_time_t expect[] = {SEC(1), SEC(2), SEC(4), SEC(8), SEC(10), SEC(10)};
    apr_time_t t = SEC(1000);
    size_t i;

    for (i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        /* each failure is a probe that started after the previous one */
        assert_true(mcp_idp_health_failed(h, URL, t, t + SEC(3)) == expect[i]);
        t += SEC(3) + expect[i];
    }
}

static void failures_of_calls_already_under_way_count_once(void **state)
{
    mcp_idp_health_t *h = mcp_idp_health_create(TU_POOL(state));
    apr_time_t t = SEC(1000);
    int i;
    /* 20 hung calls, all started before the first of them timed out */
    for (i = 0; i < 20; i++)
        assert_true(mcp_idp_health_failed(h, URL, t - SEC(3), t + i) == SEC(1));
}

static void one_probe_after_the_backoff(void **state)
{
    mcp_idp_health_t *h = mcp_idp_health_create(TU_POOL(state));
    apr_interval_time_t wait;
    apr_time_t t = SEC(1000);

    mcp_idp_health_failed(h, URL, t - SEC(3), t);
    t += SEC(1);
    assert_int_equal(mcp_idp_health_admit(h, URL, t, SEC(4), &wait), 0); /* the probe */
    assert_int_equal(mcp_idp_health_admit(h, URL, t + 1, SEC(4), &wait), -1);
    assert_true(wait == SEC(4) - 1);
    /* the probe fails: twice the backoff */
    assert_true(mcp_idp_health_failed(h, URL, t, t + SEC(3)) == SEC(2));
    assert_int_equal(mcp_idp_health_admit(h, URL, t + SEC(4), SEC(4), &wait), -1);
    /* the next probe gets an answer: no backoff any more */
    assert_int_equal(mcp_idp_health_admit(h, URL, t + SEC(5), SEC(4), &wait), 0);
    mcp_idp_health_ok(h, URL);
    assert_int_equal(mcp_idp_health_admit(h, URL, t + SEC(5), SEC(4), &wait), 0);
    assert_int_equal(mcp_idp_health_admit(h, URL, t + SEC(5), SEC(4), &wait), 0);
    assert_true(mcp_idp_health_failed(h, URL, t + SEC(5), t + SEC(6)) == SEC(1));
}

static void many_endpoints_never_break_it(void **state)
{
    mcp_idp_health_t *h = mcp_idp_health_create(TU_POOL(state));
    apr_interval_time_t wait;
    apr_time_t t = SEC(1000);
    int i;
    /* more failing endpoints than slots: the extra ones get no backoff */
    for (i = 0; i < 200; i++)
        mcp_idp_health_failed(h, apr_psprintf(TU_POOL(state), "https://idp%d.example/", i), t, t);
    assert_int_equal(mcp_idp_health_admit(h, "https://idp0.example/", t, SEC(4), &wait), -1);
    assert_int_equal(mcp_idp_health_admit(h, "https://idp199.example/", t, SEC(4), &wait), 0);
    /* a minute later the stale entries make room */
    assert_true(mcp_idp_health_failed(h, URL, t + SEC(70), t + SEC(70)) == SEC(1));
    assert_int_equal(mcp_idp_health_admit(h, URL, t + SEC(70), SEC(4), &wait), -1);
}

static void server_wide_places_per_endpoint(void **state)
{
    mcp_idp_health_t *h = mcp_idp_health_create(TU_POOL(state));
    mcp_idp_lease_t l[4], extra, other;
    apr_time_t t = SEC(1000);
    int i;

    for (i = 0; i < 3; i++)
        assert_int_equal(mcp_idp_health_enter(h, URL, 3, t, SEC(4), &l[i]), 0);
    /* full for this endpoint, not for another */
    assert_int_equal(mcp_idp_health_enter(h, URL, 3, t, SEC(4), &extra), -1);
    assert_int_equal(mcp_idp_health_enter(h, "https://idp.example/jwks", 3, t, SEC(4), &other), 0);
    /* a call that ends gives its place back */
    mcp_idp_health_leave(h, &l[1]);
    assert_int_equal(mcp_idp_health_enter(h, URL, 3, t + 1, SEC(4), &l[1]), 0);
    assert_int_equal(mcp_idp_health_enter(h, URL, 3, t + 1, SEC(4), &extra), -1);
    /* places of calls older than stale_after (a process died in them) are
     * taken over; their late leave does not free the new owner's place */
    assert_int_equal(mcp_idp_health_enter(h, URL, 3, t + SEC(5), SEC(4), &l[3]), 0);
    mcp_idp_health_leave(h, &l[0]);
    mcp_idp_health_leave(h, &l[2]);
    assert_int_equal(mcp_idp_health_enter(h, URL, 3, t + SEC(5), SEC(4), &extra), 0);
    assert_int_equal(mcp_idp_health_enter(h, URL, 3, t + SEC(5), SEC(4), &extra), 0);
    assert_int_equal(mcp_idp_health_enter(h, URL, 3, t + SEC(5), SEC(4), &extra), -1);
    /* no table: nothing is bounded */
    assert_int_equal(mcp_idp_health_enter(NULL, URL, 3, t, SEC(4), &extra), 0);
    assert_int_equal(extra.index, -1);
}

/* ---- calls against a server that accepts and never answers -------------- */

static void last_start_tells_whether_places_change_hands(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_idp_health_t *h = mcp_idp_health_create(p);
    mcp_idp_lease_t a, b;

    assert_int_equal(mcp_idp_health_last_start(h, URL, 4), 0);
    assert_int_equal(mcp_idp_health_enter(h, URL, 4, SEC(100), SEC(5), &a), 0);
    assert_int_equal(mcp_idp_health_enter(h, URL, 4, SEC(101), SEC(5), &b), 0);
    assert_true(mcp_idp_health_last_start(h, URL "?token=x", 4) == SEC(101));
    mcp_idp_health_leave(h, &b);
    assert_true(mcp_idp_health_last_start(h, URL, 4) == SEC(100));
    mcp_idp_health_leave(h, &a);
    assert_int_equal(mcp_idp_health_last_start(h, URL, 4), 0);
}

static int silent_port(int *fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    if (*fd < 0 || bind(*fd, (struct sockaddr *)&a, sizeof(a)) || listen(*fd, 64) ||
        getsockname(*fd, (struct sockaddr *)&a, &len))
        return -1;
    return ntohs(a.sin_port); /* the kernel completes connects; nobody reads */
}

static double since(apr_time_t t0)
{
    return (double)(apr_time_now() - t0) / APR_USEC_PER_SEC;
}

static const mcp_http_opts_t OPTS = {2, 1, NULL, 65536};

static void the_request_deadline_bounds_a_call(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_http_resp_t resp;
    const char *err = NULL;
    apr_time_t t0 = apr_time_now();
    int fd, port = silent_port(&fd);
    const char *url = apr_psprintf(p, "http://127.0.0.1:%d/x", port);

    assert_true(port > 0);
    mcp_http_scope_begin(t0 + apr_time_from_msec(300));
    assert_int_equal(mcp_http_get(p, url, &OPTS, &resp, &err), -1);
    assert_true(since(t0) < 1.0); /* MCPAuthHTTPTimeout is 2 s */
    /* nothing left: the next call is not made at all */
    t0 = apr_time_now();
    assert_int_equal(mcp_http_get(p, url, &OPTS, &resp, &err), -1);
    assert_non_null(strstr(err, "spent"));
    assert_true(since(t0) < 0.1);
    mcp_http_scope_end();
    close(fd);
}

typedef struct {
    apr_pool_t *p;
    const char *url;
    int rc;
} call_arg;

static void *hung_call(void *data)
{
    call_arg *a = data;
    mcp_http_resp_t resp;
    const char *err;
    a->rc = mcp_http_request(a->p, a->url, &OPTS, "token=x", NULL, &resp, &err);
    return NULL;
}

static void cap_and_backoff_refuse_at_once(void **state)
{
    apr_pool_t *p = TU_POOL(state), *child, *tp;
    mcp_idp_health_t *h = mcp_idp_health_create(p);
    mcp_http_resp_t resp;
    const char *err = NULL;
    int fd, port = silent_port(&fd);
    call_arg a;
    pthread_t th;
    apr_time_t t0;

    apr_pool_create(&child, p);
    apr_pool_create(&tp, p);
    mcp_http_child_init(child, 1, 8, h);
    a.p = tp;
    a.url = apr_psprintf(p, "http://127.0.0.1:%d/introspect", port);
    pthread_create(&th, NULL, hung_call, &a);
    apr_sleep(apr_time_from_msec(300));
    /* The one per-token call this process may make is under way. */
    mcp_http_scope_begin(0);
    t0 = apr_time_now();
    assert_int_equal(mcp_http_request(p, a.url, &OPTS, "token=y", NULL, &resp, &err), -1);
    assert_non_null(strstr(err, "under way"));
    /* Behind a call that hangs (no place changed hands for 100 ms): at
     * once, not after waiting for a place. */
    assert_true(since(t0) < 0.1);
    assert_int_equal(mcp_http_retry_after(), 1);
    mcp_http_scope_end();
    pthread_join(th, NULL);
    assert_int_equal(a.rc, -1);
    /* Its timeout started a backoff: the endpoint is not asked now. */
    mcp_http_scope_begin(0);
    t0 = apr_time_now();
    assert_int_equal(mcp_http_request(p, a.url, &OPTS, "token=z", NULL, &resp, &err), -1);
    assert_non_null(strstr(err, "paused"));
    assert_true(since(t0) < 0.1);
    assert_int_equal(mcp_http_retry_after(), 1);
    mcp_http_scope_end();
    apr_pool_destroy(child); /* frees the handles; later calls use their own */
    close(fd);
}

static void *stop_soon(void *data)
{
    (void)data;
    apr_sleep(apr_time_from_msec(300));
    mcp_stopping_set();
    return NULL;
}

/* Last: the stopping flag cannot be cleared. */
static void a_stop_ends_a_hung_call(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_http_resp_t resp;
    const char *err = NULL;
    mcp_http_opts_t slow = {30, 1, NULL, 65536};
    int fd, port = silent_port(&fd);
    pthread_t th;
    apr_time_t t0 = apr_time_now();

    pthread_create(&th, NULL, stop_soon, NULL);
    assert_int_equal(mcp_http_get(p, apr_psprintf(p, "http://127.0.0.1:%d/jwks", port), &slow, &resp, &err), -1);
    assert_true(since(t0) < 1.0);
    assert_non_null(strstr(err, "stopping"));
    pthread_join(th, NULL);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(unknown_endpoint_is_admitted),
        TU_TEST(failure_refuses_for_the_backoff),
        TU_TEST(backoff_doubles_up_to_ten_seconds),
        TU_TEST(failures_of_calls_already_under_way_count_once),
        TU_TEST(one_probe_after_the_backoff),
        TU_TEST(many_endpoints_never_break_it),
        TU_TEST(server_wide_places_per_endpoint),
        TU_TEST(last_start_tells_whether_places_change_hands),
        TU_TEST(the_request_deadline_bounds_a_call),
        TU_TEST(cap_and_backoff_refuse_at_once),
        TU_TEST(a_stop_ends_a_hung_call),
    };
    apr_initialize();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
