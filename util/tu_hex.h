/* Hex digits and percent-decoding (RFC 3986 §2.1), shared by core, the server, the CLI and the
 * drivers. Nothing here allocates: callers bring the output buffer from their own allocator.
 * Private to this tree (util/README.md). */
#ifndef TRIFLE_TU_HEX_H
#define TRIFLE_TU_HEX_H

#include <stddef.h>

/* The value 0-15 of the hex digit c (either case), or -1 when c is not one. */
static inline int tu_hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The four hex digits at s[0..4) (the caller checked they are there) into *out. Returns 0, or -1
 * when one of them is not a hex digit (*out untouched). */
int tu_hex4(const char *s, unsigned *out);

/* Decode n hex digit pairs of hex[0..2n) into out[0..n). Returns 0, or -1 at the first byte that
 * is not a hex digit. */
int tu_hex_decode(unsigned char *out, const char *hex, size_t n);

/* tu_pct_decode() flags. */
#define TU_PCT_PLUS 1u    /* `+` decodes to a space (application/x-www-form-urlencoded) */
#define TU_PCT_LENIENT 2u /* a malformed escape is copied as it is and decoding goes on */

/* tu_pct_decode() results. */
#define TU_PCT_OK 0
#define TU_PCT_BAD_ESCAPE 1 /* `%` not followed by two hex digits */
#define TU_PCT_NUL 2        /* `%00`: a NUL byte, which a C string cannot carry */

/* Percent-decode s[0..n) into out, which has room for n + 1 bytes (the decoded text is never
 * longer); out is NUL-terminated and *out_len (may be NULL) gets its length. Returns TU_PCT_OK,
 * or the first problem found: without TU_PCT_LENIENT decoding stops there (out is then
 * unspecified); with it, a bad escape is copied literally, `%00` decodes to a NUL byte, and the
 * whole text is decoded all the same. */
int tu_pct_decode(char *out, size_t *out_len, const char *s, size_t n, unsigned flags);

/* Percent-encode byte c into out[0..3): RFC 3986's unreserved characters (ALPHA DIGIT - . _ ~)
 * stay as they are, every other byte becomes %XX (upper-case hex). Returns 1 or 3. */
size_t tu_pct_encode_char(char out[3], unsigned char c);

#endif
