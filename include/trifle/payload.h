/**
 * @file trifle/payload.h
 * @brief Validated values objects (docs/storage-format.md, "Values"): a nested JSON object of
 * finite numbers, stored packed as sorted dotted paths. Build one once and pass it to any number of
 * track/assert calls.
 */
#ifndef TRIFLE_PAYLOAD_H
#define TRIFLE_PAYLOAD_H

#include "driver.h"
#include "error.h"

TRIFLE_BEGIN_DECLS

/** A validated, packed values object. Immutable once built: thread-safe to share. */
typedef struct trifle_payload trifle_payload;

/**
 * @brief Parse and validate JSON text and pack it (docs/storage-format.md, "Values").
 * @param json The text; it need not be NUL-terminated.
 * @param len Length of @p json in bytes.
 * @param out Receives the payload.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_EINVAL with a message naming the rule broken and err->path set to the dotted
 *         path at fault (`value at "meta.bad" is not a number`; `invalid JSON: ...` for unparsable
 *         text); TRIFLE_ENOMEM. On success the caller owns *out (trifle_payload_free()).
 */
TRIFLE_API int trifle_payload_parse(trifle_payload **out, const char *json, size_t len,
                                    trifle_error *err);

/**
 * @brief Build a payload from packed leaves (`{"meta.duration", 2.5}`), validated as JSON input
 * would be: each path split on `.` must have no empty or `$`-prefixed segment, values finite, no
 * duplicate path and no path that is a prefix of another. The leaves are copied.
 * @param out Receives the payload; the caller owns it (trifle_payload_free()).
 * @param leaves @p n packed leaves, any order.
 * @param n Number of leaves.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_EINVAL naming the path at fault (err->path set too); TRIFLE_ENOMEM.
 */
TRIFLE_API int trifle_payload_from_leaves(trifle_payload **out, const trifle_leaf *leaves, size_t n,
                                          trifle_error *err);

/**
 * @brief Free a payload; NULL is fine.
 * @param p The payload.
 */
TRIFLE_API void trifle_payload_free(trifle_payload *p);

/**
 * @brief Number of packed leaves (0 for `{}` and `{"a":{}}`).
 * @param p The payload.
 * @return The number of leaves.
 */
TRIFLE_API size_t trifle_payload_count(const trifle_payload *p);

/**
 * @brief The packed leaves, sorted by path in byte order. Borrowed from @p p.
 * @param p The payload.
 * @return trifle_payload_count() leaves, borrowed from @p p.
 */
TRIFLE_API const trifle_leaf *trifle_payload_leaves(const trifle_payload *p);

/**
 * @brief Value at a packed path.
 * @param p The payload.
 * @param path A packed path (`meta.duration`).
 * @param out Receives the value.
 * @return 0 and *out, or TRIFLE_ENOTFOUND.
 */
TRIFLE_API int trifle_payload_get(const trifle_payload *p, const char *path, double *out);

/** Flags for JSON output. */
enum trifle_json_flags {
    TRIFLE_JSON_COMPACT = 0, /**< one line, no spaces */
    TRIFLE_JSON_PRETTY = 1   /**< two-space indentation */
};

/**
 * @brief The payload unpacked (nested again) as JSON text with canonical numbers
 * (docs/storage-format.md).
 * @param out Caller-owned NUL-terminated text (trifle_mem_free()).
 * @param p The payload.
 * @param flags TRIFLE_JSON_COMPACT or TRIFLE_JSON_PRETTY.
 * @param err Receives the error on failure; may be NULL.
 * @return 0 or TRIFLE_ENOMEM.
 */
TRIFLE_API int trifle_payload_to_json(const trifle_payload *p, char **out, int flags,
                                      trifle_error *err);

/**
 * @brief Canonical number text (docs/storage-format.md, "Number text"): shortest round trip,
 * ECMAScript Number::toString.
 * @param buf At least 32 bytes. Non-finite values give "null".
 * @param v The value.
 * @return The length written. Locale-independent; thread-safe.
 */
TRIFLE_API size_t trifle_format_double(char *buf, double v);

TRIFLE_END_DECLS

#endif
