/* core/json.c: strict parsing, duplicate members, long number literals, canonical output, unpack
 * (packer.json#unpack), allocation failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_int.h"
#include "json_int.h"
#include "oom_alloc.h"
#include "unit_helpers.h"
#include "vectors.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static cJSON *parse_ok(const char *text)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    cJSON *v = NULL;
    int rc = trifle__json_parse(&v, text, strlen(text), &err);

    if (rc != 0)
        fail_msg("parse of %s failed: %s", text, err.message);
    assert_non_null(v);
    return v;
}

static void assert_prints(const char *text, int pretty, const char *expected)
{
    cJSON *v = parse_ok(text);
    char *out = trifle__json_print(v, pretty);

    assert_non_null(out);
    assert_string_equal(out, expected);
    trifle__free(out);
    cJSON_Delete(v);
}

/* strtod in the C locale, as the reference for long literals */
static double ref_strtod(const char *s)
{
    return strtod(s, NULL);
}

/* ---- parse errors -------------------------------------------------------------------------- */

static void test_parse_errors(void **state)
{
    static const struct {
        const char *text;
        const char *message;
    } cases[] = {
        {"", "invalid JSON: unexpected end of input at byte 0"},
        {"   ", "invalid JSON: unexpected end of input at byte 3"},
        {"{", "invalid JSON: unexpected end of input at byte 1"},
        {"{\"a\"", "invalid JSON: unexpected end of input at byte 4"},
        {"{\"a\" 1}", "invalid JSON: expected ':' at byte 5"},
        {"{\"a\":}", "invalid JSON: expected a value at byte 5"},
        {"{\"a\":1,}", "invalid JSON: expected a member name at byte 7"},
        {"{a:1}", "invalid JSON: expected a member name at byte 1"},
        {"{\"a\":1 \"b\":2}", "invalid JSON: expected ',' or '}' at byte 7"},
        {"[1,]", "invalid JSON: expected a value at byte 3"},
        {"[1 2]", "invalid JSON: expected ',' or ']' at byte 3"},
        {"[1}", "invalid JSON: expected ',' or ']' at byte 2"},
        {"{} x", "invalid JSON: unexpected data after the value at byte 3"},
        {"{}{}", "invalid JSON: unexpected data after the value at byte 2"},
        {"tru", "invalid JSON: invalid literal at byte 0"},
        {"nul", "invalid JSON: invalid literal at byte 0"},
        {"True", "invalid JSON: expected a value at byte 0"},
        {"{\"a\":01}", "invalid JSON: leading zero in number at byte 5"},
        {"{\"a\":-01}", "invalid JSON: leading zero in number at byte 6"},
        {"{\"a\":1.}", "invalid JSON: expected a digit at byte 7"},
        {"{\"a\":1.e5}", "invalid JSON: expected a digit at byte 7"},
        {"{\"a\":.5}", "invalid JSON: expected a value at byte 5"},
        {"{\"a\":+1}", "invalid JSON: expected a value at byte 5"},
        {"{\"a\":1e}", "invalid JSON: expected a digit at byte 7"},
        {"{\"a\":-}", "invalid JSON: expected a digit at byte 6"},
        {"-", "invalid JSON: unexpected end of input at byte 1"},
        {"{\"a\":NaN}", "invalid JSON: expected a value at byte 5"},
        {"{\"a\":Infinity}", "invalid JSON: expected a value at byte 5"},
        {"{\"a\":0x10}", "invalid JSON: expected ',' or '}' at byte 6"},
        {"\xEF\xBB\xBF{}", "invalid JSON: expected a value at byte 0"},
        {"{\x01\"a\":1}", "invalid JSON: expected a member name at byte 1"},
        {"\"a\tb\"", "invalid JSON: control character in string at byte 2"},
        {"\"\\x\"", "invalid JSON: invalid escape in string at byte 1"},
        {"\"\\u12G4\"", "invalid JSON: invalid \\u escape at byte 1"},
        {"\"\\u12\"", "invalid JSON: invalid \\u escape at byte 1"},
        {"\"\\u0000\"", "invalid JSON: \\u0000 in string at byte 1"},
        {"{\"a\\u0000b\":1}", "invalid JSON: \\u0000 in string at byte 3"},
        {"\"\\uDC00\"", "invalid JSON: unpaired surrogate in \\u escape at byte 1"},
        {"\"\\uD800\"", "invalid JSON: unpaired surrogate in \\u escape at byte 1"},
        {"\"\\uD800\\u0041\"", "invalid JSON: unpaired surrogate in \\u escape at byte 1"},
        {"{\"\xff\":1}", "invalid JSON: invalid UTF-8 at byte 2"},
        {"{\"a\xC3\":1}", "invalid JSON: invalid UTF-8 at byte 3"},
        {"\"\xC0\xAF\"", "invalid JSON: invalid UTF-8 at byte 1"},         /* overlong '/' */
        {"\"\xED\xA0\x80\"", "invalid JSON: invalid UTF-8 at byte 1"},     /* surrogate */
        {"\"\xF4\x90\x80\x80\"", "invalid JSON: invalid UTF-8 at byte 1"}, /* > U+10FFFF */
        {"\"abc", "invalid JSON: unexpected end of input at byte 4"},
        {"\"\\", "invalid JSON: unexpected end of input at byte 2"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        trifle_error err = TRIFLE_ERROR_INIT;
        cJSON *v = (cJSON *)&err; /* must be reset to NULL */
        int rc = trifle__json_parse(&v, cases[i].text, strlen(cases[i].text), &err);

        if (rc != TRIFLE_EINVAL || strcmp(err.message, cases[i].message) != 0)
            fail_msg("case %zu (%s): rc %d, message \"%s\", expected \"%s\"", i, cases[i].text, rc,
                     err.message, cases[i].message);
        assert_null(v);
        assert_int_equal(err.code, TRIFLE_EINVAL);
        assert_string_equal(err.path, "");
    }
}

static void test_parse_valid_forms(void **state)
{
    static const char *const texts[] = {
        "{}",
        "[]",
        " \t\r\n{ } \n",
        "0",
        "-0",
        "1.5e+10",
        "1E-3",
        "true",
        "false",
        "null",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00\"",
        "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"",
        "[[[[]]]]",
        "{\"\":{\"\":[]}}",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        cJSON_Delete(parse_ok(texts[i]));
}

static void test_parse_length_bounded(void **state)
{
    /* the text need not be NUL-terminated: only len bytes are read */
    const char text[] = "{\"a\":12}garbage";
    trifle_error err = TRIFLE_ERROR_INIT;
    cJSON *v = NULL;

    (void)state;
    assert_int_equal(trifle__json_parse(&v, text, 8, &err), 0);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(v, "a")->valuedouble, 12);
    cJSON_Delete(v);
    /* a number cut by len ends there */
    assert_int_equal(trifle__json_parse(&v, "123456", 3, &err), 0);
    assert_true(v->valuedouble == 123);
    cJSON_Delete(v);
    assert_int_equal(trifle__json_parse(&v, text, 7, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "invalid JSON: unexpected end of input at byte 7");
    /* NULL text with no length is empty input, not a crash */
    assert_int_equal(trifle__json_parse(&v, NULL, 0, NULL), TRIFLE_EINVAL);
    assert_int_equal(trifle__json_parse(&v, NULL, 5, NULL), TRIFLE_EINVAL);
}

static void test_nesting_limit(void **state)
{
    char *text = malloc(2 * TRIFLE__JSON_MAX_DEPTH + 4);
    trifle_error err = TRIFLE_ERROR_INIT;
    cJSON *v = NULL;
    char expected[128];
    size_t i;

    (void)state;
    for (i = 0; i < TRIFLE__JSON_MAX_DEPTH; i++) {
        text[i] = '[';
        text[2 * TRIFLE__JSON_MAX_DEPTH - 1 - i] = ']';
    }
    assert_int_equal(trifle__json_parse(&v, text, 2 * TRIFLE__JSON_MAX_DEPTH, &err), 0);
    cJSON_Delete(v);
    /* one more level */
    memmove(text + 1, text, 2 * TRIFLE__JSON_MAX_DEPTH);
    text[0] = '[';
    text[2 * TRIFLE__JSON_MAX_DEPTH + 1] = ']';
    assert_int_equal(trifle__json_parse(&v, text, 2 * TRIFLE__JSON_MAX_DEPTH + 2, &err),
                     TRIFLE_EINVAL);
    (void)snprintf(expected, sizeof(expected),
                   "invalid JSON: nesting deeper than %d levels at byte %d", TRIFLE__JSON_MAX_DEPTH,
                   TRIFLE__JSON_MAX_DEPTH);
    assert_string_equal(err.message, expected);
    assert_null(v);
    free(text);
}

/* ---- duplicate members --------------------------------------------------------------------- */

static void test_duplicates_last_wins(void **state)
{
    (void)state;
    /* the last occurrence survives, in its own position */
    assert_prints("{\"a\":1,\"b\":2,\"a\":3}", 0, "{\"b\":2,\"a\":3}");
    assert_prints("{\"a\":1,\"a\":2,\"a\":3}", 0, "{\"a\":3}");
    /* whole subtrees are replaced, not merged */
    assert_prints("{\"m\":{\"x\":1},\"m\":{\"y\":2}}", 0, "{\"m\":{\"y\":2}}");
    /* recursively, also inside arrays */
    assert_prints("[{\"k\":1,\"k\":true},{\"z\":{\"q\":1,\"q\":null}}]", 0,
                  "[{\"k\":true},{\"z\":{\"q\":null}}]");
    /* names compare exactly: case and escapes */
    assert_prints("{\"a\":1,\"A\":2,\"\\u0061\":3}", 0, "{\"A\":2,\"a\":3}");
}

static void test_duplicates_large_object(void **state)
{
    /* more members than the pairwise path handles: the sorting path */
    trifle__buf in = TRIFLE__BUF_INIT, want = TRIFLE__BUF_INIT;
    cJSON *v;
    char *out;
    int i;

    (void)state;
    trifle__buf_putc(&in, '{');
    for (i = 0; i < 60; i++) /* k0..k29 then k0..k29 again with other values */
        trifle__buf_printf(&in, "%s\"k%d\":%d", i ? "," : "", i % 30, i);
    trifle__buf_printf(&in, ",\"k7\":{\"x\":1,\"x\":2}}");
    trifle__buf_putc(&want, '{');
    for (i = 30; i < 60; i++)
        if (i != 37)
            trifle__buf_printf(&want, "%s\"k%d\":%d", i > 30 ? "," : "", i % 30, i);
    trifle__buf_printf(&want, ",\"k7\":{\"x\":2}}");
    v = parse_ok(in.data);
    out = trifle__json_print(v, 0);
    assert_string_equal(out, want.data);
    trifle__free(out);
    cJSON_Delete(v);
    trifle__buf_free(&in);
    trifle__buf_free(&want);
}

/* ---- numbers ------------------------------------------------------------------------------- */

static void test_long_literals(void **state)
{
    /* 70 digits: stock cJSON 1.7.15 reads 63 of them; we read all */
    const char *seventy = "1234567890123456789012345678901234567890123456789012345678901234567890";
    /* 2^53 + 1 is a halfway case that rounds down; a 1 in the 90th digit must round it up */
    char halfway[200], text[600];
    trifle_error err = TRIFLE_ERROR_INIT;
    cJSON *v, *a;

    (void)state;
    /* 80 zeros: the precision of an integer conversion is its minimum number of digits */
    (void)snprintf(halfway, sizeof(halfway), "9007199254740993.%.80d1", 0);
    assert_true(ref_strtod(halfway) == 9007199254740994.0);

    /* top level, where stock cJSON would silently stop after 63 characters */
    v = parse_ok(seventy);
    assert_true(v->valuedouble == ref_strtod(seventy));
    cJSON_Delete(v);
    v = parse_ok(halfway);
    assert_true(v->valuedouble == 9007199254740994.0);
    cJSON_Delete(v);

    /* several, mixed with short ones, inside arrays and duplicates: each lands in its place */
    (void)snprintf(text, sizeof(text),
                   "{\"a\":[1,%s,2,[-%s]],\"b\":%s,\"b\":%s,\"c\":3,\"d\":%se-80}", seventy,
                   seventy, halfway, seventy, seventy);
    v = parse_ok(text);
    a = cJSON_GetObjectItemCaseSensitive(v, "a");
    assert_true(cJSON_GetArrayItem(a, 0)->valuedouble == 1);
    assert_true(cJSON_GetArrayItem(a, 1)->valuedouble == ref_strtod(seventy));
    assert_true(cJSON_GetArrayItem(a, 2)->valuedouble == 2);
    assert_true(cJSON_GetArrayItem(cJSON_GetArrayItem(a, 3), 0)->valuedouble ==
                -ref_strtod(seventy));
    assert_true(cJSON_GetObjectItemCaseSensitive(v, "b")->valuedouble == ref_strtod(seventy));
    assert_true(cJSON_GetObjectItemCaseSensitive(v, "c")->valuedouble == 3);
    (void)snprintf(text, sizeof(text), "%se-80", seventy);
    assert_true(cJSON_GetObjectItemCaseSensitive(v, "d")->valuedouble == ref_strtod(text));
    cJSON_Delete(v);

    /* exactly 63 characters is the longest literal cJSON takes itself */
    v = parse_ok("0.12345678901234567890123456789012345678901234567890123456789012");
    assert_true(v->valuedouble ==
                ref_strtod("0.12345678901234567890123456789012345678901234567890123456789012"));
    cJSON_Delete(v);

    /* a long literal still has to be a valid literal */
    (void)snprintf(text, sizeof(text), "[0%s]", seventy);
    assert_int_equal(trifle__json_parse(&v, text, strlen(text), &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "invalid JSON: leading zero in number at byte 1");
}

static void test_overflowing_literals(void **state)
{
    cJSON *v;
    char big[420];

    (void)state;
    v = parse_ok("[1e400,-1e400,1e-400,-0]");
    assert_true(isinf(cJSON_GetArrayItem(v, 0)->valuedouble));
    assert_true(cJSON_GetArrayItem(v, 0)->valuedouble > 0);
    assert_true(isinf(cJSON_GetArrayItem(v, 1)->valuedouble));
    assert_true(cJSON_GetArrayItem(v, 1)->valuedouble < 0);
    assert_true(cJSON_GetArrayItem(v, 2)->valuedouble == 0);
    assert_true(cJSON_GetArrayItem(v, 3)->valuedouble == 0);
    cJSON_Delete(v);
    /* a long literal that overflows: also +Inf, never an error here */
    memset(big, '9', 400);
    big[400] = '\0';
    v = parse_ok(big);
    assert_true(isinf(v->valuedouble));
    cJSON_Delete(v);
}

static void test_locale_independent(void **state)
{
    const char *long_half =
        "2.500000000000000000000000000000000000000000000000000000000000000000001";
    cJSON *v;
    char *out;

    (void)state;
    test_decimal_comma_locale();
    assert_string_equal(localeconv()->decimal_point, ",");
    v = parse_ok("[2.5,-0.125,1e-7]");
    assert_true(cJSON_GetArrayItem(v, 0)->valuedouble == 2.5);
    out = trifle__json_print(v, 0);
    assert_string_equal(out, "[2.5,-0.125,1e-7]");
    trifle__free(out);
    cJSON_Delete(v);
    v = parse_ok(long_half);
    assert_true(v->valuedouble == 2.5);
    cJSON_Delete(v);
    (void)setlocale(LC_NUMERIC, "C");
}

/* ---- output -------------------------------------------------------------------------------- */

static void test_write_compact_and_pretty(void **state)
{
    const char *in = "{\"n\":[1,2.5,-3e-7,1e21,100],\"s\":\"q\\\"\\\\\\n\\u0001\xC3\xA9\","
                     "\"t\":true,\"f\":false,\"z\":null,\"o\":{},\"a\":[],\"d\":{\"x\":{\"y\":1}}}";

    (void)state;
    assert_prints(in, 0,
                  "{\"n\":[1,2.5,-3e-7,1e+21,100],\"s\":\"q\\\"\\\\\\n\\u0001\xC3\xA9\",\"t\":true,"
                  "\"f\":false,\"z\":null,\"o\":{},\"a\":[],\"d\":{\"x\":{\"y\":1}}}");
    assert_prints(in, 1,
                  "{\n"
                  "  \"n\": [\n"
                  "    1,\n"
                  "    2.5,\n"
                  "    -3e-7,\n"
                  "    1e+21,\n"
                  "    100\n"
                  "  ],\n"
                  "  \"s\": \"q\\\"\\\\\\n\\u0001\xC3\xA9\",\n"
                  "  \"t\": true,\n"
                  "  \"f\": false,\n"
                  "  \"z\": null,\n"
                  "  \"o\": {},\n"
                  "  \"a\": [],\n"
                  "  \"d\": {\n"
                  "    \"x\": {\n"
                  "      \"y\": 1\n"
                  "    }\n"
                  "  }\n"
                  "}");
    assert_prints("[]", 1, "[]");
    assert_prints("\"x\"", 1, "\"x\"");
}

static void test_write_non_finite_and_built_trees(void **state)
{
    cJSON *v = cJSON_CreateArray();
    char *out;

    (void)state;
    cJSON_AddItemToArray(v, cJSON_CreateNumber(NAN));
    cJSON_AddItemToArray(v, cJSON_CreateNumber(-INFINITY));
    cJSON_AddItemToArray(v, cJSON_CreateNumber(-0.0));
    cJSON_AddItemToArray(v, cJSON_CreateRaw("{\"raw\":1}"));
    cJSON_AddItemToArray(v, cJSON_CreateNumber(0.1 + 0.2));
    out = trifle__json_print(v, 0);
    assert_string_equal(out, "[null,null,0,{\"raw\":1},0.30000000000000004]");
    trifle__free(out);
    cJSON_Delete(v);
    out = trifle__json_print(NULL, 0);
    assert_string_equal(out, "null");
    trifle__free(out);
}

static void test_write_appends(void **state)
{
    trifle__buf b = TRIFLE__BUF_INIT;
    cJSON *v = parse_ok("{\"a\":1}");

    (void)state;
    trifle__buf_puts(&b, "x=");
    trifle__json_write(&b, v, 0);
    assert_string_equal(b.data, "x={\"a\":1}");
    trifle__buf_free(&b);
    cJSON_Delete(v);
}

/* ---- unpack -------------------------------------------------------------------------------- */

static trifle_leaf *leaves_from_object(const cJSON *flat, size_t *n)
{
    trifle_leaf *l = calloc((size_t)cJSON_GetArraySize(flat) + 1, sizeof(*l));
    const cJSON *m;

    *n = 0;
    cJSON_ArrayForEach (m, flat) {
        assert_true(cJSON_IsNumber(m));
        l[*n].path = m->string;
        l[*n].value = m->valuedouble;
        (*n)++;
    }
    return l;
}

/* One "unpack" vector: its flat leaves unpack to its expected tree. */
static int check_unpack(const cJSON *c)
{
    const cJSON *expected = vector_get(c, "expected");
    size_t n;
    trifle_leaf *l = leaves_from_object(vector_get(c, "flat"), &n);
    cJSON *got = trifle__json_unpack(l, n);
    char *text = trifle__json_print(got, 0);

    assert_non_null(got);
    if (!cJSON_Compare(got, expected, 1)) {
        char *flat = cJSON_PrintUnformatted(vector_get(c, "flat"));
        char *want = cJSON_PrintUnformatted(expected);
        fail_msg("unpack %s: got %s, expected %s", flat, text, want);
    }
    trifle__free(text);
    cJSON_Delete(got);
    free(l);
    return 0;
}

static void test_unpack_vectors(void **state)
{
    (void)state;
    (void)vectors_run("unpack", check_unpack);
}

static void assert_unpacks(const trifle_leaf *l, size_t n, const char *expected)
{
    cJSON *got = trifle__json_unpack(l, n);
    char *text;

    assert_non_null(got);
    text = trifle__json_print(got, 0);
    assert_string_equal(text, expected);
    trifle__free(text);
    cJSON_Delete(got);
}

static void test_unpack_rules(void **state)
{
    /* members come out in byte order of their names at every level ("a" < "a-b" < "a0") */
    static const trifle_leaf order[] = {{"a0", 1},  {"a-b", 2},  {"a.x", 3}, {"b.c.d", 4},
                                        {"a.w", 5}, {"b.c-", 6}, {"B", 7}};
    /* empty segments are foreign data: ignored */
    static const trifle_leaf empty[] = {{"", 1}, {".a", 2}, {"a.", 3}, {"a..b", 4}, {"ok", 5}};
    /* the same path twice: the later one wins; a leaf under an object path loses at any depth */
    static const trifle_leaf dup[] = {{"x", 1}, {"y.z", 2}, {"x", 3}, {"y", 9}, {"y.z.w", 4}};
    static const trifle_leaf utf8[] = {{"\xC3\xA9", 1}, {"z", 2}, {"e\xCC\x81", 3}};

    (void)state;
    assert_unpacks(order, 7,
                   "{\"B\":7,\"a\":{\"w\":5,\"x\":3},\"a-b\":2,\"a0\":1,"
                   "\"b\":{\"c\":{\"d\":4},\"c-\":6}}");
    assert_unpacks(empty, 5, "{\"ok\":5}");
    assert_unpacks(dup, 5, "{\"x\":3,\"y\":{\"z\":{\"w\":4}}}");
    assert_unpacks(utf8, 3, "{\"e\xCC\x81\":3,\"z\":2,\"\xC3\xA9\":1}");
    assert_unpacks(NULL, 0, "{}");
}

static void test_leaf_cmp_byte_order(void **state)
{
    trifle_leaf l[] = {{"\xC3\xA9", 0}, {"z", 0}, {"a.b", 0}, {"a", 0}, {"a-b", 0}, {"B", 0}};

    (void)state;
    qsort(l, 6, sizeof(l[0]), trifle__leaf_cmp);
    assert_string_equal(l[0].path, "B");
    assert_string_equal(l[1].path, "a");
    assert_string_equal(l[2].path, "a-b");
    assert_string_equal(l[3].path, "a.b");
    assert_string_equal(l[4].path, "z");
    assert_string_equal(l[5].path, "\xC3\xA9");
}

static void test_utf8_seq(void **state)
{
    (void)state;
    assert_int_equal(tu_utf8_seq("a", 1), 1);
    assert_int_equal(tu_utf8_seq("\xC3\xA9", 2), 2);
    assert_int_equal(tu_utf8_seq("\xC3\xA9", 1), 0); /* cut short */
    assert_int_equal(tu_utf8_seq("\xE2\x82\xAC", 3), 3);
    assert_int_equal(tu_utf8_seq("\xF0\x9F\x98\x80", 4), 4);
    assert_int_equal(tu_utf8_seq("\xF4\x8F\xBF\xBF", 4), 4); /* U+10FFFF */
    assert_int_equal(tu_utf8_seq("\x80", 1), 0);
    assert_int_equal(tu_utf8_seq("\xC1\xBF", 2), 0);         /* overlong */
    assert_int_equal(tu_utf8_seq("\xE0\x9F\xBF", 3), 0);     /* overlong */
    assert_int_equal(tu_utf8_seq("\xED\xBF\xBF", 3), 0);     /* surrogate */
    assert_int_equal(tu_utf8_seq("\xF0\x8F\xBF\xBF", 4), 0); /* overlong */
    assert_int_equal(tu_utf8_seq("\xF4\x90\x80\x80", 4), 0); /* > U+10FFFF */
    assert_int_equal(tu_utf8_seq("\xF5\x80\x80\x80", 4), 0);
    assert_int_equal(tu_utf8_seq("\xE2\x28\xA1", 3), 0);
}

/* ---- allocation failures ------------------------------------------------------------------- */

static void test_oom_parse(void **state)
{
    trifle__buf text = TRIFLE__BUF_INIT;
    long n;
    int i, failures = 0;

    (void)state;
    /* duplicates in a large object (sorting path), nesting, and a long literal (patch path) */
    trifle__buf_puts(&text, "{\"long\":12345678901234567890123456789012345678901234567890123456"
                            "78901234567890,\"m\":{\"x\":[1,\"s\",{\"y\":null}],\"x\":2}");
    for (i = 0; i < 40; i++)
        trifle__buf_printf(&text, ",\"k%d\":%d", i % 20, i);
    trifle__buf_putc(&text, '}');
    for (n = 1;; n++) {
        trifle_error err = TRIFLE_ERROR_INIT;
        cJSON *v = NULL;
        int rc;

        oom_begin(n);
        rc = trifle__json_parse(&v, text.data, text.len, &err);
        if (rc == 0) {
            cJSON_Delete(v);
            assert_int_equal(oom_live, 0);
            oom_end();
            break;
        }
        oom_end();
        if (rc != TRIFLE_ENOMEM)
            fail_msg("allocation %ld failed: rc %d (%s), expected ENOMEM", n, rc, err.message);
        assert_null(v);
        assert_int_equal(err.code, TRIFLE_ENOMEM);
        if (oom_live != 0)
            fail_msg("allocation %ld failed: %ld blocks leaked", n, oom_live);
        failures++;
        assert_true(n < 10000);
    }
    assert_true(failures > 50);
    trifle__buf_free(&text);
}

/* Allocation n = 1, 2, ... fails until @p make succeeds; each failure leaks nothing. The number
 * of failures. */
static int oom_sweep(const char *what, void *(*make)(const void *ctx), void (*drop)(void *p),
                     const void *ctx)
{
    int failures = 0;
    long n;

    for (n = 1;; n++) {
        void *out;

        oom_begin(n);
        out = make(ctx);
        drop(out);
        if (oom_live != 0)
            fail_msg("%s: allocation %ld failed: %ld blocks leaked", what, n, oom_live);
        oom_end();
        if (out != NULL)
            return failures;
        failures++;
    }
}

static void *print_pretty(const void *tree)
{
    return trifle__json_print(tree, 1);
}

static void free_text(void *text)
{
    trifle__free(text);
}

static const trifle_leaf oom_leaves[] = {
    {"a.b", 1}, {"a.c.d", 2.5}, {"e", -1}, {"f.g", 1e-7}, {"a", 3}};

static void *unpack_leaves(const void *unused)
{
    (void)unused;
    return trifle__json_unpack(oom_leaves, 5);
}

static void free_tree(void *tree)
{
    cJSON_Delete(tree);
}

static void test_oom_print_and_unpack(void **state)
{
    cJSON *tree = parse_ok("{\"a\":{\"b\":[1,2,{\"c\":\"text\"}]},\"n\":0.1}");
    int failures;

    (void)state;
    failures = oom_sweep("print", print_pretty, free_text, tree);
    failures += oom_sweep("unpack", unpack_leaves, free_tree, NULL);
    assert_true(failures >= 10);
    cJSON_Delete(tree);
}

static void test_cjson_uses_our_allocator(void **state)
{
    cJSON *v;

    (void)state;
    oom_begin(-1);
    v = parse_ok("{\"a\":[1,2,3],\"b\":\"x\"}");
    assert_true(oom_live > 0); /* cJSON's nodes came from the application's allocator */
    cJSON_Delete(v);
    assert_int_equal(oom_live, 0);
    oom_end();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_valid_forms),
        cmocka_unit_test(test_parse_length_bounded),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_duplicates_last_wins),
        cmocka_unit_test(test_duplicates_large_object),
        cmocka_unit_test(test_long_literals),
        cmocka_unit_test(test_overflowing_literals),
        cmocka_unit_test(test_locale_independent),
        cmocka_unit_test(test_write_compact_and_pretty),
        cmocka_unit_test(test_write_non_finite_and_built_trees),
        cmocka_unit_test(test_write_appends),
        cmocka_unit_test(test_unpack_vectors),
        cmocka_unit_test(test_unpack_rules),
        cmocka_unit_test(test_leaf_cmp_byte_order),
        cmocka_unit_test(test_utf8_seq),
        cmocka_unit_test(test_oom_parse),
        cmocka_unit_test(test_oom_print_and_unpack),
        cmocka_unit_test(test_cjson_uses_our_allocator),
    };

    return cmocka_run_group_tests(tests, vectors_setup_packer, vectors_teardown);
}
