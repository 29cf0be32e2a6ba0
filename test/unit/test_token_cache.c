/* SPDX-License-Identifier: Apache-2.0 */
/* token_cache.c. The policy fingerprint that keys both verdict-cache levels (issue 10,
 * item 3): every member of every struct that describes a location's policy
 * changes it when flipped alone, content (never addresses) decides, and a
 * member added to one of these structs without being added to the
 * fingerprint and to this file fails here.
 *
 * How a new member is caught. Each struct has a table below listing every
 * member with offsetof/sizeof/_Alignof and either a flip (a function that
 * changes only that member) or the written reason it is not part of the
 * fingerprint. Two checks keep the table complete:
 *  1. layout: sorted by offset, the listed members must tile the struct --
 *     each starts exactly where the previous one ends, rounded up to its
 *     own alignment, and the last one ends where sizeof rounds up to the
 *     struct's alignment. A member added anywhere shifts a listed offset or
 *     the size, leaving a gap no listed member explains: the test fails.
 *  2. source: a member small enough to hide in alignment padding would
 *     not move anything, so the test also reads the struct's definition in
 *     src/ and requires the listed names to be exactly the declared ones.
 * Then every flip must change the fingerprint.
 *
 * Below the fingerprint: the shared cache of verdicts (put/get, never
 * past exp, the key depends on the rules, a hit carries its generation). */
#include "test_util.h"

#include <apr_tables.h>
#include <ctype.h>

#include "introspect.h"
#include "policy_memo.h"
#include "token_cache.h"
#include "verifier.h"
#include "l1_cache.h"

#include "store_util.h"

#define SRC_DIR VECTOR_DIR "/../../../src"

/* ---- a policy with every member set ----------------------------------------- */

typedef struct {
    apr_pool_t *p;
    mcp_trusted_issuer_t issuers[2], other_issuers[2];
    mcp_verify_policy_t pol, other_pol;
    mcp_introspect_conf_t intro;
    mcp_cache_policy_t cp;
    mcp_jwks_t fixed;
    mcp_jwk_t *fixed_keys[1];
} fixture_t;

static int ring_a, ring_b; /* stand-ins: the fingerprint never dereferences a ring */

static const char *const AUD[] = {"https://mcp.example/api"}, *const AUD2[] = {"https://other.example/api"};

static const char *const REQ[] = {"sub"}, *const REQ2[] = {"email"};

static const char *const ALIASES[] = {"idp.example"}, *const ALIASES2[] = {"idp.example.org"};

static mcp_jwk_t *secret_key(apr_pool_t *p, const char *s)
{
    return mcp_jwk_from_secret(p, (const unsigned char *)s, strlen(s));
}

static void baseline(apr_pool_t *p, fixture_t *f)
{
    memset(f, 0, sizeof(*f));
    f->p = p;
    /* issuer 0: a jwks_file; issuer 1: discovered keys. */
    f->issuers[0].issuer = "https://idp.example";
    f->issuers[0].ring = (mcp_keyring_t *)&ring_a;
    f->issuers[0].introspection_endpoint = "https://idp.example/introspect";
    f->issuers[0].jwks_file = "/etc/mcp/dev.json";
    memset(f->issuers[0].jwks_file_sha256, 0xd1, 32);
    f->issuers[0].aliases = ALIASES;
    f->issuers[0].n_aliases = 1;
    f->issuers[1].issuer = "https://login.example/tenant";
    f->issuers[1].ring = (mcp_keyring_t *)&ring_b;
    memcpy(f->other_issuers, f->issuers, sizeof(f->issuers));
    f->other_issuers[0].issuer = "https://idp.example/";
    f->fixed_keys[0] = secret_key(p, "fixed-key-0123456789abcdef0123456789");
    f->fixed.keys = f->fixed_keys;
    f->fixed.nkeys = 1;

    f->pol.issuers = f->issuers;
    f->pol.n_issuers = 2;
    f->pol.alg_mask = MCP_ALG_MASK_DEFAULT;
    f->pol.hmac_key = secret_key(p, "hmac-secret-A-0123456789abcdef0123456789abcdef");
    f->pol.token_type = "at+jwt";
    f->pol.max_token_size = 16384;
    f->pol.claims.audiences = AUD;
    f->pol.claims.n_audiences = 1;
    f->pol.claims.required = REQ;
    f->pol.claims.n_required = 1;
    f->pol.claims.skew = 30;
    f->pol.claims.now = 1700000000;
    f->pol.claims.exp_optional = 0;
    f->pol.jws_only = 0;
    f->other_pol = f->pol;
    f->other_pol.max_token_size = 8192;

    f->intro.url = "https://idp.example/oauth2/introspect";
    f->intro.auth = MCP_AUTH_BASIC;
    f->intro.client_id = "rs";
    f->intro.client_secret = "rs-secret";
    f->intro.use_get = 0;
    f->intro.param = "token";
    f->intro.cache = apr_time_from_sec(300);

    f->cp.verify = &f->pol;
    f->cp.user_claim = "preferred_username";
    f->cp.scope_claim = "scope";
    f->cp.introspection = &f->intro;
}

static void fingerprint(const fixture_t *f, unsigned char out[MCP_FINGERPRINT_LEN])
{
    mcp_policy_fingerprint(f->p, &f->cp, out);
}

/* ---- the member tables -------------------------------------------------------- */

typedef void (*flip_fn)(fixture_t *f);

typedef struct {
    const char *name;
    size_t off, size, align;
    flip_fn flip; /* NULL: not in the fingerprint, for the reason below */
    const char *reason;
} member_t;

#define MEMBER(T, m) #m, offsetof(T, m), sizeof(((T *)0)->m), _Alignof(__typeof__(((T *)0)->m))
#define FLIP(T, m)                                                                                                     \
    {                                                                                                                  \
        MEMBER(T, m), flip_##T##_##m, NULL                                                                             \
    }
#define NOT_IN(T, m, why)                                                                                              \
    {                                                                                                                  \
        MEMBER(T, m), NULL, why                                                                                        \
    }

#define DEF_FLIP(T, m, stmt)                                                                                           \
    static void flip_##T##_##m(fixture_t *f)                                                                           \
    {                                                                                                                  \
        stmt;                                                                                                          \
    }

/* mcp_cache_policy_t */
DEF_FLIP(mcp_cache_policy_t, verify, f->cp.verify = &f->other_pol)
DEF_FLIP(mcp_cache_policy_t, user_claim, f->cp.user_claim = "sub")
DEF_FLIP(mcp_cache_policy_t, scope_claim, f->cp.scope_claim = NULL)
DEF_FLIP(mcp_cache_policy_t, introspection, f->cp.introspection = NULL)

static const member_t CACHE_POLICY[] = {
    FLIP(mcp_cache_policy_t, verify),
    FLIP(mcp_cache_policy_t, user_claim),
    FLIP(mcp_cache_policy_t, scope_claim),
    FLIP(mcp_cache_policy_t, introspection),
};

/* mcp_verify_policy_t */
DEF_FLIP(mcp_verify_policy_t, issuers, f->pol.issuers = f->other_issuers)
DEF_FLIP(mcp_verify_policy_t, n_issuers, f->pol.n_issuers = 1)
DEF_FLIP(mcp_verify_policy_t, alg_mask, f->pol.alg_mask = MCP_ALG_BIT(MCP_ALG_ES256))
DEF_FLIP(mcp_verify_policy_t, hmac_key,
         f->pol.hmac_key = secret_key(f->p, "hmac-secret-B-0123456789abcdef0123456789abcdef"))
DEF_FLIP(mcp_verify_policy_t, token_type, f->pol.token_type = "application/at+jwt")
DEF_FLIP(mcp_verify_policy_t, max_token_size, f->pol.max_token_size = 16385)
DEF_FLIP(mcp_verify_policy_t, claims, f->pol.claims.skew = 0) /* nested: each member in its own table */
DEF_FLIP(mcp_verify_policy_t, jws_only, f->pol.jws_only = 1)

static const member_t VERIFY_POLICY[] = {
    FLIP(mcp_verify_policy_t, issuers),    FLIP(mcp_verify_policy_t, n_issuers),
    FLIP(mcp_verify_policy_t, alg_mask),   FLIP(mcp_verify_policy_t, hmac_key),
    FLIP(mcp_verify_policy_t, token_type), FLIP(mcp_verify_policy_t, max_token_size),
    FLIP(mcp_verify_policy_t, claims),     FLIP(mcp_verify_policy_t, jws_only),
};

/* mcp_claim_policy_t */
DEF_FLIP(mcp_claim_policy_t, audiences, f->pol.claims.audiences = AUD2)
DEF_FLIP(mcp_claim_policy_t, n_audiences, f->pol.claims.n_audiences = 0)
DEF_FLIP(mcp_claim_policy_t, required, f->pol.claims.required = REQ2)
DEF_FLIP(mcp_claim_policy_t, n_required, f->pol.claims.n_required = 0)
DEF_FLIP(mcp_claim_policy_t, skew, f->pol.claims.skew = 31)
DEF_FLIP(mcp_claim_policy_t, exp_optional, f->pol.claims.exp_optional = 1)

static const member_t CLAIM_POLICY[] = {
    FLIP(mcp_claim_policy_t, audiences),
    FLIP(mcp_claim_policy_t, n_audiences),
    FLIP(mcp_claim_policy_t, required),
    FLIP(mcp_claim_policy_t, n_required),
    FLIP(mcp_claim_policy_t, skew),
    NOT_IN(mcp_claim_policy_t, now,
           "the request's time: a cached verdict's time claims are re-checked against it on every hit"),
    FLIP(mcp_claim_policy_t, exp_optional),
};

/* mcp_trusted_issuer_t (flipped on the first issuer) */
DEF_FLIP(mcp_trusted_issuer_t, issuer, f->issuers[0].issuer = "https://idp.example/")
DEF_FLIP(mcp_trusted_issuer_t, ring, f->issuers[0].ring = NULL)
DEF_FLIP(mcp_trusted_issuer_t, keys, f->issuers[0].keys = &f->fixed)
DEF_FLIP(mcp_trusted_issuer_t, introspection_endpoint, f->issuers[0].introspection_endpoint = NULL)
DEF_FLIP(mcp_trusted_issuer_t, jwks_uri, f->issuers[0].jwks_uri = "https://idp.example/jwks")
DEF_FLIP(mcp_trusted_issuer_t, jwks_file, f->issuers[0].jwks_file = "/etc/mcp/prod.json")
DEF_FLIP(mcp_trusted_issuer_t, jwks_file_sha256, f->issuers[0].jwks_file_sha256[31] ^= 1)
DEF_FLIP(mcp_trusted_issuer_t, aliases, f->issuers[0].aliases = ALIASES2)
DEF_FLIP(mcp_trusted_issuer_t, n_aliases, f->issuers[0].n_aliases = 0)

static const member_t TRUSTED_ISSUER[] = {
    FLIP(mcp_trusted_issuer_t, issuer),
    FLIP(mcp_trusted_issuer_t, ring),
    FLIP(mcp_trusted_issuer_t, keys),
    FLIP(mcp_trusted_issuer_t, introspection_endpoint),
    FLIP(mcp_trusted_issuer_t, jwks_uri),
    FLIP(mcp_trusted_issuer_t, jwks_file),
    FLIP(mcp_trusted_issuer_t, jwks_file_sha256),
    FLIP(mcp_trusted_issuer_t, aliases),
    FLIP(mcp_trusted_issuer_t, n_aliases),
};

/* mcp_introspect_conf_t */
DEF_FLIP(mcp_introspect_conf_t, url, f->intro.url = NULL)
DEF_FLIP(mcp_introspect_conf_t, auth, f->intro.auth = MCP_AUTH_POST)
DEF_FLIP(mcp_introspect_conf_t, client_id, f->intro.client_id = "rs2")
DEF_FLIP(mcp_introspect_conf_t, client_secret, f->intro.client_secret = "rs-secreT")
DEF_FLIP(mcp_introspect_conf_t, use_get, f->intro.use_get = 1)
DEF_FLIP(mcp_introspect_conf_t, param, f->intro.param = "access_token")
DEF_FLIP(mcp_introspect_conf_t, cache, f->intro.cache = apr_time_from_sec(5))

static const member_t INTROSPECT_CONF[] = {
    FLIP(mcp_introspect_conf_t, url),       FLIP(mcp_introspect_conf_t, auth),
    FLIP(mcp_introspect_conf_t, client_id), FLIP(mcp_introspect_conf_t, client_secret),
    FLIP(mcp_introspect_conf_t, use_get),   FLIP(mcp_introspect_conf_t, param),
    FLIP(mcp_introspect_conf_t, cache),
};

typedef struct {
    const char *type, *header;
    const member_t *members;
    size_t n, size, align;
} table_t;

#define TABLE(T, header, arr)                                                                                          \
    {                                                                                                                  \
#T, header, arr, sizeof(arr) / sizeof(arr[0]), sizeof(T), _Alignof(T)                                          \
    }

static const table_t TABLES[] = {
    TABLE(mcp_cache_policy_t, "token_cache.h", CACHE_POLICY),
    TABLE(mcp_verify_policy_t, "verifier.h", VERIFY_POLICY),
    TABLE(mcp_claim_policy_t, "claim_check.h", CLAIM_POLICY),
    TABLE(mcp_trusted_issuer_t, "verifier.h", TRUSTED_ISSUER),
    TABLE(mcp_introspect_conf_t, "introspect.h", INTROSPECT_CONF),
};

#define N_TABLES (sizeof(TABLES) / sizeof(TABLES[0]))

/* ---- check 1: the listed members tile the struct ------------------------------ */

static size_t align_up(size_t n, size_t a)
{
    return (n + a - 1) / a * a;
}

static int by_offset(const void *a, const void *b)
{
    const member_t *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

static void tables_cover_every_byte(void **state)
{
    size_t t, i;
    (void)state;
    for (t = 0; t < N_TABLES; t++) {
        const table_t *tb = &TABLES[t];
        member_t sorted[32];
        size_t end = 0;
        assert_true(tb->n <= 32);
        memcpy(sorted, tb->members, tb->n * sizeof(member_t));
        qsort(sorted, tb->n, sizeof(member_t), by_offset);
        for (i = 0; i < tb->n; i++) {
            if (sorted[i].off != align_up(end, sorted[i].align))
                fail_msg("%s: bytes %lu..%lu before %s belong to no listed member: a member was added to the "
                         "struct without being added to the policy fingerprint and to test_token_cache.c",
                         tb->type, (unsigned long)end, (unsigned long)sorted[i].off, sorted[i].name);
            end = sorted[i].off + sorted[i].size;
        }
        if (align_up(end, tb->align) != tb->size)
            fail_msg("%s: bytes %lu..%lu after %s belong to no listed member: a member was added to the struct "
                     "without being added to the policy fingerprint and to test_token_cache.c",
                     tb->type, (unsigned long)end, (unsigned long)tb->size, sorted[tb->n - 1].name);
    }
}

/* ---- check 2: the listed names are the declared ones ---------------------------- */

static char *read_text(apr_pool_t *p, const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;
    if (!fp)
        fail_msg("cannot read %s", path);
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = apr_palloc(p, (apr_size_t)n + 1);
    if (fread(buf, 1, (size_t)n, fp) != (size_t)n)
        fail_msg("short read of %s", path);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static void strip_comments(char *s)
{
    char *r = s, *w = s;
    while (*r) {
        if (r[0] == '/' && r[1] == '*') {
            char *e = strstr(r + 2, "*/");
            r = e ? e + 2 : r + strlen(r);
            *w++ = ' ';
        }
        else if (r[0] == '/' && r[1] == '/') {
            while (*r && *r != '\n')
                r++;
        }
        else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* The member names declared in "typedef struct { ... } type;". */
static apr_array_header_t *declared_members(apr_pool_t *p, const char *header, const char *type)
{
    char *text = read_text(p, apr_pstrcat(p, SRC_DIR "/", header, NULL));
    apr_array_header_t *names = apr_array_make(p, 8, sizeof(const char *));
    char *end, *open, *body, *decl, *save = NULL;

    strip_comments(text);
    end = strstr(text, apr_pstrcat(p, "} ", type, ";", NULL));
    if (!end)
        fail_msg("%s: no \"} %s;\" found", header, type);
    *end = '\0';
    open = strrchr(text, '{');
    assert_non_null(open);
    body = open + 1;
    for (decl = apr_strtok(body, ";", &save); decl; decl = apr_strtok(NULL, ";", &save)) {
        char *part, *save2 = NULL;
        for (part = apr_strtok(decl, ",", &save2); part; part = apr_strtok(NULL, ",", &save2)) {
            char *q, *id_end, *bracket = strchr(part, '[');
            /* "unsigned char x[32]": the name is the identifier before the bounds */
            if (bracket)
                *bracket = '\0';
            q = part + strlen(part);
            while (q > part && isspace((unsigned char)q[-1]))
                q--;
            id_end = q;
            while (q > part && (isalnum((unsigned char)q[-1]) || q[-1] == '_'))
                q--;
            if (id_end > q)
                APR_ARRAY_PUSH(names, const char *) = apr_pstrmemdup(p, q, (apr_size_t)(id_end - q));
        }
    }
    return names;
}

static void tables_name_every_declared_member(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    size_t t, i;
    int j;
    for (t = 0; t < N_TABLES; t++) {
        const table_t *tb = &TABLES[t];
        apr_array_header_t *names = declared_members(p, tb->header, tb->type);
        for (j = 0; j < names->nelts; j++) {
            const char *name = APR_ARRAY_IDX(names, j, const char *);
            for (i = 0; i < tb->n && strcmp(tb->members[i].name, name) != 0; i++)
                ;
            if (i == tb->n)
                fail_msg("%s (src/%s) declares %s, which test_token_cache.c does not list: add it to the policy "
                         "fingerprint (src/token_cache.c) and to this test, or list it with the reason it "
                         "cannot change a verdict",
                         tb->type, tb->header, name);
        }
        if ((size_t)names->nelts != tb->n)
            fail_msg("%s: %d members declared in src/%s, %lu listed here", tb->type, names->nelts, tb->header,
                     (unsigned long)tb->n);
    }
}

/* ---- check 3: each flip changes the fingerprint -------------------------------- */

static void every_member_changes_the_fingerprint(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    unsigned char base[MCP_FINGERPRINT_LEN], again[MCP_FINGERPRINT_LEN], flipped[MCP_FINGERPRINT_LEN];
    fixture_t f;
    size_t t, i;
    int flips = 0;

    baseline(p, &f);
    fingerprint(&f, base);
    baseline(p, &f);
    fingerprint(&f, again);
    assert_memory_equal(base, again, sizeof(base));
    for (t = 0; t < N_TABLES; t++) {
        for (i = 0; i < TABLES[t].n; i++) {
            const member_t *m = &TABLES[t].members[i];
            if (!m->flip) {
                assert_non_null(m->reason);
                continue;
            }
            baseline(p, &f);
            m->flip(&f);
            fingerprint(&f, flipped);
            if (memcmp(base, flipped, sizeof(base)) == 0)
                fail_msg("%s.%s changed but the policy fingerprint did not", TABLES[t].type, m->name);
            flips++;
        }
    }
    assert_true(flips >= 30);
}

/* The excluded member really is excluded: verdicts of one location are
 * shared across requests made at different times. */
static void request_time_is_not_part_of_it(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    unsigned char a[MCP_FINGERPRINT_LEN], b[MCP_FINGERPRINT_LEN];
    fixture_t f;
    baseline(p, &f);
    fingerprint(&f, a);
    f.pol.claims.now += 3600;
    fingerprint(&f, b);
    assert_memory_equal(a, b, sizeof(a));
}

/* ---- content, not addresses; no ambiguous encodings ----------------------------- */

static const char *const *dup_list(apr_pool_t *p, const char *const *v, int n)
{
    const char **out = apr_palloc(p, (apr_size_t)(n + 1) * sizeof(*out));
    int i;
    for (i = 0; i < n; i++)
        out[i] = apr_pstrdup(p, v[i]);
    return out;
}

/* What .htaccess does on every request: the same configuration, rebuilt
 * in fresh memory. The fingerprint must not move. */
static void same_content_elsewhere_gives_the_same_fingerprint(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    unsigned char a[MCP_FINGERPRINT_LEN], b[MCP_FINGERPRINT_LEN];
    fixture_t f, *g = apr_palloc(p, sizeof(*g));
    mcp_trusted_issuer_t *iss;
    int i;

    baseline(p, &f);
    f.issuers[0].keys = &f.fixed;
    fingerprint(&f, a);
    *g = f;
    iss = apr_pmemdup(p, f.issuers, sizeof(f.issuers));
    for (i = 0; i < 2; i++) {
        iss[i].issuer = apr_pstrdup(p, f.issuers[i].issuer);
        iss[i].introspection_endpoint =
            f.issuers[i].introspection_endpoint ? apr_pstrdup(p, f.issuers[i].introspection_endpoint) : NULL;
        iss[i].jwks_file = f.issuers[i].jwks_file ? apr_pstrdup(p, f.issuers[i].jwks_file) : NULL;
        iss[i].ring = i ? (mcp_keyring_t *)&ring_a : (mcp_keyring_t *)&ring_b; /* another ring object */
    }
    iss[0].aliases = dup_list(p, ALIASES, 1);
    g->fixed_keys[0] = secret_key(p, "fixed-key-0123456789abcdef0123456789");
    g->fixed.keys = g->fixed_keys;
    iss[0].keys = &g->fixed;
    g->pol.issuers = iss;
    g->pol.hmac_key = secret_key(p, "hmac-secret-A-0123456789abcdef0123456789abcdef");
    g->pol.token_type = apr_pstrdup(p, "at+jwt");
    g->pol.claims.audiences = dup_list(p, AUD, 1);
    g->pol.claims.required = dup_list(p, REQ, 1);
    g->intro.client_secret = apr_pstrdup(p, "rs-secret");
    g->cp.verify = &g->pol;
    g->cp.introspection = &g->intro;
    g->cp.user_claim = apr_pstrdup(p, "preferred_username");
    fingerprint(g, b);
    assert_memory_equal(a, b, sizeof(a));
}

static void boundaries_and_null_are_unambiguous(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    static const char *const ab_c[] = {"ab", "c"}, *const a_bc[] = {"a", "bc"}, *const empty[] = {""};
    unsigned char a[MCP_FINGERPRINT_LEN], b[MCP_FINGERPRINT_LEN];
    fixture_t f;

    baseline(p, &f);
    f.pol.claims.audiences = ab_c;
    f.pol.claims.n_audiences = 2;
    fingerprint(&f, a);
    f.pol.claims.audiences = a_bc;
    fingerprint(&f, b);
    assert_memory_not_equal(a, b, sizeof(a));
    /* A value moved from one member to its neighbour. */
    baseline(p, &f);
    f.cp.user_claim = "x";
    f.cp.scope_claim = NULL;
    fingerprint(&f, a);
    f.cp.user_claim = NULL;
    f.cp.scope_claim = "x";
    fingerprint(&f, b);
    assert_memory_not_equal(a, b, sizeof(a));
    /* NULL (unset) and "" differ; no audience list and a list of "" differ. */
    baseline(p, &f);
    f.pol.token_type = NULL;
    fingerprint(&f, a);
    f.pol.token_type = "";
    fingerprint(&f, b);
    assert_memory_not_equal(a, b, sizeof(a));
    baseline(p, &f);
    f.pol.claims.n_audiences = 0;
    fingerprint(&f, a);
    f.pol.claims.audiences = empty;
    f.pol.claims.n_audiences = 1;
    fingerprint(&f, b);
    assert_memory_not_equal(a, b, sizeof(a));
    /* An audience moved into the required claims. */
    baseline(p, &f);
    f.pol.claims.audiences = REQ;
    f.pol.claims.required = AUD;
    fingerprint(&f, b);
    baseline(p, &f);
    fingerprint(&f, a);
    assert_memory_not_equal(a, b, sizeof(a));
}

/* The attack of item 3: /dev and /prod trust the same issuer string with
 * other keys. Each key source gives another fingerprint. */
static void same_issuer_other_keys(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    unsigned char dev[MCP_FINGERPRINT_LEN], prod[MCP_FINGERPRINT_LEN], other[MCP_FINGERPRINT_LEN];
    fixture_t f;

    baseline(p, &f);
    fingerprint(&f, dev);
    f.issuers[0].jwks_file = "/etc/mcp/prod.json";
    memset(f.issuers[0].jwks_file_sha256, 0xe2, 32);
    fingerprint(&f, prod);
    assert_memory_not_equal(dev, prod, sizeof(dev));
    /* Same path, the file's content changed between two configurations
     * (a graceful restart keeps the shared cache). */
    baseline(p, &f);
    f.issuers[0].jwks_file_sha256[0] ^= 0x80;
    fingerprint(&f, other);
    assert_memory_not_equal(dev, other, sizeof(dev));
    /* Discovered keys: the discovery URLs come from the issuer. */
    baseline(p, &f);
    f.issuers[1].issuer = "https://login.example/tenant2";
    fingerprint(&f, other);
    assert_memory_not_equal(dev, other, sizeof(dev));
    /* A fixed key set (CLI): its keys' content counts. */
    baseline(p, &f);
    f.issuers[0].keys = &f.fixed;
    fingerprint(&f, dev);
    f.fixed_keys[0] = secret_key(p, "fixed-key-0123456789abcdef012345678X");
    fingerprint(&f, prod);
    assert_memory_not_equal(dev, prod, sizeof(dev));
}

/* Per-request cost, printed (not asserted: timing on a shared machine is
 * noise). The module computes one fingerprint per request that uses a
 * cache, then one SHA-256 of fingerprint + token on an L1 miss. */
static void cost_per_request(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    enum { N = 100000 };
    static const char token[] =
        "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU";
    unsigned char fp[MCP_FINGERPRINT_LEN], key[32];
    apr_pool_t *scratch;
    fixture_t f;
    apr_time_t t0, t1, t2;
    int i;

    baseline(p, &f);
    f.issuers[0].jwks_file = NULL; /* the common case: one discovered issuer */
    f.pol.n_issuers = 1;
    apr_pool_create(&scratch, p);
    t0 = apr_time_now();
    for (i = 0; i < N; i++) {
        mcp_policy_fingerprint(scratch, &f.cp, fp);
        apr_pool_clear(scratch);
    }
    t1 = apr_time_now();
    for (i = 0; i < N; i++)
        mcp_token_cache_key(fp, token, sizeof(token) - 1, key);
    t2 = apr_time_now();
    print_message("policy fingerprint: %.0f ns per request; shared-cache key: %.0f ns\n",
                  (double)(t1 - t0) * 1000.0 / N, (double)(t2 - t1) * 1000.0 / N);
}

/* ---- the shared cache of verdicts ----------------------------------------- */

static void token_cache_roundtrip_and_exp_bound(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 64, 512, 0, 0);
    unsigned char key[32];
    mcp_verdict_t v, got;
    int ev;

    assert_int_equal(mcp_verdict_from_claims(p,
                                             tu_json(p, "{\"sub\":\"alice\",\"exp\":1700000005,\"scp\":[\"a\",\"b\"]}"),
                                             1, MCP_ALG_ES256, NULL, NULL, &v),
                     0);
    mcp_entry_meta_t meta;
    static const unsigned char fp[MCP_FINGERPRINT_LEN] = "a policy fingerprint, 32 bytes.";

    mcp_token_cache_key(fp, "a.b.c", 5, key);
    assert_int_equal(mcp_token_cache_put(st, key, T0, SEC(300), p, &v, -1, 0, &ev), 0);
    assert_int_equal(mcp_token_cache_get(st, key, T0 + SEC(4), p, &got, &meta), 0);
    /* What a per-process copy must carry: the entry's own expiry (here exp). */
    assert_true(meta.expires == SEC(1700000005) && meta.dep_doc == -1);
    assert_string_equal(got.user, "alice");
    assert_string_equal(got.sub, "alice");
    assert_null(got.iss);
    assert_string_equal(got.scope, "a b");
    assert_string_equal(got.claims, v.claims);
    assert_int_equal(got.issuer_index, 1);
    assert_int_equal(got.alg, MCP_ALG_ES256);
    assert_true(got.has_exp && got.exp == 1700000005.0 && !got.has_nbf && !got.has_iat);
    /* Never past exp, whatever the TTL. */
    assert_int_equal(mcp_token_cache_get(st, key, T0 + SEC(5), p, &got, NULL), -1);
}

static void token_cache_key_depends_on_rules(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_trusted_issuer_t iss[1] = {{.issuer = "https://idp"}};
    const char *aud1[] = {"https://a/mcp"}, *aud2[] = {"https://b/mcp"};
    mcp_verify_policy_t a, b;
    mcp_cache_policy_t ca = {&a, NULL, NULL, NULL}, cb = {&b, NULL, NULL, NULL};
    unsigned char fa[32], fb[32], ka[32], kb[32];

    memset(&a, 0, sizeof(a));
    a.issuers = iss;
    a.n_issuers = 1;
    a.alg_mask = MCP_ALG_MASK_DEFAULT;
    a.claims.audiences = aud1;
    a.claims.n_audiences = 1;
    b = a;
    b.claims.audiences = aud2;
    mcp_policy_fingerprint(p, &ca, fa);
    mcp_policy_fingerprint(p, &cb, fb);
    mcp_token_cache_key(fa, "t.o.k", 5, ka);
    mcp_token_cache_key(fb, "t.o.k", 5, kb);
    assert_memory_not_equal(ka, kb, 32);
    b = a;
    b.alg_mask = MCP_ALG_BIT(MCP_ALG_RS256);
    mcp_policy_fingerprint(p, &cb, fb);
    mcp_token_cache_key(fb, "t.o.k", 5, kb);
    assert_memory_not_equal(ka, kb, 32);
    /* Same content, other objects: the same key (content, not addresses). */
    b = a;
    mcp_policy_fingerprint(p, &cb, fb);
    mcp_token_cache_key(fb, "t.o.k", 5, kb);
    assert_memory_equal(ka, kb, 32);
    mcp_token_cache_key(fb, "t.o.K", 5, kb);
    assert_memory_not_equal(ka, kb, 32);
}

/* Item 12: a shared hit hands back the JWKS generation it was stored with;
 * a per-process copy made from it dies when the keys rotate, even when the
 * rotation lands between the shared read and the copy. */
static void shared_hit_carries_its_stored_generation(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_store_t *st = mcp_store_create_local(p, 16, 512, 1, MCP_DOC_HEADER + 64);
    mcp_l1_t *c = mcp_l1_create(p, 8);
    const unsigned char *dk = key_of(p, "jwks");
    static const unsigned char fp[MCP_FINGERPRINT_LEN] = "another fingerprint, 32 bytes..";
    unsigned char key[32];
    mcp_doc_meta_t m;
    mcp_entry_meta_t meta;
    mcp_verdict_t v, got;
    mcp_l1_deps_t deps;
    uint64_t g1;
    int ev;

    mcp_store_doc_begin(st, 0, dk, T0, &POLICY, 0, &m);
    mcp_store_doc_finish(st, 0, dk, T0, "keys-1", 6);
    g1 = mcp_store_doc_generation(st, 0);
    assert_int_equal(
        mcp_verdict_from_claims(p, tu_json(p, "{\"sub\":\"al\",\"exp\":1700000100}"), 0, MCP_ALG_ES256, NULL, NULL, &v),
        0);
    mcp_token_cache_key(fp, "x.y.z", 5, key);
    assert_int_equal(mcp_token_cache_put(st, key, T0, SEC(300), p, &v, 0, g1, &ev), 0);
    assert_int_equal(mcp_token_cache_get(st, key, T0 + SEC(1), p, &got, &meta), 0);
    assert_true(meta.dep_doc == 0 && meta.dep_generation == g1 && meta.expires == SEC(1700000100));
    /* The keys rotate now, after the shared read... */
    mcp_store_doc_begin(st, 0, dk, T0 + SEC(2), &POLICY, 1, &m);
    mcp_store_doc_finish(st, 0, dk, T0 + SEC(2), "keys-2", 6);
    assert_true(mcp_store_doc_generation(st, 0) != g1);
    /* ...and the copy carries g1 (read with the entry): dead. */
    deps.expires = meta.expires;
    deps.dep_doc = meta.dep_doc;
    deps.dep_generation = meta.dep_generation;
    deps.dep_epoch = 0;
    deps.epoch = 0;
    mcp_l1_put(c, fp, sizeof(fp), "x.y.z", 5, &deps, &v);
    assert_int_equal(mcp_l1_get(c, fp, sizeof(fp), "x.y.z", 5, T0 + SEC(3), st, p, &got), -1);
    assert_int_equal(mcp_token_cache_get(st, key, T0 + SEC(3), p, &got, &meta), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tables_cover_every_byte),
        TU_TEST(tables_name_every_declared_member),
        TU_TEST(every_member_changes_the_fingerprint),
        TU_TEST(request_time_is_not_part_of_it),
        TU_TEST(same_content_elsewhere_gives_the_same_fingerprint),
        TU_TEST(boundaries_and_null_are_unambiguous),
        TU_TEST(same_issuer_other_keys),
        TU_TEST(cost_per_request),
        TU_TEST(token_cache_roundtrip_and_exp_bound),
        TU_TEST(token_cache_key_depends_on_rules),
        TU_TEST(shared_hit_carries_its_stored_generation),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("token_cache", tests, NULL, NULL);
}
