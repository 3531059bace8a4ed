/* The process-wide log handler (trifle_set_log_handler) and the functions that write through it.
 * Apart from error.c because it holds state: libtrifle-simple formats its errors with its own copy
 * of the error helpers but logs through these, via trifle_log(), so one handler sees every message
 * (simple/README.md). */
#include "error_int.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "trifle/common.h"

/* The handler is swapped atomically as a whole; level is advisory. */
typedef struct log_state {
    trifle_log_fn fn;
    void *payload;
} log_state;
static _Atomic int log_level = -1;
static log_state log_handler;
static atomic_flag log_lock = ATOMIC_FLAG_INIT;

void trifle_set_log_handler(int max_level, trifle_log_fn fn, void *payload)
{
    while (atomic_flag_test_and_set(&log_lock))
        ;
    log_handler.fn = fn;
    log_handler.payload = payload;
    atomic_flag_clear(&log_lock);
    atomic_store(&log_level, fn == NULL ? -1 : max_level);
}

void trifle__vlog(int level, const char *origin, const char *fmt, va_list ap)
{
    char msg[1024];
    log_state h;

    if (level > atomic_load(&log_level))
        return;
    while (atomic_flag_test_and_set(&log_lock))
        ;
    h = log_handler;
    atomic_flag_clear(&log_lock);
    if (h.fn == NULL)
        return;
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    h.fn(level, origin, msg, h.payload);
}

void trifle__log(int level, const char *origin, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    trifle__vlog(level, origin, fmt, ap);
    va_end(ap);
}

void trifle_vlog(int level, const char *origin, const char *fmt, va_list ap)
{
    if (fmt == NULL)
        return; /* a caller's slip must not crash the application's process */
    trifle__vlog(level, origin != NULL ? origin : "", fmt, ap);
}

void trifle_log(int level, const char *origin, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    trifle_vlog(level, origin, fmt, ap);
    va_end(ap);
}
