/* SPDX-License-Identifier: Apache-2.0 */
/* The engine's SHA-256: digests of documents and answers, and the 32-byte
 * keys that name cache and store entries. One home for the EVP calls. */
#ifndef MCP_SHA256_H
#define MCP_SHA256_H

#include <stddef.h>

#define MCP_SHA256_LEN 32

/* One piece of a key's input. */
typedef struct {
    const void *data;
    size_t len;
} mcp_bytes_t;

/* SHA-256 of one buffer (content digests: a fetched document, a split
 * introspection answer, a client secret). */
void mcp_sha256(const void *data, size_t len, unsigned char out[MCP_SHA256_LEN]);

/* The key of a cache or store entry: SHA-256 over the parts in order, as
 * raw bytes. The caller makes the parts unambiguous (fixed lengths,
 * NUL-terminated strings or length prefixes) and puts a label naming the
 * kind of key first, so no two kinds of entry can share a key. */
void mcp_sha256_key(unsigned char out[MCP_SHA256_LEN], const mcp_bytes_t *parts, size_t n);

#endif
