/*
 * Growable byte buffers and arrays for the drivers (drv_support.h), allocated through the host.
 */
#include "drv_support.h"

#include <string.h>

#include "util/tu_json.h"

void drv_buf_init(drv_buf *b, const trifle_host_api *host, int *oom)
{
    b->p = NULL;
    b->len = b->cap = 0;
    b->host = host;
    b->oom = oom;
}

void drv_buf_free(drv_buf *b)
{
    if (b->p != NULL)
        b->host->free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int drv_buf_grow(drv_buf *b, size_t n)
{
    size_t cap = b->cap != 0 ? b->cap : 256;
    char *p;

    if (*b->oom)
        return -1;
    if (n > SIZE_MAX / 4 - b->len) {
        *b->oom = 1;
        return -1;
    }
    while (cap - b->len < n)
        cap *= 2;
    p = b->p != NULL ? b->host->realloc(b->p, cap) : b->host->alloc(cap);
    if (p == NULL) {
        *b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void drv_buf_put(drv_buf *b, const void *s, size_t n)
{
    if (n == 0)
        return;
    if (n > b->cap - b->len && drv_buf_grow(b, n) != 0)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void drv_buf_puts(drv_buf *b, const char *s)
{
    drv_buf_put(b, s, strlen(s));
}

void drv_buf_zero(drv_buf *b)
{
    if (b->len < b->cap || drv_buf_grow(b, 1) == 0)
        b->p[b->len] = '\0';
}

void drv_buf_put_utf8(drv_buf *b, unsigned u)
{
    char s[4];

    drv_buf_put(b, s, tu_utf8_put(s, u));
}

void drv_buf_put_jstr(drv_buf *b, const char *s, size_t n)
{
    size_t i, run = 0;

    drv_buf_putc(b, '"');
    for (i = 0; i < n; i++) {
        char esc[6];
        size_t esc_len = tu_json_escape_char(esc, (unsigned char)s[i]);

        if (esc_len == 0)
            continue;
        drv_buf_put(b, s + run, i - run);
        drv_buf_put(b, esc, esc_len);
        run = i + 1;
    }
    drv_buf_put(b, s + run, n - run);
    drv_buf_putc(b, '"');
}

void drv_buf_put_num(drv_buf *b, double v)
{
    char tmp[40];
    size_t n = b->host->format_double(tmp, v);

    drv_buf_put(b, tmp, n);
}

int drv_array_reserve(const trifle_host_api *host, void **p, size_t *cap, size_t want, size_t size)
{
    void *q;

    if (want <= *cap)
        return 0;
    if (want > SIZE_MAX / size)
        return -1;
    q = *p != NULL ? host->realloc(*p, want * size) : host->alloc(want * size);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = want;
    return 0;
}
