/* The write buffer (SPEC §6) against the fake driver: what reaches the driver and when, merge
 * semantics, failures that must not lose or double anything, the memory bound, close, FIFO mode,
 * threads, and the allocation-free hot path. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../fake_driver.h"
#include "oom_alloc.h"
#include "trifle/trifle.h"
#include "unit_helpers.h"

#define T0 1736937465 /* 2025-01-15T10:37:45Z */
#define H0 1736935200 /* its 1h bucket */

static int db_counter;
static char db[64];

/* Open a buffered handle on a fresh fake database; opts are name/value pairs. */
static trifle *open_buffered(const char *const *opts)
{
    trifle_config *cfg;
    trifle *t = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    char url[128];

    assert_int_equal(trifle_driver_dir_add(TRIFLE_TEST_PLUGIN_DIR, &err), 0);
    (void)snprintf(db, sizeof(db), "buffer%d", ++db_counter);
    (void)snprintf(url, sizeof(url), "fake:%s", db);
    cfg = test_config(url, (const char *const[]){"granularities", "1h,1d", NULL});
    test_config_set(cfg, test_buffer_manual); /* the defaults of these tests */
    test_config_set(cfg, opts);
    if (trifle_open(&t, cfg, &err) != 0)
        fail_msg("open: %s", err.message);
    trifle_config_free(cfg);
    return t;
}

static double counter(const char *name)
{
    return fake_counter(db, name);
}

/* The row of key's bucket at `at` as JSON. */
static char *row(trifle *t, const char *key, int64_t at, const char *g)
{
    trifle_series *s = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    char *json = NULL;

    if (trifle_values(t, &s, key, at, at, g, 0, &err) != 0)
        fail_msg("values: %s", err.message);
    assert_int_equal(trifle_series_row_json(s, 0, &json, TRIFLE_JSON_COMPACT, &err), 0);
    trifle_series_free(s);
    return json;
}

static void expect_row(trifle *t, const char *key, int64_t at, const char *g, const char *expected)
{
    char *json = row(t, key, at, g);

    assert_string_equal(json, expected);
    trifle_mem_free(json);
}

static void track(trifle *t, const char *key, int64_t at, const trifle_payload *p)
{
    trifle_error err = TRIFLE_ERROR_INIT;

    if (trifle_track(t, key, at, p, 0, &err) != 0)
        fail_msg("track: %s", err.message);
}

static void flush_ok(trifle *t)
{
    trifle_error err = TRIFLE_ERROR_INIT;

    if (trifle_flush(t, &err) != 0)
        fail_msg("flush: %s", err.message);
}

static void assert_ok(trifle *t, const char *key, int64_t at, const trifle_payload *p)
{
    trifle_error err = TRIFLE_ERROR_INIT;

    if (trifle_assert(t, key, at, p, 0, &err) != 0)
        fail_msg("assert: %s", err.message);
}

/* The next inc call fails; the flush that makes it returns `code`. */
static void flush_fails(trifle *t, int code)
{
    trifle_error err = TRIFLE_ERROR_INIT;

    assert_int_equal(fake_control(db, "fail_inc", 1), 0);
    assert_int_equal(trifle_flush(t, &err), code);
}

/* The payload {"n":1}, made once for the whole program. */
static trifle_payload *n1;

static int make_n1(void **state)
{
    (void)state;
    n1 = test_payload("{\"n\":1}");
    return 0;
}

static int free_n1(void **state)
{
    (void)state;
    trifle_payload_free(n1);
    return 0;
}

/* The common fixture: a handle with the defaults above and the options the test's prestate
 * names (NULL: none). */
static int fx_open(void **state)
{
    *state = open_buffered(*state);
    return 0;
}

static int fx_close(void **state)
{
    trifle_free(*state);
    return 0;
}

/* Wait (bounded: 500 naps of @p nap_ms) until the driver saw an inc call; the naps taken. */
/* Poll every nap_ms, for up to 10 s, until the fake store has seen an inc call: on a loaded
 * machine the flush thread may wait long for a core (a 1 s bound failed once in about 30 runs
 * of the suite under -j2). Returns the polls made. */
static int wait_for_inc(long nap_ms)
{
    int i, polls = (int)(10000 / nap_ms);

    for (i = 0; i < polls && counter("inc.calls") < 1; i++) {
        struct timespec ts = {0, nap_ms * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return i;
}

static void test_merges_into_one_flush(void **state)
{
    trifle *t = *state;
    trifle_payload *p = test_payload("{\"count\":1,\"m\":{\"d\":0.5}}");
    trifle_buffer_counters c = TRIFLE_BUFFER_COUNTERS_INIT;

    track(t, "event::logs", T0, p);
    track(t, "event::logs", T0 + 60, p);
    track(t, "event::logs", T0 + 120, p);
    assert_true(counter("inc.calls") == 0); /* nothing written yet */
    assert_int_equal(trifle_buffer_stats(t, &c), 0);
    assert_int_equal(c.operations, 3);
    assert_int_equal(c.pending_operations, 3);
    assert_int_equal(c.pending_entries, 4);
    flush_ok(t);
    assert_true(counter("inc.calls") == 1);
    assert_true(counter("inc.items") == 4);
    /* the Go [T] vector: three buffered tracks in one bucket count 3 (SPEC §3.4) */
    expect_row(t, "__system__key__", T0, "1h", "{\"count\":3,\"keys\":{\"event::logs\":3}}");
    expect_row(t, "event::logs", T0, "1h", "{\"count\":3,\"m\":{\"d\":1.5}}");
    assert_int_equal(trifle_buffer_stats(t, &c), 0);
    assert_int_equal(c.pending_entries, 0);
    assert_int_equal(c.flushes, 1);
    trifle_payload_free(p);
}

/* struct_size (docs/architecture.md, "Structs that grow"): the library fills only what the
 * caller's version of the struct has, and refuses a struct that was not initialised. */
static void test_counters_struct_size(void **state)
{
    trifle *t = *state;
    trifle_payload *p = test_payload("{\"count\":1}");
    struct {
        trifle_buffer_counters known;
        uint64_t later; /* a member appended by a newer version of the header */
    } newer;
    trifle_buffer_counters c;

    track(t, "event::logs", T0, p);
    memset(&c, 0, sizeof(c));
    assert_int_equal(trifle_buffer_stats(t, &c), TRIFLE_EINVAL);
    c.struct_size = offsetof(trifle_buffer_counters, rejected_full);
    assert_int_equal(trifle_buffer_stats(t, &c), TRIFLE_EINVAL);
    memset(&newer, 0xa5, sizeof(newer));
    newer.known.struct_size = sizeof(newer);
    assert_int_equal(trifle_buffer_stats(t, &newer.known), 0);
    assert_int_equal(newer.known.struct_size, sizeof(newer));
    assert_int_equal(newer.known.operations, 1);
    assert_int_equal(newer.known.rejected_full, 0);
    assert_true(newer.later == UINT64_C(0xa5a5a5a5a5a5a5a5)); /* not ours: left alone */
    assert_int_equal(trifle_buffer_stats(t, NULL), TRIFLE_EINVAL);
    trifle_payload_free(p);
}

static void test_composition_in_call_order(void **state)
{
    trifle *t = *state;
    trifle_payload *one = test_payload("{\"a\":1,\"b\":1}");
    trifle_payload *five = test_payload("{\"a\":5}");
    trifle_payload *two = test_payload("{\"a\":2}");

    /* track then assert then track: a = 5 + 2 (SET(v)+ADD(b) = SET(v+b)); b = 1 */
    track(t, "k", T0, one);
    assert_ok(t, "k", T0, five);
    track(t, "k", T0, two);
    flush_ok(t);
    assert_true(counter("set.calls") == 1); /* SET leaves in one set call */
    assert_true(counter("inc.calls") == 1); /* ADD leaves (b, system items) in one inc call */
    expect_row(t, "k", T0, "1h", "{\"a\":7,\"b\":1}");
    /* an assert after increments replaces them */
    track(t, "k", T0, one);
    assert_ok(t, "k", T0, two);
    expect_row(t, "k", T0, "1h", "{\"a\":2,\"b\":2}");
    expect_row(t, "__system__key__", T0, "1d", "{\"count\":5,\"keys\":{\"k\":5}}");
    trifle_payload_free(one);
    trifle_payload_free(five);
    trifle_payload_free(two);
}

static const char *const opts_size_trigger_and_batches[] = {"buffer.size", "3",
                                                            "buffer.batch_items", "1", NULL};

static void test_size_trigger_and_batches(void **state)
{
    trifle *t = *state;

    track(t, "a", T0, n1);
    track(t, "b", T0, n1);
    assert_true(counter("inc.calls") == 0);
    track(t, "c", T0, n1); /* third operation: flush on the caller's thread (async = false) */
    /* 3 keys × 2 granularities + 2 system records, one record per call (batch_items = 1) */
    assert_true(counter("inc.calls") == 8);
    assert_true(counter("inc.items") == 8);
}

static const char *const opts_timer_flushes_in_background[] = {"buffer.async", "true",
                                                               "buffer.duration_ms", "20", NULL};

static void test_timer_flushes_in_background(void **state)
{
    trifle *t = *state;
    int i;

    track(t, "k", T0, n1);
    i = wait_for_inc(10); /* the flush thread's timer */
    if (counter("inc.calls") != 1)
        fail_msg("inc.calls = %g after %d polls", counter("inc.calls"), i);
}

static const char *const opts_read_your_writes[] = {"buffer.async", "true", "buffer.duration_ms",
                                                    "0", NULL};

static void test_read_your_writes(void **state)
{
    trifle *t = *state;

    track(t, "k", T0, n1);
    track(t, "k", T0, n1);
    expect_row(t, "k", T0, "1h", "{\"n\":2}"); /* values() flushed first */
    assert_true(counter("inc.calls") == 1);
}

/* A read while a flush is writing what the reader tracked waits for that flush: the records are
 * then neither pending in the shards (or the queue) nor stored yet. */
static void read_during_flush(const char *aggregate)
{
    /* two connections: the read does not queue behind the flush for one */
    const char *const opts[] = {"buffer.async",
                                "true",
                                "buffer.duration_ms",
                                "1",
                                "buffer.aggregate",
                                aggregate,
                                "connections",
                                "2",
                                NULL};
    trifle *t = open_buffered(opts);

    assert_int_equal(fake_control(db, "slow_inc_ms", 300), 0);
    track(t, "k", T0, n1);
    track(t, "k", T0, n1);
    (void)wait_for_inc(2); /* until the timer's flush is inside inc */
    assert_true(counter("inc.calls") >= 1);
    expect_row(t, "k", T0, "1h", "{\"n\":2}");
    trifle_free(t);
}

static void test_read_waits_for_flush_in_flight(void **state)
{
    (void)state;
    read_during_flush("false");
    read_during_flush("true");
}

static void test_failed_flush_keeps_everything(void **state)
{
    trifle *t = *state;
    trifle_buffer_counters c = TRIFLE_BUFFER_COUNTERS_INIT;

    track(t, "k", T0, n1);
    flush_fails(t, TRIFLE_ECONN);
    assert_int_equal(trifle_buffer_stats(t, &c), 0);
    assert_int_equal(c.flush_errors, 1);
    assert_int_equal(c.pending_entries, 4);
    /* newer writes compose behind the kept ones */
    track(t, "k", T0, n1);
    flush_ok(t);
    expect_row(t, "k", T0, "1h", "{\"n\":2}");
    expect_row(t, "__system__key__", T0, "1h", "{\"count\":2,\"keys\":{\"k\":2}}");
    assert_int_equal(trifle_buffer_stats(t, &c), 0);
    assert_int_equal(c.pending_entries, 0);
    assert_true(c.retries >= 1);
}

static void test_partially_applied_call_is_not_repeated(void **state)
{
    trifle *t = *state;

    track(t, "k", T0, n1);
    /* the next inc applies its first 2 of 4 items, then fails */
    assert_int_equal(fake_control(db, "fail_applied", 2), 0);
    flush_fails(t, TRIFLE_ECONN);
    flush_ok(t);
    assert_true(counter("inc.batch.1") == 2); /* only the two unapplied items were resent */
    expect_row(t, "k", T0, "1h", "{\"n\":1}");
    expect_row(t, "k", T0, "1d", "{\"n\":1}");
    expect_row(t, "__system__key__", T0, "1d", "{\"count\":1,\"keys\":{\"k\":1}}");
}

static void test_applied_set_is_not_repeated(void **state)
{
    trifle *t = *state;
    trifle_payload *add = test_payload("{\"a\":1}");
    trifle_payload *set = test_payload("{\"b\":9}");

    track(t, "k", T0, add);
    assert_ok(t, "k", T0, set);
    flush_fails(t, TRIFLE_ECONN); /* set went through, inc failed */
    assert_true(counter("set.calls") == 1);
    flush_ok(t);
    assert_true(counter("set.calls") == 1); /* the set is not repeated */
    expect_row(t, "k", T0, "1h", "{\"a\":1,\"b\":9}");
    trifle_payload_free(add);
    trifle_payload_free(set);
}

static const char *const opts_edata_quarantines_one_record[] = {"buffer.retry_max_ms", "600000",
                                                                NULL};

static void test_edata_quarantines_one_record(void **state)
{
    trifle *t = *state;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_buffer_counters c = TRIFLE_BUFFER_COUNTERS_INIT;

    track(t, "bad", T0, n1);
    track(t, "good", T0, n1);
    /* items are sorted: __system__key__::1d, __system__key__::1h, bad::1d, bad::1h, good::...;
     * the store rejects item 2 (bad::1d) because of stored data, after applying items 0 and 1 */
    assert_int_equal(fake_control(db, "fail_code", TRIFLE_EDATA), 0);
    assert_int_equal(fake_control(db, "fail_item", 2), 0);
    flush_fails(t, TRIFLE_EDATA);
    /* the rejected record waits in quarantine (retried alone after retry_max_ms); everything
     * else is written by the next flush */
    assert_int_equal(fake_control(db, "reset_stats", 1), 0);
    flush_ok(t);
    assert_true(counter("inc.items") == 3); /* bad::1h, good::1d, good::1h */
    assert_int_equal(trifle_buffer_stats(t, &c), 0);
    assert_int_equal(c.quarantined, 1);
    expect_row(t, "good", T0, "1h", "{\"n\":1}");
    expect_row(t, "good", T0, "1d", "{\"n\":1}");
    expect_row(t, "bad", T0, "1h", "{\"n\":1}");
    /* reads never wait for quarantined records (ERRATA I6), and close writes them */
    expect_row(t, "bad", T0, "1d", "{}");
    assert_int_equal(trifle_close(t, &err), 0);
}

static void test_outcome_unknown_retries(void **state)
{
    trifle *t = *state;
    trifle_buffer_counters c = TRIFLE_BUFFER_COUNTERS_INIT;

    track(t, "k", T0, n1);
    assert_int_equal(fake_control(db, "fail_unknown", 1), 0);
    flush_fails(t, TRIFLE_ECONN);
    flush_ok(t);
    assert_int_equal(trifle_buffer_stats(t, &c), 0);
    assert_int_equal(c.unknown_outcomes, 1);
    /* at-least-once: the lost reply's items were applied and are applied again */
    expect_row(t, "k", T0, "1h", "{\"n\":2}");
}

static void test_memory_bound(void **state)
{
    static const char *const err_opts[] = {"buffer.max_pending", "4",     "buffer.size", "4",
                                           "buffer.full_policy", "error", NULL};
    static const char *const block_opts[] = {"buffer.max_pending", "4", "buffer.size", "4", NULL};
    trifle *t = open_buffered(err_opts);
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_buffer_counters c = TRIFLE_BUFFER_COUNTERS_INIT;

    (void)state;
    track(t, "k", T0, n1);     /* 4 records: k and system, at 1h and 1d */
    track(t, "k", T0 + 1, n1); /* same records: fits */
    assert_int_equal(trifle_track(t, "other", T0, n1, 0, &err), TRIFLE_EBUSY);
    assert_string_equal(err.message, "buffer is full");
    assert_int_equal(trifle_buffer_stats(t, &c), 0);
    assert_int_equal(c.rejected_full, 1);
    assert_int_equal(c.operations, 2); /* the refused call left nothing behind */
    flush_ok(t);
    track(t, "other", T0, n1);
    trifle_free(t);

    /* block: with no flush thread the blocked caller flushes to make room (ERRATA minor 5) */
    t = open_buffered(block_opts);
    track(t, "k", T0, n1);
    track(t, "other", T0, n1);
    assert_int_equal(trifle_buffer_stats(t, &c), 0);
    assert_int_equal(c.blocked_waits, 1);
    expect_row(t, "k", T0, "1h", "{\"n\":1}");
    expect_row(t, "other", T0, "1h", "{\"n\":1}");
    trifle_free(t);
}

static void test_close_flushes_or_reports(void **state)
{
    trifle *t = open_buffered(NULL);
    trifle_error err = TRIFLE_ERROR_INIT;

    (void)state;
    track(t, "k", T0, n1);
    assert_int_equal(trifle_close(t, &err), 0);
    assert_true(counter("inc.calls") == 1);
    assert_int_equal(trifle_track(t, "k", T0, n1, 0, &err), TRIFLE_ECLOSED);
    trifle_free(t);

    /* storage down for good: close gives up after close_timeout_ms and says so */
    t = open_buffered(NULL);
    track(t, "k", T0, n1);
    assert_int_equal(fake_control(db, "fail_count", -1), 0);
    assert_int_equal(fake_control(db, "fail_inc", 1), 0);
    assert_int_equal(trifle_close(t, &err), TRIFLE_EDRIVER);
    assert_non_null(strstr(err.message, "4 buffered operations could not be written: "));
    trifle_free(t);
}

static const char *const opts_fifo_mode[] = {"buffer.aggregate", "false", NULL};

static void test_fifo_mode(void **state)
{
    trifle *t = *state;
    trifle_payload *s = test_payload("{\"n\":10}");

    track(t, "k", T0, n1);
    assert_ok(t, "k", T0, s);
    track(t, "k", T0, n1);
    flush_ok(t);
    /* every operation is its own batch, in order */
    assert_true(counter("inc.calls") == 3);
    assert_true(counter("set.calls") == 1);
    expect_row(t, "k", T0, "1h", "{\"n\":11}");
    expect_row(t, "__system__key__", T0, "1h", "{\"count\":3,\"keys\":{\"k\":3}}");
    trifle_payload_free(s);
}

typedef struct worker {
    trifle *t;
    const trifle_payload *p;
    int n;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    int i;

    for (i = 0; i < w->n; i++)
        if (trifle_track(w->t, "shared", T0 + (i % 60), w->p, 0, NULL) != 0)
            abort();
    return NULL;
}

static const char *const opts_threads_exact_totals[] = {
    "buffer.async", "true", "buffer.size", "256", "buffer.duration_ms", "5", NULL};

static void test_threads_exact_totals(void **state)
{
    trifle *t = *state;
    trifle_payload *p = test_payload("{\"n\":1,\"f\":{\"q\":0.25}}");
    pthread_t th[4];
    worker w = {t, p, 5000};
    int i;

    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, work, &w), 0);
    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    expect_row(t, "shared", T0, "1h", "{\"f\":{\"q\":5000},\"n\":20000}");
    expect_row(t, "__system__key__", T0, "1d", "{\"count\":20000,\"keys\":{\"shared\":20000}}");
    trifle_payload_free(p);
}

/* The steady-state hot path does not allocate (oom_alloc counts the calls; no thread runs). */
static void test_hot_path_does_not_allocate(void **state)
{
    trifle *t;
    trifle_payload *p = test_payload("{\"a\":1,\"b\":{\"c\":2,\"d\":3},\"e\":4}");
    long before;
    int i;

    (void)state;
    oom_begin(-1);
    t = open_buffered(NULL);
    track(t, "k", T0, p); /* warm up: records, slots, caches */
    before = oom_calls;
    for (i = 0; i < 10000; i++)
        track(t, "k", T0 + (i % 60), p);
    assert_int_equal(oom_calls - before, 0);
    trifle_free(t);
    oom_end();
    trifle_payload_free(p);
}

static void test_bucket_cache_boundaries(void **state)
{
    trifle *t = *state;

    track(t, "k", H0 + 3599, n1); /* last second of the hour */
    track(t, "k", H0 + 3600, n1); /* first second of the next */
    track(t, "k", H0, n1);        /* back into the first */
    expect_row(t, "k", H0, "1h", "{\"n\":2}");
    expect_row(t, "k", H0 + 3600, "1h", "{\"n\":1}");
    expect_row(t, "k", H0, "1d", "{\"n\":3}");
}

/* The hot path recognises the last call's key by its text, not by its address, and the system
 * record's cached keys.<key> slot by that key and the untracked flag. */
static void test_key_cache_compares_text(void **state)
{
    trifle *t = *state;
    trifle_payload *q = test_payload("{\"m\":1,\"n\":2}");
    trifle_error err = TRIFLE_ERROR_INIT;
    char key[8];
    int i;

    for (i = 0; i < 7; i++) { /* one buffer rewritten between calls: ka kb ka kb ka kb ka */
        (void)snprintf(key, sizeof(key), "k%c", i % 2 ? 'b' : 'a');
        track(t, key, T0 + i, n1);
        track(t, key, T0 + i, n1); /* the same again: every cache hits */
    }
    assert_int_equal(trifle_track(t, key, T0, n1, TRIFLE_UNTRACKED, &err), 0);
    track(t, key, T0, n1);
    assert_int_equal(trifle_track(t, key, T0, q, TRIFLE_UNTRACKED, &err), 0);
    key[1] = 'c'; /* same length, same address, another key */
    track(t, key, T0, q);
    expect_row(t, "ka", T0, "1h", "{\"m\":1,\"n\":12}");
    expect_row(t, "kb", T0, "1h", "{\"n\":6}");
    expect_row(t, "kc", T0, "1h", "{\"m\":1,\"n\":2}");
    expect_row(t, "__system__key__", T0, "1d",
               "{\"count\":18,\"keys\":{\"__untracked__\":2,\"ka\":9,\"kb\":6,\"kc\":1}}");
    trifle_payload_free(q);
}

/* Records cached by the hot path belong to the pending table they were found in: after a flush
 * swapped it, the same calls start new records (nothing is added to records already written). */
static void test_caches_follow_flushes(void **state)
{
    trifle *t = *state;
    trifle_payload *p = test_payload("{\"n\":1,\"x\":{\"y\":0.5}}");
    int round, i;

    for (round = 0; round < 3; round++) {
        for (i = 0; i < 100; i++)
            track(t, "k", T0 + i * 3600, p); /* a 1h bucket per call, a new day every 24 */
        flush_ok(t);
    }
    assert_true(counter("inc.calls") == 3);
    expect_row(t, "k", T0, "1h", "{\"n\":3,\"x\":{\"y\":1.5}}");
    expect_row(t, "k", T0 + 99 * 3600, "1h", "{\"n\":3,\"x\":{\"y\":1.5}}");
    expect_row(t, "__system__key__", T0 + 30 * 3600, "1d", "{\"count\":72,\"keys\":{\"k\":72}}");
    trifle_payload_free(p);
}

/* Buffered writes check the key in the buffer, once per change of key: every bad key is still
 * refused, before and after a good one, in both modes, and nothing of it is buffered. */
static void test_bad_keys_refused(void **state)
{
    static const char *const fifo[] = {"buffer.aggregate", "false", NULL};
    static const char *const bad[] = {"a..b", "", "$x", "a.$b", "__system__key__", "__untracked__"};
    trifle_buffer_counters c = TRIFLE_BUFFER_COUNTERS_INIT;
    int mode;
    size_t i;

    (void)state;
    for (mode = 0; mode < 2; mode++) {
        trifle *t = open_buffered(mode ? fifo : NULL);
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            trifle_error err = TRIFLE_ERROR_INIT;
            track(t, "good", T0, n1);
            assert_int_equal(trifle_track(t, bad[i], T0, n1, 0, &err), TRIFLE_EINVAL);
            assert_int_equal(trifle_assert(t, bad[i], T0, n1, 0, &err), TRIFLE_EINVAL);
        }
        {
            trifle_error err = TRIFLE_ERROR_INIT;
            assert_int_equal(trifle_track(t, NULL, T0, n1, 0, &err), TRIFLE_EINVAL);
            assert_string_equal(err.message, "invalid metric key");
        }
        assert_int_equal(trifle_buffer_stats(t, &c), 0);
        assert_int_equal(c.operations, sizeof(bad) / sizeof(bad[0]));
        expect_row(t, "good", T0, "1h", "{\"n\":6}");
        trifle_free(t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_merges_into_one_flush, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_counters_struct_size, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_composition_in_call_order, fx_open, fx_close),
        cmocka_unit_test_prestate_setup_teardown(test_size_trigger_and_batches, fx_open, fx_close,
                                                 (void *)opts_size_trigger_and_batches),
        cmocka_unit_test_prestate_setup_teardown(test_timer_flushes_in_background, fx_open,
                                                 fx_close,
                                                 (void *)opts_timer_flushes_in_background),
        cmocka_unit_test_prestate_setup_teardown(test_read_your_writes, fx_open, fx_close,
                                                 (void *)opts_read_your_writes),
        cmocka_unit_test(test_read_waits_for_flush_in_flight),
        cmocka_unit_test_setup_teardown(test_failed_flush_keeps_everything, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_partially_applied_call_is_not_repeated, fx_open,
                                        fx_close),
        cmocka_unit_test_setup_teardown(test_applied_set_is_not_repeated, fx_open, fx_close),
        cmocka_unit_test_prestate_setup_teardown(test_edata_quarantines_one_record, fx_open,
                                                 fx_close,
                                                 (void *)opts_edata_quarantines_one_record),
        cmocka_unit_test_setup_teardown(test_outcome_unknown_retries, fx_open, fx_close),
        cmocka_unit_test(test_memory_bound),
        cmocka_unit_test(test_close_flushes_or_reports),
        cmocka_unit_test_prestate_setup_teardown(test_fifo_mode, fx_open, fx_close,
                                                 (void *)opts_fifo_mode),
        cmocka_unit_test_prestate_setup_teardown(test_threads_exact_totals, fx_open, fx_close,
                                                 (void *)opts_threads_exact_totals),
        cmocka_unit_test(test_hot_path_does_not_allocate),
        cmocka_unit_test_setup_teardown(test_bucket_cache_boundaries, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_key_cache_compares_text, fx_open, fx_close),
        cmocka_unit_test_setup_teardown(test_caches_follow_flushes, fx_open, fx_close),
        cmocka_unit_test(test_bad_keys_refused),
    };
    return cmocka_run_group_tests_name("buffer", tests, make_n1, free_n1);
}
