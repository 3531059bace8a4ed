/* libFuzzer target for trifle__query_answer (core/query.c): the answer a driver with
 * TRIFLE_CAP_QUERY hands over (drivers/http: the body of POST /api/v1/metrics/query) becomes a
 * query result. The first byte picks the status (200, 400, 422, 500, 502 or another), the rest is
 * the body. Every input must give a result whose outcome is one of trifle_query_outcome and whose
 * data (or extra fields) render; a crash, a leak or a sanitizer report is a failure. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "analysis_int.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int statuses[] = {200, 422, 400, 500, 502, 302};
    trifle_query_result *r = NULL;
    char *text = NULL;
    int status, outcome;

    if (size == 0)
        return 0;
    status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
    if (trifle__query_answer(&r, status, (const char *)data + 1, size - 1, "driver fuzz", NULL) !=
        0)
        return 0; /* out of memory */
    outcome = trifle_query_result_outcome(r);
    if (outcome != TRIFLE_QUERY_OK && outcome != TRIFLE_QUERY_MALFORMED &&
        outcome != TRIFLE_QUERY_INVALID && outcome != TRIFLE_QUERY_FAILED) {
        fprintf(stderr, "%d is not a query outcome\n", outcome);
        abort();
    }
    if (trifle_query_result_render(&text, r, TRIFLE_QUERY_RENDER_DATA, TRIFLE_JSON_PRETTY, NULL) ==
        0)
        trifle_mem_free(text);
    trifle_query_result_free(r);
    return 0;
}
