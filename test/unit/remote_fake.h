/* SPDX-License-Identifier: Apache-2.0 */
/* An in-memory stand-in for a socache provider behind remote_cache.h, for
 * the unit tests: a few slots under a mutex, with knobs for a slow, failing
 * or silent server and a count of the calls that reached it. */
#ifndef MCP_REMOTE_FAKE_H
#define MCP_REMOTE_FAKE_H

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "remote_cache.h"

#define FAKE_SLOTS 16

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t release; /* silent calls wait for it */
    struct {
        unsigned char key[MCP_REMOTE_KEY_LEN];
        unsigned char data[MCP_REMOTE_ENCODED_MAX];
        size_t len;
        int used;
    } slot[FAKE_SLOTS];
    int calls, fail, silent, released;
    long delay_ms;
} fake_store_t;

static inline void fake_init(fake_store_t *f)
{
    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->release, NULL);
}

/* Lets every silent call return (end of a test). */
static inline void fake_release(fake_store_t *f)
{
    pthread_mutex_lock(&f->lock);
    f->released = 1;
    pthread_cond_broadcast(&f->release);
    pthread_mutex_unlock(&f->lock);
}

/* The common start of a call: counted, delayed, silent or failing. */
static inline int fake_enter(fake_store_t *f)
{
    int fail;
    pthread_mutex_lock(&f->lock);
    f->calls++;
    while (f->silent && !f->released)
        pthread_cond_wait(&f->release, &f->lock);
    fail = f->fail;
    pthread_mutex_unlock(&f->lock);
    if (f->delay_ms)
        usleep((useconds_t)f->delay_ms * 1000);
    return fail ? MCP_REMOTE_ERROR : 0;
}

static inline int fake_find(fake_store_t *f, const unsigned char *key)
{
    int i;
    for (i = 0; i < FAKE_SLOTS; i++)
        if (f->slot[i].used && memcmp(f->slot[i].key, key, MCP_REMOTE_KEY_LEN) == 0)
            return i;
    return -1;
}

static inline int fake_get(void *ctx, const unsigned char *key, size_t klen, unsigned char *buf, size_t *len)
{
    fake_store_t *f = ctx;
    int i, rc = MCP_REMOTE_NOTFOUND;
    (void)klen;
    if (fake_enter(f))
        return MCP_REMOTE_ERROR;
    pthread_mutex_lock(&f->lock);
    i = fake_find(f, key);
    if (i >= 0 && f->slot[i].len <= *len) {
        memcpy(buf, f->slot[i].data, f->slot[i].len);
        *len = f->slot[i].len;
        rc = MCP_REMOTE_FOUND;
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}

/* Writes raw bytes under key (what a hostile cache server can do). */
static inline void fake_set(fake_store_t *f, const unsigned char *key, const void *data, size_t len)
{
    int i;
    pthread_mutex_lock(&f->lock);
    i = fake_find(f, key);
    for (int j = 0; i < 0 && j < FAKE_SLOTS; j++)
        if (!f->slot[j].used)
            i = j;
    if (i >= 0 && len <= sizeof(f->slot[i].data)) {
        memcpy(f->slot[i].key, key, MCP_REMOTE_KEY_LEN);
        memcpy(f->slot[i].data, data, len);
        f->slot[i].len = len;
        f->slot[i].used = 1;
    }
    pthread_mutex_unlock(&f->lock);
}

static inline int fake_put(void *ctx, const unsigned char *key, size_t klen, apr_time_t expires,
                           const unsigned char *value, size_t len)
{
    fake_store_t *f = ctx;
    (void)klen;
    (void)expires;
    if (fake_enter(f))
        return MCP_REMOTE_ERROR;
    fake_set(f, key, value, len);
    return 0;
}

static inline mcp_remote_t *fake_remote(fake_store_t *f, apr_interval_time_t call_max, apr_interval_time_t down_for)
{
    mcp_remote_ops_t ops = {fake_get, fake_put, f, "fake"};
    return mcp_remote_create(&ops, call_max, down_for);
}

#endif
