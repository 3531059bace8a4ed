/* The host side of the driver ABI for the tests that call a driver plugin directly
 * (drivers/<name>/tests/, tests/http/http_calls.c): the one way such a test loads a plugin
 * (test_host_load) and opens a connection (test_host_open), and a trifle_host_api such as the
 * core hands to a plugin, built on the core's own error, number printing and number parsing
 * code, with allocation failure injection, log counters, and a sink that collects what get and
 * scan emit. Tests of a driver through the core (trifle_storage_open: postgres, mysql, mongo,
 * trifle-conformance) use the core's own host instead. Linked from the unit_support library. */
#ifndef TRIFLE_TEST_DRIVER_HOST_H
#define TRIFLE_TEST_DRIVER_HOST_H

#include <stddef.h>

#include "trifle/driver.h"

/* The host to pass to a driver's init and open. Errors it sets name test_host_driver. */
extern const trifle_host_api test_host;
extern const char *test_host_driver; /* "sqlite": err->driver of every error the host sets */

/* Allocation number alloc_fail_at (1-based, counted in alloc_count from the moment it is set) of
 * host->alloc and host->realloc returns NULL; 0 = none. Nothing is counted while it is 0, so
 * threads may allocate concurrently then. */
extern long alloc_count, alloc_fail_at;

/* host->log calls at TRIFLE_LOG_WARN and TRIFLE_LOG_INFO (the message is not kept). */
extern int log_warn, log_info;

/* Load the plugin file at path as the loader does: dlopen(RTLD_NOW | RTLD_LOCAL), then its entry
 * trifle_driver_<name>_init called with test_host. Returns the driver's table, with the dlopen
 * handle in *handle when handle is not NULL (to reach the client library the plugin links), or
 * NULL after printing why to stderr (usable from group setups and from programs without cmocka).
 * Without handle, the plugin stays loaded until exit. */
const trifle_driver *test_host_load(const char *path, const char *name, void **handle);

/* Open a connection of drv as the core does: open_params() with the identifier mode and
 * separator typed when the driver has it (ABI 1.3), else open() with `trifle.joined` (the mode's
 * name, or "invalid" for a mode out of range) and `trifle.separator` ahead of opts. opts is a
 * NULL-terminated list of name/value pairs, or NULL for none; separator NULL means "::". Returns
 * what the driver returned. */
int test_host_open(const trifle_driver *drv, trifle_conn **out, const char *url, int mode,
                   const char *separator, const char *const *opts, trifle_error *err);

/* One leaf a driver emitted (values of a repeated path are summed, as the core does). */
typedef struct sink_leaf {
    char *path;
    double value;
} sink_leaf;

/* The leaves emitted for one bucket index. */
typedef struct sink_bucket {
    sink_leaf *l;
    size_t n, cap;
} sink_bucket;

/* The sink passed to get and scan: n buckets, and how many emit calls there were. */
struct trifle_sink {
    sink_bucket *b;
    size_t n;
    long emits;
};

/* A sink for n bucket indexes; emit fails the test for an index out of range, a non-finite
 * value or an empty path. */
trifle_sink *sink_new(size_t n);

/* Free s and its leaves; NULL is fine. */
void sink_free(trifle_sink *s);

/* The value of path in bucket index; fails the test when it is missing. */
double sink_value(const trifle_sink *s, size_t index, const char *path);

/* 1 when bucket index has a leaf path, else 0. */
int sink_has(const trifle_sink *s, size_t index, const char *path);

/* The number of distinct paths emitted for bucket index. */
size_t sink_count(const trifle_sink *s, size_t index);

#endif
