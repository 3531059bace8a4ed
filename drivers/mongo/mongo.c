/*
 * trifle_mongo.so: the MongoDB storage driver (SPEC §7.8, §11.2; ERRATA B1, B2, B3, I2, I5, I15).
 *
 * Layout. One document per bucket, `{_id, key, [granularity], [at: Date], data: {…nested…},
 * [expire_at: Date]}`, the documents of trifle_stats_go and the Ruby gem. Filters per identifier
 * mode: full `{key}`, partial `{key, at}`, separated `{key, granularity, at}`; upserts copy them
 * into new documents. Pings live in `<collection>_ping` as `{_id, key, at: Date, data: {…}}`.
 *
 * Writes. An inc/set call is one ordered bulk write of `updateOne(filter, {$inc: {"data.<path>":
 * d}, $set: {…, expire_at}}, {upsert: true})`, one statement per item; each item is one atomic
 * document update and `applied` is the index of the first failed item (SPEC §7.3). With
 * `bulk_write=false`, or when the server is FerretDB (ERRATA B3: its bulk errors always say index
 * 0), the same updates go one `update` command at a time, in order. Stored data in the way
 * (server codes 2, 14, 28, 40, 52, 56) is TRIFLE_EDATA naming the item (ERRATA I2, I5). A
 * duplicate-key error (11000) from two concurrent upserts of a new bucket is retried once (SPEC
 * §7.4). A leaf that is a dotted prefix of another leaf of the same item (`a` beside `a.b`, which
 * buffer merges can produce) cannot be stored beside it in a document: the object wins as it does
 * on read (SPEC §4.3) and the leaf is not written, with a warning (README "Leaves and objects").
 *
 * Reads. One `find` per call (`{key: {$in}, [granularity: {$in}], [at: {$in}]}`, batch size = the
 * number of buckets, so the first reply carries everything up to 16 MB); documents are matched to
 * bucket indexes through a hash of (key, granularity, at) and their numeric leaves (double, int32,
 * int64, decimal128) are emitted flattened. Duplicate documents of one identifier (no unique index
 * without setup, ERRATA I15) are emitted one by one; emit() sums them.
 *
 * Connection loss (ERRATA I15). libmongoc reconnects by itself on the next operation. Operations
 * that can be repeated (setup, get, ping, scan, drop) are retried once after a network error; a
 * write is retried only when libmongoc failed before sending it, and reports outcome_unknown
 * otherwise.
 *
 * Threads: one single-threaded mongoc_client_t per connection, used by one thread at a time; no
 * thread-local state. mongoc_init() runs once, in the plugin's entry (the loader's mutex), and
 * mongoc_cleanup() never: libmongoc may still be in use elsewhere in the process.
 */
#include <mongoc/mongoc.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <trifle/driver.h>

#include "drv_support.h"

#define MG_NAME "mongo"
#define MG_DEFAULT_DB "trifle"
#define MG_DEFAULT_COLLECTION "trifle_stats"
/* Bytes of "<database>.<collection>" (MongoDB 4.4+). */
#define MG_NS_MAX 255
/* Seconds, for expire_after and bucket times: (at + expire_after) * 1000 stays an int64. */
#define MG_EXPIRE_MAX INT64_C(1000000000000000)
#define MG_AT_MAX INT64_C(1000000000000000)
#define MG_FILTER_BYTES (8u << 20) /* identifier bytes per find: the filter stays under 16 MB */
#define MG_MAX_DEPTH 200           /* nesting followed in stored documents (MongoDB allows 100) */
#define MG_TIMEOUT_SLACK_MS 50     /* a socket error this close to socketTimeoutMS is a timeout */

/* Server error codes (src/mongo/base/error_codes.yml). */
#define MG_BAD_VALUE 2
#define MG_UNAUTHORIZED 13
#define MG_TYPE_MISMATCH 14
#define MG_AUTHENTICATION_FAILED 18
#define MG_NAMESPACE_NOT_FOUND 26
#define MG_PATH_NOT_VIABLE 28
#define MG_CONFLICTING_UPDATE_OPERATORS 40
#define MG_MAX_TIME_MS_EXPIRED 50
#define MG_DOLLAR_PREFIXED_FIELD_NAME 52
#define MG_EMPTY_FIELD_NAME 56
#define MG_NETWORK_TIMEOUT 89
#define MG_NOT_IMPLEMENTED 238
#define MG_EXCEEDED_TIME_LIMIT 262
#define MG_DUPLICATE_KEY 11000

/* What a failed call did on the network. */
enum { MG_NET_NONE = 0, MG_NET_NOT_SENT = 1, MG_NET_UNKNOWN = 2 };

/* A write round that reached libmongoc and failed: the reply and bson_error_t say why. */
#define MG_ROUND_FAILED 1

struct trifle_conn {
    const trifle_host_api *host;
    mongoc_uri_t *uri;
    mongoc_client_t *client;
    mongoc_collection_t *coll;
    mongoc_collection_t *ping;
    char *db;        /* database name */
    char *coll_name; /* collection names */
    char *ping_name;
    int mode;             /* enum trifle_id_mode */
    int bulk;             /* bulk_write parameter */
    int ferret;           /* the server is FerretDB: buildInfo has a ferretdb* field */
    int oom;              /* an allocation failed during the current call */
    int net;              /* MG_NET_* of the last failure */
    int64_t expire_after; /* seconds; 0 = off */
    int64_t socket_timeout_ms;
    drv_buf path;        /* path being flattened or "data.<path>" being built */
    unsigned char *skip; /* per leaf of the item being written: superseded by an object */
    size_t cap_skip;
    uint32_t *slots; /* get: hash slots, bucket index + 1, 0 = empty */
    size_t *chain;   /* get: next bucket index + 1 with the same identifier */
    size_t cap_slots, cap_chain;
};

/* ---------------------------------------------------------------------------------------------
 * Memory (buffers are drv_buf, drv_support.h)
 */

static char *mg_strdup(trifle_conn *c, const char *s)
{
    char *p = drv_strdup(c->host, s);

    if (p == NULL)
        c->oom = 1;
    return p;
}

/* ---------------------------------------------------------------------------------------------
 * libmongoc's log goes to the application's logger (STYLE §3: we never print)
 */

static const trifle_host_api *mg_log_host;

static void mg_log(mongoc_log_level_t level, const char *domain, const char *message, void *data)
{
    int lv;

    (void)data;
    switch (level) {
    case MONGOC_LOG_LEVEL_ERROR:
    case MONGOC_LOG_LEVEL_CRITICAL:
        lv = TRIFLE_LOG_ERROR;
        break;
    case MONGOC_LOG_LEVEL_WARNING:
        lv = TRIFLE_LOG_WARN;
        break;
    case MONGOC_LOG_LEVEL_MESSAGE:
    case MONGOC_LOG_LEVEL_INFO:
        lv = TRIFLE_LOG_INFO;
        break;
    default:
        lv = TRIFLE_LOG_DEBUG;
        break;
    }
    if (mg_log_host != NULL)
        mg_log_host->log(lv, MG_NAME, "libmongoc %s: %s", domain, message);
}

/* The plugin's init hook: runs once per process, under the loader's mutex. */
static int mg_init(const trifle_host_api *host)
{
    mg_log_host = host;
    mongoc_init();
    mongoc_log_set_handler(mg_log, NULL);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Errors (STYLE §3; SPEC §13; ERRATA I5, I15)
 */

static int64_t mg_now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A server error code in a domain that carries them. */
static int mg_server_domain(uint32_t domain)
{
    return domain == MONGOC_ERROR_SERVER || domain == MONGOC_ERROR_WRITE_CONCERN ||
           domain == MONGOC_ERROR_COMMAND || domain == MONGOC_ERROR_QUERY ||
           domain == MONGOC_ERROR_COLLECTION;
}

/* Stored data in the way of an update (ERRATA I2, I5). */
static int mg_data_code(int32_t code)
{
    return code == MG_TYPE_MISMATCH || code == MG_BAD_VALUE || code == MG_PATH_NOT_VIABLE ||
           code == MG_CONFLICTING_UPDATE_OPERATORS || code == MG_DOLLAR_PREFIXED_FIELD_NAME ||
           code == MG_EMPTY_FIELD_NAME;
}

/* A stream failure (libmongoc reports some under MONGOC_ERROR_CLIENT with the stream codes). A
 * broken or timed-out socket after the command went out leaves its outcome unknown; libmongoc
 * says "socket error or timeout" for both, so the time taken tells them apart. A failure to
 * connect, or a timeout while libmongoc checked the server, happened before anything was sent. */
static int mg_stream_status(trifle_conn *c, const bson_error_t *e, int64_t started)
{
    if (e->code == MONGOC_ERROR_STREAM_SOCKET) {
        c->net = MG_NET_UNKNOWN;
        if (c->socket_timeout_ms > 0 &&
            mg_now_ms() - started + MG_TIMEOUT_SLACK_MS >= c->socket_timeout_ms)
            return TRIFLE_ETIMEDOUT;
        return TRIFLE_ECONN;
    }
    c->net = MG_NET_NOT_SENT;
    return strstr(e->message, "timeout") != NULL ? TRIFLE_ETIMEDOUT : TRIFLE_ECONN;
}

/* Map a libmongoc error to a status and record in c->net what it did on the network.
 * `started` is mg_now_ms() before the call. */
static int mg_status(trifle_conn *c, const bson_error_t *e, int64_t started)
{
    c->net = MG_NET_NONE;
    switch (e->domain) {
    case MONGOC_ERROR_SERVER_SELECTION:
        c->net = MG_NET_NOT_SENT;
        return TRIFLE_ECONN;
    case MONGOC_ERROR_STREAM:
        return mg_stream_status(c, e, started);
    case MONGOC_ERROR_PROTOCOL:
        c->net = MG_NET_UNKNOWN;
        return TRIFLE_EDRIVER;
    case MONGOC_ERROR_CLIENT:
        switch (e->code) {
        case MONGOC_ERROR_CLIENT_AUTHENTICATE:
            return TRIFLE_EAUTH;
        case MONGOC_ERROR_STREAM_NAME_RESOLUTION:
        case MONGOC_ERROR_STREAM_SOCKET:
        case MONGOC_ERROR_STREAM_CONNECT:
        case MONGOC_ERROR_STREAM_NOT_ESTABLISHED:
            return mg_stream_status(c, e, started);
        case MONGOC_ERROR_CLIENT_NOT_READY:
            c->net = MG_NET_NOT_SENT;
            return TRIFLE_ECONN;
        default:
            return TRIFLE_EDRIVER;
        }
    case MONGOC_ERROR_SASL:
    case MONGOC_ERROR_SCRAM:
        return TRIFLE_EAUTH;
    default:
        break;
    }
    if (mg_server_domain(e->domain)) {
        switch (e->code) {
        case MG_AUTHENTICATION_FAILED:
        case MG_UNAUTHORIZED:
            return TRIFLE_EAUTH;
        case MG_MAX_TIME_MS_EXPIRED:
        case MG_NETWORK_TIMEOUT:
        case MG_EXCEEDED_TIME_LIMIT:
            return TRIFLE_ETIMEDOUT;
        default:
            break;
        }
    }
    return TRIFLE_EDRIVER;
}

/* Report a libmongoc failure of `what` (a short phrase naming the operation and its target). */
static int mg_fail(trifle_conn *c, const bson_error_t *e, int64_t started, const char *what,
                   trifle_error *err)
{
    int code = mg_status(c, e, started);
    const char *cause = "";

    switch (code) {
    case TRIFLE_ECONN:
        cause = "cannot reach the server: ";
        break;
    case TRIFLE_EAUTH:
        cause = "the server rejected the credentials: ";
        break;
    case TRIFLE_ETIMEDOUT:
        cause = "timed out: ";
        break;
    default:
        break;
    }
    c->host->error_set(err, code, (int)e->code, "mongo: %s: %s%s (%u.%u)", what, cause, e->message,
                       (unsigned)e->domain, (unsigned)e->code);
    return code;
}

static int mg_oom(trifle_conn *c, trifle_error *err)
{
    c->host->error_set(err, TRIFLE_ENOMEM, 0, "mongo: out of memory");
    return TRIFLE_ENOMEM;
}

/* ---------------------------------------------------------------------------------------------
 * Connection
 */

/* A URI option libmongoc 1.23 knows (mongoc-uri.c, mongoc_uri_apply_options). Unknown options
 * would only be warned about and dropped, so they are refused here with a clear message. */
static int mg_uri_option_known(const char *name)
{
    static const char *const special[] = {
        "w",
        "readpreferencetags",
        "authmechanism",
        "authsource",
        "compressors",
        "readconcernlevel",
        "appname",
        "gssapiservicename",
        "srvservicename",
        "maxstalenessseconds",
        "authmechanismproperties",
    };
    size_t i;

    if (mongoc_uri_option_is_int32(name) || mongoc_uri_option_is_int64(name) ||
        mongoc_uri_option_is_bool(name) || mongoc_uri_option_is_utf8(name))
        return 1;
    for (i = 0; i < sizeof(special) / sizeof(special[0]); i++)
        if (strcasecmp(name, special[i]) == 0)
            return 1;
    return 0;
}

/* Percent-encode everything but RFC 3986's unreserved characters. */
static void mg_put_pct(drv_buf *b, const char *s)
{
    char esc[3];

    for (; *s != '\0'; s++)
        drv_buf_put(b, esc, tu_pct_encode_char(esc, (unsigned char)*s));
}

/* MongoDB collection names: not empty, no '$' or NUL, not in the system namespace. */
static int mg_collection_ok(const char *db, const char *name)
{
    return name[0] != '\0' && strchr(name, '$') == NULL && strncmp(name, "system.", 7) != 0 &&
           strlen(db) + 1 + strlen(name) <= MG_NS_MAX;
}

/* A decimal integer 0..MG_EXPIRE_MAX. */
static int mg_parse_expire(const char *s, int64_t *out)
{
    int64_t v = 0;
    size_t i;

    if (s[0] == '\0')
        return -1;
    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
        if (v > MG_EXPIRE_MAX)
            return -1;
    }
    *out = v;
    return 0;
}

static int mg_parse_bool(const char *s, int *out)
{
    if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
        *out = 1;
    else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

static void mg_client_free(trifle_conn *c)
{
    if (c->ping != NULL)
        mongoc_collection_destroy(c->ping);
    if (c->coll != NULL)
        mongoc_collection_destroy(c->coll);
    if (c->client != NULL)
        mongoc_client_destroy(c->client);
    c->ping = c->coll = NULL;
    c->client = NULL;
}

/* A new client for c->uri (nothing is sent until it is used). */
static int mg_client(trifle_conn *c, bson_error_t *e)
{
    c->client = mongoc_client_new_from_uri_with_error(c->uri, e);
    if (c->client == NULL)
        return -1;
    (void)mongoc_client_set_error_api(c->client, MONGOC_ERROR_API_VERSION_2);
    c->coll = mongoc_client_get_collection(c->client, c->db, c->coll_name);
    c->ping = mongoc_client_get_collection(c->client, c->db, c->ping_name);
    return 0;
}

/* After a network error: start over with a new client. libmongoc would reconnect by itself, but
 * a single-threaded client keeps a server that failed a check in a 5 s cooldown ("No servers yet
 * eligible for rescan"), and a restarted server must be usable at the next call (ERRATA I15). */
static void mg_reconnect(trifle_conn *c)
{
    bson_error_t e;

    c->host->log(TRIFLE_LOG_INFO, MG_NAME, "reconnecting to %s after a network error", c->db);
    mg_client_free(c);
    if (mg_client(c, &e) != 0) /* the same URI worked before: only memory can fail here */
        c->host->log(TRIFLE_LOG_ERROR, MG_NAME, "cannot create a client: %s", e.message);
}

/* Every operation starts here: a client exists (mg_reconnect() may have failed to make one). */
static int mg_ready(trifle_conn *c, trifle_error *err)
{
    bson_error_t e;

    if (c->client != NULL)
        return 0;
    if (mg_client(c, &e) == 0)
        return 0;
    c->host->error_set(err, TRIFLE_ECONN, (int)e.code, "mongo: cannot create a client: %s",
                       e.message);
    return TRIFLE_ECONN;
}

static void mg_close(trifle_conn *c)
{
    if (c == NULL)
        return;
    mg_client_free(c);
    if (c->uri != NULL)
        mongoc_uri_destroy(c->uri);
    c->host->free(c->db);
    c->host->free(c->coll_name);
    c->host->free(c->ping_name);
    c->host->free(c->path.p);
    c->host->free(c->skip);
    c->host->free(c->slots);
    c->host->free(c->chain);
    c->host->free(c);
}

/* buildInfo: proves the server is reachable and the credentials good (libmongoc authenticates
 * when it connects), and tells FerretDB (ERRATA B1-B3) from MongoDB. */
static int mg_probe(trifle_conn *c, trifle_error *err)
{
    bson_t cmd = BSON_INITIALIZER, reply;
    bson_error_t e;
    bson_iter_t it;
    int64_t t0 = mg_now_ms();
    int rc = 0;

    BSON_APPEND_INT32(&cmd, "buildInfo", 1);
    if (!mongoc_client_command_simple(c->client, "admin", &cmd, NULL, &reply, &e)) {
        rc = mg_fail(c, &e, t0, "connect", err);
        goto done;
    }
    if (bson_iter_init(&it, &reply))
        while (bson_iter_next(&it))
            if (strncmp(bson_iter_key(&it), "ferretdb", 8) == 0)
                c->ferret = 1;
    if (c->ferret)
        c->host->log(TRIFLE_LOG_INFO, MG_NAME,
                     "server is FerretDB: one update command per item (ERRATA B3); $inc is not "
                     "atomic across clients there (ERRATA B1)");
done:
    bson_destroy(&reply);
    bson_destroy(&cmd);
    return rc;
}

static int mg_open(trifle_conn **out, const trifle_host_api *host, const char *url,
                   const trifle_open_params *params, const char *const *opts, trifle_error *err)
{
    static const char *const prefixes[] = {"mongodb://", "mongodb+srv://", NULL};
    const char *coll = MG_DEFAULT_COLLECTION, *ping = NULL, *rest, *db;
    drv_buf text = {NULL, 0, 0, NULL, NULL};
    trifle_conn *c = NULL;
    bson_error_t e;
    int mode, bulk = 1, rc = 0, n_params = 0;
    int64_t expire_after = 0;
    size_t i;

    if (out == NULL || host == NULL)
        return TRIFLE_EINVAL;
    *out = NULL;
    if ((rc = drv_open_url(host, params, url, prefixes, "mongodb://… or mongodb+srv://…", &mode,
                           err)) != 0)
        return rc;
    if (strchr(url, '?') != NULL) {
        host->error_set(err, TRIFLE_ECONFIG, 0,
                        "invalid driver URL: parameters come as options, not in the URL");
        return TRIFLE_ECONFIG;
    }
    for (i = 0; opts != NULL && opts[i] != NULL && opts[i + 1] != NULL; i += 2) {
        const char *name = opts[i], *value = opts[i + 1];
        if (drv_opt_is_core(name)) {
            /* the core's: the separator is already inside bucket ids */
        } else if (strcmp(name, "collection") == 0) {
            coll = value;
        } else if (strcmp(name, "ping_collection") == 0) {
            ping = value;
        } else if (strcmp(name, "expire_after") == 0) {
            if (mg_parse_expire(value, &expire_after) != 0) {
                host->error_set(err, TRIFLE_ECONFIG, 0, "invalid option expire_after: %s", value);
                return TRIFLE_ECONFIG;
            }
        } else if (strcmp(name, "bulk_write") == 0) {
            if (mg_parse_bool(value, &bulk) != 0) {
                host->error_set(err, TRIFLE_ECONFIG, 0, "invalid option bulk_write: %s", value);
                return TRIFLE_ECONFIG;
            }
        } else if (mg_uri_option_known(name)) {
            n_params++; /* a libmongoc URI option: goes into the URI below */
        } else {
            host->error_set(err, TRIFLE_ECONFIG, 0, "invalid driver URL: unknown parameter %s",
                            name);
            return TRIFLE_ECONFIG;
        }
    }

    c = host->alloc(sizeof(*c));
    if (c == NULL) {
        host->error_set(err, TRIFLE_ENOMEM, 0, "mongo: out of memory");
        return TRIFLE_ENOMEM;
    }
    memset(c, 0, sizeof(*c));
    c->host = host;
    c->mode = mode;
    c->bulk = bulk;
    c->expire_after = expire_after;
    drv_buf_init(&c->path, host, &c->oom);
    drv_buf_init(&text, host, &c->oom);

    /* the URL again, with libmongoc's options as its query string ("/" must precede "?") */
    drv_buf_put(&text, url, strlen(url));
    rest = strstr(url, "://") + 3;
    if (n_params > 0) {
        int first = 1;
        if (strchr(rest, '/') == NULL)
            drv_buf_put(&text, "/", 1);
        for (i = 0; opts[i] != NULL && opts[i + 1] != NULL; i += 2) {
            if (strncmp(opts[i], "trifle.", 7) == 0 || !mg_uri_option_known(opts[i]))
                continue;
            drv_buf_put(&text, first ? "?" : "&", 1);
            mg_put_pct(&text, opts[i]);
            drv_buf_put(&text, "=", 1);
            mg_put_pct(&text, opts[i + 1]);
            first = 0;
        }
    }
    drv_buf_zero(&text);
    if (c->oom) {
        rc = mg_oom(c, err);
        goto done;
    }
    c->uri = mongoc_uri_new_with_error(text.p, &e);
    if (c->uri == NULL) {
        host->error_set(err, TRIFLE_ECONFIG, (int)e.code, "invalid driver URL: %s", e.message);
        rc = TRIFLE_ECONFIG;
        goto done;
    }
    db = mongoc_uri_get_database(c->uri);
    if (db == NULL || db[0] == '\0')
        db = MG_DEFAULT_DB;
    c->db = mg_strdup(c, db);
    c->coll_name = mg_strdup(c, coll);
    if (ping != NULL) {
        c->ping_name = mg_strdup(c, ping);
    } else if ((c->ping_name = host->alloc(strlen(coll) + 6)) != NULL) {
        memcpy(c->ping_name, coll, strlen(coll));
        memcpy(c->ping_name + strlen(coll), "_ping", 6);
    } else {
        c->oom = 1;
    }
    if (c->oom) {
        rc = mg_oom(c, err);
        goto done;
    }
    if (!mg_collection_ok(c->db, c->coll_name) || !mg_collection_ok(c->db, c->ping_name)) {
        host->error_set(err, TRIFLE_ECONFIG, 0, "invalid collection name: %s",
                        mg_collection_ok(c->db, c->coll_name) ? c->ping_name : c->coll_name);
        rc = TRIFLE_ECONFIG;
        goto done;
    }
    if (mongoc_uri_get_appname(c->uri) == NULL)
        (void)mongoc_uri_set_appname(c->uri, "trifle");
    c->socket_timeout_ms = mongoc_uri_get_option_as_int32(c->uri, MONGOC_URI_SOCKETTIMEOUTMS,
                                                          MONGOC_DEFAULT_SOCKETTIMEOUTMS);
    if (mg_client(c, &e) != 0) {
        host->error_set(err, TRIFLE_ECONFIG, (int)e.code, "invalid driver URL: %s", e.message);
        rc = TRIFLE_ECONFIG;
        goto done;
    }
    rc = mg_probe(c, err);

done:
    host->free(text.p);
    if (rc != 0) {
        mg_close(c);
        return rc;
    }
    *out = c;
    return TRIFLE_OK;
}

/* ---------------------------------------------------------------------------------------------
 * setup / drop
 */

/* createIndexes for one index; `name` is the server's default name for `keys`. */
static int mg_index(trifle_conn *c, const char *coll, const char *name, const char *const *keys,
                    const int *dirs, size_t n, int unique, int ttl, trifle_error *err)
{
    bson_t cmd = BSON_INITIALIZER, arr, idx, key, reply;
    bson_error_t e;
    int64_t t0 = mg_now_ms();
    size_t i;
    int rc = 0;

    BSON_APPEND_UTF8(&cmd, "createIndexes", coll);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &idx);
    BSON_APPEND_DOCUMENT_BEGIN(&idx, "key", &key);
    for (i = 0; i < n; i++)
        BSON_APPEND_INT32(&key, keys[i], dirs[i]);
    bson_append_document_end(&idx, &key);
    BSON_APPEND_UTF8(&idx, "name", name);
    if (unique)
        BSON_APPEND_BOOL(&idx, "unique", true);
    if (ttl)
        BSON_APPEND_INT32(&idx, "expireAfterSeconds", 0);
    bson_append_document_end(&arr, &idx);
    bson_append_array_end(&cmd, &arr);
    if (!mongoc_client_write_command_with_opts(c->client, c->db, &cmd, NULL, &reply, &e)) {
        if (ttl && mg_server_domain(e.domain) && e.code == MG_NOT_IMPLEMENTED) {
            /* ERRATA B2: FerretDB v1 has no TTL indexes; expire_at is written all the same */
            c->host->log(TRIFLE_LOG_WARN, MG_NAME,
                         "TTL index %s on %s.%s not created, so documents will not expire "
                         "(expire_at is still written): %s",
                         name, c->db, coll, e.message);
        } else {
            char what[300];
            (void)snprintf(what, sizeof(what), "creating index %s on %s.%s", name, c->db, coll);
            rc = mg_fail(c, &e, t0, what, err);
        }
    }
    bson_destroy(&reply);
    bson_destroy(&cmd);
    return rc;
}

static int mg_setup_once(trifle_conn *c, trifle_error *err)
{
    static const char *const keys[] = {"key", "granularity", "at"};
    static const char *const names[] = {
        [TRIFLE_ID_FULL] = "key_1",
        [TRIFLE_ID_PARTIAL] = "key_1_at_-1",
        [TRIFLE_ID_SEPARATED] = "key_1_granularity_1_at_-1",
    };
    static const char *const ttl_key[] = {"expire_at"};
    const char *k[3];
    int dirs[3], one = 1, rc;
    size_t n = 0;

    k[n] = keys[0], dirs[n++] = 1;
    if (c->mode == TRIFLE_ID_SEPARATED)
        k[n] = keys[1], dirs[n++] = 1;
    if (c->mode != TRIFLE_ID_FULL)
        k[n] = keys[2], dirs[n++] = -1;
    if ((rc = mg_index(c, c->coll_name, names[c->mode], k, dirs, n, 1, 0, err)) != 0 ||
        (rc = mg_index(c, c->ping_name, "key_1", keys, &one, 1, 1, 0, err)) != 0)
        return rc;
    if (c->expire_after > 0 &&
        ((rc = mg_index(c, c->coll_name, "expire_at_1", ttl_key, &one, 1, 0, 1, err)) != 0 ||
         (rc = mg_index(c, c->ping_name, "expire_at_1", ttl_key, &one, 1, 0, 1, err)) != 0))
        return rc;
    return 0;
}

/* Whether a failed operation that may be repeated is worth one more attempt: after a network
 * error libmongoc has dropped the broken connection and the next attempt reconnects (ERRATA
 * I15); a timeout is not repeated (the server is slow, not gone). */
static int mg_retry_ok(const trifle_conn *c, int rc)
{
    return rc != 0 && c->net != MG_NET_NONE && rc != TRIFLE_ETIMEDOUT;
}

/* Run `call` (which sets rc), once more when mg_retry_ok(). */
#define MG_RETRY(c, call)                               \
    do {                                                \
        int attempt_;                                   \
        for (attempt_ = 0; attempt_ < 2; attempt_++) {  \
            (c)->net = MG_NET_NONE;                     \
            rc = (call);                                \
            if (!mg_retry_ok((c), rc) || attempt_ == 1) \
                break;                                  \
            mg_reconnect(c);                            \
            if ((c)->client == NULL)                    \
                break;                                  \
        }                                               \
    } while (0)

/* setup or drop: once() on a ready connection, through MG_RETRY. */
static int mg_admin(trifle_conn *c, int (*once)(trifle_conn *, trifle_error *), trifle_error *err)
{
    int rc;

    if (c == NULL)
        return TRIFLE_EINVAL;
    if ((rc = mg_ready(c, err)) != 0)
        return rc;
    MG_RETRY(c, once(c, err));
    return rc;
}

static int mg_setup(trifle_conn *c, trifle_error *err)
{
    return mg_admin(c, mg_setup_once, err);
}

static int mg_drop_one(trifle_conn *c, const char *coll, trifle_error *err)
{
    bson_t cmd = BSON_INITIALIZER, reply;
    bson_error_t e;
    int64_t t0 = mg_now_ms();
    int rc = 0;

    BSON_APPEND_UTF8(&cmd, "drop", coll);
    if (!mongoc_client_write_command_with_opts(c->client, c->db, &cmd, NULL, &reply, &e) &&
        !(mg_server_domain(e.domain) && e.code == MG_NAMESPACE_NOT_FOUND)) {
        char what[300];
        (void)snprintf(what, sizeof(what), "dropping %s.%s", c->db, coll);
        rc = mg_fail(c, &e, t0, what, err);
    }
    bson_destroy(&reply);
    bson_destroy(&cmd);
    return rc;
}

static int mg_drop_once(trifle_conn *c, trifle_error *err)
{
    int rc = mg_drop_one(c, c->coll_name, err);

    return rc != 0 ? rc : mg_drop_one(c, c->ping_name, err);
}

static int mg_drop(trifle_conn *c, trifle_error *err)
{
    return mg_admin(c, mg_drop_once, err);
}

/* ---------------------------------------------------------------------------------------------
 * Paths: which leaves of an item cannot be stored beside the others (ERRATA I2)
 */

/* A path looked for by mg_find(). */
typedef struct mg_path {
    const char *p;
    size_t n;
} mg_path;

/* bsearch() order of an mg_path and a leaf. */
static int mg_find_cmp(const void *key, const void *leaf)
{
    const mg_path *q = key;
    const char *path = ((const trifle_leaf *)leaf)->path;

    return drv_pathcmp(q->p, q->n, path, strlen(path));
}

/* The index of the leaf whose path is q[0..n) in the sorted leaves [0, hi), or -1. */
static ptrdiff_t mg_find(const trifle_leaf *l, size_t hi, const char *q, size_t n)
{
    mg_path key = {q, n};
    const trifle_leaf *hit = hi > 0 ? bsearch(&key, l, hi, sizeof(*l), mg_find_cmp) : NULL;

    return hit != NULL ? hit - l : -1;
}

/* Mark in c->skip every leaf that is a dotted prefix of another leaf ("a" beside "a.b"): in a
 * document `a` is either a number or an object. Leaves are sorted, so a prefix sorts before its
 * extensions. Returns how many were marked, with the first pair found in pair[0] (the prefix)
 * and pair[1], or -1 when out of memory. */
static long mg_mark_prefixes(trifle_conn *c, const trifle_leaf *l, size_t n, size_t pair[2])
{
    long marked = 0;
    size_t i;

    if (n == 0)
        return 0;
    if (drv_array_reserve(c->host, (void **)&c->skip, &c->cap_skip, n, 1) != 0) {
        c->oom = 1;
        return -1;
    }
    memset(c->skip, 0, n);
    for (i = 1; i < n; i++) {
        const char *p = l[i].path, *dot;
        for (dot = strchr(p, '.'); dot != NULL; dot = strchr(dot + 1, '.')) {
            ptrdiff_t j = mg_find(l, i, p, (size_t)(dot - p));
            if (j >= 0 && !c->skip[j]) {
                if (marked++ == 0) {
                    pair[0] = (size_t)j;
                    pair[1] = i;
                }
                c->skip[j] = 1;
            }
        }
    }
    return marked;
}

/* ---------------------------------------------------------------------------------------------
 * Writes (SPEC §7.3, §7.8)
 */

static int mg_check_bucket(trifle_conn *c, const trifle_bucket *b, size_t i, const char *what,
                           trifle_error *err)
{
    if (b->id == NULL || (c->mode == TRIFLE_ID_SEPARATED && b->granularity == NULL)) {
        c->host->error_set(err, TRIFLE_EINVAL, 0, "mongo: %s %zu has no %s", what, i,
                           b->id == NULL ? "identifier" : "granularity");
        return TRIFLE_EINVAL;
    }
    if (b->at > MG_AT_MAX || b->at < -MG_AT_MAX) {
        c->host->error_set(err, TRIFLE_EINVAL, 0, "mongo: time out of range: %lld",
                           (long long)b->at);
        return TRIFLE_EINVAL;
    }
    return 0;
}

static void mg_filter(const trifle_conn *c, const trifle_bucket *b, bson_t *doc)
{
    BSON_APPEND_UTF8(doc, "key", b->id);
    if (c->mode == TRIFLE_ID_SEPARATED)
        BSON_APPEND_UTF8(doc, "granularity", b->granularity);
    if (c->mode != TRIFLE_ID_FULL)
        BSON_APPEND_DATE_TIME(doc, "at", b->at * 1000);
}

/* `{$inc: {"data.<path>": d, …}}` or `{$set: {"data.<path>": v, …}}`, plus `expire_at` in $set.
 * Returns 0, or -1 when a key or the document is too large for BSON (or memory ran out). */
static int mg_update(trifle_conn *c, const trifle_entry *it, int is_set, bson_t *doc)
{
    bson_t op;
    size_t l;
    int ok = 1;

    ok = ok && bson_append_document_begin(doc, is_set ? "$set" : "$inc", 4, &op);
    for (l = 0; ok && l < it->n_leaves; l++) {
        double v = it->leaves[l].value;
        if (c->skip[l])
            continue;
        c->path.len = 0;
        drv_buf_put(&c->path, "data.", 5);
        drv_buf_put(&c->path, it->leaves[l].path, strlen(it->leaves[l].path));
        if (c->oom || c->path.len > INT32_MAX)
            return -1;
        ok = bson_append_double(&op, c->path.p, (int)c->path.len, v == 0 ? 0.0 : v);
    }
    if (ok && is_set && c->expire_after > 0)
        ok = BSON_APPEND_DATE_TIME(&op, "expire_at", (it->bucket.at + c->expire_after) * 1000);
    ok = ok && bson_append_document_end(doc, &op);
    if (ok && !is_set && c->expire_after > 0) {
        ok = bson_append_document_begin(doc, "$set", 4, &op) &&
             BSON_APPEND_DATE_TIME(&op, "expire_at", (it->bucket.at + c->expire_after) * 1000) &&
             bson_append_document_end(doc, &op);
    }
    return ok ? 0 : -1;
}

/* Build filter and update of item i. */
static int mg_item(trifle_conn *c, const trifle_entry *items, size_t i, int is_set, bson_t *filter,
                   bson_t *update, trifle_error *err)
{
    const trifle_entry *it = &items[i];
    size_t pair[2] = {0, 0};
    long marked = mg_mark_prefixes(c, it->leaves, it->n_leaves, pair);

    if (marked < 0)
        return mg_oom(c, err);
    if (marked > 0)
        c->host->log(TRIFLE_LOG_WARN, MG_NAME,
                     "%s: leaf \"%s\" not written: \"%s\" of the same item makes it an object, "
                     "and the object wins (SPEC §4.3; %ld such leaves)",
                     it->bucket.id, it->leaves[pair[0]].path, it->leaves[pair[1]].path, marked);
    mg_filter(c, &it->bucket, filter);
    if (mg_update(c, it, is_set, update) != 0) {
        if (c->oom)
            return mg_oom(c, err);
        c->host->error_set(err, TRIFLE_EINVAL, 0, "mongo: the update of %s is too large for BSON",
                           it->bucket.id);
        return TRIFLE_EINVAL;
    }
    return 0;
}

/* The first entry of reply.writeErrors: its index, code and message. 0 when there is none. */
static int mg_write_error(const bson_t *reply, int64_t *index, int32_t *code, const char **msg)
{
    bson_iter_t it, arr, doc;

    *index = 0;
    *code = 0;
    *msg = "";
    if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &arr) || !bson_iter_next(&arr) || !BSON_ITER_HOLDS_DOCUMENT(&arr) ||
        !bson_iter_recurse(&arr, &doc))
        return 0;
    while (bson_iter_next(&doc)) {
        const char *k = bson_iter_key(&doc);
        if (strcmp(k, "index") == 0 && BSON_ITER_HOLDS_NUMBER(&doc))
            *index = bson_iter_as_int64(&doc);
        else if (strcmp(k, "code") == 0 && BSON_ITER_HOLDS_NUMBER(&doc))
            *code = (int32_t)bson_iter_as_int64(&doc);
        else if (strcmp(k, "errmsg") == 0 && BSON_ITER_HOLDS_UTF8(&doc))
            *msg = bson_iter_utf8(&doc, NULL);
    }
    return 1;
}

/* Items a bulk reply confirms: every successful updateOne either matched one document or
 * upserted one. */
static size_t mg_bulk_done(const bson_t *reply)
{
    bson_iter_t it;
    int64_t n = 0;

    if (bson_iter_init_find(&it, reply, "nMatched") && BSON_ITER_HOLDS_NUMBER(&it))
        n += bson_iter_as_int64(&it);
    if (bson_iter_init_find(&it, reply, "nUpserted") && BSON_ITER_HOLDS_NUMBER(&it))
        n += bson_iter_as_int64(&it);
    return n > 0 ? (size_t)n : 0;
}

/* Outcome of one round of writes from item `start`. */
typedef struct mg_round {
    size_t done;       /* items applied in this round */
    int has_write_err; /* a writeErrors entry names item start + done */
    int32_t code;      /* its server code */
    const char *msg;   /* its message (in reply) */
} mg_round;

/* Items [start, n) as one ordered bulk write. */
static int mg_round_bulk(trifle_conn *c, const trifle_entry *items, size_t start, size_t n,
                         int is_set, mg_round *r, bson_t *reply, bson_error_t *e, trifle_error *err)
{
    bson_t bopts = BSON_INITIALIZER, uopts = BSON_INITIALIZER;
    mongoc_bulk_operation_t *bulk;
    size_t i;
    int rc = 0;

    BSON_APPEND_BOOL(&bopts, "ordered", true);
    BSON_APPEND_BOOL(&uopts, "upsert", true);
    bulk = mongoc_collection_create_bulk_operation_with_opts(c->coll, &bopts);
    for (i = start; i < n && rc == 0; i++) {
        bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER;
        rc = mg_item(c, items, i, is_set, &filter, &update, err);
        if (rc == 0 &&
            !mongoc_bulk_operation_update_one_with_opts(bulk, &filter, &update, &uopts, e)) {
            c->host->error_set(err, TRIFLE_EINVAL, (int)e->code,
                               "mongo: the update of %s was refused: %s", items[i].bucket.id,
                               e->message);
            rc = TRIFLE_EINVAL;
        }
        bson_destroy(&filter);
        bson_destroy(&update);
    }
    if (rc == 0) {
        int64_t index;
        if (mongoc_bulk_operation_execute(bulk, reply, e) != 0) {
            r->done = n - start;
        } else if (mg_write_error(reply, &index, &r->code, &r->msg)) {
            r->has_write_err = 1;
            r->done = index >= 0 && (size_t)index < n - start ? (size_t)index : 0;
            rc = MG_ROUND_FAILED;
        } else {
            r->done = mg_bulk_done(reply);
            if (r->done > n - start)
                r->done = 0;
            rc = MG_ROUND_FAILED;
        }
    } else {
        bson_init(reply);
    }
    mongoc_bulk_operation_destroy(bulk);
    bson_destroy(&bopts);
    bson_destroy(&uopts);
    return rc;
}

/* Item `start` alone, as one update command. */
static int mg_round_one(trifle_conn *c, const trifle_entry *items, size_t start, int is_set,
                        mg_round *r, bson_t *reply, bson_error_t *e, trifle_error *err)
{
    bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, uopts = BSON_INITIALIZER;
    int rc;

    BSON_APPEND_BOOL(&uopts, "upsert", true);
    rc = mg_item(c, items, start, is_set, &filter, &update, err);
    if (rc == 0) {
        if (mongoc_collection_update_one(c->coll, &filter, &update, &uopts, reply, e)) {
            r->done = 1;
        } else {
            int64_t index;
            r->has_write_err = mg_write_error(reply, &index, &r->code, &r->msg);
            rc = MG_ROUND_FAILED;
        }
    } else {
        bson_init(reply);
    }
    bson_destroy(&filter);
    bson_destroy(&update);
    bson_destroy(&uopts);
    return rc;
}

static int mg_write(trifle_conn *c, const trifle_entry *items, size_t n, int is_set,
                    trifle_write_result *res, trifle_error *err)
{
    const int bulk = c != NULL && c->bulk && !c->ferret;
    size_t i, l, start = 0, dup_at = SIZE_MAX;
    ptrdiff_t failed = -1;
    int rc = 0, unknown = 0, reconnected = 0;

    if (c == NULL || (n > 0 && items == NULL))
        return TRIFLE_EINVAL;
    for (i = 0; i < n; i++) {
        if ((rc = mg_check_bucket(c, &items[i].bucket, i, "item", err)) != 0)
            goto done;
        if (items[i].n_leaves == 0 || items[i].leaves == NULL) {
            c->host->error_set(err, TRIFLE_EINVAL, 0, "mongo: item %zu has no leaves", i);
            rc = TRIFLE_EINVAL;
            goto done;
        }
        for (l = 0; l < items[i].n_leaves; l++) {
            if (items[i].leaves[l].path == NULL ||
                (l > 0 && strcmp(items[i].leaves[l - 1].path, items[i].leaves[l].path) >= 0)) {
                c->host->error_set(err, TRIFLE_EINVAL, 0,
                                   "mongo: leaves of item %zu are not unique and sorted by path",
                                   i);
                rc = TRIFLE_EINVAL;
                goto done;
            }
        }
    }
    c->oom = 0;
    while (start < n) {
        mg_round r = {0, 0, 0, ""};
        bson_t reply;
        bson_error_t e;
        int64_t t0 = mg_now_ms();

        c->net = MG_NET_NONE;
        if ((rc = mg_ready(c, err)) != 0)
            break;
        rc = bulk ? mg_round_bulk(c, items, start, n, is_set, &r, &reply, &e, err)
                  : mg_round_one(c, items, start, is_set, &r, &reply, &e, err);
        start += r.done;
        if (rc == 0) {
            bson_destroy(&reply);
            continue;
        }
        if (rc != MG_ROUND_FAILED) { /* refused before anything was sent */
            bson_destroy(&reply);
            break;
        }
        if (r.has_write_err && r.code == MG_DUPLICATE_KEY && dup_at != start) {
            /* two upserts created the same new bucket at once: this one now finds it (§7.4) */
            dup_at = start;
            c->host->log(TRIFLE_LOG_DEBUG, MG_NAME, "%s: retrying a concurrent upsert",
                         items[start].bucket.id);
            bson_destroy(&reply);
            rc = 0;
            continue;
        }
        if (r.has_write_err) {
            if (mg_data_code(r.code)) {
                c->host->error_set(err, TRIFLE_EDATA, r.code,
                                   "mongo: stored data prevents the update of %s: %s (code %d)",
                                   items[start].bucket.id, r.msg, (int)r.code);
                rc = TRIFLE_EDATA;
                failed = (ptrdiff_t)start;
            } else {
                bson_error_t we;
                char what[64];
                we.domain = MONGOC_ERROR_SERVER;
                we.code = (uint32_t)r.code;
                (void)snprintf(we.message, sizeof(we.message), "%s", r.msg);
                (void)snprintf(what, sizeof(what), "update of item %zu", start);
                rc = mg_fail(c, &we, t0, what, err);
            }
        } else {
            char what[300];
            (void)snprintf(what, sizeof(what), "update in %s.%s", c->db, c->coll_name);
            rc = mg_fail(c, &e, t0, what, err);
            if (c->net == MG_NET_NOT_SENT && rc != TRIFLE_ETIMEDOUT && !reconnected) {
                /* nothing was sent, so the items can go again on a new connection (I15) */
                reconnected = 1;
                mg_reconnect(c);
                bson_destroy(&reply);
                rc = 0;
                continue;
            }
            unknown = c->net == MG_NET_UNKNOWN;
        }
        bson_destroy(&reply);
        break;
    }

done:
    if (rc != 0)
        TRIFLE_WRITE_RESULT_SET(res, start, failed, unknown);
    return rc;
}

DRV_DEFINE_INC_SET(mg_inc, mg_set, mg_write)

/* ---------------------------------------------------------------------------------------------
 * Reads
 */

/* A stored number as a finite double (SPEC §7.8: int32, int64, double, decimal128). */
static int mg_number(const trifle_conn *c, const bson_iter_t *it, double *out)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOUBLE:
        *out = bson_iter_double(it);
        return *out - *out == 0; /* finite */
    case BSON_TYPE_INT32:
        *out = (double)bson_iter_int32(it);
        return 1;
    case BSON_TYPE_INT64:
        *out = (double)bson_iter_int64(it);
        return 1;
    case BSON_TYPE_DECIMAL128: {
        bson_decimal128_t d;
        char text[BSON_DECIMAL128_STRING];
        if (!bson_iter_decimal128(it, &d))
            return 0;
        bson_decimal128_to_string(&d, text);
        return c->host->parse_double(text, strlen(text), out) == 0; /* NaN, Inf: skipped */
    }
    default:
        return 0;
    }
}

/* A key usable as path segments: not empty, no empty dotted segment (foreign data only). */
static int mg_key_ok(const char *k)
{
    size_t n = strlen(k);

    return n > 0 && k[0] != '.' && k[n - 1] != '.' && strstr(k, "..") == NULL;
}

/* Emit the numeric leaves below `it` (a document's members) for bucket `index`, their paths
 * prefixed with c->path[0..base). */
static int mg_flatten(trifle_conn *c, bson_iter_t *it, size_t base, int depth, trifle_sink *sink,
                      size_t index)
{
    int rc = 0;

    while (rc == 0 && bson_iter_next(it)) {
        const char *k = bson_iter_key(it);
        bson_iter_t child;
        double v;

        if (!mg_key_ok(k))
            continue;
        c->path.len = base;
        if (base > 0)
            drv_buf_put(&c->path, ".", 1);
        drv_buf_put(&c->path, k, strlen(k));
        drv_buf_zero(&c->path);
        if (c->oom)
            return TRIFLE_ENOMEM;
        if (BSON_ITER_HOLDS_DOCUMENT(it)) {
            if (depth < MG_MAX_DEPTH && bson_iter_recurse(it, &child))
                rc = mg_flatten(c, &child, c->path.len, depth + 1, sink, index);
        } else if (mg_number(c, it, &v)) {
            rc = c->host->emit(sink, index, c->path.p, v);
        }
    }
    return rc;
}

/* The `data` member of a stored document, flattened into bucket `index`. */
static int mg_emit_data(trifle_conn *c, const bson_t *doc, trifle_sink *sink, size_t index)
{
    bson_iter_t it, child;

    if (!bson_iter_init_find(&it, doc, "data") || !BSON_ITER_HOLDS_DOCUMENT(&it) ||
        !bson_iter_recurse(&it, &child))
        return 0;
    return mg_flatten(c, &child, 0, 1, sink, index);
}

/* The identifier of bucket b as this mode stores it. */
static uint32_t mg_bucket_hash(const trifle_conn *c, const trifle_bucket *b)
{
    const char *g = c->mode == TRIFLE_ID_SEPARATED ? b->granularity : "";
    int64_t at = c->mode == TRIFLE_ID_FULL ? 0 : b->at;

    return drv_bucket_hash(b->id, strlen(b->id), g, strlen(g), at);
}

static int mg_bucket_is(const trifle_conn *c, const trifle_bucket *b, const char *id, const char *g,
                        int64_t at)
{
    return strcmp(b->id, id) == 0 &&
           (c->mode != TRIFLE_ID_SEPARATED || strcmp(b->granularity, g) == 0) &&
           (c->mode == TRIFLE_ID_FULL || b->at == at);
}

/* Hash every bucket: c->slots (mask + 1 entries) hold the first bucket index + 1 of an
 * identifier, c->chain the next index + 1 with the same identifier (a get may repeat one). */
static int mg_index_buckets(trifle_conn *c, const trifle_bucket *b, size_t n, size_t *mask)
{
    size_t size = 16, i;

    while (size < 2 * n)
        size *= 2;
    if (n > UINT32_MAX - 1 ||
        drv_array_reserve(c->host, (void **)&c->slots, &c->cap_slots, size, sizeof(*c->slots)) !=
            0 ||
        drv_array_reserve(c->host, (void **)&c->chain, &c->cap_chain, n, sizeof(*c->chain)) != 0) {
        c->oom = 1;
        return TRIFLE_ENOMEM;
    }
    memset(c->slots, 0, size * sizeof(*c->slots));
    *mask = size - 1;
    for (i = 0; i < n; i++) {
        size_t s = mg_bucket_hash(c, &b[i]) & *mask;
        c->chain[i] = 0;
        for (;; s = (s + 1) & *mask) {
            size_t j = c->slots[s];
            if (j == 0) {
                c->slots[s] = (uint32_t)(i + 1);
                break;
            }
            if (mg_bucket_is(c, &b[i], b[j - 1].id, b[j - 1].granularity, b[j - 1].at)) {
                while (c->chain[j - 1] != 0) /* append: emission follows bucket order */
                    j = c->chain[j - 1];
                c->chain[j - 1] = i + 1;
                break;
            }
        }
    }
    return 0;
}

/* Emit one stored document into every bucket of [lo, hi) it belongs to. */
static int mg_match(trifle_conn *c, const bson_t *doc, const trifle_bucket *b, size_t lo, size_t hi,
                    size_t mask, trifle_sink *sink)
{
    const char *id = NULL, *g = "";
    int64_t at = 0;
    bson_iter_t it;
    size_t s, j, g_len;
    int rc = 0;

    if (!bson_iter_init(&it, doc))
        return 0;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (strcmp(k, "key") == 0 && BSON_ITER_HOLDS_UTF8(&it)) {
            id = bson_iter_utf8(&it, NULL);
        } else if (strcmp(k, "granularity") == 0 && BSON_ITER_HOLDS_UTF8(&it)) {
            g = bson_iter_utf8(&it, NULL);
        } else if (strcmp(k, "at") == 0 && BSON_ITER_HOLDS_DATE_TIME(&it)) {
            int64_t ms = bson_iter_date_time(&it);
            if (ms % 1000 != 0)
                return 0; /* not a bucket start */
            at = ms / 1000;
        }
    }
    if (id == NULL)
        return 0;
    if (c->mode == TRIFLE_ID_FULL)
        at = 0;
    g_len = c->mode == TRIFLE_ID_SEPARATED ? strlen(g) : 0;
    s = drv_bucket_hash(id, strlen(id), g, g_len, at) & mask;
    for (; (j = c->slots[s]) != 0; s = (s + 1) & mask) {
        if (!mg_bucket_is(c, &b[j - 1], id, g, at))
            continue;
        for (; j != 0 && rc == 0; j = c->chain[j - 1])
            if (j - 1 >= lo && j - 1 < hi)
                rc = mg_emit_data(c, doc, sink, j - 1);
        break;
    }
    return rc;
}

/* One find for buckets [lo, hi). *emitted says whether anything reached the sink (a retry would
 * then count it twice). */
static int mg_find_chunk(trifle_conn *c, const trifle_bucket *b, size_t lo, size_t hi, size_t mask,
                         trifle_sink *sink, int *emitted, trifle_error *err)
{
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj, f, arr;
    const bson_t *doc, *edoc = NULL;
    mongoc_cursor_t *cur;
    bson_error_t e;
    int64_t t0 = mg_now_ms();
    char idx[16];
    const char *key;
    size_t i, k;
    int rc = 0;

    /* {key: {$in: [...]}, [granularity: {$in: [...]}], [at: {$in: [...]}]}; a value repeated by
     * the next bucket (a timeline's key and granularity) is listed once */
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "key", &f);
    BSON_APPEND_ARRAY_BEGIN(&f, "$in", &arr);
    for (i = lo, k = 0; i < hi; i++) {
        if (i > lo && strcmp(b[i].id, b[i - 1].id) == 0)
            continue; /* timelines repeat one key */
        bson_uint32_to_string((uint32_t)k++, &key, idx, sizeof(idx));
        BSON_APPEND_UTF8(&arr, key, b[i].id);
    }
    bson_append_array_end(&f, &arr);
    bson_append_document_end(&filter, &f);
    if (c->mode == TRIFLE_ID_SEPARATED) {
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "granularity", &f);
        BSON_APPEND_ARRAY_BEGIN(&f, "$in", &arr);
        for (i = lo, k = 0; i < hi; i++) {
            if (i > lo && strcmp(b[i].granularity, b[i - 1].granularity) == 0)
                continue;
            bson_uint32_to_string((uint32_t)k++, &key, idx, sizeof(idx));
            BSON_APPEND_UTF8(&arr, key, b[i].granularity);
        }
        bson_append_array_end(&f, &arr);
        bson_append_document_end(&filter, &f);
    }
    if (c->mode != TRIFLE_ID_FULL) {
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "at", &f);
        BSON_APPEND_ARRAY_BEGIN(&f, "$in", &arr);
        for (i = lo, k = 0; i < hi; i++) {
            bson_uint32_to_string((uint32_t)k++, &key, idx, sizeof(idx));
            BSON_APPEND_DATE_TIME(&arr, key, b[i].at * 1000);
        }
        bson_append_array_end(&f, &arr);
        bson_append_document_end(&filter, &f);
    }
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "_id", 0);
    BSON_APPEND_INT32(&proj, "key", 1);
    if (c->mode == TRIFLE_ID_SEPARATED)
        BSON_APPEND_INT32(&proj, "granularity", 1);
    if (c->mode != TRIFLE_ID_FULL)
        BSON_APPEND_INT32(&proj, "at", 1);
    BSON_APPEND_INT32(&proj, "data", 1);
    bson_append_document_end(&opts, &proj);
    BSON_APPEND_INT64(&opts, "batchSize", (int64_t)(hi - lo));

    cur = mongoc_collection_find_with_opts(c->coll, &filter, &opts, NULL);
    while (rc == 0 && mongoc_cursor_next(cur, &doc)) {
        rc = mg_match(c, doc, b, lo, hi, mask, sink);
        *emitted = 1; /* conservatively: the document may have emitted leaves */
    }
    if (rc == 0 && mongoc_cursor_error_document(cur, &e, &edoc)) {
        char what[300];
        (void)snprintf(what, sizeof(what), "find in %s.%s", c->db, c->coll_name);
        rc = mg_fail(c, &e, t0, what, err);
    } else if (rc != 0) {
        c->net = MG_NET_NONE;
        if (rc == TRIFLE_ENOMEM)
            (void)mg_oom(c, err);
        else
            c->host->error_set(err, rc, 0, "mongo: cannot deliver the leaves read");
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    bson_destroy(&opts);
    return rc;
}

static int mg_get(trifle_conn *c, const trifle_bucket *buckets, size_t n, trifle_sink *sink,
                  trifle_error *err)
{
    size_t mask = 0, lo, i;
    int rc;

    if (c == NULL || (n > 0 && (buckets == NULL || sink == NULL)))
        return TRIFLE_EINVAL;
    if (n == 0)
        return TRIFLE_OK;
    for (i = 0; i < n; i++)
        if ((rc = mg_check_bucket(c, &buckets[i], i, "bucket", err)) != 0)
            return rc;
    c->oom = 0;
    if (mg_index_buckets(c, buckets, n, &mask) != 0)
        return mg_oom(c, err);
    for (lo = 0; lo < n;) {
        size_t hi = lo, bytes = 0;
        int emitted = 0, attempt;

        /* one find, unless the identifiers would not fit one 16 MB command */
        while (hi < n && (hi == lo || bytes < MG_FILTER_BYTES))
            bytes += strlen(buckets[hi++].id) + 32;
        for (attempt = 0; attempt < 2; attempt++) {
            c->net = MG_NET_NONE;
            if ((rc = mg_ready(c, err)) != 0)
                return rc;
            rc = mg_find_chunk(c, buckets, lo, hi, mask, sink, &emitted, err);
            if (!mg_retry_ok(c, rc) || emitted || attempt == 1)
                break;
            mg_reconnect(c);
        }
        if (rc != 0)
            return rc;
        lo = hi;
    }
    return TRIFLE_OK;
}

/* ---------------------------------------------------------------------------------------------
 * ping / scan (SPEC §3.5, §7.8)
 */

static int mg_leaf_cmp(const void *a, const void *b)
{
    return strcmp(((const trifle_leaf *)a)->path, ((const trifle_leaf *)b)->path);
}

/* Append sorted leaves v[0..n) below path offset `off` as nested documents into doc. */
static int mg_nest(bson_t *doc, const trifle_leaf *v, size_t n, size_t off, int depth)
{
    size_t i = 0;

    if (depth > MG_MAX_DEPTH)
        return -1;
    while (i < n) {
        const char *p = v[i].path + off, *dot = strchr(p, '.');
        size_t seg, j;
        bson_t child;

        if (dot == NULL) {
            if (!bson_append_double(doc, p, -1, v[i].value == 0 ? 0.0 : v[i].value))
                return -1;
            i++;
            continue;
        }
        /* the paths below segment p[0..seg) are contiguous: a prefix range of sorted strings */
        seg = (size_t)(dot - p);
        for (j = i + 1;
             j < n && strncmp(v[j].path + off, p, seg) == 0 && v[j].path[off + seg] == '.'; j++)
            ;
        if (seg > INT32_MAX || !bson_append_document_begin(doc, p, (int)seg, &child) ||
            mg_nest(&child, v + i, j - i, off + seg + 1, depth + 1) != 0 ||
            !bson_append_document_end(doc, &child))
            return -1;
        i = j;
    }
    return 0;
}

static int mg_ping_once(trifle_conn *c, const char *key, int64_t at, const bson_t *data,
                        trifle_error *err)
{
    bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, uopts = BSON_INITIALIZER, set,
           reply;
    bson_error_t e;
    int64_t t0 = mg_now_ms();
    int rc = 0;

    BSON_APPEND_UTF8(&filter, "key", key);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_DATE_TIME(&set, "at", at * 1000);
    BSON_APPEND_DOCUMENT(&set, "data", data);
    if (c->expire_after > 0)
        BSON_APPEND_DATE_TIME(&set, "expire_at", (at + c->expire_after) * 1000);
    bson_append_document_end(&update, &set);
    BSON_APPEND_BOOL(&uopts, "upsert", true);
    if (!mongoc_collection_update_one(c->ping, &filter, &update, &uopts, &reply, &e)) {
        char what[300];
        (void)snprintf(what, sizeof(what), "ping of %s in %s.%s", key, c->db, c->ping_name);
        rc = mg_fail(c, &e, t0, what, err);
    }
    bson_destroy(&reply);
    bson_destroy(&filter);
    bson_destroy(&update);
    bson_destroy(&uopts);
    return rc;
}

static int mg_ping(trifle_conn *c, const char *key, int64_t at, const trifle_leaf *leaves, size_t n,
                   trifle_error *err)
{
    trifle_leaf *v = NULL;
    bson_t data = BSON_INITIALIZER;
    size_t i, pair[2] = {0, 0};
    int rc;

    if (c == NULL || key == NULL || (n > 0 && leaves == NULL))
        return TRIFLE_EINVAL;
    if (at > MG_AT_MAX || at < -MG_AT_MAX) {
        c->host->error_set(err, TRIFLE_EINVAL, 0, "mongo: time out of range: %lld", (long long)at);
        return TRIFLE_EINVAL;
    }
    c->oom = 0;
    if (n > 0 && (v = c->host->alloc(n * sizeof(*v))) == NULL) {
        rc = mg_oom(c, err);
        goto done;
    }
    for (i = 0; i < n; i++) {
        if (leaves[i].path == NULL || leaves[i].path[0] == '\0' ||
            leaves[i].value - leaves[i].value != 0) {
            c->host->error_set(err, TRIFLE_EINVAL, 0, "mongo: invalid ping leaf %zu", i);
            rc = TRIFLE_EINVAL;
            goto done;
        }
        v[i] = leaves[i];
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), mg_leaf_cmp);
    for (i = 1; i < n; i++) {
        if (strcmp(v[i - 1].path, v[i].path) == 0) {
            c->host->error_set(err, TRIFLE_EINVAL, 0, "duplicate path \"%s\"", v[i].path);
            rc = TRIFLE_EINVAL;
            goto done;
        }
    }
    /* one document cannot hold "a" beside "a.b" */
    if ((rc = (int)mg_mark_prefixes(c, v, n, pair)) != 0) {
        if (rc < 0) {
            rc = mg_oom(c, err);
        } else {
            c->host->error_set(err, TRIFLE_EINVAL, 0, "conflicting paths \"%s\" and \"%s\"",
                               v[pair[0]].path, v[pair[1]].path);
            rc = TRIFLE_EINVAL;
        }
        goto done;
    }
    if (mg_nest(&data, v, n, 0, 0) != 0) {
        c->host->error_set(err, TRIFLE_EINVAL, 0, "mongo: the ping of %s is too large for BSON",
                           key);
        rc = TRIFLE_EINVAL;
        goto done;
    }
    if ((rc = mg_ready(c, err)) != 0)
        goto done;
    MG_RETRY(c, mg_ping_once(c, key, at, &data, err));

done:
    bson_destroy(&data);
    c->host->free(v);
    return rc;
}

/* Unix seconds, floored, of a stored ping time: a Date, or (foreign data) a number of seconds. */
static int mg_ping_time(const bson_iter_t *it, int64_t *out)
{
    int64_t ms;
    double d;

    switch (bson_iter_type(it)) {
    case BSON_TYPE_DATE_TIME:
        ms = bson_iter_date_time(it);
        *out = ms / 1000 - (ms % 1000 < 0);
        return 1;
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
        *out = bson_iter_as_int64(it);
        return 1;
    case BSON_TYPE_DOUBLE:
        d = bson_iter_double(it);
        if (!(d >= -9.2e18 && d <= 9.2e18))
            return 0;
        *out = (int64_t)d - ((double)(int64_t)d > d);
        return 1;
    default:
        return 0;
    }
}

static int mg_scan_once(trifle_conn *c, const char *key, int64_t *at_out, trifle_sink *sink,
                        trifle_error *err)
{
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort, proj;
    const bson_t *doc, *edoc = NULL;
    mongoc_cursor_t *cur;
    bson_error_t e;
    bson_iter_t it;
    int64_t t0 = mg_now_ms(), at = 0;
    int rc = 0;

    BSON_APPEND_UTF8(&filter, "key", key);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "at", -1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "_id", 0);
    BSON_APPEND_INT32(&proj, "at", 1);
    BSON_APPEND_INT32(&proj, "data", 1);
    bson_append_document_end(&opts, &proj);
    BSON_APPEND_INT64(&opts, "limit", 1);
    cur = mongoc_collection_find_with_opts(c->ping, &filter, &opts, NULL);
    if (!mongoc_cursor_next(cur, &doc)) {
        if (mongoc_cursor_error_document(cur, &e, &edoc)) {
            char what[300];
            (void)snprintf(what, sizeof(what), "scan of %s in %s.%s", key, c->db, c->ping_name);
            rc = mg_fail(c, &e, t0, what, err);
        } else {
            c->host->error_set(err, TRIFLE_ENOTFOUND, 0, "no ping for key %s", key);
            rc = TRIFLE_ENOTFOUND;
        }
        goto done;
    }
    if (!bson_iter_init_find(&it, doc, "at") || !mg_ping_time(&it, &at)) {
        c->host->error_set(err, TRIFLE_EDRIVER, 0, "mongo: the ping of %s has no valid at", key);
        rc = TRIFLE_EDRIVER;
        goto done;
    }
    c->oom = 0;
    rc = mg_emit_data(c, doc, sink, 0);
    if (rc != 0) {
        if (rc == TRIFLE_ENOMEM)
            (void)mg_oom(c, err);
        else
            c->host->error_set(err, rc, 0, "mongo: cannot deliver the ping of key %s", key);
        goto done;
    }
    *at_out = at;

done:
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    bson_destroy(&opts);
    return rc;
}

static int mg_scan(trifle_conn *c, const char *key, int64_t *at_out, trifle_sink *sink,
                   trifle_error *err)
{
    int rc;

    if (c == NULL || key == NULL || at_out == NULL || sink == NULL)
        return TRIFLE_EINVAL;
    if ((rc = mg_ready(c, err)) != 0)
        return rc;
    /* nothing is emitted before the one document is in hand, so a retry never counts twice */
    MG_RETRY(c, mg_scan_once(c, key, at_out, sink, err));
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * The plugin's one export
 */

static const char *const mg_schemes[] = {"mongodb", "mongodb+srv", NULL};

static const trifle_driver mg_driver = {
    TRIFLE_DRIVER_HEADER,
    .name = MG_NAME,
    .version = "1.0.0",
    /* EXACT_DOUBLES: values are BSON doubles and $inc adds them as doubles */
    .caps = TRIFLE_CAP_MODE_PARTIAL | TRIFLE_CAP_MODE_SEPARATED | TRIFLE_CAP_PING | TRIFLE_CAP_TTL |
            TRIFLE_CAP_SETUP | TRIFLE_CAP_EXACT_DOUBLES,
    .schemes = mg_schemes,
    .open_params = mg_open,
    .close = mg_close,
    .setup = mg_setup,
    .inc = mg_inc,
    .set = mg_set,
    .get = mg_get,
    .ping = mg_ping,
    .scan = mg_scan,
    .drop = mg_drop,
};

TRIFLE_DRIVER_DEFINE_WITH_INIT(mongo, mg_driver, mg_init(host))
