/* libFuzzer target for trifle_time_parse (SPEC §9.1 and, with TRIFLE_TIME_CLI, §11.3). The first
 * byte picks the zone (bits 0-1) and the flags (bit 2); the rest is the text. A parsed instant is
 * in range, survives trifle_time_format -> parse, and its floors and timelines keep the SPEC §2
 * invariants. Invariant failures abort(). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "nocturnal_int.h"
#include "trifle/time.h"

static const char *const zone_names[4] = {NULL, "America/New_York", "Australia/Lord_Howe",
                                          "America/Santiago"};
static trifle_zone *zones[4];
static trifle_granularity grans[8];
static const char *const gran_text[8] = {"1s", "7m", "45m", "1h", "1d", "1w", "1mo", "1y"};

static void init(void)
{
    static int done;
    if (done)
        return;
    for (int i = 1; i < 4; i++) {
        if (trifle_zone_open(&zones[i], zone_names[i], NULL) != 0)
            abort();
    }
    for (int i = 0; i < 8; i++) {
        if (trifle_granularity_parse(&grans[i], gran_text[i], NULL) != 0)
            abort();
    }
    done = 1;
}

static void check_instant(const trifle_zone *z, int64_t at)
{
    char text[40];
    int64_t back = 0;
    if (!trifle__time_in_range(at))
        abort();
    /* RFC 3339 round trip */
    size_t n = trifle_time_format(text, sizeof(text), at, z);
    if (n != strlen(text) ||
        trifle_time_parse(&back, text, NULL, TRIFLE_TIME_OFFSET_REQUIRED, NULL) != 0 || back != at)
        abort();
    for (int i = 0; i < 8; i++) {
        for (int ws = TRIFLE_SUNDAY; ws <= TRIFLE_MONDAY; ws++) {
            int64_t b, bb;
            if (trifle_floor(&b, z, ws, &grans[i], at, NULL) != 0 || b > at)
                abort();
            /* idempotent, unless the bucket starts before 1900 (then b is no valid input) */
            if (b >= TRIFLE__TIME_MIN &&
                (trifle_floor(&bb, z, ws, &grans[i], b, NULL) != 0 || bb != b))
                abort();
            /* the bucket of `at` as a one-point timeline, and a few buckets before it */
            int64_t *pts = NULL;
            size_t np = 0;
            int64_t from = at - 3 * 3600 < TRIFLE__TIME_MIN ? TRIFLE__TIME_MIN : at - 3 * 3600;
            int rc = trifle_timeline(&pts, &np, z, ws, &grans[i], from, at, 32, NULL);
            if (rc != 0 && rc != TRIFLE_EINVAL)
                abort();
            if (rc == 0 && (np == 0 || pts[np - 1] != b))
                abort();
            for (size_t k = 1; k < np; k++) {
                if (pts[k] <= pts[k - 1])
                    abort();
                if (pts[k] - 1 >= TRIFLE__TIME_MIN &&
                    (trifle_floor(&bb, z, ws, &grans[i], pts[k] - 1, NULL) != 0 ||
                     bb != pts[k - 1]))
                    abort();
            }
            trifle_mem_free(pts);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    init();
    const trifle_zone *z = zones[data[0] & 3];
    int flags = (data[0] & 4) ? TRIFLE_TIME_CLI : TRIFLE_TIME_OFFSET_REQUIRED;
    char *text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';

    int64_t at = 0;
    trifle_error err = TRIFLE_ERROR_INIT;
    int rc = trifle_time_parse(&at, text, z, flags, &err);
    if (rc == 0) {
        check_instant(z, at);
        /* accepted without the CLI flag means accepted with it, to the same instant */
        int64_t cli = 0;
        if (flags == TRIFLE_TIME_OFFSET_REQUIRED &&
            (trifle_time_parse(&cli, text, z, TRIFLE_TIME_CLI, NULL) != 0 || cli != at))
            abort();
    } else if (rc != TRIFLE_EINVAL || (strncmp(err.message, "invalid time:", 13) != 0 &&
                                       strcmp(err.message, "time out of range") != 0)) {
        abort();
    }
    free(text);
    return 0;
}
