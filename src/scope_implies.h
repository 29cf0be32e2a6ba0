/* SPDX-License-Identifier: Apache-2.0 */
/* Scope hierarchy (MCPAuthScopeImplies, MCP 2026-07-28 "a broader scope
 * implies narrower ones"): the implication rules of one configuration
 * section and their transitive closure (one bitset per scope), built while
 * the directive lines are read, so a request only looks up each granted
 * scope once. Scopes are case-sensitive exact strings. APR only: linked
 * into the unit tests. */
#ifndef MCP_SCOPE_IMPLIES_H
#define MCP_SCOPE_IMPLIES_H

#include <apr_pools.h>
#include <apr_tables.h>

typedef struct mcp_scope_implies mcp_scope_implies_t;

/* An empty rule set whose data lives in p. */
mcp_scope_implies_t *mcp_scope_implies_make(apr_pool_t *p);

/* True when s is one RFC 6749 3.3 scope-token (%x21 / %x23-5B / %x5D-7E,
 * at least one character). */
int mcp_scope_token_ok(const char *s);

/* One directive line: scope implies each of implied (const char *); a scope
 * written again adds to its list (union). where ("file:line") names the
 * line in cycle reports. Returns NULL, or the cycle this line closes, as
 * text: "a -> b (where) -> a (where)" (a cycle of more than 12 steps shows
 * its first 8, " -> ... (n more)", and its last 3). The closure is updated
 * either way. */
const char *mcp_scope_implies_add(mcp_scope_implies_t *si, const char *scope, const apr_array_header_t *implied,
                                  const char *where);

/* Nested sections: base's rules, minus those for a scope add also has
 * (add's entry replaces that one), plus add's. Returns base or add itself
 * when the other has no rules; otherwise a new set in p. *cycle (when not
 * NULL) gets the first cycle the merge makes, or NULL. */
const mcp_scope_implies_t *mcp_scope_implies_merge(apr_pool_t *p, const mcp_scope_implies_t *base,
                                                   const mcp_scope_implies_t *add, const char **cycle);

/* Merges remembered by the pair of rule sets they were made from: the
 * configuration check merges nested sections once (in the parent, before
 * any request), and a request that merges the same pair takes the result
 * instead of building the closure again. Keys are addresses, so only rule
 * sets that live as long as the memo may be remembered. */
typedef struct mcp_scope_implies_memo mcp_scope_implies_memo_t;

mcp_scope_implies_memo_t *mcp_scope_implies_memo_make(apr_pool_t *p);

/* mcp_scope_implies_merge through memo m (may be NULL): a remembered pair
 * answers from m; otherwise the merge is made in p, and remembered when
 * `remember` (p must then live as long as m; never at request time, when m
 * is shared by threads and only read). */
const mcp_scope_implies_t *mcp_scope_implies_merge_memo(mcp_scope_implies_memo_t *m, int remember, apr_pool_t *p,
                                                        const mcp_scope_implies_t *base, const mcp_scope_implies_t *add,
                                                        const char **cycle);

/* Every scope `scope` implies, directly or not (const char *, in the order
 * the names were first written), made in p; NULL when it implies nothing. */
apr_array_header_t *mcp_scope_implied_by(apr_pool_t *p, const mcp_scope_implies_t *si, const char *scope);

/* Number of scopes with rules (0 for NULL). */
int mcp_scope_implies_count(const mcp_scope_implies_t *si);

/* The granted set (const char *, no duplicates) plus everything its scopes
 * imply: the token's own first and in its order, then the implied ones in
 * the order their names were first written. One lookup per granted scope
 * and one bitset OR per scope that implies something. granted itself when
 * nothing is implied (no copy); otherwise a new array in p. */
apr_array_header_t *mcp_scope_expand(apr_pool_t *p, apr_array_header_t *granted, const mcp_scope_implies_t *si);

#endif
