/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the libFuzzer targets: one-time APR/OpenSSL setup, a fresh pool
 * with its own allocator per input (destroying it returns every byte to
 * malloc, so LeakSanitizer sees what an input leaked), NUL-terminated
 * copies of input slices, and invariant checks that abort. */
#ifndef MCP_FUZZ_COMMON_H
#define MCP_FUZZ_COMMON_H

#include <apr_allocator.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jose_alg.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the engine does not hold: report and crash so libFuzzer
 * saves the input. */
#define FZ_ASSERT(cond)                                                                                                \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);                         \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

static inline void fz_global_init(void)
{
    static int done;
    if (done)
        return;
    if (apr_initialize() != APR_SUCCESS) {
        fputs("apr_initialize failed\n", stderr);
        abort();
    }
    mcp_jose_init();
    done = 1;
}

/* A pool that owns its allocator: apr_pool_destroy frees everything. */
static inline apr_pool_t *fz_pool(void)
{
    apr_allocator_t *a = NULL;
    apr_pool_t *p = NULL;
    if (apr_allocator_create(&a) != APR_SUCCESS || apr_pool_create_ex(&p, NULL, NULL, a) != APR_SUCCESS) {
        fputs("cannot create a pool\n", stderr);
        abort();
    }
    apr_allocator_owner_set(a, p);
    return p;
}

/* data[0..n) as a NUL-terminated string in p (an exact-size allocation). */
static inline char *fz_cstr(apr_pool_t *p, const uint8_t *data, size_t n)
{
    char *s = apr_palloc(p, n + 1);
    if (n)
        memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

/* Splits data at the first NUL: *rest is NULL when there is none. */
static inline size_t fz_split(const uint8_t *data, size_t size, const uint8_t **rest, size_t *rest_len)
{
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul) {
        *rest = NULL;
        *rest_len = 0;
        return size;
    }
    *rest = nul + 1;
    *rest_len = size - (size_t)(nul - data) - 1;
    return (size_t)(nul - data);
}

#endif
