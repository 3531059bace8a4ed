/* `trifle mcp`: a Model Context Protocol server on stdin/stdout (docs/mcp.md).
 *
 * mcp_rpc.c speaks the protocol; this file supplies the tools and resources. Every tool is a CLI
 * command run through cli_run() with options built from its arguments, so a tool answers exactly
 * what `trifle values`, `trifle query` or `trifle keys` print for the same inputs, and fails with
 * the same message (as a tool error: `isError: true`, the CLI's JSON error line as text). Each
 * call opens the store and closes it again, as the CLI does: nothing is buffered between calls,
 * and a server restart or a moved file is picked up by the next call. */
#include "mcp.h"

#include "mcp_rpc.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/tu_hex.h"

/* The window a tool or resource reads when its arguments give none: the last 24 hours, hourly. */
#define DEFAULT_SPAN 86400
#define DEFAULT_GRANULARITY "1h"

static const char *const aggregators[] = {"sum", "mean", "min", "max", NULL};
static const char *const write_modes[] = {"track", "assert", NULL};

#define WINDOW_ARGS                                                                              \
    {"from", MCP_T_STRING, 0,                                                                    \
     "start of the window: now, @UNIX, RFC 3339 with offset, or YYYY-MM-DD[THH:MM[:SS]] in the " \
     "source's time zone (default: 24 hours before `to`)",                                       \
     NULL},                                                                                      \
        {"to", MCP_T_STRING, 0, "end of the window, as `from` (default: now)", NULL},            \
    {                                                                                            \
        "granularity", MCP_T_STRING, 0,                                                          \
            "bucket size: 1m, 15m, 1h, 1d, 1w, 1mo, 1q, 1y (default 1h)", NULL                   \
    }

#define KEY_ARG                                                        \
    {                                                                  \
        "key", MCP_T_STRING, 1, "metric key, e.g. event::signup", NULL \
    }
#define PATH_ARG                                                                           \
    {                                                                                      \
        "value_path", MCP_T_STRING, 1, "dotted leaf path, e.g. count or duration.db", NULL \
    }
#define SLICES_ARG                                                                             \
    {                                                                                          \
        "slices", MCP_T_INTEGER, 0, "split the window into this many slices (default 1)", NULL \
    }

static const mcp_arg list_metrics_args[] = {WINDOW_ARGS};
static const mcp_arg fetch_series_args[] = {
    KEY_ARG,
    WINDOW_ARGS,
    {"skip_blanks", MCP_T_BOOLEAN, 0, "leave out buckets without data", NULL}};
static const mcp_arg aggregate_args[] = {
    KEY_ARG,
    PATH_ARG,
    {"aggregator", MCP_T_STRING, 1, "how to combine the values", aggregators},
    WINDOW_ARGS,
    SLICES_ARG};
static const mcp_arg format_args[] = {KEY_ARG, PATH_ARG, WINDOW_ARGS, SLICES_ARG};
static const mcp_arg write_args[] = {
    KEY_ARG,
    {"values", MCP_T_OBJECT, 1,
     "nested object of numbers, e.g. {\"count\":1,\"duration\":{\"db\":0.25}}", NULL},
    {"at", MCP_T_STRING, 0, "instant of the event, as `from` (default now)", NULL},
    {"mode", MCP_T_STRING, 0, "track adds to the buckets (default), assert replaces the leaves",
     write_modes}};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const mcp_arg list_transponders_args[] = {
    {"key", MCP_T_STRING, 0, "only the transponders of this key pattern", NULL}};
static const mcp_arg delete_transponder_args[] = {
    {"id", MCP_T_STRING, 1, "the id of the transponder (see list_transponders)", NULL}};

enum tool_id {
    T_LIST,
    T_FETCH,
    T_AGGREGATE,
    T_TIMELINE,
    T_CATEGORY,
    T_WRITE,
    T_LOCAL_COUNT, /* the tools after this one need a remote server */
    T_LIST_TRANSPONDERS = T_LOCAL_COUNT,
    T_DELETE_TRANSPONDER
};

static const mcp_tool tools[] = {
    [T_LIST] = {"list_metrics",
                "List the metric keys written in a window with their write counts (from the "
                "system key). Returns {\"keys\":[{\"key\":...,\"count\":...}]}.",
                list_metrics_args, N(list_metrics_args), 1},
    [T_FETCH] = {"fetch_series",
                 "Read the raw buckets of a metric key: {\"at\":[...],\"values\":[...]}, bucket "
                 "times in RFC 3339.",
                 fetch_series_args, N(fetch_series_args), 1},
    [T_AGGREGATE] = {"aggregate_series",
                     "Aggregate one leaf path of a metric over the window (sum, mean, min or "
                     "max), as POST /api/v1/metrics/query with mode aggregate.",
                     aggregate_args, N(aggregate_args), 1},
    [T_TIMELINE] = {"format_timeline",
                    "The values of one leaf path bucket by bucket, as POST /api/v1/metrics/query "
                    "with mode timeline.",
                    format_args, N(format_args), 1},
    [T_CATEGORY] = {"format_category",
                    "Sum the leaves under a path per child over the window (e.g. country -> "
                    "country.US, country.UK), as POST /api/v1/metrics/query with mode category.",
                    format_args, N(format_args), 1},
    [T_WRITE] = {"write_metric",
                 "Record values for a metric key at an instant (track adds, assert replaces). "
                 "Returns {\"status\":\"ok\"}.",
                 write_args, N(write_args), 0},
    [T_LIST_TRANSPONDERS] = {"list_transponders",
                             "List the transponders stored on the server for this source: "
                             "expressions applied on read to the keys they match. Returns "
                             "{\"data\":[{id,name,key,config,enabled,order,...}]}.",
                             list_transponders_args, N(list_transponders_args), 1},
    [T_DELETE_TRANSPONDER] = {"delete_transponder",
                              "Delete one stored transponder of this source by id. Returns "
                              "{\"data\":<the deleted transponder>}.",
                              delete_transponder_args, N(delete_transponder_args), 0},
};

static const mcp_resource resources[] = {
    {"trifle://source", "source",
     "The store this server reads: driver URL (password masked), time zone, granularities"},
    {"trifle://metrics", "metrics", "The keys written in the last 24 hours with their counts"},
    /* remote sources only */
    {"trifle://transponders", "transponders", "The transponders stored on the server"},
};

static const mcp_resource templates[] = {
    {"trifle://metrics/{key}", "metric",
     "The hourly buckets of one metric key over the last 24 hours (key percent-encoded)"},
};

typedef struct mcp_ctx {
    const cli_args *base; /* the command line: driver and global options */
    const char *driver;   /* the driver URL */
} mcp_ctx;

/* Options a tool sets; everything else comes from the command line. */
static const int tool_options[] = {CLI_OPT_KEY,         CLI_OPT_VALUES,
                                   CLI_OPT_AT,          CLI_OPT_UNTRACKED,
                                   CLI_OPT_FROM,        CLI_OPT_TO,
                                   CLI_OPT_GRANULARITY, CLI_OPT_SKIP_BLANKS,
                                   CLI_OPT_MODE,        CLI_OPT_VALUE_PATH,
                                   CLI_OPT_AGGREGATOR,  CLI_OPT_SLICES,
                                   CLI_OPT_FORMAT,      CLI_OPT_TRANSPOND_PATHS,
                                   CLI_OPT_EXPRESSION,  CLI_OPT_RESPONSE};

static const char *str_arg(const cJSON *args, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Storage for the option texts a call makes up. */
typedef struct call_text {
    char from[32], slices[32];
    char *values; /* cJSON_PrintUnformatted() */
} call_text;

/* The window options: arguments, else the last 24 hours at 1h. */
static void window(cli_args *a, const cJSON *args, call_text *ct)
{
    a->opt[CLI_OPT_TO] = str_arg(args, "to") != NULL ? str_arg(args, "to") : "now";
    a->opt[CLI_OPT_FROM] = str_arg(args, "from");
    if (a->opt[CLI_OPT_FROM] == NULL) {
        /* 24 hours before `to` needs `to` as an instant; with an explicit `to` the agent gives
         * `from` too, else it gets 24 hours before now. */
        (void)snprintf(ct->from, sizeof(ct->from), "@%" PRId64, (int64_t)time(NULL) - DEFAULT_SPAN);
        a->opt[CLI_OPT_FROM] = ct->from;
    }
    a->opt[CLI_OPT_GRANULARITY] =
        str_arg(args, "granularity") != NULL ? str_arg(args, "granularity") : DEFAULT_GRANULARITY;
}

/* The command line of one tool call. Returns 0 or -1 (out of memory). */
static int tool_args(cli_args *a, const mcp_ctx *ctx, int id, const cJSON *args, call_text *ct)
{
    const cJSON *v;
    size_t i;

    *a = *ctx->base;
    a->profile = NULL;
    a->help = a->pretty = 0;
    a->key = str_arg(args, "key");
    for (i = 0; i < N(tool_options); i++)
        a->opt[tool_options[i]] = NULL;
    if ((v = cJSON_GetObjectItemCaseSensitive(args, "slices")) != NULL) {
        (void)snprintf(ct->slices, sizeof(ct->slices), "%.0f", v->valuedouble);
        a->opt[CLI_OPT_SLICES] = ct->slices;
    }
    a->opt[CLI_OPT_VALUE_PATH] = str_arg(args, "value_path");
    switch (id) {
    case T_LIST:
        a->command = CLI_CMD_KEYS;
        window(a, args, ct);
        break;
    case T_FETCH:
        a->command = CLI_CMD_VALUES;
        window(a, args, ct);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(args, "skip_blanks")))
            a->opt[CLI_OPT_SKIP_BLANKS] = "true";
        break;
    case T_AGGREGATE:
    case T_TIMELINE:
    case T_CATEGORY:
        a->command = CLI_CMD_QUERY;
        window(a, args, ct);
        a->opt[CLI_OPT_MODE] = id == T_AGGREGATE  ? "aggregate"
                               : id == T_TIMELINE ? "timeline"
                                                  : "category";
        a->opt[CLI_OPT_AGGREGATOR] = str_arg(args, "aggregator");
        break;
    case T_WRITE:
        a->command = CLI_CMD_TRACK;
        if (str_arg(args, "mode") != NULL && strcmp(str_arg(args, "mode"), "assert") == 0)
            a->command = CLI_CMD_ASSERT;
        a->opt[CLI_OPT_AT] = str_arg(args, "at");
        ct->values = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(args, "values"));
        if (ct->values == NULL)
            return -1;
        a->opt[CLI_OPT_VALUES] = ct->values;
        break;
    default:
        break;
    }
    return 0;
}

/* Run @p a as the CLI would: 0 and its stdout text, or nonzero and its stderr line. */
static int run_command(const cli_args *a, char **text)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    char *out = NULL, *extra = NULL;
    int json = 1, rc;
    cli_buf b = CLI_BUF_INIT;

    *text = NULL;
    rc = cli_run(a, &out, &json, &extra, &err);
    if (rc == 0) {
        *text = out;
        return 0;
    }
    cli_error_json(&b, &err, extra);
    free(extra);
    free(out);
    if (b.failed) {
        cli_buf_free(&b);
        return -1;
    }
    *text = b.data;
    return rc != 0 ? rc : -1;
}

/* Percent-encode @p s for a URL path segment. */
static void segment_encode(cli_buf *b, const char *s)
{
    char e[3];

    for (; *s != '\0'; s++)
        cli_buf_append(b, e, tu_pct_encode_char(e, (unsigned char)*s));
}

/* list_transponders / delete_transponder: the server's answer, or its error as a tool error. */
static int call_remote(const mcp_ctx *ctx, int id, const cJSON *args, char **text)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    cli_buf path = CLI_BUF_INIT, b = CLI_BUF_INIT;
    const char *key = str_arg(args, "key");
    char *body = NULL;
    long status = 0;
    int rc;

    cli_buf_puts(&path, "/api/v1/transponders");
    if (id == T_DELETE_TRANSPONDER) {
        cli_buf_putc(&path, '/');
        segment_encode(&path, str_arg(args, "id"));
    }
    if (path.failed) {
        cli_buf_free(&path);
        return -1;
    }
    rc = cli_remote_request(&body, &status, ctx->driver,
                            id == T_DELETE_TRANSPONDER ? "DELETE" : "GET", path.data, &err);
    cli_buf_free(&path);
    if (rc != 0) {
        cli_error_json(&b, &err, NULL);
    } else if (status < 200 || status > 299) {
        char line[64];
        (void)snprintf(line, sizeof(line), "HTTP %ld: ", status);
        cli_buf_puts(&b, line);
        cli_buf_puts(&b, body);
        rc = TRIFLE_ERROR;
    } else if (id == T_LIST_TRANSPONDERS && key != NULL) {
        /* only the given key pattern */
        cJSON *doc = cJSON_Parse(body), *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
        int i = cJSON_GetArraySize(data);
        char *printed;
        while (i-- > 0) {
            const cJSON *k = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(data, i), "key");
            if (!cJSON_IsString(k) || strcmp(k->valuestring, key) != 0)
                cJSON_DeleteItemFromArray(data, i);
        }
        printed = doc != NULL ? cJSON_PrintUnformatted(doc) : NULL;
        cli_buf_puts(&b, printed != NULL ? printed : body);
        cJSON_free(printed);
        cJSON_Delete(doc);
    } else {
        cli_buf_puts(&b, body);
    }
    free(body);
    if (b.failed) {
        cli_buf_free(&b);
        return -1;
    }
    *text = b.data;
    return rc;
}

static int call_tool(void *payload, const mcp_tool *tool, const cJSON *args, char **text)
{
    const mcp_ctx *ctx = payload;
    call_text ct;
    cli_args a;
    int rc;

    memset(&ct, 0, sizeof(ct));
    *text = NULL;
    if (tool - tools >= T_LOCAL_COUNT)
        return call_remote(ctx, (int)(tool - tools), args, text);
    if (tool_args(&a, ctx, (int)(tool - tools), args, &ct) != 0)
        return -1;
    rc = run_command(&a, text);
    cJSON_free(ct.values);
    return rc;
}

/* Percent-decoding of a URI segment into a new string; NULL for bad escapes or a NUL byte. */
static char *percent_decode(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n + 1);

    if (out != NULL && tu_pct_decode(out, NULL, s, n, 0) != TU_PCT_OK) {
        free(out);
        out = NULL;
    }
    return out;
}

/* trifle://source: what the agent is talking to. */
static int read_source(const mcp_ctx *ctx, char **text)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_config *cfg = NULL;
    cli_buf b = CLI_BUF_INIT;
    char masked[1024];
    int rc;

    if ((rc = cli_config_build(&cfg, ctx->base, &err)) != 0) {
        cli_error_json(&b, &err, NULL);
    } else {
        cli_url_shown(masked, sizeof(masked), trifle_config_get(cfg, "driver"));
        cli_buf_puts(&b, "{\"driver\":");
        cli_buf_json_string(&b, masked);
        cli_buf_puts(&b, ",\"time_zone\":");
        cli_buf_json_string(&b, trifle_config_get(cfg, "time_zone"));
        cli_buf_puts(&b, ",\"granularities\":");
        cli_buf_json_string(&b, trifle_config_get(cfg, "granularities"));
        cli_buf_puts(&b, ",\"default_granularity\":\"" DEFAULT_GRANULARITY "\",\"version\":");
        cli_buf_json_string(&b, trifle_version());
        cli_buf_putc(&b, '}');
    }
    trifle_config_free(cfg);
    if (b.failed) {
        cli_buf_free(&b);
        return -1;
    }
    *text = b.data;
    return rc;
}

static int read_resource(void *payload, const char *uri, char **text)
{
    static const char metrics_prefix[] = "trifle://metrics/";
    const mcp_ctx *ctx = payload;
    cJSON *args;
    char *key = NULL;
    int rc;

    *text = NULL;
    if (strcmp(uri, "trifle://source") == 0)
        return read_source(ctx, text);
    if (strcmp(uri, "trifle://transponders") == 0) {
        if (!cli_remote_is(ctx->driver))
            return MCP_RESOURCE_NOT_FOUND;
        if ((args = cJSON_CreateObject()) == NULL)
            return -1;
        rc = call_tool(payload, &tools[T_LIST_TRANSPONDERS], args, text);
        cJSON_Delete(args);
        return rc;
    }
    if (strcmp(uri, "trifle://metrics") == 0) {
        if ((args = cJSON_CreateObject()) == NULL)
            return -1;
        rc = call_tool(payload, &tools[T_LIST], args, text);
        cJSON_Delete(args);
        return rc;
    }
    if (strncmp(uri, metrics_prefix, sizeof(metrics_prefix) - 1) != 0 ||
        uri[sizeof(metrics_prefix) - 1] == '\0' ||
        (key = percent_decode(uri + sizeof(metrics_prefix) - 1)) == NULL)
        return MCP_RESOURCE_NOT_FOUND;
    if ((args = cJSON_CreateObject()) == NULL || cJSON_AddStringToObject(args, "key", key) == NULL)
        rc = -1;
    else
        rc = call_tool(payload, &tools[T_FETCH], args, text);
    cJSON_Delete(args);
    free(key);
    return rc;
}

/* One line of stdin into @p b (without the newline); *too_long when it passed MCP_MAX_LINE (the
 * rest of it is consumed and dropped). Returns 0, or EOF at the end of input. */
static int read_line(cli_buf *b, int *too_long)
{
    int c, any = 0;

    b->len = 0;
    *too_long = 0;
    while ((c = getc(stdin)) != EOF) {
        any = 1;
        if (c == '\n')
            return 0;
        if (b->len >= MCP_MAX_LINE)
            *too_long = 1;
        else
            cli_buf_putc(b, (char)c);
    }
    return any ? 0 : EOF;
}

static int write_line(const char *text)
{
    if (fputs(text, stdout) == EOF || putc('\n', stdout) == EOF || fflush(stdout) != 0)
        return -1;
    return 0;
}

int cli_mcp_serve(const cli_args *args, trifle_error *err)
{
    mcp_ctx ctx = {args, args->opt[CLI_OPT_DRIVER] != NULL ? args->opt[CLI_OPT_DRIVER] : ""};
    int remote = cli_remote_is(ctx.driver);
    mcp_server s;
    cli_buf line = CLI_BUF_INIT;
    int too_long, rc = 0;

    memset(&s, 0, sizeof(s));
    s.name = "trifle";
    s.version = trifle_version();
    s.instructions = "Trifle Stats time-series counters. Start with list_metrics to see which keys "
                     "exist, fetch_series to see a key's leaf paths, then aggregate_series, "
                     "format_timeline or format_category on one path. Times accept now, @UNIX, "
                     "RFC 3339 or local dates.";
    /* the transponder tools and resource exist only for a server (the App's API has them) */
    s.tools = tools;
    s.n_tools = remote ? N(tools) : T_LOCAL_COUNT;
    s.resources = resources;
    s.n_resources = remote ? N(resources) : N(resources) - 1;
    s.templates = templates;
    s.n_templates = N(templates);
    s.call = call_tool;
    s.read = read_resource;
    s.payload = &ctx;
    /* A client that goes away must end the loop with an error on write, not kill the process. */
    (void)signal(SIGPIPE, SIG_IGN);

    while (read_line(&line, &too_long) != EOF) {
        char *response = NULL;

        if (line.failed) {
            rc = cli_error(err, TRIFLE_ENOMEM, "out of memory");
            break;
        }
        if (too_long) {
            if (write_line("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
                           "\"message\":\"Parse error: message longer than 16 MiB\"}}") != 0)
                goto write_failed;
            continue;
        }
        if (mcp_handle(&s, line.data != NULL ? line.data : "", line.len, &response) != 0) {
            rc = cli_error(err, TRIFLE_ENOMEM, "out of memory");
            break;
        }
        if (response != NULL && write_line(response) != 0) {
            cJSON_free(response);
            goto write_failed;
        }
        cJSON_free(response);
    }
    if (rc == 0 && ferror(stdin))
        rc = cli_error(err, TRIFLE_ERROR, "cannot read standard input");
    cli_buf_free(&line);
    return rc;
write_failed:
    cli_buf_free(&line);
    return cli_error(err, TRIFLE_ERROR, "cannot write to standard output");
}
