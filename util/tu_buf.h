/* The string buffer: growable bytes for building text (JSON, SQL, messages, HTTP bodies), always
 * NUL-terminated after an append. Memory comes from the owner's allocator through tu_buf_ops
 * (libtrifle's trifle__realloc, the server's byte pools, or the C library when ops is NULL).
 * Allocation failure is sticky: after the first failed append every append is a no-op and
 * tu_buf_failed() is true, so builders check once at the end. One thread at a time. Private to
 * this tree (util/README.md). */
#ifndef TRIFLE_TU_BUF_H
#define TRIFLE_TU_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "trifle/common.h"

/* Where a buffer's memory comes from. */
typedef struct tu_buf_ops {
    /* Return a block of at least `need` bytes holding the first `len` bytes of data (data NULL: a
     * new block) and set *cap to its usable size; NULL when out of memory (data stays valid). */
    char *(*grow)(void *ctx, char *data, size_t len, size_t need, size_t *cap);
    /* Give back a block grow() returned (never called with NULL). */
    void (*release)(void *ctx, char *data);
} tu_buf_ops;

typedef struct tu_buf {
    char *data; /* NUL-terminated after any append; NULL until the first one */
    size_t len;
    size_t cap;
    int failed;
    const tu_buf_ops *ops; /* NULL: malloc/realloc/free */
    void *ctx;             /* ops' context (a pool) */
} tu_buf;

/* An empty buffer on ops (NULL: the C library) with context ctx. */
#define TU_BUF_INIT(ops, ctx)       \
    {                               \
        NULL, 0, 0, 0, (ops), (ctx) \
    }

/* Ensure room for n more bytes and the NUL; returns 0 or -1 (and marks the buffer failed).
 * Capacity grows by doubling from 64. */
int tu_buf_reserve(tu_buf *b, size_t n);
void tu_buf_append(tu_buf *b, const void *s, size_t n);
void tu_buf_puts(tu_buf *b, const char *s);
void tu_buf_putc(tu_buf *b, char c);
void tu_buf_printf(tu_buf *b, const char *fmt, ...) TRIFLE_PRINTF(2, 3);

/* tu_buf_json_string() flag: bytes that are not well-formed UTF-8 are written as U+FFFD. */
#define TU_BUF_JSON_REPAIR 1u

/* Append s (n bytes) as a JSON string literal with quotes: '"' and '\\' escaped, \n \r \t \b \f
 * in their short forms, other control characters as \u00XX, every other byte as it is (or, with
 * TU_BUF_JSON_REPAIR, U+FFFD for each byte that does not start well-formed UTF-8). */
void tu_buf_json_string(tu_buf *b, const char *s, size_t n, unsigned flags);

int tu_buf_failed(const tu_buf *b);
/* The text as a C string ("" when empty), or NULL after a failed append. */
const char *tu_buf_cstr(tu_buf *b);
/* Hand the text to the caller, who frees it the way ops allocates (for libtrifle: trifle__free);
 * the buffer is reset. NULL when an append failed (the memory is released). Never NULL otherwise
 * ("" if empty). */
char *tu_buf_detach(tu_buf *b);
void tu_buf_reset(tu_buf *b); /* len = 0, keeps capacity, clears failed */
void tu_buf_free(tu_buf *b);  /* releases the memory; the buffer is empty and usable again */

#endif
