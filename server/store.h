/* store.c: small JSON document stores in the data directory (issue 15).
 *
 * The saved dashboards, the monitors and the transponders of one source are one JSON array each,
 * kept in memory and written whole to `<data_dir>/<kind>/<source id>.json` after every change (a
 * temporary file, fsync, rename, fsync of the directory: a crash leaves the old or the new file,
 * never half of one). They are small (a few hundred items at most), so a whole rewrite costs less
 * than any incremental format would in code. Items are objects with a string `id`. */
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

/* Open the store of @p kind ("dashboards", "monitors", "transponders") for source @p source_id
 * under @p data_dir, creating its directory; the file is read when it exists. A file that is not
 * a JSON array of objects is an error naming it (it is never overwritten). */
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
/* srv_stores_open() on a new set in *out, which is set (for srv_stores_free()) even when opening
 * fails. */
int srv_stores_new(srv_stores **out, srv_server *s, const char *kind, trifle_error *err);
/* srv_stores_close() and free *set, then NULL it; NULL is fine. */
void srv_stores_free(srv_stores **set);

/* Write the items to the file. The caller holds the lock. */
int srv_store_save(srv_store *st, trifle_error *err);
/* srv_store_save(); on failure log `<kind>: <message>` and, when @p r is not NULL, answer 500
 * (the caller undoes the change). 0 or -1. */
int srv_store_save_or_500(srv_request *r, srv_store *st, const char *kind);
/* The item whose id is raw path segment id[0..n) (compared as sent: ids are [0-9a-f]), or NULL;
 * its index in *index. The caller holds the lock. */
cJSON *srv_store_find(srv_store *st, const char *id, size_t n, int *index);
/* A new random id: 16 lower-case hex digits. */
void srv_store_new_id(char out[17]);

/* Responses shared by the stores. */
/* `{"data": <item>}` (or an array) with @p status. */
void srv_store_respond(srv_request *r, int status, const cJSON *data);
/* 422 `{"errors":{"detail":"<field>: <message>","field":"<field>"}}`. */
void srv_store_invalid(srv_request *r, const char *field, const char *message);
/* 422 `{"errors":{"<field>":["<message>"]}}`, the App's changeset shape (transponders). */
void srv_store_changeset(srv_request *r, const char *field, const char *message);
/* The string member @p name of @p o, checked: 1 and *out when present, 0 and *out NULL when
 * absent and not @p required, -1 after answering 422 for @p field (missing when required, not a
 * string, empty when required, longer than @p max bytes). */
int srv_store_text(srv_request *r, const cJSON *o, const char *name, const char *field, size_t max,
                   int required, const char **out);

/* The current time as RFC 3339 UTC into @p buf (40 bytes). */
void srv_store_now(char buf[40], int64_t now);

/* ------------------------------------------------------------------------------------------- */
/* crud.c: the endpoints /api/v1/<kind>[/:id] of a stored kind                                 */

/* What a stored kind does its own way; the rest is srv_crud_handle()'s. Immutable. */
typedef struct srv_crud {
    const char *kind;    /* "dashboards": names the kind in the log and the 500-item limit */
    const char *wrapper; /* "dashboard": the body may be `{"<wrapper>": {...}}` */
    int changeset;       /* 422s as the App's changesets: a body that is not an object is
                            "Invalid request parameters", the limit is field "base" */
    int check_unlocked;  /* check the body before the store is locked and before the 404 (build
                            then gets no stored item) */
    int delete_echoes;   /* DELETE answers the deleted item, else `{"id", "deleted": true}` */
    const char *const *carried; /* members a PUT keeps from the stored item, NULL-terminated;
                                   NULL: created_at */
    /* The checked item built from the body @p in (and the stored @p old on PUT), without id or
     * times; NULL after answering (422, or 500 when out of memory). */
    cJSON *(*build)(srv_request *r, const cJSON *old, const cJSON *in);
    /* Optional: add the kind's own members after the id and created_at (or the carried ones),
     * before updated_at (@p old: NULL on POST). */
    void (*stamp)(cJSON *doc, const cJSON *old);
    /* Optional: answer GET of the list (default: the items as stored). */
    void (*list)(srv_request *r, cJSON *items);
    /* Optional: called after a POST or PUT was stored, outside the store's lock. */
    void (*changed)(srv_server *s);
} srv_crud;

/* Answer a request of a /api/v1/<kind> route (@p item: the :id route) from the store of the
 * request's source in @p stores: GET the list or one item, POST (create, 201) to the list, PUT
 * (replace) or DELETE an item; http.c routes no other method. An unknown id is 404, a bad body
 * 400/422, a failed save 500 with nothing changed. */
void srv_crud_handle(srv_request *r, int item, srv_stores *stores, const srv_crud *k);

#endif
