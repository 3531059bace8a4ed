/* The Nocturnal floor and timeline vectors (conformance/vectors/nocturnal.json) end to end through
 * a stats handle on a few zones: a track lands in the vector's bucket (checked with the storage
 * identifier of the expected start) and values() reads the expected bucket starts back. */
#include "harness.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void json_free_cb(conf_ctx *c, void *p)
{
    (void)c;
    cJSON_Delete(p);
}

/* The vectors file, or NULL (a skip when the directory is missing, else a failure). */
static cJSON *vectors_load(conf_ctx *c, const char *file)
{
    const char *path = conf_printf(c, "%s/%s", c->vectors_dir, file);
    FILE *f = fopen(path, "rb");
    cJSON *root;
    char *text;
    long len;

    if (f == NULL) {
        conf_skip(c, "vectors not found: %s", path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        (void)fclose(f);
        conf_fail(c, "cannot read %s", path);
        return NULL;
    }
    text = conf_alloc(c, (size_t)len + 1);
    if (fread(text, 1, (size_t)len, f) != (size_t)len) {
        (void)fclose(f);
        conf_fail(c, "cannot read %s", path);
        return NULL;
    }
    (void)fclose(f);
    if ((root = cJSON_Parse(text)) == NULL) {
        conf_fail(c, "%s is not JSON", path);
        return NULL;
    }
    conf_defer(c, json_free_cb, root);
    return root;
}

static const char *str_of(const cJSON *v, const char *name)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(v, name);

    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static int int_of(const cJSON *v, const char *name, int64_t *out)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(v, name);

    if (!cJSON_IsNumber(x))
        return -1;
    *out = (int64_t)x->valuedouble;
    return 0;
}

/* The distinct granularities of the vectors in @p list that match zone and week start. */
static const char *granularity_list(conf_ctx *c, const cJSON *list, const char *zone,
                                    const char *ws)
{
    const cJSON *v;
    char *out = conf_strdup(c, "");

    cJSON_ArrayForEach (v, list) {
        const char *z = str_of(v, "zone"), *w = str_of(v, "week_start"),
                   *g = str_of(v, "granularity");
        const char *p = out;
        size_t len;
        int seen = 0;

        if (z == NULL || w == NULL || g == NULL || strcmp(z, zone) != 0 || strcmp(w, ws) != 0)
            continue;
        len = strlen(g);
        while (*p != '\0' && !seen) {
            size_t n = strcspn(p, ",");

            seen = n == len && strncmp(p, g, n) == 0;
            p += n + (p[n] == ',');
        }
        if (!seen)
            out = conf_printf(c, "%s%s%s", out, out[0] != '\0' ? "," : "", g);
    }
    return out;
}

/* The distinct week starts used by the vectors of @p zone, as a NULL-ended array. */
static const char **week_starts(conf_ctx *c, const cJSON *list, const char *zone)
{
    const char **out = conf_alloc(c, 8 * sizeof(*out));
    const cJSON *v;
    size_t n = 0, i;

    cJSON_ArrayForEach (v, list) {
        const char *z = str_of(v, "zone"), *w = str_of(v, "week_start");

        if (z == NULL || w == NULL || strcmp(z, zone) != 0)
            continue;
        for (i = 0; i < n && strcmp(out[i], w) != 0; i++)
            ;
        if (i == n && n < 7)
            out[n++] = w;
    }
    return out;
}

static void floor_zone(conf_ctx *c, const char *zone)
{
    const cJSON *root, *list, *v;
    const char **ws;
    trifle_payload *one;
    size_t i, checked = 0;

    if ((root = vectors_load(c, "nocturnal.json")) == NULL ||
        (one = conf_payload(c, "{\"count\":1}")) == NULL)
        return;
    CONF_CHECK(c, cJSON_IsArray(list = cJSON_GetObjectItemCaseSensitive(root, "floor")),
               "nocturnal.json has no floor array");
    ws = week_starts(c, list, zone);
    for (i = 0; ws[i] != NULL; i++) {
        trifle *t = conf_handle(c, NULL, "time_zone", zone, "week_start", ws[i], "granularities",
                                granularity_list(c, list, zone, ws[i]), NULL);

        if (t == NULL)
            return;
        cJSON_ArrayForEach (v, list) {
            const char *id = str_of(v, "id"), *z = str_of(v, "zone"), *w = str_of(v, "week_start");
            const char *g = str_of(v, "granularity"), *key;
            int64_t at, want;
            trifle_series *s;
            trifle_bucket b;
            conf_reads *r;

            if (z == NULL || w == NULL || strcmp(z, zone) != 0 || strcmp(w, ws[i]) != 0)
                continue;
            CONF_CHECK(c,
                       id != NULL && g != NULL && int_of(v, "at_unix", &at) == 0 &&
                           int_of(v, "expected", &want) == 0,
                       "malformed floor vector %s", id != NULL ? id : "?");
            key = conf_printf(c, "v:%s", id);
            CONF_OK(c, conf_printf(c, "%s: track", id), trifle_track(t, key, at, one, 0, &c->err));
            if ((s = conf_values(c, t, key, at, at, g)) == NULL)
                return;
            CONF_CHECK(c, trifle_series_len(s) == 1 && trifle_series_at(s, 0) == want,
                       "%s: values(%s, %s) gives %zu rows starting %lld, want one at %lld", id, g,
                       str_of(v, "at"), trifle_series_len(s), (long long)trifle_series_at(s, 0),
                       (long long)want);
            if (conf_expect_row(c, s, 0, "{\"count\":1}") != 0 ||
                conf_bucket(c, c->st, &b, key, g, want) != 0 ||
                (r = conf_get(c, c->st, &b, 1)) == NULL ||
                conf_expect(c, r, 0, conf_printf(c, "%s: stored bucket %s", id, b.id),
                            CONF_LEAVES({"count", 1}), CONF_EXACT) != 0)
                return;
            checked++;
        }
        if (conf_handle_close(c, t) != 0)
            return;
    }
    CONF_CHECK(c, checked > 0, "no floor vectors for %s", zone);
}

static const char *const timeline_zones[] = {"UTC", "Europe/Bratislava", "America/New_York",
                                             "Australia/Lord_Howe", NULL};

static void case_timeline(conf_ctx *c)
{
    const cJSON *root, *list, *v;
    size_t z, i, checked = 0;

    if ((root = vectors_load(c, "nocturnal.json")) == NULL)
        return;
    CONF_CHECK(c, cJSON_IsArray(list = cJSON_GetObjectItemCaseSensitive(root, "timeline")),
               "nocturnal.json has no timeline array");
    for (z = 0; timeline_zones[z] != NULL; z++) {
        const char *zone = timeline_zones[z];
        const char **ws = week_starts(c, list, zone);

        for (i = 0; ws[i] != NULL; i++) {
            trifle *t = conf_handle(c, NULL, "time_zone", zone, "week_start", ws[i],
                                    "granularities", granularity_list(c, list, zone, ws[i]), NULL);

            if (t == NULL)
                return;
            cJSON_ArrayForEach (v, list) {
                const char *id = str_of(v, "id"), *zn = str_of(v, "zone");
                const char *w = str_of(v, "week_start"), *g = str_of(v, "granularity"), *key;
                const cJSON *exp = cJSON_GetObjectItemCaseSensitive(v, "expected"), *x;
                int64_t from, to;
                trifle_series *s;
                size_t j = 0, n;

                if (zn == NULL || w == NULL || strcmp(zn, zone) != 0 || strcmp(w, ws[i]) != 0)
                    continue;
                CONF_CHECK(c,
                           id != NULL && g != NULL && cJSON_IsArray(exp) &&
                               int_of(v, "from_unix", &from) == 0 && int_of(v, "to_unix", &to) == 0,
                           "malformed timeline vector %s", id != NULL ? id : "?");
                key = conf_printf(c, "t:%s", id);
                n = (size_t)cJSON_GetArraySize(exp);
                cJSON_ArrayForEach (x, exp) {
                    char json[32];

                    (void)snprintf(json, sizeof(json), "{\"count\":%zu}", ++j);
                    CONF_OK(c, conf_printf(c, "%s: track", id),
                            trifle_track(t, key, (int64_t)x->valuedouble, conf_payload(c, json), 0,
                                         &c->err));
                }
                if ((s = conf_values(c, t, key, from, to, g)) == NULL)
                    return;
                CONF_CHECK(c, trifle_series_len(s) == n, "%s: %zu buckets, want %zu", id,
                           trifle_series_len(s), n);
                j = 0;
                cJSON_ArrayForEach (x, exp) {
                    char json[32];

                    CONF_CHECK(c, trifle_series_at(s, j) == (int64_t)x->valuedouble,
                               "%s: bucket %zu starts at %lld, want %lld", id, j,
                               (long long)trifle_series_at(s, j), (long long)x->valuedouble);
                    (void)snprintf(json, sizeof(json), "{\"count\":%zu}", j + 1);
                    if (conf_expect_row(c, s, j, json) != 0)
                        return;
                    j++;
                }
                checked++;
            }
            if (conf_handle_close(c, t) != 0)
                return;
        }
    }
    CONF_CHECK(c, checked > 0, "no timeline vectors for the zones tested");
}

static void case_floor_utc(conf_ctx *c)
{
    floor_zone(c, "UTC");
}

static void case_floor_bratislava(conf_ctx *c)
{
    floor_zone(c, "Europe/Bratislava");
}

static void case_floor_new_york(conf_ctx *c)
{
    floor_zone(c, "America/New_York");
}

static void case_floor_lord_howe(conf_ctx *c)
{
    floor_zone(c, "Australia/Lord_Howe");
}

const conf_case conf_cases_vectors[] = {
    {"vectors.floor.utc", 0, 0, TRIFLE_CAP_CALLS, case_floor_utc},
    {"vectors.floor.europe_bratislava", 0, 0, TRIFLE_CAP_CALLS, case_floor_bratislava},
    {"vectors.floor.america_new_york", 0, 0, TRIFLE_CAP_CALLS, case_floor_new_york},
    {"vectors.floor.australia_lord_howe", 0, 0, TRIFLE_CAP_CALLS, case_floor_lord_howe},
    {"vectors.timeline", 0, 0, TRIFLE_CAP_CALLS, case_timeline},
    {NULL, 0, 0, 0, NULL},
};
