/* libFuzzer target for trifle__fmt_double (SPEC §4.5): its fast paths (integral values, short
 * decimals) must print exactly what the printf search prints. The input is read twice: as decimal
 * text (trifle__parse_double, when it parses) and, 8 bytes at a time, as raw doubles; each value,
 * its negation and its two neighbours are checked, and every output must read back to its value.
 * A mismatch abort()s. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "numfmt_int.h"

static void check_one(double v)
{
    char fast[40], ref[40];
    double back = 0;

    if (!isfinite(v))
        return;
    (void)trifle__fmt_double(fast, v);
    (void)trifle__fmt_double_reference(ref, v);
    if (strcmp(fast, ref) != 0) {
        fprintf(stderr, "%a: fast path %s, printf search %s\n", v, fast, ref);
        abort();
    }
    if (trifle__parse_double(fast, strlen(fast), &back) != 0 || (back != v && v != 0)) {
        fprintf(stderr, "%a: %s does not read back\n", v, fast);
        abort();
    }
}

static void check(double v)
{
    check_one(v);
    check_one(-v);
    check_one(nextafter(v, 0));
    check_one(nextafter(v, INFINITY));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    double v;
    size_t i;

    if (trifle__parse_double((const char *)data, size, &v) == 0)
        check(v);
    for (i = 0; i + sizeof(v) <= size; i += sizeof(v)) {
        memcpy(&v, data + i, sizeof(v));
        check(v);
    }
    return 0;
}
