/* The sink that collects what a driver's `get` and `scan` emit (sink_int.h).
 *
 * It copies every emitted (index, path, value) into an array of records whose paths live in an
 * arena of blocks that never move; after the driver returns, the records are sorted once by
 * (index, path bytes, emission order) — skipped when the driver already emitted them in that order
 * — and runs of one (index, path) are summed in emission order, so the result does not depend on
 * the sort. An 8,760-bucket × 10-leaf read is one array of ~90k records and one sort.
 *
 * Apart from storage.c because the host table (loader.c) hands trifle__sink_emit to drivers while
 * storage.c loads drivers through the loader: with the sink in storage.c the two called each
 * other. */
#include "sink_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_int.h"
#include "trifle/common.h"

#define SINK_BLOCK 65536
#define SINK_KEEP (1u << 20) /* memory kept between calls; more is released after the call */

typedef struct sink_rec {
    size_t index;
    const char *path; /* NUL-terminated, in an arena block */
    size_t len;
    size_t seq; /* emission order: duplicates are summed in it */
    double value;
} sink_rec;

typedef struct sink_block {
    struct sink_block *next;
    size_t used, cap;
    char data[];
} sink_block;

void trifle__sink_free(trifle_sink *s)
{
    sink_block *b, *next;

    for (b = s->head; b != NULL; b = next) {
        next = b->next;
        trifle__free(b);
    }
    trifle__free(s->recs);
    memset(s, 0, sizeof(*s));
}

void trifle__sink_reset(trifle_sink *s, size_t limit)
{
    s->n = 0;
    s->cur = s->head;
    if (s->head != NULL)
        s->head->used = 0;
    s->limit = limit;
    s->rc = 0;
    s->msg[0] = '\0';
}

void trifle__sink_trim(trifle_sink *s)
{
    size_t kept = s->cap * sizeof(sink_rec);
    sink_block *b;

    for (b = s->head; b != NULL; b = b->next)
        kept += b->cap;
    if (kept > SINK_KEEP)
        trifle__sink_free(s);
}

static char *sink_copy(trifle_sink *s, const char *path, size_t len)
{
    sink_block *b;
    size_t need = len + 1;
    char *p;

    if (s->cur != NULL && s->cur->cap - s->cur->used >= need) {
        b = s->cur;
    } else if (s->cur != NULL && s->cur->next != NULL && s->cur->next->cap >= need) {
        b = s->cur = s->cur->next; /* a block kept from an earlier call */
        b->used = 0;
    } else {
        size_t cap = need > SINK_BLOCK ? need : SINK_BLOCK;
        if ((b = trifle__malloc(sizeof(*b) + cap)) == NULL)
            return NULL;
        b->used = 0;
        b->cap = cap;
        if (s->cur == NULL) {
            b->next = s->head;
            s->head = b;
        } else {
            b->next = s->cur->next;
            s->cur->next = b;
        }
        s->cur = b;
    }
    p = b->data + b->used;
    memcpy(p, path, len);
    p[len] = '\0';
    b->used += need;
    return p;
}

static int sink_fail(trifle_sink *s, int code, const char *fmt, ...) TRIFLE_PRINTF(3, 4);

static int sink_fail(trifle_sink *s, int code, const char *fmt, ...)
{
    va_list ap;

    if (s->rc == 0) {
        s->rc = code;
        va_start(ap, fmt);
        (void)vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

int trifle__sink_emit(trifle_sink *s, size_t index, const char *path, double value)
{
    sink_rec *r;
    size_t len;

    if (s == NULL)
        return TRIFLE_EINVAL;
    if (s->rc != 0)
        return s->rc == TRIFLE_ENOMEM ? TRIFLE_ENOMEM : TRIFLE_EINVAL;
    if (index >= s->limit) {
        (void)sink_fail(s, TRIFLE_EDRIVER, "emitted bucket index %zu for a call of %zu", index,
                        s->limit);
        return TRIFLE_EINVAL;
    }
    if (path == NULL || path[0] == '\0') {
        (void)sink_fail(s, TRIFLE_EDRIVER, "emitted an empty path for bucket index %zu", index);
        return TRIFLE_EINVAL;
    }
    if (s->n == s->cap) {
        size_t ncap = s->cap == 0 ? 64 : 2 * s->cap;
        if ((r = trifle__reallocarray(s->recs, ncap, sizeof(*r))) == NULL)
            return sink_fail(s, TRIFLE_ENOMEM, "out of memory");
        s->recs = r;
        s->cap = ncap;
    }
    len = strlen(path);
    r = &s->recs[s->n];
    if ((r->path = sink_copy(s, path, len)) == NULL)
        return sink_fail(s, TRIFLE_ENOMEM, "out of memory");
    r->index = index;
    r->len = len;
    r->seq = s->n;
    r->value = value;
    s->n++;
    return 0;
}

static int rec_cmp(const void *pa, const void *pb)
{
    const sink_rec *a = pa, *b = pb;
    int c;

    if (a->index != b->index)
        return a->index < b->index ? -1 : 1;
    if ((c = memcmp(a->path, b->path, (a->len < b->len ? a->len : b->len) + 1)) != 0)
        return c; /* comparing the NUL too orders a prefix first */
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int same_leaf(const sink_rec *a, const sink_rec *b)
{
    return a->index == b->index && a->len == b->len && memcmp(a->path, b->path, a->len) == 0;
}

int trifle__sink_deliver(trifle_sink *s, trifle_leaf_fn fn, void *payload)
{
    size_t i, j;
    double sum;
    int rc;

    for (i = 1; i < s->n; i++)
        if (rec_cmp(&s->recs[i - 1], &s->recs[i]) > 0)
            break;
    if (i < s->n)
        qsort(s->recs, s->n, sizeof(*s->recs), rec_cmp);
    for (i = 0; i < s->n; i = j) {
        sum = s->recs[i].value;
        for (j = i + 1; j < s->n && same_leaf(&s->recs[i], &s->recs[j]); j++)
            sum += s->recs[j].value;
        if ((rc = fn(s->recs[i].index, s->recs[i].path, sum, payload)) != 0)
            return rc;
    }
    return 0;
}
