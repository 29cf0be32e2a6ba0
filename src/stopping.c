/* SPDX-License-Identifier: Apache-2.0 */
#include "stopping.h"

#include <apr_time.h>

/* When the process stops (apr_time_t); 0: not stopping. Only ever moves
 * from 0 to a time or to an earlier time; readers poll it. */
static int64_t stop_at;
/* Set with a graceful stop only; cleared by a hard one. */
static int (*volatile restarting_fn)(void);

static void stop_by(int64_t at)
{
    int64_t cur = __atomic_load_n(&stop_at, __ATOMIC_RELAXED);
    while ((cur == 0 || at < cur) &&
           !__atomic_compare_exchange_n(&stop_at, &cur, at, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

void mcp_stopping_set_graceful(int64_t grace_us, int (*restarting)(void))
{
    if (__atomic_load_n(&stop_at, __ATOMIC_RELAXED) == 0)
        restarting_fn = restarting;
    stop_by((int64_t)apr_time_now() + (grace_us > 0 ? grace_us : 0));
}

void mcp_stopping_set(void)
{
    restarting_fn = NULL;
    stop_by((int64_t)apr_time_now());
}

int mcp_stopping(void)
{
    int64_t at = __atomic_load_n(&stop_at, __ATOMIC_RELAXED);
    int (*restarting)(void) = restarting_fn;

    if (at == 0 || (int64_t)apr_time_now() < at)
        return 0;
    return !(restarting && restarting());
}
