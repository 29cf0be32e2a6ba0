/* SPDX-License-Identifier: Apache-2.0 */
/* Per-issuer signing keys: where they come from (jwks_file, jwks_uri, or
 * OIDC / RFC 8414 discovery: discovery.h), when to refetch (TTL,
 * unknown-kid cooldown), the last good set kept while the IdP is down. The fetched documents live
 * in the shared store (one copy for all processes); each process keeps the
 * parsed keys and re-parses only when the shared generation changes. */
#ifndef MCP_KEYRING_H
#define MCP_KEYRING_H

#include <apr_pools.h>
#include <apr_time.h>

#include "http_fetch.h"
#include "jwk.h"
#include "fail.h"
#include "shm_cache.h"

typedef struct {
    apr_interval_time_t ttl;       /* fresh for this long after a fetch */
    apr_interval_time_t cooldown;  /* at most one unscheduled fetch per interval */
    apr_interval_time_t max_stale; /* last good set usable this long past its TTL */
    mcp_http_opts_t http;
} mcp_fetch_settings_t;

typedef struct mcp_keyring mcp_keyring_t;

/* A reference-counted parsed key set; hold it while its keys are used. */
typedef struct mcp_keyset mcp_keyset_t;
const mcp_jwks_t *mcp_keyset_jwks(const mcp_keyset_t *ks);
/* The shared document generation these keys were parsed from. */
uint64_t mcp_keyset_generation(const mcp_keyset_t *ks);

/* issuer may be NULL for a bare jwks_uri/jwks_file (CLI). settings is read
 * when keys are fetched, so it may be completed after creation. */
mcp_keyring_t *mcp_keyring_create(apr_pool_t *pconf, const char *issuer, const char *jwks_uri, const char *jwks_file,
                                  const mcp_fetch_settings_t *settings);

/* Where the documents live: two document slots of the store (JWKS and
 * discovery). Call before the first acquire. */
void mcp_keyring_attach(mcp_keyring_t *kr, mcp_store_t *store, int jwks_doc, int discovery_doc);

/* The names (32 bytes each) of the keyring's two documents: the store finds
 * them by these, wherever a configuration change put them. */
void mcp_keyring_doc_keys(const mcp_keyring_t *kr, const unsigned char **jwks_key, const unsigned char **disc_key);

/* The JWKS document slot (for entries whose validity depends on the keys). */
int mcp_keyring_jwks_doc(const mcp_keyring_t *kr);

/* Current keys, fetched if due. refresh != 0: the caller saw an unknown
 * kid; refetch unless an attempt was made within the cooldown.
 * Fails with MCP_FAIL_UNAVAILABLE when no usable keys exist. */
int mcp_keyring_acquire(mcp_keyring_t *kr, int refresh, apr_pool_t *p, const mcp_log_t *log, mcp_keyset_t **out,
                        mcp_fail_t *fail);
/* A jwks_file keyring: re-reads the file into the shared copy (SPEC 7: at
 * every start and graceful restart, since shared memory survives those).
 * Other sources: nothing to do. 0 ok, -1 unreadable or unusable file. */
int mcp_keyring_reload_file(mcp_keyring_t *kr, apr_pool_t *p, const mcp_log_t *log);

/* The same, with waits for another process's fetch ending by wait_until
 * (one deadline for all the acquires of one request: SPEC 7 bounds the
 * whole wait by MCPAuthHTTPTimeout). */
int mcp_keyring_acquire_until(mcp_keyring_t *kr, int refresh, apr_time_t wait_until, apr_pool_t *p,
                              const mcp_log_t *log, mcp_keyset_t **out, mcp_fail_t *fail);
/* now + MCPAuthHTTPTimeout. */
apr_time_t mcp_keyring_wait_deadline(const mcp_keyring_t *kr);

void mcp_keyring_release(mcp_keyring_t *kr, mcp_keyset_t *ks);

/* Drops this process's parsed keys. Their pools hang off APR's global pool
 * (created from any thread) but run this module's cleanups: they must go
 * before httpd unloads the module, so a pconf cleanup calls this. */
void mcp_keyring_forget(mcp_keyring_t *kr);

#endif
