/* Command-line and environment parsing for `trifle` (SPEC §11.1, ERRATA minor 22).
 *
 * One pass over argv: options may stand before or after the command word, as `--name value` or
 * `--name=value`; `--` ends option parsing; an option given twice is a usage error. Which options
 * a command accepts is checked once the command is known. Environment variables fill the global
 * options the command line left unset (flag > environment > default). */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD(c) (1u << CLI_CMD_##c)
#define ALL_COMMANDS (~0u)
#define DATA_COMMANDS (CMD(TRACK) | CMD(ASSERT) | CMD(VALUES) | CMD(BEAM) | CMD(SCAN) | CMD(QUERY))
/* Commands that open a store, so a config file's source applies to them. */
#define STORE_COMMANDS (DATA_COMMANDS | CMD(SETUP) | CMD(KEYS) | CMD(MCP))

enum { TAKES_VALUE = 0, FLAG = 1 };

typedef struct optdef {
    const char *name;  /* without the leading "--" */
    int kind;          /* TAKES_VALUE or FLAG */
    unsigned commands; /* CMD() bits of the commands that accept it */
    const char *env;   /* environment variable, or NULL */
} optdef;

/* Indexed by enum cli_option. */
static const optdef optdefs[CLI_OPT__COUNT] = {
    [CLI_OPT_DRIVER] = {"driver", TAKES_VALUE, ALL_COMMANDS, "TRIFLE_DRIVER"},
    [CLI_OPT_GRANULARITIES] = {"granularities", TAKES_VALUE, ALL_COMMANDS, "TRIFLE_GRANULARITIES"},
    [CLI_OPT_TIME_ZONE] = {"time-zone", TAKES_VALUE, ALL_COMMANDS, "TRIFLE_TIME_ZONE"},
    [CLI_OPT_WEEK_START] = {"week-start", TAKES_VALUE, ALL_COMMANDS, "TRIFLE_WEEK_START"},
    [CLI_OPT_JOINED] = {"joined", TAKES_VALUE, ALL_COMMANDS, "TRIFLE_JOINED"},
    [CLI_OPT_SEPARATOR] = {"separator", TAKES_VALUE, ALL_COMMANDS, "TRIFLE_SEPARATOR"},
    [CLI_OPT_SYSTEM_TRACKING] = {"system-tracking", TAKES_VALUE, ALL_COMMANDS,
                                 "TRIFLE_SYSTEM_TRACKING"},
    [CLI_OPT_MAX_POINTS] = {"max-points", TAKES_VALUE, ALL_COMMANDS, "TRIFLE_MAX_POINTS"},
    /* The loader reads TRIFLE_DRIVER_PATH itself (after --driver-path, SPEC §7.1). */
    [CLI_OPT_DRIVER_PATH] = {"driver-path", TAKES_VALUE, ALL_COMMANDS, NULL},
    [CLI_OPT_PRETTY] = {"pretty", FLAG, ALL_COMMANDS, "TRIFLE_PRETTY"},
    [CLI_OPT_HELP] = {"help", FLAG, ALL_COMMANDS, NULL},
    /* serve: the server's configuration (TRIFLE_CONFIG, ERRATA minor 22). Commands that open a
     * store: the client's file of named sources (TRIFLE_CLI_CONFIG, issue #13); config_env(). */
    [CLI_OPT_CONFIG] = {"config", TAKES_VALUE, CMD(SERVE) | STORE_COMMANDS, "TRIFLE_CONFIG"},
    [CLI_OPT_LISTEN] = {"listen", TAKES_VALUE, CMD(SERVE), NULL},
    [CLI_OPT_KEY] = {"key", TAKES_VALUE, DATA_COMMANDS, NULL},
    [CLI_OPT_VALUES] = {"values", TAKES_VALUE, CMD(TRACK) | CMD(ASSERT) | CMD(BEAM), NULL},
    [CLI_OPT_AT] = {"at", TAKES_VALUE, CMD(TRACK) | CMD(ASSERT) | CMD(BEAM), NULL},
    [CLI_OPT_UNTRACKED] = {"untracked", FLAG, CMD(TRACK) | CMD(ASSERT), NULL},
    [CLI_OPT_FROM] = {"from", TAKES_VALUE, CMD(VALUES) | CMD(QUERY) | CMD(KEYS), NULL},
    [CLI_OPT_TO] = {"to", TAKES_VALUE, CMD(VALUES) | CMD(QUERY) | CMD(KEYS), NULL},
    [CLI_OPT_GRANULARITY] = {"granularity", TAKES_VALUE, CMD(VALUES) | CMD(QUERY) | CMD(KEYS),
                             NULL},
    [CLI_OPT_SKIP_BLANKS] = {"skip-blanks", FLAG, CMD(VALUES), NULL},
    [CLI_OPT_MODE] = {"mode", TAKES_VALUE, CMD(QUERY), NULL},
    [CLI_OPT_VALUE_PATH] = {"value-path", TAKES_VALUE, CMD(QUERY), NULL},
    [CLI_OPT_AGGREGATOR] = {"aggregator", TAKES_VALUE, CMD(QUERY), NULL},
    [CLI_OPT_SLICES] = {"slices", TAKES_VALUE, CMD(QUERY), NULL},
    [CLI_OPT_FORMAT] = {"format", TAKES_VALUE, CMD(VALUES) | CMD(SCAN) | CMD(QUERY) | CMD(KEYS),
                        NULL},
    [CLI_OPT_TRANSPOND_PATHS] = {"transpond-paths", TAKES_VALUE, CMD(QUERY), NULL},
    [CLI_OPT_EXPRESSION] = {"expression", TAKES_VALUE, CMD(QUERY), NULL},
    [CLI_OPT_RESPONSE] = {"response", TAKES_VALUE, CMD(QUERY), NULL},
    [CLI_OPT_SOURCE] = {"source", TAKES_VALUE, STORE_COMMANDS, "TRIFLE_SOURCE"},
};

static const char *const command_names[CLI_CMD__COUNT] = {
    [CLI_CMD_SETUP] = "setup",   [CLI_CMD_TRACK] = "track",     [CLI_CMD_ASSERT] = "assert",
    [CLI_CMD_VALUES] = "values", [CLI_CMD_BEAM] = "beam",       [CLI_CMD_SCAN] = "scan",
    [CLI_CMD_QUERY] = "query",   [CLI_CMD_KEYS] = "keys",       [CLI_CMD_SERVE] = "serve",
    [CLI_CMD_MCP] = "mcp",       [CLI_CMD_DRIVERS] = "drivers", [CLI_CMD_VERSION] = "version",
    [CLI_CMD_HELP] = "help",
};

/* The global options that set the trifle_config option of the same key (SPEC §11.1 → §1). */
static const int config_options[] = {
    CLI_OPT_TIME_ZONE, CLI_OPT_WEEK_START,      CLI_OPT_GRANULARITIES, CLI_OPT_JOINED,
    CLI_OPT_SEPARATOR, CLI_OPT_SYSTEM_TRACKING, CLI_OPT_MAX_POINTS,    CLI_OPT_DRIVER_PATH};

#define DEFAULT_DRIVER "sqlite:trifle.db"

void cli_args_free(cli_args *a)
{
    cli_profile_free(a->profile);
    a->profile = NULL;
}

int cli_flag(const cli_args *a, int option)
{
    return a->opt[option] != NULL && strcmp(a->opt[option], "true") == 0;
}

const char *cli_option_key(int option, char buf[CLI_OPTION_KEY_MAX])
{
    size_t i;

    (void)snprintf(buf, CLI_OPTION_KEY_MAX, "%s", optdefs[option].name);
    for (i = 0; buf[i] != '\0'; i++)
        if (buf[i] == '-')
            buf[i] = '_';
    return buf;
}

static int command_find(const char *word)
{
    int c;

    for (c = CLI_CMD_NONE + 1; c < CLI_CMD__COUNT; c++)
        if (strcmp(command_names[c], word) == 0)
            return c;
    return CLI_CMD_NONE;
}

/* Look up `--name` (n bytes of @p name); -1 when unknown. */
static int option_find(const char *name, size_t n)
{
    int i;

    for (i = 0; i < CLI_OPT__COUNT; i++)
        if (strlen(optdefs[i].name) == n && memcmp(optdefs[i].name, name, n) == 0)
            return i;
    return -1;
}

/* A flag's value: bare → "true"; `--flag=BOOL` → "true"/"false". */
static int flag_value(const char **out, const char *name, const char *text, trifle_error *err)
{
    int b = 0;

    if (text == NULL) {
        *out = "true";
        return 0;
    }
    if (strcmp(name, "help") == 0)
        return cli_error(err, CLI_USAGE, "option --help takes no value");
    if (trifle_parse_bool(&b, text) != 0)
        return cli_error(err, CLI_USAGE, "invalid value for --%s: %s", name, text);
    *out = b ? "true" : "false";
    return 0;
}

/* A word from the command line for a message, with any URL password masked: it may be a driver
 * URL given in the wrong place. */
static const char *masked(char *buf, size_t size, const char *word)
{
    (void)trifle_url_mask(buf, size, word);
    return buf;
}

/* One positional word after the command. */
static int positional(cli_args *a, const char *word, trifle_error *err)
{
    char shown[256];

    switch (a->command) {
    case CLI_CMD_TRACK:
    case CLI_CMD_ASSERT:
    case CLI_CMD_VALUES:
    case CLI_CMD_BEAM:
    case CLI_CMD_SCAN:
    case CLI_CMD_QUERY:
        if (a->key == NULL) {
            a->key = word;
            return 0;
        }
        break;
    case CLI_CMD_HELP:
        if (a->topic == CLI_CMD_NONE) {
            if ((a->topic = command_find(word)) == CLI_CMD_NONE)
                return cli_error(err, CLI_USAGE, "unknown command: %s",
                                 masked(shown, sizeof(shown), word));
            return 0;
        }
        break;
    default:
        break;
    }
    return cli_error(err, CLI_USAGE, "unexpected argument: %s", masked(shown, sizeof(shown), word));
}

/* Parse one argument that starts with '-'; *consumed is 1, or 2 when it took the next word. */
static int option(cli_args *a, const char *arg, const char *next, int *consumed, trifle_error *err)
{
    const char *name, *eq, *value = NULL;
    size_t n;
    int id;

    *consumed = 1;
    if (strcmp(arg, "-h") == 0) {
        name = "help";
        n = 4;
        eq = NULL;
    } else if (arg[1] != '-') {
        return cli_error(err, CLI_USAGE, "unknown option: %.*s", (int)strcspn(arg, "="), arg);
    } else {
        name = arg + 2;
        eq = strchr(name, '=');
        n = eq != NULL ? (size_t)(eq - name) : strlen(name);
    }
    /* Messages name the option but never echo its value: it may be a URL with a password. */
    id = option_find(name, n);
    if (id < 0)
        return cli_error(err, CLI_USAGE, "unknown option: --%.*s", (int)n, name);
    if (a->opt[id] != NULL)
        return cli_error(err, CLI_USAGE, "option --%s given more than once", optdefs[id].name);
    if (optdefs[id].kind == FLAG)
        return flag_value(&a->opt[id], optdefs[id].name, eq != NULL ? eq + 1 : NULL, err);
    if (eq != NULL) {
        value = eq + 1;
    } else if (next != NULL) {
        value = next;
        *consumed = 2;
    } else {
        return cli_error(err, CLI_USAGE, "option --%s requires a value", optdefs[id].name);
    }
    a->opt[id] = value;
    return 0;
}

/* The environment variable of option @p i for @p command: --config is the server's file for serve
 * (TRIFLE_CONFIG) and the client's file of named sources for every other command. */
static const char *config_env(int i, int command)
{
    if (i == CLI_OPT_CONFIG && command != CLI_CMD_SERVE)
        return "TRIFLE_CLI_CONFIG";
    return optdefs[i].env;
}

/* Fill unset global options from their environment variables (empty counts as unset). */
static int apply_environment(cli_args *a, trifle_error *err)
{
    int i;

    for (i = 0; i < CLI_OPT__COUNT; i++) {
        const char *v, *env = config_env(i, a->command);

        if (a->opt[i] != NULL || env == NULL)
            continue;
        if ((optdefs[i].commands & (1u << a->command)) == 0)
            continue;
        v = getenv(env);
        if (v == NULL || v[0] == '\0')
            continue;
        if (optdefs[i].kind == FLAG) {
            int b = 0;
            if (trifle_parse_bool(&b, v) != 0)
                return cli_error(err, TRIFLE_ECONFIG, "invalid %s: %s", env, v);
            v = b ? "true" : "false";
        }
        a->opt[i] = v;
    }
    return 0;
}

int cli_args_parse(cli_args *out, int argc, char **argv, trifle_error *err)
{
    char shown[256];
    int i, rc, only_positional = 0;

    memset(out, 0, sizeof(*out));
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int consumed = 1;

        if (!only_positional && strcmp(arg, "--") == 0) {
            only_positional = 1;
        } else if (!only_positional && arg[0] == '-' && arg[1] != '\0') {
            if ((rc = option(out, arg, i + 1 < argc ? argv[i + 1] : NULL, &consumed, err)) != 0)
                return rc;
        } else if (out->command == CLI_CMD_NONE) {
            if ((out->command = command_find(arg)) == CLI_CMD_NONE)
                return cli_error(err, CLI_USAGE, "unknown command: %s",
                                 masked(shown, sizeof(shown), arg));
        } else if ((rc = positional(out, arg, err)) != 0) {
            return rc;
        }
        i += consumed - 1;
    }
    if (out->opt[CLI_OPT_KEY] != NULL) {
        if (out->key != NULL)
            return cli_error(err, CLI_USAGE, "metric key given twice (positional and --key)");
        out->key = out->opt[CLI_OPT_KEY];
    }
    out->help = out->opt[CLI_OPT_HELP] != NULL;
    if (out->command == CLI_CMD_NONE) {
        if (out->help)
            return 0;
        return cli_error(err, CLI_USAGE, "missing command (see \"trifle help\")");
    }
    for (i = 0; i < CLI_OPT__COUNT; i++) {
        if (out->opt[i] != NULL && (optdefs[i].commands & (1u << out->command)) == 0)
            return cli_error(err, CLI_USAGE, "option --%s does not apply to %s", optdefs[i].name,
                             command_names[out->command]);
    }
    if (out->help)
        return 0;
    if ((rc = apply_environment(out, err)) != 0)
        return rc;
    if (out->command != CLI_CMD_SERVE &&
        (optdefs[CLI_OPT_SOURCE].commands & (1u << out->command)) != 0 &&
        (rc = cli_profile_apply(out, err)) != 0)
        return rc;
    out->pretty = cli_flag(out, CLI_OPT_PRETTY);
    return 0;
}

int cli_config_build(trifle_config **out, const cli_args *args, trifle_error *err)
{
    trifle_config *cfg = NULL;
    const char *driver;
    size_t i;
    int rc;

    *out = NULL;
    if ((rc = trifle_config_new(&cfg, err)) != 0)
        return rc;
    driver = args->opt[CLI_OPT_DRIVER] != NULL ? args->opt[CLI_OPT_DRIVER] : DEFAULT_DRIVER;
    if ((rc = trifle_config_set(cfg, "driver", driver, err)) != 0)
        goto done;
    for (i = 0; i < sizeof(config_options) / sizeof(config_options[0]); i++) {
        const char *v = args->opt[config_options[i]];
        char key[CLI_OPTION_KEY_MAX];
        if (v != NULL &&
            (rc = trifle_config_set(cfg, cli_option_key(config_options[i], key), v, err)) != 0)
            goto done;
    }
    /* Each command reports its own storage errors (SPEC §11.1). */
    if ((rc = trifle_config_set(cfg, "buffer.enabled", "false", err)) != 0)
        goto done;
    *out = cfg;
    cfg = NULL;
done:
    trifle_config_free(cfg);
    return rc;
}
