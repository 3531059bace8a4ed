/* A growable byte buffer for building text (JSON, SQL, messages). Allocation failure is sticky:
 * after the first failed append every append is a no-op and trifle__buf_failed() is true, so
 * builders check once at the end. Never installed. */
#ifndef TRIFLE_BUF_INT_H
#define TRIFLE_BUF_INT_H

#include <stdarg.h>
#include <stddef.h>

#include "trifle/common.h"

typedef struct trifle__buf {
    char *data;   /* NUL-terminated while len > 0 or after any append */
    size_t len;
    size_t cap;
    int failed;
} trifle__buf;

#define TRIFLE__BUF_INIT {NULL, 0, 0, 0}

void trifle__buf_append(trifle__buf *b, const char *s, size_t n);
void trifle__buf_puts(trifle__buf *b, const char *s);
void trifle__buf_putc(trifle__buf *b, char c);
void trifle__buf_printf(trifle__buf *b, const char *fmt, ...) TRIFLE_PRINTF(2, 3);
/* Append s (n bytes) as a JSON string literal with quotes; control characters are escaped as
 * \uXXXX (\n, \t, \r, \b, \f short forms), '"' and '\\' escaped, other bytes copied. */
void trifle__buf_json_string(trifle__buf *b, const char *s, size_t n);
/* Append a double in canonical number text (SPEC §4.5). */
void trifle__buf_number(trifle__buf *b, double v);
/* Ensure room for n more bytes; returns 0 or -1 (and marks the buffer failed). */
int trifle__buf_reserve(trifle__buf *b, size_t n);
int trifle__buf_failed(const trifle__buf *b);
/* Hand the text to the caller (who frees it with trifle__free); the buffer is reset. Returns
 * NULL when an append failed (the memory is released). Never NULL otherwise ("" if empty). */
char *trifle__buf_detach(trifle__buf *b);
void trifle__buf_reset(trifle__buf *b); /* len = 0, keeps capacity, clears failed */
void trifle__buf_free(trifle__buf *b);

#endif
