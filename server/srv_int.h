/* Declarations shared by the files of server/. The server is a client of the public API only
 * (<trifle/...>); nothing here is installed. Internal functions are `srv_<noun>_<verb>`. */
#ifndef TRIFLE_SRV_INT_H
#define TRIFLE_SRV_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <trifle/simple.h>
#include <trifle/trifle.h>

#include "server.h"
#include "util/tu_buf.h"
#include "util/tu_error.h"
#include "util/tu_hex.h"
#include "util/tu_utf8.h"

/* Fill @p err (may be NULL) with @p code and a printf-style message, cut UTF-8-safely with "…"
 * when it does not fit; returns @p code. The one error formatter of the tree (util/tu_error.h). */
#define srv_error(...) tu_error_set(__VA_ARGS__)

/* Log one line to stderr: `trifle serve: <level>: <message>`. Thread-safe (one write(2)). */
void srv_log(int level, const char *fmt, ...) TRIFLE_PRINTF(2, 3);

/* Write all of p[0..n) to @p fd, retrying after EINTR (store.c). 0, or -1 (errno from write(2)). */
int srv_write_all(int fd, const char *p, size_t n);

/* The current time: Unix seconds / a monotonic clock in milliseconds. */
int64_t srv_now(void);
int64_t srv_monotonic_ms(void);

/* ------------------------------------------------------------------------------------------- */
/* pool.c: byte-buffer pools (SPEC §10.6 `/debug/pool/bytes`)                                   */

/* A pool of reusable byte buffers. Each buffer carries a small header naming its pool, so a
 * buffer is released without naming the pool (MHD's free callback gets the data pointer only).
 * Idle buffers are kept up to max_count buffers and max_size bytes; buffers that grew beyond
 * max_item_size are freed on release. Thread-safe. */
typedef struct srv_pool {
    const char *tag; /* "http_request", "http_response" */
    pthread_mutex_t lock;
    char **idle;              /* idle buffers (data pointers), max_count slots */
    size_t n_idle;            /* pool_items */
    size_t idle_bytes;        /* pool_size: capacity held by idle buffers */
    size_t default_item_size; /* capacity of a new buffer */
    size_t max_item_size;     /* larger buffers are dropped on release */
    size_t max_count;         /* idle buffers kept at most */
    size_t max_size;          /* idle bytes kept at most */
    uint64_t allocated;       /* buffers allocated from the heap */
    uint64_t acquired;        /* srv_pool_acquire() calls that returned a buffer */
    uint64_t returned;        /* srv_pool_release() calls */
    uint64_t dropped;         /* released buffers freed because they exceed max_item_size */
    uint64_t throttled;       /* released buffers freed because the pool was full */
    uint64_t invalid;         /* releases of a buffer that was not in use (double release) */
} srv_pool;

/* A snapshot of a pool's figures, named as in SPEC §10.6. */
typedef struct srv_pool_counters {
    uint64_t allocated, acquired, returned, dropped, throttled, inuse, invalid;
    uint64_t pool_size, pool_items, max_item_size, default_item_size, max_count, max_size;
} srv_pool_counters;

int srv_pool_init(srv_pool *p, const char *tag, size_t default_item_size, size_t max_item_size,
                  size_t max_count, size_t max_size);
void srv_pool_destroy(srv_pool *p);
/* A buffer of at least @p min bytes (its capacity in *cap), or NULL when out of memory. */
char *srv_pool_acquire(srv_pool *p, size_t min, size_t *cap);
/* Grow a pooled buffer to at least @p min bytes (contents kept); NULL when out of memory, the old
 * buffer then still valid. */
char *srv_pool_grow(char *data, size_t min, size_t *cap);
/* Give a pooled buffer back; NULL is fine. */
void srv_pool_release(char *data);
void srv_pool_read(srv_pool *p, srv_pool_counters *out);

/* ------------------------------------------------------------------------------------------- */
/* buf.c: growable text buffers                                                                 */

/* A growable buffer on a pool (pool NULL: the heap via the same header, so srv_pool_release()
 * frees it either way): util/tu_buf.h on the pool's memory. Allocation failure is sticky: check
 * `failed` once at the end. The srv_buf_* names are the server's spelling of tu_buf_*. */
typedef tu_buf srv_buf;

void srv_buf_init(srv_buf *b, srv_pool *pool);
#define srv_buf_reserve tu_buf_reserve
#define srv_buf_append tu_buf_append
#define srv_buf_puts tu_buf_puts
#define srv_buf_putc tu_buf_putc
void srv_buf_int(srv_buf *b, int64_t v);
void srv_buf_uint(srv_buf *b, uint64_t v);
/* Append s[0..n) as a JSON string literal; bytes that are not valid UTF-8 become U+FFFD. */
#define srv_buf_json_string(b, s, n) tu_buf_json_string((b), (s), (n), TU_BUF_JSON_REPAIR)
void srv_buf_json_cstr(srv_buf *b, const char *s);
/* The NUL-terminated text; NULL after a failed append. */
#define srv_buf_cstr tu_buf_cstr
/* Release the storage (back to the pool). */
#define srv_buf_release tu_buf_free

/* ------------------------------------------------------------------------------------------- */
/* json.c: request bodies                                                                       */

enum srv_json_type {
    SRV_JSON_NULL = 0,
    SRV_JSON_FALSE,
    SRV_JSON_TRUE,
    SRV_JSON_NUMBER,
    SRV_JSON_STRING,
    SRV_JSON_ARRAY,
    SRV_JSON_OBJECT
};

/* A JSON value as a span of the validated text (strings include their quotes). */
typedef struct srv_json {
    const char *p;
    size_t n;
    int type; /* an srv_json_type */
} srv_json;

/* Validate @p text as exactly one JSON value (RFC 8259, UTF-8, nesting at most 512 levels) with
 * optional surrounding whitespace. Returns 0 and the root span, or -1. */
int srv_json_parse(srv_json *out, const char *text, size_t n);

/* Members of a validated object, in order. */
typedef struct srv_json_iter {
    const char *p;
    const char *end;
} srv_json_iter;

void srv_json_members(srv_json_iter *it, const srv_json *object);
/* 1 and the next member's name (a string span) and value, or 0 at the end. */
int srv_json_next(srv_json_iter *it, srv_json *name, srv_json *value);
/* Elements of a validated array, in order: srv_json_elements(), then srv_json_next_element()
 * gives 1 and the next element, or 0 at the end. */
void srv_json_elements(srv_json_iter *it, const srv_json *array);
int srv_json_next_element(srv_json_iter *it, srv_json *value);
/* Whether the decoded string @p str equals the NUL-terminated @p s. */
int srv_json_string_is(const srv_json *str, const char *s);
/* The last member named @p name (SPEC: duplicate members, the last wins). 1 found, 0 not. */
int srv_json_get(const srv_json *object, const char *name, srv_json *value);
/* Decode a string span into a new NUL-terminated heap string (free()); *len excludes the NUL and
 * may be less than strlen when the text holds \u0000. Returns 0 or TRIFLE_ENOMEM. */
int srv_json_string_dup(char **out, size_t *len, const srv_json *str);

/* ------------------------------------------------------------------------------------------- */
/* config.c: the configuration file (SPEC §12, ERRATA I8, I12, minor 21)                         */

/* A permission of one token on one source (-1 = "*"). */
typedef struct srv_grant {
    long source; /* index into srv_config.sources, or -1 for "*" */
    int read;
    int write;
} srv_grant;

typedef struct srv_token {
    char *name; /* label for logs */
    unsigned char sha256[32];
    int has_expiry;
    int64_t expires_at; /* Unix seconds */
    int admin;
    srv_grant *grants;
    size_t n_grants;
} srv_token;

typedef struct srv_source_config {
    char *id;
    char *name;        /* display_name */
    char *driver;      /* driver URL after path resolution (may hold a password) */
    char *sqlite_file; /* absolute database path of a sqlite source, else NULL */
    char *journal_dir; /* the write-ahead journal's directory (buffer.journal), NULL: none */
    char *default_timeframe;
    char *default_granularity; /* NULL: 1h, 1d or the first granularity (SPEC §9.4) */
    int read_only;
    int setup;          /* -1: unset (then !read_only, ERRATA minor 21) */
    trifle_config *lib; /* every SPEC §1 option set from the YAML source block */
    char where[64];     /* `<line>:<column>` of the source's driver, for open errors */
} srv_source_config;

typedef struct srv_label {
    char *name;
    char *value;
} srv_label;

typedef struct srv_config {
    char *file;         /* the configuration file as given; NULL for the zero-config */
    char *listen;       /* host:port, [v6]:port or unix:/path */
    size_t listen_line; /* where http.listen was set (for bind errors); 0: not in a file */
    size_t listen_col;
    int threads;
    int read_timeout_ms;
    int write_timeout_ms;
    int idle_timeout_s; /* 0: ceil(max(read, write) / 1000) (ERRATA I18) */
    int shutdown_timeout_ms;
    char *data_dir; /* absolute or relative to the working directory */
    char *driver_path;
    char *node_id;
    char *node_name;
    size_t max_body_bytes;
    size_t max_points;
    size_t max_connections;
    size_t max_list_entries;
    srv_source_config *sources;
    size_t n_sources;
    srv_token *tokens;
    size_t n_tokens;
    trifle_simple_options stats; /* stats: (SPEC §10.8); its strings are set at start-up */
    int stats_storage;           /* stats.include_storage_stats_in_api: `disk`, `system.store` */
    int stats_public;            /* stats.public: /stats* without a token */
    srv_label *labels;           /* stats.prometheus_labels as configured ("" removes a default) */
    size_t n_labels;
    /* monitors: (issue 15) */
    char **webhook_allow; /* host names, addresses or CIDR blocks; NULL: loopback only */
    size_t n_webhook_allow;
    int webhook_timeout_ms;
    int webhook_retries;          /* attempts after the first */
    int webhook_backoff_ms;       /* first retry delay, doubled each time */
    int monitors_tick_ms;         /* how often the thread looks for due monitors */
    int64_t idempotency_window_s; /* idempotency.window_s: how long Idempotency-Keys are kept */
} srv_config;

/* Read and validate a configuration file. Errors are TRIFLE_ECONFIG
 * `<file>:<line>:<column>: <key path>: <message>`. The caller owns *out (srv_config_free()). */
int srv_config_load(srv_config **out, const char *path, trifle_error *err);
/* The zero-config default of SPEC §12.1 (the token is added by the caller). */
int srv_config_default(srv_config **out, trifle_error *err);
void srv_config_free(srv_config *c);

/* Parse a listen address: `host:port`, `[v6]:port` or `unix:/path`. Returns 0 or -1 with a reason.
 */
typedef struct srv_listen_addr {
    int is_unix;
    char host[256]; /* without brackets */
    char port[16];
    char path[108];
} srv_listen_addr;
int srv_listen_parse(srv_listen_addr *out, const char *text, const char **reason);

/* ------------------------------------------------------------------------------------------- */
/* auth.c: tokens (SPEC §9.2)                                                                   */

int srv_sha256(unsigned char out[32], const void *data, size_t n);
/* 64 lower-case hex digits and a NUL. */
void srv_hex_encode(char out[65], const unsigned char d[32]);
/* 0 for exactly 64 hex digits (either case), else -1. */
int srv_hex_decode(unsigned char out[32], const char *hex);
/* A new token: `trf_` + base64url (no padding) of 32 bytes from getrandom(2). @p out must hold
 * SRV_TOKEN_TEXT_SIZE bytes. Returns 0 or -1 (errno set). */
#define SRV_TOKEN_TEXT_SIZE 48
int srv_token_generate(char out[SRV_TOKEN_TEXT_SIZE]);
/* Whether @p token is 16-512 visible ASCII characters (SPEC §9.2). */
int srv_token_syntax_ok(const char *token, size_t n);
/* Hash @p token once and compare it with every configured digest in constant time; returns the
 * matching token (not expired at @p now) or NULL. */
const srv_token *srv_token_find(const srv_config *c, const char *token, size_t n, int64_t now);
/* The union of a token's grants for source @p index and for "*". */
void srv_token_grant(const srv_token *t, size_t index, int *read, int *write);

/* The zero-config token file `<data_dir>/tokens` (ERRATA minor 21: protected from DELETE). Reads
 * the digests stored there, or generates a token, prints it once to stderr and stores its digest
 * (mode 0600, written atomically). Adds one admin token with read+write on every source to @p c. */
int srv_tokens_file_load(srv_config *c, int data_fd, trifle_error *err);

/* ------------------------------------------------------------------------------------------- */
/* threads.c: the thread registry behind /debug/threads (SPEC §10.6)                            */

enum srv_thread_state { SRV_THREAD_IDLE = 0, SRV_THREAD_RUNNING = 1, SRV_THREAD_BLOCKED = 2 };

typedef struct srv_thread srv_thread;
/* A probe computes the state of a thread the server does not run itself (buffer flushers). */
typedef int (*srv_thread_probe)(void *payload);

/* Register a thread (or a thread slot) with @p role; NULL when the registry is full. */
srv_thread *srv_thread_register(const char *role, int state, srv_thread_probe probe, void *payload);
void srv_thread_set_state(srv_thread *t, int state);
/* The thread has ended: it is no longer listed. */
void srv_thread_retire(srv_thread *t);
/* The calling thread's slot, claimed from the `http-worker` slots on first use. */
srv_thread *srv_thread_self_worker(void);
/* Mark the calling thread (if registered) running / blocked / idle. */
void srv_thread_mark(int state);
/* JSON `[{"count":..,"goroutine":"<role> [<state>]","thread":..,"state":..},..]`. */
void srv_threads_render(srv_buf *out);
void srv_threads_reset(void);

/* ------------------------------------------------------------------------------------------- */
/* The running server                                                                           */

/* outage.c: the log of a source's store outages (one line when it starts, one a minute, one when
 * it ends; see the file's comment). */
typedef struct srv_outage {
    pthread_mutex_t lock; /* guards message */
    int initialised;
    char message[300]; /* the latest failed flush: `<driver>: <message>` */
    /* the main thread's state (srv_outage_tick() only) */
    int active;
    int64_t started_ms, summary_ms;
    uint64_t seen_errors;       /* flush_errors at the previous tick */
    uint64_t errors_at_start;   /* flush_errors before the outage */
    uint64_t errors_at_summary; /* flush_errors at the last summary line */
    uint64_t flushes_at_error;  /* flushes when flush_errors last grew */
    uint64_t pending_seen;      /* most entries pending during the outage */
} srv_outage;

int srv_outage_init(srv_outage *o);
void srv_outage_destroy(srv_outage *o);
/* The buffer's error handler calls this with each failed flush (any thread). */
void srv_outage_failed(srv_outage *o, const trifle_error *err);
/* The periodic check (one thread): @p c are the source's buffer counters now. */
void srv_outage_tick(srv_outage *o, const char *source, const trifle_buffer_counters *c,
                     int64_t now_ms);

typedef struct srv_source {
    const srv_source_config *cfg;
    trifle *t;
    const trifle_zone *zone;
    size_t n_granularities;
    const char **granularities; /* borrowed from the handle's configuration */
    const char *default_granularity;
    char category[80];           /* Simple Stats category `buffer.<id>` */
    trifle_buffer_counters last; /* counters already added to Simple Stats */
    srv_outage outage;
    atomic_uint_fast64_t journal_refused;     /* journal refusals since the last log line */
    atomic_uint_fast64_t journal_refused_new; /* ... not yet added to Simple Stats */
    atomic_int_fast64_t journal_logged_ms; /* when the last journal failure was logged, 0: never */
    struct srv_idem *idem; /* the server's Idempotency-Keys, for the notes its journal replays */
} srv_source;

/* A file the server holds open: DELETE answers 409 `file in use` (SPEC §10.7, ERRATA minor 21). */
typedef struct srv_protected {
    char *dir;  /* its directory (absolute or relative to the working directory) */
    char *name; /* its base name; "*": every file of dir except `*.corrupt` (a journal) */
} srv_protected;

/* A request as the handlers see it. */
typedef struct srv_request srv_request;

/* Answers a request on a recognised route (enum srv_route): routes.c's srv_dispatch, which serve.c
 * puts in srv_server.dispatch. The transport (http.c) recognises the route and checks access, then
 * calls it, so it names no handler itself. */
typedef void (*srv_dispatch_fn)(srv_request *r, int route);

typedef struct srv_server {
    srv_config *cfg;
    srv_source *sources;
    size_t n_sources;
    int data_fd; /* data_dir, opened at start-up */
    struct MHD_Daemon *daemon;
    int listen_fd; /* bound at start-up; listen() once every source is open */
    int listen_backlog;
    srv_pool request_pool;
    srv_pool response_pool;
    srv_protected *protected_files;
    size_t n_protected;
    atomic_long connections;       /* open client connections */
    atomic_long active;            /* requests between their request line and completion */
    atomic_int stopping;           /* graceful shutdown began: new requests get 503 */
    pthread_mutex_t counters_lock; /* serialises srv_counters_refresh() */
    int stats_enabled;
    int listen_from_cli;             /* --listen replaced http.listen */
    struct srv_monitors *monitors;   /* monitors.c */
    struct srv_stores *dashboards;   /* dashboards.c: one store per source (store.h) */
    struct srv_stores *transponders; /* transponders.c: one store per source (store.h) */
    struct srv_idem *idem;           /* idempotency.c: the Idempotency-Keys of writes */
    srv_dispatch_fn dispatch;        /* routes.c: srv_dispatch, set before srv_http_start() */
} srv_server;

/* ------------------------------------------------------------------------------------------- */
/* idempotency.c: the Idempotency-Key store of POST /api/v1/metrics                             */

typedef struct srv_idem srv_idem;

/* What srv_idem_begin() found. */
enum {
    SRV_IDEM_NEW = 0,      /* first sight: apply every call */
    SRV_IDEM_RESUME = 1,   /* an earlier try stopped after *applied calls: apply the rest */
    SRV_IDEM_REPLAY = 2,   /* finished: answer *status, apply nothing */
    SRV_IDEM_BUSY = 3,     /* the same key is being applied right now: 409 */
    SRV_IDEM_MISMATCH = 4, /* the key came with another number of calls: 422 */
    SRV_IDEM_NOMEM = 5
};

/* Load (and compact) <data_dir>/idempotency.log; keys live @p window_s seconds. */
int srv_idem_open(srv_idem **out, int data_fd, const char *data_dir, int64_t window_s,
                  trifle_error *err);
void srv_idem_close(srv_idem *d);
/* Whether @p key is a usable Idempotency-Key: 1-255 printable ASCII bytes, no spaces. */
int srv_idem_key_ok(const char *key);
/* Look the key up for a request of @p total calls and claim it (NEW, RESUME). */
int srv_idem_begin(srv_idem *d, const char *source, const char *key, size_t total, int *status,
                   size_t *applied);
/* Record that the first @p applied calls are applied (one write(2), no sync). 0 or -1. */
int srv_idem_progress(srv_idem *d, const char *source, const char *key, size_t applied);
/* The request ends with @p status after @p applied calls: kept (synced when @p sync) unless
 * nothing was applied and the status is not a success. Releases the claim. 0 or -1. */
int srv_idem_end(srv_idem *d, const char *source, const char *key, int status, size_t applied,
                 int sync);
/* fdatasync the log: every record appended so far is on disk. 0 or -1. */
int srv_idem_sync(srv_idem *d);

/* The note a write carries into its source's journal (trifle_write_noted()): one line
 * `<applied> <total> <key>\n` per key the call advances — the request's Idempotency-Key (the
 * call is number <applied> of <total>) and the call's own id (`1 1 <id>`). Written in the
 * same journal record as the call, so a server killed right after the journal write still knows,
 * after the replay, that the call was applied (srv_idem_noted). */
#define SRV_IDEM_NOTE_MAX 640
/* Append one line to note[*len..size); 0, or -1 when it does not fit or @p key is not a key. */
int srv_idem_note_put(char *note, size_t size, size_t *len, size_t applied, size_t total,
                      const char *key);
/* Walk the lines of a note: fn(ctx, applied, total, key) for each well-formed one (1 <= applied
 * <= total, a key srv_idem_key_ok accepts). Returns the number of malformed lines skipped, or
 * fn's non-zero value. Never reads past @p len. */
typedef int (*srv_idem_note_fn)(void *ctx, size_t applied, size_t total, const char *key);
int srv_idem_note_walk(const void *note, size_t len, srv_idem_note_fn fn, void *ctx);
/* A note found by the journal replay of @p source (the note handler of trifle_open()): each key
 * it names has at least <applied> of its <total> calls applied, and is finished (201) when they
 * are all; the change is logged (one write(2)). 0, or TRIFLE_EIO / TRIFLE_ENOMEM. */
int srv_idem_noted(srv_idem *d, const char *source, const void *note, size_t len);

/* http.c */
int srv_http_start(srv_server *s, trifle_error *err);
/* Stop accepting (MHD_quiesce_daemon) and close the listening socket. */
void srv_http_quiesce(srv_server *s);
void srv_http_stop(srv_server *s);

/* The query parameter @p name, percent-decoded once (`+` is a space); NULL when absent. An
 * undecodable parameter gives *bad = 1. The last occurrence wins. Borrowed from the request. */
const char *srv_request_param(srv_request *r, const char *name, int *bad);
const char *srv_request_header(srv_request *r, const char *name);
/* The request body after gzip decoding (not NUL-terminated). */
const char *srv_request_body(srv_request *r, size_t *n);
srv_server *srv_request_server(srv_request *r);
/* The source chosen by authentication, NULL for endpoints that are not source-bound. */
srv_source *srv_request_source(srv_request *r);
/* The path segment `:file` of /_local/files routes, or `:id` of /api/v1/dashboards/:id and
 * /api/v1/monitors/:id: raw (still percent-encoded). */
const char *srv_request_file(srv_request *r, size_t *n);

/* Responses. @p body is moved into the response (released by it). */
void srv_respond(srv_request *r, int status, const char *content_type, srv_buf *body);
/* `{"errors":{"detail":"<detail>"}}` (SPEC §9). */
void srv_respond_detail(srv_request *r, int status, const char *detail);
/* `{"status":<status>,"error":{"reason":"<reason>"}}` (SPEC §10.6, §10.7). */
void srv_respond_reason(srv_request *r, int status, const char *reason);
/* A buffer for a response body, from the response pool. */
void srv_response_buf(srv_request *r, srv_buf *b);

/* routes.c: the routes http.c recognises, and their handlers */
enum srv_route {
    R_NONE = 0,
    R_HEALTH,
    R_SOURCE,
    R_METRICS_GET,
    R_METRICS_POST,
    R_QUERY,
    R_STATS,
    R_STATS_PROMETHEUS,
    R_THREADS,
    R_POOLS,
    R_FILES_LIST_ALL,
    R_FILES_LIST,
    R_FILES_DELETE,
    R_WEB,        /* the dashboard's files (dashboard.c) */
    R_SOURCES,    /* GET /api/v1/sources */
    R_DASHBOARDS, /* /api/v1/dashboards[/:id] (dashboards.c) */
    R_DASHBOARD,
    R_MONITORS, /* /api/v1/monitors[/:id] (monitors.c) */
    R_MONITOR,
    R_TRANSPONDERS, /* /api/v1/transponders[/:id] (transponders.c) */
    R_TRANSPONDER
};
void srv_dispatch(srv_request *r, int route);

/* api.c */
void srv_api_health(srv_request *r);
void srv_api_source(srv_request *r);
void srv_api_metrics_get(srv_request *r);
void srv_api_metrics_post(srv_request *r);
void srv_api_metrics_query(srv_request *r);
/* The granularities of source @p s as a JSON array of strings. */
void srv_source_granularities_json(srv_buf *b, const srv_source *s);
/* Whether @p g is one of the granularities of source @p s (compared as written). */
int srv_source_has_granularity(const srv_source *s, const char *g);

/* admin.c: /stats, /debug */
void srv_admin_stats(srv_request *r, int prometheus);
void srv_admin_threads(srv_request *r);
void srv_admin_pools(srv_request *r);
/* Move the server's counters and the buffer counters of every source into Simple Stats (deltas
 * for counters, gauges set). Thread-safe. */
void srv_counters_refresh(srv_server *s);
/* The `pool` member of /stats. */
int srv_pools_provider(trifle_simple_writer *w, trifle_error *err, void *payload);

/* The server's own counters (SPEC §10.9). The request path adds to relaxed atomics; the deltas
 * reach Simple Stats in srv_counters_refresh() (at least once a second and before every /stats
 * render), so a request never takes the module's lock. */
enum srv_counter {
    SRV_HTTP_REQUESTS = 0,
    SRV_HTTP_2XX,
    SRV_HTTP_3XX,
    SRV_HTTP_4XX,
    SRV_HTTP_5XX,
    SRV_HTTP_BYTES_IN,
    SRV_HTTP_BYTES_OUT,
    SRV_API_GET,
    SRV_API_TRACK,
    SRV_API_ASSERT,
    SRV_API_QUERY,
    SRV_API_AUTH_FAILED,
    SRV_COUNTER__COUNT
};
void srv_count(int counter, uint64_t delta);
/* counters.c: move the pending deltas of srv_count() into Simple Stats (srv_counters_refresh). */
void srv_counters_flush(void);

/* files.c: /_local/files (SPEC §10.7) */
void srv_files_list(srv_request *r, int whole);
void srv_files_delete(srv_request *r);

/* ------------------------------------------------------------------------------------------- */
/* The dashboard and monitors (issue 15)                                                        */

/* Headers a handler may add to its response besides Content-Type; with none, the response gets
 * `Cache-Control: no-store`. Names and values must outlive the request (static strings). */
#define SRV_EXTRA_HEADERS 6
void srv_request_add_header(srv_request *r, const char *name, const char *value);
const char *srv_request_method(srv_request *r);
/* The request path as sent (still percent-encoded; not NUL-terminated: *n bytes). */
const char *srv_request_path(srv_request *r, size_t *n);
/* The token of an any-token route (GET /api/v1/sources), else NULL. */
const srv_token *srv_request_token(srv_request *r);

/* dashboard.c: the page and its files (GET / and /assets/...), GET /api/v1/sources */
void srv_web_get(srv_request *r);
void srv_web_sources(srv_request *r);

/* dashboards.c: /api/v1/dashboards[/:id] (item: the :id route) */
void srv_dashboards_handle(srv_request *r, int item);
/* Load the saved dashboards of every source from the data directory / free them. */
int srv_dashboards_open(srv_server *s, trifle_error *err);
void srv_dashboards_close(srv_server *s);
/* transponders.c: /api/v1/transponders[/:id] (issue #13) */
void srv_transponders_handle(srv_request *r, int item);
/* Load the stored transponders of every source from the data directory / free them. */
int srv_transponders_open(srv_server *s, trifle_error *err);
void srv_transponders_close(srv_server *s);
/* Apply the enabled transponders of @p src matching @p key, by order, to *series (replaced).
 * Nothing for the system key. Returns 0, TRIFLE_EINVAL `transponder <name>: <message>`, or
 * TRIFLE_ENOMEM. Thread-safe. */
int srv_transponders_apply(srv_server *s, const srv_source *src, const char *key,
                           trifle_series **series, trifle_error *err);
/* monitors.c: /api/v1/monitors[/:id], the evaluation thread and its webhooks */
void srv_monitors_handle(srv_request *r, int item);
/* Load the monitors of every source from the data directory and start the thread. */
int srv_monitors_start(srv_server *s, trifle_error *err);
/* Stop the thread (a delivery under way ends within monitors.webhook_timeout_ms) and free
 * everything. */
void srv_monitors_stop(srv_server *s);
/* Whether @p s is a valid monitors.webhook_allow entry: a host name, an IPv4/IPv6 address or
 * a CIDR block. */
int srv_allow_entry_ok(const char *s);
/* The `monitors` member of /stats. */
int srv_monitors_provider(trifle_simple_writer *w, trifle_error *err, void *payload);

#endif
