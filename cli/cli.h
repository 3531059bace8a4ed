/* The `trifle` command (SPEC §11): declarations shared by the files of cli/. The CLI is a client of
 * the public API only (<trifle/trifle.h>); nothing here is installed. */
#ifndef TRIFLE_CLI_H
#define TRIFLE_CLI_H

#include <stddef.h>
#include <string.h>

#include <trifle/trifle.h>

#include "util/tu_buf.h"
#include "util/tu_error.h"

/* Status of a usage error (unknown command or option, missing or repeated option). It is not a
 * trifle_status: the JSON code is "USAGE" and the exit code 2 (SPEC §11.5, ERRATA minor 22). */
#define CLI_USAGE 1000

/* Commands, in the order `trifle help` lists them. */
enum cli_command {
    CLI_CMD_NONE = 0,
    CLI_CMD_SETUP,
    CLI_CMD_TRACK,
    CLI_CMD_ASSERT,
    CLI_CMD_VALUES,
    CLI_CMD_BEAM,
    CLI_CMD_SCAN,
    CLI_CMD_QUERY,
    CLI_CMD_KEYS,
    CLI_CMD_SERVE,
    CLI_CMD_MCP,
    CLI_CMD_DRIVERS,
    CLI_CMD_VERSION,
    CLI_CMD_HELP,
    CLI_CMD__COUNT
};

/* Every option the command line knows. Global options (SPEC §11.1) come first. */
enum cli_option {
    CLI_OPT_DRIVER = 0,
    CLI_OPT_GRANULARITIES,
    CLI_OPT_TIME_ZONE,
    CLI_OPT_WEEK_START,
    CLI_OPT_JOINED,
    CLI_OPT_SEPARATOR,
    CLI_OPT_SYSTEM_TRACKING,
    CLI_OPT_MAX_POINTS,
    CLI_OPT_DRIVER_PATH,
    CLI_OPT_PRETTY,
    CLI_OPT_HELP,
    CLI_OPT_CONFIG,
    CLI_OPT_LISTEN,
    CLI_OPT_KEY,
    CLI_OPT_VALUES,
    CLI_OPT_AT,
    CLI_OPT_UNTRACKED,
    CLI_OPT_FROM,
    CLI_OPT_TO,
    CLI_OPT_GRANULARITY,
    CLI_OPT_SKIP_BLANKS,
    CLI_OPT_MODE,
    CLI_OPT_VALUE_PATH,
    CLI_OPT_AGGREGATOR,
    CLI_OPT_SLICES,
    CLI_OPT_FORMAT,
    CLI_OPT_TRANSPOND_PATHS,
    CLI_OPT_EXPRESSION,
    CLI_OPT_RESPONSE,
    CLI_OPT_SOURCE,
    CLI_OPT__COUNT
};

/* The parsed command line with the environment applied (flag > environment > default). */
typedef struct cli_args {
    int command;                     /* a cli_command */
    const char *opt[CLI_OPT__COUNT]; /* option text, NULL when absent; flags hold "true"/"false" */
    const char *key;                 /* metric key: first positional or --key */
    int topic;                       /* `help COMMAND`: a cli_command, CLI_CMD_NONE if absent */
    int help;                        /* --help / -h given */
    int pretty;                      /* --pretty / TRIFLE_PRETTY */
    struct cli_profile *profile;     /* the config file's source applied, or NULL (owned) */
} cli_args;

/* options.c */

/* Parse argv and the TRIFLE_* environment into @p out. Strings point into argv/environ.
 * Returns 0, CLI_USAGE or TRIFLE_ECONFIG (a bad TRIFLE_PRETTY) with @p err filled. */
int cli_args_parse(cli_args *out, int argc, char **argv, trifle_error *err);

/* Release what cli_args_parse() allocated (the config file's strings); @p a stays usable until
 * then. */
void cli_args_free(cli_args *a);

/* Whether the flag option @p option (--untracked, --skip-blanks, --pretty) is on. */
int cli_flag(const cli_args *a, int option);

/* Room for any option's key, with its NUL. */
#define CLI_OPTION_KEY_MAX 32

/* The name of @p option with `_` for `-` (--time-zone: "time_zone"), in @p buf: the name of the
 * same setting in trifle_config, in a config file's source and in a §9.7 query body. */
const char *cli_option_key(int option, char buf[CLI_OPTION_KEY_MAX]);

/* Build the library configuration from the global options (buffer disabled, SPEC §11.1).
 * Returns 0 or the trifle_config_set() status (TRIFLE_ECONFIG names the value at fault). */
int cli_config_build(trifle_config **out, const cli_args *args, trifle_error *err);

/* Fill @p err with @p code and a printf-style message, truncated UTF-8-safely with "…"; returns
 * @p code. The one error formatter of the tree (util/tu_error.h). */
#define cli_error(...) tu_error_set(__VA_ARGS__)

/* profile.c */

/* The selected source of the client's config file (its strings back cli_args.opt[]). */
typedef struct cli_profile cli_profile;

/* Read the config file (--config, TRIFLE_CLI_CONFIG, or the default path when it exists) and fill
 * the options still unset from the source --source (TRIFLE_SOURCE, else the file's `source`)
 * names; export its token as TRIFLE_TOKEN unless that is set. Returns 0, TRIFLE_ECONFIG (missing
 * file, bad YAML, unknown source or setting: file, line and key named) or CLI_USAGE (--source
 * without a file). */
int cli_profile_apply(cli_args *a, trifle_error *err);

/* Free a profile; NULL is fine. */
void cli_profile_free(cli_profile *p);

/* help.c */

/* The usage text of @p command (CLI_CMD_NONE: the overview). Static. */
const char *cli_help_text(int command);

/* output.c */

/* A growable text buffer on the C library's allocator (util/tu_buf.h; the cli_buf_* names are
 * the CLI's spelling of tu_buf_*). Allocation failure is sticky: check `failed` once at the end. */
typedef tu_buf cli_buf;

#define CLI_BUF_INIT TU_BUF_INIT(NULL, NULL)

#define cli_buf_append tu_buf_append
#define cli_buf_puts tu_buf_puts
#define cli_buf_putc tu_buf_putc
/* Append @p s as a JSON string literal; invalid UTF-8 bytes become U+FFFD. */
#define cli_buf_json_string(b, s) tu_buf_json_string((b), (s), strlen(s), TU_BUF_JSON_REPAIR)
#define cli_buf_free tu_buf_free

/* Re-indent valid JSON text with two spaces per level, one member per line, ": " after names.
 * Number, string and literal tokens are copied byte for byte. */
void cli_json_pretty(cli_buf *out, const char *json);

/* Map a status (or CLI_USAGE) to the exit code of SPEC §11.5. */
int cli_exit_code(int code);

/* Append `{"error":{"code":...,"message":...}}` plus @p extra members (JSON text starting with ','
 * or NULL), without a newline: the error line of cli_report(). */
void cli_error_json(cli_buf *b, const trifle_error *err, const char *extra);

/* Write `{"error":{"code":...,"message":...}}` plus @p extra members (JSON text starting with ','
 * or NULL) as one line to stderr and return the exit code for err->code. */
int cli_report(const trifle_error *err, const char *extra);

/* Write @p text to stdout, followed by a newline. With @p pretty the JSON text is re-indented
 * first. Returns 0 or TRIFLE_ERROR (with @p err filled) when stdout cannot be written. */
int cli_print(const char *text, int json, int pretty, trifle_error *err);

/* table.c */

/* Cells of a table, row by row, header first; a NULL cell is a missing value. Allocation failure
 * is sticky (`failed`). */
typedef struct cli_table {
    char **cells;
    size_t n, cap, ncol;
    int failed;
} cli_table;

/* Start a table of @p ncol columns (at least 1); -1 for none. */
int cli_table_init(cli_table *t, size_t ncol);
/* Append a copy of @p text (NULL: missing) as the next cell. */
void cli_table_add(cli_table *t, const char *text);
void cli_table_free(cli_table *t);
/* Append the table as aligned text or (@p csv) RFC 4180 CSV; -1 when a step ran out of memory. */
int cli_table_render(cli_buf *out, const cli_table *t, int csv);

/* query.c */

/* The outputs of --format: JSON (the command's value), or its table as aligned text or CSV. The
 * CLI draws them itself (table.c); libtrifle only hands over the query's data. */
enum cli_format { CLI_FORMAT_JSON = 0, CLI_FORMAT_TABLE = 1, CLI_FORMAT_CSV = 2 };

/* The output --format asks for (a cli_format) and whether it is JSON; CLI_USAGE for an unknown
 * format. */
int cli_query_format(int *style, int *json, const cli_args *a, trifle_error *err);

/* Run `trifle query` on an open handle, appending the rendering to @p out. A failed query returns
 * its code (trifle_query_result_code()) with its message in @p err and its extra fields (JSON
 * members, each preceded by ',') in *extra (caller frees with free()). */
int cli_query_run(trifle *t, const cli_args *a, int style, cli_buf *out, char **extra,
                  trifle_error *err);

/* remote.c */

/* @p url for messages: trifle_url_mask() (passwords) and the value of `token=` as `***`. */
void cli_url_shown(char *buf, size_t size, const char *url);

/* Whether @p driver_url names a Trifle API server (http:// or https://). */
int cli_remote_is(const char *driver_url);

/* Send @p method @p path (e.g. "/api/v1/transponders") to the server of @p driver_url with its
 * token (`token=` or TRIFLE_TOKEN) and source (`source=` → X-Trifle-Source-Id). On 0, *out is the
 * response body (caller frees with free()) and *status its HTTP status. Returns 0, TRIFLE_ECONN,
 * TRIFLE_ETIMEDOUT, TRIFLE_ENOTSUP (built without libcurl) or TRIFLE_ENOMEM. */
int cli_remote_request(char **out, long *status, const char *driver_url, const char *method,
                       const char *path, trifle_error *err);

/* commands.c */

/* Run the parsed command. On success *out is the complete stdout text (caller frees with free()),
 * *json says whether it is JSON (subject to --pretty). On failure *extra may receive extra members
 * for the error object (`query`, SPEC §11.5). Returns 0 or a status. */
int cli_run(const cli_args *args, char **out, int *json, char **extra, trifle_error *err);

#endif
