/* The strict JSON lexer: RFC 8259 text in UTF-8, validated in one pass without allocating and
 * without recursion, with a reason and a byte offset for the first error. core/json.c runs it
 * before handing text to cJSON, the server validates request bodies with it and then walks the
 * text in place. Private to this tree (util/README.md). */
#ifndef TRIFLE_TU_JSON_H
#define TRIFLE_TU_JSON_H

#include <stddef.h>

#define TU_JSON_MAX_DEPTH 512 /* nested objects/arrays accepted */

/* tu_json_lex.flags */
#define TU_JSON_LAX_ESCAPES                                              \
    1u /* accept `\u0000` and unpaired surrogate escapes (decoded as NUL \
          and U+FFFD); without it they are errors */

/* One scan. Zero it, set s, len and (optionally) flags, number and ctx. */
typedef struct tu_json_lex {
    const char *s;
    size_t len;
    size_t i; /* next byte */
    unsigned flags;
    /* Called for each number literal s[at..at+len), in text order (may be NULL). */
    void (*number)(void *ctx, size_t at, size_t len);
    void *ctx;
    const char *reason; /* the first error ("unexpected end of input", "invalid UTF-8", ...) */
    size_t at;          /* its byte offset */
} tu_json_lex;

/* Skip JSON white space (space, tab, LF, CR) at lx->i. */
void tu_json_ws(tu_json_lex *lx);

/* Validate the string at lx->i (its opening quote) and move past its closing quote. Returns 0, or
 * -1 with lx->reason and lx->at set. */
int tu_json_string(tu_json_lex *lx);

/* Validate the number at lx->i: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; reported to
 * lx->number. Returns 0, or -1 with lx->reason set. */
int tu_json_number(tu_json_lex *lx);

/* Validate the whole text: one value with optional white space around it, containers nested at
 * most TU_JSON_MAX_DEPTH deep. Returns 0, or -1 with lx->reason and lx->at set. */
int tu_json_validate(tu_json_lex *lx);

/* Decode the body s[0..n) (between the quotes) of a string tu_json_string() accepted into out,
 * which has room for n bytes (an escape is never shorter than its UTF-8); unpaired surrogate
 * escapes become U+FFFD. Returns the decoded length. */
size_t tu_json_unescape(char *out, const char *s, size_t n);

/* The JSON escape of byte c into out[0..6): `\"` `\\` `\n` `\r` `\t` `\b` `\f`, other control
 * characters as `\u00XX`. Returns its length (2 or 6), or 0 when c needs no escape (every other
 * byte, including those of multi-byte UTF-8). */
size_t tu_json_escape_char(char out[6], unsigned char c);

#endif
