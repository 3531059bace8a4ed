/* Saved dashboards (issue 15): CRUD at /api/v1/dashboards[/:id], one store per source in
 * `<data_dir>/dashboards/<source id>.json` (store.c).
 *
 * A dashboard is `{id, name, description, widgets: [...], created_at, updated_at}`; a widget is
 * `{title, key, paths: [..], mode: timeline|category|aggregate, aggregator, granularity,
 * range: "24h"|"7d"|"30d"|"90d"|{from, to}}`. Every field is checked and the stored document is
 * rebuilt from the checked values, so the store only ever holds what the page can render. The
 * App does not document its dashboard body; this follows its other endpoints: `{data: ...}`
 * replies, `{dashboard: {...}}` or the bare object as the request body, 422 for a bad field. */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WIDGETS 50
#define MAX_PATHS 10

struct srv_dashboards {
    srv_stores stores;
};

/* A checked string member: 1 and *out when present, 0 when absent (and not required), -1 after
 * answering 422. */
static int get_text(srv_request *r, const cJSON *o, const char *name, const char *field, size_t max,
                    int required, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    *out = NULL;
    if (v == NULL || cJSON_IsNull(v)) {
        if (!required)
            return 0;
        srv_store_invalid(r, field, "is required");
        return -1;
    }
    if (!cJSON_IsString(v)) {
        srv_store_invalid(r, field, "must be a string");
        return -1;
    }
    if (required && v->valuestring[0] == '\0') {
        srv_store_invalid(r, field, "must not be empty");
        return -1;
    }
    if (strlen(v->valuestring) > max) {
        srv_store_invalid(r, field, "is too long");
        return -1;
    }
    *out = v->valuestring;
    return 1;
}

static int granularity_listed(const srv_source *s, const char *g)
{
    size_t i;

    for (i = 0; i < s->n_granularities; i++)
        if (strcmp(s->granularities[i], g) == 0)
            return 1;
    return 0;
}

/* A checked copy of widget @p w, or NULL after answering 422. */
static cJSON *widget_of(srv_request *r, const srv_source *src, const cJSON *w, size_t index)
{
    static const char *const modes[] = {"timeline", "category", "aggregate"};
    static const char *const aggregators[] = {"sum", "mean", "min", "max"};
    static const char *const presets[] = {"24h", "7d", "30d", "90d"};
    char field[64];
    const char *title, *key, *mode, *agg, *gran, *preset;
    const cJSON *paths, *range, *p;
    cJSON *out = NULL, *list;
    size_t i;
    int k;

#define FIELD(name) ((void)snprintf(field, sizeof(field), "widgets[%zu].%s", index, name), field)
    if (!cJSON_IsObject(w)) {
        (void)snprintf(field, sizeof(field), "widgets[%zu]", index);
        srv_store_invalid(r, field, "must be an object");
        return NULL;
    }
    if (get_text(r, w, "title", FIELD("title"), 200, 0, &title) < 0 ||
        get_text(r, w, "key", FIELD("key"), 1000, 1, &key) < 0 ||
        get_text(r, w, "mode", FIELD("mode"), 20, 0, &mode) < 0 ||
        get_text(r, w, "aggregator", FIELD("aggregator"), 20, 0, &agg) < 0 ||
        get_text(r, w, "granularity", FIELD("granularity"), 31, 1, &gran) < 0)
        return NULL;
    for (k = 0; mode != NULL && k < 3 && strcmp(mode, modes[k]) != 0; k++)
        ;
    if (k == 3) {
        srv_store_invalid(r, FIELD("mode"), "must be timeline, category or aggregate");
        return NULL;
    }
    for (k = 0; agg != NULL && k < 4 && strcmp(agg, aggregators[k]) != 0; k++)
        ;
    if (k == 4) {
        srv_store_invalid(r, FIELD("aggregator"), "must be sum, mean, min or max");
        return NULL;
    }
    if (!granularity_listed(src, gran)) {
        srv_store_invalid(r, FIELD("granularity"), "is not one of the source's granularities");
        return NULL;
    }
    paths = cJSON_GetObjectItemCaseSensitive(w, "paths");
    if (!cJSON_IsArray(paths) || cJSON_GetArraySize(paths) < 1 ||
        cJSON_GetArraySize(paths) > MAX_PATHS) {
        srv_store_invalid(r, FIELD("paths"), "must be a list of 1 to 10 value paths");
        return NULL;
    }
    i = 0;
    cJSON_ArrayForEach (p, paths) {
        if (!cJSON_IsString(p) || p->valuestring[0] == '\0' || strlen(p->valuestring) > 200 ||
            strchr(p->valuestring, '*') != NULL) {
            (void)snprintf(field, sizeof(field), "widgets[%zu].paths[%zu]", index, i);
            srv_store_invalid(r, field, "must be a non-empty dotted path without *");
            return NULL;
        }
        i++;
    }
    range = cJSON_GetObjectItemCaseSensitive(w, "range");
    preset = "24h";
    if (cJSON_IsString(range)) {
        for (k = 0; k < 4 && strcmp(range->valuestring, presets[k]) != 0; k++)
            ;
        if (k == 4) {
            srv_store_invalid(r, FIELD("range"), "must be 24h, 7d, 30d, 90d or {from, to}");
            return NULL;
        }
        preset = presets[k];
    } else if (cJSON_IsObject(range)) {
        const char *from, *to;
        int64_t f, t;
        if (get_text(r, range, "from", FIELD("range.from"), 64, 1, &from) < 0 ||
            get_text(r, range, "to", FIELD("range.to"), 64, 1, &to) < 0)
            return NULL;
        if (trifle_time_parse(&f, from, NULL, TRIFLE_TIME_OFFSET_REQUIRED, NULL) != 0) {
            srv_store_invalid(r, FIELD("range.from"), "must be an ISO 8601 time with an offset");
            return NULL;
        }
        if (trifle_time_parse(&t, to, NULL, TRIFLE_TIME_OFFSET_REQUIRED, NULL) != 0) {
            srv_store_invalid(r, FIELD("range.to"), "must be an ISO 8601 time with an offset");
            return NULL;
        }
        if (t <= f) {
            srv_store_invalid(r, FIELD("range.to"), "must be after range.from");
            return NULL;
        }
        preset = NULL;
    } else if (range != NULL && !cJSON_IsNull(range)) {
        srv_store_invalid(r, FIELD("range"), "must be 24h, 7d, 30d, 90d or {from, to}");
        return NULL;
    }
#undef FIELD
    if ((out = cJSON_CreateObject()) == NULL ||
        (title != NULL && cJSON_AddStringToObject(out, "title", title) == NULL) ||
        cJSON_AddStringToObject(out, "key", key) == NULL ||
        (list = cJSON_AddArrayToObject(out, "paths")) == NULL ||
        cJSON_AddStringToObject(out, "mode", mode != NULL ? mode : "timeline") == NULL ||
        cJSON_AddStringToObject(out, "aggregator", agg != NULL ? agg : "sum") == NULL ||
        cJSON_AddStringToObject(out, "granularity", gran) == NULL)
        goto oom;
    cJSON_ArrayForEach (p, paths) {
        cJSON *c = cJSON_CreateString(p->valuestring);
        if (c == NULL || !cJSON_AddItemToArray(list, c)) {
            cJSON_Delete(c);
            goto oom;
        }
    }
    if (preset != NULL ? cJSON_AddStringToObject(out, "range", preset) == NULL
                       : !cJSON_AddItemToObject(out, "range", cJSON_Duplicate(range, 1)))
        goto oom;
    return out;
oom:
    cJSON_Delete(out);
    srv_respond_detail(r, 500, "Internal server error");
    return NULL;
}

/* A checked dashboard built from @p in, or NULL after answering. */
static cJSON *dashboard_of(srv_request *r, const srv_source *src, const cJSON *in)
{
    const char *name, *description;
    const cJSON *widgets, *w;
    cJSON *out, *list;
    size_t i = 0;

    if (get_text(r, in, "name", "name", 200, 1, &name) < 0 ||
        get_text(r, in, "description", "description", 2000, 0, &description) < 0)
        return NULL;
    widgets = cJSON_GetObjectItemCaseSensitive(in, "widgets");
    if (widgets != NULL && !cJSON_IsArray(widgets)) {
        srv_store_invalid(r, "widgets", "must be a list");
        return NULL;
    }
    if (cJSON_GetArraySize(widgets) > MAX_WIDGETS) {
        srv_store_invalid(r, "widgets", "holds more than 50 widgets");
        return NULL;
    }
    if ((out = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(out, "name", name) == NULL ||
        (description != NULL && cJSON_AddStringToObject(out, "description", description) == NULL) ||
        (list = cJSON_AddArrayToObject(out, "widgets")) == NULL) {
        cJSON_Delete(out);
        srv_respond_detail(r, 500, "Internal server error");
        return NULL;
    }
    cJSON_ArrayForEach (w, widgets) {
        cJSON *c = widget_of(r, src, w, i++);
        if (c == NULL) {
            cJSON_Delete(out);
            return NULL;
        }
        (void)cJSON_AddItemToArray(list, c);
    }
    return out;
}

static srv_store *store_of(srv_request *r)
{
    srv_server *s = srv_request_server(r);

    return &s->dashboards->stores.of[srv_request_source(r) - s->sources];
}

/* Save after a change; on failure answer 500 (the caller undoes the change). */
static int save(srv_request *r, srv_store *st)
{
    trifle_error e = TRIFLE_ERROR_INIT;

    if (srv_store_save(st, &e) == 0)
        return 0;
    srv_log(TRIFLE_LOG_ERROR, "dashboards: %s", e.message);
    srv_respond_detail(r, 500, "Internal server error");
    return -1;
}

void srv_dashboards_handle(srv_request *r, int item)
{
    const char *method = srv_request_method(r), *id = NULL;
    srv_store *st = store_of(r);
    cJSON *in = NULL, *doc = NULL, *old;
    char now[40], newid[17];
    size_t idn = 0;
    int index = -1;

    if (item)
        id = srv_request_file(r, &idn);
    pthread_mutex_lock(&st->lock);
    if (strcmp(method, "GET") == 0) {
        if (!item) {
            srv_store_respond(r, 200, st->items);
        } else if ((old = srv_store_find(st, id, idn, NULL)) == NULL) {
            srv_respond_detail(r, 404, "Page not found");
        } else {
            srv_store_respond(r, 200, old);
        }
        goto done;
    }
    if (strcmp(method, "DELETE") == 0) {
        if (srv_store_find(st, id, idn, &index) == NULL) {
            srv_respond_detail(r, 404, "Page not found");
            goto done;
        }
        old = cJSON_DetachItemFromArray(st->items, index);
        if (save(r, st) != 0) {
            (void)cJSON_InsertItemInArray(st->items, index, old);
            goto done;
        }
        doc = cJSON_CreateObject();
        (void)cJSON_AddItemToObject(doc, "id", cJSON_DetachItemFromObject(old, "id"));
        (void)cJSON_AddTrueToObject(doc, "deleted");
        cJSON_Delete(old);
        srv_store_respond(r, 200, doc);
        goto done;
    }
    /* POST (create) or PUT (replace) */
    old = item ? srv_store_find(st, id, idn, &index) : NULL;
    if (item && old == NULL) {
        srv_respond_detail(r, 404, "Page not found");
        goto done;
    }
    if (!item && cJSON_GetArraySize(st->items) >= SRV_STORE_MAX_ITEMS) {
        srv_store_invalid(r, "body", "this source already has 500 dashboards");
        goto done;
    }
    if ((in = srv_store_body(r, "dashboard")) == NULL ||
        (doc = dashboard_of(r, srv_request_source(r), in)) == NULL)
        goto done;
    srv_store_now(now, srv_now());
    if (item) {
        (void)cJSON_AddItemToObject(doc, "id", cJSON_Duplicate(cJSON_GetObjectItem(old, "id"), 0));
        (void)cJSON_AddItemToObject(doc, "created_at",
                                    cJSON_Duplicate(cJSON_GetObjectItem(old, "created_at"), 0));
    } else {
        srv_store_new_id(newid);
        (void)cJSON_AddStringToObject(doc, "id", newid);
        (void)cJSON_AddStringToObject(doc, "created_at", now);
    }
    (void)cJSON_AddStringToObject(doc, "updated_at", now);
    if (item) {
        old = cJSON_DetachItemFromArray(st->items, index);
        (void)cJSON_InsertItemInArray(st->items, index, doc);
    } else {
        (void)cJSON_AddItemToArray(st->items, doc);
    }
    if (save(r, st) != 0) {
        if (item)
            (void)cJSON_ReplaceItemInArray(st->items, index, old);
        else
            cJSON_Delete(cJSON_DetachItemFromArray(st->items, cJSON_GetArraySize(st->items) - 1));
        doc = NULL;
        goto done;
    }
    srv_store_respond(r, item ? 200 : 201, doc);
    cJSON_Delete(old);
    doc = NULL; /* owned by the store */
done:
    pthread_mutex_unlock(&st->lock);
    cJSON_Delete(in);
    cJSON_Delete(doc);
}

int srv_dashboards_open(srv_server *s, trifle_error *err)
{
    struct srv_dashboards *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return srv_error(err, TRIFLE_ENOMEM, "out of memory");
    s->dashboards = d;
    return srv_stores_open(&d->stores, s, "dashboards", err);
}

void srv_dashboards_close(srv_server *s)
{
    if (s->dashboards == NULL)
        return;
    srv_stores_close(&s->dashboards->stores);
    free(s->dashboards);
    s->dashboards = NULL;
}
