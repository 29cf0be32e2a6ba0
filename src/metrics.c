/* SPDX-License-Identifier: Apache-2.0 */
#include "metrics.h"

/* Process-local until the shared-memory block is attached. */
static uint64_t counters[MCP_M_COUNT];

void mcp_metric_add(mcp_metric m, uint64_t n)
{
    if ((unsigned)m < MCP_M_COUNT)
        __atomic_fetch_add(&counters[m], n, __ATOMIC_RELAXED);
}

uint64_t mcp_metric_get(mcp_metric m)
{
    return (unsigned)m < MCP_M_COUNT ? __atomic_load_n(&counters[m], __ATOMIC_RELAXED) : 0;
}
