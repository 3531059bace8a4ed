#include "oom_alloc.h"

#include <stdlib.h>

#include "trifle/common.h"

long oom_fail_at = -1;
long oom_calls, oom_live;
long oom_budget = -1;

/* 1 when the allocation being made is to fail. */
static int oom_fails(void)
{
    if (++oom_calls == oom_fail_at || oom_budget == 0)
        return 1;
    if (oom_budget > 0)
        oom_budget--;
    return 0;
}

static void *oom_malloc(size_t n)
{
    void *p;

    if (oom_fails())
        return NULL;
    p = malloc(n);
    if (p != NULL)
        oom_live++;
    return p;
}

static void *oom_realloc(void *ptr, size_t n)
{
    void *p;

    if (oom_fails())
        return NULL;
    p = realloc(ptr, n);
    if (p != NULL && ptr == NULL)
        oom_live++;
    return p;
}

static void oom_free(void *ptr)
{
    if (ptr != NULL)
        oom_live--;
    free(ptr);
}

void oom_begin(long fail_at)
{
    static const trifle_allocator a = {oom_malloc, oom_realloc, oom_free};

    oom_fail_at = fail_at;
    oom_calls = oom_live = 0;
    trifle_set_allocator(&a);
}

void oom_end(void)
{
    trifle_set_allocator(NULL);
}
