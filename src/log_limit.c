/* SPDX-License-Identifier: Apache-2.0 */
#include "log_limit.h"

#include <string.h>

#include "fail.h"

static mcp_log_limit_t process_table = {.lock = PTHREAD_MUTEX_INITIALIZER, .interval = MCP_LOG_LIMIT_INTERVAL};

mcp_log_limit_t *mcp_log_limit_process(void)
{
    return &process_table;
}

void mcp_log_limit_init(mcp_log_limit_t *t, apr_interval_time_t interval)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    t->interval = interval;
}

/* The slot of reason, created on first sight; once the table is full every
 * new reason shares the last slot, so the counts stay complete. */
static mcp_log_kind_t *kind_of(mcp_log_limit_t *t, const char *reason, int level)
{
    mcp_log_kind_t *k;
    int i;

    if (!reason)
        reason = "(no reason)";
    for (i = 0; i < t->n; i++)
        if (strncmp(t->kinds[i].reason, reason, MCP_LOG_LIMIT_REASON - 1) == 0)
            return &t->kinds[i];
    if (t->n == MCP_LOG_LIMIT_KINDS) {
        k = &t->kinds[MCP_LOG_LIMIT_KINDS - 1];
        strcpy(k->reason, MCP_LOG_LIMIT_OTHER);
        return k;
    }
    k = &t->kinds[t->n++];
    strncpy(k->reason, reason, MCP_LOG_LIMIT_REASON - 1);
    k->reason[MCP_LOG_LIMIT_REASON - 1] = '\0';
    k->level = level;
    return k;
}

/* Moves k's pending count into a summary. */
static void report(mcp_log_kind_t *k, apr_time_t now, mcp_log_summary_t *s)
{
    memcpy(s->reason, k->reason, sizeof(s->reason));
    s->level = k->level;
    s->count = k->pending;
    s->span = now > k->window_start ? now - k->window_start : 0;
    k->pending = 0;
}

/* Summaries of the reasons whose interval is over (all of them if force). */
static int collect(mcp_log_limit_t *t, apr_time_t now, int force, mcp_log_summary_t *due, int max_due)
{
    int i, n = 0;
    for (i = 0; i < t->n && n < max_due; i++) {
        mcp_log_kind_t *k = &t->kinds[i];
        if (k->pending && (force || now - k->window_start >= t->interval))
            report(k, now, &due[n++]);
    }
    return n;
}

int mcp_log_limit_admit(mcp_log_limit_t *t, const char *reason, int level, apr_time_t now, mcp_log_summary_t *due,
                        int max_due, int *n_due)
{
    mcp_log_kind_t *k;
    int admit = 1;

    pthread_mutex_lock(&t->lock);
    k = kind_of(t, reason, level);
    k->total++;
    *n_due = collect(t, now, 0, due, max_due);
    if (level <= MCP_LOG_WARNING) {
        if (k->window_start && now >= k->window_start && now - k->window_start < t->interval) {
            k->pending++;
            k->suppressed++;
            admit = 0;
        }
        else if (!k->pending) {
            k->window_start = now; /* a new interval, opened by this line */
        }
        else {
            /* The interval is over but its summary did not fit in due: keep
             * counting into it, it is reported with the next call. */
            k->pending++;
            k->suppressed++;
            admit = 0;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return admit;
}

int mcp_log_limit_flush(mcp_log_limit_t *t, apr_time_t now, mcp_log_summary_t *due, int max_due)
{
    int n;
    pthread_mutex_lock(&t->lock);
    n = collect(t, now, 1, due, max_due);
    pthread_mutex_unlock(&t->lock);
    return n;
}

int mcp_log_limit_snapshot(mcp_log_limit_t *t, mcp_log_kind_t *out, int max)
{
    int n;
    pthread_mutex_lock(&t->lock);
    n = t->n < max ? t->n : max;
    memcpy(out, t->kinds, (size_t)n * sizeof(*out));
    pthread_mutex_unlock(&t->lock);
    return n;
}
