/* Cases through the stats handle and error mapping: setup twice, system items (SPEC §3.4),
 * unreachable servers (ECONN) and writes before setup (ERRATA I15). */
#include "harness.h"

#include <string.h>

static void case_setup_twice(conf_ctx *c)
{
    trifle_entry e;
    conf_reads *r;
    trifle *t;

    if (conf_entry(c, c->st, &e, "kept", "1h", CONF_T0, CONF_LEAVES({"count", 3})) != 0)
        return;
    CONF_OK(c, "inc", trifle_storage_inc(c->st, &e, 1, NULL, &c->err));
    CONF_OK(c, "second setup", trifle_storage_setup(c->st, &c->err));
    if ((t = conf_handle(c, NULL, "granularities", "1h", NULL)) == NULL) /* a third, via a handle */
        return;
    CONF_OK(c, "fourth setup", trifle_setup(t, &c->err));
    CONF_OK(c, "inc after setup", trifle_storage_inc(c->st, &e, 1, NULL, &c->err));
    if ((r = conf_get(c, c->st, &e.bucket, 1)) == NULL)
        return;
    (void)conf_expect(c, r, 0, "data written before and after setup", CONF_LEAVES({"count", 6}),
                      CONF_EXACT);
}

/* Track, assert, untracked, a dotted key, empty values: the __system__key__ record counts each
 * write once per granularity, under keys.<key> or keys.__untracked__. */
static void case_system_items(conf_ctx *c)
{
    static const char *const gs[] = {"1h", "1d"};
    const int64_t at = CONF_T0 + 1234;
    trifle *t;
    trifle_payload *one, *five, *ms, *empty;
    trifle_series *s;
    size_t i;

    if ((t = conf_handle(c, NULL, "granularities", "1h,1d", NULL)) == NULL ||
        (one = conf_payload(c, "{\"count\":1}")) == NULL ||
        (five = conf_payload(c, "{\"count\":5}")) == NULL ||
        (ms = conf_payload(c, "{\"ms\":{\"p50\":2}}")) == NULL ||
        (empty = conf_payload(c, "{\"a\":{}}")) == NULL)
        return;
    CONF_OK(c, "track", trifle_track(t, "event::logs", at, one, 0, &c->err));
    CONF_OK(c, "track", trifle_track(t, "event::logs", at, one, 0, &c->err));
    CONF_OK(c, "assert", trifle_assert(t, "event::logs", at, five, 0, &c->err));
    CONF_OK(c, "track dotted key", trifle_track(t, "svc.latency", at, ms, 0, &c->err));
    CONF_OK(c, "track untracked", trifle_track(t, "other", at, one, TRIFLE_UNTRACKED, &c->err));
    CONF_OK(c, "assert untracked", trifle_assert(t, "other", at, five, TRIFLE_UNTRACKED, &c->err));
    CONF_OK(c, "track empty values", trifle_track(t, "event::logs", at, empty, 0, &c->err));
    CONF_OK(c, "track empty values", trifle_track(t, "silent", at, empty, 0, &c->err));
    for (i = 0; i < 2; i++) {
        if ((s = conf_values(c, t, "__system__key__", at, at, gs[i])) == NULL ||
            conf_expect_row(c, s, 0,
                            "{\"count\":6,\"keys\":{\"event::logs\":3,\"svc\":{\"latency\":1},"
                            "\"__untracked__\":2}}") != 0 ||
            (s = conf_values(c, t, "event::logs", at, at, gs[i])) == NULL ||
            conf_expect_row(c, s, 0, "{\"count\":5}") != 0 ||
            (s = conf_values(c, t, "svc.latency", at, at, gs[i])) == NULL ||
            conf_expect_row(c, s, 0, "{\"ms\":{\"p50\":2}}") != 0 ||
            (s = conf_values(c, t, "other", at, at, gs[i])) == NULL ||
            conf_expect_row(c, s, 0, "{\"count\":5}") != 0 ||
            (s = conf_values(c, t, "silent", at, at, gs[i])) == NULL ||
            conf_expect_row(c, s, 0, "{}") != 0)
            return;
    }
}

/* system_tracking=false as a URL parameter: data only. */
static void case_system_off(conf_ctx *c)
{
    trifle *t;
    trifle_series *s;

    if ((t = conf_handle(c, conf_url_with(c, "system_tracking=false"), "granularities", "1h",
                         NULL)) == NULL)
        return;
    CONF_OK(c, "track",
            trifle_track(t, "quiet", CONF_T0, conf_payload(c, "{\"count\":1}"), 0, &c->err));
    if ((s = conf_values(c, t, "__system__key__", CONF_T0, CONF_T0, "1h")) == NULL ||
        conf_expect_row(c, s, 0, "{}") != 0 ||
        (s = conf_values(c, t, "quiet", CONF_T0, CONF_T0, "1h")) == NULL)
        return;
    (void)conf_expect_row(c, s, 0, "{\"count\":1}");
}

/* A server nobody listens on: TRIFLE_ECONN from open, or from the first call that needs it. */
static void case_errors_unreachable(conf_ctx *c)
{
    trifle_storage_options o = TRIFLE_STORAGE_OPTIONS_INIT;
    trifle_storage *st = NULL;
    trifle_entry e;
    const char *url = conf_url_unreachable(c);
    const char *step = "open";
    int rc;

    o.joined = c->mode;
    o.driver = c->driver;
    o.driver_path = c->driver_path;
    trifle_error_clear(&c->err);
    rc = trifle_storage_open(&st, url, &o, &c->err);
    if (rc == 0) {
        step = "setup";
        rc = trifle_storage_setup(st, &c->err);
    }
    if (rc == 0 && conf_entry(c, st, &e, "k", "1h", CONF_T0, CONF_LEAVES({"count", 1})) == 0) {
        step = "inc";
        rc = trifle_storage_inc(st, &e, 1, NULL, &c->err);
    }
    trifle_storage_close(st);
    CONF_RETURN_IF_FAILED(c);
    CONF_CHECK(c, rc != 0, "open, setup and inc all succeeded against an unreachable server");
    CONF_CHECK(c, rc == TRIFLE_ECONN, "%s against an unreachable server: %s %s, want ECONN", step,
               trifle_status_name(rc), c->err.message);
    CONF_CHECK(c, c->err.message[0] != '\0', "%s: ECONN without a message", step);
}

/* Before setup, a driver either works (it creates on demand) or says how to fix it:
 * TRIFLE_ECONFIG `... (run "trifle setup")`. Never a generic driver error. */
static int before_setup_ok(conf_ctx *c, const char *what, int rc)
{
    if (rc == 0)
        return 1;
    if (rc == TRIFLE_ECONFIG && strstr(c->err.message, "trifle setup") != NULL)
        return 0;
    conf_fail(c, "%s before setup: %s %s, want success or ECONFIG naming \"trifle setup\"", what,
              trifle_status_name(rc), c->err.message);
    return -1;
}

static void case_errors_before_setup(conf_ctx *c)
{
    trifle_entry e;
    conf_reads *r;
    size_t n = 0;
    int ok_inc, rc;

    if (conf_entry(c, c->st, &e, "k", "1h", CONF_T0, CONF_LEAVES({"count", 1})) != 0)
        return;
    trifle_error_clear(&c->err);
    rc = trifle_storage_get(c->st, &e.bucket, 1, conf_count_leaf, &n, &c->err);
    if (before_setup_ok(c, "get", rc) < 0)
        return;
    CONF_CHECK(c, n == 0, "get before setup delivered %zu leaves", n);
    trifle_error_clear(&c->err);
    rc = trifle_storage_inc(c->st, &e, 1, NULL, &c->err);
    if ((ok_inc = before_setup_ok(c, "inc", rc)) < 0)
        return;
    if ((c->caps & TRIFLE_CAP_PING) != 0) {
        trifle_error_clear(&c->err);
        rc = trifle_storage_ping(c->st, "k", CONF_T0, e.leaves, 1, &c->err);
        if (before_setup_ok(c, "ping", rc) < 0)
            return;
    }
    CONF_OK(c, "setup", trifle_storage_setup(c->st, &c->err));
    CONF_OK(c, "inc after setup", trifle_storage_inc(c->st, &e, 1, NULL, &c->err));
    if ((r = conf_get(c, c->st, &e.bucket, 1)) == NULL)
        return;
    (void)conf_expect(c, r, 0, "after setup", CONF_LEAVES({"count", ok_inc ? 2 : 1}), CONF_EXACT);
}

const conf_case conf_cases_handle[] = {
    {"setup.twice", CONF_PER_MODE, 0, TRIFLE_CAP_CALLS, case_setup_twice},
    {"system.items", CONF_PER_MODE, 0, 0, case_system_items},
    {"system.off", 0, 0, TRIFLE_CAP_CALLS, case_system_off},
    {"errors.unreachable", 0, 0, 0, case_errors_unreachable},
    {"errors.before_setup", CONF_PER_MODE | CONF_NO_SETUP, 0, TRIFLE_CAP_CALLS,
     case_errors_before_setup},
    {NULL, 0, 0, 0, NULL},
};
