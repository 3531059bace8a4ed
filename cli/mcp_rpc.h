/* The protocol half of `trifle mcp` (docs/mcp.md): JSON-RPC 2.0 messages, one per line, and the
 * Model Context Protocol methods on top of them. It knows nothing of stores: tools and resources
 * are tables plus callbacks, so the whole reader can be fuzzed on its own (tests/fuzz/fuzz_mcp.c
 * compiles mcp_rpc.c in). Depends on cJSON and the C library only. */
#ifndef TRIFLE_CLI_MCP_RPC_H
#define TRIFLE_CLI_MCP_RPC_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* JSON-RPC 2.0 error codes (https://www.jsonrpc.org/specification#error_object) and MCP's
 * "resource not found". */
#define MCP_PARSE_ERROR (-32700)
#define MCP_INVALID_REQUEST (-32600)
#define MCP_METHOD_NOT_FOUND (-32601)
#define MCP_INVALID_PARAMS (-32602)
#define MCP_INTERNAL_ERROR (-32603)
#define MCP_RESOURCE_NOT_FOUND (-32002)

/* The longest message line read; a longer one is answered with a parse error and skipped. */
#define MCP_MAX_LINE (16u << 20)

/* What one line holds. */
enum mcp_kind {
    MCP_MSG_INVALID = 0,  /* answered with `code` and `message`, id null unless one was readable */
    MCP_MSG_REQUEST,      /* method and id: answered */
    MCP_MSG_NOTIFICATION, /* method, no id: never answered */
    MCP_MSG_RESPONSE,     /* result or error with an id: we send no requests, so it is dropped */
    MCP_MSG_EMPTY         /* a blank line: ignored */
};

/* One message read from a line. */
typedef struct mcp_message {
    int kind;            /* an mcp_kind */
    cJSON *doc;          /* the parsed line (owned), NULL when it did not parse */
    const cJSON *id;     /* string or integer id, borrowed from doc; NULL when absent or bad */
    const char *method;  /* borrowed from doc */
    const cJSON *params; /* object or NULL, borrowed from doc */
    int code;            /* MCP_MSG_INVALID: the JSON-RPC error code */
    char message[128];   /* MCP_MSG_INVALID: why */
} mcp_message;

/* Read one message from @p len bytes of @p line (no newline; need not be NUL-terminated). Never
 * fails: bad input gives MCP_MSG_INVALID. Returns -1 only when out of memory. cJSON keeps the
 * first of duplicate members, so a repeated "id" or "method" uses the first one. */
int mcp_message_read(mcp_message *out, const char *line, size_t len);

/* Release what mcp_message_read() allocated. */
void mcp_message_free(mcp_message *m);

/* Argument types of a tool. */
enum mcp_type { MCP_T_STRING, MCP_T_INTEGER, MCP_T_BOOLEAN, MCP_T_OBJECT };

/* One argument of a tool; its JSON Schema is derived from this. */
typedef struct mcp_arg {
    const char *name;
    int type; /* an mcp_type */
    int required;
    const char *description;
    const char *const *choices; /* NULL-terminated `enum` of a string argument, or NULL */
} mcp_arg;

/* One tool. */
typedef struct mcp_tool {
    const char *name;
    const char *description;
    const mcp_arg *args;
    size_t n_args;
    int read_only; /* annotations.readOnlyHint */
} mcp_tool;

/* One resource (`uri`) or resource template (`uri` holds `{name}` parts). */
typedef struct mcp_resource {
    const char *uri;
    const char *name;
    const char *description;
} mcp_resource;

/* The server: its tables, callbacks and the negotiated state. */
typedef struct mcp_server {
    const char *name, *version, *instructions;
    const mcp_tool *tools;
    size_t n_tools;
    const mcp_resource *resources;
    size_t n_resources;
    const mcp_resource *templates;
    size_t n_templates;
    /* Run a tool whose arguments were checked against its table (@p args is an object). Returns
     * 0 with *text the result JSON (malloc'ed), or nonzero with *text the error message for the
     * agent (malloc'ed, may be NULL); -1 with *text NULL means out of memory. */
    int (*call)(void *payload, const mcp_tool *tool, const cJSON *args, char **text);
    /* Read a resource: 0 with *text (JSON, malloc'ed); MCP_RESOURCE_NOT_FOUND; or another
     * nonzero value with *text an error message (malloc'ed). */
    int (*read)(void *payload, const char *uri, char **text);
    void *payload;
    char protocol[16]; /* the negotiated protocol version, "" before initialize */
} mcp_server;

/* The protocol versions this server speaks, newest first, NULL-terminated. */
extern const char *const mcp_protocol_versions[];

/* Handle one line: *response receives the reply line (malloc'ed, no newline) or NULL when the
 * message gets none. Returns 0, or -1 when out of memory. */
int mcp_handle(mcp_server *s, const char *line, size_t len, char **response);

#endif
