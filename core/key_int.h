/* Metric keys, checked by the handle (trifle.c) and the buffer (buffer/buffer.c). Never
 * installed. */
#ifndef TRIFLE_KEY_INT_H
#define TRIFLE_KEY_INT_H

#include "trifle/error.h"

/* SPEC §3.1 + ERRATA I3/I4/minor 17: non-empty valid UTF-8, at most 200 bytes, every dotted segment
 * non-empty and not starting with '$' → else EINVAL `invalid metric key`. With for_write, the
 * reserved keys are refused: `reserved key: __system__key__` / `reserved key: __untracked__`. */
int trifle__key_check(const char *key, int for_write, trifle_error *err);

#endif
