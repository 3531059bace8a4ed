/* The PostgreSQL driver plugin (SPEC §7.6) on a real server, for what trifle-conformance cannot
 * see: the exact rows as psql sees them, error mapping, reconnects, a reply lost on the wire,
 * atomicity of a failing batch, retries of serialisation failures, concurrent processes, and
 * allocation failures.
 *
 * The plugin is loaded by the real loader (trifle_storage_open with TRIFLE_BUILD_PLUGIN_DIR). Raw
 * SQL goes through the libpq the plugin itself loads (dlsym), so the test needs no link
 * dependency on libpq. The server is $TRIFLE_TEST_URI_POSTGRES (a libpq URI without a query);
 * without it the program exits 77 (a ctest skip), or fails when CI=true or TRIFLE_TEST_STRICT=1.
 * Every test works in its own tables `tpg_<pid>_<n>` and drops them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<libpq-fe.h>)
#include <libpq-fe.h>
#else
#include <postgresql/libpq-fe.h>
#endif
#else
#include <postgresql/libpq-fe.h>
#endif

#include "server_helpers.h"
#include "storage_cases.h"
#include "storage_items.h"
#include "trifle/trifle.h"

#define T0 INT64_C(1736935200) /* 2025-01-15T10:00:00Z */

static const char *server; /* $TRIFLE_TEST_URI_POSTGRES */

/* ---------------------------------------------------------------------------------------------
 * libpq through dlsym
 */

static struct {
    PGconn *(*connectdb)(const char *);
    ConnStatusType (*status)(const PGconn *);
    char *(*error_message)(const PGconn *);
    void (*finish)(PGconn *);
    PGresult *(*exec)(PGconn *, const char *);
    ExecStatusType (*result_status)(const PGresult *);
    char *(*result_error_message)(const PGresult *);
    int (*ntuples)(const PGresult *);
    char *(*getvalue)(const PGresult *, int, int);
    int (*getisnull)(const PGresult *, int, int);
    void (*clear)(PGresult *);
    PQconninfoOption *(*conninfo_parse)(const char *, char **);
    void (*conninfo_free)(PQconninfoOption *);
    void (*freemem)(void *);
} pq;

#define LOAD(field, name) test_load_sym(lib, &pq.field, sizeof(pq.field), name)

static void pq_load(void)
{
    void *lib = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);

    if (lib == NULL) {
        (void)fprintf(stderr, "cannot load libpq.so.5: %s\n", dlerror());
        exit(1);
    }
    LOAD(connectdb, "PQconnectdb");
    LOAD(status, "PQstatus");
    LOAD(error_message, "PQerrorMessage");
    LOAD(finish, "PQfinish");
    LOAD(exec, "PQexec");
    LOAD(result_status, "PQresultStatus");
    LOAD(result_error_message, "PQresultErrorMessage");
    LOAD(ntuples, "PQntuples");
    LOAD(getvalue, "PQgetvalue");
    LOAD(getisnull, "PQgetisnull");
    LOAD(clear, "PQclear");
    LOAD(conninfo_parse, "PQconninfoParse");
    LOAD(conninfo_free, "PQconninfoFree");
    LOAD(freemem, "PQfreemem");
}

static PGconn *raw_conn;

static PGconn *raw_open(void)
{
    PGconn *c = pq.connectdb(server);

    if (pq.status(c) != CONNECTION_OK)
        fail_msg("raw connection to %s: %s", server, pq.error_message(c));
    return c;
}

/* Run sql on the raw connection; the first value of the first row, "" without rows, or NULL
 * for SQL NULL. Each call's text replaces the previous one's. */
static const char *raw_on(PGconn *c, const char *fmt, ...)
{
    static char out[8192];
    char sql[4096];
    PGresult *r;
    ExecStatusType st;
    va_list ap;
    int null;

    va_start(ap, fmt);
    (void)vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    r = pq.exec(c, sql);
    st = pq.result_status(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        fail_msg("raw SQL failed: %s: %s", sql, pq.result_error_message(r));
    out[0] = '\0';
    null = st == PGRES_TUPLES_OK && pq.ntuples(r) > 0 && pq.getisnull(r, 0, 0);
    if (st == PGRES_TUPLES_OK && pq.ntuples(r) > 0 && !null)
        (void)snprintf(out, sizeof(out), "%s", pq.getvalue(r, 0, 0));
    pq.clear(r);
    return null ? NULL : out;
}

#define raw(...) raw_on(raw_conn, __VA_ARGS__)

/* ---------------------------------------------------------------------------------------------
 * Storage helpers
 */

typedef test_ns ns;

/* A fresh namespace and the URL for it with extra parameters ("joined=partial&..."). */
static void ns_init(ns *n, const char *params)
{
    test_ns_init(n, "tpg", server, params);
}

static void ns_drop(const ns *n)
{
    (void)raw("DROP TABLE IF EXISTS %s, %s_ping, %s_marks", n->table, n->table, n->table);
}

static trifle_storage *st_new(const ns *n)
{
    return storage_new(n->url);
}

/* A SQLSTATE packed as PostgreSQL's MAKE_SQLSTATE does: the driver's `native` code. */
static int sqlstate_code(const char *s)
{
    unsigned v = 0;
    int i;

    for (i = 0; i < 5; i++)
        v |= (unsigned)((s[i] - '0') & 0x3F) << (6 * i);
    return (int)v;
}

/* The backend pid of the driver connection named by application_name. */
static const char *backend_of(const char *app)
{
    return raw("SELECT pid FROM pg_stat_activity WHERE application_name = '%s'", app);
}

/* ---------------------------------------------------------------------------------------------
 * Tests
 */

static void test_driver_table(void **state)
{
    const trifle_driver *d = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    char path[600];

    (void)state;
    (void)snprintf(path, sizeof(path), "%s/trifle_postgres.so", TRIFLE_BUILD_PLUGIN_DIR);
    assert_int_equal(trifle_driver_load(&d, path, NULL, &err), 0);
    assert_string_equal(d->name, "postgres");
    assert_string_equal(d->version, "1.1.0");
    assert_int_equal(d->caps, TRIFLE_CAP_MODE_PARTIAL | TRIFLE_CAP_MODE_SEPARATED |
                                  TRIFLE_CAP_PING | TRIFLE_CAP_ATOMIC_BATCH | TRIFLE_CAP_SETUP |
                                  TRIFLE_CAP_EXACT_DOUBLES | TRIFLE_CAP_JOURNAL_MARK);
    assert_non_null(d->write_marked);
    assert_non_null(d->mark_read);
    assert_string_equal(d->schemes[0], "postgres");
    assert_string_equal(d->schemes[1], "postgresql");
    assert_null(d->schemes[2]);
    assert_non_null(d->drop);
}

/* The rows, columns and types exactly as psql sees them, in every identifier mode. */
static void test_layout(void **state)
{
    static const char *const modes[] = {"full", "partial", "separated"};
    static const char *const pk[] = {"key", "key, at", "key, granularity, at"};
    const trifle_leaf l[] = {{"count", 1}, {"meta.duration", 2.5}, {"q\"x", 0.1}};
    const trifle_leaf s[] = {{"gauge", -7}};
    trifle_error err = TRIFLE_ERROR_INIT;
    int m;

    (void)state;
    for (m = 0; m < 3; m++) {
        char params[64];
        trifle_storage *st;
        item it[2];
        ns n;

        (void)snprintf(params, sizeof(params), "joined=%s", modes[m]);
        ns_init(&n, params);
        st = st_new(&n);
        item_init(&it[0], st, "event", T0, l, 3);
        assert_int_equal(trifle_storage_inc(st, &it[0].e, 1, NULL, &err), 0);
        assert_int_equal(trifle_storage_inc(st, &it[0].e, 1, NULL, &err), 0);
        item_init(&it[1], st, "event", T0, s, 1);
        assert_int_equal(trifle_storage_set(st, &it[1].e, 1, NULL, &err), 0);

        /* the schema of SPEC §7.6, verbatim */
        assert_string_equal(raw("SELECT string_agg(column_name || ' ' || data_type || "
                                "coalesce('(' || character_maximum_length || ')', '') || ' ' || "
                                "is_nullable || coalesce(' ' || column_default, ''), ', ' ORDER BY "
                                "ordinal_position) FROM information_schema.columns WHERE "
                                "table_name = '%s'",
                                n.table),
                            m == 0 ? "key character varying(255) NO, data jsonb NO '{}'::jsonb"
                            : m == 1
                                ? "key character varying(255) NO, at timestamp with time zone "
                                  "NO, data jsonb NO '{}'::jsonb"
                                : "key character varying(255) NO, granularity character "
                                  "varying(255) NO, at timestamp with time zone NO, data jsonb "
                                  "NO '{}'::jsonb");
        assert_string_equal(raw("SELECT string_agg(a.attname, ', ' ORDER BY k.n) FROM pg_index "
                                "i CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(att, n) JOIN "
                                "pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.att "
                                "WHERE i.indrelid = '%s'::regclass AND i.indisprimary",
                                n.table),
                            pk[m]);
        /* one row: flat dotted keys, exact numeric sums (0.1 + 0.1 = 0.2) */
        assert_string_equal(raw("SELECT count(*) FROM %s", n.table), "1");
        assert_string_equal(raw("SELECT data::text FROM %s", n.table),
                            "{\"q\\\"x\": 0.2, \"count\": 2, \"gauge\": -7, \"meta.duration\": "
                            "5.0}");
        assert_string_equal(raw("SELECT key FROM %s", n.table), m == 0   ? "event::1h::1736935200"
                                                                : m == 1 ? "event::1h"
                                                                         : "event");
        if (m > 0)
            assert_string_equal(
                raw("SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                    "FROM %s",
                    n.table),
                "2025-01-15T10:00:00Z");
        if (m == 2)
            assert_string_equal(raw("SELECT granularity FROM %s", n.table), "1h");
        assert_int_equal(trifle_storage_drop(st, &err), 0);
        assert_null(raw("SELECT to_regclass('%s')", n.table));
        assert_null(raw("SELECT to_regclass('%s_ping')", n.table));
        trifle_storage_close(st);
    }
}

static void test_ping_layout(void **state)
{
    const trifle_leaf l[] = {{"cpu.load", 0.5}, {"up", 1}};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st;
    int64_t at = 0;
    got g;
    ns n;

    (void)state;
    ns_init(&n, "ping_table=tpg_custom_ping");
    st = st_new(&n);
    assert_int_equal(trifle_storage_ping(st, "health", T0 + 7, l, 2, &err), 0);
    assert_string_equal(raw("SELECT key || ' ' || extract(epoch FROM at)::bigint || ' ' || "
                            "data::text FROM tpg_custom_ping"),
                        "health 1736935207 {\"at\": \"2025-01-15T10:00:07Z\", \"data.up\": 1, "
                        "\"data.cpu.load\": 0.5}");
    /* scan takes the data.* leaves only, without the prefix; foreign nested copies sum */
    (void)raw("UPDATE tpg_custom_ping SET data = data || '{\"data\": {\"up\": 2}, \"x\": 5}'");
    memset(&g, 0, sizeof(g));
    assert_int_equal(trifle_storage_scan(st, "health", &at, got_leaf, &g, &err), 0);
    assert_true(at == T0 + 7);
    assert_int_equal(g.n, 2);
    assert_true(got_value(&g, 0, "cpu.load") == 0.5);
    assert_true(got_value(&g, 0, "up") == 3);
    memset(&g, 0, sizeof(g));
    assert_int_equal(trifle_storage_scan(st, "nobody", &at, got_leaf, &g, &err), TRIFLE_ENOTFOUND);
    assert_int_equal(trifle_storage_drop(st, &err), 0);
    assert_null(raw("SELECT to_regclass('tpg_custom_ping')"));
    trifle_storage_close(st);
}

/* Rows written by others: nested copies are summed, text and nulls are skipped, a text leaf
 * counts as 0 when incremented (ERRATA I5), and a bucket asked for twice is delivered twice. */
static void test_foreign_rows(void **state)
{
    const trifle_leaf l[] = {{"label", 2}, {"n", 1}};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st;
    trifle_bucket b[3];
    item it;
    got g;
    ns n;

    (void)state;
    ns_init(&n, NULL);
    st = st_new(&n);
    (void)raw("INSERT INTO %s (key, data) VALUES ('k::1h::1736935200', '{\"meta.duration\": 2, "
              "\"meta\": {\"duration\": 4, \"deep\": {\"x\": 1e-7}}, \"label\": \"text\", \"n\": "
              "null, \"arr\": [1, 2], \"big\": 1e400, \"a..b\": 3, \"t\": true}')",
              n.table);
    item_init(&it, st, "k", T0, NULL, 0);
    b[0] = it.e.bucket;
    b[1] = it.e.bucket;
    b[2] = it.e.bucket;
    b[2].id = "missing::1h::1736935200";
    memset(&g, 0, sizeof(g));
    assert_int_equal(trifle_storage_get(st, b, 3, got_leaf, &g, &err), 0);
    assert_int_equal(got_count(&g, 0), 2);
    assert_true(got_value(&g, 0, "meta.duration") == 6);
    assert_true(got_value(&g, 0, "meta.deep.x") == 1e-7);
    assert_int_equal(got_count(&g, 1), 2);
    assert_true(got_value(&g, 1, "meta.duration") == 6);
    assert_int_equal(got_count(&g, 2), 0);

    inc1(st, "k", T0, l, 2);
    get1(st, "k", T0, &g);
    assert_true(got_value(&g, 0, "label") == 2);
    assert_true(got_value(&g, 0, "n") == 1);
    assert_string_equal(raw("SELECT data->>'label' FROM %s", n.table), "2");
    ns_drop(&n);
    trifle_storage_close(st);
}

/* Doubles survive the numeric round trip; sums are exact decimals (as the Ruby gem). */
static void test_numbers(void **state)
{
    const trifle_leaf l[] = {
        {"a", 0.1}, {"big", 1e300}, {"neg", -2.5}, {"tiny", 5e-324}, {"x", 1.2345678901234567e-7}};
    trifle_storage *st;
    int i;
    got g;
    ns n;

    (void)state;
    ns_init(&n, NULL);
    st = st_new(&n);
    for (i = 0; i < 3; i++)
        inc1(st, "num", T0, l, 5);
    get1(st, "num", T0, &g);
    assert_true(got_value(&g, 0, "a") == 0.3); /* a double sum would give 0.30000000000000004 */
    assert_true(got_value(&g, 0, "big") == 3e300);
    assert_true(got_value(&g, 0, "neg") == -7.5);
    assert_true(got_value(&g, 0, "tiny") == 1.5e-323);
    assert_true(got_value(&g, 0, "x") == 3.7037036703703701e-7);
    assert_string_equal(raw("SELECT data->>'a' FROM %s", n.table), "0.3");
    ns_drop(&n);
    trifle_storage_close(st);
}

static void test_errors(void **state)
{
    const trifle_leaf l[] = {{"count", 1}};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st = NULL;
    char url[1200];
    int64_t at;
    item it;
    got g;
    int rc;
    ns n;

    (void)state;
    /* nobody listens */
    (void)snprintf(url, sizeof(url), "%s?host=127.0.0.1&port=1", server);
    assert_int_equal(storage_open_url(&st, url, &err), TRIFLE_ECONN);
    assert_non_null(strstr(err.message, "cannot connect to postgres"));
    assert_string_equal(err.driver, "postgres");
    /* a wrong password: EAUTH, and the password appears nowhere */
    (void)snprintf(url, sizeof(url), "%s?password=sekrit-9f3a", server);
    rc = storage_open_url(&st, url, &err);
    if (rc == 0) {
        print_message("note: the server accepts any password; EAUTH not checked\n");
        trifle_storage_close(st);
        st = NULL;
    } else {
        assert_int_equal(rc, TRIFLE_EAUTH);
        assert_null(strstr(err.message, "sekrit"));
        assert_int_equal(err.native, sqlstate_code("28P01"));
        assert_non_null(strstr(err.message, "28P01"));
    }
    /* a database that does not exist */
    (void)snprintf(url, sizeof(url), "%s?dbname=trifle_no_such_db", server);
    assert_int_equal(storage_open_url(&st, url, &err), TRIFLE_ECONFIG);
    assert_non_null(strstr(err.message, "3D000"));
    /* parameters: table names, unknown names, libpq's own checks */
    (void)snprintf(url, sizeof(url), "%s?table=bad-name", server);
    assert_int_equal(storage_open_url(&st, url, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "invalid table name: bad-name");
    (void)snprintf(url, sizeof(url), "%s?ping_table=a%%20b", server);
    assert_int_equal(storage_open_url(&st, url, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "invalid table name: a b");
    (void)snprintf(url, sizeof(url),
                   "%s?table=t123456789012345678901234567890123456789012345678901234567890",
                   server);
    assert_int_equal(storage_open_url(&st, url, &err), TRIFLE_ECONFIG);
    (void)snprintf(url, sizeof(url), "%s?colection=x", server);
    assert_int_equal(storage_open_url(&st, url, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "invalid driver URL: unknown parameter colection");
    (void)snprintf(url, sizeof(url), "%s?sslmode=sometimes", server);
    assert_int_equal(storage_open_url(&st, url, &err), TRIFLE_ECONFIG);
    assert_int_equal(storage_open_url(&st, "postgres://[::1", &err), TRIFLE_ECONFIG);
    assert_non_null(strstr(err.message, "invalid driver URL"));

    /* before setup: the I15 message, for every operation */
    ns_init(&n, "application_name=tpg_errors");
    assert_int_equal(storage_open_url(&st, n.url, &err), 0);
    /* the libpq parameter reached the server */
    assert_non_null(backend_of("tpg_errors"));
    assert_string_not_equal(backend_of("tpg_errors"), "");
    item_init(&it, st, "k", T0, l, 1);
    (void)snprintf(url, sizeof(url), "table %s does not exist (run \"trifle setup\")", n.table);
    assert_int_equal(trifle_storage_inc(st, &it.e, 1, NULL, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, url);
    assert_int_equal(trifle_storage_set(st, &it.e, 1, NULL, &err), TRIFLE_ECONFIG);
    memset(&g, 0, sizeof(g));
    assert_int_equal(trifle_storage_get(st, &it.e.bucket, 1, got_leaf, &g, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, url);
    (void)snprintf(url, sizeof(url), "table %s_ping does not exist (run \"trifle setup\")",
                   n.table);
    assert_int_equal(trifle_storage_ping(st, "k", T0, l, 1, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, url);
    assert_int_equal(trifle_storage_scan(st, "k", &at, got_leaf, &g, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, url);
    /* setup then makes everything work on the same connection */
    assert_int_equal(trifle_storage_setup(st, &err), 0);
    assert_int_equal(trifle_storage_setup(st, &err), 0);
    assert_int_equal(trifle_storage_inc(st, &it.e, 1, NULL, &err), 0);
    ns_drop(&n);
    trifle_storage_close(st);
}

/* ERRATA I4: an identifier that does not fit VARCHAR(255) is EDATA with failed_item, checked
 * before anything is sent; a server-side failure rolls the whole batch back. */
static void test_atomic_batch(void **state)
{
    const trifle_leaf l[] = {{"count", 1}};
    trifle_write_result res = {sizeof(res), 7, -1, 0};
    trifle_error err = TRIFLE_ERROR_INIT;
    char long_key[300];
    trifle_storage *st;
    item it[3];
    got g;
    ns n;

    (void)state;
    ns_init(&n, NULL);
    st = st_new(&n);
    inc1(st, "a", T0, l, 1);
    memset(long_key, 'x', 250);
    long_key[250] = '\0';
    item_init(&it[0], st, "a", T0, l, 1);
    item_init(&it[1], st, long_key, T0, l, 1); /* 250 + "::1h::1736935200" > 255 characters */
    item_init(&it[2], st, "c", T0, l, 1);
    {
        trifle_entry e[3] = {it[0].e, it[1].e, it[2].e};
        assert_int_equal(trifle_storage_inc(st, e, 3, &res, &err), TRIFLE_EDATA);
        assert_int_equal(res.failed_item, 1);
        assert_int_equal(res.applied, 0);
        assert_int_equal(res.outcome_unknown, 0);
        assert_non_null(strstr(err.message, "longer than 255"));
    }
    get1(st, "a", T0, &g);
    assert_true(got_value(&g, 0, "count") == 1);

    /* the server rejects one row of the batch: nothing of it is applied */
    (void)raw("ALTER TABLE %s ADD CONSTRAINT no_c CHECK (key <> 'c::1h::1736935200')", n.table);
    item_init(&it[1], st, "b", T0, l, 1);
    {
        trifle_entry e[3] = {it[0].e, it[1].e, it[2].e};
        res.failed_item = -1;
        assert_int_equal(trifle_storage_inc(st, e, 3, &res, &err), TRIFLE_EDRIVER);
        assert_int_equal(res.applied, 0);
        assert_int_equal(res.failed_item, -1);
        assert_int_equal(res.outcome_unknown, 0);
        assert_non_null(strstr(err.message, "23514"));
    }
    get1(st, "a", T0, &g);
    assert_true(got_value(&g, 0, "count") == 1);
    get1(st, "b", T0, &g);
    assert_int_equal(g.n, 0);
    /* the same items in another order hit the same rows: duplicates are refused */
    {
        trifle_entry e[2] = {it[0].e, it[0].e};
        assert_int_equal(trifle_storage_inc(st, e, 2, &res, &err), TRIFLE_EINVAL);
    }
    ns_drop(&n);
    trifle_storage_close(st);
}

/* The server closes the connection (pg_terminate_backend, as a restart does): the next call of
 * every kind reconnects once and succeeds, and a write is applied exactly once. */
static void test_reconnect(void **state)
{
    const trifle_leaf l[] = {{"count", 1}};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st;
    int64_t at;
    got g;
    int i;
    ns n;

    (void)state;
    ns_init(&n, "application_name=tpg_reconnect");
    st = st_new(&n);
    inc1(st, "r", T0, l, 1);
    for (i = 0; i < 4; i++) {
        int before = atomic_load(&test_log_reconnects);
        (void)raw("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                  "application_name = 'tpg_reconnect'");
        /* wait until the backend is gone */
        while (strcmp(raw("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                          "'tpg_reconnect'"),
                      "0") != 0)
            sleep_ms(10);
        switch (i) {
        case 0:
            inc1(st, "r", T0, l, 1);
            break;
        case 1:
            get1(st, "r", T0, &g);
            assert_true(got_value(&g, 0, "count") == 2);
            break;
        case 2:
            assert_int_equal(trifle_storage_ping(st, "r", T0, l, 1, &err), 0);
            break;
        default:
            memset(&g, 0, sizeof(g));
            assert_int_equal(trifle_storage_scan(st, "r", &at, got_leaf, &g, &err), 0);
            break;
        }
        assert_int_equal(atomic_load(&test_log_reconnects), before + 1);
    }
    get1(st, "r", T0, &g);
    assert_true(got_value(&g, 0, "count") == 2);
    ns_drop(&n);
    trifle_storage_close(st);
}

/* Start a relay to the server's TCP address; 0, or -1 when the server is not reachable by an
 * IPv4 address (a Unix socket). */
static int relay_start(tcp_relay *r)
{
    PQconninfoOption *o, *opts = pq.conninfo_parse(server, NULL);
    char host[256] = "";
    int port = 5432;

    for (o = opts; o != NULL && o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "host") == 0 && o->val != NULL)
            (void)snprintf(host, sizeof(host), "%s", o->val);
        if (strcmp(o->keyword, "hostaddr") == 0 && o->val != NULL && o->val[0] != '\0')
            (void)snprintf(host, sizeof(host), "%s", o->val);
        if (strcmp(o->keyword, "port") == 0 && o->val != NULL && o->val[0] != '\0')
            port = (int)strtol(o->val, NULL, 10);
    }
    pq.conninfo_free(opts);
    return tcp_relay_start(r, host, port);
}

/* SPEC §7.3: replies lost through a relay and a server that is down
 * (storage_case_outcome_unknown). */
static void test_outcome_unknown(void **state)
{
    char params[128];
    tcp_relay r;
    ns n;

    (void)state;
    if (relay_start(&r) != 0)
        skip();
    (void)snprintf(params, sizeof(params), "host=127.0.0.1&port=%d&sslmode=disable", r.port);
    ns_init(&n, params);
    storage_case_outcome_unknown("postgres", n.url, &r);
    tcp_relay_stop(&r);
    ns_drop(&n);
}

/* ---------------------------------------------------------------------------------------------
 * Journal marks (ABI 1.1)
 */

static uint64_t mark_of(trifle_storage *st, const char *name)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    uint64_t seq = 99;

    if (trifle_storage_mark_read(st, name, &seq, &err) != 0)
        fail_msg("mark_read %s: %s", name, err.message);
    return seq;
}

static int marked(trifle_storage *st, const trifle_entry *set, size_t n_set,
                  const trifle_entry *inc, size_t n_inc, const char *name, uint64_t seq,
                  trifle_write_result *res, trifle_error *err)
{
    trifle_mark m = {name, seq};

    return trifle_storage_write_marked(st, set, n_set, inc, n_inc, &m, res, err);
}

/* The mark table as psql sees it; sets, incs and the mark in one transaction; a failure of any
 * part (a client-side EDATA, a server-side constraint) leaves data and mark as they were. */
static void test_marks(void **state)
{
    const trifle_leaf a[] = {{"count", 5}, {"x", 1}}, b[] = {{"count", 2}, {"y", 0.5}};
    const trifle_leaf one[] = {{"count", 1}};
    trifle_write_result res = {sizeof(res), 0, -1, 0};
    trifle_error err = TRIFLE_ERROR_INIT;
    char long_key[300];
    trifle_storage *st;
    item s0, i0, i1, bad;
    got g;
    ns n;

    (void)state;
    ns_init(&n, NULL);
    st = st_new(&n);
    assert_string_equal(raw("SELECT string_agg(column_name || ' ' || data_type || ' ' || "
                            "is_nullable, ', ' ORDER BY ordinal_position) FROM "
                            "information_schema.columns WHERE table_name = '%s_marks'",
                            n.table),
                        "name text NO, seq bigint NO");
    assert_int_equal(mark_of(st, "j1"), 0);
    inc1(st, "k", T0, b, 2);
    item_init(&s0, st, "k", T0, a, 2);
    item_init(&i0, st, "k", T0, b, 2);
    item_init(&i1, st, "k2", T0, b, 2);
    {
        trifle_entry inc[2] = {i1.e, i0.e};
        assert_int_equal(marked(st, &s0.e, 1, inc, 2, "j1", 7, &res, &err), 0);
    }
    get1(st, "k", T0, &g);
    assert_int_equal(got_count(&g, 0), 3);
    assert_true(got_value(&g, 0, "count") == 7);
    assert_true(got_value(&g, 0, "x") == 1);
    assert_true(got_value(&g, 0, "y") == 1);
    get1(st, "k2", T0, &g);
    assert_true(got_value(&g, 0, "count") == 2);
    assert_int_equal(mark_of(st, "j1"), 7);
    assert_int_equal(mark_of(st, "j2"), 0);
    assert_int_equal(marked(st, NULL, 0, NULL, 0, "j2", 3, &res, &err), 0);
    assert_int_equal(marked(st, NULL, 0, NULL, 0, "j1", (uint64_t)INT64_MAX, &res, &err), 0);
    assert_string_equal(raw("SELECT string_agg(name || '=' || seq, ',' ORDER BY name) FROM "
                            "%s_marks",
                            n.table),
                        "j1=9223372036854775807,j2=3");

    /* EDATA before anything is sent: inc item 1 has an identifier over 255 characters */
    memset(long_key, 'x', 250);
    long_key[250] = '\0';
    item_init(&bad, st, long_key, T0, one, 1);
    {
        trifle_entry inc[2] = {i1.e, bad.e};
        res.failed_item = -1;
        assert_int_equal(marked(st, &s0.e, 1, inc, 2, "j2", 4, &res, &err), TRIFLE_EDATA);
        assert_int_equal(res.failed_item, 2);
        assert_int_equal(res.applied, 0);
        assert_int_equal(res.outcome_unknown, 0);
    }
    /* the server refuses the inc statement: the set statement before it is rolled back too */
    (void)raw("ALTER TABLE %s ADD CONSTRAINT no_c CHECK (key <> 'c::1h::1736935200')", n.table);
    item_init(&bad, st, "c", T0, one, 1);
    {
        trifle_entry set[1] = {i1.e}, inc[1] = {bad.e};
        res.failed_item = -1;
        assert_int_equal(marked(st, set, 1, inc, 1, "j2", 4, &res, &err), TRIFLE_EDRIVER);
        assert_int_equal(res.failed_item, -1);
        assert_int_equal(res.applied, 0);
        assert_non_null(strstr(err.message, "23514"));
    }
    get1(st, "k2", T0, &g);
    assert_true(got_value(&g, 0, "count") == 2);
    assert_true(got_value(&g, 0, "y") == 0.5);
    assert_int_equal(mark_of(st, "j2"), 3);
    /* the connection is fine afterwards */
    assert_int_equal(marked(st, &i1.e, 1, NULL, 0, "j2", 4, &res, &err), 0);
    assert_int_equal(mark_of(st, "j2"), 4);
    ns_drop(&n);
    trifle_storage_close(st);
}

typedef struct bg_marked {
    trifle_storage *st;
    item set, inc;
    int rc;
    trifle_error err;
} bg_marked;

static void *bg_marked_main(void *p)
{
    bg_marked *b = p;
    trifle_mark m = {"j", 1};

    b->rc = trifle_storage_write_marked(b->st, &b->set.e, 1, &b->inc.e, 1, &m, NULL, &b->err);
    return NULL;
}

/* A write_marked with both lists takes its row locks in one sorted run, like a lone inc: here
 * another transaction holds x and then wants y; write_marked (set y, inc x) waits for x without
 * holding y, so nobody deadlocks (two runs, y then x, would: PostgreSQL would abort one side). */
static void test_marks_lock_order(void **state)
{
    const trifle_leaf l[] = {{"count", 1}}, five[] = {{"count", 5}};
    trifle_storage *st;
    PGconn *other;
    pthread_t th;
    bg_marked b;
    int retries;
    got g;
    ns n;

    (void)state;
    ns_init(&n, NULL);
    st = st_new(&n);
    inc1(st, "x", T0, l, 1);
    inc1(st, "y", T0, l, 1);
    memset(&b, 0, sizeof(b));
    b.st = st;
    item_init(&b.set, st, "y", T0, five, 1);
    item_init(&b.inc, st, "x", T0, l, 1);
    retries = atomic_load(&test_log_retries);
    other = raw_open();
    (void)raw_on(other, "BEGIN");
    (void)raw_on(other, "UPDATE %s SET data = data WHERE key = 'x::1h::1736935200'", n.table);
    assert_int_equal(pthread_create(&th, NULL, bg_marked_main, &b), 0);
    sleep_ms(300); /* write_marked is waiting for x now */
    (void)raw_on(other, "UPDATE %s SET data = data WHERE key = 'y::1h::1736935200'", n.table);
    (void)raw_on(other, "COMMIT");
    assert_int_equal(pthread_join(th, NULL), 0);
    pq.finish(other);
    assert_int_equal(b.rc, 0);
    assert_int_equal(atomic_load(&test_log_retries), retries);
    get1(st, "x", T0, &g);
    assert_true(got_value(&g, 0, "count") == 2);
    get1(st, "y", T0, &g);
    assert_true(got_value(&g, 0, "count") == 5);
    ns_drop(&n);
    trifle_storage_close(st);
}

/* Tables set up before ABI 1.1: mark_read reads 0 and creates nothing, the first write_marked
 * creates the mark table, drop removes it. */
static void test_marks_old_tables(void **state)
{
    const trifle_leaf one[] = {{"count", 1}};
    trifle_write_result res = {sizeof(res), 0, -1, 0};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st = NULL;
    item it;
    ns n;

    (void)state;
    ns_init(&n, NULL);
    (void)raw("CREATE TABLE %s (key VARCHAR(255) PRIMARY KEY, data JSONB NOT NULL DEFAULT "
              "'{}'::jsonb); CREATE TABLE %s_ping (key VARCHAR(255) PRIMARY KEY, at TIMESTAMPTZ "
              "NOT NULL, data JSONB NOT NULL DEFAULT '{}'::jsonb)",
              n.table, n.table);
    assert_int_equal(storage_open_url(&st, n.url, &err), 0);
    assert_int_equal(mark_of(st, "j"), 0);
    assert_string_equal(raw("SELECT count(*) FROM pg_tables WHERE tablename = '%s_marks'", n.table),
                        "0");
    item_init(&it, st, "k", T0, one, 1);
    assert_int_equal(marked(st, NULL, 0, &it.e, 1, "j", 5, &res, &err), 0);
    assert_int_equal(mark_of(st, "j"), 5);
    assert_string_equal(raw("SELECT seq FROM %s_marks WHERE name = 'j'", n.table), "5");
    assert_int_equal(trifle_storage_drop(st, &err), 0);
    assert_string_equal(raw("SELECT count(*) FROM pg_tables WHERE tablename LIKE '%s%%'", n.table),
                        "0");
    assert_int_equal(mark_of(st, "j"), 0);
    trifle_storage_close(st);
    ns_drop(&n);
}

/* The reply of COMMIT is lost: outcome_unknown, and the mark read afterwards says it committed.
 * A reply lost before COMMIT was sent: the transaction died uncommitted, and the driver ran it
 * again on a new session, so the data is there once. */
static void test_marks_outcome_unknown(void **state)
{
    const trifle_leaf l[] = {{"count", 1}};
    trifle_write_result res = {sizeof(res), 0, -1, 0};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st;
    char params[128];
    tcp_relay r;
    item it;
    got g;
    ns n;

    (void)state;
    if (relay_start(&r) != 0)
        skip();
    (void)snprintf(params, sizeof(params), "host=127.0.0.1&port=%d&sslmode=disable", r.port);
    ns_init(&n, params);
    st = st_new(&n);
    item_init(&it, st, "u", T0, l, 1);
    assert_int_equal(marked(st, NULL, 0, &it.e, 1, "j", 1, &res, &err), 0); /* prepares */

    /* BEGIN, INC, mark, COMMIT: the 4th reply is COMMIT's */
    atomic_store(&r.cut, 4);
    assert_int_equal(marked(st, NULL, 0, &it.e, 1, "j", 2, &res, &err), TRIFLE_ECONN);
    assert_int_equal(atomic_load(&r.cuts), 1);
    assert_int_equal(res.outcome_unknown, 1);
    assert_int_equal(res.applied, 0);
    assert_int_equal(res.failed_item, -1);
    assert_int_equal(mark_of(st, "j"), 2); /* reconnects: it did commit */
    get1(st, "u", T0, &g);
    assert_true(got_value(&g, 0, "count") == 2);

    /* the INC's reply is lost: nothing was committed, the driver tries once more */
    atomic_store(&r.cut, 2);
    res.outcome_unknown = 0;
    assert_int_equal(marked(st, NULL, 0, &it.e, 1, "j", 3, &res, &err), 0);
    assert_int_equal(atomic_load(&r.cuts), 2);
    assert_int_equal(mark_of(st, "j"), 3);
    get1(st, "u", T0, &g);
    assert_true(got_value(&g, 0, "count") == 3);
    trifle_storage_close(st);
    tcp_relay_stop(&r);
    ns_drop(&n);
}

/* SPEC §7.4: a serialisation failure (40001) is retried inside the driver; lock timeouts map to
 * EBUSY. */
static void test_retry_and_locks(void **state)
{
    const trifle_leaf l[] = {{"count", 1}};
    trifle_write_result res = {sizeof(res), 0, -1, 0};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st;
    PGconn *locker;
    pthread_t th;
    bg_inc b;
    got g;
    ns n;

    (void)state;
    ns_init(&n, "application_name=tpg_retry&options=-c%20default_transaction_isolation%"
                "3Drepeatable%5C%20read");
    st = st_new(&n);
    inc1(st, "s", T0, l, 1);
    locker = raw_open();
    (void)raw_on(locker, "BEGIN");
    (void)raw_on(locker, "UPDATE %s SET data = data || '{\"count\": 10}'", n.table);
    memset(&b, 0, sizeof(b));
    b.st = st;
    item_init(&b.it, st, "s", T0, l, 1);
    atomic_store(&test_log_retries, 0);
    assert_int_equal(pthread_create(&th, NULL, bg_inc_main, &b), 0);
    /* wait until the driver's statement waits for our row lock */
    while (strcmp(raw("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                      "'tpg_retry' AND wait_event_type = 'Lock'"),
                  "0") == 0)
        sleep_ms(10);
    (void)raw_on(locker, "COMMIT");
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(b.rc, 0);
    assert_int_equal(atomic_load(&test_log_retries), 1);
    get1(st, "s", T0, &g);
    assert_true(got_value(&g, 0, "count") == 11);
    trifle_storage_close(st);

    /* lock_timeout → EBUSY, nothing applied, outcome known */
    {
        char url[1200];
        (void)snprintf(url, sizeof(url), "%s&options=-c%%20lock_timeout%%3D50", n.url);
        assert_int_equal(storage_open_url(&st, url, &err), 0);
    }
    (void)raw_on(locker, "BEGIN");
    (void)raw_on(locker, "SELECT data FROM %s FOR UPDATE", n.table);
    item_init(&b.it, st, "s", T0, l, 1);
    assert_int_equal(trifle_storage_inc(st, &b.it.e, 1, &res, &err), TRIFLE_EBUSY);
    assert_int_equal(res.outcome_unknown, 0);
    assert_non_null(strstr(err.message, "55P03"));
    (void)raw_on(locker, "ROLLBACK");
    pq.finish(locker);
    get1(st, "s", T0, &g);
    assert_true(got_value(&g, 0, "count") == 11);
    trifle_storage_close(st);
    ns_drop(&n);
}

/* 8 processes x 2,000 incs of the same leaves, and 8 concurrent setups of a new table: exact
 * totals, no error. */
static void test_concurrency(void **state)
{
    ns n;

    (void)state;
    ns_init(&n, "joined=separated&connect_timeout=120"); /* slow under valgrind: SCRAM */
    storage_case_concurrency("postgres", n.url);
    ns_drop(&n);
}

/* Every allocation of a call failing in turn: TRIFLE_ENOMEM each time, then success (valgrind
 * checks that nothing leaks). */
static void test_oom(void **state)
{
    ns n;

    (void)state;
    ns_init(&n, "joined=partial");
    storage_case_oom(n.url, 0);
    ns_drop(&n);
}

/* items/s of 100 inc calls x 1,000 items x 3 leaves, and one get of 8,760 buckets. */
static void test_throughput(void **state)
{
    ns n;

    (void)state;
    ns_init(&n, NULL);
    storage_case_throughput("postgres", n.url);
    ns_drop(&n);
}

static int group_setup(void **state)
{
    (void)state;
    raw_conn = raw_open();
    (void)raw("SET client_min_messages = warning");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    pq.finish(raw_conn);
    trifle_shutdown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_driver_table),     cmocka_unit_test(test_layout),
        cmocka_unit_test(test_ping_layout),      cmocka_unit_test(test_foreign_rows),
        cmocka_unit_test(test_numbers),          cmocka_unit_test(test_errors),
        cmocka_unit_test(test_atomic_batch),     cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_outcome_unknown),  cmocka_unit_test(test_retry_and_locks),
        cmocka_unit_test(test_concurrency),      cmocka_unit_test(test_oom),
        cmocka_unit_test(test_throughput),       cmocka_unit_test(test_marks),
        cmocka_unit_test(test_marks_old_tables), cmocka_unit_test(test_marks_outcome_unknown),
        cmocka_unit_test(test_marks_lock_order),
    };
    const char *ci = getenv("CI"), *strict = getenv("TRIFLE_TEST_STRICT");

    test_server_hooks("postgres");
    server = getenv("TRIFLE_TEST_URI_POSTGRES");
    if (server == NULL || server[0] == '\0') {
        int must =
            (ci != NULL && strcmp(ci, "true") == 0) || (strict != NULL && strcmp(strict, "1") == 0);
        (void)fprintf(stderr, "%s: TRIFLE_TEST_URI_POSTGRES is not set\n", must ? "error" : "skip");
        return must ? 1 : 77;
    }
    if (strchr(server, '?') != NULL) {
        (void)fprintf(stderr,
                      "error: TRIFLE_TEST_URI_POSTGRES must be a libpq URI without a query\n");
        return 1;
    }
    pq_load();
    /* TRIFLE_TEST_FILTER=test_reconnect runs one test (cmocka glob) */
    if (getenv("TRIFLE_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("TRIFLE_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
