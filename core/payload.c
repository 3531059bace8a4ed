/* Values objects (SPEC §4): validation, packing to sorted dotted paths, and JSON output.
 *
 * A payload is one allocation: the struct, then the leaf array, then the NUL-terminated paths the
 * leaves point to. JSON input is validated and measured in one walk over the tree, and the leaves
 * are written straight into that block in a second walk, so a parse makes no temporary copies
 * of its own beyond what cJSON builds.
 *
 * Order of checks, as SPEC §4.1 asks: member by member, depth-first in document order (key, then
 * the value), the first violation wins. Duplicate and conflicting paths are properties of the whole
 * set, so they are checked after every member passed, on the sorted leaves: first any duplicate
 * (the smallest path in byte order), then any conflict (the pair whose shorter path is smallest,
 * then whose longer path is smallest); err->path is the shorter path of the pair.
 *
 * Depth is bounded at PAYLOAD_MAX_DEPTH segments per path, counting the segments of dotted keys
 * too: `{"a.b":{"c":1}}` is three levels deep, as its unpacked form is. So every payload prints
 * as JSON that parses back into the same payload, and the recursive walks are bounded. Keys must be
 * UTF-8: text input is checked by the JSON layer, which answers `invalid JSON: invalid UTF-8 at
 * byte N`; packed leaves (trifle_payload_from_leaves) give `invalid key at "<path>"`, with each
 * invalid byte shown as U+FFFD in the message and path. */
#include "payload_int.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_int.h"
#include "error_int.h"
#include "json_int.h"

#define PAYLOAD_MAX_DEPTH 64
#define PATH_MSG_MAX 512 /* paths in messages; trifle_error cuts them at 256 bytes anyway */
#define SMALL_SORT_MAX 16

/* ---------------------------------------------------------------------------------------------
 * Storage */

/* Every payload gets a process-unique serial number, so the buffer can recognise a payload it has
 * merged before even if a freed payload's address is reused. */
static _Atomic uint64_t next_serial;

/* One block: struct, n leaves, `bytes` of path text. */
static trifle_payload *payload_alloc(size_t n, size_t bytes)
{
    trifle_payload *p;
    size_t size = sizeof(*p);

    if (n > (SIZE_MAX - size) / sizeof(trifle_leaf))
        return NULL;
    size += n * sizeof(trifle_leaf);
    if (bytes > SIZE_MAX - size)
        return NULL;
    p = trifle__malloc(size + bytes);
    if (p == NULL)
        return NULL;
    p->n = n;
    p->serial = atomic_fetch_add(&next_serial, 1) + 1;
    p->leaves = (trifle_leaf *)(void *)(p + 1);
    p->strings = (char *)(p->leaves + n);
    return p;
}

static double normal_zero(double v)
{
    return v == 0 ? 0.0 : v; /* -0 is stored as 0 (SPEC §4.1) */
}

static void sort_leaves(trifle_leaf *leaves, size_t n)
{
    size_t i, j;

    if (n > SMALL_SORT_MAX) {
        qsort(leaves, n, sizeof(*leaves), trifle__leaf_cmp);
        return;
    }
    for (i = 1; i < n; i++) { /* insertion sort: payloads are usually a handful of leaves */
        trifle_leaf t = leaves[i];
        for (j = i; j > 0 && strcmp(leaves[j - 1].path, t.path) > 0; j--)
            leaves[j] = leaves[j - 1];
        leaves[j] = t;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Checks shared by both inputs */

/* SPEC §4.1: no empty dotted segment, no segment starting with `$`. Returns the number of
 * segments, or 0 for an invalid key. */
static size_t key_segments(const char *k, size_t n)
{
    size_t i, seg = 0, count = 0;

    if (n == 0)
        return 0;
    for (i = 0; i <= n; i++) {
        if (i == n || k[i] == '.') {
            if (i == seg || k[seg] == '$')
                return 0;
            seg = i + 1;
            count++;
        }
    }
    return count;
}

/* Copy path into dst[size] with every byte that is not part of well-formed UTF-8 replaced by
 * U+FFFD, so messages stay valid UTF-8. */
static void sanitize_utf8(char *dst, size_t size, const char *path)
{
    size_t n = strlen(path), i = 0, o = 0, k;

    while (i < n) {
        const char *src = path + i;
        size_t take = k = tu_utf8_seq(path + i, n - i);
        if (k == 0) {
            src = "\xEF\xBF\xBD";
            take = 3;
            k = 1;
        }
        if (o + take >= size)
            break;
        memcpy(dst + o, src, take);
        o += take;
        i += k;
    }
    dst[o] = '\0';
}

/* Position of the first path at or after `from` that is >= prefix + "." in byte order. */
static size_t lower_bound_dotted(const trifle_leaf *l, size_t from, size_t n, const char *prefix,
                                 size_t plen)
{
    size_t lo = from, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strncmp(l[mid].path, prefix, plen);
        if (c == 0)
            c = (unsigned char)l[mid].path[plen] - (unsigned char)'.';
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Duplicate and conflicting paths over sorted leaves. */
static int check_paths(const trifle_leaf *l, size_t n, trifle_error *err)
{
    size_t i;

    for (i = 0; i + 1 < n; i++)
        if (strcmp(l[i].path, l[i + 1].path) == 0)
            return trifle__error_path(err, TRIFLE_EINVAL, l[i].path, "duplicate path \"%s\"",
                                      l[i].path);
    for (i = 0; i + 1 < n; i++) {
        size_t plen = strlen(l[i].path), j;
        /* the paths that start with this one directly follow it; usually there are none */
        if (strncmp(l[i + 1].path, l[i].path, plen) != 0)
            continue;
        j = lower_bound_dotted(l, i + 1, n, l[i].path, plen);
        if (j < n && strncmp(l[j].path, l[i].path, plen) == 0 && l[j].path[plen] == '.')
            return trifle__error_path(err, TRIFLE_EINVAL, l[i].path,
                                      "conflicting paths \"%s\" and \"%s\"", l[i].path, l[j].path);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * JSON input */

/* The chain of members from the top level down to the current one, on the C stack. */
typedef struct frame {
    const char *key;
    size_t keylen;
    const struct frame *up;
} frame;

typedef struct walk {
    trifle_payload *p; /* NULL in the measuring walk */
    size_t n;          /* leaves seen (measuring) or written (filling) */
    size_t bytes;      /* path bytes including NULs */
    trifle_error *err;
} walk;

/* The dotted path of the member at f into dst[size], cut short if it does not fit. */
static size_t frame_path(const frame *f, char *dst, size_t size)
{
    size_t o = 0, take;

    if (f->up != NULL) {
        o = frame_path(f->up, dst, size);
        if (o + 1 < size)
            dst[o++] = '.';
    }
    take = f->keylen < size - 1 - o ? f->keylen : size - 1 - o;
    memcpy(dst + o, f->key, take);
    o += take;
    dst[o] = '\0';
    return o;
}

enum walk_fault { FAULT_KEY, FAULT_DEPTH, FAULT_NOT_NUMBER, FAULT_NOT_FINITE };

/* Report a fault of the member at f, with err->path set to its path. */
static int walk_fail(walk *w, const frame *f, enum walk_fault fault)
{
    char path[PATH_MSG_MAX];
    trifle_error *err = w->err;

    (void)frame_path(f, path, sizeof(path));
    switch (fault) {
    case FAULT_KEY:
        return trifle__error_path(err, TRIFLE_EINVAL, path, "invalid key at \"%s\"", path);
    case FAULT_DEPTH:
        return trifle__error_path(err, TRIFLE_EINVAL, path,
                                  "values nested deeper than %d levels at \"%s\"",
                                  PAYLOAD_MAX_DEPTH, path);
    case FAULT_NOT_NUMBER:
        return trifle__error_path(err, TRIFLE_EINVAL, path, "value at \"%s\" is not a number",
                                  path);
    case FAULT_NOT_FINITE:
    default:
        return trifle__error_path(err, TRIFLE_EINVAL, path, "value at \"%s\" is not finite", path);
    }
}

/* Write the full path of the member at f, whose length is len, ending at dst + len. */
static void write_path(char *dst, size_t len, const frame *f)
{
    dst[len] = '\0';
    for (; f != NULL; f = f->up) {
        len -= f->keylen;
        memcpy(dst + len, f->key, f->keylen);
        if (f->up != NULL)
            dst[--len] = '.';
    }
}

/* plen: length of the path of `up` (0 at the top level); depth: its number of segments. */
static int walk_object(walk *w, const cJSON *obj, const frame *up, size_t plen, size_t depth)
{
    const cJSON *m;
    int rc;

    for (m = obj->child; m != NULL; m = m->next) {
        frame f;
        size_t len, segments;

        f.key = m->string;
        f.keylen = strlen(m->string);
        f.up = up;
        len = up == NULL ? f.keylen : plen + 1 + f.keylen;
        segments = 0;
        if (w->p == NULL) { /* the filling walk sees the same, already checked tree */
            if ((segments = key_segments(f.key, f.keylen)) == 0)
                return walk_fail(w, &f, FAULT_KEY);
            if (depth + segments > PAYLOAD_MAX_DEPTH)
                return walk_fail(w, &f, FAULT_DEPTH);
        }
        if (cJSON_IsObject(m)) {
            if ((rc = walk_object(w, m, &f, len, depth + segments)) != 0)
                return rc;
        } else if (!cJSON_IsNumber(m)) {
            return walk_fail(w, &f, FAULT_NOT_NUMBER);
        } else if (!isfinite(m->valuedouble)) {
            return walk_fail(w, &f, FAULT_NOT_FINITE);
        } else if (w->p == NULL) {
            w->n++;
            w->bytes += len + 1;
        } else {
            char *dst = w->p->strings + w->bytes;
            write_path(dst, len, &f);
            w->p->leaves[w->n].path = dst;
            w->p->leaves[w->n].value = normal_zero(m->valuedouble);
            w->n++;
            w->bytes += len + 1;
        }
    }
    return 0;
}

int trifle_payload_parse(trifle_payload **out, const char *json, size_t len, trifle_error *err)
{
    cJSON *root = NULL;
    trifle_payload *p = NULL;
    walk w;
    int rc;

    *out = NULL;
    if ((rc = trifle__json_parse(&root, json, len, err)) != 0)
        return rc;
    if (!cJSON_IsObject(root)) {
        rc = trifle__error(err, TRIFLE_EINVAL, "values must be an object");
        goto done;
    }
    memset(&w, 0, sizeof(w));
    w.err = err;
    if ((rc = walk_object(&w, root, NULL, 0, 0)) != 0)
        goto done;
    if ((p = payload_alloc(w.n, w.bytes)) == NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    w.p = p;
    w.n = w.bytes = 0;
    (void)walk_object(&w, root, NULL, 0, 0); /* the same tree again: cannot fail */
    sort_leaves(p->leaves, p->n);
    if ((rc = check_paths(p->leaves, p->n, err)) != 0)
        goto done;
    *out = p;
    p = NULL;
done:
    cJSON_Delete(root);
    trifle__free(p);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Packed input */

static int copy_leaves(trifle_payload **out, const trifle_leaf *leaves, size_t n, size_t bytes,
                       trifle_error *err)
{
    trifle_payload *p = payload_alloc(n, bytes);
    char *s;
    size_t i;

    if (p == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    s = p->strings;
    for (i = 0; i < n; i++) {
        /* both callers ran strlen() on every path already (from_leaves rejects a NULL one) */
        // NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): never NULL here, see above
        size_t len = strlen(leaves[i].path) + 1;
        memcpy(s, leaves[i].path, len);
        p->leaves[i].path = s;
        p->leaves[i].value = normal_zero(leaves[i].value);
        s += len;
    }
    *out = p;
    return 0;
}

int trifle_payload_from_leaves(trifle_payload **out, const trifle_leaf *leaves, size_t n,
                               trifle_error *err)
{
    trifle_payload *p = NULL;
    size_t i, bytes = 0;
    int rc;

    *out = NULL;
    if (n > 0 && leaves == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "leaves must not be NULL");
    for (i = 0; i < n; i++) {
        const char *path = leaves[i].path != NULL ? leaves[i].path : "";
        size_t len = strlen(path);
        size_t segments = key_segments(path, len);

        if (segments == 0 || !tu_utf8_valid(path, len)) {
            char shown[PATH_MSG_MAX];
            sanitize_utf8(shown, sizeof(shown), path);
            return trifle__error_path(err, TRIFLE_EINVAL, shown, "invalid key at \"%s\"", shown);
        }
        if (segments > PAYLOAD_MAX_DEPTH)
            return trifle__error_path(err, TRIFLE_EINVAL, path,
                                      "values nested deeper than %d levels at \"%s\"",
                                      PAYLOAD_MAX_DEPTH, path);
        if (!isfinite(leaves[i].value))
            return trifle__error_path(err, TRIFLE_EINVAL, path, "value at \"%s\" is not finite",
                                      path);
        if (len + 1 > SIZE_MAX - bytes)
            return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        bytes += len + 1;
    }
    if ((rc = copy_leaves(&p, leaves, n, bytes, err)) != 0)
        return rc;
    sort_leaves(p->leaves, p->n);
    if ((rc = check_paths(p->leaves, p->n, err)) != 0) {
        trifle__free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int trifle__payload_from_sorted(trifle_payload **out, const trifle_leaf *leaves, size_t n,
                                trifle_error *err)
{
    size_t i, bytes = 0;

    *out = NULL;
    for (i = 0; i < n; i++)
        bytes += strlen(leaves[i].path) + 1;
    return copy_leaves(out, leaves, n, bytes, err);
}

/* ---------------------------------------------------------------------------------------------
 * Access */

void trifle_payload_free(trifle_payload *p)
{
    trifle__free(p);
}

size_t trifle_payload_count(const trifle_payload *p)
{
    return p != NULL ? p->n : 0;
}

const trifle_leaf *trifle_payload_leaves(const trifle_payload *p)
{
    return p != NULL ? p->leaves : NULL;
}

int trifle_payload_get(const trifle_payload *p, const char *path, double *out)
{
    size_t lo = 0, hi;

    if (p == NULL || path == NULL)
        return TRIFLE_ENOTFOUND;
    hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(p->leaves[mid].path, path);
        if (c == 0) {
            if (out != NULL)
                *out = p->leaves[mid].value;
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return TRIFLE_ENOTFOUND;
}

int trifle_payload_to_json(const trifle_payload *p, char **out, int flags, trifle_error *err)
{
    cJSON *tree;
    char *text;

    *out = NULL;
    tree = trifle__json_unpack(p != NULL ? p->leaves : NULL, trifle_payload_count(p));
    if (tree == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    text = trifle__json_print(tree, (flags & TRIFLE_JSON_PRETTY) != 0);
    cJSON_Delete(tree);
    if (text == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    *out = text;
    return 0;
}
