/* Configuration: defaults, every option's validation message, granularity lists (vectors), and the
 * normalised text read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config_int.h"
#include "trifle/trifle.h"
#include "vectors.h"

static trifle_config *new_config(void)
{
    trifle_config *cfg = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;

    assert_int_equal(trifle_config_new(&cfg, &err), 0);
    assert_non_null(cfg);
    return cfg;
}

/* Setting @p name to @p value fails with TRIFLE_ECONFIG and @p message, and changes nothing. */
static void expect_error(trifle_config *cfg, const char *name, const char *value,
                         const char *message)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    const char *before = trifle_config_get(cfg, name);
    char saved[256] = "";

    if (before != NULL)
        (void)snprintf(saved, sizeof(saved), "%s", before);
    assert_int_equal(trifle_config_set(cfg, name, value, &err), TRIFLE_ECONFIG);
    assert_int_equal(err.code, TRIFLE_ECONFIG);
    assert_string_equal(err.message, message);
    /* a rejected value leaves the option as it was */
    if (before != NULL)
        assert_string_equal(trifle_config_get(cfg, name), saved);
}

static void test_defaults(void **state)
{
    trifle_config *cfg = new_config();

    (void)state;
    assert_null(trifle_config_get(cfg, "driver"));
    assert_string_equal(trifle_config_get(cfg, "time_zone"), "UTC");
    assert_string_equal(trifle_config_get(cfg, "week_start"), "monday");
    assert_string_equal(trifle_config_get(cfg, "granularities"), "1m,1h,1d,1w,1mo,1q,1y");
    assert_string_equal(trifle_config_get(cfg, "joined"), "full");
    assert_string_equal(trifle_config_get(cfg, "separator"), "::");
    assert_string_equal(trifle_config_get(cfg, "system_tracking"), "true");
    assert_string_equal(trifle_config_get(cfg, "max_points"), "100000");
    assert_string_equal(trifle_config_get(cfg, "connections"), "1");
    assert_string_equal(trifle_config_get(cfg, "buffer.enabled"), "true");
    assert_string_equal(trifle_config_get(cfg, "buffer.duration_ms"), "1000");
    assert_string_equal(trifle_config_get(cfg, "buffer.size"), "256");
    assert_string_equal(trifle_config_get(cfg, "buffer.aggregate"), "true");
    assert_string_equal(trifle_config_get(cfg, "buffer.async"), "true");
    assert_string_equal(trifle_config_get(cfg, "buffer.max_pending"), "100000");
    assert_string_equal(trifle_config_get(cfg, "buffer.full_policy"), "block");
    assert_string_equal(trifle_config_get(cfg, "buffer.block_timeout_ms"), "30000");
    assert_string_equal(trifle_config_get(cfg, "buffer.retry_initial_ms"), "100");
    assert_string_equal(trifle_config_get(cfg, "buffer.retry_max_ms"), "30000");
    assert_string_equal(trifle_config_get(cfg, "buffer.close_timeout_ms"), "10000");
    assert_string_equal(trifle_config_get(cfg, "buffer.batch_items"), "1000");
    assert_int_equal(trifle_config_granularity_count(cfg), 7);
    assert_string_equal(trifle_config_granularity(cfg, 4), "1mo");
    assert_null(trifle_config_granularity(cfg, 7));
    assert_null(trifle_config_get(cfg, "no_such_option"));
    trifle_config_free(cfg);
}

static void test_invalid_values(void **state)
{
    /* option, rejected value, the message naming it (always TRIFLE_ECONFIG) */
    static const char *const cases[][3] = {
        {"time_zone", "Foo/Bar", "unknown time zone: Foo/Bar"},
        {"time_zone", "+01:00", "unknown time zone: +01:00"},
        {"time_zone", "", "unknown time zone: "},
        {"week_start", "funday", "invalid week start: funday"},
        {"week_start", "7", "invalid week start: 7"},
        {"joined", "halfway", "invalid identifier mode: halfway"},
        {"separator", "", "separator must be 1 to 16 bytes without NUL"},
        {"separator", "12345678901234567", "separator must be 1 to 16 bytes without NUL"},
        {"max_points", "0", "invalid option max_points: 0"},
        {"max_points", "10000001", "invalid option max_points: 10000001"},
        {"max_points", "12abc", "invalid option max_points: 12abc"},
        {"max_points", " 12", "invalid option max_points:  12"},
        {"connections", "65", "invalid option connections: 65"},
        {"system_tracking", "maybe", "invalid option system_tracking: maybe"},
        {"buffer.size", "0", "invalid buffer option size: 0"},
        {"buffer.duration_ms", "-1", "invalid buffer option duration_ms: -1"},
        {"buffer.full_policy", "drop", "invalid buffer option full_policy: drop"},
        {"buffer.enabled", "", "invalid buffer option enabled: "},
        {"buffer.retry_initial_ms", "0", "invalid buffer option retry_initial_ms: 0"},
        {"driver", "", "driver required"},
        {"colour", "blue", "unknown configuration key colour"},
        {"granularities", "1h,5x,1d", "invalid granularity \"5x\" in granularities[1]"},
        {"granularities", "", "granularities must not be empty"},
        {"granularities", "1h,,1d", "invalid granularity \"\" in granularities[1]"},
    };
    trifle_config *cfg = new_config();
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cfg, cases[i][0], cases[i][1], cases[i][2]);
    trifle_config_free(cfg);
}

static void test_normalised_values(void **state)
{
    trifle_config *cfg = new_config();
    trifle_error err = TRIFLE_ERROR_INIT;
    /* option, accepted value, the text read back (in order: later sets override earlier ones) */
    static const char *const cases[][3] = {
        {"time_zone", "Europe/Bratislava", "Europe/Bratislava"},
        {"week_start", "SUN", "sunday"},
        {"week_start", "3", "wednesday"},
        {"joined", "NONE", "separated"},
        {"joined", "null", "separated"},
        {"joined", "Partial", "partial"},
        {"granularities", " 1h , 1d,1h ", "1h,1d"},
        {"buffer.async", "TRUE", "true"},
        {"buffer.async", "0", "false"},
        {"buffer.async", "Yes", "true"},
        {"buffer.async", "off", "false"},
        {"buffer.async", "On", "true"},
        {"buffer.async", "no", "false"},
        {"buffer.full_policy", "ERROR", "error"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(trifle_config_set(cfg, cases[i][0], cases[i][1], &err), 0);
        assert_string_equal(trifle_config_get(cfg, cases[i][0]), cases[i][2]);
    }
    trifle_config_free(cfg);
}

/* granularity.json config_lists: normalisation and the first-bad-entry error. */
static void test_granularity_lists_vectors(void **state)
{
    cJSON *doc = vectors_load("granularity.json");
    cJSON *c;
    int cases = 0;

    (void)state;
    cJSON_ArrayForEach (c, cJSON_GetObjectItem(doc, "config_lists")) {
        trifle_config *cfg = new_config();
        trifle_error err = TRIFLE_ERROR_INIT;
        cJSON *input = cJSON_GetObjectItem(c, "input");
        cJSON *expected = cJSON_GetObjectItem(c, "expected");
        cJSON *error = cJSON_GetObjectItem(c, "error");
        int rc = 0;

        if (!cJSON_IsNull(input)) {
            const char *items[32];
            size_t n = 0;
            cJSON *it;
            cJSON_ArrayForEach (it, input) {
                assert_true(n < 32);
                items[n++] = it->valuestring;
            }
            rc = trifle_config_set_granularities(cfg, items, n, &err);
        }
        if (error != NULL) {
            assert_int_equal(rc, TRIFLE_ECONFIG);
            assert_string_equal(err.message, error->valuestring);
        } else {
            size_t i = 0;
            cJSON *e;
            assert_int_equal(rc, 0);
            assert_int_equal(trifle_config_granularity_count(cfg),
                             (size_t)cJSON_GetArraySize(expected));
            cJSON_ArrayForEach (e, expected) {
                assert_string_equal(trifle_config_granularity(cfg, i), e->valuestring);
                i++;
            }
        }
        trifle_config_free(cfg);
        cases++;
    }
    assert_int_equal(cases, 9);
    cJSON_Delete(doc);
}

static void test_dup_is_deep(void **state)
{
    trifle_config *cfg = new_config(), *copy = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;

    (void)state;
    assert_int_equal(trifle_config_set(cfg, "driver", "sqlite:x.db", &err), 0);
    assert_int_equal(trifle_config_dup(&copy, cfg, &err), 0);
    assert_int_equal(trifle_config_set(cfg, "granularities", "1d", &err), 0);
    assert_int_equal(trifle_config_set(cfg, "driver", "sqlite:y.db", &err), 0);
    assert_string_equal(trifle_config_get(copy, "driver"), "sqlite:x.db");
    assert_int_equal(trifle_config_granularity_count(copy), 7);
    trifle_config_free(cfg);
    trifle_config_free(copy);
}

static void test_cross_checks(void **state)
{
    trifle_config *cfg = new_config();
    trifle_error err = TRIFLE_ERROR_INIT;

    (void)state;
    assert_int_equal(trifle__config_validate(cfg, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "driver required");
    assert_int_equal(trifle_config_set(cfg, "driver", "sqlite:x.db", &err), 0);
    assert_int_equal(trifle__config_validate(cfg, &err), 0);
    assert_int_equal(trifle_config_set(cfg, "buffer.max_pending", "10", &err), 0);
    assert_int_equal(trifle__config_validate(cfg, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "invalid buffer option max_pending: 10");
    assert_int_equal(trifle_config_set(cfg, "buffer.max_pending", "1000", &err), 0);
    assert_int_equal(trifle_config_set(cfg, "buffer.retry_max_ms", "50", &err), 0);
    assert_int_equal(trifle__config_validate(cfg, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "invalid buffer option retry_max_ms: 50");
    trifle_config_free(cfg);
}

static void test_parse_bool(void **state)
{
    int b = -1;

    (void)state;
    assert_int_equal(trifle_parse_bool(&b, "ON"), 0);
    assert_int_equal(b, 1);
    assert_int_equal(trifle_parse_bool(&b, "False"), 0);
    assert_int_equal(b, 0);
    assert_int_equal(trifle_parse_bool(&b, "truthy"), TRIFLE_EINVAL);
    assert_int_equal(trifle_parse_bool(&b, ""), TRIFLE_EINVAL);
    assert_int_equal(trifle_parse_bool(&b, NULL), TRIFLE_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),          cmocka_unit_test(test_invalid_values),
        cmocka_unit_test(test_normalised_values), cmocka_unit_test(test_granularity_lists_vectors),
        cmocka_unit_test(test_dup_is_deep),       cmocka_unit_test(test_cross_checks),
        cmocka_unit_test(test_parse_bool),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
