/* Granularities and their grids (SPEC §2.1, §2.3), week starts (SPEC §1) and the civil calendar
 * arithmetic every grid is built on. */
#include "trifle/time.h"

#include <string.h>

#include "error_int.h"
#include "nocturnal_int.h"

/* ---------------------------------------------------------------------------------------------
 * Civil calendar */

void trifle__civil_from_wall(trifle__civil *c, int64_t wall)
{
    int64_t sod = trifle__floormod(wall, 86400); /* not wall - days * 86400: no overflow */
    tu_civil_from_days(trifle__floordiv(wall, 86400), &c->year, &c->month, &c->day);
    c->hour = (int)(sod / 3600);
    c->minute = (int)(sod / 60 % 60);
    c->second = (int)(sod % 60);
}

/* ---------------------------------------------------------------------------------------------
 * Granularity grammar */

static const char *const unit_names[] = {"s", "m", "h", "d", "w", "mo", "q", "y"};

int trifle_granularity_parse(trifle_granularity *out, const char *text, trifle_error *err)
{
    if (text == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid granularity: ");
    size_t len = strlen(text);
    size_t i = 0;
    int64_t offset = 0;
    for (; i < len && text[i] >= '0' && text[i] <= '9'; i++) {
        if (offset <= TRIFLE__OFFSET_MAX) /* stop growing once too large: no overflow */
            offset = offset * 10 + (text[i] - '0');
    }
    int unit = -1;
    for (int u = 0; u < (int)(sizeof(unit_names) / sizeof(unit_names[0])); u++) {
        if (strcmp(text + i, unit_names[u]) == 0)
            unit = u;
    }
    trifle_granularity g = {offset, unit, ""};
    if (i == 0 || len >= sizeof(g.label) || !trifle__granularity_valid(&g))
        return trifle__error(err, TRIFLE_EINVAL, "invalid granularity: %s", text);
    memcpy(g.label, text, len + 1);
    if (out != NULL)
        *out = g;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Week start */

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int ascii_iequal(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        if (ascii_lower((unsigned char)*a) != *b)
            return 0;
    }
    return *a == *b;
}

int trifle_weekday_parse(int *out, const char *text, trifle_error *err)
{
    static const char *const names[7] = {"sunday",   "monday", "tuesday", "wednesday",
                                         "thursday", "friday", "saturday"};
    if (text == NULL)
        return trifle__error(err, TRIFLE_ECONFIG, "invalid week start: ");
    int day = -1;
    if (text[0] >= '0' && text[0] <= '6' && text[1] == '\0')
        day = text[0] - '0';
    for (int d = 0; d < 7 && day < 0; d++) {
        char abbrev[4];
        memcpy(abbrev, names[d], 3);
        abbrev[3] = '\0';
        if (ascii_iequal(text, names[d]) || ascii_iequal(text, abbrev))
            day = d;
    }
    if (day < 0)
        return trifle__error(err, TRIFLE_ECONFIG, "invalid week start: %s", text);
    if (out != NULL)
        *out = day;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Grids (SPEC §2.3) */

/* k rounded down to a multiple of n. Grids of one unit are the common case (the default
 * granularities): skip the 64-bit division for them. */
static inline int64_t round_down(int64_t k, int64_t n)
{
    return n == 1 ? k : k / n * n;
}

/* The s/m/h grids: multiples of n units of `unit` seconds, restarting every `period` seconds.
 * Inlined with constant unit and period, so only the division by n is a real one. */
static inline void clock_cell(int64_t w, int64_t period, int64_t unit, int64_t n, int64_t *start,
                              int64_t *next)
{
    int64_t anchor = trifle__floordiv(w, period) * period;
    *start = anchor + round_down((w - anchor) / unit, n) * unit;
    if (next != NULL)
        *next = n * unit < anchor + period - *start ? *start + n * unit : anchor + period;
}

/* floorwall(w) into *start and gridnext(w) into *next (when not NULL). */
static void grid_cell(const trifle_granularity *g, int week_start, int64_t w, int64_t *start,
                      int64_t *next)
{
    int64_t n = g->offset;
    switch (g->unit) {
    case TRIFLE_UNIT_SECOND:
        clock_cell(w, 60, 1, n, start, next);
        return;
    case TRIFLE_UNIT_MINUTE:
        clock_cell(w, 3600, 60, n, start, next);
        return;
    case TRIFLE_UNIT_HOUR:
        clock_cell(w, 86400, 3600, n, start, next);
        return;
    default:
        break;
    }
    /* calendar units: work in days, anchored at Jan 1 (or at year 0 for `y`) */
    int64_t days = trifle__floordiv(w, 86400);
    int64_t y;
    int m, d;
    tu_civil_from_days(days, &y, &m, &d);
    int64_t jan1 = tu_days_from_civil(y, 1, 1);
    int64_t s, nx = INT64_MAX; /* INT64_MAX: the cell ends at the next Jan 1 */
    switch (g->unit) {
    case TRIFLE_UNIT_DAY:
        s = jan1 + round_down(days - jan1, n);
        nx = s + n;
        break;
    case TRIFLE_UNIT_WEEK: {
        int64_t first = jan1 + trifle__floormod(week_start - trifle__floormod(jan1 + 4, 7), 7);
        if (days < first) {
            s = jan1; /* the partial week before the first week_start of the year */
            nx = first;
        } else {
            s = first + round_down((days - first) / 7, n) * 7;
            nx = s + 7 * n;
        }
        break;
    }
    case TRIFLE_UNIT_MONTH: {
        int64_t m0 = round_down(m - 1, n); /* 0-based first month of the cell */
        s = tu_days_from_civil(y, (int)m0 + 1, 1);
        if (next != NULL && m0 + n < 12)
            nx = tu_days_from_civil(y, (int)(m0 + n) + 1, 1);
        break;
    }
    case TRIFLE_UNIT_QUARTER: {
        int64_t q0 = round_down((m - 1) / 3, n); /* 0-based first quarter of the cell */
        s = tu_days_from_civil(y, (int)q0 * 3 + 1, 1);
        if (next != NULL && q0 + n < 4)
            nx = tu_days_from_civil(y, (int)(q0 + n) * 3 + 1, 1);
        break;
    }
    default: { /* TRIFLE_UNIT_YEAR: multiples of n, aligned to year 0, no anchor */
        int64_t y0 = n == 1 ? y : trifle__floordiv(y, n) * n;
        *start = tu_days_from_civil(y0, 1, 1) * 86400;
        if (next != NULL)
            *next = tu_days_from_civil(y0 + n, 1, 1) * 86400;
        return;
    }
    }
    *start = s * 86400;
    if (next != NULL) {
        /* the grid restarts every Jan 1: a cell never runs past it */
        int64_t next_jan1 = jan1 + 365 + (tu_days_in_month(y, 2) == 29);
        *next = (nx < next_jan1 ? nx : next_jan1) * 86400;
    }
}

int64_t trifle__grid_floor(const trifle_granularity *g, int week_start, int64_t wall)
{
    int64_t start;
    grid_cell(g, week_start, wall, &start, NULL);
    return start;
}

int64_t trifle__grid_next(const trifle_granularity *g, int week_start, int64_t wall)
{
    int64_t start, next;
    grid_cell(g, week_start, wall, &start, &next);
    return next;
}

int64_t trifle__grid_ceil(const trifle_granularity *g, int week_start, int64_t wall)
{
    int64_t start, next;
    grid_cell(g, week_start, wall, &start, &next);
    return start == wall ? wall : next;
}
