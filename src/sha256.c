/* SPDX-License-Identifier: Apache-2.0 */
#include "sha256.h"

#include <openssl/evp.h>

#include "jose_alg.h"

/* SHA-256 as fetched once by mcp_jose_init (HS256's digest): EVP_sha256()
 * would look the implementation up again on every init, which costs more
 * than hashing a token (perf-guard's distinct-token path saw +2,300 Ir). */
static const EVP_MD *sha256_md(void)
{
    return mcp_alg_md(MCP_ALG_HS256);
}

void mcp_sha256(const void *data, size_t len, unsigned char out[MCP_SHA256_LEN])
{
    EVP_Digest(data, len, out, NULL, sha256_md(), NULL);
}

void mcp_sha256_key(unsigned char out[MCP_SHA256_LEN], const mcp_bytes_t *parts, size_t n)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    size_t i;

    EVP_DigestInit_ex(c, sha256_md(), NULL);
    for (i = 0; i < n; i++)
        EVP_DigestUpdate(c, parts[i].data, parts[i].len);
    EVP_DigestFinal_ex(c, out, NULL);
    EVP_MD_CTX_free(c);
}
