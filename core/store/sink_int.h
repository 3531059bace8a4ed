/* The sink: what a driver's `get` and `scan` emit through host->emit, collected for one call
 * (sink.c). The storage (storage.c) owns one per connection; the host table (loader.c) hands
 * trifle__sink_emit to drivers. Never installed. */
#ifndef TRIFLE_SINK_INT_H
#define TRIFLE_SINK_INT_H

#include <stddef.h>

#include "trifle/driver.h"
#include "trifle/storage.h"

struct sink_rec;
struct sink_block;

struct trifle_sink {
    struct sink_rec *recs;
    size_t n, cap;
    struct sink_block *head, *cur;
    size_t limit; /* emitted indexes must be below it */
    int rc;       /* first failure: TRIFLE_ENOMEM or TRIFLE_EDRIVER */
    char msg[160];
};

/* host->emit: copy one leaf into the sink. Returns 0; TRIFLE_ENOMEM; TRIFLE_EINVAL for an index
 * outside the call's buckets or an empty path (the sink remembers the first failure, so a driver
 * that ignores the return still fails the call). */
int trifle__sink_emit(trifle_sink *sink, size_t index, const char *path, double value);

/* Start a call whose emitted indexes must be below limit (0 after the call: nothing may come). */
void trifle__sink_reset(trifle_sink *s, size_t limit);
/* Hand every (index, path) once to fn, in (index, path bytes) order, with duplicates summed in
 * emission order. Returns 0 or the first nonzero return of fn. */
int trifle__sink_deliver(trifle_sink *s, trifle_leaf_fn fn, void *payload);
/* Release what a large read left behind; small buffers are kept for the next call. */
void trifle__sink_trim(trifle_sink *s);
/* Free everything; the sink is then empty and reusable. */
void trifle__sink_free(trifle_sink *s);

#endif
