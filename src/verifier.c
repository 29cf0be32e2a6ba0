/* SPDX-License-Identifier: Apache-2.0 */
#include "verifier.h"

#include <apr_strings.h>
#include <string.h>

#include "jws_verify.h"
#include "json_util.h"

typedef enum { KEYS_VERIFIED, KEYS_NO_MATCH, KEYS_AMBIGUOUS, KEYS_UNFIT, KEYS_BAD_SIGNATURE } keys_result;

/* RFC 7515 4.1.4 + RFC 8725 3.1: the kid names exactly one key; without a
 * kid every key that fits the algorithm is a candidate. The token's own
 * jku/jwk/x5u/x5c are never consulted. */
static keys_result try_keys(const mcp_jwks_t *set, const mcp_jws_t *jws)
{
    int i, matches = 0, fitting = 0;
    const mcp_jwk_t *match = NULL;

    if (jws->kid) {
        for (i = 0; i < set->nkeys; i++)
            if (set->keys[i]->kid && strcmp(set->keys[i]->kid, jws->kid) == 0) {
                match = set->keys[i];
                matches++;
            }
        if (matches == 0)
            return KEYS_NO_MATCH;
        if (matches > 1)
            return KEYS_AMBIGUOUS;
        if (!mcp_jwk_fits_alg(match, jws->alg))
            return KEYS_UNFIT;
        return mcp_jws_verify(jws->alg, match, (const unsigned char *)jws->signing_input, jws->signing_input_len,
                              jws->sig, jws->sig_len)
                   ? KEYS_VERIFIED
                   : KEYS_BAD_SIGNATURE;
    }
    for (i = 0; i < set->nkeys; i++) {
        if (!mcp_jwk_fits_alg(set->keys[i], jws->alg))
            continue;
        fitting++;
        if (mcp_jws_verify(jws->alg, set->keys[i], (const unsigned char *)jws->signing_input, jws->signing_input_len,
                           jws->sig, jws->sig_len))
            return KEYS_VERIFIED;
    }
    return fitting ? KEYS_BAD_SIGNATURE : KEYS_NO_MATCH;
}

static int keys_fail(apr_pool_t *p, keys_result r, const mcp_jws_t *jws, const char *issuer, mcp_fail_t *fail)
{
    const char *kid = jws->kid ? mcp_printable(p, jws->kid, 64) : "(none)";
    const char *iss = issuer ? mcp_printable(p, issuer, 256) : "(any)";
    switch (r) {
    case KEYS_NO_MATCH:
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Unknown key id",
                        apr_psprintf(p, "kid %s alg %s issuer %s", kid, mcp_alg_name(jws->alg), iss));
    case KEYS_AMBIGUOUS:
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Ambiguous key id",
                        apr_psprintf(p, "kid %s appears more than once in the JWKS of %s", kid, iss));
    case KEYS_UNFIT:
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Key does not fit algorithm",
                        apr_psprintf(p, "kid %s cannot verify %s", kid, mcp_alg_name(jws->alg)));
    default:
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Invalid signature",
                        apr_psprintf(p, "alg %s kid %s issuer %s", mcp_alg_name(jws->alg), kid, iss));
    }
}

/* The issuer's fetched keys (*r), refetched once when none has the kid.
 * -1 when no keys can be had (fail set). */
static int try_fetched_keys(apr_pool_t *p, const mcp_trusted_issuer_t *ti, const mcp_jws_t *jws, const mcp_log_t *log,
                            mcp_verified_t *out, keys_result *r, mcp_fail_t *fail)
{
    mcp_keyset_t *ks;
    /* Waiting for another process's fetch is bounded once for the request. */
    apr_time_t until = mcp_keyring_wait_deadline(ti->ring);

    if (mcp_keyring_acquire_until(ti->ring, 0, until, p, log, &ks, fail))
        return -1;
    *r = try_keys(mcp_keyset_jwks(ks), jws);
    out->key_generation = mcp_keyset_generation(ks);
    mcp_keyring_release(ti->ring, ks);
    if (*r == KEYS_NO_MATCH) {
        /* Maybe the IdP rotated keys: refetch (rate-limited; or wait for the
         * refetch already in flight in any process) and retry once. */
        if (mcp_keyring_acquire_until(ti->ring, 1, until, p, log, &ks, fail))
            return -1;
        *r = try_keys(mcp_keyset_jwks(ks), jws);
        out->key_generation = mcp_keyset_generation(ks);
        mcp_keyring_release(ti->ring, ks);
    }
    out->key_doc = mcp_keyring_jwks_doc(ti->ring);
    return 0;
}

static int verify_with_issuer_keys(apr_pool_t *p, const mcp_trusted_issuer_t *ti, const mcp_jws_t *jws,
                                   const mcp_log_t *log, mcp_verified_t *out, mcp_fail_t *fail)
{
    keys_result r;

    if (!ti->ring) {
        if (!ti->keys)
            return mcp_fail(fail, MCP_FAIL_CONFIG, "No keys configured", NULL);
        r = try_keys(ti->keys, jws);
    }
    else if (try_fetched_keys(p, ti, jws, log, out, &r, fail)) {
        return -1;
    }
    /* A fitting key that does not match depends only on the token and the
     * keys (out->key_doc's generation): a refusal that lasts. */
    out->refusal_lasts = r == KEYS_BAD_SIGNATURE;
    return r == KEYS_VERIFIED ? 0 : keys_fail(p, r, jws, ti->issuer, fail);
}

int mcp_issuer_matches(const mcp_trusted_issuer_t *ti, const char *iss)
{
    int i;
    if (!iss || !ti->issuer)
        return 0;
    if (strcmp(iss, ti->issuer) == 0)
        return 1;
    for (i = 0; i < ti->n_aliases; i++)
        if (strcmp(iss, ti->aliases[i]) == 0)
            return 1;
    return 0;
}

static int find_issuer(apr_pool_t *p, const mcp_verify_policy_t *pol, const json_t *claims, mcp_fail_t *fail)
{
    json_t *iss = claims ? json_object_get(claims, "iss") : NULL;
    int i;

    for (i = 0; i < pol->n_issuers; i++) {
        const char *want = pol->issuers[i].issuer;
        if (!want)
            return i;
        if (json_is_string(iss) && mcp_issuer_matches(&pol->issuers[i], json_string_value(iss)))
            return i;
    }
    if (pol->n_issuers == 0)
        return mcp_fail(fail, MCP_FAIL_CONFIG, "No issuer configured", "MCPAuthIssuer is missing");
    return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Invalid issuer",
                    apr_psprintf(p, "iss %s is not a configured issuer",
                                 json_is_string(iss) ? mcp_printable(p, json_string_value(iss), 256)
                                                     : "(missing or not a string)"));
}

int mcp_verify_jwt(apr_pool_t *p, const char *token, size_t len, const mcp_verify_policy_t *pol, const mcp_log_t *log,
                   mcp_verified_t *out, mcp_fail_t *fail)
{
    mcp_jws_t jws;
    json_t *claims = NULL;
    int idx;

    memset(out, 0, sizeof(*out));
    out->key_doc = -1;
    if (pol->max_token_size && len > pol->max_token_size)
        return mcp_fail(
            fail, MCP_FAIL_INVALID_TOKEN, "Token too large",
            apr_psprintf(p, "%lu bytes, limit %lu", (unsigned long)len, (unsigned long)pol->max_token_size));
    if (mcp_jws_parse(p, token, len, &jws, fail))
        return -1;
    if (!(pol->alg_mask & MCP_ALG_BIT(jws.alg)) || (mcp_alg_kty(jws.alg) == MCP_KTY_OCT && !pol->hmac_key))
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Algorithm not allowed",
                        apr_psprintf(p, "alg %s", mcp_alg_name(jws.alg)));
    if (pol->token_type && !mcp_typ_matches(pol->token_type, jws.typ))
        return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Invalid token type",
                        apr_psprintf(p, "typ %s, expected %s", jws.typ ? mcp_printable(p, jws.typ, 64) : "(none)",
                                     pol->token_type));
    if (!pol->jws_only && mcp_jws_claims(p, &jws, &claims, fail))
        return -1;
    /* The issuer picks the keys, so it is matched before the signature; an
     * unknown issuer costs no crypto and no IdP request. */
    idx = find_issuer(p, pol, claims, fail);
    if (idx < 0)
        return -1;

    if (mcp_alg_kty(jws.alg) == MCP_KTY_OCT) {
        if (!mcp_jwk_fits_alg(pol->hmac_key, jws.alg))
            return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Algorithm not allowed",
                            apr_psprintf(p, "the HMAC secret is too short for %s", mcp_alg_name(jws.alg)));
        if (!mcp_jws_verify(jws.alg, pol->hmac_key, (const unsigned char *)jws.signing_input, jws.signing_input_len,
                            jws.sig, jws.sig_len)) {
            out->refusal_lasts = 1;
            return mcp_fail(fail, MCP_FAIL_INVALID_TOKEN, "Invalid signature",
                            apr_psprintf(p, "alg %s (shared secret)", mcp_alg_name(jws.alg)));
        }
    }
    else if (verify_with_issuer_keys(p, &pol->issuers[idx], &jws, log, out, fail)) {
        return -1;
    }

    if (!pol->jws_only && mcp_claims_check(p, claims, &pol->claims, fail)) {
        /* Signed by a trusted key and refused for good (expired, another
         * audience, ...): as lasting as a bad signature. */
        out->refusal_lasts = mcp_claims_refusal_lasts(fail);
        return -1;
    }
    out->header = jws.header;
    out->claims = claims;
    out->alg = jws.alg;
    out->issuer_index = idx;
    return 0;
}
