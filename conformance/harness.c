/* trifle-conformance: the helpers case bodies use (harness.h). Everything goes through the public
 * API; memory a case allocates is released after the body, newest first. */
#include "harness.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct conf_cleanup {
    void (*fn)(conf_ctx *c, void *p);
    void *p;
    conf_cleanup *next;
};

static void vrecord(conf_ctx *c, int *flag, const char *fmt, va_list ap)
{
    if (c->failed || c->skipped)
        return;
    *flag = 1;
    (void)vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
}

void conf_fail(conf_ctx *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vrecord(c, &c->failed, fmt, ap);
    va_end(ap);
}

void conf_skip(conf_ctx *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vrecord(c, &c->skipped, fmt, ap);
    va_end(ap);
}

void conf_fail_err(conf_ctx *c, const char *what, int rc)
{
    conf_fail(c, "%s: %s %s", what, trifle_status_name(rc),
              c->err.message[0] != '\0' ? c->err.message : "(no message)");
}

/* The runner is a test tool: running out of memory outside --oom is not worth recovering from. */
static void *xmalloc(size_t size)
{
    void *p = calloc(1, size == 0 ? 1 : size);

    if (p == NULL) {
        (void)fputs("trifle-conformance: out of memory\n", stderr);
        abort();
    }
    return p;
}

void conf_defer(conf_ctx *c, void (*fn)(conf_ctx *c, void *p), void *p)
{
    conf_cleanup *k = xmalloc(sizeof(*k));

    k->fn = fn;
    k->p = p;
    k->next = c->cleanups;
    c->cleanups = k;
}

void conf_release(conf_ctx *c)
{
    while (c->cleanups != NULL) {
        conf_cleanup *k = c->cleanups;

        c->cleanups = k->next;
        k->fn(c, k->p);
        free(k);
    }
}

static void free_cb(conf_ctx *c, void *p)
{
    (void)c;
    free(p);
}

void *conf_alloc(conf_ctx *c, size_t size)
{
    void *p = xmalloc(size);

    conf_defer(c, free_cb, p);
    return p;
}

char *conf_strdup(conf_ctx *c, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = conf_alloc(c, n);

    memcpy(p, s, n);
    return p;
}

char *conf_printf(conf_ctx *c, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *p;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    p = conf_alloc(c, (size_t)n + 1);
    va_start(ap, fmt);
    (void)vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

static int leaf_cmp(const void *a, const void *b)
{
    return strcmp(((const trifle_leaf *)a)->path, ((const trifle_leaf *)b)->path);
}

void conf_sort_leaves(trifle_leaf *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof(*v), leaf_cmp);
}

int conf_same(double got, double want, int tol)
{
    if (got == want)
        return 1; /* also 0 == -0 */
    if (tol == CONF_REL && isfinite(got) && isfinite(want))
        return fabs(got - want) <= 1e-12 * fabs(want);
    return 0;
}

/* ---- storage ------------------------------------------------------------------------------ */

static void storage_close_cb(conf_ctx *c, void *p)
{
    (void)c;
    trifle_storage_close(p);
}

trifle_storage *conf_storage(conf_ctx *c, const char *url)
{
    trifle_storage_options o = TRIFLE_STORAGE_OPTIONS_INIT;
    trifle_storage *st = NULL;
    int rc;

    o.joined = c->mode;
    o.driver = c->driver;
    o.driver_path = c->driver_path;
    trifle_error_clear(&c->err);
    if ((rc = trifle_storage_open(&st, url != NULL ? url : c->url, &o, &c->err)) != 0) {
        trifle_storage_close(st);
        conf_fail_err(c, "storage open", rc);
        return NULL;
    }
    conf_defer(c, storage_close_cb, st);
    return st;
}

const char *conf_url_with(conf_ctx *c, const char *params)
{
    return conf_printf(c, "%s%c%s", c->url, strchr(c->url, '?') != NULL ? '&' : '?', params);
}

int conf_bucket(conf_ctx *c, trifle_storage *st, trifle_bucket *b, const char *key, const char *g,
                int64_t at)
{
    char buf[512];
    size_t n = trifle_storage_identifier(st, buf, sizeof(buf), key, g, at);

    if (n >= sizeof(buf)) {
        conf_fail(c, "identifier of %s/%s/%lld does not fit %zu bytes", key, g, (long long)at,
                  sizeof(buf));
        return -1;
    }
    b->id = conf_strdup(c, buf);
    b->key = key;
    b->granularity = g;
    b->at = at;
    return 0;
}

int conf_entry(conf_ctx *c, trifle_storage *st, trifle_entry *e, const char *key, const char *g,
               int64_t at, const trifle_leaf *leaves, size_t n)
{
    trifle_leaf *copy = conf_alloc(c, n * sizeof(*copy));

    if (n > 0)
        memcpy(copy, leaves, n * sizeof(*copy));
    conf_sort_leaves(copy, n);
    e->leaves = copy;
    e->n_leaves = n;
    return conf_bucket(c, st, &e->bucket, key, g, at);
}

trifle_entry *conf_batch(conf_ctx *c, size_t n, trifle_bucket **b_out)
{
    trifle_entry *e = conf_alloc(c, (n == 0 ? 1 : n) * sizeof(*e));
    trifle_bucket *b = conf_alloc(c, (n == 0 ? 1 : n) * sizeof(*b));
    size_t i;

    for (i = 0; i < n; i++) {
        trifle_leaf l[2] = {{"count", (double)(i % 7 + 1)}, {"n.v", 0.5}};

        if (conf_entry(c, c->st, &e[i], "batch", "1h", CONF_T0 + (int64_t)i * 3600, l, 2) != 0)
            return NULL;
        b[i] = e[i].bucket;
    }
    *b_out = b;
    return e;
}

int conf_count_leaf(size_t index, const char *path, double value, void *payload)
{
    (void)index;
    (void)path;
    (void)value;
    if (payload != NULL)
        ++*(size_t *)payload;
    return 0;
}

/* Collects the leaves of one get/scan and checks the promise of trifle_leaf_fn: leaves of one
 * index come together, indexes ascending, paths ascending within an index. */
typedef struct collector {
    conf_ctx *c;
    conf_reads *r;
    size_t cap;
    int have_last;
    size_t last;
    const char *why; /* broken promise, reported after the call */
} collector;

static int collect_cb(size_t index, const char *path, double value, void *payload)
{
    collector *k = payload;
    conf_reads *r = k->r;
    trifle_leaf *l;

    if (k->why != NULL)
        return 0;
    if (index >= r->n) {
        k->why = conf_printf(k->c, "leaf \"%s\" delivered for index %zu of %zu buckets", path,
                             index, r->n);
        return 0;
    }
    if (k->have_last && index < k->last) {
        k->why = conf_printf(k->c, "index %zu delivered after index %zu", index, k->last);
        return 0;
    }
    if (k->have_last && index == k->last && strcmp(path, r->leaves[r->n_leaves - 1].path) <= 0) {
        k->why = conf_printf(k->c, "index %zu: path \"%s\" delivered after \"%s\"", index, path,
                             r->leaves[r->n_leaves - 1].path);
        return 0;
    }
    if (!k->have_last || index != k->last)
        r->start[index] = r->n_leaves;
    if (r->n_leaves == k->cap) {
        size_t cap = k->cap == 0 ? 64 : k->cap * 2;
        trifle_leaf *v = realloc(r->leaves, cap * sizeof(*v));

        if (v == NULL) {
            (void)fputs("trifle-conformance: out of memory\n", stderr);
            abort();
        }
        r->leaves = v;
        k->cap = cap;
    }
    l = &r->leaves[r->n_leaves++];
    l->path = conf_strdup(k->c, path);
    l->value = value;
    r->count[index]++;
    k->have_last = 1;
    k->last = index;
    return 0;
}

static void reads_free_cb(conf_ctx *c, void *p)
{
    conf_reads *r = p;

    (void)c;
    free(r->leaves);
    free(r);
}

static conf_reads *reads_new(conf_ctx *c, size_t n)
{
    conf_reads *r = xmalloc(sizeof(*r));

    conf_defer(c, reads_free_cb, r);
    r->n = n;
    r->start = conf_alloc(c, (n == 0 ? 1 : n) * sizeof(size_t));
    r->count = conf_alloc(c, (n == 0 ? 1 : n) * sizeof(size_t));
    return r;
}

/* Make k ready to collect the leaves of n buckets for c. */
static void collect_begin(collector *k, conf_ctx *c, size_t n)
{
    memset(k, 0, sizeof(*k));
    k->c = c;
    k->r = reads_new(c, n);
    trifle_error_clear(&c->err);
}

/* What k collected in the call named what, or NULL (recorded) when the call's status rc (ok: the
 * one other status that succeeds) failed or a promise was broken. */
static conf_reads *collect_end(collector *k, const char *what, int rc, int ok)
{
    if (rc != 0 && rc != ok) {
        conf_fail_err(k->c, what, rc);
        return NULL;
    }
    if (k->why != NULL) {
        conf_fail(k->c, "%s: %s", what, k->why);
        return NULL;
    }
    return k->r;
}

conf_reads *conf_get(conf_ctx *c, trifle_storage *st, const trifle_bucket *b, size_t n)
{
    collector k;

    collect_begin(&k, c, n);
    return collect_end(&k, "get", trifle_storage_get(st, b, n, collect_cb, &k, &c->err), 0);
}

conf_reads *conf_scan(conf_ctx *c, trifle_storage *st, const char *key, int64_t *at, int *rc_out)
{
    collector k;

    collect_begin(&k, c, 1);
    *rc_out = trifle_storage_scan(st, key, at, collect_cb, &k, &c->err);
    return collect_end(&k, "scan", *rc_out, TRIFLE_ENOTFOUND);
}

int conf_expect(conf_ctx *c, const conf_reads *r, size_t i, const char *what,
                const trifle_leaf *exp, size_t n, int tol)
{
    trifle_leaf *want = conf_alloc(c, (n == 0 ? 1 : n) * sizeof(*want));
    size_t ng = r->count[i], a = 0, b = 0;
    const trifle_leaf *got = ng > 0 ? &r->leaves[r->start[i]] : NULL;

    if (n > 0)
        memcpy(want, exp, n * sizeof(*want));
    conf_sort_leaves(want, n);
    while (a < ng || b < n) {
        int cmp = a == ng ? 1 : b == n ? -1 : strcmp(got[a].path, want[b].path);

        if (cmp < 0) {
            conf_fail(c, "%s: unexpected leaf \"%s\" = %.17g", what, got[a].path, got[a].value);
            return -1;
        }
        if (cmp > 0) {
            conf_fail(c, "%s: leaf \"%s\" missing (want %.17g)", what, want[b].path, want[b].value);
            return -1;
        }
        if (!conf_same(got[a].value, want[b].value, tol)) {
            conf_fail(c, "%s: leaf \"%s\" = %.17g, want %.17g", what, got[a].path, got[a].value,
                      want[b].value);
            return -1;
        }
        a++;
        b++;
    }
    return 0;
}

/* ---- stats handle ------------------------------------------------------------------------- */

typedef struct handle_rec {
    trifle *t;
} handle_rec;

static void handle_close_cb(conf_ctx *c, void *p)
{
    handle_rec *h = p;

    if (h->t != NULL)
        (void)conf_handle_close(c, h->t);
    free(h);
}

static void config_free_cb(conf_ctx *c, void *p)
{
    (void)c;
    trifle_config_free(p);
}

trifle *conf_handle(conf_ctx *c, const char *url, ...)
{
    trifle_config *cfg = NULL;
    trifle *t = NULL;
    handle_rec *h;
    const char *name;
    va_list ap;
    int rc;

    trifle_error_clear(&c->err);
    if ((rc = trifle_config_new(&cfg, &c->err)) != 0) {
        conf_fail_err(c, "config", rc);
        return NULL;
    }
    conf_defer(c, config_free_cb, cfg);
    if ((rc = trifle_config_set(cfg, "driver", url != NULL ? url : c->url, &c->err)) != 0 ||
        (c->driver_path != NULL &&
         (rc = trifle_config_set(cfg, "driver_path", c->driver_path, &c->err)) != 0) ||
        (rc = trifle_config_set(cfg, "buffer.enabled", "false", &c->err)) != 0) {
        conf_fail_err(c, "config", rc);
        return NULL;
    }
    va_start(ap, url);
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);

        if ((rc = trifle_config_set(cfg, name, value, &c->err)) != 0) {
            va_end(ap);
            conf_fail_err(c, conf_printf(c, "config %s=%s", name, value), rc);
            return NULL;
        }
    }
    va_end(ap);
    if ((rc = trifle_open(&t, cfg, &c->err)) != 0) {
        trifle_free(t);
        conf_fail_err(c, "open", rc);
        return NULL;
    }
    h = xmalloc(sizeof(*h));
    h->t = t;
    conf_defer(c, handle_close_cb, h);
    if ((rc = trifle_setup(t, &c->err)) != 0) {
        conf_fail_err(c, "setup", rc);
        return NULL;
    }
    return t;
}

int conf_handle_close(conf_ctx *c, trifle *t)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    conf_cleanup *k;
    int rc;

    for (k = c->cleanups; k != NULL; k = k->next) /* not again after the body */
        if (k->fn == handle_close_cb && ((handle_rec *)k->p)->t == t)
            ((handle_rec *)k->p)->t = NULL;
    rc = trifle_close(t, &err);
    trifle_free(t);
    if (rc != 0) {
        conf_fail(c, "close: %s %s", trifle_status_name(rc), err.message);
        return -1;
    }
    return 0;
}

static void payload_free_cb(conf_ctx *c, void *p)
{
    (void)c;
    trifle_payload_free(p);
}

trifle_payload *conf_payload(conf_ctx *c, const char *json)
{
    trifle_payload *p = NULL;
    int rc;

    trifle_error_clear(&c->err);
    if ((rc = trifle_payload_parse(&p, json, strlen(json), &c->err)) != 0) {
        conf_fail_err(c, conf_printf(c, "payload %s", json), rc);
        return NULL;
    }
    conf_defer(c, payload_free_cb, p);
    return p;
}

static void series_free_cb(conf_ctx *c, void *p)
{
    (void)c;
    trifle_series_free(p);
}

trifle_series *conf_values(conf_ctx *c, trifle *t, const char *key, int64_t from, int64_t to,
                           const char *g)
{
    trifle_series *s = NULL;
    int rc;

    trifle_error_clear(&c->err);
    if ((rc = trifle_values(t, &s, key, from, to, g, 0, &c->err)) != 0) {
        conf_fail_err(c, conf_printf(c, "values %s %s", key, g), rc);
        return NULL;
    }
    conf_defer(c, series_free_cb, s);
    return s;
}

int conf_expect_json(conf_ctx *c, const char *what, const char *json, const char *want_json)
{
    trifle_payload *got, *want;
    const trifle_leaf *g, *w;
    size_t ng, nw, i;

    if ((got = conf_payload(c, json)) == NULL || (want = conf_payload(c, want_json)) == NULL)
        return -1;
    g = trifle_payload_leaves(got);
    w = trifle_payload_leaves(want);
    ng = trifle_payload_count(got);
    nw = trifle_payload_count(want);
    for (i = 0; i < ng && i < nw; i++)
        if (strcmp(g[i].path, w[i].path) != 0 || !conf_same(g[i].value, w[i].value, CONF_EXACT))
            break;
    if (i < ng || i < nw) {
        conf_fail(c, "%s: got %s, want %s", what, json, want_json);
        return -1;
    }
    return 0;
}

int conf_expect_row(conf_ctx *c, const trifle_series *s, size_t i, const char *want_json)
{
    char *json = NULL;
    int rc;

    if (i >= trifle_series_len(s)) {
        conf_fail(c, "series has %zu rows, want row %zu", trifle_series_len(s), i);
        return -1;
    }
    trifle_error_clear(&c->err);
    if ((rc = trifle_series_row_json(s, i, &json, TRIFLE_JSON_COMPACT, &c->err)) != 0) {
        conf_fail_err(c, "row json", rc);
        return -1;
    }
    rc = conf_expect_json(c,
                          conf_printf(c, "row %zu (at %lld)", i, (long long)trifle_series_at(s, i)),
                          json, want_json);
    trifle_mem_free(json);
    return rc;
}

/* ---- URLs --------------------------------------------------------------------------------- */

const char *conf_url_unreachable(conf_ctx *c)
{
    const char *q = strchr(c->url, '?');
    const char *query = q != NULL ? q : "";
    size_t front = q != NULL ? (size_t)(q - c->url) : strlen(c->url);
    char *head = conf_alloc(c, front + 1);
    char *sep, *auth, *end, *at;

    memcpy(head, c->url, front);
    if ((sep = strstr(head, "://")) == NULL) {
        /* scheme:path (a file): a path inside a directory that does not exist */
        if ((sep = strchr(head, ':')) == NULL)
            return c->url;
        sep[1] = '\0';
        return conf_printf(c, "%s/nonexistent-trifle-conformance/%s.db%s", head, c->ns, query);
    }
    auth = sep + 3;
    end = auth + strcspn(auth, "/");
    if (end == auth) { /* scheme:///path (a socket or file) */
        *auth = '\0';
        return conf_printf(c, "%s/nonexistent-trifle-conformance/%s%s", head, c->ns, query);
    }
    /* keep user information, put a port nobody listens on in place of the host list */
    *end = '\0';
    at = strrchr(auth, '@');
    if (at != NULL)
        at[1] = '\0';
    else
        *auth = '\0';
    return conf_printf(c, "%s127.0.0.1:1%.*s%s", head, (int)(front - (size_t)(end - head)),
                       c->url + (end - head), query);
}
