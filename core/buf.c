#include "buf_int.h"

#include <stdio.h>
#include <string.h>

#include "alloc_int.h"
#include "numfmt_int.h"

int trifle__buf_reserve(trifle__buf *b, size_t n)
{
    size_t need, cap;
    char *p;

    if (b->failed)
        return -1;
    if (n > SIZE_MAX - b->len - 1)
        goto fail;
    need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = trifle__realloc(b->data, cap);
    if (p == NULL)
        goto fail;
    b->data = p;
    b->cap = cap;
    return 0;
fail:
    b->failed = 1;
    return -1;
}

void trifle__buf_append(trifle__buf *b, const char *s, size_t n)
{
    if (trifle__buf_reserve(b, n) != 0)
        return;
    if (n > 0)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void trifle__buf_puts(trifle__buf *b, const char *s)
{
    trifle__buf_append(b, s, strlen(s));
}

void trifle__buf_putc(trifle__buf *b, char c)
{
    trifle__buf_append(b, &c, 1);
}

void trifle__buf_printf(trifle__buf *b, const char *fmt, ...)
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
    if (trifle__buf_reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void trifle__buf_json_string(trifle__buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, start = 0;

    trifle__buf_putc(b, '"');
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        size_t elen = 2;

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        trifle__buf_append(b, s + start, i - start);
        start = i + 1;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        trifle__buf_append(b, esc, elen);
    }
    trifle__buf_append(b, s + start, n - start);
    trifle__buf_putc(b, '"');
}

void trifle__buf_number(trifle__buf *b, double v)
{
    char tmp[40];
    size_t n = trifle__fmt_double(tmp, v);

    trifle__buf_append(b, tmp, n);
}

int trifle__buf_failed(const trifle__buf *b)
{
    return b->failed;
}

char *trifle__buf_detach(trifle__buf *b)
{
    char *p;

    if (b->failed) {
        trifle__buf_free(b);
        return NULL;
    }
    if (b->data == NULL && trifle__buf_reserve(b, 0) != 0)
        return NULL;
    b->data[b->len] = '\0';
    p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void trifle__buf_reset(trifle__buf *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

void trifle__buf_free(trifle__buf *b)
{
    trifle__free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}
