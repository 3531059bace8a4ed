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

static void expect_error(const char *url, int code, const char *message)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle__url u;

    assert_int_equal(trifle__url_parse(&u, url, &err), code);
    assert_int_equal(err.code, code);
    assert_string_equal(err.message, message);
    assert_null(u.base);
    assert_int_equal(u.n_params, 0);
    trifle__url_free(&u);
}

static void test_schemes(void **state)
{
    (void)state;
    expect_driver("sqlite:stats.db", "sqlite", "sqlite", "sqlite:stats.db");
    expect_driver("sqlite:///abs/stats.db?table=t", "sqlite", "sqlite", "sqlite:///abs/stats.db");
    expect_driver("sqlite::memory:", "sqlite", "sqlite", "sqlite::memory:");
    expect_driver("postgres://u@h/db", "postgres", "postgres", "postgres://u@h/db");
    expect_driver("postgresql://h:5432/db?sslmode=disable", "postgresql", "postgres",
                  "postgresql://h:5432/db");
    expect_driver("redis://localhost:6379/2", "redis", "redis", "redis://localhost:6379/2");
    expect_driver("redis+unix:///run/redis.sock?db=3", "redis+unix", "redis",
                  "redis+unix:///run/redis.sock");
    expect_driver("redis+cluster://h1:7000,h2:7001/?prefix=p", "redis+cluster", "redis_cluster",
                  "redis+cluster://h1:7000,h2:7001/");
    expect_driver("mongodb://h1,h2/stats", "mongodb", "mongo", "mongodb://h1,h2/stats");
    expect_driver("mongodb+srv://cluster.example/stats", "mongodb+srv", "mongo",
                  "mongodb+srv://cluster.example/stats");
    /* schemes are case-insensitive (RFC 3986); the base is passed on as written */
    expect_driver("SQLite:X.db", "sqlite", "sqlite", "SQLite:X.db");
    /* any other scheme may name a third-party plugin: not an error at this level */
    expect_driver("clickhouse://h/db", "clickhouse", NULL, "clickhouse://h/db");
    expect_driver("my_store:thing", "my_store", NULL, "my_store:thing");
}

static void test_scheme_errors(void **state)
{
    (void)state;
    expect_error(NULL, TRIFLE_ECONFIG, "driver required");
    expect_error("", TRIFLE_ECONFIG, "driver required");
    expect_error("stats.db", TRIFLE_ECONFIG,
                 "invalid driver URL: missing scheme (expected <scheme>:...)");
    expect_error(":x", TRIFLE_ECONFIG,
                 "invalid driver URL: missing scheme (expected <scheme>:...)");
    expect_error("1db:x", TRIFLE_ECONFIG,
                 "invalid driver URL: missing scheme (expected <scheme>:...)");
    expect_error("rediss://h:6380", TRIFLE_ECONFIG,
                 "invalid driver URL: TLS is not supported by this build");
    expect_error("REDISS://h", TRIFLE_ECONFIG,
                 "invalid driver URL: TLS is not supported by this build");
    expect_error("postgres:db", TRIFLE_ECONFIG,
                 "invalid driver URL: expected postgres:// at the start");
    expect_error("mongodb:/h", TRIFLE_ECONFIG,
                 "invalid driver URL: expected mongodb:// at the start");
    expect_error("redis+unix:/tmp/s", TRIFLE_ECONFIG,
                 "invalid driver URL: expected redis+unix:// at the start");
    expect_error("abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd:x",
                 TRIFLE_ECONFIG, "invalid driver URL: scheme is longer than 63 bytes");
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
    assert_string_equal(u.params[0], "application_name");
    assert_string_equal(u.params[1], "a b");
    assert_string_equal(u.params[2], "options");
    assert_string_equal(u.params[3], "-c=x+y");
    assert_string_equal(u.params[4], "table");
    assert_string_equal(u.params[5], "t\xC3\xA9");
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
    (void)state;
    expect_error("sqlite:x?a=1&&b=2", TRIFLE_ECONFIG, "invalid driver URL: empty parameter");
    expect_error("sqlite:x?a=1&", TRIFLE_ECONFIG, "invalid driver URL: empty parameter");
    expect_error("sqlite:x?=1", TRIFLE_ECONFIG, "invalid driver URL: empty parameter name");
    expect_error("sqlite:x?table", TRIFLE_ECONFIG,
                 "invalid driver URL: parameter table has no value");
    expect_error("sqlite:x?table=%", TRIFLE_ECONFIG,
                 "invalid driver URL: bad percent escape in parameter table");
    expect_error("sqlite:x?table=a%4", TRIFLE_ECONFIG,
                 "invalid driver URL: bad percent escape in parameter table");
    expect_error("sqlite:x?table=%zz", TRIFLE_ECONFIG,
                 "invalid driver URL: bad percent escape in parameter table");
    expect_error("sqlite:x?table=a%00b", TRIFLE_ECONFIG,
                 "invalid driver URL: NUL byte in parameter table");
    expect_error("sqlite:x?ta%ble=1", TRIFLE_ECONFIG,
                 "invalid driver URL: bad percent escape in a parameter name");
    expect_error("sqlite:x?t%00=1", TRIFLE_ECONFIG,
                 "invalid driver URL: NUL byte in a parameter name");
    expect_error("sqlite:x?joined=full&joined=full", TRIFLE_ECONFIG,
                 "invalid driver URL: duplicate parameter joined");
    expect_error("sqlite:x?separator=a&separator=b", TRIFLE_ECONFIG,
                 "invalid driver URL: duplicate parameter separator");
    expect_error("sqlite:x?system_tracking=1&system_tracking=0", TRIFLE_ECONFIG,
                 "invalid driver URL: duplicate parameter system_tracking");
    expect_error("sqlite:x?joined=joined", TRIFLE_ECONFIG, "invalid identifier mode: joined");
    expect_error("sqlite:x?joined=", TRIFLE_ECONFIG, "invalid identifier mode: ");
    expect_error("sqlite:x?separator=", TRIFLE_ECONFIG,
                 "separator must be 1 to 16 bytes without NUL");
    expect_error("sqlite:x?separator=12345678901234567", TRIFLE_ECONFIG,
                 "separator must be 1 to 16 bytes without NUL");
    expect_error("sqlite:x?system_tracking=maybe", TRIFLE_ECONFIG,
                 "invalid option system_tracking: maybe");
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
    assert_string_equal(u.secrets[0], "s%40cret");
    assert_string_equal(u.secrets[1], "s@cret");
    assert_string_equal(u.secrets[2], "hunter2");
    /* the driver still receives the password parameter */
    assert_string_equal(u.params[0], "password");
    assert_string_equal(u.params[1], "hunter2");
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
        cmocka_unit_test(test_schemes),        cmocka_unit_test(test_scheme_errors),
        cmocka_unit_test(test_params),         cmocka_unit_test(test_joined_values),
        cmocka_unit_test(test_param_errors),   cmocka_unit_test(test_separator_and_bool),
        cmocka_unit_test(test_mask),           cmocka_unit_test(test_secrets_and_scrub),
        cmocka_unit_test(test_driver_for_url), cmocka_unit_test(test_long_message_is_cut),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
