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

#define LOAD(field, name) test_load_sym(lib, &my.field, sizeof(my.field), name)

static void my_load(void)
{
    void *lib = dlopen("libmariadb.so.3", RTLD_NOW | RTLD_LOCAL);

    if (lib == NULL) {
        (void)fprintf(stderr, "cannot load libmariadb.so.3: %s\n", dlerror());
        exit(1);
    }
    LOAD(init, "mysql_init");
    LOAD(real_connect, "mysql_real_connect");
    LOAD(query, "mysql_query");
    LOAD(store_result, "mysql_store_result");
    LOAD(fetch_row, "mysql_fetch_row");
    LOAD(free_result, "mysql_free_result");
    LOAD(error, "mysql_error");
    LOAD(close, "mysql_close");
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

static MYSQL_T *raw_conn;

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

/* Run sql on the raw connection; the first value of the first row, "" without rows, or NULL
 * for SQL NULL. Each call's text replaces the previous one's. */
static const char *raw_on(MYSQL_T *c, const char *fmt, ...)
{
    static char out[8192];
    char sql[4096];
    MYSQL_RES_T *r;
    char **row;
    va_list ap;
    int null = 0;

    va_start(ap, fmt);
    (void)vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
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

#define raw(...) raw_on(raw_conn, __VA_ARGS__)

/* ---------------------------------------------------------------------------------------------
 * Storage helpers
 */

typedef test_ns ns;

/* A fresh namespace and the URL for it with extra parameters ("joined=partial&..."). */
static void ns_init(ns *n, const char *params)
{
    test_ns_init(n, "tmy", server, params);
}

static void ns_drop(const ns *n)
{
    (void)raw("DROP TABLE IF EXISTS `%s`, `%s_ping`, `%s_marks`", n->table, n->table, n->table);
}

/* How many of the namespace's three tables exist. */
static const char *ns_tables(const ns *n)
{
    return raw("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() "
               "AND table_name IN ('%s', '%s_ping', '%s_marks')",
               n->table, n->table, n->table);
}

static trifle_storage *st_new(const ns *n)
{
    return storage_new(n->url);
}

/* ---------------------------------------------------------------------------------------------
 * A TCP relay between the driver and the server: it can swallow the server's next reply, refuse
 * connections (a server that is down), and tells which local port its upstream connection uses,
 * so that the server's processlist entry of the driver's session can be found and killed.
 */

/* Start a relay to the server (tcp_relay_start() with its host and port). */
static void relay_start(tcp_relay *r)
{
    assert_int_equal(tcp_relay_start(r, srv.host, (int)srv.port), 0);
}

/* A namespace whose URL goes through the relay. */
static void ns_init_relay(ns *n, const tcp_relay *r, const char *params)
{
    char base[512];

    (void)snprintf(base, sizeof(base), "mysql://%s:%s@127.0.0.1:%d/%s", srv.user, srv.password,
                   r->port, srv.db);
    test_ns_init(n, "tmy", base, params);
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
    (void)snprintf(path, sizeof(path), "%s/trifle_mysql.so", TRIFLE_BUILD_PLUGIN_DIR);
    assert_int_equal(trifle_driver_load(&d, path, NULL, &err), 0);
    assert_string_equal(d->name, "mysql");
    assert_int_equal(d->caps, TRIFLE_CAP_MODE_PARTIAL | TRIFLE_CAP_MODE_SEPARATED |
                                  TRIFLE_CAP_PING | TRIFLE_CAP_ATOMIC_BATCH | TRIFLE_CAP_SETUP |
                                  TRIFLE_CAP_EXACT_DOUBLES | TRIFLE_CAP_JOURNAL_MARK);
    assert_string_equal(d->schemes[0], "mysql");
    assert_null(d->schemes[1]);
    assert_non_null(d->drop);
    assert_non_null(d->write_marked);
    assert_non_null(d->mark_read);
}

/* The tables, columns and rows exactly as the server sees them, in every identifier mode. */
static void test_layout(void **state)
{
    static const char *const modes[] = {"full", "partial", "separated"};
    static const char *const pk[] = {"key", "key,at", "key,granularity,at"};
    const trifle_leaf l[] = {{"count", 1}, {"meta.duration", 2.5}, {"q\"x", 0.1}};
    const trifle_leaf s[] = {{"gauge", -7}};
    trifle_error err = TRIFLE_ERROR_INIT;
    int m, mariadb = strstr(raw("SELECT VERSION()"), "MariaDB") != NULL;

    (void)state;
    for (m = 0; m < 3; m++) {
        char params[64];
        trifle_storage *st;
        item it[2];
        ns n;

        (void)snprintf(params, sizeof(params), "joined=%s", modes[m]);
        ns_init(&n, params);
        st = st_new(&n);
        {
            /* upstream's Description(): MySQLDriver(J|P|S) */
            char desc[32], want[32];
            (void)trifle_storage_describe(st, desc, sizeof(desc));
            (void)snprintf(want, sizeof(want), "MySQLDriver(%c)", "JPS"[m]);
            assert_string_equal(desc, want);
        }
        item_init(&it[0], st, "event", T0, l, 3);
        assert_int_equal(trifle_storage_inc(st, &it[0].e, 1, NULL, &err), 0);
        assert_int_equal(trifle_storage_inc(st, &it[0].e, 1, NULL, &err), 0);
        item_init(&it[1], st, "event", T0, s, 1);
        assert_int_equal(trifle_storage_set(st, &it[1].e, 1, NULL, &err), 0);

        /* the upstream schema (JSON is LONGTEXT with a JSON_VALID check on MariaDB) */
        assert_string_equal(
            raw("SELECT GROUP_CONCAT(CONCAT(column_name, ' ', column_type, ' ', is_nullable) "
                "ORDER BY ordinal_position SEPARATOR ', ') FROM information_schema.columns WHERE "
                "table_schema = DATABASE() AND table_name = '%s'",
                n.table),
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
                                n.table),
                            pk[m]);
        /* identifiers compare byte for byte: binary, no trailing-space padding */
        assert_string_equal(raw("SELECT collation_name FROM information_schema.columns WHERE "
                                "table_schema = DATABASE() AND table_name = '%s' AND "
                                "column_name = 'key'",
                                n.table),
                            mariadb ? "utf8mb4_nopad_bin" : "utf8mb4_0900_bin");
        /* one row: flat dotted keys, double sums on the server */
        assert_string_equal(raw("SELECT COUNT(*) FROM `%s`", n.table), "1");
        assert_string_equal(raw("SELECT JSON_LENGTH(data) FROM `%s`", n.table), "4");
        assert_string_equal(raw("SELECT JSON_EXTRACT(data, '$.count') FROM `%s`", n.table), "2");
        assert_string_equal(
            raw("SELECT JSON_EXTRACT(data, '$.\"meta.duration\"') FROM `%s`", n.table), "5");
        assert_string_equal(raw("SELECT JSON_EXTRACT(data, '$.\"q\\\\\"x\"') FROM `%s`", n.table),
                            "0.2");
        assert_string_equal(raw("SELECT JSON_EXTRACT(data, '$.gauge') FROM `%s`", n.table), "-7");
        assert_null(raw("SELECT JSON_EXTRACT(data, '$.meta') FROM `%s`", n.table));
        assert_string_equal(raw("SELECT `key` FROM `%s`", n.table), m == 0 ? "event::1h::1736935200"
                                                                    : m == 1 ? "event::1h"
                                                                             : "event");
        if (m > 0) /* UTC wall time in a zone-less DATETIME(6), as trifle_stats_go writes it */
            assert_string_equal(raw("SELECT CAST(`at` AS CHAR) FROM `%s`", n.table),
                                "2025-01-15 10:00:00.000000");
        if (m == 2)
            assert_string_equal(raw("SELECT granularity FROM `%s`", n.table), "1h");
        assert_string_equal(ns_tables(&n), "3");
        assert_int_equal(trifle_storage_drop(st, &err), 0);
        assert_string_equal(ns_tables(&n), "0");
        trifle_storage_close(st);
    }
}

static void test_ping_layout(void **state)
{
    const trifle_leaf l[] = {{"cpu.load", 0.5}, {"up", 1}};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st;
    char custom[64];
    int64_t at = 0;
    got g;
    ns n;

    (void)state;
    (void)snprintf(custom, sizeof(custom), "ping_table=tmy_%ld_custom_ping", (long)getpid());
    ns_init(&n, custom);
    st = st_new(&n);
    assert_int_equal(trifle_storage_ping(st, "health", T0 + 7, l, 2, &err), 0);
    assert_int_equal(trifle_storage_ping(st, "health", T0 + 7, l, 2, &err), 0); /* replaced */
    assert_string_equal(raw("SELECT CONCAT(CONVERT(`key` USING utf8mb4), ' ', "
                            "CAST(`at` AS CHAR), ' ', "
                            "JSON_UNQUOTE(JSON_EXTRACT(data, '$.at')), ' ', JSON_EXTRACT(data, "
                            "'$.\"data.up\"'), ' ', JSON_EXTRACT(data, '$.\"data.cpu.load\"')) "
                            "FROM %s",
                            custom + 11),
                        "health 2025-01-15 10:00:07.000000 2025-01-15T10:00:07Z 1 0.5");
    /* scan takes the data.* leaves only, without the prefix; foreign nested copies sum */
    (void)raw("UPDATE %s SET data = JSON_SET(data, '$.data', JSON_OBJECT('up', 2), '$.x', 5)",
              custom + 11);
    memset(&g, 0, sizeof(g));
    assert_int_equal(trifle_storage_scan(st, "health", &at, got_leaf, &g, &err), 0);
    assert_true(at == T0 + 7);
    assert_int_equal(g.n, 2);
    assert_true(got_value(&g, 0, "cpu.load") == 0.5);
    assert_true(got_value(&g, 0, "up") == 3);
    memset(&g, 0, sizeof(g));
    assert_int_equal(trifle_storage_scan(st, "nobody", &at, got_leaf, &g, &err), TRIFLE_ENOTFOUND);
    assert_int_equal(trifle_storage_drop(st, &err), 0);
    assert_string_equal(raw("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "
                            "DATABASE() AND table_name = '%s'",
                            custom + 11),
                        "0");
    trifle_storage_close(st);
}

/* Rows written by others: nested copies are summed, text and nulls are skipped, a text leaf
 * counts as 0 when incremented, and a bucket asked for twice is delivered twice. */
static void test_foreign_rows(void **state)
{
    const trifle_leaf l[] = {{"label", 2}, {"n", 1}, {"t", 1}};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st;
    trifle_bucket b[3];
    item it;
    got g;
    ns n;

    (void)state;
    ns_init(&n, NULL);
    st = st_new(&n);
    (void)raw("INSERT INTO `%s` (`key`, data) VALUES ('k::1h::1736935200', '{\"meta.duration\": "
              "2, \"meta\": {\"duration\": 4, \"deep\": {\"x\": 1e-7}}, \"label\": \"text\", "
              "\"n\": null, \"arr\": [1, 2], \"a..b\": 3, \"t\": true, \"s\": \"12\"}')",
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

    /* a stored text, null or boolean counts as 0 */
    inc1(st, "k", T0, l, 3);
    get1(st, "k", T0, &g);
    assert_true(got_value(&g, 0, "label") == 2);
    assert_true(got_value(&g, 0, "n") == 1);
    assert_true(got_value(&g, 0, "t") == 1);
    assert_string_equal(raw("SELECT JSON_EXTRACT(data, '$.label') FROM `%s`", n.table), "2");
    ns_drop(&n);
    trifle_storage_close(st);
}

/* Sums are double additions on the server, printed shortest round trip: every bit survives. */
static void test_numbers(void **state)
{
    const trifle_leaf l[] = {
        {"a", 0.1}, {"big", 1e300}, {"neg", -2.5}, {"tiny", 5e-324}, {"x", 1.2345678901234567e-7}};
    volatile double want[5];
    trifle_storage *st;
    int i, k;
    got g;
    ns n;

    (void)state;
    ns_init(&n, NULL);
    st = st_new(&n);
    for (k = 0; k < 5; k++)
        want[k] = l[k].value;
    for (i = 0; i < 3; i++)
        inc1(st, "num", T0, l, 5);
    for (i = 1; i < 3; i++)
        for (k = 0; k < 5; k++)
            want[k] = want[k] + l[k].value;
    get1(st, "num", T0, &g);
    for (k = 0; k < 5; k++)
        if (got_value(&g, 0, l[k].path) != want[k])
            fail_msg("%s: got %.17g, want %.17g", l[k].path, got_value(&g, 0, l[k].path), want[k]);
    assert_true(got_value(&g, 0, "a") == 0.30000000000000004);
    assert_string_equal(raw("SELECT JSON_EXTRACT(data, '$.a') FROM `%s`", n.table),
                        "0.30000000000000004");
    ns_drop(&n);
    trifle_storage_close(st);
}

static void test_errors(void **state)
{
    const trifle_leaf l[] = {{"count", 1}};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st = NULL;
    const char *badpass = getenv("TRIFLE_TEST_URI_MYSQL_BADPASS");
    const char *unix_url = getenv("TRIFLE_TEST_URI_MYSQL_UNIX");
    char url[1200];
    uint64_t seq = 7;
    int64_t at;
    item it;
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
    (void)snprintf(url, sizeof(url), "%s?table=bad-name", server);
    assert_int_equal(storage_open_url(&st, url, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "invalid table name: bad-name");
    (void)snprintf(url, sizeof(url),
                   "%s?table=t123456789012345678901234567890123456789012345678901234567890",
                   server);
    assert_int_equal(storage_open_url(&st, url, &err), TRIFLE_ECONFIG);
    (void)snprintf(url, sizeof(url), "%s?colection=x", server);
    assert_int_equal(storage_open_url(&st, url, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "invalid driver URL: unknown parameter colection");
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
    ns_init(&n, NULL);
    assert_int_equal(storage_open_url(&st, n.url, &err), 0);
    item_init(&it, st, "k", T0, l, 1);
    (void)snprintf(url, sizeof(url), "table %s does not exist (run \"trifle setup\")", n.table);
    assert_int_equal(trifle_storage_inc(st, &it.e, 1, NULL, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, url);
    assert_int_equal(err.native, 1146);
    assert_int_equal(trifle_storage_set(st, &it.e, 1, NULL, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, url);
    memset(&g, 0, sizeof(g));
    assert_int_equal(trifle_storage_get(st, &it.e.bucket, 1, got_leaf, &g, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, url);
    (void)snprintf(url, sizeof(url), "table %s_ping does not exist (run \"trifle setup\")",
                   n.table);
    assert_int_equal(trifle_storage_ping(st, "k", T0, l, 1, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, url);
    assert_int_equal(trifle_storage_scan(st, "k", &at, got_leaf, &g, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, url);
    assert_int_equal(trifle_storage_mark_read(st, "journal", &seq, &err), 0);
    assert_true(seq == 0);
    /* setup then makes everything work on the same connection */
    assert_int_equal(trifle_storage_setup(st, &err), 0);
    assert_int_equal(trifle_storage_setup(st, &err), 0);
    assert_int_equal(trifle_storage_inc(st, &it.e, 1, NULL, &err), 0);
    trifle_storage_close(st);

    /* the unix socket */
    if (unix_url == NULL)
        fail_msg("TRIFLE_TEST_URI_MYSQL_UNIX is not set (scripts/test-servers.sh exports it)");
    (void)snprintf(url, sizeof(url), "%s&table=%s", unix_url, n.table);
    assert_int_equal(storage_open_url(&st, url, &err), 0);
    assert_int_equal(trifle_storage_inc(st, &it.e, 1, NULL, &err), 0);
    get1(st, "k", T0, &g);
    assert_true(got_value(&g, 0, "count") == 2);
    trifle_storage_close(st);
    (void)snprintf(url, sizeof(url), "mysql://%s:%s@localhost/%s?socket=/nonexistent/trifle.sock",
                   srv.user, srv.password, srv.db);
    assert_int_equal(storage_open_url(&st, url, &err), TRIFLE_ECONN);
    assert_non_null(strstr(err.message, "trifle.sock"));
    ns_drop(&n);
}

/* An identifier that does not fit VARCHAR(255) is EDATA with failed_item, checked before
 * anything is sent; a server-side failure rolls the whole batch back; an item named twice in one
 * batch is applied twice. */
static void test_atomic_batch(void **state)
{
    const trifle_leaf l[] = {{"count", 1}};
    const trifle_leaf l2[] = {{"count", 1}, {"other", 2}};
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
    item_init(&it[2], st, "c", T0, l2, 2);
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

    /* the server rejects one row of the second statement: nothing of the batch is applied */
    (void)raw("ALTER TABLE `%s` ADD CONSTRAINT no_c CHECK (`key` <> 'c::1h::1736935200')", n.table);
    item_init(&it[1], st, "b", T0, l, 1);
    {
        trifle_entry e[3] = {it[0].e, it[1].e, it[2].e};
        res.failed_item = -1;
        assert_int_equal(trifle_storage_inc(st, e, 3, &res, &err), TRIFLE_EDRIVER);
        assert_int_equal(res.applied, 0);
        assert_int_equal(res.failed_item, -1);
        assert_int_equal(res.outcome_unknown, 0);
        assert_non_null(strstr(err.message, "4025"));
    }
    get1(st, "a", T0, &g);
    assert_true(got_value(&g, 0, "count") == 1);
    get1(st, "b", T0, &g);
    assert_int_equal(g.n, 0);
    /* a sum beyond the double range: the server refuses it (1690), the driver finds the item */
    {
        const trifle_leaf big[] = {{"x", 1.7976931348623157e308}};
        item o[3];
        item_init(&o[0], st, "ok1", T0, l, 1);
        item_init(&o[1], st, "big", T0, big, 1);
        item_init(&o[2], st, "ok2", T0, l, 1);
        assert_int_equal(trifle_storage_inc(st, &o[1].e, 1, &res, &err), 0);
        {
            trifle_entry e[3] = {o[0].e, o[1].e, o[2].e};
            res.failed_item = -1;
            assert_int_equal(trifle_storage_inc(st, e, 3, &res, &err), TRIFLE_EDATA);
            assert_int_equal(res.failed_item, 1);
            assert_int_equal(res.applied, 0);
            assert_int_equal(err.native, 1690);
            assert_non_null(strstr(err.message, "item 1 overflows"));
        }
        get1(st, "ok1", T0, &g);
        assert_int_equal(g.n, 0);
        get1(st, "big", T0, &g);
        assert_true(got_value(&g, 0, "x") == 1.7976931348623157e308);
    }
    /* one bucket twice in a batch: both apply (the second row of the upsert updates the first) */
    {
        trifle_entry e[2] = {it[0].e, it[0].e};
        assert_int_equal(trifle_storage_inc(st, e, 2, &res, &err), 0);
    }
    get1(st, "a", T0, &g);
    assert_true(got_value(&g, 0, "count") == 3);
    ns_drop(&n);
    trifle_storage_close(st);
}

/* The server kills the driver's session (as a restart does): the next call of every kind
 * reconnects once and succeeds, and a write is applied exactly once. */
static void test_reconnect(void **state)
{
    const trifle_leaf l[] = {{"count", 1}};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st;
    int64_t at;
    tcp_relay r;
    got g;
    int i;
    ns n;

    (void)state;
    relay_start(&r);
    ns_init_relay(&n, &r, NULL);
    st = st_new(&n);
    inc1(st, "r", T0, l, 1);
    for (i = 0; i < 5; i++) {
        int before = atomic_load(&test_log_reconnects), port = atomic_load(&r.up_local);
        const char *id;

        assert_int_not_equal(port, 0);
        id = raw("SELECT id FROM information_schema.processlist WHERE host = '127.0.0.1:%d'", port);
        assert_string_not_equal(id, "");
        (void)raw("KILL CONNECTION %s", id);
        /* wait until the relay saw the server close the session */
        while (atomic_load(&r.up_local) == port)
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
        case 3:
            memset(&g, 0, sizeof(g));
            assert_int_equal(trifle_storage_scan(st, "r", &at, got_leaf, &g, &err), 0);
            break;
        default:
            assert_int_equal(trifle_storage_setup(st, &err), 0);
            break;
        }
        assert_int_equal(atomic_load(&test_log_reconnects), before + 1);
    }
    get1(st, "r", T0, &g);
    assert_true(got_value(&g, 0, "count") == 2);
    trifle_storage_close(st);
    tcp_relay_stop(&r);
    ns_drop(&n);
}

/* Replies lost through a relay and a server that is down (storage_case_outcome_unknown). */
static void test_outcome_unknown(void **state)
{
    tcp_relay r;
    ns n;

    (void)state;
    relay_start(&r);
    ns_init_relay(&n, &r, NULL);
    storage_case_outcome_unknown("mysql", n.url, &r);
    tcp_relay_stop(&r);
    ns_drop(&n);
}

/* The merge happens on the server under the row lock: a write that waits for another
 * transaction's lock adds to what that transaction committed, not to what it read before. */
static void test_row_lock(void **state)
{
    const trifle_leaf l[] = {{"count", 1}};
    trifle_storage *st;
    MYSQL_T *locker;
    pthread_t th;
    bg_inc b;
    got g;
    ns n;

    (void)state;
    ns_init(&n, NULL);
    st = st_new(&n);
    inc1(st, "s", T0, l, 1);
    locker = raw_open();
    (void)raw_on(locker, "START TRANSACTION");
    (void)raw_on(locker, "UPDATE `%s` SET data = JSON_SET(data, '$.count', 10)", n.table);
    memset(&b, 0, sizeof(b));
    b.st = st;
    item_init(&b.it, st, "s", T0, l, 1);
    assert_int_equal(pthread_create(&th, NULL, bg_inc_main, &b), 0);
    /* wait until the driver's statement waits for our row lock (a user sees its own sessions) */
    while (strcmp(raw("SELECT COUNT(*) FROM information_schema.processlist WHERE id <> "
                      "CONNECTION_ID() AND command = 'Query' AND info LIKE 'INSERT INTO `%s`%%'",
                      n.table),
                  "0") == 0)
        sleep_ms(10);
    (void)raw_on(locker, "COMMIT");
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(b.rc, 0);
    get1(st, "s", T0, &g);
    assert_true(got_value(&g, 0, "count") == 11);
    my.close(locker);
    trifle_storage_close(st);
    ns_drop(&n);
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
    ns_init(&n, "joined=partial");
    st = st_new(&n);
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
    (void)raw("ALTER TABLE `%s` ADD CONSTRAINT no_bad CHECK (`key` <> 'bad::1h')", n.table);
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
    assert_string_equal(ns_tables(&n), "3");
    assert_int_equal(trifle_storage_drop(st, &err), 0);
    assert_string_equal(ns_tables(&n), "0");
    trifle_storage_close(st);
}

/* 8 processes x 2,000 incs of the same leaves, and 8 concurrent setups of a new table: exact
 * totals, no error. */
static void test_concurrency(void **state)
{
    ns n;

    (void)state;
    ns_init(&n, "joined=separated&connect_timeout=120");
    storage_case_concurrency("mysql", n.url);
    ns_drop(&n);
}

/* Every allocation of a call failing in turn: TRIFLE_ENOMEM each time, then success (valgrind
 * checks that nothing leaks). */
static void test_oom(void **state)
{
    ns n;

    (void)state;
    ns_init(&n, "joined=partial");
    storage_case_oom(n.url, 1);
    ns_drop(&n);
}

/* items/s of 100 inc calls x 1,000 items x 3 leaves, and one get of 8,760 buckets. */
static void test_throughput(void **state)
{
    ns n;

    (void)state;
    ns_init(&n, "joined=separated");
    storage_case_throughput("mysql", n.url);
    ns_drop(&n);
}

static int group_setup(void **state)
{
    (void)state;
    raw_conn = raw_open();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    my.close(raw_conn);
    trifle_shutdown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_driver_table),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_ping_layout),
        cmocka_unit_test(test_foreign_rows),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_atomic_batch),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_outcome_unknown),
        cmocka_unit_test(test_row_lock),
        cmocka_unit_test(test_write_marked),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_oom),
        cmocka_unit_test(test_throughput),
    };
    const char *ci = getenv("CI"), *strict = getenv("TRIFLE_TEST_STRICT");

    test_server_hooks("mysql");
    server = getenv("TRIFLE_TEST_URI_MYSQL");
    if (server == NULL || server[0] == '\0') {
        int must =
            (ci != NULL && strcmp(ci, "true") == 0) || (strict != NULL && strcmp(strict, "1") == 0);
        (void)fprintf(stderr, "%s: TRIFLE_TEST_URI_MYSQL is not set\n", must ? "error" : "skip");
        return must ? 1 : 77;
    }
    if (parse_server() != 0) {
        (void)fprintf(stderr,
                      "error: TRIFLE_TEST_URI_MYSQL must be mysql://user:password@host:port/db "
                      "without a query\n");
        return 1;
    }
    my_load();
    /* TRIFLE_TEST_FILTER=test_reconnect runs one test (cmocka glob) */
    if (getenv("TRIFLE_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("TRIFLE_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
