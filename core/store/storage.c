/* A direct connection to one driver (include/trifle/storage.h): URL → plugin → open, and thin
 * checked wrappers around the operation table; what `get` and `scan` emit is collected by the sink
 * (sink.c).
 *
 * Which plugin serves a URL: trifle_storage_options.driver when set (a name or a file), else the
 * built-in scheme map of SPEC §7.1, else a plugin named exactly like the (lower-cased) scheme if
 * one is in the search path. The last rule lets third-party drivers work without a core change:
 * `trifle_clickhouse.so` serves `clickhouse://...`. Other schemes are `unknown driver: <scheme>`.
 */
#include "storage_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_int.h"
#include "error_int.h"
#include "loader_int.h"
#include "sink_int.h"
#include "struct_int.h"
#include "trifle/storage.h"
#include "url_int.h"

/* trifle_storage_options as libtrifle 1.0 had it: the smallest struct_size accepted */
#define TRIFLE__STORAGE_OPTIONS_SIZE_1 TRIFLE__SIZE_THROUGH(trifle_storage_options, driver)

struct trifle_storage {
    const trifle_driver *drv; /* the loader's validated copy */
    trifle_conn *conn;
    int mode;
    int system_tracking;
    char separator[17];
    trifle_sink sink;
};

/* ---------------------------------------------------------------------------------------------
 * Errors of driver calls */

/* The driver's error for a failed call, with err->driver set; a driver that returned a code but
 * no message still gives one naming the operation. */
static int driver_error(const trifle_storage *st, int rc, const trifle_error *e, const char *op,
                        trifle_error *err)
{
    const char *name = st->drv->name;

    if (rc > 0)
        rc = TRIFLE_EDRIVER; /* statuses are negative; a positive return is a driver bug */
    if (err == NULL)
        return rc;
    if (e->message[0] == '\0') {
        if (rc == TRIFLE_ENOTFOUND && strcmp(op, "scan") == 0)
            (void)trifle__error(err, rc, "no ping");
        else
            (void)trifle__error(err, rc, "driver %s: %s failed (%s)", name, op,
                                trifle_status_name(rc));
    } else {
        *err = *e;
    }
    err->code = rc;
    tu_strlcpy_utf8(err->driver, name, sizeof(err->driver));
    return rc;
}

/* After get/scan: a sink failure wins over what the driver made of it. */
static int sink_error(const trifle_storage *st, int rc, const trifle_error *e, const char *op,
                      trifle_error *err)
{
    if (st->sink.rc == TRIFLE_ENOMEM)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    if (st->sink.rc != 0) {
        (void)trifle__error(err, st->sink.rc, "driver %s: %s %s", st->drv->name, op, st->sink.msg);
        if (err != NULL)
            tu_strlcpy_utf8(err->driver, st->drv->name, sizeof(err->driver));
        return st->sink.rc;
    }
    return driver_error(st, rc, e, op, err);
}

/* ---------------------------------------------------------------------------------------------
 * Open and close */

static int check_mode(const trifle_driver *drv, int mode, trifle_error *err)
{
    uint64_t need = mode == TRIFLE_ID_PARTIAL     ? TRIFLE_CAP_MODE_PARTIAL
                    : mode == TRIFLE_ID_SEPARATED ? TRIFLE_CAP_MODE_SEPARATED
                                                  : 0;

    if ((drv->caps & need) == need)
        return 0;
    if ((drv->caps & (TRIFLE_CAP_MODE_PARTIAL | TRIFLE_CAP_MODE_SEPARATED)) == 0)
        return trifle__error(err, TRIFLE_ECONFIG,
                             "%s driver supports only the full identifier mode", drv->name);
    return trifle__error(err, TRIFLE_ECONFIG, "%s driver does not support the %s identifier mode",
                         drv->name, trifle__id_mode_name(mode));
}

int trifle_storage_open(trifle_storage **out, const char *url, const trifle_storage_options *opts,
                        trifle_error *err)
{
    trifle_storage_options o = TRIFLE_STORAGE_OPTIONS_INIT;
    trifle_error e = TRIFLE_ERROR_INIT;
    trifle__url u;
    trifle_storage *st = NULL;
    const trifle_driver *drv = NULL;
    const char *which, *sep, **dopts = NULL;
    size_t i;
    int rc, mode, exists = 0;

    if (out == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: out is NULL");
    *out = NULL;
    if (opts != NULL) {
        rc = trifle__struct_in(&o, sizeof(o), opts, TRIFLE__STORAGE_OPTIONS_SIZE_1);
        if (rc < 0)
            return trifle__error(err, TRIFLE_EINVAL,
                                 "trifle_storage_options.struct_size %zu is too small (initialise "
                                 "with TRIFLE_STORAGE_OPTIONS_INIT)",
                                 opts->struct_size);
        if (rc > 0)
            return trifle__error(err, TRIFLE_ENOTSUP,
                                 "trifle_storage_options of %zu bytes sets options this libtrifle "
                                 "(%zu bytes) does not support",
                                 opts->struct_size, sizeof(o));
    }
    opts = &o;
    if ((rc = trifle__url_parse(&u, url, err)) != 0)
        return rc;
    if (opts->joined < TRIFLE_ID_FULL || opts->joined > TRIFLE_ID_SEPARATED) {
        rc = trifle__error(err, TRIFLE_ECONFIG, "invalid identifier mode: %d", opts->joined);
        goto done;
    }
    sep = opts->separator != NULL ? opts->separator : "::";
    if (trifle__separator_check(sep) != 0) {
        rc = trifle__error(err, TRIFLE_ECONFIG, "separator must be 1 to 16 bytes without NUL");
        goto done;
    }
    mode = u.joined >= 0 ? u.joined : opts->joined;
    if (u.separator != NULL)
        sep = u.separator;
    if (opts->driver != NULL && opts->driver[0] != '\0')
        which = opts->driver;
    else if (u.driver != NULL)
        which = u.driver;
    else if ((exists = trifle__driver_exists(u.scheme, opts->driver_path)) == 1)
        which = u.scheme; /* a third-party plugin named like the scheme */
    else {
        rc = exists == TRIFLE_ENOMEM
                 ? trifle__error(err, TRIFLE_ENOMEM, "out of memory")
                 : trifle__error(err, TRIFLE_ECONFIG, "unknown driver: %s", u.scheme);
        goto done;
    }
    if ((rc = trifle_driver_load(&drv, which, opts->driver_path, err)) != 0 ||
        (rc = check_mode(drv, mode, err)) != 0)
        goto done;
    if ((st = trifle__calloc(1, sizeof(*st))) == NULL ||
        (dopts = trifle__calloc(2 * u.n_params + 5, sizeof(*dopts))) == NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    st->drv = drv;
    st->mode = mode;
    st->system_tracking = u.system_tracking;
    memcpy(st->separator, sep, strlen(sep) + 1);
    if (drv->open_params != NULL) {
        /* ABI 1.3: the mode and separator typed; the options are the URL's own */
        trifle_open_params params = {sizeof(params), mode, st->separator};
        for (i = 0; i < 2 * u.n_params; i++)
            dopts[i] = u.params[i];
        rc = drv->open_params(&st->conn, trifle__host_api(), u.base, &params, dopts, &e);
    } else {
        /* a driver built for ABI 1.0-1.2 reads them as the leading `trifle.*` options */
        dopts[0] = "trifle.joined";
        dopts[1] = trifle__id_mode_name(mode);
        dopts[2] = "trifle.separator";
        dopts[3] = st->separator;
        for (i = 0; i < 2 * u.n_params; i++)
            dopts[4 + i] = u.params[i];
        rc = drv->open(&st->conn, trifle__host_api(), u.base, dopts, &e);
    }
    if (rc != 0) {
        trifle__url_scrub(&u, e.message, sizeof(e.message));
        rc = driver_error(st, rc, &e, "open", err);
        goto done;
    }
    *out = st;
    st = NULL;
done:
    trifle_storage_close(st);
    trifle__free(dopts);
    trifle__url_free(&u);
    return rc;
}

void trifle_storage_close(trifle_storage *st)
{
    if (st == NULL)
        return;
    if (st->conn != NULL)
        st->drv->close(st->conn);
    trifle__sink_free(&st->sink);
    trifle__free(st);
}

/* ---------------------------------------------------------------------------------------------
 * Accessors */

const trifle_driver *trifle_storage_driver(const trifle_storage *st)
{
    return st != NULL ? st->drv : NULL;
}

int trifle_storage_mode(const trifle_storage *st)
{
    return st != NULL ? st->mode : TRIFLE_ID_FULL;
}

const char *trifle_storage_separator(const trifle_storage *st)
{
    return st != NULL ? st->separator : "::";
}

int trifle_storage_system_tracking(const trifle_storage *st)
{
    return st != NULL ? st->system_tracking : -1;
}

/* Bounded writer: counts everything, stores what fits, always NUL-terminates when size > 0. */
typedef struct text_out {
    char *buf;
    size_t size, len;
} text_out;

static void text_put(text_out *o, const char *s)
{
    size_t n = strlen(s), room;

    if (o->size > 0 && o->len < o->size - 1) {
        room = o->size - 1 - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void text_end(text_out *o)
{
    if (o->size > 0)
        o->buf[o->len < o->size ? o->len : o->size - 1] = '\0';
}

size_t trifle_storage_describe(const trifle_storage *st, char *buf, size_t size)
{
    static const struct {
        const char *name, *display;
    } names[] = {{"sqlite", "SQLite"},
                 {"postgres", "Postgres"},
                 {"redis", "Redis"},
                 {"mongo", "Mongo"},
                 {"mysql", "MySQL"}};
    static const char *const modes[] = {"(J)", "(P)", "(S)"};
    text_out o = {buf, size, 0};
    char first[2];
    size_t i;

    if (st == NULL) {
        text_end(&o);
        return 0;
    }
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i].name, st->drv->name) == 0)
            break;
    if (i < sizeof(names) / sizeof(names[0])) {
        text_put(&o, names[i].display);
    } else {
        /* a third-party driver: its name with the first letter capitalised */
        first[0] = (char)(st->drv->name[0] - 'a' + 'A');
        first[1] = '\0';
        text_put(&o, first);
        text_put(&o, st->drv->name + 1);
    }
    text_put(&o, "Driver");
    text_put(&o, modes[st->mode]);
    text_end(&o);
    return o.len;
}

size_t trifle_storage_identifier(const trifle_storage *st, char *buf, size_t size, const char *key,
                                 const char *granularity, int64_t at)
{
    text_out o = {buf, size, 0};
    const char *parts[3];
    char unix_text[24];
    size_t n = 0, i;
    int mode = st != NULL ? st->mode : TRIFLE_ID_FULL;
    const char *sep = st != NULL ? st->separator : "::";

    {
        /* decimal without printf: this runs for every record the write path creates */
        char rev[24];
        uint64_t u = at < 0 ? (uint64_t)0 - (uint64_t)at : (uint64_t)at;
        size_t k = 0, j = 0;
        do {
            rev[k++] = (char)('0' + u % 10);
            u /= 10;
        } while (u > 0);
        if (at < 0)
            unix_text[j++] = '-';
        while (k > 0)
            unix_text[j++] = rev[--k];
        unix_text[j] = '\0';
    }
    parts[n++] = key != NULL ? key : "";
    if (mode != TRIFLE_ID_SEPARATED)
        parts[n++] = granularity != NULL ? granularity : "";
    if (mode == TRIFLE_ID_FULL)
        parts[n++] = unix_text;
    /* SPEC §3.2 join(): empty parts are left out */
    for (i = 0; i < n; i++) {
        if (parts[i][0] == '\0')
            continue;
        if (o.len > 0)
            text_put(&o, sep);
        text_put(&o, parts[i]);
    }
    text_end(&o);
    return o.len;
}

/* ---------------------------------------------------------------------------------------------
 * Operations */

int trifle_storage_setup(trifle_storage *st, trifle_error *err)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    int rc;

    if (st == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: storage is NULL");
    if ((rc = st->drv->setup(st->conn, &e)) != 0)
        return driver_error(st, rc, &e, "setup", err);
    return 0;
}

int trifle_storage_drop(trifle_storage *st, trifle_error *err)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    int rc;

    if (st == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: storage is NULL");
    if (st->drv->drop == NULL)
        return trifle__error(err, TRIFLE_ENOTSUP, "driver %s does not support drop", st->drv->name);
    if ((rc = st->drv->drop(st->conn, &e)) != 0)
        return driver_error(st, rc, &e, "drop", err);
    return 0;
}

/* The start of a write call: *res becomes the result it fills (the caller's, or local when it
 * gave none), zeroed, no item failed; then st is checked. Returns 0 or TRIFLE_EINVAL. */
static int write_begin(trifle_storage *st, trifle_write_result **res, trifle_write_result *local,
                       trifle_error *err)
{
    if (*res == NULL)
        *res = local;
    memset(*res, 0, sizeof(**res));
    (*res)->struct_size = sizeof(**res);
    (*res)->failed_item = -1;
    if (st == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: storage is NULL");
    return 0;
}

/* The items of a write: each has an identifier and at least one leaf. */
static int check_items(const trifle_entry *items, size_t n, const char *what, trifle_error *err)
{
    size_t i;

    if (n > 0 && items == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: %s is NULL", what);
    for (i = 0; i < n; i++) {
        if (items[i].bucket.id == NULL)
            return trifle__error(err, TRIFLE_EINVAL, "invalid argument: %s[%zu] has no bucket id",
                                 what, i);
        if (items[i].leaves == NULL || items[i].n_leaves == 0)
            return trifle__error(err, TRIFLE_EINVAL, "invalid argument: %s[%zu] has no leaves",
                                 what, i);
    }
    return 0;
}

static int write_call(trifle_storage *st, int add, const trifle_entry *items, size_t n,
                      trifle_write_result *res, trifle_error *err)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    trifle_write_result local;
    int rc;

    if ((rc = write_begin(st, &res, &local, err)) != 0)
        return rc;
    if (n == 0)
        return 0;
    if ((rc = check_items(items, n, "items", err)) != 0)
        return rc;
    rc =
        add ? st->drv->inc(st->conn, items, n, res, &e) : st->drv->set(st->conn, items, n, res, &e);
    return rc != 0 ? driver_error(st, rc, &e, add ? "inc" : "set", err) : 0;
}

int trifle_storage_inc(trifle_storage *st, const trifle_entry *items, size_t n,
                       trifle_write_result *res, trifle_error *err)
{
    return write_call(st, 1, items, n, res, err);
}

int trifle_storage_set(trifle_storage *st, const trifle_entry *items, size_t n,
                       trifle_write_result *res, trifle_error *err)
{
    return write_call(st, 0, items, n, res, err);
}

/* A journal name the drivers can store as it is: 1-64 bytes of [A-Za-z0-9_.:/-]. */
static int mark_name_ok(const char *name)
{
    size_t n = 0;

    if (name == NULL)
        return 0;
    for (; name[n] != '\0'; n++) {
        char c = name[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '/' || c == '-'))
            return 0;
    }
    return n >= 1 && n <= 64;
}

int trifle_storage_write_marked(trifle_storage *st, const trifle_entry *set_items, size_t n_set,
                                const trifle_entry *inc_items, size_t n_inc,
                                const trifle_mark *mark, trifle_write_result *res,
                                trifle_error *err)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    trifle_write_result local;
    int rc;

    if ((rc = write_begin(st, &res, &local, err)) != 0)
        return rc;
    if (!(st->drv->caps & TRIFLE_CAP_JOURNAL_MARK) || st->drv->write_marked == NULL)
        return trifle__error(err, TRIFLE_ENOTSUP, "driver %s does not support journal marks",
                             st->drv->name);
    if (mark == NULL || !mark_name_ok(mark->name) || mark->seq == 0 ||
        mark->seq > (uint64_t)INT64_MAX)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: journal mark");
    if ((rc = check_items(set_items, n_set, "set_items", err)) != 0 ||
        (rc = check_items(inc_items, n_inc, "inc_items", err)) != 0)
        return rc;
    rc = st->drv->write_marked(st->conn, set_items, n_set, inc_items, n_inc, mark, res, &e);
    return rc != 0 ? driver_error(st, rc, &e, "write_marked", err) : 0;
}

int trifle_storage_mark_read(trifle_storage *st, const char *name, uint64_t *seq, trifle_error *err)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    int rc;

    if (seq != NULL)
        *seq = 0;
    if (st == NULL || seq == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: %s is NULL",
                             st == NULL ? "storage" : "seq");
    if (!(st->drv->caps & TRIFLE_CAP_JOURNAL_MARK) || st->drv->mark_read == NULL)
        return trifle__error(err, TRIFLE_ENOTSUP, "driver %s does not support journal marks",
                             st->drv->name);
    if (!mark_name_ok(name))
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: journal name");
    if ((rc = st->drv->mark_read(st->conn, name, seq, &e)) != 0)
        return driver_error(st, rc, &e, "mark_read", err);
    return 0;
}

int trifle__storage_takes_calls(const trifle_storage *st)
{
    return st != NULL && (st->drv->caps & TRIFLE_CAP_CALLS) != 0 && st->drv->calls != NULL;
}

int trifle__storage_calls(trifle_storage *st, const trifle_call *calls, size_t n,
                          trifle_write_result *res, trifle_error *err)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    trifle_write_result local;
    size_t i;
    int rc;

    if ((rc = write_begin(st, &res, &local, err)) != 0)
        return rc;
    if (!trifle__storage_takes_calls(st))
        return trifle__error(err, TRIFLE_ENOTSUP, "driver %s does not take whole calls",
                             st->drv->name);
    if (n == 0)
        return 0;
    if (calls == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: calls is NULL");
    for (i = 0; i < n; i++) {
        if (calls[i].key == NULL)
            return trifle__error(err, TRIFLE_EINVAL, "invalid argument: calls[%zu] has no key", i);
        if (calls[i].leaves == NULL || calls[i].n_leaves == 0)
            return trifle__error(err, TRIFLE_EINVAL, "invalid argument: calls[%zu] has no leaves",
                                 i);
    }
    rc = st->drv->calls(st->conn, calls, n, res, &e);
    return rc != 0 ? driver_error(st, rc, &e, "calls", err) : 0;
}

int trifle__storage_answers_queries(const trifle_storage *st)
{
    return st != NULL && (st->drv->caps & TRIFLE_CAP_QUERY) != 0 && st->drv->query != NULL;
}

/* Counts the driver's answers, so that none (or two) is an error of the driver. */
typedef struct answer_guard {
    trifle_answer_fn fn;
    void *ctx;
    int calls;
} answer_guard;

static int guard_answer(void *ctx, int status, const char *body, size_t len)
{
    answer_guard *g = ctx;

    if (g->calls++ > 0)
        return 0; /* the first answer counts */
    return g->fn(g->ctx, status, body != NULL ? body : "", body != NULL ? len : 0);
}

int trifle__storage_query(trifle_storage *st, const char *request, size_t len, trifle_answer_fn fn,
                          void *ctx, trifle_error *err)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    answer_guard g;
    int rc;

    if (st == NULL || request == NULL || fn == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: %s is NULL",
                             st == NULL        ? "storage"
                             : request == NULL ? "request"
                                               : "answer");
    if (!trifle__storage_answers_queries(st))
        return trifle__error(err, TRIFLE_ENOTSUP, "driver %s does not answer queries",
                             st->drv->name);
    g.fn = fn;
    g.ctx = ctx;
    g.calls = 0;
    rc = st->drv->query(st->conn, request, len, guard_answer, &g, &e);
    if (rc != 0)
        return driver_error(st, rc, &e, "query", err);
    if (g.calls == 0)
        return trifle__error(err, TRIFLE_EDRIVER, "driver %s: query returned no answer",
                             st->drv->name);
    return 0;
}

int trifle_storage_get(trifle_storage *st, const trifle_bucket *buckets, size_t n,
                       trifle_leaf_fn fn, void *payload, trifle_error *err)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    size_t i;
    int rc;

    if (st == NULL || fn == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: %s is NULL",
                             st == NULL ? "storage" : "callback");
    if (n == 0)
        return 0;
    if (buckets == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: buckets is NULL");
    for (i = 0; i < n; i++)
        if (buckets[i].id == NULL)
            return trifle__error(err, TRIFLE_EINVAL, "invalid argument: buckets[%zu] has no id", i);
    trifle__sink_reset(&st->sink, n);
    rc = st->drv->get(st->conn, buckets, n, &st->sink, &e);
    if (rc != 0 || st->sink.rc != 0)
        rc = sink_error(st, rc, &e, "get", err);
    else
        rc = trifle__sink_deliver(&st->sink, fn, payload);
    trifle__sink_reset(&st->sink, 0);
    trifle__sink_trim(&st->sink);
    return rc;
}

static int need_ping(const trifle_storage *st, trifle_error *err)
{
    if ((st->drv->caps & TRIFLE_CAP_PING) == 0 || st->drv->ping == NULL || st->drv->scan == NULL)
        return trifle__error(err, TRIFLE_ENOTSUP, "driver does not support beam/scan");
    return 0;
}

int trifle_storage_ping(trifle_storage *st, const char *key, int64_t at, const trifle_leaf *leaves,
                        size_t n, trifle_error *err)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    int rc;

    if (st == NULL || key == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: %s is NULL",
                             st == NULL ? "storage" : "key");
    if (leaves == NULL && n > 0)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: leaves is NULL");
    if ((rc = need_ping(st, err)) != 0)
        return rc;
    if ((rc = st->drv->ping(st->conn, key, at, leaves, n, &e)) != 0)
        return driver_error(st, rc, &e, "ping", err);
    return 0;
}

int trifle_storage_scan(trifle_storage *st, const char *key, int64_t *at_out, trifle_leaf_fn fn,
                        void *payload, trifle_error *err)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    int64_t at = 0;
    int rc;

    if (st == NULL || key == NULL || at_out == NULL || fn == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: %s is NULL",
                             st == NULL    ? "storage"
                             : key == NULL ? "key"
                             : fn == NULL  ? "callback"
                                           : "at_out");
    if ((rc = need_ping(st, err)) != 0)
        return rc;
    trifle__sink_reset(&st->sink, 1);
    rc = st->drv->scan(st->conn, key, &at, &st->sink, &e);
    if (rc != 0 || st->sink.rc != 0) {
        rc = sink_error(st, rc, &e, "scan", err);
    } else {
        *at_out = at;
        rc = trifle__sink_deliver(&st->sink, fn, payload);
    }
    trifle__sink_reset(&st->sink, 0);
    trifle__sink_trim(&st->sink);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * trifle_driver_for_url */

int trifle_driver_for_url(char *buf, size_t size, const char *url, trifle_error *err)
{
    trifle__url u;
    const char *name;
    int rc, exists = 0;

    if (buf == NULL || size == 0)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: buffer is NULL");
    buf[0] = '\0';
    if ((rc = trifle__url_parse(&u, url, err)) != 0)
        return rc;
    name = u.driver;
    if (name == NULL && (exists = trifle__driver_exists(u.scheme, NULL)) == 1)
        name = u.scheme;
    if (exists == TRIFLE_ENOMEM)
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    else if (name == NULL)
        rc = trifle__error(err, TRIFLE_ECONFIG, "unknown driver: %s", u.scheme);
    else if (strlen(name) >= size)
        rc = trifle__error(err, TRIFLE_EINVAL, "invalid argument: buffer too small");
    else
        memcpy(buf, name, strlen(name) + 1);
    trifle__url_free(&u);
    return rc;
}
