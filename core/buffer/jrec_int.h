/* Bodies of the buffer's journal records (docs/journal-format.md). Never installed.
 *
 * The journal (journal_int.h) frames and checks records; this codec gives two of its record types
 * a body. Both are little-endian with explicit widths, independent of the host:
 *
 *   OP          one track or assert call, appended before the call returns
 *     u8  kind         1 = track (leaves add), 2 = assert (leaves replace)
 *     u8  flags        bit 0: untracked (TRIFLE_UNTRACKED)
 *     u16 key_len
 *     i64 at           the call's instant, Unix seconds
 *     u32 n_leaves     >= 1
 *     key_len bytes    the metric key
 *     n_leaves x { u16 path_len, path bytes, u64 value (IEEE-754 bits) }
 *
 *   QUARANTINE  buffered records the store rejected (EDATA), with everything merged into them
 *     u64 cover        the record is in force once the store's journal mark reaches cover
 *     u64 replaces     the seq of the QUARANTINE record this one supersedes, 0 for none
 *     u32 n_records    >= 1
 *     n_records x { u16 key_len, u8 gran_len, i64 at, u32 n_leaves, key, gran,
 *                   n_leaves x { u8 op (1 add, 2 set), u16 path_len, path, u64 value } }
 *
 *   RESOLVED    a quarantine record that is stored now: u64 seq of that QUARANTINE record
 *
 *   OP_NOTED    one call with the caller's note (trifle_write_noted()), in one record so that
 *               the note is on disk exactly when the call is (journal format version 2)
 *     u16 note_len     1 .. 65535
 *     note_len bytes   the note, opaque to the library
 *     the OP body as above
 *
 * Decoders check every length against the body and never read past it; a body that does not
 * parse exactly (trailing bytes included) is TRIFLE_EINVAL. Paths and keys are not validated
 * beyond their lengths here: the journal's CRC already vouches for the bytes, and the buffer
 * re-checks keys on replay. */
#ifndef TRIFLE_JREC_INT_H
#define TRIFLE_JREC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "trifle/driver.h"
#include "trifle/error.h"
#include "trifle/payload.h"

enum { TRIFLE__JOP_TRACK = 1, TRIFLE__JOP_ASSERT = 2 };
enum { TRIFLE__JLEAF_ADD = 1, TRIFLE__JLEAF_SET = 2 };

/* A growable byte buffer for encoding. */
typedef struct trifle__jbuf {
    unsigned char *data;
    size_t len, cap;
} trifle__jbuf;

void trifle__jbuf_free(trifle__jbuf *b);

/* Encode the leaves of a payload (the part of an OP body after the key) into @p out (replacing
 * its contents). 0 or TRIFLE_ENOMEM; TRIFLE_EINVAL when a path is longer than 65535 bytes. */
int trifle__jrec_payload_encode(trifle__jbuf *out, const trifle_payload *p);

/* Encode an OP body from its parts and the payload encoding made by
 * trifle__jrec_payload_encode() (with @p n_leaves leaves) into @p out. */
int trifle__jrec_op_encode(trifle__jbuf *out, int kind, unsigned flags, const char *key, int64_t at,
                           const trifle__jbuf *payload, size_t n_leaves);

/* A decoded OP: key and payload are owned (free with trifle__jrec_op_clear). */
typedef struct trifle__jrec_op {
    int kind;
    unsigned flags;
    int64_t at;
    char *key;
    trifle_payload *payload; /* leaves sorted and unique, as the payload API requires */
} trifle__jrec_op;

int trifle__jrec_op_decode(const unsigned char *body, size_t len, trifle__jrec_op *out,
                           trifle_error *err);
void trifle__jrec_op_clear(trifle__jrec_op *op);

/* One record of a QUARANTINE body, as plain parts. Encoding borrows them; decoding points them
 * into the body (valid while the body is), so nothing is copied until the caller keeps it. */
typedef struct trifle__jrec_leaf {
    const char *path; /* not NUL-terminated when decoded: use path_len */
    size_t path_len;
    double value;
    int op; /* TRIFLE__JLEAF_* */
} trifle__jrec_leaf;

typedef struct trifle__jrec_record {
    const char *key, *gran; /* not NUL-terminated when decoded */
    size_t key_len, gran_len;
    int64_t at;
    const trifle__jrec_leaf *leaves;
    size_t n_leaves;
} trifle__jrec_record;

/* Begin a QUARANTINE body in @p out; then add records one by one. */
int trifle__jrec_quarantine_begin(trifle__jbuf *out, uint64_t cover, uint64_t replaces);
int trifle__jrec_quarantine_add(trifle__jbuf *out, const trifle__jrec_record *r);

/* Walk a QUARANTINE body: *cover, *replaces, then fn for each record (leaves in a scratch array
 * owned by the walk, valid during the call). fn's non-zero return stops the walk and is returned.
 * TRIFLE_EINVAL for a malformed body, TRIFLE_ENOMEM. */
typedef int (*trifle__jrec_record_fn)(void *ctx, const trifle__jrec_record *r);
int trifle__jrec_quarantine_walk(const unsigned char *body, size_t len, uint64_t *cover,
                                 uint64_t *replaces, trifle__jrec_record_fn fn, void *ctx,
                                 trifle_error *err);

/* OP_NOTED bodies: @p note (1..65535 bytes) in front of the OP body @p op, into @p out
 * (replacing its contents). 0, TRIFLE_ENOMEM, TRIFLE_EINVAL for a note of another size. */
int trifle__jrec_noted_encode(trifle__jbuf *out, const void *note, size_t note_len,
                              const trifle__jbuf *op);
/* Split an OP_NOTED body into its note and its OP body (both pointing into @p body; the OP body
 * is decoded with trifle__jrec_op_decode). 0 or TRIFLE_EINVAL (an empty note, a note longer than
 * the body). */
int trifle__jrec_noted_split(const unsigned char *body, size_t len, const unsigned char **note,
                             size_t *note_len, const unsigned char **op, size_t *op_len);

/* RESOLVED bodies. */
void trifle__jrec_resolved_encode(unsigned char out[8], uint64_t seq);
int trifle__jrec_resolved_decode(const unsigned char *body, size_t len, uint64_t *seq);

#endif
