/* SPDX-License-Identifier: Apache-2.0 */
#include "jwt.h"

#include <apr_strings.h>
#include <string.h>

#include "b64url.h"
#include "json_util.h"

int mcp_compact_parts(const char *token, size_t len)
{
    const char *cur = token, *end = token + len, *dot;
    int parts = 1;
    while ((dot = memchr(cur, '.', (size_t)(end - cur))) != NULL) {
        parts++;
        cur = dot + 1;
    }
    return parts;
}

/* Header members whose presence changes how the JWS must be processed.
 * We implement no extension, so any "crit" is a reason to refuse (RFC 7515
 * 4.1.11); "b64" (RFC 7797) changes the signing input and is refused too. */
static int header_rules(apr_pool_t *p, mcp_jws_t *out, mcp_fail_t *fail)
{
    json_t *alg = json_object_get(out->header, "alg"), *kid, *typ, *b64;

    if (json_object_get(out->header, "crit"))
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Unsupported crit header", NULL);
    b64 = json_object_get(out->header, "b64");
    if (b64 && !json_is_true(b64))
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Unsupported b64 header", NULL);
    if (!json_is_string(alg))
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Malformed token", "header has no alg string");
    out->alg = mcp_alg_from_name(json_string_value(alg));
    if (out->alg == MCP_ALG_UNKNOWN)
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Algorithm not allowed",
                        apr_psprintf(p, "alg %s", mcp_printable(p, json_string_value(alg), 32)));
    kid = json_object_get(out->header, "kid");
    if (kid && !json_is_string(kid))
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Malformed token", "kid is not a string");
    out->kid = kid ? json_string_value(kid) : NULL;
    typ = json_object_get(out->header, "typ");
    if (typ && !json_is_string(typ))
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Malformed token", "typ is not a string");
    out->typ = typ ? json_string_value(typ) : NULL;
    return 0;
}

int mcp_jws_parse(apr_pool_t *p, const char *token, size_t len, mcp_jws_t *out, mcp_fail_t *fail)
{
    const char *dot1, *dot2, *end = token + len;
    unsigned char *hdr;
    size_t hdr_len;
    int parts = mcp_compact_parts(token, len);

    memset(out, 0, sizeof(*out));
    if (parts == 5)
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Encrypted tokens (JWE) are not accepted", NULL);
    if (parts != 3)
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Malformed token",
                        apr_psprintf(p, "%d parts instead of 3", parts));
    dot1 = memchr(token, '.', len);
    dot2 = memchr(dot1 + 1, '.', (size_t)(end - dot1 - 1));
    if (dot1 == token)
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Malformed token", "empty header");
    if (mcp_b64url_decode(p, token, (size_t)(dot1 - token), &hdr, &hdr_len))
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Malformed token", "header is not base64url");
    if (mcp_b64url_decode(p, dot1 + 1, (size_t)(dot2 - dot1 - 1), &out->payload, &out->payload_len))
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Malformed token", "payload is not base64url");
    if (mcp_b64url_decode(p, dot2 + 1, (size_t)(end - dot2 - 1), &out->sig, &out->sig_len))
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Malformed token", "signature is not base64url");
    out->header = mcp_json_parse(p, (const char *)hdr, hdr_len);
    if (!json_is_object(out->header))
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Malformed token", "header is not a JSON object");
    out->signing_input = token;
    out->signing_input_len = (size_t)(dot2 - token);
    return header_rules(p, out, fail);
}

int mcp_jws_claims(apr_pool_t *p, const mcp_jws_t *jws, json_t **claims, mcp_fail_t *fail)
{
    json_t *c = mcp_json_parse(p, (const char *)jws->payload, jws->payload_len);
    if (!json_is_object(c))
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Malformed token", "payload is not a JSON object");
    *claims = c;
    return 0;
}

int mcp_typ_matches(const char *want, const char *got)
{
    if (!want || !got)
        return 0;
    if (strncasecmp(want, "application/", 12) == 0)
        want += 12;
    if (strncasecmp(got, "application/", 12) == 0)
        got += 12;
    return strcasecmp(want, got) == 0;
}
