/**
 * @file trifle/trifle.h
 * @brief Trifle Stats for C: time-series counters in your own database. This umbrella header
 * includes every public header and declares the stats handle and its operations
 * (docs/architecture.md).
 *
 * @code
 * trifle_error err = TRIFLE_ERROR_INIT;
 * trifle_config *cfg = NULL;
 * trifle *t = NULL;
 * trifle_payload *p = NULL;
 * trifle_config_new(&cfg, &err);
 * trifle_config_set(cfg, "driver", "sqlite:stats.db", &err);
 * if (trifle_open(&t, cfg, &err) != 0 || trifle_setup(t, &err) != 0) { ... }
 * trifle_payload_parse(&p, "{\"count\":1,\"duration\":{\"db\":0.25}}", 34, &err);
 * trifle_track(t, "event::logs", (int64_t)time(NULL), p, 0, &err);
 * trifle_close(t, &err);
 * trifle_free(t);
 * @endcode
 */
#ifndef TRIFLE_TRIFLE_H
#define TRIFLE_TRIFLE_H

#include "common.h"
#include "config.h"
#include "driver.h"
#include "error.h"
#include "payload.h"
#include "series.h"
#include "storage.h"
#include "time.h"

TRIFLE_BEGIN_DECLS

/** Flag for trifle_track()/trifle_assert(): count the write under `__untracked__`
 *  (docs/storage-format.md, "The system record"). */
#define TRIFLE_UNTRACKED 1u

/**
 * @brief Validate @p cfg, load the driver and connect (no DDL: see trifle_setup()).
 * @param out On success a handle the caller owns: trifle_close() then trifle_free().
 * @param cfg Borrowed; the handle keeps its own copy.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_ECONFIG (`driver required`, URL and option errors); TRIFLE_ENOTFOUND or
 *         TRIFLE_EABI (plugin); TRIFLE_ECONN, TRIFLE_EAUTH (storage).
 */
TRIFLE_API int trifle_open(trifle **out, const trifle_config *cfg, trifle_error *err);

/**
 * @brief Flush pending writes (retrying until buffer.close_timeout_ms), stop background work and
 * close the connections. The memory stays valid until trifle_free(); every later call gets
 * TRIFLE_ECLOSED `buffer is closed`.
 * @param t The handle.
 * @param err Receives the error on failure; may be NULL.
 * @return 0, or TRIFLE_EDRIVER `<n> buffered operations could not be written: <last error>`.
 */
TRIFLE_API int trifle_close(trifle *t, trifle_error *err);

/**
 * @brief Free a handle (closing it first if needed, errors ignored); NULL is fine.
 * @param t The handle.
 */
TRIFLE_API void trifle_free(trifle *t);

/**
 * @brief Run the driver's setup: create tables/indexes if missing. Idempotent.
 * @param t The handle.
 * @param err Receives the error on failure; may be NULL.
 * @return 0 or storage codes.
 */
TRIFLE_API int trifle_setup(trifle *t, trifle_error *err);

/**
 * @brief Increment @p values in the bucket of every configured granularity, plus the
 * `__system__key__` counts when system tracking is on.
 * @param key Metric key: UTF-8, 1-200 bytes, no empty or `$` dotted segment; not
 *        `__system__key__` or `__untracked__`.
 * @param flags 0 or TRIFLE_UNTRACKED.
 * @param t The handle.
 * @param at The instant, Unix seconds.
 * @param values The validated values; borrowed (a payload can be shared by threads).
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_EINVAL (`invalid metric key`, `reserved key: __system__key__`, `time out of
 *         range`); storage codes when unbuffered; TRIFLE_EBUSY `buffer is full`.
 */
TRIFLE_API int trifle_track(trifle *t, const char *key, int64_t at, const trifle_payload *values,
                            unsigned flags, trifle_error *err);

/**
 * @brief Like trifle_track() but replaces the leaves; system counts still add.
 * @param t,key,at,values,flags As for trifle_track().
 * @param err Receives the error on failure; may be NULL.
 * @return As trifle_track().
 */
TRIFLE_API int trifle_assert(trifle *t, const char *key, int64_t at, const trifle_payload *values,
                             unsigned flags, trifle_error *err);

/**
 * @brief trifle_track() (or trifle_assert()) whose journal record also carries @p note.
 *
 * With a buffer and a journal (`buffer.journal`), the note is written in the same record as the
 * call, with one write(2): when the call returns, both are in the journal, and a process killed at
 * any instant leaves both or neither. trifle_open() hands the note back during replay to the
 * handler of trifle_config_set_note_handler(). Without a journal the note is not kept (the call
 * is made as trifle_track() would), and neither is it for an empty @p values, which writes
 * nothing. `trifle serve` puts the Idempotency-Key of the request (and the call's position in it)
 * there, so that a kill between the call and the server's own record of it cannot apply the call
 * twice (docs/http-api.md).
 * @param t,key,at,values,flags As for trifle_track().
 * @param assert_op 0: add the values (trifle_track()); 1: replace them (trifle_assert()).
 * @param note The note, 1..65535 bytes of any content; copied.
 * @param note_len Its length.
 * @param err Receives the error on failure; may be NULL.
 * @return As trifle_track(); TRIFLE_EINVAL for a NULL or empty note or one above 65535 bytes.
 */
TRIFLE_API int trifle_write_noted(trifle *t, int assert_op, const char *key, int64_t at,
                                  const trifle_payload *values, unsigned flags, const void *note,
                                  size_t note_len, trifle_error *err);

/**
 * @brief Read the series of @p key between @p from and @p to at @p granularity. The
 * buffer's pending writes for these buckets are flushed first (read-your-writes).
 * @param granularity Any valid granularity, configured or not.
 * @param skip_blanks Non-zero drops empty buckets.
 * @param t The handle.
 * @param out Receives the series.
 * @param key Metric key (`__system__key__` reads the system record).
 * @param from,to The range, Unix seconds; every bucket from floor(from) to floor(to).
 * @param err Receives the error on failure; may be NULL.
 * @return 0 and a caller-owned series (trifle_series_free()); TRIFLE_EINVAL (`invalid
 *         granularity: <g>`, `timeline too long: more than <n> points`); storage codes.
 */
TRIFLE_API int trifle_values(trifle *t, trifle_series **out, const char *key, int64_t from,
                             int64_t to, const char *granularity, int skip_blanks,
                             trifle_error *err);

/**
 * @brief Store the status ping of @p key (docs/storage-format.md, "Pings"): replaces the
 * previous one; not bucketed, not buffered. TRIFLE_ENOTSUP `driver does not support beam/scan`
 * without the capability.
 * @param t The handle.
 * @param key Metric key, checked as for trifle_track().
 * @param at The ping instant, Unix seconds (not floored).
 * @param values The values of the ping.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_EINVAL; TRIFLE_ENOTSUP; storage codes.
 */
TRIFLE_API int trifle_beam(trifle *t, const char *key, int64_t at, const trifle_payload *values,
                           trifle_error *err);

/**
 * @brief Read the ping of @p key (docs/storage-format.md, "Pings").
 * @param found Set to 1, or 0 when there is none (not an error; *values is then an empty payload).
 * @param at Set to the ping's instant when found.
 * @param values Receives a caller-owned payload with the `data` leaves (trifle_payload_free()).
 * @param t The handle.
 * @param key Metric key.
 * @param err Receives the error on failure; may be NULL.
 * @return 0 (also when there is no ping); TRIFLE_ENOTSUP `driver does not support beam/scan`;
 *        storage codes; TRIFLE_ENOMEM.
 */
TRIFLE_API int trifle_scan(trifle *t, const char *key, int *found, int64_t *at,
                           trifle_payload **values, trifle_error *err);

/**
 * @brief Write everything pending now; returns the first error, keeping the data.
 * @param t The handle.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; the first storage error (the records stay pending); TRIFLE_ECLOSED.
 */
TRIFLE_API int trifle_flush(trifle *t, trifle_error *err);

/**
 * Counters of a handle's write buffer (docs/architecture.md). All zero when the buffer is
 * disabled. Initialise with TRIFLE_BUFFER_COUNTERS_INIT: struct_size tells the library which
 * version of the struct the caller has, and it fills only the members that fit, so members can be
 * appended in later versions without breaking callers built against this one.
 */
typedef struct trifle_buffer_counters {
    size_t struct_size;          /**< sizeof(trifle_buffer_counters), set by the caller */
    uint64_t operations;         /**< track/assert calls accepted into the buffer */
    uint64_t flushes;            /**< flush attempts that wrote everything they took */
    uint64_t flush_errors;       /**< flush attempts that failed (data kept) */
    uint64_t retries;            /**< flush attempts that retried kept data */
    uint64_t unknown_outcomes;   /**< driver calls whose reply was lost (retried: at least once) */
    uint64_t quarantined;        /**< records waiting in quarantine now (gauge) */
    uint64_t pending_entries;    /**< records pending now, quarantine included (gauge) */
    uint64_t pending_operations; /**< operations accepted since the last flush took them (gauge) */
    uint64_t blocked_waits;      /**< calls that waited for room (buffer.full_policy block) */
    uint64_t rejected_full;      /**< calls refused with `buffer is full` */
} trifle_buffer_counters;

/** Initialiser of a trifle_buffer_counters: struct_size set, every counter 0. */
#define TRIFLE_BUFFER_COUNTERS_INIT                                  \
    {                                                                \
        sizeof(trifle_buffer_counters), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 \
    }

/**
 * @brief Read the buffer's counters.
 * @param t The handle.
 * @param out Initialised with TRIFLE_BUFFER_COUNTERS_INIT; the members its struct_size covers are
 *            filled with a consistent snapshot, struct_size and any later members are left alone.
 * @return 0, or TRIFLE_EINVAL for NULL arguments or a struct_size smaller than the first version
 *         of the struct (e.g. 0: not initialised). Thread-safe.
 */
TRIFLE_API int trifle_buffer_stats(const trifle *t, trifle_buffer_counters *out);

/**
 * @brief Called with each failed flush (from the flush thread or the caller that flushed).
 * @param err The failure; valid during the call only.
 * @param payload The pointer given to trifle_set_error_handler().
 * Must not call back into the same handle.
 */
typedef void (*trifle_error_handler)(const trifle_error *err, void *payload);

/**
 * @brief Install (or, with NULL, remove) the handler of background flush failures
 * (docs/architecture.md, "The write path").
 * Thread-safe.
 * @param t The handle.
 * @param fn The handler, or NULL.
 * @param payload Passed to @p fn.
 */
TRIFLE_API void trifle_set_error_handler(trifle *t, trifle_error_handler fn, void *payload);

/**
 * @brief The handle's time zone. Borrowed; lives as long as the handle.
 * @param t The handle.
 * @return The zone.
 */
TRIFLE_API const trifle_zone *trifle_get_zone(const trifle *t);

/**
 * @brief The handle's effective configuration (after URL parameters). Borrowed.
 * @param t The handle.
 * @return The configuration.
 */
TRIFLE_API const trifle_config *trifle_get_config(const trifle *t);

/**
 * @brief `SQLiteDriver(J)`-style description of the handle's driver and mode.
 * @param t The handle.
 * @param buf Receives the NUL-terminated text.
 * @param size Size of @p buf in bytes.
 * @return The full length; a value >= @p size means it was truncated.
 */
TRIFLE_API size_t trifle_describe(const trifle *t, char *buf, size_t size);

/**
 * @brief The name of the handle's driver ("sqlite"). Borrowed.
 * @param t The handle.
 * @return The name.
 */
TRIFLE_API const char *trifle_driver_name(const trifle *t);

TRIFLE_END_DECLS

/* The series API: it needs only the handle's type (common.h), so it does not include this header
 * back; the umbrella includes it for the programs that use both. */
#include "analysis.h"

#endif
