/* Stored transponders (issue #13): CRUD at /api/v1/transponders[/:id], as the Trifle App keeps
 * them per source, and their application on read (GET /api/v1/metrics, POST
 * /api/v1/metrics/query).
 *
 * An item is `{id, name, key, config: {paths, expression, response}, enabled, order,
 * source_type, source_id, created_at, updated_at}`, one store per source in
 * `<data_dir>/transponders/<source id>.json` (store.c: written whole, tmp + fsync + rename).
 * Create and update take `{transponder: {...}}` or the bare object; `config` may be given, or
 * built from top-level `paths`, `expression` and `response`; `enabled` and `order` may be
 * booleans/integers or their text. `config` is checked by trifle_expression_validate(), the
 * library's expression transponder, so a stored transponder always compiles; an invalid one is
 * answered 422 in the changeset shape `{"errors": {"<field>": ["<message>"]}}`. PUT changes only
 * the fields it gives. Grants follow the App's mode "any": a token with read or write access to
 * the source may list, create, change and delete (http.c).
 *
 * On read, the enabled transponders whose `key` matches the metric key are applied in `order`
 * (ties: creation order). A key matches exactly, or, when the pattern contains `^` or `$`, as a
 * POSIX extended regular expression (regcomp/regexec of the C library: the App matches with a
 * regex engine too, and libc's is already linked, needs no dependency and is thread-safe per
 * compiled pattern). Reading the system key applies none. */
#include "store.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYSTEM_KEY "__system__key__"
#define MAX_PATHS 26

static int is_regex(const char *pattern)
{
    return strpbrk(pattern, "^$") != NULL;
}

/* Whether the stored @p pattern selects @p key. A pattern that no longer compiles (it was
 * checked on save) matches nothing. */
static int key_matches(const char *pattern, const char *key)
{
    regex_t re;
    int hit;

    if (!is_regex(pattern))
        return strcmp(pattern, key) == 0;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
        return 0;
    hit = regexec(&re, key, 0, NULL, 0) == 0;
    regfree(&re);
    return hit;
}

/* `enabled`: a boolean or "true"/"false"/"1"/"0"...; `order`: an integer or its text. 1 and
 * *out when present, 0 when absent, -1 when malformed. */
static int get_bool(const cJSON *v, int *out)
{
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return 1;
    }
    if (cJSON_IsString(v) && trifle_parse_bool(out, v->valuestring) == 0)
        return 1;
    return -1;
}

static int get_order(const cJSON *v, long *out)
{
    char *end;
    double d;

    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsNumber(v)) {
        d = v->valuedouble;
    } else if (cJSON_IsString(v) && v->valuestring[0] != '\0') {
        d = strtod(v->valuestring, &end);
        if (*end != '\0')
            return -1;
    } else {
        return -1;
    }
    if (!(d >= -1e9 && d <= 1e9) || d != (double)(long)d)
        return -1;
    *out = (long)d;
    return 1;
}

/* The list of paths of a config: an array of strings or one comma-separated string. Returns the
 * count (0 for none), -1 when malformed or longer than 26. */
static int paths_of(const cJSON *v, char **buf, const char *list[MAX_PATHS])
{
    const cJSON *p;
    int n = 0;

    *buf = NULL;
    if (cJSON_IsArray(v)) {
        cJSON_ArrayForEach (p, v) {
            if (!cJSON_IsString(p) || n == MAX_PATHS)
                return -1;
            list[n++] = p->valuestring;
        }
        return n;
    }
    if (cJSON_IsString(v)) {
        char *s, *save = NULL, *tok;
        if ((*buf = strdup(v->valuestring)) == NULL)
            return -1;
        for (s = *buf; (tok = strtok_r(s, ",", &save)) != NULL; s = NULL) {
            while (*tok == ' ')
                tok++;
            if (n == MAX_PATHS)
                return -1;
            list[n++] = tok;
        }
        return n;
    }
    return -1;
}

/* The checked item built from the stored @p old (NULL: create) and the request @p in, or NULL
 * after answering (srv_crud.build). */
static cJSON *item_of(srv_request *r, const cJSON *old, const cJSON *in)
{
    const srv_source *src = srv_request_source(r);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(in, "name");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(in, "key");
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(in, "config");
    const cJSON *paths, *expression, *response;
    const char *list[MAX_PATHS];
    char *split = NULL, why[160];
    trifle_error e = TRIFLE_ERROR_INIT;
    cJSON *out = NULL, *cfg, *arr, *p;
    long order = 0;
    int enabled = 1, n, i;
    regex_t re;

    if (old != NULL) {
        enabled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(old, "enabled"));
        order = (long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(old, "order"));
        if (name == NULL)
            name = cJSON_GetObjectItemCaseSensitive(old, "name");
        if (key == NULL)
            key = cJSON_GetObjectItemCaseSensitive(old, "key");
    }
    if (!cJSON_IsString(key) || key->valuestring[0] == '\0') {
        srv_store_changeset(r, "key",
                            key == NULL ? "can't be blank" : "must be a non-empty string");
        return NULL;
    }
    if (strlen(key->valuestring) > 1000) {
        srv_store_changeset(r, "key", "should be at most 1000 character(s)");
        return NULL;
    }
    if (is_regex(key->valuestring)) {
        int rc = regcomp(&re, key->valuestring, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char reason[100];
            (void)regerror(rc, &re, reason, sizeof(reason));
            (void)snprintf(why, sizeof(why), "is not a valid regular expression: %s", reason);
            srv_store_changeset(r, "key", why);
            return NULL;
        }
        regfree(&re);
    }
    if (name != NULL && !cJSON_IsNull(name) &&
        (!cJSON_IsString(name) || strlen(name->valuestring) > 200)) {
        srv_store_changeset(r, "name", "must be a string of at most 200 characters");
        return NULL;
    }
    if (get_bool(cJSON_GetObjectItemCaseSensitive(in, "enabled"), &enabled) < 0) {
        srv_store_changeset(r, "enabled", "is invalid");
        return NULL;
    }
    if (get_order(cJSON_GetObjectItemCaseSensitive(in, "order"), &order) < 0) {
        srv_store_changeset(r, "order", "is invalid");
        return NULL;
    }
    /* config: given whole, else from the top-level fields, else (PUT) the stored one */
    if (config == NULL && (cJSON_GetObjectItemCaseSensitive(in, "paths") != NULL ||
                           cJSON_GetObjectItemCaseSensitive(in, "expression") != NULL ||
                           cJSON_GetObjectItemCaseSensitive(in, "response") != NULL))
        config = in;
    if (config == NULL && old != NULL)
        config = cJSON_GetObjectItemCaseSensitive(old, "config");
    if (!cJSON_IsObject(config)) {
        srv_store_changeset(r, "config", config == NULL ? "can't be blank" : "is invalid");
        return NULL;
    }
    paths = cJSON_GetObjectItemCaseSensitive(config, "paths");
    expression = cJSON_GetObjectItemCaseSensitive(config, "expression");
    response = cJSON_GetObjectItemCaseSensitive(config, "response");
    n = paths_of(paths, &split, list);
    if (n < 0) {
        srv_store_changeset(r, "config",
                            paths == NULL ? "at least one path is required"
                                          : "paths must be a list of at most 26 strings");
        goto fail;
    }
    if (trifle_expression_validate(
            list, (size_t)n, cJSON_IsString(expression) ? expression->valuestring : NULL,
            cJSON_IsString(response) ? response->valuestring : NULL, &e) != 0) {
        srv_store_changeset(r, "config", e.message);
        goto fail;
    }
    if ((out = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(out, "name",
                                name != NULL && cJSON_IsString(name) ? name->valuestring
                                                                     : key->valuestring) == NULL ||
        cJSON_AddStringToObject(out, "key", key->valuestring) == NULL ||
        (cfg = cJSON_AddObjectToObject(out, "config")) == NULL ||
        (arr = cJSON_AddArrayToObject(cfg, "paths")) == NULL ||
        cJSON_AddStringToObject(cfg, "expression", expression->valuestring) == NULL ||
        cJSON_AddStringToObject(cfg, "response", response->valuestring) == NULL ||
        cJSON_AddBoolToObject(out, "enabled", enabled) == NULL ||
        cJSON_AddNumberToObject(out, "order", (double)order) == NULL ||
        cJSON_AddStringToObject(out, "source_type", src->cfg->read_only ? "database" : "project") ==
            NULL ||
        cJSON_AddStringToObject(out, "source_id", src->cfg->id) == NULL)
        goto oom;
    for (i = 0; i < n; i++) {
        if ((p = cJSON_CreateString(list[i])) == NULL)
            goto oom;
        (void)cJSON_AddItemToArray(arr, p);
    }
    free(split);
    return out;
oom:
    srv_respond_detail(r, 500, "Internal server error");
fail:
    cJSON_Delete(out);
    free(split);
    return NULL;
}

/* One transponder in order: its `order`, then its place in the store. */
typedef struct pending {
    double order;
    int seq;
    cJSON *item;
} pending;

static int pending_cmp(const void *a, const void *b)
{
    const pending *x = a, *y = b;

    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    return x->seq - y->seq;
}

/* GET: the items sorted by order (stable). */
static void respond_list(srv_request *r, cJSON *items)
{
    int n = cJSON_GetArraySize(items), i = 0;
    pending *list = calloc(n > 0 ? (size_t)n : 1, sizeof(*list));
    cJSON *sorted = cJSON_CreateArray(), *it;

    if (list == NULL || sorted == NULL) {
        srv_respond_detail(r, 500, "Internal server error");
        goto done;
    }
    cJSON_ArrayForEach (it, items) {
        list[i].order = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "order"));
        list[i].seq = i;
        list[i].item = it;
        i++;
    }
    qsort(list, (size_t)n, sizeof(*list), pending_cmp);
    /* references: the items stay owned by the store, which is locked until the reply is built */
    for (i = 0; i < n; i++) {
        if (!cJSON_AddItemReferenceToArray(sorted, list[i].item)) {
            srv_respond_detail(r, 500, "Internal server error");
            goto done;
        }
    }
    srv_store_respond(r, 200, sorted);
done:
    cJSON_Delete(sorted);
    free(list);
}

static const srv_crud transponders_crud = {
    .kind = "transponders",
    .wrapper = "transponder",
    .changeset = 1,
    .delete_echoes = 1,
    .build = item_of,
    .list = respond_list,
};

void srv_transponders_handle(srv_request *r, int item)
{
    srv_crud_handle(r, item, srv_request_server(r)->transponders, &transponders_crud);
}

int srv_transponders_apply(srv_server *s, const srv_source *src, const char *key,
                           trifle_series **series, trifle_error *err)
{
    srv_store *st;
    pending *list = NULL;
    const cJSON *it;
    size_t n = 0, i;
    int rc = 0, seq = 0;

    if (s->transponders == NULL || strcmp(key, SYSTEM_KEY) == 0)
        return 0;
    st = &s->transponders->of[src - s->sources];
    /* copy the matching ones out, so the store is not locked while the series is transformed */
    pthread_mutex_lock(&st->lock);
    cJSON_ArrayForEach (it, st->items) {
        const char *pattern = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "key"));
        pending *grown;

        seq++;
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "enabled")) || pattern == NULL ||
            !key_matches(pattern, key))
            continue;
        grown = realloc(list, (n + 1) * sizeof(*list));
        if (grown == NULL || (grown[n].item = cJSON_Duplicate(it, 1)) == NULL) {
            list = grown != NULL ? grown : list;
            rc = srv_error(err, TRIFLE_ENOMEM, "out of memory");
            break;
        }
        list = grown;
        list[n].order = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "order"));
        list[n].seq = seq;
        n++;
    }
    pthread_mutex_unlock(&st->lock);
    if (rc == 0 && n > 1)
        qsort(list, n, sizeof(*list), pending_cmp);
    for (i = 0; rc == 0 && i < n; i++) {
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(list[i].item, "config");
        const char *paths[MAX_PATHS], *name;
        trifle_error te = TRIFLE_ERROR_INIT;
        const cJSON *p;
        trifle_series *out = NULL;
        size_t np = 0;

        cJSON_ArrayForEach (p, cJSON_GetObjectItemCaseSensitive(cfg, "paths")) {
            if (np < MAX_PATHS)
                paths[np++] = cJSON_GetStringValue(p);
        }
        rc = trifle_series_transform(
            &out, *series, paths, np,
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfg, "expression")),
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfg, "response")), &te);
        if (rc != 0) {
            name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(list[i].item, "name"));
            rc = srv_error(err, rc, "transponder %s: %s", name != NULL ? name : "?", te.message);
            break;
        }
        trifle_series_free(*series);
        *series = out;
    }
    for (i = 0; i < n; i++)
        cJSON_Delete(list[i].item);
    free(list);
    return rc;
}

int srv_transponders_open(srv_server *s, trifle_error *err)
{
    return srv_stores_new(&s->transponders, s, "transponders", err);
}

void srv_transponders_close(srv_server *s)
{
    srv_stores_free(&s->transponders);
}
