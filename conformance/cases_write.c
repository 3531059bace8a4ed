/* Write cases: inc, set, their mix, 10,000-item batches, round-tripped doubles, awkward paths and
 * keys, and a leaf and an object on the same path (SPEC §7.2, §7.3, §4.4; ERRATA I2, B8). */
#include "harness.h"

#include <string.h>

#define KEY "event::logs"

/* One inc or set call that must succeed and leave the result in its success state. */
static int write_ok(conf_ctx *c, int set, const trifle_entry *e, size_t n)
{
    trifle_write_result res = TRIFLE_WRITE_RESULT_INIT;
    const char *what = set ? "set" : "inc";
    int rc;

    trifle_error_clear(&c->err);
    rc = set ? trifle_storage_set(c->st, e, n, &res, &c->err)
             : trifle_storage_inc(c->st, e, n, &res, &c->err);
    if (rc != 0) {
        conf_fail_err(c, what, rc);
        return -1;
    }
    if (res.failed_item != -1 || res.outcome_unknown != 0) {
        conf_fail(c, "%s succeeded but reported failed_item %td, outcome_unknown %d", what,
                  res.failed_item, res.outcome_unknown);
        return -1;
    }
    return 0;
}

static void case_inc_accumulates(conf_ctx *c)
{
    trifle_entry e[2];
    trifle_bucket b[2];
    conf_reads *r;
    int i;

    for (i = 0; i < 3; i++) {
        if (conf_entry(c, c->st, &e[0], KEY, "1h", CONF_T0,
                       CONF_LEAVES({"count", 1}, {"duration.db", 0.25}, {"duration.total", 2})) ||
            conf_entry(c, c->st, &e[1], KEY, "1d", CONF_T0 - 36000, CONF_LEAVES({"count", 2})) ||
            write_ok(c, 0, e, 2))
            return;
    }
    b[0] = e[0].bucket;
    b[1] = e[1].bucket;
    if ((r = conf_get(c, c->st, b, 2)) == NULL)
        return;
    if (conf_expect(c, r, 0, "1h bucket after 3 incs",
                    CONF_LEAVES({"count", 3}, {"duration.db", 0.75}, {"duration.total", 6}),
                    CONF_EXACT) != 0)
        return;
    (void)conf_expect(c, r, 1, "1d bucket after 3 incs", CONF_LEAVES({"count", 6}), CONF_EXACT);
}

static void case_set_replaces(conf_ctx *c)
{
    trifle_entry e[2];
    trifle_bucket b[2];
    conf_reads *r;

    if (conf_entry(c, c->st, &e[0], KEY, "1h", CONF_T0,
                   CONF_LEAVES({"a", 1}, {"b", 2}, {"c.d", 3})) ||
        write_ok(c, 0, e, 1) ||
        conf_entry(c, c->st, &e[0], KEY, "1h", CONF_T0, CONF_LEAVES({"b", 5}, {"c.e", 7})) ||
        conf_entry(c, c->st, &e[1], KEY, "1h", CONF_T0 + 3600, CONF_LEAVES({"x", 1.5})) ||
        write_ok(c, 1, e, 2))
        return;
    b[0] = e[0].bucket;
    b[1] = e[1].bucket;
    if ((r = conf_get(c, c->st, b, 2)) == NULL ||
        conf_expect(c, r, 0, "after set", CONF_LEAVES({"a", 1}, {"b", 5}, {"c.d", 3}, {"c.e", 7}),
                    CONF_EXACT) ||
        conf_expect(c, r, 1, "set on a new bucket", CONF_LEAVES({"x", 1.5}), CONF_EXACT))
        return;
    /* a second set replaces again: 6, not 5 + 6 */
    if (conf_entry(c, c->st, &e[0], KEY, "1h", CONF_T0, CONF_LEAVES({"b", 6})) ||
        write_ok(c, 1, e, 1) || (r = conf_get(c, c->st, b, 1)) == NULL)
        return;
    (void)conf_expect(c, r, 0, "after a second set",
                      CONF_LEAVES({"a", 1}, {"b", 6}, {"c.d", 3}, {"c.e", 7}), CONF_EXACT);
}

static void case_inc_set_mixed(conf_ctx *c)
{
    trifle_entry e[2];
    trifle_bucket b[2];
    conf_reads *r;

    if (conf_entry(c, c->st, &e[0], KEY, "1h", CONF_T0, CONF_LEAVES({"x", 10})) ||
        write_ok(c, 1, e, 1) ||
        conf_entry(c, c->st, &e[0], KEY, "1h", CONF_T0, CONF_LEAVES({"x", 2.5}, {"y", 1})) ||
        conf_entry(c, c->st, &e[1], KEY, "1m", CONF_T0, CONF_LEAVES({"y", 1})) ||
        write_ok(c, 0, e, 2) ||
        conf_entry(c, c->st, &e[0], KEY, "1h", CONF_T0, CONF_LEAVES({"y", 4})) ||
        write_ok(c, 1, e, 1) ||
        conf_entry(c, c->st, &e[0], KEY, "1h", CONF_T0, CONF_LEAVES({"y", 0.5}, {"z", -3})) ||
        conf_entry(c, c->st, &e[1], KEY, "1m", CONF_T0, CONF_LEAVES({"y", 1})) ||
        write_ok(c, 0, e, 2))
        return;
    b[0] = e[0].bucket;
    b[1] = e[1].bucket;
    if ((r = conf_get(c, c->st, b, 2)) == NULL ||
        conf_expect(c, r, 0, "set, inc, set, inc", CONF_LEAVES({"x", 12.5}, {"y", 4.5}, {"z", -3}),
                    CONF_EXACT))
        return;
    (void)conf_expect(c, r, 1, "second item of the inc calls", CONF_LEAVES({"y", 2}), CONF_EXACT);
}

/* One call of 10,000 items each way; every item comes back. */
static void case_batch_10000(conf_ctx *c)
{
    trifle_bucket *b = NULL;
    trifle_entry *e = conf_batch(c, CONF_BATCH, &b);
    conf_reads *r;
    size_t i;

    if (e == NULL || write_ok(c, 0, e, CONF_BATCH) != 0 ||
        (r = conf_get(c, c->st, b, CONF_BATCH)) == NULL)
        return;
    for (i = 0; i < CONF_BATCH; i++) {
        trifle_leaf l[2] = {{"count", (double)(i % 7 + 1)}, {"n.v", 0.5}};

        if (conf_expect(c, r, i, conf_printf(c, "item %zu after inc", i), l, 2, CONF_EXACT))
            return;
    }
    for (i = 0; i < CONF_BATCH; i++)
        if (conf_entry(c, c->st, &e[i], "batch", "1h", CONF_T0 + (int64_t)i * 3600,
                       CONF_LEAVES({"count", 1})) != 0)
            return;
    if (write_ok(c, 1, e, CONF_BATCH) != 0 || (r = conf_get(c, c->st, b, CONF_BATCH)) == NULL)
        return;
    for (i = 0; i < CONF_BATCH; i++)
        if (conf_expect(c, r, i, conf_printf(c, "item %zu after set", i),
                        CONF_LEAVES({"count", 1}, {"n.v", 0.5}), CONF_EXACT))
            return;
}

/* ---- doubles (SPEC §4.4, ERRATA B8) -------------------------------------------------------- */

/* set stores the canonical text of the value, so every driver must give back the same double */
static const double exact_values[] = {0.1,
                                      0.2,
                                      0.30000000000000004,
                                      1e-300,
                                      5e-324,
                                      2.2250738585072014e-308,
                                      1.7976931348623157e308,
                                      -2.5,
                                      123456789.12345679,
                                      1e21,
                                      1e-7,
                                      3.141592653589793,
                                      -0.0,
                                      9007199254740992.0,
                                      4.35,
                                      1.0000000000000002,
                                      123e-20,
                                      -1e-5,
                                      100,
                                      0};

static void check_paths_values(conf_ctx *c, const double *v, size_t n, int set, int times, int tol,
                               const char *what)
{
    trifle_leaf *l = conf_alloc(c, n * sizeof(*l));
    trifle_leaf *want = conf_alloc(c, n * sizeof(*want));
    trifle_entry e;
    conf_reads *r;
    size_t i;
    int k;

    for (i = 0; i < n; i++) {
        l[i].path = conf_printf(c, "v%02zu", i);
        l[i].value = v[i];
        want[i].path = l[i].path;
        want[i].value = 0;
    }
    for (k = 0; k < times; k++) {
        if (conf_entry(c, c->st, &e, "doubles", "1h", CONF_T0, l, n) || write_ok(c, set, &e, 1))
            return;
        for (i = 0; i < n; i++)
            want[i].value = set ? v[i] : want[i].value + v[i];
    }
    if ((r = conf_get(c, c->st, &e.bucket, 1)) == NULL)
        return;
    (void)conf_expect(c, r, 0, what, want, n, tol);
}

static void case_doubles_set_exact(conf_ctx *c)
{
    check_paths_values(c, exact_values, sizeof(exact_values) / sizeof(exact_values[0]), 1, 2,
                       CONF_EXACT, "set round trip (bit-exact)");
}

static void case_doubles_inc_dyadic(conf_ctx *c)
{
    static const double v[] = {0.5, 0.25, 0.125, 0.0009765625, 3.75, -1.5, 1048576.5, 1e15, -7};

    check_paths_values(c, v, sizeof(v) / sizeof(v[0]), 0, 4, CONF_EXACT,
                       "4 incs of dyadic values (exact)");
}

static void case_doubles_inc_decimal(conf_ctx *c)
{
    /* |v| >= 1e-5: within every driver's precision, Redis's 17 decimals included (ERRATA B8) */
    static const double v[] = {0.1,           0.3,
                               12345.6789,    -98765.4321,
                               1.5e-5,        3.3333333333333335,
                               10000000000.1, 2.718281828459045,
                               -0.001};

    check_paths_values(c, v, sizeof(v) / sizeof(v[0]), 0, 10, CONF_REL,
                       "10 incs of decimal values (relative 1e-12)");
}

static void case_doubles_inc_tiny(conf_ctx *c)
{
    /* below Redis's HINCRBYFLOAT resolution: redis lists this case in its conformance.skip */
    static const double v[] = {1e-300, 5e-324, 1.2345678901234567e-7, 2.2250738585072014e-308};

    check_paths_values(c, v, sizeof(v) / sizeof(v[0]), 0, 2, CONF_REL,
                       "2 incs of tiny values (relative 1e-12)");
}

/* ---- awkward paths and keys ---------------------------------------------------------------- */

static const char *const awkward_paths[] = {"it's",
                                            "say \"hi\"",
                                            "a$b",
                                            "price$",
                                            "\xc3\xbc.\xc3\xb1",
                                            "\xe6\x97\xa5\xe6\x9c\xac.x",
                                            "back\\slash",
                                            "with space",
                                            "tab\tin",
                                            "emoji\xf0\x9f\x98\x80",
                                            "semi;colon,comma",
                                            "percent%20",
                                            "x.y.z.w.v",
                                            "[0]",
                                            "{brace}",
                                            "=eq&amp",
                                            "-dash",
                                            "0lead",
                                            "colon::sep",
                                            "a.b'c.d\"e",
                                            "'",
                                            "\"",
                                            "\\",
                                            "q?x#y"};

#define N_AWKWARD (sizeof(awkward_paths) / sizeof(awkward_paths[0]))

static void case_paths_awkward(conf_ctx *c)
{
    trifle_leaf l[N_AWKWARD], want[N_AWKWARD];
    trifle_entry e;
    conf_reads *r;
    trifle *t;
    trifle_payload *p;
    trifle_series *s;
    size_t i;

    for (i = 0; i < N_AWKWARD; i++) {
        l[i].path = awkward_paths[i];
        l[i].value = (double)(i + 1);
        want[i].path = awkward_paths[i];
        want[i].value = 2.0 * (double)(i + 1);
    }
    if (conf_entry(c, c->st, &e, KEY, "1h", CONF_T0, l, N_AWKWARD) || write_ok(c, 0, &e, 1) ||
        write_ok(c, 0, &e, 1) || (r = conf_get(c, c->st, &e.bucket, 1)) == NULL ||
        conf_expect(c, r, 0, "awkward paths after 2 incs", want, N_AWKWARD, CONF_EXACT))
        return;
    for (i = 0; i < N_AWKWARD; i++) /* set: even paths -0.5, odd paths back to i + 1 */
        l[i].value = want[i].value = i % 2 == 0 ? -0.5 : (double)(i + 1);
    if (conf_entry(c, c->st, &e, KEY, "1h", CONF_T0, l, N_AWKWARD) || write_ok(c, 1, &e, 1) ||
        (r = conf_get(c, c->st, &e.bucket, 1)) == NULL ||
        conf_expect(c, r, 0, "awkward paths after set", want, N_AWKWARD, CONF_EXACT))
        return;

    /* the same through the stats handle: JSON escapes in, unpacked JSON out */
    if ((t = conf_handle(c, NULL, "granularities", "1h", NULL)) == NULL ||
        (p = conf_payload(c, "{\"say \\\"hi\\\"\":1,\"back\\\\slash\":2,"
                             "\"\\u00fc\":{\"\\u00f1\":3},\"a$b\":{\"it's\":4}}")) == NULL)
        return;
    CONF_OK(c, "track", trifle_track(t, "awk", CONF_T0 + 5, p, 0, &c->err));
    if ((s = conf_values(c, t, "awk", CONF_T0, CONF_T0, "1h")) == NULL)
        return;
    (void)conf_expect_row(c, s, 0,
                          "{\"say \\\"hi\\\"\":1,\"back\\\\slash\":2,\"\xc3\xbc\":{\"\xc3\xb1\":3},"
                          "\"a$b\":{\"it's\":4}}");
}

static const char *const awkward_keys[] = {"it's \"quoted\"",
                                           "back\\slash",
                                           "spa ce",
                                           ("\xc3\xbcn\xc3\xaf/c\xc3\xb6" /* ünï/cödé 日 */
                                            "d\xc3\xa9 \xe6\x97\xa5"),
                                           "pct%25",
                                           "a$b",
                                           "semi;colon",
                                           "k",
                                           "k2",
                                           "K",
                                           "q?x=y&z"};

#define N_KEYS (sizeof(awkward_keys) / sizeof(awkward_keys[0]))

static void case_keys_awkward(conf_ctx *c)
{
    trifle_entry e[N_KEYS];
    trifle_bucket b[N_KEYS];
    conf_reads *r;
    size_t i;

    for (i = 0; i < N_KEYS; i++) {
        trifle_leaf l = {"count", (double)(i + 1)};

        if (conf_entry(c, c->st, &e[i], awkward_keys[i], "1h", CONF_T0, &l, 1) != 0)
            return;
        b[i] = e[i].bucket;
    }
    if (write_ok(c, 0, e, N_KEYS) != 0 || (r = conf_get(c, c->st, b, N_KEYS)) == NULL)
        return;
    for (i = 0; i < N_KEYS; i++) {
        trifle_leaf l = {"count", (double)(i + 1)};

        if (conf_expect(c, r, i, conf_printf(c, "key \"%s\"", awkward_keys[i]), &l, 1,
                        CONF_EXACT) != 0)
            return;
    }
}

/* ---- a leaf and an object on the same path (ERRATA I2) -------------------------------------- */

/* Either the write is applied, or the driver refuses it because of stored data: TRIFLE_EDATA
 * with failed_item naming the item. Returns 1 applied, 0 refused, -1 failure (recorded). */
static int write_or_edata(conf_ctx *c, const trifle_entry *e, const char *what)
{
    trifle_write_result res = TRIFLE_WRITE_RESULT_INIT;
    int rc;

    trifle_error_clear(&c->err);
    rc = trifle_storage_inc(c->st, e, 1, &res, &c->err);
    if (rc == 0)
        return 1;
    if (rc == TRIFLE_EDATA && res.failed_item == 0 && res.outcome_unknown == 0)
        return 0;
    if (rc == TRIFLE_EDATA)
        conf_fail(c, "%s: EDATA with failed_item %td (want 0), outcome_unknown %d", what,
                  res.failed_item, res.outcome_unknown);
    else
        conf_fail_err(c, what, rc);
    return -1;
}

/* §4.3: whatever was applied reads back with the object winning over the leaf. */
static void leaf_object(conf_ctx *c, int leaf_first)
{
    trifle_entry leaf, obj;
    trifle *t;
    trifle_series *s;
    int a, b;
    const char *want;

    if (conf_entry(c, c->st, &leaf, "lo", "1h", CONF_T0, CONF_LEAVES({"a", 1}, {"n", 1})) ||
        conf_entry(c, c->st, &obj, "lo", "1h", CONF_T0, CONF_LEAVES({"a.b", 2}, {"n", 1})))
        return;
    if ((a = write_or_edata(c, leaf_first ? &leaf : &obj, "first write")) < 0 ||
        (b = write_or_edata(c, leaf_first ? &obj : &leaf, "second write")) < 0)
        return;
    CONF_CHECK(c, a == 1, "the first write to an empty bucket was refused");
    if (b == 1)
        want = "{\"a\":{\"b\":2},\"n\":2}";
    else if (leaf_first)
        want = "{\"a\":1,\"n\":1}";
    else
        want = "{\"a\":{\"b\":2},\"n\":1}";
    if ((t = conf_handle(c, NULL, "granularities", "1h", NULL)) == NULL ||
        (s = conf_values(c, t, "lo", CONF_T0, CONF_T0, "1h")) == NULL)
        return;
    (void)conf_expect_row(c, s, 0, want);
}

static void case_leaf_then_object(conf_ctx *c)
{
    leaf_object(c, 1);
}

static void case_object_then_leaf(conf_ctx *c)
{
    leaf_object(c, 0);
}

const conf_case conf_cases_write[] = {
    {"inc.accumulates", CONF_PER_MODE, 0, TRIFLE_CAP_CALLS, case_inc_accumulates},
    {"set.replaces", CONF_PER_MODE, 0, TRIFLE_CAP_CALLS, case_set_replaces},
    {"inc_set.mixed", CONF_PER_MODE, 0, TRIFLE_CAP_CALLS, case_inc_set_mixed},
    {"batch.10000", CONF_PER_MODE, 0, TRIFLE_CAP_CALLS, case_batch_10000},
    {"doubles.set_exact", 0, 0, TRIFLE_CAP_CALLS, case_doubles_set_exact},
    {"doubles.inc_dyadic", 0, 0, TRIFLE_CAP_CALLS, case_doubles_inc_dyadic},
    {"doubles.inc_decimal", 0, 0, TRIFLE_CAP_CALLS, case_doubles_inc_decimal},
    {"doubles.inc_tiny", 0, TRIFLE_CAP_EXACT_DOUBLES, TRIFLE_CAP_CALLS, case_doubles_inc_tiny},
    {"paths.awkward", 0, 0, TRIFLE_CAP_CALLS, case_paths_awkward},
    {"paths.leaf_then_object", 0, 0, TRIFLE_CAP_CALLS, case_leaf_then_object},
    {"paths.object_then_leaf", 0, 0, TRIFLE_CAP_CALLS, case_object_then_leaf},
    {"keys.awkward", CONF_PER_MODE, 0, TRIFLE_CAP_CALLS, case_keys_awkward},
    {NULL, 0, 0, 0, NULL},
};
