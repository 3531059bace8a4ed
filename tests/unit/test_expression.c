/* The expression transponder (SPEC §8.6), driven by vectors/expression.json. */
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
    vectors = vectors_load("expression.json");
    return 0;
}

/* The vector's paths as a C array (caller frees the array, not the strings). */
static const char **paths_of(const cJSON *c, size_t *n)
{
    const cJSON *p = vector_get(c, "paths"), *e;
    const char **list = calloc((size_t)cJSON_GetArraySize(p) + 1, sizeof(char *));
    size_t i = 0;

    assert_non_null(list);
    cJSON_ArrayForEach (e, p)
        list[i++] = e->valuestring;
    *n = i;
    return list;
}

/* The value at the response path of a row, or NULL. */
static const cJSON *response_value(const cJSON *row, const char *response)
{
    trifle__path p;
    const cJSON *v;

    assert_int_equal(trifle__path_parse(&p, response, NULL), 0);
    v = trifle__fetch(row, &p);
    trifle__path_free(&p);
    return v;
}

static void test_transform_vectors(void **state)
{
    const cJSON *c;
    int cases = 0, rows_checked = 0, errors = 0;

    (void)state;
    cJSON_ArrayForEach (c, vector_get(vectors, "transform")) {
        trifle_series *s = series_from_json_parts(NULL, vector_get(c, "rows")), *out = NULL;
        trifle_error err = TRIFLE_ERROR_INIT;
        size_t n, i;
        const char **paths = paths_of(c, &n);
        const char *response = vector_get(c, "response")->valuestring;
        const cJSON *values = vector_get(c, "expected_values"),
                    *rows = vector_get(c, "expected_rows"), *error = vector_get(c, "error");
        int rc = trifle_series_transform(&out, s, paths, n,
                                         vector_get(c, "expression")->valuestring, response, &err);
        if (error != NULL) {
            assert_int_equal(rc, TRIFLE_EINVAL);
            assert_string_equal(err.message, error->valuestring);
            assert_null(out);
            errors++;
        } else {
            if (rc != 0)
                fail_msg("%s: %s", vector_get(c, "expression")->valuestring, err.message);
            assert_int_equal(trifle_series_len(out), trifle_series_len(s));
            for (i = 0; i < trifle_series_len(out); i++) {
                assert_true(trifle_series_at(out, i) == trifle_series_at(s, i));
                if (values != NULL) {
                    const cJSON *got = response_value(out->rows[i], response);
                    const cJSON *want = cJSON_GetArrayItem(values, (int)i);
                    if (!json_check(got, want, vector_get(c, "expression")->valuestring))
                        fail();
                }
                if (rows != NULL) {
                    if (!json_check(out->rows[i], cJSON_GetArrayItem(rows, (int)i), "row"))
                        fail();
                    rows_checked++;
                }
            }
            if (rows != NULL)
                assert_int_equal(trifle_series_len(out), cJSON_GetArraySize(rows));
        }
        trifle_series_free(out);
        trifle_series_free(s);
        free(paths);
        cases++;
    }
    assert_true(cases > 20);
    assert_true(rows_checked > 0);
    assert_true(errors > 0);
}

static void test_validate_vectors(void **state)
{
    const cJSON *c;
    int ok = 0, bad = 0;

    (void)state;
    cJSON_ArrayForEach (c, vector_get(vectors, "validate")) {
        trifle_error err = TRIFLE_ERROR_INIT;
        size_t n;
        const char **paths = paths_of(c, &n);
        const cJSON *error = vector_get(c, "error");
        int rc = trifle_expression_validate(paths, n, vector_get(c, "expression")->valuestring,
                                            vector_get(c, "response")->valuestring, &err);
        if (cJSON_IsNull(error)) {
            if (rc != 0)
                fail_msg("%s: %s", vector_get(c, "expression")->valuestring, err.message);
            ok++;
        } else {
            assert_int_equal(rc, TRIFLE_EINVAL);
            if (strcmp(err.message, error->valuestring) != 0)
                fail_msg("%s: got \"%s\", want \"%s\"", vector_get(c, "expression")->valuestring,
                         err.message, error->valuestring);
            bad++;
        }
        free(paths);
    }
    assert_true(ok > 0 && bad > 0);
}

/* ------------------------------------------------------------------------------------------- */

static void test_compile_once_apply_twice(void **state)
{
    static const char *const paths[] = {"m.sum", "m.count"};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_expression *e = NULL;
    cJSON *rows = cJSON_Parse("[{\"m\":{\"sum\":9,\"count\":3}},{\"m\":{\"sum\":1}}]");
    trifle_series *s = series_from_json_parts(NULL, rows), *a = NULL, *b = NULL;
    char *text = NULL;

    (void)state;
    assert_int_equal(
        trifle_expression_compile(&e, paths, 2, "sqrt(a) * b + max(1, 2) - 0.5", " m . r ", &err),
        0);
    assert_int_equal(trifle_expression_apply(&a, e, s, &err), 0);
    assert_int_equal(trifle_expression_apply(&b, e, a, &err), 0);
    assert_int_equal(trifle_series_row_json(b, 0, &text, 0, &err), 0);
    assert_string_equal(text, "{\"m\":{\"sum\":9,\"count\":3,\"r\":10.5}}");
    trifle_mem_free(text);
    assert_int_equal(trifle_series_row_json(b, 1, &text, 0, &err), 0);
    assert_string_equal(text, "{\"m\":{\"sum\":1,\"r\":null}}");
    trifle_mem_free(text);
    /* the input series is unchanged */
    assert_int_equal(trifle_series_row_json(s, 0, &text, 0, &err), 0);
    assert_string_equal(text, "{\"m\":{\"sum\":9,\"count\":3}}");
    trifle_mem_free(text);
    trifle_series_free(a);
    trifle_series_free(b);
    trifle_series_free(s);
    trifle_expression_free(e);
    trifle_expression_free(NULL);
    cJSON_Delete(rows);
}

static void test_null_and_odd_inputs(void **state)
{
    static const char *const with_null[] = {NULL, "x"};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_expression *e = NULL;

    (void)state;
    assert_int_equal(trifle_expression_validate(with_null, 2, "b", "r", &err), 0);
    assert_int_equal(trifle_expression_validate(with_null, 2, "a", "r", &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "unknown variable a");
    assert_int_equal(trifle_expression_validate(with_null, 2, NULL, "r", &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "expression must be text");
    assert_int_equal(trifle_expression_validate(with_null, 2, "b", NULL, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "response path is required");
    assert_int_equal(trifle_expression_validate(with_null, 1, "b", "r", &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "at least one path is required");
    assert_int_equal(trifle_expression_validate(NULL, 0, "b", "r", &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "at least one path is required");
    /* vertical tab inside the text is not a separator */
    assert_int_equal(trifle_expression_validate(with_null + 1, 1, "a\v+ a", "r", &err),
                     TRIFLE_EINVAL);
    assert_string_equal(err.message, "invalid token at position 1");
    assert_int_equal(trifle_expression_compile(&e, with_null + 1, 1, "a +", "r", &err),
                     TRIFLE_EINVAL);
    assert_null(e);
}

static void test_nesting_limit(void **state)
{
    static const char *const paths[] = {"x"};
    trifle_error err = TRIFLE_ERROR_INIT;
    char deep[2000];
    size_t i;

    (void)state;
    for (i = 0; i < 200; i++)
        deep[i] = '(';
    deep[i++] = 'a';
    memset(deep + i, ')', 200);
    deep[i + 200] = '\0';
    assert_int_equal(trifle_expression_validate(paths, 1, deep, "r", &err), 0);
    memset(deep, '-', 1500);
    memcpy(deep + 1500, "a", 2);
    assert_int_equal(trifle_expression_validate(paths, 1, deep, "r", &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "expression is nested too deeply");
    for (i = 0; i < 1000; i++)
        memcpy(deep + 2 * i, "a+", 2);
    deep[1999] = '\0';
    deep[1998] = 'a';
    /* long flat chains are fine: only nesting counts */
    assert_int_equal(trifle_expression_validate(paths, 1, deep, "r", &err), 0);
}

static void test_response_on_non_object_row(void **state)
{
    static const char *const paths[] = {"x"};
    trifle_error err = TRIFLE_ERROR_INIT;
    cJSON *rows = cJSON_Parse("[null,{\"x\":[1]},5]");
    trifle_series *s = series_from_json_parts(NULL, rows), *out = NULL;
    char *text = NULL;

    (void)state;
    s->n = 2; /* first the null row and the array row */
    assert_int_equal(trifle_series_transform(&out, s, paths, 1, "x(1)", "r", &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "unknown function x");
    assert_int_equal(trifle_series_transform(&out, s, paths, 1, "a", "r.v", &err), 0);
    assert_int_equal(trifle_series_row_json(out, 0, &text, 0, &err), 0);
    assert_string_equal(text, "{\"r\":{\"v\":null}}");
    trifle_mem_free(text);
    trifle_series_free(out);
    s->n = 3; /* a row that is a number cannot take a member */
    assert_int_equal(trifle_series_transform(&out, s, paths, 1, "1", "r", &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "cannot write to response path r");
    assert_null(out);
    trifle_series_free(s);
    cJSON_Delete(rows);
}

static void test_oom(void **state)
{
    static const char *const paths[] = {"m.sum", "m.count", "", "m.x"};
    cJSON *rows = cJSON_Parse("[{\"m\":{\"sum\":9,\"count\":3}},{\"m\":null},{}]");
    trifle_series *s = series_from_json_parts(NULL, rows);
    size_t n;
    int rc = TRIFLE_ENOMEM;

    (void)state;
    for (n = 1; rc == TRIFLE_ENOMEM && n < 10000; n++) {
        trifle_error err = TRIFLE_ERROR_INIT;
        trifle_series *out = NULL;
        oom_start(n);
        rc = trifle_series_transform(&out, s, paths, 4, "mean(a, b, d) / (1 + sqrt(b))",
                                     "m.avg.deep", &err);
        oom_stop();
        assert_true(rc == 0 || rc == TRIFLE_ENOMEM);
        if (rc == 0)
            assert_int_equal(trifle_series_len(out), 3);
        else
            assert_null(out);
        trifle_series_free(out);
    }
    assert_int_equal(rc, 0);
    trifle_series_free(s);
    cJSON_Delete(rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transform_vectors),
        cmocka_unit_test(test_validate_vectors),
        cmocka_unit_test(test_compile_once_apply_twice),
        cmocka_unit_test(test_null_and_odd_inputs),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_response_on_non_object_row),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, setup, vectors_teardown);
}
