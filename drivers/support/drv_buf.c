/*
 * Growable byte buffers and arrays for the drivers (drv_support.h), allocated through the host.
 *
 * drv_buf is the kit's stable face (its fields are used by name in every driver and in
 * third-party plugins); the growth and the JSON string writer are util/tu_buf's, run on a tu_buf
 * view of the same bytes that allocates through the host. What stays here is what tu_buf does not
 * have: the owner's shared `oom` flag and the inline append of drv_buf_putc().
 */
#include "drv_support.h"

#include <string.h>

#include "util/tu_buf.h"

static char *host_grow(void *ctx, char *data, size_t len, size_t need, size_t *cap)
{
    const trifle_host_api *host = ctx;
    char *p = data != NULL ? host->realloc(data, need) : host->alloc(need);

    (void)len;
    if (p != NULL)
        *cap = need;
    return p;
}

static void host_release(void *ctx, char *data)
{
    ((const trifle_host_api *)ctx)->free(data);
}

static const tu_buf_ops host_ops = {host_grow, host_release};

/* b's bytes as a tu_buf that allocates through b->host. */
static tu_buf view(const drv_buf *b)
{
    tu_buf t = TU_BUF_INIT(&host_ops, (void *)b->host);

    t.data = b->p;
    t.len = b->len;
    t.cap = b->cap;
    return t;
}

/* Take t's bytes back into b; a failed append sets the owner's flag. Returns 0 or -1. */
static int store(drv_buf *b, const tu_buf *t)
{
    b->p = t->data;
    b->len = t->len;
    b->cap = t->cap;
    if (!tu_buf_failed(t))
        return 0;
    *b->oom = 1;
    return -1;
}

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
    tu_buf t = view(b);

    if (*b->oom)
        return -1;
    (void)tu_buf_reserve(&t, n);
    return store(b, &t);
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
    tu_buf t = view(b);

    if (*b->oom)
        return;
    tu_buf_json_string(&t, s, n, 0);
    (void)store(b, &t);
}

void drv_buf_put_num(drv_buf *b, double v)
{
    char tmp[40];
    size_t n = b->host->format_double(tmp, v);

    drv_buf_put(b, tmp, n);
}

void drv_buf_put_members(drv_buf *b, drv_buf *scratch, const char *prefix,
                         const trifle_leaf *leaves, size_t n, drv_key_fn key)
{
    size_t i, plen = strlen(prefix);

    for (i = 0; i < n; i++) {
        if (i > 0)
            drv_buf_putc(b, ',');
        if (plen == 0) {
            key(b, leaves[i].path, strlen(leaves[i].path));
        } else {
            scratch->len = 0;
            drv_buf_put(scratch, prefix, plen);
            drv_buf_puts(scratch, leaves[i].path);
            key(b, scratch->p, scratch->len);
        }
        drv_buf_putc(b, ':');
        drv_buf_put_num(b, leaves[i].value);
    }
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
