/* SPDX-License-Identifier: Apache-2.0 */
#include "l1_cache.h"

#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <stdlib.h>
#include <string.h>

/* One malloc'd block per entry: the struct, then ctx, token and the
 * verdict's strings. Replaced whole, under its stripe's lock; a hit
 * copies the strings out in one piece. */
typedef struct {
    size_t cap; /* bytes of data[] */
    size_t ctx_len, token_len, strings_len;
    mcp_l1_deps_t deps;
    mcp_verdict_t v; /* string members point into this block */
    char data[];
} entry;

/* Slots are guarded by a few locks by slot number, not one: every worker
 * thread of the process looks up here on every request. */
#define STRIPES 64

struct mcp_l1 {
    apr_thread_mutex_t *locks[STRIPES];
    unsigned mask;
    entry **slots;
};

static apr_status_t free_all(void *data)
{
    mcp_l1_t *c = data;
    unsigned i;
    for (i = 0; i <= c->mask; i++) {
        free(c->slots[i]);
        c->slots[i] = NULL;
    }
    return APR_SUCCESS;
}

mcp_l1_t *mcp_l1_create(apr_pool_t *p, unsigned slots)
{
    mcp_l1_t *c = apr_pcalloc(p, sizeof(*c));
    unsigned n = 1, i;
    while (n < slots)
        n <<= 1;
    c->mask = n - 1;
    c->slots = apr_pcalloc(p, n * sizeof(entry *));
    for (i = 0; i < STRIPES; i++)
        apr_thread_mutex_create(&c->locks[i], APR_THREAD_MUTEX_DEFAULT, p);
    apr_pool_cleanup_register(p, c, free_all, apr_pool_cleanup_null);
    return c;
}

/* FNV-1a over the token's last bytes (its signature: already random). */
static unsigned slot_of(const mcp_l1_t *c, const char *token, size_t len)
{
    uint32_t h = 2166136261u;
    size_t i = len > 32 ? len - 32 : 0;
    for (; i < len; i++)
        h = (h ^ (unsigned char)token[i]) * 16777619u;
    return h & c->mask;
}

/* s moved from the entry's string block to its copy at `to`. */
static const char *rebase(const entry *e, const char *s, char *to)
{
    const char *strings = e->data + e->ctx_len + e->token_len;
    return s ? to + (s - strings) : NULL;
}

/* Still valid in st: the JWKS generation and the revocation epoch the
 * copy was taken under are current. Lock-free reads of shared words. */
static int deps_hold(const mcp_l1_deps_t *d, mcp_store_t *st)
{
    uint64_t epoch;
    if (d->dep_doc >= 0 && (!st || mcp_store_doc_generation(st, d->dep_doc) != d->dep_generation))
        return 0;
    if (d->dep_epoch && (mcp_store_epoch(st, &epoch) != 0 || epoch != d->epoch))
        return 0;
    return 1;
}

int mcp_l1_get(mcp_l1_t *c, const void *ctx, size_t ctx_len, const char *token, size_t len, apr_time_t now,
               mcp_store_t *st, apr_pool_t *p, mcp_verdict_t *out)
{
    entry *e;
    unsigned slot;
    int hit = 0;

    if (!c)
        return -1;
    slot = slot_of(c, token, len);
    apr_thread_mutex_lock(c->locks[slot % STRIPES]);
    e = c->slots[slot];
    if (e && e->token_len == len && e->ctx_len == ctx_len && e->deps.expires > now &&
        memcmp(e->data + ctx_len, token, len) == 0 && memcmp(e->data, ctx, ctx_len) == 0 && deps_hold(&e->deps, st)) {
        char *copy = apr_pmemdup(p, e->data + ctx_len + len, e->strings_len);
        *out = e->v;
        out->user = rebase(e, e->v.user, copy);
        out->sub = rebase(e, e->v.sub, copy);
        out->iss = rebase(e, e->v.iss, copy);
        out->scope = rebase(e, e->v.scope, copy);
        out->claims = rebase(e, e->v.claims, copy);
        hit = 1;
    }
    apr_thread_mutex_unlock(c->locks[slot % STRIPES]);
    return hit ? 0 : -1;
}

/* Appends s (NUL included) at *at; NULL stays NULL. */
static const char *place(char **at, const char *s)
{
    size_t n;
    char *dst = *at;
    if (!s)
        return NULL;
    n = strlen(s) + 1;
    memcpy(dst, s, n);
    *at += n;
    return dst;
}

/* Writes the entry's fields and bytes into e (its cap is large enough). */
static void fill(entry *e, const void *ctx, size_t ctx_len, const char *token, size_t len, size_t strings,
                 const mcp_l1_deps_t *deps, const mcp_verdict_t *v)
{
    char *at;
    e->ctx_len = ctx_len;
    e->token_len = len;
    e->strings_len = strings;
    e->deps = *deps;
    e->v = *v;
    memcpy(e->data, ctx, ctx_len);
    memcpy(e->data + ctx_len, token, len);
    at = e->data + ctx_len + len;
    e->v.user = place(&at, v->user);
    e->v.sub = place(&at, v->sub);
    e->v.iss = place(&at, v->iss);
    e->v.scope = place(&at, v->scope);
    e->v.claims = place(&at, v->claims);
}

void mcp_l1_put(mcp_l1_t *c, const void *ctx, size_t ctx_len, const char *token, size_t len, const mcp_l1_deps_t *deps,
                const mcp_verdict_t *v)
{
    size_t strings = strlen(v->user) + strlen(v->scope) + strlen(v->claims) + (v->sub ? strlen(v->sub) : 0) +
                     (v->iss ? strlen(v->iss) : 0) + 5;
    size_t need = ctx_len + len + strings;
    entry *e, *old;
    unsigned slot;

    if (!c)
        return;
    slot = slot_of(c, token, len);
    /* A slot's block is rewritten in place when it is large enough (tokens
     * and verdicts are of similar sizes): with many distinct tokens every
     * shared-cache hit lands here, and a malloc and a free per request, from
     * many threads at once, grew the allocator's arenas. */
    apr_thread_mutex_lock(c->locks[slot % STRIPES]);
    old = c->slots[slot];
    if (old && old->cap >= need) {
        fill(old, ctx, ctx_len, token, len, strings, deps, v);
        apr_thread_mutex_unlock(c->locks[slot % STRIPES]);
        return;
    }
    apr_thread_mutex_unlock(c->locks[slot % STRIPES]);
    e = malloc(sizeof(*e) + need);
    if (!e)
        return; /* a lost cache entry costs speed only */
    e->cap = need;
    fill(e, ctx, ctx_len, token, len, strings, deps, v);
    apr_thread_mutex_lock(c->locks[slot % STRIPES]);
    old = c->slots[slot];
    c->slots[slot] = e;
    apr_thread_mutex_unlock(c->locks[slot % STRIPES]);
    free(old);
}
