/* libFuzzer target for the expression transponder (SPEC §8.6): compiler, evaluator and writer.
 *
 * Input: NUL-separated fields `expression \0 response \0 path0 \0 path1 ...`. Without a NUL the
 * whole input is the expression, with response "r" and paths "a", "b", "m.x". A compiled
 * expression is applied to a fixed series holding numbers, numeric strings, nulls, nested objects,
 * arrays and a row that is not an object, and every result row is printed.
 *
 * Invariants checked: compile and validate agree; a failure is TRIFLE_EINVAL with a message (or
 * TRIFLE_ENOMEM); apply keeps the row count and bucket times. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "trifle/analysis.h"

#define MAX_FIELDS 30

static const char series_json[] = "{\"at\":[0,60,120,180,240],\"values\":["
                                  "{\"a\":10,\"b\":\"4\",\"m\":{\"x\":0.5,\"y\":[1,2]}},"
                                  "{\"a\":-1e308,\"b\":0,\"m\":null},"
                                  "{\"a\":\"x\",\"r\":{\"keep\":1},\"m\":{\"x\":{}}},"
                                  "{},"
                                  "[1,2,3]]}";

static trifle_series *sample;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const default_paths[] = {"a", "b", "m.x"};
    const char *fields[MAX_FIELDS + 2];
    const char *const *paths = default_paths;
    size_t n_fields = 0, n_paths = 3, i;
    trifle_error err = TRIFLE_ERROR_INIT, err2 = TRIFLE_ERROR_INIT;
    trifle_expression *e = NULL;
    trifle_series *out = NULL;
    const char *response = "r";
    char *text;
    int rc, rc2;

    if (sample == NULL &&
        trifle_series_from_json(&sample, series_json, sizeof(series_json) - 1, NULL) != 0)
        abort();
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    fields[n_fields++] = text;
    for (i = 0; i < size && n_fields < MAX_FIELDS + 2; i++)
        if (text[i] == '\0')
            fields[n_fields++] = text + i + 1;
    if (n_fields > 1) {
        response = fields[1];
        paths = fields + 2;
        n_paths = n_fields - 2;
    }

    rc = trifle_expression_compile(&e, paths, n_paths, fields[0], response, &err);
    rc2 = trifle_expression_validate(paths, n_paths, fields[0], response, &err2);
    CHECK(rc == rc2);
    if (rc != 0) {
        CHECK(e == NULL);
        CHECK(rc == TRIFLE_EINVAL || rc == TRIFLE_ENOMEM);
        CHECK(err.message[0] != '\0' && strcmp(err.message, err2.message) == 0);
    } else {
        rc = trifle_expression_apply(&out, e, sample, &err);
        CHECK(rc == 0 || rc == TRIFLE_EINVAL || rc == TRIFLE_ENOMEM);
        if (rc == 0) {
            CHECK(trifle_series_len(out) == trifle_series_len(sample));
            for (i = 0; i < trifle_series_len(out); i++) {
                char *row = NULL;
                CHECK(trifle_series_at(out, i) == trifle_series_at(sample, i));
                CHECK(trifle_series_row_json(out, i, &row, 0, &err) == 0);
                trifle_mem_free(row);
            }
        } else {
            CHECK(out == NULL && strncmp(err.message, "cannot write to response path", 29) == 0);
        }
    }
    trifle_series_free(out);
    trifle_expression_free(e);
    free(text);
    return 0;
}
