/* Slicing (SPEC §8.2) and the sum/mean/min/max aggregators (SPEC §8.3). */
#include "analysis_int.h"

#include <math.h>
#include <string.h>

#include "alloc_int.h"
#include "error_int.h"

static const char *const aggregator_names[] = {"sum", "mean", "min", "max"};

void trifle__slices(size_t n, size_t s, size_t *groups, size_t *start, size_t *size)
{
    *start = 0;
    if (n == 0) {
        *groups = 0;
        *size = 0;
    } else if (s <= 1 || n / s == 0) {
        *groups = 1; /* one group of everything, also when there are more slices than items */
        *size = n;
    } else {
        *groups = s;
        *size = n / s;
        *start = n - *size * s; /* the oldest items that do not fill a slice are dropped */
    }
}

int trifle_aggregator_parse(int *out, const char *name, trifle_error *err)
{
    int i;

    for (i = 0; name != NULL && i < 4; i++) {
        if (strcmp(name, aggregator_names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return trifle__error(err, TRIFLE_EINVAL, "unknown aggregator: %s", name ? name : "(null)");
}

const char *trifle_aggregator_name(int aggregator)
{
    return aggregator >= 0 && aggregator < 4 ? aggregator_names[aggregator] : NULL;
}

int trifle__aggregate(double **values, unsigned char **present, size_t *n_out,
                      const trifle_series *s, int aggregator, const char *path, size_t slices,
                      trifle_error *err)
{
    size_t groups, start, size, g, i;
    double *v = NULL;
    unsigned char *p = NULL;
    trifle__path tp;
    int rc;

    *values = NULL;
    *present = NULL;
    *n_out = 0;
    if (path != NULL && strchr(path, '*') != NULL)
        return trifle__error(err, TRIFLE_EINVAL, "wildcard paths are not supported by aggregators");
    if (trifle_aggregator_name(aggregator) == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "unknown aggregator: %d", aggregator);
    trifle__slices(s == NULL ? 0 : s->n, slices, &groups, &start, &size);
    if (groups == 0)
        return 0;
    rc = trifle__path_parse(&tp, path, err);
    if (rc != 0)
        return rc;
    v = trifle__calloc(groups, sizeof(*v));
    p = trifle__calloc(groups, sizeof(*p));
    if (v == NULL || p == NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    for (g = 0; g < groups; g++) {
        double acc = 0, d;
        size_t count = 0;
        for (i = start + g * size; i < start + (g + 1) * size; i++) {
            if (!trifle__numeric(trifle__fetch(s->rows[i], &tp), &d))
                continue;
            if (aggregator == TRIFLE_AGGREGATOR_MIN)
                acc = count == 0 || d < acc ? d : acc;
            else if (aggregator == TRIFLE_AGGREGATOR_MAX)
                acc = count == 0 || d > acc ? d : acc;
            else
                acc += d;
            count++;
        }
        if (aggregator == TRIFLE_AGGREGATOR_MEAN && count > 0)
            acc /= (double)count;
        if (count == 0 &&
            (aggregator == TRIFLE_AGGREGATOR_MIN || aggregator == TRIFLE_AGGREGATOR_MAX)) {
            v[g] = NAN;
            p[g] = 0;
        } else {
            v[g] = acc;
            p[g] = 1;
        }
    }
    *values = v;
    *present = p;
    *n_out = groups;
    v = NULL;
    p = NULL;
done:
    trifle__free(v);
    trifle__free(p);
    trifle__path_free(&tp);
    return rc;
}

int trifle_series_aggregate(double **values, unsigned char **present, size_t *n_out,
                            const trifle_series *s, int aggregator, const char *path, size_t slices,
                            trifle_error *err)
{
    unsigned char *p = NULL;
    int rc = trifle__aggregate(values, &p, n_out, s, aggregator, path, slices, err);

    if (present != NULL)
        *present = p;
    else
        trifle__free(p);
    return rc;
}
