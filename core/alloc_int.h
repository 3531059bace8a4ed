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
void trifle__free(void *ptr);
char *trifle__strdup(const char *s);
char *trifle__strndup(const char *s, size_t n);

#endif
