#include "error_int.h"

#include <stdio.h>
#include <string.h>

#include "trifle/common.h"

static const char *const names[] = {
    "OK",    "ERROR",     "ENOMEM", "EINVAL", "ENOTFOUND", "ENOTSUP", "ECONFIG", "ECONN",
    "EAUTH", "ETIMEDOUT", "EBUSY",  "EABI",   "EDRIVER",   "EDATA",   "ECLOSED", "EIO"};
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

int trifle__error_path(trifle_error *err, int code, const char *path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)trifle__verror(err, code, 0, fmt, ap);
    va_end(ap);
    if (err != NULL && path != NULL)
        tu_strlcpy_utf8(err->path, path, sizeof(err->path));
    return code;
}

const char *trifle_version(void)
{
    return TRIFLE_VERSION_STRING;
}
