#include "tu_hex.h"

int tu_hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        int d = tu_hex_value((unsigned char)s[i]);
        if (d < 0)
            return -1;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return 0;
}

int tu_hex_decode(unsigned char *out, const char *hex, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        int hi = tu_hex_value((unsigned char)hex[2 * i]), lo;
        if (hi < 0 || (lo = tu_hex_value((unsigned char)hex[2 * i + 1])) < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int tu_pct_decode(char *out, size_t *out_len, const char *s, size_t n, unsigned flags)
{
    size_t i, o = 0;
    int rc = TU_PCT_OK;

    for (i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 1 < n ? tu_hex_value((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? tu_hex_value((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                if (!(flags & TU_PCT_LENIENT))
                    return TU_PCT_BAD_ESCAPE;
                if (rc == TU_PCT_OK)
                    rc = TU_PCT_BAD_ESCAPE;
                out[o++] = s[i];
                continue;
            }
            if (hi == 0 && lo == 0) {
                if (!(flags & TU_PCT_LENIENT))
                    return TU_PCT_NUL;
                if (rc == TU_PCT_OK)
                    rc = TU_PCT_NUL;
            }
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if ((flags & TU_PCT_PLUS) && s[i] == '+') {
            out[o++] = ' ';
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    if (out_len != NULL)
        *out_len = o;
    return rc;
}

size_t tu_pct_encode_char(char out[3], unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";

    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
        out[0] = (char)c;
        return 1;
    }
    out[0] = '%';
    out[1] = hex[c >> 4];
    out[2] = hex[c & 15];
    return 3;
}
