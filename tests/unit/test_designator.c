/* Designators (SPEC §8.7), driven by vectors/designators.json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <float.h>
#include <math.h>

#include "analysis_helpers.h"
#include "unit_helpers.h"
#include "vectors.h"

static int setup(void **state)
{
    (void)state;
    vectors = vectors_load("designators.json");
    return 0;
}

/* Every [input, label] case of one designator, plus the non-finite inputs. */
static int check_cases(const trifle_designator *d, const cJSON *c)
{
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(c, "cases"), *k;
    char buf[TRIFLE_DESIGNATOR_LABEL_SIZE];
    int n = 0;

    cJSON_ArrayForEach (k, cases) {
        double v = cJSON_GetArrayItem(k, 0)->valuedouble;
        const char *want = cJSON_GetArrayItem(k, 1)->valuestring;
        size_t len = trifle_designator_label(d, v, buf, sizeof(buf));
        if (strcmp(buf, want) != 0)
            fail_msg("designate(%.17g) = \"%s\", want \"%s\"", v, buf, want);
        assert_int_equal(len, strlen(want));
        n++;
    }
    assert_int_equal(trifle_designator_label(d, NAN, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    assert_int_equal(trifle_designator_label(d, INFINITY, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    assert_int_equal(trifle_designator_label(d, -INFINITY, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    return n;
}

/* The designator of one vector of section @p kind ("linear", "geometric" or "custom"). */
static trifle_designator *designator_of(const char *kind, const cJSON *c)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_designator *d = NULL;
    double buckets[64];
    size_t k = 0;
    const cJSON *e;
    int rc;

    if (strcmp(kind, "linear") == 0) {
        rc = trifle_designator_new_linear(&d, vector_num(c, "min"), vector_num(c, "max"),
                                          vector_num(c, "step"), &err);
    } else if (strcmp(kind, "geometric") == 0) {
        rc = trifle_designator_new_geometric(&d, vector_num(c, "min"), vector_num(c, "max"), &err);
    } else {
        cJSON_ArrayForEach (e, vector_get(c, "buckets")) {
            assert_true(k < sizeof(buckets) / sizeof(buckets[0]));
            buckets[k++] = e->valuedouble;
        }
        rc = trifle_designator_new_custom(&d, buckets, k, &err);
    }
    if (rc != 0)
        fail_msg("%s designator: %s", kind, err.message);
    return d;
}

/* Every vector of section @p kind labels its cases; more than 20 cases in all. */
static void check_kind(const char *kind)
{
    const cJSON *c;
    int n = 0;

    cJSON_ArrayForEach (c, vector_get(vectors, kind)) {
        trifle_designator *d = designator_of(kind, c);
        n += check_cases(d, c);
        trifle_designator_free(d);
    }
    assert_true(n > 20);
}

/* Every vector of the designator kind named by the state ("linear", "geometric", "custom"). */
static void test_kind(void **state)
{
    check_kind(*state);
}

static void test_construction_errors(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_designator *d = NULL;
    const double none[] = {NAN, INFINITY};
    const char *lin = "linear designator requires min < max and an integer step >= 1";

    (void)state;
    assert_int_equal(trifle_designator_new_linear(&d, 10, 10, 1, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, lin);
    assert_int_equal(trifle_designator_new_linear(&d, 0, 10, 2.5, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, lin);
    assert_int_equal(trifle_designator_new_linear(&d, 0, 10, 0, &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_designator_new_linear(&d, NAN, 10, 1, &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_designator_new_linear(&d, 0, INFINITY, 1, &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_designator_new_linear(&d, 0, 10, INFINITY, &err), TRIFLE_EINVAL);
    assert_null(d);
    assert_int_equal(trifle_designator_new_geometric(&d, 5, 5, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "geometric designator requires min < max");
    assert_int_equal(trifle_designator_new_geometric(&d, -5, -1, &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_designator_new_geometric(&d, 0, NAN, &err), TRIFLE_EINVAL);
    assert_int_equal(trifle_designator_new_custom(&d, none, 2, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "custom designator requires at least one bucket");
    assert_int_equal(trifle_designator_new_custom(&d, NULL, 0, &err), TRIFLE_EINVAL);
    assert_null(d);
    trifle_designator_free(NULL);
}

static void test_labels_edges(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_designator *d = NULL;
    const double b[] = {NAN, 5, -0.0, 0, 1e-7};
    char buf[TRIFLE_DESIGNATOR_LABEL_SIZE], small[4];

    (void)state;
    /* non-finite buckets are ignored, -0 and 0 are one bucket, labels never use exponents */
    assert_int_equal(trifle_designator_new_custom(&d, b, 5, &err), 0);
    trifle_designator_label(d, 1e-8, buf, sizeof(buf));
    assert_string_equal(buf, "0.0000001");
    trifle_designator_label(d, -3, buf, sizeof(buf));
    assert_string_equal(buf, "0");
    assert_int_equal(trifle_designator_label(d, 6, small, sizeof(small)), 2);
    assert_string_equal(small, "5+");
    assert_int_equal(trifle_designator_label(d, 2, small, 1), 1);
    assert_string_equal(small, "");
    trifle_designator_free(d);
    /* the longest labels fit TRIFLE_DESIGNATOR_LABEL_SIZE */
    assert_int_equal(trifle_designator_new_geometric(&d, 0, DBL_MAX, &err), 0);
    assert_true(trifle_designator_label(d, DBL_MAX / 2, buf, sizeof(buf)) < sizeof(buf));
    assert_true(strlen(buf) > 300 && strcmp(buf + strlen(buf) - 2, ".0") == 0);
    assert_true(trifle_designator_label(d, 5e-324, buf, sizeof(buf)) < sizeof(buf));
    trifle_designator_free(d);
    assert_int_equal(trifle_designator_new_linear(&d, -DBL_MAX, DBL_MAX, 7, &err), 0);
    assert_true(trifle_designator_label(d, -DBL_MAX / 3, buf, sizeof(buf)) < sizeof(buf));
    assert_int_equal(trifle_designator_label(d, 15, buf, sizeof(buf)), 2);
    assert_string_equal(buf, "21");
    assert_int_equal(trifle_designator_label(d, -15, buf, sizeof(buf)), 3);
    assert_string_equal(buf, "-14");
    trifle_designator_free(d);
}

static void test_oom(void **state)
{
    const double b[] = {3, 1, 2};
    size_t n;
    int done = 0;

    (void)state;
    for (n = 1; !done; n++) {
        trifle_error err = TRIFLE_ERROR_INIT;
        trifle_designator *x = NULL, *y = NULL, *z = NULL;
        int r1, r2, r3;
        oom_start(n);
        r1 = trifle_designator_new_linear(&x, 0, 1, 1, &err);
        r2 = trifle_designator_new_geometric(&y, 0, 1, &err);
        r3 = trifle_designator_new_custom(&z, b, 3, &err);
        oom_stop();
        assert_true(r1 == 0 || (r1 == TRIFLE_ENOMEM && x == NULL));
        assert_true(r2 == 0 || (r2 == TRIFLE_ENOMEM && y == NULL));
        assert_true(r3 == 0 || (r3 == TRIFLE_ENOMEM && z == NULL));
        done = r1 == 0 && r2 == 0 && r3 == 0;
        trifle_designator_free(x);
        trifle_designator_free(y);
        trifle_designator_free(z);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_TEST_WITH(test_linear, test_kind, "linear"),
        UNIT_TEST_WITH(test_geometric, test_kind, "geometric"),
        UNIT_TEST_WITH(test_custom, test_kind, "custom"),
        cmocka_unit_test(test_construction_errors),
        cmocka_unit_test(test_labels_edges),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, setup, vectors_teardown);
}
