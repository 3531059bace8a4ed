/**
 * @file trifle/storage.h
 * @brief Plugin discovery and a direct, low-level connection to one driver. The stats handle uses
 * this layer itself; the conformance runner and benchmarks use it to drive a plugin without the
 * granularity and buffering logic on top.
 */
#ifndef TRIFLE_STORAGE_H
#define TRIFLE_STORAGE_H

#include "driver.h"
#include "error.h"

TRIFLE_BEGIN_DECLS

/** What is known about one plugin file. */
typedef struct trifle_plugin_info {
    char name[64];      /**< driver name from the file name (`sqlite`) */
    char path[1024];    /**< file path */
    char version[32];   /**< the driver's version, "" if it failed to load */
    uint32_t abi_major; /**< ABI the driver was built for */
    uint32_t abi_minor; /**< ABI the driver was built for */
    uint64_t caps;      /**< TRIFLE_CAP_* bits */
    char schemes[128];  /**< space-separated URL schemes */
    char error[256];    /**< "" when it loaded, else the load error */
} trifle_plugin_info;

/**
 * @brief List every `trifle_*.so` in the search path (@p driver_path, TRIFLE_DRIVER_PATH, the
 * directories of trifle_driver_dir_add(), the installed plugin directory), first occurrence of a
 * name wins, loading each to read its table. Plugins that fail are listed with `error` set.
 * @param driver_path Extra colon-separated directories searched first, or NULL.
 * @param out Caller-owned array (trifle_mem_free()).
 * @param n_out Receives the number of entries.
 * @param err Receives the error on failure; may be NULL.
 * @return 0 or TRIFLE_ENOMEM (a plugin that fails to load is an entry, not an error). Thread-safe.
 */
TRIFLE_API int trifle_plugins_list(trifle_plugin_info **out, size_t *n_out, const char *driver_path,
                                   trifle_error *err);

/**
 * @brief Load (once per process) the driver called @p name_or_path and return its operation
 * table, as the core validated and copied it. A name matches `[a-z][a-z0-9_]*` and is searched in
 * @p driver_path, TRIFLE_DRIVER_PATH, trifle_driver_dir_add() directories, then
 * `<libdir>/trifle-1/`; an argument with
 * a `/` is a file.
 * @param out Receives a table owned by libtrifle, valid until trifle_shutdown().
 * @param name_or_path A driver name (`sqlite`) or a file path (`./trifle_demo.so`).
 * @param driver_path Extra colon-separated directories searched first, or NULL.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_ENOTFOUND `driver <name> not found (searched: <dirs>)`; TRIFLE_EABI naming
 *         the field at fault (`driver <name>: ABI 2.0 not supported`, `driver <name>: entry symbol
 *         trifle_driver_<name>_init not found`, `driver <name>: struct_size 24 too small`,
 *         `driver <name>: required member inc is NULL`, `driver <name>: name "x" does not match`,
 *         `driver <name>: <path>: <dlerror> (check with ldd)`). Thread-safe.
 */
TRIFLE_API int trifle_driver_load(const trifle_driver **out, const char *name_or_path,
                                  const char *driver_path, trifle_error *err);

/**
 * @brief The driver name a URL scheme maps to (docs/cli.md, "Driver URLs"): `sqlite:` → sqlite,
 * `postgres://` and `postgresql://` → postgres, `redis://`, `redis+unix://` → redis, `mongodb://`,
 * `mongodb+srv://` → mongo; any other `<scheme>:` → the plugin named `<scheme>` if one exists.
 * @param buf Receives the name (at least 64 bytes).
 * @param size Size of @p buf in bytes.
 * @param url The driver URL.
 * @param err Receives the error on failure; may be NULL.
 * @return 0, or TRIFLE_ECONFIG `unknown driver: <scheme>` / `invalid driver URL: <reason>`.
 */
TRIFLE_API int trifle_driver_for_url(char *buf, size_t size, const char *url, trifle_error *err);

/**
 * @brief Register a plugin directory searched after TRIFLE_DRIVER_PATH and before the installed
 * plugin directory (the CLI and the conformance runner register the build tree this way, so the
 * installed library never looks there). Duplicates are ignored.
 * @param dir The directory; copied.
 * @param err Receives the error on failure; may be NULL.
 * @return 0, TRIFLE_EINVAL for an empty path, TRIFLE_ENOMEM. Thread-safe.
 */
TRIFLE_API int trifle_driver_dir_add(const char *dir, trifle_error *err);

/**
 * @brief Copy @p url into @p buf with its password replaced by `***` (the userinfo password and
 * any query parameter whose name contains "password"), for messages and logs.
 * @param buf Receives the NUL-terminated masked URL.
 * @param size Size of @p buf in bytes.
 * @param url The URL.
 * @return The length of the masked URL; a value >= @p size means it was truncated. Thread-safe.
 */
TRIFLE_API size_t trifle_url_mask(char *buf, size_t size, const char *url);

/** @brief Unload every driver (drivers are otherwise kept until exit). Not thread-safe. */
TRIFLE_API void trifle_shutdown(void);

/** One connection to one driver. One thread at a time. */
typedef struct trifle_storage trifle_storage;

/**
 * Options for trifle_storage_open(). Initialise with TRIFLE_STORAGE_OPTIONS_INIT, then set what you
 * need. struct_size tells the library which version of the struct the caller has: members added
 * in later versions take their defaults for a caller built against an older one.
 */
typedef struct trifle_storage_options {
    size_t struct_size;      /**< sizeof(trifle_storage_options), set by the initialiser */
    int joined;              /**< a trifle_id_mode; a `joined` URL parameter overrides it */
    const char *separator;   /**< NULL = "::"; a `separator` URL parameter overrides it */
    const char *driver_path; /**< extra plugin directories, or NULL */
    const char *driver;      /**< plugin name or file path to use instead of the URL scheme's */
} trifle_storage_options;

/** Initialiser of a trifle_storage_options: struct_size set, the full identifier mode, no other
 *  option. */
#define TRIFLE_STORAGE_OPTIONS_INIT                \
    {                                              \
        sizeof(trifle_storage_options), 0, 0, 0, 0 \
    }

/**
 * @brief Parse @p url (docs/cli.md, "Driver URLs"), load its driver and connect.
 *
 * The generic URL parameters `joined`, `separator` and `system_tracking` are taken out; the rest
 * go to the driver percent-decoded. Passwords are masked as `***` in every message.
 * @param out Receives the connection.
 * @param url The driver URL.
 * @param opts Identifier mode, separator, tracking and plugin search path, initialised with
 *             TRIFLE_STORAGE_OPTIONS_INIT; NULL for the defaults.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_EINVAL (`trifle_storage_options.struct_size <n> is too small` for a struct not
 *         initialised); TRIFLE_ENOTSUP (the struct is newer than this library and sets members it
 *         does not know); TRIFLE_ECONFIG (`invalid driver URL: ...`, `unknown driver: ...`, `<name>
 * driver supports only the full identifier mode`); TRIFLE_ENOTFOUND/TRIFLE_EABI from loading;
 *         TRIFLE_ECONN/TRIFLE_EAUTH from connecting. The caller owns *out (trifle_storage_close()).
 */
TRIFLE_API int trifle_storage_open(trifle_storage **out, const char *url,
                                   const trifle_storage_options *opts, trifle_error *err);

/**
 * @brief Close the connection; NULL is fine.
 * @param st The storage connection.
 */
TRIFLE_API void trifle_storage_close(trifle_storage *st);

/**
 * @brief The loaded driver's table. Borrowed.
 * @param st The storage connection.
 * @return The table, owned by libtrifle.
 */
TRIFLE_API const trifle_driver *trifle_storage_driver(const trifle_storage *st);

/**
 * @brief The identifier mode in force after URL parameters (a trifle_id_mode).
 * @param st The storage connection.
 * @return The mode.
 */
TRIFLE_API int trifle_storage_mode(const trifle_storage *st);

/**
 * @brief The separator in force after URL parameters. Borrowed.
 * @param st The storage connection.
 * @return The separator, borrowed from @p st.
 */
TRIFLE_API const char *trifle_storage_separator(const trifle_storage *st);

/**
 * @brief The value of the `system_tracking` URL parameter: 1 or 0, or -1 when the URL has none.
 * @param st The storage connection.
 * @return 1, 0 or -1.
 */
TRIFLE_API int trifle_storage_system_tracking(const trifle_storage *st);

/**
 * @brief `SQLiteDriver(J)`-style description (J/P/S by mode) into @p buf.
 * @param st The storage connection.
 * @param buf Receives the NUL-terminated text.
 * @param size Size of @p buf in bytes.
 * @return The full length; a value >= @p size means it was truncated.
 */
TRIFLE_API size_t trifle_storage_describe(const trifle_storage *st, char *buf, size_t size);

/**
 * @brief Build the identifier string of a bucket for the storage's mode and separator into
 * @p buf: full `key<sep>G<sep>unix`, partial `key<sep>G`, separated `key`.
 * @param st The storage connection. NULL gives the full mode with `::`.
 * @param buf Receives the NUL-terminated identifier.
 * @param size Size of @p buf in bytes.
 * @param key The metric key.
 * @param granularity The granularity label.
 * @param at The bucket start, Unix seconds.
 * @return The length, or a value >= @p size when it did not fit.
 */
TRIFLE_API size_t trifle_storage_identifier(const trifle_storage *st, char *buf, size_t size,
                                            const char *key, const char *granularity, int64_t at);

/**
 * @brief Run the driver's setup (idempotent).
 * @param st The storage connection.
 * @param err Receives the error on failure; may be NULL.
 * @return 0 or the driver's error.
 */
TRIFLE_API int trifle_storage_setup(trifle_storage *st, trifle_error *err);

/**
 * @brief One driver `inc` call: every item in one transaction. Items' `bucket.id` must be set
 * (trifle_storage_identifier()). @p res may be NULL.
 * @param st The storage connection.
 * @param items @p n items.
 * @param n Number of items.
 * @param res Receives the outcome of a failed call, or NULL.
 * @param err Receives the error on failure; may be NULL.
 * @return 0 or the driver's error (TRIFLE_EDATA with @p res->failed_item for data in the way).
 */
TRIFLE_API int trifle_storage_inc(trifle_storage *st, const trifle_entry *items, size_t n,
                                  trifle_write_result *res, trifle_error *err);

/**
 * @brief One driver `set` call (see trifle_storage_inc()).
 * @param st The storage connection.
 * @param items @p n items.
 * @param n Number of items.
 * @param res Receives the outcome of a failed call, or NULL.
 * @param err Receives the error on failure; may be NULL.
 * @return As trifle_storage_inc().
 */
TRIFLE_API int trifle_storage_set(trifle_storage *st, const trifle_entry *items, size_t n,
                                  trifle_write_result *res, trifle_error *err);

/**
 * @brief One driver `write_marked` call (ABI 1.1): the SET items, then the INC items, then the
 * journal mark, in one transaction. TRIFLE_ENOTSUP when the driver lacks
 * TRIFLE_CAP_JOURNAL_MARK; TRIFLE_EINVAL for a bad mark (name of 1-64 bytes of
 * `[A-Za-z0-9_.:/-]`, seq from 1 to 2^63-1) or item.
 * @param st the storage
 * @param set_items items whose leaves replace the stored ones (may be NULL when @p n_set is 0)
 * @param n_set number of @p set_items
 * @param inc_items items whose leaves are added (may be NULL when @p n_inc is 0)
 * @param n_inc number of @p inc_items
 * @param mark the journal position stored with the data
 * @param res outcome of a failure (may be NULL); EDATA's failed_item counts set items first
 * @param err filled on failure
 * @return 0 or a negative trifle_status
 */
TRIFLE_API int trifle_storage_write_marked(trifle_storage *st, const trifle_entry *set_items,
                                           size_t n_set, const trifle_entry *inc_items,
                                           size_t n_inc, const trifle_mark *mark,
                                           trifle_write_result *res, trifle_error *err);

/**
 * @brief Read the stored seq of journal @p name (0 when none) through the driver's `mark_read`.
 * @param st the storage
 * @param name the journal name
 * @param seq receives the seq
 * @param err filled on failure (TRIFLE_ENOTSUP without TRIFLE_CAP_JOURNAL_MARK)
 * @return 0 or a negative trifle_status
 */
TRIFLE_API int trifle_storage_mark_read(trifle_storage *st, const char *name, uint64_t *seq,
                                        trifle_error *err);

/**
 * @brief Leaf callback for reads: bucket index, packed path, value (summed over duplicates).
 * Calls for one index come together, paths in byte order; the path is valid during the call.
 */
typedef int (*trifle_leaf_fn)(size_t index, const char *path, double value, void *payload);

/**
 * @brief One driver `get` for @p n buckets; the leaves are then passed to @p fn grouped by index
 * in ascending index order. A non-zero return from @p fn stops and is returned.
 * @param st The storage connection.
 * @param buckets @p n buckets with `id` set.
 * @param n Number of buckets.
 * @param fn Called for every leaf.
 * @param payload Passed to @p fn.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; @p fn's non-zero value; the driver's error.
 */
TRIFLE_API int trifle_storage_get(trifle_storage *st, const trifle_bucket *buckets, size_t n,
                                  trifle_leaf_fn fn, void *payload, trifle_error *err);

/**
 * @brief Remove the connection's namespace (tables, keys, collections) through the driver's
 * optional `drop`. TRIFLE_ENOTSUP when the driver has none. Meant for test suites.
 * @param st The storage connection.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_ENOTSUP; the driver's error.
 */
TRIFLE_API int trifle_storage_drop(trifle_storage *st, trifle_error *err);

/**
 * @brief One driver `ping`. TRIFLE_ENOTSUP `driver does not support beam/scan` without the cap.
 * @param st The storage connection.
 * @param key The metric key.
 * @param at The ping instant, Unix seconds.
 * @param leaves @p n packed leaves.
 * @param n Number of leaves.
 * @param err Receives the error on failure; may be NULL.
 * @return 0, TRIFLE_ENOTSUP or the driver's error.
 */
TRIFLE_API int trifle_storage_ping(trifle_storage *st, const char *key, int64_t at,
                                   const trifle_leaf *leaves, size_t n, trifle_error *err);

/**
 * @brief One driver `scan`: *at_out and the data leaves (index 0) through @p fn.
 * @param st The storage connection.
 * @param key The metric key.
 * @param at_out Receives the ping instant.
 * @param fn Called for every leaf.
 * @param payload Passed to @p fn.
 * @param err Receives the error on failure; may be NULL.
 * @return 0, TRIFLE_ENOTFOUND when there is no ping, TRIFLE_ENOTSUP without the capability.
 */
TRIFLE_API int trifle_storage_scan(trifle_storage *st, const char *key, int64_t *at_out,
                                   trifle_leaf_fn fn, void *payload, trifle_error *err);

TRIFLE_END_DECLS

#endif
