/* Growable text buffers on the byte pools, JSON string output, UTF-8 checks, errors and logging. */
#include "srv_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------- */
/* Errors and log lines                                                                         */

void srv_log(int level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    char line[1200];
    int n, m;
    va_list ap;

    n = snprintf(line, sizeof(line),
                 "trifle serve: %s: ", names[level >= 0 && level <= 3 ? level : 0]);
    if (n < 0)
        return;
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    n += m;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    /* one write(2): concurrent lines do not interleave */
    while (write(STDERR_FILENO, line, (size_t)n) < 0 && errno == EINTR) {
    }
}

int64_t srv_now(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

int64_t srv_monotonic_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------------------------- */
/* Buffers                                                                                      */

void srv_buf_init(srv_buf *b, srv_pool *pool)
{
    b->pool = pool;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = 0;
}

int srv_buf_reserve(srv_buf *b, size_t extra)
{
    size_t need;
    char *p;

    if (b->failed)
        return -1;
    if (extra > SIZE_MAX - b->len - 1) {
        b->failed = 1;
        return -1;
    }
    need = b->len + extra + 1; /* room for a NUL terminator */
    if (need <= b->cap)
        return 0;
    p = b->data == NULL ? srv_pool_acquire(b->pool, need, &b->cap)
                        : srv_pool_grow(b->data, need, &b->cap);
    if (p == NULL) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    return 0;
}

void srv_buf_append(srv_buf *b, const void *s, size_t n)
{
    if (srv_buf_reserve(b, n) != 0)
        return;
    if (n > 0)
        memcpy(b->data + b->len, s, n);
    b->len += n;
}

void srv_buf_puts(srv_buf *b, const char *s)
{
    srv_buf_append(b, s, strlen(s));
}

void srv_buf_putc(srv_buf *b, char c)
{
    if (srv_buf_reserve(b, 1) != 0)
        return;
    b->data[b->len++] = c;
}

void srv_buf_uint(srv_buf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    srv_buf_append(b, tmp + i, sizeof(tmp) - i);
}

void srv_buf_int(srv_buf *b, int64_t v)
{
    if (v < 0) {
        srv_buf_putc(b, '-');
        srv_buf_uint(b, (uint64_t)0 - (uint64_t)v);
    } else {
        srv_buf_uint(b, (uint64_t)v);
    }
}

const char *srv_buf_cstr(srv_buf *b)
{
    if (srv_buf_reserve(b, 0) != 0)
        return NULL;
    b->data[b->len] = '\0';
    return b->data;
}

void srv_buf_release(srv_buf *b)
{
    srv_pool_release(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

/* ------------------------------------------------------------------------------------------- */
/* UTF-8 and JSON strings                                                                       */

void srv_buf_json_string(srv_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run;

    srv_buf_putc(b, '"');
    while (i < n) {
        /* copy the longest run that needs no escaping at once */
        run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            srv_buf_append(b, p + i, run - i);
            i = run;
            continue;
        }
        if (p[i] >= 0x80) {
            size_t k = tu_utf8_seq(s + i, n - i);
            if (k == 0) {
                srv_buf_append(b, "\xEF\xBF\xBD", 3);
                i++;
            } else {
                srv_buf_append(b, p + i, k);
                i += k;
            }
            continue;
        }
        switch (p[i]) {
        case '"':
            srv_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            srv_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            srv_buf_append(b, "\\n", 2);
            break;
        case '\r':
            srv_buf_append(b, "\\r", 2);
            break;
        case '\t':
            srv_buf_append(b, "\\t", 2);
            break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[p[i] >> 4], hex[p[i] & 15]};
            srv_buf_append(b, u, 6);
            break;
        }
        }
        i++;
    }
    srv_buf_putc(b, '"');
}

void srv_buf_json_cstr(srv_buf *b, const char *s)
{
    if (s == NULL)
        srv_buf_puts(b, "null");
    else
        srv_buf_json_string(b, s, strlen(s));
}
