/* SPDX-License-Identifier: Apache-2.0 */
/* One call verifies a compact JWT: size, JOSE header, allowed algorithm,
 * token type, issuer, key selection (kid, type, curve), signature, then the
 * claims. Shared by the module and mcp-auth-token so both judge alike. */
#ifndef MCP_VERIFIER_H
#define MCP_VERIFIER_H

#include <apr_pools.h>
#include <jansson.h>

#include "claim_check.h"
#include "jwk.h"
#include "jwt.h"
#include "keyring.h"
#include "fail.h"

typedef struct {
    const char *issuer;                 /* exact "iss"; NULL accepts any (CLI without --issuer) */
    mcp_keyring_t *ring;                /* fetched keys, or */
    const mcp_jwks_t *keys;             /* a fixed key set (CLI --jwk / --jwks FILE) */
    const char *introspection_endpoint; /* configured; NULL: from discovery */
    /* Where the ring's keys come from, for the verdict caches' policy
     * fingerprint (the ring itself is shared by every location with the
     * same source). Both NULL: discovered from the issuer. */
    const char *jwks_uri;
    const char *jwks_file;
    unsigned char jwks_file_sha256[32]; /* jwks_file content when the directive was read */
    /* MCPAuthIssuer ... alias=<iss>: other exact "iss" values accepted for
     * this issuer and its keys (Google's schemeless accounts.google.com). */
    const char *const *aliases;
    int n_aliases;
} mcp_trusted_issuer_t;

/* Is iss this issuer's URL or one of its aliases (exact)? */
int mcp_issuer_matches(const mcp_trusted_issuer_t *ti, const char *iss);

typedef struct {
    const mcp_trusted_issuer_t *issuers;
    int n_issuers;
    unsigned alg_mask;         /* MCP_ALG_BIT(...) of allowed algorithms */
    const mcp_jwk_t *hmac_key; /* MCPAuthHMACSecret; HS* needs it */
    const char *token_type;    /* required "typ", or NULL */
    size_t max_token_size;
    mcp_claim_policy_t claims;
    int jws_only; /* signature and header only (CLI --jws-only) */
} mcp_verify_policy_t;

typedef struct {
    json_t *header;
    json_t *claims; /* NULL with jws_only */
    mcp_alg alg;
    int issuer_index;
    /* The shared JWKS document and generation whose key verified the token
     * (key_doc -1: an HMAC secret or a fixed key set): a cached verdict is
     * valid only while that generation is current. */
    int key_doc;
    uint64_t key_generation;
    /* On failure: 1 when the refusal depends only on the token, the policy
     * and key_doc's generation -- a key that fits (kid, alg) did not match
     * the signature, or a good signature's claims were refused for a
     * reason time cannot lift (expired, another audience). Such a refusal
     * may be remembered: a token sent again and again costs one
     * verification, not one per request. */
    int refusal_lasts;
} mcp_verified_t;

int mcp_verify_jwt(apr_pool_t *p, const char *token, size_t len, const mcp_verify_policy_t *pol, const mcp_log_t *log,
                   mcp_verified_t *out, mcp_fail_t *fail);

#endif
