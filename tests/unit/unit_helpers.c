/* See unit_helpers.h. */
#include "unit_helpers.h"

#include <locale.h>
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

void test_decimal_comma_locale(void)
{
    if (setlocale(LC_NUMERIC, "de_DE.UTF-8") == NULL &&
        setlocale(LC_NUMERIC, "de_DE.utf8") == NULL) {
        print_message("SKIP locale check: no de_DE.UTF-8 locale (apt-get install locales)\n");
        skip();
    }
}
