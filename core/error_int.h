/* Internal error helpers. Never installed. */
#ifndef TRIFLE_ERROR_INT_H
#define TRIFLE_ERROR_INT_H

#include <stdarg.h>

#include "trifle/error.h"
#include "util/tu_error.h"

/* Fill err (may be NULL) with code and a formatted message; path and driver are cleared.
 * Returns code, so `return trifle__error(err, TRIFLE_EINVAL, "...")` reads naturally. The message
 * is truncated on a UTF-8 boundary and ends in "…" when it did not fit. */
#define trifle__error(...) tu_error_set(__VA_ARGS__)
/* As trifle__error, with the store's native code and a va_list. */
#define trifle__verror(err, code, native, fmt, ap) tu_error_vset(err, code, native, fmt, ap)
/* As trifle__error, and sets err->path to path (NULL = ""). */
int trifle__error_path(trifle_error *err, int code, const char *path, const char *fmt, ...)
    TRIFLE_PRINTF(4, 5);
/* Internal logging through the application's handler. */
void trifle__log(int level, const char *origin, const char *fmt, ...) TRIFLE_PRINTF(3, 4);
void trifle__vlog(int level, const char *origin, const char *fmt, va_list ap) TRIFLE_PRINTF(3, 0);

#endif
