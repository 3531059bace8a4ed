/* http_buffered: a stats handle on the HTTP driver with the buffer and its journal on, for the
 * buffered tests of tests/http/test_http_driver.py. Public API only.
 *
 *     http_buffered URL JOURNAL_DIR KEY N MODE
 *
 * Tracks N calls of {"count": 1} on KEY at 2025-01-15T10:00:00Z (buffer.journal_sync=always, so
 * each call is on disk when it returns; the buffer never flushes by itself: no thread, size and
 * duration out of reach), then by MODE:
 *
 *   close   trifle_close(): one flush of everything, in batches of N
 *   flush   trifle_flush(), then exit without closing (the test kills it during the flush)
 *   crash   exit at once: the calls stay in the journal only
 *   replay  (N is 0) only open, which replays the journal, and close
 *
 * Prints one JSON line {"rc": "...", "message": "...", "unknown": n} and exits 0 on success. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <trifle/trifle.h>

/* One result line; the message as a JSON string. */
static void result(const char *rc, const char *what, const char *message,
                   unsigned long long unknown)
{
    const char *p;

    printf("{\"rc\":\"%s\",\"message\":\"%s", rc, what);
    for (p = message; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if ((unsigned char)*p < 0x20)
            putchar(' ');
        else
            putchar(*p);
    }
    printf("\",\"unknown\":%llu}\n", unknown);
    fflush(stdout);
}

static int fail(const char *what, int rc, const trifle_error *e)
{
    result(trifle_status_name(rc), what, e->message, 0); /* what ends with ": " */
    return 1;
}

int main(int argc, char **argv)
{
    static const char *const opts[][2] = {
        {"granularities", "1h"},           {"buffer.enabled", "true"},
        {"buffer.async", "false"},         {"buffer.duration_ms", "0"},
        {"buffer.size", "1000000"},        {"buffer.max_pending", "1000000"},
        {"buffer.journal_sync", "always"}, {"buffer.close_timeout_ms", "0"},
    };
    trifle_error e = TRIFLE_ERROR_INIT;
    trifle_buffer_counters stats = TRIFLE_BUFFER_COUNTERS_INIT;
    trifle_config *cfg = NULL;
    trifle_payload *one = NULL;
    trifle *t = NULL;
    const char *mode;
    long i, n;
    size_t k;
    int rc;

    if (argc != 6) {
        fputs("usage: http_buffered URL JOURNAL_DIR KEY N close|flush|crash|replay\n", stderr);
        return 2;
    }
    n = strtol(argv[4], NULL, 10);
    mode = argv[5];
    if ((rc = trifle_config_new(&cfg, &e)) != 0 ||
        (rc = trifle_config_set(cfg, "driver", argv[1], &e)) != 0 ||
        (rc = trifle_config_set(cfg, "buffer.journal", argv[2], &e)) != 0 ||
        (rc = trifle_config_set(cfg, "buffer.batch_items", n > 0 ? argv[4] : "1000", &e)) != 0)
        return fail("config: ", rc, &e);
    for (k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
        if ((rc = trifle_config_set(cfg, opts[k][0], opts[k][1], &e)) != 0)
            return fail("config: ", rc, &e);
    if ((rc = trifle_open(&t, cfg, &e)) != 0)
        return fail("open: ", rc, &e);
    trifle_config_free(cfg);
    if ((rc = trifle_payload_parse(&one, "{\"count\":1}", 11, &e)) != 0)
        return fail("payload: ", rc, &e);
    for (i = 0; i < n; i++)
        if ((rc = trifle_track(t, argv[3], 1736935200, one, 0, &e)) != 0)
            return fail("track: ", rc, &e);
    trifle_payload_free(one);
    if (strcmp(mode, "crash") == 0) {
        result("OK", "", "", 0);
        _exit(0);
    }
    if (strcmp(mode, "flush") == 0) {
        rc = trifle_flush(t, &e);
        result(rc == 0 ? "OK" : trifle_status_name(rc), "flush: ", e.message, 0);
        _exit(rc == 0 ? 0 : 1);
    }
    rc = trifle_close(t, &e);
    (void)trifle_buffer_stats(t, &stats);
    result(rc == 0 ? "OK" : trifle_status_name(rc), "", rc == 0 ? "" : e.message,
           (unsigned long long)stats.unknown_outcomes);
    trifle_free(t);
    return rc == 0 ? 0 : 1;
}
