/**
 * @file trifle/config.h
 * @brief Library configuration (docs/configuration.md, `sources`). Options are set by their YAML
 * names as text, so the
 * CLI, the YAML loader and environment variables share one validator:
 * @code
 * trifle_config *cfg = NULL;
 * trifle_config_new(&cfg, &err);
 * trifle_config_set(cfg, "driver", "sqlite:stats.db", &err);
 * trifle_config_set(cfg, "time_zone", "Europe/Bratislava", &err);
 * trifle_config_set(cfg, "granularities", "1h,1d", &err);
 * @endcode
 */
#ifndef TRIFLE_CONFIG_H
#define TRIFLE_CONFIG_H

#include <stddef.h>

#include "error.h"

TRIFLE_BEGIN_DECLS

/** A configuration. One thread at a time while it is built; trifle_open() copies what it needs. */
typedef struct trifle_config trifle_config;

/**
 * @brief A configuration holding the defaults of docs/configuration.md (no driver yet).
 * @param out Receives the new configuration.
 * @param err Receives the error on failure; may be NULL.
 * @return 0 or TRIFLE_ENOMEM. The caller owns *out (trifle_config_free()).
 */
TRIFLE_API int trifle_config_new(trifle_config **out, trifle_error *err);

/**
 * @brief Free a configuration; NULL is fine.
 * @param cfg The configuration.
 */
TRIFLE_API void trifle_config_free(trifle_config *cfg);

/**
 * @brief A deep copy of @p cfg.
 * @param out Receives the copy; the caller owns it (trifle_config_free()).
 * @param cfg The configuration to copy.
 * @param err Receives the error on failure; may be NULL.
 * @return 0 or TRIFLE_ENOMEM.
 */
TRIFLE_API int trifle_config_dup(trifle_config **out, const trifle_config *cfg, trifle_error *err);

/**
 * @brief Set one option from text, validating it now.
 *
 * Names: `driver`, `time_zone`, `week_start`, `granularities` (comma-separated, items trimmed),
 * `joined`, `separator`, `system_tracking`, `max_points`, `connections` (1..64 driver
 * connections per handle, opened on demand; more than 1 is refused with `sqlite::memory:`;
 * docs/configuration.md), `driver_path`
 * (colon-separated plugin directories searched before the defaults), and `buffer.enabled`,
 * `buffer.duration_ms`, `buffer.size`, `buffer.aggregate`, `buffer.async`, `buffer.max_pending`,
 * `buffer.full_policy`, `buffer.block_timeout_ms`, `buffer.retry_initial_ms`,
 * `buffer.retry_max_ms`, `buffer.close_timeout_ms`, `buffer.batch_items`, and the write-ahead
 * journal of the buffer (docs/durability.md): `buffer.journal` (a directory; unset or empty = no
 * journal), `buffer.journal_sync` (`always`, `none` or `interval:<ms>` with 1..60000 ms; default
 * `interval:5`), `buffer.journal_segment_bytes` (rotation size, 4096..2^40, default 64 MiB).
 * Booleans accept true/false/1/0/yes/no/on/off (case-insensitive).
 * @param cfg The configuration to change.
 * @param name The option name, as in YAML (`time_zone`, `buffer.size`).
 * @param value The option value as text.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_ECONFIG with a message naming the value (`unknown time zone: Foo`,
 *         `invalid granularity "5x" in granularities[2]`, `invalid buffer option size: 0`,
 *         `unknown configuration key <name>`); TRIFLE_ENOMEM. On failure @p cfg is unchanged.
 */
TRIFLE_API int trifle_config_set(trifle_config *cfg, const char *name, const char *value,
                                 trifle_error *err);

/**
 * @brief Set the granularity list from an array (exact duplicates removed, order kept).
 * @param cfg The configuration to change.
 * @param list @p n granularity labels.
 * @param n Number of labels; 0 is an error.
 * @param err Receives the error on failure; may be NULL.
 * @return 0, TRIFLE_ECONFIG `invalid granularity "<g>" in granularities[<i>]` or
 *         `granularities must not be empty`.
 */
TRIFLE_API int trifle_config_set_granularities(trifle_config *cfg, const char *const *list,
                                               size_t n, trifle_error *err);

/**
 * @brief Read an option back as text (the normalised form: `separated`, `1h,1d`, `true`).
 * @param cfg The configuration.
 * @param name The option name, as for trifle_config_set().
 * @return A string owned by @p cfg, valid until the option changes; NULL for unknown names or an
 *         unset driver.
 */
TRIFLE_API const char *trifle_config_get(const trifle_config *cfg, const char *name);

/**
 * @brief Number of configured granularities.
 * @param cfg The configuration.
 * @return The number of granularities (at least 1).
 */
TRIFLE_API size_t trifle_config_granularity_count(const trifle_config *cfg);

/**
 * @brief The i-th granularity label, or NULL past the end. Borrowed from @p cfg.
 * @param cfg The configuration.
 * @param i Index, from 0.
 * @return The label, borrowed from @p cfg, or NULL past the end.
 */
TRIFLE_API const char *trifle_config_granularity(const trifle_config *cfg, size_t i);

/**
 * @brief Receives the note of one journaled call during the journal's replay
 * (trifle_config_set_note_handler()).
 * @param payload The pointer given to trifle_config_set_note_handler().
 * @param note The note as trifle_write_noted() was given it; borrowed for the call.
 * @param len Its length, 1..65535 bytes.
 * @return 0, or a trifle_status that stops the replay: trifle_open() then fails with it.
 */
typedef int (*trifle_note_fn)(void *payload, const void *note, size_t len);

/**
 * @brief Have trifle_open() hand the notes of the journaled calls it finds to @p fn.
 *
 * trifle_write_noted() puts a note in the same journal record as its call (one write(2)), so the
 * note is on disk exactly when the call is. When trifle_open() replays the journal
 * (`buffer.journal`), it calls @p fn with the note of every noted call still in the journal,
 * stored already or not, in journal order, before the handle is returned; calls whose records
 * were released (stored and their segment deleted) are not seen again. `trifle serve` keeps the
 * Idempotency-Key of each call this way (docs/http-api.md).
 * @param cfg The configuration; trifle_config_dup() copies the handler.
 * @param fn The handler, called on the thread of trifle_open(); NULL removes it.
 * @param payload Passed to @p fn.
 */
TRIFLE_API void trifle_config_set_note_handler(trifle_config *cfg, trifle_note_fn fn,
                                               void *payload);

/**
 * @brief Parse a boolean text option (true/false/1/0/yes/no/on/off, case-insensitive).
 * @param out Receives 0 or 1.
 * @param text The text to parse.
 * @return 0 and *out = 0 or 1, or TRIFLE_EINVAL.
 */
TRIFLE_API int trifle_parse_bool(int *out, const char *text);

TRIFLE_END_DECLS

#endif
