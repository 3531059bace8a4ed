/* Threads behind one seam (STYLE §5): pthreads today; macOS has no <threads.h>. Never installed. */
#ifndef TRIFLE_THREAD_INT_H
#define TRIFLE_THREAD_INT_H

#include <pthread.h>
#include <time.h>

typedef pthread_mutex_t trifle__mutex;
typedef pthread_cond_t trifle__cond;

static inline int trifle__mutex_init(trifle__mutex *m)
{
    return pthread_mutex_init(m, NULL);
}
static inline void trifle__mutex_destroy(trifle__mutex *m)
{
    (void)pthread_mutex_destroy(m);
}
static inline void trifle__mutex_lock(trifle__mutex *m)
{
    (void)pthread_mutex_lock(m);
}
static inline void trifle__mutex_unlock(trifle__mutex *m)
{
    (void)pthread_mutex_unlock(m);
}

/* A condition variable whose timed waits take CLOCK_MONOTONIC deadlines, which a change of the
 * wall clock does not move. */
static inline void trifle__cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t a;

    (void)pthread_condattr_init(&a);
    (void)pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    (void)pthread_cond_init(c, &a);
    (void)pthread_condattr_destroy(&a);
}

/* End a worker thread that sleeps on `wake` under `m` and leaves its loop once *stop is set: set
 * it under the lock, wake every waiter, and join. */
static inline void trifle__thread_stop(trifle__mutex *m, pthread_cond_t *wake, int *stop,
                                       pthread_t thread)
{
    trifle__mutex_lock(m);
    *stop = 1;
    (void)pthread_cond_broadcast(wake);
    trifle__mutex_unlock(m);
    (void)pthread_join(thread, NULL);
}

#endif
