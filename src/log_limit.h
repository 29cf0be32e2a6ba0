/* SPDX-License-Identifier: Apache-2.0 */
/* A per-process rate limit for refusal log lines, and the per-reason
 * counts behind it. One line per rejected token lets any client write the
 * error log as fast as it can send requests; here the first refusal of
 * each reason in an interval is logged with its detail, the rest are only
 * counted, and the count is reported in one summary line once the
 * interval is over (at the next refusal of any reason, or at child exit:
 * there is no timer). The table is what metrics can expose later: totals
 * per reason since the process started. Thread-safe; no httpd types. */
#ifndef MCP_LOG_LIMIT_H
#define MCP_LOG_LIMIT_H

#include <apr_time.h>
#include <pthread.h>

#define MCP_LOG_LIMIT_KINDS 64  /* distinct reasons; the last slot takes every further one */
#define MCP_LOG_LIMIT_REASON 64 /* bytes kept of a reason, with its NUL */
#define MCP_LOG_LIMIT_OTHER "(other reasons)"

typedef struct {
    char reason[MCP_LOG_LIMIT_REASON];
    int level;               /* level of its lines (MCP_LOG_*), as first seen */
    apr_uint64_t total;      /* refusals of this reason, logged or not */
    apr_uint64_t suppressed; /* of them, not logged */
    apr_time_t window_start; /* the current interval began with a logged line */
    apr_uint64_t pending;    /* suppressed since window_start, not yet reported */
} mcp_log_kind_t;

typedef struct {
    pthread_mutex_t lock;
    apr_interval_time_t interval;
    int n;
    mcp_log_kind_t kinds[MCP_LOG_LIMIT_KINDS];
} mcp_log_limit_t;

/* A summary line due: count refusals of reason were not logged in the
 * span that just ended. */
typedef struct {
    char reason[MCP_LOG_LIMIT_REASON];
    int level;
    apr_uint64_t count;
    apr_interval_time_t span;
} mcp_log_summary_t;

/* The interval of the process-wide table. */
#define MCP_LOG_LIMIT_INTERVAL apr_time_from_sec(1)

/* The table of this process (statically initialised, never freed). */
mcp_log_limit_t *mcp_log_limit_process(void);

/* An empty table with its own interval (unit tests). */
void mcp_log_limit_init(mcp_log_limit_t *t, apr_interval_time_t interval);

/* Counts one refusal of reason at level; 1 when its line is to be logged
 * now, 0 when it is only counted. Lines less severe than MCP_LOG_WARNING
 * are never held back (the operator asked for them). due[0..*n_due) gets
 * the summaries of every reason whose interval ended with suppressed
 * refusals (at most max_due; the rest stay due for a later call): log
 * them before the line itself. */
int mcp_log_limit_admit(mcp_log_limit_t *t, const char *reason, int level, apr_time_t now, mcp_log_summary_t *due,
                        int max_due, int *n_due);

/* Every pending count, interval over or not (child exit). Returns how many
 * summaries were written to due. */
int mcp_log_limit_flush(mcp_log_limit_t *t, apr_time_t now, mcp_log_summary_t *due, int max_due);

/* A consistent copy of the per-reason counts; returns how many. */
int mcp_log_limit_snapshot(mcp_log_limit_t *t, mcp_log_kind_t *out, int max);

#endif
