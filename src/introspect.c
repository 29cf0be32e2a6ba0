/* SPDX-License-Identifier: Apache-2.0 */
#include "introspect.h"
#include "metrics.h"

#include <apr_base64.h>
#include <apr_strings.h>
#include <math.h>
#include <openssl/rand.h>
#include <string.h>
#include <unistd.h>

#include "claim_check.h"
#include "introspect_remote.h"
#include "json_util.h"
#include "sha256.h"
#include "stopping.h"
#include "verdict.h"

#define KIND_RESULT 0x494e5431u  /* "INT1": the endpoint's answer */
#define KIND_PENDING 0x494e5450u /* "INTP": a process is asking right now */
#define KIND_HEAD 0x494e5448u    /* "INTH": an answer split over parts (count, length, hash) */
#define KIND_PART 0x494e542eu    /* "INT.": one part of a split answer, under a derived key */
#define KIND_FAILED 0x494e5446u  /* "INTF": the asker's call failed just now (its waiters answer 503) */
#define KIND_DIRECT 0x494e5444u  /* "INTD": the answer cannot be cached: ask without waiting */

/* An answer larger than one entry (Keycloak's with many roles) is split
 * over at most this many entries; a larger one is not cached. */
#define MAX_PARTS 16
/* A failed call's mark lives just long enough for its waiters (polling
 * every POLL) to read it; later requests ask again. */
#define FAILED_TTL apr_time_from_sec(2)
/* After a call that hung (took half the timeout or more), requests that
 * come this soon share its failure too: they are the ones that queued for
 * a worker behind the waiters (prefork spawning children), and asking
 * again at once would tie up another worker for the whole timeout. A
 * quick failure (5xx, refused) is asked again by the next request. */
#define SLOW_FAILURE_HOLD apr_time_from_sec(1)
#define POLL apr_time_from_msec(20)
/* Every request's whole wait (for another process, then its own call) is
 * bounded by MCPAuthHTTPTimeout plus this. */
#define WAIT_MARGIN apr_time_from_sec(1)
#define NOTICE_INTERVAL apr_time_from_sec(60)

/* The shared key of an answer: the location's policy fingerprint (when
 * given), the endpoint and everything that shapes the call or how long its
 * answer may be used (client, secret digest, method, parameter, cache
 * time), then the token. Every field is length-prefixed. */
#define KEY_FIELDS 7

typedef struct {
    mcp_bytes_t parts[1 + 2 * KEY_FIELDS]; /* the label, then a length and the bytes a field */
    uint64_t lens[KEY_FIELDS];
    size_t n, fields;
} key_input_t;

static void put_field(key_input_t *k, const void *data, size_t len)
{
    k->lens[k->fields] = len;
    k->parts[k->n++] = (mcp_bytes_t){&k->lens[k->fields++], sizeof(uint64_t)};
    k->parts[k->n++] = (mcp_bytes_t){data, len};
}

static void put_text(key_input_t *k, const char *s)
{
    put_field(k, s ? s : "", s ? strlen(s) + 1 : 0); /* NUL included: NULL and "" differ */
}

static void cache_key(const mcp_introspect_conf_t *c, const unsigned char *policy_fp, const char *url,
                      const char *token, size_t len, unsigned char key[32])
{
    key_input_t k = {{{"introspection-2", 15}}, {0}, 1, 0};
    unsigned char secret[32] = {0};
    int64_t num[3] = {(int64_t)c->auth, (int64_t)c->use_get, (int64_t)c->cache};

    if (c->client_secret)
        mcp_sha256(c->client_secret, strlen(c->client_secret), secret);
    put_field(&k, policy_fp ? policy_fp : secret, policy_fp ? 32 : 0);
    put_text(&k, url);
    put_text(&k, c->client_id);
    put_field(&k, secret, c->client_secret ? sizeof(secret) : 0);
    put_text(&k, c->param);
    put_field(&k, num, sizeof(num));
    put_field(&k, token, len);
    mcp_sha256_key(key, k.parts, k.n);
}

/* The URL for logs: never the query (GET mode carries the token there). */
static const char *loggable(apr_pool_t *p, const char *url)
{
    return mcp_printable(p, apr_pstrndup(p, url, strcspn(url, "?#")), 512);
}

static int unavailable(apr_pool_t *p, mcp_fail_t *fail, const char *url, const char *why)
{
    return mcp_fail(fail, MCP_FAIL_UNAVAILABLE, "Introspection failed",
                    apr_psprintf(p, "%s: %s", loggable(p, url), why));
}

/* One call to the endpoint. */
static int ask_once(apr_pool_t *p, const mcp_introspect_conf_t *c, const char *url, const mcp_http_opts_t *http,
                    const char *token, size_t len, json_t **result, mcp_fail_t *fail)
{
    const char *tok = mcp_form_encode(p, apr_pstrmemdup(p, token, len)), *param = c->param ? c->param : "token";
    const char *form = NULL, *authz = NULL, *target = url, *err;
    mcp_http_resp_t resp;
    json_t *doc;

    if (c->use_get) {
        target = apr_pstrcat(p, url, strchr(url, '?') ? "&" : "?", param, "=", tok, NULL);
    }
    else {
        form = apr_pstrcat(p, param, "=", tok, "&token_type_hint=access_token", NULL);
        if (c->auth == MCP_AUTH_POST)
            form = apr_pstrcat(p, form, "&client_id=", mcp_form_encode(p, c->client_id ? c->client_id : ""),
                               "&client_secret=", mcp_form_encode(p, c->client_secret ? c->client_secret : ""), NULL);
        else if (c->auth == MCP_AUTH_NONE && c->client_id)
            form = apr_pstrcat(p, form, "&client_id=", mcp_form_encode(p, c->client_id), NULL);
    }
    if (c->auth == MCP_AUTH_BASIC && c->client_id) {
        /* RFC 6749 2.3.1: id and secret are form-encoded before base64. */
        const char *pair = apr_pstrcat(p, mcp_form_encode(p, c->client_id), ":",
                                       mcp_form_encode(p, c->client_secret ? c->client_secret : ""), NULL);
        char *b64 = apr_palloc(p, apr_base64_encode_len((int)strlen(pair)));
        apr_base64_encode(b64, pair, (int)strlen(pair));
        authz = apr_pstrcat(p, "Basic ", b64, NULL);
    }
    if (mcp_http_request(p, target, http, form, authz, &resp, &err))
        return unavailable(p, fail, url, err);
    doc = mcp_json_parse(p, resp.body, resp.len);
    if (resp.status == 401 || resp.status == 403)
        return unavailable(p, fail, url,
                           apr_psprintf(p, "HTTP %ld: the IdP refused our client credentials (client_id %s)",
                                        resp.status, mcp_printable(p, c->client_id ? c->client_id : "(none)", 128)));
    if (resp.status == 400) {
        const char *e = json_is_object(doc) ? mcp_json_str(doc, "error") : NULL;
        if (e && (strcmp(e, "invalid_client") == 0 || strcmp(e, "unauthorized_client") == 0))
            return unavailable(p, fail, url,
                               apr_psprintf(p, "%s: check client_id %s and client_secret", e,
                                            mcp_printable(p, c->client_id ? c->client_id : "(none)", 128)));
        /* tokeninfo-style endpoints answer 400 for a token they do not know. */
        if (c->use_get) {
            *result = mcp_json_own(p, json_pack("{s:b}", "active", 0));
            return 0;
        }
        return unavailable(p, fail, url, apr_psprintf(p, "HTTP 400 %s", e ? mcp_printable(p, e, 64) : ""));
    }
    if (resp.status != 200)
        return unavailable(p, fail, url, apr_psprintf(p, "HTTP %ld", resp.status));
    if (!json_is_object(doc))
        return unavailable(p, fail, url, "the answer is not a JSON object");
    *result = doc;
    return 0;
}

/* ask_once, counted (metrics.h): ok is any answer, inactive included. */
static int ask(apr_pool_t *p, const mcp_introspect_conf_t *c, const char *url, const mcp_http_opts_t *http,
               const char *token, size_t len, json_t **result, mcp_fail_t *fail)
{
    int rc = ask_once(p, c, url, http, token, len, result, fail);
    mcp_metric_add(rc ? MCP_M_INTROSPECTION_FAILED : MCP_M_INTROSPECTION_OK, 1);
    return rc;
}

static apr_time_t keep_until(const mcp_introspect_conf_t *c, const json_t *result, apr_time_t now)
{
    json_t *exp = json_object_get(result, "exp");

    if (!json_is_true(json_object_get(result, "active")))
        return now + (c->cache < MCP_INTROSPECT_NEGATIVE_TTL ? c->cache : MCP_INTROSPECT_NEGATIVE_TTL);
    /* exp is the IdP's number, any double: mcp_time_cap range-checks it. */
    return json_is_number(exp) ? mcp_time_cap(now + c->cache, json_number_value(exp)) : now + c->cache;
}

/* ---- answers in the shared store ----------------------------------------- */

typedef struct {
    uint32_t parts;
    uint32_t pad;
    uint64_t len;
    unsigned char hash[32];
} split_head;

static void part_key(const unsigned char key[32], uint32_t i, unsigned char out[32])
{
    mcp_bytes_t parts[3] = {{"introspection-part", 18}, {key, 32}, {&i, sizeof(i)}};
    mcp_sha256_key(out, parts, 3);
}

static void remove_parts(mcp_store_t *st, const unsigned char key[32], uint32_t n)
{
    unsigned char pk[32];
    uint32_t i;
    for (i = 0; i < n; i++) {
        part_key(key, i, pk);
        mcp_store_remove(st, pk);
    }
}

/* The parts first, the head last (it replaces the "being asked" mark):
 * a reader that finds the head finds every part, or a hash mismatch. */
static int store_split(mcp_store_t *st, const unsigned char key[32], apr_time_t now, apr_time_t expires, unsigned flags,
                       const char *text, size_t len, int *evicted)
{
    size_t chunk = mcp_store_entry_capacity(st);
    mcp_entry_key_t head = {key, KIND_HEAD, expires, -1, 0};
    unsigned char pk[32];
    split_head h;
    uint32_t i, n;
    int ev;

    if (!chunk || (len + chunk - 1) / chunk > MAX_PARTS)
        return -1;
    n = (uint32_t)((len + chunk - 1) / chunk);
    for (i = 0; i < n; i++) {
        mcp_entry_key_t part = {pk, KIND_PART, expires, -1, 0};
        size_t off = (size_t)i * chunk;
        part_key(key, i, pk);
        if (mcp_store_put_ex(st, &part, now, text + off, len - off < chunk ? len - off : chunk, flags, &ev)) {
            remove_parts(st, key, i);
            return -1;
        }
        *evicted |= ev;
    }
    memset(&h, 0, sizeof(h));
    h.parts = n;
    h.len = len;
    mcp_sha256(text, len, h.hash);
    if (mcp_store_put_ex(st, &head, now, &h, sizeof(h), flags, &ev)) {
        remove_parts(st, key, n);
        return -1;
    }
    *evicted |= ev;
    return 0;
}

/* All or nothing: every part there, the length and the hash right. */
static char *read_split(mcp_store_t *st, const unsigned char key[32], apr_time_t now, apr_pool_t *p, const char *value,
                        size_t vlen, size_t *len)
{
    unsigned char pk[32], hash[32];
    split_head h;
    char *text;
    size_t off = 0;
    uint32_t i;

    if (vlen != sizeof(h))
        return NULL;
    memcpy(&h, value, sizeof(h));
    if (h.parts == 0 || h.parts > MAX_PARTS || h.len > (uint64_t)h.parts * mcp_store_entry_capacity(st))
        return NULL;
    text = apr_palloc(p, (size_t)h.len + 1);
    for (i = 0; i < h.parts; i++) {
        mcp_entry_key_t part = {pk, KIND_PART, 0, -1, 0};
        char *v;
        size_t n;
        part_key(key, i, pk);
        if (mcp_store_get(st, &part, now, p, &v, &n) || n > h.len - off)
            return NULL;
        memcpy(text + off, v, n);
        off += n;
    }
    if (off != h.len)
        return NULL;
    mcp_sha256(text, off, hash);
    if (memcmp(hash, h.hash, 32) != 0)
        return NULL;
    text[off] = '\0';
    *len = off;
    return text;
}

static int store_answer(mcp_store_t *st, const unsigned char key[32], apr_time_t now, apr_time_t expires,
                        unsigned flags, const char *text, size_t len, int *evicted)
{
    mcp_entry_key_t done = {key, KIND_RESULT, expires, -1, 0};
    *evicted = 0;
    if (len <= mcp_store_entry_capacity(st))
        return mcp_store_put_ex(st, &done, now, text, len, flags, evicted);
    return store_split(st, key, now, expires, flags, text, len, evicted);
}

typedef enum { SEEN_NOTHING, SEEN_ANSWER, SEEN_PENDING, SEEN_FAILED, SEEN_DIRECT } seen_t;

/* The value of a "being asked" or "failed" mark. */
typedef struct {
    uint64_t attempt;   /* random id of the call */
    int64_t hold_until; /* failed marks: everyone shares the failure until then */
} mark_t;

/* What the store holds for the key: an answer (*result, *valid_until),
 * a mark (*mark: the call a "being asked" or "failed" mark is about),
 * or nothing. A broken answer (a part evicted) is removed, so
 * the next caller asks instead of waiting for it. */
static seen_t look(mcp_store_t *st, const unsigned char key[32], apr_time_t now, apr_pool_t *p, json_t **result,
                   apr_time_t *valid_until, mark_t *mark)
{
    mcp_entry_meta_t meta;
    uint32_t kind;
    char *value, *text = NULL;
    size_t len, tlen = 0;

    if (mcp_store_get_any(st, key, now, p, &kind, &value, &len, &meta))
        return SEEN_NOTHING;
    memset(mark, 0, sizeof(*mark));
    if ((kind == KIND_PENDING || kind == KIND_FAILED) && len == sizeof(*mark))
        memcpy(mark, value, sizeof(*mark));
    switch (kind) {
    case KIND_PENDING:
        return SEEN_PENDING;
    case KIND_DIRECT:
        return SEEN_DIRECT;
    case KIND_FAILED:
        return SEEN_FAILED;
    case KIND_RESULT:
        text = value, tlen = len;
        break;
    case KIND_HEAD:
        text = read_split(st, key, now, p, value, len, &tlen);
        break;
    default:
        return SEEN_NOTHING;
    }
    *result = text ? mcp_json_parse(p, text, tlen) : NULL;
    if (!json_is_object(*result)) {
        mcp_store_remove(st, key);
        return SEEN_NOTHING;
    }
    *valid_until = meta.expires;
    return SEEN_ANSWER;
}

/* Any process that learns a token is inactive moves the revocation epoch:
 * every per-process copy of an earlier positive answer dies with it. */
static void note_answer(mcp_store_t *st, const json_t *result)
{
    if (!json_is_true(json_object_get(result, "active")))
        mcp_store_bump_epoch(st);
}

/* One warning per interval per process, not one per request. */
static int once_per(apr_time_t *last, apr_time_t now, apr_interval_time_t interval)
{
    apr_time_t seen = __atomic_load_n(last, __ATOMIC_RELAXED);
    if (seen && now - seen < interval)
        return 0;
    return __atomic_compare_exchange_n(last, &seen, now, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

static void warn_evictions(mcp_store_t *st, const mcp_log_t *log, apr_pool_t *p, apr_time_t now)
{
    mcp_store_stats_t d;
    if (!mcp_store_eviction_notice(st, now, NOTICE_INTERVAL, &d))
        return;
    mcp_logf(log, p, MCP_LOG_WARNING,
             "Token cache full: %llu live answers and %llu negative answers or \"being asked\" marks evicted, "
             "%llu of the latter not stored, in this process since the last warning; raise MCPAuthCacheEntries "
             "(now %u)",
             (unsigned long long)d.evicted_live, (unsigned long long)d.evicted_transient,
             (unsigned long long)d.refused_transient, mcp_store_entries(st));
}

static apr_time_t last_too_large;

/* The answer could not be stored: a short "ask directly" mark replaces
 * the "being asked" one at once, so nobody waits for an answer that will
 * never be there; every request for the token asks the IdP itself. */
static void not_cacheable(mcp_store_t *st, const mcp_introspect_conf_t *c, const unsigned char key[32], apr_time_t now,
                          size_t len, const mcp_log_t *log, apr_pool_t *p)
{
    apr_interval_time_t ttl = c->cache < MCP_INTROSPECT_NEGATIVE_TTL ? c->cache : MCP_INTROSPECT_NEGATIVE_TTL;
    mcp_entry_key_t direct = {key, KIND_DIRECT, now + ttl, -1, 0};
    int evicted;

    if (mcp_store_put_ex(st, &direct, now, "", 0, MCP_ENTRY_TRANSIENT, &evicted))
        mcp_store_remove(st, key);
    if (len > (size_t)MAX_PARTS * mcp_store_entry_capacity(st) && once_per(&last_too_large, now, NOTICE_INTERVAL))
        mcp_logf(log, p, MCP_LOG_WARNING,
                 "introspection answer of %lu bytes not cached (more than %d entries of MCPAuthCacheEntrySize): "
                 "each request for such a token asks the endpoint (logged once a minute)",
                 (unsigned long)len, MAX_PARTS);
}

/* The asker's call failed: the callers that saw its "being asked" mark
 * (same attempt id) read this one and answer 503 at once instead of each
 * asking in turn; a caller that comes later asks again. */
static void mark_failed(mcp_store_t *st, const unsigned char key[32], uint64_t attempt, int slow)
{
    apr_time_t now = apr_time_now();
    mcp_entry_key_t failed = {key, KIND_FAILED, now + FAILED_TTL, -1, 0};
    mark_t m = {attempt, slow ? now + SLOW_FAILURE_HOLD : 0};
    if (mcp_store_replace(st, &failed, now, &m, sizeof(m), MCP_ENTRY_TRANSIENT, KIND_PENDING) != 1)
        mcp_store_remove(st, key);
}

/* Ids of calls: random, so ids of different processes never meet (the
 * clock is too coarse to tell a waiter from a later caller). */
static uint64_t new_attempt(void)
{
    static uint64_t counter;
    uint64_t id = 0;
    if (RAND_bytes((unsigned char *)&id, sizeof(id)) != 1)
        id = (uint64_t)apr_time_now() ^ ((uint64_t)getpid() << 40);
    return (id ^ __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED)) | 1; /* never 0 */
}

/* The call with what is left of the request's budget (never more than
 * MCPAuthHTTPTimeout). */
static int ask_within(apr_pool_t *p, const mcp_introspect_conf_t *c, const char *url, const mcp_http_opts_t *http,
                      const char *token, size_t len, apr_time_t budget_end, json_t **result, mcp_fail_t *fail)
{
    mcp_http_opts_t o = *http;
    long left = (long)apr_time_sec(budget_end - apr_time_now());
    if (left < o.timeout_s)
        o.timeout_s = left;
    if (o.timeout_s < 1)
        return unavailable(p, fail, url, "no time left to ask (waited for another process's call)");
    return ask(p, c, url, &o, token, len, result, fail);
}

/* Stores the answer (split when large) or, when it cannot be stored,
 * leaves the "ask directly" mark. */
static void keep_answer(mcp_store_t *st, const mcp_introspect_conf_t *c, const unsigned char key[32], int claimed,
                        const json_t *result, apr_time_t cap, const mcp_log_t *log, apr_pool_t *p,
                        apr_time_t *valid_until)
{
    apr_time_t now = apr_time_now(), expires = keep_until(c, result, now);

    /* An answer from the fleet's cache lives no longer there than it does
     * in the entry another node wrote. */
    if (cap && cap < expires)
        expires = cap;
    const char *text = mcp_json_compact(p, result);
    unsigned flags = json_is_true(json_object_get(result, "active")) ? 0 : MCP_ENTRY_TRANSIENT;
    int evicted;

    if (expires > now && text) {
        if (store_answer(st, key, now, expires, flags, text, strlen(text), &evicted) == 0)
            *valid_until = expires;
        else
            not_cacheable(st, c, key, now, strlen(text), log, p);
    }
    else if (claimed) {
        mcp_store_remove(st, key);
    }
    warn_evictions(st, log, p, now);
}

/* The fleet's cache, between this node's store and the IdP: 1 when it
 * had the answer (kept here too), 0 when the IdP is to be asked (*mark:
 * this node's "being asked" mark there). Another node's call is waited for
 * at most half of MCPAuthHTTPTimeout, so the call of our own still fits. */
static int from_fleet(mcp_remote_t *remote, mcp_store_t *st, const mcp_introspect_conf_t *c,
                      const unsigned char key[32], int claimed, const mcp_http_opts_t *http, apr_time_t budget_end,
                      const mcp_log_t *log, apr_pool_t *p, json_t **result, apr_time_t *valid_until, uint64_t *mark)
{
    apr_time_t now = apr_time_now(), wait_end = now + apr_time_from_sec(http->timeout_s) / 2, expires;

    if (wait_end > budget_end)
        wait_end = budget_end;
    if (!mcp_introspect_remote_find(remote, key, wait_end, now + mcp_http_lease(http, 1), p, log, result, &expires,
                                    mark))
        return 0;
    keep_answer(st, c, key, claimed, *result, expires, log, p, valid_until);
    return 1;
}

int mcp_introspect(apr_pool_t *p, mcp_store_t *st, mcp_remote_t *remote, const mcp_introspect_conf_t *c,
                   const unsigned char *policy_fp, const char *url, const mcp_http_opts_t *http, const char *token,
                   size_t len, const mcp_log_t *log, json_t **result, apr_time_t *valid_until, mcp_fail_t *fail)
{
    uint64_t remote_mark = 0;
    unsigned char key[32];
    apr_time_t start = apr_time_now(), now = start, budget_end;
    mcp_entry_key_t pending = {key, KIND_PENDING, 0, -1, 0};
    uint64_t waited_for = 0;
    mark_t mark, mine = {0, 0};
    int claimed = 0, rc;

    *valid_until = 0;
    if (!st || c->cache <= 0) {
        if (ask(p, c, url, http, token, len, result, fail))
            return -1;
        note_answer(st, *result);
        return 0;
    }
    cache_key(c, policy_fp, url, token, len, key);
    /* One process asks; the others wait for its answer, its failure or an
     * "ask directly" mark -- the whole wait, own call included, bounded by
     * the timeout and a margin. */
    budget_end = mcp_http_wait_end(http, start) + WAIT_MARGIN;
    for (;;) {
        seen_t seen = look(st, key, now, p, result, valid_until, &mark);
        /* The asker's mark outlives its one call: a crashed asker delays
         * the next ones, never blocks them. */
        pending.expires = now + mcp_http_lease(http, 1);
        if (seen == SEEN_ANSWER) {
            mcp_metric_add(MCP_M_CACHE_SHM_HIT, 1);
            return 0;
        }
        if (seen == SEEN_DIRECT)
            break;
        if (seen == SEEN_PENDING)
            waited_for = mark.attempt;
        if (seen == SEEN_FAILED && ((waited_for && mark.attempt == waited_for) || now < mark.hold_until))
            return unavailable(p, fail, url, "the call another process made for this token failed just now");
        if (seen == SEEN_FAILED || seen == SEEN_NOTHING) {
            /* A failure this request did not wait for is replaced like an
             * empty slot: this request asks again. */
            mine.attempt = new_attempt();
            rc = mcp_store_replace(st, &pending, now, &mine, sizeof(mine), MCP_ENTRY_TRANSIENT,
                                   seen == SEEN_FAILED ? KIND_FAILED : 0);
            if (rc != 0) {
                claimed = rc == 1; /* -1: no room for the mark: ask anyway */
                break;
            }
        }
        if (mcp_stopping())
            return unavailable(p, fail, url, "the server is stopping");
        if (now + POLL >= budget_end)
            return unavailable(p, fail, url, "timed out waiting for another process's call for this token");
        apr_sleep(POLL);
        now = apr_time_now();
    }
    if (remote &&
        from_fleet(remote, st, c, key, claimed, http, budget_end, log, p, result, valid_until, &remote_mark)) {
        note_answer(st, *result);
        return 0;
    }
    mcp_metric_add(MCP_M_CACHE_MISS, 1);
    now = apr_time_now();
    if (ask_within(p, c, url, http, token, len, budget_end, result, fail)) {
        if (claimed)
            mark_failed(st, key, mine.attempt, apr_time_now() - now >= apr_time_from_sec(http->timeout_s) / 2);
        mcp_introspect_remote_failed(remote, key, remote_mark, p, log);
        return -1;
    }
    keep_answer(st, c, key, claimed, *result, 0, log, p, valid_until);
    if (remote)
        mcp_introspect_remote_keep(remote, key, *result, keep_until(c, *result, apr_time_now()), p, log);
    /* After the store: a process that reads the new epoch then finds the
     * negative answer, never the positive one it replaced. */
    note_answer(st, *result);
    return 0;
}

int mcp_introspect_check(apr_pool_t *p, const json_t *result, const mcp_verify_policy_t *pol, int *issuer_index,
                         mcp_fail_t *fail)
{
    mcp_claim_policy_t rules = pol->claims;
    const char *iss = mcp_json_str(result, "iss");
    int i;

    *issuer_index = -1;
    if (!json_is_true(json_object_get(result, "active")))
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Token inactive", "introspection: active is not true");
    if (json_object_get(result, "iss")) {
        for (i = 0; iss && i < pol->n_issuers; i++)
            if (mcp_issuer_matches(&pol->issuers[i], iss))
                *issuer_index = i;
        if (*issuer_index < 0)
            return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Invalid issuer",
                            apr_psprintf(p, "introspection iss %s is not a configured issuer",
                                         mcp_printable(p, iss ? iss : "(not a string)", 256)));
    }
    /* Introspection answers need not carry exp or aud; when they do, the
     * same rules as for a JWT apply. */
    rules.exp_optional = 1;
    if (!json_object_get(result, "aud"))
        rules.n_audiences = 0;
    return mcp_claims_check(p, result, &rules, fail);
}
