#include "tu_json.h"

#include <string.h>

#include "tu_hex.h"
#include "tu_utf8.h"

/* The control characters with a short escape, and the letters that name them. */
static const char short_chars[] = "\b\f\n\r\t";
static const char short_names[] = "bfnrt";

static int fail(tu_json_lex *lx, size_t at, const char *reason)
{
    lx->reason = reason;
    lx->at = at;
    return -1;
}

static int fail_eof(tu_json_lex *lx)
{
    return fail(lx, lx->len, "unexpected end of input");
}

void tu_json_ws(tu_json_lex *lx)
{
    while (lx->i < lx->len) {
        char c = lx->s[lx->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        lx->i++;
    }
}

/* A `\u` escape at lx->i (pointing at the backslash), including a surrogate pair. */
static int unicode_escape(tu_json_lex *lx)
{
    size_t at = lx->i, k;
    unsigned cp = 0, lo = 0;
    int lax = (lx->flags & TU_JSON_LAX_ESCAPES) != 0;

    for (k = at + 2; k < at + 6; k++) {
        if (k >= lx->len)
            return fail_eof(lx);
        if (tu_hex_value((unsigned char)lx->s[k]) < 0)
            return fail(lx, at, "invalid \\u escape");
    }
    (void)tu_hex4(lx->s + at + 2, &cp);
    if (cp == 0 && !lax)
        return fail(lx, at, "\\u0000 in string");
    if (cp >= 0xD800 && cp <= 0xDBFF && lx->len - at >= 12 && lx->s[at + 6] == '\\' &&
        lx->s[at + 7] == 'u' && tu_hex4(lx->s + at + 8, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
        lx->i += 12;
        return 0;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF && !lax)
        return fail(lx, at, "unpaired surrogate in \\u escape");
    lx->i += 6;
    return 0;
}

int tu_json_string(tu_json_lex *lx)
{
    lx->i++;
    while (lx->i < lx->len) {
        unsigned char c = (unsigned char)lx->s[lx->i];
        size_t n;

        if (c == '"') {
            lx->i++;
            return 0;
        }
        if (c == '\\') {
            if (lx->i + 1 >= lx->len)
                return fail_eof(lx);
            switch (lx->s[lx->i + 1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                lx->i += 2;
                continue;
            case 'u':
                if (unicode_escape(lx) != 0)
                    return -1;
                continue;
            default:
                return fail(lx, lx->i, "invalid escape in string");
            }
        }
        if (c < 0x20)
            return fail(lx, lx->i, "control character in string");
        if (c < 0x80) {
            lx->i++;
            continue;
        }
        n = tu_utf8_seq(lx->s + lx->i, lx->len - lx->i);
        if (n == 0)
            return fail(lx, lx->i, "invalid UTF-8");
        lx->i += n;
    }
    return fail_eof(lx);
}

static int is_digit(const tu_json_lex *lx)
{
    return lx->i < lx->len && lx->s[lx->i] >= '0' && lx->s[lx->i] <= '9';
}

static int digits(tu_json_lex *lx)
{
    if (lx->i >= lx->len)
        return fail_eof(lx);
    if (!is_digit(lx))
        return fail(lx, lx->i, "expected a digit");
    while (is_digit(lx))
        lx->i++;
    return 0;
}

int tu_json_number(tu_json_lex *lx)
{
    size_t start = lx->i;

    if (lx->i < lx->len && lx->s[lx->i] == '-')
        lx->i++;
    if (lx->i < lx->len && lx->s[lx->i] == '0') {
        lx->i++;
        if (is_digit(lx))
            return fail(lx, lx->i - 1, "leading zero in number");
    } else if (digits(lx) != 0) {
        return -1;
    }
    if (lx->i < lx->len && lx->s[lx->i] == '.') {
        lx->i++;
        if (digits(lx) != 0)
            return -1;
    }
    if (lx->i < lx->len && (lx->s[lx->i] == 'e' || lx->s[lx->i] == 'E')) {
        lx->i++;
        if (lx->i < lx->len && (lx->s[lx->i] == '+' || lx->s[lx->i] == '-'))
            lx->i++;
        if (digits(lx) != 0)
            return -1;
    }
    if (lx->number != NULL)
        lx->number(lx->ctx, start, lx->i - start);
    return 0;
}

static int literal(tu_json_lex *lx, const char *word)
{
    size_t n = strlen(word);

    if (lx->len - lx->i < n || memcmp(lx->s + lx->i, word, n) != 0)
        return fail(lx, lx->i, "invalid literal");
    lx->i += n;
    return 0;
}

/* Containers are tracked in a bit stack (1 = object), so depth costs no recursion. */
int tu_json_validate(tu_json_lex *lx)
{
    unsigned char stack[TU_JSON_MAX_DEPTH / 8] = {0};
    size_t depth = 0;

#define IN_OBJECT() ((stack[(depth - 1) / 8] >> ((depth - 1) % 8)) & 1)
    for (;;) {
        /* a value is expected at lx->i */
        tu_json_ws(lx);
        if (lx->i >= lx->len)
            return fail_eof(lx);
        switch (lx->s[lx->i]) {
        case '{':
        case '[':
            if (depth == TU_JSON_MAX_DEPTH)
                return fail(lx, lx->i, "nesting deeper than 512 levels");
            if (lx->s[lx->i] == '{')
                stack[depth / 8] = (unsigned char)(stack[depth / 8] | (1u << (depth % 8)));
            else
                stack[depth / 8] = (unsigned char)(stack[depth / 8] & ~(1u << (depth % 8)));
            depth++;
            lx->i++;
            tu_json_ws(lx);
            if (lx->i < lx->len && lx->s[lx->i] == (IN_OBJECT() ? '}' : ']')) {
                lx->i++;
                depth--;
                break;
            }
            if (IN_OBJECT())
                goto member;
            continue; /* first array element */
        case '"':
            if (tu_json_string(lx) != 0)
                return -1;
            break;
        case 't':
        case 'f':
        case 'n': {
            char c = lx->s[lx->i];
            if (literal(lx, c == 't' ? "true" : c == 'f' ? "false" : "null") != 0)
                return -1;
            break;
        }
        default:
            if (lx->s[lx->i] == '-' || (lx->s[lx->i] >= '0' && lx->s[lx->i] <= '9')) {
                if (tu_json_number(lx) != 0)
                    return -1;
                break;
            }
            return fail(lx, lx->i, "expected a value");
        }
        /* after a value: close containers, or find the next element */
        for (;;) {
            tu_json_ws(lx);
            if (depth == 0) {
                if (lx->i != lx->len)
                    return fail(lx, lx->i, "unexpected data after the value");
                return 0;
            }
            if (lx->i >= lx->len)
                return fail_eof(lx);
            if (lx->s[lx->i] == ',') {
                lx->i++;
                break;
            }
            if (lx->s[lx->i] != (IN_OBJECT() ? '}' : ']'))
                return fail(lx, lx->i, IN_OBJECT() ? "expected ',' or '}'" : "expected ',' or ']'");
            lx->i++;
            depth--;
        }
        if (!IN_OBJECT())
            continue; /* next array element */
    member:
        tu_json_ws(lx);
        if (lx->i >= lx->len)
            return fail_eof(lx);
        if (lx->s[lx->i] != '"')
            return fail(lx, lx->i, "expected a member name");
        if (tu_json_string(lx) != 0)
            return -1;
        tu_json_ws(lx);
        if (lx->i >= lx->len)
            return fail_eof(lx);
        if (lx->s[lx->i] != ':')
            return fail(lx, lx->i, "expected ':'");
        lx->i++;
    }
#undef IN_OBJECT
}

size_t tu_json_unescape(char *out, const char *s, size_t n)
{
    const char *p = s, *end = s + n, *k;
    size_t o = 0;
    unsigned cp, lo;

    while (p < end) {
        if (*p != '\\') {
            out[o++] = *p++;
            continue;
        }
        if (p[1] != 'u') {
            /* `\"` `\\` `\/` stand for themselves */
            k = memchr(short_names, p[1], sizeof(short_names) - 1);
            if (k != NULL)
                out[o++] = short_chars[k - short_names];
            else
                out[o++] = p[1];
            p += 2;
            continue;
        }
        (void)tu_hex4(p + 2, &cp);
        p += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
            tu_hex4(p + 2, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        } else if (cp >= 0xD800 && cp <= 0xDFFF) {
            cp = 0xFFFD; /* unpaired */
        }
        o += tu_utf8_put(out + o, cp);
    }
    return o;
}

size_t tu_json_escape_char(char out[6], unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    const char *k;

    if (c >= 0x20 && c != '"' && c != '\\')
        return 0;
    out[0] = '\\';
    if (c == '"' || c == '\\') {
        out[1] = (char)c;
        return 2;
    }
    if (c != 0 && (k = memchr(short_chars, c, sizeof(short_chars) - 1)) != NULL) {
        out[1] = short_names[k - short_chars];
        return 2;
    }
    out[1] = 'u';
    out[2] = '0';
    out[3] = '0';
    out[4] = hex[c >> 4];
    out[5] = hex[c & 15];
    return 6;
}
