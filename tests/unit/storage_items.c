/* See storage_items.h. */
#include "storage_items.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

int storage_open_url(trifle_storage **st, const char *url, trifle_error *err)
{
    trifle_storage_options o = TRIFLE_STORAGE_OPTIONS_INIT;

    o.joined = TRIFLE_ID_FULL;
    o.driver_path = TRIFLE_BUILD_PLUGIN_DIR;

    return trifle_storage_open(st, url, &o, err);
}

trifle_storage *storage_new(const char *url)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st = NULL;

    if (storage_open_url(&st, url, &err) != 0)
        fail_msg("open %s: %s", url, err.message);
    if (trifle_storage_setup(st, &err) != 0)
        fail_msg("setup: %s", err.message);
    return st;
}

/* An item for (key, 1h, at) in st's mode with the given leaves (sorted by the caller). */
void item_init(item *it, trifle_storage *st, const char *key, int64_t at, const trifle_leaf *leaves,
               size_t n)
{
    (void)snprintf(it->key, sizeof(it->key), "%s", key);
    (void)trifle_storage_identifier(st, it->id, sizeof(it->id), key, "1h", at);
    it->e.bucket.id = it->id;
    it->e.bucket.key = it->key;
    it->e.bucket.granularity = "1h";
    it->e.bucket.at = at;
    it->e.leaves = leaves;
    it->e.n_leaves = n;
}

void inc1(trifle_storage *st, const char *key, int64_t at, const trifle_leaf *l, size_t n)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    item it;

    item_init(&it, st, key, at, l, n);
    if (trifle_storage_inc(st, &it.e, 1, NULL, &err) != 0)
        fail_msg("inc %s: %s", it.id, err.message);
}

int got_leaf(size_t index, const char *path, double value, void *payload)
{
    got *g = payload;

    if (g->n < 64) {
        g->l[g->n].index = index;
        (void)snprintf(g->l[g->n].path, sizeof(g->l[g->n].path), "%s", path);
        g->l[g->n].value = value;
        g->n++;
    }
    return 0;
}

/* The value of path in bucket index, NAN when it was not delivered. */
double got_value(const got *g, size_t index, const char *path)
{
    size_t i;

    for (i = 0; i < g->n; i++)
        if (g->l[i].index == index && strcmp(g->l[i].path, path) == 0)
            return g->l[i].value;
    return NAN;
}

size_t got_count(const got *g, size_t index)
{
    size_t i, k = 0;

    for (i = 0; i < g->n; i++)
        k += g->l[i].index == index;
    return k;
}

void get1(trifle_storage *st, const char *key, int64_t at, got *g)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    item it;

    memset(g, 0, sizeof(*g));
    item_init(&it, st, key, at, NULL, 0);
    if (trifle_storage_get(st, &it.e.bucket, 1, got_leaf, g, &err) != 0)
        fail_msg("get %s: %s", it.id, err.message);
}

void *bg_inc_main(void *p)
{
    bg_inc *b = p;

    b->rc = trifle_storage_inc(b->st, &b->it.e, 1, NULL, &b->err);
    return NULL;
}

void test_ns_init(test_ns *n, const char *prefix, const char *base, const char *params)
{
    static unsigned seq;

    (void)snprintf(n->table, sizeof(n->table), "%s_%ld_%u", prefix, (long)getpid(), ++seq);
    (void)snprintf(n->url, sizeof(n->url), "%s?table=%s%s%s", base, n->table,
                   params != NULL && params[0] != '\0' ? "&" : "", params != NULL ? params : "");
}
