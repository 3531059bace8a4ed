#include "tu_error.h"

#undef tu_error_set /* the analyser's spelling (tu_error.h) is for callers only */

#include <stdio.h>
#include <string.h>

void tu_strlcpy_utf8(char *dst, const char *src, size_t n)
{
    static const char ellipsis[] = "\xE2\x80\xA6"; /* U+2026 */
    size_t len, cut;

    if (n == 0)
        return;
    len = strlen(src);
    if (len < n) {
        memcpy(dst, src, len + 1);
        return;
    }
    if (n < sizeof(ellipsis)) {
        dst[0] = '\0';
        return;
    }
    cut = n - sizeof(ellipsis); /* room for the ellipsis and the NUL */
    while (cut > 0 && ((unsigned char)src[cut] & 0xC0) == 0x80)
        cut--; /* never split a multi-byte character */
    memcpy(dst, src, cut);
    memcpy(dst + cut, ellipsis, sizeof(ellipsis));
}

int tu_error_vset(trifle_error *err, int code, int native, const char *fmt, va_list ap)
{
    char tmp[1024];

    if (err == NULL)
        return code;
    (void)vsnprintf(tmp, sizeof(tmp), fmt, ap);
    err->code = code;
    err->native = native;
    err->driver[0] = '\0';
    err->path[0] = '\0';
    tu_strlcpy_utf8(err->message, tmp, sizeof(err->message));
    return code;
}

int tu_error_set(trifle_error *err, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)tu_error_vset(err, code, 0, fmt, ap);
    va_end(ap);
    return code;
}
