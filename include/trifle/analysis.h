/**
 * @file trifle/analysis.h
 * @brief Series post-processing and the metrics query (docs/series.md): available paths,
 * aggregators, the timeline and category formatters, the expression transponder, designators and
 * trifle_query(), which the `trifle query` command and `POST /api/v1/metrics/query` both call.
 *
 * Everything here except trifle_query() is a pure function of its arguments: no storage, no
 * global state, thread-safe. Results are caller-owned and freed with trifle_mem_free() or the
 * matching `_free()`. Paths are dotted (`meta.duration`): each segment is trimmed of ASCII
 * whitespace, empty segments are dropped, objects are walked by member name and arrays by decimal
 * index (docs/series.md, "Rows, paths and numbers").
 *
 * The handle's own functions (trifle_open(), trifle_values()) are in trifle/trifle.h, which
 * includes this header; this header includes only the handle's type (trifle/common.h), so the two
 * do not include each other.
 *
 * @code
 * #include <trifle/trifle.h>   // the handle and, through it, this header
 * trifle_series *s = NULL;
 * double *sum = NULL;
 * size_t n = 0;
 * trifle_values(t, &s, "event::logs", from, to, "1h", 0, &err);
 * trifle_series_aggregate(&sum, NULL, &n, s, TRIFLE_AGGREGATOR_SUM, "count", 1, &err);
 * printf("%g\n", sum[0]);
 * trifle_mem_free(sum);
 * trifle_series_free(s);
 * @endcode
 */
#ifndef TRIFLE_ANALYSIS_H
#define TRIFLE_ANALYSIS_H

#include "common.h"
#include "error.h"
#include "payload.h"
#include "series.h"
#include "time.h"

TRIFLE_BEGIN_DECLS

/* ------------------------------------------------------------------------------------------- */
/* Paths                                                                                        */

/**
 * @brief The byte-sorted, de-duplicated dotted paths of every numeric leaf of every row, descending
 * into objects and arrays (index segments): rows `{"count":1,"meta":{"duration":2,"label":"x"}}`
 * and `{"count":2,"country":{"US":3}}` give `count`, `country.US`, `meta.duration`.
 * @param out Receives one allocation holding a NULL-terminated array of @p *n_out strings and the
 *        strings themselves; the caller frees it with a single trifle_mem_free(*out).
 * @param n_out Receives the number of paths (0 for an empty series).
 * @param s The series; borrowed.
 * @param err Receives the error on failure; may be NULL.
 * @return 0 or TRIFLE_ENOMEM. Thread-safe.
 */
TRIFLE_API int trifle_series_available_paths(char ***out, size_t *n_out, const trifle_series *s,
                                             trifle_error *err);

/**
 * @brief The concrete paths a formatter uses for @p path (docs/series.md, "Formatters"): `*`
 * segments expand to the child names found in any row, a path that addresses an object or array in
 * some row expands to every leaf beneath it, and a path absent from every row gives nothing.
 * @param out As for trifle_series_available_paths(): one allocation, one trifle_mem_free().
 * @param n_out Receives the number of paths.
 * @param s The series; borrowed.
 * @param path A dotted path; `*` segments match every member or index.
 * @param err Receives the error on failure; may be NULL.
 * @return 0 or TRIFLE_ENOMEM. Thread-safe.
 */
TRIFLE_API int trifle_series_resolve_paths(char ***out, size_t *n_out, const trifle_series *s,
                                           const char *path, trifle_error *err);

/* ------------------------------------------------------------------------------------------- */
/* Aggregators (docs/series.md, "Slices" and "Aggregators")                                    */

/** The four aggregators. */
typedef enum trifle_aggregator {
    TRIFLE_AGGREGATOR_SUM = 0,  /**< sum of the numeric values, 0 if none */
    TRIFLE_AGGREGATOR_MEAN = 1, /**< sum / count of the numeric values, 0 if none */
    TRIFLE_AGGREGATOR_MIN = 2,  /**< smallest numeric value, null if none */
    TRIFLE_AGGREGATOR_MAX = 3   /**< largest numeric value, null if none */
} trifle_aggregator;

/**
 * @brief Look up an aggregator by its name: `sum`, `mean`, `min` or `max` (exact, lower case).
 * @param out Receives a trifle_aggregator.
 * @param name The aggregator name.
 * @param err Receives the error on failure; may be NULL.
 * @return 0 or TRIFLE_EINVAL `unknown aggregator: <name>`. Thread-safe.
 */
TRIFLE_API int trifle_aggregator_parse(int *out, const char *name, trifle_error *err);

/**
 * @brief The name of an aggregator (`"sum"`), or NULL for a value outside trifle_aggregator.
 * @param aggregator A trifle_aggregator value.
 * @return A static string, or NULL for an unknown value. Thread-safe.
 */
TRIFLE_API const char *trifle_aggregator_name(int aggregator);

/**
 * @brief Aggregate the numeric values at @p path, one result per slice.
 *
 * Slicing: with n rows and s slices, s <= 1 or s > n gives one group of all rows;
 * otherwise the oldest n - (n / s) * s rows are dropped and the rest is cut into s groups.
 * An empty series gives no results.
 * @param values Receives a caller-owned array of @p *n_out results (trifle_mem_free()), NULL when
 *        there are none. A result without a value (min/max of a group with no numeric value) is
 *        NaN here and 0 in @p present.
 * @param present NULL, or receives a caller-owned array of @p *n_out flags, 1 where the result
 *        has a value (trifle_mem_free()).
 * @param n_out Receives the number of results.
 * @param aggregator A trifle_aggregator.
 * @param path A dotted path without `*`.
 * @param slices Number of slices; 0 and 1 both mean one.
 * @param s The series; borrowed.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_EINVAL `wildcard paths are not supported by aggregators` or `unknown
 *         aggregator: <n>`; TRIFLE_ENOMEM. On failure the outputs are NULL. Thread-safe.
 */
TRIFLE_API int trifle_series_aggregate(double **values, unsigned char **present, size_t *n_out,
                                       const trifle_series *s, int aggregator, const char *path,
                                       size_t slices, trifle_error *err);

/* ------------------------------------------------------------------------------------------- */
/* Formatters (docs/series.md, "Formatters")                                                   */

/**
 * Formatter flag: write bucket times as integer Unix seconds instead of RFC 3339 text in the
 * given zone. Combine with TRIFLE_JSON_PRETTY (trifle/payload.h).
 */
#define TRIFLE_SERIES_UNIX_TIME 0x100

/**
 * @brief Timeline callback: may replace the entry `{"at":...,"value":...}` of one row and path.
 * @param json_out Starts as NULL (keep the entry); set it to JSON text that the callback owns;
 *        the formatter parses it at once, so it need only stay valid until the callback is called
 *        again or the formatter returns.
 * @param at The bucket start (Unix seconds).
 * @param raw_json The raw value at the path as JSON text, or NULL when the row has none.
 * @param payload The pointer given to the formatter.
 * @return 0, or a negative trifle_status to stop the formatter, which then returns it.
 */
typedef int (*trifle_timeline_fn)(const char **json_out, int64_t at, const char *raw_json,
                                  void *payload);

/**
 * @brief Category callback: may rename the key and change the amount one row adds.
 * @param path_out Starts as NULL; set it to a non-empty string (valid until the callback is called
 *        again) to accumulate under that key instead. NULL or "" keeps @p path.
 * @param value_out Starts as the numeric value of the raw value, or 0; the amount added. A
 *        non-finite amount adds 0.
 * @param path The concrete path.
 * @param raw_json The raw value at the path as JSON text, or NULL when the row has none.
 * @param payload The pointer given to the formatter.
 * @return 0, or a negative trifle_status to stop the formatter, which then returns it.
 */
typedef int (*trifle_category_fn)(const char **path_out, double *value_out, const char *path,
                                  const char *raw_json, void *payload);

/**
 * @brief Timeline formatter: a JSON object mapping each concrete path of @p path (see
 * trifle_series_resolve_paths()) to one entry `{"at":<bucket start>,"value":<numeric value or 0>}`
 * per row; with @p slices > 1 each path maps to a list of groups (as for
 * trifle_series_aggregate()), still a list of lists when the groups fall back to one. An empty
 * series gives `{}`.
 * @param out Receives caller-owned JSON text (trifle_mem_free()), numbers in canonical text
 *        (docs/storage-format.md, "Number text").
 * @param zone Zone of the RFC 3339 `at` text; NULL = UTC. Ignored with TRIFLE_SERIES_UNIX_TIME.
 * @param flags TRIFLE_JSON_COMPACT or TRIFLE_JSON_PRETTY, optionally | TRIFLE_SERIES_UNIX_TIME.
 * @param fn NULL, or a callback that may replace each entry.
 * @param payload Passed to @p fn.
 * @param s The series; borrowed.
 * @param path A dotted path; `*` segments allowed.
 * @param slices Number of slices; 0 and 1 both mean one list per path.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_EINVAL when @p fn returns text that is not JSON; @p fn's own code;
 *         TRIFLE_ENOMEM. Thread-safe (the callback is called on the calling thread).
 */
TRIFLE_API int trifle_series_timeline(char **out, const trifle_series *s, const char *path,
                                      size_t slices, const trifle_zone *zone, int flags,
                                      trifle_timeline_fn fn, void *payload, trifle_error *err);

/**
 * @brief Category formatter: per group of rows (as for trifle_series_aggregate()), an object
 * mapping each concrete path (see trifle_series_resolve_paths()) to the sum of its numeric values
 * (missing or non-numeric values add 0 and keep the key). @p slices <= 1 gives the one group's
 * object (`{}` for an empty series); @p slices > 1 gives a list of objects (`[]` for an empty
 * series).
 * @param out Receives caller-owned JSON text (trifle_mem_free()).
 * @param flags TRIFLE_JSON_COMPACT or TRIFLE_JSON_PRETTY.
 * @param fn NULL, or a callback that may rename keys and change amounts.
 * @param payload Passed to @p fn.
 * @param s The series; borrowed.
 * @param path A dotted path; `*` segments allowed.
 * @param slices Number of slices; 0 and 1 both mean one object.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; @p fn's own code; TRIFLE_ENOMEM. Thread-safe.
 */
TRIFLE_API int trifle_series_category(char **out, const trifle_series *s, const char *path,
                                      size_t slices, int flags, trifle_category_fn fn,
                                      void *payload, trifle_error *err);

/* ------------------------------------------------------------------------------------------- */
/* Expression transponder (docs/series.md, "Expression transponder")                           */

/** A compiled transponder expression. Immutable once compiled: thread-safe to share. */
typedef struct trifle_expression trifle_expression;

/**
 * @brief Compile an expression over up to 26 paths: the i-th path is variable `a`+i.
 *
 * The grammar is `+ - * /`, parentheses, decimal numbers (`2`, `1.5`, `1.`) and the functions
 * `sum mean avg min max sqrt`. Errors are upstream's messages, verbatim: `at least one path is
 * required`, `too many paths. maximum supported is 26`, `response path is required`, `wildcard
 * paths are not supported yet`, `expression must be text`, `invalid token at position <i>`,
 * `unexpected end of expression`, `missing closing parenthesis`, `unexpected token "<t>"`,
 * `unknown variable <x>`, `unknown function <f>`, `function sqrt expects 1 argument`; and
 * `expression is nested too deeply` past 256 levels of nesting.
 * @param out On success a caller-owned expression (trifle_expression_free()).
 * @param paths @p n_paths dotted paths; a NULL or blank entry defines no variable (its letter is
 *        then unknown).
 * @param expression The expression text; NULL gives `expression must be text`.
 * @param response Dotted path each row's result is written to.
 * @param n_paths Number of entries in @p paths, 1 to 26.
 * @param err Receives the error on failure; may be NULL.
 * @return 0, TRIFLE_EINVAL with one of the messages above, or TRIFLE_ENOMEM. Thread-safe.
 */
TRIFLE_API int trifle_expression_compile(trifle_expression **out, const char *const *paths,
                                         size_t n_paths, const char *expression,
                                         const char *response, trifle_error *err);

/**
 * @brief Free a compiled expression; NULL is fine.
 * @param e The expression.
 */
TRIFLE_API void trifle_expression_free(trifle_expression *e);

/**
 * @brief Apply @p e to every row: a copy of @p s with the result written at the response path
 * (JSON null when a variable is missing or not numeric, on division by zero, `sqrt` of a negative
 * number or a non-finite result). Intermediate members that are absent or null become objects.
 * @param out On success a new caller-owned series (trifle_series_free()); @p s is unchanged.
 * @param e A compiled expression; borrowed.
 * @param s The series to transform; borrowed, unchanged.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_EINVAL `cannot write to response path <path>` when an intermediate member is
 *         neither absent, null nor an object (the whole transform fails); TRIFLE_ENOMEM.
 *         Thread-safe.
 */
TRIFLE_API int trifle_expression_apply(trifle_series **out, const trifle_expression *e,
                                       const trifle_series *s, trifle_error *err);

/**
 * @brief Check paths, expression and response as trifle_expression_compile() does, without
 * keeping the result (upstream `validate_expression`).
 * @param paths,n_paths,expression,response As for trifle_expression_compile().
 * @param err Receives the error on failure; may be NULL.
 * @return 0, or the compile error. Thread-safe.
 */
TRIFLE_API int trifle_expression_validate(const char *const *paths, size_t n_paths,
                                          const char *expression, const char *response,
                                          trifle_error *err);

/**
 * @brief Compile and apply in one call (upstream `transform_expression`).
 * @param out On success a new caller-owned series (trifle_series_free()).
 * @param s The series; borrowed.
 * @param paths,n_paths,expression,response As for trifle_expression_compile().
 * @param err Receives the error on failure; may be NULL.
 * @return 0 and a new caller-owned series, or any error of trifle_expression_compile() and
 *         trifle_expression_apply(). Thread-safe.
 */
TRIFLE_API int trifle_series_transform(trifle_series **out, const trifle_series *s,
                                       const char *const *paths, size_t n_paths,
                                       const char *expression, const char *response,
                                       trifle_error *err);

/* ------------------------------------------------------------------------------------------- */
/* Designators (docs/series.md, "Designators")                                                 */

/** A bucket labeller for histogram-style tracking. Immutable once built: thread-safe to share. */
typedef struct trifle_designator trifle_designator;

/** Buffer size that holds every designator label (positional digits of any double, `+`, NUL). */
#define TRIFLE_DESIGNATOR_LABEL_SIZE 400

/**
 * @brief Linear buckets: a value maps to the smallest multiple of @p step (counted from 0) that is
 * >= it, capped at @p max; values <= @p min map to @p min, values > @p max to `<max>+`.
 * @param step An integral value >= 1.
 * @param out On success the caller-owned designator.
 * @param min Lower bound; values at or below it get its label.
 * @param max Upper bound; values above it get `<max>+`.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_EINVAL `linear designator requires min < max and an integer step >= 1`
 *         (also for non-finite bounds); TRIFLE_ENOMEM. The caller owns *out
 *         (trifle_designator_free()).
 */
TRIFLE_API int trifle_designator_new_linear(trifle_designator **out, double min, double max,
                                            double step, trifle_error *err);

/**
 * @brief Geometric buckets: the smallest power of ten >= the value (exact, from its decimal
 * exponent), capped at @p max, labelled with a decimal point (`1.0`, `100.0`, `0.01`). A
 * negative @p min becomes 0.
 * @param out On success the caller-owned designator.
 * @param min Lower bound (negative values count as 0).
 * @param max Upper bound; values above it get `<max>+`.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_EINVAL `geometric designator requires min < max` (also for non-finite
 *         bounds); TRIFLE_ENOMEM. The caller owns *out (trifle_designator_free()).
 */
TRIFLE_API int trifle_designator_new_geometric(trifle_designator **out, double min, double max,
                                               trifle_error *err);

/**
 * @brief Custom buckets: a value maps to the smallest bucket >= it. The buckets are copied,
 * sorted and de-duplicated; non-finite entries are ignored.
 * @param buckets @p n bucket bounds, any order.
 * @param out On success the caller-owned designator.
 * @param n Number of entries in @p buckets.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_EINVAL `custom designator requires at least one bucket` when no finite bucket
 *         is given; TRIFLE_ENOMEM. The caller owns *out (trifle_designator_free()).
 */
TRIFLE_API int trifle_designator_new_custom(trifle_designator **out, const double *buckets,
                                            size_t n, trifle_error *err);

/**
 * @brief Free a designator; NULL is fine.
 * @param d The designator.
 */
TRIFLE_API void trifle_designator_free(trifle_designator *d);

/**
 * @brief The label of @p v (`"20"`, `"100+"`, `"0.1"`, `"100.0+"`); `""` for NaN and ±Infinity.
 * @param buf Receives the NUL-terminated label, truncated to @p size - 1 bytes;
 *        TRIFLE_DESIGNATOR_LABEL_SIZE bytes always suffice.
 * @param d The designator; borrowed.
 * @param v The value to label.
 * @param size Size of @p buf in bytes.
 * @return The label's full length (as snprintf). Locale-independent; thread-safe.
 */
TRIFLE_API size_t trifle_designator_label(const trifle_designator *d, double v, char *buf,
                                          size_t size);

/* ------------------------------------------------------------------------------------------- */
/* Query (docs/series.md, "Queries")                                                           */

/** The outcome of trifle_query(): the `data` object, or an error with its kind
 *  (trifle_query_outcome), code, message and extra fields. */
typedef struct trifle_query_result trifle_query_result;

/** Flags for trifle_query(). */
enum trifle_query_flags {
    TRIFLE_QUERY_HTTP_TIME = 0, /**< `from`/`to` need an offset (docs/http-api.md) */
    TRIFLE_QUERY_CLI_TIME = 1   /**< `from`/`to` also accept the CLI forms of docs/cli.md (`now`,
                                     `@<unix>`, local times in the handle's zone) */
};

/**
 * @brief Run a metrics query (docs/series.md, "Queries") given as a JSON object.
 *
 * Fields: `key`, `from`, `to`, `granularity`, `mode` (`aggregate`, `timeline`, `category`; alias
 * `format` when `mode` is absent), `value_path` (string or array of strings), `aggregator`,
 * `slices`, and the transponder fields: `transpond_paths` (array of strings or one
 * comma-separated string), `expression`, `response`. When any transponder field is present the
 * expression is compiled after the `value_path` shape check (its errors are TRIFLE_QUERY_INVALID
 * with the trifle_expression_compile() messages) and applied to the rows right after they are
 * read, so `available_paths` includes the response path.
 * Checks run in the order of docs/series.md ("Order of checks"); the first failure is the
 * result.
 *
 * When the handle's driver answers queries itself (TRIFLE_CAP_QUERY, driver ABI 1.4: the HTTP
 * driver), the checks up to the transponder fields run here, except whether the granularity is
 * configured; `from` and `to` are resolved here (CLI forms included) and sent as UTC instants,
 * and the driver's far side reads, applies its stored transponders and computes the rest. Its
 * answer (an HTTP status and body, docs/http-driver.md, "Queries") becomes the outcome: 200,
 * 400, 422 and 5xx give TRIFLE_QUERY_OK, _MALFORMED, _INVALID and _FAILED; one that is malformed
 * is a TRIFLE_QUERY_FAILED outcome (TRIFLE_EDRIVER) naming what is wrong.
 * @param out Receives a caller-owned result for every outcome of the request, success or not
 *        (trifle_query_result_free()).
 * @param t The handle: its zone, granularity list and max_points apply; it is read with
 *        trifle_values() (read-your-writes), or its driver answers (see above).
 * @param request JSON text of the request body; need not be NUL-terminated.
 * @param len Length of @p request.
 * @param flags A trifle_query_flags value.
 * @param err Receives the error on failure; may be NULL.
 * @return 0 when *out was produced (inspect trifle_query_result_outcome()); TRIFLE_ENOMEM; or
 *         TRIFLE_EINVAL when @p t or @p request is NULL. Thread-safe (as the handle).
 */
TRIFLE_API int trifle_query(trifle_query_result **out, trifle *t, const char *request, size_t len,
                            int flags, trifle_error *err);

/**
 * @brief Reads the series of a query for trifle_query_with_reader(): trifle_values() with
 * skip_blanks off, or anything that returns such a series (e.g. with stored transponders applied).
 * @param out Receives a caller-owned series on success.
 * @param key,from,to,granularity The checked request fields.
 * @param payload The pointer given to trifle_query_with_reader().
 * @param err Receives the error on failure; TRIFLE_EINVAL gives a
 *        TRIFLE_QUERY_MALFORMED outcome, anything else TRIFLE_QUERY_FAILED.
 * @return 0 or a status.
 */
typedef int (*trifle_query_reader)(trifle_series **out, const char *key, int64_t from, int64_t to,
                                   const char *granularity, void *payload, trifle_error *err);

/**
 * @brief trifle_query() with the series read by @p reader instead of trifle_values(): the checks,
 * the handle's zone, granularities and flags are the same. `trifle serve` uses it to apply the
 * stored transponders of a source before the query sees the rows. With a reader the query is
 * always computed here, even when the driver could answer it.
 * @param out,t,request,len,flags,err As for trifle_query().
 * @param reader Reads the series; NULL reads with trifle_values() as trifle_query() does.
 * @param payload Passed to @p reader.
 * @return As trifle_query(). Thread-safe (as the handle and the reader).
 */
TRIFLE_API int trifle_query_with_reader(trifle_query_result **out, trifle *t, const char *request,
                                        size_t len, int flags, trifle_query_reader reader,
                                        void *payload, trifle_error *err);

/**
 * @brief Free a query result; NULL is fine.
 * @param r The result.
 */
TRIFLE_API void trifle_query_result_free(trifle_query_result *r);

/** The outcome of a query, in the query's own terms: trifle_query_result_outcome(). Callers
 *  map it to their protocol; `trifle serve` answers 200, 400, 422 and 500 (docs/http-api.md).
 *  Append only; values are never reused. */
enum trifle_query_outcome {
    TRIFLE_QUERY_OK = 0,        /**< success: the `data` object (trifle_query_result_render()) */
    TRIFLE_QUERY_MALFORMED = 1, /**< the request is malformed or refused before it is read: not
                                     JSON, a missing or ill-typed field, an unknown granularity,
                                     a timeline too long (docs/series.md, checks 1-7) */
    TRIFLE_QUERY_INVALID = 2,   /**< the request is well-formed but cannot be answered: the
                                     validation messages of docs/series.md and transponder errors;
                                     the extra fields (`allowed`, `missing_paths`, ...) may say
                                     more */
    TRIFLE_QUERY_FAILED = 3     /**< reading failed: the storage or the answering driver
                                     (trifle_query_result_code() says which error) */
};

/**
 * @brief The outcome of a query (see trifle_query_outcome).
 * @param r The result; borrowed. NULL gives TRIFLE_QUERY_FAILED.
 * @return A trifle_query_outcome value. Thread-safe for concurrent readers.
 */
TRIFLE_API int trifle_query_result_outcome(const trifle_query_result *r);

/**
 * @brief The outcome as a trifle_status: 0 on success, TRIFLE_EINVAL for TRIFLE_QUERY_MALFORMED
 * and TRIFLE_QUERY_INVALID, the storage error's code (TRIFLE_ECONN, TRIFLE_EDRIVER, ...) for
 * TRIFLE_QUERY_FAILED.
 * @param r The result; borrowed.
 * @return The status code. Thread-safe for concurrent readers.
 */
TRIFLE_API int trifle_query_result_code(const trifle_query_result *r);

/**
 * @brief The error message (`Unknown path(s): count`, `invalid granularity: 5x`), "" on success.
 * Borrowed from @p r.
 * @param r The result.
 * @return The message, borrowed from @p r.
 */
TRIFLE_API const char *trifle_query_result_message(const trifle_query_result *r);

/** Renderings of a query result for trifle_query_result_render(). The HTTP response body and
 *  the CLI's output are drawn by `trifle serve` and `trifle` from this one (values 1-4, the
 *  HTTP, CLI, CSV and table renderings before 1.0.0, are retired and never reused). */
enum trifle_query_render {
    /** Success: the `data` object. Failure: the extra error fields as an object
     *  (`{"allowed":[...]}`, `{"missing_paths":[...],"available_paths":[...]}`, or `{}`). */
    TRIFLE_QUERY_RENDER_DATA = 0
};

/**
 * @brief Render a result as JSON text.
 * @param out Receives caller-owned NUL-terminated text without a trailing newline
 *        (trifle_mem_free()).
 * @param style A trifle_query_render value.
 * @param flags TRIFLE_JSON_COMPACT or TRIFLE_JSON_PRETTY.
 * @param r The result; borrowed.
 * @param err Receives the error on failure; may be NULL.
 * @return 0, TRIFLE_EINVAL for an unknown style, or TRIFLE_ENOMEM. Thread-safe.
 */
TRIFLE_API int trifle_query_result_render(char **out, const trifle_query_result *r, int style,
                                          int flags, trifle_error *err);

TRIFLE_END_DECLS

#endif
