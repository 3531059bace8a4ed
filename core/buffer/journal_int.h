/* The write-ahead journal of the buffer (docs/durability.md). Never installed.
 *
 * A journal is a directory of segment files. Each segment starts with a versioned header and
 * holds framed records: length, CRC-32C, sequence number, type and an opaque body that the buffer
 * encodes. Sequence numbers grow by one per record across segments; a segment is named after the
 * first sequence number it may hold, so the names sort in journal order. Segments rotate at a
 * size limit and are deleted only when every record in them is stored (trifle__journal_release).
 *
 * This module knows nothing of tracks, buckets or drivers: it appends, syncs, replays and
 * releases byte records. The buffer serialises appends (it appends under its own lock, so the
 * journal's order is the buffer's order); syncing may run from any thread. */
#ifndef TRIFLE_JOURNAL_INT_H
#define TRIFLE_JOURNAL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "trifle/error.h"

typedef struct trifle__journal trifle__journal;

/* Sync policies (buffer.journal_sync). */
enum {
    TRIFLE__JSYNC_NONE = 0,     /* write(2) only: survives a process crash, not a power loss
                                   (a full segment is still synced as it is closed) */
    TRIFLE__JSYNC_INTERVAL = 1, /* a background thread fdatasyncs every interval_ms when dirty
                                   (and sleeps while nothing is appended) */
    TRIFLE__JSYNC_ALWAYS = 2    /* trifle__journal_sync_to() waits for fdatasync (group commit) */
};

/* Record types; the body's layout belongs to the buffer (core/buffer/buffer.c). */
enum {
    TRIFLE__JREC_OP = 1,         /* one track or assert call */
    TRIFLE__JREC_QUARANTINE = 2, /* a record the store rejected, with everything merged into it */
    TRIFLE__JREC_RESOLVED = 3,   /* a quarantine record that is stored now (body: its seq) */
    TRIFLE__JREC_CHECKPOINT = 4, /* everything up to a seq is stored (drivers without marks) */
    TRIFLE__JREC_OP_NOTED = 5    /* a call with its caller's note (format version 2) */
};

typedef struct trifle__journal_options {
    const char *dir;       /* created (one level) when missing */
    int sync;              /* TRIFLE__JSYNC_* */
    int64_t interval_ms;   /* TRIFLE__JSYNC_INTERVAL: 1 .. 60000 */
    int64_t segment_bytes; /* rotate when a segment reaches this size; >= 4096 */
} trifle__journal_options;

/* Called for each good record by trifle__journal_replay(), in sequence order. A non-zero return
 * stops the replay and is returned by it. */
typedef int (*trifle__journal_record_fn)(void *ctx, uint64_t seq, int type,
                                         const unsigned char *body, size_t len);

/* Open (or create) the journal in o->dir and lock it against other processes (an flock on a lock
 * file; TRIFLE_EBUSY `journal <dir> is in use by another process`). The journal's name — a random
 * id made at creation and kept in the directory — identifies it in the store's marks. Nothing is
 * read yet: call trifle__journal_replay() once before the first append.
 * TRIFLE_EIO (naming the path and errno text), TRIFLE_EBUSY, TRIFLE_ENOMEM. */
int trifle__journal_open(trifle__journal **out, const trifle__journal_options *o,
                         trifle_error *err);

/* The journal's name: 32 lowercase hex digits. Borrowed. */
const char *trifle__journal_name(const trifle__journal *j);

/* The journal's directory. Borrowed. */
const char *trifle__journal_dir(const trifle__journal *j);

/* Read every segment in order and call fn for each good record. A damaged record (torn tail, bad
 * CRC, bad length, a sequence number that does not follow) ends that segment: the bytes from the
 * damaged record to the segment's end are moved to `<segment>.corrupt` (the segment is truncated
 * there), one TRIFLE_LOG_WARN line names the file and the offset, and replay goes on with the next
 * segment. A damaged header moves the whole segment. Never crashes on any bytes. Afterwards new
 * records are appended to a fresh segment with seq = max(last good seq, trifle__journal_seq_floor)
 * + 1. Returns 0, fn's non-zero value, TRIFLE_EIO, TRIFLE_ENOMEM. */
int trifle__journal_replay(trifle__journal *j, trifle__journal_record_fn fn, void *ctx,
                           trifle_error *err);

/* Make the next sequence number at least floor + 1 (a store's mark may be ahead of the files when
 * segments were released). Call between replay and the first append. */
void trifle__journal_seq_floor(trifle__journal *j, uint64_t floor);

/* Append one record of type 1 .. 65535 (a TRIFLE__JREC_*; body: at most 16 MiB) and give it the
 * next sequence number (*seq). The bytes reach the kernel
 * (write(2)) before this returns, so a killed process loses nothing that was appended; with
 * TRIFLE__JSYNC_ALWAYS the caller then calls trifle__journal_sync_to(*seq) outside its locks.
 * On failure (disk full, RLIMIT_FSIZE, I/O error) the segment is cut back to its previous length,
 * nothing is appended and TRIFLE_EIO names the file and the errno text. Callers serialise appends.
 * A full segment is synced, closed and a new one started first. TRIFLE_EINVAL before replay, for
 * a bad type or an oversized body. */
int trifle__journal_append(trifle__journal *j, int type, const void *body, size_t len,
                           uint64_t *seq, trifle_error *err);

/* Wait until every record up to seq is on disk (fdatasync). Concurrent callers share one
 * fdatasync (group commit): one of them syncs, the others wait for it. A seq above the last
 * appended one waits for the last one. TRIFLE_EIO; once an fdatasync has failed, every record it
 * covered keeps failing (the kernel may have dropped those pages) and appends move to a new
 * segment. */
int trifle__journal_sync_to(trifle__journal *j, uint64_t seq, trifle_error *err);

/* The highest sequence number known to be on disk (tests, /stats). Thread-safe. */
uint64_t trifle__journal_synced_seq(trifle__journal *j);

/* Every record with a sequence number <= upto is stored: delete the segments that hold nothing
 * newer (never the one being appended to). Errors are logged, not returned. */
void trifle__journal_release(trifle__journal *j, uint64_t upto);

/* The sequence number of the last appended (or replayed) record, 0 when none. */
uint64_t trifle__journal_last_seq(const trifle__journal *j);

/* Counters for benchmarks and /stats. */
typedef struct trifle__journal_stats {
    uint64_t records, bytes, syncs, segments_created, segments_deleted, corrupt_files;
} trifle__journal_stats;
void trifle__journal_get_stats(trifle__journal *j, trifle__journal_stats *out);

/* Sync what was appended, stop the interval thread, release the lock and free. NULL is fine. */
void trifle__journal_close(trifle__journal *j);

/* Parse one segment image from memory (the fuzz target's entry): calls fn (may be NULL) for each
 * good record and returns the offset where the good part ends (== len when the whole image is
 * good, 0 when the header is bad). A non-zero return from fn stops the scan after that record.
 * The image's journal name is not checked. */
size_t trifle__journal_scan_image(const unsigned char *image, size_t len,
                                  trifle__journal_record_fn fn, void *ctx);

/* CRC-32C (Castagnoli; "123456789" gives 0xE3069283). crc is the value so far (0 to start), so
 * crc32c(crc32c(0, a), b) == crc32c(0, a followed by b). trifle__crc32c uses the SSE4.2
 * instruction when the CPU has it; the portable table version is exported for the tests. */
uint32_t trifle__crc32c(uint32_t crc, const void *data, size_t n);
uint32_t trifle__crc32c_portable(uint32_t crc, const void *data, size_t n);

#endif
