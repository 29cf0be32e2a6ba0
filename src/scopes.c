/* SPDX-License-Identifier: Apache-2.0 */
#include "scopes.h"

#include <apr_strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"

json_t *mcp_claim_path(const json_t *claims, const char *path)
{
    const json_t *cur = claims;
    const char *seg;

    if (!claims || !path)
        return NULL;
    if (strcmp(path, "$") == 0)
        return (json_t *)claims;
    if (strncmp(path, "$.", 2) == 0)
        path += 2;
    seg = path;
    while (*seg) {
        const char *dot = strchr(seg, '.');
        size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
        char name[256];
        if (len == 0 || len >= sizeof(name) || !json_is_object(cur))
            return NULL;
        memcpy(name, seg, len);
        name[len] = '\0';
        cur = json_object_get(cur, name);
        if (!cur)
            return NULL;
        seg += len + (dot ? 1 : 0);
        if (dot && !*seg)
            return NULL; /* trailing dot */
    }
    return (json_t *)cur;
}

apr_array_header_t *mcp_scope_split(apr_pool_t *p, const char *s)
{
    apr_array_header_t *set = apr_array_make(p, 8, sizeof(const char *));
    char *c, *tok;
    if (!s)
        return set;
    /* What apr_strtok(" \t") yields, without its strchr per character:
     * this runs for every request (the verdict's scope string). */
    for (c = apr_pstrdup(p, s); *c;) {
        while (*c == ' ' || *c == '\t')
            c++;
        if (!*c)
            break;
        for (tok = c; *c && *c != ' ' && *c != '\t'; c++)
            ;
        if (*c)
            *c++ = '\0';
        mcp_scope_add(set, tok);
    }
    return set;
}

int mcp_scope_has(const apr_array_header_t *set, const char *scope)
{
    int i;
    for (i = 0; set && i < set->nelts; i++)
        if (strcmp(APR_ARRAY_IDX(set, i, const char *), scope) == 0)
            return 1;
    return 0;
}

void mcp_scope_add(apr_array_header_t *set, const char *scope)
{
    if (*scope && !mcp_scope_has(set, scope))
        APR_ARRAY_PUSH(set, const char *) = scope;
}

static void add_scopes_of(apr_pool_t *p, apr_array_header_t *set, const json_t *v)
{
    size_t i;
    json_t *item;
    if (json_is_string(v)) {
        const apr_array_header_t *parts = mcp_scope_split(p, json_string_value(v));
        int j;
        for (j = 0; j < parts->nelts; j++)
            mcp_scope_add(set, APR_ARRAY_IDX(parts, j, const char *));
    }
    else if (json_is_array(v)) {
        json_array_foreach(v, i, item)
        {
            if (json_is_string(item))
                add_scopes_of(p, set, item);
        }
    }
}

apr_array_header_t *mcp_token_scopes(apr_pool_t *p, const json_t *claims, const char *claim)
{
    apr_array_header_t *set = apr_array_make(p, 8, sizeof(const char *));
    if (claim) {
        /* MCPAuthScopeClaim names one claim or several (space-separated,
         * as the directive stores its list): the granted set is the union
         * -- Entra's delegated "scp" string with its app-only "roles"
         * array, Auth0's "scope" with its RBAC "permissions". */
        const apr_array_header_t *names = mcp_scope_split(p, claim);
        int i;
        for (i = 0; i < names->nelts; i++)
            add_scopes_of(p, set, mcp_claim_path(claims, APR_ARRAY_IDX(names, i, const char *)));
        return set;
    }
    /* RFC 8693 / RFC 9068 "scope"; Entra and Okta also use "scp". */
    if (json_object_get(claims, "scope"))
        add_scopes_of(p, set, json_object_get(claims, "scope"));
    else
        add_scopes_of(p, set, json_object_get(claims, "scp"));
    return set;
}

const char *mcp_scope_requestable(apr_pool_t *p, const char *scope, const char *prefix)
{
    if (!prefix || !*prefix || mcp_scope_short(scope, prefix))
        return scope;
    return apr_pstrcat(p, prefix, scope, NULL);
}

const char *mcp_scope_short(const char *scope, const char *prefix)
{
    size_t n = prefix ? strlen(prefix) : 0;
    if (!n || strncmp(scope, prefix, n) != 0 || !scope[n])
        return NULL;
    return scope + n;
}

const char *mcp_scope_join(apr_pool_t *p, const apr_array_header_t *set)
{
    if (!set || set->nelts == 0)
        return NULL;
    return apr_array_pstrcat(p, set, ' ');
}

static int scalar_matches(const json_t *v, const char *wanted)
{
    char buf[64];
    if (json_is_string(v))
        return strcmp(json_string_value(v), wanted) == 0;
    if (json_is_true(v))
        return strcmp(wanted, "true") == 0;
    if (json_is_false(v))
        return strcmp(wanted, "false") == 0;
    if (json_is_integer(v)) {
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return strcmp(buf, wanted) == 0;
    }
    if (json_is_real(v)) {
        char *end;
        double w = strtod(wanted, &end);
        return *wanted && !*end && w == json_real_value(v);
    }
    return 0;
}

int mcp_claim_matches(const json_t *value, const char *const *wanted, int n)
{
    size_t i;
    int j;
    json_t *item;
    if (!value)
        return 0;
    if (json_is_array(value)) {
        json_array_foreach(value, i, item)
        {
            for (j = 0; j < n; j++)
                if (scalar_matches(item, wanted[j]))
                    return 1;
        }
        return 0;
    }
    for (j = 0; j < n; j++)
        if (scalar_matches(value, wanted[j]))
            return 1;
    return 0;
}
