/* Granularity grammar (SPEC §2.1, granularity.json valid/invalid, ERRATA minor 11) and week starts
 * (SPEC §1). The config_lists vectors belong to the configuration tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "trifle/time.h"
#include "vectors.h"

static int setup(void **state)
{
    (void)state;
    vectors = vectors_load("granularity.json");
    return 0;
}

/* The unit names in trifle_unit order (the header documents each value's text). */
static const char *const unit_text[] = {"s", "m", "h", "d", "w", "mo", "q", "y"};

/* One "valid" vector: it parses to its offset, unit and label, the error untouched. */
static int check_valid(const cJSON *c)
{
    trifle_granularity g;
    trifle_error err = TRIFLE_ERROR_INIT;

    memset(&g, 0x5a, sizeof(g));
    if (trifle_granularity_parse(&g, vector_str(c, "input"), &err) != 0)
        fail_msg("%s: %s", vector_str(c, "input"), err.message);
    assert_int_equal(g.offset, vector_int(c, "offset"));
    assert_true(g.unit >= TRIFLE_UNIT_SECOND && g.unit <= TRIFLE_UNIT_YEAR);
    assert_string_equal(unit_text[g.unit], vector_str(c, "unit"));
    assert_string_equal(g.label, vector_str(c, "label"));
    assert_int_equal(err.code, 0); /* untouched on success */
    return 0;
}

/* One "invalid" vector: refused with TRIFLE_EINVAL and its message. */
static int check_invalid(const cJSON *c)
{
    trifle_granularity g;
    trifle_error err = TRIFLE_ERROR_INIT;

    assert_int_equal(trifle_granularity_parse(&g, vector_str(c, "input"), &err), TRIFLE_EINVAL);
    assert_int_equal(err.code, TRIFLE_EINVAL);
    assert_string_equal(err.message, vector_str(c, "error"));
    return 0;
}

static void test_valid_vectors(void **state)
{
    (void)state;
    vectors_run("valid", check_valid);
}

static void test_invalid_vectors(void **state)
{
    (void)state;
    vectors_run("invalid", check_invalid);
}

static void expect_invalid(const char *text)
{
    trifle_granularity g;
    trifle_error err = TRIFLE_ERROR_INIT;
    char want[300];
    (void)snprintf(want, sizeof(want), "invalid granularity: %s", text);
    assert_int_equal(trifle_granularity_parse(&g, text, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, want);
}

static void expect_valid(const char *text, int64_t offset, int unit)
{
    trifle_granularity g;
    assert_int_equal(trifle_granularity_parse(&g, text, NULL), 0);
    assert_int_equal(g.offset, offset);
    assert_int_equal(g.unit, unit);
    assert_string_equal(g.label, text);
}

static void test_limits(void **state)
{
    (void)state;
    /* labels must fit the 32-byte field with its NUL: 31 bytes pass, 32 fail */
    expect_valid("00000000000000000000000000001mo", 1, TRIFLE_UNIT_MONTH);
    expect_invalid("000000000000000000000000000001mo");
    expect_valid("000000000000000000000001000000s", 1000000, TRIFLE_UNIT_SECOND);
    expect_invalid("0000000000000000000000001000000s");
    /* offsets: 1 ... 1 000 000, no overflow on long digit strings */
    expect_valid("1000000w", 1000000, TRIFLE_UNIT_WEEK);
    expect_invalid("1000001w");
    expect_invalid("18446744073709551617h");
    expect_invalid("0000000000000000000000000000000");
    /* `Ny` whose floor of 9999-12-31 is below year 1 (ERRATA minor 11): N > 9999 */
    expect_valid("9999y", 9999, TRIFLE_UNIT_YEAR);
    expect_invalid("10000y");
    expect_invalid("1000000y");
    expect_valid("10000q", 10000, TRIFLE_UNIT_QUARTER);
    /* the whole string, nothing else */
    expect_invalid("1y\x01");
    expect_invalid("1\0h"); /* reads as "1" */
    expect_invalid("1mo\xc2\xa0");
    expect_invalid("１h");
    expect_invalid("1s1s");

    trifle_error err = TRIFLE_ERROR_INIT;
    assert_int_equal(trifle_granularity_parse(NULL, "15m", &err), 0);
    assert_int_equal(trifle_granularity_parse(NULL, NULL, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "invalid granularity: ");
    /* the granularity is untouched on failure */
    trifle_granularity g;
    assert_int_equal(trifle_granularity_parse(&g, "7m", NULL), 0);
    assert_int_equal(trifle_granularity_parse(&g, "7x", NULL), TRIFLE_EINVAL);
    assert_string_equal(g.label, "7m");
}

static void test_weekday(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int day;
    } good[] = {{"sunday", 0}, {"Monday", 1},   {"TUESDAY", 2}, {"wEdNeSdAy", 3}, {"thursday", 4},
                {"friday", 5}, {"saturday", 6}, {"sun", 0},     {"MON", 1},       {"Tue", 2},
                {"wed", 3},    {"thu", 4},      {"fri", 5},     {"sat", 6},       {"0", 0},
                {"6", 6},      {"3", 3}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int day = -1;
        trifle_error err = TRIFLE_ERROR_INIT;
        assert_int_equal(trifle_weekday_parse(&day, good[i].text, &err), 0);
        assert_int_equal(day, good[i].day);
    }
    static const char *const bad[] = {"",        "7",   "-1",    "01",       " monday",
                                      "monday ", "mo",  "sunda", "sundays",  "weds",
                                      "thur",    "1.0", "+1",    "dimanche", "su n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int day = 42;
        trifle_error err = TRIFLE_ERROR_INIT;
        char want[300];
        (void)snprintf(want, sizeof(want), "invalid week start: %s", bad[i]);
        assert_int_equal(trifle_weekday_parse(&day, bad[i], &err), TRIFLE_ECONFIG);
        assert_int_equal(err.code, TRIFLE_ECONFIG);
        assert_string_equal(err.message, want);
        assert_int_equal(day, 42);
    }
    trifle_error err = TRIFLE_ERROR_INIT;
    assert_int_equal(trifle_weekday_parse(NULL, NULL, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "invalid week start: ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_vectors),
        cmocka_unit_test(test_invalid_vectors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_weekday),
    };
    return cmocka_run_group_tests(tests, setup, vectors_teardown);
}
