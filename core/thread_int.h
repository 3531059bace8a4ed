/* Threads behind one seam (STYLE §5): pthreads today; macOS has no <threads.h>. Never installed. */
#ifndef TRIFLE_THREAD_INT_H
#define TRIFLE_THREAD_INT_H

#include <pthread.h>

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

#endif
