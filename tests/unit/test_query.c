/* The metrics query (SPEC §9.7, ERRATA I11, minor 18): every check in its order, each mode's data
 * object, the transponder fields and the HTTP/CLI renderings. Runs trifle__query_run() over a
 * fake reader, so no storage is involved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "analysis_helpers.h"
#include "analysis_int.h"
#include "error_int.h"

/* 2026-01-24T00:00Z, 01:00Z, 02:00Z */
#define T0 1769212800
#define T1 1769216400
#define T2 1769220000

static const char *const granularities[] = {"1m", "1h", "1d"};

typedef struct fake {
    const char *series; /* JSON {"at":[...],"values":[...]} returned by the reader */
    int rc;             /* non-zero: the reader fails with this code and message */
    const char *message;
    int calls;
    char key[64], granularity[32];
    int64_t from, to;
} fake;

static int fake_read(trifle_series **out, const char *key, int64_t from, int64_t to,
                     const char *granularity, void *ctx, trifle_error *err)
{
    fake *f = ctx;

    f->calls++;
    (void)snprintf(f->key, sizeof(f->key), "%s", key);
    (void)snprintf(f->granularity, sizeof(f->granularity), "%s", granularity);
    f->from = from;
    f->to = to;
    if (f->rc != 0)
        return trifle__error(err, f->rc, "%s", f->message);
    return trifle_series_from_json(out, f->series, strlen(f->series), err);
}

static const char *default_series =
    "{\"at\":[1769212800,1769216400],\"values\":[{\"count\":40,\"duration\":0.42,"
    "\"meta\":{\"label\":\"fast\"},\"c\":{\"US\":1,\"SK\":2}},{\"count\":2,\"c\":{\"US\":3}}]}";

/* An environment of the three granularities that reads through fake_read with @p ctx. */
static void env_init(trifle__query_env *env, void *ctx, int flags, const trifle_zone *zone)
{
    memset(env, 0, sizeof(*env));
    env->zone = zone;
    env->granularities = granularities;
    env->n_granularities = 3;
    env->flags = flags;
    env->read = fake_read;
    env->ctx = ctx;
}

/* Run @p request in @p env; the run itself must succeed (the outcome is the result's). */
static trifle_query_result *run(const trifle__query_env *env, const char *request)
{
    trifle_query_result *r = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;

    assert_int_equal(trifle__query_run(&r, request, strlen(request), env, &err), 0);
    assert_non_null(r);
    return r;
}

static trifle_query_result *query_env(fake *f, const char *request, int flags,
                                      const trifle_zone *zone)
{
    trifle__query_env env;

    if (f->series == NULL)
        f->series = default_series;
    env_init(&env, f, flags, zone);
    return run(&env, request);
}

static trifle_query_result *query(fake *f, const char *request)
{
    return query_env(f, request, TRIFLE_QUERY_HTTP_TIME, NULL);
}

/* The outcome as the status the SPEC's tables (§9.7) give it, which `trifle serve` answers with
 * (server/api.c); the library itself knows only the outcome. */
static int status_of(const trifle_query_result *r)
{
    static const int status[] = {200, 400, 422, 500};
    int o = trifle_query_result_outcome(r);

    assert_true(o >= TRIFLE_QUERY_OK && o <= TRIFLE_QUERY_FAILED);
    return status[o];
}

static char *render(const trifle_query_result *r, int style)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    char *text = NULL;

    assert_int_equal(trifle_query_result_render(&text, r, style, 0, &err), 0);
    return text;
}

/* The data rendering of @p r is @p want; frees @p r. */
static void expect_rendered(trifle_query_result *r, const char *want)
{
    char *text = render(r, TRIFLE_QUERY_RENDER_DATA);

    assert_string_equal(text, want);
    trifle_mem_free(text);
    trifle_query_result_free(r);
}

/* Run a request and check status, message and (for failures) the extra fields. */
static void expect(const char *request, int status, const char *message, const char *extra)
{
    fake f = {0};
    trifle_query_result *r = query(&f, request);

    if (status_of(r) != status || strcmp(trifle_query_result_message(r), message) != 0)
        fail_msg("%s\n  got %d \"%s\"\n want %d \"%s\"", request, status_of(r),
                 trifle_query_result_message(r), status, message);
    assert_int_equal(trifle_query_result_code(r), status == 200 ? 0 : TRIFLE_EINVAL);
    /* storage is only read once the checks before step 8 passed */
    if (status == 400 || strstr(message, "slices") || strstr(message, "Aggregator") ||
        strstr(message, "aggregator"))
        assert_int_equal(f.calls, 0);
    if (extra != NULL)
        expect_rendered(r, extra);
    else
        trifle_query_result_free(r);
}

#define BASE "\"key\":\"k\",\"from\":\"2026-01-24T00:00:00Z\",\"to\":\"2026-01-24T01:00:00Z\","
#define AGG BASE "\"granularity\":\"1h\",\"mode\":\"aggregate\",\"aggregator\":\"sum\","
/* the rendered timeframe of BASE's one hour, and the table's two bucket times */
#define TIMEFRAME                                                                       \
    "\"timeframe\":{\"from\":\"2026-01-24T00:00:00Z\",\"to\":\"2026-01-24T01:00:00Z\"," \
    "\"label\":\"custom\",\"granularity\":\"1h\"}"
#define AT0 "\"2026-01-24T00:00:00Z\""
#define AT1 "\"2026-01-24T01:00:00Z\""

/* ------------------------------------------------------------------------------------------- */
/* Checks in order                                                                              */

static void test_request_shape(void **state)
{
    (void)state;
    expect("[1]", 400, "query request must be a JSON object", "{}");
    {
        fake f = {0};
        trifle_query_result *r = query(&f, "{\"key\":");
        assert_int_equal(status_of(r), 400);
        assert_true(strncmp(trifle_query_result_message(r), "invalid JSON: ", 14) == 0);
        trifle_query_result_free(r);
    }
}

static void test_check1_key(void **state)
{
    (void)state;
    expect("{\"from\":\"x\"}", 400, "key must be a non-empty string", "{}");
    expect("{\"key\":\"  \"}", 400, "key must be a non-empty string", NULL);
    expect("{\"key\":5}", 400, "key must be a non-empty string", NULL);
    expect("{\"key\":null}", 400, "key must be a non-empty string", NULL);
    /* the first failure wins: key before everything else */
    expect("{\"key\":\"\",\"slices\":0,\"value_path\":5}", 400, "key must be a non-empty string",
           NULL);
}

static void test_check2_times(void **state)
{
    (void)state;
    expect("{\"key\":\"k\"}", 400, "from is required", NULL);
    expect("{\"key\":\"k\",\"from\":5}", 400, "from must be a time string", NULL);
    expect("{\"key\":\"k\",\"from\":\"2026-01-24T00:00:00\"}", 400,
           "invalid time: 2026-01-24T00:00:00", NULL);
    expect("{\"key\":\"k\",\"from\":\"2026-01-24T00:00:00Z\"}", 400, "to is required", NULL);
    expect("{\"key\":\"k\",\"from\":\"2026-01-24T00:00:00Z\",\"to\":\"now\"}", 400,
           "invalid time: now", NULL);
}

static void test_check3_granularity(void **state)
{
    (void)state;
    expect("{" BASE "\"mode\":\"timeline\"}", 400, "granularity is required", NULL);
    expect("{" BASE "\"granularity\":\"5x\"}", 400, "invalid granularity: 5x", NULL);
    expect("{" BASE "\"granularity\":\"1s\"}", 400, "granularity 1s is not configured", NULL);
    expect("{" BASE "\"granularity\":\"01h\"}", 400, "granularity 01h is not configured", NULL);
    expect("{" BASE "\"granularity\":[\"1h\"]}", 400, "granularity is required", NULL);
}

static void test_check4_mode(void **state)
{
    (void)state;
    expect("{" BASE "\"granularity\":\" 1h \"}", 400,
           "mode is required (aggregate, timeline or category)", NULL);
    expect("{" BASE "\"granularity\":\"1h\",\"mode\":\"sideways\"}", 400, "invalid mode: sideways",
           NULL);
    expect("{" BASE "\"granularity\":\"1h\",\"mode\":1}", 400, "mode must be a string", NULL);
    /* format is an alias used only when mode is absent */
    expect("{" BASE "\"granularity\":\"1h\",\"format\":\"sideways\"}", 400,
           "invalid mode: sideways", NULL);
    expect("{" BASE "\"granularity\":\"1h\",\"mode\":\"sideways\",\"format\":\"timeline\"}", 400,
           "invalid mode: sideways", NULL);
    expect("{" BASE "\"granularity\":\"1h\",\"mode\":null,\"format\":\" TimeLine \"}", 400,
           "value_path is required", NULL);
}

static void test_check5_slices(void **state)
{
    static const char *const bad[] = {"0",    "-1",     "1.5",  "\"abc\"", "\"1000001\"", "1000001",
                                      "true", "\"+3\"", "\"\"", "[1]",     "\"1 2\""};
    char req[512];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        (void)snprintf(req, sizeof(req), "{" AGG "\"slices\":%s,\"value_path\":5}", bad[i]);
        expect(req, 422, "slices must be a positive integer.", "{}");
    }
    /* valid forms move on to the next check */
    expect("{" AGG "\"slices\":\" 12 \"}", 400, "value_path is required", NULL);
    expect("{" AGG "\"slices\":3.0}", 400, "value_path is required", NULL);
    expect("{" AGG "\"slices\":1000000}", 400, "value_path is required", NULL);
    expect("{" AGG "\"slices\":null}", 400, "value_path is required", NULL);
    expect("{" AGG "\"slices\":\"0000000000000000000007\"}", 400, "value_path is required", NULL);
    expect("{" AGG "\"slices\":\"99999999999999999999999999\"}", 422,
           "slices must be a positive integer.", NULL);
}

static void test_check6_value_path(void **state)
{
    (void)state;
    expect("{" AGG "\"slices\":2}", 400, "value_path is required", NULL);
    expect("{" AGG "\"value_path\":\" \"}", 400, "value_path must not be blank", NULL);
    expect("{" AGG "\"value_path\":5}", 400, "value_path must be a string or an array of strings",
           NULL);
    expect("{" AGG "\"value_path\":[\"a\",1]}", 400,
           "value_path must be a string or an array of strings", NULL);
    expect("{" AGG "\"value_path\":{}}", 400, "value_path must be a string or an array of strings",
           NULL);
    /* check 6 comes before the aggregator check */
    expect("{" BASE "\"granularity\":\"1h\",\"mode\":\"aggregate\"}", 400, "value_path is required",
           NULL);
}

static void test_check7_aggregator(void **state)
{
    (void)state;
    expect("{" BASE "\"granularity\":\"1h\",\"mode\":\"aggregate\",\"value_path\":\"count\"}", 422,
           "Aggregator must be provided (options: max, mean, min, sum).", "{}");
    expect("{" BASE "\"granularity\":\"1h\",\"mode\":\"aggregate\",\"value_path\":\"count\","
           "\"aggregator\":null}",
           422, "Aggregator must be provided (options: max, mean, min, sum).", NULL);
    expect("{" BASE "\"granularity\":\"1h\",\"mode\":\"aggregate\",\"value_path\":\"count\","
           "\"aggregator\":[\"sum\"]}",
           422, "Aggregator must be a string.", "{}");
    expect("{" BASE "\"granularity\":\"1h\",\"mode\":\"aggregate\",\"value_path\":\"count\","
           "\"aggregator\":\" Median \"}",
           422, "Unsupported aggregator \" Median \".",
           "{\"allowed\":[\"max\",\"mean\",\"min\",\"sum\"]}");
    /* other modes ignore it */
    expect("{" BASE "\"granularity\":\"1h\",\"mode\":\"timeline\",\"value_path\":\"count\","
           "\"aggregator\":5}",
           200, "", NULL);
    /* trimmed and case-insensitive */
    expect("{" BASE "\"granularity\":\"1h\",\"mode\":\"aggregate\",\"value_path\":\"count\","
           "\"aggregator\":\" MAX \"}",
           200, "", NULL);
}

static void test_check8_read(void **state)
{
    fake f = {0};
    trifle_query_result *r;

    (void)state;
    f.rc = TRIFLE_EINVAL;
    f.message = "timeline too long: more than 10 points";
    r = query(&f, "{" AGG "\"value_path\":\"count\"}");
    assert_int_equal(f.calls, 1);
    assert_int_equal(status_of(r), 400);
    assert_int_equal(trifle_query_result_code(r), TRIFLE_EINVAL);
    assert_string_equal(trifle_query_result_message(r), "timeline too long: more than 10 points");
    expect_rendered(r, "{}");

    memset(&f, 0, sizeof(f));
    f.rc = TRIFLE_ECONN;
    f.message = "connection refused";
    r = query(&f, "{" AGG "\"value_path\":[\"a\",\"b\"]}");
    assert_int_equal(status_of(r), 500);
    assert_int_equal(trifle_query_result_outcome(r), TRIFLE_QUERY_FAILED);
    assert_int_equal(trifle_query_result_code(r), TRIFLE_ECONN);
    assert_string_equal(trifle_query_result_message(r), "connection refused");
    expect_rendered(r, "{}");

    /* the arguments given to the reader: trimmed key and granularity, instants */
    memset(&f, 0, sizeof(f));
    r = query(&f, "{\"key\":\" event::logs \",\"from\":\"2026-01-24T01:00:00+01:00\","
                  "\"to\":\"2026-01-24 02:00:00.9z\",\"granularity\":\"1h \",\"mode\":\"category\","
                  "\"value_path\":\"c\"}");
    assert_int_equal(status_of(r), 200);
    assert_string_equal(f.key, "event::logs");
    assert_string_equal(f.granularity, "1h");
    assert_true(f.from == T0 && f.to == T2);
    trifle_query_result_free(r);
}

static void test_check9_to_12_paths(void **state)
{
    (void)state;
    expect("{" AGG "\"value_path\":[]}", 422, "Value path required.", "{}");
    expect("{" AGG "\"value_path\":[\" \",\"\"]}", 422, "Value path required.", NULL);
    expect("{" AGG "\"value_path\":[\" count \",\"\",\"b\"]}", 422,
           "Only a single value_path is supported for this tool.",
           "{\"provided_paths\":[\"count\",\"b\"]}");
    expect("{" AGG "\"value_path\":[\"c.*\"]}", 422,
           "Wildcards are not supported in value_path \"c.*\"", "{}");
    expect("{" AGG "\"value_path\":\"nope\"}", 422, "Unknown path(s): nope",
           "{\"missing_paths\":[\"nope\"],\"available_paths\":[\"c.SK\",\"c.US\",\"count\","
           "\"duration\"]}");
    /* a container path is not an available path for aggregate and timeline ... */
    expect("{" BASE "\"granularity\":\"1h\",\"mode\":\"timeline\",\"value_path\":\"c\"}", 422,
           "Unknown path(s): c", NULL);
    /* ... but category expands it (check 12 does not apply) */
    expect("{" BASE "\"granularity\":\"1h\",\"mode\":\"category\",\"value_path\":\"c\"}", 200, "",
           NULL);
    /* a one-element array is a single path; segments are trimmed */
    expect("{" AGG "\"value_path\":[\" count \"]}", 200, "", NULL);
    expect("{" AGG "\"value_path\":\"c . US\"}", 200, "", NULL);
}

/* ------------------------------------------------------------------------------------------- */
/* Data objects                                                                                 */

/* Run @p request over @p series (NULL: default_series); it succeeds with @p data. */
static void expect_data(const char *series, const char *request, const char *data)
{
    fake f = {.series = series};
    trifle_query_result *r = query(&f, request);

    if (status_of(r) != 200)
        fail_msg("%s: %d %s", request, status_of(r), trifle_query_result_message(r));
    expect_rendered(r, data);
}

static void test_aggregate_data(void **state)
{
    (void)state;
    /* the SPEC §9.7 example */
    expect_data(
        "{\"at\":[1769212800,1769216400],\"values\":[{\"count\":40,\"duration\":0.42},"
        "{\"count\":2}]}",
        "{\"key\":\"event::signup\",\"from\":\"2026-01-24T00:00:00Z\",\"to\":"
        "\"2026-01-24T01:00:00Z\",\"granularity\":\"1h\",\"mode\":\"aggregate\","
        "\"value_path\":\"count\",\"aggregator\":\"sum\"}",
        "{\"status\":\"ok\",\"aggregator\":\"sum\",\"metric_key\":\"event::signup\","
        "\"value_path\":\"count\",\"slices\":1,\"value\":42,\"values\":[42],\"count\":1," TIMEFRAME
        ",\"available_paths\":[\"count\",\"duration\"],"
        "\"matched_paths\":[\"count\"],\"table\":{\"columns\":[\"at\",\"count\"],\"rows\":"
        "[[" AT0 ",40],[" AT1 ",2]]}}");
    /* slices > 1: no "value"; nulls are removed from "values"; table keeps every bucket */
    expect_data(
        "{\"at\":[1769212800,1769216400,1769220000],\"values\":[{},{\"d\":5},{\"d\":\"7\"}]}",
        "{" AGG "\"aggregator\":\"min\",\"value_path\":\"d\",\"slices\":\"3\"}",
        "{\"status\":\"ok\",\"aggregator\":\"min\",\"metric_key\":\"k\",\"value_path\":"
        "\"d\",\"slices\":3,\"values\":[5,7],\"count\":2," TIMEFRAME
        ",\"available_paths\":[\"d\"],\"matched_paths\":[\"d\"],\"table\":{\"columns\":"
        "[\"at\",\"d\"],\"rows\":[[" AT0 ",null],[" AT1 ",5],[\"2026-01-24T02:00:00Z\",7]]}}");
}

static void test_aggregate_no_data(void **state)
{
    fake f = {0};
    trifle_query_result *r;

    (void)state;
    /* every group's min is null */
    f.series = "{\"at\":[1769212800,1769216400],\"values\":[{\"d\":1},{}]}";
    r = query(&f, "{" AGG "\"aggregator\":\"max\",\"value_path\":\"d\",\"slices\":2}");
    assert_int_equal(status_of(r), 200);
    trifle_query_result_free(r);
    f.series = "{\"at\":[1769212800,1769216400,1769220000],\"values\":[{\"d\":1},{},{}]}";
    r = query(&f, "{" AGG "\"aggregator\":\"max\",\"value_path\":\"d\",\"slices\":2}");
    assert_int_equal(status_of(r), 422);
    assert_string_equal(trifle_query_result_message(r),
                        "No data available for path d in the selected timeframe.");
    expect_rendered(r, "{\"available_paths\":[\"d\"]}");
    /* an empty series fails check 12 first */
    f.series = "{\"at\":[],\"values\":[]}";
    r = query(&f, "{" AGG "\"value_path\":\"d\"}");
    assert_int_equal(status_of(r), 422);
    assert_string_equal(trifle_query_result_message(r), "Unknown path(s): d");
    trifle_query_result_free(r);
}

static void test_timeline_data(void **state)
{
    (void)state;
    expect_data("{\"at\":[1769212800,1769216400],\"values\":[{\"n\":{\"a\":1}},{\"n\":{\"a\":2,"
                "\"b\":\"x\"}}]}",
                "{" BASE "\"granularity\":\"1h\",\"format\":\"timeline\",\"value_path\":\"n.a\"}",
                "{\"status\":\"ok\",\"formatter\":\"timeline\",\"metric_key\":\"k\",\"value_path\":"
                "\"n.a\",\"slices\":1," TIMEFRAME ",\"result\":{\"n.a\":[{\"at\":" AT0
                ",\"value\":1},{\"at\":" AT1 ",\"value\":2}]},\"available_paths\":[\"n.a\"],"
                "\"matched_paths\":[\"n.a\"],\"table\":{\"columns\":[\"at\",\"n.a\"],\"rows\":"
                "[[" AT0 ",1],[" AT1 ",2]]}}");
    /* a path that is a leaf in one row and a container in another */
    expect_data("{\"at\":[1769212800,1769216400],\"values\":[{\"a\":1},{\"a\":{\"b\":2}}]}",
                "{" BASE "\"granularity\":\"1h\",\"mode\":\"timeline\",\"value_path\":\"a\","
                "\"slices\":2}",
                "{\"status\":\"ok\",\"formatter\":\"timeline\",\"metric_key\":\"k\",\"value_path\":"
                "\"a\",\"slices\":2," TIMEFRAME ",\"result\":{\"a\":[[{\"at\":" AT0
                ",\"value\":1}],[{\"at\":" AT1 ",\"value\":0}]],\"a.b\":[[{\"at\":" AT0
                ",\"value\":0}],[{\"at\":" AT1
                ",\"value\":2}]]},\"available_paths\":[\"a\",\"a.b\"],"
                "\"matched_paths\":[\"a\",\"a.b\"],\"table\":{\"columns\":[\"at\",\"a\",\"a.b\"],"
                "\"rows\":[[" AT0 ",1,null],[" AT1 ",null,2]]}}");
}

static void test_category_data(void **state)
{
    (void)state;
    expect_data(NULL,
                "{" BASE "\"granularity\":\"1h\",\"mode\":\"category\",\"value_path\":\"c\","
                "\"slices\":2}",
                "{\"status\":\"ok\",\"formatter\":\"category\",\"metric_key\":\"k\",\"value_path\":"
                "\"c\",\"slices\":2," TIMEFRAME ",\"result\":[{\"c.SK\":2,\"c.US\":1},"
                "{\"c.SK\":0,\"c.US\":3}],\"available_paths\":[\"c.SK\",\"c.US\",\"count\","
                "\"duration\"],\"matched_paths\":[\"c.SK\",\"c.US\"],\"table\":{\"columns\":"
                "[\"at\",\"c.SK\",\"c.US\"],\"rows\":[[" AT0 ",2,1],[" AT1 ",null,3]]}}");
    /* keys exist but none is an available (numeric) path */
    expect("{" BASE "\"granularity\":\"1h\",\"mode\":\"category\",\"value_path\":\"meta\"}", 422,
           "No matching data found for path meta in the selected timeframe.", NULL);
    expect("{" BASE "\"granularity\":\"1h\",\"mode\":\"category\",\"value_path\":\"zzz\"}", 422,
           "No matching data found for path zzz in the selected timeframe.",
           "{\"available_paths\":[\"c.SK\",\"c.US\",\"count\",\"duration\"]}");
}

/* ------------------------------------------------------------------------------------------- */
/* Transponder (ERRATA I11)                                                                     */

static void test_transponder(void **state)
{
    (void)state;
    expect_data(
        NULL,
        "{" AGG "\"value_path\":\"ratio\",\"transpond_paths\":[\"count\","
        "\"duration\"],\"expression\":\"a / b\",\"response\":\"ratio\"}",
        "{\"status\":\"ok\",\"aggregator\":\"sum\",\"metric_key\":\"k\",\"value_path\":"
        "\"ratio\",\"slices\":1,\"value\":95.23809523809524,\"values\":"
        "[95.23809523809524],\"count\":1," TIMEFRAME ",\"available_paths\":[\"c.SK\","
        "\"c.US\",\"count\",\"duration\",\"ratio\"],\"matched_paths\":[\"ratio\"],\"table\":"
        "{\"columns\":[\"at\",\"ratio\"],\"rows\":[[" AT0 ",95.23809523809524],[" AT1 ",null]]}}");
    /* a comma-separated string, as the CLI passes --transpond-paths */
    expect("{" AGG "\"value_path\":\"r\",\"transpond_paths\":\"count,,duration\","
           "\"expression\":\"c * 2\",\"response\":\"r\"}",
           200, "", NULL);
    expect("{" AGG "\"value_path\":\"r\",\"transpond_paths\":\"count,,duration\","
           "\"expression\":\"b * 2\",\"response\":\"r\"}",
           422, "unknown variable b", "{}");
    expect("{" AGG "\"value_path\":\"r\",\"transpond_paths\":5,\"expression\":\"a\"}", 400,
           "transpond_paths must be an array of strings", NULL);
    expect("{" AGG "\"value_path\":\"r\",\"transpond_paths\":[\"a\",7],\"expression\":\"a\"}", 400,
           "transpond_paths must be an array of strings", NULL);
    expect("{" AGG "\"value_path\":\"r\",\"expression\":\"a\"}", 422,
           "at least one path is required", NULL);
    expect("{" AGG "\"value_path\":\"r\",\"transpond_paths\":[\"count\"],\"response\":\"r\"}", 422,
           "expression must be text", NULL);
    expect("{" AGG "\"value_path\":\"r\",\"transpond_paths\":[\"count\"],\"expression\":\"a\"}",
           422, "response path is required", NULL);
    expect("{" AGG "\"value_path\":\"r\",\"transpond_paths\":[\"count\"],\"expression\":\"a\","
           "\"response\":\"count.x\"}",
           422, "cannot write to response path count.x", "{}");
}

/* ------------------------------------------------------------------------------------------- */
/* Zones, CLI times, renderings                                                                 */

/* Europe/Bratislava (+01:00 in January), the zone of the CLI time tests. */
static trifle_zone *bratislava(void)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_zone *zone = NULL;

    assert_int_equal(trifle_zone_open(&zone, "Europe/Bratislava", &err), 0);
    return zone;
}

static void test_zone_and_cli_times(void **state)
{
    static const char request[] =
        "{\"key\":\"k\",\"from\":\"2026-01-24\",\"to\":\"@1769216400\","
        "\"granularity\":\"1d\",\"mode\":\"timeline\",\"value_path\":\"n\"}";
    trifle_zone *zone = bratislava();
    fake f = {.series = "{\"at\":[1769209200],\"values\":[{\"n\":1}]}"};
    trifle_query_result *r = query_env(&f, request, TRIFLE_QUERY_CLI_TIME, zone);
    char *text;

    (void)state;
    assert_int_equal(status_of(r), 200);
    assert_true(f.from == 1769209200 && f.to == T1); /* local midnight, +01:00 */
    text = render(r, TRIFLE_QUERY_RENDER_DATA);
    assert_non_null(strstr(text, "\"table\":{\"columns\":[\"at\",\"n\"],\"rows\":"
                                 "[[\"2026-01-24T00:00:00+01:00\",1]]}"));
    /* bucket times in the zone, timeframe in UTC */
    assert_non_null(strstr(text, "\"timeframe\":{\"from\":\"2026-01-23T23:00:00Z\",\"to\":"
                                 "\"2026-01-24T01:00:00Z\""));
    assert_non_null(strstr(text, "{\"at\":\"2026-01-24T00:00:00+01:00\",\"value\":1}"));
    trifle_mem_free(text);
    trifle_query_result_free(r);
    /* the same request over HTTP rules needs offsets */
    r = query_env(&f, request, TRIFLE_QUERY_HTTP_TIME, zone);
    assert_int_equal(status_of(r), 400);
    assert_string_equal(trifle_query_result_message(r), "invalid time: 2026-01-24");
    trifle_query_result_free(r);
    trifle_zone_free(zone);
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Answered elsewhere: a driver with TRIFLE_CAP_QUERY (ABI 1.3)                                 */

typedef struct far {
    int calls, rc, status;
    const char *body;
    char request[1024], key[64], granularity[32];
} far;

static int far_remote(void *ctx, const char *key, const char *granularity, const char *request,
                      size_t len, int (*fn)(void *fctx, int status, const char *body, size_t len),
                      void *fctx, trifle_error *err)
{
    far *f = ctx;

    f->calls++;
    (void)snprintf(f->request, sizeof(f->request), "%.*s", (int)len, request);
    (void)snprintf(f->key, sizeof(f->key), "%s", key);
    (void)snprintf(f->granularity, sizeof(f->granularity), "%s", granularity);
    if (f->rc != 0)
        return trifle__error(err, f->rc, "driver far: no route to the server");
    return fn(fctx, f->status, f->body, strlen(f->body));
}

static trifle_query_result *query_far(far *f, const char *request, int flags,
                                      const trifle_zone *zone)
{
    trifle__query_env env;

    env_init(&env, f, flags, zone); /* fake_read is never called: ctx is not a fake */
    env.remote = far_remote;
    env.remote_name = "driver far";
    return run(&env, request);
}

static void test_remote_forwards(void **state)
{
    trifle_zone *zone = bratislava();
    trifle_query_result *r;
    far f = {.status = 200,
             .body = "{\"data\":{\"status\":\"ok\",\"value\":7,\"extra\":[1,2.5,null]}}"};

    (void)state;
    /* CLI times are the caller's: resolved in its zone and sent as UTC; a granularity the local
     * configuration lacks (1w) goes to the far side, whose configuration decides */
    r = query_far(&f,
                  "{\"key\":\" k \",\"from\":\"2026-01-24\",\"to\":\"@1769216400\","
                  "\"granularity\":\"1w\",\"mode\":\"aggregate\",\"aggregator\":\"sum\","
                  "\"value_path\":\"n\",\"slices\":2}",
                  TRIFLE_QUERY_CLI_TIME, zone);
    assert_int_equal(f.calls, 1);
    assert_string_equal(f.request,
                        "{\"key\":\" k \",\"from\":\"2026-01-23T23:00:00Z\",\"to\":"
                        "\"2026-01-24T01:00:00Z\",\"granularity\":\"1w\",\"mode\":\"aggregate\","
                        "\"aggregator\":\"sum\",\"value_path\":\"n\",\"slices\":2}");
    assert_string_equal(f.key, "k");
    assert_string_equal(f.granularity, "1w");
    assert_int_equal(status_of(r), 200);
    assert_int_equal(trifle_query_result_code(r), 0);
    assert_string_equal(trifle_query_result_message(r), "");
    expect_rendered(r, "{\"status\":\"ok\",\"value\":7,\"extra\":[1,2.5,null]}");
    /* the checks before step 8 stay local, with their messages; nothing is sent */
    f.calls = 0;
    r = query_far(&f, "{" AGG "\"value_path\":\"n\",\"slices\":0}", 0, NULL);
    assert_int_equal(status_of(r), 422);
    assert_string_equal(trifle_query_result_message(r), "slices must be a positive integer.");
    trifle_query_result_free(r);
    r = query_far(&f, "{" BASE "\"granularity\":\"5x\",\"mode\":\"timeline\"}", 0, NULL);
    assert_int_equal(status_of(r), 400);
    trifle_query_result_free(r);
    assert_int_equal(f.calls, 0);
    /* the driver fails to get an answer: its code and message; EINVAL is a 400 */
    f.rc = TRIFLE_ECONN;
    r = query_far(&f, "{" AGG "\"value_path\":\"n\"}", 0, NULL);
    assert_int_equal(status_of(r), 500);
    assert_int_equal(trifle_query_result_code(r), TRIFLE_ECONN);
    assert_string_equal(trifle_query_result_message(r), "driver far: no route to the server");
    trifle_query_result_free(r);
    f.rc = TRIFLE_EINVAL;
    r = query_far(&f, "{" AGG "\"value_path\":\"n\"}", 0, NULL);
    assert_int_equal(status_of(r), 400);
    trifle_query_result_free(r);
    trifle_zone_free(zone);
}

static void expect_answer(int status, const char *body, int want_status, int want_code,
                          const char *message, const char *extra)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_query_result *r = NULL;
    size_t n = strlen(message);

    /* a message ending in '*' is a prefix: the JSON reader's own words follow it */
    if (n > 0 && message[n - 1] != '*')
        n++;
    else if (n > 0)
        n--;
    assert_int_equal(trifle__query_answer(&r, status, body, strlen(body), "driver far", &err), 0);
    if (status_of(r) != want_status || strncmp(trifle_query_result_message(r), message, n) != 0)
        fail_msg("%d %s\n  got %d \"%s\"\n want %d \"%s\"", status, body, status_of(r),
                 trifle_query_result_message(r), want_status, message);
    assert_int_equal(trifle_query_result_code(r), want_code);
    expect_rendered(r, extra);
}

static void test_remote_answers(void **state)
{
    /* the far side's status and body; the status, code, message and data they come to */
    static const struct {
        int status;
        const char *body;
        int want_status, want_code;
        const char *message, *extra;
    } cases[] = {
        {200, "{\"data\":{\"value\":1}}", 200, 0, "", "{\"value\":1}"},
        /* a 422 keeps the message and the extra fields, as a local outcome has them */
        {422,
         "{\"errors\":{\"status\":\"error\",\"error\":\"Unknown path(s): x\","
         "\"missing_paths\":[\"x\"],\"available_paths\":[\"n\"]}}",
         422, TRIFLE_EINVAL, "Unknown path(s): x",
         "{\"missing_paths\":[\"x\"],\"available_paths\":[\"n\"]}"},
        {400, "{\"errors\":{\"detail\":\"Bad request\"}}", 400, TRIFLE_EINVAL,
         "driver far: the query was refused with status 400: Bad request", "{}"},
        {500, "{\"errors\":{\"detail\":\"Internal server error\"}}", 500, TRIFLE_EDRIVER,
         "driver far: the query failed with status 500: Internal server error", "{}"},
        {502, "<html>bad gateway</html>", 500, TRIFLE_EDRIVER,
         "driver far: the query failed with status 502: (the body is not JSON)", "{}"},
        /* malformed answers name what is wrong */
        {200, "<html>", 500, TRIFLE_EDRIVER,
         "driver far: the query's answer (status 200) is not JSON: invalid JSON*", "{}"},
        {200, "{\"data\":[1]}", 500, TRIFLE_EDRIVER,
         "driver far: the query's answer (status 200) has no \"data\" object", "{}"},
        {200, "", 500, TRIFLE_EDRIVER,
         "driver far: the query's answer (status 200) is not JSON: invalid JSON*", "{}"},
        {422, "{\"errors\":{\"detail\":\"x\"}}", 500, TRIFLE_EDRIVER,
         "driver far: the query's answer (status 422) has no \"errors\".\"error\" message", "{}"},
        {302, "{}", 500, TRIFLE_EDRIVER, "driver far: the query's answer has status 302", "{}"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_answer(cases[i].status, cases[i].body, cases[i].want_status, cases[i].want_code,
                      cases[i].message, cases[i].extra);
}

static void test_renderings(void **state)
{
    fake f = {0};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_query_result *r;
    char *text = NULL;

    (void)state;
    f.series = "{\"at\":[1769212800,1769216400],\"values\":[{\"x\":{\"a,b\":1.5,\"c\":2}},"
               "{\"x\":{\"c\":10}}]}";
    r = query(&f, "{" BASE "\"granularity\":\"1h\",\"mode\":\"category\",\"value_path\":\"x\"}");
    assert_int_equal(status_of(r), 200);
    assert_int_equal(trifle_query_result_code(r), 0);
    assert_string_equal(trifle_query_result_message(r), "");
    text = render(r, TRIFLE_QUERY_RENDER_DATA);
    assert_true(starts_with(text, "{\"status\":\"ok\",\"formatter\":\"category\","));
    assert_non_null(strstr(text, "\"table\":{\"columns\":[\"at\",\"x.a,b\",\"x.c\"],\"rows\":"
                                 "[[\"2026-01-24T00:00:00Z\",1.5,2],[\"2026-01-24T01:00:00Z\","
                                 "null,10]]}"));
    trifle_mem_free(text);
    /* 1-4 were the HTTP, CLI, CSV and table renderings before 1.0.0; they are server/ and cli/
     * business now */
    assert_int_equal(trifle_query_result_render(&text, r, 1, 0, &err), TRIFLE_EINVAL);
    assert_null(text);
    assert_int_equal(trifle_query_result_render(&text, r, 9, 0, &err), TRIFLE_EINVAL);
    assert_null(text);
    trifle_query_result_free(r);

    r = query(&f, "{" AGG "\"aggregator\":\"avg\",\"value_path\":\"x.c\"}");
    assert_int_equal(trifle_query_result_outcome(r), TRIFLE_QUERY_INVALID);
    assert_int_equal(trifle_query_result_code(r), TRIFLE_EINVAL);
    assert_string_equal(trifle_query_result_message(r), "Unsupported aggregator \"avg\".");
    text = render(r, TRIFLE_QUERY_RENDER_DATA);
    assert_string_equal(text, "{\"allowed\":[\"max\",\"mean\",\"min\",\"sum\"]}");
    trifle_mem_free(text);
    assert_int_equal(
        trifle_query_result_render(&text, r, TRIFLE_QUERY_RENDER_DATA, TRIFLE_JSON_PRETTY, &err),
        0);
    assert_string_equal(text, "{\n  \"allowed\": [\n    \"max\",\n    \"mean\",\n    \"min\",\n"
                              "    \"sum\"\n  ]\n}");
    trifle_mem_free(text);
    assert_int_equal(trifle_query_result_outcome(NULL), TRIFLE_QUERY_FAILED);
    trifle_query_result_free(r);
    trifle_query_result_free(NULL);
}

/* A result as one string, to compare two: outcome, code, message and the rendered @p data. */
static char *fingerprint(const trifle_query_result *r, const char *data)
{
    const char *m = trifle_query_result_message(r);
    size_t n = strlen(m) + strlen(data) + 32;
    char *s = malloc(n);

    assert_non_null(s);
    (void)snprintf(s, n, "%d %d %s %s", trifle_query_result_outcome(r), trifle_query_result_code(r),
                   m, data);
    return s;
}

/* Every allocation failure gives TRIFLE_ENOMEM, or a result identical to the one without
 * failures (nothing is turned into a 400/422/500 by running out of memory), and leaks nothing. */
static void test_oom(void **state)
{
    static const char *const requests[] = {
        "{" AGG "\"value_path\":\"ratio\",\"transpond_paths\":[\"count\",\"duration\"],"
        "\"expression\":\"a / b\",\"response\":\"ratio\"}",
        "{" BASE "\"granularity\":\"1h\",\"mode\":\"timeline\",\"value_path\":\"count\","
        "\"slices\":2}",
        "{" BASE "\"granularity\":\"1h\",\"mode\":\"category\",\"value_path\":\"c\"}",
        "{" AGG "\"value_path\":[\"a\",\"b\"]}",
        "{" AGG "\"value_path\":\"zz\"}",
        "{" AGG "\"aggregator\":\"x\",\"value_path\":\"zz\"}",
    };
    size_t i, n;

    (void)state;
    for (i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        fake f0 = {0};
        trifle_query_result *r0 = query(&f0, requests[i]);
        char *data = render(r0, TRIFLE_QUERY_RENDER_DATA), *want = fingerprint(r0, data);
        int rc = TRIFLE_ENOMEM;
        trifle_mem_free(data);
        trifle_query_result_free(r0);
        for (n = 1; rc == TRIFLE_ENOMEM && n < 100000; n++) {
            trifle__query_env env;
            trifle_query_result *r = NULL;
            trifle_error err = TRIFLE_ERROR_INIT;
            char *text = NULL;
            fake f = {0};
            f.series = default_series;
            env_init(&env, &f, 0, NULL);
            oom_start(n);
            rc = trifle__query_run(&r, requests[i], strlen(requests[i]), &env, &err);
            if (rc == 0)
                rc = trifle_query_result_render(&text, r, TRIFLE_QUERY_RENDER_DATA, 0, &err);
            oom_stop();
            assert_true(rc == 0 || rc == TRIFLE_ENOMEM);
            if (rc == 0) {
                char *got = fingerprint(r, text);
                assert_string_equal(got, want);
                free(got);
            } else {
                assert_int_equal(err.code, TRIFLE_ENOMEM);
            }
            trifle_mem_free(text);
            trifle_query_result_free(r);
        }
        assert_int_equal(rc, 0);
        free(want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* the checks, in their order */
        cmocka_unit_test(test_request_shape),
        cmocka_unit_test(test_check1_key),
        cmocka_unit_test(test_check2_times),
        cmocka_unit_test(test_check3_granularity),
        cmocka_unit_test(test_check4_mode),
        cmocka_unit_test(test_check5_slices),
        cmocka_unit_test(test_check6_value_path),
        cmocka_unit_test(test_check7_aggregator),
        cmocka_unit_test(test_check8_read),
        cmocka_unit_test(test_check9_to_12_paths),
        /* the data objects */
        cmocka_unit_test(test_aggregate_data),
        cmocka_unit_test(test_aggregate_no_data),
        cmocka_unit_test(test_timeline_data),
        cmocka_unit_test(test_category_data),
        cmocka_unit_test(test_transponder),
        /* zones, renderings, allocation failures */
        cmocka_unit_test(test_zone_and_cli_times),
        cmocka_unit_test(test_renderings),
        cmocka_unit_test(test_oom),
        /* answered by a driver with TRIFLE_CAP_QUERY */
        cmocka_unit_test(test_remote_forwards),
        cmocka_unit_test(test_remote_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
