/* Whole-call cases (ABI 1.2, TRIFLE_CAP_CALLS): a driver that hands track/assert to something
 * that buckets them (drivers/http → a Trifle HTTP API). They write and read through a stats
 * handle only, as an application would, and check what comes back: values and operations, exact
 * doubles through the text round trip, awkward keys and paths, and the alignment of a timeline
 * with gaps. The cases of cases_write.c and cases_read.c store pre-bucketed items and do not apply
 * to such a driver. */
#include "harness.h"

#include <stdio.h>
#include <string.h>

/* Track twice, assert, and an untracked track, at instants of one hour and one day. */
static void case_calls_operations(conf_ctx *c)
{
    static const char *const gs[] = {"1h", "1d"};
    trifle *t;
    trifle_series *s;
    size_t i;

    if ((t = conf_handle(c, NULL, "granularities", "1h,1d", NULL)) == NULL)
        return;
    CONF_OK(c, "track",
            trifle_track(t, "calls.ops", CONF_T0 + 60,
                         conf_payload(c, "{\"count\":1,\"a\":{\"b\":0.5,\"c\":-2.5}}"), 0,
                         &c->err));
    CONF_OK(c, "track",
            trifle_track(t, "calls.ops", CONF_T0 + 61,
                         conf_payload(c, "{\"count\":1,\"a\":{\"b\":0.5,\"c\":-2.5}}"), 0,
                         &c->err));
    CONF_OK(c, "assert",
            trifle_assert(t, "calls.ops", CONF_T0 + 120, conf_payload(c, "{\"x\":7,\"count\":10}"),
                          0, &c->err));
    CONF_OK(c, "track untracked",
            trifle_track(t, "calls.ops", CONF_T0 + 180, conf_payload(c, "{\"count\":1}"),
                         TRIFLE_UNTRACKED, &c->err));
    for (i = 0; i < 2; i++) {
        if ((s = conf_values(c, t, "calls.ops", CONF_T0, CONF_T0, gs[i])) == NULL ||
            conf_expect_row(c, s, 0, "{\"count\":11,\"a\":{\"b\":1,\"c\":-5},\"x\":7}") != 0)
            return;
    }
}

/* Doubles survive the text round trip exactly: replaced values, and a sum of three 0.1. */
static void case_calls_doubles(conf_ctx *c)
{
    static const char values[] =
        "{\"a\":0.1,\"big\":1e+21,\"neg\":-2.5,\"small\":1.5e-7,\"odd\":1.2345678901234567e-7}";
    trifle_payload *tenth;
    trifle_series *s;
    trifle *t;
    int i;

    if ((t = conf_handle(c, NULL, "granularities", "1h", NULL)) == NULL ||
        (tenth = conf_payload(c, "{\"s\":0.1}")) == NULL)
        return;
    CONF_OK(c, "assert", trifle_assert(t, "calls.d", CONF_T0, conf_payload(c, values), 0, &c->err));
    for (i = 0; i < 3; i++)
        CONF_OK(c, "track", trifle_track(t, "calls.sum", CONF_T0, tenth, 0, &c->err));
    if ((s = conf_values(c, t, "calls.d", CONF_T0, CONF_T0, "1h")) == NULL ||
        conf_expect_row(c, s, 0, values) != 0 ||
        (s = conf_values(c, t, "calls.sum", CONF_T0, CONF_T0, "1h")) == NULL)
        return;
    (void)conf_expect_row(c, s, 0, "{\"s\":0.30000000000000004}");
}

/* A key and paths with spaces, quotes, a backslash, UTF-8, the separator and a slash. */
static void case_calls_awkward(conf_ctx *c)
{
    static const char key[] = "k \"q\" \\ caf\xc3\xa9::x/y?&=#%";
    static const char values[] = "{\"sp ace\":{\"\\u00fc\":1},\"q\\\"uote\":2,\"back\\\\s\":3}";
    trifle_series *s;
    trifle *t;

    if ((t = conf_handle(c, NULL, "granularities", "1h", NULL)) == NULL)
        return;
    CONF_OK(c, "track", trifle_track(t, key, CONF_T0, conf_payload(c, values), 0, &c->err));
    if ((s = conf_values(c, t, key, CONF_T0, CONF_T0, "1h")) == NULL)
        return;
    (void)conf_expect_row(c, s, 0, values);
}

/* Three writes over eight hours: each lands in its own bucket and the empty ones stay empty. */
static void case_calls_timeline(conf_ctx *c)
{
    static const int hours[] = {1, 3, 6};
    trifle_series *s;
    trifle *t;
    size_t i, j;

    if ((t = conf_handle(c, NULL, "granularities", "1h", NULL)) == NULL)
        return;
    for (i = 0; i < 3; i++) {
        char json[32];
        (void)snprintf(json, sizeof(json), "{\"count\":%zu}", i + 1);
        CONF_OK(c, "track",
                trifle_track(t, "calls.tl", CONF_T0 + (hours[i] - 1) * 3600 + 59,
                             conf_payload(c, json), 0, &c->err));
    }
    if ((s = conf_values(c, t, "calls.tl", CONF_T0 - 3600, CONF_T0 + 6 * 3600, "1h")) == NULL)
        return;
    CONF_CHECK(c, trifle_series_len(s) == 8, "%zu buckets, want 8", trifle_series_len(s));
    for (j = 0; j < 8; j++) {
        char want[32] = "{}";

        CONF_CHECK(c, trifle_series_at(s, j) == CONF_T0 + ((int64_t)j - 1) * 3600,
                   "bucket %zu starts at %lld", j, (long long)trifle_series_at(s, j));
        for (i = 0; i < 3; i++)
            if ((size_t)hours[i] == j)
                (void)snprintf(want, sizeof(want), "{\"count\":%zu}", i + 1);
        if (conf_expect_row(c, s, j, want) != 0)
            return;
    }
}

/* ABI 1.4, TRIFLE_CAP_QUERY: trifle_query() answered by the driver's far side. Two tracks, then
 * an aggregate (the sum) and a query that fails on an unknown path, with its message and extra
 * fields, as the library's own computation gives them. */
static void case_query_answer(conf_ctx *c)
{
    static const char base[] =
        "{\"key\":\"query.answer\",\"from\":\"2025-01-15T10:00:00Z\","
        "\"to\":\"2025-01-15T11:00:00Z\",\"granularity\":\"1h\",\"mode\":\"aggregate\","
        "\"aggregator\":\"sum\",\"value_path\":";
    trifle_query_result *r = NULL;
    char req[512], *text = NULL;
    trifle *t;

    if ((t = conf_handle(c, NULL, "granularities", "1h", NULL)) == NULL)
        return;
    CONF_OK(
        c, "track",
        trifle_track(t, "query.answer", CONF_T0 + 5, conf_payload(c, "{\"count\":1}"), 0, &c->err));
    CONF_OK(c, "track",
            trifle_track(t, "query.answer", CONF_T0 + 3600, conf_payload(c, "{\"count\":2}"), 0,
                         &c->err));
    CONF_RETURN_IF_FAILED(c);
    (void)snprintf(req, sizeof(req), "%s\"count\"}", base);
    CONF_OK(c, "query", trifle_query(&r, t, req, strlen(req), 0, &c->err));
    CONF_RETURN_IF_FAILED(c);
    CONF_CHECK(c, trifle_query_result_outcome(r) == TRIFLE_QUERY_OK, "outcome %d: %s",
               trifle_query_result_outcome(r), trifle_query_result_message(r));
    CONF_OK(c, "render",
            trifle_query_result_render(&text, r, TRIFLE_QUERY_RENDER_DATA, 0, &c->err));
    CONF_CHECK(c, text != NULL && strstr(text, "\"value\":3,\"values\":[3],\"count\":1") != NULL,
               "aggregate: %s", text != NULL ? text : "(none)");
    trifle_mem_free(text);
    trifle_query_result_free(r);
    r = NULL;
    text = NULL;
    (void)snprintf(req, sizeof(req), "%s\"nope\"}", base);
    CONF_OK(c, "query", trifle_query(&r, t, req, strlen(req), 0, &c->err));
    CONF_RETURN_IF_FAILED(c);
    CONF_CHECK(c,
               trifle_query_result_outcome(r) == TRIFLE_QUERY_INVALID &&
                   trifle_query_result_code(r) == TRIFLE_EINVAL &&
                   strcmp(trifle_query_result_message(r), "Unknown path(s): nope") == 0,
               "unknown path: %d %s", trifle_query_result_outcome(r),
               trifle_query_result_message(r));
    CONF_OK(c, "render",
            trifle_query_result_render(&text, r, TRIFLE_QUERY_RENDER_DATA, 0, &c->err));
    CONF_CHECK(c,
               text != NULL && strcmp(text, "{\"missing_paths\":[\"nope\"],"
                                            "\"available_paths\":[\"count\"]}") == 0,
               "extra fields: %s", text != NULL ? text : "(none)");
    trifle_mem_free(text);
    trifle_query_result_free(r);
}

const conf_case conf_cases_calls[] = {
    {"calls.operations", 0, TRIFLE_CAP_CALLS, 0, case_calls_operations},
    {"calls.doubles", 0, TRIFLE_CAP_CALLS, 0, case_calls_doubles},
    {"calls.awkward", 0, TRIFLE_CAP_CALLS, 0, case_calls_awkward},
    {"calls.timeline", 0, TRIFLE_CAP_CALLS, 0, case_calls_timeline},
    {"query.answer", 0, TRIFLE_CAP_QUERY, 0, case_query_answer},
    {NULL, 0, 0, 0, NULL},
};
