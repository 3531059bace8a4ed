/* The Trifle App compatible endpoints (SPEC §9.3-§9.7, ERRATA I9, minor 3, 8, 18).
 *
 * Authentication has already chosen the source (http.c). Bodies arrive validated as JSON text
 * (json.c) and are read in one pass over their members; `values` goes to trifle_payload_parse()
 * as the raw text, and the whole query body goes to trifle_query(), which implements every check
 * of §9.7 and renders the exact body for each outcome. */
#include "srv_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* The status of a library failure (SPEC §9.1, §13.1, ERRATA minor 8; TRIFLE_EIO: #10); a 500 is
 * logged, and so is a journal that cannot take writes (rate-limited). */
static int failure_status(srv_request *r, int rc, const trifle_error *e)
{
    srv_source *src = srv_request_source(r);

    if (rc == TRIFLE_EINVAL)
        return 400;
    if (rc == TRIFLE_EIO && src != NULL) {
        /* the journal could not take the write, so it was not acknowledged (the journal's path
         * is in the message): log it once, then once a minute with the count refused since, and
         * once when a write succeeds again (srv_api_metrics_post) */
        int64_t now = srv_monotonic_ms(),
                last = atomic_load_explicit(&src->journal_logged_ms, memory_order_relaxed);
        uint64_t refused =
            atomic_fetch_add_explicit(&src->journal_refused, 1, memory_order_relaxed) + 1;
        atomic_fetch_add_explicit(&src->journal_refused_new, 1, memory_order_relaxed);
        if ((last == 0 || now - last >= JOURNAL_LOG_MS) &&
            atomic_compare_exchange_strong(&src->journal_logged_ms, &last, now)) {
            atomic_fetch_sub_explicit(&src->journal_refused, refused, memory_order_relaxed);
            srv_log(TRIFLE_LOG_ERROR,
                    "source %s: the journal cannot take writes (%" PRIu64
                    " answered 503 since the last report): %s",
                    src->cfg->id, refused, e->message);
        }
        return 503;
    }
    if ((rc == TRIFLE_EBUSY && e->driver[0] == '\0') || rc == TRIFLE_ECLOSED)
        return 503; /* the buffer is full (a locked store is EBUSY from the driver: 500) */
    srv_log(TRIFLE_LOG_ERROR, "source %s: %s: %s", src != NULL ? src->cfg->id : "-",
            trifle_status_name(rc), e->message);
    return 500;
}

static const char *status_detail(int status)
{
    return status == 400   ? "Bad request"
           : status == 409 ? "A write with this id is in progress"
           : status == 503 ? "Service unavailable"
                           : "Internal server error";
}

/* Map a library failure to its status and answer it. */
static void respond_failure(srv_request *r, int rc, const trifle_error *e)
{
    int status = failure_status(r, rc, e);

    srv_respond_detail(r, status, status_detail(status));
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
    srv_buf_puts(&b, ",\"available_granularities\":");
    srv_source_granularities_json(&b, s);
    srv_buf_puts(&b, ",\"time_zone\":");
    srv_buf_json_cstr(&b, trifle_zone_name(s->zone));
    /* issue 13: what this server adds to the App's API (docs/http-api.md) */
    srv_buf_puts(&b, ",\"extensions\":[\"batch\",\"idempotency\"]");
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

void srv_source_granularities_json(srv_buf *b, const srv_source *s)
{
    size_t i;

    srv_buf_putc(b, '[');
    for (i = 0; i < s->n_granularities; i++) {
        if (i > 0)
            srv_buf_putc(b, ',');
        srv_buf_json_cstr(b, s->granularities[i]);
    }
    srv_buf_putc(b, ']');
}

int srv_source_has_granularity(const srv_source *s, const char *g)
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
        !srv_source_has_granularity(s, g) ||
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
        unsigned char x = (unsigned char)*a;
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x + ('a' - 'A'));
        if (x != (unsigned char)*b)
            return 0;
    }
    return *a == *b;
}

/* One write of a POST body, parsed and checked. */
typedef struct post_call {
    char *id; /* the write's own idempotency id ("id" of a batch element), or NULL */
    char *key;
    int64_t at;
    int assert_op;
    unsigned flags;
    trifle_payload *payload;
} post_call;

static void post_call_free(post_call *c)
{
    trifle_payload_free(c->payload);
    free(c->key);
    free(c->id);
    memset(c, 0, sizeof(*c));
}

/* Parse the object @p obj into @p c. 0; 400 (missing or mistyped fields, an unparsable `at`, an
 * unknown operation); 422 with @p e holding the values violation (SPEC §4.1); or a negative
 * library status (out of memory). */
static int post_call_parse(const srv_source *s, const srv_json *obj, post_call *c, trifle_error *e)
{
    srv_json name, value, f_key = {0}, f_at = {0}, f_values = {0}, f_op = {0}, f_untracked = {0},
                          f_id = {0};
    int has_key = 0, has_at = 0, has_values = 0, has_op = 0, has_untracked = 0, has_id = 0, rc,
        status = 400;
    char *at_text = NULL, *op = NULL;
    srv_json_iter it;

    memset(c, 0, sizeof(*c));
    if (obj->type != SRV_JSON_OBJECT)
        return 400;
    /* one pass; for duplicate members the last wins */
    srv_json_members(&it, obj);
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
        } else if (srv_json_string_is(&name, "id")) {
            f_id = value;
            has_id = f_id.type != SRV_JSON_NULL;
        }
    }
    if (has_id && (string_member(&f_id, &c->id) != 0 || !srv_idem_key_ok(c->id)))
        goto done;
    if (!has_key || !has_at || !has_values || string_member(&f_key, &c->key) != 0 ||
        string_member(&f_at, &at_text) != 0 ||
        trifle_time_parse(&c->at, at_text, s->zone, TRIFLE_TIME_OFFSET_REQUIRED, NULL) != 0)
        goto done;
    if (has_op) {
        if (string_member(&f_op, &op) != 0)
            goto done;
        if (ascii_ieq(trim(op), "assert"))
            c->assert_op = 1;
        else if (!ascii_ieq(trim(op), "track"))
            goto done;
    }
    if (has_untracked) {
        if (f_untracked.type == SRV_JSON_TRUE)
            c->flags = TRIFLE_UNTRACKED;
        else if (f_untracked.type != SRV_JSON_FALSE)
            goto done;
    }
    rc = trifle_payload_parse(&c->payload, f_values.p, f_values.n, e);
    status = rc == TRIFLE_EINVAL ? 422 : rc;
done:
    free(at_text);
    free(op);
    if (status != 0)
        post_call_free(c);
    return status;
}

/* The 422 body of a values violation; @p index is the array element, or -1 for a single object. */
static void respond_values_error(srv_request *r, const trifle_error *e, long index)
{
    srv_buf b;

    srv_response_buf(r, &b);
    srv_buf_puts(&b, "{\"errors\":{\"status\":\"error\",\"error\":");
    srv_buf_json_cstr(&b, e->message);
    srv_buf_puts(&b, ",\"path\":");
    if (e->path[0] == '\0')
        srv_buf_puts(&b, "null");
    else
        srv_buf_json_cstr(&b, e->path);
    if (index >= 0) {
        srv_buf_puts(&b, ",\"index\":");
        srv_buf_int(&b, index);
    }
    srv_buf_puts(&b, "}}");
    srv_respond(r, 422, JSON_TYPE, &b);
}

/* A 400 for element @p index of an array body. */
static void respond_bad_element(srv_request *r, long index)
{
    srv_buf b;

    srv_response_buf(r, &b);
    srv_buf_puts(&b, "{\"errors\":{\"detail\":\"Bad request\",\"index\":");
    srv_buf_int(&b, index);
    srv_buf_puts(&b, "}}");
    srv_respond(r, 400, JSON_TYPE, &b);
}

static void respond_created(srv_request *r, int status, int batch, size_t n)
{
    srv_buf b;

    srv_response_buf(r, &b);
    srv_buf_puts(&b, "{\"data\":{\"created\":\"ok\"");
    if (batch) {
        srv_buf_puts(&b, ",\"count\":");
        srv_buf_uint(&b, n);
    }
    srv_buf_puts(&b, "}}");
    srv_respond(r, status, JSON_TYPE, &b);
}

/* Test-only fault (docs/testing.md): TRIFLE_TEST_SERVE_EXIT_AFTER_NOTED=<n> makes the server
 * _exit(86) right after the n-th call that carried a note has been written, before anything
 * records it: the instant the notes are there for, which a real kill cannot hit on demand. */
static long exit_after_noted = -1;
static atomic_long noted_calls;
static pthread_once_t exit_after_once = PTHREAD_ONCE_INIT;

static void exit_after_init(void)
{
    const char *v = getenv("TRIFLE_TEST_SERVE_EXIT_AFTER_NOTED");
    char *end;
    long n;

    if (v == NULL || *v == '\0')
        return;
    n = strtol(v, &end, 10);
    if (*end == '\0' && n > 0)
        exit_after_noted = n;
}

/* Apply one call. With an Idempotency-Key (@p ikey: the call is number @p nth of @p total) or an
 * id of its own, the call carries a note naming them into the source's journal, in the same
 * record as the call (idempotency.c): a server killed right after the write still knows, once the
 * journal is replayed, that the call was applied. */
static int apply_call(srv_source *s, const post_call *c, const char *ikey, size_t nth, size_t total,
                      trifle_error *e)
{
    char note[SRV_IDEM_NOTE_MAX];
    size_t len = 0;
    int rc;

    if ((ikey != NULL && srv_idem_note_put(note, sizeof(note), &len, nth, total, ikey) != 0) ||
        (c->id != NULL && srv_idem_note_put(note, sizeof(note), &len, 1, 1, c->id) != 0))
        len = 0; /* cannot happen: keys are checked and short; the log alone then */
    if (len == 0)
        return c->assert_op ? trifle_assert(s->t, c->key, c->at, c->payload, c->flags, e)
                            : trifle_track(s->t, c->key, c->at, c->payload, c->flags, e);
    rc = trifle_write_noted(s->t, c->assert_op, c->key, c->at, c->payload, c->flags, note, len, e);
    pthread_once(&exit_after_once, exit_after_init);
    if (rc == 0 && exit_after_noted > 0 &&
        atomic_fetch_add_explicit(&noted_calls, 1, memory_order_relaxed) + 1 == exit_after_noted)
        _exit(86);
    return rc;
}

/* POST /api/v1/metrics: one object (the App's API), or — an extension of this server, advertised
 * in GET /api/v1/source `extensions` — a JSON array of such objects, checked completely before
 * the first is applied. An `Idempotency-Key` header makes a repeat answer the first status
 * without applying anything again (idempotency.c). */
void srv_api_metrics_post(srv_request *r)
{
    srv_source *s = srv_request_source(r);
    srv_idem *idem = srv_request_server(r)->idem;
    trifle_error e = TRIFLE_ERROR_INIT;
    trifle_payload *empty = NULL;
    post_call *calls = NULL;
    srv_json root, el;
    srv_json_iter it;
    const char *body, *ikey;
    size_t n = 0, i, start = 0, applied = 0;
    int batch, rc, status = 0, claimed = 0, prior = 0, named = 0;

    body = srv_request_body(r, &n);
    if (srv_json_parse(&root, body, n) != 0 ||
        (root.type != SRV_JSON_OBJECT && root.type != SRV_JSON_ARRAY)) {
        srv_respond_detail(r, 400, "Bad request");
        return;
    }
    ikey = srv_request_header(r, "Idempotency-Key");
    if (ikey != NULL && !srv_idem_key_ok(ikey)) {
        srv_respond_detail(r, 400, "Invalid Idempotency-Key header");
        return;
    }
    batch = root.type == SRV_JSON_ARRAY;
    n = 1;
    if (batch) {
        srv_json_elements(&it, &root);
        for (n = 0; srv_json_next_element(&it, &el);)
            n++;
        if (n == 0) {
            srv_respond_detail(r, 400, "Bad request");
            return;
        }
    }
    if ((calls = calloc(n, sizeof(*calls))) == NULL ||
        trifle_payload_parse(&empty, "{}", 2, &e) != 0) {
        srv_respond_detail(r, 500, "Internal server error");
        goto done;
    }
    /* every element is checked before anything is applied: fields, values, and the key (a track
     * of {} checks the key and writes nothing, SPEC §3.4) */
    if (batch)
        srv_json_elements(&it, &root);
    for (i = 0; i < n; i++) {
        if (batch)
            (void)srv_json_next_element(&it, &el);
        else
            el = root;
        rc = post_call_parse(s, &el, &calls[i], &e);
        if (rc == 0 && (rc = trifle_track(s->t, calls[i].key, calls[i].at, empty, calls[i].flags,
                                          &e)) == TRIFLE_EINVAL)
            rc = 400; /* an invalid or reserved key (ERRATA I9) */
        if (rc == 422) {
            respond_values_error(r, &e, batch ? (long)i : -1);
            goto done;
        }
        if (rc == 400 && batch) {
            respond_bad_element(r, (long)i);
            goto done;
        }
        if (rc != 0) {
            if (rc > 0)
                srv_respond_detail(r, rc, status_detail(rc));
            else
                respond_failure(r, rc, &e);
            goto done;
        }
    }
    if (ikey != NULL) {
        switch (srv_idem_begin(idem, s->cfg->id, ikey, n, &prior, &start)) {
        case SRV_IDEM_NEW:
            break;
        case SRV_IDEM_RESUME:
            break; /* an earlier try applied calls [0, start) */
        case SRV_IDEM_REPLAY:
            respond_created(r, prior, batch, n);
            goto done;
        case SRV_IDEM_BUSY:
            srv_respond_detail(r, 409, "A request with this Idempotency-Key is in progress");
            goto done;
        case SRV_IDEM_MISMATCH:
            srv_respond_detail(r, 422, "Idempotency-Key reused for another request");
            goto done;
        default:
            srv_respond_detail(r, 500, "Internal server error");
            goto done;
        }
        claimed = 1;
    }
    applied = start;
    srv_thread_mark(SRV_THREAD_BLOCKED);
    for (i = start; i < n; i++) {
        post_call *c = &calls[i];
        int iprior = 0;
        size_t idone = 0;

        if (c->id != NULL) {
            /* a write that names itself: applied at most once whatever request carries it */
            int got = srv_idem_begin(idem, s->cfg->id, c->id, 1, &iprior, &idone);
            if (got == SRV_IDEM_BUSY) {
                status = 409;
                break;
            }
            if (got == SRV_IDEM_NOMEM) {
                status = 500;
                break;
            }
            if (got == SRV_IDEM_REPLAY || got == SRV_IDEM_MISMATCH)
                goto next; /* applied before */
        }
        rc = apply_call(s, c, claimed ? ikey : NULL, i + 1, n, &e);
        if (c->id != NULL &&
            srv_idem_end(idem, s->cfg->id, c->id, rc == 0 ? 201 : 500, rc == 0 ? 1 : 0, 0) != 0)
            srv_log(TRIFLE_LOG_ERROR, "idempotency: cannot record a write's id");
        if (rc != 0) {
            status = failure_status(r, rc, &e);
            break;
        }
        if (atomic_load_explicit(&s->journal_logged_ms, memory_order_relaxed) != 0 &&
            atomic_exchange(&s->journal_logged_ms, 0) != 0)
            srv_log(TRIFLE_LOG_INFO,
                    "source %s: the journal takes writes again (%" PRIu64
                    " more answered 503 since the last report)",
                    s->cfg->id, atomic_exchange(&s->journal_refused, 0));
        srv_count(c->assert_op ? SRV_API_ASSERT : SRV_API_TRACK, 1);
        named = named || c->id != NULL;
    next:
        applied = i + 1;
        if (claimed && i + 1 < n && srv_idem_progress(idem, s->cfg->id, ikey, applied) != 0)
            srv_log(TRIFLE_LOG_ERROR, "idempotency: cannot record progress of a request");
    }
    srv_thread_mark(SRV_THREAD_RUNNING);
    if (status == 0)
        status = 201;
    if (claimed && srv_idem_end(idem, s->cfg->id, ikey, status, applied, 1) != 0)
        srv_log(TRIFLE_LOG_ERROR, "idempotency: cannot record the end of a request");
    else if (!claimed && named && srv_idem_sync(idem) != 0)
        srv_log(TRIFLE_LOG_ERROR, "idempotency: cannot sync the log");
    if (status == 201)
        respond_created(r, 201, batch, n);
    else
        srv_respond_detail(r, status, status_detail(status));
done:
    if (calls != NULL)
        for (i = 0; i < n; i++)
            post_call_free(&calls[i]);
    free(calls);
    trifle_payload_free(empty);
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

/* The HTTP status of a query's outcome (docs/http-api.md, "POST /api/v1/metrics/query"). */
static int query_status(int outcome)
{
    switch (outcome) {
    case TRIFLE_QUERY_OK:
        return 200;
    case TRIFLE_QUERY_MALFORMED:
        return 400;
    case TRIFLE_QUERY_INVALID:
        return 422;
    default:
        return 500;
    }
}

/* The response body of a query's outcome: 200 `{"data":<data>}`; 422 `{"errors":{"status":
 * "error","error":"<message>",<extra fields>}}`; 400 and 500 the generic detail (a 500's
 * message goes to the log). @p json is the result's TRIFLE_QUERY_RENDER_DATA text: the data
 * object, or the extra fields object on failure. The message is escaped as libtrifle writes JSON
 * strings (no repair: it is the library's text), so the bytes are those the library rendered
 * before 1.0.0. */
static void query_body(srv_buf *b, int status, const trifle_query_result *res, const char *json)
{
    const char *msg;
    size_t n;

    switch (status) {
    case 200:
        srv_buf_puts(b, "{\"data\":");
        srv_buf_puts(b, json);
        srv_buf_putc(b, '}');
        return;
    case 422:
        msg = trifle_query_result_message(res);
        srv_buf_puts(b, "{\"errors\":{\"status\":\"error\",\"error\":");
        tu_buf_json_string(b, msg, strlen(msg), 0);
        /* `{"allowed":[...]}` → `,"allowed":[...]`; `{}` → nothing */
        n = strlen(json);
        if (n > 2 && json[0] == '{') {
            srv_buf_putc(b, ',');
            srv_buf_append(b, json + 1, n - 2);
        }
        srv_buf_puts(b, "}}");
        return;
    default:
        srv_buf_puts(b, "{\"errors\":{\"detail\":");
        srv_buf_json_cstr(b, status_detail(status));
        srv_buf_puts(b, "}}");
        return;
    }
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
        rc = trifle_query_result_render(&text, res, TRIFLE_QUERY_RENDER_DATA, TRIFLE_JSON_COMPACT,
                                        &e);
    if (rc != 0) {
        respond_failure(r, rc == TRIFLE_EINVAL ? TRIFLE_ERROR : rc, &e);
        goto done;
    }
    status = query_status(trifle_query_result_outcome(res));
    if (status == 500)
        srv_log(TRIFLE_LOG_ERROR, "source %s: query: %s: %s", s->cfg->id,
                trifle_status_name(trifle_query_result_code(res)),
                trifle_query_result_message(res));
    if (status == 200)
        srv_count(SRV_API_QUERY, 1);
    srv_response_buf(r, &b);
    query_body(&b, status, res, text);
    srv_respond(r, status, JSON_TYPE, &b);
done:
    trifle_mem_free(text);
    trifle_query_result_free(res);
}
