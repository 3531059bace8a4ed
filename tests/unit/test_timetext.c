/* Time text: RFC 3339 output (SPEC conventions), the HTTP time grammar (SPEC §9.1) and the CLI
 * forms (SPEC §11.3), with round trips through format and parse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "unit_helpers.h"
#include "vectors.h"

#include "nocturnal_int.h"
#include "trifle/time.h"

static void expect_format(int64_t at, const char *zname, const char *want)
{
    char buf[40];
    memset(buf, 'x', sizeof(buf));
    size_t n = trifle_time_format(buf, sizeof(buf), at, zname ? test_zone(zname) : NULL);
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void test_format(void **state)
{
    (void)state;
    expect_format(1736937465, NULL, "2025-01-15T10:37:45Z");
    expect_format(1736937465, "UTC", "2025-01-15T10:37:45Z");
    expect_format(1736937465, "Europe/Bratislava", "2025-01-15T11:37:45+01:00");
    expect_format(1751328000, "Europe/Bratislava", "2025-07-01T02:00:00+02:00");
    expect_format(1736937465, "Europe/London", "2025-01-15T10:37:45Z"); /* offset 0: Z */
    expect_format(1736937465, "America/New_York", "2025-01-15T05:37:45-05:00");
    expect_format(1736937465, "America/St_Johns", "2025-01-15T07:07:45-03:30");
    expect_format(1736937465, "Asia/Kolkata", "2025-01-15T16:07:45+05:30");
    expect_format(1736937465, "Asia/Kathmandu", "2025-01-15T16:22:45+05:45");
    expect_format(1736937465, "Pacific/Kiritimati", "2025-01-16T00:37:45+14:00");
    /* Monrovia kept -00:44:30 until 1972: not whole minutes, so UTC with Z */
    expect_format(0, "Africa/Monrovia", "1970-01-01T00:00:00Z");
    expect_format(63849600, "Africa/Monrovia", "1972-01-10T00:00:00Z");
    /* the ends of the range */
    expect_format(TRIFLE__TIME_MIN, NULL, "1900-01-01T00:00:00Z");
    expect_format(TRIFLE__TIME_MAX, NULL, "9999-12-31T23:59:59Z");
    expect_format(TRIFLE__TIME_MIN, "Europe/Bratislava", "1900-01-01T01:00:00+01:00");
    /* 10000-01-01T00:59:59+01:00 has no RFC 3339 form: UTC instead */
    expect_format(TRIFLE__TIME_MAX, "Europe/Bratislava", "9999-12-31T23:59:59Z");
    expect_format(TRIFLE__TIME_MAX - 3600, "Europe/Bratislava", "9999-12-31T23:59:59+01:00");
    expect_format(TRIFLE__TIME_MAX, "America/New_York", "9999-12-31T18:59:59-05:00");
    expect_format(-1, NULL, "1969-12-31T23:59:59Z");
    expect_format(951782400, NULL, "2000-02-29T00:00:00Z");
    /* outside any sensible range: still terminated, never overflowing */
    char buf[40];
    assert_true(trifle_time_format(buf, sizeof(buf), INT64_MAX, NULL) < sizeof(buf));
    assert_true(trifle_time_format(buf, sizeof(buf), INT64_MIN, test_zone("America/New_York")) <
                sizeof(buf));
    /* small buffers truncate and stay terminated */
    char small[11];
    assert_int_equal(trifle_time_format(small, sizeof(small), 1736937465, NULL), 10);
    assert_string_equal(small, "2025-01-15");
    assert_int_equal(trifle_time_format(small, 1, 1736937465, NULL), 0);
    assert_string_equal(small, "");
    assert_int_equal(trifle_time_format(small, 0, 1736937465, NULL), 0);
    assert_int_equal(trifle_time_format(NULL, 40, 1736937465, NULL), 0);
}

static int64_t parse_ok(const char *text, const char *zname, int flags)
{
    int64_t at = 0;
    trifle_error err = TRIFLE_ERROR_INIT;
    if (trifle_time_parse(&at, text, zname ? test_zone(zname) : NULL, flags, &err) != 0)
        fail_msg("parse \"%s\": %s", text, err.message);
    assert_int_equal(err.code, 0);
    return at;
}

static void expect_parse_error(const char *text, const char *zname, int flags, const char *message)
{
    int64_t at = 42;
    trifle_error err = TRIFLE_ERROR_INIT;
    char want[300];
    if (message == NULL)
        (void)snprintf(want, sizeof(want), "invalid time: %s", text ? text : "");
    else
        (void)snprintf(want, sizeof(want), "%s", message);
    int rc = trifle_time_parse(&at, text, zname ? test_zone(zname) : NULL, flags, &err);
    if (rc != TRIFLE_EINVAL || strcmp(err.message, want) != 0)
        fail_msg("parse \"%s\": rc %d, \"%s\", want \"%s\"", text ? text : "(null)", rc,
                 err.message, want);
    assert_int_equal(err.code, TRIFLE_EINVAL);
    assert_int_equal(at, 42);
}

static void test_parse_offset_forms(void **state)
{
    (void)state;
    const int req = TRIFLE_TIME_OFFSET_REQUIRED;
    static const char *const same[] = {
        "2025-01-15T10:37:45Z",        "2025-01-15t10:37:45z",
        "2025-01-15 10:37:45Z",        "2025-01-15T11:37:45+01:00",
        "2025-01-15T11:37:45+0100",    "2025-01-15T05:37:45-05:00",
        "2025-01-15T05:37:45-0500",    "2025-01-15T10:37:45.999Z",
        "2025-01-15T10:37:45.0Z",      "2025-01-15T10:37:45-00:00",
        "2025-01-15T10:37:45+00:00",   " \t2025-01-15T10:37:45Z\r\n",
        "2025-01-15T11:37:45 01:00",   "2025-01-15T11:37:45 0100",
        "2025-01-15 11:37:45 01:00",   "2025-01-15T10:37:45.000000000000000000000000000000000001Z",
        "2025-01-16T00:07:45+13:30",   "2025-01-14T10:38:45-23:59",
        "2025-01-15T16:22:45.5+05:45",
    };
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        int64_t at = parse_ok(same[i], NULL, req);
        if (at != 1736937465)
            fail_msg("\"%s\" -> %lld, want 1736937465", same[i], (long long)at);
        /* the zone does not matter when the text has an offset, nor does the CLI flag */
        assert_int_equal(parse_ok(same[i], "Australia/Lord_Howe", TRIFLE_TIME_CLI), at);
    }
    /* fractions are floored, also before 1970 */
    assert_int_equal(parse_ok("1969-12-31T23:59:59.9Z", NULL, req), -1);
    assert_int_equal(parse_ok("1900-01-01T00:00:00Z", NULL, req), TRIFLE__TIME_MIN);
    assert_int_equal(parse_ok("1900-01-01T01:00:00+01:00", NULL, req), TRIFLE__TIME_MIN);
    assert_int_equal(parse_ok("9999-12-31T23:59:59Z", NULL, req), TRIFLE__TIME_MAX);
    assert_int_equal(parse_ok("9999-12-31T23:59:59.999999Z", NULL, req), TRIFLE__TIME_MAX);
    assert_int_equal(parse_ok("2024-02-29T00:00:00Z", NULL, req), 1709164800);
    assert_int_equal(parse_ok("2000-02-29T12:00:00Z", NULL, req), 951825600);
    expect_parse_error("1900-01-01T00:59:59+01:00", NULL, req, "time out of range");
    expect_parse_error("1899-12-31T23:59:59Z", NULL, req, "time out of range");
    expect_parse_error("9999-12-31T23:59:59-00:01", NULL, req, "time out of range");
    expect_parse_error("0000-01-01T00:00:00Z", NULL, req, "time out of range");
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "   ",
        "2025-01-15", /* local forms need TRIFLE_TIME_CLI */
        "2025-01-15T10:37",
        "2025-01-15T10:37:45",
        "now",
        "@0",
        "2025-01-15T10:37Z", /* seconds are mandatory with an offset */
        "2025-1-15T10:37:45Z",
        "25-01-15T10:37:45Z",
        "+2025-01-15T10:37:45Z",
        "-2025-01-15T10:37:45Z",
        "20250115T103745Z",
        "2025-01-15T10:37:45",
        "2025-13-01T00:00:00Z",
        "2025-00-10T00:00:00Z",
        "2025-01-00T00:00:00Z",
        "2025-01-32T00:00:00Z",
        "2025-04-31T00:00:00Z",
        "2025-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2025-01-15T24:00:00Z",
        "2025-01-15T23:60:00Z",
        "2025-01-15T23:59:60Z", /* leap seconds are rejected */
        "2025-01-15T1:37:45Z",
        "2025-01-15T10:37:45.Z",
        "2025-01-15T10:37:45,5Z",
        "2025-01-15T10:37:45+1:00",
        "2025-01-15T10:37:45+01:0",
        "2025-01-15T10:37:45+01",
        "2025-01-15T10:37:45+24:00",
        "2025-01-15T10:37:45+01:60",
        "2025-01-15T10:37:45+01:00:00",
        "2025-01-15T10:37:45Z junk",
        "2025-01-15T10:37:45ZZ",
        "2025-01-15T10:37:45 Z",
        "2025-01-15T10:37:45  01:00",
        "2025-01-15T10:37:45++01:00",
        "2025-01-15T10:37:45GMT",
        "2025-01-15X10:37:45Z",
        "2025-01-15TT10:37:45Z",
        "2025-01-15T10:37:45\x00Z", /* reads as a local time */
        "\xef\xbc\x92\xef\xbc\x90\xef\xbc\x92\xef\xbc\x95-01-15T10:37:45Z",
        "2025-01-15T10:37:45\xc2\xa0Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_parse_error(bad[i], NULL, TRIFLE_TIME_OFFSET_REQUIRED, NULL);
    expect_parse_error(NULL, NULL, TRIFLE_TIME_OFFSET_REQUIRED, "invalid time: ");
    /* CLI-only errors */
    static const char *const bad_cli[] = {
        "NOW",
        "now!",
        "@",
        "@1.5",
        "@ 1",
        "@1e9",
        "@--1",
        "@0x10",
        "@99999999999999999999",
        "2025-01-15T10",
        "2025-01-15T10:37:45.5",
        "2025-01-15T10:37:4",
        "2025-01",
        "tomorrow",
        "2025-01-15T",
        "2025-01-15 10:37:45 +",
        "2025",
    };
    for (size_t i = 0; i < sizeof(bad_cli) / sizeof(bad_cli[0]); i++)
        expect_parse_error(bad_cli[i], "Europe/Bratislava", TRIFLE_TIME_CLI, NULL);
    expect_parse_error("@253402300800", NULL, TRIFLE_TIME_CLI, "time out of range");
    expect_parse_error("@-2208988801", NULL, TRIFLE_TIME_CLI, "time out of range");
    expect_parse_error("1899-12-31", NULL, TRIFLE_TIME_CLI, "time out of range");
    expect_parse_error("1900-01-01", "Europe/Bratislava", TRIFLE_TIME_CLI, "time out of range");
}

static void test_parse_cli(void **state)
{
    (void)state;
    const int cli = TRIFLE_TIME_CLI;
    int64_t before = (int64_t)time(NULL);
    int64_t now = parse_ok("now", NULL, cli);
    assert_true(now >= before && now <= (int64_t)time(NULL));
    now = parse_ok("  now\n", NULL, cli);
    assert_true(now >= before && now <= (int64_t)time(NULL));
    assert_int_equal(parse_ok("@0", NULL, cli), 0);
    assert_int_equal(parse_ok("@1736937465", "Europe/Bratislava", cli), 1736937465);
    assert_int_equal(parse_ok("@+5", NULL, cli), 5);
    assert_int_equal(parse_ok("@-2208988800", NULL, cli), TRIFLE__TIME_MIN);
    assert_int_equal(parse_ok("@253402300799", NULL, cli), TRIFLE__TIME_MAX);
    /* local wall times in the zone (NULL = UTC) */
    assert_int_equal(parse_ok("2025-01-15T10:37", NULL, cli), 1736937420);
    assert_int_equal(parse_ok("2025-01-15T11:37:45", "Europe/Bratislava", cli), 1736937465);
    assert_int_equal(parse_ok("2025-01-15 11:37:45 ", "Europe/Bratislava", cli), 1736937465);
    assert_int_equal(parse_ok("2025-01-15t11:37", "Europe/Bratislava", cli), 1736937420);
    assert_int_equal(parse_ok("2025-01-15", "Europe/Bratislava", cli), 1736895600);
    assert_int_equal(parse_ok("2025-01-15 ", NULL, cli), 1736899200);
    /* ambiguous -> the earlier; nonexistent -> forward by the gap (SPEC §2.4, no preference) */
    assert_int_equal(parse_ok("2025-11-02T01:30", "America/New_York", cli), 1762061400);
    assert_int_equal(parse_ok("2025-03-09T02:30", "America/New_York", cli), 1741505400);
    assert_int_equal(parse_ok("2025-09-07", "America/Santiago", cli), 1757217600);
    assert_int_equal(parse_ok("2025-11-02", "America/Havana", cli), 1762056000);
    char buf[40];
    (void)trifle_time_format(buf, sizeof(buf),
                             parse_ok("2025-10-05T02:15", "Australia/Lord_Howe", cli),
                             test_zone("Australia/Lord_Howe"));
    assert_string_equal(buf, "2025-10-05T02:45:00+11:00");
    (void)trifle_time_format(buf, sizeof(buf),
                             parse_ok("2025-04-06T01:45", "Australia/Lord_Howe", cli),
                             test_zone("Australia/Lord_Howe"));
    assert_string_equal(buf, "2025-04-06T01:45:00+11:00");
}

static uint64_t rng_state = 0x2545f4914f6cdd1du;

/* format -> parse gives the instant back; the local text of an instant resolves to it, or to the
 * earlier occurrence of the same wall value. */
static void test_round_trips(void **state)
{
    (void)state;
    static const char *const names[] = {"UTC",
                                        "Europe/Bratislava",
                                        "America/New_York",
                                        "Australia/Lord_Howe",
                                        "America/Santiago",
                                        "America/Havana",
                                        "Asia/Kolkata",
                                        "Africa/Monrovia",
                                        "Pacific/Apia"};
    int checked = 0;
    for (size_t zi = 0; zi < sizeof(names) / sizeof(names[0]); zi++) {
        const trifle_zone *z = test_zone(names[zi]);
        const int rounds = test_light() ? 400 : 40000;
        for (int k = 0; k < rounds; k++) {
            int64_t x;
            if (k < rounds / 2) {
                x = TRIFLE__TIME_MIN +
                    (int64_t)(test_xorshift(&rng_state) %
                              (uint64_t)(TRIFLE__TIME_MAX - TRIFLE__TIME_MIN + 1));
            } else {
                /* every minute around the transitions of 2011 and 2025 */
                trifle__transition t;
                int64_t from = k < 30000 ? 1293840000 : 1735689600;
                if (!trifle__zone_next(z, from + (k % 10000) / 240 * 86400 * 8, from + 400 * 86400,
                                       &t))
                    continue;
                x = t.at - 7200 + (k % 240) * 60;
            }
            char text[40], local[40];
            size_t n = trifle_time_format(text, sizeof(text), x, z);
            assert_int_equal(n, strlen(text));
            int64_t back = parse_ok(text, NULL, TRIFLE_TIME_OFFSET_REQUIRED);
            if (back != x)
                fail_msg("%s: %lld -> %s -> %lld", names[zi], (long long)x, text, (long long)back);
            /* the wall clock without offset, in the same zone */
            int32_t off = trifle_zone_offset(z, x);
            trifle__civil c;
            trifle__civil_from_wall(&c, x + off);
            if (c.year > 9999)
                continue;
            (void)snprintf(local, sizeof(local), "%04lld-%02d-%02dT%02d:%02d:%02d",
                           (long long)c.year, c.month, c.day, c.hour, c.minute, c.second);
            int64_t r = 0;
            trifle_error err = TRIFLE_ERROR_INIT;
            if (trifle_time_parse(&r, local, z, TRIFLE_TIME_CLI, &err) != 0) {
                assert_string_equal(err.message, "time out of range"); /* 1900-01-01 early */
                continue;
            }
            if (r != x && !(r < x && r + trifle_zone_offset(z, r) == x + off))
                fail_msg("%s: local %s -> %lld, want %lld", names[zi], local, (long long)r,
                         (long long)x);
            checked++;
        }
    }
    print_message("round trips: %d\n", checked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),       cmocka_unit_test(test_parse_offset_forms),
        cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_parse_cli),
        cmocka_unit_test(test_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, test_zones_free);
}
