/**
 * @file trifle/driver.h
 * @brief The storage driver plugin ABI (docs/driver-guide.md; what drivers store:
 * docs/storage-format.md). A driver is a shared object `trifle_<name>.so` that exports exactly one
 * symbol, `trifle_driver_<name>_init`, defined with TRIFLE_DRIVER_DEFINE().
 *
 * Drivers include this header and link only their database client: never libtrifle. Everything a
 * driver needs from the host (memory, errors, logging, number text, result delivery) arrives in the
 * trifle_host_api table.
 *
 * ### Contract in brief
 * - The core produces every item, including the `__system__key__` items: drivers hold no tracking,
 *   granularity or buffering logic and store exactly the identifiers they are given.
 * - One `inc` or `set` call is one transaction (or one script, or one ordered bulk write).
 * - `get` and `scan` deliver leaves through host->emit(); nothing is allocated across the boundary.
 * - A connection is used by one thread at a time, but may move between threads between calls.
 *
 * ### Versioning
 * TRIFLE_DRIVER_ABI_MAJOR changes when a member is removed, reordered or retyped, or when
 * trifle_leaf, trifle_bucket, trifle_entry or trifle_write_result change layout. MINOR changes when
 * members are appended to trifle_driver or trifle_host_api. A driver built for an older minor loads
 * (missing members read as NULL); a newer minor or another major is refused.
 *
 * | minor | adds |
 * |-------|------|
 * | 1.1   | write_marked(), mark_read(), TRIFLE_CAP_JOURNAL_MARK |
 * | 1.2   | calls(), TRIFLE_CAP_CALLS |
 * | 1.3   | open_params() with the typed trifle_open_params, unload(), init hook result honoured |
 * | 1.4   | query(), TRIFLE_CAP_QUERY, trifle_answer_fn |
 */
#ifndef TRIFLE_DRIVER_H
#define TRIFLE_DRIVER_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

TRIFLE_BEGIN_DECLS

#define TRIFLE_DRIVER_ABI_MAJOR 1 /**< see the file comment */
#define TRIFLE_DRIVER_ABI_MINOR 4 /**< see the file comment */

/** @name Capability bits (trifle_driver.caps). Unknown bits are ignored by the core. */
/**@{*/
#define TRIFLE_CAP_MODE_PARTIAL (1u << 0)   /**< stores the partial identifier mode */
#define TRIFLE_CAP_MODE_SEPARATED (1u << 1) /**< stores the separated identifier mode */
#define TRIFLE_CAP_PING (1u << 2)           /**< implements ping and scan (beam/scan) */
#define TRIFLE_CAP_TTL (1u << 3)            /**< honours an expiry option (mongo expire_after) */
#define TRIFLE_CAP_ATOMIC_BATCH (1u << 4)   /**< an inc/set call is all-or-nothing */
#define TRIFLE_CAP_SETUP (1u << 5)          /**< setup creates tables/indexes (not just a ping) */
/** Every finite double is stored and summed without loss down to the subnormals (5e-324).
 *  Redis does not declare it: HINCRBYFLOAT keeps 17 decimal places (drivers/redis/README.md). */
#define TRIFLE_CAP_EXACT_DOUBLES (1u << 6)
/** ABI 1.1: write_marked() and mark_read() are implemented, so a buffer flush and the journal
 *  position it covers commit in one transaction and a replay after a crash applies nothing twice
 *  (docs/durability.md). A driver without it gets at-least-once replay. */
#define TRIFLE_CAP_JOURNAL_MARK (1u << 7)
/** ABI 1.2: calls() is implemented and the driver takes whole write calls (key, instant, values,
 *  operation), bucketing them itself or leaving that to a server (drivers/http). The core then
 *  routes every track and assert to calls() and never to inc()/set(), which may answer
 *  TRIFLE_ENOTSUP; get() still reads buckets. Conformance cases that store pre-built items
 *  through inc()/set() do not apply to such a driver. */
#define TRIFLE_CAP_CALLS (1u << 8)
/** ABI 1.4: query() is implemented: the driver answers a whole metrics query (docs/series.md,
 *  "Queries") itself, e.g. by handing it to a server whose own engine and stored transponders
 *  apply (drivers/http: `POST /api/v1/metrics/query`). trifle_query() then checks the request,
 *  sends it to query() and builds its result from the answer, instead of reading the series with
 *  get() and computing it in the library. */
#define TRIFLE_CAP_QUERY (1u << 9)
/**@}*/

/** Identifier modes (docs/storage-format.md, "Identifiers"): trifle_open_params.id_mode of
 *  open_params() (ABI 1.3); a driver without open_params() gets it as the option `trifle.joined`
 *  of open(). */
enum trifle_id_mode {
    TRIFLE_ID_FULL = 0,     /**< `key<sep>G<sep>unix` in one column/field */
    TRIFLE_ID_PARTIAL = 1,  /**< `key<sep>G` plus a timestamp */
    TRIFLE_ID_SEPARATED = 2 /**< key, granularity and timestamp apart */
};

/** The driver's connection; its layout is private to the driver. */
typedef struct trifle_conn trifle_conn;
/** The core's result collector; opaque to drivers, fed through trifle_host_api.emit. */
typedef struct trifle_sink trifle_sink;

/** One numeric leaf: a packed (dotted) path and its value, e.g. {"meta.duration", 2.5}. */
typedef struct trifle_leaf {
    const char *path; /**< packed path, valid UTF-8, no empty segment */
    double value;     /**< finite */
} trifle_leaf;

/**
 * One bucket identifier. `id` is what the driver stores in its key column/field/hash name for the
 * mode the connection was opened with; the other members are there for the columns of the partial
 * and separated layouts:
 *
 * | mode      | id                    | also stored            |
 * |-----------|-----------------------|------------------------|
 * | full      | `event::1h::1736935200` | —                    |
 * | partial   | `event::1h`           | at                     |
 * | separated | `event`               | granularity, at        |
 */
typedef struct trifle_bucket {
    const char *id;          /**< identifier string for the connection's mode (see above) */
    const char *key;         /**< metric key as given by the caller */
    const char *granularity; /**< granularity label, "1h" */
    int64_t at;              /**< bucket start, Unix seconds (UTC) */
} trifle_bucket;

/** One write item: a bucket and the leaves to add (inc) or replace (set). */
typedef struct trifle_entry {
    trifle_bucket bucket;      /**< distinct within one call */
    const trifle_leaf *leaves; /**< sorted by path in byte order, paths unique, n_leaves >= 1 */
    size_t n_leaves;           /**< number of leaves */
} trifle_entry;

/** Outcome of a failed inc/set (docs/driver-guide.md). The core zero-fills it and sets
 *  failed_item = -1. */
typedef struct trifle_write_result {
    size_t struct_size; /**< sizeof(trifle_write_result) as the core knows it */
    size_t applied;     /**< number of leading items known to be applied */
    ptrdiff_t
        failed_item;     /**< index of the item rejected because of stored data (EDATA), else -1 */
    int outcome_unknown; /**< 1 when the request was sent but the reply was lost */
} trifle_write_result;

/**
 * A journal position (ABI 1.1): every record of the journal @p name up to sequence number @p seq
 * is stored once this mark is. The core writes the marks of one journal in increasing order.
 */
typedef struct trifle_mark {
    const char *name; /**< journal name: 1-64 bytes of `[A-Za-z0-9_.:/-]` */
    uint64_t seq;     /**< 1 .. 2^63-1, so it fits a signed 64-bit column */
} trifle_mark;

/** Operation of a trifle_call (ABI 1.2). */
enum trifle_call_op {
    TRIFLE_CALL_TRACK = 0, /**< add the values (trifle_track) */
    TRIFLE_CALL_ASSERT = 1 /**< replace the values (trifle_assert) */
};

/** trifle_call.flags: the call was made with TRIFLE_UNTRACKED (the system key counts it under
 *  `keys.__untracked__`). Same value as TRIFLE_UNTRACKED of trifle.h. */
#define TRIFLE_CALL_UNTRACKED (1u << 0)

/**
 * One whole write call as the application made it (ABI 1.2, TRIFLE_CAP_CALLS): nothing is
 * bucketed, and the system key's items are not among the leaves: whoever buckets the call
 * (the driver, or the server behind it) also keeps the system key.
 */
typedef struct trifle_call {
    const char *key;           /**< metric key, checked by the core (never the system key) */
    int64_t at;                /**< the instant, Unix seconds (UTC), not floored */
    int op;                    /**< a trifle_call_op */
    unsigned flags;            /**< TRIFLE_CALL_* bits */
    const trifle_leaf *leaves; /**< sorted by path in byte order, paths unique, n_leaves >= 1 */
    size_t n_leaves;           /**< number of leaves */
    /** The buffer's journal the call is recorded in (its 32-hex-digit name), or NULL when the
     *  call is not journaled. With @p seq it names the call for good: a replay after a crash
     *  hands the same call again with the same origin and seq, so a driver whose far side
     *  deduplicates by that name applies it once (drivers/http). */
    const char *origin;
    uint64_t seq; /**< the call's journal sequence number (1, 2, ...), 0 with origin NULL */
} trifle_call;

/* ---- ABI 1.3: typed open parameters (kit) ------------------------------------------------- */

/**
 * What the core decided about a connection before opening it (ABI 1.3), handed to
 * trifle_driver.open_params(). The core owns it; it is valid during the call only, so a driver
 * copies what it keeps. Members are only appended: read one only when struct_size covers it
 * (TRIFLE_OPEN_PARAMS_HAS()).
 */
typedef struct trifle_open_params {
    size_t struct_size;    /**< sizeof(trifle_open_params) as the core knows it */
    int id_mode;           /**< the connection's enum trifle_id_mode, already checked against
                                the driver's TRIFLE_CAP_MODE_* bits */
    const char *separator; /**< identifier separator, 1-16 bytes, no NUL ("::"); it is already
                                inside every trifle_bucket.id, so most drivers ignore it */
} trifle_open_params;

/** 1 when the trifle_open_params @p p (non-NULL) has the member @p m. */
#define TRIFLE_OPEN_PARAMS_HAS(p, m) \
    ((p)->struct_size >= offsetof(trifle_open_params, m) + sizeof((p)->m))

/* ---- end ABI 1.3 typed open parameters ---------------------------------------------------- */

/**
 * Receives the answer of a query() (ABI 1.4), once, before query() returns 0. The text is copied.
 * @param ctx The pointer query() was given.
 * @param status The HTTP status of the answer: 200, 400, 422 or a 5xx.
 * @param body The answer's JSON text in the shape `POST /api/v1/metrics/query` answers
 *        (docs/http-api.md): `{"data":{...}}` for 200, `{"errors":{"status":"error","error":
 *        "<message>",<extra fields>}}` for 422, `{"errors":{"detail":"..."}}` otherwise.
 *        Need not be NUL-terminated. The core checks it and turns a malformed one into a
 *        TRIFLE_QUERY_FAILED outcome (TRIFLE_EDRIVER) naming what is wrong.
 * @param len Length of @p body.
 * @return 0, or TRIFLE_ENOMEM, which the driver returns as it is.
 */
typedef int (*trifle_answer_fn)(void *ctx, int status, const char *body, size_t len);

/** Services the core offers to a driver. Valid until the process exits; callable from any thread.
 */
typedef struct trifle_host_api {
    uint32_t abi_major;                       /**< TRIFLE_DRIVER_ABI_MAJOR of the core */
    uint32_t abi_minor;                       /**< TRIFLE_DRIVER_ABI_MINOR of the core */
    size_t struct_size;                       /**< sizeof(trifle_host_api) in the core */
    void *(*alloc)(size_t size);              /**< the application's allocator (may fail: NULL) */
    void *(*realloc)(void *ptr, size_t size); /**< likewise */
    void (*free)(void *ptr);                  /**< likewise; NULL is fine */
    /** Fill @p err (which may be NULL) with a code, the store's native code and a message. */
    void (*error_set)(trifle_error *err, int code, int native, const char *fmt, ...)
        TRIFLE_PRINTF(4, 5);
    /** Log through the application's handler; @p driver is the driver's name. */
    void (*log)(int level, const char *driver, const char *fmt, ...) TRIFLE_PRINTF(3, 4);
    /**
     * Deliver one leaf of bucket @p index (get) or of the ping (scan, index 0; path without the
     * `data.` prefix). The path is copied. Emitting a path again for the same index adds the
     * values, so rows a driver must merge (legacy copies, duplicate documents) may simply be
     * emitted one by one. Returns 0, or TRIFLE_ENOMEM, which the driver returns as it is.
     */
    int (*emit)(trifle_sink *sink, size_t index, const char *path, double value);
    /**
     * Write @p v as canonical number text (docs/storage-format.md: shortest round trip, `1e+21`,
     * `0` for -0)
     * into @p buf (at least 32 bytes) with a terminating NUL; returns the length. Independent of
     * the process locale.
     */
    size_t (*format_double)(char *buf, double v);
    /**
     * Parse decimal number text (`[+-]digits[.digits][e[+-]digits]`, whole string, no spaces)
     * independently of the locale. Returns 0 and sets *out to a finite value, or TRIFLE_EINVAL.
     */
    int (*parse_double)(const char *text, size_t len, double *out);
} trifle_host_api;

/**
 * The driver's operation table: one static const object per plugin. Members are only appended
 * (bump TRIFLE_DRIVER_ABI_MINOR and add conformance cases); everything up to `drop` is ABI 1.0; all
 * members up to `scan` are required, except `ping` and `scan` when TRIFLE_CAP_PING is not
 * declared; `drop` is optional. ABI 1.1 appends `write_marked` and `mark_read`: both present or
 * both NULL, and present exactly when TRIFLE_CAP_JOURNAL_MARK is declared. ABI 1.2 appends `calls`,
 * present exactly when TRIFLE_CAP_CALLS is declared. ABI 1.3 appends `open_params` (when set, the
 * core calls it instead of `open`, which may then be NULL) and the optional `unload`.
 * ABI 1.4 appends `query`, present exactly when TRIFLE_CAP_QUERY is declared.
 */
typedef struct trifle_driver {
    uint32_t abi_major;  /**< TRIFLE_DRIVER_ABI_MAJOR the driver was built with */
    uint32_t abi_minor;  /**< TRIFLE_DRIVER_ABI_MINOR the driver was built with */
    size_t struct_size;  /**< sizeof(trifle_driver) the driver was built with */
    const char *name;    /**< "postgres": equals the `<name>` of the file and the entry symbol */
    const char *version; /**< the driver's own version, "1.0.0" */
    uint64_t caps;       /**< TRIFLE_CAP_* bits */
    /** URL schemes the driver serves, NULL-terminated: {"postgres", "postgresql", NULL}. */
    const char *const *schemes;

    /**
     * Connect (no DDL); the ABI 1.0 form, called only when open_params is NULL (required then).
     * @p url is the driver URL without its query string; @p opts is a NULL-terminated list of
     * name/value pairs: first the core's `trifle.joined` ("full", "partial", "separated") and
     * `trifle.separator`, then every URL query parameter in order, percent-decoded. Otherwise as
     * open_params().
     * @param out   receives the connection
     * @param host  the core's services (valid until exit)
     * @param url   driver URL without its query string
     * @param opts  name/value pairs as above, NULL-terminated
     * @param err   receives the error (through host->error_set)
     * @return 0, or ECONN, EAUTH, ECONFIG
     */
    int (*open)(trifle_conn **out, const trifle_host_api *host, const char *url,
                const char *const *opts, trifle_error *err);
    /** Release the connection and everything it holds. NULL and half-open connections are fine. */
    void (*close)(trifle_conn *conn);
    /** Create tables/indexes if missing; idempotent; never drops or alters data. */
    int (*setup)(trifle_conn *conn, trifle_error *err);
    /** Add each leaf to the stored value, all items in one transaction (docs/driver-guide.md). */
    int (*inc)(trifle_conn *conn, const trifle_entry *items, size_t n, trifle_write_result *res,
               trifle_error *err);
    /** Replace each leaf, keeping the bucket's other leaves; one transaction (driver guide). */
    int (*set)(trifle_conn *conn, const trifle_entry *items, size_t n, trifle_write_result *res,
               trifle_error *err);
    /**
     * Read the numeric leaves of each bucket and emit them with the bucket's index; a missing
     * bucket emits nothing; non-numeric stored values are skipped. One round trip where the store
     * allows (sqlite may chunk statements).
     */
    int (*get)(trifle_conn *conn, const trifle_bucket *buckets, size_t n, trifle_sink *sink,
               trifle_error *err);
    /** Replace the ping of @p key with @p at (not floored) and the flat `data` leaves. */
    int (*ping)(trifle_conn *conn, const char *key, int64_t at, const trifle_leaf *leaves, size_t n,
                trifle_error *err);
    /** Read the ping of @p key: *at_out and its numeric data leaves (emit index 0, no `data.`
     *  prefix). TRIFLE_ENOTFOUND when there is none. */
    int (*scan)(trifle_conn *conn, const char *key, int64_t *at_out, trifle_sink *sink,
                trifle_error *err);
    /**
     * Optional (may be NULL): remove everything setup created for this connection's namespace
     * (its table and ping table, prefix keys, collections). trifle-conformance uses it to clean
     * up the namespace of each case; applications normally never call it.
     */
    int (*drop)(trifle_conn *conn, trifle_error *err);
    /**
     * Optional (ABI 1.1, with TRIFLE_CAP_JOURNAL_MARK): in ONE transaction, replace the leaves of
     * @p set_items (as set() does), then add the leaves of @p inc_items (as inc() does), then store
     * @p mark (the journal's previous seq is replaced). All or nothing: on failure nothing is
     * stored, res->applied is 0, and an EDATA names the rejected item in res->failed_item, counted
     * over @p set_items first and then @p inc_items. Either list may be empty; a bucket may appear
     * in both. The mark lives where setup() or this call creates it (a table or key next to the
     * data, removed by drop()). When the reply is lost, set res->outcome_unknown: the core then
     * reads the mark back to learn whether the call committed.
     */
    int (*write_marked)(trifle_conn *conn, const trifle_entry *set_items, size_t n_set,
                        const trifle_entry *inc_items, size_t n_inc, const trifle_mark *mark,
                        trifle_write_result *res, trifle_error *err);
    /**
     * Optional (ABI 1.1, with write_marked): the stored seq of journal @p name into *seq, 0 when
     * no mark of that name (or no mark storage at all) exists yet.
     */
    int (*mark_read)(trifle_conn *conn, const char *name, uint64_t *seq, trifle_error *err);
    /**
     * Optional (ABI 1.2, with TRIFLE_CAP_CALLS): apply @p n whole calls in the order given. On
     * failure res->applied counts the leading calls known to be applied; the rest were not, or
     * res->outcome_unknown is set: they may have been applied and sending them again could apply
     * them twice, so the core (the buffer) does not resend them. Leave it 0 when a resend is safe
     * (the far side deduplicates calls by origin and seq). An EDATA names the rejected call in
     * res->failed_item. A driver that sends calls elsewhere must never apply a call twice: it
     * retries only what it can prove unapplied or what the far side deduplicates
     * (drivers/http: Idempotency-Key, call ids).
     */
    int (*calls)(trifle_conn *conn, const trifle_call *calls, size_t n, trifle_write_result *res,
                 trifle_error *err);
    /* ---- ABI 1.3 (kit): typed open parameters and the unload hook --------------------- */
    /**
     * Optional (ABI 1.3): connect (no DDL), with the identifier mode and separator typed in
     * @p params instead of strings among the options. When set, the core calls it and never
     * open(), which may be NULL. Unknown parameters are the driver's call (sqlite and redis
     * reject them; postgres and mongo pass them on to their client library); the URL parameters
     * the core reads itself (`joined`, `separator`, `system_tracking`) never reach @p opts. On
     * failure *out is NULL, or a half-open connection that close() accepts.
     * @param out     receives the connection
     * @param host    the core's services (valid until exit)
     * @param url     driver URL without its query string
     * @param params  identifier mode and separator (valid during the call)
     * @param opts    NULL-terminated name/value pairs: every URL query parameter in order,
     *                percent-decoded; no `trifle.*` entries
     * @param err     receives the error (through host->error_set)
     * @return 0, or ECONN, EAUTH, ECONFIG
     */
    int (*open_params)(trifle_conn **out, const trifle_host_api *host, const char *url,
                       const trifle_open_params *params, const char *const *opts,
                       trifle_error *err);
    /**
     * Optional (ABI 1.3): undo what the entry's init hook set up (a client library's global
     * state). The loader calls it once, under its mutex, when it forgets the driver: from
     * trifle_shutdown() before dlclose() (also with TRIFLE_NO_DLCLOSE=1), and when it refuses a
     * table the entry returned for a reason other than its ABI version or struct_size (then the
     * table's layout, and so this member, is unknown). No connection of the driver is open then.
     * Loading the driver again calls the entry, and so the init hook, again.
     */
    void (*unload)(void);
    /* ---- end ABI 1.3 -------------------------------------------------------------------- */
    /* ---- ABI 1.4: whole queries ---------------------------------------------------------- */
    /**
     * Optional (ABI 1.4, with TRIFLE_CAP_QUERY): answer the metrics query @p request (JSON text
     * of @p len bytes, not NUL-terminated) through @p answer, once. The core has checked the
     * request's fields up to the transponder (docs/series.md, "Order of checks"), except whether
     * the granularity is configured: the far side's configuration decides that, and the rest of
     * the checks. `from` and `to` arrive as RFC 3339 UTC text (`2026-01-24T00:00:00Z`), the
     * other members as the caller gave them. The answer carries the outcome of the query,
     * success or refusal; a failure to get one at all (connection, authentication, a status
     * outside the answer's set) is the driver's error code, which the query reports as a 500
     * outcome (a 400 for TRIFLE_EINVAL) with the driver's message. A query is a read: a driver
     * may resend it freely.
     */
    int (*query)(trifle_conn *conn, const char *request, size_t len, trifle_answer_fn answer,
                 void *ctx, trifle_error *err);
    /* APPEND ONLY below this line: bump TRIFLE_DRIVER_ABI_MINOR and add conformance cases. */
} trifle_driver;

/** Signature of the entry symbol `trifle_driver_<name>_init`. */
typedef int (*trifle_driver_init_fn)(const trifle_host_api *host, const trifle_driver **out,
                                     trifle_error *err);

/** @def TRIFLE_DRIVER_EXPORT
 *  Gives the entry symbol default visibility, so a plugin built with -fvisibility=hidden exports
 *  it and nothing else. Used by TRIFLE_DRIVER_DEFINE(). */
#if defined(__GNUC__) || defined(__clang__)
#define TRIFLE_DRIVER_EXPORT __attribute__((visibility("default")))
#else
#define TRIFLE_DRIVER_EXPORT
#endif

/** The header fields of a trifle_driver initialiser: `{TRIFLE_DRIVER_HEADER, .name = "x", ...}`. */
#define TRIFLE_DRIVER_HEADER                                                    \
    .abi_major = TRIFLE_DRIVER_ABI_MAJOR, .abi_minor = TRIFLE_DRIVER_ABI_MINOR, \
    .struct_size = sizeof(trifle_driver)

/**
 * Emit the plugin's one export. The entry refuses a host of another ABI major (the host refuses a
 * driver of another major too), runs the init hook, and then hands out the static table. The
 * loader calls the entry once per load, under its mutex; the table's unload() undoes the hook.
 *
 * @param name       the bare driver name (`postgres`)
 * @param table      the static const trifle_driver
 * @param init_hook  an int expression evaluated once before the table is returned (0 for none),
 *                   e.g. `mg_init(host)` or `curl_global_init(CURL_GLOBAL_DEFAULT)`; `host` and
 *                   `err` are in scope. 0 is success. Since ABI 1.3 any other value fails the
 *                   load (before, it was ignored): a negative value is returned as it is, as a
 *                   trifle_status (set a message with host->error_set(err, ...) first); a positive
 *                   one, a client library's own code, becomes TRIFLE_EDRIVER with that code as
 *                   `native`. Without a message the error reads "init hook failed (<value>)".
 *                   The loader reports "driver <name>: trifle_driver_<name>_init failed:
 *                   <message>" with that code.
 */
#define TRIFLE_DRIVER_DEFINE_WITH_INIT(name, table, init_hook)                               \
    TRIFLE_DRIVER_EXPORT int trifle_driver_##name##_init(                                    \
        const trifle_host_api *host, const trifle_driver **out, trifle_error *err);          \
    TRIFLE_DRIVER_EXPORT int trifle_driver_##name##_init(                                    \
        const trifle_host_api *host, const trifle_driver **out, trifle_error *err)           \
    {                                                                                        \
        int trifle_init_rc_;                                                                 \
        if (out == NULL)                                                                     \
            return TRIFLE_EINVAL;                                                            \
        *out = NULL;                                                                         \
        if (host == NULL || host->abi_major != TRIFLE_DRIVER_ABI_MAJOR)                      \
            return TRIFLE_EABI;                                                              \
        if ((trifle_init_rc_ = (int)(init_hook)) != 0) {                                     \
            if (err != NULL && err->code == TRIFLE_OK)                                       \
                host->error_set(                                                             \
                    err,                                                                     \
                    trifle_init_rc_<0 ? trifle_init_rc_ : TRIFLE_EDRIVER, trifle_init_rc_> 0 \
                        ? trifle_init_rc_                                                    \
                        : 0,                                                                 \
                    "init hook failed (%d)", trifle_init_rc_);                               \
            return trifle_init_rc_ < 0 ? trifle_init_rc_ : TRIFLE_EDRIVER;                   \
        }                                                                                    \
        *out = &(table);                                                                     \
        return TRIFLE_OK;                                                                    \
    }

/** TRIFLE_DRIVER_DEFINE_WITH_INIT() without an init hook. */
#define TRIFLE_DRIVER_DEFINE(name, table) TRIFLE_DRIVER_DEFINE_WITH_INIT(name, table, 0)

/** Initializer of a write result as the core hands it to a driver: struct_size set, nothing
 *  applied, failed_item -1, outcome known (`trifle_write_result res = TRIFLE_WRITE_RESULT_INIT;`).
 */
#define TRIFLE_WRITE_RESULT_INIT              \
    {                                         \
        sizeof(trifle_write_result), 0, -1, 0 \
    }

/** Fill the fields of a write result that fit in the caller's struct_size. */
#define TRIFLE_WRITE_RESULT_SET(res, applied_, failed_, unknown_)                 \
    do {                                                                          \
        if ((res) != NULL && (res)->struct_size >= sizeof(trifle_write_result)) { \
            (res)->applied = (applied_);                                          \
            (res)->failed_item = (failed_);                                       \
            (res)->outcome_unknown = (unknown_);                                  \
        }                                                                         \
    } while (0)

TRIFLE_END_DECLS

#endif
