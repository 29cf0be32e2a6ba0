#include <stddef.h> /* before APR: APR_OFFSETOF then uses offsetof */

#include "mcp_toolscope.h"

#include <apr_buckets.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <string.h>
#include <strings.h>

#include "claims.h"
#include "jsonrpc.h"
#include "mcp_request.h"

APLOG_USE_MODULE(mcp_auth);

#define KEPT_BODY_FILTER "MCP_AUTH_KEPT_BODY"

/* Replays the body we read, then whatever the filters below still give
 * (EOS). Modelled on mod_request's KEPT_BODY: the backend reads exactly
 * the bytes the client sent. */
static apr_status_t kept_body_filter(ap_filter_t *f, apr_bucket_brigade *b, ap_input_mode_t mode,
                                     apr_read_type_e block, apr_off_t readbytes)
{
    apr_bucket_brigade *kept = f->ctx;
    apr_bucket *e, *after;
    apr_status_t rv;

    if (!kept || APR_BRIGADE_EMPTY(kept))
        return ap_get_brigade(f->next, b, mode, block, readbytes);
    if (mode == AP_MODE_SPECULATIVE) {
        for (e = APR_BRIGADE_FIRST(kept); e != APR_BRIGADE_SENTINEL(kept) && readbytes > 0;
             e = APR_BUCKET_NEXT(e)) {
            apr_bucket *copy;
            if (APR_BUCKET_IS_EOS(e))
                break;
            if ((rv = apr_bucket_copy(e, &copy)) != APR_SUCCESS)
                return rv;
            if ((apr_off_t)copy->length > readbytes)
                apr_bucket_split(copy, (apr_size_t)readbytes);
            readbytes -= (apr_off_t)copy->length;
            APR_BRIGADE_INSERT_TAIL(b, copy);
        }
        return APR_SUCCESS;
    }
    if (mode != AP_MODE_READBYTES && mode != AP_MODE_GETLINE)
        return ap_get_brigade(f->next, b, mode, block, readbytes);
    if (mode == AP_MODE_GETLINE)
        readbytes = HUGE_STRING_LEN; /* a line reader gets a chunk; lines are its business */
    rv = apr_brigade_partition(kept, readbytes, &after);
    if (rv != APR_SUCCESS && rv != APR_INCOMPLETE)
        return rv;
    while ((e = APR_BRIGADE_FIRST(kept)) != after) {
        APR_BUCKET_REMOVE(e);
        APR_BRIGADE_INSERT_TAIL(b, e);
    }
    return APR_SUCCESS;
}

void mcp_toolscope_register(apr_pool_t *p)
{
    (void)p;
    ap_register_input_filter(KEPT_BODY_FILTER, kept_body_filter, NULL, AP_FTYPE_RESOURCE);
}

/* Reads the whole body (up to the limit) into a brigade kept for replay. */
static int read_body(request_rec *r, apr_bucket_brigade **kept, char **flat, apr_size_t *len)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_bucket_brigade *k = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_off_t total = 0;
    int seen_eos = 0;

    while (!seen_eos) {
        apr_bucket *e;
        apr_status_t rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES, APR_BLOCK_READ, HUGE_STRING_LEN);
        if (rv != APR_SUCCESS)
            return ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
        while ((e = APR_BRIGADE_FIRST(bb)) != APR_BRIGADE_SENTINEL(bb)) {
            if (APR_BUCKET_IS_EOS(e))
                seen_eos = 1;
            /* Buckets must outlive this read loop: set them aside. */
            if (apr_bucket_setaside(e, r->pool) != APR_SUCCESS) {
                const char *data;
                apr_size_t n;
                apr_bucket_read(e, &data, &n, APR_BLOCK_READ);
                apr_bucket_setaside(e, r->pool);
            }
            APR_BUCKET_REMOVE(e);
            APR_BRIGADE_INSERT_TAIL(k, e);
            total += e->length == (apr_size_t)-1 ? 0 : (apr_off_t)e->length;
        }
        if (total > MCP_TOOL_BODY_LIMIT)
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    if (apr_brigade_pflatten(k, flat, len, r->pool) != APR_SUCCESS)
        return HTTP_INTERNAL_SERVER_ERROR;
    *kept = k;
    return OK;
}

/* Scopes the named tools need, minus what the token has, into missing. */
static void tool_requirements(const mcp_dir_conf_t *conf, const apr_array_header_t *called,
                              const apr_array_header_t *granted, apr_array_header_t *missing)
{
    int i, j, k;
    for (i = 0; i < called->nelts; i++) {
        const char *name = APR_ARRAY_IDX(called, i, const char *);
        for (j = 0; j < conf->tool_scopes->nelts; j++) {
            const mcp_tool_scope_t *ts = &APR_ARRAY_IDX(conf->tool_scopes, j, mcp_tool_scope_t);
            /* Case-insensitive (and ſ/K folded): a backend that matches tool
             * names loosely cannot be reached under a spelling we did not check. */
            if (!mcp_jsonrpc_name_equal(ts->tool, name))
                continue;
            for (k = 0; k < ts->scopes->nelts; k++) {
                const char *s = APR_ARRAY_IDX(ts->scopes, k, const char *);
                if (!mcp_scope_has(granted, s))
                    mcp_scope_add(missing, s);
            }
        }
    }
}

int mcp_toolscope_check(request_rec *r, const mcp_dir_conf_t *conf)
{
    mcp_request_t *st = mcp_request_peek(r);
    const char *encoding = apr_table_get(r->headers_in, "Content-Encoding");
    apr_bucket_brigade *kept = NULL;
    apr_array_header_t *missing;
    mcp_rpc_body_t rpc;
    mcp_fail_t fail;
    char *body = NULL;
    apr_size_t len = 0;
    int rc;

    if (!conf->tool_scopes || !st || !st->verified || r->method_number != M_POST)
        return DECLINED;
    /* Every POST is read, whatever its Content-Type: a backend that does not
     * check the type would otherwise run a tools/call we never saw. */
    if (encoding && strcasecmp(encoding, "identity") != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "Content-Encoding %s: an encoded body cannot be checked for tool scopes",
                      mcp_printable(r->pool, encoding, 64));
        return HTTP_UNSUPPORTED_MEDIA_TYPE;
    }
    rc = read_body(r, &kept, &body, &len);
    if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "Request body over %d bytes: tool scopes cannot be checked",
                      MCP_TOOL_BODY_LIMIT);
        r->connection->keepalive = AP_CONN_CLOSE;
        return rc;
    }
    if (rc != OK)
        return rc;
    ap_add_input_filter(KEPT_BODY_FILTER, kept, r, r->connection);

    /* Anything two parsers could read differently never reaches the backend. */
    if (mcp_jsonrpc_parse(r->pool, body, len, &rpc) != 0)
        return mcp_respond_jsonrpc(r, rpc.code, rpc.id, rpc.cause);
    /* Only what the tools need: scopes a RequireAny branch asked for but did
     * not need are not owed here. */
    missing = apr_array_make(r->pool, 2, sizeof(const char *));
    tool_requirements(conf, rpc.tool_calls, st->granted, missing);
    if (missing->nelts == 0)
        return DECLINED;
    st->missing = missing;
    mcp_fail(&fail, MCP_FAIL_INSUFFICIENT_SCOPE, "Insufficient scope",
             apr_psprintf(r->pool, "user %s calls a tool that needs %s", mcp_printable(r->pool, r->user, 128),
                          mcp_printable(r->pool, mcp_scope_join(r->pool, st->missing), 256)));
    return mcp_respond(r, conf, &fail);
}
