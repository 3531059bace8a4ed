/* Internal Nocturnal helpers (SPEC §2): civil-date arithmetic, grids, zone transitions and
 * wall-value resolution, shared by granularity.c, zone.c, nocturnal.c and timetext.c. Never
 * installed.
 *
 * Vocabulary (SPEC §2.2): an *instant* is Unix seconds; a *wall value* is the local calendar
 * reading, represented here as "wall seconds": the Unix seconds the same calendar fields would have
 * in UTC, so wall(x) = x + offset(x). Civil arithmetic is the proleptic Gregorian calendar with a
 * year 0, done on int64 so that every intermediate of the supported range fits. */
#ifndef TRIFLE_NOCTURNAL_INT_H
#define TRIFLE_NOCTURNAL_INT_H

#include <stdint.h>

#include "trifle/time.h"
#include "util/tu_date.h"

#define TRIFLE__TIME_MIN INT64_C(-2208988800)  /* 1900-01-01T00:00:00Z */
#define TRIFLE__TIME_MAX INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define TRIFLE__YEAR1 INT64_C(-62135596800)    /* 0001-01-01T00:00:00 in wall seconds */
#define TRIFLE__OFFSET_MAX 1000000             /* granularity offsets 1 ... 1 000 000 */
#define TRIFLE__YEAR_OFFSET_MAX 9999           /* larger `Ny` floor 9999-12-31 to year 0 */

/* True when @p at lies in the range the library accepts from callers. */
static inline int trifle__time_in_range(int64_t at)
{
    return at >= TRIFLE__TIME_MIN && at <= TRIFLE__TIME_MAX;
}

/* Floor division and the matching non-negative remainder (b > 0). */
static inline int64_t trifle__floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static inline int64_t trifle__floormod(int64_t a, int64_t b)
{
    int64_t r = a % b;
    return r < 0 ? r + b : r;
}

/* Civil-date arithmetic (days from/to y-m-d, days in a month) is util/tu_date.h's. */

/* Broken-down wall value. */
typedef struct trifle__civil {
    int64_t year;
    int month, day, hour, minute, second;
} trifle__civil;

void trifle__civil_from_wall(trifle__civil *c, int64_t wall);

/* Grids (SPEC §2.3). @p g must be valid (trifle__granularity_valid) and @p week_start 0-6.
 * trifle__grid_floor is floorwall(w), the greatest grid value <= w; trifle__grid_next is
 * gridnext(w), the smallest grid value > w; trifle__grid_ceil is the smallest grid value >= w. */
int64_t trifle__grid_floor(const trifle_granularity *g, int week_start, int64_t wall);
int64_t trifle__grid_next(const trifle_granularity *g, int week_start, int64_t wall);
int64_t trifle__grid_ceil(const trifle_granularity *g, int week_start, int64_t wall);

/* True when g holds a unit and an offset trifle_granularity_parse() could have produced. */
static inline int trifle__granularity_valid(const trifle_granularity *g)
{
    if (g == NULL || g->unit < TRIFLE_UNIT_SECOND || g->unit > TRIFLE_UNIT_YEAR || g->offset < 1)
        return 0;
    return g->offset <=
           (g->unit == TRIFLE_UNIT_YEAR ? TRIFLE__YEAR_OFFSET_MAX : TRIFLE__OFFSET_MAX);
}

/* A transition (SPEC §2.2): the instant `at` with offset(at - 1) = before != after = offset(at). */
typedef struct trifle__transition {
    int64_t at;
    int32_t before;
    int32_t after;
} trifle__transition;

/* What one cache lookup knows about instant `at`: its offset, and an instant `since` <= at such
 * that no transition lies in (since, at]. When `exact`, `since` is itself a transition, described
 * by `tr`; otherwise there may or may not be one at `since`. */
typedef struct trifle__period {
    int32_t offset;
    int exact;
    int64_t since;
    trifle__transition tr;
} trifle__period;

/* One lookup in the transition cache (the write path's common case needs nothing more). */
void trifle__zone_lookup(const trifle_zone *zone, int64_t at, trifle__period *out);

/* Zone queries, served from the zone's lazily filled transition cache. A NULL zone is UTC and has
 * no transitions. Each returns 1 and fills *out when such a transition exists, else 0.
 *   trifle__zone_prev: the latest transition T with lower < T <= at.
 *   trifle__zone_next: the first transition T with at < T <= upper.
 * Offsets come from trifle_zone_offset(). Thread-safe. */
int trifle__zone_prev(const trifle_zone *zone, int64_t lower, int64_t at, trifle__transition *out);
int trifle__zone_next(const trifle_zone *zone, int64_t at, int64_t upper, trifle__transition *out);

/* The same three queries answered straight from GLib by bisection, without the cache: the
 * fallback when the cache cannot allocate, and the reference the unit tests compare against. */
int32_t trifle__zone_offset_direct(const trifle_zone *zone, int64_t at);
int trifle__zone_prev_direct(const trifle_zone *zone, int64_t lower, int64_t at,
                             trifle__transition *out);
int trifle__zone_next_direct(const trifle_zone *zone, int64_t at, int64_t upper,
                             trifle__transition *out);

/* resolve(W, pref) of SPEC §2.4 for wall seconds @p wall: the unique instant showing W; when two
 * do, the one with offset @p pref (if @p has_pref) else the earlier; inside a forward gap,
 * W - offset(T - 1). */
int64_t trifle__resolve(const trifle_zone *zone, int64_t wall, int has_pref, int32_t pref);

/* The bucket start that follows bucket start `start` (SPEC §2.7 next(t)); start must be a bucket
 * start of g. Lets callers cache [start, next) and skip floor() for instants inside it. */
int64_t trifle__bucket_next(const trifle_zone *zone, int week_start, const trifle_granularity *g,
                            int64_t start);

#endif
