/* trifle-bench: the C side of the side-by-side benchmarks (docs/BENCHMARKS.md, bench/run.sh).
 *
 *   trifle-bench track   URL N [--buffered] [--threads T]  N track calls, unbuffered or buffered
 *                                                          with the library defaults, then close
 *   trifle-bench inproc  N [--threads T] [--rounds R]      track into a buffered handle whose flush
 *                [--journal always|none|interval:MS]       never runs while the loop is timed; with
 *                                                          --journal, every call is journaled first
 *                                                          (a fresh directory under $TMPDIR) and
 * the journal's bytes per call are reported trifle-bench flush   URL N N calls into distinct 1m
 * buckets, held, then one timed flush (items/s, leaves/s) trifle-bench fill-year URL one year of 1h
 * buckets (8,760) of bench::year, for `values` trifle-bench values  URL [--reps R] values over
 * those 8,760 buckets trifle-bench memory  N                                 RSS of N distinct
 * buffered buckets
 *
 * Workload (the issue): one key, five leaves (two nested), granularities 1m,1h,1d, timestamps
 * spread over one day. Output: one JSON object per run on stdout. A progress line is drawn on
 * stderr for loops that run longer than a second, only when stderr is a terminal. */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <trifle/trifle.h>

#define DAY0 1767225600 /* 2026-01-01T00:00:00Z */
#define YEAR_HOURS 8760
#define MAX_OPTS 16

/* ---- small utilities --------------------------------------------------------------------- */

static double clock_s(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* A /proc/self/status field in KiB (VmHWM: peak resident set, VmRSS: now); -1 when unknown. */
static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t n = strlen(field);
    long kb = -1;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            kb = strtol(line + n + 1, NULL, 10);
    if (f != NULL)
        fclose(f);
    return kb;
}

static void die(const char *what, const trifle_error *err)
{
    fprintf(stderr, "trifle-bench: %s: %s\n", what, err != NULL ? err->message : "failed");
    exit(1);
}

static void usage(void)
{
    fprintf(stderr, "usage: trifle-bench track URL N [--buffered] [--threads T]\n"
                    "       trifle-bench inproc N [--threads T] [--rounds R] [--journal SYNC]\n"
                    "       trifle-bench flush URL N\n"
                    "       trifle-bench fill-year URL\n"
                    "       trifle-bench values URL [--reps R]\n"
                    "       trifle-bench memory N\n");
    exit(2);
}

static long parse_count(const char *text, const char *what, long min, long max)
{
    char *end = NULL;
    long v = strtol(text, &end, 10);

    if (end == text || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "trifle-bench: %s must be an integer from %ld to %ld, got \"%s\"\n", what,
                min, max, text);
        exit(2);
    }
    return v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- progress on stderr (terminal only) -------------------------------------------------- */

typedef struct progress {
    int on;
    const char *label;
    double start, next;
} progress;

static void progress_init(progress *p, const char *label)
{
    p->on = isatty(STDERR_FILENO);
    p->label = label;
    p->start = now_s();
    p->next = p->start + 1.0; /* only loops longer than a second show anything */
}

/* Call from a loop every few thousand iterations. */
static void progress_step(progress *p, long done, long total)
{
    double t;

    if (!p->on)
        return;
    t = now_s();
    if (t < p->next)
        return;
    p->next = t + 0.25;
    fprintf(stderr, "\r  %s: %ld/%ld (%.0f%%) %.1fs ", p->label, done, total,
            100.0 * (double)done / (double)total, t - p->start);
}

static void progress_done(progress *p)
{
    if (p->on && p->next > p->start + 1.0)
        fprintf(stderr, "\r\033[K");
}

/* ---- handles and the workload ------------------------------------------------------------ */

typedef struct opts {
    const char *name[MAX_OPTS], *value[MAX_OPTS];
    int n;
} opts;

static void opt_add(opts *o, const char *name, const char *value)
{
    if (o->n == MAX_OPTS) {
        fprintf(stderr, "trifle-bench: too many options\n");
        exit(2);
    }
    o->name[o->n] = name;
    o->value[o->n++] = value;
}

/* A buffer that flushes only when told to: no flush thread, no timer, a size above any run's
 * calls, and max_pending (a decimal string that must outlive o) as the only bound. */
static void opt_manual_buffer(opts *o, const char *max_pending)
{
    opt_add(o, "buffer.async", "false");
    opt_add(o, "buffer.size", "1000000");
    opt_add(o, "buffer.duration_ms", "0");
    opt_add(o, "buffer.max_pending", max_pending);
}

static trifle *open_handle(const char *url, const char *granularities, const opts *o)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_config *cfg = NULL;
    trifle *t = NULL;
    int i;

    (void)trifle_driver_dir_add(TRIFLE_BUILD_PLUGIN_DIR, NULL);
    if (trifle_config_new(&cfg, &err) != 0 || trifle_config_set(cfg, "driver", url, &err) != 0 ||
        trifle_config_set(cfg, "time_zone", "UTC", &err) != 0 ||
        trifle_config_set(cfg, "granularities", granularities, &err) != 0)
        die("config", &err);
    for (i = 0; o != NULL && i < o->n; i++)
        if (trifle_config_set(cfg, o->name[i], o->value[i], &err) != 0)
            die("config", &err);
    if (trifle_open(&t, cfg, &err) != 0 || trifle_setup(t, &err) != 0)
        die("open", &err);
    trifle_config_free(cfg);
    return t;
}

static void close_handle(trifle *t)
{
    trifle_error err = TRIFLE_ERROR_INIT;

    if (trifle_close(t, &err) != 0)
        die("close", &err);
    trifle_free(t);
}

/* One key, five leaves, two of them nested. */
static trifle_payload *workload_payload(void)
{
    static const char json[] = "{\"count\":1,\"duration\":2.5,\"lines\":241,\"meta\":{\"db\":0.25,"
                               "\"cache\":{\"hits\":3}}}";
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_payload *p = NULL;

    if (trifle_payload_parse(&p, json, sizeof(json) - 1, &err) != 0)
        die("payload", &err);
    return p;
}

#define WORKLOAD_KEY "bench::event"
#define WORKLOAD_LEAVES 5
#define SYSTEM_LEAVES 2 /* count, keys.<key> */

/* Call i's instant: a stride through one day (7919 is prime to 86400, so every second of the
 * day comes up before any repeats). */
static int64_t workload_at(long i)
{
    return DAY0 + ((int64_t)i * 7919) % 86400;
}

/* ---- track: N calls against a backend ------------------------------------------------------ */

typedef struct worker {
    trifle *t;
    const trifle_payload *p;
    long from, to;
    progress *prog; /* thread 0 only */
    long total;
    int threads;
    double cpu; /* out: CPU seconds of this thread for its slice */
} worker;

static void *track_worker(void *arg)
{
    worker *w = arg;
    trifle_error err = TRIFLE_ERROR_INIT;
    /* the slice in locals: the workers' structs sit side by side, and re-reading them after
     * every call would time their cache line too */
    trifle *t = w->t;
    const trifle_payload *p = w->p;
    progress *prog = w->prog;
    long i, from = w->from, to = w->to, total = w->total;
    int threads = w->threads;
    double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);

    for (i = from; i < to; i++) {
        if (trifle_track(t, WORKLOAD_KEY, workload_at(i), p, 0, &err) != 0)
            die("track", &err);
        if (prog != NULL && (i & 1023) == 0)
            progress_step(prog, (i - from) * threads, total);
    }
    w->cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
    return NULL;
}

/* Runs n calls split over `threads` threads (the calling thread is thread 0). */
static void run_calls(trifle *t, const trifle_payload *p, long n, int threads, progress *prog)
{
    pthread_t tid[64];
    worker w[64];
    int k;

    for (k = 0; k < threads; k++) {
        w[k].t = t;
        w[k].p = p;
        w[k].from = n * k / threads;
        w[k].to = n * (k + 1) / threads;
        w[k].prog = k == 0 ? prog : NULL;
        w[k].total = n;
        w[k].threads = threads;
    }
    for (k = 1; k < threads; k++)
        if (pthread_create(&tid[k], NULL, track_worker, &w[k]) != 0) {
            fprintf(stderr, "trifle-bench: cannot start a thread\n");
            exit(1);
        }
    track_worker(&w[0]);
    for (k = 1; k < threads; k++)
        pthread_join(tid[k], NULL);
}

static int bench_track(const char *url, long n, int buffered, int threads)
{
    opts o = {0};
    trifle *t;
    trifle_payload *p = workload_payload();
    trifle_error err = TRIFLE_ERROR_INIT;
    progress prog;
    double t0, t1, t2, c0, c1;

    /* buffered: the library defaults (size 256, 1 s, aggregate, async), as upstream's */
    opt_add(&o, "buffer.enabled", buffered ? "true" : "false");
    t = open_handle(url, "1m,1h,1d", &o);
    progress_init(&prog, buffered ? "buffered track" : "track");
    c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    t0 = now_s();
    run_calls(t, p, n, threads, &prog);
    t1 = now_s();
    if (trifle_close(t, &err) != 0)
        die("close", &err);
    t2 = now_s();
    c1 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    progress_done(&prog);
    printf("{\"bench\":\"track\",\"impl\":\"c\",\"buffered\":%s,\"calls\":%ld,\"threads\":%d,"
           "\"seconds\":%.6f,\"calls_per_s\":%.1f,\"with_close_per_s\":%.1f,\"cpu_seconds\":%.6f,"
           "\"peak_rss_kb\":%ld}\n",
           buffered ? "true" : "false", n, threads, t1 - t0, (double)n / (t1 - t0),
           (double)n / (t2 - t0), c1 - c0, status_kb("VmHWM"));
    trifle_free(t);
    trifle_payload_free(p);
    return 0;
}

/* ---- inproc: the buffer's own speed, nothing written while timed -------------------------- */

/* The bytes of the regular files in dir (the journal's segments and its small files). */
static long long dir_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    long long sum = 0;
    char path[4200];
    struct stat st;

    while (d != NULL && (e = readdir(d)) != NULL) {
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            sum += (long long)st.st_size;
    }
    if (d != NULL)
        closedir(d);
    return sum;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4200];

    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        (void)unlink(path);
    }
    if (d != NULL)
        closedir(d);
    (void)rmdir(dir);
}

/* The threads of `inproc` live for all its rounds, as an application's threads do: a round
 * starts them on their slice together and ends when all are done. (Threads made anew each round
 * would time their own start-up: thread creation, first-touch page faults of their buffer shard.)
 */
typedef struct crew {
    pthread_mutex_t m;
    pthread_cond_t go, done;
    int round, finished, threads, quit;
    worker w[64];
} crew;

typedef struct crew_member {
    crew *c;
    int k;
} crew_member;

static void *crew_main(void *arg)
{
    crew_member *me = arg;
    crew *c = me->c;
    int seen = 0;

    for (;;) {
        pthread_mutex_lock(&c->m);
        while (c->round == seen && !c->quit)
            pthread_cond_wait(&c->go, &c->m);
        if (c->quit) {
            pthread_mutex_unlock(&c->m);
            return NULL;
        }
        seen = c->round;
        pthread_mutex_unlock(&c->m);
        track_worker(&c->w[me->k]);
        pthread_mutex_lock(&c->m);
        if (++c->finished == c->threads - 1)
            pthread_cond_signal(&c->done);
        pthread_mutex_unlock(&c->m);
    }
}

/* One round: n calls split over the crew; the calling thread takes slice 0. */
static void crew_round(crew *c, long n)
{
    int k;

    for (k = 0; k < c->threads; k++) {
        c->w[k].from = n * k / c->threads;
        c->w[k].to = n * (k + 1) / c->threads;
    }
    pthread_mutex_lock(&c->m);
    c->finished = 0;
    c->round++;
    pthread_cond_broadcast(&c->go);
    pthread_mutex_unlock(&c->m);
    track_worker(&c->w[0]);
    pthread_mutex_lock(&c->m);
    while (c->finished < c->threads - 1)
        pthread_cond_wait(&c->done, &c->m);
    pthread_mutex_unlock(&c->m);
}

static int bench_inproc(long n, int threads, int rounds, const char *journal_sync)
{
    opts o = {0};
    trifle *t;
    trifle_payload *p = workload_payload();
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_buffer_counters bc = TRIFLE_BUFFER_COUNTERS_INIT;
    double wall[32], cpu[32], total[32], bytes[32], tcpu[32], busy[32], t0, t1, t2, c0, c1;
    double load = -1;
    FILE *lf;
    char dir[4096] = "";
    int r, k;

    /* async=false and a size above N: the only flush is the explicit one after the loop */
    opt_manual_buffer(&o, "10000000");
    if (journal_sync != NULL) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/trifle-bench-journal.XXXXXX", tmp ? tmp : "/tmp");
        if (mkdtemp(dir) == NULL) {
            perror("trifle-bench: mkdtemp");
            return 1;
        }
        opt_add(&o, "buffer.journal", dir);
        opt_add(&o, "buffer.journal_sync", journal_sync);
        /* one segment for the whole run, so its size counts every call */
        opt_add(&o, "buffer.journal_segment_bytes", "1099511627776");
    }
    t = open_handle("sqlite::memory:", "1m,1h,1d", &o);
    static crew c;
    static crew_member members[64];
    pthread_t tid[64];
    pthread_mutex_init(&c.m, NULL);
    pthread_cond_init(&c.go, NULL);
    pthread_cond_init(&c.done, NULL);
    c.threads = threads;
    for (r = 0; r < threads; r++) {
        c.w[r] = (worker){t, p, 0, 0, NULL, n, threads, 0};
        members[r] = (crew_member){&c, r};
        if (r > 0 && pthread_create(&tid[r], NULL, crew_main, &members[r]) != 0) {
            fprintf(stderr, "trifle-bench: cannot start a thread\n");
            return 1;
        }
    }
    /* one untimed warm-up round: every thread has its shard and its records */
    crew_round(&c, n);
    if (trifle_flush(t, &err) != 0)
        die("flush", &err);
    /* the 1-minute load average when the timed rounds start: other work on the cores */
    if ((lf = fopen("/proc/loadavg", "r")) != NULL) {
        if (fscanf(lf, "%lf", &load) != 1)
            load = -1;
        fclose(lf);
    }
    for (r = 0; r < rounds; r++) {
        double sum = 0;
        long long b0 = dir[0] ? dir_bytes(dir) : 0;
        c0 = clock_s(threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_PROCESS_CPUTIME_ID);
        t0 = now_s();
        crew_round(&c, n);
        t1 = now_s();
        bytes[r] = dir[0] ? (double)(dir_bytes(dir) - b0) / (double)n : 0;
        c1 = clock_s(threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_PROCESS_CPUTIME_ID);
        if (trifle_buffer_stats(t, &bc) != 0 || bc.flushes != (uint64_t)r + 1) {
            fprintf(stderr, "trifle-bench: the buffer flushed during the timed loop\n");
            return 1;
        }
        if (trifle_flush(t, &err) != 0)
            die("flush", &err);
        t2 = now_s();
        wall[r] = (double)n / (t1 - t0);
        cpu[r] = (double)n / (c1 - c0);
        total[r] = (double)n / (t2 - t0);
        /* the threads' own CPU time in their slices: what the code costs, apart from how much
         * of the machine the scheduler gave the process (cpus_busy) */
        for (k = 0; k < threads; k++)
            sum += c.w[k].cpu;
        tcpu[r] = (double)n / sum;
        busy[r] = sum / (t1 - t0);
    }
    printf("{\"bench\":\"inproc\",\"impl\":\"c\",\"calls\":%ld,\"threads\":%d,\"rounds\":%d,"
           "\"journal\":\"%s\",\"calls_per_s\":%.1f,\"calls_per_cpu_s\":%.1f,"
           "\"with_flush_per_s\":%.1f,\"journal_bytes_per_call\":%.1f,\"peak_rss_kb\":%ld,"
           "\"calls_per_thread_cpu_s\":%.1f,\"cpus_busy\":%.3f,\"load_start\":%.2f}\n",
           n, threads, rounds, journal_sync ? journal_sync : "off", median(wall, rounds),
           median(cpu, rounds), median(total, rounds), median(bytes, rounds), status_kb("VmHWM"),
           median(tcpu, rounds), median(busy, rounds), load);
    pthread_mutex_lock(&c.m);
    c.quit = 1;
    pthread_cond_broadcast(&c.go);
    pthread_mutex_unlock(&c.m);
    for (r = 1; r < threads; r++)
        pthread_join(tid[r], NULL);
    close_handle(t);
    if (dir[0])
        remove_dir(dir);
    trifle_payload_free(p);
    return 0;
}

/* ---- flush: the sustained write rate into the backend ------------------------------------- */

static int bench_flush(const char *url, long n)
{
    opts o = {0};
    trifle *t;
    trifle_payload *p = workload_payload();
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_buffer_counters bc = TRIFLE_BUFFER_COUNTERS_INIT;
    progress prog;
    double t0, t1, c0, c1;
    uint64_t records;
    long i;

    opt_manual_buffer(&o, "100000000");
    t = open_handle(url, "1m,1h,1d", &o);
    for (i = 0; i < n; i++) /* every call a new minute: n + n/60 + n/1440 distinct buckets */
        if (trifle_track(t, WORKLOAD_KEY, DAY0 + (int64_t)i * 60, p, 0, &err) != 0)
            die("track", &err);
    if (trifle_buffer_stats(t, &bc) != 0 || bc.flushes != 0)
        die("buffer flushed early", NULL);
    records = bc.pending_entries; /* data and system records, one of each per bucket */
    progress_init(&prog, "flush");
    /* async=false: the flush runs in this thread, so its CPU time is this thread's */
    c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    t0 = now_s();
    if (trifle_flush(t, &err) != 0)
        die("flush", &err);
    t1 = now_s();
    c1 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    printf("{\"bench\":\"flush\",\"impl\":\"c\",\"calls\":%ld,\"items\":%llu,\"leaves\":%llu,"
           "\"seconds\":%.6f,\"items_per_s\":%.1f,\"cpu_seconds\":%.6f,\"items_per_cpu_s\":%.1f,"
           "\"leaves_per_s\":%.1f,\"peak_rss_kb\":%ld}\n",
           n, (unsigned long long)records,
           (unsigned long long)(records / 2 * (WORKLOAD_LEAVES + SYSTEM_LEAVES)), t1 - t0,
           (double)records / (t1 - t0), c1 - c0, (double)records / (c1 - c0),
           (double)(records / 2 * (WORKLOAD_LEAVES + SYSTEM_LEAVES)) / (t1 - t0),
           status_kb("VmHWM"));
    close_handle(t);
    trifle_payload_free(p);
    return 0;
}

/* ---- values over one year of 1h buckets --------------------------------------------------- */

static int bench_fill_year(const char *url)
{
    opts o = {0};
    trifle *t;
    trifle_payload *p = workload_payload();
    trifle_error err = TRIFLE_ERROR_INIT;
    int i;

    opt_manual_buffer(&o, "1000000");
    t = open_handle(url, "1h", &o);
    for (i = 0; i < YEAR_HOURS; i++) /* every bucket filled once */
        if (trifle_track(t, "bench::year", DAY0 + (int64_t)i * 3600, p, 0, &err) != 0)
            die("track", &err);
    close_handle(t);
    trifle_payload_free(p);
    printf("{\"bench\":\"fill-year\",\"impl\":\"c\",\"buckets\":%d}\n", YEAR_HOURS);
    return 0;
}

static int bench_values(const char *url, int reps)
{
    opts o = {0};
    trifle *t;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_series *s = NULL;
    double secs[32], t0, count = 0;
    int r;

    opt_add(&o, "buffer.enabled", "false");
    t = open_handle(url, "1h", &o);
    for (r = -1; r < reps; r++) { /* r = -1: warm-up (connection, statement caches) */
        t0 = now_s();
        if (trifle_values(t, &s, "bench::year", DAY0, DAY0 + (YEAR_HOURS - 1) * 3600LL, "1h", 0,
                          &err) != 0)
            die("values", &err);
        if (r >= 0)
            secs[r] = now_s() - t0;
        if (trifle_series_len(s) != YEAR_HOURS ||
            trifle_series_value(s, YEAR_HOURS - 1, "meta.cache.hits", &count) != 0 || count != 3) {
            fprintf(stderr, "trifle-bench: values: expected 8760 filled buckets (run fill-year "
                            "first)\n");
            return 1;
        }
        trifle_series_free(s);
    }
    t0 = median(secs, reps);
    printf("{\"bench\":\"values\",\"impl\":\"c\",\"buckets\":%d,\"reps\":%d,\"seconds\":%.6f,"
           "\"buckets_per_s\":%.1f,\"peak_rss_kb\":%ld}\n",
           YEAR_HOURS, reps, t0, YEAR_HOURS / t0, status_kb("VmHWM"));
    close_handle(t);
    return 0;
}

/* ---- memory of N distinct pending buckets ------------------------------------------------- */

/* Holds at least n distinct buckets (records) of the workload and reports the resident memory
 * they take. The workload's granularities with system tracking: a call into a new minute makes
 * a 1m data record and its system record, every 60th a 1h pair, every 1440th a 1d pair. Calls
 * are capped by buffer.size (1,000,000: the size-th call would flush), records are not. */
static int bench_memory(long n)
{
    opts o = {0};
    trifle *t;
    trifle_payload *p = workload_payload();
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_buffer_counters bc = TRIFLE_BUFFER_COUNTERS_INIT;
    char max[32];
    long before, after, calls = 0;

    snprintf(max, sizeof(max), "%ld", n < 500000 ? 1000000 : 2 * n); /* never the bound */
    opt_manual_buffer(&o, max);
    t = open_handle("sqlite::memory:", "1m,1h,1d", &o);
    before = status_kb("VmRSS");
    while (bc.pending_entries < (uint64_t)n) {
        if (calls == 999999) {
            fprintf(stderr, "trifle-bench: memory: at most ~2,000,000 buckets\n");
            return 2;
        }
        if (trifle_track(t, WORKLOAD_KEY, DAY0 + (int64_t)calls * 60, p, 0, &err) != 0)
            die("track", &err);
        calls++;
        if ((calls & 1023) == 0 || bc.pending_entries + 8 >= (uint64_t)n)
            (void)trifle_buffer_stats(t, &bc);
    }
    after = status_kb("VmRSS");
    if (bc.flushes != 0) {
        fprintf(stderr, "trifle-bench: memory: the buffer flushed\n");
        return 1;
    }
    printf("{\"bench\":\"memory\",\"impl\":\"c\",\"buckets\":%llu,\"calls\":%ld,"
           "\"rss_growth_kb\":%ld,\"bytes_per_bucket\":%.1f,\"peak_rss_kb\":%ld}\n",
           (unsigned long long)bc.pending_entries, calls, after - before,
           (double)(after - before) * 1024.0 / (double)bc.pending_entries, status_kb("VmHWM"));
    trifle_free(t); /* no close: the point is the pending state, not writing it */
    trifle_payload_free(p);
    return 0;
}

/* ---- command line ------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    int buffered = 0, threads = 1, rounds = 5, reps = 3, i, npos = 0;
    const char *pos[4] = {NULL, NULL, NULL, NULL}, *journal = NULL;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--buffered") == 0)
            buffered = 1;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = (int)parse_count(argv[++i], "--threads", 1, 64);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = (int)parse_count(argv[++i], "--rounds", 1, 32);
        else if (strcmp(argv[i], "--journal") == 0 && i + 1 < argc)
            journal = argv[++i];
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = (int)parse_count(argv[++i], "--reps", 1, 32);
        else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "trifle-bench: unknown option %s\n", argv[i]);
            usage();
        } else if (npos < 4)
            pos[npos++] = argv[i];
        else
            usage();
    }
    if (npos == 3 && strcmp(pos[0], "track") == 0)
        return bench_track(pos[1], parse_count(pos[2], "N", 1, 1000000000), buffered, threads);
    if (npos == 2 && strcmp(pos[0], "inproc") == 0)
        return bench_inproc(parse_count(pos[1], "N (below buffer.size)", 1, 999999), threads,
                            rounds, journal);
    if (npos == 3 && strcmp(pos[0], "flush") == 0)
        return bench_flush(pos[1], parse_count(pos[2], "N (below buffer.size)", 1, 999999));
    if (npos == 2 && strcmp(pos[0], "fill-year") == 0)
        return bench_fill_year(pos[1]);
    if (npos == 2 && strcmp(pos[0], "values") == 0)
        return bench_values(pos[1], reps);
    if (npos == 2 && strcmp(pos[0], "memory") == 0)
        return bench_memory(parse_count(pos[1], "N", 1, 100000000));
    usage();
    return 2;
}
