/* Small helpers for any unit test: payloads for the tests that track through a trifle handle, and
 * the decimal-comma locale of the locale-independence tests. Linked from the unit_support
 * library; cmocka checks end (or skip) the test. */
#ifndef TRIFLE_TEST_UNIT_HELPERS_H
#define TRIFLE_TEST_UNIT_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include "trifle/trifle.h"

/* A cmocka case named @p test that runs @p fn with @p arg as its state: one function for a
 * family of cases that differ in one argument, each still its own case. */
#define UNIT_TEST_WITH(test, fn, arg)                                    \
    {                                                                    \
        .name = #test, .test_func = (fn), .initial_state = (void *)(arg) \
    }

/* The payload of the JSON text json (the caller frees it with trifle_payload_free); fails the
 * test, naming the text and the parser's message, when it does not parse. */
trifle_payload *test_payload(const char *json);

/* Set the name/value pairs @p opts (NULL-terminated; NULL: none) in @p cfg; fails the test,
 * naming the option, when one is refused. */
void test_config_set(trifle_config *cfg, const char *const *opts);

/* A new configuration with driver @p driver (a URL) and then @p opts as test_config_set() sets
 * them; the caller frees it. */
trifle_config *test_config(const char *driver, const char *const *opts);

/* Buffer options for tests that decide when writes happen: no flush thread, no size trigger,
 * fast retries and a short close (name/value pairs for test_config_set()). */
extern const char *const test_buffer_manual[];

/* Switch LC_NUMERIC to German (de_DE.UTF-8, whose decimal point is a comma), so a test can show
 * that number text does not follow the locale; skips the test when the machine has no such
 * locale. The caller restores "C" at its end. */
void test_decimal_comma_locale(void);

/* The contents of the file @p path, NUL-terminated (the caller frees them), and their length in
 * *@p len when @p len is not NULL; NULL when the file cannot be opened. */
char *test_read_file(const char *path, size_t *len);

/* The zone @p name, opened once and kept until test_zones_free() (so its transition cache is
 * exercised across tests); fails the test, naming the zone, when it cannot be opened. */
const trifle_zone *test_zone(const char *name);

/* Free the zones test_zone() opened; a cmocka group teardown. */
int test_zones_free(void **state);

/* The next number of the xorshift64 generator whose state (non-zero) is *@p state: a cheap,
 * repeatable stream for randomised tests. */
uint64_t test_xorshift(uint64_t *state);

/* A fresh directory /tmp/trifle_<name>_XXXXXX into @p out (@p size bytes); 0, or -1 when it
 * cannot be made. */
int test_mkdtemp(char *out, size_t size, const char *name);

/* Remove @p path and everything below it (directories are made writable first); quiet when it
 * is already gone. */
void test_rm_rf(const char *path);

#endif
