/* Simple Stats internals shared by simple/simple.c (registry, FIFO, lifecycle, persistence),
 * simple/simple_load.c (the persistence file parser), simple/simple_render.c (JSON and
 * Prometheus) and simple/sysinfo.c (system figures, storage cache). Never installed. */
#ifndef TRIFLE_SIMPLE_INT_H
#define TRIFLE_SIMPLE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "buf_int.h"
#include "trifle/simple.h"

/* ---- names ---------------------------------------------------------------------------------- */

/* 0 when s is a valid category/name/root/segment: non-NULL, 1..TRIFLE_SIMPLE_NAME_MAX bytes,
 * well-formed UTF-8. *len_out (may be NULL) receives the length. */
int trifle__simple_name_check(const char *s, size_t *len_out);

/* ---- the persistence file (simple_load.c) --------------------------------------------------- */

typedef struct trifle__simple_item {
    char *category; /* owned; NUL-terminated, valid name */
    char *name;     /* owned */
    int64_t value;
    int kind; /* TRIFLE_SIMPLE_COUNTER or TRIFLE_SIMPLE_GAUGE */
} trifle__simple_item;

typedef struct trifle__simple_file {
    trifle__simple_item *items; /* sorted by (category, name) in byte order, no duplicates */
    size_t n;
    int format; /* 2 for the version-2 document, 1 for the INFINI map */
} trifle__simple_file;

/* Parse a persistence file (SPEC §10.3): `{"version":2,"stats":{...},"gauges":{...}}` or the INFINI
 * map `{"<category>":{"<name>":<int>}}` (any document without a numeric `version` and an object
 * `stats`). Strict RFC 8259 JSON in UTF-8; values are integer literals within int64; a duplicate
 * member keeps the last one; unknown top-level members of a version-2 document are ignored; a
 * gauges name without a stats entry is ignored. All or nothing.
 * Errors: TRIFLE_EINVAL `invalid stats file: <reason> at byte <offset>`, TRIFLE_ENOMEM; *out is
 * then empty. */
int trifle__simple_file_parse(trifle__simple_file *out, const char *text, size_t len,
                              trifle_error *err);
void trifle__simple_file_free(trifle__simple_file *f);

/* Append the version-2 document for items (sorted, unique) to b, compact. */
void trifle__simple_file_write(trifle__buf *b, const trifle__simple_item *items, size_t n);

/* ---- rendering (simple_render.c) ------------------------------------------------------------ */

typedef struct trifle__snode trifle__snode; /* a member of the /stats tree */

/* A flat, sorted copy of the registry taken under its lock, plus the providers' output. */
typedef struct trifle__simple_view {
    trifle__simple_item *items; /* borrowed strings (valid during the render) */
    size_t n;
} trifle__simple_view;

/* Writer plumbing used by simple.c to run providers into a tree. */
trifle__snode *trifle__snode_new_object(const char *name);
void trifle__snode_free(trifle__snode *n);
/* Attach child (ownership passes) to parent, replacing a member of the same name. */
int trifle__snode_attach(trifle__snode *parent, trifle__snode *child);
/* Run provider into a new object node named root; 0 and *out, or the provider's (or writer's)
 * error with err filled. */
int trifle__simple_run_provider(trifle__snode **out, const char *root, trifle_simple_provider fn,
                                void *payload, trifle_error *err);
/* Build the `stats` member from the registry view. NULL on OOM. */
trifle__snode *trifle__simple_stats_tree(const trifle__simple_view *view);

/* Render a whole tree (root = the unnamed top object). */
int trifle__simple_json(trifle__buf *b, const trifle__snode *root);
/* label_text: the configured labels already rendered as `a="x",b="y"` (may be ""). */
int trifle__simple_prometheus(trifle__buf *b, const trifle__snode *root, const char *label_text);

/* Append @p s escaped for the Prometheus text format: backslash and newline, and `"` when
 * @p quotes (a label value; HELP text keeps its quotes). */
void trifle__simple_prom_escape(trifle__buf *b, const char *s, int quotes);

/* Prometheus metric name for a path (no `_total`, no collision handling): exposed for tests.
 * Returns a caller-owned string (trifle__free) or NULL on OOM; *seconds is set when the value is
 * to be divided by 1000 (`_in_ms` → `_seconds`). */
char *trifle__simple_prom_base_name(const char *const *segments, size_t n, int *seconds);

/* Updates waiting in the FIFO (tests). */
size_t trifle__simple_queued(void);

/* ---- time and system figures (sysinfo.c, simple.c) ------------------------------------------ */

/* Monotonic clock in ms; tests may replace it (NULL restores the real one). Not thread-safe with
 * respect to concurrent readers: set it before starting threads. */
typedef int64_t (*trifle__simple_clock_fn)(void);
void trifle__simple_set_clock(trifle__simple_clock_fn fn);
int64_t trifle__simple_now_ms(void);
/* Milliseconds since the module was first used (its epoch). */
int64_t trifle__simple_uptime_ms(void);
/* Forget cached storage figures and the CPU window (trifle_simple_reset, tests). */
void trifle__sysinfo_reset(void);

#endif
