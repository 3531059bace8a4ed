/* The connection pool of a stats handle (option `connections`, core/store/pool.c): connections open
 * on demand up to the limit, a busy pool makes callers wait, a broken connection is replaced, close
 * waits for calls in progress; and through the public API, concurrent unbuffered writers on a real
 * SQLite file (and PostgreSQL when TRIFLE_TEST_URI_POSTGRES is set) end with exact totals. */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../fake_driver.h"
#include "pool_int.h"
#include "trifle/trifle.h"
#include "unit_helpers.h"

#define T0 1736937465 /* 2025-01-15T10:37:45Z */

static int db_counter;
static char db[64], url[128];

static void fresh_fake(void)
{
    trifle_error err = TRIFLE_ERROR_INIT;

    assert_int_equal(trifle_driver_dir_add(TRIFLE_TEST_PLUGIN_DIR, &err), 0);
    assert_int_equal(trifle_driver_dir_add(TRIFLE_BUILD_PLUGIN_DIR, &err), 0);
    (void)snprintf(db, sizeof(db), "pool%d", ++db_counter);
    (void)snprintf(url, sizeof(url), "fake:%s", db);
}

/* A pool of at most @p max connections on a fresh fake database. */
static trifle__pool *new_pool(size_t max)
{
    trifle_storage *first = NULL;
    trifle__pool *p = NULL;
    trifle_storage_options so = TRIFLE_STORAGE_OPTIONS_INIT;
    trifle_error err = TRIFLE_ERROR_INIT;

    fresh_fake();
    assert_int_equal(trifle_storage_open(&first, url, &so, &err), 0);
    assert_int_equal(trifle__pool_new(&p, first, url, &so, max, &err), 0);
    return p;
}

/* Connections open only when every open one is busy, and never more than the limit. */
static void test_opens_on_demand(void **state)
{
    trifle__pool *p;
    trifle_storage *a, *b, *c, *again;
    trifle_error err = TRIFLE_ERROR_INIT;

    (void)state;
    p = new_pool(3);
    assert_int_equal(trifle__pool_open_count(p), 1);
    assert_int_equal(trifle__pool_get(p, &a, &err), 0);
    assert_ptr_equal(a, trifle__pool_meta(p));
    trifle__pool_put(p, a, 0);
    assert_int_equal(trifle__pool_get(p, &again, &err), 0);
    assert_ptr_equal(again, a); /* an idle one is reused, nothing new is opened */
    assert_int_equal(trifle__pool_open_count(p), 1);
    assert_int_equal(trifle__pool_get(p, &b, &err), 0);
    assert_int_equal(trifle__pool_get(p, &c, &err), 0);
    assert_true(a != b && b != c && a != c);
    assert_int_equal(trifle__pool_open_count(p), 3);
    trifle__pool_put(p, a, 0);
    trifle__pool_put(p, b, 0);
    trifle__pool_put(p, c, 0);
    trifle__pool_free(p);
}

typedef struct waiter {
    pthread_t th;
    trifle__pool *p;
    trifle_storage *got;
    int rc;
    atomic_int done;
} waiter;

static void nap_50ms(void)
{
    struct timespec ts = {0, 50 * 1000000L};

    (void)nanosleep(&ts, NULL);
}

/* Start @p fn on @p w, a waiter on @p p holding @p got. */
static void start_waiter(void *(*fn)(void *), waiter *w, trifle__pool *p, trifle_storage *got)
{
    w->p = p;
    w->got = got;
    w->rc = got == NULL ? -1 : 0;
    atomic_init(&w->done, 0);
    assert_int_equal(pthread_create(&w->th, NULL, fn, w), 0);
}

static void *get_one(void *v)
{
    waiter *w = v;
    trifle_error err = TRIFLE_ERROR_INIT;

    w->rc = trifle__pool_get(w->p, &w->got, &err);
    atomic_store(&w->done, 1);
    return NULL;
}

/* With every connection busy a caller waits until one is given back. */
static void test_full_pool_waits(void **state)
{
    trifle__pool *p = new_pool(2);
    trifle_storage *a, *b;
    trifle_error err = TRIFLE_ERROR_INIT;
    waiter w;

    (void)state;
    assert_int_equal(trifle__pool_get(p, &a, &err), 0);
    assert_int_equal(trifle__pool_get(p, &b, &err), 0);
    start_waiter(get_one, &w, p, NULL);
    nap_50ms();
    assert_int_equal(atomic_load(&w.done), 0); /* still waiting */
    trifle__pool_put(p, b, 0);
    assert_int_equal(pthread_join(w.th, NULL), 0);
    assert_int_equal(w.rc, 0);
    assert_ptr_equal(w.got, b);
    assert_int_equal(trifle__pool_open_count(p), 2);
    trifle__pool_put(p, a, 0);
    trifle__pool_put(p, w.got, 0);
    trifle__pool_free(p);
}

/* A connection given back after ECONN is closed and a new one opened when needed; the first one
 * (it answers identifier questions without a lock) is kept and reconnects by itself. */
static void test_broken_connection_is_replaced(void **state)
{
    trifle__pool *p;
    trifle_storage *a, *b, *c, *d;
    trifle_error err = TRIFLE_ERROR_INIT;
    double opens, closes;

    (void)state;
    p = new_pool(2);
    assert_int_equal(trifle__pool_get(p, &a, &err), 0);
    assert_int_equal(trifle__pool_get(p, &b, &err), 0);
    opens = fake_counter(db, "open.calls");
    closes = fake_counter(db, "close.calls");
    trifle__pool_put(p, b, TRIFLE_ECONN);
    assert_int_equal(trifle__pool_open_count(p), 1);
    assert_true(fake_counter(db, "close.calls") == closes + 1);
    trifle__pool_put(p, a, TRIFLE_ECONN); /* the first: kept */
    assert_int_equal(trifle__pool_open_count(p), 1);
    assert_int_equal(trifle__pool_get(p, &c, &err), 0);
    assert_ptr_equal(c, a);
    assert_int_equal(trifle__pool_get(p, &d, &err), 0); /* a fresh second connection */
    assert_true(fake_counter(db, "open.calls") == opens + 1);
    assert_int_equal(trifle__pool_open_count(p), 2);
    trifle__pool_put(p, c, 0);
    trifle__pool_put(p, d, 0);
    trifle__pool_free(p);
}

static void *put_later(void *v)
{
    waiter *w = v;

    nap_50ms();
    w->rc = 1;
    trifle__pool_put(w->p, w->got, 0);
    return NULL;
}

/* Close waits for the call in progress, closes everything, and refuses later calls. */
static void test_close_waits(void **state)
{
    waiter w;
    trifle__pool *p = new_pool(2);
    trifle_storage *a, *b;
    trifle_error err = TRIFLE_ERROR_INIT;

    (void)state;
    assert_int_equal(trifle__pool_get(p, &a, &err), 0);
    start_waiter(put_later, &w, p, a);
    trifle__pool_close(p);
    assert_int_equal(w.rc, 1); /* the call had ended */
    assert_int_equal(pthread_join(w.th, NULL), 0);
    assert_int_equal(trifle__pool_open_count(p), 0);
    assert_null(trifle__pool_meta(p));
    assert_int_equal(trifle__pool_get(p, &b, &err), TRIFLE_ECLOSED);
    trifle__pool_free(p);
}

/* ---------------------------------------------------------------------------------------------
 * Through the public API */

static trifle *open_with(const char *driver, const char *connections, const char *buffered)
{
    trifle_config *cfg =
        test_config(driver, (const char *const[]){"granularities", "1h,1d", "connections",
                                                  connections, "buffer.enabled", buffered, NULL});
    trifle *t = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;

    assert_int_equal(trifle_driver_dir_add(TRIFLE_BUILD_PLUGIN_DIR, &err), 0);
    if (trifle_open(&t, cfg, &err) != 0)
        fail_msg("open %s: %s", driver, err.message);
    trifle_config_free(cfg);
    return t;
}

static void test_memory_sqlite_refuses_a_pool(void **state)
{
    trifle_config *cfg =
        test_config("sqlite::memory:", (const char *const[]){"connections", "2", NULL});
    trifle *t = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;

    (void)state;
    assert_int_equal(trifle_driver_dir_add(TRIFLE_BUILD_PLUGIN_DIR, &err), 0);
    assert_int_equal(trifle_open(&t, cfg, &err), TRIFLE_ECONFIG);
    assert_null(t);
    assert_string_equal(
        err.message, "invalid option connections: 2 with sqlite::memory:, where every connection "
                     "is a database of its own (use 1, or a file)");
    assert_int_equal(trifle_config_set(cfg, "connections", "1", &err), 0);
    assert_int_equal(trifle_open(&t, cfg, &err), 0);
    trifle_free(t);
    trifle_config_free(cfg);
}

typedef struct writer {
    trifle *t;
    const trifle_payload *p;
    int n, failures;
    char last[256];
} writer;

static void *write_many(void *v)
{
    writer *w = v;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_series *s = NULL;
    int i;

    for (i = 0; i < w->n; i++) {
        if (trifle_track(w->t, "pooled", T0, w->p, 0, &err) != 0) {
            w->failures++;
            (void)snprintf(w->last, sizeof(w->last), "%s", err.message);
        }
        if (i % 50 == 0) { /* reads share the pool with the writers */
            if (trifle_values(w->t, &s, "pooled", T0, T0, "1h", 0, &err) != 0)
                w->failures++;
            trifle_series_free(s);
            s = NULL;
        }
    }
    return NULL;
}

/* Unbuffered writers on several connections: every call counted exactly once. */
static void concurrent_writers(const char *driver, int threads, int per_thread)
{
    trifle *t = open_with(driver, "4", "false");
    trifle_payload *p = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_series *s = NULL;
    pthread_t th[8];
    writer w[8];
    double total = 0;
    int i;

    if (trifle_setup(t, &err) != 0)
        fail_msg("setup: %s", err.message);
    assert_int_equal(trifle_payload_parse(&p, "{\"n\":1}", 7, &err), 0);
    for (i = 0; i < threads; i++) {
        w[i] = (writer){t, p, per_thread, 0, ""};
        assert_int_equal(pthread_create(&th[i], NULL, write_many, &w[i]), 0);
    }
    for (i = 0; i < threads; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        if (w[i].failures != 0)
            fail_msg("%s: thread %d: %d failures, last: %s", driver, i, w[i].failures, w[i].last);
    }
    assert_int_equal(trifle_values(t, &s, "pooled", T0, T0, "1d", 0, &err), 0);
    assert_int_equal(trifle_series_value(s, 0, "n", &total), 0);
    assert_true(total == (double)threads * per_thread);
    trifle_series_free(s);
    assert_int_equal(trifle_close(t, &err), 0);
    trifle_free(t);
    trifle_payload_free(p);
}

static void test_sqlite_file_writers(void **state)
{
    char dir[64], driver[256];

    (void)state;
    assert_int_equal(test_mkdtemp(dir, sizeof(dir), "pool"), 0);
    (void)snprintf(driver, sizeof(driver), "sqlite:%s/pool.db", dir);
    concurrent_writers(driver, 6, 300);
    test_rm_rf(dir);
}

static void test_postgres_writers(void **state)
{
    const char *base = getenv("TRIFLE_TEST_URI_POSTGRES");
    char driver[512];

    (void)state;
    if (base == NULL || base[0] == '\0') {
        if (getenv("TRIFLE_TEST_STRICT") != NULL)
            fail_msg("TRIFLE_TEST_URI_POSTGRES is not set (TRIFLE_TEST_STRICT)");
        skip();
    }
    (void)snprintf(driver, sizeof(driver), "%s%ctable=pool_%d", base, strchr(base, '?') ? '&' : '?',
                   (int)getpid());
    concurrent_writers(driver, 8, 250);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opens_on_demand),
        cmocka_unit_test(test_full_pool_waits),
        cmocka_unit_test(test_broken_connection_is_replaced),
        cmocka_unit_test(test_close_waits),
        cmocka_unit_test(test_memory_sqlite_refuses_a_pool),
        cmocka_unit_test(test_sqlite_file_writers),
        cmocka_unit_test(test_postgres_writers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
