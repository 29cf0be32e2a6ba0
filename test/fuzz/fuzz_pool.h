/* SPDX-License-Identifier: Apache-2.0 */
/* Force-included (-include) into every translation unit of the fuzz build:
 * apr_palloc (and apr_pcalloc, a macro over it) become one exact-size
 * malloc each, freed by a pool cleanup, so ASan sees every pool buffer's
 * bounds and lifetime instead of 8 KiB pool blocks. */
#ifndef MCP_FUZZ_POOL_H
#define MCP_FUZZ_POOL_H

#include <apr_pools.h>
#include <string.h>

void *mcp_fuzz_palloc(apr_pool_t *p, apr_size_t size);

#define apr_palloc(p, size) mcp_fuzz_palloc((p), (size))

#endif
