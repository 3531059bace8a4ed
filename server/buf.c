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

static char *pool_grow(void *ctx, char *data, size_t len, size_t need, size_t *cap)
{
    (void)len;
    return data == NULL ? srv_pool_acquire(ctx, need, cap) : srv_pool_grow(data, need, cap);
}

static void pool_release(void *ctx, char *data)
{
    (void)ctx;
    srv_pool_release(data);
}

static const tu_buf_ops pool_ops = {pool_grow, pool_release};

void srv_buf_init(srv_buf *b, srv_pool *pool)
{
    *b = (srv_buf)TU_BUF_INIT(&pool_ops, pool);
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

/* ------------------------------------------------------------------------------------------- */
/* UTF-8 and JSON strings                                                                       */

void srv_buf_json_cstr(srv_buf *b, const char *s)
{
    if (s == NULL)
        srv_buf_puts(b, "null");
    else
        srv_buf_json_string(b, s, strlen(s));
}
