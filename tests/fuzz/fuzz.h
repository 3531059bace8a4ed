/* What the fuzz targets share: the libFuzzer entry point that each fuzz_<name>.c defines and
 * replay.c calls, and CHECK(), which aborts when a promise of the code under test is broken (the
 * fuzzer and the replay both report an abort as a failure). */
#ifndef TRIFLE_TEST_FUZZ_H
#define TRIFLE_TEST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)  \
    do {             \
        if (!(cond)) \
            abort(); \
    } while (0)

#endif
