/* libFuzzer target for the bodies of the buffer's journal records (core/buffer/jrec.c): what replay
 * decodes after the journal's CRC has passed. The first input byte picks the record type (OP,
 * QUARANTINE, RESOLVED, OP_NOTED), the rest is the body.
 *
 * Properties checked on every input:
 *  - decoding never reads past the body, never crashes, and every failure carries a message;
 *  - an OP that decodes encodes again to a body that decodes to the same call (key, instant,
 *    kind, flags and leaves), and that second encoding is a fixed point;
 *  - a QUARANTINE body that walks encodes again, record by record, to exactly the same bytes;
 *  - a RESOLVED body that decodes encodes again to the same 8 bytes;
 *  - an OP_NOTED body that splits has a note of 1..65535 bytes inside the body, its OP part goes
 *    through the OP checks, and note and OP part encode again to the same bytes.
 * Any violation calls abort(). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "jrec_int.h"
#include "payload_int.h"

static void same_call(const trifle__jrec_op *a, const trifle__jrec_op *b)
{
    size_t i;

    CHECK(a->kind == b->kind && a->flags == b->flags && a->at == b->at);
    CHECK(strcmp(a->key, b->key) == 0);
    CHECK(a->payload->n == b->payload->n);
    for (i = 0; i < a->payload->n; i++) {
        uint64_t x, y; /* the values bit for bit: -0 and NaN payloads must survive too */

        CHECK(strcmp(a->payload->leaves[i].path, b->payload->leaves[i].path) == 0);
        memcpy(&x, &a->payload->leaves[i].value, sizeof(x));
        memcpy(&y, &b->payload->leaves[i].value, sizeof(y));
        CHECK(x == y);
    }
}

static void encode(const trifle__jrec_op *op, trifle__jbuf *body)
{
    trifle__jbuf pay = {0};

    CHECK(trifle__jrec_payload_encode(&pay, op->payload) == 0);
    CHECK(trifle__jrec_op_encode(body, op->kind, op->flags, op->key, op->at, &pay,
                                 op->payload->n) == 0);
    trifle__jbuf_free(&pay);
}

static void fuzz_op(const uint8_t *body, size_t len)
{
    trifle__jrec_op a, b;
    trifle__jbuf e1 = {0}, e2 = {0};
    trifle_error err = TRIFLE_ERROR_INIT;

    if (trifle__jrec_op_decode(body, len, &a, &err) != 0) {
        CHECK(err.code != 0 && err.message[0] != '\0');
        return;
    }
    encode(&a, &e1);
    CHECK(trifle__jrec_op_decode(e1.data, e1.len, &b, &err) == 0);
    same_call(&a, &b);
    encode(&b, &e2);
    CHECK(e1.len == e2.len && memcmp(e1.data, e2.data, e1.len) == 0);
    trifle__jrec_op_clear(&a);
    trifle__jrec_op_clear(&b);
    trifle__jbuf_free(&e1);
    trifle__jbuf_free(&e2);
}

static int reencode(void *ctx, const trifle__jrec_record *r)
{
    CHECK(trifle__jrec_quarantine_add(ctx, r) == 0);
    return 0;
}

static void fuzz_quarantine(const uint8_t *body, size_t len)
{
    uint64_t cover, replaces, c2, r2;
    trifle__jbuf out = {0};
    trifle_error err = TRIFLE_ERROR_INIT;

    if (trifle__jrec_quarantine_walk(body, len, &cover, &replaces, NULL, NULL, &err) != 0) {
        CHECK(err.code != 0 && err.message[0] != '\0');
        return;
    }
    CHECK(trifle__jrec_quarantine_begin(&out, cover, replaces) == 0);
    CHECK(trifle__jrec_quarantine_walk(body, len, &c2, &r2, reencode, &out, &err) == 0);
    CHECK(c2 == cover && r2 == replaces);
    CHECK(out.len == len && memcmp(out.data, body, len) == 0);
    trifle__jbuf_free(&out);
}

static void fuzz_resolved(const uint8_t *body, size_t len)
{
    uint64_t seq;
    unsigned char again[8];

    if (trifle__jrec_resolved_decode(body, len, &seq) != 0)
        return;
    trifle__jrec_resolved_encode(again, seq);
    CHECK(len == 8 && memcmp(again, body, 8) == 0);
}

static void fuzz_noted(const uint8_t *body, size_t len)
{
    const unsigned char *note, *op;
    size_t note_len, op_len;
    trifle__jbuf opb = {0}, again = {0};

    if (trifle__jrec_noted_split(body, len, &note, &note_len, &op, &op_len) != 0)
        return;
    CHECK(note_len >= 1 && note_len <= 65535 && note == body + 2);
    CHECK(op == note + note_len && op_len == len - 2 - note_len);
    fuzz_op(op, op_len);
    opb.data = (unsigned char *)op; /* borrowed: read only, never freed */
    opb.len = op_len;
    CHECK(trifle__jrec_noted_encode(&again, note, note_len, &opb) == 0);
    CHECK(again.len == len && memcmp(again.data, body, len) == 0);
    trifle__jbuf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % 4) {
    case 0:
        fuzz_op(data + 1, size - 1);
        break;
    case 1:
        fuzz_quarantine(data + 1, size - 1);
        break;
    case 2:
        fuzz_resolved(data + 1, size - 1);
        break;
    default:
        fuzz_noted(data + 1, size - 1);
        break;
    }
    return 0;
}
