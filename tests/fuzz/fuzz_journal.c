/* Fuzz target for the journal's segment reader (core/buffer/journal.c): trifle__journal_scan_image
 * on arbitrary bytes. Built as a libFuzzer target with TRIFLE_BUILD_FUZZ (clang) and as a replay of
 * corpus/journal/ under ctest. Besides memory errors it checks the reader's promises and aborts
 * when one is broken: the good part ends inside the image, records come in sequence with bodies
 * inside it, and scanning just the good part finds the same records again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "journal_int.h"

typedef struct scan {
    const uint8_t *image;
    size_t size;
    size_t n;
    uint64_t last_seq;
    uint32_t sum; /* CRC of every body, to compare two scans */
} scan;

static int on_record(void *ctx, uint64_t seq, int type, const unsigned char *body, size_t len)
{
    scan *s = ctx;

    CHECK(type >= 1 && type <= 0xFFFF);
    CHECK(len <= ((size_t)16 << 20));
    CHECK(len == 0 || (body >= s->image && body + len <= s->image + s->size));
    CHECK(s->n == 0 || seq == s->last_seq + 1);
    s->last_seq = seq;
    s->n++;
    s->sum = trifle__crc32c(s->sum, body, len);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scan a = {data, size, 0, 0, 0}, b = {data, size, 0, 0, 0};
    size_t end = trifle__journal_scan_image(data, size, on_record, &a), again;

    CHECK(end <= size);
    CHECK(end == 0 || end >= 64);
    CHECK(end != 0 || a.n == 0);
    again = trifle__journal_scan_image(data, end, on_record, &b);
    CHECK(again == end);
    CHECK(a.n == b.n && a.last_seq == b.last_seq && a.sum == b.sum);
    /* the CRC has no state: the table and the hardware versions agree */
    CHECK(trifle__crc32c(0, data, size) == trifle__crc32c_portable(0, data, size));
    return 0;
}
