/* libFuzzer target for values JSON (SPEC §4): core/payload.c and core/json.c.
 *
 * Properties checked on every input:
 *  - trifle_payload_parse never fails with ENOMEM (nothing limits memory here, so that would mean
 *    the strict scan accepted text that cJSON rejects) and every failure carries a message;
 *  - an accepted payload has sorted, unique, finite leaves and no -0;
 *  - to_json (compact and pretty) parses back to exactly the same leaves;
 *  - at the JSON layer, print(parse(x)) is a fixed point: printing it and parsing it again gives
 *    the same text.
 * Any violation calls abort(). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_int.h"
#include "fuzz.h"
#include "json_int.h"
#include "payload_int.h"

static void same_leaves(const trifle_payload *a, const trifle_payload *b)
{
    size_t i;

    CHECK(trifle_payload_count(a) == trifle_payload_count(b));
    for (i = 0; i < trifle_payload_count(a); i++) {
        CHECK(strcmp(trifle_payload_leaves(a)[i].path, trifle_payload_leaves(b)[i].path) == 0);
        CHECK(trifle_payload_leaves(a)[i].value == trifle_payload_leaves(b)[i].value);
    }
}

static void round_trip(const trifle_payload *p, int flags)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_payload *again = NULL;
    char *text = NULL;

    CHECK(trifle_payload_to_json(p, &text, flags, &err) == 0);
    CHECK(trifle_payload_parse(&again, text, strlen(text), &err) == 0);
    same_leaves(p, again);
    trifle_payload_free(again);
    trifle_mem_free(text);
}

static void json_fixed_point(const char *data, size_t size)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    cJSON *a = NULL, *b = NULL;
    char *first, *second;
    int rc = trifle__json_parse(&a, data, size, &err);

    CHECK(rc == 0 || rc == TRIFLE_EINVAL);
    if (rc != 0)
        return;
    first = trifle__json_print(a, 0);
    CHECK(first != NULL);
    CHECK(trifle__json_parse(&b, first, strlen(first), &err) == 0);
    second = trifle__json_print(b, 1);
    CHECK(second != NULL);
    cJSON_Delete(b);
    CHECK(trifle__json_parse(&b, second, strlen(second), &err) == 0);
    trifle__free(second);
    second = trifle__json_print(b, 0);
    CHECK(second != NULL && strcmp(first, second) == 0);
    trifle__free(first);
    trifle__free(second);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_payload *p = NULL;
    const trifle_leaf *l;
    size_t i;
    int rc;

    json_fixed_point((const char *)data, size);
    rc = trifle_payload_parse(&p, (const char *)data, size, &err);
    if (rc != 0) {
        CHECK(rc == TRIFLE_EINVAL && p == NULL && err.code == rc && err.message[0] != '\0');
        return 0;
    }
    l = trifle_payload_leaves(p);
    for (i = 0; i < trifle_payload_count(p); i++) {
        CHECK(isfinite(l[i].value) && !(l[i].value == 0 && signbit(l[i].value)));
        CHECK(i == 0 || strcmp(l[i - 1].path, l[i].path) < 0);
        CHECK(trifle_payload_get(p, l[i].path, NULL) == 0);
    }
    round_trip(p, TRIFLE_JSON_COMPACT);
    round_trip(p, TRIFLE_JSON_PRETTY);
    trifle_payload_free(p);
    return 0;
}
