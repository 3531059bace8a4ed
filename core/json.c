/* JSON on top of cJSON 1.7.15.
 *
 * cJSON builds the tree; everything it gets wrong for us is handled here:
 *
 *  - Leniency. cJSON accepts `01`, `1.`, `1.e5`, a BOM, control characters as whitespace and
 *    inside strings, and any bytes as "UTF-8". It also cuts a string at `\u0000` without telling
 *    anyone, so `{"a\u0000b":1}` would read as `{"a":1}`. A strict RFC 8259 scan (util/tu_json.h)
 * runs first and rejects all of these with a reason and a byte offset. cJSON therefore only ever
 *    sees valid text, and a NULL from it means it could not allocate. Without the scan we could not
 *    tell ENOMEM from a syntax error, because cJSON reports both the same way.
 *  - Long number literals. Stock 1.7.15 copies at most 63 characters of a literal before calling
 *    strtod. It then either rejects the rest or, at top level, silently uses the truncated value.
 *    Debian's CVE-2023-26819 backport reads them in full. So that both builds behave the same, a
 *    literal longer than 63 characters is blanked to `0` in a private copy of the text. Its
 *    value is then read here with strtod in the C locale and put back into the tree by its
 *    position among the document's numbers.
 *  - Duplicate members are kept by cJSON, and cJSON_GetObjectItem finds the first one. SPEC §4.1
 *    says the last one wins, so the earlier ones are deleted (dedupe).
 *  - The printer is not SPEC §4.5 (`1e+20`, `1e-06`), so output is written here with
 *    trifle__buf_number.
 *
 * Errors never use cJSON_GetErrorPtr(), which is a process-wide global. */
#include "json_int.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_int.h"
#include "error_int.h"
#include "util/tu_json.h"

/* cJSON 1.7.15 copies at most this many characters of a number literal (number_c_string[64]). */
#define CJSON_NUMBER_CHARS 63
/* Objects with more members than this are de-duplicated by sorting instead of pairwise. */
#define DEDUPE_PAIRWISE_MAX 16

/* ---------------------------------------------------------------------------------------------
 * Strict scan */

typedef struct long_number {
    size_t ordinal; /* position among all number literals of the document, in text order */
    size_t offset;
    size_t len;
} long_number;

/* What the strict scan (util/tu_json.h) counts in a text: its number literals, and those too long
 * for cJSON's buffer. */
typedef struct scan_state {
    tu_json_lex lex;
    size_t n_numbers;
    size_t n_long;
    long_number *longs; /* when not NULL, the first n_long entries are recorded (second scan) */
} scan_state;

static void scan_number(void *ctx, size_t at, size_t len)
{
    scan_state *st = ctx;

    if (len > CJSON_NUMBER_CHARS) {
        if (st->longs != NULL) {
            st->longs[st->n_long].ordinal = st->n_numbers;
            st->longs[st->n_long].offset = at;
            st->longs[st->n_long].len = len;
        }
        st->n_long++;
    }
    st->n_numbers++;
}

/* Validate the whole text strictly (no `\u0000`, no unpaired surrogates), counting numbers. */
static int scan_text(scan_state *st, const char *text, size_t len)
{
    st->lex.s = text;
    st->lex.len = len;
    st->lex.number = scan_number;
    st->lex.ctx = st;
    return tu_json_validate(&st->lex);
}

/* ---------------------------------------------------------------------------------------------
 * Long literals */

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_init(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* Read a validated literal of any length exactly (strtod is correctly rounded). Overflow gives
 * +-Inf, as cJSON does for short literals. */
static int read_long_number(const char *text, size_t len, double *out)
{
    char *s = trifle__strndup(text, len);
    locale_t old;

    if (s == NULL)
        return TRIFLE_ENOMEM;
    (void)pthread_once(&c_locale_once, c_locale_init);
    if (c_locale == (locale_t)0) { /* newlocale can only fail for lack of memory */
        trifle__free(s);
        return TRIFLE_ENOMEM;
    }
    old = uselocale(c_locale);
    *out = strtod(s, NULL);
    (void)uselocale(old);
    trifle__free(s);
    return 0;
}

/* Give the k-th number node (document order) of the tree the value of the k-th long literal. */
static void patch_numbers(cJSON *v, const long_number *longs, const double *values, size_t n_long,
                          size_t *ordinal, size_t *next)
{
    for (; v != NULL && *next < n_long; v = v->next) {
        if (cJSON_IsNumber(v)) {
            if (*ordinal == longs[*next].ordinal) {
                (void)cJSON_SetNumberValue(v, values[*next]);
                (*next)++;
            }
            (*ordinal)++;
        } else if (v->child != NULL) {
            patch_numbers(v->child, longs, values, n_long, ordinal, next);
        }
    }
}

/* Parse a text with long literals: blank them to `0` in a copy so cJSON never sees them, then
 * patch their exact values into the tree. */
static int parse_with_long_numbers(cJSON **out, const char *text, size_t len, size_t n_long)
{
    scan_state st;
    long_number *longs = NULL;
    double *values = NULL;
    char *copy = NULL;
    cJSON *root = NULL;
    size_t k, ordinal = 0, next = 0;
    int rc = TRIFLE_ENOMEM;

    longs = trifle__calloc(n_long, sizeof(*longs));
    values = trifle__calloc(n_long, sizeof(*values));
    copy = trifle__malloc(len);
    if (longs == NULL || values == NULL || copy == NULL)
        goto done;
    memset(&st, 0, sizeof(st));
    st.longs = longs;
    if (scan_text(&st, text, len) != 0 || st.n_long != n_long) {
        rc = TRIFLE_ERROR; /* the same text scanned differently: cannot happen */
        goto done;
    }
    memcpy(copy, text, len);
    for (k = 0; k < n_long; k++) {
        if ((rc = read_long_number(text + longs[k].offset, longs[k].len, &values[k])) != 0)
            goto done;
        copy[longs[k].offset] = '0';
        memset(copy + longs[k].offset + 1, ' ', longs[k].len - 1);
    }
    root = cJSON_ParseWithLengthOpts(copy, len, NULL, 0);
    if (root == NULL) {
        rc = TRIFLE_ENOMEM;
        goto done;
    }
    patch_numbers(root, longs, values, n_long, &ordinal, &next);
    *out = root;
    rc = 0;
done:
    trifle__free(longs);
    trifle__free(values);
    trifle__free(copy);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Duplicate members */

typedef struct member_ref {
    cJSON *item;
    size_t pos;
} member_ref;

static int member_ref_cmp(const void *a, const void *b)
{
    const member_ref *x = a, *y = b;
    int c = strcmp(x->item->string, y->item->string);

    if (c != 0)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Delete every member of obj that a later member with the same name replaces. */
static int dedupe_members(cJSON *obj)
{
    member_ref *refs;
    cJSON *m, *next;
    size_t n = 0, i;

    for (m = obj->child; m != NULL; m = m->next)
        n++;
    if (n < 2)
        return 0;
    if (n <= DEDUPE_PAIRWISE_MAX) {
        for (m = obj->child; m != NULL; m = next) {
            cJSON *later;
            next = m->next;
            for (later = next; later != NULL; later = later->next)
                if (strcmp(later->string, m->string) == 0)
                    break;
            if (later != NULL)
                cJSON_Delete(cJSON_DetachItemViaPointer(obj, m));
        }
        return 0;
    }
    refs = trifle__calloc(n, sizeof(*refs));
    if (refs == NULL)
        return TRIFLE_ENOMEM;
    for (m = obj->child, i = 0; m != NULL; m = m->next, i++) {
        refs[i].item = m;
        refs[i].pos = i;
    }
    qsort(refs, n, sizeof(*refs), member_ref_cmp);
    for (i = 0; i + 1 < n; i++)
        if (strcmp(refs[i].item->string, refs[i + 1].item->string) == 0)
            cJSON_Delete(cJSON_DetachItemViaPointer(obj, refs[i].item));
    trifle__free(refs);
    return 0;
}

/* Recursion depth is bounded by TRIFLE__JSON_MAX_DEPTH: only parsed trees come here. */
static int dedupe(cJSON *v)
{
    cJSON *c;
    int rc;

    if (cJSON_IsObject(v) && (rc = dedupe_members(v)) != 0)
        return rc;
    for (c = v->child; c != NULL; c = c->next)
        if (c->child != NULL && (rc = dedupe(c)) != 0)
            return rc;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Parse */

int trifle__json_parse(cJSON **out, const char *text, size_t len, trifle_error *err)
{
    scan_state st;
    cJSON *root = NULL;
    int rc;

    *out = NULL;
    if (text == NULL) {
        text = "";
        len = 0;
    }
    memset(&st, 0, sizeof(st));
    if (scan_text(&st, text, len) != 0)
        return trifle__error(err, TRIFLE_EINVAL, "invalid JSON: %s at byte %zu", st.lex.reason,
                             st.lex.at);
    if (st.n_long > 0) {
        rc = parse_with_long_numbers(&root, text, len, st.n_long);
    } else {
        /* the text is valid, so NULL can only mean that cJSON ran out of memory */
        root = cJSON_ParseWithLengthOpts(text, len, NULL, 0);
        rc = root == NULL ? TRIFLE_ENOMEM : 0;
    }
    if (rc == 0)
        rc = dedupe(root);
    if (rc != 0) {
        cJSON_Delete(root);
        if (rc == TRIFLE_ENOMEM)
            return trifle__error(err, rc, "out of memory parsing JSON");
        return trifle__error(err, rc, "internal error parsing JSON");
    }
    *out = root;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Write */

static void write_indent(trifle__buf *b, size_t level)
{
    trifle__buf_putc(b, '\n');
    while (level-- > 0)
        trifle__buf_append(b, "  ", 2);
}

static void write_value(trifle__buf *b, const cJSON *v, int pretty, size_t level)
{
    const cJSON *c;
    const char *s;
    int object;

    switch (v->type & 0xFF) {
    case cJSON_False:
        trifle__buf_append(b, "false", 5);
        return;
    case cJSON_True:
        trifle__buf_append(b, "true", 4);
        return;
    case cJSON_Number:
        trifle__buf_number(b, v->valuedouble); /* NaN/Inf: "null" */
        return;
    case cJSON_String:
        s = v->valuestring != NULL ? v->valuestring : "";
        trifle__buf_json_string(b, s, strlen(s));
        return;
    case cJSON_Raw:
        if (v->valuestring != NULL) {
            trifle__buf_puts(b, v->valuestring);
            return;
        }
        break;
    case cJSON_Array:
    case cJSON_Object:
        object = (v->type & 0xFF) == cJSON_Object;
        trifle__buf_putc(b, object ? '{' : '[');
        for (c = v->child; c != NULL; c = c->next) {
            if (pretty)
                write_indent(b, level + 1);
            if (object) {
                s = c->string != NULL ? c->string : "";
                trifle__buf_json_string(b, s, strlen(s));
                trifle__buf_append(b, ": ", pretty ? 2 : 1);
            }
            write_value(b, c, pretty, level + 1);
            if (c->next != NULL)
                trifle__buf_putc(b, ',');
        }
        if (pretty && v->child != NULL)
            write_indent(b, level);
        trifle__buf_putc(b, object ? '}' : ']');
        return;
    default:
        break;
    }
    trifle__buf_append(b, "null", 4); /* cJSON_NULL, cJSON_Invalid, Raw without text */
}

void trifle__json_write(trifle__buf *b, const cJSON *v, int pretty)
{
    if (v == NULL)
        trifle__buf_append(b, "null", 4);
    else
        write_value(b, v, pretty != 0, 0);
}

char *trifle__json_print(const cJSON *v, int pretty)
{
    trifle__buf b = TRIFLE__BUF_INIT;

    trifle__json_write(&b, v, pretty);
    return trifle__buf_detach(&b);
}

/* ---------------------------------------------------------------------------------------------
 * Unpack (SPEC §4.3) */

int trifle__leaf_cmp(const void *a, const void *b)
{
    return strcmp(((const trifle_leaf *)a)->path, ((const trifle_leaf *)b)->path);
}

typedef struct unpack_ref {
    const char *path;
    double value;
    size_t pos;
} unpack_ref;

/* Byte order with '.' below every other byte: a path's extensions ("a.x") then come right after
 * it, before its siblings ("a-b"), so every subtree is one contiguous run and siblings appear in
 * byte order of their names. Equal paths keep their input order. */
static int unpack_ref_cmp(const void *a, const void *b)
{
    const unpack_ref *x = a, *y = b;
    const unsigned char *p = (const unsigned char *)x->path, *q = (const unsigned char *)y->path;

    for (;; p++, q++) {
        unsigned kp, kq;
        if (*p == *q) {
            if (*p == '\0')
                return x->pos < y->pos ? -1 : x->pos > y->pos;
            continue;
        }
        kp = *p == '\0' ? 0u : *p == '.' ? 1u : *p + 1u;
        kq = *q == '\0' ? 0u : *q == '.' ? 1u : *q + 1u;
        return kp < kq ? -1 : 1;
    }
}

static int has_empty_segment(const char *p)
{
    if (*p == '\0' || *p == '.')
        return 1;
    for (; *p != '\0'; p++)
        if (*p == '.' && (p[1] == '.' || p[1] == '\0'))
            return 1;
    return 0;
}

/* Does `longer` extend `path` by at least one segment? */
static int extends(const char *longer, const char *path)
{
    size_t n = strlen(path);

    return strncmp(longer, path, n) == 0 && longer[n] == '.';
}

/* Append a leaf at a path whose parents are either absent or the last child of their parent
 * (guaranteed by the unpack_ref_cmp order). seg is scratch space of strlen(path) + 1 bytes. */
static int unpack_add(cJSON *root, const char *path, double value, char *seg)
{
    cJSON *obj = root, *item;
    const char *dot;

    while ((dot = strchr(path, '.')) != NULL) {
        size_t n = (size_t)(dot - path);
        cJSON *last = obj->child != NULL ? obj->child->prev : NULL;

        memcpy(seg, path, n);
        seg[n] = '\0';
        if (last != NULL && cJSON_IsObject(last) && strcmp(last->string, seg) == 0) {
            obj = last;
        } else {
            if ((item = cJSON_CreateObject()) == NULL)
                return -1;
            if (!cJSON_AddItemToObject(obj, seg, item)) {
                cJSON_Delete(item);
                return -1;
            }
            obj = item;
        }
        path = dot + 1;
    }
    if ((item = cJSON_CreateNumber(value)) == NULL)
        return -1;
    if (!cJSON_AddItemToObject(obj, path, item)) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

cJSON *trifle__json_unpack(const trifle_leaf *leaves, size_t n)
{
    unpack_ref *refs = NULL;
    char *seg = NULL;
    cJSON *root = NULL;
    size_t i, m = 0, longest = 0;

    refs = trifle__calloc(n, sizeof(*refs));
    if (refs == NULL)
        goto fail;
    for (i = 0; i < n; i++) {
        size_t len;
        if (leaves[i].path == NULL || has_empty_segment(leaves[i].path))
            continue; /* only possible in foreign data: ignored on read */
        refs[m].path = leaves[i].path;
        refs[m].value = leaves[i].value;
        refs[m].pos = i;
        m++;
        len = strlen(leaves[i].path);
        longest = len > longest ? len : longest;
    }
    qsort(refs, m, sizeof(*refs), unpack_ref_cmp);
    seg = trifle__malloc(longest + 1);
    root = cJSON_CreateObject();
    if (seg == NULL || root == NULL)
        goto fail;
    for (i = 0; i < m; i++) {
        if (i + 1 < m && strcmp(refs[i].path, refs[i + 1].path) == 0)
            continue; /* the same path again later: the last one wins */
        if (i + 1 < m && extends(refs[i + 1].path, refs[i].path))
            continue; /* a leaf that is also an object: the object wins */
        if (unpack_add(root, refs[i].path, refs[i].value, seg) != 0)
            goto fail;
    }
    trifle__free(refs);
    trifle__free(seg);
    return root;
fail:
    trifle__free(refs);
    trifle__free(seg);
    cJSON_Delete(root);
    return NULL;
}
