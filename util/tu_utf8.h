/* UTF-8 validation and encoding (RFC 3629), shared by core, the server, the CLI and the drivers.
 * Private to this tree (util/README.md). */
#ifndef TRIFLE_TU_UTF8_H
#define TRIFLE_TU_UTF8_H

#include <stddef.h>

/* Length (1-4) of the well-formed UTF-8 sequence at s[0..n) (n > 0), or 0 when it is not well
 * formed: no overlong forms, no surrogates, nothing above U+10FFFF. */
size_t tu_utf8_seq(const char *s, size_t n);

/* 1 when s[0..n) is well-formed UTF-8 throughout (NUL bytes included), else 0. */
int tu_utf8_valid(const char *s, size_t n);

/* Write code point cp (at most U+10FFFF; surrogates are written as they are) as UTF-8 into
 * out[0..4) and return its length, 1 to 4. */
size_t tu_utf8_put(char *out, unsigned long cp);

/* The number of characters (code points) of the NUL-terminated s: its bytes that do not continue
 * a sequence (10xxxxxx), which for well-formed UTF-8 is its length in characters. */
size_t tu_utf8_count(const char *s);

#endif
