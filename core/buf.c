/* libtrifle's string buffer (buf_int.h): util/tu_buf.c on the application's allocator. */
#include "buf_int.h"

#include "alloc_int.h"
#include "numfmt_int.h"

static char *buf_grow(void *ctx, char *data, size_t len, size_t need, size_t *cap)
{
    char *p = trifle__realloc(data, need);

    (void)ctx;
    (void)len;
    if (p != NULL)
        *cap = need;
    return p;
}

static void buf_release(void *ctx, char *data)
{
    (void)ctx;
    trifle__free(data);
}

const tu_buf_ops trifle__buf_ops = {buf_grow, buf_release};

void trifle__buf_number(trifle__buf *b, double v)
{
    char tmp[40];
    size_t n = trifle__fmt_double(tmp, v);

    tu_buf_append(b, tmp, n);
}
