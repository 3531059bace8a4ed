/* Read cases: get order with gaps and missing buckets, 8,760 buckets in one call, and the stored
 * identifier formats of every mode (SPEC §3.2, §7.2). */
#include "harness.h"

#include <stdio.h>
#include <string.h>

static int inc_ok(conf_ctx *c, const trifle_entry *e, size_t n)
{
    int rc;

    trifle_error_clear(&c->err);
    if ((rc = trifle_storage_inc(c->st, e, n, NULL, &c->err)) != 0) {
        conf_fail_err(c, "inc", rc);
        return -1;
    }
    return 0;
}

/* Buckets answered by index, whatever the order asked, with gaps and unknown buckets empty. */
static void case_get_order_gaps(conf_ctx *c)
{
    static const size_t written[] = {1, 4, 5, 8, 9};
    static const size_t order[] = {9, 0, 3, 1, 8, 7, 5, 2, 4, 6};
    trifle_bucket all[10], asked[10];
    trifle_entry e[5];
    conf_reads *r;
    size_t i;

    for (i = 0; i < 8; i++)
        if (conf_bucket(c, c->st, &all[i], "gaps", "1h", CONF_T0 + (int64_t)i * 3600) != 0)
            return;
    if (conf_bucket(c, c->st, &all[8], "gaps", "1d", CONF_T0) != 0 ||
        conf_bucket(c, c->st, &all[9], "gaps2", "1h", CONF_T0) != 0)
        return;
    for (i = 0; i < 5; i++) {
        trifle_leaf l[2] = {{"count", (double)(written[i] + 1)}, {"idx", (double)written[i]}};

        e[i].bucket = all[written[i]];
        e[i].leaves = conf_alloc(c, sizeof(l));
        memcpy((void *)e[i].leaves, l, sizeof(l));
        e[i].n_leaves = 2;
    }
    if (inc_ok(c, e, 5) != 0)
        return;
    for (i = 0; i < 10; i++)
        asked[i] = all[order[i]];
    if ((r = conf_get(c, c->st, asked, 10)) == NULL)
        return;
    for (i = 0; i < 10; i++) {
        size_t b = order[i], k;
        int was_written = 0;

        for (k = 0; k < 5; k++)
            was_written |= written[k] == b;
        if (was_written) {
            trifle_leaf l[2] = {{"count", (double)(b + 1)}, {"idx", (double)b}};

            if (conf_expect(c, r, i, conf_printf(c, "index %zu (bucket %zu)", i, b), l, 2,
                            CONF_EXACT) != 0)
                return;
        } else {
            CONF_CHECK(c, r->count[i] == 0, "index %zu (bucket %zu, never written): %zu leaves", i,
                       b, r->count[i]);
        }
    }
    /* only missing buckets: no leaves, no error */
    for (i = 0; i < 3; i++)
        if (conf_bucket(c, c->st, &asked[i], "never", "1h", CONF_T0 + (int64_t)i * 3600) != 0)
            return;
    if ((r = conf_get(c, c->st, asked, 3)) == NULL)
        return;
    CONF_CHECK(c, r->n_leaves == 0, "get of missing buckets delivered %zu leaves", r->n_leaves);
}

#define HOURS 8760

/* A year of hourly buckets in one get call, every third one written. */
static void case_get_8760(conf_ctx *c)
{
    trifle_bucket *b = conf_alloc(c, HOURS * sizeof(*b));
    trifle_entry *e = conf_alloc(c, (HOURS / 3) * sizeof(*e));
    conf_reads *r;
    size_t i, n = 0;

    for (i = 0; i < HOURS; i++) {
        if (conf_bucket(c, c->st, &b[i], "year", "1h", CONF_T0 + (int64_t)i * 3600) != 0)
            return;
        if (i % 3 == 0) {
            trifle_leaf *l = conf_alloc(c, 2 * sizeof(*l));

            l[0].path = "count";
            l[0].value = (double)i;
            l[1].path = "half";
            l[1].value = 0.5;
            e[n].bucket = b[i];
            e[n].leaves = l;
            e[n].n_leaves = 2;
            n++;
        }
    }
    if (inc_ok(c, e, n) != 0 || (r = conf_get(c, c->st, b, HOURS)) == NULL)
        return;
    for (i = 0; i < HOURS; i++) {
        if (i % 3 == 0) {
            trifle_leaf l[2] = {{"count", (double)i}, {"half", 0.5}};

            if (conf_expect(c, r, i, conf_printf(c, "hour %zu", i), l, 2, CONF_EXACT) != 0)
                return;
        } else {
            CONF_CHECK(c, r->count[i] == 0, "hour %zu was never written but has %zu leaves", i,
                       r->count[i]);
        }
    }
}

/* The identifier the storage builds for each mode is the SPEC §3.2 string, the stats handle
 * writes exactly there, and neighbours (other at, granularity or key) stay empty. */
static void expect_id(conf_ctx *c, trifle_storage *st, const char *sep, const char *key,
                      const char *g, int64_t at, trifle_bucket *out)
{
    const char *want;

    if (c->mode == TRIFLE_ID_FULL)
        want = conf_printf(c, "%s%s%s%s%lld", key, sep, g, sep, (long long)at);
    else if (c->mode == TRIFLE_ID_PARTIAL)
        want = conf_printf(c, "%s%s%s", key, sep, g);
    else
        want = key;
    if (conf_bucket(c, st, out, key, g, at) != 0)
        return;
    if (strcmp(out->id, want) != 0)
        conf_fail(c, "identifier of (%s, %s, %lld) is \"%s\", want \"%s\"", key, g, (long long)at,
                  out->id, want);
}

static void case_ids_format(conf_ctx *c)
{
    /* SPEC §3.2: the New York day bucket of 2025-01-15 starts at 1736917200 */
    const int64_t at = INT64_C(1736955000), day = INT64_C(1736917200), hour = INT64_C(1736953200);
    trifle_bucket b[7];
    trifle *t;
    trifle_storage *st;
    conf_reads *r;
    const char *url;

    if ((t = conf_handle(c, NULL, "granularities", "1h,1d", "time_zone", "America/New_York",
                         NULL)) == NULL)
        return;
    CONF_OK(c, "track", trifle_track(t, "e", at, conf_payload(c, "{\"count\":1}"), 0, &c->err));
    expect_id(c, c->st, "::", "e", "1d", day, &b[0]);
    expect_id(c, c->st, "::", "e", "1h", hour, &b[1]);
    expect_id(c, c->st, "::", "e", "1d", day + 86400, &b[2]);
    expect_id(c, c->st, "::", "e", "1h", hour - 3600, &b[3]);
    expect_id(c, c->st, "::", "e", "1w", day, &b[4]);
    expect_id(c, c->st, "::", "e2", "1h", hour, &b[5]);
    expect_id(c, c->st, "::", "__system__key__", "1h", hour, &b[6]);
    CONF_RETURN_IF_FAILED(c);
    if ((r = conf_get(c, c->st, b, 7)) == NULL ||
        conf_expect(c, r, 0, "day bucket", CONF_LEAVES({"count", 1}), CONF_EXACT) ||
        conf_expect(c, r, 1, "hour bucket", CONF_LEAVES({"count", 1}), CONF_EXACT) ||
        conf_expect(c, r, 2, "next day", NULL, 0, CONF_EXACT) ||
        conf_expect(c, r, 3, "previous hour", NULL, 0, CONF_EXACT) ||
        conf_expect(c, r, 4, "other granularity", NULL, 0, CONF_EXACT) ||
        conf_expect(c, r, 5, "other key", NULL, 0, CONF_EXACT) ||
        conf_expect(c, r, 6, "system item", CONF_LEAVES({"count", 1}, {"keys.e", 1}), CONF_EXACT))
        return;

    /* a custom separator (URL parameter) is used by the handle and the storage alike */
    url = conf_url_with(c, "separator=--");
    if ((t = conf_handle(c, url, "granularities", "1h", NULL)) == NULL ||
        (st = conf_storage(c, url)) == NULL)
        return;
    CONF_OK(c, "track", trifle_track(t, "f", at, conf_payload(c, "{\"count\":2}"), 0, &c->err));
    expect_id(c, st, "--", "f", "1h", hour, &b[0]);
    expect_id(c, c->st, "::", "f", "1h", hour, &b[1]);
    if (!c->failed && (r = conf_get(c, st, b, 1)) != NULL &&
        !conf_expect(c, r, 0, "bucket written with separator --", CONF_LEAVES({"count", 2}),
                     CONF_EXACT) &&
        c->mode != TRIFLE_ID_SEPARATED) { /* separated identifiers hold no separator */
        if ((r = conf_get(c, c->st, &b[1], 1)) != NULL)
            (void)conf_expect(c, r, 0, "same bucket read with separator ::", NULL, 0, CONF_EXACT);
    }
    /* the case's cleanup drops through the "::" connection; keys a store names with the
     * separator (Redis) are only reached through this one */
    (void)trifle_storage_drop(st, NULL);
}

const conf_case conf_cases_read[] = {
    {"get.order_gaps", CONF_PER_MODE, 0, TRIFLE_CAP_CALLS, case_get_order_gaps},
    {"get.8760", CONF_PER_MODE, 0, TRIFLE_CAP_CALLS, case_get_8760},
    {"ids.format", CONF_PER_MODE, 0, TRIFLE_CAP_CALLS, case_ids_format},
    {NULL, 0, 0, 0, NULL},
};
