/* /stats, /stats/prometheus, /debug/threads, /debug/pool/bytes (SPEC §10.4-§10.6, §10.9) and the
 * Simple Stats figures of the server and its sources. */
#include "srv_int.h"

#include <string.h>

/* The buffer counters of every source (SPEC §6.7, §10.9): counters are added as deltas, so they
 * stay counters and resume from the persisted totals after a restart; the three gauges are set. */
void srv_counters_refresh(srv_server *s)
{
    static const struct {
        const char *name;
        size_t offset;
    } counters[] = {
        {"operations", offsetof(trifle_buffer_counters, operations)},
        {"flushes", offsetof(trifle_buffer_counters, flushes)},
        {"flush_errors", offsetof(trifle_buffer_counters, flush_errors)},
        {"retries", offsetof(trifle_buffer_counters, retries)},
        {"unknown_outcomes", offsetof(trifle_buffer_counters, unknown_outcomes)},
        {"blocked_waits", offsetof(trifle_buffer_counters, blocked_waits)},
        {"rejected_full", offsetof(trifle_buffer_counters, rejected_full)},
    };
    size_t i, k;

    pthread_mutex_lock(&s->counters_lock);
    srv_counters_flush();
    for (i = 0; i < s->n_sources; i++) {
        srv_source *src = &s->sources[i];
        trifle_buffer_counters now = TRIFLE_BUFFER_COUNTERS_INIT;
        if (src->t == NULL || trifle_buffer_stats(src->t, &now) != 0)
            continue;
        for (k = 0; k < sizeof(counters) / sizeof(counters[0]); k++) {
            uint64_t a = *(const uint64_t *)(const void *)((const char *)&now + counters[k].offset);
            uint64_t b =
                *(const uint64_t *)(const void *)((const char *)&src->last + counters[k].offset);
            if (a > b)
                (void)trifle_simple_incr(src->category, counters[k].name,
                                         a - b > INT64_MAX ? INT64_MAX : (int64_t)(a - b), NULL);
        }
        (void)trifle_simple_gauge(
            src->category, "pending_entries",
            (int64_t)(now.pending_entries > INT64_MAX ? INT64_MAX : now.pending_entries), NULL);
        (void)trifle_simple_gauge(
            src->category, "pending_operations",
            (int64_t)(now.pending_operations > INT64_MAX ? INT64_MAX : now.pending_operations),
            NULL);
        (void)trifle_simple_gauge(
            src->category, "quarantined",
            (int64_t)(now.quarantined > INT64_MAX ? INT64_MAX : now.quarantined), NULL);
        src->last = now;
        {
            /* the server's own: writes answered 503 because the journal refused them */
            uint64_t d =
                atomic_exchange_explicit(&src->journal_refused_new, 0, memory_order_relaxed);
            if (d > 0)
                (void)trifle_simple_incr(src->category, "journal_refused",
                                         d > INT64_MAX ? INT64_MAX : (int64_t)d, NULL);
        }
    }
    pthread_mutex_unlock(&s->counters_lock);
}

/* ------------------------------------------------------------------------------------------- */
/* Pools                                                                                        */

static int64_t clamp(uint64_t v)
{
    return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* `<tag>: {allocated, acquired, ...}`: the figures of one pool, as read for `_all`. */
static int write_pool(trifle_simple_writer *w, const char *tag, const srv_pool_counters *c)
{
    static const char *const names[] = {
        "allocated", "acquired",  "returned",   "dropped",       "throttled",         "inuse",
        "invalid",   "pool_size", "pool_items", "max_item_size", "default_item_size", "max_count",
        "max_size"};
    const uint64_t values[] = {c->allocated,  c->acquired,      c->returned,          c->dropped,
                               c->throttled,  c->inuse,         c->invalid,           c->pool_size,
                               c->pool_items, c->max_item_size, c->default_item_size, c->max_count,
                               c->max_size};
    size_t i;
    int rc = 0;

    _Static_assert(sizeof(values) / sizeof(values[0]) == sizeof(names) / sizeof(names[0]),
                   "a name for every figure");
    rc |= trifle_simple_writer_enter(w, tag);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        rc |= trifle_simple_writer_int(w, names[i], clamp(values[i]));
    rc |= trifle_simple_writer_leave(w);
    return rc != 0 ? TRIFLE_ENOMEM : 0;
}

/* `pool: {bytes: {_all: {pool_items, pool_size}, http_request: {...}, http_response: {...}}}` */
int srv_pools_provider(trifle_simple_writer *w, trifle_error *err, void *payload)
{
    srv_server *s = payload;
    srv_pool_counters a, b;

    srv_pool_read(&s->request_pool, &a);
    srv_pool_read(&s->response_pool, &b);
    if (trifle_simple_writer_enter(w, "bytes") != 0 ||
        trifle_simple_writer_int(w, "_all.pool_items", clamp(a.pool_items + b.pool_items)) != 0 ||
        trifle_simple_writer_int(w, "_all.pool_size", clamp(a.pool_size + b.pool_size)) != 0 ||
        write_pool(w, s->request_pool.tag, &a) != 0 ||
        write_pool(w, s->response_pool.tag, &b) != 0 || trifle_simple_writer_leave(w) != 0)
        return srv_error(err, TRIFLE_ENOMEM, "cannot render the pool figures");
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Endpoints                                                                                    */

void srv_admin_stats(srv_request *r, int prometheus)
{
    srv_server *s = srv_request_server(r);
    trifle_error e = TRIFLE_ERROR_INIT;
    const char *format;
    char *text = NULL;
    int bad = 0, rc;
    srv_buf b;

    format = srv_request_param(r, "format", &bad);
    if (!prometheus && format != NULL && !bad && strcmp(format, "prometheus") == 0)
        prometheus = 1;
    srv_counters_refresh(s);
    rc = prometheus ? trifle_simple_render_prometheus(&text, &e)
                    : trifle_simple_render_json(&text, &e);
    if (rc != 0) {
        srv_log(TRIFLE_LOG_ERROR, "stats: %s", e.message);
        srv_respond_reason(r, 500, e.message[0] != '\0' ? e.message : trifle_strerror(rc));
        return;
    }
    srv_response_buf(r, &b);
    srv_buf_puts(&b, text);
    trifle_mem_free(text);
    srv_respond(
        r, 200,
        prometheus ? TRIFLE_SIMPLE_PROMETHEUS_CONTENT_TYPE : TRIFLE_SIMPLE_JSON_CONTENT_TYPE, &b);
}

void srv_admin_threads(srv_request *r)
{
    srv_buf b;

    srv_response_buf(r, &b);
    srv_threads_render(&b);
    srv_respond(r, 200, "application/json; charset=utf-8", &b);
}

static void put_pool(srv_buf *b, srv_pool *p)
{
    srv_pool_counters c;

    srv_pool_read(p, &c);
    srv_buf_json_cstr(b, p->tag);
    srv_buf_puts(b, ":{\"allocated\":");
    srv_buf_uint(b, c.allocated);
    srv_buf_puts(b, ",\"acquired\":");
    srv_buf_uint(b, c.acquired);
    srv_buf_puts(b, ",\"returned\":");
    srv_buf_uint(b, c.returned);
    srv_buf_puts(b, ",\"dropped\":");
    srv_buf_uint(b, c.dropped);
    srv_buf_puts(b, ",\"throttled\":");
    srv_buf_uint(b, c.throttled);
    srv_buf_puts(b, ",\"inuse\":");
    srv_buf_uint(b, c.inuse);
    srv_buf_puts(b, ",\"invalid\":");
    srv_buf_uint(b, c.invalid);
    srv_buf_puts(b, ",\"pool_size\":");
    srv_buf_uint(b, c.pool_size);
    srv_buf_puts(b, ",\"pool_items\":");
    srv_buf_uint(b, c.pool_items);
    srv_buf_puts(b, ",\"max_item_size\":");
    srv_buf_uint(b, c.max_item_size);
    srv_buf_puts(b, ",\"default_item_size\":");
    srv_buf_uint(b, c.default_item_size);
    srv_buf_puts(b, ",\"max_count\":");
    srv_buf_uint(b, c.max_count);
    srv_buf_puts(b, ",\"max_size\":");
    srv_buf_uint(b, c.max_size);
    srv_buf_putc(b, '}');
}

void srv_admin_pools(srv_request *r)
{
    srv_server *s = srv_request_server(r);
    srv_buf b;

    srv_response_buf(r, &b);
    srv_buf_putc(&b, '{');
    put_pool(&b, &s->request_pool);
    srv_buf_putc(&b, ',');
    put_pool(&b, &s->response_pool);
    srv_buf_putc(&b, '}');
    srv_respond(r, 200, "application/json; charset=utf-8", &b);
}
