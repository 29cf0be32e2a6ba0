/* SPDX-License-Identifier: Apache-2.0 */
#include <stddef.h> /* before APR: APR_OFFSETOF then uses offsetof */

#include "toolscope.h"

#include <apr_buckets.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <string.h>
#include <strings.h>

#include "scopes.h"
#include "jsonrpc.h"
#include "identity.h"
#include "refusal.h"
#include "request.h"
#include "rpc_headers.h"

APLOG_USE_MODULE(mcp_auth);

/* Set by register_hooks (toolscope.h). */
ap_filter_rec_t *mcp_toolscope_kept_body_handle;

/* A body read before the handler, once per request and its internal
 * redirects (they share the connection, which has no second copy). One
 * flat copy in the request pool is all that is kept: the parser reads it
 * and the replay hands out pool buckets that point into it. */
typedef struct {
    char *flat;
    apr_size_t len;
    int method_number; /* a redirect to an ErrorDocument is a GET: no body */
} kept_body_t;

/* One replay: each request of the chain reads the whole body from 0. */
typedef struct {
    const kept_body_t *kb;
    apr_off_t offset;
    int eos_sent;
} replay_t;

/* [offset, offset + n) of the kept body into b, without copying: a pool
 * bucket (the flat copy lives in r->pool; should a bucket outlive it, APR
 * turns it into a heap copy when the pool goes). */
static apr_status_t copy_range(request_rec *r, const kept_body_t *kb, apr_off_t offset, apr_off_t n,
                               apr_bucket_brigade *b)
{
    APR_BRIGADE_INSERT_TAIL(
        b, apr_bucket_pool_create(kb->flat + offset, (apr_size_t)n, r->pool, r->connection->bucket_alloc));
    return APR_SUCCESS;
}

/* Replays the body we read, then whatever the filters below still give
 * (EOS). Modelled on mod_request's KEPT_BODY: the backend reads exactly
 * the bytes the client sent. */
apr_status_t mcp_toolscope_kept_body_filter(ap_filter_t *f, apr_bucket_brigade *b, ap_input_mode_t mode,
                                            apr_read_type_e block, apr_off_t readbytes)
{
    replay_t *ctx = f->ctx;
    apr_off_t left;
    apr_status_t rv;

    if (!ctx || ctx->eos_sent || (mode != AP_MODE_READBYTES && mode != AP_MODE_GETLINE && mode != AP_MODE_SPECULATIVE))
        return ap_get_brigade(f->next, b, mode, block, readbytes);
    left = (apr_off_t)ctx->kb->len - ctx->offset;
    if (mode == AP_MODE_GETLINE)
        readbytes = HUGE_STRING_LEN; /* a line reader gets a chunk; lines are its business */
    if (readbytes > left)
        readbytes = left;
    if (readbytes > 0 && (rv = copy_range(f->r, ctx->kb, ctx->offset, readbytes, b)) != APR_SUCCESS)
        return rv;
    if (mode == AP_MODE_SPECULATIVE) {
        if (readbytes == 0)
            APR_BRIGADE_INSERT_TAIL(b, apr_bucket_eos_create(f->c->bucket_alloc));
        return APR_SUCCESS;
    }
    ctx->offset += readbytes;
    if (ctx->offset >= (apr_off_t)ctx->kb->len) {
        APR_BRIGADE_INSERT_TAIL(b, apr_bucket_eos_create(f->c->bucket_alloc));
        ctx->eos_sent = 1;
    }
    return APR_SUCCESS;
}

static void add_replay(request_rec *r, const kept_body_t *kb)
{
    replay_t *ctx = apr_pcalloc(r->pool, sizeof(*ctx));
    ctx->kb = kb;
    ap_add_input_filter_handle(mcp_toolscope_kept_body_handle, ctx, r, r->connection);
}

/* The body this request, or the one it was internally redirected from,
 * already read. Subrequests (r->main) start no chain of their own here. */
static const kept_body_t *chain_body(request_rec *r)
{
    for (; r; r = r->prev) {
        mcp_request_t *st = mcp_request_peek(r);
        if (st && st->kept_body)
            return st->kept_body;
    }
    return NULL;
}

void mcp_toolscope_insert_filter(request_rec *r)
{
    const kept_body_t *kb;
    ap_filter_t *f;

    /* An internal redirect (RewriteRule in a directory, a handler's own
     * redirect) starts with bare protocol filters: give it the body. */
    if (!r->prev || !(kb = chain_body(r)) || r->method_number != kb->method_number)
        return;
    for (f = r->input_filters; f; f = f->next)
        if (f->frec == mcp_toolscope_kept_body_handle)
            return;
    add_replay(r, kb);
}

/* The request's Content-Length when it is one within the limit, else -1
 * (chunked, or h2 without one). */
static apr_off_t declared_length(request_rec *r)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_off_t n;
    char *end;

    if (!cl || apr_strtoff(&n, cl, &end, 10) != APR_SUCCESS || *end || n < 0 || n > MCP_TOOL_BODY_LIMIT)
        return -1;
    return n;
}

/* Copies what bb holds to buf at *len (room for the declared length) and
 * frees the buckets at once: the body is held once. */
static int take_declared(apr_bucket_brigade *bb, char *buf, apr_size_t cap, apr_size_t *len, int *eos)
{
    apr_bucket *e;

    while ((e = APR_BRIGADE_FIRST(bb)) != APR_BRIGADE_SENTINEL(bb)) {
        const char *data;
        apr_size_t n;

        if (APR_BUCKET_IS_EOS(e))
            *eos = 1;
        if (apr_bucket_read(e, &data, &n, APR_BLOCK_READ) != APR_SUCCESS)
            return HTTP_BAD_REQUEST;
        if (*len + n > cap) /* more than Content-Length: not ours to judge, but never past buf */
            return *len + n > MCP_TOOL_BODY_LIMIT ? HTTP_REQUEST_ENTITY_TOO_LARGE : HTTP_BAD_REQUEST;
        if (n)
            memcpy(buf + *len, data, n);
        *len += n;
        apr_bucket_delete(e);
    }
    return OK;
}

/* Moves what bb holds to the end of hold (set aside: they outlive this
 * read), counting its length against the limit. Without a declared length
 * the buckets are kept as they came (no copy) until the end is known. */
static int take_chunked(request_rec *r, apr_bucket_brigade *bb, apr_bucket_brigade *hold, apr_size_t *len, int *eos)
{
    apr_bucket *e;

    while ((e = APR_BRIGADE_FIRST(bb)) != APR_BRIGADE_SENTINEL(bb)) {
        const char *data;
        apr_size_t n;

        if (APR_BUCKET_IS_EOS(e))
            *eos = 1;
        if (apr_bucket_read(e, &data, &n, APR_BLOCK_READ) != APR_SUCCESS)
            return HTTP_BAD_REQUEST;
        if (*len + n > MCP_TOOL_BODY_LIMIT)
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        *len += n;
        if (apr_bucket_setaside(e, r->pool) != APR_SUCCESS)
            return HTTP_INTERNAL_SERVER_ERROR;
        APR_BUCKET_REMOVE(e);
        /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): read_body passes hold whenever it has no buf */
        APR_BRIGADE_INSERT_TAIL(hold, e);
    }
    return OK;
}

/* Reads the whole body (up to the limit) into one flat buffer kept for
 * replay, once per chain of internal redirects: a redirected request gets
 * what the first one read, never a second (empty) read of the connection. */
static int read_body(request_rec *r, char **flat, apr_size_t *len)
{
    const kept_body_t *had = chain_body(r);
    apr_table_t *authorized = r->headers_in;
    apr_bucket_brigade *bb, *hold = NULL;
    kept_body_t *kb;
    apr_off_t declared;
    char *buf = NULL;
    int eos = 0, rc = OK;

    if (had) {
        *flat = had->flat;
        *len = had->len;
        return OK;
    }
    *len = 0;
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    if ((declared = declared_length(r)) >= 0)
        buf = apr_palloc(r->pool, (apr_size_t)declared + 1);
    else
        hold = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    while (!eos && rc == OK) {
        apr_status_t rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES, APR_BLOCK_READ, HUGE_STRING_LEN);
        if (rv != APR_SUCCESS)
            rc = ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
        else if (buf)
            rc = take_declared(bb, buf, (apr_size_t)declared, len, &eos);
        else
            rc = take_chunked(r, bb, hold, len, &eos);
    }
    apr_brigade_destroy(bb);
    if (hold && rc == OK) {
        apr_size_t n = *len;
        buf = apr_palloc(r->pool, n + 1);
        if (apr_brigade_flatten(hold, buf, &n) != APR_SUCCESS || n != *len)
            rc = HTTP_INTERNAL_SERVER_ERROR;
    }
    if (hold)
        apr_brigade_destroy(hold); /* its buckets go back to the allocator now, not at the request's end */
    if (rc != OK)
        return rc;
    *flat = buf;
    /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): buf is set, or hold was flattened into it */
    (*flat)[*len] = '\0';
    /* Chunked trailers arrived with the last chunk: they must not change
     * the identity or the credentials the backend gets. */
    mcp_identity_after_body(r, ap_get_module_config(r->per_dir_config, &mcp_auth_module), authorized);
    kb = apr_palloc(r->pool, sizeof(*kb));
    kb->flat = *flat;
    kb->len = *len;
    kb->method_number = r->method_number;
    mcp_request(r)->kept_body = kb;
    add_replay(r, kb);
    return OK;
}

/* The MCPAuthToolScope lines by folded tool name (mcp_jsonrpc_name_key):
 * each call is one lookup, not a comparison with every line, so a batch
 * costs calls x O(1) whatever the number of lines. */
static apr_hash_t *tool_index(apr_pool_t *p, const mcp_dir_conf_t *conf)
{
    apr_hash_t *index = apr_hash_make(p);
    int j;
    for (j = 0; j < conf->tool_scopes->nelts; j++) {
        const mcp_tool_scope_t *ts = &APR_ARRAY_IDX(conf->tool_scopes, j, mcp_tool_scope_t);
        apr_size_t klen;
        const char *key = mcp_jsonrpc_name_key(p, ts->tool, &klen);
        apr_array_header_t *lines = apr_hash_get(index, key, (apr_ssize_t)klen);
        if (!lines) {
            lines = apr_array_make(p, 1, sizeof(const mcp_tool_scope_t *));
            apr_hash_set(index, key, (apr_ssize_t)klen, lines);
        }
        APR_ARRAY_PUSH(lines, const mcp_tool_scope_t *) = ts;
    }
    return index;
}

/* Scopes the named tools need, minus what the token has (NULL: none). */
static apr_array_header_t *tool_requirements(apr_pool_t *p, const mcp_dir_conf_t *conf,
                                             const apr_array_header_t *called, const apr_array_header_t *granted)
{
    apr_array_header_t *missing = NULL;
    apr_hash_t *index;
    int i, j, k;

    if (!conf->tool_scopes || called->nelts == 0)
        return NULL;
    index = tool_index(p, conf);
    for (i = 0; i < called->nelts; i++) {
        const char *name = APR_ARRAY_IDX(called, i, const char *);
        apr_size_t klen;
        /* Case-insensitive (and ſ/K folded): a backend that matches tool
         * names loosely cannot be reached under a spelling we did not check. */
        const char *key = mcp_jsonrpc_name_key(p, name, &klen);
        const apr_array_header_t *lines = apr_hash_get(index, key, (apr_ssize_t)klen);
        for (j = 0; lines && j < lines->nelts; j++) {
            const mcp_tool_scope_t *ts = APR_ARRAY_IDX(lines, j, const mcp_tool_scope_t *);
            for (k = 0; k < ts->scopes->nelts; k++) {
                const char *s = APR_ARRAY_IDX(ts->scopes, k, const char *);
                if (mcp_scope_has(granted, s))
                    continue;
                if (!missing)
                    missing = apr_array_make(p, 2, sizeof(const char *));
                mcp_scope_add(missing, s);
            }
        }
    }
    return missing;
}

/* What reading and parsing the body found, once per request. */
typedef struct {
    int status;         /* OK, or the refusal status of reading it (413, 415, 400...) */
    mcp_rpc_body_t rpc; /* the parse (rpc.code 0: valid) when status is OK */
} inspection_t;

/* MCP 2026-07-28 clients mirror the method and name into headers. */
static int mirrored_headers(request_rec *r)
{
    return apr_table_get(r->headers_in, "Mcp-Method") || apr_table_get(r->headers_in, "Mcp-Name");
}

/* Reads and parses the body, or returns what an earlier call found. */
static const inspection_t *inspect(request_rec *r, mcp_request_t *st)
{
    const char *encoding = apr_table_get(r->headers_in, "Content-Encoding");
    inspection_t *in;
    char *body = NULL;
    apr_size_t len = 0;

    if (st->inspection)
        return st->inspection;
    in = apr_pcalloc(r->pool, sizeof(*in));
    st->inspection = in;
    /* Every POST is read, whatever its Content-Type: a backend that does not
     * check the type would otherwise run a tools/call we never saw. */
    if (encoding && strcasecmp(encoding, "identity") != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "Content-Encoding %s: an encoded body cannot be checked for tool scopes",
                      mcp_printable(r->pool, encoding, 64));
        in->status = HTTP_UNSUPPORTED_MEDIA_TYPE;
        return in;
    }
    in->status = read_body(r, &body, &len);
    if (in->status == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "Request body over %d bytes: tool scopes cannot be checked",
                      MCP_TOOL_BODY_LIMIT);
        r->connection->keepalive = AP_CONN_CLOSE;
    }
    if (in->status != OK)
        return in;
    /* Anything two parsers could read differently never reaches the backend. */
    if (mcp_jsonrpc_parse(r->pool, body, len, &in->rpc) == MCP_RPC_TOO_MANY) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "JSON-RPC body refused (413): %s", in->rpc.cause);
        in->status = HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    return in;
}

void mcp_toolscope_inspect(request_rec *r, const mcp_dir_conf_t *conf)
{
    mcp_request_t *st = mcp_request_peek(r);
    const inspection_t *in;

    if (r->main || !mcp_request_verified(st) || r->method_number != M_POST ||
        !(conf->tool_scopes || mirrored_headers(r)))
        return;
    in = inspect(r, st);
    if (in->status == OK && in->rpc.code == 0)
        st->tool_missing = tool_requirements(r->pool, conf, in->rpc.tool_calls, st->granted);
}

const apr_array_header_t *mcp_toolscope_called(const mcp_request_t *st)
{
    const inspection_t *in = st ? st->inspection : NULL;
    return in && in->status == OK && in->rpc.code == 0 ? in->rpc.tool_calls : NULL;
}

int mcp_toolscope_check(request_rec *r, const mcp_dir_conf_t *conf)
{
    mcp_request_t *st = mcp_request_peek(r);
    const inspection_t *in;
    const char *cause;

    if (!mcp_request_verified(st))
        return DECLINED;
    if (r->method_number != M_POST) {
        /* No body, so nothing for the headers to mirror: a router behind us
         * must not act on a method or name that nothing executes here. */
        if (mirrored_headers(r))
            return mcp_refuse_jsonrpc(r, MCP_RPC_HEADER_MISMATCH, NULL,
                                      "Mcp-Method/Mcp-Name on a request without a JSON-RPC body");
        return DECLINED;
    }
    if (!conf->tool_scopes && !mirrored_headers(r))
        return DECLINED;
    in = inspect(r, st);
    if (in->status != OK)
        return in->status;
    if (in->rpc.code != 0)
        return mcp_refuse_jsonrpc(r, in->rpc.code, in->rpc.id, in->rpc.cause);
    cause = mcp_rpc_headers_mismatch(r->pool, apr_table_get(r->headers_in, "Mcp-Method"),
                                     apr_table_get(r->headers_in, "Mcp-Name"), &in->rpc);
    if (cause)
        return mcp_refuse_jsonrpc(r, MCP_RPC_HEADER_MISMATCH, in->rpc.id, cause);
    /* Recomputed for this configuration (a FallbackResource merge may have
     * changed it since authentication). */
    st->tool_missing = tool_requirements(r->pool, conf, in->rpc.tool_calls, st->granted);
    if (!st->tool_missing)
        return DECLINED;
    return mcp_refuse_tool_scope(r, conf, st);
}
