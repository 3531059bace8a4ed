#include "error_int.h"

#include <stdio.h>
#include <string.h>

#include "trifle/common.h"

static const char *const names[] = {"OK",     "ERROR",   "ENOMEM",    "EINVAL", "ENOTFOUND",
                                    "ENOTSUP", "ECONFIG", "ECONN",     "EAUTH",  "ETIMEDOUT",
                                    "EBUSY",   "EABI",    "EDRIVER",   "EDATA",  "ECLOSED",
                                    "EIO"};
static const char *const texts[] = {"success",
                                    "unexpected internal failure",
                                    "out of memory",
                                    "invalid argument",
                                    "not found",
                                    "not supported by the driver",
                                    "configuration rejected",
                                    "cannot reach storage",
                                    "storage rejected the credentials",
                                    "storage timed out",
                                    "busy",
                                    "driver ABI mismatch",
                                    "storage error",
                                    "stored data prevents the write",
                                    "closed",
                                    "journal write failed"};

const char *trifle_strerror(int code)
{
    if (code > 0 || -code >= (int)(sizeof(texts) / sizeof(texts[0])))
        return "unknown error";
    return texts[-code];
}

const char *trifle_status_name(int code)
{
    if (code > 0 || -code >= (int)(sizeof(names) / sizeof(names[0])))
        return "ERROR";
    return names[-code];
}

void trifle_error_clear(trifle_error *err)
{
    if (err != NULL)
        memset(err, 0, sizeof(*err));
}

void trifle__strlcpy_utf8(char *dst, const char *src, size_t n)
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

int trifle__verror(trifle_error *err, int code, int native, const char *fmt, va_list ap)
{
    char tmp[1024];

    if (err == NULL)
        return code;
    (void)vsnprintf(tmp, sizeof(tmp), fmt, ap);
    err->code = code;
    err->native = native;
    err->driver[0] = '\0';
    err->path[0] = '\0';
    trifle__strlcpy_utf8(err->message, tmp, sizeof(err->message));
    return code;
}

int trifle__error(trifle_error *err, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)trifle__verror(err, code, 0, fmt, ap);
    va_end(ap);
    return code;
}

int trifle__error_path(trifle_error *err, int code, const char *path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)trifle__verror(err, code, 0, fmt, ap);
    va_end(ap);
    if (err != NULL && path != NULL)
        trifle__strlcpy_utf8(err->path, path, sizeof(err->path));
    return code;
}

const char *trifle_version(void)
{
    return TRIFLE_VERSION_STRING;
}
