/* Per-issuer signing keys: where they come from (jwks_file, jwks_uri, or
 * OIDC / RFC 8414 discovery), when to refetch (TTL, unknown-kid cooldown),
 * and the last good set kept while the IdP is down. Thread-safe. */
#ifndef MCP_KEYRING_H
#define MCP_KEYRING_H

#include <apr_pools.h>
#include <apr_time.h>

#include "http_fetch.h"
#include "jwk.h"
#include "mcp_fail.h"

typedef struct {
    apr_interval_time_t ttl;       /* fresh for this long after a fetch */
    apr_interval_time_t cooldown;  /* at most one fetch attempt per interval when not due */
    apr_interval_time_t max_stale; /* last good set usable this long past its TTL */
    mcp_http_opts_t http;
} mcp_fetch_settings_t;

typedef struct mcp_keyring mcp_keyring_t;

/* A reference-counted key set; hold it for as long as keys are used. */
typedef struct mcp_keyset mcp_keyset_t;
const mcp_jwks_t *mcp_keyset_jwks(const mcp_keyset_t *ks);

/* issuer may be NULL for a bare jwks_uri/jwks_file (CLI). settings is read
 * when keys are fetched, so it may be completed after creation. */
mcp_keyring_t *mcp_keyring_create(apr_pool_t *pconf, const char *issuer, const char *jwks_uri,
                                  const char *jwks_file, const mcp_fetch_settings_t *settings);

/* Current keys, fetched if due. refresh != 0: the caller saw an unknown
 * kid, refetch unless a fetch was attempted within the cooldown.
 * Fails with MCP_FAIL_UNAVAILABLE when no usable keys exist. */
int mcp_keyring_acquire(mcp_keyring_t *kr, int refresh, apr_pool_t *p, const mcp_log_t *log,
                        mcp_keyset_t **out, mcp_fail_t *fail);
void mcp_keyring_release(mcp_keyring_t *kr, mcp_keyset_t *ks);

/* Discovery URLs for an issuer, in the order they are tried: OIDC
 * (issuer + /.well-known/openid-configuration) then RFC 8414 with the
 * well-known segment inserted before the issuer's path. */
void mcp_discovery_urls(apr_pool_t *p, const char *issuer, const char **oidc, const char **rfc8414);

#endif
