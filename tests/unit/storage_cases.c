/* See storage_cases.h. */
#include "storage_cases.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server_helpers.h"
#include "storage_items.h"
#include "trifle/trifle.h"

#define T0 INT64_C(1736935200) /* 2025-01-15T10:00:00Z */

/* n, or n / 10 under TRIFLE_TEST_LIGHT=1. */
static int light(int n)
{
    return getenv("TRIFLE_TEST_LIGHT") != NULL ? n / 10 : n;
}

void storage_case_oom(const char *url, int with_marks)
{
    const trifle_leaf l[] = {{"count", 1}, {"meta.x", 0.5}};
    const trifle_mark mark = {"j", 1};
    long k;

    for (k = 1;; k++) {
        trifle_error err = TRIFLE_ERROR_INIT;
        trifle_storage *st = NULL;
        uint64_t seq;
        int64_t at;
        int rc;
        got g;
        item it;

        memset(&it, 0, sizeof(it));
        atomic_store(&test_alloc_count, 0);
        atomic_store(&test_alloc_fail_at, k);
        rc = storage_open_url(&st, url, &err);
        if (rc == 0)
            rc = trifle_storage_setup(st, &err);
        if (rc == 0) {
            item_init(&it, st, "o", T0, l, 2);
            rc = trifle_storage_inc(st, &it.e, 1, NULL, &err);
        }
        if (rc == 0 && with_marks)
            rc = trifle_storage_write_marked(st, &it.e, 1, &it.e, 1, &mark, NULL, &err);
        if (rc == 0 && with_marks)
            rc = trifle_storage_mark_read(st, "j", &seq, &err);
        if (rc == 0) {
            memset(&g, 0, sizeof(g));
            rc = trifle_storage_get(st, &it.e.bucket, 1, got_leaf, &g, &err);
        }
        if (rc == 0)
            rc = trifle_storage_ping(st, "o", T0, l, 2, &err);
        if (rc == 0)
            rc = trifle_storage_scan(st, "o", &at, got_leaf, &g, &err);
        atomic_store(&test_alloc_fail_at, 0);
        trifle_storage_close(st);
        if (rc == 0)
            break;
        if (rc != TRIFLE_ENOMEM)
            fail_msg("allocation %ld failing: %s %s", k, trifle_status_name(rc), err.message);
    }
    assert_true(k > 5);
}

void storage_case_concurrency(const char *driver, const char *url)
{
    enum { PROCS = 8 };
    const trifle_leaf l[] = {{"count", 1}, {"frac", 0.25}, {"half", 0.5}};
    const int incs = light(2000); /* fewer incs under valgrind, same contention */
    pid_t pids[PROCS];
    trifle_storage *st;
    int i, status;
    double t0;
    got g;

    t0 = now_s();
    for (i = 0; i < PROCS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            trifle_error err = TRIFLE_ERROR_INIT;
            trifle_storage *cst = NULL;
            int k,
                ok = storage_open_url(&cst, url, &err) == 0 && trifle_storage_setup(cst, &err) == 0;
            item it;
            if (ok)
                item_init(&it, cst, "hot", T0, l, 3);
            for (k = 0; ok && k < incs; k++)
                ok = trifle_storage_inc(cst, &it.e, 1, NULL, &err) == 0;
            if (!ok)
                fprintf(stderr, "child %d: %s\n", i, err.message);
            trifle_storage_close(cst);
            _exit(ok ? 0 : 1);
        }
    }
    for (i = 0; i < PROCS; i++) {
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    print_message("%s concurrency: %d processes x %d incs in %.2f s\n", driver, PROCS, incs,
                  now_s() - t0);
    st = storage_new(url);
    get1(st, "hot", T0, &g);
    assert_true(got_value(&g, 0, "count") == PROCS * incs);
    assert_true(got_value(&g, 0, "frac") == PROCS * incs * 0.25);
    assert_true(got_value(&g, 0, "half") == PROCS * incs * 0.5);
    trifle_storage_close(st);
}

void storage_case_throughput(const char *driver, const char *url)
{
    enum { ITEMS = 1000, YEAR = 8760 };
    const trifle_leaf l[] = {{"count", 1}, {"meta.duration", 0.25}, {"meta.size", 3}};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_bucket *b = calloc(YEAR, sizeof(*b));
    item *it = calloc(YEAR, sizeof(*it));
    trifle_entry *e = calloc(YEAR, sizeof(*e));
    const int calls = light(100);
    trifle_storage *st;
    size_t i, leaves = 0;
    double t0, dt, first = 0, best = 0;
    char key[32];

    assert_true(b != NULL && it != NULL && e != NULL);
    st = storage_new(url);
    for (i = 0; i < ITEMS; i++) {
        (void)snprintf(key, sizeof(key), "metric%zu", i);
        item_init(&it[i], st, key, T0, l, 3);
        e[i] = it[i].e;
    }
    t0 = now_s();
    for (i = 0; i < (size_t)calls; i++)
        assert_int_equal(trifle_storage_inc(st, e, ITEMS, NULL, &err), 0);
    dt = now_s() - t0;
    print_message("%s inc throughput: %d calls x %d items (3 leaves) in %.3f s = %.0f items/s\n",
                  driver, calls, ITEMS, dt, calls * ITEMS / dt);

    for (i = 0; i < YEAR; i++) {
        item_init(&it[i], st, "year", T0 + (int64_t)i * 3600, l, 3);
        e[i] = it[i].e;
        b[i] = it[i].e.bucket;
    }
    assert_int_equal(trifle_storage_inc(st, e, YEAR, NULL, &err), 0);
    for (i = 0; i < 3; i++) {
        got *g = calloc(1, sizeof(*g)); /* only the first 64 leaves are kept */
        double t1 = now_s();
        assert_non_null(g);
        assert_int_equal(trifle_storage_get(st, b, YEAR, got_leaf, g, &err), 0);
        dt = now_s() - t1;
        if (i == 0)
            first = dt;
        if (i == 0 || dt < best)
            best = dt;
        leaves = g->n;
        free(g);
    }
    assert_int_equal(leaves, 64);
    print_message("%s get of %d buckets: %.1f ms (first call), %.1f ms (best of 3)\n", driver, YEAR,
                  first * 1000, best * 1000);
    trifle_storage_close(st);
    free(b);
    free(it);
    free(e);
}

void storage_case_outcome_unknown(const char *driver, const char *url, tcp_relay *r)
{
    const trifle_leaf l[] = {{"count", 1}};
    trifle_write_result res = {sizeof(res), 0, -1, 0};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st = storage_new(url);
    char down[96];
    item it;
    got g;

    inc1(st, "u", T0, l, 1); /* prepares the statements on this session */
    get1(st, "u", T0, &g);

    item_init(&it, st, "u", T0, l, 1);
    atomic_store(&r->cut, 1);
    assert_int_equal(trifle_storage_inc(st, &it.e, 1, &res, &err), TRIFLE_ECONN);
    assert_int_equal(atomic_load(&r->cuts), 1);
    assert_int_equal(res.outcome_unknown, 1);
    assert_int_equal(res.applied, 0);
    assert_int_equal(res.failed_item, -1);
    assert_non_null(strstr(err.message, "outcome unknown"));
    /* the next call reconnects; the lost write had been applied */
    inc1(st, "u", T0, l, 1);
    get1(st, "u", T0, &g);
    assert_true(got_value(&g, 0, "count") == 3);

    atomic_store(&r->cut, 1);
    get1(st, "u", T0, &g); /* sent again on a new connection */
    assert_int_equal(atomic_load(&r->cuts), 2);
    assert_true(got_value(&g, 0, "count") == 3);

    /* the server goes away between calls: ECONN, known not applied; back again: success */
    atomic_store(&r->refuse, 1);
    sleep_ms(300); /* the relay closes the live connection within 100 ms */
    res.outcome_unknown = 0;
    assert_int_equal(trifle_storage_inc(st, &it.e, 1, &res, &err), TRIFLE_ECONN);
    assert_int_equal(res.outcome_unknown, 0);
    (void)snprintf(down, sizeof(down), "cannot connect to %s", driver);
    assert_non_null(strstr(err.message, down));
    assert_int_equal(trifle_storage_inc(st, &it.e, 1, &res, &err), TRIFLE_ECONN);
    atomic_store(&r->refuse, 0);
    inc1(st, "u", T0, l, 1);
    get1(st, "u", T0, &g);
    assert_true(got_value(&g, 0, "count") == 4);
    trifle_storage_close(st);
}

void storage_case_reconnect(trifle_storage *st, int calls, void (*kill)(void *ctx), void *ctx)
{
    const trifle_leaf l[] = {{"count", 1}};
    trifle_error err = TRIFLE_ERROR_INIT;
    int64_t at;
    got g;
    int i;

    inc1(st, "r", T0, l, 1);
    for (i = 0; i < calls; i++) {
        int before = atomic_load(&test_log_reconnects);

        kill(ctx);
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
}

void storage_case_before_setup(trifle_storage *st, const char *table, int native)
{
    const trifle_leaf l[] = {{"count", 1}};
    trifle_error err = TRIFLE_ERROR_INIT;
    char want[160], want_ping[160];
    uint64_t seq = 7;
    int64_t at;
    item it;
    got g;

    item_init(&it, st, "k", T0, l, 1);
    (void)snprintf(want, sizeof(want), "table %s does not exist (run \"trifle setup\")", table);
    (void)snprintf(want_ping, sizeof(want_ping),
                   "table %s_ping does not exist (run \"trifle setup\")", table);
    assert_int_equal(trifle_storage_inc(st, &it.e, 1, NULL, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, want);
    if (native != 0)
        assert_int_equal(err.native, native);
    assert_int_equal(trifle_storage_set(st, &it.e, 1, NULL, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, want);
    memset(&g, 0, sizeof(g));
    assert_int_equal(trifle_storage_get(st, &it.e.bucket, 1, got_leaf, &g, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, want);
    assert_int_equal(trifle_storage_ping(st, "k", T0, l, 1, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, want_ping);
    assert_int_equal(trifle_storage_scan(st, "k", &at, got_leaf, &g, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, want_ping);
    assert_int_equal(trifle_storage_mark_read(st, "journal", &seq, &err), 0);
    assert_true(seq == 0);
    /* setup then makes everything work on the same connection */
    assert_int_equal(trifle_storage_setup(st, &err), 0);
    assert_int_equal(trifle_storage_setup(st, &err), 0);
    assert_int_equal(trifle_storage_inc(st, &it.e, 1, NULL, &err), 0);
}

void storage_case_bad_params(const char *server)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st = NULL;
    char url[1200];

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
}

/* ---------------------------------------------------------------------------------------------
 * Whole tests of a SQL driver
 */

const char *sql_raw(const sql_backend *b, void *conn, const char *fmt, ...)
{
    char sql[4096];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return b->exec(conn != NULL ? conn : b->conn, sql);
}

static sql_backend *group_backend;

void sql_group_use(sql_backend *b)
{
    group_backend = b;
    if (getenv("TRIFLE_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("TRIFLE_TEST_FILTER"));
}

int sql_group_setup(void **state)
{
    (void)state;
    group_backend->conn = group_backend->open();
    return 0;
}

int sql_group_teardown(void **state)
{
    (void)state;
    group_backend->close(group_backend->conn);
    trifle_shutdown();
    return 0;
}

const char *sql_server(sql_backend *b, const char *var, int *status)
{
    test_server_hooks(b->driver);
    b->server = test_server_url(var, "the tests", status);
    return b->server;
}

void *sql_case_row_lock(const sql_backend *b, trifle_storage *st, const char *table,
                        const char *update, const char *waiting)
{
    const trifle_leaf l[] = {{"count", 1}};
    void *locker = b->open();
    pthread_t th;
    bg_inc bg;
    got g;

    inc1(st, "s", T0, l, 1);
    (void)sql_raw(b, locker, "BEGIN");
    (void)sql_raw(b, locker, update, table);
    memset(&bg, 0, sizeof(bg));
    bg.st = st;
    item_init(&bg.it, st, "s", T0, l, 1);
    assert_int_equal(pthread_create(&th, NULL, bg_inc_main, &bg), 0);
    /* wait until the driver's statement waits for our row lock */
    while (strcmp(sql_raw(b, NULL, waiting, table), "0") == 0)
        sleep_ms(10);
    (void)sql_raw(b, locker, "COMMIT");
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(bg.rc, 0);
    get1(st, "s", T0, &g);
    assert_true(got_value(&g, 0, "count") == 11);
    return locker;
}

void sql_ns_init(const sql_backend *b, test_ns *n, const char *params)
{
    test_ns_init(n, b->prefix, b->server, params);
}

void sql_ns_drop(const sql_backend *b, const test_ns *n)
{
    (void)sql_raw(b, NULL, b->drop_sql, n->table, n->table, n->table);
}

trifle_storage *sql_new(const sql_backend *b, test_ns *n, const char *params)
{
    sql_ns_init(b, n, params);
    return storage_new(n->url);
}

const char *sql_tables(const sql_backend *b, const char *table)
{
    char list[256];

    (void)snprintf(list, sizeof(list), "'%s', '%s_ping', '%s_marks'", table, table, table);
    return sql_raw(b, NULL, b->tables_sql, list);
}

void sql_test_driver_table(void **state)
{
    const sql_backend *b = *state;
    const trifle_driver *d = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    char path[600];
    size_t i;

    (void)snprintf(path, sizeof(path), "%s/trifle_%s.so", TRIFLE_BUILD_PLUGIN_DIR, b->driver);
    assert_int_equal(trifle_driver_load(&d, path, NULL, &err), 0);
    assert_string_equal(d->name, b->driver);
    if (b->version != NULL)
        assert_string_equal(d->version, b->version);
    assert_int_equal(d->caps, TRIFLE_CAP_MODE_PARTIAL | TRIFLE_CAP_MODE_SEPARATED |
                                  TRIFLE_CAP_PING | TRIFLE_CAP_ATOMIC_BATCH | TRIFLE_CAP_SETUP |
                                  TRIFLE_CAP_EXACT_DOUBLES | TRIFLE_CAP_JOURNAL_MARK);
    assert_non_null(d->write_marked);
    assert_non_null(d->mark_read);
    for (i = 0; b->schemes[i] != NULL; i++)
        assert_string_equal(d->schemes[i], b->schemes[i]);
    assert_null(d->schemes[i]);
    assert_non_null(d->drop);
}

void sql_test_layout(void **state)
{
    static const char *const modes[] = {"full", "partial", "separated"};
    const sql_backend *b = *state;
    const trifle_leaf l[] = {{"count", 1}, {"meta.duration", 2.5}, {"q\"x", 0.1}};
    const trifle_leaf s[] = {{"gauge", -7}};
    trifle_error err = TRIFLE_ERROR_INIT;
    int m;

    for (m = 0; m < 3; m++) {
        char params[64];
        trifle_storage *st;
        item it[2];
        test_ns n;

        (void)snprintf(params, sizeof(params), "joined=%s", modes[m]);
        st = sql_new(b, &n, params);
        item_init(&it[0], st, "event", T0, l, 3);
        assert_int_equal(trifle_storage_inc(st, &it[0].e, 1, NULL, &err), 0);
        assert_int_equal(trifle_storage_inc(st, &it[0].e, 1, NULL, &err), 0);
        item_init(&it[1], st, "event", T0, s, 1);
        assert_int_equal(trifle_storage_set(st, &it[1].e, 1, NULL, &err), 0);
        b->layout(&n, st, m);
        assert_string_equal(sql_tables(b, n.table), "3");
        assert_int_equal(trifle_storage_drop(st, &err), 0);
        assert_string_equal(sql_tables(b, n.table), "0");
        trifle_storage_close(st);
    }
}

void sql_test_ping_layout(void **state)
{
    const sql_backend *b = *state;
    const trifle_leaf l[] = {{"cpu.load", 0.5}, {"up", 1}};
    trifle_error err = TRIFLE_ERROR_INIT;
    char table[64], param[96];
    trifle_storage *st;
    int64_t at = 0;
    test_ns n;
    got g;

    (void)snprintf(table, sizeof(table), "%s_%ld_custom_ping", b->prefix, (long)getpid());
    (void)snprintf(param, sizeof(param), "ping_table=%s", table);
    st = sql_new(b, &n, param);
    assert_int_equal(trifle_storage_ping(st, "health", T0 + 7, l, 2, &err), 0);
    assert_int_equal(trifle_storage_ping(st, "health", T0 + 7, l, 2, &err), 0); /* replaced */
    assert_string_equal(sql_raw(b, NULL, b->ping_sql, table), b->ping_want);
    /* scan takes the data.* leaves only, without the prefix; foreign nested copies sum */
    (void)sql_raw(b, NULL, b->ping_nest_sql, table);
    memset(&g, 0, sizeof(g));
    assert_int_equal(trifle_storage_scan(st, "health", &at, got_leaf, &g, &err), 0);
    assert_true(at == T0 + 7);
    assert_int_equal(g.n, 2);
    assert_true(got_value(&g, 0, "cpu.load") == 0.5);
    assert_true(got_value(&g, 0, "up") == 3);
    memset(&g, 0, sizeof(g));
    assert_int_equal(trifle_storage_scan(st, "nobody", &at, got_leaf, &g, &err), TRIFLE_ENOTFOUND);
    assert_int_equal(trifle_storage_drop(st, &err), 0);
    (void)snprintf(param, sizeof(param), "'%s'", table);
    assert_string_equal(sql_raw(b, NULL, b->tables_sql, param), "0");
    trifle_storage_close(st);
}

void sql_test_foreign_rows(void **state)
{
    const sql_backend *b = *state;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st;
    trifle_bucket bk[3];
    test_ns n;
    size_t i;
    item it;
    got g;

    st = sql_new(b, &n, NULL);
    (void)sql_raw(b, NULL, b->foreign_sql, n.table);
    item_init(&it, st, "k", T0, NULL, 0);
    bk[0] = it.e.bucket;
    bk[1] = it.e.bucket;
    bk[2] = it.e.bucket;
    bk[2].id = "missing::1h::1736935200";
    memset(&g, 0, sizeof(g));
    assert_int_equal(trifle_storage_get(st, bk, 3, got_leaf, &g, &err), 0);
    assert_int_equal(got_count(&g, 0), 2);
    assert_true(got_value(&g, 0, "meta.duration") == 6);
    assert_true(got_value(&g, 0, "meta.deep.x") == 1e-7);
    assert_int_equal(got_count(&g, 1), 2);
    assert_true(got_value(&g, 1, "meta.duration") == 6);
    assert_int_equal(got_count(&g, 2), 0);

    /* a stored text or null (or boolean) counts as 0 */
    inc1(st, "k", T0, b->foreign_leaves, b->n_foreign_leaves);
    get1(st, "k", T0, &g);
    for (i = 0; i < b->n_foreign_leaves; i++)
        assert_true(got_value(&g, 0, b->foreign_leaves[i].path) == b->foreign_leaves[i].value);
    assert_string_equal(sql_raw(b, NULL, b->leaf_sql, "label", n.table), "2");
    sql_ns_drop(b, &n);
    trifle_storage_close(st);
}

void sql_test_numbers(void **state)
{
    const sql_backend *b = *state;
    const trifle_leaf l[] = {
        {"a", 0.1}, {"big", 1e300}, {"neg", -2.5}, {"tiny", 5e-324}, {"x", 1.2345678901234567e-7}};
    volatile double want[5]; /* the double sums as the server adds them, not folded */
    trifle_storage *st;
    test_ns n;
    int i, k;
    got g;

    st = sql_new(b, &n, NULL);
    for (k = 0; k < 5; k++)
        want[k] = b->sums != NULL ? b->sums[k] : l[k].value;
    for (i = 0; i < 3; i++)
        inc1(st, "num", T0, l, 5);
    for (i = 1; i < 3 && b->sums == NULL; i++)
        for (k = 0; k < 5; k++)
            want[k] = want[k] + l[k].value;
    get1(st, "num", T0, &g);
    for (k = 0; k < 5; k++) {
        double v = got_value(&g, 0, l[k].path);
        if (v != want[k])
            print_message("%s: got %.17g, want %.17g\n", l[k].path, v, want[k]);
        assert_true(v == want[k]);
    }
    assert_true(got_value(&g, 0, "a") == strtod(b->sum_a, NULL));
    assert_string_equal(sql_raw(b, NULL, b->leaf_sql, "a", n.table), b->sum_a);
    sql_ns_drop(b, &n);
    trifle_storage_close(st);
}

void sql_test_outcome_unknown(void **state)
{
    const sql_backend *b = *state;
    tcp_relay r;
    test_ns n;

    if (b->ns_relay(&n, &r) != 0)
        skip();
    storage_case_outcome_unknown(b->driver, n.url, &r);
    tcp_relay_stop(&r);
    sql_ns_drop(b, &n);
}

/* One of the storage_case_* loops on a fresh namespace of the backend in *state. */
enum { SQL_CONCURRENCY, SQL_OOM, SQL_THROUGHPUT };

static void sql_run(void **state, int which)
{
    const sql_backend *b = *state;
    test_ns n;

    if (which == SQL_CONCURRENCY) {
        sql_ns_init(b, &n, "joined=separated&connect_timeout=120"); /* valgrind is slow */
        storage_case_concurrency(b->driver, n.url);
    } else if (which == SQL_OOM) {
        sql_ns_init(b, &n, "joined=partial");
        storage_case_oom(n.url, b->oom_marks);
    } else {
        sql_ns_init(b, &n, b->throughput_params);
        storage_case_throughput(b->driver, n.url);
    }
    sql_ns_drop(b, &n);
}

void sql_test_concurrency(void **state)
{
    sql_run(state, SQL_CONCURRENCY);
}

void sql_test_oom(void **state)
{
    sql_run(state, SQL_OOM);
}

void sql_test_throughput(void **state)
{
    sql_run(state, SQL_THROUGHPUT);
}

int storage_batch_refused(trifle_storage *st, const item *it, size_t n, int rc, long failed_item,
                          const char *needle)
{
    trifle_write_result res = {sizeof(res), 7, -1, 0};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_entry e[8];
    size_t i;

    assert_true(n <= 8);
    for (i = 0; i < n && i < 8; i++)
        e[i] = it[i].e;
    assert_int_equal(trifle_storage_inc(st, e, n, &res, &err), rc);
    assert_int_equal(res.failed_item, failed_item);
    assert_int_equal(res.applied, 0);
    assert_int_equal(res.outcome_unknown, 0);
    assert_non_null(strstr(err.message, needle));
    return err.native;
}

/* test_atomic_batch on st of namespace table: an identifier longer than 255 characters is EDATA
 * with failed_item, checked before anything is sent; with a CHECK constraint refusing c, the
 * server's refusal rolls the whole batch back (EDRIVER, b->check_code): "a" keeps count 1, "b"
 * gets nothing; one bucket twice in a batch is b->twice_rc (0: both apply, the second row of the
 * upsert updates the first). */
static void atomic_batch(const sql_backend *b, trifle_storage *st, const char *table)
{
    const trifle_leaf l[] = {{"count", 1}};
    trifle_write_result res = {sizeof(res), 7, -1, 0};
    trifle_error err = TRIFLE_ERROR_INIT;
    char long_key[300];
    item it[3];
    got g;

    inc1(st, "a", T0, l, 1);
    memset(long_key, 'x', 250);
    long_key[250] = '\0';
    item_init(&it[0], st, "a", T0, l, 1);
    item_init(&it[1], st, long_key, T0, l, 1); /* 250 + "::1h::1736935200" > 255 characters */
    item_init(&it[2], st, "c", T0, b->c_leaves, b->n_c_leaves);
    (void)storage_batch_refused(st, it, 3, TRIFLE_EDATA, 1, "longer than 255");
    get1(st, "a", T0, &g);
    assert_true(got_value(&g, 0, "count") == 1);

    (void)sql_raw(b, NULL, b->check_sql, table, "no_c", "c::1h::1736935200");
    item_init(&it[1], st, "b", T0, l, 1);
    (void)storage_batch_refused(st, it, 3, TRIFLE_EDRIVER, -1, b->check_code);
    get1(st, "a", T0, &g);
    assert_true(got_value(&g, 0, "count") == 1);
    get1(st, "b", T0, &g);
    assert_int_equal(g.n, 0);
    {
        trifle_entry e[2] = {it[0].e, it[0].e};
        assert_int_equal(trifle_storage_inc(st, e, 2, &res, &err), b->twice_rc);
    }
    get1(st, "a", T0, &g);
    assert_true(got_value(&g, 0, "count") == (b->twice_rc == 0 ? 3 : 1));
}

void sql_test_atomic_batch(void **state)
{
    const sql_backend *b = *state;
    trifle_storage *st;
    test_ns n;

    st = sql_new(b, &n, NULL);
    atomic_batch(b, st, n.table);
    if (b->batch_more != NULL)
        b->batch_more(st);
    sql_ns_drop(b, &n);
    trifle_storage_close(st);
}
