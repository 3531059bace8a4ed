/* trifle-conformance: what a case body sees (SPEC §7.10, STYLE §9).
 *
 * A case is a row of a table: a name, flags, the capabilities it needs (or must lack) and a body.
 * Bodies never name a driver: they get a context holding the case's own namespaced driver URL, an
 * open storage connection (set up unless CONF_NO_SETUP) and helpers that record the first failure.
 * Everything a body opens or allocates through the helpers is released after the body returns, so
 * a body simply returns after a failed check:
 *
 *     static void case_inc_accumulates(conf_ctx *c)
 *     {
 *         trifle_entry e;
 *         if (conf_entry(c, c->st, &e, "k", "1h", T0, CONF_LEAVES({"count", 1})) != 0)
 *             return;
 *         CONF_OK(c, "inc", trifle_storage_inc(c->st, &e, 1, NULL, &c->err));
 *         ...
 *     }
 */
#ifndef TRIFLE_CONFORMANCE_HARNESS_H
#define TRIFLE_CONFORMANCE_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include <trifle/trifle.h>

/** @name Case flags */
/**@{*/
#define CONF_PER_MODE 0x1u /**< once per identifier mode the driver declares: `<name>.<mode>` */
#define CONF_NO_SETUP 0x2u /**< the storage is opened but setup is not run */
#define CONF_BARE 0x4u     /**< nothing is opened before the body (bodies that fork) */
/**@}*/

/** A fixed bucket start used by most cases: 2025-01-15T10:00:00Z. */
#define CONF_T0 INT64_C(1736935200)

/** Comparison of doubles (SPEC §4.4). */
enum conf_tol {
    CONF_EXACT = 0, /**< bit-equal (0 and -0 equal): integers, dyadic fractions, set round trips */
    CONF_REL = 1    /**< relative difference at most 1e-12 */
};

typedef struct conf_cleanup conf_cleanup;

/** What a case body works with. */
typedef struct conf_ctx {
    const char *name;        /**< expanded case name (`inc.accumulates.partial`) */
    const char *url;         /**< driver URL: namespace and `joined` parameters included */
    const char *ns;          /**< the case's namespace `trfl_c_<pid>_<n>` */
    const char *ns_param;    /**< URL parameter that carries the namespace (`table`, `prefix`) */
    const char *driver;      /**< plugin name or file (trifle_storage_options.driver) */
    const char *driver_path; /**< plugin directories for handles and storages, or NULL */
    const char *vectors_dir; /**< the SPEC vectors directory */
    int mode;                /**< the case's trifle_id_mode */
    uint64_t caps;           /**< TRIFLE_CAP_* of the driver */
    int threads;             /**< --threads N (concurrency.threads), default 8 */
    trifle_storage *st;      /**< opened by the harness unless CONF_BARE */
    trifle_error err;        /**< scratch error record for CONF_OK() */
    int failed;              /**< a check failed: reason holds why */
    int skipped;             /**< the case skipped itself: reason holds why */
    char reason[1024];       /**< first failure or skip reason */
    conf_cleanup *cleanups;  /**< released after the body, newest first */
} conf_ctx;

/** One row of a case table. */
typedef struct conf_case {
    const char *name;         /**< dotted name, `[a-z0-9_.]` */
    unsigned flags;           /**< CONF_* */
    uint64_t needs;           /**< capabilities the driver must declare, else the case is n/a */
    uint64_t lacks;           /**< capabilities the driver must not declare, else n/a */
    void (*run)(conf_ctx *c); /**< the body */
} conf_case;

/* Case tables, each ended by a row with name NULL (cases_<area>.c). */
extern const conf_case conf_cases_write[];
extern const conf_case conf_cases_read[];
extern const conf_case conf_cases_ping[];
extern const conf_case conf_cases_handle[];
extern const conf_case conf_cases_vectors[];
extern const conf_case conf_cases_concurrency[];
extern const conf_case conf_cases_mark[];
extern const conf_case conf_cases_calls[];

/** @name Outcome */
/**@{*/
/** Record a failure (the first one wins). */
void conf_fail(conf_ctx *c, const char *fmt, ...) TRIFLE_PRINTF(2, 3);
/** Record a failure from c->err: `<what>: <STATUS> <message>`. */
void conf_fail_err(conf_ctx *c, const char *what, int rc);
/** Skip the case for an environment reason. */
void conf_skip(conf_ctx *c, const char *fmt, ...) TRIFLE_PRINTF(2, 3);
/**@}*/

/** Run @p expr (which reports into &c->err); on a non-zero result record it and return. */
#define CONF_OK(c, what, expr)                    \
    do {                                          \
        int conf_rc_;                             \
        trifle_error_clear(&(c)->err);            \
        if ((conf_rc_ = (expr)) != 0) {           \
            conf_fail_err((c), (what), conf_rc_); \
            return;                               \
        }                                         \
    } while (0)

/** If @p cond is false record the message and return. */
#define CONF_CHECK(c, cond, ...)         \
    do {                                 \
        if (!(cond)) {                   \
            conf_fail((c), __VA_ARGS__); \
            return;                      \
        }                                \
    } while (0)

/** Return from the body when a helper has recorded a failure. */
#define CONF_RETURN_IF_FAILED(c)         \
    do {                                 \
        if ((c)->failed || (c)->skipped) \
            return;                      \
    } while (0)

/** `const trifle_leaf *, size_t` arguments from brace pairs: CONF_LEAVES({"a", 1}, {"b.c", 2}). */
#define CONF_LEAVES(...)                  \
    ((const trifle_leaf[]){__VA_ARGS__}), \
        (sizeof((const trifle_leaf[]){__VA_ARGS__}) / sizeof(trifle_leaf))

/** @name Memory owned by the case (released after the body) */
/**@{*/
void *conf_alloc(conf_ctx *c, size_t size);
char *conf_strdup(conf_ctx *c, const char *s);
char *conf_printf(conf_ctx *c, const char *fmt, ...) TRIFLE_PRINTF(2, 3);
/** Call @p fn(@p p) after the body. */
void conf_defer(conf_ctx *c, void (*fn)(conf_ctx *c, void *p), void *p);
/** Run the deferred calls now, newest first (the runner does this after each body). */
void conf_release(conf_ctx *c);
/**@}*/

/** @name Storage helpers */
/**@{*/
/** A storage connection for @p url (NULL = c->url), closed after the body. NULL on failure. */
trifle_storage *conf_storage(conf_ctx *c, const char *url);
/** c->url with extra query parameters appended (`"separator=--"`), owned by the case. */
const char *conf_url_with(conf_ctx *c, const char *params);
/** Fill @p b for (@p key, @p g, @p at) with the identifier of @p st. 0 or -1 (recorded). */
int conf_bucket(conf_ctx *c, trifle_storage *st, trifle_bucket *b, const char *key, const char *g,
                int64_t at);
/** Fill @p e: its bucket and a sorted copy of @p leaves. 0 or -1 (recorded). */
int conf_entry(conf_ctx *c, trifle_storage *st, trifle_entry *e, const char *key, const char *g,
               int64_t at, const trifle_leaf *leaves, size_t n);

/** The size of the batch cases' one call. */
#define CONF_BATCH 10000

/**
 * The @p n entries of the batch cases in c->st, owned by the case: entry i is ("batch", "1h",
 * CONF_T0 + i hours) with the leaves count = i % 7 + 1 and n.v = 0.5.
 *
 * @param c     the case
 * @param n     how many
 * @param b_out receives their buckets (owned by the case)
 * @return the entries, or NULL on failure (recorded)
 */
trifle_entry *conf_batch(conf_ctx *c, size_t n, trifle_bucket **b_out);

/**
 * A trifle_leaf_fn that counts the leaves it is given, for the cases that look only at how many
 * a call delivers.
 *
 * @param index   ignored
 * @param path    ignored
 * @param value   ignored
 * @param payload a size_t incremented per leaf, or NULL to count nothing
 * @return 0
 */
int conf_count_leaf(size_t index, const char *path, double value, void *payload);

/** The leaves trifle_storage_get()/trifle_storage_scan() delivered, per bucket index. */
typedef struct conf_reads {
    size_t n;            /**< buckets asked for */
    size_t *start;       /**< first leaf of index i in leaves */
    size_t *count;       /**< leaves of index i */
    trifle_leaf *leaves; /**< every leaf delivered, grouped by index; paths owned by the case */
    size_t n_leaves;     /**< total */
} conf_reads;

/** One trifle_storage_get(); NULL on failure (recorded). Checks the grouping/order promise. */
conf_reads *conf_get(conf_ctx *c, trifle_storage *st, const trifle_bucket *b, size_t n);
/** One trifle_storage_scan(); NULL on failure; @p rc_out receives its status (ENOTFOUND too). */
conf_reads *conf_scan(conf_ctx *c, trifle_storage *st, const char *key, int64_t *at, int *rc_out);
/** Compare index @p i with exactly @p exp. 0 or -1 (recorded, naming @p what). */
int conf_expect(conf_ctx *c, const conf_reads *r, size_t i, const char *what,
                const trifle_leaf *exp, size_t n, int tol);
/** 1 when @p got equals @p want under @p tol. */
int conf_same(double got, double want, int tol);
/**@}*/

/** @name Stats handle helpers */
/**@{*/
/**
 * A handle on c->url (URL @p url when not NULL) with `buffer.enabled=false`, then the NULL-ended
 * name/value option pairs; set up, closed and freed after the body (a close error fails the case).
 */
trifle *conf_handle(conf_ctx *c, const char *url, ...);
/** Close a handle from conf_handle() now; 0 or -1 (recorded). It is not closed again later. */
int conf_handle_close(conf_ctx *c, trifle *t);
/** A payload from JSON, freed after the body; NULL on failure (recorded). */
trifle_payload *conf_payload(conf_ctx *c, const char *json);
/** trifle_values(), freed after the body; NULL on failure (recorded). */
trifle_series *conf_values(conf_ctx *c, trifle *t, const char *key, int64_t from, int64_t to,
                           const char *g);
/** Compare the leaves of @p json (unpacked row text) with @p want_json exactly. 0 or -1. */
int conf_expect_json(conf_ctx *c, const char *what, const char *json, const char *want_json);
/** Compare row @p i of @p s with @p want_json (`{}` for an empty bucket). 0 or -1. */
int conf_expect_row(conf_ctx *c, const trifle_series *s, size_t i, const char *want_json);
/**@}*/

/** The driver URL with its server replaced by one nobody listens on (`127.0.0.1:1`, a path in a
 *  missing directory); owned by the case. */
const char *conf_url_unreachable(conf_ctx *c);

/** Sort leaves by path in byte order. */
void conf_sort_leaves(trifle_leaf *v, size_t n);

/** What the runner resolved from its arguments (runner.c); also drives --oom (oom.c). */
typedef struct conf_target {
    char name[64];        /**< driver name */
    const char *driver;   /**< --driver argument (name or file), or NULL: from the URL */
    char *driver_path;    /**< --driver-path plus the directory of a --driver file, or NULL */
    const char *url;      /**< DRIVER_URL or TRIFLE_TEST_URI_<NAME>; NULL: a temp file */
    const char *temp_url; /**< printf format (dir, namespace) of a temp file URL, or NULL */
    const char *ns_param; /**< URL parameter carrying the namespace */
    char tmpdir[512];     /**< directory of temp files, "" until made */
} conf_target;

/* target.c */
/** The name of identifier mode @p mode ("full", "partial", "separated"), as URLs spell it. */
const char *conf_mode_name(int mode);
/** The URL of namespace @p ns in identifier mode @p mode (malloc'd); NULL when out of memory. */
char *conf_target_url(conf_target *t, const char *ns, int mode);
/** Make t->tmpdir if it is not made yet. 0 or -1 (message printed). */
int conf_target_tmpdir(conf_target *t);
/** Register the compiled-in build plugin directory (ERRATA I13). */
void conf_register_build_dir(void);
/* oom.c */
/** --oom: fail the Nth allocation for N = 1, 2, ... (oom.c). Returns the exit status. */
int conf_oom_main(conf_target *t, int tap);

#endif
