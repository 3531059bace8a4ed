/* Durable acknowledged writes (docs/durability.md): the buffer's write-ahead journal against real
 * SQLite files and the fake driver. A "crash" is either a child process that is killed or exits
 * without trifle_close(), or trifle_free() without trifle_close() (which neither flushes nor
 * writes anything more). Every case ends with exact totals. */
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../fake_driver.h"
#include "trifle/trifle.h"
#include "trifle_int.h"
#include "unit_helpers.h"

#define T0 1736937465 /* 2025-01-15T10:37:45Z */
#define KEY "orders"

#define PATH_SIZE 512 /* the URL and journal buffers */

static char work[256]; /* a fresh directory per test */
static int fake_counter_db;
static char fake_db[64];
static trifle_payload *payload_n1; /* {"n":1}, the payload of every call */

/* ---------------------------------------------------------------------------------------------
 * Helpers */

static int setup_dir(void **state)
{
    (void)state;
    payload_n1 = test_payload("{\"n\":1}");
    return test_mkdtemp(work, sizeof(work), "durability");
}

static int teardown_dir(void **state)
{
    (void)state;
    test_rm_rf(work);
    trifle_payload_free(payload_n1);
    payload_n1 = NULL;
    return 0;
}

static void path_in(char *out, size_t size, const char *name)
{
    (void)snprintf(out, size, "%s/%s", work, name);
}

/* A handle on url with the journal in <work>/journal (journal = NULL: none); no flush thread and
 * no timer unless opts say otherwise, so nothing reaches the store before a flush or close. */
/* The note handler the next open_handle() sets (trifle_config_set_note_handler), NULL: none. */
static trifle_note_fn open_note_fn;
static void *open_note_payload;

static int open_handle(trifle **t, const char *url, const char *journal, const char *const *opts,
                       trifle_error *err)
{
    trifle_config *cfg = test_config(
        url, (const char *const[]){"granularities", "1h", "buffer.duration_ms", "0", NULL});
    int rc;

    *t = NULL;
    assert_int_equal(trifle_driver_dir_add(TRIFLE_TEST_PLUGIN_DIR, err), 0);
    assert_int_equal(trifle_driver_dir_add(TRIFLE_BUILD_PLUGIN_DIR, err), 0);
    test_config_set(cfg, test_buffer_manual);
    if (journal != NULL)
        test_config_set(cfg, (const char *const[]){"buffer.journal", journal, NULL});
    test_config_set(cfg, opts);
    trifle_config_set_note_handler(cfg, open_note_fn, open_note_payload);
    rc = trifle_open(t, cfg, err);
    trifle_config_free(cfg);
    return rc;
}

static trifle *must_open(const char *url, const char *journal, const char *const *opts)
{
    trifle *t = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;

    if (open_handle(&t, url, journal, opts, &err) != 0)
        fail_msg("open %s: %s", url, err.message);
    return t;
}

/* Close (which must succeed) and free a handle. */
static void must_close(trifle *t)
{
    trifle_error err = TRIFLE_ERROR_INIT;

    if (trifle_close(t, &err) != 0)
        fail_msg("close: %s", err.message);
    trifle_free(t);
}

static void must_setup(const char *url)
{
    trifle *t = must_open(url, NULL, NULL);
    trifle_error err = TRIFLE_ERROR_INIT;

    if (trifle_setup(t, &err) != 0)
        fail_msg("setup: %s", err.message);
    must_close(t);
}

/* A restart that only replays: open (the journal is replayed and flushed), close, free. */
static void restart(const char *url, const char *journal)
{
    must_close(must_open(url, journal, NULL));
}

/* The URL of a set-up SQLite file <work>/db.sqlite and the journal directory <work>/journal. */
static void sqlite_store(char url[PATH_SIZE], char journal[PATH_SIZE])
{
    (void)snprintf(url, PATH_SIZE, "sqlite:%s/db.sqlite", work);
    path_in(journal, PATH_SIZE, "journal");
    must_setup(url);
}

/* The stored value of leaf `n` of KEY's bucket at T0, read without a journal (so nothing is
 * replayed into the total being measured). */
static double stored_total(const char *url)
{
    trifle *t = must_open(url, NULL, (const char *const[]){"buffer.enabled", "false", NULL});
    trifle_series *s = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    char *json = NULL;
    double v = 0;
    const char *p;

    if (trifle_values(t, &s, KEY, T0, T0, "1h", 0, &err) != 0)
        fail_msg("values: %s", err.message);
    assert_int_equal(trifle_series_row_json(s, 0, &json, TRIFLE_JSON_COMPACT, &err), 0);
    if ((p = strstr(json, "\"n\":")) != NULL)
        v = strtod(p + 4, NULL);
    trifle_mem_free(json);
    trifle_series_free(s);
    must_close(t);
    return v;
}

/* n calls of the payload `payload_n1` to KEY at T0. */
static void track_n(trifle *t, int n)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    int i;

    for (i = 0; i < n; i++)
        if (trifle_track(t, KEY, T0, payload_n1, 0, &err) != 0)
            fail_msg("track %d: %s", i, err.message);
}

/* The journal's segment files, sorted by name (the caller frees each and the array). */
static char **segments(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **list = NULL;

    *n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "seg-", 4) != 0 ||
            (len > 8 && strcmp(e->d_name + len - 8, ".corrupt") == 0))
            continue;
        list = realloc(list, (*n + 1) * sizeof(*list));
        assert_non_null(list);
        list[*n] = malloc(strlen(dir) + len + 2);
        assert_non_null(list[*n]);
        (void)sprintf(list[*n], "%s/%s", dir, e->d_name);
        (*n)++;
    }
    (void)closedir(d);
    for (size_t i = 0; i + 1 < *n; i++)
        for (size_t j = i + 1; j < *n; j++)
            if (strcmp(list[i], list[j]) > 0) {
                char *x = list[i];
                list[i] = list[j];
                list[j] = x;
            }
    return list;
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static off_t file_size(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* The one non-empty segment of a journal. */
static void last_segment(const char *dir, char *out, size_t size)
{
    size_t n, i;
    char **list = segments(dir, &n);

    out[0] = '\0';
    for (i = 0; i < n; i++)
        if (file_size(list[i]) > 0)
            (void)snprintf(out, size, "%s", list[i]);
    free_list(list, n);
    assert_true(out[0] != '\0');
}

static int count_corrupt(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        n += len > 8 && strcmp(e->d_name + len - 8, ".corrupt") == 0;
    }
    (void)closedir(d);
    return n;
}

static char logged[4096];

static void capture_log(int level, const char *origin, const char *message, void *payload)
{
    size_t used = strlen(logged);

    (void)origin;
    (void)payload;
    if (level <= TRIFLE_LOG_WARN && used + strlen(message) + 2 < sizeof(logged))
        (void)snprintf(logged + used, sizeof(logged) - used, "%s\n", message);
}

/* ---------------------------------------------------------------------------------------------
 * Replay */

/* A child ends itself with SIGKILL: a crash, and the one ending valgrind cannot turn into an exit
 * code of its own (its leak check would: the child leaves everything allocated on purpose). */
static void die_now(void)
{
    (void)kill(getpid(), SIGKILL);
    _exit(9); /* not reached */
}

/* Tracks in a child process that is then killed with its last batch pending (runs of calls with
 * a flush between them); fails the test unless the child got that far. */
typedef struct crash_args {
    const char *url, *journal;
    int calls[4]; /* tracks, then a flush, per entry; 0 ends */
} crash_args;

static void crash_child(const crash_args *a)
{
    pid_t pid = fork();
    int status;

    assert_true(pid >= 0);
    if (pid == 0) {
        trifle *t = must_open(a->url, a->journal, NULL);
        trifle_error err = TRIFLE_ERROR_INIT;
        size_t i;
        for (i = 0; i < 4 && a->calls[i] > 0; i++) {
            if (i > 0 && trifle_flush(t, &err) != 0)
                _exit(3);
            track_n(t, a->calls[i]);
        }
        die_now(); /* with the last batch pending */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/* Calls buffered and journaled, then the process dies (no close): the next open stores them. */
static void test_replay_after_crash_sqlite(void **state)
{
    char url[PATH_SIZE], journal[PATH_SIZE];
    trifle *t;

    (void)state;
    sqlite_store(url, journal);
    crash_child(&(crash_args){url, journal, {100}});
    assert_true(stored_total(url) == 0);
    t = must_open(url, journal, NULL); /* replays and flushes */
    assert_true(stored_total(url) == 100);
    track_n(t, 5);
    must_close(t);
    assert_true(stored_total(url) == 105);
    /* a clean close leaves nothing to replay */
    restart(url, journal);
    assert_true(stored_total(url) == 105);
}

/* Replay after a crash AFTER flushes: calls already stored are not stored again. */
static void test_replay_skips_stored_calls(void **state)
{
    char url[PATH_SIZE], journal[PATH_SIZE];

    (void)state;
    sqlite_store(url, journal);
    crash_child(&(crash_args){url, journal, {30, 12, 7}}); /* the 7 are pending at the crash */
    assert_true(stored_total(url) == 42);
    restart(url, journal);
    assert_true(stored_total(url) == 49);
}

/* The notes a replay hands back, in order. */
typedef struct notes {
    char seen[16][16];
    size_t n;
    int refuse; /* non-zero: the handler answers this */
} notes;

static int collect_note(void *payload, const void *note, size_t len)
{
    notes *ns = payload;

    if (ns->refuse != 0)
        return ns->refuse;
    assert_true(ns->n < 16 && len < 16);
    memcpy(ns->seen[ns->n], note, len);
    ns->seen[ns->n++][len] = '\0';
    return 0;
}

/* trifle_write_noted: the note travels in the call's journal record, and the replay after a crash
 * hands back the note of every noted call still in the journal, stored already or not. */
static void test_notes_come_back_with_their_calls(void **state)
{
    char url[PATH_SIZE], journal[PATH_SIZE];
    trifle_payload *empty = test_payload("{}");
    trifle_error err = TRIFLE_ERROR_INIT;
    notes ns;
    trifle *t;
    pid_t pid;
    int status, i;

    (void)state;
    sqlite_store(url, journal);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char note[8];
        t = must_open(url, journal, NULL);
        track_n(t, 3);
        for (i = 1; i <= 4; i++) {
            (void)snprintf(note, sizeof(note), "n%d", i);
            if (trifle_write_noted(t, i == 4, KEY, T0, payload_n1, 0, note, strlen(note), &err) !=
                0)
                _exit(3);
            if (i == 2 && trifle_flush(t, &err) != 0) /* n1, n2 stored; n3, n4 pending */
                _exit(4);
        }
        die_now();
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_true(stored_total(url) == 5);
    /* a handler that refuses a note stops the open with its status */
    memset(&ns, 0, sizeof(ns));
    ns.refuse = TRIFLE_EIO;
    open_note_fn = collect_note;
    open_note_payload = &ns;
    assert_int_equal(open_handle(&t, url, journal, NULL, &err), TRIFLE_EIO);
    assert_non_null(strstr(err.message, "was refused"));
    trifle_free(t);
    /* the replay: every note in journal order; the assert (n4) replaced n, it did not add */
    ns.refuse = 0;
    t = must_open(url, journal, NULL);
    open_note_fn = NULL;
    open_note_payload = NULL;
    assert_int_equal(ns.n, 4);
    for (i = 0; i < 4; i++) {
        char want[8];
        (void)snprintf(want, sizeof(want), "n%d", i + 1);
        assert_string_equal(ns.seen[i], want);
    }
    must_close(t);
    assert_true(stored_total(url) == 1);
    /* bad notes; no journal or no values: the call is made, the note is not kept */
    t = must_open(url, NULL, NULL);
    assert_int_equal(trifle_write_noted(t, 0, KEY, T0, payload_n1, 0, NULL, 1, &err),
                     TRIFLE_EINVAL);
    assert_int_equal(trifle_write_noted(t, 0, KEY, T0, payload_n1, 0, "x", 0, &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_write_noted(t, 0, KEY, T0, payload_n1, 0, "x", 65536, &err),
                     TRIFLE_EINVAL);
    assert_string_equal(err.message, "invalid argument: a note is 1 to 65535 bytes");
    assert_int_equal(trifle_write_noted(t, 0, KEY, T0, payload_n1, 0, "x", 1, &err), 0);
    assert_int_equal(trifle_write_noted(t, 0, KEY, T0, empty, 0, "x", 1, &err), 0);
    must_close(t);
    assert_true(stored_total(url) == 2);
    trifle_payload_free(empty);
}

/* A second process (here: a second handle) cannot take a journal in use. */
static void test_journal_in_use(void **state)
{
    char url[PATH_SIZE], journal[PATH_SIZE];
    trifle *t, *u = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;

    (void)state;
    sqlite_store(url, journal);
    t = must_open(url, journal, NULL);
    assert_int_equal(open_handle(&u, url, journal, NULL, &err), TRIFLE_EBUSY);
    assert_null(u);
    assert_non_null(strstr(err.message, journal));
    must_close(t);
    restart(url, journal);
}

/* The journal needs the buffer. */
static void test_journal_needs_buffer(void **state)
{
    char url[PATH_SIZE], journal[PATH_SIZE];
    trifle *t = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;

    (void)state;
    (void)snprintf(url, sizeof(url), "sqlite:%s/db.sqlite", work);
    path_in(journal, sizeof(journal), "journal");
    assert_int_equal(
        open_handle(&t, url, journal, (const char *const[]){"buffer.enabled", "false", NULL}, &err),
        TRIFLE_ECONFIG);
    assert_string_equal(err.message, "invalid buffer option journal: the journal needs "
                                     "buffer.enabled");
}

/* ---------------------------------------------------------------------------------------------
 * Fault injection: a crash between the store's commit and the journal's bookkeeping */

static void test_crash_after_commit_is_exactly_once(void **state)
{
    char url[PATH_SIZE], furl[1024], journal[PATH_SIZE];
    trifle *t;
    trifle_error err = TRIFLE_ERROR_INIT;
    pid_t pid;
    int status;

    (void)state;
    sqlite_store(url, journal);
    (void)snprintf(furl, sizeof(furl), "fault:sqlite:%s/db.sqlite?fault_exit_after_commit=2", work);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the second commit ends the process before the buffer learns it committed */
        char inner[512];
        (void)snprintf(inner, sizeof(inner), "%s/trifle_sqlite.so", TRIFLE_BUILD_PLUGIN_DIR);
        if (setenv("TRIFLE_FAULT_INNER", inner, 1) != 0) /* a fresh child: no other thread */
            _exit(2);
        t = must_open(furl, journal, NULL);
        track_n(t, 10);
        (void)trifle_flush(t, &err);
        track_n(t, 25);
        (void)trifle_flush(t, &err);
        _exit(3); /* not reached when the fault fires */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    /* the fault driver's crash: exit 86 (or SIGKILL, which valgrind cannot rewrite) */
    assert_true((WIFEXITED(status) && WEXITSTATUS(status) == 86) ||
                (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
    assert_true(stored_total(url) == 35); /* both commits are in the file */
    restart(url, journal);                /* replay: the mark says all 35 are stored */
    assert_true(stored_total(url) == 35);
}

/* ---------------------------------------------------------------------------------------------
 * Fault injection: damaged journals */

/* The size of one journaled call and of a segment's header, measured on throw-away journals. */
static void record_geometry(const char *url, off_t *header, off_t *record)
{
    char j1[512], j2[512], seg[1024];
    off_t one, two;

    path_in(j1, sizeof(j1), "geometry1");
    path_in(j2, sizeof(j2), "geometry2");
    crash_child(&(crash_args){url, j1, {1}});
    last_segment(j1, seg, sizeof(seg));
    one = file_size(seg);
    crash_child(&(crash_args){url, j2, {2}});
    last_segment(j2, seg, sizeof(seg));
    two = file_size(seg);
    *record = two - one;
    *header = one - *record;
    assert_true(*record > 0 && *header >= 0);
}

/* A restart over a damaged segment: one warning names it, its damaged part is moved aside, the
 * rest is replayed and stored. */
static void restart_after_damage(const char *url, const char *journal, const char *seg)
{
    trifle *t;

    logged[0] = '\0';
    trifle_set_log_handler(TRIFLE_LOG_WARN, capture_log, NULL);
    t = must_open(url, journal, NULL);
    trifle_set_log_handler(TRIFLE_LOG_ERROR, NULL, NULL);
    assert_non_null(strstr(logged, seg));
    assert_int_equal(count_corrupt(journal), 1);
    must_close(t);
}

static void test_torn_tail(void **state)
{
    char url[PATH_SIZE], journal[PATH_SIZE], seg[1024];

    (void)state;
    sqlite_store(url, journal);
    crash_child(&(crash_args){url, journal, {20}});
    last_segment(journal, seg, sizeof(seg));
    assert_int_equal(truncate(seg, file_size(seg) - 3), 0); /* the last record is torn */
    restart_after_damage(url, journal, seg);
    assert_true(stored_total(url) == 19);
}

static void test_crc_flipped_mid_segment(void **state)
{
    char url[PATH_SIZE], journal[PATH_SIZE], seg[1024];
    off_t header, record, at;
    unsigned char c;
    int fd;

    (void)state;
    sqlite_store(url, journal);
    record_geometry(url, &header, &record);
    crash_child(&(crash_args){url, journal, {20}});
    last_segment(journal, seg, sizeof(seg));
    assert_int_equal(file_size(seg), header + 20 * record);
    /* one byte inside the 11th record: the first 10 stand */
    at = header + 10 * record + record / 2;
    fd = open(seg, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x20;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    assert_int_equal(close(fd), 0);
    restart_after_damage(url, journal, seg);
    assert_true(stored_total(url) == 10);
}

/* A full disk (RLIMIT_FSIZE in a child): the call that cannot be journaled fails with TRIFLE_EIO
 * naming the journal, nothing is acknowledged that is not journaled, and a restart stores exactly
 * the acknowledged calls. */
static void test_full_disk(void **state)
{
    char url[PATH_SIZE], journal[PATH_SIZE];
    trifle *t;
    trifle_error err = TRIFLE_ERROR_INIT;
    int fds[2], status;
    long acked = -1;
    pid_t pid;

    (void)state;
    sqlite_store(url, journal);
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {16384, RLIM_INFINITY};
        long n = 0;
        int rc = 0;
        FILE *out;

        (void)close(fds[0]);
        out = fdopen(fds[1], "w");
        t = must_open(url, journal, NULL);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(2);
        while (n < 100000 && (rc = trifle_track(t, KEY, T0, payload_n1, 0, &err)) == 0)
            n++;
        /* the failed call: EIO naming the journal directory */
        if (rc != TRIFLE_EIO || strstr(err.message, journal) == NULL) {
            fprintf(out, "-1 %d %s\n", rc, err.message);
            _exit(4);
        }
        /* still failing, still nothing acknowledged */
        if (trifle_track(t, KEY, T0, payload_n1, 0, &err) != TRIFLE_EIO)
            _exit(5);
        fprintf(out, "%ld\n", n);
        fflush(out);
        die_now(); /* with everything pending */
    }
    (void)close(fds[1]);
    {
        FILE *in = fdopen(fds[0], "r");
        char line[512] = "";
        if (fgets(line, sizeof(line), in) != NULL)
            acked = strtol(line, NULL, 10);
        (void)fclose(in);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
            fail_msg("child: status %d, said %s", status, line);
    }
    assert_true(acked > 10);
    restart(url, journal);
    assert_true(stored_total(url) == (double)acked);
}

/* ---------------------------------------------------------------------------------------------
 * The library-level kill test: a child tracks in a loop with the flush thread running and reports
 * every call that returned; SIGKILL at a random moment; the parent reopens and compares. */

static void kill_cycle(const char *url, const char *journal, const char *sync, int round)
{
    trifle *t;
    trifle_error err = TRIFLE_ERROR_INIT;
    int fds[2], status;
    long acked;
    double before = stored_total(url), after;
    pid_t pid;
    char buf[4096];
    ssize_t r;

    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *opts[] = {
            "buffer.async", "true", "buffer.duration_ms", "5", "buffer.journal_sync", sync, NULL};
        char one = 1;
        (void)close(fds[0]);
        t = must_open(url, journal, opts);
        for (;;) {
            if (trifle_track(t, KEY, T0, payload_n1, 0, &err) != 0)
                _exit(7);
            if (write(fds[1], &one, 1) != 1)
                _exit(8);
        }
    }
    (void)close(fds[1]);
    /* the child is in its loop once the first call returned; then let it run a while */
    assert_int_equal(read(fds[0], buf, 1), 1);
    acked = 1;
    {
        struct timespec ts = {0, (long)(100 + 37 * round) * 1000000L};
        (void)nanosleep(&ts, NULL);
    }
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    while ((r = read(fds[0], buf, sizeof(buf))) > 0)
        acked += r;
    (void)close(fds[0]);
    assert_true(acked > 0);
    restart(url, journal);
    after = stored_total(url) - before;
    /* a call journaled but killed before it reported is stored too: at most one (one thread) */
    if (!(after >= (double)acked && after <= (double)acked + 1))
        fail_msg("round %d (%s): acknowledged %ld, stored %.0f", round, sync, acked, after);
}

static void test_kill9_loop(void **state)
{
    char url[PATH_SIZE], journal[PATH_SIZE];
    int round;

    (void)state;
    sqlite_store(url, journal);
    for (round = 0; round < 5; round++)
        kill_cycle(url, journal, round % 2 ? "always" : "interval:5", round);
}

/* ---------------------------------------------------------------------------------------------
 * Group commit: several threads with journal_sync=always */

typedef struct thread_arg {
    trifle *t;
    const trifle_payload *p;
    int n, failures;
} thread_arg;

static void *tracker(void *v)
{
    thread_arg *a = v;
    trifle_error err = TRIFLE_ERROR_INIT;
    int i;

    for (i = 0; i < a->n; i++)
        a->failures += trifle_track(a->t, KEY, T0, a->p, 0, &err) != 0;
    return NULL;
}

static void test_always_with_threads(void **state)
{
    char url[PATH_SIZE], journal[PATH_SIZE];
    const char *opts[] = {"buffer.async", "true", "buffer.duration_ms", "2", "buffer.journal_sync",
                          "always",       NULL};
    trifle *t;
    pthread_t th[4];
    thread_arg args[4];
    int i;

    (void)state;
    sqlite_store(url, journal);
    t = must_open(url, journal, opts);
    for (i = 0; i < 4; i++) {
        args[i] = (thread_arg){t, payload_n1, 300, 0};
        assert_int_equal(pthread_create(&th[i], NULL, tracker, &args[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
    }
    must_close(t);
    assert_true(stored_total(url) == 1200);
}

/* ---------------------------------------------------------------------------------------------
 * The fake driver: unknown outcomes and the quarantine under marks */

/* A handle on a fresh fake store, journaled in <work>/journal. */
typedef struct fake_handle {
    char url[128], journal[PATH_SIZE];
    trifle *t;
} fake_handle;

/* Open @p h with @p opts and track @p calls calls (buffered: nothing is stored yet). */
static void fake_open(fake_handle *h, const char *const *opts, int calls)
{
    (void)snprintf(fake_db, sizeof(fake_db), "durability%d", ++fake_counter_db);
    (void)snprintf(h->url, sizeof(h->url), "fake:%s", fake_db);
    path_in(h->journal, sizeof(h->journal), "journal");
    h->t = must_open(h->url, h->journal, opts);
    track_n(h->t, calls);
}

/* The fake store fails its next marked write as @p control = @p value says. */
static void fail_marked(const char *control, int value)
{
    assert_int_equal(fake_control(fake_db, control, value), 0);
    assert_int_equal(fake_control(fake_db, "fail_write_marked", 1), 0);
}

/* A marked write applied but answered with an unknown outcome: the next flush reads the mark
 * back and does not write it again. */
static void test_unknown_outcome_is_verified(void **state)
{
    fake_handle h;
    trifle_error err = TRIFLE_ERROR_INIT;

    (void)state;
    fake_open(&h, NULL, 9);
    fail_marked("fail_unknown", 1);
    assert_int_not_equal(trifle_flush(h.t, &err), 0);
    track_n(h.t, 4);
    assert_int_equal(trifle_flush(h.t, &err), 0);
    must_close(h.t);
    assert_true(stored_total(h.url) == 13);
}

/* A record the store rejects waits in the quarantine; a crash keeps it (its QUARANTINE journal
 * record is in force once the next mark commits), and the next open writes it exactly once. */
static void test_quarantine_survives_crash(void **state)
{
    fake_handle h;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_buffer_counters c = TRIFLE_BUFFER_COUNTERS_INIT;

    (void)state;
    fake_open(&h, (const char *const[]){"buffer.retry_max_ms", "600000", NULL}, 6);
    /* inc items sort by identifier: __system__key__… (0) before orders… (1) */
    assert_int_equal(fake_control(fake_db, "fail_code", TRIFLE_EDATA), 0);
    fail_marked("fail_item", 1);
    assert_int_equal(trifle_flush(h.t, &err), TRIFLE_EDATA);
    track_n(h.t, 2); /* merged into the quarantined record at the next flush */
    assert_int_equal(trifle_flush(h.t, &err), 0);
    assert_int_equal(trifle_buffer_stats(h.t, &c), 0);
    assert_int_equal(c.quarantined, 1);
    assert_true(stored_total(h.url) == 0);
    trifle__abandon(h.t); /* crash with a quarantine */
    assert_int_equal(fake_control(fake_db, "reset_stats", 1), 0);
    restart(h.url, h.journal);
    assert_true(stored_total(h.url) == 8);
}

/* A close that cannot write (the store refuses every flush until its timeout) says the calls
 * stay in the journal, and the next open writes them exactly once. */
static void test_close_leaves_calls_in_the_journal(void **state)
{
    fake_handle h;
    trifle_error err = TRIFLE_ERROR_INIT;

    (void)state;
    fake_open(&h, NULL, 17);
    fail_marked("fail_count", -1);
    assert_int_equal(trifle_close(h.t, &err), TRIFLE_EDRIVER);
    assert_non_null(strstr(err.message, "stay in the journal"));
    assert_non_null(strstr(err.message, h.journal));
    trifle_free(h.t);
    assert_true(stored_total(h.url) == 0);
    assert_int_equal(fake_control(fake_db, "reset_stats", 1), 0);
    restart(h.url, h.journal);
    assert_true(stored_total(h.url) == 17);
}

/* A test in a fresh directory <work>. */
#define IN_DIR(test) cmocka_unit_test_setup_teardown(test, setup_dir, teardown_dir)

int main(void)
{
    const struct CMUnitTest tests[] = {
        IN_DIR(test_replay_after_crash_sqlite),
        IN_DIR(test_replay_skips_stored_calls),
        IN_DIR(test_journal_in_use),
        IN_DIR(test_notes_come_back_with_their_calls),
        IN_DIR(test_journal_needs_buffer),
        IN_DIR(test_crash_after_commit_is_exactly_once),
        IN_DIR(test_torn_tail),
        IN_DIR(test_crc_flipped_mid_segment),
        IN_DIR(test_full_disk),
        IN_DIR(test_kill9_loop),
        IN_DIR(test_always_with_threads),
        IN_DIR(test_unknown_outcome_is_verified),
        IN_DIR(test_quarantine_survives_crash),
        IN_DIR(test_close_leaves_calls_in_the_journal),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
