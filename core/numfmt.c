/* Canonical number text (SPEC §4.5) and locale-independent parsing.
 *
 * Shortest round trip: the C library's correctly rounded "%.*e" at 15, 16 then 17 significant
 * digits, keeping the first that reads back to the same double (15 digits always survive a
 * decimal→double→decimal trip, so a shorter exact form shows up at 15 with trailing zeros, which
 * are stripped). The digits and the decimal exponent are then laid out as ECMAScript's
 * Number::toString does. Integral values below 2^53 take a fast path without printf, and so do
 * short decimals (short_decimal: most counters, durations and ratios).
 *
 * Locale: printf and strtod honour LC_NUMERIC, and an application may have set a locale with a
 * decimal comma. We switch the calling thread to a "C" locale object with uselocale() around the
 * calls (thread-local, so nothing process-wide changes). */
#include "numfmt_int.h"

#include "trifle/payload.h"

#include "alloc_int.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_init(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static locale_t c_locale_get(void)
{
    (void)pthread_once(&c_locale_once, c_locale_init);
    return c_locale;
}

/* The significant digits of a "%.*e" rendering ("d.ddde+xx") into d[]; returns their count and
 * sets *e to the decimal exponent. */
static int split_exp_form(const char *tmp, char *d, int *e)
{
    const char *p = tmp, *epos = strchr(tmp, 'e');
    int k = 0;

    d[0] = '0'; /* overwritten: %e output has a digit before the 'e' */
    for (; p < epos; p++)
        if (*p >= '0' && *p <= '9')
            d[k++] = *p;
    *e = (int)strtol(epos + 1, NULL, 10); /* the exponent of our own %e output */
    return k;
}

/* Move the k-digit decimal d.ddd × 10^e one unit in its last place up (dir > 0) or down. */
static void step_last_digit(char *d, int k, int *e, int dir)
{
    int i = k - 1;

    if (k < 1) /* not reached: %e output has a digit before the 'e' */
        return;
    if (dir > 0) {
        while (i >= 0 && d[i] == '9')
            d[i--] = '0';
        if (i >= 0) {
            d[i]++;
        } else { /* 9.99 -> 10.0 */
            d[0] = '1';
            (*e)++;
        }
        return;
    }
    while (i > 0 && d[i] == '0') /* d[0] is 1 to 9 */
        d[i--] = '9';
    d[i]--;
    if (d[0] == '0') { /* 1.000 -> 0.999 = 9.99 × 10^(e-1), all nines */
        memmove(d, d + 1, (size_t)(k - 1));
        d[k - 1] = '9';
        (*e)--;
    }
}

/* Read back the k-digit decimal d.ddd × 10^e (the caller has the C locale in force). */
static double read_back(const char *d, int k, int e)
{
    char tmp[48];

    (void)snprintf(tmp, sizeof(tmp), "%c.%.*se%d", d[0], k - 1, d + 1, e);
    return strtod(tmp, NULL);
}

/* Digits of |v| (no leading zeros, no trailing zeros) and the exponent n such that
 * v = 0.d1d2...dk × 10^n, as in ECMAScript's definition. Returns k.
 *
 * For each precision p the correctly rounded p-digit decimal is the closest candidate, so it is
 * tried first. Next to a power of two the rounding interval of v is lopsided (the gap below is
 * half the gap above), and the closest candidate may fall outside it on the narrow side while its
 * neighbour on the wide side still reads back to v: that neighbour is then the shortest form
 * (2^-1017 = 7.120236347223045e-307, not ...0444e-307). 17 digits always round-trip. */
static int shortest_digits_printf(double v, char digits[24], int *n_out)
{
    char tmp[40];
    int prec, k, e;
    locale_t old = uselocale(c_locale_get());

    /* subnormals carry fewer than 53 significant bits, so their shortest form may be shorter than
     * the 15 digits that are exact for normal doubles: search those from one digit */
    for (prec = v < DBL_MIN ? 1 : 15;; prec++) {
        double back;

        (void)snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
        k = split_exp_form(tmp, digits, &e);
        if (prec == 17)
            break;
        back = strtod(tmp, NULL);
        if (back == v)
            break;
        step_last_digit(digits, k, &e, back < v ? 1 : -1);
        if (read_back(digits, k, e) == v)
            break;
    }
    uselocale(old);
    while (k > 1 && digits[k - 1] == '0')
        k--;
    digits[k] = '\0';
    *n_out = e + 1;
    return k;
}

/* Exact powers of ten (10^22 is the last one a double holds exactly). */
static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The fast path of shortest_digits, for a normal v > 0 that is m / 10^q for a small integer m.
 * For q = 0, 1, ... while s = v·10^q < 2^50: m = round(s); if the division m / 10^q (both exact,
 * so correctly rounded, as strtod rounds the decimal m·10^-q) gives v back, m·10^-q reads back as
 * v. It is also the digit string shortest_digits_printf finds:
 *  - unique: ulp(v) <= v·2^-52, so ulp(v)·10^q < 2^50·2^-52 = 1/4; candidates with q decimals are
 *    10^-q apart, more than v's rounding interval is wide, so at most one of them reads back as v;
 *  - found: when m·10^-q reads back, |v·10^q - m| <= ulp(v)·10^q / 2 < 1/8, and s is v·10^q within
 *    half an ulp of s (<= 1/16 below 2^50), so rounding s gives m;
 *  - shortest: with the integer part fixed, fewer decimals means fewer significant digits, and no
 *    smaller q had a candidate (a decimal with fewer digits and an exponent >= 0 would be an
 *    integer, which cannot read back as a non-integral v whose ulp is below 1/4).
 * Returns the digit count (no trailing zeros) and sets *n_out as shortest_digits does, or 0 when
 * v is not such a decimal (then the printf search decides). */
static int short_decimal(double v, char digits[24], int *n_out)
{
    int q;

    if (!(v >= DBL_MIN))
        return 0;
    for (q = 0; q <= 22; q++) {
        double s = v * pow10_exact[q], m;
        uint64_t u;
        char rev[24];
        int len = 0, k = 0;

        if (!(s < 0x1p50))
            return 0;
        m = (double)(uint64_t)(s + 0.5); /* s + 0.5 is exact below 2^50 */
        if (m / pow10_exact[q] != v)
            continue;
        for (u = (uint64_t)m; u > 0; u /= 10)
            rev[len++] = (char)('0' + u % 10);
        while (len > 0)
            digits[k++] = rev[--len];
        *n_out = k - q;
        while (k > 1 && digits[k - 1] == '0')
            k--;
        digits[k] = '\0';
        return k;
    }
    return 0;
}

static int shortest_digits(double v, char digits[24], int *n_out)
{
    int k = short_decimal(v, digits, n_out);

    return k > 0 ? k : shortest_digits_printf(v, digits, n_out);
}

/* fast = 0: the reference, every digit string from the printf search (for the tests that hold
 * the fast paths against it). */
static size_t fmt_double(char *buf, double v, int fast)
{
    char digits[24];
    char *p = buf;
    int k, n, i;

    if (!isfinite(v)) {
        memcpy(buf, "null", 5);
        return 4;
    }
    if (v == 0) {
        buf[0] = '0';
        buf[1] = '\0';
        return 1;
    }
    if (fast && v == floor(v) && fabs(v) < 9007199254740992.0) {
        /* integral and exact: plain digits, no printf */
        int64_t iv = (int64_t)v;
        char rev[24];
        uint64_t u = iv < 0 ? (uint64_t)(-iv) : (uint64_t)iv;
        int m = 0;
        if (iv < 0)
            *p++ = '-';
        while (u > 0) {
            rev[m++] = (char)('0' + u % 10);
            u /= 10;
        }
        while (m > 0)
            *p++ = rev[--m];
        *p = '\0';
        return (size_t)(p - buf);
    }
    if (v < 0) {
        *p++ = '-';
        v = -v;
    }
    k = fast ? shortest_digits(v, digits, &n) : shortest_digits_printf(v, digits, &n);
    if (k <= n && n <= 21) {
        /* digits followed by n-k zeros */
        memcpy(p, digits, (size_t)k);
        p += k;
        for (i = 0; i < n - k; i++)
            *p++ = '0';
    } else if (0 < n && n <= 21) {
        memcpy(p, digits, (size_t)n);
        p += n;
        *p++ = '.';
        memcpy(p, digits + n, (size_t)(k - n));
        p += k - n;
    } else if (-6 < n && n <= 0) {
        *p++ = '0';
        *p++ = '.';
        for (i = 0; i < -n; i++)
            *p++ = '0';
        memcpy(p, digits, (size_t)k);
        p += k;
    } else {
        int e = n - 1;
        *p++ = digits[0];
        if (k > 1) {
            *p++ = '.';
            memcpy(p, digits + 1, (size_t)(k - 1));
            p += k - 1;
        }
        p += snprintf(p, 8, "e%c%d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
    *p = '\0';
    return (size_t)(p - buf);
}

size_t trifle__fmt_double(char *buf, double v)
{
    return fmt_double(buf, v, 1);
}

size_t trifle__fmt_double_reference(char *buf, double v)
{
    return fmt_double(buf, v, 0);
}

int trifle__parse_double(const char *text, size_t len, double *out)
{
    char tmp[128];
    char *heap = NULL, *s = tmp, *end;
    size_t i = 0;
    int digits = 0;
    double v;
    locale_t old;

    /* validate the grammar first: strtod also accepts hex, inf, nan and leading spaces */
    if (i < len && (text[i] == '+' || text[i] == '-'))
        i++;
    while (i < len && text[i] >= '0' && text[i] <= '9')
        i++, digits++;
    if (i < len && text[i] == '.') {
        i++;
        while (i < len && text[i] >= '0' && text[i] <= '9')
            i++, digits++;
    }
    if (digits == 0)
        return -1;
    if (i < len && (text[i] == 'e' || text[i] == 'E')) {
        int ed = 0;
        i++;
        if (i < len && (text[i] == '+' || text[i] == '-'))
            i++;
        while (i < len && text[i] >= '0' && text[i] <= '9')
            i++, ed++;
        if (ed == 0)
            return -1;
    }
    if (i != len)
        return -1;
    if (len >= sizeof(tmp)) {
        heap = trifle__malloc(len + 1); /* the application's allocator; OOM reads as -1 */
        if (heap == NULL)
            return -1;
        s = heap;
    }
    memcpy(s, text, len);
    s[len] = '\0';
    old = uselocale(c_locale_get());
    v = strtod(s, &end);
    uselocale(old);
    trifle__free(heap);
    if (!isfinite(v))
        return -1;
    *out = v == 0 ? 0.0 : v; /* -0 is stored as 0 */
    return 0;
}

size_t trifle__fmt_plain(char *buf, size_t size, double v)
{
    char digits[24];
    int k, n, i;
    size_t len = 0;

#define PUT(c)              \
    do {                    \
        if (len + 1 < size) \
            buf[len] = (c); \
        len++;              \
    } while (0)
    if (size == 0)
        return 0;
    if (!isfinite(v)) {
        buf[0] = '\0';
        return 0;
    }
    if (v == 0) {
        PUT('0');
        buf[len < size ? len : size - 1] = '\0';
        return len;
    }
    if (v < 0) {
        PUT('-');
        v = -v;
    }
    k = shortest_digits(v, digits, &n);
    if (n <= 0) {
        PUT('0');
        PUT('.');
        for (i = 0; i < -n; i++)
            PUT('0');
        for (i = 0; i < k; i++)
            PUT(digits[i]);
    } else if (k <= n) {
        for (i = 0; i < k; i++)
            PUT(digits[i]);
        for (i = 0; i < n - k; i++)
            PUT('0');
    } else {
        for (i = 0; i < n; i++)
            PUT(digits[i]);
        PUT('.');
        for (i = n; i < k; i++)
            PUT(digits[i]);
    }
#undef PUT
    buf[len < size ? len : size - 1] = '\0';
    return len;
}

size_t trifle_format_double(char *buf, double v)
{
    return trifle__fmt_double(buf, v);
}
