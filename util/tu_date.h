/* Civil dates and RFC 3339 text: the proleptic Gregorian calendar (with a year 0) computed by
 * hand on int64, so that no TZ, locale or time_t range is involved (STYLE: no localtime, no
 * setenv TZ). Shared by core (grids, time text) and the drivers (stored timestamps). Private to
 * this tree (util/README.md). */
#ifndef TRIFLE_TU_DATE_H
#define TRIFLE_TU_DATE_H

#include <stddef.h>
#include <stdint.h>

/* Days since 1970-01-01 of y-m-d (month 1-12, day 1-31); H. Hinnant's days_from_civil. Every
 * intermediate fits int64 for |y| up to about 2.5e16. */
static inline int64_t tu_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The calendar date of day `days` since 1970-01-01 (the inverse of tu_days_from_civil). */
void tu_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

/* Number of days in month m (1-12) of year y (any sign). */
int tu_days_in_month(int64_t y, int m);

#define TU_TIME_LEN 20 /* strlen("2025-01-15T08:00:00Z") */

/* Unix seconds `at` as `YYYY-MM-DDTHH:MM:SSZ` into out[TU_TIME_LEN + 1] (NUL-terminated).
 * Returns 0, or -1 outside the years 0000-9999. */
int tu_time_format(char *out, int64_t at);

/* `YYYY-MM-DD?HH:MM:SS` (the first 19 bytes of s; the byte at 10 is the caller's to check) →
 * Unix seconds. Returns 0, or -1 for another shape or a date or time that does not exist (leap
 * second 60 is accepted). */
int tu_time_parse19(const char *s, int64_t *out);

/* RFC 3339 date-time, the whole of s[0..n): `T`, `t` or a space between date and time, any
 * fraction (floored), `Z`, `z` or `±hh:mm`. Returns 0 with Unix seconds in *out, or -1. */
int tu_time_parse_rfc3339(const char *s, size_t n, int64_t *out);

#endif
