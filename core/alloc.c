#include "alloc_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static trifle_allocator allocator = {malloc, realloc, free};

void trifle_set_allocator(const trifle_allocator *a)
{
    cJSON_Hooks hooks;

    if (a == NULL || a->malloc == NULL || a->realloc == NULL || a->free == NULL) {
        allocator.malloc = malloc;
        allocator.realloc = realloc;
        allocator.free = free;
    } else {
        allocator = *a;
    }
    /* cJSON's hooks take no realloc unless malloc/free are the libc ones; that is fine: it then
     * allocates and copies. */
    hooks.malloc_fn = allocator.malloc;
    hooks.free_fn = allocator.free;
    cJSON_InitHooks(&hooks);
}

void *trifle__malloc(size_t size)
{
    return allocator.malloc(size == 0 ? 1 : size);
}

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

void *trifle__realloc(void *ptr, size_t size)
{
    return allocator.realloc(ptr, size == 0 ? 1 : size);
}

void *trifle__reallocarray(void *ptr, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return trifle__realloc(ptr, n * size);
}

void trifle__free(void *ptr)
{
    if (ptr != NULL)
        allocator.free(ptr);
}

void trifle_mem_free(void *ptr)
{
    trifle__free(ptr);
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
