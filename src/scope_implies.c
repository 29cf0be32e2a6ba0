#include "scope_implies.h"

#include <apr_hash.h>
#include <apr_strings.h>
#include <string.h>

/* One written implication: the scope it leads to and the line that says so. */
typedef struct {
    const char *to;
    const char *where;
} edge_t;

/* The direct implications of one scope, in the order written. */
typedef struct {
    const char *scope;
    apr_array_header_t *edges; /* edge_t */
} rule_t;

/* Everything one scope implies: a list for expansion, a set for the
 * updates while the rules are read. */
typedef struct {
    apr_array_header_t *list; /* const char * */
    apr_hash_t *set;
} reach_t;

struct mcp_scope_implies {
    apr_pool_t *pool;
    apr_array_header_t *rules; /* rule_t *, first written first */
    apr_hash_t *rule_of;       /* scope -> rule_t * */
    apr_hash_t *closure;       /* scope -> reach_t *: only scopes that imply something */
};

mcp_scope_implies_t *mcp_scope_implies_make(apr_pool_t *p)
{
    mcp_scope_implies_t *si = apr_pcalloc(p, sizeof(*si));
    si->pool = p;
    si->rules = apr_array_make(p, 4, sizeof(rule_t *));
    si->rule_of = apr_hash_make(p);
    si->closure = apr_hash_make(p);
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

static rule_t *rule_for(mcp_scope_implies_t *si, const char *scope)
{
    rule_t *r = apr_hash_get(si->rule_of, scope, APR_HASH_KEY_STRING);
    if (r)
        return r;
    r = apr_palloc(si->pool, sizeof(*r));
    r->scope = apr_pstrdup(si->pool, scope);
    r->edges = apr_array_make(si->pool, 2, sizeof(edge_t));
    apr_hash_set(si->rule_of, r->scope, APR_HASH_KEY_STRING, r);
    APR_ARRAY_PUSH(si->rules, rule_t *) = r;
    return r;
}

static reach_t *reach_of(const mcp_scope_implies_t *si, const char *scope)
{
    return si ? apr_hash_get(si->closure, scope, APR_HASH_KEY_STRING) : NULL;
}

static reach_t *reach_for(mcp_scope_implies_t *si, const char *scope)
{
    reach_t *r = reach_of(si, scope);
    if (r)
        return r;
    r = apr_palloc(si->pool, sizeof(*r));
    r->list = apr_array_make(si->pool, 4, sizeof(const char *));
    r->set = apr_hash_make(si->pool);
    apr_hash_set(si->closure, apr_pstrdup(si->pool, scope), APR_HASH_KEY_STRING, r);
    return r;
}

static void reach_add(reach_t *r, const char *scope)
{
    if (apr_hash_get(r->set, scope, APR_HASH_KEY_STRING))
        return;
    apr_hash_set(r->set, scope, APR_HASH_KEY_STRING, scope);
    APR_ARRAY_PUSH(r->list, const char *) = scope;
}

/* Steps of a cycle shown before and after the " -> ... (n more)". */
#define CYCLE_HEAD 8
#define CYCLE_TAIL 3

/* A path from `from` to `to` over the written edges, as text
 * " -> x (where) -> ... -> to (where)"; NULL when there is none.
 * Breadth-first: the shortest cycle is the clearest to read. `to` may be
 * `from` (a cycle): it is recognised before the visited check. */
static const char *path_text(mcp_scope_implies_t *si, const char *from, const char *to)
{
    apr_pool_t *p = si->pool;
    apr_hash_t *via = apr_hash_make(p);  /* scope -> the edge_t * it was first reached by */
    apr_hash_t *prev = apr_hash_make(p); /* scope -> the scope before it */
    apr_array_header_t *queue = apr_array_make(p, 8, sizeof(const char *));
    apr_array_header_t *steps;
    const edge_t *last = NULL;
    const char *cur = NULL;
    int head, i;

    APR_ARRAY_PUSH(queue, const char *) = from;
    apr_hash_set(prev, from, APR_HASH_KEY_STRING, "");
    for (head = 0; head < queue->nelts && !last; head++) {
        const rule_t *r = apr_hash_get(si->rule_of, APR_ARRAY_IDX(queue, head, const char *), APR_HASH_KEY_STRING);
        for (i = 0; r && i < r->edges->nelts; i++) {
            const edge_t *e = &APR_ARRAY_IDX(r->edges, i, edge_t);
            if (strcmp(e->to, to) == 0) {
                last = e;
                cur = r->scope;
                break;
            }
            if (apr_hash_get(prev, e->to, APR_HASH_KEY_STRING))
                continue;
            apr_hash_set(prev, e->to, APR_HASH_KEY_STRING, r->scope);
            apr_hash_set(via, e->to, APR_HASH_KEY_STRING, e);
            APR_ARRAY_PUSH(queue, const char *) = e->to;
        }
    }
    if (!last)
        return NULL;
    /* Walked back from the end, joined once (a long chain stays linear). */
    steps = apr_array_make(p, 8, sizeof(const char *));
    APR_ARRAY_PUSH(steps, const char *) = apr_pstrcat(p, " -> ", to, " (", last->where, ")", NULL);
    for (; strcmp(cur, from) != 0; cur = apr_hash_get(prev, cur, APR_HASH_KEY_STRING)) {
        const edge_t *e = apr_hash_get(via, cur, APR_HASH_KEY_STRING);
        APR_ARRAY_PUSH(steps, const char *) = apr_pstrcat(p, " -> ", cur, " (", e->where, ")", NULL);
    }
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
    return apr_array_pstrcat(p, steps, 0);
}

/* The edge a -> b, written at where. The closure grows incrementally: every
 * scope that reaches a (a included) now also reaches b and all b reaches.
 * Returns the cycle text when b already reached a (or is a). */
static const char *add_edge(mcp_scope_implies_t *si, const char *a, const char *b, const char *where)
{
    rule_t *rule = rule_for(si, a);
    reach_t *ra, *rb;
    apr_array_header_t *gain, *affected;
    apr_hash_index_t *hi;
    const char *cycle = NULL;
    int i, j;

    for (i = 0; i < rule->edges->nelts; i++)
        if (strcmp(APR_ARRAY_IDX(rule->edges, i, edge_t).to, b) == 0)
            return NULL; /* written before: nothing new */
    {
        edge_t *e = apr_array_push(rule->edges);
        e->to = apr_pstrdup(si->pool, b);
        e->where = where ? apr_pstrdup(si->pool, where) : "?";
        b = e->to;
    }
    rb = reach_of(si, b);
    if (strcmp(a, b) == 0 || (rb && apr_hash_get(rb->set, a, APR_HASH_KEY_STRING))) {
        const char *path = path_text(si, a, a);
        cycle = apr_pstrcat(si->pool, rule->scope, path ? path : apr_pstrcat(si->pool, " -> ", b, NULL), NULL);
    }
    ra = reach_for(si, rule->scope);
    if (apr_hash_get(ra->set, b, APR_HASH_KEY_STRING))
        return cycle; /* already implied through another scope */
    /* Copied first: on a cycle b's own reach is among those that grow. */
    gain = apr_array_make(si->pool, 1 + (rb ? rb->list->nelts : 0), sizeof(const char *));
    APR_ARRAY_PUSH(gain, const char *) = b;
    if (rb)
        apr_array_cat(gain, rb->list);
    affected = apr_array_make(si->pool, 4, sizeof(reach_t *));
    APR_ARRAY_PUSH(affected, reach_t *) = ra;
    for (hi = apr_hash_first(si->pool, si->closure); hi; hi = apr_hash_next(hi)) {
        reach_t *rx = apr_hash_this_val(hi);
        if (rx != ra && apr_hash_get(rx->set, rule->scope, APR_HASH_KEY_STRING))
            APR_ARRAY_PUSH(affected, reach_t *) = rx;
    }
    for (i = 0; i < affected->nelts; i++)
        for (j = 0; j < gain->nelts; j++)
            reach_add(APR_ARRAY_IDX(affected, i, reach_t *), APR_ARRAY_IDX(gain, j, const char *));
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
static void replay(mcp_scope_implies_t *si, const rule_t *r, const char **cycle)
{
    int i;
    for (i = 0; i < r->edges->nelts; i++) {
        const edge_t *e = &APR_ARRAY_IDX(r->edges, i, edge_t);
        const char *c = add_edge(si, r->scope, e->to, e->where);
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
     * sections for a request; a few hash operations per rule. */
    out = mcp_scope_implies_make(p);
    for (i = 0; i < base->rules->nelts; i++) {
        const rule_t *r = APR_ARRAY_IDX(base->rules, i, const rule_t *);
        if (!apr_hash_get(add->rule_of, r->scope, APR_HASH_KEY_STRING))
            replay(out, r, cycle);
    }
    for (i = 0; i < add->rules->nelts; i++)
        replay(out, APR_ARRAY_IDX(add->rules, i, const rule_t *), cycle);
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

const apr_array_header_t *mcp_scope_implied_by(const mcp_scope_implies_t *si, const char *scope)
{
    const reach_t *r = reach_of(si, scope);
    return r ? r->list : NULL;
}

int mcp_scope_implies_count(const mcp_scope_implies_t *si)
{
    return si ? si->rules->nelts : 0;
}

apr_array_header_t *mcp_scope_expand(apr_pool_t *p, apr_array_header_t *granted, const mcp_scope_implies_t *si)
{
    apr_array_header_t *out = NULL;
    apr_hash_t *seen = NULL;
    int i, j;

    if (!granted || !mcp_scope_implies_count(si))
        return granted;
    for (i = 0; i < granted->nelts; i++) {
        const reach_t *r = reach_of(si, APR_ARRAY_IDX(granted, i, const char *));
        if (!r)
            continue;
        if (!out) {
            /* First scope that implies anything: from here on, a set. */
            out = apr_array_copy(p, granted);
            seen = apr_hash_make(p);
            for (j = 0; j < granted->nelts; j++)
                apr_hash_set(seen, APR_ARRAY_IDX(granted, j, const char *), APR_HASH_KEY_STRING, "");
        }
        for (j = 0; j < r->list->nelts; j++) {
            const char *s = APR_ARRAY_IDX(r->list, j, const char *);
            if (!apr_hash_get(seen, s, APR_HASH_KEY_STRING)) {
                apr_hash_set(seen, s, APR_HASH_KEY_STRING, "");
                APR_ARRAY_PUSH(out, const char *) = s;
            }
        }
    }
    return out ? out : granted;
}
