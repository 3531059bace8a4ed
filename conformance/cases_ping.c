/* Ping cases (SPEC §3.5, §5.4, §5.5, §7.2): replace semantics, `at` kept to the second, a
 * missing ping is ENOTFOUND (found = 0 through the handle), and ENOTSUP without the capability. */
#include "harness.h"

#include <string.h>

static int ping_ok(conf_ctx *c, const char *key, int64_t at, const trifle_leaf *l, size_t n)
{
    trifle_leaf *sorted = conf_alloc(c, (n == 0 ? 1 : n) * sizeof(*sorted));
    int rc;

    if (n > 0)
        memcpy(sorted, l, n * sizeof(*l));
    conf_sort_leaves(sorted, n);
    trifle_error_clear(&c->err);
    if ((rc = trifle_storage_ping(c->st, key, at, sorted, n, &c->err)) != 0) {
        conf_fail_err(c, conf_printf(c, "ping %s", key), rc);
        return -1;
    }
    return 0;
}

/* Scan @p key and compare its instant and leaves. */
static int scan_expect(conf_ctx *c, const char *key, int64_t want_at, const trifle_leaf *l,
                       size_t n)
{
    conf_reads *r;
    int64_t at = 0;
    int rc;

    if ((r = conf_scan(c, c->st, key, &at, &rc)) == NULL)
        return -1;
    if (rc == TRIFLE_ENOTFOUND) {
        conf_fail(c, "scan %s: ENOTFOUND after a ping", key);
        return -1;
    }
    if (at != want_at) {
        conf_fail(c, "scan %s: at %lld, want %lld", key, (long long)at, (long long)want_at);
        return -1;
    }
    return conf_expect(c, r, 0, conf_printf(c, "scan %s", key), l, n, CONF_EXACT);
}

static void case_ping_roundtrip(conf_ctx *c)
{
    /* not floored: seconds are kept; before 1970 and at the end of year 9999 too */
    if (ping_ok(c, "health", INT64_C(1736937465), CONF_LEAVES({"a", 1}, {"b.c", 2.5})) ||
        ping_ok(c, "old", INT64_C(-86399), CONF_LEAVES({"x", -1})) ||
        ping_ok(c, "late", INT64_C(253402300799), CONF_LEAVES({"y", 0.125})) ||
        ping_ok(c, "awk \"q\" \xc3\xbc", CONF_T0, CONF_LEAVES({"it's", 1}, {"a$b", 2})) ||
        scan_expect(c, "health", INT64_C(1736937465), CONF_LEAVES({"a", 1}, {"b.c", 2.5})) ||
        scan_expect(c, "old", INT64_C(-86399), CONF_LEAVES({"x", -1})) ||
        scan_expect(c, "late", INT64_C(253402300799), CONF_LEAVES({"y", 0.125})))
        return;
    (void)scan_expect(c, "awk \"q\" \xc3\xbc", CONF_T0, CONF_LEAVES({"it's", 1}, {"a$b", 2}));
}

static void case_ping_replace(conf_ctx *c)
{
    if (ping_ok(c, "svc", CONF_T0, CONF_LEAVES({"a", 1}, {"b", 2})) ||
        ping_ok(c, "other", CONF_T0, CONF_LEAVES({"z", 9})) ||
        ping_ok(c, "svc", CONF_T0 + 10, CONF_LEAVES({"c", 3})) ||
        scan_expect(c, "svc", CONF_T0 + 10, CONF_LEAVES({"c", 3})) ||
        /* an earlier instant still replaces: the latest ping is the last one written */
        ping_ok(c, "svc", CONF_T0 - 10, CONF_LEAVES({"d", 4})) ||
        scan_expect(c, "svc", CONF_T0 - 10, CONF_LEAVES({"d", 4})) ||
        ping_ok(c, "svc", CONF_T0 + 20, NULL, 0) || scan_expect(c, "svc", CONF_T0 + 20, NULL, 0))
        return;
    (void)scan_expect(c, "other", CONF_T0, CONF_LEAVES({"z", 9}));
}

static void case_ping_missing(conf_ctx *c)
{
    conf_reads *r;
    trifle *t;
    trifle_payload *values = NULL;
    int64_t at = 0;
    int rc, found = -1;

    if ((r = conf_scan(c, c->st, "never", &at, &rc)) == NULL)
        return;
    CONF_CHECK(c, rc == TRIFLE_ENOTFOUND, "scan of a key without a ping: %s, want ENOTFOUND",
               trifle_status_name(rc));
    CONF_CHECK(c, r->n_leaves == 0, "scan of a key without a ping delivered %zu leaves",
               r->n_leaves);
    if ((t = conf_handle(c, NULL, "granularities", "1h", NULL)) == NULL)
        return;
    CONF_OK(c, "handle scan", trifle_scan(t, "never", &found, &at, &values, &c->err));
    rc = values != NULL ? (int)trifle_payload_count(values) : -1;
    trifle_payload_free(values);
    CONF_CHECK(c, found == 0, "handle scan of a key without a ping: found = %d", found);
    CONF_CHECK(c, rc == 0, "handle scan of a key without a ping: %d values, want an empty payload",
               rc);
}

static void case_ping_handle(conf_ctx *c)
{
    trifle *t;
    trifle_payload *p, *values = NULL;
    char *json = NULL;
    int64_t at = 0;
    int found = 0, rc;

    if ((t = conf_handle(c, NULL, "granularities", "1h", NULL)) == NULL ||
        (p = conf_payload(c, "{\"ok\":1,\"lat\":{\"p50\":0.5,\"p99\":2}}")) == NULL)
        return;
    CONF_OK(c, "beam", trifle_beam(t, "svc", INT64_C(1736937465), p, &c->err));
    CONF_OK(c, "handle scan", trifle_scan(t, "svc", &found, &at, &values, &c->err));
    CONF_CHECK(c, found == 1, "handle scan after beam: found = %d", found);
    if (at != INT64_C(1736937465)) {
        trifle_payload_free(values);
        CONF_CHECK(c, 0, "handle scan after beam: at %lld, want 1736937465", (long long)at);
    }
    rc = trifle_payload_to_json(values, &json, TRIFLE_JSON_COMPACT, &c->err);
    trifle_payload_free(values);
    if (rc != 0) {
        conf_fail_err(c, "payload json", rc);
        return;
    }
    (void)conf_expect_json(c, "handle scan after beam", json,
                           "{\"ok\":1,\"lat\":{\"p50\":0.5,"
                           "\"p99\":2}}");
    trifle_mem_free(json);
}

/* Without TRIFLE_CAP_PING every ping entry point says so. */
static void case_ping_unsupported(conf_ctx *c)
{
    trifle_leaf l = {"a", 1};
    trifle *t;
    int64_t at = 0;
    int rc;

    trifle_error_clear(&c->err);
    rc = trifle_storage_ping(c->st, "k", CONF_T0, &l, 1, &c->err);
    CONF_CHECK(c, rc == TRIFLE_ENOTSUP, "ping without the PING capability: %s, want ENOTSUP",
               trifle_status_name(rc));
    trifle_error_clear(&c->err);
    rc = trifle_storage_scan(c->st, "k", &at, conf_count_leaf, NULL, &c->err);
    CONF_CHECK(c, rc == TRIFLE_ENOTSUP, "scan without the PING capability: %s, want ENOTSUP",
               trifle_status_name(rc));
    if ((t = conf_handle(c, NULL, "granularities", "1h", NULL)) == NULL)
        return;
    trifle_error_clear(&c->err);
    rc = trifle_beam(t, "k", CONF_T0, conf_payload(c, "{\"a\":1}"), &c->err);
    CONF_CHECK(c, rc == TRIFLE_ENOTSUP, "beam without the PING capability: %s, want ENOTSUP",
               trifle_status_name(rc));
}

const conf_case conf_cases_ping[] = {
    {"ping.roundtrip", 0, TRIFLE_CAP_PING, 0, case_ping_roundtrip},
    {"ping.replace", 0, TRIFLE_CAP_PING, 0, case_ping_replace},
    {"ping.missing", 0, TRIFLE_CAP_PING, 0, case_ping_missing},
    {"ping.handle", 0, TRIFLE_CAP_PING, 0, case_ping_handle},
    {"ping.unsupported", 0, 0, TRIFLE_CAP_PING, case_ping_unsupported},
    {NULL, 0, 0, 0, NULL},
};
