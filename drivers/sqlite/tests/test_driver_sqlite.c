/* The SQLite driver plugin (SPEC §7.5) through its ABI: the test dlopens the built
 * trifle_sqlite.so, plays the host (allocator with failure injection, error_set, emit into a sink,
 * the core's number printer/parser) and checks the stored rows with raw SQL on real files in a
 * temporary directory. Raw SQL uses the libsqlite3 the plugin itself loaded (dlsym through the
 * plugin's handle), so this test needs no link dependency on SQLite. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "driver_host.h"
#include "server_helpers.h"
#include "trifle/driver.h"
#include "vectors.h"

#define T0 INT64_C(1736935200) /* 2025-01-15T10:00:00Z */
#define T0_TEXT "2025-01-15T10:00:00Z"
#define T0_LEGACY "2025-01-15T10:00:00.000000Z"

static const char *const mode_names[] = {"full", "partial", "separated"};

/* ---------------------------------------------------------------------------------------------
 * The plugin and raw SQLite
 */

static void *plugin;
static const trifle_driver *drv;
static char tmpdir[256];

static struct {
    int (*open_v2)(const char *, sqlite3 **, int, const char *);
    int (*exec)(sqlite3 *, const char *, int (*)(void *, int, char **, char **), void *, char **);
    int (*close)(sqlite3 *);
    const char *(*errmsg)(sqlite3 *);
    void (*free)(void *);
} sq3;

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */

static void db_path(char *out, size_t size, const char *name)
{
    (void)snprintf(out, size, "%s/%s.db", tmpdir, name);
}

/* The URL of the database file `name` (in a buffer the next call reuses). */
static const char *db_url(const char *name)
{
    static char url[600];

    (void)snprintf(url, sizeof(url), "sqlite:%s/%s.db", tmpdir, name);
    return url;
}

/* Open with identifier mode `mode` and extra NULL-terminated name/value pairs. */
static int conn_open_opts(trifle_conn **c, const char *url, int mode, const char *const *extra,
                          trifle_error *err)
{
    return test_host_open(drv, c, url, mode, "::", extra, err);
}

/* Open `<tmpdir>/<name>.db` in mode and run setup. */
static trifle_conn *conn_new(const char *name, int mode, const char *const *extra)
{
    const char *url;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_conn *c = NULL;

    url = db_url(name);
    if (conn_open_opts(&c, url, mode, extra, &err) != 0)
        fail_msg("open %s: %s", url, err.message);
    if (drv->setup(c, &err) != 0)
        fail_msg("setup %s: %s", url, err.message);
    return c;
}

typedef struct tbucket {
    char id[512], key[512];
    trifle_bucket b;
} tbucket;

static void tb_init(tbucket *t, int mode, const char *key, const char *g, int64_t at)
{
    if (mode == TRIFLE_ID_FULL)
        (void)snprintf(t->id, sizeof(t->id), "%s::%s::%lld", key, g, (long long)at);
    else if (mode == TRIFLE_ID_PARTIAL)
        (void)snprintf(t->id, sizeof(t->id), "%s::%s", key, g);
    else
        (void)snprintf(t->id, sizeof(t->id), "%s", key);
    (void)snprintf(t->key, sizeof(t->key), "%s", key);
    t->b.id = t->id;
    t->b.key = t->key;
    t->b.granularity = g;
    t->b.at = at;
}

/* One-item write; returns the status. */
static int write1(trifle_conn *c, int set, const tbucket *t, const trifle_leaf *l, size_t n,
                  trifle_error *err)
{
    trifle_entry e;
    trifle_write_result res = {sizeof(res), 0, -1, 0};

    e.bucket = t->b;
    e.leaves = l;
    e.n_leaves = n;
    return set ? drv->set(c, &e, 1, &res, err) : drv->inc(c, &e, 1, &res, err);
}

static void write1_ok(trifle_conn *c, int set, const tbucket *t, const trifle_leaf *l, size_t n)
{
    trifle_error err = TRIFLE_ERROR_INIT;

    if (write1(c, set, t, l, n, &err) != 0)
        fail_msg("%s %s: %s", set ? "set" : "inc", t->id, err.message);
}

static trifle_sink *get1(trifle_conn *c, const tbucket *t)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_sink *s = sink_new(1);

    if (drv->get(c, &t->b, 1, s, &err) != 0)
        fail_msg("get %s: %s", t->id, err.message);
    return s;
}

/* One get of t: count leaves (no check when count < 0), and the values of the path, value pairs
 * that follow, up to a NULL path. */
static void expect_get(trifle_conn *c, const tbucket *t, long count, ...)
{
    trifle_sink *s = get1(c, t);
    const char *path;
    va_list ap;

    if (count >= 0)
        assert_int_equal(sink_count(s, 0), (size_t)count);
    va_start(ap, count);
    while ((path = va_arg(ap, const char *)) != NULL) {
        double v = va_arg(ap, double);
        if (sink_value(s, 0, path) != v)
            print_message("%s: %.17g, want %.17g\n", path, sink_value(s, 0, path), v);
        assert_true(sink_value(s, 0, path) == v);
    }
    va_end(ap);
    sink_free(s);
}

typedef struct rows {
    char text[65536];
    size_t len;
} rows;

static int rows_cb(void *p, int ncol, char **val, char **name)
{
    rows *r = p;
    int i;

    (void)name;
    for (i = 0; i < ncol; i++)
        r->len += (size_t)snprintf(r->text + r->len, sizeof(r->text) - r->len, "%s%s",
                                   i ? "|" : (r->len ? "\n" : ""), val[i] ? val[i] : "NULL");
    assert_true(r->len < sizeof(r->text));
    return 0;
}

/* Run sql on the file with a separate connection; rows as "c1|c2\nc1|c2". */
static char *raw(const char *name, const char *sql)
{
    static rows r;
    char path[512], *msg = NULL;
    sqlite3 *db = NULL;

    db_path(path, sizeof(path), name);
    r.len = 0;
    r.text[0] = '\0';
    assert_int_equal(sq3.open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    if (sq3.exec(db, sql, rows_cb, &r, &msg) != SQLITE_OK) {
        (void)fprintf(stderr, "raw SQL failed: %s\n%s\n", msg, sql);
        sq3.free(msg);
        sq3.close(db);
        fail();
    }
    sq3.close(db);
    return r.text;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000L};

    nanosleep(&ts, NULL);
}

static double cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------------------------------------
 * Group setup
 */

static int group_setup(void **state)
{
    char path[1024];
    struct stat st;

    (void)state;
    test_host_driver = "sqlite";
    (void)snprintf(path, sizeof(path), "%s/trifle_sqlite.so", TRIFLE_BUILD_PLUGIN_DIR);
    if (stat(path, &st) != 0) {
        (void)fprintf(stderr,
                      "the sqlite driver plugin is not built: %s is missing (build the target "
                      "trifle_driver_sqlite before unit_driver_sqlite)\n",
                      path);
        return -1;
    }
    if ((drv = test_host_load(path, "sqlite", &plugin)) == NULL)
        return -1;
    (void)test_load_syms(plugin, NULL, TEST_SYM(sq3, open_v2, "sqlite3_open_v2"),
                         TEST_SYM(sq3, exec, "sqlite3_exec"), TEST_SYM(sq3, close, "sqlite3_close"),
                         TEST_SYM(sq3, errmsg, "sqlite3_errmsg"),
                         TEST_SYM(sq3, free, "sqlite3_free"), (void *)NULL);
    (void)snprintf(tmpdir, sizeof(tmpdir), "/tmp/trifle_sqlite_XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char path[1024];

    (void)state;
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            (void)snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
            (void)unlink(path);
        }
        closedir(d);
    }
    (void)rmdir(tmpdir);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Tests
 */

static void test_driver_table(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    const trifle_driver *d2 = NULL;
    trifle_host_api other = test_host;
    trifle_driver_init_fn init;
    void *sym = dlsym(plugin, "trifle_driver_sqlite_init");

    (void)state;
    assert_string_equal(drv->name, "sqlite");
    assert_string_equal(drv->version, "1.1.0");
    assert_int_equal(drv->abi_major, TRIFLE_DRIVER_ABI_MAJOR);
    assert_int_equal(drv->struct_size, sizeof(trifle_driver));
    assert_int_equal(drv->caps, TRIFLE_CAP_MODE_PARTIAL | TRIFLE_CAP_MODE_SEPARATED |
                                    TRIFLE_CAP_PING | TRIFLE_CAP_ATOMIC_BATCH | TRIFLE_CAP_SETUP |
                                    TRIFLE_CAP_EXACT_DOUBLES | TRIFLE_CAP_JOURNAL_MARK);
    assert_non_null(drv->write_marked);
    assert_non_null(drv->mark_read);
    assert_string_equal(drv->schemes[0], "sqlite");
    assert_null(drv->schemes[1]);
    memcpy(&init, &sym, sizeof(init));
    other.abi_major = TRIFLE_DRIVER_ABI_MAJOR + 1;
    assert_int_equal(init(&other, &d2, &err), TRIFLE_EABI);
    assert_null(d2);
}

static void test_schema_per_mode(void **state)
{
    static const char *const expect[] = {
        "0|key|TEXT|0|NULL|1\n1|data|TEXT|1|'{}'|0",
        "0|key|TEXT|1|NULL|1\n1|at|TEXT|1|NULL|2\n2|data|TEXT|1|'{}'|0",
        ("0|key|TEXT|1|NULL|1\n1|granularity|TEXT|1|NULL|2\n2|at|TEXT|1|NULL|3\n3|data|TEXT|1|"
         "'{}'|0"),
    };
    const char *extra[] = {"table", "stats_x", NULL};
    char name[32];
    int mode;

    (void)state;
    for (mode = 0; mode < 3; mode++) {
        trifle_conn *c;
        trifle_error err = TRIFLE_ERROR_INIT;
        (void)snprintf(name, sizeof(name), "schema_%s", mode_names[mode]);
        c = conn_new(name, mode, extra);
        assert_string_equal(raw(name, "PRAGMA table_info(stats_x);"), expect[mode]);
        assert_string_equal(raw(name, "PRAGMA table_info(stats_x_ping);"),
                            "0|key|TEXT|0|NULL|1\n1|at|TEXT|1|NULL|0\n2|data|TEXT|1|'{}'|0");
        assert_string_equal(raw(name, "PRAGMA journal_mode;"), "wal");
        /* setup twice keeps the data */
        raw(name, mode == 0 ? "INSERT INTO stats_x (key, data) VALUES ('k', '{\"a\":1}');"
                  : mode == 1
                      ? "INSERT INTO stats_x (key, at, data) VALUES ('k', 'x', '{\"a\":1}');"
                      : "INSERT INTO stats_x (key, granularity, at, data) VALUES ('k', 'g', 'x', "
                        "'{\"a\":1}');");
        assert_int_equal(drv->setup(c, &err), 0);
        assert_int_equal(drv->setup(c, &err), 0);
        assert_string_equal(raw(name, "SELECT count(*), data FROM stats_x;"), "1|{\"a\":1}");
        drv->close(c);
    }
}

static void test_inc_set_get_every_mode(void **state)
{
    static const char *const stored[] = {
        "event::1h::1736935200|{\"a\":12,\"b.c\":5,\"z\":0.5}",
        "event::1h|" T0_TEXT "|{\"a\":12,\"b.c\":5,\"z\":0.5}",
        "event|1h|" T0_TEXT "|{\"a\":12,\"b.c\":5,\"z\":0.5}",
    };
    const trifle_leaf inc[] = {{"a", 1}, {"b.c", 2.5}};
    const trifle_leaf set[] = {{"a", 10}, {"z", 0.5}};
    const trifle_leaf inc2[] = {{"a", 2}};
    char name[32];
    int mode;

    (void)state;
    for (mode = 0; mode < 3; mode++) {
        trifle_conn *c;
        tbucket t, other;
        (void)snprintf(name, sizeof(name), "modes_%s", mode_names[mode]);
        c = conn_new(name, mode, NULL);
        tb_init(&t, mode, "event", "1h", T0);
        tb_init(&other, mode, "event", "1d", T0);
        write1_ok(c, 0, &t, inc, 2);
        write1_ok(c, 0, &t, inc, 2);
        expect_get(c, &t, 2, "a", 2.0, "b.c", 5.0, NULL);
        write1_ok(c, 1, &t, set, 2);
        write1_ok(c, 0, &t, inc2, 1);
        expect_get(c, &t, 3, "a", 12.0, "b.c", 5.0, "z", 0.5, NULL);
        expect_get(c, &other, 0, NULL);
        assert_string_equal(raw(name, mode == 0   ? "SELECT key, data FROM trifle_stats;"
                                      : mode == 1 ? "SELECT key, at, data FROM trifle_stats;"
                                                  : "SELECT key, granularity, at, data FROM "
                                                    "trifle_stats;"),
                            stored[mode]);
        drv->close(c);
    }
}

static void test_get_order_with_gaps(void **state)
{
    char name[32];
    int mode;

    (void)state;
    for (mode = 0; mode < 3; mode++) {
        trifle_error err = TRIFLE_ERROR_INIT;
        trifle_conn *c;
        trifle_sink *s;
        tbucket t[7];
        trifle_bucket b[8];
        int i;
        (void)snprintf(name, sizeof(name), "gaps_%s", mode_names[mode]);
        c = conn_new(name, mode, NULL);
        for (i = 0; i < 7; i++) {
            trifle_leaf v = {"n", i + 1};
            tb_init(&t[i], mode, "ev", "1h", T0 + 3600 * i);
            b[i] = t[i].b;
            if (i % 2 == 0)
                write1_ok(c, 0, &t[i], &v, 1);
        }
        b[7] = t[2].b; /* the same bucket twice: both indices get it */
        s = sink_new(8);
        assert_int_equal(drv->get(c, b, 8, s, &err), 0);
        for (i = 0; i < 7; i++) {
            if (i % 2 == 0)
                assert_true(sink_value(s, (size_t)i, "n") == i + 1);
            else
                assert_int_equal(sink_count(s, (size_t)i), 0);
        }
        assert_true(sink_value(s, 7, "n") == 3);
        assert_int_equal(sink_count(s, 7), 1);
        sink_free(s);
        /* no buckets: nothing to do */
        assert_int_equal(drv->get(c, b, 0, NULL, &err), 0);
        drv->close(c);
    }
}

static char *sql_quote(const char *s)
{
    size_t n = strlen(s), i, j = 0;
    char *q = malloc(2 * n + 3);

    assert_non_null(q);
    q[j++] = '\'';
    for (i = 0; i < n; i++) {
        if (s[i] == '\'')
            q[j++] = '\'';
        q[j++] = s[i];
    }
    q[j++] = '\'';
    q[j] = '\0';
    return q;
}

/* After a write, the stored row is canonical: an object of flat keys in byte order whose values
 * are the expected numbers (plus `extra`) and the carried-over non-numeric values. */
static void check_canonical(const char *text, const cJSON *expected_flat, const char *extra,
                            double extra_v, const cJSON *non_numeric)
{
    cJSON *doc = cJSON_Parse(text), *it;
    const char *prev = NULL;
    int n = 0, want;

    assert_non_null(doc);
    cJSON_ArrayForEach (it, doc) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(expected_flat, it->string);
        assert_false(cJSON_IsObject(it));
        if (prev != NULL)
            assert_true(strcmp(prev, it->string) < 0);
        prev = it->string;
        if (e != NULL)
            assert_true(cJSON_IsNumber(it) && it->valuedouble == e->valuedouble);
        else if (strcmp(it->string, extra) == 0)
            assert_true(cJSON_IsNumber(it) && it->valuedouble == extra_v);
        else
            assert_non_null(cJSON_GetObjectItemCaseSensitive(non_numeric, it->string));
        n++;
    }
    want = cJSON_GetArraySize(expected_flat) + 1 + cJSON_GetArraySize(non_numeric);
    assert_int_equal(n, want);
    cJSON_Delete(doc);
}

static void test_sqlite_read_vectors(void **state)
{
    cJSON *doc = vectors_load("packer.json");
    const cJSON *vecs = cJSON_GetObjectItemCaseSensitive(doc, "sqlite_read"), *v;
    const trifle_leaf zz = {"zz", 1};
    int i = 0;

    (void)state;
    assert_true(cJSON_GetArraySize(vecs) >= 4);
    cJSON_ArrayForEach (v, vecs) {
        const cJSON *stored = cJSON_GetObjectItemCaseSensitive(v, "stored");
        const cJSON *flat = cJSON_GetObjectItemCaseSensitive(v, "expected_flat"), *e;
        cJSON *non_numeric = cJSON_CreateObject();
        char *text = cJSON_PrintUnformatted(stored), *q = sql_quote(text), sql[4096], name[32];
        trifle_conn *c;
        trifle_sink *s;
        tbucket t;
        (void)snprintf(name, sizeof(name), "vector_%d", i++);
        c = conn_new(name, TRIFLE_ID_FULL, NULL);
        tb_init(&t, TRIFLE_ID_FULL, "ev", "1h", T0);
        (void)snprintf(sql, sizeof(sql), "INSERT INTO trifle_stats (key, data) VALUES ('%s', %s);",
                       t.id, q);
        raw(name, sql);
        s = get1(c, &t);
        assert_int_equal(sink_count(s, 0), (size_t)cJSON_GetArraySize(flat));
        cJSON_ArrayForEach (e, flat) {
            assert_true(sink_value(s, 0, e->string) == e->valuedouble);
        }
        sink_free(s);
        /* a write folds every layout into one flat row and keeps non-numeric values */
        cJSON_ArrayForEach (e, stored) {
            if (!cJSON_IsNumber(e) && !cJSON_IsObject(e))
                cJSON_AddItemToObject(non_numeric, e->string, cJSON_Duplicate(e, 1));
        }
        write1_ok(c, 0, &t, &zz, 1);
        check_canonical(raw(name, "SELECT data FROM trifle_stats;"), flat, "zz", 1, non_numeric);
        s = get1(c, &t);
        assert_int_equal(sink_count(s, 0), (size_t)cJSON_GetArraySize(flat) + 1);
        sink_free(s);
        drv->close(c);
        cJSON_Delete(non_numeric);
        free(q);
        free(text);
    }
    cJSON_Delete(doc);
}

static void test_legacy_at_rows(void **state)
{
    const trifle_leaf inc[] = {{"a", 1}};
    char sql[1024];
    int mode;

    (void)state;
    for (mode = 1; mode < 3; mode++) {
        const char *name = mode == 1 ? "legacy_partial" : "legacy_separated";
        const char *cols = mode == 1 ? "key, at" : "key, granularity, at";
        const char *vals = mode == 1 ? "'ev::1h'" : "'ev', '1h'";
        trifle_conn *c = conn_new(name, mode, NULL);
        tbucket t;
        tb_init(&t, mode, "ev", "1h", T0);
        (void)snprintf(sql, sizeof(sql),
                       "INSERT INTO trifle_stats (%s, data) VALUES (%s, '" T0_LEGACY
                       "', '{\"a\":2,\"s\":\"x\",\"m\":{\"d\":1}}');"
                       "INSERT INTO trifle_stats (%s, data) VALUES (%s, '" T0_TEXT
                       "', '{\"a\":3,\"m.d\":1}');",
                       cols, vals, cols, vals);
        raw(name, sql);
        expect_get(c, &t, 2, "a", 5.0, "m.d", 2.0, NULL);
        write1_ok(c, 0, &t, inc, 1);
        assert_string_equal(raw(name, "SELECT at, data FROM trifle_stats;"),
                            T0_TEXT "|{\"a\":6,\"m.d\":2,\"s\":\"x\"}");
        expect_get(c, &t, -1, "a", 6.0, NULL);
        /* only a legacy row: it is rewritten canonically and deleted */
        raw(name, "DELETE FROM trifle_stats;");
        (void)snprintf(sql, sizeof(sql),
                       "INSERT INTO trifle_stats (%s, data) VALUES (%s, '" T0_LEGACY
                       "', '{\"a\":2}');",
                       cols, vals);
        raw(name, sql);
        write1_ok(c, 1, &t, inc, 1);
        assert_string_equal(raw(name, "SELECT at, data FROM trifle_stats;"), T0_TEXT "|{\"a\":1}");
        drv->close(c);
    }
}

static void test_non_numeric_and_invalid_json(void **state)
{
    const trifle_leaf inc[] = {{"a", 2}, {"c", 1}};
    const trifle_leaf set[] = {{"b", 7}};
    trifle_conn *c = conn_new("nonnum", TRIFLE_ID_FULL, NULL);
    tbucket t, u, w;

    (void)state;
    tb_init(&t, TRIFLE_ID_FULL, "ev", "1h", T0);
    tb_init(&u, TRIFLE_ID_FULL, "bad", "1h", T0);
    tb_init(&w, TRIFLE_ID_FULL, "arr", "1h", T0);
    raw("nonnum", "INSERT INTO trifle_stats (key, data) VALUES ('ev::1h::1736935200', "
                  "'{\"a\":\"text\", \"b\":true, \"n\":null, \"arr\":[1, {\"q\":2}], "
                  "\"o\":{\"x\":\"y\",\"big\":1e400, \"E\":2E1}, \"c\":1, \"\":{\"e\":1}}');"
                  "INSERT INTO trifle_stats (key, data) VALUES ('bad::1h::1736935200', "
                  "'{\"a\":1');"
                  "INSERT INTO trifle_stats (key, data) VALUES ('arr::1h::1736935200', '[1,2]');");
    expect_get(c, &t, 2, "c", 1.0, "o.E", 20.0, NULL); /* c and o.E; ".e" has an empty segment */
    expect_get(c, &u, 0, NULL);
    expect_get(c, &w, 0, NULL);

    /* inc onto text counts from 0 (ERRATA I5); other values are carried over as they were */
    write1_ok(c, 0, &t, inc, 2);
    write1_ok(c, 1, &t, set, 1);
    assert_string_equal(raw("nonnum", "SELECT data FROM trifle_stats WHERE key LIKE 'ev%';"),
                        "{\".e\":1,\"a\":2,\"arr\":[1, {\"q\":2}],\"b\":7,\"c\":2,\"n\":null,"
                        "\"o.E\":20,\"o.big\":1e400,\"o.x\":\"y\"}");
    /* invalid JSON and non-objects count as {} */
    write1_ok(c, 0, &u, inc, 2);
    write1_ok(c, 0, &w, inc, 2);
    assert_string_equal(raw("nonnum", "SELECT data FROM trifle_stats WHERE key LIKE 'bad%' OR "
                                      "key LIKE 'arr%' ORDER BY key;"),
                        "{\"a\":2,\"c\":1}\n{\"a\":2,\"c\":1}");
    drv->close(c);
}

static void test_ruby_schema_and_null_data(void **state)
{
    const trifle_leaf inc[] = {{"a", 1}};
    trifle_conn *c = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    tbucket t;

    (void)state;
    raw("ruby", "CREATE TABLE trifle_stats (key varchar(255), data json);"
                "CREATE UNIQUE INDEX idx_key ON trifle_stats (key);"
                "INSERT INTO trifle_stats (key, data) VALUES ('ev::1h::1736935200', NULL);");
    assert_int_equal(conn_open_opts(&c, db_url("ruby"), TRIFLE_ID_FULL, NULL, &err), 0);
    tb_init(&t, TRIFLE_ID_FULL, "ev", "1h", T0);
    expect_get(c, &t, 0, NULL);
    write1_ok(c, 0, &t, inc, 1);
    write1_ok(c, 0, &t, inc, 1);
    assert_string_equal(raw("ruby", "SELECT key, data FROM trifle_stats;"),
                        "ev::1h::1736935200|{\"a\":2}");
    drv->close(c);
}

static void test_awkward_paths(void **state)
{
    /* sorted in byte order, as the core delivers them */
    trifle_leaf l[] = {
        {"$x", 1},
        {"a\"b", 2},
        {"a$b.c", 3},
        {"a'b", 4},
        {"a\\b", 5},
        {"t\tab", 6},
        {"x.y.z", 7},
        {"\x7f", 8},
        {"\xc3\xa9.\xc3\xbc", 9},
        {"\xe6\x97\xa5\xe6\x9c\xac.\xe8\xaa\x9e", 10},
    };
    const size_t n = sizeof(l) / sizeof(l[0]);
    trifle_conn *c = conn_new("awkward", TRIFLE_ID_SEPARATED, NULL);
    trifle_sink *s;
    tbucket t;
    size_t i;

    (void)state;
    tb_init(&t, TRIFLE_ID_SEPARATED, "k'ey \"x\" \xc3\xa9", "1h", T0);
    write1_ok(c, 0, &t, l, n);
    write1_ok(c, 0, &t, l, n);
    s = get1(c, &t);
    assert_int_equal(sink_count(s, 0), n);
    for (i = 0; i < n; i++)
        assert_true(sink_value(s, 0, l[i].path) == 2 * l[i].value);
    sink_free(s);
    /* SQLite's own JSON reader agrees on every key */
    assert_string_equal(raw("awkward",
                            "SELECT json_valid(data), json_extract(data, '$.\"x.y.z\"'),"
                            " (SELECT count(*) FROM json_each(data)) FROM trifle_stats;"),
                        "1|14|10");
    assert_string_equal(raw("awkward", "SELECT j.value FROM trifle_stats, json_each(data) AS j "
                                       "WHERE j.key = 'a\"b' OR j.key = 'a''b' OR j.key = "
                                       "'t' || char(9) || 'ab' ORDER BY j.value;"),
                        "4\n8\n12");
    assert_string_equal(raw("awkward", "SELECT key FROM trifle_stats;"), "k'ey \"x\" \xc3\xa9");
    drv->close(c);
}

static void test_doubles_round_trip(void **state)
{
    static const double v[] = {0.1,
                               1e-300,
                               5e-324,
                               1.7976931348623157e308,
                               -2.5,
                               1e21,
                               123456789012345680000.0,
                               2.2250738585072014e-308,
                               1.0 / 3};
    static const char *const p[] = {"d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8"};
    const size_t n = sizeof(v) / sizeof(v[0]);
    const trifle_leaf a[] = {{"s", 0.1}}, b[] = {{"s", 0.2}};
    trifle_leaf l[9];
    trifle_conn *c = conn_new("doubles", TRIFLE_ID_FULL, NULL);
    trifle_sink *s;
    tbucket t, u;
    size_t i;

    (void)state;
    for (i = 0; i < n; i++) {
        l[i].path = p[i];
        l[i].value = v[i];
    }
    tb_init(&t, TRIFLE_ID_FULL, "ev", "1h", T0);
    write1_ok(c, 1, &t, l, n);
    s = get1(c, &t);
    for (i = 0; i < n; i++)
        assert_memory_equal(&v[i], &(double){sink_value(s, 0, p[i])}, sizeof(double));
    sink_free(s);
    assert_string_equal(raw("doubles", "SELECT data FROM trifle_stats;"),
                        "{\"d0\":0.1,\"d1\":1e-300,\"d2\":5e-324,\"d3\":1.7976931348623157e+308,"
                        "\"d4\":-2.5,\"d5\":1e+21,\"d6\":123456789012345680000,"
                        "\"d7\":2.2250738585072014e-308,\"d8\":0.3333333333333333}");
    /* increments are double sums */
    tb_init(&u, TRIFLE_ID_FULL, "sum", "1h", T0);
    write1_ok(c, 0, &u, a, 1);
    write1_ok(c, 0, &u, b, 1);
    expect_get(c, &u, -1, "s", 0.1 + 0.2, NULL);
    assert_string_equal(raw("doubles", "SELECT data FROM trifle_stats WHERE key LIKE 'sum%';"),
                        "{\"s\":0.30000000000000004}");
    drv->close(c);
}

static void test_overflow_is_edata(void **state)
{
    const trifle_leaf big[] = {{"m", 1.7976931348623157e308}};
    trifle_conn *c = conn_new("overflow", TRIFLE_ID_FULL, NULL);
    trifle_write_result res = {sizeof(res), 0, -1, 0};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_entry e[2];
    tbucket t, u;

    (void)state;
    tb_init(&t, TRIFLE_ID_FULL, "a", "1h", T0);
    tb_init(&u, TRIFLE_ID_FULL, "b", "1h", T0);
    write1_ok(c, 0, &u, big, 1);
    e[0].bucket = t.b;
    e[1].bucket = u.b;
    e[0].leaves = e[1].leaves = big;
    e[0].n_leaves = e[1].n_leaves = 1;
    assert_int_equal(drv->inc(c, e, 2, &res, &err), TRIFLE_EDATA);
    assert_int_equal(res.applied, 0);
    assert_int_equal(res.failed_item, 1);
    assert_string_equal(err.message, "value at \"m\" of b::1h::1736935200 is not finite");
    assert_string_equal(raw("overflow", "SELECT count(*) FROM trifle_stats;"), "1");
    drv->close(c);
}

static void test_unsorted_leaves_rejected(void **state)
{
    const trifle_leaf l[] = {{"b", 1}, {"a", 1}};
    trifle_conn *c = conn_new("unsorted", TRIFLE_ID_FULL, NULL);
    trifle_error err = TRIFLE_ERROR_INIT;
    tbucket t;

    (void)state;
    tb_init(&t, TRIFLE_ID_FULL, "a", "1h", T0);
    assert_int_equal(write1(c, 0, &t, l, 2, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "leaves of item 0 are not unique and sorted by path");
    drv->close(c);
}

static void batch(int mode, size_t n)
{
    const char *name = mode == 0 ? "batch_full" : mode == 1 ? "batch_partial" : "batch_separated";
    trifle_conn *c = conn_new(name, mode, NULL);
    trifle_write_result res = {sizeof(res), 0, -1, 0};
    trifle_error err = TRIFLE_ERROR_INIT;
    const trifle_leaf l[] = {{"count", 1}, {"meta.duration", 0.5}, {"meta.size", 3}};
    tbucket *t = calloc(n, sizeof(*t));
    trifle_entry *e = calloc(n, sizeof(*e));
    trifle_bucket *b = calloc(n, sizeof(*b));
    char keys[8][8];
    trifle_sink *s;
    size_t i;
    char expect[32];

    assert_true(t != NULL && e != NULL && b != NULL);
    for (i = 0; i < 8; i++)
        (void)snprintf(keys[i], sizeof(keys[i]), "k%zu", i);
    for (i = 0; i < n; i++) {
        /* 8 keys x n/8 hours: partial/separated get many `at` per identifier */
        tb_init(&t[i], mode, keys[i % 8], "1h", T0 + 3600 * (int64_t)(i / 8));
        e[i].bucket = t[i].b;
        e[i].leaves = l;
        e[i].n_leaves = 3;
        b[i] = t[i].b;
    }
    assert_int_equal(drv->inc(c, e, n, &res, &err), 0);
    assert_int_equal(drv->inc(c, e, n, &res, &err), 0);
    s = sink_new(n);
    assert_int_equal(drv->get(c, b, n, s, &err), 0);
    for (i = 0; i < n; i++) {
        assert_int_equal(sink_count(s, i), 3);
        assert_true(sink_value(s, i, "count") == 2);
        assert_true(sink_value(s, i, "meta.duration") == 1);
        assert_true(sink_value(s, i, "meta.size") == 6);
    }
    sink_free(s);
    (void)snprintf(expect, sizeof(expect), "%zu", n);
    assert_string_equal(raw(name, "SELECT count(*) FROM trifle_stats;"), expect);
    drv->close(c);
    free(t);
    free(e);
    free(b);
}

static void test_batch_10k(void **state)
{
    (void)state;
    batch(TRIFLE_ID_FULL, 10000);
    batch(TRIFLE_ID_PARTIAL, 10000);
    batch(TRIFLE_ID_SEPARATED, 10000);
}

/* n items "<prefix><i>" (1h, T0, full identifiers) of the leaves l, in new arrays *t and *e (the
 * caller frees both). */
static void items_new(tbucket **t, trifle_entry **e, size_t n, const char *prefix,
                      const trifle_leaf *l, size_t n_l)
{
    char key[32];
    size_t i;

    *t = calloc(n, sizeof(**t));
    *e = calloc(n, sizeof(**e));
    assert_true(*t != NULL && *e != NULL);
    if (*t == NULL || *e == NULL)
        abort(); /* not reached: assert_true does not return on failure */
    for (i = 0; i < n; i++) {
        (void)snprintf(key, sizeof(key), "%s%zu", prefix, i);
        tb_init(&(*t)[i], TRIFLE_ID_FULL, key, "1h", T0);
        (*e)[i].bucket = (*t)[i].b;
        (*e)[i].leaves = l;
        (*e)[i].n_leaves = n_l;
    }
}

static void test_atomicity(void **state)
{
    const trifle_leaf l[] = {{"a", 1}};
    trifle_conn *c = conn_new("atomic", TRIFLE_ID_FULL, NULL);
    trifle_write_result res = {sizeof(res), 0, -1, 0};
    trifle_error err = TRIFLE_ERROR_INIT;
    const size_t n = 1200;
    trifle_entry *e;
    tbucket *t;

    (void)state;
    items_new(&t, &e, n, "k", l, 1);
    tb_init(&t[1100], TRIFLE_ID_FULL, "bad", "1h", T0);
    e[1100].bucket = t[1100].b;
    write1_ok(c, 0, &t[0], l, 1);
    raw("atomic", "CREATE TRIGGER no_bad_i BEFORE INSERT ON trifle_stats WHEN NEW.key LIKE 'bad%' "
                  "BEGIN SELECT RAISE(ABORT, 'bad key refused'); END;");
    /* item 1100 fails in the second chunk, after the first 500 rows were written */
    assert_int_equal(drv->inc(c, e, n, &res, &err), TRIFLE_EDRIVER);
    assert_int_equal(err.native, SQLITE_CONSTRAINT_TRIGGER);
    assert_string_equal(err.message, "bad key refused");
    assert_string_equal(err.driver, "sqlite");
    assert_int_equal(res.applied, 0);
    assert_int_equal(res.failed_item, -1);
    assert_int_equal(res.outcome_unknown, 0);
    assert_string_equal(raw("atomic", "SELECT count(*), max(data) FROM trifle_stats;"),
                        "1|{\"a\":1}");
    /* the connection is usable afterwards */
    e[1100].bucket = t[1101].b;
    e[1101].bucket = t[1100].b;
    assert_int_equal(drv->inc(c, e, 1100, &res, &err), 0);
    assert_string_equal(raw("atomic", "SELECT count(*) FROM trifle_stats;"), "1100");
    assert_string_equal(raw("atomic", "SELECT data FROM trifle_stats WHERE key LIKE 'k0:%';"),
                        "{\"a\":2}");
    drv->close(c);
    free(t);
    free(e);
}

/* ---------------------------------------------------------------------------------------------
 * Journal marks (ABI 1.1)
 */

static int marked(trifle_conn *c, const trifle_entry *set, size_t n_set, const trifle_entry *inc,
                  size_t n_inc, const char *name, uint64_t seq, trifle_write_result *res,
                  trifle_error *err)
{
    trifle_mark m = {name, seq};

    res->struct_size = sizeof(*res);
    res->applied = 0;
    res->failed_item = -1;
    res->outcome_unknown = 0;
    return drv->write_marked(c, set, n_set, inc, n_inc, &m, res, err);
}

static void test_marks_with_data(void **state)
{
    const trifle_leaf a[] = {{"count", 5}, {"x", 1}}, b[] = {{"count", 2}, {"y", 0.5}};
    const char *extra[] = {"table", "mk", NULL};
    trifle_write_result res;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_entry set[1], inc[2];
    trifle_conn *c;
    tbucket t, u;
    int mode;

    (void)state;
    for (mode = 0; mode < 3; mode++) {
        char name[32];
        (void)snprintf(name, sizeof(name), "marks_%s", mode_names[mode]);
        c = conn_new(name, mode, extra);
        assert_string_equal(raw(name, "PRAGMA table_info(mk_marks);"),
                            "0|name|TEXT|0|NULL|1\n1|seq|INTEGER|1|NULL|0");
        assert_int_equal(test_mark_read(drv, c, "j1"), 0);
        tb_init(&t, mode, "k", "1h", T0);
        tb_init(&u, mode, "k", "1d", T0);
        write1_ok(c, 0, &t, b, 2);
        /* set count=5,x=1 on t, then inc t and u by b: t = {count 7, x 1, y 0.5} */
        set[0].bucket = t.b;
        set[0].leaves = a;
        set[0].n_leaves = 2;
        inc[0].bucket = u.b;
        inc[1].bucket = t.b;
        inc[0].leaves = inc[1].leaves = b;
        inc[0].n_leaves = inc[1].n_leaves = 2;
        assert_int_equal(marked(c, set, 1, inc, 2, "j1", 7, &res, &err), 0);
        assert_int_equal(test_mark_read(drv, c, "j1"), 7);
        assert_int_equal(test_mark_read(drv, c, "j2"), 0);
        expect_get(c, &t, 3, "count", 7.0, "x", 1.0, "y", 1.0, NULL);
        expect_get(c, &u, -1, "count", 2.0, NULL);
        /* no items: only the mark moves; marks of another journal are separate rows */
        assert_int_equal(marked(c, NULL, 0, NULL, 0, "j1", 9, &res, &err), 0);
        assert_int_equal(marked(c, NULL, 0, NULL, 0, "j2", 3, &res, &err), 0);
        assert_string_equal(raw(name, "SELECT name, seq FROM mk_marks ORDER BY name;"),
                            "j1|9\nj2|3");
        assert_int_equal(test_mark_read(drv, c, "j1"), 9);
        drv->close(c);
    }
}

static void test_marks_edata_rolls_back(void **state)
{
    const trifle_leaf big[] = {{"m", 1.7976931348623157e308}}, one[] = {{"m", 1}};
    const trifle_leaf negbig[] = {{"m", -1.7976931348623157e308}};
    trifle_conn *c = conn_new("marks_edata", TRIFLE_ID_FULL, NULL);
    trifle_write_result res;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_entry set[2], inc[3];
    tbucket t[4];
    size_t i;

    (void)state;
    for (i = 0; i < 4; i++) {
        char key[8];
        (void)snprintf(key, sizeof(key), "k%zu", i);
        tb_init(&t[i], TRIFLE_ID_FULL, key, "1h", T0);
    }
    write1_ok(c, 0, &t[3], big, 1);
    assert_int_equal(marked(c, NULL, 0, NULL, 0, "j", 4, &res, &err), 0);
    for (i = 0; i < 2; i++) {
        set[i].bucket = t[i].b;
        set[i].leaves = one;
        set[i].n_leaves = 1;
    }
    for (i = 0; i < 3; i++) {
        inc[i].bucket = t[i + 1].b;
        inc[i].leaves = i == 2 ? big : one;
        inc[i].n_leaves = 1;
    }
    /* inc item 2 overflows: index 2 + 2 set items */
    assert_int_equal(marked(c, set, 2, inc, 3, "j", 5, &res, &err), TRIFLE_EDATA);
    assert_int_equal(res.applied, 0);
    assert_int_equal(res.failed_item, 4);
    assert_int_equal(res.outcome_unknown, 0);
    assert_string_equal(err.message, "value at \"m\" of k3::1h::1736935200 is not finite");
    assert_string_equal(raw("marks_edata", "SELECT key, data FROM trifle_stats;"),
                        "k3::1h::1736935200|{\"m\":1.7976931348623157e+308}");
    assert_int_equal(test_mark_read(drv, c, "j"), 4);
    /* the inc reads what the set of the same call wrote: big + big overflows (inc item 0) ... */
    set[1].leaves = big;
    set[1].bucket = t[3].b;
    inc[0].leaves = big;
    inc[0].bucket = t[3].b;
    assert_int_equal(marked(c, set, 2, inc, 1, "j", 5, &res, &err), TRIFLE_EDATA);
    assert_int_equal(res.failed_item, 2);
    assert_int_equal(test_mark_read(drv, c, "j"), 4);
    /* ... and -big + big is 0 */
    set[1].leaves = negbig;
    assert_int_equal(marked(c, set, 2, inc, 1, "j", 5, &res, &err), 0);
    assert_string_equal(raw("marks_edata", "SELECT key, data FROM trifle_stats ORDER BY key;"),
                        "k0::1h::1736935200|{\"m\":1}\nk3::1h::1736935200|{\"m\":0}");
    assert_int_equal(test_mark_read(drv, c, "j"), 5);
    drv->close(c);
}

/* A database set up before ABI 1.1 has no mark table: mark_read reads 0 without creating it, the
 * first write_marked creates it (in its transaction), and drop removes it. */
static void test_marks_old_database(void **state)
{
    const trifle_leaf one[] = {{"n", 1}};
    trifle_write_result res;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_conn *c = NULL, *c2 = NULL;
    trifle_entry e;
    const char *url;
    tbucket t;

    (void)state;
    raw("marks_old", "CREATE TABLE trifle_stats (key TEXT PRIMARY KEY, data TEXT NOT NULL "
                     "DEFAULT '{}'); CREATE TABLE trifle_stats_ping (key TEXT PRIMARY KEY, at "
                     "TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}');");
    url = db_url("marks_old");
    assert_int_equal(conn_open_opts(&c, url, TRIFLE_ID_FULL, NULL, &err), 0);
    assert_int_equal(conn_open_opts(&c2, url, TRIFLE_ID_FULL, NULL, &err), 0);
    assert_int_equal(test_mark_read(drv, c, "j"), 0);
    assert_string_equal(raw("marks_old", "SELECT count(*) FROM sqlite_master WHERE name = "
                                         "'trifle_stats_marks';"),
                        "0");
    /* a failed first write_marked leaves no table behind either */
    raw("marks_old", "CREATE TRIGGER no_bad BEFORE INSERT ON trifle_stats WHEN NEW.key LIKE "
                     "'bad%' BEGIN SELECT RAISE(ABORT, 'bad key refused'); END;");
    tb_init(&t, TRIFLE_ID_FULL, "bad", "1h", T0);
    e.bucket = t.b;
    e.leaves = one;
    e.n_leaves = 1;
    assert_int_equal(marked(c, NULL, 0, &e, 1, "j", 1, &res, &err), TRIFLE_EDRIVER);
    assert_int_equal(res.failed_item, -1);
    assert_string_equal(raw("marks_old", "SELECT count(*) FROM sqlite_master WHERE name = "
                                         "'trifle_stats_marks';"),
                        "0");
    tb_init(&t, TRIFLE_ID_FULL, "good", "1h", T0);
    e.bucket = t.b;
    assert_int_equal(marked(c, NULL, 0, &e, 1, "j", 2, &res, &err), 0);
    assert_string_equal(raw("marks_old", "SELECT name, seq FROM trifle_stats_marks;"), "j|2");
    assert_int_equal(test_mark_read(drv, c2, "j"), 2); /* the other connection sees it now */
    /* a later set up changes nothing */
    assert_int_equal(drv->setup(c2, &err), 0);
    assert_int_equal(test_mark_read(drv, c, "j"), 2);
    /* drop removes the mark table; reads answer 0 again, a new write_marked recreates it */
    assert_int_equal(drv->drop(c, &err), 0);
    assert_string_equal(raw("marks_old", "SELECT count(*) FROM sqlite_master;"), "0");
    assert_int_equal(test_mark_read(drv, c, "j"), 0);
    assert_int_equal(test_mark_read(drv, c2, "j"), 0);
    assert_int_equal(marked(c, NULL, 0, NULL, 0, "j", 3, &res, &err), 0);
    assert_int_equal(test_mark_read(drv, c2, "j"), 3);
    drv->close(c);
    drv->close(c2);
}

static void test_marks_survive_reopen(void **state)
{
    trifle_conn *c = conn_new("marks_reopen", TRIFLE_ID_PARTIAL, NULL);
    trifle_write_result res;
    trifle_error err = TRIFLE_ERROR_INIT;

    (void)state;
    assert_int_equal(marked(c, NULL, 0, NULL, 0, "a/b:c.d-e_f", (uint64_t)INT64_MAX, &res, &err),
                     0);
    drv->close(c);
    c = conn_new("marks_reopen", TRIFLE_ID_PARTIAL, NULL);
    assert_true(test_mark_read(drv, c, "a/b:c.d-e_f") == (uint64_t)INT64_MAX);
    drv->close(c);
}

/* The fault wrapper (tests/fault_driver.c) around this plugin: it declares sqlite's capabilities,
 * forwards, and a child that reaches fault_exit_after_commit=2 dies with 86 right after the
 * second committed write: the file holds both writes and the mark. */
static void test_fault_wrapper_exit_after_commit(void **state)
{
    const trifle_leaf one[] = {{"n", 1}};
    trifle_error err = TRIFLE_ERROR_INIT;
    const trifle_driver *fd = NULL;
    char path[512], url[600];
    trifle_conn *c = NULL;
    void *fp = NULL;
    int status = 0;
    pid_t pid;
    tbucket t;

    (void)state;
    assert_int_equal(setenv("TRIFLE_FAULT_INNER", TRIFLE_BUILD_PLUGIN_DIR "/trifle_sqlite.so", 1),
                     0);
    fd = test_host_load(TRIFLE_TEST_PLUGIN_DIR "/trifle_fault.so", "fault", &fp);
    assert_non_null(fd);
    assert_string_equal(fd->name, "fault");
    assert_int_equal(fd->caps, drv->caps);
    assert_non_null(fd->write_marked);
    assert_non_null(fd->drop);

    db_path(path, sizeof(path), "fault");
    (void)snprintf(url, sizeof(url), "fault:sqlite:%s", path);
    {
        const char *opts[] = {"fault_exit_after", "2", NULL};
        assert_int_equal(test_host_open(fd, &c, url, TRIFLE_ID_FULL, "::", opts, &err),
                         TRIFLE_ECONFIG);
        assert_string_equal(err.message, "invalid driver URL: unknown parameter fault_exit_after");
        assert_null(c);
    }
    tb_init(&t, TRIFLE_ID_FULL, "k", "1h", T0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *opts[] = {"fault_exit_after_commit", "2", NULL};
        trifle_write_result res = {sizeof(res), 0, -1, 0};
        trifle_mark m = {"journal", 41};
        trifle_entry e = {t.b, one, 1};

        if (test_host_open(fd, &c, url, TRIFLE_ID_FULL, "::", opts, &err) != 0 ||
            fd->setup(c, &err) != 0 || fd->inc(c, &e, 1, &res, &err) != 0)
            _exit(1);
        (void)fd->write_marked(c, NULL, 0, &e, 1, &m, &res, &err);
        _exit(2); /* not reached: the second committed write exits */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 86);
    assert_string_equal(raw("fault", "SELECT key, data FROM trifle_stats;"),
                        "k::1h::1736935200|{\"n\":2}");
    assert_string_equal(raw("fault", "SELECT name, seq FROM trifle_stats_marks;"), "journal|41");
    dlclose(fp);
}

typedef struct locker {
    char path[512];
    double hold_s;
    atomic_int locked;
} locker;

static void *locker_main(void *p)
{
    locker *lk = p;
    sqlite3 *db = NULL;
    struct timespec ts;

    if (sq3.open_v2(lk->path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sq3.exec(db, "BEGIN IMMEDIATE;", NULL, NULL, NULL) != SQLITE_OK) {
        atomic_store(&lk->locked, -1);
        return NULL;
    }
    atomic_store(&lk->locked, 1);
    ts.tv_sec = (time_t)lk->hold_s;
    ts.tv_nsec = (long)((lk->hold_s - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
    (void)sq3.exec(db, "COMMIT;", NULL, NULL, NULL);
    sq3.close(db);
    return NULL;
}

static void test_busy(void **state)
{
    const trifle_leaf l[] = {{"a", 1}};
    trifle_conn *c;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_sink *s;
    locker lk;
    pthread_t th;
    double t0, dt;
    tbucket t;

    (void)state;
    if (test_light())
        skip(); /* 25 s of lock waits; the release and sanitizer runs cover it */
    c = conn_new("busy", TRIFLE_ID_FULL, NULL);
    tb_init(&t, TRIFLE_ID_FULL, "a", "1h", T0);
    db_path(lk.path, sizeof(lk.path), "busy");

    /* held for longer than 4 x busy_timeout: EBUSY after the 3 retries */
    lk.hold_s = 24;
    atomic_store(&lk.locked, 0);
    assert_int_equal(pthread_create(&th, NULL, locker_main, &lk), 0);
    while (atomic_load(&lk.locked) == 0)
        nap_ms(1);
    assert_int_equal(atomic_load(&lk.locked), 1);
    log_warn = 0;
    t0 = now_s();
    assert_int_equal(write1(c, 0, &t, l, 1, &err), TRIFLE_EBUSY);
    dt = now_s() - t0;
    assert_int_equal(err.native & 0xff, SQLITE_BUSY);
    assert_int_equal(log_warn, 3);
    assert_true(dt >= 19.0);
    /* reads are not blocked by a writer (WAL) */
    s = get1(c, &t);
    sink_free(s);
    assert_int_equal(pthread_join(th, NULL), 0);

    /* held for 7 s: the first BEGIN IMMEDIATE times out after 5 s, the retry succeeds */
    lk.hold_s = 7;
    atomic_store(&lk.locked, 0);
    assert_int_equal(pthread_create(&th, NULL, locker_main, &lk), 0);
    while (atomic_load(&lk.locked) == 0)
        nap_ms(1);
    log_warn = 0;
    t0 = now_s();
    write1_ok(c, 0, &t, l, 1);
    dt = now_s() - t0;
    assert_int_equal(log_warn, 1);
    assert_true(dt >= 5.0);
    assert_int_equal(pthread_join(th, NULL), 0);
    expect_get(c, &t, -1, "a", 1.0, NULL);
    drv->close(c);
}

static void test_missing_table(void **state)
{
    const trifle_leaf l[] = {{"a", 1}};
    const char *extra[] = {"ping_table", "pings", NULL};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_conn *c = NULL;
    trifle_sink *s = sink_new(1);
    const char *url;
    int64_t at;
    tbucket t;

    (void)state;
    url = db_url("missing");
    assert_int_equal(conn_open_opts(&c, url, TRIFLE_ID_PARTIAL, extra, &err), 0);
    tb_init(&t, TRIFLE_ID_PARTIAL, "a", "1h", T0);
    assert_int_equal(write1(c, 0, &t, l, 1, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "table trifle_stats does not exist (run \"trifle setup\")");
    assert_int_equal(drv->get(c, &t.b, 1, s, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "table trifle_stats does not exist (run \"trifle setup\")");
    assert_int_equal(drv->scan(c, "a", &at, s, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "table pings does not exist (run \"trifle setup\")");
    assert_int_equal(drv->ping(c, "a", T0, l, 1, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "table pings does not exist (run \"trifle setup\")");
    /* after setup the same connection works */
    assert_int_equal(drv->setup(c, &err), 0);
    write1_ok(c, 0, &t, l, 1);
    assert_int_equal(drv->ping(c, "a", T0, l, 1, &err), 0);
    assert_string_equal(raw("missing", "SELECT key, at FROM pings;"), "a|" T0_TEXT);
    drv->close(c);
    sink_free(s);
}

static void expect_open_error(const char *url, const char *const *extra, int code,
                              const char *message)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_conn *c = (trifle_conn *)&err; /* must be reset to NULL */

    assert_int_equal(conn_open_opts(&c, url, TRIFLE_ID_FULL, extra, &err), code);
    assert_null(c);
    assert_int_equal(err.code, code);
    if (strcmp(err.message, message) != 0)
        fail_msg("open %s: expected \"%s\", got \"%s\"", url, message, err.message);
}

static void test_open_errors(void **state)
{
    char url[600], long_name[64], ok_name[64], message[128];
    const char *bad1[] = {"table", "1abc", NULL};
    const char *bad2[] = {"table", "a-b", NULL};
    const char *bad3[] = {"table", "", NULL};
    const char *bad4[] = {"table", long_name, NULL};
    const char *bad5[] = {"table", "ok", "ping_table", "p;drop", NULL};
    const char *unknown[] = {"table", "ok", "timeout_ms", "5", NULL};
    const char *known[] = {"joined", "partial", "separator", "--", "system_tracking",
                           "false",  "table",   ok_name,     NULL};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_conn *c = NULL;

    (void)state;
    memset(long_name, 'x', 59);
    long_name[59] = '\0';
    memset(ok_name, 'y', 58);
    ok_name[58] = '\0';
    (void)snprintf(url, sizeof(url), "sqlite:%s/open.db", tmpdir);
    expect_open_error(url, bad1, TRIFLE_ECONFIG, "invalid table name: 1abc");
    expect_open_error(url, bad2, TRIFLE_ECONFIG, "invalid table name: a-b");
    expect_open_error(url, bad3, TRIFLE_ECONFIG, "invalid table name: ");
    (void)snprintf(message, sizeof(message), "invalid table name: %s", long_name);
    expect_open_error(url, bad4, TRIFLE_ECONFIG, message);
    expect_open_error(url, bad5, TRIFLE_ECONFIG, "invalid table name: p;drop");
    expect_open_error(url, unknown, TRIFLE_ECONFIG,
                      "invalid driver URL: unknown parameter timeout_ms");
    expect_open_error("sqlite:", NULL, TRIFLE_ECONFIG, "invalid driver URL: missing database path");
    expect_open_error("sqlite://host/x.db", NULL, TRIFLE_ECONFIG,
                      "invalid driver URL: use sqlite:PATH or sqlite:///ABSOLUTE/PATH");
    expect_open_error("postgres://x", NULL, TRIFLE_ECONFIG,
                      "invalid driver URL: expected sqlite:PATH");
    (void)snprintf(url, sizeof(url), "sqlite:%s/no/such/dir/x.db", tmpdir);
    assert_int_equal(conn_open_opts(&c, url, TRIFLE_ID_FULL, NULL, &err), TRIFLE_ECONN);
    assert_null(c);
    assert_int_equal(err.native & 0xff, SQLITE_CANTOPEN);
    /* a file that is not a database */
    (void)snprintf(url, sizeof(url), "%s/garbage.db", tmpdir);
    {
        FILE *f = fopen(url, "wb");
        assert_non_null(f);
        for (int i = 0; i < 200; i++)
            (void)fputs("this is not a database. ", f);
        assert_int_equal(fclose(f), 0);
    }
    (void)snprintf(url, sizeof(url), "sqlite:%s/garbage.db", tmpdir);
    assert_int_equal(conn_open_opts(&c, url, TRIFLE_ID_FULL, NULL, &err), TRIFLE_EDRIVER);
    assert_int_equal(err.native, SQLITE_NOTADB);
    /* a mode out of range in trifle_open_params (the core never passes one) */
    (void)snprintf(url, sizeof(url), "sqlite:%s/open.db", tmpdir);
    assert_int_equal(conn_open_opts(&c, url, 7, NULL, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "invalid identifier mode: 7");
    assert_null(c);
    /* parameters every driver takes, and a 58-byte table name */
    (void)snprintf(url, sizeof(url), "sqlite:%s/open.db", tmpdir);
    assert_int_equal(conn_open_opts(&c, url, TRIFLE_ID_FULL, known, &err), 0);
    assert_int_equal(drv->setup(c, &err), 0);
    drv->close(c);
    drv->close(NULL);
}

static void test_url_forms(void **state)
{
    const trifle_leaf l[] = {{"a", 1}};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_conn *c = NULL;
    char url[600], cwd[512];
    struct stat st;
    tbucket t;

    (void)state;
    tb_init(&t, TRIFLE_ID_FULL, "a", "1h", T0);
    /* sqlite:///abs/path is /abs/path */
    (void)snprintf(url, sizeof(url), "sqlite://%s/triple.db", tmpdir);
    assert_int_equal(conn_open_opts(&c, url, TRIFLE_ID_FULL, NULL, &err), 0);
    drv->close(c);
    (void)snprintf(url, sizeof(url), "%s/triple.db", tmpdir);
    assert_int_equal(stat(url, &st), 0);
    /* relative paths are relative to the working directory */
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(tmpdir), 0);
    assert_int_equal(conn_open_opts(&c, "sqlite:relative.db", TRIFLE_ID_FULL, NULL, &err), 0);
    drv->close(c);
    assert_int_equal(stat("relative.db", &st), 0);
    /* "file:" is a file name, not an SQLite URI */
    assert_int_equal(conn_open_opts(&c, "sqlite:file:uri.db", TRIFLE_ID_FULL, NULL, &err), 0);
    drv->close(c);
    assert_int_equal(stat("file:uri.db", &st), 0);
    assert_int_equal(chdir(cwd), 0);
    /* in memory: everything works, nothing is written to disk */
    assert_int_equal(conn_open_opts(&c, "sqlite::memory:", TRIFLE_ID_FULL, NULL, &err), 0);
    assert_int_equal(drv->setup(c, &err), 0);
    write1_ok(c, 0, &t, l, 1);
    write1_ok(c, 0, &t, l, 1);
    expect_get(c, &t, -1, "a", 2.0, NULL);
    drv->close(c);
}

static void test_ping_scan(void **state)
{
    const trifle_leaf l1[] = {{"a", 1}, {"b.c", 2.5}};
    const trifle_leaf l2[] = {{"x", 5}};
    const char *extra[] = {"table", "st", "ping_table", "pongs", NULL};
    trifle_conn *c = conn_new("ping", TRIFLE_ID_SEPARATED, extra);
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_sink *s = sink_new(1);
    int64_t at = 0;

    (void)state;
    assert_int_equal(drv->scan(c, "health", &at, s, &err), TRIFLE_ENOTFOUND);
    assert_int_equal(err.code, TRIFLE_ENOTFOUND);
    assert_int_equal(drv->ping(c, "health", T0 + 17, l1, 2, &err), 0);
    assert_string_equal(raw("ping", "SELECT key, at, data FROM pongs;"),
                        "health|2025-01-15T10:00:17Z|{\"at\":\"2025-01-15T10:00:17Z\",\"data.a\":1,"
                        "\"data.b.c\":2.5}");
    assert_int_equal(drv->scan(c, "health", &at, s, &err), 0);
    assert_true(at == T0 + 17);
    assert_int_equal(sink_count(s, 0), 2);
    assert_true(sink_value(s, 0, "a") == 1);
    assert_true(sink_value(s, 0, "b.c") == 2.5);
    sink_free(s);
    /* a ping replaces the previous one */
    assert_int_equal(drv->ping(c, "health", T0 - 100, l2, 1, &err), 0);
    s = sink_new(1);
    assert_int_equal(drv->scan(c, "health", &at, s, &err), 0);
    assert_true(at == T0 - 100);
    assert_int_equal(sink_count(s, 0), 1);
    assert_true(sink_value(s, 0, "x") == 5);
    sink_free(s);
    assert_string_equal(raw("ping", "SELECT count(*) FROM pongs;"), "1");
    assert_string_equal(raw("ping", "SELECT count(*) FROM st;"), "0");
    /* pings without values; other keys stay apart */
    assert_int_equal(drv->ping(c, "other", T0, NULL, 0, &err), 0);
    s = sink_new(1);
    assert_int_equal(drv->scan(c, "other", &at, s, &err), 0);
    assert_true(at == T0);
    assert_int_equal(sink_count(s, 0), 0);
    sink_free(s);

    /* `at` as others store it: the legacy fraction, an offset, integer seconds, nested data */
    {
        static const struct {
            const char *at_sql;
            int64_t at;
        } v[] = {
            {"'" T0_LEGACY "'", T0},        {"'2025-01-15T12:00:00.999+02:00'", T0},
            {"'2025-01-15 10:00:00Z'", T0}, {"1736935200", T0},
            {"1736935200.75", T0},          {"-0.5", -1},
            {"'1736935201'", T0 + 1},       {"'1969-12-31T23:59:59.5Z'", -1},
        };
        char sql[512];
        size_t i;
        for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
            (void)snprintf(sql, sizeof(sql),
                           "UPDATE pongs SET at = %s, data = '{\"at\":\"x\",\"data\":{\"n\":1},"
                           "\"data.n\":2,\"data.s\":\"t\",\"other\":3}' WHERE key = 'other';",
                           v[i].at_sql);
            raw("ping", sql);
            s = sink_new(1);
            assert_int_equal(drv->scan(c, "other", &at, s, &err), 0);
            assert_true(at == v[i].at);
            assert_int_equal(sink_count(s, 0), 1);
            assert_true(sink_value(s, 0, "n") == 3);
            sink_free(s);
        }
        /* columns without TEXT affinity keep numbers as numbers */
        raw("ping", "CREATE TABLE num_pings (key TEXT PRIMARY KEY, at, data TEXT);"
                    "INSERT INTO num_pings VALUES ('r', 1736935200.75, '{\"data.v\":1}'),"
                    " ('i', 1736935200, NULL), ('n', -0.25, '');");
        {
            const char *num_extra[] = {"table", "st", "ping_table", "num_pings", NULL};
            trifle_conn *d = NULL;
            const char *url;
            url = db_url("ping");
            assert_int_equal(conn_open_opts(&d, url, TRIFLE_ID_SEPARATED, num_extra, &err), 0);
            s = sink_new(1);
            assert_int_equal(drv->scan(d, "r", &at, s, &err), 0);
            assert_true(at == T0);
            assert_true(sink_value(s, 0, "v") == 1);
            assert_int_equal(drv->scan(d, "i", &at, s, &err), 0);
            assert_true(at == T0);
            assert_int_equal(drv->scan(d, "n", &at, s, &err), 0);
            assert_true(at == -1);
            assert_int_equal(sink_count(s, 0), 1);
            sink_free(s);
            drv->close(d);
        }
        raw("ping", "UPDATE pongs SET at = 'yesterday' WHERE key = 'other';");
        s = sink_new(1);
        assert_int_equal(drv->scan(c, "other", &at, s, &err), TRIFLE_EDRIVER);
        assert_string_equal(err.message, "invalid ping time \"yesterday\" for key other");
        sink_free(s);
    }
    drv->close(c);
}

static void test_oom(void **state)
{
    const trifle_leaf l[] = {{"a", 1}, {"b", 2}, {"c.d", 3}};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_sink *s;
    tbucket t;
    long n, failures = 0;
    int rc;
    trifle_conn *c = conn_new("oom", TRIFLE_ID_PARTIAL, NULL);

    (void)state;
    tb_init(&t, TRIFLE_ID_PARTIAL, "ev", "1h", T0);
    raw("oom", "INSERT INTO trifle_stats (key, at, data) VALUES ('ev::1h', '" T0_TEXT
               "', '{\"a\":10,\"s\":\"keep\",\"n\":{\"e\":{\"s\":\"t\",\"d\":[1,2,3]}}}');");
    drv->close(c);
    /* fail allocation 1, 2, ... of an inc on a fresh connection until it succeeds: every failure
     * is ENOMEM and rolls back, so exactly one inc is applied */
    for (n = 1;; n++) {
        c = conn_new("oom", TRIFLE_ID_PARTIAL, NULL);
        alloc_count = 0;
        alloc_fail_at = n;
        rc = write1(c, 0, &t, l, 3, &err);
        alloc_fail_at = 0;
        drv->close(c);
        if (rc == 0)
            break;
        assert_int_equal(rc, TRIFLE_ENOMEM);
        failures++;
    }
    assert_true(failures >= 3);
    assert_string_equal(raw("oom", "SELECT data FROM trifle_stats;"),
                        "{\"a\":11,\"b\":2,\"c.d\":3,\"n.e.d\":[1,2,3],\"n.e.s\":\"t\",\"s\":"
                        "\"keep\"}");
    /* reads, pings, scans and open fail cleanly too */
    for (n = 1;; n++) {
        trifle_conn *d = NULL;
        const char *url;
        int64_t at;
        url = db_url("oom");
        alloc_count = 0;
        alloc_fail_at = n;
        rc = conn_open_opts(&d, url, TRIFLE_ID_PARTIAL, NULL, &err);
        if (rc == 0) {
            s = sink_new(1);
            rc = drv->get(d, &t.b, 1, s, &err);
            if (rc == 0)
                rc = drv->ping(d, "p", T0, l, 3, &err);
            if (rc == 0)
                rc = drv->scan(d, "p", &at, s, &err);
            sink_free(s);
        }
        alloc_fail_at = 0;
        drv->close(d);
        if (rc == 0)
            break;
        assert_int_equal(rc, TRIFLE_ENOMEM);
    }
    assert_true(n > 3);
}

static void test_throughput(void **state)
{
    const size_t calls = 100, items = 1000;
    const trifle_leaf l[] = {{"count", 1}, {"meta.duration", 0.25}, {"meta.size", 3}};
    trifle_conn *c = conn_new("bench", TRIFLE_ID_FULL, NULL);
    trifle_write_result res = {sizeof(res), 0, -1, 0};
    trifle_error err = TRIFLE_ERROR_INIT;
    double t0, dt, cpu0, cpu;
    trifle_entry *e;
    tbucket *t;
    size_t i;

    (void)state;
    items_new(&t, &e, items, "metric", l, 3);
    t0 = now_s();
    cpu0 = cpu_s();
    for (i = 0; i < calls; i++)
        assert_int_equal(drv->inc(c, e, items, &res, &err), 0);
    dt = now_s() - t0;
    cpu = cpu_s() - cpu0;
    print_message("sqlite inc throughput: %zu calls x %zu items (3 leaves) in %.3f s = %.0f "
                  "items/s (%.0f items per CPU second)\n",
                  calls, items, dt, (double)(calls * items) / dt, (double)(calls * items) / cpu);
    expect_get(c, &t[items - 1], -1, "count", (double)calls, "meta.duration", 0.25 * (double)calls,
               NULL);
    drv->close(c);
    free(t);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_driver_table),
        cmocka_unit_test(test_schema_per_mode),
        cmocka_unit_test(test_inc_set_get_every_mode),
        cmocka_unit_test(test_get_order_with_gaps),
        cmocka_unit_test(test_sqlite_read_vectors),
        cmocka_unit_test(test_legacy_at_rows),
        cmocka_unit_test(test_non_numeric_and_invalid_json),
        cmocka_unit_test(test_ruby_schema_and_null_data),
        cmocka_unit_test(test_awkward_paths),
        cmocka_unit_test(test_doubles_round_trip),
        cmocka_unit_test(test_overflow_is_edata),
        cmocka_unit_test(test_unsorted_leaves_rejected),
        cmocka_unit_test(test_batch_10k),
        cmocka_unit_test(test_atomicity),
        cmocka_unit_test(test_marks_with_data),
        cmocka_unit_test(test_marks_edata_rolls_back),
        cmocka_unit_test(test_marks_old_database),
        cmocka_unit_test(test_marks_survive_reopen),
        cmocka_unit_test(test_fault_wrapper_exit_after_commit),
        cmocka_unit_test(test_missing_table),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_url_forms),
        cmocka_unit_test(test_ping_scan),
        cmocka_unit_test(test_oom),
        cmocka_unit_test(test_throughput),
        cmocka_unit_test(test_busy),
    };

    /* TRIFLE_TEST_FILTER=test_throughput runs one test (cmocka glob) */
    if (getenv("TRIFLE_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("TRIFLE_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
