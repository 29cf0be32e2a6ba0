/* SPDX-License-Identifier: Apache-2.0 */
/* The whole verifier (mcp_verify_jwt) against a fixed key set made once in
 * LLVMFuzzerInitialize: an ES256 key (kid "es"), an RS256 key (kid "rs"), a
 * P-256 key with neither kid nor alg, and a 64-byte HMAC secret.
 *
 * The first input byte picks the mode (low two bits) and policy variants:
 *   0     the rest is a token as a client would send it. The keys are fresh
 *         random keys, so no input can carry a valid signature: acceptance
 *         is a forgery (alg confusion, "none", a signature check bypass).
 *   1..3  "<header JSON>\0<payload bytes>" is signed here with the ES256,
 *         RS256 or HS256 key (a missing "alg" is filled in) and then
 *         verified, which reaches the key selection and claim rules with
 *         fuzzed headers and claims. Acceptance must mean: the algorithm the
 *         token was really signed with, a configured issuer, claims that
 *         satisfy the policy.
 * Bits 2..7 vary the policy: allowed algorithms, HMAC secret configured,
 * required typ, --jws-only, audience check, a third issuer that accepts
 * any "iss". */
#include "fuzz_common.h"
#include "json_util.h"
#include "jws_sign.h"
#include "verifier.h"

#include <openssl/err.h>
#include <sanitizer/lsan_interface.h>

#define NOW 1700000000LL
static const char *const AUDS[] = {"https://mcp.example.com/mcp", "api://default"};
static const char *const REQUIRED[] = {"sub"};
static const unsigned char HMAC_SECRET[] = "fuzz-hmac-secret-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL";

static apr_pool_t *gpool;
static EVP_PKEY *es_key, *rs_key;
static mcp_jwks_t *keys;
static mcp_jwk_t *hmac_key;
static mcp_trusted_issuer_t issuers[3];

static apr_status_t pkey_free(void *k)
{
    EVP_PKEY_free(k);
    return APR_SUCCESS;
}

static EVP_PKEY *keygen(mcp_alg alg)
{
    EVP_PKEY *k = mcp_keygen(alg, 0);
    if (!k) {
        fprintf(stderr, "fuzz_verify: keygen %s failed\n", mcp_alg_name(alg));
        abort();
    }
    apr_pool_cleanup_register(gpool, k, pkey_free, apr_pool_cleanup_null);
    return k;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    json_t *doc, *arr, *anon;
    EVP_PKEY *anon_key;
    char *text;
    const char *why = NULL;

    fz_global_init();
    /* Made once for the whole run and never freed; APR keeps the pointers
     * in pool memory LeakSanitizer does not scan, so it would call them lost. */
    __lsan_disable();
    apr_pool_create(&gpool, NULL);
    es_key = keygen(MCP_ALG_ES256);
    rs_key = keygen(MCP_ALG_RS256);
    anon_key = keygen(MCP_ALG_ES256);

    arr = json_array();
    json_array_append_new(arr, mcp_jwk_public(es_key, "es", MCP_ALG_ES256));
    json_array_append_new(arr, mcp_jwk_public(rs_key, "rs", MCP_ALG_RS256));
    anon = mcp_jwk_public(anon_key, NULL, MCP_ALG_ES256);
    json_object_del(anon, "alg");
    json_array_append_new(arr, anon);
    doc = json_pack("{s:o}", "keys", arr);
    text = json_dumps(doc, JSON_COMPACT);
    if (!text || mcp_jwks_parse(gpool, text, strlen(text), &keys, &why) != 0 || keys->nkeys != 3) {
        fprintf(stderr, "fuzz_verify: key set: %s\n", why ? why : "?");
        abort();
    }
    free(text);
    json_decref(doc);
    hmac_key = mcp_jwk_from_secret(gpool, HMAC_SECRET, sizeof(HMAC_SECRET) - 1);

    issuers[0].issuer = "https://issuer.example/";
    issuers[0].keys = keys;
    issuers[1].issuer = "https://other.example";
    issuers[1].keys = keys;
    issuers[2].issuer = NULL; /* any issuer (mcp-auth-token without --issuer) */
    issuers[2].keys = keys;
    __lsan_enable();
    return 0;
}

static void policy(mcp_verify_policy_t *pol, unsigned variant)
{
    memset(pol, 0, sizeof(*pol));
    pol->issuers = issuers;
    pol->n_issuers = (variant & 0x80) ? 3 : 2;
    pol->alg_mask = (variant & 0x04) ? MCP_ALG_BIT(MCP_ALG_ES256) | MCP_ALG_BIT(MCP_ALG_HS256)
                                     : MCP_ALG_MASK_DEFAULT | MCP_ALG_MASK_HMAC;
    pol->hmac_key = (variant & 0x08) ? NULL : hmac_key;
    pol->token_type = (variant & 0x10) ? "at+jwt" : NULL;
    pol->max_token_size = 16384;
    pol->jws_only = (variant & 0x20) != 0;
    pol->claims.audiences = AUDS;
    pol->claims.n_audiences = (variant & 0x40) ? 0 : 2;
    pol->claims.required = REQUIRED;
    pol->claims.n_required = 1;
    pol->claims.skew = 30;
    pol->claims.now = NOW;
}

/* Signs "<header JSON>\0<payload>" with the mode's key; NULL when the
 * header cannot be used (not an object, unserializable). */
static char *sign_input(apr_pool_t *p, unsigned mode, const uint8_t *data, size_t size, mcp_alg *alg)
{
    const uint8_t *payload;
    size_t payload_len, hlen = fz_split(data, size, &payload, &payload_len);
    json_t *header = hlen ? mcp_json_parse(p, (const char *)data, hlen) : mcp_json_own(p, json_object());
    const char *err = NULL;
    char *tok;

    *alg = mode == 1 ? MCP_ALG_ES256 : mode == 2 ? MCP_ALG_RS256 : MCP_ALG_HS256;
    if (!json_is_object(header))
        return NULL;
    if (!json_object_get(header, "alg"))
        json_object_set_new(header, "alg", json_string(mcp_alg_name(*alg)));
    if (!payload)
        payload = (const uint8_t *)"";
    tok = mcp_jws_sign(p, *alg,
                       *alg == MCP_ALG_HS256   ? NULL
                       : *alg == MCP_ALG_ES256 ? es_key
                                               : rs_key,
                       HMAC_SECRET, sizeof(HMAC_SECRET) - 1, header, (const char *)payload, payload_len, &err);
    ERR_clear_error();
    return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    mcp_verify_policy_t pol;
    mcp_verified_t out;
    mcp_fail_t fail = {0};
    mcp_alg signed_alg = MCP_ALG_UNKNOWN;
    unsigned mode;
    const char *tok;
    size_t len;
    int rc;

    if (size < 1)
        return 0;
    p = fz_pool();
    mode = data[0] & 3;
    policy(&pol, data[0]);
    if (mode == 0) {
        tok = (const char *)data + 1;
        len = size - 1;
    }
    else {
        tok = sign_input(p, mode, data + 1, size - 1, &signed_alg);
        len = tok ? strlen(tok) : 0;
    }
    if (tok) {
        rc = mcp_verify_jwt(p, tok, len, &pol, NULL, &out, &fail);
        if (rc == 0) {
            FZ_ASSERT(mode != 0); /* a forgery */
            FZ_ASSERT(out.alg == signed_alg);
            FZ_ASSERT(pol.alg_mask & MCP_ALG_BIT(out.alg));
            FZ_ASSERT(out.header && json_is_object(out.header));
            FZ_ASSERT(out.issuer_index >= 0 && out.issuer_index < pol.n_issuers);
            if (!pol.jws_only) {
                FZ_ASSERT(json_is_object(out.claims));
                if (issuers[out.issuer_index].issuer)
                    FZ_ASSERT(mcp_json_str(out.claims, "iss") &&
                              strcmp(mcp_json_str(out.claims, "iss"), issuers[out.issuer_index].issuer) == 0);
                FZ_ASSERT(mcp_claims_check(p, out.claims, &pol.claims, &fail) == 0);
            }
        }
        else {
            FZ_ASSERT(fail.reason != NULL);
            FZ_ASSERT(fail.kind == MCP_FAIL_INVALID_TOKEN);
        }
    }
    ERR_clear_error();
    apr_pool_destroy(p);
    return 0;
}
