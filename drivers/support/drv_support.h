/*
 * drv_support.h: helpers shared by the storage drivers of this tree (sqlite, postgres, redis,
 * mongo).
 *
 * They are compiled into the static library trifle_driver_support (position-independent, hidden
 * visibility), which cmake/TrifleDriver.cmake links into every driver built here. Each plugin so
 * carries its own copy of what it uses: it still exports only trifle_driver_<name>_init, still
 * links nothing but its database client, and never calls libtrifle. Nothing here is ABI: the
 * helpers change together with the drivers, in the same commit. The library is installed as the
 * driver kit (libtrifle-driver-kit.a, this header in include/trifle-driver-kit/,
 * trifle-driver-kit.pc, trifle::driver_kit): a third-party plugin links its own copy, so a newer
 * kit never changes a plugin already built (docs/driver-guide.md, "The driver kit").
 *
 * Memory comes from the host (trifle_host_api.alloc/realloc/free), so the application's
 * allocator and the OOM tests see every byte. An allocation failure is sticky: a buffer sets its
 * owner's `oom` flag and drops every later append until the owner clears the flag, so a driver
 * builds a whole request and checks for failure once.
 *
 * Conventions: functions that can fail return 0 or -1; predicates (`_ok`) return 1 or 0.
 */
#ifndef TRIFLE_DRV_SUPPORT_H
#define TRIFLE_DRV_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <trifle/driver.h>

#include "util/tu_date.h"
#include "util/tu_hex.h"
#include "util/tu_utf8.h"

/* ---------------------------------------------------------------------------------------------
 * Growable byte buffer
 */

/* Bytes being built (a statement, a request, a JSON text, a path). drv_buf_init() it before use;
 * p is NULL until the first append. The text is not NUL-terminated unless drv_buf_zero() made
 * it so. Resetting len to 0 keeps the memory for the next text. */
typedef struct drv_buf {
    char *p;
    size_t len;
    size_t cap;
    const trifle_host_api *host; /* allocates p */
    int *oom;                    /* set to 1 when an allocation fails (usually &conn->oom) */
} drv_buf;

/* Make b an empty buffer that allocates through host and reports failure in *oom. */
void drv_buf_init(drv_buf *b, const trifle_host_api *host, int *oom);

/* Free b's bytes; b is empty and still initialised afterwards. A zero-filled buffer that was
 * never initialised is fine too (a half-open connection). */
void drv_buf_free(drv_buf *b);

/* Make room for n more bytes (util/tu_buf's growth: capacity doubles from 64, with a byte to
 * spare for drv_buf_zero()). Returns 0, or -1 with *b->oom set; -1 at once when *b->oom is
 * already set. */
int drv_buf_grow(drv_buf *b, size_t n);

/* Append s[0..n); dropped when memory runs out (see the file comment). */
void drv_buf_put(drv_buf *b, const void *s, size_t n);

/* Append the NUL-terminated s. */
void drv_buf_puts(drv_buf *b, const char *s);

/* Append one byte; inline, as the JSON reader and writers call it per character. */
static inline void drv_buf_putc(drv_buf *b, char ch)
{
    if (b->len < b->cap)
        b->p[b->len++] = ch;
    else
        drv_buf_put(b, &ch, 1);
}

/* Put a NUL after the text without counting it, so b->p is a C string (unless *b->oom). */
void drv_buf_zero(drv_buf *b);

/* Append code point u (at most U+10FFFF) as UTF-8. */
void drv_buf_put_utf8(drv_buf *b, unsigned u);

/* Append s[0..n) as a JSON string literal: quotes, `\"` `\\` `\n` `\r` `\t` `\b` `\f`, other
 * control characters as `\u00XX`, every other byte as it is. */
void drv_buf_put_jstr(drv_buf *b, const char *s, size_t n);

/* Append finite v in canonical number text (SPEC §4.5), printed by host->format_double. */
void drv_buf_put_num(drv_buf *b, double v);

/* Writes the member name s[0..n) into b: drv_buf_put_jstr(), or a driver's variant of it. */
typedef void (*drv_key_fn)(drv_buf *b, const char *s, size_t n);

/**
 * Append the JSON object members `"<prefix><path>":<value>` of leaves[0..n), separated by
 * commas (no braces), values in canonical number text (drv_buf_put_num()).
 *
 * @param b       receives the members
 * @param scratch builds the prefixed names (its len is reset; unused when prefix is "")
 * @param prefix  put before every path ("data.", or "")
 * @param leaves  the leaves
 * @param n       how many
 * @param key     writes each name
 */
void drv_buf_put_members(drv_buf *b, drv_buf *scratch, const char *prefix,
                         const trifle_leaf *leaves, size_t n, drv_key_fn key);

/* Make room for `want` elements of `size` bytes in the array *p, whose capacity is *cap elements
 * (exactly want: callers that append one by one double it themselves). Returns 0, or -1 leaving
 * *p and *cap as they were. */
int drv_array_reserve(const trifle_host_api *host, void **p, size_t *cap, size_t want, size_t size);

/* ---------------------------------------------------------------------------------------------
 * Stored JSON text → flattened leaves
 *
 * A strict RFC 8259 reader for the `data` column of the SQL drivers. drv_json_walk() walks one
 * object, building each member's dotted path (`{"a":{"b":1}}` → `a.b`) in js->path and handing
 * every value it does not descend into to js->value(), which decides what a leaf is and consumes
 * it with the readers below. The reader never allocates except through js->path.
 */

typedef struct drv_json drv_json;

/* Consume the member value at js->p (its first byte; js->path holds its dotted path). depth is
 * the nesting of the object it belongs to (0: the top object). Returns 1, or 0 when the text is
 * not valid JSON, which ends the walk. */
typedef int (*drv_json_value_fn)(drv_json *js, int depth, void *ctx);

struct drv_json {
    const char *p;               /* next byte */
    const char *end;             /* end of the text */
    const trifle_host_api *host; /* parses numbers (host->parse_double) */
    drv_buf *path;               /* dotted path of the current member */
    int max_depth;               /* objects are walked down to this depth (the top object is
                                    0); deeper ones go to value() unopened */
    drv_json_value_fn value;
    void *ctx; /* value()'s */
};

/* Skip JSON white space (space, tab, LF, CR). */
void drv_json_ws(drv_json *js);

/* The string at js->p (its opening quote): its decoded bytes are appended to out unless out is
 * NULL; a lone surrogate escape decodes to U+FFFD. Returns 1 past the closing quote, or 0. */
int drv_json_string(drv_json *js, drv_buf *out);

/* The number at js->p. Returns 1 past it, or 0 when it is not JSON number syntax; *numeric says
 * whether *v got a finite double (1e400 is valid JSON but not numeric). -0 reads as 0. */
int drv_json_number(drv_json *js, double *v, int *numeric);

/* The literal word[0..n) (`true`, `false`, `null`) at js->p. Returns 1 past it, or 0. */
int drv_json_literal(drv_json *js, const char *word, size_t n);

/* Validate and skip the value at js->p, nested `depth` deep (the members of the top object are
 * 1 deep): anything nested deeper than js->max_depth is invalid. Returns 1 past it, or 0. */
int drv_json_skip(drv_json *js, int depth);

/**
 * Consume the member value at js->p for a drv_json_value_fn: a number is read (drv_json_number()),
 * anything else is validated and skipped as a value nested depth + 1 deep (drv_json_skip()).
 *
 * @param js      the reader, at the value's first byte
 * @param depth   the value_fn's depth (of the object the member belongs to)
 * @param v       receives the number, or 0
 * @param numeric receives 1 when *v got a finite double, else 0 (not a number, or out of range)
 * @return 1 past the value, or 0 when it is not valid JSON
 */
int drv_json_value(drv_json *js, int depth, double *v, int *numeric);

/* Does js->p start a number (`-` or a digit)? js->p must be before js->end. */
static inline int drv_json_at_number(const drv_json *js)
{
    return *js->p == '-' || (*js->p >= '0' && *js->p <= '9');
}

/* Walk the JSON text[0..len) (js->host, path, max_depth, value and ctx set by the caller): when it
 * is an object, each member is either a nested object below js->max_depth, walked the same way,
 * or handed to js->value(). Returns 1 when the whole text is one valid object (white space
 * around it allowed), else 0; value() may have been called for members before the error. */
int drv_json_walk(drv_json *js, const char *text, size_t len);

/* Called by drv_json_flatten() for each numeric leaf with its dotted path (path[len] is a NUL). A
 * non-zero return ends the walk and is returned by it. */
typedef int (*drv_leaf_fn)(void *ctx, const char *path, size_t len, double v);

/* Call leaf() for each numeric leaf of the JSON object text[0..len): objects are descended down
 * to max_depth, a finite number whose path suits the core (drv_path_ok) is a leaf, everything
 * else (strings, literals, arrays and deeper objects, at any depth, skipped without recursion) is
 * not; a number that does not fit a double is skipped too. path is the scratch buffer for the
 * dotted paths (its len is reset; its oom flag reports allocation failure). Returns leaf()'s
 * first non-zero result, TRIFLE_ENOMEM, or 0; text that is not an object reads as {}. This is
 * the `data` column reader of the SQL drivers that keep JSON text (PostgreSQL, MySQL). */
int drv_json_flatten(const trifle_host_api *host, drv_buf *path, int max_depth, const char *text,
                     size_t len, drv_leaf_fn leaf, void *ctx);

/* Time: the drivers' stored timestamps are read and written with util/tu_date.h
 * (tu_time_format, tu_time_parse19, tu_time_parse_rfc3339). */

/* ---------------------------------------------------------------------------------------------
 * Options, names, paths, hashing
 */

/**
 * Check the arguments of a SQL driver's ping: the time (in_range: the driver's verdict on at), the
 * key's length in characters and each leaf (a non-empty path and a finite value).
 *
 * @param host     the host API (error_set)
 * @param secret   the connection's password, or NULL (drv_verr())
 * @param in_range whether the driver can store at
 * @param at       the ping's time
 * @param key      the ping's key
 * @param id_max   the most characters a key may have
 * @param leaves   the leaves
 * @param n        how many
 * @param err      receives the error
 * @return 0, or TRIFLE_EINVAL with err set ("time out of range: <at>", "ping key is longer than
 *         <id_max> characters" or "invalid ping leaf <i>")
 */
int drv_ping_check(const trifle_host_api *host, const char *secret, int in_range, int64_t at,
                   const char *key, int id_max, const trifle_leaf *leaves, size_t n,
                   trifle_error *err);

/**
 * A leaf of a stored ping in the SQL drivers' flat layout (`{"at":...,"data.<path>":<v>}`) for
 * scan: a path under `data.` goes to sink (index 0) without that prefix, any other is skipped.
 *
 * @param host the host API (emit)
 * @param sink scan's sink
 * @param path the stored path
 * @param len  its length
 * @param v    its value
 * @return emit()'s result, or 0 for a skipped path
 */
int drv_ping_emit(const trifle_host_api *host, trifle_sink *sink, const char *path, size_t len,
                  double v);

/* The identifier mode named by the core's `trifle.joined` option ("full", "partial",
 * "separated") of an ABI 1.0-1.2 open(): an enum trifle_id_mode, or -1. */
int drv_opt_mode(const char *value);

/* The identifier mode of open_params()' params (ABI 1.3): an enum trifle_id_mode, or -1 when
 * params is NULL, too short to hold it, or holds no mode this ABI knows. */
int drv_params_mode(const trifle_open_params *params);

/* drv_params_mode() of params into *mode for open_params(): 0, or TRIFLE_ECONFIG with err set
 * through host ("invalid identifier mode: <n>"). */
int drv_open_mode(const trifle_host_api *host, const trifle_open_params *params, int *mode,
                  trifle_error *err);

/**
 * The checks that start a storage driver's open_params(): the identifier mode of params into
 * *mode (drv_open_mode()), then the URL's beginning.
 *
 * @param host     the host API (error_set)
 * @param params   open_params()' params
 * @param url      open_params()' url, or NULL
 * @param prefixes the beginnings the driver takes ("postgres://", ...), NULL-terminated
 * @param expected what the message says a URL begins with ("postgres:// or postgresql://")
 * @param mode     receives the identifier mode
 * @param err      receives the error
 * @return 0, or TRIFLE_ECONFIG with err set (drv_open_mode()'s message, or "invalid driver URL:
 *         expected <expected>")
 */
int drv_open_url(const trifle_host_api *host, const trifle_open_params *params, const char *url,
                 const char *const *prefixes, const char *expected, int *mode, trifle_error *err);

/* The separator of open_params()' params, or "::" when params is NULL or too short to hold it. */
const char *drv_params_separator(const trifle_open_params *params);

/* An option the core applies itself, so a driver accepts and ignores it: `trifle.*`, and the URL
 * parameters every driver takes (`joined`, `separator`, `system_tracking`, SPEC §11.2). */
int drv_opt_is_core(const char *name);

/* The options the SQL drivers (sqlite, postgres, mysql) share: the core's options are accepted
 * and ignored, `table` and `ping_table` set *table and *ping_table. Returns 1 when name was one of
 * them, 0 when it is none of them (the driver's own or unknown). */
int drv_opt_sql(const char *name, const char *value, const char **table, const char **ping_table);

/* A table name: 1 to max bytes of [A-Za-z0-9_], not starting with a digit (SPEC §7.5). */
int drv_name_ok(const char *s, size_t max);

/* The first of table and ping_table (which may be NULL) that drv_name_ok() refuses, or NULL. */
const char *drv_table_bad(const char *table, const char *ping_table, size_t max);

/* Copy the table name into table_out, and ping_table (or, when it is NULL, "<table>_ping") into
 * ping_out; both names are checked by drv_name_ok() and the buffers sized for them. */
void drv_table_names(char *table_out, char *ping_out, const char *table, const char *ping_table);

/* A packed path the core accepts from stored data: non-empty, no NUL, no empty dotted segment
 * (`.a`, `a.`, `a..b`). */
int drv_path_ok(const char *p, size_t n);

/* Replace every occurrence of secret (a password; NULL or "" does nothing) in the NUL-terminated
 * msg of size bytes by `***`, so that no driver message shows it. The result is cut to 511 bytes.
 */
void drv_scrub(char *msg, size_t size, const char *secret);

/**
 * Fill err through host->error_set() with code, native and the message fmt/ap formatted, cut to
 * 511 bytes and scrubbed of secret (drv_scrub()). A driver's `x_err(conn, err, code, native, fmt,
 * ...)` is this with its host and password.
 *
 * @param host   the host API (error_set)
 * @param secret the connection's password, or NULL
 * @param err    receives the error
 * @param code   a trifle_status (negative)
 * @param native the server's or the client library's own error number, or 0
 * @param fmt    printf format of the message
 * @param ap     its arguments
 * @return code
 */
int drv_verr(const trifle_host_api *host, const char *secret, trifle_error *err, int code,
             int native, const char *fmt, va_list ap) TRIFLE_PRINTF(6, 0);

/**
 * Define `static int name(trifle_conn *c, trifle_error *err, int code, int native, const char
 * *fmt, ...)`, a driver's error function: drv_verr() with c->host and the password c->secret, so
 * the driver's connection struct needs those two members. It returns code.
 *
 * @param name the function's name (`pg_err`)
 */
#define DRV_DEFINE_ERR(name)                                                                       \
    static int name(trifle_conn *c, trifle_error *err, int code, int native, const char *fmt, ...) \
        TRIFLE_PRINTF(5, 6);                                                                       \
    static int name(trifle_conn *c, trifle_error *err, int code, int native, const char *fmt, ...) \
    {                                                                                              \
        va_list ap;                                                                                \
                                                                                                   \
        va_start(ap, fmt);                                                                         \
        code = drv_verr(c->host, c->secret, err, code, native, fmt, ap);                           \
        va_end(ap);                                                                                \
        return code;                                                                               \
    }

/**
 * Define `static int inc(trifle_conn *, const trifle_entry *, size_t, trifle_write_result *,
 * trifle_error *)` and `set(...)`, a driver's trifle_driver.inc and .set, as its
 * `int write(c, items, n, int set, res, err)` with set 0 and 1.
 *
 * @param inc   the inc function's name (`pg_inc`)
 * @param set   the set function's name (`pg_set`)
 * @param write the driver's writer, which both call
 */
#define DRV_DEFINE_INC_SET(inc, set, write)                                                       \
    static int inc(trifle_conn *c, const trifle_entry *items, size_t n, trifle_write_result *res, \
                   trifle_error *err)                                                             \
    {                                                                                             \
        return write(c, items, n, 0, res, err);                                                   \
    }                                                                                             \
    static int set(trifle_conn *c, const trifle_entry *items, size_t n, trifle_write_result *res, \
                   trifle_error *err)                                                             \
    {                                                                                             \
        return write(c, items, n, 1, res, err);                                                   \
    }

/**
 * Define the export table of a SQL driver of this tree (sqlite, postgres, mysql), `static const
 * trifle_driver <p>_driver`, for TRIFLE_DRIVER_DEFINE(): the capabilities they share (the partial
 * and separated identifier modes, ping, atomic batches, setup, exact doubles, journal marks) and
 * the entry points <p>_open (as open_params), <p>_close, _setup, _inc, _set, _get, _ping, _scan,
 * _drop, _write_marked and _mark_read, which the driver defines. Its URL schemes, `static const
 * char *const <p>_schemes[]`, are the arguments after drv_version.
 *
 * @param p        the driver's prefix (`pg`)
 * @param drv_name its name (trifle_driver.name)
 * @param drv_version its version text
 */
#define DRV_SQL_DRIVER(p, drv_name, drv_version, ...)                                   \
    static const char *const p##_schemes[] = {__VA_ARGS__, NULL};                       \
    static const trifle_driver p##_driver = {                                           \
        TRIFLE_DRIVER_HEADER,                                                           \
        .name = drv_name,                                                               \
        .version = drv_version,                                                         \
        .caps = TRIFLE_CAP_MODE_PARTIAL | TRIFLE_CAP_MODE_SEPARATED | TRIFLE_CAP_PING | \
                TRIFLE_CAP_ATOMIC_BATCH | TRIFLE_CAP_SETUP | TRIFLE_CAP_EXACT_DOUBLES | \
                TRIFLE_CAP_JOURNAL_MARK,                                                \
        .schemes = p##_schemes,                                                         \
        .open_params = p##_open,                                                        \
        .close = p##_close,                                                             \
        .setup = p##_setup,                                                             \
        .inc = p##_inc,                                                                 \
        .set = p##_set,                                                                 \
        .get = p##_get,                                                                 \
        .ping = p##_ping,                                                               \
        .scan = p##_scan,                                                               \
        .drop = p##_drop,                                                               \
        .write_marked = p##_write_marked,                                               \
        .mark_read = p##_mark_read}

/**
 * Fill err through host->error_set() with TRIFLE_ENOMEM and "out of memory".
 *
 * @param host the host API (error_set)
 * @param err  receives the error
 * @return TRIFLE_ENOMEM
 */
int drv_oom(const trifle_host_api *host, trifle_error *err);

/**
 * A zero-filled block of size bytes from host->alloc (a connection being opened); when memory
 * runs out, err gets drv_oom()'s error.
 *
 * @param host the host API (alloc, error_set)
 * @param size bytes wanted
 * @param err  receives the error
 * @return the block, or NULL (err set to TRIFLE_ENOMEM)
 */
void *drv_calloc(const trifle_host_api *host, size_t size, trifle_error *err);

/**
 * A copy of the NUL-terminated s from host->alloc.
 *
 * @param host the host API (alloc)
 * @param s    the text
 * @return the copy (free it with host->free), or NULL when memory runs out
 */
char *drv_strdup(const trifle_host_api *host, const char *s);

/* Byte order of paths a[0..an) and b[0..bn): memcmp, then the shorter first. */
int drv_pathcmp(const char *a, size_t an, const char *b, size_t bn);

/* Hash of a bucket identifier (id, granularity, at) for the drivers' get tables: FNV-1a over the
 * bytes, then a SplitMix64 finaliser mixing in `at`. Pass what the connection's mode stores (g_len
 * 0 and at 0 when they are not part of the identifier). */
uint32_t drv_bucket_hash(const char *id, size_t id_len, const char *g, size_t g_len, int64_t at);

/* ---------------------------------------------------------------------------------------------
 * The buckets of one get
 */

/**
 * The order in which the SQL drivers write and lock buckets: by id, then granularity (when both
 * have one), then time.
 *
 * @param a a bucket
 * @param b another
 * @return negative, 0 or positive, as strcmp()
 */
int drv_bucket_cmp(const trifle_bucket *a, const trifle_bucket *b);

/**
 * Do a and b name the same stored bucket in mode (the granularity counts only in
 * TRIFLE_ID_SEPARATED, the time not in TRIFLE_ID_FULL)?
 *
 * @param mode the connection's enum trifle_id_mode
 * @param a    a bucket (id, and granularity in TRIFLE_ID_SEPARATED, set)
 * @param b    another
 * @return 1 or 0
 */
int drv_bucket_same(int mode, const trifle_bucket *a, const trifle_bucket *b);

/**
 * Does the identifier of a stored row (key[0..key_len), granularity g[0..g_len) and time at, as
 * far as mode stores them) name bucket b?
 *
 * @param b       a bucket the core asked for (id, and granularity in TRIFLE_ID_SEPARATED, set)
 * @param mode    the connection's enum trifle_id_mode
 * @param key     the row's identifier
 * @param key_len its length
 * @param g       the row's granularity (ignored unless mode is TRIFLE_ID_SEPARATED)
 * @param g_len   its length
 * @param at      the row's time (ignored in TRIFLE_ID_FULL)
 * @return 1 or 0
 */
int drv_bucket_is(const trifle_bucket *b, int mode, const char *key, size_t key_len, const char *g,
                  size_t g_len, int64_t at);

/**
 * The distinct identifiers among the buckets of one get, hashed with drv_bucket_hash(), so that
 * a driver asks the database for each once and gives a returned row to every index naming it (a
 * get may name one bucket twice). Zero-initialise it; drv_buckets_reset() before each get,
 * drv_buckets_free() with the connection.
 */
typedef struct drv_buckets {
    size_t *chain; /**< chain[i]: the next index naming the same bucket as index i, or SIZE_MAX */
    size_t cap_chain; /**< capacity of chain */
    size_t *first;    /**< first[d]: the first index naming distinct identifier d */
    size_t cap_first; /**< capacity of first */
    uint32_t *slots;  /**< open-addressing table: distinct identifier + 1, 0 = empty */
    size_t cap_slots; /**< capacity of slots */
    size_t mask;      /**< the table's size (a power of two, at least twice n) minus 1 */
    size_t n;         /**< distinct identifiers so far */
} drv_buckets;

/**
 * Empty x and make room for n buckets.
 *
 * @param x    the set
 * @param host allocates
 * @param n    the buckets of the get (at most UINT32_MAX / 4)
 * @return 0, or -1 when memory runs out (x stays valid and empty or as it was)
 */
int drv_buckets_reset(drv_buckets *x, const trifle_host_api *host, size_t n);

/**
 * Add buckets[i], whose id (and in TRIFLE_ID_SEPARATED granularity) the caller has checked to be
 * non-NULL: either a new distinct identifier (x->first[x->n - 1] is i) or a repeat of an earlier
 * index, which it is chained to.
 *
 * @param x       the set, reset for at least i + 1 buckets
 * @param buckets the get's buckets
 * @param i       the index to add (each index once, in order)
 * @param mode    the connection's enum trifle_id_mode
 * @return 1 when buckets[i] is new, 0 when it repeats one
 */
int drv_buckets_add(drv_buckets *x, const trifle_bucket *buckets, size_t i, int mode);

/**
 * The first index of the bucket a stored row names (drv_bucket_is()); the others follow through
 * x->chain.
 *
 * @param x       the set
 * @param buckets the get's buckets
 * @param mode    the connection's enum trifle_id_mode
 * @param key     the row's identifier
 * @param key_len its length
 * @param g       the row's granularity ("" unless mode is TRIFLE_ID_SEPARATED)
 * @param g_len   its length
 * @param at      the row's time (0 in TRIFLE_ID_FULL)
 * @return the index, or SIZE_MAX when the row names none of the buckets
 */
size_t drv_buckets_find(const drv_buckets *x, const trifle_bucket *buckets, int mode,
                        const char *key, size_t key_len, const char *g, size_t g_len, int64_t at);

/**
 * Free x's memory; x is empty and zeroed afterwards.
 *
 * @param x    the set (a zeroed one is fine)
 * @param host allocated it
 */
void drv_buckets_free(drv_buckets *x, const trifle_host_api *host);

#endif
