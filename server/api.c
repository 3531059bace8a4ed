/* The Trifle App compatible endpoints (SPEC §9.3-§9.7, ERRATA I9, minor 3, 8, 18).
 *
 * Authentication has already chosen the source (http.c). Bodies arrive validated as JSON text
 * (json.c) and are read in one pass over their members; `values` goes to trifle_payload_parse()
 * as the raw text, and the whole query body goes to trifle_query(), which implements every check
 * of §9.7 and renders the exact body for each outcome. */
#include "srv_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define JSON_TYPE "application/json; charset=utf-8"

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Trim ASCII whitespace in place; returns the start. */
static char *trim(char *s)
{
    size_t n;

    while (is_ws(*s))
        s++;
    n = strlen(s);
    while (n > 0 && is_ws(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* A journal that cannot take writes is logged at most this often per source. */
#define JOURNAL_LOG_MS 60000

/* Map a library failure to its status (SPEC §9.1, §13.1, ERRATA minor 8; TRIFLE_EIO: #10). */
static void respond_failure(srv_request *r, int rc, const trifle_error *e)
{
    srv_source *src = srv_request_source(r);

    if (rc == TRIFLE_EINVAL) {
        srv_respond_detail(r, 400, "Bad request");
        return;
    }
    if (rc == TRIFLE_EIO && src != NULL) {
        /* the journal could not take the write, so it was not acknowledged (the journal's path
         * is in the message): log it once, then once a minute with the count refused since, and
         * once when a write succeeds again (srv_api_metrics_post) */
        int64_t now = srv_monotonic_ms(),
                last = atomic_load_explicit(&src->journal_logged_ms, memory_order_relaxed);
        uint64_t refused = atomic_fetch_add_explicit(&src->journal_refused, 1,
                                                     memory_order_relaxed) + 1;
        atomic_fetch_add_explicit(&src->journal_refused_new, 1, memory_order_relaxed);
        if ((last == 0 || now - last >= JOURNAL_LOG_MS) &&
            atomic_compare_exchange_strong(&src->journal_logged_ms, &last, now)) {
            atomic_fetch_sub_explicit(&src->journal_refused, refused, memory_order_relaxed);
            srv_log(TRIFLE_LOG_ERROR, "source %s: the journal cannot take writes (%" PRIu64
                    " answered 503 since the last report): %s", src->cfg->id, refused, e->message);
        }
        srv_respond_detail(r, 503, "Service unavailable");
        return;
    }
    if ((rc == TRIFLE_EBUSY && e->driver[0] == '\0') || rc == TRIFLE_ECLOSED) {
        /* the buffer is full (a locked store is EBUSY from the driver: 500) */
        srv_respond_detail(r, 503, "Service unavailable");
        return;
    }
    srv_log(TRIFLE_LOG_ERROR, "source %s: %s: %s", src != NULL ? src->cfg->id : "-",
            trifle_status_name(rc), e->message);
    srv_respond_detail(r, 500, "Internal server error");
}

/* ------------------------------------------------------------------------------------------- */
/* GET /health, /api/v1/health, /api/v1/source                                                 */

void srv_api_health(srv_request *r)
{
    char now[40];
    srv_buf b;

    (void)trifle_time_format(now, sizeof(now), srv_now(), NULL);
    srv_response_buf(r, &b);
    srv_buf_puts(&b, "{\"status\":\"ok\",\"timestamp\":");
    srv_buf_json_cstr(&b, now);
    srv_buf_puts(&b, ",\"api_version\":\"v1\",\"server_version\":");
    srv_buf_json_cstr(&b, trifle_version());
    srv_buf_putc(&b, '}');
    srv_respond(r, 200, JSON_TYPE, &b);
}

void srv_api_source(srv_request *r)
{
    srv_source *s = srv_request_source(r);
    srv_buf b;
    size_t i;

    srv_response_buf(r, &b);
    srv_buf_puts(&b, "{\"data\":{\"api_version\":\"v1\",\"server_version\":");
    srv_buf_json_cstr(&b, trifle_version());
    srv_buf_puts(&b, ",\"id\":");
    srv_buf_json_cstr(&b, s->cfg->id);
    srv_buf_puts(&b, s->cfg->read_only ? ",\"type\":\"database\"" : ",\"type\":\"project\"");
    srv_buf_puts(&b, ",\"display_name\":");
    srv_buf_json_cstr(&b, s->cfg->name);
    srv_buf_puts(&b, ",\"default_timeframe\":");
    srv_buf_json_cstr(&b, s->cfg->default_timeframe);
    srv_buf_puts(&b, ",\"default_granularity\":");
    srv_buf_json_cstr(&b, s->default_granularity);
    srv_buf_puts(&b, ",\"available_granularities\":[");
    for (i = 0; i < s->n_granularities; i++) {
        if (i > 0)
            srv_buf_putc(&b, ',');
        srv_buf_json_cstr(&b, s->granularities[i]);
    }
    srv_buf_puts(&b, "],\"time_zone\":");
    srv_buf_json_cstr(&b, trifle_zone_name(s->zone));
    srv_buf_puts(&b, "}}");
    srv_respond(r, 200, JSON_TYPE, &b);
}

/* ------------------------------------------------------------------------------------------- */
/* GET /api/v1/metrics (SPEC §9.5)                                                              */

/* A copy of a query parameter for trimming; NULL when absent (or *bad on a decoding error). */
static char *param_copy(srv_request *r, const char *name, int *bad)
{
    const char *v = srv_request_param(r, name, bad);

    if (v == NULL || *bad)
        return NULL;
    return strdup(v);
}

static int granularity_listed(const srv_source *s, const char *g)
{
    size_t i;

    for (i = 0; i < s->n_granularities; i++)
        if (strcmp(s->granularities[i], g) == 0)
            return 1;
    return 0;
}

void srv_api_metrics_get(srv_request *r)
{
    srv_source *s = srv_request_source(r);
    trifle_error e = TRIFLE_ERROR_INIT;
    char *key = NULL, *from = NULL, *to = NULL, *gran = NULL, *skip = NULL, *json = NULL;
    const char *k, *g;
    int64_t t_from = 0, t_to = 0;
    int bad = 0, bad_key = 0, bad_from = 0, bad_to = 0, bad_gran = 0, bad_skip = 0, skip_blanks = 0;
    trifle_series *series = NULL;
    srv_buf b;
    int rc;

    key = param_copy(r, "key", &bad_key);
    from = param_copy(r, "from", &bad_from);
    to = param_copy(r, "to", &bad_to);
    gran = param_copy(r, "granularity", &bad_gran);
    skip = param_copy(r, "skip_blanks", &bad_skip);
    bad = bad_key || bad_from || bad_to || bad_gran || bad_skip;
    k = key != NULL ? trim(key) : "__system__key__";
    g = gran != NULL ? trim(gran) : NULL;
    if (bad || k[0] == '\0' || from == NULL || to == NULL || g == NULL ||
        trifle_time_parse(&t_from, from, s->zone, TRIFLE_TIME_OFFSET_REQUIRED, NULL) != 0 ||
        trifle_time_parse(&t_to, to, s->zone, TRIFLE_TIME_OFFSET_REQUIRED, NULL) != 0 ||
        !granularity_listed(s, g) ||
        (skip != NULL && trifle_parse_bool(&skip_blanks, trim(skip)) != 0)) {
        srv_respond_detail(r, 400, "Bad request");
        goto done;
    }
    srv_thread_mark(SRV_THREAD_BLOCKED);
    rc = trifle_values(s->t, &series, k, t_from, t_to, g, skip_blanks, &e);
    srv_thread_mark(SRV_THREAD_RUNNING);
    /* the stored transponders of the key (issue #13): one that cannot be applied is a 422 */
    if (rc == 0 &&
        (rc = srv_transponders_apply(srv_request_server(r), s, k, &series, &e)) == TRIFLE_EINVAL) {
        srv_response_buf(r, &b);
        srv_buf_puts(&b, "{\"errors\":{\"status\":\"error\",\"error\":");
        srv_buf_json_cstr(&b, e.message);
        srv_buf_puts(&b, "}}");
        srv_respond(r, 422, JSON_TYPE, &b);
        goto done;
    }
    if (rc == 0)
        rc = trifle_series_to_json(series, s->zone, &json, TRIFLE_JSON_COMPACT, &e);
    if (rc != 0) {
        respond_failure(r, rc, &e);
        goto done;
    }
    srv_response_buf(r, &b);
    srv_buf_puts(&b, "{\"data\":");
    srv_buf_puts(&b, json);
    srv_buf_putc(&b, '}');
    srv_count(SRV_API_GET, 1);
    srv_respond(r, 200, JSON_TYPE, &b);
done:
    trifle_mem_free(json);
    trifle_series_free(series);
    free(key);
    free(from);
    free(to);
    free(gran);
    free(skip);
}

/* ------------------------------------------------------------------------------------------- */
/* POST /api/v1/metrics (SPEC §9.6, ERRATA I9)                                                  */

/* A JSON string member decoded to a C string without NUL bytes; -1 when it is not one. */
static int string_member(const srv_json *v, char **out)
{
    size_t len;

    *out = NULL;
    if (v->type != SRV_JSON_STRING)
        return -1;
    if (srv_json_string_dup(out, &len, v) != 0)
        return TRIFLE_ENOMEM;
    if (strlen(*out) != len) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

static int ascii_ieq(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
        if (x != *b)
            return 0;
    }
    return *a == *b;
}

void srv_api_metrics_post(srv_request *r)
{
    srv_source *s = srv_request_source(r);
    trifle_error e = TRIFLE_ERROR_INIT;
    srv_json root, name, value, f_key = {0}, f_at = {0}, f_values = {0}, f_op = {0},
                                f_untracked = {0};
    int has_key = 0, has_at = 0, has_values = 0, has_op = 0, has_untracked = 0;
    char *key = NULL, *at_text = NULL, *op = NULL;
    trifle_payload *payload = NULL;
    srv_json_iter it;
    const char *body;
    size_t n;
    int64_t at = 0;
    int assert_op = 0, rc;
    unsigned flags = 0;
    srv_buf b;

    body = srv_request_body(r, &n);
    if (srv_json_parse(&root, body, n) != 0 || root.type != SRV_JSON_OBJECT) {
        srv_respond_detail(r, 400, "Bad request");
        return;
    }
    /* one pass; for duplicate members the last wins */
    srv_json_members(&it, &root);
    while (srv_json_next(&it, &name, &value)) {
        if (srv_json_string_is(&name, "key")) {
            f_key = value;
            has_key = 1;
        } else if (srv_json_string_is(&name, "at")) {
            f_at = value;
            has_at = 1;
        } else if (srv_json_string_is(&name, "values")) {
            f_values = value;
            has_values = 1;
        } else if (srv_json_string_is(&name, "operation")) {
            f_op = value;
            has_op = f_op.type != SRV_JSON_NULL;
        } else if (srv_json_string_is(&name, "untracked")) {
            f_untracked = value;
            has_untracked = f_untracked.type != SRV_JSON_NULL;
        }
    }
    /* missing or mistyped fields, an unparsable `at`, an unknown operation: 400 */
    if (!has_key || !has_at || !has_values || string_member(&f_key, &key) != 0 ||
        string_member(&f_at, &at_text) != 0 ||
        trifle_time_parse(&at, at_text, s->zone, TRIFLE_TIME_OFFSET_REQUIRED, NULL) != 0)
        goto bad_request;
    if (has_op) {
        if (string_member(&f_op, &op) != 0)
            goto bad_request;
        if (ascii_ieq(trim(op), "assert"))
            assert_op = 1;
        else if (!ascii_ieq(trim(op), "track"))
            goto bad_request;
    }
    if (has_untracked) {
        if (f_untracked.type == SRV_JSON_TRUE)
            flags = TRIFLE_UNTRACKED;
        else if (f_untracked.type != SRV_JSON_FALSE)
            goto bad_request;
    }
    /* a values violation of SPEC §4.1: 422 with the path at fault (null when there is none) */
    rc = trifle_payload_parse(&payload, f_values.p, f_values.n, &e);
    if (rc == TRIFLE_EINVAL) {
        srv_response_buf(r, &b);
        srv_buf_puts(&b, "{\"errors\":{\"status\":\"error\",\"error\":");
        srv_buf_json_cstr(&b, e.message);
        srv_buf_puts(&b, ",\"path\":");
        if (e.path[0] == '\0')
            srv_buf_puts(&b, "null");
        else
            srv_buf_json_cstr(&b, e.path);
        srv_buf_puts(&b, "}}");
        srv_respond(r, 422, JSON_TYPE, &b);
        goto done;
    }
    if (rc != 0) {
        respond_failure(r, rc, &e);
        goto done;
    }
    srv_thread_mark(SRV_THREAD_BLOCKED);
    if (assert_op)
        rc = trifle_assert(s->t, key, at, payload, flags, &e);
    else
        rc = trifle_track(s->t, key, at, payload, flags, &e);
    srv_thread_mark(SRV_THREAD_RUNNING);
    if (rc != 0) {
        /* an invalid or reserved key, an `at` out of range: 400 (ERRATA I9) */
        respond_failure(r, rc, &e);
        goto done;
    }
    if (atomic_load_explicit(&s->journal_logged_ms, memory_order_relaxed) != 0 &&
        atomic_exchange(&s->journal_logged_ms, 0) != 0)
        srv_log(TRIFLE_LOG_INFO,
                "source %s: the journal takes writes again (%" PRIu64
                " more answered 503 since the last report)",
                s->cfg->id, atomic_exchange(&s->journal_refused, 0));
    srv_count(assert_op ? SRV_API_ASSERT : SRV_API_TRACK, 1);
    srv_response_buf(r, &b);
    srv_buf_puts(&b, "{\"data\":{\"created\":\"ok\"}}");
    srv_respond(r, 201, JSON_TYPE, &b);
    goto done;
bad_request:
    srv_respond_detail(r, 400, "Bad request");
done:
    trifle_payload_free(payload);
    free(key);
    free(at_text);
    free(op);
}

/* ------------------------------------------------------------------------------------------- */
/* POST /api/v1/metrics/query (SPEC §9.7)                                                       */

/* The query's series: trifle_values() and then the stored transponders (issue #13). */
static int query_read(trifle_series **out, const char *key, int64_t from, int64_t to,
                      const char *granularity, void *payload, trifle_error *err)
{
    srv_request *r = payload;
    srv_source *s = srv_request_source(r);
    int rc;

    if ((rc = trifle_values(s->t, out, key, from, to, granularity, 0, err)) != 0)
        return rc;
    if ((rc = srv_transponders_apply(srv_request_server(r), s, key, out, err)) != 0) {
        trifle_series_free(*out);
        *out = NULL;
    }
    return rc;
}

void srv_api_metrics_query(srv_request *r)
{
    srv_source *s = srv_request_source(r);
    trifle_error e = TRIFLE_ERROR_INIT;
    trifle_query_result *res = NULL;
    srv_json root;
    const char *body;
    char *text = NULL;
    size_t n;
    int rc, status;
    srv_buf b;

    body = srv_request_body(r, &n);
    if (srv_json_parse(&root, body, n) != 0 || root.type != SRV_JSON_OBJECT) {
        srv_respond_detail(r, 400, "Bad request");
        return;
    }
    srv_thread_mark(SRV_THREAD_BLOCKED);
    rc = trifle_query_with_reader(&res, s->t, body, n, TRIFLE_QUERY_HTTP_TIME, query_read, r, &e);
    srv_thread_mark(SRV_THREAD_RUNNING);
    if (rc == 0)
        rc = trifle_query_result_render(&text, res, TRIFLE_QUERY_RENDER_HTTP, TRIFLE_JSON_COMPACT,
                                        &e);
    if (rc != 0) {
        respond_failure(r, rc == TRIFLE_EINVAL ? TRIFLE_ERROR : rc, &e);
        goto done;
    }
    status = trifle_query_result_status(res);
    if (status == 500)
        srv_log(TRIFLE_LOG_ERROR, "source %s: query: %s: %s", s->cfg->id,
                trifle_status_name(trifle_query_result_code(res)),
                trifle_query_result_message(res));
    if (status == 200)
        srv_count(SRV_API_QUERY, 1);
    srv_response_buf(r, &b);
    srv_buf_puts(&b, text);
    srv_respond(r, status, JSON_TYPE, &b);
done:
    trifle_mem_free(text);
    trifle_query_result_free(res);
}
