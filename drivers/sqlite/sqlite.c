/*
 * trifle_sqlite.so: the SQLite storage driver (SPEC §7.5; ERRATA I5, I15, minor 2, 9, 19).
 *
 * Layout. The tables are the Go schemas of trifle_stats_go (one per identifier mode) plus a ping
 * table. `data` is a JSON object whose keys are packed paths stored flat, in byte order, with
 * numbers in canonical text (SPEC §4.5): `{"count":3,"meta.duration":6}`. `at` is UTC text
 * `YYYY-MM-DDTHH:MM:SSZ`; lookups also match the legacy `YYYY-MM-DDTHH:MM:SS.000000Z`.
 *
 * Writes. One `BEGIN IMMEDIATE ... COMMIT` per inc/set/write_marked call, so the
 * read-modify-write cannot interleave with another writer. write_marked (ABI 1.1) runs the set
 * part, then the inc part (which reads what the set part wrote), then upserts the journal mark
 * into `<table>_marks`, all in that one transaction. Items are processed in chunks of at most 500
 * identifiers: one SELECT reads every stored row of the chunk, the rows are flattened into (item,
 * path, value) entries, sorted, merged with the item's leaves, and each item is written back as
 * one canonical row with an upsert (a legacy-`at` row that was merged is deleted). Everything is
 * O(n log n) in the number of stored leaves of a chunk, and every statement is prepared once per
 * connection.
 *
 * Reads. The same chunked SELECT; each matching row is flattened and its numeric leaves are
 * emitted. emit() adds values for a repeated path, which is exactly the merge rule for flat keys,
 * the nested copies written by upstream's `json_set('$.a.b')` and the two `at` variants.
 *
 * JSON. Stored text is read by a strict RFC 8259 parser that flattens nested objects as it goes
 * and keeps non-numeric values as their raw text, so that writes carry them over byte for byte.
 * Numbers are parsed and printed by the host (locale-independent, shortest round trip). NULL,
 * invalid JSON and non-objects count as `{}`. We do not use SQLite's JSON functions for writing:
 * they print REAL values with 15 significant digits.
 *
 * Threads: a connection is used by one thread at a time (SQLITE_OPEN_NOMUTEX); it holds no
 * thread-local state, so it may move between threads between calls.
 */
#include <sqlite3.h>

#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <trifle/driver.h>

#include "drv_support.h"

#define SQ_NAME "sqlite"
#define SQ_CHUNK 500           /* identifiers per SELECT (SPEC §7.5) */
#define SQ_NAME_MAX 58         /* bytes of a table name (SPEC §7.5) */
#define SQ_BEGIN_RETRIES 3     /* extra BEGIN IMMEDIATE attempts on SQLITE_BUSY (ERRATA minor 19) */
#define SQ_BUSY_TIMEOUT "5000" /* ms, SPEC §7.4 */
#define SQ_MAX_DEPTH 512       /* JSON nesting accepted in stored rows; deeper counts as invalid */
#define SQ_AT_LEN 20           /* "2025-01-15T08:00:00Z" */
#define SQ_AT_LEGACY_LEN 27    /* "2025-01-15T08:00:00.000000Z" */
#define SQ_SLOTS 1024          /* hash slots for one chunk: a power of two above 2 * SQ_CHUNK */

/* SELECT statements are prepared for these chunk sizes; a chunk uses the smallest that fits and
 * binds NULL to the spare identifiers (NULL never matches). */
static const unsigned sq_classes[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, SQ_CHUNK};
#define SQ_N_CLASSES (sizeof(sq_classes) / sizeof(sq_classes[0]))

/* One flattened leaf of a stored row. */
typedef struct sq_ent {
    const char *path; /* set once the chunk is read (the arena may move while reading) */
    size_t path_off;  /* NUL-terminated path in the arena */
    size_t path_len;
    size_t raw_off; /* non-numeric: the value's JSON text in the arena */
    size_t raw_len;
    size_t seq; /* read order, so the sort is stable */
    double num;
    unsigned item; /* chunk-relative index */
    int numeric;
} sq_ent;

struct trifle_conn {
    const trifle_host_api *host;
    sqlite3 *db;
    int mode; /* enum trifle_id_mode */
    int oom;  /* an allocation failed during the current call */
    char table[SQ_NAME_MAX + 1];
    char ping_table[SQ_NAME_MAX + 6];  /* the default "<table>_ping" may be 5 bytes longer */
    char marks_table[SQ_NAME_MAX + 7]; /* "<table>_marks": journal marks (ABI 1.1) */
    int marks_ready; /* marks_table is known to exist (created or seen by this connection) */
    sqlite3_stmt *select[SQ_N_CLASSES];
    sqlite3_stmt *upsert[SQ_N_CLASSES]; /* upserts of sq_classes[i] rows */
    sqlite3_stmt *delete_legacy;
    sqlite3_stmt *begin;
    sqlite3_stmt *begin_read;
    sqlite3_stmt *commit;
    sqlite3_stmt *rollback;
    sqlite3_stmt *ping;
    sqlite3_stmt *scan;
    sqlite3_stmt *mark_upsert;
    sqlite3_stmt *mark_select;
    drv_buf sql;   /* statement text being built */
    drv_buf arena; /* paths and raw values of the rows being merged */
    drv_buf json;  /* the row being written */
    drv_buf path;  /* path of the JSON member being parsed */
    sq_ent *ents;
    size_t n_ents;
    size_t cap_ents;
    sq_ent *sorted; /* c->ents grouped by item (cap_ents entries) */
    size_t cap_sorted;
    size_t first[SQ_CHUNK + 1];       /* item j's entries are sorted[first[j] .. first[j + 1]) */
    uint16_t slots[SQ_SLOTS];         /* chunk index + 1, 0 = empty */
    unsigned char legacy[SQ_CHUNK];   /* a legacy-`at` row of this chunk item was merged */
    char at[SQ_CHUNK][SQ_AT_LEN + 1]; /* canonical `at` text of each chunk item */
    char at_legacy[SQ_CHUNK][SQ_AT_LEGACY_LEN + 1];
    size_t row_off[SQ_CHUNK]; /* each chunk item's new row in c->json */
    size_t row_len[SQ_CHUNK];
};

/* ---------------------------------------------------------------------------------------------
 * Scratch space of a chunk (buffers are drv_buf, drv_support.h)
 */

/* Room for one more entry in c->ents (doubling). */
static int sq_ents_reserve(trifle_conn *c)
{
    void *p = c->ents;
    size_t want = c->cap_ents != 0 ? c->cap_ents * 2 : 256;

    if (c->n_ents < c->cap_ents)
        return 0;
    if (c->oom || drv_array_reserve(c->host, &p, &c->cap_ents, want, sizeof(sq_ent)) != 0) {
        c->oom = 1;
        return -1;
    }
    c->ents = p;
    return 0;
}

/* Forget the rows of the previous chunk or call. */
static void sq_scratch_reset(trifle_conn *c)
{
    c->n_ents = 0;
    c->arena.len = 0;
    c->path.len = 0;
}

/* ---------------------------------------------------------------------------------------------
 * Errors (STYLE §3): busy/locked → EBUSY, cannot open → ECONN, missing table → ECONFIG
 * (ERRATA I15), anything else → EDRIVER with the extended result code as `native`.
 */

static int sq_fail(trifle_conn *c, int rc, const char *table, trifle_error *err)
{
    const char *msg = sqlite3_errmsg(c->db);
    int code;

    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        code = TRIFLE_EBUSY;
        break;
    case SQLITE_CANTOPEN:
        code = TRIFLE_ECONN;
        break;
    case SQLITE_NOMEM:
        code = TRIFLE_ENOMEM;
        break;
    case SQLITE_ERROR:
        if (strncmp(msg, "no such table", 13) == 0) {
            /* "no such table: main.x": name the table SQLite names, else the one we meant */
            const char *name = strstr(msg, ": ");
            if (name != NULL) {
                name += 2;
                if (strncmp(name, "main.", 5) == 0)
                    name += 5;
            } else {
                name = table != NULL ? table : c->table;
            }
            c->host->error_set(err, TRIFLE_ECONFIG, rc,
                               "table %s does not exist (run \"trifle setup\")", name);
            return TRIFLE_ECONFIG;
        }
        code = TRIFLE_EDRIVER;
        break;
    default:
        code = TRIFLE_EDRIVER;
        break;
    }
    c->host->error_set(err, code, rc, "%s", msg);
    return code;
}

static int sq_oom(trifle_conn *c, trifle_error *err)
{
    c->host->error_set(err, TRIFLE_ENOMEM, 0, "out of memory");
    return TRIFLE_ENOMEM;
}

/* ---------------------------------------------------------------------------------------------
 * Time: proleptic Gregorian UTC, without the C library (no TZ, no locale).
 */

/* `at` (Unix seconds) as `YYYY-MM-DDTHH:MM:SSZ`, or with `.000000Z` when legacy. Returns 0, or -1
 * outside years 0000-9999. */
static int sq_at_format(char *out, int64_t at, int legacy)
{
    if (tu_time_format(out, at) != 0)
        return -1;
    if (legacy)
        memcpy(out + 19, ".000000Z", 9);
    return 0;
}

/* A bucket row's `at`: exactly the canonical or the legacy form. */
static int sq_at_parse_bucket(const char *s, size_t n, int64_t *at, int *legacy)
{
    if (s == NULL)
        return 0;
    if (n == SQ_AT_LEN && s[19] == 'Z')
        *legacy = 0;
    else if (n == SQ_AT_LEGACY_LEN && memcmp(s + 19, ".000000Z", 8) == 0)
        *legacy = 1;
    else
        return 0;
    return s[10] == 'T' && tu_time_parse19(s, at) == 0;
}

/* A ping's `at`: RFC 3339 (`T`, `t` or space; any fraction, floored; `Z` or an offset), or
 * Unix seconds as text (`1736935200`, `1736935200.5`, floored). */
static int sq_time_parse(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;

    if (n > 0 && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))) {
        /* seconds as text (a TEXT column turns stored numbers into text): floored */
        int neg = s[0] == '-', frac = 0;
        uint64_t v = 0;
        size_t d;
        for (i = (size_t)neg; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            if (v > (UINT64_C(1) << 62) / 10)
                return 0;
            v = v * 10 + (unsigned)(s[i] - '0');
        }
        d = i;
        if (i < n && s[i] == '.' && i > (size_t)neg) {
            for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
                frac |= s[i] != '0';
            if (i == d + 1)
                return 0;
        }
        if (i == n && d > (size_t)neg) {
            *out = neg ? -(int64_t)v - (frac ? 1 : 0) : (int64_t)v;
            return 1;
        }
    }
    return tu_time_parse_rfc3339(s, n, out) == 0;
}

/* ---------------------------------------------------------------------------------------------
 * Stored JSON → flat entries. drv_json_walk() reads the text strictly (RFC 8259) and flattens
 * nested objects; the callbacks here record its leaves.
 */

/* The row being flattened. */
typedef struct sq_row {
    trifle_conn *c;
    unsigned item;
    int keep_raw; /* writes carry non-numeric values over; reads only need numbers */
} sq_row;

/* Record the leaf at the current path (c->path). */
static void sq_ent_add(sq_row *row, int numeric, double v, const char *raw, size_t raw_len)
{
    trifle_conn *c = row->c;
    sq_ent *e;

    if (sq_ents_reserve(c) != 0)
        return;
    e = &c->ents[c->n_ents];
    e->path = NULL;
    e->path_off = c->arena.len;
    e->path_len = c->path.len;
    drv_buf_put(&c->arena, c->path.p, c->path.len);
    drv_buf_putc(&c->arena, '\0');
    e->numeric = numeric;
    e->num = numeric ? v : 0;
    e->raw_off = c->arena.len;
    e->raw_len = numeric ? 0 : raw_len;
    if (!numeric)
        drv_buf_put(&c->arena, raw, raw_len);
    e->seq = c->n_ents;
    e->item = row->item;
    c->n_ents++;
}

/* drv_json_value_fn: a member that is not an object, or an object nested deeper than
 * SQ_MAX_DEPTH (which drv_json_skip() refuses, so the row counts as invalid). */
static int sq_leaf(drv_json *js, int depth, void *ctx)
{
    sq_row *row = ctx;
    const char *start = js->p;
    double v = 0;
    int numeric = 0;

    if (!drv_json_value(js, depth, &v, &numeric))
        return 0;
    if (numeric || row->keep_raw)
        sq_ent_add(row, numeric, v, start, (size_t)(js->p - start));
    return 1;
}

/* Append the leaves of one stored `data` text to c->ents, tagged with item. NULL, invalid JSON and
 * anything but an object add nothing (they count as {}). Allocation failure sets c->oom. */
static void sq_flatten(trifle_conn *c, unsigned item, const unsigned char *text, size_t len,
                       int keep_raw)
{
    size_t n0 = c->n_ents, a0 = c->arena.len;
    sq_row row = {c, item, keep_raw};
    drv_json js = {.host = c->host,
                   .path = &c->path,
                   .max_depth = SQ_MAX_DEPTH,
                   .value = sq_leaf,
                   .ctx = &row};

    if (text == NULL || drv_json_walk(&js, (const char *)text, len))
        return;
    c->n_ents = n0;
    c->arena.len = a0;
}

static int sq_ent_cmp(const void *pa, const void *pb)
{
    const sq_ent *a = pa, *b = pb;
    int r = drv_pathcmp(a->path, a->path_len, b->path, b->path_len);

    if (r != 0)
        return r;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* ---------------------------------------------------------------------------------------------
 * Connection
 */

static void sq_close(trifle_conn *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < SQ_N_CLASSES; i++) {
        sqlite3_finalize(c->select[i]);
        sqlite3_finalize(c->upsert[i]);
    }
    {
        sqlite3_stmt *const fixed[] = {c->delete_legacy, c->begin,       c->begin_read,
                                       c->commit,        c->rollback,    c->ping,
                                       c->scan,          c->mark_upsert, c->mark_select};

        for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
            sqlite3_finalize(fixed[i]);
    }
    (void)sqlite3_close_v2(c->db);
    drv_buf_free(&c->sql);
    drv_buf_free(&c->arena);
    drv_buf_free(&c->json);
    drv_buf_free(&c->path);
    c->host->free(c->ents);
    c->host->free(c->sorted);
    c->host->free(c);
}

static int sq_exec(trifle_conn *c, const char *sql, const char *table, trifle_error *err)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);

    return rc == SQLITE_OK ? 0 : sq_fail(c, sqlite3_extended_errcode(c->db), table, err);
}

static int sq_open(trifle_conn **out, const trifle_host_api *host, const char *url,
                   const trifle_open_params *params, const char *const *opts, trifle_error *err)
{
    static const char *const prefixes[] = {"sqlite:", NULL};
    const char *path, *table = "trifle_stats", *ping_table = NULL, *bad;
    char *literal = NULL;
    trifle_conn *c = NULL;
    int mode, rc;
    size_t i;

    if (out == NULL || host == NULL)
        return TRIFLE_EINVAL;
    *out = NULL;
    if ((rc = drv_open_url(host, params, url, prefixes, "sqlite:PATH", &mode, err)) != 0)
        return rc;
    path = url + 7;
    if (strncmp(path, "//", 2) == 0) {
        if (path[2] != '/') {
            host->error_set(err, TRIFLE_ECONFIG, 0,
                            "invalid driver URL: use sqlite:PATH or sqlite:///ABSOLUTE/PATH");
            return TRIFLE_ECONFIG;
        }
        path += 2;
    }
    if (*path == '\0') {
        host->error_set(err, TRIFLE_ECONFIG, 0, "invalid driver URL: missing database path");
        return TRIFLE_ECONFIG;
    }
    for (i = 0; opts != NULL && opts[i] != NULL; i += 2) {
        const char *name = opts[i], *value = opts[i + 1] != NULL ? opts[i + 1] : "";
        if (!drv_opt_sql(name, value, &table, &ping_table)) {
            host->error_set(err, TRIFLE_ECONFIG, 0, "invalid driver URL: unknown parameter %s",
                            name);
            return TRIFLE_ECONFIG;
        }
        if (opts[i + 1] == NULL)
            break;
    }
    if ((bad = drv_table_bad(table, ping_table, SQ_NAME_MAX)) != NULL) {
        host->error_set(err, TRIFLE_ECONFIG, 0, "invalid table name: %s", bad);
        return TRIFLE_ECONFIG;
    }

    if ((c = drv_calloc(host, sizeof(*c), err)) == NULL)
        return TRIFLE_ENOMEM;
    c->host = host;
    c->mode = mode;
    drv_buf_init(&c->sql, host, &c->oom);
    drv_buf_init(&c->arena, host, &c->oom);
    drv_buf_init(&c->json, host, &c->oom);
    drv_buf_init(&c->path, host, &c->oom);
    drv_table_names(c->table, c->ping_table, table, ping_table);
    memcpy(c->marks_table, c->table, strlen(c->table));
    memcpy(c->marks_table + strlen(c->table), "_marks", 7);

    if (strncmp(path, "file:", 5) == 0) {
        /* Debian builds SQLite with SQLITE_USE_URI: keep `sqlite:file:x.db` a plain file name */
        size_t n = strlen(path) + 1;
        literal = host->alloc(n + 2);
        if (literal == NULL) {
            rc = sq_oom(c, err);
            goto fail;
        }
        memcpy(literal, "./", 2);
        memcpy(literal + 2, path, n);
    }
    rc = sqlite3_open_v2(literal != NULL ? literal : path, &c->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    host->free(literal);
    if (c->db == NULL) {
        rc = sq_oom(c, err);
        goto fail;
    }
    sqlite3_extended_result_codes(c->db, 1);
    if (rc != SQLITE_OK) {
        rc = sqlite3_extended_errcode(c->db);
        if ((rc & 0xff) == SQLITE_CANTOPEN) {
            host->error_set(err, TRIFLE_ECONN, rc, "cannot open sqlite database %s: %s", path,
                            sqlite3_errmsg(c->db));
            rc = TRIFLE_ECONN;
        } else {
            rc = sq_fail(c, rc, NULL, err);
        }
        goto fail;
    }
    /* busy_timeout first, so that switching a new file to WAL waits for a concurrent opener */
    rc = sq_exec(c, "PRAGMA busy_timeout=" SQ_BUSY_TIMEOUT ";", NULL, err);
    if (rc == 0 && strcmp(path, ":memory:") != 0)
        rc = sq_exec(c, "PRAGMA journal_mode=WAL;", NULL, err);
    if (rc == 0)
        rc = sq_exec(c, "PRAGMA synchronous=NORMAL;", NULL, err);
    if (rc != 0)
        goto fail;
    *out = c;
    return TRIFLE_OK;

fail:
    sq_close(c);
    return rc;
}

/* Prepare *st (kept for the life of the connection) from the text in c->sql. */
static int sq_prepare_sql(trifle_conn *c, sqlite3_stmt **st, const char *table, trifle_error *err)
{
    int rc;

    if (c->oom)
        return sq_oom(c, err);
    rc = sqlite3_prepare_v3(c->db, c->sql.p, (int)c->sql.len, SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc != SQLITE_OK) {
        *st = NULL;
        return sq_fail(c, rc, table, err);
    }
    return 0;
}

static int sq_prepare(trifle_conn *c, sqlite3_stmt **st, const char *sql, trifle_error *err)
{
    if (*st != NULL)
        return 0;
    c->sql.len = 0;
    drv_buf_puts(&c->sql, sql);
    return sq_prepare_sql(c, st, NULL, err);
}

/* Reset a cached statement and drop its bindings (which may point at the caller's strings). */
static void sq_done(sqlite3_stmt *st)
{
    if (st != NULL) {
        (void)sqlite3_reset(st);
        (void)sqlite3_clear_bindings(st);
    }
}

/* "<a><table><b>" into c->sql, for statements that name one table. */
static void sq_sql3(trifle_conn *c, const char *a, const char *table, const char *b)
{
    c->sql.len = 0;
    drv_buf_puts(&c->sql, a);
    drv_buf_puts(&c->sql, table);
    drv_buf_puts(&c->sql, b);
}

/* Append the DDL of the journal mark table (ABI 1.1) to c->sql. */
static void sq_marks_sql(trifle_conn *c)
{
    drv_buf_puts(&c->sql, "CREATE TABLE IF NOT EXISTS ");
    drv_buf_puts(&c->sql, c->marks_table);
    drv_buf_puts(&c->sql, " (name TEXT PRIMARY KEY, seq INTEGER NOT NULL);");
}

static int sq_setup(trifle_conn *c, trifle_error *err)
{
    static const char *const schema[] = {
        [TRIFLE_ID_FULL] = " (key TEXT PRIMARY KEY, data TEXT NOT NULL DEFAULT '{}');",
        [TRIFLE_ID_PARTIAL] = " (key TEXT NOT NULL, at TEXT NOT NULL, data TEXT NOT NULL DEFAULT "
                              "'{}', PRIMARY KEY (key, at));",
        [TRIFLE_ID_SEPARATED] = " (key TEXT NOT NULL, granularity TEXT NOT NULL, at TEXT NOT "
                                "NULL, data TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (key, "
                                "granularity, at));",
    };
    int rc;

    if (c == NULL)
        return TRIFLE_EINVAL;
    c->oom = 0;
    sq_sql3(c, "CREATE TABLE IF NOT EXISTS ", c->table, schema[c->mode]);
    drv_buf_puts(&c->sql, "CREATE TABLE IF NOT EXISTS ");
    drv_buf_puts(&c->sql, c->ping_table);
    drv_buf_puts(&c->sql,
                 " (key TEXT PRIMARY KEY, at TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}');");
    sq_marks_sql(c);
    drv_buf_putc(&c->sql, '\0');
    if (c->oom)
        return sq_oom(c, err);
    rc = sq_exec(c, c->sql.p, NULL, err);
    if (rc == 0)
        c->marks_ready = 1;
    return rc;
}

/* Remove the three tables (the optional ABI drop, used by trifle-conformance after each case).
 * Cached statements that name them fail to re-prepare afterwards, which reports "no such table". */
static int sq_drop(trifle_conn *c, trifle_error *err)
{
    if (c == NULL)
        return TRIFLE_EINVAL;
    c->oom = 0;
    c->marks_ready = 0;
    sq_sql3(c, "DROP TABLE IF EXISTS ", c->table, ";");
    drv_buf_puts(&c->sql, "DROP TABLE IF EXISTS ");
    drv_buf_puts(&c->sql, c->ping_table);
    drv_buf_puts(&c->sql, ";DROP TABLE IF EXISTS ");
    drv_buf_puts(&c->sql, c->marks_table);
    drv_buf_puts(&c->sql, ";");
    drv_buf_putc(&c->sql, '\0');
    if (c->oom)
        return sq_oom(c, err);
    return sq_exec(c, c->sql.p, NULL, err);
}

/* ---------------------------------------------------------------------------------------------
 * Reading a chunk of identifiers (get, and the read half of inc/set)
 */

static const trifle_bucket *sq_bucket(const void *base, size_t stride, size_t i)
{
    return (const trifle_bucket *)(const void *)((const char *)base + i * stride);
}

/* The identifier columns of each mode. */
static const char *const sq_cols[] = {
    [TRIFLE_ID_FULL] = "key",
    [TRIFLE_ID_PARTIAL] = "key, at",
    [TRIFLE_ID_SEPARATED] = "key, granularity, at",
};

/* The SELECT for chunks of up to sq_classes[ci] identifiers (SPEC §7.5). */
static int sq_select(trifle_conn *c, size_t k, sqlite3_stmt **out, unsigned *cls, trifle_error *err)
{
    static const char *const term[] = {
        [TRIFLE_ID_FULL] = "?",
        [TRIFLE_ID_PARTIAL] = "(key = ? AND at IN (?, ?))",
        [TRIFLE_ID_SEPARATED] = "(key = ? AND granularity = ? AND at IN (?, ?))",
    };
    size_t ci = 0, j;
    int rc;

    while (sq_classes[ci] < k)
        ci++;
    *cls = sq_classes[ci];
    if (c->select[ci] == NULL) {
        sq_sql3(c, "SELECT ", sq_cols[c->mode], ", data FROM ");
        drv_buf_puts(&c->sql, c->table);
        drv_buf_puts(&c->sql, c->mode == TRIFLE_ID_FULL ? " WHERE key IN (" : " WHERE ");
        for (j = 0; j < sq_classes[ci]; j++) {
            if (j > 0)
                drv_buf_puts(&c->sql, c->mode == TRIFLE_ID_FULL ? ", " : " OR ");
            drv_buf_puts(&c->sql, term[c->mode]);
        }
        drv_buf_puts(&c->sql, c->mode == TRIFLE_ID_FULL ? ");" : ";");
        rc = sq_prepare_sql(c, &c->select[ci], c->table, err);
        if (rc != 0)
            return rc;
    }
    *out = c->select[ci];
    return 0;
}

static int sq_bind_text(sqlite3_stmt *st, int i, const char *s, int len, int *rc)
{
    if (*rc == SQLITE_OK)
        *rc =
            s != NULL ? sqlite3_bind_text(st, i, s, len, SQLITE_STATIC) : sqlite3_bind_null(st, i);
    return *rc;
}

/* Bind text to the first parameter of st (on table) and step it. Returns what sqlite3_step()
 * returned (SQLITE_ROW, SQLITE_DONE, an error code), or a negative status with err set when the
 * bind failed. */
static int sq_bind_step(trifle_conn *c, sqlite3_stmt *st, const char *text, const char *table,
                        trifle_error *err)
{
    int brc = SQLITE_OK;

    if (sq_bind_text(st, 1, text, -1, &brc) != SQLITE_OK)
        return sq_fail(c, brc, table, err);
    return sqlite3_step(st);
}

/* Emit the numeric leaves of one stored row for bucket index. */
static int sq_emit_row(trifle_conn *c, trifle_sink *sink, size_t index, const unsigned char *data,
                       size_t len, trifle_error *err)
{
    size_t i, n0 = c->n_ents, a0 = c->arena.len;
    int rc = 0;

    sq_flatten(c, 0, data, len, 0);
    if (c->oom)
        return sq_oom(c, err);
    for (i = n0; i < c->n_ents && rc == 0; i++) {
        const sq_ent *e = &c->ents[i];
        const char *path = c->arena.p + e->path_off;
        if (e->numeric && drv_path_ok(path, e->path_len))
            rc = c->host->emit(sink, index, path, e->num);
    }
    c->n_ents = n0;
    c->arena.len = a0;
    if (rc != 0)
        c->host->error_set(err, rc, 0, "cannot deliver the values of bucket %zu", index);
    return rc;
}

/*
 * Read the stored rows of buckets [lo, lo + k) (k <= SQ_CHUNK) of an array with the given stride
 * (trifle_bucket[] or trifle_entry[]). With a sink, each row's numeric leaves are emitted; without
 * one (writes), every leaf is appended to c->ents with its chunk index, c->legacy marks the items
 * that had a legacy-`at` row, and c->at/c->at_legacy hold each item's `at` texts.
 */
static int sq_read_chunk(trifle_conn *c, const void *base, size_t stride, size_t lo, size_t k,
                         trifle_sink *sink, trifle_error *err)
{
    const unsigned mask = SQ_SLOTS - 1;
    const int per = c->mode == TRIFLE_ID_FULL ? 1 : c->mode == TRIFLE_ID_PARTIAL ? 3 : 4;
    const int at_col = c->mode == TRIFLE_ID_SEPARATED ? 2 : 1;
    const int data_col = c->mode == TRIFLE_ID_FULL ? 1 : at_col + 1;
    sqlite3_stmt *st;
    unsigned cls, j;
    int rc, brc = SQLITE_OK;

    rc = sq_select(c, k, &st, &cls, err);
    if (rc != 0)
        return rc;
    memset(c->slots, 0, sizeof(c->slots));
    memset(c->legacy, 0, k);
    for (j = 0; j < cls; j++) {
        int p = (int)j * per + 1;
        if (j < k) {
            const trifle_bucket *b = sq_bucket(base, stride, lo + j);
            size_t id_len = strlen(b->id);
            const char *g = c->mode == TRIFLE_ID_SEPARATED ? b->granularity : "";
            uint32_t h;
            if (c->mode != TRIFLE_ID_FULL && (sq_at_format(c->at[j], b->at, 0) != 0 ||
                                              sq_at_format(c->at_legacy[j], b->at, 1) != 0)) {
                c->host->error_set(err, TRIFLE_EINVAL, 0, "time out of range: %lld (bucket %zu)",
                                   (long long)b->at, lo + j);
                rc = TRIFLE_EINVAL;
                goto done;
            }
            sq_bind_text(st, p++, b->id, (int)id_len, &brc);
            if (c->mode == TRIFLE_ID_SEPARATED)
                sq_bind_text(st, p++, g, -1, &brc);
            if (c->mode != TRIFLE_ID_FULL) {
                sq_bind_text(st, p++, c->at[j], SQ_AT_LEN, &brc);
                sq_bind_text(st, p, c->at_legacy[j], SQ_AT_LEGACY_LEN, &brc);
            }
            h = drv_bucket_hash(b->id, id_len, g, strlen(g), c->mode == TRIFLE_ID_FULL ? 0 : b->at);
            while (c->slots[h & mask] != 0)
                h++;
            c->slots[h & mask] = (uint16_t)(j + 1);
        } else {
            for (int q = 0; q < per; q++)
                sq_bind_text(st, p + q, NULL, 0, &brc);
        }
    }
    if (brc != SQLITE_OK) {
        rc = sq_fail(c, brc, c->table, err);
        goto done;
    }

    while ((brc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        size_t key_len = (size_t)sqlite3_column_bytes(st, 0);
        const char *g = "";
        size_t g_len = 0;
        const unsigned char *data;
        size_t data_len;
        int64_t at = 0;
        int legacy = 0;
        uint32_t h;

        if (key == NULL)
            continue;
        if (c->mode == TRIFLE_ID_SEPARATED) {
            g = (const char *)sqlite3_column_text(st, 1);
            g_len = (size_t)sqlite3_column_bytes(st, 1);
            if (g == NULL)
                continue;
        }
        if (c->mode != TRIFLE_ID_FULL) {
            const char *t = (const char *)sqlite3_column_text(st, at_col);
            if (!sq_at_parse_bucket(t, (size_t)sqlite3_column_bytes(st, at_col), &at, &legacy))
                continue;
        }
        data = sqlite3_column_text(st, data_col);
        data_len = (size_t)sqlite3_column_bytes(st, data_col);
        for (h = drv_bucket_hash(key, key_len, g, g_len, at); c->slots[h & mask] != 0; h++) {
            unsigned i = c->slots[h & mask] - 1u;
            const trifle_bucket *b = sq_bucket(base, stride, lo + i);
            if (!drv_bucket_is(b, c->mode, key, key_len, g, g_len, at))
                continue;
            if (sink != NULL) {
                /* a get may name one bucket twice: every index gets the row */
                rc = sq_emit_row(c, sink, lo + i, data, data_len, err);
                if (rc != 0)
                    goto done;
            } else {
                sq_flatten(c, i, data, data_len, 1);
                c->legacy[i] |= (unsigned char)legacy;
                break; /* items of one write are distinct */
            }
        }
        if (c->oom) {
            rc = sq_oom(c, err);
            goto done;
        }
    }
    if (brc != SQLITE_DONE)
        rc = sq_fail(c, brc, c->table, err);

done:
    sq_done(st);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * inc / set
 */

/* Append the canonical row of item `it` to c->json: stored leaves s[0..ns) (sorted by path, then
 * read order) merged with the item's leaves. On a non-finite result *bad names the path. */
static int sq_row_build(trifle_conn *c, const trifle_entry *it, const sq_ent *s, size_t ns,
                        int is_set, const char **bad)
{
    drv_buf *b = &c->json;
    size_t i = 0, l = 0, lpl = 0;
    const char *lp = NULL;
    int first = 1;

    drv_buf_putc(b, '{');
    if (it->n_leaves > 0) {
        lp = it->leaves[0].path;
        lpl = strlen(lp);
    }
    while (i < ns || l < it->n_leaves) {
        const sq_ent *raw = NULL;
        double sum = 0, v;
        int cmp, has_num = 0;
        size_t g = i;

        if (i >= ns)
            cmp = 1;
        else if (l >= it->n_leaves)
            cmp = -1;
        else
            cmp = drv_pathcmp(s[i].path, s[i].path_len, lp, lpl);
        if (cmp <= 0) {
            /* one stored path: numeric copies are summed, else the first non-numeric is kept */
            for (; g < ns && drv_pathcmp(s[g].path, s[g].path_len, s[i].path, s[i].path_len) == 0;
                 g++) {
                if (s[g].numeric) {
                    sum += s[g].num;
                    has_num = 1;
                } else if (raw == NULL) {
                    raw = &s[g];
                }
            }
        }
        if (!first)
            drv_buf_putc(b, ',');
        first = 0;
        if (cmp < 0) {
            drv_buf_put_jstr(b, s[i].path, s[i].path_len);
            drv_buf_putc(b, ':');
            if (has_num) {
                if (!isfinite(sum)) {
                    *bad = s[i].path;
                    return TRIFLE_EDATA;
                }
                drv_buf_put_num(b, sum);
            } else {
                assert(raw != NULL); /* the loop above visits s[i] itself */
                drv_buf_put(b, c->arena.p + raw->raw_off, raw->raw_len);
            }
            i = g;
            continue;
        }
        v = it->leaves[l].value;
        if (!is_set && cmp == 0 && has_num)
            v += sum; /* a non-numeric stored value counts as 0 (ERRATA I5) */
        if (!isfinite(v)) {
            *bad = lp;
            return TRIFLE_EDATA;
        }
        drv_buf_put_jstr(b, lp, lpl);
        drv_buf_putc(b, ':');
        drv_buf_put_num(b, v);
        if (cmp == 0)
            i = g;
        if (++l < it->n_leaves) {
            lp = it->leaves[l].path;
            lpl = strlen(lp);
        }
    }
    drv_buf_putc(b, '}');
    return c->oom ? TRIFLE_ENOMEM : 0;
}

static int sq_prepare_write(trifle_conn *c, trifle_error *err)
{
    int rc;

    if ((rc = sq_prepare(c, &c->begin, "BEGIN IMMEDIATE;", err)) != 0 ||
        (rc = sq_prepare(c, &c->commit, "COMMIT;", err)) != 0 ||
        (rc = sq_prepare(c, &c->rollback, "ROLLBACK;", err)) != 0)
        return rc;
    if (c->delete_legacy == NULL && c->mode != TRIFLE_ID_FULL) {
        sq_sql3(c, "DELETE FROM ", c->table,
                c->mode == TRIFLE_ID_PARTIAL ? " WHERE key = ? AND at = ?;"
                                             : " WHERE key = ? AND granularity = ? AND at = ?;");
        if ((rc = sq_prepare_sql(c, &c->delete_legacy, c->table, err)) != 0)
            return rc;
    }
    return 0;
}

/* The upsert of sq_classes[ci] rows (SPEC §7.5's statement with a multi-row VALUES list: one
 * statement per up to 500 rows instead of one per row halves the cost of a write). */
static int sq_upsert_stmt(trifle_conn *c, size_t ci, sqlite3_stmt **out, trifle_error *err)
{
    static const char *const row[] = {
        [TRIFLE_ID_FULL] = "(?, ?)",
        [TRIFLE_ID_PARTIAL] = "(?, ?, ?)",
        [TRIFLE_ID_SEPARATED] = "(?, ?, ?, ?)",
    };
    size_t j;
    int rc;

    if (c->upsert[ci] == NULL) {
        sq_sql3(c, "INSERT INTO ", c->table, " (");
        drv_buf_puts(&c->sql, sq_cols[c->mode]);
        drv_buf_puts(&c->sql, ", data) VALUES ");
        for (j = 0; j < sq_classes[ci]; j++) {
            if (j > 0)
                drv_buf_puts(&c->sql, ", ");
            drv_buf_puts(&c->sql, row[c->mode]);
        }
        drv_buf_puts(&c->sql, " ON CONFLICT (");
        drv_buf_puts(&c->sql, sq_cols[c->mode]);
        drv_buf_puts(&c->sql, ") DO UPDATE SET data = excluded.data;");
        if ((rc = sq_prepare_sql(c, &c->upsert[ci], c->table, err)) != 0)
            return rc;
    }
    *out = c->upsert[ci];
    return 0;
}

/* BEGIN IMMEDIATE: each attempt waits up to busy_timeout; SQLITE_BUSY is retried 3 times. */
static int sq_begin(trifle_conn *c, trifle_error *err)
{
    int attempt, rc;

    if (!sqlite3_get_autocommit(c->db)) {
        /* a transaction left open by an earlier failure would make BEGIN fail forever */
        (void)sqlite3_step(c->rollback);
        (void)sqlite3_reset(c->rollback);
    }
    for (attempt = 0;; attempt++) {
        rc = sqlite3_step(c->begin);
        if (rc == SQLITE_DONE) {
            (void)sqlite3_reset(c->begin);
            return 0;
        }
        if ((rc & 0xff) != SQLITE_BUSY || attempt == SQ_BEGIN_RETRIES) {
            rc = sq_fail(c, rc, NULL, err);
            (void)sqlite3_reset(c->begin);
            return rc;
        }
        (void)sqlite3_reset(c->begin);
        if (c->host->log != NULL)
            c->host->log(TRIFLE_LOG_WARN, SQ_NAME,
                         "database is locked; retrying BEGIN IMMEDIATE (%d of %d)", attempt + 1,
                         SQ_BEGIN_RETRIES);
    }
}

static int sq_step_done(trifle_conn *c, sqlite3_stmt *st, const char *table, trifle_error *err)
{
    int rc = sqlite3_step(st);

    rc = rc == SQLITE_DONE ? 0 : sq_fail(c, rc, table, err);
    sq_done(st);
    return rc;
}

/* Group c->ents by chunk item into c->sorted (a stable counting sort: rows arrive in index
 * order, not item order) and sort each item's entries by path, then read order. A row this driver
 * wrote is already in path order, so the per-item sort is usually skipped. */
static int sq_group(trifle_conn *c, size_t k)
{
    size_t i, j, n = c->n_ents;

    if (c->cap_sorted < c->cap_ents) {
        sq_ent *p = c->sorted != NULL ? c->host->realloc(c->sorted, c->cap_ents * sizeof(*p))
                                      : c->host->alloc(c->cap_ents * sizeof(*p));
        if (p == NULL)
            return TRIFLE_ENOMEM;
        c->sorted = p;
        c->cap_sorted = c->cap_ents;
    }
    memset(c->first, 0, (k + 1) * sizeof(c->first[0]));
    for (i = 0; i < n; i++) {
        c->ents[i].path = c->arena.p + c->ents[i].path_off;
        c->first[c->ents[i].item + 1]++;
    }
    for (j = 0; j < k; j++)
        c->first[j + 1] += c->first[j];
    for (i = 0; i < n; i++) /* first[j] serves as the cursor, then is restored below */
        c->sorted[c->first[c->ents[i].item]++] = c->ents[i];
    for (j = k; j > 0; j--)
        c->first[j] = c->first[j - 1];
    c->first[0] = 0;
    for (j = 0; j < k; j++) {
        sq_ent *s = c->sorted + c->first[j];
        size_t m = c->first[j + 1] - c->first[j];
        for (i = 1; i < m; i++)
            if (drv_pathcmp(s[i - 1].path, s[i - 1].path_len, s[i].path, s[i].path_len) >= 0)
                break;
        if (i < m)
            qsort(s, m, sizeof(*s), sq_ent_cmp);
    }
    return 0;
}

/* Write items [lo, lo + k) whose stored rows sq_read_chunk() has put in c->ents. */
static int sq_write_chunk(trifle_conn *c, const trifle_entry *items, size_t lo, size_t k,
                          int is_set, ptrdiff_t *failed, trifle_error *err)
{
    const int sep = c->mode == TRIFLE_ID_SEPARATED;
    size_t j;
    int rc;

    rc = sq_group(c, k);
    if (rc != 0)
        return sq_oom(c, err);

    /* every new row first: the statements bind them in place (c->json must not move) */
    c->json.len = 0;
    for (j = 0; j < k; j++) {
        const trifle_entry *it = &items[lo + j];
        const char *bad = NULL;

        c->row_off[j] = c->json.len;
        rc = sq_row_build(c, it, c->sorted + c->first[j], c->first[j + 1] - c->first[j], is_set,
                          &bad);
        c->row_len[j] = c->json.len - c->row_off[j];
        if (rc == TRIFLE_EDATA) {
            c->host->error_set(err, rc, 0, "value at \"%s\" of %s is not finite", bad,
                               it->bucket.id);
            *failed = (ptrdiff_t)(lo + j);
            return rc;
        }
        if (rc != 0)
            return sq_oom(c, err);
    }

    /* upserts of 500, 256, ..., 1 rows */
    for (j = 0; j < k;) {
        size_t ci = SQ_N_CLASSES - 1, r, end;
        sqlite3_stmt *st;
        int brc = SQLITE_OK, n = 1;

        while (sq_classes[ci] > k - j)
            ci--;
        if ((rc = sq_upsert_stmt(c, ci, &st, err)) != 0)
            return rc;
        for (r = j, end = j + sq_classes[ci]; r < end; r++) {
            const trifle_bucket *b = &items[lo + r].bucket;
            sq_bind_text(st, n++, b->id, -1, &brc);
            if (sep)
                sq_bind_text(st, n++, b->granularity, -1, &brc);
            if (c->mode != TRIFLE_ID_FULL)
                sq_bind_text(st, n++, c->at[r], SQ_AT_LEN, &brc);
            sq_bind_text(st, n++, c->json.p + c->row_off[r], (int)c->row_len[r], &brc);
        }
        if (brc != SQLITE_OK) {
            rc = sq_fail(c, brc, c->table, err);
            sq_done(st);
        } else {
            rc = sq_step_done(c, st, c->table, err);
        }
        if (rc != 0)
            return rc;
        j = end;
    }

    /* legacy rows that were folded into the canonical ones */
    for (j = 0; j < k; j++) {
        const trifle_bucket *b = &items[lo + j].bucket;
        int brc = SQLITE_OK, n = 1;

        if (!c->legacy[j])
            continue;
        sq_bind_text(c->delete_legacy, n++, b->id, -1, &brc);
        if (sep)
            sq_bind_text(c->delete_legacy, n++, b->granularity, -1, &brc);
        sq_bind_text(c->delete_legacy, n, c->at_legacy[j], SQ_AT_LEGACY_LEN, &brc);
        if (brc != SQLITE_OK) {
            rc = sq_fail(c, brc, c->table, err);
            sq_done(c->delete_legacy);
        } else {
            rc = sq_step_done(c, c->delete_legacy, c->table, err);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The leaves of every item sorted by path and unique (what SPEC §7.2 promises; the merge in
 * sq_row_build() relies on it). `first` is the index of items[0] in the caller's numbering. */
static int sq_check_leaves(trifle_conn *c, const trifle_entry *items, size_t n, size_t first,
                           trifle_error *err)
{
    size_t i, l;

    if (n > 0 && items == NULL)
        return TRIFLE_EINVAL;
    for (i = 0; i < n; i++) {
        for (l = 0; l < items[i].n_leaves; l++) {
            if (items[i].leaves[l].path == NULL ||
                (l > 0 && strcmp(items[i].leaves[l - 1].path, items[i].leaves[l].path) >= 0)) {
                c->host->error_set(err, TRIFLE_EINVAL, 0,
                                   "leaves of item %zu are not unique and sorted by path",
                                   first + i);
                return TRIFLE_EINVAL;
            }
        }
    }
    return 0;
}

/* Inside the caller's transaction: replace (is_set) or add the leaves of items[0..n), a chunk at
 * a time. An EDATA sets *failed to first + the rejected item's index. */
static int sq_write_items(trifle_conn *c, const trifle_entry *items, size_t n, int is_set,
                          size_t first, ptrdiff_t *failed, trifle_error *err)
{
    size_t lo;
    int rc = 0;

    for (lo = 0; lo < n && rc == 0; lo += SQ_CHUNK) {
        size_t k = n - lo < SQ_CHUNK ? n - lo : SQ_CHUNK;
        rc = sq_read_chunk(c, items, sizeof(*items), lo, k, NULL, err);
        if (rc == 0)
            rc = sq_write_chunk(c, items, lo, k, is_set, failed, err);
        sq_scratch_reset(c);
    }
    if (rc == TRIFLE_EDATA && *failed >= 0)
        *failed += (ptrdiff_t)first;
    return rc;
}

/* End the transaction sq_begin() opened: COMMIT when rc is 0, else ROLLBACK. Returns rc, or the
 * failure of COMMIT. */
static int sq_end(trifle_conn *c, int rc, trifle_error *err)
{
    if (rc == 0) {
        rc = sqlite3_step(c->commit);
        rc = rc == SQLITE_DONE ? 0 : sq_fail(c, rc, NULL, err);
        (void)sqlite3_reset(c->commit);
    }
    if (rc != 0 && !sqlite3_get_autocommit(c->db)) {
        (void)sqlite3_step(c->rollback);
        (void)sqlite3_reset(c->rollback);
    }
    return rc;
}

static int sq_write(trifle_conn *c, const trifle_entry *items, size_t n, int is_set,
                    trifle_write_result *res, trifle_error *err)
{
    ptrdiff_t failed = -1;
    int rc;

    if (c == NULL || (n > 0 && items == NULL))
        return TRIFLE_EINVAL;
    if (n == 0)
        return TRIFLE_OK;
    c->oom = 0;
    sq_scratch_reset(c);
    if ((rc = sq_check_leaves(c, items, n, 0, err)) == 0 && (rc = sq_prepare_write(c, err)) == 0 &&
        (rc = sq_begin(c, err)) == 0)
        rc = sq_end(c, sq_write_items(c, items, n, is_set, 0, &failed, err), err);
    if (rc != 0)
        TRIFLE_WRITE_RESULT_SET(res, 0, failed, 0);
    return rc;
}

DRV_DEFINE_INC_SET(sq_inc, sq_set, sq_write)

/* ---------------------------------------------------------------------------------------------
 * Journal marks (ABI 1.1): the table "<table>_marks" (name TEXT PRIMARY KEY, seq INTEGER NOT
 * NULL), created by setup and, for a database set up by an older version, by the first
 * write_marked of a connection (inside its transaction).
 */

/* In the open transaction: make sure the mark table exists and its upsert is prepared. */
static int sq_marks_prepare(trifle_conn *c, trifle_error *err)
{
    int rc;

    if (!c->marks_ready) {
        c->sql.len = 0;
        sq_marks_sql(c);
        drv_buf_putc(&c->sql, '\0');
        if (c->oom)
            return sq_oom(c, err);
        if ((rc = sq_exec(c, c->sql.p, c->marks_table, err)) != 0)
            return rc;
    }
    if (c->mark_upsert == NULL) {
        sq_sql3(c, "INSERT INTO ", c->marks_table,
                " (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq;");
        if ((rc = sq_prepare_sql(c, &c->mark_upsert, c->marks_table, err)) != 0)
            return rc;
    }
    return 0;
}

static int sq_mark_store(trifle_conn *c, const trifle_mark *mark, trifle_error *err)
{
    int rc, brc = SQLITE_OK;

    sq_bind_text(c->mark_upsert, 1, mark->name, -1, &brc);
    if (brc == SQLITE_OK)
        brc = sqlite3_bind_int64(c->mark_upsert, 2, (sqlite3_int64)mark->seq);
    if (brc != SQLITE_OK) {
        rc = sq_fail(c, brc, c->marks_table, err);
        sq_done(c->mark_upsert);
        return rc;
    }
    return sq_step_done(c, c->mark_upsert, c->marks_table, err);
}

static int sq_write_marked(trifle_conn *c, const trifle_entry *set_items, size_t n_set,
                           const trifle_entry *inc_items, size_t n_inc, const trifle_mark *mark,
                           trifle_write_result *res, trifle_error *err)
{
    ptrdiff_t failed = -1;
    int rc;

    if (c == NULL || mark == NULL || mark->name == NULL || mark->seq > (uint64_t)INT64_MAX)
        return TRIFLE_EINVAL;
    c->oom = 0;
    sq_scratch_reset(c);
    if ((rc = sq_check_leaves(c, set_items, n_set, 0, err)) != 0 ||
        (rc = sq_check_leaves(c, inc_items, n_inc, n_set, err)) != 0 ||
        (rc = sq_prepare_write(c, err)) != 0 || (rc = sq_begin(c, err)) != 0)
        goto done;
    /* sets first, then increments (they read what the sets wrote), then the mark */
    if ((rc = sq_marks_prepare(c, err)) == 0 &&
        (rc = sq_write_items(c, set_items, n_set, 1, 0, &failed, err)) == 0 &&
        (rc = sq_write_items(c, inc_items, n_inc, 0, n_set, &failed, err)) == 0)
        rc = sq_mark_store(c, mark, err);
    rc = sq_end(c, rc, err);
    /* a missing table (dropped meanwhile): create the mark table again next time */
    c->marks_ready = rc == 0 || (c->marks_ready && rc != TRIFLE_ECONFIG);
done:
    if (rc != 0)
        TRIFLE_WRITE_RESULT_SET(res, 0, rc == TRIFLE_EDATA ? failed : -1, 0);
    return rc;
}

/* The stored seq of journal `name`; 0 when the mark table or the row does not exist. Never
 * creates the table: a read takes no write lock. */
static int sq_mark_read(trifle_conn *c, const char *name, uint64_t *seq, trifle_error *err)
{
    int rc;
    sqlite3_int64 v;

    if (c == NULL || name == NULL || seq == NULL)
        return TRIFLE_EINVAL;
    *seq = 0;
    c->oom = 0;
    if (c->mark_select == NULL) {
        sq_sql3(c, "SELECT seq FROM ", c->marks_table, " WHERE name = ?;");
        if (c->oom)
            return sq_oom(c, err);
        rc = sqlite3_prepare_v3(c->db, c->sql.p, (int)c->sql.len, SQLITE_PREPARE_PERSISTENT,
                                &c->mark_select, NULL);
        if (rc != SQLITE_OK) {
            c->mark_select = NULL;
            if ((rc & 0xff) == SQLITE_ERROR &&
                strncmp(sqlite3_errmsg(c->db), "no such table", 13) == 0)
                return 0; /* set up by a version without marks: nothing is marked yet */
            return sq_fail(c, rc, c->marks_table, err);
        }
    }
    if ((rc = sq_bind_step(c, c->mark_select, name, c->marks_table, err)) < 0)
        goto done;
    if (rc == SQLITE_DONE) {
        rc = 0;
    } else if (rc == SQLITE_ROW) {
        v = sqlite3_column_int64(c->mark_select, 0);
        if (sqlite3_column_type(c->mark_select, 0) != SQLITE_INTEGER || v < 0) {
            c->host->error_set(err, TRIFLE_EDRIVER, 0, "invalid seq of journal %s in table %s",
                               name, c->marks_table);
            rc = TRIFLE_EDRIVER;
        } else {
            *seq = (uint64_t)v;
            rc = 0;
        }
    } else if ((rc & 0xff) == SQLITE_ERROR &&
               strncmp(sqlite3_errmsg(c->db), "no such table", 13) == 0) {
        rc = 0; /* dropped since the statement was prepared */
    } else {
        rc = sq_fail(c, rc, c->marks_table, err);
    }
done:
    sq_done(c->mark_select);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * get
 */

static int sq_get(trifle_conn *c, const trifle_bucket *buckets, size_t n, trifle_sink *sink,
                  trifle_error *err)
{
    size_t lo;
    int rc = 0, in_txn = 0;

    if (c == NULL || (n > 0 && (buckets == NULL || sink == NULL)))
        return TRIFLE_EINVAL;
    if (n == 0)
        return TRIFLE_OK;
    c->oom = 0;
    sq_scratch_reset(c);
    if (n > SQ_CHUNK) {
        /* several statements: one read transaction gives them one snapshot */
        if ((rc = sq_prepare(c, &c->begin_read, "BEGIN;", err)) != 0 ||
            (rc = sq_prepare(c, &c->commit, "COMMIT;", err)) != 0 ||
            (rc = sq_prepare(c, &c->rollback, "ROLLBACK;", err)) != 0)
            return rc;
        if (sqlite3_get_autocommit(c->db)) {
            rc = sq_step_done(c, c->begin_read, NULL, err);
            if (rc != 0)
                return rc;
            in_txn = 1;
        }
    }
    for (lo = 0; lo < n && rc == 0; lo += SQ_CHUNK) {
        size_t k = n - lo < SQ_CHUNK ? n - lo : SQ_CHUNK;
        rc = sq_read_chunk(c, buckets, sizeof(*buckets), lo, k, sink, err);
    }
    sq_scratch_reset(c);
    if (in_txn) {
        sqlite3_stmt *end = rc == 0 ? c->commit : c->rollback;
        int erc = sqlite3_step(end);
        if (erc != SQLITE_DONE && rc == 0)
            rc = sq_fail(c, erc, NULL, err);
        (void)sqlite3_reset(end);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * ping / scan
 */

static int sq_ping(trifle_conn *c, const char *key, int64_t at, const trifle_leaf *leaves, size_t n,
                   trifle_error *err)
{
    char at_text[SQ_AT_LEN + 1];
    int rc, brc = SQLITE_OK;
    size_t i;

    if (c == NULL || key == NULL || (n > 0 && leaves == NULL))
        return TRIFLE_EINVAL;
    if (sq_at_format(at_text, at, 0) != 0) {
        c->host->error_set(err, TRIFLE_EINVAL, 0, "time out of range: %lld", (long long)at);
        return TRIFLE_EINVAL;
    }
    c->oom = 0;
    if (c->ping == NULL) {
        sq_sql3(c, "INSERT INTO ", c->ping_table,
                " (key, at, data) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET at = "
                "excluded.at, data = excluded.data;");
        if ((rc = sq_prepare_sql(c, &c->ping, c->ping_table, err)) != 0)
            return rc;
    }
    c->json.len = 0;
    drv_buf_puts(&c->json, "{\"at\":\"");
    drv_buf_puts(&c->json, at_text);
    drv_buf_putc(&c->json, '"');
    for (i = 0; i < n; i++) {
        if (!isfinite(leaves[i].value) || leaves[i].path == NULL) {
            c->host->error_set(err, TRIFLE_EINVAL, 0, "invalid ping leaf %zu", i);
            return TRIFLE_EINVAL;
        }
        c->path.len = 0;
        drv_buf_puts(&c->path, "data.");
        drv_buf_puts(&c->path, leaves[i].path);
        drv_buf_putc(&c->json, ',');
        drv_buf_put_jstr(&c->json, c->path.p, c->path.len);
        drv_buf_putc(&c->json, ':');
        drv_buf_put_num(&c->json, leaves[i].value);
    }
    drv_buf_putc(&c->json, '}');
    if (c->oom)
        return sq_oom(c, err);
    sq_bind_text(c->ping, 1, key, -1, &brc);
    sq_bind_text(c->ping, 2, at_text, SQ_AT_LEN, &brc);
    sq_bind_text(c->ping, 3, c->json.p, (int)c->json.len, &brc);
    if (brc != SQLITE_OK) {
        rc = sq_fail(c, brc, c->ping_table, err);
        sq_done(c->ping);
        return rc;
    }
    return sq_step_done(c, c->ping, c->ping_table, err);
}

static int sq_scan(trifle_conn *c, const char *key, int64_t *at_out, trifle_sink *sink,
                   trifle_error *err)
{
    int rc;
    int64_t at = 0;
    size_t i;

    if (c == NULL || key == NULL || at_out == NULL || sink == NULL)
        return TRIFLE_EINVAL;
    c->oom = 0;
    sq_scratch_reset(c);
    if (c->scan == NULL) {
        sq_sql3(c, "SELECT at, data FROM ", c->ping_table,
                " WHERE key = ? ORDER BY at DESC LIMIT 1;");
        if ((rc = sq_prepare_sql(c, &c->scan, c->ping_table, err)) != 0)
            return rc;
    }
    if ((rc = sq_bind_step(c, c->scan, key, c->ping_table, err)) < 0)
        goto done;
    if (rc == SQLITE_DONE) {
        c->host->error_set(err, TRIFLE_ENOTFOUND, 0, "no ping for key %s", key);
        rc = TRIFLE_ENOTFOUND;
        goto done;
    }
    if (rc != SQLITE_ROW) {
        rc = sq_fail(c, rc, c->ping_table, err);
        goto done;
    }
    switch (sqlite3_column_type(c->scan, 0)) {
    case SQLITE_INTEGER:
        at = sqlite3_column_int64(c->scan, 0);
        rc = 0;
        break;
    case SQLITE_FLOAT: {
        /* seconds with a fraction: floored (without libm's floor) */
        double d = sqlite3_column_double(c->scan, 0);
        rc = d >= -9.2e18 && d <= 9.2e18 ? 0 : -1;
        if (rc == 0) {
            at = (int64_t)d;
            if ((double)at > d)
                at--;
        }
        break;
    }
    default: {
        const char *t = (const char *)sqlite3_column_text(c->scan, 0);
        rc = t != NULL && sq_time_parse(t, (size_t)sqlite3_column_bytes(c->scan, 0), &at) ? 0 : -1;
        break;
    }
    }
    if (rc != 0) {
        c->host->error_set(err, TRIFLE_EDRIVER, 0, "invalid ping time \"%s\" for key %s",
                           (const char *)sqlite3_column_text(c->scan, 0), key);
        rc = TRIFLE_EDRIVER;
        goto done;
    }
    sq_flatten(c, 0, sqlite3_column_text(c->scan, 1), (size_t)sqlite3_column_bytes(c->scan, 1), 0);
    if (c->oom) {
        rc = sq_oom(c, err);
        goto done;
    }
    for (i = 0; i < c->n_ents && rc == 0; i++) {
        const sq_ent *e = &c->ents[i];
        const char *path = c->arena.p + e->path_off;
        if (e->numeric && e->path_len > 5 && memcmp(path, "data.", 5) == 0 &&
            drv_path_ok(path + 5, e->path_len - 5))
            rc = c->host->emit(sink, 0, path + 5, e->num);
    }
    if (rc != 0) {
        c->host->error_set(err, rc, 0, "cannot deliver the ping of key %s", key);
        goto done;
    }
    *at_out = at;

done:
    sq_scratch_reset(c);
    sq_done(c->scan);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * The plugin's one export
 */

DRV_SQL_DRIVER(sq, SQ_NAME, "1.1.0", "sqlite");

TRIFLE_DRIVER_DEFINE(sqlite, sq_driver)
