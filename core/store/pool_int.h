/* The driver connections of one stats handle (option `connections`, docs/scaling.md). Never
 * installed.
 *
 * Up to `max` storages opened with the same URL and options. The first is opened by trifle_open()
 * (so a bad URL or an unreachable store fails there) and also answers what needs no I/O — the
 * identifier mode, the separator, identifiers — from any thread. The others are opened on demand,
 * when every open connection is busy and fewer than `max` are open. A connection is used by one
 * thread at a time (the driver ABI's rule), so a call takes one with trifle__pool_get() and gives
 * it back with trifle__pool_put(). A connection whose call failed with TRIFLE_ECONN or
 * TRIFLE_ETIMEDOUT is closed and replaced by a fresh one when one is next needed (the first is
 * kept: the drivers reconnect by themselves, and its metadata is read without a lock). */
#ifndef TRIFLE_POOL_INT_H
#define TRIFLE_POOL_INT_H

#include <stddef.h>

#include "trifle/storage.h"

typedef struct trifle__pool trifle__pool;

/* A pool around @p first (owned from now on, also on failure) that opens the others with
 * @p url and @p so (copied). TRIFLE_ENOMEM, TRIFLE_ERROR. */
int trifle__pool_new(trifle__pool **out, trifle_storage *first, const char *url,
                     const trifle_storage_options *so, size_t max, trifle_error *err);

/* The first connection, for questions that need no I/O. Borrowed; valid until the pool is
 * closed. */
trifle_storage *trifle__pool_meta(const trifle__pool *p);

/* A free connection for one call: an idle open one, else a new one while fewer than max are open,
 * else wait for one. TRIFLE_ECLOSED after trifle__pool_close(); the store's error when a new
 * connection cannot be opened and none is open to wait for. */
int trifle__pool_get(trifle__pool *p, trifle_storage **out, trifle_error *err);

/* Give back a connection with the status of the call made on it. */
void trifle__pool_put(trifle__pool *p, trifle_storage *st, int rc);

/* How many connections are open now (for tests and /stats). */
size_t trifle__pool_open_count(trifle__pool *p);

/* Wait until no connection is in use, then close them all, the first too (trifle__pool_meta() is
 * NULL from then on); later gets fail with TRIFLE_ECLOSED. */
void trifle__pool_close(trifle__pool *p);

/* Close (if still open) and free. NULL is fine. */
void trifle__pool_free(trifle__pool *p);

#endif
