/* SPDX-License-Identifier: Apache-2.0 */
#include "json_util.h"

#include <apr_strings.h>
#include <stdlib.h>

static apr_status_t json_cleanup(void *data)
{
    json_decref((json_t *)data);
    return APR_SUCCESS;
}

json_t *mcp_json_own(apr_pool_t *p, json_t *j)
{
    if (j)
        apr_pool_cleanup_register(p, j, json_cleanup, apr_pool_cleanup_null);
    return j;
}

json_t *mcp_json_parse(apr_pool_t *p, const char *buf, size_t len)
{
    json_error_t err;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    return mcp_json_own(p, j);
}

char *mcp_json_compact(apr_pool_t *p, const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    char *copy;
    if (!s)
        return NULL;
    copy = apr_pstrdup(p, s);
    free(s);
    return copy;
}

const char *mcp_json_str(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}
