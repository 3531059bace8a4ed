/* Path resolution for formatters (SPEC §8.4) and the timeline and category formatters (§8.5). */
#include "analysis_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc_int.h"
#include "buf_int.h"
#include "error_int.h"
#include "json_int.h"

/* ------------------------------------------------------------------------------------------- */
/* Resolution                                                                                   */

static void prefix_push(trifle__buf *prefix, int has_prefix, const char *name, size_t index,
                        int is_index)
{
    if (has_prefix)
        trifle__buf_putc(prefix, '.');
    if (is_index)
        trifle__buf_printf(prefix, "%zu", index);
    else
        trifle__buf_puts(prefix, name ? name : "");
}

static void prefix_pop(trifle__buf *prefix, size_t keep)
{
    prefix->len = keep;
    if (prefix->data != NULL)
        prefix->data[keep] = '\0';
}

static const char *prefix_text(const trifle__buf *prefix)
{
    return prefix->data != NULL ? prefix->data : "";
}

/* Every leaf (non-container value) beneath v, as paths extending prefix. */
static void collect_leaves(trifle__strset *set, trifle__buf *prefix, int has_prefix, const cJSON *v)
{
    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        size_t keep = prefix->len, k = 0;
        const cJSON *c;
        for (c = v->child; c != NULL; c = c->next, k++) {
            prefix_push(prefix, has_prefix, c->string, k, cJSON_IsArray(v));
            collect_leaves(set, prefix, 1, c);
            prefix_pop(prefix, keep);
        }
    } else {
        (void)trifle__strset_add(set, prefix_text(prefix), prefix->len);
    }
}

/* The child of v called seg (member name, or decimal index of an array); NULL when absent. */
static const cJSON *child_of(const cJSON *v, const char *seg)
{
    trifle__path one;

    one.n = 1;
    one.seg = (char **)&seg;
    one.text = NULL;
    one.mem = NULL;
    return trifle__fetch(v, &one);
}

/* Wildcard expansion: nodes[r] is row r's value at the current prefix (NULL when absent). */
static int expand(trifle__strset *set, trifle__buf *prefix, const trifle__path *tp, size_t i,
                  const cJSON **nodes, size_t n_rows)
{
    const cJSON **next = NULL;
    trifle__strset names = TRIFLE__STRSET_INIT;
    size_t keep = prefix->len, r, k;
    int rc = 0;

    if (i == tp->n) {
        (void)trifle__strset_add(set, prefix_text(prefix), prefix->len);
        return set->failed ? TRIFLE_ENOMEM : 0;
    }
    next = trifle__calloc(n_rows ? n_rows : 1, sizeof(*next));
    if (next == NULL)
        return TRIFLE_ENOMEM;
    if (strcmp(tp->seg[i], "*") == 0) {
        char num[32];
        for (r = 0; r < n_rows; r++) {
            const cJSON *c;
            if (!cJSON_IsObject(nodes[r]) && !cJSON_IsArray(nodes[r]))
                continue;
            for (c = nodes[r]->child, k = 0; c != NULL; c = c->next, k++) {
                if (cJSON_IsArray(nodes[r])) {
                    int len = snprintf(num, sizeof(num), "%zu", k);
                    (void)trifle__strset_add(&names, num, (size_t)len);
                } else {
                    (void)trifle__strset_add(&names, c->string ? c->string : "",
                                             c->string ? strlen(c->string) : 0);
                }
            }
        }
        if (names.failed)
            rc = TRIFLE_ENOMEM;
        for (k = 0; rc == 0 && k < names.n; k++) {
            for (r = 0; r < n_rows; r++)
                next[r] = nodes[r] == NULL ? NULL : child_of(nodes[r], names.v[k]);
            prefix_push(prefix, i > 0, names.v[k], 0, 0);
            rc = expand(set, prefix, tp, i + 1, next, n_rows);
            prefix_pop(prefix, keep);
        }
    } else {
        for (r = 0; r < n_rows; r++)
            next[r] = nodes[r] == NULL ? NULL : child_of(nodes[r], tp->seg[i]);
        prefix_push(prefix, i > 0, tp->seg[i], 0, 0);
        rc = expand(set, prefix, tp, i + 1, next, n_rows);
        prefix_pop(prefix, keep);
    }
    trifle__strset_free(&names);
    trifle__free(next);
    return rc;
}

int trifle__resolve_paths(trifle__strset *set, const trifle_series *s, const char *path,
                          trifle_error *err)
{
    trifle__buf prefix = TRIFLE__BUF_INIT;
    trifle__path tp;
    const cJSON **nodes = NULL;
    size_t n = s == NULL ? 0 : s->n, i, r;
    int rc, wildcard = 0, container = 0, member = 0;

    rc = trifle__path_parse(&tp, path, err);
    if (rc != 0)
        return rc;
    nodes = trifle__calloc(n ? n : 1, sizeof(*nodes));
    if (nodes == NULL) {
        rc = TRIFLE_ENOMEM;
        goto done;
    }
    for (i = 0; i < tp.n; i++)
        wildcard |= strcmp(tp.seg[i], "*") == 0;
    if (wildcard) {
        for (r = 0; r < n; r++)
            nodes[r] = s->rows[r];
        rc = expand(set, &prefix, &tp, 0, nodes, n);
        goto done;
    }
    for (r = 0; r < n; r++) {
        nodes[r] = trifle__fetch(s->rows[r], &tp);
        container |= cJSON_IsObject(nodes[r]) || cJSON_IsArray(nodes[r]);
        member |= nodes[r] != NULL;
    }
    if (container) {
        trifle__buf_puts(&prefix, tp.text);
        for (r = 0; r < n; r++)
            if (nodes[r] != NULL)
                collect_leaves(set, &prefix, tp.n > 0, nodes[r]);
        if (set->n == 0)
            (void)trifle__strset_add(set, tp.text, strlen(tp.text));
    } else if (member) {
        (void)trifle__strset_add(set, tp.text, strlen(tp.text));
    }
done:
    if (rc == 0 && (set->failed || trifle__buf_failed(&prefix)))
        rc = TRIFLE_ENOMEM;
    trifle__buf_free(&prefix);
    trifle__free(nodes);
    trifle__path_free(&tp);
    if (rc == TRIFLE_ENOMEM)
        return trifle__error(err, rc, "out of memory");
    return rc;
}

int trifle_series_resolve_paths(char ***out, size_t *n_out, const trifle_series *s,
                                const char *path, trifle_error *err)
{
    trifle__strset set = TRIFLE__STRSET_INIT;
    int rc;

    *out = NULL;
    *n_out = 0;
    rc = trifle__resolve_paths(&set, s, path, err);
    if (rc == 0)
        rc = trifle__strset_export(out, n_out, &set, err);
    trifle__strset_free(&set);
    return rc;
}

/* ------------------------------------------------------------------------------------------- */
/* Timeline                                                                                     */

static int callback_failed(trifle_error *err, int rc, const char *which)
{
    return trifle__error(err, rc < 0 ? rc : TRIFLE_ERROR, "%s callback failed: %s", which,
                         trifle_strerror(rc < 0 ? rc : TRIFLE_ERROR));
}

/* raw as JSON text for a callback into *out (NULL when raw is). Returns 0, or TRIFLE_ENOMEM
 * with err set. */
static int raw_text(char **out, const cJSON *raw, trifle_error *err)
{
    if (raw != NULL && (*out = trifle__json_print(raw, 0)) == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    return 0;
}

/* One timeline entry of row i at tp; *out NULL on allocation failure (rc 0) or error (rc). */
static int timeline_entry(cJSON **out, const trifle_series *s, size_t i, const trifle__path *tp,
                          const trifle_zone *zone, int flags, trifle_timeline_fn fn, void *payload,
                          trifle_error *err)
{
    const cJSON *raw = trifle__fetch(s->rows[i], tp);
    cJSON *e, *t;
    double d = 0;

    *out = NULL;
    if (fn != NULL) {
        char *raw_json = NULL;
        const char *json = NULL;
        int rc;
        if (raw_text(&raw_json, raw, err) != 0)
            return TRIFLE_ENOMEM;
        rc = fn(&json, s->at[i], raw_json, payload);
        trifle__free(raw_json);
        if (rc != 0)
            return callback_failed(err, rc, "timeline");
        if (json != NULL)
            return trifle__json_parse(out, json, strlen(json), err);
    }
    (void)trifle__numeric(raw, &d);
    e = cJSON_CreateObject();
    t = trifle__time_json(s->at[i], zone, flags);
    if (e == NULL || t == NULL || !cJSON_AddItemToObject(e, "at", t)) {
        cJSON_Delete(e);
        cJSON_Delete(t);
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    }
    if (cJSON_AddNumberToObject(e, "value", d) == NULL) {
        cJSON_Delete(e);
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    }
    *out = e;
    return 0;
}

/* Entries of rows [from, to) appended to list. */
static int timeline_rows(cJSON *list, const trifle_series *s, size_t from, size_t to,
                         const trifle__path *tp, const trifle_zone *zone, int flags,
                         trifle_timeline_fn fn, void *payload, trifle_error *err)
{
    size_t i;

    for (i = from; i < to; i++) {
        cJSON *e = NULL;
        int rc = timeline_entry(&e, s, i, tp, zone, flags, fn, payload, err);
        if (rc != 0)
            return rc;
        if (!cJSON_AddItemToArray(list, e)) {
            cJSON_Delete(e);
            return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        }
    }
    return 0;
}

int trifle__timeline(cJSON **out, const trifle_series *s, const char *path, size_t slices,
                     const trifle_zone *zone, int flags, trifle_timeline_fn fn, void *payload,
                     trifle_error *err)
{
    trifle__strset paths = TRIFLE__STRSET_INIT;
    cJSON *result = cJSON_CreateObject();
    size_t n = s == NULL ? 0 : s->n, groups, start, size, k, g;
    int rc;

    *out = NULL;
    if (result == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    rc = trifle__resolve_paths(&paths, s, path, err);
    trifle__slices(n, slices, &groups, &start, &size);
    for (k = 0; rc == 0 && k < paths.n; k++) {
        cJSON *list = cJSON_AddArrayToObject(result, paths.v[k]);
        trifle__path tp;
        if (list == NULL) {
            rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
            break;
        }
        rc = trifle__path_parse(&tp, paths.v[k], err);
        if (rc != 0)
            break;
        if (slices <= 1 || n == 0) { /* no rows (s may be NULL): no groups either */
            rc = timeline_rows(list, s, 0, n, &tp, zone, flags, fn, payload, err);
        } else {
            for (g = 0; rc == 0 && g < groups; g++) {
                cJSON *group = cJSON_CreateArray();
                if (group == NULL || !cJSON_AddItemToArray(list, group)) {
                    cJSON_Delete(group);
                    rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
                    break;
                }
                rc = timeline_rows(group, s, start + g * size, start + (g + 1) * size, &tp, zone,
                                   flags, fn, payload, err);
            }
        }
        trifle__path_free(&tp);
    }
    trifle__strset_free(&paths);
    if (rc != 0) {
        cJSON_Delete(result);
        return rc;
    }
    *out = result;
    return 0;
}

int trifle_series_timeline(char **out, const trifle_series *s, const char *path, size_t slices,
                           const trifle_zone *zone, int flags, trifle_timeline_fn fn, void *payload,
                           trifle_error *err)
{
    cJSON *tree = NULL;
    int rc = trifle__timeline(&tree, s, path, slices, zone, flags, fn, payload, err);

    *out = NULL;
    if (rc != 0)
        return rc;
    *out = trifle__json_print(tree, (flags & TRIFLE_JSON_PRETTY) != 0);
    cJSON_Delete(tree);
    return *out == NULL ? trifle__error(err, TRIFLE_ENOMEM, "out of memory") : 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Category                                                                                     */

/* Add amount under key in obj, creating the member (also for 0). lookup = 0 when the caller knows
 * the key is new (no callback: concrete paths are unique). */
static int category_add(cJSON *obj, const char *key, double amount, int lookup)
{
    cJSON *m = lookup ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;

    if (!isfinite(amount))
        amount = 0;
    if (m != NULL) {
        cJSON_SetNumberValue(m, m->valuedouble + amount);
        return 0;
    }
    return cJSON_AddNumberToObject(obj, key, amount) == NULL ? TRIFLE_ENOMEM : 0;
}

static int category_group(cJSON *obj, const trifle_series *s, size_t from, size_t to,
                          const trifle__strset *paths, const trifle__path *tps,
                          trifle_category_fn fn, void *payload, trifle_error *err)
{
    size_t k, i;

    for (k = 0; k < paths->n; k++) {
        double sum = 0;
        for (i = from; i < to; i++) {
            const cJSON *raw = trifle__fetch(s->rows[i], &tps[k]);
            const char *key = NULL;
            double amount = 0;
            (void)trifle__numeric(raw, &amount);
            if (fn != NULL) {
                char *raw_json = NULL;
                int rc;
                if (raw_text(&raw_json, raw, err) != 0)
                    return TRIFLE_ENOMEM;
                rc = fn(&key, &amount, paths->v[k], raw_json, payload);
                trifle__free(raw_json);
                if (rc != 0)
                    return callback_failed(err, rc, "category");
                if (category_add(obj, key != NULL && *key != '\0' ? key : paths->v[k], amount, 1) !=
                    0)
                    return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
            } else {
                sum += amount;
            }
        }
        /* without a callback each concrete path is one new key (groups are never empty, so
         * with a callback every path has been added above) */
        if (fn == NULL && category_add(obj, paths->v[k], sum, 0) != 0)
            return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    }
    return 0;
}

int trifle__category(cJSON **out, const trifle_series *s, const char *path, size_t slices,
                     trifle_category_fn fn, void *payload, trifle_error *err)
{
    trifle__strset paths = TRIFLE__STRSET_INIT;
    trifle__path *tps = NULL;
    cJSON *result = NULL;
    size_t n = s == NULL ? 0 : s->n, groups, start, size, k, g, parsed = 0;
    int rc;

    *out = NULL;
    rc = trifle__resolve_paths(&paths, s, path, err);
    if (rc != 0)
        goto done;
    tps = trifle__calloc(paths.n ? paths.n : 1, sizeof(*tps));
    if (tps == NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    for (k = 0; rc == 0 && k < paths.n; k++, parsed++)
        rc = trifle__path_parse(&tps[k], paths.v[k], err);
    if (rc != 0)
        goto done;
    trifle__slices(n, slices, &groups, &start, &size);
    result = slices <= 1 ? cJSON_CreateObject() : cJSON_CreateArray();
    if (result == NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    for (g = 0; g < groups; g++) {
        cJSON *obj = slices <= 1 ? result : cJSON_CreateObject();
        if (obj == NULL || (obj != result && !cJSON_AddItemToArray(result, obj))) {
            cJSON_Delete(obj);
            rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
            goto done;
        }
        rc = category_group(obj, s, start + g * size, start + (g + 1) * size, &paths, tps, fn,
                            payload, err);
        if (rc != 0)
            goto done;
    }
    *out = result;
    result = NULL;
done:
    cJSON_Delete(result);
    for (k = 0; k < parsed; k++)
        trifle__path_free(&tps[k]);
    trifle__free(tps);
    trifle__strset_free(&paths);
    return rc;
}

int trifle_series_category(char **out, const trifle_series *s, const char *path, size_t slices,
                           int flags, trifle_category_fn fn, void *payload, trifle_error *err)
{
    cJSON *tree = NULL;
    int rc = trifle__category(&tree, s, path, slices, fn, payload, err);

    *out = NULL;
    if (rc != 0)
        return rc;
    *out = trifle__json_print(tree, (flags & TRIFLE_JSON_PRETTY) != 0);
    cJSON_Delete(tree);
    return *out == NULL ? trifle__error(err, TRIFLE_ENOMEM, "out of memory") : 0;
}
