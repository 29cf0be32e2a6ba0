/* SPDX-License-Identifier: Apache-2.0 */
/* RFC 7662 answer checking: the input as JSON is an introspection answer.
 * An accepted answer has "active": true, names a configured issuer when it
 * names one at all (and *issuer_index points at it), is not expired when it
 * carries exp, has an accepted audience when it carries aud, and has every
 * required claim. */
#include "claim_check.h"
#include "fuzz_common.h"
#include "introspect.h"
#include "json_util.h"

static const char *const AUDS[] = {"https://mcp.example.com/mcp", "api://default"};
static const char *const REQUIRED[] = {"sub", "client_id"};
#define NOW 1700000000LL

static mcp_trusted_issuer_t issuers[2] = {{.issuer = "https://issuer.example/"}, {.issuer = "https://other.example"}};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_global_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    json_t *result = mcp_json_parse(p, (const char *)data, size);
    int v;

    for (v = 0; v < 3; v++) {
        mcp_verify_policy_t pol;
        mcp_fail_t fail = {0};
        int idx = 42, i;

        memset(&pol, 0, sizeof(pol));
        pol.issuers = issuers;
        pol.n_issuers = v == 2 ? 1 : 2;
        pol.alg_mask = MCP_ALG_MASK_DEFAULT;
        pol.max_token_size = 16384;
        pol.claims.audiences = AUDS;
        pol.claims.n_audiences = v == 1 ? 0 : 2;
        pol.claims.required = REQUIRED;
        pol.claims.n_required = v;
        pol.claims.skew = 30;
        pol.claims.now = NOW;

        if (mcp_introspect_check(p, result, &pol, &idx, &fail) == 0) {
            json_t *iss = json_object_get(result, "iss"), *aud = json_object_get(result, "aud"), *exp;
            FZ_ASSERT(json_is_object(result) && json_is_true(json_object_get(result, "active")));
            if (iss) {
                FZ_ASSERT(json_is_string(iss) && idx >= 0 && idx < pol.n_issuers);
                FZ_ASSERT(strcmp(pol.issuers[idx].issuer, json_string_value(iss)) == 0);
            }
            else {
                FZ_ASSERT(idx == -1);
            }
            if (aud && pol.claims.n_audiences)
                FZ_ASSERT(mcp_audience_accepted(aud, pol.claims.audiences, pol.claims.n_audiences));
            exp = json_object_get(result, "exp");
            if (exp)
                FZ_ASSERT(json_is_number(exp) && (double)NOW < json_number_value(exp) + 30.0);
            for (i = 0; i < pol.claims.n_required; i++)
                FZ_ASSERT(json_object_get(result, REQUIRED[i]));
        }
        else {
            FZ_ASSERT(fail.kind == MCP_FAIL_INVALID_TOKEN && fail.reason);
        }
    }
    apr_pool_destroy(p);
    return 0;
}
