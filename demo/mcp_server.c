/* SPDX-License-Identifier: Apache-2.0 */
/* The demo's MCP server: a CGI program speaking MCP's JSON-RPC over the
 * streamable HTTP transport (plain JSON answers, no SSE), with three tools.
 * `whoami` reports the identity mod_mcp_auth handed over. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void respond(int status, const char *reason, json_t *body)
{
    printf("Status: %d %s\r\n", status, reason);
    if (!body) {
        printf("\r\n");
        return;
    }
    printf("Content-Type: application/json\r\n\r\n");
    json_dumpf(body, stdout, JSON_COMPACT);
    printf("\n");
    json_decref(body);
}

static json_t *env_string(const char *name)
{
    const char *v = getenv(name);
    return json_string(v ? v : "");
}

static json_t *text_result(json_t *payload)
{
    char *text = json_dumps(payload, JSON_COMPACT);
    json_t *r = json_pack("{s:[{s:s,s:s}]}", "content", "type", "text", "text", text ? text : "");
    free(text);
    json_decref(payload);
    return r;
}

static json_t *tool(const char *name, const char *description)
{
    return json_pack("{s:s,s:s,s:{s:s,s:{}}}", "name", name, "description", description, "inputSchema", "type",
                     "object", "properties");
}

static json_t *call_tool(const char *name)
{
    if (name && strcmp(name, "whoami") == 0) {
        json_t *claims = json_loads(getenv("MCP_AUTH_CLAIMS") ? getenv("MCP_AUTH_CLAIMS") : "{}", 0, NULL);
        return text_result(json_pack("{s:o,s:o,s:o,s:o,s:o}", "remote_user", env_string("REMOTE_USER"), "subject",
                                     env_string("MCP_AUTH_SUB"), "issuer", env_string("MCP_AUTH_ISS"), "scope",
                                     env_string("MCP_AUTH_SCOPE"), "claims", claims ? claims : json_object()));
    }
    if (name && strcmp(name, "read_notes") == 0)
        return text_result(json_pack("{s:[s,s]}", "notes", "buy milk", "ship mod_mcp_auth"));
    if (name && strcmp(name, "delete_notes") == 0)
        return text_result(json_pack("{s:s}", "deleted", "all notes"));
    return NULL;
}

/* One JSON-RPC message: the response, or NULL for a notification. */
static json_t *handle(json_t *msg)
{
    const char *method = json_string_value(json_object_get(msg, "method"));
    json_t *id = json_object_get(msg, "id"), *result = NULL;

    if (!id)
        return NULL;
    if (method && strcmp(method, "initialize") == 0) {
        json_t *params = json_object_get(msg, "params");
        const char *version = json_string_value(json_object_get(params, "protocolVersion"));
        result = json_pack("{s:s,s:{s:{}},s:{s:s,s:s}}", "protocolVersion", version ? version : "2025-06-18",
                           "capabilities", "tools", "serverInfo", "name", "mod_mcp_auth demo", "version", "1.0");
    }
    else if (method && strcmp(method, "ping") == 0) {
        result = json_object();
    }
    else if (method && strcmp(method, "tools/list") == 0) {
        result =
            json_pack("{s:[o,o,o]}", "tools", tool("whoami", "Who does httpd say I am?"),
                      tool("read_notes", "Read the notes"), tool("delete_notes", "Delete all notes (notes:delete)"));
    }
    else if (method && strcmp(method, "tools/call") == 0) {
        result = call_tool(json_string_value(json_object_get(json_object_get(msg, "params"), "name")));
        if (!result)
            return json_pack("{s:s,s:O,s:{s:i,s:s}}", "jsonrpc", "2.0", "id", id, "error", "code", -32602, "message",
                             "Unknown tool");
    }
    if (!result)
        return json_pack("{s:s,s:O,s:{s:i,s:s}}", "jsonrpc", "2.0", "id", id, "error", "code", -32601, "message",
                         "Method not found");
    return json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id, "result", result);
}

int main(void)
{
    const char *method = getenv("REQUEST_METHOD");
    json_error_t err;
    json_t *req, *out;

    if (!method || strcmp(method, "POST") != 0) {
        /* No server-initiated SSE stream in this demo. */
        printf("Allow: POST\r\n");
        respond(405, "Method Not Allowed", NULL);
        return 0;
    }
    req = json_loadf(stdin, JSON_DISABLE_EOF_CHECK, &err);
    if (!req) {
        respond(400, "Bad Request",
                json_pack("{s:s,s:n,s:{s:i,s:s}}", "jsonrpc", "2.0", "id", "error", "code", -32700, "message",
                          "Parse error"));
        return 0;
    }
    if (json_is_array(req)) {
        size_t i;
        json_t *msg;
        out = json_array();
        json_array_foreach(req, i, msg)
        {
            json_t *r = handle(msg);
            if (r)
                json_array_append_new(out, r);
        }
        if (json_array_size(out) == 0) {
            json_decref(out);
            out = NULL;
        }
    }
    else {
        out = handle(req);
    }
    json_decref(req);
    if (out)
        respond(200, "OK", out);
    else
        respond(202, "Accepted", NULL);
    return 0;
}
