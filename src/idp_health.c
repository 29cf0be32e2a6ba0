/* SPDX-License-Identifier: Apache-2.0 */
#include "idp_health.h"

#include <apr_shm.h>
#include <stdint.h>
#include <string.h>

/* Enough for every endpoint a configuration names (JWKS, two discovery
 * URLs and an introspection endpoint per issuer); with more, the endpoints
 * without a slot simply get no backoff. */
#define SLOTS 64

typedef struct {
    uint64_t key;         /* hash of the endpoint; 0: free */
    int64_t until;        /* calls are refused before this (apr_time_t) */
    int64_t last_failure; /* when the last failure was recorded */
    uint32_t failures;    /* consecutive, since the last answer */
    uint32_t unused;
    int64_t lease[MCP_IDP_MAX_LEASES]; /* start of a call under way; 0: free */
} slot_t;

struct mcp_idp_health {
    slot_t slot[SLOTS];
};

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
#define CAS(x, expect, v) __atomic_compare_exchange_n(&(x), &(expect), (v), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

mcp_idp_health_t *mcp_idp_health_create(apr_pool_t *pool)
{
    apr_shm_t *shm;
    mcp_idp_health_t *h;

    /* Anonymous: inherited by the children over fork, gone with the pool
     * (the parent's mapping; children keep theirs until they exit). */
    if (apr_shm_create(&shm, sizeof(*h), NULL, pool) != APR_SUCCESS)
        return NULL;
    h = apr_shm_baseaddr_get(shm);
    memset(h, 0, sizeof(*h));
    return h;
}

/* FNV-1a of the URL without query or fragment; never 0 (a free slot). */
static uint64_t endpoint_key(const char *url)
{
    uint64_t k = 0xcbf29ce484222325ULL;
    for (; *url && *url != '?' && *url != '#'; url++) {
        k ^= (unsigned char)*url;
        k *= 0x100000001b3ULL;
    }
    return k ? k : 1;
}

static slot_t *find(mcp_idp_health_t *h, uint64_t key)
{
    int i;
    for (i = 0; i < SLOTS; i++)
        if (LOAD(h->slot[i].key) == key)
            return &h->slot[i];
    return NULL;
}

/* A slot of another endpoint may be taken over once that endpoint is out
 * of any backoff and healthy, or has not failed for a minute (it is no
 * longer asked: configuration changed). */
static int reusable(const slot_t *c, apr_time_t now)
{
    return LOAD(c->until) <= now && (LOAD(c->failures) == 0 || LOAD(c->last_failure) < now - apr_time_from_sec(60));
}

/* The endpoint's slot, taking a free or a reusable one. NULL when every
 * slot is held by a failing endpoint. */
static slot_t *claim(mcp_idp_health_t *h, uint64_t key, apr_time_t now)
{
    slot_t *s = find(h, key);
    int i, pass;

    for (pass = 0; !s && pass < 2; pass++) {
        for (i = 0; i < SLOTS && !s; i++) {
            slot_t *c = &h->slot[i];
            uint64_t old = LOAD(c->key);
            if (pass == 0 ? old != 0 : !reusable(c, now))
                continue;
            if (CAS(c->key, old, key)) {
                STORE(c->failures, 0);
                STORE(c->until, 0);
                STORE(c->last_failure, 0);
                s = c;
            }
        }
    }
    return s;
}

int mcp_idp_health_admit(mcp_idp_health_t *h, const char *url, apr_time_t now, apr_interval_time_t probe_lease,
                         apr_interval_time_t *wait)
{
    slot_t *s;
    int64_t until;

    *wait = 0;
    if (!h || !(s = find(h, endpoint_key(url))) || LOAD(s->failures) == 0)
        return 0;
    until = LOAD(s->until);
    while (until <= now) {
        /* The backoff is over: the caller that moves `until` probes. */
        if (CAS(s->until, until, now + probe_lease))
            return 0;
    }
    *wait = until - now;
    return -1;
}

apr_interval_time_t mcp_idp_health_failed(mcp_idp_health_t *h, const char *url, apr_time_t started, apr_time_t now)
{
    slot_t *s;
    uint32_t n;
    apr_interval_time_t backoff;
    int64_t until;

    if (!h || !(s = claim(h, endpoint_key(url), now)))
        return 0;
    n = LOAD(s->failures);
    if (n == 0 || started >= LOAD(s->last_failure))
        n = __atomic_add_fetch(&s->failures, 1, __ATOMIC_ACQ_REL);
    backoff = MCP_BACKOFF_FIRST;
    while (--n > 0 && backoff < MCP_BACKOFF_MAX)
        backoff *= 2;
    if (backoff > MCP_BACKOFF_MAX)
        backoff = MCP_BACKOFF_MAX;
    STORE(s->last_failure, now);
    /* Never shortens a backoff another process set meanwhile. */
    until = LOAD(s->until);
    while (until < now + backoff && !CAS(s->until, until, now + backoff))
        ;
    return backoff;
}

void mcp_idp_health_ok(mcp_idp_health_t *h, const char *url)
{
    slot_t *s;
    /* The common case, a healthy endpoint, only reads. */
    if (!h || !(s = find(h, endpoint_key(url))) || (LOAD(s->failures) == 0 && LOAD(s->until) == 0))
        return;
    STORE(s->failures, 0);
    STORE(s->until, 0);
}

int mcp_idp_health_enter(mcp_idp_health_t *h, const char *url, int max, apr_time_t now, apr_interval_time_t stale_after,
                         mcp_idp_lease_t *lease)
{
    slot_t *s;
    int i;

    lease->index = -1;
    lease->taken = 0;
    if (!h || !(s = claim(h, endpoint_key(url), now)))
        return 0;
    if (max > MCP_IDP_MAX_LEASES)
        max = MCP_IDP_MAX_LEASES;
    for (i = 0; i < max; i++) {
        int64_t v = LOAD(s->lease[i]);
        if ((v == 0 || v < now - stale_after) && CAS(s->lease[i], v, (int64_t)now)) {
            lease->index = (int)((s - h->slot) * MCP_IDP_MAX_LEASES + i);
            lease->taken = now;
            return 0;
        }
    }
    return -1;
}

void mcp_idp_health_leave(mcp_idp_health_t *h, const mcp_idp_lease_t *lease)
{
    int64_t expect = lease->taken;
    if (!h || lease->index < 0)
        return;
    /* Only our own value: a place taken over as stale is someone else's. */
    CAS(h->slot[lease->index / MCP_IDP_MAX_LEASES].lease[lease->index % MCP_IDP_MAX_LEASES], expect, 0);
}

apr_time_t mcp_idp_health_last_start(mcp_idp_health_t *h, const char *url, int max)
{
    slot_t *s;
    int64_t last = 0;
    int i;

    if (!h || !(s = find(h, endpoint_key(url))))
        return 0;
    if (max > MCP_IDP_MAX_LEASES)
        max = MCP_IDP_MAX_LEASES;
    for (i = 0; i < max; i++) {
        int64_t v = LOAD(s->lease[i]);
        if (v > last)
            last = v;
    }
    return (apr_time_t)last;
}
