/* The Simple Stats persistence file (docs/simple-stats.md, "Loading"): a small strict reader for
 * exactly the two accepted document shapes, and the writer of the version-2 document.
 *
 * The document's structure is walked here, rather than by cJSON, because values are int64 and
 * must round-trip exactly (cJSON keeps only a double, exact to 2^53 only); its strings and numbers
 * are lexed by util's one JSON lexer (util/tu_json.h), whose reasons and byte offsets are the
 * errors. The loader runs on files left by crashes and by other programs, so it is fuzzed on its
 * own (tests/fuzz/fuzz_simple_load.c). */
#include "simple_int.h"

#include <stdlib.h>
#include <string.h>

#include "alloc_int.h"
#include "error_int.h"
#include "json_int.h"
#include "util/tu_json.h"

#define MAX_DEPTH 64 /* nesting accepted inside ignored members */

typedef struct reader {
    const unsigned char *s;
    size_t len, pos;
    const char *why; /* static reason of the first failure */
    size_t at;       /* its byte offset */
    int oom;
    trifle__buf str; /* the last decoded string */
} reader;

typedef struct pending {
    trifle__simple_item *items;
    size_t n, cap;
} pending;

static int fail(reader *r, const char *why)
{
    if (r->why == NULL && !r->oom) {
        r->why = why;
        r->at = r->pos;
    }
    return -1;
}

static void ws(reader *r)
{
    while (r->pos < r->len) {
        unsigned char c = r->s[r->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        r->pos++;
    }
}

static int peek(reader *r)
{
    ws(r);
    return r->pos < r->len ? r->s[r->pos] : -1;
}

static int expect(reader *r, char c, const char *why)
{
    if (peek(r) != (unsigned char)c)
        return fail(r, why);
    r->pos++;
    return 0;
}

/* A string literal decoded into r->str (NUL-terminated, never containing NUL): util's lexer
 * checks it (its reason and offset are the file's error), then it is unescaped in one pass. */
static int string(reader *r)
{
    tu_json_lex lx;
    size_t body, n;

    if (expect(r, '"', "expected a string") != 0)
        return -1;
    memset(&lx, 0, sizeof(lx));
    lx.s = (const char *)r->s;
    lx.len = r->len;
    lx.i = r->pos - 1;
    if (tu_json_string(&lx) != 0) {
        r->pos = lx.at;
        return fail(r, lx.reason);
    }
    body = r->pos;
    n = lx.i - 1 - body;
    r->pos = lx.i;
    trifle__buf_reset(&r->str);
    if (trifle__buf_reserve(&r->str, n) == 0) {
        r->str.len = tu_json_unescape(r->str.data, (const char *)r->s + body, n);
        r->str.data[r->str.len] = '\0';
    }
    if (trifle__buf_failed(&r->str)) {
        r->oom = 1;
        return -1;
    }
    return 0;
}

/* The value of the number literal s[0..n), which tu_json_number() accepted, when it is an integer
 * (no fraction, no exponent) within int64: 0, else -1. */
static int int64_of(const unsigned char *s, size_t n, int64_t *out)
{
    int neg = n > 0 && s[0] == '-';
    uint64_t acc = 0, limit = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    size_t i;

    for (i = (size_t)neg; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (s[i] < '0' || s[i] > '9' || acc > (limit - d) / 10)
            return -1; /* '.', 'e', 'E', or too large */
        acc = acc * 10 + d;
    }
    *out = neg ? (acc == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)acc) : (int64_t)acc;
    return 0;
}

/* A number literal, checked by util's JSON lexer (its reasons mapped to this file's: a missing
 * integer part is "expected a value", a missing fraction or exponent digit "invalid number", a
 * leading zero is reported at the digit after it). *is_int: no fraction, no exponent and within
 * int64, with the value in *out. */
static int number(reader *r, int *is_int, int64_t *out)
{
    tu_json_lex lx;
    size_t start, int_start;

    ws(r);
    start = r->pos;
    int_start = start + (start < r->len && r->s[start] == '-');
    memset(&lx, 0, sizeof(lx));
    lx.s = (const char *)r->s;
    lx.len = r->len;
    lx.i = start;
    if (tu_json_number(&lx) != 0) {
        if (strcmp(lx.reason, "leading zero in number") == 0) {
            r->pos = lx.at + 1;
            return fail(r, "leading zero in number");
        }
        r->pos = lx.at;
        return fail(r, lx.at == int_start ? "expected a value" : "invalid number");
    }
    r->pos = lx.i;
    *is_int = int64_of(r->s + start, lx.i - start, out) == 0;
    return 0;
}

/* A member name already decoded in r->str that must be a valid stats name. */
static int valid_name(reader *r, size_t at)
{
    if (trifle__simple_name_check(r->str.data, NULL) != 0) {
        r->pos = at;
        return fail(r, "invalid stats name");
    }
    return 0;
}

static int literal(reader *r, const char *word)
{
    size_t n = strlen(word);

    if (r->len - r->pos < n || memcmp(r->s + r->pos, word, n) != 0)
        return fail(r, "expected a value");
    r->pos += n;
    return 0;
}

/* Reads one member value (its name decoded in r->str, the reader past the ':') or one array
 * element. Returns 0 or -1. */
typedef int (*item_fn)(reader *r, void *ctx);

/* `<open> <item> , ... <close>` (or `<open> <close>`), each item read by item(): the one loop of
 * objects and arrays. not_open is the failure when there is no opening bracket, bad_next the one
 * when an item is followed by neither ',' nor the closing bracket. */
static int items(reader *r, char open, char close, const char *not_open, const char *bad_next,
                 item_fn item, void *ctx)
{
    int c;

    if (expect(r, open, not_open) != 0)
        return -1;
    if (peek(r) == close) {
        r->pos++;
        return 0;
    }
    for (;;) {
        if (item(r, ctx) != 0)
            return -1;
        c = peek(r);
        if (c == close) {
            r->pos++;
            return 0;
        }
        if (c != ',')
            return fail(r, bad_next);
        r->pos++;
    }
}

/* How object() reads its members. */
typedef struct members {
    int check_names;
    item_fn value;
    void *ctx;
} members;

/* `"<name>": <value>`: the name decoded into r->str (and checked, with check_names), then the
 * value read by m->value(). */
static int member(reader *r, void *ctx)
{
    members *m = ctx;
    size_t at;

    ws(r);
    at = r->pos;
    if (string(r) != 0 || (m->check_names && valid_name(r, at) != 0) ||
        expect(r, ':', "expected ':'") != 0)
        return -1;
    return m->value(r, m->ctx);
}

/* `{"<name>": <value>, ...}`, each value read by value(). With check_names every name must be a
 * valid stats name (checked before its ':'). not_object is the failure when there is no '{'. */
static int object(reader *r, const char *not_object, int check_names, item_fn value, void *ctx)
{
    members m = {check_names, value, ctx};

    return items(r, '{', '}', not_object, "expected ',' or '}'", member, &m);
}

/* `[<value>, ...]`, each element read by element(). not_array is the failure when there is no
 * '['. */
static int array(reader *r, const char *not_array, item_fn element, void *ctx)
{
    return items(r, '[', ']', not_array, "expected ',' or ']'", element, ctx);
}

static int skip_value(reader *r, int depth);

/* A member or element of an ignored value; ctx is the depth of that value. */
static int skip_item(reader *r, void *ctx)
{
    return skip_value(r, *(int *)ctx + 1);
}

static int skip_value(reader *r, int depth)
{
    int c = peek(r), is_int;
    int64_t ignored;

    if (depth > MAX_DEPTH)
        return fail(r, "nesting too deep");
    switch (c) {
    case '{':
        return object(r, "expected a value", 0, skip_item, &depth);
    case '[':
        return array(r, "expected a value", skip_item, &depth);
    case '"':
        return string(r);
    case 't':
        return literal(r, "true");
    case 'f':
        return literal(r, "false");
    case 'n':
        return literal(r, "null");
    default:
        return number(r, &is_int, &ignored);
    }
}

static int push(reader *r, pending *p, const char *category, const char *name, int64_t value)
{
    trifle__simple_item *it;

    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        trifle__simple_item *grown = trifle__reallocarray(p->items, cap, sizeof(*grown));
        if (grown == NULL) {
            r->oom = 1;
            return -1;
        }
        p->items = grown;
        p->cap = cap;
    }
    it = &p->items[p->n];
    it->category = trifle__strdup(category);
    it->name = trifle__strdup(name);
    if (it->category == NULL || it->name == NULL) {
        trifle__free(it->category);
        trifle__free(it->name);
        r->oom = 1;
        return -1;
    }
    it->value = value;
    it->kind = TRIFLE_SIMPLE_COUNTER;
    p->n++;
    return 0;
}

static void pending_clear(pending *p)
{
    size_t i;

    for (i = 0; i < p->n; i++) {
        trifle__free(p->items[i].category);
        trifle__free(p->items[i].name);
    }
    p->n = 0;
}

/* Where the members of one category go. */
typedef struct category {
    pending *out;
    char *name;
} category;

/* `"<name>": <int>` of a category. */
static int counter_member(reader *r, void *ctx)
{
    category *cat = ctx;
    size_t at = r->pos;
    int is_int;
    int64_t v;

    if (number(r, &is_int, &v) != 0)
        return -1;
    if (!is_int) {
        r->pos = at;
        return fail(r, "value is not an int64 integer");
    }
    return push(r, cat->out, cat->name, r->str.data, v); /* r->str: still the member's name */
}

/* `"<name>"` in the array of a gauges category. */
static int gauge_element(reader *r, void *ctx)
{
    category *cat = ctx;
    size_t at;

    ws(r);
    at = r->pos;
    if (string(r) != 0 || valid_name(r, at) != 0)
        return -1;
    return push(r, cat->out, cat->name, r->str.data, 0);
}

/* The value of a category member (its name still in r->str): `{"<name>": <int>, ...}` of the
 * stats, or `["<name>", ...]` of the gauges (pairs in the pending list, values unused). */
static int category_value(reader *r, pending *out, int gauges)
{
    category cat = {out, trifle__strdup(r->str.data)};
    int rc;

    if (cat.name == NULL) {
        r->oom = 1;
        return -1;
    }
    if (gauges)
        rc = array(r, "gauges category is not an array", gauge_element, &cat);
    else
        rc = object(r, "category is not an object", 1, counter_member, &cat);
    trifle__free(cat.name);
    return rc;
}

/* `"<category>": {"<name>": <int>, ...}`. */
static int category_member(reader *r, void *ctx)
{
    return category_value(r, ctx, 0);
}

/* `{"<category>": {...}, ...}`: the INFINI document or the version-2 `stats` member. */
static int stats_object(reader *r, pending *out)
{
    return object(r, "expected an object", 1, category_member, out);
}

/* `"<category>": ["<name>", ...]`. */
static int gauges_member(reader *r, void *ctx)
{
    return category_value(r, ctx, 1);
}

/* `{"<category>": ["<name>", ...], ...}`. */
static int gauges_object(reader *r, pending *out)
{
    return object(r, "gauges is not an object", 1, gauges_member, out);
}

static int item_cmp(const trifle__simple_item *a, const trifle__simple_item *b)
{
    int c = strcmp(a->category, b->category);
    return c != 0 ? c : strcmp(a->name, b->name);
}

static int item_find_cmp(const void *pa, const void *pb)
{
    return item_cmp(pa, pb);
}

/* Sorting key: (category, name) then the order of appearance, so the last duplicate is kept. */
static int item_sort_cmp(const void *pa, const void *pb)
{
    const trifle__simple_item *a = pa, *b = pb;
    int c = item_cmp(a, b);

    if (c != 0)
        return c;
    return a->kind < b->kind ? -1 : a->kind > b->kind; /* kind holds the sequence while sorting */
}

static void sort_unique(pending *p)
{
    size_t i, w = 0;

    for (i = 0; i < p->n; i++)
        p->items[i].kind = (int)i; /* n is bounded by the text length, far below INT_MAX here */
    if (p->n > 1)
        qsort(p->items, p->n, sizeof(*p->items), item_sort_cmp);
    for (i = 0; i < p->n; i++) {
        if (i + 1 < p->n && item_cmp(&p->items[i], &p->items[i + 1]) == 0) {
            trifle__free(p->items[i].category);
            trifle__free(p->items[i].name);
            continue;
        }
        p->items[w] = p->items[i];
        p->items[w].kind = TRIFLE_SIMPLE_COUNTER;
        w++;
    }
    p->n = w;
}

/* What the first pass finds at the top level. */
typedef struct top {
    int has_version, stats_obj, is_int;
    int64_t version;
} top;

static int scan_member(reader *r, void *ctx)
{
    top *t = ctx;
    int c;

    if (strcmp(r->str.data, "version") == 0) {
        c = peek(r);
        t->has_version = c == '-' || (c >= '0' && c <= '9');
        if (t->has_version)
            return number(r, &t->is_int, &t->version);
    } else if (strcmp(r->str.data, "stats") == 0) {
        t->stats_obj = peek(r) == '{';
    }
    return skip_value(r, 1);
}

/* First pass over the top level: does it have a numeric `version` and an object `stats`? */
static int scan_top(reader *r, int *v2, int64_t *version, int *version_int)
{
    top t = {0, 0, 0, 0};

    if (object(r, "the document is not an object", 0, scan_member, &t) != 0)
        return -1;
    if (peek(r) != -1)
        return fail(r, "trailing characters after the document");
    *v2 = t.has_version && t.stats_obj;
    *version = t.version;
    *version_int = t.is_int;
    return 0;
}

/* The pending lists of a version-2 document. */
typedef struct v2_lists {
    pending *stats, *gauges;
} v2_lists;

static int v2_member(reader *r, void *ctx)
{
    v2_lists *l = ctx;

    if (strcmp(r->str.data, "stats") == 0) {
        pending_clear(l->stats); /* a duplicate member: the last one wins */
        return stats_object(r, l->stats);
    }
    if (strcmp(r->str.data, "gauges") == 0) {
        pending_clear(l->gauges);
        return gauges_object(r, l->gauges);
    }
    return skip_value(r, 1);
}

/* Second pass over a version-2 document (the first one checked its syntax). */
static int read_v2(reader *r, pending *stats, pending *gauges)
{
    v2_lists l = {stats, gauges};

    r->pos = 0;
    return object(r, "the document is not an object", 0, v2_member, &l);
}

int trifle__simple_file_parse(trifle__simple_file *out, const char *text, size_t len,
                              trifle_error *err)
{
    reader r;
    pending stats = {NULL, 0, 0}, gauges = {NULL, 0, 0};
    int v2 = 0, version_int = 0, rc = 0;
    int64_t version = 0;
    size_t i;

    memset(out, 0, sizeof(*out));
    memset(&r, 0, sizeof(r));
    r.str = (trifle__buf)TRIFLE__BUF_INIT;
    r.s = (const unsigned char *)text;
    r.len = len;
    if (text == NULL) {
        r.len = 0;
        r.s = (const unsigned char *)"";
    }
    if (scan_top(&r, &v2, &version, &version_int) != 0)
        goto done;
    if (v2) {
        if (!version_int || version != 2) {
            r.pos = 0;
            (void)fail(&r, "unsupported version");
            goto done;
        }
        if (read_v2(&r, &stats, &gauges) != 0)
            goto done;
    } else {
        r.pos = 0;
        if (stats_object(&r, &stats) != 0)
            goto done;
    }
    sort_unique(&stats);
    for (i = 0; i < gauges.n; i++) {
        trifle__simple_item *hit =
            bsearch(&gauges.items[i], stats.items, stats.n, sizeof(*stats.items), item_find_cmp);
        if (hit != NULL)
            hit->kind = TRIFLE_SIMPLE_GAUGE;
    }
    out->items = stats.items;
    out->n = stats.n;
    out->format = v2 ? 2 : 1;
    stats.items = NULL;
    stats.n = 0;
done:
    if (r.oom)
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    else if (r.why != NULL)
        rc = trifle__error(err, TRIFLE_EINVAL, "invalid stats file: %s at byte %zu", r.why, r.at);
    pending_clear(&stats);
    pending_clear(&gauges);
    trifle__free(stats.items);
    trifle__free(gauges.items);
    trifle__buf_free(&r.str);
    return rc;
}

void trifle__simple_file_free(trifle__simple_file *f)
{
    size_t i;

    if (f == NULL)
        return;
    for (i = 0; i < f->n; i++) {
        trifle__free(f->items[i].category);
        trifle__free(f->items[i].name);
    }
    trifle__free(f->items);
    memset(f, 0, sizeof(*f));
}

/* The members `"<category>": ...` of the version-2 document for @p items: each category's items
 * as an object of `"<name>": <value>`, or (@p gauges) the gauges alone as an array of names. */
static void write_categories(trifle__buf *b, const trifle__simple_item *items, size_t n, int gauges)
{
    const char *cat = NULL;
    size_t i;

    for (i = 0; i < n; i++) {
        if (gauges && items[i].kind != TRIFLE_SIMPLE_GAUGE)
            continue;
        if (cat == NULL || strcmp(cat, items[i].category) != 0) {
            if (cat != NULL)
                trifle__buf_puts(b, gauges ? "]," : "},");
            cat = items[i].category;
            trifle__buf_json_string(b, cat, strlen(cat));
            trifle__buf_puts(b, gauges ? ":[" : ":{");
        } else {
            trifle__buf_putc(b, ',');
        }
        trifle__buf_json_string(b, items[i].name, strlen(items[i].name));
        if (!gauges)
            trifle__buf_printf(b, ":%lld", (long long)items[i].value);
    }
    if (cat != NULL)
        trifle__buf_putc(b, gauges ? ']' : '}');
}

void trifle__simple_file_write(trifle__buf *b, const trifle__simple_item *items, size_t n)
{
    trifle__buf_puts(b, "{\"version\":2,\"stats\":{");
    write_categories(b, items, n, 0);
    trifle__buf_puts(b, "},\"gauges\":{");
    write_categories(b, items, n, 1);
    trifle__buf_puts(b, "}}");
}
