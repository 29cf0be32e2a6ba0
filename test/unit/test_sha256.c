/* SPDX-License-Identifier: Apache-2.0 */
/* sha256.c: the digest is SHA-256 (FIPS 180-2 vectors), and a key over
 * parts is the digest of the parts laid end to end -- so the keys the
 * store already holds keep their bytes. */
#include "test_util.h"

#include "sha256.h"

static void assert_hex(const unsigned char d[MCP_SHA256_LEN], const char *hex)
{
    char got[2 * MCP_SHA256_LEN + 1];
    int i;
    for (i = 0; i < MCP_SHA256_LEN; i++)
        snprintf(got + 2 * i, 3, "%02x", d[i]);
    assert_string_equal(got, hex);
}

static void test_known_digests(void **state)
{
    unsigned char d[MCP_SHA256_LEN];
    (void)state;
    mcp_sha256("abc", 3, d);
    assert_hex(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    mcp_sha256("", 0, d);
    assert_hex(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_key_is_the_digest_of_the_parts_in_order(void **state)
{
    const char msg[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    mcp_bytes_t split[3] = {{msg, 5}, {msg + 5, 0}, {msg + 5, sizeof(msg) - 1 - 5}};
    mcp_bytes_t swapped[2] = {{msg + 5, sizeof(msg) - 1 - 5}, {msg, 5}};
    unsigned char whole[MCP_SHA256_LEN], parts[MCP_SHA256_LEN], other[MCP_SHA256_LEN];
    (void)state;

    mcp_sha256(msg, sizeof(msg) - 1, whole);
    assert_hex(whole, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    mcp_sha256_key(parts, split, 3);
    assert_memory_equal(parts, whole, MCP_SHA256_LEN);
    mcp_sha256_key(other, swapped, 2);
    assert_memory_not_equal(other, whole, MCP_SHA256_LEN);
    mcp_sha256_key(other, NULL, 0);
    assert_hex(other, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_known_digests),
        TU_TEST(test_key_is_the_digest_of_the_parts_in_order),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("sha256", tests, NULL, NULL);
}
