/* SPDX-License-Identifier: Apache-2.0 */
/* Values read back from the fleet-wide cache (remote_cache.c): whatever a
 * hostile or broken cache server returns under a key decodes or is
 * refused, never crashes; what decodes is a live entry of that key and
 * re-encodes to the very bytes read; the input used as a payload round
 * trips through encode and decode. */
#include "fuzz_common.h"
#include "remote_cache.h"

static const unsigned char KEY[MCP_REMOTE_KEY_LEN] = {0x6b, 0x65, 0x79};
#define NOW apr_time_from_sec(1700000000)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_global_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char buf[MCP_REMOTE_ENCODED_MAX];
    apr_pool_t *p = fz_pool();
    mcp_remote_entry_t e, f;
    size_t n;

    if (mcp_remote_decode(KEY, data, size, NOW, p, &e) == 0) {
        FZ_ASSERT(e.expires > NOW && e.len <= MCP_REMOTE_MAX_PAYLOAD);
        n = mcp_remote_encode(KEY, e.kind, e.expires, e.value, e.len, buf);
        FZ_ASSERT(n == size && memcmp(buf, data, size) == 0);
    }
    if (size <= MCP_REMOTE_MAX_PAYLOAD) {
        n = mcp_remote_encode(KEY, 5, NOW + 1, data, size, buf);
        FZ_ASSERT(n > 0);
        FZ_ASSERT(mcp_remote_decode(KEY, buf, n, NOW, p, &f) == 0);
        FZ_ASSERT(f.kind == 5 && f.len == size && (size == 0 || memcmp(f.value, data, size) == 0));
        FZ_ASSERT(mcp_remote_decode(KEY, buf, n, NOW + 1, p, &f) == -1); /* expired */
    }
    apr_pool_destroy(p);
    return 0;
}
