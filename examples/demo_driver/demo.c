/* demo.c: a complete trifle storage driver that keeps its data in memory (docs/driver-guide.md).
 *
 * URL `demo:<name>[?table=<t>]`. Everything written lives as long as the process, shared by all
 * connections of that process to the same name and table. It declares every identifier mode,
 * ping/scan, all-or-nothing batches and a real setup step, and passes trifle-conformance:
 *
 *     trifle-conformance --driver ./trifle_demo.so demo:memory
 *
 * A driver includes only <trifle/driver.h>, never links libtrifle, and takes everything it needs
 * from the host table: memory, errors, logging and result delivery. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <trifle/driver.h>

/* ---- the store ------------------------------------------------------------------------------ */

typedef struct leaf {
    char *path;
    double value;
    int live; /* 0: reserved by a write that did not finish; invisible */
} leaf;

typedef struct bucket {
    char *row; /* the identity: id, plus granularity and at in the modes that have them */
    leaf *leaves;
    size_t n, cap;
    struct bucket *next; /* hash chain */
} bucket;

typedef struct ping {
    char *key;
    int64_t at;
    leaf *leaves;
    size_t n;
    struct ping *next;
} ping;

/* One namespace: what `setup` creates and `drop` removes (a table, in SQL terms). */
typedef struct space {
    char *name;
    bucket **slots;
    size_t n_slots, n_buckets;
    ping *pings;
    struct space *next;
} space;

/* One lock for the whole store: a call is one transaction. */
static pthread_mutex_t store_lock = PTHREAD_MUTEX_INITIALIZER;
static space *spaces;

struct trifle_conn {
    const trifle_host_api *host;
    char *space; /* "<url>|<table>" */
    char *table;
    int mode; /* a trifle_id_mode */
};

static char *dup_str(const trifle_host_api *h, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = h->alloc(n);

    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

static uint64_t hash_str(const char *s)
{
    uint64_t x = 1469598103934665603u; /* FNV-1a */

    for (; *s != '\0'; s++)
        x = (x ^ (unsigned char)*s) * 1099511628211u;
    return x;
}

static space *space_find(const char *name)
{
    space *s;

    for (s = spaces; s != NULL && strcmp(s->name, name) != 0; s = s->next)
        ;
    return s;
}

static void leaves_free(const trifle_host_api *h, leaf *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        h->free(v[i].path);
    h->free(v);
}

static void space_free(const trifle_host_api *h, space *s)
{
    size_t i;

    for (i = 0; i < s->n_slots; i++)
        while (s->slots[i] != NULL) {
            bucket *b = s->slots[i];

            s->slots[i] = b->next;
            leaves_free(h, b->leaves, b->n);
            h->free(b->row);
            h->free(b);
        }
    while (s->pings != NULL) {
        ping *p = s->pings;

        s->pings = p->next;
        leaves_free(h, p->leaves, p->n);
        h->free(p->key);
        h->free(p);
    }
    h->free(s->slots);
    h->free(s->name);
    h->free(s);
}

/* The stored identity of a bucket: exactly the columns of the connection's mode (SPEC §3.2). */
static int row_of(const trifle_conn *c, const trifle_bucket *b, char *buf, size_t size)
{
    int n;

    if (c->mode == TRIFLE_ID_FULL)
        n = snprintf(buf, size, "%s", b->id);
    else if (c->mode == TRIFLE_ID_PARTIAL)
        n = snprintf(buf, size, "%s\x1f%lld", b->id, (long long)b->at);
    else
        n = snprintf(buf, size, "%s\x1f%s\x1f%lld", b->id, b->granularity, (long long)b->at);
    return n >= 0 && (size_t)n < size ? 0 : -1;
}

static bucket *bucket_find(const space *s, const char *row)
{
    bucket *b;

    if (s->n_slots == 0)
        return NULL;
    for (b = s->slots[hash_str(row) & (s->n_slots - 1)]; b != NULL; b = b->next)
        if (strcmp(b->row, row) == 0)
            return b;
    return NULL;
}

/* Find or create; NULL only when out of memory. A new bucket has no live leaf, so it is
 * invisible until a write completes. */
static bucket *bucket_reserve(const trifle_host_api *h, space *s, const char *row)
{
    bucket *b = bucket_find(s, row);
    size_t i;

    if (b != NULL)
        return b;
    if (s->n_buckets >= s->n_slots) { /* grow the table to keep chains short */
        size_t n = s->n_slots == 0 ? 64 : s->n_slots * 2;
        bucket **slots = h->alloc(n * sizeof(*slots));

        if (slots == NULL)
            return NULL;
        memset(slots, 0, n * sizeof(*slots));
        for (i = 0; i < s->n_slots; i++)
            while (s->slots[i] != NULL) {
                bucket *x = s->slots[i];

                s->slots[i] = x->next;
                x->next = slots[hash_str(x->row) & (n - 1)];
                slots[hash_str(x->row) & (n - 1)] = x;
            }
        h->free(s->slots);
        s->slots = slots;
        s->n_slots = n;
    }
    if ((b = h->alloc(sizeof(*b))) == NULL)
        return NULL;
    memset(b, 0, sizeof(*b));
    if ((b->row = dup_str(h, row)) == NULL) {
        h->free(b);
        return NULL;
    }
    b->next = s->slots[hash_str(row) & (s->n_slots - 1)];
    s->slots[hash_str(row) & (s->n_slots - 1)] = b;
    s->n_buckets++;
    return b;
}

static leaf *leaf_reserve(const trifle_host_api *h, bucket *b, const char *path)
{
    size_t i;

    for (i = 0; i < b->n; i++)
        if (strcmp(b->leaves[i].path, path) == 0)
            return &b->leaves[i];
    if (b->n == b->cap) {
        size_t cap = b->cap == 0 ? 4 : b->cap * 2;
        leaf *v = h->realloc(b->leaves, cap * sizeof(*v));

        if (v == NULL)
            return NULL;
        b->leaves = v;
        b->cap = cap;
    }
    if ((b->leaves[b->n].path = dup_str(h, path)) == NULL)
        return NULL;
    b->leaves[b->n].value = 0;
    b->leaves[b->n].live = 0;
    return &b->leaves[b->n++];
}

/* Callers hold store_lock. */
static space *space_ready(trifle_conn *c, trifle_error *err)
{
    space *s = space_find(c->space);

    if (s == NULL)
        c->host->error_set(err, TRIFLE_ECONFIG, 0, "table %s does not exist (run \"trifle setup\")",
                           c->table);
    return s;
}

/* ---- the operations ------------------------------------------------------------------------- */

/* ABI 1.3: the identifier mode arrives typed in params; opts are the URL's own parameters. */
static int demo_open(trifle_conn **out, const trifle_host_api *host, const char *url,
                     const trifle_open_params *params, const char *const *opts, trifle_error *err)
{
    trifle_conn *c;
    const char *table = "trifle_stats";
    size_t i, n;

    *out = NULL;
    if ((c = host->alloc(sizeof(*c))) == NULL)
        return TRIFLE_ENOMEM;
    memset(c, 0, sizeof(*c));
    c->host = host;
    *out = c;                  /* half-open from here on: close() accepts it */
    c->mode = params->id_mode; /* the separator is already inside the identifiers */
    for (i = 0; opts[i] != NULL && opts[i + 1] != NULL; i += 2) {
        const char *name = opts[i], *value = opts[i + 1];

        if (strcmp(name, "table") == 0)
            table = value;
        else {
            host->error_set(err, TRIFLE_ECONFIG, 0, "invalid driver URL: unknown parameter %s",
                            name);
            return TRIFLE_ECONFIG;
        }
    }
    n = strspn(table, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
    if (n == 0 || table[n] != '\0' || n > 58 || (table[0] >= '0' && table[0] <= '9')) {
        host->error_set(err, TRIFLE_ECONFIG, 0, "invalid table name: %s", table);
        return TRIFLE_ECONFIG;
    }
    n = strlen(url) + strlen(table) + 2;
    if ((c->table = dup_str(host, table)) == NULL || (c->space = host->alloc(n)) == NULL)
        return TRIFLE_ENOMEM;
    (void)snprintf(c->space, n, "%s|%s", url, table);
    return TRIFLE_OK;
}

static void demo_close(trifle_conn *c)
{
    if (c == NULL)
        return;
    c->host->free(c->space);
    c->host->free(c->table);
    c->host->free(c);
}

static int demo_setup(trifle_conn *c, trifle_error *err)
{
    space *s;
    int rc = TRIFLE_OK;

    pthread_mutex_lock(&store_lock);
    if (space_find(c->space) == NULL) {
        if ((s = c->host->alloc(sizeof(*s))) == NULL) {
            rc = TRIFLE_ENOMEM;
        } else {
            memset(s, 0, sizeof(*s));
            if ((s->name = dup_str(c->host, c->space)) == NULL) {
                c->host->free(s);
                rc = TRIFLE_ENOMEM;
            } else {
                s->next = spaces;
                spaces = s;
            }
        }
    }
    pthread_mutex_unlock(&store_lock);
    if (rc != TRIFLE_OK)
        c->host->error_set(err, rc, 0, "out of memory");
    return rc;
}

/* inc and set: reserve every bucket and leaf first (the only step that can fail), then apply.
 * A failure therefore changes nothing visible: the batch is all-or-nothing. */
static int write_items(trifle_conn *c, const trifle_entry *items, size_t n, int set,
                       trifle_write_result *res, trifle_error *err)
{
    char row[1024];
    space *s;
    size_t i, k;
    int rc = TRIFLE_OK;

    pthread_mutex_lock(&store_lock);
    if ((s = space_ready(c, err)) == NULL) {
        rc = TRIFLE_ECONFIG;
        goto done;
    }
    for (i = 0; i < n && rc == TRIFLE_OK; i++) {
        bucket *b;

        if (row_of(c, &items[i].bucket, row, sizeof(row)) != 0) {
            c->host->error_set(err, TRIFLE_EINVAL, 0, "identifier too long: %s",
                               items[i].bucket.id);
            rc = TRIFLE_EINVAL;
        } else if ((b = bucket_reserve(c->host, s, row)) == NULL) {
            rc = TRIFLE_ENOMEM;
        } else {
            for (k = 0; k < items[i].n_leaves && rc == TRIFLE_OK; k++)
                if (leaf_reserve(c->host, b, items[i].leaves[k].path) == NULL)
                    rc = TRIFLE_ENOMEM;
        }
    }
    if (rc == TRIFLE_ENOMEM)
        c->host->error_set(err, rc, 0, "out of memory");
    for (i = 0; i < n && rc == TRIFLE_OK; i++) {
        bucket *b;

        (void)row_of(c, &items[i].bucket, row, sizeof(row));
        b = bucket_find(s, row);
        for (k = 0; k < items[i].n_leaves; k++) {
            leaf *l = leaf_reserve(c->host, b, items[i].leaves[k].path); /* found, no alloc */
            double v = items[i].leaves[k].value;

            l->value = set || !l->live ? v : l->value + v;
            l->live = 1;
        }
    }
done:
    pthread_mutex_unlock(&store_lock);
    if (rc != TRIFLE_OK)
        TRIFLE_WRITE_RESULT_SET(res, 0, -1, 0);
    return rc;
}

static int demo_inc(trifle_conn *c, const trifle_entry *items, size_t n, trifle_write_result *res,
                    trifle_error *err)
{
    return write_items(c, items, n, 0, res, err);
}

static int demo_set(trifle_conn *c, const trifle_entry *items, size_t n, trifle_write_result *res,
                    trifle_error *err)
{
    return write_items(c, items, n, 1, res, err);
}

static int emit_leaves(trifle_conn *c, trifle_sink *sink, size_t index, const leaf *v, size_t n)
{
    size_t k;
    int rc;

    for (k = 0; k < n; k++)
        if (v[k].live && (rc = c->host->emit(sink, index, v[k].path, v[k].value)) != 0)
            return rc;
    return TRIFLE_OK;
}

static int demo_get(trifle_conn *c, const trifle_bucket *buckets, size_t n, trifle_sink *sink,
                    trifle_error *err)
{
    char row[1024];
    space *s;
    size_t i;
    int rc = TRIFLE_OK;

    pthread_mutex_lock(&store_lock);
    if ((s = space_ready(c, err)) == NULL)
        rc = TRIFLE_ECONFIG;
    for (i = 0; i < n && rc == TRIFLE_OK; i++) {
        const bucket *b =
            row_of(c, &buckets[i], row, sizeof(row)) == 0 ? bucket_find(s, row) : NULL;

        if (b != NULL) /* a missing bucket emits nothing */
            rc = emit_leaves(c, sink, i, b->leaves, b->n);
    }
    pthread_mutex_unlock(&store_lock);
    return rc;
}

static int demo_ping(trifle_conn *c, const char *key, int64_t at, const trifle_leaf *leaves,
                     size_t n, trifle_error *err)
{
    leaf *v = NULL;
    space *s;
    ping *p;
    size_t i;
    int rc = TRIFLE_OK;

    pthread_mutex_lock(&store_lock);
    if ((s = space_ready(c, err)) == NULL) {
        rc = TRIFLE_ECONFIG;
        goto done;
    }
    /* build the new ping completely, then replace the old one: nothing of it is kept */
    if (n > 0 && (v = c->host->alloc(n * sizeof(*v))) == NULL)
        rc = TRIFLE_ENOMEM;
    for (i = 0; i < n && rc == TRIFLE_OK; i++) {
        if ((v[i].path = dup_str(c->host, leaves[i].path)) == NULL) {
            leaves_free(c->host, v, i);
            v = NULL;
            rc = TRIFLE_ENOMEM;
            break;
        }
        v[i].value = leaves[i].value;
        v[i].live = 1;
    }
    if (rc != TRIFLE_OK)
        goto done;
    for (p = s->pings; p != NULL && strcmp(p->key, key) != 0; p = p->next)
        ;
    if (p == NULL) {
        if ((p = c->host->alloc(sizeof(*p))) == NULL || (p->key = dup_str(c->host, key)) == NULL) {
            c->host->free(p);
            leaves_free(c->host, v, n);
            rc = TRIFLE_ENOMEM;
            goto done;
        }
        p->leaves = NULL;
        p->n = 0;
        p->next = s->pings;
        s->pings = p;
    }
    leaves_free(c->host, p->leaves, p->n);
    p->leaves = v;
    p->n = n;
    p->at = at;
done:
    pthread_mutex_unlock(&store_lock);
    if (rc == TRIFLE_ENOMEM)
        c->host->error_set(err, rc, 0, "out of memory");
    return rc;
}

static int demo_scan(trifle_conn *c, const char *key, int64_t *at_out, trifle_sink *sink,
                     trifle_error *err)
{
    space *s;
    const ping *p = NULL;
    int rc = TRIFLE_OK;

    pthread_mutex_lock(&store_lock);
    if ((s = space_ready(c, err)) == NULL)
        rc = TRIFLE_ECONFIG;
    else
        for (p = s->pings; p != NULL && strcmp(p->key, key) != 0; p = p->next)
            ;
    if (rc == TRIFLE_OK && p == NULL) {
        c->host->error_set(err, TRIFLE_ENOTFOUND, 0, "no ping for %s", key);
        rc = TRIFLE_ENOTFOUND;
    }
    if (rc == TRIFLE_OK) {
        *at_out = p->at;
        rc = emit_leaves(c, sink, 0, p->leaves, p->n);
    }
    pthread_mutex_unlock(&store_lock);
    return rc;
}

static int demo_drop(trifle_conn *c, trifle_error *err)
{
    space **pp;

    (void)err;
    pthread_mutex_lock(&store_lock);
    for (pp = &spaces; *pp != NULL; pp = &(*pp)->next)
        if (strcmp((*pp)->name, c->space) == 0) {
            space *s = *pp;

            *pp = s->next;
            space_free(c->host, s);
            break;
        }
    pthread_mutex_unlock(&store_lock);
    return TRIFLE_OK;
}

/* ---- the plugin ----------------------------------------------------------------------------- */

static const char *const demo_schemes[] = {"demo", NULL};

static const trifle_driver demo_driver = {
    TRIFLE_DRIVER_HEADER,
    .name = "demo",
    .version = "1.0.0",
    .caps = TRIFLE_CAP_MODE_PARTIAL | TRIFLE_CAP_MODE_SEPARATED | TRIFLE_CAP_PING |
            TRIFLE_CAP_ATOMIC_BATCH | TRIFLE_CAP_SETUP | TRIFLE_CAP_EXACT_DOUBLES,
    .schemes = demo_schemes,
    .open_params = demo_open,
    .close = demo_close,
    .setup = demo_setup,
    .inc = demo_inc,
    .set = demo_set,
    .get = demo_get,
    .ping = demo_ping,
    .scan = demo_scan,
    .drop = demo_drop,
};

TRIFLE_DRIVER_DEFINE(demo, demo_driver)
