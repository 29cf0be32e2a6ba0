/* SPDX-License-Identifier: Apache-2.0 */
#include "introspect_remote.h"

#include <openssl/rand.h>
#include <string.h>
#include <unistd.h>

#include "json_util.h"
#include "metrics.h"
#include "stopping.h"

#define KIND_ANSWER 0x52494e41u  /* "RINA": the endpoint's answer (JSON text) */
#define KIND_PENDING 0x52494e50u /* "RINP": a node is asking right now (its mark id) */
#define KIND_FAILED 0x52494e46u  /* "RINF": that node's call failed just now */
#define LABEL "introspection-remote-1"
#define FAILED_TTL apr_time_from_sec(2)

static uint64_t new_mark(void)
{
    uint64_t id = 0;
    if (RAND_bytes((unsigned char *)&id, sizeof(id)) != 1)
        id = (uint64_t)apr_time_now() ^ ((uint64_t)getpid() << 40);
    return id | 1; /* never 0 */
}

static uint64_t mark_of(const mcp_remote_entry_t *e)
{
    uint64_t id = 0;
    if (e->len == sizeof(id))
        memcpy(&id, e->value, sizeof(id));
    return id;
}

/* A stored answer: a JSON object, or NULL (refused like garbage). */
static json_t *answer_of(apr_pool_t *p, const mcp_remote_entry_t *e)
{
    json_t *doc = mcp_json_parse(p, e->value, e->len);
    return json_is_object(doc) ? doc : NULL;
}

int mcp_introspect_remote_find(mcp_remote_t *rc, const unsigned char local_key[32], apr_time_t wait_end,
                               apr_time_t lease_end, apr_pool_t *p, const mcp_log_t *log, json_t **result,
                               apr_time_t *expires, uint64_t *mark)
{
    unsigned char key[MCP_REMOTE_KEY_LEN];
    mcp_remote_entry_t e;
    uint64_t mine = 0;

    *mark = 0;
    if (!rc)
        return 0;
    mcp_remote_key(LABEL, local_key, key);
    for (;;) {
        apr_time_t now = apr_time_now();
        int found = mcp_remote_get(rc, key, now, p, &e, log);
        if (found == MCP_REMOTE_ERROR)
            return 0;
        if (found == MCP_REMOTE_FOUND && e.kind == KIND_ANSWER && (*result = answer_of(p, &e)) != NULL) {
            *expires = e.expires;
            mcp_metric_add(MCP_M_CACHE_REMOTE_HIT, 1);
            return 1;
        }
        if (found == MCP_REMOTE_FOUND && e.kind == KIND_PENDING) {
            if (mine && mark_of(&e) == mine) {
                *mark = mine; /* our mark survived the settle time: we ask */
                return 0;
            }
            if (now + MCP_REMOTE_POLL < wait_end && !mcp_stopping()) {
                apr_sleep(MCP_REMOTE_POLL); /* another node asks: wait for its answer */
                continue;
            }
            return 0; /* waited long enough: ask ourselves */
        }
        /* Nothing, a failed call's mark, or a value refused: claim the
         * call, once, and read the mark back after the settle time. */
        if (mine || now + MCP_REMOTE_SETTLE >= wait_end)
            return 0;
        mine = new_mark();
        if (mcp_remote_put(rc, key, KIND_PENDING, lease_end, &mine, sizeof(mine), p, log) != 0)
            return 0;
        apr_sleep(MCP_REMOTE_SETTLE);
    }
}

/* A negative answer stands in the cache: a positive one must not replace it. */
static int negative_there(mcp_remote_t *rc, const unsigned char key[MCP_REMOTE_KEY_LEN], apr_pool_t *p,
                          const mcp_log_t *log)
{
    mcp_remote_entry_t e;
    json_t *doc;
    if (mcp_remote_get(rc, key, apr_time_now(), p, &e, log) != MCP_REMOTE_FOUND || e.kind != KIND_ANSWER)
        return 0;
    doc = answer_of(p, &e);
    return doc && !json_is_true(json_object_get(doc, "active"));
}

void mcp_introspect_remote_keep(mcp_remote_t *rc, const unsigned char local_key[32], const json_t *result,
                                apr_time_t expires, apr_pool_t *p, const mcp_log_t *log)
{
    unsigned char key[MCP_REMOTE_KEY_LEN];
    const char *text;

    if (!rc || expires <= apr_time_now() || !(text = mcp_json_compact(p, result)))
        return;
    mcp_remote_key(LABEL, local_key, key);
    if (json_is_true(json_object_get(result, "active")) && negative_there(rc, key, p, log))
        return;
    mcp_remote_put(rc, key, KIND_ANSWER, expires, text, strlen(text), p, log);
}

void mcp_introspect_remote_failed(mcp_remote_t *rc, const unsigned char local_key[32], uint64_t mark, apr_pool_t *p,
                                  const mcp_log_t *log)
{
    unsigned char key[MCP_REMOTE_KEY_LEN];
    if (!rc || !mark)
        return;
    mcp_remote_key(LABEL, local_key, key);
    mcp_remote_put(rc, key, KIND_FAILED, apr_time_now() + FAILED_TTL, &mark, sizeof(mark), p, log);
}
