/* Simple Stats (SPEC §10.1–§10.5, §10.8, ERRATA B7, minor 6 and 7): API rules, saturation, kinds,
 * the buffered FIFO (order, losslessness when full, two threads), persistence (round trip, INFINI
 * format, corrupt files, failing saves, kill -9 at random moments), the JSON and Prometheus
 * renderings (exact text, and `promtool check metrics`), providers and system figures.
 *
 * `unit_simple --promtool` only checks a representative rendering with promtool and exits 0, 1,
 * or 77 when promtool is missing and CI is unset (for a ctest entry with SKIP_RETURN_CODE 77). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "simple_int.h"
#include "trifle/simple.h"
#include "unit_helpers.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers */

static char tmp_root[256];

static int setup(void **state)
{
    (void)state;
    trifle_simple_reset();
    trifle__simple_set_clock(NULL);
    return test_mkdtemp(tmp_root, sizeof(tmp_root), "simple");
}

static int teardown(void **state)
{
    (void)state;
    trifle_simple_reset();
    trifle__simple_set_clock(NULL);
    test_rm_rf(tmp_root);
    return 0;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

static void path_of(char *out, size_t n, const char *rel)
{
    (void)snprintf(out, n, "%s/%s", tmp_root, rel);
}

static void configure_persist(int no_buffer)
{
    trifle_simple_options o;
    trifle_error err = TRIFLE_ERROR_INIT;

    trifle_simple_options_init(&o);
    o.data_dir = tmp_root;
    o.no_buffer = no_buffer;
    if (trifle_simple_configure(&o, &err) != 0)
        fail_msg("configure: %s", err.message);
}

static int64_t get(const char *cat, const char *name)
{
    int64_t v = 0;
    trifle_error err = TRIFLE_ERROR_INIT;

    if (trifle_simple_get(cat, name, &v, &err) != 0)
        fail_msg("get %s %s: %s", cat, name, err.message);
    return v;
}

static int kind(const char *cat, const char *name)
{
    int k = -1;
    assert_int_equal(trifle_simple_get_kind(cat, name, &k, NULL), 0);
    return k;
}

/* The rendering by @p fn (trifle_simple_render_json or _prometheus), which must succeed. */
static char *render(int (*fn)(char **out, trifle_error *err))
{
    char *out = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;

    if (fn(&out, &err) != 0)
        fail_msg("render %s: %s", fn == trifle_simple_render_json ? "json" : "prometheus",
                 err.message);
    return out;
}

/* ---------------------------------------------------------------------------------------------
 * API rules */

static void test_names(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    char longest[TRIFLE_SIMPLE_NAME_MAX + 2];
    int64_t v;
    const char *bad[] = {"", "\xff", "\xc0\x80", "\xed\xa0\x80", "a\xe2\x82", "\xf4\x90\x80\x80"};
    size_t i;

    (void)state;
    memset(longest, 'x', sizeof(longest));
    longest[TRIFLE_SIMPLE_NAME_MAX] = '\0';
    assert_int_equal(trifle_simple_incr(longest, longest, 1, &err), 0);
    assert_int_equal(get(longest, longest), 1);
    longest[TRIFLE_SIMPLE_NAME_MAX] = 'x';
    longest[TRIFLE_SIMPLE_NAME_MAX + 1] = '\0';
    assert_int_equal(trifle_simple_incr(longest, "n", 1, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "invalid stats name");
    assert_int_equal(trifle_simple_incr("c", longest, 1, &err), TRIFLE_EINVAL);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        trifle_error_clear(&err);
        assert_int_equal(trifle_simple_incr(bad[i], "n", 1, &err), TRIFLE_EINVAL);
        assert_int_equal(err.code, TRIFLE_EINVAL);
        assert_string_equal(err.message, "invalid stats name");
        assert_int_equal(trifle_simple_gauge("c", bad[i], 1, NULL), TRIFLE_EINVAL);
        assert_int_equal(trifle_simple_get("c", bad[i], &v, NULL), TRIFLE_EINVAL);
    }
    assert_int_equal(trifle_simple_incr(NULL, "n", 1, NULL), TRIFLE_EINVAL);
    assert_int_equal(trifle_simple_decr("c", NULL, 1, NULL), TRIFLE_EINVAL);
    assert_int_equal(trifle_simple_get("c", "n", NULL, NULL), TRIFLE_EINVAL);
    /* nothing was created by the failures */
    assert_int_equal(trifle_simple_get("c", "n", &v, &err), TRIFLE_ENOTFOUND);
    assert_string_equal(err.message, "no stats entry c n");
    /* UTF-8 and dots are fine */
    assert_int_equal(trifle_simple_incr("h\xc3\xa9llo", "a.b.\xf0\x9f\x98\x80", 2, NULL), 0);
    assert_int_equal(get("h\xc3\xa9llo", "a.b.\xf0\x9f\x98\x80"), 2);
}

static void test_get_never_creates(void **state)
{
    int64_t v = 42;
    char *json;

    (void)state;
    assert_int_equal(trifle_simple_get("api", "nope", &v, NULL), TRIFLE_ENOTFOUND);
    assert_int_equal(v, 42);
    json = render(trifle_simple_render_json);
    assert_string_equal(json, "{\n \"stats\": {}\n}\n");
    trifle_mem_free(json);
    assert_int_equal(trifle_simple_decr("q", "depth", 3, NULL), 0);
    assert_int_equal(get("q", "depth"), -3); /* negative values come back as they are */
}

static void test_saturation(void **state)
{
    (void)state;
    assert_int_equal(trifle_simple_incr("s", "a", INT64_MAX - 1, NULL), 0);
    assert_int_equal(trifle_simple_incr("s", "a", 5, NULL), 0);
    assert_true(get("s", "a") == INT64_MAX);
    assert_int_equal(trifle_simple_incr("s", "a", INT64_MAX, NULL), 0);
    assert_true(get("s", "a") == INT64_MAX);
    assert_int_equal(kind("s", "a"), TRIFLE_SIMPLE_COUNTER);

    assert_int_equal(trifle_simple_decr("s", "b", 5, NULL), 0);
    assert_int_equal(trifle_simple_decr("s", "b", INT64_MAX, NULL), 0);
    assert_true(get("s", "b") == INT64_MIN);
    assert_int_equal(trifle_simple_incr("s", "b", -1, NULL), 0);
    assert_true(get("s", "b") == INT64_MIN);
    assert_int_equal(trifle_simple_incr("s", "b", INT64_MIN, NULL), 0);
    assert_true(get("s", "b") == INT64_MIN);

    /* decr by INT64_MIN is +2^63: saturates instead of overflowing */
    assert_int_equal(trifle_simple_decr("s", "c", INT64_MIN, NULL), 0);
    assert_true(get("s", "c") == INT64_MAX);
    assert_int_equal(trifle_simple_absolute("s", "d", -1, NULL), 0);
    assert_int_equal(trifle_simple_decr("s", "d", INT64_MIN, NULL), 0);
    assert_true(get("s", "d") == INT64_MAX - 0); /* -1 + 2^63 = INT64_MAX exactly */
    assert_int_equal(trifle_simple_absolute("s", "e", INT64_MIN, NULL), 0);
    assert_int_equal(trifle_simple_incr("s", "e", INT64_MAX, NULL), 0);
    assert_int_equal(get("s", "e"), -1);
}

static void test_kinds(void **state)
{
    (void)state;
    assert_int_equal(trifle_simple_incr("k", "a", 3, NULL), 0);
    assert_int_equal(trifle_simple_incr("k", "a", 0, NULL), 0);
    assert_int_equal(kind("k", "a"), TRIFLE_SIMPLE_COUNTER);
    assert_int_equal(trifle_simple_incr("k", "a", -1, NULL), 0);
    assert_int_equal(kind("k", "a"), TRIFLE_SIMPLE_GAUGE);
    assert_int_equal(trifle_simple_incr("k", "a", 10, NULL), 0);
    assert_int_equal(kind("k", "a"), TRIFLE_SIMPLE_GAUGE); /* for good */
    assert_int_equal(get("k", "a"), 12);

    assert_int_equal(trifle_simple_decr("k", "b", 0, NULL), 0);
    assert_int_equal(kind("k", "b"), TRIFLE_SIMPLE_GAUGE);
    assert_int_equal(trifle_simple_decr("k", "c", -4, NULL), 0); /* any decr */
    assert_int_equal(get("k", "c"), 4);
    assert_int_equal(kind("k", "c"), TRIFLE_SIMPLE_GAUGE);
    assert_int_equal(trifle_simple_incr("k", "d", 1, NULL), 0);
    assert_int_equal(trifle_simple_absolute("k", "d", 7, NULL), 0);
    assert_int_equal(kind("k", "d"), TRIFLE_SIMPLE_GAUGE);
    assert_int_equal(get("k", "d"), 7);
    assert_int_equal(trifle_simple_incr("k", "e", 1, NULL), 0);
    assert_int_equal(trifle_simple_gauge("k", "e", 9, NULL), 0);
    assert_int_equal(kind("k", "e"), TRIFLE_SIMPLE_GAUGE);
    assert_int_equal(get("k", "e"), 9);
}

static int calls;
static int count_calls(trifle_simple_writer *w, trifle_error *err, void *payload)
{
    (void)err;
    (void)payload;
    calls++;
    return trifle_simple_writer_int(w, "x", 1);
}

static void test_disabled(void **state)
{
    trifle_simple_options o;
    trifle_error err = TRIFLE_ERROR_INIT;
    int64_t v = 5;
    char *out = NULL;

    (void)state;
    assert_int_equal(trifle_simple_incr("a", "b", 1, NULL), 0);
    trifle_simple_options_init(&o);
    o.enabled = 0; /* persist without data_dir is fine when disabled */
    assert_int_equal(trifle_simple_configure(&o, &err), 0);
    assert_int_equal(trifle_simple_incr("a", "b", 1, NULL), 0);
    assert_int_equal(trifle_simple_incr("", "", 1, NULL), 0); /* a no-op, even for bad names */
    assert_int_equal(trifle_simple_gauge("a", "c", 1, NULL), 0);
    assert_int_equal(trifle_simple_get("a", "b", &v, NULL), 0);
    assert_int_equal(v, 0);
    assert_int_equal(trifle_simple_register("x", count_calls, NULL, NULL), 0);
    assert_int_equal(trifle_simple_start(&err), 0);
    assert_int_equal(trifle_simple_save(&err), 0);
    assert_int_equal(trifle_simple_render_json(&out, &err), 0);
    assert_string_equal(out, "{}\n");
    trifle_mem_free(out);
    assert_int_equal(trifle_simple_render_prometheus(&out, &err), 0);
    assert_string_equal(out, "");
    trifle_mem_free(out);
    assert_int_equal(calls, 0);
    assert_int_equal(trifle_simple_stop(&err), 0);
    /* enabling again shows the entry as it was before disabling */
    assert_int_equal(trifle_simple_configure(NULL, &err), 0);
    assert_int_equal(get("a", "b"), 1);
    assert_int_equal(trifle_simple_get("a", "c", &v, NULL), TRIFLE_ENOTFOUND);
}

static void expect_set_error(const char *key, const char *value, const char *msg)
{
    trifle_simple_options o;
    trifle_error err = TRIFLE_ERROR_INIT;

    trifle_simple_options_init(&o);
    assert_int_equal(trifle_simple_options_set(&o, key, value, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, msg);
}

static void expect_configure_error(const trifle_simple_options *o, const char *msg)
{
    trifle_error err = TRIFLE_ERROR_INIT;

    assert_int_equal(trifle_simple_configure(o, &err), TRIFLE_ECONFIG);
    assert_int_equal(err.code, TRIFLE_ECONFIG);
    assert_string_equal(err.message, msg);
}

/* Option @p field of @p o set to @p bad is refused with @p msg; it gets its old value back. */
static void expect_out_of_range(trifle_simple_options *o, int64_t *field, int64_t bad,
                                const char *msg)
{
    int64_t good = *field;

    *field = bad;
    expect_configure_error(o, msg);
    *field = good;
}

static void test_options(void **state)
{
    /* label names Prometheus or the module refuse (__reserved is the first, below) */
    static const char *const bad_labels[] = {"9lives", "a-b", "path", "le", "camelCase"};
    /* option, refused value, message */
    static const char *const refused[][3] = {
        /* the server's stats keys are not the module's (server/config.c reads them) */
        {"public", "yes", "unknown configuration key stats.public"},
        {"include_storage_stats_in_api", "0",
         "unknown configuration key stats.include_storage_stats_in_api"},
        {"buffer_size", "0", "invalid stats option buffer_size: 0"},
        {"buffer_size", "1048577", "invalid stats option buffer_size: 1048577"},
        {"buffer_size", "1k", "invalid stats option buffer_size: 1k"},
        {"buffer_size", "", "invalid stats option buffer_size: "},
        {"flush_interval_ms", "0", "invalid stats option flush_interval_ms: 0"},
        {"flush_interval_ms", "3600001", "invalid stats option flush_interval_ms: 3600001"},
        {"checkpoint_interval_ms", "99", "invalid stats option checkpoint_interval_ms: 99"},
        {"checkpoint_interval_ms", "86400001",
         "invalid stats option checkpoint_interval_ms: 86400001"},
        {"checkpoint_interval_ms", "99999999999999999999",
         "invalid stats option checkpoint_interval_ms: 99999999999999999999"},
        {"enabled", "maybe", "invalid stats option enabled: maybe"},
        {"bogus", "1", "unknown configuration key stats.bogus"},
    };
    trifle_simple_options o;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_simple_label labels[2];
    size_t i;

    (void)state;
    trifle_simple_options_init(&o);
    assert_int_equal(o.struct_size, sizeof(o));
    assert_true(o.enabled && o.persist && o.no_buffer);
    assert_int_equal(o.buffer_size, 1000);
    assert_int_equal(o.flush_interval_ms, 1000);
    assert_int_equal(o.checkpoint_interval_ms, 10000);

    assert_int_equal(trifle_simple_options_set(&o, "buffer_size", "1", &err), 0);
    assert_int_equal(trifle_simple_options_set(&o, "buffer_size", "1048576", &err), 0);
    assert_int_equal(o.buffer_size, 1048576);
    assert_int_equal(trifle_simple_options_set(&o, "flush_interval_ms", "1", &err), 0);
    assert_int_equal(o.flush_interval_ms, 1); /* not replaced by 1000 as INFINI did */
    assert_int_equal(trifle_simple_options_set(&o, "checkpoint_interval_ms", "86400000", &err), 0);
    assert_int_equal(trifle_simple_options_set(&o, "no_buffer", "off", &err), 0);
    assert_int_equal(o.no_buffer, 0);
    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        expect_set_error(refused[i][0], refused[i][1], refused[i][2]);

    /* the same ranges when the struct is filled directly */
    trifle_simple_options_init(&o);
    o.persist = 0;
    expect_out_of_range(&o, &o.buffer_size, 0, "invalid stats option buffer_size: 0");
    expect_out_of_range(&o, &o.buffer_size, 1048577, "invalid stats option buffer_size: 1048577");
    expect_out_of_range(&o, &o.flush_interval_ms, 3600001,
                        "invalid stats option flush_interval_ms: 3600001");
    expect_out_of_range(&o, &o.checkpoint_interval_ms, 99,
                        "invalid stats option checkpoint_interval_ms: 99");
    o.persist = 1;
    expect_configure_error(&o, "invalid stats option data_dir: required when persist is true");
    o.persist = 0;

    labels[0].name = "env";
    labels[0].value = "prod";
    labels[1].name = "__reserved";
    labels[1].value = "x";
    o.prometheus_labels = labels;
    o.n_prometheus_labels = 2;
    expect_configure_error(&o, "invalid stats option prometheus_labels: __reserved");
    for (i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++) {
        char msg[96];
        labels[1].name = bad_labels[i];
        (void)snprintf(msg, sizeof(msg), "invalid stats option prometheus_labels: %s",
                       bad_labels[i]);
        expect_configure_error(&o, msg);
    }
    labels[1].name = "ok";
    labels[1].value = "\xff";
    expect_configure_error(&o, "invalid stats option prometheus_labels.ok: value is not UTF-8");
    labels[1].value = "fine";
    assert_int_equal(trifle_simple_configure(&o, &err), 0);

    o.struct_size = sizeof(o) + 8;
    {
        char msg[64];
        (void)snprintf(msg, sizeof(msg), "invalid stats option struct_size: %zu", sizeof(o) + 8);
        expect_configure_error(&o, msg);
    }
    o.struct_size = sizeof(o);

    assert_int_equal(trifle_simple_start(&err), 0);
    assert_int_equal(trifle_simple_start(&err), TRIFLE_EBUSY);
    assert_int_equal(trifle_simple_configure(&o, &err), TRIFLE_EBUSY);
    assert_string_equal(err.message, "stats module is running");
    assert_int_equal(trifle_simple_save(&err), TRIFLE_ENOTSUP);
    assert_int_equal(trifle_simple_stop(&err), 0);
    assert_int_equal(trifle_simple_stop(&err), 0);
    assert_int_equal(trifle_simple_configure(&o, &err), 0);
}

/* ---------------------------------------------------------------------------------------------
 * Buffering */

static void configure_buffered(int64_t size, int64_t flush_ms)
{
    trifle_simple_options o;
    trifle_error err = TRIFLE_ERROR_INIT;

    trifle_simple_options_init(&o);
    o.persist = 0;
    o.no_buffer = 0;
    o.buffer_size = size;
    o.flush_interval_ms = flush_ms;
    if (trifle_simple_configure(&o, &err) != 0)
        fail_msg("configure: %s", err.message);
}

static void test_buffered_order(void **state)
{
    int i;

    (void)state;
    /* no consumer thread (not started): only reads and a full FIFO apply updates */
    configure_buffered(4, 3600000);
    assert_int_equal(trifle_simple_incr("o", "a", 5, NULL), 0);
    assert_int_equal(trifle_simple_absolute("o", "a", 1, NULL), 0);
    assert_int_equal(trifle_simple_incr("o", "a", 2, NULL), 0);
    assert_int_equal(get("o", "a"), 3); /* the read drained in order: 5, =1, +2 */
    assert_int_equal(kind("o", "a"), TRIFLE_SIMPLE_GAUGE);

    /* a full FIFO: the producer drains it itself, in order, then applies its own update */
    for (i = 0; i < 1000; i++) {
        assert_int_equal(trifle_simple_incr("o", "b", 1, NULL), 0);
        if (i % 7 == 6)
            assert_int_equal(trifle_simple_gauge("o", "b", 100 * i, NULL), 0);
    }
    /* last gauge at i = 993 (100 * 993), then 6 increments */
    assert_int_equal(get("o", "b"), 99300 + 6);

    /* invalid names are refused at once, not queued */
    assert_int_equal(trifle_simple_incr("o", "\xff", 1, NULL), TRIFLE_EINVAL);
    assert_int_equal(trifle_simple_incr("o", "", 1, NULL), TRIFLE_EINVAL);

    /* switching back to unbuffered applies what is queued first */
    assert_int_equal(trifle_simple_incr("o", "c", 1, NULL), 0);
    assert_int_equal(trifle_simple_configure(NULL, NULL), 0);
    assert_int_equal(trifle_simple_incr("o", "c", 1, NULL), 0);
    assert_int_equal(get("o", "c"), 2);
}

#define THREAD_OPS 100000

static void *hammer(void *arg)
{
    const char *own = arg;
    int i;

    for (i = 0; i < THREAD_OPS; i++) {
        if (trifle_simple_incr("t", own, 1, NULL) != 0 ||
            trifle_simple_incr("t", "shared", 1, NULL) != 0 ||
            trifle_simple_decr("t", "down", 1, NULL) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_buffered_threads_exact(void **state)
{
    pthread_t a, b;
    void *ra, *rb;
    trifle_error err = TRIFLE_ERROR_INIT;

    (void)state;
    configure_buffered(16, 1); /* tiny FIFO: producers keep finding it full */
    assert_int_equal(trifle_simple_start(&err), 0);
    assert_int_equal(pthread_create(&a, NULL, hammer, "a"), 0);
    assert_int_equal(pthread_create(&b, NULL, hammer, "b"), 0);
    assert_int_equal(pthread_join(a, &ra), 0);
    assert_int_equal(pthread_join(b, &rb), 0);
    assert_null(ra);
    assert_null(rb);
    assert_int_equal(get("t", "a"), THREAD_OPS);
    assert_int_equal(get("t", "b"), THREAD_OPS);
    assert_int_equal(get("t", "shared"), 2 * THREAD_OPS);
    assert_int_equal(get("t", "down"), -2 * THREAD_OPS);
    assert_int_equal(kind("t", "shared"), TRIFLE_SIMPLE_COUNTER);
    assert_int_equal(trifle_simple_stop(&err), 0);

    /* the same through the consumer alone: a FIFO large enough never to fill */
    trifle_simple_reset();
    configure_buffered(1048576, 1);
    assert_int_equal(trifle_simple_start(&err), 0);
    assert_int_equal(pthread_create(&a, NULL, hammer, "a"), 0);
    assert_int_equal(pthread_create(&b, NULL, hammer, "b"), 0);
    assert_int_equal(pthread_join(a, &ra), 0);
    assert_int_equal(pthread_join(b, &rb), 0);
    assert_int_equal(trifle_simple_stop(&err), 0);
    assert_int_equal(get("t", "shared"), 2 * THREAD_OPS);
    assert_int_equal(get("t", "down"), -2 * THREAD_OPS);
}

static void test_unbuffered_threads_exact(void **state)
{
    pthread_t a, b;

    (void)state;
    assert_int_equal(pthread_create(&a, NULL, hammer, "a"), 0);
    assert_int_equal(pthread_create(&b, NULL, hammer, "b"), 0);
    assert_int_equal(pthread_join(a, NULL), 0);
    assert_int_equal(pthread_join(b, NULL), 0);
    assert_int_equal(get("t", "shared"), 2 * THREAD_OPS);
    assert_int_equal(get("t", "a"), THREAD_OPS);
}

static void test_consumer_drains_without_reads(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    int i;

    (void)state;
    configure_buffered(1000, 5);
    assert_int_equal(trifle_simple_start(&err), 0);
    assert_int_equal(trifle_simple_incr("c", "n", 3, NULL), 0);
    /* below the wake-up mark: the consumer finds it after its nap, with no read to help */
    for (i = 0; i < 2000 && trifle__simple_queued() > 0; i++) {
        struct timespec ts = {0, 1000000};
        (void)nanosleep(&ts, NULL);
    }
    assert_int_equal(trifle__simple_queued(), 0);
    assert_int_equal(get("c", "n"), 3);
    assert_int_equal(trifle_simple_stop(&err), 0);
}

static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER;
static int hook_seen[2][4];
static int hook_in_main;
static pthread_t main_thread;

static void thread_hook(const char *role, int event, void *payload)
{
    int r = strcmp(role, "stats-consumer") == 0     ? 0
            : strcmp(role, "stats-checkpoint") == 0 ? 1
                                                    : -1;

    assert_ptr_equal(payload, &hook_seen);
    assert_true(r >= 0 && event >= 0 && event <= 3);
    pthread_mutex_lock(&hook_lock);
    hook_seen[r][event]++;
    if (pthread_equal(pthread_self(), main_thread))
        hook_in_main = 1;
    pthread_mutex_unlock(&hook_lock);
}

static void test_thread_hook(void **state)
{
    trifle_simple_options o;
    trifle_error err = TRIFLE_ERROR_INIT;
    int r, started[2];

    (void)state;
    main_thread = pthread_self();
    memset(hook_seen, 0, sizeof(hook_seen));
    trifle_simple_set_thread_hook(thread_hook, &hook_seen);
    trifle_simple_options_init(&o);
    o.data_dir = tmp_root;
    o.no_buffer = 0;
    o.flush_interval_ms = 1;
    assert_int_equal(trifle_simple_configure(&o, &err), 0);
    assert_int_equal(trifle_simple_start(&err), 0);
    /* start returns only after both threads told START (the server's /debug/threads relies on it)
     */
    pthread_mutex_lock(&hook_lock);
    started[0] = hook_seen[0][TRIFLE_SIMPLE_THREAD_START];
    started[1] = hook_seen[1][TRIFLE_SIMPLE_THREAD_START];
    pthread_mutex_unlock(&hook_lock);
    assert_int_equal(started[0], 1);
    assert_int_equal(started[1], 1);
    assert_int_equal(trifle_simple_incr("h", "n", 1, NULL), 0);
    /* wait (bounded) until the consumer reported a drain: waiting for an empty queue is not
     * enough, the queue empties before the consumer reports */
    for (r = 0; r < 5000; r++) {
        int running;
        struct timespec ts = {0, 1000000};
        pthread_mutex_lock(&hook_lock);
        running = hook_seen[0][TRIFLE_SIMPLE_THREAD_RUNNING];
        pthread_mutex_unlock(&hook_lock);
        if (running >= 1 && trifle__simple_queued() == 0)
            break;
        (void)nanosleep(&ts, NULL);
    }
    assert_int_equal(trifle_simple_stop(&err), 0);
    for (r = 0; r < 2; r++) {
        assert_int_equal(hook_seen[r][TRIFLE_SIMPLE_THREAD_START], 1);
        assert_int_equal(hook_seen[r][TRIFLE_SIMPLE_THREAD_EXIT], 1);
        assert_true(hook_seen[r][TRIFLE_SIMPLE_THREAD_IDLE] >= 1);
    }
    assert_true(hook_seen[0][TRIFLE_SIMPLE_THREAD_RUNNING] >= 1); /* the consumer drained */
    assert_false(hook_in_main);
}

/* ---------------------------------------------------------------------------------------------
 * Persistence */

static void test_persist_round_trip(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    char p[512], *text;
    struct stat st;

    (void)state;
    configure_persist(1);
    assert_int_equal(trifle_simple_start(&err), 0);
    assert_int_equal(trifle_simple_incr("api", "metrics.track", 3, NULL), 0);
    assert_int_equal(trifle_simple_decr("q", "depth", 2, NULL), 0);
    assert_int_equal(trifle_simple_incr("q", "\"quoted\"\\", INT64_MAX, NULL), 0);
    assert_int_equal(trifle_simple_gauge("q", "min", INT64_MIN, NULL), 0);
    assert_int_equal(trifle_simple_stop(&err), 0);

    path_of(p, sizeof(p), "stats/simple");
    text = test_read_file(p, NULL);
    assert_non_null(text);
    assert_string_equal(text, "{\"version\":2,\"stats\":{\"api\":{\"metrics.track\":3},"
                              "\"q\":{\"\\\"quoted\\\"\\\\\":9223372036854775807,\"depth\":-2,"
                              "\"min\":-9223372036854775808}},"
                              "\"gauges\":{\"q\":[\"depth\",\"min\"]}}");
    free(text);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    path_of(p, sizeof(p), "stats");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0750);
    path_of(p, sizeof(p), "stats/simple.tmp");
    assert_int_not_equal(access(p, F_OK), 0); /* renamed away */

    /* a restart resumes: counters continue from the saved totals, gauges stay gauges */
    trifle_simple_reset();
    configure_persist(1);
    assert_int_equal(trifle_simple_incr("api", "metrics.track", 1, NULL), 0); /* before start */
    assert_int_equal(trifle_simple_start(&err), 0);
    assert_int_equal(trifle_simple_incr("api", "metrics.track", 1, NULL), 0);
    assert_int_equal(get("api", "metrics.track"), 5);
    assert_int_equal(kind("api", "metrics.track"), TRIFLE_SIMPLE_COUNTER);
    assert_int_equal(get("q", "depth"), -2);
    assert_int_equal(kind("q", "depth"), TRIFLE_SIMPLE_GAUGE);
    assert_true(get("q", "\"quoted\"\\") == INT64_MAX);
    assert_int_equal(kind("q", "\"quoted\"\\"), TRIFLE_SIMPLE_COUNTER);
    assert_true(get("q", "min") == INT64_MIN);
    assert_int_equal(trifle_simple_stop(&err), 0);
}

static void test_stop_drains_then_saves(void **state)
{
    trifle_simple_options o;
    trifle_error err = TRIFLE_ERROR_INIT;
    char p[512], *text;
    int i;

    (void)state;
    trifle_simple_options_init(&o);
    o.data_dir = tmp_root;
    o.no_buffer = 0;
    o.buffer_size = 100000;
    o.flush_interval_ms = 3600000; /* the consumer would sleep for an hour */
    o.checkpoint_interval_ms = 86400000;
    assert_int_equal(trifle_simple_configure(&o, &err), 0);
    assert_int_equal(trifle_simple_start(&err), 0);
    for (i = 0; i < 1000; i++)
        assert_int_equal(trifle_simple_incr("late", "n", 1, NULL), 0);
    assert_int_equal(trifle_simple_stop(&err), 0);
    path_of(p, sizeof(p), "stats/simple");
    text = test_read_file(p, NULL);
    assert_non_null(text);
    assert_string_equal(text, "{\"version\":2,\"stats\":{\"late\":{\"n\":1000}},\"gauges\":{}}");
    free(text);
}

static void test_periodic_checkpoint(void **state)
{
    trifle_simple_options o;
    trifle_error err = TRIFLE_ERROR_INIT;
    char p[512], *text = NULL;
    int i;

    (void)state;
    trifle_simple_options_init(&o);
    o.data_dir = tmp_root;
    o.checkpoint_interval_ms = 100;
    assert_int_equal(trifle_simple_configure(&o, &err), 0);
    assert_int_equal(trifle_simple_start(&err), 0);
    assert_int_equal(trifle_simple_incr("ck", "n", 7, NULL), 0);
    path_of(p, sizeof(p), "stats/simple");
    for (i = 0; i < 500 && text == NULL; i++) {
        struct timespec ts = {0, 10000000};
        (void)nanosleep(&ts, NULL);
        text = test_read_file(p, NULL);
    }
    assert_non_null(text);
    assert_string_equal(text, "{\"version\":2,\"stats\":{\"ck\":{\"n\":7}},\"gauges\":{}}");
    free(text);
    assert_int_equal(trifle_simple_stop(&err), 0);
}

static void test_load_infini_format(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    char p[512];

    (void)state;
    path_of(p, sizeof(p), "stats");
    assert_int_equal(mkdir(p, 0750), 0);
    path_of(p, sizeof(p), "stats/simple");
    spit(p, "{\"api\":{\"metrics.track\":18420,\"neg\":-5},\"version\":{\"x\":1},"
            "\"stats\":{\"y\":9007199254740993}}");
    configure_persist(1);
    assert_int_equal(trifle_simple_start(&err), 0);
    assert_int_equal(get("api", "metrics.track"), 18420);
    assert_int_equal(get("api", "neg"), -5);
    assert_int_equal(kind("api", "neg"), TRIFLE_SIMPLE_COUNTER); /* INFINI entries are counters */
    assert_int_equal(get("version", "x"), 1);
    assert_true(get("stats", "y") == 9007199254740993LL); /* exact beyond 2^53 */
    {
        int64_t v;
        assert_int_equal(trifle_simple_get("stats", "load_errors", &v, NULL), TRIFLE_ENOTFOUND);
    }
    assert_int_equal(trifle_simple_stop(&err), 0);
}

static int count_corrupt(const char *dir, char *found, size_t n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int count = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "simple.corrupt-", 15) == 0) {
            const char *q = e->d_name + 15;
            assert_true(*q >= '1' && *q <= '9');
            while (*q >= '0' && *q <= '9')
                q++;
            assert_true(*q == '\0' || *q == '.');
            (void)snprintf(found, n, "%s", e->d_name);
            count++;
        }
    closedir(d);
    return count;
}

static void test_corrupt_file_renamed(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    char p[512], dir[512], name[256], *text;
    const char *bad[] = {"{\"api\":{\"n\":1}", "", "{\"version\":3,\"stats\":{}}",
                         "{\"api\":{\"n\":1.5}}", "[1,2]"};
    size_t i;
    int64_t v;

    (void)state;
    path_of(dir, sizeof(dir), "stats");
    assert_int_equal(mkdir(dir, 0750), 0);
    path_of(p, sizeof(p), "stats/simple");
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        trifle_simple_reset();
        spit(p, bad[i]);
        configure_persist(1);
        assert_int_equal(trifle_simple_start(&err), 0);
        assert_int_equal(access(p, F_OK), -1); /* moved aside */
        assert_int_equal(count_corrupt(dir, name, sizeof(name)), (int)i + 1);
        assert_int_equal(trifle_simple_get("api", "n", &v, NULL), TRIFLE_ENOTFOUND);
        assert_int_equal(get("stats", "load_errors"), 1);
        assert_int_equal(trifle_simple_stop(&err), 0);
    }
    /* the first one kept its content */
    {
        char first[1024];
        (void)snprintf(first, sizeof(first), "%s/%s", dir, name);
        text = test_read_file(first, NULL);
    }
    assert_non_null(text);
    free(text);
}

static void test_failed_save_then_success(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    char p[512], dir[512], tmpf[512], *text;

    (void)state;
    configure_persist(1);
    assert_int_equal(trifle_simple_start(&err), 0);
    assert_int_equal(trifle_simple_incr("a", "n", 1, NULL), 0);
    assert_int_equal(trifle_simple_save(&err), 0);
    path_of(p, sizeof(p), "stats/simple");
    path_of(dir, sizeof(dir), "stats");
    path_of(tmpf, sizeof(tmpf), "stats/simple.tmp");

    assert_int_equal(trifle_simple_incr("a", "n", 1, NULL), 0);
    if (geteuid() != 0) {
        /* a read-only directory */
        assert_int_equal(chmod(dir, 0500), 0);
        assert_int_equal(trifle_simple_save(&err), TRIFLE_ERROR);
        assert_non_null(strstr(err.message, "cannot save "));
        assert_non_null(strstr(err.message, "open simple.tmp: Permission denied"));
        assert_int_equal(chmod(dir, 0750), 0);
    } else {
        assert_int_equal(trifle_simple_incr("stats", "save_errors", 1, NULL), 0); /* keep count */
    }
    /* a directory where the temp file goes fails for root too */
    assert_int_equal(mkdir(tmpf, 0700), 0);
    assert_int_equal(trifle_simple_save(&err), TRIFLE_ERROR);
    assert_non_null(strstr(err.message, "open simple.tmp: Is a directory"));
    assert_int_equal(get("stats", "save_errors"), 2);
    text = test_read_file(p, NULL); /* the previous file is intact */
    assert_string_equal(text, "{\"version\":2,\"stats\":{\"a\":{\"n\":1}},\"gauges\":{}}");
    free(text);
    assert_int_equal(rmdir(tmpf), 0);
    assert_int_equal(trifle_simple_save(&err), 0);
    text = test_read_file(p, NULL);
    assert_string_equal(text,
                        "{\"version\":2,\"stats\":{\"a\":{\"n\":2},\"stats\":{\"save_errors\":2}},"
                        "\"gauges\":{}}");
    free(text);
    assert_int_equal(trifle_simple_stop(&err), 0);
}

/* kill -9 while a child increments and checkpoints: the file is always a complete snapshot. */
static void child_loop(const char *dir)
{
    trifle_simple_options o;
    char name[32];
    int i;

    trifle_simple_reset();
    trifle_simple_options_init(&o);
    o.data_dir = dir;
    if (trifle_simple_configure(&o, NULL) != 0 || trifle_simple_start(NULL) != 0)
        _exit(2);
    for (;;) {
        /* a and b move together; 200 more entries make the file large enough to be cut */
        (void)trifle_simple_incr("k", "a", 1, NULL);
        for (i = 0; i < 200; i++) {
            (void)snprintf(name, sizeof(name), "filler.%03d", i);
            (void)trifle_simple_incr("f", name, 1, NULL);
        }
        (void)trifle_simple_incr("k", "b", 1, NULL);
        (void)trifle_simple_save(NULL);
    }
}

static void test_kill9_snapshots(void **state)
{
    char p[512], *text;
    int round;
    int64_t last_a = 0;

    (void)state;
    srand((unsigned)time(NULL));
    path_of(p, sizeof(p), "stats/simple");
    for (round = 0; round < 8; round++) {
        trifle__simple_file f;
        trifle_error err = TRIFLE_ERROR_INIT;
        int64_t a = -1, b = -1;
        size_t i;
        int status;
        pid_t pid = fork();
        struct timespec ts;

        assert_true(pid >= 0);
        if (pid == 0)
            child_loop(tmp_root);
        ts.tv_sec = 0;
        ts.tv_nsec = (long)(20 + rand() % 80) * 1000000L;
        (void)nanosleep(&ts, NULL);
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        text = test_read_file(p, NULL);
        if (text == NULL && round == 0)
            continue; /* killed before the first save */
        assert_non_null(text);
        if (trifle__simple_file_parse(&f, text, strlen(text), &err) != 0)
            fail_msg("round %d: %s", round, err.message);
        assert_int_equal(f.format, 2);
        for (i = 0; i < f.n; i++) {
            if (strcmp(f.items[i].category, "k") == 0 && strcmp(f.items[i].name, "a") == 0)
                a = f.items[i].value;
            if (strcmp(f.items[i].category, "k") == 0 && strcmp(f.items[i].name, "b") == 0)
                b = f.items[i].value;
        }
        assert_true(a >= 1);
        assert_true(a == b || a == b + 1); /* a snapshot between the two increments */
        assert_true(f.n == 202 || f.n == 203);
        assert_true(a >= last_a); /* each child resumed from the previous snapshot */
        last_a = a;
        trifle__simple_file_free(&f);
        free(text);
    }
    assert_true(last_a > 0);
}

/* The file reader on its own (the fuzz target checks its promises on arbitrary input). */
static void test_file_parse(void **state)
{
    static const struct {
        const char *text;
        const char *error; /* NULL: parses */
        size_t n;
        int format;
    } cases[] = {
        {"{\"version\":2,\"stats\":{\"a\":{\"n\":1}},\"gauges\":{\"a\":[\"n\",\"zz\"]}}", NULL, 1,
         2},
        {"{\"gauges\":{},\"stats\":{},\"version\":2,\"extra\":[1,{\"x\":null},true]}", NULL, 0, 2},
        {"{\"version\":2,\"stats\":{\"a\":{\"n\":1}},\"stats\":{\"b\":{\"n\":2,\"m\":3}}}", NULL, 2,
         2},
        {"{\"a\":{\"n\":1,\"n\":2}}", NULL, 1, 1},
        {"{}", NULL, 0, 1},
        {"{\"version\":\"2\",\"stats\":{\"x\":{\"y\":1}}}",
         "invalid stats file: category is not an object at byte 11", 0, 0},
        /* no object `stats`: read as INFINI, where `version` must be a category */
        {"{\"version\":2,\"stats\":[]}", "invalid stats file: category is not an object at byte 11",
         0, 0},
        {"", "invalid stats file: the document is not an object at byte 0", 0, 0},
        {"[]", "invalid stats file: the document is not an object at byte 0", 0, 0},
        {"{\"a\":{\"n\":1}", "invalid stats file: expected ',' or '}' at byte 12", 0, 0},
        {"{\"a\":{\"n\":1}} x",
         "invalid stats file: trailing characters after the document at byte 14", 0, 0},
        {"{\"a\":{\"n\":1.5}}", "invalid stats file: value is not an int64 integer at byte 10", 0,
         0},
        {"{\"a\":{\"n\":1e3}}", "invalid stats file: value is not an int64 integer at byte 10", 0,
         0},
        {"{\"a\":{\"n\":9223372036854775808}}",
         "invalid stats file: value is not an int64 integer at byte 10", 0, 0},
        {"{\"a\":{\"n\":-9223372036854775808}}", NULL, 1, 1},
        {"{\"a\":{\"n\":01}}", "invalid stats file: leading zero in number at byte 11", 0, 0},
        {"{\"a\":{\"\":1}}", "invalid stats file: invalid stats name at byte 6", 0, 0},
        {"{\"a\":{\"\\u0000\":1}}", "invalid stats file: \\u0000 in string at byte 7", 0, 0},
        {"{\"a\":{\"\\ud800\":1}}",
         "invalid stats file: unpaired surrogate in \\u escape at byte 7", 0, 0},
        {"{\"a\":{\"\xff\":1}}", "invalid stats file: invalid UTF-8 at byte 7", 0, 0},
        {"{\"version\":3,\"stats\":{}}", "invalid stats file: unsupported version at byte 0", 0, 0},
        {"{\"version\":2,\"stats\":{\"a\":{\"n\":1}},\"gauges\":{\"a\":\"n\"}}",
         "invalid stats file: gauges category is not an array at byte 49", 0, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        trifle__simple_file f;
        trifle_error err = TRIFLE_ERROR_INIT;
        int rc = trifle__simple_file_parse(&f, cases[i].text, strlen(cases[i].text), &err);
        if (cases[i].error == NULL) {
            if (rc != 0)
                fail_msg("case %zu: %s", i, err.message);
            assert_int_equal(f.n, cases[i].n);
            assert_int_equal(f.format, cases[i].format);
        } else {
            if (rc != TRIFLE_EINVAL || strcmp(err.message, cases[i].error) != 0)
                fail_msg("case %zu: rc %d, message %s", i, rc, err.message);
            assert_null(f.items);
        }
        trifle__simple_file_free(&f);
    }
    {
        /* the last duplicate wins; gauges mark kinds */
        trifle__simple_file f;
        const char *t = "{\"version\":2,\"stats\":{\"b\":{\"x\":1},\"a\":{\"n\":1,\"n\":-2}},"
                        "\"gauges\":{\"a\":[\"n\"]}}";
        assert_int_equal(trifle__simple_file_parse(&f, t, strlen(t), NULL), 0);
        assert_int_equal(f.n, 2);
        assert_string_equal(f.items[0].category, "a");
        assert_int_equal(f.items[0].value, -2);
        assert_int_equal(f.items[0].kind, TRIFLE_SIMPLE_GAUGE);
        assert_string_equal(f.items[1].category, "b");
        assert_int_equal(f.items[1].kind, TRIFLE_SIMPLE_COUNTER);
        trifle__simple_file_free(&f);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Rendering */

static int pool_provider(trifle_simple_writer *w, trifle_error *err, void *payload)
{
    (void)err;
    (void)payload;
    assert_int_equal(trifle_simple_writer_int(w, "bytes._all.pool_items", 3), 0);
    assert_int_equal(trifle_simple_writer_int(w, "bytes._all.pool_size", 65536), 0);
    assert_int_equal(trifle_simple_writer_enter(w, "bytes"), 0);
    assert_int_equal(trifle_simple_writer_enter(w, "http.request"), 0); /* one member, a dot */
    assert_int_equal(trifle_simple_writer_int(w, "acquired", 10), 0);
    assert_int_equal(trifle_simple_writer_leave(w), 0);
    assert_int_equal(trifle_simple_writer_leave(w), 0);
    assert_int_equal(trifle_simple_writer_number(w, "ratio", 0.5), 0);
    assert_int_equal(trifle_simple_writer_number(w, "big", 1e21), 0);
    return 0;
}

static void test_render_json_exact(void **state)
{
    char *json;

    (void)state;
    assert_int_equal(trifle_simple_incr("http", "responses.2xx", 5, NULL), 0);
    assert_int_equal(trifle_simple_incr("api", "metrics.track", 18420, NULL), 0);
    assert_int_equal(trifle_simple_gauge("buffer.main", "pending_entries", -3, NULL), 0);
    assert_int_equal(trifle_simple_incr("api", "a\"b", 1, NULL), 0);
    assert_int_equal(trifle_simple_register("pool", pool_provider, NULL, NULL), 0);
    json = render(trifle_simple_render_json);
    assert_string_equal(json, "{\n"
                              " \"pool\": {\n"
                              "  \"big\": 1e+21,\n"
                              "  \"bytes\": {\n"
                              "   \"_all\": {\n"
                              "    \"pool_items\": 3,\n"
                              "    \"pool_size\": 65536\n"
                              "   },\n"
                              "   \"http.request\": {\n"
                              "    \"acquired\": 10\n"
                              "   }\n"
                              "  },\n"
                              "  \"ratio\": 0.5\n"
                              " },\n"
                              " \"stats\": {\n"
                              "  \"api\": {\n"
                              "   \"a\\\"b\": 1,\n"
                              "   \"metrics.track\": 18420\n"
                              "  },\n"
                              "  \"buffer.main\": {\n"
                              "   \"pending_entries\": -3\n"
                              "  },\n"
                              "  \"http\": {\n"
                              "   \"responses.2xx\": 5\n"
                              "  }\n"
                              " }\n"
                              "}\n");
    trifle_mem_free(json);
}

static int system_like(trifle_simple_writer *w, trifle_error *err, void *payload)
{
    (void)err;
    (void)payload;
    (void)trifle_simple_writer_int(w, "uptime_in_ms", 360000);
    (void)trifle_simple_writer_int(w, "sys_in_ms", 1234);
    (void)trifle_simple_writer_int(w, "user_in_ms", -5);
    (void)trifle_simple_writer_number(w, "load", 0.25);
    (void)trifle_simple_writer_int(w, "cpu", 3);
    return 0;
}

static void configure_labels(const char *node_name, const char *node_id,
                             const trifle_simple_label *labels, size_t n)
{
    trifle_simple_options o;
    trifle_error err = TRIFLE_ERROR_INIT;

    trifle_simple_options_init(&o);
    o.persist = 0;
    o.node_name = node_name;
    o.node_id = node_id;
    o.prometheus_labels = labels;
    o.n_prometheus_labels = n;
    if (trifle_simple_configure(&o, &err) != 0)
        fail_msg("configure: %s", err.message);
}

/* A figure to put in the registry: a counter increment ('c') or a gauge ('g'). */
typedef struct figure {
    char kind;
    const char *category, *name;
    int64_t value;
} figure;

static void put_figures(const figure *f, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        assert_int_equal((f[i].kind == 'g' ? trifle_simple_gauge : trifle_simple_incr)(
                             f[i].category, f[i].name, f[i].value, NULL),
                         0);
}

static void fill_prometheus_registry(void)
{
    static const figure figures[] = {
        {'c', "api", "metrics.track", 18420},
        {'c', "http", "x.y", 1},     /* counter */
        {'g', "http", "x_y", 2},     /* same name, gauge */
        {'c', "p.q", "r", 10},       /* same dotted path */
        {'c', "p", "q.r", 20},       /* as this one */
        {'g', "Q", "latency_ms", 7}, /* abbreviated unit */
        {'c', "x", "5xx", 1},
        {'g', "g", "openItems_Count", 4}, /* case, _count */
        {'c', "back\\slash", "n", 1},     /* HELP escaping */
        {'c', "t", "elapsed_in_ms", 1500},
    };

    put_figures(figures, sizeof(figures) / sizeof(figures[0]));
    assert_int_equal(trifle_simple_register("system", system_like, NULL, NULL), 0);
    assert_int_equal(trifle_simple_register("9lives", count_calls, NULL, NULL), 0);
}

#define L "{type=\"gw\",name=\"no\\\"de\\\\1\\n\",env=\"prod\""

static void test_render_prometheus_exact(void **state)
{
    trifle_simple_label labels[] = {{"env", "prod"}, {"id", ""}, {"type", "gw"}};
    char *text;

    (void)state;
    /* ERRATA minor 7: configured labels extend the defaults, replace in place, "" removes */
    configure_labels("no\"de\\1\n", "id-1", labels, 3);
    fill_prometheus_registry();
    text = render(trifle_simple_render_prometheus);
    assert_string_equal(text, "# HELP _9lives_x 9lives.x\n"
                              "# TYPE _9lives_x gauge\n"
                              "_9lives_x" L "} 1\n"
                              "# HELP stats_api_metrics_track_total stats.api.metrics.track\n"
                              "# TYPE stats_api_metrics_track_total counter\n"
                              "stats_api_metrics_track_total" L "} 18420\n"
                              "# HELP stats_back_slash_n_total stats.back\\\\slash.n\n"
                              "# TYPE stats_back_slash_n_total counter\n"
                              "stats_back_slash_n_total" L "} 1\n"
                              "# HELP stats_g_openitemscount stats.g.openItems_Count\n"
                              "# TYPE stats_g_openitemscount gauge\n"
                              "stats_g_openitemscount" L "} 4\n"
                              "# HELP stats_http_x_y stats.http.x.y, stats.http.x_y\n"
                              "# TYPE stats_http_x_y gauge\n"
                              "stats_http_x_y" L ",path=\"stats.http.x.y\"} 1\n"
                              "stats_http_x_y" L ",path=\"stats.http.x_y\"} 2\n"
                              "# HELP stats_p_q_r_total stats.p.q.r\n"
                              "# TYPE stats_p_q_r_total counter\n"
                              "stats_p_q_r_total" L ",path=\"stats.p.q\\\\.r\"} 20\n"
                              "stats_p_q_r_total" L ",path=\"stats.p\\\\.q.r\"} 10\n"
                              "# HELP stats_q_latencyms stats.Q.latency_ms\n"
                              "# TYPE stats_q_latencyms gauge\n"
                              "stats_q_latencyms" L "} 7\n"
                              "# HELP stats_t_elapsed_seconds_total stats.t.elapsed_in_ms\n"
                              "# TYPE stats_t_elapsed_seconds_total counter\n"
                              "stats_t_elapsed_seconds_total" L "} 1.5\n"
                              "# HELP stats_x_5xx_total stats.x.5xx\n"
                              "# TYPE stats_x_5xx_total counter\n"
                              "stats_x_5xx_total" L "} 1\n"
                              "# HELP system_cpu system.cpu\n"
                              "# TYPE system_cpu gauge\n"
                              "system_cpu" L "} 3\n"
                              "# HELP system_load system.load\n"
                              "# TYPE system_load gauge\n"
                              "system_load" L "} 0.25\n"
                              "# HELP system_sys_seconds system.sys_in_ms\n"
                              "# TYPE system_sys_seconds gauge\n"
                              "system_sys_seconds" L "} 1.234\n"
                              "# HELP system_uptime_seconds system.uptime_in_ms\n"
                              "# TYPE system_uptime_seconds gauge\n"
                              "system_uptime_seconds" L "} 360\n"
                              "# HELP system_user_seconds system.user_in_ms\n"
                              "# TYPE system_user_seconds gauge\n"
                              "system_user_seconds" L "} -0.005\n");
    trifle_mem_free(text);
}

static void test_prometheus_defaults_and_spec_example(void **state)
{
    char *text;

    (void)state;
    configure_labels("node-1", "node-1", NULL, 0);
    assert_int_equal(trifle_simple_incr("api", "metrics.track", 18420, NULL), 0);
    text = render(trifle_simple_render_prometheus);
    assert_string_equal(text, "# HELP stats_api_metrics_track_total stats.api.metrics.track\n"
                              "# TYPE stats_api_metrics_track_total counter\n"
                              "stats_api_metrics_track_total{type=\"trifle\",name=\"node-1\","
                              "id=\"node-1\"} 18420\n");
    trifle_mem_free(text);
    /* every label removed: no braces */
    {
        trifle_simple_label none[] = {{"type", ""}};
        configure_labels(NULL, NULL, none, 1);
    }
    text = render(trifle_simple_render_prometheus);
    assert_string_equal(text, "# HELP stats_api_metrics_track_total stats.api.metrics.track\n"
                              "# TYPE stats_api_metrics_track_total counter\n"
                              "stats_api_metrics_track_total 18420\n");
    trifle_mem_free(text);
}

static void test_prometheus_names(void **state)
{
    static const struct {
        const char *segs[4];
        const char *name;
        int seconds;
    } cases[] = {
        {{"stats", "api", "metrics.track"}, "stats_api_metrics_track", 0},
        {{"system", "uptime_in_ms"}, "system_uptime_seconds", 1},
        {{"system", "UPTIME_IN_MS"}, "system_uptime_seconds", 1},
        {{"stats", "q", "wait_ms"}, "stats_q_waitms", 0},
        {{"stats", "q", "x_s_y"}, "stats_q_xs_y", 0},
        {{"stats", "ms", "s"}, "statsmss", 0}, /* joined until nothing is rejected */
        {{"stats", "a", "milliseconds"}, "stats_amilliseconds", 0},
        {{"minutes", "x"}, "minutesx", 0},
        {{"stats", "g", "gauge_value"}, "stats_ggauge_value", 0},
        {{"stats", "bytes", "seconds"}, "stats_bytes_seconds", 0}, /* base units are fine */
        {{"stats", "badger", "kv::get"}, "stats_badger_kv__get", 0},
        {{"stats", "caf\xc3\xa9", "x-y z"}, "stats_caf___x_y_z", 0},
        {{"5xx", "a"}, "_5xx_a", 0},
        {{"pool", "bytes", "_all", "pool_size"}, "pool_bytes__all_pool_size", 0},
        {{"stats", "kilo", "bytes"}, "stats_kilo_bytes", 0},
    };
    size_t i, n;
    int seconds;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *name;
        for (n = 0; n < 4 && cases[i].segs[n] != NULL; n++)
            ;
        name = trifle__simple_prom_base_name(cases[i].segs, n, &seconds);
        assert_non_null(name);
        if (strcmp(name, cases[i].name) != 0)
            fail_msg("case %zu: got %s, want %s", i, name, cases[i].name);
        assert_int_equal(seconds, cases[i].seconds);
        free(name);
    }
}

/* Run promtool check metrics on text: 0 passed, 1 failed, 77 no promtool. */
static int promtool_check(const char *text)
{
    char path[512], cmd[1200];
    FILE *f;
    int rc;

    if (system("command -v promtool >/dev/null 2>&1") != 0)
        return 77;
    (void)snprintf(path, sizeof(path), "/tmp/trifle_simple_prom_%d.txt", (int)getpid());
    f = fopen(path, "wb");
    if (f == NULL)
        return 1;
    (void)fputs(text, f);
    fclose(f);
    (void)snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
    rc = system(cmd);
    (void)unlink(path);
    return rc == 0 ? 0 : 1;
}

static char *representative_rendering(void)
{
    /* the server's own counters (SPEC §10.9), then names with suffixes promtool checks */
    static const figure figures[] = {
        {'c', "http", "requests", 10},       {'c', "http", "responses.2xx", 9},
        {'c', "http", "bytes_in", 100},      {'c', "api", "auth_failed", 1},
        {'c', "buffer.ms", "operations", 5}, {'g', "buffer.ms", "pending_entries", 2},
        {'c', "stats", "save_errors", 1},    {'c', "c", "requests_total", 1},
        {'g', "c", "open_total", 1},         {'g', "c", "x_sum", 1},
        {'g', "c", "x_bucket", 1},           {'g', "c", "histogram_d_h_m", 1},
        {'g', "c", "kilobytes", 1},
    };
    trifle_simple_label labels[] = {{"env", "prod \"eu\"\\1"}, {"type", "trifle"}};
    char *text;

    configure_labels("node-1\n", "id-1", labels, 2);
    fill_prometheus_registry();
    put_figures(figures, sizeof(figures) / sizeof(figures[0]));
    /* and the built-in providers */
    (void)trifle_simple_register("system", trifle_simple_system_provider, tmp_root, NULL);
    (void)trifle_simple_register("disk", trifle_simple_disk_provider, tmp_root, NULL);
    (void)trifle_simple_register("pool", pool_provider, NULL, NULL);
    text = render(trifle_simple_render_prometheus);
    return text;
}

static void test_promtool(void **state)
{
    char *text;
    int rc;

    (void)state;
    text = representative_rendering();
    rc = promtool_check(text);
    if (rc == 77) {
        trifle_mem_free(text);
        if (getenv("CI") != NULL)
            fail_msg("promtool is required in CI (Debian package prometheus)");
        skip();
    }
    if (rc != 0)
        fail_msg("promtool check metrics rejected:\n%s", text);
    trifle_mem_free(text);
}

/* ---------------------------------------------------------------------------------------------
 * Providers and system figures */

static int failing(trifle_simple_writer *w, trifle_error *err, void *payload)
{
    (void)w;
    (void)payload;
    err->code = TRIFLE_ERROR;
    (void)snprintf(err->message, sizeof(err->message), "disk went away");
    return TRIFLE_ERROR;
}

static int conflicting(trifle_simple_writer *w, trifle_error *err, void *payload)
{
    (void)err;
    (void)payload;
    assert_int_equal(trifle_simple_writer_int(w, "a", 1), 0);
    assert_int_equal(trifle_simple_writer_int(w, "a.b", 1), TRIFLE_EINVAL);
    assert_int_equal(trifle_simple_writer_int(w, "c", 1), TRIFLE_EINVAL); /* sticky */
    return 0;
}

static int bad_writes(trifle_simple_writer *w, trifle_error *err, void *payload)
{
    (void)err;
    switch ((int)(intptr_t)payload) {
    case 0:
        return trifle_simple_writer_int(w, "a..b", 1);
    case 1:
        return trifle_simple_writer_number(w, "nan", 0.0 / 0.0);
    case 2:
        return trifle_simple_writer_leave(w);
    default:
        return trifle_simple_writer_int(w, "\xff", 1);
    }
}

static void test_providers(void **state)
{
    char *out = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    int i;

    (void)state;
    assert_int_equal(trifle_simple_register("stats", count_calls, NULL, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "invalid stats name");
    assert_int_equal(trifle_simple_register("", count_calls, NULL, NULL), TRIFLE_EINVAL);
    assert_int_equal(trifle_simple_register("x", NULL, NULL, NULL), TRIFLE_EINVAL);
    assert_int_equal(trifle_simple_unregister("x"), TRIFLE_ENOTFOUND);

    assert_int_equal(trifle_simple_register("disk", failing, NULL, NULL), 0);
    assert_int_equal(trifle_simple_render_json(&out, &err), TRIFLE_ERROR);
    assert_null(out);
    assert_string_equal(err.message, "disk went away");
    assert_int_equal(trifle_simple_render_prometheus(&out, &err), TRIFLE_ERROR);
    assert_int_equal(trifle_simple_unregister("disk"), 0);

    assert_int_equal(trifle_simple_register("c", conflicting, NULL, NULL), 0);
    assert_int_equal(trifle_simple_render_json(&out, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message,
                        "stats provider c: \"a.b\": a number and an object share a path");
    assert_int_equal(trifle_simple_unregister("c"), 0);

    for (i = 0; i < 4; i++) {
        /* the case number travels in the payload pointer:
         * NOLINTNEXTLINE(performance-no-int-to-ptr) */
        assert_int_equal(trifle_simple_register("b", bad_writes, (void *)(intptr_t)i, NULL), 0);
        assert_int_equal(trifle_simple_render_json(&out, &err), TRIFLE_EINVAL);
        assert_non_null(strstr(err.message, "stats provider b: "));
    }
    assert_int_equal(trifle_simple_unregister("b"), 0);

    /* replacing a provider, and providers may update entries */
    calls = 0;
    assert_int_equal(trifle_simple_register("p", failing, NULL, NULL), 0);
    assert_int_equal(trifle_simple_register("p", count_calls, NULL, NULL), 0);
    out = render(trifle_simple_render_json);
    assert_string_equal(out, "{\n \"p\": {\n  \"x\": 1\n },\n \"stats\": {}\n}\n");
    trifle_mem_free(out);
    assert_int_equal(calls, 1);
}

static int64_t fake_now;
static int64_t fake_clock(void)
{
    return fake_now;
}

static void test_storage_and_system(void **state)
{
    trifle_simple_storage st = TRIFLE_SIMPLE_STORAGE_INIT;
    trifle_error err = TRIFLE_ERROR_INIT;
    char p[512], big[512], *json;
    int i;

    (void)state;
    trifle__simple_set_clock(fake_clock);
    fake_now = 1000000;
    path_of(p, sizeof(p), "a.dat");
    spit(p, "12345");
    path_of(p, sizeof(p), "sub");
    assert_int_equal(mkdir(p, 0700), 0);
    path_of(p, sizeof(p), "sub/b.dat");
    spit(p, "123");
    (void)snprintf(big, sizeof(big), "%s_outside", tmp_root);
    spit(big, "0123456789012345678901234567890123456789");
    path_of(p, sizeof(p), "link");
    assert_int_equal(symlink(big, p), 0); /* never followed */

    assert_int_equal(trifle_simple_storage_stats(&st, tmp_root, &err), 0);
    assert_int_equal(st.store, 8);
    assert_true(st.all > 0 && st.free >= 0 && st.available >= 0 && st.available <= st.free);
    assert_int_equal(st.used, st.all - st.free);

    path_of(p, sizeof(p), "c.dat");
    spit(p, "1234567890");
    fake_now += 9999;
    assert_int_equal(trifle_simple_storage_stats(&st, tmp_root, &err), 0);
    assert_int_equal(st.store, 8); /* cached for 10 s */
    fake_now += 1;
    assert_int_equal(trifle_simple_storage_stats(&st, tmp_root, &err), 0);
    assert_int_equal(st.store, 18);
    (void)unlink(big);

    path_of(p, sizeof(p), "missing");
    assert_int_equal(trifle_simple_storage_stats(&st, p, &err), TRIFLE_ERROR);
    assert_non_null(strstr(err.message, "cannot stat "));
    assert_non_null(strstr(err.message, "No such file or directory"));
    assert_int_equal(trifle_simple_storage_stats(&st, NULL, &err), TRIFLE_EINVAL);
    /* struct_size: 0 (not initialised) is refused; an older, shorter struct gets what fits */
    st.struct_size = 0;
    assert_int_equal(trifle_simple_storage_stats(&st, tmp_root, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "trifle_simple_storage.struct_size 0 is too small "
                                     "(initialise with TRIFLE_SIMPLE_STORAGE_INIT)");
    st.struct_size = sizeof(st);

    assert_int_equal(
        trifle_simple_register("system", trifle_simple_system_provider, tmp_root, NULL), 0);
    assert_int_equal(trifle_simple_register("disk", trifle_simple_disk_provider, tmp_root, NULL),
                     0);
    json = render(trifle_simple_render_json);
    {
        static const char *const keys[] = {
            "\"uptime_in_ms\": ", "\"cpu\": ",     "\"user_in_ms\": ", "\"sys_in_ms\": ",
            "\"mem\": ",          "\"threads\": ", "\"store\": 18",    "\"all\": ",
            "\"available\": ",    "\"free\": ",    "\"used\": "};
        for (i = 0; i < (int)(sizeof(keys) / sizeof(keys[0])); i++)
            if (strstr(json, keys[i]) == NULL)
                fail_msg("missing %s in\n%s", keys[i], json);
        assert_null(strstr(json, "\"mem\": 0"));
        assert_null(strstr(json, "\"threads\": 0"));
    }
    trifle_mem_free(json);

    /* a provider error fails the render: a missing data directory */
    assert_int_equal(
        trifle_simple_register("disk", trifle_simple_disk_provider, "/nonexistent/x", NULL), 0);
    assert_int_equal(trifle_simple_render_json(&json, &err), TRIFLE_ERROR);
    assert_non_null(strstr(err.message, "cannot stat /nonexistent/x"));
}

/* ---------------------------------------------------------------------------------------------
 * Hot path cost */

/* CPU time, not wall time: the machines running the tests are shared and often overloaded. */
#define BENCH_OPS 2000000

static double cpu_s(clockid_t id)
{
    struct timespec ts;
    (void)clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *bench_thread(void *arg)
{
    double *ns = arg, t0 = cpu_s(CLOCK_THREAD_CPUTIME_ID);
    int i;

    for (i = 0; i < BENCH_OPS; i++)
        (void)trifle_simple_incr("http", "requests", 1, NULL);
    *ns = (cpu_s(CLOCK_THREAD_CPUTIME_ID) - t0) * 1e9 / BENCH_OPS;
    return NULL;
}

static void test_hot_path_cost(void **state)
{
    double one, two_a, two_b, buffered;
    pthread_t a, b;
    trifle_error err = TRIFLE_ERROR_INIT;
    int i;

    (void)state;
    for (i = 0; i < 1000; i++) { /* other entries in the table */
        char name[32];
        (void)snprintf(name, sizeof(name), "n%d", i);
        assert_int_equal(trifle_simple_incr("bench", name, i, NULL), 0);
    }
    assert_int_equal(trifle_simple_incr("http", "requests", 0, NULL), 0);
    (void)bench_thread(&one);

    assert_int_equal(pthread_create(&a, NULL, bench_thread, &two_a), 0);
    assert_int_equal(pthread_create(&b, NULL, bench_thread, &two_b), 0);
    assert_int_equal(pthread_join(a, NULL), 0);
    assert_int_equal(pthread_join(b, NULL), 0);
    assert_int_equal(get("http", "requests"), 3 * BENCH_OPS);

    configure_buffered(1000, 1000);
    assert_int_equal(trifle_simple_start(&err), 0);
    (void)bench_thread(&buffered);
    assert_int_equal(trifle_simple_stop(&err), 0);
    assert_int_equal(get("http", "requests"), 4 * BENCH_OPS);
    print_message("[ bench    ] incr of an existing entry (CPU time per call): no_buffer %.1f ns "
                  "(1 thread), %.1f/%.1f ns (2 threads on one entry); buffered %.1f ns\n",
                  one, two_a, two_b, buffered);
}

/* ---------------------------------------------------------------------------------------------*/

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_never_creates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_saturation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffered_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffered_threads_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unbuffered_threads_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consumer_drains_without_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persist_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_drains_then_saves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_infini_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_file_renamed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_save_then_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_snapshots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_json_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_prometheus_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prometheus_defaults_and_spec_example, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prometheus_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_promtool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_providers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_storage_and_system, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hot_path_cost, setup, teardown),
    };

    if (argc > 1 && strcmp(argv[1], "--promtool") == 0) {
        char *text;
        int rc;
        if (setup(NULL) != 0)
            return 1;
        text = representative_rendering();
        rc = promtool_check(text);
        if (rc == 77 && getenv("CI") != NULL)
            rc = 1;
        if (rc == 1)
            fprintf(stderr, "%s", text);
        trifle_mem_free(text);
        (void)teardown(NULL);
        return rc;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
