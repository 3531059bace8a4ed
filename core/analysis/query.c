/* The metrics query (SPEC §9.7, ERRATA I11 and minor 18) over an abstract environment, and its
 * result: an outcome (trifle_query_outcome), a code, a message and the `data` object or the extra
 * error fields. How an outcome is answered (HTTP status and body, CLI error line, tables) is the
 * server's and the CLI's business (server/api.c, cli/query.c); the one place HTTP statuses are
 * read here is a driver's answer (take_answer), which the driver ABI hands over in the terms of
 * `POST /api/v1/metrics/query`. trifle_query() (query_handle.c) binds the environment to a stats
 * handle; the unit tests bind it to series built by hand.
 *
 * The checks run in the SPEC's order and the first failure becomes the result. Helpers return 0 to
 * go on, STOP when they have recorded a failed outcome, or a negative status (out of memory). */
#include "analysis_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc_int.h"
#include "buf_int.h"
#include "error_int.h"
#include "json_int.h"

#define STOP 1
#define MAX_SLICES 1000000

enum { MODE_AGGREGATE, MODE_TIMELINE, MODE_CATEGORY };

static const char *const mode_names[] = {"aggregate", "timeline", "category"};

struct trifle_query_result {
    int outcome;   /* a trifle_query_outcome */
    int code;      /* 0, TRIFLE_EINVAL or the storage error's code */
    char *message; /* "" on success */
    cJSON *data;   /* the `data` object on success */
    cJSON *extra;  /* extra error fields, always an object */
};

/* The request as the checks have understood it so far. */
typedef struct query {
    trifle_query_result *r;
    const trifle__query_env *env;
    const cJSON *req;
    char *key;
    int64_t from, to;
    char granularity[32];
    int mode;
    size_t slices;
    int aggregator;
    trifle_expression *expr;
    trifle_series *series;
    char *path;      /* the single value path, normalised (segments trimmed) */
    char *path_sent; /* the single value path, trimmed */
    trifle__strset available;
} query;

/* ------------------------------------------------------------------------------------------- */
/* Outcomes                                                                                     */

/* Set the outcome of r (message formatted). Returns STOP, or TRIFLE_ENOMEM when even that fails. */
static int vset_outcome(trifle_query_result *r, int outcome, int code, const char *fmt, va_list ap)
{
    trifle__buf b = TRIFLE__BUF_INIT;
    char tmp[512];
    va_list again;
    int n;

    va_copy(again, ap);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    if (n < 0)
        n = 0;
    if ((size_t)n < sizeof(tmp)) {
        trifle__buf_append(&b, tmp, (size_t)n);
    } else {
        /* long paths and values: format again into a buffer of the right size */
        if (trifle__buf_reserve(&b, (size_t)n + 1) == 0) {
            (void)vsnprintf(b.data, (size_t)n + 1, fmt, again);
            b.len = (size_t)n;
        }
    }
    va_end(again);
    trifle__free(r->message);
    r->message = trifle__buf_detach(&b);
    if (r->message == NULL)
        return TRIFLE_ENOMEM;
    r->outcome = outcome;
    r->code = code;
    return STOP;
}

static int set_outcome(trifle_query_result *r, int outcome, int code, const char *fmt, ...)
    TRIFLE_PRINTF(4, 5);

static int set_outcome(trifle_query_result *r, int outcome, int code, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vset_outcome(r, outcome, code, fmt, ap);
    va_end(ap);
    return rc;
}

/* Record a failed outcome. Returns STOP, or TRIFLE_ENOMEM when even that fails. */
static int fail(query *q, int outcome, int code, const char *fmt, ...) TRIFLE_PRINTF(4, 5);

static int fail(query *q, int outcome, int code, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vset_outcome(q->r, outcome, code, fmt, ap);
    va_end(ap);
    return rc;
}

/* Add item under name (NULL: append to an array). On failure item is freed and *oom set. */
static cJSON *jadd(cJSON *parent, const char *name, cJSON *item, int *oom)
{
    cJSON_bool ok;

    if (item == NULL || parent == NULL) {
        cJSON_Delete(item);
        *oom = 1;
        return NULL;
    }
    ok = name != NULL ? cJSON_AddItemToObject(parent, name, item)
                      : cJSON_AddItemToArray(parent, item);
    if (!ok) {
        cJSON_Delete(item);
        *oom = 1;
        return NULL;
    }
    return item;
}

static cJSON *json_strings(const char *const *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    size_t i;
    int oom = 0;

    for (i = 0; a != NULL && i < n; i++)
        (void)jadd(a, NULL, cJSON_CreateString(v[i]), &oom);
    if (oom) {
        cJSON_Delete(a);
        return NULL;
    }
    return a;
}

static int extra_strings(query *q, const char *name, const char *const *v, size_t n)
{
    int oom = 0;

    (void)jadd(q->r->extra, name, json_strings(v, n), &oom);
    return oom ? TRIFLE_ENOMEM : 0;
}

static int extra_available(query *q)
{
    return extra_strings(q, "available_paths", (const char *const *)q->available.v, q->available.n);
}

/* A copy of s[0..len) lower-cased (ASCII) or not. NULL on OOM. */
static char *copy_text(const char *s, size_t len, int lower)
{
    char *c = trifle__strndup(s, len);
    size_t i;

    for (i = 0; c != NULL && lower && i < len; i++)
        if (c[i] >= 'A' && c[i] <= 'Z')
            c[i] = (char)(c[i] - 'A' + 'a');
    return c;
}

/* The member `name`, with JSON null read as absent. */
static const cJSON *field(const query *q, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(q->req, name);
    return cJSON_IsNull(v) ? NULL : v;
}

/* ------------------------------------------------------------------------------------------- */
/* Checks 1-7                                                                                   */

static int check_key(query *q)
{
    const cJSON *v = field(q, "key");
    const char *t;
    size_t len;

    if (!cJSON_IsString(v) || (len = trifle__trim(v->valuestring, &t)) == 0)
        return fail(q, TRIFLE_QUERY_MALFORMED, TRIFLE_EINVAL, "key must be a non-empty string");
    q->key = copy_text(t, len, 0);
    return q->key == NULL ? TRIFLE_ENOMEM : 0;
}

static int check_time(query *q, const char *name, int64_t *out)
{
    const cJSON *v = field(q, name);
    trifle_error e = TRIFLE_ERROR_INIT;
    int flags =
        q->env->flags & TRIFLE_QUERY_CLI_TIME ? TRIFLE_TIME_CLI : TRIFLE_TIME_OFFSET_REQUIRED;

    if (v == NULL)
        return fail(q, TRIFLE_QUERY_MALFORMED, TRIFLE_EINVAL, "%s is required", name);
    if (!cJSON_IsString(v))
        return fail(q, TRIFLE_QUERY_MALFORMED, TRIFLE_EINVAL, "%s must be a time string", name);
    if (trifle_time_parse(out, v->valuestring, q->env->zone, flags, &e) != 0)
        return e.code == TRIFLE_ENOMEM
                   ? TRIFLE_ENOMEM
                   : fail(q, TRIFLE_QUERY_MALFORMED, TRIFLE_EINVAL, "%s", e.message);
    return 0;
}

static int check_granularity(query *q)
{
    const cJSON *v = field(q, "granularity");
    trifle_error e = TRIFLE_ERROR_INIT;
    trifle_granularity g;
    const char *t;
    size_t len, i;
    char text[64];

    if (!cJSON_IsString(v))
        return fail(q, TRIFLE_QUERY_MALFORMED, TRIFLE_EINVAL, "granularity is required");
    len = trifle__trim(v->valuestring, &t);
    if (len >= sizeof(text))
        return fail(q, TRIFLE_QUERY_MALFORMED, TRIFLE_EINVAL, "invalid granularity: %.*s", (int)len,
                    t);
    memcpy(text, t, len);
    text[len] = '\0';
    if (trifle_granularity_parse(&g, text, &e) != 0)
        return e.code == TRIFLE_ENOMEM
                   ? TRIFLE_ENOMEM
                   : fail(q, TRIFLE_QUERY_MALFORMED, TRIFLE_EINVAL, "%s", e.message);
    /* a query answered elsewhere meets that side's configuration, which decides */
    for (i = 0; q->env->remote == NULL && i < q->env->n_granularities; i++)
        if (strcmp(q->env->granularities[i], text) == 0)
            break;
    if (q->env->remote == NULL && i == q->env->n_granularities)
        return fail(q, TRIFLE_QUERY_MALFORMED, TRIFLE_EINVAL, "granularity %s is not configured",
                    text);
    memcpy(q->granularity, text, len + 1);
    return 0;
}

/* The required string field v, trimmed and lower-cased, into *out (trifle__free() it). A missing v
 * fails with outcome and the message `missing`, one that is not a string with `not_string`.
 * Returns 0, or STOP or TRIFLE_ENOMEM with *out NULL. */
static int required_text(query *q, const cJSON *v, int outcome, const char *missing,
                         const char *not_string, char **out)
{
    const char *t;
    size_t len;

    *out = NULL;
    if (v == NULL)
        return fail(q, outcome, TRIFLE_EINVAL, "%s", missing);
    if (!cJSON_IsString(v))
        return fail(q, outcome, TRIFLE_EINVAL, "%s", not_string);
    len = trifle__trim(v->valuestring, &t);
    *out = copy_text(t, len, 1);
    return *out == NULL ? TRIFLE_ENOMEM : 0;
}

static int check_mode(query *q)
{
    const cJSON *v = field(q, "mode");
    char *m;
    int i, rc;

    if (v == NULL)
        v = field(q, "format");
    rc = required_text(q, v, TRIFLE_QUERY_MALFORMED,
                       "mode is required (aggregate, timeline or category)",
                       "mode must be a string", &m);
    if (m == NULL)
        return rc;
    for (i = 0; i < 3; i++)
        if (strcmp(m, mode_names[i]) == 0)
            break;
    trifle__free(m);
    if (i == 3)
        return fail(q, TRIFLE_QUERY_MALFORMED, TRIFLE_EINVAL, "invalid mode: %s", v->valuestring);
    q->mode = i;
    return 0;
}

static int check_slices(query *q)
{
    const cJSON *v = field(q, "slices");
    double d = -1;

    if (v == NULL) {
        q->slices = 1;
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        d = v->valuedouble;
    } else if (cJSON_IsString(v)) {
        const char *t;
        size_t len = trifle__trim(v->valuestring, &t), i;
        d = len > 0 ? 0 : -1;
        /* stop growing past the limit, so long digit strings cannot overflow */
        for (i = 0; d >= 0 && i < len; i++)
            d = t[i] >= '0' && t[i] <= '9' ? (d > MAX_SLICES ? d : d * 10 + (t[i] - '0')) : -1;
    }
    if (!(d >= 1 && d <= MAX_SLICES && d == floor(d)))
        return fail(q, TRIFLE_QUERY_INVALID, TRIFLE_EINVAL, "slices must be a positive integer.");
    q->slices = (size_t)d;
    return 0;
}

static int check_value_path_shape(query *q)
{
    const cJSON *v = field(q, "value_path"), *c;
    const char *t;

    if (v == NULL)
        return fail(q, TRIFLE_QUERY_MALFORMED, TRIFLE_EINVAL, "value_path is required");
    if (cJSON_IsString(v)) {
        if (trifle__trim(v->valuestring, &t) == 0)
            return fail(q, TRIFLE_QUERY_MALFORMED, TRIFLE_EINVAL, "value_path must not be blank");
        return 0;
    }
    if (cJSON_IsArray(v)) {
        cJSON_ArrayForEach (c, v) {
            if (!cJSON_IsString(c))
                return fail(q, TRIFLE_QUERY_MALFORMED, TRIFLE_EINVAL,
                            "value_path must be a string or an array of strings");
        }
        return 0;
    }
    return fail(q, TRIFLE_QUERY_MALFORMED, TRIFLE_EINVAL,
                "value_path must be a string or an array of strings");
}

static int check_aggregator(query *q)
{
    static const char *const allowed[] = {"max", "mean", "min", "sum"};
    const cJSON *v = field(q, "aggregator");
    char *name;
    int rc;

    if (q->mode != MODE_AGGREGATE)
        return 0;
    rc = required_text(q, v, TRIFLE_QUERY_INVALID,
                       "Aggregator must be provided (options: max, mean, min, sum).",
                       "Aggregator must be a string.", &name);
    if (name == NULL)
        return rc;
    rc = trifle_aggregator_parse(&q->aggregator, name, NULL);
    trifle__free(name);
    if (rc == 0)
        return 0;
    rc = fail(q, TRIFLE_QUERY_INVALID, TRIFLE_EINVAL, "Unsupported aggregator \"%s\".",
              v->valuestring);
    if (rc == STOP && extra_strings(q, "allowed", allowed, 4) != 0)
        return TRIFLE_ENOMEM;
    return rc;
}

/* ERRATA I11: compile the transponder, if any field of it is present. */
static int check_transponder(query *q)
{
    const cJSON *paths = field(q, "transpond_paths"), *expr = field(q, "expression"),
                *resp = field(q, "response"), *c;
    const char **list = NULL;
    char *split = NULL;
    size_t n = 0, i;
    trifle_error e = TRIFLE_ERROR_INIT;
    int rc = 0;

    if (paths == NULL && expr == NULL && resp == NULL)
        return 0;
    if (paths != NULL && cJSON_IsString(paths)) {
        /* one comma-separated string, as given to `trifle query --transpond-paths a,b` */
        char *p;
        split = trifle__strdup(paths->valuestring);
        if (split == NULL)
            return TRIFLE_ENOMEM;
        for (p = split, n = 1; *p != '\0'; p++)
            n += *p == ',';
        list = trifle__calloc(n, sizeof(*list));
        if (list == NULL) {
            rc = TRIFLE_ENOMEM;
            goto done;
        }
        for (p = split, i = 0, list[0] = split; *p != '\0'; p++)
            if (*p == ',') {
                *p = '\0';
                list[++i] = p + 1;
            }
    } else if (cJSON_IsArray(paths)) {
        n = (size_t)cJSON_GetArraySize(paths);
        list = trifle__calloc(n ? n : 1, sizeof(*list));
        if (list == NULL)
            return TRIFLE_ENOMEM;
        i = 0;
        cJSON_ArrayForEach (c, paths) {
            if (!cJSON_IsString(c)) {
                rc = fail(q, TRIFLE_QUERY_MALFORMED, TRIFLE_EINVAL,
                          "transpond_paths must be an array of strings");
                goto done;
            }
            list[i++] = c->valuestring;
        }
    } else if (paths != NULL) {
        rc = fail(q, TRIFLE_QUERY_MALFORMED, TRIFLE_EINVAL,
                  "transpond_paths must be an array of strings");
        goto done;
    }
    rc = trifle_expression_compile(
        &q->expr, list, n, expr != NULL && cJSON_IsString(expr) ? expr->valuestring : NULL,
        resp != NULL && cJSON_IsString(resp) ? resp->valuestring : NULL, &e);
    if (rc == TRIFLE_EINVAL)
        rc = fail(q, TRIFLE_QUERY_INVALID, TRIFLE_EINVAL, "%s", e.message);
done:
    trifle__free(list);
    trifle__free(split);
    return rc;
}

/* ------------------------------------------------------------------------------------------- */
/* Check 8: read (and transpond)                                                                */

static int read_series(query *q)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    trifle_series *t = NULL;
    int rc;

    rc = q->env->read(&q->series, q->key, q->from, q->to, q->granularity, q->env->ctx, &e);
    if (rc == TRIFLE_ENOMEM)
        return rc;
    if (rc != 0)
        return fail(q, rc == TRIFLE_EINVAL ? TRIFLE_QUERY_MALFORMED : TRIFLE_QUERY_FAILED, rc, "%s",
                    e.message);
    if (q->expr == NULL)
        return 0;
    rc = trifle_expression_apply(&t, q->expr, q->series, &e);
    if (rc == TRIFLE_EINVAL)
        return fail(q, TRIFLE_QUERY_INVALID, TRIFLE_EINVAL, "%s", e.message);
    if (rc != 0)
        return rc;
    trifle_series_free(q->series);
    q->series = t;
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Checks 8-12 elsewhere: a driver that answers queries (TRIFLE_CAP_QUERY)                      */

static cJSON *time_utc(int64_t at);

static const char *answer_text(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Fill r from an answer (see trifle__query_answer). The driver ABI (trifle_answer_fn) hands it
 * over as the HTTP status and body of `POST /api/v1/metrics/query`, so this is where such a
 * status becomes an outcome: 200 OK, 400 MALFORMED, 422 INVALID, 5xx FAILED; anything else, or a
 * body not of its status's shape, is FAILED with TRIFLE_EDRIVER. 0 or TRIFLE_ENOMEM. */
static int take_answer(trifle_query_result *r, int status, const char *body, size_t len,
                       const char *who)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    cJSON *doc = NULL, *data, *errs, *c;
    const char *msg;
    int rc, parsed, oom = 0;

    rc = trifle__json_parse(&doc, body, len, &e);
    if (rc == TRIFLE_ENOMEM)
        return rc;
    parsed = rc == 0;
    errs = parsed ? cJSON_GetObjectItemCaseSensitive(doc, "errors") : NULL;
    if (status == 400 || (status >= 500 && status <= 599)) {
        /* a refusal or a failure: the status says it; the body only adds its detail */
        msg = answer_text(errs, "detail");
        if (msg == NULL)
            msg = answer_text(errs, "error");
        rc = set_outcome(r, status == 400 ? TRIFLE_QUERY_MALFORMED : TRIFLE_QUERY_FAILED,
                         status == 400 ? TRIFLE_EINVAL : TRIFLE_EDRIVER,
                         "%s: the query %s with status %d: %s", who,
                         status == 400 ? "was refused" : "failed", status,
                         msg != NULL ? msg
                         : parsed    ? "no detail"
                                     : "(the body is not JSON)");
        goto done;
    }
    if (status != 200 && status != 422) {
        rc = set_outcome(r, TRIFLE_QUERY_FAILED, TRIFLE_EDRIVER,
                         "%s: the query's answer has status %d", who, status);
        goto done;
    }
    if (!parsed) {
        rc = set_outcome(r, TRIFLE_QUERY_FAILED, TRIFLE_EDRIVER,
                         "%s: the query's answer (status %d) is not JSON: %s", who, status,
                         e.message);
        goto done;
    }
    if (status == 200) {
        data = cJSON_GetObjectItemCaseSensitive(doc, "data");
        if (!cJSON_IsObject(data)) {
            rc = set_outcome(r, TRIFLE_QUERY_FAILED, TRIFLE_EDRIVER,
                             "%s: the query's answer (status 200) has no \"data\" object", who);
            goto done;
        }
        cJSON_Delete(r->data);
        r->data = cJSON_DetachItemViaPointer(doc, data);
        trifle__free(r->message);
        if ((r->message = trifle__strdup("")) == NULL) {
            rc = TRIFLE_ENOMEM;
            goto done;
        }
        r->outcome = TRIFLE_QUERY_OK;
        r->code = 0;
        rc = 0;
        goto done;
    }
    /* 422: {"errors":{"status":"error","error":"<message>",<extra fields>}} */
    if (!cJSON_IsObject(errs) || (msg = answer_text(errs, "error")) == NULL) {
        rc = set_outcome(r, TRIFLE_QUERY_FAILED, TRIFLE_EDRIVER,
                         "%s: the query's answer (status 422) has no \"errors\".\"error\" message",
                         who);
        goto done;
    }
    rc = set_outcome(r, TRIFLE_QUERY_INVALID, TRIFLE_EINVAL, "%s", msg);
    cJSON_ArrayForEach (c, errs) {
        if (rc == STOP && c->string != NULL && strcmp(c->string, "status") != 0 &&
            strcmp(c->string, "error") != 0)
            (void)jadd(r->extra, c->string, cJSON_Duplicate(c, 1), &oom);
    }
    if (oom)
        rc = TRIFLE_ENOMEM;
done:
    cJSON_Delete(doc);
    return rc < 0 ? rc : 0;
}

/* The answer as a driver hands it over (trifle_answer_fn): copied, taken apart afterwards. */
typedef struct remote_answer {
    int status;
    trifle__buf body;
} remote_answer;

static int collect_answer(void *ctx, int status, const char *body, size_t len)
{
    remote_answer *a = ctx;

    a->status = status;
    a->body.len = 0;
    trifle__buf_append(&a->body, body, len);
    return a->body.failed ? TRIFLE_ENOMEM : 0;
}

/* Send the checked request, with `from` and `to` resolved (CLI forms such as `now` are the
 * caller's, so they are turned into instants here), and take the answer as the outcome. */
static int ask_remote(query *q)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    remote_answer a = {0, TRIFLE__BUF_INIT};
    cJSON *fw = cJSON_Duplicate(q->req, 1), *from = time_utc(q->from), *to = time_utc(q->to);
    char *text = NULL;
    int rc;

    if (fw == NULL || from == NULL || to == NULL ||
        !cJSON_ReplaceItemInObjectCaseSensitive(fw, "from", from)) {
        cJSON_Delete(from);
        cJSON_Delete(to);
        rc = TRIFLE_ENOMEM;
        goto done;
    }
    if (!cJSON_ReplaceItemInObjectCaseSensitive(fw, "to", to)) {
        cJSON_Delete(to);
        rc = TRIFLE_ENOMEM;
        goto done;
    }
    if ((text = trifle__json_print(fw, 0)) == NULL) {
        rc = TRIFLE_ENOMEM;
        goto done;
    }
    rc = q->env->remote(q->env->ctx, q->key, q->granularity, text, strlen(text), collect_answer, &a,
                        &e);
    if (rc == TRIFLE_ENOMEM)
        goto done;
    if (rc != 0) {
        rc = fail(q, rc == TRIFLE_EINVAL ? TRIFLE_QUERY_MALFORMED : TRIFLE_QUERY_FAILED, rc, "%s",
                  e.message);
        goto done;
    }
    rc = take_answer(q->r, a.status, a.body.data != NULL ? a.body.data : "", a.body.len,
                     q->env->remote_name != NULL ? q->env->remote_name : "driver");
    if (rc == 0 && q->r->outcome != TRIFLE_QUERY_OK)
        rc = STOP;
done:
    cJSON_Delete(fw);
    trifle__free(text);
    trifle__buf_free(&a.body);
    return rc;
}

/* ------------------------------------------------------------------------------------------- */
/* Checks 9-12                                                                                  */

static int check_value_path(query *q)
{
    const cJSON *v = field(q, "value_path"), *c;
    const char **list = NULL;
    size_t n = 0, len;
    const char *t;
    trifle__path tp;
    int rc = 0;

    list = trifle__calloc(cJSON_IsArray(v) ? (size_t)cJSON_GetArraySize(v) + 1 : 1, sizeof(*list));
    if (list == NULL)
        return TRIFLE_ENOMEM;
    if (cJSON_IsString(v)) {
        list[n++] = v->valuestring;
    } else {
        cJSON_ArrayForEach (c, v) {
            if (trifle__trim(c->valuestring, &t) > 0)
                list[n++] = c->valuestring;
        }
    }
    if (n == 0) {
        rc = fail(q, TRIFLE_QUERY_INVALID, TRIFLE_EINVAL, "Value path required.");
        goto done;
    }
    if (n > 1) {
        char **trimmed = trifle__calloc(n, sizeof(char *));
        size_t i;
        if (trimmed == NULL) {
            rc = TRIFLE_ENOMEM;
            goto done;
        }
        for (i = 0; i < n && rc == 0; i++) {
            len = trifle__trim(list[i], &t);
            trimmed[i] = copy_text(t, len, 0);
            if (trimmed[i] == NULL)
                rc = TRIFLE_ENOMEM;
        }
        if (rc == 0) {
            rc = fail(q, TRIFLE_QUERY_INVALID, TRIFLE_EINVAL,
                      "Only a single value_path is supported for this tool.");
            if (rc == STOP && extra_strings(q, "provided_paths", (const char *const *)trimmed, n))
                rc = TRIFLE_ENOMEM;
        }
        for (i = 0; i < n; i++)
            trifle__free(trimmed[i]);
        trifle__free(trimmed);
        goto done;
    }
    len = trifle__trim(list[0], &t);
    q->path_sent = copy_text(t, len, 0);
    if (q->path_sent == NULL) {
        rc = TRIFLE_ENOMEM;
        goto done;
    }
    if (strchr(q->path_sent, '*') != NULL) {
        rc = fail(q, TRIFLE_QUERY_INVALID, TRIFLE_EINVAL,
                  "Wildcards are not supported in value_path \"%s\"", q->path_sent);
        goto done;
    }
    rc = trifle__path_parse(&tp, q->path_sent, NULL);
    if (rc != 0)
        goto done;
    q->path = trifle__strdup(tp.text);
    trifle__path_free(&tp);
    if (q->path == NULL) {
        rc = TRIFLE_ENOMEM;
        goto done;
    }
    rc = trifle__available_paths(&q->available, q->series, NULL);
    if (rc != 0)
        goto done;
    if (q->mode != MODE_CATEGORY && trifle__strset_find(&q->available, q->path) < 0) {
        const char *missing = q->path;
        rc = fail(q, TRIFLE_QUERY_INVALID, TRIFLE_EINVAL, "Unknown path(s): %s", q->path);
        if (rc == STOP &&
            (extra_strings(q, "missing_paths", &missing, 1) != 0 || extra_available(q) != 0))
            rc = TRIFLE_ENOMEM;
    }
done:
    trifle__free(list);
    return rc;
}

/* ------------------------------------------------------------------------------------------- */
/* The data object                                                                              */

static cJSON *time_utc(int64_t at)
{
    return trifle__time_json(at, NULL, 0);
}

/* table {"columns":["at",<paths>],"rows":[[<at>,<number or null>...]...]} */
static cJSON *build_table(const query *q, const trifle__strset *matched)
{
    cJSON *table = cJSON_CreateObject(), *cols, *rows;
    trifle__path *tps = trifle__calloc(matched->n ? matched->n : 1, sizeof(*tps));
    size_t i, k, parsed = 0;
    int oom = tps == NULL;

    cols = jadd(table, "columns", cJSON_CreateArray(), &oom);
    rows = jadd(table, "rows", cJSON_CreateArray(), &oom);
    (void)jadd(cols, NULL, cJSON_CreateString("at"), &oom);
    for (k = 0; !oom && k < matched->n; k++, parsed++) {
        (void)jadd(cols, NULL, cJSON_CreateString(matched->v[k]), &oom);
        if (trifle__path_parse(&tps[k], matched->v[k], NULL) != 0)
            oom = 1;
    }
    for (i = 0; !oom && i < q->series->n; i++) {
        cJSON *row = jadd(rows, NULL, cJSON_CreateArray(), &oom);
        (void)jadd(row, NULL, trifle__time_json(q->series->at[i], q->env->zone, 0), &oom);
        for (k = 0; !oom && k < matched->n; k++) {
            double d;
            if (trifle__numeric(trifle__fetch(q->series->rows[i], &tps[k]), &d))
                (void)jadd(row, NULL, cJSON_CreateNumber(d), &oom);
            else
                (void)jadd(row, NULL, cJSON_CreateNull(), &oom);
        }
    }
    for (k = 0; k < parsed; k++)
        trifle__path_free(&tps[k]);
    trifle__free(tps);
    if (oom) {
        cJSON_Delete(table);
        return NULL;
    }
    return table;
}

/* Members shared by every mode, up to slices. */
static cJSON *data_head(const query *q, int *oom)
{
    cJSON *d = cJSON_CreateObject();

    (void)jadd(d, "status", cJSON_CreateString("ok"), oom);
    if (q->mode == MODE_AGGREGATE)
        (void)jadd(d, "aggregator", cJSON_CreateString(trifle_aggregator_name(q->aggregator)), oom);
    else
        (void)jadd(d, "formatter", cJSON_CreateString(mode_names[q->mode]), oom);
    (void)jadd(d, "metric_key", cJSON_CreateString(q->key), oom);
    (void)jadd(d, "value_path", cJSON_CreateString(q->path), oom);
    (void)jadd(d, "slices", cJSON_CreateNumber((double)q->slices), oom);
    return d;
}

static void data_timeframe(cJSON *d, const query *q, int *oom)
{
    cJSON *tf = jadd(d, "timeframe", cJSON_CreateObject(), oom);

    (void)jadd(tf, "from", time_utc(q->from), oom);
    (void)jadd(tf, "to", time_utc(q->to), oom);
    (void)jadd(tf, "label", cJSON_CreateString("custom"), oom);
    (void)jadd(tf, "granularity", cJSON_CreateString(q->granularity), oom);
}

/* Add the members that follow the mode's own to d and make it the result's data (oom: whether
 * building d has failed so far). Takes d. Returns 0, or TRIFLE_ENOMEM with d freed. */
static int data_finish(query *q, cJSON *d, const trifle__strset *matched, int oom)
{
    (void)jadd(d, "available_paths",
               json_strings((const char *const *)q->available.v, q->available.n), &oom);
    (void)jadd(d, "matched_paths", json_strings((const char *const *)matched->v, matched->n), &oom);
    if (matched->n > 0)
        (void)jadd(d, "table", build_table(q, matched), &oom);
    if (oom) {
        cJSON_Delete(d);
        return TRIFLE_ENOMEM;
    }
    q->r->data = d;
    return 0;
}

/* The failure of a query whose path matched nothing ("No data available", ...), listing the
 * available paths. Returns STOP or TRIFLE_ENOMEM. */
static int fail_no_data(query *q, const char *what)
{
    int rc = fail(q, TRIFLE_QUERY_INVALID, TRIFLE_EINVAL,
                  "%s for path %s in the selected timeframe.", what, q->path);

    if (rc == STOP && extra_available(q) != 0)
        rc = TRIFLE_ENOMEM;
    return rc;
}

static int run_aggregate(query *q)
{
    double *values = NULL;
    unsigned char *present = NULL;
    size_t n = 0, i, kept = 0;
    trifle__strset matched = TRIFLE__STRSET_INIT;
    cJSON *d = NULL, *list;
    int rc, oom = 0;

    rc = trifle__aggregate(&values, &present, &n, q->series, q->aggregator, q->path, q->slices,
                           NULL);
    if (rc != 0)
        goto done;
    for (i = 0; i < n; i++)
        kept += present[i];
    if (kept == 0) {
        rc = fail_no_data(q, "No data available");
        goto done;
    }
    d = data_head(q, &oom);
    for (i = 0; i < n && q->slices == 1; i++) {
        if (present[i]) {
            (void)jadd(d, "value", cJSON_CreateNumber(values[i]), &oom);
            break;
        }
    }
    list = jadd(d, "values", cJSON_CreateArray(), &oom);
    for (i = 0; i < n; i++)
        if (present[i])
            (void)jadd(list, NULL, cJSON_CreateNumber(values[i]), &oom);
    (void)jadd(d, "count", cJSON_CreateNumber((double)kept), &oom);
    data_timeframe(d, q, &oom);
    if (trifle__strset_add(&matched, q->path, strlen(q->path)) != 0)
        oom = 1;
    rc = data_finish(q, d, &matched, oom);
    d = NULL;
done:
    cJSON_Delete(d);
    trifle__strset_free(&matched);
    trifle__free(values);
    trifle__free(present);
    return rc;
}

/* Keys of obj that are available paths, into matched. */
static void match_keys(trifle__strset *matched, const cJSON *obj, const trifle__strset *available)
{
    const cJSON *c;

    cJSON_ArrayForEach (c, obj) {
        if (c->string != NULL && trifle__strset_find(available, c->string) >= 0)
            (void)trifle__strset_add(matched, c->string, strlen(c->string));
    }
}

static int run_formatter(query *q)
{
    trifle__strset matched = TRIFLE__STRSET_INIT;
    trifle_error e = TRIFLE_ERROR_INIT;
    cJSON *result = NULL, *d = NULL, *c;
    int rc, oom = 0;

    if (q->mode == MODE_TIMELINE) {
        rc = trifle__timeline(&result, q->series, q->path, q->slices, q->env->zone, 0, NULL, NULL,
                              &e);
        if (rc == 0)
            match_keys(&matched, result, &q->available);
    } else {
        rc = trifle__category(&result, q->series, q->path, q->slices, NULL, NULL, &e);
        if (rc == 0 && cJSON_IsArray(result)) {
            cJSON_ArrayForEach (c, result)
                match_keys(&matched, c, &q->available);
        } else if (rc == 0) {
            match_keys(&matched, result, &q->available);
        }
    }
    if (rc != 0)
        goto done;
    if (matched.failed) {
        rc = TRIFLE_ENOMEM;
        goto done;
    }
    if (matched.n == 0) {
        rc = fail_no_data(q, "No matching data found");
        goto done;
    }
    d = data_head(q, &oom);
    data_timeframe(d, q, &oom);
    (void)jadd(d, "result", result, &oom);
    result = NULL;
    rc = data_finish(q, d, &matched, oom);
    d = NULL;
done:
    cJSON_Delete(result);
    cJSON_Delete(d);
    trifle__strset_free(&matched);
    return rc;
}

/* ------------------------------------------------------------------------------------------- */
/* Entry                                                                                        */

void trifle_query_result_free(trifle_query_result *r)
{
    if (r == NULL)
        return;
    trifle__free(r->message);
    cJSON_Delete(r->data);
    cJSON_Delete(r->extra);
    trifle__free(r);
}

static int check_from(query *q)
{
    return check_time(q, "from", &q->from);
}

static int check_to(query *q)
{
    return check_time(q, "to", &q->to);
}

static int run(query *q, const char *request, size_t len)
{
    /* the request's fields, in the order their failures are reported */
    static int (*const checks[])(query *) = {
        check_key,
        check_from,
        check_to,
        check_granularity,
        check_mode,
        check_slices,
        check_value_path_shape,
        check_aggregator,
        check_transponder,
    };
    trifle_error e = TRIFLE_ERROR_INIT;
    cJSON *req = NULL;
    size_t i;
    int rc;

    rc = trifle__json_parse(&req, request, len, &e);
    if (rc == TRIFLE_ENOMEM)
        return rc;
    if (rc != 0)
        return fail(q, TRIFLE_QUERY_MALFORMED, TRIFLE_EINVAL, "%s", e.message);
    q->req = req;
    if (!cJSON_IsObject(req))
        rc = fail(q, TRIFLE_QUERY_MALFORMED, TRIFLE_EINVAL, "query request must be a JSON object");
    for (i = 0; rc == 0 && i < sizeof(checks) / sizeof(checks[0]); i++)
        rc = checks[i](q);
    if (rc == 0 && q->env->remote != NULL) {
        rc = ask_remote(q);
        goto out;
    }
    if (rc == 0)
        rc = read_series(q);
    if (rc == 0)
        rc = check_value_path(q);
    if (rc == 0)
        rc = q->mode == MODE_AGGREGATE ? run_aggregate(q) : run_formatter(q);
    if (rc == 0) {
        q->r->outcome = TRIFLE_QUERY_OK;
        q->r->code = 0;
    }
out:
    q->req = NULL;
    cJSON_Delete(req);
    return rc;
}

int trifle__query_run(trifle_query_result **out, const char *request, size_t len,
                      const trifle__query_env *env, trifle_error *err)
{
    query q;
    int rc;

    *out = NULL;
    memset(&q, 0, sizeof(q));
    q.env = env;
    q.r = trifle__calloc(1, sizeof(*q.r));
    if (q.r == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    q.r->extra = cJSON_CreateObject();
    q.r->message = trifle__strdup("");
    if (q.r->extra == NULL || q.r->message == NULL)
        rc = TRIFLE_ENOMEM;
    else
        rc = run(&q, request != NULL ? request : "", request != NULL ? len : 0);
    trifle__free(q.key);
    trifle__free(q.path);
    trifle__free(q.path_sent);
    trifle_expression_free(q.expr);
    trifle_series_free(q.series);
    trifle__strset_free(&q.available);
    if (rc < 0) {
        trifle_query_result_free(q.r);
        return trifle__error(err, rc, "%s", rc == TRIFLE_ENOMEM ? "out of memory" : "query failed");
    }
    *out = q.r;
    return 0;
}

int trifle__query_answer(trifle_query_result **out, int status, const char *body, size_t len,
                         const char *who, trifle_error *err)
{
    trifle_query_result *r;

    *out = NULL;
    if ((r = trifle__calloc(1, sizeof(*r))) == NULL || (r->extra = cJSON_CreateObject()) == NULL ||
        (r->message = trifle__strdup("")) == NULL ||
        take_answer(r, status, body != NULL ? body : "", body != NULL ? len : 0,
                    who != NULL ? who : "driver") != 0) {
        trifle_query_result_free(r);
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    }
    *out = r;
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Accessors and rendering                                                                      */

int trifle_query_result_outcome(const trifle_query_result *r)
{
    return r == NULL ? TRIFLE_QUERY_FAILED : r->outcome;
}

int trifle_query_result_code(const trifle_query_result *r)
{
    return r == NULL ? TRIFLE_ERROR : r->code;
}

const char *trifle_query_result_message(const trifle_query_result *r)
{
    return r == NULL || r->message == NULL ? "" : r->message;
}

int trifle_query_result_render(char **out, const trifle_query_result *r, int style, int flags,
                               trifle_error *err)
{
    *out = NULL;
    if (r == NULL || style != TRIFLE_QUERY_RENDER_DATA)
        return trifle__error(err, TRIFLE_EINVAL, "unknown query rendering %d", style);
    *out = trifle__json_print(r->outcome == TRIFLE_QUERY_OK ? r->data : r->extra,
                              (flags & TRIFLE_JSON_PRETTY) != 0);
    if (*out == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    return 0;
}
