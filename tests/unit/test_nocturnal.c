/* Nocturnal (SPEC §2): every floor/add/timeline vector of nocturnal.json, a brute-force check of
 * floor and timeline against the definition of B(G) around every 2025 transition of the vector
 * zones, the transition cache against plain GLib, resolve, range errors, zone names, and the cache
 * under concurrent first use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "nocturnal_int.h"
#include "oom_alloc.h"
#include "trifle/time.h"
#include "unit_helpers.h"
#include "vectors.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers */

static trifle_granularity gran(const char *text)
{
    trifle_granularity g;
    trifle_error err = TRIFLE_ERROR_INIT;
    if (trifle_granularity_parse(&g, text, &err) != 0)
        fail_msg("%s", err.message);
    return g;
}

static int weekday(const char *text)
{
    int wd = -1;
    trifle_error err = TRIFLE_ERROR_INIT;
    if (trifle_weekday_parse(&wd, text, &err) != 0)
        fail_msg("%s", err.message);
    return wd;
}

static int64_t floor_ok(const trifle_zone *z, int ws, const trifle_granularity *g, int64_t at)
{
    int64_t b = 0;
    trifle_error err = TRIFLE_ERROR_INIT;
    if (trifle_floor(&b, z, ws, g, at, &err) != 0)
        fail_msg("floor(%lld, %s) failed: %s", (long long)at, g->label, err.message);
    return b;
}

static const char *fmt(char *buf, int64_t at, const trifle_zone *z)
{
    (void)trifle_time_format(buf, 40, at, z);
    return buf;
}

/* The first line of the tz database's tzdata.zi ("# version 2025b"), for the log (ERRATA 24). */
static void log_tzdata_version(void)
{
    const char *dir = getenv("TZDIR");
    char path[4096], line[128] = "unknown";
    (void)snprintf(path, sizeof(path), "%s/tzdata.zi",
                   dir != NULL && *dir != '\0' ? dir : "/usr/share/zoneinfo");
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fgets(line, sizeof(line), f) == NULL)
            (void)snprintf(line, sizeof(line), "unreadable");
        fclose(f);
    }
    line[strcspn(line, "\n")] = '\0';
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(vectors, "meta");
    print_message("tz data: %s (%s); vectors generated with %s\n", path, line,
                  vector_str(meta, "tzdata"));
}

static int setup(void **state)
{
    (void)state;
    vectors = vectors_load("nocturnal.json");
    log_tzdata_version();
    return 0;
}

static int teardown(void **state)
{
    (void)test_zones_free(state);
    return vectors_teardown(state);
}

/* ---------------------------------------------------------------------------------------------
 * Vectors */

/* One case of the "floor" vectors; the number of its failures, each printed. */
static int check_floor(const cJSON *c)
{
    int failures = 0;
    const trifle_zone *z = test_zone(vector_str(c, "zone"));
    trifle_granularity g = gran(vector_str(c, "granularity"));
    int ws = weekday(vector_str(c, "week_start"));
    int64_t at = vector_int(c, "at_unix"), parsed = 0, b = 0;
    char local[40];
    trifle_error err = TRIFLE_ERROR_INIT;
    /* the RFC 3339 input text names the same instant */
    if (trifle_time_parse(&parsed, vector_str(c, "at"), NULL, TRIFLE_TIME_OFFSET_REQUIRED, &err) !=
            0 ||
        parsed != at) {
        print_error("%s: parse %s -> %lld (%s)\n", vector_str(c, "id"), vector_str(c, "at"),
                    (long long)parsed, err.message);
        failures++;
    }
    if (trifle_floor(&b, z, ws, &g, at, &err) != 0) {
        print_error("%s: %s\n", vector_str(c, "id"), err.message);
        return failures + 1;
    }
    fmt(local, b, z);
    if (b != vector_int(c, "expected") || strcmp(local, vector_str(c, "expected_local")) != 0) {
        print_error("%s: %s %s %s at %s: got %lld %s, want %lld %s\n", vector_str(c, "id"),
                    vector_str(c, "zone"), vector_str(c, "week_start"), g.label,
                    vector_str(c, "at"), (long long)b, local, (long long)vector_int(c, "expected"),
                    vector_str(c, "expected_local"));
        failures++;
    }
    return failures;
}

static void test_floor_vectors(void **state)
{
    (void)state;
    vectors_run("floor", check_floor);
}

/* One case of the "add" vectors: 1 (printed) when it fails. */
static int check_add(const cJSON *c)
{
    const trifle_zone *z = test_zone(vector_str(c, "zone"));
    char one[40];
    (void)snprintf(one, sizeof(one), "1%s", vector_str(c, "unit"));
    trifle_granularity unit = gran(one); /* the unit's enum value, by the grammar */
    int64_t r = 0;
    char local[40];
    trifle_error err = TRIFLE_ERROR_INIT;
    if (trifle_add(&r, z, vector_int(c, "at_unix"), vector_int(c, "amount"), unit.unit, &err) !=
        0) {
        print_error("%s: %s\n", vector_str(c, "id"), err.message);
        return 1;
    }
    fmt(local, r, z);
    if (r != vector_int(c, "expected") || strcmp(local, vector_str(c, "expected_local")) != 0) {
        print_error("%s: %s %+lld%s: got %lld %s, want %lld %s\n", vector_str(c, "id"),
                    vector_str(c, "at"), (long long)vector_int(c, "amount"), vector_str(c, "unit"),
                    (long long)r, local, (long long)vector_int(c, "expected"),
                    vector_str(c, "expected_local"));
        return 1;
    }
    return 0;
}

static void test_add_vectors(void **state)
{
    (void)state;
    vectors_run("add", check_add);
}

/* One case of the "timeline" vectors: 1 (printed) when it fails. */
static int check_timeline(const cJSON *c)
{
    const trifle_zone *z = test_zone(vector_str(c, "zone"));
    trifle_granularity g = gran(vector_str(c, "granularity"));
    int ws = weekday(vector_str(c, "week_start"));
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(c, "expected");
    const cJSON *want_local = cJSON_GetObjectItemCaseSensitive(c, "expected_local");
    int64_t *pts = NULL;
    size_t n = 0;
    trifle_error err = TRIFLE_ERROR_INIT;
    if (trifle_timeline(&pts, &n, z, ws, &g, vector_int(c, "from_unix"), vector_int(c, "to_unix"),
                        0, &err) != 0) {
        print_error("%s: %s\n", vector_str(c, "id"), err.message);
        return 1;
    }
    int bad = n != (size_t)cJSON_GetArraySize(want);
    for (size_t i = 0; !bad && i < n; i++) {
        char local[40];
        fmt(local, pts[i], z);
        bad = pts[i] != (int64_t)cJSON_GetArrayItem(want, (int)i)->valuedouble ||
              strcmp(local, cJSON_GetArrayItem(want_local, (int)i)->valuestring) != 0;
    }
    if (bad) {
        print_error("%s: %s %s %s..%s: got %zu points:\n", vector_str(c, "id"),
                    vector_str(c, "zone"), g.label, vector_str(c, "from"), vector_str(c, "to"), n);
        for (size_t i = 0; i < n; i++) {
            char local[40];
            print_error("  %lld %s\n", (long long)pts[i], fmt(local, pts[i], z));
        }
    }
    trifle_mem_free(pts);
    return bad;
}

static void test_timeline_vectors(void **state)
{
    (void)state;
    vectors_run("timeline", check_timeline);
}

/* ---------------------------------------------------------------------------------------------
 * Brute force against the definition of B(G) (SPEC §2.5) */

/* x is a bucket start: wall(x) is a grid value, or x is a forward transition that skipped one. */
static int in_b(const trifle_zone *z, int ws, const trifle_granularity *g, int64_t x)
{
    int32_t off = trifle_zone_offset(z, x), before = trifle_zone_offset(z, x - 1);
    int64_t w = x + off;
    if (trifle__grid_floor(g, ws, w) == w)
        return 1;
    return off > before && trifle__grid_floor(g, ws, w - 1) > x - 1 + before;
}

static const char *const sweep_grans[] = {"1s",  "7s",  "15s", "1m",  "5m", "7m", "15m", "20m",
                                          "30m", "33m", "45m", "90m", "1h", "2h", "5h",  "6h",
                                          "1d",  "2d",  "3d",  "7d",  "1w", "2w", "4w",  "1mo",
                                          "2mo", "5mo", "1q",  "2q",  "3q", "1y", "2y",  "10y"};

/* Check floor and timeline on [lo, hi] stepping by `step` seconds (B must be a subset of the
 * step-aligned instants). Every bucket start found by brute force must be listed by the timeline,
 * and floor(x) must be the latest of them <= x. Returns the number of failures. */
static int sweep(const char *zname, int ws, const trifle_granularity *g, int64_t lo, int64_t hi,
                 int64_t step)
{
    const trifle_zone *z = test_zone(zname);
    int failures = 0;
    int64_t last_b = INT64_MIN, prev_floor = INT64_MIN;
    int64_t *pts = NULL;
    size_t n = 0, k = 0;
    trifle_error err = TRIFLE_ERROR_INIT;
    assert_int_equal(trifle__floormod(lo, step), 0);
    if (trifle_timeline(&pts, &n, z, ws, g, lo, hi, 0, &err) != 0)
        fail_msg("%s %s: %s", zname, g->label, err.message);
    /* timeline: ascending without duplicates, each a fixed point of floor, buckets contiguous */
    for (size_t i = 0; i < n; i++) {
        if ((i > 0 && pts[i] <= pts[i - 1]) || floor_ok(z, ws, g, pts[i]) != pts[i] ||
            (i > 0 && floor_ok(z, ws, g, pts[i] - 1) != pts[i - 1])) {
            print_error("%s %s ws=%d: timeline point %zu = %lld is wrong\n", zname, g->label, ws, i,
                        (long long)pts[i]);
            failures++;
        }
    }
    while (k < n && pts[k] < lo)
        k++;
    for (int64_t x = lo; x <= hi; x += step) {
        int64_t f = floor_ok(z, ws, g, x);
        if (f > x || floor_ok(z, ws, g, f) != f || f < prev_floor) {
            print_error("%s %s: floor(%lld) = %lld breaks an invariant\n", zname, g->label,
                        (long long)x, (long long)f);
            failures++;
        }
        prev_floor = f;
        if (in_b(z, ws, g, x)) {
            last_b = x;
            if (k >= n || pts[k] != x) {
                print_error("%s %s ws=%d: timeline misses bucket start %lld\n", zname, g->label, ws,
                            (long long)x);
                failures++;
            } else {
                k++;
            }
        }
        if (last_b != INT64_MIN && f != last_b) {
            char a[40], b[40], c[40];
            print_error("%s %s ws=%d: floor(%s) = %s, definition gives %s\n", zname, g->label, ws,
                        fmt(a, x, z), fmt(b, f, z), fmt(c, last_b, z));
            failures++;
        }
        if (failures > 20)
            break;
    }
    if (failures == 0 && k != n) {
        print_error("%s %s ws=%d: timeline has %zu extra points\n", zname, g->label, ws, n - k);
        failures++;
    }
    trifle_mem_free(pts);
    return failures;
}

/* The coarsest step that still visits every bucket start in [lo, hi]: grid values are whole
 * minutes (calendar grids: whole hours) of wall time, so B is aligned to `step` when every offset
 * and transition instant in the window is. */
static int64_t aligned_step(const trifle_zone *z, int64_t lo, int64_t hi, int64_t step)
{
    static const int64_t steps[] = {300, 60, 30, 1};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        if (steps[i] > step)
            continue;
        int ok = trifle_zone_offset(z, lo) % steps[i] == 0;
        trifle__transition t = {lo, 0, 0};
        while (ok && trifle__zone_next(z, t.at, hi, &t))
            ok = t.at % steps[i] == 0 && t.after % steps[i] == 0;
        if (ok)
            return steps[i];
    }
    return 1;
}

/* Sweep grid g around transition instant `at`: every second within an hour for clock grids, then
 * days around it as coarsely as B allows. */
static int sweep_around(const char *zname, int ws, const trifle_granularity *g, int64_t at)
{
    const trifle_zone *z = test_zone(zname);
    int failures = 0;
    int64_t lo, hi, step;
    if (g->unit <= TRIFLE_UNIT_HOUR) {
        lo = at - 3600 < TRIFLE__TIME_MIN ? TRIFLE__TIME_MIN : at - 3600;
        failures += sweep(zname, ws, g, lo, at + 3600, 1);
        if (g->unit == TRIFLE_UNIT_SECOND)
            return failures;
    }
    int64_t days = g->unit <= TRIFLE_UNIT_HOUR ? 2 : 4;
    lo = at - days * 86400 < TRIFLE__TIME_MIN ? TRIFLE__TIME_MIN : at - days * 86400;
    hi = at + days * 86400;
    step = aligned_step(z, lo, hi, g->unit <= TRIFLE_UNIT_HOUR ? 60 : 300);
    lo += trifle__floormod(-lo, step);
    return failures + sweep(zname, ws, g, lo, hi, step);
}

static void test_definition_around_2025_transitions(void **state)
{
    (void)state;
    /* the zones of the vectors */
    const char *names[32];
    size_t n_names = 0;
    const cJSON *c;
    cJSON_ArrayForEach (c, cJSON_GetObjectItemCaseSensitive(vectors, "floor")) {
        size_t i = 0;
        while (i < n_names && strcmp(names[i], vector_str(c, "zone")) != 0)
            i++;
        if (i == n_names && n_names < sizeof(names) / sizeof(names[0]))
            names[n_names++] = vector_str(c, "zone");
    }
    int failures = 0, transitions = 0, sweeps = 0;
    const int64_t y2025 = 1735689600, y2026 = 1767225600;
    for (size_t zi = 0; zi < (test_light() && n_names > 2 ? 2 : n_names); zi++) {
        const trifle_zone *z = test_zone(names[zi]);
        trifle__transition t = {y2025, 0, 0};
        while (trifle__zone_next(z, t.at, y2026, &t)) {
            transitions++;
            for (size_t gi = 0; gi < sizeof(sweep_grans) / sizeof(sweep_grans[0]); gi++) {
                trifle_granularity g = gran(sweep_grans[gi]);
                for (int ws = TRIFLE_SUNDAY; ws <= TRIFLE_MONDAY; ws++) {
                    failures += sweep_around(names[zi], ws, &g, t.at);
                    sweeps++;
                    if (g.unit != TRIFLE_UNIT_WEEK)
                        break; /* week_start matters to weeks only */
                }
            }
        }
    }
    print_message("zones: %zu, 2025 transitions: %d, sweeps: %d, failures: %d\n", n_names,
                  transitions, sweeps, failures);
    if (!test_light())
        assert_true(transitions >= 8); /* five of the seven zones change twice a year */
    assert_int_equal(failures, 0);
}

/* Zones with unusual history: whole skipped days, 24 h jumps, 30/45-minute offsets, non-whole-
 * minute LMT, double summer time. */
static void test_definition_historical(void **state)
{
    (void)state;
    static const struct {
        const char *zone;
        int64_t around;
    } cases[] = {
        {"Pacific/Apia", 1325239200},       /* 2011-12-30 skipped entirely */
        {"Pacific/Kiritimati", 788918400},  /* 1995-01-01: -10:00 -> +14:00 */
        {"Asia/Kathmandu", 504901800},      /* 1986: +05:30 -> +05:45 */
        {"Africa/Monrovia", 63590400},      /* 1972: -00:44:30 -> 00:00 */
        {"Europe/London", -875491200},      /* 1942 double summer time */
        {"America/St_Johns", 1741500000},   /* -03:30 / -02:30 */
        {"Antarctica/Troll", 1743296400},   /* +00:00 -> +02:00 */
        {"Africa/Casablanca", 1740276000},  /* Ramadan: backward in February */
        {"Europe/Bratislava", -1693699200}, /* 1916: the first summer time */
    };
    int failures = 0;
    for (size_t i = 0; i < (test_light() ? 2 : sizeof(cases) / sizeof(cases[0])); i++) {
        const trifle_zone *z = test_zone(cases[i].zone);
        int64_t lo = cases[i].around - 40 * 86400, hi = cases[i].around + 40 * 86400;
        if (lo < TRIFLE__TIME_MIN)
            lo = TRIFLE__TIME_MIN;
        trifle__transition t = {lo, 0, 0};
        int found = 0;
        while (trifle__zone_next(z, t.at, hi, &t)) {
            found++;
            for (size_t gi = 0; gi < sizeof(sweep_grans) / sizeof(sweep_grans[0]); gi++) {
                trifle_granularity g = gran(sweep_grans[gi]);
                failures += sweep_around(cases[i].zone, TRIFLE_MONDAY, &g, t.at);
            }
        }
        if (found == 0) {
            print_error("%s: no transition near %lld\n", cases[i].zone, (long long)cases[i].around);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* ---------------------------------------------------------------------------------------------
 * The transition cache agrees with GLib */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static void test_cache_matches_glib(void **state)
{
    (void)state;
    static const char *const names[] = {"Europe/Bratislava",   "America/New_York",
                                        "Australia/Lord_Howe", "America/Santiago",
                                        "America/Havana",      "Asia/Kolkata",
                                        "Pacific/Apia",        "Africa/Casablanca",
                                        "Europe/Dublin",       "UTC"};
    int failures = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        trifle_zone *z = NULL;
        assert_int_equal(trifle_zone_open(&z, names[i], NULL), 0);
        /* the same transitions over the whole range as GLib gives, forwards */
        enum { MAX_T = 8192 };
        static int64_t seen[MAX_T];
        trifle__transition a = {TRIFLE__TIME_MIN - 86400, 0, 0}, b = a;
        size_t n = 0;
        for (;;) {
            int ha = trifle__zone_next(z, a.at, TRIFLE__TIME_MAX + 86400, &a);
            int hb = trifle__zone_next_direct(z, b.at, TRIFLE__TIME_MAX + 86400, &b);
            if (ha != hb || (ha && (a.at != b.at || a.before != b.before || a.after != b.after))) {
                print_error("%s: next differs after %zu transitions\n", names[i], n);
                failures++;
                break;
            }
            if (!ha)
                break;
            assert_true(n < MAX_T);
            seen[n++] = a.at;
            if (trifle_zone_offset(z, a.at) != a.after ||
                trifle_zone_offset(z, a.at - 1) != a.before) {
                print_error("%s: offsets around %lld disagree\n", names[i], (long long)a.at);
                failures++;
            }
        }
        /* and the cache walked backwards finds them again (direct prev: random checks below) */
        trifle__transition p = {TRIFLE__TIME_MAX + 86400, 0, 0};
        while (trifle__zone_prev(z, TRIFLE__TIME_MIN - 86400, p.at - 1, &p)) {
            if (n == 0 || seen[--n] != p.at) {
                print_error("%s: prev finds %lld\n", names[i], (long long)p.at);
                failures++;
                break;
            }
        }
        if (n != 0) {
            print_error("%s: walking back missed %zu transitions\n", names[i], n);
            failures++;
        }
        /* random instants and windows */
        for (int k = 0; k < 1000; k++) {
            int64_t x =
                TRIFLE__TIME_MIN + (int64_t)(test_xorshift(&rng_state) %
                                             (uint64_t)(TRIFLE__TIME_MAX - TRIFLE__TIME_MIN));
            if (k % 2 == 0) /* half of them in 1900-2100, where the history is */
                x = TRIFLE__TIME_MIN + (int64_t)(test_xorshift(&rng_state) % UINT64_C(6311433600));
            int64_t w = (int64_t)(test_xorshift(&rng_state) % UINT64_C(100000000));
            trifle__transition r1, r2;
            int h1, h2;
            if (trifle_zone_offset(z, x) != trifle__zone_offset_direct(z, x))
                failures++;
            h1 = trifle__zone_prev(z, x - w, x, &r1);
            h2 = trifle__zone_prev_direct(z, x - w, x, &r2);
            if (h1 != h2 || (h1 && r1.at != r2.at))
                failures++;
            h1 = trifle__zone_next(z, x, x + w, &r1);
            h2 = trifle__zone_next_direct(z, x, x + w, &r2);
            if (h1 != h2 || (h1 && r1.at != r2.at))
                failures++;
        }
        trifle_zone_free(z);
    }
    assert_int_equal(failures, 0);
}

/* ---------------------------------------------------------------------------------------------
 * Concurrent first use of a zone's cache */

typedef struct worker {
    const trifle_zone *z;
    const int64_t *expected;
    size_t n;
    int failures;
} worker;

static const char *const worker_grans[] = {"1m", "1h", "1d", "1w", "1mo", "1y"};

static int64_t worker_instant(size_t i)
{
    /* spread over 1900-2200 so that many cache blocks get filled concurrently */
    return TRIFLE__TIME_MIN + (int64_t)(i * UINT64_C(2654435761) % UINT64_C(9467020800));
}

static void *worker_run(void *arg)
{
    worker *w = arg;
    for (size_t i = 0; i < w->n; i++) {
        trifle_granularity g;
        int64_t b = 0;
        (void)trifle_granularity_parse(&g, worker_grans[i % 6], NULL);
        if (trifle_floor(&b, w->z, TRIFLE_MONDAY, &g, worker_instant(i), NULL) != 0 ||
            b != w->expected[i])
            w->failures++;
    }
    return NULL;
}

static void test_concurrent_first_use(void **state)
{
    (void)state;
    enum { N = 20000, THREADS = 4 };
    int64_t *expected = malloc(N * sizeof(*expected));
    assert_non_null(expected);
    const trifle_zone *ref = test_zone("America/Santiago");
    for (size_t i = 0; i < N; i++) {
        trifle_granularity g = gran(worker_grans[i % 6]);
        expected[i] = floor_ok(ref, TRIFLE_MONDAY, &g, worker_instant(i));
    }
    for (int round = 0; round < 3; round++) {
        trifle_zone *z = NULL;
        assert_int_equal(trifle_zone_open(&z, "America/Santiago", NULL), 0);
        pthread_t th[THREADS];
        worker w[THREADS];
        for (int t = 0; t < THREADS; t++) {
            w[t] = (worker){z, expected, N, 0};
            assert_int_equal(pthread_create(&th[t], NULL, worker_run, &w[t]), 0);
        }
        for (int t = 0; t < THREADS; t++) {
            assert_int_equal(pthread_join(th[t], NULL), 0);
            assert_int_equal(w[t].failures, 0);
        }
        trifle_zone_free(z);
    }
    free(expected);
}

/* ---------------------------------------------------------------------------------------------
 * Out of memory: opening fails cleanly at every allocation; a zone whose cache cannot grow still
 * answers through GLib directly */

static void test_out_of_memory(void **state)
{
    (void)state;
    /* expectations first, from a zone whose cache works */
    static const char *const grans[] = {"1m", "7m", "1h", "1d", "1w", "1mo", "1y", "10y"};
    enum { N_GRANS = sizeof(grans) / sizeof(grans[0]), N_X = 6 * 48 };
    const int64_t x0 = 1762059600 - 3 * 86400; /* Havana's repeated midnight +- 3 days */
    static int64_t want[N_GRANS][N_X];
    trifle_zone *ref = NULL;
    assert_int_equal(trifle_zone_open(&ref, "America/Havana", NULL), 0);
    for (size_t gi = 0; gi < N_GRANS; gi++) {
        trifle_granularity g = gran(grans[gi]);
        for (int i = 0; i < N_X; i++)
            want[gi][i] = floor_ok(ref, TRIFLE_MONDAY, &g, x0 + i * 1800);
    }
    trifle_zone_free(ref);

    oom_begin(-1);
    trifle_zone *z = NULL;
    int n = 0;
    for (;; n++) {
        trifle_error err = TRIFLE_ERROR_INIT;
        oom_budget = n;
        int rc = trifle_zone_open(&z, "America/Havana", &err);
        if (rc == 0)
            break;
        assert_int_equal(rc, TRIFLE_ENOMEM);
        assert_string_equal(err.message, "out of memory");
        assert_null(z);
    }
    assert_true(n > 0);
    /* no block of the cache can be filled from now on */
    oom_budget = 0;
    for (size_t gi = 0; gi < N_GRANS; gi++) {
        trifle_granularity g = gran(grans[gi]);
        for (int i = 0; i < N_X; i++) {
            int64_t b = 0;
            assert_int_equal(trifle_floor(&b, z, TRIFLE_MONDAY, &g, x0 + i * 1800, NULL), 0);
            if (b != want[gi][i])
                fail_msg("%s at %lld: %lld without cache, %lld with", g.label,
                         (long long)(x0 + i * 1800), (long long)b, (long long)want[gi][i]);
        }
    }
    char buf[40];
    (void)trifle_time_format(buf, sizeof(buf), 1762056000, z);
    assert_string_equal(buf, "2025-11-02T00:00:00-04:00");
    int64_t *pts = (int64_t *)&n;
    size_t np = 5;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_granularity g1h = gran("1h");
    assert_int_equal(trifle_timeline(&pts, &np, z, 1, &g1h, 1762056000, 1762066000, 0, &err),
                     TRIFLE_ENOMEM);
    assert_null(pts);
    assert_int_equal(np, 0);
    oom_budget = -1;
    trifle_zone_free(z);
    oom_end();
}

/* ---------------------------------------------------------------------------------------------
 * resolve, add, ranges, zones */

static void test_resolve(void **state)
{
    (void)state;
    const trifle_zone *ny = test_zone("America/New_York"), *lh = test_zone("Australia/Lord_Howe");
    int64_t w0130 = tu_days_from_civil(2025, 11, 2) * 86400 + 5400;
    /* ambiguous: the earlier, unless the preference names the later */
    assert_int_equal(trifle__resolve(ny, w0130, 0, 0), w0130 + 4 * 3600);
    assert_int_equal(trifle__resolve(ny, w0130, 1, -5 * 3600), w0130 + 5 * 3600);
    assert_int_equal(trifle__resolve(ny, w0130, 1, -4 * 3600), w0130 + 4 * 3600);
    assert_int_equal(trifle__resolve(ny, w0130, 1, 3600), w0130 + 4 * 3600);
    /* nonexistent: forward by the real gap, 1 h in New York, 30 min on Lord Howe */
    int64_t w0230 = tu_days_from_civil(2025, 3, 9) * 86400 + 9000;
    assert_int_equal(trifle__resolve(ny, w0230, 0, 0), w0230 + 5 * 3600);
    int64_t lh0215 = tu_days_from_civil(2025, 10, 5) * 86400 + 8100;
    char buf[40];
    assert_string_equal(fmt(buf, trifle__resolve(lh, lh0215, 0, 0), lh),
                        "2025-10-05T02:45:00+11:00");
    /* unique */
    assert_int_equal(trifle__resolve(NULL, 1736935200, 0, 0), 1736935200);
    assert_int_equal(trifle__resolve(ny, w0130 - 86400, 1, 0), w0130 - 86400 + 4 * 3600);
}

static void expect_einval(int rc, const trifle_error *err, const char *message)
{
    assert_int_equal(rc, TRIFLE_EINVAL);
    assert_int_equal(err->code, TRIFLE_EINVAL);
    assert_string_equal(err->message, message);
}

static void test_ranges(void **state)
{
    (void)state;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_granularity g1s = gran("1s"), g1y = gran("1y"), g5000y = gran("5000y");
    int64_t b = 0;
    const trifle_zone *bts = test_zone("Europe/Bratislava");
    assert_int_equal(trifle_floor(&b, NULL, 1, &g1s, TRIFLE__TIME_MIN, &err), 0);
    assert_int_equal(b, TRIFLE__TIME_MIN);
    assert_int_equal(trifle_floor(&b, bts, 1, &g1s, TRIFLE__TIME_MAX, &err), 0);
    assert_int_equal(b, TRIFLE__TIME_MAX);
    expect_einval(trifle_floor(&b, NULL, 1, &g1s, TRIFLE__TIME_MIN - 1, &err), &err,
                  "time out of range");
    expect_einval(trifle_floor(&b, bts, 1, &g1s, TRIFLE__TIME_MAX + 1, &err), &err,
                  "time out of range");
    expect_einval(trifle_floor(&b, NULL, 1, &g1s, INT64_MIN, &err), &err, "time out of range");
    /* the floor of an in-range instant may precede 1900 (1900-01-01T00:30Z is 01:30 local) */
    assert_int_equal(trifle_floor(&b, bts, 1, &g1y, TRIFLE__TIME_MIN + 1800, &err), 0);
    assert_true(b < TRIFLE__TIME_MIN);
    /* `5000y` floors 2025 to year 0 */
    expect_einval(trifle_floor(&b, NULL, 1, &g5000y, 1736937465, &err), &err, "time out of range");
    assert_int_equal(trifle_floor(&b, NULL, 1, &g5000y, TRIFLE__TIME_MAX, &err), 0);
    assert_int_equal(b, tu_days_from_civil(5000, 1, 1) * 86400);
    /* bad arguments */
    trifle_granularity bad = g1s;
    bad.offset = 0;
    assert_int_equal(trifle_floor(&b, NULL, 1, &bad, 0, &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_floor(&b, NULL, 7, &g1s, 0, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "invalid week start: 7");
    assert_int_equal(trifle_floor(&b, NULL, 1, NULL, 0, &err), TRIFLE_EINVAL);

    /* add */
    expect_einval(trifle_add(&b, NULL, TRIFLE__TIME_MAX, 1, TRIFLE_UNIT_SECOND, &err), &err,
                  "time out of range");
    expect_einval(trifle_add(&b, NULL, 0, INT64_MAX, TRIFLE_UNIT_HOUR, &err), &err,
                  "time out of range");
    expect_einval(trifle_add(&b, bts, 0, INT64_MIN, TRIFLE_UNIT_DAY, &err), &err,
                  "time out of range");
    expect_einval(trifle_add(&b, bts, 0, INT64_MAX / 2, TRIFLE_UNIT_YEAR, &err), &err,
                  "time out of range");
    expect_einval(trifle_add(&b, bts, 0, 8030, TRIFLE_UNIT_YEAR, &err), &err, "time out of range");
    assert_int_equal(trifle_add(&b, NULL, 0, 8029, TRIFLE_UNIT_YEAR, &err), 0);
    assert_int_equal(b, tu_days_from_civil(9999, 1, 1) * 86400);
    assert_int_equal(trifle_add(&b, NULL, TRIFLE__TIME_MAX, -8099, TRIFLE_UNIT_YEAR, &err), 0);
    assert_int_equal(b, tu_days_from_civil(1900, 12, 31) * 86400 + 86399);
    assert_int_equal(trifle_add(&b, NULL, 0, -7, TRIFLE_UNIT_QUARTER, &err), 0);
    assert_int_equal(b, tu_days_from_civil(1968, 4, 1) * 86400);
    assert_int_equal(trifle_add(&b, NULL, 0, 1, 8, &err), TRIFLE_EINVAL);

    /* timeline */
    int64_t *pts = (int64_t *)&b;
    size_t n = 99;
    trifle_granularity g1h = gran("1h");
    assert_int_equal(trifle_timeline(&pts, &n, bts, 1, &g1h, 7200, 3600, 0, &err), 0);
    assert_null(pts);
    assert_int_equal(n, 0);
    assert_int_equal(trifle_timeline(&pts, &n, bts, 1, &g1h, 3600, 3600 + 10 * 3600, 11, &err), 0);
    assert_int_equal(n, 11);
    trifle_mem_free(pts);
    expect_einval(trifle_timeline(&pts, &n, bts, 1, &g1h, 3600, 3600 + 10 * 3600, 10, &err), &err,
                  "timeline too long: more than 10 points");
    assert_null(pts);
    assert_int_equal(n, 0);
    expect_einval(trifle_timeline(&pts, &n, bts, 1, &g1h, 0, TRIFLE__TIME_MAX + 1, 0, &err), &err,
                  "time out of range");
    /* the whole range at 1y, both ends included: 9999-12-31T23:59:59Z is already 10000-01-01
     * in Bratislava, so 1900 ... 10000 */
    trifle_granularity g1y_ = gran("1y");
    assert_int_equal(trifle_timeline(&pts, &n, bts, 1, &g1y_, TRIFLE__TIME_MIN + 7200,
                                     TRIFLE__TIME_MAX, 0, &err),
                     0);
    assert_int_equal(n, 10001 - 1900);
    trifle_mem_free(pts);
}

static void expect_unknown_zone(const char *name)
{
    trifle_zone *z = (trifle_zone *)&z;
    trifle_error err = TRIFLE_ERROR_INIT;
    char want[300];
    (void)snprintf(want, sizeof(want), "unknown time zone: %s", name ? name : "");
    assert_int_equal(trifle_zone_open(&z, name, &err), TRIFLE_ECONFIG);
    assert_null(z);
    assert_int_equal(err.code, TRIFLE_ECONFIG);
    assert_string_equal(err.message, want);
}

static void test_zone_names(void **state)
{
    (void)state;
    static const char *const good[] = {
        "UTC",     "Europe/Bratislava",      "Etc/GMT+1", "America/Argentina/Buenos_Aires",
        "EST5EDT", "America/Port-au-Prince", "Etc/UTC",   "GMT"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        trifle_zone *z = NULL;
        trifle_error err = TRIFLE_ERROR_INIT;
        assert_int_equal(trifle_zone_open(&z, good[i], &err), 0);
        assert_string_equal(trifle_zone_name(z), good[i]);
        trifle_zone_free(z);
    }
    static const char *const bad[] = {"",
                                      "+01:00",
                                      "-05:00",
                                      "+0100",
                                      "Z",
                                      "z",
                                      "utc",
                                      "Foo/Bar",
                                      "GMT+1",
                                      "UTC+3",
                                      "EST5",
                                      "XYZ",
                                      " UTC",
                                      "UTC ",
                                      "localtime",
                                      "posixrules",
                                      "zone.tab",
                                      "tzdata.zi",
                                      "leapseconds",
                                      "/etc/localtime",
                                      "../zoneinfo/UTC",
                                      "Europe//Bratislava",
                                      "Europe/Bratislava/",
                                      "posix/Europe/Bratislava",
                                      "right/Europe/Bratislava",
                                      "CET-1CEST,M3.5.0,M10.5.0/3",
                                      "europe/bratislava",
                                      "Europe",
                                      "Europe/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_unknown_zone(bad[i]);
    expect_unknown_zone(NULL);
    char longname[400];
    memset(longname, 'A', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    trifle_zone *z = NULL;
    assert_int_equal(trifle_zone_open(&z, longname, NULL), TRIFLE_ECONFIG);
    assert_int_equal(trifle_zone_open(NULL, "UTC", NULL), TRIFLE_EINVAL);
    /* offsets */
    assert_int_equal(trifle_zone_offset(NULL, 1751328000), 0);
    assert_int_equal(trifle_zone_offset(test_zone("Europe/Bratislava"), 1751328000), 7200);
    assert_int_equal(trifle_zone_offset(test_zone("Europe/Bratislava"), 1736937465), 3600);
    assert_int_equal(trifle_zone_offset(test_zone("Asia/Kolkata"), INT64_MAX), 19800);
    assert_int_equal(trifle_zone_offset(test_zone("UTC"), INT64_MIN), 0);
    assert_string_equal(trifle_zone_name(NULL), "UTC");
    trifle_zone_free(NULL);
}

/* The grid examples of SPEC §2.3 on wall values. */
static void test_grids(void **state)
{
    (void)state;
    const int64_t d = 86400;
    int64_t h10 = tu_days_from_civil(2025, 1, 15) * d + 10 * 3600;
    trifle_granularity g = gran("7m");
    assert_int_equal(trifle__grid_floor(&g, 1, h10 + 59 * 60), h10 + 56 * 60);
    assert_int_equal(trifle__grid_next(&g, 1, h10 + 56 * 60), h10 + 3600);
    assert_int_equal(trifle__grid_next(&g, 1, h10 + 55 * 60), h10 + 56 * 60);
    assert_int_equal(trifle__grid_ceil(&g, 1, h10 + 56 * 60), h10 + 56 * 60);
    assert_int_equal(trifle__grid_ceil(&g, 1, h10 + 56 * 60 + 1), h10 + 3600);
    g = gran("5h");
    assert_int_equal(trifle__grid_next(&g, 1, h10 + 10 * 3600), h10 + 14 * 3600);
    g = gran("2d");
    int64_t dec30 = tu_days_from_civil(2024, 12, 30) * d;
    assert_int_equal(trifle__grid_floor(&g, 1, dec30 + d + 5), dec30);
    assert_int_equal(trifle__grid_next(&g, 1, dec30), dec30 + 2 * d);
    g = gran("1w");
    int64_t jan1 = tu_days_from_civil(2025, 1, 1) * d; /* a Wednesday */
    assert_int_equal(trifle__grid_floor(&g, TRIFLE_MONDAY, jan1 + 4 * d), jan1);
    assert_int_equal(trifle__grid_next(&g, TRIFLE_MONDAY, jan1), jan1 + 5 * d);
    assert_int_equal(trifle__grid_next(&g, TRIFLE_WEDNESDAY, jan1), jan1 + 7 * d);
    assert_int_equal(trifle__grid_next(&g, TRIFLE_MONDAY, jan1 + 362 * d), jan1 + 365 * d);
    g = gran("5mo");
    assert_int_equal(trifle__grid_next(&g, 1, tu_days_from_civil(2025, 11, 3) * d),
                     tu_days_from_civil(2026, 1, 1) * d);
    assert_int_equal(trifle__grid_floor(&g, 1, tu_days_from_civil(2025, 10, 3) * d),
                     tu_days_from_civil(2025, 6, 1) * d);
    g = gran("3q");
    assert_int_equal(trifle__grid_next(&g, 1, tu_days_from_civil(2025, 2, 3) * d),
                     tu_days_from_civil(2025, 10, 1) * d);
    assert_int_equal(trifle__grid_next(&g, 1, tu_days_from_civil(2025, 11, 3) * d),
                     tu_days_from_civil(2026, 1, 1) * d);
    g = gran("10y");
    assert_int_equal(trifle__grid_floor(&g, 1, tu_days_from_civil(2025, 6, 1) * d),
                     tu_days_from_civil(2020, 1, 1) * d);
    assert_int_equal(trifle__grid_next(&g, 1, tu_days_from_civil(2025, 6, 1) * d),
                     tu_days_from_civil(2030, 1, 1) * d);
    /* civil round trip over a wide span, including year 0 and negative days */
    for (int64_t day = -800000; day <= 3000000; day += 997) {
        int64_t y;
        int m, dd;
        tu_civil_from_days(day, &y, &m, &dd);
        assert_true(m >= 1 && m <= 12 && dd >= 1 && dd <= tu_days_in_month(y, m));
        assert_int_equal(tu_days_from_civil(y, m, dd), day);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]); /* e.g. unit_nocturnal 'test_floor*' */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_floor_vectors),
        cmocka_unit_test(test_add_vectors),
        cmocka_unit_test(test_timeline_vectors),
        cmocka_unit_test(test_grids),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_zone_names),
        cmocka_unit_test(test_definition_around_2025_transitions),
        cmocka_unit_test(test_definition_historical),
        cmocka_unit_test(test_cache_matches_glib),
        cmocka_unit_test(test_concurrent_first_use),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
