/* SPDX-License-Identifier: Apache-2.0 */
#include "propagate.h"

#include <apr_lib.h>
#include <apr_strings.h>
#include <string.h>

#include "json_util.h"

const char *mcp_claim_text(apr_pool_t *p, const json_t *value, int *unsafe)
{
    const char *text, *c;

    *unsafe = 0;
    if (!value || json_is_null(value))
        return NULL;
    text = json_is_string(value) ? json_string_value(value) : mcp_json_compact(p, value);
    if (!text)
        return NULL;
    for (c = text; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            *unsafe = 1;
            return NULL;
        }
    return text;
}

const char *mcp_env_name(apr_pool_t *p, const char *name)
{
    char *out = apr_pstrdup(p, name), *c;
    for (c = out; *c; c++)
        *c = *c == '-' ? '_' : (char)apr_toupper(*c);
    return out;
}

static int same_header(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a == '_' ? '-' : (char)apr_tolower(*a), y = *b == '_' ? '-' : (char)apr_tolower(*b);
        if (x != y)
            return 0;
    }
    return *a == *b;
}

void mcp_scrub_headers(apr_pool_t *p, apr_table_t *headers, const char *const *names, int n)
{
    const apr_array_header_t *arr = apr_table_elts(headers);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_array_header_t *doomed = apr_array_make(p, 4, sizeof(const char *));
    int i, j;

    for (i = 0; i < arr->nelts; i++)
        for (j = 0; j < n; j++)
            if (e[i].key && same_header(e[i].key, names[j])) {
                APR_ARRAY_PUSH(doomed, const char *) = apr_pstrdup(p, e[i].key);
                break;
            }
    for (i = 0; i < doomed->nelts; i++)
        apr_table_unset(headers, APR_ARRAY_IDX(doomed, i, const char *));
}
