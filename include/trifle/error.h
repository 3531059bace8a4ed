/**
 * @file trifle/error.h
 * @brief Status codes and the caller-owned error record used by every fallible call.
 *
 * Fallible functions return `int`: 0 on success or a negative trifle_status. Their last parameter
 * is a `trifle_error *` that may be NULL and is left untouched on success:
 * @code
 * trifle_error err = TRIFLE_ERROR_INIT;
 * if (trifle_track(t, "event::logs", now, payload, 0, &err) != 0)
 *     fprintf(stderr, "track failed: %s\n", err.message);
 * @endcode
 */
#ifndef TRIFLE_ERROR_H
#define TRIFLE_ERROR_H

#include "common.h"

TRIFLE_BEGIN_DECLS

/** Status codes. Append only: values are never reused or renumbered. */
typedef enum trifle_status {
    TRIFLE_OK = 0,         /**< success */
    TRIFLE_ERROR = -1,     /**< unexpected internal failure */
    TRIFLE_ENOMEM = -2,    /**< allocation failure */
    TRIFLE_EINVAL = -3,    /**< invalid argument: key, values, time, granularity, series input */
    TRIFLE_ENOTFOUND = -4, /**< driver plugin missing; Simple Stats entry missing; no ping */
    TRIFLE_ENOTSUP = -5,   /**< the driver lacks a capability */
    TRIFLE_ECONFIG = -6,   /**< configuration rejected */
    TRIFLE_ECONN = -7,     /**< cannot reach storage */
    TRIFLE_EAUTH = -8,     /**< storage rejected the credentials */
    TRIFLE_ETIMEDOUT = -9, /**< storage timeout */
    TRIFLE_EBUSY = -10,    /**< buffer full, or storage locked */
    TRIFLE_EABI = -11,     /**< plugin ABI mismatch */
    TRIFLE_EDRIVER = -12,  /**< other storage error; `native` keeps the store's code */
    TRIFLE_EDATA = -13,    /**< stored data prevents the write (text in a field to increment) */
    TRIFLE_ECLOSED = -14,  /**< handle or buffer closed */
    TRIFLE_EIO = -15       /**< the write-ahead journal could not take a write (disk full,
                                I/O error); nothing was acknowledged */
} trifle_status;

/** Caller-owned, fixed-size error record: no allocation, no thread-local state, safe across dlopen.
 */
typedef struct trifle_error {
    int code;          /**< a trifle_status */
    int native;        /**< the store's own code (SQLITE_BUSY, a SQLSTATE as integer, ...) or 0 */
    char driver[16];   /**< driver name, "" when the core raised the error */
    char path[256];    /**< dotted values path at fault ("meta.bad"), "" when none */
    char message[256]; /**< lower case, names the culprit; truncated UTF-8-safely with "…" */
} trifle_error;

#ifndef __cplusplus
_Static_assert(sizeof(trifle_error) == 2 * sizeof(int) + 16 + 256 + 256,
               "trifle_error is part of the ABI and must not change size");
#endif

/** Initialiser for a trifle_error on the stack. */
#define TRIFLE_ERROR_INIT \
    {                     \
        0, 0, "", "", ""  \
    }

/**
 * @brief A static description of a status code ("invalid argument").
 * @param code A trifle_status; unknown values give "unknown error". Thread-safe.
 * @return A static string.
 */
TRIFLE_API const char *trifle_strerror(int code);

/**
 * @brief The symbolic name of a status code without its prefix ("EINVAL", "OK", "ECONFIG").
 * @param code A trifle_status; unknown values give "ERROR". Thread-safe.
 * @return A static string.
 */
TRIFLE_API const char *trifle_status_name(int code);

/**
 * @brief Reset an error record to TRIFLE_ERROR_INIT.
 * @param err The record; NULL is fine.
 */
TRIFLE_API void trifle_error_clear(trifle_error *err);

TRIFLE_END_DECLS

#endif
