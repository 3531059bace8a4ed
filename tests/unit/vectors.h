/* Loading the test vectors (conformance/vectors, described in its README.md) for unit tests.
 * Tests load the files; they never copy expectations into the source. */
#ifndef TRIFLE_TEST_VECTORS_H
#define TRIFLE_TEST_VECTORS_H

#include <cjson/cJSON.h>
#include <stdint.h>

/* Parse <TRIFLE_VECTORS_DIR>/<name> (env TRIFLE_VECTORS_DIR overrides the compiled-in path).
 * Aborts the test program with a message when the file is missing or unparsable. */
cJSON *vectors_load(const char *name);

/* The vector file of a program driven by one: its group setup loads it with vectors_load() and
 * vectors_teardown frees it. */
extern cJSON *vectors;

/* A cmocka group teardown: frees `vectors` (NULL is fine). */
int vectors_teardown(void **state);

/* Run @p check over every case of the section @p name of `vectors`; @p check returns the number
 * of its failures (printing each) or fails the test itself. The section must have cases and no
 * case may fail. Returns the number of cases. */
int vectors_run(const char *name, int (*check)(const cJSON *c));

/* A cmocka group setup that loads packer.json into `vectors`. */
int vectors_setup_packer(void **state);

/* Member @p key of the vector object @p o (NULL when absent). */
const cJSON *vector_get(const cJSON *o, const char *key);

/* The string member @p key of @p o; fails the test, naming the key, when it is not a string. */
const char *vector_str(const cJSON *o, const char *key);

/* The number member @p key of @p o; fails the test, naming the key, when it is not a number. */
double vector_num(const cJSON *o, const char *key);

/* vector_num() as a whole number (instants, amounts). */
int64_t vector_int(const cJSON *o, const char *key);

/* 1 when TRIFLE_TEST_LIGHT is set: the valgrind memcheck stage of scripts/test.sh sets it so
 * exhaustive sweeps run a representative slice (their full runs happen in the release and
 * sanitizer stages). */
int test_light(void);

#endif
