/* SPDX-License-Identifier: Apache-2.0 */
/* Signature verification for every supported JWS algorithm with OpenSSL 3
 * EVP: RSA PKCS#1 v1.5 and PSS (MGF1 = hash, salt = hash length), ECDSA
 * with raw R||S signatures, Ed25519, and HMAC compared in constant time. */
#ifndef MCP_JWS_VERIFY_H
#define MCP_JWS_VERIFY_H

#include <stddef.h>

#include "jwk.h"

/* 1 when sig is a valid signature by key over msg with alg, 0 otherwise.
 * The caller has checked mcp_jwk_fits_alg(key, alg). */
int mcp_jws_verify(mcp_alg alg, const mcp_jwk_t *key, const unsigned char *msg, size_t msglen, const unsigned char *sig,
                   size_t siglen);

/* ECDSA: raw R||S (2 * coord bytes) to a DER SEQUENCE in out (bounded by
 * outsize). Returns the DER length, or 0 when it does not fit. */
size_t mcp_ecdsa_raw_to_der(const unsigned char *raw, size_t coord_len, unsigned char *out, size_t outsize);

#endif
