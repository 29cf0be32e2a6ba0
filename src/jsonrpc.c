#include "jsonrpc.h"

#include <apr_strings.h>
#include <jansson.h>
#include <string.h>
#include <strings.h>

#include "json_util.h"

/* Every member of obj whose key equals name case-insensitively. */
static void members_named(json_t *obj, const char *name, json_t **out, int max, int *n)
{
    const char *key;
    json_t *v;
    *n = 0;
    if (!json_is_object(obj))
        return;
    json_object_foreach(obj, key, v)
    {
        if (strcasecmp(key, name) == 0 && *n < max)
            out[(*n)++] = v;
    }
}

static void tool_names_of_message(apr_pool_t *p, json_t *msg, apr_array_header_t *names)
{
    json_t *methods[4], *params[4], *tool[4];
    int nm, np, nt, i, j, k, is_call = 0;

    members_named(msg, "method", methods, 4, &nm);
    for (i = 0; i < nm; i++)
        if (json_is_string(methods[i]) && strcasecmp(json_string_value(methods[i]), "tools/call") == 0)
            is_call = 1;
    if (!is_call)
        return;
    members_named(msg, "params", params, 4, &np);
    for (j = 0; j < np; j++) {
        members_named(params[j], "name", tool, 4, &nt);
        for (k = 0; k < nt; k++)
            if (json_is_string(tool[k]))
                APR_ARRAY_PUSH(names, const char *) = apr_pstrdup(p, json_string_value(tool[k]));
    }
}

/* Case-insensitive substring search in a byte range. */
static int contains_ci(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle), i;
    if (n == 0 || n > len)
        return 0;
    for (i = 0; i + n <= len; i++)
        if (strncasecmp(hay + i, needle, n) == 0)
            return 1;
    return 0;
}

mcp_rpc_shape mcp_jsonrpc_tool_calls(apr_pool_t *p, const char *body, size_t len, const apr_array_header_t *known,
                                     apr_array_header_t *names)
{
    json_error_t err;
    json_t *doc = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &err);
    size_t i;
    int j;

    if (!doc) {
        json_t *loose = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        if (loose) {
            json_decref(loose);
            return MCP_RPC_DUPLICATES;
        }
        /* Not JSON to us, maybe JSON to a more lenient backend (NaN, huge
         * numbers, broken UTF-8): it can only call a tool whose name its
         * bytes spell, or hide one behind \u escapes. */
        for (j = 0; known && j < known->nelts; j++) {
            const char *name = APR_ARRAY_IDX(known, j, const char *);
            if (contains_ci(body, len, "\\u") || contains_ci(body, len, name))
                APR_ARRAY_PUSH(names, const char *) = name;
        }
        return MCP_RPC_OPAQUE;
    }
    mcp_json_own(p, doc);
    if (json_is_array(doc)) {
        json_t *msg;
        json_array_foreach(doc, i, msg)
        {
            tool_names_of_message(p, msg, names);
        }
    }
    else {
        tool_names_of_message(p, doc, names);
    }
    return MCP_RPC_PARSED;
}
