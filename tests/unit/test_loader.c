/* Plugin loader: search order (driver_path, TRIFLE_DRIVER_PATH, trifle_driver_dir_add(), installed
 * directory, explicit paths), name rules, caching, not-found and dlopen messages,
 * trifle_plugins_list, the host API. Copies of the fake driver in temporary directories tell the
 * search steps apart: dladdr() on a member of the loaded table names the file it came from. */
#define _GNU_SOURCE /* dladdr */
#include "loader_int.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "trifle/storage.h"

#define FAKE_SO TRIFLE_TEST_PLUGIN_DIR "/trifle_fake.so"

static char dir_a[64], dir_b[64], dir_c[64];

static void copy_file(const char *from, const char *to)
{
    char buf[65536];
    FILE *in = fopen(from, "rb"), *out;
    size_t n;

    assert_non_null(in);
    out = fopen(to, "wb");
    assert_non_null(out);
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    assert_int_equal(fclose(in), 0);
    assert_int_equal(fclose(out), 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static void path_in(char *buf, size_t size, const char *dir, const char *file)
{
    assert_true((size_t)snprintf(buf, size, "%s/%s", dir, file) < size);
}

/* The file a loaded driver's code lives in. */
static const char *loaded_from(const trifle_driver *d)
{
    static char where[1024];
    Dl_info info;
    void *addr;

    memcpy(&addr, &d->open, sizeof(addr));
    assert_true(dladdr(addr, &info) != 0);
    assert_non_null(info.dli_fname);
    (void)snprintf(where, sizeof(where), "%s", info.dli_fname);
    return where;
}

static void expect_from(const trifle_driver *d, const char *dir)
{
    char want[128];

    path_in(want, sizeof(want), dir, "trifle_fake.so");
    assert_string_equal(loaded_from(d), want);
}

static int setup_dirs(void **state)
{
    char path[128];

    (void)state;
    strcpy(dir_a, "/tmp/trifle_ldA_XXXXXX");
    strcpy(dir_b, "/tmp/trifle_ldB_XXXXXX");
    strcpy(dir_c, "/tmp/trifle_ldC_XXXXXX");
    if (mkdtemp(dir_a) == NULL || mkdtemp(dir_b) == NULL || mkdtemp(dir_c) == NULL)
        return -1;
    path_in(path, sizeof(path), dir_a, "trifle_fake.so");
    copy_file(FAKE_SO, path);
    path_in(path, sizeof(path), dir_b, "trifle_fake.so");
    copy_file(FAKE_SO, path);
    path_in(path, sizeof(path), dir_c, "trifle_fake.so");
    copy_file(FAKE_SO, path);
    /* noise the scanners must skip or report */
    path_in(path, sizeof(path), dir_a, "trifle_dir.so");
    if (mkdir(path, 0700) != 0)
        return -1;
    path_in(path, sizeof(path), dir_c, "trifle_junk.so");
    write_text(path, "not an ELF file\n");
    path_in(path, sizeof(path), dir_c, "trifle_Bad.so");
    write_text(path, "ignored: not a driver name\n");
    path_in(path, sizeof(path), dir_c, "libother.so");
    write_text(path, "ignored\n");
    return 0;
}

static void rm_in(const char *dir, const char *file)
{
    char path[128];

    path_in(path, sizeof(path), dir, file);
    (void)unlink(path);
}

static int teardown_dirs(void **state)
{
    char path[128];

    (void)state;
    trifle_shutdown();
    rm_in(dir_a, "trifle_fake.so");
    rm_in(dir_b, "trifle_fake.so");
    rm_in(dir_c, "trifle_fake.so");
    rm_in(dir_c, "trifle_junk.so");
    rm_in(dir_c, "trifle_Bad.so");
    rm_in(dir_c, "libother.so");
    path_in(path, sizeof(path), dir_a, "trifle_dir.so");
    (void)rmdir(path);
    (void)rmdir(dir_a);
    (void)rmdir(dir_b);
    (void)rmdir(dir_c);
    return 0;
}

/* Every test starts from an unloaded, unregistered state. */
static int reset(void **state)
{
    (void)state;
    trifle_shutdown();
    (void)unsetenv("TRIFLE_DRIVER_PATH");
    return 0;
}

static void test_search_order(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    const trifle_driver *d = NULL;
    char colon_list[256];

    (void)state;
    assert_int_equal(setenv("TRIFLE_DRIVER_PATH", dir_b, 1), 0);
    assert_int_equal(trifle_driver_dir_add(dir_c, &err), 0);

    /* 1. the caller's driver_path comes first */
    assert_int_equal(trifle_driver_load(&d, "fake", dir_a, &err), 0);
    expect_from(d, dir_a);

    /* 2. then TRIFLE_DRIVER_PATH */
    trifle_shutdown();
    assert_int_equal(trifle_driver_dir_add(dir_c, &err), 0);
    assert_int_equal(trifle_driver_load(&d, "fake", NULL, &err), 0);
    expect_from(d, dir_b);

    /* 3. then the registered directories */
    trifle_shutdown();
    assert_int_equal(unsetenv("TRIFLE_DRIVER_PATH"), 0);
    assert_int_equal(trifle_driver_dir_add(dir_c, &err), 0);
    assert_int_equal(trifle_driver_load(&d, "fake", NULL, &err), 0);
    expect_from(d, dir_c);

    /* empty entries of a colon list are skipped; a trailing slash is the same directory */
    trifle_shutdown();
    (void)snprintf(colon_list, sizeof(colon_list), "::/nonexistent/dir:%s/:", dir_b);
    assert_int_equal(setenv("TRIFLE_DRIVER_PATH", colon_list, 1), 0);
    assert_int_equal(trifle_driver_load(&d, "fake", "", &err), 0);
    expect_from(d, dir_b);
}

static void test_explicit_path(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    const trifle_driver *d = NULL, *again = NULL, *byname = NULL;
    char path[128];

    (void)state;
    assert_int_equal(setenv("TRIFLE_DRIVER_PATH", dir_b, 1), 0);
    /* a '/' makes it a file, whatever the search path says */
    path_in(path, sizeof(path), dir_c, "trifle_fake.so");
    assert_int_equal(trifle_driver_load(&d, path, dir_a, &err), 0);
    expect_from(d, dir_c);
    assert_string_equal(d->name, "fake");
    /* the same file again is the cached table */
    assert_int_equal(trifle_driver_load(&again, path, NULL, &err), 0);
    assert_ptr_equal(again, d);
    /* a name lookup is cached by name: the first "fake" loaded serves it */
    assert_int_equal(trifle_driver_load(&byname, "fake", NULL, &err), 0);
    assert_ptr_equal(byname, d);
    /* another file of the same name is its own plugin */
    path_in(path, sizeof(path), dir_a, "trifle_fake.so");
    assert_int_equal(trifle_driver_load(&again, path, NULL, &err), 0);
    assert_ptr_not_equal(again, d);
    expect_from(again, dir_a);
}

static void test_cache_and_table(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    const trifle_driver *d = NULL, *e = NULL;

    (void)state;
    assert_int_equal(trifle_driver_dir_add(dir_a, &err), 0);
    assert_int_equal(trifle_driver_dir_add(dir_a, &err), 0); /* duplicates are ignored */
    assert_int_equal(trifle_driver_load(&d, "fake", NULL, &err), 0);
    assert_int_equal(trifle_driver_load(&e, "fake", NULL, &err), 0);
    assert_ptr_equal(d, e);
    /* the core's validated copy */
    assert_int_equal(d->abi_major, TRIFLE_DRIVER_ABI_MAJOR);
    assert_int_equal(d->abi_minor, TRIFLE_DRIVER_ABI_MINOR);
    assert_string_equal(d->version, "1.0.0");
    assert_true((d->caps & TRIFLE_CAP_PING) != 0);
    assert_string_equal(d->schemes[0], "fake");
    assert_null(d->schemes[1]);
    assert_non_null(d->scan);
}

static void test_not_found(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    const trifle_driver *d = (const trifle_driver *)&err;
    char want[512], path[128];

    (void)state;
    assert_int_equal(setenv("TRIFLE_DRIVER_PATH", dir_b, 1), 0);
    assert_int_equal(trifle_driver_dir_add(dir_c, &err), 0);
    assert_int_equal(trifle_driver_load(&d, "nosuch", dir_a, &err), TRIFLE_ENOTFOUND);
    assert_null(d);
    assert_int_equal(err.code, TRIFLE_ENOTFOUND);
    /* every directory, in search order, ending with the installed directory */
    (void)snprintf(want, sizeof(want), "driver nosuch not found (searched: %s, %s, %s, ", dir_a,
                   dir_b, dir_c);
    assert_memory_equal(err.message, want, strlen(want));
    assert_string_equal(err.message + strlen(err.message) - 10, "/trifle-1)");

    /* a directory called trifle_dir.so is not a plugin */
    assert_int_equal(trifle_driver_load(&d, "dir", dir_a, &err), TRIFLE_ENOTFOUND);
    path_in(path, sizeof(path), dir_a, "trifle_dir.so");
    assert_int_equal(trifle_driver_load(&d, path, NULL, &err), TRIFLE_ENOTFOUND);
    (void)snprintf(want, sizeof(want), "driver dir: %s is not a regular file", path);
    assert_string_equal(err.message, want);

    /* a missing file given by path */
    assert_int_equal(trifle_driver_load(&d, "/nonexistent/trifle_gone.so", NULL, &err),
                     TRIFLE_ENOTFOUND);
    assert_string_equal(err.message,
                        "driver gone not found (searched: /nonexistent/trifle_gone.so)");
}

static void test_dlopen_failure(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    const trifle_driver *d = NULL;
    char want[512], path[128];

    (void)state;
    path_in(path, sizeof(path), dir_c, "trifle_junk.so");
    assert_int_equal(trifle_driver_load(&d, "junk", dir_c, &err), TRIFLE_EABI);
    /* the path once, then dlerror()'s reason, then the hint */
    (void)snprintf(want, sizeof(want), "driver junk: %s: ", path);
    assert_memory_equal(err.message, want, strlen(want));
    assert_null(strstr(err.message + strlen(want), path));
    assert_string_equal(err.message + strlen(err.message) - strlen(" (check with ldd)"),
                        " (check with ldd)");
}

static void test_names(void **state)
{
    static const char *const bad[] = {
        "Fake",       "1fake",
        "fa-ke",      "fa.ke",
        "_fake",      "fake ",
        "sqlite3.so", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    trifle_error err = TRIFLE_ERROR_INIT;
    const trifle_driver *d = NULL;
    char want[160];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(trifle_driver_load(&d, bad[i], NULL, &err), TRIFLE_ECONFIG);
        (void)snprintf(want, sizeof(want), "invalid driver name: %s", bad[i]);
        assert_string_equal(err.message, want);
        assert_false(trifle__driver_name_valid(bad[i]));
    }
    assert_true(trifle__driver_name_valid("a"));
    assert_true(trifle__driver_name_valid("my_store2"));
    assert_int_equal(trifle_driver_load(&d, "", NULL, &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_driver_load(&d, NULL, NULL, &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_driver_load(NULL, "fake", NULL, &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_driver_load(&d, "/tmp/libfake.so", NULL, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message,
                        "invalid driver file name: /tmp/libfake.so (expected trifle_<name>.so)");
    assert_int_equal(trifle_driver_load(&d, "./trifle_.so", NULL, &err), TRIFLE_ECONFIG);
    assert_int_equal(trifle_driver_dir_add("", &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_driver_dir_add(NULL, &err), TRIFLE_EINVAL);
}

static void test_exists(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    char name[64];

    (void)state;
    assert_int_equal(trifle__driver_exists("fake", NULL), 0);
    assert_int_equal(trifle__driver_exists("fake", dir_a), 1);
    assert_int_equal(trifle__driver_exists("dir", dir_a), 0); /* not a regular file */
    assert_int_equal(trifle__driver_exists("Fake", dir_a), 0);
    /* an unknown scheme resolves to a plugin of that name */
    assert_int_equal(trifle_driver_for_url(name, sizeof(name), "fake:db", &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "unknown driver: fake");
    assert_int_equal(trifle_driver_dir_add(dir_b, &err), 0);
    assert_int_equal(trifle_driver_for_url(name, sizeof(name), "fake:db", &err), 0);
    assert_string_equal(name, "fake");
}

static void test_plugins_list(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_plugin_info *list = NULL;
    char want[128];
    size_t n = 99;

    (void)state;
    assert_int_equal(trifle_driver_dir_add(dir_c, &err), 0);
    /* first occurrence wins: dir_b's fake hides dir_c's; sorted by name */
    assert_int_equal(trifle_plugins_list(&list, &n, dir_b, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "fake");
    path_in(want, sizeof(want), dir_b, "trifle_fake.so");
    assert_string_equal(list[0].path, want);
    assert_string_equal(list[0].version, "1.0.0");
    assert_int_equal(list[0].abi_major, 1);
    assert_int_equal(list[0].abi_minor, TRIFLE_DRIVER_ABI_MINOR);
    assert_true((list[0].caps & TRIFLE_CAP_MODE_SEPARATED) != 0);
    assert_string_equal(list[0].schemes, "fake");
    assert_string_equal(list[0].error, "");
    /* a broken plugin is listed with its load error */
    assert_string_equal(list[1].name, "junk");
    assert_string_equal(list[1].version, "");
    assert_memory_equal(list[1].error, "driver junk: ", 13);
    trifle_mem_free(list);

    /* nothing to list */
    trifle_shutdown();
    assert_int_equal(trifle_plugins_list(&list, &n, "/nonexistent", &err), 0);
    assert_int_equal(n, 0);
    assert_null(list);
    assert_int_equal(trifle_plugins_list(NULL, &n, NULL, &err), TRIFLE_EINVAL);
}

typedef struct load_race {
    const trifle_driver *got;
    int rc;
} load_race;

static void *race_load(void *arg)
{
    load_race *r = arg;

    r->rc = trifle_driver_load(&r->got, "fake", dir_a, NULL);
    return NULL;
}

static void test_concurrent_loads(void **state)
{
    pthread_t th[8];
    load_race r[8];
    size_t i;

    (void)state;
    for (i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race_load, &r[i]), 0);
    for (i = 0; i < 8; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (i = 0; i < 8; i++) {
        assert_int_equal(r[i].rc, 0);
        assert_ptr_equal(r[i].got, r[0].got); /* loaded and initialised once */
    }
}

static int logged_level;
static char logged_origin[32], logged_message[128];

static void capture_log(int level, const char *origin, const char *message, void *payload)
{
    (void)payload;
    logged_level = level;
    (void)snprintf(logged_origin, sizeof(logged_origin), "%s", origin);
    (void)snprintf(logged_message, sizeof(logged_message), "%s", message);
}

static void test_host_api(void **state)
{
    const trifle_host_api *h = trifle__host_api();
    trifle_error err = TRIFLE_ERROR_INIT;
    char buf[32], big[400];
    double v = 0;
    void *p;

    (void)state;
    assert_int_equal(h->abi_major, TRIFLE_DRIVER_ABI_MAJOR);
    assert_int_equal(h->abi_minor, TRIFLE_DRIVER_ABI_MINOR);
    assert_int_equal(h->struct_size, sizeof(trifle_host_api));
    p = h->alloc(10);
    assert_non_null(p);
    p = h->realloc(p, 100);
    assert_non_null(p);
    h->free(p);
    h->free(NULL);

    h->error_set(&err, TRIFLE_EDRIVER, 42, "table %s is %d%% full", "t", 99);
    assert_int_equal(err.code, TRIFLE_EDRIVER);
    assert_int_equal(err.native, 42);
    assert_string_equal(err.message, "table t is 99% full");
    h->error_set(NULL, TRIFLE_EDRIVER, 1, "ignored");
    /* long messages are cut on a UTF-8 boundary and end in "…" */
    memset(big, 'x', sizeof(big));
    memcpy(big + 250, "\xE2\x82\xAC\xE2\x82\xAC", 6);
    big[sizeof(big) - 1] = '\0';
    h->error_set(&err, TRIFLE_EDRIVER, 0, "%s", big);
    assert_true(strlen(err.message) <= 255);
    assert_memory_equal(err.message + strlen(err.message) - 3, "\xE2\x80\xA6", 3);
    assert_int_equal(strlen(err.message), 250 + 3);

    assert_int_equal(h->format_double(buf, 1e21), 5);
    assert_string_equal(buf, "1e+21");
    assert_int_equal(h->format_double(buf, -0.0), 1);
    assert_string_equal(buf, "0");
    assert_int_equal(h->parse_double("2.5e1", 5, &v), 0);
    assert_true(v == 25.0);
    assert_int_equal(h->parse_double("2.5x", 4, &v), TRIFLE_EINVAL);
    assert_int_equal(h->parse_double("1e999", 5, &v), TRIFLE_EINVAL);
    assert_int_equal(h->emit(NULL, 0, "a", 1), TRIFLE_EINVAL);

    trifle_set_log_handler(TRIFLE_LOG_DEBUG, capture_log, NULL);
    h->log(TRIFLE_LOG_WARN, "fake", "retrying %d times", 3);
    assert_int_equal(logged_level, TRIFLE_LOG_WARN);
    assert_string_equal(logged_origin, "fake");
    assert_string_equal(logged_message, "retrying 3 times");
    trifle_set_log_handler(TRIFLE_LOG_ERROR, NULL, NULL);
}

static void test_load_is_logged(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    const trifle_driver *d = NULL;
    char want[160];

    (void)state;
    logged_message[0] = '\0';
    trifle_set_log_handler(TRIFLE_LOG_INFO, capture_log, NULL);
    assert_int_equal(trifle_driver_load(&d, "fake", dir_a, &err), 0);
    trifle_set_log_handler(TRIFLE_LOG_ERROR, NULL, NULL);
    assert_int_equal(logged_level, TRIFLE_LOG_INFO);
    assert_string_equal(logged_origin, "core");
    (void)snprintf(want, sizeof(want), "loaded driver fake 1.0.0 (ABI 1.%d) from %s/trifle_fake.so",
                   TRIFLE_DRIVER_ABI_MINOR, dir_a);
    assert_string_equal(logged_message, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_search_order, reset),
        cmocka_unit_test_setup(test_explicit_path, reset),
        cmocka_unit_test_setup(test_cache_and_table, reset),
        cmocka_unit_test_setup(test_not_found, reset),
        cmocka_unit_test_setup(test_dlopen_failure, reset),
        cmocka_unit_test_setup(test_names, reset),
        cmocka_unit_test_setup(test_exists, reset),
        cmocka_unit_test_setup(test_plugins_list, reset),
        cmocka_unit_test_setup(test_concurrent_loads, reset),
        cmocka_unit_test_setup(test_host_api, reset),
        cmocka_unit_test_setup(test_load_is_logged, reset),
    };

    return cmocka_run_group_tests(tests, setup_dirs, teardown_dirs);
}
