/* The storage layer's internals: the result sink behind trifle_host_api.emit. Never installed. */
#ifndef TRIFLE_STORAGE_INT_H
#define TRIFLE_STORAGE_INT_H

#include <stddef.h>

#include "trifle/driver.h"

/* host->emit: copy one leaf into the sink. Returns 0; TRIFLE_ENOMEM; TRIFLE_EINVAL for an index
 * outside the call's buckets or an empty path (the sink remembers the first failure, so a driver
 * that ignores the return still fails the call). */
int trifle__sink_emit(trifle_sink *sink, size_t index, const char *path, double value);

#endif
