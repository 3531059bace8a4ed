/**
 * @file trifle/series.h
 * @brief A series `{at[], values[]}`: the result of trifle_values() and the input of the series
 * post-processing functions (docs/series.md).
 */
#ifndef TRIFLE_SERIES_H
#define TRIFLE_SERIES_H

#include "error.h"
#include "time.h"

TRIFLE_BEGIN_DECLS

/** A series. Immutable once built (thread-safe to read); functions that transform return a new one.
 */
typedef struct trifle_series trifle_series;

/**
 * @brief Free a series; NULL is fine.
 * @param s The series.
 */
TRIFLE_API void trifle_series_free(trifle_series *s);

/**
 * @brief Number of rows.
 * @param s The series; borrowed.
 * @return The number of rows (0 for NULL).
 */
TRIFLE_API size_t trifle_series_len(const trifle_series *s);

/**
 * @brief Bucket start of row @p i (Unix seconds); 0 past the end.
 * @param s The series; borrowed.
 * @param i Row index.
 * @return The bucket start, or 0 past the end.
 */
TRIFLE_API int64_t trifle_series_at(const trifle_series *s, size_t i);

/**
 * @brief The numeric value at dotted @p path of row @p i, with the path and number rules of
 * docs/series.md ("Rows, paths and numbers").
 * @param s The series; borrowed.
 * @param i Row index.
 * @param path A dotted path.
 * @param out Receives the value.
 * @return 0 and *out, or TRIFLE_ENOTFOUND when absent or not numeric.
 */
TRIFLE_API int trifle_series_value(const trifle_series *s, size_t i, const char *path, double *out);

/**
 * @brief Row @p i as JSON text (canonical numbers). Caller-owned (trifle_mem_free()).
 * @param s The series; borrowed.
 * @param i Row index.
 * @param out Receives the text.
 * @param flags TRIFLE_JSON_COMPACT or TRIFLE_JSON_PRETTY.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_EINVAL past the end; TRIFLE_ENOMEM.
 */
TRIFLE_API int trifle_series_row_json(const trifle_series *s, size_t i, char **out, int flags,
                                      trifle_error *err);

/**
 * @brief The series as `{"at":[...],"values":[...]}`, bucket times in RFC 3339 in @p zone (NULL =
 * UTC), as the HTTP API and the CLI print it. Caller-owned text (trifle_mem_free()).
 * @param flags TRIFLE_JSON_COMPACT or TRIFLE_JSON_PRETTY (trifle/payload.h).
 * @param s The series; borrowed.
 * @param zone Zone of the bucket times; NULL = UTC.
 * @param out Receives the text.
 * @param err Receives the error on failure; may be NULL.
 * @return 0 or TRIFLE_ENOMEM.
 */
TRIFLE_API int trifle_series_to_json(const trifle_series *s, const trifle_zone *zone, char **out,
                                     int flags, trifle_error *err);

/**
 * @brief Build a series from JSON `{"at":[<unix seconds>...],"values":[<any JSON>...]}`, with
 * the normalisation of docs/series.md applied to the rows.
 * @param out Receives the caller-owned series (trifle_series_free()).
 * @param json The text; need not be NUL-terminated.
 * @param len Length of @p json in bytes.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_EINVAL `series arrays differ in length` or `invalid JSON: ...`.
 */
TRIFLE_API int trifle_series_from_json(trifle_series **out, const char *json, size_t len,
                                       trifle_error *err);

TRIFLE_END_DECLS

#endif
