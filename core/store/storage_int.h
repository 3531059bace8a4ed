/* The storage layer's internals for the handle and the buffer. Never installed. */
#ifndef TRIFLE_STORAGE_INT_H
#define TRIFLE_STORAGE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "trifle/driver.h"
#include "trifle/storage.h"

/* One driver `calls` call (ABI 1.2): TRIFLE_ENOTSUP when the driver lacks TRIFLE_CAP_CALLS,
 * TRIFLE_EINVAL for a call without key or leaves. @p res may be NULL; filled as for inc. Internal:
 * the core routes track/assert here (core/trifle.c, core/buffer/buffer.c); no public wrapper
 * yet. */
int trifle__storage_calls(trifle_storage *st, const trifle_call *calls, size_t n,
                          trifle_write_result *res, trifle_error *err);
/* Whether the storage's driver takes whole calls (TRIFLE_CAP_CALLS). */
int trifle__storage_takes_calls(const trifle_storage *st);

/* Whether the storage's driver answers whole queries (TRIFLE_CAP_QUERY, ABI 1.3). */
int trifle__storage_answers_queries(const trifle_storage *st);
/* One driver `query` call: @p fn gets the answer once (0 returned), or the driver's error is
 * returned with err->driver set; a driver that returns 0 without answering is TRIFLE_EDRIVER.
 * TRIFLE_ENOTSUP without TRIFLE_CAP_QUERY. Internal: trifle_query() routes here
 * (core/query_handle.c). */
int trifle__storage_query(trifle_storage *st, const char *request, size_t len, trifle_answer_fn fn,
                          void *ctx, trifle_error *err);

/* The order of stored identities, the same in every identifier mode: identifier string, then
 * granularity label, then bucket start. The handle sorts a write's items by it and the buffer a
 * flush's records, so that two writers lock rows in one order. */
static inline int trifle__identity_cmp(const char *id_a, const char *gran_a, int64_t at_a,
                                       const char *id_b, const char *gran_b, int64_t at_b)
{
    int c = strcmp(id_a, id_b);

    if (c == 0)
        c = strcmp(gran_a, gran_b);
    if (c == 0)
        c = (at_a > at_b) - (at_a < at_b);
    return c;
}

#endif
