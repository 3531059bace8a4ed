/* Journal mark cases (ABI 1.1, TRIFLE_CAP_JOURNAL_MARK): write_marked stores a flush's set items,
 * its inc items and the journal position in one transaction, all or nothing; mark_read reads the
 * position back (0 for a journal never marked). Drivers without the capability are n/a. */
#include "harness.h"

#include <float.h>
#include <string.h>

#define KEY "event::marks"

/* One write_marked that must succeed. 0 or -1 (recorded). */
static int marked_ok(conf_ctx *c, trifle_storage *st, const trifle_entry *set, size_t n_set,
                     const trifle_entry *inc, size_t n_inc, const char *name, uint64_t seq)
{
    trifle_write_result res = TRIFLE_WRITE_RESULT_INIT;
    trifle_mark m = {name, seq};
    int rc;

    trifle_error_clear(&c->err);
    if ((rc = trifle_storage_write_marked(st, set, n_set, inc, n_inc, &m, &res, &c->err)) != 0) {
        conf_fail_err(c, "write_marked", rc);
        return -1;
    }
    if (res.failed_item != -1 || res.outcome_unknown != 0) {
        conf_fail(c, "write_marked succeeded but reported failed_item %td, outcome_unknown %d",
                  res.failed_item, res.outcome_unknown);
        return -1;
    }
    return 0;
}

/* The stored seq of journal name must be want. 0 or -1 (recorded). */
static int mark_is(conf_ctx *c, trifle_storage *st, const char *name, uint64_t want)
{
    uint64_t seq = 12345;
    int rc;

    trifle_error_clear(&c->err);
    if ((rc = trifle_storage_mark_read(st, name, &seq, &c->err)) != 0) {
        conf_fail_err(c, "mark_read", rc);
        return -1;
    }
    if (seq != want) {
        conf_fail(c, "mark of journal %s is %llu, want %llu", name, (unsigned long long)seq,
                  (unsigned long long)want);
        return -1;
    }
    return 0;
}

static void case_unknown_is_zero(conf_ctx *c)
{
    if (mark_is(c, c->st, "0123456789abcdef0123456789abcdef", 0) != 0 ||
        marked_ok(c, c->st, NULL, 0, NULL, 0, "other", 5) != 0)
        return;
    (void)mark_is(c, c->st, "0123456789abcdef0123456789abcdef", 0);
}

/* Set items and inc items of other buckets, and the mark, in one call. */
static void case_with_data(conf_ctx *c)
{
    trifle_entry set[2], inc[2];
    trifle_bucket b[3];
    conf_reads *r;

    if (conf_entry(c, c->st, &inc[0], KEY, "1h", CONF_T0, CONF_LEAVES({"count", 1})) ||
        marked_ok(c, c->st, NULL, 0, inc, 1, "j", 1) ||
        conf_entry(c, c->st, &set[0], KEY, "1h", CONF_T0 + 3600, CONF_LEAVES({"a", 1.5})) ||
        conf_entry(c, c->st, &set[1], KEY, "1d", CONF_T0 - 36000, CONF_LEAVES({"b.c", -2})) ||
        conf_entry(c, c->st, &inc[1], KEY, "1m", CONF_T0, CONF_LEAVES({"count", 2}, {"d", 4})) ||
        marked_ok(c, c->st, set, 2, inc, 2, "j", 2))
        return;
    b[0] = inc[0].bucket;
    b[1] = set[0].bucket;
    b[2] = set[1].bucket;
    if ((r = conf_get(c, c->st, b, 3)) == NULL ||
        conf_expect(c, r, 0, "inc item, written twice", CONF_LEAVES({"count", 2}), CONF_EXACT) ||
        conf_expect(c, r, 1, "set item 0", CONF_LEAVES({"a", 1.5}), CONF_EXACT) ||
        conf_expect(c, r, 2, "set item 1", CONF_LEAVES({"b.c", -2}), CONF_EXACT) ||
        (r = conf_get(c, c->st, &inc[1].bucket, 1)) == NULL ||
        conf_expect(c, r, 0, "inc item 1", CONF_LEAVES({"count", 2}, {"d", 4}), CONF_EXACT))
        return;
    (void)mark_is(c, c->st, "j", 2);
}

/* One bucket in both lists: the set replaces first, then the inc adds to what it left. */
static void case_set_then_inc(conf_ctx *c)
{
    trifle_entry set, inc;
    conf_reads *r;

    if (conf_entry(c, c->st, &inc, KEY, "1h", CONF_T0, CONF_LEAVES({"keep", 7}, {"x", 10})) ||
        marked_ok(c, c->st, NULL, 0, &inc, 1, "j", 1) ||
        conf_entry(c, c->st, &set, KEY, "1h", CONF_T0, CONF_LEAVES({"x", 3}, {"y", 1})) ||
        conf_entry(c, c->st, &inc, KEY, "1h", CONF_T0, CONF_LEAVES({"x", 2}, {"z", 0.5})) ||
        marked_ok(c, c->st, &set, 1, &inc, 1, "j", 2) ||
        (r = conf_get(c, c->st, &set.bucket, 1)) == NULL)
        return;
    if (conf_expect(c, r, 0, "set x=3 y=1, then inc x+2 z+0.5",
                    CONF_LEAVES({"keep", 7}, {"x", 5}, {"y", 1}, {"z", 0.5}), CONF_EXACT))
        return;
    (void)mark_is(c, c->st, "j", 2);
}

/* No items: only the mark is stored; a later mark replaces it; journals are independent. */
static void case_marks_only(conf_ctx *c)
{
    trifle_entry e;
    conf_reads *r;

    if (conf_entry(c, c->st, &e, KEY, "1h", CONF_T0, CONF_LEAVES({"n", 1})) ||
        marked_ok(c, c->st, NULL, 0, NULL, 0, "j.a", 3) || mark_is(c, c->st, "j.a", 3) ||
        mark_is(c, c->st, "j.b", 0) || marked_ok(c, c->st, NULL, 0, NULL, 0, "j.b", 1) ||
        marked_ok(c, c->st, NULL, 0, NULL, 0, "j.a", 9) || mark_is(c, c->st, "j.a", 9) ||
        mark_is(c, c->st, "j.b", 1) || marked_ok(c, c->st, NULL, 0, NULL, 0, "j.a", INT64_MAX) ||
        mark_is(c, c->st, "j.a", INT64_MAX) || mark_is(c, c->st, "j.b", 1) ||
        (r = conf_get(c, c->st, &e.bucket, 1)) == NULL)
        return;
    (void)conf_expect(c, r, 0, "a bucket no call named", NULL, 0, CONF_EXACT);
}

/* A write_marked whose item `bad` (counted over set items, then inc items) the driver may refuse
 * with EDATA. Refused: nothing of the call is stored, the mark included. Applied: everything is.
 * Returns 0 either way, -1 on a failure (recorded). */
static int all_or_nothing(conf_ctx *c, const trifle_entry *set, size_t n_set,
                          const trifle_entry *inc, size_t n_inc, ptrdiff_t bad, uint64_t seq,
                          const char *what)
{
    trifle_write_result res = TRIFLE_WRITE_RESULT_INIT;
    trifle_mark m = {"j", seq};
    trifle_bucket *b = conf_alloc(c, (n_set + n_inc) * sizeof(*b));
    conf_reads *r;
    uint64_t before = 0;
    size_t i;
    int rc;

    trifle_error_clear(&c->err);
    if ((rc = trifle_storage_mark_read(c->st, "j", &before, &c->err)) != 0) {
        conf_fail_err(c, "mark_read", rc);
        return -1;
    }
    trifle_error_clear(&c->err);
    rc = trifle_storage_write_marked(c->st, set, n_set, inc, n_inc, &m, &res, &c->err);
    if (rc != 0 && rc != TRIFLE_EDATA) {
        conf_fail_err(c, what, rc);
        return -1;
    }
    if (rc == TRIFLE_EDATA && (res.failed_item != bad || res.applied != 0 || res.outcome_unknown)) {
        conf_fail(c, "%s: EDATA with failed_item %td (want %td), applied %zu, outcome_unknown %d",
                  what, res.failed_item, bad, res.applied, res.outcome_unknown);
        return -1;
    }
    if (mark_is(c, c->st, "j", rc == 0 ? seq : before) != 0)
        return -1;
    /* every item but the refusable one: all there, or none */
    for (i = 0; i < n_set + n_inc; i++)
        b[i] = i < n_set ? set[i].bucket : inc[i - n_set].bucket;
    if ((r = conf_get(c, c->st, b, n_set + n_inc)) == NULL)
        return -1;
    for (i = 0; i < n_set + n_inc; i++) {
        const trifle_entry *e = i < n_set ? &set[i] : &inc[i - n_set];
        if ((ptrdiff_t)i == bad)
            continue;
        if (conf_expect(
                c, r, i,
                conf_printf(c, "%s: item %zu after %s", what, i, rc == 0 ? "success" : "EDATA"),
                e->leaves, rc == 0 ? e->n_leaves : 0, CONF_EXACT) != 0)
            return -1;
    }
    return 0;
}

/* EDATA in the middle of a call leaves data and mark unchanged. Two ways a driver may refuse an
 * item because of stored data or its identifier: an increment that overflows a stored value to
 * infinity (sqlite), an identifier too long for the key column (postgres). A driver that stores
 * both passes by storing everything, the mark included. */
static void case_edata_all_or_nothing(conf_ctx *c)
{
    static char long_key[301];
    trifle_entry set[2], inc[3];

    memset(long_key, 'k', 300);
    if (conf_entry(c, c->st, &inc[1], "big", "1h", CONF_T0, CONF_LEAVES({"x", DBL_MAX})) ||
        marked_ok(c, c->st, &inc[1], 1, NULL, 0, "j", 1))
        return;
    if (conf_entry(c, c->st, &set[0], KEY, "1h", CONF_T0, CONF_LEAVES({"s", 1})) ||
        conf_entry(c, c->st, &inc[0], KEY, "1h", CONF_T0 + 3600, CONF_LEAVES({"i", 1})) ||
        conf_entry(c, c->st, &inc[1], "big", "1h", CONF_T0, CONF_LEAVES({"x", DBL_MAX})) ||
        conf_entry(c, c->st, &inc[2], KEY, "1h", CONF_T0 + 7200, CONF_LEAVES({"i", 2})) ||
        all_or_nothing(c, set, 1, inc, 3, 2, 2, "overflowing increment"))
        return;
    if (conf_entry(c, c->st, &set[0], KEY, "1d", CONF_T0, CONF_LEAVES({"s", 1})) ||
        conf_entry(c, c->st, &set[1], long_key, "1h", CONF_T0, CONF_LEAVES({"s", 1})) ||
        conf_entry(c, c->st, &inc[0], KEY, "1m", CONF_T0, CONF_LEAVES({"i", 1})))
        return;
    (void)all_or_nothing(c, set, 2, inc, 1, 1, 3, "300-byte key");
}

/* 10,000 items in one call (5,000 set, 5,000 inc) and the mark. */
static void case_batch_10000(conf_ctx *c)
{
    trifle_bucket *b = NULL;
    trifle_entry *e = conf_batch(c, CONF_BATCH, &b);
    conf_reads *r;
    size_t i;

    if (e == NULL ||
        marked_ok(c, c->st, e, CONF_BATCH / 2, e + CONF_BATCH / 2, CONF_BATCH - CONF_BATCH / 2, "j",
                  77) != 0 ||
        marked_ok(c, c->st, NULL, 0, e + CONF_BATCH / 2, CONF_BATCH - CONF_BATCH / 2, "j", 78) !=
            0 ||
        (r = conf_get(c, c->st, b, CONF_BATCH)) == NULL)
        return;
    for (i = 0; i < CONF_BATCH; i++) {
        double k = i < CONF_BATCH / 2 ? 1 : 2;
        trifle_leaf l[2] = {{"count", k * (double)(i % 7 + 1)}, {"n.v", k * 0.5}};

        if (conf_expect(c, r, i, conf_printf(c, "item %zu", i), l, 2, CONF_EXACT))
            return;
    }
    (void)mark_is(c, c->st, "j", 78);
}

/* The mark is stored with the data, not in the connection: a new connection reads it. */
static void case_survives_reopen(conf_ctx *c)
{
    trifle_storage *st;
    trifle_entry e;
    conf_reads *r;

    if (conf_entry(c, c->st, &e, KEY, "1h", CONF_T0, CONF_LEAVES({"n", 2})) ||
        marked_ok(c, c->st, NULL, 0, &e, 1, "a1b2c3d4e5f60718293a4b5c6d7e8f90", 41) ||
        (st = conf_storage(c, NULL)) == NULL ||
        mark_is(c, st, "a1b2c3d4e5f60718293a4b5c6d7e8f90", 41) ||
        (r = conf_get(c, st, &e.bucket, 1)) == NULL)
        return;
    (void)conf_expect(c, r, 0, "data read on a new connection", CONF_LEAVES({"n", 2}), CONF_EXACT);
}

const conf_case conf_cases_mark[] = {
    {"mark.unknown_is_zero", 0, TRIFLE_CAP_JOURNAL_MARK, 0, case_unknown_is_zero},
    {"mark.with_data", CONF_PER_MODE, TRIFLE_CAP_JOURNAL_MARK, 0, case_with_data},
    {"mark.set_then_inc", CONF_PER_MODE, TRIFLE_CAP_JOURNAL_MARK, 0, case_set_then_inc},
    {"mark.marks_only", 0, TRIFLE_CAP_JOURNAL_MARK, 0, case_marks_only},
    {"mark.edata_all_or_nothing", 0, TRIFLE_CAP_JOURNAL_MARK, 0, case_edata_all_or_nothing},
    {"mark.batch_10000", 0, TRIFLE_CAP_JOURNAL_MARK, 0, case_batch_10000},
    {"mark.survives_reopen", 0, TRIFLE_CAP_JOURNAL_MARK, 0, case_survives_reopen},
    {NULL, 0, 0, 0, NULL},
};
