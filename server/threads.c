/* The thread registry behind GET /debug/threads (alias /debug/goroutines, SPEC §10.6).
 *
 * Threads the server runs itself register a slot and update its state; libmicrohttpd's pool
 * threads claim one of the `http-worker` slots registered at start-up the first time they call
 * into the server (a thread-local pointer remembers it). The Simple Stats threads report
 * themselves through the module's thread hook. libtrifle's buffer flushers are registered with a
 * probe that derives their state from the buffer's counters. */
#include "srv_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS_MAX 1024

struct srv_thread {
    char role[96];
    atomic_int state;
    atomic_int claimed; /* http-worker slots: taken by a pool thread */
    atomic_int retired; /* the thread has ended: no longer listed */
    srv_thread_probe probe;
    void *payload;
};

static srv_thread registry[THREADS_MAX];
static atomic_size_t n_registered;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local srv_thread *self;

static const char *state_name(int s)
{
    return s == SRV_THREAD_RUNNING ? "running" : s == SRV_THREAD_BLOCKED ? "blocked" : "idle";
}

srv_thread *srv_thread_register(const char *role, int state, srv_thread_probe probe, void *payload)
{
    srv_thread *t = NULL;
    size_t n;

    pthread_mutex_lock(&registry_lock);
    n = atomic_load(&n_registered);
    if (n < THREADS_MAX) {
        t = &registry[n];
        (void)snprintf(t->role, sizeof(t->role), "%s", role);
        atomic_store(&t->state, state);
        atomic_store(&t->claimed, 0);
        atomic_store(&t->retired, 0);
        t->probe = probe;
        t->payload = payload;
        atomic_store(&n_registered, n + 1);
    }
    pthread_mutex_unlock(&registry_lock);
    return t;
}

void srv_thread_retire(srv_thread *t)
{
    if (t != NULL)
        atomic_store(&t->retired, 1);
}

void srv_thread_set_state(srv_thread *t, int state)
{
    if (t != NULL)
        atomic_store_explicit(&t->state, state, memory_order_relaxed);
}

srv_thread *srv_thread_self_worker(void)
{
    size_t i, n;

    if (self != NULL)
        return self;
    n = atomic_load(&n_registered);
    for (i = 0; i < n; i++) {
        int expected = 0;
        if (strcmp(registry[i].role, "http-worker") != 0)
            continue;
        if (atomic_compare_exchange_strong(&registry[i].claimed, &expected, 1)) {
            self = &registry[i];
            return self;
        }
    }
    /* more pool threads than slots: register one more */
    self = srv_thread_register("http-worker", SRV_THREAD_IDLE, NULL, NULL);
    if (self != NULL)
        atomic_store(&self->claimed, 1);
    return self;
}

void srv_thread_mark(int state)
{
    if (self != NULL)
        atomic_store_explicit(&self->state, state, memory_order_relaxed);
}

typedef struct group {
    const char *role;
    int state;
    size_t count;
} group;

static int group_cmp(const void *a, const void *b)
{
    const group *x = a, *y = b;
    int c;

    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    if ((c = strcmp(x->role, y->role)) != 0)
        return c;
    return x->state - y->state;
}

void srv_threads_render(srv_buf *out)
{
    group groups[THREADS_MAX];
    size_t n = atomic_load(&n_registered), ng = 0, i, j;

    for (i = 0; i < n; i++) {
        const srv_thread *t = &registry[i];
        int state;
        if (atomic_load(&t->retired))
            continue;
        state = t->probe != NULL ? t->probe(t->payload) : atomic_load(&t->state);
        for (j = 0; j < ng; j++)
            if (groups[j].state == state && strcmp(groups[j].role, t->role) == 0)
                break;
        if (j == ng) {
            groups[ng].role = t->role;
            groups[ng].state = state;
            groups[ng].count = 0;
            ng++;
        }
        groups[j].count++;
    }
    qsort(groups, ng, sizeof(groups[0]), group_cmp);
    srv_buf_putc(out, '[');
    for (i = 0; i < ng; i++) {
        char label[128];
        if (i > 0)
            srv_buf_putc(out, ',');
        srv_buf_puts(out, "{\"count\":");
        srv_buf_uint(out, groups[i].count);
        (void)snprintf(label, sizeof(label), "%s [%s]", groups[i].role,
                       state_name(groups[i].state));
        srv_buf_puts(out, ",\"goroutine\":");
        srv_buf_json_cstr(out, label);
        srv_buf_puts(out, ",\"thread\":");
        srv_buf_json_cstr(out, groups[i].role);
        srv_buf_puts(out, ",\"state\":");
        srv_buf_json_cstr(out, state_name(groups[i].state));
        srv_buf_putc(out, '}');
    }
    srv_buf_putc(out, ']');
}

void srv_threads_reset(void)
{
    pthread_mutex_lock(&registry_lock);
    atomic_store(&n_registered, 0);
    pthread_mutex_unlock(&registry_lock);
    self = NULL;
}
