/* Helpers shared by the series post-processing modules (series.c, aggregate.c, format.c,
 * expression.c, query.c): dotted paths, fetch, sorted string sets and slicing. Never installed. */
#ifndef TRIFLE_ANALYSIS_INT_H
#define TRIFLE_ANALYSIS_INT_H

#include <cjson/cJSON.h>

#include "series_int.h"
#include "trifle/analysis.h"

/* A dotted path split per SPEC §8.1: segments trimmed of ASCII whitespace, empty ones dropped.
 * `text` is the segments joined with "." (the normalised path); `seg[i]` point into one block. */
typedef struct trifle__path {
    size_t n;
    char **seg;
    char *text;
    char *mem; /* the block seg[] and text point into */
} trifle__path;

/* Parse path (NULL = ""). Returns 0 or TRIFLE_ENOMEM (err filled). */
int trifle__path_parse(trifle__path *p, const char *path, trifle_error *err);
void trifle__path_free(trifle__path *p);

/* SPEC §8.1 fetch: the value at p inside v, or NULL when absent. The empty path gives v. */
const cJSON *trifle__fetch(const cJSON *v, const trifle__path *p);

/* 1 and *out when v is a finite number (SPEC §8.1 "numeric"), else 0. v may be NULL. */
int trifle__numeric(const cJSON *v, double *out);

/* ASCII whitespace: space, TAB, LF, VT, FF, CR. */
int trifle__is_space(char c);
/* Bounds of s without leading/trailing ASCII whitespace: *start and the returned length. */
size_t trifle__trim(const char *s, const char **start);

/* A byte-sorted set of unique strings. Allocation failure is sticky (`failed`). */
typedef struct trifle__strset {
    char **v;
    size_t n, cap;
    int failed;
} trifle__strset;

#define TRIFLE__STRSET_INIT \
    {                       \
        NULL, 0, 0, 0       \
    }

/* Insert s[0..len) unless present. Returns 0, or -1 after an allocation failure. */
int trifle__strset_add(trifle__strset *set, const char *s, size_t len);
/* Index of s or -1. */
ptrdiff_t trifle__strset_find(const trifle__strset *set, const char *s);
void trifle__strset_free(trifle__strset *set);
/* Copy into one caller-owned block: a NULL-terminated pointer array followed by the strings. */
int trifle__strset_export(char ***out, size_t *n_out, const trifle__strset *set, trifle_error *err);

/* SPEC §8.1 available_paths into set. Returns 0 or TRIFLE_ENOMEM. */
int trifle__available_paths(trifle__strset *set, const trifle_series *s, trifle_error *err);

/* SPEC §8.4 path resolution into set. Returns 0 or TRIFLE_ENOMEM. */
int trifle__resolve_paths(trifle__strset *set, const trifle_series *s, const char *path,
                          trifle_error *err);

/* SPEC §8.2: for n items and s slices, the number of groups, the index of the first item kept and
 * the size of each group. */
void trifle__slices(size_t n, size_t s, size_t *groups, size_t *start, size_t *size);

/* Aggregate into caller-provided arrays of trifle__slices() groups (values[i] NaN when absent).
 * Returns 0 or TRIFLE_EINVAL (wildcard, unknown aggregator) or TRIFLE_ENOMEM. */
int trifle__aggregate(double **values, unsigned char **present, size_t *n_out,
                      const trifle_series *s, int aggregator, const char *path, size_t slices,
                      trifle_error *err);

/* The formatters as cJSON trees (the public functions print them). zone/flags as in analysis.h. */
int trifle__timeline(cJSON **out, const trifle_series *s, const char *path, size_t slices,
                     const trifle_zone *zone, int flags, trifle_timeline_fn fn, void *payload,
                     trifle_error *err);
int trifle__category(cJSON **out, const trifle_series *s, const char *path, size_t slices,
                     trifle_category_fn fn, void *payload, trifle_error *err);

/* A bucket time as JSON: Unix seconds with TRIFLE_SERIES_UNIX_TIME, else RFC 3339 in zone. */
cJSON *trifle__time_json(int64_t at, const trifle_zone *zone, int flags);

/* Reads the series for a query: trifle_values() in trifle_query(), a fake in the unit tests. */
typedef int (*trifle__query_read_fn)(trifle_series **out, const char *key, int64_t from, int64_t to,
                                     const char *granularity, void *ctx, trifle_error *err);

/* Everything trifle__query_run() needs from a handle. */
typedef struct trifle__query_env {
    const trifle_zone *zone;          /* source zone: bucket times and CLI local times */
    const char *const *granularities; /* the configured list */
    size_t n_granularities;
    int flags; /* trifle_query_flags */
    trifle__query_read_fn read;
    void *ctx;
    /* Answers the checked request elsewhere (a driver with TRIFLE_CAP_QUERY; NULL: read with
     * `read` and compute here). Gets the checked key and granularity, the request to send, and
     * hands the answer to fn (trifle__query_remote). */
    int (*remote)(void *ctx, const char *key, const char *granularity, const char *request,
                  size_t len, int (*fn)(void *fctx, int status, const char *body, size_t len),
                  void *fctx, trifle_error *err);
    const char *remote_name; /* who answers, for messages: "driver http" */
} trifle__query_env;

/* SPEC §9.7 over an environment. Returns 0 with *out for every outcome of the request, or
 * TRIFLE_ENOMEM. */
int trifle__query_run(trifle_query_result **out, const char *request, size_t len,
                      const trifle__query_env *env, trifle_error *err);

/* The result of an answer from elsewhere (trifle_answer_fn, ABI 1.4): @p status and the JSON
 * @p body of `POST /api/v1/metrics/query`. A malformed answer (not JSON, not the shape of its
 * status, an unexpected status) is a TRIFLE_QUERY_FAILED outcome with TRIFLE_EDRIVER whose
 * message names @p who and what is wrong. Returns 0 with *out, or TRIFLE_ENOMEM. The fuzz
 * target's entry. */
int trifle__query_answer(trifle_query_result **out, int status, const char *body, size_t len,
                         const char *who, trifle_error *err);

#endif
