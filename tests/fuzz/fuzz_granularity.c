/* libFuzzer target for trifle_granularity_parse (SPEC §2.1). Whatever parses must round-trip its
 * label and give floors and timelines that keep the SPEC §2.5/§2.7 invariants, in UTC and in
 * Australia/Lord_Howe (30-minute shifts). Invariant failures abort(). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "nocturnal_int.h"
#include "trifle/time.h"

static const trifle_zone *zones[2];

static void open_zones(void)
{
    static trifle_zone *lord_howe;
    if (lord_howe == NULL && trifle_zone_open(&lord_howe, "Australia/Lord_Howe", NULL) != 0)
        abort();
    zones[0] = NULL; /* UTC */
    zones[1] = lord_howe;
}

/* Instants that matter: the range ends, Lord Howe's 2025 transitions and the seconds around them,
 * an ordinary instant. */
static const int64_t instants[] = {
    TRIFLE__TIME_MIN, TRIFLE__TIME_MIN + 1, TRIFLE__TIME_MAX, TRIFLE__TIME_MAX - 1,
    1743867000 - 1,   1743867000,           1743867000 + 1,   1743868800,
    1759591800 - 1,   1759591800,           1759591800 + 1,   1736937465,
};

static void check_floor(const trifle_zone *z, int ws, const trifle_granularity *g, int64_t x)
{
    int64_t b = 0, bb = 0;
    trifle_error err = TRIFLE_ERROR_INIT;
    int rc = trifle_floor(&b, z, ws, g, x, &err);
    if (rc != 0) {
        /* only `Ny` floors below year 1 may fail */
        if (rc != TRIFLE_EINVAL || g->unit != TRIFLE_UNIT_YEAR ||
            strcmp(err.message, "time out of range") != 0)
            abort();
        return;
    }
    if (b > x)
        abort();
    /* idempotent; a bucket start before 1900 (early on 1900-01-01 east of UTC) is no valid input */
    if (b >= TRIFLE__TIME_MIN && (trifle_floor(&bb, z, ws, g, b, NULL) != 0 || bb != b))
        abort();
    if (b > TRIFLE__TIME_MIN && x > b) {
        /* b .. x is one bucket: the instant before x floors to b as well */
        if (trifle_floor(&bb, z, ws, g, x - 1, NULL) != 0 || bb != b)
            abort();
    }
}

static void check_timeline(const trifle_zone *z, int ws, const trifle_granularity *g, int64_t from,
                           int64_t to)
{
    int64_t *pts = NULL, first, last;
    size_t n = 0;
    trifle_error err = TRIFLE_ERROR_INIT;
    int rc = trifle_timeline(&pts, &n, z, ws, g, from, to, 64, &err);
    if (rc != 0) {
        if (rc != TRIFLE_EINVAL || pts != NULL || n != 0)
            abort();
        return;
    }
    if (trifle_floor(&first, z, ws, g, from, NULL) != 0 ||
        trifle_floor(&last, z, ws, g, to, NULL) != 0)
        abort();
    if (n == 0 ? first <= last : (pts[0] != first || pts[n - 1] != last))
        abort();
    for (size_t i = 0; i < n; i++) {
        int64_t b;
        if (pts[i] >= TRIFLE__TIME_MIN &&
            (trifle_floor(&b, z, ws, g, pts[i], NULL) != 0 || b != pts[i]))
            abort();
        if (i > 0 && pts[i] <= pts[i - 1])
            abort();
        if (i > 0 && pts[i] - 1 >= TRIFLE__TIME_MIN &&
            (trifle_floor(&b, z, ws, g, pts[i] - 1, NULL) != 0 || b != pts[i - 1]))
            abort();
    }
    trifle_mem_free(pts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    open_zones();

    trifle_granularity g;
    trifle_error err = TRIFLE_ERROR_INIT;
    int rc = trifle_granularity_parse(&g, text, &err);
    if (rc != 0) {
        if (rc != TRIFLE_EINVAL || strncmp(err.message, "invalid granularity:", 20) != 0)
            abort();
        free(text);
        return 0;
    }
    /* the label is the whole text, and parses again to the same granularity */
    trifle_granularity again;
    if (strcmp(g.label, text) != 0 || strlen(text) >= sizeof(g.label) || g.offset < 1 ||
        g.offset > 1000000 || g.unit < TRIFLE_UNIT_SECOND || g.unit > TRIFLE_UNIT_YEAR ||
        trifle_granularity_parse(&again, g.label, NULL) != 0 || again.offset != g.offset ||
        again.unit != g.unit)
        abort();

    for (size_t zi = 0; zi < 2; zi++) {
        for (int ws = TRIFLE_SUNDAY; ws <= TRIFLE_SATURDAY; ws += 3) {
            for (size_t i = 0; i < sizeof(instants) / sizeof(instants[0]); i++)
                check_floor(zones[zi], ws, &g, instants[i]);
            check_timeline(zones[zi], ws, &g, 1743867000 - 7200, 1743867000 + 7200);
            check_timeline(zones[zi], ws, &g, 1759591800 - 86400, 1759591800 + 86400);
        }
    }
    free(text);
    return 0;
}
