/* SPDX-License-Identifier: Apache-2.0 */
/* Mcp-Name / Mcp-Method against a body (MCP 2026-07-28). Input: header
 * value, NUL, JSON-RPC body. Invariants: an accepted `=?base64?X?=` value
 * is exactly the canonical padded encoding of what it decodes to; an
 * accepted value has only header-safe bytes; the check never crashes, and
 * says "no mismatch" only when the header bytes equal the body's name. */
#include <openssl/evp.h>

#include "fuzz_common.h"
#include "jsonrpc.h"
#include "rpc_headers.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_global_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    const uint8_t *rest;
    size_t rest_len, hlen = fz_split(data, size, &rest, &rest_len), vlen = 0, i;
    const char *hdr = fz_cstr(p, data, hlen), *val = NULL;
    mcp_rpc_body_t rpc;

    if (mcp_rpc_header_value(p, hdr, &val, &vlen) == 0) {
        for (i = 0; i < hlen; i++)
            FZ_ASSERT((data[i] >= 0x20 && data[i] <= 0x7e) || data[i] == '\t');
        if (hlen >= 11 && memcmp(hdr, "=?base64?", 9) == 0 && memcmp(hdr + hlen - 2, "?=", 2) == 0) {
            unsigned char *enc = apr_palloc(p, 4 * ((vlen + 2) / 3) + 1);
            int n = EVP_EncodeBlock(enc, (const unsigned char *)val, (int)vlen);
            FZ_ASSERT((size_t)n == hlen - 11 && memcmp(enc, hdr + 9, (size_t)n) == 0);
        }
        else
            FZ_ASSERT(vlen == hlen && memcmp(val, hdr, hlen) == 0);
    }
    if (rest && mcp_jsonrpc_parse(p, (const char *)rest, rest_len, &rpc) == 0) {
        const char *why = mcp_rpc_headers_mismatch(p, rpc.method ? rpc.method : "x", hdr, &rpc);
        if (!why && rpc.method && mcp_jsonrpc_name_equal(rpc.method, "tools/call")) {
            FZ_ASSERT(mcp_rpc_header_value(p, hdr, &val, &vlen) == 0);
            FZ_ASSERT(vlen == rpc.name_len && memcmp(val, rpc.name, vlen) == 0);
        }
    }
    apr_pool_destroy(p);
    return 0;
}
