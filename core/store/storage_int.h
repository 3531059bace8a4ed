/* The storage layer's internals for the handle and the buffer. Never installed. */
#ifndef TRIFLE_STORAGE_INT_H
#define TRIFLE_STORAGE_INT_H

#include <stddef.h>

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

#endif
