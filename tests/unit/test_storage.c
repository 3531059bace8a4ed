/* The storage layer against the fake driver: URL → plugin → open, options and URL parameters,
 * identifiers, describe, the checked wrappers, get/scan grouping and summing through the sink,
 * error attribution and masking, fault injection results, and allocation failure. */
#include "storage_int.h"

#include <math.h>
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
#include "trifle/storage.h"

#define FAKE_SO TRIFLE_TEST_PLUGIN_DIR "/trifle_fake.so"

/* ---------------------------------------------------------------------------------------------
 * Helpers */

typedef struct got_leaf {
    size_t index;
    char path[48];
    double value;
} got_leaf;

typedef struct collector {
    got_leaf *leaves;
    size_t n, cap;
    int stop_after; /* return 7 from the callback after this many leaves (0 = never) */
} collector;

static int collect(size_t index, const char *path, double value, void *payload)
{
    collector *c = payload;

    if (c->n == c->cap) {
        c->cap = c->cap == 0 ? 64 : 2 * c->cap;
        c->leaves = realloc(c->leaves, c->cap * sizeof(*c->leaves));
        assert_non_null(c->leaves);
    }
    c->leaves[c->n].index = index;
    assert_true(strlen(path) < sizeof(c->leaves[c->n].path));
    memcpy(c->leaves[c->n].path, path, strlen(path) + 1);
    c->leaves[c->n].value = value;
    c->n++;
    return c->stop_after != 0 && c->n == (size_t)c->stop_after ? 7 : 0;
}

static void collector_reset(collector *c)
{
    free(c->leaves);
    memset(c, 0, sizeof(*c));
}

static void expect_leaf(const collector *c, size_t i, size_t index, const char *path, double v)
{
    assert_true(i < c->n);
    assert_int_equal(c->leaves[i].index, index);
    assert_string_equal(c->leaves[i].path, path);
    assert_true(c->leaves[i].value == v);
}

static trifle_storage *open_ok(const char *url, const trifle_storage_options *opts)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st = NULL;

    if (trifle_storage_open(&st, url, opts, &err) != 0)
        fail_msg("open %s: %s", url, err.message);
    return st;
}

static int setup_plugins(void **state)
{
    (void)state;
    return trifle_driver_dir_add(TRIFLE_TEST_PLUGIN_DIR, NULL);
}

static int teardown_plugins(void **state)
{
    (void)state;
    trifle_shutdown();
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Open, options, accessors */

static void test_open_defaults(void **state)
{
    trifle_storage *st = open_ok("fake:defaults", NULL);
    char buf[64];

    (void)state;
    assert_int_equal(trifle_storage_mode(st), TRIFLE_ID_FULL);
    assert_string_equal(trifle_storage_separator(st), "::");
    assert_int_equal(trifle_storage_system_tracking(st), -1);
    assert_string_equal(trifle_storage_driver(st)->name, "fake");
    assert_int_equal(trifle_storage_describe(st, buf, sizeof(buf)), 13);
    assert_string_equal(buf, "FakeDriver(J)");
    assert_int_equal(trifle_storage_describe(st, buf, 5), 13);
    assert_string_equal(buf, "Fake");
    assert_int_equal(fake_counter("defaults", "open.calls"), 1);
    trifle_storage_close(st);
    assert_int_equal(fake_counter("defaults", "close.calls"), 1);
    trifle_storage_close(NULL);
    assert_null(trifle_storage_driver(NULL));
    assert_int_equal(trifle_storage_system_tracking(NULL), -1);
}

static void test_options_and_overrides(void **state)
{
    trifle_storage_options opts = {.struct_size = sizeof(trifle_storage_options),
                                   .joined = TRIFLE_ID_PARTIAL,
                                   .separator = "--"};
    trifle_storage *st;
    char buf[64];

    (void)state;
    st = open_ok("fake:opts", &opts);
    assert_int_equal(trifle_storage_mode(st), TRIFLE_ID_PARTIAL);
    assert_string_equal(trifle_storage_separator(st), "--");
    (void)trifle_storage_describe(st, buf, sizeof(buf));
    assert_string_equal(buf, "FakeDriver(P)");
    trifle_storage_close(st);

    /* URL parameters win over the options (ERRATA I8) */
    st = open_ok("fake:opts?joined=NONE&separator=%2F&system_tracking=no", &opts);
    assert_int_equal(trifle_storage_mode(st), TRIFLE_ID_SEPARATED);
    assert_string_equal(trifle_storage_separator(st), "/");
    assert_int_equal(trifle_storage_system_tracking(st), 0);
    (void)trifle_storage_describe(st, buf, sizeof(buf));
    assert_string_equal(buf, "FakeDriver(S)");
    trifle_storage_close(st);

    st = open_ok("fake:opts?system_tracking=true", NULL);
    assert_int_equal(trifle_storage_system_tracking(st), 1);
    trifle_storage_close(st);

    /* opts->driver names the plugin (by name or file) instead of the scheme */
    opts.driver = FAKE_SO;
    st = open_ok("fake:by_path", &opts);
    assert_string_equal(trifle_storage_driver(st)->name, "fake");
    trifle_storage_close(st);
}

static void expect_open_error(const char *url, const trifle_storage_options *opts, int code,
                              const char *driver, const char *message)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st = (trifle_storage *)&err;

    assert_int_equal(trifle_storage_open(&st, url, opts, &err), code);
    assert_null(st);
    assert_int_equal(err.code, code);
    assert_string_equal(err.driver, driver);
    assert_string_equal(err.message, message);
}

static void test_open_errors(void **state)
{
    trifle_storage_options opts = {.struct_size = sizeof(trifle_storage_options),
                                   .joined = TRIFLE_ID_FULL};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st = NULL;

    (void)state;
    expect_open_error(NULL, NULL, TRIFLE_ECONFIG, "", "driver required");
    expect_open_error("stats.db", NULL, TRIFLE_ECONFIG, "",
                      "invalid driver URL: missing scheme (expected <scheme>:...)");
    expect_open_error("rediss://:pw@h", NULL, TRIFLE_ECONFIG, "",
                      "invalid driver URL: TLS is not supported by this build");
    expect_open_error("nosuch://h", NULL, TRIFLE_ECONFIG, "", "unknown driver: nosuch");
    expect_open_error("fake:e?joined=sideways", NULL, TRIFLE_ECONFIG, "",
                      "invalid identifier mode: sideways");
    /* the driver judges its own parameters */
    expect_open_error("fake:e?bogus=1", NULL, TRIFLE_ECONFIG, "fake",
                      "invalid driver URL: unknown parameter bogus");
    /* a driver failure names the driver, and the password never shows */
    expect_open_error("fake://me:hunter2@host?fail_open=1", NULL, TRIFLE_ECONN, "fake",
                      "fake: injected failure of open call 1 for fake://me:***@host");
    opts.joined = 3;
    expect_open_error("fake:e", &opts, TRIFLE_ECONFIG, "", "invalid identifier mode: 3");
    opts.joined = TRIFLE_ID_FULL;
    opts.separator = "";
    expect_open_error("fake:e", &opts, TRIFLE_ECONFIG, "",
                      "separator must be 1 to 16 bytes without NUL");
    opts.separator = "12345678901234567";
    expect_open_error("fake:e", &opts, TRIFLE_ECONFIG, "",
                      "separator must be 1 to 16 bytes without NUL");
    opts.separator = NULL;
    opts.driver = "nosuch";
    assert_int_equal(trifle_storage_open(&st, "fake:e", &opts, &err), TRIFLE_ENOTFOUND);
    assert_null(st);
    assert_memory_equal(err.message, "driver nosuch not found (searched: ", 35);
    /* with another driver named, the URL still reaches it untouched */
    opts.driver = "fake";
    expect_open_error("custom:thing", &opts, TRIFLE_ECONFIG, "fake",
                      "invalid driver URL: expected fake:<db>");
    assert_int_equal(trifle_storage_open(NULL, "fake:e", NULL, &err), TRIFLE_EINVAL);
}

/* struct_size (docs/architecture.md, "Structs that grow"): an uninitialised struct is refused, a
 * newer caller's longer struct is read as far as this library knows it, and refused only when it
 * sets a member this library does not know. */
static void test_options_struct_size(void **state)
{
    struct {
        trifle_storage_options known;
        int64_t later; /* a member appended by a newer version of the header */
    } newer;
    trifle_storage_options bare;
    trifle_storage *st;
    char msg[160];

    (void)state;
    memset(&bare, 0, sizeof(bare));
    bare.separator = "--";
    (void)snprintf(msg, sizeof(msg),
                   "trifle_storage_options.struct_size 0 is too small "
                   "(initialise with TRIFLE_STORAGE_OPTIONS_INIT)");
    expect_open_error("fake:e", &bare, TRIFLE_EINVAL, "", msg);
    bare.struct_size = sizeof(bare) - 1;
    (void)snprintf(msg, sizeof(msg),
                   "trifle_storage_options.struct_size %zu is too small "
                   "(initialise with TRIFLE_STORAGE_OPTIONS_INIT)",
                   sizeof(bare) - 1);
    expect_open_error("fake:e", &bare, TRIFLE_EINVAL, "", msg);

    memset(&newer, 0, sizeof(newer));
    newer.known.struct_size = sizeof(newer);
    newer.known.separator = "--";
    st = open_ok("fake:e", &newer.known);
    assert_string_equal(trifle_storage_separator(st), "--");
    trifle_storage_close(st);
    newer.later = 1;
    (void)snprintf(msg, sizeof(msg),
                   "trifle_storage_options of %zu bytes sets options this "
                   "libtrifle (%zu bytes) does not support",
                   sizeof(newer), sizeof(trifle_storage_options));
    expect_open_error("fake:e", &newer.known, TRIFLE_ENOTSUP, "", msg);
}

static void test_identifier(void **state)
{
    trifle_storage_options opts = {.struct_size = sizeof(trifle_storage_options),
                                   .joined = TRIFLE_ID_FULL};
    trifle_storage *st;
    char buf[64], tiny[8];

    (void)state;
    st = open_ok("fake:ids", NULL);
    assert_int_equal(
        trifle_storage_identifier(st, buf, sizeof(buf), "event::logs", "1h", 1736935200),
        strlen("event::logs::1h::1736935200"));
    assert_string_equal(buf, "event::logs::1h::1736935200");
    (void)trifle_storage_identifier(st, buf, sizeof(buf), "old", "1d", -86400);
    assert_string_equal(buf, "old::1d::-86400");
    (void)trifle_storage_identifier(st, buf, sizeof(buf), "k", "1d", 0);
    assert_string_equal(buf, "k::1d::0");
    /* the needed length comes back when it does not fit; the text is cut and terminated */
    assert_int_equal(trifle_storage_identifier(st, tiny, sizeof(tiny), "event", "1h", 1),
                     strlen("event::1h::1"));
    assert_string_equal(tiny, "event::");
    trifle_storage_close(st);

    opts.separator = "--";
    opts.joined = TRIFLE_ID_PARTIAL;
    st = open_ok("fake:ids", &opts);
    (void)trifle_storage_identifier(st, buf, sizeof(buf), "events", "1h", 1738407600);
    assert_string_equal(buf, "events--1h");
    trifle_storage_close(st);

    opts.joined = TRIFLE_ID_SEPARATED;
    st = open_ok("fake:ids", &opts);
    assert_int_equal(trifle_storage_identifier(st, buf, sizeof(buf), "events", "1h", 1), 6);
    assert_string_equal(buf, "events");
    trifle_storage_close(st);
}

/* ---------------------------------------------------------------------------------------------
 * Writes and reads */

static void make_bucket(trifle_storage *st, trifle_bucket *b, char *id, size_t idsize,
                        const char *key, const char *g, int64_t at)
{
    assert_true(trifle_storage_identifier(st, id, idsize, key, g, at) < idsize);
    b->id = id;
    b->key = key;
    b->granularity = g;
    b->at = at;
}

/* An entry of @p n leaves in bucket (@p key, @p g, @p at), its identifier in @p id (64 bytes). */
static void make_item(trifle_storage *st, trifle_entry *item, char *id, const char *key,
                      const char *g, int64_t at, const trifle_leaf *leaves, size_t n)
{
    memset(item, 0, sizeof(*item));
    make_bucket(st, &item->bucket, id, 64, key, g, at);
    item->leaves = leaves;
    item->n_leaves = n;
}

/* One entry of @p n leaves in bucket ("s", 1m, 60), incremented into @p st. */
static void inc_one(trifle_storage *st, trifle_entry *item, char *id, const trifle_leaf *leaves,
                    size_t n)
{
    make_item(st, item, id, "s", "1m", 60, leaves, n);
    assert_int_equal(trifle_storage_inc(st, item, 1, NULL, NULL), 0);
}

static void test_get_groups_by_index(void **state)
{
    static const trifle_leaf l0[] = {{"A", 1}, {"a", 2}, {"a.b", 3}, {"b", 4}, {"\xC3\xA9", 5}};
    static const trifle_leaf l1[] = {{"count", 0.25}};
    static const trifle_leaf l2[] = {{"x", -1.5}, {"y", 1e300}};
    trifle_storage *st = open_ok("fake:group", NULL), *sloppy;
    trifle_entry items[3];
    trifle_bucket reads[4];
    char ids[4][64];
    size_t pass;
    trifle_error err = TRIFLE_ERROR_INIT;
    collector c = {0};

    (void)state;
    make_item(st, &items[0], ids[0], "k", "1h", 3600, l0, 5);
    make_item(st, &items[1], ids[1], "k", "1h", 7200, l1, 1);
    make_item(st, &items[2], ids[2], "k", "1d", 0, l2, 2);
    assert_int_equal(trifle_storage_inc(st, items, 3, NULL, &err), 0);
    assert_int_equal(trifle_storage_inc(st, items, 2, NULL, &err), 0);

    /* read order: item 2, a missing bucket, item 0, item 1 */
    reads[0] = items[2].bucket;
    make_bucket(st, &reads[1], ids[3], 64, "missing", "1h", 0);
    reads[2] = items[0].bucket;
    reads[3] = items[1].bucket;
    /* the same answer from a tidy driver and from one that emits backwards and in halves */
    sloppy = open_ok("fake:group?get_order=reverse&get_split=1", NULL);
    for (pass = 0; pass < 2; pass++) {
        assert_int_equal(trifle_storage_get(pass == 0 ? st : sloppy, reads, 4, collect, &c, &err),
                         0);
        assert_int_equal(c.n, 8);
        expect_leaf(&c, 0, 0, "x", -1.5);
        expect_leaf(&c, 1, 0, "y", 1e300);
        /* index 1 is missing: nothing; then paths in byte order */
        expect_leaf(&c, 2, 2, "A", 2);
        expect_leaf(&c, 3, 2, "a", 4);
        expect_leaf(&c, 4, 2, "a.b", 6);
        expect_leaf(&c, 5, 2, "b", 8);
        expect_leaf(&c, 6, 2, "\xC3\xA9", 10);
        expect_leaf(&c, 7, 3, "count", 0.5);
        collector_reset(&c);
    }
    assert_int_equal(fake_counter("group", "get.calls"), 2);
    assert_int_equal(fake_counter("group", "get.items"), 8);
    assert_int_equal(fake_counter("group", "inc.batch.0"), 3);
    assert_int_equal(fake_counter("group", "inc.batch.1"), 2);
    assert_int_equal(fake_counter("group", "inc.leaves"), 14);
    trifle_storage_close(sloppy);
    trifle_storage_close(st);
}

static void test_set_keeps_other_leaves(void **state)
{
    static const trifle_leaf first[] = {{"a", 1}, {"b", 2}};
    static const trifle_leaf second[] = {{"b", 5}, {"c", 6}};
    trifle_storage *st = open_ok("fake:set", NULL);
    trifle_entry item;
    char id[64];
    collector c = {0};

    (void)state;
    inc_one(st, &item, id, first, 2);
    item.leaves = second;
    assert_int_equal(trifle_storage_set(st, &item, 1, NULL, NULL), 0);
    assert_int_equal(trifle_storage_get(st, &item.bucket, 1, collect, &c, NULL), 0);
    assert_int_equal(c.n, 3);
    expect_leaf(&c, 0, 0, "a", 1);
    expect_leaf(&c, 1, 0, "b", 5);
    expect_leaf(&c, 2, 0, "c", 6);
    collector_reset(&c);
    assert_int_equal(fake_counter("set", "set.calls"), 1);
    trifle_storage_close(st);
}

static void test_modes_reach_the_driver(void **state)
{
    static const trifle_leaf one[] = {{"n", 1}};
    trifle_storage_options opts = {.struct_size = sizeof(trifle_storage_options),
                                   .joined = TRIFLE_ID_PARTIAL};
    trifle_storage *st;
    trifle_entry items[2];
    char ids[2][64];
    collector c = {0};
    trifle_bucket reads[2];

    (void)state;
    /* partial: one id string, two instants → two buckets */
    st = open_ok("fake:modes", &opts);
    make_item(st, &items[0], ids[0], "k", "1h", 0, one, 1);
    make_item(st, &items[1], ids[1], "k", "1h", 3600, one, 1);
    assert_string_equal(ids[0], ids[1]);
    assert_int_equal(trifle_storage_inc(st, items, 2, NULL, NULL), 0);
    assert_int_equal(trifle_storage_inc(st, items + 1, 1, NULL, NULL), 0);
    reads[0] = items[0].bucket;
    reads[1] = items[1].bucket;
    assert_int_equal(trifle_storage_get(st, reads, 2, collect, &c, NULL), 0);
    assert_int_equal(c.n, 2);
    expect_leaf(&c, 0, 0, "n", 1);
    expect_leaf(&c, 1, 1, "n", 2);
    collector_reset(&c);
    trifle_storage_close(st);

    /* the driver refuses one id twice in one call for the mode it was opened with */
    opts.joined = TRIFLE_ID_FULL;
    st = open_ok("fake:modes", &opts);
    items[1].bucket = items[0].bucket;
    {
        trifle_error err = TRIFLE_ERROR_INIT;
        assert_int_equal(trifle_storage_inc(st, items, 2, NULL, &err), TRIFLE_EINVAL);
        assert_string_equal(err.driver, "fake");
        assert_string_equal(err.message,
                            "fake: contract violation: items[1] repeats an identifier of the same "
                            "call");
    }
    trifle_storage_close(st);
}

#define BIG_BUCKETS 8760
#define BIG_LEAVES 10

static void test_year_of_hours(void **state)
{
    static const char *const paths[BIG_LEAVES] = {"a",     "b.c",   "b.d", "count", "d",
                                                  "e.f.g", "e.f.h", "m",   "z",     "\xC3\xA9"};
    trifle_storage *st = open_ok("fake:year", NULL), *sloppy;
    trifle_entry *items = calloc(BIG_BUCKETS, sizeof(*items));
    trifle_leaf *leaves = calloc(BIG_BUCKETS * BIG_LEAVES, sizeof(*leaves));
    char(*ids)[40] = calloc(BIG_BUCKETS, sizeof(*ids));
    trifle_bucket *reads = calloc(BIG_BUCKETS, sizeof(*reads));
    trifle_error err = TRIFLE_ERROR_INIT;
    struct timespec t0, t1;
    collector c = {0};
    size_t i, k;

    (void)state;
    assert_non_null(items);
    assert_non_null(leaves);
    assert_non_null(ids);
    assert_non_null(reads);
    for (i = 0; i < BIG_BUCKETS; i++) {
        make_bucket(st, &items[i].bucket, ids[i], sizeof(ids[i]), "year", "1h",
                    1735689600 + (int64_t)i * 3600);
        for (k = 0; k < BIG_LEAVES; k++) {
            leaves[i * BIG_LEAVES + k].path = paths[k];
            leaves[i * BIG_LEAVES + k].value = (double)(i * BIG_LEAVES + k);
        }
        items[i].leaves = leaves + i * BIG_LEAVES;
        items[i].n_leaves = BIG_LEAVES;
        reads[i] = items[i].bucket;
    }
    assert_int_equal(trifle_storage_inc(st, items, BIG_BUCKETS, NULL, &err), 0);
    sloppy = open_ok("fake:year?get_order=reverse&get_split=1", NULL);
    (void)clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(trifle_storage_get(sloppy, reads, BIG_BUCKETS, collect, &c, &err), 0);
    (void)clock_gettime(CLOCK_MONOTONIC, &t1);
    print_message("    %d buckets x %d leaves, emitted backwards in halves: %.1f ms\n", BIG_BUCKETS,
                  BIG_LEAVES,
                  (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    assert_int_equal(c.n, BIG_BUCKETS * BIG_LEAVES);
    for (i = 0; i < BIG_BUCKETS; i++)
        for (k = 0; k < BIG_LEAVES; k++)
            expect_leaf(&c, i * BIG_LEAVES + k, i, paths[k], (double)(i * BIG_LEAVES + k));
    collector_reset(&c);
    trifle_storage_close(sloppy);
    trifle_storage_close(st);
    free(items);
    free(leaves);
    free(ids);
    free(reads);
}

static void test_callback_stops(void **state)
{
    static const trifle_leaf l[] = {{"a", 1}, {"b", 2}, {"c", 3}};
    trifle_storage *st = open_ok("fake:stop", NULL);
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_entry item;
    char id[64];
    collector c = {0};

    (void)state;
    inc_one(st, &item, id, l, 3);
    c.stop_after = 2;
    assert_int_equal(trifle_storage_get(st, &item.bucket, 1, collect, &c, &err), 7);
    assert_int_equal(c.n, 2);
    assert_int_equal(err.code, 0); /* the callback's code is not an error of ours */
    collector_reset(&c);
    trifle_storage_close(st);
}

/* ---------------------------------------------------------------------------------------------
 * Failures */

static void test_injected_write_failures(void **state)
{
    static const trifle_leaf one[] = {{"n", 1}};
    trifle_storage *st = open_ok("fake:faults", NULL);
    trifle_entry items[3];
    trifle_bucket reads[3];
    char ids[3][64];
    size_t i;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_write_result res;
    collector c = {0};

    (void)state;
    for (i = 0; i < 3; i++) {
        make_item(st, &items[i], ids[i], "f", "1h", (int64_t)i * 3600, one, 1);
        reads[i] = items[i].bucket;
    }
    /* the 2nd inc from now fails with ECONN; nothing of it is applied */
    assert_int_equal(fake_control("faults", "fail_inc", 2), 0);
    assert_int_equal(trifle_storage_inc(st, items, 3, &res, &err), 0);
    assert_int_equal(trifle_storage_inc(st, items, 3, &res, &err), TRIFLE_ECONN);
    assert_int_equal(err.code, TRIFLE_ECONN);
    assert_string_equal(err.driver, "fake");
    assert_string_equal(err.message, "fake: injected failure of inc call 2");
    assert_int_equal(res.struct_size, sizeof(res));
    assert_int_equal(res.applied, 0);
    assert_int_equal(res.failed_item, -1);
    assert_int_equal(res.outcome_unknown, 0);
    assert_int_equal(trifle_storage_inc(st, items, 3, &res, &err), 0);

    /* EDATA on item 1: item 0 applied, item 1 named */
    assert_int_equal(fake_control("faults", "fail_code", TRIFLE_EDATA), 0);
    assert_int_equal(fake_control("faults", "fail_item", 1), 0);
    assert_int_equal(fake_control("faults", "fail_inc", 1), 0);
    assert_int_equal(trifle_storage_inc(st, items, 3, &res, &err), TRIFLE_EDATA);
    assert_int_equal(res.applied, 1);
    assert_int_equal(res.failed_item, 1);
    assert_int_equal(trifle_storage_get(st, reads, 3, collect, &c, &err), 0);
    assert_int_equal(c.n, 3);
    expect_leaf(&c, 0, 0, "n", 3);
    expect_leaf(&c, 1, 1, "n", 2);
    expect_leaf(&c, 2, 2, "n", 2);
    collector_reset(&c);

    /* lost reply: applied, but the outcome is unknown */
    assert_int_equal(fake_control("faults", "reset_stats", 1), 0);
    assert_int_equal(fake_control("faults", "fail_unknown", 1), 0);
    assert_int_equal(fake_control("faults", "fail_set", 1), 0);
    assert_int_equal(trifle_storage_set(st, items, 3, NULL, &err), TRIFLE_ECONN);
    assert_int_equal(trifle_storage_set(st, items, 3, &res, &err), 0);
    assert_int_equal(fake_control("faults", "fail_set", 1), 0);
    assert_int_equal(trifle_storage_set(st, items, 3, &res, &err), TRIFLE_ECONN);
    assert_int_equal(res.outcome_unknown, 1);
    assert_int_equal(res.applied, 0);
    assert_int_equal(fake_counter("faults", "set.calls"), 3);
    assert_int_equal(fake_counter("faults", "set.failures"), 2);
    assert_int_equal(fake_counter("faults", "inc.calls"), 0);

    /* fail every get until reset */
    assert_int_equal(fake_control("faults", "fail_count", -1), 0);
    assert_int_equal(fake_control("faults", "fail_get", 1), 0);
    for (i = 0; i < 3; i++)
        assert_int_equal(trifle_storage_get(st, reads, 3, collect, &c, &err), TRIFLE_ECONN);
    assert_int_equal(c.n, 0);
    assert_int_equal(fake_control("faults", "reset_stats", 1), 0);
    assert_int_equal(trifle_storage_get(st, reads, 3, collect, &c, &err), 0);
    collector_reset(&c);
    trifle_storage_close(st);
}

static void test_fault_by_url_and_setup(void **state)
{
    trifle_storage *st = open_ok("fake:setup?fail_setup=2&fail_code=EBUSY&fail_native=5", NULL);
    trifle_error err = TRIFLE_ERROR_INIT;

    (void)state;
    assert_int_equal(trifle_storage_setup(st, &err), 0);
    assert_int_equal(trifle_storage_setup(st, &err), TRIFLE_EBUSY);
    assert_int_equal(err.native, 5);
    assert_string_equal(err.driver, "fake");
    assert_int_equal(trifle_storage_setup(st, &err), 0);
    assert_int_equal(trifle_storage_setup(NULL, &err), TRIFLE_EINVAL);
    trifle_storage_close(st);
    expect_open_error("fake:setup?fail_code=EWHAT", NULL, TRIFLE_ECONFIG, "fake",
                      "invalid driver URL: invalid fail_code: EWHAT");
}

static void test_ping_scan(void **state)
{
    static const trifle_leaf data[] = {{"up", 1}, {"load.avg", 0.5}};
    trifle_storage *st = open_ok("fake:ping", NULL);
    trifle_error err = TRIFLE_ERROR_INIT;
    collector c = {0};
    int64_t at = -1;

    (void)state;
    assert_int_equal(trifle_storage_scan(st, "health", &at, collect, &c, &err), TRIFLE_ENOTFOUND);
    assert_int_equal(at, -1);
    assert_string_equal(err.driver, "fake");
    assert_string_equal(err.message, "fake: no ping for health");
    assert_int_equal(trifle_storage_ping(st, "health", 1736935207, data, 2, &err), 0);
    assert_int_equal(trifle_storage_scan(st, "health", &at, collect, &c, &err), 0);
    assert_int_equal(at, 1736935207);
    assert_int_equal(c.n, 2);
    expect_leaf(&c, 0, 0, "load.avg", 0.5);
    expect_leaf(&c, 1, 0, "up", 1);
    collector_reset(&c);
    /* replaced, not merged */
    assert_int_equal(trifle_storage_ping(st, "health", 5, data, 1, &err), 0);
    assert_int_equal(trifle_storage_scan(st, "health", &at, collect, &c, &err), 0);
    assert_int_equal(at, 5);
    assert_int_equal(c.n, 1);
    collector_reset(&c);
    assert_int_equal(trifle_storage_ping(st, "empty", 9, NULL, 0, &err), 0);
    assert_int_equal(trifle_storage_scan(st, "empty", &at, collect, &c, &err), 0);
    assert_int_equal(at, 9);
    assert_int_equal(c.n, 0);
    assert_int_equal(trifle_storage_ping(st, NULL, 0, data, 1, &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_storage_ping(st, "k", 0, NULL, 1, &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_storage_scan(st, "k", NULL, collect, &c, &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_storage_scan(st, "k", &at, NULL, &c, &err), TRIFLE_EINVAL);
    assert_int_equal(fake_counter("ping", "ping.calls"), 3);
    assert_int_equal(fake_counter("ping", "scan.calls"), 4);
    assert_int_equal(fake_counter("ping", "pings"), 2);
    trifle_storage_close(st);
}

static void expect_sloppy_get(const char *url, const char *message)
{
    trifle_storage *st = open_ok(url, NULL);
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_bucket b = {"x::1h::0", "x", "1h", 0};
    collector c = {0};

    assert_int_equal(trifle_storage_get(st, &b, 1, collect, &c, &err), TRIFLE_EDRIVER);
    assert_int_equal(err.code, TRIFLE_EDRIVER);
    assert_string_equal(err.driver, "fake");
    assert_string_equal(err.message, message);
    assert_int_equal(c.n, 0);
    trifle_storage_close(st);
}

static void test_sloppy_driver(void **state)
{
    (void)state;
    expect_sloppy_get("fake:sloppy?get_misbehave=index",
                      "driver fake: get emitted bucket index 1 for a call of 1");
    expect_sloppy_get("fake:sloppy?get_misbehave=path",
                      "driver fake: get emitted an empty path for bucket index 0");
}

static void test_argument_checks(void **state)
{
    static const trifle_leaf one[] = {{"n", 1}};
    static const trifle_leaf unsorted[] = {{"b", 1}, {"a", 1}};
    trifle_storage *st = open_ok("fake:args", NULL);
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_write_result res = {0, 9, 9, 9};
    trifle_entry item;
    collector c = {0};

    (void)state;
    memset(&item, 0, sizeof(item));
    /* the result is initialised whatever happens */
    assert_int_equal(trifle_storage_inc(NULL, &item, 1, &res, &err), TRIFLE_EINVAL);
    assert_int_equal(res.struct_size, sizeof(res));
    assert_int_equal(res.applied, 0);
    assert_int_equal(res.failed_item, -1);
    assert_int_equal(res.outcome_unknown, 0);
    assert_int_equal(trifle_storage_inc(st, NULL, 1, NULL, &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_storage_inc(st, &item, 1, NULL, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "invalid argument: items[0] has no bucket id");
    item.bucket.id = "a::1h::0";
    assert_int_equal(trifle_storage_set(st, &item, 1, NULL, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "invalid argument: items[0] has no leaves");
    /* nothing to do is not a driver call */
    assert_int_equal(trifle_storage_inc(st, NULL, 0, NULL, &err), 0);
    assert_int_equal(trifle_storage_get(st, NULL, 0, collect, &c, &err), 0);
    assert_int_equal(fake_counter("args", "inc.calls"), 0);
    assert_int_equal(fake_counter("args", "get.calls"), 0);
    assert_int_equal(trifle_storage_get(st, NULL, 1, collect, &c, &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_storage_get(st, &item.bucket, 1, NULL, &c, &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_storage_get(NULL, &item.bucket, 1, collect, &c, &err), TRIFLE_EINVAL);
    {
        trifle_bucket nb = {NULL, "k", "1h", 0};
        assert_int_equal(trifle_storage_get(st, &nb, 1, collect, &c, &err), TRIFLE_EINVAL);
        assert_string_equal(err.message, "invalid argument: buckets[0] has no id");
    }
    /* what the core promises drivers is checked by the fake */
    item.leaves = unsorted;
    item.n_leaves = 2;
    assert_int_equal(trifle_storage_inc(st, &item, 1, NULL, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message,
                        "fake: contract violation: items[0] leaves are not sorted and unique");
    item.leaves = one;
    item.n_leaves = 1;
    assert_int_equal(trifle_storage_inc(st, &item, 1, NULL, &err), 0);
    trifle_storage_close(st);
}

/* ---------------------------------------------------------------------------------------------
 * Allocation failure: allocation N and every later one fail, for N = 1, 2, ... until the call
 * succeeds. Each failing run must be TRIFLE_ENOMEM and leave the store as it was (valgrind and
 * ASan check that nothing leaks). */

static double read_total(trifle_storage *st, const trifle_bucket *b)
{
    collector c = {0};
    double sum = 0;
    size_t i;

    assert_int_equal(trifle_storage_get(st, b, 1, collect, &c, NULL), 0);
    for (i = 0; i < c.n; i++)
        sum += c.leaves[i].value;
    collector_reset(&c);
    return sum;
}

static void test_out_of_memory(void **state)
{
    static const trifle_leaf l[] = {{"a", 1}, {"b.c", 2}, {"d", 3}};
    trifle_storage *st = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_entry items[4];
    trifle_bucket reads[4];
    char ids[4][64];
    collector c = {0};
    long n;
    size_t i;
    int rc;

    (void)state;
    oom_begin(-1);
    /* open */
    for (n = 0;; n++) {
        oom_budget = n;
        rc = trifle_storage_open(&st, "fake:oom?joined=partial&table=x", NULL, &err);
        if (rc == TRIFLE_ECONFIG) { /* the fake rejects "table": the driver was reached */
            assert_string_equal(err.message, "invalid driver URL: unknown parameter table");
            break;
        }
        assert_int_equal(rc, TRIFLE_ENOMEM);
        assert_null(st);
    }
    oom_budget = -1;
    st = open_ok("fake:oom", NULL);
    for (i = 0; i < 4; i++) {
        make_item(st, &items[i], ids[i], "o", "1h", (int64_t)i * 3600, l, 3);
        reads[i] = items[i].bucket;
    }
    /* inc: all or nothing under allocation failure */
    for (n = 0;; n++) {
        oom_budget = n;
        rc = trifle_storage_inc(st, items, 4, NULL, &err);
        oom_budget = -1;
        if (rc == 0)
            break;
        assert_int_equal(rc, TRIFLE_ENOMEM);
        assert_string_equal(err.message, "out of memory");
        for (i = 0; i < 4; i++)
            assert_true(read_total(st, &reads[i]) == 0);
    }
    assert_true(n > 0);
    for (i = 0; i < 4; i++)
        assert_true(read_total(st, &reads[i]) == 6);
    /* get */
    for (n = 0;; n++) {
        oom_budget = n;
        rc = trifle_storage_get(st, reads, 4, collect, &c, &err);
        oom_budget = -1;
        if (rc == 0)
            break;
        assert_int_equal(rc, TRIFLE_ENOMEM);
        assert_int_equal(c.n, 0); /* nothing is delivered from a failed read */
    }
    assert_true(n > 0);
    assert_int_equal(c.n, 12);
    collector_reset(&c);
    trifle_storage_close(st);
    oom_budget = -1;
    oom_end();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_defaults),
        cmocka_unit_test(test_options_and_overrides),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_options_struct_size),
        cmocka_unit_test(test_identifier),
        cmocka_unit_test(test_get_groups_by_index),
        cmocka_unit_test(test_set_keeps_other_leaves),
        cmocka_unit_test(test_modes_reach_the_driver),
        cmocka_unit_test(test_year_of_hours),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_injected_write_failures),
        cmocka_unit_test(test_fault_by_url_and_setup),
        cmocka_unit_test(test_ping_scan),
        cmocka_unit_test(test_sloppy_driver),
        cmocka_unit_test(test_argument_checks),
        cmocka_unit_test(test_out_of_memory),
    };

    return cmocka_run_group_tests(tests, setup_plugins, teardown_plugins);
}
