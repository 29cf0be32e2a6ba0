/* SPDX-License-Identifier: Apache-2.0 */
#include "http_fetch.h"
#include "metrics.h"

#include <apr_file_io.h>
#include <apr_strings.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stopping.h"

typedef struct {
    apr_pool_t *p;
    char *buf;
    size_t len, cap, max;
    int too_big;
} body_sink;

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    body_sink *s = userdata;
    size_t n = size * nmemb;

    if (s->len + n > s->max) {
        s->too_big = 1;
        return 0; /* aborts the transfer */
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 8192;
        char *grown;
        while (cap < s->len + n + 1)
            cap *= 2;
        grown = apr_palloc(s->p, cap);
        if (s->len)
            memcpy(grown, s->buf, s->len);
        s->buf = grown;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    return n;
}

char *mcp_form_encode(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, strlen(s) * 3 + 1), *o = out;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-._~", c)) {
            *o++ = (char)c;
        }
        else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* ---- this process's handles -------------------------------------------- */

/* One multi handle with one easy handle: the multi keeps the connection
 * cache, the DNS cache and the parsed CA bundle (CURLOPT_CA_CACHE_TIMEOUT,
 * libcurl >= 7.87), the easy handle the TLS session cache. A set is used
 * by one thread at a time: libcurl does not support one connection cache
 * (CURLSH) used by concurrent threads, so each set keeps its own. A
 * connection is reused only for the same scheme, host, port and TLS
 * settings (libcurl compares CA file, verify flags, ...), and only if it
 * was idle less than CURLOPT_MAXAGE_CONN (libcurl's default, 118 s); one
 * the IdP closed is noticed and replaced before a request is sent on it.
 * One that dies as the request goes out gets that request sent once more
 * on a new connection (harmless: introspection and documents only read),
 * within the same CURLOPT_TIMEOUT_MS. */
typedef struct handles {
    CURLM *multi;
    CURL *easy;
    struct handles *next;
} handles_t;

/* Documents may go this many calls above the cap: a flood of per-token
 * calls never keeps the keys from being fetched. */
#define DOC_RESERVE 2
/* How often a transfer looks at mcp_stopping() while it waits. */
#define STOP_POLL_MS 100
/* How long a call may wait for a place under the caps: long enough for a
 * burst of new tokens to a healthy IdP (calls of a few ms) to be served.
 * It waits only while places keep changing hands (a call started or ended
 * within PROGRESS): behind calls that hang, it is refused at once (503
 * with Retry-After) and its worker is free for other requests. */
#define QUEUE_WAIT apr_time_from_msec(250)
#define QUEUE_POLL apr_time_from_msec(10)
#define PROGRESS apr_time_from_msec(100)
/* Idle connections one set keeps: the introspection endpoint and the
 * JWKS/discovery host when it is another one. A process has at most
 * max_calls + DOC_RESERVE sets, so at most that many times this idle
 * connections (libcurl's default would be 4 per set). */
#define IDLE_CONNS_PER_SET 2L

static struct {
    pthread_mutex_t lock; /* a plain mutex: it must outlive every pool */
    pthread_cond_t freed; /* signalled when a set is checked in */
    handles_t *idle;
    int in_use, max_calls, server_calls, open;
    apr_time_t last_progress; /* last checkout or checkin under the cap */
    pid_t pid;                /* handles never cross a fork: only their process uses them */
    mcp_idp_health_t *health;
} proc = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0, 0, 0, 0, NULL};

static __thread apr_time_t scope_deadline;
static __thread long scope_retry;

static void handles_free(handles_t *h)
{
    if (!h)
        return;
    if (h->multi)
        curl_multi_cleanup(h->multi);
    if (h->easy)
        curl_easy_cleanup(h->easy);
    free(h);
}

static handles_t *handles_new(void)
{
    handles_t *h = calloc(1, sizeof(*h));
    if (h && (!(h->multi = curl_multi_init()) || !(h->easy = curl_easy_init()))) {
        handles_free(h);
        h = NULL;
    }
    if (h)
        curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, IDLE_CONNS_PER_SET);
    return h;
}

static apr_status_t close_handles(void *data)
{
    handles_t *list, *next;
    (void)data;
    pthread_mutex_lock(&proc.lock);
    proc.open = 0;
    list = proc.idle;
    proc.idle = NULL;
    pthread_mutex_unlock(&proc.lock);
    for (; list; list = next) {
        next = list->next;
        handles_free(list);
    }
    return APR_SUCCESS;
}

void mcp_http_child_init(apr_pool_t *pchild, int max_calls, int server_calls, mcp_idp_health_t *health)
{
    pthread_mutex_lock(&proc.lock);
    proc.idle = NULL;
    proc.in_use = 0;
    proc.max_calls = max_calls > 0 ? max_calls : 1;
    proc.server_calls = server_calls > 0 ? server_calls : 1;
    proc.open = 1;
    proc.pid = getpid();
    proc.health = health;
    pthread_mutex_unlock(&proc.lock);
    apr_pool_cleanup_register(pchild, NULL, close_handles, apr_pool_cleanup_null);
}

/* Waits (the lock held) until a set may be freed or `until`. */
static void wait_for_checkin(apr_time_t until)
{
    apr_time_t t = apr_time_now() + QUEUE_POLL;
    struct timespec ts;
    if (t > until)
        t = until;
    ts.tv_sec = (time_t)apr_time_sec(t);
    ts.tv_nsec = (long)apr_time_usec(t) * 1000;
    pthread_cond_timedwait(&proc.freed, &proc.lock, &ts);
}

/* A set for one transfer, waiting for a place under the per-process cap
 * until `until` at most. *own: the caller frees it (no process pool).
 * NULL with *own == 0: the cap stayed reached. */
static handles_t *checkout(int document, apr_time_t until, int *own)
{
    handles_t *h = NULL;
    int limit;

    *own = 0;
    pthread_mutex_lock(&proc.lock);
    if (!proc.open || proc.pid != getpid()) {
        pthread_mutex_unlock(&proc.lock);
        *own = 1;
        return handles_new();
    }
    limit = proc.max_calls + (document ? DOC_RESERVE : 0);
    while (proc.in_use >= limit) {
        apr_time_t now = apr_time_now();
        if (mcp_stopping() || now >= until || now - proc.last_progress > PROGRESS) {
            pthread_mutex_unlock(&proc.lock);
            return NULL;
        }
        wait_for_checkin(until);
    }
    proc.in_use++;
    proc.last_progress = apr_time_now();
    if ((h = proc.idle) != NULL)
        proc.idle = h->next;
    pthread_mutex_unlock(&proc.lock);
    if (!h && !(h = handles_new())) {
        pthread_mutex_lock(&proc.lock);
        proc.in_use--;
        pthread_cond_signal(&proc.freed);
        pthread_mutex_unlock(&proc.lock);
        *own = 1; /* reported as a failure to create, not as the cap */
    }
    return h;
}

static void checkin(handles_t *h, int own)
{
    if (!h)
        return;
    /* No option of the finished call (error buffer, header list, sink on
     * the caller's stack) may stay set on an idle handle. */
    curl_easy_reset(h->easy);
    if (own) {
        handles_free(h);
        return;
    }
    pthread_mutex_lock(&proc.lock);
    proc.in_use--;
    proc.last_progress = apr_time_now();
    pthread_cond_signal(&proc.freed);
    if (proc.open) {
        h->next = proc.idle;
        proc.idle = h;
        h = NULL;
    }
    pthread_mutex_unlock(&proc.lock);
    handles_free(h); /* the process is closing: nothing keeps it */
}

/* ---- the request's budget ------------------------------------------------ */

void mcp_http_scope_begin(apr_time_t deadline)
{
    scope_deadline = deadline;
    scope_retry = 0;
}

void mcp_http_scope_end(void)
{
    scope_deadline = 0;
    scope_retry = 0;
}

apr_time_t mcp_http_deadline(void)
{
    return scope_deadline;
}

long mcp_http_retry_after(void)
{
    return scope_retry;
}

/* Whole seconds, rounded up, at least 1. */
static void note_retry(apr_interval_time_t wait)
{
    long s = (long)((wait + APR_USEC_PER_SEC - 1) / APR_USEC_PER_SEC);
    if (s < 1)
        s = 1;
    if (s > scope_retry)
        scope_retry = s;
}

/* ---- one transfer --------------------------------------------------------- */

static int mcp_http_call(apr_pool_t *p, const char *url, const mcp_http_opts_t *o, const char *form,
                         const char *authorization, int document, mcp_http_resp_t *resp, const char **err);

int mcp_http_get(apr_pool_t *p, const char *url, const mcp_http_opts_t *o, mcp_http_resp_t *resp, const char **err)
{
    return mcp_http_call(p, url, o, NULL, NULL, 1, resp, err);
}

int mcp_http_request(apr_pool_t *p, const char *url, const mcp_http_opts_t *o, const char *form,
                     const char *authorization, mcp_http_resp_t *resp, const char **err)
{
    return mcp_http_call(p, url, o, form, authorization, 0, resp, err);
}

/* Sockets to the IdP are close-on-exec, atomically (other threads may
 * fork meanwhile): a kept-alive connection outlives its call, and a
 * program this process starts (a CGI under mod_cgi, an ExtFilter) must
 * neither read the IdP's answers on it nor keep it open after we close
 * it. libcurl (7.88) opens them without the flag. (Its wakeup socket
 * pair in each multi handle has no flag either; it leads nowhere outside
 * this process.) */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)clientp;
    (void)purpose;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static void set_options(CURL *c, const char *url, const mcp_http_opts_t *o, long limit_ms, const char *form,
                        struct curl_slist *hdrs, body_sink *sink, char *errbuf)
{
    int https = strncasecmp(url, "https://", 8) == 0;

    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, limit_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, limit_ms);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    /* Never let a redirect downgrade an https IdP to plain http. */
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_size);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, o->ssl_verify ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, o->ssl_verify ? 2L : 0L);
    if (o->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "mod_mcp_auth");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    if (form) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
        /* A POST is never replayed by a redirect into a GET elsewhere. */
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
}

/* curl_easy_perform, but through the multi handle in short slices, so the
 * transfer notices a stop within STOP_POLL_MS whatever it waits for (DNS,
 * connect, TLS, a silent server: progress callbacks can be a second apart
 * there). *stopped: given up because the process is stopping. */
static CURLcode perform(handles_t *h, int *stopped)
{
    CURLcode rc = CURLE_FAILED_INIT;
    CURLMcode mc;
    CURLMsg *msg;
    int running = 1, left;

    *stopped = 0;
    if (curl_multi_add_handle(h->multi, h->easy) != CURLM_OK)
        return CURLE_FAILED_INIT;
    for (;;) {
        mc = curl_multi_perform(h->multi, &running);
        if (mc != CURLM_OK || !running)
            break;
        if (mcp_stopping()) {
            *stopped = 1;
            break;
        }
        if (curl_multi_poll(h->multi, NULL, 0, STOP_POLL_MS, NULL) != CURLM_OK)
            break;
    }
    while ((msg = curl_multi_info_read(h->multi, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == h->easy)
            rc = msg->data.result;
    if (*stopped)
        rc = CURLE_ABORTED_BY_CALLBACK;
    /* Removing an unfinished transfer closes its connection: a stopped or
     * failed call never leaves a half-used connection for the next one. */
    curl_multi_remove_handle(h->multi, h->easy);
    return rc;
}

/* Failures that say the endpoint is down or hung (not that its answer or
 * our configuration is wrong): they start or extend its backoff. */
static int endpoint_failure(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
        return 1;
    default:
        return 0;
    }
}

/* Records the outcome in the shared table. A timeout counts only when the
 * call had most of MCPAuthHTTPTimeout: one cut short by the request's
 * spent budget says nothing about the endpoint. */
static void note_outcome(const char *url, CURLcode rc, long status, apr_interval_time_t limit, apr_interval_time_t full,
                         apr_time_t started)
{
    mcp_idp_health_t *health = proc.health;
    int failed;

    if (!health || rc == CURLE_ABORTED_BY_CALLBACK)
        return;
    if (rc == CURLE_OK)
        failed = status >= 500;
    else if (rc == CURLE_OPERATION_TIMEDOUT && limit < full / 2)
        return;
    else if (!endpoint_failure(rc))
        return;
    else
        failed = 1;
    if (failed)
        note_retry(mcp_idp_health_failed(health, url, started, apr_time_now()));
    else
        mcp_idp_health_ok(health, url);
}

#define LEASE_MARGIN apr_time_from_sec(2)
#define CALL_MARGIN apr_time_from_sec(1)

apr_interval_time_t mcp_http_lease(const mcp_http_opts_t *o, int calls)
{
    return apr_time_from_sec(o->timeout_s) * calls + LEASE_MARGIN;
}

apr_time_t mcp_http_wait_end(const mcp_http_opts_t *o, apr_time_t now)
{
    return now + apr_time_from_sec(o->timeout_s);
}

/* The time this call may take: MCPAuthHTTPTimeout, or what is left of the
 * request's budget. 0: nothing left. */
static apr_interval_time_t time_limit(const mcp_http_opts_t *o, apr_time_t now)
{
    apr_interval_time_t limit = apr_time_from_sec(o->timeout_s);
    if (scope_deadline && scope_deadline - now < limit)
        limit = scope_deadline - now;
    return limit >= apr_time_from_msec(1) ? limit : 0;
}

static apr_time_t queue_until(apr_time_t now, apr_interval_time_t limit)
{
    return now + (limit < QUEUE_WAIT ? limit : QUEUE_WAIT);
}

/* A place among the server's calls to url, waiting for one until `until`
 * at most (other processes free them: polled). 0: taken. */
static int enter_server_cap(const char *url, apr_time_t until, apr_interval_time_t stale_after, mcp_idp_lease_t *lease)
{
    for (;;) {
        apr_time_t now = apr_time_now();
        if (mcp_idp_health_enter(proc.health, url, proc.server_calls, now, stale_after, lease) == 0)
            return 0;
        if (mcp_stopping() || now >= until ||
            now - mcp_idp_health_last_start(proc.health, url, proc.server_calls) > PROGRESS)
            return -1;
        apr_sleep(QUEUE_POLL);
    }
}

/* Before a call: the reasons not to make it. NULL: go ahead (*h set,
 * *lease taken for a per-token call). */
static const char *admit(apr_pool_t *p, const char *url, const mcp_http_opts_t *o, int document, apr_time_t now,
                         apr_interval_time_t limit, handles_t **h, int *own, mcp_idp_lease_t *lease)
{
    /* Our place among the server's calls and our probe stand this long at
     * most: a caller that crashed frees them after that. */
    apr_interval_time_t held = limit + CALL_MARGIN, wait;

    *h = NULL;
    lease->index = -1;
    if (mcp_stopping())
        return "not asked: the server is stopping";
    if (!limit)
        return apr_psprintf(p, "not asked: this request's time for the IdP (MCPAuthHTTPTimeout %ld s) is spent",
                            o->timeout_s);
    *h = checkout(document, queue_until(now, limit), own);
    if (!*h) {
        if (*own)
            return "curl_easy_init failed";
        note_retry(APR_USEC_PER_SEC);
        return apr_psprintf(p, "not asked: %d calls to the IdP already under way in this process", proc.max_calls);
    }
    if (proc.health && !*own && !document && enter_server_cap(url, queue_until(now, limit), held, lease)) {
        checkin(*h, *own);
        *h = NULL;
        note_retry(APR_USEC_PER_SEC);
        return apr_psprintf(p, "not asked: %d calls to it already under way in the server", proc.server_calls);
    }
    if (proc.health && !*own && mcp_idp_health_admit(proc.health, url, now, held, &wait)) {
        mcp_idp_health_leave(proc.health, lease);
        checkin(*h, *own);
        *h = NULL;
        note_retry(wait);
        return apr_psprintf(p, "not asked: it failed moments ago, calls paused for another %ld ms",
                            (long)apr_time_as_msec(wait));
    }
    return NULL;
}

static int mcp_http_call(apr_pool_t *p, const char *url, const mcp_http_opts_t *o, const char *form,
                         const char *authorization, int document, mcp_http_resp_t *resp, const char **err)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    body_sink sink = {p, NULL, 0, 0, o->max_size, 0};
    apr_time_t started = apr_time_now();
    apr_interval_time_t limit = time_limit(o, started);
    struct curl_slist *hdrs;
    handles_t *h;
    mcp_idp_lease_t lease;
    CURLcode rc;
    int own, stopped;
    long status = 0;

    if ((*err = admit(p, url, o, document, started, limit, &h, &own, &lease)) != NULL)
        return -1;
    hdrs = curl_slist_append(NULL, "Accept: application/json");
    if (authorization)
        hdrs = curl_slist_append(hdrs, apr_pstrcat(p, "Authorization: ", authorization, NULL));
    if (form)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/x-www-form-urlencoded");
    /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): admit() sets h whenever it returns no error */
    set_options(h->easy, url, o, (long)((limit + 999) / 1000), form, hdrs, &sink, errbuf);
    rc = perform(h, &stopped);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
    checkin(h, own);
    mcp_idp_health_leave(proc.health, &lease);
    curl_slist_free_all(hdrs);
    note_outcome(url, rc, status, limit, apr_time_from_sec(o->timeout_s), started);
    mcp_metric_observe(document ? MCP_CALL_DOCUMENT : MCP_CALL_INTROSPECTION, apr_time_now() - started);
    if (stopped) {
        *err = "given up: the server is stopping";
        return -1;
    }
    if (sink.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        *err = apr_psprintf(p, "response larger than %lu bytes", (unsigned long)o->max_size);
        return -1;
    }
    if (rc != CURLE_OK) {
        *err = apr_pstrdup(p, errbuf[0] ? errbuf : curl_easy_strerror(rc));
        return -1;
    }
    resp->status = status;
    resp->body = sink.buf ? sink.buf : apr_pstrdup(p, "");
    resp->body[sink.len] = '\0';
    resp->len = sink.len;
    return 0;
}

int mcp_file_read(apr_pool_t *p, const char *path, size_t max_size, mcp_http_resp_t *resp, const char **err)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t n;
    apr_status_t st;
    char ebuf[120];

    st = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, APR_OS_DEFAULT, p);
    if (st == APR_SUCCESS)
        st = apr_file_info_get(&fi, APR_FINFO_SIZE, f);
    if (st != APR_SUCCESS) {
        *err = apr_pstrdup(p, apr_strerror(st, ebuf, sizeof(ebuf)));
        return -1;
    }
    if ((apr_uint64_t)fi.size > max_size) {
        apr_file_close(f);
        *err = apr_psprintf(p, "file larger than %lu bytes", (unsigned long)max_size);
        return -1;
    }
    n = (apr_size_t)fi.size;
    resp->body = apr_palloc(p, n + 1);
    st = apr_file_read_full(f, resp->body, n, &n);
    apr_file_close(f);
    if (st != APR_SUCCESS && st != APR_EOF) {
        *err = apr_pstrdup(p, apr_strerror(st, ebuf, sizeof(ebuf)));
        return -1;
    }
    resp->body[n] = '\0';
    resp->len = n;
    resp->status = 200;
    return 0;
}
