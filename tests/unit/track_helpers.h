/* What the tests that track through a trifle handle share (test_trifle.c, test_buffer.c,
 * test_buffer_threads.c, test_durability.c). Linked from the unit_support library; cmocka checks
 * end the test on failure. */
#ifndef TRIFLE_TEST_TRACK_HELPERS_H
#define TRIFLE_TEST_TRACK_HELPERS_H

#include "trifle/trifle.h"

/* The payload of the JSON text json (the caller frees it with trifle_payload_free); fails the
 * test, naming the text and the parser's message, when it does not parse. */
trifle_payload *test_payload(const char *json);

#endif
