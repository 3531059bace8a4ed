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

#define SYM(field, name) TEST_SYM(pq, field, name)

static void pq_load(void)
{
    (void)test_load_syms(
        NULL, "libpq.so.5", SYM(connectdb, "PQconnectdb"), SYM(status, "PQstatus"),
        SYM(error_message, "PQerrorMessage"), SYM(finish, "PQfinish"), SYM(exec, "PQexec"),
        SYM(result_status, "PQresultStatus"), SYM(result_error_message, "PQresultErrorMessage"),
        SYM(ntuples, "PQntuples"), SYM(getvalue, "PQgetvalue"), SYM(getisnull, "PQgetisnull"),
        SYM(clear, "PQclear"), SYM(conninfo_parse, "PQconninfoParse"),
        SYM(conninfo_free, "PQconninfoFree"), SYM(freemem, "PQfreemem"), (void *)NULL);
}

static PGconn *raw_open(void)
{
    PGconn *c = pq.connectdb(server);

    if (pq.status(c) != CONNECTION_OK)
        fail_msg("raw connection to %s: %s", server, pq.error_message(c));
    return c;
}

/* backend.exec: sql on the connection c (a PGconn). */
static const char *pg_exec(void *c, const char *sql)
{
    static char out[8192];
    PGresult *r;
    ExecStatusType st;
    int null;

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

/* ---------------------------------------------------------------------------------------------
 * Storage helpers
 */

typedef test_ns ns;

static void *pg_open(void);
static void pg_close(void *c);
static int ns_relay(ns *n, tcp_relay *r);
static void layout(const ns *n, trifle_storage *st, int m);

/* The sums three incs of test_numbers' leaves must give: exact decimals, as the Ruby gem. */
static const double exact_sums[] = {0.3, 3e300, -7.5, 1.5e-323, 3.7037036703703701e-7};
static const trifle_leaf foreign_leaves[] = {{"label", 2}, {"n", 1}};
static const trifle_leaf count_one[] = {{"count", 1}};
static const char *const schemes[] = {"postgres", "postgresql", NULL};

/* PostgreSQL's dialect for the shared SQL tests (storage_cases.h). */
static sql_backend backend = {
    .driver = "postgres",
    .version = "1.1.0",
    .schemes = schemes,
    .prefix = "tpg",
    .exec = pg_exec,
    .open = pg_open,
    .close = pg_close,
    .ns_relay = ns_relay,
    .layout = layout,
    .drop_sql = "DROP TABLE IF EXISTS %s, %s_ping, %s_marks",
    .tables_sql = "SELECT count(*) FROM pg_tables WHERE tablename IN (%s)",
    .check_sql = "ALTER TABLE %s ADD CONSTRAINT %s CHECK (key <> '%s')",
    .check_code = "23514",
    .leaf_sql = "SELECT data->>'%s' FROM %s",
    .ping_sql = "SELECT key || ' ' || extract(epoch FROM at)::bigint || ' ' || data::text FROM %s",
    .ping_want = "health 1736935207 {\"at\": \"2025-01-15T10:00:07Z\", \"data.up\": 1, "
                 "\"data.cpu.load\": 0.5}",
    .ping_nest_sql = "UPDATE %s SET data = data || '{\"data\": {\"up\": 2}, \"x\": 5}'",
    .foreign_sql = "INSERT INTO %s (key, data) VALUES ('k::1h::1736935200', '{\"meta.duration\": "
                   "2, \"meta\": {\"duration\": 4, \"deep\": {\"x\": 1e-7}}, \"label\": "
                   "\"text\", \"n\": null, \"arr\": [1, 2], \"big\": 1e400, \"a..b\": 3, "
                   "\"t\": true}')",
    .foreign_leaves = foreign_leaves,
    .n_foreign_leaves = 2,
    .sums = exact_sums,
    .sum_a = "0.3", /* a double sum would give 0.30000000000000004 */
    .c_leaves = count_one,
    .n_c_leaves = 1,
    .twice_rc = TRIFLE_EINVAL, /* the same items in another order would hit the same rows */
    .batch_more = NULL,
    .throughput_params = NULL,
    .oom_marks = 0,
};

/* SQL on the connection c, or on the test's main connection. */
#define raw_on(c, ...) sql_raw(&backend, (c), __VA_ARGS__)
#define raw(...) sql_raw(&backend, NULL, __VA_ARGS__)

/* backend.open: a connection that keeps notices to itself. */
static void *pg_open(void)
{
    PGconn *c = raw_open();

    (void)raw_on(c, "SET client_min_messages = warning");
    return c;
}

static void pg_close(void *c)
{
    pq.finish(c);
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

/* backend.layout: the columns, key and row of identifier mode m exactly as psql sees them (the
 * schema of SPEC §7.6, verbatim). */
static void layout(const ns *n, trifle_storage *st, int m)
{
    static const char *const pk[] = {"key", "key, at", "key, granularity, at"};

    (void)st;
    assert_string_equal(raw("SELECT string_agg(column_name || ' ' || data_type || "
                            "coalesce('(' || character_maximum_length || ')', '') || ' ' || "
                            "is_nullable || coalesce(' ' || column_default, ''), ', ' ORDER BY "
                            "ordinal_position) FROM information_schema.columns WHERE "
                            "table_name = '%s'",
                            n->table),
                        m == 0   ? "key character varying(255) NO, data jsonb NO '{}'::jsonb"
                        : m == 1 ? "key character varying(255) NO, at timestamp with time zone "
                                   "NO, data jsonb NO '{}'::jsonb"
                                 : "key character varying(255) NO, granularity character "
                                   "varying(255) NO, at timestamp with time zone NO, data jsonb "
                                   "NO '{}'::jsonb");
    assert_string_equal(raw("SELECT string_agg(a.attname, ', ' ORDER BY k.n) FROM pg_index "
                            "i CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(att, n) JOIN "
                            "pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.att "
                            "WHERE i.indrelid = '%s'::regclass AND i.indisprimary",
                            n->table),
                        pk[m]);
    /* one row: flat dotted keys, exact numeric sums (0.1 + 0.1 = 0.2) */
    assert_string_equal(raw("SELECT count(*) FROM %s", n->table), "1");
    assert_string_equal(raw("SELECT data::text FROM %s", n->table),
                        "{\"q\\\"x\": 0.2, \"count\": 2, \"gauge\": -7, \"meta.duration\": "
                        "5.0}");
    assert_string_equal(raw("SELECT key FROM %s", n->table), m == 0   ? "event::1h::1736935200"
                                                             : m == 1 ? "event::1h"
                                                                      : "event");
    if (m > 0)
        assert_string_equal(
            raw("SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                "FROM %s",
                n->table),
            "2025-01-15T10:00:00Z");
    if (m == 2)
        assert_string_equal(raw("SELECT granularity FROM %s", n->table), "1h");
}

static void test_errors(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st = NULL;
    char url[1200];
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
    storage_case_bad_params(server);
    (void)snprintf(url, sizeof(url), "%s?ping_table=a%%20b", server);
    assert_int_equal(storage_open_url(&st, url, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "invalid table name: a b");
    (void)snprintf(url, sizeof(url), "%s?sslmode=sometimes", server);
    assert_int_equal(storage_open_url(&st, url, &err), TRIFLE_ECONFIG);
    assert_int_equal(storage_open_url(&st, "postgres://[::1", &err), TRIFLE_ECONFIG);
    assert_non_null(strstr(err.message, "invalid driver URL"));

    /* before setup: the I15 message, for every operation */
    sql_ns_init(&backend, &n, "application_name=tpg_errors");
    assert_int_equal(storage_open_url(&st, n.url, &err), 0);
    /* the libpq parameter reached the server */
    assert_non_null(backend_of("tpg_errors"));
    assert_string_not_equal(backend_of("tpg_errors"), "");
    storage_case_before_setup(st, n.table, 0);
    sql_ns_drop(&backend, &n);
    trifle_storage_close(st);
}

/* Make the server end the session of application name app, and wait until it has. */
static void kill_backend(void *app)
{
    (void)raw("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
              "'%s'",
              (const char *)app);
    /* wait until the backend is gone */
    while (strcmp(raw("SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'",
                      (const char *)app),
                  "0") != 0)
        sleep_ms(10);
}

/* The server closes the connection (pg_terminate_backend, as a restart does): the next call of
 * every kind reconnects once and succeeds, and a write is applied exactly once. */
static void test_reconnect(void **state)
{
    char app[] = "tpg_reconnect";
    trifle_storage *st;
    ns n;

    (void)state;
    st = sql_new(&backend, &n, "application_name=tpg_reconnect");
    storage_case_reconnect(st, 4, kill_backend, app);
    sql_ns_drop(&backend, &n);
    trifle_storage_close(st);
}

/* backend.ns_relay: a relay to the server's TCP address and a namespace through it; 0, or -1
 * when the server is not reachable by an IPv4 address (a Unix socket). */
static int ns_relay(ns *n, tcp_relay *r)
{
    char params[128];
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
    if (tcp_relay_start(r, host, port) != 0)
        return -1;
    (void)snprintf(params, sizeof(params), "host=127.0.0.1&port=%d&sslmode=disable", r->port);
    sql_ns_init(&backend, n, params);
    return 0;
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
    st = sql_new(&backend, &n, NULL);
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
    (void)raw(backend.check_sql, n.table, "no_c", "c::1h::1736935200");
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
    sql_ns_drop(&backend, &n);
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
    st = sql_new(&backend, &n, NULL);
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
    sql_ns_drop(&backend, &n);
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
    sql_ns_init(&backend, &n, NULL);
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
    sql_ns_drop(&backend, &n);
}

/* The reply of COMMIT is lost: outcome_unknown, and the mark read afterwards says it committed.
 * A reply lost before COMMIT was sent: the transaction died uncommitted, and the driver ran it
 * again on a new session, so the data is there once. */
static void test_marks_outcome_unknown(void **state)
{
    trifle_write_result res = {sizeof(res), 0, -1, 0};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st;
    tcp_relay r;
    item it;
    got g;
    ns n;

    (void)state;
    if (ns_relay(&n, &r) != 0)
        skip();
    st = storage_new(n.url);
    item_init(&it, st, "u", T0, count_one, 1);
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
    sql_ns_drop(&backend, &n);
}

/* SPEC §7.4: a serialisation failure (40001) is retried inside the driver; lock timeouts map to
 * EBUSY. */
static void test_retry_and_locks(void **state)
{
    trifle_write_result res = {sizeof(res), 0, -1, 0};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st;
    PGconn *locker;
    item it;
    got g;
    ns n;

    (void)state;
    st = sql_new(&backend, &n,
                 "application_name=tpg_retry&options=-c%20default_transaction_isolation%"
                 "3Drepeatable%5C%20read");
    atomic_store(&test_log_retries, 0);
    locker =
        sql_case_row_lock(&backend, st, n.table, "UPDATE %s SET data = data || '{\"count\": 10}'",
                          "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                          "'tpg_retry' AND wait_event_type = 'Lock'");
    assert_int_equal(atomic_load(&test_log_retries), 1);
    trifle_storage_close(st);

    /* lock_timeout → EBUSY, nothing applied, outcome known */
    {
        char url[1200];
        (void)snprintf(url, sizeof(url), "%s&options=-c%%20lock_timeout%%3D50", n.url);
        assert_int_equal(storage_open_url(&st, url, &err), 0);
    }
    (void)raw_on(locker, "BEGIN");
    (void)raw_on(locker, "SELECT data FROM %s FOR UPDATE", n.table);
    item_init(&it, st, "s", T0, count_one, 1);
    assert_int_equal(trifle_storage_inc(st, &it.e, 1, &res, &err), TRIFLE_EBUSY);
    assert_int_equal(res.outcome_unknown, 0);
    assert_non_null(strstr(err.message, "55P03"));
    (void)raw_on(locker, "ROLLBACK");
    pq.finish(locker);
    get1(st, "s", T0, &g);
    assert_true(got_value(&g, 0, "count") == 11);
    trifle_storage_close(st);
    sql_ns_drop(&backend, &n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        SQL_TESTS(&backend),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_retry_and_locks),
        cmocka_unit_test(test_marks),
        cmocka_unit_test(test_marks_old_tables),
        cmocka_unit_test(test_marks_outcome_unknown),
        cmocka_unit_test(test_marks_lock_order),
    };
    int status;

    if ((server = sql_server(&backend, "TRIFLE_TEST_URI_POSTGRES", &status)) == NULL)
        return status;
    if (strchr(server, '?') != NULL) {
        (void)fprintf(stderr,
                      "error: TRIFLE_TEST_URI_POSTGRES must be a libpq URI without a query\n");
        return 1;
    }
    pq_load();
    return SQL_RUN_TESTS(&backend, tests);
}
