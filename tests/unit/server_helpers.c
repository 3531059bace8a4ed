#include "server_helpers.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "driver_host.h"
#include "trifle/trifle.h"

/* ---------------------------------------------------------------------------------------------
 * TCP relay */

static void relay_pair(tcp_relay *r, int cfd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int ufd = socket(AF_INET, SOCK_STREAM, 0);
    char buf[65536];

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)r->up_port);
    if (ufd < 0 || inet_pton(AF_INET, r->up_host, &sa.sin_addr) != 1 ||
        connect(ufd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (ufd >= 0)
            close(ufd);
        close(cfd);
        return;
    }
    if (getsockname(ufd, (struct sockaddr *)&sa, &len) == 0)
        atomic_store(&r->up_local, ntohs(sa.sin_port));
    while (!atomic_load(&r->stop) && !atomic_load(&r->refuse)) {
        struct pollfd p[2] = {{cfd, POLLIN, 0}, {ufd, POLLIN, 0}};
        ssize_t k;
        if (poll(p, 2, 100) <= 0)
            continue;
        if (p[0].revents != 0) {
            k = read(cfd, buf, sizeof(buf));
            if (k <= 0 || write(ufd, buf, (size_t)k) != k)
                break;
        }
        if (p[1].revents != 0) {
            k = read(ufd, buf, sizeof(buf));
            if (k <= 0)
                break;
            if (atomic_load(&r->cut) > 0 && atomic_fetch_sub(&r->cut, 1) == 1) {
                atomic_fetch_add(&r->cuts, 1);
                break;
            }
            if (write(cfd, buf, (size_t)k) != k)
                break;
        }
    }
    atomic_store(&r->up_local, 0);
    close(ufd);
    close(cfd);
}

static void *relay_main(void *p)
{
    tcp_relay *r = p;

    while (!atomic_load(&r->stop)) {
        struct pollfd pl = {r->lfd, POLLIN, 0};
        int cfd;
        if (poll(&pl, 1, 100) <= 0)
            continue;
        cfd = accept(r->lfd, NULL, NULL);
        if (cfd >= 0 && atomic_load(&r->refuse))
            close(cfd);
        else if (cfd >= 0)
            relay_pair(r, cfd);
    }
    return NULL;
}

int test_listen(int *port)
{
    struct sockaddr_in a;
    socklen_t n = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    assert_true(fd >= 0);
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

int tcp_relay_start(tcp_relay *r, const char *up_host, int up_port)
{
    struct sockaddr_in sa;

    memset(r, 0, sizeof(*r));
    r->up_port = up_port;
    (void)snprintf(r->up_host, sizeof(r->up_host), "%s",
                   strcmp(up_host, "localhost") == 0 ? "127.0.0.1" : up_host);
    if (inet_pton(AF_INET, r->up_host, &sa.sin_addr) != 1)
        return -1;
    r->lfd = test_listen(&r->port);
    assert_int_equal(pthread_create(&r->th, NULL, relay_main, r), 0);
    return 0;
}

void tcp_relay_stop(tcp_relay *r)
{
    atomic_store(&r->stop, 1);
    (void)pthread_join(r->th, NULL);
    close(r->lfd);
}

/* ---------------------------------------------------------------------------------------------
 * Allocator and log */

atomic_long test_alloc_count, test_alloc_fail_at;
atomic_int test_log_reconnects, test_log_retries;
static const char *log_origin = "";

static int alloc_fails(void)
{
    return atomic_load(&test_alloc_fail_at) > 0 &&
           atomic_fetch_add(&test_alloc_count, 1) + 1 == atomic_load(&test_alloc_fail_at);
}

static void *t_malloc(size_t size)
{
    return alloc_fails() ? NULL : malloc(size);
}

static void *t_realloc(void *p, size_t size)
{
    return alloc_fails() ? NULL : realloc(p, size);
}

static void t_free(void *p)
{
    free(p);
}

static void t_log(int level, const char *origin, const char *message, void *payload)
{
    (void)payload;
    if (strcmp(origin, log_origin) != 0)
        return;
    if (level == TRIFLE_LOG_INFO && strstr(message, "reconnecting") != NULL)
        atomic_fetch_add(&test_log_reconnects, 1);
    if (level == TRIFLE_LOG_WARN && strstr(message, "retrying") != NULL)
        atomic_fetch_add(&test_log_retries, 1);
}

void test_server_hooks(const char *origin)
{
    static const trifle_allocator a = {t_malloc, t_realloc, t_free};

    log_origin = origin;
    trifle_set_allocator(&a);
    trifle_set_log_handler(TRIFLE_LOG_INFO, t_log, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Client library */

static void test_load_sym(void *lib, void *dst, size_t size, const char *name)
{
    void *sym = dlsym(lib, name);

    if (sym == NULL) {
        fprintf(stderr, "client library symbol %s not found: %s\n", name, dlerror());
        exit(1);
    }
    memcpy(dst, &sym, size); /* object → function pointer, the POSIX way */
}

void *test_load_syms(void *lib, const char *soname, ...)
{
    va_list ap;
    void *dst;

    if (lib == NULL && (lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL)) == NULL) {
        (void)fprintf(stderr, "cannot load %s: %s\n", soname, dlerror());
        exit(1);
    }
    va_start(ap, soname);
    while ((dst = va_arg(ap, void *)) != NULL) {
        size_t size = va_arg(ap, size_t);
        test_load_sym(lib, dst, size, va_arg(ap, const char *));
    }
    va_end(ap);
    return lib;
}

/* ---------------------------------------------------------------------------------------------
 * A driver plugin called directly */

const char *test_fmt(const char *fmt, ...)
{
    static char out[4][512];
    static int k;
    va_list ap;

    k = (k + 1) % 4;
    va_start(ap, fmt);
    (void)vsnprintf(out[k], sizeof(out[k]), fmt, ap);
    va_end(ap);
    return out[k];
}

void test_drop_ok(const trifle_driver *drv, trifle_conn *c)
{
    trifle_error err = TRIFLE_ERROR_INIT;

    if (drv->drop(c, &err) != 0)
        fail_msg("drop: %s", err.message);
}

uint64_t test_mark_read(const trifle_driver *drv, trifle_conn *c, const char *name)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    uint64_t seq = 99;

    if (drv->mark_read(c, name, &seq, &err) != 0)
        fail_msg("mark_read %s: %s", name, err.message);
    return seq;
}

void test_open_refused(const char *url, int rc, const trifle_conn *c, const trifle_error *err,
                       int code, const char *message)
{
    if (rc != code)
        fail_msg("open %s: code %d (%s), want %d", url, rc, err->message, code);
    assert_null(c);
    if (strstr(err->message, message) == NULL)
        fail_msg("open %s: message \"%s\" lacks \"%s\"", url, err->message, message);
}

/* Step `step` of test_oom_steps on *c. */
static int oom_call(const trifle_driver *drv, const test_oom_calls *k, int step, trifle_conn **c,
                    trifle_sink *s, trifle_write_result *res, trifle_error *err)
{
    int64_t at;

    switch (step) {
    case 0:
        return k->open(c, k->ctx, err);
    case 1:
        return k->write(*c, k->ctx, res, err);
    case 2:
        return drv->get(*c, k->buckets, k->n_buckets, s, err);
    case 3:
        return drv->ping(*c, k->key, k->at, k->leaf, 1, err);
    default:
        return drv->scan(*c, k->key, &at, s, err);
    }
}

trifle_conn *test_oom_steps(const trifle_driver *drv, const test_oom_calls *calls)
{
    trifle_conn *c = NULL;
    int step;

    for (step = 0; step < 5; step++) {
        int fails = 0;
        long n;

        for (n = 1;; n++) {
            trifle_write_result res = TRIFLE_WRITE_RESULT_INIT;
            trifle_error err = TRIFLE_ERROR_INIT;
            trifle_sink *s;
            int rc;

            /* a fresh connection: its buffers grow again */
            if (step > 0 && calls->open(&c, calls->ctx, &err) != 0)
                fail_msg("open: %s", err.message);
            s = sink_new(calls->n_buckets);
            alloc_count = 0;
            alloc_fail_at = n;
            rc = oom_call(drv, calls, step, &c, s, &res, &err);
            alloc_fail_at = 0;
            sink_free(s);
            if (rc == 0)
                break;
            if (rc != TRIFLE_ENOMEM)
                print_message("step %d, allocation %ld: %d %s\n", step, n, rc, err.message);
            assert_int_equal(rc, TRIFLE_ENOMEM);
            assert_int_equal(res.outcome_unknown, 0);
            fails++;
            drv->close(c);
            c = NULL;
        }
        assert_true(fails > 0); /* every step allocates at least once */
        if (step < 4) {
            drv->close(c);
            c = NULL;
        }
    }
    return c;
}

/* ---------------------------------------------------------------------------------------------
 * The server of a test program */

const char *test_server_url(const char *name, const char *what, int *status)
{
    const char *url = getenv(name), *ci = getenv("CI"), *strict = getenv("TRIFLE_TEST_STRICT");
    int need;

    if (url != NULL && url[0] != '\0')
        return url;
    need = (ci != NULL && strcmp(ci, "true") == 0) || (strict != NULL && strcmp(strict, "1") == 0);
    (void)fprintf(stderr, "%s is not set: %s %s\n", name, what,
                  need ? "required (CI/TRIFLE_TEST_STRICT)" : "skipped");
    *status = need ? 1 : 77;
    return NULL;
}

int test_run_groups(const char *name, const struct CMUnitTest *offline, size_t n_offline,
                    const struct CMUnitTest *server, size_t n_server, const char *url, int status)
{
    char group[128];
    int failed;

    (void)snprintf(group, sizeof(group), "%s (offline)", name);
    failed = _cmocka_run_group_tests(group, offline, n_offline, NULL, NULL);
    if (url == NULL)
        return failed != 0 ? 1 : status;
    (void)snprintf(group, sizeof(group), "%s (server)", name);
    failed += _cmocka_run_group_tests(group, server, n_server, NULL, NULL);
    trifle_shutdown();
    return failed != 0;
}

/* ---------------------------------------------------------------------------------------------
 * Time */

void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

double now_s(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
