/* SPDX-License-Identifier: Apache-2.0 */
/* "This process is stopping": set by the HTTP layer when httpd tells the
 * child to stop, read by every loop that waits for the IdP or for another
 * process (a transfer in flight, a wait for a fetch or an answer), so a
 * stop never waits out a hung IdP and never ends in SIGKILL. A
 * process-wide deadline: reads are lock-free. */
#ifndef MCP_STOPPING_H
#define MCP_STOPPING_H

#include <stdint.h>

/* Marks the process as stopping now (idempotent). */
void mcp_stopping_set(void);

/* A graceful stop: waits give up `grace_us` microseconds from now, unless
 * `restarting` (may be NULL) then says the server is restarting
 * gracefully -- a new generation took over, nobody will SIGKILL this
 * process, and its requests in flight are served to their own timeouts. */
void mcp_stopping_set_graceful(int64_t grace_us, int (*restarting)(void));

/* Non-zero once the stop (and its grace) has come in this process. */
int mcp_stopping(void);

#endif
