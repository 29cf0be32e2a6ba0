/* SPDX-License-Identifier: Apache-2.0 */
/* Signing side, for mcp-auth-token and the tests: key generation, public
 * JWK export, and compact JWS creation for every supported algorithm
 * (ECDSA signatures converted from DER to the raw R||S JWS form). */
#ifndef MCP_JWS_SIGN_H
#define MCP_JWS_SIGN_H

#include <apr_pools.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "jose_alg.h"

/* A new private key for alg (RSA 2048 unless bits > 0; the curve the alg
 * names; Ed25519). NULL for HMAC algorithms or on failure. Caller frees. */
EVP_PKEY *mcp_keygen(mcp_alg alg, int bits);

/* Public JWK {"kty",...,"kid","use":"sig","alg"} of a private or public key. */
json_t *mcp_jwk_public(const EVP_PKEY *pkey, const char *kid, mcp_alg alg);

/* Compact JWS of header and payload objects. For HS* pass secret, else pkey.
 * Returns NULL (with *err) on failure. */
char *mcp_jws_sign(apr_pool_t *p, mcp_alg alg, EVP_PKEY *pkey, const unsigned char *secret, size_t secret_len,
                   const json_t *header, const char *payload, size_t payload_len, const char **err);

#endif
