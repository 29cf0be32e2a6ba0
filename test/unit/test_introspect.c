/* SPDX-License-Identifier: Apache-2.0 */
/* RFC 7662 introspection: the strict check of an answer
 * (mcp_introspect_check), the failure of an unreachable endpoint, the
 * request the module sends (through a loopback HTTP server started inside
 * this binary on 127.0.0.1), and the cache with single-flight on a local
 * store. No other network is used. */
#include "test_util.h"

#include <apr_base64.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "introspect.h"
#include "shm_cache.h"
#include "stopping.h"
#include "verdict.h"

#define NOW 1700000000LL
#define DEAD_URL "http://127.0.0.1:1/introspect"
#define SECRET "s3cr3t-Value!"

/* ---- the policy of a location --------------------------------------------- */

static const mcp_trusted_issuer_t ISSUERS[] = {
    {.issuer = "https://a.example"},
    {.issuer = "https://b.example/tenant"},
};

static const char *const AUDS[] = {"https://rs.example/mcp"};

static const char *const REQ_SUB[] = {"sub"};

static void policy(mcp_verify_policy_t *pol)
{
    memset(pol, 0, sizeof(*pol));
    pol->issuers = ISSUERS;
    pol->n_issuers = 2;
    pol->max_token_size = 16384;
    pol->claims.audiences = AUDS;
    pol->claims.n_audiences = 1;
    pol->claims.skew = 30;
    pol->claims.now = NOW;
}

/* mcp_introspect_check of the JSON text; *reason: NULL on success. */
static int check(apr_pool_t *p, const mcp_verify_policy_t *pol, const char *json, int *idx, const char **reason)
{
    mcp_fail_t fail = {0};
    int rc;
    *idx = -99;
    rc = mcp_introspect_check(p, tu_json(p, json), pol, idx, &fail);
    *reason = rc ? fail.reason : NULL;
    if (rc)
        assert_int_equal(fail.kind, MCP_FAIL_INVALID_TOKEN);
    return rc;
}

#define ACCEPT(json, want_idx)                                                                                         \
    do {                                                                                                               \
        int idx_;                                                                                                      \
        const char *why_;                                                                                              \
        if (check(p, &pol, json, &idx_, &why_) != 0)                                                                   \
            fail_msg("%s refused: %s", json, why_);                                                                    \
        assert_int_equal(idx_, want_idx);                                                                              \
    } while (0)

#define REFUSE(json, want_reason)                                                                                      \
    do {                                                                                                               \
        int idx_;                                                                                                      \
        const char *why_;                                                                                              \
        if (check(p, &pol, json, &idx_, &why_) == 0)                                                                   \
            fail_msg("%s accepted, expected %s", json, want_reason);                                                   \
        assert_string_equal(why_, want_reason);                                                                        \
    } while (0)

static void check_active(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_verify_policy_t pol;
    policy(&pol);
    ACCEPT("{\"active\":true}", -1);
    REFUSE("{\"active\":false}", "Token inactive");
    REFUSE("{}", "Token inactive");
    REFUSE("{\"sub\":\"alice\",\"scope\":\"a b\"}", "Token inactive");
    REFUSE("{\"active\":\"true\"}", "Token inactive");
    REFUSE("{\"active\":1}", "Token inactive");
    REFUSE("{\"active\":null}", "Token inactive");
    REFUSE("{\"active\":[true]}", "Token inactive");
    /* inactive wins over everything else */
    REFUSE("{\"active\":false,\"iss\":\"https://evil.example\",\"exp\":1}", "Token inactive");
}

static void check_issuer(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_verify_policy_t pol;
    policy(&pol);
    ACCEPT("{\"active\":true,\"iss\":\"https://a.example\"}", 0);
    ACCEPT("{\"active\":true,\"iss\":\"https://b.example/tenant\"}", 1);
    ACCEPT("{\"active\":true,\"sub\":\"x\"}", -1); /* absent: not checked */
    REFUSE("{\"active\":true,\"iss\":\"https://evil.example\"}", "Invalid issuer");
    REFUSE("{\"active\":true,\"iss\":\"https://a.example/\"}", "Invalid issuer"); /* exact match */
    REFUSE("{\"active\":true,\"iss\":\"https://B.example/tenant\"}", "Invalid issuer");
    REFUSE("{\"active\":true,\"iss\":42}", "Invalid issuer");
    REFUSE("{\"active\":true,\"iss\":null}", "Invalid issuer");
    REFUSE("{\"active\":true,\"iss\":\"\"}", "Invalid issuer");
    /* no issuer configured: an answer naming one is refused */
    pol.n_issuers = 0;
    REFUSE("{\"active\":true,\"iss\":\"https://a.example\"}", "Invalid issuer");
    ACCEPT("{\"active\":true}", -1);
}

/* MCPAuthIssuer ... alias=: an introspection answer's iss may be the alias
 * (exactly), and picks the aliased issuer. */
static void check_issuer_alias(void **state)
{
    static const char *const aliases[] = {"a.example"};
    apr_pool_t *p = TU_POOL(state);
    mcp_verify_policy_t pol;
    mcp_trusted_issuer_t iss[2];
    policy(&pol);
    memcpy(iss, pol.issuers, sizeof(iss));
    REFUSE("{\"active\":true,\"iss\":\"a.example\"}", "Invalid issuer");
    iss[0].aliases = aliases;
    iss[0].n_aliases = 1;
    pol.issuers = iss;
    ACCEPT("{\"active\":true,\"iss\":\"a.example\"}", 0);
    ACCEPT("{\"active\":true,\"iss\":\"https://a.example\"}", 0);
    REFUSE("{\"active\":true,\"iss\":\"a.example/\"}", "Invalid issuer");
    REFUSE("{\"active\":true,\"iss\":\"A.example\"}", "Invalid issuer");
}

static void check_audience(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_verify_policy_t pol;
    policy(&pol);
    ACCEPT("{\"active\":true,\"aud\":\"https://rs.example/mcp\"}", -1);
    ACCEPT("{\"active\":true,\"aud\":[\"https://x.example\",\"https://rs.example/mcp\"]}", -1);
    ACCEPT("{\"active\":true,\"aud\":\"HTTPS://RS.EXAMPLE:443/mcp/\"}", -1); /* RFC 8707 canonical form */
    ACCEPT("{\"active\":true}", -1);                                         /* absent: not checked */
    REFUSE("{\"active\":true,\"aud\":\"https://rs.example/other\"}", "Invalid audience");
    REFUSE("{\"active\":true,\"aud\":[\"https://x.example\"]}", "Invalid audience");
    REFUSE("{\"active\":true,\"aud\":[]}", "Invalid audience");
    REFUSE("{\"active\":true,\"aud\":7}", "Invalid audience");
    /* the absent-aud rule does not leak into the caller's policy */
    assert_int_equal(pol.claims.n_audiences, 1);
    assert_int_equal(pol.claims.exp_optional, 0);
}

static void check_time_claims(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_verify_policy_t pol;
    policy(&pol);
    ACCEPT("{\"active\":true}", -1); /* no exp: fine for an introspection answer */
    ACCEPT(tu_fmt(p, "{\"active\":true,\"exp\":%lld}", NOW + 600), -1);
    ACCEPT(tu_fmt(p, "{\"active\":true,\"exp\":%lld}", NOW - 29), -1); /* inside the skew */
    REFUSE(tu_fmt(p, "{\"active\":true,\"exp\":%lld}", NOW - 30), "Token expired");
    REFUSE(tu_fmt(p, "{\"active\":true,\"exp\":%lld}", NOW - 3600), "Token expired");
    REFUSE("{\"active\":true,\"exp\":\"tomorrow\"}", "Malformed token");
    REFUSE(tu_fmt(p, "{\"active\":true,\"nbf\":%lld}", NOW + 600), "Token not yet valid");
    REFUSE(tu_fmt(p, "{\"active\":true,\"iat\":%lld}", NOW + 600), "Token issued in the future");
    pol.claims.skew = 0;
    REFUSE(tu_fmt(p, "{\"active\":true,\"exp\":%lld}", NOW), "Token expired");
    ACCEPT(tu_fmt(p, "{\"active\":true,\"exp\":%lld}", NOW + 1), -1);
}

static void check_required_claims(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_verify_policy_t pol;
    policy(&pol);
    pol.claims.required = REQ_SUB;
    pol.claims.n_required = 1;
    REFUSE("{\"active\":true,\"client_id\":\"c\"}", "Missing required claims");
    REFUSE("{\"active\":true,\"sub\":null}", "Missing required claims");
    ACCEPT("{\"active\":true,\"sub\":\"alice\"}", -1);
}

/* ---- a loopback HTTP server --------------------------------------------- */

typedef struct {
    int fd, port;
    pthread_t thread;
    volatile int stop;
    pthread_mutex_t mu;
    int calls;
    char request[16384]; /* the last request, headers and body */
    /* the answer */
    int status;
    const char *ctype;
    const char *body;
    int delay_ms;
} lb_t;

static int lb_read_request(int c, char *buf, size_t cap)
{
    size_t n = 0;
    long want = -1;
    for (;;) {
        struct pollfd pf = {c, POLLIN, 0};
        ssize_t k;
        char *end;
        if (poll(&pf, 1, 5000) <= 0)
            return -1;
        k = recv(c, buf + n, cap - 1 - n, 0);
        if (k <= 0)
            return -1;
        n += (size_t)k;
        buf[n] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end && want < 0) {
            const char *cl = strcasestr(buf, "\r\ncontent-length:");
            want = (long)(end + 4 - buf) + (cl && cl < end ? atol(cl + 17) : 0);
        }
        if (want >= 0 && (long)n >= want)
            return 0;
        if (n >= cap - 1)
            return -1;
    }
}

static void *lb_loop(void *arg)
{
    lb_t *s = arg;
    char buf[sizeof(s->request)];
    while (!s->stop) {
        struct pollfd pf = {s->fd, POLLIN, 0};
        int c;
        if (poll(&pf, 1, 20) <= 0)
            continue;
        c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        if (lb_read_request(c, buf, sizeof(buf)) == 0) {
            char head[512];
            int status, delay;
            const char *ctype, *body;
            pthread_mutex_lock(&s->mu);
            s->calls++;
            snprintf(s->request, sizeof(s->request), "%s", buf);
            status = s->status;
            ctype = s->ctype;
            body = s->body;
            delay = s->delay_ms;
            pthread_mutex_unlock(&s->mu);
            if (delay)
                usleep((useconds_t)delay * 1000);
            snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                     ctype, strlen(body));
            if (send(c, head, strlen(head), MSG_NOSIGNAL) > 0)
                send(c, body, strlen(body), MSG_NOSIGNAL);
        }
        close(c);
    }
    return NULL;
}

static void lb_stop(lb_t *s);

static apr_status_t lb_cleanup(void *data)
{
    lb_stop(data);
    return APR_SUCCESS;
}

/* A server on 127.0.0.1:<any>, stopped at the latest when p is destroyed
 * (also when an assertion ends the test early). */
static lb_t *lb_start(apr_pool_t *p)
{
    lb_t *s = apr_pcalloc(p, sizeof(*s));
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int one = 1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 64), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    s->status = 200;
    s->ctype = "application/json";
    s->body = "{\"active\":false}";
    pthread_mutex_init(&s->mu, NULL);
    assert_int_equal(pthread_create(&s->thread, NULL, lb_loop, s), 0);
    apr_pool_cleanup_register(p, s, lb_cleanup, apr_pool_cleanup_null);
    return s;
}

/* Stops the server: its port then refuses connections (a dead URL). */
static void lb_stop(lb_t *s)
{
    if (s->stop)
        return;
    s->stop = 1;
    pthread_join(s->thread, NULL);
    close(s->fd);
}

static void lb_answer(lb_t *s, int status, const char *ctype, const char *body, int delay_ms)
{
    pthread_mutex_lock(&s->mu);
    s->status = status;
    s->ctype = ctype;
    s->body = body;
    s->delay_ms = delay_ms;
    pthread_mutex_unlock(&s->mu);
}

static int lb_calls(lb_t *s)
{
    int n;
    pthread_mutex_lock(&s->mu);
    n = s->calls;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static const char *lb_request(apr_pool_t *p, lb_t *s)
{
    const char *r;
    pthread_mutex_lock(&s->mu);
    r = apr_pstrdup(p, s->request);
    pthread_mutex_unlock(&s->mu);
    return r;
}

static const char *lb_url(apr_pool_t *p, lb_t *s, const char *path)
{
    return apr_psprintf(p, "http://127.0.0.1:%d%s", s->port, path);
}

/* ---- calling mcp_introspect ------------------------------------------------ */

static const mcp_http_opts_t HTTP = {2, 1, NULL, 65536};

static mcp_introspect_conf_t conf_basic(apr_interval_time_t cache)
{
    mcp_introspect_conf_t c;
    memset(&c, 0, sizeof(c));
    c.auth = MCP_AUTH_BASIC;
    c.client_id = "rs";
    c.client_secret = SECRET;
    c.param = "token";
    c.cache = cache;
    return c;
}

static int introspect_until(apr_pool_t *p, mcp_store_t *st, const mcp_introspect_conf_t *c, const char *url,
                            const char *token, json_t **result, apr_time_t *valid_until, mcp_fail_t *fail)
{
    *result = NULL;
    memset(fail, 0, sizeof(*fail));
    return mcp_introspect(p, st, NULL, c, NULL, url, &HTTP, token, strlen(token), NULL, result, valid_until, fail);
}

static int introspect(apr_pool_t *p, mcp_store_t *st, const mcp_introspect_conf_t *c, const char *url,
                      const char *token, json_t **result, mcp_fail_t *fail)
{
    apr_time_t until;
    return introspect_until(p, st, c, url, token, result, &until, fail);
}

static void assert_unavailable(const mcp_fail_t *fail, const char *url_in_detail, const char *token)
{
    assert_int_equal(fail->kind, MCP_FAIL_UNAVAILABLE);
    assert_string_equal(fail->reason, "Introspection failed");
    assert_non_null(fail->detail);
    if (!tu_contains(fail->detail, url_in_detail))
        fail_msg("detail %s does not name %s", fail->detail, url_in_detail);
    if (tu_contains(fail->detail, token) || tu_contains(fail->detail, SECRET))
        fail_msg("detail %s shows the token or the secret", fail->detail);
}

static const char *sub_of(const json_t *r)
{
    const char *s = mcp_json_str(r, "sub");
    return s ? s : "(none)";
}

static void dead_url_is_unavailable(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_introspect_conf_t c = conf_basic(0);
    const char *tok = "opaque-TOKEN-dead-1234567890";
    json_t *r;
    mcp_fail_t f;

    assert_int_equal(introspect(p, NULL, &c, DEAD_URL, tok, &r, &f), -1);
    assert_unavailable(&f, DEAD_URL, tok);
    /* client_secret_post: same */
    c.auth = MCP_AUTH_POST;
    assert_int_equal(introspect(p, NULL, &c, DEAD_URL, tok, &r, &f), -1);
    assert_unavailable(&f, DEAD_URL, tok);
}

static void dead_url_get_mode_hides_the_query(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_introspect_conf_t c = conf_basic(0);
    const char *tok = "opaque-TOKEN-get-0987654321";
    json_t *r;
    mcp_fail_t f;

    c.use_get = 1;
    c.auth = MCP_AUTH_NONE;
    c.client_id = NULL;
    c.client_secret = NULL;
    c.param = "access_token";
    assert_int_equal(introspect(p, NULL, &c, "http://127.0.0.1:1/tokeninfo?alt=json", tok, &r, &f), -1);
    assert_unavailable(&f, "http://127.0.0.1:1/tokeninfo", tok);
    assert_false(tu_contains(f.detail, "?"));
    assert_false(tu_contains(f.detail, "alt=json"));
    assert_false(tu_contains(f.detail, "access_token"));
}

static void dead_url_with_store_caches_nothing_and_does_not_block(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 64, 1024, 0, 0);
    mcp_introspect_conf_t c = conf_basic(apr_time_from_sec(300));
    const char *tok = "opaque-TOKEN-store-dead";
    json_t *r;
    mcp_fail_t f;
    apr_time_t t0;

    assert_int_equal(introspect(p, st, &c, DEAD_URL, tok, &r, &f), -1);
    assert_unavailable(&f, DEAD_URL, tok);
    /* The failed asker released its claim: the next caller asks at once
     * instead of waiting out the lease (2 * timeout + 1 s). */
    t0 = apr_time_now();
    assert_int_equal(introspect(p, st, &c, DEAD_URL, tok, &r, &f), -1);
    assert_unavailable(&f, DEAD_URL, tok);
    assert_true(apr_time_now() - t0 < apr_time_from_msec(1500));
}

/* ---- the request on the wire ---------------------------------------------- */

static char *b64(apr_pool_t *p, const char *s)
{
    char *out = apr_palloc(p, apr_base64_encode_len((int)strlen(s)));
    apr_base64_encode(out, s, (int)strlen(s));
    return out;
}

static void request_basic(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    lb_t *s = lb_start(p);
    mcp_introspect_conf_t c = conf_basic(0);
    const char *tok = "ab+c/d=", *req, *want20, *wantplus;
    json_t *r;
    mcp_fail_t f;

    c.client_id = "rs:1";
    c.client_secret = "p@ss w/rd+";
    lb_answer(s, 200, "application/json", "{\"active\":true,\"sub\":\"alice\"}", 0);
    assert_int_equal(introspect(p, NULL, &c, lb_url(p, s, "/introspect"), tok, &r, &f), 0);
    assert_true(json_is_true(json_object_get(r, "active")));
    assert_string_equal(sub_of(r), "alice");
    req = lb_request(p, s);
    assert_true(tu_contains(req, "POST /introspect HTTP/1.1\r\n"));
    assert_true(tu_contains(req, "\r\nContent-Type: application/x-www-form-urlencoded\r\n"));
    /* RFC 6749 2.3.1: form-encode id and secret, then base64("id:secret");
     * a space may be %20 or '+'. */
    want20 = apr_pstrcat(p, "\r\nAuthorization: Basic ", b64(p, "rs%3A1:p%40ss%20w%2Frd%2B"), "\r\n", NULL);
    wantplus = apr_pstrcat(p, "\r\nAuthorization: Basic ", b64(p, "rs%3A1:p%40ss+w%2Frd%2B"), "\r\n", NULL);
    if (!tu_contains(req, want20) && !tu_contains(req, wantplus))
        fail_msg("no RFC 6749 Basic header in:\n%s", req);
    /* the token's '+', '/' and '=' are escaped in the form */
    assert_true(tu_contains(req, "\r\n\r\ntoken=ab%2Bc%2Fd%3D&token_type_hint=access_token"));
    assert_int_equal(tu_count(req, "client_secret"), 0);
    lb_stop(s);
}

static void request_post_and_none(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    lb_t *s = lb_start(p);
    mcp_introspect_conf_t c = conf_basic(0);
    const char *req, *body;
    json_t *r;
    mcp_fail_t f;

    c.auth = MCP_AUTH_POST;
    c.client_id = "rs-post";
    c.client_secret = "post-S3cret!&=x";
    lb_answer(s, 200, "application/json", "{\"active\":true}", 0);
    assert_int_equal(introspect(p, NULL, &c, lb_url(p, s, "/i"), "tok1", &r, &f), 0);
    req = lb_request(p, s);
    body = strstr(req, "\r\n\r\n") + 4;
    assert_false(tu_contains(req, "\r\nAuthorization:"));
    assert_true(tu_contains(body, "token=tok1"));
    assert_true(tu_contains(body, "token_type_hint=access_token"));
    assert_true(tu_contains(body, "client_id=rs-post"));
    if (!tu_contains(body, "client_secret=post-S3cret%21%26%3Dx") &&
        !tu_contains(body, "client_secret=post-S3cret!%26%3Dx"))
        fail_msg("client_secret not form-encoded in %s", body);
    assert_int_equal(tu_count(body, "&"), 3); /* exactly four fields */

    c.auth = MCP_AUTH_NONE;
    c.client_id = NULL;
    c.client_secret = NULL;
    assert_int_equal(introspect(p, NULL, &c, lb_url(p, s, "/i"), "tok2", &r, &f), 0);
    req = lb_request(p, s);
    assert_false(tu_contains(req, "\r\nAuthorization:"));
    assert_string_equal(strstr(req, "\r\n\r\n") + 4, "token=tok2&token_type_hint=access_token");
    lb_stop(s);
}

static void request_get_mode(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    lb_t *s = lb_start(p);
    mcp_introspect_conf_t c = conf_basic(0);
    const char *req;
    json_t *r;
    mcp_fail_t f;

    c.use_get = 1;
    c.auth = MCP_AUTH_NONE;
    c.client_id = NULL;
    c.client_secret = NULL;
    c.param = "access_token";
    lb_answer(s, 200, "application/json", "{\"active\":true,\"sub\":\"g\"}", 0);
    assert_int_equal(introspect(p, NULL, &c, lb_url(p, s, "/tokeninfo?alt=json"), "ab+c", &r, &f), 0);
    req = lb_request(p, s);
    if (!tu_contains(req, "GET /tokeninfo?alt=json&access_token=ab%2Bc HTTP/1.1\r\n"))
        fail_msg("unexpected GET request:\n%s", req);
    assert_string_equal(strstr(req, "\r\n\r\n") + 4, "");
    assert_false(tu_contains(req, "Content-Type: application/x-www-form-urlencoded"));
    /* tokeninfo answers 400 for a token it does not know: inactive, not a failure */
    lb_answer(s, 400, "application/json", "{\"error\":\"invalid_token\"}", 0);
    assert_int_equal(introspect(p, NULL, &c, lb_url(p, s, "/tokeninfo"), "unknown", &r, &f), 0);
    assert_false(json_is_true(json_object_get(r, "active")));
    lb_stop(s);
}

static void endpoint_errors(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    lb_t *s = lb_start(p);
    mcp_introspect_conf_t c = conf_basic(0);
    const char *url = lb_url(p, s, "/introspect"), *tok = "opaque-errors-token";
    json_t *r;
    mcp_fail_t f;

    lb_answer(s, 500, "application/json", "{\"active\":true}", 0);
    assert_int_equal(introspect(p, NULL, &c, url, tok, &r, &f), -1);
    assert_unavailable(&f, url, tok);
    lb_answer(s, 200, "text/html", "<html>login</html>", 0);
    assert_int_equal(introspect(p, NULL, &c, url, tok, &r, &f), -1);
    assert_unavailable(&f, url, tok);
    lb_answer(s, 200, "application/json", "[{\"active\":true}]", 0);
    assert_int_equal(introspect(p, NULL, &c, url, tok, &r, &f), -1);
    assert_unavailable(&f, url, tok);
    lb_answer(s, 401, "application/json", "{\"error\":\"invalid_client\"}", 0);
    assert_int_equal(introspect(p, NULL, &c, url, tok, &r, &f), -1);
    assert_unavailable(&f, url, tok);
    assert_true(tu_contains(f.detail, "credentials"));
    lb_answer(s, 403, "text/plain", "forbidden", 0);
    assert_int_equal(introspect(p, NULL, &c, url, tok, &r, &f), -1);
    assert_unavailable(&f, url, tok);
    assert_true(tu_contains(f.detail, "credentials"));
    lb_answer(s, 400, "application/json", "{\"error\":\"invalid_client\"}", 0);
    assert_int_equal(introspect(p, NULL, &c, url, tok, &r, &f), -1);
    assert_unavailable(&f, url, tok);
    assert_true(tu_contains(f.detail, "invalid_client"));
    /* POST mode: any other 400 is a failure, not "inactive" */
    lb_answer(s, 400, "application/json", "{\"error\":\"invalid_request\"}", 0);
    assert_int_equal(introspect(p, NULL, &c, url, tok, &r, &f), -1);
    assert_unavailable(&f, url, tok);
    /* slow: the timeout (2 s) bounds the call */
    {
        apr_time_t t0 = apr_time_now();
        lb_answer(s, 200, "application/json", "{\"active\":true}", 3500);
        assert_int_equal(introspect(p, NULL, &c, url, tok, &r, &f), -1);
        assert_unavailable(&f, url, tok);
        assert_true(apr_time_now() - t0 < apr_time_from_msec(3000));
    }
    lb_stop(s);
}

/* ---- the cache -------------------------------------------------------------- */

static void cache_serves_second_call_without_network(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 64, 1024, 0, 0);
    lb_t *s = lb_start(p);
    mcp_introspect_conf_t c = conf_basic(apr_time_from_sec(300)), other = c, nocache = conf_basic(0);
    const char *url = lb_url(p, s, "/introspect"), *tok = "opaque-cached-token";
    json_t *r;
    mcp_fail_t f;

    lb_answer(s, 200, "application/json", "{\"active\":true,\"sub\":\"alice\",\"scope\":\"a b\"}", 0);
    assert_int_equal(introspect(p, st, &c, url, tok, &r, &f), 0);
    assert_string_equal(sub_of(r), "alice");
    assert_int_equal(introspect(p, st, &c, url, tok, &r, &f), 0);
    assert_int_equal(lb_calls(s), 1);
    /* The endpoint is gone: the same URL is now dead. */
    lb_stop(s);
    assert_int_equal(introspect(p, st, &c, url, tok, &r, &f), 0);
    assert_string_equal(sub_of(r), "alice");
    assert_string_equal(mcp_json_str(r, "scope"), "a b");
    /* ...and it really is dead: another token, another client_id, or
     * cache=0 must ask it and fail. */
    assert_int_equal(introspect(p, st, &c, url, "opaque-other-token", &r, &f), -1);
    assert_unavailable(&f, url, "opaque-other-token");
    other.client_id = "another-rs";
    assert_int_equal(introspect(p, st, &other, url, tok, &r, &f), -1);
    assert_unavailable(&f, url, tok);
    assert_int_equal(introspect(p, st, &nocache, url, tok, &r, &f), -1);
    assert_unavailable(&f, url, tok);
}

static void cache_keeps_inactive_answers(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 64, 1024, 0, 0);
    lb_t *s = lb_start(p);
    mcp_introspect_conf_t c = conf_basic(apr_time_from_sec(300));
    const char *url = lb_url(p, s, "/introspect"), *tok = "opaque-inactive-token";
    json_t *r;
    mcp_fail_t f;

    lb_answer(s, 200, "application/json", "{\"active\":false}", 0);
    assert_int_equal(introspect(p, st, &c, url, tok, &r, &f), 0);
    lb_stop(s);
    assert_int_equal(introspect(p, st, &c, url, tok, &r, &f), 0);
    assert_false(json_is_true(json_object_get(r, "active")));
}

static void cache_bounded_by_exp_and_cache_seconds(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 64, 1024, 0, 0);
    lb_t *s = lb_start(p);
    mcp_introspect_conf_t c = conf_basic(apr_time_from_sec(300)), one = conf_basic(apr_time_from_sec(1));
    const char *url = lb_url(p, s, "/introspect");
    long long now = (long long)apr_time_sec(apr_time_now());
    json_t *r;
    mcp_fail_t f;

    /* active but exp already past: never cached */
    lb_answer(s, 200, "application/json", tu_fmt(p, "{\"active\":true,\"exp\":%lld}", now - 5), 0);
    assert_int_equal(introspect(p, st, &c, url, "tok-exp-past", &r, &f), 0);
    /* cache=1: kept one second, the active and the inactive answer alike */
    lb_answer(s, 200, "application/json", "{\"active\":true,\"sub\":\"short\"}", 0);
    assert_int_equal(introspect(p, st, &one, url, "tok-short", &r, &f), 0);
    assert_int_equal(introspect(p, st, &one, url, "tok-short", &r, &f), 0);
    lb_answer(s, 200, "application/json", "{\"active\":false}", 0);
    assert_int_equal(introspect(p, st, &one, url, "tok-short-inactive", &r, &f), 0);
    assert_int_equal(introspect(p, st, &one, url, "tok-short-inactive", &r, &f), 0);
    assert_int_equal(lb_calls(s), 3);
    lb_stop(s);
    assert_int_equal(introspect(p, st, &c, url, "tok-exp-past", &r, &f), -1);
    assert_unavailable(&f, url, "tok-exp-past");
    apr_sleep(apr_time_from_msec(1200));
    assert_int_equal(introspect(p, st, &one, url, "tok-short", &r, &f), -1);
    assert_unavailable(&f, url, "tok-short");
    assert_int_equal(introspect(p, st, &one, url, "tok-short-inactive", &r, &f), -1);
    assert_unavailable(&f, url, "tok-short-inactive");
}

static void failures_are_not_cached(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 64, 1024, 0, 0);
    lb_t *s = lb_start(p);
    mcp_introspect_conf_t c = conf_basic(apr_time_from_sec(300));
    const char *url = lb_url(p, s, "/introspect"), *tok = "opaque-recovers";
    json_t *r;
    mcp_fail_t f;

    lb_answer(s, 503, "text/html", "<html>down</html>", 0);
    assert_int_equal(introspect(p, st, &c, url, tok, &r, &f), -1);
    lb_answer(s, 200, "application/json", "{\"active\":true,\"sub\":\"back\"}", 0);
    assert_int_equal(introspect(p, st, &c, url, tok, &r, &f), 0);
    assert_string_equal(sub_of(r), "back");
    assert_int_equal(lb_calls(s), 2);
    lb_stop(s);
}

/* Item 11: the answer says how long its shared entry lives (a per-process
 * copy must not outlive it), and learning that a token is inactive moves
 * the revocation epoch -- with or without a cache. */
static void shared_expiry_reported_and_inactive_moves_epoch(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 64, 1024, 0, 0);
    lb_t *s = lb_start(p);
    mcp_introspect_conf_t c = conf_basic(apr_time_from_sec(300)), nocache = conf_basic(0);
    const char *url = lb_url(p, s, "/introspect");
    long long exp = (long long)apr_time_sec(apr_time_now()) + 100;
    apr_time_t until, until2;
    uint64_t e0, e1, e2;
    json_t *r;
    mcp_fail_t f;

    assert_int_equal(mcp_store_epoch(st, &e0), 0);
    lb_answer(s, 200, "application/json", tu_fmt(p, "{\"active\":true,\"sub\":\"a\",\"exp\":%lld}", exp), 0);
    assert_int_equal(introspect_until(p, st, &c, url, "tok-until", &r, &until, &f), 0);
    assert_true(until == apr_time_from_sec(exp));
    /* From the cache: the same entry, the same expiry. */
    assert_int_equal(introspect_until(p, st, &c, url, "tok-until", &r, &until2, &f), 0);
    assert_true(until2 == until);
    assert_int_equal(lb_calls(s), 1);
    /* Not cached (cache=0): no expiry, so no copy may be kept. */
    assert_int_equal(introspect_until(p, st, &nocache, url, "tok-until", &r, &until, &f), 0);
    assert_true(until == 0);
    assert_int_equal(mcp_store_epoch(st, &e1), 0);
    assert_true(e1 == e0); /* active answers leave the epoch alone */
    lb_answer(s, 200, "application/json", "{\"active\":false}", 0);
    assert_int_equal(introspect_until(p, st, &nocache, url, "tok-revoked", &r, &until, &f), 0);
    assert_int_equal(mcp_store_epoch(st, &e2), 0);
    assert_true(e2 != e1);
    assert_int_equal(introspect_until(p, st, &c, url, "tok-revoked", &r, &until, &f), 0);
    assert_int_equal(mcp_store_epoch(st, &e1), 0);
    assert_true(e1 != e2);
    lb_stop(s);
}

static void extreme_time_values_in_answers(void **state)
{
    static const char *const values[] = {
        "-1e300",  "1e300", "-9.3e18", "9.3e18", "-1", "0", "1.7976931348623157e308", "-1.7976931348623157e308",
        "4.9e-324"};
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 64, 1024, 0, 0);
    lb_t *s = lb_start(p);
    mcp_introspect_conf_t c = conf_basic(apr_time_from_sec(300));
    const char *url = lb_url(p, s, "/introspect");
    mcp_verify_policy_t pol;
    apr_time_t until, before;
    size_t i;
    int idx, calls = 0;

    policy(&pol);
    pol.claims.now = (long long)apr_time_sec(apr_time_now());
    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        const char *v = values[i], *tok = tu_fmt(p, "tok-extreme-%d", (int)i);
        double d = strtod(v, NULL);
        int future = d > (double)pol.claims.now;
        json_t *r;
        mcp_fail_t f;
        mcp_verdict_t verdict;

        lb_answer(s, 200, "application/json",
                  tu_fmt(p, "{\"active\":true,\"sub\":\"x\",\"exp\":%s,\"iat\":%s,\"nbf\":%s}", v, v, v), 0);
        before = apr_time_now();
        assert_int_equal(introspect_until(p, st, &c, url, tok, &r, &until, &f), 0);
        calls++;
        /* An exp in the past is never cached; any other stays within cache=. */
        if (future)
            assert_true(until > before && until <= apr_time_now() + c.cache);
        else
            assert_true(until == 0);
        assert_int_equal(introspect_until(p, st, &c, url, tok, &r, &until, &f), 0);
        calls += future ? 0 : 1;
        assert_int_equal(lb_calls(s), calls);
        /* The check decides with the numbers as they are: expired is refused. */
        memset(&f, 0, sizeof(f));
        if (mcp_introspect_check(p, r, &pol, &idx, &f) == 0) {
            assert_true(future);
            assert_int_equal(mcp_verdict_from_claims(p, r, 0, MCP_ALG_UNKNOWN, NULL, NULL, &verdict), 0);
            (void)mcp_verdict_time_check(p, &verdict, pol.claims.now, pol.claims.skew, 1, &f);
            assert_true(mcp_time_cap(before + c.cache, verdict.exp) <= before + c.cache);
        }
    }
    lb_stop(s);
}

/* Several threads ask about one token at once: one call to the endpoint. */
typedef struct {
    apr_pool_t *pool;
    mcp_store_t *st;
    const mcp_introspect_conf_t *c;
    const char *url;
    int rc;
    const char *sub;
} flight_t;

static void *flight(void *arg)
{
    flight_t *t = arg;
    json_t *r = NULL;
    mcp_fail_t f;
    t->rc = introspect(t->pool, t->st, t->c, t->url, "opaque-single-flight", &r, &f);
    t->sub = t->rc == 0 ? apr_pstrdup(t->pool, sub_of(r)) : f.reason;
    return NULL;
}

static void single_flight_threads(void **state)
{
    enum { N = 8 };
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 64, 1024, 0, 0);
    lb_t *s = lb_start(p);
    mcp_introspect_conf_t c = conf_basic(apr_time_from_sec(300));
    flight_t t[N];
    pthread_t th[N];
    int i;

    lb_answer(s, 200, "application/json", "{\"active\":true,\"sub\":\"flier\"}", 400);
    for (i = 0; i < N; i++) {
        apr_allocator_t *a = NULL;
        assert_int_equal(apr_allocator_create(&a), APR_SUCCESS);
        assert_int_equal(apr_pool_create_ex(&t[i].pool, NULL, NULL, a), APR_SUCCESS);
        apr_allocator_owner_set(a, t[i].pool);
        t[i].st = st;
        t[i].c = &c;
        t[i].url = lb_url(p, s, "/introspect");
    }
    for (i = 0; i < N; i++)
        assert_int_equal(pthread_create(&th[i], NULL, flight, &t[i]), 0);
    for (i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (i = 0; i < N; i++) {
        if (t[i].rc != 0 || strcmp(t[i].sub, "flier") != 0)
            fail_msg("thread %d: rc %d (%s)", i, t[i].rc, t[i].sub);
        apr_pool_destroy(t[i].pool);
    }
    assert_int_equal(lb_calls(s), 1);
    lb_stop(s);
}

/* ---- issue 15 --------------------------------------------------------------- */

/* An active answer with n roles (about 24 bytes each). */
static const char *answer_with_roles(apr_pool_t *p, int n)
{
    char *roles = "";
    int i;
    for (i = 0; i < n; i++)
        roles = apr_psprintf(p, "%s%s\"role-%05d-abcdefgh\"", roles, i ? "," : "", i);
    return apr_psprintf(p, "{\"active\":true,\"sub\":\"kc\",\"realm_access\":{\"roles\":[%s]}}", roles);
}

/* Item 1: an answer larger than one entry (944 bytes here) is split over
 * several and read back whole; the next caller neither waits nor asks. */
static void large_answer_is_split_and_read_back(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 64, 1024, 0, 0);
    lb_t *s = lb_start(p);
    mcp_introspect_conf_t c = conf_basic(apr_time_from_sec(300));
    const char *url = lb_url(p, s, "/introspect"), *body = answer_with_roles(p, 200);
    apr_time_t until, until2, t0;
    json_t *r;
    mcp_fail_t f;

    assert_true(strlen(body) > 4 * mcp_store_entry_capacity(st));
    lb_answer(s, 200, "application/json", body, 0);
    assert_int_equal(introspect_until(p, st, &c, url, "tok-large", &r, &until, &f), 0);
    assert_true(until > 0);
    t0 = apr_time_now();
    assert_int_equal(introspect_until(p, st, &c, url, "tok-large", &r, &until2, &f), 0);
    assert_true(apr_time_now() - t0 < apr_time_from_msec(200));
    assert_true(until2 == until);
    assert_string_equal(mcp_json_compact(p, r), mcp_json_compact(p, tu_json(p, body)));
    assert_int_equal(lb_calls(s), 1);
    lb_stop(s);
}

/* Item 1: an answer too large even for MAX_PARTS entries is not cached,
 * and nobody waits for it: each caller asks at once. */
static void answer_too_large_to_split_never_stalls(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 64, 1024, 0, 0);
    lb_t *s = lb_start(p);
    mcp_introspect_conf_t c = conf_basic(apr_time_from_sec(300));
    const char *url = lb_url(p, s, "/introspect"), *body = answer_with_roles(p, 1000);
    apr_time_t until, t0;
    json_t *r;
    mcp_fail_t f;
    int i;

    assert_true(strlen(body) > 16 * mcp_store_entry_capacity(st) && strlen(body) < 65536);
    lb_answer(s, 200, "application/json", body, 0);
    t0 = apr_time_now();
    for (i = 0; i < 3; i++) {
        assert_int_equal(introspect_until(p, st, &c, url, "tok-huge", &r, &until, &f), 0);
        assert_true(until == 0);
        assert_string_equal(sub_of(r), "kc");
    }
    /* before: the second caller waited out the lease (2 * 2 s + 1 s) */
    assert_true(apr_time_now() - t0 < apr_time_from_msec(1500));
    assert_int_equal(lb_calls(s), 3);
    {
        mcp_store_stats_t stats;
        mcp_store_stats(st, &stats);
        assert_true(stats.evicted_live == 0);
    }
    lb_stop(s);
}

/* Item 4: the asker's failure reaches the callers waiting for it: one
 * call, and every caller fails within the timeout plus a margin. */
typedef struct {
    apr_pool_t *pool;
    mcp_store_t *st;
    const mcp_introspect_conf_t *c;
    const char *url, *token;
    int rc;
    apr_interval_time_t took;
} waiter_t;

static void *waiter(void *arg)
{
    waiter_t *w = arg;
    json_t *r = NULL;
    mcp_fail_t f;
    apr_time_t t0 = apr_time_now();
    w->rc = introspect(w->pool, w->st, w->c, w->url, w->token, &r, &f);
    w->took = apr_time_now() - t0;
    return NULL;
}

static void start_waiters(apr_pool_t *p, waiter_t *w, pthread_t *th, int n, mcp_store_t *st,
                          const mcp_introspect_conf_t *c, const char *url, const char *token)
{
    int i;
    for (i = 0; i < n; i++) {
        apr_allocator_t *a = NULL;
        assert_int_equal(apr_allocator_create(&a), APR_SUCCESS);
        assert_int_equal(apr_pool_create_ex(&w[i].pool, NULL, NULL, a), APR_SUCCESS);
        apr_allocator_owner_set(a, w[i].pool);
        w[i].st = st;
        w[i].c = c;
        w[i].url = url;
        w[i].token = token;
        assert_int_equal(pthread_create(&th[i], NULL, waiter, &w[i]), 0);
    }
    (void)p;
}

static void asker_failure_reaches_its_waiters(void **state)
{
    enum { N = 8 };
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 64, 1024, 0, 0);
    lb_t *s = lb_start(p);
    mcp_introspect_conf_t c = conf_basic(apr_time_from_sec(300));
    waiter_t w[N];
    pthread_t th[N];
    int i;

    memset(w, 0, sizeof(w));
    lb_answer(s, 200, "application/json", "{\"active\":true}", 3500); /* hangs past the 2 s timeout */
    start_waiters(p, w, th, N, st, &c, lb_url(p, s, "/introspect"), "tok-hung");
    for (i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (i = 0; i < N; i++) {
        if (w[i].rc != -1 || w[i].took > apr_time_from_msec(3500))
            fail_msg("caller %d: rc %d after %.2f s", i, w[i].rc, (double)w[i].took / APR_USEC_PER_SEC);
        apr_pool_destroy(w[i].pool);
    }
    assert_int_equal(lb_calls(s), 1);
    lb_stop(s);
}

/* Item 4 / 13: a caller waiting for another's call gives up at once when
 * the process is stopping. Last test: the flag cannot be cleared. */
static void waiter_gives_up_when_stopping(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 64, 1024, 0, 0);
    lb_t *s = lb_start(p);
    mcp_introspect_conf_t c = conf_basic(apr_time_from_sec(300));
    const char *url = lb_url(p, s, "/introspect");
    waiter_t w[1];
    pthread_t th[1];
    apr_time_t t0;
    json_t *r;
    mcp_fail_t f;

    memset(w, 0, sizeof(w));
    lb_answer(s, 200, "application/json", "{\"active\":true}", 1500);
    start_waiters(p, w, th, 1, st, &c, url, "tok-stop");
    while (lb_calls(s) == 0)
        apr_sleep(apr_time_from_msec(5)); /* the thread is the asker now */
    mcp_stopping_set();
    t0 = apr_time_now();
    assert_int_equal(introspect(p, st, &c, url, "tok-stop", &r, &f), -1);
    assert_true(apr_time_now() - t0 < apr_time_from_msec(300));
    assert_true(tu_contains(f.detail, "stopping"));
    pthread_join(th[0], NULL);
    apr_pool_destroy(w[0].pool);
    lb_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(check_active),
        TU_TEST(check_issuer),
        TU_TEST(check_issuer_alias),
        TU_TEST(check_audience),
        TU_TEST(check_time_claims),
        TU_TEST(check_required_claims),
        TU_TEST(dead_url_is_unavailable),
        TU_TEST(dead_url_get_mode_hides_the_query),
        TU_TEST(dead_url_with_store_caches_nothing_and_does_not_block),
        TU_TEST(request_basic),
        TU_TEST(request_post_and_none),
        TU_TEST(request_get_mode),
        TU_TEST(endpoint_errors),
        TU_TEST(cache_serves_second_call_without_network),
        TU_TEST(cache_keeps_inactive_answers),
        TU_TEST(cache_bounded_by_exp_and_cache_seconds),
        TU_TEST(failures_are_not_cached),
        TU_TEST(single_flight_threads),
        TU_TEST(shared_expiry_reported_and_inactive_moves_epoch),
        TU_TEST(extreme_time_values_in_answers),
        TU_TEST(large_answer_is_split_and_read_back),
        TU_TEST(answer_too_large_to_split_never_stalls),
        TU_TEST(asker_failure_reaches_its_waiters),
        TU_TEST(waiter_gives_up_when_stopping), /* last: sets the stopping flag */
    };
    tu_global_init();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return cmocka_run_group_tests_name("introspect", tests, NULL, NULL);
}
