/* The overflow-checked allocation helpers, built only on trifle__malloc/realloc/free (alloc.c).
 * Apart from alloc.c, which holds the allocator, so that libtrifle-simple can compile them over
 * its own trifle__malloc/realloc/free, which allocate through libtrifle's public trifle_mem_alloc
 * (simple/simple_support.c). */
#include "alloc_int.h"

#include <stdint.h>
#include <string.h>

void *trifle__calloc(size_t n, size_t size)
{
    void *p;

    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    p = trifle__malloc(n * size);
    if (p != NULL)
        memset(p, 0, n * size == 0 ? 1 : n * size);
    return p;
}

void *trifle__reallocarray(void *ptr, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return trifle__realloc(ptr, n * size);
}

void *trifle__array_grow(void *ptr, size_t *cap, size_t n, size_t size, size_t first)
{
    size_t want;
    void *p;

    if (n < *cap)
        return ptr;
    if (*cap > SIZE_MAX / 2)
        return NULL;
    want = *cap != 0 ? *cap * 2 : first;
    if ((p = trifle__reallocarray(ptr, want, size)) != NULL)
        *cap = want;
    return p;
}

char *trifle__strndup(const char *s, size_t n)
{
    char *d = trifle__malloc(n + 1);

    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *trifle__strdup(const char *s)
{
    return s == NULL ? NULL : trifle__strndup(s, strlen(s));
}
