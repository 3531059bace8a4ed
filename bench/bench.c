/* trifle-bench: the C side of the side-by-side benchmarks (docs/BENCHMARKS.md).
 *
 *   trifle-bench track    DRIVER_URL N [--buffered] [--threads T]   track calls/s
 *   trifle-bench values   DRIVER_URL                                 values over 8,760 1h buckets
 *   trifle-bench memory   N                                          RSS for N distinct buffered buckets
 *
 * Workload (issue 5): one key, five leaves (two nested), granularities 1m,1h,1d, timestamps
 * spread over one day. Output: one JSON line per run, so bench/run.sh can tabulate it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <trifle/trifle.h>

#define DAY0 1767225600 /* 2026-01-01T00:00:00Z */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f != NULL)
        fclose(f);
    return kb;
}

static void die(const char *what, const trifle_error *err)
{
    fprintf(stderr, "%s: %s\n", what, err->message);
    exit(1);
}

static trifle *open_handle(const char *url, int buffered, const char *extra_name,
                           const char *extra_value)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_config *cfg = NULL;
    trifle *t = NULL;

    (void)trifle_driver_dir_add(TRIFLE_BUILD_PLUGIN_DIR, NULL);
    if (trifle_config_new(&cfg, &err) != 0 || trifle_config_set(cfg, "driver", url, &err) != 0 ||
        trifle_config_set(cfg, "granularities", "1m,1h,1d", &err) != 0 ||
        trifle_config_set(cfg, "buffer.enabled", buffered ? "true" : "false", &err) != 0 ||
        (extra_name != NULL && trifle_config_set(cfg, extra_name, extra_value, &err) != 0))
        die("config", &err);
    if (trifle_open(&t, cfg, &err) != 0 || trifle_setup(t, &err) != 0)
        die("open", &err);
    trifle_config_free(cfg);
    return t;
}

static trifle_payload *workload_payload(void)
{
    static const char json[] =
        "{\"count\":1,\"duration\":2.5,\"lines\":241,\"meta\":{\"db\":0.25,\"cache\":{\"hits\":3}}}";
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_payload *p = NULL;

    if (trifle_payload_parse(&p, json, sizeof(json) - 1, &err) != 0)
        die("payload", &err);
    return p;
}

static int bench_track(const char *url, long n, int buffered)
{
    trifle *t = open_handle(url, buffered, "buffer.size", "100000");
    trifle_payload *p = workload_payload();
    trifle_error err = TRIFLE_ERROR_INIT;
    double t0, t1, t2;
    long i;

    t0 = now_s();
    for (i = 0; i < n; i++)
        if (trifle_track(t, "bench::event", DAY0 + (i * 7919) % 86400, p, 0, &err) != 0)
            die("track", &err);
    t1 = now_s();
    if (trifle_close(t, &err) != 0)
        die("close", &err);
    t2 = now_s();
    printf("{\"bench\":\"track\",\"buffered\":%s,\"calls\":%ld,\"seconds\":%.6f,"
           "\"calls_per_s\":%.0f,\"with_close_per_s\":%.0f,\"peak_rss_kb\":%ld}\n",
           buffered ? "true" : "false", n, t1 - t0, n / (t1 - t0), n / (t2 - t0), rss_kb());
    trifle_free(t);
    trifle_payload_free(p);
    return 0;
}

static int bench_values(const char *url)
{
    trifle *t = open_handle(url, 0, NULL, NULL);
    trifle_payload *p = workload_payload();
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_series *s = NULL;
    double t0, best = 1e9;
    int i, rep;

    for (i = 0; i < 8760; i++) /* one year of 1h buckets, every bucket filled */
        if (trifle_track(t, "bench::year", DAY0 + (int64_t)i * 3600, p, 0, &err) != 0)
            die("track", &err);
    for (rep = 0; rep < 5; rep++) {
        t0 = now_s();
        if (trifle_values(t, &s, "bench::year", DAY0, DAY0 + 8759LL * 3600, "1h", 0, &err) != 0)
            die("values", &err);
        if (now_s() - t0 < best)
            best = now_s() - t0;
        if (trifle_series_len(s) != 8760)
            die("values length", &err);
        trifle_series_free(s);
    }
    printf("{\"bench\":\"values\",\"buckets\":8760,\"best_seconds\":%.6f}\n", best);
    trifle_close(t, &err);
    trifle_free(t);
    trifle_payload_free(p);
    return 0;
}

static int bench_memory(long n)
{
    /* n distinct buckets: 1m granularity only, n different minutes, never flushed */
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_config *cfg = NULL;
    trifle *t = NULL;
    trifle_payload *p = workload_payload();
    long before, i;
    char max[32];

    (void)trifle_driver_dir_add(TRIFLE_BUILD_PLUGIN_DIR, NULL);
    snprintf(max, sizeof(max), "%ld", 2 * n + 10);
    if (trifle_config_new(&cfg, &err) != 0 ||
        trifle_config_set(cfg, "driver", "sqlite::memory:", &err) != 0 ||
        trifle_config_set(cfg, "granularities", "1m", &err) != 0 ||
        trifle_config_set(cfg, "buffer.async", "false", &err) != 0 ||
        trifle_config_set(cfg, "buffer.size", "1000000", &err) != 0 ||
        trifle_config_set(cfg, "buffer.max_pending", max, &err) != 0 ||
        trifle_config_set(cfg, "system_tracking", "false", &err) != 0 ||
        trifle_open(&t, cfg, &err) != 0)
        die("open", &err);
    before = rss_kb();
    for (i = 0; i < n; i++)
        if (trifle_track(t, "bench::mem", DAY0 + i * 60, p, 0, &err) != 0)
            die("track", &err);
    printf("{\"bench\":\"memory\",\"buckets\":%ld,\"rss_growth_kb\":%ld,\"bytes_per_bucket\":%.0f}\n",
           n, rss_kb() - before, (rss_kb() - before) * 1024.0 / n);
    trifle_free(t); /* no close: the point is the pending state, not writing it */
    trifle_config_free(cfg);
    trifle_payload_free(p);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "track") == 0)
        return bench_track(argv[2], atol(argv[3]), argc > 4 && strcmp(argv[4], "--buffered") == 0);
    if (argc >= 3 && strcmp(argv[1], "values") == 0)
        return bench_values(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "memory") == 0)
        return bench_memory(atol(argv[2]));
    fprintf(stderr, "usage: trifle-bench track URL N [--buffered] | values URL | memory N\n");
    return 2;
}
