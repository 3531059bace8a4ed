/* The host side of the driver ABI for the driver plugin tests (test_driver_sqlite.c,
 * test_driver_redis.c): a trifle_host_api such as the core hands to a plugin, built on the core's
 * own error, number printing and number parsing code, with allocation failure injection, log
 * counters, and a sink that collects what get and scan emit. Linked from the unit_support
 * library. */
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
