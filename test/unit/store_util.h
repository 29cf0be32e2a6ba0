/* SPDX-License-Identifier: Apache-2.0 */
/* What the tests of the shared store and of the caches and keyring built on
 * it share: fixed times, entry keys from names, a document policy. */
#ifndef MCP_TEST_STORE_UTIL_H
#define MCP_TEST_STORE_UTIL_H

#include "shm_cache.h"

#define SEC(n) ((apr_time_t)(n)*APR_USEC_PER_SEC)
#define T0 SEC(1700000000)

static inline unsigned char *key_of(apr_pool_t *p, const char *name)
{
    unsigned char *k = apr_pcalloc(p, 32);
    unsigned int n;
    EVP_Digest(name, strlen(name), k, &n, EVP_sha256(), NULL);
    return k;
}

static const mcp_doc_policy_t POLICY __attribute__((unused)) = {SEC(100), SEC(30), SEC(10)};

#endif
