/*
 * Date and time text of the drivers (drv_support.h): proleptic Gregorian UTC computed by hand, so
 * that no TZ, locale or time_t range is involved (STYLE: no localtime, no setenv TZ).
 */
#include "drv_support.h"

#include <string.h>

/* Days since 1970-01-01 → civil date (H. Hinnant's civil_from_days). */
static void drv_civil(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era, yy;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    yy = (int64_t)yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

/* Civil date → days since 1970-01-01 (H. Hinnant's days_from_civil). */
static int64_t drv_days(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* Two decimal digits of v (its last two). */
static void drv_put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

int drv_time_format(char *out, int64_t at)
{
    int64_t days, secs, y;
    unsigned m, d;

    if (at < INT64_C(-62167219200) || at > INT64_C(253402300799))
        return -1;
    days = at / 86400;
    if (at % 86400 < 0)
        days--; /* floor */
    secs = at - days * 86400;
    drv_civil(days, &y, &m, &d);
    drv_put2(out, (unsigned)(y / 100));
    drv_put2(out + 2, (unsigned)(y % 100));
    out[4] = '-';
    drv_put2(out + 5, m);
    out[7] = '-';
    drv_put2(out + 8, d);
    out[10] = 'T';
    drv_put2(out + 11, (unsigned)(secs / 3600));
    out[13] = ':';
    drv_put2(out + 14, (unsigned)(secs / 60 % 60));
    out[16] = ':';
    drv_put2(out + 17, (unsigned)(secs % 60));
    out[19] = 'Z';
    out[20] = '\0';
    return 0;
}

/* The decimal digits s[0..n) → *out. Returns 1, or 0 for anything but a digit. */
static int drv_digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return 1;
}

/* Days of month m (1-12) of year y. */
static unsigned drv_month_days(unsigned y, unsigned m)
{
    static const unsigned char days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
        return 29;
    return days[m - 1];
}

int drv_time_parse19(const char *s, int64_t *out)
{
    unsigned y, mo, d, h, mi, se;

    if (s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':' || !drv_digits(s, 4, &y) ||
        !drv_digits(s + 5, 2, &mo) || !drv_digits(s + 8, 2, &d) || !drv_digits(s + 11, 2, &h) ||
        !drv_digits(s + 14, 2, &mi) || !drv_digits(s + 17, 2, &se))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > drv_month_days(y, mo) || h > 23 || mi > 59 || se > 60)
        return -1;
    *out = drv_days(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + se;
    return 0;
}

int drv_time_parse_rfc3339(const char *s, size_t n, int64_t *out)
{
    size_t i;
    int64_t t, off = 0;
    unsigned oh, om;

    if (n < 20 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || drv_time_parse19(s, &t) != 0)
        return -1;
    i = 19;
    if (s[i] == '.') {
        size_t f = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f)
            return -1;
    }
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        if (n - i < 6 || s[i + 3] != ':' || !drv_digits(s + i + 1, 2, &oh) ||
            !drv_digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        off = (int64_t)oh * 3600 + (int64_t)om * 60;
        if (s[i] == '-')
            off = -off;
        i += 6;
    } else {
        return -1;
    }
    if (i != n)
        return -1;
    *out = t - off;
    return 0;
}
