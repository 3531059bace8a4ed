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
#include <string.h>

#define MAX_WIDGETS 50
#define MAX_PATHS 10

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
    if (srv_store_text(r, w, "title", FIELD("title"), 200, 0, &title) < 0 ||
        srv_store_text(r, w, "key", FIELD("key"), 1000, 1, &key) < 0 ||
        srv_store_text(r, w, "mode", FIELD("mode"), 20, 0, &mode) < 0 ||
        srv_store_text(r, w, "aggregator", FIELD("aggregator"), 20, 0, &agg) < 0 ||
        srv_store_text(r, w, "granularity", FIELD("granularity"), 31, 1, &gran) < 0)
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
    if (!srv_source_has_granularity(src, gran)) {
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
        if (srv_store_text(r, range, "from", FIELD("range.from"), 64, 1, &from) < 0 ||
            srv_store_text(r, range, "to", FIELD("range.to"), 64, 1, &to) < 0)
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

/* A checked dashboard built from @p in, or NULL after answering (srv_crud.build). */
static cJSON *dashboard_of(srv_request *r, const cJSON *old, const cJSON *in)
{
    const srv_source *src = srv_request_source(r);
    const char *name, *description;
    const cJSON *widgets, *w;
    cJSON *out, *list;
    size_t i = 0;

    (void)old; /* a PUT replaces the whole dashboard */
    if (srv_store_text(r, in, "name", "name", 200, 1, &name) < 0 ||
        srv_store_text(r, in, "description", "description", 2000, 0, &description) < 0)
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

static const srv_crud dashboards_crud = {
    .kind = "dashboards",
    .wrapper = "dashboard",
    .build = dashboard_of,
};

void srv_dashboards_handle(srv_request *r, int item)
{
    srv_crud_handle(r, item, srv_request_server(r)->dashboards, &dashboards_crud);
}

int srv_dashboards_open(srv_server *s, trifle_error *err)
{
    return srv_stores_new(&s->dashboards, s, "dashboards", err);
}

void srv_dashboards_close(srv_server *s)
{
    srv_stores_free(&s->dashboards);
}
