/* The CRUD endpoints of the stored kinds (see store.h): dashboards, monitors and transponders are
 * listed, read, created, replaced and deleted alike, and differ only in how an item is checked
 * and in a few answers, which their srv_crud describes. */
#include "store.h"

#include <stdio.h>
#include <string.h>

/* The members a replaced item keeps when its kind names none. */
static const char *const created_at_only[] = {"created_at", NULL};

/* The request body as an object (`{"<wrapper>": {...}}` or the object itself), checked and
 * rebuilt by the kind; NULL after answering. */
static cJSON *checked_body(srv_request *r, const srv_crud *k, const cJSON *old)
{
    size_t n;
    const char *body = srv_request_body(r, &n);
    cJSON *root = cJSON_ParseWithLength(body, n), *inner, *doc;

    if (root == NULL) {
        srv_respond_detail(r, 400, "Bad request");
        return NULL;
    }
    inner = cJSON_GetObjectItemCaseSensitive(root, k->wrapper);
    if (cJSON_IsObject(inner)) {
        (void)cJSON_DetachItemViaPointer(root, inner);
        cJSON_Delete(root);
        root = inner;
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        if (k->changeset)
            srv_respond_detail(r, 422, "Invalid request parameters");
        else
            srv_store_invalid(r, "body", "must be a JSON object");
        return NULL;
    }
    doc = k->build(r, old, root);
    cJSON_Delete(root);
    return doc;
}

/* DELETE: take item @p index out and save; the answer is the item or `{id, deleted: true}`. */
static void remove_item(srv_request *r, srv_store *st, const srv_crud *k, int index)
{
    cJSON *old = cJSON_DetachItemFromArray(st->items, index), *doc;

    if (srv_store_save_or_500(r, st, k->kind) != 0) {
        (void)cJSON_InsertItemInArray(st->items, index, old);
        return;
    }
    if (k->delete_echoes) {
        srv_store_respond(r, 200, old);
    } else {
        doc = cJSON_CreateObject();
        (void)cJSON_AddItemToObject(doc, "id", cJSON_DetachItemFromObject(old, "id"));
        (void)cJSON_AddTrueToObject(doc, "deleted");
        srv_store_respond(r, 200, doc);
        cJSON_Delete(doc);
    }
    cJSON_Delete(old);
}

/* The id and times of a new item, or those a replaced item @p old keeps; then the kind's own. */
static void stamp(cJSON *doc, const cJSON *old, const srv_crud *k)
{
    const char *const *carried = k->carried != NULL ? k->carried : created_at_only;
    char now[40], newid[17];
    size_t i;

    srv_store_now(now, srv_now());
    if (old != NULL) {
        (void)cJSON_AddItemToObject(doc, "id", cJSON_Duplicate(cJSON_GetObjectItem(old, "id"), 0));
        for (i = 0; carried[i] != NULL; i++) {
            const cJSON *v = cJSON_GetObjectItem(old, carried[i]);
            if (v != NULL)
                (void)cJSON_AddItemToObject(doc, carried[i], cJSON_Duplicate(v, 1));
        }
    } else {
        srv_store_new_id(newid);
        (void)cJSON_AddStringToObject(doc, "id", newid);
        (void)cJSON_AddStringToObject(doc, "created_at", now);
    }
    if (k->stamp != NULL)
        k->stamp(doc, old);
    (void)cJSON_AddStringToObject(doc, "updated_at", now);
}

/* POST/PUT: store @p doc (taken) in place of item @p index (-1: appended) and save, undoing the
 * change when the save fails. 0 when stored and answered 201/200. */
static int put_item(srv_request *r, srv_store *st, const srv_crud *k, cJSON *doc, int index)
{
    cJSON *old = NULL;

    if (index >= 0) {
        old = cJSON_DetachItemFromArray(st->items, index);
        (void)cJSON_InsertItemInArray(st->items, index, doc);
    } else {
        (void)cJSON_AddItemToArray(st->items, doc);
    }
    if (srv_store_save_or_500(r, st, k->kind) != 0) {
        if (index >= 0)
            (void)cJSON_ReplaceItemInArray(st->items, index, old);
        else
            cJSON_Delete(cJSON_DetachItemFromArray(st->items, cJSON_GetArraySize(st->items) - 1));
        return -1;
    }
    srv_store_respond(r, index >= 0 ? 200 : 201, doc);
    cJSON_Delete(old);
    return 0;
}

void srv_crud_handle(srv_request *r, int item, srv_stores *stores, const srv_crud *k)
{
    srv_server *s = srv_request_server(r);
    srv_store *st = &stores->of[srv_request_source(r) - s->sources];
    const char *method = srv_request_method(r), *id = NULL;
    int writes = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0;
    cJSON *doc = NULL, *old = NULL;
    char limit[80];
    size_t idn = 0;
    int index = -1, changed = 0;

    if (item)
        id = srv_request_file(r, &idn);
    if (writes && k->check_unlocked && (doc = checked_body(r, k, NULL)) == NULL)
        return;
    pthread_mutex_lock(&st->lock);
    if (item && (old = srv_store_find(st, id, idn, &index)) == NULL) {
        srv_respond_detail(r, 404, "Page not found");
        goto done;
    }
    if (strcmp(method, "GET") == 0) {
        if (item)
            srv_store_respond(r, 200, old);
        else if (k->list != NULL)
            k->list(r, st->items);
        else
            srv_store_respond(r, 200, st->items);
        goto done;
    }
    if (strcmp(method, "DELETE") == 0) {
        remove_item(r, st, k, index);
        goto done;
    }
    if (!item && cJSON_GetArraySize(st->items) >= SRV_STORE_MAX_ITEMS) {
        (void)snprintf(limit, sizeof(limit), "this source already has %d %s", SRV_STORE_MAX_ITEMS,
                       k->kind);
        if (k->changeset)
            srv_store_changeset(r, "base", limit);
        else
            srv_store_invalid(r, "body", limit);
        goto done;
    }
    if (doc == NULL && (doc = checked_body(r, k, old)) == NULL)
        goto done;
    stamp(doc, old, k);
    changed = put_item(r, st, k, doc, item ? index : -1) == 0;
    doc = NULL; /* owned by the store, or freed with the undone change */
done:
    pthread_mutex_unlock(&st->lock);
    cJSON_Delete(doc);
    if (changed && k->changed != NULL)
        k->changed(s);
}
