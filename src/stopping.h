/* "This process is stopping": set once by the HTTP layer when httpd tells
 * the child to stop (or to stop gracefully), read by every loop that waits
 * for the IdP or for another process (a transfer in flight, a wait for a
 * fetch or an answer), so a stop or restart never waits out a hung IdP and
 * never ends in SIGKILL. A plain process-wide flag: reads are lock-free. */
#ifndef MCP_STOPPING_H
#define MCP_STOPPING_H

/* Marks the process as stopping (idempotent, async-signal-safe). */
void mcp_stopping_set(void);

/* Non-zero once mcp_stopping_set was called in this process. */
int mcp_stopping(void);

#endif
