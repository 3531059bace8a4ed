/* The buffer under threads (its shards, core/buffer/buffer.c): many writers on mixed keys end with
 * exact totals; an assert made after another thread's track (or before it) composes in that order,
 * although the two calls land in different shards; reads see every thread's writes.
 * TRIFLE_TEST_LIGHT=1 (valgrind) runs a slice of the stress. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../fake_driver.h"
#include "trifle/trifle.h"
#include "unit_helpers.h"
#include "vectors.h"

#define T0 1736937465 /* 2025-01-15T10:37:45Z */
#define THREADS 8
#define KEYS 16

static int db_counter;

/* A handle on the fake store @p url, configured by the name/value pairs @p opts. */
static trifle *open_fake(const char *url, const char *const *opts)
{
    trifle_config *cfg = test_config(url, opts);
    trifle *t = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;

    assert_int_equal(trifle_driver_dir_add(TRIFLE_TEST_PLUGIN_DIR, &err), 0);
    if (trifle_open(&t, cfg, &err) != 0)
        fail_msg("open: %s", err.message);
    trifle_config_free(cfg);
    return t;
}

static trifle *open_buffered(const char *async, const char *duration)
{
    char url[64];

    (void)snprintf(url, sizeof(url), "fake:threads%d", ++db_counter);
    return open_fake(url, (const char *const[]){"granularities", "1h,1d", "buffer.async", async,
                                                "buffer.duration_ms", duration, "buffer.size",
                                                "5000", NULL});
}

/* Close (which must succeed) and free. */
static void close_ok(trifle *t)
{
    trifle_error err = TRIFLE_ERROR_INIT;

    if (trifle_close(t, &err) != 0)
        fail_msg("close: %s", err.message);
    trifle_free(t);
}

static double value(trifle *t, const char *key, int64_t at, const char *g, const char *path)
{
    trifle_series *s = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    double v = 0;

    if (trifle_values(t, &s, key, at, at, g, 0, &err) != 0)
        fail_msg("values %s: %s", key, err.message);
    (void)trifle_series_value(s, 0, path, &v);
    trifle_series_free(s);
    return v;
}

/* ---------------------------------------------------------------------------------------------
 * Stress: THREADS writers × N tracks over KEYS keys and two days, flushes running meanwhile */

/* Which keys and days the writers visit: call i of writer w tracks <prefix><k> with
 * k = (i * stride + w) % keys, on day (i / keys) % days after T0. */
typedef struct plan {
    const char *prefix;
    long keys, stride, days;
} plan;

typedef struct writer {
    trifle *t;
    const trifle_payload *p;
    const plan *plan;
    long n;
    int index, failures;
} writer;

static void *write_keys(void *v)
{
    writer *w = v;
    trifle_error err = TRIFLE_ERROR_INIT;
    char key[32];
    long i;

    for (i = 0; i < w->n; i++) {
        long k = (i * w->plan->stride + w->index) % w->plan->keys;
        int64_t at = T0 + ((i / w->plan->keys) % w->plan->days) * 86400;
        (void)snprintf(key, sizeof(key), "%s%ld", w->plan->prefix, k);
        if (trifle_track(w->t, key, at, w->p, 0, &err) != 0)
            w->failures++;
    }
    return NULL;
}

/* Run @p n writers w[0..n) of @p t and @p p along @p pl, @p calls calls each; none fails. */
static void run_writers(const plan *pl, writer *w, int n, trifle *t, const trifle_payload *p,
                        long calls)
{
    pthread_t th[THREADS];
    int i;

    assert_true(n <= THREADS);
    for (i = 0; i < n; i++) {
        w[i] = (writer){t, p, pl, calls, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, write_keys, &w[i]), 0);
    }
    for (i = 0; i < n; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
}

static void test_stress_exact_totals(void **state)
{
    /* every thread visits every key and both days, in its own order */
    static const plan mixed = {"stress.k", KEYS, 7, 2};
    long per_thread = test_light() ? 20000 : 1000000;
    trifle *t = open_buffered("true", "5");
    trifle_payload *p = test_payload("{\"n\":1,\"w\":{\"x\":0.5}}");
    trifle_error err = TRIFLE_ERROR_INIT;
    writer w[THREADS];
    double total = 0, halves = 0, system = 0;
    char key[32];
    int k, d;

    (void)state;
    run_writers(&mixed, w, THREADS, t, p, per_thread);
    assert_int_equal(trifle_flush(t, &err), 0);
    for (k = 0; k < KEYS; k++)
        for (d = 0; d < 2; d++) {
            (void)snprintf(key, sizeof(key), "stress.k%d", k);
            total += value(t, key, T0 + d * 86400, "1d", "n");
            halves += value(t, key, T0 + d * 86400, "1h", "w.x");
        }
    for (d = 0; d < 2; d++)
        system += value(t, "__system__key__", T0 + d * 86400, "1d", "count");
    assert_true(total == (double)THREADS * per_thread);
    assert_true(halves == 0.5 * THREADS * per_thread);
    assert_true(system == (double)THREADS * per_thread);
    close_ok(t);
    trifle_payload_free(p);
}

/* ---------------------------------------------------------------------------------------------
 * Order across threads: an assert and a track of the same bucket, one after the other in two
 * threads (the second starts when the first returned), compose in that order */

typedef struct pair {
    trifle *t;
    const trifle_payload *set, *add;
    int rounds;
    atomic_int turn; /* 2k: the first call of round k may run; 2k+1: the second */
    int set_first, failures;
} pair;

/* One side of a pair (0: the first call of each round, 1: the second). */
typedef struct side {
    pair *q;
    int second;
} side;

static void *pair_side(void *v)
{
    const side *sd = v;
    pair *q = sd->q;
    trifle_error err = TRIFLE_ERROR_INIT;
    int r;

    for (r = 0; r < q->rounds; r++) {
        int64_t at = T0 + (int64_t)r * 3600;
        while (atomic_load(&q->turn) != 2 * r + sd->second)
            ;
        if ((q->set_first != sd->second ? trifle_assert(q->t, "ordered", at, q->set, 0, &err)
                                        : trifle_track(q->t, "ordered", at, q->add, 0, &err)) != 0)
            q->failures++;
        atomic_store(&q->turn, 2 * r + sd->second + 1);
    }
    return NULL;
}

static void ordered(int set_first)
{
    trifle *t = open_buffered("false", "0"); /* nothing flushes between the two calls */
    trifle_payload *set = test_payload("{\"g\":100}"), *add = test_payload("{\"g\":1}");
    trifle_error err = TRIFLE_ERROR_INIT;
    pair q;
    side first = {&q, 0}, second = {&q, 1};
    pthread_t a, b;
    int r;

    q.t = t;
    q.set = set;
    q.add = add;
    q.rounds = 200;
    atomic_init(&q.turn, 0);
    q.set_first = set_first;
    q.failures = 0;
    /* both threads have written before (so each has its shard) */
    assert_int_equal(pthread_create(&a, NULL, pair_side, &first), 0);
    assert_int_equal(pthread_create(&b, NULL, pair_side, &second), 0);
    assert_int_equal(pthread_join(a, NULL), 0);
    assert_int_equal(pthread_join(b, NULL), 0);
    assert_int_equal(q.failures, 0);
    assert_int_equal(trifle_flush(t, &err), 0);
    for (r = 0; r < q.rounds; r++) {
        double g = value(t, "ordered", T0 + (int64_t)r * 3600, "1h", "g");
        /* set then add: SET(100)+ADD(1) = 101; add then set: SET(100) */
        if (g != (set_first ? 101.0 : 100.0))
            fail_msg("round %d: g = %g (set %s)", r, g, set_first ? "first" : "second");
    }
    close_ok(t);
    trifle_payload_free(set);
    trifle_payload_free(add);
}

/* ordered() with the assert first (state "assert") or the track first. */
static void test_ordered(void **state)
{
    ordered(strcmp(*state, "assert") == 0);
}

/* ---------------------------------------------------------------------------------------------
 * The journal under threads: calls appended by several threads while the flush thread appends
 * QUARANTINE records (a write the store rejected) — every total exact afterwards */

static void test_journal_with_threads_and_quarantine(void **state)
{
    char dir[64], url[96], db[64];
    trifle *t;
    trifle_payload *p = test_payload("{\"n\":1}");
    writer w[4];
    double total = 0;
    int k;

    (void)state;
    assert_int_equal(test_mkdtemp(dir, sizeof(dir), "threads"), 0);
    (void)snprintf(db, sizeof(db), "threads%d", ++db_counter);
    (void)snprintf(url, sizeof(url), "fake:%s", db);
    t = open_fake(url, (const char *const[]){"granularities", "1h", "buffer.duration_ms", "1",
                                             "buffer.retry_initial_ms", "1", "buffer.retry_max_ms",
                                             "5", "buffer.journal", dir, "buffer.journal_sync",
                                             "none", NULL});
    /* the next marked writes are refused (EDATA on their first item): quarantine records */
    assert_int_equal(fake_control(db, "fail_code", TRIFLE_EDATA), 0);
    assert_int_equal(fake_control(db, "fail_item", 0), 0);
    assert_int_equal(fake_control(db, "fail_count", 3), 0);
    assert_int_equal(fake_control(db, "fail_write_marked", 1), 0);
    run_writers(&(const plan){"jq.k", 4, 1, 1}, w, 4, t, p, 20000);
    close_ok(t); /* the quarantine is retried at close */
    /* read back through a fresh handle on the same fake store */
    t = open_fake(url,
                  (const char *const[]){"granularities", "1h", "buffer.enabled", "false", NULL});
    for (k = 0; k < 4; k++) {
        char key[16];
        (void)snprintf(key, sizeof(key), "jq.k%d", k);
        total += value(t, key, T0, "1h", "n");
    }
    assert_true(total == 4.0 * 20000);
    assert_true(value(t, "__system__key__", T0, "1h", "count") == 4.0 * 20000);
    close_ok(t);
    test_rm_rf(dir);
    trifle_payload_free(p);
}

/* ---------------------------------------------------------------------------------------------
 * buffer.size counts the calls of every shard: a thread sums the shards' counters only at
 * checkpoints (accepted() in core/buffer/buffer.c), yet a flush starts within 64 calls of the
 * size, whichever threads made the calls */

typedef struct sizer {
    trifle *t;
    const trifle_payload *p;
    const char *key;
    long n; /* calls to make; with stop_at_flush, at most */
    int stop_at_flush;
    long made;        /* calls made (up to the one that flushed) */
    uint64_t flushes; /* the buffer's flush count after the last call */
} sizer;

static void *track_until(void *v)
{
    sizer *s = v;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_buffer_counters bc = TRIFLE_BUFFER_COUNTERS_INIT;
    uint64_t before;

    if (trifle_buffer_stats(s->t, &bc) != 0)
        return NULL;
    before = bc.flushes;
    for (s->made = 0; s->made < s->n;) {
        if (trifle_track(s->t, s->key, T0, s->p, 0, &err) != 0)
            return NULL;
        s->made++;
        if (trifle_buffer_stats(s->t, &bc) != 0)
            return NULL;
        s->flushes = bc.flushes;
        if (s->stop_at_flush && bc.flushes > before)
            break;
    }
    return NULL;
}

static void run_sizer(sizer *s)
{
    pthread_t tid;

    /* a new thread each time: threads take shard slots in turn, so each run has its own shard */
    assert_int_equal(pthread_create(&tid, NULL, track_until, s), 0);
    assert_int_equal(pthread_join(tid, NULL), 0);
}

/* Two runs on new shards: @p first calls (no flush yet), then calls until the buffer flushes.
 * With @p pending calls before them, the flush must come once all reach buffer.size (4000),
 * within the last gap of 64. */
static void flush_after(trifle *t, const trifle_payload *p, const char *key, long pending,
                        long first)
{
    sizer a = {t, p, key, first, 0, 0, 0}, c = {t, p, key, 4000, 1, 0, 0};
    trifle_buffer_counters bc = TRIFLE_BUFFER_COUNTERS_INIT;
    uint64_t flushes;

    assert_int_equal(trifle_buffer_stats(t, &bc), 0);
    flushes = bc.flushes;
    run_sizer(&a);
    assert_int_equal(a.flushes, flushes);
    run_sizer(&c);
    assert_int_equal(c.flushes, flushes + 1);
    pending += first + c.made;
    assert_true(pending >= 4000 && pending <= 4000 + 64);
    assert_true(value(t, key, T0, "1h", "n") == (double)pending);
}

static void test_size_counts_every_shard(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_payload *p = NULL;
    char url[64];
    sizer a;
    trifle *t;

    (void)state;
    (void)snprintf(url, sizeof(url), "fake:size%d", ++db_counter);
    /* no flush thread: the call that finds the size reached flushes, inside the call */
    t = open_fake(url,
                  (const char *const[]){"granularities", "1h", "buffer.async", "false",
                                        "buffer.duration_ms", "0", "buffer.size", "4000", NULL});
    assert_int_equal(trifle_payload_parse(&p, "{\"n\":1}", 7, &err), 0);
    /* a shard alone below the size first: its checkpoint is set while it is alone, and the two
     * shards after it must still count its calls */
    a = (sizer){t, p, "size::one", 1500, 0, 0, 0};
    run_sizer(&a);
    flush_after(t, p, "size::one", 1500, 2000);
    /* and a shard that wrote most of the size before the other one came */
    flush_after(t, p, "size::two", 0, 3000);
    close_ok(t);
    trifle_payload_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_exact_totals),
        UNIT_TEST_WITH(test_assert_then_track, test_ordered, "assert"),
        UNIT_TEST_WITH(test_track_then_assert, test_ordered, "track"),
        cmocka_unit_test(test_journal_with_threads_and_quarantine),
        cmocka_unit_test(test_size_counts_every_shard),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
