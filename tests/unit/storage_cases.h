/* Test bodies the server-backed SQL drivers' tests run the same way (test_driver_postgres.c,
 * test_driver_mysql.c). The storage_case_* functions work on a URL or storage the caller made:
 * the out-of-memory loop, eight processes incrementing one bucket, the throughput report, replies
 * lost on the way, reconnects, the messages before setup, a batch that fails. The sql_test_*
 * functions are whole cmocka tests on a sql_backend (the initial state, SQL_TEST()): they make
 * and drop their namespaces themselves, and differ between the drivers only by what the backend
 * says about the SQL dialect. They use the failing allocator of server_helpers.h
 * (test_server_hooks() installed) and fail the test through cmocka. TRIFLE_TEST_LIGHT=1 (valgrind)
 * makes the loops ten times shorter. */
#ifndef TRIFLE_TEST_STORAGE_CASES_H
#define TRIFLE_TEST_STORAGE_CASES_H

#include <stddef.h>

#include "server_helpers.h"
#include "storage_items.h"
#include "trifle/storage.h"

/* Open url, set up, inc, (with_marks) write_marked and mark_read, get, ping and scan with
 * allocation 1, 2, ... failing until all succeed: every failure is TRIFLE_ENOMEM and nothing
 * leaks. */
void storage_case_oom(const char *url, int with_marks);

/* Eight forked processes each open url and increment one bucket; the sums are exact. driver
 * names the report line. */
void storage_case_concurrency(const char *driver, const char *url);

/* Report the rate of 1000-item incs and the time of a year-long get of hourly buckets. */
void storage_case_throughput(const char *driver, const char *url);

/* Through relay r (started by the caller; url opens driver through it): a write whose reply is
 * lost reports outcome_unknown (it was in fact applied, so a blind retry would count it twice), a
 * read whose reply is lost is simply sent again, a server that is down is ECONN with a known
 * outcome and the message "cannot connect to <driver>", and the next call after it is back
 * succeeds. The caller stops the relay and drops the namespace. */
void storage_case_outcome_unknown(const char *driver, const char *url, tcp_relay *r);

/* kill(ctx) makes the server end st's session (as a restart does) and waits until it has; it runs
 * before each of calls calls of another kind (inc, get, ping, scan, setup: calls is 4 or 5): each
 * reconnects once (one "reconnecting" line) and succeeds, and the inc is applied exactly once. */
void storage_case_reconnect(trifle_storage *st, int calls, void (*kill)(void *ctx), void *ctx);

/* On st, opened on a namespace whose tables do not exist yet (table: its name): inc, set, get,
 * ping and scan fail with TRIFLE_ECONFIG and "table <table>[_ping] does not exist (run \"trifle
 * setup\")" (native: the driver's native code of the inc's failure, or 0 for no check), mark_read
 * finds no mark, and setup, twice, then makes an inc of it (key "k", count 1) work. */
void storage_case_before_setup(trifle_storage *st, const char *table, int native);

/* An inc of the n (at most 8) items it as one batch returns rc with failed_item, nothing applied
 * and the outcome known, and a message containing needle. Returns the error's native code. */
int storage_batch_refused(trifle_storage *st, const item *it, size_t n, int rc, long failed_item,
                          const char *needle);

/* server?table=... with a bad table name, one too long, and an unknown parameter: ECONFIG with
 * the messages the drivers share. server has no query. */
void storage_case_bad_params(const char *server);

/* ---- whole tests of a SQL driver ------------------------------------------------------------ */

/* What the sql_test_* functions know about a SQL driver and its test. */
typedef struct sql_backend {
    const char *driver;         /* "postgres": report lines and "cannot connect to <driver>" */
    const char *version;        /* the driver's version, or NULL for no check */
    const char *const *schemes; /* the URL schemes it takes, NULL-terminated */
    const char *prefix;         /* "tpg": namespaces are <prefix>_<pid>_<n> */
    const char *server;         /* the server's URL, without a query (set before the tests run) */
    /* Run sql on conn, a connection of the test's own to the server: the first value of the
     * first row, "" without rows, or NULL for SQL NULL, in a buffer the next call reuses; fails
     * the test when the server refuses it. */
    const char *(*exec)(void *conn, const char *sql);
    void *conn;          /* the test's main connection (sql_group_setup) */
    void *(*open)(void); /* a new connection of the test's own; fails the test on error */
    void (*close)(void *conn);
    /* Start r towards the server and make n a namespace whose URL goes through it; -1 when the
     * server has no IPv4 address (the test skips). */
    int (*ns_relay)(test_ns *n, tcp_relay *r);
    /* The driver's own checks of the rows test_layout wrote in identifier mode m (0 "full",
     * 1 "partial", 2 "separated"): "event" with count 2, meta.duration 5, q"x 0.2 and gauge -7. */
    void (*layout)(const test_ns *n, trifle_storage *st, int m);
    const char *drop_sql;   /* drops the tables %s, %s_ping and %s_marks (the same name thrice) */
    const char *tables_sql; /* counts the tables named in a list of quoted names: "... IN (%s)" */
    const char *check_sql;  /* on table %s, adds the CHECK constraint %s: key <> '%s' */
    const char *check_code; /* in the message of a write the check refuses: "23514" */
    const char *leaf_sql;   /* the stored text of the top-level field %s in the row of table %s */
    /* test_ping_layout: the ping row of table %s as one text, as ping_want; an UPDATE of table
     * %s adding a nested copy {"data": {"up": 2}} and a foreign field x */
    const char *ping_sql, *ping_want, *ping_nest_sql;
    /* test_foreign_rows: INSERT of the foreign row k::1h::1736935200 into table %s, and the
     * leaves then incremented over its text, null (and boolean) fields */
    const char *foreign_sql;
    const trifle_leaf *foreign_leaves;
    size_t n_foreign_leaves;
    /* test_numbers: the sums of three incs of a 0.1, big 1e300, neg -2.5, tiny 5e-324 and
     * x 1.2345678901234567e-7 (exact decimals), or NULL for double additions; and the text
     * stored for a */
    const double *sums;
    const char *sum_a;
    /* test_atomic_batch: the leaves of the item the CHECK constraint refuses; what an inc of
     * one bucket twice in a batch returns (0: both apply); more checks of a batch on st, or
     * NULL */
    const trifle_leaf *c_leaves;
    size_t n_c_leaves;
    int twice_rc;
    void (*batch_more)(trifle_storage *st);
    const char *throughput_params; /* extra URL parameters of test_throughput, or NULL */
    int oom_marks;                 /* test_oom includes write_marked and mark_read */
} sql_backend;

/* Run tests (a CMUnitTest array) with the group setup and teardown of backend b, after the
 * filter TRIFLE_TEST_FILTER (a cmocka glob: "test_reconnect") when it is set. */
#define SQL_RUN_TESTS(b, tests) \
    (sql_group_use(b), cmocka_run_group_tests(tests, sql_group_setup, sql_group_teardown))

/* The backend of the group setup and teardown, and the filter of SQL_RUN_TESTS. */
void sql_group_use(sql_backend *b);
/* Group setup: b->conn = b->open(). Group teardown: b->close(b->conn), trifle_shutdown(). */
int sql_group_setup(void **state);
int sql_group_teardown(void **state);

/* A cmocka test entry for sql_test_<name> on backend b, named "test_<name>" (the name
 * TRIFLE_TEST_FILTER matches). */
#define SQL_TEST(name, b)                               \
    {                                                   \
        "test_" #name, sql_test_##name, NULL, NULL, (b) \
    }

/* The entries of every sql_test_* on backend b. */
#define SQL_TESTS(b)                                                                \
    SQL_TEST(driver_table, b), SQL_TEST(layout, b), SQL_TEST(ping_layout, b),       \
        SQL_TEST(foreign_rows, b), SQL_TEST(numbers, b), SQL_TEST(atomic_batch, b), \
        SQL_TEST(outcome_unknown, b), SQL_TEST(concurrency, b), SQL_TEST(oom, b),   \
        SQL_TEST(throughput, b)

/* b->exec of the SQL formatted from fmt on conn, or on b->conn when conn is NULL. */
const char *sql_raw(const sql_backend *b, void *conn, const char *fmt, ...) TRIFLE_PRINTF(3, 4);

/* test_server_hooks(b->driver), then b->server = test_server_url(var): NULL, with the exit
 * status in *status, when the tests cannot run. */
const char *sql_server(sql_backend *b, const char *var, int *status);

/* A transaction of the test's own (BEGIN on a new connection) runs update, printf format of the
 * table name: it sets the count of "s" (incremented once here) to 10, and holds the row. An inc
 * of "s" through st on a thread of its own waits for it (until waiting, a format of the table
 * name too, counts a waiting statement), and after the COMMIT adds to what the transaction
 * committed: 11. Returns the transaction's connection, open (b->close). */
void *sql_case_row_lock(const sql_backend *b, trifle_storage *st, const char *table,
                        const char *update, const char *waiting);

/* A fresh namespace of b with extra URL parameters (NULL for none), and its tables dropped. */
void sql_ns_init(const sql_backend *b, test_ns *n, const char *params);
void sql_ns_drop(const sql_backend *b, const test_ns *n);

/* sql_ns_init(b, n, params), and a storage on it, set up (storage_new). */
trifle_storage *sql_new(const sql_backend *b, test_ns *n, const char *params);

/* How many of the tables table, table_ping and table_marks exist ("0" to "3"). */
const char *sql_tables(const sql_backend *b, const char *table);

/* The plugin's table: name, version, schemes, and the capabilities of a SQL driver. */
void sql_test_driver_table(void **state);
/* The rows in every identifier mode (b->layout); all three tables come with setup and go with
 * drop. */
void sql_test_layout(void **state);
/* A ping row as the server has it; scan takes data.* only, summing foreign nested copies. */
void sql_test_ping_layout(void **state);
/* Rows written by others: nested copies are summed, text and nulls are skipped, a text leaf
 * counts as 0 when incremented (ERRATA I5), and a bucket asked for twice is delivered twice. */
void sql_test_foreign_rows(void **state);
/* Sums of three incs read back bit for bit (b->sums), and stored as b->sum_a. */
void sql_test_numbers(void **state);
/* A failing batch: too long an identifier, a row the server refuses (the whole batch rolls
 * back), one bucket twice (b->twice_rc); then b->batch_more. */
void sql_test_atomic_batch(void **state);
/* storage_case_outcome_unknown through b->ns_relay. */
void sql_test_outcome_unknown(void **state);
/* storage_case_concurrency, storage_case_oom, storage_case_throughput on a fresh namespace. */
void sql_test_concurrency(void **state);
void sql_test_oom(void **state);
void sql_test_throughput(void **state);

#endif
