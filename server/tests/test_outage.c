/* The store-outage log of `trifle serve` (server/outage.c): one warning when flushes start
 * failing, one summary a minute while they keep failing, one line when a flush works again, and
 * nothing per retry. The buffer counters and the clock are the test's: 125 s of an outage with a
 * failed flush every 200 ms run in no time. srv_log() writes to stderr, which the test reads back
 * from a temporary file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "srv_int.h"

/* stderr goes to a temporary file between capture_start and capture_end */
static int saved_stderr = -1;
static FILE *captured;

static void capture_start(void)
{
    captured = tmpfile();
    assert_non_null(captured);
    (void)fflush(stderr);
    saved_stderr = dup(fileno(stderr));
    assert_true(saved_stderr >= 0);
    assert_true(dup2(fileno(captured), fileno(stderr)) >= 0);
}

/* The captured text (malloc'ed) and its number of lines. */
static char *capture_end(int *lines)
{
    long size;
    char *text;
    const char *p;

    (void)fflush(stderr);
    assert_true(dup2(saved_stderr, fileno(stderr)) >= 0);
    (void)close(saved_stderr);
    saved_stderr = -1;
    size = ftell(captured);
    assert_true(size >= 0);
    text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    rewind(captured);
    assert_int_equal(fread(text, 1, (size_t)size, captured), (size_t)size);
    (void)fclose(captured);
    *lines = 0;
    for (p = text; *p != '\0'; p++)
        *lines += *p == '\n';
    return text;
}

/* What each test starts from: an outage tracker, the buffer counters, stderr captured. */
typedef struct fixture {
    srv_outage o;
    trifle_buffer_counters c;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));

    if (f == NULL || srv_outage_init(&f->o) != 0)
        return -1;
    f->c = (trifle_buffer_counters)TRIFLE_BUFFER_COUNTERS_INIT;
    capture_start();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    if (saved_stderr >= 0) { /* a failed check left stderr captured: give cmocka its stream back */
        (void)fflush(stderr);
        (void)dup2(saved_stderr, fileno(stderr));
        (void)close(saved_stderr);
        saved_stderr = -1;
        (void)fclose(captured);
    }
    srv_outage_destroy(&f->o);
    free(f);
    return 0;
}

static void fail_flush(srv_outage *o, trifle_buffer_counters *c, const char *why)
{
    trifle_error err = TRIFLE_ERROR_INIT;

    (void)snprintf(err.driver, sizeof(err.driver), "postgres");
    (void)snprintf(err.message, sizeof(err.message), "%s", why);
    err.code = TRIFLE_ECONN;
    srv_outage_failed(o, &err);
    c->flush_errors++;
    c->retries++;
}

static void test_one_line_per_minute(void **state)
{
    fixture *f = *state;
    srv_outage *o = &f->o;
    trifle_buffer_counters *c = &f->c;
    int64_t ms, retries = 0;
    int lines;
    char *text;

    /* 10 s of flushes that work: nothing to say */
    for (ms = 0; ms < 10000; ms += 1000) {
        c->flushes++;
        srv_outage_tick(o, "main", c, ms);
    }
    /* 125 s of failing flushes, one every 200 ms, 4,000 entries pending and growing; the server
     * ticks once a second */
    c->pending_entries = 4000;
    for (ms = 10000; ms < 135000; ms += 200) {
        fail_flush(o, c, ms < 70000 ? "connection refused" : "server closed the connection");
        retries++;
        c->pending_entries += 10;
        if (ms % 1000 == 0)
            srv_outage_tick(o, "main", c, ms);
    }
    /* the tick at 135 s still sees the failures made since the one before; then a flush works,
     * and the next tick, the first without new failures, ends the outage */
    srv_outage_tick(o, "main", c, 135000);
    c->flushes++;
    c->pending_entries = 3;
    srv_outage_tick(o, "main", c, 136000);
    /* and stays quiet after */
    for (ms = 137000; ms < 200000; ms += 1000) {
        c->flushes++;
        srv_outage_tick(o, "main", c, ms);
    }
    text = capture_end(&lines);
    assert_int_equal(retries, 625);
    /* the start, summaries at 70 s and 130 s, the end: 4 lines for 625 failed flushes */
    assert_int_equal(lines, 4);
    assert_non_null(strstr(text, "warning: source main: writing to the store failed: postgres: "
                                 "connection refused; 4010 entries pending"));
    assert_non_null(strstr(text, "source main: the store still fails after 60 s: 301 failed "
                                 "flushes in the last minute (301 in all), 7010 entries pending"));
    assert_non_null(strstr(text, "last error: postgres: server closed the connection"));
    assert_non_null(strstr(text, "the store still fails after 120 s: 300 failed flushes in the "
                                 "last minute (601 in all)"));
    assert_non_null(strstr(text, "info: source main: the store works again after 126.0 s: 625 "
                                 "failed flushes; stored the"));
    assert_non_null(strstr(text, "3 pending now"));
    free(text);
}

/* An outage shorter than a minute: the start and the end, no summary. */
static void test_short_outage(void **state)
{
    fixture *f = *state;
    srv_outage *o = &f->o;
    trifle_buffer_counters *c = &f->c;
    int64_t ms;
    int lines;
    char *text;

    for (ms = 0; ms < 3000; ms += 100) {
        fail_flush(o, c, "connection refused");
        if (ms % 1000 == 0)
            srv_outage_tick(o, "events", c, ms);
    }
    srv_outage_tick(o, "events", c, 3000); /* sees the failures since 2 s */
    c->flushes++;
    srv_outage_tick(o, "events", c, 4000);
    text = capture_end(&lines);
    assert_int_equal(lines, 2);
    assert_null(strstr(text, "still fails"));
    assert_non_null(strstr(text, "source events: the store works again after 4.0 s: 30 failed"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_line_per_minute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_outage, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
