#include "alloc_int.h"

#include <stdlib.h>

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

void *trifle__realloc(void *ptr, size_t size)
{
    return allocator.realloc(ptr, size == 0 ? 1 : size);
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

void *trifle_mem_alloc(size_t size)
{
    return trifle__malloc(size);
}

void *trifle_mem_realloc(void *ptr, size_t size)
{
    return trifle__realloc(ptr, size);
}
