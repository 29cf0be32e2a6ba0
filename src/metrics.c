/* SPDX-License-Identifier: Apache-2.0 */
#include "metrics.h"

#include <apr_strings.h>
#include <apr_tables.h>
#include <string.h>

/* Upper bounds of the latency buckets, in microseconds (the exposition
 * shows seconds); the last bucket, +Inf, follows them. */
static const apr_interval_time_t bucket_le[] = {5000,   10000,   25000,   50000,   100000,  250000,
                                                500000, 1000000, 2500000, 5000000, 10000000};
#define N_BUCKETS (sizeof(bucket_le) / sizeof(bucket_le[0]))
/* The same bounds as the exposition writes them (le="0.05"). */
static const char *const bucket_label[N_BUCKETS] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                                    "0.5",   "1",    "2.5",   "5",    "10"};

/* Bumped whenever the layout below changes meaning: a graceful restart
 * into another module version must not read old counters under new names. */
#define LAYOUT_VERSION 1

typedef struct {
    uint64_t magic;
    uint64_t c[MCP_M_COUNT];
    uint64_t req[MCP_OUTCOME_COUNT][MCP_R_COUNT];
    uint64_t bucket[MCP_CALL_KINDS][N_BUCKETS + 1]; /* one per observation, not cumulative */
    uint64_t sum_us[MCP_CALL_KINDS];
} block_t;

#define MAGIC (((uint64_t)0x6d6370u << 40) | ((uint64_t)LAYOUT_VERSION << 32) | (uint64_t)sizeof(block_t))

/* Process-local until the shared block is attached (unit tests, the
 * parent before post_config). */
static block_t local;
static block_t *blk = &local;

size_t mcp_metrics_block_size(void)
{
    return sizeof(block_t);
}

void mcp_metrics_attach(void *block)
{
    block_t *b = block;
    if (!b)
        return;
    if (__atomic_load_n(&b->magic, __ATOMIC_ACQUIRE) != MAGIC) {
        memset(b, 0, sizeof(*b));
        __atomic_store_n(&b->magic, MAGIC, __ATOMIC_RELEASE);
    }
    blk = b;
}

void mcp_metric_add(mcp_metric m, uint64_t n)
{
    if ((unsigned)m < MCP_M_COUNT)
        __atomic_fetch_add(&blk->c[m], n, __ATOMIC_RELAXED);
}

uint64_t mcp_metric_get(mcp_metric m)
{
    return (unsigned)m < MCP_M_COUNT ? __atomic_load_n(&blk->c[m], __ATOMIC_RELAXED) : 0;
}

void mcp_metric_request(mcp_outcome o, mcp_reason r)
{
    if ((unsigned)o < MCP_OUTCOME_COUNT && (unsigned)r < MCP_R_COUNT)
        __atomic_fetch_add(&blk->req[o][r], 1, __ATOMIC_RELAXED);
}

uint64_t mcp_metric_requests(mcp_outcome o, mcp_reason r)
{
    if ((unsigned)o < MCP_OUTCOME_COUNT && (unsigned)r < MCP_R_COUNT)
        return __atomic_load_n(&blk->req[o][r], __ATOMIC_RELAXED);
    return 0;
}

void mcp_metric_observe(mcp_call_kind k, apr_interval_time_t t)
{
    unsigned i = 0;
    if ((unsigned)k >= MCP_CALL_KINDS)
        return;
    if (t < 0)
        t = 0;
    while (i < N_BUCKETS && t > bucket_le[i])
        i++;
    __atomic_fetch_add(&blk->bucket[k][i], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&blk->sum_us[k], (uint64_t)t, __ATOMIC_RELAXED);
}

/* ---- names ------------------------------------------------------------- */

static const char *const outcome_names[MCP_OUTCOME_COUNT] = {
    "accepted",           "no_token",  "invalid_request", "invalid_token",
    "insufficient_scope", "forbidden", "unavailable",     "config"};

static const char *const reason_slugs[MCP_R_COUNT] = {"none",
                                                      "malformed_header",
                                                      "multiple_tokens",
                                                      "too_large",
                                                      "malformed",
                                                      "unsupported_header",
                                                      "encrypted",
                                                      "algorithm_not_allowed",
                                                      "invalid_type",
                                                      "unknown_kid",
                                                      "ambiguous_kid",
                                                      "key_mismatch",
                                                      "invalid_signature",
                                                      "invalid_issuer",
                                                      "invalid_audience",
                                                      "missing_claims",
                                                      "expired",
                                                      "not_yet_valid",
                                                      "issued_in_future",
                                                      "inactive",
                                                      "jwks_unavailable",
                                                      "introspection_unavailable",
                                                      "no_keys",
                                                      "no_issuer",
                                                      "step_up",
                                                      "tool_scope",
                                                      "jsonrpc",
                                                      "header_mismatch",
                                                      "origin",
                                                      "rule",
                                                      "other"};

/* The fixed reason texts of mcp_fail_t (grep `mcp_fail(fail, MCP_FAIL_`)
 * and their slugs. A text missing here is counted as "other": add it. */
static const struct {
    const char *text;
    mcp_reason slug;
} reason_table[] = {
    {"No bearer token", MCP_R_NONE},
    {"Empty bearer token", MCP_R_MALFORMED_HEADER},
    {"Malformed Authorization header", MCP_R_MALFORMED_HEADER},
    {"Malformed token header", MCP_R_MALFORMED_HEADER},
    {"More than one Authorization header", MCP_R_MULTIPLE_TOKENS},
    {"More than one token header", MCP_R_MULTIPLE_TOKENS},
    {"Token in more than one header", MCP_R_MULTIPLE_TOKENS},
    {"Token too large", MCP_R_TOO_LARGE},
    {"Malformed token", MCP_R_MALFORMED},
    {"Unsupported crit header", MCP_R_UNSUPPORTED_HEADER},
    {"Unsupported b64 header", MCP_R_UNSUPPORTED_HEADER},
    {"Encrypted tokens (JWE) are not accepted", MCP_R_ENCRYPTED},
    {"Algorithm not allowed", MCP_R_ALGORITHM_NOT_ALLOWED},
    {"Invalid token type", MCP_R_INVALID_TYPE},
    {"Unknown key id", MCP_R_UNKNOWN_KID},
    {"Ambiguous key id", MCP_R_AMBIGUOUS_KID},
    {"Key does not fit algorithm", MCP_R_KEY_MISMATCH},
    {"Invalid signature", MCP_R_INVALID_SIGNATURE},
    {"Invalid issuer", MCP_R_INVALID_ISSUER},
    {"Invalid audience", MCP_R_INVALID_AUDIENCE},
    {"Missing required claims", MCP_R_MISSING_CLAIMS},
    {"Token expired", MCP_R_EXPIRED},
    {"Token not yet valid", MCP_R_NOT_YET_VALID},
    {"Token issued in the future", MCP_R_ISSUED_IN_FUTURE},
    {"Token inactive", MCP_R_INACTIVE},
    {"JWKS fetch failed", MCP_R_JWKS_UNAVAILABLE},
    {"Introspection failed", MCP_R_INTROSPECTION_UNAVAILABLE},
    {"No keys configured", MCP_R_NO_KEYS},
    {"No issuer configured", MCP_R_NO_ISSUER},
    {"Insufficient scope", MCP_R_STEP_UP},
};

mcp_reason mcp_reason_of(const char *fixed_reason)
{
    size_t i;
    if (!fixed_reason)
        return MCP_R_OTHER;
    for (i = 0; i < sizeof(reason_table) / sizeof(reason_table[0]); i++)
        if (strcmp(fixed_reason, reason_table[i].text) == 0)
            return reason_table[i].slug;
    return MCP_R_OTHER;
}

const char *mcp_reason_slug(mcp_reason r)
{
    return (unsigned)r < MCP_R_COUNT ? reason_slugs[r] : "other";
}

const char *mcp_outcome_name(mcp_outcome o)
{
    return (unsigned)o < MCP_OUTCOME_COUNT ? outcome_names[o] : "other";
}

/* ---- rendering ----------------------------------------------------------- */

static uint64_t load(const uint64_t *w)
{
    return __atomic_load_n(w, __ATOMIC_RELAXED);
}

/* The simple counters: exposition name, label text, enum member. */
static const struct {
    const char *name, *labels, *status_key;
    mcp_metric m;
} simple[] = {
    {"mcp_auth_cache_hits_total", "level=\"l1\"", "MCPAuthCacheHitsL1", MCP_M_CACHE_L1_HIT},
    {"mcp_auth_cache_hits_total", "level=\"shm\"", "MCPAuthCacheHitsShm", MCP_M_CACHE_SHM_HIT},
    {"mcp_auth_cache_hits_total", "level=\"remote\"", "MCPAuthCacheHitsRemote", MCP_M_CACHE_REMOTE_HIT},
    {"mcp_auth_cache_misses_total", NULL, "MCPAuthCacheMisses", MCP_M_CACHE_MISS},
    {"mcp_auth_remote_cache_total", "result=\"miss\"", "MCPAuthRemoteCacheMisses", MCP_M_REMOTE_MISS},
    {"mcp_auth_remote_cache_total", "result=\"error\"", "MCPAuthRemoteCacheErrors", MCP_M_REMOTE_ERROR},
    {"mcp_auth_remote_cache_total", "result=\"store\"", "MCPAuthRemoteCacheStores", MCP_M_REMOTE_STORE},
    {"mcp_auth_cache_evictions_total", NULL, "MCPAuthCacheEvictions", MCP_M_CACHE_EVICTION},
    {"mcp_auth_idp_fetches_total", "kind=\"jwks\",result=\"ok\"", "MCPAuthJwksFetchesOk", MCP_M_JWKS_FETCH_OK},
    {"mcp_auth_idp_fetches_total", "kind=\"jwks\",result=\"failed\"", "MCPAuthJwksFetchesFailed",
     MCP_M_JWKS_FETCH_FAILED},
    {"mcp_auth_idp_fetches_total", "kind=\"discovery\",result=\"ok\"", "MCPAuthDiscoveryFetchesOk",
     MCP_M_DISCOVERY_FETCH_OK},
    {"mcp_auth_idp_fetches_total", "kind=\"discovery\",result=\"failed\"", "MCPAuthDiscoveryFetchesFailed",
     MCP_M_DISCOVERY_FETCH_FAILED},
    {"mcp_auth_introspection_calls_total", "result=\"ok\"", "MCPAuthIntrospectionsOk", MCP_M_INTROSPECTION_OK},
    {"mcp_auth_introspection_calls_total", "result=\"failed\"", "MCPAuthIntrospectionsFailed",
     MCP_M_INTROSPECTION_FAILED},
};

static const struct {
    const char *name, *help;
} families[] = {
    {"mcp_auth_cache_hits_total", "Verdict cache hits by level (l1: this process, shm: shared memory, remote)."},
    {"mcp_auth_cache_misses_total", "Tokens no cache level had: verified or introspected anew."},
    {"mcp_auth_remote_cache_total", "Remote cache (MCPAuthSharedCache) misses, errors and stores."},
    {"mcp_auth_cache_evictions_total", "Live entries pushed out of the full shared-memory cache."},
    {"mcp_auth_idp_fetches_total", "JWKS and discovery document fetches from the IdP by result."},
    {"mcp_auth_introspection_calls_total", "Token introspection calls to the IdP by result."},
};

static const char *const kind_names[MCP_CALL_KINDS] = {"document", "introspection"};

static void help_type(apr_array_header_t *out, apr_pool_t *p, const char *name, const char *help, const char *type)
{
    APR_ARRAY_PUSH(out, const char *) = apr_psprintf(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *secs(apr_pool_t *p, uint64_t us)
{
    return apr_psprintf(p, "%" APR_UINT64_T_FMT ".%06" APR_UINT64_T_FMT, us / 1000000, us % 1000000);
}

static void render_requests(apr_array_header_t *out, apr_pool_t *p)
{
    unsigned o, r;
    help_type(out, p, "mcp_auth_requests_total",
              "Requests the module decided, by outcome (accepted or the refusal) and reason.", "counter");
    for (o = 0; o < MCP_OUTCOME_COUNT; o++)
        for (r = 0; r < MCP_R_COUNT; r++) {
            uint64_t v = load(&blk->req[o][r]);
            /* Combinations that never happened stay out, but accepted is
             * always there (a rate of zero is a figure too). */
            if (v || (o == MCP_OUTCOME_ACCEPTED && r == MCP_R_NONE))
                APR_ARRAY_PUSH(out, const char *) =
                    apr_psprintf(p, "mcp_auth_requests_total{outcome=\"%s\",reason=\"%s\"} %" APR_UINT64_T_FMT "\n",
                                 outcome_names[o], reason_slugs[r], v);
        }
}

static void render_histogram(apr_array_header_t *out, apr_pool_t *p)
{
    const char *name = "mcp_auth_outbound_request_duration_seconds";
    unsigned k, i;
    help_type(out, p, name, "Duration of calls to the IdP (documents: discovery and JWKS; introspection).",
              "histogram");
    for (k = 0; k < MCP_CALL_KINDS; k++) {
        uint64_t cum = 0;
        for (i = 0; i <= N_BUCKETS; i++) {
            cum += load(&blk->bucket[k][i]);
            APR_ARRAY_PUSH(out, const char *) =
                apr_psprintf(p, "%s_bucket{kind=\"%s\",le=\"%s\"} %" APR_UINT64_T_FMT "\n", name, kind_names[k],
                             i < N_BUCKETS ? bucket_label[i] : "+Inf", cum);
        }
        APR_ARRAY_PUSH(out, const char *) =
            apr_psprintf(p, "%s_sum{kind=\"%s\"} %s\n%s_count{kind=\"%s\"} %" APR_UINT64_T_FMT "\n", name,
                         kind_names[k], secs(p, load(&blk->sum_us[k])), name, kind_names[k], cum);
    }
}

char *mcp_metrics_render(apr_pool_t *p, const mcp_metrics_gauges_t *g)
{
    apr_array_header_t *out = apr_array_make(p, 128, sizeof(const char *));
    size_t f, i;

    render_requests(out, p);
    for (f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
        help_type(out, p, families[f].name, families[f].help, "counter");
        for (i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
            if (strcmp(simple[i].name, families[f].name) == 0)
                APR_ARRAY_PUSH(out, const char *) = apr_psprintf(
                    p, "%s%s%s%s %" APR_UINT64_T_FMT "\n", simple[i].name, simple[i].labels ? "{" : "",
                    simple[i].labels ? simple[i].labels : "", simple[i].labels ? "}" : "", mcp_metric_get(simple[i].m));
    }
    render_histogram(out, p);
    if (g && g->have_store) {
        help_type(out, p, "mcp_auth_cache_entries", "Live entries in the shared-memory cache now.", "gauge");
        APR_ARRAY_PUSH(out, const char *) = apr_psprintf(p, "mcp_auth_cache_entries %u\n", g->entries);
        help_type(out, p, "mcp_auth_cache_capacity",
                  "Entries the shared-memory cache can hold (small verdicts share slots).", "gauge");
        APR_ARRAY_PUSH(out, const char *) = apr_psprintf(p, "mcp_auth_cache_capacity %u\n", g->capacity);
    }
    return apr_array_pstrcat(p, out, 0);
}

/* ---- mod_status ---------------------------------------------------------- */

static void status_line(apr_array_header_t *out, apr_pool_t *p, int html, const char *key, uint64_t v)
{
    APR_ARRAY_PUSH(out, const char *) =
        html ? apr_psprintf(p, "<tr><td>%s</td><td>%" APR_UINT64_T_FMT "</td></tr>\n", key, v)
             : apr_psprintf(p, "%s: %" APR_UINT64_T_FMT "\n", key, v);
}

/* Keys as mod_status writes them (CamelCase words, no spaces): the slugs
 * are fixed, so nothing needs escaping in the HTML either. */
char *mcp_metrics_render_status(apr_pool_t *p, const mcp_metrics_gauges_t *g, int html)
{
    apr_array_header_t *out = apr_array_make(p, 64, sizeof(const char *));
    uint64_t by_outcome[MCP_OUTCOME_COUNT] = {0};
    unsigned o, r, k, i;

    if (html)
        APR_ARRAY_PUSH(out, const char *) = "<hr />\n<h2>mod_mcp_auth</h2>\n<table border=\"0\">\n";
    for (o = 0; o < MCP_OUTCOME_COUNT; o++) {
        for (r = 0; r < MCP_R_COUNT; r++)
            by_outcome[o] += load(&blk->req[o][r]);
        status_line(out, p, html, apr_pstrcat(p, "MCPAuthRequests_", outcome_names[o], NULL), by_outcome[o]);
    }
    for (i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
        status_line(out, p, html, simple[i].status_key, mcp_metric_get(simple[i].m));
    }
    for (k = 0; k < MCP_CALL_KINDS; k++) {
        uint64_t n = 0;
        for (i = 0; i <= N_BUCKETS; i++)
            n += load(&blk->bucket[k][i]);
        status_line(out, p, html, apr_pstrcat(p, "MCPAuthOutboundCalls_", kind_names[k], NULL), n);
        status_line(out, p, html, apr_pstrcat(p, "MCPAuthOutboundMicroseconds_", kind_names[k], NULL),
                    load(&blk->sum_us[k]));
    }
    if (g && g->have_store) {
        status_line(out, p, html, "MCPAuthCacheEntries", g->entries);
        status_line(out, p, html, "MCPAuthCacheCapacity", g->capacity);
    }
    if (html)
        APR_ARRAY_PUSH(out, const char *) = "</table>\n";
    return apr_array_pstrcat(p, out, 0);
}

/* ---- audit values -------------------------------------------------------- */

/* Bytes an audit value keeps as they are: printable ASCII but '%' (a
 * GNU range designator: the build is gnu11, clang reads it too). */
static const unsigned char keep[256] = {[' ' ... '$'] = 1, ['&' ... '~'] = 1};

static int log_safe(unsigned char c, const char *also)
{
    return keep[c] && !(also && strchr(also, c));
}

int mcp_audit_clean(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    if (!u)
        return 1;
    while (keep[*u])
        u++;
    return *u == '\0';
}

const char *mcp_audit_value(apr_pool_t *p, const char *s, const char *also)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = 0, i;
    char *out, *w;

    if (!s)
        return NULL;
    /* The common case -- a clean value, nothing extra to encode -- in one
     * pass without a copy (every accepted request logs three of them). */
    if (!also) {
        for (i = 0; u[i]; i++)
            if (!keep[u[i]])
                break;
        if (!u[i])
            return s;
    }
    for (i = 0; u[i]; i++)
        n += !log_safe(u[i], also);
    if (!n)
        return s;
    out = w = apr_palloc(p, i + 2 * n + 1);
    for (i = 0; u[i]; i++) {
        if (log_safe(u[i], also)) {
            *w++ = (char)u[i];
            continue;
        }
        *w++ = '%';
        *w++ = "0123456789ABCDEF"[u[i] >> 4];
        *w++ = "0123456789ABCDEF"[u[i] & 15];
    }
    *w = '\0';
    return out;
}
