/* core/payload.c: SPEC §4.1 validation and §4.2 packing (packer.json#pack, through both the JSON
 * and the packed-leaves entry points), lookups, JSON output, allocation failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf_int.h"
#include "oom_alloc.h"
#include "payload_int.h"
#include "unit_helpers.h"
#include "vectors.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static trifle_payload *parse_ok(const char *text)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_payload *p = NULL;

    if (trifle_payload_parse(&p, text, strlen(text), &err) != 0)
        fail_msg("parse of %s failed: %s", text, err.message);
    assert_non_null(p);
    return p;
}

static void assert_parse_fails(const char *text, const char *message, const char *path)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_payload *p = (trifle_payload *)&err; /* must be reset to NULL */
    int rc = trifle_payload_parse(&p, text, strlen(text), &err);

    if (rc != TRIFLE_EINVAL || strcmp(err.message, message) != 0 || strcmp(err.path, path) != 0)
        fail_msg("%s: rc %d, message \"%s\", path \"%s\"; expected \"%s\" at \"%s\"", text, rc,
                 err.message, err.path, message, path);
    assert_int_equal(err.code, TRIFLE_EINVAL);
    assert_null(p);
}

static void assert_value(const trifle_payload *p, const char *path, double expected)
{
    double v = -12345;

    if (trifle_payload_get(p, path, &v) != 0)
        fail_msg("no leaf at %s", path);
    if (!(v == expected) || signbit(v) != signbit(expected))
        fail_msg("%s = %.17g, expected %.17g", path, v, expected);
}

static void assert_json(const trifle_payload *p, int flags, const char *expected)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    char *out = NULL;

    assert_int_equal(trifle_payload_to_json(p, &out, flags, &err), 0);
    assert_string_equal(out, expected);
    trifle_mem_free(out);
}

static void assert_sorted(const trifle_payload *p)
{
    const trifle_leaf *l = trifle_payload_leaves(p);
    size_t i;

    for (i = 1; i < trifle_payload_count(p); i++)
        if (strcmp(l[i - 1].path, l[i].path) >= 0)
            fail_msg("leaves out of order: %s before %s", l[i - 1].path, l[i].path);
}

/* ---- packer.json#pack ---------------------------------------------------------------------- */

/* The vector input as JSON text with every double written exactly (%.17g keeps -0). Returns -1
 * when it holds a {"$float": ...} stand-in, which JSON cannot express. */
static int input_text(trifle__buf *b, const cJSON *v)
{
    const cJSON *c;

    if (cJSON_IsObject(v) && cJSON_GetObjectItemCaseSensitive(v, "$float") != NULL)
        return -1;
    if (cJSON_IsNumber(v)) {
        trifle__buf_printf(b, "%.17g", v->valuedouble);
    } else if (cJSON_IsString(v)) {
        trifle__buf_json_string(b, v->valuestring, strlen(v->valuestring));
    } else if (cJSON_IsBool(v)) {
        trifle__buf_puts(b, cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsNull(v)) {
        trifle__buf_puts(b, "null");
    } else {
        int object = cJSON_IsObject(v);
        trifle__buf_putc(b, object ? '{' : '[');
        for (c = v->child; c != NULL; c = c->next) {
            if (object) {
                trifle__buf_json_string(b, c->string, strlen(c->string));
                trifle__buf_putc(b, ':');
            }
            if (input_text(b, c) != 0)
                return -1;
            if (c->next != NULL)
                trifle__buf_putc(b, ',');
        }
        trifle__buf_putc(b, object ? '}' : ']');
    }
    return 0;
}

typedef struct leaf_list {
    trifle_leaf l[64];
    char *paths[64];
    size_t n;
} leaf_list;

/* The vector input flattened to leaves in document order, {"$float": ...} read as NaN/±Inf.
 * Returns -1 when a leaf is not a number (a string, bool, null or array has no leaf form). */
static int input_leaves(leaf_list *out, const cJSON *obj, const char *prefix)
{
    const cJSON *c;

    for (c = obj->child; c != NULL; c = c->next) {
        size_t plen = strlen(prefix), klen = strlen(c->string);
        char *path = malloc(plen + klen + 2);
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(c, "$float");

        if (plen > 0)
            (void)snprintf(path, plen + klen + 2, "%s.%s", prefix, c->string);
        else
            memcpy(path, c->string, klen + 1);
        out->paths[out->n] = path; /* freed by the caller, whatever happens */
        if (f != NULL || cJSON_IsNumber(c)) {
            double v = 0;
            if (f == NULL)
                v = c->valuedouble;
            else if (strcmp(f->valuestring, "NaN") == 0)
                v = NAN;
            else if (strcmp(f->valuestring, "Infinity") == 0)
                v = INFINITY;
            else if (strcmp(f->valuestring, "-Infinity") == 0)
                v = -INFINITY;
            else
                fail_msg("unknown $float %s", f->valuestring);
            out->l[out->n].path = path;
            out->l[out->n].value = v;
            out->n++;
        } else if (cJSON_IsObject(c)) {
            out->paths[out->n] = NULL;
            if (input_leaves(out, c, path) != 0) {
                free(path);
                return -1;
            }
            free(path);
        } else {
            out->paths[out->n] = NULL;
            free(path);
            return -1;
        }
        assert_true(out->n < 64);
    }
    return 0;
}

static void check_pack_case(int idx, const char *via, int rc, trifle_payload *p,
                            const trifle_error *err, const cJSON *c)
{
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(c, "error");

    if (error != NULL) {
        const cJSON *epath = cJSON_GetObjectItemCaseSensitive(c, "error_path");
        const char *want_path = cJSON_IsString(epath) ? epath->valuestring : "";
        if (rc != TRIFLE_EINVAL || strcmp(err->message, error->valuestring) != 0 ||
            strcmp(err->path, want_path) != 0)
            fail_msg("pack case %d via %s: rc %d \"%s\" at \"%s\", expected \"%s\" at \"%s\"", idx,
                     via, rc, err->message, err->path, error->valuestring, want_path);
        assert_null(p);
    } else {
        const cJSON *flat = cJSON_GetObjectItemCaseSensitive(c, "expected_flat"), *e;
        if (rc != 0)
            fail_msg("pack case %d via %s: rc %d \"%s\"", idx, via, rc, err->message);
        assert_int_equal(trifle_payload_count(p), (size_t)cJSON_GetArraySize(flat));
        assert_int_equal(trifle_payload_count(p) == 0,
                         cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "noop")));
        assert_sorted(p);
        cJSON_ArrayForEach (e, flat) {
            assert_value(p, e->string, e->valuedouble);
        }
        trifle_payload_free(p);
    }
}

static void test_pack_vectors(void **state)
{
    cJSON *doc = vectors_load("packer.json");
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(doc, "pack"), *c;
    int idx = 0, via_json = 0, via_leaves = 0;

    (void)state;
    cJSON_ArrayForEach (c, cases) {
        const cJSON *input = cJSON_GetObjectItemCaseSensitive(c, "input");
        trifle__buf text = TRIFLE__BUF_INIT;
        leaf_list leaves;
        int ran = 0;
        size_t i;

        if (input_text(&text, input) == 0) {
            trifle_error err = TRIFLE_ERROR_INIT;
            trifle_payload *p = NULL;
            int rc = trifle_payload_parse(&p, text.data, text.len, &err);
            check_pack_case(idx, text.data, rc, p, &err, c);
            via_json++;
            ran = 1;
        }
        memset(&leaves, 0, sizeof(leaves));
        if (cJSON_IsObject(input) && input_leaves(&leaves, input, "") == 0) {
            trifle_error err = TRIFLE_ERROR_INIT;
            trifle_payload *p = NULL;
            int rc = trifle_payload_from_leaves(&p, leaves.l, leaves.n, &err);
            check_pack_case(idx, "leaves", rc, p, &err, c);
            via_leaves++;
            ran = 1;
        }
        for (i = 0; i < 64; i++)
            free(leaves.paths[i]);
        if (!ran)
            fail_msg("pack case %d could not be run", idx);
        trifle__buf_free(&text);
        idx++;
    }
    assert_int_equal(idx, cJSON_GetArraySize(cases));
    assert_true(via_json >= 30);
    assert_true(via_leaves >= 20);
    cJSON_Delete(doc);
}

/* ---- validation order and the rules the vectors do not reach -------------------------------- */

static void test_first_violation_wins(void **state)
{
    (void)state;
    /* member by member in document order: the value of "bad" comes before the key "$k" */
    assert_parse_fails("{\"ok\":1,\"bad\":\"x\",\"$k\":1}", "value at \"bad\" is not a number",
                       "bad");
    assert_parse_fails("{\"$k\":1,\"bad\":\"x\"}", "invalid key at \"$k\"", "$k");
    /* depth-first: a nested fault before a later sibling's */
    assert_parse_fails("{\"m\":{\"n\":{\"$x\":1}},\"b\":true}", "invalid key at \"m.n.$x\"",
                       "m.n.$x");
    /* a key is checked before its value */
    assert_parse_fails("{\"a..b\":\"x\"}", "invalid key at \"a..b\"", "a..b");
    /* path rules need the whole set, so any member fault is reported first */
    assert_parse_fails("{\"a\":1,\"a.b\":2,\"z\":null}", "value at \"z\" is not a number", "z");
    assert_parse_fails("{\"a\":{\"b\":[]}}", "value at \"a.b\" is not a number", "a.b");
    assert_parse_fails("{\"a\":{\"b\":{}},\"c\":1e400}", "value at \"c\" is not finite", "c");
}

static void test_duplicate_and_conflict_order(void **state)
{
    (void)state;
    /* the smallest duplicate in byte order */
    assert_parse_fails("{\"z.y\":1,\"z\":{\"y\":1},\"c.d\":1,\"c\":{\"d\":2}}",
                       "duplicate path \"c.d\"", "c.d");
    /* duplicates are reported before conflicts */
    assert_parse_fails("{\"a\":1,\"a.b\":2,\"z.y\":1,\"z\":{\"y\":1}}", "duplicate path \"z.y\"",
                       "z.y");
    /* the conflicting pair with the smallest shorter path, then the smallest longer path */
    assert_parse_fails("{\"b\":1,\"b.c\":2,\"a\":1,\"a.z\":3,\"a.x\":4}",
                       "conflicting paths \"a\" and \"a.x\"", "a");
    /* siblings that sort between a path and its extensions ("a-b" < "a.c") do not hide them */
    assert_parse_fails("{\"a\":1,\"a-b\":1,\"a+\":1,\"a.c\":1}",
                       "conflicting paths \"a\" and \"a.c\"", "a");
    /* a longer name is not an extension */
    trifle_payload_free(parse_ok("{\"a\":1,\"ab\":2,\"a-b\":3,\"b\":{\"a\":1}}"));
}

static void test_json_duplicates_last_wins(void **state)
{
    trifle_payload *p;

    (void)state;
    p = parse_ok("{\"a\":\"x\",\"a\":1}");
    assert_int_equal(trifle_payload_count(p), 1);
    assert_value(p, "a", 1);
    trifle_payload_free(p);
    assert_parse_fails("{\"a\":1,\"a\":\"x\"}", "value at \"a\" is not a number", "a");
    p = parse_ok("{\"m\":{\"x\":1},\"m\":{\"y\":2}}");
    assert_int_equal(trifle_payload_count(p), 1);
    assert_value(p, "m.y", 2);
    trifle_payload_free(p);
    p = parse_ok("{\"a\":1,\"a\":{}}");
    assert_int_equal(trifle_payload_count(p), 0);
    trifle_payload_free(p);
    /* a duplicate member is not a duplicate path */
    p = parse_ok("{\"a\":{\"b\":1},\"a\":{\"b\":2}}");
    assert_value(p, "a.b", 2);
    trifle_payload_free(p);
}

static void test_nesting_depth(void **state)
{
    trifle__buf text = TRIFLE__BUF_INIT, path = TRIFLE__BUF_INIT;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_payload *p;
    trifle_leaf leaf;
    char message[600];
    int i;

    (void)state;
    /* 64 levels: 63 nested objects and a leaf */
    for (i = 0; i < 63; i++)
        trifle__buf_puts(&text, "{\"k\":");
    trifle__buf_puts(&text, "{\"v\":1");
    for (i = 0; i < 64; i++)
        trifle__buf_putc(&text, '}');
    p = parse_ok(text.data);
    assert_int_equal(trifle_payload_count(p), 1);
    assert_int_equal(strlen(trifle_payload_leaves(p)[0].path), 63 * 2 + 1);
    trifle_payload_free(p);
    /* 65: the member at level 65 is at fault */
    trifle__buf_reset(&text);
    for (i = 0; i < 64; i++) {
        trifle__buf_puts(&text, "{\"k\":");
        trifle__buf_puts(&path, "k.");
    }
    trifle__buf_puts(&text, "{\"v\":1");
    trifle__buf_puts(&path, "v");
    for (i = 0; i < 65; i++)
        trifle__buf_putc(&text, '}');
    (void)snprintf(message, sizeof(message), "values nested deeper than 64 levels at \"%s\"",
                   path.data);
    assert_parse_fails(text.data, message, path.data);
    /* dotted keys count as the levels they unpack to, so output always parses back */
    trifle__buf_reset(&path);
    for (i = 0; i < 63; i++)
        trifle__buf_puts(&path, "k.");
    trifle__buf_puts(&path, "v");
    trifle__buf_reset(&text);
    trifle__buf_printf(&text, "{\"%s\":1}", path.data);
    p = parse_ok(text.data);
    trifle_payload_free(p);
    leaf.path = path.data;
    leaf.value = 1;
    assert_int_equal(trifle_payload_from_leaves(&p, &leaf, 1, &err), 0);
    trifle_payload_free(p);
    (void)snprintf(message, sizeof(message), "values nested deeper than 64 levels at \"x.%s\"",
                   path.data);
    {
        trifle__buf deep = TRIFLE__BUF_INIT;
        trifle__buf_printf(&deep, "x.%s", path.data);
        trifle__buf_reset(&text);
        trifle__buf_printf(&text, "{\"x\":{\"%s\":1}}", path.data);
        assert_parse_fails(text.data, message, deep.data);
        trifle__buf_reset(&text);
        trifle__buf_puts(&text, deep.data);
        trifle__buf_free(&deep);
    }
    leaf.path = text.data;
    assert_int_equal(trifle_payload_from_leaves(&p, &leaf, 1, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, message);
    assert_string_equal(err.path, text.data);
    /* far deeper than JSON allows at all */
    trifle__buf_reset(&text);
    for (i = 0; i < 600; i++)
        trifle__buf_puts(&text, "{\"k\":");
    assert_parse_fails(text.data, "invalid JSON: nesting deeper than 512 levels at byte 2560", "");
    trifle__buf_free(&text);
    trifle__buf_free(&path);
}

static void test_numbers(void **state)
{
    trifle_payload *p;
    trifle_error err = TRIFLE_ERROR_INIT;
    static const trifle_leaf neg0[] = {{"z", -0.0}};
    char text[700];

    (void)state;
    /* long literals are read exactly (2^53 + 1 + a tiny bit rounds up) */
    /* 80 zeros: the precision of an integer conversion is its minimum number of digits */
    (void)snprintf(text, sizeof(text),
                   "{\"a\":9007199254740993.%.80d1,\"b\":"
                   "1234567890123456789012345678901234567890123456789012345678901234567890}",
                   0);
    p = parse_ok(text);
    assert_value(p, "a", 9007199254740994.0);
    assert_value(
        p, "b",
        strtod("1234567890123456789012345678901234567890123456789012345678901234567890", NULL));
    trifle_payload_free(p);
    /* overflowing literals are not finite (ERRATA 23), underflow is 0 */
    assert_parse_fails("{\"x\":{\"y\":1e400}}", "value at \"x.y\" is not finite", "x.y");
    assert_parse_fails("{\"x\":-1e400}", "value at \"x\" is not finite", "x");
    (void)snprintf(text, sizeof(text), "{\"huge\":1%.400d}", 0);
    assert_parse_fails(text, "value at \"huge\" is not finite", "huge");
    p = parse_ok("{\"tiny\":1e-400,\"n\":-0,\"m\":-0.0e5}");
    assert_value(p, "tiny", 0);
    assert_value(p, "n", 0);
    assert_value(p, "m", 0);
    assert_json(p, TRIFLE_JSON_COMPACT, "{\"m\":0,\"n\":0,\"tiny\":0}");
    trifle_payload_free(p);
    /* -0 through leaves too */
    assert_int_equal(trifle_payload_from_leaves(&p, neg0, 1, &err), 0);
    assert_value(p, "z", 0);
    trifle_payload_free(p);
    /* numeric strings are not numbers */
    assert_parse_fails("{\"n\":\"5\"}", "value at \"n\" is not a number", "n");
}

static void test_keys(void **state)
{
    trifle_payload *p;
    char text[1200];
    trifle_error err = TRIFLE_ERROR_INIT;
    int i;

    (void)state;
    /* quotes, '$' inside a segment, UTF-8 and spaces are fine */
    p = parse_ok("{\"a\\\"b\":1,\"x$\":{\"y $z\":2},\"\xC3\xA9t\xC3\xA9\":3,\"::\":4}");
    assert_value(p, "a\"b", 1);
    assert_value(p, "x$.y $z", 2);
    assert_value(p, "\xC3\xA9t\xC3\xA9", 3);
    assert_value(p, "::", 4);
    trifle_payload_free(p);
    assert_parse_fails("{\"$\\\"\":1}", "invalid key at \"$\"\"", "$\"");
    /* UTF-8 is checked by the JSON layer, NUL cannot be carried */
    assert_parse_fails("{\"ok\":1,\"b\xff\":1}", "invalid JSON: invalid UTF-8 at byte 10", "");
    assert_parse_fails("{\"a\\u0000b\":1}", "invalid JSON: \\u0000 in string at byte 3", "");
    /* a path too long for the message is cut on a character boundary */
    memcpy(text, "{\"", 2);
    for (i = 0; i < 300; i++)
        memcpy(text + 2 + 2 * i, "\xC3\xA9", 2);
    memcpy(text + 2 + 2 * 300, "\":{\"$\":1}}", sizeof("\":{\"$\":1}}"));
    assert_int_equal(trifle_payload_parse(&p, text, strlen(text), &err), TRIFLE_EINVAL);
    assert_int_equal(strncmp(err.message, "invalid key at \"\xC3\xA9", 18), 0);
    assert_int_equal(strcmp(err.message + strlen(err.message) - 3, "\xE2\x80\xA6"), 0);
    assert_int_equal(strcmp(err.path + strlen(err.path) - 3, "\xE2\x80\xA6"), 0);
    assert_true(strlen(err.path) < sizeof(err.path));
}

static void test_not_an_object(void **state)
{
    (void)state;
    assert_parse_fails("[]", "values must be an object", "");
    assert_parse_fails("  \"x\" ", "values must be an object", "");
    assert_parse_fails("{\"a\":1", "invalid JSON: unexpected end of input at byte 6", "");
    assert_parse_fails("", "invalid JSON: unexpected end of input at byte 0", "");
}

static void test_parse_length_and_err(void **state)
{
    const char text[] = "{\"a\":{\"b\":2}}{\"junk";
    trifle_error err = {99, 7, "drv", "keep", "keep"};
    trifle_payload *p = NULL;

    (void)state;
    assert_int_equal(trifle_payload_parse(&p, text, 13, &err), 0);
    /* err is untouched on success */
    assert_int_equal(err.code, 99);
    assert_string_equal(err.message, "keep");
    assert_value(p, "a.b", 2);
    trifle_payload_free(p);
    /* err may be NULL */
    assert_int_equal(trifle_payload_parse(&p, text, sizeof(text) - 1, NULL), TRIFLE_EINVAL);
    assert_null(p);
}

/* ---- packed leaves ------------------------------------------------------------------------- */

static void test_from_leaves(void **state)
{
    char a[] = "b.x", b[] = "a";
    trifle_leaf l[3] = {{a, 1}, {b, 2}, {"c", 3}};
    static const trifle_leaf bad_utf8[] = {{"ok", 1}, {"m.\xff", 2}};
    static const trifle_leaf null_path[] = {{NULL, 1}};
    static const trifle_leaf dollar[] = {{"a.$b", 1}};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_payload *p;

    (void)state;
    assert_int_equal(trifle_payload_from_leaves(&p, l, 3, &err), 0);
    a[0] = 'z'; /* copied, sorted */
    b[0] = 'z';
    assert_sorted(p);
    assert_string_equal(trifle_payload_leaves(p)[0].path, "a");
    assert_value(p, "b.x", 1);
    trifle_payload_free(p);

    assert_int_equal(trifle_payload_from_leaves(&p, NULL, 0, &err), 0);
    assert_int_equal(trifle_payload_count(p), 0);
    assert_json(p, TRIFLE_JSON_PRETTY, "{}");
    trifle_payload_free(p);

    assert_int_equal(trifle_payload_from_leaves(&p, NULL, 2, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "leaves must not be NULL");
    assert_null(p);
    assert_int_equal(trifle_payload_from_leaves(&p, null_path, 1, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "invalid key at \"\"");
    assert_int_equal(trifle_payload_from_leaves(&p, dollar, 1, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "invalid key at \"a.$b\"");
    assert_string_equal(err.path, "a.$b");
    /* invalid UTF-8: rejected, and shown as U+FFFD so the message stays UTF-8 */
    assert_int_equal(trifle_payload_from_leaves(&p, bad_utf8, 2, &err), TRIFLE_EINVAL);
    assert_string_equal(err.message, "invalid key at \"m.\xEF\xBF\xBD\"");
    assert_string_equal(err.path, "m.\xEF\xBF\xBD");
    assert_null(p);
}

static void test_from_sorted(void **state)
{
    static const trifle_leaf l[] = {{"a", 1}, {"a.b", 2}, {"c", -0.0}};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_payload *p;

    (void)state;
    /* storage reads are not validated: a leaf and an extension of it can both be there */
    assert_int_equal(trifle__payload_from_sorted(&p, l, 3, &err), 0);
    assert_int_equal(trifle_payload_count(p), 3);
    assert_value(p, "a", 1);
    assert_value(p, "c", 0);
    assert_true(trifle_payload_leaves(p)[0].path != l[0].path);
    /* and the object wins on output */
    assert_json(p, TRIFLE_JSON_COMPACT, "{\"a\":{\"b\":2},\"c\":0}");
    trifle_payload_free(p);
    assert_int_equal(trifle__payload_from_sorted(&p, NULL, 0, &err), 0);
    assert_int_equal(trifle_payload_count(p), 0);
    trifle_payload_free(p);
}

/* ---- access and output --------------------------------------------------------------------- */

static void test_get(void **state)
{
    trifle__buf text = TRIFLE__BUF_INIT;
    trifle_payload *p;
    double v;
    int i;

    (void)state;
    trifle__buf_putc(&text, '{');
    for (i = 0; i < 100; i++)
        trifle__buf_printf(&text, "%s\"k%d\":{\"v\":%d}", i ? "," : "", 99 - i, i);
    trifle__buf_putc(&text, '}');
    p = parse_ok(text.data);
    assert_int_equal(trifle_payload_count(p), 100);
    assert_sorted(p);
    for (i = 0; i < 100; i++) {
        char path[16];
        (void)snprintf(path, sizeof(path), "k%d.v", i);
        assert_value(p, path, 99 - i);
    }
    assert_int_equal(trifle_payload_get(p, "k1", &v), TRIFLE_ENOTFOUND);
    assert_int_equal(trifle_payload_get(p, "k1.v.w", &v), TRIFLE_ENOTFOUND);
    assert_int_equal(trifle_payload_get(p, "", &v), TRIFLE_ENOTFOUND);
    assert_int_equal(trifle_payload_get(p, NULL, &v), TRIFLE_ENOTFOUND);
    assert_int_equal(trifle_payload_get(p, "k5.v", NULL), 0);
    assert_int_equal(trifle_payload_get(NULL, "k5.v", &v), TRIFLE_ENOTFOUND);
    trifle_payload_free(p);
    trifle__buf_free(&text);
    assert_int_equal(trifle_payload_count(NULL), 0);
    assert_null(trifle_payload_leaves(NULL));
    trifle_payload_free(NULL);
}

static void test_to_json(void **state)
{
    trifle_payload *p;

    (void)state;
    p = parse_ok("{\"z\":1e21,\"a-b\":0.1,\"a\":{\"y\":1e-7,\"x\":{\"q\":100}},\"k.l\":2.5,\"k\":{"
                 "\"m\":3}}");
    /* members in byte order at every level, canonical numbers, packed keys expanded */
    assert_json(
        p, TRIFLE_JSON_COMPACT,
        "{\"a\":{\"x\":{\"q\":100},\"y\":1e-7},\"a-b\":0.1,\"k\":{\"l\":2.5,\"m\":3},\"z\":1e+21}");
    assert_json(p, TRIFLE_JSON_PRETTY,
                "{\n"
                "  \"a\": {\n"
                "    \"x\": {\n"
                "      \"q\": 100\n"
                "    },\n"
                "    \"y\": 1e-7\n"
                "  },\n"
                "  \"a-b\": 0.1,\n"
                "  \"k\": {\n"
                "    \"l\": 2.5,\n"
                "    \"m\": 3\n"
                "  },\n"
                "  \"z\": 1e+21\n"
                "}");
    trifle_payload_free(p);
    p = parse_ok("{\"q\\\"\\\\\\n\":1}");
    assert_json(p, TRIFLE_JSON_COMPACT, "{\"q\\\"\\\\\\n\":1}");
    trifle_payload_free(p);
}

static void test_round_trip(void **state)
{
    const char *text =
        "{\"count\":1,\"meta\":{\"duration\":2.5e-9,\"nested\":{\"x\":-1}},"
        "\"country.US\":3,\"country\":{\"SK\":0.30000000000000004},\"max\":1.7976931348623157e308}";
    trifle_payload *a = parse_ok(text), *b;
    char *out = NULL;
    size_t i;

    (void)state;
    assert_int_equal(trifle_payload_to_json(a, &out, TRIFLE_JSON_PRETTY, NULL), 0);
    b = parse_ok(out);
    assert_int_equal(trifle_payload_count(a), trifle_payload_count(b));
    for (i = 0; i < trifle_payload_count(a); i++) {
        assert_string_equal(trifle_payload_leaves(a)[i].path, trifle_payload_leaves(b)[i].path);
        assert_true(trifle_payload_leaves(a)[i].value == trifle_payload_leaves(b)[i].value);
    }
    trifle_mem_free(out);
    trifle_payload_free(a);
    trifle_payload_free(b);
}

static void test_one_allocation(void **state)
{
    trifle_payload *p;
    trifle_error err = TRIFLE_ERROR_INIT;
    static const trifle_leaf l[] = {{"a.b", 1}, {"c", 2}, {"d.e.f", 3}};

    (void)state;
    oom_begin(-1);
    p = parse_ok("{\"a\":{\"b\":1},\"c\":2,\"d\":{\"e\":{\"f\":3}}}");
    assert_int_equal(oom_live, 1); /* the cJSON tree is gone, the payload is one block */
    trifle_payload_free(p);
    assert_int_equal(trifle_payload_from_leaves(&p, l, 3, &err), 0);
    assert_int_equal(oom_live, 1);
    trifle_payload_free(p);
    assert_int_equal(oom_live, 0);
    oom_end();
}

static void test_locale_independent(void **state)
{
    trifle_payload *p;

    (void)state;
    test_decimal_comma_locale();
    p = parse_ok("{\"a\":2.5,\"b\":{\"c\":-0.125}}");
    assert_value(p, "a", 2.5);
    assert_value(p, "b.c", -0.125);
    assert_json(p, TRIFLE_JSON_COMPACT, "{\"a\":2.5,\"b\":{\"c\":-0.125}}");
    trifle_payload_free(p);
    (void)setlocale(LC_NUMERIC, "C");
}

/* ---- allocation failures ------------------------------------------------------------------- */

static void test_oom(void **state)
{
    static const trifle_leaf leaves[] = {{"x.y", 1}, {"a", 2}, {"b.c.d", 3}, {"b.e", 4}};
    const char *text =
        "{\"count\":1,\"meta\":{\"duration\":2.5,\"nested\":{\"x\":-1}},\"dup\":\"s\","
        "\"dup\":7,\"long\":123456789012345678901234567890123456789012345678901234567890"
        "1234567890}";
    int which;

    (void)state;
    for (which = 0; which < 3; which++) {
        trifle_payload *base = parse_ok(text);
        long n;
        int failures = 0;

        for (n = 1;; n++) {
            trifle_error err = TRIFLE_ERROR_INIT;
            trifle_payload *p = (trifle_payload *)&err;
            char *out = (char *)&err;
            int rc;

            oom_begin(n);
            if (which == 0) {
                rc = trifle_payload_parse(&p, text, strlen(text), &err);
                trifle_payload_free(rc == 0 ? p : NULL);
            } else if (which == 1) {
                rc = trifle_payload_from_leaves(&p, leaves, 4, &err);
                trifle_payload_free(rc == 0 ? p : NULL);
            } else {
                rc = trifle_payload_to_json(base, &out, TRIFLE_JSON_PRETTY, &err);
                trifle_mem_free(rc == 0 ? out : NULL);
            }
            if (oom_live != 0)
                fail_msg("call %d, allocation %ld failed: %ld blocks leaked", which, n, oom_live);
            oom_end();
            if (rc == 0)
                break;
            if (rc != TRIFLE_ENOMEM || err.code != TRIFLE_ENOMEM)
                fail_msg("call %d, allocation %ld failed: rc %d (%s)", which, n, rc, err.message);
            if (which == 2)
                assert_null(out);
            else
                assert_null(p);
            failures++;
            assert_true(n < 10000);
        }
        assert_true(failures >= 1);
        if (which == 0)
            assert_true(failures > 20);
        trifle_payload_free(base);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_vectors),
        cmocka_unit_test(test_first_violation_wins),
        cmocka_unit_test(test_duplicate_and_conflict_order),
        cmocka_unit_test(test_json_duplicates_last_wins),
        cmocka_unit_test(test_nesting_depth),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_parse_length_and_err),
        cmocka_unit_test(test_from_leaves),
        cmocka_unit_test(test_from_sorted),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_to_json),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_one_allocation),
        cmocka_unit_test(test_locale_independent),
        cmocka_unit_test(test_oom),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
