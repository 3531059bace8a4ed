/* Driver URLs (SPEC §11.2, §7.1, ERRATA B6): scheme map, query parameters, percent-decoding,
 * generic parameters, masking. */
#include "url_int.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "trifle/driver.h"
#include "trifle/storage.h"

static void expect_driver(const char *url, const char *scheme, const char *driver, const char *base)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle__url u;

    assert_int_equal(trifle__url_parse(&u, url, &err), 0);
    assert_string_equal(u.scheme, scheme);
    if (driver == NULL)
        assert_null(u.driver);
    else
        assert_string_equal(u.driver, driver);
    assert_string_equal(u.base, base);
    trifle__url_free(&u);
}

/* @p url is refused with TRIFLE_ECONFIG and @p message, and nothing is left parsed. */
static void expect_error(const char *url, const char *message)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle__url u;

    assert_int_equal(trifle__url_parse(&u, url, &err), TRIFLE_ECONFIG);
    assert_int_equal(err.code, TRIFLE_ECONFIG);
    assert_string_equal(err.message, message);
    assert_null(u.base);
    assert_int_equal(u.n_params, 0);
    trifle__url_free(&u);
}

/* got[0..n) are the strings of want, NULL-terminated. */
static void expect_strings(char *const *got, const char *const *want)
{
    size_t i;

    for (i = 0; want[i] != NULL; i++)
        assert_string_equal(got[i], want[i]);
}

static void test_schemes(void **state)
{
    /* URL, scheme, driver (NULL: none known), base */
    static const char *const cases[][4] = {
        {"sqlite:stats.db", "sqlite", "sqlite", "sqlite:stats.db"},
        {"sqlite:///abs/stats.db?table=t", "sqlite", "sqlite", "sqlite:///abs/stats.db"},
        {"sqlite::memory:", "sqlite", "sqlite", "sqlite::memory:"},
        {"postgres://u@h/db", "postgres", "postgres", "postgres://u@h/db"},
        {"postgresql://h:5432/db?sslmode=disable", "postgresql", "postgres",
         "postgresql://h:5432/db"},
        {"redis://localhost:6379/2", "redis", "redis", "redis://localhost:6379/2"},
        {"redis+unix:///run/redis.sock?db=3", "redis+unix", "redis",
         "redis+unix:///run/redis.sock"},
        {"redis+cluster://h1:7000,h2:7001/?prefix=p", "redis+cluster", "redis_cluster",
         "redis+cluster://h1:7000,h2:7001/"},
        {"mongodb://h1,h2/stats", "mongodb", "mongo", "mongodb://h1,h2/stats"},
        {"mongodb+srv://cluster.example/stats", "mongodb+srv", "mongo",
         "mongodb+srv://cluster.example/stats"},
        /* schemes are case-insensitive (RFC 3986); the base is passed on as written */
        {"SQLite:X.db", "sqlite", "sqlite", "SQLite:X.db"},
        /* any other scheme may name a third-party plugin: not an error at this level */
        {"clickhouse://h/db", "clickhouse", NULL, "clickhouse://h/db"},
        {"my_store:thing", "my_store", NULL, "my_store:thing"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_driver(cases[i][0], cases[i][1], cases[i][2], cases[i][3]);
}

static void test_scheme_errors(void **state)
{
    /* URL (NULL: none), message */
    static const char *const cases[][2] = {
        {NULL, "driver required"},
        {"", "driver required"},
        {"stats.db", "invalid driver URL: missing scheme (expected <scheme>:...)"},
        {":x", "invalid driver URL: missing scheme (expected <scheme>:...)"},
        {"1db:x", "invalid driver URL: missing scheme (expected <scheme>:...)"},
        {"rediss://h:6380", "invalid driver URL: TLS is not supported by this build"},
        {"REDISS://h", "invalid driver URL: TLS is not supported by this build"},
        {"postgres:db", "invalid driver URL: expected postgres:// at the start"},
        {"mongodb:/h", "invalid driver URL: expected mongodb:// at the start"},
        {"redis+unix:/tmp/s", "invalid driver URL: expected redis+unix:// at the start"},
        {"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd:x",
         "invalid driver URL: scheme is longer than 63 bytes"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i][0], cases[i][1]);
}

static void test_params(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle__url u;

    (void)state;
    assert_int_equal(trifle__url_parse(&u,
                                       "postgres://h/db?application_name=a%20b&joined=Partial"
                                       "&options=-c%3Dx+y&separator=%3A%3A&system_tracking=off"
                                       "&table=t%C3%A9",
                                       &err),
                     0);
    assert_string_equal(u.base, "postgres://h/db");
    assert_int_equal(u.joined, TRIFLE_ID_PARTIAL);
    assert_string_equal(u.separator, "::");
    assert_int_equal(u.system_tracking, 0);
    /* the driver's parameters, in order, decoded once; '+' is not a space */
    assert_int_equal(u.n_params, 3);
    expect_strings(u.params, (const char *const[]){"application_name", "a b", "options", "-c=x+y",
                                                   "table", "t\xC3\xA9", NULL});
    assert_null(u.params[6]);
    trifle__url_free(&u);

    /* absent generic parameters */
    assert_int_equal(trifle__url_parse(&u, "sqlite:x.db?", &err), 0);
    assert_int_equal(u.n_params, 0);
    assert_int_equal(u.joined, -1);
    assert_null(u.separator);
    assert_int_equal(u.system_tracking, -1);
    assert_string_equal(u.base, "sqlite:x.db");
    trifle__url_free(&u);

    /* empty values are values; a double-encoded escape is decoded once */
    assert_int_equal(trifle__url_parse(&u, "sqlite:x.db?prefix=&v=%2541", &err), 0);
    assert_int_equal(u.n_params, 2);
    assert_string_equal(u.params[1], "");
    assert_string_equal(u.params[3], "%41");
    trifle__url_free(&u);
}

static void test_joined_values(void **state)
{
    static const struct {
        const char *text;
        int mode;
    } cases[] = {{"full", TRIFLE_ID_FULL},           {"FULL", TRIFLE_ID_FULL},
                 {"partial", TRIFLE_ID_PARTIAL},     {"Partial", TRIFLE_ID_PARTIAL},
                 {"separated", TRIFLE_ID_SEPARATED}, {"none", TRIFLE_ID_SEPARATED},
                 {"NULL", TRIFLE_ID_SEPARATED},      {"Null", TRIFLE_ID_SEPARATED}};
    char url[64];
    trifle__url u;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        (void)snprintf(url, sizeof(url), "sqlite:x?joined=%s", cases[i].text);
        assert_int_equal(trifle__url_parse(&u, url, NULL), 0);
        assert_int_equal(u.joined, cases[i].mode);
        trifle__url_free(&u);
    }
    assert_int_equal(trifle__id_mode_parse("fulll"), -1);
    assert_int_equal(trifle__id_mode_parse(""), -1);
    assert_string_equal(trifle__id_mode_name(TRIFLE_ID_SEPARATED), "separated");
    assert_null(trifle__id_mode_name(3));
}

static void test_param_errors(void **state)
{
    /* URL, message */
    static const char *const cases[][2] = {
        {"sqlite:x?a=1&&b=2", "invalid driver URL: empty parameter"},
        {"sqlite:x?a=1&", "invalid driver URL: empty parameter"},
        {"sqlite:x?=1", "invalid driver URL: empty parameter name"},
        {"sqlite:x?table", "invalid driver URL: parameter table has no value"},
        {"sqlite:x?table=%", "invalid driver URL: bad percent escape in parameter table"},
        {"sqlite:x?table=a%4", "invalid driver URL: bad percent escape in parameter table"},
        {"sqlite:x?table=%zz", "invalid driver URL: bad percent escape in parameter table"},
        {"sqlite:x?table=a%00b", "invalid driver URL: NUL byte in parameter table"},
        {"sqlite:x?ta%ble=1", "invalid driver URL: bad percent escape in a parameter name"},
        {"sqlite:x?t%00=1", "invalid driver URL: NUL byte in a parameter name"},
        {"sqlite:x?joined=full&joined=full", "invalid driver URL: duplicate parameter joined"},
        {"sqlite:x?separator=a&separator=b", "invalid driver URL: duplicate parameter separator"},
        {"sqlite:x?system_tracking=1&system_tracking=0",
         "invalid driver URL: duplicate parameter system_tracking"},
        {"sqlite:x?joined=joined", "invalid identifier mode: joined"},
        {"sqlite:x?joined=", "invalid identifier mode: "},
        {"sqlite:x?separator=", "separator must be 1 to 16 bytes without NUL"},
        {"sqlite:x?separator=12345678901234567", "separator must be 1 to 16 bytes without NUL"},
        {"sqlite:x?system_tracking=maybe", "invalid option system_tracking: maybe"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i][0], cases[i][1]);
}

static void test_separator_and_bool(void **state)
{
    trifle__url u;

    (void)state;
    assert_int_equal(trifle__url_parse(&u, "sqlite:x?separator=1234567890123456", NULL), 0);
    assert_string_equal(u.separator, "1234567890123456");
    trifle__url_free(&u);
    assert_int_equal(trifle__url_parse(&u, "sqlite:x?system_tracking=YES", NULL), 0);
    assert_int_equal(u.system_tracking, 1);
    trifle__url_free(&u);
    assert_int_equal(trifle__url_parse(&u, "sqlite:x?system_tracking=Off", NULL), 0);
    assert_int_equal(u.system_tracking, 0);
    trifle__url_free(&u);
    assert_int_equal(trifle__separator_check("::"), 0);
    assert_int_equal(trifle__separator_check(""), -1);
    assert_int_equal(trifle__separator_check(NULL), -1);
}

static void expect_mask(const char *url, const char *masked)
{
    char buf[512];

    assert_int_equal(trifle__url_mask(buf, sizeof(buf), url), strlen(masked));
    assert_string_equal(buf, masked);
}

static void test_mask(void **state)
{
    char small[12];

    (void)state;
    expect_mask("postgres://user:secret@db.example:5432/stats?sslmode=require&password=abc",
                "postgres://user:***@db.example:5432/stats?sslmode=require&password=***");
    expect_mask("redis://:pw@localhost:6379/0", "redis://:***@localhost:6379/0");
    expect_mask("redis://u:p@ss@h/1", "redis://u:***@h/1");
    expect_mask("mongodb://u:p%40ss@h1,h2/db?authSource=admin",
                "mongodb://u:***@h1,h2/db?authSource=admin");
    expect_mask("postgresql://h/db?sslPassWord=x&user=u",
                "postgresql://h/db?sslPassWord=***&user=u");
    expect_mask("postgres://user@h/db", "postgres://user@h/db");
    expect_mask("sqlite:/tmp/a:b@c.db", "sqlite:/tmp/a:b@c.db");
    expect_mask("redis://h/0?x=1&", "redis://h/0?x=1&");
    expect_mask("not a url", "not a url");
    expect_mask("", "");
    /* cut output still reports the full length and is terminated */
    assert_int_equal(trifle__url_mask(small, sizeof(small), "redis://:pw@localhost"),
                     strlen("redis://:***@localhost"));
    assert_string_equal(small, "redis://:**");
    assert_int_equal(trifle__url_mask(NULL, 0, "redis://:pw@h"), strlen("redis://:***@h"));
}

static void test_secrets_and_scrub(void **state)
{
    trifle__url u;
    char msg[256];

    (void)state;
    assert_int_equal(
        trifle__url_parse(&u, "postgres://me:s%40cret@h/db?password=hunter2&sslmode=off", NULL), 0);
    /* raw and decoded userinfo password, then the query password */
    assert_int_equal(u.n_secrets, 3);
    expect_strings(u.secrets, (const char *const[]){"s%40cret", "s@cret", "hunter2", NULL});
    /* the driver still receives the password parameter */
    expect_strings(u.params, (const char *const[]){"password", "hunter2", NULL});
    (void)snprintf(msg, sizeof(msg),
                   "connection to postgres://me:s%%40cret@h failed: password \"s@cret\" or "
                   "hunter2 rejected");
    trifle__url_scrub(&u, msg, sizeof(msg));
    assert_string_equal(
        msg, "connection to postgres://me:***@h failed: password \"***\" or *** rejected");
    trifle__url_free(&u);

    /* a two-letter password is masked only where it is plainly a password */
    assert_int_equal(trifle__url_parse(&u, "redis://:ab@host/0", NULL), 0);
    assert_int_equal(u.n_secrets, 1);
    (void)snprintf(msg, sizeof(msg), "redis://:ab@host/0 says password=ab; table abc");
    trifle__url_scrub(&u, msg, sizeof(msg));
    assert_string_equal(msg, "redis://:***@host/0 says password=***; table abc");
    trifle__url_free(&u);
}

static void test_driver_for_url(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    char name[64], tiny[4];

    (void)state;
    assert_int_equal(trifle_driver_for_url(name, sizeof(name), "postgresql://h/db", &err), 0);
    assert_string_equal(name, "postgres");
    assert_int_equal(trifle_driver_for_url(name, sizeof(name), "mongodb+srv://c/db", &err), 0);
    assert_string_equal(name, "mongo");
    assert_int_equal(trifle_driver_for_url(name, sizeof(name), "redis+unix:///s", &err), 0);
    assert_string_equal(name, "redis");
    assert_int_equal(trifle_driver_for_url(tiny, sizeof(tiny), "sqlite:x", &err), TRIFLE_EINVAL);
    assert_string_equal(tiny, "");
    assert_int_equal(trifle_driver_for_url(name, sizeof(name), "rediss://h", &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "invalid driver URL: TLS is not supported by this build");
    assert_int_equal(trifle_driver_for_url(name, sizeof(name), "nosuchdriver://h", &err),
                     TRIFLE_ECONFIG);
    assert_string_equal(err.message, "unknown driver: nosuchdriver");
    assert_int_equal(trifle_driver_for_url(name, sizeof(name), "sqlite:x?joined=bad", &err),
                     TRIFLE_ECONFIG);
    assert_string_equal(err.message, "invalid identifier mode: bad");
}

static void test_long_message_is_cut(void **state)
{
    char url[600];
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle__url u;

    (void)state;
    /* a long parameter name in a message is cut on a UTF-8 boundary with "…" */
    memcpy(url, "sqlite:x?", 9);
    memset(url + 9, 'a', 299);
    for (size_t i = 9; i + 1 < 308; i += 2)
        memcpy(url + i, "\xC3\xA9", 2);
    url[308] = '\0';
    assert_int_equal(trifle__url_parse(&u, url, &err), TRIFLE_ECONFIG);
    assert_true(strlen(err.message) < sizeof(err.message));
    assert_memory_equal(err.message + strlen(err.message) - 3, "\xE2\x80\xA6", 3);
    trifle__url_free(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* schemes and the driver they name */
        cmocka_unit_test(test_schemes),
        cmocka_unit_test(test_scheme_errors),
        /* query parameters */
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_joined_values),
        cmocka_unit_test(test_param_errors),
        cmocka_unit_test(test_separator_and_bool),
        /* what messages show of a URL, and the driver a URL names */
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_secrets_and_scrub),
        cmocka_unit_test(test_driver_for_url),
        cmocka_unit_test(test_long_message_is_cut),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
