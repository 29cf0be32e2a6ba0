/* SPDX-License-Identifier: Apache-2.0 */
#include "scope_implies.h"

#include <apr_hash.h>
#include <apr_strings.h>
#include <stdint.h>
#include <string.h>

/* Scopes are interned: each distinct name of a rule set gets an index, and
 * what a scope implies is a bitset over those indices -- 400 scopes take
 * 20 KB, adding a line costs a few word operations per scope, and a
 * request ORs one bitset per granted scope. */
typedef uint64_t word_t;
#define WORD_BITS 64
#define BIT_HAS(set, i) (((set)[(i) / WORD_BITS] >> ((i) % WORD_BITS)) & 1u)
#define BIT_SET(set, i) ((set)[(i) / WORD_BITS] |= (word_t)1 << ((i) % WORD_BITS))
#define BIT_CLEAR(set, i) ((set)[(i) / WORD_BITS] &= ~((word_t)1 << ((i) % WORD_BITS)))

/* One written implication: the scope it leads to and the line that says so. */
typedef struct {
    int to;
    const char *where;
} edge_t;

/* The direct implications of one scope, in the order written. */
typedef struct {
    int scope;
    apr_array_header_t *edges; /* edge_t */
} rule_t;

typedef struct {
    const char *name;
    rule_t *rule;  /* NULL: written only as an implied scope */
    word_t *reach; /* every scope it implies, directly or not; NULL: none */
} node_t;

struct mcp_scope_implies {
    apr_pool_t *pool;
    apr_array_header_t *nodes; /* node_t, by index */
    apr_hash_t *index_of;      /* name -> index + 1 (as a pointer-sized integer) */
    apr_array_header_t *rules; /* rule_t *, first written first */
    int words;                 /* length of every reach bitset */
};

#define NODE(si, i) (&APR_ARRAY_IDX((si)->nodes, (i), node_t))

mcp_scope_implies_t *mcp_scope_implies_make(apr_pool_t *p)
{
    mcp_scope_implies_t *si = apr_pcalloc(p, sizeof(*si));
    si->pool = p;
    si->nodes = apr_array_make(p, 8, sizeof(node_t));
    si->index_of = apr_hash_make(p);
    si->rules = apr_array_make(p, 4, sizeof(rule_t *));
    si->words = 1;
    return si;
}

int mcp_scope_token_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
            return 0;
    }
    return 1;
}

/* The index of name, or -1. */
static int index_of(const mcp_scope_implies_t *si, const char *name)
{
    void *v = apr_hash_get(si->index_of, name, APR_HASH_KEY_STRING);
    return v ? (int)((intptr_t)v - 1) : -1;
}

/* The index of name, made on first sight; every bitset grows (doubling)
 * when the names outgrow it. */
static int intern(mcp_scope_implies_t *si, const char *name)
{
    int i = index_of(si, name);
    node_t *n;
    if (i >= 0)
        return i;
    i = si->nodes->nelts;
    n = apr_array_push(si->nodes);
    n->name = apr_pstrdup(si->pool, name);
    n->rule = NULL;
    n->reach = NULL;
    apr_hash_set(si->index_of, n->name, APR_HASH_KEY_STRING, (void *)(intptr_t)(i + 1));
    if (si->nodes->nelts > si->words * WORD_BITS) {
        int words = si->words * 2, j;
        for (j = 0; j < si->nodes->nelts; j++) {
            node_t *x = NODE(si, j);
            if (x->reach) {
                word_t *grown = apr_pcalloc(si->pool, words * sizeof(word_t));
                memcpy(grown, x->reach, si->words * sizeof(word_t));
                x->reach = grown;
            }
        }
        si->words = words;
    }
    return i;
}

/* Steps of a cycle shown before and after the " -> ... (n more)". */
#define CYCLE_HEAD 8
#define CYCLE_TAIL 3

/* A path from `from` back to itself over the written edges, as text
 * " -> x (where) -> ... -> from (where)"; NULL when there is none.
 * Breadth-first: the shortest cycle is the clearest to read. */
static const char *cycle_text(mcp_scope_implies_t *si, int from)
{
    apr_pool_t *p = si->pool;
    int n = si->nodes->nelts, head, i, cur = -1;
    int *prev = apr_palloc(p, n * sizeof(int));           /* index before it; -1: not reached */
    const edge_t **via = apr_palloc(p, n * sizeof(*via)); /* the edge it was first reached by */
    int *queue = apr_palloc(p, n * sizeof(int));
    int tail = 0;
    const edge_t *last = NULL;
    apr_array_header_t *steps;

    for (i = 0; i < n; i++)
        prev[i] = -1;
    queue[tail++] = from;
    prev[from] = from;
    for (head = 0; head < tail && !last; head++) {
        const rule_t *r = NODE(si, queue[head])->rule;
        for (i = 0; r && i < r->edges->nelts; i++) {
            const edge_t *e = &APR_ARRAY_IDX(r->edges, i, edge_t);
            if (e->to == from) {
                last = e;
                cur = r->scope;
                break;
            }
            if (prev[e->to] >= 0)
                continue;
            prev[e->to] = r->scope;
            via[e->to] = e;
            queue[tail++] = e->to;
        }
    }
    if (!last)
        return NULL;
    /* Walked back from the end, joined once (a long chain stays linear). */
    steps = apr_array_make(p, 8, sizeof(const char *));
    APR_ARRAY_PUSH(steps, const char *) = apr_pstrcat(p, " -> ", NODE(si, from)->name, " (", last->where, ")", NULL);
    for (; cur != from; cur = prev[cur])
        APR_ARRAY_PUSH(steps, const char *) =
            apr_pstrcat(p, " -> ", NODE(si, cur)->name, " (", via[cur]->where, ")", NULL);
    for (i = 0; i < steps->nelts / 2; i++) {
        const char *t = APR_ARRAY_IDX(steps, i, const char *);
        APR_ARRAY_IDX(steps, i, const char *) = APR_ARRAY_IDX(steps, steps->nelts - 1 - i, const char *);
        APR_ARRAY_IDX(steps, steps->nelts - 1 - i, const char *) = t;
    }
    /* httpd cuts long error messages: a long cycle keeps its first steps
     * and the lines that close it, and says how many are left out. */
    if (steps->nelts > CYCLE_HEAD + CYCLE_TAIL + 1) {
        int left_out = steps->nelts - CYCLE_HEAD - CYCLE_TAIL;
        APR_ARRAY_IDX(steps, CYCLE_HEAD, const char *) = apr_psprintf(p, " -> ... (%d more)", left_out);
        memmove(&APR_ARRAY_IDX(steps, CYCLE_HEAD + 1, const char *),
                &APR_ARRAY_IDX(steps, steps->nelts - CYCLE_TAIL, const char *), CYCLE_TAIL * sizeof(const char *));
        steps->nelts = CYCLE_HEAD + 1 + CYCLE_TAIL;
    }
    return apr_pstrcat(p, NODE(si, from)->name, apr_array_pstrcat(p, steps, 0), NULL);
}

static rule_t *rule_for(mcp_scope_implies_t *si, int a)
{
    node_t *n = NODE(si, a);
    if (!n->rule) {
        n->rule = apr_palloc(si->pool, sizeof(*n->rule));
        n->rule->scope = a;
        n->rule->edges = apr_array_make(si->pool, 2, sizeof(edge_t));
        APR_ARRAY_PUSH(si->rules, rule_t *) = n->rule;
    }
    return n->rule;
}

/* The edge a -> b, written at where. The closure grows incrementally: every
 * scope that reaches a (a included) now also reaches b and all b reaches.
 * Returns the cycle text when b already reached a (or is a). */
static const char *add_edge(mcp_scope_implies_t *si, const char *a_name, const char *b_name, const char *where)
{
    int a = intern(si, a_name), b = intern(si, b_name), i, w;
    rule_t *rule = rule_for(si, a);
    node_t *na, *nb;
    const char *cycle = NULL;
    word_t *gain;
    edge_t *e;

    for (i = 0; i < rule->edges->nelts; i++)
        if (APR_ARRAY_IDX(rule->edges, i, edge_t).to == b)
            return NULL; /* written before: nothing new */
    e = apr_array_push(rule->edges);
    e->to = b;
    e->where = apr_pstrdup(si->pool, where ? where : "?");
    na = NODE(si, a);
    nb = NODE(si, b);
    if (a == b || (nb->reach && BIT_HAS(nb->reach, a)))
        cycle = cycle_text(si, a);
    if (!na->reach)
        na->reach = apr_pcalloc(si->pool, si->words * sizeof(word_t));
    if (BIT_HAS(na->reach, b))
        return cycle; /* already implied through another scope */
    /* Copied first: on a cycle b's own reach is among those that grow. */
    gain = apr_pcalloc(si->pool, si->words * sizeof(word_t));
    if (nb->reach)
        memcpy(gain, nb->reach, si->words * sizeof(word_t));
    BIT_SET(gain, b);
    for (i = 0; i < si->nodes->nelts; i++) {
        node_t *x = NODE(si, i);
        if (i == a || (x->reach && BIT_HAS(x->reach, a)))
            for (w = 0; w < si->words; w++)
                x->reach[w] |= gain[w];
    }
    return cycle;
}

const char *mcp_scope_implies_add(mcp_scope_implies_t *si, const char *scope, const apr_array_header_t *implied,
                                  const char *where)
{
    const char *first = NULL;
    int i;
    for (i = 0; implied && i < implied->nelts; i++) {
        const char *cycle = add_edge(si, scope, APR_ARRAY_IDX(implied, i, const char *), where);
        if (cycle && !first)
            first = cycle;
    }
    return first;
}

/* Replays rule r's edges into si; the first cycle into *cycle. */
static void replay(mcp_scope_implies_t *si, const mcp_scope_implies_t *from, const rule_t *r, const char **cycle)
{
    int i;
    for (i = 0; i < r->edges->nelts; i++) {
        const edge_t *e = &APR_ARRAY_IDX(r->edges, i, edge_t);
        const char *c = add_edge(si, NODE(from, r->scope)->name, NODE(from, e->to)->name, e->where);
        if (c && cycle && !*cycle)
            *cycle = c;
    }
}

const mcp_scope_implies_t *mcp_scope_implies_merge(apr_pool_t *p, const mcp_scope_implies_t *base,
                                                   const mcp_scope_implies_t *add, const char **cycle)
{
    mcp_scope_implies_t *out;
    int i;

    if (cycle)
        *cycle = NULL;
    /* The common case -- one side only -- shares the closure built at
     * configuration time. */
    if (!mcp_scope_implies_count(base))
        return add ? add : base;
    if (!mcp_scope_implies_count(add))
        return base;
    /* Both parent and child define rules (rare): the merged closure is
     * computed here, per merge -- at request time when httpd merges the
     * sections for a request unless the configuration check remembered
     * the pair (mcp_scope_implies_merge_memo): a few word operations per
     * line and scope. */
    out = mcp_scope_implies_make(p);
    for (i = 0; i < base->rules->nelts; i++) {
        const rule_t *r = APR_ARRAY_IDX(base->rules, i, const rule_t *);
        int j = index_of(add, NODE(base, r->scope)->name);
        if (j < 0 || !NODE(add, j)->rule)
            replay(out, base, r, cycle);
    }
    for (i = 0; i < add->rules->nelts; i++)
        replay(out, add, APR_ARRAY_IDX(add->rules, i, const rule_t *), cycle);
    return out;
}

struct mcp_scope_implies_memo {
    apr_pool_t *pool;
    apr_hash_t *merged; /* memo_key -> memo_val */
};

typedef struct {
    const mcp_scope_implies_t *base, *add;
} memo_key;

typedef struct {
    const mcp_scope_implies_t *merged;
    const char *cycle;
} memo_val;

mcp_scope_implies_memo_t *mcp_scope_implies_memo_make(apr_pool_t *p)
{
    mcp_scope_implies_memo_t *m = apr_palloc(p, sizeof(*m));
    m->pool = p;
    m->merged = apr_hash_make(p);
    return m;
}

const mcp_scope_implies_t *mcp_scope_implies_merge_memo(mcp_scope_implies_memo_t *m, int remember, apr_pool_t *p,
                                                        const mcp_scope_implies_t *base, const mcp_scope_implies_t *add,
                                                        const char **cycle)
{
    memo_key k;
    const memo_val *hit;
    memo_val *v;
    const char *c = NULL;
    const mcp_scope_implies_t *out;

    if (!m || !mcp_scope_implies_count(base) || !mcp_scope_implies_count(add))
        return mcp_scope_implies_merge(p, base, add, cycle);
    memset(&k, 0, sizeof(k));
    k.base = base;
    k.add = add;
    hit = apr_hash_get(m->merged, &k, sizeof(k));
    if (hit) {
        if (cycle)
            *cycle = hit->cycle;
        return hit->merged;
    }
    out = mcp_scope_implies_merge(p, base, add, &c);
    if (cycle)
        *cycle = c;
    if (remember) {
        memo_key *key = apr_pmemdup(m->pool, &k, sizeof(k));
        v = apr_palloc(m->pool, sizeof(*v));
        v->merged = out;
        v->cycle = c;
        apr_hash_set(m->merged, key, sizeof(*key), v);
    }
    return out;
}

apr_array_header_t *mcp_scope_implied_by(apr_pool_t *p, const mcp_scope_implies_t *si, const char *scope)
{
    int i = si ? index_of(si, scope) : -1, j;
    const word_t *reach = i >= 0 ? NODE(si, i)->reach : NULL;
    apr_array_header_t *out;
    if (!reach)
        return NULL;
    out = apr_array_make(p, 8, sizeof(const char *));
    for (j = 0; j < si->nodes->nelts; j++)
        if (BIT_HAS(reach, j))
            APR_ARRAY_PUSH(out, const char *) = NODE(si, j)->name;
    return out;
}

int mcp_scope_implies_count(const mcp_scope_implies_t *si)
{
    return si ? si->rules->nelts : 0;
}

apr_array_header_t *mcp_scope_expand(apr_pool_t *p, apr_array_header_t *granted, const mcp_scope_implies_t *si)
{
    apr_array_header_t *out;
    word_t *implied = NULL;
    int *idx, i, w;

    if (!granted || granted->nelts == 0 || !mcp_scope_implies_count(si))
        return granted;
    /* One lookup per granted scope: the union of what they imply. */
    idx = apr_palloc(p, granted->nelts * sizeof(int));
    for (i = 0; i < granted->nelts; i++) {
        const node_t *n;
        idx[i] = index_of(si, APR_ARRAY_IDX(granted, i, const char *));
        n = idx[i] >= 0 ? NODE(si, idx[i]) : NULL;
        if (!n || !n->reach)
            continue;
        if (!implied)
            implied = apr_pcalloc(p, si->words * sizeof(word_t));
        for (w = 0; w < si->words; w++)
            implied[w] |= n->reach[w];
    }
    if (!implied)
        return granted;
    /* The token's own first, in its order; then what it adds. */
    for (i = 0; i < granted->nelts; i++)
        if (idx[i] >= 0)
            BIT_CLEAR(implied, idx[i]);
    out = apr_array_copy(p, granted);
    for (i = 0; i < si->nodes->nelts; i++)
        if (BIT_HAS(implied, i))
            APR_ARRAY_PUSH(out, const char *) = NODE(si, i)->name;
    return out;
}
