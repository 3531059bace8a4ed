/* Series container, available paths, slicing, aggregators, path resolution and the formatters
 * (SPEC §8.1-§8.5), driven by vectors/series.json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "analysis_helpers.h"
#include "analysis_int.h"
#include "vectors.h"

static int setup(void **state)
{
    (void)state;
    vectors = vectors_load("series.json");
    return 0;
}

static const cJSON *section(const char *name)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(vectors, name);
    assert_non_null(s);
    assert_true(cJSON_GetArraySize(s) > 0);
    return s;
}

/* ------------------------------------------------------------------------------------------- */

static void test_normalize(void **state)
{
    const cJSON *c;
    int cases = 0;

    (void)state;
    cJSON_ArrayForEach (c, section("normalize")) {
        trifle_series *s = series_from_json_parts(NULL, vector_get(c, "values"));
        const cJSON *want = vector_get(c, "expected");
        size_t i;
        assert_int_equal(trifle_series_len(s), cJSON_GetArraySize(want));
        for (i = 0; i < trifle_series_len(s); i++)
            assert_true(json_check(s->rows[i], cJSON_GetArrayItem(want, (int)i), "normalize"));
        trifle_series_free(s);
        cases++;
    }
    assert_true(cases > 0);
}

/* @p got (freed here) equals @p want; the trees are printed when not. */
static void expect_json(cJSON *got, const cJSON *want, const char *what)
{
    int same = json_check(got, want, what);

    cJSON_Delete(got);
    if (!same)
        fail();
}

/* The path lists of section @p name: "available_paths" (every path of the series) or
 * "resolve_paths" (the paths a vector's "path" names). */
static void check_path_lists(const char *name)
{
    int resolve = strcmp(name, "resolve_paths") == 0;
    const cJSON *c;

    cJSON_ArrayForEach (c, section(name)) {
        trifle_series *s = series_from_json_parts(NULL, vector_get(c, "values"));
        const char *what = resolve ? vector_str(c, "path") : name;
        trifle_error err = TRIFLE_ERROR_INIT;
        char **list = NULL;
        size_t n = 99;
        if (resolve) {
            assert_int_equal(trifle_series_resolve_paths(&list, &n, s, what, &err), 0);
        } else {
            assert_int_equal(trifle_series_available_paths(&list, &n, s, &err), 0);
            assert_null(list[n]);
        }
        expect_json(strings_json(list, n), vector_get(c, "expected"), what);
        trifle_mem_free(list);
        trifle_series_free(s);
    }
}

static void test_available_paths(void **state)
{
    (void)state;
    check_path_lists("available_paths");
}

static void test_slicing(void **state)
{
    const cJSON *c;

    (void)state;
    cJSON_ArrayForEach (c, section("slicing")) {
        const cJSON *items = vector_get(c, "items");
        size_t n = (size_t)vector_get(c, "n")->valuedouble, groups, start, size, g, i;
        cJSON *got = cJSON_CreateArray();
        trifle__slices(n, (size_t)vector_get(c, "slices")->valuedouble, &groups, &start, &size);
        for (g = 0; g < groups; g++) {
            cJSON *group = cJSON_CreateArray();
            for (i = start + g * size; i < start + (g + 1) * size; i++)
                cJSON_AddItemToArray(group, cJSON_Duplicate(cJSON_GetArrayItem(items, (int)i), 1));
            cJSON_AddItemToArray(got, group);
        }
        expect_json(got, vector_get(c, "groups"), "slicing");
    }
}

static void test_aggregate(void **state)
{
    const cJSON *c;
    int errors = 0;

    (void)state;
    cJSON_ArrayForEach (c, section("aggregate")) {
        trifle_series *s = series_from_vector(vector_get(c, "series"));
        trifle_error err = TRIFLE_ERROR_INIT;
        double *values = NULL;
        unsigned char *present = NULL;
        size_t n = 99, i;
        int agg = -1, rc;
        const cJSON *want = vector_get(c, "expected"), *error = vector_get(c, "error");

        assert_int_equal(
            trifle_aggregator_parse(&agg, vector_get(c, "aggregator")->valuestring, &err), 0);
        rc = trifle_series_aggregate(&values, &present, &n, s, agg,
                                     vector_get(c, "path")->valuestring,
                                     (size_t)vector_get(c, "slices")->valuedouble, &err);
        if (error != NULL) {
            assert_int_equal(rc, TRIFLE_EINVAL);
            assert_string_equal(err.message, error->valuestring);
            assert_null(values);
            assert_null(present);
            errors++;
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(n, cJSON_GetArraySize(want));
            for (i = 0; i < n; i++) {
                const cJSON *w = cJSON_GetArrayItem(want, (int)i);
                if (cJSON_IsNull(w)) {
                    assert_int_equal(present[i], 0);
                    assert_true(isnan(values[i]));
                } else {
                    assert_int_equal(present[i], 1);
                    assert_true(values[i] == w->valuedouble);
                }
            }
        }
        trifle_mem_free(values);
        trifle_mem_free(present);
        trifle_series_free(s);
    }
    assert_true(errors > 0);
}

static void test_aggregator_names(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    int a = -1;

    (void)state;
    assert_int_equal(trifle_aggregator_parse(&a, "mean", &err), 0);
    assert_int_equal(a, TRIFLE_AGGREGATOR_MEAN);
    assert_string_equal(trifle_aggregator_name(TRIFLE_AGGREGATOR_MAX), "max");
    assert_null(trifle_aggregator_name(4));
    assert_int_equal(trifle_aggregator_parse(&a, "median", &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "unknown aggregator: median");
}

static void test_aggregate_present_optional(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    cJSON *rows = cJSON_Parse("[{\"x\":1},{\"y\":2}]");
    trifle_series *s = series_from_json_parts(NULL, rows);
    double *v = NULL;
    size_t n = 0;

    (void)state;
    assert_int_equal(trifle_series_aggregate(&v, NULL, &n, s, TRIFLE_AGGREGATOR_MIN, "y", 2, &err),
                     0);
    assert_int_equal(n, 2);
    assert_true(isnan(v[0]));
    assert_true(v[1] == 2);
    trifle_mem_free(v);
    assert_int_equal(trifle_series_aggregate(&v, NULL, &n, s, 9, "y", 1, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "unknown aggregator: 9");
    trifle_series_free(s);
    cJSON_Delete(rows);
}

static void test_resolve_paths(void **state)
{
    (void)state;
    check_path_lists("resolve_paths");
}

/* Run a formatter vector through the public function (text) and compare. */
static void formatter_vectors(const char *name)
{
    const cJSON *c;

    cJSON_ArrayForEach (c, section(name)) {
        trifle_series *s = series_from_vector(vector_get(c, "series"));
        trifle_error err = TRIFLE_ERROR_INIT;
        size_t slices = (size_t)vector_get(c, "slices")->valuedouble;
        const char *path = vector_get(c, "path")->valuestring;
        char *text = NULL;
        cJSON *got;
        int rc;
        if (strcmp(name, "timeline") == 0)
            rc = trifle_series_timeline(&text, s, path, slices, NULL, TRIFLE_SERIES_UNIX_TIME, NULL,
                                        NULL, &err);
        else
            rc = trifle_series_category(&text, s, path, slices, 0, NULL, NULL, &err);
        assert_int_equal(rc, 0);
        got = cJSON_Parse(text);
        trifle_mem_free(text);
        assert_non_null(got);
        expect_json(got, vector_get(c, "expected"), path);
        trifle_series_free(s);
    }
}

static void test_timeline(void **state)
{
    (void)state;
    formatter_vectors("timeline");
}

static void test_category(void **state)
{
    (void)state;
    formatter_vectors("category");
}

/* ------------------------------------------------------------------------------------------- */
/* Formatter details beyond the vectors                                                         */

static trifle_series *sample(void)
{
    cJSON *v = cJSON_Parse("{\"at\":[1736899200,1736985600],\"values\":[{\"c\":{\"US\":1,\"SK\":"
                           "\"2\"}},{\"c\":{\"US\":3,\"CZ\":4}}]}");
    trifle_series *s = series_from_vector(v);
    cJSON_Delete(v);
    return s;
}

/* The fixture of the formatter tests: sample() in *state. */
static int with_sample(void **state)
{
    *state = sample();
    return 0;
}

static int free_sample(void **state)
{
    trifle_series_free(*state);
    return 0;
}

static void test_timeline_rfc3339_utc(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_series *s = *state;
    char *text = NULL;

    assert_int_equal(trifle_series_timeline(&text, s, "c.US", 1, NULL, 0, NULL, NULL, &err), 0);
    assert_string_equal(text, "{\"c.US\":[{\"at\":\"2025-01-15T00:00:00Z\",\"value\":1},"
                              "{\"at\":\"2025-01-16T00:00:00Z\",\"value\":3}]}");
    trifle_mem_free(text);
}

static int timeline_cb(const char **json_out, int64_t at, const char *raw_json, void *payload)
{
    static char buf[128];
    int *calls = payload;

    (*calls)++;
    if (at == 1736985600)
        return 0; /* keep the default entry */
    (void)snprintf(buf, sizeof(buf), "[%lld,%s]", (long long)at, raw_json ? raw_json : "\"-\"");
    *json_out = buf;
    return 0;
}

static void test_timeline_callback(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_series *s = *state;
    char *text = NULL;
    int calls = 0;

    assert_int_equal(trifle_series_timeline(&text, s, "c", 1, NULL, TRIFLE_SERIES_UNIX_TIME,
                                            timeline_cb, &calls, &err),
                     0);
    assert_int_equal(calls, 6);
    /* normalisation made "2" a number; CZ is absent from the first row */
    assert_string_equal(text, "{\"c.CZ\":[[1736899200,\"-\"],{\"at\":1736985600,\"value\":4}],"
                              "\"c.SK\":[[1736899200,2],{\"at\":1736985600,\"value\":0}],"
                              "\"c.US\":[[1736899200,1],{\"at\":1736985600,\"value\":3}]}");
    trifle_mem_free(text);
}

static int timeline_bad_cb(const char **json_out, int64_t at, const char *raw, void *payload)
{
    (void)at;
    (void)raw;
    *json_out = "{oops";
    return payload != NULL ? TRIFLE_ENOTSUP : 0;
}

static void test_timeline_callback_errors(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_series *s = *state;
    char *text = NULL;
    int flag = 1;

    assert_int_equal(
        trifle_series_timeline(&text, s, "c.US", 1, NULL, 0, timeline_bad_cb, NULL, &err),
        TRIFLE_EINVAL);
    assert_null(text);
    assert_int_equal(
        trifle_series_timeline(&text, s, "c.US", 1, NULL, 0, timeline_bad_cb, &flag, &err),
        TRIFLE_ENOTSUP);
    assert_true(strncmp(err.message, "timeline callback failed: ", 26) == 0);
    assert_string_equal(err.message + 26, trifle_strerror(TRIFLE_ENOTSUP));
    assert_null(text);
}

static int category_cb(const char **path_out, double *value_out, const char *path,
                       const char *raw_json, void *payload)
{
    (void)payload;
    (void)raw_json;
    if (strcmp(path, "c.CZ") == 0 || strcmp(path, "c.SK") == 0)
        *path_out = "europe"; /* merge two keys */
    else
        *path_out = ""; /* keep */
    *value_out = *value_out * 10;
    return 0;
}

static void test_category_callback(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_series *s = *state;
    char *text = NULL;

    assert_int_equal(trifle_series_category(&text, s, "c", 1, 0, category_cb, NULL, &err), 0);
    assert_string_equal(text, "{\"europe\":60,\"c.US\":40}");
    trifle_mem_free(text);
    assert_int_equal(
        trifle_series_category(&text, s, "c", 2, TRIFLE_JSON_PRETTY, category_cb, NULL, &err), 0);
    assert_string_equal(text, "[\n  {\n    \"europe\": 20,\n    \"c.US\": 10\n  },\n"
                              "  {\n    \"europe\": 40,\n    \"c.US\": 30\n  }\n]");
    trifle_mem_free(text);
}

/* ------------------------------------------------------------------------------------------- */
/* The container                                                                                */

static void test_container(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_series *s = NULL;
    const char *json = "{\"at\":[1736899200,1736902800],\"values\":[{\"a\":{\"b\":\" 2.5 \"},"
                       "\"l\":[7,\"8\"]},{}],\"ignored\":true}";
    char *text = NULL;
    double d = 0;

    (void)state;
    assert_int_equal(trifle_series_from_json(&s, json, strlen(json), &err), 0);
    assert_int_equal(trifle_series_len(s), 2);
    assert_true(trifle_series_at(s, 1) == 1736902800);
    assert_true(trifle_series_at(s, 2) == 0);
    assert_int_equal(trifle_series_value(s, 0, " a . b", &d), 0);
    assert_true(d == 2.5);
    assert_int_equal(trifle_series_value(s, 0, "l.1", &d), 0);
    assert_true(d == 8);
    assert_int_equal(trifle_series_value(s, 0, "l.2", &d), TRIFLE_ENOTFOUND);
    assert_int_equal(trifle_series_value(s, 0, "a", &d), TRIFLE_ENOTFOUND);
    assert_int_equal(trifle_series_value(s, 1, "a.b", &d), TRIFLE_ENOTFOUND);
    assert_int_equal(trifle_series_value(s, 5, "a.b", &d), TRIFLE_ENOTFOUND);
    assert_int_equal(trifle_series_row_json(s, 0, &text, 0, &err), 0);
    assert_string_equal(text, "{\"a\":{\"b\":2.5},\"l\":[7,8]}");
    trifle_mem_free(text);
    assert_int_equal(trifle_series_row_json(s, 2, &text, 0, &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_series_to_json(s, NULL, &text, 0, &err), 0);
    assert_string_equal(text, "{\"at\":[\"2025-01-15T00:00:00Z\",\"2025-01-15T01:00:00Z\"],"
                              "\"values\":[{\"a\":{\"b\":2.5},\"l\":[7,8]},{}]}");
    trifle_mem_free(text);
    trifle_series_free(s);
    trifle_series_free(NULL);
    assert_int_equal(trifle_series_len(NULL), 0);
}

static void test_from_json_errors(void **state)
{
    static const struct {
        const char *json, *message;
    } cases[] = {
        {"{\"at\":[1,2],\"values\":[{}]}", "series arrays differ in length"},
        {"{\"at\":[1],\"values\":{}}",
         "series must be an object with \"at\" and \"values\" arrays"},
        {"[1]", "series must be an object with \"at\" and \"values\" arrays"},
        {"{\"at\":[1.5],\"values\":[{}]}", "series at[0] is not an integer"},
        {"{\"at\":[\"1\"],\"values\":[{}]}", "series at[0] is not an integer"},
        {"{\"at\":[1e300],\"values\":[{}]}", "series at[0] is not an integer"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        trifle_error err = TRIFLE_ERROR_INIT;
        trifle_series *s = (trifle_series *)&err;
        assert_int_equal(trifle_series_from_json(&s, cases[i].json, strlen(cases[i].json), &err),
                         TRIFLE_EINVAL);
        assert_null(s);
        assert_string_equal(err.message, cases[i].message);
    }
    {
        trifle_error err = TRIFLE_ERROR_INIT;
        trifle_series *s = NULL;
        assert_int_equal(trifle_series_from_json(&s, "{", 1, &err), TRIFLE_EINVAL);
        assert_true(strncmp(err.message, "invalid JSON", 12) == 0);
    }
}

static void test_paths(void **state)
{
    trifle__path p;

    (void)state;
    assert_int_equal(trifle__path_parse(&p, " a..b. ", NULL), 0);
    assert_int_equal(p.n, 2);
    assert_string_equal(p.text, "a.b");
    trifle__path_free(&p);
    assert_int_equal(trifle__path_parse(&p, "...", NULL), 0);
    assert_int_equal(p.n, 0);
    assert_string_equal(p.text, "");
    trifle__path_free(&p);
    assert_int_equal(trifle__path_parse(&p, NULL, NULL), 0);
    assert_int_equal(p.n, 0);
    trifle__path_free(&p);
}

/* ------------------------------------------------------------------------------------------- */
/* Out of memory: every allocation failure ends in TRIFLE_ENOMEM and leaks nothing (valgrind, ASan)
 */

static void test_oom(void **state)
{
    trifle_series *s = *state;
    size_t n;
    int done_all = 0;

    for (n = 1; !done_all && n < 10000; n++) {
        trifle_error err = TRIFLE_ERROR_INIT;
        char **list = NULL, *text = NULL;
        double *v = NULL;
        unsigned char *p = NULL;
        size_t cnt = 0;
        int rc[6];
        oom_start(n);
        rc[0] = trifle_series_available_paths(&list, &cnt, s, &err);
        trifle_mem_free(list);
        rc[1] = trifle_series_resolve_paths(&list, &cnt, s, "c.*", &err);
        trifle_mem_free(list);
        rc[2] = trifle_series_aggregate(&v, &p, &cnt, s, TRIFLE_AGGREGATOR_SUM, "c.US", 2, &err);
        trifle_mem_free(v);
        trifle_mem_free(p);
        rc[3] = trifle_series_timeline(&text, s, "c", 2, NULL, 0, NULL, NULL, &err);
        trifle_mem_free(text);
        rc[4] = trifle_series_category(&text, s, "c", 2, 0, NULL, NULL, &err);
        trifle_mem_free(text);
        rc[5] = trifle_series_to_json(s, NULL, &text, 0, &err);
        trifle_mem_free(text);
        oom_stop();
        done_all = 1;
        for (cnt = 0; cnt < 6; cnt++) {
            assert_true(rc[cnt] == 0 || rc[cnt] == TRIFLE_ENOMEM);
            done_all &= rc[cnt] == 0;
        }
    }
    assert_true(done_all);
}

/* A test on the sample series. */
#define WITH_SAMPLE(test) cmocka_unit_test_setup_teardown(test, with_sample, free_sample)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_available_paths),
        cmocka_unit_test(test_slicing),
        cmocka_unit_test(test_aggregate),
        cmocka_unit_test(test_aggregator_names),
        cmocka_unit_test(test_aggregate_present_optional),
        cmocka_unit_test(test_resolve_paths),
        cmocka_unit_test(test_timeline),
        cmocka_unit_test(test_category),
        WITH_SAMPLE(test_timeline_rfc3339_utc),
        WITH_SAMPLE(test_timeline_callback),
        WITH_SAMPLE(test_timeline_callback_errors),
        WITH_SAMPLE(test_category_callback),
        cmocka_unit_test(test_container),
        cmocka_unit_test(test_from_json_errors),
        cmocka_unit_test(test_paths),
        WITH_SAMPLE(test_oom),
    };
    return cmocka_run_group_tests(tests, setup, vectors_teardown);
}
