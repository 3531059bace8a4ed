/* trifle-bench-raw-mongo: the MongoDB-wire server's own upsert rate, the "raw limit" the mongo
 * flush is compared with (docs/BENCHMARKS.md).
 *
 *   trifle-bench-raw-mongo URI N [BATCH]
 *   trifle-bench-raw-mongo URI --fill-year COLLECTION
 *
 * N `updateOne({key}, {$inc: {data.<leaf>: v, ...}}, {upsert: true})` with distinct keys, sent
 * as ordered bulk writes of BATCH (default 1000) through libmongoc, into a collection with the
 * driver's unique {key: 1} index. Prints one JSON line: documents/s.
 *
 * --fill-year writes the documents `trifle-bench fill-year` would (full mode: 8,760 1h buckets
 * of bench::year with the workload's values, and their system records) with plain inserts: on
 * FerretDB an upsert gets slower as the collection grows, and filling through the driver alone
 * would take minutes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mongoc/mongoc.h>

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fill_year(mongoc_client_t *client, const char *db, const char *name)
{
    mongoc_collection_t *coll = mongoc_client_get_collection(client, db, name);
    mongoc_bulk_operation_t *bulk;
    bson_error_t error;
    bson_t reply, *keys, *cmd;
    char key[64];
    int i, ok;

    (void)mongoc_collection_drop(coll, NULL);
    keys = BCON_NEW("key", BCON_INT32(1));
    cmd =
        BCON_NEW("createIndexes", BCON_UTF8(name), "indexes", "[", "{", "key", BCON_DOCUMENT(keys),
                 "name", BCON_UTF8("key_1"), "unique", BCON_BOOL(true), "}", "]");
    ok = mongoc_collection_write_command_with_opts(coll, cmd, NULL, NULL, &error);
    bson_destroy(keys);
    bson_destroy(cmd);
    bulk = mongoc_collection_create_bulk_operation_with_opts(coll, NULL);
    for (i = 0; ok && i < 8760; i++) {
        long at = 1767225600L + (long)i * 3600;
        bson_t *doc;

        snprintf(key, sizeof(key), "bench::year::1h::%ld", at);
        doc = BCON_NEW("key", BCON_UTF8(key), "data", "{", "count", BCON_DOUBLE(1), "duration",
                       BCON_DOUBLE(2.5), "lines", BCON_DOUBLE(241), "meta", "{", "cache", "{",
                       "hits", BCON_DOUBLE(3), "}", "db", BCON_DOUBLE(0.25), "}", "}");
        mongoc_bulk_operation_insert(bulk, doc);
        bson_destroy(doc);
        snprintf(key, sizeof(key), "__system__key__::1h::%ld", at);
        doc = BCON_NEW("key", BCON_UTF8(key), "data", "{", "count", BCON_DOUBLE(1), "keys", "{",
                       "bench::year", BCON_DOUBLE(1), "}", "}");
        mongoc_bulk_operation_insert(bulk, doc);
        bson_destroy(doc);
    }
    if (ok)
        ok = (int)mongoc_bulk_operation_execute(bulk, &reply, &error);
    if (ok)
        bson_destroy(&reply);
    mongoc_bulk_operation_destroy(bulk);
    mongoc_collection_destroy(coll);
    if (!ok) {
        fprintf(stderr, "trifle-bench-raw-mongo: %s\n", error.message);
        return 1;
    }
    printf("{\"bench\":\"fill-year\",\"impl\":\"raw-mongo\",\"buckets\":8760}\n");
    return 0;
}

int main(int argc, char **argv)
{
    mongoc_uri_t *uri = NULL;
    mongoc_client_t *client = NULL;
    mongoc_collection_t *coll = NULL;
    bson_error_t error;
    bson_t *keys = NULL, *cmd = NULL, reply;
    const char *db;
    char *end = NULL, key[64];
    long n, batch = 1000, i;
    double t0, t1;
    int rc = 1;

    if (argc == 4 && strcmp(argv[2], "--fill-year") == 0) {
        mongoc_init();
        if ((uri = mongoc_uri_new_with_error(argv[1], &error)) == NULL ||
            (client = mongoc_client_new_from_uri_with_error(uri, &error)) == NULL)
            goto fail;
        rc = fill_year(
            client, mongoc_uri_get_database(uri) != NULL ? mongoc_uri_get_database(uri) : "trifle",
            argv[3]);
        goto done;
    }
    if (argc < 3 || argc > 4 || (n = strtol(argv[2], &end, 10)) < 1 || *end != '\0' ||
        (argc == 4 && (batch = strtol(argv[3], &end, 10)) < 1)) {
        fprintf(stderr,
                "usage: trifle-bench-raw-mongo URI N [BATCH] | URI --fill-year COLLECTION\n");
        return 2;
    }
    mongoc_init();
    if ((uri = mongoc_uri_new_with_error(argv[1], &error)) == NULL ||
        (client = mongoc_client_new_from_uri_with_error(uri, &error)) == NULL)
        goto fail;
    db = mongoc_uri_get_database(uri) != NULL ? mongoc_uri_get_database(uri) : "trifle";
    coll = mongoc_client_get_collection(client, db, "raw_upsert");
    (void)mongoc_collection_drop(coll, NULL); /* absent: fine */
    keys = BCON_NEW("key", BCON_INT32(1));
    cmd = BCON_NEW("createIndexes", BCON_UTF8("raw_upsert"), "indexes", "[", "{", "key",
                   BCON_DOCUMENT(keys), "name", BCON_UTF8("key_1"), "unique", BCON_BOOL(true), "}",
                   "]");
    if (!mongoc_collection_write_command_with_opts(coll, cmd, NULL, NULL, &error))
        goto fail;
    t0 = now_s();
    for (i = 0; i < n;) {
        mongoc_bulk_operation_t *bulk =
            mongoc_collection_create_bulk_operation_with_opts(coll, NULL);
        long k;

        for (k = 0; k < batch && i < n; k++, i++) {
            bson_t *sel, *upd, *opts;

            snprintf(key, sizeof(key), "bench::event::1m::%ld", 1767225600L + i * 60);
            sel = BCON_NEW("key", BCON_UTF8(key));
            upd = BCON_NEW("$inc", "{", "data.count", BCON_DOUBLE(1), "data.duration",
                           BCON_DOUBLE(2.5), "data.lines", BCON_DOUBLE(241), "data.meta.db",
                           BCON_DOUBLE(0.25), "data.meta.cache.hits", BCON_DOUBLE(3), "}");
            opts = BCON_NEW("upsert", BCON_BOOL(true));
            if (!mongoc_bulk_operation_update_one_with_opts(bulk, sel, upd, opts, &error)) {
                bson_destroy(sel);
                bson_destroy(upd);
                bson_destroy(opts);
                mongoc_bulk_operation_destroy(bulk);
                goto fail;
            }
            bson_destroy(sel);
            bson_destroy(upd);
            bson_destroy(opts);
        }
        if (!mongoc_bulk_operation_execute(bulk, &reply, &error)) {
            bson_destroy(&reply);
            mongoc_bulk_operation_destroy(bulk);
            goto fail;
        }
        bson_destroy(&reply);
        mongoc_bulk_operation_destroy(bulk);
    }
    t1 = now_s();
    printf("{\"bench\":\"raw\",\"backend\":\"mongo\",\"tool\":\"libmongoc ordered bulk upserts of "
           "%ld\",\"rows\":%ld,\"seconds\":%.6f,\"rows_per_s\":%.1f}\n",
           batch, n, t1 - t0, (double)n / (t1 - t0));
    (void)mongoc_collection_drop(coll, NULL);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "trifle-bench-raw-mongo: %s\n", error.message);
done:
    if (keys != NULL)
        bson_destroy(keys);
    if (cmd != NULL)
        bson_destroy(cmd);
    if (coll != NULL)
        mongoc_collection_destroy(coll);
    if (client != NULL)
        mongoc_client_destroy(client);
    if (uri != NULL)
        mongoc_uri_destroy(uri);
    mongoc_cleanup();
    return rc;
}
