/* The MySQL/MariaDB driver plugin on a real server, for what trifle-conformance cannot see: the
 * tables and rows as the server sees them, error mapping, reconnects after KILL, a reply lost on
 * the wire, atomicity of a failing batch, a write waiting for a row lock, the journal mark,
 * concurrent processes, and allocation failures.
 *
 * The plugin is loaded by the real loader (trifle_storage_open with TRIFLE_BUILD_PLUGIN_DIR). Raw
 * SQL goes through the MariaDB Connector/C the plugin itself loads (dlsym), so the test needs no
 * link dependency or header of its own. The server is $TRIFLE_TEST_URI_MYSQL
 * (mysql://user:password@127.0.0.1:port/database, scripts/test-servers.sh); without it the program
 * exits 77 (a ctest skip), or fails when CI=true or TRIFLE_TEST_STRICT=1. Every test works in its
 * own tables `tmy_<pid>_<n>` and drops them. */
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

#include "server_helpers.h"
#include "storage_cases.h"
#include "storage_items.h"
#include "trifle/trifle.h"

#define T0 INT64_C(1736935200) /* 2025-01-15T10:00:00Z */

static const char *server; /* $TRIFLE_TEST_URI_MYSQL */

/* The parts of the server URL. */
static struct {
    char user[128], password[128], host[128], db[128];
    unsigned port;
} srv;

/* ---------------------------------------------------------------------------------------------
 * MariaDB Connector/C through dlsym (opaque handles: no header needed)
 */

typedef void MYSQL_T;
typedef void MYSQL_RES_T;

static struct {
    MYSQL_T *(*init)(MYSQL_T *);
    MYSQL_T *(*real_connect)(MYSQL_T *, const char *, const char *, const char *, const char *,
                             unsigned, const char *, unsigned long);
    int (*query)(MYSQL_T *, const char *);
    MYSQL_RES_T *(*store_result)(MYSQL_T *);
    char **(*fetch_row)(MYSQL_RES_T *);
    void (*free_result)(MYSQL_RES_T *);
    const char *(*error)(MYSQL_T *);
    void (*close)(MYSQL_T *);
} my;

#define SYM(field, name) TEST_SYM(my, field, name)

static void my_load(void)
{
    (void)test_load_syms(NULL, "libmariadb.so.3", SYM(init, "mysql_init"),
                         SYM(real_connect, "mysql_real_connect"), SYM(query, "mysql_query"),
                         SYM(store_result, "mysql_store_result"), SYM(fetch_row, "mysql_fetch_row"),
                         SYM(free_result, "mysql_free_result"), SYM(error, "mysql_error"),
                         SYM(close, "mysql_close"), (void *)NULL);
}

/* Split $TRIFLE_TEST_URI_MYSQL (no percent escapes in the test server's URL). */
static int parse_server(void)
{
    const char *p = server + 8, *at, *colon, *slash;

    if (strncmp(server, "mysql://", 8) != 0 || (at = strchr(p, '@')) == NULL ||
        (slash = strchr(at, '/')) == NULL || strchr(server, '?') != NULL)
        return -1;
    colon = memchr(p, ':', (size_t)(at - p));
    if (colon == NULL)
        return -1;
    (void)snprintf(srv.user, sizeof(srv.user), "%.*s", (int)(colon - p), p);
    (void)snprintf(srv.password, sizeof(srv.password), "%.*s", (int)(at - colon - 1), colon + 1);
    p = at + 1;
    colon = memchr(p, ':', (size_t)(slash - p));
    if (colon == NULL)
        return -1;
    (void)snprintf(srv.host, sizeof(srv.host), "%.*s", (int)(colon - p), p);
    srv.port = (unsigned)strtol(colon + 1, NULL, 10);
    (void)snprintf(srv.db, sizeof(srv.db), "%s", slash + 1);
    return 0;
}

static MYSQL_T *raw_open(void)
{
    MYSQL_T *c = my.init(NULL);

    if (c == NULL ||
        my.real_connect(c, srv.host, srv.user, srv.password, srv.db, srv.port, NULL, 0) == NULL)
        fail_msg("raw connection to %s:%u: %s", srv.host, srv.port,
                 c != NULL ? my.error(c) : "out of memory");
    (void)my.query(c, "SET NAMES utf8mb4");
    return c;
}

/* backend.exec: sql on the connection c (a MYSQL). */
static const char *my_exec(void *c, const char *sql)
{
    static char out[8192];
    MYSQL_RES_T *r;
    char **row;
    int null = 0;

    if (my.query(c, sql) != 0)
        fail_msg("raw SQL failed: %s: %s", sql, my.error(c));
    out[0] = '\0';
    if ((r = my.store_result(c)) != NULL) {
        if ((row = my.fetch_row(r)) != NULL) {
            if (row[0] == NULL)
                null = 1;
            else
                (void)snprintf(out, sizeof(out), "%s", row[0]);
        }
        my.free_result(r);
    }
    return null ? NULL : out;
}

/* ---------------------------------------------------------------------------------------------
 * Storage helpers
 */

typedef test_ns ns;

static void my_close(void *c);
static int ns_relay(ns *n, tcp_relay *r);
static void layout(const ns *n, trifle_storage *st, int m);

static const trifle_leaf foreign_leaves[] = {{"label", 2}, {"n", 1}, {"t", 1}};
/* two leaves: the row the server rejects is in the second statement of the batch */
static const trifle_leaf c_leaves[] = {{"count", 1}, {"other", 2}};
static const char *const schemes[] = {"mysql", NULL};
static void batch_overflow(trifle_storage *st);

/* MySQL's dialect for the shared SQL tests (storage_cases.h). */
static sql_backend backend = {
    .driver = "mysql",
    .version = NULL,
    .schemes = schemes,
    .prefix = "tmy",
    .exec = my_exec,
    .open = raw_open,
    .close = my_close,
    .ns_relay = ns_relay,
    .layout = layout,
    .drop_sql = "DROP TABLE IF EXISTS `%s`, `%s_ping`, `%s_marks`",
    .tables_sql = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "
                  "DATABASE() AND table_name IN (%s)",
    .check_sql = "ALTER TABLE `%s` ADD CONSTRAINT %s CHECK (`key` <> '%s')",
    .check_code = "4025",
    .leaf_sql = "SELECT JSON_EXTRACT(data, '$.%s') FROM `%s`",
    .ping_sql = "SELECT CONCAT(CONVERT(`key` USING utf8mb4), ' ', CAST(`at` AS CHAR), ' ', "
                "JSON_UNQUOTE(JSON_EXTRACT(data, '$.at')), ' ', JSON_EXTRACT(data, "
                "'$.\"data.up\"'), ' ', JSON_EXTRACT(data, '$.\"data.cpu.load\"')) FROM %s",
    .ping_want = "health 2025-01-15 10:00:07.000000 2025-01-15T10:00:07Z 1 0.5",
    .ping_nest_sql =
        "UPDATE %s SET data = JSON_SET(data, '$.data', JSON_OBJECT('up', 2), '$.x', 5)",
    .foreign_sql = "INSERT INTO `%s` (`key`, data) VALUES ('k::1h::1736935200', "
                   "'{\"meta.duration\": 2, \"meta\": {\"duration\": 4, \"deep\": {\"x\": "
                   "1e-7}}, \"label\": \"text\", \"n\": null, \"arr\": [1, 2], \"a..b\": 3, "
                   "\"t\": true, \"s\": \"12\"}')",
    .foreign_leaves = foreign_leaves,
    .n_foreign_leaves = 3,
    .sums = NULL, /* double additions on the server, printed shortest round trip */
    .sum_a = "0.30000000000000004",
    .c_leaves = c_leaves,
    .n_c_leaves = 2,
    .twice_rc = 0,
    .batch_more = batch_overflow,
    .throughput_params = "joined=separated",
    .oom_marks = 1,
};

/* SQL on the connection c, or on the test's main connection. */
#define raw_on(c, ...) sql_raw(&backend, (c), __VA_ARGS__)
#define raw(...) sql_raw(&backend, NULL, __VA_ARGS__)

static void my_close(void *c)
{
    my.close(c);
}

/* backend.ns_relay: a TCP relay to the server (it can swallow the server's next reply, refuse
 * connections, and tells which local port its upstream connection uses, so that the server's
 * processlist entry of the driver's session can be found and killed) and a namespace whose URL
 * goes through it. */
static int ns_relay(ns *n, tcp_relay *r)
{
    char base[512];

    assert_int_equal(tcp_relay_start(r, srv.host, (int)srv.port), 0);
    (void)snprintf(base, sizeof(base), "mysql://%s:%s@127.0.0.1:%d/%s", srv.user, srv.password,
                   r->port, srv.db);
    test_ns_init(n, "tmy", base, NULL);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Tests
 */

/* backend.layout: the description, columns, key and row of identifier mode m exactly as the
 * server sees them. */
static void layout(const ns *n, trifle_storage *st, int m)
{
    static const char *const pk[] = {"key", "key,at", "key,granularity,at"};
    int mariadb = strstr(raw("SELECT VERSION()"), "MariaDB") != NULL;
    char desc[32], want[32];

    /* upstream's Description(): MySQLDriver(J|P|S) */
    (void)trifle_storage_describe(st, desc, sizeof(desc));
    (void)snprintf(want, sizeof(want), "MySQLDriver(%c)", "JPS"[m]);
    assert_string_equal(desc, want);
    /* the upstream schema (JSON is LONGTEXT with a JSON_VALID check on MariaDB) */
    assert_string_equal(
        raw("SELECT GROUP_CONCAT(CONCAT(column_name, ' ', column_type, ' ', is_nullable) "
            "ORDER BY ordinal_position SEPARATOR ', ') FROM information_schema.columns WHERE "
            "table_schema = DATABASE() AND table_name = '%s'",
            n->table),
        m == 0   ? (mariadb ? "key varchar(255) NO, data longtext NO"
                            : "key varchar(255) NO, data json NO")
        : m == 1 ? (mariadb ? "key varchar(255) NO, at datetime(6) NO, data longtext NO"
                            : "key varchar(255) NO, at datetime(6) NO, data json NO")
                 : (mariadb ? "key varchar(255) NO, granularity varchar(255) NO, at "
                              "datetime(6) NO, data longtext NO"
                            : "key varchar(255) NO, granularity varchar(255) NO, at "
                              "datetime(6) NO, data json NO"));
    assert_string_equal(raw("SELECT GROUP_CONCAT(column_name ORDER BY seq_in_index) FROM "
                            "information_schema.statistics WHERE table_schema = DATABASE() "
                            "AND table_name = '%s' AND index_name = 'PRIMARY'",
                            n->table),
                        pk[m]);
    /* identifiers compare byte for byte: binary, no trailing-space padding */
    assert_string_equal(raw("SELECT collation_name FROM information_schema.columns WHERE "
                            "table_schema = DATABASE() AND table_name = '%s' AND "
                            "column_name = 'key'",
                            n->table),
                        mariadb ? "utf8mb4_nopad_bin" : "utf8mb4_0900_bin");
    /* one row: flat dotted keys, double sums on the server */
    assert_string_equal(raw("SELECT COUNT(*) FROM `%s`", n->table), "1");
    assert_string_equal(raw("SELECT JSON_LENGTH(data) FROM `%s`", n->table), "4");
    assert_string_equal(raw("SELECT JSON_EXTRACT(data, '$.count') FROM `%s`", n->table), "2");
    assert_string_equal(raw("SELECT JSON_EXTRACT(data, '$.\"meta.duration\"') FROM `%s`", n->table),
                        "5");
    assert_string_equal(raw("SELECT JSON_EXTRACT(data, '$.\"q\\\\\"x\"') FROM `%s`", n->table),
                        "0.2");
    assert_string_equal(raw("SELECT JSON_EXTRACT(data, '$.gauge') FROM `%s`", n->table), "-7");
    assert_null(raw("SELECT JSON_EXTRACT(data, '$.meta') FROM `%s`", n->table));
    assert_string_equal(raw("SELECT `key` FROM `%s`", n->table), m == 0   ? "event::1h::1736935200"
                                                                 : m == 1 ? "event::1h"
                                                                          : "event");
    if (m > 0) /* UTC wall time in a zone-less DATETIME(6), as trifle_stats_go writes it */
        assert_string_equal(raw("SELECT CAST(`at` AS CHAR) FROM `%s`", n->table),
                            "2025-01-15 10:00:00.000000");
    if (m == 2)
        assert_string_equal(raw("SELECT granularity FROM `%s`", n->table), "1h");
}

static void test_errors(void **state)
{
    const trifle_leaf l[] = {{"count", 1}};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st = NULL;
    const char *badpass = getenv("TRIFLE_TEST_URI_MYSQL_BADPASS");
    const char *unix_url = getenv("TRIFLE_TEST_URI_MYSQL_UNIX");
    char url[1200];
    got g;
    int rc;
    ns n;

    (void)state;
    /* nobody listens */
    (void)snprintf(url, sizeof(url), "mysql://%s:%s@127.0.0.1:1/%s", srv.user, srv.password,
                   srv.db);
    assert_int_equal(storage_open_url(&st, url, &err), TRIFLE_ECONN);
    assert_non_null(strstr(err.message, "cannot connect to mysql"));
    assert_string_equal(err.driver, "mysql");
    assert_null(strstr(err.message, srv.password));
    /* a wrong password: EAUTH, and the password appears nowhere */
    if (badpass == NULL)
        fail_msg("TRIFLE_TEST_URI_MYSQL_BADPASS is not set (scripts/test-servers.sh exports it)");
    assert_int_equal(storage_open_url(&st, badpass, &err), TRIFLE_EAUTH);
    assert_int_equal(err.native, 1045);
    assert_non_null(strstr(err.message, "Access denied"));
    assert_null(strstr(err.message, srv.password));
    /* a database that does not exist */
    (void)snprintf(url, sizeof(url), "mysql://%s:%s@%s:%u/trifle_no_such_db", srv.user,
                   srv.password, srv.host, srv.port);
    /* 1049 unknown database (the test user has rights on trifle_*: without them MariaDB says
     * 1044, access denied, which is EAUTH) */
    rc = storage_open_url(&st, url, &err);
    assert_int_equal(rc, TRIFLE_ECONFIG);
    assert_int_equal(err.native, 1049);
    assert_string_equal(err.message, "cannot connect to mysql: unknown database trifle_no_such_db");
    /* parameters */
    storage_case_bad_params(server);
    (void)snprintf(url, sizeof(url), "%s?ssl_mode=sometimes", server);
    assert_int_equal(storage_open_url(&st, url, &err), TRIFLE_ECONFIG);
    assert_non_null(strstr(err.message, "ssl_mode"));
    (void)snprintf(url, sizeof(url), "%s?connect_timeout=soon", server);
    assert_int_equal(storage_open_url(&st, url, &err), TRIFLE_ECONFIG);
    assert_int_equal(storage_open_url(&st, "mysql://u:pw-9f3a@127.0.0.1:99999/db", &err),
                     TRIFLE_ECONFIG);
    if (strstr(err.message, "port") == NULL)
        fail_msg("bad port: %s", err.message);
    assert_int_equal(storage_open_url(&st, "mysql://u:pw-9f3a@127.0.0.1:3306", &err),
                     TRIFLE_ECONFIG);
    assert_non_null(strstr(err.message, "database"));
    assert_int_equal(storage_open_url(&st, "mysql://u:p%zz@127.0.0.1/db", &err), TRIFLE_ECONFIG);
    /* TLS required by the client, the test server offers none: refused, not sent in clear */
    (void)snprintf(url, sizeof(url), "%s?ssl_mode=required&connect_timeout=5", server);
    assert_int_equal(storage_open_url(&st, url, &err), TRIFLE_ECONN);
    assert_non_null(strstr(err.message, "ssl_mode=required"));
    (void)snprintf(url, sizeof(url), "%s?ssl_mode=VERIFY_IDENTITY&ssl_ca=/nonexistent/ca.pem",
                   server);
    assert_int_not_equal(storage_open_url(&st, url, &err), 0);
    assert_non_null(strstr(err.message, "cannot connect to mysql"));
    (void)snprintf(url, sizeof(url), "%s?ssl_mode=disabled&connect_timeout=5&read_timeout=30",
                   server);
    assert_int_equal(storage_open_url(&st, url, &err), 0);
    trifle_storage_close(st);

    /* before setup: "run trifle setup", for every operation; mark_read finds no mark */
    sql_ns_init(&backend, &n, NULL);
    assert_int_equal(storage_open_url(&st, n.url, &err), 0);
    storage_case_before_setup(st, n.table, 1146);
    trifle_storage_close(st);

    /* the unix socket */
    if (unix_url == NULL)
        fail_msg("TRIFLE_TEST_URI_MYSQL_UNIX is not set (scripts/test-servers.sh exports it)");
    (void)snprintf(url, sizeof(url), "%s&table=%s", unix_url, n.table);
    assert_int_equal(storage_open_url(&st, url, &err), 0);
    inc1(st, "k", T0, l, 1);
    get1(st, "k", T0, &g);
    assert_true(got_value(&g, 0, "count") == 2);
    trifle_storage_close(st);
    (void)snprintf(url, sizeof(url), "mysql://%s:%s@localhost/%s?socket=/nonexistent/trifle.sock",
                   srv.user, srv.password, srv.db);
    assert_int_equal(storage_open_url(&st, url, &err), TRIFLE_ECONN);
    assert_non_null(strstr(err.message, "trifle.sock"));
    sql_ns_drop(&backend, &n);
}

/* backend.batch_more: a sum beyond the double range, which the server refuses (1690): the driver
 * finds the item, and nothing of the batch is applied. */
static void batch_overflow(trifle_storage *st)
{
    const trifle_leaf l[] = {{"count", 1}}, big[] = {{"x", 1.7976931348623157e308}};
    item o[3];
    got g;

    item_init(&o[0], st, "ok1", T0, l, 1);
    item_init(&o[1], st, "big", T0, big, 1);
    item_init(&o[2], st, "ok2", T0, l, 1);
    inc1(st, "big", T0, big, 1);
    assert_int_equal(storage_batch_refused(st, o, 3, TRIFLE_EDATA, 1, "item 1 overflows"), 1690);
    get1(st, "ok1", T0, &g);
    assert_int_equal(g.n, 0);
    get1(st, "big", T0, &g);
    assert_true(got_value(&g, 0, "x") == 1.7976931348623157e308);
}

/* KILL the server's session of the driver connected through relay r, and wait until it has gone.
 */
static void kill_session(void *r)
{
    tcp_relay *relay = r;
    int port = atomic_load(&relay->up_local);
    const char *id;

    assert_int_not_equal(port, 0);
    id = raw("SELECT id FROM information_schema.processlist WHERE host = '127.0.0.1:%d'", port);
    assert_string_not_equal(id, "");
    (void)raw("KILL CONNECTION %s", id);
    /* wait until the relay saw the server close the session */
    while (atomic_load(&relay->up_local) == port)
        sleep_ms(10);
}

/* The server kills the driver's session (as a restart does): the next call of every kind
 * reconnects once and succeeds, and a write is applied exactly once. */
static void test_reconnect(void **state)
{
    trifle_storage *st;
    tcp_relay r;
    ns n;

    (void)state;
    (void)ns_relay(&n, &r);
    st = storage_new(n.url);
    storage_case_reconnect(st, 5, kill_session, &r);
    trifle_storage_close(st);
    tcp_relay_stop(&r);
    sql_ns_drop(&backend, &n);
}

/* The merge happens on the server under the row lock: a write that waits for another
 * transaction's lock adds to what that transaction committed, not to what it read before. */
static void test_row_lock(void **state)
{
    trifle_storage *st;
    ns n;

    (void)state;
    st = sql_new(&backend, &n, NULL);
    /* a user sees its own sessions in the process list */
    my_close(sql_case_row_lock(&backend, st, n.table,
                               "UPDATE `%s` SET data = JSON_SET(data, '$.count', 10)",
                               "SELECT COUNT(*) FROM information_schema.processlist WHERE id <> "
                               "CONNECTION_ID() AND command = 'Query' AND info LIKE "
                               "'INSERT INTO `%s`%%'"));
    trifle_storage_close(st);
    sql_ns_drop(&backend, &n);
}

/* ABI 1.1: the set items, the inc items and the journal mark commit together or not at all; the
 * mark table comes with setup, again when it was dropped, and goes with drop. */
static void test_write_marked(void **state)
{
    const trifle_leaf li[] = {{"count", 2}};
    const trifle_leaf ls[] = {{"gauge", 5}};
    trifle_write_result res = {sizeof(res), 0, -1, 0};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_mark mark = {"journal-1", 41};
    trifle_storage *st;
    uint64_t seq = 0;
    item set_it, inc_it[3];
    got g;
    ns n;

    (void)state;
    st = sql_new(&backend, &n, "joined=partial");
    assert_int_equal(trifle_storage_mark_read(st, "journal-1", &seq, &err), 0);
    assert_true(seq == 0);
    item_init(&set_it, st, "m", T0, ls, 1);
    item_init(&inc_it[0], st, "m", T0, li, 1); /* the same bucket in both lists */
    item_init(&inc_it[1], st, "other", T0, li, 1);
    item_init(&inc_it[2], st, "bad", T0, li, 1);
    {
        trifle_entry inc_e[2] = {inc_it[0].e, inc_it[1].e};
        assert_int_equal(trifle_storage_write_marked(st, &set_it.e, 1, inc_e, 2, &mark, &res, &err),
                         0);
        mark.seq = 42;
        assert_int_equal(trifle_storage_write_marked(st, NULL, 0, inc_e, 1, &mark, &res, &err), 0);
    }
    assert_int_equal(trifle_storage_mark_read(st, "journal-1", &seq, &err), 0);
    assert_true(seq == 42);
    assert_int_equal(trifle_storage_mark_read(st, "journal-2", &seq, &err), 0);
    assert_true(seq == 0);
    get1(st, "m", T0, &g);
    assert_true(got_value(&g, 0, "gauge") == 5);
    assert_true(got_value(&g, 0, "count") == 4);
    assert_string_equal(raw("SELECT seq FROM `%s_marks` WHERE name = 'journal-1'", n.table), "42");

    /* a failing item: neither the data nor the mark is stored */
    (void)raw(backend.check_sql, n.table, "no_bad", "bad::1h");
    mark.seq = 43;
    {
        trifle_entry inc_e[3] = {inc_it[0].e, inc_it[1].e, inc_it[2].e};
        assert_int_equal(trifle_storage_write_marked(st, &set_it.e, 1, inc_e, 3, &mark, &res, &err),
                         TRIFLE_EDRIVER);
        assert_int_equal(res.applied, 0);
        assert_int_equal(res.outcome_unknown, 0);
    }
    assert_int_equal(trifle_storage_mark_read(st, "journal-1", &seq, &err), 0);
    assert_true(seq == 42);
    get1(st, "m", T0, &g);
    assert_true(got_value(&g, 0, "count") == 4);

    /* the mark table dropped behind the driver's back: made again by the next write */
    (void)raw("DROP TABLE `%s_marks`", n.table);
    assert_int_equal(trifle_storage_mark_read(st, "journal-1", &seq, &err), 0);
    assert_true(seq == 0);
    assert_int_equal(trifle_storage_write_marked(st, &set_it.e, 1, NULL, 0, &mark, &res, &err), 0);
    assert_int_equal(trifle_storage_mark_read(st, "journal-1", &seq, &err), 0);
    assert_true(seq == 43);
    /* a call without items stores only the mark */
    mark.seq = 44;
    assert_int_equal(trifle_storage_write_marked(st, NULL, 0, NULL, 0, &mark, &res, &err), 0);
    assert_int_equal(trifle_storage_mark_read(st, "journal-1", &seq, &err), 0);
    assert_true(seq == 44);
    assert_string_equal(sql_tables(&backend, n.table), "3");
    assert_int_equal(trifle_storage_drop(st, &err), 0);
    assert_string_equal(sql_tables(&backend, n.table), "0");
    trifle_storage_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        SQL_TESTS(&backend),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_row_lock),
        cmocka_unit_test(test_write_marked),
    };
    int status;

    if ((server = sql_server(&backend, "TRIFLE_TEST_URI_MYSQL", &status)) == NULL)
        return status;
    if (parse_server() != 0) {
        (void)fprintf(stderr,
                      "error: TRIFLE_TEST_URI_MYSQL must be mysql://user:password@host:port/db "
                      "without a query\n");
        return 1;
    }
    my_load();
    return SQL_RUN_TESTS(&backend, tests);
}
