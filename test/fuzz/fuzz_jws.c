/* SPDX-License-Identifier: Apache-2.0 */
/* Compact JWS parsing and the JOSE header rules of RFC 8725: whatever the
 * bytes, a token that parses has three canonical base64url parts, a JSON
 * object header with a known "alg" (never "none"), no "crit", no "b64"
 * other than true, and string "kid"/"typ"; its claims, when they parse,
 * are a JSON object. */
#include "b64url.h"
#include "fuzz_common.h"
#include "jwt.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_global_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    const char *tok = (const char *)data;
    mcp_jws_t jws;
    mcp_fail_t fail = {0};
    json_t *claims = NULL;
    int parts = mcp_compact_parts(tok, size);

    if (mcp_jws_parse(p, tok, size, &jws, &fail) == 0) {
        const char *d1 = memchr(tok, '.', size), *d2 = d1 ? memchr(d1 + 1, '.', size - (size_t)(d1 - tok) - 1) : NULL;
        json_t *alg = json_object_get(jws.header, "alg"), *b64 = json_object_get(jws.header, "b64");
        FZ_ASSERT(parts == 3 && d1 && d2 && d1 > tok);
        FZ_ASSERT(json_is_object(jws.header));
        FZ_ASSERT(json_is_string(alg) && mcp_alg_from_name(json_string_value(alg)) == jws.alg);
        FZ_ASSERT(jws.alg != MCP_ALG_UNKNOWN && strcmp(json_string_value(alg), "none") != 0);
        FZ_ASSERT(!json_object_get(jws.header, "crit"));
        FZ_ASSERT(!b64 || json_is_true(b64));
        FZ_ASSERT(!json_object_get(jws.header, "kid") ||
                  (jws.kid && json_is_string(json_object_get(jws.header, "kid"))));
        FZ_ASSERT(!json_object_get(jws.header, "typ") ||
                  (jws.typ && json_is_string(json_object_get(jws.header, "typ"))));
        FZ_ASSERT(jws.signing_input == tok && jws.signing_input_len == (size_t)(d2 - tok));
        /* Strict base64url: re-encoding gives back the exact parts. */
        FZ_ASSERT(strlen(mcp_b64url_encode(p, jws.payload, jws.payload_len)) == (size_t)(d2 - d1 - 1));
        FZ_ASSERT(memcmp(mcp_b64url_encode(p, jws.payload, jws.payload_len), d1 + 1, (size_t)(d2 - d1 - 1)) == 0);
        FZ_ASSERT(strlen(mcp_b64url_encode(p, jws.sig, jws.sig_len)) == size - (size_t)(d2 - tok) - 1);
        FZ_ASSERT(memcmp(mcp_b64url_encode(p, jws.sig, jws.sig_len), d2 + 1, size - (size_t)(d2 - tok) - 1) == 0);
        FZ_ASSERT(jws.payload[jws.payload_len] == '\0');

        if (mcp_jws_claims(p, &jws, &claims, &fail) == 0)
            FZ_ASSERT(json_is_object(claims));
        else
            FZ_ASSERT(fail.kind == MCP_FAIL_INVALID_TOKEN && fail.reason);
        (void)mcp_typ_matches("at+jwt", jws.typ);
        (void)mcp_typ_matches("application/at+jwt", jws.typ);
    }
    else {
        FZ_ASSERT(fail.kind == MCP_FAIL_INVALID_TOKEN && fail.reason);
        /* Log-only detail is printable text (no raw token bytes). */
        if (fail.detail) {
            const char *c;
            for (c = fail.detail; *c; c++)
                FZ_ASSERT((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f);
        }
    }
    apr_pool_destroy(p);
    return 0;
}
