/* Fuzz target for the driver URL parser (core/store/url.c): trifle__url_parse, trifle__url_mask and
 * trifle__url_scrub on arbitrary input. Built as a libFuzzer target with TRIFLE_BUILD_FUZZ (clang)
 * and as a replay of corpus/url/ under ctest. Besides memory errors it checks the parser's
 * promises and aborts when one is broken. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_int.h"
#include "fuzz.h"
#include "trifle/driver.h"
#include "url_int.h"

static void check_parsed(const trifle__url *u, const char *text)
{
    size_t i, baselen = strcspn(text, "?");

    /* the base is the input up to the query, byte for byte */
    CHECK(u->base != NULL && strlen(u->base) == baselen && memcmp(u->base, text, baselen) == 0);
    CHECK(u->scheme != NULL && u->scheme[0] != '\0' && strlen(u->scheme) <= 63);
    for (i = 0; u->scheme[i] != '\0'; i++)
        CHECK(!(u->scheme[i] >= 'A' && u->scheme[i] <= 'Z'));
    CHECK(strcmp(u->scheme, "rediss") != 0);
    CHECK(u->driver == NULL || strcmp(u->driver, trifle__url_scheme_driver(u->scheme)) == 0);
    CHECK(u->joined >= -1 && u->joined <= TRIFLE_ID_SEPARATED);
    CHECK(u->system_tracking >= -1 && u->system_tracking <= 1);
    CHECK(u->separator == NULL || trifle__separator_check(u->separator) == 0);
    CHECK(u->n_secrets <= TRIFLE__URL_MAX_SECRETS);
    if (u->n_params > 0) {
        for (i = 0; i < 2 * u->n_params; i++)
            CHECK(u->params[i] != NULL);
        CHECK(u->params[2 * u->n_params] == NULL);
        for (i = 0; i < u->n_params; i++) {
            CHECK(u->params[2 * i][0] != '\0');
            CHECK(strcmp(u->params[2 * i], "joined") != 0);
            CHECK(strcmp(u->params[2 * i], "separator") != 0);
            CHECK(strcmp(u->params[2 * i], "system_tracking") != 0);
        }
    }
}

static void check_mask(const char *text)
{
    char full[16384], part[64];
    size_t n, cut, sizes[] = {0, 1, 2, 7, 13, sizeof(part)};
    size_t k;

    n = trifle__url_mask(full, sizeof(full), text);
    CHECK(n < sizeof(full) && strlen(full) == n);
    for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        CHECK(trifle__url_mask(part, sizes[k], text) == n);
        if (sizes[k] == 0)
            continue;
        cut = n < sizes[k] - 1 ? n : sizes[k] - 1;
        CHECK(strlen(part) == cut && memcmp(part, full, cut) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle__url u;
    char *text, msg[256];
    int rc;

    if (size > 4096)
        return 0;
    if ((text = malloc(size + 1)) == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    rc = trifle__url_parse(&u, text, &err);
    if (rc == 0) {
        check_parsed(&u, text);
        /* a message quoting the URL comes out cut and terminated */
        memcpy(msg, text, strlen(text) < sizeof(msg) - 1 ? strlen(text) + 1 : sizeof(msg) - 1);
        msg[sizeof(msg) - 1] = '\0';
        trifle__url_scrub(&u, msg, sizeof(msg));
        CHECK(strlen(msg) < sizeof(msg));
    } else {
        CHECK(rc == TRIFLE_ECONFIG || rc == TRIFLE_ENOMEM);
        CHECK(err.code == rc && err.message[0] != '\0');
        CHECK(u.base == NULL && u.scheme == NULL && u.params == NULL && u.n_secrets == 0);
    }
    trifle__url_free(&u);
    check_mask(text);
    (void)trifle__id_mode_parse(text);
    free(text);
    return 0;
}
