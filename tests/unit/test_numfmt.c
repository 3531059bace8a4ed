/* core/numfmt.c: canonical number text (SPEC §4.5, packer.json#number_format), locale-free
 * parsing, plain positional text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numfmt_int.h"
#include "trifle/payload.h"
#include "unit_helpers.h"
#include "vectors.h"

static void assert_formats(double v, const char *expected)
{
    char buf[40];
    size_t n = trifle__fmt_double(buf, v);

    if (strcmp(buf, expected) != 0)
        fail_msg("%.17g formats as %s, expected %s", v, buf, expected);
    assert_int_equal(n, strlen(expected));
}

/* One "number_format" vector: its input number formats as its text. */
static int check_format(const cJSON *c)
{
    const char *text = vector_str(c, "text");
    double v = strtod(vector_str(c, "input"), NULL);
    char buf[40];

    assert_formats(v, text);
    assert_int_equal(trifle_format_double(buf, v), strlen(text));
    assert_string_equal(buf, text);
    return 0;
}

static void test_number_format_vectors(void **state)
{
    (void)state;
    assert_true(vectors_run("number_format", check_format) >= 20);
}

static void test_shortest_near_powers_of_two(void **state)
{
    /* the closest 16-digit decimal misses these, its neighbour on the wide side does not */
    (void)state;
    assert_formats(ldexp(1, -1017), "7.120236347223045e-307");
    assert_formats(ldexp(1, -1007), "7.291122019556398e-304");
    assert_formats(ldexp(1, -957), "8.209073602596753e-289");
    assert_formats(ldexp(1, 54), "18014398509481984");
    assert_formats(ldexp(1, 69), "590295810358705700000");
    assert_formats(ldexp(1, 70), "1.1805916207174113e+21");
    assert_formats(ldexp(1, -20), "9.5367431640625e-7");
    assert_formats(DBL_MAX, "1.7976931348623157e+308");
    assert_formats(DBL_MIN, "2.2250738585072014e-308");
    assert_formats(DBL_TRUE_MIN, "5e-324");
    assert_formats(-DBL_TRUE_MIN * 3, "-1.5e-323");
}

static void test_layout(void **state)
{
    (void)state;
    assert_formats(123456789012345678901.0, "123456789012345680000");
    assert_formats(1e21, "1e+21");
    assert_formats(-1.5e300, "-1.5e+300");
    assert_formats(0.000001, "0.000001");
    assert_formats(0.0000001, "1e-7");
    assert_formats(0.1 + 0.2, "0.30000000000000004");
    assert_formats(9007199254740991.0, "9007199254740991");
    assert_formats(-9007199254740992.0, "-9007199254740992");
    assert_formats(1.5, "1.5");
    assert_formats(-0.0, "0");
    assert_formats(NAN, "null");
    assert_formats(INFINITY, "null");
    assert_formats(-INFINITY, "null");
}

/* Every formatted double reads back to itself (and never in exponent form with a '.0'). */
static void test_round_trip_random(void **state)
{
    uint64_t x = 0x9E3779B97F4A7C15u;
    int i, checked = 0;

    (void)state;
    const int rounds = test_light() ? 2000 : 200000;

    for (i = 0; i < rounds; i++) {
        double v;
        char buf[40];

        (void)test_xorshift(&x);
        memcpy(&v, &x, sizeof(v));
        if (!isfinite(v))
            continue;
        (void)trifle__fmt_double(buf, v);
        if (strtod(buf, NULL) != v && !(v == 0))
            fail_msg("%a formats as %s, which reads back as %a", v, buf, strtod(buf, NULL));
        assert_null(strstr(buf, ".0e"));
        checked++;
    }
    assert_true(checked > rounds - rounds / 20); /* all but the non-finite draws */
}

static void test_parse_double(void **state)
{
    static const struct {
        const char *text;
        double value;
    } ok[] = {{"1", 1},   {"-1.5e3", -1500}, {"+2", 2},           {".5", 0.5},
              {"5.", 5},  {"1E-2", 0.01},    {"0.1", 0.1},        {"-0", 0},
              {"007", 7}, {"1e308", 1e308},  {"4.9e-324", 5e-324}};
    static const char *const bad[] = {"",    "-",   ".",  "e5", "1e",  "1e+",   "abc", "0x10",
                                      "inf", "nan", " 1", "1 ", "1,5", "1e400", "--1"};
    char long_text[300];
    size_t i;
    double v;

    (void)state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = -42;
        if (trifle__parse_double(ok[i].text, strlen(ok[i].text), &v) != 0 || v != ok[i].value)
            fail_msg("\"%s\" parsed as %g", ok[i].text, v);
    }
    assert_int_equal(trifle__parse_double("-0", 2, &v), 0);
    assert_false(signbit(v)); /* -0 is stored as 0 */
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (trifle__parse_double(bad[i], strlen(bad[i]), &v) == 0)
            fail_msg("\"%s\" was accepted as %g", bad[i], v);
    /* only len bytes count */
    assert_int_equal(trifle__parse_double("12abc", 2, &v), 0);
    assert_true(v == 12);
    /* longer than the stack buffer */
    memset(long_text, '0', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    long_text[0] = '1';
    long_text[1] = '.';
    assert_int_equal(trifle__parse_double(long_text, strlen(long_text), &v), 0);
    assert_true(v == 1);
}

static void test_fmt_plain(void **state)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {{0, "0"},
                 {-0.0, "0"},
                 {2.5, "2.5"},
                 {-2.5, "-2.5"},
                 {1e21, "1000000000000000000000"},
                 {1.5e-7, "0.00000015"},
                 {100, "100"},
                 {0.1 + 0.2, "0.30000000000000004"}};
    char buf[400];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = trifle__fmt_plain(buf, sizeof(buf), cases[i].v);
        assert_string_equal(buf, cases[i].text);
        assert_int_equal(n, strlen(cases[i].text));
    }
    /* truncation reports the full length and stays terminated */
    assert_int_equal(trifle__fmt_plain(buf, 4, 123456), 6);
    assert_string_equal(buf, "123");
    assert_int_equal(trifle__fmt_plain(buf, sizeof(buf), NAN), 0);
    assert_string_equal(buf, "");
}

static void test_locale_independent(void **state)
{
    char buf[40];
    double v = 0;

    (void)state;
    test_decimal_comma_locale();
    assert_string_equal(localeconv()->decimal_point, ",");
    (void)trifle__fmt_double(buf, 2.5);
    assert_string_equal(buf, "2.5");
    (void)trifle__fmt_double(buf, 1.25e-7);
    assert_string_equal(buf, "1.25e-7");
    assert_int_equal(trifle__parse_double("2.5", 3, &v), 0);
    assert_true(v == 2.5);
    assert_int_not_equal(trifle__parse_double("2,5", 3, &v), 0);
    (void)trifle__fmt_plain(buf, sizeof(buf), 0.125);
    assert_string_equal(buf, "0.125");
    (void)setlocale(LC_NUMERIC, "C");
}

/* The fast paths of trifle__fmt_double (integral values, short decimals m / 10^q) against the
 * printf search they stand in for: byte for byte, on random bit patterns and on the values the
 * fast paths are for (short decimals, binary fractions, sums, values where v·10^q nears 2^50). */
static uint64_t rng_state = 0x2545F4914F6CDD1Du;

static void assert_fast_matches_reference(double v)
{
    char fast[40], ref[40];
    size_t nf = trifle__fmt_double(fast, v), nr = trifle__fmt_double_reference(ref, v);

    if (nf != nr || strcmp(fast, ref) != 0)
        fail_msg("%a: fast path gives %s, the printf search %s", v, fast, ref);
}

static void test_fast_path_matches_reference(void **state)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const int rounds = test_light() ? 5000 : 50000;
    double sum = 0, tenth = 0;
    int i;

    (void)state;
    for (i = 0; i < rounds; i++) {
        uint64_t bits = test_xorshift(&rng_state), r = test_xorshift(&rng_state);
        double v, m;
        int q = (int)((r >> 32) % 23), digits = 1 + (int)((r >> 40) % 17);

        memcpy(&v, &bits, sizeof(v));
        if (isfinite(v))
            assert_fast_matches_reference(v);
        /* a short decimal: an integer of 1..17 digits over 10^q */
        m = (double)(test_xorshift(&rng_state) % (uint64_t)pow10[digits]);
        v = m / pow10[q];
        assert_fast_matches_reference(v);
        assert_fast_matches_reference(-v);
        assert_fast_matches_reference(nextafter(v, 0));
        assert_fast_matches_reference(nextafter(v, INFINITY));
        /* near the 2^50 bound of the fast path: v·10^q just below and above it */
        v = (0x1p50 + (double)((int64_t)(r % 65) - 32)) / pow10[q];
        assert_fast_matches_reference(v);
        /* binary fractions (2.5, 0.25, 0.375) and running sums of them and of 0.1 */
        v = (double)(r % 1000000) + (double)((r >> 20) % 64) / 64.0;
        assert_fast_matches_reference(v);
        sum += v * 0.25;
        tenth += 0.1;
        assert_fast_matches_reference(sum);
        assert_fast_matches_reference(tenth);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_number_format_vectors),
        cmocka_unit_test(test_shortest_near_powers_of_two),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_round_trip_random),
        cmocka_unit_test(test_fast_path_matches_reference),
        cmocka_unit_test(test_parse_double),
        cmocka_unit_test(test_fmt_plain),
        cmocka_unit_test(test_locale_independent),
    };

    return cmocka_run_group_tests(tests, vectors_setup_packer, vectors_teardown);
}
