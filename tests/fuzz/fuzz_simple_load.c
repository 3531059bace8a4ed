/* Fuzz target for the Simple Stats persistence file reader (simple/simple_load.c): the file may be
 * left by a crash, a full disk or another program (INFINI), so the reader must never crash and
 * must keep its promises. Built as a libFuzzer target with TRIFLE_BUILD_FUZZ (clang) and as a
 * replay of corpus/simple_load/ under ctest. Besides memory errors it checks:
 * - success gives sorted, unique, valid names and kinds 0/1, and format 1 or 2;
 * - failure gives TRIFLE_EINVAL (or ENOMEM) with a message and an empty result;
 * - what was read, written back as a version-2 document, reads back identically (round trip). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf_int.h"
#include "fuzz.h"
#include "simple_int.h"

static int item_cmp(const trifle__simple_item *a, const trifle__simple_item *b)
{
    int c = strcmp(a->category, b->category);
    return c != 0 ? c : strcmp(a->name, b->name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    trifle__simple_file f, g;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle__buf b = TRIFLE__BUF_INIT;
    size_t i;
    int rc;

    if (size > 1 << 20)
        return 0;
    rc = trifle__simple_file_parse(&f, (const char *)data, size, &err);
    if (rc != 0) {
        CHECK(rc == TRIFLE_EINVAL || rc == TRIFLE_ENOMEM);
        CHECK(err.code == rc && err.message[0] != '\0');
        CHECK(f.items == NULL && f.n == 0);
        return 0;
    }
    CHECK(f.format == 1 || f.format == 2);
    for (i = 0; i < f.n; i++) {
        CHECK(trifle__simple_name_check(f.items[i].category, NULL) == 0);
        CHECK(trifle__simple_name_check(f.items[i].name, NULL) == 0);
        CHECK(f.items[i].kind == TRIFLE_SIMPLE_COUNTER || f.items[i].kind == TRIFLE_SIMPLE_GAUGE);
        CHECK(f.format == 2 || f.items[i].kind == TRIFLE_SIMPLE_COUNTER);
        if (i > 0)
            CHECK(item_cmp(&f.items[i - 1], &f.items[i]) < 0);
    }
    trifle__simple_file_write(&b, f.items, f.n);
    CHECK(!trifle__buf_failed(&b));
    rc = trifle__simple_file_parse(&g, b.data, b.len, &err);
    CHECK(rc == 0 && g.format == 2 && g.n == f.n);
    for (i = 0; i < f.n; i++) {
        CHECK(item_cmp(&f.items[i], &g.items[i]) == 0);
        CHECK(f.items[i].value == g.items[i].value && f.items[i].kind == g.items[i].kind);
    }
    trifle__simple_file_free(&g);
    trifle__simple_file_free(&f);
    trifle__buf_free(&b);
    return 0;
}
