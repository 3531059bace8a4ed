/* Internal helpers of the stats handle for the tests. Never installed. */
#ifndef TRIFLE_TRIFLE_INT_H
#define TRIFLE_TRIFLE_INT_H

/* Drop a handle the way a crashed process would: nothing pending is flushed or written, the flush
 * thread stops, the journal is closed (its lock released) and everything is freed. For tests of
 * the journal's replay that need an in-process store (the fake driver); a real crash is a child
 * process that is killed. */
struct trifle;
void trifle__abandon(struct trifle *t);

/* Whether the handle's driver answers whole queries (TRIFLE_CAP_QUERY). */
int trifle__answers_queries(const struct trifle *t);

/* trifle_query() through the driver (core/query_handle.c): read-your-writes for @p key at
 * @p granularity (a flush of what is pending for it, as trifle_values() does), then one driver
 * `query` call on a pooled connection; @p fn gets the answer (trifle__storage_query). */
int trifle__query_remote(struct trifle *t, const char *key, const char *granularity,
                         const char *request, size_t len,
                         int (*fn)(void *ctx, int status, const char *body, size_t len), void *ctx,
                         trifle_error *err);

#endif
