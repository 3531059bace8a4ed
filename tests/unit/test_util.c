/* util/ (trifle_util): the strict JSON lexer, UTF-8, hex and percent-decoding, civil dates and
 * error formatting that core, the server, the CLI and the drivers share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/tu_buf.h"
#include "util/tu_date.h"
#include "util/tu_error.h"
#include "util/tu_hex.h"
#include "util/tu_json.h"
#include "util/tu_utf8.h"

/* Validate text with flags; returns 0 or -1 and leaves the reason and offset in *lx. */
static int lex(tu_json_lex *lx, const char *text, size_t n, unsigned flags)
{
    memset(lx, 0, sizeof(*lx));
    lx->s = text;
    lx->len = n;
    lx->flags = flags;
    return tu_json_validate(lx);
}

static void expect_json_error(const char *text, const char *reason, size_t at)
{
    tu_json_lex lx;

    assert_int_equal(lex(&lx, text, strlen(text), 0), -1);
    assert_string_equal(lx.reason, reason);
    assert_int_equal(lx.at, at);
}

static void json_accepts_rfc8259(void **state)
{
    static const char *const ok[] = {
        "0",
        "-0",
        "1.5e-3",
        "1E+2",
        "\"\"",
        "\"\\u00e9\\ud83d\\ude00\"",
        "true",
        "false",
        "null",
        " {\"a\" : [1, {\"b\":null}] } ",
        "[]",
        "{}",
        "\"caf\xC3\xA9\"",
    };
    tu_json_lex lx;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_int_equal(lex(&lx, ok[i], strlen(ok[i]), 0), 0);
}

static void json_rejects_with_reason_and_offset(void **state)
{
    (void)state;
    expect_json_error("", "unexpected end of input", 0);
    expect_json_error("01", "leading zero in number", 0);
    expect_json_error("1.", "unexpected end of input", 2);
    expect_json_error("[1,]", "expected a value", 3);
    expect_json_error("{\"a\" 1}", "expected ':'", 5);
    expect_json_error("{1:2}", "expected a member name", 1);
    expect_json_error("[1 2]", "expected ',' or ']'", 3);
    expect_json_error("1 2", "unexpected data after the value", 2);
    expect_json_error("\"\\x\"", "invalid escape in string", 1);
    expect_json_error("\"\\u12\"", "invalid \\u escape", 1);
    expect_json_error("\"a\\u0000\"", "\\u0000 in string", 2);
    expect_json_error("\"\\udc00\"", "unpaired surrogate in \\u escape", 1);
    expect_json_error("\"\\ud800x\"", "unpaired surrogate in \\u escape", 1);
    expect_json_error("\"\x01\"", "control character in string", 1);
    expect_json_error("\"\xC0\xAF\"", "invalid UTF-8", 1);
    expect_json_error("\xEF\xBB\xBF{}", "expected a value", 0); /* no BOM */
    expect_json_error("tru", "invalid literal", 0);
}

static void json_depth_limit(void **state)
{
    char text[2 * TU_JSON_MAX_DEPTH + 2];
    tu_json_lex lx;

    (void)state;
    memset(text, '[', TU_JSON_MAX_DEPTH);
    memset(text + TU_JSON_MAX_DEPTH, ']', TU_JSON_MAX_DEPTH);
    assert_int_equal(lex(&lx, text, 2 * TU_JSON_MAX_DEPTH, 0), 0);
    memset(text, '[', TU_JSON_MAX_DEPTH + 1);
    memset(text + TU_JSON_MAX_DEPTH + 1, ']', TU_JSON_MAX_DEPTH + 1);
    assert_int_equal(lex(&lx, text, 2 * TU_JSON_MAX_DEPTH + 2, 0), -1);
    assert_string_equal(lx.reason, "nesting deeper than 512 levels");
    assert_int_equal(lx.at, TU_JSON_MAX_DEPTH);
}

static void json_lax_escapes_and_unescape(void **state)
{
    static const char text[] = "\"a\\u0000\\ud800\\n\\u00e9\\ud83d\\ude00\\/\"";
    char out[sizeof(text)];
    tu_json_lex lx;
    size_t n;

    (void)state;
    assert_int_equal(lex(&lx, text, strlen(text), 0), -1);
    assert_int_equal(lex(&lx, text, strlen(text), TU_JSON_LAX_ESCAPES), 0);
    n = tu_json_unescape(out, text + 1, strlen(text) - 2);
    assert_int_equal(n, 1 + 1 + 3 + 1 + 2 + 4 + 1);
    assert_memory_equal(out, "a\0\xEF\xBF\xBD\n\xC3\xA9\xF0\x9F\x98\x80/", n);
}

static void count_number(void *ctx, size_t at, size_t len)
{
    size_t *seen = ctx;

    seen[0]++;
    seen[1] += at;
    seen[2] += len;
}

static void json_reports_numbers_in_order(void **state)
{
    static const char text[] = "[1, {\"x\": -2.5e3}, \"3\"]";
    size_t seen[3] = {0, 0, 0};
    tu_json_lex lx = {.s = text, .len = sizeof(text) - 1, .number = count_number, .ctx = seen};

    (void)state;
    assert_int_equal(tu_json_validate(&lx), 0);
    assert_int_equal(seen[0], 2);
    assert_int_equal(seen[1], 1 + 10);
    assert_int_equal(seen[2], 1 + 6);
}

static void utf8_sequences(void **state)
{
    char out[4];

    (void)state;
    assert_int_equal(tu_utf8_seq("\xE2\x82\xAC", 3), 3);
    assert_int_equal(tu_utf8_seq("\xED\xA0\x80", 3), 0); /* surrogate */
    assert_int_equal(tu_utf8_seq("\xF4\x90\x80\x80", 4), 0);
    assert_int_equal(tu_utf8_valid("a\0b\xC3\xA9", 5), 1);
    assert_int_equal(tu_utf8_valid("a\xC3", 2), 0);
    assert_int_equal(tu_utf8_put(out, 0x41), 1);
    assert_int_equal(tu_utf8_put(out, 0x10FFFF), 4);
    assert_int_equal(tu_utf8_count(""), 0);
    assert_int_equal(tu_utf8_count("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"), 4);
    assert_memory_equal(out, "\xF4\x8F\xBF\xBF", 4);
}

static void hex_and_percent(void **state)
{
    char out[32];
    unsigned char raw[2];
    unsigned v = 0;
    size_t n = 0;

    (void)state;
    assert_int_equal(tu_hex_value('F'), 15);
    assert_int_equal(tu_hex_value('g'), -1);
    assert_int_equal(tu_hex4("00e9", &v), 0);
    assert_int_equal(v, 0xE9);
    assert_int_equal(tu_hex4("00eg", &v), -1);
    assert_int_equal(tu_hex_decode(raw, "aBff", 2), 0);
    assert_int_equal(raw[0], 0xAB);
    assert_int_equal(tu_hex_decode(raw, "a_", 1), -1);

    assert_int_equal(tu_pct_decode(out, &n, "a%2Fb+c", 7, 0), TU_PCT_OK);
    assert_string_equal(out, "a/b+c");
    assert_int_equal(n, 5);
    assert_int_equal(tu_pct_decode(out, &n, "a%2Fb+c", 7, TU_PCT_PLUS), TU_PCT_OK);
    assert_string_equal(out, "a/b c");
    assert_int_equal(tu_pct_decode(out, NULL, "a%2", 3, 0), TU_PCT_BAD_ESCAPE);
    assert_int_equal(tu_pct_decode(out, NULL, "%zz", 3, 0), TU_PCT_BAD_ESCAPE);
    assert_int_equal(tu_pct_decode(out, NULL, "a%00", 4, 0), TU_PCT_NUL);
    /* lenient: the bad escape stays as it is, decoding goes on, the first problem is reported */
    assert_int_equal(tu_pct_decode(out, &n, "%zz%41", 6, TU_PCT_LENIENT), TU_PCT_BAD_ESCAPE);
    assert_string_equal(out, "%zzA");
    assert_int_equal(tu_pct_decode(out, &n, "a%00b", 5, TU_PCT_LENIENT), TU_PCT_NUL);
    assert_int_equal(n, 3);
}

static void percent_encode(void **state)
{
    char e[3];

    (void)state;
    assert_int_equal(tu_pct_encode_char(e, 'a'), 1);
    assert_int_equal(e[0], 'a');
    assert_int_equal(tu_pct_encode_char(e, '~'), 1);
    assert_int_equal(tu_pct_encode_char(e, '/'), 3);
    assert_memory_equal(e, "%2F", 3);
    assert_int_equal(tu_pct_encode_char(e, 0xC3), 3);
    assert_memory_equal(e, "%C3", 3);
}

/* A tu_buf_ops that counts its calls and fails once `fail_after` grows have been made. */
typedef struct counting {
    int grows, releases, fail_after;
} counting;

static char *counting_grow(void *ctx, char *data, size_t len, size_t need, size_t *cap)
{
    counting *c = ctx;
    char *p;

    (void)len;
    if (c->grows == c->fail_after)
        return NULL;
    if ((p = realloc(data, need + 3)) != NULL) {
        c->grows++;
        *cap = need + 3; /* an allocator may hand out more than asked */
    }
    return p;
}

static void counting_release(void *ctx, char *data)
{
    ((counting *)ctx)->releases++;
    free(data);
}

static void string_buffer(void **state)
{
    static const tu_buf_ops ops = {counting_grow, counting_release};
    counting c = {0, 0, 100};
    tu_buf b = TU_BUF_INIT(&ops, &c);
    char *text;
    int i;

    (void)state;
    tu_buf_puts(&b, "k=");
    tu_buf_printf(&b, "%d;", 42);
    tu_buf_json_string(&b, "a\"\\\n\b\x01\xC3\xA9\xFF", 9, 0);
    assert_string_equal(b.data, "k=42;\"a\\\"\\\\\\n\\b\\u0001\xC3\xA9\xFF\"");
    tu_buf_reset(&b);
    tu_buf_json_string(&b, "\xC3\xA9\xFF\xC3", 4, TU_BUF_JSON_REPAIR);
    assert_string_equal(tu_buf_cstr(&b), "\"\xC3\xA9\xEF\xBF\xBD\xEF\xBF\xBD\"");
    assert_int_equal(c.grows, 1);
    for (i = 0; i < 100; i++)
        tu_buf_puts(&b, "0123456789");
    assert_int_equal(b.len, 10 + 1000);
    assert_true(b.cap >= b.len + 1);
    text = tu_buf_detach(&b);
    assert_non_null(text);
    assert_null(b.data);
    free(text); /* detach hands the block over: ops->release is not called */
    assert_int_equal(c.releases, 0);

    /* failure is sticky until reset, and detach then gives NULL and releases the memory */
    c.fail_after = c.grows + 1;
    tu_buf_puts(&b, "x");
    for (i = 0; i < 20; i++)
        tu_buf_puts(&b, "0123456789");
    assert_true(tu_buf_failed(&b));
    tu_buf_puts(&b, "y"); /* dropped: what fitted before the failure stays, nothing after */
    assert_int_equal(b.len, 1 + 60);
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(b.data[b.len - 1], '9');
    assert_null(tu_buf_cstr(&b));
    assert_null(tu_buf_detach(&b));
    assert_int_equal(c.releases, 1);
    assert_false(tu_buf_failed(&b));

    /* no ops: the C library */
    tu_buf plain = TU_BUF_INIT(NULL, NULL);
    tu_buf_putc(&plain, 'z');
    assert_string_equal(tu_buf_cstr(&plain), "z");
    tu_buf_free(&plain);
    assert_null(plain.data);
}

static void civil_dates(void **state)
{
    int64_t y, t = 0;
    int m, d;
    char text[TU_TIME_LEN + 1];

    (void)state;
    assert_int_equal(tu_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(tu_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(tu_days_from_civil(0, 1, 1), -719528);
    tu_civil_from_days(-719528, &y, &m, &d);
    assert_true(y == 0 && m == 1 && d == 1);
    tu_civil_from_days(11016, &y, &m, &d);
    assert_true(y == 2000 && m == 2 && d == 29);
    assert_int_equal(tu_days_in_month(2000, 2), 29);
    assert_int_equal(tu_days_in_month(1900, 2), 28);
    assert_int_equal(tu_days_in_month(-4, 2), 29);
    assert_int_equal(tu_days_in_month(-100, 2), 28);

    assert_int_equal(tu_time_format(text, 1736928000), 0);
    assert_string_equal(text, "2025-01-15T08:00:00Z");
    assert_int_equal(tu_time_format(text, INT64_C(253402300800)), -1);
    assert_int_equal(tu_time_parse_rfc3339("2025-01-15t09:30:00.9+01:30", 27, &t), 0);
    assert_int_equal(t, 1736928000);
    assert_int_equal(tu_time_parse_rfc3339("2025-02-29T00:00:00Z", 20, &t), -1);
    assert_int_equal(tu_time_parse_rfc3339("2025-01-15T08:00:00", 19, &t), -1);
    assert_int_equal(tu_time_parse19("2016-12-31 23:59:60", &t), 0);
}

static void error_formatting(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    char small[8], longer[300];

    (void)state;
    tu_strlcpy_utf8(small, "abc", sizeof(small));
    assert_string_equal(small, "abc");
    tu_strlcpy_utf8(small, "abc\xC3\xA9xyz", sizeof(small)); /* never half an é: cut before it */
    assert_string_equal(small, "abc\xE2\x80\xA6");
    tu_strlcpy_utf8(small, "abcdefghij", 3);
    assert_string_equal(small, "");

    memcpy(err.path, "stale", 6);
    assert_int_equal(tu_error_set(&err, TRIFLE_EINVAL, "bad %s", "thing"), TRIFLE_EINVAL);
    assert_int_equal(err.code, TRIFLE_EINVAL);
    assert_string_equal(err.message, "bad thing");
    assert_string_equal(err.path, "");
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    (void)tu_error_set(&err, TRIFLE_ERROR, "%s", longer);
    assert_int_equal(strlen(err.message), sizeof(err.message) - 1);
    assert_string_equal(err.message + sizeof(err.message) - 4, "\xE2\x80\xA6");
    assert_int_equal(tu_error_set(NULL, TRIFLE_ENOMEM, "x"), TRIFLE_ENOMEM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_accepts_rfc8259),
        cmocka_unit_test(json_rejects_with_reason_and_offset),
        cmocka_unit_test(json_depth_limit),
        cmocka_unit_test(json_lax_escapes_and_unescape),
        cmocka_unit_test(json_reports_numbers_in_order),
        cmocka_unit_test(utf8_sequences),
        cmocka_unit_test(hex_and_percent),
        cmocka_unit_test(percent_encode),
        cmocka_unit_test(string_buffer),
        cmocka_unit_test(civil_dates),
        cmocka_unit_test(error_formatting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
