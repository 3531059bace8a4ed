/* A small benchmark of core/buffer/journal.c alone (not a test: the unit glob takes only test_*.c).
 * Runs ALWAYS group commit with 1 and 8 threads (each thread appends under a shared mutex, as the
 * buffer does, then calls sync_to outside it), then appends 80-byte records under NONE.
 *
 *   cmake --build build/release --target trifle_internal
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Icore -Iinclude tests/unit/bench_journal.c \
 *      build/release/core/libtrifle_internal.a $(pkg-config --libs glib-2.0 libcjson) \
 *      -lpthread -lm -ldl -o /tmp/bench_journal
 *   /tmp/bench_journal /path/on/the/disk/to/measure [seconds per ALWAYS run]
 *
 * The directory must not exist or must be empty: the runs create and delete jdir-* inside. */
#include "journal_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static trifle__journal *open_j(const char *dir, int sync)
{
    trifle__journal_options o = {dir, sync, 5, 64 << 20};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle__journal *j;

    if (trifle__journal_open(&j, &o, &err) != 0 || trifle__journal_replay(j, NULL, NULL, &err)) {
        fprintf(stderr, "%s\n", err.message);
        exit(1);
    }
    return j;
}

static void wipe(trifle__journal *j)
{
    trifle__journal_release(j, UINT64_MAX);
}

typedef struct shared {
    trifle__journal *j;
    pthread_mutex_t lock;
    double until;
    uint64_t calls;
} shared;

static void *worker(void *arg)
{
    shared *s = arg;
    unsigned char body[80];
    uint64_t n = 0;

    memset(body, 'w', sizeof(body));
    while (now(CLOCK_MONOTONIC) < s->until) {
        trifle_error err = TRIFLE_ERROR_INIT;
        uint64_t seq;
        pthread_mutex_lock(&s->lock);
        if (trifle__journal_append(s->j, TRIFLE__JREC_OP, body, sizeof(body), &seq, &err) != 0) {
            fprintf(stderr, "%s\n", err.message);
            exit(1);
        }
        pthread_mutex_unlock(&s->lock);
        if (trifle__journal_sync_to(s->j, seq, &err) != 0) {
            fprintf(stderr, "%s\n", err.message);
            exit(1);
        }
        n++;
    }
    pthread_mutex_lock(&s->lock);
    s->calls += n;
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static int count_fn(void *ctx, uint64_t seq, int type, const unsigned char *body, size_t len)
{
    (void)seq;
    (void)type;
    (void)body;
    (void)len;
    (*(uint64_t *)ctx)++;
    return 0;
}

int main(int argc, char **argv)
{
    const uint64_t n = 2000000;
    unsigned char body[80];
    char dir[1024];
    double secs = argc > 2 ? atof(argv[2]) : 3.0;
    trifle__journal *j;
    trifle__journal_stats st;
    double t0, c0, t1, c1;
    uint64_t i, seq;
    int threads[] = {1, 8}, k;

    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [seconds]\n", argv[0]);
        return 2;
    }
    (void)mkdir(argv[1], 0777);
    memset(body, 'b', sizeof(body));

    /* ALWAYS first: NONE leaves dirty pages whose writeback would slow the fdatasyncs down */
    for (k = 0; k < 2; k++) {
        shared s;
        pthread_t t[8];
        int m;

        memset(&s, 0, sizeof(s));
        pthread_mutex_init(&s.lock, NULL);
        (void)snprintf(dir, sizeof(dir), "%s/jdir-always-%d", argv[1], threads[k]);
        s.j = open_j(dir, TRIFLE__JSYNC_ALWAYS);
        t0 = now(CLOCK_MONOTONIC);
        s.until = t0 + secs;
        for (m = 0; m < threads[k]; m++)
            pthread_create(&t[m], NULL, worker, &s);
        for (m = 0; m < threads[k]; m++)
            pthread_join(t[m], NULL);
        t1 = now(CLOCK_MONOTONIC);
        trifle__journal_get_stats(s.j, &st);
        printf("ALWAYS, %d thread%s: %" PRIu64 " durable appends in %.2f s: %.0f/s, %" PRIu64
               " fdatasyncs (%.0f/s), %.2f records per fdatasync\n",
               threads[k], threads[k] == 1 ? "" : "s", s.calls, t1 - t0,
               (double)s.calls / (t1 - t0), st.syncs, (double)st.syncs / (t1 - t0),
               (double)s.calls / (double)(st.syncs ? st.syncs : 1));
        wipe(s.j);
        trifle__journal_close(s.j);
        pthread_mutex_destroy(&s.lock);
    }

    (void)snprintf(dir, sizeof(dir), "%s/jdir-none", argv[1]);
    j = open_j(dir, TRIFLE__JSYNC_NONE);
    t0 = now(CLOCK_MONOTONIC);
    c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    for (i = 0; i < n; i++)
        if (trifle__journal_append(j, TRIFLE__JREC_OP, body, sizeof(body), &seq, NULL) != 0)
            return 1;
    t1 = now(CLOCK_MONOTONIC);
    c1 = now(CLOCK_PROCESS_CPUTIME_ID);
    trifle__journal_get_stats(j, &st);
    printf("NONE: %" PRIu64 " appends of 80-byte bodies in %.2f s: %.0f records/s, "
           "%.0f per CPU-second, %.1f bytes/record on disk (%" PRIu64 " segments)\n",
           n, t1 - t0, (double)n / (t1 - t0), (double)n / (c1 - c0),
           (double)(st.bytes + 64 * st.segments_created) / (double)n, st.segments_created);
    trifle__journal_close(j);

    /* replay what NONE wrote (from the page cache: the start-up cost after a crash) */
    {
        trifle__journal_options o = {dir, TRIFLE__JSYNC_NONE, 5, 64 << 20};
        trifle_error err = TRIFLE_ERROR_INIT;
        uint64_t count = 0;
        if (trifle__journal_open(&j, &o, &err) != 0)
            return 1;
        t0 = now(CLOCK_MONOTONIC);
        if (trifle__journal_replay(j, count_fn, &count, &err) != 0) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        t1 = now(CLOCK_MONOTONIC);
        printf("replay: %" PRIu64 " records in %.2f s: %.0f records/s\n", count, t1 - t0,
               (double)count / (t1 - t0));
        wipe(j);
        trifle__journal_close(j);
    }
    return 0;
}
