/* SPDX-License-Identifier: Apache-2.0 */
/* verifier.c: mcp_verify_jwt end to end with fixed key sets (no network).
 * Bearer extraction is in test_bearer.c, the challenge in test_challenge.c. */
#include "test_util.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <time.h>

#include "verifier.h"

#define ISS_A "https://idp-a.example.com"
#define ISS_B "https://idp-b.example.com"
#define AUDIENCE "https://mcp.example.com/mcp"

static const char *const AUDS[] = {AUDIENCE};

static const char *const REQUIRED[] = {"sub"};

static struct {
    EVP_PKEY *rsa_a, *rsa_b, *attacker, *rsa1024, *p256, *p384, *ed;
} G;

static int group_setup(void **state)
{
    G.rsa_a = tu_keygen(MCP_ALG_RS256, 2048);
    G.rsa_b = tu_keygen(MCP_ALG_RS256, 2048);
    G.attacker = tu_keygen(MCP_ALG_RS256, 2048);
    G.rsa1024 = tu_keygen(MCP_ALG_RS256, 1024);
    G.p256 = tu_keygen(MCP_ALG_ES256, 0);
    G.p384 = tu_keygen(MCP_ALG_ES384, 0);
    G.ed = tu_keygen(MCP_ALG_EDDSA, 0);
    return 0;
}

static int group_teardown(void **state)
{
    EVP_PKEY_free(G.rsa_a);
    EVP_PKEY_free(G.rsa_b);
    EVP_PKEY_free(G.attacker);
    EVP_PKEY_free(G.rsa1024);
    EVP_PKEY_free(G.p256);
    EVP_PKEY_free(G.p384);
    EVP_PKEY_free(G.ed);
    return 0;
}

/* Two issuers: A with RSA (kid a1), P-256 (a-ec), Ed25519 (a-ed) and
 * P-384 (a-p384) keys; B with one RSA key (b1). */
typedef struct {
    mcp_trusted_issuer_t ti[2];
    mcp_verify_policy_t pol;
    long long now;
} env_t;

static void env_init(apr_pool_t *p, env_t *e)
{
    memset(e, 0, sizeof(*e));
    e->now = (long long)time(NULL);
    e->ti[0].issuer = ISS_A;
    e->ti[0].keys =
        tu_jwks(p, 4, tu_jwk(p, G.rsa_a, "a1", MCP_ALG_RS256, 0), tu_jwk(p, G.p256, "a-ec", MCP_ALG_ES256, 1),
                tu_jwk(p, G.ed, "a-ed", MCP_ALG_EDDSA, 1), tu_jwk(p, G.p384, "a-p384", MCP_ALG_ES384, 0));
    e->ti[1].issuer = ISS_B;
    e->ti[1].keys = tu_jwks(p, 1, tu_jwk(p, G.rsa_b, "b1", MCP_ALG_RS256, 0));
    e->pol.issuers = e->ti;
    e->pol.n_issuers = 2;
    e->pol.alg_mask = MCP_ALG_MASK_DEFAULT;
    e->pol.max_token_size = 16384;
    e->pol.claims.audiences = AUDS;
    e->pol.claims.n_audiences = 1;
    e->pol.claims.required = REQUIRED;
    e->pol.claims.n_required = 1;
    e->pol.claims.skew = 30;
    e->pol.claims.now = e->now;
}

/* Header JSON: alg, optional kid, optional extra members (",..." text). */
static const char *hdr(apr_pool_t *p, mcp_alg alg, const char *kid, const char *extra)
{
    return tu_fmt(p, "{\"alg\":\"%s\"%s%s%s%s}", mcp_alg_name(alg), kid ? ",\"kid\":\"" : "", kid ? kid : "",
                  kid ? "\"" : "", extra ? extra : "");
}

/* Good claims for issuer iss. */
static const char *claims(apr_pool_t *p, const env_t *e, const char *iss)
{
    return tu_fmt(p, "{\"iss\":\"%s\",\"sub\":\"alice\",\"aud\":\"%s\",\"exp\":%lld,\"iat\":%lld}", iss, AUDIENCE,
                  e->now + 600, e->now);
}

static const char *mint(apr_pool_t *p, mcp_alg alg, EVP_PKEY *pk, const char *header, const char *payload)
{
    return tu_sign(p, alg, pk, NULL, 0, header, payload);
}

static int run(apr_pool_t *p, const env_t *e, const char *tok, mcp_verified_t *out, mcp_fail_t *fail)
{
    memset(fail, 0, sizeof(*fail));
    return mcp_verify_jwt(p, tok, strlen(tok), &e->pol, NULL, out, fail);
}

static void assert_verified(apr_pool_t *p, const env_t *e, const char *tok, mcp_verified_t *out)
{
    mcp_fail_t fail;
    if (run(p, e, tok, out, &fail) != 0)
        fail_msg("token refused: %s (%s)", fail.reason, fail.detail ? fail.detail : "");
}

static void assert_refused(apr_pool_t *p, const env_t *e, const char *tok, const char *reason)
{
    mcp_verified_t out;
    mcp_fail_t fail;
    if (run(p, e, tok, &out, &fail) != -1)
        fail_msg("token accepted, expected \"%s\"", reason);
    assert_int_equal(fail.kind, MCP_FAIL_INVALID_TOKEN);
    assert_non_null(fail.reason);
    assert_string_equal(fail.reason, reason);
    assert_null(out.claims);
    assert_null(out.header);
}

static void test_good_tokens(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    env_t e;
    mcp_verified_t out;
    env_init(p, &e);

    assert_verified(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", NULL), claims(p, &e, ISS_A)),
                    &out);
    assert_non_null(out.claims);
    assert_string_equal(tu_str(out.claims, "sub"), "alice");
    assert_string_equal(tu_str(out.claims, "iss"), ISS_A);
    assert_string_equal(tu_str(out.header, "kid"), "a1");
    assert_int_equal(out.alg, MCP_ALG_RS256);
    assert_int_equal(out.issuer_index, 0);
    assert_int_equal(out.key_doc, -1);

    assert_verified(p, &e, mint(p, MCP_ALG_PS512, G.rsa_a, hdr(p, MCP_ALG_PS512, "a1", NULL), claims(p, &e, ISS_A)),
                    &out);
    assert_int_equal(out.alg, MCP_ALG_PS512);
    assert_verified(p, &e, mint(p, MCP_ALG_ES256, G.p256, hdr(p, MCP_ALG_ES256, "a-ec", NULL), claims(p, &e, ISS_A)),
                    &out);
    assert_int_equal(out.alg, MCP_ALG_ES256);
    assert_verified(p, &e, mint(p, MCP_ALG_EDDSA, G.ed, hdr(p, MCP_ALG_EDDSA, "a-ed", NULL), claims(p, &e, ISS_A)),
                    &out);
    assert_int_equal(out.alg, MCP_ALG_EDDSA);

    assert_verified(p, &e, mint(p, MCP_ALG_RS256, G.rsa_b, hdr(p, MCP_ALG_RS256, "b1", NULL), claims(p, &e, ISS_B)),
                    &out);
    assert_int_equal(out.issuer_index, 1);
    assert_string_equal(tu_str(out.claims, "iss"), ISS_B);
}

static void test_bad_signature(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    env_t e;
    const char *tok;
    env_init(p, &e);
    tok = mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", NULL), claims(p, &e, ISS_A));
    assert_refused(p, &e, tu_tamper_sig(p, tok, -1, 0), "Invalid signature");
    /* Same header and signature, a different (valid) payload. */
    {
        const char *other =
            tu_fmt(p, "{\"iss\":\"%s\",\"sub\":\"mallory\",\"aud\":\"%s\",\"exp\":%lld}", ISS_A, AUDIENCE, e.now + 600);
        mcp_verified_t out;
        assert_refused(p, &e, tu_swap_payload(p, tok, other), "Invalid signature");
        /* Control: putting the original payload back restores validity. */
        assert_verified(p, &e, tu_swap_payload(p, tok, claims(p, &e, ISS_A)), &out);
    }
    /* The signature is checked before the claims: a forged expired token
     * reports the forgery, not the expiry. */
    tok = mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", NULL),
               tu_fmt(p, "{\"iss\":\"%s\",\"sub\":\"a\",\"aud\":\"%s\",\"exp\":%lld}", ISS_A, AUDIENCE, e.now - 3600));
    assert_refused(p, &e, tok, "Token expired");
    assert_refused(p, &e, tu_tamper_sig(p, tok, 0, 0), "Invalid signature");
}

/* Which refusals may be remembered per token (verifier.h refusal_lasts):
 * a bad signature and a good signature's lasting claim refusals, never a
 * refusal that time lifts nor one that a key refresh could change. */
static void test_refusal_lasts(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    env_t e;
    mcp_verified_t out;
    mcp_fail_t fail;
    const char *good;
    env_init(p, &e);
    good = mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", NULL), claims(p, &e, ISS_A));
    assert_int_equal(run(p, &e, tu_tamper_sig(p, good, -1, 0), &out, &fail), -1);
    assert_int_equal(out.refusal_lasts, 1);
    assert_int_equal(run(p, &e,
                         mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", NULL),
                              tu_fmt(p, "{\"iss\":\"%s\",\"sub\":\"a\",\"aud\":\"%s\",\"exp\":%lld}", ISS_A, AUDIENCE,
                                     e.now - 3600)),
                         &out, &fail),
                     -1);
    assert_string_equal(fail.reason, "Token expired");
    assert_int_equal(out.refusal_lasts, 1);
    assert_int_equal(run(p, &e,
                         mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", NULL),
                              tu_fmt(p, "{\"iss\":\"%s\",\"sub\":\"a\",\"aud\":\"%s\",\"exp\":%lld,\"nbf\":%lld}",
                                     ISS_A, AUDIENCE, e.now + 7200, e.now + 3600)),
                         &out, &fail),
                     -1);
    assert_string_equal(fail.reason, "Token not yet valid");
    assert_int_equal(out.refusal_lasts, 0);
    /* An unknown kid: a refresh may bring the key. */
    assert_int_equal(run(p, &e,
                         mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "nope", NULL), claims(p, &e, ISS_A)),
                         &out, &fail),
                     -1);
    assert_int_equal(out.refusal_lasts, 0);
    /* Accepted: nothing to remember. */
    assert_int_equal(run(p, &e, good, &out, &fail), 0);
    assert_int_equal(out.refusal_lasts, 0);
}

static void test_claims_checked(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    env_t e;
    env_init(p, &e);
    assert_refused(p, &e,
                   mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", NULL),
                        tu_fmt(p, "{\"iss\":\"%s\",\"sub\":\"a\",\"aud\":\"https://other.example\",\"exp\":%lld}",
                               ISS_A, e.now + 600)),
                   "Invalid audience");
    assert_refused(p, &e,
                   mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", NULL),
                        tu_fmt(p, "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld}", ISS_A, AUDIENCE, e.now + 600)),
                   "Missing required claims");
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", NULL), "[1,2]"),
                   "Malformed token");
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", NULL), "not json"),
                   "Malformed token");
}

static void test_issuer_not_configured(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    env_t e;
    const char *h;
    env_init(p, &e);
    h = hdr(p, MCP_ALG_RS256, "a1", NULL);
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, h, claims(p, &e, "https://evil.example.com")),
                   "Invalid issuer");
    assert_refused(p, &e,
                   mint(p, MCP_ALG_RS256, G.rsa_a, h,
                        tu_fmt(p, "{\"sub\":\"a\",\"aud\":\"%s\",\"exp\":%lld}", AUDIENCE, e.now + 600)),
                   "Invalid issuer");
    assert_refused(p, &e,
                   mint(p, MCP_ALG_RS256, G.rsa_a, h,
                        tu_fmt(p, "{\"iss\":42,\"sub\":\"a\",\"aud\":\"%s\",\"exp\":%lld}", AUDIENCE, e.now + 600)),
                   "Invalid issuer");
    assert_refused(
        p, &e,
        mint(p, MCP_ALG_RS256, G.rsa_a, h,
             tu_fmt(p, "{\"iss\":[\"%s\"],\"sub\":\"a\",\"aud\":\"%s\",\"exp\":%lld}", ISS_A, AUDIENCE, e.now + 600)),
        "Invalid issuer");
}

static void test_issuer_exact_match(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    env_t e;
    const char *h;
    env_init(p, &e);
    h = hdr(p, MCP_ALG_RS256, "a1", NULL);
    /* The issuer is an identifier, compared exactly (trailing slash matters). */
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, h, claims(p, &e, ISS_A "/")), "Invalid issuer");
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, h, claims(p, &e, "https://IDP-A.example.com")),
                   "Invalid issuer");
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, h, claims(p, &e, "https://idp-a.example.com:443")),
                   "Invalid issuer");
    /* An issuer configured with the slash does not accept the token without it. */
    e.ti[0].issuer = ISS_A "/";
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, h, claims(p, &e, ISS_A)), "Invalid issuer");
}

/* MCPAuthIssuer ... alias=: the alias is matched exactly and selects the
 * issuer's own keys (index 0); another issuer's key under the alias is
 * still refused; a near miss of the alias is not accepted. */
static void test_issuer_alias(void **state)
{
    static const char *const aliases[] = {"idp-a.example.com"};
    apr_pool_t *p = TU_POOL(state);
    mcp_verified_t out;
    env_t e;
    const char *h;
    env_init(p, &e);
    h = hdr(p, MCP_ALG_RS256, "a1", NULL);
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, h, claims(p, &e, "idp-a.example.com")), "Invalid issuer");
    e.ti[0].aliases = aliases;
    e.ti[0].n_aliases = 1;
    assert_verified(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, h, claims(p, &e, "idp-a.example.com")), &out);
    assert_int_equal(out.issuer_index, 0);
    assert_verified(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, h, claims(p, &e, ISS_A)), &out);
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, h, claims(p, &e, "idp-a.example.com/")), "Invalid issuer");
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, h, claims(p, &e, "IDP-A.example.com")), "Invalid issuer");
    assert_refused(
        p, &e, mint(p, MCP_ALG_RS256, G.rsa_b, hdr(p, MCP_ALG_RS256, "b1", NULL), claims(p, &e, "idp-a.example.com")),
        "Unknown key id");
}

static void test_issuer_selects_keys(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    env_t e;
    env_init(p, &e);
    /* Claims to be from B, signed with A's key: B's keys decide. */
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", NULL), claims(p, &e, ISS_B)),
                   "Unknown key id");
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, NULL, NULL), claims(p, &e, ISS_B)),
                   "Invalid signature");
    /* B's key with B's kid, claiming A. */
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_b, hdr(p, MCP_ALG_RS256, "b1", NULL), claims(p, &e, ISS_A)),
                   "Unknown key id");
    /* A's kid, but B's key, claiming A. */
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_b, hdr(p, MCP_ALG_RS256, "a1", NULL), claims(p, &e, ISS_A)),
                   "Invalid signature");
}

static void test_unknown_kid(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    env_t e;
    env_init(p, &e);
    assert_refused(p, &e,
                   mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "no-such-key", NULL), claims(p, &e, ISS_A)),
                   "Unknown key id");
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "A1", NULL), claims(p, &e, ISS_A)),
                   "Unknown key id");
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "", NULL), claims(p, &e, ISS_A)),
                   "Unknown key id");
}

static void test_ambiguous_kid(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    env_t e;
    mcp_jwks_t *set = NULL;
    const char *why = NULL;
    const char *doc;
    env_init(p, &e);
    doc = tu_fmt(p, "{\"keys\":[%s,%s]}", mcp_json_compact(p, tu_pub_jwk_json(p, G.rsa_a, "dup", MCP_ALG_RS256, 1)),
                 mcp_json_compact(p, tu_pub_jwk_json(p, G.rsa_b, "dup", MCP_ALG_RS256, 1)));
    assert_int_equal(mcp_jwks_parse(p, doc, strlen(doc), &set, &why), 0);
    assert_int_equal(set->nkeys, 2);
    e.ti[0].keys = set;
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "dup", NULL), claims(p, &e, ISS_A)),
                   "Ambiguous key id");
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_b, hdr(p, MCP_ALG_RS256, "dup", NULL), claims(p, &e, ISS_A)),
                   "Ambiguous key id");
}

static void test_no_kid_tries_fitting_keys(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    env_t e;
    mcp_verified_t out;
    env_init(p, &e);
    /* The signer's key is last among three RSA-capable candidates. */
    e.ti[0].keys = tu_jwks(p, 4, tu_jwk(p, G.p256, "ec", MCP_ALG_ES256, 1), tu_jwk(p, G.rsa_b, "x", MCP_ALG_RS256, 0),
                           tu_jwk(p, G.attacker, "y", MCP_ALG_RS256, 0), tu_jwk(p, G.rsa_a, "z", MCP_ALG_RS256, 0));
    assert_verified(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, NULL, NULL), claims(p, &e, ISS_A)),
                    &out);
    assert_string_equal(tu_str(out.claims, "sub"), "alice");
    assert_verified(p, &e, mint(p, MCP_ALG_ES256, G.p256, hdr(p, MCP_ALG_ES256, NULL, NULL), claims(p, &e, ISS_A)),
                    &out);
    /* No candidate verifies. */
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa1024, hdr(p, MCP_ALG_RS256, NULL, NULL), claims(p, &e, ISS_A)),
                   "Invalid signature");
    /* No key of the right type at all. */
    assert_refused(p, &e, mint(p, MCP_ALG_EDDSA, G.ed, hdr(p, MCP_ALG_EDDSA, NULL, NULL), claims(p, &e, ISS_A)),
                   "Unknown key id");
    assert_refused(p, &e, mint(p, MCP_ALG_ES384, G.p384, hdr(p, MCP_ALG_ES384, NULL, NULL), claims(p, &e, ISS_A)),
                   "Unknown key id");
}

static void test_alg_mask(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    env_t e;
    mcp_verified_t out;
    const char *ps, *es;
    env_init(p, &e);
    ps = mint(p, MCP_ALG_PS256, G.rsa_a, hdr(p, MCP_ALG_PS256, "a1", NULL), claims(p, &e, ISS_A));
    es = mint(p, MCP_ALG_ES256, G.p256, hdr(p, MCP_ALG_ES256, "a-ec", NULL), claims(p, &e, ISS_A));
    assert_verified(p, &e, ps, &out);
    assert_verified(p, &e, es, &out);
    e.pol.alg_mask = MCP_ALG_BIT(MCP_ALG_RS256);
    assert_refused(p, &e, ps, "Algorithm not allowed");
    assert_refused(p, &e, es, "Algorithm not allowed");
    e.pol.alg_mask = 0;
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", NULL), claims(p, &e, ISS_A)),
                   "Algorithm not allowed");
    /* alg "none", unsigned, is never allowed, whatever the mask. */
    e.pol.alg_mask = ~0u;
    assert_refused(
        p, &e,
        tu_fmt(p, "%s.%s.", mcp_b64url_encode(p, (const unsigned char *)"{\"alg\":\"none\"}", 14),
               mcp_b64url_encode(p, (const unsigned char *)claims(p, &e, ISS_A), strlen(claims(p, &e, ISS_A)))),
        "Algorithm not allowed");
}

static void test_hmac_needs_secret(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    env_t e;
    mcp_verified_t out;
    unsigned char *secret = tu_random(p, 32);
    const char *tok;
    env_init(p, &e);
    tok = tu_sign(p, MCP_ALG_HS256, NULL, secret, 32, hdr(p, MCP_ALG_HS256, NULL, NULL), claims(p, &e, ISS_A));

    e.pol.alg_mask = MCP_ALG_MASK_DEFAULT | MCP_ALG_BIT(MCP_ALG_HS256);
    e.pol.hmac_key = NULL;
    assert_refused(p, &e, tok, "Algorithm not allowed");
    /* With the secret configured it verifies (control). */
    e.pol.hmac_key = mcp_jwk_from_secret(p, secret, 32);
    assert_verified(p, &e, tok, &out);
    assert_int_equal(out.alg, MCP_ALG_HS256);
    /* Secret configured but HS256 not allowed. */
    e.pol.alg_mask = MCP_ALG_MASK_DEFAULT;
    assert_refused(p, &e, tok, "Algorithm not allowed");
    /* A secret too short for HS512 never verifies HS512. */
    e.pol.alg_mask = MCP_ALG_MASK_DEFAULT | MCP_ALG_MASK_HMAC;
    assert_refused(p, &e,
                   tu_sign(p, MCP_ALG_HS512, NULL, secret, 32, hdr(p, MCP_ALG_HS512, NULL, NULL), claims(p, &e, ISS_A)),
                   "Algorithm not allowed");
}

/* PEM text of pkey's public key, in p. */
static const char *public_pem(apr_pool_t *p, EVP_PKEY *pk)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n;
    const char *out;
    assert_non_null(b);
    assert_int_equal(PEM_write_bio_PUBKEY(b, pk), 1);
    n = BIO_get_mem_data(b, &data);
    out = apr_pstrmemdup(p, data, (apr_size_t)n);
    BIO_free(b);
    return out;
}

static void test_rs_to_hs_confusion(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    env_t e;
    const char *pem, *tok, *jwk_text;
    env_init(p, &e);
    pem = public_pem(p, G.rsa_a);
    assert_true(tu_contains(pem, "BEGIN PUBLIC KEY"));
    /* The classic attack: HMAC keyed with the issuer's public key, kid naming it. */
    tok = tu_sign(p, MCP_ALG_HS256, NULL, (const unsigned char *)pem, strlen(pem), hdr(p, MCP_ALG_HS256, "a1", NULL),
                  claims(p, &e, ISS_A));

    e.pol.alg_mask = MCP_ALG_MASK_DEFAULT | MCP_ALG_BIT(MCP_ALG_HS256);
    e.pol.hmac_key = mcp_jwk_from_secret(p, tu_random(p, 32), 32);
    assert_refused(p, &e, tok, "Invalid signature");
    e.pol.alg_mask = MCP_ALG_MASK_DEFAULT;
    assert_refused(p, &e, tok, "Algorithm not allowed");
    e.pol.hmac_key = NULL;
    assert_refused(p, &e, tok, "Algorithm not allowed");
    e.pol.alg_mask = ~0u;
    assert_refused(p, &e, tok, "Algorithm not allowed");

    /* Same with the JWK JSON text as the HMAC key. */
    jwk_text = mcp_json_compact(p, tu_pub_jwk_json(p, G.rsa_a, "a1", MCP_ALG_RS256, 0));
    tok = tu_sign(p, MCP_ALG_HS256, NULL, (const unsigned char *)jwk_text, strlen(jwk_text),
                  hdr(p, MCP_ALG_HS256, "a1", NULL), claims(p, &e, ISS_A));
    e.pol.alg_mask = MCP_ALG_MASK_DEFAULT | MCP_ALG_BIT(MCP_ALG_HS256);
    e.pol.hmac_key = mcp_jwk_from_secret(p, tu_random(p, 32), 32);
    assert_refused(p, &e, tok, "Invalid signature");
}

static void test_token_too_large(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    env_t e;
    mcp_verified_t out;
    const char *tok;
    env_init(p, &e);
    tok = mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", NULL), claims(p, &e, ISS_A));
    e.pol.max_token_size = strlen(tok);
    assert_verified(p, &e, tok, &out);
    e.pol.max_token_size = strlen(tok) - 1;
    assert_refused(p, &e, tok, "Token too large");
    /* The size rule comes first: even garbage is judged by its size. */
    e.pol.max_token_size = 10;
    assert_refused(p, &e, "not.a.token.at.all.really", "Token too large");
}

static void test_token_type(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    env_t e;
    mcp_verified_t out;
    const char *c;
    env_init(p, &e);
    c = claims(p, &e, ISS_A);
    e.pol.token_type = "at+jwt";
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", ",\"typ\":\"JWT\""), c),
                   "Invalid token type");
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", NULL), c), "Invalid token type");
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", ",\"typ\":\"at+jwt2\""), c),
                   "Invalid token type");
    assert_verified(p, &e,
                    mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", ",\"typ\":\"application/at+jwt\""), c),
                    &out);
    assert_verified(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", ",\"typ\":\"at+jwt\""), c),
                    &out);
    assert_verified(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", ",\"typ\":\"AT+JWT\""), c),
                    &out);
    /* Not configured: typ is not looked at. */
    e.pol.token_type = NULL;
    assert_verified(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", ",\"typ\":\"JWT\""), c), &out);
}

static void test_embedded_keys_ignored(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    env_t e;
    const char *c, *jwk, *extra;
    const char *members[] = {"jku", "x5u", "jwk", "x5c"};
    size_t i;
    env_init(p, &e);
    c = claims(p, &e, ISS_A);
    jwk = mcp_json_compact(p, tu_pub_jwk_json(p, G.attacker, "attacker-1", MCP_ALG_RS256, 1));
    /* Each header member alone, then all of them together. */
    for (i = 0; i <= 4; i++) {
        const char *one[] = {
            ",\"jku\":\"https://attacker.example/jwks.json\"",
            ",\"x5u\":\"https://attacker.example/cert.pem\"",
            tu_fmt(p, ",\"jwk\":%s", jwk),
            ",\"x5c\":[\"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\"]",
        };
        extra = i < 4 ? one[i] : tu_fmt(p, "%s%s%s%s", one[0], one[1], one[2], one[3]);
        assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.attacker, hdr(p, MCP_ALG_RS256, "attacker-1", extra), c),
                       "Unknown key id");
        assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.attacker, hdr(p, MCP_ALG_RS256, "a1", extra), c),
                       "Invalid signature");
        assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.attacker, hdr(p, MCP_ALG_RS256, NULL, extra), c),
                       "Invalid signature");
        if (i < 4) {
            /* Control: the member itself does not make a genuine token fail. */
            mcp_verified_t out;
            assert_verified(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", extra), c), &out);
            assert_non_null(json_object_get(out.header, members[i]));
        }
    }
}

static void test_kid_key_must_fit_alg(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    env_t e;
    const char *c;
    env_init(p, &e);
    c = claims(p, &e, ISS_A);
    /* ES256 token whose kid names the P-384 key. */
    assert_refused(p, &e, mint(p, MCP_ALG_ES256, G.p256, hdr(p, MCP_ALG_ES256, "a-p384", NULL), c),
                   "Key does not fit algorithm");
    /* RS256 token whose kid names an EC key, EdDSA token naming an RSA key. */
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a-ec", NULL), c),
                   "Key does not fit algorithm");
    assert_refused(p, &e, mint(p, MCP_ALG_EDDSA, G.ed, hdr(p, MCP_ALG_EDDSA, "a1", NULL), c),
                   "Key does not fit algorithm");
    /* JWK alg ES256 on a-ec pins it: ES384 with that kid does not fit. */
    assert_refused(p, &e, mint(p, MCP_ALG_ES384, G.p384, hdr(p, MCP_ALG_ES384, "a-ec", NULL), c),
                   "Key does not fit algorithm");
}

static void test_rsa1024_not_usable(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    env_t e;
    mcp_jwks_t *set = NULL;
    const char *why = NULL, *doc, *c, *tok;
    mcp_jwk_t *weak;
    mcp_jws_t jws;
    mcp_fail_t fail;
    env_init(p, &e);
    c = claims(p, &e, ISS_A);
    tok = mint(p, MCP_ALG_RS256, G.rsa1024, hdr(p, MCP_ALG_RS256, "weak", NULL), c);

    /* From a JWKS: the weak key is skipped at parse time. */
    doc = tu_fmt(p, "{\"keys\":[%s,%s]}", mcp_json_compact(p, tu_pub_jwk_json(p, G.rsa1024, "weak", MCP_ALG_RS256, 1)),
                 mcp_json_compact(p, tu_pub_jwk_json(p, G.rsa_a, "a1", MCP_ALG_RS256, 1)));
    assert_int_equal(mcp_jwks_parse(p, doc, strlen(doc), &set, &why), 0);
    assert_int_equal(set->nkeys, 1);
    assert_int_equal(set->skipped, 1);
    e.ti[0].keys = set;
    assert_refused(p, &e, tok, "Unknown key id");

    /* Even a hand-made key entry of 1024 bits is never used. */
    weak = apr_pcalloc(p, sizeof(*weak));
    weak->kid = "weak";
    weak->kty = MCP_KTY_RSA;
    weak->bits = EVP_PKEY_get_bits(G.rsa1024);
    weak->pkey = G.rsa1024;
    assert_int_equal(weak->bits, 1024);
    assert_false(mcp_jwk_fits_alg(weak, MCP_ALG_RS256));
    assert_int_equal(mcp_jws_parse(p, tok, strlen(tok), &jws, &fail), 0);
    assert_false(mcp_jws_verify(MCP_ALG_RS256, weak, (const unsigned char *)jws.signing_input, jws.signing_input_len,
                                jws.sig, jws.sig_len));
    e.ti[0].keys = tu_jwks(p, 1, weak);
    assert_refused(p, &e, tok, "Key does not fit algorithm");
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa1024, hdr(p, MCP_ALG_RS256, NULL, NULL), c), "Unknown key id");
}

/* CLI --jws-only: signature and header only; the payload need not be claims. */
static void test_jws_only(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    mcp_trusted_issuer_t ti = {0};
    mcp_verify_policy_t pol;
    mcp_verified_t out;
    mcp_fail_t fail;
    EVP_PKEY *priv = NULL;
    const char *tok;

    ti.keys = tu_fresh_jwks(p, MCP_ALG_ES384, "k384", &priv);
    memset(&pol, 0, sizeof(pol));
    pol.issuers = &ti;
    pol.n_issuers = 1;
    pol.alg_mask = MCP_ALG_MASK_DEFAULT;
    pol.max_token_size = 16384;
    pol.jws_only = 1;
    tok = mint(p, MCP_ALG_ES384, priv, hdr(p, MCP_ALG_ES384, "k384", NULL), "not JSON at all");
    assert_int_equal(mcp_verify_jwt(p, tok, strlen(tok), &pol, NULL, &out, &fail), 0);
    assert_null(out.claims);
    assert_int_equal(out.alg, MCP_ALG_ES384);
    assert_int_equal(out.issuer_index, 0);
    assert_int_equal(out.key_doc, -1); /* a fixed key set, not a shared document */
    /* The signature still counts. */
    assert_int_equal(mcp_verify_jwt(p, tu_tamper_sig(p, tok, 1, 1), strlen(tok), &pol, NULL, &out, &fail), -1);
    assert_string_equal(fail.reason, "Invalid signature");
    /* Without jws_only the payload must be a claims object. */
    pol.jws_only = 0;
    assert_int_equal(mcp_verify_jwt(p, tok, strlen(tok), &pol, NULL, &out, &fail), -1);
    assert_string_equal(fail.reason, "Malformed token");
}

static void test_header_rules_apply(void **state)
{
    apr_pool_t *p = TU_POOL(state);
    env_t e;
    const char *c;
    env_init(p, &e);
    c = claims(p, &e, ISS_A);
    assert_refused(p, &e, mint(p, MCP_ALG_RS256, G.rsa_a, hdr(p, MCP_ALG_RS256, "a1", ",\"crit\":[\"exp\"]"), c),
                   "Unsupported crit header");
    assert_refused(p, &e, "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", "Encrypted tokens (JWE) are not accepted");
    assert_refused(p, &e, "opaque-token-value", "Malformed token");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_TEST(test_good_tokens),
        TU_TEST(test_bad_signature),
        TU_TEST(test_refusal_lasts),
        TU_TEST(test_claims_checked),
        TU_TEST(test_issuer_not_configured),
        TU_TEST(test_issuer_exact_match),
        TU_TEST(test_issuer_alias),
        TU_TEST(test_issuer_selects_keys),
        TU_TEST(test_unknown_kid),
        TU_TEST(test_ambiguous_kid),
        TU_TEST(test_no_kid_tries_fitting_keys),
        TU_TEST(test_alg_mask),
        TU_TEST(test_hmac_needs_secret),
        TU_TEST(test_rs_to_hs_confusion),
        TU_TEST(test_token_too_large),
        TU_TEST(test_token_type),
        TU_TEST(test_embedded_keys_ignored),
        TU_TEST(test_kid_key_must_fit_alg),
        TU_TEST(test_rsa1024_not_usable),
        TU_TEST(test_jws_only),
        TU_TEST(test_header_rules_apply),
    };
    tu_global_init();
    return cmocka_run_group_tests_name("verifier", tests, group_setup, group_teardown);
}
