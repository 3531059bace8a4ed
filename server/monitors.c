/* Monitors (issue 15): CRUD at /api/v1/monitors[/:id] and the thread that evaluates them.
 *
 * A monitor watches one value path of one key: every `interval_s` seconds the thread reads the
 * last `window` of the key at `granularity`, aggregates the path (sum, mean, min, max) and
 * compares the result with `threshold` (>, >=, <, <=). The result is its state, `ok` or `alert`
 * (`unknown` before the first evaluation, treated as `ok`). A window without any value does not
 * meet the condition.
 *
 * Each change of state puts one event into the monitor's outbox, and the new state, the last
 * evaluation and the outbox are written to `<data_dir>/monitors/<source id>.json` in one atomic
 * rewrite (store.c) before anything is sent. So a restart finds the state it left: it neither
 * fires a change twice nor loses one. The same thread delivers each outbox's oldest event to the
 * monitor's webhook with libcurl (POST, JSON, a timeout, no redirects), retrying with exponential
 * backoff (monitors.webhook_retries, webhook_backoff_ms) and then dropping it with an error in the
 * log; the failures are counted in /stats under `monitors`. Delivery is at least once: an event
 * carries an `event_id` that a receiver can use to drop a repeat (a crash between a delivery and
 * the save that records it resends it).
 *
 * The thread holds a store's lock only to copy a monitor out or write a result back, never while
 * it reads metrics or talks to a webhook, so requests never wait for it, and ingestion does not
 * touch it at all.
 *
 * Webhook targets: the URL's host must be named in monitors.webhook_allow, or every address it
 * resolves to must fall in a block listed there (default: 127.0.0.0/8 and ::1, loopback only).
 * The check runs when a monitor is saved and again before every delivery, and the connection is
 * pinned to the address that was checked (CURLOPT_RESOLVE), so a DNS answer that changes in
 * between cannot point the server at another network. */
#include "store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>

#define HISTORY_MAX 50 /* state changes kept per monitor */
#define OUTBOX_MAX 20  /* undelivered events kept per monitor (the oldest go first) */
#define MAX_WINDOW_S (400LL * 86400)

struct srv_monitors {
    srv_server *srv;
    srv_stores stores; /* one per source */
    pthread_t thread;
    int started;
    int curl_ready;
    pthread_mutex_t lock; /* stop, wake */
    pthread_cond_t cond;
    int stop;
    int wake;
    srv_thread *self;
    atomic_llong evaluations, eval_errors, alerts, recoveries, delivered, failed_attempts, dropped;
    atomic_int failing; /* monitors whose last delivery attempt failed */
};

/* ------------------------------------------------------------------------------------------- */
/* The allow-list                                                                               */

typedef struct allow_block {
    int family; /* AF_INET, AF_INET6 */
    unsigned char addr[16];
    int bits;
} allow_block;

/* An address or CIDR block: 1 and *out, else 0. */
static int parse_block(const char *s, allow_block *out)
{
    char text[64];
    const char *slash = strchr(s, '/');
    size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
    char *end = NULL;
    long bits;

    if (n == 0 || n >= sizeof(text))
        return 0;
    memcpy(text, s, n);
    text[n] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, text, out->addr) == 1) {
        out->family = AF_INET;
        out->bits = 32;
    } else if (inet_pton(AF_INET6, text, out->addr) == 1) {
        out->family = AF_INET6;
        out->bits = 128;
    } else {
        return 0;
    }
    if (slash != NULL) {
        errno = 0;
        bits = strtol(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || bits > out->bits)
            return 0;
        out->bits = (int)bits;
    }
    return 1;
}

/* A host name as RFC 1123 allows it (letters, digits, hyphens, dots). */
static int host_name_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 253)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

int srv_allow_entry_ok(const char *s)
{
    allow_block b;

    return parse_block(s, &b) || host_name_ok(s);
}

static int block_has(const allow_block *b, int family, const unsigned char *addr)
{
    int full = b->bits / 8, rest = b->bits % 8;

    if (b->family != family)
        return 0;
    if (memcmp(b->addr, addr, (size_t)full) != 0)
        return 0;
    return rest == 0 || ((b->addr[full] ^ addr[full]) & (0xff << (8 - rest))) == 0;
}

static int address_allowed(const srv_config *c, int family, const unsigned char *addr)
{
    static const char *const loopback[] = {"127.0.0.0/8", "::1"};
    unsigned char v4[4];
    allow_block b;
    size_t i, n = c->webhook_allow != NULL ? c->n_webhook_allow : 2;

    if (family == AF_INET6 && memcmp(addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
        memcpy(v4, addr + 12, 4); /* ::ffff:a.b.c.d is a.b.c.d */
        family = AF_INET;
        addr = v4;
    }
    for (i = 0; i < n; i++) {
        const char *e = c->webhook_allow != NULL ? c->webhook_allow[i] : loopback[i];
        if (parse_block(e, &b) && block_has(&b, family, addr))
            return 1;
    }
    return 0;
}

/* Check a webhook URL. Returns 0 with the host, the port and (unless the host is allowed by
 * name) the checked address to pin in @p pin ("" when none); else -1 and a reason. */
static int check_url(const srv_config *c, const char *url, char *pin, size_t pin_size,
                     const char **why)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    struct addrinfo hints, *res = NULL, *ai;
    size_t i;
    int rc = -1, any = 0;

    pin[0] = '\0';
    *why = "must be an http:// or https:// URL";
    if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto done;
    if (host[0] == '[') { /* an IPv6 literal */
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }
    for (i = 0; c->webhook_allow != NULL && i < c->n_webhook_allow; i++) {
        allow_block b;
        if (!parse_block(c->webhook_allow[i], &b) && strcasecmp(c->webhook_allow[i], host) == 0) {
            rc = 0; /* allowed by name: any address */
            goto done;
        }
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        *why = "host does not resolve";
        goto done;
    }
    *why = "host is not allowed by monitors.webhook_allow";
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        const unsigned char *a;
        char text[INET6_ADDRSTRLEN];
        if (ai->ai_family == AF_INET)
            a = (const unsigned char *)&((struct sockaddr_in *)(void *)ai->ai_addr)->sin_addr;
        else if (ai->ai_family == AF_INET6)
            a = (const unsigned char *)&((struct sockaddr_in6 *)(void *)ai->ai_addr)->sin6_addr;
        else
            continue;
        if (!address_allowed(c, ai->ai_family, a))
            goto done; /* every address must be allowed */
        if (!any && inet_ntop(ai->ai_family, a, text, sizeof(text)) != NULL)
            (void)snprintf(pin, pin_size, "%s:%s:%s%s%s", host, port,
                           ai->ai_family == AF_INET6 ? "[" : "", text,
                           ai->ai_family == AF_INET6 ? "]" : "");
        any = 1;
    }
    rc = any ? 0 : -1;
done:
    if (res != NULL)
        freeaddrinfo(res);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

/* ------------------------------------------------------------------------------------------- */
/* Validation                                                                                   */

static const char *const aggregators[] = {"sum", "mean", "min", "max"};
static const char *const conditions[] = {">", ">=", "<", "<="};

static int one_of(const char *s, const char *const *list, int n)
{
    int i;

    for (i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return i;
    return -1;
}

/* The window in seconds, or -1. Months and longer have no fixed length: refused. */
static int64_t window_seconds(const char *text)
{
    static const int64_t unit[] = {1, 60, 3600, 86400, 604800};
    trifle_granularity g;

    if (trifle_granularity_parse(&g, text, NULL) != 0 || g.unit < 0 || g.unit > 4)
        return -1;
    if (g.offset > MAX_WINDOW_S / unit[g.unit])
        return -1;
    return g.offset * unit[g.unit];
}

/* The checked settings of a monitor, built from @p in; NULL after answering (srv_crud.build:
 * called before the store is locked, as the URL check may resolve a host name). */
static cJSON *settings_of(srv_request *r, const cJSON *old, const cJSON *in)
{
    const srv_config *c = srv_request_server(r)->cfg;
    const char *name, *key, *path, *agg, *window, *gran, *cond, *url, *why;
    const cJSON *v;
    double threshold;
    double interval = 60;
    int enabled = 1;
    char pin[300];
    cJSON *out;

    (void)old; /* a PUT gives every setting */
    if (srv_store_text(r, in, "key", "key", 1000, 1, &key) < 0 ||
        srv_store_text(r, in, "name", "name", 200, 0, &name) < 0 ||
        srv_store_text(r, in, "value_path", "value_path", 200, 1, &path) < 0 ||
        srv_store_text(r, in, "aggregator", "aggregator", 10, 1, &agg) < 0 ||
        srv_store_text(r, in, "window", "window", 31, 1, &window) < 0 ||
        srv_store_text(r, in, "granularity", "granularity", 31, 1, &gran) < 0 ||
        srv_store_text(r, in, "condition", "condition", 2, 1, &cond) < 0 ||
        srv_store_text(r, in, "webhook_url", "webhook_url", 2000, 1, &url) < 0)
        return NULL;
    if (name == NULL)
        name = key;
    if (strchr(path, '*') != NULL) {
        srv_store_invalid(r, "value_path", "must not contain *");
        return NULL;
    }
    if (one_of(agg, aggregators, 4) < 0) {
        srv_store_invalid(r, "aggregator", "must be sum, mean, min or max");
        return NULL;
    }
    if (window_seconds(window) <= 0) {
        srv_store_invalid(r, "window",
                          "must be a duration such as 15m (s, m, h, d or w; at most 400 days)");
        return NULL;
    }
    if (!srv_source_has_granularity(srv_request_source(r), gran)) {
        srv_store_invalid(r, "granularity", "is not one of the source's granularities");
        return NULL;
    }
    if (one_of(cond, conditions, 4) < 0) {
        srv_store_invalid(r, "condition", "must be >, >=, < or <=");
        return NULL;
    }
    v = cJSON_GetObjectItemCaseSensitive(in, "threshold");
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        srv_store_invalid(r, "threshold", "must be a number");
        return NULL;
    }
    threshold = v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(in, "interval_s");
    if (v != NULL && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 ||
            v->valuedouble > 86400) {
            srv_store_invalid(r, "interval_s", "must be a whole number of seconds, 1 to 86400");
            return NULL;
        }
        interval = v->valuedouble;
    }
    v = cJSON_GetObjectItemCaseSensitive(in, "enabled");
    if (v != NULL && !cJSON_IsNull(v)) {
        if (!cJSON_IsBool(v)) {
            srv_store_invalid(r, "enabled", "must be true or false");
            return NULL;
        }
        enabled = cJSON_IsTrue(v);
    }
    if (check_url(c, url, pin, sizeof(pin), &why) != 0) {
        srv_store_invalid(r, "webhook_url", why);
        return NULL;
    }
    if ((out = cJSON_CreateObject()) == NULL || !cJSON_AddStringToObject(out, "name", name) ||
        !cJSON_AddStringToObject(out, "key", key) ||
        !cJSON_AddStringToObject(out, "value_path", path) ||
        !cJSON_AddStringToObject(out, "aggregator", agg) ||
        !cJSON_AddStringToObject(out, "window", window) ||
        !cJSON_AddStringToObject(out, "granularity", gran) ||
        !cJSON_AddStringToObject(out, "condition", cond) ||
        !cJSON_AddNumberToObject(out, "threshold", threshold) ||
        !cJSON_AddNumberToObject(out, "interval_s", interval) ||
        !cJSON_AddBoolToObject(out, "enabled", enabled) ||
        !cJSON_AddStringToObject(out, "webhook_url", url)) {
        cJSON_Delete(out);
        srv_respond_detail(r, 500, "Internal server error");
        return NULL;
    }
    return out;
}

/* The members of a monitor that the thread maintains (copied over on PUT). */
static const char *const runtime_members[] = {"state",          "value",      "evaluated_at",
                                              "evaluated_unix", "history",    "outbox",
                                              "delivery",       "created_at", NULL};

/* ------------------------------------------------------------------------------------------- */
/* CRUD                                                                                         */

static void wake(struct srv_monitors *m)
{
    pthread_mutex_lock(&m->lock);
    m->wake = 1;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

/* A new monitor starts unknown; new settings are evaluated at the next tick. */
static void monitor_stamp(cJSON *doc, const cJSON *old)
{
    if (old != NULL) {
        cJSON_DeleteItemFromObject(doc, "evaluated_unix");
        (void)cJSON_AddNumberToObject(doc, "evaluated_unix", 0);
        return;
    }
    (void)cJSON_AddStringToObject(doc, "state", "unknown");
    (void)cJSON_AddNullToObject(doc, "value");
    (void)cJSON_AddNullToObject(doc, "evaluated_at");
    (void)cJSON_AddNumberToObject(doc, "evaluated_unix", 0);
    (void)cJSON_AddArrayToObject(doc, "history");
    (void)cJSON_AddArrayToObject(doc, "outbox");
}

static void monitors_changed(srv_server *s)
{
    wake(s->monitors);
}

static const srv_crud monitors_crud = {
    .kind = "monitors",
    .wrapper = "monitor",
    .check_unlocked = 1,
    .carried = runtime_members,
    .build = settings_of,
    .stamp = monitor_stamp,
    .changed = monitors_changed,
};

void srv_monitors_handle(srv_request *r, int item)
{
    srv_crud_handle(r, item, &srv_request_server(r)->monitors->stores, &monitors_crud);
}

/* ------------------------------------------------------------------------------------------- */
/* Evaluation                                                                                   */

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What the thread needs of a monitor, copied out of the store. */
typedef struct job {
    char id[64];
    char *key, *path, *gran, *updated_at;
    int aggregator, condition;
    int64_t window_s;
    double threshold;
} job;

static void job_free(job *j)
{
    free(j->key);
    free(j->path);
    free(j->gran);
    free(j->updated_at);
}

static const char *str_of(const cJSON *o, const char *name)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, name));

    return s != NULL ? s : "";
}

static double num_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItem(o, name);

    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* Whether monitor @p mon is due at @p now; if so, fill @p j. */
static int job_of(const cJSON *mon, int64_t now, job *j)
{
    int agg;

    if (!cJSON_IsTrue(cJSON_GetObjectItem(mon, "enabled")))
        return 0;
    if ((int64_t)num_of(mon, "evaluated_unix") + (int64_t)num_of(mon, "interval_s") > now)
        return 0;
    memset(j, 0, sizeof(*j));
    (void)snprintf(j->id, sizeof(j->id), "%s", str_of(mon, "id"));
    if (trifle_aggregator_parse(&agg, str_of(mon, "aggregator"), NULL) != 0)
        return 0;
    j->aggregator = agg;
    j->condition = one_of(str_of(mon, "condition"), conditions, 4);
    j->window_s = window_seconds(str_of(mon, "window"));
    j->threshold = num_of(mon, "threshold");
    j->key = strdup(str_of(mon, "key"));
    j->path = strdup(str_of(mon, "value_path"));
    j->gran = strdup(str_of(mon, "granularity"));
    j->updated_at = strdup(str_of(mon, "updated_at"));
    if (j->key == NULL || j->path == NULL || j->gran == NULL || j->updated_at == NULL ||
        j->condition < 0 || j->window_s <= 0) {
        job_free(j);
        return 0;
    }
    return 1;
}

/* Read and aggregate: 0 with *has (and *value), or a library status. */
static int measure(srv_source *src, const job *j, int64_t now, int *has, double *value,
                   trifle_error *e)
{
    trifle_series *series = NULL;
    double *vals = NULL;
    unsigned char *present = NULL;
    size_t n = 0;
    int rc;

    *has = 0;
    rc = trifle_values(src->t, &series, j->key, now - j->window_s, now, j->gran, 0, e);
    if (rc == 0)
        rc = trifle_series_aggregate(&vals, &present, &n, series, j->aggregator, j->path, 1, e);
    if (rc == 0 && n > 0 && present[0] && isfinite(vals[0])) {
        *has = 1;
        *value = vals[0];
    }
    trifle_mem_free(vals);
    trifle_mem_free(present);
    trifle_series_free(series);
    return rc;
}

static int condition_met(int condition, double v, double threshold)
{
    switch (condition) {
    case 0:
        return v > threshold;
    case 1:
        return v >= threshold;
    case 2:
        return v < threshold;
    default:
        return v <= threshold;
    }
}

/* `"value": <value>`, or null without one. */
static void add_value(cJSON *o, int has, double value)
{
    if (has)
        (void)cJSON_AddNumberToObject(o, "value", value);
    else
        (void)cJSON_AddNullToObject(o, "value");
}

/* The event of a change of state, as the webhook receives it. */
static cJSON *event_of(const cJSON *mon, const char *source, const char *state,
                       const char *previous, int has, double value, const char *at)
{
    static const char *const copied[] = {"id",         "name",   "key",         "value_path",
                                         "aggregator", "window", "granularity", "condition",
                                         "threshold",  NULL};
    cJSON *ev = cJSON_CreateObject(), *m;
    char eid[17];
    size_t i;

    if (ev == NULL)
        return NULL;
    srv_store_new_id(eid);
    (void)cJSON_AddStringToObject(ev, "event_id", eid);
    (void)cJSON_AddStringToObject(
        ev, "event", strcmp(state, "alert") == 0 ? "monitor.alert" : "monitor.recovered");
    (void)cJSON_AddStringToObject(ev, "state", state);
    (void)cJSON_AddStringToObject(ev, "previous_state", previous);
    add_value(ev, has, value);
    (void)cJSON_AddStringToObject(ev, "at", at);
    (void)cJSON_AddStringToObject(ev, "source", source);
    m = cJSON_AddObjectToObject(ev, "monitor");
    for (i = 0; m != NULL && copied[i] != NULL; i++) {
        cJSON *v = cJSON_GetObjectItem(mon, copied[i]);
        if (v != NULL)
            (void)cJSON_AddItemToObject(m, copied[i], cJSON_Duplicate(v, 1));
    }
    return ev;
}

static void set_member(cJSON *o, const char *name, cJSON *v)
{
    if (v == NULL)
        return;
    if (cJSON_GetObjectItem(o, name) != NULL)
        (void)cJSON_ReplaceItemInObject(o, name, v);
    else
        (void)cJSON_AddItemToObject(o, name, v);
}

static cJSON *array_member(cJSON *o, const char *name)
{
    cJSON *a = cJSON_GetObjectItem(o, name);

    if (!cJSON_IsArray(a)) {
        a = cJSON_CreateArray();
        set_member(o, name, a);
    }
    return a;
}

/* Write one evaluation back into the monitor (the store's lock held). Returns 1 when the state
 * changed. */
static int record(struct srv_monitors *m, cJSON *mon, const char *source, int64_t now, int ok,
                  int has, double value)
{
    const char *previous = str_of(mon, "state");
    const char *state;
    char at[40];
    cJSON *ev, *h, *history, *outbox;
    int was_alert = strcmp(previous, "alert") == 0, is_alert;

    srv_store_now(at, now);
    set_member(mon, "evaluated_unix", cJSON_CreateNumber((double)now));
    set_member(mon, "evaluated_at", cJSON_CreateString(at));
    set_member(mon, "value", has ? cJSON_CreateNumber(value) : cJSON_CreateNull());
    if (!ok) {
        set_member(mon, "error", cJSON_CreateString("evaluation failed (see the log)"));
        return 0;
    }
    cJSON_DeleteItemFromObject(mon, "error");
    is_alert = has && condition_met(one_of(str_of(mon, "condition"), conditions, 4), value,
                                    num_of(mon, "threshold"));
    state = is_alert ? "alert" : "ok";
    if (strcmp(previous, state) == 0)
        return 0;
    set_member(mon, "state", cJSON_CreateString(state));
    history = array_member(mon, "history");
    if (history != NULL && (h = cJSON_CreateObject()) != NULL) {
        (void)cJSON_AddStringToObject(h, "at", at);
        (void)cJSON_AddStringToObject(h, "state", state);
        add_value(h, has, value);
        (void)cJSON_AddItemToArray(history, h);
        while (cJSON_GetArraySize(history) > HISTORY_MAX)
            cJSON_DeleteItemFromArray(history, 0);
    }
    if (!is_alert && !was_alert)
        return 1; /* unknown → ok is no change a receiver needs to hear about */
    if (is_alert)
        atomic_fetch_add(&m->alerts, 1);
    else
        atomic_fetch_add(&m->recoveries, 1);
    outbox = array_member(mon, "outbox");
    if (outbox != NULL &&
        (ev = event_of(mon, source, state, was_alert ? "alert" : "ok", has, value, at)) != NULL) {
        cJSON *entry = cJSON_CreateObject();
        if (entry == NULL) {
            cJSON_Delete(ev);
            return 1;
        }
        (void)cJSON_AddItemToObject(entry, "event", ev);
        (void)cJSON_AddNumberToObject(entry, "attempts", 0);
        (void)cJSON_AddNumberToObject(entry, "next_ms", 0);
        (void)cJSON_AddItemToArray(outbox, entry);
        while (cJSON_GetArraySize(outbox) > OUTBOX_MAX) {
            srv_log(TRIFLE_LOG_ERROR, "monitor %s: outbox full: oldest event dropped",
                    str_of(mon, "id"));
            atomic_fetch_add(&m->dropped, 1);
            cJSON_DeleteItemFromArray(outbox, 0);
        }
    }
    return 1;
}

static void evaluate_source(struct srv_monitors *m, size_t si)
{
    srv_store *st = &m->stores.of[si];
    srv_source *src = &m->srv->sources[si];
    int64_t now = srv_now();
    job *jobs = NULL;
    size_t n = 0, i;
    int count, k;

    pthread_mutex_lock(&st->lock);
    count = cJSON_GetArraySize(st->items);
    if (count > 0 && (jobs = calloc((size_t)count, sizeof(*jobs))) != NULL)
        for (k = 0; k < count; k++)
            n += (size_t)job_of(cJSON_GetArrayItem(st->items, k), now, &jobs[n]);
    pthread_mutex_unlock(&st->lock);

    for (i = 0; i < n; i++) {
        trifle_error e = TRIFLE_ERROR_INIT;
        double value = 0;
        int has = 0, rc;
        cJSON *mon;
        now = srv_now();
        srv_thread_set_state(m->self, SRV_THREAD_BLOCKED);
        rc = measure(src, &jobs[i], now, &has, &value, &e);
        srv_thread_set_state(m->self, SRV_THREAD_RUNNING);
        atomic_fetch_add(&m->evaluations, 1);
        if (rc != 0) {
            atomic_fetch_add(&m->eval_errors, 1);
            srv_log(TRIFLE_LOG_ERROR, "monitor %s (source %s): %s: %s", jobs[i].id, src->cfg->id,
                    trifle_status_name(rc), e.message);
        }
        pthread_mutex_lock(&st->lock);
        mon = srv_store_find(st, jobs[i].id, strlen(jobs[i].id), NULL);
        /* skip a monitor that was changed or deleted meanwhile: its new settings come next */
        if (mon != NULL && strcmp(str_of(mon, "updated_at"), jobs[i].updated_at) == 0) {
            (void)record(m, mon, src->cfg->id, now, rc == 0, has, value);
            (void)srv_store_save_or_500(NULL, st, "monitors");
        }
        pthread_mutex_unlock(&st->lock);
        job_free(&jobs[i]);
    }
    free(jobs);
}

/* ------------------------------------------------------------------------------------------- */
/* Delivery                                                                                     */

static size_t discard(char *p, size_t size, size_t n, void *payload)
{
    (void)p;
    (void)payload;
    return size * n;
}

/* POST @p body to @p url. 0 on a 2xx answer, else -1 with a reason in @p why. */
static int post(const srv_config *c, const char *url, const char *body, const char *event,
                const char *event_id, char *why, size_t why_size)
{
    char pin[300], hdr_event[80], hdr_id[80], agent[80], errbuf[CURL_ERROR_SIZE];
    struct curl_slist *headers = NULL, *resolve = NULL;
    const char *reason;
    long status = 0;
    CURL *h;
    CURLcode cc;
    int rc = -1;

    if (check_url(c, url, pin, sizeof(pin), &reason) != 0) {
        (void)snprintf(why, why_size, "webhook_url: %s", reason);
        return -1;
    }
    if ((h = curl_easy_init()) == NULL) {
        (void)snprintf(why, why_size, "cannot create a curl handle");
        return -1;
    }
    (void)snprintf(hdr_event, sizeof(hdr_event), "X-Trifle-Event: %s", event);
    (void)snprintf(hdr_id, sizeof(hdr_id), "X-Trifle-Event-Id: %s", event_id);
    (void)snprintf(agent, sizeof(agent), "trifle-serve/%s", trifle_version());
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, hdr_event);
    headers = curl_slist_append(headers, hdr_id);
    headers = curl_slist_append(headers, "Expect:");
    if (pin[0] != '\0')
        resolve = curl_slist_append(NULL, pin);
    errbuf[0] = '\0';
    (void)curl_easy_setopt(h, CURLOPT_URL, url);
    (void)curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    (void)curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    (void)curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    (void)curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->webhook_timeout_ms);
    (void)curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->webhook_timeout_ms);
    (void)curl_easy_setopt(h, CURLOPT_USERAGENT, agent);
    (void)curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    (void)curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    (void)curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    (void)curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    (void)curl_easy_setopt(h, CURLOPT_PROXY, ""); /* never through an environment proxy */
    if (resolve != NULL)
        (void)curl_easy_setopt(h, CURLOPT_RESOLVE, resolve);
    if (headers == NULL || (pin[0] != '\0' && resolve == NULL)) {
        (void)snprintf(why, why_size, "out of memory");
    } else if ((cc = curl_easy_perform(h)) != CURLE_OK) {
        (void)snprintf(why, why_size, "%s", errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
    } else {
        (void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300)
            rc = 0;
        else
            (void)snprintf(why, why_size, "HTTP status %ld", status);
    }
    curl_slist_free_all(headers);
    curl_slist_free_all(resolve);
    curl_easy_cleanup(h);
    return rc;
}

typedef struct delivery {
    char id[64];       /* the monitor */
    char event_id[17]; /* the outbox head */
    char *url, *body, *event;
} delivery;

static void deliver_source(struct srv_monitors *m, size_t si)
{
    srv_store *st = &m->stores.of[si];
    const srv_config *c = m->srv->cfg;
    delivery *list = NULL;
    size_t n = 0, i;
    int count, k;
    int64_t now = wall_ms();

    pthread_mutex_lock(&st->lock);
    count = cJSON_GetArraySize(st->items);
    if (count > 0)
        list = calloc((size_t)count, sizeof(*list));
    for (k = 0; list != NULL && k < count; k++) {
        cJSON *mon = cJSON_GetArrayItem(st->items, k);
        cJSON *head = cJSON_GetArrayItem(cJSON_GetObjectItem(mon, "outbox"), 0);
        cJSON *ev = cJSON_GetObjectItem(head, "event");
        if (ev == NULL || num_of(head, "next_ms") > (double)now)
            continue;
        (void)snprintf(list[n].id, sizeof(list[n].id), "%s", str_of(mon, "id"));
        (void)snprintf(list[n].event_id, sizeof(list[n].event_id), "%s", str_of(ev, "event_id"));
        list[n].url = strdup(str_of(mon, "webhook_url"));
        list[n].event = strdup(str_of(ev, "event"));
        list[n].body = cJSON_PrintUnformatted(ev);
        n++;
    }
    pthread_mutex_unlock(&st->lock);

    for (i = 0; i < n; i++) {
        delivery *d = &list[i];
        char why[CURL_ERROR_SIZE + 64] = "out of memory";
        int rc = -1;
        cJSON *mon, *outbox, *head;
        if (d->url != NULL && d->body != NULL && d->event != NULL) {
            srv_thread_set_state(m->self, SRV_THREAD_BLOCKED);
            rc = post(c, d->url, d->body, d->event, d->event_id, why, sizeof(why));
            srv_thread_set_state(m->self, SRV_THREAD_RUNNING);
        }
        pthread_mutex_lock(&st->lock);
        mon = srv_store_find(st, d->id, strlen(d->id), NULL);
        outbox = cJSON_GetObjectItem(mon, "outbox");
        head = cJSON_GetArrayItem(outbox, 0);
        if (head != NULL &&
            strcmp(str_of(cJSON_GetObjectItem(head, "event"), "event_id"), d->event_id) == 0) {
            cJSON *status = cJSON_CreateObject();
            char at[40];
            double attempts = num_of(head, "attempts") + 1;
            srv_store_now(at, srv_now());
            if (rc == 0) {
                atomic_fetch_add(&m->delivered, 1);
                cJSON_DeleteItemFromArray(outbox, 0);
                (void)cJSON_AddStringToObject(status, "status", "ok");
            } else {
                atomic_fetch_add(&m->failed_attempts, 1);
                (void)cJSON_AddStringToObject(status, "status", "failing");
                (void)cJSON_AddStringToObject(status, "error", why);
                if (attempts > (double)c->webhook_retries) {
                    srv_log(TRIFLE_LOG_ERROR,
                            "monitor %s: webhook %s failed %.0f times (%s): event %s dropped",
                            d->id, d->url, attempts, why, d->event_id);
                    atomic_fetch_add(&m->dropped, 1);
                    cJSON_DeleteItemFromArray(outbox, 0);
                } else {
                    double delay = (double)c->webhook_backoff_ms * pow(2, attempts - 1);
                    srv_log(TRIFLE_LOG_WARN,
                            "monitor %s: webhook %s failed (%s): retry %.0f of %d in %.0f ms",
                            d->id, d->url, why, attempts, c->webhook_retries, delay);
                    set_member(head, "attempts", cJSON_CreateNumber(attempts));
                    set_member(head, "next_ms", cJSON_CreateNumber((double)wall_ms() + delay));
                }
            }
            (void)cJSON_AddStringToObject(status, "at", at);
            set_member(mon, "delivery", status);
            (void)srv_store_save_or_500(NULL, st, "monitors");
        }
        pthread_mutex_unlock(&st->lock);
        free(d->url);
        free(d->event);
        cJSON_free(d->body);
    }
    free(list);
}

/* The number of monitors whose last delivery failed (for /stats). */
static int count_failing(struct srv_monitors *m, int64_t *alerting, int64_t *total)
{
    size_t i;
    int failing = 0;

    *alerting = *total = 0;
    for (i = 0; i < m->stores.n; i++) {
        cJSON *mon;
        pthread_mutex_lock(&m->stores.of[i].lock);
        cJSON_ArrayForEach (mon, m->stores.of[i].items) {
            (*total)++;
            if (strcmp(str_of(mon, "state"), "alert") == 0)
                (*alerting)++;
            if (strcmp(str_of(cJSON_GetObjectItem(mon, "delivery"), "status"), "failing") == 0)
                failing++;
        }
        pthread_mutex_unlock(&m->stores.of[i].lock);
    }
    return failing;
}

static void *run(void *payload)
{
    struct srv_monitors *m = payload;
    size_t i;

    m->self = srv_thread_register("monitors", SRV_THREAD_RUNNING, NULL, NULL);
    pthread_mutex_lock(&m->lock);
    while (!m->stop) {
        struct timespec ts;
        int64_t until;
        pthread_mutex_unlock(&m->lock);
        for (i = 0; i < m->stores.n; i++) {
            evaluate_source(m, i);
            deliver_source(m, i);
        }
        srv_thread_set_state(m->self, SRV_THREAD_IDLE);
        clock_gettime(CLOCK_REALTIME, &ts);
        until = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + m->srv->cfg->monitors_tick_ms;
        ts.tv_sec = (time_t)(until / 1000);
        ts.tv_nsec = (long)(until % 1000) * 1000000L;
        pthread_mutex_lock(&m->lock);
        while (!m->stop && !m->wake)
            if (pthread_cond_timedwait(&m->cond, &m->lock, &ts) != 0)
                break;
        m->wake = 0;
        srv_thread_set_state(m->self, SRV_THREAD_RUNNING);
    }
    pthread_mutex_unlock(&m->lock);
    srv_thread_retire(m->self);
    return NULL;
}

/* ------------------------------------------------------------------------------------------- */
/* Start, stop, /stats                                                                          */

int srv_monitors_provider(trifle_simple_writer *w, trifle_error *err, void *payload)
{
    struct srv_monitors *m = payload;
    int64_t alerting, total;
    int failing = count_failing(m, &alerting, &total), rc = 0;

    rc |= trifle_simple_writer_int(w, "count", total);
    rc |= trifle_simple_writer_int(w, "alerting", alerting);
    rc |= trifle_simple_writer_int(w, "evaluations", (int64_t)atomic_load(&m->evaluations));
    rc |= trifle_simple_writer_int(w, "evaluation_errors", (int64_t)atomic_load(&m->eval_errors));
    rc |= trifle_simple_writer_int(w, "alerts", (int64_t)atomic_load(&m->alerts));
    rc |= trifle_simple_writer_int(w, "recoveries", (int64_t)atomic_load(&m->recoveries));
    rc |= trifle_simple_writer_int(w, "webhook.delivered", (int64_t)atomic_load(&m->delivered));
    rc |= trifle_simple_writer_int(w, "webhook.failed_attempts",
                                   (int64_t)atomic_load(&m->failed_attempts));
    rc |= trifle_simple_writer_int(w, "webhook.dropped", (int64_t)atomic_load(&m->dropped));
    rc |= trifle_simple_writer_int(w, "webhook.failing", failing);
    return rc != 0 ? srv_error(err, TRIFLE_ENOMEM, "cannot render the monitor figures") : 0;
}

int srv_monitors_start(srv_server *s, trifle_error *err)
{
    struct srv_monitors *m = calloc(1, sizeof(*m));
    int rc;

    if (m == NULL)
        return srv_error(err, TRIFLE_ENOMEM, "out of memory");
    m->srv = s;
    s->monitors = m;
    if (pthread_mutex_init(&m->lock, NULL) != 0 || pthread_cond_init(&m->cond, NULL) != 0)
        return srv_error(err, TRIFLE_ERROR, "cannot create a mutex");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return srv_error(err, TRIFLE_ERROR, "cannot initialise libcurl");
    m->curl_ready = 1;
    if ((rc = srv_stores_open(&m->stores, s, "monitors", err)) != 0)
        return rc;
    if (s->stats_enabled &&
        (rc = trifle_simple_register("monitors", srv_monitors_provider, m, err)) != 0)
        return rc;
    if (pthread_create(&m->thread, NULL, run, m) != 0)
        return srv_error(err, TRIFLE_ERROR, "cannot start the monitors thread");
    m->started = 1;
    return 0;
}

void srv_monitors_stop(srv_server *s)
{
    struct srv_monitors *m = s->monitors;

    if (m == NULL)
        return;
    if (m->started) {
        pthread_mutex_lock(&m->lock);
        m->stop = 1;
        pthread_cond_signal(&m->cond);
        pthread_mutex_unlock(&m->lock);
        pthread_join(m->thread, NULL);
    }
    if (s->stats_enabled)
        (void)trifle_simple_unregister("monitors");
    srv_stores_close(&m->stores);
    if (m->curl_ready)
        curl_global_cleanup();
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->cond);
    free(m);
    s->monitors = NULL;
}
