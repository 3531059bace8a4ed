#include "driver_host.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error_int.h"
#include "numfmt_int.h"

const char *test_host_driver = "";
long alloc_count, alloc_fail_at;
int log_warn, log_info;

static void *h_alloc(size_t size)
{
    if (alloc_fail_at > 0 && ++alloc_count == alloc_fail_at)
        return NULL;
    return malloc(size);
}

static void *h_realloc(void *p, size_t size)
{
    if (alloc_fail_at > 0 && ++alloc_count == alloc_fail_at)
        return NULL;
    return realloc(p, size);
}

static void h_free(void *p)
{
    free(p);
}

static void h_error_set(trifle_error *err, int code, int native, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)trifle__verror(err, code, native, fmt, ap);
    va_end(ap);
    if (err != NULL)
        (void)snprintf(err->driver, sizeof(err->driver), "%s", test_host_driver);
}

static void h_log(int level, const char *driver, const char *fmt, ...)
{
    (void)driver;
    (void)fmt;
    if (level == TRIFLE_LOG_WARN)
        log_warn++;
    else if (level == TRIFLE_LOG_INFO)
        log_info++;
}

static int h_emit(trifle_sink *s, size_t index, const char *path, double value)
{
    sink_bucket *b;
    size_t i;

    assert_true(index < s->n);
    assert_true(isfinite(value));
    assert_true(path[0] != '\0');
    s->emits++;
    b = &s->b[index];
    for (i = 0; i < b->n; i++) {
        if (strcmp(b->l[i].path, path) == 0) {
            b->l[i].value += value;
            return 0;
        }
    }
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 4;
        b->l = realloc(b->l, b->cap * sizeof(*b->l));
        assert_non_null(b->l);
    }
    b->l[b->n].path = strdup(path);
    b->l[b->n].value = value;
    b->n++;
    return 0;
}

static size_t h_format_double(char *buf, double v)
{
    return trifle__fmt_double(buf, v);
}

static int h_parse_double(const char *text, size_t len, double *out)
{
    return trifle__parse_double(text, len, out) == 0 ? 0 : TRIFLE_EINVAL;
}

const trifle_host_api test_host = {
    TRIFLE_DRIVER_ABI_MAJOR,
    TRIFLE_DRIVER_ABI_MINOR,
    sizeof(trifle_host_api),
    h_alloc,
    h_realloc,
    h_free,
    h_error_set,
    h_log,
    h_emit,
    h_format_double,
    h_parse_double,
};

const trifle_driver *test_host_load(const char *path, const char *name, void **handle)
{
    char symbol[128];
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_driver_init_fn init;
    const trifle_driver *drv = NULL;
    void *dl, *sym;

    if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
        fprintf(stderr, "dlopen %s: %s (is the plugin built?)\n", path, dlerror());
        return NULL;
    }
    (void)snprintf(symbol, sizeof(symbol), "trifle_driver_%s_init", name);
    if ((sym = dlsym(dl, symbol)) == NULL) {
        fprintf(stderr, "%s exports no %s\n", path, symbol);
        return NULL;
    }
    memcpy(&init, &sym, sizeof(init)); /* object → function pointer, the POSIX way */
    if (init(&test_host, &drv, &err) != 0 || drv == NULL) {
        fprintf(stderr, "%s failed: %s\n", symbol, err.message);
        return NULL;
    }
    if (handle != NULL)
        *handle = dl;
    return drv;
}

int test_host_open(const trifle_driver *drv, trifle_conn **out, const char *url, int mode,
                   const char *separator, const char *const *opts, trifle_error *err)
{
    static const char *const names[] = {"full", "partial", "separated"};
    static const char *const none[] = {NULL};
    trifle_open_params params;
    const char *sopts[136];
    size_t n = 0;

    if (separator == NULL)
        separator = "::";
    if (opts == NULL)
        opts = none;
    if (drv->open_params != NULL) {
        params.struct_size = sizeof(params);
        params.id_mode = mode;
        params.separator = separator;
        return drv->open_params(out, &test_host, url, &params, opts, err);
    }
    sopts[n++] = "trifle.joined";
    sopts[n++] = mode >= 0 && mode <= TRIFLE_ID_SEPARATED ? names[mode] : "invalid";
    sopts[n++] = "trifle.separator";
    sopts[n++] = separator;
    while (*opts != NULL && n < sizeof(sopts) / sizeof(sopts[0]) - 1)
        sopts[n++] = *opts++;
    if (*opts != NULL) {
        fprintf(stderr, "test_host_open: too many options\n");
        abort();
    }
    sopts[n] = NULL;
    return drv->open(out, &test_host, url, sopts, err);
}

trifle_sink *sink_new(size_t n)
{
    trifle_sink *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    s->n = n;
    s->b = calloc(n ? n : 1, sizeof(*s->b));
    assert_non_null(s->b);
    return s;
}

void sink_free(trifle_sink *s)
{
    size_t i, j;

    if (s == NULL)
        return;
    for (i = 0; i < s->n; i++) {
        for (j = 0; j < s->b[i].n; j++)
            free(s->b[i].l[j].path);
        free(s->b[i].l);
    }
    free(s->b);
    free(s);
}

double sink_value(const trifle_sink *s, size_t index, const char *path)
{
    size_t i;

    for (i = 0; i < s->b[index].n; i++)
        if (strcmp(s->b[index].l[i].path, path) == 0)
            return s->b[index].l[i].value;
    fail_msg("bucket %zu has no leaf \"%s\"", index, path);
    return NAN;
}

int sink_has(const trifle_sink *s, size_t index, const char *path)
{
    size_t i;

    for (i = 0; i < s->b[index].n; i++)
        if (strcmp(s->b[index].l[i].path, path) == 0)
            return 1;
    return 0;
}

size_t sink_count(const trifle_sink *s, size_t index)
{
    return s->b[index].n;
}
