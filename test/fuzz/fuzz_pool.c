/* SPDX-License-Identifier: Apache-2.0 */
/* The allocator behind fuzz_pool.h. Its header gives the prototype; the
 * redirect it defines touches nothing here (no apr_palloc below). */
#include "fuzz_pool.h"
#include <apr_pools.h>
#include <stdio.h>
#include <stdlib.h>

static apr_status_t free_block(void *block)
{
    free(block);
    return APR_SUCCESS;
}

void *mcp_fuzz_palloc(apr_pool_t *p, apr_size_t size)
{
    void *block = malloc(size ? size : 1);
    if (!block) {
        fputs("mcp_fuzz_palloc: out of memory\n", stderr);
        abort();
    }
    /* The cleanup node itself comes from the real pool (inside libapr). */
    apr_pool_cleanup_register(p, block, free_block, apr_pool_cleanup_null);
    return block;
}
