/* Concurrency (SPEC §7.4, §7.10, ERRATA minor 20): 8 processes × 2,000 unbuffered tracks of one
 * key with nested dyadic fractions at the same time give exact totals in the data and in the
 * system record; --threads N does the same with N threads sharing one handle (run it under TSan).
 */
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROCESSES 8
#define TRACKS 2000
#define CKEY "conc::key"
#define CAT (CONF_T0 + 1234)
#define CPAYLOAD "{\"count\":1,\"duration\":{\"db\":0.5,\"total\":0.25}}"

/* Tracks from one worker; the first error goes into msg. 0 or -1. */
static int track_many(trifle *t, const trifle_payload *p, char *msg, size_t size)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    int i, rc;

    for (i = 0; i < TRACKS; i++)
        if ((rc = trifle_track(t, CKEY, CAT, p, 0, &err)) != 0) {
            (void)snprintf(msg, size, "track %d: %s %s", i, trifle_status_name(rc), err.message);
            return -1;
        }
    return 0;
}

static void expect_totals(conf_ctx *c, trifle *t, long n)
{
    static const char *const gs[] = {"1h", "1d"};
    trifle_series *s;
    size_t i;

    for (i = 0; i < 2; i++) {
        if ((s = conf_values(c, t, CKEY, CAT, CAT, gs[i])) == NULL ||
            conf_expect_row(c, s, 0,
                            conf_printf(c,
                                        "{\"count\":%ld,\"duration\":{\"db\":%ld,\"total\":%ld}}",
                                        n, n / 2, n / 4)) != 0 ||
            (s = conf_values(c, t, "__system__key__", CAT, CAT, gs[i])) == NULL ||
            conf_expect_row(
                c, s, 0, conf_printf(c, "{\"count\":%ld,\"keys\":{\"" CKEY "\":%ld}}", n, n)) != 0)
            return;
    }
}

/* A child process: its own handle, TRACKS tracks, then _exit (never the parent's atexit). */
static void child(conf_ctx *c, int fd)
{
    trifle_config *cfg = NULL;
    trifle *t = NULL;
    trifle_payload *p = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    char msg[512] = "";
    int rc = 0;

    if ((rc = trifle_config_new(&cfg, &err)) != 0 ||
        (rc = trifle_config_set(cfg, "driver", c->url, &err)) != 0 ||
        (c->driver_path != NULL &&
         (rc = trifle_config_set(cfg, "driver_path", c->driver_path, &err)) != 0) ||
        (rc = trifle_config_set(cfg, "granularities", "1h,1d", &err)) != 0 ||
        (rc = trifle_config_set(cfg, "buffer.enabled", "false", &err)) != 0 ||
        (rc = trifle_open(&t, cfg, &err)) != 0 ||
        (rc = trifle_payload_parse(&p, CPAYLOAD, strlen(CPAYLOAD), &err)) != 0)
        (void)snprintf(msg, sizeof(msg), "%s %s", trifle_status_name(rc), err.message);
    else if (track_many(t, p, msg, sizeof(msg)) != 0)
        rc = -1;
    if (t != NULL && trifle_close(t, &err) != 0 && rc == 0) {
        (void)snprintf(msg, sizeof(msg), "close: %s", err.message);
        rc = -1;
    }
    trifle_free(t);
    trifle_payload_free(p);
    trifle_config_free(cfg);
    if (rc != 0)
        (void)!write(fd, msg, strlen(msg));
    close(fd);
    _exit(rc != 0 ? 1 : 0);
}

static void case_processes(conf_ctx *c)
{
    pid_t pids[PROCESSES];
    int fds[PROCESSES];
    int i, started = 0;
    trifle *t;

    /* the parent sets the namespace up, then holds no connection while the children run */
    if ((t = conf_handle(c, NULL, "granularities", "1h,1d", NULL)) == NULL ||
        conf_handle_close(c, t) != 0)
        return;
    (void)fflush(stdout);
    (void)fflush(stderr);
    for (i = 0; i < PROCESSES; i++) {
        int p[2];

        if (pipe(p) != 0) {
            conf_fail(c, "pipe: %s", strerror(errno));
            break;
        }
        if ((pids[i] = fork()) < 0) {
            conf_fail(c, "fork: %s", strerror(errno));
            close(p[0]);
            close(p[1]);
            break;
        }
        if (pids[i] == 0) {
            close(p[0]);
            child(c, p[1]);
        }
        close(p[1]);
        fds[i] = p[0];
        started++;
    }
    for (i = 0; i < started; i++) {
        char msg[512];
        ssize_t n = read(fds[i], msg, sizeof(msg) - 1);
        int status = 0;

        close(fds[i]);
        msg[n > 0 ? n : 0] = '\0';
        while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
            ;
        if (WIFSIGNALED(status))
            conf_fail(c, "process %d died of signal %d", i, WTERMSIG(status));
        else if (WEXITSTATUS(status) != 0)
            conf_fail(c, "process %d: %s", i, msg[0] != '\0' ? msg : "failed");
    }
    CONF_RETURN_IF_FAILED(c);
    if ((t = conf_handle(c, NULL, "granularities", "1h,1d", NULL)) == NULL)
        return;
    expect_totals(c, t, (long)PROCESSES * TRACKS);
}

typedef struct worker {
    pthread_t thread;
    trifle *t;
    const trifle_payload *p;
    int rc;
    char msg[512];
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;

    w->rc = track_many(w->t, w->p, w->msg, sizeof(w->msg));
    return NULL;
}

static void case_threads(conf_ctx *c)
{
    worker *w = conf_alloc(c, (size_t)c->threads * sizeof(*w));
    const char *conns = conf_printf(c, "%d", c->threads);
    trifle_payload *p;
    trifle *t;
    int i, started = 0;

    if ((t = conf_handle(c, NULL, "granularities", "1h,1d", "connections", conns, NULL)) == NULL ||
        (p = conf_payload(c, CPAYLOAD)) == NULL)
        return;
    for (i = 0; i < c->threads; i++) {
        int rc;

        w[i].t = t;
        w[i].p = p;
        if ((rc = pthread_create(&w[i].thread, NULL, worker_main, &w[i])) != 0) {
            conf_fail(c, "pthread_create: %s", strerror(rc));
            break;
        }
        started++;
    }
    for (i = 0; i < started; i++) {
        pthread_join(w[i].thread, NULL);
        if (w[i].rc != 0)
            conf_fail(c, "thread %d: %s", i, w[i].msg);
    }
    CONF_RETURN_IF_FAILED(c);
    expect_totals(c, t, (long)c->threads * TRACKS);
}

const conf_case conf_cases_concurrency[] = {
    {"concurrency.processes", CONF_BARE, 0, 0, case_processes},
    {"concurrency.threads", 0, 0, 0, case_threads},
    {NULL, 0, 0, 0, NULL},
};
