/* Bodies of the buffer's journal records. The layouts are in jrec_int.h. */
#include "jrec_int.h"

#include <string.h>

#include "alloc_int.h"
#include "error_int.h"
#include "payload_int.h"

/* ---------------------------------------------------------------------------------------------
 * Little-endian writing */

void trifle__jbuf_free(trifle__jbuf *b)
{
    trifle__free(b->data);
    memset(b, 0, sizeof(*b));
}

static int reserve(trifle__jbuf *b, size_t more)
{
    size_t cap;
    unsigned char *m;

    if (more <= b->cap - b->len)
        return 0;
    if (more > SIZE_MAX / 2 - b->len)
        return TRIFLE_ENOMEM;
    cap = b->cap ? b->cap : 256;
    while (cap - b->len < more)
        cap *= 2;
    if ((m = trifle__realloc(b->data, cap)) == NULL)
        return TRIFLE_ENOMEM;
    b->data = m;
    b->cap = cap;
    return 0;
}

static void put_le(unsigned char *p, uint64_t v, size_t width)
{
    size_t i;

    for (i = 0; i < width; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static int put(trifle__jbuf *b, uint64_t v, size_t width)
{
    if (reserve(b, width) != 0)
        return TRIFLE_ENOMEM;
    put_le(b->data + b->len, v, width);
    b->len += width;
    return 0;
}

static int put_bytes(trifle__jbuf *b, const void *s, size_t n)
{
    if (reserve(b, n) != 0)
        return TRIFLE_ENOMEM;
    if (n > 0)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

static uint64_t double_bits(double v)
{
    uint64_t u;

    memcpy(&u, &v, sizeof(u));
    return u;
}

/* ---------------------------------------------------------------------------------------------
 * Bounded reading */

typedef struct reader {
    const unsigned char *p;
    size_t left;
} reader;

static int get(reader *r, uint64_t *v, size_t width)
{
    size_t i;

    if (r->left < width)
        return -1;
    *v = 0;
    for (i = 0; i < width; i++)
        *v |= (uint64_t)r->p[i] << (8 * i);
    r->p += width;
    r->left -= width;
    return 0;
}

static int get_bytes(reader *r, const unsigned char **s, size_t n)
{
    if (r->left < n)
        return -1;
    *s = r->p;
    r->p += n;
    r->left -= n;
    return 0;
}

static double bits_double(uint64_t u)
{
    double v;

    memcpy(&v, &u, sizeof(v));
    return v;
}

static int malformed(trifle_error *err, const char *what)
{
    return trifle__error(err, TRIFLE_EINVAL, "malformed journal record: %s", what);
}

/* ---------------------------------------------------------------------------------------------
 * OP */

int trifle__jrec_payload_encode(trifle__jbuf *out, const trifle_payload *p)
{
    size_t i;

    out->len = 0;
    for (i = 0; i < p->n; i++) {
        size_t n = strlen(p->leaves[i].path);
        if (n > UINT16_MAX)
            return TRIFLE_EINVAL;
        if (put(out, n, 2) != 0 || put_bytes(out, p->leaves[i].path, n) != 0 ||
            put(out, double_bits(p->leaves[i].value), 8) != 0)
            return TRIFLE_ENOMEM;
    }
    return 0;
}

int trifle__jrec_op_encode(trifle__jbuf *out, int kind, unsigned flags, const char *key, int64_t at,
                           const trifle__jbuf *payload, size_t n_leaves)
{
    size_t klen = strlen(key);

    if (klen > UINT16_MAX || n_leaves > UINT32_MAX)
        return TRIFLE_EINVAL;
    out->len = 0;
    if (reserve(out, 16 + klen + payload->len) != 0)
        return TRIFLE_ENOMEM;
    (void)put(out, (uint64_t)kind, 1);
    (void)put(out, flags & 1u, 1);
    (void)put(out, klen, 2);
    (void)put(out, (uint64_t)at, 8);
    (void)put(out, n_leaves, 4);
    (void)put_bytes(out, key, klen);
    (void)put_bytes(out, payload->data, payload->len);
    return 0;
}

void trifle__jrec_op_clear(trifle__jrec_op *op)
{
    trifle__free(op->key);
    trifle_payload_free(op->payload);
    memset(op, 0, sizeof(*op));
}

int trifle__jrec_op_decode(const unsigned char *body, size_t len, trifle__jrec_op *out,
                           trifle_error *err)
{
    reader r = {body, len};
    uint64_t kind, flags, klen, at, n, i;
    const unsigned char *key;
    trifle_leaf *leaves = NULL;
    char *strings = NULL, *s;
    int rc;

    memset(out, 0, sizeof(*out));
    if (get(&r, &kind, 1) || get(&r, &flags, 1) || get(&r, &klen, 2) || get(&r, &at, 8) ||
        get(&r, &n, 4) || get_bytes(&r, &key, klen))
        return malformed(err, "short header");
    if ((kind != TRIFLE__JOP_TRACK && kind != TRIFLE__JOP_ASSERT) || (flags & ~1u) != 0)
        return malformed(err, "unknown kind or flags");
    /* every leaf takes at least 10 bytes: n is bounded by the body before anything is allocated */
    if (n == 0 || n > r.left / 10)
        return malformed(err, "leaf count");
    if ((leaves = trifle__calloc(n, sizeof(*leaves))) == NULL ||
        (strings = trifle__malloc(r.left + 1)) == NULL ||
        (out->key = trifle__malloc(klen + 1)) == NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto fail;
    }
    memcpy(out->key, key, klen);
    out->key[klen] = '\0';
    for (i = 0, s = strings; i < n; i++) {
        uint64_t plen, bits;
        const unsigned char *path;
        if (get(&r, &plen, 2) || get_bytes(&r, &path, plen) || get(&r, &bits, 8)) {
            rc = malformed(err, "short leaf");
            goto fail;
        }
        memcpy(s, path, plen);
        s[plen] = '\0';
        leaves[i].path = s;
        leaves[i].value = bits_double(bits);
        s += plen + 1;
    }
    if (r.left != 0) {
        rc = malformed(err, "trailing bytes");
        goto fail;
    }
    if (memchr(out->key, '\0', klen) != NULL) {
        rc = malformed(err, "NUL in key");
        goto fail;
    }
    /* the public constructor validates paths and values again: a journal is input too */
    if ((rc = trifle_payload_from_leaves(&out->payload, leaves, n, err)) != 0)
        goto fail;
    out->kind = (int)kind;
    out->flags = (unsigned)flags;
    out->at = (int64_t)at;
    trifle__free(leaves);
    trifle__free(strings);
    return 0;
fail:
    trifle__free(leaves);
    trifle__free(strings);
    trifle__jrec_op_clear(out);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * QUARANTINE and RESOLVED */

int trifle__jrec_quarantine_begin(trifle__jbuf *out, uint64_t cover, uint64_t replaces)
{
    out->len = 0;
    if (put(out, cover, 8) != 0 || put(out, replaces, 8) != 0 || put(out, 0, 4) != 0)
        return TRIFLE_ENOMEM;
    return 0;
}

int trifle__jrec_quarantine_add(trifle__jbuf *out, const trifle__jrec_record *r)
{
    uint64_t count = 0;
    size_t i;

    if (out->len < 20 || r->key_len > UINT16_MAX || r->gran_len > UINT8_MAX ||
        r->n_leaves > UINT32_MAX)
        return TRIFLE_EINVAL;
    if (put(out, r->key_len, 2) != 0 || put(out, r->gran_len, 1) != 0 ||
        put(out, (uint64_t)r->at, 8) != 0 || put(out, r->n_leaves, 4) != 0 ||
        put_bytes(out, r->key, r->key_len) != 0 || put_bytes(out, r->gran, r->gran_len) != 0)
        return TRIFLE_ENOMEM;
    for (i = 0; i < r->n_leaves; i++) {
        const trifle__jrec_leaf *l = &r->leaves[i];
        if (l->path_len > UINT16_MAX)
            return TRIFLE_EINVAL;
        if (put(out, (uint64_t)l->op, 1) != 0 || put(out, l->path_len, 2) != 0 ||
            put_bytes(out, l->path, l->path_len) != 0 || put(out, double_bits(l->value), 8) != 0)
            return TRIFLE_ENOMEM;
    }
    /* the record count sits after cover and replaces */
    for (i = 0; i < 4; i++)
        count |= (uint64_t)out->data[16 + i] << (8 * i);
    put_le(out->data + 16, count + 1, 4);
    return 0;
}

int trifle__jrec_quarantine_walk(const unsigned char *body, size_t len, uint64_t *cover,
                                 uint64_t *replaces, trifle__jrec_record_fn fn, void *ctx,
                                 trifle_error *err)
{
    reader r = {body, len};
    uint64_t n, i;
    trifle__jrec_leaf *leaves = NULL;
    size_t cap = 0;
    int rc = 0;

    if (get(&r, cover, 8) || get(&r, replaces, 8) || get(&r, &n, 4))
        return malformed(err, "short header");
    /* each record takes at least 15 bytes */
    if (n == 0 || n > r.left / 15)
        return malformed(err, "record count");
    for (i = 0; i < n && rc == 0; i++) {
        trifle__jrec_record rec;
        uint64_t klen, glen, at, nl, j;
        const unsigned char *key, *gran;

        if (get(&r, &klen, 2) || get(&r, &glen, 1) || get(&r, &at, 8) || get(&r, &nl, 4) ||
            get_bytes(&r, &key, klen) || get_bytes(&r, &gran, glen)) {
            rc = malformed(err, "short record");
            break;
        }
        /* each leaf takes at least 11 bytes */
        if (nl == 0 || nl > r.left / 11) {
            rc = malformed(err, "leaf count");
            break;
        }
        if (nl > cap) {
            trifle__jrec_leaf *m = trifle__reallocarray(leaves, nl, sizeof(*leaves));
            if (m == NULL) {
                rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
                break;
            }
            leaves = m;
            cap = nl;
        }
        for (j = 0; j < nl; j++) {
            uint64_t op, plen, bits;
            const unsigned char *path;
            if (get(&r, &op, 1) || get(&r, &plen, 2) || get_bytes(&r, &path, plen) ||
                get(&r, &bits, 8) || (op != TRIFLE__JLEAF_ADD && op != TRIFLE__JLEAF_SET)) {
                rc = malformed(err, "bad leaf");
                break;
            }
            leaves[j].op = (int)op;
            leaves[j].path = (const char *)path;
            leaves[j].path_len = plen;
            leaves[j].value = bits_double(bits);
        }
        if (rc != 0)
            break;
        rec.key = (const char *)key;
        rec.key_len = klen;
        rec.gran = (const char *)gran;
        rec.gran_len = glen;
        rec.at = (int64_t)at;
        rec.leaves = leaves;
        rec.n_leaves = nl;
        if (r.left == 0 && i + 1 < n) {
            rc = malformed(err, "record count");
            break;
        }
        if (fn != NULL)
            rc = fn(ctx, &rec);
    }
    if (rc == 0 && r.left != 0)
        rc = malformed(err, "trailing bytes");
    trifle__free(leaves);
    return rc;
}

int trifle__jrec_noted_encode(trifle__jbuf *out, const void *note, size_t note_len,
                              const trifle__jbuf *op)
{
    if (note_len == 0 || note_len > UINT16_MAX)
        return TRIFLE_EINVAL;
    out->len = 0;
    if (reserve(out, 2 + note_len + op->len) != 0)
        return TRIFLE_ENOMEM;
    (void)put(out, note_len, 2);
    (void)put_bytes(out, note, note_len);
    (void)put_bytes(out, op->data, op->len);
    return 0;
}

int trifle__jrec_noted_split(const unsigned char *body, size_t len, const unsigned char **note,
                             size_t *note_len, const unsigned char **op, size_t *op_len)
{
    reader r = {body, len};
    uint64_t n;

    if (get(&r, &n, 2) || n == 0 || get_bytes(&r, note, (size_t)n))
        return TRIFLE_EINVAL;
    *note_len = (size_t)n;
    *op = body + 2 + n;
    *op_len = len - 2 - (size_t)n;
    return 0;
}

void trifle__jrec_resolved_encode(unsigned char out[8], uint64_t seq)
{
    put_le(out, seq, 8);
}

int trifle__jrec_resolved_decode(const unsigned char *body, size_t len, uint64_t *seq)
{
    reader r = {body, len};

    if (len != 8 || get(&r, seq, 8))
        return TRIFLE_EINVAL;
    return 0;
}
