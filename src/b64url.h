/* SPDX-License-Identifier: Apache-2.0 */
/* Strict base64url (RFC 4648 section 5) as JWS requires it: no padding,
 * no whitespace, no characters outside the alphabet, and the unused low
 * bits of the last character must be zero (one encoding per value). */
#ifndef MCP_B64URL_H
#define MCP_B64URL_H

#include <apr_pools.h>
#include <stddef.h>

/* Decodes in[0..len) into a pool buffer (NUL-terminated for convenience).
 * Returns 0, or -1 when the input is not canonical base64url. */
int mcp_b64url_decode(apr_pool_t *p, const char *in, size_t len, unsigned char **out, size_t *outlen);

/* Strict standard base64 (RFC 4648 section 4) for values that other
 * specifications carry in that alphabet (MCP's `=?base64?...?=` header
 * form): padding to a multiple of 4 required, the same canonical rules. */
int mcp_b64_decode(apr_pool_t *p, const char *in, size_t len, unsigned char **out, size_t *outlen);

/* Encodes without padding; the result is NUL-terminated. */
char *mcp_b64url_encode(apr_pool_t *p, const unsigned char *in, size_t len);

#endif
