/* SPDX-License-Identifier: Apache-2.0 */
#include "sha256.h"

#include <openssl/evp.h>

void mcp_sha256(const void *data, size_t len, unsigned char out[MCP_SHA256_LEN])
{
    EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL);
}

void mcp_sha256_key(unsigned char out[MCP_SHA256_LEN], const mcp_bytes_t *parts, size_t n)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    size_t i;

    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    for (i = 0; i < n; i++)
        EVP_DigestUpdate(c, parts[i].data, parts[i].len);
    EVP_DigestFinal_ex(c, out, NULL);
    EVP_MD_CTX_free(c);
}
