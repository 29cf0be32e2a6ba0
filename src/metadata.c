/* SPDX-License-Identifier: Apache-2.0 */
#include "metadata.h"

#include <apr_strings.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

const char *mcp_metadata_document(apr_pool_t *p, const char *resource, const char *const *issuers, int n_issuers,
                                  const char *const *scopes, int n_scopes)
{
    json_t *doc = json_object(), *as = json_array();
    const char *out;
    char *text;
    int i, j;

    json_object_set_new(doc, "resource", json_string(resource));
    for (i = 0; i < n_issuers; i++) {
        for (j = 0; j < i && strcmp(issuers[i], issuers[j]) != 0; j++)
            ;
        if (j == i) /* each authorization server once */
            json_array_append_new(as, json_string(issuers[i]));
    }
    json_object_set_new(doc, "authorization_servers", as);
    if (n_scopes > 0) {
        json_t *sc = json_array();
        for (i = 0; i < n_scopes; i++)
            json_array_append_new(sc, json_string(scopes[i]));
        json_object_set_new(doc, "scopes_supported", sc);
    }
    json_object_set_new(doc, "bearer_methods_supported", json_pack("[s]", "header"));
    text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    out = apr_pstrcat(p, text ? text : "{}", "\n", NULL);
    free(text);
    return out;
}
