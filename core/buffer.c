/* The write buffer (SPEC §6). See buffer_int.h for the shape; the notes here are about how.
 *
 * Locks. `lock` guards the pending table, the caches, the counters and the FIFO queue; `flush_lock`
 * serialises flushes and guards what a flush owns (the snapshot, the records kept from failed
 * flushes, the quarantine). Lock order: flush_lock, then `lock` or the handle's conn_lock — never
 * `lock` and conn_lock together, so an enqueue never waits for I/O.
 *
 * Hot path (aggregate mode). A track looks up, per granularity, its bucket start in a cache of
 * [start, next) — no time-zone call while the instant stays inside — and its record through a
 * cache of the last record per granularity; only a miss hashes the stored identity. Merging a
 * payload into a record is two-phase: `reserve` makes sure the record has a slot for every leaf
 * (new paths get placeholder slots that are never written) and maps payload leaf i to its slot;
 * `compose` then only adds. A record remembers the serial of the last payload it mapped, so an
 * application that reuses one payload object merges with no search and no allocation. Because
 * reservation happens for every record of the operation before any value changes, an allocation
 * failure leaves the buffer exactly as it was. */
#include "buffer_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc_int.h"
#include "error_int.h"
#include "nocturnal_int.h"
#include "payload_int.h"
#include "trifle_int.h"

#define SYSTEM_KEY "__system__key__"
#define UNTRACKED_KEY "__untracked__"
#define KEYS_PREFIX "keys."
#define KEYS_PREFIX_LEN 5

enum { OP_NONE = 0, OP_ADD = 1, OP_SET = 2 };

/* A leaf of a record. Its path is NUL-terminated text at `path` in the record's `paths` block
 * (one allocation per record instead of one per leaf). */
typedef struct bleaf {
    double value;
    uint32_t path;
    int op;
} bleaf;

typedef struct bentry {
    /* what the hot path reads and writes, in the first 64 bytes */
    int64_t at;
    uint64_t key_id;      /* key_id of the buffer's key memo this record's key compared equal to */
    uint64_t fast_serial; /* payload whose leaf i lives in leaves[fast_map[i]] */
    bleaf *leaves;        /* sorted by path, unique */
    uint32_t *fast_map;
    uint64_t tk_id; /* system records: tracking key whose slots are cached below (0 = none) */
    uint64_t ops;   /* operations merged in */
    uint32_t count_slot, tk_slot;
    struct bentry *next; /* hash chain, op list or free list */
    uint64_t hash;
    char *key;        /* metric key (owned) */
    const char *gran; /* label, borrowed from the handle's configuration */
    char *id;         /* stored identifier (owned) */
    char *paths;      /* the leaves' paths, NUL-terminated, one after the other */
    uint32_t paths_len, paths_cap;
    uint32_t n, cap;  /* leaves */
    uint32_t fast_cap;
    unsigned char fast_real; /* every leaf fast_map points to has an op (is not a placeholder) */
    unsigned char fast_same; /* fast_map is the identity: exactly the payload's paths */
    unsigned char set_done;  /* flush bookkeeping: its SET leaves were applied */
    unsigned char wr_ops;    /* flush bookkeeping: OP_ADD | OP_SET bits of the ops it holds */
} bentry;

typedef struct btable {
    bentry **slots;
    size_t nslots; /* power of two, or 0 */
    size_t count;
} btable;

/* Non-aggregate mode: one queued operation, its records in write order. */
typedef struct bop {
    struct bop *next;
    bentry *entries;
    size_t n;
} bop;

/* Per-granularity caches, direct-mapped by bucket slot (instant / nominal bucket length), so a
 * workload that spreads instants over a day still finds its buckets and records without a
 * time-zone call or a hash lookup: a granularity gets enough slots for one day of its buckets
 * (1m: 2,048), at least GC_MIN_SLOTS and at most GC_MAX_SLOTS. A slot is only a hint: every hit
 * is checked. */
#define GC_MIN_SLOTS 64
#define GC_MAX_SLOTS 4096

typedef struct gslot {
    int64_t start, next; /* instants in [start, next) floor to start; next > start when valid */
    bentry *data, *sys;  /* records of that bucket, each valid while its generation matches */
    uint64_t data_gen, sys_gen;
} gslot;

typedef struct gcache {
    int64_t span;  /* nominal bucket length in seconds (slot = at / span) */
    double inv;    /* 1.0 / span */
    uint64_t mask; /* slots - 1 */
    gslot *slot;
} gcache;

struct trifle__buffer {
    trifle__buffer_env env;
    int mode;          /* trifle_id_mode of the storage */
    int aggregate;
    trifle__mutex lock;
    trifle__mutex flush_lock;
    pthread_cond_t wake, done, room;
    /* aggregate state */
    btable tables[2]; /* pending: tables[cur]; the other is empty between flushes */
    int cur;
    uint64_t gen; /* bumps when the pending table is swapped (invalidates record caches) */
    btable retained;   /* flush_lock: records of failed flushes, older than anything pending */
    btable quarantine; /* flush_lock: records the store rejected (EDATA) */
    size_t held;       /* lock: retained.count + quarantine.count (or held FIFO operations) */
    size_t quarantined;
    bentry *free_list;
    size_t n_free;
    uint64_t system_hash; /* hash of SYSTEM_KEY */
    gcache *gc;
    /* lock: the key of the last call (a copy), its hash and an id that changes with its text, so
     * a call with the same key as the last one neither hashes nor compares key strings */
    char *mkey;
    size_t mkey_len, mkey_cap;
    uint64_t mkey_hash, mkey_id;
    /* FIFO state */
    bop *q_head, *q_tail; /* lock: queued operations */
    size_t q_n;
    bop *kept;   /* flush_lock: operations of failed flushes, in front of the queue */
    bop *kept_q; /* flush_lock: quarantined operations, in order */
    /* scheduling */
    uint64_t ops_since;
    uint64_t req_seq, done_seq;
    int last_rc;
    trifle_error last_err;
    int stop, closed, thread_started;
    pthread_t thread;
    int64_t backoff_ms, retry_at_ms, quarantine_at_ms, last_flush_ms;
    int64_t first_pending_ms; /* when the pending state last became non-empty (the timer's start) */
    trifle_buffer_counters stats;
    trifle_error_handler on_error;
    void *on_error_payload;
};

/* ---------------------------------------------------------------------------------------------
 * Time */

static int64_t now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait on cond until the monotonic deadline (ms; < 0 = no deadline). */
static void cond_wait_until(pthread_cond_t *c, trifle__mutex *m, int64_t deadline)
{
    struct timespec ts;

    if (deadline < 0) {
        (void)pthread_cond_wait(c, m);
        return;
    }
    ts.tv_sec = (time_t)(deadline / 1000);
    ts.tv_nsec = (long)(deadline % 1000) * 1000000;
    (void)pthread_cond_timedwait(c, m, &ts);
}

/* ---------------------------------------------------------------------------------------------
 * Records */

static uint64_t hash_str(const char *s, uint64_t h)
{
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t hash_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Records are found by their tuple (key, granularity, bucket start): the key's hash is computed
 * once per call, so a lookup costs a mix and a compare, and the identifier string is built only
 * when a record is created. Granularity labels are compared by pointer: they all point into the
 * handle's configuration. */
static uint64_t tuple_hash(uint64_t key_hash, const char *gran, int64_t at)
{
    return hash_mix(key_hash ^ hash_mix((uint64_t)at ^ ((uint64_t)(uintptr_t)gran << 17)));
}

static int tuple_eq(const bentry *e, uint64_t h, const char *key, const char *gran, int64_t at)
{
    return e->hash == h && e->at == at && e->gran == gran && strcmp(e->key, key) == 0;
}

/* Whether two records are the same stored row: the identifier string, plus the instant in partial
 * mode and the granularity and instant in separated mode. Records of different keys can coincide
 * there with separators that look like key text (ERRATA minor 16); a flush folds them. */
static int same_stored(int mode, const bentry *x, const bentry *y)
{
    if (strcmp(x->id, y->id) != 0)
        return 0;
    if (mode != TRIFLE_ID_FULL && x->at != y->at)
        return 0;
    return mode != TRIFLE_ID_SEPARATED || strcmp(x->gran, y->gran) == 0;
}

static const char *leaf_path(const bentry *e, size_t i)
{
    return e->paths + e->leaves[i].path;
}

static void entry_destroy(bentry *e)
{
    trifle__free(e->paths);
    trifle__free(e->leaves);
    trifle__free(e->fast_map);
    trifle__free(e->key);
    trifle__free(e->id);
    trifle__free(e);
}

/* Forget a record's contents but keep its arrays for reuse. */
static void entry_reset(bentry *e)
{
    e->paths_len = 0;
    e->n = 0;
    e->fast_serial = 0;
    e->fast_real = 0;
    e->key_id = e->tk_id = 0;
    e->ops = 0;
    e->set_done = 0;
    trifle__free(e->key);
    trifle__free(e->id);
    e->key = e->id = NULL;
    e->next = NULL;
}

/* A new record for (key, gran, at); from the free list when possible. Caller holds `lock`. */
static bentry *entry_new(trifle__buffer *b, const char *key, const char *gran, int64_t at,
                         const char *id, uint64_t h)
{
    bentry *e = b->free_list;

    if (e != NULL) {
        b->free_list = e->next;
        b->n_free--;
    } else if ((e = trifle__calloc(1, sizeof(*e))) == NULL)
        return NULL;
    e->next = NULL;
    e->key = trifle__strdup(key);
    e->id = trifle__strdup(id);
    if (e->key == NULL || e->id == NULL) {
        entry_destroy(e);
        return NULL;
    }
    e->gran = gran;
    e->at = at;
    e->hash = h;
    e->key_id = e->tk_id = 0;
    return e;
}

/* Binary search for path; *pos = index of it, or where it would go. */
static int leaf_find(const bentry *e, const char *path, size_t *pos)
{
    size_t lo = 0, hi = e->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(leaf_path(e, mid), path);
        if (c == 0) {
            *pos = mid;
            return 1;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return 0;
}

/* Insert a placeholder slot for path at pos. The path is copied. 0 or TRIFLE_ENOMEM. */
static int leaf_insert(bentry *e, size_t pos, const char *path, size_t plen)
{
    if (plen >= UINT32_MAX - e->paths_len)
        return TRIFLE_ENOMEM;
    if (e->paths_len + plen + 1 > e->paths_cap) {
        size_t cap = e->paths_cap ? (size_t)e->paths_cap : 64;
        char *m;
        while (cap < e->paths_len + plen + 1)
            cap *= 2;
        if (cap > UINT32_MAX)
            cap = UINT32_MAX;
        if ((m = trifle__realloc(e->paths, cap)) == NULL)
            return TRIFLE_ENOMEM;
        e->paths = m;
        e->paths_cap = (uint32_t)cap;
    }
    if (e->n == e->cap) {
        size_t cap = e->cap ? (size_t)e->cap * 2 : 8;
        bleaf *l;
        if (cap > UINT32_MAX || (l = trifle__reallocarray(e->leaves, cap, sizeof(*l))) == NULL)
            return TRIFLE_ENOMEM;
        e->leaves = l;
        e->cap = (uint32_t)cap;
    }
    memmove(e->leaves + pos + 1, e->leaves + pos, (e->n - pos) * sizeof(*e->leaves));
    memcpy(e->paths + e->paths_len, path, plen);
    e->paths[e->paths_len + plen] = '\0';
    e->leaves[pos].path = e->paths_len;
    e->paths_len += (uint32_t)plen + 1;
    e->leaves[pos].value = 0;
    e->leaves[pos].op = OP_NONE;
    e->n++;
    e->fast_serial = 0; /* indexes moved */
    e->fast_real = 0;
    e->tk_id = 0;
    return 0;
}

/* Apply one leaf operation in arrival order (SPEC §6.2 table). */
static void leaf_compose(bleaf *l, int op, double v)
{
    if (op == OP_SET) {
        l->op = OP_SET;
        l->value = v;
    } else if (l->op == OP_NONE) {
        l->op = OP_ADD;
        l->value = v;
    } else {
        l->value += v; /* ADD(a)+ADD(b) = ADD(a+b); SET(v)+ADD(b) = SET(v+b) */
    }
}

/* Phase 1 for a payload: every leaf has a slot and fast_map maps payload leaf i to it. */
static int entry_reserve_payload(bentry *e, const trifle_payload *p)
{
    size_t i, pos;

    if (e->fast_serial == p->serial)
        return 0;
    e->fast_real = 0;
    if (p->n > UINT32_MAX)
        return TRIFLE_ENOMEM;
    if (p->n > e->fast_cap) {
        uint32_t *m = trifle__reallocarray(e->fast_map, p->n, sizeof(*m));
        if (m == NULL)
            return TRIFLE_ENOMEM;
        e->fast_map = m;
        e->fast_cap = (uint32_t)p->n;
    }
    for (i = 0; i < p->n; i++) {
        const char *path = p->leaves[i].path;
        if (!leaf_find(e, path, &pos) && leaf_insert(e, pos, path, strlen(path)) != 0) {
            e->fast_serial = 0;
            e->fast_real = 0;
            return TRIFLE_ENOMEM;
        }
        /* payload leaves are sorted, so later insertions land after pos: earlier maps hold */
        e->fast_map[i] = (uint32_t)pos;
    }
    /* sorted and unique on both sides: the map is the identity when the sizes agree */
    e->fast_same = e->n == p->n;
    e->fast_serial = p->serial;
    return 0;
}

/* Phase 2 for a payload. Once every mapped slot holds an operation, adding is only `+=`. */
static void entry_compose_payload(bentry *e, const trifle_payload *p, int op)
{
    const uint32_t *map = e->fast_map;
    const trifle_leaf *src = p->leaves;
    bleaf *l = e->leaves;
    size_t i, n = p->n;

    if (op == OP_ADD && e->fast_real && e->fast_same) {
        for (i = 0; i < n; i++)
            l[i].value += src[i].value;
    } else if (op == OP_ADD && e->fast_real) {
        for (i = 0; i < n; i++)
            l[map[i]].value += src[i].value;
    } else {
        for (i = 0; i < n; i++)
            leaf_compose(&l[map[i]], op, src[i].value);
        e->fast_real = 1;
    }
    e->ops++;
}

/* Phase 1 for a system record: slots for `count` and `keys.<tk>`. tk_id names tk (0 = unknown):
 * while the record's slots stay where they are, a second call with the same tk_id only reads the
 * cached positions. */
static int entry_reserve_system(bentry *e, const char *tk, uint64_t tk_id)
{
    char stackbuf[256], *path = stackbuf;
    size_t tl, pos, count_pos;
    int rc = 0;

    if (tk_id != 0 && e->tk_id == tk_id)
        return 0;
    if (!leaf_find(e, "count", &count_pos) && leaf_insert(e, count_pos, "count", 5) != 0)
        return TRIFLE_ENOMEM;
    tl = strlen(tk);
    if (KEYS_PREFIX_LEN + tl + 1 > sizeof(stackbuf) &&
        (path = trifle__malloc(KEYS_PREFIX_LEN + tl + 1)) == NULL)
        return TRIFLE_ENOMEM;
    memcpy(path, KEYS_PREFIX, KEYS_PREFIX_LEN);
    memcpy(path + KEYS_PREFIX_LEN, tk, tl + 1);
    /* "keys.<tk>" sorts after "count", so inserting it leaves count_pos where it is */
    if (!leaf_find(e, path, &pos) && leaf_insert(e, pos, path, KEYS_PREFIX_LEN + tl) != 0)
        rc = TRIFLE_ENOMEM;
    if (path != stackbuf)
        trifle__free(path);
    if (rc != 0)
        return rc;
    e->count_slot = (uint32_t)count_pos;
    e->tk_slot = (uint32_t)pos;
    e->tk_id = tk_id;
    return 0;
}

static void entry_compose_system(bentry *e)
{
    leaf_compose(&e->leaves[e->count_slot], OP_ADD, 1);
    leaf_compose(&e->leaves[e->tk_slot], OP_ADD, 1);
    e->ops++;
}

/* Compose src (newer) onto dst (older), leaf by leaf. Both sorted. 0 or TRIFLE_ENOMEM (dst may
 * then hold extra placeholder slots, which are harmless). */
static int entry_compose_entry(bentry *dst, const bentry *src)
{
    size_t i, pos;

    for (i = 0; i < src->n; i++) {
        const bleaf *l = &src->leaves[i];
        const char *path = leaf_path(src, i);
        if (l->op == OP_NONE)
            continue;
        if (!leaf_find(dst, path, &pos) && leaf_insert(dst, pos, path, strlen(path)) != 0)
            return TRIFLE_ENOMEM;
    }
    for (i = 0; i < src->n; i++) {
        const bleaf *l = &src->leaves[i];
        if (l->op == OP_NONE)
            continue;
        (void)leaf_find(dst, leaf_path(src, i), &pos);
        leaf_compose(&dst->leaves[pos], l->op, l->value);
    }
    dst->ops += src->ops;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Tables */

static bentry *table_find(const btable *t, uint64_t h, const char *key, const char *gran,
                          int64_t at)
{
    bentry *e;

    if (t->nslots == 0)
        return NULL;
    for (e = t->slots[h & (t->nslots - 1)]; e != NULL; e = e->next)
        if (tuple_eq(e, h, key, gran, at))
            return e;
    return NULL;
}

static int table_insert(btable *t, bentry *e)
{
    if (t->count + 1 > t->nslots) {
        size_t n = t->nslots ? t->nslots * 2 : 64, i;
        bentry **slots = trifle__calloc(n, sizeof(*slots));
        if (slots == NULL)
            return TRIFLE_ENOMEM;
        for (i = 0; i < t->nslots; i++) {
            bentry *x = t->slots[i];
            while (x != NULL) {
                bentry *next = x->next;
                x->next = slots[x->hash & (n - 1)];
                slots[x->hash & (n - 1)] = x;
                x = next;
            }
        }
        trifle__free(t->slots);
        t->slots = slots;
        t->nslots = n;
    }
    e->next = t->slots[e->hash & (t->nslots - 1)];
    t->slots[e->hash & (t->nslots - 1)] = e;
    t->count++;
    return 0;
}

static void table_remove(btable *t, bentry *e)
{
    bentry **pp = &t->slots[e->hash & (t->nslots - 1)];

    while (*pp != NULL && *pp != e)
        pp = &(*pp)->next;
    if (*pp == e) {
        *pp = e->next;
        e->next = NULL;
        t->count--;
    }
}

/* Move every record into a NULL-terminated array (the table is emptied, its slots kept). */
static bentry **table_drain(btable *t, size_t *n_out)
{
    bentry **all = trifle__calloc(t->count + 1, sizeof(*all));
    size_t i, n = 0;

    if (all == NULL)
        return NULL;
    for (i = 0; i < t->nslots; i++) {
        bentry *e = t->slots[i];
        while (e != NULL) {
            bentry *next = e->next;
            e->next = NULL;
            all[n++] = e;
            e = next;
        }
        t->slots[i] = NULL;
    }
    t->count = 0;
    *n_out = n;
    return all;
}

static void table_destroy(btable *t)
{
    size_t i;

    for (i = 0; i < t->nslots; i++) {
        bentry *e = t->slots[i];
        while (e != NULL) {
            bentry *next = e->next;
            entry_destroy(e);
            e = next;
        }
    }
    trifle__free(t->slots);
    memset(t, 0, sizeof(*t));
}

/* Give records back to the free list (kept small: the rest is freed). Caller holds `lock`. */
static void recycle(trifle__buffer *b, bentry *e)
{
    if (b->n_free >= 4096) {
        entry_destroy(e);
        return;
    }
    entry_reset(e);
    e->next = b->free_list;
    b->free_list = e;
    b->n_free++;
}

/* ---------------------------------------------------------------------------------------------
 * Writing records to the driver */

static int entry_order(const void *a, const void *b)
{
    const bentry *x = *(bentry *const *)a, *y = *(bentry *const *)b;
    int c = strcmp(x->id, y->id);

    if (c == 0)
        c = strcmp(x->gran, y->gran);
    if (c == 0)
        c = (x->at > y->at) - (x->at < y->at);
    return c;
}

/* Drop the text of paths no leaf refers to any more (after a flush removed applied SET leaves),
 * so a record retried through many flushes does not grow. Without memory it stays as it is. */
static void paths_compact(bentry *e)
{
    char *m;
    uint32_t len = 0, cap = e->paths_len;
    size_t i;

    if (cap == 0 || (m = trifle__malloc(cap)) == NULL)
        return;
    for (i = 0; i < e->n; i++) {
        const char *p = leaf_path(e, i);
        size_t l = strlen(p) + 1;
        memcpy(m + len, p, l);
        e->leaves[i].path = len;
        len += (uint32_t)l;
    }
    trifle__free(e->paths);
    e->paths = m;
    e->paths_len = len;
    e->paths_cap = cap;
}

/* The OP_ADD | OP_SET bits of the operations a record holds (0: only placeholders). One pass over
 * its leaves, so a flush reads each record's leaves once before writing them. */
static unsigned char ops_of(const bentry *e)
{
    unsigned m = 0;
    size_t i;

    for (i = 0; i < e->n; i++)
        m |= (unsigned)e->leaves[i].op;
    return (unsigned char)m;
}

/* One driver call for records rec[0..n) with their `op` leaves. On failure *applied and
 * *failed_item describe the outcome (SPEC §7.3). */
static int write_call(trifle__buffer *b, bentry **rec, size_t n, int op, size_t *applied,
                      ptrdiff_t *failed_item, int *unknown, trifle_error *err)
{
    trifle_entry *items = NULL;
    trifle_leaf *leaves = NULL;
    size_t total = 0, i, j, k = 0;
    trifle_write_result res;
    int rc;

    *applied = 0;
    *failed_item = -1;
    *unknown = 0;
    for (i = 0; i < n; i++)
        for (j = 0; j < rec[i]->n; j++)
            total += rec[i]->leaves[j].op == op;
    if ((items = trifle__calloc(n, sizeof(*items))) == NULL ||
        (leaves = trifle__calloc(total, sizeof(*leaves))) == NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    for (i = 0; i < n; i++) {
        items[i].bucket.id = rec[i]->id;
        items[i].bucket.key = rec[i]->key;
        items[i].bucket.granularity = rec[i]->gran;
        items[i].bucket.at = rec[i]->at;
        items[i].leaves = leaves + k;
        for (j = 0; j < rec[i]->n; j++) {
            if (rec[i]->leaves[j].op != op)
                continue;
            leaves[k].path = leaf_path(rec[i], j);
            leaves[k].value = rec[i]->leaves[j].value;
            k++;
        }
        items[i].n_leaves = (size_t)(leaves + k - items[i].leaves);
    }
    memset(&res, 0, sizeof(res));
    res.struct_size = sizeof(res);
    res.failed_item = -1;
    trifle__mutex_lock(b->env.conn_lock);
    rc = op == OP_SET ? trifle_storage_set(b->env.st, items, n, &res, err)
                      : trifle_storage_inc(b->env.st, items, n, &res, err);
    trifle__mutex_unlock(b->env.conn_lock);
    if (rc != 0) {
        *applied = res.applied <= n ? res.applied : 0;
        *failed_item = rc == TRIFLE_EDATA && res.failed_item >= 0 && (size_t)res.failed_item < n
                           ? res.failed_item
                           : -1;
        *unknown = res.outcome_unknown;
    }
done:
    trifle__free(items);
    trifle__free(leaves);
    return rc;
}

/* Outcome of writing a set of records. */
typedef struct write_outcome {
    bentry **done;        /* fully written: the caller removes and recycles them */
    size_t n_done;
    bentry **quarantine;  /* rejected by the store because of stored data */
    size_t n_quarantine;
    size_t unknown;       /* calls whose outcome was unknown */
} write_outcome;

/* Write records rec[0..n) (sorted) as SPEC §6.3 says: every SET part first, then every ADD part,
 * in calls of at most batch_items records. Stops at the first failure. Records whose SET part was
 * applied keep only their ADD leaves, so a set is never repeated. */
static int write_records(trifle__buffer *b, bentry **rec, size_t n, write_outcome *out,
                         trifle_error *err)
{
    size_t batch = (size_t)b->env.opt->batch_items, i, start, m;
    bentry **chunk = NULL;
    int phase, rc = 0;

    memset(out, 0, sizeof(*out));
    if ((out->done = trifle__calloc(n + 1, sizeof(bentry *))) == NULL ||
        (out->quarantine = trifle__calloc(n + 1, sizeof(bentry *))) == NULL ||
        (chunk = trifle__calloc(n + 1, sizeof(bentry *))) == NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    for (i = 0; i < n; i++)
        if ((rec[i]->wr_ops = ops_of(rec[i])) == 0) /* only placeholders: nothing to write */
            out->done[out->n_done++] = rec[i];
    for (phase = OP_SET; phase >= OP_ADD && rc == 0; phase--) {
        for (start = 0, m = 0; start < n && rc == 0;) {
            size_t applied, j;
            ptrdiff_t failed;
            int unknown;

            for (m = 0; start < n && m < batch; start++) {
                bentry *e = rec[start];
                if (!(e->wr_ops & phase) || (phase == OP_SET && e->set_done))
                    continue;
                chunk[m++] = e;
            }
            if (m == 0)
                break;
            rc = write_call(b, chunk, m, phase, &applied, &failed, &unknown, err);
            if (rc == 0)
                applied = m;
            if (unknown)
                out->unknown++;
            for (j = 0; j < applied; j++) {
                if (phase == OP_SET)
                    chunk[j]->set_done = 1;
                else
                    out->done[out->n_done++] = chunk[j];
            }
            if (failed >= 0)
                out->quarantine[out->n_quarantine++] = chunk[failed];
        }
    }
    /* records whose SET part is applied and which have nothing to add are done; the others drop
     * their applied SET leaves */
    for (i = 0; i < n; i++) {
        bentry *e = rec[i];
        size_t j, w;
        int listed = 0;

        if (!e->set_done)
            continue;
        for (j = 0; j < out->n_done && !listed; j++)
            listed = out->done[j] == e;
        for (j = 0; j < out->n_quarantine && !listed; j++)
            listed = out->quarantine[j] == e;
        if (!(e->wr_ops & OP_ADD)) {
            if (!listed)
                out->done[out->n_done++] = e;
            continue;
        }
        for (j = w = 0; j < e->n; j++)
            if (e->leaves[j].op != OP_SET)
                e->leaves[w++] = e->leaves[j];
        e->n = (uint32_t)w;
        paths_compact(e);
        e->fast_serial = 0;
        e->fast_real = 0;
        e->tk_id = 0;
        e->set_done = 0;
    }
done:
    trifle__free(chunk);
    return rc;
}

static void outcome_free(write_outcome *o)
{
    trifle__free(o->done);
    trifle__free(o->quarantine);
}

/* Report a failed flush: last error, stats, the application's handler. Caller holds `lock`. */
static void report_failure(trifle__buffer *b, const trifle_error *e)
{
    b->last_err = *e;
    b->stats.flush_errors++;
    if (b->on_error != NULL)
        b->on_error(e, b->on_error_payload);
}

/* ---------------------------------------------------------------------------------------------
 * Flushing (aggregate mode). Caller holds flush_lock. */

static void publish_held(trifle__buffer *b)
{
    trifle__mutex_lock(&b->lock);
    b->held = b->retained.count + b->quarantine.count;
    b->quarantined = b->quarantine.count;
    (void)pthread_cond_broadcast(&b->room);
    trifle__mutex_unlock(&b->lock);
}

/* Fold the pending table into `retained` (older first), honouring the quarantine. */
static int take_snapshot(trifle__buffer *b, trifle_error *err)
{
    btable *snap;
    bentry **all;
    size_t n, i;
    int rc = 0;

    trifle__mutex_lock(&b->lock);
    snap = &b->tables[b->cur];
    b->cur ^= 1;
    b->gen++;
    b->ops_since = 0;
    trifle__mutex_unlock(&b->lock);
    if (snap->count == 0)
        return 0;
    if ((all = table_drain(snap, &n)) == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    for (i = 0; i < n; i++) {
        bentry *e = all[i], *old;

        if (rc != 0) { /* out of memory: keep the rest as separate records */
            if (table_insert(&b->retained, e) != 0)
                entry_destroy(e); /* cannot happen: capacity was reserved below */
            continue;
        }
        old = table_find(&b->quarantine, e->hash, e->key, e->gran, e->at);
        if (old == NULL)
            old = table_find(&b->retained, e->hash, e->key, e->gran, e->at);
        if (old != NULL) {
            if (entry_compose_entry(old, e) == 0) {
                trifle__mutex_lock(&b->lock);
                recycle(b, e);
                trifle__mutex_unlock(&b->lock);
                continue;
            }
            rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        }
        if (table_insert(&b->retained, e) != 0) {
            /* keep it pending instead of losing it */
            trifle__mutex_lock(&b->lock);
            (void)table_insert(&b->tables[b->cur], e);
            trifle__mutex_unlock(&b->lock);
            rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        }
    }
    trifle__free(all);
    return rc;
}

/* Write a table's records; remove the written ones, move rejected ones to the quarantine. */
static int write_table(trifle__buffer *b, btable *t, int alone, trifle_error *err)
{
    bentry **all;
    size_t n, i;
    int rc = 0;

    if (t->count == 0)
        return 0;
    if ((all = table_drain(t, &n)) == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    qsort(all, n, sizeof(*all), entry_order);
    {
        /* fold records that are one stored row (ERRATA minor 16); neighbours after sorting */
        size_t w = 0;
        for (i = 0; i < n; i++) {
            if (w > 0 && same_stored(b->mode, all[w - 1], all[i]) &&
                entry_compose_entry(all[w - 1], all[i]) == 0) {
                trifle__mutex_lock(&b->lock);
                recycle(b, all[i]);
                trifle__mutex_unlock(&b->lock);
                continue;
            }
            all[w++] = all[i];
        }
        n = w;
    }
    for (i = 0; i < n; i++)
        (void)table_insert(t, all[i]); /* slots exist: cannot fail */
    for (i = 0; i < (alone ? n : 1); i++) {
        write_outcome o;
        size_t j;
        int one = write_records(b, alone ? all + i : all, alone ? 1 : n, &o, err);

        trifle__mutex_lock(&b->lock);
        b->stats.unknown_outcomes += o.unknown;
        for (j = 0; j < o.n_done; j++) {
            table_remove(t, o.done[j]);
            recycle(b, o.done[j]);
        }
        trifle__mutex_unlock(&b->lock);
        for (j = 0; j < o.n_quarantine; j++) {
            if (t == &b->quarantine)
                continue; /* stays where it is */
            table_remove(t, o.quarantine[j]);
            if (table_insert(&b->quarantine, o.quarantine[j]) != 0)
                (void)table_insert(t, o.quarantine[j]);
        }
        if (o.n_quarantine > 0 && t != &b->quarantine) {
            /* first retry of new quarantine records after retry_max_ms (SPEC §6.4) */
            trifle__mutex_lock(&b->lock);
            b->quarantine_at_ms = now_ms() + b->env.opt->retry_max_ms;
            trifle__mutex_unlock(&b->lock);
        }
        outcome_free(&o);
        if (one != 0 && rc == 0)
            rc = one;
    }
    trifle__free(all);
    return rc;
}

static int flush_aggregate(trifle__buffer *b, int with_quarantine, trifle_error *err)
{
    int rc = take_snapshot(b, err), rc2;

    if (b->retained.count > 0) {
        trifle__mutex_lock(&b->lock);
        if (rc == 0 && b->stats.flush_errors > 0)
            b->stats.retries++;
        trifle__mutex_unlock(&b->lock);
        rc2 = write_table(b, &b->retained, 0, err);
        if (rc == 0)
            rc = rc2;
    }
    if (with_quarantine && b->quarantine.count > 0) {
        trifle_error qerr = TRIFLE_ERROR_INIT;
        /* quarantine failures are reported through stats and the handler, never to readers (I6) */
        (void)write_table(b, &b->quarantine, 1, &qerr);
        if (qerr.code != 0) {
            trifle__mutex_lock(&b->lock);
            report_failure(b, &qerr);
            trifle__mutex_unlock(&b->lock);
        }
    }
    publish_held(b);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Flushing (FIFO mode). Caller holds flush_lock. */

static void op_free(bop *op)
{
    size_t i;

    if (op == NULL)
        return;
    for (i = 0; i < op->n; i++) {
        bentry *e = &op->entries[i];
        trifle__free(e->paths);
        trifle__free(e->leaves);
        trifle__free(e->fast_map);
        trifle__free(e->key);
        trifle__free(e->id);
    }
    trifle__free(op->entries);
    trifle__free(op);
}

static int ops_share_record(int mode, const bop *a, const bop *b)
{
    size_t i, j;

    for (i = 0; i < a->n; i++)
        for (j = 0; j < b->n; j++)
            if (same_stored(mode, &a->entries[i], &b->entries[j]))
                return 1;
    return 0;
}

static size_t count_ops(const bop *op)
{
    size_t n = 0;

    for (; op != NULL; op = op->next)
        n++;
    return n;
}

/* Write queued operations in order, each its own batch. An operation the store rejects because
 * of stored data goes to the quarantine with every later operation on one of its records
 * (ERRATA minor 4); any other failure stops the queue where it is. */
static int flush_fifo(trifle__buffer *b, int with_quarantine, trifle_error *err)
{
    bop *queue, **tail, *op;
    int rc = 0;

    trifle__mutex_lock(&b->lock);
    queue = b->q_head;
    b->q_head = b->q_tail = NULL;
    b->q_n = 0;
    b->ops_since = 0;
    trifle__mutex_unlock(&b->lock);
    for (tail = &b->kept; *tail != NULL; tail = &(*tail)->next)
        ;
    *tail = queue; /* kept operations first */
    while (b->kept != NULL && rc == 0) {
        bentry **rec;
        write_outcome o;
        size_t i;
        int blocked = 0;

        op = b->kept;
        for (bop *q = b->kept_q; q != NULL && !blocked; q = q->next)
            blocked = ops_share_record(b->mode, q, op);
        if (!blocked) {
            if ((rec = trifle__calloc(op->n + 1, sizeof(*rec))) == NULL)
                return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
            for (i = 0; i < op->n; i++)
                rec[i] = &op->entries[i];
            rc = write_records(b, rec, op->n, &o, err);
            trifle__free(rec);
            trifle__mutex_lock(&b->lock);
            b->stats.unknown_outcomes += o.unknown;
            trifle__mutex_unlock(&b->lock);
            blocked = rc != 0 && o.n_quarantine > 0;
            outcome_free(&o);
            if (rc != 0 && !blocked)
                break; /* retry later, in place */
            if (rc == 0) {
                b->kept = op->next;
                op_free(op);
                continue;
            }
        }
        /* to the quarantine, in order */
        b->kept = op->next;
        op->next = NULL;
        for (tail = &b->kept_q; *tail != NULL; tail = &(*tail)->next)
            ;
        *tail = op;
        rc = 0;
    }
    if (with_quarantine && b->kept_q != NULL) {
        /* retry the quarantined operations in order; stop at the first that still fails */
        trifle_error qerr = TRIFLE_ERROR_INIT;
        while (b->kept_q != NULL) {
            bentry **rec;
            write_outcome o;
            size_t i;
            int qrc;

            op = b->kept_q;
            if ((rec = trifle__calloc(op->n + 1, sizeof(*rec))) == NULL)
                break;
            for (i = 0; i < op->n; i++)
                rec[i] = &op->entries[i];
            qrc = write_records(b, rec, op->n, &o, &qerr);
            trifle__free(rec);
            outcome_free(&o);
            if (qrc != 0)
                break;
            b->kept_q = op->next;
            op_free(op);
        }
        if (qerr.code != 0) {
            trifle__mutex_lock(&b->lock);
            report_failure(b, &qerr);
            trifle__mutex_unlock(&b->lock);
        }
    }
    trifle__mutex_lock(&b->lock);
    b->held = count_ops(b->kept) + count_ops(b->kept_q);
    b->quarantined = count_ops(b->kept_q);
    (void)pthread_cond_broadcast(&b->room);
    trifle__mutex_unlock(&b->lock);
    return rc;
}

/* One flush of everything pending. with_quarantine: 1 = also retry the quarantine, 2 = only when
 * its retry_max_ms period is due, 0 = not. Takes flush_lock. */
static int flush_now(trifle__buffer *b, int with_quarantine, trifle_error *err)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    int rc;

    if (with_quarantine == 2) {
        trifle__mutex_lock(&b->lock);
        with_quarantine = b->quarantined > 0 && now_ms() >= b->quarantine_at_ms;
        trifle__mutex_unlock(&b->lock);
    }
    trifle__mutex_lock(&b->flush_lock);
    rc = b->aggregate ? flush_aggregate(b, with_quarantine, &e) : flush_fifo(b, with_quarantine, &e);
    trifle__mutex_unlock(&b->flush_lock);
    trifle__mutex_lock(&b->lock);
    b->last_rc = rc;
    b->last_flush_ms = now_ms();
    if (rc == 0) {
        b->stats.flushes++;
        b->backoff_ms = 0;
        b->retry_at_ms = 0;
    } else {
        report_failure(b, &e);
        b->backoff_ms = b->backoff_ms == 0 ? b->env.opt->retry_initial_ms
                                           : b->backoff_ms * 2 > b->env.opt->retry_max_ms
                                                 ? b->env.opt->retry_max_ms
                                                 : b->backoff_ms * 2;
        b->retry_at_ms = b->last_flush_ms + b->backoff_ms;
    }
    if (with_quarantine)
        b->quarantine_at_ms = now_ms() + b->env.opt->retry_max_ms;
    trifle__mutex_unlock(&b->lock);
    if (rc != 0 && err != NULL)
        *err = e;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * The flush thread */

static size_t pending_count(const trifle__buffer *b)
{
    return b->aggregate ? b->tables[b->cur].count + b->held : b->q_n + b->held;
}

static void *flush_main(void *arg)
{
    trifle__buffer *b = arg;
    const trifle__buffer_options *o = b->env.opt;

    trifle__mutex_lock(&b->lock);
    while (!b->stop) {
        int64_t now = now_ms(), deadline = -1;
        uint64_t seq = b->req_seq;
        int fresh = b->ops_since > 0; /* writes since the last snapshot */
        int kept = b->held > b->quarantined; /* records of failed flushes */
        int quarantine_due = b->quarantined > 0 && now >= b->quarantine_at_ms;
        int due = b->req_seq > b->done_seq || b->ops_since >= (uint64_t)o->size || quarantine_due;

        if (!due && fresh && o->duration_ms > 0) {
            int64_t at = b->first_pending_ms + o->duration_ms;
            due = now >= at;
            deadline = at;
        }
        if (!due && kept && b->retry_at_ms > 0) {
            due = now >= b->retry_at_ms;
            if (deadline < 0 || b->retry_at_ms < deadline)
                deadline = b->retry_at_ms;
        }
        if (!due) {
            if (b->quarantined > 0 && (deadline < 0 || b->quarantine_at_ms < deadline))
                deadline = b->quarantine_at_ms;
            cond_wait_until(&b->wake, &b->lock, deadline);
            continue;
        }
        trifle__mutex_unlock(&b->lock);
        (void)flush_now(b, quarantine_due, NULL);
        trifle__mutex_lock(&b->lock);
        if (seq > b->done_seq)
            b->done_seq = seq;
        (void)pthread_cond_broadcast(&b->done);
    }
    trifle__mutex_unlock(&b->lock);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Public (internal) API */

int trifle__buffer_new(trifle__buffer **out, const trifle__buffer_env *env, trifle_error *err)
{
    static const int64_t unit_seconds[] = {1, 60, 3600, 86400, 604800, 2592000, 7776000, 31536000};
    trifle__buffer *b;
    pthread_condattr_t ca;
    size_t g;

    *out = NULL;
    if ((b = trifle__calloc(1, sizeof(*b))) == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    b->env = *env;
    b->mode = trifle_storage_mode(env->st);
    b->system_hash = hash_str(SYSTEM_KEY, 0xcbf29ce484222325ULL);
    b->aggregate = env->opt->aggregate;
    (void)trifle__mutex_init(&b->lock);
    (void)trifle__mutex_init(&b->flush_lock);
    (void)pthread_condattr_init(&ca);
    (void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    (void)pthread_cond_init(&b->wake, &ca);
    (void)pthread_cond_init(&b->done, &ca);
    (void)pthread_cond_init(&b->room, &ca);
    (void)pthread_condattr_destroy(&ca);
    if ((b->gc = trifle__calloc(env->n_grans ? env->n_grans : 1, sizeof(*b->gc))) == NULL)
        goto oom;
    for (g = 0; g < env->n_grans; g++) {
        int64_t span = unit_seconds[env->grans[g].unit] * env->grans[g].offset;
        uint64_t slots = GC_MIN_SLOTS;

        b->gc[g].span = span > 0 ? span : 1;
        b->gc[g].inv = 1.0 / (double)b->gc[g].span;
        while (slots < GC_MAX_SLOTS && (int64_t)slots * b->gc[g].span < 86400)
            slots *= 2;
        b->gc[g].mask = slots - 1;
        if ((b->gc[g].slot = trifle__calloc(slots, sizeof(gslot))) == NULL)
            goto oom;
    }
    b->last_flush_ms = now_ms();
    if (env->opt->async) {
        if (pthread_create(&b->thread, NULL, flush_main, b) != 0) {
            trifle__buffer_free(b);
            return trifle__error(err, TRIFLE_ERROR, "cannot start the flush thread");
        }
        b->thread_started = 1;
    }
    *out = b;
    return 0;
oom:
    trifle__buffer_free(b);
    return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
}

/* Slot of floor(at / span). For 0 <= at < 2^50 without a division: floor((at + 0.5) / span) is
 * the same integer (at is an integer, so at + 0.5 never reaches the next multiple of span), and
 * (at + 0.5) * (1 / span) is within a relative 2^-51 of it, far less than its distance 0.5 / span
 * from an integer. */
static gslot *slot_of(const gcache *c, int64_t at)
{
    uint64_t k = at >= 0 && at < ((int64_t)1 << 50)
                     ? (uint64_t)(((double)at + 0.5) * c->inv)
                     : (uint64_t)(at >= 0 ? at / c->span : -((-at) / c->span) - 1);

    return &c->slot[k & c->mask];
}

/* The bucket of granularity g holding at; s is its cache slot. Caller holds `lock`. */
static int bucket_for(trifle__buffer *b, size_t g, gslot *s, int64_t at, int64_t *out,
                      trifle_error *err)
{
    int rc;

    if (at >= s->start && at < s->next) {
        *out = s->start;
        return 0;
    }
    if ((rc = trifle_floor(out, b->env.zone, b->env.week_start, &b->env.grans[g], at, err)) != 0)
        return rc;
    s->start = *out;
    s->next = trifle__bucket_next(b->env.zone, b->env.week_start, &b->env.grans[g], *out);
    if (s->next <= s->start)
        s->next = s->start; /* never matches */
    s->data = s->sys = NULL;
    return 0;
}

/* Make the key memo hold key (its hash and a fresh id when the text differs). Only keys that pass
 * trifle__key_check enter the memo, so a call with the memo's key is not checked again. Caller
 * holds `lock`. 0, TRIFLE_EINVAL or TRIFLE_ENOMEM. */
static int key_memo(trifle__buffer *b, const char *key, trifle_error *err)
{
    size_t len;
    int rc;

    if (key != NULL && b->mkey != NULL && (len = strlen(key)) == b->mkey_len &&
        memcmp(key, b->mkey, len) == 0)
        return 0;
    if ((rc = trifle__key_check(key, 1, err)) != 0)
        return rc;
    len = strlen(key);
    if (len + 1 > b->mkey_cap) {
        char *m = trifle__realloc(b->mkey, len + 1);
        if (m == NULL)
            return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        b->mkey = m;
        b->mkey_cap = len + 1;
    }
    memcpy(b->mkey, key, len + 1);
    b->mkey_len = len;
    b->mkey_hash = hash_str(key, 0xcbf29ce484222325ULL);
    b->mkey_id++;
    return 0;
}

/* Look up (create = 0) or get-or-create (create = 1) the pending record of (key, g, at) in cache
 * slot c; key is the memo's key (b->mkey) or SYSTEM_KEY (system = 1). *miss is incremented when it
 * does not exist. Caller holds `lock`. */
static int record_for(trifle__buffer *b, size_t g, gslot *c, int64_t at, int system, int create,
                      bentry **out, size_t *miss, trifle_error *err)
{
    bentry *cached = system ? c->sys : c->data;
    uint64_t cached_gen = system ? c->sys_gen : c->data_gen;
    btable *t = &b->tables[b->cur];
    const char *gran = b->env.grans[g].label;
    const char *key = system ? SYSTEM_KEY : b->mkey;
    uint64_t h;
    bentry *e;

    *out = NULL;
    /* a system slot only ever holds records of SYSTEM_KEY; a data record's key was compared with
     * the memo's text when its key_id was set */
    if (cached != NULL && cached_gen == b->gen && cached->at == at &&
        (system || cached->key_id == b->mkey_id)) {
        *out = cached;
        return 0;
    }
    h = tuple_hash(system ? b->system_hash : b->mkey_hash, gran, at);
    e = table_find(t, h, key, gran, at);
    if (e == NULL) {
        (*miss)++;
        if (!create)
            return 0;
        {
            char stackid[512], *id = stackid;
            size_t cap = sizeof(stackid), len;

            len = trifle_storage_identifier(b->env.st, id, cap, key, gran, at);
            if (len >= cap && (id = trifle__malloc(cap = len + 1)) != NULL)
                (void)trifle_storage_identifier(b->env.st, id, cap, key, gran, at);
            if (id != NULL && (e = entry_new(b, key, gran, at, id, h)) != NULL &&
                table_insert(t, e) != 0) {
                entry_destroy(e);
                e = NULL;
            }
            if (id != stackid)
                trifle__free(id);
            if (e == NULL)
                return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        }
    }
    if (system) {
        c->sys = e;
        c->sys_gen = b->gen;
    } else {
        e->key_id = b->mkey_id;
        c->data = e;
        c->data_gen = b->gen;
    }
    *out = e;
    return 0;
}

/* Wait for room for `needed` more records/operations. Caller holds `lock`; it may be released. */
static int wait_for_room(trifle__buffer *b, size_t needed, int *waited, trifle_error *err)
{
    const trifle__buffer_options *o = b->env.opt;
    int64_t deadline = o->block_timeout_ms > 0 ? now_ms() + o->block_timeout_ms : -1;

    while (pending_count(b) + needed > (size_t)o->max_pending) {
        if (b->closed)
            return trifle__error(err, TRIFLE_ECLOSED, "buffer is closed");
        if (o->full_policy == TRIFLE__FULL_ERROR || (deadline >= 0 && now_ms() >= deadline)) {
            b->stats.rejected_full++;
            return trifle__error(err, TRIFLE_EBUSY, "buffer is full");
        }
        if (!*waited) {
            b->stats.blocked_waits++;
            *waited = 1;
        }
        if (b->thread_started) {
            b->req_seq++;
            (void)pthread_cond_signal(&b->wake);
            cond_wait_until(&b->room, &b->lock, deadline >= 0 ? deadline : now_ms() + 100);
        } else {
            /* no flush thread: the blocked caller makes room itself (ERRATA minor 5) */
            int rc;
            trifle__mutex_unlock(&b->lock);
            rc = flush_now(b, 0, NULL);
            trifle__mutex_lock(&b->lock);
            if (rc != 0 && pending_count(b) + needed > (size_t)o->max_pending)
                cond_wait_until(&b->room, &b->lock,
                                now_ms() + (b->backoff_ms > 0 ? b->backoff_ms : 10));
        }
    }
    return 0;
}

static int add_fifo(trifle__buffer *b, const char *key, int64_t at, const trifle_payload *v,
                    unsigned flags, int is_track, trifle_error *err);

/* Count an accepted operation and wake the flush thread when it has something new to do: the
 * first pending write starts the timer, the size-th triggers a flush. Caller holds `lock`.
 * Returns 1 when the caller must flush itself (no flush thread and the size is reached). */
static int accepted(trifle__buffer *b)
{
    int first = b->ops_since == 0, full;

    b->stats.operations++;
    b->ops_since++;
    full = b->ops_since >= (uint64_t)b->env.opt->size;
    if (first)
        b->first_pending_ms = now_ms();
    if (b->thread_started && (full || (first && b->env.opt->duration_ms > 0)))
        (void)pthread_cond_signal(&b->wake);
    return full && !b->thread_started;
}

/* The common call: every bucket in its cache slot, every record cached, the payload and the
 * tracking key already mapped to slots. Then nothing can fail and nothing is looked up: compose
 * and return 1. Otherwise change nothing and return 0. Caller holds `lock`. */
static int add_cached(trifle__buffer *b, int64_t at, const trifle_payload *v, uint64_t tk_id,
                      int op)
{
    size_t n = b->env.n_grans, g;
    int tracking = b->env.system_tracking;
    bentry *data[64], *sys[64];

    if (pending_count(b) > (size_t)b->env.opt->max_pending)
        return 0; /* the slow path waits for room */
    for (g = 0; g < n; g++) {
        const gslot *s = slot_of(&b->gc[g], at);
        bentry *d = s->data, *y = s->sys;

        if (!(at >= s->start && at < s->next) || d == NULL || s->data_gen != b->gen ||
            d->at != s->start || d->key_id != b->mkey_id || d->fast_serial != v->serial)
            return 0;
        data[g] = d;
        if (tracking) {
            if (y == NULL || s->sys_gen != b->gen || y->at != s->start || y->tk_id != tk_id)
                return 0;
            sys[g] = y;
        }
    }
    for (g = 0; g < n; g++) {
        entry_compose_payload(data[g], v, op);
        if (tracking)
            entry_compose_system(sys[g]);
    }
    return 1;
}

int trifle__buffer_add(trifle__buffer *b, const char *key, int64_t at, const trifle_payload *v,
                       unsigned flags, int is_track, trifle_error *err)
{
    size_t n = b->env.n_grans, g, miss;
    bentry *data[64], *sys[64];
    gslot *slot[64];
    int64_t bucket[64];
    int untracked = (flags & TRIFLE_UNTRACKED) != 0;
    int tracking = b->env.system_tracking, rc = 0, waited = 0, trigger;
    int op = is_track ? OP_ADD : OP_SET;
    uint64_t tk_id;

    if (!b->aggregate) {
        if ((rc = trifle__key_check(key, 1, err)) != 0)
            return rc;
        return add_fifo(b, key, at, v, flags, is_track, err);
    }
    if (n > 64)
        return trifle__error(err, TRIFLE_ECONFIG, "at most 64 granularities may be buffered");
    trifle__mutex_lock(&b->lock);
    if (b->closed) {
        rc = trifle__error(err, TRIFLE_ECLOSED, "buffer is closed");
        goto unlock;
    }
    if ((rc = key_memo(b, key, err)) != 0)
        goto unlock;
    /* names the tracking key for entry_reserve_system: the memo's key (even ids), or the
     * untracked key (1) */
    tk_id = untracked ? 1 : b->mkey_id * 2;
    if (add_cached(b, at, v, tk_id, op))
        goto accept;
    for (g = 0; g < n; g++) {
        slot[g] = slot_of(&b->gc[g], at);
        if ((rc = bucket_for(b, g, slot[g], at, &bucket[g], err)) != 0)
            goto unlock;
    }
    /* how many records would be new: the memory bound counts records (SPEC §6.5) */
    for (;;) {
        miss = 0;
        for (g = 0; g < n && rc == 0; g++) {
            rc = record_for(b, g, slot[g], bucket[g], 0, 0, &data[g], &miss, err);
            if (rc == 0 && tracking)
                rc = record_for(b, g, slot[g], bucket[g], 1, 0, &sys[g], &miss, err);
        }
        if (rc != 0)
            goto unlock;
        if (pending_count(b) + miss <= (size_t)b->env.opt->max_pending)
            break;
        if ((rc = wait_for_room(b, miss, &waited, err)) != 0)
            goto unlock;
        /* the lock was released: the memo may hold another key now, slots other buckets */
        if ((rc = key_memo(b, key, err)) != 0)
            goto unlock;
        tk_id = untracked ? 1 : b->mkey_id * 2;
        for (g = 0; g < n; g++)
            if ((rc = bucket_for(b, g, slot[g], at, &bucket[g], err)) != 0)
                goto unlock;
    }
    /* phase 1: every record exists and has a slot for every leaf */
    for (g = 0; g < n; g++) {
        if (data[g] == NULL &&
            (rc = record_for(b, g, slot[g], bucket[g], 0, 1, &data[g], &miss, err)) != 0)
            goto unlock;
        if (entry_reserve_payload(data[g], v) != 0)
            goto oom;
        if (tracking) {
            if (sys[g] == NULL &&
                (rc = record_for(b, g, slot[g], bucket[g], 1, 1, &sys[g], &miss, err)) != 0)
                goto unlock;
            if (entry_reserve_system(sys[g], untracked ? UNTRACKED_KEY : key, tk_id) != 0)
                goto oom;
        }
    }
    /* phase 2: compose; nothing can fail from here on */
    for (g = 0; g < n; g++) {
        entry_compose_payload(data[g], v, op);
        if (tracking)
            entry_compose_system(sys[g]);
    }
accept:
    trigger = accepted(b);
    trifle__mutex_unlock(&b->lock);
    if (trigger)
        (void)flush_now(b, 0, NULL); /* enqueue never returns flush errors (SPEC §6.4) */
    return 0;
oom:
    rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
unlock:
    trifle__mutex_unlock(&b->lock);
    return rc;
}

/* Non-aggregate mode: the operation's records, copied, appended to the queue. */
static int add_fifo(trifle__buffer *b, const char *key, int64_t at, const trifle_payload *v,
                    unsigned flags, int is_track, trifle_error *err)
{
    size_t n = b->env.n_grans, per = b->env.system_tracking ? 2 : 1, g, k = 0;
    const char *tk = (flags & TRIFLE_UNTRACKED) ? UNTRACKED_KEY : key;
    bop *op;
    int rc = 0, waited = 0, trigger;

    if ((op = trifle__calloc(1, sizeof(*op))) == NULL ||
        (op->entries = trifle__calloc(n * per, sizeof(*op->entries))) == NULL) {
        trifle__free(op);
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    }
    for (g = 0; g < n && rc == 0; g++) {
        int64_t bucket;
        size_t pass;

        if ((rc = trifle_floor(&bucket, b->env.zone, b->env.week_start, &b->env.grans[g], at,
                               err)) != 0)
            break;
        for (pass = 0; pass < per && rc == 0; pass++) {
            bentry *e = &op->entries[k++];
            const char *rkey = pass == 0 ? key : SYSTEM_KEY;
            char id[512];

            op->n = k;
            if (trifle_storage_identifier(b->env.st, id, sizeof(id), rkey, b->env.grans[g].label,
                                          bucket) >= sizeof(id)) {
                rc = trifle__error(err, TRIFLE_ERROR, "identifier too long");
                break;
            }
            e->key = trifle__strdup(rkey);
            e->id = trifle__strdup(id);
            e->gran = b->env.grans[g].label;
            e->at = bucket;
            if (e->key == NULL || e->id == NULL)
                goto oom;
            if (pass == 0) {
                if (entry_reserve_payload(e, v) != 0)
                    goto oom;
                entry_compose_payload(e, v, is_track ? OP_ADD : OP_SET);
            } else {
                if (entry_reserve_system(e, tk, 0) != 0)
                    goto oom;
                entry_compose_system(e);
            }
        }
    }
    if (rc != 0)
        goto fail;
    trifle__mutex_lock(&b->lock);
    if (b->closed) {
        trifle__mutex_unlock(&b->lock);
        rc = trifle__error(err, TRIFLE_ECLOSED, "buffer is closed");
        goto fail;
    }
    if ((rc = wait_for_room(b, 1, &waited, err)) != 0) {
        trifle__mutex_unlock(&b->lock);
        goto fail;
    }
    if (b->q_tail != NULL)
        b->q_tail->next = op;
    else
        b->q_head = op;
    b->q_tail = op;
    b->q_n++;
    trigger = accepted(b);
    trifle__mutex_unlock(&b->lock);
    if (trigger)
        (void)flush_now(b, 0, NULL);
    return 0;
oom:
    rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
fail:
    op_free(op);
    return rc;
}

/* Ask for a flush and wait for it (async), or run it (sync). */
static int flush_and_wait(trifle__buffer *b, trifle_error *err)
{
    int rc;

    if (!b->thread_started)
        return flush_now(b, 2, err);
    trifle__mutex_lock(&b->lock);
    if (b->closed) {
        trifle__mutex_unlock(&b->lock);
        return trifle__error(err, TRIFLE_ECLOSED, "buffer is closed");
    }
    {
        uint64_t seq = ++b->req_seq;
        (void)pthread_cond_signal(&b->wake);
        while (b->done_seq < seq && !b->stop)
            cond_wait_until(&b->done, &b->lock, -1);
    }
    rc = b->last_rc;
    if (rc != 0 && err != NULL)
        *err = b->last_err;
    trifle__mutex_unlock(&b->lock);
    return rc;
}

int trifle__buffer_flush(trifle__buffer *b, trifle_error *err)
{
    return flush_and_wait(b, err);
}

/* Whether records of (key, granularity) wait outside the quarantine. Caller holds flush_lock. */
static int pending_for(trifle__buffer *b, const char *key, const char *granularity)
{
    size_t i;
    const bop *op;

    if (b->aggregate) {
        const btable *tabs[2] = {&b->retained, &b->tables[b->cur]};
        size_t t;
        for (t = 0; t < 2; t++)
            for (i = 0; i < tabs[t]->nslots; i++)
                for (const bentry *e = tabs[t]->slots[i]; e != NULL; e = e->next)
                    if (strcmp(e->gran, granularity) == 0 &&
                        (strcmp(e->key, key) == 0 || strcmp(key, SYSTEM_KEY) == 0))
                        return 1;
        return 0;
    }
    for (op = b->kept; op != NULL; op = op->next)
        for (i = 0; i < op->n; i++)
            if (strcmp(op->entries[i].gran, granularity) == 0 &&
                strcmp(op->entries[i].key, key) == 0)
                return 1;
    return 0;
}

int trifle__buffer_flush_for_read(trifle__buffer *b, const char *key, const char *granularity,
                                  trifle_error *err)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    int rc, still;

    trifle__mutex_lock(&b->lock);
    still = pending_count(b) > b->quarantined;
    trifle__mutex_unlock(&b->lock);
    if (!still)
        return 0;
    if ((rc = flush_and_wait(b, &e)) == 0)
        return 0;
    trifle__mutex_lock(&b->flush_lock);
    trifle__mutex_lock(&b->lock);
    still = pending_for(b, key, granularity);
    trifle__mutex_unlock(&b->lock);
    trifle__mutex_unlock(&b->flush_lock);
    if (!still)
        return 0; /* what this read needs is written; the failure is someone else's */
    if (err != NULL)
        *err = e;
    return rc;
}

static size_t remaining_records(trifle__buffer *b)
{
    size_t n;

    trifle__mutex_lock(&b->lock);
    n = pending_count(b);
    trifle__mutex_unlock(&b->lock);
    return n;
}

int trifle__buffer_close(trifle__buffer *b, trifle_error *err)
{
    trifle_error last = TRIFLE_ERROR_INIT;
    int64_t deadline;
    size_t left;

    trifle__mutex_lock(&b->lock);
    if (b->closed) {
        trifle__mutex_unlock(&b->lock);
        return trifle__error(err, TRIFLE_ECLOSED, "buffer is closed");
    }
    b->closed = 1;
    b->stop = 1;
    (void)pthread_cond_broadcast(&b->wake);
    (void)pthread_cond_broadcast(&b->room);
    (void)pthread_cond_broadcast(&b->done);
    trifle__mutex_unlock(&b->lock);
    if (b->thread_started) {
        (void)pthread_join(b->thread, NULL);
        b->thread_started = 0;
    }
    deadline = now_ms() + b->env.opt->close_timeout_ms;
    for (;;) {
        int64_t backoff;
        if (flush_now(b, 1, &last) == 0 && remaining_records(b) == 0)
            return 0;
        if (remaining_records(b) == 0)
            return 0;
        if (now_ms() >= deadline)
            break;
        trifle__mutex_lock(&b->lock);
        backoff = b->backoff_ms > 0 ? b->backoff_ms : b->env.opt->retry_initial_ms;
        if (now_ms() + backoff > deadline)
            backoff = deadline - now_ms();
        if (backoff > 0)
            cond_wait_until(&b->wake, &b->lock, now_ms() + backoff);
        trifle__mutex_unlock(&b->lock);
    }
    left = remaining_records(b);
    trifle__mutex_lock(&b->lock);
    if (last.code == 0)
        last = b->last_err;
    trifle__mutex_unlock(&b->lock);
    return trifle__error(err, TRIFLE_EDRIVER, "%zu buffered operations could not be written: %s",
                         left, last.message[0] ? last.message : "unknown error");
}

void trifle__buffer_free(trifle__buffer *b)
{
    bop *op;
    size_t t;

    if (b == NULL)
        return;
    if (b->thread_started) {
        trifle__mutex_lock(&b->lock);
        b->stop = 1;
        (void)pthread_cond_broadcast(&b->wake);
        trifle__mutex_unlock(&b->lock);
        (void)pthread_join(b->thread, NULL);
    }
    for (t = 0; t < 2; t++)
        table_destroy(&b->tables[t]);
    table_destroy(&b->retained);
    table_destroy(&b->quarantine);
    while (b->free_list != NULL) {
        bentry *e = b->free_list;
        b->free_list = e->next;
        entry_destroy(e);
    }
    while ((op = b->q_head) != NULL) {
        b->q_head = op->next;
        op_free(op);
    }
    while ((op = b->kept) != NULL) {
        b->kept = op->next;
        op_free(op);
    }
    while ((op = b->kept_q) != NULL) {
        b->kept_q = op->next;
        op_free(op);
    }
    (void)pthread_cond_destroy(&b->wake);
    (void)pthread_cond_destroy(&b->done);
    (void)pthread_cond_destroy(&b->room);
    trifle__mutex_destroy(&b->lock);
    trifle__mutex_destroy(&b->flush_lock);
    if (b->gc != NULL)
        for (t = 0; t < b->env.n_grans; t++)
            trifle__free(b->gc[t].slot);
    trifle__free(b->gc);
    trifle__free(b->mkey);
    trifle__free(b);
}

void trifle__buffer_get_stats(trifle__buffer *b, trifle_buffer_counters *out)
{
    trifle__mutex_lock(&b->lock);
    *out = b->stats;
    out->quarantined = b->quarantined;
    out->pending_entries = pending_count(b);
    out->pending_operations = b->ops_since;
    trifle__mutex_unlock(&b->lock);
}

void trifle__buffer_set_error_handler(trifle__buffer *b, trifle_error_handler fn, void *payload)
{
    trifle__mutex_lock(&b->lock);
    b->on_error = fn;
    b->on_error_payload = payload;
    trifle__mutex_unlock(&b->lock);
}
