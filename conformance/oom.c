/* trifle-conformance --oom (STYLE §9, after Lua's ltests.c): run open, setup, track and values
 * with allocation N failing, for N = 1, 2, ... until the sequence runs without reaching N. Every
 * run happens in a fresh child process, because trifle_set_allocator() must come before any other
 * libtrifle call. A run passes when the sequence either succeeds with the right values or stops
 * with a status (TRIFLE_ENOMEM, or another code with a message), and when nothing allocated
 * through the allocator is left after trifle_free() and trifle_shutdown(). */
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define OOM_MAX_RUNS 100000
#define OOM_PAYLOAD "{\"count\":1,\"duration\":{\"db\":0.25}}"

/* Exit codes of a run. */
enum {
    RUN_CLEAN = 0,     /* the sequence completed and allocation N was never reached */
    RUN_SURVIVED = 10, /* allocation N failed, the sequence still succeeded */
    RUN_FAILED = 11,   /* allocation N failed, a step returned ENOMEM */
    RUN_OTHER = 12,    /* allocation N failed, a step returned another status with a message */
    RUN_BAD = 20       /* wrong values, a leak, a status without message: msg says */
};

/* ---- the counting allocator ---------------------------------------------------------------- */

typedef union header {
    size_t size;
    max_align_t align;
} header;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long calls, fail_at, injected;
static long live;

static int should_fail(void)
{
    int fail;

    pthread_mutex_lock(&lock);
    fail = ++calls == fail_at;
    injected += (unsigned long)fail;
    pthread_mutex_unlock(&lock);
    return fail;
}

static void *oom_malloc(size_t size)
{
    header *h;

    if (should_fail() || (h = malloc(sizeof(header) + size)) == NULL)
        return NULL;
    h->size = size;
    pthread_mutex_lock(&lock);
    live++;
    pthread_mutex_unlock(&lock);
    return h + 1;
}

static void *oom_realloc(void *ptr, size_t size)
{
    header *h;

    if (ptr == NULL)
        return oom_malloc(size);
    if (should_fail() || (h = realloc((header *)ptr - 1, sizeof(header) + size)) == NULL)
        return NULL;
    h->size = size;
    return h + 1;
}

static void oom_free(void *ptr)
{
    if (ptr == NULL)
        return;
    pthread_mutex_lock(&lock);
    live--;
    pthread_mutex_unlock(&lock);
    free((header *)ptr - 1);
}

/* ---- one run -------------------------------------------------------------------------------- */

typedef struct run_state {
    int rc;           /* first failing status, 0 */
    const char *step; /* its step */
    char message[256];
} run_state;

static int step(run_state *s, const char *name, int rc, const trifle_error *err)
{
    if (rc != 0 && s->rc == 0) {
        s->rc = rc;
        s->step = name;
        (void)snprintf(s->message, sizeof(s->message), "%s", err->message);
    }
    return rc;
}

/* The sequence; returns 0 with the values checked, 1 after a failing step, -1 wrong values. */
static int sequence(const conf_target *t, const char *url, run_state *s, char *msg, size_t size)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_config *cfg = NULL;
    trifle *h = NULL;
    trifle_payload *p = NULL;
    trifle_series *series = NULL;
    char *json = NULL;
    double count = 0, db = 0;
    int result = 1;

    if (step(s, "config", trifle_config_new(&cfg, &err), &err) != 0 ||
        step(s, "config", trifle_config_set(cfg, "driver", url, &err), &err) != 0 ||
        (t->driver_path != NULL &&
         step(s, "config", trifle_config_set(cfg, "driver_path", t->driver_path, &err), &err)) ||
        step(s, "config", trifle_config_set(cfg, "granularities", "1h,1d", &err), &err) != 0 ||
        step(s, "config", trifle_config_set(cfg, "buffer.enabled", "false", &err), &err) != 0 ||
        step(s, "open", trifle_open(&h, cfg, &err), &err) != 0 ||
        step(s, "setup", trifle_setup(h, &err), &err) != 0 ||
        step(s, "payload", trifle_payload_parse(&p, OOM_PAYLOAD, strlen(OOM_PAYLOAD), &err),
             &err) != 0 ||
        step(s, "track", trifle_track(h, "oom", CONF_T0, p, 0, &err), &err) != 0 ||
        step(s, "values", trifle_values(h, &series, "oom", CONF_T0, CONF_T0, "1h", 0, &err),
             &err) != 0 ||
        step(s, "row json", trifle_series_row_json(series, 0, &json, 0, &err), &err) != 0)
        goto done;
    if (trifle_series_len(series) == 1) {
        int rc = trifle_series_value(series, 0, "count", &count);

        if (rc == 0)
            rc = trifle_series_value(series, 0, "duration.db", &db);
        if (rc == TRIFLE_ENOMEM) { /* it parses the path */
            trifle_error oom = {TRIFLE_ENOMEM, 0, "", "", "out of memory"};

            step(s, "series value", rc, &oom);
            goto done;
        }
    }
    if (trifle_series_len(series) != 1 || count != 1 || db != 0.25) {
        (void)snprintf(msg, size, "values after a successful track: %s", json);
        result = -1;
        goto done;
    }
    result = 0;
done:
    trifle_mem_free(json);
    trifle_series_free(series);
    trifle_payload_free(p);
    if (h != NULL && step(s, "close", trifle_close(h, &err), &err) != 0 && result == 0)
        result = 1;
    trifle_free(h);
    trifle_config_free(cfg);
    return result;
}

static int run_child(const conf_target *t, const char *url, unsigned long n, char *msg, size_t size)
{
    static const trifle_allocator a = {oom_malloc, oom_realloc, oom_free};
    run_state s;
    int r;

    memset(&s, 0, sizeof(s));
    trifle_set_allocator(&a);  /* before any other libtrifle call */
    conf_register_build_dir(); /* set-up of the test itself: allocations from here on count */
    fail_at = calls + n;
    r = sequence(t, url, &s, msg, size);
    trifle_shutdown();
    if (r < 0)
        return RUN_BAD;
    if (live != 0) {
        (void)snprintf(msg, size, "%ld allocations leaked (%s%s)", live,
                       s.rc != 0 ? "after " : "sequence succeeded", s.rc != 0 ? s.step : "");
        return RUN_BAD;
    }
    if (s.rc != 0 && injected == 0) {
        (void)snprintf(msg, size, "%s failed without an allocation failure: %s %s", s.step,
                       trifle_status_name(s.rc), s.message);
        return RUN_BAD;
    }
    if (s.rc == 0)
        return injected != 0 ? RUN_SURVIVED : RUN_CLEAN;
    if (s.rc == TRIFLE_ENOMEM)
        return RUN_FAILED;
    if (s.message[0] == '\0' || s.rc == TRIFLE_ERROR) {
        (void)snprintf(msg, size, "%s: %s \"%s\" where ENOMEM (or a clean error) was expected",
                       s.step, trifle_status_name(s.rc), s.message);
        return RUN_BAD;
    }
    (void)snprintf(msg, size, "%s: %s %s", s.step, trifle_status_name(s.rc), s.message);
    return RUN_OTHER;
}

/* Drop the run's namespace with a working allocator (not needed for temp files). */
static void drop_ns(const conf_target *t, const char *url)
{
    trifle_storage_options o = TRIFLE_STORAGE_OPTIONS_INIT;
    trifle_storage *st = NULL;

    o.driver = t->driver;
    o.driver_path = t->driver_path;
    conf_register_build_dir();
    if (trifle_storage_open(&st, url, &o, NULL) == 0)
        (void)trifle_storage_drop(st, NULL);
    trifle_storage_close(st);
    trifle_shutdown();
}

int conf_oom_main(conf_target *t, int tap)
{
    unsigned long n;
    unsigned long survived = 0, failed = 0, other = 0;
    char first_other[600] = "", bad[600] = ""; /* room for "allocation N: " + msg */
    int done = 0;

    if (tap)
        printf("1..1\n");
    printf("# --oom: failing allocation N = 1, 2, ... of open, setup, track, values, close\n");
    (void)fflush(stdout);
    for (n = 1; n <= OOM_MAX_RUNS && !done && bad[0] == '\0'; n++) {
        char ns[64], msg[512] = "";
        char *url;
        int fds[2], status = 0;
        pid_t pid;
        ssize_t len;

        (void)snprintf(ns, sizeof(ns), "trfl_c_%ld_%lu", (long)getpid(), n);
        if ((url = conf_target_url(t, ns, TRIFLE_ID_FULL)) == NULL || pipe(fds) != 0) {
            (void)snprintf(bad, sizeof(bad), "cannot prepare run %lu", n);
            free(url);
            break;
        }
        (void)fflush(stdout);
        if ((pid = fork()) == 0) {
            int r;

            close(fds[0]);
            r = run_child(t, url, n, msg, sizeof(msg));
            (void)!write(fds[1], msg, strlen(msg));
            close(fds[1]);
            _exit(r);
        }
        close(fds[1]);
        len = pid > 0 ? read(fds[0], msg, sizeof(msg) - 1) : 0;
        msg[len > 0 ? len : 0] = '\0';
        close(fds[0]);
        while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (pid < 0)
            (void)snprintf(bad, sizeof(bad), "fork: %s", strerror(errno));
        else if (WIFSIGNALED(status))
            (void)snprintf(bad, sizeof(bad), "allocation %lu failed: the run died of signal %d", n,
                           WTERMSIG(status));
        else
            switch (WEXITSTATUS(status)) {
            case RUN_CLEAN:
                done = 1;
                break;
            case RUN_SURVIVED:
                survived++;
                break;
            case RUN_FAILED:
                failed++;
                break;
            case RUN_OTHER:
                if (other++ == 0)
                    (void)snprintf(first_other, sizeof(first_other), "allocation %lu: %s", n, msg);
                break;
            default:
                (void)snprintf(bad, sizeof(bad), "allocation %lu failed: %s", n, msg);
                break;
            }
        if (t->url != NULL && pid > 0 && (pid = fork()) == 0) { /* a server namespace */
            drop_ns(t, url);
            _exit(0);
        }
        while (t->url != NULL && pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        free(url);
        if (t->tmpdir[0] != '\0') { /* one temp file per run: remove it now */
            char path[1024];
            static const char *const ext[] = {".db", ".db-wal", ".db-shm", ".db-journal"};
            size_t i;

            for (i = 0; i < 4; i++) {
                (void)snprintf(path, sizeof(path), "%s/%s%s", t->tmpdir, ns, ext[i]);
                (void)unlink(path);
            }
        }
    }
    printf("# %lu runs: %lu ENOMEM, %lu other statuses, %lu survived the failure\n", n - 1, failed,
           other, survived);
    if (first_other[0] != '\0')
        printf("# first other status: %s\n", first_other);
    if (bad[0] == '\0' && !done)
        (void)snprintf(bad, sizeof(bad), "the sequence still failed after %d runs", OOM_MAX_RUNS);
    if (bad[0] != '\0') {
        printf("not ok 1 - oom.track_values: %s\n0 passed, 1 failed, 0 skipped\n", bad);
        return 1;
    }
    printf("ok 1 - oom.track_values\n1 passed, 0 failed, 0 skipped\n");
    return 0;
}
