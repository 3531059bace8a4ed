/* The commands of `trifle` (SPEC §11.4). Each builds its whole stdout text before anything is
 * printed, so a failure (including one reported by trifle_close()) leaves stdout empty. */
#include "cli.h"

#include "mcp.h"

#include <trifle/analysis.h>

#ifdef TRIFLE_HAVE_SERVER
#include "server.h"
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything a data command reads from its options, validated before the store is opened. */
typedef struct cli_input {
    trifle_zone *zone;       /* --time-zone, for time arguments and output */
    trifle_payload *values;  /* --values */
    int64_t at, from, to;    /* --at, --from, --to */
    const char *granularity; /* --granularity, parsed */
} cli_input;

static int missing(trifle_error *err, const char *what)
{
    return cli_error(err, CLI_USAGE, "missing %s", what);
}

enum { NEED_KEY = 1, NEED_VALUES = 2, NEED_WINDOW = 4, NEED_MODE = 8 };

/* What a command cannot run without (NEED_* bits). */
static unsigned needs(int command)
{
    switch (command) {
    case CLI_CMD_TRACK:
    case CLI_CMD_ASSERT:
    case CLI_CMD_BEAM:
        return NEED_KEY | NEED_VALUES;
    case CLI_CMD_VALUES:
        return NEED_KEY | NEED_WINDOW;
    case CLI_CMD_QUERY:
        return NEED_KEY | NEED_WINDOW | NEED_MODE;
    case CLI_CMD_SCAN:
        return NEED_KEY;
    case CLI_CMD_KEYS:
        return NEED_WINDOW;
    default:
        return 0;
    }
}

/* Usage errors come before everything else: options the command cannot run without, in this
 * order. */
static int check_required(const cli_args *a, trifle_error *err)
{
    static const struct {
        unsigned need;
        int option;
        const char *what;
    } checks[] = {{NEED_VALUES, CLI_OPT_VALUES, "option --values"},
                  {NEED_WINDOW, CLI_OPT_FROM, "option --from"},
                  {NEED_WINDOW, CLI_OPT_TO, "option --to"},
                  {NEED_WINDOW, CLI_OPT_GRANULARITY, "option --granularity"},
                  {NEED_MODE, CLI_OPT_MODE, "option --mode"}};
    unsigned need = needs(a->command);
    size_t i;

    if ((need & NEED_KEY) && a->key == NULL)
        return missing(err, "metric key (KEY or --key)");
    for (i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
        if ((need & checks[i].need) && a->opt[checks[i].option] == NULL)
            return missing(err, checks[i].what);
    return 0;
}

static int read_stream(cli_buf *b, FILE *f)
{
    char chunk[16384];
    size_t n;

    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        cli_buf_append(b, chunk, n);
    return ferror(f) ? -1 : 0;
}

/* --values: JSON text, `@FILE` or `-` (standard input). */
static int values_load(trifle_payload **out, const char *spec, trifle_error *err)
{
    cli_buf text = CLI_BUF_INIT;
    const char *json = spec;
    size_t len = strlen(spec);
    int rc = 0;

    if (strcmp(spec, "-") == 0 || spec[0] == '@') {
        const char *name = spec[0] == '@' ? spec + 1 : "standard input";
        FILE *f = spec[0] == '@' ? fopen(name, "rb") : stdin;
        int failed;

        failed = f == NULL || read_stream(&text, f) != 0;
        if (failed) {
            char reason[128] = "unknown error";
            int e = errno;
            if (e != 0 && strerror_r(e, reason, sizeof(reason)) != 0)
                (void)snprintf(reason, sizeof(reason), "error %d", e);
            rc = cli_error(err, TRIFLE_EINVAL, "cannot read values from %s: %s", name, reason);
        }
        if (f != NULL && f != stdin)
            (void)fclose(f);
        if (failed)
            goto done;
        if (text.failed) {
            rc = cli_error(err, TRIFLE_ENOMEM, "out of memory");
            goto done;
        }
        json = text.data != NULL ? text.data : "";
        len = text.len;
    }
    rc = trifle_payload_parse(out, json, len, err);
done:
    cli_buf_free(&text);
    return rc;
}

static int time_arg(int64_t *out, const char *text, const trifle_zone *zone, trifle_error *err)
{
    return trifle_time_parse(out, text, zone, TRIFLE_TIME_CLI, err);
}

static int input_load(cli_input *in, const cli_args *a, const trifle_config *cfg, trifle_error *err)
{
    trifle_granularity g;
    int rc;

    if ((rc = trifle_zone_open(&in->zone, trifle_config_get(cfg, "time_zone"), err)) != 0)
        return rc;
    if (a->opt[CLI_OPT_VALUES] != NULL &&
        (rc = values_load(&in->values, a->opt[CLI_OPT_VALUES], err)) != 0)
        return rc;
    if (a->command == CLI_CMD_TRACK || a->command == CLI_CMD_ASSERT || a->command == CLI_CMD_BEAM) {
        const char *at = a->opt[CLI_OPT_AT] != NULL ? a->opt[CLI_OPT_AT] : "now";
        if ((rc = time_arg(&in->at, at, in->zone, err)) != 0)
            return rc;
    }
    if (a->opt[CLI_OPT_FROM] != NULL &&
        (rc = time_arg(&in->from, a->opt[CLI_OPT_FROM], in->zone, err)) != 0)
        return rc;
    if (a->opt[CLI_OPT_TO] != NULL &&
        (rc = time_arg(&in->to, a->opt[CLI_OPT_TO], in->zone, err)) != 0)
        return rc;
    if (a->opt[CLI_OPT_GRANULARITY] != NULL) {
        if ((rc = trifle_granularity_parse(&g, a->opt[CLI_OPT_GRANULARITY], err)) != 0)
            return rc;
        in->granularity = a->opt[CLI_OPT_GRANULARITY];
    }
    return 0;
}

static void input_free(cli_input *in)
{
    trifle_zone_free(in->zone);
    trifle_payload_free(in->values);
}

/* Append library-owned text and release it. */
static void put_owned(cli_buf *out, char *text)
{
    cli_buf_puts(out, text);
    trifle_mem_free(text);
}

/* Render @p t as the --format asks (TABLE or CSV) and release it. */
static int table_out(cli_buf *out, cli_table *t, int style, trifle_error *err)
{
    int rc = 0;

    if (cli_table_render(out, t, style == CLI_FORMAT_CSV) != 0)
        rc = cli_error(err, TRIFLE_ENOMEM, "out of memory");
    cli_table_free(t);
    return rc;
}

/* A number cell in canonical text. */
static void add_number(cli_table *t, double v)
{
    char num[32];

    (void)trifle_format_double(num, v);
    cli_table_add(t, num);
}

/* values as a table: `at` and one column per numeric leaf path, a row per bucket. */
static int series_table(cli_buf *out, const trifle_series *s, const trifle_zone *zone, int style,
                        trifle_error *err)
{
    cli_table t;
    char **paths = NULL, when[64];
    size_t n = 0, i, k;
    int rc;

    if ((rc = trifle_series_available_paths(&paths, &n, s, err)) != 0)
        return rc;
    (void)cli_table_init(&t, n + 1);
    cli_table_add(&t, "at");
    for (k = 0; k < n; k++)
        cli_table_add(&t, paths[k]);
    for (i = 0; i < trifle_series_len(s); i++) {
        (void)trifle_time_format(when, sizeof(when), trifle_series_at(s, i), zone);
        cli_table_add(&t, when);
        for (k = 0; k < n; k++) {
            double v;
            if (trifle_series_value(s, i, paths[k], &v) == 0)
                add_number(&t, v);
            else
                cli_table_add(&t, NULL);
        }
    }
    trifle_mem_free(paths);
    return table_out(out, &t, style, err);
}

static int run_values(trifle *t, const cli_args *a, const cli_input *in, int style, cli_buf *out,
                      trifle_error *err)
{
    trifle_series *s = NULL;
    char *json = NULL;
    int rc, skip = cli_flag(a, CLI_OPT_SKIP_BLANKS);

    if ((rc = trifle_values(t, &s, a->key, in->from, in->to, in->granularity, skip, err)) != 0)
        return rc;
    if (style != CLI_FORMAT_JSON)
        rc = series_table(out, s, in->zone, style, err);
    else if ((rc = trifle_series_to_json(s, in->zone, &json, TRIFLE_JSON_COMPACT, err)) == 0)
        put_owned(out, json);
    trifle_series_free(s);
    return rc;
}

static int run_scan(trifle *t, const cli_args *a, const cli_input *in, int style, cli_buf *out,
                    trifle_error *err)
{
    trifle_payload *p = NULL;
    char *json = NULL, when[64];
    int64_t at = 0;
    int found = 0, rc;

    if ((rc = trifle_scan(t, a->key, &found, &at, &p, err)) != 0)
        goto done;
    if (found)
        (void)trifle_time_format(when, sizeof(when), at, in->zone);
    if (style != CLI_FORMAT_JSON) {
        /* One row: `at` and the leaves of the ping, in path order (a header alone: no ping). */
        const trifle_leaf *leaves = trifle_payload_leaves(p);
        size_t n = found ? trifle_payload_count(p) : 0, k;
        cli_table tab;

        (void)cli_table_init(&tab, n + 1);
        cli_table_add(&tab, "at");
        for (k = 0; k < n; k++)
            cli_table_add(&tab, leaves[k].path);
        if (found) {
            cli_table_add(&tab, when);
            for (k = 0; k < n; k++)
                add_number(&tab, leaves[k].value);
        }
        rc = table_out(out, &tab, style, err);
        goto done;
    }
    if (!found) {
        cli_buf_puts(out, "{\"at\":null,\"values\":{}}");
        goto done;
    }
    if ((rc = trifle_payload_to_json(p, &json, TRIFLE_JSON_COMPACT, err)) != 0)
        goto done;
    cli_buf_puts(out, "{\"at\":");
    cli_buf_json_string(out, when);
    cli_buf_puts(out, ",\"values\":");
    put_owned(out, json);
    cli_buf_putc(out, '}');
done:
    trifle_payload_free(p);
    return rc;
}

/* The system key and the prefix of its per-key leaves (docs/storage-format.md §5). */
#define SYSTEM_KEY "__system__key__"
#define KEYS_PREFIX "keys."

/* keys: the keys written in the window, with their write counts, from the system key's
 * `keys.<key>` leaves summed over the buckets (trifle-cli's `metrics keys`). The key is the rest
 * of the path, dots included. Sorted by key (byte order, as the paths come). */
static int run_keys(trifle *t, const cli_input *in, int style, cli_buf *out, trifle_error *err)
{
    trifle_series *s = NULL;
    char **paths = NULL;
    size_t n = 0, i, k, shown = 0;
    cli_table tab;
    int rc;

    if ((rc = trifle_values(t, &s, SYSTEM_KEY, in->from, in->to, in->granularity, 1, err)) != 0)
        return rc;
    if ((rc = trifle_series_available_paths(&paths, &n, s, err)) != 0)
        goto done;
    (void)cli_table_init(&tab, 2);
    cli_table_add(&tab, "key");
    cli_table_add(&tab, "count");
    if (style == CLI_FORMAT_JSON)
        cli_buf_puts(out, "{\"keys\":[");
    for (k = 0; k < n; k++) {
        double sum = 0, v;
        char num[32];

        if (strncmp(paths[k], KEYS_PREFIX, strlen(KEYS_PREFIX)) != 0)
            continue;
        for (i = 0; i < trifle_series_len(s); i++)
            if (trifle_series_value(s, i, paths[k], &v) == 0)
                sum += v;
        (void)trifle_format_double(num, sum);
        if (style == CLI_FORMAT_JSON) {
            cli_buf_puts(out, shown > 0 ? ",{\"key\":" : "{\"key\":");
            cli_buf_json_string(out, paths[k] + strlen(KEYS_PREFIX));
            cli_buf_puts(out, ",\"count\":");
            cli_buf_puts(out, num);
            cli_buf_putc(out, '}');
        } else {
            cli_table_add(&tab, paths[k] + strlen(KEYS_PREFIX));
            cli_table_add(&tab, num);
        }
        shown++;
    }
    if (style == CLI_FORMAT_JSON) {
        cli_buf_puts(out, "]}");
        cli_table_free(&tab);
    } else {
        rc = table_out(out, &tab, style, err);
    }
done:
    trifle_mem_free(paths);
    trifle_series_free(s);
    return rc;
}

static int run_setup(trifle *t, cli_buf *out, trifle_error *err)
{
    char description[128];
    int rc;

    if ((rc = trifle_setup(t, err)) != 0)
        return rc;
    (void)trifle_describe(t, description, sizeof(description));
    cli_buf_puts(out, "{\"status\":\"ok\",\"driver\":");
    cli_buf_json_string(out, trifle_driver_name(t));
    cli_buf_puts(out, ",\"description\":");
    cli_buf_json_string(out, description);
    cli_buf_putc(out, '}');
    return 0;
}

/* setup, track, assert, values, beam, scan, query: validate, open the store, run, close. */
static int run_data(const cli_args *a, cli_buf *out, int *json, char **extra, trifle_error *err)
{
    trifle_config *cfg = NULL;
    trifle *t = NULL;
    cli_input in;
    unsigned flags;
    int rc, rc_close, style = CLI_FORMAT_JSON;
    trifle_error close_err = TRIFLE_ERROR_INIT;

    memset(&in, 0, sizeof(in));
    if ((rc = check_required(a, err)) != 0)
        goto done;
    if (a->opt[CLI_OPT_FORMAT] != NULL && (rc = cli_query_format(&style, json, a, err)) != 0)
        goto done;
    if ((rc = cli_config_build(&cfg, a, err)) != 0)
        goto done;
    /* query's inputs are checked by trifle_query() itself, in the order of SPEC §9.7. */
    if (a->command != CLI_CMD_QUERY && (rc = input_load(&in, a, cfg, err)) != 0)
        goto done;
    if ((rc = trifle_open(&t, cfg, err)) != 0)
        goto done;

    flags = cli_flag(a, CLI_OPT_UNTRACKED) ? TRIFLE_UNTRACKED : 0u;
    switch (a->command) {
    case CLI_CMD_SETUP:
        rc = run_setup(t, out, err);
        break;
    case CLI_CMD_TRACK:
        rc = trifle_track(t, a->key, in.at, in.values, flags, err);
        break;
    case CLI_CMD_ASSERT:
        rc = trifle_assert(t, a->key, in.at, in.values, flags, err);
        break;
    case CLI_CMD_BEAM:
        rc = trifle_beam(t, a->key, in.at, in.values, err);
        break;
    case CLI_CMD_VALUES:
        rc = run_values(t, a, &in, style, out, err);
        break;
    case CLI_CMD_SCAN:
        rc = run_scan(t, a, &in, style, out, err);
        break;
    case CLI_CMD_KEYS:
        rc = run_keys(t, &in, style, out, err);
        break;
    case CLI_CMD_QUERY:
        rc = cli_query_run(t, a, style, out, extra, err);
        break;
    default:
        rc = cli_error(err, TRIFLE_ERROR, "internal error: command %d", a->command);
        break;
    }
    if (rc == 0 && out->len == 0)
        cli_buf_puts(out, "{\"status\":\"ok\"}");

    /* Close before exiting (SPEC §11.1): a failing close fails the command. */
    rc_close = trifle_close(t, &close_err);
    if (rc == 0 && rc_close != 0) {
        *err = close_err;
        rc = rc_close;
    }
done:
    trifle_free(t);
    input_free(&in);
    trifle_config_free(cfg);
    return rc;
}

/* Capability names in bit order (SPEC §11.4). */
static const struct {
    uint64_t bit;
    const char *name;
} capabilities[] = {
    {TRIFLE_CAP_MODE_PARTIAL, "partial"},
    {TRIFLE_CAP_MODE_SEPARATED, "separated"},
    {TRIFLE_CAP_PING, "ping"},
    {TRIFLE_CAP_TTL, "ttl"},
    {TRIFLE_CAP_ATOMIC_BATCH, "atomic_batch"},
    {TRIFLE_CAP_SETUP, "setup"},
    {TRIFLE_CAP_EXACT_DOUBLES, "exact_doubles"},
    {TRIFLE_CAP_JOURNAL_MARK, "journal_mark"},
    {TRIFLE_CAP_CALLS, "calls"},
};

static void put_schemes(cli_buf *out, const char *schemes)
{
    const char *p = schemes;
    int first = 1;

    cli_buf_putc(out, '[');
    while (*p != '\0') {
        size_t n = strcspn(p, " ");
        if (n > 0) {
            char word[sizeof(((trifle_plugin_info *)0)->schemes)];
            memcpy(word, p, n);
            word[n] = '\0';
            if (!first)
                cli_buf_putc(out, ',');
            cli_buf_json_string(out, word);
            first = 0;
        }
        p += n;
        while (*p == ' ')
            p++;
    }
    cli_buf_putc(out, ']');
}

static void put_plugin(cli_buf *out, const trifle_plugin_info *info)
{
    char abi[32];
    size_t i;
    int first = 1;

    cli_buf_puts(out, "{\"name\":");
    cli_buf_json_string(out, info->name);
    cli_buf_puts(out, ",\"path\":");
    cli_buf_json_string(out, info->path);
    if (info->error[0] != '\0') {
        cli_buf_puts(out, ",\"error\":");
        cli_buf_json_string(out, info->error);
        cli_buf_putc(out, '}');
        return;
    }
    cli_buf_puts(out, ",\"version\":");
    cli_buf_json_string(out, info->version);
    (void)snprintf(abi, sizeof(abi), "%u.%u", (unsigned)info->abi_major, (unsigned)info->abi_minor);
    cli_buf_puts(out, ",\"abi\":");
    cli_buf_json_string(out, abi);
    cli_buf_puts(out, ",\"schemes\":");
    put_schemes(out, info->schemes);
    cli_buf_puts(out, ",\"capabilities\":[");
    for (i = 0; i < sizeof(capabilities) / sizeof(capabilities[0]); i++) {
        if ((info->caps & capabilities[i].bit) == 0)
            continue;
        if (!first)
            cli_buf_putc(out, ',');
        cli_buf_json_string(out, capabilities[i].name);
        first = 0;
    }
    cli_buf_puts(out, "]}");
}

static int run_drivers(const cli_args *a, cli_buf *out, trifle_error *err)
{
    trifle_plugin_info *infos = NULL;
    size_t n = 0, i;
    int rc;

    if ((rc = trifle_plugins_list(&infos, &n, a->opt[CLI_OPT_DRIVER_PATH], err)) != 0)
        return rc;
    cli_buf_puts(out, "{\"drivers\":[");
    for (i = 0; i < n; i++) {
        if (i > 0)
            cli_buf_putc(out, ',');
        put_plugin(out, &infos[i]);
    }
    cli_buf_puts(out, "]}");
    trifle_mem_free(infos);
    return 0;
}

static int run_version(cli_buf *out)
{
    char abi[32];

    (void)snprintf(abi, sizeof(abi), "%d.%d", TRIFLE_DRIVER_ABI_MAJOR, TRIFLE_DRIVER_ABI_MINOR);
    cli_buf_puts(out, "{\"version\":");
    cli_buf_json_string(out, trifle_version());
    cli_buf_puts(out, ",\"driver_abi\":");
    cli_buf_json_string(out, abi);
    cli_buf_putc(out, '}');
    return 0;
}

/* `help COMMAND` and `COMMAND --help`; `help` alone: the overview; `help --help`: its usage. */
static void run_help(const cli_args *a, cli_buf *out)
{
    int topic = a->command;

    if (a->command == CLI_CMD_HELP && (a->topic != CLI_CMD_NONE || !a->help))
        topic = a->topic;
    cli_buf_puts(out, cli_help_text(topic));
}

/* `serve` runs until SIGTERM/SIGINT and prints nothing on stdout (server/, SPEC §9-§12). */
static int run_serve(const cli_args *a, trifle_error *err)
{
#ifdef TRIFLE_HAVE_SERVER
    srv_options o = {a->opt[CLI_OPT_CONFIG], a->opt[CLI_OPT_LISTEN], a->opt[CLI_OPT_DRIVER_PATH]};

    return srv_serve(&o, err);
#else
    (void)a;
    return cli_error(err, TRIFLE_ENOTSUP, "serve is not available in this build");
#endif
}

int cli_run(const cli_args *args, char **out, int *json, char **extra, trifle_error *err)
{
    cli_buf b = CLI_BUF_INIT;
    int rc;

    *out = NULL;
    *json = 1;
    *extra = NULL;
    if (args->help || args->command == CLI_CMD_HELP) {
        *json = 0;
        run_help(args, &b);
        rc = 0;
    } else {
        switch (args->command) {
        case CLI_CMD_VERSION:
            rc = run_version(&b);
            break;
        case CLI_CMD_DRIVERS:
            rc = run_drivers(args, &b, err);
            break;
        case CLI_CMD_SERVE:
            rc = run_serve(args, err);
            break;
        case CLI_CMD_MCP:
            rc = cli_mcp_serve(args, err);
            break;
        default:
            rc = run_data(args, &b, json, extra, err);
            break;
        }
    }
    if (rc == 0 && b.failed)
        rc = cli_error(err, TRIFLE_ENOMEM, "out of memory");
    if (rc == 0) {
        *out = b.data;
        b.data = NULL;
    }
    cli_buf_free(&b);
    return rc;
}
