/* The client's configuration file (issue #13): named sources, so that a driver URL, its token and
 * its options are written once and picked with `--source NAME`.
 *
 *     source: prod                # used when --source is not given (optional)
 *     sources:
 *       local:
 *         driver: sqlite:stats.db
 *       prod:
 *         driver: https://stats.example.com/?source=main
 *         token: trf_oat_...      # exported as TRIFLE_TOKEN unless that is already set
 *         time_zone: Europe/Berlin
 *         granularities: [1h, 1d] # or "1h,1d"
 *
 * The file is `--config FILE`, else TRIFLE_CLI_CONFIG, else $XDG_CONFIG_HOME/trifle/config.yaml
 * (~/.config/trifle/config.yaml) when that exists. TRIFLE_CONFIG is not read here: it names the
 * configuration of `trifle serve`, a different file (tests/http/harness.py and ERRATA minor 22).
 * A source's settings fill only the options that neither the command line nor the environment
 * set (flag > environment > config file > default). The file is read with libyaml's document
 * loader (already a dependency of the server); errors name the file, line, column and the key. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#define PROFILE_MAX_FILE (1u << 20)

/* The options a source's settings fill, each under the option's key; `token` is handled apart. */
static const int settings[] = {CLI_OPT_DRIVER,          CLI_OPT_GRANULARITIES, CLI_OPT_TIME_ZONE,
                               CLI_OPT_WEEK_START,      CLI_OPT_JOINED,        CLI_OPT_SEPARATOR,
                               CLI_OPT_SYSTEM_TRACKING, CLI_OPT_MAX_POINTS,    CLI_OPT_DRIVER_PATH};

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

struct cli_profile {
    char *values[N_SETTINGS]; /* the selected source's settings, NULL when absent */
    char *path;               /* the file read, for messages */
};

void cli_profile_free(cli_profile *p)
{
    size_t i;

    if (p == NULL)
        return;
    for (i = 0; i < N_SETTINGS; i++)
        free(p->values[i]);
    free(p->path);
    free(p);
}

typedef struct loader {
    yaml_document_t doc;
    const char *file;
    trifle_error *err;
} loader;

static int fail_at(loader *l, const yaml_node_t *n, const char *what, const char *fmt,
                   const char *a)
{
    char msg[160];

    (void)snprintf(msg, sizeof(msg), fmt, a);
    return cli_error(l->err, TRIFLE_ECONFIG, "%s:%zu:%zu: %s: %s", l->file,
                     n != NULL ? n->start_mark.line + 1 : 1,
                     n != NULL ? n->start_mark.column + 1 : 1, what, msg);
}

static const char *scalar(const yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* The value of a setting as option text: a scalar, or (granularities) a list joined by ','. */
static int setting_text(char **out, loader *l, const yaml_node_t *v, const char *what)
{
    const char *s = scalar(v);
    yaml_node_item_t *item;
    cli_buf b = CLI_BUF_INIT;

    if (s != NULL) {
        if ((*out = strdup(s)) == NULL)
            return cli_error(l->err, TRIFLE_ENOMEM, "out of memory");
        return 0;
    }
    if (v->type != YAML_SEQUENCE_NODE || strstr(what, ".granularities") == NULL)
        return fail_at(l, v, what, "%s", "expected a scalar value");
    for (item = v->data.sequence.items.start; item < v->data.sequence.items.top; item++) {
        const yaml_node_t *e = yaml_document_get_node(&l->doc, *item);
        if (scalar(e) == NULL) {
            cli_buf_free(&b);
            return fail_at(l, e, what, "%s", "expected a list of granularities");
        }
        if (b.len > 0)
            cli_buf_putc(&b, ',');
        cli_buf_puts(&b, scalar(e));
    }
    if (b.failed || b.data == NULL) {
        cli_buf_free(&b);
        if (!b.failed)
            return fail_at(l, v, what, "%s", "empty list");
        return cli_error(l->err, TRIFLE_ENOMEM, "out of memory");
    }
    *out = b.data;
    return 0;
}

/* Read the mapping of source @p name into @p p; the token goes to *token. */
static int source_read(cli_profile *p, char **token, loader *l, const yaml_node_t *m,
                       const char *name)
{
    yaml_node_pair_t *pair;
    char what[192];

    (void)snprintf(what, sizeof(what), "sources.%s", name);
    if (m->type != YAML_MAPPING_NODE)
        return fail_at(l, m, what, "%s", "expected a mapping of settings");
    for (pair = m->data.mapping.pairs.start; pair < m->data.mapping.pairs.top; pair++) {
        const yaml_node_t *k = yaml_document_get_node(&l->doc, pair->key);
        const yaml_node_t *v = yaml_document_get_node(&l->doc, pair->value);
        const char *key = scalar(k);
        char **slot = NULL, option_key[CLI_OPTION_KEY_MAX];
        size_t i;
        int rc;

        if (key == NULL)
            return fail_at(l, k, what, "%s", "keys must be scalars");
        (void)snprintf(what, sizeof(what), "sources.%s.%s", name, key);
        if (strcmp(key, "token") == 0) {
            slot = token;
        } else {
            for (i = 0; i < N_SETTINGS; i++)
                if (strcmp(cli_option_key(settings[i], option_key), key) == 0)
                    slot = &p->values[i];
        }
        if (slot == NULL)
            return fail_at(l, k, what, "%s",
                           "unknown setting (driver, token, granularities, time_zone, week_start, "
                           "joined, separator, system_tracking, max_points, driver_path)");
        if (*slot != NULL)
            return fail_at(l, k, what, "%s", "given twice");
        if ((rc = setting_text(slot, l, v, what)) != 0)
            return rc;
    }
    return 0;
}

static int file_read(cli_buf *b, const char *path, trifle_error *err)
{
    char chunk[8192], reason[128] = "unknown error";
    FILE *f = fopen(path, "rb");
    size_t n;
    int e;

    if (f != NULL) {
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b->len <= PROFILE_MAX_FILE)
            cli_buf_append(b, chunk, n);
        e = ferror(f) ? errno : 0;
        (void)fclose(f);
        if (e == 0 && b->len > PROFILE_MAX_FILE)
            return cli_error(err, TRIFLE_ECONFIG, "config file %s: larger than 1 MiB", path);
        if (e == 0)
            return b->failed ? cli_error(err, TRIFLE_ENOMEM, "out of memory") : 0;
    } else {
        e = errno;
    }
    if (e != 0 && strerror_r(e, reason, sizeof(reason)) != 0)
        (void)snprintf(reason, sizeof(reason), "error %d", e);
    return cli_error(err, TRIFLE_ECONFIG, "cannot read config file %s: %s", path, reason);
}

/* Parse @p path and select @p wanted (NULL: the file's `source`, else none). *out stays NULL
 * when the file names no source to use. */
static int profile_load(cli_profile **out, char **token, const char *path, const char *wanted,
                        trifle_error *err)
{
    yaml_parser_t parser;
    loader l;
    cli_buf text = CLI_BUF_INIT, known = CLI_BUF_INIT;
    const yaml_node_t *root, *sources = NULL, *chosen = NULL, *active = NULL;
    yaml_node_pair_t *pair;
    cli_profile *p = NULL;
    int rc, have_doc = 0;

    *out = NULL;
    memset(&l, 0, sizeof(l));
    l.file = path;
    l.err = err;
    if ((rc = file_read(&text, path, err)) != 0)
        goto done;
    if (!yaml_parser_initialize(&parser)) {
        rc = cli_error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)(text.data ? text.data : ""),
                                 text.len);
    if (!yaml_parser_load(&parser, &l.doc)) {
        rc = cli_error(err, TRIFLE_ECONFIG, "%s:%zu:%zu: invalid YAML: %s", path,
                       parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                       parser.problem != NULL ? parser.problem : "parse error");
        yaml_parser_delete(&parser);
        goto done;
    }
    yaml_parser_delete(&parser);
    have_doc = 1;
    root = yaml_document_get_root_node(&l.doc);
    if (root == NULL) {
        rc = cli_error(err, TRIFLE_ECONFIG, "config file %s is empty", path);
        goto done;
    }
    if (root->type != YAML_MAPPING_NODE) {
        rc = fail_at(&l, root, "(top level)", "%s", "expected a mapping with sources");
        goto done;
    }
    for (pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++) {
        const yaml_node_t *k = yaml_document_get_node(&l.doc, pair->key);
        const yaml_node_t *v = yaml_document_get_node(&l.doc, pair->value);
        const char *key = scalar(k);

        if (key != NULL && strcmp(key, "sources") == 0 && v->type == YAML_MAPPING_NODE) {
            sources = v;
        } else if (key != NULL && strcmp(key, "source") == 0 && scalar(v) != NULL) {
            active = v;
        } else {
            rc = fail_at(&l, k, key != NULL ? key : "(top level)", "%s",
                         key != NULL && (strcmp(key, "sources") == 0 || strcmp(key, "source") == 0)
                             ? "wrong type (sources: a mapping of names; source: a name)"
                             : "unknown key (sources, source)");
            goto done;
        }
    }
    if (wanted == NULL && active != NULL)
        wanted = scalar(active);
    if (wanted == NULL) {
        rc = 0;
        goto done;
    }
    if (sources != NULL) {
        for (pair = sources->data.mapping.pairs.start; pair < sources->data.mapping.pairs.top;
             pair++) {
            const char *name = scalar(yaml_document_get_node(&l.doc, pair->key));
            if (name == NULL)
                continue;
            if (known.len > 0)
                cli_buf_puts(&known, ", ");
            cli_buf_puts(&known, name);
            if (strcmp(name, wanted) == 0)
                chosen = yaml_document_get_node(&l.doc, pair->value);
        }
    }
    if (chosen == NULL) {
        rc = cli_error(err, TRIFLE_ECONFIG, "unknown source \"%s\" in config file %s (known: %s)",
                       wanted, path, known.data != NULL ? known.data : "none");
        goto done;
    }
    if ((p = calloc(1, sizeof(*p))) == NULL || (p->path = strdup(path)) == NULL) {
        rc = cli_error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = source_read(p, token, &l, chosen, wanted)) != 0)
        goto done;
    *out = p;
    p = NULL;
done:
    cli_profile_free(p);
    if (have_doc)
        yaml_document_delete(&l.doc);
    cli_buf_free(&text);
    cli_buf_free(&known);
    return rc;
}

/* $XDG_CONFIG_HOME/trifle/config.yaml or ~/.config/trifle/config.yaml, when it exists. */
static int default_path(char *buf, size_t size)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    FILE *f;
    int n;

    if (xdg != NULL && xdg[0] == '/')
        n = snprintf(buf, size, "%s/trifle/config.yaml", xdg);
    else if (home != NULL && home[0] != '\0')
        n = snprintf(buf, size, "%s/.config/trifle/config.yaml", home);
    else
        return -1;
    if (n < 0 || (size_t)n >= size)
        return -1;
    if ((f = fopen(buf, "rb")) == NULL)
        return -1;
    (void)fclose(f);
    return 0;
}

int cli_profile_apply(cli_args *a, trifle_error *err)
{
    const char *path = a->opt[CLI_OPT_CONFIG], *wanted = a->opt[CLI_OPT_SOURCE];
    char fallback[4096];
    char *token = NULL;
    cli_profile *p = NULL;
    size_t i;
    int rc;

    if (path == NULL && default_path(fallback, sizeof(fallback)) == 0)
        path = fallback;
    if (path == NULL) {
        if (wanted != NULL)
            return cli_error(err, CLI_USAGE,
                             "--source %s needs a config file (--config FILE or TRIFLE_CLI_CONFIG)",
                             wanted);
        return 0;
    }
    if ((rc = profile_load(&p, &token, path, wanted, err)) != 0)
        goto done;
    if (p == NULL)
        goto done;
    for (i = 0; i < N_SETTINGS; i++)
        if (a->opt[settings[i]] == NULL)
            a->opt[settings[i]] = p->values[i];
    /* The HTTP driver reads its token from TRIFLE_TOKEN, which keeps it out of the URL; a token
     * already in the environment wins, as every environment variable wins over the file. */
    if (token != NULL && (getenv("TRIFLE_TOKEN") == NULL || getenv("TRIFLE_TOKEN")[0] == '\0') &&
        setenv("TRIFLE_TOKEN", token, 1) != 0)
        rc = cli_error(err, TRIFLE_ENOMEM, "out of memory");
    a->profile = p;
    p = NULL;
done:
    free(token);
    cli_profile_free(p);
    return rc;
}
