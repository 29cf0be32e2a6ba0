/* SPDX-License-Identifier: Apache-2.0 */
/* Claim paths, scopes and Require mcp-claim matching. Input:
 * "<path>\0<wanted values, space-separated>\0<claims JSON>". A path and its
 * "$."-prefixed spelling name the same value; a token's scopes are a set of
 * non-empty, blank-free strings that survive join + split; a claim whose
 * string value is among the wanted values matches. */
#include "scopes.h"
#include "fuzz_common.h"
#include "json_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_global_init();
    return 0;
}

static void check_scope_set(apr_pool_t *p, const apr_array_header_t *set)
{
    const char *joined = mcp_scope_join(p, set);
    apr_array_header_t *again;
    int i, j;

    for (i = 0; i < set->nelts; i++) {
        const char *s = APR_ARRAY_IDX(set, i, const char *);
        FZ_ASSERT(s && *s && !strchr(s, ' ') && !strchr(s, '\t'));
        FZ_ASSERT(mcp_scope_has(set, s));
        for (j = 0; j < i; j++)
            FZ_ASSERT(strcmp(s, APR_ARRAY_IDX(set, j, const char *)) != 0);
    }
    FZ_ASSERT((joined == NULL) == (set->nelts == 0));
    again = mcp_scope_split(p, joined);
    FZ_ASSERT(again->nelts == set->nelts);
    for (i = 0; i < set->nelts; i++)
        FZ_ASSERT(strcmp(APR_ARRAY_IDX(set, i, const char *), APR_ARRAY_IDX(again, i, const char *)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    const uint8_t *r1, *r2 = NULL;
    size_t l1, l2 = 0, l0 = fz_split(data, size, &r1, &l1);
    const char *path = fz_cstr(p, data, l0), *wanted_text;
    apr_array_header_t *wanted;
    json_t *claims, *v;

    if (r1)
        l1 = fz_split(r1, l1, &r2, &l2);
    wanted_text = r1 ? fz_cstr(p, r1, l1) : "";
    claims = r2 ? mcp_json_parse(p, (const char *)r2, l2) : NULL;
    wanted = mcp_scope_split(p, wanted_text);
    check_scope_set(p, wanted);

    v = mcp_claim_path(claims, path);
    if (strncmp(path, "$.", 2) != 0 && strcmp(path, "$") != 0)
        FZ_ASSERT(v == mcp_claim_path(claims, apr_pstrcat(p, "$.", path, NULL)));
    if (claims && strcmp(path, "$") == 0)
        FZ_ASSERT(v == claims);
    if (json_is_string(v) && mcp_scope_has(wanted, json_string_value(v)))
        FZ_ASSERT(mcp_claim_matches(v, (const char *const *)wanted->elts, wanted->nelts));
    (void)mcp_claim_matches(v, (const char *const *)wanted->elts, wanted->nelts);

    if (json_is_object(claims)) {
        check_scope_set(p, mcp_token_scopes(p, claims, NULL));
        check_scope_set(p, mcp_token_scopes(p, claims, path));
    }
    apr_pool_destroy(p);
    return 0;
}
