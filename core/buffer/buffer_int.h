/* The write buffer (SPEC §6 with ERRATA I6, I19, minor 4, 5). Never installed.
 *
 * Pending writes are merged per stored record in a hash table; a flush swaps in an empty table
 * (double buffering), folds the snapshot into what earlier failed flushes kept (older operations
 * first), and writes it as at most one `set` and one `inc` driver call per batch of
 * buffer.batch_items records. Nothing is dropped: applied records leave, the rest is retried with
 * exponential backoff, and records the store rejects because of stored data (EDATA) wait in a
 * quarantine that is retried alone. */
#ifndef TRIFLE_BUFFER_INT_H
#define TRIFLE_BUFFER_INT_H

#include <stdint.h>

#include "config_int.h"
#include "pool_int.h"
#include "thread_int.h"
#include "trifle/trifle.h"

typedef struct trifle__buffer trifle__buffer;

/* What the buffer borrows from its handle; everything outlives the buffer. */
typedef struct trifle__buffer_env {
    trifle_storage *st; /* the first connection: identifiers and other questions without I/O */
    trifle__pool *pool; /* every driver call takes a connection from here */
    const trifle_granularity *grans;
    size_t n_grans;
    const trifle_zone *zone;
    int week_start;
    int system_tracking;
    const trifle__buffer_options *opt;
    const char *journal_dir; /* buffer.journal: NULL or "" = no journal */
} trifle__buffer_env;

/* A buffer; with opt->async a flush thread is started. With a journal directory the journal is
 * opened (TRIFLE_EBUSY when another process holds it) and replayed first: every journaled call
 * the store does not have yet is pending again, and one flush is tried (its failure is logged,
 * the calls stay pending). TRIFLE_ENOMEM, TRIFLE_ERROR, TRIFLE_EIO, and the store's errors when
 * its journal mark cannot be read. */
int trifle__buffer_new(trifle__buffer **out, const trifle__buffer_env *env, trifle_error *err);

/* Merge one track (is_track) or assert into the pending state, journaled first when the buffer
 * has a journal (TRIFLE_EIO: the journal could not take it, nothing changed; with
 * buffer.journal_sync=always the call returns after the record is on disk). The payload was
 * validated by the caller and is not empty; the key is checked here (trifle__key_check for a
 * write), except when it is the text of the key the buffer last accepted. Returns 0, TRIFLE_EINVAL
 * (invalid or reserved key, time out of range), TRIFLE_EBUSY `buffer is full`, TRIFLE_ECLOSED,
 * TRIFLE_ENOMEM. Never returns flush errors. */
int trifle__buffer_add(trifle__buffer *b, const char *key, int64_t at, const trifle_payload *v,
                       unsigned flags, int is_track, trifle_error *err);

/* trifle__buffer_add() with a caller's note (1..65535 bytes) in the call's journal record
 * (TRIFLE__JREC_OP_NOTED), so the note is on disk exactly when the call is; a replay hands it to
 * the configuration's note handler. Without a journal the note is not kept. */
int trifle__buffer_add_noted(trifle__buffer *b, const char *key, int64_t at,
                             const trifle_payload *v, unsigned flags, int is_track,
                             const void *note, size_t note_len, trifle_error *err);

/* Write everything pending now and wait for it (explicit flush()). Returns the first error of
 * this flush; pending data is kept. */
int trifle__buffer_flush(trifle__buffer *b, trifle_error *err);

/* Read-your-writes for values(key, ..., granularity): if anything is pending for this key at this
 * granularity, flush and wait. The flush's error is returned only when records of this key and
 * granularity are still pending afterwards (ERRATA I6); quarantined records never block a read. */
int trifle__buffer_flush_for_read(trifle__buffer *b, const char *key, const char *granularity,
                                  trifle_error *err);

/* Stop the flush thread and flush with retries until everything is written or
 * buffer.close_timeout_ms passed: TRIFLE_EDRIVER `<n> buffered operations could not be written:
 * <last error>` then. Later calls get TRIFLE_ECLOSED. */
int trifle__buffer_close(trifle__buffer *b, trifle_error *err);

void trifle__buffer_free(trifle__buffer *b);

void trifle__buffer_get_stats(trifle__buffer *b, trifle_buffer_counters *out);

void trifle__buffer_set_error_handler(trifle__buffer *b, trifle_error_handler fn, void *payload);

#endif
