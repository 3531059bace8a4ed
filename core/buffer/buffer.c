/* The write buffer (SPEC §6). See buffer_int.h for the shape; the notes here are about how.
 *
 * Locks. `lock` guards the pending table, the caches, the counters and the FIFO queue; `flush_lock`
 * serialises flushes and guards what a flush owns (the snapshot, the records kept from failed
 * flushes, the quarantine). A driver call holds a connection of the handle's pool. Order:
 * flush_lock, then `lock` or a pool connection — never `lock` and a connection together, so an
 * enqueue never waits for I/O.
 *
 * Hot path (aggregate mode). A track looks up, per granularity, its bucket start in a cache of
 * [start, next) — no time-zone call while the instant stays inside — and its record through a
 * cache of the last record per granularity; only a miss hashes the stored identity. Merging a
 * payload into a record is two-phase: `reserve` makes sure the record has a slot for every leaf
 * (new paths get placeholder slots that are never written) and maps payload leaf i to its slot;
 * `compose` then only adds. A record remembers the serial of the last payload it mapped, so an
 * application that reuses one payload object merges with no search and no allocation. Because
 * reservation happens for every record of the operation before any value changes, an allocation
 * failure leaves the buffer exactly as it was.
 *
 * Calls mode (issue 13). A driver with TRIFLE_CAP_CALLS (drivers/http) takes whole calls and
 * leaves the bucketing to its server, so nothing may be bucketed here: the buffer then runs the
 * FIFO machinery with one record per call — the key, the instant as given (not floored), the
 * leaves with their operation, no granularity ("") and no identifier — journaled like any call,
 * and flush_calls() sends the queue in order, batch_items calls per driver call. A journaled call
 * carries the journal's name and its seq, so a replay resends it under the same name and a server
 * that deduplicates by name applies it once. */
#include "buffer_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc_int.h"
#include "error_int.h"
#include "jrec_int.h"
#include "journal_int.h"
#include "key_int.h"
#include "nocturnal_int.h"
#include "payload_int.h"
#include "storage_int.h"

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
    /* journal: without marks, a lower bound of the seq of the operations merged in (0 = not yet
     * known); in the quarantine with marks, the seq of its QUARANTINE record */
    uint64_t jseq;
    char *key;        /* metric key (owned) */
    const char *gran; /* label, borrowed from the handle's configuration */
    char *id;         /* stored identifier (owned) */
    char *paths;      /* the leaves' paths, NUL-terminated, one after the other */
    uint32_t paths_len, paths_cap;
    uint32_t n, cap; /* leaves */
    uint32_t fast_cap;
    unsigned char fast_real; /* every leaf fast_map points to has an op (is not a placeholder) */
    unsigned char fast_same; /* fast_map is the identity: exactly the payload's paths */
    unsigned char set_done;  /* flush bookkeeping: its SET leaves were applied */
    unsigned char wr_ops;    /* flush bookkeeping: OP_ADD | OP_SET bits of the ops it holds */
    unsigned char unknown;   /* quarantine with marks: its last write's outcome is unknown */
    unsigned char qdirty;    /* quarantine with marks: holds calls its journal record lacks */
    unsigned char home;      /* the shard that made it: a recycled record goes back there */
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
    uint64_t seq;            /* journal seq of the call (0 without a journal) */
    uint64_t qseq;           /* seq of its QUARANTINE record once quarantined (marks) */
    unsigned char untracked; /* calls mode: the call was made with TRIFLE_UNTRACKED */
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
    void *slot_mem; /* the allocation slot lives in (line_alloc) */
} gcache;

#define CACHE_LINE 64

/* One shard of the pending state (aggregate mode). A thread writes to the shard of its slot, so
 * threads on different shards share no lock and no written cache line per call. Everything here
 * is guarded by the shard's `lock`, except the counters, which the flush thread and the stats
 * read without it (relaxed atomics written under the lock). */
typedef struct bshard {
    _Alignas(CACHE_LINE) trifle__mutex lock; /* a shard starts a line (the array: line_alloc) */
    btable tables[2]; /* pending: tables[cur]; the other is empty between flushes */
    int cur;
    uint64_t gen; /* bumps when the pending table is swapped (invalidates record caches) */
    gcache *gc;
    void *gc_mem; /* the allocation gc lives in (line_alloc) */
    /* the key of the last call (a copy), its hash and an id that changes with its text, so a call
     * with the same key as the last one neither hashes nor compares key strings */
    char *mkey;
    size_t mkey_len, mkey_cap;
    uint64_t mkey_hash, mkey_id;
    bentry *free_list; /* records to reuse */
    /* records of this shard that flushes gave back (under the buffer's `lock`): a shard reuses
     * only its own records, so two threads never write to neighbouring memory */
    bentry *returned;
    _Atomic size_t n_returned;
    _Atomic uint64_t ops_since; /* calls since the last snapshot */
    /* the shard's ops_since at which it next sums every shard's count (accepted); 0 after a
     * snapshot. Owned by the shard's lock. */
    uint64_t next_check;
    _Atomic uint64_t operations; /* calls accepted, ever */
    _Atomic size_t records;      /* tables[cur].count */
} bshard; /* a whole number of cache lines: the next shard starts on its own line */

#define SHARDS_MAX 16

struct trifle__buffer {
    trifle__buffer_env env;
    int mode; /* trifle_id_mode of the storage */
    int aggregate;
    int calls; /* the driver takes whole calls (TRIFLE_CAP_CALLS): calls mode, FIFO, no buckets */
    trifle__mutex lock;
    trifle__mutex flush_lock;
    pthread_cond_t wake, done, room;
    /* aggregate state: the pending records, in shards (FIFO mode uses shards[0]'s counters) */
    bshard *shards;
    void *shards_mem;  /* the allocation shards live in (line_alloc) */
    size_t n_shards;   /* a power of two */
    _Atomic int armed; /* a call arrived since the last snapshot (the timer runs) */
    btable retained;   /* flush_lock: records of failed flushes, older than anything pending */
    btable quarantine; /* flush_lock: records the store rejected (EDATA) */
    /* retained.count + quarantine.count (or held FIFO operations): written under `lock`, read by
     * the room check of a call without it */
    _Atomic size_t held;
    size_t quarantined;
    /* lock: a flush took records out of the shards (or the queue) and has not yet counted what
     * it kept in `held`. A read that wants its writes waits for that flush. */
    int in_flight;
    uint64_t system_hash; /* hash of SYSTEM_KEY */
    /* FIFO state */
    bop *q_head, *q_tail; /* lock: queued operations */
    size_t q_n;
    bop *kept;   /* flush_lock: operations of failed flushes, in front of the queue */
    bop *kept_q; /* flush_lock: quarantined operations, in order */
    /* scheduling */
    uint64_t req_seq, done_seq;
    int last_rc;
    trifle_error last_err;
    int stop, thread_started;
    _Atomic int closed;
    pthread_t thread;
    int64_t backoff_ms, retry_at_ms, quarantine_at_ms, last_flush_ms;
    int64_t first_pending_ms; /* when the pending state last became non-empty (the timer's start) */
    trifle_buffer_counters stats;
    trifle_error_handler on_error;
    void *on_error_payload;
    /* the write-ahead journal (NULL = off). A call appends under its shard's lock (or `lock` in
     * FIFO mode) and then `jlock`, so a snapshot that holds every shard lock sees no append in
     * progress: the journal's last seq then divides the calls exactly. */
    trifle__journal *jn;
    trifle__mutex jlock;    /* serialises appends and guards jpay, jop */
    int marks;              /* the driver commits journal marks: exactly-once replay */
    uint64_t replay_seq;    /* while replaying (one thread, before the flush thread starts), the
                               seq of the record being applied */
    int replaying;          /* replay ignores max_pending and never flushes */
    trifle__jbuf jpay, jop; /* jlock: the payload encoding cached for jpay_serial; the record */
    trifle__jbuf jnoted;    /* jlock: an OP_NOTED record (trifle__buffer_add_noted) */
    uint64_t jpay_serial;
    trifle__jbuf jq;      /* flush_lock: QUARANTINE bodies */
    uint64_t snap_seq;    /* flush_lock: journal seq when the last snapshot was taken */
    uint64_t stored_seq;  /* flush_lock: every operation up to it is stored (or quarantined
                             under a QUARANTINE record that is in force) */
    uint64_t verify_seq;  /* flush_lock: a marked write of this seq has an unknown outcome */
    uint64_t q_cover_max; /* flush_lock: the highest cover of a QUARANTINE record */
    char **grans_extra;   /* granularity labels of replayed quarantine records that the
                             configuration no longer has (owned) */
    size_t n_grans_extra;
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

/* What a record owns, not the record itself (a FIFO operation's records live in its array). */
static void entry_free_parts(bentry *e)
{
    trifle__free(e->paths);
    trifle__free(e->leaves);
    trifle__free(e->fast_map);
    trifle__free(e->key);
    trifle__free(e->id);
}

static void entry_destroy(bentry *e)
{
    entry_free_parts(e);
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
    e->jseq = 0;
    e->unknown = 0;
    e->qdirty = 0;
    trifle__free(e->key);
    trifle__free(e->id);
    e->key = e->id = NULL;
    e->next = NULL;
}

/* A new record for (key, gran, at); from the shard's free list when possible, which takes up to
 * 64 records at a time from the buffer's (the flushes give records back there). Caller holds the
 * shard's lock (`lock` is taken inside: shard before `lock`). */
static bentry *entry_new(trifle__buffer *b, bshard *sh, const char *key, const char *gran,
                         int64_t at, const char *id, uint64_t h)
{
    bentry *e;

    /* a new record is the slow path already; an empty list is not worth the lock (a shard that
     * fills up for the first time would otherwise take it for every record) */
    if (sh->free_list == NULL && atomic_load_explicit(&sh->n_returned, memory_order_relaxed) > 0) {
        trifle__mutex_lock(&b->lock);
        sh->free_list = sh->returned;
        sh->returned = NULL;
        atomic_store_explicit(&sh->n_returned, 0, memory_order_relaxed);
        trifle__mutex_unlock(&b->lock);
    }
    if ((e = sh->free_list) != NULL) {
        sh->free_list = e->next;
    } else if ((e = trifle__calloc(1, sizeof(*e))) == NULL)
        return NULL;
    e->home = (unsigned char)(sh - b->shards);
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
    bshard *home = &b->shards[e->home < b->n_shards ? e->home : 0];
    size_t n = atomic_load_explicit(&home->n_returned, memory_order_relaxed);
    unsigned char h = e->home;

    if (n >= 4096) {
        entry_destroy(e);
        return;
    }
    entry_reset(e);
    e->home = h;
    e->next = home->returned;
    home->returned = e;
    atomic_store_explicit(&home->n_returned, n + 1, memory_order_relaxed);
}

/* ---------------------------------------------------------------------------------------------
 * Writing records to the driver */

static int entry_order(const void *a, const void *b)
{
    const bentry *x = *(bentry *const *)a, *y = *(bentry *const *)b;

    return trifle__identity_cmp(x->id, x->gran, x->at, y->id, y->gran, y->at);
}

/* Records of a table, sorted by stored identifier, with records that are one stored row folded
 * (ERRATA minor 16); they stay in the table. NULL (and *n = 0) for an empty table or without
 * memory (*oom set). */
static bentry **table_sorted(trifle__buffer *b, btable *t, size_t *n_out, int *oom)
{
    bentry **all;
    size_t n, i, w = 0;

    *n_out = 0;
    *oom = 0;
    if (t->count == 0)
        return NULL;
    if ((all = table_drain(t, &n)) == NULL) {
        *oom = 1;
        return NULL;
    }
    qsort(all, n, sizeof(*all), entry_order);
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
    for (i = 0; i < w; i++)
        (void)table_insert(t, all[i]); /* slots exist: cannot fail */
    *n_out = w;
    return all;
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
    trifle_storage *st;
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
    if ((rc = trifle__pool_get(b->env.pool, &st, err)) == 0) {
        rc = op == OP_SET ? trifle_storage_set(st, items, n, &res, err)
                          : trifle_storage_inc(st, items, n, &res, err);
        trifle__pool_put(b->env.pool, st, rc);
    }
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
    bentry **done; /* fully written: the caller removes and recycles them */
    size_t n_done;
    bentry **quarantine; /* rejected by the store because of stored data */
    size_t n_quarantine;
    size_t unknown; /* calls whose outcome was unknown */
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
        for (start = 0; start < n && rc == 0;) {
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

static void op_free(bop *op);

/* ---------------------------------------------------------------------------------------------
 * Flushing with the journal (docs/durability.md).
 *
 * With a driver that commits journal marks, a flush is ONE write_marked call: every SET part,
 * every ADD part and the mark (journal name → snapshot seq S) in one transaction. After it, every
 * call up to S is stored, so a replay skips exactly those: nothing twice, nothing lost. A record
 * the store rejects (EDATA) leaves the flush as a QUARANTINE journal record whose `cover` is that
 * S: it is in force once the store's mark reaches S (before that, the calls it holds are
 * replayed as calls). A quarantine record is written alone under a mark of its own,
 * `<journal>/q/<seq>`, so its replay is exactly-once too.
 *
 * Without marks, the buffer writes as before and keeps a checkpoint: the highest seq below
 * which every call is stored. A crash between a write and the checkpoint replays that write
 * again (at-least-once). Caller holds flush_lock throughout. */

/* The mark of a quarantine record: "<journal name>/q/<seq of its QUARANTINE record>". */
static void qmark_name(const trifle__buffer *b, uint64_t qseq, char *out, size_t size)
{
    (void)snprintf(out, size, "%s/q/%" PRIu64, trifle__journal_name(b->jn), qseq);
}

/* The stored seq of journal mark `name`, read on a connection of the pool. */
static int mark_read(trifle__buffer *b, const char *name, uint64_t *seq, trifle_error *err)
{
    trifle_storage *st;
    int rc;

    if ((rc = trifle__pool_get(b->env.pool, &st, err)) != 0)
        return rc;
    rc = trifle_storage_mark_read(st, name, seq, err);
    trifle__pool_put(b->env.pool, st, rc);
    return rc;
}

/* Journal records recs[0..n) (one buffered record, or the records of one FIFO call) as a
 * QUARANTINE record with the given cover; *qseq = its seq, or 0 when the records hold only
 * placeholders (nothing to keep). Synced unless the policy is `none`. */
static int journal_quarantine(trifle__buffer *b, bentry *const *recs, size_t n, uint64_t cover,
                              uint64_t replaces, uint64_t *qseq, trifle_error *err)
{
    trifle__jrec_leaf *lv = NULL;
    size_t cap = 0, i, j, k, kept = 0;
    int rc;

    *qseq = 0;
    if (trifle__jrec_quarantine_begin(&b->jq, cover, replaces) != 0)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    for (i = 0; i < n; i++) {
        const bentry *e = recs[i];
        trifle__jrec_record r;

        if (e->n > cap) {
            trifle__jrec_leaf *m = trifle__reallocarray(lv, e->n, sizeof(*lv));
            if (m == NULL) {
                trifle__free(lv);
                return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
            }
            lv = m;
            cap = e->n;
        }
        for (j = k = 0; j < e->n; j++) {
            if (e->leaves[j].op == OP_NONE)
                continue;
            lv[k].path = leaf_path(e, j);
            lv[k].path_len = strlen(lv[k].path);
            lv[k].value = e->leaves[j].value;
            lv[k].op = e->leaves[j].op == OP_SET ? TRIFLE__JLEAF_SET : TRIFLE__JLEAF_ADD;
            k++;
        }
        if (k == 0)
            continue;
        r.key = e->key;
        r.key_len = strlen(e->key);
        r.gran = e->gran;
        r.gran_len = strlen(e->gran);
        r.at = e->at;
        r.leaves = lv;
        r.n_leaves = k;
        if (trifle__jrec_quarantine_add(&b->jq, &r) != 0) {
            trifle__free(lv);
            return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        }
        kept++;
    }
    trifle__free(lv);
    if (kept == 0)
        return 0;
    trifle__mutex_lock(&b->jlock); /* appends are serialised by jlock (journal_op) */
    rc = trifle__journal_append(b->jn, TRIFLE__JREC_QUARANTINE, b->jq.data, b->jq.len, qseq, err);
    trifle__mutex_unlock(&b->jlock);
    if (rc == 0 && b->env.opt->journal_sync != TRIFLE__JSYNC_NONE)
        rc = trifle__journal_sync_to(b->jn, *qseq, err);
    if (rc == 0 && cover > b->q_cover_max)
        b->q_cover_max = cover;
    return rc;
}

/* A quarantine record is stored: say so in the journal (best effort: a replay that misses it
 * reads the record's own mark instead). */
static void journal_resolved(trifle__buffer *b, uint64_t qseq)
{
    unsigned char body[8];
    uint64_t seq;

    trifle__jrec_resolved_encode(body, qseq);
    trifle__mutex_lock(&b->jlock);
    (void)trifle__journal_append(b->jn, TRIFLE__JREC_RESOLVED, body, sizeof(body), &seq, NULL);
    trifle__mutex_unlock(&b->jlock);
}

/* One write_marked call for records rec[0..n) (n may be 0: the mark alone) under mark
 * (name, seq). On failure *out names the record the store rejected, or the unknown outcome. */
static int write_marked_records(trifle__buffer *b, bentry *const *rec, size_t n, const char *name,
                                uint64_t seq, write_outcome *out, trifle_error *err)
{
    trifle_entry *items = NULL;
    trifle_leaf *leaves = NULL;
    size_t *owner = NULL, ns = 0, ni = 0, total = 0, i, j, k = 0, m = 0;
    trifle_write_result res;
    trifle_mark mark;
    trifle_storage *st;
    int rc, phase;

    memset(out, 0, sizeof(*out));
    for (i = 0; i < n; i++) {
        unsigned char ops = ops_of(rec[i]);
        ns += (ops & OP_SET) != 0;
        ni += (ops & OP_ADD) != 0;
        for (j = 0; j < rec[i]->n; j++)
            total += rec[i]->leaves[j].op != OP_NONE;
    }
    if ((out->done = trifle__calloc(n + 1, sizeof(bentry *))) == NULL ||
        (out->quarantine = trifle__calloc(n + 1, sizeof(bentry *))) == NULL ||
        (items = trifle__calloc(ns + ni + 1, sizeof(*items))) == NULL ||
        (owner = trifle__calloc(ns + ni + 1, sizeof(*owner))) == NULL ||
        (leaves = trifle__calloc(total + 1, sizeof(*leaves))) == NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    for (phase = OP_SET; phase >= OP_ADD; phase--) {
        for (i = 0; i < n; i++) {
            const bentry *e = rec[i];
            trifle_entry *it = &items[m];
            it->leaves = leaves + k;
            for (j = 0; j < e->n; j++) {
                if (e->leaves[j].op != phase)
                    continue;
                leaves[k].path = leaf_path(e, j);
                leaves[k].value = e->leaves[j].value;
                k++;
            }
            it->n_leaves = (size_t)(leaves + k - it->leaves);
            if (it->n_leaves == 0)
                continue;
            it->bucket.id = e->id;
            it->bucket.key = e->key;
            it->bucket.granularity = e->gran;
            it->bucket.at = e->at;
            owner[m++] = i;
        }
    }
    memset(&res, 0, sizeof(res));
    res.struct_size = sizeof(res);
    res.failed_item = -1;
    mark.name = name;
    mark.seq = seq;
    if ((rc = trifle__pool_get(b->env.pool, &st, err)) == 0) {
        rc = trifle_storage_write_marked(st, items, ns, items + ns, ni, &mark, &res, err);
        trifle__pool_put(b->env.pool, st, rc);
    }
    if (rc == 0) {
        for (i = 0; i < n; i++)
            out->done[out->n_done++] = rec[i];
    } else {
        if (rc == TRIFLE_EDATA && res.failed_item >= 0 && (size_t)res.failed_item < ns + ni)
            out->quarantine[out->n_quarantine++] = rec[owner[res.failed_item]];
        out->unknown = res.outcome_unknown != 0;
    }
done:
    trifle__free(items);
    trifle__free(owner);
    trifle__free(leaves);
    return rc;
}

/* Read the journal's mark back after a write whose outcome was unknown: if it committed, the
 * records it held are stored. Returns the read's error (the flush then waits), else 0. */
static int verify_marked(trifle__buffer *b, trifle_error *err)
{
    uint64_t stored = 0;
    int rc;

    if ((rc = mark_read(b, trifle__journal_name(b->jn), &stored, err)) != 0)
        return rc;
    if (stored >= b->verify_seq) {
        /* it committed: what it wrote is exactly what is still held from it */
        if (b->aggregate) {
            size_t n, i;
            bentry **all = table_drain(&b->retained, &n);
            if (all == NULL)
                return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
            trifle__mutex_lock(&b->lock);
            for (i = 0; i < n; i++)
                recycle(b, all[i]);
            trifle__mutex_unlock(&b->lock);
            trifle__free(all);
        } else {
            while (b->kept != NULL && b->kept->seq <= stored) {
                bop *op = b->kept;
                b->kept = op->next;
                op_free(op);
            }
        }
        b->stored_seq = b->verify_seq;
    }
    b->verify_seq = 0;
    return 0;
}

/* Journal again every quarantine record that took new calls in this snapshot, before the mark
 * that makes those calls stored commits. */
static int requarantine(trifle__buffer *b, uint64_t cover, trifle_error *err)
{
    size_t i;

    for (i = 0; i < b->quarantine.nslots; i++)
        for (bentry *e = b->quarantine.slots[i]; e != NULL; e = e->next) {
            uint64_t q;
            int rc;
            if (!e->qdirty)
                continue;
            if ((rc = journal_quarantine(b, &e, 1, cover, e->jseq, &q, err)) != 0)
                return rc;
            if (q != 0)
                e->jseq = q;
            e->qdirty = 0;
        }
    return 0;
}

/* The flush of `retained` as one marked write under the snapshot's seq. */
static int write_retained_marked(trifle__buffer *b, uint64_t snap, trifle_error *err)
{
    write_outcome o;
    size_t n, i;
    int oom, rc;
    bentry **all = table_sorted(b, &b->retained, &n, &oom);

    if (oom)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    rc = write_marked_records(b, all, n, trifle__journal_name(b->jn), snap, &o, err);
    if (rc == 0) {
        trifle__mutex_lock(&b->lock);
        for (i = 0; i < o.n_done; i++) {
            table_remove(&b->retained, o.done[i]);
            recycle(b, o.done[i]);
        }
        trifle__mutex_unlock(&b->lock);
        b->stored_seq = snap;
    } else if (o.n_quarantine > 0) {
        /* the transaction left nothing behind; the rejected record waits apart, kept by its
         * journal record, and the others are retried at the next flush */
        bentry *e = o.quarantine[0];
        trifle_error qerr = TRIFLE_ERROR_INIT;
        uint64_t q;
        if (journal_quarantine(b, &e, 1, snap, 0, &q, &qerr) == 0) {
            table_remove(&b->retained, e);
            if (q == 0) {
                trifle__mutex_lock(&b->lock);
                recycle(b, e);
                trifle__mutex_unlock(&b->lock);
            } else {
                e->jseq = q;
                if (table_insert(&b->quarantine, e) != 0)
                    (void)table_insert(&b->retained, e);
                trifle__mutex_lock(&b->lock);
                b->quarantine_at_ms = now_ms() + b->env.opt->retry_max_ms;
                trifle__mutex_unlock(&b->lock);
            }
        }
    } else if (o.unknown) {
        b->verify_seq = snap;
        trifle__mutex_lock(&b->lock);
        b->stats.unknown_outcomes++;
        trifle__mutex_unlock(&b->lock);
    }
    outcome_free(&o);
    trifle__free(all);
    return rc;
}

/* Retry each quarantine record alone under its own mark. */
static void retry_quarantine_marked(trifle__buffer *b, trifle_error *qerr)
{
    size_t n, i;
    int oom;
    bentry **all = table_sorted(b, &b->quarantine, &n, &oom);

    for (i = 0; i < n; i++) {
        bentry *e = all[i];
        write_outcome o;
        char name[96];
        uint64_t stored = 0;
        int rc = -1;

        qmark_name(b, e->jseq, name, sizeof(name));
        if (e->unknown && mark_read(b, name, &stored, qerr) == 0 && stored > 0)
            rc = 0;
        if (rc != 0) {
            rc = write_marked_records(b, &e, 1, name, e->jseq, &o, qerr);
            if (rc != 0 && o.unknown)
                e->unknown = 1;
            outcome_free(&o);
        }
        if (rc == 0) {
            journal_resolved(b, e->jseq);
            table_remove(&b->quarantine, e);
            trifle__mutex_lock(&b->lock);
            recycle(b, e);
            trifle__mutex_unlock(&b->lock);
        }
    }
    trifle__free(all);
}

/* Write the checkpoint file: the seq below which every call is stored. For drivers without
 * marks it is what a replay starts after; with marks it only guards a later open through a
 * driver without them. Not synced: an older checkpoint replays more, never less. */
static void checkpoint_write(trifle__buffer *b, uint64_t seq)
{
    char path[4200], tmp[4200], text[32];
    int fd, len, ok;

    (void)snprintf(path, sizeof(path), "%s/checkpoint", trifle__journal_dir(b->jn));
    (void)snprintf(tmp, sizeof(tmp), "%s/checkpoint.tmp", trifle__journal_dir(b->jn));
    len = snprintf(text, sizeof(text), "%" PRIu64 "\n", seq);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        return;
    ok = write(fd, text, (size_t)len) == len;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        trifle__log(TRIFLE_LOG_WARN, "core", "journal %s: cannot write the checkpoint: %s",
                    trifle__journal_dir(b->jn), strerror(errno));
        (void)unlink(tmp);
    }
}

/* 0 when the checkpoint file is missing or unreadable. */
static uint64_t checkpoint_read(const char *dir)
{
    char path[4200], text[32], *end;
    unsigned long long v;
    ssize_t n;
    int fd;

    (void)snprintf(path, sizeof(path), "%s/checkpoint", dir);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    n = read(fd, text, sizeof(text) - 1);
    (void)close(fd);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    errno = 0;
    v = strtoull(text, &end, 10);
    return end != text && errno == 0 ? (uint64_t)v : 0;
}

/* After a flush: advance the checkpoint and delete the journal segments nothing needs. */
static void journal_settle(trifle__buffer *b)
{
    uint64_t bound, before = b->stored_seq;
    size_t i;

    if (b->jn == NULL)
        return;
    if (b->marks) {
        bound = b->stored_seq;
        if (b->aggregate) {
            for (i = 0; i < b->quarantine.nslots; i++)
                for (const bentry *e = b->quarantine.slots[i]; e != NULL; e = e->next)
                    if (e->jseq > 0 && e->jseq - 1 < bound)
                        bound = e->jseq - 1;
        } else {
            for (const bop *op = b->kept_q; op != NULL; op = op->next)
                if (op->qseq > 0 && op->qseq - 1 < bound)
                    bound = op->qseq - 1;
        }
    } else {
        bound = b->snap_seq;
        if (b->aggregate) {
            const btable *tabs[2] = {&b->retained, &b->quarantine};
            size_t t;
            for (t = 0; t < 2; t++)
                for (i = 0; i < tabs[t]->nslots; i++)
                    for (const bentry *e = tabs[t]->slots[i]; e != NULL; e = e->next)
                        if (e->jseq > 0 && e->jseq - 1 < bound)
                            bound = e->jseq - 1;
        } else {
            const bop *lists[2] = {b->kept_q, b->kept};
            size_t t;
            for (t = 0; t < 2; t++)
                for (const bop *op = lists[t]; op != NULL; op = op->next)
                    if (op->seq > 0 && op->seq - 1 < bound)
                        bound = op->seq - 1;
        }
        if (bound > b->stored_seq)
            b->stored_seq = bound;
    }
    if (b->stored_seq != before)
        checkpoint_write(b, b->stored_seq);
    trifle__journal_release(b->jn, bound);
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
    atomic_store_explicit(&b->held, b->retained.count + b->quarantine.count, memory_order_relaxed);
    b->quarantined = b->quarantine.count;
    (void)pthread_cond_broadcast(&b->room);
    trifle__mutex_unlock(&b->lock);
}

/* Fold the pending table into `retained` (older first), honouring the quarantine. *snap_seq is
 * the journal's last seq when the table was swapped: every journaled call up to it is in the
 * snapshot (or in an earlier one), none after it. */
static int take_snapshot(trifle__buffer *b, uint64_t *snap_seq, trifle_error *err)
{
    btable *snaps[SHARDS_MAX];
    bentry **all;
    size_t n = 0, i, k, total = 0, w;
    uint64_t first;
    int rc = 0;

    /* every shard at once: no call is between its journal append and its record then, so the
     * journal's last seq divides the calls exactly */
    for (k = 0; k < b->n_shards; k++)
        trifle__mutex_lock(&b->shards[k].lock);
    for (k = 0; k < b->n_shards; k++) {
        bshard *sh = &b->shards[k];
        snaps[k] = &sh->tables[sh->cur];
        total += snaps[k]->count;
        sh->cur ^= 1;
        sh->gen++;
        atomic_store_explicit(&sh->ops_since, 0, memory_order_relaxed);
        sh->next_check = 0;
        atomic_store_explicit(&sh->records, 0, memory_order_relaxed);
    }
    atomic_store(&b->armed, 0);
    *snap_seq = b->jn != NULL ? trifle__journal_last_seq(b->jn) : 0;
    if (total > 0) { /* shard locks come before `lock` */
        trifle__mutex_lock(&b->lock);
        b->in_flight = 1;
        trifle__mutex_unlock(&b->lock);
    }
    for (k = b->n_shards; k-- > 0;)
        trifle__mutex_unlock(&b->shards[k].lock);
    first = b->snap_seq + 1; /* no call in this snapshot is older */
    b->snap_seq = *snap_seq;
    if (total == 0)
        return 0;
    if ((all = trifle__calloc(total + 1, sizeof(*all))) == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    for (k = 0; k < b->n_shards; k++) {
        /* the tables swapped out are the flush's alone until the next snapshot */
        for (i = 0; i < snaps[k]->nslots; i++) {
            bentry *e = snaps[k]->slots[i];
            while (e != NULL) {
                bentry *next = e->next;
                e->next = NULL;
                all[n++] = e;
                e = next;
            }
            snaps[k]->slots[i] = NULL;
        }
        snaps[k]->count = 0;
    }
    /* records holding SET leaves first: a record has SET leaves in one shard at most, and the
     * parts other shards hold are newer (add_assert), so they compose after it */
    for (i = w = 0; i < n; i++)
        if (ops_of(all[i]) & OP_SET) {
            bentry *x = all[w];
            all[w++] = all[i];
            all[i] = x;
        }
    for (i = 0; i < n; i++) {
        bentry *e = all[i], *old;

        if (e->jseq == 0)
            e->jseq = first;
        if (rc != 0) { /* out of memory: keep the rest as separate records */
            if (table_insert(&b->retained, e) != 0)
                entry_destroy(e); /* cannot happen: capacity was reserved below */
            continue;
        }
        old = table_find(&b->quarantine, e->hash, e->key, e->gran, e->at);
        if (old != NULL && b->marks) {
            /* with marks a quarantine record lives on in its QUARANTINE journal record: the
             * merged record is journaled again (requarantine) before a mark can commit */
            if (entry_compose_entry(old, e) == 0) {
                old->qdirty = 1;
                trifle__mutex_lock(&b->lock);
                recycle(b, e);
                trifle__mutex_unlock(&b->lock);
                continue;
            }
            old->qdirty = 1; /* placeholders may have been added: harmless */
            rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
            old = NULL; /* keep e as a separate record */
        }
        if (old == NULL)
            old = table_find(&b->retained, e->hash, e->key, e->gran, e->at);
        if (old != NULL) {
            if (old->jseq == 0 || e->jseq < old->jseq)
                old->jseq = e->jseq;
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
            bshard *sh = &b->shards[0];
            trifle__mutex_lock(&sh->lock);
            if (table_insert(&sh->tables[sh->cur], e) == 0)
                atomic_store_explicit(&sh->records, sh->tables[sh->cur].count,
                                      memory_order_relaxed);
            trifle__mutex_unlock(&sh->lock);
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
    int rc = 0, oom;

    if (t->count == 0)
        return 0;
    if ((all = table_sorted(b, t, &n, &oom)) == NULL)
        return oom ? trifle__error(err, TRIFLE_ENOMEM, "out of memory") : 0;
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

/* flush_aggregate() with marks: verify an unknown outcome, snapshot, journal the quarantine
 * records that took new calls, one marked write, then the quarantine. */
static int flush_aggregate_marked(trifle__buffer *b, int with_quarantine, trifle_error *err)
{
    uint64_t snap = 0;
    int rc;

    if (b->verify_seq != 0 && (rc = verify_marked(b, err)) != 0)
        return rc;
    if ((rc = take_snapshot(b, &snap, err)) != 0 || (rc = requarantine(b, snap, err)) != 0)
        return rc; /* nothing is written: the mark must not pass calls the journal cannot keep */
    if (b->retained.count > 0 || snap > b->stored_seq) {
        trifle__mutex_lock(&b->lock);
        if (b->stats.flush_errors > 0 && b->retained.count > 0)
            b->stats.retries++;
        trifle__mutex_unlock(&b->lock);
        rc = write_retained_marked(b, snap, err);
    }
    /* a quarantine record is in force once the mark passed its cover (docs/durability.md) */
    if (rc == 0 && with_quarantine && b->quarantine.count > 0 && b->stored_seq >= b->q_cover_max) {
        trifle_error qerr = TRIFLE_ERROR_INIT;
        retry_quarantine_marked(b, &qerr);
        if (qerr.code != 0) {
            trifle__mutex_lock(&b->lock);
            report_failure(b, &qerr);
            trifle__mutex_unlock(&b->lock);
        }
    }
    if (rc == 0)
        journal_settle(b);
    return rc;
}

static int flush_aggregate(trifle__buffer *b, int with_quarantine, trifle_error *err)
{
    uint64_t snap;
    int rc, rc2;

    if (b->marks) {
        rc = flush_aggregate_marked(b, with_quarantine, err);
        publish_held(b);
        return rc;
    }
    rc = take_snapshot(b, &snap, err);
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
    journal_settle(b);
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
    for (i = 0; i < op->n; i++)
        entry_free_parts(&op->entries[i]);
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

/* FIFO and calls mode: move the queue behind what failed flushes kept (those go first), reset the
 * counters of a snapshot, and note the journal's last seq (every queued call is up to it). Caller
 * holds flush_lock. */
static void take_queue(trifle__buffer *b)
{
    bop *queue, **tail;

    trifle__mutex_lock(&b->lock);
    queue = b->q_head;
    b->q_head = b->q_tail = NULL;
    b->in_flight = b->q_n > 0;
    b->q_n = 0;
    atomic_store_explicit(&b->shards[0].ops_since, 0, memory_order_relaxed);
    b->shards[0].next_check = 0;
    atomic_store(&b->armed, 0);
    if (b->jn != NULL)
        b->snap_seq = trifle__journal_last_seq(b->jn);
    trifle__mutex_unlock(&b->lock);
    for (tail = &b->kept; *tail != NULL; tail = &(*tail)->next)
        ;
    *tail = queue;
}

/* Write queued operations in order, each its own batch. An operation the store rejects because
 * of stored data goes to the quarantine with every later operation on one of its records
 * (ERRATA minor 4); any other failure stops the queue where it is. */
static int flush_fifo(trifle__buffer *b, int with_quarantine, trifle_error *err)
{
    bop **tail, *op;
    int rc = 0;

    if (b->marks && b->verify_seq != 0 && (rc = verify_marked(b, err)) != 0)
        return rc;
    take_queue(b);
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
            rc = b->marks ? write_marked_records(b, rec, op->n, trifle__journal_name(b->jn),
                                                 op->seq, &o, err)
                          : write_records(b, rec, op->n, &o, err);
            trifle__free(rec);
            trifle__mutex_lock(&b->lock);
            b->stats.unknown_outcomes += o.unknown;
            trifle__mutex_unlock(&b->lock);
            if (b->marks && rc != 0 && o.unknown)
                b->verify_seq = op->seq;
            blocked = rc != 0 && o.n_quarantine > 0;
            outcome_free(&o);
            if (rc != 0 && !blocked)
                break; /* retry later, in place */
            if (rc == 0) {
                b->kept = op->next;
                if (b->marks)
                    b->stored_seq = op->seq;
                op_free(op);
                continue;
            }
        }
        if (b->marks) {
            /* kept by a QUARANTINE record in force once a later mark passes the call's seq */
            bentry **qrec = trifle__calloc(op->n + 1, sizeof(*qrec));
            uint64_t q = 0;
            if (qrec == NULL)
                return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
            for (i = 0; i < op->n; i++)
                qrec[i] = &op->entries[i];
            rc = journal_quarantine(b, qrec, op->n, op->seq, 0, &q, err);
            trifle__free(qrec);
            if (rc != 0)
                break; /* stays first in line */
            op->qseq = q;
        }
        /* to the quarantine, in order */
        b->kept = op->next;
        op->next = NULL;
        for (tail = &b->kept_q; *tail != NULL; tail = &(*tail)->next)
            ;
        *tail = op;
        rc = 0;
    }
    if (b->marks && b->q_cover_max > b->stored_seq) {
        /* every call before the last quarantined one is stored or quarantined: a mark alone
         * puts their QUARANTINE records in force */
        write_outcome o;
        trifle_error merr = TRIFLE_ERROR_INIT;
        if (write_marked_records(b, NULL, 0, trifle__journal_name(b->jn), b->q_cover_max, &o,
                                 &merr) == 0)
            b->stored_seq = b->q_cover_max;
        outcome_free(&o);
    }
    if (with_quarantine && b->kept_q != NULL && (!b->marks || b->stored_seq >= b->q_cover_max)) {
        /* retry the quarantined operations in order; stop at the first that still fails */
        trifle_error qerr = TRIFLE_ERROR_INIT;
        while (b->kept_q != NULL) {
            bentry **rec;
            write_outcome o;
            size_t i;
            int qrc = -1;
            char name[96];

            op = b->kept_q;
            if ((rec = trifle__calloc(op->n + 1, sizeof(*rec))) == NULL)
                break;
            for (i = 0; i < op->n; i++)
                rec[i] = &op->entries[i];
            if (b->marks) {
                uint64_t stored = 0;
                qmark_name(b, op->qseq, name, sizeof(name));
                if (op->entries[0].unknown && mark_read(b, name, &stored, &qerr) == 0 && stored > 0)
                    qrc = 0;
                if (qrc != 0) {
                    qrc = write_marked_records(b, rec, op->n, name, op->qseq, &o, &qerr);
                    if (qrc != 0 && o.unknown)
                        op->entries[0].unknown = 1;
                    outcome_free(&o);
                }
                if (qrc == 0)
                    journal_resolved(b, op->qseq);
            } else {
                qrc = write_records(b, rec, op->n, &o, &qerr);
                outcome_free(&o);
            }
            trifle__free(rec);
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
    journal_settle(b);
    trifle__mutex_lock(&b->lock);
    atomic_store_explicit(&b->held, count_ops(b->kept) + count_ops(b->kept_q),
                          memory_order_relaxed);
    b->quarantined = count_ops(b->kept_q);
    (void)pthread_cond_broadcast(&b->room);
    trifle__mutex_unlock(&b->lock);
    return rc;
}

/* Calls mode: send the queued calls in order, batch_items per driver call. A failure keeps the
 * calls not applied first in line for the next flush. Calls whose outcome the driver reports
 * unknown — they may have been applied, and the driver says a resend could apply them twice —
 * are not sent again: they are counted in unknown_outcomes and the error is reported. Nothing is
 * ever quarantined (a server's refusal is not stored data). Caller holds flush_lock. */
static int flush_calls(trifle__buffer *b, trifle_error *err)
{
    size_t batch = (size_t)b->env.opt->batch_items;
    int rc = 0;

    take_queue(b);
    while (b->kept != NULL && rc == 0) {
        trifle_call *calls = NULL;
        trifle_leaf *leaves = NULL;
        trifle_write_result res;
        trifle_storage *st;
        size_t m = 0, total = 0, k = 0, done, i, j;
        const bop *op;

        for (op = b->kept; op != NULL && m < batch; op = op->next, m++)
            total += op->entries[0].n;
        if ((calls = trifle__calloc(m, sizeof(*calls))) == NULL ||
            (leaves = trifle__calloc(total, sizeof(*leaves))) == NULL) {
            trifle__free(calls);
            return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        }
        for (i = 0, op = b->kept; i < m; i++, op = op->next) {
            const bentry *e = &op->entries[0];

            calls[i].key = e->key;
            calls[i].at = e->at;
            calls[i].op = e->leaves[0].op == OP_SET ? TRIFLE_CALL_ASSERT : TRIFLE_CALL_TRACK;
            calls[i].flags = op->untracked ? TRIFLE_CALL_UNTRACKED : 0;
            calls[i].leaves = leaves + k;
            calls[i].n_leaves = e->n;
            for (j = 0; j < e->n; j++, k++) {
                leaves[k].path = leaf_path(e, j);
                leaves[k].value = e->leaves[j].value;
            }
            if (b->jn != NULL && op->seq != 0) {
                calls[i].origin = trifle__journal_name(b->jn);
                calls[i].seq = op->seq;
            }
        }
        memset(&res, 0, sizeof(res));
        res.struct_size = sizeof(res);
        res.failed_item = -1;
        if ((rc = trifle__pool_get(b->env.pool, &st, err)) == 0) {
            rc = trifle__storage_calls(st, calls, m, &res, err);
            trifle__pool_put(b->env.pool, st, rc);
        }
        trifle__free(calls);
        trifle__free(leaves);
        done = rc == 0 ? m : res.applied <= m ? res.applied : 0;
        if (rc != 0 && res.outcome_unknown) {
            trifle__mutex_lock(&b->lock);
            b->stats.unknown_outcomes += m - done;
            trifle__mutex_unlock(&b->lock);
            done = m; /* not resent: they may be stored already */
        }
        for (i = 0; i < done; i++) {
            bop *first = b->kept;
            b->kept = first->next;
            op_free(first);
        }
    }
    journal_settle(b);
    trifle__mutex_lock(&b->lock);
    b->held = count_ops(b->kept);
    b->quarantined = 0;
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
    rc = b->aggregate ? flush_aggregate(b, with_quarantine, &e)
         : b->calls   ? flush_calls(b, &e)
                      : flush_fifo(b, with_quarantine, &e);
    trifle__mutex_lock(&b->lock);
    b->in_flight = 0; /* `held` counts what this flush kept; cleared before the next flush */
    trifle__mutex_unlock(&b->lock);
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
                        : b->backoff_ms * 2 > b->env.opt->retry_max_ms ? b->env.opt->retry_max_ms
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

/* The calls since the last snapshot, over every shard. */
static uint64_t ops_since(const trifle__buffer *b)
{
    uint64_t n = 0;
    size_t k;

    for (k = 0; k < b->n_shards; k++)
        n += atomic_load_explicit(&b->shards[k].ops_since, memory_order_relaxed);
    return n;
}

static size_t pending_count(const trifle__buffer *b)
{
    size_t n = atomic_load_explicit(&b->held, memory_order_relaxed), k;

    if (!b->aggregate)
        return n + b->q_n;
    for (k = 0; k < b->n_shards; k++)
        n += atomic_load_explicit(&b->shards[k].records, memory_order_relaxed);
    return n;
}

static void *flush_main(void *arg)
{
    trifle__buffer *b = arg;
    const trifle__buffer_options *o = b->env.opt;

    trifle__mutex_lock(&b->lock);
    while (!b->stop) {
        int64_t now = now_ms(), deadline = -1;
        uint64_t seq = b->req_seq;
        uint64_t calls = ops_since(b);
        int fresh = calls > 0; /* writes since the last snapshot */
        int kept = atomic_load_explicit(&b->held, memory_order_relaxed) >
                   b->quarantined; /* records of failed flushes */
        int quarantine_due = b->quarantined > 0 && now >= b->quarantine_at_ms;
        int due = b->req_seq > b->done_seq || calls >= (uint64_t)o->size || quarantine_due;

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
 * Replay (trifle_open): every journaled call the store does not have yet enters the pending
 * state again, with its original seq, before the handle accepts a call. */

typedef struct qrec {
    uint64_t seq, cover, replaces;
    unsigned char *body;
    size_t len;
    int alive;
} qrec;

typedef struct replay_ctx {
    trifle__buffer *b;
    uint64_t from; /* calls up to it are stored */
    size_t applied, bad;
    uint64_t first, last;
    qrec *q;
    size_t nq, capq;
    uint64_t *resolved;
    size_t nr, capr;
    trifle_error *err;
} replay_ctx;

static int replay_record(void *vctx, uint64_t seq, int type, const unsigned char *body, size_t len)
{
    replay_ctx *c = vctx;
    trifle__buffer *b = c->b;
    trifle_error e = TRIFLE_ERROR_INIT;

    if (type == TRIFLE__JREC_OP_NOTED) {
        /* the note is handed over whether or not the call is stored already: its record being in
         * the journal is what the note's owner learns (trifle_config_set_note_handler) */
        const unsigned char *note, *op;
        size_t note_len, op_len;
        int rc;
        if (trifle__jrec_noted_split(body, len, &note, &note_len, &op, &op_len) != 0) {
            c->bad++;
            trifle__log(TRIFLE_LOG_WARN, "core",
                        "journal %s: call %" PRIu64 " not replayed: malformed note",
                        trifle__journal_dir(b->jn), seq);
            return 0;
        }
        if (b->env.opt->note_fn != NULL &&
            (rc = b->env.opt->note_fn(b->env.opt->note_payload, note, note_len)) != 0)
            return trifle__error(c->err, rc < 0 ? rc : TRIFLE_ERROR,
                                 "journal %s: the note of call %" PRIu64 " was refused",
                                 trifle__journal_dir(b->jn), seq);
        type = TRIFLE__JREC_OP;
        body = op;
        len = op_len;
    }
    if (type == TRIFLE__JREC_OP) {
        trifle__jrec_op op;
        int rc;
        if (seq <= c->from)
            return 0;
        if ((rc = trifle__jrec_op_decode(body, len, &op, &e)) == 0) {
            b->replay_seq = seq;
            rc = trifle__buffer_add(b, op.key, op.at, op.payload, op.flags ? TRIFLE_UNTRACKED : 0u,
                                    op.kind == TRIFLE__JOP_TRACK, &e);
            trifle__jrec_op_clear(&op);
        }
        if (rc == TRIFLE_ENOMEM)
            return trifle__error(c->err, rc, "out of memory");
        if (rc != 0) {
            c->bad++;
            trifle__log(TRIFLE_LOG_WARN, "core", "journal %s: call %" PRIu64 " not replayed: %s",
                        trifle__journal_dir(b->jn), seq, e.message);
            return 0;
        }
        if (c->applied++ == 0)
            c->first = seq;
        c->last = seq;
        return 0;
    }
    if (type == TRIFLE__JREC_QUARANTINE && b->marks) {
        qrec *r, *m;
        uint64_t cover, replaces;
        if (trifle__jrec_quarantine_walk(body, len, &cover, &replaces, NULL, NULL, &e) != 0) {
            c->bad++;
            trifle__log(TRIFLE_LOG_WARN, "core",
                        "journal %s: quarantine record %" PRIu64 " not replayed: %s",
                        trifle__journal_dir(b->jn), seq, e.message);
            return 0;
        }
        if ((m = trifle__array_grow(c->q, &c->capq, c->nq, sizeof(*c->q), 8)) == NULL)
            return trifle__error(c->err, TRIFLE_ENOMEM, "out of memory");
        c->q = m;
        r = &c->q[c->nq];
        if ((r->body = trifle__malloc(len)) == NULL)
            return trifle__error(c->err, TRIFLE_ENOMEM, "out of memory");
        memcpy(r->body, body, len);
        r->len = len;
        r->seq = seq;
        r->cover = cover;
        r->replaces = replaces;
        r->alive = 0;
        c->nq++;
        return 0;
    }
    if (type == TRIFLE__JREC_RESOLVED) {
        uint64_t q;
        if (trifle__jrec_resolved_decode(body, len, &q) != 0)
            return 0;
        uint64_t *m = trifle__array_grow(c->resolved, &c->capr, c->nr, sizeof(*m), 8);
        if (m == NULL)
            return trifle__error(c->err, TRIFLE_ENOMEM, "out of memory");
        c->resolved = m;
        c->resolved[c->nr++] = q;
    }
    return 0; /* CHECKPOINT and types of newer writers carry nothing to replay */
}

/* The label of a replayed record's granularity: the configuration's when it has it, else an
 * owned copy (a record buffered under another configuration is still written as it was). */
static const char *gran_label(trifle__buffer *b, const char *g, size_t len)
{
    size_t i;
    char *copy, **m;

    for (i = 0; i < b->env.n_grans; i++)
        if (strlen(b->env.grans[i].label) == len && memcmp(b->env.grans[i].label, g, len) == 0)
            return b->env.grans[i].label;
    for (i = 0; i < b->n_grans_extra; i++)
        if (strlen(b->grans_extra[i]) == len && memcmp(b->grans_extra[i], g, len) == 0)
            return b->grans_extra[i];
    if ((copy = trifle__malloc(len + 1)) == NULL)
        return NULL;
    memcpy(copy, g, len);
    copy[len] = '\0';
    if ((m = trifle__reallocarray(b->grans_extra, b->n_grans_extra + 1, sizeof(*m))) == NULL) {
        trifle__free(copy);
        return NULL;
    }
    b->grans_extra = m;
    b->grans_extra[b->n_grans_extra++] = copy;
    return copy;
}

/* Fill record e (zeroed, or recycled) from a decoded quarantine record. */
static int entry_from_record(trifle__buffer *b, bentry *e, const trifle__jrec_record *r)
{
    char stackid[512], *id = stackid, path[65536];
    size_t cap = sizeof(stackid), len, i, pos;
    const char *gran = gran_label(b, r->gran, r->gran_len);

    if (gran == NULL || (e->key = trifle__malloc(r->key_len + 1)) == NULL)
        return TRIFLE_ENOMEM;
    memcpy(e->key, r->key, r->key_len);
    e->key[r->key_len] = '\0';
    e->gran = gran;
    e->at = r->at;
    len = trifle_storage_identifier(b->env.st, id, cap, e->key, gran, r->at);
    if (len >= cap && (id = trifle__malloc(cap = len + 1)) != NULL)
        (void)trifle_storage_identifier(b->env.st, id, cap, e->key, gran, r->at);
    e->id = id != NULL ? trifle__strdup(id) : NULL;
    if (id != stackid)
        trifle__free(id);
    if (e->id == NULL)
        return TRIFLE_ENOMEM;
    e->hash = tuple_hash(hash_str(e->key, 0xcbf29ce484222325ULL), gran, r->at);
    for (i = 0; i < r->n_leaves; i++) {
        const trifle__jrec_leaf *l = &r->leaves[i];
        memcpy(path, l->path, l->path_len);
        path[l->path_len] = '\0';
        if (!leaf_find(e, path, &pos) && leaf_insert(e, pos, path, l->path_len) != 0)
            return TRIFLE_ENOMEM;
        leaf_compose(&e->leaves[pos], l->op == TRIFLE__JLEAF_SET ? OP_SET : OP_ADD, l->value);
    }
    e->fast_serial = 0;
    e->fast_real = 0;
    e->tk_id = 0;
    return 0;
}

typedef struct qload_ctx {
    trifle__buffer *b;
    uint64_t qseq;
    bop *op; /* FIFO: the call being rebuilt */
} qload_ctx;

static int qload_record(void *vctx, const trifle__jrec_record *r)
{
    qload_ctx *c = vctx;
    trifle__buffer *b = c->b;
    bentry *e, *old;

    if (!b->aggregate) {
        e = &c->op->entries[c->op->n++];
        return entry_from_record(b, e, r) != 0 ? TRIFLE_ENOMEM : 0;
    }
    if ((e = trifle__calloc(1, sizeof(*e))) == NULL)
        return TRIFLE_ENOMEM;
    if (entry_from_record(b, e, r) != 0) {
        entry_destroy(e);
        return TRIFLE_ENOMEM;
    }
    e->jseq = c->qseq;
    if ((old = table_find(&b->quarantine, e->hash, e->key, e->gran, e->at)) != NULL) {
        /* two records in force for one identity (the configuration changed in between) */
        int rc = entry_compose_entry(old, e);
        old->qdirty = 1;
        entry_destroy(e);
        return rc;
    }
    if (table_insert(&b->quarantine, e) != 0) {
        entry_destroy(e);
        return TRIFLE_ENOMEM;
    }
    return 0;
}

static int count_record(void *vctx, const trifle__jrec_record *r)
{
    (void)r;
    (*(size_t *)vctx)++;
    return 0;
}

/* The QUARANTINE records in force and not stored yet go back into the quarantine. */
static int replay_quarantine(trifle__buffer *b, replay_ctx *c, size_t *loaded, trifle_error *err)
{
    size_t i, j;
    bop **tail = &b->kept_q;

    *loaded = 0;
    for (i = 0; i < c->nq; i++) {
        qrec *r = &c->q[i];
        if (r->cover > c->from)
            continue; /* its mark never committed: its calls were replayed as calls */
        r->alive = 1;
        for (j = 0; j < i && r->replaces != 0; j++)
            if (c->q[j].seq == r->replaces)
                c->q[j].alive = 0;
    }
    for (i = 0; i < c->nq; i++)
        for (j = 0; j < c->nr && c->q[i].alive; j++)
            if (c->resolved[j] == c->q[i].seq)
                c->q[i].alive = 0;
    while (*tail != NULL)
        tail = &(*tail)->next;
    for (i = 0; i < c->nq; i++) {
        qrec *r = &c->q[i];
        char name[96];
        uint64_t stored = 0, cover, replaces;
        qload_ctx lc = {b, r->seq, NULL};
        size_t n = 0;
        int rc;

        if (!r->alive)
            continue;
        qmark_name(b, r->seq, name, sizeof(name));
        if ((rc = mark_read(b, name, &stored, err)) != 0)
            return rc;
        if (stored > 0)
            continue; /* written before the crash, not yet marked resolved in the journal */
        if (!b->aggregate) {
            (void)trifle__jrec_quarantine_walk(r->body, r->len, &cover, &replaces, count_record, &n,
                                               NULL);
            if ((lc.op = trifle__calloc(1, sizeof(*lc.op))) == NULL ||
                (lc.op->entries = trifle__calloc(n ? n : 1, sizeof(bentry))) == NULL) {
                trifle__free(lc.op);
                return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
            }
            lc.op->seq = r->cover;
            lc.op->qseq = r->seq;
        }
        rc = trifle__jrec_quarantine_walk(r->body, r->len, &cover, &replaces, qload_record, &lc,
                                          err);
        if (lc.op != NULL) {
            if (rc != 0) {
                op_free(lc.op);
            } else {
                *tail = lc.op;
                tail = &lc.op->next;
            }
        }
        if (rc != 0)
            return rc == TRIFLE_ENOMEM ? trifle__error(err, rc, "out of memory") : rc;
        if (r->cover > b->q_cover_max)
            b->q_cover_max = r->cover;
        (*loaded)++;
    }
    return 0;
}

static void replay_ctx_free(replay_ctx *c)
{
    size_t i;

    for (i = 0; i < c->nq; i++)
        trifle__free(c->q[i].body);
    trifle__free(c->q);
    trifle__free(c->resolved);
}

/* Open the journal, replay it, and try one flush of what it brought back. */
static int journal_start(trifle__buffer *b, const char *dir, trifle_error *err)
{
    const trifle__buffer_options *o = b->env.opt;
    trifle__journal_options jo;
    replay_ctx c;
    size_t loaded = 0;
    uint64_t mark = 0;
    int rc;

    memset(&jo, 0, sizeof(jo));
    jo.dir = dir;
    jo.sync = o->journal_sync;
    jo.interval_ms = o->journal_interval_ms > 0 ? o->journal_interval_ms : 5;
    jo.segment_bytes = o->journal_segment_bytes >= 4096 ? o->journal_segment_bytes : 67108864;
    if ((rc = trifle__journal_open(&b->jn, &jo, err)) != 0)
        return rc;
    b->marks = (trifle_storage_driver(b->env.st)->caps & TRIFLE_CAP_JOURNAL_MARK) != 0;
    memset(&c, 0, sizeof(c));
    c.b = b;
    c.err = err;
    c.from = checkpoint_read(dir);
    if (b->marks) {
        if ((rc = mark_read(b, trifle__journal_name(b->jn), &mark, err)) != 0)
            return rc;
        if (mark > c.from)
            c.from = mark;
    }
    b->stored_seq = b->snap_seq = c.from;
    b->replaying = 1;
    rc = trifle__journal_replay(b->jn, replay_record, &c, err);
    b->replaying = 0;
    b->replay_seq = 0;
    if (rc == 0)
        trifle__journal_seq_floor(b->jn, c.from);
    if (rc == 0 && b->marks)
        rc = replay_quarantine(b, &c, &loaded, err);
    replay_ctx_free(&c);
    if (rc != 0)
        return rc;
    if (c.applied > 0 || loaded > 0 || c.bad > 0) {
        trifle_error fe = TRIFLE_ERROR_INIT;
        trifle__log(TRIFLE_LOG_INFO, "core",
                    "journal %s: replaying %zu calls (seq %" PRIu64 "..%" PRIu64
                    ") and %zu quarantined records; %zu records could not be replayed",
                    dir, c.applied, c.first, c.last, loaded, c.bad);
        trifle__mutex_lock(&b->lock);
        b->quarantine_at_ms = now_ms();
        trifle__mutex_unlock(&b->lock);
        if (b->aggregate)
            publish_held(b);
        else {
            b->quarantined = count_ops(b->kept_q);
            atomic_store_explicit(&b->held, b->quarantined, memory_order_relaxed);
        }
        if (flush_now(b, 1, &fe) != 0)
            trifle__log(TRIFLE_LOG_WARN, "core",
                        "journal %s: the replayed calls wait in the buffer for the store: %s", dir,
                        fe.message);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Public (internal) API */

/* A zeroed block of whole cache lines that shares none of them with another allocation, for
 * what a thread reads or writes on every call (a shard, its bucket caches): malloc packs small
 * blocks side by side, and a neighbour that another thread writes would cost that line on every
 * call. *mem gets what to free. */
static void *line_alloc(size_t size, void **mem)
{
    size_t whole = (size + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;

    *mem = NULL;
    if (whole < size || whole > SIZE_MAX - 2 * CACHE_LINE ||
        (*mem = trifle__calloc(1, whole + 2 * CACHE_LINE)) == NULL)
        return NULL;
    return (char *)*mem + CACHE_LINE - (uintptr_t)*mem % CACHE_LINE;
}

int trifle__buffer_new(trifle__buffer **out, const trifle__buffer_env *env, trifle_error *err)
{
    static const int64_t unit_seconds[] = {1, 60, 3600, 86400, 604800, 2592000, 7776000, 31536000};
    trifle__buffer *b;
    size_t g, k;

    *out = NULL;
    if ((b = trifle__calloc(1, sizeof(*b))) == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    b->env = *env;
    b->mode = trifle_storage_mode(env->st);
    b->system_hash = hash_str(SYSTEM_KEY, 0xcbf29ce484222325ULL);
    b->calls = trifle__storage_takes_calls(env->st);
    b->aggregate = env->opt->aggregate && !b->calls; /* calls are never merged */
    (void)trifle__mutex_init(&b->lock);
    (void)trifle__mutex_init(&b->flush_lock);
    trifle__cond_init_monotonic(&b->wake);
    trifle__cond_init_monotonic(&b->done);
    trifle__cond_init_monotonic(&b->room);
    (void)trifle__mutex_init(&b->jlock);
    atomic_init(&b->closed, 0);
    atomic_init(&b->armed, 0);
    atomic_init(&b->held, 0);
    /* shards: two per processor (a power of two, at most SHARDS_MAX), so a few threads rarely
     * share one; FIFO mode keeps its order in one queue and uses shards[0]'s counters only */
    b->n_shards = 1;
    if (b->aggregate) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        while (b->n_shards < SHARDS_MAX && (long)b->n_shards < 2 * (cpus > 0 ? cpus : 1))
            b->n_shards *= 2;
    }
    if ((b->shards = line_alloc(b->n_shards * sizeof(*b->shards), &b->shards_mem)) == NULL)
        goto oom;
    for (k = 0; k < b->n_shards; k++) {
        bshard *sh = &b->shards[k];

        (void)trifle__mutex_init(&sh->lock);
        atomic_init(&sh->ops_since, 0);
        atomic_init(&sh->operations, 0);
        atomic_init(&sh->records, 0);
        atomic_init(&sh->n_returned, 0);
        sh->gc = line_alloc((env->n_grans ? env->n_grans : 1) * sizeof(*sh->gc), &sh->gc_mem);
        if (sh->gc == NULL)
            goto oom;
        for (g = 0; g < env->n_grans; g++) {
            int64_t span = unit_seconds[env->grans[g].unit] * env->grans[g].offset;
            uint64_t slots = GC_MIN_SLOTS;

            sh->gc[g].span = span > 0 ? span : 1;
            sh->gc[g].inv = 1.0 / (double)sh->gc[g].span;
            while (slots < GC_MAX_SLOTS && (int64_t)slots * sh->gc[g].span < 86400)
                slots *= 2;
            sh->gc[g].mask = slots - 1;
            if ((sh->gc[g].slot = line_alloc(slots * sizeof(gslot), &sh->gc[g].slot_mem)) == NULL)
                goto oom;
        }
    }
    if (env->journal_dir != NULL && env->journal_dir[0] != '\0') {
        int rc = journal_start(b, env->journal_dir, err);
        if (rc != 0) {
            trifle__buffer_free(b);
            return rc;
        }
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

/* The bucket of granularity g holding at; s is its cache slot (of the caller's shard, whose lock
 * it holds). */
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

/* Make the shard's key memo hold key (its hash and a fresh id when the text differs). Only keys
 * that pass trifle__key_check enter the memo, so a call with the memo's key is not checked again.
 * Caller holds the shard's lock. 0, TRIFLE_EINVAL or TRIFLE_ENOMEM. */
static int key_memo(bshard *sh, const char *key, trifle_error *err)
{
    size_t len;
    int rc;

    if (key != NULL && sh->mkey != NULL && (len = strlen(key)) == sh->mkey_len &&
        memcmp(key, sh->mkey, len) == 0)
        return 0;
    if ((rc = trifle__key_check(key, 1, err)) != 0)
        return rc;
    assert(key != NULL); /* trifle__key_check refuses NULL */
    len = strlen(key);
    if (sh->mkey == NULL || len + 1 > sh->mkey_cap) {
        char *m = trifle__realloc(sh->mkey, len + 1);
        if (m == NULL)
            return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        sh->mkey = m;
        sh->mkey_cap = len + 1;
    }
    memcpy(sh->mkey, key, len + 1);
    sh->mkey_len = len;
    sh->mkey_hash = hash_str(key, 0xcbf29ce484222325ULL);
    sh->mkey_id++;
    return 0;
}

/* Look up (create = 0) or get-or-create (create = 1) the pending record of (key, g, at) of shard
 * sh in its cache slot c; key is the memo's key (sh->mkey) or SYSTEM_KEY (system = 1). *miss is
 * incremented when it does not exist. Caller holds the shard's lock. */
static int record_for(trifle__buffer *b, bshard *sh, size_t g, gslot *c, int64_t at, int system,
                      int create, bentry **out, size_t *miss, trifle_error *err)
{
    bentry *cached = system ? c->sys : c->data;
    uint64_t cached_gen = system ? c->sys_gen : c->data_gen;
    btable *t = &sh->tables[sh->cur];
    const char *gran = b->env.grans[g].label;
    const char *key = system ? SYSTEM_KEY : sh->mkey;
    uint64_t h;
    bentry *e;

    *out = NULL;
    /* a system slot only ever holds records of SYSTEM_KEY; a data record's key was compared with
     * the memo's text when its key_id was set */
    if (cached != NULL && cached_gen == sh->gen && cached->at == at &&
        (system || cached->key_id == sh->mkey_id)) {
        *out = cached;
        return 0;
    }
    h = tuple_hash(system ? b->system_hash : sh->mkey_hash, gran, at);
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
            if (id != NULL && (e = entry_new(b, sh, key, gran, at, id, h)) != NULL &&
                table_insert(t, e) != 0) {
                entry_destroy(e);
                e = NULL;
            }
            if (id != stackid)
                trifle__free(id);
            if (e == NULL)
                return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
            atomic_store_explicit(&sh->records, t->count, memory_order_relaxed);
        }
    }
    if (system) {
        c->sys = e;
        c->sys_gen = sh->gen;
    } else {
        e->key_id = sh->mkey_id;
        c->data = e;
        c->data_gen = sh->gen;
    }
    *out = e;
    return 0;
}

/* Wait for room for `needed` more records/operations. Caller holds `lock` (and no shard lock);
 * it may be released meanwhile. */
static int wait_for_room(trifle__buffer *b, size_t needed, int *waited, trifle_error *err)
{
    const trifle__buffer_options *o = b->env.opt;
    int64_t deadline = o->block_timeout_ms > 0 ? now_ms() + o->block_timeout_ms : -1;

    while (pending_count(b) + needed > (size_t)o->max_pending) {
        if (atomic_load(&b->closed))
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

/* The note of the call this thread is adding (trifle__buffer_add_noted), NULL for none. It rides
 * in a thread-local rather than down every add path: journal_op runs on the adding thread, inside
 * that call, and only it reads the note. */
static _Thread_local const void *tl_note;
static _Thread_local size_t tl_note_len;

/* Append the OP record of a call to the journal before the call changes anything: nothing is
 * acknowledged that is not journaled. While replaying, the record is in the journal already and
 * its seq is given. The payload's encoding is cached by serial, so a reused payload is encoded
 * once. Caller holds its shard's lock (or `lock` in FIFO mode); jlock is taken here. 0 (*seq
 * set), TRIFLE_EIO, TRIFLE_EINVAL, TRIFLE_ENOMEM. */
static int journal_op(trifle__buffer *b, const char *key, int64_t at, const trifle_payload *v,
                      unsigned flags, int is_track, uint64_t *seq, trifle_error *err)
{
    int rc;

    *seq = 0;
    if (b->jn == NULL)
        return 0;
    if (b->replaying) {
        *seq = b->replay_seq;
        return 0;
    }
    trifle__mutex_lock(&b->jlock);
    if (b->jpay_serial != v->serial) {
        b->jpay_serial = 0;
        if ((rc = trifle__jrec_payload_encode(&b->jpay, v)) != 0) {
            trifle__mutex_unlock(&b->jlock);
            return rc == TRIFLE_ENOMEM
                       ? trifle__error(err, rc, "out of memory")
                       : trifle__error(err, TRIFLE_EINVAL,
                                       "invalid values: a path longer than 65535 bytes cannot be "
                                       "journaled");
        }
        b->jpay_serial = v->serial;
    }
    rc = trifle__jrec_op_encode(&b->jop, is_track ? TRIFLE__JOP_TRACK : TRIFLE__JOP_ASSERT,
                                (flags & TRIFLE_UNTRACKED) ? 1u : 0u, key, at, &b->jpay, v->n);
    if (rc == 0 && tl_note != NULL) {
        /* the note goes in the call's own record: one write, on disk exactly when the call is */
        rc = trifle__jrec_noted_encode(&b->jnoted, tl_note, tl_note_len, &b->jop);
        if (rc == 0)
            rc = trifle__journal_append(b->jn, TRIFLE__JREC_OP_NOTED, b->jnoted.data, b->jnoted.len,
                                        seq, err);
        else
            rc = trifle__error(err, rc, "%s",
                               rc == TRIFLE_ENOMEM ? "out of memory" : "invalid note");
    } else if (rc == 0)
        rc = trifle__journal_append(b->jn, TRIFLE__JREC_OP, b->jop.data, b->jop.len, seq, err);
    else
        rc = rc == TRIFLE_ENOMEM ? trifle__error(err, rc, "out of memory")
                                 : trifle__error(err, TRIFLE_EINVAL, "invalid metric key");
    trifle__mutex_unlock(&b->jlock);
    return rc;
}

/* With buffer.journal_sync=always, the call returns once its record is on disk (outside every
 * lock: concurrent callers share one fdatasync). */
static int journal_wait(trifle__buffer *b, uint64_t seq, trifle_error *err)
{
    if (b->jn == NULL || seq == 0 || b->replaying ||
        b->env.opt->journal_sync != TRIFLE__JSYNC_ALWAYS)
        return 0;
    return trifle__journal_sync_to(b->jn, seq, err);
}

/* Count an accepted call in its shard and wake the flush thread when it has something new to
 * do: the first call after a snapshot starts the timer, buffer.size calls summed over the shards
 * trigger a flush.
 *
 * The sum reads every shard's counter, a cache line that another thread writes on each of its
 * calls, so a shard sums only at checkpoints: after a sum that leaves R calls to the size, the
 * next one comes R / n_shards calls of this shard later (at least 64; at once when this shard
 * alone reaches the size). While every shard sums, the gaps shrink as the total nears the size
 * and a flush starts within 64 calls per shard of it; a shard that sat idle since its last sum
 * may run on to its checkpoint, so the bound is size / n_shards + 64 calls per shard. For sizes
 * up to 64 calls per shard (the default 256 with two or more processors, so four shards or more)
 * every gap is 64 calls, as before. A thread with a size of a million sums a few times per
 * million calls instead of every 64 calls, which cost two threads 4-5% of their speed
 * (bench/NOTES.md, "Two threads in process").
 *
 * Caller holds the shard's lock, or `lock` in FIFO mode (have_lock = 1, with shards[0]). Returns
 * 1 when the caller must flush itself (no flush thread and the size is reached). */
static int accepted(trifle__buffer *b, bshard *sh, int have_lock)
{
    uint64_t local = atomic_load_explicit(&sh->ops_since, memory_order_relaxed) + 1;
    uint64_t size = (uint64_t)b->env.opt->size;
    int full = 0, first = 0;

    /* written under the shard's lock: plain load and store, atomic only for the readers */
    atomic_store_explicit(&sh->ops_since, local, memory_order_relaxed);
    atomic_store_explicit(&sh->operations,
                          atomic_load_explicit(&sh->operations, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (b->replaying)
        return 0; /* the replay flushes once at its end */
    if (!atomic_load_explicit(&b->armed, memory_order_relaxed))
        first = !atomic_exchange(&b->armed, 1);
    if (local >= sh->next_check || local >= size) {
        uint64_t total = ops_since(b), step = 0;

        full = total >= size;
        if (!full)
            step = (size - total) / b->n_shards;
        sh->next_check = local + (step > 64 ? step : 64);
    }
    if (first || full) {
        if (!have_lock)
            trifle__mutex_lock(&b->lock);
        if (first)
            b->first_pending_ms = now_ms();
        if (b->thread_started && (full || (first && b->env.opt->duration_ms > 0)))
            (void)pthread_cond_signal(&b->wake);
        if (!have_lock)
            trifle__mutex_unlock(&b->lock);
    }
    return full && !b->thread_started;
}

/* The shard of the calling thread: threads get slots in the order they first write, so a few
 * threads land on different shards. */
static _Thread_local size_t thread_slot = SIZE_MAX;
static atomic_size_t next_slot;

static bshard *my_shard(trifle__buffer *b)
{
    if (thread_slot == SIZE_MAX)
        thread_slot = atomic_fetch_add(&next_slot, 1);
    return &b->shards[thread_slot & (b->n_shards - 1)];
}

/* The common call: every bucket in its cache slot, every record cached, the payload and the
 * tracking key already mapped to slots. Then nothing is looked up: journal the call, compose and
 * return 1. Otherwise change nothing and return 0. A journal failure is returned (negative) with
 * nothing changed. Caller holds the shard's lock. No room check: composing into records that
 * exist does not grow the buffer. */
static int add_cached(trifle__buffer *b, bshard *sh, const char *key, int64_t at,
                      const trifle_payload *v, unsigned flags, uint64_t tk_id, int op,
                      uint64_t *seq, trifle_error *err)
{
    size_t n = b->env.n_grans, g;
    int tracking = b->env.system_tracking;
    bentry *data[64], *sys[64];

    for (g = 0; g < n; g++) {
        const gslot *s = slot_of(&sh->gc[g], at);
        bentry *d = s->data, *y = s->sys;

        if (!(at >= s->start && at < s->next) || d == NULL || s->data_gen != sh->gen ||
            d->at != s->start || d->key_id != sh->mkey_id || d->fast_serial != v->serial)
            return 0;
        data[g] = d;
        if (tracking) {
            if (y == NULL || s->sys_gen != sh->gen || y->at != s->start || y->tk_id != tk_id)
                return 0;
            sys[g] = y;
        }
    }
    if (b->jn != NULL) {
        int rc = journal_op(b, key, at, v, flags, op == OP_ADD, seq, err);
        if (rc != 0)
            return rc;
    }
    for (g = 0; g < n; g++) {
        entry_compose_payload(data[g], v, op);
        if (tracking)
            entry_compose_system(sys[g]);
    }
    return 1;
}

/* An assert replaces leaves, so its order against the calls of other threads matters: with every
 * shard locked, each data record it touches is gathered into the caller's shard first — the one
 * holding SET leaves (if any) absorbs the others' parts, which are all newer than its SETs —
 * and only then is the assert composed. A record has SET leaves in one shard at most, and a
 * snapshot composes that part before the others' (take_snapshot). Caller holds every shard's
 * lock; sh is the caller's. */
static int gather_records(trifle__buffer *b, bshard *sh, size_t g, int64_t bucket,
                          trifle_error *err)
{
    const char *gran = b->env.grans[g].label;
    uint64_t h = tuple_hash(sh->mkey_hash, gran, bucket);
    btable *own = &sh->tables[sh->cur];
    bentry *base = table_find(own, h, sh->mkey, gran, bucket), *drop;
    int in_own = base != NULL;
    size_t k;

    for (k = 0; k < b->n_shards; k++) {
        bshard *o = &b->shards[k];
        bentry *e;

        if (o == sh || (e = table_find(&o->tables[o->cur], h, sh->mkey, gran, bucket)) == NULL)
            continue;
        table_remove(&o->tables[o->cur], e);
        atomic_store_explicit(&o->records, o->tables[o->cur].count, memory_order_relaxed);
        o->gen++; /* its record caches may point at e */
        if (base == NULL) {
            base = e;
            continue;
        }
        /* compose the newer part onto the older: the part with SET leaves is the oldest */
        if (ops_of(e) & OP_SET) {
            if (entry_compose_entry(e, base) != 0)
                goto oom;
            drop = base;
            if (in_own) {
                table_remove(own, base);
                in_own = 0;
            }
            base = e;
        } else {
            if (entry_compose_entry(base, e) != 0)
                goto oom;
            drop = e;
        }
        trifle__mutex_lock(&b->lock);
        recycle(b, drop);
        trifle__mutex_unlock(&b->lock);
        continue;
    oom:
        /* back where it was (the table did not shrink: this cannot fail); what was gathered so
         * far stays gathered, which is as correct */
        (void)table_insert(&o->tables[o->cur], e);
        atomic_store_explicit(&o->records, o->tables[o->cur].count, memory_order_relaxed);
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    }
    if (base != NULL && !in_own) {
        base->key_id = 0; /* record_for sets it again from this shard's memo */
        base->fast_serial = 0;
        base->fast_real = 0;
        if (table_insert(own, base) != 0)
            return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        sh->gen++;
    }
    atomic_store_explicit(&sh->records, own->count, memory_order_relaxed);
    return 0;
}

/* Merge one call (aggregate mode) into the caller's shard; asserts lock every shard. */
static int add_aggregate(trifle__buffer *b, const char *key, int64_t at, const trifle_payload *v,
                         unsigned flags, int is_track, trifle_error *err)
{
    size_t n = b->env.n_grans, g, miss, k;
    bentry *data[64], *sys[64];
    gslot *slot[64];
    int64_t bucket[64];
    int untracked = (flags & TRIFLE_UNTRACKED) != 0;
    int tracking = b->env.system_tracking, rc = 0, waited = 0, trigger;
    int op = is_track ? OP_ADD : OP_SET;
    uint64_t tk_id, seq = 0;
    bshard *sh = my_shard(b);

    if (n > 64)
        return trifle__error(err, TRIFLE_ECONFIG, "at most 64 granularities may be buffered");
lock:
    if (is_track) {
        trifle__mutex_lock(&sh->lock);
    } else {
        for (k = 0; k < b->n_shards; k++)
            trifle__mutex_lock(&b->shards[k].lock);
    }
    if (atomic_load(&b->closed)) {
        rc = trifle__error(err, TRIFLE_ECLOSED, "buffer is closed");
        goto unlock;
    }
    if ((rc = key_memo(sh, key, err)) != 0)
        goto unlock;
    /* names the tracking key for entry_reserve_system: the memo's key (even ids), or the
     * untracked key (1) */
    tk_id = untracked ? 1 : sh->mkey_id * 2;
    if (is_track && (rc = add_cached(b, sh, key, at, v, flags, tk_id, op, &seq, err)) > 0)
        goto accept;
    if (rc < 0)
        goto unlock;
    for (g = 0; g < n; g++) {
        slot[g] = slot_of(&sh->gc[g], at);
        if ((rc = bucket_for(b, g, slot[g], at, &bucket[g], err)) != 0)
            goto unlock;
        if (!is_track && (rc = gather_records(b, sh, g, bucket[g], err)) != 0)
            goto unlock;
    }
    /* how many records would be new: the memory bound counts records (SPEC §6.5) */
    miss = 0;
    for (g = 0; g < n && rc == 0; g++) {
        rc = record_for(b, sh, g, slot[g], bucket[g], 0, 0, &data[g], &miss, err);
        if (rc == 0 && tracking)
            rc = record_for(b, sh, g, slot[g], bucket[g], 1, 0, &sys[g], &miss, err);
    }
    if (rc != 0)
        goto unlock;
    if (miss > 0 && !b->replaying && pending_count(b) + miss > (size_t)b->env.opt->max_pending) {
        /* wait without any shard lock (a flush needs them all), then start again */
        if (is_track)
            trifle__mutex_unlock(&sh->lock);
        else
            for (k = b->n_shards; k-- > 0;)
                trifle__mutex_unlock(&b->shards[k].lock);
        trifle__mutex_lock(&b->lock);
        rc = wait_for_room(b, miss, &waited, err);
        trifle__mutex_unlock(&b->lock);
        if (rc != 0)
            return rc;
        goto lock;
    }
    /* phase 1: every record exists and has a slot for every leaf */
    for (g = 0; g < n; g++) {
        if (data[g] == NULL &&
            (rc = record_for(b, sh, g, slot[g], bucket[g], 0, 1, &data[g], &miss, err)) != 0)
            goto unlock;
        if (entry_reserve_payload(data[g], v) != 0)
            goto oom;
        if (tracking) {
            if (sys[g] == NULL &&
                (rc = record_for(b, sh, g, slot[g], bucket[g], 1, 1, &sys[g], &miss, err)) != 0)
                goto unlock;
            if (entry_reserve_system(sys[g], untracked ? UNTRACKED_KEY : key, tk_id) != 0)
                goto oom;
        }
    }
    /* the journal record, then phase 2: compose; nothing can fail after the append */
    if ((rc = journal_op(b, key, at, v, flags, is_track, &seq, err)) != 0)
        goto unlock; /* records made in phase 1 hold placeholders only: nothing is written */
    for (g = 0; g < n; g++) {
        entry_compose_payload(data[g], v, op);
        if (tracking)
            entry_compose_system(sys[g]);
    }
accept:
    trigger = accepted(b, sh, 0);
    if (is_track)
        trifle__mutex_unlock(&sh->lock);
    else
        for (k = b->n_shards; k-- > 0;)
            trifle__mutex_unlock(&b->shards[k].lock);
    if (trigger)
        (void)flush_now(b, 0, NULL); /* enqueue never returns flush errors (SPEC §6.4) */
    return journal_wait(b, seq, err);
oom:
    rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
unlock:
    if (is_track)
        trifle__mutex_unlock(&sh->lock);
    else
        for (k = b->n_shards; k-- > 0;)
            trifle__mutex_unlock(&b->shards[k].lock);
    return rc;
}

int trifle__buffer_add(trifle__buffer *b, const char *key, int64_t at, const trifle_payload *v,
                       unsigned flags, int is_track, trifle_error *err)
{
    int rc;

    if (b->aggregate)
        return add_aggregate(b, key, at, v, flags, is_track, err);
    if ((rc = trifle__key_check(key, 1, err)) != 0)
        return rc;
    return add_fifo(b, key, at, v, flags, is_track, err);
}

int trifle__buffer_add_noted(trifle__buffer *b, const char *key, int64_t at,
                             const trifle_payload *v, unsigned flags, int is_track,
                             const void *note, size_t note_len, trifle_error *err)
{
    int rc;

    tl_note = note;
    tl_note_len = note_len;
    rc = trifle__buffer_add(b, key, at, v, flags, is_track, err);
    tl_note = NULL;
    tl_note_len = 0;
    return rc;
}

/* Non-aggregate mode: the operation's records, copied, appended to the queue. */
static int add_fifo(trifle__buffer *b, const char *key, int64_t at, const trifle_payload *v,
                    unsigned flags, int is_track, trifle_error *err)
{
    size_t n = b->env.n_grans, per = b->env.system_tracking ? 2 : 1, g, k = 0;
    const char *tk = (flags & TRIFLE_UNTRACKED) ? UNTRACKED_KEY : key;
    bop *op;
    uint64_t seq;
    int rc = 0, waited = 0, trigger;

    if ((op = trifle__calloc(1, sizeof(*op))) == NULL ||
        (op->entries = trifle__calloc(b->calls ? 1 : n * per, sizeof(*op->entries))) == NULL) {
        trifle__free(op);
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    }
    if (b->calls) {
        /* calls mode: the call as made, one record (see the file comment) */
        bentry *e = &op->entries[0];

        op->n = 1;
        op->untracked = (flags & TRIFLE_UNTRACKED) != 0;
        e->key = trifle__strdup(key);
        e->gran = "";
        e->at = at;
        if (e->key == NULL || entry_reserve_payload(e, v) != 0)
            goto oom;
        entry_compose_payload(e, v, is_track ? OP_ADD : OP_SET);
        n = 0; /* no granularity loop */
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
    if (atomic_load(&b->closed)) {
        trifle__mutex_unlock(&b->lock);
        rc = trifle__error(err, TRIFLE_ECLOSED, "buffer is closed");
        goto fail;
    }
    if (!b->replaying && (rc = wait_for_room(b, 1, &waited, err)) != 0) {
        trifle__mutex_unlock(&b->lock);
        goto fail;
    }
    if ((rc = journal_op(b, key, at, v, flags, is_track, &op->seq, err)) != 0) {
        trifle__mutex_unlock(&b->lock);
        goto fail;
    }
    if (b->q_tail != NULL)
        b->q_tail->next = op;
    else
        b->q_head = op;
    b->q_tail = op;
    b->q_n++;
    seq = op->seq; /* op belongs to the queue now: a flush may free it once `lock` is released */
    trigger = accepted(b, &b->shards[0], 1);
    trifle__mutex_unlock(&b->lock);
    if (trigger)
        (void)flush_now(b, 0, NULL);
    return journal_wait(b, seq, err);
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
    if (atomic_load(&b->closed)) {
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

static int table_has(const btable *t, const char *key, const char *granularity)
{
    size_t i;

    for (i = 0; i < t->nslots; i++)
        for (const bentry *e = t->slots[i]; e != NULL; e = e->next)
            if (strcmp(e->gran, granularity) == 0 &&
                (strcmp(e->key, key) == 0 || strcmp(key, SYSTEM_KEY) == 0))
                return 1;
    return 0;
}

/* Whether records of (key, granularity) wait outside the quarantine. Caller holds flush_lock
 * (and not `lock`: the shards' locks come first). */
static int pending_for(trifle__buffer *b, const char *key, const char *granularity)
{
    size_t i, k;
    const bop *op;

    if (b->aggregate) {
        int found = table_has(&b->retained, key, granularity);
        for (k = 0; k < b->n_shards && !found; k++) {
            bshard *sh = &b->shards[k];
            trifle__mutex_lock(&sh->lock);
            found = table_has(&sh->tables[sh->cur], key, granularity);
            trifle__mutex_unlock(&sh->lock);
        }
        return found;
    }
    for (op = b->kept; op != NULL; op = op->next)
        for (i = 0; i < op->n; i++)
            if (b->calls ? strcmp(op->entries[i].key, key) == 0 || strcmp(key, SYSTEM_KEY) == 0
                         : strcmp(op->entries[i].gran, granularity) == 0 &&
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
    still = b->in_flight || pending_count(b) > b->quarantined;
    trifle__mutex_unlock(&b->lock);
    if (!still)
        return 0;
    if ((rc = flush_and_wait(b, &e)) == 0)
        return 0;
    trifle__mutex_lock(&b->flush_lock);
    still = pending_for(b, key, granularity);
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
    if (atomic_exchange(&b->closed, 1)) {
        trifle__mutex_unlock(&b->lock);
        return trifle__error(err, TRIFLE_ECLOSED, "buffer is closed");
    }
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
    if (b->jn != NULL)
        return trifle__error(err, TRIFLE_EDRIVER,
                             "%zu buffered operations could not be written: %s (they stay in the "
                             "journal %s and are written when it is next opened)",
                             left, last.message[0] ? last.message : "unknown error",
                             trifle__journal_dir(b->jn));
    return trifle__error(err, TRIFLE_EDRIVER, "%zu buffered operations could not be written: %s",
                         left, last.message[0] ? last.message : "unknown error");
}

void trifle__buffer_free(trifle__buffer *b)
{
    bop *op;
    size_t t;

    if (b == NULL)
        return;
    if (b->thread_started)
        trifle__thread_stop(&b->lock, &b->wake, &b->stop, b->thread);
    for (t = 0; b->shards != NULL && t < b->n_shards; t++) {
        bshard *sh = &b->shards[t];
        size_t g;
        table_destroy(&sh->tables[0]);
        table_destroy(&sh->tables[1]);
        while (sh->free_list != NULL) {
            bentry *e = sh->free_list;
            sh->free_list = e->next;
            entry_destroy(e);
        }
        while (sh->returned != NULL) {
            bentry *e = sh->returned;
            sh->returned = e->next;
            entry_destroy(e);
        }
        if (sh->gc != NULL)
            for (g = 0; g < b->env.n_grans; g++)
                trifle__free(sh->gc[g].slot_mem);
        trifle__free(sh->gc_mem);
        trifle__free(sh->mkey);
        trifle__mutex_destroy(&sh->lock);
    }
    trifle__free(b->shards_mem);
    table_destroy(&b->retained);
    table_destroy(&b->quarantine);

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
    trifle__mutex_destroy(&b->jlock);
    trifle__journal_close(b->jn);
    trifle__jbuf_free(&b->jpay);
    trifle__jbuf_free(&b->jop);
    trifle__jbuf_free(&b->jnoted);
    trifle__jbuf_free(&b->jq);
    for (t = 0; t < b->n_grans_extra; t++)
        trifle__free(b->grans_extra[t]);
    trifle__free(b->grans_extra);
    trifle__free(b);
}

void trifle__buffer_get_stats(trifle__buffer *b, trifle_buffer_counters *out)
{
    size_t k;

    trifle__mutex_lock(&b->lock);
    *out = b->stats;
    out->operations = 0;
    for (k = 0; k < b->n_shards; k++)
        out->operations += atomic_load_explicit(&b->shards[k].operations, memory_order_relaxed);
    out->quarantined = b->quarantined;
    out->pending_entries = pending_count(b);
    out->pending_operations = ops_since(b);
    trifle__mutex_unlock(&b->lock);
}

void trifle__buffer_set_error_handler(trifle__buffer *b, trifle_error_handler fn, void *payload)
{
    trifle__mutex_lock(&b->lock);
    b->on_error = fn;
    b->on_error_payload = payload;
    trifle__mutex_unlock(&b->lock);
}
