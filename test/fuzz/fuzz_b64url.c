/* SPDX-License-Identifier: Apache-2.0 */
/* Strict base64url: the input decoded must re-encode to exactly the input
 * (one spelling per value: no padding, no junk, zero unused bits), and the
 * input as bytes must survive encode + decode unchanged. */
#include "b64url.h"
#include "fuzz_common.h"

static int in_alphabet(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_global_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    unsigned char *dec = NULL, *back = NULL;
    size_t declen = 0, backlen = 0, i;
    char *enc;

    /* decode -> encode: accepted text is canonical. */
    if (mcp_b64url_decode(p, (const char *)data, size, &dec, &declen) == 0) {
        FZ_ASSERT(dec != NULL);
        FZ_ASSERT(dec[declen] == '\0');
        FZ_ASSERT(declen == size / 4 * 3 + (size % 4 ? size % 4 - 1 : 0));
        enc = mcp_b64url_encode(p, dec, declen);
        FZ_ASSERT(strlen(enc) == size && memcmp(enc, data, size) == 0);
    }
    else {
        /* Rejected text is not what the encoder produces for any value. */
        int canonical = size % 4 != 1;
        for (i = 0; canonical && i < size; i++)
            canonical = in_alphabet((char)data[i]);
        if (canonical && size % 4 == 2)
            canonical = (strchr("AQgw", data[size - 1]) != NULL);
        else if (canonical && size % 4 == 3)
            canonical = (strchr("AEIMQUYcgkosw048", data[size - 1]) != NULL);
        FZ_ASSERT(!canonical);
    }

    /* encode -> decode: every byte string round-trips. */
    enc = mcp_b64url_encode(p, data, size);
    FZ_ASSERT(strlen(enc) == (size * 4 + 2) / 3);
    for (i = 0; enc[i]; i++)
        FZ_ASSERT(in_alphabet(enc[i]));
    FZ_ASSERT(mcp_b64url_decode(p, enc, strlen(enc), &back, &backlen) == 0);
    FZ_ASSERT(backlen == size && (size == 0 || memcmp(back, data, size) == 0));

    apr_pool_destroy(p);
    return 0;
}
