/* The HTTP layer (SPEC §9.1, §9.2; ERRATA I18) on libmicrohttpd 0.9.75.
 *
 * libmicrohttpd runs a pool of `http.threads` threads; each accepts and serves its own keep-alive
 * connections. The server sees every request three ways:
 *   - the URI log callback gets the request target byte for byte, before libmicrohttpd touches
 *     it; the path and query are percent-decoded here, once (the unescape callback is the
 *     identity, so `%2F` and `%00` reach the file endpoints as sent);
 *   - the access handler runs the checks that need only headers on its first call (connection
 *     limit, route, authentication, media type, declared length), then collects the body
 *     (inflating gzip as it arrives, counting the limit after decompression), then dispatches;
 *   - the completion callback frees the request.
 *
 * Order of checks for a request: shutting down or over limits.max_connections → 503; unknown
 * path or method → 404; authentication and authorisation (SPEC §9.2 steps 1-6); then for bodies:
 * Content-Type → 415, Content-Encoding → 415, size after decompression → 413, malformed gzip or
 * JSON → 400; then the endpoint's own checks. Authentication comes before the body is read, so
 * an unauthenticated client cannot make the server inflate anything. */
#include "srv_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <microhttpd.h>
#define ZLIB_CONST /* next_in takes const input: no cast that drops const */
#include <zlib.h>

/* libmicrohttpd's per-connection memory (request line, headers, I/O buffers). It zeroes the whole
 * area before every keep-alive request, so its 32 KiB default cost more than parsing a request;
 * 8 KiB still holds the largest headers the API needs (a 512-byte token) many times over. */
#define CONNECTION_MEMORY 8192

/* A client that keeps sending after its body was refused is cut off after this many bytes. */
#define DISCARD_LIMIT ((size_t)64 << 20)

/* What a route needs before it runs. */
enum access {
    ACCESS_NONE = 0, /* /health */
    ACCESS_READ,     /* source-bound, read grant */
    ACCESS_WRITE,    /* source-bound, write grant on a writable source */
    ACCESS_READ_OR_WRITE,
    ACCESS_STATS, /* any valid token unless stats.public */
    ACCESS_ADMIN, /* admin token */
    ACCESS_TOKEN, /* any valid token (it is kept in the request) */
    ACCESS_CHANGE /* source-bound, write grant (read-only sources too: not a metrics write) */
};

enum phase { PHASE_NEW = 0, PHASE_BODY, PHASE_DONE };

struct srv_request {
    srv_server *srv;
    struct MHD_Connection *con;
    char *target;      /* the request target as sent: path and query */
    size_t path_len;   /* bytes of the path in target */
    const char *query; /* raw query after '?', or NULL */
    int route;
    int phase;
    int begun; /* begin() ran */
    int responded;
    int close;       /* answer with Connection: close */
    int retry_after; /* answer with Retry-After: 1 */
    /* query parameters, decoded on first use: name, value, name, value, ... */
    char **params;
    unsigned char *param_bad;
    size_t n_params;
    int params_parsed;
    /* body */
    int wants_body;
    srv_buf body;
    z_stream z;
    int gzip; /* 1: inflating, 2: one gzip member ended */
    int too_large;
    int bad_body;
    size_t raw_bytes;
    /* authentication */
    srv_source *source;
    const char *file; /* /_local/files/:file, /api/v1/{dashboards,monitors}/:id; raw */
    size_t file_len;
    const char *method;
    const srv_token *token;                     /* ACCESS_TOKEN routes */
    const char *headers[2 * SRV_EXTRA_HEADERS]; /* name, value (static strings) */
    size_t n_headers;
};

/* The marker stored as the socket context of connections beyond limits.max_connections. */
static char over_limit_marker;

/* Fixed bodies, used as they are when nothing can be allocated. */
static const char body_internal[] = "{\"errors\":{\"detail\":\"Internal server error\"}}";

/* ------------------------------------------------------------------------------------------- */
/* Responses                                                                                    */

static void release_body(void *data)
{
    srv_pool_release(data);
}

static void count_response(int status, size_t bytes)
{
    srv_count(status >= 500   ? SRV_HTTP_5XX
              : status >= 400 ? SRV_HTTP_4XX
              : status >= 300 ? SRV_HTTP_3XX
                              : SRV_HTTP_2XX,
              1);
    srv_count(SRV_HTTP_BYTES_OUT, bytes);
}

void srv_respond(srv_request *r, int status, const char *content_type, srv_buf *body)
{
    struct MHD_Response *resp;
    size_t len;

    if (r->responded) {
        srv_buf_release(body);
        return;
    }
    r->responded = 1;
    if (body->failed) {
        srv_buf_release(body);
        status = 500;
        content_type = "application/json; charset=utf-8";
        resp = MHD_create_response_from_buffer(sizeof(body_internal) - 1, (void *)body_internal,
                                               MHD_RESPMEM_PERSISTENT);
        len = sizeof(body_internal) - 1;
    } else if (body->data == NULL) {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        len = 0;
    } else {
        len = body->len;
        resp =
            MHD_create_response_from_buffer_with_free_callback(body->len, body->data, release_body);
        if (resp == NULL)
            srv_buf_release(body);
        body->data = NULL;
        body->len = body->cap = 0;
    }
    if (resp == NULL) {
        srv_log(TRIFLE_LOG_ERROR, "cannot create a response (out of memory)");
        return;
    }
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    /* issue 15: nothing is sniffed, and only the dashboard's files may be cached */
    (void)MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (r->n_headers == 0)
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    for (size_t i = 0; i < r->n_headers; i++)
        (void)MHD_add_response_header(resp, r->headers[2 * i], r->headers[2 * i + 1]);
    if (r->retry_after)
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (r->close)
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (MHD_queue_response(r->con, (unsigned)status, resp) != MHD_YES)
        srv_log(TRIFLE_LOG_ERROR, "cannot queue a %d response", status);
    MHD_destroy_response(resp);
    count_response(status, len);
}

void srv_response_buf(srv_request *r, srv_buf *b)
{
    srv_buf_init(b, &r->srv->response_pool);
}

/* `{"errors":{"detail":<text>}}` (the App's API), or
 * `{"status":<status>,"error":{"reason":<text>}}` (Trifle Stats' /_local/files and /debug). */
static void respond_error(srv_request *r, int status, const char *text, int reason)
{
    srv_buf b;

    srv_response_buf(r, &b);
    if (reason) {
        srv_buf_puts(&b, "{\"status\":");
        srv_buf_int(&b, status);
        srv_buf_puts(&b, ",\"error\":{\"reason\":");
    } else {
        srv_buf_puts(&b, "{\"errors\":{\"detail\":");
    }
    srv_buf_json_cstr(&b, text);
    srv_buf_puts(&b, "}}");
    if (status == 503 && !reason)
        r->retry_after = 1;
    if (status == 401 || status == 403)
        srv_count(SRV_API_AUTH_FAILED, 1);
    srv_respond(r, status, "application/json; charset=utf-8", &b);
}

void srv_respond_detail(srv_request *r, int status, const char *detail)
{
    respond_error(r, status, detail, 0);
}

void srv_respond_reason(srv_request *r, int status, const char *reason)
{
    respond_error(r, status, reason, 1);
}

/* ------------------------------------------------------------------------------------------- */
/* Request accessors                                                                            */

srv_server *srv_request_server(srv_request *r)
{
    return r->srv;
}

srv_source *srv_request_source(srv_request *r)
{
    return r->source;
}

void srv_request_add_header(srv_request *r, const char *name, const char *value)
{
    if (r->n_headers < SRV_EXTRA_HEADERS) {
        r->headers[2 * r->n_headers] = name;
        r->headers[2 * r->n_headers + 1] = value;
        r->n_headers++;
    }
}

const char *srv_request_path(srv_request *r, size_t *n)
{
    *n = r->path_len;
    return r->target;
}

const char *srv_request_method(srv_request *r)
{
    return r->method;
}

const srv_token *srv_request_token(srv_request *r)
{
    return r->token;
}

const char *srv_request_file(srv_request *r, size_t *n)
{
    *n = r->file_len;
    return r->file;
}

const char *srv_request_header(srv_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->con, MHD_HEADER_KIND, name);
}

const char *srv_request_body(srv_request *r, size_t *n)
{
    *n = r->body.len;
    return r->body.data != NULL ? r->body.data : "";
}

/* Percent-decode s[0..n) into a new string (with `+` as a space when @p form). Returns NULL when
 * out of memory; *bad = 1 for a malformed escape or a decoded NUL. */
static char *pct_decode(const char *s, size_t n, int form, int *bad)
{
    char *out = malloc(n + 1);

    *bad = 0;
    if (out == NULL)
        return NULL;
    *bad = tu_pct_decode(out, NULL, s, n, TU_PCT_LENIENT | (form ? TU_PCT_PLUS : 0u)) != TU_PCT_OK;
    return out;
}

static int parse_params(srv_request *r)
{
    const char *p = r->query, *amp, *eq;
    size_t count = 1, i = 0;

    r->params_parsed = 1;
    if (p == NULL || *p == '\0')
        return 0;
    for (amp = p; *amp != '\0'; amp++)
        if (*amp == '&')
            count++;
    r->params = calloc(2 * count, sizeof(*r->params));
    r->param_bad = calloc(count, 1);
    if (r->params == NULL || r->param_bad == NULL)
        return TRIFLE_ENOMEM;
    while (*p != '\0') {
        size_t len;
        int bad1 = 0, bad2 = 0;
        amp = strchr(p, '&');
        len = amp != NULL ? (size_t)(amp - p) : strlen(p);
        if (len > 0) {
            eq = memchr(p, '=', len);
            r->params[2 * i] = pct_decode(p, eq != NULL ? (size_t)(eq - p) : len, 1, &bad1);
            r->params[2 * i + 1] =
                eq != NULL ? pct_decode(eq + 1, len - (size_t)(eq + 1 - p), 1, &bad2) : strdup("");
            if (r->params[2 * i] == NULL || r->params[2 * i + 1] == NULL)
                return TRIFLE_ENOMEM;
            r->param_bad[i] = (unsigned char)(bad1 || bad2);
            i++;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    r->n_params = i;
    return 0;
}

const char *srv_request_param(srv_request *r, const char *name, int *bad)
{
    size_t i;

    *bad = 0;
    if (!r->params_parsed && parse_params(r) != 0) {
        *bad = 1;
        return NULL;
    }
    for (i = r->n_params; i-- > 0;) {
        if (strcmp(r->params[2 * i], name) == 0) {
            *bad = r->param_bad[i];
            return r->params[2 * i + 1];
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------- */
/* Routing                                                                                      */

/* Whether raw path segment s[0..n) percent-decodes to @p want. */
static int segment_is(const char *s, size_t n, const char *want)
{
    size_t i, w = 0, wn = strlen(want);

    for (i = 0; i < n; i++, w++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 1 < n ? tu_hex_value((unsigned char)s[i + 1]) : -1,
                lo = i + 2 < n ? tu_hex_value((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return 0;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (w >= wn || want[w] != c)
            return 0;
    }
    return w == wn;
}

/* The dashboard's files (dashboard.c): `/` and `/assets/...`. */
static int web_path(const char *path, size_t n)
{
    return (n == 1 && path[0] == '/') || (n > 8 && memcmp(path, "/assets/", 8) == 0);
}

#define MAX_SEGMENTS 8

static size_t split_path(const char *path, size_t n, const char **seg, size_t *len)
{
    size_t count = 0, i = 0;

    if (n == 0 || path[0] != '/')
        return 0;
    i = 1;
    for (;;) {
        size_t start = i;
        while (i < n && path[i] != '/')
            i++;
        if (count == MAX_SEGMENTS)
            return MAX_SEGMENTS + 1;
        seg[count] = path + start;
        len[count] = i - start;
        count++;
        if (i >= n)
            break;
        i++;
    }
    return count;
}

static int route_of(srv_request *r, const char *method, int *access)
{
    const char *seg[MAX_SEGMENTS];
    size_t len[MAX_SEGMENTS], n = split_path(r->target, r->path_len, seg, len);
    int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    int post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    int del = strcmp(method, MHD_HTTP_METHOD_DELETE) == 0;
    int put = strcmp(method, MHD_HTTP_METHOD_PUT) == 0;

#define SEG(i, s) segment_is(seg[i], len[i], s)
    *access = ACCESS_NONE;
    if (n == 1 && SEG(0, "health") && get)
        return R_HEALTH;
    if (n >= 3 && SEG(0, "api") && SEG(1, "v1")) {
        if (n == 3 && SEG(2, "health") && get)
            return R_HEALTH;
        if (n == 3 && SEG(2, "source") && get) {
            *access = ACCESS_READ_OR_WRITE;
            return R_SOURCE;
        }
        if (n == 3 && SEG(2, "metrics") && get) {
            *access = ACCESS_READ;
            return R_METRICS_GET;
        }
        if (n == 3 && SEG(2, "metrics") && post) {
            *access = ACCESS_WRITE;
            return R_METRICS_POST;
        }
        if (n == 4 && SEG(2, "metrics") && SEG(3, "query") && post) {
            *access = ACCESS_READ;
            return R_QUERY;
        }
        if (n == 3 && SEG(2, "sources") && get) {
            *access = ACCESS_TOKEN;
            return R_SOURCES;
        }
        if ((n == 3 || n == 4) && (SEG(2, "dashboards") || SEG(2, "monitors"))) {
            int mon = SEG(2, "monitors");
            if (n == 4) {
                r->file = seg[3];
                r->file_len = len[3];
            }
            if (get)
                *access = ACCESS_READ;
            else if ((n == 3 && post) || (n == 4 && (put || del)))
                *access = ACCESS_CHANGE;
            else
                return R_NONE;
            return n == 3 ? (mon ? R_MONITORS : R_DASHBOARDS) : (mon ? R_MONITOR : R_DASHBOARD);
        }
        if ((n == 3 || n == 4) && SEG(2, "transponders")) {
            /* the App's mode "any": read or write grant, for every method */
            if (n == 4) {
                r->file = seg[3];
                r->file_len = len[3];
            }
            if (!get && !(n == 3 && post) && !(n == 4 && (put || del)))
                return R_NONE;
            *access = ACCESS_READ_OR_WRITE;
            return n == 3 ? R_TRANSPONDERS : R_TRANSPONDER;
        }
        return R_NONE;
    }
    if (r->srv->stats_enabled && n >= 1 && SEG(0, "stats") && get) {
        *access = ACCESS_STATS;
        if (n == 1)
            return R_STATS;
        if (n == 2 && SEG(1, "prometheus"))
            return R_STATS_PROMETHEUS;
        return R_NONE;
    }
    if (n >= 2 && SEG(0, "debug") && get) {
        *access = ACCESS_ADMIN;
        if (n == 2 && (SEG(1, "threads") || SEG(1, "goroutines")))
            return R_THREADS;
        if (n == 3 && SEG(1, "pool") && SEG(2, "bytes"))
            return R_POOLS;
        return R_NONE;
    }
    if (n >= 3 && SEG(0, "_local") && SEG(1, "files")) {
        *access = ACCESS_ADMIN;
        if (n == 3 && get && SEG(2, "_list"))
            return R_FILES_LIST_ALL;
        r->file = seg[2];
        r->file_len = len[2];
        if (n == 4 && get && SEG(3, "_list"))
            return R_FILES_LIST;
        if (n == 3 && del)
            return R_FILES_DELETE;
        return R_NONE;
    }
#undef SEG
    if (get && web_path(r->target, r->path_len))
        return R_WEB;
    return R_NONE;
}

/* ------------------------------------------------------------------------------------------- */
/* Authentication (SPEC §9.2)                                                                   */

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* The bearer token of the Authorization header, or NULL (step 1). */
static const char *bearer(srv_request *r, size_t *n)
{
    const char *h = srv_request_header(r, MHD_HTTP_HEADER_AUTHORIZATION), *t;
    size_t len;

    if (h == NULL)
        return NULL;
    while (is_space(*h))
        h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || !is_space(h[6]))
        return NULL;
    t = h + 6;
    while (is_space(*t))
        t++;
    len = strlen(t);
    while (len > 0 && is_space(t[len - 1]))
        len--;
    if (!srv_token_syntax_ok(t, len))
        return NULL;
    *n = len;
    return t;
}

static int source_id_ok(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > 64)
        return 0;
    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') ||
          (s[0] >= '0' && s[0] <= '9')))
        return 0;
    for (i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Returns 1 when the request may proceed, 0 when a response was queued. */
static int authorise(srv_request *r, int access)
{
    srv_server *s = r->srv;
    const srv_token *tok = NULL;
    const char *token, *hdr;
    size_t tn = 0, i, hn;
    int rd, wr;

    if (access == ACCESS_NONE)
        return 1;
    if (access == ACCESS_STATS && s->cfg->stats_public)
        return 1;
    token = bearer(r, &tn);
    if (access == ACCESS_TOKEN) {
        if (token == NULL || (r->token = srv_token_find(s->cfg, token, tn, srv_now())) == NULL) {
            srv_respond_detail(r, 401, "Bad token");
            return 0;
        }
        return 1;
    }
    if (access == ACCESS_STATS || access == ACCESS_ADMIN) {
        if (token != NULL)
            tok = srv_token_find(s->cfg, token, tn, srv_now());
        if (tok == NULL) {
            srv_respond_reason(r, 401, "Bad token");
            return 0;
        }
        if (access == ACCESS_ADMIN && !tok->admin) {
            srv_respond_reason(r, 403, "admin token required");
            return 0;
        }
        return 1;
    }
    /* source-bound endpoints, in the order of the SPEC §9.2 table */
    if (token == NULL) {
        srv_respond_detail(r, 401, "Bad token");
        return 0;
    }
    hdr = srv_request_header(r, "X-Trifle-Source-Id");
    if (hdr == NULL && s->n_sources > 1) {
        srv_respond_detail(r, 400, "Missing X-Trifle-Source-Id header");
        return 0;
    }
    if ((tok = srv_token_find(s->cfg, token, tn, srv_now())) == NULL) {
        srv_respond_detail(r, 401, "Bad token");
        return 0;
    }
    if (hdr == NULL) {
        r->source = &s->sources[0];
    } else {
        while (is_space(*hdr))
            hdr++;
        hn = strlen(hdr);
        while (hn > 0 && is_space(hdr[hn - 1]))
            hn--;
        if (!source_id_ok(hdr, hn)) {
            srv_respond_detail(r, 400, "Invalid X-Trifle-Source-Id header");
            return 0;
        }
        for (i = 0; i < s->n_sources; i++) {
            const char *id = s->sources[i].cfg->id;
            if (strlen(id) == hn && memcmp(id, hdr, hn) == 0) {
                r->source = &s->sources[i];
                break;
            }
        }
        if (r->source == NULL) {
            srv_respond_detail(r, 401, "Bad token");
            return 0;
        }
    }
    srv_token_grant(tok, (size_t)(r->source - s->sources), &rd, &wr);
    if ((access == ACCESS_CHANGE && !wr) || (access == ACCESS_READ && !rd) ||
        (access == ACCESS_WRITE && !wr) || (access == ACCESS_READ_OR_WRITE && !rd && !wr) ||
        (access == ACCESS_WRITE && r->source->cfg->read_only)) {
        srv_respond_detail(r, 403, "Forbidden");
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------------------------- */
/* Bodies                                                                                       */

/* The length of *v up to the first of @p stop, without surrounding white space (*v is moved past
 * the leading white space). */
static size_t trim(const char **v, const char *stop)
{
    size_t n;

    while (is_space(**v))
        (*v)++;
    n = strcspn(*v, stop);
    while (n > 0 && is_space((*v)[n - 1]))
        n--;
    return n;
}

/* Whether the Content-Type is JSON (parameters allowed) or absent. */
static int json_media_type(const char *ct)
{
    size_t n;

    if (ct == NULL)
        return 1;
    n = trim(&ct, ";");
    return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* 0 identity, 1 gzip, -1 anything else. */
static int content_encoding(const char *ce)
{
    size_t n;

    if (ce == NULL)
        return 0;
    n = trim(&ce, "");
    if (n == 8 && strncasecmp(ce, "identity", 8) == 0)
        return 0;
    if ((n == 4 && strncasecmp(ce, "gzip", 4) == 0) ||
        (n == 6 && strncasecmp(ce, "x-gzip", 6) == 0))
        return 1;
    return -1;
}

/* Returns 1 to go on reading the body, 0 when a response was queued. */
static int begin_body(srv_request *r)
{
    srv_server *s = r->srv;
    const char *cl;
    int enc;

    if (!json_media_type(srv_request_header(r, MHD_HTTP_HEADER_CONTENT_TYPE))) {
        srv_respond_detail(r, 415, "Unsupported media type");
        return 0;
    }
    enc = content_encoding(srv_request_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING));
    if (enc < 0) {
        srv_respond_detail(r, 415, "Unsupported media type");
        return 0;
    }
    cl = srv_request_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (enc == 0 && cl != NULL) {
        char *end = NULL;
        unsigned long long v;
        errno = 0;
        v = strtoull(cl, &end, 10);
        if (errno == 0 && end != cl && v > s->cfg->max_body_bytes) {
            srv_respond_detail(r, 413, "Payload too large");
            return 0;
        }
    }
    srv_buf_init(&r->body, &s->request_pool);
    if (enc == 1) {
        memset(&r->z, 0, sizeof(r->z));
        if (inflateInit2(&r->z, 16 + MAX_WBITS) != Z_OK) {
            srv_respond_detail(r, 500, "Internal server error");
            return 0;
        }
        r->gzip = 1;
    }
    r->wants_body = 1;
    return 1;
}

static void feed_identity(srv_request *r, const char *data, size_t n)
{
    if (r->body.len + n > r->srv->cfg->max_body_bytes) {
        r->too_large = 1;
        srv_buf_release(&r->body);
        return;
    }
    srv_buf_append(&r->body, data, n);
}

static void feed_gzip(srv_request *r, const char *data, size_t n)
{
    size_t max = r->srv->cfg->max_body_bytes;

    r->z.next_in = (const Bytef *)data;
    r->z.avail_in = (uInt)n;
    while (r->z.avail_in > 0) {
        size_t room, before;
        int ret;
        if (r->gzip == 2) {
            /* another gzip member follows (RFC 1952 allows several) */
            if (inflateReset(&r->z) != Z_OK) {
                r->bad_body = 1;
                return;
            }
            r->gzip = 1;
        }
        if (srv_buf_reserve(&r->body,
                            r->body.len + 16384 > max + 1 ? max + 1 - r->body.len : 16384) != 0) {
            r->bad_body = 1;
            return;
        }
        room = r->body.cap - r->body.len - 1;
        if (room > max + 1 - r->body.len)
            room = max + 1 - r->body.len;
        r->z.next_out = (Bytef *)(r->body.data + r->body.len);
        r->z.avail_out = (uInt)(room > UINT32_MAX ? UINT32_MAX : room);
        before = r->z.avail_out;
        ret = inflate(&r->z, Z_NO_FLUSH);
        r->body.len += before - r->z.avail_out;
        if (r->body.len > max) {
            r->too_large = 1;
            srv_buf_release(&r->body);
            return;
        }
        if (ret == Z_STREAM_END) {
            r->gzip = 2;
            continue;
        }
        if (ret != Z_OK && ret != Z_BUF_ERROR) {
            r->bad_body = 1;
            return;
        }
    }
}

/* Returns MHD_NO to drop a client that keeps sending a refused body. */
static enum MHD_Result feed(srv_request *r, const char *data, size_t n)
{
    r->raw_bytes += n;
    if (!r->wants_body || r->too_large || r->bad_body)
        return r->raw_bytes > DISCARD_LIMIT ? MHD_NO : MHD_YES;
    if (r->gzip)
        feed_gzip(r, data, n);
    else
        feed_identity(r, data, n);
    return MHD_YES;
}

/* ------------------------------------------------------------------------------------------- */
/* Dispatch                                                                                     */

static void dispatch(srv_request *r)
{
    srv_thread_mark(SRV_THREAD_RUNNING);
    r->srv->dispatch(r, r->route);
    if (!r->responded) {
        srv_log(TRIFLE_LOG_ERROR, "route %d sent no response", r->route);
        srv_respond_detail(r, 500, "Internal server error");
    }
}

/* The checks that need only the request line and headers. Returns 1 when a body follows. */
static int begin(srv_request *r, const char *method)
{
    srv_server *s = r->srv;
    const union MHD_ConnectionInfo *ci;
    int access = ACCESS_NONE;

    ci = MHD_get_connection_info(r->con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (atomic_load(&s->stopping) ||
        (ci != NULL && ci->socket_context == (void *)&over_limit_marker)) {
        /* ERRATA I18: beyond limits.max_connections (or shutting down) the handler answers 503 */
        r->close = 1;
        srv_respond_detail(r, 503, "Service unavailable");
        return 0;
    }
    r->method = method;
    r->route = route_of(r, method, &access);
    if (r->route == R_NONE) {
        srv_respond_detail(r, 404, "Page not found");
        return 0;
    }
    if (!authorise(r, access))
        return 0;
    if (r->route == R_METRICS_POST || r->route == R_QUERY)
        return begin_body(r);
    if (r->route >= R_DASHBOARDS && r->route <= R_TRANSPONDER &&
        (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0))
        return begin_body(r);
    return 0;
}

/* Whether a body follows the headers (Content-Length > 0 or chunked). */
static int has_body(srv_request *r)
{
    const char *cl = srv_request_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);

    if (srv_request_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL)
        return 1;
    if (cl == NULL)
        return 0;
    while (*cl == ' ' || *cl == '\t' || *cl == '0')
        cl++;
    return *cl >= '1' && *cl <= '9';
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    srv_request *r = *req_cls;
    enum MHD_Result result = MHD_YES;

    (void)cls;
    (void)url;
    (void)version;
    if (r == NULL)
        return MHD_NO; /* the URI log callback could not allocate */
    r->con = con;
    (void)srv_thread_self_worker();
    srv_thread_mark(SRV_THREAD_RUNNING);
    if (r->phase == PHASE_NEW) {
        r->phase = PHASE_BODY;
        /* Without a body, everything waits for the final call: a response queued now would make
         * libmicrohttpd close the connection. With a body, the header checks run now, so a
         * refused body (401, 415, 413 by Content-Length) is never read: the response goes out
         * at once and the connection is closed after it. */
        if (has_body(r)) {
            r->begun = 1;
            if (!begin(r, method) && !r->responded)
                dispatch(r);
        }
    } else if (*upload_data_size > 0) {
        result = feed(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
    } else if (!r->responded) {
        r->phase = PHASE_DONE;
        /* Count the body before a response can reach the client: a client reading /stats right
         * after its own request must find it there. on_completed counts only what arrives after
         * an early response (a refused body still being discarded). */
        if (r->raw_bytes > 0) {
            srv_count(SRV_HTTP_BYTES_IN, r->raw_bytes);
            r->raw_bytes = 0;
        }
        if (!r->begun) {
            r->begun = 1;
            if (!begin(r, method)) {
                if (!r->responded)
                    dispatch(r);
                goto out;
            }
        }
        if (r->gzip == 1)
            r->bad_body = 1; /* the gzip stream ended early */
        if (r->too_large)
            srv_respond_detail(r, 413, "Payload too large");
        else if (r->bad_body)
            srv_respond_detail(r, 400, "Bad request");
        else
            dispatch(r);
    }
out:
    srv_thread_mark(SRV_THREAD_IDLE);
    return result;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
    srv_server *s = cls;
    srv_request *r = calloc(1, sizeof(*r));
    const char *q;

    (void)con;
    srv_count(SRV_HTTP_REQUESTS, 1);
    if (r == NULL)
        return NULL;
    r->srv = s;
    r->target = strdup(uri);
    if (r->target == NULL) {
        free(r);
        return NULL;
    }
    q = strchr(r->target, '?');
    r->path_len = q != NULL ? (size_t)(q - r->target) : strlen(r->target);
    r->query = q != NULL ? q + 1 : NULL;
    atomic_fetch_add(&s->active, 1);
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *con, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    srv_server *s = cls;
    srv_request *r = *req_cls;
    size_t i;

    (void)con;
    (void)toe;
    if (r == NULL)
        return;
    *req_cls = NULL;
    if (r->raw_bytes > 0)
        srv_count(SRV_HTTP_BYTES_IN, r->raw_bytes);
    if (r->gzip)
        (void)inflateEnd(&r->z);
    srv_buf_release(&r->body);
    for (i = 0; i < 2 * r->n_params; i++)
        free(r->params[i]);
    free(r->params);
    free(r->param_bad);
    free(r->target);
    free(r);
    atomic_fetch_sub(&s->active, 1);
}

static void on_connection(void *cls, struct MHD_Connection *con, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    srv_server *s = cls;

    (void)con;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        long n = atomic_fetch_add(&s->connections, 1) + 1;
        *socket_context = (size_t)n > s->cfg->max_connections ? (void *)&over_limit_marker : NULL;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        atomic_fetch_sub(&s->connections, 1);
    }
}

/* ERRATA I18: libmicrohttpd must not decode the target; the server does it once, itself. */
static size_t identity_unescape(void *cls, struct MHD_Connection *con, char *uri)
{
    (void)cls;
    (void)con;
    return strlen(uri);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    size_t n;

    (void)cls;
    (void)vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    srv_log(TRIFLE_LOG_WARN, "libmicrohttpd: %s", line);
}

int srv_http_start(srv_server *s, trifle_error *err)
{
    const srv_config *c = s->cfg;
    unsigned timeout = (unsigned)c->idle_timeout_s;
    unsigned limit;

    if (timeout == 0) {
        /* ERRATA I18: read/write timeouts merge into one idle timeout in whole seconds */
        int ms =
            c->read_timeout_ms > c->write_timeout_ms ? c->read_timeout_ms : c->write_timeout_ms;
        timeout = (unsigned)((ms + 999) / 1000);
    }
    /* libmicrohttpd closes connections beyond its own limit without a word; leave room above
     * limits.max_connections so that the handler can answer those 503 */
    limit = (unsigned)(c->max_connections + (c->max_connections < 64 ? 64 : c->max_connections));
    s->daemon = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request,
        s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CONNECTION_MEMORY, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)s->listen_fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)c->threads, MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        s, MHD_OPTION_UNESCAPE_CALLBACK, identity_unescape, NULL, MHD_OPTION_END);
    if (s->daemon == NULL)
        return srv_error(err, TRIFLE_ERROR, "cannot start the HTTP server on %s", c->listen);
    return 0;
}

void srv_http_quiesce(srv_server *s)
{
    MHD_socket fd;

    if (s->daemon == NULL || s->listen_fd < 0)
        return;
    fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        (void)close(fd);
    s->listen_fd = -1;
}

void srv_http_stop(srv_server *s)
{
    if (s->daemon != NULL)
        MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
}
