/* Request bodies: validated by the strict RFC 8259 lexer (util/tu_json.h; `\u0000` and unpaired
 * surrogate escapes are accepted and decode to NUL and U+FFFD), kept as they are, and iterated over
 * member by member. The `values` member is handed to trifle_payload_parse() as its
 * raw text, so its numbers are read once, by the library's own parser (SPEC §4.1, ERRATA minor
 * 23), and never pass through a second JSON library. */
#include "srv_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/tu_json.h"

typedef struct scanner {
    const char *p;
    const char *end;
} scanner;

static void skip_ws(scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
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

int srv_json_parse(srv_json *out, const char *text, size_t n)
{
    tu_json_lex lx = {.s = text, .len = n, .flags = TU_JSON_LAX_ESCAPES};
    size_t start, end = n;

    if (tu_json_validate(&lx) != 0)
        return -1;
    lx.i = 0;
    tu_json_ws(&lx);
    start = lx.i;
    while (end > start && (text[end - 1] == ' ' || text[end - 1] == '\t' || text[end - 1] == '\n' ||
                           text[end - 1] == '\r'))
        end--;
    out->p = text + start;
    out->n = end - start;
    out->type = type_of(text[start]);
    return 0;
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

/* Step @p it to its next element: past a ',' and white space. Returns 0 at the end. */
static int next_start(srv_json_iter *it, scanner *s)
{
    s->p = it->p;
    s->end = it->end;
    skip_ws(s);
    if (s->p < s->end && *s->p == ',') {
        s->p++;
        skip_ws(s);
    }
    return s->p < s->end;
}

/* Take the value at s->p into @p value and move @p it past it. */
static void take_value(srv_json_iter *it, scanner *s, srv_json *value)
{
    value->p = s->p;
    value->type = type_of(*s->p);
    skip_value(s);
    value->n = (size_t)(s->p - value->p);
    it->p = s->p;
}

int srv_json_next(srv_json_iter *it, srv_json *name, srv_json *value)
{
    scanner s;

    if (!next_start(it, &s))
        return 0;
    name->p = s.p;
    name->type = SRV_JSON_STRING;
    skip_string(&s);
    name->n = (size_t)(s.p - name->p);
    skip_ws(&s);
    s.p++; /* ':' */
    skip_ws(&s);
    take_value(it, &s, value);
    return 1;
}

void srv_json_elements(srv_json_iter *it, const srv_json *array)
{
    srv_json_members(it, array); /* the same span: between the brackets */
}

int srv_json_next_element(srv_json_iter *it, srv_json *value)
{
    scanner s;

    if (!next_start(it, &s))
        return 0;
    take_value(it, &s, value);
    return 1;
}

/* Decode the string span into @p out (which has room for str->n bytes). Returns the length. */
static size_t decode_string(char *out, const srv_json *str)
{
    return tu_json_unescape(out, str->p + 1, str->n - 2);
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
