/* Error formatting: one way to fill a trifle_error and to cut a message to its fixed-size field,
 * for core, the server and the CLI. Private to this tree (util/README.md). */
#ifndef TRIFLE_TU_ERROR_H
#define TRIFLE_TU_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#include "trifle/error.h"

/* Copy the NUL-terminated src into dst of size n, cutting on a UTF-8 character boundary and
 * ending in "…" (U+2026) when it does not fit. n = 0 writes nothing; n < 4 and too long gives "".
 */
void tu_strlcpy_utf8(char *dst, const char *src, size_t n);

/* Fill err (may be NULL) with code, native and the message fmt formats (at most 1023 bytes are
 * formatted, then cut to err->message by tu_strlcpy_utf8); driver and path are cleared. Returns
 * code, so `return tu_error_vset(...)` reads naturally. */
int tu_error_vset(trifle_error *err, int code, int native, const char *fmt, va_list ap)
    TRIFLE_PRINTF(4, 0);

/* tu_error_vset() with native 0 and variable arguments. */
int tu_error_set(trifle_error *err, int code, const char *fmt, ...) TRIFLE_PRINTF(3, 4);

#ifdef __clang_analyzer__
/* For clang-tidy's analyser only: it cannot see into tu_error_set() from another file, so it
 * would follow paths where `return trifle__error(...)` returned 0. Spelled out, the call visibly
 * yields its code (evaluated twice here, which only the analyser sees). */
#define tu_error_set(err, code, ...) (tu_error_set((err), (code), __VA_ARGS__), (code))
#endif

#endif
