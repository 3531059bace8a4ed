/* Canonical number text (SPEC §4.5) and locale-independent number parsing. Never installed. */
#ifndef TRIFLE_NUMFMT_INT_H
#define TRIFLE_NUMFMT_INT_H

#include <stddef.h>

/* Write v as ECMAScript Number::toString text into buf (>= 32 bytes), NUL-terminated; returns the
 * length. -0 gives "0"; NaN/Inf give "null" (callers never pass them). Locale-independent. */
size_t trifle__fmt_double(char *buf, double v);

/* trifle__fmt_double without its fast paths (integral values, short decimals): every digit string
 * comes from the printf search. Same output by contract; the tests hold one against the other. */
size_t trifle__fmt_double_reference(char *buf, double v);

/* Parse the whole of text[0..len) as a JSON-ish decimal number
 * `[+-]digits[.digits][(e|E)[+-]digits]` (also `.5`, `5.`), locale-independently. Returns 0 with a
 * finite *out, or -1 (syntax or overflow to infinity). */
int trifle__parse_double(const char *text, size_t len, double *out);

/* Plain positional text for designators (SPEC §8.7): shortest round-trip digits, never an exponent,
 * no trailing ".0". Returns the length; buf needs >= 400 bytes. */
size_t trifle__fmt_plain(char *buf, size_t size, double v);

#endif
