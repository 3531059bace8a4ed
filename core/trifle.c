/* The stats handle: configuration → driver connection, and the five operations of SPEC §5.
 *
 * A write of key K at instant `at` becomes, for every configured granularity G, one data item on
 * (K, G, floor(at, G)) and — with system tracking — one system item on (__system__key__, G, ...)
 * carrying {count: 1, keys.<tk>: 1} (SPEC §3.3, §3.4). Items are sorted by identifier (byte order)
 * before they reach the driver, so concurrent writers touch rows in the same order (no deadlocks in
 * PostgreSQL) and a flush is deterministic.
 *
 * The identifiers of one write never coincide: labels differ before the first separator, and a
 * label that is a prefix of another (`1m`, `1mo`) would need the separator to start with the
 * unit's tail followed by digits. Coinciding identifiers of *different* keys (ERRATA minor 16) can
 * only meet in the buffer, which keys its pending state by the stored identity. */
#include "trifle/trifle.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_int.h"
#include "buffer_int.h"
#include "pool_int.h"
#include "config_int.h"
#include "error_int.h"
#include "json_int.h"
#include "key_int.h"
#include "payload_int.h"
#include "series_int.h"
#include "storage_int.h"
#include "struct_int.h"
#include "thread_int.h"
#include "trifle_int.h"

#define SYSTEM_KEY "__system__key__"
#define UNTRACKED_KEY "__untracked__"

struct trifle {
    trifle_config *cfg; /* effective configuration (URL parameters applied) */
    trifle_zone *zone;
    trifle_storage *st;
    trifle__pool *pool;     /* the driver connections; a connection sees one thread at a time */
    trifle__buffer *buffer; /* NULL when buffer.enabled is false */
    _Atomic int closed;
};

/* ---------------------------------------------------------------------------------------------
 * Lifecycle */

static int check_open(const trifle *t, trifle_error *err)
{
    if (t == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument");
    if (atomic_load(&t->closed))
        return trifle__error(err, TRIFLE_ECLOSED, "buffer is closed");
    return 0;
}

int trifle_open(trifle **out, const trifle_config *cfg, trifle_error *err)
{
    trifle *t = NULL;
    trifle_storage_options so = TRIFLE_STORAGE_OPTIONS_INIT;
    int rc, st_tracking;

    if (out == NULL || cfg == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument");
    *out = NULL;
    if ((rc = trifle__config_validate(cfg, err)) != 0)
        return rc;
    if ((t = trifle__calloc(1, sizeof(*t))) == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    if ((rc = trifle_config_dup(&t->cfg, cfg, err)) != 0)
        goto fail;
    if ((rc = trifle_zone_open(&t->zone, trifle_config_get(cfg, "time_zone"), err)) != 0)
        goto fail;
    so.joined = t->cfg->joined;
    so.separator = trifle_config_get(cfg, "separator");
    so.driver_path = trifle_config_get(cfg, "driver_path");
    if (t->cfg->connections > 1 &&
        strncmp(trifle_config_get(cfg, "driver"), "sqlite::memory:", 15) == 0) {
        rc = trifle__error(err, TRIFLE_ECONFIG,
                           "invalid option connections: %lld with sqlite::memory:, where every "
                           "connection is a database of its own (use 1, or a file)",
                           (long long)t->cfg->connections);
        goto fail;
    }
    if ((rc = trifle_storage_open(&t->st, trifle_config_get(cfg, "driver"), &so, err)) != 0)
        goto fail;
    /* URL parameter > configuration > default (ERRATA I8): record the effective values */
    t->cfg->joined = trifle_storage_mode(t->st);
    if ((rc = trifle_config_set(t->cfg, "joined", trifle__config_mode_name(t->cfg->joined), err)) !=
            0 ||
        (rc = trifle_config_set(t->cfg, "separator", trifle_storage_separator(t->st), err)) != 0)
        goto fail;
    st_tracking = trifle_storage_system_tracking(t->st);
    if (st_tracking >= 0 && (rc = trifle_config_set(t->cfg, "system_tracking",
                                                    st_tracking ? "true" : "false", err)) != 0)
        goto fail;
    /* the others open with the effective settings, so they resolve exactly like the first */
    so.joined = t->cfg->joined;
    so.separator = trifle_config_get(t->cfg, "separator");
    so.driver_path = trifle_config_get(t->cfg, "driver_path");
    rc = trifle__pool_new(&t->pool, t->st, trifle_config_get(t->cfg, "driver"), &so,
                          (size_t)t->cfg->connections, err);
    if (rc != 0) {
        t->st = NULL; /* the pool closed it */
        goto fail;
    }
    if (t->cfg->buffer.enabled) {
        trifle__buffer_env env;
        env.st = t->st;
        env.pool = t->pool;
        env.grans = t->cfg->grans;
        env.n_grans = t->cfg->n_grans;
        env.zone = t->zone;
        env.week_start = t->cfg->week_start;
        env.system_tracking = t->cfg->system_tracking;
        env.opt = &t->cfg->buffer;
        env.journal_dir = trifle_config_get(t->cfg, "buffer.journal");
        if ((rc = trifle__buffer_new(&t->buffer, &env, err)) != 0)
            goto fail;
    }
    *out = t;
    return 0;
fail:
    if (t->pool != NULL)
        trifle__pool_free(t->pool);
    else
        trifle_storage_close(t->st);
    trifle_zone_free(t->zone);
    trifle_config_free(t->cfg);
    trifle__free(t);
    return rc;
}

int trifle_close(trifle *t, trifle_error *err)
{
    int expected = 0, rc = 0;

    if (t == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument");
    if (!atomic_compare_exchange_strong(&t->closed, &expected, 1))
        return trifle__error(err, TRIFLE_ECLOSED, "buffer is closed");
    if (t->buffer != NULL)
        rc = trifle__buffer_close(t->buffer, err); /* final flush, with retries */
    trifle__pool_close(t->pool);                   /* waits for calls in progress */
    t->st = NULL;
    return rc;
}

void trifle__abandon(trifle *t)
{
    if (t == NULL)
        return;
    atomic_store(&t->closed, 1);
    trifle__buffer_free(
        t->buffer); /* stops the flush thread, writes nothing, unlocks the journal */
    t->buffer = NULL;
    trifle__pool_close(t->pool);
    t->st = NULL;
    trifle_free(t);
}

void trifle_free(trifle *t)
{
    if (t == NULL)
        return;
    if (!atomic_load(&t->closed))
        (void)trifle_close(t, NULL);
    trifle__buffer_free(t->buffer);
    trifle__pool_free(t->pool);
    trifle_zone_free(t->zone);
    trifle_config_free(t->cfg);
    trifle__free(t);
}

int trifle_setup(trifle *t, trifle_error *err)
{
    trifle_storage *st;
    int rc;

    if ((rc = check_open(t, err)) != 0)
        return rc;
    if ((rc = trifle__pool_get(t->pool, &st, err)) != 0)
        return rc;
    rc = trifle_storage_setup(st, err);
    trifle__pool_put(t->pool, st, rc);
    return rc;
}

int trifle_flush(trifle *t, trifle_error *err)
{
    int rc;

    if ((rc = check_open(t, err)) != 0 || t->buffer == NULL)
        return rc;
    return trifle__buffer_flush(t->buffer, err);
}

/* trifle_buffer_counters as libtrifle 1.0 had it: the smallest struct_size accepted */
#define TRIFLE__BUFFER_COUNTERS_SIZE_1 TRIFLE__SIZE_THROUGH(trifle_buffer_counters, rejected_full)

int trifle_buffer_stats(const trifle *t, trifle_buffer_counters *out)
{
    trifle_buffer_counters c = TRIFLE_BUFFER_COUNTERS_INIT;

    if (t == NULL || out == NULL || out->struct_size < TRIFLE__BUFFER_COUNTERS_SIZE_1)
        return TRIFLE_EINVAL;
    if (t->buffer != NULL)
        trifle__buffer_get_stats(t->buffer, &c);
    trifle__struct_out(out, &c, sizeof(c));
    return 0;
}

void trifle_set_error_handler(trifle *t, trifle_error_handler fn, void *payload)
{
    if (t != NULL && t->buffer != NULL)
        trifle__buffer_set_error_handler(t->buffer, fn, payload);
}

const trifle_zone *trifle_get_zone(const trifle *t)
{
    return t == NULL ? NULL : t->zone;
}

const trifle_config *trifle_get_config(const trifle *t)
{
    return t == NULL ? NULL : t->cfg;
}

size_t trifle_describe(const trifle *t, char *buf, size_t size)
{
    if (t == NULL || t->st == NULL) {
        if (size > 0)
            buf[0] = '\0';
        return 0;
    }
    return trifle_storage_describe(t->st, buf, size);
}

const char *trifle_driver_name(const trifle *t)
{
    return t == NULL || t->st == NULL ? NULL : trifle_storage_driver(t->st)->name;
}

/* ---------------------------------------------------------------------------------------------
 * Write path */

/* Identifier strings of one write live in one arena; items point into it. */
typedef struct write_plan {
    trifle_entry *items;
    size_t n;
    char *arena;
    trifle_leaf system_leaves[2];
    char *tracking_path; /* "keys.<tk>" */
} write_plan;

static void plan_free(write_plan *p)
{
    trifle__free(p->items);
    trifle__free(p->arena);
    trifle__free(p->tracking_path);
    memset(p, 0, sizeof(*p));
}

/* Items sort by identifier string, then granularity label, then bucket start: a total order
 * that is the storage identity's order in every mode. */
static int item_cmp(const void *a, const void *b)
{
    const trifle_bucket *x = &((const trifle_entry *)a)->bucket;
    const trifle_bucket *y = &((const trifle_entry *)b)->bucket;

    return trifle__identity_cmp(x->id, x->granularity, x->at, y->id, y->granularity, y->at);
}

/* Data items (with_data) and/or system items (with_system) of one write, sorted and merged. */
static int plan_build(trifle *t, write_plan *p, const char *key, int64_t at,
                      const trifle_payload *values, unsigned flags, int with_data, int with_system,
                      trifle_error *err)
{
    const trifle_config *cfg = t->cfg;
    size_t g, keylen = strlen(key), idcap, off = 0, per;
    int rc;

    memset(p, 0, sizeof(*p));
    per = (with_data ? 1 : 0) + (with_system ? 1 : 0);
    if ((p->items = trifle__calloc(cfg->n_grans * per, sizeof(*p->items))) == NULL)
        goto oom;
    /* longest identifier: prefix-less "key<sep>G<sep>-unix" for the longer of key / system key */
    idcap = (keylen > sizeof(SYSTEM_KEY) ? keylen : sizeof(SYSTEM_KEY)) + 2 * 16 + 32 + 24;
    if ((p->arena = trifle__calloc(cfg->n_grans * per, idcap)) == NULL)
        goto oom;
    if (with_system) {
        const char *tk = (flags & TRIFLE_UNTRACKED) ? UNTRACKED_KEY : key;
        size_t tl = strlen(tk);
        if ((p->tracking_path = trifle__malloc(5 + tl + 1)) == NULL)
            goto oom;
        memcpy(p->tracking_path, "keys.", 5);
        memcpy(p->tracking_path + 5, tk, tl + 1);
        p->system_leaves[0].path = "count";
        p->system_leaves[0].value = 1;
        p->system_leaves[1].path = p->tracking_path;
        p->system_leaves[1].value = 1;
    }
    for (g = 0; g < cfg->n_grans; g++) {
        int64_t bucket;
        int pass;

        if ((rc = trifle_floor(&bucket, t->zone, cfg->week_start, &cfg->grans[g], at, err)) != 0)
            goto fail;
        for (pass = 0; pass < 2; pass++) {
            trifle_entry *e;
            const char *k;

            if ((pass == 0 && !with_data) || (pass == 1 && !with_system))
                continue;
            k = pass == 0 ? key : SYSTEM_KEY;
            e = &p->items[p->n++];
            e->bucket.key = k;
            e->bucket.granularity = cfg->grans[g].label;
            e->bucket.at = bucket;
            e->bucket.id = p->arena + off;
            if (trifle_storage_identifier(t->st, p->arena + off, idcap, k, cfg->grans[g].label,
                                          bucket) >= idcap) {
                rc = trifle__error(err, TRIFLE_ERROR, "identifier too long");
                goto fail;
            }
            off += idcap;
            if (pass == 0) {
                e->leaves = trifle_payload_leaves(values);
                e->n_leaves = trifle_payload_count(values);
            } else {
                e->leaves = p->system_leaves;
                e->n_leaves = 2;
            }
        }
    }
    qsort(p->items, p->n, sizeof(*p->items), item_cmp);
    return 0;
oom:
    rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
fail:
    plan_free(p);
    return rc;
}

static int write_check(trifle *t, const trifle_payload *values, trifle_error *err)
{
    int rc;

    if ((rc = check_open(t, err)) != 0)
        return rc;
    if (values == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "values must be an object");
    return 0;
}

/* One driver call on a connection of the pool. */
static int storage_write(trifle *t, int add, const write_plan *p, trifle_error *err)
{
    trifle_write_result res;
    trifle_storage *st;
    int rc;

    memset(&res, 0, sizeof(res));
    res.struct_size = sizeof(res);
    res.failed_item = -1;
    if ((rc = trifle__pool_get(t->pool, &st, err)) != 0)
        return rc;
    rc = add ? trifle_storage_inc(st, p->items, p->n, &res, err)
             : trifle_storage_set(st, p->items, p->n, &res, err);
    trifle__pool_put(t->pool, st, rc);
    return rc;
}

/* A driver with TRIFLE_CAP_CALLS: the call as made, one driver call per track/assert. Nothing is
 * bucketed here and no system item is built: whoever buckets the call keeps the system key. */
static int calls_write(trifle *t, const char *key, int64_t at, const trifle_payload *values,
                       unsigned flags, int is_track, trifle_error *err)
{
    trifle_write_result res;
    trifle_storage *st;
    trifle_call call;
    int rc;

    call.key = key;
    call.at = at;
    call.op = is_track ? TRIFLE_CALL_TRACK : TRIFLE_CALL_ASSERT;
    call.flags = (flags & TRIFLE_UNTRACKED) ? TRIFLE_CALL_UNTRACKED : 0;
    call.leaves = trifle_payload_leaves(values);
    call.n_leaves = trifle_payload_count(values);
    call.origin = NULL; /* not journaled: the buffer is off */
    call.seq = 0;
    memset(&res, 0, sizeof(res));
    res.struct_size = sizeof(res);
    res.failed_item = -1;
    if ((rc = trifle__pool_get(t->pool, &st, err)) != 0)
        return rc;
    rc = trifle__storage_calls(st, &call, 1, &res, err);
    trifle__pool_put(t->pool, st, rc);
    return rc;
}

static int write_op(trifle *t, const char *key, int64_t at, const trifle_payload *values,
                    unsigned flags, int is_track, const void *note, size_t note_len,
                    trifle_error *err)
{
    write_plan p;
    int rc, tracking;

    if ((rc = write_check(t, values, err)) != 0)
        return rc;
    /* the buffer checks the key itself, once per change of key */
    if (t->buffer != NULL && values->n > 0)
        return note != NULL ? trifle__buffer_add_noted(t->buffer, key, at, values, flags, is_track,
                                                       note, note_len, err)
                            : trifle__buffer_add(t->buffer, key, at, values, flags, is_track, err);
    if ((rc = trifle__key_check(key, 1, err)) != 0)
        return rc;
    if (trifle_payload_count(values) == 0)
        return 0; /* {} writes nothing, system item included (SPEC §3.4) */
    if (trifle__storage_takes_calls(t->st))
        return calls_write(t, key, at, values, flags, is_track, err);
    tracking = t->cfg->system_tracking;
    if (is_track) {
        /* data and system items in one inc batch: one transaction */
        if ((rc = plan_build(t, &p, key, at, values, flags, 1, tracking, err)) != 0)
            return rc;
        rc = storage_write(t, 1, &p, err);
        plan_free(&p);
        return rc;
    }
    /* assert: data items replace (set), system items add (inc) — two calls (ERRATA I17) */
    if ((rc = plan_build(t, &p, key, at, values, flags, 1, 0, err)) != 0)
        return rc;
    rc = storage_write(t, 0, &p, err);
    plan_free(&p);
    if (rc != 0 || !tracking)
        return rc;
    if ((rc = plan_build(t, &p, key, at, values, flags, 0, 1, err)) != 0)
        return rc;
    rc = storage_write(t, 1, &p, err);
    plan_free(&p);
    return rc;
}

int trifle_track(trifle *t, const char *key, int64_t at, const trifle_payload *values,
                 unsigned flags, trifle_error *err)
{
    return write_op(t, key, at, values, flags, 1, NULL, 0, err);
}

int trifle_assert(trifle *t, const char *key, int64_t at, const trifle_payload *values,
                  unsigned flags, trifle_error *err)
{
    return write_op(t, key, at, values, flags, 0, NULL, 0, err);
}

int trifle_write_noted(trifle *t, int assert_op, const char *key, int64_t at,
                       const trifle_payload *values, unsigned flags, const void *note,
                       size_t note_len, trifle_error *err)
{
    if (note == NULL || note_len == 0 || note_len > UINT16_MAX)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: a note is 1 to 65535 bytes");
    return write_op(t, key, at, values, flags, !assert_op, note, note_len, err);
}

/* ---------------------------------------------------------------------------------------------
 * Read path */

/* A growing list of leaves whose paths are copied into one string arena. While collecting, a
 * leaf's path holds its offset in the arena (the arena may move); leafvec_settle() turns offsets
 * into pointers. */
typedef struct leafvec {
    trifle_leaf *leaves;
    size_t n, cap;
    char *strings;
    size_t slen, scap;
} leafvec;

static int leafvec_push(leafvec *v, const char *path, double value)
{
    size_t plen = strlen(path) + 1;

    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        trifle_leaf *l = trifle__reallocarray(v->leaves, cap, sizeof(*l));
        if (l == NULL)
            return TRIFLE_ENOMEM;
        v->leaves = l;
        v->cap = cap;
    }
    if (v->slen + plen > v->scap) {
        size_t cap = v->scap ? v->scap * 2 : 256;
        char *s;
        while (cap < v->slen + plen)
            cap *= 2;
        if ((s = trifle__realloc(v->strings, cap)) == NULL)
            return TRIFLE_ENOMEM;
        v->strings = s;
        v->scap = cap;
    }
    memcpy(v->strings + v->slen, path, plen);
    /* an offset into v->strings until the array stops growing (made a pointer then), so a
     * realloc of strings moves nothing: NOLINTNEXTLINE(performance-no-int-to-ptr) */
    v->leaves[v->n].path = (const char *)(uintptr_t)v->slen;
    v->leaves[v->n].value = value;
    v->slen += plen;
    v->n++;
    return 0;
}

static void leafvec_settle(leafvec *v)
{
    size_t i;

    for (i = 0; i < v->n; i++)
        v->leaves[i].path = v->strings + (uintptr_t)v->leaves[i].path;
}

static void leafvec_clear(leafvec *v)
{
    v->n = 0;
    v->slen = 0;
}

static void leafvec_free(leafvec *v)
{
    trifle__free(v->leaves);
    trifle__free(v->strings);
    memset(v, 0, sizeof(*v));
}

/* Collects the leaves of one bucket at a time (storage delivers them grouped by index, paths
 * sorted) and turns each group into a row. */
typedef struct row_collector {
    trifle_series *s;
    size_t current; /* index being collected, SIZE_MAX = none */
    leafvec v;
} row_collector;

static int collector_finish_group(row_collector *c)
{
    cJSON *row;

    if (c->current == SIZE_MAX)
        return 0;
    leafvec_settle(&c->v);
    row = trifle__json_unpack(c->v.leaves, c->v.n);
    if (row == NULL)
        return TRIFLE_ENOMEM;
    cJSON_Delete(c->s->rows[c->current]);
    c->s->rows[c->current] = row;
    leafvec_clear(&c->v);
    c->current = SIZE_MAX;
    return 0;
}

static int collect_leaf(size_t index, const char *path, double value, void *payload)
{
    row_collector *c = payload;

    if (index >= c->s->n)
        return TRIFLE_ERROR;
    if (index != c->current) {
        if (collector_finish_group(c) != 0)
            return TRIFLE_ENOMEM;
        c->current = index;
    }
    return leafvec_push(&c->v, path, value);
}

static int series_skip_blanks(trifle_series **s, trifle_error *err)
{
    trifle_series *in = *s, *out = NULL;
    size_t i, kept = 0;
    int rc;

    for (i = 0; i < in->n; i++)
        if (cJSON_GetArraySize(in->rows[i]) > 0)
            kept++;
    if ((rc = trifle__series_new(&out, kept, err)) != 0)
        return rc;
    for (kept = 0, i = 0; i < in->n; i++) {
        if (cJSON_GetArraySize(in->rows[i]) == 0)
            continue;
        out->at[kept] = in->at[i];
        out->rows[kept++] = in->rows[i];
        in->rows[i] = NULL;
    }
    trifle_series_free(in);
    *s = out;
    return 0;
}

int trifle_values(trifle *t, trifle_series **out, const char *key, int64_t from, int64_t to,
                  const char *granularity, int skip_blanks, trifle_error *err)
{
    trifle_storage *st;
    trifle_granularity g;
    int64_t *timeline = NULL;
    size_t n = 0, i, idcap, off = 0;
    trifle_bucket *buckets = NULL;
    char *ids = NULL;
    trifle_series *s = NULL;
    row_collector c;
    int rc;

    memset(&c, 0, sizeof(c));
    c.current = SIZE_MAX;
    if (out == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument");
    *out = NULL;
    if ((rc = check_open(t, err)) != 0 || (rc = trifle__key_check(key, 0, err)) != 0)
        return rc;
    if (granularity == NULL || trifle_granularity_parse(&g, granularity, NULL) != 0)
        return trifle__error(err, TRIFLE_EINVAL, "invalid granularity: %s",
                             granularity ? granularity : "");
    if ((rc = trifle_timeline(&timeline, &n, t->zone, t->cfg->week_start, &g, from, to,
                              (size_t)t->cfg->max_points, err)) != 0)
        return rc;
    /* read-your-writes (SPEC §5.3, ERRATA I6) */
    if (n > 0 && t->buffer != NULL &&
        (rc = trifle__buffer_flush_for_read(t->buffer, key, g.label, err)) != 0)
        goto done;
    if ((rc = trifle__series_new(&s, n, err)) != 0)
        goto done;
    for (i = 0; i < n; i++) {
        s->at[i] = timeline[i];
        if ((s->rows[i] = cJSON_CreateObject()) == NULL)
            goto oom;
    }
    if (n > 0) {
        idcap = strlen(key) + 2 * 16 + sizeof(g.label) + 24;
        if ((buckets = trifle__calloc(n, sizeof(*buckets))) == NULL ||
            (ids = trifle__calloc(n, idcap)) == NULL)
            goto oom;
        for (i = 0; i < n; i++, off += idcap) {
            buckets[i].id = ids + off;
            buckets[i].key = key;
            buckets[i].granularity = g.label;
            buckets[i].at = timeline[i];
            (void)trifle_storage_identifier(t->st, ids + off, idcap, key, g.label, timeline[i]);
        }
        c.s = s;
        if ((rc = trifle__pool_get(t->pool, &st, err)) == 0) {
            rc = trifle_storage_get(st, buckets, n, collect_leaf, &c, err);
            trifle__pool_put(t->pool, st, rc);
        }
        if (rc == 0 && collector_finish_group(&c) != 0)
            goto oom;
        if (rc == TRIFLE_ENOMEM && err != NULL && err->message[0] == '\0')
            (void)trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        if (rc != 0)
            goto done;
    }
    if (skip_blanks && (rc = series_skip_blanks(&s, err)) != 0)
        goto done;
    *out = s;
    s = NULL;
    goto done;
oom:
    rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
done:
    trifle_series_free(s);
    trifle__free(timeline);
    trifle__free(buckets);
    trifle__free(ids);
    leafvec_free(&c.v);
    return rc;
}

int trifle__answers_queries(const trifle *t)
{
    return t != NULL && trifle__storage_answers_queries(t->st);
}

int trifle__query_remote(trifle *t, const char *key, const char *granularity, const char *request,
                         size_t len, trifle_answer_fn fn, void *ctx, trifle_error *err)
{
    trifle_storage *st;
    trifle_granularity g;
    int rc;

    if ((rc = check_open(t, err)) != 0)
        return rc;
    if (granularity == NULL || trifle_granularity_parse(&g, granularity, NULL) != 0)
        return trifle__error(err, TRIFLE_EINVAL, "invalid granularity: %s",
                             granularity ? granularity : "");
    /* read-your-writes (SPEC §5.3, ERRATA I6), as trifle_values() */
    if (t->buffer != NULL &&
        (rc = trifle__buffer_flush_for_read(t->buffer, key, g.label, err)) != 0)
        return rc;
    if ((rc = trifle__pool_get(t->pool, &st, err)) != 0)
        return rc;
    rc = trifle__storage_query(st, request, len, fn, ctx, err);
    trifle__pool_put(t->pool, st, rc);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Pings */

int trifle_beam(trifle *t, const char *key, int64_t at, const trifle_payload *values,
                trifle_error *err)
{
    trifle_storage *st;
    trifle_granularity one_second;
    int64_t check;
    int rc;

    if ((rc = write_check(t, values, err)) != 0 || (rc = trifle__key_check(key, 1, err)) != 0)
        return rc;
    /* the instant is stored as given (not floored); flooring to 1s only checks its range */
    (void)trifle_granularity_parse(&one_second, "1s", NULL);
    if ((rc = trifle_floor(&check, NULL, TRIFLE_MONDAY, &one_second, at, err)) != 0)
        return rc;
    if ((rc = trifle__pool_get(t->pool, &st, err)) != 0)
        return rc;
    rc = trifle_storage_ping(st, key, at, trifle_payload_leaves(values),
                             trifle_payload_count(values), err);
    trifle__pool_put(t->pool, st, rc);
    return rc;
}

static int collect_scan_leaf(size_t index, const char *path, double value, void *payload)
{
    (void)index;
    return leafvec_push(payload, path, value);
}

int trifle_scan(trifle *t, const char *key, int *found, int64_t *at, trifle_payload **values,
                trifle_error *err)
{
    trifle_storage *st;
    leafvec c;
    int64_t when = 0;
    int rc;

    memset(&c, 0, sizeof(c));
    if (found == NULL || values == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument");
    *found = 0;
    *values = NULL;
    if ((rc = check_open(t, err)) != 0 || (rc = trifle__key_check(key, 0, err)) != 0)
        return rc;
    if ((rc = trifle__pool_get(t->pool, &st, err)) != 0)
        return rc;
    rc = trifle_storage_scan(st, key, &when, collect_scan_leaf, &c, err);
    trifle__pool_put(t->pool, st, rc);
    if (rc == TRIFLE_ENOTFOUND) {
        c.n = 0; /* no ping: not an error (SPEC §5.5) */
        rc = 0;
    } else if (rc == 0) {
        *found = 1;
        if (at != NULL)
            *at = when;
    }
    if (rc == 0) {
        leafvec_settle(&c);
        rc = trifle__payload_from_sorted(values, c.leaves, c.n, err);
        if (rc != 0)
            *found = 0;
    }
    leafvec_free(&c);
    return rc;
}
