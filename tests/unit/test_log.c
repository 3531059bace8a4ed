/* core/log.c and core/alloc.c as libraries built on libtrifle use them (libtrifle-simple): messages
 * through trifle_log()/trifle_vlog() reach the one handler with libtrifle's own level filter, and
 * memory from trifle_mem_alloc()/trifle_mem_realloc() comes from the application's allocator and
 * goes back through trifle_mem_free(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "trifle/trifle.h"

typedef struct seen {
    int calls;
    int level;
    char origin[32];
    char message[2048];
} seen;

static void record(int level, const char *origin, const char *message, void *payload)
{
    seen *s = payload;

    s->calls++;
    s->level = level;
    strncpy(s->origin, origin, sizeof(s->origin) - 1);
    strncpy(s->message, message, sizeof(s->message) - 1);
}

static void vlog_through(int level, const char *origin, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    trifle_vlog(level, origin, fmt, ap);
    va_end(ap);
}

static void test_log_reaches_the_handler(void **state)
{
    seen s;

    (void)state;
    memset(&s, 0, sizeof(s));
    trifle_set_log_handler(TRIFLE_LOG_INFO, record, &s);
    trifle_log(TRIFLE_LOG_WARN, "simple", "save failed: %s (%d)", "disk full", 28);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.level, TRIFLE_LOG_WARN);
    assert_string_equal(s.origin, "simple");
    assert_string_equal(s.message, "save failed: disk full (28)");

    vlog_through(TRIFLE_LOG_INFO, NULL, "%d entries", 3);
    assert_int_equal(s.calls, 2);
    assert_string_equal(s.origin, "");
    assert_string_equal(s.message, "3 entries");

    /* above max_level: not delivered; a NULL format: nothing, no crash */
    trifle_log(TRIFLE_LOG_DEBUG, "simple", "detail %d", 1);
    vlog_through(TRIFLE_LOG_ERROR, "simple", NULL);
    assert_int_equal(s.calls, 2);

    /* messages are cut at 1023 bytes, as libtrifle's own */
    {
        char big[1500];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        trifle_log(TRIFLE_LOG_ERROR, "simple", "%s", big);
        assert_int_equal(s.calls, 3);
        assert_int_equal(strlen(s.message), 1023);
    }

    trifle_set_log_handler(0, NULL, NULL);
    trifle_log(TRIFLE_LOG_ERROR, "simple", "nobody listens");
    assert_int_equal(s.calls, 3);
}

static size_t mallocs, reallocs, frees;

static void *counting_malloc(size_t n)
{
    mallocs++;
    return malloc(n);
}

static void *counting_realloc(void *p, size_t n)
{
    reallocs++;
    return realloc(p, n);
}

static void counting_free(void *p)
{
    frees++;
    free(p);
}

static void test_mem_uses_the_allocator(void **state)
{
    static const trifle_allocator counting = {counting_malloc, counting_realloc, counting_free};
    char *p, *q;

    (void)state;
    trifle_set_allocator(&counting);
    p = trifle_mem_alloc(8);
    assert_non_null(p);
    memcpy(p, "trifle", 7);
    q = trifle_mem_realloc(p, 4096);
    assert_non_null(q);
    assert_string_equal(q, "trifle");
    trifle_mem_free(q);
    assert_int_equal(mallocs, 1);
    assert_int_equal(reallocs, 1);
    assert_int_equal(frees, 1);

    /* 0 bytes is still a block the allocator gave and takes back */
    p = trifle_mem_alloc(0);
    assert_non_null(p);
    trifle_mem_free(p);
    assert_int_equal(mallocs, 2);
    assert_int_equal(frees, 2);
    trifle_set_allocator(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_reaches_the_handler),
        cmocka_unit_test(test_mem_uses_the_allocator),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
