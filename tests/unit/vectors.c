#include "vectors.h"

#include <stdio.h>
#include <stdlib.h>

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

int test_light(void)
{
    const char *v = getenv("TRIFLE_TEST_LIGHT");

    return v != NULL && *v != '\0' && *v != '0';
}
