/* What libtrifle-simple takes from libtrifle's process state: allocation and logging. The module
 * compiles its own copies of the stateless core basics (buffer, number text, error text, UTF-8),
 * but memory it hands out is released with trifle_mem_free() and its messages belong in the
 * application's one log stream, so the allocator and the log handler are libtrifle's, reached
 * through the public API. */
#include <stdarg.h>
#include <stddef.h>

#include "alloc_int.h"
#include "error_int.h"
#include "trifle/common.h"

void *trifle__malloc(size_t size)
{
    return trifle_mem_alloc(size);
}

void *trifle__realloc(void *ptr, size_t size)
{
    return trifle_mem_realloc(ptr, size);
}

void trifle__free(void *ptr)
{
    trifle_mem_free(ptr);
}

void trifle__vlog(int level, const char *origin, const char *fmt, va_list ap)
{
    trifle_vlog(level, origin, fmt, ap);
}

void trifle__log(int level, const char *origin, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    trifle_vlog(level, origin, fmt, ap);
    va_end(ap);
}
