/* Loading the test vectors (conformance/vectors, described in its README.md) for unit tests.
 * Tests load the files; they never copy expectations into the source. */
#ifndef TRIFLE_TEST_VECTORS_H
#define TRIFLE_TEST_VECTORS_H

#include <cjson/cJSON.h>

/* Parse <TRIFLE_VECTORS_DIR>/<name> (env TRIFLE_VECTORS_DIR overrides the compiled-in path).
 * Aborts the test program with a message when the file is missing or unparsable. */
cJSON *vectors_load(const char *name);

/* 1 when TRIFLE_TEST_LIGHT is set: the valgrind memcheck stage of scripts/test.sh sets it so
 * exhaustive sweeps run a representative slice (their full runs happen in the release and
 * sanitizer stages). */
int test_light(void);

#endif
