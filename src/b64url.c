/* SPDX-License-Identifier: Apache-2.0 */
#include "b64url.h"

/* 0..63 for the alphabet, 64 for everything else. */
static const unsigned char dec_table[256] = {
#define X64 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64
    X64,           X64,
    /* 0x20 */ 64, 64,  64,  64,  64,  64,  64,  64, 64, 64, 64, 64, 64, 62, 64, 64,
    /* 0x30 */ 52, 53,  54,  55,  56,  57,  58,  59, 60, 61, 64, 64, 64, 64, 64, 64,
    /* 0x40 */ 64, 0,   1,   2,   3,   4,   5,   6,  7,  8,  9,  10, 11, 12, 13, 14,
    /* 0x50 */ 15, 16,  17,  18,  19,  20,  21,  22, 23, 24, 25, 64, 64, 64, 64, 63,
    /* 0x60 */ 64, 26,  27,  28,  29,  30,  31,  32, 33, 34, 35, 36, 37, 38, 39, 40,
    /* 0x70 */ 41, 42,  43,  44,  45,  46,  47,  48, 49, 50, 51, 64, 64, 64, 64, 64,
    X64,           X64, X64, X64, X64, X64, X64, X64
#undef X64
};

static const char enc_table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The same for the standard alphabet (RFC 4648 section 4): '+' and '/'
 * in place of '-' and '_'. */
static const unsigned char std_table[256] = {
#define X64 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64
    X64,           X64,
    /* 0x20 */ 64, 64,  64,  64,  64,  64,  64,  64, 64, 64, 64, 62, 64, 64, 64, 63,
    /* 0x30 */ 52, 53,  54,  55,  56,  57,  58,  59, 60, 61, 64, 64, 64, 64, 64, 64,
    /* 0x40 */ 64, 0,   1,   2,   3,   4,   5,   6,  7,  8,  9,  10, 11, 12, 13, 14,
    /* 0x50 */ 15, 16,  17,  18,  19,  20,  21,  22, 23, 24, 25, 64, 64, 64, 64, 64,
    /* 0x60 */ 64, 26,  27,  28,  29,  30,  31,  32, 33, 34, 35, 36, 37, 38, 39, 40,
    /* 0x70 */ 41, 42,  43,  44,  45,  46,  47,  48, 49, 50, 51, 64, 64, 64, 64, 64,
    X64,           X64, X64, X64, X64, X64, X64, X64
#undef X64
};

static int decode(const unsigned char *table, const char *in, size_t len, apr_pool_t *p, unsigned char **out,
                  size_t *outlen)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t full = len / 4, rem = len % 4, i, o = 0;
    unsigned char *buf;

    if (rem == 1)
        return -1;
    buf = apr_palloc(p, full * 3 + 3);
    for (i = 0; i < full; i++) {
        unsigned a = table[s[4 * i]], b = table[s[4 * i + 1]];
        unsigned c = table[s[4 * i + 2]], d = table[s[4 * i + 3]];
        if ((a | b | c | d) & 64)
            return -1;
        buf[o++] = (unsigned char)(a << 2 | b >> 4);
        buf[o++] = (unsigned char)(b << 4 | c >> 2);
        buf[o++] = (unsigned char)(c << 6 | d);
    }
    if (rem) {
        const unsigned char *t = s + 4 * full;
        unsigned a = table[t[0]], b = table[t[1]];
        unsigned c = rem == 3 ? table[t[2]] : 0;
        if ((a | b | c) & 64)
            return -1;
        /* Non-zero unused bits would give a second spelling of the same bytes. */
        if (rem == 2 && (b & 0x0f))
            return -1;
        if (rem == 3 && (c & 0x03))
            return -1;
        buf[o++] = (unsigned char)(a << 2 | b >> 4);
        if (rem == 3)
            buf[o++] = (unsigned char)(b << 4 | c >> 2);
    }
    buf[o] = '\0';
    *out = buf;
    *outlen = o;
    return 0;
}

int mcp_b64url_decode(apr_pool_t *p, const char *in, size_t len, unsigned char **out, size_t *outlen)
{
    return decode(dec_table, in, len, p, out, outlen);
}

int mcp_b64_decode(apr_pool_t *p, const char *in, size_t len, unsigned char **out, size_t *outlen)
{
    size_t pad = 0;

    /* Padded to a multiple of 4, '=' only at the end, as many as the
     * length needs: one spelling per value. */
    if (len % 4)
        return -1;
    while (pad < 2 && len > pad && in[len - 1 - pad] == '=')
        pad++;
    if (pad && len < 4)
        return -1;
    return decode(std_table, in, len - pad, p, out, outlen);
}

char *mcp_b64url_encode(apr_pool_t *p, const unsigned char *in, size_t len)
{
    char *out = apr_palloc(p, (len + 2) / 3 * 4 + 1);
    size_t i, o = 0;

    for (i = 0; i + 2 < len; i += 3) {
        out[o++] = enc_table[in[i] >> 2];
        out[o++] = enc_table[(in[i] & 3) << 4 | in[i + 1] >> 4];
        out[o++] = enc_table[(in[i + 1] & 15) << 2 | in[i + 2] >> 6];
        out[o++] = enc_table[in[i + 2] & 63];
    }
    if (len - i == 1) {
        out[o++] = enc_table[in[i] >> 2];
        out[o++] = enc_table[(in[i] & 3) << 4];
    }
    else if (len - i == 2) {
        out[o++] = enc_table[in[i] >> 2];
        out[o++] = enc_table[(in[i] & 3) << 4 | in[i + 1] >> 4];
        out[o++] = enc_table[(in[i + 1] & 15) << 2];
    }
    out[o] = '\0';
    return out;
}
