/* libFuzzer target for trifle__query_answer (core/query.c): the answer a driver with
 * TRIFLE_CAP_QUERY hands over (drivers/http: the body of POST /api/v1/metrics/query) becomes a
 * query result. The first byte picks the status (200, 400, 422, 500, 502 or another), the rest is
 * the body. Every input must give a result whose status is one of the query's and which renders
 * in every style; a crash, a leak or a sanitizer report is a failure. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "analysis_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int statuses[] = {200, 422, 400, 500, 502, 302};
    trifle_query_result *r = NULL;
    int status, style;

    if (size == 0)
        return 0;
    status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
    if (trifle__query_answer(&r, status, (const char *)data + 1, size - 1, "driver fuzz", NULL) !=
        0)
        return 0; /* out of memory */
    status = trifle_query_result_status(r);
    if (status != 200 && status != 400 && status != 422 && status != 500) {
        fprintf(stderr, "status %d is not a query outcome\n", status);
        abort();
    }
    for (style = TRIFLE_QUERY_RENDER_DATA; style <= TRIFLE_QUERY_RENDER_TABLE; style++) {
        char *text = NULL;
        if (trifle_query_result_render(&text, r, style, TRIFLE_JSON_PRETTY, NULL) == 0)
            trifle_mem_free(text);
    }
    trifle_query_result_free(r);
    return 0;
}
