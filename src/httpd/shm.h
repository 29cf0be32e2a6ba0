/* SPDX-License-Identifier: Apache-2.0 */
/* httpd side of the shared store: two slotmem instances from
 * mod_slotmem_shm (entries and documents) and the global mutex that the
 * stock `Mutex mcp-auth-shm` directive configures. */
#ifndef MCP_SHM_H
#define MCP_SHM_H

#include <httpd.h>

#include "l1_cache.h"
#include "policy_memo.h"
#include "shm_cache.h"

#define MCP_MUTEX_TYPE "mcp-auth-shm"

/* pre_config: registers the mutex type with the Mutex directive. */
int mcp_shm_pre_config(apr_pool_t *pconf);

/* post_config: creates or re-attaches the shared memory and the mutex and
 * hands each issuer's keyring its document slots. NULL or an error text. */
const char *mcp_shm_post_config(apr_pool_t *pconf, server_rec *s);

void mcp_shm_child_init(apr_pool_t *p, server_rec *s);

/* The store of this generation (NULL before post_config). */
mcp_store_t *mcp_shm_store(void);

/* This process's small verdict cache (NULL outside a child). */
mcp_l1_t *mcp_shm_l1(void);

/* This process's memo of policy fingerprints (NULL outside a child). */
mcp_policy_memo_t *mcp_shm_policy_memo(void);

/* A full store costs speed, never a request: warn, at most once a minute. */
void mcp_shm_note_eviction(request_rec *r);

#endif
