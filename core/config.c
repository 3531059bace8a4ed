/* Library configuration (SPEC §1). Every option is set from text by its YAML name, so the CLI,
 * environment variables and the YAML loader share one validator and one set of messages. Each
 * option keeps its normalised text for trifle_config_get(). */
#include "config_int.h"
#include "journal_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_int.h"
#include "error_int.h"
#include "trifle/driver.h"
#include "trifle/time.h"

static const char *const default_granularities[] = {"1m", "1h", "1d", "1w", "1mo", "1q", "1y"};

enum opt_kind { K_BOOL, K_INT, K_SPECIAL };

typedef struct opt_def {
    const char *name;
    enum opt_kind kind;
    int buffer; /* 1: a buffer.* option (its own error message) */
    int64_t min, max;
    size_t offset;     /* of the int64_t / int field for K_INT / K_BOOL */
    const char *deflt; /* default text */
} opt_def;

#define OFF(f) offsetof(trifle_config, f)

/* Index order is the order of cfg->text[]. */
static const opt_def opts[] = {
    {"driver", K_SPECIAL, 0, 0, 0, 0, NULL},
    {"time_zone", K_SPECIAL, 0, 0, 0, 0, "UTC"},
    {"week_start", K_SPECIAL, 0, 0, 0, 0, "monday"},
    {"granularities", K_SPECIAL, 0, 0, 0, 0, "1m,1h,1d,1w,1mo,1q,1y"},
    {"joined", K_SPECIAL, 0, 0, 0, 0, "full"},
    {"separator", K_SPECIAL, 0, 0, 0, 0, "::"},
    {"system_tracking", K_BOOL, 0, 0, 1, OFF(system_tracking), "true"},
    {"max_points", K_INT, 0, 1, 10000000, OFF(max_points), "100000"},
    {"connections", K_INT, 0, 1, 64, OFF(connections), "1"},
    {"driver_path", K_SPECIAL, 0, 0, 0, 0, NULL},
    {"buffer.enabled", K_BOOL, 1, 0, 1, OFF(buffer.enabled), "true"},
    {"buffer.duration_ms", K_INT, 1, 0, 86400000, OFF(buffer.duration_ms), "1000"},
    {"buffer.size", K_INT, 1, 1, 1000000, OFF(buffer.size), "256"},
    {"buffer.aggregate", K_BOOL, 1, 0, 1, OFF(buffer.aggregate), "true"},
    {"buffer.async", K_BOOL, 1, 0, 1, OFF(buffer.async), "true"},
    {"buffer.max_pending", K_INT, 1, 1, 100000000, OFF(buffer.max_pending), "100000"},
    {"buffer.full_policy", K_SPECIAL, 1, 0, 0, 0, "block"},
    {"buffer.block_timeout_ms", K_INT, 1, 0, 3600000, OFF(buffer.block_timeout_ms), "30000"},
    {"buffer.retry_initial_ms", K_INT, 1, 1, 60000, OFF(buffer.retry_initial_ms), "100"},
    {"buffer.retry_max_ms", K_INT, 1, 1, 3600000, OFF(buffer.retry_max_ms), "30000"},
    {"buffer.close_timeout_ms", K_INT, 1, 0, 3600000, OFF(buffer.close_timeout_ms), "10000"},
    {"buffer.batch_items", K_INT, 1, 1, 1000000, OFF(buffer.batch_items), "1000"},
    {"buffer.journal", K_SPECIAL, 1, 0, 0, 0, NULL},
    {"buffer.journal_sync", K_SPECIAL, 1, 0, 0, 0, "interval:5"},
    {"buffer.journal_segment_bytes", K_INT, 1, 4096, (int64_t)1 << 40,
     OFF(buffer.journal_segment_bytes), "67108864"},
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

_Static_assert(N_OPTS <= TRIFLE__CONFIG_MAX_OPTS, "config text slots");

static int find_opt(const char *name)
{
    size_t i;

    for (i = 0; i < N_OPTS; i++)
        if (strcmp(opts[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int set_text(trifle_config *cfg, int idx, const char *text, trifle_error *err)
{
    char *copy = NULL;

    if (text != NULL && (copy = trifle__strdup(text)) == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    trifle__free(cfg->text[idx]);
    cfg->text[idx] = copy;
    return 0;
}

int trifle_parse_bool(int *out, const char *text)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    size_t i;

    if (text == NULL)
        return TRIFLE_EINVAL;
    for (i = 0; i < 4; i++) {
        if (trifle__strcasecmp(text, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (trifle__strcasecmp(text, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return TRIFLE_EINVAL;
}

int trifle__strcasecmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        int ca = tolower((unsigned char)*a), cb = tolower((unsigned char)*b);
        if (ca != cb || ca == 0)
            return ca - cb;
    }
}

/* Strict decimal integer: optional '-', digits only, no spaces, fits int64. */
static int parse_int(const char *text, int64_t *out)
{
    char *end;
    long long v;

    if (text == NULL || *text == '\0' || isspace((unsigned char)*text) || *text == '+')
        return -1;
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int option_error(trifle_error *err, const opt_def *o, const char *value)
{
    if (o->buffer)
        return trifle__error(err, TRIFLE_ECONFIG, "invalid buffer option %s: %s",
                             o->name + strlen("buffer."), value);
    return trifle__error(err, TRIFLE_ECONFIG, "invalid option %s: %s", o->name, value);
}

int trifle__config_parse_mode(const char *text, int *mode)
{
    if (trifle__strcasecmp(text, "full") == 0)
        *mode = TRIFLE_ID_FULL;
    else if (trifle__strcasecmp(text, "partial") == 0)
        *mode = TRIFLE_ID_PARTIAL;
    else if (trifle__strcasecmp(text, "separated") == 0 || trifle__strcasecmp(text, "none") == 0 ||
             trifle__strcasecmp(text, "null") == 0)
        *mode = TRIFLE_ID_SEPARATED;
    else
        return TRIFLE_ECONFIG;
    return 0;
}

const char *trifle__config_mode_name(int mode)
{
    return mode == TRIFLE_ID_PARTIAL     ? "partial"
           : mode == TRIFLE_ID_SEPARATED ? "separated"
                                         : "full";
}

static void free_granularities(trifle_granularity *g)
{
    trifle__free(g);
}

int trifle_config_set_granularities(trifle_config *cfg, const char *const *list, size_t n,
                                    trifle_error *err)
{
    trifle_granularity *g = NULL;
    size_t i, j, kept = 0, textlen = 0;
    char *text = NULL, *p;
    int rc = 0;

    if (cfg == NULL || (list == NULL && n > 0))
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument");
    if (n == 0)
        return trifle__error(err, TRIFLE_ECONFIG, "granularities must not be empty");
    if ((g = trifle__calloc(n, sizeof(*g))) == NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    for (i = 0; i < n; i++) {
        trifle_granularity one;
        int dup = 0;

        if (list[i] == NULL || trifle_granularity_parse(&one, list[i], NULL) != 0) {
            rc = trifle__error(err, TRIFLE_ECONFIG,
                               "invalid granularity \"%s\" in granularities[%zu]",
                               list[i] ? list[i] : "", i);
            goto done;
        }
        for (j = 0; j < kept; j++)
            if (strcmp(g[j].label, one.label) == 0)
                dup = 1; /* exact duplicates are removed, keeping the first */
        if (!dup) {
            g[kept++] = one;
            textlen += strlen(one.label) + 1;
        }
    }
    if ((text = trifle__malloc(textlen + 1)) == NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    for (p = text, i = 0; i < kept; i++) {
        size_t l = strlen(g[i].label);
        if (i > 0)
            *p++ = ',';
        memcpy(p, g[i].label, l);
        p += l;
    }
    *p = '\0';
    free_granularities(cfg->grans);
    cfg->grans = g;
    cfg->n_grans = kept;
    g = NULL;
    trifle__free(cfg->text[find_opt("granularities")]);
    cfg->text[find_opt("granularities")] = text;
    text = NULL;
done:
    trifle__free(g);
    trifle__free(text);
    return rc;
}

/* "1h, 1d ,1w" → trimmed items. An empty text or an empty item is an invalid granularity. */
static int set_granularity_text(trifle_config *cfg, const char *value, trifle_error *err)
{
    char *copy = trifle__strdup(value), *s;
    const char **items = NULL;
    size_t n = 0, cap = 0;
    int rc;

    if (copy == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    s = copy;
    if (*value == '\0') {
        trifle__free(copy);
        return trifle_config_set_granularities(cfg, NULL, 0, err);
    }
    for (;;) {
        char *comma = strchr(s, ',');
        char *b = s, *e = comma ? comma : s + strlen(s);

        while (b < e && isspace((unsigned char)*b))
            b++;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        *e = '\0';
        if (n == cap) {
            const char **grown = trifle__reallocarray(items, cap ? cap * 2 : 8, sizeof(*items));
            if (grown == NULL) {
                rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
                goto done;
            }
            items = grown;
            cap = cap ? cap * 2 : 8;
        }
        items[n++] = b;
        if (comma == NULL)
            break;
        s = comma + 1;
    }
    rc = trifle_config_set_granularities(cfg, items, n, err);
done:
    trifle__free(items);
    trifle__free(copy);
    return rc;
}

static int set_special(trifle_config *cfg, int idx, const char *value, trifle_error *err)
{
    const char *name = opts[idx].name;

    if (strcmp(name, "driver") == 0) {
        if (*value == '\0')
            return trifle__error(err, TRIFLE_ECONFIG, "driver required");
        return set_text(cfg, idx, value, err);
    }
    if (strcmp(name, "driver_path") == 0)
        return set_text(cfg, idx, *value ? value : NULL, err);
    if (strcmp(name, "time_zone") == 0) {
        trifle_zone *z = NULL;
        int rc = trifle_zone_open(&z, value, err);
        trifle_zone_free(z);
        return rc != 0 ? rc : set_text(cfg, idx, value, err);
    }
    if (strcmp(name, "week_start") == 0) {
        int wd;
        static const char *const days[] = {"sunday",   "monday", "tuesday", "wednesday",
                                           "thursday", "friday", "saturday"};
        if (trifle_weekday_parse(&wd, value, err) != 0)
            return TRIFLE_ECONFIG;
        cfg->week_start = wd;
        return set_text(cfg, idx, days[wd], err);
    }
    if (strcmp(name, "granularities") == 0)
        return set_granularity_text(cfg, value, err);
    if (strcmp(name, "joined") == 0) {
        int mode;
        if (trifle__config_parse_mode(value, &mode) != 0)
            return trifle__error(err, TRIFLE_ECONFIG, "invalid identifier mode: %s", value);
        cfg->joined = mode;
        return set_text(cfg, idx, trifle__config_mode_name(mode), err);
    }
    if (strcmp(name, "separator") == 0) {
        size_t len = strlen(value);
        if (len < 1 || len > 16)
            return trifle__error(err, TRIFLE_ECONFIG,
                                 "separator must be 1 to 16 bytes without NUL");
        return set_text(cfg, idx, value, err);
    }
    if (strcmp(name, "buffer.journal") == 0) {
        if (value[0] != '\0' && strlen(value) > 4000)
            return option_error(err, &opts[idx], "path longer than 4000 bytes");
        return set_text(cfg, idx, value[0] == '\0' ? NULL : value, err);
    }
    if (strcmp(name, "buffer.journal_sync") == 0) {
        int64_t ms = 0;
        char text[32];
        if (trifle__strcasecmp(value, "always") == 0) {
            cfg->buffer.journal_sync = TRIFLE__JSYNC_ALWAYS;
        } else if (trifle__strcasecmp(value, "none") == 0) {
            cfg->buffer.journal_sync = TRIFLE__JSYNC_NONE;
        } else if (strncmp(value, "interval:", 9) == 0 && parse_int(value + 9, &ms) == 0 &&
                   ms >= 1 && ms <= 60000) {
            cfg->buffer.journal_sync = TRIFLE__JSYNC_INTERVAL;
        } else {
            return option_error(err, &opts[idx], value);
        }
        cfg->buffer.journal_interval_ms = ms;
        if (cfg->buffer.journal_sync == TRIFLE__JSYNC_INTERVAL)
            (void)snprintf(text, sizeof(text), "interval:%lld", (long long)ms);
        else
            (void)snprintf(text, sizeof(text), "%s",
                           cfg->buffer.journal_sync == TRIFLE__JSYNC_ALWAYS ? "always" : "none");
        return set_text(cfg, idx, text, err);
    }
    if (strcmp(name, "buffer.full_policy") == 0) {
        if (trifle__strcasecmp(value, "block") == 0)
            cfg->buffer.full_policy = TRIFLE__FULL_BLOCK;
        else if (trifle__strcasecmp(value, "error") == 0)
            cfg->buffer.full_policy = TRIFLE__FULL_ERROR;
        else
            return option_error(err, &opts[idx], value);
        return set_text(cfg, idx, cfg->buffer.full_policy == TRIFLE__FULL_BLOCK ? "block" : "error",
                        err);
    }
    return trifle__error(err, TRIFLE_ERROR, "unhandled option %s", name);
}

int trifle_config_set(trifle_config *cfg, const char *name, const char *value, trifle_error *err)
{
    int idx;
    const opt_def *o;

    if (cfg == NULL || name == NULL || value == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument");
    idx = find_opt(name);
    if (idx < 0)
        return trifle__error(err, TRIFLE_ECONFIG, "unknown configuration key %s", name);
    o = &opts[idx];
    switch (o->kind) {
    case K_BOOL: {
        int b;
        if (trifle_parse_bool(&b, value) != 0)
            return option_error(err, o, value);
        if (set_text(cfg, idx, b ? "true" : "false", err) != 0)
            return TRIFLE_ENOMEM;
        *(int *)((char *)cfg + o->offset) = b;
        return 0;
    }
    case K_INT: {
        int64_t v;
        char text[32];
        if (parse_int(value, &v) != 0 || v < o->min || v > o->max)
            return option_error(err, o, value);
        (void)snprintf(text, sizeof(text), "%" PRId64, v);
        if (set_text(cfg, idx, text, err) != 0)
            return TRIFLE_ENOMEM;
        *(int64_t *)((char *)cfg + o->offset) = v;
        return 0;
    }
    case K_SPECIAL:
    default:
        return set_special(cfg, idx, value, err);
    }
}

const char *trifle_config_get(const trifle_config *cfg, const char *name)
{
    int idx;

    if (cfg == NULL || name == NULL || (idx = find_opt(name)) < 0)
        return NULL;
    return cfg->text[idx];
}

size_t trifle_config_granularity_count(const trifle_config *cfg)
{
    return cfg == NULL ? 0 : cfg->n_grans;
}

const char *trifle_config_granularity(const trifle_config *cfg, size_t i)
{
    return cfg == NULL || i >= cfg->n_grans ? NULL : cfg->grans[i].label;
}

int trifle_config_new(trifle_config **out, trifle_error *err)
{
    trifle_config *cfg;
    size_t i;
    int rc = 0;

    if (out == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument");
    *out = NULL;
    if ((cfg = trifle__calloc(1, sizeof(*cfg))) == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    cfg->week_start = TRIFLE_MONDAY;
    cfg->joined = TRIFLE_ID_FULL;
    for (i = 0; i < N_OPTS && rc == 0; i++) {
        if (opts[i].deflt == NULL)
            continue;
        if (strcmp(opts[i].name, "granularities") == 0)
            rc = trifle_config_set_granularities(
                cfg, default_granularities,
                sizeof(default_granularities) / sizeof(default_granularities[0]), err);
        else if (strcmp(opts[i].name, "time_zone") == 0)
            rc = set_text(cfg, (int)i, opts[i].deflt, err); /* UTC needs no validation */
        else
            rc = trifle_config_set(cfg, opts[i].name, opts[i].deflt, err);
    }
    if (rc != 0) {
        trifle_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

void trifle_config_free(trifle_config *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    for (i = 0; i < TRIFLE__CONFIG_MAX_OPTS; i++)
        trifle__free(cfg->text[i]);
    free_granularities(cfg->grans);
    trifle__free(cfg);
}

void trifle_config_set_note_handler(trifle_config *cfg, trifle_note_fn fn, void *payload)
{
    if (cfg == NULL)
        return;
    cfg->buffer.note_fn = fn;
    cfg->buffer.note_payload = fn != NULL ? payload : NULL;
}

int trifle_config_dup(trifle_config **out, const trifle_config *cfg, trifle_error *err)
{
    trifle_config *c;
    size_t i;

    if (out == NULL || cfg == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument");
    *out = NULL;
    if ((c = trifle__malloc(sizeof(*c))) == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    *c = *cfg;
    memset(c->text, 0, sizeof(c->text));
    c->grans = NULL;
    for (i = 0; i < TRIFLE__CONFIG_MAX_OPTS; i++)
        if (cfg->text[i] != NULL && (c->text[i] = trifle__strdup(cfg->text[i])) == NULL)
            goto oom;
    if ((c->grans = trifle__calloc(cfg->n_grans, sizeof(*c->grans))) == NULL)
        goto oom;
    memcpy(c->grans, cfg->grans, cfg->n_grans * sizeof(*c->grans));
    *out = c;
    return 0;
oom:
    trifle_config_free(c);
    return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
}

int trifle__config_validate(const trifle_config *cfg, trifle_error *err)
{
    const trifle__buffer_options *b = &cfg->buffer;
    char v[32];

    if (cfg->text[find_opt("driver")] == NULL)
        return trifle__error(err, TRIFLE_ECONFIG, "driver required");
    if (b->max_pending < b->size) {
        (void)snprintf(v, sizeof(v), "%" PRId64, b->max_pending);
        return trifle__error(err, TRIFLE_ECONFIG, "invalid buffer option max_pending: %s", v);
    }
    if (b->retry_max_ms < b->retry_initial_ms) {
        (void)snprintf(v, sizeof(v), "%" PRId64, b->retry_max_ms);
        return trifle__error(err, TRIFLE_ECONFIG, "invalid buffer option retry_max_ms: %s", v);
    }
    if (cfg->text[find_opt("buffer.journal")] != NULL && !b->enabled)
        return trifle__error(err, TRIFLE_ECONFIG,
                             "invalid buffer option journal: the journal needs buffer.enabled");
    return 0;
}
