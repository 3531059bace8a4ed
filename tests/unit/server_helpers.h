/* What the tests of the server-backed drivers share. Through the core (postgres, mysql): a TCP
 * relay that can lose a reply or refuse connections, a thread-safe core allocator that fails one
 * allocation, a log handler counting the drivers' reconnect and retry messages. Calling a plugin
 * directly (redis, redis_cluster, sqlite; driver_host.h): the allocation-failure steps, the check
 * of a refused open, drop and mark helpers. For every driver test program: the server URL from
 * the environment and the offline/server groups, the client library's symbols, a loopback
 * listener and the time helpers, one copy each. Linked from the unit_support library; cmocka
 * checks end the test on failure. */
#ifndef TRIFLE_TEST_SERVER_HELPERS_H
#define TRIFLE_TEST_SERVER_HELPERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "trifle/driver.h"

/* ---- a TCP relay between a driver and its server ------------------------------------------ */

/* Listens on 127.0.0.1:port and relays each connection, one at a time, to up_host:up_port. */
typedef struct tcp_relay {
    int lfd;
    int port;            /* where the driver connects */
    int up_port;         /* the server */
    char up_host[256];   /* its IPv4 address */
    atomic_int up_local; /* local port of the current upstream connection, 0 = none (to find
                            the driver's session in the server's process list) */
    atomic_int cut;      /* armed (n > 0): swallow the n-th server → client read from now and
                            close both sides: the request ran, the driver never hears back */
    atomic_int cuts;     /* replies swallowed */
    atomic_int refuse;   /* close every connection at once: a server that is down */
    atomic_int stop;
    pthread_t th;
} tcp_relay;

/* A socket listening on a free port of 127.0.0.1 (SO_REUSEADDR); *port receives the port. Fails
 * the test on error. */
int test_listen(int *port);

/* Start a relay to up_host (an IPv4 address, or "localhost") port up_port. Returns 0, or -1 when
 * up_host is not an IPv4 address (a server on a Unix socket): the caller skips. */
int tcp_relay_start(tcp_relay *r, const char *up_host, int up_port);

/* Stop the relay and close its socket. */
void tcp_relay_stop(tcp_relay *r);

/* ---- a failing core allocator and log counters -------------------------------------------- */

/* Allocation number test_alloc_fail_at (1-based, counted in test_alloc_count from when it is set)
 * of the core's allocator fails; 0 = none. Safe with threads. */
extern atomic_long test_alloc_count, test_alloc_fail_at;

/* The driver's log lines seen: INFO "reconnecting" and WARN "retrying". */
extern atomic_int test_log_reconnects, test_log_retries;

/* Install the failing allocator (trifle_set_allocator) and a log handler at TRIFLE_LOG_INFO that
 * counts the lines of the driver named origin ("postgres") in the counters above. */
void test_server_hooks(const char *origin);

/* ---- a client library's functions ---------------------------------------------------------- */

/* The functions of a client library, for the tests that talk to the server through the library
 * the driver loaded: lib (or, when it is NULL, dlopen(soname)), then for each triple of the
 * argument list, up to a NULL dst, dlsym(lib, name) into the function pointer at dst (size
 * bytes): TEST_SYM(s, field, name) makes the triple of s.field. Exits the program when the
 * library or a symbol is missing. Returns lib. */
void *test_load_syms(void *lib, const char *soname, ...);
#define TEST_SYM(s, field, name) (void *)&(s).field, sizeof((s).field), (const char *)(name)

/* ---- the server of a test program ---------------------------------------------------------- */

/* $name when it is set and not empty. Else NULL, after a line on stderr saying that what (the
 * tests that need the server) are skipped, or required when CI=true or TRIFLE_TEST_STRICT=1; then
 * *status is the program's exit status: 1 when they are required, else 77 (a ctest skip). */
const char *test_server_url(const char *name, const char *what, int *status);

struct CMUnitTest;

/* The exit status of a program whose offline tests need no server and whose server tests need
 * the server at url (from test_server_url, with its status): both groups run, named "<name>
 * (offline)" and "<name> (server)", then trifle_shutdown(); without url only the offline ones
 * run, and status is returned when they pass. */
int test_run_groups(const char *name, const struct CMUnitTest *offline, size_t n_offline,
                    const struct CMUnitTest *server, size_t n_server, const char *url, int status);

/* ---- a driver plugin called directly (driver_host.h) ---------------------------------------- */

/* printf into one of four static buffers taken in turn, so that a few results (hash names, keys)
 * can be in use at once. */
const char *test_fmt(const char *fmt, ...) TRIFLE_PRINTF(1, 2);

/* drv->drop(c); fails the test on error. */
void test_drop_ok(const trifle_driver *drv, trifle_conn *c);

/* The journal mark `name` as drv->mark_read reads it on c; fails the test on error. */
uint64_t test_mark_read(const trifle_driver *drv, trifle_conn *c, const char *name);

/* An open of url returned rc with c and err: rc must be code, c NULL, and the message must
 * contain message; fails the test otherwise. */
void test_open_refused(const char *url, int rc, const trifle_conn *c, const trifle_error *err,
                       int code, const char *message);

/* What test_oom_steps calls: open (step 0, and a fresh connection before each later step),
 * write (step 1), get of buckets (step 2), ping of key at `at` with leaf (step 3) and scan of
 * key (step 4). */
typedef struct test_oom_calls {
    int (*open)(trifle_conn **c, void *ctx, trifle_error *err);
    int (*write)(trifle_conn *c, void *ctx, trifle_write_result *res, trifle_error *err);
    const trifle_bucket *buckets;
    size_t n_buckets;
    const char *key;
    int64_t at;
    const trifle_leaf *leaf;
    void *ctx;
} test_oom_calls;

/* Each step of calls with allocation 1, 2, ... of the test host failing in turn until it
 * succeeds: every failure is TRIFLE_ENOMEM with a known outcome, and every step fails at least
 * once. Returns the open connection of the last step. */
trifle_conn *test_oom_steps(const trifle_driver *drv, const test_oom_calls *calls);

/* ---- time ---------------------------------------------------------------------------------- */

/* Sleep ms milliseconds (all of them: a signal does not cut the sleep short). */
void sleep_ms(long ms);

/* Seconds on the monotonic clock. */
double now_s(void);

#endif
