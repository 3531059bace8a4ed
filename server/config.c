/* The configuration file of `trifle serve` (SPEC §12, §10.8; ERRATA I8, I12, I18, minor 7, 21).
 *
 * The file is read with the libyaml event parser into a small tree that remembers where every
 * node starts, then walked by hand: each mapping knows its keys, so unknown keys, wrong types and
 * bad values are reported as `<file>:<line>:<column>: <key path>: <message>` and nothing starts.
 * `${NAME}` in a scalar is replaced by the environment variable NAME (unset → error; `$${` is a
 * literal `${`). Relative paths (data_dir, driver_path, sqlite URLs) resolve against the
 * directory of the file. Every SPEC §1 option is a per-source key, validated by
 * trifle_config_set() itself, so the library and the file can never disagree on a rule. */
#include "srv_int.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <yaml.h>

#define YAML_MAX_DEPTH 64
#define CFG_MAX_FILE (4u << 20)

/* ------------------------------------------------------------------------------------------- */
/* The YAML tree                                                                                */

enum { Y_SCALAR, Y_MAP, Y_SEQ };

typedef struct ynode {
    int kind;
    size_t line, col; /* 1-based */
    char *text;       /* scalar text (NUL-terminated; may contain NUL when len says so) */
    size_t len;
    int plain;           /* plain (unquoted) scalar: can be null */
    struct ynode **kids; /* sequence items, or mapping key, value, key, value, ... */
    size_t n, cap;
    struct ynode *next_alloc;
} ynode;

typedef struct anchor {
    char *name;
    ynode *node;
} anchor;

typedef struct cfg_ctx {
    const char *file; /* as given, for messages */
    char *dir;        /* directory of the file, for relative paths */
    ynode *all;       /* every node, for freeing (aliases share nodes) */
    anchor *anchors;
    size_t n_anchors;
    trifle_error *err;
    srv_config *c;
} cfg_ctx;

static ynode *node_new(cfg_ctx *x, int kind, const yaml_mark_t *mark)
{
    ynode *n = calloc(1, sizeof(*n));

    if (n == NULL)
        return NULL;
    n->kind = kind;
    n->line = mark->line + 1;
    n->col = mark->column + 1;
    n->next_alloc = x->all;
    x->all = n;
    return n;
}

static int node_add(ynode *parent, ynode *kid)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        ynode **k = realloc(parent->kids, cap * sizeof(*k));
        if (k == NULL)
            return -1;
        parent->kids = k;
        parent->cap = cap;
    }
    parent->kids[parent->n++] = kid;
    return 0;
}

static void tree_free(cfg_ctx *x)
{
    ynode *n = x->all, *next;
    size_t i;

    for (; n != NULL; n = next) {
        next = n->next_alloc;
        free(n->text);
        free(n->kids);
        free(n);
    }
    x->all = NULL;
    for (i = 0; i < x->n_anchors; i++)
        free(x->anchors[i].name);
    free(x->anchors);
    x->anchors = NULL;
    x->n_anchors = 0;
}

static int anchor_add(cfg_ctx *x, const yaml_char_t *name, ynode *node)
{
    anchor *a;

    if (name == NULL)
        return 0;
    a = realloc(x->anchors, (x->n_anchors + 1) * sizeof(*a));
    if (a == NULL)
        return -1;
    x->anchors = a;
    a[x->n_anchors].name = strdup((const char *)name);
    if (a[x->n_anchors].name == NULL)
        return -1;
    a[x->n_anchors++].node = node;
    return 0;
}

static ynode *anchor_find(cfg_ctx *x, const yaml_char_t *name)
{
    size_t i = x->n_anchors;

    while (i-- > 0)
        if (strcmp(x->anchors[i].name, (const char *)name) == 0)
            return x->anchors[i].node;
    return NULL;
}

/* The key path of the innermost open container, for parse errors: `sources[1].buffer`. */
static void stack_path(char *out, size_t size, ynode *const *stack, size_t depth)
{
    size_t i, len = 0;

    out[0] = '\0';
    for (i = 0; i < depth && len < size; i++) {
        const ynode *c = stack[i];
        /* the innermost entry of c: the open container one level down, or the next entry */
        int inner_open = i + 1 < depth && c->n > 0 && c->kids[c->n - 1] == stack[i + 1];
        int w = 0;
        if (c->kind == Y_MAP && c->n % 2 == 1)
            w = snprintf(out + len, size - len, "%s%s", len ? "." : "", c->kids[c->n - 1]->text);
        else if (c->kind == Y_MAP && inner_open)
            w = snprintf(out + len, size - len, "%s%s", len ? "." : "", c->kids[c->n - 2]->text);
        else if (c->kind == Y_SEQ)
            w = snprintf(out + len, size - len, "[%zu]", inner_open ? c->n - 1 : c->n);
        if (w > 0)
            len += (size_t)w;
    }
    if (out[0] == '\0')
        (void)snprintf(out, size, "(document)");
}

static int parse_tree(cfg_ctx *x, const char *text, size_t len, ynode **root)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    ynode *stack[YAML_MAX_DEPTH];
    size_t depth = 0;
    int rc = 0, done = 0, documents = 0;
    char where[256];

    *root = NULL;
    if (!yaml_parser_initialize(&parser))
        return srv_error(x->err, TRIFLE_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!done) {
        ynode *n = NULL;
        if (!yaml_parser_parse(&parser, &ev)) {
            stack_path(where, sizeof(where), stack, depth);
            rc = srv_error(x->err, TRIFLE_ECONFIG, "%s:%zu:%zu: %s: invalid YAML: %s%s%s", x->file,
                           (size_t)parser.problem_mark.line + 1,
                           (size_t)parser.problem_mark.column + 1, where,
                           parser.problem ? parser.problem : "syntax error",
                           parser.context ? " " : "", parser.context ? parser.context : "");
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++documents > 1)
                rc = srv_error(x->err, TRIFLE_ECONFIG,
                               "%s:%zu:%zu: (document): only one YAML document is allowed", x->file,
                               (size_t)ev.start_mark.line + 1, (size_t)ev.start_mark.column + 1);
            break;
        case YAML_SCALAR_EVENT:
            n = node_new(x, Y_SCALAR, &ev.start_mark);
            if (n == NULL || (n->text = malloc(ev.data.scalar.length + 1)) == NULL) {
                rc = srv_error(x->err, TRIFLE_ENOMEM, "out of memory");
                break;
            }
            memcpy(n->text, ev.data.scalar.value, ev.data.scalar.length);
            n->text[ev.data.scalar.length] = '\0';
            n->len = ev.data.scalar.length;
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            if (anchor_add(x, ev.data.scalar.anchor, n) != 0)
                rc = srv_error(x->err, TRIFLE_ENOMEM, "out of memory");
            break;
        case YAML_ALIAS_EVENT:
            n = anchor_find(x, ev.data.alias.anchor);
            if (n == NULL) {
                stack_path(where, sizeof(where), stack, depth);
                rc = srv_error(x->err, TRIFLE_ECONFIG, "%s:%zu:%zu: %s: unknown alias *%s", x->file,
                               (size_t)ev.start_mark.line + 1, (size_t)ev.start_mark.column + 1,
                               where, (const char *)ev.data.alias.anchor);
            }
            break;
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (depth == YAML_MAX_DEPTH) {
                stack_path(where, sizeof(where), stack, depth);
                rc = srv_error(x->err, TRIFLE_ECONFIG, "%s:%zu:%zu: %s: nested too deeply", x->file,
                               (size_t)ev.start_mark.line + 1, (size_t)ev.start_mark.column + 1,
                               where);
                break;
            }
            n = node_new(x, ev.type == YAML_MAPPING_START_EVENT ? Y_MAP : Y_SEQ, &ev.start_mark);
            if (n == NULL ||
                anchor_add(x,
                           ev.type == YAML_MAPPING_START_EVENT ? ev.data.mapping_start.anchor
                                                               : ev.data.sequence_start.anchor,
                           n) != 0)
                rc = srv_error(x->err, TRIFLE_ENOMEM, "out of memory");
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            if (depth > 0) /* libyaml balances its events; never below the root */
                depth--;
            break;
        default:
            break;
        }
        if (rc == 0 && n != NULL) {
            /* attach the new node to its container (or make it the root) */
            if (depth == 0) {
                *root = n;
            } else if (node_add(stack[depth - 1], n) != 0) {
                rc = srv_error(x->err, TRIFLE_ENOMEM, "out of memory");
            } else if (stack[depth - 1]->kind == Y_MAP && stack[depth - 1]->n % 2 == 1 &&
                       n->kind != Y_SCALAR) {
                rc = srv_error(x->err, TRIFLE_ECONFIG,
                               "%s:%zu:%zu: (document): mapping keys must be scalars", x->file,
                               n->line, n->col);
            }
            if (rc == 0 &&
                (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT))
                stack[depth++] = n;
        }
        yaml_event_delete(&ev);
        if (rc != 0)
            break;
    }
    yaml_parser_delete(&parser);
    return rc;
}

/* ------------------------------------------------------------------------------------------- */
/* Reporting                                                                                    */

static int fail(cfg_ctx *x, const ynode *n, const char *path, const char *fmt, ...)
    TRIFLE_PRINTF(4, 5);

static int fail(cfg_ctx *x, const ynode *n, const char *path, const char *fmt, ...)
{
    char msg[768];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return srv_error(x->err, TRIFLE_ECONFIG, "%s:%zu:%zu: %s: %s", x->file, n ? n->line : 1,
                     n ? n->col : 1, path, msg);
}
#ifdef __clang_analyzer__
/* The analyser does not follow variadic functions: spelled out, fail() visibly fails. */
#define fail(x, n, path, ...) (fail((x), (n), (path), __VA_ARGS__), TRIFLE_ECONFIG)
#endif

/* `<parent>.<key>` or `<parent>[<i>]` into a path buffer. */
static void path_key(char *out, size_t size, const char *parent, const char *key)
{
    int n = parent[0] == '\0' ? snprintf(out, size, "%s", key)
                              : snprintf(out, size, "%s.%s", parent, key);

    if (n < 0 || (size_t)n >= size)
        out[size - 1] = '\0'; /* a cut path still names the place */
}

static void path_index(char *out, size_t size, const char *parent, size_t i)
{
    int n = snprintf(out, size, "%s[%zu]", parent, i);

    if (n < 0 || (size_t)n >= size)
        out[size - 1] = '\0';
}

static int is_null(const ynode *n)
{
    return n->kind == Y_SCALAR && n->plain &&
           (n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
            strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0);
}

static const char *kind_name(const ynode *n)
{
    return n->kind == Y_MAP ? "a mapping" : n->kind == Y_SEQ ? "a sequence" : "a scalar";
}

/* ------------------------------------------------------------------------------------------- */
/* Scalars                                                                                      */

/* The scalar's text with ${NAME} replaced (ERRATA minor 21). The caller frees *out. */
static int get_text(cfg_ctx *x, const ynode *n, const char *path, char **out)
{
    const char *s;
    char *r = NULL;
    size_t len = 0, cap;

    *out = NULL;
    if (n->kind != Y_SCALAR)
        return fail(x, n, path, "expected a scalar, got %s", kind_name(n));
    if (is_null(n))
        return fail(x, n, path, "a value is required (remove the key for its default)");
    if (memchr(n->text, '\0', n->len) != NULL)
        return fail(x, n, path, "NUL bytes are not allowed");
    cap = n->len + 1;
    if ((r = malloc(cap)) == NULL)
        return srv_error(x->err, TRIFLE_ENOMEM, "out of memory");
    for (s = n->text; *s != '\0';) {
        const char *piece = s, *value;
        size_t pn = 1;
        if (s[0] == '$' && s[1] == '$' && s[2] == '{') {
            piece = "${";
            pn = 2;
            s += 3;
        } else if (s[0] == '$' && s[1] == '{') {
            const char *close = strchr(s + 2, '}');
            char name[256];
            size_t nn, i;
            if (close == NULL) {
                free(r);
                return fail(x, n, path, "unterminated ${ in \"%s\" (write $${ for a literal ${)",
                            n->text);
            }
            nn = (size_t)(close - (s + 2));
            if (nn == 0 || nn >= sizeof(name) || !(isalpha((unsigned char)s[2]) || s[2] == '_')) {
                free(r);
                return fail(x, n, path, "invalid environment variable reference \"%.*s\"",
                            (int)(close - s + 1), s);
            }
            for (i = 0; i < nn; i++) {
                char ch = s[2 + i];
                if (!(isalnum((unsigned char)ch) || ch == '_')) {
                    free(r);
                    return fail(x, n, path, "invalid environment variable reference \"%.*s\"",
                                (int)(close - s + 1), s);
                }
                name[i] = ch;
            }
            name[nn] = '\0';
            value = getenv(name);
            if (value == NULL) {
                free(r);
                return fail(x, n, path, "environment variable %s is not set", name);
            }
            piece = value;
            pn = strlen(value);
            s = close + 1;
        } else {
            s++;
        }
        if (len + pn + 1 > cap) {
            char *bigger;
            while (len + pn + 1 > cap)
                cap *= 2;
            if ((bigger = realloc(r, cap)) == NULL) {
                free(r);
                return srv_error(x->err, TRIFLE_ENOMEM, "out of memory");
            }
            r = bigger;
        }
        memcpy(r + len, piece, pn);
        len += pn;
    }
    r[len] = '\0';
    *out = r;
    return 0;
}

/* A string; @p nonempty rejects "". */
static int get_string(cfg_ctx *x, const ynode *n, const char *path, int nonempty, char **out)
{
    int rc = get_text(x, n, path, out);

    if (rc == 0 && nonempty && (*out)[0] == '\0') {
        free(*out);
        *out = NULL;
        return fail(x, n, path, "must not be empty");
    }
    return rc;
}

/* Booleans as SPEC §1 parses them from text: true/false/1/0/yes/no/on/off. */
static int get_bool(cfg_ctx *x, const ynode *n, const char *path, const char *msgfmt, int *out)
{
    char *t = NULL;
    int rc = get_text(x, n, path, &t);

    if (rc != 0)
        return rc;
    if (trifle_parse_bool(out, t) != 0)
        rc = fail(x, n, path, msgfmt, t);
    free(t);
    return rc;
}

/* A decimal integer in [lo, hi]; any other text gives @p msgfmt (`invalid option threads: %s`). */
static int get_int(cfg_ctx *x, const ynode *n, const char *path, int64_t lo, int64_t hi,
                   const char *msgfmt, int64_t *out)
{
    char *t = NULL, *end = NULL;
    long long v;
    int rc = get_text(x, n, path, &t);

    if (rc != 0)
        return rc;
    errno = 0;
    v = strtoll(t, &end, 10);
    if (t[0] == '\0' || isspace((unsigned char)t[0]) || *end != '\0' || errno != 0 || v < lo ||
        v > hi)
        rc = fail(x, n, path, msgfmt, t);
    else
        *out = v;
    free(t);
    return rc;
}

/* ------------------------------------------------------------------------------------------- */
/* Mappings                                                                                     */

typedef int (*key_fn)(cfg_ctx *x, const char *key, const ynode *keynode, const ynode *value,
                      const char *path, void *payload);

/* Walk a mapping: duplicate keys are errors; @p fn handles each key (and reports unknown ones). */
static int map_each(cfg_ctx *x, const ynode *m, const char *path, key_fn fn, void *payload)
{
    size_t i, j;
    char sub[512];
    int rc;

    if (m->kind != Y_MAP)
        return fail(x, m, path[0] ? path : "(document)", "expected a mapping, got %s",
                    kind_name(m));
    /* duplicates first, so a repeated key is reported before either value is judged */
    for (i = 0; i + 1 < m->n; i += 2) {
        const ynode *k = m->kids[i];
        for (j = 0; j < i; j += 2) {
            if (strcmp(m->kids[j]->text, k->text) == 0) {
                path_key(sub, sizeof(sub), path, k->text);
                return fail(x, k, sub, "duplicate key (first at line %zu)", m->kids[j]->line);
            }
        }
    }
    for (i = 0; i + 1 < m->n; i += 2) {
        const ynode *k = m->kids[i];
        path_key(sub, sizeof(sub), path, k->text);
        if ((rc = fn(x, k->text, k, m->kids[i + 1], sub, payload)) != 0)
            return rc;
    }
    return 0;
}

static int unknown_key(cfg_ctx *x, const ynode *keynode, const char *path)
{
    return fail(x, keynode, path, "unknown configuration key %s", path);
}

/* A zeroed array for the items of sequence @p n and one more (so it is never empty); NULL with
 * *rc after reporting that @p n is not a sequence, or that memory ran out. */
static void *seq_array(cfg_ctx *x, const ynode *n, const char *path, size_t size, int *rc)
{
    void *a;

    if (n->kind != Y_SEQ) {
        *rc = fail(x, n, path, "expected a sequence, got %s", kind_name(n));
        return NULL;
    }
    if ((a = calloc(n->n + 1, size)) == NULL)
        *rc = srv_error(x->err, TRIFLE_ENOMEM, "out of memory");
    return a;
}

/* Whether @p key is one of the NULL-terminated @p keys. */
static int listed(const char *const *keys, const char *key)
{
    for (; *keys != NULL; keys++)
        if (strcmp(*keys, key) == 0)
            return 1;
    return 0;
}

/* A non-empty string into *slot, replacing what it held. */
static int set_string(cfg_ctx *x, const ynode *v, const char *path, char **slot)
{
    free(*slot);
    *slot = NULL;
    return get_string(x, v, path, 1, slot);
}

/* ------------------------------------------------------------------------------------------- */
/* Paths                                                                                        */

/* @p p made absolute against the configuration file's directory (absolute paths unchanged). */
static char *resolve_path(cfg_ctx *x, const char *p)
{
    size_t a, b;
    char *r;

    if (p[0] == '/' || x->dir == NULL)
        return strdup(p);
    a = strlen(x->dir);
    b = strlen(p);
    if ((r = malloc(a + b + 2)) == NULL)
        return NULL;
    memcpy(r, x->dir, a);
    r[a] = '/';
    memcpy(r + a + 1, p, b + 1);
    return r;
}

/* Collapse `//`, `/./`, `dir/..` and a trailing `/` of @p p in place, without looking at the file
 * system (`..` at the root stays at the root; a leading `..` of a relative path stays). */
static void normalize_path(char *p)
{
    char *out = p, *seg = p;
    int absolute = p[0] == '/';
    size_t kept = 0; /* segments written that a `..` may remove */

    if (absolute)
        out = p + 1; /* the root's '/' stays */
    /* out never passes seg: a separator is written only where at least one '/' was read */
    while (*seg != '\0') {
        size_t n;
        int dotdot;
        while (*seg == '/')
            seg++;
        if (*seg == '\0')
            break;
        n = strcspn(seg, "/");
        dotdot = n == 2 && seg[0] == '.' && seg[1] == '.';
        if (n == 1 && seg[0] == '.') {
            /* nothing */
        } else if (dotdot && (kept > 0 || absolute)) {
            if (kept > 0) {
                while (out > p + absolute && out[-1] != '/')
                    out--;
                if (out > p + absolute)
                    out--; /* the separator before the removed segment */
                kept--;
            }
        } else {
            if (out > p + absolute)
                *out++ = '/';
            memmove(out, seg, n);
            out += n;
            if (!dotdot)
                kept++;
        }
        seg += n;
    }
    if (out == p)
        *out++ = '.';
    *out = '\0';
}

/* A driver URL with a relative sqlite path resolved (SPEC §12), and the database file it names
 * (NULL for `:memory:` and other drivers). */
static int resolve_driver(cfg_ctx *x, const char *url, char **out, char **file)
{
    const char *path, *q;
    char *resolved = NULL, *db = NULL;
    size_t plen;

    *out = NULL;
    *file = NULL;
    if (strncmp(url, "sqlite:", 7) != 0) {
        *out = strdup(url);
        return *out == NULL ? TRIFLE_ENOMEM : 0;
    }
    path = url + 7;
    if (strncmp(path, "///", 3) == 0)
        path += 2;
    q = strchr(path, '?');
    plen = q != NULL ? (size_t)(q - path) : strlen(path);
    if (plen == 0 || (plen == 8 && strncmp(path, ":memory:", 8) == 0) ||
        strncmp(url + 7, "//", 2) == 0) {
        /* nothing to resolve; the driver reports malformed URLs itself */
        *out = strdup(url);
        return *out == NULL ? TRIFLE_ENOMEM : 0;
    }
    if ((db = malloc(plen + 1)) == NULL)
        return TRIFLE_ENOMEM;
    memcpy(db, path, plen);
    db[plen] = '\0';
    if (db[0] != '/' && x->dir != NULL) {
        char *abs = resolve_path(x, db);
        free(db);
        if ((db = abs) == NULL)
            return TRIFLE_ENOMEM;
    }
    plen = strlen(db);
    resolved = malloc(7 + plen + (q != NULL ? strlen(q) : 0) + 1);
    if (resolved == NULL) {
        free(db);
        return TRIFLE_ENOMEM;
    }
    memcpy(resolved, "sqlite:", 7);
    memcpy(resolved + 7, db, plen + 1);
    if (q != NULL)
        memcpy(resolved + 7 + plen, q, strlen(q) + 1); /* the room was counted above */
    *out = resolved;
    *file = db;
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Listen addresses                                                                             */

int srv_listen_parse(srv_listen_addr *out, const char *text, const char **reason)
{
    const char *colon, *port;
    size_t hn;

    memset(out, 0, sizeof(*out));
    *reason = NULL;
    if (strncmp(text, "unix:", 5) == 0) {
        size_t n = strlen(text + 5);
        if (n == 0 || n >= sizeof(out->path)) {
            *reason = "unix socket path must be 1 to 107 bytes";
            return -1;
        }
        out->is_unix = 1;
        memcpy(out->path, text + 5, n + 1);
        return 0;
    }
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':') {
            *reason = "expected [address]:port";
            return -1;
        }
        hn = (size_t)(close - text - 1);
        if (hn == 0 || hn >= sizeof(out->host)) {
            *reason = "bad IPv6 address";
            return -1;
        }
        memcpy(out->host, text + 1, hn);
        port = close + 2;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL) {
            *reason = "expected host:port";
            return -1;
        }
        hn = (size_t)(colon - text);
        if (hn == 0 || hn >= sizeof(out->host) || memchr(text, ':', hn) != NULL) {
            *reason = hn == 0 ? "missing host" : "write IPv6 addresses as [address]:port";
            return -1;
        }
        memcpy(out->host, text, hn);
        port = colon + 1;
    }
    {
        size_t pn = strlen(port), i;
        long v = 0;
        if (pn == 0 || pn > 5) {
            *reason = "port must be 0 to 65535";
            return -1;
        }
        for (i = 0; i < pn; i++) {
            if (!isdigit((unsigned char)port[i])) {
                *reason = "port must be 0 to 65535";
                return -1;
            }
            v = v * 10 + (port[i] - '0');
        }
        if (v > 65535) {
            *reason = "port must be 0 to 65535";
            return -1;
        }
        memcpy(out->port, port, pn + 1);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Sections                                                                                     */

/* An integer option of a section: its range, its default and its member of srv_config. */
typedef struct int_option {
    const char *key;
    int64_t lo, hi, dflt;
    size_t offset; /* of the member */
    int type;      /* INT_MEMBER, SIZE_MEMBER or I64_MEMBER: the member's type */
} int_option;

enum { INT_MEMBER, SIZE_MEMBER, I64_MEMBER };

#define MEMBER(m, type) offsetof(srv_config, m), type

/* http: (threads' default is the number of CPUs, set_defaults()) */
static const int_option http_ints[] = {
    {"threads", 1, 256, 1, MEMBER(threads, INT_MEMBER)},
    {"read_timeout_ms", 1, 3600000, 10000, MEMBER(read_timeout_ms, INT_MEMBER)},
    {"write_timeout_ms", 1, 3600000, 10000, MEMBER(write_timeout_ms, INT_MEMBER)},
    {"idle_timeout_s", 1, 86400, 0, MEMBER(idle_timeout_s, INT_MEMBER)},
    {"shutdown_timeout_ms", 0, 3600000, 10000, MEMBER(shutdown_timeout_ms, INT_MEMBER)},
    {NULL, 0, 0, 0, 0, 0}};

static const int_option limits_ints[] = {
    {"max_body_bytes", 1, (int64_t)1 << 30, 1048576, MEMBER(max_body_bytes, SIZE_MEMBER)},
    {"max_points", 1, 10000000, 100000, MEMBER(max_points, SIZE_MEMBER)},
    {"max_connections", 1, 65536, 256, MEMBER(max_connections, SIZE_MEMBER)},
    {"max_list_entries", 1, 1000000, 10000, MEMBER(max_list_entries, SIZE_MEMBER)},
    {NULL, 0, 0, 0, 0, 0}};

/* monitors: (issue 15) */
static const int_option monitors_ints[] = {
    {"webhook_timeout_ms", 100, 600000, 5000, MEMBER(webhook_timeout_ms, INT_MEMBER)},
    {"webhook_retries", 0, 100, 5, MEMBER(webhook_retries, INT_MEMBER)},
    {"webhook_backoff_ms", 1, 3600000, 1000, MEMBER(webhook_backoff_ms, INT_MEMBER)},
    {"tick_ms", 10, 60000, 1000, MEMBER(monitors_tick_ms, INT_MEMBER)},
    {NULL, 0, 0, 0, 0, 0}};

/* idempotency: (docs/http-api.md, "Idempotency-Key") */
static const int_option idempotency_ints[] = {
    {"window_s", 1, (int64_t)366 * 86400, 86400, MEMBER(idempotency_window_s, I64_MEMBER)},
    {NULL, 0, 0, 0, 0, 0}};

static const int_option *const all_ints[] = {http_ints, limits_ints, monitors_ints,
                                             idempotency_ints};

static void int_store(srv_config *c, const int_option *o, int64_t v)
{
    char *member = (char *)c + o->offset;

    if (o->type == INT_MEMBER)
        *(int *)(void *)member = (int)v;
    else if (o->type == SIZE_MEMBER)
        *(size_t *)(void *)member = (size_t)v;
    else
        *(int64_t *)(void *)member = v;
}

/* Key @p key of a section whose integer options are @p opts: set it, or report it unknown. */
static int int_key(cfg_ctx *x, const int_option *opts, const char *key, const ynode *kn,
                   const ynode *v, const char *path)
{
    char fmt[96];
    int64_t i = 0;
    int rc;

    for (; opts->key != NULL; opts++) {
        if (strcmp(opts->key, key) != 0)
            continue;
        (void)snprintf(fmt, sizeof(fmt), "invalid option %s: %%s", key);
        rc = get_int(x, v, path, opts->lo, opts->hi, fmt, &i);
        int_store(x->c, opts, i);
        return rc;
    }
    return unknown_key(x, kn, path);
}

static int http_key(cfg_ctx *x, const char *key, const ynode *kn, const ynode *v, const char *path,
                    void *payload)
{
    srv_config *c = x->c;
    int rc;

    (void)payload;
    if (strcmp(key, "listen") == 0) {
        srv_listen_addr a;
        const char *reason;
        char *s = NULL;
        if ((rc = get_string(x, v, path, 1, &s)) != 0)
            return rc;
        if (srv_listen_parse(&a, s, &reason) != 0) {
            rc = fail(x, v, path, "invalid listen address \"%s\": %s", s, reason);
            free(s);
            return rc;
        }
        free(c->listen);
        c->listen = s;
        c->listen_line = v->line;
        c->listen_col = v->col;
        return 0;
    }
    return int_key(x, http_ints, key, kn, v, path);
}

static int limits_key(cfg_ctx *x, const char *key, const ynode *kn, const ynode *v,
                      const char *path, void *payload)
{
    (void)payload;
    return int_key(x, limits_ints, key, kn, v, path);
}

static int idempotency_key(cfg_ctx *x, const char *key, const ynode *kn, const ynode *v,
                           const char *path, void *payload)
{
    (void)payload;
    return int_key(x, idempotency_ints, key, kn, v, path);
}

static int node_key(cfg_ctx *x, const char *key, const ynode *kn, const ynode *v, const char *path,
                    void *payload)
{
    (void)payload;
    if (strcmp(key, "id") == 0)
        return set_string(x, v, path, &x->c->node_id);
    if (strcmp(key, "name") == 0)
        return set_string(x, v, path, &x->c->node_name);
    return unknown_key(x, kn, path);
}

static int lib_fail(cfg_ctx *x, const ynode *n, const char *path, int rc, const trifle_error *e);

/* Prometheus labels as configured, in file order; `~` becomes "" which removes a default label.
 * The Simple Stats module merges them with its defaults (ERRATA minor 7: they extend them). */
static int label_add(srv_config *c, const char *name, const char *value)
{
    srv_label *l = realloc(c->labels, (c->n_labels + 1) * sizeof(*l));

    if (l == NULL)
        return TRIFLE_ENOMEM;
    c->labels = l;
    l[c->n_labels].name = strdup(name);
    l[c->n_labels].value = strdup(value != NULL ? value : "");
    if (l[c->n_labels].name == NULL || l[c->n_labels].value == NULL) {
        free(l[c->n_labels].name);
        free(l[c->n_labels].value);
        return TRIFLE_ENOMEM;
    }
    c->n_labels++;
    return 0;
}

static int label_name_ok(const char *s)
{
    size_t i;

    /* `path` is the label the renderer adds to tell colliding names apart */
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_') || strncmp(s, "__", 2) == 0 ||
        strcmp(s, "path") == 0)
        return 0;
    for (i = 1; s[i] != '\0'; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return 0;
    return 1;
}

static int labels_key(cfg_ctx *x, const char *key, const ynode *kn, const ynode *v,
                      const char *path, void *payload)
{
    char *value = NULL;
    int rc;

    (void)payload;
    if (!label_name_ok(key))
        return fail(x, kn, path, "invalid stats option prometheus_labels: %s", key);
    if (!is_null(v) && (rc = get_string(x, v, path, 0, &value)) != 0)
        return rc;
    if (value != NULL && !tu_utf8_valid(value, strlen(value))) {
        free(value);
        return fail(x, v, path, "invalid stats option prometheus_labels: not UTF-8");
    }
    rc = label_add(x->c, key, value);
    free(value);
    return rc == 0 ? 0 : srv_error(x->err, rc, "out of memory");
}

static const char *const stats_keys[] = {
    "enabled", "persist",     "no_buffer",         "include_storage_stats_in_api",
    "public",  "buffer_size", "flush_interval_ms", "checkpoint_interval_ms",
    NULL};

/* `stats:` (SPEC §10.8): the module's keys are validated by its own option parser; the server's
 * (which stats /stats shows, and to whom) are kept here. */
static int stats_key(cfg_ctx *x, const char *key, const ynode *kn, const ynode *v, const char *path,
                     void *payload)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    char *text = NULL;
    int rc;

    (void)payload;
    if (strcmp(key, "prometheus_labels") == 0) {
        if (is_null(v))
            return 0;
        return map_each(x, v, path, labels_key, NULL);
    }
    if (!listed(stats_keys, key))
        return unknown_key(x, kn, path);
    if ((rc = get_text(x, v, path, &text)) != 0)
        return rc;
    if (strcmp(key, "include_storage_stats_in_api") == 0 || strcmp(key, "public") == 0) {
        int b;
        if (trifle_parse_bool(&b, text) != 0)
            rc = fail(x, v, path, "invalid stats option %s: %s", key, text);
        else if (strcmp(key, "public") == 0)
            x->c->stats_public = b;
        else
            x->c->stats_storage = b;
        free(text);
        return rc;
    }
    rc = trifle_simple_options_set(&x->c->stats, key, text, &e);
    free(text);
    return rc == 0 ? 0 : lib_fail(x, v, path, rc, &e);
}

/* --- sources ---------------------------------------------------------------------------------- */

typedef struct source_ctx {
    srv_source_config *s;
    const ynode *driver; /* the driver node */
    int has_max_points;
    int journal;               /* buffer.journal: -1 unset (on where there is a buffer), 0, 1 */
    const ynode *journal_node; /* where buffer.journal was set */
} source_ctx;

/* Report a library validation error for @p path. */
static int lib_fail(cfg_ctx *x, const ynode *n, const char *path, int rc, const trifle_error *e)
{
    if (rc == TRIFLE_ENOMEM)
        return srv_error(x->err, rc, "out of memory");
    return fail(x, n, path, "%s", e->message);
}

/* Option @p name of @p lib from the scalar @p v (trifle_config_set()); the library's message,
 * followed by ` (<hint>)` when @p hint is given and the value is refused. */
static int lib_option(cfg_ctx *x, trifle_config *lib, const char *name, const ynode *v,
                      const char *path, const char *hint)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    char *text = NULL;
    int rc;

    if ((rc = get_text(x, v, path, &text)) != 0)
        return rc;
    rc = trifle_config_set(lib, name, text, &e);
    free(text);
    if (rc == TRIFLE_ECONFIG && hint != NULL)
        return fail(x, v, path, "%s (%s)", e.message, hint);
    return rc == 0 ? 0 : lib_fail(x, v, path, rc, &e);
}

static const char *const buffer_keys[] = {"enabled",
                                          "duration_ms",
                                          "size",
                                          "aggregate",
                                          "async",
                                          "max_pending",
                                          "full_policy",
                                          "block_timeout_ms",
                                          "retry_initial_ms",
                                          "retry_max_ms",
                                          "close_timeout_ms",
                                          "batch_items",
                                          "journal_sync",
                                          "journal_segment_bytes",
                                          NULL};

static int buffer_key(cfg_ctx *x, const char *key, const ynode *kn, const ynode *v,
                      const char *path, void *payload)
{
    source_ctx *sc = payload;
    char name[64], *text = NULL;
    int rc;

    if (strcmp(key, "journal") == 0) {
        /* the server's own key: a boolean, or the directory that replaces the default one */
        int on;
        if ((rc = get_text(x, v, path, &text)) != 0)
            return rc;
        free(sc->s->journal_dir);
        sc->s->journal_dir = NULL;
        if (text[0] == '\0') {
            rc = fail(x, v, path, "invalid option journal: empty (true, false or a directory)");
        } else if (trifle_parse_bool(&on, text) == 0) {
            sc->journal = on;
        } else {
            sc->journal = 1;
            if ((sc->s->journal_dir = resolve_path(x, text)) == NULL)
                rc = srv_error(x->err, TRIFLE_ENOMEM, "out of memory");
            else
                normalize_path(sc->s->journal_dir);
        }
        sc->journal_node = v;
        free(text);
        return rc;
    }
    if (!listed(buffer_keys, key))
        return unknown_key(x, kn, path);
    (void)snprintf(name, sizeof(name), "buffer.%s", key);
    return lib_option(x, sc->s->lib, name, v, path,
                      strcmp(key, "journal_sync") == 0
                          ? "expected always, none or interval:<ms> with 1..60000 ms"
                          : NULL);
}

static int source_id_ok(const char *id)
{
    size_t i, n = strlen(id);

    if (n == 0 || n > 64 || !isalnum((unsigned char)id[0]))
        return 0;
    for (i = 1; i < n; i++)
        if (!(isalnum((unsigned char)id[i]) || id[i] == '.' || id[i] == '_' || id[i] == '-'))
            return 0;
    return 1;
}

/* Library options a source block passes to trifle_config_set() under the same name. */
static const char *const library_keys[] = {
    "time_zone",       "week_start",  "joined",     "separator",
    "system_tracking", "connections", "max_points", NULL};

static int source_key(cfg_ctx *x, const char *key, const ynode *kn, const ynode *v,
                      const char *path, void *payload)
{
    source_ctx *sc = payload;
    srv_source_config *s = sc->s;
    trifle_error e = TRIFLE_ERROR_INIT;
    char *text = NULL;
    int rc;

    if (strcmp(key, "id") == 0) {
        if ((rc = set_string(x, v, path, &s->id)) != 0)
            return rc;
        if (!source_id_ok(s->id))
            return fail(x, v, path, "invalid source id \"%s\" (expected %s)", s->id,
                        "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$");
        return 0;
    }
    if (strcmp(key, "name") == 0 || strcmp(key, "default_timeframe") == 0 ||
        strcmp(key, "default_granularity") == 0) {
        char **slot = key[0] == 'n'                           ? &s->name
                      : strcmp(key, "default_timeframe") == 0 ? &s->default_timeframe
                                                              : &s->default_granularity;
        return set_string(x, v, path, slot);
    }
    if (strcmp(key, "driver") == 0) {
        char *file = NULL, *url = NULL;
        if ((rc = get_string(x, v, path, 1, &text)) != 0)
            return rc;
        rc = resolve_driver(x, text, &url, &file);
        free(text);
        if (rc != 0)
            return srv_error(x->err, rc, "out of memory");
        free(s->driver);
        free(s->sqlite_file);
        s->driver = url;
        s->sqlite_file = file;
        sc->driver = v;
        rc = trifle_config_set(s->lib, "driver", url, &e);
        return rc == 0 ? 0 : lib_fail(x, v, path, rc, &e);
    }
    if (strcmp(key, "read_only") == 0)
        return get_bool(x, v, path, "invalid option read_only: %s", &s->read_only);
    if (strcmp(key, "setup") == 0)
        return get_bool(x, v, path, "invalid option setup: %s", &s->setup);
    if (strcmp(key, "buffer") == 0)
        return map_each(x, v, path, buffer_key, sc);
    if (strcmp(key, "granularities") == 0) {
        char **list = NULL;
        char parent[512];
        size_t n;
        trifle_granularity g;
        if (v->kind == Y_SCALAR) /* a comma-separated list, as the CLI takes it */
            return lib_option(x, s->lib, "granularities", v, path, NULL);
        if ((list = seq_array(x, v, path, sizeof(*list), &rc)) == NULL)
            return rc;
        /* the key path of the message is the source: the library text names the entry
         * (`sources[0]: invalid granularity "5x" in granularities[2]`, SPEC §12) */
        (void)snprintf(parent, sizeof(parent), "%.*s",
                       (int)(strlen(path) - strlen(".granularities")), path);
        rc = 0;
        for (n = 0; n < v->n && rc == 0; n++) {
            char item[512];
            path_index(item, sizeof(item), path, n);
            rc = get_text(x, v->kids[n], item, &list[n]);
            if (rc == 0 && trifle_granularity_parse(&g, list[n], NULL) != 0)
                rc = fail(x, v->kids[n], parent, "invalid granularity \"%s\" in granularities[%zu]",
                          list[n], n);
        }
        if (rc == 0) {
            rc = trifle_config_set_granularities(s->lib, (const char *const *)list, v->n, &e);
            if (rc != 0)
                rc = lib_fail(x, v, parent, rc, &e);
        }
        for (n = 0; n < v->n; n++)
            free(list[n]);
        free(list);
        return rc;
    }
    if (!listed(library_keys, key))
        return unknown_key(x, kn, path);
    if ((rc = lib_option(x, s->lib, key, v, path, NULL)) == 0 && strcmp(key, "max_points") == 0)
        sc->has_max_points = 1;
    return rc;
}

/* `<data_dir>/journal/<id>`: source ids are safe path components (source_id_ok: no `/`, no
 * leading `.`), so each source has its own directory and no id can name another's. */
static char *default_journal_dir(const char *data_dir, const char *id)
{
    size_t a = strlen(data_dir), b = strlen(id);
    char *d = malloc(a + sizeof("/journal/") + b);

    if (d != NULL)
        (void)snprintf(d, a + sizeof("/journal/") + b, "%s/journal/%s", data_dir, id);
    return d;
}

/* The write-ahead journal of a source (docs/configuration.md, docs/durability.md): on by default
 * wherever writes are buffered, because a buffered 201 is otherwise lost with the process; a
 * source without a buffer writes through to the store before its 201 and needs none. */
static int source_journal(cfg_ctx *x, source_ctx *sc, const ynode *n, const char *path,
                          const char *data_dir)
{
    srv_source_config *s = sc->s;
    trifle_error e = TRIFLE_ERROR_INIT;
    const char *enabled = trifle_config_get(s->lib, "buffer.enabled");
    int buffered = enabled != NULL && strcmp(enabled, "true") == 0, rc;
    char where[512];

    if (sc->journal == 0 || (sc->journal < 0 && !buffered)) {
        free(s->journal_dir);
        s->journal_dir = NULL;
        return 0;
    }
    if (!buffered) {
        path_key(where, sizeof(where), path, "buffer.journal");
        return fail(x, sc->journal_node != NULL ? sc->journal_node : n, where,
                    "a journal needs the buffer (buffer.enabled is false)");
    }
    if (s->journal_dir == NULL && (s->journal_dir = default_journal_dir(data_dir, s->id)) == NULL)
        return srv_error(x->err, TRIFLE_ENOMEM, "out of memory");
    if ((rc = trifle_config_set(s->lib, "buffer.journal", s->journal_dir, &e)) != 0)
        return lib_fail(x, sc->journal_node != NULL ? sc->journal_node : n, path, rc, &e);
    return 0;
}

static int load_source(cfg_ctx *x, const ynode *n, const char *path, srv_source_config *s)
{
    source_ctx sc = {s, NULL, 0, -1, NULL};
    trifle_error e = TRIFLE_ERROR_INIT;
    char num[32];
    size_t i;
    int rc, found;

    s->setup = -1;
    if ((rc = trifle_config_new(&s->lib, &e)) != 0)
        return srv_error(x->err, rc, "out of memory");
    if (x->c->driver_path != NULL &&
        (rc = trifle_config_set(s->lib, "driver_path", x->c->driver_path, &e)) != 0)
        return lib_fail(x, n, path, rc, &e);
    if ((rc = map_each(x, n, path, source_key, &sc)) != 0)
        return rc;
    if (s->id == NULL)
        return fail(x, n, path, "id required");
    if (s->driver == NULL)
        return fail(x, n, path, "driver required");
    (void)snprintf(s->where, sizeof(s->where), "%zu:%zu", sc.driver->line, sc.driver->col);
    if (!sc.has_max_points) {
        /* ERRATA I8: a source's max_points defaults to limits.max_points */
        (void)snprintf(num, sizeof(num), "%zu", x->c->max_points);
        if ((rc = trifle_config_set(s->lib, "max_points", num, &e)) != 0)
            return lib_fail(x, n, path, rc, &e);
    }
    if ((rc = source_journal(x, &sc, n, path, x->c->data_dir)) != 0)
        return rc;
    if (s->name == NULL && (s->name = strdup(s->id)) == NULL)
        return srv_error(x->err, TRIFLE_ENOMEM, "out of memory");
    if (s->default_timeframe == NULL && (s->default_timeframe = strdup("24h")) == NULL)
        return srv_error(x->err, TRIFLE_ENOMEM, "out of memory");
    if (s->setup < 0)
        s->setup = !s->read_only; /* ERRATA minor 21 */
    if (s->default_granularity != NULL) {
        found = 0;
        for (i = 0; i < trifle_config_granularity_count(s->lib); i++)
            if (strcmp(trifle_config_granularity(s->lib, i), s->default_granularity) == 0)
                found = 1;
        if (!found) {
            const ynode *where = n;
            size_t k;
            for (k = 0; k + 1 < n->n; k += 2)
                if (strcmp(n->kids[k]->text, "default_granularity") == 0)
                    where = n->kids[k + 1];
            return fail(x, where, path, "default_granularity %s is not one of granularities (%s)",
                        s->default_granularity, trifle_config_get(s->lib, "granularities"));
        }
    }
    return 0;
}

static int load_sources(cfg_ctx *x, const ynode *n)
{
    srv_config *c = x->c;
    char path[64];
    size_t i, j;
    int rc;

    if (n == NULL || is_null(n) || (n->kind == Y_SEQ && n->n == 0))
        return fail(x, n, "sources", "sources must not be empty");
    if ((c->sources = seq_array(x, n, "sources", sizeof(*c->sources), &rc)) == NULL)
        return rc;
    for (i = 0; i < n->n; i++) {
        path_index(path, sizeof(path), "sources", i);
        c->n_sources = i + 1;
        if ((rc = load_source(x, n->kids[i], path, &c->sources[i])) != 0)
            return rc;
        for (j = 0; j < i; j++) {
            if (strcmp(c->sources[j].id, c->sources[i].id) == 0)
                return fail(x, n->kids[i], path, "duplicate source id %s (also sources[%zu])",
                            c->sources[i].id, j);
            /* a journal belongs to one source (the library locks it, but later and without
             * the line) */
            if (c->sources[i].journal_dir != NULL && c->sources[j].journal_dir != NULL &&
                strcmp(c->sources[j].journal_dir, c->sources[i].journal_dir) == 0)
                return fail(x, n->kids[i], path, "journal %s is also the journal of sources[%zu]",
                            c->sources[i].journal_dir, j);
        }
    }
    return 0;
}

/* --- tokens ----------------------------------------------------------------------------------- */

typedef struct grant_ctx {
    srv_grant *g;
    int has_source;
} grant_ctx;

static int grant_key(cfg_ctx *x, const char *key, const ynode *kn, const ynode *v, const char *path,
                     void *payload)
{
    grant_ctx *gc = payload;
    char *id = NULL;
    size_t i;
    int rc;

    if (strcmp(key, "read") == 0)
        return get_bool(x, v, path, "invalid option read: %s", &gc->g->read);
    if (strcmp(key, "write") == 0)
        return get_bool(x, v, path, "invalid option write: %s", &gc->g->write);
    if (strcmp(key, "source") != 0)
        return unknown_key(x, kn, path);
    if ((rc = get_string(x, v, path, 1, &id)) != 0)
        return rc;
    gc->has_source = 1;
    if (strcmp(id, "*") == 0) {
        gc->g->source = -1;
        free(id);
        return 0;
    }
    for (i = 0; i < x->c->n_sources; i++) {
        if (strcmp(x->c->sources[i].id, id) == 0) {
            gc->g->source = (long)i;
            free(id);
            return 0;
        }
    }
    rc = fail(x, v, path, "unknown source %s (grants name a configured source id or \"*\")", id);
    free(id);
    return rc;
}

typedef struct token_ctx {
    srv_token *t;
    int has_sha;
    const ynode *sha_node;
} token_ctx;

static int token_key(cfg_ctx *x, const char *key, const ynode *kn, const ynode *v, const char *path,
                     void *payload)
{
    token_ctx *tc = payload;
    srv_token *t = tc->t;
    char *text = NULL;
    size_t i;
    int rc;

    if (strcmp(key, "name") == 0)
        return set_string(x, v, path, &t->name);
    if (strcmp(key, "admin") == 0)
        return get_bool(x, v, path, "invalid option admin: %s", &t->admin);
    if (strcmp(key, "sha256") == 0) {
        if ((rc = get_text(x, v, path, &text)) != 0)
            return rc;
        if (srv_hex_decode(t->sha256, text) != 0)
            rc = fail(x, v, path,
                      "sha256 must be 64 hex digits (printf '%%s' \"$TOKEN\" | sha256sum)");
        free(text);
        tc->has_sha = rc == 0;
        tc->sha_node = v;
        return rc;
    }
    if (strcmp(key, "expires_at") == 0) {
        trifle_error e = TRIFLE_ERROR_INIT;
        if (is_null(v))
            return 0;
        if ((rc = get_text(x, v, path, &text)) != 0)
            return rc;
        if (trifle_time_parse(&t->expires_at, text, NULL, TRIFLE_TIME_OFFSET_REQUIRED, &e) != 0)
            rc = fail(x, v, path, "invalid time: %s (expected RFC 3339 with an offset)", text);
        else
            t->has_expiry = 1;
        free(text);
        return rc;
    }
    if (strcmp(key, "grants") != 0)
        return unknown_key(x, kn, path);
    if (is_null(v))
        return 0;
    if ((t->grants = seq_array(x, v, path, sizeof(*t->grants), &rc)) == NULL)
        return rc;
    for (i = 0; i < v->n; i++) {
        char item[512];
        grant_ctx gc = {&t->grants[i], 0};
        path_index(item, sizeof(item), path, i);
        t->n_grants = i + 1;
        if ((rc = map_each(x, v->kids[i], item, grant_key, &gc)) != 0)
            return rc;
        if (!gc.has_source)
            return fail(x, v->kids[i], item, "source required");
    }
    return 0;
}

static int load_tokens(cfg_ctx *x, const ynode *n)
{
    srv_config *c = x->c;
    char path[64];
    size_t i, j;
    int rc;

    if (n == NULL || is_null(n))
        return 0;
    if ((c->tokens = seq_array(x, n, "tokens", sizeof(*c->tokens), &rc)) == NULL)
        return rc;
    for (i = 0; i < n->n; i++) {
        token_ctx tc = {&c->tokens[i], 0, NULL};
        path_index(path, sizeof(path), "tokens", i);
        c->n_tokens = i + 1;
        if ((rc = map_each(x, n->kids[i], path, token_key, &tc)) != 0)
            return rc;
        if (!tc.has_sha)
            return fail(x, n->kids[i], path, "sha256 required");
        if (c->tokens[i].name == NULL && (c->tokens[i].name = strdup(path)) == NULL)
            return srv_error(x->err, TRIFLE_ENOMEM, "out of memory");
        for (j = 0; j < i; j++) {
            if (memcmp(c->tokens[j].sha256, c->tokens[i].sha256, 32) == 0) {
                char sp[80];
                path_key(sp, sizeof(sp), path, "sha256");
                return fail(x, tc.sha_node, sp, "duplicate sha256 (also tokens[%zu])", j);
            }
        }
    }
    return 0;
}

/* --- monitors (issue 15) ------------------------------------------------------------------------
 */

static int monitors_key(cfg_ctx *x, const char *key, const ynode *kn, const ynode *v,
                        const char *path, void *payload)
{
    srv_config *c = x->c;
    size_t n;
    int rc;

    (void)payload;
    if (strcmp(key, "webhook_allow") == 0) {
        if ((c->webhook_allow = seq_array(x, v, path, sizeof(*c->webhook_allow), &rc)) == NULL)
            return rc;
        for (n = 0; n < v->n; n++) {
            char item[512];
            path_index(item, sizeof(item), path, n);
            if ((rc = get_string(x, v->kids[n], item, 1, &c->webhook_allow[n])) != 0)
                return rc;
            c->n_webhook_allow = n + 1;
            if (!srv_allow_entry_ok(c->webhook_allow[n]))
                return fail(x, v->kids[n], item,
                            "invalid entry \"%s\": expected a host name, an address or a CIDR "
                            "block",
                            c->webhook_allow[n]);
        }
        return 0;
    }
    return int_key(x, monitors_ints, key, kn, v, path);
}

/* --- top level -------------------------------------------------------------------------------- */

enum {
    TOP_HTTP,
    TOP_DATA_DIR,
    TOP_DRIVER_PATH,
    TOP_NODE,
    TOP_LIMITS,
    TOP_SOURCES,
    TOP_TOKENS,
    TOP_STATS,
    TOP_MONITORS,
    TOP_IDEMPOTENCY,
    TOP__COUNT
};
static const char *const top_keys[TOP__COUNT] = {"http",     "data_dir",   "driver_path", "node",
                                                 "limits",   "sources",    "tokens",      "stats",
                                                 "monitors", "idempotency"};

typedef struct top_ctx {
    const ynode *value[TOP__COUNT];
} top_ctx;

static int top_key(cfg_ctx *x, const char *key, const ynode *kn, const ynode *v, const char *path,
                   void *payload)
{
    top_ctx *t = payload;
    size_t i;

    for (i = 0; i < TOP__COUNT; i++) {
        if (strcmp(top_keys[i], key) == 0) {
            t->value[i] = v;
            return 0;
        }
    }
    return unknown_key(x, kn, path);
}

/* Walk the mapping of top-level key @p i with @p fn, unless it is absent or null. */
static int load_section(cfg_ctx *x, const top_ctx *top, int i, key_fn fn)
{
    if (top->value[i] == NULL || is_null(top->value[i]))
        return 0;
    return map_each(x, top->value[i], top_keys[i], fn, NULL);
}

static int check_data_dir(cfg_ctx *x, const ynode *n)
{
    struct stat st;
    const char *d = x->c->data_dir;

    if (stat(d, &st) != 0) {
        char reason[128] = "cannot access";
        if (strerror_r(errno, reason, sizeof(reason)) != 0)
            (void)snprintf(reason, sizeof(reason), "cannot access");
        return fail(x, n, "data_dir", "%s: %s", d, reason);
    }
    if (!S_ISDIR(st.st_mode))
        return fail(x, n, "data_dir", "%s: not a directory", d);
    if (access(d, W_OK | X_OK) != 0)
        return fail(x, n, "data_dir", "%s: not writable", d);
    return 0;
}

static int set_defaults(srv_config *c)
{
    const int_option *o;
    struct utsname u;
    char host[256];
    size_t i;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    c->listen = strdup("127.0.0.1:8080");
    for (i = 0; i < sizeof(all_ints) / sizeof(all_ints[0]); i++)
        for (o = all_ints[i]; o->key != NULL; o++)
            int_store(c, o, o->dflt);
    c->threads = cpus < 1 ? 1 : cpus > 256 ? 256 : (int)cpus;
    trifle_simple_options_init(&c->stats);
    c->stats_storage = 1;
    (void)snprintf(host, sizeof(host), "%s",
                   uname(&u) == 0 && u.nodename[0] != '\0' ? u.nodename : "localhost");
    c->node_id = strdup(host);
    c->node_name = strdup(host);
    if (c->listen == NULL || c->node_id == NULL || c->node_name == NULL)
        return TRIFLE_ENOMEM;
    return 0;
}

static int read_file(const char *path, char **out, size_t *len, trifle_error *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL, reason[128];
    size_t n = 0, cap = 4096, got;

    *out = NULL;
    if (f == NULL) {
        if (strerror_r(errno, reason, sizeof(reason)) != 0)
            (void)snprintf(reason, sizeof(reason), "cannot open");
        return srv_error(err, TRIFLE_ECONFIG, "%s: cannot read the configuration file: %s", path,
                         reason);
    }
    for (;;) {
        char *bigger = realloc(buf, cap);
        if (bigger == NULL) {
            free(buf);
            (void)fclose(f);
            return srv_error(err, TRIFLE_ENOMEM, "out of memory");
        }
        buf = bigger;
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        if (cap >= CFG_MAX_FILE) {
            free(buf);
            (void)fclose(f);
            return srv_error(err, TRIFLE_ECONFIG, "%s: configuration file larger than 4 MiB", path);
        }
        cap *= 2;
    }
    if (ferror(f)) {
        free(buf);
        (void)fclose(f);
        return srv_error(err, TRIFLE_ECONFIG, "%s: cannot read the configuration file", path);
    }
    (void)fclose(f); /* read-only: everything was read and checked with ferror */
    *out = buf;
    *len = n;
    return 0;
}

/* The directory of the configuration file, made absolute against the working directory (the
 * server never changes it, but logs and sqlite paths are clearer absolute). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char cwd[4096], *d;
    size_t dn, cn;

    if (slash == path)
        return strdup("/");
    dn = slash != NULL ? (size_t)(slash - path) : 0;
    if (path[0] == '/')
        return strndup(path, dn);
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return dn > 0 ? strndup(path, dn) : strdup(".");
    cn = strlen(cwd);
    if ((d = malloc(cn + 1 + dn + 1)) == NULL)
        return NULL;
    memcpy(d, cwd, cn);
    if (dn > 0) {
        d[cn] = '/';
        memcpy(d + cn + 1, path, dn);
        d[cn + 1 + dn] = '\0';
    } else {
        d[cn] = '\0';
    }
    return d;
}

int srv_config_load(srv_config **out, const char *path, trifle_error *err)
{
    cfg_ctx x;
    srv_config *c = NULL;
    ynode *root = NULL;
    top_ctx top;
    char *text = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    memset(&x, 0, sizeof(x));
    memset(&top, 0, sizeof(top));
    x.file = path;
    x.err = err;
    if ((rc = read_file(path, &text, &len, err)) != 0)
        return rc;
    if ((c = calloc(1, sizeof(*c))) == NULL || (c->file = strdup(path)) == NULL ||
        set_defaults(c) != 0 || (x.dir = dir_of(path)) == NULL) {
        rc = srv_error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    x.c = c;
    if ((rc = parse_tree(&x, text, len, &root)) != 0)
        goto done;
    if (root == NULL || is_null(root)) {
        rc = srv_error(err, TRIFLE_ECONFIG, "%s:1:1: sources: sources must not be empty", path);
        goto done;
    }
    if ((rc = map_each(&x, root, "", top_key, &top)) != 0)
        goto done;

    if ((rc = load_section(&x, &top, TOP_HTTP, http_key)) != 0)
        goto done;
    if (top.value[TOP_DATA_DIR] == NULL || is_null(top.value[TOP_DATA_DIR])) {
        rc = fail(&x, top.value[TOP_DATA_DIR] ? top.value[TOP_DATA_DIR] : root, "data_dir",
                  "data_dir required");
        goto done;
    } else {
        char *d = NULL;
        if ((rc = get_string(&x, top.value[TOP_DATA_DIR], "data_dir", 1, &d)) != 0)
            goto done;
        c->data_dir = resolve_path(&x, d);
        free(d);
        if (c->data_dir == NULL) {
            rc = srv_error(err, TRIFLE_ENOMEM, "out of memory");
            goto done;
        }
        if ((rc = check_data_dir(&x, top.value[TOP_DATA_DIR])) != 0)
            goto done;
    }
    if (top.value[TOP_DRIVER_PATH] != NULL && !is_null(top.value[TOP_DRIVER_PATH])) {
        /* colon-separated directories, each resolved against the file's directory */
        char *d = NULL, *p, *save = NULL;
        srv_buf b;
        if ((rc = get_string(&x, top.value[TOP_DRIVER_PATH], "driver_path", 1, &d)) != 0)
            goto done;
        srv_buf_init(&b, NULL);
        for (p = d; p != NULL; p = save) {
            char *r;
            save = strchr(p, ':');
            if (save != NULL)
                *save++ = '\0';
            if (*p == '\0')
                continue;
            r = resolve_path(&x, p);
            if (r == NULL) {
                b.failed = 1;
                break;
            }
            if (b.len > 0)
                srv_buf_putc(&b, ':');
            srv_buf_puts(&b, r);
            free(r);
        }
        free(d);
        if (b.failed || srv_buf_cstr(&b) == NULL || (c->driver_path = strdup(b.data)) == NULL) {
            srv_buf_release(&b);
            rc = srv_error(err, TRIFLE_ENOMEM, "out of memory");
            goto done;
        }
        srv_buf_release(&b);
    }
    if ((rc = load_section(&x, &top, TOP_NODE, node_key)) != 0 ||
        (rc = load_section(&x, &top, TOP_LIMITS, limits_key)) != 0 ||
        (rc = load_sources(&x, top.value[TOP_SOURCES] ? top.value[TOP_SOURCES] : root)) != 0 ||
        (rc = load_tokens(&x, top.value[TOP_TOKENS])) != 0 ||
        (rc = load_section(&x, &top, TOP_STATS, stats_key)) != 0 ||
        (rc = load_section(&x, &top, TOP_MONITORS, monitors_key)) != 0 ||
        (rc = load_section(&x, &top, TOP_IDEMPOTENCY, idempotency_key)) != 0)
        goto done;
    *out = c;
    c = NULL;
done:
    tree_free(&x);
    free(x.dir);
    free(text);
    srv_config_free(c);
    return rc;
}

int srv_config_default(srv_config **out, trifle_error *err)
{
    srv_config *c;
    srv_source_config *s;
    trifle_error e = TRIFLE_ERROR_INIT;
    char num[32];
    int rc;

    *out = NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL || set_defaults(c) != 0 ||
        (c->data_dir = strdup("./trifle-data")) == NULL ||
        (c->sources = calloc(1, sizeof(*c->sources))) == NULL) {
        srv_config_free(c);
        return srv_error(err, TRIFLE_ENOMEM, "out of memory");
    }
    c->n_sources = 1;
    s = &c->sources[0];
    s->id = strdup("main");
    s->name = strdup("main");
    s->driver = strdup("sqlite:./trifle-data/trifle.db");
    s->sqlite_file = strdup("./trifle-data/trifle.db");
    s->default_timeframe = strdup("24h");
    s->setup = 1;
    (void)snprintf(s->where, sizeof(s->where), "zero-config");
    if (s->id == NULL || s->name == NULL || s->driver == NULL || s->sqlite_file == NULL ||
        s->default_timeframe == NULL || trifle_config_new(&s->lib, &e) != 0) {
        srv_config_free(c);
        return srv_error(err, TRIFLE_ENOMEM, "out of memory");
    }
    (void)snprintf(num, sizeof(num), "%zu", c->max_points);
    /* the default source is buffered, so its writes are journaled (source_journal()) */
    if ((s->journal_dir = default_journal_dir(c->data_dir, s->id)) == NULL) {
        srv_config_free(c);
        return srv_error(err, TRIFLE_ENOMEM, "out of memory");
    }
    if ((rc = trifle_config_set(s->lib, "driver", s->driver, &e)) != 0 ||
        (rc = trifle_config_set(s->lib, "max_points", num, &e)) != 0 ||
        (rc = trifle_config_set(s->lib, "buffer.journal", s->journal_dir, &e)) != 0) {
        srv_config_free(c);
        return srv_error(err, rc, "sources[0]: %s", e.message);
    }
    *out = c;
    return 0;
}

void srv_config_free(srv_config *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; c->sources != NULL && i < c->n_sources; i++) {
        srv_source_config *s = &c->sources[i];
        free(s->id);
        free(s->name);
        free(s->driver);
        free(s->sqlite_file);
        free(s->journal_dir);
        free(s->default_timeframe);
        free(s->default_granularity);
        trifle_config_free(s->lib);
    }
    free(c->sources);
    for (i = 0; i < c->n_tokens; i++) {
        free(c->tokens[i].name);
        free(c->tokens[i].grants);
    }
    free(c->tokens);
    for (i = 0; i < c->n_labels; i++) {
        free(c->labels[i].name);
        free(c->labels[i].value);
    }
    free(c->labels);
    for (i = 0; i < c->n_webhook_allow; i++)
        free(c->webhook_allow[i]);
    free(c->webhook_allow);
    free(c->file);
    free(c->listen);
    free(c->data_dir);
    free(c->driver_path);
    free(c->node_id);
    free(c->node_name);
    free(c);
}
