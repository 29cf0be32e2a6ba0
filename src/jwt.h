/* SPDX-License-Identifier: Apache-2.0 */
/* Compact JWS (RFC 7515) split and decode with the JWT BCP's header rules
 * (RFC 8725): exactly three parts, strict base64url, a JSON object header
 * without duplicates, a known "alg" (never "none"), no "crit", no "b64". */
#ifndef MCP_JWT_H
#define MCP_JWT_H

#include <apr_pools.h>
#include <jansson.h>

#include "jose_alg.h"
#include "fail.h"

typedef struct {
    const char *signing_input; /* "header.payload", not NUL-terminated */
    size_t signing_input_len;
    json_t *header; /* owned by the pool */
    mcp_alg alg;
    const char *kid;        /* NULL when absent */
    const char *typ;        /* NULL when absent */
    unsigned char *payload; /* decoded, NUL-terminated */
    size_t payload_len;
    unsigned char *sig;
    size_t sig_len;
} mcp_jws_t;

/* Counts the dot-separated parts of a compact serialization. */
int mcp_compact_parts(const char *token, size_t len);

/* Splits and decodes; checks the header rules. Does not verify anything
 * cryptographic and does not look at the payload's content. */
int mcp_jws_parse(apr_pool_t *p, const char *token, size_t len, mcp_jws_t *out, mcp_fail_t *fail);

/* Payload as a JSON object of claims (strict parse). */
int mcp_jws_claims(apr_pool_t *p, const mcp_jws_t *jws, json_t **claims, mcp_fail_t *fail);

/* RFC 7515 4.1.9: "typ" compares case-insensitively and "application/"
 * may be left out, so "at+jwt" matches "application/at+JWT". */
int mcp_typ_matches(const char *want, const char *got);

#endif
