/* The series container (SPEC §8.1): construction, normalisation, dotted paths and fetch, plus the
 * sorted string sets the other post-processing modules build their path lists with.
 *
 * Rows are cJSON trees owned by the series and normalised once on construction, so everything
 * downstream treats "numeric" as "a finite cJSON number". */
#include "series_int.h"

#include <math.h>
#include <string.h>

#include "alloc_int.h"
#include "analysis_int.h"
#include "buf_int.h"
#include "error_int.h"
#include "json_int.h"
#include "numfmt_int.h"

/* ------------------------------------------------------------------------------------------- */
/* Small text helpers                                                                           */

int trifle__is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

size_t trifle__trim(const char *s, const char **start)
{
    size_t len;

    while (trifle__is_space(*s))
        s++;
    len = strlen(s);
    while (len > 0 && trifle__is_space(s[len - 1]))
        len--;
    *start = s;
    return len;
}

/* ------------------------------------------------------------------------------------------- */
/* Paths and fetch                                                                              */

int trifle__path_parse(trifle__path *p, const char *path, trifle_error *err)
{
    size_t len, i, nseg = 0, pos = 0;
    char *block = NULL;

    memset(p, 0, sizeof(*p));
    if (path == NULL)
        path = "";
    len = strlen(path);
    /* at most len/2+1 segments; the block holds each segment NUL-terminated, then the joined text
     */
    p->seg = trifle__calloc(len / 2 + 1, sizeof(char *));
    block = trifle__malloc(2 * len + 2);
    if (p->seg == NULL || block == NULL) {
        trifle__free(p->seg);
        trifle__free(block);
        p->seg = NULL;
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    }
    for (i = 0; i <= len;) {
        size_t a = i, b;
        while (i < len && path[i] != '.')
            i++;
        b = i;
        while (a < b && trifle__is_space(path[a]))
            a++;
        while (b > a && trifle__is_space(path[b - 1]))
            b--;
        if (b > a) {
            p->seg[nseg++] = block + pos;
            memcpy(block + pos, path + a, b - a);
            pos += b - a;
            block[pos++] = '\0';
        }
        i++; /* skip the '.' (or step past the end) */
    }
    p->n = nseg;
    p->mem = block;
    p->text = block + pos;
    for (i = 0; i < nseg; i++) {
        size_t sl = strlen(p->seg[i]);
        if (i > 0)
            block[pos++] = '.';
        memcpy(block + pos, p->seg[i], sl);
        pos += sl;
    }
    block[pos] = '\0';
    return 0;
}

void trifle__path_free(trifle__path *p)
{
    if (p == NULL)
        return;
    trifle__free(p->mem);
    trifle__free(p->seg);
    memset(p, 0, sizeof(*p));
}

/* A decimal array index; -1 when seg is not all digits or is out of range. */
static long long index_of(const char *seg)
{
    long long v = 0;

    if (*seg == '\0')
        return -1;
    for (; *seg != '\0'; seg++) {
        if (*seg < '0' || *seg > '9')
            return -1;
        if (v > (INT32_MAX - 9) / 10)
            return -1; /* no array that large exists */
        v = v * 10 + (*seg - '0');
    }
    return v;
}

const cJSON *trifle__fetch(const cJSON *v, const trifle__path *p)
{
    size_t i;

    for (i = 0; i < p->n && v != NULL; i++) {
        if (cJSON_IsObject(v)) {
            v = cJSON_GetObjectItemCaseSensitive(v, p->seg[i]);
        } else if (cJSON_IsArray(v)) {
            long long k = index_of(p->seg[i]);
            v = k < 0 ? NULL : cJSON_GetArrayItem(v, (int)k);
        } else {
            v = NULL;
        }
    }
    return v;
}

int trifle__numeric(const cJSON *v, double *out)
{
    if (v == NULL || !cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return 0;
    *out = v->valuedouble;
    return 1;
}

/* ------------------------------------------------------------------------------------------- */
/* Sorted string sets                                                                           */

/* Binary search: index of s, or -(insertion point) - 1. */
static ptrdiff_t strset_search(const trifle__strset *set, const char *s, size_t len)
{
    size_t lo = 0, hi = set->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *m = set->v[mid];
        size_t ml = strlen(m);
        int c = memcmp(m, s, ml < len ? ml : len);
        if (c == 0)
            c = ml < len ? -1 : ml > len ? 1 : 0;
        if (c == 0)
            return (ptrdiff_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(ptrdiff_t)lo - 1;
}

int trifle__strset_add(trifle__strset *set, const char *s, size_t len)
{
    ptrdiff_t at;
    size_t pos;
    char *copy;

    if (set->failed)
        return -1;
    at = strset_search(set, s, len);
    if (at >= 0)
        return 0;
    pos = (size_t)(-at - 1);
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        char **v = trifle__reallocarray(set->v, cap, sizeof(char *));
        if (v == NULL) {
            set->failed = 1;
            return -1;
        }
        set->v = v;
        set->cap = cap;
    }
    copy = trifle__strndup(s, len);
    if (copy == NULL) {
        set->failed = 1;
        return -1;
    }
    memmove(set->v + pos + 1, set->v + pos, (set->n - pos) * sizeof(char *));
    set->v[pos] = copy;
    set->n++;
    return 0;
}

ptrdiff_t trifle__strset_find(const trifle__strset *set, const char *s)
{
    ptrdiff_t at = strset_search(set, s, strlen(s));
    return at >= 0 ? at : -1;
}

void trifle__strset_free(trifle__strset *set)
{
    size_t i;

    for (i = 0; i < set->n; i++)
        trifle__free(set->v[i]);
    trifle__free(set->v);
    set->v = NULL;
    set->n = set->cap = 0;
    set->failed = 0;
}

int trifle__strset_export(char ***out, size_t *n_out, const trifle__strset *set, trifle_error *err)
{
    size_t i, bytes = (set->n + 1) * sizeof(char *), pos;
    char **list;
    char *text;

    *out = NULL;
    *n_out = 0;
    for (i = 0; i < set->n; i++)
        bytes += strlen(set->v[i]) + 1;
    list = trifle__malloc(bytes);
    if (list == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    text = (char *)(list + set->n + 1);
    for (i = 0, pos = 0; i < set->n; i++) {
        size_t l = strlen(set->v[i]) + 1;
        memcpy(text + pos, set->v[i], l);
        list[i] = text + pos;
        pos += l;
    }
    list[set->n] = NULL;
    *out = list;
    *n_out = set->n;
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* available_paths                                                                              */

/* Depth is bounded by the JSON nesting limit of the parser that built the rows. */
static void collect_numeric(trifle__strset *set, trifle__buf *prefix, const cJSON *v, int depth)
{
    double d;

    if (trifle__numeric(v, &d)) {
        (void)trifle__strset_add(set, prefix->data ? prefix->data : "", prefix->len);
    } else if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        size_t keep = prefix->len, k = 0;
        const cJSON *c;
        for (c = v->child; c != NULL; c = c->next, k++) {
            prefix->len = keep;
            if (depth > 0)
                trifle__buf_putc(prefix, '.');
            if (cJSON_IsObject(v))
                trifle__buf_puts(prefix, c->string ? c->string : "");
            else
                trifle__buf_printf(prefix, "%zu", k);
            collect_numeric(set, prefix, c, depth + 1);
        }
        prefix->len = keep;
        if (prefix->data != NULL)
            prefix->data[keep] = '\0';
    }
}

int trifle__available_paths(trifle__strset *set, const trifle_series *s, trifle_error *err)
{
    trifle__buf prefix = TRIFLE__BUF_INIT;
    size_t i;
    int failed;

    for (i = 0; i < s->n; i++)
        collect_numeric(set, &prefix, s->rows[i], 0);
    failed = trifle__buf_failed(&prefix) || set->failed;
    trifle__buf_free(&prefix);
    if (failed)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    return 0;
}

int trifle_series_available_paths(char ***out, size_t *n_out, const trifle_series *s,
                                  trifle_error *err)
{
    trifle__strset set = TRIFLE__STRSET_INIT;
    int rc;

    *out = NULL;
    *n_out = 0;
    rc = trifle__available_paths(&set, s, err);
    if (rc == 0)
        rc = trifle__strset_export(out, n_out, &set, err);
    trifle__strset_free(&set);
    return rc;
}

/* ------------------------------------------------------------------------------------------- */
/* The container                                                                                */

int trifle__series_new(trifle_series **out, size_t n, trifle_error *err)
{
    trifle_series *s = trifle__calloc(1, sizeof(*s));

    *out = NULL;
    if (s == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    if (n > 0) {
        s->at = trifle__calloc(n, sizeof(*s->at));
        s->rows = trifle__calloc(n, sizeof(*s->rows));
        if (s->at == NULL || s->rows == NULL) {
            trifle__free(s->at);
            trifle__free(s->rows);
            trifle__free(s);
            return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        }
    }
    s->n = n;
    *out = s;
    return 0;
}

void trifle__series_normalize(cJSON *v)
{
    if (v == NULL || (v->type & cJSON_IsReference))
        return;
    if (cJSON_IsString(v) && v->valuestring != NULL) {
        const char *t;
        size_t len = trifle__trim(v->valuestring, &t);
        double d;
        if (trifle__parse_double(t, len, &d) == 0) {
            cJSON_free(v->valuestring);
            v->valuestring = NULL;
            v->type = (v->type & cJSON_StringIsConst) | cJSON_Number;
            cJSON_SetNumberValue(v, d);
        }
    } else if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        cJSON *c;
        for (c = v->child; c != NULL; c = c->next)
            trifle__series_normalize(c);
    }
}

void trifle_series_free(trifle_series *s)
{
    size_t i;

    if (s == NULL)
        return;
    for (i = 0; i < s->n; i++)
        cJSON_Delete(s->rows[i]);
    trifle__free(s->rows);
    trifle__free(s->at);
    trifle__free(s);
}

size_t trifle_series_len(const trifle_series *s)
{
    return s == NULL ? 0 : s->n;
}

int64_t trifle_series_at(const trifle_series *s, size_t i)
{
    return s == NULL || i >= s->n ? 0 : s->at[i];
}

int trifle_series_value(const trifle_series *s, size_t i, const char *path, double *out)
{
    trifle__path p;
    int found;

    if (s == NULL || i >= s->n)
        return TRIFLE_ENOTFOUND;
    if (trifle__path_parse(&p, path, NULL) != 0)
        return TRIFLE_ENOMEM;
    found = trifle__numeric(trifle__fetch(s->rows[i], &p), out);
    trifle__path_free(&p);
    return found ? 0 : TRIFLE_ENOTFOUND;
}

int trifle_series_row_json(const trifle_series *s, size_t i, char **out, int flags,
                           trifle_error *err)
{
    *out = NULL;
    if (s == NULL || i >= s->n)
        return trifle__error(err, TRIFLE_EINVAL, "row %zu out of range", i);
    *out = trifle__json_print(s->rows[i], (flags & TRIFLE_JSON_PRETTY) != 0);
    if (*out == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    return 0;
}

cJSON *trifle__time_json(int64_t at, const trifle_zone *zone, int flags)
{
    char buf[64];

    if (flags & TRIFLE_SERIES_UNIX_TIME)
        return cJSON_CreateNumber((double)at);
    (void)trifle_time_format(buf, sizeof(buf), at, zone);
    return cJSON_CreateString(buf);
}

int trifle_series_to_json(const trifle_series *s, const trifle_zone *zone, char **out, int flags,
                          trifle_error *err)
{
    cJSON *doc = cJSON_CreateObject(), *at = cJSON_AddArrayToObject(doc, "at"),
          *values = cJSON_AddArrayToObject(doc, "values");
    int rc = TRIFLE_ENOMEM;
    size_t i;

    *out = NULL;
    if (doc == NULL || at == NULL || values == NULL)
        goto done;
    for (i = 0; s != NULL && i < s->n; i++) {
        cJSON *t = trifle__time_json(s->at[i], zone, 0);
        if (t == NULL || !cJSON_AddItemToArray(at, t)) {
            cJSON_Delete(t);
            goto done;
        }
        /* a reference node shares the row without copying it (cJSON_Delete leaves it alone) */
        if (!cJSON_AddItemReferenceToArray(values, s->rows[i]))
            goto done;
    }
    *out = trifle__json_print(doc, (flags & TRIFLE_JSON_PRETTY) != 0);
    if (*out != NULL)
        rc = 0;
done:
    cJSON_Delete(doc);
    if (rc != 0)
        return trifle__error(err, rc, "out of memory");
    return 0;
}

int trifle_series_from_json(trifle_series **out, const char *json, size_t len, trifle_error *err)
{
    cJSON *doc = NULL, *at, *values;
    trifle_series *s = NULL;
    size_t n, i;
    int rc;

    *out = NULL;
    if (json == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid JSON: no text");
    rc = trifle__json_parse(&doc, json, len, err);
    if (rc != 0)
        return rc;
    at = cJSON_GetObjectItemCaseSensitive(doc, "at");
    values = cJSON_GetObjectItemCaseSensitive(doc, "values");
    if (!cJSON_IsObject(doc) || !cJSON_IsArray(at) || !cJSON_IsArray(values)) {
        rc = trifle__error(err, TRIFLE_EINVAL,
                           "series must be an object with \"at\" and \"values\" arrays");
        goto done;
    }
    n = (size_t)cJSON_GetArraySize(at);
    if (n != (size_t)cJSON_GetArraySize(values)) {
        rc = trifle__error(err, TRIFLE_EINVAL, "series arrays differ in length");
        goto done;
    }
    rc = trifle__series_new(&s, n, err);
    if (rc != 0)
        goto done;
    for (i = 0; i < n; i++) {
        const cJSON *a = cJSON_GetArrayItem(at, 0);
        double d = cJSON_IsNumber(a) ? a->valuedouble : NAN;
        /* ±2^63 bounds: the largest doubles strictly inside the int64_t range */
        if (!(d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0)) {
            rc = trifle__error(err, TRIFLE_EINVAL, "series at[%zu] is not an integer", i);
            goto done;
        }
        s->at[i] = (int64_t)d;
        cJSON_DeleteItemFromArray(at, 0);
        s->rows[i] = cJSON_DetachItemFromArray(values, 0);
        trifle__series_normalize(s->rows[i]);
    }
    *out = s;
    s = NULL;
done:
    trifle_series_free(s);
    cJSON_Delete(doc);
    return rc;
}
