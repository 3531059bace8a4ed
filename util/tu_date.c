/* Civil dates and RFC 3339 text (tu_date.h). */
#include "tu_date.h"

#include <string.h>

void tu_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    /* H. Hinnant's civil_from_days: eras of 400 years starting on March 1 */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int tu_days_in_month(int64_t y, int m)
{
    static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t r4 = y % 4, r100 = y % 100, r400 = y % 400; /* zero or not, whatever the sign */

    if (m == 2 && r4 == 0 && (r100 != 0 || r400 == 0))
        return 29;
    return days[m - 1];
}

/* Two decimal digits of v (its last two). */
static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

int tu_time_format(char *out, int64_t at)
{
    int64_t days, secs, y;
    int m, d;

    if (at < INT64_C(-62167219200) || at > INT64_C(253402300799))
        return -1;
    days = at / 86400;
    if (at % 86400 < 0)
        days--; /* floor */
    secs = at - days * 86400;
    tu_civil_from_days(days, &y, &m, &d);
    put2(out, (unsigned)(y / 100));
    put2(out + 2, (unsigned)(y % 100));
    out[4] = '-';
    put2(out + 5, (unsigned)m);
    out[7] = '-';
    put2(out + 8, (unsigned)d);
    out[10] = 'T';
    put2(out + 11, (unsigned)(secs / 3600));
    out[13] = ':';
    put2(out + 14, (unsigned)(secs / 60 % 60));
    out[16] = ':';
    put2(out + 17, (unsigned)(secs % 60));
    out[19] = 'Z';
    out[20] = '\0';
    return 0;
}

/* The decimal digits s[0..n) → *out. Returns 1, or 0 for anything but a digit. */
static int digits(const char *s, size_t n, unsigned *out)
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

int tu_time_parse19(const char *s, int64_t *out)
{
    unsigned y, mo, d, h, mi, se;

    if (s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':' || !digits(s, 4, &y) ||
        !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) ||
        !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > (unsigned)tu_days_in_month(y, (int)mo) || h > 23 ||
        mi > 59 || se > 60)
        return -1;
    *out =
        tu_days_from_civil(y, (int)mo, (int)d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + se;
    return 0;
}

int tu_time_parse_rfc3339(const char *s, size_t n, int64_t *out)
{
    size_t i;
    int64_t t, off = 0;
    unsigned oh, om;

    if (n < 20 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || tu_time_parse19(s, &t) != 0)
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
        if (n - i < 6 || s[i + 3] != ':' || !digits(s + i + 1, 2, &oh) ||
            !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
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
