/**
 * @file trifle/simple.h
 * @brief Simple Stats (docs/simple-stats.md): process-wide in-memory counters and gauges keyed by
 * (category, name), persisted atomically, rendered as the `/stats` JSON tree and as Prometheus
 * text.
 *
 * The module is its own library, libtrifle-simple: link it with `pkg-config --libs trifle-simple`
 * or the CMake target `trifle::simple` (it brings libtrifle along). Memory it returns is freed with
 * trifle_mem_free(), and it logs through trifle_set_log_handler()'s handler.
 *
 * There are no time buckets and no history: each entry holds one signed 64-bit value. The module is
 * a single registry per process, so the functions take no handle:
 * @code
 * trifle_error err = TRIFLE_ERROR_INIT;
 * trifle_simple_options opts;
 * trifle_simple_options_init(&opts);
 * opts.data_dir = "/var/lib/trifle";              // persist defaults to on
 * if (trifle_simple_configure(&opts, &err) != 0 || trifle_simple_start(&err) != 0) { ... }
 * trifle_simple_register("system", trifle_simple_system_provider, NULL, &err);
 * trifle_simple_incr("http", "requests", 1, NULL);
 * trifle_simple_gauge("buffer.main", "pending_entries", 12, NULL);
 * char *json = NULL;
 * trifle_simple_render_json(&json, &err);          // GET /stats
 * trifle_mem_free(json);
 * trifle_simple_stop(&err);                        // drain + final save
 * @endcode
 *
 * Lifecycle: trifle_simple_configure() (optional: without it the module is enabled, unbuffered and
 * not persisted) → trifle_simple_start() → updates, reads, renders → trifle_simple_stop().
 * Updates and reads work in every state, also before start and after stop. Every function is
 * thread-safe unless its documentation says otherwise.
 *
 * With `enabled` false every function below is a no-op returning 0 (renders give an empty
 * document, trifle_simple_get() gives 0, nothing is loaded, saved or started).
 */
#ifndef TRIFLE_SIMPLE_H
#define TRIFLE_SIMPLE_H

#include "error.h"

TRIFLE_BEGIN_DECLS

/** Longest category or name in bytes (docs/simple-stats.md, "Model"). */
#define TRIFLE_SIMPLE_NAME_MAX 256

/** Content type of trifle_simple_render_json() output. */
#define TRIFLE_SIMPLE_JSON_CONTENT_TYPE "application/json; charset=utf-8"

/** Content type of trifle_simple_render_prometheus() output. */
#define TRIFLE_SIMPLE_PROMETHEUS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/** The kind of an entry (docs/simple-stats.md, "Model"). */
enum trifle_simple_kind {
    TRIFLE_SIMPLE_COUNTER = 0, /**< only ever incremented by deltas >= 0 */
    TRIFLE_SIMPLE_GAUGE = 1 /**< decremented, or set by absolute/gauge, at least once: for good */
};

/** One Prometheus label: a name and a value, both borrowed. */
typedef struct trifle_simple_label {
    const char *name;  /**< `[a-zA-Z_][a-zA-Z0-9_]*`, no `__` prefix */
    const char *value; /**< UTF-8; "" removes a default label */
} trifle_simple_label;

/**
 * Options of the module (docs/configuration.md, YAML section `stats:`). Initialise with
 * trifle_simple_options_init(), then change fields. Strings and arrays are borrowed for the
 * duration of trifle_simple_configure(), which copies them.
 */
typedef struct trifle_simple_options {
    size_t struct_size;   /**< sizeof(trifle_simple_options), set by trifle_simple_options_init() */
    int enabled;          /**< default 1; 0 makes every call a no-op */
    int persist;          /**< default 1; save to `<data_dir>/stats/simple` (needs data_dir) */
    const char *data_dir; /**< the server's data directory; default NULL */
    int no_buffer;        /**< default 1: apply under the lock; 0: bounded FIFO + consumer thread */
    int64_t buffer_size;  /**< FIFO capacity in operations, 1 … 1 048 576; default 1000 */
    int64_t flush_interval_ms; /**< consumer nap when the FIFO is empty, 1 … 3 600 000; 1000 */
    int64_t checkpoint_interval_ms; /**< save period when changed, 100 … 86 400 000; 10000 */
    const char *node_name; /**< value of the default Prometheus label `name`; NULL omits it */
    const char *node_id;   /**< value of the default Prometheus label `id`; NULL omits it */
    /**
     * `stats.prometheus_labels`, in configuration order. They EXTEND the defaults
     * (`type="trifle"`, `name=<node_name>`, `id=<node_id>`, in that order): a configured name equal
     * to a default replaces that default's value in place, other names are appended, and an empty
     * value removes the label. NULL with 0 = the defaults only.
     */
    const trifle_simple_label *prometheus_labels;
    size_t n_prometheus_labels; /**< number of entries in prometheus_labels */
} trifle_simple_options;

/**
 * @brief Fill @p opts with the defaults of docs/configuration.md (`stats`) and set struct_size.
 * @param opts The options to initialise; NULL is fine. Thread-safe (touches only @p opts).
 */
TRIFLE_API void trifle_simple_options_init(trifle_simple_options *opts);

/**
 * @brief Set one option from its YAML text, validating it now (for configuration loaders).
 *
 * Keys: `enabled`, `persist`, `no_buffer` (booleans: true/false/1/0/yes/no/on/off), `buffer_size`,
 * `flush_interval_ms`, `checkpoint_interval_ms` (decimal integers in the ranges of
 * docs/configuration.md). `data_dir`, the node name/id and `prometheus_labels` are set directly in
 * the struct. The server's own `stats:` keys (`include_storage_stats_in_api`, `public`) are not
 * the module's: `trifle serve` reads them itself.
 * @param opts Initialised options; unchanged on failure.
 * @param key The option name without `stats.`.
 * @param value The value as YAML text.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_ECONFIG `invalid stats option <key>: <value>` or
 *         `unknown configuration key stats.<key>`. Touches only @p opts.
 */
TRIFLE_API int trifle_simple_options_set(trifle_simple_options *opts, const char *key,
                                         const char *value, trifle_error *err);

/**
 * @brief Validate and apply options. Call it before trifle_simple_start() or after
 * trifle_simple_stop(); queued updates are applied first, entries are kept.
 * @param opts Borrowed (strings and the label array are copied); NULL restores the defaults
 *        without persistence.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_ECONFIG `invalid stats option <key>: <value>` (a value out of its documented
 *         range, `persist` without `data_dir`, a bad label name or value under
 *         `prometheus_labels`); TRIFLE_EBUSY while started; TRIFLE_ENOMEM. On failure nothing
 *         changes.
 */
TRIFLE_API int trifle_simple_configure(const trifle_simple_options *opts, trifle_error *err);

/**
 * @brief Start the module: load the persisted file (when `persist`), then start the consumer
 * thread (when `no_buffer` is 0) and the checkpoint thread (when `persist`). It returns once each
 * thread it started has called the thread hook with ::TRIFLE_SIMPLE_THREAD_START, so a registry
 * the hook feeds lists them from then on.
 *
 * Loaded counters resume from their saved totals (added to anything counted before start).
 * An unreadable or unparsable file is renamed `simple.corrupt-<unix seconds>`, a warning is
 * logged, `stats`/`load_errors` is incremented and the module starts without it; that is not an
 * error. The format written is `{"version":2,"stats":{...},"gauges":{...}}`; the INFINI format
 * `{"<category>":{"<name>":<int>}}` is also read (as counters).
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_EBUSY when already started; TRIFLE_ERROR when a thread cannot be created;
 *         TRIFLE_ENOMEM.
 */
TRIFLE_API int trifle_simple_start(trifle_error *err);

/**
 * @brief Stop the module: stop the threads, apply every queued update, then save (when `persist`
 * and something changed since the last save). Stopping a stopped module does nothing.
 * @param err Receives the error on failure; may be NULL.
 * @return 0, or the save's error (TRIFLE_ERROR `cannot save <path>: <reason>`); the threads are
 *         stopped either way and the previous file is intact.
 */
TRIFLE_API int trifle_simple_stop(trifle_error *err);

/**
 * @brief Save now (a checkpoint), whether or not anything changed: apply queued updates, write
 * `simple.tmp` (mode 0600), fsync, rename over `simple`, fsync the directory. A failure is logged
 * and counted in `stats`/`save_errors`; the previous file is never truncated.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_ERROR `cannot save <path>: <reason>`; TRIFLE_ENOTSUP when not persisting.
 */
TRIFLE_API int trifle_simple_save(trifle_error *err);

/** Events reported to a trifle_simple_thread_hook. */
enum trifle_simple_thread_event {
    TRIFLE_SIMPLE_THREAD_START = 0,   /**< first call in a new thread */
    TRIFLE_SIMPLE_THREAD_RUNNING = 1, /**< the thread is working (draining, saving) */
    TRIFLE_SIMPLE_THREAD_IDLE = 2,    /**< the thread is about to wait */
    TRIFLE_SIMPLE_THREAD_EXIT = 3     /**< last call before the thread ends */
};

/**
 * @brief Observer of the module's own threads, so a server can list them (roles
 * `stats-consumer` and `stats-checkpoint`, docs/simple-stats.md).
 * @param role `stats-consumer` or `stats-checkpoint` (static text).
 * @param event A trifle_simple_thread_event.
 * @param payload The pointer given to trifle_simple_set_thread_hook().
 * Called from the thread concerned (so pthread_self() identifies it), with no module lock held; it
 * must not call trifle_simple_stop(), trifle_simple_configure() or trifle_simple_reset().
 */
typedef void (*trifle_simple_thread_hook)(const char *role, int event, void *payload);

/**
 * @brief Install the thread observer (NULL removes it). Takes effect for threads started by the
 * next trifle_simple_start(). Thread-safe, but threads already running keep the previous hook.
 * @param hook The observer, or NULL.
 * @param payload Passed to @p hook.
 */
TRIFLE_API void trifle_simple_set_thread_hook(trifle_simple_thread_hook hook, void *payload);

/**
 * @brief Forget every entry and provider and restore the defaults (for tests and for embedders that
 * restart the module). Stops the module first, without saving. Nothing else may call the module
 * concurrently.
 */
TRIFLE_API void trifle_simple_reset(void);

/**
 * @brief Add @p delta to an entry, creating it at 0 first (saturating at INT64_MIN/INT64_MAX).
 * A negative delta turns the entry into a gauge for good.
 * @param category,name Non-empty UTF-8, at most TRIFLE_SIMPLE_NAME_MAX bytes; borrowed. Names may
 *        contain `.`: it is kept as part of one member, never nested.
 * @param delta The amount to add.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_EINVAL `invalid stats name`; TRIFLE_ENOMEM. Thread-safe.
 */
TRIFLE_API int trifle_simple_incr(const char *category, const char *name, int64_t delta,
                                  trifle_error *err);

/**
 * @brief Subtract @p delta (= incr by −delta, saturating); the entry becomes a gauge for good.
 * @param category,name The entry (see trifle_simple_incr()).
 * @param delta The amount to subtract.
 * @param err Receives the error on failure; may be NULL.
 * @return As trifle_simple_incr(). Thread-safe.
 */
TRIFLE_API int trifle_simple_decr(const char *category, const char *name, int64_t delta,
                                  trifle_error *err);

/**
 * @brief Set an entry to @p value; the entry becomes a gauge for good.
 * @param category,name The entry (see trifle_simple_incr()).
 * @param value The new value.
 * @param err Receives the error on failure; may be NULL.
 * @return As trifle_simple_incr(). Thread-safe.
 */
TRIFLE_API int trifle_simple_absolute(const char *category, const char *name, int64_t value,
                                      trifle_error *err);

/**
 * @brief Alias of trifle_simple_absolute().
 * @param category,name The entry (see trifle_simple_incr()).
 * @param value The new value.
 * @param err Receives the error on failure; may be NULL.
 * @return As trifle_simple_incr(). Thread-safe.
 */
TRIFLE_API int trifle_simple_gauge(const char *category, const char *name, int64_t value,
                                   trifle_error *err);

/**
 * @brief Read an entry (queued updates are applied first). Never creates an entry; negative values
 * come back as they are. With `enabled` false it gives 0 and returns 0.
 * @param value Receives the value; untouched on failure.
 * @param category,name The entry (see trifle_simple_incr()).
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_ENOTFOUND `no stats entry <category> <name>`; TRIFLE_EINVAL
 *         `invalid stats name` (also for a NULL @p value). Thread-safe.
 */
TRIFLE_API int trifle_simple_get(const char *category, const char *name, int64_t *value,
                                 trifle_error *err);

/**
 * @brief Read an entry's kind (a trifle_simple_kind), as trifle_simple_get().
 * @param category,name The entry (see trifle_simple_incr()).
 * @param kind Receives a trifle_simple_kind.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_ENOTFOUND; TRIFLE_EINVAL. Thread-safe.
 */
TRIFLE_API int trifle_simple_get_kind(const char *category, const char *name, int *kind,
                                      trifle_error *err);

/**
 * Builder handed to a provider: it adds numeric leaves and nested objects under the provider's
 * root member. Valid only during the provider call; one thread.
 */
typedef struct trifle_simple_writer trifle_simple_writer;

/**
 * @brief A computed subtree of `/stats` (docs/simple-stats.md, "Providers"), called on every
 * render, outside the registry lock (updates never wait for it), never concurrently with its own
 * unregistration.
 * @param w Where to add the members.
 * @param err Set it when failing; the render then fails with this error (HTTP 500).
 * @param payload The pointer given to trifle_simple_register().
 * @return 0 or a negative trifle_status. A provider may update entries but must not call
 *         trifle_simple_register(), trifle_simple_unregister(), a render or trifle_simple_reset().
 */
typedef int (*trifle_simple_provider)(trifle_simple_writer *w, trifle_error *err, void *payload);

/**
 * @brief Add an integer leaf at a dotted @p path relative to the current object
 * (`"bytes._all.pool_size"`). Intermediate objects are created; writing a path twice keeps the last
 * value.
 * @param w The writer the provider was given.
 * @param path Dotted path relative to the current object.
 * @param value The value.
 * @return 0; TRIFLE_EINVAL when @p path has an empty segment or is not UTF-8, or a leaf and an
 *         object would share a path. An error is also remembered and fails the render.
 */
TRIFLE_API int trifle_simple_writer_int(trifle_simple_writer *w, const char *path, int64_t value);

/**
 * @brief Add a number leaf (printed as canonical number text, docs/storage-format.md), as
 * trifle_simple_writer_int().
 * @param w The writer the provider was given.
 * @param path Dotted path relative to the current object.
 * @param value The value; must be finite.
 * @return As trifle_simple_writer_int(); TRIFLE_EINVAL also for NaN and infinities.
 */
TRIFLE_API int trifle_simple_writer_number(trifle_simple_writer *w, const char *path, double value);

/**
 * @brief Enter (creating if needed) the member @p name of the current object, taken literally:
 * dots are part of the name. Later paths are relative to it until trifle_simple_writer_leave().
 * @param w The writer the provider was given.
 * @param name The member name.
 * @return 0; TRIFLE_EINVAL (empty or non-UTF-8 name, a leaf already there, nesting deeper than 32).
 */
TRIFLE_API int trifle_simple_writer_enter(trifle_simple_writer *w, const char *name);

/**
 * @brief Return to the object that was current before the matching trifle_simple_writer_enter().
 * @param w The writer the provider was given.
 * @return 0; TRIFLE_EINVAL at the provider's root.
 */
TRIFLE_API int trifle_simple_writer_leave(trifle_simple_writer *w);

/**
 * @brief Add (or replace) the provider of the `/stats` member @p root.
 * @param root Non-empty UTF-8, at most TRIFLE_SIMPLE_NAME_MAX bytes, not `stats`; copied.
 * @param provider The callback; @p payload is passed to it and must stay valid until the provider
 *        is unregistered or replaced.
 * @param payload Passed to @p provider.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_EINVAL `invalid stats name` (also for `stats` or a NULL provider);
 *         TRIFLE_ENOMEM. Waits for renders in progress.
 */
TRIFLE_API int trifle_simple_register(const char *root, trifle_simple_provider provider,
                                      void *payload, trifle_error *err);

/**
 * @brief Remove the provider of @p root. When it returns, the provider is not running and will
 * not be called again.
 * @param root The member name given to trifle_simple_register().
 * @return 0, or TRIFLE_ENOTFOUND when no provider has that root.
 */
TRIFLE_API int trifle_simple_unregister(const char *root);

/**
 * @brief The `/stats` document (docs/simple-stats.md): one member per line, nested objects
 * indented by one more space per level, `"name": value`, members in byte order, a final newline.
 * `stats` holds every entry as `{"<category>": {"<name>": <int>}}` (a dotted name stays one
 * member); each provider's root holds its subtree. Queued updates are applied first.
 * @param out Caller-owned NUL-terminated text (trifle_mem_free()); NULL on failure.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; a provider's error; TRIFLE_ENOMEM. Thread-safe.
 */
TRIFLE_API int trifle_simple_render_json(char **out, trifle_error *err);

/**
 * @brief The `/stats/prometheus` text (docs/simple-stats.md, "Prometheus text"), which passes
 * `promtool check metrics`. Every numeric leaf of the `/stats` tree becomes one sample:
 * - name: the path segments joined with `_`, every byte outside `[A-Za-z0-9_]` turned into `_`,
 *   lower-cased, a `_` prefix before a leading digit; a leaf whose last segment ends in `_in_ms` is
 *   exported as `…_seconds` with value/1000; a `_`-separated word that promlint rejects (a unit
 *   abbreviation such as `ms` or `s`, a non-base unit such as `milliseconds`, a metric type name
 *   such as `gauge`, or a trailing `total`/`count`/`sum`/`bucket` on a gauge) is joined to the word
 *   before it (`stats_queue_latencyms`); counters (every sample a `stats` counter) end in `_total`;
 * - labels: the configured labels (see trifle_simple_options), then `path="<dotted path>"` on every
 *   sample of a name that several paths map to (when two paths have the same dotted form, a `.` or
 *   `\` inside a segment is written `\.` or `\\` in that label);
 * - per name in byte order: `# HELP <name> <dotted paths, comma-separated>`, `# TYPE <name>
 *   counter|gauge`, then the samples sorted by label text; int64 values exact, doubles in
 *   canonical number text.
 * @param out Caller-owned NUL-terminated text (trifle_mem_free()); NULL on failure.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; a provider's error; TRIFLE_ENOMEM. Thread-safe.
 */
TRIFLE_API int trifle_simple_render_prometheus(char **out, trifle_error *err);

/**
 * @brief Built-in provider of the `system` member: `uptime_in_ms` (since the module was first
 * used), `cpu` (process CPU percent over the last window of at least 1 s, an integer), `user_in_ms`
 * and `sys_in_ms` (getrusage), `mem` (resident bytes, /proc/self/statm), `threads`
 * (/proc/self/status) and, when @p payload is a data directory (`const char *`), `store` (bytes of
 * regular files under it, as trifle_simple_storage_stats()). Figures the platform cannot give are
 * omitted. Register it with
 * `trifle_simple_register("system", trifle_simple_system_provider, dir, &err)`.
 * @param w The writer the provider was given.
 * @param err Set when failing.
 * @param payload NULL, or the data directory (`const char *`).
 * @return 0 or TRIFLE_ENOMEM.
 */
TRIFLE_API int trifle_simple_system_provider(trifle_simple_writer *w, trifle_error *err,
                                             void *payload);

/**
 * @brief Built-in provider of the `disk` member of `/stats` for the data directory given as
 * @p payload (`const char *`): `all`, `free`, `available`, `used`, from
 * trifle_simple_storage_stats().
 * @param w The writer the provider was given.
 * @param err Set when failing.
 * @param payload The data directory (`const char *`).
 * @return 0; TRIFLE_ERROR `cannot stat <dir>: <reason>`.
 */
TRIFLE_API int trifle_simple_disk_provider(trifle_simple_writer *w, trifle_error *err,
                                           void *payload);

/**
 * Storage figures of a data directory (the `disk` member of `/stats`), in bytes. Initialise with
 * TRIFLE_SIMPLE_STORAGE_INIT: the library fills only the members the caller's struct_size covers.
 */
typedef struct trifle_simple_storage {
    size_t struct_size; /**< sizeof(trifle_simple_storage), set by the caller */
    int64_t all;        /**< f_blocks · f_frsize of the file system holding the directory */
    int64_t free;       /**< f_bfree · f_frsize */
    int64_t available;  /**< f_bavail · f_frsize (unprivileged users) */
    int64_t used;       /**< all − free */
    int64_t
        store; /**< sum of the sizes of regular files under the directory (no symlinks followed) */
} trifle_simple_storage;

/** Initialiser of a trifle_simple_storage: struct_size set, every figure 0. */
#define TRIFLE_SIMPLE_STORAGE_INIT                   \
    {                                                \
        sizeof(trifle_simple_storage), 0, 0, 0, 0, 0 \
    }

/**
 * @brief statvfs() figures and the size of the regular files under @p data_dir, cached for 10 s
 * per directory and computed outside the registry lock (writers never wait for the walk).
 * @param out Initialised with TRIFLE_SIMPLE_STORAGE_INIT; the members its struct_size covers are
 *            filled on success, struct_size and later members are left alone.
 * @param data_dir The directory.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_ERROR `cannot stat <dir>: <reason>`; TRIFLE_EINVAL for NULL or a struct_size
 *         below the first version's (`trifle_simple_storage.struct_size <n> is too small`).
 *         Thread-safe.
 */
TRIFLE_API int trifle_simple_storage_stats(trifle_simple_storage *out, const char *data_dir,
                                           trifle_error *err);

TRIFLE_END_DECLS

#endif
