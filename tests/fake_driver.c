/* The fake driver: an in-memory implementation of the whole driver ABI (1.1, journal marks
 * included) for core tests. It counts what reaches it and can fail on demand; tests/fake_driver.h
 * documents the URL, the counters and the fault injection. Like every driver it links only its
 * own dependencies (none), allocates through the host and exports one symbol,
 * trifle_driver_fake_init.
 *
 * Stores are named by the URL (`fake:<db>`) and shared by every connection of the process, under
 * one mutex; they live until the plugin is unloaded (a destructor frees them). A bucket is stored
 * under its identifier for the connection's mode (mode letter + id [+ granularity] [+ at]), its
 * leaves in a sorted array. inc/set/write_marked work in two phases so that a batch is
 * all-or-nothing even when the host allocator fails: phase 1 creates every bucket and leaf slot
 * the batch needs (new slots are "pending", invisible to get), phase 2 only changes values. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <trifle/driver.h>

#define FK_BATCH_LOG 1024
#define FK_STATS_KEY "__fake__.stats"
#define FK_CONTROL_KEY "__fake__.control"

enum {
    OP_OPEN,
    OP_CLOSE,
    OP_SETUP,
    OP_INC,
    OP_SET,
    OP_GET,
    OP_PING,
    OP_SCAN,
    OP_WRITE_MARKED,
    OP_MARK_READ,
    N_OPS
};
static const char *const op_names[N_OPS] = {"open", "close", "setup", "inc",          "set",
                                            "get",  "ping",  "scan",  "write_marked", "mark_read"};

typedef struct fk_leaf {
    char *path;
    double value;
    int pending; /* created by a batch that has not applied it yet: invisible */
} fk_leaf;

typedef struct fk_bucket {
    struct fk_bucket *next; /* hash chain */
    char *key;
    uint64_t hash;
    unsigned long stamp; /* last batch that touched it: finds repeated ids in one call */
    fk_leaf *leaves;
    size_t n, cap;
} fk_bucket;

typedef struct fk_pingrec {
    struct fk_pingrec *next;
    char *key;
    int64_t at;
    fk_leaf *leaves;
    size_t n;
} fk_pingrec;

/* A journal mark (ABI 1.1): seq 0 reads as no mark. */
typedef struct fk_markrec {
    struct fk_markrec *next;
    char *name;
    uint64_t seq;
} fk_markrec;

typedef struct fk_stats {
    unsigned long calls, items, leaves, failures;
    unsigned long batch[FK_BATCH_LOG];
} fk_stats;

typedef struct fk_db {
    struct fk_db *next;
    char *name;
    fk_bucket **slots;
    size_t n_slots, n_buckets;
    fk_pingrec *pings;
    fk_markrec *marks;
    unsigned long stamp;
    fk_stats stats[N_OPS];
    /* faults */
    unsigned long fail_at[N_OPS];
    long fail_left[N_OPS]; /* -1: until reset */
    long fail_count;       /* calls to fail once armed: >= 1, or -1 */
    int fail_code, fail_native, fail_unknown;
    long fail_applied, fail_item;
    long slow_inc_ms; /* every inc sleeps this long before it takes the store's lock */
} fk_db;

struct trifle_conn {
    const trifle_host_api *host;
    fk_db *db;
    int mode; /* trifle_id_mode */
    int probe;
    int get_reverse;   /* get emits buckets and leaves in reverse order */
    int get_split;     /* get emits each leaf twice, as two halves of its value */
    int get_misbehave; /* 1: emit an index past the buckets; 2: emit an empty path */
};

static pthread_mutex_t fk_lock = PTHREAD_MUTEX_INITIALIZER;
static fk_db *fk_dbs;
static const trifle_host_api *fk_host;

/* ---------------------------------------------------------------------------------------------
 * Memory */

/* Leave the store's lock with @p rc, which names running out of memory in @p err. */
static int fk_unlock(const trifle_host_api *h, int rc, trifle_error *err)
{
    (void)pthread_mutex_unlock(&fk_lock);
    if (rc == TRIFLE_ENOMEM)
        h->error_set(err, rc, 0, "out of memory");
    return rc;
}

static char *fk_strdup(const trifle_host_api *h, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = h->alloc(n);

    return d != NULL ? memcpy(d, s, n) : NULL;
}

static void fk_leaves_free(const trifle_host_api *h, fk_leaf *leaves, size_t n)
{
    while (n > 0)
        h->free(leaves[--n].path);
    h->free(leaves);
}

/* A stored bucket or ping: its leaves, its key and the record itself. */
static void fk_record_free(const trifle_host_api *h, void *record, char *key, fk_leaf *leaves,
                           size_t n)
{
    fk_leaves_free(h, leaves, n);
    h->free(key);
    h->free(record);
}

static void fk_data_free(const trifle_host_api *h, fk_db *db)
{
    fk_bucket *b, *nb;
    fk_pingrec *p, *np;
    fk_markrec *m, *nm;
    size_t i;

    for (i = 0; i < db->n_slots; i++) {
        for (b = db->slots[i]; b != NULL; b = nb) {
            nb = b->next;
            fk_record_free(h, b, b->key, b->leaves, b->n);
        }
    }
    h->free(db->slots);
    db->slots = NULL;
    db->n_slots = db->n_buckets = 0;
    for (p = db->pings; p != NULL; p = np) {
        np = p->next;
        fk_record_free(h, p, p->key, p->leaves, p->n);
    }
    db->pings = NULL;
    for (m = db->marks; m != NULL; m = nm) {
        nm = m->next;
        h->free(m->name);
        h->free(m);
    }
    db->marks = NULL;
}

static void fk_stats_reset(fk_db *db)
{
    memset(db->stats, 0, sizeof(db->stats));
    memset(db->fail_at, 0, sizeof(db->fail_at));
    memset(db->fail_left, 0, sizeof(db->fail_left));
    db->fail_count = 1;
    db->fail_code = TRIFLE_ECONN;
    db->fail_native = 0;
    db->fail_unknown = 0;
    db->fail_applied = 0;
    db->fail_item = -1;
    db->slow_inc_ms = 0;
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((destructor)) static void fk_unload(void)
{
    fk_db *db, *next;

    if (fk_host == NULL)
        return;
    for (db = fk_dbs; db != NULL; db = next) {
        next = db->next;
        fk_data_free(fk_host, db);
        fk_host->free(db->name);
        fk_host->free(db);
    }
    fk_dbs = NULL;
}
#endif

/* ---------------------------------------------------------------------------------------------
 * Buckets */

static uint64_t fk_hash(const char *s)
{
    uint64_t h = 14695981039346656037u;

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211u;
    }
    return h;
}

/* The stored identity of a bucket for the connection's mode. Caller frees. */
static char *fk_bucket_key(const trifle_conn *c, const trifle_bucket *b)
{
    const char *g = b->granularity != NULL ? b->granularity : "";
    size_t n = strlen(b->id) + strlen(g) + 48;
    char *k = c->host->alloc(n);

    if (k == NULL)
        return NULL;
    if (c->mode == TRIFLE_ID_FULL)
        (void)snprintf(k, n, "F%s", b->id);
    else if (c->mode == TRIFLE_ID_PARTIAL)
        (void)snprintf(k, n, "P%s\x1f%lld", b->id, (long long)b->at);
    else
        (void)snprintf(k, n, "S%s\x1f%s\x1f%lld", b->id, g, (long long)b->at);
    return k;
}

static fk_bucket *fk_find(const fk_db *db, const char *key, uint64_t h)
{
    fk_bucket *b;

    if (db->n_slots == 0)
        return NULL;
    for (b = db->slots[h & (db->n_slots - 1)]; b != NULL; b = b->next)
        if (b->hash == h && strcmp(b->key, key) == 0)
            return b;
    return NULL;
}

static int fk_grow(const trifle_host_api *h, fk_db *db)
{
    size_t n = db->n_slots == 0 ? 64 : 2 * db->n_slots, i;
    fk_bucket **slots, *b, *next;

    if ((slots = h->alloc(n * sizeof(*slots))) == NULL)
        return TRIFLE_ENOMEM;
    memset(slots, 0, n * sizeof(*slots));
    for (i = 0; i < db->n_slots; i++) {
        for (b = db->slots[i]; b != NULL; b = next) {
            next = b->next;
            b->next = slots[b->hash & (n - 1)];
            slots[b->hash & (n - 1)] = b;
        }
    }
    h->free(db->slots);
    db->slots = slots;
    db->n_slots = n;
    return 0;
}

/* Find or create the bucket for key (the key's ownership passes on success). */
static int fk_bucket_get(const trifle_host_api *h, fk_db *db, char *key, fk_bucket **out)
{
    uint64_t hash = fk_hash(key);
    fk_bucket *b = fk_find(db, key, hash);

    if (b != NULL) {
        h->free(key);
        *out = b;
        return 0;
    }
    if ((db->n_buckets + 1) * 4 > db->n_slots * 3 && fk_grow(h, db) != 0)
        return TRIFLE_ENOMEM;
    if ((b = h->alloc(sizeof(*b))) == NULL)
        return TRIFLE_ENOMEM;
    memset(b, 0, sizeof(*b));
    b->key = key;
    b->hash = hash;
    b->next = db->slots[hash & (db->n_slots - 1)];
    db->slots[hash & (db->n_slots - 1)] = b;
    db->n_buckets++;
    *out = b;
    return 0;
}

/* Index of path in the sorted leaves, or the insertion point with *found = 0. */
static size_t fk_leaf_find(const fk_leaf *leaves, size_t n, const char *path, int *found)
{
    size_t lo = 0, hi = n, mid;
    int c;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = strcmp(leaves[mid].path, path);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

/* Make sure path has a slot in b (a new one is pending). */
static int fk_leaf_reserve(const trifle_host_api *h, fk_bucket *b, const char *path)
{
    size_t at;
    int found;
    fk_leaf *grown;
    char *copy;

    at = fk_leaf_find(b->leaves, b->n, path, &found);
    if (found)
        return 0;
    if (b->n == b->cap) {
        size_t ncap = b->cap == 0 ? 8 : 2 * b->cap;
        if ((grown = h->realloc(b->leaves, ncap * sizeof(*grown))) == NULL)
            return TRIFLE_ENOMEM;
        b->leaves = grown;
        b->cap = ncap;
    }
    if ((copy = fk_strdup(h, path)) == NULL)
        return TRIFLE_ENOMEM;
    memmove(b->leaves + at + 1, b->leaves + at, (b->n - at) * sizeof(*b->leaves));
    b->leaves[at].path = copy;
    b->leaves[at].value = 0;
    b->leaves[at].pending = 1;
    b->n++;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Counting and faults */

static void fk_count(trifle_conn *c, int op, size_t items, size_t leaves)
{
    fk_stats *s;

    if (c->probe)
        return;
    s = &c->db->stats[op];
    if (s->calls < FK_BATCH_LOG)
        s->batch[s->calls] = items;
    s->calls++;
    s->items += items;
    s->leaves += leaves;
}

/* 1 when this call of op must fail (the call has been counted already). */
static int fk_should_fail(trifle_conn *c, int op)
{
    fk_db *db = c->db;

    if (c->probe || db->fail_left[op] == 0 || db->stats[op].calls < db->fail_at[op])
        return 0;
    if (db->fail_left[op] > 0)
        db->fail_left[op]--;
    db->stats[op].failures++;
    return 1;
}

static int fk_fail(trifle_conn *c, int op, trifle_error *err)
{
    c->host->error_set(err, c->db->fail_code, c->db->fail_native,
                       "fake: injected failure of %s call %lu", op_names[op],
                       c->db->stats[op].calls);
    return c->db->fail_code;
}

static int fk_status(const char *text, int *out)
{
    static const char *const names[] = {"OK",      "ERROR",   "ENOMEM",  "EINVAL", "ENOTFOUND",
                                        "ENOTSUP", "ECONFIG", "ECONN",   "EAUTH",  "ETIMEDOUT",
                                        "EBUSY",   "EABI",    "EDRIVER", "EDATA",  "ECLOSED"};
    size_t i;
    char *end;
    long v;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(text, names[i]) == 0) {
            *out = -(int)i;
            return 0;
        }
    }
    v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || v >= 0 || v < -1000)
        return -1;
    *out = (int)v;
    return 0;
}

/* Fault settings collected from URL parameters or control leaves, applied together. */
typedef struct fk_settings {
    long fail_in[N_OPS]; /* 0: unchanged */
    long count;
    int code, native, unknown, has_code, has_native, has_unknown;
    long applied, item;
    int has_applied, has_item, reset_stats, reset_data;
    long slow_inc_ms; /* -1: unchanged */
} fk_settings;

/* Take one setting; 1 when the name is one, 0 when it is not, -1 for a bad value. */
static int fk_setting(fk_settings *s, const char *name, const char *text, double num)
{
    long v = (long)num;
    size_t op;

    if (text != NULL) {
        char *end;
        if (strcmp(name, "fail_code") == 0)
            return fk_status(text, &s->code) == 0 ? (s->has_code = 1) : -1;
        v = strtol(text, &end, 10);
        if (end == text || *end != '\0')
            return strncmp(name, "fail_", 5) == 0 || strncmp(name, "reset_", 6) == 0 ? -1 : 0;
    }
    if (strncmp(name, "fail_", 5) == 0) {
        for (op = 0; op < N_OPS; op++) {
            if (strcmp(name + 5, op_names[op]) == 0) {
                if (v < 1)
                    return -1;
                s->fail_in[op] = v;
                return 1;
            }
        }
    }
    if (strcmp(name, "fail_count") == 0) {
        if (v < 1 && v != -1)
            return -1;
        s->count = v;
    } else if (strcmp(name, "fail_code") == 0) {
        if (v >= 0)
            return -1;
        s->code = (int)v;
        s->has_code = 1;
    } else if (strcmp(name, "fail_native") == 0) {
        s->native = (int)v;
        s->has_native = 1;
    } else if (strcmp(name, "fail_unknown") == 0) {
        s->unknown = v != 0;
        s->has_unknown = 1;
    } else if (strcmp(name, "fail_applied") == 0) {
        if (v < 0)
            return -1;
        s->applied = v;
        s->has_applied = 1;
    } else if (strcmp(name, "fail_item") == 0) {
        if (v < -1)
            return -1;
        s->item = v;
        s->has_item = 1;
    } else if (strcmp(name, "slow_inc_ms") == 0) {
        if (v < 0)
            return -1;
        s->slow_inc_ms = v;
    } else if (strcmp(name, "reset_stats") == 0) {
        s->reset_stats = v != 0;
    } else if (strcmp(name, "reset_data") == 0) {
        s->reset_data = v != 0;
    } else {
        return 0;
    }
    return 1;
}

static void fk_settings_apply(const trifle_host_api *h, fk_db *db, const fk_settings *s)
{
    size_t op;

    if (s->reset_data)
        fk_data_free(h, db);
    if (s->reset_stats)
        fk_stats_reset(db);
    if (s->count != 0)
        db->fail_count = s->count;
    for (op = 0; op < N_OPS; op++) {
        if (s->fail_in[op] > 0) {
            db->fail_at[op] = db->stats[op].calls + (unsigned long)s->fail_in[op];
            db->fail_left[op] = db->fail_count;
        }
    }
    if (s->has_code)
        db->fail_code = s->code;
    if (s->has_native)
        db->fail_native = s->native;
    if (s->has_unknown)
        db->fail_unknown = s->unknown;
    if (s->has_applied)
        db->fail_applied = s->applied;
    if (s->has_item)
        db->fail_item = s->item;
    if (s->slow_inc_ms >= 0)
        db->slow_inc_ms = s->slow_inc_ms;
}

/* ---------------------------------------------------------------------------------------------
 * Operations */

static void fk_close(trifle_conn *c)
{
    if (c == NULL)
        return;
    if (c->db != NULL) {
        (void)pthread_mutex_lock(&fk_lock);
        fk_count(c, OP_CLOSE, 0, 0);
        (void)pthread_mutex_unlock(&fk_lock);
    }
    c->host->free(c);
}

/* The ABI 1.0 open() on purpose (no open_params): the core's unit tests that run on the fake
 * driver so keep the path of drivers built before ABI 1.3, which get the identifier mode as the
 * string option trifle.joined, exercised (tests/abi covers the typed open_params). */
static int fk_open(trifle_conn **out, const trifle_host_api *host, const char *url,
                   const char *const *opts, trifle_error *err)
{
    fk_settings s;
    trifle_conn *c;
    fk_db *db;
    const char *name;
    size_t i;
    int rc = 0, r;

    *out = NULL;
    if (strncmp(url, "fake:", 5) != 0) {
        host->error_set(err, TRIFLE_ECONFIG, 0, "invalid driver URL: expected fake:<db>");
        return TRIFLE_ECONFIG;
    }
    name = url + 5;
    if ((c = host->alloc(sizeof(*c))) == NULL) {
        host->error_set(err, TRIFLE_ENOMEM, 0, "out of memory");
        return TRIFLE_ENOMEM;
    }
    memset(c, 0, sizeof(*c));
    c->host = host;
    *out = c; /* half-open: fk_close accepts it */
    memset(&s, 0, sizeof(s));
    s.slow_inc_ms = -1;
    for (i = 0; opts != NULL && opts[i] != NULL && opts[i + 1] != NULL; i += 2) {
        if (strcmp(opts[i], "trifle.joined") == 0) {
            c->mode = strcmp(opts[i + 1], "partial") == 0     ? TRIFLE_ID_PARTIAL
                      : strcmp(opts[i + 1], "separated") == 0 ? TRIFLE_ID_SEPARATED
                                                              : TRIFLE_ID_FULL;
        } else if (strcmp(opts[i], "trifle.separator") == 0 ||
                   strcmp(opts[i], "expire_after") == 0) {
            continue;
        } else if (strcmp(opts[i], "fake_probe") == 0) {
            c->probe = strcmp(opts[i + 1], "1") == 0;
        } else if (strcmp(opts[i], "get_order") == 0 &&
                   (strcmp(opts[i + 1], "reverse") == 0 || strcmp(opts[i + 1], "forward") == 0)) {
            c->get_reverse = opts[i + 1][0] == 'r';
        } else if (strcmp(opts[i], "get_split") == 0) {
            c->get_split = strcmp(opts[i + 1], "1") == 0;
        } else if (strcmp(opts[i], "get_misbehave") == 0 &&
                   (strcmp(opts[i + 1], "index") == 0 || strcmp(opts[i + 1], "path") == 0)) {
            c->get_misbehave = opts[i + 1][0] == 'i' ? 1 : 2;
        } else if ((r = fk_setting(&s, opts[i], opts[i + 1], 0)) <= 0) {
            if (r == 0)
                host->error_set(err, TRIFLE_ECONFIG, 0, "invalid driver URL: unknown parameter %s",
                                opts[i]);
            else
                host->error_set(err, TRIFLE_ECONFIG, 0, "invalid driver URL: invalid %s: %s",
                                opts[i], opts[i + 1]);
            return TRIFLE_ECONFIG;
        }
    }
    (void)pthread_mutex_lock(&fk_lock);
    if (fk_host == NULL)
        fk_host = host;
    for (db = fk_dbs; db != NULL; db = db->next)
        if (strcmp(db->name, name) == 0)
            break;
    if (db == NULL) {
        if ((db = host->alloc(sizeof(*db))) == NULL) {
            rc = TRIFLE_ENOMEM;
            goto done;
        }
        memset(db, 0, sizeof(*db));
        if ((db->name = fk_strdup(host, name)) == NULL) {
            host->free(db);
            rc = TRIFLE_ENOMEM;
            goto done;
        }
        fk_stats_reset(db);
        db->next = fk_dbs;
        fk_dbs = db;
    }
    c->db = db;
    fk_settings_apply(host, db, &s); /* first, so that fail_open=1 fails this very open */
    fk_count(c, OP_OPEN, 0, 0);
    if (fk_should_fail(c, OP_OPEN)) {
        /* like client libraries that echo the URI: the core must mask the password */
        host->error_set(err, db->fail_code, db->fail_native,
                        "fake: injected failure of open call %lu for %s", db->stats[OP_OPEN].calls,
                        url);
        rc = db->fail_code;
    }
done:
    return fk_unlock(host, rc, err);
}

static int fk_setup(trifle_conn *c, trifle_error *err)
{
    int rc = 0;

    (void)pthread_mutex_lock(&fk_lock);
    fk_count(c, OP_SETUP, 0, 0);
    if (fk_should_fail(c, OP_SETUP))
        rc = fk_fail(c, OP_SETUP, err);
    (void)pthread_mutex_unlock(&fk_lock);
    return rc;
}

static int fk_violation(trifle_conn *c, trifle_error *err, const char *what, size_t i)
{
    c->host->error_set(err, TRIFLE_EINVAL, 0, "fake: contract violation: items[%zu] %s", i, what);
    return TRIFLE_EINVAL;
}

/* The checks SPEC §7.2 lets drivers rely on, before anything is touched. */
static int fk_check_items(trifle_conn *c, const trifle_entry *items, size_t n, trifle_error *err)
{
    size_t i, k;

    if (items == NULL)
        return fk_violation(c, err, "array is NULL", 0);
    for (i = 0; i < n; i++) {
        const trifle_entry *e = &items[i];
        if (e->bucket.id == NULL || e->bucket.id[0] == '\0')
            return fk_violation(c, err, "has no id", i);
        if (c->mode == TRIFLE_ID_SEPARATED &&
            (e->bucket.granularity == NULL || e->bucket.granularity[0] == '\0'))
            return fk_violation(c, err, "has no granularity", i);
        if (e->leaves == NULL || e->n_leaves == 0)
            return fk_violation(c, err, "has no leaves", i);
        for (k = 0; k < e->n_leaves; k++) {
            if (e->leaves[k].path == NULL || e->leaves[k].path[0] == '\0')
                return fk_violation(c, err, "has an empty leaf path", i);
            if (!isfinite(e->leaves[k].value))
                return fk_violation(c, err, "has a non-finite value", i);
            if (k > 0 && strcmp(e->leaves[k - 1].path, e->leaves[k].path) >= 0)
                return fk_violation(c, err, "leaves are not sorted and unique", i);
        }
    }
    return 0;
}

/* Phase 1 of a write: every bucket of items[0..n) and every leaf slot exists afterwards (new ones
 * pending), values unchanged; touched[i] is item i's bucket. 0, TRIFLE_ENOMEM, or EINVAL for an
 * identifier repeated within the list (`first` numbers the items in the message). */
static int fk_reserve(trifle_conn *c, const trifle_entry *items, size_t n, size_t first,
                      fk_bucket **touched, trifle_error *err)
{
    const trifle_host_api *h = c->host;
    fk_db *db = c->db;
    size_t i, k;
    char *key;

    db->stamp++;
    for (i = 0; i < n; i++) {
        if ((key = fk_bucket_key(c, &items[i].bucket)) == NULL ||
            fk_bucket_get(h, db, key, &touched[i]) != 0) {
            h->free(key); /* fk_bucket_get frees it only on success */
            return TRIFLE_ENOMEM;
        }
        if (touched[i]->stamp == db->stamp)
            return fk_violation(c, err, "repeats an identifier of the same call", first + i);
        touched[i]->stamp = db->stamp;
        for (k = 0; k < items[i].n_leaves; k++)
            if (fk_leaf_reserve(h, touched[i], items[i].leaves[k].path) != 0)
                return TRIFLE_ENOMEM;
    }
    return 0;
}

/* Phase 2: add (inc) or replace the values of items[0..n); nothing can fail. */
static void fk_apply(const trifle_entry *items, size_t n, fk_bucket *const *touched, int add)
{
    size_t i, k;
    int found;

    for (i = 0; i < n; i++) {
        for (k = 0; k < items[i].n_leaves; k++) {
            fk_bucket *b = touched[i];
            fk_leaf *l = &b->leaves[fk_leaf_find(b->leaves, b->n, items[i].leaves[k].path, &found)];
            l->value =
                add && !l->pending ? l->value + items[i].leaves[k].value : items[i].leaves[k].value;
            l->pending = 0;
        }
    }
}

static size_t fk_leaves_of(const trifle_entry *items, size_t n)
{
    size_t i, leaves = 0;

    for (i = 0; items != NULL && i < n; i++)
        leaves += items[i].n_leaves;
    return leaves;
}

static int fk_write(trifle_conn *c, int add, const trifle_entry *items, size_t n,
                    trifle_write_result *res, trifle_error *err)
{
    const trifle_host_api *h = c->host;
    fk_db *db = c->db;
    fk_bucket **touched = NULL;
    size_t apply = n;
    int rc = 0, failing;
    long slow;

    (void)pthread_mutex_lock(&fk_lock);
    fk_count(c, add ? OP_INC : OP_SET, n, fk_leaves_of(items, n));
    if ((slow = add ? db->slow_inc_ms : 0) > 0) { /* counted already: a test sees it is inside */
        struct timespec ts = {slow / 1000, (slow % 1000) * 1000000L};
        (void)pthread_mutex_unlock(&fk_lock);
        (void)nanosleep(&ts, NULL);
        (void)pthread_mutex_lock(&fk_lock);
    }
    if ((rc = fk_check_items(c, items, n, err)) != 0)
        goto done;
    if (n > 0 && (touched = h->alloc(n * sizeof(*touched))) == NULL) {
        rc = TRIFLE_ENOMEM;
        goto done;
    }
    if ((rc = fk_reserve(c, items, n, 0, touched, err)) != 0)
        goto done;
    failing = fk_should_fail(c, add ? OP_INC : OP_SET);
    if (failing) {
        if (db->fail_unknown)
            apply = n;
        else if (db->fail_item >= 0)
            apply = (size_t)db->fail_item < n ? (size_t)db->fail_item : n;
        else
            apply = (size_t)db->fail_applied < n ? (size_t)db->fail_applied : n;
    }
    fk_apply(items, apply, touched, add);
    if (failing) {
        rc = fk_fail(c, add ? OP_INC : OP_SET, err);
        if (db->fail_unknown)
            TRIFLE_WRITE_RESULT_SET(res, 0, -1, 1);
        else
            TRIFLE_WRITE_RESULT_SET(res, apply, db->fail_item >= 0 ? (ptrdiff_t)apply : -1, 0);
    }
done:
    h->free(touched);
    return fk_unlock(h, rc, err);
}

static int fk_inc(trifle_conn *c, const trifle_entry *items, size_t n, trifle_write_result *res,
                  trifle_error *err)
{
    return fk_write(c, 1, items, n, res, err);
}

static int fk_set(trifle_conn *c, const trifle_entry *items, size_t n, trifle_write_result *res,
                  trifle_error *err)
{
    return fk_write(c, 0, items, n, res, err);
}

static fk_markrec *fk_mark_find(const fk_db *db, const char *name)
{
    fk_markrec *m;

    for (m = db->marks; m != NULL; m = m->next)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

/* ABI 1.1: the sets, the incs and the mark, all or nothing (see fake_driver.h for the faults). */
static int fk_write_marked(trifle_conn *c, const trifle_entry *set_items, size_t n_set,
                           const trifle_entry *inc_items, size_t n_inc, const trifle_mark *mark,
                           trifle_write_result *res, trifle_error *err)
{
    const trifle_host_api *h = c->host;
    fk_db *db = c->db;
    fk_bucket **touched = NULL;
    fk_markrec *m;
    size_t n = n_set + n_inc;
    int rc = 0, failing;

    (void)pthread_mutex_lock(&fk_lock);
    fk_count(c, OP_WRITE_MARKED, n,
             fk_leaves_of(set_items, n_set) + fk_leaves_of(inc_items, n_inc));
    if (mark == NULL || mark->name == NULL || mark->seq == 0) {
        h->error_set(err, TRIFLE_EINVAL, 0,
                     "fake: contract violation: write_marked without a mark");
        rc = TRIFLE_EINVAL;
        goto done;
    }
    if ((m = fk_mark_find(db, mark->name)) != NULL && mark->seq < m->seq) {
        h->error_set(err, TRIFLE_EINVAL, 0,
                     "fake: contract violation: mark of journal %s goes back from %llu to %llu",
                     mark->name, (unsigned long long)m->seq, (unsigned long long)mark->seq);
        rc = TRIFLE_EINVAL;
        goto done;
    }
    if ((n_set > 0 && (rc = fk_check_items(c, set_items, n_set, err)) != 0) ||
        (n_inc > 0 && (rc = fk_check_items(c, inc_items, n_inc, err)) != 0))
        goto done;
    if (n > 0 && (touched = h->alloc(n * sizeof(*touched))) == NULL) {
        rc = TRIFLE_ENOMEM;
        goto done;
    }
    /* phase 1 for both lists (a bucket may be in both) and the mark's record */
    if ((rc = fk_reserve(c, set_items, n_set, 0, touched, err)) != 0 ||
        (rc = fk_reserve(c, inc_items, n_inc, n_set, touched + n_set, err)) != 0)
        goto done;
    if (m == NULL) {
        if ((m = h->alloc(sizeof(*m))) == NULL || (m->name = fk_strdup(h, mark->name)) == NULL) {
            h->free(m);
            rc = TRIFLE_ENOMEM;
            goto done;
        }
        m->seq = 0;
        m->next = db->marks;
        db->marks = m;
    }
    failing = fk_should_fail(c, OP_WRITE_MARKED);
    if (failing && !db->fail_unknown) {
        /* all or nothing: fail_applied does not apply; fail_item only names the item */
        ptrdiff_t failed = db->fail_item >= 0 && (size_t)db->fail_item < n ? db->fail_item : -1;
        rc = fk_fail(c, OP_WRITE_MARKED, err);
        TRIFLE_WRITE_RESULT_SET(res, 0, failed, 0);
        goto done;
    }
    /* phase 2: sets, then incs, then the mark; nothing can fail */
    fk_apply(set_items, n_set, touched, 0);
    fk_apply(inc_items, n_inc, touched + n_set, 1);
    m->seq = mark->seq;
    if (failing) { /* fail_unknown: everything is stored, the reply is "lost" */
        rc = fk_fail(c, OP_WRITE_MARKED, err);
        TRIFLE_WRITE_RESULT_SET(res, 0, -1, 1);
    }
done:
    h->free(touched);
    return fk_unlock(h, rc, err);
}

static int fk_mark_read(trifle_conn *c, const char *name, uint64_t *seq, trifle_error *err)
{
    const fk_markrec *m;
    int rc = 0;

    (void)pthread_mutex_lock(&fk_lock);
    fk_count(c, OP_MARK_READ, 1, 0);
    *seq = 0;
    if (fk_should_fail(c, OP_MARK_READ))
        rc = fk_fail(c, OP_MARK_READ, err);
    else if ((m = fk_mark_find(c->db, name)) != NULL)
        *seq = m->seq;
    (void)pthread_mutex_unlock(&fk_lock);
    return rc;
}

/* Emit one stored leaf as the connection's knobs say. */
static int fk_emit_leaf(trifle_conn *c, trifle_sink *sink, size_t i, const fk_leaf *l)
{
    int rc;

    if (c->get_split) {
        if ((rc = c->host->emit(sink, i, l->path, l->value * 0.5)) != 0)
            return rc;
        return c->host->emit(sink, i, l->path, l->value * 0.5);
    }
    return c->host->emit(sink, i, l->path, l->value);
}

static int fk_get(trifle_conn *c, const trifle_bucket *buckets, size_t n, trifle_sink *sink,
                  trifle_error *err)
{
    const trifle_host_api *h = c->host;
    fk_bucket *b;
    size_t j, i, k, kk;
    char *key;
    int rc = 0;

    (void)pthread_mutex_lock(&fk_lock);
    fk_count(c, OP_GET, n, 0);
    if (fk_should_fail(c, OP_GET)) {
        rc = fk_fail(c, OP_GET, err);
        goto done;
    }
    if (c->get_misbehave != 0) {
        rc = h->emit(sink, c->get_misbehave == 1 ? n : 0, c->get_misbehave == 1 ? "x" : "", 1);
        goto done; /* a sloppy driver that ignores emit's answer */
    }
    for (j = 0; j < n && rc == 0; j++) {
        i = c->get_reverse ? n - 1 - j : j;
        if ((key = fk_bucket_key(c, &buckets[i])) == NULL) {
            rc = TRIFLE_ENOMEM;
            break;
        }
        b = fk_find(c->db, key, fk_hash(key));
        h->free(key);
        for (kk = 0; b != NULL && kk < b->n && rc == 0; kk++) {
            k = c->get_reverse ? b->n - 1 - kk : kk;
            if (!b->leaves[k].pending)
                rc = fk_emit_leaf(c, sink, i, &b->leaves[k]);
        }
    }
    if (rc != 0)
        h->error_set(err, rc, 0, rc == TRIFLE_ENOMEM ? "out of memory" : "fake: emit failed");
done:
    (void)pthread_mutex_unlock(&fk_lock);
    return rc;
}

static int fk_control(trifle_conn *c, const trifle_leaf *leaves, size_t n, trifle_error *err)
{
    fk_settings s;
    size_t i;
    int r;

    memset(&s, 0, sizeof(s));
    s.slow_inc_ms = -1;
    for (i = 0; i < n; i++) {
        if ((r = fk_setting(&s, leaves[i].path, NULL, leaves[i].value)) <= 0) {
            c->host->error_set(err, TRIFLE_EINVAL, 0, "fake: %s control %s",
                               r == 0 ? "unknown" : "invalid value for", leaves[i].path);
            return TRIFLE_EINVAL;
        }
    }
    (void)pthread_mutex_lock(&fk_lock);
    fk_settings_apply(c->host, c->db, &s);
    (void)pthread_mutex_unlock(&fk_lock);
    return 0;
}

static int fk_ping(trifle_conn *c, const char *key, int64_t at, const trifle_leaf *leaves, size_t n,
                   trifle_error *err)
{
    const trifle_host_api *h = c->host;
    fk_pingrec *p, **pp;
    fk_leaf *copy = NULL;
    size_t i = 0;
    int rc = 0;

    if (strcmp(key, FK_CONTROL_KEY) == 0)
        return fk_control(c, leaves, n, err);
    if (n > 0 && (copy = h->alloc(n * sizeof(*copy))) == NULL)
        goto oom;
    for (i = 0; i < n; i++) {
        copy[i].value = leaves[i].value;
        copy[i].pending = 0;
        if ((copy[i].path = fk_strdup(h, leaves[i].path)) == NULL)
            goto oom;
    }
    (void)pthread_mutex_lock(&fk_lock);
    fk_count(c, OP_PING, n, n);
    if (fk_should_fail(c, OP_PING)) {
        rc = fk_fail(c, OP_PING, err);
        (void)pthread_mutex_unlock(&fk_lock);
        fk_leaves_free(h, copy, n);
        return rc;
    }
    for (pp = &c->db->pings; *pp != NULL; pp = &(*pp)->next)
        if (strcmp((*pp)->key, key) == 0)
            break;
    if ((p = *pp) == NULL) {
        if ((p = h->alloc(sizeof(*p))) == NULL || (p->key = fk_strdup(h, key)) == NULL) {
            h->free(p);
            (void)pthread_mutex_unlock(&fk_lock);
            fk_leaves_free(h, copy, n);
            h->error_set(err, TRIFLE_ENOMEM, 0, "out of memory");
            return TRIFLE_ENOMEM;
        }
        p->leaves = NULL;
        p->n = 0;
        p->next = NULL;
        *pp = p;
    }
    fk_leaves_free(h, p->leaves, p->n);
    p->leaves = copy;
    p->n = n;
    p->at = at;
    (void)pthread_mutex_unlock(&fk_lock);
    return 0;
oom:
    fk_leaves_free(h, copy, i);
    h->error_set(err, TRIFLE_ENOMEM, 0, "out of memory");
    return TRIFLE_ENOMEM;
}

static int fk_emit_stats(trifle_conn *c, trifle_sink *sink)
{
    const trifle_host_api *h = c->host;
    const fk_db *db = c->db;
    static const char *const fields[] = {"calls", "items", "leaves", "failures"};
    char path[64];
    size_t op, f, k, n_stored = 0, i;
    unsigned long v;
    const fk_pingrec *p;
    const fk_bucket *b;
    int rc = 0;

    for (op = 0; op < N_OPS && rc == 0; op++) {
        const fk_stats *s = &db->stats[op];
        for (f = 0; f < 4 && rc == 0; f++) {
            v = f == 0 ? s->calls : f == 1 ? s->items : f == 2 ? s->leaves : s->failures;
            (void)snprintf(path, sizeof(path), "%s.%s", op_names[op], fields[f]);
            rc = h->emit(sink, 0, path, (double)v);
        }
        for (k = 0; k < s->calls && k < FK_BATCH_LOG && rc == 0; k++) {
            (void)snprintf(path, sizeof(path), "%s.batch.%zu", op_names[op], k);
            rc = h->emit(sink, 0, path, (double)s->batch[k]);
        }
    }
    for (i = 0; i < db->n_slots; i++)
        for (b = db->slots[i]; b != NULL; b = b->next)
            for (k = 0; k < b->n; k++)
                if (!b->leaves[k].pending) {
                    n_stored++;
                    break;
                }
    for (k = 0, p = db->pings; p != NULL; p = p->next)
        k++;
    if (rc == 0)
        rc = h->emit(sink, 0, "buckets", (double)n_stored);
    if (rc == 0)
        rc = h->emit(sink, 0, "pings", (double)k);
    return rc;
}

static int fk_scan(trifle_conn *c, const char *key, int64_t *at_out, trifle_sink *sink,
                   trifle_error *err)
{
    const trifle_host_api *h = c->host;
    const fk_pingrec *p;
    size_t i;
    int rc = 0;

    (void)pthread_mutex_lock(&fk_lock);
    if (strcmp(key, FK_STATS_KEY) == 0) {
        *at_out = 0;
        rc = fk_emit_stats(c, sink);
        goto done;
    }
    fk_count(c, OP_SCAN, 1, 0);
    if (fk_should_fail(c, OP_SCAN)) {
        rc = fk_fail(c, OP_SCAN, err);
        goto done;
    }
    for (p = c->db->pings; p != NULL; p = p->next)
        if (strcmp(p->key, key) == 0)
            break;
    if (p == NULL) {
        h->error_set(err, TRIFLE_ENOTFOUND, 0, "fake: no ping for %s", key);
        rc = TRIFLE_ENOTFOUND;
        goto done;
    }
    *at_out = p->at;
    for (i = 0; i < p->n && rc == 0; i++)
        rc = h->emit(sink, 0, p->leaves[i].path, p->leaves[i].value);
done:
    return fk_unlock(h, rc, err);
}

static const char *const fk_schemes[] = {"fake", NULL};

static const trifle_driver fk_driver = {
    TRIFLE_DRIVER_HEADER,
    .name = "fake",
    .version = "1.0.0",
    .caps = TRIFLE_CAP_MODE_PARTIAL | TRIFLE_CAP_MODE_SEPARATED | TRIFLE_CAP_PING | TRIFLE_CAP_TTL |
            TRIFLE_CAP_ATOMIC_BATCH | TRIFLE_CAP_SETUP | TRIFLE_CAP_EXACT_DOUBLES |
            TRIFLE_CAP_JOURNAL_MARK,
    .schemes = fk_schemes,
    .open = fk_open,
    .close = fk_close,
    .setup = fk_setup,
    .inc = fk_inc,
    .set = fk_set,
    .get = fk_get,
    .ping = fk_ping,
    .scan = fk_scan,
    .write_marked = fk_write_marked,
    .mark_read = fk_mark_read,
};

TRIFLE_DRIVER_DEFINE(fake, fk_driver)
