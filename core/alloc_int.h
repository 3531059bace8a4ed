/* Internal allocation helpers: every core allocation goes through the application's allocator
 * (trifle_set_allocator) and array sizes are overflow-checked. Never installed. */
#ifndef TRIFLE_ALLOC_INT_H
#define TRIFLE_ALLOC_INT_H

#include <stddef.h>

#include "trifle/common.h"

void *trifle__malloc(size_t size);
void *trifle__calloc(size_t n, size_t size); /* NULL on overflow */
void *trifle__realloc(void *ptr, size_t size);
void *trifle__reallocarray(void *ptr, size_t n, size_t size); /* NULL on overflow */
/* Room for one more element in the array ptr of *cap elements of size bytes, n of them in use:
 * when it is full, its capacity doubles (from first when it is 0) and *cap follows. Returns the
 * array, possibly moved, or NULL (ptr and *cap as they were) when memory runs out. */
void *trifle__array_grow(void *ptr, size_t *cap, size_t n, size_t size, size_t first);
void trifle__free(void *ptr);
char *trifle__strdup(const char *s);
char *trifle__strndup(const char *s, size_t n);

#endif
