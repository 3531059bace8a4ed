/* See storage_cases.h. */
#include "storage_cases.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

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
