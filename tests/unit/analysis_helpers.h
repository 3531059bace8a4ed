/* Helpers shared by the series post-processing tests (test_series.c, test_expression.c,
 * test_query.c, test_designator.c): series built from vector JSON, exact JSON comparison and a
 * failing allocator for out-of-memory loops. */
#ifndef TRIFLE_TEST_ANALYSIS_HELPERS_H
#define TRIFLE_TEST_ANALYSIS_HELPERS_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oom_alloc.h"
#include "series_int.h"
#include "trifle/analysis.h"

/* Exact deep equality: numbers compare with ==, object members in any order. */
static inline int json_equal(const cJSON *a, const cJSON *b)
{
    const cJSON *c;

    if (a == NULL || b == NULL)
        return a == b;
    if ((a->type & 0xFF) != (b->type & 0xFF))
        return 0;
    if (cJSON_IsNumber(a))
        return a->valuedouble == b->valuedouble;
    if (cJSON_IsString(a))
        return strcmp(a->valuestring, b->valuestring) == 0;
    if (cJSON_IsArray(a)) {
        const cJSON *d = b->child;
        for (c = a->child; c != NULL; c = c->next, d = d->next)
            if (d == NULL || !json_equal(c, d))
                return 0;
        return d == NULL;
    }
    if (cJSON_IsObject(a)) {
        if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
            return 0;
        for (c = a->child; c != NULL; c = c->next)
            if (!json_equal(c, cJSON_GetObjectItemCaseSensitive(b, c->string)))
                return 0;
        return 1;
    }
    return 1; /* null, true, false */
}

/* Print both trees when they differ (for the test log) and return equality. */
static inline int json_check(const cJSON *got, const cJSON *want, const char *what)
{
    if (!json_equal(got, want)) {
        char *g = cJSON_PrintUnformatted(got), *w = cJSON_PrintUnformatted(want);
        fprintf(stderr, "%s:\n  got  %s\n  want %s\n", what, g ? g : "(null)", w ? w : "(null)");
        cJSON_free(g);
        cJSON_free(w);
        return 0;
    }
    return 1;
}

/* A series with the given bucket starts (NULL: 0, 1, 2, ...) and copies of rows, normalised. */
static inline trifle_series *series_from_json_parts(const cJSON *at, const cJSON *rows)
{
    trifle_series *s = NULL;
    size_t n = (size_t)cJSON_GetArraySize(rows), i;

    if (trifle__series_new(&s, n, NULL) != 0)
        abort();
    for (i = 0; i < n; i++) {
        s->at[i] = at != NULL ? (int64_t)cJSON_GetArrayItem(at, (int)i)->valuedouble : (int64_t)i;
        s->rows[i] = cJSON_Duplicate(cJSON_GetArrayItem(rows, (int)i), 1);
        if (s->rows[i] == NULL)
            abort();
        trifle__series_normalize(s->rows[i]);
    }
    return s;
}

/* From a vector's {"at":[...],"values":[...]} object. */
static inline trifle_series *series_from_vector(const cJSON *obj)
{
    return series_from_json_parts(cJSON_GetObjectItemCaseSensitive(obj, "at"),
                                  cJSON_GetObjectItemCaseSensitive(obj, "values"));
}

/* A NULL-terminated string list as a JSON array, for comparisons. */
static inline cJSON *strings_json(char **list, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    size_t i;

    for (i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(list[i]));
    return a;
}

/* Fail every allocation from number @p fail_at on (oom_alloc.h's budget mode), until oom_stop(). */
static inline void oom_start(size_t fail_at)
{
    oom_begin(-1);
    oom_budget = (long)fail_at - 1;
}

static inline void oom_stop(void)
{
    oom_budget = -1;
    oom_end();
}

#endif
