/* The stats handle against the in-memory fake driver: what reaches the driver for each operation
 * (items, batches, identifiers, system counts), key validation, reads, pings and the lifecycle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../fake_driver.h"
#include "trifle/trifle.h"
#include "unit_helpers.h"

#define T0 1736937465 /* 2025-01-15T10:37:45Z */
#define H0 1736935200 /* its 1h bucket */
#define D0 1736899200 /* its 1d bucket */

static int db_counter;

typedef struct fixture {
    char db[32];
    trifle *t;
    trifle_payload *n1; /* {"n":1} */
} fixture;

/* A configuration on @p url with granularities 1h and 1d, unbuffered, and then @p opts. */
static trifle_config *new_config(const char *url, const char *const *opts)
{
    /* these tests observe each operation at the driver: unbuffered (test_buffer covers the rest) */
    trifle_config *cfg = test_config(
        url, (const char *const[]){"granularities", "1h,1d", "buffer.enabled", "false", NULL});

    test_config_set(cfg, opts);
    return cfg;
}

static trifle *open_handle(const char *db, const char *const *opts)
{
    trifle_config *cfg;
    trifle *t = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    char url[128];

    (void)snprintf(url, sizeof(url), "fake:%s", db);
    cfg = new_config(url, opts);
    if (trifle_open(&t, cfg, &err) != 0)
        fail_msg("open: %s", err.message);
    trifle_config_free(cfg);
    return t;
}

static int setup(void **state)
{
    static fixture f;
    trifle_error err = TRIFLE_ERROR_INIT;

    assert_int_equal(trifle_driver_dir_add(TRIFLE_TEST_PLUGIN_DIR, &err), 0);
    (void)snprintf(f.db, sizeof(f.db), "handle%d", ++db_counter);
    f.t = open_handle(f.db, NULL);
    f.n1 = test_payload("{\"n\":1}");
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    trifle_free(f->t);
    trifle_payload_free(f->n1);
    return 0;
}

static double counter(const fixture *f, const char *name)
{
    return fake_counter(f->db, name);
}

/* values() of one bucket, as JSON text of its row */
static void expect_row(trifle *t, const char *key, int64_t at, const char *g, const char *json)
{
    trifle_series *s = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    char *row = NULL;

    if (trifle_values(t, &s, key, at, at, g, 0, &err) != 0)
        fail_msg("values: %s", err.message);
    assert_int_equal(trifle_series_len(s), 1);
    assert_int_equal(trifle_series_row_json(s, 0, &row, TRIFLE_JSON_COMPACT, &err), 0);
    assert_string_equal(row, json);
    trifle_mem_free(row);
    trifle_series_free(s);
}

/* trifle_track() of the payload @p json with @p flags succeeds. */
static void track_ok(trifle *t, const char *key, int64_t at, const char *json, int flags)
{
    trifle_payload *p = test_payload(json);
    trifle_error err = TRIFLE_ERROR_INIT;

    if (trifle_track(t, key, at, p, flags, &err) != 0)
        fail_msg("track %s %s: %s", key, json, err.message);
    trifle_payload_free(p);
}

static void test_track_is_one_inc_batch(void **state)
{
    static const char json[] = "{\"count\":1,\"meta\":{\"duration\":2.5}}";
    fixture *f = *state;

    track_ok(f->t, "event::logs", T0, json, 0);
    /* one transaction: 2 data items + 2 system items (1h, 1d) */
    assert_true(counter(f, "inc.calls") == 1);
    assert_true(counter(f, "inc.items") == 4);
    assert_true(counter(f, "inc.leaves") == 2 * 2 + 2 * 2);
    assert_true(counter(f, "set.calls") == 0);
    expect_row(f->t, "event::logs", T0, "1h", "{\"count\":1,\"meta\":{\"duration\":2.5}}");
    expect_row(f->t, "event::logs", T0, "1d", "{\"count\":1,\"meta\":{\"duration\":2.5}}");
    expect_row(f->t, "__system__key__", T0, "1h", "{\"count\":1,\"keys\":{\"event::logs\":1}}");
    track_ok(f->t, "event::logs", T0 + 60, json, 0);
    track_ok(f->t, "other", T0, json, TRIFLE_UNTRACKED);
    expect_row(f->t, "event::logs", T0, "1h", "{\"count\":2,\"meta\":{\"duration\":5}}");
    expect_row(f->t, "__system__key__", T0, "1d",
               "{\"count\":3,\"keys\":{\"__untracked__\":1,\"event::logs\":2}}");
}

typedef struct seen {
    double value[2];
} seen;

static int seen_leaf(size_t index, const char *path, double value, void *payload)
{
    seen *s = payload;

    (void)path;
    if (index < 2)
        s->value[index] += value;
    return 0;
}

static void test_identifiers_reach_the_driver(void **state)
{
    fixture *f = *state;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *probe = NULL;
    trifle_bucket b[2];
    seen got = {{0, 0}};
    char url[96];

    track_ok(f->t, "event", T0, "{\"n\":7}", 0);
    (void)snprintf(url, sizeof(url), "fake:%s?fake_probe=1", f->db);
    assert_int_equal(trifle_storage_open(&probe, url, NULL, &err), 0);
    /* the stored identifiers are the SPEC §3.2 full-mode strings */
    memset(b, 0, sizeof(b));
    b[0].id = "event::1h::1736935200";
    b[0].key = "event";
    b[0].granularity = "1h";
    b[0].at = H0;
    b[1].id = "__system__key__::1d::1736899200";
    b[1].key = "__system__key__";
    b[1].granularity = "1d";
    b[1].at = D0;
    assert_int_equal(trifle_storage_get(probe, b, 2, seen_leaf, &got, &err), 0);
    assert_true(got.value[0] == 7);     /* n */
    assert_true(got.value[1] == 1 + 1); /* count + keys.event */
    trifle_storage_close(probe);
}

static void test_assert_is_set_then_inc(void **state)
{
    fixture *f = *state;
    trifle_payload *set = test_payload("{\"a\":2}");
    trifle_error err = TRIFLE_ERROR_INIT;

    track_ok(f->t, "k", T0, "{\"a\":5,\"b\":1}", 0);
    assert_int_equal(trifle_assert(f->t, "k", T0, set, 0, &err), 0);
    assert_true(counter(f, "set.calls") == 1);
    assert_true(counter(f, "set.items") == 2);   /* data items only */
    assert_true(counter(f, "inc.calls") == 2);   /* the track, then the assert's system items */
    assert_true(counter(f, "inc.batch.1") == 2); /* system items of 1h and 1d */
    expect_row(f->t, "k", T0, "1h", "{\"a\":2,\"b\":1}");
    expect_row(f->t, "__system__key__", T0, "1h", "{\"count\":2,\"keys\":{\"k\":2}}");
    trifle_payload_free(set);
}

static void test_empty_values_write_nothing(void **state)
{
    fixture *f = *state;
    trifle_payload *p = test_payload("{\"a\":{}}");
    trifle_error err = TRIFLE_ERROR_INIT;

    assert_int_equal(trifle_track(f->t, "k", T0, p, 0, &err), 0);
    assert_int_equal(trifle_assert(f->t, "k", T0, p, 0, &err), 0);
    assert_true(counter(f, "inc.calls") == 0);
    assert_true(counter(f, "set.calls") == 0);
    trifle_payload_free(p);
}

static void expect_key_error(trifle *t, const char *key, const char *message)
{
    trifle_payload *p = test_payload("{\"n\":1}");
    trifle_error err = TRIFLE_ERROR_INIT;

    assert_int_equal(trifle_track(t, key, T0, p, 0, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, message);
    trifle_error_clear(&err);
    assert_int_equal(trifle_assert(t, key, T0, p, 0, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, message);
    trifle_error_clear(&err);
    assert_int_equal(trifle_beam(t, key, T0, p, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, message);
    trifle_payload_free(p);
}

static void test_key_validation(void **state)
{
    fixture *f = *state;
    char long_key[202];
    trifle_series *s = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;

    memset(long_key, 'k', 201);
    long_key[201] = '\0';
    expect_key_error(f->t, "", "invalid metric key");
    expect_key_error(f->t, long_key, "invalid metric key");
    expect_key_error(f->t, "a..b", "invalid metric key");
    expect_key_error(f->t, ".a", "invalid metric key");
    expect_key_error(f->t, "a.", "invalid metric key");
    expect_key_error(f->t, "$x", "invalid metric key");
    expect_key_error(f->t, "a.$x", "invalid metric key");
    expect_key_error(f->t, "bad\xC3(utf8", "invalid metric key");
    expect_key_error(f->t, "__system__key__", "reserved key: __system__key__");
    expect_key_error(f->t, "__untracked__", "reserved key: __untracked__");
    long_key[200] = '\0'; /* 200 bytes is the limit, inclusive */
    assert_int_equal(trifle_track(f->t, long_key, T0, f->n1, 0, &err), 0);
    assert_int_equal(trifle_track(f->t, "a$b.c::d", T0, f->n1, 0, &err), 0);
    assert_true(counter(f, "inc.calls") == 2); /* nothing else reached the driver */
    /* reading the system key is allowed */
    assert_int_equal(trifle_values(f->t, &s, "__system__key__", T0, T0, "1h", 0, &err), 0);
    trifle_series_free(s);
}

static void test_time_range(void **state)
{
    fixture *f = *state;
    trifle_error err = TRIFLE_ERROR_INIT;

    assert_int_equal(trifle_track(f->t, "k", -2208988801LL, f->n1, 0, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "time out of range");
    assert_int_equal(trifle_track(f->t, "k", 253402300800LL, f->n1, 0, &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_beam(f->t, "k", 253402300800LL, f->n1, &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_track(f->t, "k", -2208988800LL, f->n1, 0, &err), 0);
}

static void test_values_timeline_and_blanks(void **state)
{
    fixture *f = *state;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_series *s = NULL;
    double v = 0;
    char *json = NULL;

    assert_int_equal(trifle_track(f->t, "k", H0 + 3600, f->n1, 0, &err), 0);
    assert_int_equal(trifle_values(f->t, &s, "k", H0, H0 + 3 * 3600, "1h", 0, &err), 0);
    assert_int_equal(trifle_series_len(s), 4);
    assert_int_equal(trifle_series_at(s, 0), H0);
    assert_int_equal(trifle_series_at(s, 3), H0 + 3 * 3600);
    assert_int_equal(trifle_series_value(s, 0, "n", &v), TRIFLE_ENOTFOUND);
    assert_int_equal(trifle_series_value(s, 1, "n", &v), 0);
    assert_true(v == 1);
    assert_int_equal(trifle_series_to_json(s, NULL, &json, TRIFLE_JSON_COMPACT, &err), 0);
    assert_string_equal(json, "{\"at\":[\"2025-01-15T10:00:00Z\",\"2025-01-15T11:00:00Z\","
                              "\"2025-01-15T12:00:00Z\",\"2025-01-15T13:00:00Z\"],"
                              "\"values\":[{},{\"n\":1},{},{}]}");
    trifle_mem_free(json);
    trifle_series_free(s);
    /* one driver get for the whole timeline */
    assert_true(counter(f, "get.calls") == 1);
    assert_true(counter(f, "get.items") == 4);
    assert_int_equal(trifle_values(f->t, &s, "k", H0, H0 + 3 * 3600, "1h", 1, &err), 0);
    assert_int_equal(trifle_series_len(s), 1);
    assert_int_equal(trifle_series_at(s, 0), H0 + 3600);
    trifle_series_free(s);
    /* from > to after flooring: empty, no storage call */
    assert_int_equal(trifle_values(f->t, &s, "k", H0 + 3600, H0, "1h", 0, &err), 0);
    assert_int_equal(trifle_series_len(s), 0);
    trifle_series_free(s);
    assert_true(counter(f, "get.calls") == 2);
    /* any valid granularity, configured or not */
    assert_int_equal(trifle_values(f->t, &s, "k", H0, H0 + 3600, "30m", 0, &err), 0);
    assert_int_equal(trifle_series_len(s), 3);
    trifle_series_free(s);
}

static void test_values_errors(void **state)
{
    fixture *f = *state;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_series *s = NULL;
    trifle *t;
    static const char *const opts[] = {"max_points", "10", NULL};
    char db[64];

    assert_int_equal(trifle_values(f->t, &s, "k", H0, H0, "5x", 0, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "invalid granularity: 5x");
    assert_null(s);
    (void)snprintf(db, sizeof(db), "%s_mp", f->db);
    t = open_handle(db, opts);
    assert_int_equal(trifle_values(t, &s, "k", H0, H0 + 10 * 3600, "1h", 0, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "timeline too long: more than 10 points");
    assert_true(fake_counter(db, "get.calls") == 0); /* refused before touching storage */
    assert_int_equal(trifle_values(t, &s, "k", H0, H0 + 9 * 3600, "1h", 0, &err), 0);
    assert_int_equal(trifle_series_len(s), 10);
    trifle_series_free(s);
    trifle_free(t);
}

static void test_system_tracking_off_and_url_overrides(void **state)
{
    fixture *f = *state;
    static const char *const opts[] = {"system_tracking", "false", "joined", "partial", NULL};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_config *cfg;
    trifle *t;
    char db[64], url[128];

    (void)snprintf(db, sizeof(db), "%s_st", f->db);
    t = open_handle(db, opts);
    assert_string_equal(trifle_config_get(trifle_get_config(t), "joined"), "partial");
    assert_int_equal(trifle_track(t, "k", T0, f->n1, 0, &err), 0);
    assert_true(fake_counter(db, "inc.items") == 2); /* data only */
    trifle_free(t);

    /* URL parameter > configuration (ERRATA I8) */
    (void)snprintf(url, sizeof(url), "fake:%s_url?joined=separated&system_tracking=on", f->db);
    cfg = new_config(url, opts);
    assert_int_equal(trifle_open(&t, cfg, &err), 0);
    assert_string_equal(trifle_config_get(trifle_get_config(t), "joined"), "separated");
    assert_string_equal(trifle_config_get(trifle_get_config(t), "system_tracking"), "true");
    {
        char d[64];
        assert_true(trifle_describe(t, d, sizeof(d)) > 0);
        assert_string_equal(d, "FakeDriver(S)");
    }
    /* separated mode: every granularity has the same id string; nothing may merge them */
    assert_int_equal(trifle_track(t, "k", T0, f->n1, 0, &err), 0);
    (void)snprintf(db, sizeof(db), "%s_url", f->db);
    assert_true(fake_counter(db, "inc.items") == 4);
    expect_row(t, "k", T0, "1h", "{\"n\":1}");
    expect_row(t, "k", T0, "1d", "{\"n\":1}");
    trifle_free(t);
    trifle_config_free(cfg);
}

static void test_beam_and_scan(void **state)
{
    fixture *f = *state;
    trifle_payload *p = test_payload("{\"cpu\":0.5,\"disk\":{\"free\":10}}");
    trifle_payload *q = test_payload("{\"cpu\":1}");
    trifle_payload *got = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    int found = -1;
    int64_t at = 0;
    char *json = NULL;

    assert_int_equal(trifle_scan(f->t, "host", &found, &at, &got, &err), 0);
    assert_int_equal(found, 0);
    assert_int_equal(trifle_payload_count(got), 0);
    trifle_payload_free(got);
    assert_int_equal(trifle_beam(f->t, "host", T0, p, &err), 0);
    assert_int_equal(trifle_scan(f->t, "host", &found, &at, &got, &err), 0);
    assert_int_equal(found, 1);
    assert_int_equal(at, T0); /* not floored */
    assert_int_equal(trifle_payload_to_json(got, &json, TRIFLE_JSON_COMPACT, &err), 0);
    assert_string_equal(json, "{\"cpu\":0.5,\"disk\":{\"free\":10}}");
    trifle_mem_free(json);
    trifle_payload_free(got);
    /* a new ping replaces the old one completely */
    assert_int_equal(trifle_beam(f->t, "host", T0 + 5, q, &err), 0);
    assert_int_equal(trifle_scan(f->t, "host", &found, &at, &got, &err), 0);
    assert_int_equal(at, T0 + 5);
    assert_int_equal(trifle_payload_to_json(got, &json, TRIFLE_JSON_COMPACT, &err), 0);
    assert_string_equal(json, "{\"cpu\":1}");
    trifle_mem_free(json);
    trifle_payload_free(got);
    trifle_payload_free(p);
    trifle_payload_free(q);
}

static void test_driver_errors_surface(void **state)
{
    fixture *f = *state;
    trifle_error err = TRIFLE_ERROR_INIT;

    assert_int_equal(fake_control(f->db, "fail_inc", 1), 0);
    assert_int_equal(trifle_track(f->t, "k", T0, f->n1, 0, &err), TRIFLE_ECONN);
    assert_string_equal(err.driver, "fake");
    assert_int_equal(trifle_track(f->t, "k", T0, f->n1, 0, &err), 0);
    expect_row(f->t, "k", T0, "1h", "{\"n\":1}");
}

static void test_closed_handle(void **state)
{
    fixture *f = *state;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_series *s = NULL;
    trifle_payload *got = NULL;
    int found;

    assert_int_equal(trifle_close(f->t, &err), 0);
    assert_true(counter(f, "close.calls") == 1);
    assert_int_equal(trifle_track(f->t, "k", T0, f->n1, 0, &err), TRIFLE_ECLOSED);
    assert_string_equal(err.message, "buffer is closed");
    assert_int_equal(trifle_values(f->t, &s, "k", T0, T0, "1h", 0, &err), TRIFLE_ECLOSED);
    assert_int_equal(trifle_scan(f->t, "k", &found, NULL, &got, &err), TRIFLE_ECLOSED);
    assert_int_equal(trifle_flush(f->t, &err), TRIFLE_ECLOSED);
    assert_int_equal(trifle_close(f->t, &err), TRIFLE_ECLOSED);
}

static void test_open_errors(void **state)
{
    trifle_config *cfg = NULL;
    trifle *t = (trifle *)1;
    trifle_error err = TRIFLE_ERROR_INIT;

    (void)state;
    assert_int_equal(trifle_config_new(&cfg, &err), 0);
    assert_int_equal(trifle_open(&t, cfg, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "driver required");
    assert_null(t);
    assert_int_equal(trifle_config_set(cfg, "driver", "nosuch://x", &err), 0);
    assert_int_equal(trifle_open(&t, cfg, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "unknown driver: nosuch");
    assert_int_equal(trifle_config_set(cfg, "driver", "fake:x?fail_open=1", &err), 0);
    assert_int_equal(trifle_open(&t, cfg, &err), TRIFLE_ECONN);
    assert_null(t);
    trifle_config_free(cfg);
}

/* A test on the fixture: a fresh fake database and its handle. */
#define WITH_HANDLE(test) cmocka_unit_test_setup_teardown(test, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        WITH_HANDLE(test_track_is_one_inc_batch),
        WITH_HANDLE(test_identifiers_reach_the_driver),
        WITH_HANDLE(test_assert_is_set_then_inc),
        WITH_HANDLE(test_empty_values_write_nothing),
        WITH_HANDLE(test_key_validation),
        WITH_HANDLE(test_time_range),
        WITH_HANDLE(test_values_timeline_and_blanks),
        WITH_HANDLE(test_values_errors),
        WITH_HANDLE(test_system_tracking_off_and_url_overrides),
        WITH_HANDLE(test_beam_and_scan),
        WITH_HANDLE(test_driver_errors_surface),
        WITH_HANDLE(test_closed_handle),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests_name("trifle", tests, NULL, NULL);
}
