/* SPDX-License-Identifier: Apache-2.0 */
/* Strict base64url (RFC 4648 section 5, JWS profile: no padding, no
 * whitespace, canonical trailing bits). */
#include "test_util.h"

static const char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int alpha_value(unsigned char c)
{
    const char *q = c ? strchr(ALPHABET, c) : NULL;
    return q ? (int)(q - ALPHABET) : -1;
}

/* 0 when s[0..len) decodes, -1 otherwise. */
static int dec(apr_pool_t *p, const char *s, size_t len, unsigned char **out, size_t *outlen)
{
    unsigned char *o = NULL;
    size_t ol = 0;
    int rc = mcp_b64url_decode(p, s, len, &o, &ol);
    if (out)
        *out = o;
    if (outlen)
        *outlen = ol;
    return rc;
}

static void assert_rejected(apr_pool_t *p, const char *s, size_t len)
{
    if (dec(p, s, len, NULL, NULL) != -1)
        fail_msg("accepted non-canonical base64url \"%.*s\" (len %zu)", (int)len, s, len);
}

static void assert_rejected_str(apr_pool_t *p, const char *s)
{
    assert_rejected(p, s, strlen(s));
}

/* RFC 4648 section 10 test strings, base64url without padding. */
static const struct {
    const char *plain, *enc;
} rfc4648[] = {
    {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
    {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
};

static void test_rfc4648_vectors(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    size_t i;
    for (i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        size_t plen = strlen(rfc4648[i].plain), outlen = 99;
        unsigned char *out = NULL;
        char *enc = mcp_b64url_encode(p, (const unsigned char *)rfc4648[i].plain, plen);
        assert_string_equal(enc, rfc4648[i].enc);
        assert_int_equal(dec(p, rfc4648[i].enc, strlen(rfc4648[i].enc), &out, &outlen), 0);
        assert_non_null(out);
        assert_int_equal(outlen, plen);
        assert_memory_equal(out, rfc4648[i].plain, plen);
        assert_int_equal(out[outlen], '\0'); /* documented NUL termination */
    }
}

static void test_url_alphabet_chars(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    /* 111110 111111 111110 111111 = "-_-_" */
    static const unsigned char raw[] = {0xfb, 0xff, 0xbf};
    unsigned char *out;
    size_t outlen;
    assert_string_equal(mcp_b64url_encode(p, raw, 3), "-_-_");
    assert_int_equal(dec(p, "-_-_", 4, &out, &outlen), 0);
    assert_int_equal(outlen, 3);
    assert_memory_equal(out, raw, 3);
    /* The standard alphabet's spelling of the same bytes is not base64url. */
    assert_rejected_str(p, "+/+/");
    assert_rejected_str(p, "Zm+v");
    assert_rejected_str(p, "Zm/v");
    assert_rejected_str(p, "Zm9vY+");
    assert_rejected_str(p, "Zm9vY/E");
}

static void test_rejects_padding(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *bad[] = {"Zg==", "Zm8=", "Zm9vYg==", "Zm9vYmE=", "Zg=", "Zm9v=", "=", "==", "====", "Zm9v====", "Z=g="};
    size_t i;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_rejected_str(p, bad[i]);
}

static void test_rejects_whitespace(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *bad[] = {" Zm9v",      "Zm9v ",      "Zm 9v",      "Zm9v\n",    "Zm9v\r\n", "Zm\t9v",
                         "Zm9v\nYmFy", "Zm9vYmFy\n", "\tZm9vYmFy", "Zm9v\fYmE", "Zm9v\vYmE"};
    size_t i;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_rejected_str(p, bad[i]);
}

static void test_rejects_nul_inside(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    /* Lengths are explicit, so a NUL is just another byte outside the alphabet. */
    assert_rejected(p, "Zm\0v", 4);
    assert_rejected(p, "\0m9v", 4);
    assert_rejected(p, "Zm9\0", 4);
    assert_rejected(p, "Zm9v\0Y", 6);
    assert_rejected(p, "Zm9vY\0", 6);
    assert_rejected(p, "Zm9vYm\0", 7);
    /* Control: the same lengths without the NUL are fine. */
    assert_int_equal(dec(p, "Zm9vYmE", 7, NULL, NULL), 0);
}

static void test_rejects_length_mod4_is_1(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    const char *bad[] = {"Z", "A", "Zm9vY", "Zm9vYmFyZ", "AAAAA", "AAAAAAAAA"};
    size_t i;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_rejected_str(p, bad[i]);
    /* The length is what counts, not what follows it in memory: a lone
     * sextet followed by bytes that would complete it is still invalid. */
    assert_rejected(p, "ZAAAA", 1);
    assert_rejected(p, "Zm9vYAAA", 5);
    assert_rejected(p, "AAAAAAAAAAAA", 9);
}

static void test_length_is_respected(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    unsigned char *out;
    size_t outlen;
    assert_int_equal(dec(p, "Zm9vYmFy", 4, &out, &outlen), 0);
    assert_int_equal(outlen, 3);
    assert_memory_equal(out, "foo", 3);
    assert_int_equal(dec(p, "Zm9vYgXX", 6, &out, &outlen), 0);
    assert_int_equal(outlen, 4);
    assert_memory_equal(out, "foob", 4);
    assert_int_equal(dec(p, "Zm9v", 0, &out, &outlen), 0);
    assert_int_equal(outlen, 0);
}

static void test_trailing_bits_two_chars(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    unsigned char *out;
    size_t outlen;
    int v, accepted = 0;

    assert_int_equal(dec(p, "Zg", 2, &out, &outlen), 0);
    assert_int_equal(outlen, 1);
    assert_int_equal(out[0], 'f');
    assert_rejected_str(p, "Zh");
    assert_rejected_str(p, "Zm9vYh");

    /* Last of two chars carries 2 data bits + 4 unused bits that must be 0. */
    for (v = 0; v < 64; v++) {
        char s[3] = {'Z', ALPHABET[v], '\0'};
        int rc = dec(p, s, 2, &out, &outlen);
        if ((v & 0x0f) == 0) {
            assert_int_equal(rc, 0);
            assert_int_equal(outlen, 1);
            assert_int_equal(out[0], (unsigned char)(25 << 2 | v >> 4));
            assert_string_equal(mcp_b64url_encode(p, out, 1), s);
            accepted++;
        }
        else if (rc != -1) {
            fail_msg("accepted \"%s\" with non-zero unused bits", s);
        }
    }
    assert_int_equal(accepted, 4);
}

static void test_trailing_bits_three_chars(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    unsigned char *out;
    size_t outlen;
    int v, accepted = 0;

    assert_int_equal(dec(p, "Zm8", 3, &out, &outlen), 0);
    assert_int_equal(outlen, 2);
    assert_memory_equal(out, "fo", 2);
    assert_rejected_str(p, "Zm9");
    assert_rejected_str(p, "Zm9vZm9");

    /* Last of three chars carries 4 data bits + 2 unused bits that must be 0. */
    for (v = 0; v < 64; v++) {
        char s[4] = {'Z', 'm', ALPHABET[v], '\0'};
        int rc = dec(p, s, 3, &out, &outlen);
        if ((v & 0x03) == 0) {
            assert_int_equal(rc, 0);
            assert_int_equal(outlen, 2);
            assert_string_equal(mcp_b64url_encode(p, out, 2), s);
            accepted++;
        }
        else if (rc != -1) {
            fail_msg("accepted \"%s\" with non-zero unused bits", s);
        }
    }
    assert_int_equal(accepted, 16);
}

/* Every byte outside the alphabet, in every position of a full quantum and
 * of both partial tails, makes the input invalid; every alphabet byte is fine. */
static void test_every_byte_outside_alphabet(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    static const char *bases[] = {"Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    int c, outside = 0;
    size_t b, pos;

    for (c = 0; c < 256; c++) {
        int inside = alpha_value((unsigned char)c) >= 0;
        if (!inside)
            outside++;
        for (b = 0; b < sizeof(bases) / sizeof(bases[0]); b++) {
            size_t len = strlen(bases[b]);
            for (pos = 0; pos < len; pos++) {
                char s[16];
                int rc;
                memcpy(s, bases[b], len);
                s[pos] = (char)c;
                rc = dec(p, s, len, NULL, NULL);
                if (!inside) {
                    if (rc != -1)
                        fail_msg("byte 0x%02x at %zu of %s accepted", c, pos, bases[b]);
                }
                else if (pos + 1 < len || len % 4 == 0) {
                    /* Not the last char of a partial tail: any alphabet char is valid. */
                    if (rc != 0)
                        fail_msg("alphabet byte '%c' at %zu of %s rejected", c, pos, bases[b]);
                }
            }
        }
    }
    assert_int_equal(outside, 256 - 64);
}

static void test_random_roundtrip(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    size_t n;
    int iter;

    for (n = 0; n <= 64; n++) {
        for (iter = 0; iter < 16; iter++) {
            unsigned char *raw = tu_random(p, n), *out = NULL;
            size_t outlen = 0, i;
            char *enc = mcp_b64url_encode(p, raw, n);
            size_t elen = strlen(enc);
            /* Unpadded length: ceil(8n / 6). */
            assert_int_equal(elen, (n * 8 + 5) / 6);
            for (i = 0; i < elen; i++)
                if (alpha_value((unsigned char)enc[i]) < 0)
                    fail_msg("encoder produced byte 0x%02x", (unsigned char)enc[i]);
            assert_int_equal(dec(p, enc, elen, &out, &outlen), 0);
            assert_int_equal(outlen, n);
            if (n)
                assert_memory_equal(out, raw, n);
        }
    }
}

/* Every byte value encodes and decodes (covers the whole encode table). */
static void test_all_byte_values(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    unsigned char raw[256], *out;
    size_t outlen;
    int i;
    char *enc;
    for (i = 0; i < 256; i++)
        raw[i] = (unsigned char)i;
    enc = mcp_b64url_encode(p, raw, sizeof(raw));
    assert_int_equal(dec(p, enc, strlen(enc), &out, &outlen), 0);
    assert_int_equal(outlen, sizeof(raw));
    assert_memory_equal(out, raw, sizeof(raw));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_rfc4648_vectors),           TU_TEST(test_url_alphabet_chars),
        TU_TEST(test_rejects_padding),           TU_TEST(test_rejects_whitespace),
        TU_TEST(test_rejects_nul_inside),        TU_TEST(test_rejects_length_mod4_is_1),
        TU_TEST(test_length_is_respected),       TU_TEST(test_trailing_bits_two_chars),
        TU_TEST(test_trailing_bits_three_chars), TU_TEST(test_every_byte_outside_alphabet),
        TU_TEST(test_random_roundtrip),          TU_TEST(test_all_byte_values),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("b64url", tests, NULL, NULL);
}
