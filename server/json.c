/* Request bodies: a strict RFC 8259 validator that keeps the text as it is, and iteration over the
 * members of a validated object. The `values` member is handed to trifle_payload_parse() as its
 * raw text, so its numbers are read once, by the library's own parser (SPEC §4.1, ERRATA minor
 * 23), and never pass through a second JSON library. */
#include "srv_int.h"

#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 512

typedef struct scanner {
    const char *p;
    const char *end;
} scanner;

static void skip_ws(scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int scan_string(scanner *s)
{
    const char *start;

    if (s->p >= s->end || *s->p != '"')
        return -1;
    s->p++;
    start = s->p;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            if (!tu_utf8_valid(start, (size_t)(s->p - start)))
                return -1;
            s->p++;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            s->p++;
            if (s->p >= s->end)
                return -1;
            switch (*s->p) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                s->p++;
                break;
            case 'u':
                if (s->end - s->p < 5 || hex_value(s->p[1]) < 0 || hex_value(s->p[2]) < 0 ||
                    hex_value(s->p[3]) < 0 || hex_value(s->p[4]) < 0)
                    return -1;
                s->p += 5;
                break;
            default:
                return -1;
            }
            continue;
        }
        s->p++;
    }
    return -1;
}

static int scan_number(scanner *s)
{
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p >= s->end || !is_digit(*s->p))
        return -1;
    if (*s->p == '0')
        s->p++;
    else
        while (s->p < s->end && is_digit(*s->p))
            s->p++;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (s->p >= s->end || !is_digit(*s->p))
            return -1;
        while (s->p < s->end && is_digit(*s->p))
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (s->p >= s->end || !is_digit(*s->p))
            return -1;
        while (s->p < s->end && is_digit(*s->p))
            s->p++;
    }
    return 0;
}

static int scan_literal(scanner *s, const char *word)
{
    size_t n = strlen(word);

    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

static int scan_value(scanner *s, int depth, int *type)
{
    int t;

    skip_ws(s);
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '{':
        if (depth >= JSON_MAX_DEPTH)
            return -1;
        *type = SRV_JSON_OBJECT;
        s->p++;
        skip_ws(s);
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            return 0;
        }
        for (;;) {
            skip_ws(s);
            if (scan_string(s) != 0)
                return -1;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return -1;
            s->p++;
            if (scan_value(s, depth + 1, &t) != 0)
                return -1;
            skip_ws(s);
            if (s->p < s->end && *s->p == ',') {
                s->p++;
                continue;
            }
            if (s->p < s->end && *s->p == '}') {
                s->p++;
                return 0;
            }
            return -1;
        }
    case '[':
        if (depth >= JSON_MAX_DEPTH)
            return -1;
        *type = SRV_JSON_ARRAY;
        s->p++;
        skip_ws(s);
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            return 0;
        }
        for (;;) {
            if (scan_value(s, depth + 1, &t) != 0)
                return -1;
            skip_ws(s);
            if (s->p < s->end && *s->p == ',') {
                s->p++;
                continue;
            }
            if (s->p < s->end && *s->p == ']') {
                s->p++;
                return 0;
            }
            return -1;
        }
    case '"':
        *type = SRV_JSON_STRING;
        return scan_string(s);
    case 't':
        *type = SRV_JSON_TRUE;
        return scan_literal(s, "true");
    case 'f':
        *type = SRV_JSON_FALSE;
        return scan_literal(s, "false");
    case 'n':
        *type = SRV_JSON_NULL;
        return scan_literal(s, "null");
    default:
        *type = SRV_JSON_NUMBER;
        return scan_number(s);
    }
}

int srv_json_parse(srv_json *out, const char *text, size_t n)
{
    scanner s = {text, text + n};
    const char *start;
    int type = SRV_JSON_NULL;

    skip_ws(&s);
    start = s.p;
    if (scan_value(&s, 0, &type) != 0)
        return -1;
    out->p = start;
    out->n = (size_t)(s.p - start);
    out->type = type;
    skip_ws(&s);
    return s.p == s.end ? 0 : -1;
}

/* ------------------------------------------------------------------------------------------- */
/* Walking validated text                                                                       */

static int type_of(char c)
{
    switch (c) {
    case '{':
        return SRV_JSON_OBJECT;
    case '[':
        return SRV_JSON_ARRAY;
    case '"':
        return SRV_JSON_STRING;
    case 't':
        return SRV_JSON_TRUE;
    case 'f':
        return SRV_JSON_FALSE;
    case 'n':
        return SRV_JSON_NULL;
    default:
        return SRV_JSON_NUMBER;
    }
}

/* Skip one string of validated text; s->p is at its opening quote. */
static void skip_string(scanner *s)
{
    s->p++;
    while (s->p < s->end && *s->p != '"')
        s->p += *s->p == '\\' ? 2 : 1;
    s->p++;
}

/* Skip one value of validated text; s->p is at its first byte. */
static void skip_value(scanner *s)
{
    size_t depth = 0;

    do {
        char c = *s->p;
        if (c == '"') {
            skip_string(s);
        } else if (c == '{' || c == '[') {
            depth++;
            s->p++;
        } else if (c == '}' || c == ']') {
            depth--;
            s->p++;
        } else if (depth > 0) {
            s->p++;
        } else {
            while (s->p < s->end && *s->p != ',' && *s->p != '}' && *s->p != ']' && *s->p != ' ' &&
                   *s->p != '\t' && *s->p != '\n' && *s->p != '\r')
                s->p++;
        }
    } while (depth > 0 && s->p < s->end);
}

void srv_json_members(srv_json_iter *it, const srv_json *object)
{
    it->p = object->p + 1;
    it->end = object->p + object->n - 1;
}

int srv_json_next(srv_json_iter *it, srv_json *name, srv_json *value)
{
    scanner s = {it->p, it->end};

    skip_ws(&s);
    if (s.p < s.end && *s.p == ',') {
        s.p++;
        skip_ws(&s);
    }
    if (s.p >= s.end)
        return 0;
    name->p = s.p;
    name->type = SRV_JSON_STRING;
    skip_string(&s);
    name->n = (size_t)(s.p - name->p);
    skip_ws(&s);
    s.p++; /* ':' */
    skip_ws(&s);
    value->p = s.p;
    value->type = type_of(*s.p);
    skip_value(&s);
    value->n = (size_t)(s.p - value->p);
    it->p = s.p;
    return 1;
}

void srv_json_elements(srv_json_iter *it, const srv_json *array)
{
    srv_json_members(it, array); /* the same span: between the brackets */
}

int srv_json_next_element(srv_json_iter *it, srv_json *value)
{
    scanner s = {it->p, it->end};

    skip_ws(&s);
    if (s.p < s.end && *s.p == ',') {
        s.p++;
        skip_ws(&s);
    }
    if (s.p >= s.end)
        return 0;
    value->p = s.p;
    value->type = type_of(*s.p);
    skip_value(&s);
    value->n = (size_t)(s.p - value->p);
    it->p = s.p;
    return 1;
}

/* Decode the string span into @p out (which has room for str->n bytes). Returns the length. */
static size_t decode_string(char *out, const srv_json *str)
{
    const char *p = str->p + 1, *end = str->p + str->n - 1;
    size_t n = 0;

    while (p < end) {
        unsigned long cp;
        if (*p != '\\') {
            out[n++] = *p++;
            continue;
        }
        p++;
        switch (*p) {
        case 'b':
            out[n++] = '\b';
            p++;
            continue;
        case 'f':
            out[n++] = '\f';
            p++;
            continue;
        case 'n':
            out[n++] = '\n';
            p++;
            continue;
        case 'r':
            out[n++] = '\r';
            p++;
            continue;
        case 't':
            out[n++] = '\t';
            p++;
            continue;
        case 'u':
            break;
        default:
            out[n++] = *p++;
            continue;
        }
        cp = (unsigned long)(hex_value(p[1]) << 12 | hex_value(p[2]) << 8 | hex_value(p[3]) << 4 |
                             hex_value(p[4]));
        p += 5;
        if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
            int h1 = hex_value(p[2]), h2 = hex_value(p[3]), h3 = hex_value(p[4]),
                h4 = hex_value(p[5]);
            unsigned long lo = (unsigned long)(h1 << 12 | h2 << 8 | h3 << 4 | h4);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
        }
        if (cp >= 0xD800 && cp <= 0xDFFF)
            cp = 0xFFFD; /* a lone surrogate */
        /* the escape is 6 or 12 bytes of text, always more than its UTF-8 form */
        if (cp < 0x80) {
            out[n++] = (char)cp;
        } else if (cp < 0x800) {
            out[n++] = (char)(0xC0 | cp >> 6);
            out[n++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out[n++] = (char)(0xE0 | cp >> 12);
            out[n++] = (char)(0x80 | (cp >> 6 & 0x3F));
            out[n++] = (char)(0x80 | (cp & 0x3F));
        } else {
            out[n++] = (char)(0xF0 | cp >> 18);
            out[n++] = (char)(0x80 | (cp >> 12 & 0x3F));
            out[n++] = (char)(0x80 | (cp >> 6 & 0x3F));
            out[n++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return n;
}

int srv_json_string_dup(char **out, size_t *len, const srv_json *str)
{
    char *s = malloc(str->n);

    *out = NULL;
    if (s == NULL)
        return TRIFLE_ENOMEM;
    *len = decode_string(s, str);
    s[*len] = '\0';
    *out = s;
    return 0;
}

int srv_json_string_is(const srv_json *str, const char *s)
{
    char small[256], *buf = small;
    size_t want = strlen(s), n;
    int same;

    if (memchr(str->p, '\\', str->n) == NULL)
        return str->n - 2 == want && memcmp(str->p + 1, s, want) == 0;
    /* each decoded byte comes from at most 6 bytes of text (`\u0041`): a longer text cannot
     * decode to `want` bytes */
    if (str->n > 6 * want + 2)
        return 0;
    /* decoding never lengthens the text; long names decode on the heap (found by fuzzing: they
     * used to compare unequal to everything) */
    if (str->n > sizeof(small) && (buf = malloc(str->n)) == NULL)
        return 0;
    n = decode_string(buf, str);
    same = n == want && memcmp(buf, s, n) == 0;
    if (buf != small)
        free(buf);
    return same;
}

int srv_json_get(const srv_json *object, const char *name, srv_json *value)
{
    srv_json_iter it;
    srv_json k, v;
    int found = 0;

    srv_json_members(&it, object);
    while (srv_json_next(&it, &k, &v)) {
        if (srv_json_string_is(&k, name)) {
            *value = v;
            found = 1;
        }
    }
    return found;
}
