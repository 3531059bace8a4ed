/* Plain-text usage for `trifle help [COMMAND]` and `--help`/`-h` (SPEC §11.4, ERRATA minor 22). */
#include "cli.h"

static const char overview[] =
    "Usage: trifle [OPTIONS] COMMAND [COMMAND OPTIONS]\n"
    "\n"
    "Time-series counters bucketed by granularity in an IANA time zone, kept in your own\n"
    "database through a driver plugin. Output is one JSON document on stdout; errors are one\n"
    "JSON line on stderr.\n"
    "\n"
    "Commands:\n"
    "  setup     create the storage tables/indexes (idempotent)\n"
    "  track     add values to the buckets of a metric key\n"
    "  assert    replace values in the buckets of a metric key\n"
    "  values    print the series of a metric key\n"
    "  beam      store the status ping of a metric key\n"
    "  scan      print the status ping of a metric key\n"
    "  query     aggregate or format a series (as POST /api/v1/metrics/query)\n"
    "  keys      list the keys written in a window, with their write counts\n"
    "  serve     run the HTTP server\n"
    "  mcp       run a Model Context Protocol server on stdin/stdout\n"
    "  drivers   list the driver plugins found\n"
    "  version   print the library and driver ABI versions\n"
    "  help      print this text, or the usage of one command\n"
    "\n"
    "Global options (before or after the command; flag, then environment, then default):\n"
    "  --driver URL            TRIFLE_DRIVER           sqlite:trifle.db\n"
    "  --granularities LIST    TRIFLE_GRANULARITIES    1m,1h,1d,1w,1mo,1q,1y\n"
    "  --time-zone TZ          TRIFLE_TIME_ZONE        UTC\n"
    "  --week-start DAY        TRIFLE_WEEK_START       monday\n"
    "  --joined MODE           TRIFLE_JOINED           full (partial, separated)\n"
    "  --separator SEP         TRIFLE_SEPARATOR        ::\n"
    "  --system-tracking BOOL  TRIFLE_SYSTEM_TRACKING  true\n"
    "  --max-points N          TRIFLE_MAX_POINTS       100000\n"
    "  --driver-path DIRS      TRIFLE_DRIVER_PATH      colon-separated plugin directories\n"
    "  --pretty                TRIFLE_PRETTY           indent JSON output by two spaces\n"
    "  --config FILE           TRIFLE_CLI_CONFIG       file of named sources (YAML; default\n"
    "                                                  ~/.config/trifle/config.yaml if present)\n"
    "  --source NAME           TRIFLE_SOURCE           the source of the config file to use\n"
    "  -h, --help                                      print usage and exit\n"
    "\n"
    "A remote server is a driver URL too: --driver https://HOST/?source=ID, with the token in\n"
    "TRIFLE_TOKEN (or a config file's `token:`), needs the http driver plugin.\n"
    "\n"
    "Options take their value as `--name value` or `--name=value`; `--` ends the options.\n"
    "Times: now, @UNIX, RFC 3339 with offset, or YYYY-MM-DD[THH:MM[:SS]] in --time-zone.\n"
    "Exit codes: 0 ok, 1 runtime, 2 usage, 3 invalid input, 4 configuration, 5 driver missing.\n"
    "\n"
    "Run \"trifle help COMMAND\" for the options of one command.\n";

static const char setup_text[] =
    "Usage: trifle setup [GLOBAL OPTIONS]\n"
    "\n"
    "Create the tables and indexes the driver needs, if missing. Safe to run again.\n"
    "Prints {\"status\":\"ok\",\"driver\":\"sqlite\",\"description\":\"SQLiteDriver(J)\"}.\n"
    "\n"
    "Example:\n"
    "  trifle --driver sqlite:stats.db setup\n";

static const char track_text[] =
    "Usage: trifle track KEY --values JSON [--at TIME] [--untracked] [GLOBAL OPTIONS]\n"
    "\n"
    "Add the values to the bucket of every configured granularity (and count the write\n"
    "under __system__key__ unless --system-tracking is false). Prints {\"status\":\"ok\"}.\n"
    "\n"
    "  KEY, --key KEY    metric key\n"
    "  --values V        JSON object of numbers, @FILE to read it from a file, - for stdin\n"
    "  --at TIME         instant of the event (default now)\n"
    "  --untracked       count the write under __untracked__ in the system record\n"
    "\n"
    "Example:\n"
    "  trifle track event::logs --values '{\"count\":1,\"duration\":{\"db\":0.25}}'\n";

static const char assert_text[] =
    "Usage: trifle assert KEY --values JSON [--at TIME] [--untracked] [GLOBAL OPTIONS]\n"
    "\n"
    "Like track, but the given leaves replace the stored ones (other leaves are kept).\n"
    "Prints {\"status\":\"ok\"}.\n"
    "\n"
    "  KEY, --key KEY    metric key\n"
    "  --values V        JSON object of numbers, @FILE, or - for stdin\n"
    "  --at TIME         instant (default now)\n"
    "  --untracked       count the write under __untracked__ in the system record\n"
    "\n"
    "Example:\n"
    "  trifle assert queue::depth --values '{\"jobs\":42}' --at 2026-01-15T10:20:00Z\n";

static const char values_text[] =
    "Usage: trifle values KEY --from TIME --to TIME --granularity G [--skip-blanks]\n"
    "                     [GLOBAL OPTIONS]\n"
    "\n"
    "Print the buckets of KEY between the two instants as {\"at\":[...],\"values\":[...]},\n"
    "bucket times in RFC 3339 in --time-zone. G need not be a configured granularity.\n"
    "\n"
    "  KEY, --key KEY    metric key (__system__key__ reads the write counts)\n"
    "  --from TIME       first instant (its bucket is included)\n"
    "  --to TIME         last instant (its bucket is included)\n"
    "  --granularity G   bucket size: 15m, 1h, 1d, 1w, 1mo, 1q, 1y, ...\n"
    "  --skip-blanks     leave out empty buckets\n"
    "  --format F        json (default), table or csv: a column per leaf path\n"
    "\n"
    "Example:\n"
    "  trifle values event::logs --from 2026-01-15 --to now --granularity 1h --pretty\n";

static const char beam_text[] =
    "Usage: trifle beam KEY --values JSON [--at TIME] [GLOBAL OPTIONS]\n"
    "\n"
    "Store the status ping of KEY, replacing the previous one (not bucketed).\n"
    "Prints {\"status\":\"ok\"}.\n"
    "\n"
    "  KEY, --key KEY    metric key\n"
    "  --values V        JSON object of numbers, @FILE, or - for stdin\n"
    "  --at TIME         instant of the ping (default now)\n"
    "\n"
    "Example:\n"
    "  trifle beam worker::1 --values '{\"load\":0.75,\"jobs\":3}'\n";

static const char scan_text[] =
    "Usage: trifle scan KEY [--format json|table|csv] [GLOBAL OPTIONS]\n"
    "\n"
    "Print the status ping of KEY: {\"at\":\"2026-01-15T10:20:07Z\",\"values\":{...}}, or\n"
    "{\"at\":null,\"values\":{}} when there is none. table and csv print `at` and a column\n"
    "per leaf path.\n"
    "\n"
    "Example:\n"
    "  trifle scan worker::1\n";

static const char query_text[] =
    "Usage: trifle query KEY --from TIME --to TIME --granularity G --mode MODE\n"
    "                    [--value-path P] [--aggregator A] [--slices N]\n"
    "                    [--transpond-paths A,B --expression E --response P]\n"
    "                    [--format json|table|csv] [GLOBAL OPTIONS]\n"
    "\n"
    "Read the series and aggregate or format it as POST /api/v1/metrics/query does.\n"
    "\n"
    "  --mode MODE             aggregate, timeline or category\n"
    "  --value-path P          the path to report (e.g. count, duration.db)\n"
    "  --aggregator A          aggregate mode: sum, mean, min or max\n"
    "  --slices N              split the timeframe into N slices (default 1)\n"
    "  --transpond-paths A,B   paths the expression reads, bound to a, b, ...\n"
    "  --expression E          arithmetic on them, e.g. \"a / b\"\n"
    "  --response P            path the expression result is written to\n"
    "  --format F              json (the data object, default), table or csv\n"
    "\n"
    "Example:\n"
    "  trifle query event::logs --from 2026-01-15 --to 2026-01-16 --granularity 1h \\\n"
    "      --mode aggregate --value-path count --aggregator sum\n";

static const char keys_text[] =
    "Usage: trifle keys --from TIME --to TIME --granularity G [--format json|table|csv]\n"
    "                   [GLOBAL OPTIONS]\n"
    "\n"
    "List the metric keys written between the two instants with their write counts, read\n"
    "from the system key (__system__key__) at granularity G, sorted by key:\n"
    "{\"keys\":[{\"key\":\"event::logs\",\"count\":3}]}. table and csv print key and count.\n"
    "\n"
    "Example:\n"
    "  trifle keys --from 2026-01-15 --to 2026-01-16 --granularity 1d --format table\n";

static const char mcp_text[] =
    "Usage: trifle mcp [GLOBAL OPTIONS]\n"
    "\n"
    "Serve the Model Context Protocol over stdin/stdout (newline-delimited JSON-RPC 2.0) for\n"
    "AI agents: tools list_metrics, fetch_series, aggregate_series, format_timeline,\n"
    "format_category and write_metric; resources trifle://source, trifle://metrics and\n"
    "trifle://metrics/{key}. Works on any driver URL. See docs/mcp.md.\n"
    "\n"
    "Example:\n"
    "  trifle mcp --driver sqlite:/var/lib/app/stats.db\n";

static const char serve_text[] =
    "Usage: trifle serve [--config FILE] [--listen ADDR]\n"
    "\n"
    "Run the HTTP API. Without --config (or TRIFLE_CONFIG) it serves ./trifle-data/trifle.db\n"
    "on 127.0.0.1:8080 with a generated token.\n";

static const char drivers_text[] =
    "Usage: trifle drivers [--driver-path DIRS] [GLOBAL OPTIONS]\n"
    "\n"
    "List the driver plugins found in the search path with their version, ABI, URL schemes\n"
    "and capabilities; a plugin that fails to load is listed with its error.\n"
    "\n"
    "Example:\n"
    "  trifle drivers --pretty\n";

static const char version_text[] =
    "Usage: trifle version\n"
    "\n"
    "Print the library version and the driver ABI version:\n"
    "{\"version\":\"<major.minor.patch>\",\"driver_abi\":\"<major.minor>\"}.\n";

static const char help_text[] =
    "Usage: trifle help [COMMAND]\n"
    "\n"
    "Print the overview, or the usage of COMMAND. `trifle COMMAND --help` does the same.\n";

const char *cli_help_text(int command)
{
    static const char *const texts[CLI_CMD__COUNT] = {
        [CLI_CMD_NONE] = overview,        [CLI_CMD_SETUP] = setup_text,
        [CLI_CMD_TRACK] = track_text,     [CLI_CMD_ASSERT] = assert_text,
        [CLI_CMD_VALUES] = values_text,   [CLI_CMD_BEAM] = beam_text,
        [CLI_CMD_SCAN] = scan_text,       [CLI_CMD_QUERY] = query_text,
        [CLI_CMD_KEYS] = keys_text,       [CLI_CMD_MCP] = mcp_text,
        [CLI_CMD_SERVE] = serve_text,     [CLI_CMD_DRIVERS] = drivers_text,
        [CLI_CMD_VERSION] = version_text, [CLI_CMD_HELP] = help_text,
    };

    if (command < 0 || command >= CLI_CMD__COUNT)
        command = CLI_CMD_NONE;
    return texts[command];
}
