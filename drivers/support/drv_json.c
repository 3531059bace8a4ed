/*
 * The stored-JSON reader of the drivers (drv_support.h): flattening objects to dotted paths as it
 * goes. Strings and numbers are lexed by the one strict lexer (util/tu_json.h); `\u0000` and
 * unpaired surrogate escapes are accepted, as stored data written by other libraries may hold them.
 */
#include "drv_support.h"

#include <math.h>
#include <string.h>

#include "util/tu_json.h"

void drv_json_ws(drv_json *js)
{
    while (js->p < js->end && (*js->p == ' ' || *js->p == '\t' || *js->p == '\n' || *js->p == '\r'))
        js->p++;
}

int drv_json_string(drv_json *js, drv_buf *out)
{
    tu_json_lex lx = {.s = js->p, .len = (size_t)(js->end - js->p), .flags = TU_JSON_LAX_ESCAPES};
    size_t body;

    if (tu_json_string(&lx) != 0)
        return 0;
    body = lx.i - 2; /* between the quotes; decoding never lengthens it */
    if (out != NULL && body > 0 && drv_buf_grow(out, body) == 0)
        out->len += tu_json_unescape(out->p + out->len, js->p + 1, body);
    js->p += lx.i;
    return 1;
}

int drv_json_number(drv_json *js, double *v, int *numeric)
{
    const char *s = js->p, *p;
    tu_json_lex lx = {.s = s, .len = (size_t)(js->end - s)};
    int upper = 0, plain = 1;
    size_t len;

    if (tu_json_number(&lx) != 0)
        return 0;
    p = s + lx.i;
    for (const char *q = s; q < p; q++) {
        if (*q == '.' || *q == 'e' || *q == 'E')
            plain = 0;
        if (*q == 'E')
            upper = 1;
    }
    js->p = p;
    len = (size_t)(p - s);
    *numeric = 0;
    if (plain && len - (*s == '-') <= 15) {
        /* integers below 10^15 are exact doubles: the common case needs no strtod */
        int64_t iv = 0;
        for (const char *q = s + (*s == '-'); q < p; q++)
            iv = iv * 10 + (*q - '0');
        *v = *s == '-' ? -(double)iv : (double)iv;
        if (*v == 0)
            *v = 0; /* -0 reads as 0, as the host's parser does */
        *numeric = 1;
    } else if (!upper) {
        *numeric = js->host->parse_double(s, len, v) == 0;
    } else if (len < 128) {
        /* the host's grammar names a lower-case exponent */
        char tmp[128];
        memcpy(tmp, s, len);
        for (size_t i = 0; i < len; i++)
            if (tmp[i] == 'E')
                tmp[i] = 'e';
        *numeric = js->host->parse_double(tmp, len, v) == 0;
    }
    if (*numeric && !isfinite(*v))
        *numeric = 0;
    return 1;
}

int drv_json_literal(drv_json *js, const char *word, size_t n)
{
    if ((size_t)(js->end - js->p) < n || memcmp(js->p, word, n) != 0)
        return 0;
    js->p += n;
    return 1;
}

/* The object or array at js->p (its `{` or `[`), nested `depth` deep (0: the top object). With
 * walk (objects only), the members' paths extend js->path, which is as it was on return; member
 * objects down to js->max_depth are walked the same way and every other value goes to
 * js->value(). Without walk, every value is validated and skipped by drv_json_skip(). */
static int drv_json_nest(drv_json *js, int depth, int walk)
{
    char close = *js->p == '[' ? ']' : '}';
    size_t base = walk ? js->path->len : 0;

    js->p++;
    drv_json_ws(js);
    if (js->p < js->end && *js->p == close) {
        js->p++;
        return 1;
    }
    for (;;) {
        if (close == '}') {
            drv_buf *key = NULL;
            if (walk) {
                key = js->path;
                key->len = base;
                if (depth > 0)
                    drv_buf_putc(key, '.');
            }
            if (js->p >= js->end || *js->p != '"' || !drv_json_string(js, key))
                return 0;
            drv_json_ws(js);
            if (js->p >= js->end || *js->p != ':')
                return 0;
            js->p++;
            drv_json_ws(js);
        }
        if (!walk) {
            if (!drv_json_skip(js, depth + 1))
                return 0;
        } else if (js->p >= js->end) {
            return 0;
        } else if (*js->p == '{' && depth < js->max_depth) {
            if (!drv_json_nest(js, depth + 1, 1))
                return 0;
        } else if (!js->value(js, depth, js->ctx)) {
            return 0;
        }
        drv_json_ws(js);
        if (js->p >= js->end)
            return 0;
        if (*js->p == close) {
            js->p++;
            if (walk)
                js->path->len = base;
            return 1;
        }
        if (*js->p != ',')
            return 0;
        js->p++;
        drv_json_ws(js);
    }
}

int drv_json_skip(drv_json *js, int depth)
{
    double v;
    int numeric;

    if (depth > js->max_depth || js->p >= js->end)
        return 0;
    switch (*js->p) {
    case '"':
        return drv_json_string(js, NULL);
    case 't':
        return drv_json_literal(js, "true", 4);
    case 'f':
        return drv_json_literal(js, "false", 5);
    case 'n':
        return drv_json_literal(js, "null", 4);
    case '[':
    case '{':
        return drv_json_nest(js, depth, 0);
    default:
        return drv_json_number(js, &v, &numeric);
    }
}

int drv_json_walk(drv_json *js, const char *text, size_t len)
{
    js->p = text;
    js->end = text + len;
    js->path->len = 0;
    drv_json_ws(js);
    if (js->p >= js->end || *js->p != '{' || !drv_json_nest(js, 0, 1))
        return 0;
    drv_json_ws(js);
    return js->p == js->end;
}

/* ---------------------------------------------------------------------------------------------
 * drv_json_flatten */

/* One walk of drv_json_flatten(). */
typedef struct flat_walk {
    drv_leaf_fn leaf;
    void *ctx;
    int rc; /* first non-zero leaf() result */
} flat_walk;

/* Skip any value at js->p without recursion (arrays and objects of any depth). */
static int skip_any(drv_json *js)
{
    size_t depth = 0;

    for (;;) {
        double v;
        int numeric;

        drv_json_ws(js);
        if (js->p >= js->end)
            return 0;
        switch (*js->p) {
        case '"':
            if (!drv_json_string(js, NULL))
                return 0;
            break;
        case '[':
        case '{':
            depth++;
            js->p++;
            continue;
        case ']':
        case '}':
        case ',':
        case ':': {
            int closes = *js->p == ']' || *js->p == '}';

            if (depth == 0)
                return 0;
            js->p++;
            if (!closes)
                continue; /* a separator: the value goes on */
            depth--;
            break;
        }
        case 't':
        case 'f':
        case 'n': {
            const char *w = *js->p == 't' ? "true" : *js->p == 'f' ? "false" : "null";
            if (!drv_json_literal(js, w, strlen(w)))
                return 0;
            break;
        }
        default:
            if (!drv_json_number(js, &v, &numeric))
                return 0;
            break;
        }
        if (depth == 0)
            return 1;
    }
}

int drv_json_value(drv_json *js, int depth, double *v, int *numeric)
{
    *v = 0;
    *numeric = 0;
    if (drv_json_at_number(js))
        return drv_json_number(js, v, numeric);
    return drv_json_skip(js, depth + 1);
}

/* drv_json_value_fn: a number is a leaf (when the walk has not failed and its path suits the
 * core); anything else, including an object nested deeper than max_depth, is skipped. */
static int flat_value(drv_json *js, int depth, void *ctx)
{
    flat_walk *w = ctx;
    drv_buf *path = js->path;
    double v = 0;
    int numeric = 0;

    (void)depth;
    if (!drv_json_at_number(js))
        return skip_any(js);
    if (!drv_json_number(js, &v, &numeric))
        return 0;
    if (numeric && !*path->oom && w->rc == 0 && drv_path_ok(path->p, path->len)) {
        drv_buf_zero(path);
        if (!*path->oom)
            w->rc = w->leaf(w->ctx, path->p, path->len, v);
    }
    return 1;
}

int drv_json_flatten(const trifle_host_api *host, drv_buf *path, int max_depth, const char *text,
                     size_t len, drv_leaf_fn leaf, void *ctx)
{
    flat_walk w = {leaf, ctx, 0};
    drv_json js = {
        .host = host, .path = path, .max_depth = max_depth, .value = flat_value, .ctx = &w};

    path->len = 0;
    (void)drv_json_walk(&js, text, len);
    if (w.rc != 0)
        return w.rc;
    return *path->oom ? TRIFLE_ENOMEM : 0;
}
