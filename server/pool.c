/* Byte-buffer pools for request bodies and response bodies (SPEC §10.6 `/debug/pool/bytes`).
 *
 * A buffer is one heap block: a header (its pool, its capacity, whether it is in use) followed by
 * the data. Releasing a buffer needs only its data pointer, which is what libmicrohttpd's free
 * callback hands back. A released buffer goes back to its pool's idle stack unless it grew beyond
 * max_item_size (dropped) or the pool already holds max_count buffers or max_size bytes
 * (throttled); either way it is then freed. */
#include "srv_int.h"

#include <stdlib.h>
#include <string.h>

#define POOL_MAGIC_USED 0x7472666cu /* "trfl": in use */
#define POOL_MAGIC_IDLE 0x69646c65u /* "idle": in the pool's idle stack */

typedef struct pool_item {
    srv_pool *pool;
    size_t cap;
    uint32_t magic;
    uint32_t pad;
    /* data follows, aligned for any type */
    max_align_t data[];
} pool_item;

static pool_item *item_of(char *data)
{
    return (pool_item *)(void *)(data - offsetof(pool_item, data));
}

int srv_pool_init(srv_pool *p, const char *tag, size_t default_item_size, size_t max_item_size,
                  size_t max_count, size_t max_size)
{
    memset(p, 0, sizeof(*p));
    p->tag = tag;
    p->default_item_size = default_item_size;
    p->max_item_size = max_item_size;
    p->max_count = max_count;
    p->max_size = max_size;
    p->idle = calloc(max_count > 0 ? max_count : 1, sizeof(*p->idle));
    if (p->idle == NULL)
        return TRIFLE_ENOMEM;
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p->idle);
        p->idle = NULL;
        return TRIFLE_ERROR;
    }
    return 0;
}

void srv_pool_destroy(srv_pool *p)
{
    size_t i;

    if (p == NULL || p->idle == NULL)
        return;
    for (i = 0; i < p->n_idle; i++)
        free(item_of(p->idle[i]));
    free(p->idle);
    p->idle = NULL;
    p->n_idle = 0;
    pthread_mutex_destroy(&p->lock);
}

static pool_item *item_new(srv_pool *p, size_t cap)
{
    pool_item *it;

    if (cap > SIZE_MAX - sizeof(pool_item))
        return NULL;
    it = malloc(sizeof(pool_item) + cap);
    if (it == NULL)
        return NULL;
    it->pool = p;
    it->cap = cap;
    it->magic = POOL_MAGIC_USED;
    it->pad = 0;
    return it;
}

char *srv_pool_acquire(srv_pool *p, size_t min, size_t *cap)
{
    pool_item *it = NULL;
    size_t want;

    if (p == NULL) {
        /* a heap buffer with the same header: released the same way */
        it = item_new(NULL, min > 256 ? min : 256);
        if (it == NULL)
            return NULL;
        *cap = it->cap;
        return (char *)it->data;
    }
    want = min > p->default_item_size ? min : p->default_item_size;
    pthread_mutex_lock(&p->lock);
    if (p->n_idle > 0) {
        it = item_of(p->idle[--p->n_idle]);
        p->idle_bytes -= it->cap;
        it->magic = POOL_MAGIC_USED;
    }
    pthread_mutex_unlock(&p->lock);

    if (it != NULL && it->cap < want) {
        pool_item *bigger = realloc(it, sizeof(pool_item) + want);
        if (bigger == NULL) {
            free(it);
            it = NULL;
        } else {
            it = bigger;
            it->cap = want;
        }
    } else if (it == NULL) {
        it = item_new(p, want);
        if (it != NULL) {
            pthread_mutex_lock(&p->lock);
            p->allocated++;
            pthread_mutex_unlock(&p->lock);
        }
    }
    if (it == NULL)
        return NULL;
    pthread_mutex_lock(&p->lock);
    p->acquired++;
    pthread_mutex_unlock(&p->lock);
    *cap = it->cap;
    return (char *)it->data;
}

char *srv_pool_grow(char *data, size_t min, size_t *cap)
{
    pool_item *it = item_of(data), *bigger;
    size_t want = it->cap;

    while (want < min) {
        if (want > SIZE_MAX / 2)
            return NULL;
        want *= 2;
    }
    if (want == it->cap) {
        *cap = it->cap;
        return data;
    }
    if (want > SIZE_MAX - sizeof(pool_item))
        return NULL;
    bigger = realloc(it, sizeof(pool_item) + want);
    if (bigger == NULL)
        return NULL;
    bigger->cap = want;
    *cap = want;
    return (char *)bigger->data;
}

void srv_pool_release(char *data)
{
    pool_item *it;
    srv_pool *p;
    int keep = 0;

    if (data == NULL)
        return;
    it = item_of(data);
    p = it->pool;
    if (p == NULL) {
        free(it);
        return;
    }
    pthread_mutex_lock(&p->lock);
    if (it->magic != POOL_MAGIC_USED) {
        /* released twice: counting it is all that is safe to do */
        p->invalid++;
        pthread_mutex_unlock(&p->lock);
        return;
    }
    p->returned++;
    if (it->cap > p->max_item_size)
        p->dropped++;
    else if (p->n_idle >= p->max_count || p->idle_bytes + it->cap > p->max_size)
        p->throttled++;
    else
        keep = 1;
    if (keep) {
        it->magic = POOL_MAGIC_IDLE;
        p->idle[p->n_idle++] = data;
        p->idle_bytes += it->cap;
    }
    pthread_mutex_unlock(&p->lock);
    if (!keep) {
        it->magic = 0;
        free(it);
    }
}

void srv_pool_read(srv_pool *p, srv_pool_counters *out)
{
    pthread_mutex_lock(&p->lock);
    out->allocated = p->allocated;
    out->acquired = p->acquired;
    out->returned = p->returned;
    out->dropped = p->dropped;
    out->throttled = p->throttled;
    out->inuse = p->acquired - p->returned;
    out->invalid = p->invalid;
    out->pool_size = p->idle_bytes;
    out->pool_items = p->n_idle;
    out->max_item_size = p->max_item_size;
    out->default_item_size = p->default_item_size;
    out->max_count = p->max_count;
    out->max_size = p->max_size;
    pthread_mutex_unlock(&p->lock);
}
