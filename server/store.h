/* store.c: small JSON document stores in the data directory (issue 15).
 *
 * The saved dashboards and the monitors of one source are one JSON array each, kept in memory and
 * written whole to `<data_dir>/<kind>/<source id>.json` after every change (a temporary file,
 * fsync, rename, fsync of the directory: a crash leaves the old or the new file, never half of
 * one). They are small (a few hundred items at most), so a whole rewrite costs less than any
 * incremental format would in code. Items are objects with a string `id`. */
#ifndef TRIFLE_SRV_STORE_H
#define TRIFLE_SRV_STORE_H

#include <pthread.h>

#include <cjson/cJSON.h>

#include "srv_int.h"

/* Items at most per store. */
#define SRV_STORE_MAX_ITEMS 500

typedef struct srv_store {
    pthread_mutex_t lock; /* guards items and the file */
    char *path;           /* the JSON file */
    cJSON *items;         /* an array of objects */
} srv_store;

/* Open the store of @p kind ("dashboards", "monitors") for source @p source_id under
 * @p data_dir, creating its directory; the file is read when it exists. A file that is not a
 * JSON array of objects is an error naming it (it is never overwritten). */
int srv_store_open(srv_store *st, const char *data_dir, const char *kind, const char *source_id,
                   trifle_error *err);
void srv_store_close(srv_store *st);
/* One store of a kind per source of a server, in srv_server.sources order. */
typedef struct srv_stores {
    srv_store *of; /* of[i]: the store of source i */
    size_t n;      /* how many are open */
} srv_stores;

/* Open the stores of @p kind for every source of @p s (srv_store_open each). On failure the ones
 * opened so far stay in @p set for srv_stores_close(). */
int srv_stores_open(srv_stores *set, srv_server *s, const char *kind, trifle_error *err);
/* Close every store of @p set and free it; a zeroed set is fine. */
void srv_stores_close(srv_stores *set);

/* Write the items to the file. The caller holds the lock. */
int srv_store_save(srv_store *st, trifle_error *err);
/* The item whose id is raw path segment id[0..n) (compared as sent: ids are [0-9a-f]), or NULL;
 * its index in *index. The caller holds the lock. */
cJSON *srv_store_find(srv_store *st, const char *id, size_t n, int *index);
/* A new random id: 16 lower-case hex digits. */
void srv_store_new_id(char out[17]);

/* Responses shared by the two stores. */
/* `{"data": <item>}` (or an array) with @p status. */
void srv_store_respond(srv_request *r, int status, const cJSON *data);
/* 422 `{"errors":{"detail":"<field>: <message>","field":"<field>"}}`. */
void srv_store_invalid(srv_request *r, const char *field, const char *message);
/* The request body as a cJSON object: `{"<wrapper>": {...}}` or the object itself. NULL after
 * answering 400 (not JSON) or 422 (not an object). */
cJSON *srv_store_body(srv_request *r, const char *wrapper);

/* The current time as RFC 3339 UTC into @p buf (40 bytes). */
void srv_store_now(char buf[40], int64_t now);

#endif
