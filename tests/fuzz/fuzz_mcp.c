/* libFuzzer target for the JSON-RPC reader and MCP dispatcher of `trifle mcp` (cli/mcp_rpc.c,
 * compiled in: the CLI is an executable, not a library).
 *
 * Input: lines of a session (split on '\n'), each handed to mcp_handle() as the server's stdin
 * would. Tools and resources are a small table whose callbacks echo their arguments or fail, so
 * the whole path of a call (argument checks, result building) runs without a store.
 *
 * Invariants checked: every reply is one JSON object with "jsonrpc":"2.0", an "id" member and
 * exactly one of "result" or "error" (an error with an integer code and a string message);
 * notifications and blank lines get no reply; no reply contains a raw newline. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../cli/mcp_rpc.c" // NOLINT(bugprone-suspicious-include): its static functions
#include "fuzz.h"

static const char *const modes[] = {"a", "b", NULL};
static const mcp_arg args[] = {
    {"key", MCP_T_STRING, 1, "k", NULL},   {"n", MCP_T_INTEGER, 0, "n", NULL},
    {"flag", MCP_T_BOOLEAN, 0, "f", NULL}, {"values", MCP_T_OBJECT, 0, "v", NULL},
    {"mode", MCP_T_STRING, 0, "m", modes},
};
static const mcp_tool tools[] = {
    {"echo", "echo the arguments", args, 5, 1},
    {"fail", "always fails", args, 1, 0},
};
static const mcp_resource resources[] = {{"trifle://source", "source", "s"}};

static int call(void *payload, const mcp_tool *tool, const cJSON *a, char **text)
{
    (void)payload;
    if (strcmp(tool->name, "fail") == 0) {
        *text = strdup("{\"error\":{\"code\":\"EINVAL\",\"message\":\"no\"}}");
        return *text != NULL ? 3 : -1;
    }
    *text = cJSON_PrintUnformatted(a);
    return *text != NULL ? 0 : -1;
}

static int read_uri(void *payload, const char *uri, char **text)
{
    (void)payload;
    if (strcmp(uri, "trifle://source") == 0) {
        *text = strdup("{\"driver\":\"sqlite:x\"}");
        return *text != NULL ? 0 : -1;
    }
    if (strncmp(uri, "trifle://fail", 13) == 0) {
        *text = strdup("cannot read");
        return *text != NULL ? 1 : -1;
    }
    return MCP_RESOURCE_NOT_FOUND;
}

static void check_reply(const char *text)
{
    cJSON *doc = cJSON_Parse(text);
    const cJSON *result, *error;

    CHECK(strchr(text, '\n') == NULL);
    CHECK(cJSON_IsObject(doc));
    CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "jsonrpc")));
    CHECK(cJSON_GetObjectItemCaseSensitive(doc, "id") != NULL);
    result = cJSON_GetObjectItemCaseSensitive(doc, "result");
    error = cJSON_GetObjectItemCaseSensitive(doc, "error");
    CHECK((result != NULL) != (error != NULL));
    if (error != NULL) {
        CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(error, "code")));
        CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(error, "message")));
    }
    cJSON_Delete(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mcp_server s;
    const char *p = (const char *)data, *end = p + size;

    memset(&s, 0, sizeof(s));
    s.name = "fuzz";
    s.version = "0";
    s.tools = tools;
    s.n_tools = 2;
    s.resources = resources;
    s.n_resources = 1;
    s.templates = resources;
    s.n_templates = 1;
    s.call = call;
    s.read = read_uri;
    while (p <= end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        char *reply = NULL;
        mcp_message m;

        if (mcp_handle(&s, p, len, &reply) == 0 && reply != NULL)
            check_reply(reply);
        /* a message that is a notification or blank is never answered */
        if (mcp_message_read(&m, p, len) == 0) {
            if (m.kind == MCP_MSG_NOTIFICATION || m.kind == MCP_MSG_EMPTY ||
                m.kind == MCP_MSG_RESPONSE)
                CHECK(reply == NULL);
            mcp_message_free(&m);
        }
        cJSON_free(reply);
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return 0;
}
