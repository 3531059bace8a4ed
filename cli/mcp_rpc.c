/* JSON-RPC 2.0 and the Model Context Protocol methods of `trifle mcp` (mcp_rpc.h, docs/mcp.md).
 *
 * Messages: one JSON object per line (MCP's stdio transport). A line that is not JSON is a parse
 * error (-32700); JSON that is not a request, notification or response (no "jsonrpc":"2.0", an id
 * that is neither a string nor an integer, a batch array: MCP dropped batches) is an invalid
 * request (-32600); an unknown method is -32601; bad params are -32602. Notifications are never
 * answered. Tool failures, including arguments that do not match the tool's schema, are results
 * with `isError: true`, so an agent reads the message and can correct itself. */
#include "mcp_rpc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const mcp_protocol_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05",
                                             NULL};

static void invalid(mcp_message *m, int code, const char *why)
{
    m->kind = MCP_MSG_INVALID;
    m->code = code;
    (void)snprintf(m->message, sizeof(m->message), "%s", why);
}

static int blank(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* An id JSON-RPC allows and MCP keeps: a string or an integer (MCP forbids null). */
static int id_valid(const cJSON *id)
{
    if (cJSON_IsString(id))
        return 1;
    return cJSON_IsNumber(id) && isfinite(id->valuedouble) &&
           id->valuedouble == floor(id->valuedouble) && fabs(id->valuedouble) <= 9007199254740992.0;
}

int mcp_message_read(mcp_message *out, const char *line, size_t len)
{
    const char *end = NULL;
    const cJSON *version, *id, *method;
    int has_result;

    memset(out, 0, sizeof(*out));
    if (blank(line, len)) {
        out->kind = MCP_MSG_EMPTY;
        return 0;
    }
    out->doc = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (out->doc == NULL || !blank(end, len - (size_t)(end - line))) {
        cJSON_Delete(out->doc);
        out->doc = NULL;
        invalid(out, MCP_PARSE_ERROR, "Parse error: the line is not one JSON value");
        return 0;
    }
    if (cJSON_IsArray(out->doc)) {
        invalid(out, MCP_INVALID_REQUEST, "Invalid Request: batches are not supported");
        return 0;
    }
    if (!cJSON_IsObject(out->doc)) {
        invalid(out, MCP_INVALID_REQUEST, "Invalid Request: a message is a JSON object");
        return 0;
    }
    id = cJSON_GetObjectItemCaseSensitive(out->doc, "id");
    if (id != NULL && id_valid(id))
        out->id = id;
    version = cJSON_GetObjectItemCaseSensitive(out->doc, "jsonrpc");
    if (!cJSON_IsString(version) || strcmp(version->valuestring, "2.0") != 0) {
        invalid(out, MCP_INVALID_REQUEST, "Invalid Request: \"jsonrpc\" must be \"2.0\"");
        return 0;
    }
    if (id != NULL && out->id == NULL) {
        invalid(out, MCP_INVALID_REQUEST, "Invalid Request: \"id\" must be a string or an integer");
        return 0;
    }
    method = cJSON_GetObjectItemCaseSensitive(out->doc, "method");
    has_result = cJSON_GetObjectItemCaseSensitive(out->doc, "result") != NULL ||
                 cJSON_GetObjectItemCaseSensitive(out->doc, "error") != NULL;
    if (method == NULL && has_result && out->id != NULL) {
        out->kind = MCP_MSG_RESPONSE;
        return 0;
    }
    if (method == NULL || !cJSON_IsString(method) || method->valuestring[0] == '\0') {
        invalid(out, MCP_INVALID_REQUEST, "Invalid Request: \"method\" must be a non-empty string");
        return 0;
    }
    out->method = method->valuestring;
    out->params = cJSON_GetObjectItemCaseSensitive(out->doc, "params");
    if (out->params != NULL && !cJSON_IsObject(out->params)) {
        /* MCP's params are always objects; a notification with bad params is still dropped. */
        if (out->id == NULL) {
            out->kind = MCP_MSG_NOTIFICATION;
            out->params = NULL;
            return 0;
        }
        invalid(out, MCP_INVALID_PARAMS, "Invalid params: \"params\" must be an object");
        return 0;
    }
    out->kind = out->id != NULL ? MCP_MSG_REQUEST : MCP_MSG_NOTIFICATION;
    return 0;
}

void mcp_message_free(mcp_message *m)
{
    cJSON_Delete(m->doc);
    m->doc = NULL;
}

/* ------------------------------------------------------------------------------------------- */
/* Replies                                                                                      */

/* `{"jsonrpc":"2.0","id":<id>,` plus result or error; takes @p body (NULL: out of memory). */
static char *reply(const cJSON *id, const char *member, cJSON *body)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *idc = id != NULL ? cJSON_Duplicate(id, 0) : cJSON_CreateNull();
    char *text = NULL;

    if (doc == NULL || idc == NULL || body == NULL) {
        cJSON_Delete(doc);
        cJSON_Delete(idc);
        cJSON_Delete(body);
        return NULL;
    }
    if (cJSON_AddStringToObject(doc, "jsonrpc", "2.0") == NULL) {
        cJSON_Delete(idc);
        cJSON_Delete(body);
    } else {
        cJSON_AddItemToObject(doc, "id", idc);
        cJSON_AddItemToObject(doc, member, body);
        text = cJSON_PrintUnformatted(doc);
    }
    cJSON_Delete(doc);
    return text;
}

static char *error_reply(const cJSON *id, int code, const char *message)
{
    cJSON *e = cJSON_CreateObject();

    if (e != NULL && (cJSON_AddNumberToObject(e, "code", code) == NULL ||
                      cJSON_AddStringToObject(e, "message", message) == NULL)) {
        cJSON_Delete(e);
        e = NULL;
    }
    return reply(id, "error", e);
}

/* ------------------------------------------------------------------------------------------- */
/* Methods                                                                                      */

/* The JSON Schema type of an argument (an mcp_type). */
static const char *type_name(int type)
{
    static const char *const names[] = {[MCP_T_STRING] = "string",
                                        [MCP_T_INTEGER] = "integer",
                                        [MCP_T_BOOLEAN] = "boolean",
                                        [MCP_T_OBJECT] = "object"};

    return type >= 0 && (size_t)type < sizeof(names) / sizeof(names[0]) ? names[type] : "string";
}

static cJSON *initialize(mcp_server *s, const cJSON *params, int *code, const char **why)
{
    const cJSON *asked = cJSON_GetObjectItemCaseSensitive(params, "protocolVersion");
    const char *version = mcp_protocol_versions[0];
    cJSON *r, *caps, *info;
    size_t i;

    if (!cJSON_IsString(asked)) {
        *code = MCP_INVALID_PARAMS;
        *why = "Invalid params: initialize needs \"protocolVersion\" (a string)";
        return NULL;
    }
    /* The client's version when we speak it, else our newest: the client decides whether that
     * suits it. */
    for (i = 0; mcp_protocol_versions[i] != NULL; i++)
        if (strcmp(mcp_protocol_versions[i], asked->valuestring) == 0)
            version = mcp_protocol_versions[i];
    (void)snprintf(s->protocol, sizeof(s->protocol), "%s", version);
    r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "protocolVersion", version);
    caps = cJSON_AddObjectToObject(r, "capabilities");
    cJSON_AddBoolToObject(cJSON_AddObjectToObject(caps, "tools"), "listChanged", 0);
    info = cJSON_AddObjectToObject(caps, "resources");
    cJSON_AddBoolToObject(info, "subscribe", 0);
    cJSON_AddBoolToObject(info, "listChanged", 0);
    info = cJSON_AddObjectToObject(r, "serverInfo");
    cJSON_AddStringToObject(info, "name", s->name);
    cJSON_AddStringToObject(info, "version", s->version);
    if (s->instructions != NULL)
        cJSON_AddStringToObject(r, "instructions", s->instructions);
    return r;
}

static cJSON *tool_schema(const mcp_tool *t)
{
    cJSON *schema = cJSON_CreateObject(), *props, *required;
    size_t i;

    cJSON_AddStringToObject(schema, "type", "object");
    props = cJSON_AddObjectToObject(schema, "properties");
    required = cJSON_AddArrayToObject(schema, "required");
    for (i = 0; i < t->n_args; i++) {
        const mcp_arg *a = &t->args[i];
        cJSON *p = cJSON_AddObjectToObject(props, a->name);

        cJSON_AddStringToObject(p, "type", type_name(a->type));
        if (a->type == MCP_T_INTEGER)
            cJSON_AddNumberToObject(p, "minimum", 1);
        cJSON_AddStringToObject(p, "description", a->description);
        if (a->choices != NULL) {
            cJSON *e = cJSON_AddArrayToObject(p, "enum");
            const char *const *c;
            for (c = a->choices; *c != NULL; c++)
                cJSON_AddItemToArray(e, cJSON_CreateString(*c));
        }
        if (a->required)
            cJSON_AddItemToArray(required, cJSON_CreateString(a->name));
    }
    cJSON_AddBoolToObject(schema, "additionalProperties", 0);
    return schema;
}

static cJSON *tools_list(const mcp_server *s)
{
    cJSON *r = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(r, "tools");
    size_t i;

    for (i = 0; i < s->n_tools; i++) {
        cJSON *t = cJSON_CreateObject(), *notes;

        cJSON_AddItemToArray(list, t);
        cJSON_AddStringToObject(t, "name", s->tools[i].name);
        cJSON_AddStringToObject(t, "description", s->tools[i].description);
        cJSON_AddItemToObject(t, "inputSchema", tool_schema(&s->tools[i]));
        notes = cJSON_AddObjectToObject(t, "annotations");
        cJSON_AddBoolToObject(notes, "readOnlyHint", s->tools[i].read_only);
    }
    return r;
}

static cJSON *resources_list(const mcp_resource *list, size_t n, const char *member,
                             const char *uri_member)
{
    cJSON *r = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(r, member);
    size_t i;

    for (i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, e);
        cJSON_AddStringToObject(e, uri_member, list[i].uri);
        cJSON_AddStringToObject(e, "name", list[i].name);
        cJSON_AddStringToObject(e, "description", list[i].description);
        cJSON_AddStringToObject(e, "mimeType", "application/json");
    }
    return r;
}

/* A tool result: one text item, the parsed JSON as structuredContent when it is an object. */
static cJSON *tool_result(const char *text, int is_error)
{
    cJSON *r = cJSON_CreateObject(), *content = cJSON_AddArrayToObject(r, "content"), *item;
    cJSON *parsed = is_error ? NULL : cJSON_Parse(text);

    item = cJSON_CreateObject();
    cJSON_AddItemToArray(content, item);
    cJSON_AddStringToObject(item, "type", "text");
    cJSON_AddStringToObject(item, "text", text);
    if (cJSON_IsObject(parsed))
        cJSON_AddItemToObject(r, "structuredContent", parsed);
    else
        cJSON_Delete(parsed);
    cJSON_AddBoolToObject(r, "isError", is_error);
    return r;
}

/* Check @p args against the tool's table; on a mismatch write the message to @p why. */
static int args_check(const mcp_tool *t, const cJSON *args, char *why, size_t size)
{
    const cJSON *a;
    size_t i;

    cJSON_ArrayForEach (a, args) {
        const mcp_arg *def = NULL;
        int ok;

        for (i = 0; i < t->n_args; i++)
            if (a->string != NULL && strcmp(t->args[i].name, a->string) == 0)
                def = &t->args[i];
        if (def == NULL) {
            (void)snprintf(why, size, "unknown argument \"%.64s\" for %s",
                           a->string != NULL ? a->string : "", t->name);
            return -1;
        }
        switch (def->type) {
        case MCP_T_INTEGER:
            ok = cJSON_IsNumber(a) && isfinite(a->valuedouble) &&
                 a->valuedouble == floor(a->valuedouble) && a->valuedouble >= 1 &&
                 a->valuedouble <= 1e9;
            break;
        case MCP_T_BOOLEAN:
            ok = cJSON_IsBool(a);
            break;
        case MCP_T_OBJECT:
            ok = cJSON_IsObject(a);
            break;
        default:
            ok = cJSON_IsString(a);
            if (ok && def->choices != NULL) {
                const char *const *c;
                ok = 0;
                for (c = def->choices; *c != NULL; c++)
                    ok |= strcmp(*c, a->valuestring) == 0;
            }
            break;
        }
        if (!ok) {
            (void)snprintf(why, size, "argument \"%s\" must be %s", def->name,
                           def->type == MCP_T_INTEGER   ? "a positive integer"
                           : def->type == MCP_T_BOOLEAN ? "true or false"
                           : def->type == MCP_T_OBJECT  ? "an object"
                           : def->choices != NULL       ? "one of the listed values"
                                                        : "a string");
            return -1;
        }
    }
    for (i = 0; i < t->n_args; i++) {
        if (t->args[i].required &&
            cJSON_GetObjectItemCaseSensitive(args, t->args[i].name) == NULL) {
            (void)snprintf(why, size, "missing argument \"%s\" for %s", t->args[i].name, t->name);
            return -1;
        }
    }
    return 0;
}

static cJSON *tools_call(mcp_server *s, const cJSON *params, int *code, const char **why)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(params, "name");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(params, "arguments");
    const mcp_tool *tool = NULL;
    cJSON *empty = NULL, *r;
    char message[192], *text = NULL;
    size_t i;
    int rc;

    if (!cJSON_IsString(name)) {
        *code = MCP_INVALID_PARAMS;
        *why = "Invalid params: tools/call needs \"name\" (a string)";
        return NULL;
    }
    for (i = 0; i < s->n_tools; i++)
        if (strcmp(s->tools[i].name, name->valuestring) == 0)
            tool = &s->tools[i];
    if (tool == NULL) {
        *code = MCP_INVALID_PARAMS;
        *why = "Invalid params: unknown tool";
        return NULL;
    }
    if (args != NULL && !cJSON_IsObject(args) && !cJSON_IsNull(args))
        return tool_result("\"arguments\" must be an object", 1);
    if (args == NULL || cJSON_IsNull(args)) {
        if ((empty = cJSON_CreateObject()) == NULL)
            return NULL;
        args = empty;
    }
    if (args_check(tool, args, message, sizeof(message)) != 0) {
        cJSON_Delete(empty);
        return tool_result(message, 1);
    }
    rc = s->call(s->payload, tool, args, &text);
    cJSON_Delete(empty);
    if (rc != 0 && text == NULL)
        return NULL;
    r = tool_result(text != NULL ? text : "", rc != 0);
    free(text);
    return r;
}

/* On a failed read *owned holds the message *why points to; the caller frees it. */
static cJSON *resources_read(mcp_server *s, const cJSON *params, int *code, const char **why,
                             char **owned)
{
    const cJSON *uri = cJSON_GetObjectItemCaseSensitive(params, "uri");
    cJSON *r, *contents, *item;
    char *text = NULL;
    int rc;

    if (!cJSON_IsString(uri)) {
        *code = MCP_INVALID_PARAMS;
        *why = "Invalid params: resources/read needs \"uri\" (a string)";
        return NULL;
    }
    rc = s->read(s->payload, uri->valuestring, &text);
    if (rc == MCP_RESOURCE_NOT_FOUND) {
        free(text);
        *code = MCP_RESOURCE_NOT_FOUND;
        *why = "Resource not found";
        return NULL;
    }
    if (rc != 0) {
        *code = MCP_INTERNAL_ERROR;
        *why = text != NULL ? text : "out of memory";
        *owned = text;
        return NULL;
    }
    r = cJSON_CreateObject();
    contents = cJSON_AddArrayToObject(r, "contents");
    item = cJSON_CreateObject();
    cJSON_AddItemToArray(contents, item);
    cJSON_AddStringToObject(item, "uri", uri->valuestring);
    cJSON_AddStringToObject(item, "mimeType", "application/json");
    cJSON_AddStringToObject(item, "text", text != NULL ? text : "");
    free(text);
    return r;
}

int mcp_handle(mcp_server *s, const char *line, size_t len, char **response)
{
    mcp_message m;
    cJSON *result = NULL;
    const char *why = NULL;
    char *owned = NULL;
    int code = 0;

    *response = NULL;
    if (mcp_message_read(&m, line, len) != 0)
        return -1;
    switch (m.kind) {
    case MCP_MSG_INVALID:
        *response = error_reply(m.id, m.code, m.message);
        mcp_message_free(&m);
        return *response != NULL ? 0 : -1;
    case MCP_MSG_REQUEST:
        break;
    default: /* notifications (initialized, cancelled, ...), responses, blank lines */
        mcp_message_free(&m);
        return 0;
    }
    if (strcmp(m.method, "initialize") == 0) {
        result = initialize(s, m.params, &code, &why);
    } else if (strcmp(m.method, "ping") == 0) {
        result = cJSON_CreateObject();
    } else if (strcmp(m.method, "tools/list") == 0) {
        result = tools_list(s);
    } else if (strcmp(m.method, "tools/call") == 0) {
        result = tools_call(s, m.params, &code, &why);
    } else if (strcmp(m.method, "resources/list") == 0) {
        result = resources_list(s->resources, s->n_resources, "resources", "uri");
    } else if (strcmp(m.method, "resources/templates/list") == 0) {
        result = resources_list(s->templates, s->n_templates, "resourceTemplates", "uriTemplate");
    } else if (strcmp(m.method, "resources/read") == 0) {
        result = resources_read(s, m.params, &code, &why, &owned);
    } else {
        code = MCP_METHOD_NOT_FOUND;
        why = "Method not found";
    }
    if (code != 0)
        *response = error_reply(m.id, code, why);
    else
        *response = reply(m.id, "result", result);
    free(owned);
    mcp_message_free(&m);
    return *response != NULL ? 0 : -1;
}
