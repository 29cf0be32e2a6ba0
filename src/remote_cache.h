/* SPDX-License-Identifier: Apache-2.0 */
/* The second cache level, shared by several httpd nodes (MCPAuthSharedCache,
 * SPEC 10): the engine's side of it. The glue hands over two blocking
 * calls (get and put, on httpd's socache providers: redis, memcache); this
 * file decides what goes through them and how long anyone waits:
 *
 * - every call runs on a thread of its own and the request waits for it
 *   at most MCP_REMOTE_CALL_MAX and never past the request's IdP deadline
 *   (mcp_http_deadline): the providers' own read timeouts do not bound a
 *   silent server (README, "Several httpd nodes");
 * - after a failure or a timeout the level is skipped for
 *   MCP_REMOTE_DOWN_FOR ("down"), then tried again; one warning per
 *   MCP_REMOTE_LOG_INTERVAL per process says so;
 * - every value carries its kind, its own expiry, the key it was written
 *   under and a SHA-256 of all that: garbage, a truncated value, another
 *   key's entry or an expired one is refused (a cache server that can
 *   write well-formed entries is trusted as much as the local store).
 *
 * Keys are digests: the local store's key (policy fingerprint, endpoint,
 * token) hashed once more under a label. No token ever reaches the cache
 * server. Thread-safe; no httpd types. */
#ifndef MCP_REMOTE_CACHE_H
#define MCP_REMOTE_CACHE_H

#include <apr_pools.h>
#include <apr_time.h>
#include <stdint.h>

#include "fail.h"

#define MCP_REMOTE_KEY_LEN 32
/* Largest payload kept remotely (an introspection answer); larger ones stay local. */
#define MCP_REMOTE_MAX_PAYLOAD 65536
/* The longest one call may make a request wait (and never past its deadline). */
#define MCP_REMOTE_CALL_MAX apr_time_from_sec(1)
/* How long the level is skipped after a failure. */
#define MCP_REMOTE_DOWN_FOR apr_time_from_sec(5)
#define MCP_REMOTE_LOG_INTERVAL apr_time_from_sec(60)
/* Calls of this process under way at once (a silent server keeps them
 * for good): at this many, a further call is skipped (the IdP is asked)
 * without starting another. Room for a threaded child's burst. */
#define MCP_REMOTE_MAX_IN_FLIGHT 32

/* What the callbacks return. */
enum { MCP_REMOTE_FOUND = 0, MCP_REMOTE_NOTFOUND = 1, MCP_REMOTE_ERROR = -1 };

/* The blocking calls of the glue, run on the engine's threads. get fills
 * buf (*len: its size on entry, the value's length on return). put keeps
 * the value until expires (absolute). Both may take any time: the engine
 * stops waiting, never the call. */
typedef struct {
    int (*get)(void *ctx, const unsigned char *key, size_t klen, unsigned char *buf, size_t *len);
    int (*put)(void *ctx, const unsigned char *key, size_t klen, apr_time_t expires, const unsigned char *value,
               size_t len);
    void *ctx;
    const char *name; /* for log lines: "redis:127.0.0.1:6379" */
} mcp_remote_ops_t;

typedef struct mcp_remote_s mcp_remote_t;

/* A handle for this process (malloc'd: it lives as long as the process,
 * since a call that never returns may still use it). call_max: the
 * longest wait per call (MCP_REMOTE_CALL_MAX; unit tests use less). */
mcp_remote_t *mcp_remote_create(const mcp_remote_ops_t *ops, apr_interval_time_t call_max,
                                apr_interval_time_t down_for);

/* Frees the handle when no call of it is under way (0), else leaves it
 * (-1): a call that never returned may still use it. Tests; a child keeps
 * its handle until it exits. */
int mcp_remote_free(mcp_remote_t *rc);

/* A remote entry as read back. */
typedef struct {
    uint32_t kind;
    apr_time_t expires;
    const char *value; /* payload, NUL-terminated (allocated from the caller's pool) */
    size_t len;
} mcp_remote_entry_t;

/* The remote key of a local store key: SHA-256(label, local key). */
void mcp_remote_key(const char *label, const unsigned char local[32], unsigned char out[MCP_REMOTE_KEY_LEN]);

/* MCP_REMOTE_FOUND with *out (a well-formed live entry written under this
 * key), MCP_REMOTE_NOTFOUND (nothing, or a value refused as malformed,
 * foreign or expired), MCP_REMOTE_ERROR (failed, timed out, or skipped
 * while down). */
int mcp_remote_get(mcp_remote_t *rc, const unsigned char key[MCP_REMOTE_KEY_LEN], apr_time_t now, apr_pool_t *p,
                   mcp_remote_entry_t *out, const mcp_log_t *log);

/* Writes an entry of kind until expires. 0 or MCP_REMOTE_ERROR. */
int mcp_remote_put(mcp_remote_t *rc, const unsigned char key[MCP_REMOTE_KEY_LEN], uint32_t kind, apr_time_t expires,
                   const void *value, size_t len, apr_pool_t *p, const mcp_log_t *log);

/* The level is being skipped after a failure (tests, logs). */
int mcp_remote_is_down(mcp_remote_t *rc, apr_time_t now);

/* The wire form, exposed for the unit tests and the fuzz target: encode
 * returns the value's length (into a buffer of MCP_REMOTE_ENCODED_MAX);
 * decode returns 0 and *out for an intact live entry of that key. */
#define MCP_REMOTE_HEADER_LEN (4 + 4 + 8 + MCP_REMOTE_KEY_LEN + 4)
#define MCP_REMOTE_ENCODED_MAX (MCP_REMOTE_HEADER_LEN + MCP_REMOTE_MAX_PAYLOAD + 32)
size_t mcp_remote_encode(const unsigned char key[MCP_REMOTE_KEY_LEN], uint32_t kind, apr_time_t expires,
                         const void *value, size_t len, unsigned char *buf);
int mcp_remote_decode(const unsigned char key[MCP_REMOTE_KEY_LEN], const unsigned char *buf, size_t n, apr_time_t now,
                      apr_pool_t *p, mcp_remote_entry_t *out);

#endif
