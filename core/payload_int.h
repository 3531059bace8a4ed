/* Internal view of trifle_payload. Never installed. */
#ifndef TRIFLE_PAYLOAD_INT_H
#define TRIFLE_PAYLOAD_INT_H

#include <stdint.h>

#include "trifle/payload.h"

struct trifle_payload {
    size_t n;
    uint64_t serial;     /* unique per payload built in this process, never 0 */
    trifle_leaf *leaves; /* sorted by path in byte order, unique; paths point into `strings` */
    char *strings;
};

/* Copy leaves that are already known to be sorted and unique (storage reads), without
 * validating paths. n may be 0. Returns 0 or TRIFLE_ENOMEM. */
int trifle__payload_from_sorted(trifle_payload **out, const trifle_leaf *leaves, size_t n,
                                trifle_error *err);

#endif
