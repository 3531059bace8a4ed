/* Internal view of trifle_series. Rows are cJSON trees already normalised per SPEC §8.1, so every
 * post-processing function can treat "numeric" as cJSON_IsNumber + finite. Never installed. */
#ifndef TRIFLE_SERIES_INT_H
#define TRIFLE_SERIES_INT_H

#include <cjson/cJSON.h>

#include "trifle/series.h"

struct trifle_series {
    size_t n;
    int64_t *at;  /* n entries */
    cJSON **rows; /* n entries, each owned (any JSON value; values() produces objects) */
};

/* A series of n rows with at[] zeroed and rows[] NULL. TRIFLE_ENOMEM on failure. */
int trifle__series_new(trifle_series **out, size_t n, trifle_error *err);

/* SPEC §8.1 normalisation in place: numeric strings become numbers (recursively). */
void trifle__series_normalize(cJSON *v);

#endif
