/* Internal view of trifle_config. Never installed. */
#ifndef TRIFLE_CONFIG_INT_H
#define TRIFLE_CONFIG_INT_H

#include <stdint.h>

#include "trifle/config.h"
#include "trifle/time.h"

#define TRIFLE__CONFIG_MAX_OPTS 32

enum { TRIFLE__FULL_BLOCK = 0, TRIFLE__FULL_ERROR = 1 };

typedef struct trifle__buffer_options {
    int enabled, aggregate, async, full_policy;
    int64_t duration_ms, size, max_pending, block_timeout_ms;
    int64_t retry_initial_ms, retry_max_ms, close_timeout_ms, batch_items;
    /* the write-ahead journal: the directory is the text of option buffer.journal (NULL or
     * empty = off); journal_sync is a TRIFLE__JSYNC_* with its interval */
    int journal_sync;
    int64_t journal_interval_ms, journal_segment_bytes;
    trifle_note_fn note_fn; /* trifle_config_set_note_handler: replayed notes, NULL: none */
    void *note_payload;
} trifle__buffer_options;

struct trifle_config {
    char *text[TRIFLE__CONFIG_MAX_OPTS]; /* normalised text per option, NULL = unset */
    trifle_granularity *grans;
    size_t n_grans;
    int week_start; /* trifle_weekday */
    int joined;     /* trifle_id_mode */
    int system_tracking;
    int64_t max_points, connections;
    trifle__buffer_options buffer;
};

/* Cross-option checks done once by trifle_open(): driver set, max_pending >= size,
 * retry_max_ms >= retry_initial_ms. */
int trifle__config_validate(const trifle_config *cfg, trifle_error *err);

/* full/partial/separated (none/null = separated), case-insensitive → trifle_id_mode. */
int trifle__config_parse_mode(const char *text, int *mode);
const char *trifle__config_mode_name(int mode);

/* ASCII case-insensitive compare, independent of the locale. */
int trifle__strcasecmp(const char *a, const char *b);

#endif
