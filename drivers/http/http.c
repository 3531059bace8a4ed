/*
 * trifle_http.so: the HTTP driver. It sends whole write calls to a Trifle HTTP API (`trifle
 * serve`, or the Trifle App) and reads buckets back from it; the server does the bucketing and
 * keeps the system key (docs/http-driver.md).
 *
 * URL. `http[s]://host[:port][/prefix]?token=...&source=...`; the token may come from the
 * environment variable TRIFLE_TOKEN instead (it then stays out of process listings). Options:
 * token, source, ca (a CA bundle file for https), timeout_ms, connect_timeout_ms, attempts,
 * retry_after_max_s, batch (auto|true|false), batch_size, gzip (true|false).
 *
 * ABI. The driver declares TRIFLE_CAP_CALLS (ABI 1.2): every track/assert arrives through
 * calls() as made (key, instant, values, operation, untracked) and is sent as it is. inc() and
 * set(), which would need the client to bucket, answer TRIFLE_ENOTSUP. get() maps the buckets of
 * one (key, granularity) to one `GET /api/v1/metrics` and emits the values per bucket index. With
 * TRIFLE_CAP_QUERY (ABI 1.4) query() posts a whole query to `POST /api/v1/metrics/query`, so the
 * server's engine, configuration and stored transponders answer it. No
 * ping, no setup DDL, no drop, no journal marks: the capability bits say so.
 *
 * Writes. One `POST /api/v1/metrics` per call, or, when `GET /api/v1/source` lists the `batch`
 * extension, one POST of a JSON array per batch_size calls (the server applies an array all or
 * nothing). Bodies are gzip-compressed (zlib, which libcurl links anyway). Every request carries
 * `Authorization: Bearer`, `X-Trifle-Source-Id` when a source is given, and an `Idempotency-Key`:
 * 128 random bits in hex, new per request and kept across the retries of that request.
 *
 * Retries. Nothing sent (connection refused, TLS refused): TRIFLE_ECONN, nothing applied. 429 and
 * 503 wait for Retry-After (at most retry_after_max_s) and resend: the server refused the request,
 * so resending cannot double count. A request that left but got no reply (a timeout, a dropped
 * connection) is resent with the same key only when the server lists the `idempotency` extension
 * (it answers a repeat with the original status without applying it again); otherwise the call
 * fails with outcome_unknown = 1 and is never resent. Reads are resent freely.
 *
 * Threads: a connection (one CURL easy handle) is used by one thread at a time.
 */
#include <curl/curl.h>
#include <zlib.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <trifle/driver.h>

#include "drv_support.h"

#define HT_NAME "http"
#define HT_VERSION "1.0.0"
#define HT_DEFAULT_TIMEOUT_MS 10000
#define HT_DEFAULT_CONNECT_MS 5000
#define HT_DEFAULT_ATTEMPTS 4
#define HT_DEFAULT_RETRY_AFTER_MAX_S 30
#define HT_DEFAULT_BATCH_SIZE 500
#define HT_MAX_DEPTH 64     /* nesting of a values object read back */
#define HT_BODY_SNIPPET 200 /* bytes of a server's error body quoted in a message */
#define HT_KEY_HEX 32       /* Idempotency-Key: 128 bits in hex */

enum { BATCH_AUTO = -1, BATCH_OFF = 0, BATCH_ON = 1 };

struct trifle_conn {
    const trifle_host_api *host;
    CURL *curl;
    struct curl_slist *headers; /* Authorization, X-Trifle-Source-Id, Accept */
    char *base;                 /* "http://host:port/prefix", no trailing slash */
    char *cainfo;               /* CA bundle file, or NULL (the system's) */
    long timeout_ms, connect_timeout_ms, retry_after_max_s;
    int attempts;   /* tries per request, first one included */
    int batch_mode; /* BATCH_* */
    int gzip;
    size_t batch_size;
    int probed; /* GET /api/v1/source answered */
    int ext_batch, ext_idem;
    int oom;
    drv_buf req;         /* request body (JSON) */
    drv_buf gz;          /* compressed body */
    drv_buf resp;        /* response body */
    drv_buf path;        /* JSON reader's dotted path */
    long retry_after;    /* seconds from the last response's Retry-After, -1 none */
    curl_off_t uploaded; /* body bytes sent by the current exchange (ht_on_progress) */
    char errbuf[CURL_ERROR_SIZE];
};

/* ---------------------------------------------------------------------------------------------
 * Small helpers
 */

/* A decimal option in [lo, hi]; 0 or -1. */
static int ht_long(const char *v, long lo, long hi, long *out)
{
    char *end;
    long x;

    if (v[0] < '0' || v[0] > '9')
        return -1;
    errno = 0;
    x = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

static int ht_bool(const char *v, int *out)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        *out = 1;
        return 0;
    }
    if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
        *out = 0;
        return 0;
    }
    return -1;
}

/* 128 random bits as 32 lower-case hex digits and a NUL. */
static int ht_new_key(char out[HT_KEY_HEX + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[HT_KEY_HEX / 2];
    size_t got = 0, i;

    while (got < sizeof(raw)) {
        ssize_t r = getrandom(raw + got, sizeof(raw) - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    for (i = 0; i < sizeof(raw); i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[HT_KEY_HEX] = '\0';
    return 0;
}

static void ht_sleep_ms(long ms)
{
    struct timespec ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The response body as a message snippet: printable ASCII, cut at HT_BODY_SNIPPET bytes. */
static const char *ht_snippet(trifle_conn *c, char *out, size_t size)
{
    size_t i, n = c->resp.len < size - 1 ? c->resp.len : size - 1;

    for (i = 0; i < n; i++) {
        char ch = c->resp.p[i];
        if (ch < 0x20 || ch >= 0x7f)
            ch = ' ';
        out[i] = ch;
    }
    out[n] = '\0';
    return out;
}

/* ---------------------------------------------------------------------------------------------
 * Transport
 */

static size_t ht_on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    trifle_conn *c = ud;
    size_t n = size * nmemb;

    drv_buf_put(&c->resp, data, n);
    return c->oom ? 0 : n;
}

/* Retry-After: delay-seconds or an HTTP-date (RFC 9110 §10.2.3). */
static size_t ht_on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    trifle_conn *c = ud;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    char value[128];
    size_t i, len;

    if (n <= sizeof(name) - 1 || strncasecmp(data, name, sizeof(name) - 1) != 0)
        return n;
    for (i = sizeof(name) - 1; i < n && (data[i] == ' ' || data[i] == '\t'); i++) {
    }
    for (len = 0;
         i + len < n && data[i + len] != '\r' && data[i + len] != '\n' && len < sizeof(value) - 1;
         len++)
        value[len] = data[i + len];
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    value[len] = '\0';
    if (len > 0 && value[0] >= '0' && value[0] <= '9') {
        long s;
        c->retry_after = ht_long(value, 0, LONG_MAX / 1000, &s) == 0 ? s : -1;
    } else if (len > 0) {
        time_t when = curl_getdate(value, NULL);
        time_t now = time(NULL);
        if (when != (time_t)-1)
            c->retry_after = when > now ? (long)(when - now) : 0;
    }
    return n;
}

/* Upload progress: the largest count of body bytes sent during one exchange. libcurl may resend a
 * request on a fresh connection by itself when a reused one dies before the reply (and then
 * reports the fresh connection's error), so the count is kept across that. */
static int ht_on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                          curl_off_t ulnow)
{
    trifle_conn *c = ud;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    if (ulnow > c->uploaded)
        c->uploaded = ulnow;
    return 0;
}

/* What one exchange came to. */
typedef struct ht_reply {
    long status; /* HTTP status, 0 when no response arrived */
    int sent;    /* the request may have reached the server (so a lost reply is "unknown") */
    CURLcode cc;
} ht_reply;

/* One HTTP exchange. @p body NULL: GET. @p idem: the Idempotency-Key, or NULL. The response body
 * lands in c->resp, Retry-After in c->retry_after. Returns 0, or TRIFLE_ENOMEM. */
static int ht_exchange(trifle_conn *c, const char *url, const char *body, size_t n, int gz,
                       const char *idem, ht_reply *rp)
{
    struct curl_slist *h = NULL, *extra = NULL, *p;
    char line[64 + HT_KEY_HEX];
    curl_off_t pre = 0;
    CURLcode cc;

    memset(rp, 0, sizeof(*rp));
    c->resp.len = 0;
    c->retry_after = -1;
    c->errbuf[0] = '\0';
    /* the per-request headers go in front of the connection's */
    if (body != NULL) {
        if ((p = curl_slist_append(extra, "Content-Type: application/json")) == NULL)
            goto oom;
        extra = p;
        if (gz) {
            if ((p = curl_slist_append(extra, "Content-Encoding: gzip")) == NULL)
                goto oom;
            extra = p;
        }
    }
    if (idem != NULL) {
        (void)snprintf(line, sizeof(line), "Idempotency-Key: %s", idem);
        if ((p = curl_slist_append(extra, line)) == NULL)
            goto oom;
        extra = p;
    }
    for (h = c->headers; h != NULL; h = h->next) {
        if ((p = curl_slist_append(extra, h->data)) == NULL)
            goto oom;
        extra = p;
    }
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, extra);
    c->uploaded = 0;
    if (body != NULL) {
        /* A server that does not deduplicate gets every write on a fresh connection: libcurl
         * resends a request by itself when a reused connection dies before the reply, which
         * could apply it twice. With the idempotency extension the resend is harmless. */
        curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, c->ext_idem ? 0L : 1L);
        curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
    } else {
        curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, 0L);
        curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
    }
    cc = curl_easy_perform(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(extra);
    if (c->oom)
        return TRIFLE_ENOMEM;
    rp->cc = cc;
    if (cc == CURLE_OK) {
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &rp->status);
        rp->sent = 1;
        return 0;
    }
    /* PRETRANSFER is reached once the connection (and TLS) is up and the request starts to go
     * out: from there on the server may have it */
    (void)curl_easy_getinfo(c->curl, CURLINFO_PRETRANSFER_TIME_T, &pre);
    rp->sent = c->uploaded > 0 ||
               (pre > 0 && cc != CURLE_COULDNT_CONNECT && cc != CURLE_COULDNT_RESOLVE_HOST &&
                cc != CURLE_SSL_CONNECT_ERROR && cc != CURLE_PEER_FAILED_VERIFICATION);
    return 0;
oom:
    curl_slist_free_all(extra);
    return TRIFLE_ENOMEM;
}

/* The error of a failed transfer (no HTTP status). */
static int ht_transport_error(trifle_conn *c, const ht_reply *rp, const char *url,
                              trifle_error *err)
{
    const char *why = c->errbuf[0] != '\0' ? c->errbuf : curl_easy_strerror(rp->cc);

    switch (rp->cc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
        c->host->error_set(err, TRIFLE_ECONN, (int)rp->cc,
                           "http: TLS with %s failed: %s (a private CA goes in the ca= option)",
                           url, why);
        return TRIFLE_ECONN;
    case CURLE_OPERATION_TIMEDOUT:
        c->host->error_set(err, TRIFLE_ETIMEDOUT, (int)rp->cc, "http: %s: %s", url, why);
        return TRIFLE_ETIMEDOUT;
    default:
        c->host->error_set(err, TRIFLE_ECONN, (int)rp->cc, "http: %s: %s", url, why);
        return TRIFLE_ECONN;
    }
}

/* The error of an HTTP status that is not a success. */
static int ht_status_error(trifle_conn *c, long status, const char *what, trifle_error *err)
{
    char snip[HT_BODY_SNIPPET + 1];
    int code;

    (void)ht_snippet(c, snip, sizeof(snip));
    switch (status) {
    case 401:
        code = TRIFLE_EAUTH;
        break;
    case 403:
        code = TRIFLE_EAUTH;
        break;
    case 400:
    case 404:
    case 413:
    case 422:
        code = TRIFLE_EINVAL;
        break;
    case 429:
    case 503:
        code = TRIFLE_EBUSY;
        break;
    default:
        code = TRIFLE_EDRIVER;
    }
    if (status == 401)
        c->host->error_set(err, code, (int)status,
                           "http: %s: 401 unauthorized (check the token): %s", what, snip);
    else if (status == 403)
        c->host->error_set(err, code, (int)status,
                           "http: %s: 403 forbidden (the token lacks this grant for the source, "
                           "or the source is read-only): %s",
                           what, snip);
    else if (status == 413)
        c->host->error_set(err, code, (int)status,
                           "http: %s: 413 payload too large (the server's body limit): %s", what,
                           snip);
    else
        c->host->error_set(err, code, (int)status, "http: %s: status %ld: %s", what, status, snip);
    return code;
}

/* How long to wait before try @p attempt (1-based) of a request; -1 when Retry-After asks for more
 * than retry_after_max_s. */
static long ht_backoff_ms(const trifle_conn *c, int attempt)
{
    long ms = 100L << (attempt < 6 ? attempt - 1 : 5);

    if (c->retry_after >= 0) {
        if (c->retry_after > c->retry_after_max_s)
            return -1;
        ms = c->retry_after * 1000;
    }
    return ms;
}

/* ---------------------------------------------------------------------------------------------
 * The server's extensions: GET /api/v1/source, `extensions` (trifle serve). The Trifle App lists
 * none: no batches, no idempotency.
 */

static int ht_url(trifle_conn *c, drv_buf *out, const char *path)
{
    out->len = 0;
    drv_buf_puts(out, c->base);
    drv_buf_puts(out, path);
    drv_buf_zero(out);
    return c->oom ? TRIFLE_ENOMEM : 0;
}

/* The first n-byte needle in hay[0..hn), or NULL (memmem is a GNU extension). */
static const char *ht_find(const char *hay, size_t hn, const char *needle, size_t n)
{
    size_t i;

    for (i = 0; n <= hn && i <= hn - n; i++)
        if (memcmp(hay + i, needle, n) == 0)
            return hay + i;
    return NULL;
}

/* Whether the JSON text names @p ext inside its `"extensions":[...]` array. A plain search over
 * the array text: the names are fixed words without quotes or escapes. */
static int ht_has_extension(const char *text, size_t n, const char *ext)
{
    static const char key[] = "\"extensions\"";
    const char *p = text, *end = text + n, *close;
    char want[64];
    size_t wl;

    for (;;) {
        size_t left = (size_t)(end - p);
        const char *hit = left >= sizeof(key) - 1 ? ht_find(p, left, key, sizeof(key) - 1) : NULL;
        if (hit == NULL)
            return 0;
        p = hit + sizeof(key) - 1;
        while (p < end && (*p == ' ' || *p == ':' || *p == '\t' || *p == '\n' || *p == '\r'))
            p++;
        if (p < end && *p == '[')
            break;
    }
    if ((close = memchr(p, ']', (size_t)(end - p))) == NULL)
        return 0;
    wl = (size_t)snprintf(want, sizeof(want), "\"%s\"", ext);
    return ht_find(p, (size_t)(close - p), want, wl) != NULL;
}

/* Send a read (a GET, or a POST of body[0..n)) to url, again after a backoff while the request
 * was sent but no reply came, or the reply was 429 or 503, for c->attempts tries in all. Returns
 * 0 with the last reply in *rp (its status is not 0: a read that got no reply fails with
 * ht_transport_error()), or an error; what names the request in the messages. */
static int ht_read(trifle_conn *c, const char *url, const char *body, size_t n, const char *what,
                   ht_reply *rp, trifle_error *err)
{
    char why[96];
    long wait;
    int rc, attempt;

    for (attempt = 1;; attempt++) {
        if ((rc = ht_exchange(c, url, body, n, 0, NULL, rp)) != 0)
            return rc;
        if (rp->status == 0 && (!rp->sent || attempt >= c->attempts))
            return ht_transport_error(c, rp, url, err);
        if (attempt >= c->attempts || !(rp->status == 0 || rp->status == 429 || rp->status == 503))
            return 0;
        if ((wait = ht_backoff_ms(c, attempt)) < 0) {
            (void)snprintf(why, sizeof(why), "%s (Retry-After too long)", what);
            return ht_status_error(c, rp->status, why, err);
        }
        ht_sleep_ms(wait);
    }
}

static int ht_probe(trifle_conn *c, trifle_error *err)
{
    drv_buf url;
    ht_reply rp;
    int rc;

    if (c->probed)
        return 0;
    drv_buf_init(&url, c->host, &c->oom);
    if ((rc = ht_url(c, &url, "/api/v1/source")) != 0)
        goto done;
    if ((rc = ht_read(c, url.p, NULL, 0, "GET /api/v1/source", &rp, err)) != 0)
        goto done;
    if (rp.status == 404) {
        c->resp.len = 0; /* a server without /source: no extensions */
    } else if (rp.status / 100 != 2) {
        rc = ht_status_error(c, rp.status, "GET /api/v1/source", err);
        goto done;
    }
    c->ext_batch = ht_has_extension(c->resp.p, c->resp.len, "batch");
    c->ext_idem = ht_has_extension(c->resp.p, c->resp.len, "idempotency");
    c->probed = 1;
    rc = 0;
done:
    if (rc == TRIFLE_ENOMEM)
        c->host->error_set(err, TRIFLE_ENOMEM, 0, "out of memory");
    drv_buf_free(&url);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Open and close
 */

static void ht_close(trifle_conn *c)
{
    const trifle_host_api *host;

    if (c == NULL)
        return;
    host = c->host;
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers);
    host->free(c->base);
    host->free(c->cainfo);
    drv_buf_free(&c->req);
    drv_buf_free(&c->gz);
    drv_buf_free(&c->resp);
    drv_buf_free(&c->path);
    host->free(c);
}

static int ht_header(trifle_conn *c, const char *name, const char *value)
{
    drv_buf line;
    struct curl_slist *p;

    drv_buf_init(&line, c->host, &c->oom);
    drv_buf_puts(&line, name);
    drv_buf_puts(&line, value);
    drv_buf_zero(&line);
    p = c->oom ? NULL : curl_slist_append(c->headers, line.p);
    drv_buf_free(&line);
    if (p == NULL)
        return -1;
    c->headers = p;
    return 0;
}

/* A header value must not break the header: no control characters. */
static int ht_header_value_ok(const char *v)
{
    for (; *v != '\0'; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f)
            return 0;
    return 1;
}

static int ht_open(trifle_conn **out, const trifle_host_api *host, const char *url,
                   const char *const *opts, trifle_error *err)
{
    trifle_conn *c;
    const char *token = NULL, *source = NULL, *rest;
    size_t i, blen;
    long v;
    int b;

    *out = NULL;
    if ((c = drv_calloc(host, sizeof(*c), err)) == NULL)
        return TRIFLE_ENOMEM;
    c->host = host;
    *out = c;
    drv_buf_init(&c->req, host, &c->oom);
    drv_buf_init(&c->gz, host, &c->oom);
    drv_buf_init(&c->resp, host, &c->oom);
    drv_buf_init(&c->path, host, &c->oom);
    c->timeout_ms = HT_DEFAULT_TIMEOUT_MS;
    c->connect_timeout_ms = HT_DEFAULT_CONNECT_MS;
    c->retry_after_max_s = HT_DEFAULT_RETRY_AFTER_MAX_S;
    c->attempts = HT_DEFAULT_ATTEMPTS;
    c->batch_mode = BATCH_AUTO;
    c->batch_size = HT_DEFAULT_BATCH_SIZE;
    c->gzip = 1;

    if (strncmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        rest = url + 8;
    else {
        host->error_set(err, TRIFLE_ECONFIG, 0, "http: URL must start with http:// or https://");
        return TRIFLE_ECONFIG;
    }
    if (rest[0] == '\0' || rest[0] == '/' || strchr(rest, '@') != NULL || strchr(rest, '#')) {
        host->error_set(err, TRIFLE_ECONFIG, 0,
                        "http: URL needs a host (and no user information or fragment: the token "
                        "goes in token= or TRIFLE_TOKEN)");
        return TRIFLE_ECONFIG;
    }
    for (i = 0; opts[i] != NULL; i += 2) {
        const char *name = opts[i], *value = opts[i + 1];

        if (strcmp(name, "trifle.joined") == 0) {
            if (drv_opt_mode(value) != TRIFLE_ID_FULL) {
                host->error_set(err, TRIFLE_ECONFIG, 0,
                                "http: only the full identifier mode (the server stores)");
                return TRIFLE_ECONFIG;
            }
        } else if (drv_opt_is_core(name)) {
            continue;
        } else if (strcmp(name, "token") == 0) {
            token = value;
        } else if (strcmp(name, "source") == 0) {
            source = value;
        } else if (strcmp(name, "ca") == 0) {
            host->free(c->cainfo);
            if ((c->cainfo = drv_strdup(host, value)) == NULL)
                goto oom;
        } else if (strcmp(name, "timeout_ms") == 0) {
            if (ht_long(value, 1, 86400000, &c->timeout_ms) != 0)
                goto bad;
        } else if (strcmp(name, "connect_timeout_ms") == 0) {
            if (ht_long(value, 1, 86400000, &c->connect_timeout_ms) != 0)
                goto bad;
        } else if (strcmp(name, "attempts") == 0) {
            if (ht_long(value, 1, 100, &v) != 0)
                goto bad;
            c->attempts = (int)v;
        } else if (strcmp(name, "retry_after_max_s") == 0) {
            if (ht_long(value, 0, 86400, &c->retry_after_max_s) != 0)
                goto bad;
        } else if (strcmp(name, "batch") == 0) {
            if (strcmp(value, "auto") == 0)
                c->batch_mode = BATCH_AUTO;
            else if (ht_bool(value, &b) == 0)
                c->batch_mode = b ? BATCH_ON : BATCH_OFF;
            else
                goto bad;
        } else if (strcmp(name, "batch_size") == 0) {
            if (ht_long(value, 1, 100000, &v) != 0)
                goto bad;
            c->batch_size = (size_t)v;
        } else if (strcmp(name, "gzip") == 0) {
            if (ht_bool(value, &c->gzip) != 0)
                goto bad;
        } else {
            host->error_set(err, TRIFLE_ECONFIG, 0,
                            "http: unknown option %s (known: token, source, ca, timeout_ms, "
                            "connect_timeout_ms, attempts, retry_after_max_s, batch, batch_size, "
                            "gzip)",
                            name);
            return TRIFLE_ECONFIG;
        }
        continue;
    bad:
        host->error_set(err, TRIFLE_ECONFIG, 0, "http: invalid value for option %s: %s", name,
                        value);
        return TRIFLE_ECONFIG;
    }
    if (token == NULL || token[0] == '\0')
        token = getenv("TRIFLE_TOKEN");
    if (token == NULL || token[0] == '\0') {
        host->error_set(err, TRIFLE_ECONFIG, 0,
                        "http: no token: give token= in the URL or set TRIFLE_TOKEN");
        return TRIFLE_ECONFIG;
    }
    if (!ht_header_value_ok(token) || (source != NULL && !ht_header_value_ok(source))) {
        host->error_set(err, TRIFLE_ECONFIG, 0, "http: token or source holds control characters");
        return TRIFLE_ECONFIG;
    }
    /* the base without a trailing slash, so paths append as "/api/v1/..." */
    blen = strlen(url);
    while (blen > 0 && url[blen - 1] == '/')
        blen--;
    if ((c->base = host->alloc(blen + 1)) == NULL)
        goto oom;
    memcpy(c->base, url, blen);
    c->base[blen] = '\0';
    if (ht_header(c, "Authorization: Bearer ", token) != 0 ||
        ht_header(c, "Accept: ", "application/json") != 0 ||
        (source != NULL && source[0] != '\0' && ht_header(c, "X-Trifle-Source-Id: ", source) != 0))
        goto oom;
    if ((c->curl = curl_easy_init()) == NULL)
        goto oom;
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, ht_on_body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, ht_on_header);
    curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, ht_on_progress);
    curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "trifle-c-http/" HT_VERSION);
    /* Expect: 100-continue would add a round trip to every larger POST */
    if (c->cainfo != NULL)
        curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->cainfo);
    return 0;
oom:
    host->error_set(err, TRIFLE_ENOMEM, 0, "out of memory");
    return TRIFLE_ENOMEM;
}

/* setup: nothing to create; it checks that the server answers and accepts the token. */
static int ht_setup(trifle_conn *c, trifle_error *err)
{
    c->probed = 0;
    return ht_probe(c, err);
}

static int ht_items(trifle_conn *c, const trifle_entry *items, size_t n, trifle_write_result *res,
                    trifle_error *err)
{
    (void)items;
    (void)n;
    (void)res;
    c->host->error_set(err, TRIFLE_ENOTSUP, 0,
                       "http: the server buckets writes; items are not taken (use calls)");
    return TRIFLE_ENOTSUP;
}

/* ---------------------------------------------------------------------------------------------
 * Writes
 */

/* The leaves [lo, hi) that share the first @p skip bytes of their paths, as one JSON object:
 * `a.b`, `a.c` → {"a":{"b":..,"c":..}}. Paths are sorted and unique, so the leaves under one
 * segment are consecutive. */
static void ht_put_object(drv_buf *b, const trifle_leaf *l, size_t lo, size_t hi, size_t skip)
{
    size_t i = lo;

    drv_buf_putc(b, '{');
    while (i < hi) {
        const char *seg = l[i].path + skip;
        size_t sl = strcspn(seg, "."), j = i + 1;

        if (i > lo)
            drv_buf_putc(b, ',');
        drv_buf_put_jstr(b, seg, sl);
        drv_buf_putc(b, ':');
        if (seg[sl] == '\0') {
            drv_buf_put_num(b, l[i].value);
            i++;
            continue;
        }
        while (j < hi && strncmp(l[j].path + skip, seg, sl) == 0 && l[j].path[skip + sl] == '.')
            j++;
        ht_put_object(b, l, i, j, skip + sl + 1);
        i = j;
    }
    drv_buf_putc(b, '}');
}

static void ht_put_call(trifle_conn *c, const trifle_call *call)
{
    char at[TU_TIME_LEN + 1];

    drv_buf_puts(&c->req, "{\"key\":");
    drv_buf_put_jstr(&c->req, call->key, strlen(call->key));
    drv_buf_puts(&c->req, ",\"at\":\"");
    if (tu_time_format(at, call->at) == 0)
        drv_buf_puts(&c->req, at);
    drv_buf_puts(&c->req, "\",\"values\":");
    ht_put_object(&c->req, call->leaves, 0, call->n_leaves, 0);
    drv_buf_puts(&c->req, call->op == TRIFLE_CALL_ASSERT ? ",\"operation\":\"assert\""
                                                         : ",\"operation\":\"track\"");
    if (call->flags & TRIFLE_CALL_UNTRACKED)
        drv_buf_puts(&c->req, ",\"untracked\":true");
    if (c->ext_idem && call->origin != NULL && call->seq != 0) {
        /* a journaled call names itself: a replay after a crash sends the same id */
        char id[96];
        (void)snprintf(id, sizeof(id), ",\"id\":\"%.64s:%" PRIu64 "\"", call->origin, call->seq);
        drv_buf_puts(&c->req, id);
    }
    drv_buf_putc(&c->req, '}');
}

static voidpf ht_zalloc(voidpf opaque, uInt items, uInt size)
{
    const trifle_host_api *host = opaque;

    if (size != 0 && items > SIZE_MAX / size)
        return Z_NULL;
    return host->alloc((size_t)items * size);
}

static void ht_zfree(voidpf opaque, voidpf p)
{
    ((const trifle_host_api *)opaque)->free(p);
}

/* c->req gzip-compressed into c->gz. 0 or TRIFLE_ENOMEM. */
static int ht_gzip(trifle_conn *c)
{
    z_stream z;
    uLong bound;
    int zr;

    if (c->req.len > UINT_MAX / 2)
        return TRIFLE_ENOMEM; /* zlib counts in uInt; batch_size keeps bodies far below */
    memset(&z, 0, sizeof(z));
    z.zalloc = ht_zalloc;
    z.zfree = ht_zfree;
    z.opaque = (voidpf)c->host;
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return TRIFLE_ENOMEM;
    bound = deflateBound(&z, (uLong)c->req.len);
    c->gz.len = 0;
    if (drv_buf_grow(&c->gz, (size_t)bound) != 0) {
        deflateEnd(&z);
        return TRIFLE_ENOMEM;
    }
    z.next_in = (Bytef *)c->req.p;
    z.avail_in = (uInt)c->req.len;
    z.next_out = (Bytef *)c->gz.p;
    z.avail_out = (uInt)bound;
    zr = deflate(&z, Z_FINISH);
    c->gz.len = (size_t)z.total_out;
    deflateEnd(&z);
    return zr == Z_STREAM_END ? 0 : TRIFLE_ENOMEM;
}

/* Send c->req as one write request, with retries (see the file comment). *unknown is set when the
 * request may have been applied but no answer says so. *too_large when the server answered 413. */
static int ht_send_write(trifle_conn *c, int *unknown, int *too_large, trifle_error *err)
{
    char key[HT_KEY_HEX + 1];
    const char *body;
    size_t n;
    drv_buf url;
    ht_reply rp;
    int rc, attempt, maybe = 0; /* maybe: a try left and got no answer */

    *unknown = 0;
    *too_large = 0;
    if (c->oom)
        return TRIFLE_ENOMEM;
    if (ht_new_key(key) != 0) {
        c->host->error_set(err, TRIFLE_ERROR, errno,
                           "http: no random bytes for an Idempotency-Key");
        return TRIFLE_ERROR;
    }
    if (c->gzip) {
        if (ht_gzip(c) != 0) {
            c->host->error_set(err, TRIFLE_ENOMEM, 0, "out of memory");
            return TRIFLE_ENOMEM;
        }
        body = c->gz.p;
        n = c->gz.len;
    } else {
        body = c->req.p;
        n = c->req.len;
    }
    drv_buf_init(&url, c->host, &c->oom);
    if ((rc = ht_url(c, &url, "/api/v1/metrics")) != 0)
        goto done;
    for (attempt = 1;; attempt++) {
        long wait;

        if ((rc = ht_exchange(c, url.p, body, n, c->gzip, key, &rp)) != 0)
            goto done;
        if (rp.status / 100 == 2) {
            rc = 0;
            goto done;
        }
        if (rp.status == 0) {
            if (rp.sent)
                maybe = 1;
            if (!maybe) { /* nothing ever left: nothing applied */
                rc = ht_transport_error(c, &rp, url.p, err);
                goto done;
            }
            /* an earlier try may have been applied: only a resend with its key can tell */
            if (!c->ext_idem || attempt >= c->attempts) {
                char why[CURL_ERROR_SIZE];
                (void)snprintf(why, sizeof(why), "%s",
                               c->errbuf[0] != '\0' ? c->errbuf : curl_easy_strerror(rp.cc));
                *unknown = 1;
                rc = rp.cc == CURLE_OPERATION_TIMEDOUT ? TRIFLE_ETIMEDOUT : TRIFLE_ECONN;
                c->host->error_set(
                    err, rc, (int)rp.cc,
                    "http: outcome unknown: POST %s was sent but no reply came (%s); %s", url.p,
                    why,
                    c->ext_idem ? "every retry with its Idempotency-Key failed too"
                                : "not resent, as the server does not deduplicate "
                                  "(no idempotency extension)");
                goto done;
            }
        } else if (rp.status == 429 || rp.status == 503 || (rp.status == 409 && c->ext_idem)) {
            /* refused (or, 409, the same key still being applied): resending is safe */
            if (attempt >= c->attempts) {
                rc = ht_status_error(c, rp.status, "POST /api/v1/metrics", err);
                goto done;
            }
        } else if (rp.status / 100 == 5 && c->ext_idem && attempt < c->attempts) {
            /* a deduplicating server: a resend with the same key is safe */
        } else {
            if (rp.status == 413)
                *too_large = 1;
            if (rp.status / 100 == 5)
                *unknown = 1; /* a 500 of a server that does not say it applied nothing */
            rc = ht_status_error(c, rp.status, "POST /api/v1/metrics", err);
            goto done;
        }
        if ((wait = ht_backoff_ms(c, attempt)) < 0) {
            rc = ht_status_error(c, rp.status, "POST /api/v1/metrics", err);
            c->host->error_set(err, rc, (int)rp.status,
                               "http: POST /api/v1/metrics: status %ld with Retry-After %ld s, "
                               "more than retry_after_max_s (%ld s)",
                               rp.status, c->retry_after, c->retry_after_max_s);
            goto done;
        }
        ht_sleep_ms(wait);
    }
done:
    if (rc == TRIFLE_ENOMEM)
        c->host->error_set(err, TRIFLE_ENOMEM, 0, "out of memory");
    if (rc != 0 && maybe)
        *unknown = 1;
    drv_buf_free(&url);
    return rc;
}

static int ht_calls(trifle_conn *c, const trifle_call *calls, size_t n, trifle_write_result *res,
                    trifle_error *err)
{
    size_t done = 0, chunk;
    int rc = 0, unknown = 0, too_large = 0, batch;

    if ((rc = ht_probe(c, err)) != 0)
        goto fail;
    batch = c->batch_mode == BATCH_ON || (c->batch_mode == BATCH_AUTO && c->ext_batch);
    chunk = batch ? c->batch_size : 1;
    while (done < n) {
        size_t m = n - done < chunk ? n - done : chunk, i;

        c->req.len = 0;
        if (batch && m > 1) {
            drv_buf_putc(&c->req, '[');
            for (i = 0; i < m; i++) {
                if (i > 0)
                    drv_buf_putc(&c->req, ',');
                ht_put_call(c, &calls[done + i]);
            }
            drv_buf_putc(&c->req, ']');
        } else {
            m = 1;
            ht_put_call(c, &calls[done]);
        }
        rc = ht_send_write(c, &unknown, &too_large, err);
        if (rc != 0 && too_large && m > 1) {
            chunk = m / 2; /* refused whole: nothing applied; send it in halves */
            continue;
        }
        if (rc != 0 && unknown && c->ext_idem) {
            /* calls that name themselves (journal origin and seq) may be sent again: the server
             * applies each id once, so the outcome is no longer the caller's worry */
            for (i = 0; i < m && calls[done + i].origin != NULL && calls[done + i].seq != 0; i++)
                ;
            if (i == m)
                unknown = 0;
        }
        if (rc != 0)
            goto fail;
        done += m;
    }
    return 0;
fail:
    TRIFLE_WRITE_RESULT_SET(res, done, -1, unknown);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Reads
 */

/* A requested bucket: its start and its index in the call. */
typedef struct ht_want {
    int64_t at;
    size_t index;
} ht_want;

static int ht_want_cmp(const void *a, const void *b)
{
    const ht_want *x = a, *y = b;

    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

typedef struct ht_emit_ctx {
    trifle_conn *c;
    trifle_sink *sink;
    size_t index;
    int rc;
} ht_emit_ctx;

static int ht_leaf(drv_json *js, int depth, void *ctx)
{
    ht_emit_ctx *e = ctx;
    double v = 0;
    int numeric = 0;

    if (!drv_json_value(js, depth, &v, &numeric))
        return 0;
    if (numeric && e->rc == 0) {
        drv_buf_zero(js->path);
        if (e->c->oom)
            e->rc = TRIFLE_ENOMEM;
        else
            e->rc = e->c->host->emit(e->sink, e->index, js->path->p, v);
    }
    return 1;
}

/* Find member @p name of the object at js->p (its '{'); js->p is left at the member's value.
 * 1 found, 0 not there, -1 not valid JSON. */
static int ht_member(drv_json *js, const char *name, int depth)
{
    drv_buf key;
    int found = -1;

    drv_buf_init(&key, js->host, js->path->oom);
    drv_json_ws(js);
    if (js->p >= js->end || *js->p != '{')
        goto done;
    js->p++;
    drv_json_ws(js);
    if (js->p < js->end && *js->p == '}') {
        found = 0;
        goto done;
    }
    for (;;) {
        key.len = 0;
        drv_json_ws(js);
        if (js->p >= js->end || *js->p != '"' || !drv_json_string(js, &key))
            goto done;
        drv_json_ws(js);
        if (js->p >= js->end || *js->p != ':')
            goto done;
        js->p++;
        drv_json_ws(js);
        if (key.len == strlen(name) && memcmp(key.p, name, key.len) == 0) {
            found = 1;
            goto done;
        }
        if (!drv_json_skip(js, depth + 1))
            goto done;
        drv_json_ws(js);
        if (js->p < js->end && *js->p == ',') {
            js->p++;
            continue;
        }
        if (js->p < js->end && *js->p == '}')
            found = 0;
        goto done;
    }
done:
    drv_buf_free(&key);
    return found;
}

/* Emit the reply of one GET (c->resp: {"data":{"at":[...],"values":[{...},...]}}) for the wanted
 * buckets @p w[0..m) (sorted by start). 0, TRIFLE_ENOMEM, or TRIFLE_EDRIVER for a reply of
 * another shape. */
static int ht_emit_reply(trifle_conn *c, trifle_sink *sink, const ht_want *w, size_t m,
                         trifle_error *err)
{
    drv_json js = {.host = c->host, .path = &c->path, .max_depth = HT_MAX_DEPTH};
    drv_json at_js, val_js;
    const char *data;
    drv_buf text;
    ht_emit_ctx e = {c, sink, 0, 0};
    int rc = TRIFLE_EDRIVER, first = 1;

    drv_buf_init(&text, c->host, &c->oom);
    js.p = c->resp.p;
    js.end = c->resp.p + c->resp.len;
    if (c->resp.len == 0 || ht_member(&js, "data", 0) != 1)
        goto bad;
    data = js.p;
    at_js = js;
    if (ht_member(&at_js, "at", 1) != 1 || *at_js.p != '[')
        goto bad;
    val_js = js;
    val_js.p = data;
    if (ht_member(&val_js, "values", 1) != 1 || *val_js.p != '[')
        goto bad;
    at_js.p++;
    val_js.p++;
    for (;;) {
        int64_t at;
        const char *obj;
        const ht_want *hit;

        drv_json_ws(&at_js);
        drv_json_ws(&val_js);
        if (at_js.p < at_js.end && *at_js.p == ']')
            break;
        if (!first) {
            if (at_js.p >= at_js.end || *at_js.p != ',' || val_js.p >= val_js.end ||
                *val_js.p != ',')
                goto bad;
            at_js.p++;
            val_js.p++;
            drv_json_ws(&at_js);
            drv_json_ws(&val_js);
        }
        first = 0;
        text.len = 0;
        if (at_js.p >= at_js.end || *at_js.p != '"' || !drv_json_string(&at_js, &text) ||
            tu_time_parse_rfc3339(text.p, text.len, &at) != 0)
            goto bad;
        obj = val_js.p;
        if (val_js.p >= val_js.end || *val_js.p != '{' || !drv_json_skip(&val_js, 1))
            goto bad;
        /* every wanted bucket that starts at `at` gets the leaves (a bucket may be asked twice):
         * from the first with w.at >= at */
        {
            size_t lo = 0, hi = m;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (w[mid].at < at)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            hit = lo < m ? &w[lo] : NULL;
        }
        for (; hit != NULL && hit < w + m && hit->at == at; hit++) {
            drv_json walk = {.host = c->host,
                             .path = &c->path,
                             .max_depth = HT_MAX_DEPTH,
                             .value = ht_leaf,
                             .ctx = &e};
            e.index = hit->index;
            c->path.len = 0;
            if (!drv_json_walk(&walk, obj, (size_t)(val_js.p - obj)))
                goto bad;
            if (e.rc != 0) {
                rc = e.rc;
                goto done;
            }
        }
    }
    rc = 0;
    goto done;
bad:
    if (c->oom) {
        rc = TRIFLE_ENOMEM;
        c->host->error_set(err, rc, 0, "out of memory");
    } else {
        char snip[HT_BODY_SNIPPET + 1];
        c->host->error_set(err, rc, 0, "http: GET /api/v1/metrics: unexpected reply: %s",
                           ht_snippet(c, snip, sizeof(snip)));
    }
done:
    drv_buf_free(&text);
    return rc;
}

/* One GET for the buckets w[0..m) of @p key / @p g, with retries (a read is safe to resend). */
static int ht_get_range(trifle_conn *c, const char *key, const char *g, const ht_want *w, size_t m,
                        trifle_sink *sink, trifle_error *err)
{
    char from[TU_TIME_LEN + 1], to[TU_TIME_LEN + 1];
    char *ek = NULL, *eg = NULL;
    drv_buf url;
    ht_reply rp;
    int rc;

    drv_buf_init(&url, c->host, &c->oom);
    if (tu_time_format(from, w[0].at) != 0 || tu_time_format(to, w[m - 1].at) != 0) {
        c->host->error_set(err, TRIFLE_EINVAL, 0, "http: bucket start outside years 0000-9999");
        return TRIFLE_EINVAL;
    }
    if ((ek = curl_easy_escape(c->curl, key, 0)) == NULL ||
        (eg = curl_easy_escape(c->curl, g, 0)) == NULL) {
        rc = TRIFLE_ENOMEM;
        goto done;
    }
    drv_buf_puts(&url, c->base);
    drv_buf_puts(&url, "/api/v1/metrics?key=");
    drv_buf_puts(&url, ek);
    drv_buf_puts(&url, "&from=");
    drv_buf_puts(&url, from);
    drv_buf_puts(&url, "&to=");
    drv_buf_puts(&url, to);
    drv_buf_puts(&url, "&granularity=");
    drv_buf_puts(&url, eg);
    drv_buf_zero(&url);
    if (c->oom) {
        rc = TRIFLE_ENOMEM;
        goto done;
    }
    if ((rc = ht_read(c, url.p, NULL, 0, "GET /api/v1/metrics", &rp, err)) == 0)
        rc = rp.status == 200 ? ht_emit_reply(c, sink, w, m, err)
                              : ht_status_error(c, rp.status, "GET /api/v1/metrics", err);
done:
    if (rc == TRIFLE_ENOMEM)
        c->host->error_set(err, TRIFLE_ENOMEM, 0, "out of memory");
    curl_free(ek);
    curl_free(eg);
    drv_buf_free(&url);
    return rc;
}

/* Buckets are grouped by (key, granularity); each group is one GET from its first to its last
 * start. The core asks for one timeline, so that is one request. */
static int ht_get(trifle_conn *c, const trifle_bucket *buckets, size_t n, trifle_sink *sink,
                  trifle_error *err)
{
    unsigned char *done = NULL;
    ht_want *w = NULL;
    size_t i, j, m;
    int rc = 0;

    if ((done = c->host->alloc(n)) == NULL || (w = c->host->alloc(n * sizeof(*w))) == NULL) {
        c->host->free(done);
        c->host->error_set(err, TRIFLE_ENOMEM, 0, "out of memory");
        return TRIFLE_ENOMEM;
    }
    memset(done, 0, n);
    for (i = 0; i < n && rc == 0; i++) {
        if (done[i])
            continue;
        for (m = 0, j = i; j < n; j++) {
            if (done[j] || strcmp(buckets[j].key, buckets[i].key) != 0 ||
                strcmp(buckets[j].granularity, buckets[i].granularity) != 0)
                continue;
            done[j] = 1;
            w[m].at = buckets[j].at;
            w[m++].index = j;
        }
        qsort(w, m, sizeof(*w), ht_want_cmp);
        rc = ht_get_range(c, buckets[i].key, buckets[i].granularity, w, m, sink, err);
    }
    c->host->free(done);
    c->host->free(w);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Queries (ABI 1.4): the server's engine answers, with its stored transponders
 */

/* POST /api/v1/metrics/query with the request the core checked; the answer (200, 400, 422, 5xx
 * but 503) goes to the core as it came, which checks its shape. A query is a read: resent freely
 * after a lost reply, a 429 or a 503. */
static int ht_query(trifle_conn *c, const char *request, size_t len, trifle_answer_fn answer,
                    void *ctx, trifle_error *err)
{
    static const char what[] = "POST /api/v1/metrics/query";
    drv_buf url;
    ht_reply rp;
    int rc;

    drv_buf_init(&url, c->host, &c->oom);
    c->req.len = 0;
    drv_buf_put(&c->req, request, len);
    if ((rc = ht_url(c, &url, "/api/v1/metrics/query")) != 0)
        goto done;
    if ((rc = ht_read(c, url.p, c->req.p, c->req.len, what, &rp, err)) != 0)
        goto done;
    if (rp.status == 200 || rp.status == 400 || rp.status == 422 ||
        (rp.status / 100 == 5 && rp.status != 503))
        rc = answer(ctx, (int)rp.status, c->resp.p != NULL ? c->resp.p : "", c->resp.len);
    else
        rc = ht_status_error(c, rp.status, what, err);
done:
    if (rc == TRIFLE_ENOMEM)
        c->host->error_set(err, TRIFLE_ENOMEM, 0, "out of memory");
    drv_buf_free(&url);
    return rc;
}

static const char *const ht_schemes[] = {"http", "https", NULL};

static const trifle_driver ht_driver = {
    TRIFLE_DRIVER_HEADER,  .name = HT_NAME,
    .version = HT_VERSION, .caps = TRIFLE_CAP_CALLS | TRIFLE_CAP_QUERY,
    .schemes = ht_schemes, .open = ht_open,
    .close = ht_close,     .setup = ht_setup,
    .inc = ht_items,       .set = ht_items,
    .get = ht_get,         .calls = ht_calls,
    .query = ht_query,
};

TRIFLE_DRIVER_DEFINE_WITH_INIT(http, ht_driver, curl_global_init(CURL_GLOBAL_DEFAULT))
