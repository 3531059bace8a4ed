/* libtrifle's string buffer: util/tu_buf.h on the application's allocator (trifle__realloc), so
 * trifle_set_allocator() and the OOM tests see every byte. Allocation failure is sticky: after the
 * first failed append every append is a no-op and trifle__buf_failed() is true, so builders check
 * once at the end. The trifle__buf_* names are core's spelling of the tu_buf_* functions. Never
 * installed. */
#ifndef TRIFLE_BUF_INT_H
#define TRIFLE_BUF_INT_H

#include <stdarg.h>
#include <stddef.h>

#include "trifle/common.h"
#include "util/tu_buf.h"

typedef tu_buf trifle__buf;

/* The buffer operations on trifle__realloc/trifle__free. */
extern const tu_buf_ops trifle__buf_ops;

#define TRIFLE__BUF_INIT TU_BUF_INIT(&trifle__buf_ops, NULL)

#define trifle__buf_append tu_buf_append
#define trifle__buf_puts tu_buf_puts
#define trifle__buf_putc tu_buf_putc
#define trifle__buf_printf tu_buf_printf
/* Append s (n bytes) as a JSON string literal with quotes; control characters are escaped as
 * \uXXXX (\n, \t, \r, \b, \f short forms), '"' and '\\' escaped, other bytes copied. */
#define trifle__buf_json_string(b, s, n) tu_buf_json_string((b), (s), (n), 0)
/* Ensure room for n more bytes; returns 0 or -1 (and marks the buffer failed). */
#define trifle__buf_reserve tu_buf_reserve
#define trifle__buf_failed tu_buf_failed
/* Hand the text to the caller (who frees it with trifle__free); the buffer is reset. Returns
 * NULL when an append failed (the memory is released). Never NULL otherwise ("" if empty). */
#define trifle__buf_detach tu_buf_detach
#define trifle__buf_reset tu_buf_reset /* len = 0, keeps capacity, clears failed */
#define trifle__buf_free tu_buf_free

/* Append a double in canonical number text (SPEC §4.5). */
void trifle__buf_number(trifle__buf *b, double v);

#endif
