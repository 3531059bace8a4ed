/* Designators (SPEC §8.7): linear, geometric and custom bucket labels. A value equal to a bucket
 * boundary belongs to that bucket; values at or below min map to min, values above max to
 * `<max>+`. Labels are positional decimal text (no exponent), independent of the locale. */
#include "analysis_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_int.h"
#include "error_int.h"
#include "numfmt_int.h"

enum { D_LINEAR, D_GEOMETRIC, D_CUSTOM };

struct trifle_designator {
    int kind;
    double min, max, step;
    double *buckets; /* custom: sorted ascending, unique, finite */
    size_t n;
};

/* Room for the positional text of any double (at most ~330 bytes), ".0" and "+". */
#define LABEL_BUF 420

static int designator_alloc(trifle_designator **out, int kind, trifle_error *err)
{
    *out = trifle__calloc(1, sizeof(**out));
    if (*out == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    (*out)->kind = kind;
    return 0;
}

int trifle_designator_new_linear(trifle_designator **out, double min, double max, double step,
                                 trifle_error *err)
{
    int rc;

    *out = NULL;
    if (!isfinite(min) || !isfinite(max) || !(min < max) || !isfinite(step) ||
        step != floor(step) || step < 1)
        return trifle__error(err, TRIFLE_EINVAL,
                             "linear designator requires min < max and an integer step >= 1");
    rc = designator_alloc(out, D_LINEAR, err);
    if (rc == 0) {
        (*out)->min = min;
        (*out)->max = max;
        (*out)->step = step;
    }
    return rc;
}

int trifle_designator_new_geometric(trifle_designator **out, double min, double max,
                                    trifle_error *err)
{
    int rc;

    *out = NULL;
    if (min < 0)
        min = 0;
    if (!isfinite(min) || !isfinite(max) || !(min < max))
        return trifle__error(err, TRIFLE_EINVAL, "geometric designator requires min < max");
    rc = designator_alloc(out, D_GEOMETRIC, err);
    if (rc == 0) {
        (*out)->min = min;
        (*out)->max = max;
    }
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

int trifle_designator_new_custom(trifle_designator **out, const double *buckets, size_t n,
                                 trifle_error *err)
{
    double *b = NULL;
    size_t i, m = 0, u = 0;
    int rc;

    *out = NULL;
    for (i = 0; buckets != NULL && i < n; i++)
        m += isfinite(buckets[i]) != 0;
    if (m == 0)
        return trifle__error(err, TRIFLE_EINVAL, "custom designator requires at least one bucket");
    b = trifle__calloc(m, sizeof(*b));
    if (b == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    for (i = 0, m = 0; i < n; i++)
        if (isfinite(buckets[i]))
            b[m++] = buckets[i] == 0 ? 0.0 : buckets[i]; /* -0 and 0 are one bucket */
    qsort(b, m, sizeof(*b), cmp_double);
    for (i = 0; i < m; i++)
        if (u == 0 || b[i] != b[u - 1])
            b[u++] = b[i];
    rc = designator_alloc(out, D_CUSTOM, err);
    if (rc != 0) {
        trifle__free(b);
        return rc;
    }
    (*out)->buckets = b;
    (*out)->n = u;
    (*out)->min = b[0];
    (*out)->max = b[u - 1];
    return 0;
}

void trifle_designator_free(trifle_designator *d)
{
    if (d == NULL)
        return;
    trifle__free(d->buckets);
    trifle__free(d);
}

/* plain(v), plus ".0" when geo and there is no decimal point, plus "+" when over. */
static size_t label_text(char *buf, double v, int geo, int over)
{
    size_t len = trifle__fmt_plain(buf, LABEL_BUF - 3, v);

    if (geo && strchr(buf, '.') == NULL) {
        memcpy(buf + len, ".0", 3);
        len += 2;
    }
    if (over) {
        buf[len++] = '+';
        buf[len] = '\0';
    }
    return len;
}

/* The smallest multiple of step (counted from 0) that is >= v. */
static double linear_bucket(double v, double step)
{
    double q = ceil(v / step), m = q * step;

    /* v / step is rounded, so correct by one step either way */
    if (m < v)
        m = (q + 1) * step;
    else if ((q - 1) * step >= v)
        m = (q - 1) * step;
    return m;
}

/* The smallest power of ten >= v > 0, decided on v's shortest decimal text, so that exact
 * powers (0.1, 100) map to themselves. +Inf when it does not fit a double. */
static double power_of_ten_at_least(double v)
{
    char text[LABEL_BUF], num[16];
    const char *dot;
    size_t len = trifle__fmt_plain(text, sizeof(text), v), i;
    int k, exact;
    double p;

    dot = strchr(text, '.');
    if (text[0] != '0') {
        size_t int_len = dot != NULL ? (size_t)(dot - text) : len;
        exact = dot == NULL && text[0] == '1';
        for (i = 1; exact && i < int_len; i++)
            exact = text[i] == '0';
        k = (int)int_len - (exact ? 1 : 0);
    } else {
        size_t z = 0;
        const char *rest = dot + 1;
        while (rest[z] == '0')
            z++;
        exact = strcmp(rest + z, "1") == 0;
        k = exact ? -(int)z - 1 : -(int)z;
    }
    (void)snprintf(num, sizeof(num), "1e%d", k);
    if (trifle__parse_double(num, strlen(num), &p) != 0)
        return INFINITY;
    return p;
}

size_t trifle_designator_label(const trifle_designator *d, double v, char *buf, size_t size)
{
    char text[LABEL_BUF];
    size_t len;
    int geo = d->kind == D_GEOMETRIC;

    text[0] = '\0';
    if (!isfinite(v)) {
        len = 0;
    } else if (v <= d->min) {
        len = label_text(text, d->min, geo, 0);
    } else if (v > d->max) {
        len = label_text(text, d->max, geo, 1);
    } else if (d->kind == D_LINEAR) {
        double m = linear_bucket(v, d->step);
        len = label_text(text, m > d->max ? d->max : m, 0, 0);
    } else if (d->kind == D_GEOMETRIC) {
        double p = power_of_ten_at_least(v);
        len = label_text(text, p > d->max ? d->max : p, 1, 0);
    } else {
        size_t lo = 0, hi = d->n - 1; /* buckets[hi] >= v > buckets[0] */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (d->buckets[mid] >= v)
                hi = mid;
            else
                lo = mid + 1;
        }
        len = label_text(text, d->buckets[lo], 0, 0);
    }
    if (size > 0) {
        size_t c = len < size ? len : size - 1;
        memcpy(buf, text, c);
        buf[c] = '\0';
    }
    return len;
}
