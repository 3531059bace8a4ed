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

static void expect_error(trifle_config *cfg, const char *name, const char *value, int code,
                         const char *message)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    const char *before = trifle_config_get(cfg, name);
    char saved[256] = "";

    if (before != NULL)
        (void)snprintf(saved, sizeof(saved), "%s", before);
    assert_int_equal(trifle_config_set(cfg, name, value, &err), code);
    assert_int_equal(err.code, code);
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
    trifle_config *cfg = new_config();

    (void)state;
    expect_error(cfg, "time_zone", "Foo/Bar", TRIFLE_ECONFIG, "unknown time zone: Foo/Bar");
    expect_error(cfg, "time_zone", "+01:00", TRIFLE_ECONFIG, "unknown time zone: +01:00");
    expect_error(cfg, "time_zone", "", TRIFLE_ECONFIG, "unknown time zone: ");
    expect_error(cfg, "week_start", "funday", TRIFLE_ECONFIG, "invalid week start: funday");
    expect_error(cfg, "week_start", "7", TRIFLE_ECONFIG, "invalid week start: 7");
    expect_error(cfg, "joined", "halfway", TRIFLE_ECONFIG, "invalid identifier mode: halfway");
    expect_error(cfg, "separator", "", TRIFLE_ECONFIG,
                 "separator must be 1 to 16 bytes without NUL");
    expect_error(cfg, "separator", "12345678901234567", TRIFLE_ECONFIG,
                 "separator must be 1 to 16 bytes without NUL");
    expect_error(cfg, "max_points", "0", TRIFLE_ECONFIG, "invalid option max_points: 0");
    expect_error(cfg, "max_points", "10000001", TRIFLE_ECONFIG,
                 "invalid option max_points: 10000001");
    expect_error(cfg, "max_points", "12abc", TRIFLE_ECONFIG, "invalid option max_points: 12abc");
    expect_error(cfg, "max_points", " 12", TRIFLE_ECONFIG, "invalid option max_points:  12");
    expect_error(cfg, "connections", "65", TRIFLE_ECONFIG, "invalid option connections: 65");
    expect_error(cfg, "system_tracking", "maybe", TRIFLE_ECONFIG,
                 "invalid option system_tracking: maybe");
    expect_error(cfg, "buffer.size", "0", TRIFLE_ECONFIG, "invalid buffer option size: 0");
    expect_error(cfg, "buffer.duration_ms", "-1", TRIFLE_ECONFIG,
                 "invalid buffer option duration_ms: -1");
    expect_error(cfg, "buffer.full_policy", "drop", TRIFLE_ECONFIG,
                 "invalid buffer option full_policy: drop");
    expect_error(cfg, "buffer.enabled", "", TRIFLE_ECONFIG, "invalid buffer option enabled: ");
    expect_error(cfg, "buffer.retry_initial_ms", "0", TRIFLE_ECONFIG,
                 "invalid buffer option retry_initial_ms: 0");
    expect_error(cfg, "driver", "", TRIFLE_ECONFIG, "driver required");
    expect_error(cfg, "colour", "blue", TRIFLE_ECONFIG, "unknown configuration key colour");
    expect_error(cfg, "granularities", "1h,5x,1d", TRIFLE_ECONFIG,
                 "invalid granularity \"5x\" in granularities[1]");
    expect_error(cfg, "granularities", "", TRIFLE_ECONFIG, "granularities must not be empty");
    expect_error(cfg, "granularities", "1h,,1d", TRIFLE_ECONFIG,
                 "invalid granularity \"\" in granularities[1]");
    trifle_config_free(cfg);
}

static void test_normalised_values(void **state)
{
    trifle_config *cfg = new_config();
    trifle_error err = TRIFLE_ERROR_INIT;
    static const char *const bools[][2] = {{"TRUE", "true"}, {"0", "false"}, {"Yes", "true"},
                                           {"off", "false"}, {"On", "true"}, {"no", "false"}};
    size_t i;

    (void)state;
    assert_int_equal(trifle_config_set(cfg, "time_zone", "Europe/Bratislava", &err), 0);
    assert_string_equal(trifle_config_get(cfg, "time_zone"), "Europe/Bratislava");
    assert_int_equal(trifle_config_set(cfg, "week_start", "SUN", &err), 0);
    assert_string_equal(trifle_config_get(cfg, "week_start"), "sunday");
    assert_int_equal(trifle_config_set(cfg, "week_start", "3", &err), 0);
    assert_string_equal(trifle_config_get(cfg, "week_start"), "wednesday");
    assert_int_equal(trifle_config_set(cfg, "joined", "NONE", &err), 0);
    assert_string_equal(trifle_config_get(cfg, "joined"), "separated");
    assert_int_equal(trifle_config_set(cfg, "joined", "null", &err), 0);
    assert_string_equal(trifle_config_get(cfg, "joined"), "separated");
    assert_int_equal(trifle_config_set(cfg, "joined", "Partial", &err), 0);
    assert_string_equal(trifle_config_get(cfg, "joined"), "partial");
    assert_int_equal(trifle_config_set(cfg, "granularities", " 1h , 1d,1h ", &err), 0);
    assert_string_equal(trifle_config_get(cfg, "granularities"), "1h,1d");
    for (i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        assert_int_equal(trifle_config_set(cfg, "buffer.async", bools[i][0], &err), 0);
        assert_string_equal(trifle_config_get(cfg, "buffer.async"), bools[i][1]);
    }
    assert_int_equal(trifle_config_set(cfg, "buffer.full_policy", "ERROR", &err), 0);
    assert_string_equal(trifle_config_get(cfg, "buffer.full_policy"), "error");
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
