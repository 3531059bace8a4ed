#include "error_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "trifle/common.h"

static const char *const names[] = {"OK",     "ERROR",   "ENOMEM",    "EINVAL", "ENOTFOUND",
                                    "ENOTSUP", "ECONFIG", "ECONN",     "EAUTH",  "ETIMEDOUT",
                                    "EBUSY",   "EABI",    "EDRIVER",   "EDATA",  "ECLOSED",
                                    "EIO"};
static const char *const texts[] = {"success",
                                    "unexpected internal failure",
                                    "out of memory",
                                    "invalid argument",
                                    "not found",
                                    "not supported by the driver",
                                    "configuration rejected",
                                    "cannot reach storage",
                                    "storage rejected the credentials",
                                    "storage timed out",
                                    "busy",
                                    "driver ABI mismatch",
                                    "storage error",
                                    "stored data prevents the write",
                                    "closed",
                                    "journal write failed"};

const char *trifle_strerror(int code)
{
    if (code > 0 || -code >= (int)(sizeof(texts) / sizeof(texts[0])))
        return "unknown error";
    return texts[-code];
}

const char *trifle_status_name(int code)
{
    if (code > 0 || -code >= (int)(sizeof(names) / sizeof(names[0])))
        return "ERROR";
    return names[-code];
}

void trifle_error_clear(trifle_error *err)
{
    if (err != NULL)
        memset(err, 0, sizeof(*err));
}

int trifle__error_path(trifle_error *err, int code, const char *path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)trifle__verror(err, code, 0, fmt, ap);
    va_end(ap);
    if (err != NULL && path != NULL)
        tu_strlcpy_utf8(err->path, path, sizeof(err->path));
    return code;
}

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

const char *trifle_version(void)
{
    return TRIFLE_VERSION_STRING;
}
