/* JSON on top of cJSON (the given, well-kept parser; see docs/architecture.md for why we wrap it):
 * duplicate members collapse to the last one (SPEC §4.1), output numbers use the canonical text of
 * SPEC §4.5 (cJSON's printer does not), and non-finite numbers are written as null. Never
 * installed. */
#ifndef TRIFLE_JSON_INT_H
#define TRIFLE_JSON_INT_H

#include <cjson/cJSON.h>

#include "buf_int.h"
#include "trifle/driver.h"
#include "trifle/error.h"
#include "util/tu_json.h"
#include "util/tu_utf8.h"

#define TRIFLE__JSON_MAX_DEPTH \
    TU_JSON_MAX_DEPTH /* nested objects/arrays trifle__json_parse takes */

/* Parse text[0..len) (need not be NUL-terminated; trailing whitespace allowed, nothing else).
 * Duplicate object members are removed recursively, keeping the last occurrence in the position of
 * the last one. Number literals that overflow become +-Inf (callers report "not finite").
 * The text must be strict RFC 8259 JSON in UTF-8: no leading zeros, no `1.`, no BOM, no control
 * characters, no unpaired surrogate escapes, at most TRIFLE__JSON_MAX_DEPTH nested containers, and
 * no `\u0000` (C strings cannot carry it; cJSON would silently cut the string there). Number
 * literals of any length are read exactly, whatever cJSON build is linked. Locale-independent.
 * Errors: TRIFLE_EINVAL `invalid JSON: <reason> at byte <offset>`, TRIFLE_ENOMEM. */
int trifle__json_parse(cJSON **out, const char *text, size_t len, trifle_error *err);

/* Append v as JSON. pretty = 0: compact; pretty = 1: two-space indentation, one member per line,
 * ": " after names. Numbers per SPEC §4.5; NaN/Inf as null. */
void trifle__json_write(trifle__buf *b, const cJSON *v, int pretty);

/* Serialise to a caller-owned string (trifle__free) or NULL on allocation failure. */
char *trifle__json_print(const cJSON *v, int pretty);

/* SPEC §4.3 unpack: expand flat packed leaves into a nested object. Keys are processed in byte
 * order; when a path is a leaf and also the prefix of a longer path, the object wins and the leaf
 * is dropped; paths with an empty segment are ignored. leaves need not be sorted. NULL on OOM. */
cJSON *trifle__json_unpack(const trifle_leaf *leaves, size_t n);

/* Compare two strings in byte (memcmp) order, for qsort over trifle_leaf by path. */
int trifle__leaf_cmp(const void *a, const void *b);

#endif
