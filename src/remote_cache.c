/* SPDX-License-Identifier: Apache-2.0 */
#include "remote_cache.h"

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "http_fetch.h"
#include "metrics.h"
#include "sha256.h"

static const unsigned char MAGIC[4] = {'M', 'C', 'R', '1'};

/* Stack of a call's thread: the providers keep their buffers in pools. */
#define CALL_STACK (256 * 1024)

struct mcp_remote_s {
    mcp_remote_ops_t ops;
    apr_interval_time_t call_max, down_for;
    apr_time_t down_until; /* atomic: skipped until then */
    apr_time_t last_log;   /* atomic: the last warning */
    int in_flight;         /* atomic: calls whose thread has not returned */
};

mcp_remote_t *mcp_remote_create(const mcp_remote_ops_t *ops, apr_interval_time_t call_max, apr_interval_time_t down_for)
{
    mcp_remote_t *rc = calloc(1, sizeof(*rc));
    if (!rc)
        return NULL;
    rc->ops = *ops;
    rc->call_max = call_max;
    rc->down_for = down_for;
    return rc;
}

int mcp_remote_free(mcp_remote_t *rc)
{
    if (!rc)
        return 0;
    if (__atomic_load_n(&rc->in_flight, __ATOMIC_ACQUIRE) != 0)
        return -1;
    free(rc);
    return 0;
}

void mcp_remote_key(const char *label, const unsigned char local[32], unsigned char out[MCP_REMOTE_KEY_LEN])
{
    mcp_bytes_t parts[2] = {{label, strlen(label) + 1}, {local, 32}};
    mcp_sha256_key(out, parts, 2);
}

/* ---- the wire form ---------------------------------------------------- */

/* Big-endian, so nodes of any byte order read each other's entries. */
static void put_be(unsigned char *b, uint64_t v, int n)
{
    int i;
    for (i = n - 1; i >= 0; i--, v >>= 8)
        b[i] = (unsigned char)(v & 0xff);
}

static uint64_t get_be(const unsigned char *b, int n)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < n; i++)
        v = (v << 8) | b[i];
    return v;
}

/* magic | kind | expires (µs since the epoch) | key | length | payload | SHA-256 of all before it */
size_t mcp_remote_encode(const unsigned char key[MCP_REMOTE_KEY_LEN], uint32_t kind, apr_time_t expires,
                         const void *value, size_t len, unsigned char *buf)
{
    size_t n = MCP_REMOTE_HEADER_LEN + len;
    if (len > MCP_REMOTE_MAX_PAYLOAD)
        return 0;
    memcpy(buf, MAGIC, 4);
    put_be(buf + 4, kind, 4);
    put_be(buf + 8, (uint64_t)expires, 8);
    memcpy(buf + 16, key, MCP_REMOTE_KEY_LEN);
    put_be(buf + 16 + MCP_REMOTE_KEY_LEN, len, 4);
    if (len)
        memcpy(buf + MCP_REMOTE_HEADER_LEN, value, len);
    mcp_sha256(buf, n, buf + n);
    return n + 32;
}

int mcp_remote_decode(const unsigned char key[MCP_REMOTE_KEY_LEN], const unsigned char *buf, size_t n, apr_time_t now,
                      apr_pool_t *p, mcp_remote_entry_t *out)
{
    unsigned char hash[32];
    uint64_t len;
    char *v;

    if (n < MCP_REMOTE_HEADER_LEN + 32 || memcmp(buf, MAGIC, 4) != 0)
        return -1;
    len = get_be(buf + 16 + MCP_REMOTE_KEY_LEN, 4);
    if (len > MCP_REMOTE_MAX_PAYLOAD || n != MCP_REMOTE_HEADER_LEN + len + 32)
        return -1;
    mcp_sha256(buf, MCP_REMOTE_HEADER_LEN + len, hash);
    if (memcmp(hash, buf + MCP_REMOTE_HEADER_LEN + len, 32) != 0)
        return -1;
    /* Another key's entry copied here answers for another token or policy. */
    if (memcmp(buf + 16, key, MCP_REMOTE_KEY_LEN) != 0)
        return -1;
    out->kind = (uint32_t)get_be(buf + 4, 4);
    out->expires = (apr_time_t)get_be(buf + 8, 8);
    if (out->expires <= now)
        return -1;
    v = apr_palloc(p, (size_t)len + 1);
    memcpy(v, buf + MCP_REMOTE_HEADER_LEN, (size_t)len);
    v[len] = '\0';
    out->value = v;
    out->len = (size_t)len;
    return 0;
}

/* ---- bounded calls ---------------------------------------------------- */

/* One call, shared by the request that waits for it and the thread that
 * makes it; the last of the two to let go frees it (a request that gave
 * up leaves it to a thread that may never come back). */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int refs, done, is_put, result;
    mcp_remote_t *rc;
    unsigned char key[MCP_REMOTE_KEY_LEN];
    apr_time_t expires;
    size_t len; /* put: the value's length; get: the buffer's size, then the value's */
    unsigned char buf[MCP_REMOTE_ENCODED_MAX];
} call_t;

static void release(call_t *c)
{
    int last;
    pthread_mutex_lock(&c->lock);
    last = --c->refs == 0;
    pthread_mutex_unlock(&c->lock);
    if (last) {
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->cv);
        free(c);
    }
}

static void *run_call(void *arg)
{
    call_t *c = arg;
    const mcp_remote_ops_t *ops = &c->rc->ops;
    int result;

    if (c->is_put)
        result = ops->put(ops->ctx, c->key, sizeof(c->key), c->expires, c->buf, c->len);
    else
        result = ops->get(ops->ctx, c->key, sizeof(c->key), c->buf, &c->len);
    __atomic_sub_fetch(&c->rc->in_flight, 1, __ATOMIC_ACQ_REL);
    pthread_mutex_lock(&c->lock);
    c->result = result;
    c->done = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->lock);
    release(c);
    return NULL;
}

static void warn_down(mcp_remote_t *rc, apr_time_t now, apr_pool_t *p, const mcp_log_t *log, const char *why)
{
    apr_time_t seen = __atomic_load_n(&rc->last_log, __ATOMIC_RELAXED);
    if (seen && now - seen < MCP_REMOTE_LOG_INTERVAL)
        return;
    if (!__atomic_compare_exchange_n(&rc->last_log, &seen, now, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return;
    mcp_logf(log, p, MCP_LOG_WARNING,
             "MCPAuthSharedCache %s: %s; this process skips it for %ld s and asks the IdP meanwhile "
             "(logged once a minute per process)",
             rc->ops.name ? rc->ops.name : "", why, (long)apr_time_sec(rc->down_for));
}

static int failed(mcp_remote_t *rc, apr_time_t now, apr_pool_t *p, const mcp_log_t *log, const char *why)
{
    __atomic_store_n(&rc->down_until, now + rc->down_for, __ATOMIC_RELEASE);
    mcp_metric_add(MCP_M_REMOTE_ERROR, 1);
    warn_down(rc, now, p, log, why);
    return MCP_REMOTE_ERROR;
}

int mcp_remote_is_down(mcp_remote_t *rc, apr_time_t now)
{
    return now < __atomic_load_n(&rc->down_until, __ATOMIC_ACQUIRE);
}

/* Hands c to a thread and waits until it is done or the deadline passes.
 * The result, or MCP_REMOTE_ERROR (logged, the level marked down). The
 * caller releases c afterwards in every case. */
static int call(mcp_remote_t *rc, call_t *c, apr_time_t now, apr_pool_t *p, const mcp_log_t *log)
{
    apr_time_t deadline = now + rc->call_max, request_end = mcp_http_deadline();
    struct timespec ts;
    pthread_attr_t attr;
    pthread_t t;
    int result = MCP_REMOTE_ERROR, started, done;

    if (request_end && request_end < deadline)
        deadline = request_end;
    if (deadline <= now) {
        mcp_metric_add(MCP_M_REMOTE_ERROR, 1);
        return MCP_REMOTE_ERROR; /* the request has no time left: not the server's fault */
    }
    /* At the cap: this call is skipped, the level is not marked down (a
     * burst of calls is not a failure; a silent server's calls time out
     * and mark it down themselves). */
    if (__atomic_add_fetch(&rc->in_flight, 1, __ATOMIC_ACQ_REL) > MCP_REMOTE_MAX_IN_FLIGHT) {
        __atomic_sub_fetch(&rc->in_flight, 1, __ATOMIC_ACQ_REL);
        mcp_metric_add(MCP_M_REMOTE_ERROR, 1);
        return MCP_REMOTE_ERROR;
    }
    c->rc = rc;
    c->refs = 2; /* this request's and the thread's */
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* The provider's call needs little: a small stack is cheaper to map. */
    pthread_attr_setstacksize(&attr, CALL_STACK);
    started = pthread_create(&t, &attr, run_call, c) == 0;
    pthread_attr_destroy(&attr);
    if (!started) {
        __atomic_sub_fetch(&rc->in_flight, 1, __ATOMIC_ACQ_REL);
        c->refs = 1;
        return failed(rc, now, p, log, "no thread for the call");
    }
    ts.tv_sec = (time_t)apr_time_sec(deadline);
    ts.tv_nsec = (long)apr_time_usec(deadline) * 1000;
    pthread_mutex_lock(&c->lock);
    while (!c->done)
        if (pthread_cond_timedwait(&c->cv, &c->lock, &ts) == ETIMEDOUT)
            break;
    done = c->done;
    if (done)
        result = c->result;
    pthread_mutex_unlock(&c->lock);
    if (result == MCP_REMOTE_ERROR)
        return failed(rc, apr_time_now(), p, log,
                      done ? "the call failed" : "no answer in time (bounded by MCPAuthHTTPTimeout)");
    return result;
}

static call_t *new_call(const unsigned char key[MCP_REMOTE_KEY_LEN])
{
    call_t *c = malloc(sizeof(*c));
    if (c) {
        memset(c, 0, offsetof(call_t, buf));
        memcpy(c->key, key, MCP_REMOTE_KEY_LEN);
        pthread_mutex_init(&c->lock, NULL);
        pthread_cond_init(&c->cv, NULL);
        c->refs = 1;
    }
    return c;
}

int mcp_remote_get(mcp_remote_t *rc, const unsigned char key[MCP_REMOTE_KEY_LEN], apr_time_t now, apr_pool_t *p,
                   mcp_remote_entry_t *out, const mcp_log_t *log)
{
    call_t *c;
    int result;

    if (!rc || mcp_remote_is_down(rc, now)) {
        mcp_metric_add(MCP_M_REMOTE_ERROR, 1);
        return MCP_REMOTE_ERROR;
    }
    c = new_call(key);
    if (!c)
        return failed(rc, now, p, log, "out of memory");
    c->len = sizeof(c->buf);
    result = call(rc, c, now, p, log);
    /* Done: the thread no longer writes c->buf; decode copies out of it. */
    if (result == MCP_REMOTE_FOUND)
        result = mcp_remote_decode(key, c->buf, c->len <= sizeof(c->buf) ? c->len : 0, apr_time_now(), p, out) == 0
                     ? MCP_REMOTE_FOUND
                     : MCP_REMOTE_NOTFOUND;
    release(c);
    if (result == MCP_REMOTE_NOTFOUND)
        mcp_metric_add(MCP_M_REMOTE_MISS, 1);
    return result;
}

int mcp_remote_put(mcp_remote_t *rc, const unsigned char key[MCP_REMOTE_KEY_LEN], uint32_t kind, apr_time_t expires,
                   const void *value, size_t len, apr_pool_t *p, const mcp_log_t *log)
{
    apr_time_t now = apr_time_now();
    call_t *c;
    int result;

    if (!rc || len > MCP_REMOTE_MAX_PAYLOAD || expires <= now)
        return MCP_REMOTE_ERROR;
    if (mcp_remote_is_down(rc, now)) {
        mcp_metric_add(MCP_M_REMOTE_ERROR, 1);
        return MCP_REMOTE_ERROR;
    }
    c = new_call(key);
    if (!c)
        return failed(rc, now, p, log, "out of memory");
    c->is_put = 1;
    c->expires = expires;
    c->len = mcp_remote_encode(key, kind, expires, value, len, c->buf);
    result = call(rc, c, now, p, log);
    release(c);
    if (result == MCP_REMOTE_ERROR)
        return MCP_REMOTE_ERROR;
    mcp_metric_add(MCP_M_REMOTE_STORE, 1);
    return 0;
}
