/* libFuzzer target for the notes `trifle serve` puts into a source's journal next to each
 * idempotent call (server/idempotency.c: srv_idem_note_put, srv_idem_note_walk), which the journal
 * replay hands back at start-up. The bytes come from our own journal under its CRC, but a parser
 * is a parser: every input is walked without reading past it, every entry it accepts is a valid
 * key with 1 <= applied <= total, and the accepted entries encode again into a note that walks to
 * the same entries with nothing malformed. Any violation calls abort(). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "srv_int.h"

typedef struct entries {
    char note[4096];
    size_t len;
    size_t n;
    int full;
} entries;

static int collect(void *ctx, size_t applied, size_t total, const char *key)
{
    entries *e = ctx;

    if (applied == 0 || applied > total || !srv_idem_key_ok(key))
        abort();
    if (srv_idem_note_put(e->note, sizeof(e->note), &e->len, applied, total, key) != 0)
        e->full = 1; /* longer than the buffer: the round trip covers what fitted */
    else
        e->n++;
    return 0;
}

typedef struct compare {
    const char *p, *end;
    size_t n;
} compare;

static int same(void *ctx, size_t applied, size_t total, const char *key)
{
    compare *c = ctx;
    char line[600];
    size_t len = 0;

    if (srv_idem_note_put(line, sizeof(line), &len, applied, total, key) != 0)
        abort();
    if ((size_t)(c->end - c->p) < len || memcmp(c->p, line, len) != 0)
        abort();
    c->p += len;
    c->n++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    entries e;
    compare c;

    memset(&e, 0, sizeof(e));
    if (srv_idem_note_walk(data, size, collect, &e) < 0)
        abort();
    c.p = e.note;
    c.end = e.note + e.len;
    c.n = 0;
    if (srv_idem_note_walk(e.note, e.len, same, &c) != 0 || c.n != e.n || c.p != c.end)
        abort();
    return 0;
}
