/* SPDX-License-Identifier: Apache-2.0 */
/* JWK and JWKS (RFC 7517/7518/8037) to OpenSSL public keys.
 * Only signature-verification keys survive parsing: RSA >= 2048 bits,
 * EC P-256/384/521 on the curve, OKP Ed25519; oct only where asked for. */
#ifndef MCP_JWK_H
#define MCP_JWK_H

#include <apr_pools.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "jose_alg.h"

typedef struct {
    const char *kid; /* NULL when the JWK has none */
    mcp_kty kty;
    mcp_crv crv;                 /* EC and OKP */
    mcp_alg alg;                 /* JWK "alg", MCP_ALG_UNKNOWN when absent */
    int bits;                    /* RSA modulus size, curve size otherwise */
    EVP_PKEY *pkey;              /* RSA, EC, OKP; freed with the pool */
    const unsigned char *secret; /* oct */
    size_t secret_len;
} mcp_jwk_t;

typedef struct {
    mcp_jwk_t **keys;
    int nkeys;
    int skipped;             /* members of "keys" that were not usable */
    const char *skip_reason; /* why the first skipped one was left out */
} mcp_jwks_t;

#define MCP_RSA_MIN_BITS 2048
#define MCP_RSA_MAX_BITS 16384

/* One JWK object. allow_oct: accept kty "oct" (never for a fetched JWKS).
 * Private members are ignored: only the public part is used. A JWK whose
 * "use" is not "sig", whose "key_ops" lacks "verify", or whose "alg" is
 * unknown is refused. Returns 0, or -1 with *why set. */
int mcp_jwk_from_json(apr_pool_t *p, const json_t *obj, int allow_oct, mcp_jwk_t **out, const char **why);

/* A JWKS document {"keys":[...]}: unusable members are skipped (counted),
 * a document without one usable key is an error. */
int mcp_jwks_parse(apr_pool_t *p, const char *text, size_t len, mcp_jwks_t **out, const char **why);

/* A key made from an HMAC secret (MCPAuthHMACSecret, --hmac-secret). */
mcp_jwk_t *mcp_jwk_from_secret(apr_pool_t *p, const unsigned char *secret, size_t len);

/* Does this key fit the algorithm: kty, curve, JWK alg, RSA size. */
int mcp_jwk_fits_alg(const mcp_jwk_t *key, mcp_alg alg);

#endif
