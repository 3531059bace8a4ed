/* See track_helpers.h. */
#include "track_helpers.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

trifle_payload *test_payload(const char *json)
{
    trifle_payload *p = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;

    if (trifle_payload_parse(&p, json, strlen(json), &err) != 0)
        fail_msg("payload %s: %s", json, err.message);
    return p;
}
