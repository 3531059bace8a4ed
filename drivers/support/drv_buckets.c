/*
 * The distinct bucket identifiers of one get, and the match of a stored row's identifier against
 * a bucket (drv_support.h).
 */
#include "drv_support.h"

#include <string.h>

int drv_bucket_is(const trifle_bucket *b, int mode, const char *key, size_t key_len, const char *g,
                  size_t g_len, int64_t at)
{
    if ((mode != TRIFLE_ID_FULL && b->at != at) || strlen(b->id) != key_len ||
        memcmp(b->id, key, key_len) != 0)
        return 0;
    return mode != TRIFLE_ID_SEPARATED ||
           (strlen(b->granularity) == g_len && memcmp(b->granularity, g, g_len) == 0);
}

int drv_bucket_cmp(const trifle_bucket *a, const trifle_bucket *b)
{
    int r = strcmp(a->id, b->id);

    if (r != 0)
        return r;
    if (a->granularity != NULL && b->granularity != NULL &&
        (r = strcmp(a->granularity, b->granularity)) != 0)
        return r;
    return a->at < b->at ? -1 : a->at > b->at;
}

int drv_bucket_same(int mode, const trifle_bucket *a, const trifle_bucket *b)
{
    if (strcmp(a->id, b->id) != 0)
        return 0;
    if (mode == TRIFLE_ID_FULL)
        return 1;
    if (mode == TRIFLE_ID_SEPARATED && strcmp(a->granularity, b->granularity) != 0)
        return 0;
    return a->at == b->at;
}

int drv_buckets_reset(drv_buckets *x, const trifle_host_api *host, size_t n)
{
    size_t slots = 16;

    while (slots < 2 * n)
        slots *= 2;
    if (drv_array_reserve(host, (void **)&x->chain, &x->cap_chain, n, sizeof(*x->chain)) != 0 ||
        drv_array_reserve(host, (void **)&x->first, &x->cap_first, n, sizeof(*x->first)) != 0 ||
        drv_array_reserve(host, (void **)&x->slots, &x->cap_slots, slots, sizeof(*x->slots)) != 0)
        return -1;
    x->mask = slots - 1;
    x->n = 0;
    memset(x->slots, 0, slots * sizeof(*x->slots));
    return 0;
}

int drv_buckets_add(drv_buckets *x, const trifle_bucket *buckets, size_t i, int mode)
{
    const trifle_bucket *b = &buckets[i];
    const char *g = mode == TRIFLE_ID_SEPARATED ? b->granularity : "";
    int64_t at = mode == TRIFLE_ID_FULL ? 0 : b->at;
    uint32_t h;

    x->chain[i] = SIZE_MAX;
    for (h = drv_bucket_hash(b->id, strlen(b->id), g, strlen(g), at);; h++) {
        uint32_t s = x->slots[h & x->mask];
        size_t j;

        if (s == 0) {
            x->slots[h & x->mask] = (uint32_t)(x->n + 1);
            x->first[x->n++] = i;
            return 1;
        }
        j = x->first[s - 1];
        if (drv_bucket_same(mode, &buckets[j], b)) {
            x->chain[i] = x->chain[j];
            x->chain[j] = i;
            return 0;
        }
    }
}

size_t drv_buckets_find(const drv_buckets *x, const trifle_bucket *buckets, int mode,
                        const char *key, size_t key_len, const char *g, size_t g_len, int64_t at)
{
    uint32_t h;

    for (h = drv_bucket_hash(key, key_len, g, g_len, at); x->slots[h & x->mask] != 0; h++) {
        size_t i = x->first[x->slots[h & x->mask] - 1];

        if (drv_bucket_is(&buckets[i], mode, key, key_len, g, g_len, at))
            return i;
    }
    return SIZE_MAX;
}

void drv_buckets_free(drv_buckets *x, const trifle_host_api *host)
{
    host->free(x->chain);
    host->free(x->first);
    host->free(x->slots);
    memset(x, 0, sizeof(*x));
}
