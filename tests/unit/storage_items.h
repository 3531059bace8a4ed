/* Items and reads against a trifle_storage for the SQL drivers' unit tests: one 1h bucket item,
 * an inc of it, and a get whose leaves are collected (test_driver_postgres.c,
 * test_driver_mysql.c). Failures end the test through cmocka's fail_msg(). */
#ifndef TRIFLE_TEST_STORAGE_ITEMS_H
#define TRIFLE_TEST_STORAGE_ITEMS_H

#include <stddef.h>
#include <stdint.h>

#include "trifle/storage.h"

/* trifle_storage_open() of url with the drivers of the build tree. */
int storage_open_url(trifle_storage **st, const char *url, trifle_error *err);

/* Open url as storage_open_url() does and run setup; fails the test on error. */
trifle_storage *storage_new(const char *url);

typedef struct item {
    char id[512];
    char key[512];
    trifle_entry e;
} item;

/* An item for (key, 1h, at) in st's mode with the given leaves (sorted by the caller). */
void item_init(item *it, trifle_storage *st, const char *key, int64_t at, const trifle_leaf *leaves,
               size_t n);

/* One inc of that item; fails the test on error. */
void inc1(trifle_storage *st, const char *key, int64_t at, const trifle_leaf *l, size_t n);

/* What one get delivered (the first 64 leaves). */
typedef struct got {
    size_t n;
    struct {
        size_t index;
        char path[128];
        double value;
    } l[64];
} got;

/* trifle_leaf_fn collecting into a got. */
int got_leaf(size_t index, const char *path, double value, void *payload);

/* The value of path in bucket index, NAN when it was not delivered. */
double got_value(const got *g, size_t index, const char *path);

/* How many leaves bucket index delivered. */
size_t got_count(const got *g, size_t index);

/* One get of the item (key, 1h, at) into g; fails the test on error. */
void get1(trifle_storage *st, const char *key, int64_t at, got *g);

/* A namespace of its own for one test of a server-backed SQL driver: the table
 * "<prefix>_<pid>_<n>" (n counts up within the process) and the URL
 * "<base>?table=<table>[&<params>]" (params NULL or "" for none). */
typedef struct test_ns {
    char table[64];
    char url[1024];
} test_ns;

void test_ns_init(test_ns *n, const char *prefix, const char *base, const char *params);

/* An inc of item it through st on a thread of its own, for the tests where it waits for a row
 * lock: pthread_create(&th, NULL, bg_inc_main, &b), then pthread_join and check rc (and err). */
typedef struct bg_inc {
    trifle_storage *st;
    item it;
    int rc;
    trifle_error err;
} bg_inc;

/* The thread function of a bg_inc (p); returns NULL. */
void *bg_inc_main(void *p);

#endif
