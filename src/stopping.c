#include "stopping.h"

/* sig_atomic_t semantics are not enough for threads; a relaxed atomic is:
 * the flag only ever goes from 0 to 1 and readers poll it. */
static int stopping_flag;

void mcp_stopping_set(void)
{
    __atomic_store_n(&stopping_flag, 1, __ATOMIC_RELAXED);
}

int mcp_stopping(void)
{
    return __atomic_load_n(&stopping_flag, __ATOMIC_RELAXED);
}
