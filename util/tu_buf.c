#include "tu_buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tu_json.h"
#include "tu_utf8.h"

int tu_buf_reserve(tu_buf *b, size_t n)
{
    size_t need, cap, got;
    char *p;

    if (b->failed)
        return -1;
    if (n > SIZE_MAX - b->len - 1)
        goto fail;
    need = b->len + n + 1;
    if (need <= b->cap && b->data != NULL) /* a NULL data has cap 0; said for the analyser */
        return 0;
    cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (b->ops != NULL) {
        p = b->ops->grow(b->ctx, b->data, b->len, cap, &got);
    } else {
        p = realloc(b->data, cap);
        got = cap;
    }
    if (p == NULL)
        goto fail;
    b->data = p;
    b->cap = got;
    return 0;
fail:
    b->failed = 1;
    return -1;
}

void tu_buf_append(tu_buf *b, const void *s, size_t n)
{
    if (tu_buf_reserve(b, n) != 0)
        return;
    if (n > 0)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void tu_buf_puts(tu_buf *b, const char *s)
{
    tu_buf_append(b, s, strlen(s));
}

void tu_buf_putc(tu_buf *b, char c)
{
    tu_buf_append(b, &c, 1);
}

void tu_buf_printf(tu_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if (tu_buf_reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void tu_buf_json_string(tu_buf *b, const char *s, size_t n, unsigned flags)
{
    size_t i = 0, start = 0;

    tu_buf_putc(b, '"');
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t elen, k;

        if (c >= 0x80 && (flags & TU_BUF_JSON_REPAIR)) {
            if ((k = tu_utf8_seq(s + i, n - i)) != 0) {
                i += k;
                continue;
            }
            tu_buf_append(b, s + start, i - start);
            tu_buf_append(b, "\xEF\xBF\xBD", 3);
            start = ++i;
            continue;
        }
        if ((elen = tu_json_escape_char(esc, c)) == 0) {
            i++;
            continue;
        }
        tu_buf_append(b, s + start, i - start);
        tu_buf_append(b, esc, elen);
        start = ++i;
    }
    tu_buf_append(b, s + start, n - start);
    tu_buf_putc(b, '"');
}

int tu_buf_failed(const tu_buf *b)
{
    return b->failed;
}

const char *tu_buf_cstr(tu_buf *b)
{
    if (tu_buf_reserve(b, 0) != 0)
        return NULL;
    b->data[b->len] = '\0';
    return b->data;
}

static void release(tu_buf *b)
{
    if (b->data == NULL)
        return;
    if (b->ops != NULL)
        b->ops->release(b->ctx, b->data);
    else
        free(b->data);
}

char *tu_buf_detach(tu_buf *b)
{
    char *p;

    if (b->failed) {
        tu_buf_free(b);
        return NULL;
    }
    if (b->data == NULL && tu_buf_reserve(b, 0) != 0)
        return NULL;
    b->data[b->len] = '\0';
    p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void tu_buf_reset(tu_buf *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

void tu_buf_free(tu_buf *b)
{
    release(b);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}
