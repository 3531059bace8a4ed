/* The driver connections of one stats handle. See pool_int.h. */
#include "pool_int.h"

#include <string.h>

#include "alloc_int.h"
#include "error_int.h"
#include "thread_int.h"
#include "trifle/trifle.h"

typedef struct slot {
    trifle_storage *st; /* NULL: not open (or being opened while busy) */
    int busy;
} slot;

struct trifle__pool {
    trifle__mutex lock;
    pthread_cond_t freed; /* a connection was given back, or a slot became free */
    slot *slots;
    size_t max, open;
    int closed;
    char *url, *separator, *driver_path, *driver;
    trifle_storage_options so;
};

/* Free what trifle__pool_new allocated (the mutex and condition variable are the caller's). */
static void pool_discard(trifle__pool *p)
{
    trifle__free(p->slots);
    trifle__free(p->url);
    trifle__free(p->separator);
    trifle__free(p->driver_path);
    trifle__free(p->driver);
    trifle__free(p);
}

int trifle__pool_new(trifle__pool **out, trifle_storage *first, const char *url,
                     const trifle_storage_options *so, size_t max, trifle_error *err)
{
    trifle__pool *p;

    *out = NULL;
    if (max == 0)
        max = 1;
    if ((p = trifle__calloc(1, sizeof(*p))) == NULL ||
        (p->slots = trifle__calloc(max, sizeof(*p->slots))) == NULL ||
        (p->url = trifle__strdup(url)) == NULL ||
        (so->separator != NULL && (p->separator = trifle__strdup(so->separator)) == NULL) ||
        (so->driver_path != NULL && (p->driver_path = trifle__strdup(so->driver_path)) == NULL) ||
        (so->driver != NULL && (p->driver = trifle__strdup(so->driver)) == NULL)) {
        trifle_storage_close(first);
        if (p != NULL)
            pool_discard(p);
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    }
    if (trifle__mutex_init(&p->lock) != 0 || pthread_cond_init(&p->freed, NULL) != 0) {
        trifle_storage_close(first);
        pool_discard(p);
        return trifle__error(err, TRIFLE_ERROR, "cannot create a mutex");
    }
    p->so = *so;
    p->so.separator = p->separator;
    p->so.driver_path = p->driver_path;
    p->so.driver = p->driver;
    p->max = max;
    p->slots[0].st = first;
    p->open = 1;
    *out = p;
    return 0;
}

trifle_storage *trifle__pool_meta(const trifle__pool *p)
{
    return p->slots[0].st;
}

int trifle__pool_get(trifle__pool *p, trifle_storage **out, trifle_error *err)
{
    size_t i;

    *out = NULL;
    trifle__mutex_lock(&p->lock);
    for (;;) {
        size_t empty = p->max;

        if (p->closed) {
            trifle__mutex_unlock(&p->lock);
            return trifle__error(err, TRIFLE_ECLOSED, "buffer is closed");
        }
        for (i = 0; i < p->max; i++) {
            if (p->slots[i].busy)
                continue;
            if (p->slots[i].st != NULL) {
                p->slots[i].busy = 1;
                *out = p->slots[i].st;
                trifle__mutex_unlock(&p->lock);
                return 0;
            }
            if (empty == p->max)
                empty = i;
        }
        if (empty < p->max) {
            /* open a new connection outside the lock; the slot is held meanwhile */
            trifle_storage *st = NULL;
            int rc;

            p->slots[empty].busy = 1;
            trifle__mutex_unlock(&p->lock);
            rc = trifle_storage_open(&st, p->url, &p->so, err);
            trifle__mutex_lock(&p->lock);
            if (rc == 0) {
                p->slots[empty].st = st;
                p->open++;
                *out = st;
                trifle__mutex_unlock(&p->lock);
                return 0;
            }
            p->slots[empty].busy = 0;
            (void)pthread_cond_broadcast(&p->freed);
            if (p->open == 0) {
                trifle__mutex_unlock(&p->lock);
                return rc;
            }
            /* others are open: wait for one of them rather than fail the call */
            if (err != NULL)
                *err = (trifle_error)TRIFLE_ERROR_INIT;
        }
        (void)pthread_cond_wait(&p->freed, &p->lock);
    }
}

void trifle__pool_put(trifle__pool *p, trifle_storage *st, int rc)
{
    trifle_storage *drop = NULL;
    size_t i;

    if (st == NULL)
        return;
    trifle__mutex_lock(&p->lock);
    for (i = 0; i < p->max; i++) {
        if (p->slots[i].st != st)
            continue;
        p->slots[i].busy = 0;
        if (i > 0 && (rc == TRIFLE_ECONN || rc == TRIFLE_ETIMEDOUT)) {
            drop = st; /* replaced by a fresh connection when one is next needed */
            p->slots[i].st = NULL;
            p->open--;
        }
        break;
    }
    /* one slot came free, so one waiter can go on; waking them all made every server thread
     * queued on a one-connection pool take the lock for each call. trifle__pool_close waits on
     * the same condition for every slot, so once closed everyone is woken. */
    if (p->closed)
        (void)pthread_cond_broadcast(&p->freed);
    else
        (void)pthread_cond_signal(&p->freed);
    trifle__mutex_unlock(&p->lock);
    trifle_storage_close(drop);
}

size_t trifle__pool_open_count(trifle__pool *p)
{
    size_t n;

    trifle__mutex_lock(&p->lock);
    n = p->open;
    trifle__mutex_unlock(&p->lock);
    return n;
}

void trifle__pool_close(trifle__pool *p)
{
    size_t i;
    int busy;

    if (p == NULL)
        return;
    trifle__mutex_lock(&p->lock);
    p->closed = 1;
    (void)pthread_cond_broadcast(&p->freed);
    do {
        busy = 0;
        for (i = 0; i < p->max; i++)
            busy |= p->slots[i].busy;
        if (busy)
            (void)pthread_cond_wait(&p->freed, &p->lock);
    } while (busy);
    for (i = 0; i < p->max; i++) {
        if (p->slots[i].st != NULL) {
            trifle_storage_close(p->slots[i].st);
            p->slots[i].st = NULL;
            p->open--;
        }
    }
    trifle__mutex_unlock(&p->lock);
}

void trifle__pool_free(trifle__pool *p)
{
    if (p == NULL)
        return;
    trifle__pool_close(p);
    (void)pthread_cond_destroy(&p->freed);
    trifle__mutex_destroy(&p->lock);
    pool_discard(p);
}
