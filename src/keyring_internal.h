/* SPDX-License-Identifier: Apache-2.0 */
/* What keyring.c and discovery.c share and nobody else sees: the keyring
 * itself (discovery reads its issuer, settings and discovery document slot)
 * and the store policy of its documents. Not for other engine files: they
 * go through keyring.h and discovery.h. */
#ifndef MCP_KEYRING_INTERNAL_H
#define MCP_KEYRING_INTERNAL_H

#include <apr_thread_mutex.h>

#include "keyring.h"

struct mcp_keyring {
    const char *issuer;
    const char *jwks_uri; /* configured; NULL means discover */
    const char *jwks_file;
    const mcp_fetch_settings_t *settings;
    unsigned char jwks_key[32], disc_key[32]; /* names of our document slots */
    mcp_store_t *store;
    int jwks_doc, disc_doc;
    apr_thread_mutex_t *lock; /* guards current and private_attempt */
    /* Held for a whole fetch made without the shared store: the threads of
     * this process that need keys meanwhile wait for it (bounded by
     * MCPAuthHTTPTimeout) and use its result, instead of being refused by
     * the once-per-cooldown rule while it is still in flight. */
    apr_thread_mutex_t *private_fetch;
    mcp_keyset_t *current;
    /* Start of this process's last fetch made without the shared store
     * (its lock failed): such fetches too are spaced by the cooldown. */
    apr_time_t private_attempt;
};

/* The store policy of the keyring's documents (JWKS and discovery). */
mcp_doc_policy_t mcp_keyring_doc_policy(const mcp_fetch_settings_t *s);

#endif
