/* SPDX-License-Identifier: Apache-2.0 */
/* Registered-claim rules. The input as JSON goes through mcp_claims_check
 * under several policies (audiences, required claims, skew, exp optional);
 * an accepted claim set must really satisfy the policy. The input split at
 * its first NUL gives two audience values for mcp_audience_equal, which must
 * be an equivalence (reflexive, symmetric; transitive over "aud" arrays). */
#include "claim_check.h"
#include "fuzz_common.h"
#include "json_util.h"

#include <math.h>

static const char *const AUDS[] = {"https://mcp.example.com/mcp", "api://default", "https://[::1]:8443/x/",
                                   "HTTP://Example.COM"};
static const char *const REQUIRED[] = {"sub", "client_id", "scope"};
#define NOW 1700000000LL

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_global_init();
    return 0;
}

static int number(const json_t *claims, const char *name, double *v)
{
    json_t *j = json_object_get(claims, name);
    if (!json_is_number(j))
        return 0;
    *v = json_number_value(j);
    return 1;
}

static void check_accepted(const json_t *claims, const mcp_claim_policy_t *pol)
{
    double v;
    int i;
    if (!pol->exp_optional)
        FZ_ASSERT(json_object_get(claims, "exp"));
    if (number(claims, "exp", &v))
        FZ_ASSERT(isfinite(v) && (double)pol->now < v + (double)pol->skew);
    else
        FZ_ASSERT(!json_object_get(claims, "exp"));
    if (number(claims, "nbf", &v))
        FZ_ASSERT(v <= (double)(pol->now + pol->skew));
    else
        FZ_ASSERT(!json_object_get(claims, "nbf"));
    if (number(claims, "iat", &v))
        FZ_ASSERT(v <= (double)(pol->now + pol->skew));
    else
        FZ_ASSERT(!json_object_get(claims, "iat"));
    for (i = 0; i < pol->n_required; i++)
        FZ_ASSERT(json_object_get(claims, pol->required[i]) &&
                  !json_is_null(json_object_get(claims, pol->required[i])));
    if (pol->n_audiences)
        FZ_ASSERT(mcp_audience_accepted(json_object_get(claims, "aud"), pol->audiences, pol->n_audiences));
}

static void check_equivalence(const char *a, const char *b)
{
    int ab = mcp_audience_equal(a, b);
    FZ_ASSERT(mcp_audience_equal(a, a) && mcp_audience_equal(b, b));
    FZ_ASSERT(ab == mcp_audience_equal(b, a));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    json_t *claims = mcp_json_parse(p, (const char *)data, size);
    const uint8_t *rest;
    size_t rest_len, first = fz_split(data, size, &rest, &rest_len);

    if (json_is_object(claims)) {
        mcp_claim_policy_t pols[4] = {
            {AUDS, 1, REQUIRED, 1, 30, NOW, 0},
            {AUDS, 4, REQUIRED, 3, 0, NOW, 0},
            {NULL, 0, NULL, 0, 300, NOW, 1},
            {AUDS + 1, 3, REQUIRED + 2, 1, 5, -NOW, 1},
        };
        json_t *aud = json_object_get(claims, "aud");
        int i;
        for (i = 0; i < 4; i++) {
            mcp_fail_t fail = {0};
            if (mcp_claims_check(p, claims, &pols[i], &fail) == 0)
                check_accepted(claims, &pols[i]);
            else
                FZ_ASSERT(fail.kind == MCP_FAIL_INVALID_TOKEN && fail.reason);
        }
        /* Audience comparison over the strings of an "aud" array (bounded). */
        if (json_is_array(aud) && json_array_size(aud) <= 12) {
            size_t x, y, z, n = json_array_size(aud);
            for (x = 0; x < n; x++)
                for (y = 0; y < n; y++) {
                    const char *a = json_string_value(json_array_get(aud, x));
                    const char *b = json_string_value(json_array_get(aud, y));
                    if (!a || !b)
                        continue;
                    check_equivalence(a, b);
                    for (z = 0; z < n && mcp_audience_equal(a, b); z++) {
                        const char *c = json_string_value(json_array_get(aud, z));
                        if (c && mcp_audience_equal(b, c))
                            FZ_ASSERT(mcp_audience_equal(a, c));
                    }
                }
        }
    }
    if (rest)
        check_equivalence(fz_cstr(p, data, first), fz_cstr(p, rest, rest_len));
    apr_pool_destroy(p);
    return 0;
}
