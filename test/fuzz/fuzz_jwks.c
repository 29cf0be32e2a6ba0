/* SPDX-License-Identifier: Apache-2.0 */
/* JWKS parsing: any document either fails with a reason or yields only
 * usable verification keys (RSA 2048..16384 bits, EC on a supported curve,
 * Ed25519; never "oct"), each fitting its own "alg". Every key is then used
 * to verify an input-derived signature of the right length for each
 * algorithm it fits (DER conversion, PSS parameters, EVP paths). The
 * members of "keys" also go through mcp_jwk_from_json with oct allowed
 * (the CLI's --jwk path). */
#include "fuzz_common.h"
#include "json_util.h"
#include "jwk.h"
#include "jws_verify.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_global_init();
    return 0;
}

static size_t sig_len_for(const mcp_jwk_t *k, mcp_alg alg)
{
    switch (mcp_alg_kty(alg)) {
    case MCP_KTY_RSA:
        return (size_t)EVP_PKEY_get_size(k->pkey);
    case MCP_KTY_EC:
        return 2 * mcp_crv_coord_len(mcp_alg_crv(alg));
    case MCP_KTY_OKP:
        return 64;
    default:
        return mcp_alg_hash_len(alg);
    }
}

static void exercise_key(apr_pool_t *p, const mcp_jwk_t *k, const uint8_t *data, size_t size)
{
    int a;
    for (a = MCP_ALG_UNKNOWN + 1; a < MCP_ALG_COUNT; a++) {
        size_t n, i;
        unsigned char *sig;
        if (!mcp_jwk_fits_alg(k, (mcp_alg)a))
            continue;
        n = sig_len_for(k, (mcp_alg)a);
        sig = apr_palloc(p, n ? n : 1);
        for (i = 0; i < n; i++)
            sig[i] = size ? data[(i * 7 + 3) % size] : 0;
        (void)mcp_jws_verify((mcp_alg)a, k, data, size, sig, n);
        /* A signature of any other length is malformed, never valid. */
        FZ_ASSERT(!mcp_jws_verify((mcp_alg)a, k, data, size, sig, n ? n - 1 : 0));
    }
}

static void check_key(const mcp_jwk_t *k, int allow_oct)
{
    FZ_ASSERT(k != NULL);
    switch (k->kty) {
    case MCP_KTY_RSA:
        FZ_ASSERT(k->pkey && k->bits >= MCP_RSA_MIN_BITS && k->bits <= MCP_RSA_MAX_BITS);
        break;
    case MCP_KTY_EC:
        FZ_ASSERT(k->pkey && (k->crv == MCP_CRV_P256 || k->crv == MCP_CRV_P384 || k->crv == MCP_CRV_P521));
        break;
    case MCP_KTY_OKP:
        FZ_ASSERT(k->pkey && k->crv == MCP_CRV_ED25519);
        break;
    case MCP_KTY_OCT:
        FZ_ASSERT(allow_oct && k->secret && k->secret_len > 0 && !k->pkey);
        break;
    default:
        FZ_ASSERT(!"key of no known type");
    }
    if (k->alg != MCP_ALG_UNKNOWN)
        FZ_ASSERT(mcp_jwk_fits_alg(k, k->alg));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    mcp_jwks_t *set = NULL;
    const char *why = NULL;
    json_t *doc, *member;
    size_t i;
    int j;

    if (mcp_jwks_parse(p, (const char *)data, size, &set, &why) == 0) {
        FZ_ASSERT(set && set->nkeys > 0 && set->keys[set->nkeys] == NULL);
        for (j = 0; j < set->nkeys; j++) {
            check_key(set->keys[j], 0);
            exercise_key(p, set->keys[j], data, size);
        }
        FZ_ASSERT(set->skipped == 0 || set->skip_reason);
    }
    else {
        FZ_ASSERT(why != NULL);
    }

    /* Single JWKs with oct allowed (mcp-auth-token --jwk). */
    doc = mcp_json_parse(p, (const char *)data, size);
    json_array_foreach(json_object_get(doc, "keys"), i, member)
    {
        mcp_jwk_t *k = NULL;
        if (mcp_jwk_from_json(p, member, 1, &k, &why) == 0) {
            check_key(k, 1);
            if (k->kty == MCP_KTY_OCT)
                exercise_key(p, k, data, size);
        }
        else {
            FZ_ASSERT(why != NULL);
        }
    }
    apr_pool_destroy(p);
    return 0;
}
