/* Simple Stats (SPEC §10.1–§10.3): the process-wide registry of (category, name) → int64 entries,
 * the optional bounded FIFO with its consumer thread, the module lifecycle and persistence.
 *
 * Locks, always taken in this order (a thread never takes an earlier one while holding a later):
 *   S.ctl       configuration and lifecycle (configure/start/stop/save/reset);
 *   S.prov      providers (read: renders; write: register/unregister), never held by updates;
 *   S.save_lock one save at a time (the checkpoint thread or a caller);
 *   S.lock      the registry (R): the hash table, generation counters;
 *   S.fifo      the FIFO (F): two rings, the active one receiving updates.
 * Updates in unbuffered mode take R only; buffered producers take F only, unless the FIFO is full
 * (then R, then F: the producer drains in order and applies its own update). Readers take R and
 * drain F first. Drains swap the rings under F and apply the full one under R alone, so producers
 * wait for a drain only for the O(1) swap. */
#include "simple_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc_int.h"
#include "error_int.h"
#include "json_int.h"
#include "thread_int.h"
#include "trifle/config.h"

enum { OP_INCR = 0, OP_DECR = 1, OP_SET = 2 };

#define DEF_BUFFER_SIZE 1000
#define DEF_FLUSH_MS 1000
#define DEF_CHECKPOINT_MS 10000

typedef struct entry {
    struct entry *next;
    uint64_t hash;
    int64_t value;
    int kind;
    uint16_t cat_len, name_len;
    char key[]; /* category NUL name NUL */
} entry;

typedef struct skey {
    const char *cat, *name;
    size_t cat_len, name_len;
    uint64_t hash;
} skey;

typedef struct op {
    int kind;
    int64_t value;
    uint64_t hash;
    uint16_t cat_len, name_len;
    char *key; /* owned: category NUL name NUL */
} op;

typedef struct ring {
    op *items;
    size_t head, count;
} ring;

typedef struct sprov {
    char *root;
    trifle_simple_provider fn;
    void *payload;
} sprov;

typedef struct config {
    int enabled, persist, no_buffer;
    char *data_dir;
    size_t buffer_size;
    int64_t flush_ms, checkpoint_ms;
    char *label_text; /* `type="trifle",name="n"` */
} config;

static struct simple_state {
    pthread_mutex_t ctl;
    config cfg;
    int started;
    atomic_int enabled, no_buffer;

    pthread_rwlock_t prov;
    sprov *providers;
    size_t n_providers;

    pthread_mutex_t save_lock;

    pthread_mutex_t lock; /* R */
    entry **table;
    size_t n_buckets, count;
    uint64_t generation, saved_generation;

    pthread_mutex_t fifo; /* F */
    pthread_cond_t fifo_wake;
    ring rings[2];
    int active;
    size_t cap, wake_at;
    atomic_size_t queued;
    int consumer_stop;

    pthread_mutex_t ck_lock;
    pthread_cond_t ck_wake;
    int ck_stop;

    pthread_t consumer, checkpointer;
    int consumer_on, checkpointer_on;
    trifle_simple_thread_hook hook; /* S.ctl; copied into each thread at start */
    void *hook_payload;
} S = {
    .ctl = PTHREAD_MUTEX_INITIALIZER,
    .cfg = {1, 0, 1, NULL, DEF_BUFFER_SIZE, DEF_FLUSH_MS, DEF_CHECKPOINT_MS, NULL},
    .enabled = 1,
    .no_buffer = 1,
    .prov = PTHREAD_RWLOCK_INITIALIZER,
    .save_lock = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .fifo = PTHREAD_MUTEX_INITIALIZER,
    .ck_lock = PTHREAD_MUTEX_INITIALIZER,
};

/* ---------------------------------------------------------------------------------------------
 * Time, one-time initialisation */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int64_t epoch_ms;
static trifle__simple_clock_fn clock_fn;

static int64_t real_now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t trifle__simple_now_ms(void)
{
    return clock_fn != NULL ? clock_fn() : real_now_ms();
}

void trifle__simple_set_clock(trifle__simple_clock_fn fn)
{
    clock_fn = fn;
}

static void init_once(void)
{
    trifle__cond_init_monotonic(&S.fifo_wake);
    trifle__cond_init_monotonic(&S.ck_wake);
    epoch_ms = real_now_ms();
}

static void ensure_init(void)
{
    (void)pthread_once(&once, init_once);
}

int64_t trifle__simple_uptime_ms(void)
{
    ensure_init();
    return real_now_ms() - epoch_ms;
}

/* Wait on c (with m held) for at most ms milliseconds of the real monotonic clock. */
static void cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, int64_t ms)
{
    struct timespec ts;
    int64_t deadline = real_now_ms() + ms;

    ts.tv_sec = (time_t)(deadline / 1000);
    ts.tv_nsec = (long)(deadline % 1000) * 1000000;
    (void)pthread_cond_timedwait(c, m, &ts);
}

/* ---------------------------------------------------------------------------------------------
 * Names and keys */

int trifle__simple_name_check(const char *s, size_t *len_out)
{
    size_t len, i = 0, n;

    if (s == NULL)
        return -1;
    len = strnlen(s, TRIFLE_SIMPLE_NAME_MAX + 1);
    if (len == 0 || len > TRIFLE_SIMPLE_NAME_MAX)
        return -1;
    while (i < len) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        if ((n = tu_utf8_seq(s + i, len - i)) == 0)
            return -1;
        i += n;
    }
    if (len_out != NULL)
        *len_out = len;
    return 0;
}

/* Length and FNV-1a hash of category and name in one pass; UTF-8 is checked only when an entry is
 * created or an update is queued (an existing entry's names were checked when it was made). */
static int key_make(skey *k, const char *cat, const char *name)
{
    uint64_t h = 0xcbf29ce484222325u;
    size_t i;

    if (cat == NULL || name == NULL)
        return -1;
    for (i = 0; cat[i] != '\0'; i++) {
        if (i == TRIFLE_SIMPLE_NAME_MAX)
            return -1;
        h = (h ^ (unsigned char)cat[i]) * 0x100000001b3u;
    }
    k->cat_len = i;
    h = (h ^ 0xffu) *
        0x100000001b3u; /* 0xff never occurs in UTF-8: no (a.b, c) vs (a, b.c) clash */
    for (i = 0; name[i] != '\0'; i++) {
        if (i == TRIFLE_SIMPLE_NAME_MAX)
            return -1;
        h = (h ^ (unsigned char)name[i]) * 0x100000001b3u;
    }
    k->name_len = i;
    if (k->cat_len == 0 || k->name_len == 0)
        return -1;
    k->cat = cat;
    k->name = name;
    k->hash = h;
    return 0;
}

static int key_utf8_ok(const skey *k)
{
    return trifle__simple_name_check(k->cat, NULL) == 0 &&
           trifle__simple_name_check(k->name, NULL) == 0;
}

static int invalid_name(trifle_error *err)
{
    return trifle__error(err, TRIFLE_EINVAL, "invalid stats name");
}

/* ---------------------------------------------------------------------------------------------
 * The registry (S.lock held) */

static int64_t sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

static int64_t sat_sub(int64_t a, int64_t b)
{
    if (b < 0 && a > INT64_MAX + b)
        return INT64_MAX;
    if (b > 0 && a < INT64_MIN + b)
        return INT64_MIN;
    return a - b;
}

static entry *find(const skey *k)
{
    entry *e;

    if (S.table == NULL)
        return NULL;
    for (e = S.table[k->hash & (S.n_buckets - 1)]; e != NULL; e = e->next)
        if (e->hash == k->hash && e->cat_len == k->cat_len && e->name_len == k->name_len &&
            memcmp(e->key, k->cat, k->cat_len) == 0 &&
            memcmp(e->key + k->cat_len + 1, k->name, k->name_len) == 0)
            return e;
    return NULL;
}

static int grow(void)
{
    size_t n = S.n_buckets ? S.n_buckets * 2 : 64, i;
    entry **t = trifle__calloc(n, sizeof(*t));

    if (t == NULL)
        return -1;
    for (i = 0; i < S.n_buckets; i++) {
        entry *e = S.table[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            e->next = t[e->hash & (n - 1)];
            t[e->hash & (n - 1)] = e;
        }
    }
    trifle__free(S.table);
    S.table = t;
    S.n_buckets = n;
    return 0;
}

static entry *insert(const skey *k)
{
    entry *e;

    if (S.count + 1 > S.n_buckets && grow() != 0 && S.table == NULL)
        return NULL;
    e = trifle__malloc(sizeof(*e) + k->cat_len + k->name_len + 2);
    if (e == NULL)
        return NULL;
    e->hash = k->hash;
    e->value = 0;
    e->kind = TRIFLE_SIMPLE_COUNTER;
    e->cat_len = (uint16_t)k->cat_len;
    e->name_len = (uint16_t)k->name_len;
    memcpy(e->key, k->cat, k->cat_len);
    e->key[k->cat_len] = '\0';
    memcpy(e->key + k->cat_len + 1, k->name, k->name_len);
    e->key[k->cat_len + 1 + k->name_len] = '\0';
    e->next = S.table[k->hash & (S.n_buckets - 1)];
    S.table[k->hash & (S.n_buckets - 1)] = e;
    S.count++;
    return e;
}

/* Apply one update: 0, TRIFLE_EINVAL (a new entry with non-UTF-8 names) or TRIFLE_ENOMEM. */
static int apply(int kind, const skey *k, int64_t v)
{
    entry *e = find(k);

    if (e == NULL) {
        if (!key_utf8_ok(k))
            return TRIFLE_EINVAL;
        if ((e = insert(k)) == NULL)
            return TRIFLE_ENOMEM;
    }
    switch (kind) {
    case OP_INCR:
        e->value = sat_add(e->value, v);
        if (v < 0)
            e->kind = TRIFLE_SIMPLE_GAUGE;
        break;
    case OP_DECR:
        e->value = sat_sub(e->value, v);
        e->kind = TRIFLE_SIMPLE_GAUGE;
        break;
    default:
        e->value = v;
        e->kind = TRIFLE_SIMPLE_GAUGE;
        break;
    }
    S.generation++;
    return 0;
}

static void count_internal(const char *name)
{
    skey k;

    if (key_make(&k, "stats", name) == 0 && apply(OP_INCR, &k, 1) != 0)
        trifle__log(TRIFLE_LOG_ERROR, "core", "stats: cannot count stats.%s: out of memory", name);
}

static void free_table(void)
{
    size_t i;

    for (i = 0; i < S.n_buckets; i++) {
        entry *e = S.table[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            trifle__free(e);
        }
    }
    trifle__free(S.table);
    S.table = NULL;
    S.n_buckets = S.count = 0;
}

/* ---------------------------------------------------------------------------------------------
 * The FIFO */

/* Apply every queued update in order. S.lock held. */
static void drain(void)
{
    ring *r;
    size_t i;

    if (atomic_load_explicit(&S.queued, memory_order_acquire) == 0)
        return;
    pthread_mutex_lock(&S.fifo);
    r = &S.rings[S.active];
    S.active ^= 1; /* the other ring is empty: the previous drain finished under S.lock */
    atomic_store_explicit(&S.queued, 0, memory_order_relaxed);
    pthread_mutex_unlock(&S.fifo);
    for (i = 0; i < r->count; i++) {
        op *o = &r->items[(r->head + i) % S.cap];
        skey k;
        k.cat = o->key;
        k.name = o->key + o->cat_len + 1;
        k.cat_len = o->cat_len;
        k.name_len = o->name_len;
        k.hash = o->hash;
        if (apply(o->kind, &k, o->value) != 0)
            trifle__log(TRIFLE_LOG_ERROR, "core", "stats: update of %s/%s lost: out of memory",
                        k.cat, k.name);
        trifle__free(o->key);
        o->key = NULL;
    }
    r->head = r->count = 0;
}

static void rings_free(ring rings[2])
{
    int i;
    size_t j;

    for (i = 0; i < 2; i++) {
        if (rings[i].items != NULL)
            for (j = 0; j < rings[i].count; j++)
                trifle__free(rings[i].items[(rings[i].head + j) % S.cap].key);
        trifle__free(rings[i].items);
        rings[i].items = NULL;
        rings[i].head = rings[i].count = 0;
    }
}

/* Apply directly: drain first so the update lands after everything queued before it. */
static int apply_now(int kind, const skey *k, int64_t v)
{
    int rc;

    pthread_mutex_lock(&S.lock);
    drain();
    rc = apply(kind, k, v);
    pthread_mutex_unlock(&S.lock);
    return rc;
}

static int enqueue(int kind, const skey *k, int64_t v)
{
    char *copy;
    ring *r;

    if (!key_utf8_ok(k))
        return TRIFLE_EINVAL;
    copy = trifle__malloc(k->cat_len + k->name_len + 2);
    if (copy == NULL)
        return apply_now(kind, k, v); /* lossless even without memory for the queue */
    memcpy(copy, k->cat, k->cat_len + 1);
    memcpy(copy + k->cat_len + 1, k->name, k->name_len + 1);
    pthread_mutex_lock(&S.fifo);
    r = &S.rings[S.active];
    if (r->items != NULL && r->count < S.cap) {
        op *o = &r->items[(r->head + r->count) % S.cap];
        o->kind = kind;
        o->value = v;
        o->hash = k->hash;
        o->cat_len = (uint16_t)k->cat_len;
        o->name_len = (uint16_t)k->name_len;
        o->key = copy;
        r->count++;
        atomic_store_explicit(&S.queued, r->count, memory_order_release);
        if (r->count == S.wake_at)
            (void)pthread_cond_signal(&S.fifo_wake);
        pthread_mutex_unlock(&S.fifo);
        return 0;
    }
    pthread_mutex_unlock(&S.fifo);
    trifle__free(copy);
    return apply_now(kind, k, v); /* full (or unbuffered meanwhile): drain ourselves, in order */
}

typedef struct thread_arg {
    const char *role;
    trifle_simple_thread_hook hook;
    void *payload;
} thread_arg;

static thread_arg consumer_arg, checkpoint_arg; /* written under S.ctl before the thread starts */

static void tell(const thread_arg *t, int event)
{
    if (t->hook != NULL)
        t->hook(t->role, event, t->payload);
}

/* trifle_simple_start() waits until every thread it created has told its hook START, so that
 * whatever the hook registers (the server's /debug/threads) is complete when start returns. */
static pthread_mutex_t ready_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cond = PTHREAD_COND_INITIALIZER;
static int ready_count;

static void announce(const thread_arg *t)
{
    tell(t, TRIFLE_SIMPLE_THREAD_START);
    pthread_mutex_lock(&ready_lock);
    ready_count++;
    pthread_cond_broadcast(&ready_cond);
    pthread_mutex_unlock(&ready_lock);
}

static void await_ready(int n)
{
    pthread_mutex_lock(&ready_lock);
    while (ready_count < n)
        pthread_cond_wait(&ready_cond, &ready_lock);
    pthread_mutex_unlock(&ready_lock);
}

void trifle_simple_set_thread_hook(trifle_simple_thread_hook hook, void *payload)
{
    ensure_init();
    pthread_mutex_lock(&S.ctl);
    S.hook = hook;
    S.hook_payload = payload;
    pthread_mutex_unlock(&S.ctl);
}

size_t trifle__simple_queued(void)
{
    return atomic_load(&S.queued);
}

static void *consumer_main(void *arg)
{
    const thread_arg *t = arg;

    announce(t);
    for (;;) {
        int stop, napped = 0;
        pthread_mutex_lock(&S.fifo);
        if (!S.consumer_stop && S.rings[S.active].count == 0) {
            pthread_mutex_unlock(&S.fifo);
            tell(t, TRIFLE_SIMPLE_THREAD_IDLE);
            pthread_mutex_lock(&S.fifo);
            if (!S.consumer_stop && S.rings[S.active].count == 0)
                cond_wait_ms(&S.fifo_wake, &S.fifo, S.cfg.flush_ms);
            napped = 1;
        }
        stop = S.consumer_stop;
        pthread_mutex_unlock(&S.fifo);
        if (stop)
            break;
        if (napped)
            tell(t, TRIFLE_SIMPLE_THREAD_RUNNING);
        pthread_mutex_lock(&S.lock);
        drain();
        pthread_mutex_unlock(&S.lock);
    }
    tell(t, TRIFLE_SIMPLE_THREAD_EXIT);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Updates and reads */

static int update(int kind, const char *cat, const char *name, int64_t v, trifle_error *err)
{
    skey k;
    int rc;

    ensure_init();
    if (!atomic_load_explicit(&S.enabled, memory_order_relaxed))
        return 0;
    if (key_make(&k, cat, name) != 0)
        return invalid_name(err);
    if (atomic_load_explicit(&S.no_buffer, memory_order_relaxed)) {
        pthread_mutex_lock(&S.lock);
        drain();
        rc = apply(kind, &k, v);
        pthread_mutex_unlock(&S.lock);
    } else {
        rc = enqueue(kind, &k, v);
    }
    if (rc == TRIFLE_EINVAL)
        return invalid_name(err);
    if (rc != 0)
        return trifle__error(err, rc, "out of memory");
    return 0;
}

int trifle_simple_incr(const char *category, const char *name, int64_t delta, trifle_error *err)
{
    return update(OP_INCR, category, name, delta, err);
}

int trifle_simple_decr(const char *category, const char *name, int64_t delta, trifle_error *err)
{
    return update(OP_DECR, category, name, delta, err);
}

int trifle_simple_absolute(const char *category, const char *name, int64_t value, trifle_error *err)
{
    return update(OP_SET, category, name, value, err);
}

int trifle_simple_gauge(const char *category, const char *name, int64_t value, trifle_error *err)
{
    return update(OP_SET, category, name, value, err);
}

static int read_entry(const char *cat, const char *name, int64_t *value, int *kind,
                      trifle_error *err)
{
    skey k;
    entry *e;

    ensure_init();
    if (!atomic_load_explicit(&S.enabled, memory_order_relaxed)) {
        if (value != NULL)
            *value = 0;
        if (kind != NULL)
            *kind = TRIFLE_SIMPLE_COUNTER;
        return 0;
    }
    if ((value == NULL && kind == NULL) || key_make(&k, cat, name) != 0)
        return invalid_name(err);
    pthread_mutex_lock(&S.lock);
    drain();
    e = find(&k);
    if (e != NULL) {
        if (value != NULL)
            *value = e->value;
        if (kind != NULL)
            *kind = e->kind;
    }
    pthread_mutex_unlock(&S.lock);
    if (e == NULL && !key_utf8_ok(&k))
        return invalid_name(err);
    if (e == NULL)
        return trifle__error(err, TRIFLE_ENOTFOUND, "no stats entry %s %s", cat, name);
    return 0;
}

int trifle_simple_get(const char *category, const char *name, int64_t *value, trifle_error *err)
{
    if (value == NULL)
        return invalid_name(err);
    return read_entry(category, name, value, NULL, err);
}

int trifle_simple_get_kind(const char *category, const char *name, int *kind, trifle_error *err)
{
    if (kind == NULL)
        return invalid_name(err);
    return read_entry(category, name, NULL, kind, err);
}

/* A sorted copy of the registry; strings are borrowed from the entries (they live until reset).
 * S.lock held. */
static int item_cmp(const void *pa, const void *pb)
{
    const trifle__simple_item *a = pa, *b = pb;
    int c = strcmp(a->category, b->category);
    return c != 0 ? c : strcmp(a->name, b->name);
}

static int snapshot(trifle__simple_view *v)
{
    size_t i, n = 0;

    v->items = NULL;
    v->n = 0;
    if (S.count == 0)
        return 0;
    v->items = trifle__calloc(S.count, sizeof(*v->items));
    if (v->items == NULL)
        return TRIFLE_ENOMEM;
    for (i = 0; i < S.n_buckets; i++) {
        const entry *e;
        for (e = S.table[i]; e != NULL; e = e->next) {
            v->items[n].category = (char *)e->key;
            v->items[n].name = (char *)e->key + e->cat_len + 1;
            v->items[n].value = e->value;
            v->items[n].kind = e->kind;
            n++;
        }
    }
    v->n = n;
    qsort(v->items, n, sizeof(*v->items), item_cmp);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Persistence */

static void errtext(int e, char *buf, size_t n)
{
    if (strerror_r(e, buf, n) != 0)
        (void)snprintf(buf, n, "error %d", e);
}

/* "<data_dir>/stats" + suffix, caller-owned, or NULL. */
static char *stats_path(const char *suffix)
{
    trifle__buf b = TRIFLE__BUF_INIT;

    trifle__buf_puts(&b, S.cfg.data_dir);
    trifle__buf_puts(&b, "/stats");
    trifle__buf_puts(&b, suffix);
    return trifle__buf_detach(&b);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Write text to <dir>/simple atomically. 0 or TRIFLE_ERROR/ENOMEM with err filled. */
static int write_file(const char *text, size_t len, trifle_error *err)
{
    char *dir = stats_path(""), *tmp = stats_path("/simple.tmp"), *final = stats_path("/simple");
    char why[128];
    const char *step = NULL;
    int fd = -1, dfd = -1, rc = 0, e = 0, created = 0, renamed = 0;

    if (dir == NULL || tmp == NULL || final == NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        step = "mkdir stats";
        goto fail;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        step = "open simple.tmp";
        goto fail;
    }
    created = 1;
    if (fchmod(fd, 0600) != 0) {
        step = "chmod simple.tmp";
        goto fail;
    }
    if (write_all(fd, text, len) != 0) {
        step = "write simple.tmp";
        goto fail;
    }
    if (fsync(fd) != 0) {
        step = "fsync simple.tmp";
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        step = "close simple.tmp";
        goto fail;
    }
    fd = -1;
    if (rename(tmp, final) != 0) {
        step = "rename simple.tmp";
        goto fail;
    }
    renamed = 1;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        /* the new file is in place; only its durability is in doubt */
        step = "fsync stats directory";
        goto fail;
    }
    goto done;
fail:
    e = errno;
    errtext(e, why, sizeof(why));
    rc = trifle__error(err, TRIFLE_ERROR, "cannot save %s: %s: %s", final, step, why);
    if (created && !renamed)
        (void)unlink(tmp); /* the previous simple is untouched */
done:
    if (fd >= 0)
        (void)close(fd);
    if (dfd >= 0)
        (void)close(dfd);
    trifle__free(dir);
    trifle__free(tmp);
    trifle__free(final);
    return rc;
}

/* One checkpoint: snapshot under R, write outside it. Failures are logged and counted. */
static int save_now(trifle_error *err)
{
    trifle__simple_view v;
    trifle__buf b = TRIFLE__BUF_INIT;
    trifle_error local = TRIFLE_ERROR_INIT;
    uint64_t gen;
    int rc;

    pthread_mutex_lock(&S.save_lock);
    pthread_mutex_lock(&S.lock);
    drain();
    rc = snapshot(&v);
    if (rc == 0)
        trifle__simple_file_write(&b, v.items, v.n);
    gen = S.generation;
    pthread_mutex_unlock(&S.lock);
    if (rc == 0 && trifle__buf_failed(&b))
        rc = TRIFLE_ENOMEM;
    if (rc != 0)
        rc = trifle__error(&local, rc, "cannot save stats: out of memory");
    else
        rc = write_file(b.data, b.len, &local);
    pthread_mutex_lock(&S.lock);
    if (rc == 0) {
        if (gen > S.saved_generation)
            S.saved_generation = gen;
    } else {
        count_internal("save_errors");
    }
    pthread_mutex_unlock(&S.lock);
    pthread_mutex_unlock(&S.save_lock);
    if (rc != 0) {
        trifle__log(TRIFLE_LOG_WARN, "core", "%s (retried at the next checkpoint)", local.message);
        if (err != NULL)
            *err = local;
    }
    trifle__free(v.items);
    trifle__buf_free(&b);
    return rc;
}

static int changed(void)
{
    int c;

    pthread_mutex_lock(&S.lock);
    c = S.generation != S.saved_generation || atomic_load(&S.queued) > 0;
    pthread_mutex_unlock(&S.lock);
    return c;
}

static void *checkpoint_main(void *arg)
{
    const thread_arg *t = arg;

    announce(t);
    tell(t, TRIFLE_SIMPLE_THREAD_IDLE);
    pthread_mutex_lock(&S.ck_lock);
    while (!S.ck_stop) {
        int64_t due = real_now_ms() + S.cfg.checkpoint_ms, now;
        while (!S.ck_stop && (now = real_now_ms()) < due)
            cond_wait_ms(&S.ck_wake, &S.ck_lock, due - now);
        if (S.ck_stop)
            break;
        pthread_mutex_unlock(&S.ck_lock);
        if (changed()) {
            tell(t, TRIFLE_SIMPLE_THREAD_RUNNING);
            (void)save_now(NULL);
            tell(t, TRIFLE_SIMPLE_THREAD_IDLE);
        }
        pthread_mutex_lock(&S.ck_lock);
    }
    pthread_mutex_unlock(&S.ck_lock);
    tell(t, TRIFLE_SIMPLE_THREAD_EXIT);
    return NULL;
}

/* Move an unusable file aside as simple.corrupt-<unix seconds> without replacing an earlier one. */
static void quarantine(const char *path, const char *reason)
{
    trifle__buf b = TRIFLE__BUF_INIT;
    long long now = (long long)time(NULL);
    char why[128];
    int i, moved = 0, e = 0;

    for (i = 0; i < 100 && !moved; i++) {
        trifle__buf_reset(&b);
        if (i == 0)
            trifle__buf_printf(&b, "%s.corrupt-%lld", path, now);
        else
            trifle__buf_printf(&b, "%s.corrupt-%lld.%d", path, now, i);
        if (trifle__buf_failed(&b))
            break;
        if (link(path, b.data) == 0) {
            (void)unlink(path);
            moved = 1;
        } else if (errno != EEXIST) {
            moved = rename(path, b.data) == 0; /* no hard links here (or a directory) */
            e = errno;
            break;
        }
    }
    if (moved) {
        trifle__log(TRIFLE_LOG_WARN, "core", "stats: %s: %s; renamed to %s, starting empty", path,
                    reason, b.data);
    } else {
        errtext(e != 0 ? e : EEXIST, why, sizeof(why));
        trifle__log(TRIFLE_LOG_ERROR, "core",
                    "stats: %s: %s; cannot rename it (%s), starting empty", path, reason, why);
    }
    trifle__buf_free(&b);
    pthread_mutex_lock(&S.lock);
    count_internal("load_errors");
    pthread_mutex_unlock(&S.lock);
}

static void merge(const trifle__simple_file *f)
{
    size_t i;
    int was_empty;

    pthread_mutex_lock(&S.lock);
    drain();
    was_empty = S.count == 0;
    for (i = 0; i < f->n; i++) {
        const trifle__simple_item *it = &f->items[i];
        skey k;
        entry *e;
        if (key_make(&k, it->category, it->name) != 0)
            continue; /* cannot happen: the parser checked the names */
        e = find(&k);
        if (e == NULL) {
            if ((e = insert(&k)) == NULL) {
                trifle__log(TRIFLE_LOG_ERROR, "core", "stats: out of memory while loading");
                break;
            }
            e->value = it->value;
            e->kind = it->kind;
        } else if (e->kind == TRIFLE_SIMPLE_COUNTER) {
            /* only increments happened before start: they continue the saved total */
            e->value = sat_add(e->value, it->value);
            e->kind = it->kind;
        } /* a gauge set before start is newer than the file */
        S.generation++;
    }
    if (was_empty)
        S.saved_generation = S.generation;
    pthread_mutex_unlock(&S.lock);
}

static void load(void)
{
    char *path = stats_path("/simple"), *dir = stats_path("");
    trifle__buf text = TRIFLE__BUF_INIT;
    trifle__simple_file f = {NULL, 0, 0};
    trifle_error perr = TRIFLE_ERROR_INIT;
    char why[160];
    struct stat st;
    int fd = -1;

    if (path == NULL || dir == NULL) {
        trifle__log(TRIFLE_LOG_ERROR, "core", "stats: out of memory while loading");
        goto done;
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        errtext(errno, why, sizeof(why));
        trifle__log(TRIFLE_LOG_WARN, "core", "stats: cannot create %s: %s", dir, why);
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) {
            errtext(errno, why, sizeof(why));
            quarantine(path, why);
        }
        goto done;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        quarantine(path, "not a regular file");
        goto done;
    }
    for (;;) {
        ssize_t got;
        if (trifle__buf_reserve(&text, 65536) != 0) {
            trifle__log(TRIFLE_LOG_ERROR, "core", "stats: out of memory while loading");
            goto done;
        }
        got = read(fd, text.data + text.len, text.cap - text.len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            errtext(errno, why, sizeof(why));
            quarantine(path, why);
            goto done;
        }
        if (got == 0)
            break;
        text.len += (size_t)got;
    }
    if (trifle__simple_file_parse(&f, text.data, text.len, &perr) != 0) {
        if (perr.code == TRIFLE_ENOMEM)
            trifle__log(TRIFLE_LOG_ERROR, "core", "stats: out of memory while loading");
        else
            quarantine(path, perr.message);
        goto done;
    }
    merge(&f);
    trifle__log(TRIFLE_LOG_INFO, "core", "stats: loaded %zu entries from %s", f.n, path);
done:
    if (fd >= 0)
        (void)close(fd);
    trifle__simple_file_free(&f);
    trifle__buf_free(&text);
    trifle__free(path);
    trifle__free(dir);
}

/* ---------------------------------------------------------------------------------------------
 * Configuration and lifecycle */

void trifle_simple_options_init(trifle_simple_options *opts)
{
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->struct_size = sizeof(*opts);
    opts->enabled = 1;
    opts->persist = 1;
    opts->no_buffer = 1;
    opts->buffer_size = DEF_BUFFER_SIZE;
    opts->flush_interval_ms = DEF_FLUSH_MS;
    opts->checkpoint_interval_ms = DEF_CHECKPOINT_MS;
}

static int parse_i64(const char *s, int64_t *out)
{
    int64_t v = 0;
    int neg = 0;
    size_t i = 0;

    if (s[0] == '-' || s[0] == '+')
        neg = s[i++] == '-';
    if (s[i] == '\0')
        return -1;
    for (; s[i] != '\0'; i++) {
        int d = s[i] - '0';
        if (d < 0 || d > 9)
            return -1;
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? -v : v;
    return 0;
}

static const struct range {
    const char *key;
    size_t off;
    int64_t lo, hi;
} ranges[] = {
    {"buffer_size", offsetof(trifle_simple_options, buffer_size), 1, 1048576},
    {"flush_interval_ms", offsetof(trifle_simple_options, flush_interval_ms), 1, 3600000},
    {"checkpoint_interval_ms", offsetof(trifle_simple_options, checkpoint_interval_ms), 100,
     86400000},
};

static const struct flag {
    const char *key;
    size_t off;
} flags[] = {
    {"enabled", offsetof(trifle_simple_options, enabled)},
    {"persist", offsetof(trifle_simple_options, persist)},
    {"no_buffer", offsetof(trifle_simple_options, no_buffer)},
};

int trifle_simple_options_set(trifle_simple_options *opts, const char *key, const char *value,
                              trifle_error *err)
{
    size_t i;

    if (opts == NULL || key == NULL)
        return trifle__error(err, TRIFLE_ECONFIG, "invalid stats option %s: %s",
                             key ? key : "(null)", value ? value : "(null)");
    if (value == NULL)
        value = "";
    for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        int b;
        if (strcmp(key, flags[i].key) != 0)
            continue;
        if (trifle_parse_bool(&b, value) != 0)
            return trifle__error(err, TRIFLE_ECONFIG, "invalid stats option %s: %s", key, value);
        *(int *)(void *)((char *)opts + flags[i].off) = b;
        return 0;
    }
    for (i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        int64_t v;
        if (strcmp(key, ranges[i].key) != 0)
            continue;
        if (parse_i64(value, &v) != 0 || v < ranges[i].lo || v > ranges[i].hi)
            return trifle__error(err, TRIFLE_ECONFIG, "invalid stats option %s: %s", key, value);
        *(int64_t *)(void *)((char *)opts + ranges[i].off) = v;
        return 0;
    }
    return trifle__error(err, TRIFLE_ECONFIG, "unknown configuration key stats.%s", key);
}

/* ---- Prometheus labels ---- */

typedef struct lab {
    const char *name, *value;
} lab;

static int label_name_ok(const char *n)
{
    size_t i;

    if (n == NULL || n[0] == '\0' || (n[0] == '_' && n[1] == '_'))
        return 0;
    if (!((n[0] >= 'a' && n[0] <= 'z') || (n[0] >= 'A' && n[0] <= 'Z') || n[0] == '_'))
        return 0;
    for (i = 1; n[i] != '\0'; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return 0;
        /* promlint rejects camelCase label names */
        if (c >= 'A' && c <= 'Z' && n[i - 1] >= 'a' && n[i - 1] <= 'z')
            return 0;
    }
    /* `path` is added on colliding names; `le` and `quantile` belong to histograms/summaries */
    return strcmp(n, "path") != 0 && strcmp(n, "le") != 0 && strcmp(n, "quantile") != 0;
}

/* ERRATA minor 7: the configured map extends the defaults (see simple.h). */
static int build_labels(char **out, const trifle_simple_options *o, trifle_error *err)
{
    lab *list = NULL;
    size_t n = 0, i, j;
    trifle__buf b = TRIFLE__BUF_INIT;
    int rc = 0, first = 1;

    *out = NULL;
    list = trifle__calloc(o->n_prometheus_labels + 3, sizeof(*list));
    if (list == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    list[n].name = "type";
    list[n++].value = "trifle";
    if (o->node_name != NULL) {
        list[n].name = "name";
        list[n++].value = o->node_name;
    }
    if (o->node_id != NULL) {
        list[n].name = "id";
        list[n++].value = o->node_id;
    }
    for (i = 0; i < n; i++)
        if (!tu_utf8_valid(list[i].value, strlen(list[i].value))) {
            rc = trifle__error(err, TRIFLE_ECONFIG,
                               "invalid stats option node %s: value is not UTF-8", list[i].name);
            goto done;
        }
    if (o->n_prometheus_labels > 0 && o->prometheus_labels == NULL) {
        rc = trifle__error(err, TRIFLE_ECONFIG, "invalid stats option prometheus_labels: NULL");
        goto done;
    }
    for (i = 0; i < o->n_prometheus_labels; i++) {
        const trifle_simple_label *l = &o->prometheus_labels[i];
        if (!label_name_ok(l->name)) {
            rc = trifle__error(err, TRIFLE_ECONFIG, "invalid stats option prometheus_labels: %s",
                               l->name ? l->name : "(null)");
            goto done;
        }
        if (l->value == NULL || !tu_utf8_valid(l->value, strlen(l->value))) {
            rc = trifle__error(err, TRIFLE_ECONFIG,
                               "invalid stats option prometheus_labels.%s: value is not UTF-8",
                               l->name);
            goto done;
        }
        for (j = 0; j < n; j++)
            if (strcmp(list[j].name, l->name) == 0)
                break;
        list[j].name = l->name;
        list[j].value = l->value;
        if (j == n)
            n++;
    }
    for (i = 0; i < n; i++) {
        if (list[i].value[0] == '\0')
            continue; /* an empty value removes the label */
        if (!first)
            trifle__buf_putc(&b, ',');
        first = 0;
        trifle__buf_puts(&b, list[i].name);
        trifle__buf_puts(&b, "=\"");
        trifle__simple_prom_escape(&b, list[i].value, 1);
        trifle__buf_putc(&b, '"');
    }
    trifle__buf_append(&b, "", 0);
    if ((*out = trifle__buf_detach(&b)) == NULL)
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
done:
    trifle__buf_free(&b);
    trifle__free(list);
    return rc;
}

int trifle_simple_configure(const trifle_simple_options *opts, trifle_error *err)
{
    trifle_simple_options o;
    ring fresh[2] = {{NULL, 0, 0}, {NULL, 0, 0}}, old[2];
    char *data_dir = NULL, *labels = NULL;
    size_t i;
    int rc = 0;

    ensure_init();
    trifle_simple_options_init(&o);
    if (opts != NULL) {
        if (opts->struct_size == 0 || opts->struct_size > sizeof(o))
            return trifle__error(err, TRIFLE_ECONFIG, "invalid stats option struct_size: %zu",
                                 opts->struct_size);
        memcpy(&o, opts, opts->struct_size);
    } else {
        o.persist = 0;
    }
    for (i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        int64_t v = *(const int64_t *)(const void *)((const char *)&o + ranges[i].off);
        if (v < ranges[i].lo || v > ranges[i].hi)
            return trifle__error(err, TRIFLE_ECONFIG, "invalid stats option %s: %lld",
                                 ranges[i].key, (long long)v);
    }
    if (o.enabled && o.persist && (o.data_dir == NULL || o.data_dir[0] == '\0'))
        return trifle__error(err, TRIFLE_ECONFIG,
                             "invalid stats option data_dir: required when persist is true");
    if ((rc = build_labels(&labels, &o, err)) != 0)
        return rc;
    if (o.data_dir != NULL && (data_dir = trifle__strdup(o.data_dir)) == NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    if (o.enabled && !o.no_buffer) {
        for (i = 0; i < 2; i++)
            if ((fresh[i].items = trifle__calloc((size_t)o.buffer_size, sizeof(op))) == NULL) {
                rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
                goto done;
            }
    }
    pthread_mutex_lock(&S.ctl);
    if (S.started) {
        pthread_mutex_unlock(&S.ctl);
        rc = trifle__error(err, TRIFLE_EBUSY, "stats module is running");
        goto done;
    }
    pthread_mutex_lock(&S.lock);
    drain(); /* with the old rings and capacity */
    pthread_mutex_lock(&S.fifo);
    old[0] = S.rings[0];
    old[1] = S.rings[1];
    S.rings[0] = fresh[0];
    S.rings[1] = fresh[1];
    fresh[0] = old[0]; /* both empty after the drain; freed below */
    fresh[1] = old[1];
    S.active = 0;
    S.cap = (size_t)o.buffer_size;
    S.wake_at = S.cap / 2 > 0 ? S.cap / 2 : 1;
    atomic_store(&S.queued, 0);
    S.cfg.enabled = o.enabled != 0;
    S.cfg.persist = o.persist != 0;
    S.cfg.no_buffer = o.no_buffer != 0;
    S.cfg.buffer_size = (size_t)o.buffer_size;
    S.cfg.flush_ms = o.flush_interval_ms;
    S.cfg.checkpoint_ms = o.checkpoint_interval_ms;
    trifle__free(S.cfg.data_dir);
    S.cfg.data_dir = data_dir;
    data_dir = NULL;
    trifle__free(S.cfg.label_text);
    S.cfg.label_text = labels;
    labels = NULL;
    atomic_store(&S.no_buffer, S.cfg.no_buffer || !S.cfg.enabled);
    atomic_store(&S.enabled, S.cfg.enabled);
    pthread_mutex_unlock(&S.fifo);
    pthread_mutex_unlock(&S.lock);
    pthread_mutex_unlock(&S.ctl);
done:
    trifle__free(fresh[0].items);
    trifle__free(fresh[1].items);
    trifle__free(data_dir);
    trifle__free(labels);
    return rc;
}

/* Stop one of the module's threads if it runs: raise its flag under its lock, wake it, join. */
static void stop_thread(pthread_t *thread, int *on, pthread_mutex_t *lock, pthread_cond_t *wake,
                        int *stop)
{
    if (!*on)
        return;
    pthread_mutex_lock(lock);
    *stop = 1;
    (void)pthread_cond_broadcast(wake);
    pthread_mutex_unlock(lock);
    (void)pthread_join(*thread, NULL);
    *on = 0;
    *stop = 0;
}

static void stop_threads(void)
{
    stop_thread(&S.consumer, &S.consumer_on, &S.fifo, &S.fifo_wake, &S.consumer_stop);
    stop_thread(&S.checkpointer, &S.checkpointer_on, &S.ck_lock, &S.ck_wake, &S.ck_stop);
}

int trifle_simple_start(trifle_error *err)
{
    int rc = 0;

    ensure_init();
    pthread_mutex_lock(&S.ctl);
    if (S.started) {
        rc = trifle__error(err, TRIFLE_EBUSY, "stats module is running");
        goto done;
    }
    if (!S.cfg.enabled)
        goto done;
    if (S.cfg.persist)
        load();
    consumer_arg.role = "stats-consumer";
    checkpoint_arg.role = "stats-checkpoint";
    consumer_arg.hook = checkpoint_arg.hook = S.hook;
    consumer_arg.payload = checkpoint_arg.payload = S.hook_payload;
    pthread_mutex_lock(&ready_lock);
    ready_count = 0;
    pthread_mutex_unlock(&ready_lock);
    if (!S.cfg.no_buffer) {
        if (pthread_create(&S.consumer, NULL, consumer_main, &consumer_arg) != 0) {
            rc = trifle__error(err, TRIFLE_ERROR, "cannot start the stats consumer thread");
            goto done;
        }
        S.consumer_on = 1;
    }
    if (S.cfg.persist) {
        if (pthread_create(&S.checkpointer, NULL, checkpoint_main, &checkpoint_arg) != 0) {
            stop_threads();
            rc = trifle__error(err, TRIFLE_ERROR, "cannot start the stats checkpoint thread");
            goto done;
        }
        S.checkpointer_on = 1;
    }
    await_ready(S.consumer_on + S.checkpointer_on);
    S.started = 1;
done:
    pthread_mutex_unlock(&S.ctl);
    return rc;
}

int trifle_simple_stop(trifle_error *err)
{
    int rc = 0;

    ensure_init();
    pthread_mutex_lock(&S.ctl);
    if (!S.started)
        goto done;
    stop_threads();
    S.started = 0;
    pthread_mutex_lock(&S.lock);
    drain();
    pthread_mutex_unlock(&S.lock);
    if (S.cfg.persist && changed())
        rc = save_now(err);
done:
    pthread_mutex_unlock(&S.ctl);
    return rc;
}

int trifle_simple_save(trifle_error *err)
{
    int rc;

    ensure_init();
    if (!atomic_load(&S.enabled))
        return 0;
    pthread_mutex_lock(&S.ctl);
    if (!S.cfg.persist)
        rc = trifle__error(err, TRIFLE_ENOTSUP, "stats persistence is off");
    else
        rc = save_now(err);
    pthread_mutex_unlock(&S.ctl);
    return rc;
}

void trifle_simple_reset(void)
{
    size_t i;

    ensure_init();
    pthread_mutex_lock(&S.ctl);
    stop_threads();
    S.started = 0;
    pthread_rwlock_wrlock(&S.prov);
    for (i = 0; i < S.n_providers; i++)
        trifle__free(S.providers[i].root);
    trifle__free(S.providers);
    S.providers = NULL;
    S.n_providers = 0;
    pthread_rwlock_unlock(&S.prov);
    pthread_mutex_lock(&S.lock);
    pthread_mutex_lock(&S.fifo);
    rings_free(S.rings);
    S.active = 0;
    S.cap = 0;
    atomic_store(&S.queued, 0);
    pthread_mutex_unlock(&S.fifo);
    free_table();
    S.generation = S.saved_generation = 0;
    trifle__free(S.cfg.data_dir);
    trifle__free(S.cfg.label_text);
    S.cfg.data_dir = NULL;
    S.cfg.label_text = NULL;
    S.cfg.enabled = 1;
    S.cfg.persist = 0;
    S.cfg.no_buffer = 1;
    S.cfg.buffer_size = DEF_BUFFER_SIZE;
    S.cfg.flush_ms = DEF_FLUSH_MS;
    S.cfg.checkpoint_ms = DEF_CHECKPOINT_MS;
    atomic_store(&S.enabled, 1);
    atomic_store(&S.no_buffer, 1);
    pthread_mutex_unlock(&S.lock);
    S.hook = NULL;
    S.hook_payload = NULL;
    trifle__sysinfo_reset();
    pthread_mutex_unlock(&S.ctl);
}

/* ---------------------------------------------------------------------------------------------
 * Providers and rendering */

int trifle_simple_register(const char *root, trifle_simple_provider provider, void *payload,
                           trifle_error *err)
{
    char *copy;
    size_t i;
    sprov *grown;

    ensure_init();
    if (!atomic_load(&S.enabled))
        return 0;
    if (provider == NULL || trifle__simple_name_check(root, NULL) != 0 ||
        strcmp(root, "stats") == 0)
        return invalid_name(err);
    if ((copy = trifle__strdup(root)) == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    pthread_rwlock_wrlock(&S.prov);
    for (i = 0; i < S.n_providers; i++)
        if (strcmp(S.providers[i].root, root) == 0)
            break;
    if (i == S.n_providers) {
        grown = trifle__reallocarray(S.providers, S.n_providers + 1, sizeof(*grown));
        if (grown == NULL) {
            pthread_rwlock_unlock(&S.prov);
            trifle__free(copy);
            return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        }
        S.providers = grown;
        S.n_providers++;
    } else {
        trifle__free(S.providers[i].root);
    }
    S.providers[i].root = copy;
    S.providers[i].fn = provider;
    S.providers[i].payload = payload;
    pthread_rwlock_unlock(&S.prov);
    return 0;
}

int trifle_simple_unregister(const char *root)
{
    size_t i;
    int rc = TRIFLE_ENOTFOUND;

    ensure_init();
    if (root == NULL)
        return TRIFLE_ENOTFOUND;
    pthread_rwlock_wrlock(&S.prov);
    for (i = 0; i < S.n_providers; i++) {
        if (strcmp(S.providers[i].root, root) != 0)
            continue;
        trifle__free(S.providers[i].root);
        S.providers[i] = S.providers[S.n_providers - 1];
        S.n_providers--;
        rc = 0;
        break;
    }
    pthread_rwlock_unlock(&S.prov);
    return rc;
}

/* The whole /stats tree: providers (outside R), then the entries (a snapshot under R).
 * S.prov is read-held by the caller. */
static int build_tree(trifle__snode **out, trifle_error *err)
{
    trifle__snode *root = trifle__snode_new_object(NULL), *sub = NULL;
    trifle__simple_view v = {NULL, 0};
    size_t i;
    int rc = 0;

    *out = NULL;
    if (root == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    for (i = 0; i < S.n_providers; i++) {
        rc = trifle__simple_run_provider(&sub, S.providers[i].root, S.providers[i].fn,
                                         S.providers[i].payload, err);
        if (rc != 0)
            goto done;
        if ((rc = trifle__snode_attach(root, sub)) != 0) {
            trifle__snode_free(sub);
            rc = trifle__error(err, rc, "out of memory");
            goto done;
        }
    }
    pthread_mutex_lock(&S.lock);
    drain();
    rc = snapshot(&v);
    /* strings stay valid after unlocking: entries are only freed by trifle_simple_reset() */
    pthread_mutex_unlock(&S.lock);
    if (rc != 0 || (sub = trifle__simple_stats_tree(&v)) == NULL ||
        trifle__snode_attach(root, sub) != 0) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    *out = root;
    root = NULL;
done:
    trifle__free(v.items);
    trifle__snode_free(root);
    return rc;
}

static int render(char **out, int prometheus, trifle_error *err)
{
    trifle__snode *tree = NULL;
    trifle__buf b = TRIFLE__BUF_INIT;
    char *labels = NULL;
    int rc;

    ensure_init();
    if (out == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "output pointer is NULL");
    *out = NULL;
    if (!atomic_load(&S.enabled)) {
        *out = trifle__strdup(prometheus ? "" : "{}\n");
        return *out ? 0 : trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    }
    if (prometheus) {
        pthread_mutex_lock(&S.ctl);
        labels = trifle__strdup(S.cfg.label_text ? S.cfg.label_text : "type=\"trifle\"");
        pthread_mutex_unlock(&S.ctl);
        if (labels == NULL)
            return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    }
    pthread_rwlock_rdlock(&S.prov);
    rc = build_tree(&tree, err);
    pthread_rwlock_unlock(&S.prov);
    if (rc != 0)
        goto done;
    rc = prometheus ? trifle__simple_prometheus(&b, tree, labels) : trifle__simple_json(&b, tree);
    trifle__buf_append(&b, "", 0);
    if (rc != 0 || (*out = trifle__buf_detach(&b)) == NULL)
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
done:
    trifle__snode_free(tree);
    trifle__buf_free(&b);
    trifle__free(labels);
    return rc;
}

int trifle_simple_render_json(char **out, trifle_error *err)
{
    return render(out, 0, err);
}

int trifle_simple_render_prometheus(char **out, trifle_error *err)
{
    return render(out, 1, err);
}
