/* SPDX-License-Identifier: Apache-2.0 */
/* The table of JWS algorithms (RFC 7518, RFC 8037) this engine knows:
 * names, the key type and curve each needs, digest and signature sizes.
 * Digests are fetched once per process by mcp_jose_init(). */
#ifndef MCP_JOSE_ALG_H
#define MCP_JOSE_ALG_H

#include <openssl/evp.h>

typedef enum {
    MCP_ALG_UNKNOWN = 0,
    MCP_ALG_RS256,
    MCP_ALG_RS384,
    MCP_ALG_RS512,
    MCP_ALG_PS256,
    MCP_ALG_PS384,
    MCP_ALG_PS512,
    MCP_ALG_ES256,
    MCP_ALG_ES384,
    MCP_ALG_ES512,
    MCP_ALG_EDDSA,
    MCP_ALG_HS256,
    MCP_ALG_HS384,
    MCP_ALG_HS512,
    MCP_ALG_COUNT
} mcp_alg;

typedef enum { MCP_KTY_NONE = 0, MCP_KTY_RSA, MCP_KTY_EC, MCP_KTY_OKP, MCP_KTY_OCT } mcp_kty;
typedef enum { MCP_CRV_NONE = 0, MCP_CRV_P256, MCP_CRV_P384, MCP_CRV_P521, MCP_CRV_ED25519 } mcp_crv;

#define MCP_ALG_BIT(a) (1u << (a))
#define MCP_ALG_MASK_HMAC (MCP_ALG_BIT(MCP_ALG_HS256) | MCP_ALG_BIT(MCP_ALG_HS384) | MCP_ALG_BIT(MCP_ALG_HS512))
/* SPEC default: every asymmetric algorithm. */
#define MCP_ALG_MASK_DEFAULT (((1u << MCP_ALG_COUNT) - 2u) & ~MCP_ALG_MASK_HMAC)

/* Exact, case-sensitive lookup ("rs256" is not RS256). */
mcp_alg mcp_alg_from_name(const char *name);
const char *mcp_alg_name(mcp_alg alg);
mcp_kty mcp_alg_kty(mcp_alg alg);
/* The curve an EC/OKP algorithm needs; MCP_CRV_NONE for the others. */
mcp_crv mcp_alg_crv(mcp_alg alg);
/* Digest for the algorithm (NULL for EdDSA, which hashes internally). */
const EVP_MD *mcp_alg_md(mcp_alg alg);
/* Digest output size in bytes (HMAC tag size; minimum HMAC key size). */
size_t mcp_alg_hash_len(mcp_alg alg);
/* Byte size of one coordinate of the curve (32, 48, 66; 32 for Ed25519). */
size_t mcp_crv_coord_len(mcp_crv crv);
const char *mcp_crv_name(mcp_crv crv);
mcp_crv mcp_crv_from_name(const char *name);

/* Fetches digests once; call before threads start. Safe to call again. */
void mcp_jose_init(void);

#endif
