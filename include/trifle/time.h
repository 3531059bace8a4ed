/**
 * @file trifle/time.h
 * @brief Granularities, time zones and the Nocturnal bucket arithmetic (docs/storage-format.md,
 * "Buckets"), plus RFC 3339
 * text. Zones come from GLib GTimeZone (the system tz database); the process `TZ` is never read.
 */
#ifndef TRIFLE_TIME_H
#define TRIFLE_TIME_H

#include "error.h"

TRIFLE_BEGIN_DECLS

/** Granularity units, in grammar order. */
typedef enum trifle_unit {
    TRIFLE_UNIT_SECOND = 0,  /**< `s` */
    TRIFLE_UNIT_MINUTE = 1,  /**< `m` */
    TRIFLE_UNIT_HOUR = 2,    /**< `h` */
    TRIFLE_UNIT_DAY = 3,     /**< `d` */
    TRIFLE_UNIT_WEEK = 4,    /**< `w` */
    TRIFLE_UNIT_MONTH = 5,   /**< `mo` */
    TRIFLE_UNIT_QUARTER = 6, /**< `q` */
    TRIFLE_UNIT_YEAR = 7     /**< `y` */
} trifle_unit;

/** A parsed granularity such as `15m`. Plain data: copy it freely. */
typedef struct trifle_granularity {
    int64_t offset; /**< 1 ... 1 000 000 */
    int unit;       /**< a trifle_unit */
    char label[32]; /**< the text exactly as given (`01h` and `1h` are distinct labels) */
} trifle_granularity;

/**
 * @brief Parse `<digits><unit>` (docs/storage-format.md, "Buckets"), matched against the whole
 * string.
 * @param out Filled on success.
 * @param text The granularity text.
 * @param err Receives the error on failure; may be NULL.
 * @return 0, or TRIFLE_EINVAL `invalid granularity: <text>` (also for labels of 32 bytes or more
 *         and `y` offsets so large that 9999-12-31 would floor below year 1). Thread-safe.
 */
TRIFLE_API int trifle_granularity_parse(trifle_granularity *out, const char *text,
                                        trifle_error *err);

/** An IANA time zone. Immutable once opened; thread-safe. */
typedef struct trifle_zone trifle_zone;

/**
 * @brief Open an IANA zone by name (`Europe/Bratislava`, `UTC`).
 * @param out Receives the zone.
 * @param name The IANA name.
 * @param err Receives the error on failure; may be NULL.
 * @return 0, or TRIFLE_ECONFIG `unknown time zone: <name>` for unknown names, `""` and fixed
 *         offsets such as `+01:00`. On success the caller owns *out (trifle_zone_free()).
 */
TRIFLE_API int trifle_zone_open(trifle_zone **out, const char *name, trifle_error *err);

/**
 * @brief Free a zone; NULL is fine.
 * @param zone The zone.
 */
TRIFLE_API void trifle_zone_free(trifle_zone *zone);

/**
 * @brief The zone's name as opened. Borrowed; lives as long as the zone.
 * @param zone The zone.
 * @return The name.
 */
TRIFLE_API const char *trifle_zone_name(const trifle_zone *zone);

/**
 * @brief UTC offset in seconds in force at instant @p at (Unix seconds). NULL zone = UTC.
 * @param zone The zone.
 * @param at The instant.
 * @return The offset in seconds east of UTC.
 */
TRIFLE_API int32_t trifle_zone_offset(const trifle_zone *zone, int64_t at);

/** Weekdays for week_start, 0 = Sunday (as the `week_start` option counts them). */
enum trifle_weekday {
    TRIFLE_SUNDAY = 0,
    TRIFLE_MONDAY = 1,
    TRIFLE_TUESDAY = 2,
    TRIFLE_WEDNESDAY = 3,
    TRIFLE_THURSDAY = 4,
    TRIFLE_FRIDAY = 5,
    TRIFLE_SATURDAY = 6
};

/**
 * @brief Parse a week start: `sunday`...`saturday`, `sun`...`sat` (case-insensitive) or `0`-`6`.
 * @param out Receives a trifle_weekday.
 * @param text The text to parse.
 * @param err Receives the error on failure; may be NULL.
 * @return 0 or TRIFLE_ECONFIG `invalid week start: <text>`.
 */
TRIFLE_API int trifle_weekday_parse(int *out, const char *text, trifle_error *err);

/**
 * @brief floor(at, G): the start of the bucket holding @p at, DST-correct (docs/storage-format.md,
 * "Buckets").
 * @param zone NULL means UTC.
 * @param week_start A trifle_weekday (used by `w` only).
 * @param out Receives the bucket start, Unix seconds.
 * @param g The granularity.
 * @param at The instant, Unix seconds.
 * @param err Receives the error on failure; may be NULL.
 * @return 0, or TRIFLE_EINVAL `time out of range` outside 1900-01-01 ... 9999-12-31 or for a
 *         year floor below year 1.
 */
TRIFLE_API int trifle_floor(int64_t *out, const trifle_zone *zone, int week_start,
                            const trifle_granularity *g, int64_t at, trifle_error *err);

/**
 * @brief add(at, n, unit): elapsed time for s/m/h, calendar arithmetic otherwise.
 * @param out Receives the result, Unix seconds.
 * @param zone NULL means UTC.
 * @param at The instant, Unix seconds.
 * @param n How many units to add; may be negative.
 * @param unit A trifle_unit.
 * @param err Receives the error on failure; may be NULL.
 * @return 0, or TRIFLE_EINVAL `time out of range`.
 */
TRIFLE_API int trifle_add(int64_t *out, const trifle_zone *zone, int64_t at, int64_t n, int unit,
                          trifle_error *err);

/**
 * @brief Every bucket start b with floor(from) <= b <= floor(to), ascending
 * (docs/storage-format.md, "Buckets").
 * @param out Receives a caller-owned array (trifle_mem_free()), NULL when *n_out is 0.
 * @param max_points Upper bound on the length; 0 means no bound.
 * @param n_out Receives the number of bucket starts.
 * @param zone NULL means UTC.
 * @param week_start A trifle_weekday (used by `w` only).
 * @param g The granularity.
 * @param from,to The range, Unix seconds, inclusive.
 * @param err Receives the error on failure; may be NULL.
 * @return 0; TRIFLE_EINVAL `timeline too long: more than <max_points> points` or
 *         `time out of range`; TRIFLE_ENOMEM.
 */
TRIFLE_API int trifle_timeline(int64_t **out, size_t *n_out, const trifle_zone *zone,
                               int week_start, const trifle_granularity *g, int64_t from,
                               int64_t to, size_t max_points, trifle_error *err);

/**
 * @brief Write @p at as RFC 3339 in @p zone (`2025-01-15T10:00:00+01:00`, `Z` for offset 0).
 * @param buf At least 32 bytes.
 * @param zone NULL means UTC.
 * @param size Size of @p buf in bytes.
 * @param at The instant, Unix seconds.
 * @return The length written (without the NUL).
 */
TRIFLE_API size_t trifle_time_format(char *buf, size_t size, int64_t at, const trifle_zone *zone);

/** Flags for trifle_time_parse(). */
enum trifle_time_flags {
    TRIFLE_TIME_OFFSET_REQUIRED = 0, /**< HTTP rule (docs/http-api.md): an offset is mandatory */
    TRIFLE_TIME_CLI = 1              /**< CLI rule (docs/cli.md): also `now`, `@<unix>`, local
                                          `YYYY-MM-DDTHH:MM[:SS]` and `YYYY-MM-DD` in @p zone */
};

/**
 * @brief Parse a time argument.
 *
 * Always accepted: `YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|±HH:MM|±HHMM)` after trimming ASCII
 * whitespace; fractions are floored. With TRIFLE_TIME_CLI also `now`, `@<integer>`, and local wall
 * times without an offset resolved in @p zone (ambiguous → earlier, nonexistent → forward by the
 * gap).
 * @param out Receives the instant, Unix seconds.
 * @param text The text to parse.
 * @param zone Zone of local wall times (TRIFLE_TIME_CLI); NULL means UTC.
 * @param flags A trifle_time_flags value.
 * @param err Receives the error on failure; may be NULL.
 * @return 0, or TRIFLE_EINVAL `invalid time: <text>` / `time out of range`.
 */
TRIFLE_API int trifle_time_parse(int64_t *out, const char *text, const trifle_zone *zone, int flags,
                                 trifle_error *err);

TRIFLE_END_DECLS

#endif
