/* MCP JSON-RPC body inspection for MCPAuthToolScope. Properties: a body
 * jansson reads strictly is PARSED; a body it reads only with duplicate
 * members allowed is DUPLICATES; anything else is OPAQUE and then lists
 * exactly the configured tools whose names the bytes spell (any case), or
 * all of them when the body holds a \u escape. */
#include "fuzz_common.h"
#include "jsonrpc.h"

#include <jansson.h>
#include <strings.h>

static const char *const KNOWN[] = {"get_weather", "delete_repo", "admin.reset", "Search"};
#define NKNOWN ((int)(sizeof(KNOWN) / sizeof(KNOWN[0])))

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_global_init();
    return 0;
}

static int spells(const uint8_t *data, size_t size, const char *needle)
{
    size_t n = strlen(needle), i;
    for (i = 0; n && i + n <= size; i++)
        if (strncasecmp((const char *)data + i, needle, n) == 0)
            return 1;
    return 0;
}

static int listed(const apr_array_header_t *names, const char *name)
{
    int i;
    for (i = 0; i < names->nelts; i++)
        if (strcmp(APR_ARRAY_IDX(names, i, const char *), name) == 0)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool();
    apr_array_header_t *known = apr_array_make(p, NKNOWN, sizeof(const char *));
    apr_array_header_t *names = apr_array_make(p, 4, sizeof(const char *));
    json_error_t err;
    json_t *strict, *loose;
    mcp_rpc_shape shape;
    int i;

    for (i = 0; i < NKNOWN; i++)
        APR_ARRAY_PUSH(known, const char *) = KNOWN[i];
    shape = mcp_jsonrpc_tool_calls(p, (const char *)data, size, known, names);

    strict = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &err);
    loose = strict ? NULL : json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    switch (shape) {
    case MCP_RPC_PARSED:
        FZ_ASSERT(strict != NULL);
        for (i = 0; i < names->nelts; i++)
            FZ_ASSERT(APR_ARRAY_IDX(names, i, const char *) != NULL);
        break;
    case MCP_RPC_DUPLICATES:
        FZ_ASSERT(!strict && loose);
        break;
    case MCP_RPC_OPAQUE:
        FZ_ASSERT(!strict && !loose);
        for (i = 0; i < NKNOWN; i++)
            FZ_ASSERT(listed(names, KNOWN[i]) == (spells(data, size, "\\u") || spells(data, size, KNOWN[i])));
        FZ_ASSERT(names->nelts <= NKNOWN);
        break;
    default:
        FZ_ASSERT(!"unknown shape");
    }
    json_decref(strict);
    json_decref(loose);
    apr_pool_destroy(p);
    return 0;
}
