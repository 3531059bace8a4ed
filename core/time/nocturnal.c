/* Nocturnal: floor, add, timeline and resolve (SPEC §2.4-§2.7).
 *
 * Everything follows the SPEC's reference procedures, with the zone answering three questions:
 * offset(x), the latest transition in (lower, x] and the first transition in (x, upper] (zone.c).
 * Asking for a transition only inside the interval that matters keeps the common case (no
 * transition between the bucket start and the instant) at one block lookup. */
#include "trifle/time.h"

#include "alloc_int.h"
#include "error_int.h"
#include "nocturnal_int.h"

static int out_of_range(trifle_error *err)
{
    return trifle__error(err, TRIFLE_EINVAL, "time out of range");
}

static int check_args(const trifle_granularity *g, int week_start, trifle_error *err)
{
    if (!trifle__granularity_valid(g))
        return trifle__error(err, TRIFLE_EINVAL, "invalid granularity: %.*s",
                             g == NULL ? 0 : (int)sizeof(g->label), g == NULL ? "" : g->label);
    if (week_start < TRIFLE_SUNDAY || week_start > TRIFLE_SATURDAY)
        return trifle__error(err, TRIFLE_EINVAL, "invalid week start: %d", week_start);
    return 0;
}

/* True when the forward transition t swallowed a grid value: wall(t - 1) < g < wall(t) for some g,
 * i.e. floorwall(wall(t) - 1 s) > wall(t - 1). */
static int skips_grid_value(const trifle_granularity *g, int ws, const trifle__transition *t)
{
    return t->after > t->before &&
           trifle__grid_floor(g, ws, t->at + t->after - 1) > t->at - 1 + t->before;
}

/* floor(x, G), SPEC §2.5 reference procedure; x in range, arguments checked. */
static int floor_instant(int64_t *out, const trifle_zone *zone, int ws, const trifle_granularity *g,
                         int64_t x, trifle_error *err)
{
    trifle__period per; /* offset(x), and no transition in (per.since, x] */
    trifle__zone_lookup(zone, x, &per);
    for (;;) {
        int64_t w = trifle__grid_floor(g, ws, x + per.offset);
        if (w < TRIFLE__YEAR1)
            return out_of_range(err);
        int64_t y = w - per.offset; /* where x's own offset period showed w */
        trifle__transition p;
        if (y >= per.since) {
            *out = y; /* no transition in (y, x]: y is in x's period (the common case) */
            return 0;
        }
        if (per.exact)
            p = per.tr; /* the latest transition <= x, and it is after y */
        else if (!trifle__zone_prev(zone, y, per.since, &p)) {
            *out = y;
            return 0;
        }
        if (skips_grid_value(g, ws, &p)) {
            *out = p.at; /* the gap swallowed a grid value: the bucket starts at the transition */
            return 0;
        }
        /* x's period began after w: continue in the period before */
        x = p.at - 1;
        per.offset = p.before;
        per.since = x; /* nothing known beyond x itself */
        per.exact = 0;
    }
}

/* next(t) for t in B(G), SPEC §2.7 reference procedure: the next bucket start. */
static int64_t next_start(const trifle_zone *zone, int ws, const trifle_granularity *g, int64_t t)
{
    int32_t off = trifle_zone_offset(zone, t);
    int64_t grid = trifle__grid_next(g, ws, t + off);
    int64_t x = t;
    for (;;) {
        int64_t y = grid - off;
        trifle__transition q;
        if (!trifle__zone_next(zone, x, y, &q))
            return y; /* no transition in (x, y]: the period of x shows grid at y */
        if (skips_grid_value(g, ws, &q))
            return q.at;
        x = q.at;
        off = q.after;
        grid = trifle__grid_ceil(g, ws, q.at + q.after);
    }
}

int trifle_floor(int64_t *out, const trifle_zone *zone, int week_start, const trifle_granularity *g,
                 int64_t at, trifle_error *err)
{
    int rc;
    if ((rc = check_args(g, week_start, err)) != 0)
        return rc;
    if (!trifle__time_in_range(at))
        return out_of_range(err);
    int64_t b;
    if ((rc = floor_instant(&b, zone, week_start, g, at, err)) != 0)
        return rc;
    if (out != NULL)
        *out = b;
    return 0;
}

int trifle_timeline(int64_t **out, size_t *n_out, const trifle_zone *zone, int week_start,
                    const trifle_granularity *g, int64_t from, int64_t to, size_t max_points,
                    trifle_error *err)
{
    int rc;
    int64_t *points = NULL;
    size_t n = 0, cap = 0;
    int64_t first, last;
    if (out == NULL || n_out == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "trifle_timeline: out is NULL");
    *out = NULL;
    *n_out = 0;
    if ((rc = check_args(g, week_start, err)) != 0)
        return rc;
    if (!trifle__time_in_range(from) || !trifle__time_in_range(to))
        return out_of_range(err);
    if ((rc = floor_instant(&first, zone, week_start, g, from, err)) != 0 ||
        (rc = floor_instant(&last, zone, week_start, g, to, err)) != 0)
        return rc;
    for (int64_t b = first; b <= last;) {
        if (max_points != 0 && n == max_points) {
            rc = trifle__error(err, TRIFLE_EINVAL, "timeline too long: more than %zu points",
                               max_points);
            goto done;
        }
        if (n == cap) {
            size_t want = cap == 0 ? 16 : cap * 2;
            int64_t *grown = trifle__reallocarray(points, want, sizeof(*points));
            if (grown == NULL) {
                rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
                goto done;
            }
            points = grown;
            cap = want;
        }
        points[n++] = b;
        int64_t next = next_start(zone, week_start, g, b);
        if (next <= b) { /* cannot happen: next() is strictly increasing; never loop forever */
            rc = trifle__error(err, TRIFLE_ERROR, "timeline stalled at %lld", (long long)b);
            goto done;
        }
        b = next;
    }
    *out = points;
    *n_out = n;
    points = NULL;
done:
    trifle__free(points);
    return rc;
}

int64_t trifle__resolve(const trifle_zone *zone, int64_t wall, int has_pref, int32_t pref)
{
    /* Offsets are below one day in magnitude, so every instant showing `wall` lies within a day of
     * it: walk the offset periods of [wall - 2 d, wall + 2 d] and collect the candidates. */
    int64_t lo = wall - 2 * 86400, hi = wall + 2 * 86400;
    int64_t start = lo, earliest = 0, preferred = 0, gap = 0;
    int32_t off = trifle_zone_offset(zone, lo);
    int n = 0, have_preferred = 0, have_gap = 0;
    for (;;) {
        trifle__transition t;
        int more = trifle__zone_next(zone, start, hi, &t);
        int64_t end = more ? t.at : hi + 1; /* this period is [start, end) */
        int64_t cand = wall - off;
        if (cand >= start && cand < end) {
            if (n++ == 0)
                earliest = cand;
            if (has_pref && off == pref && !have_preferred) {
                preferred = cand;
                have_preferred = 1;
            }
        }
        if (!more)
            break;
        if (t.after > t.before && wall > t.at - 1 + t.before && wall < t.at + t.after) {
            gap = wall - t.before; /* skipped by this forward transition */
            have_gap = 1;
        }
        start = t.at;
        off = t.after;
    }
    if (n > 0)
        return have_preferred ? preferred : earliest;
    return have_gap ? gap : wall - off; /* the last fallback cannot happen with real zones */
}

/* The length of the accepted range. An |n| moving further than this is out of range whatever the
 * start, so trifle_add() rejects it before multiplying: every product stays below 2^63. */
#define SPAN_SECONDS (TRIFLE__TIME_MAX - TRIFLE__TIME_MIN)

int trifle_add(int64_t *out, const trifle_zone *zone, int64_t at, int64_t n, int unit,
               trifle_error *err)
{
    static const int64_t elapsed[] = {1, 60, 3600};
    int64_t r;
    if (unit < TRIFLE_UNIT_SECOND || unit > TRIFLE_UNIT_YEAR)
        return trifle__error(err, TRIFLE_EINVAL, "invalid unit: %d", unit);
    if (!trifle__time_in_range(at))
        return out_of_range(err);
    if (unit <= TRIFLE_UNIT_HOUR) {
        if (n > SPAN_SECONDS / elapsed[unit] || n < -SPAN_SECONDS / elapsed[unit])
            return out_of_range(err);
        r = at + n * elapsed[unit];
    } else {
        int32_t off = trifle_zone_offset(zone, at);
        int64_t wall = at + off;
        if (unit <= TRIFLE_UNIT_WEEK) {
            int64_t days_limit = SPAN_SECONDS / 86400 + 2;
            int64_t per = unit == TRIFLE_UNIT_WEEK ? 7 : 1;
            if (n > days_limit / per || n < -days_limit / per)
                return out_of_range(err);
            wall += n * per * 86400;
        } else {
            int64_t months_limit = SPAN_SECONDS / 86400 / 28 + 2;
            int64_t per = unit == TRIFLE_UNIT_MONTH ? 1 : unit == TRIFLE_UNIT_QUARTER ? 3 : 12;
            if (n > months_limit / per || n < -months_limit / per)
                return out_of_range(err);
            trifle__civil c;
            trifle__civil_from_wall(&c, wall);
            int64_t total = c.year * 12 + (c.month - 1) + n * per;
            int64_t year = trifle__floordiv(total, 12);
            int month = (int)trifle__floormod(total, 12) + 1;
            int dim = tu_days_in_month(year, month);
            int day = c.day < dim ? c.day : dim; /* 01-31 + 1mo = 02-28 */
            wall = tu_days_from_civil(year, month, day) * 86400 + (int64_t)c.hour * 3600 +
                   c.minute * 60 + c.second;
        }
        r = trifle__resolve(zone, wall, 1, off);
    }
    if (!trifle__time_in_range(r))
        return out_of_range(err);
    if (out != NULL)
        *out = r;
    return 0;
}

int64_t trifle__bucket_next(const trifle_zone *zone, int week_start, const trifle_granularity *g,
                            int64_t start)
{
    return next_start(zone, week_start, g, start);
}
