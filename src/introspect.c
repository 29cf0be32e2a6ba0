#include "introspect.h"

#include <apr_base64.h>
#include <apr_strings.h>
#include <math.h>
#include <openssl/evp.h>
#include <string.h>

#include "claim_rules.h"
#include "json_util.h"
#include "verdict.h"

#define KIND_RESULT 0x494e5431u  /* "INT1": the endpoint's answer */
#define KIND_PENDING 0x494e5450u /* "INTP": a process is asking right now */

/* The shared key of an answer: the location's policy fingerprint (when
 * given), the endpoint and everything that shapes the call or how long its
 * answer may be used (client, secret digest, method, parameter, cache
 * time), then the token. Every field is length-prefixed. */
static void put_field(EVP_MD_CTX *m, const void *data, size_t len)
{
    uint64_t n = len;
    EVP_DigestUpdate(m, &n, sizeof(n));
    EVP_DigestUpdate(m, data, len);
}

static void put_text(EVP_MD_CTX *m, const char *s)
{
    put_field(m, s ? s : "", s ? strlen(s) + 1 : 0); /* NUL included: NULL and "" differ */
}

static void cache_key(const mcp_introspect_conf_t *c, const unsigned char *policy_fp, const char *url,
                      const char *token, size_t len, unsigned char key[32])
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned char secret[32] = {0};
    int64_t num[3] = {(int64_t)c->auth, (int64_t)c->use_get, (int64_t)c->cache};

    if (c->client_secret)
        EVP_Digest(c->client_secret, strlen(c->client_secret), secret, NULL, EVP_sha256(), NULL);
    EVP_DigestInit_ex(m, EVP_sha256(), NULL);
    EVP_DigestUpdate(m, "introspection-2", 15);
    put_field(m, policy_fp ? policy_fp : secret, policy_fp ? 32 : 0);
    put_text(m, url);
    put_text(m, c->client_id);
    put_field(m, secret, c->client_secret ? sizeof(secret) : 0);
    put_text(m, c->param);
    put_field(m, num, sizeof(num));
    put_field(m, token, len);
    EVP_DigestFinal_ex(m, key, NULL);
    EVP_MD_CTX_free(m);
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
static int ask(apr_pool_t *p, const mcp_introspect_conf_t *c, const char *url, const mcp_http_opts_t *http,
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
                               "&client_secret=", mcp_form_encode(p, c->client_secret ? c->client_secret : ""),
                               NULL);
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

static apr_time_t keep_until(const mcp_introspect_conf_t *c, const json_t *result, apr_time_t now)
{
    json_t *exp = json_object_get(result, "exp");

    if (!json_is_true(json_object_get(result, "active")))
        return now + (c->cache < MCP_INTROSPECT_NEGATIVE_TTL ? c->cache : MCP_INTROSPECT_NEGATIVE_TTL);
    /* exp is the IdP's number, any double: mcp_time_cap range-checks it. */
    return json_is_number(exp) ? mcp_time_cap(now + c->cache, json_number_value(exp)) : now + c->cache;
}

static int cached(mcp_store_t *st, const unsigned char key[32], apr_time_t now, apr_pool_t *p, json_t **result,
                  apr_time_t *valid_until)
{
    mcp_entry_key_t k = {key, KIND_RESULT, 0, -1, 0};
    mcp_entry_meta_t meta;
    char *value;
    size_t len;
    if (mcp_store_get_meta(st, &k, now, p, &value, &len, &meta))
        return -1;
    *result = mcp_json_parse(p, value, len);
    if (!json_is_object(*result))
        return -1;
    *valid_until = meta.expires;
    return 0;
}

/* Any process that learns a token is inactive moves the revocation epoch:
 * every per-process copy of an earlier positive answer dies with it. */
static void note_answer(mcp_store_t *st, const json_t *result)
{
    if (!json_is_true(json_object_get(result, "active")))
        mcp_store_bump_epoch(st);
}

int mcp_introspect(apr_pool_t *p, mcp_store_t *st, const mcp_introspect_conf_t *c, const unsigned char *policy_fp,
                   const char *url, const mcp_http_opts_t *http, const char *token, size_t len, const mcp_log_t *log,
                   json_t **result, apr_time_t *valid_until, mcp_fail_t *fail)
{
    unsigned char key[32];
    apr_time_t now = apr_time_now(), deadline;
    apr_interval_time_t lease = apr_time_from_sec(http->timeout_s * 2 + 1);
    mcp_entry_key_t pending = {key, KIND_PENDING, 0, -1, 0}, done = {key, KIND_RESULT, 0, -1, 0};
    const char *text;
    int claimed = 0;

    *valid_until = 0;
    if (!st || c->cache <= 0) {
        if (ask(p, c, url, http, token, len, result, fail))
            return -1;
        note_answer(st, *result);
        return 0;
    }
    cache_key(c, policy_fp, url, token, len, key);
    if (cached(st, key, now, p, result, valid_until) == 0)
        return 0;
    /* One process asks; the others wait for its answer, bounded by the
     * lease (a crashed asker only delays them, never blocks them). */
    deadline = now + lease + apr_time_from_sec(1);
    for (;;) {
        pending.expires = now + lease;
        if (mcp_store_add(st, &pending, now, "", 0) != 0) {
            claimed = 1; /* ours, or no room in the store: ask anyway */
            break;
        }
        apr_sleep(apr_time_from_msec(20));
        now = apr_time_now();
        if (cached(st, key, now, p, result, valid_until) == 0)
            return 0;
        if (now > deadline)
            break;
    }
    if (ask(p, c, url, http, token, len, result, fail)) {
        if (claimed)
            mcp_store_remove(st, key);
        return -1;
    }
    now = apr_time_now();
    done.expires = keep_until(c, *result, now);
    text = mcp_json_compact(p, *result);
    if (done.expires > now && text) {
        int evicted;
        if (mcp_store_put(st, &done, now, text, strlen(text), &evicted))
            mcp_logf(log, p, MCP_LOG_DEBUG, "introspection result of %lu bytes not cached (MCPAuthCacheEntrySize)",
                     (unsigned long)strlen(text));
        else
            *valid_until = done.expires;
    }
    else if (claimed) {
        mcp_store_remove(st, key);
    }
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
            if (pol->issuers[i].issuer && strcmp(pol->issuers[i].issuer, iss) == 0)
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
