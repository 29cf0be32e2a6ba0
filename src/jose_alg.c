/* SPDX-License-Identifier: Apache-2.0 */
#include "jose_alg.h"

#include <string.h>

static const struct {
    const char *name;
    mcp_kty kty;
    mcp_crv crv;
    const char *md;
    size_t hash_len;
} alg_table[MCP_ALG_COUNT] = {
    [MCP_ALG_RS256] = {"RS256", MCP_KTY_RSA, MCP_CRV_NONE, "SHA256", 32},
    [MCP_ALG_RS384] = {"RS384", MCP_KTY_RSA, MCP_CRV_NONE, "SHA384", 48},
    [MCP_ALG_RS512] = {"RS512", MCP_KTY_RSA, MCP_CRV_NONE, "SHA512", 64},
    [MCP_ALG_PS256] = {"PS256", MCP_KTY_RSA, MCP_CRV_NONE, "SHA256", 32},
    [MCP_ALG_PS384] = {"PS384", MCP_KTY_RSA, MCP_CRV_NONE, "SHA384", 48},
    [MCP_ALG_PS512] = {"PS512", MCP_KTY_RSA, MCP_CRV_NONE, "SHA512", 64},
    [MCP_ALG_ES256] = {"ES256", MCP_KTY_EC, MCP_CRV_P256, "SHA256", 32},
    [MCP_ALG_ES384] = {"ES384", MCP_KTY_EC, MCP_CRV_P384, "SHA384", 48},
    [MCP_ALG_ES512] = {"ES512", MCP_KTY_EC, MCP_CRV_P521, "SHA512", 64},
    [MCP_ALG_EDDSA] = {"EdDSA", MCP_KTY_OKP, MCP_CRV_ED25519, NULL, 0},
    [MCP_ALG_HS256] = {"HS256", MCP_KTY_OCT, MCP_CRV_NONE, "SHA256", 32},
    [MCP_ALG_HS384] = {"HS384", MCP_KTY_OCT, MCP_CRV_NONE, "SHA384", 48},
    [MCP_ALG_HS512] = {"HS512", MCP_KTY_OCT, MCP_CRV_NONE, "SHA512", 64},
};

/* Explicitly fetched digests: OpenSSL 3 otherwise re-fetches on each use. */
static EVP_MD *fetched_md[MCP_ALG_COUNT];

static int valid_alg(mcp_alg alg)
{
    return alg > MCP_ALG_UNKNOWN && alg < MCP_ALG_COUNT;
}

mcp_alg mcp_alg_from_name(const char *name)
{
    int i;
    if (!name)
        return MCP_ALG_UNKNOWN;
    for (i = 1; i < MCP_ALG_COUNT; i++)
        if (strcmp(alg_table[i].name, name) == 0)
            return (mcp_alg)i;
    return MCP_ALG_UNKNOWN;
}

const char *mcp_alg_name(mcp_alg alg)
{
    return valid_alg(alg) ? alg_table[alg].name : "unknown";
}

mcp_kty mcp_alg_kty(mcp_alg alg)
{
    return valid_alg(alg) ? alg_table[alg].kty : MCP_KTY_NONE;
}

mcp_crv mcp_alg_crv(mcp_alg alg)
{
    return valid_alg(alg) ? alg_table[alg].crv : MCP_CRV_NONE;
}

size_t mcp_alg_hash_len(mcp_alg alg)
{
    return valid_alg(alg) ? alg_table[alg].hash_len : 0;
}

const EVP_MD *mcp_alg_md(mcp_alg alg)
{
    if (!valid_alg(alg) || !alg_table[alg].md)
        return NULL;
    if (fetched_md[alg])
        return fetched_md[alg];
    return EVP_get_digestbyname(alg_table[alg].md);
}

void mcp_jose_init(void)
{
    int i;
    for (i = 1; i < MCP_ALG_COUNT; i++)
        if (alg_table[i].md && !fetched_md[i])
            fetched_md[i] = EVP_MD_fetch(NULL, alg_table[i].md, NULL);
}

static const struct {
    const char *name;
    size_t coord_len;
} crv_table[] = {
    [MCP_CRV_NONE] = {"", 0},       [MCP_CRV_P256] = {"P-256", 32},      [MCP_CRV_P384] = {"P-384", 48},
    [MCP_CRV_P521] = {"P-521", 66}, [MCP_CRV_ED25519] = {"Ed25519", 32},
};

size_t mcp_crv_coord_len(mcp_crv crv)
{
    return crv <= MCP_CRV_ED25519 ? crv_table[crv].coord_len : 0;
}

const char *mcp_crv_name(mcp_crv crv)
{
    return crv <= MCP_CRV_ED25519 ? crv_table[crv].name : "";
}

mcp_crv mcp_crv_from_name(const char *name)
{
    int i;
    if (!name)
        return MCP_CRV_NONE;
    for (i = MCP_CRV_P256; i <= MCP_CRV_ED25519; i++)
        if (strcmp(crv_table[i].name, name) == 0)
            return (mcp_crv)i;
    return MCP_CRV_NONE;
}
