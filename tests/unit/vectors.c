#include "vectors.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

cJSON *vectors;

cJSON *vectors_load(const char *name)
{
    const char *dir = getenv("TRIFLE_VECTORS_DIR");
    char path[4096];
    FILE *f;
    long size;
    char *text;
    cJSON *doc;

    if (dir == NULL || *dir == '\0')
        dir = TRIFLE_VECTORS_DIR;
    (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot open vector file %s\n", path);
        exit(1);
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    text = malloc((size_t)size + 1);
    if (text == NULL || fread(text, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    text[size] = '\0';
    fclose(f);
    doc = cJSON_Parse(text);
    free(text);
    if (doc == NULL) {
        fprintf(stderr, "cannot parse %s\n", path);
        exit(1);
    }
    return doc;
}

int vectors_teardown(void **state)
{
    (void)state;
    cJSON_Delete(vectors);
    vectors = NULL;
    return 0;
}

int vectors_run(const char *name, int (*check)(const cJSON *c))
{
    int failures = 0, count = 0;
    const cJSON *c;

    cJSON_ArrayForEach (c, vector_get(vectors, name)) {
        count++;
        failures += check(c);
    }
    print_message("%s vectors: %d, failures: %d\n", name, count, failures);
    assert_true(count > 0);
    assert_int_equal(failures, 0);
    return count;
}

int vectors_setup_packer(void **state)
{
    (void)state;
    vectors = vectors_load("packer.json");
    return 0;
}

const cJSON *vector_get(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

const char *vector_str(const cJSON *o, const char *key)
{
    const cJSON *v = vector_get(o, key);

    if (!cJSON_IsString(v))
        fail_msg("vector field %s is not a string", key);
    return v->valuestring;
}

double vector_num(const cJSON *o, const char *key)
{
    const cJSON *v = vector_get(o, key);

    if (!cJSON_IsNumber(v))
        fail_msg("vector field %s is not a number", key);
    return v->valuedouble;
}

int64_t vector_int(const cJSON *o, const char *key)
{
    return (int64_t)vector_num(o, key);
}

int test_light(void)
{
    const char *v = getenv("TRIFLE_TEST_LIGHT");

    return v != NULL && *v != '\0' && *v != '0';
}
