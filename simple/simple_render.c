/* Simple Stats rendering: the /stats tree built from the registry and the providers' writers,
 * printed as the SPEC §10.4 JSON document and as SPEC §10.5 Prometheus text (ERRATA B7: names that
 * `promtool check metrics` accepts). */
#include "simple_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_int.h"
#include "error_int.h"
#include "numfmt_int.h"

enum { N_OBJECT = 0, N_INT = 1, N_DOUBLE = 2 };

#define WRITER_DEPTH 32

struct trifle__snode {
    char *name; /* NULL for the top object */
    int type;
    int counter; /* a `stats` entry of counter kind */
    int64_t i;
    double d;
    trifle__snode **kids;
    size_t n, cap;
};

struct trifle_simple_writer {
    trifle__snode *stack[WRITER_DEPTH + 1];
    size_t depth;
    int rc;
    char msg[200];
};

/* ---------------------------------------------------------------------------------------------
 * Nodes */

static trifle__snode *node_new(const char *name, int type)
{
    trifle__snode *n = trifle__calloc(1, sizeof(*n));

    if (n == NULL)
        return NULL;
    n->type = type;
    if (name != NULL && (n->name = trifle__strdup(name)) == NULL) {
        trifle__free(n);
        return NULL;
    }
    return n;
}

trifle__snode *trifle__snode_new_object(const char *name)
{
    return node_new(name, N_OBJECT);
}

void trifle__snode_free(trifle__snode *n)
{
    size_t i;

    if (n == NULL)
        return;
    for (i = 0; i < n->n; i++)
        trifle__snode_free(n->kids[i]);
    trifle__free(n->kids);
    trifle__free(n->name);
    trifle__free(n);
}

static int append_kid(trifle__snode *parent, trifle__snode *child)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        trifle__snode **grown = trifle__reallocarray(parent->kids, cap, sizeof(*grown));
        if (grown == NULL)
            return TRIFLE_ENOMEM;
        parent->kids = grown;
        parent->cap = cap;
    }
    parent->kids[parent->n++] = child;
    return 0;
}

static trifle__snode *find_kid(const trifle__snode *parent, const char *name, size_t len)
{
    size_t i;

    /* newest first: providers usually write members in order */
    for (i = parent->n; i-- > 0;)
        if (strncmp(parent->kids[i]->name, name, len) == 0 && parent->kids[i]->name[len] == '\0')
            return parent->kids[i];
    return NULL;
}

int trifle__snode_attach(trifle__snode *parent, trifle__snode *child)
{
    size_t i;

    for (i = 0; i < parent->n; i++)
        if (strcmp(parent->kids[i]->name, child->name) == 0) {
            trifle__snode_free(parent->kids[i]);
            parent->kids[i] = child;
            return 0;
        }
    return append_kid(parent, child);
}

static int kid_cmp(const void *pa, const void *pb)
{
    const trifle__snode *a = *(const trifle__snode *const *)pa;
    const trifle__snode *b = *(const trifle__snode *const *)pb;
    return strcmp(a->name, b->name); /* strcmp compares as unsigned char: byte order */
}

static void sort_tree(trifle__snode *n)
{
    size_t i;

    if (n->type != N_OBJECT)
        return;
    if (n->n > 1)
        qsort(n->kids, n->n, sizeof(*n->kids), kid_cmp);
    for (i = 0; i < n->n; i++)
        sort_tree(n->kids[i]);
}

/* ---------------------------------------------------------------------------------------------
 * Writer */

static int wfail(trifle_simple_writer *w, int rc, const char *fmt, const char *what)
{
    if (w->rc == 0) {
        w->rc = rc;
        (void)snprintf(w->msg, sizeof(w->msg), fmt, what);
    }
    return rc;
}

static int segment_ok(const char *s, size_t len)
{
    char tmp[TRIFLE_SIMPLE_NAME_MAX + 1];

    if (len == 0 || len > TRIFLE_SIMPLE_NAME_MAX)
        return 0;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    return trifle__simple_name_check(tmp, NULL) == 0;
}

/* A new member s[0..len) of @p parent, or NULL after recording the failure (out of memory). */
static trifle__snode *add_kid(trifle_simple_writer *w, trifle__snode *parent, const char *s,
                              size_t len, int type)
{
    char tmp[TRIFLE_SIMPLE_NAME_MAX + 1];
    trifle__snode *kid;

    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if ((kid = node_new(tmp, type)) == NULL || append_kid(parent, kid) != 0) {
        trifle__snode_free(kid);
        (void)wfail(w, TRIFLE_ENOMEM, "out of memory%s", "");
        return NULL;
    }
    return kid;
}

/* Walk/create the objects of path's leading segments; the last segment is returned in *last. */
static int walk(trifle_simple_writer *w, const char *path, trifle__snode **parent,
                const char **last, size_t *last_len)
{
    trifle__snode *cur;
    const char *seg, *dot;

    if (w == NULL)
        return TRIFLE_EINVAL;
    if (w->rc != 0)
        return w->rc;
    if (path == NULL)
        return wfail(w, TRIFLE_EINVAL, "invalid path %s", "(null)");
    cur = w->stack[w->depth];
    seg = path;
    for (;;) {
        trifle__snode *next;
        size_t len;
        dot = strchr(seg, '.');
        len = dot ? (size_t)(dot - seg) : strlen(seg);
        if (!segment_ok(seg, len))
            return wfail(w, TRIFLE_EINVAL, "invalid path \"%s\"", path);
        if (dot == NULL) {
            *parent = cur;
            *last = seg;
            *last_len = len;
            return 0;
        }
        next = find_kid(cur, seg, len);
        if (next == NULL) {
            if ((next = add_kid(w, cur, seg, len, N_OBJECT)) == NULL)
                return TRIFLE_ENOMEM;
        } else if (next->type != N_OBJECT) {
            return wfail(w, TRIFLE_EINVAL, "\"%s\": a number and an object share a path", path);
        }
        cur = next;
        seg = dot + 1;
    }
}

static int put_leaf(trifle_simple_writer *w, const char *path, int type, int64_t i, double d)
{
    trifle__snode *parent, *leaf;
    const char *last;
    size_t len;
    int rc = walk(w, path, &parent, &last, &len);

    if (rc != 0)
        return rc;
    leaf = find_kid(parent, last, len);
    if (leaf != NULL && leaf->type == N_OBJECT)
        return wfail(w, TRIFLE_EINVAL, "\"%s\": a number and an object share a path", path);
    if (leaf == NULL && (leaf = add_kid(w, parent, last, len, type)) == NULL)
        return TRIFLE_ENOMEM;
    leaf->type = type;
    leaf->i = i;
    leaf->d = d;
    return 0;
}

int trifle_simple_writer_int(trifle_simple_writer *w, const char *path, int64_t value)
{
    return put_leaf(w, path, N_INT, value, 0);
}

int trifle_simple_writer_number(trifle_simple_writer *w, const char *path, double value)
{
    if (w != NULL && w->rc == 0 && !isfinite(value))
        return wfail(w, TRIFLE_EINVAL, "\"%s\": the number is not finite", path ? path : "");
    return put_leaf(w, path, N_DOUBLE, 0, value);
}

int trifle_simple_writer_enter(trifle_simple_writer *w, const char *name)
{
    trifle__snode *cur, *next;

    if (w == NULL)
        return TRIFLE_EINVAL;
    if (w->rc != 0)
        return w->rc;
    if (trifle__simple_name_check(name, NULL) != 0)
        return wfail(w, TRIFLE_EINVAL, "invalid member name \"%s\"", name ? name : "(null)");
    if (w->depth == WRITER_DEPTH)
        return wfail(w, TRIFLE_EINVAL, "\"%s\": nesting deeper than 32", name);
    cur = w->stack[w->depth];
    next = find_kid(cur, name, strlen(name));
    if (next == NULL) {
        if ((next = node_new(name, N_OBJECT)) == NULL || append_kid(cur, next) != 0) {
            trifle__snode_free(next);
            return wfail(w, TRIFLE_ENOMEM, "out of memory%s", "");
        }
    } else if (next->type != N_OBJECT) {
        return wfail(w, TRIFLE_EINVAL, "\"%s\": a number and an object share a path", name);
    }
    w->stack[++w->depth] = next;
    return 0;
}

int trifle_simple_writer_leave(trifle_simple_writer *w)
{
    if (w == NULL)
        return TRIFLE_EINVAL;
    if (w->rc != 0)
        return w->rc;
    if (w->depth == 0)
        return wfail(w, TRIFLE_EINVAL, "leave without enter%s", "");
    w->depth--;
    return 0;
}

int trifle__simple_run_provider(trifle__snode **out, const char *root, trifle_simple_provider fn,
                                void *payload, trifle_error *err)
{
    trifle_simple_writer w;
    trifle_error perr = TRIFLE_ERROR_INIT;
    int rc;

    *out = NULL;
    memset(&w, 0, sizeof(w));
    if ((w.stack[0] = node_new(root, N_OBJECT)) == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    rc = fn(&w, &perr, payload);
    if (w.rc != 0) /* the writer's own complaint is the precise one */
        rc = trifle__error(err, w.rc, "stats provider %s: %s", root, w.msg);
    else if (rc != 0 && perr.code != 0 && perr.message[0] != '\0')
        rc = trifle__error(err, rc, "%s", perr.message);
    else if (rc != 0)
        rc = trifle__error(err, rc < 0 ? rc : TRIFLE_ERROR, "stats provider %s failed (%s)", root,
                           trifle_strerror(rc));
    if (rc != 0) {
        trifle__snode_free(w.stack[0]);
        return rc;
    }
    *out = w.stack[0];
    return 0;
}

trifle__snode *trifle__simple_stats_tree(const trifle__simple_view *view)
{
    trifle__snode *stats = node_new("stats", N_OBJECT), *cat = NULL, *leaf;
    size_t i;

    if (stats == NULL)
        return NULL;
    for (i = 0; i < view->n; i++) {
        const trifle__simple_item *it = &view->items[i];
        if (cat == NULL || strcmp(cat->name, it->category) != 0) {
            if ((cat = node_new(it->category, N_OBJECT)) == NULL || append_kid(stats, cat) != 0) {
                trifle__snode_free(cat);
                goto fail;
            }
        }
        if ((leaf = node_new(it->name, N_INT)) == NULL || append_kid(cat, leaf) != 0) {
            trifle__snode_free(leaf);
            goto fail;
        }
        leaf->i = it->value;
        leaf->counter = it->kind == TRIFLE_SIMPLE_COUNTER;
    }
    return stats;
fail:
    trifle__snode_free(stats);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * JSON (SPEC §10.4; ERRATA minor 6: one member per line, one more space per level) */

static void indent(trifle__buf *b, size_t depth)
{
    size_t i;

    for (i = 0; i < depth; i++)
        trifle__buf_putc(b, ' ');
}

static void json_value(trifle__buf *b, const trifle__snode *n, size_t depth)
{
    size_t i;

    if (n->type == N_INT) {
        trifle__buf_printf(b, "%lld", (long long)n->i);
        return;
    }
    if (n->type == N_DOUBLE) {
        trifle__buf_number(b, n->d);
        return;
    }
    if (n->n == 0) {
        trifle__buf_puts(b, "{}");
        return;
    }
    trifle__buf_puts(b, "{\n");
    for (i = 0; i < n->n; i++) {
        indent(b, depth + 1);
        trifle__buf_json_string(b, n->kids[i]->name, strlen(n->kids[i]->name));
        trifle__buf_puts(b, ": ");
        json_value(b, n->kids[i], depth + 1);
        trifle__buf_puts(b, i + 1 < n->n ? ",\n" : "\n");
    }
    indent(b, depth);
    trifle__buf_putc(b, '}');
}

int trifle__simple_json(trifle__buf *b, const trifle__snode *root)
{
    sort_tree((trifle__snode *)root);
    json_value(b, root, 0);
    trifle__buf_putc(b, '\n');
    return trifle__buf_failed(b) ? TRIFLE_ENOMEM : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Prometheus names (ERRATA B7)
 *
 * promtool check metrics runs promlint, which rejects: counters without `_total`, other types with
 * it; `_count`/`_sum`/`_bucket` suffixes outside histograms and summaries; a `_`-separated word
 * that is a unit abbreviation (`_ms_`, `_s` …), a metric type (`_gauge_` …) or a non-base unit
 * (`milliseconds`, `kilobytes`, `minutes` …); colons; camelCase. Names are lower-cased and such a
 * word is joined to the word before it (or, for the first word, to the one after it), which keeps
 * every name readable and derived from its path; the `path` label resolves the collisions this
 * may create. */

static const char *const abbreviations[] = {"s",  "ms", "us", "ns", "sec", "b", "kb",
                                            "mb", "gb", "tb", "pb", "m",   "h", "d"};
static const char *const type_words[] = {"counter", "gauge", "histogram", "summary"};
static const char *const base_units[] = {"amperes", "bytes",  "celsius", "grams",   "joules",
                                         "kelvin",  "meters", "metres",  "seconds", "volts"};
static const char *const other_units[] = {"minutes",    "hours",    "days",   "weeks", "kelvins",
                                          "fahrenheit", "rankine",  "inches", "yards", "miles",
                                          "bits",       "calories", "pounds", "ounces"};
static const char *const unit_prefixes[] = {"pico", "nano",  "micro", "milli", "centi", "deci",
                                            "deca", "hecto", "kilo",  "kibi",  "mega",  "mibi",
                                            "giga", "gibi",  "tera",  "tebi",  "peta",  "pebi"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int word_is(const char *w, size_t n, const char *const *list, size_t count)
{
    size_t i;

    for (i = 0; i < count; i++)
        if (strlen(list[i]) == n && memcmp(w, list[i], n) == 0)
            return 1;
    return 0;
}

static int non_base_unit(const char *w, size_t n)
{
    size_t i;

    if (word_is(w, n, other_units, COUNT(other_units)))
        return 1;
    for (i = 0; i < COUNT(unit_prefixes); i++) {
        size_t p = strlen(unit_prefixes[i]);
        if (n > p && memcmp(w, unit_prefixes[i], p) == 0 &&
            (word_is(w + p, n - p, base_units, COUNT(base_units)) ||
             word_is(w + p, n - p, other_units, COUNT(other_units))))
            return 1;
    }
    return 0;
}

/* Join rejected words until none is left. s is NUL-terminated and modified in place. */
static void glue_words(char *s)
{
    int again = 1;

    while (again) {
        size_t start = 0, idx = 0, len = strlen(s);
        again = 0;
        while (start <= len) {
            size_t end = start;
            while (end < len && s[end] != '_')
                end++;
            if (idx > 0 && (word_is(s + start, end - start, abbreviations, COUNT(abbreviations)) ||
                            word_is(s + start, end - start, type_words, COUNT(type_words)) ||
                            non_base_unit(s + start, end - start))) {
                memmove(s + start - 1, s + start, len - start + 1); /* drop the '_' before */
                again = 1;
                break;
            }
            if (idx == 0 && end < len && non_base_unit(s + start, end - start)) {
                memmove(s + end, s + end + 1, len - end); /* drop the '_' after */
                again = 1;
                break;
            }
            start = end + 1;
            idx++;
        }
    }
}

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix), i;

    if (n < m)
        return 0;
    for (i = 0; i < m; i++) {
        char c = s[n - m + i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != suffix[i])
            return 0;
    }
    return 1;
}

char *trifle__simple_prom_base_name(const char *const *segments, size_t n, int *seconds)
{
    trifle__buf b = TRIFLE__BUF_INIT;
    char *out;
    size_t i, j;

    *seconds = n > 0 && ends_with_ci(segments[n - 1], "_in_ms");
    if (n > 0 && segments[0][0] >= '0' && segments[0][0] <= '9')
        trifle__buf_putc(&b, '_');
    for (i = 0; i < n; i++) {
        size_t len = strlen(segments[i]);
        if (i > 0)
            trifle__buf_putc(&b, '_');
        if (i + 1 == n && *seconds)
            len -= 6;
        for (j = 0; j < len; j++) {
            char c = segments[i][j];
            if (c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
                c = '_';
            trifle__buf_putc(&b, c);
        }
    }
    if (*seconds)
        trifle__buf_puts(&b, "_seconds");
    trifle__buf_append(&b, "", 0);
    if ((out = trifle__buf_detach(&b)) == NULL)
        return NULL;
    glue_words(out);
    return out;
}

/* ---------------------------------------------------------------------------------------------
 * Prometheus text (SPEC §10.5) */

typedef struct sample {
    char *base;       /* name without `_total` */
    char *name;       /* final name */
    char *dotted;     /* s1.s2.….sn */
    char *dotted_esc; /* the same with `.` and `\` inside a segment escaped */
    char *labels;     /* rendered label text without braces */
    char value[64];
    int counter;
} sample;

typedef struct samples {
    sample *v;
    size_t n, cap;
    const char *segs[WRITER_DEPTH + 8];
    int failed;
} samples;

static void value_text(char *out, size_t size, const trifle__snode *n, int seconds)
{
    if (n->type == N_DOUBLE) {
        char tmp[64];
        (void)trifle__fmt_double(tmp, seconds ? n->d / 1000.0 : n->d);
        (void)snprintf(out, size, "%s", tmp);
    } else if (!seconds) {
        (void)snprintf(out, size, "%lld", (long long)n->i);
    } else {
        /* exact decimal of i / 1000 */
        uint64_t mag = n->i < 0 ? (uint64_t)0 - (uint64_t)n->i : (uint64_t)n->i;
        unsigned frac = (unsigned)(mag % 1000);
        char digits[8];
        int k = 3;
        if (frac == 0) {
            (void)snprintf(out, size, "%s%llu", n->i < 0 ? "-" : "",
                           (unsigned long long)(mag / 1000));
            return;
        }
        (void)snprintf(digits, sizeof(digits), "%03u", frac);
        while (k > 0 && digits[k - 1] == '0')
            digits[--k] = '\0';
        (void)snprintf(out, size, "%s%llu.%s", n->i < 0 ? "-" : "",
                       (unsigned long long)(mag / 1000), digits);
    }
}

static char *join_path(const char *const *segs, size_t n, int escape)
{
    trifle__buf b = TRIFLE__BUF_INIT;
    size_t i;
    const char *p;

    for (i = 0; i < n; i++) {
        if (i > 0)
            trifle__buf_putc(&b, '.');
        for (p = segs[i]; *p != '\0'; p++) {
            if (escape && (*p == '.' || *p == '\\'))
                trifle__buf_putc(&b, '\\');
            trifle__buf_putc(&b, *p);
        }
    }
    trifle__buf_append(&b, "", 0);
    return trifle__buf_detach(&b);
}

static void collect(samples *s, const trifle__snode *n, size_t depth, int in_stats)
{
    size_t i;
    sample *x;
    int seconds = 0;

    if (s->failed)
        return;
    if (n->type == N_OBJECT) {
        if (depth >= COUNT(s->segs))
            return; /* deeper than any writer or the stats tree can build */
        for (i = 0; i < n->n; i++) {
            s->segs[depth] = n->kids[i]->name;
            collect(s, n->kids[i], depth + 1,
                    depth == 0 ? strcmp(n->kids[i]->name, "stats") == 0 : in_stats);
        }
        return;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        sample *grown = trifle__reallocarray(s->v, cap, sizeof(*grown));
        if (grown == NULL) {
            s->failed = 1;
            return;
        }
        s->v = grown;
        s->cap = cap;
    }
    x = &s->v[s->n];
    memset(x, 0, sizeof(*x));
    s->n++;
    x->counter = in_stats && n->counter;
    x->base = trifle__simple_prom_base_name(s->segs, depth, &seconds);
    x->dotted = join_path(s->segs, depth, 0);
    x->dotted_esc = join_path(s->segs, depth, 1);
    if (x->base == NULL || x->dotted == NULL || x->dotted_esc == NULL)
        s->failed = 1;
    value_text(x->value, sizeof(x->value), n, seconds);
}

static int by_base(const void *pa, const void *pb)
{
    const sample *a = pa, *b = pb;
    return strcmp(a->base, b->base);
}

static int by_name_dotted(const void *pa, const void *pb)
{
    const sample *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);
    return c != 0 ? c : strcmp(a->dotted, b->dotted);
}

static int by_labels(const void *pa, const void *pb)
{
    const sample *a = pa, *b = pb;
    return strcmp(a->labels, b->labels);
}

/* A gauge must not end in a word promlint reserves: join it to the word before. */
static void gauge_suffix(char *name)
{
    static const char *const reserved[] = {"_total", "_count", "_sum", "_bucket"};
    size_t i, n = strlen(name), m;

    for (i = 0; i < COUNT(reserved); i++) {
        m = strlen(reserved[i]);
        if (n > m && strcmp(name + n - m, reserved[i]) == 0) {
            memmove(name + n - m, name + n - m + 1, m);
            return;
        }
    }
}

void trifle__simple_prom_escape(trifle__buf *b, const char *s, int quotes)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            trifle__buf_puts(b, "\\\\");
        else if (*s == '"' && quotes)
            trifle__buf_puts(b, "\\\"");
        else if (*s == '\n')
            trifle__buf_puts(b, "\\n");
        else
            trifle__buf_putc(b, *s);
    }
}

/* Names, types and labels of samples [lo, hi) of one final name; then print them. */
static int family(trifle__buf *b, sample *v, size_t lo, size_t hi, const char *label_text)
{
    size_t i;
    int counter = 1, collide = hi - lo > 1;
    trifle__buf lb = TRIFLE__BUF_INIT;

    for (i = lo; i < hi; i++) {
        int dup = (i > lo && strcmp(v[i].dotted, v[i - 1].dotted) == 0) ||
                  (i + 1 < hi && strcmp(v[i].dotted, v[i + 1].dotted) == 0);
        counter = counter && v[i].counter;
        trifle__buf_reset(&lb);
        trifle__buf_append(&lb, "", 0);
        trifle__buf_puts(&lb, label_text);
        if (collide) {
            if (label_text[0] != '\0')
                trifle__buf_putc(&lb, ',');
            trifle__buf_puts(&lb, "path=\"");
            trifle__simple_prom_escape(&lb, dup ? v[i].dotted_esc : v[i].dotted, 1);
            trifle__buf_putc(&lb, '"');
        }
        if (trifle__buf_failed(&lb) || (v[i].labels = trifle__strdup(lb.data)) == NULL) {
            trifle__buf_free(&lb);
            return TRIFLE_ENOMEM;
        }
    }
    trifle__buf_free(&lb);
    trifle__buf_printf(b, "# HELP %s ", v[lo].name);
    for (i = lo; i < hi; i++) {
        if (i > lo && strcmp(v[i].dotted, v[i - 1].dotted) == 0)
            continue;
        if (i > lo)
            trifle__buf_puts(b, ", ");
        trifle__simple_prom_escape(b, v[i].dotted, 0);
    }
    trifle__buf_printf(b, "\n# TYPE %s %s\n", v[lo].name, counter ? "counter" : "gauge");
    qsort(v + lo, hi - lo, sizeof(*v), by_labels);
    for (i = lo; i < hi; i++) {
        trifle__buf_puts(b, v[i].name);
        if (v[i].labels[0] != '\0') {
            trifle__buf_putc(b, '{');
            trifle__buf_puts(b, v[i].labels);
            trifle__buf_putc(b, '}');
        }
        trifle__buf_putc(b, ' ');
        trifle__buf_puts(b, v[i].value);
        trifle__buf_putc(b, '\n');
    }
    return 0;
}

int trifle__simple_prometheus(trifle__buf *b, const trifle__snode *root, const char *label_text)
{
    samples s;
    size_t i, j;
    int rc = 0;

    memset(&s, 0, sizeof(s));
    collect(&s, root, 0, 0);
    if (s.failed) {
        rc = TRIFLE_ENOMEM;
        goto done;
    }
    /* type per base name: counter when every sample is a stats counter */
    if (s.n > 0) /* s.v is NULL when nothing was collected */
        qsort(s.v, s.n, sizeof(*s.v), by_base);
    for (i = 0; i < s.n; i = j) {
        int counter = 1;
        for (j = i; j < s.n && strcmp(s.v[j].base, s.v[i].base) == 0; j++)
            counter = counter && s.v[j].counter;
        for (; i < j; i++) {
            trifle__buf nb = TRIFLE__BUF_INIT;
            trifle__buf_puts(&nb, s.v[i].base);
            if (counter)
                trifle__buf_puts(&nb, "_total");
            trifle__buf_append(&nb, "", 0);
            if ((s.v[i].name = trifle__buf_detach(&nb)) == NULL) {
                rc = TRIFLE_ENOMEM;
                goto done;
            }
            if (!counter)
                gauge_suffix(s.v[i].name);
            s.v[i].counter = counter;
        }
    }
    /* families by final name, in byte order */
    if (s.n > 0)
        qsort(s.v, s.n, sizeof(*s.v), by_name_dotted);
    for (i = 0; i < s.n; i = j) {
        for (j = i; j < s.n && strcmp(s.v[j].name, s.v[i].name) == 0; j++)
            ;
        if ((rc = family(b, s.v, i, j, label_text)) != 0)
            goto done;
    }
    if (trifle__buf_failed(b))
        rc = TRIFLE_ENOMEM;
done:
    for (i = 0; i < s.n; i++) {
        trifle__free(s.v[i].base);
        trifle__free(s.v[i].name);
        trifle__free(s.v[i].dotted);
        trifle__free(s.v[i].dotted_esc);
        trifle__free(s.v[i].labels);
    }
    trifle__free(s.v);
    return rc;
}
