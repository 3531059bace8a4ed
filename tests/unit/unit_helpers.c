/* See unit_helpers.h. */
#include "unit_helpers.h"

#include <dirent.h>
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

trifle_payload *test_payload(const char *json)
{
    trifle_payload *p = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;

    if (trifle_payload_parse(&p, json, strlen(json), &err) != 0)
        fail_msg("payload %s: %s", json, err.message);
    return p;
}

const char *const test_buffer_manual[] = {"buffer.async",
                                          "false",
                                          "buffer.size",
                                          "100000",
                                          "buffer.retry_initial_ms",
                                          "1",
                                          "buffer.retry_max_ms",
                                          "20",
                                          "buffer.close_timeout_ms",
                                          "200",
                                          NULL};

void test_config_set(trifle_config *cfg, const char *const *opts)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    size_t i;

    for (i = 0; opts != NULL && opts[i] != NULL; i += 2)
        if (trifle_config_set(cfg, opts[i], opts[i + 1], &err) != 0)
            fail_msg("%s=%s: %s", opts[i], opts[i + 1], err.message);
}

trifle_config *test_config(const char *driver, const char *const *opts)
{
    trifle_config *cfg = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;

    assert_int_equal(trifle_config_new(&cfg, &err), 0);
    test_config_set(cfg, (const char *const[]){"driver", driver, NULL});
    test_config_set(cfg, opts);
    return cfg;
}

void test_decimal_comma_locale(void)
{
    if (setlocale(LC_NUMERIC, "de_DE.UTF-8") == NULL &&
        setlocale(LC_NUMERIC, "de_DE.utf8") == NULL) {
        print_message("SKIP locale check: no de_DE.UTF-8 locale (apt-get install locales)\n");
        skip();
    }
}

char *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    (void)fclose(f);
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

#define MAX_ZONES 32
static trifle_zone *zones[MAX_ZONES];
static size_t n_zones;

const trifle_zone *test_zone(const char *name)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_zone *z = NULL;
    size_t i;

    for (i = 0; i < n_zones; i++)
        if (strcmp(trifle_zone_name(zones[i]), name) == 0)
            return zones[i];
    if (trifle_zone_open(&z, name, &err) != 0)
        fail_msg("cannot open zone %s: %s", name, err.message);
    assert_true(n_zones < MAX_ZONES);
    zones[n_zones++] = z;
    return z;
}

int test_zones_free(void **state)
{
    (void)state;
    while (n_zones > 0)
        trifle_zone_free(zones[--n_zones]);
    return 0;
}

uint64_t test_xorshift(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

int test_mkdtemp(char *out, size_t size, const char *name)
{
    (void)snprintf(out, size, "/tmp/trifle_%s_XXXXXX", name);
    return mkdtemp(out) == NULL ? -1 : 0;
}

void test_rm_rf(const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *e;

    if (lstat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        (void)unlink(path);
        return;
    }
    (void)chmod(path, 0700);
    if ((d = opendir(path)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            char child[1024];
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            (void)snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
            test_rm_rf(child);
        }
        (void)closedir(d);
    }
    (void)rmdir(path);
}
