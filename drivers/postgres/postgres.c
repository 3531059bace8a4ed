/*
 * trifle_postgres.so: the PostgreSQL storage driver (SPEC §7.6; ERRATA I4, I5, I15, minor 2, 15,
 * 16), over libpq.
 *
 * Layout. The tables of trifle_stats_go and the Ruby gem (one per identifier mode) plus a ping
 * table. `data` is JSONB whose keys are packed paths stored flat (`{"count": 3, "meta.duration":
 * 6}`); `at` is TIMESTAMPTZ.
 *
 * Writes. One `INSERT ... SELECT ... FROM unnest(...) ON CONFLICT ... DO UPDATE` statement per
 * inc/set call, whatever the number of items: the merge (exact `numeric` sums for inc, `||` for
 * set) happens on the server under the row locks of the upsert, so concurrent writers never lose
 * an update and the client never reads before it writes. The statement runs in autocommit mode:
 * PostgreSQL wraps a lone statement in its own transaction, so it is applied completely or not at
 * all, exactly like `BEGIN; INSERT ...; COMMIT;`, but in one round trip instead of three (libpq
 * cannot send parameters with a multi-statement string, and pipelining three statements buys
 * nothing over one). Items are sent sorted by identifier, so concurrent batches take their row
 * locks in the same order; deadlock and serialisation failures (40P01, 40001) are retried up to
 * three times all the same. write_marked (ABI 1.1) needs more than one statement, so it runs
 * BEGIN, a statement that locks every row of the call in the same sorted order, the same SET and
 * INC statements, an upsert into `<table>_marks` and COMMIT as one explicit transaction (retried
 * whole after 40P01/40001); a COMMIT whose reply is lost is reported with outcome_unknown.
 *
 * Parameters. The arrays of the SPEC statements (`$1::text[]`, `$2::jsonb[]`, `$n::timestamptz[]`)
 * travel in PostgreSQL's binary array format: a header, then each element as a length and its
 * bytes. Nothing is escaped and nothing can be misparsed: a key may contain quotes, backslashes,
 * braces, commas or the word NULL, and the server does no array-literal scanning. `at` is the
 * binary timestamptz (microseconds since 2000-01-01 UTC), the same instant as its RFC 3339 text,
 * read without any dependence on the session's TimeZone or DateStyle. Scalars (ping, scan) are
 * text parameters, which libpq sends length-delimited and unescaped too.
 *
 * Reads. One statement for any number of identifiers (`key = ANY($1)`, or a join with `unnest`).
 * Identifiers asked for twice are sent once; each returned row is matched to its identifiers
 * exactly through a hash table, and the numeric leaves of its JSONB text are emitted. Nested
 * objects (foreign data) are flattened to dotted paths; the host sums repeated paths.
 *
 * Connections. Statements are prepared once per connection. Before each call a connection the
 * server has closed (restart, pg_terminate_backend) is noticed without a round trip and reset
 * once; a statement whose reply is lost after it was sent is reported with outcome_unknown, except
 * for idempotent statements (reads, ping, setup, drop), which are sent again on the new connection.
 *
 * Threads: a connection is used by one thread at a time and holds no thread-local state.
 */
#include <libpq-fe.h>

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <trifle/driver.h>

#include "drv_support.h"

#define PG_NAME "postgres"
#define PG_NAME_MAX 58 /* bytes of a table name (SPEC §7.5, §7.6) */
#define PG_ID_MAX 255  /* characters of a VARCHAR(255) key or granularity (ERRATA I4) */
#define PG_RETRIES 3   /* extra attempts after 40P01/40001 (SPEC §7.4) */
#define PG_CONNECT_TIMEOUT_MS 10000 /* when the URL gives no connect_timeout */
#define PG_MAX_DEPTH 128    /* nesting flattened in stored JSONB; deeper objects are skipped */
#define PG_MIN_SERVER 90500 /* ON CONFLICT, jsonb_object_agg */
#define PG_AT_LEN 20        /* "2025-01-15T10:00:00Z" */
#define PG_AT_MIN INT64_C(-62135596800)  /* 0001-01-01T00:00:00Z */
#define PG_AT_MAX INT64_C(253402300799)  /* 9999-12-31T23:59:59Z */
#define PG_EPOCH_2000 INT64_C(946684800) /* PostgreSQL's timestamp epoch in Unix seconds */

/* Type OIDs of the binary array elements (pg_type.h; fixed since PostgreSQL 9.4). */
#define PG_OID_TEXT 25u
#define PG_OID_TIMESTAMPTZ 1184u
#define PG_OID_JSONB 3802u

#define PG_LOST 1 /* internal: the connection died under a call */

/* The statements prepared on each connection. */
enum {
    PG_ST_INC,
    PG_ST_SET,
    PG_ST_GET,
    PG_ST_PING,
    PG_ST_SCAN,
    PG_ST_MARK,      /* upsert of a journal mark (ABI 1.1) */
    PG_ST_MARK_READ, /* its read */
    PG_ST_LOCK,      /* write_marked: create and lock every row of both lists in one order */
    PG_N_ST
};

static const char *const pg_st_names[PG_N_ST] = {"trifle_inc",       "trifle_set",  "trifle_get",
                                                 "trifle_ping",      "trifle_scan", "trifle_mark",
                                                 "trifle_mark_read", "trifle_lock"};

/* One write item in the order it is sent. */
typedef struct pg_ord {
    const trifle_entry *e;
    size_t i; /* index in the caller's array */
} pg_ord;

struct trifle_conn {
    const trifle_host_api *host;
    PGconn *pg;
    int mode;          /* enum trifle_id_mode */
    int oom;           /* an allocation failed during the current call */
    int connect_ms;    /* connect/reset deadline, -1 = none */
    int doomed;        /* the server sent a FATAL error while we were idle */
    unsigned prepared; /* bit per PG_ST_*: prepared on the current session */
    char table[PG_NAME_MAX + 1];
    char ping_table[PG_NAME_MAX + 6];  /* the default "<table>_ping" may be 5 bytes longer */
    char marks_table[PG_NAME_MAX + 7]; /* "<table>_marks": journal marks (ABI 1.1) */
    int marks_ready;                   /* marks_table is known to exist */
    char *secret;                      /* the password, masked in every message */
    drv_buf sql;                       /* statement text being built */
    drv_buf par[4];                    /* parameters of the statement being sent */
    drv_buf path;                      /* path of the JSON member being read */
    pg_ord *ord;                       /* write order */
    size_t cap_ord;
    drv_buckets bk; /* get: the distinct identifiers asked for */
};

/* ---------------------------------------------------------------------------------------------
 * Buffers
 */

/* Big-endian integers, as the binary protocol wants them. */
static void pg_put_u32(drv_buf *b, uint32_t v)
{
    unsigned char s[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};

    drv_buf_put(b, s, 4);
}

static void pg_put_i64(drv_buf *b, int64_t v)
{
    uint64_t u = (uint64_t)v;

    pg_put_u32(b, (uint32_t)(u >> 32));
    pg_put_u32(b, (uint32_t)u);
}

static void pg_patch_u32(drv_buf *b, size_t off, uint32_t v)
{
    unsigned char *s = (unsigned char *)b->p + off;

    s[0] = (unsigned char)(v >> 24);
    s[1] = (unsigned char)(v >> 16);
    s[2] = (unsigned char)(v >> 8);
    s[3] = (unsigned char)v;
}

/* The header of a one-dimensional binary array of n elements of type oid (array_recv). */
static void pg_array_begin(drv_buf *b, uint32_t oid, size_t n)
{
    b->len = 0;
    pg_put_u32(b, 1);           /* dimensions */
    pg_put_u32(b, 0);           /* no NULL elements */
    pg_put_u32(b, oid);         /* element type */
    pg_put_u32(b, (uint32_t)n); /* length of dimension 1 */
    pg_put_u32(b, 1);           /* its lower bound */
}

/* A text element: its bytes as they are. */
static void pg_array_text(drv_buf *b, const char *s, size_t n)
{
    pg_put_u32(b, (uint32_t)n);
    drv_buf_put(b, s, n);
}

/* A timestamptz element: microseconds since 2000-01-01T00:00:00Z (at is range-checked). */
static void pg_array_at(drv_buf *b, int64_t at)
{
    pg_put_u32(b, 8);
    pg_put_i64(b, (at - PG_EPOCH_2000) * 1000000);
}

/* ---------------------------------------------------------------------------------------------
 * Errors (STYLE §3; SPEC §13; ERRATA I15). `native` is the SQLSTATE packed as PostgreSQL packs it
 * internally (MAKE_SQLSTATE: six bits per character, first character lowest), 0 when the failure
 * has no SQLSTATE. The password never appears in a message.
 */

static int pg_sqlstate_code(const char *s)
{
    unsigned v = 0;
    int i;

    if (s == NULL || strlen(s) != 5)
        return 0;
    for (i = 0; i < 5; i++)
        v |= (unsigned)((s[i] - '0') & 0x3F) << (6 * i);
    return (int)v;
}

static int pg_state_is(const char *state, const char *want)
{
    return state != NULL && strcmp(state, want) == 0;
}

/* Should a statement that failed with SQLSTATE state be tried again? Yes after a deadlock or a
 * serialization failure, PG_RETRIES times (counted in *retries), each logged. */
static int pg_retry_conflict(trifle_conn *c, const char *state, int *retries)
{
    if (!(pg_state_is(state, "40P01") || pg_state_is(state, "40001")) || *retries >= PG_RETRIES)
        return 0;
    ++*retries;
    if (c->host->log != NULL)
        c->host->log(TRIFLE_LOG_WARN, PG_NAME, "%s (SQLSTATE %s); retrying (%d of %d)",
                     pg_state_is(state, "40P01") ? "deadlock detected" : "serialization failure",
                     state, *retries, PG_RETRIES);
    return 1;
}

/* Fill err with code and a formatted, password-free message. */
DRV_DEFINE_ERR(pg_err)

static int pg_oom(trifle_conn *c, trifle_error *err)
{
    return drv_oom(c->host, err);
}

/* libpq's multi-line text as one line: lines trimmed, `LOCATION:` lines dropped, "; " between. */
static void pg_oneline(char *out, size_t size, const char *text)
{
    size_t o = 0;
    const char *p = text != NULL ? text : "";

    while (*p != '\0' && o + 1 < size) {
        size_t n = strcspn(p, "\n");
        const char *q = p;
        while (n > 0 && (*q == ' ' || *q == '\t')) {
            q++;
            n--;
        }
        while (n > 0 && (q[n - 1] == ' ' || q[n - 1] == '\r' || q[n - 1] == '\t'))
            n--;
        if (n > 0 && strncmp(q, "LOCATION:", 9) != 0) {
            if (o > 0 && o + 2 < size) {
                out[o++] = ';';
                out[o++] = ' ';
            }
            if (n > size - 1 - o)
                n = size - 1 - o;
            memcpy(out + o, q, n);
            o += n;
        }
        p += strcspn(p, "\n");
        if (*p == '\n')
            p++;
    }
    out[o] = '\0';
}

/* The SQLSTATE in a verbose connection message (`FATAL:  28P01: password ...`), or "". */
static void pg_msg_sqlstate(const char *msg, char state[6])
{
    const char *p;

    state[0] = '\0';
    for (p = msg; p != NULL && (p = strstr(p, ":  ")) != NULL; p++) {
        const char *s = p + 3;
        int i;
        for (i = 0; i < 5; i++)
            if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')))
                break;
        if (i == 5 && s[5] == ':' && s[6] == ' ') {
            memcpy(state, s, 5);
            state[5] = '\0';
            return;
        }
    }
}

/* A failed connect or reset: refused/unreachable → ECONN, credentials → EAUTH, a missing
 * database or a bad option → ECONFIG. */
static int pg_conn_fail(trifle_conn *c, trifle_error *err)
{
    char text[400], state[6] = "";
    const char *raw = c->pg != NULL ? PQerrorMessage(c->pg) : "out of memory";
    int code = TRIFLE_ECONN;

    pg_oneline(text, sizeof(text), raw);
    pg_msg_sqlstate(raw, state);
    if (pg_state_is(state, "28P01") || pg_state_is(state, "28000") ||
        strstr(raw, "fe_sendauth") != NULL)
        code = TRIFLE_EAUTH;
    else if (pg_state_is(state, "3D000"))
        code = TRIFLE_ECONFIG;
    else if (state[0] == '\0' && strncmp(raw, "invalid ", 8) == 0)
        code = TRIFLE_ECONFIG; /* libpq's option checks: invalid port number, sslmode value ... */
    else if (strstr(raw, "timeout expired") != NULL)
        code = TRIFLE_ETIMEDOUT;
    return pg_err(c, err, code, pg_sqlstate_code(state), "cannot connect to postgres: %s", text);
}

/* A server error on a working connection (or a client-side failure when res is NULL). `table` is
 * named when the statement's table is missing. */
static int pg_result_fail(trifle_conn *c, const PGresult *res, const char *table, trifle_error *err)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char text[300];
    int code = TRIFLE_EDRIVER;

    if (msg == NULL)
        msg = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(c->pg);
    pg_oneline(text, sizeof(text), msg);
    if (state == NULL)
        return pg_err(c, err, PQstatus(c->pg) == CONNECTION_OK ? TRIFLE_EDRIVER : TRIFLE_ECONN, 0,
                      "postgres: %s", text);
    if (strcmp(state, "42P01") == 0 && table != NULL)
        return pg_err(c, err, TRIFLE_ECONFIG, pg_sqlstate_code(state),
                      "table %s does not exist (run \"trifle setup\")", table);
    if (strcmp(state, "28P01") == 0 || strcmp(state, "28000") == 0 || strcmp(state, "42501") == 0)
        code = TRIFLE_EAUTH;
    else if (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0 ||
             strcmp(state, "55P03") == 0)
        code = TRIFLE_EBUSY;
    else if (strcmp(state, "57014") == 0)
        code = TRIFLE_ETIMEDOUT;
    else if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
             strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0 ||
             strcmp(state, "53300") == 0)
        code = TRIFLE_ECONN;
    else if (strcmp(state, "22001") == 0)
        code = TRIFLE_EDATA;
    return pg_err(c, err, code, pg_sqlstate_code(state), "postgres error %s: %s", state, text);
}

/* ---------------------------------------------------------------------------------------------
 * Time: proleptic Gregorian UTC, without the C library (no TZ, no locale).
 */

static int pg_at_ok(int64_t at)
{
    return at >= PG_AT_MIN && at <= PG_AT_MAX;
}

/* ---------------------------------------------------------------------------------------------
 * Stored JSONB text → numeric leaves
 *
 * The server prints JSONB itself, so the text is always valid JSON; the reader is strict anyway
 * and stops at the first thing it does not understand. Objects are flattened to dotted paths,
 * numbers become doubles, everything else is skipped. Numbers are printed by PostgreSQL's numeric
 * output (no exponent: 5e-324 arrives as 0.000...5); a number that does not fit a double is
 * skipped like any non-numeric value.
 */

/* Call leaf() for each numeric leaf of the JSON object text[0..len) (drv_json_flatten). */
static int pg_flatten(trifle_conn *c, const char *text, size_t len, drv_leaf_fn leaf, void *ctx)
{
    return drv_json_flatten(c->host, &c->path, PG_MAX_DEPTH, text, len, leaf, ctx);
}

/* ---------------------------------------------------------------------------------------------
 * Connection
 */

/* Notices (`relation ... already exists, skipping`), which libpq would print on stderr, go to
 * the log. An error that arrives while the connection is idle is delivered here too: a FATAL one
 * (57P01 when the server shuts down or pg_terminate_backend() ends us) dooms the connection. */
static void pg_notice(void *arg, const PGresult *res)
{
    trifle_conn *c = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorMessage(res);
    size_t n = strlen(msg);

    if (sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
        c->doomed = 1;
    while (n > 0 && msg[n - 1] == '\n')
        n--;
    if (c->host->log != NULL)
        c->host->log(c->doomed ? TRIFLE_LOG_INFO : TRIFLE_LOG_DEBUG, PG_NAME, "%.*s",
                     (int)(n < 1000 ? n : 1000), msg);
}

static int64_t pg_now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Drive a started connect (reset = 0) or reset (reset = 1) to its end within c->connect_ms. */
static int pg_connect_wait(trifle_conn *c, int reset, trifle_error *err)
{
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    int64_t deadline = c->connect_ms >= 0 ? pg_now_ms() + c->connect_ms : 0;

    if (PQstatus(c->pg) == CONNECTION_BAD)
        return pg_conn_fail(c, err);
    for (;;) {
        struct pollfd pfd;
        int wait = -1, r;

        if (st == PGRES_POLLING_OK)
            return 0;
        if (st == PGRES_POLLING_FAILED)
            return pg_conn_fail(c, err);
        if (c->connect_ms >= 0) {
            int64_t left = deadline - pg_now_ms();
            if (left <= 0)
                break;
            wait = left > 60000 ? 60000 : (int)left;
        }
        pfd.fd = PQsocket(c->pg);
        pfd.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        pfd.revents = 0;
        if (pfd.fd < 0)
            return pg_conn_fail(c, err);
        r = poll(&pfd, 1, wait);
        if (r < 0 && errno != EINTR)
            return pg_err(c, err, TRIFLE_ECONN, 0, "cannot connect to postgres: poll failed");
        if (r > 0)
            st = reset ? PQresetPoll(c->pg) : PQconnectPoll(c->pg);
    }
    /* leave a bad connection behind: the next call resets it */
    return pg_err(c, err, TRIFLE_ETIMEDOUT, 0,
                  "cannot connect to postgres: timeout expired after %d ms", c->connect_ms);
}

/* Is the connection usable? A connection the server closed while we were idle (restart,
 * pg_terminate_backend) has its FATAL message and end-of-file waiting in the socket: read them
 * without blocking, which turns the status to CONNECTION_BAD. */
static int pg_alive(trifle_conn *c)
{
    int i;

    if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK || c->doomed)
        return 0;
    for (i = 0; i < 4; i++) {
        struct pollfd pfd;
        PGnotify *note;

        pfd.fd = PQsocket(c->pg);
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (pfd.fd < 0)
            return 0;
        if (poll(&pfd, 1, 0) <= 0)
            break;
        if (!PQconsumeInput(c->pg))
            return 0;
        (void)PQisBusy(c->pg); /* parses what arrived: an idle-time error goes to pg_notice */
        while ((note = PQnotifies(c->pg)) != NULL)
            PQfreemem(note);
        if (PQstatus(c->pg) != CONNECTION_OK || c->doomed)
            return 0;
    }
    return PQstatus(c->pg) == CONNECTION_OK;
}

static int pg_reconnect(trifle_conn *c, trifle_error *err)
{
    c->prepared = 0; /* a new session knows none of our statements */
    c->doomed = 0;
    if (c->host->log != NULL)
        c->host->log(TRIFLE_LOG_INFO, PG_NAME, "connection lost; reconnecting");
    if (!PQresetStart(c->pg))
        return pg_conn_fail(c, err);
    return pg_connect_wait(c, 1, err);
}

static void pg_close(trifle_conn *c)
{
    size_t i;

    if (c == NULL)
        return;
    if (c->pg != NULL)
        PQfinish(c->pg);
    drv_buf_free(&c->sql);
    for (i = 0; i < sizeof(c->par) / sizeof(c->par[0]); i++)
        drv_buf_free(&c->par[i]);
    drv_buf_free(&c->path);
    c->host->free(c->ord);
    drv_buckets_free(&c->bk, c->host);
    if (c->secret != NULL)
        memset(c->secret, 0, strlen(c->secret));
    c->host->free(c->secret);
    c->host->free(c);
}

/* Is name a libpq connection keyword? */
static int pg_keyword_known(const PQconninfoOption *defs, const char *name)
{
    for (; defs != NULL && defs->keyword != NULL; defs++)
        if (strcmp(defs->keyword, name) == 0)
            return 1;
    return 0;
}

static int pg_set_secret(trifle_conn *c, const char *pw)
{
    size_t n;

    if (pw == NULL || pw[0] == '\0')
        return 0;
    n = strlen(pw);
    if (c->secret != NULL) {
        memset(c->secret, 0, strlen(c->secret));
        c->host->free(c->secret);
    }
    if ((c->secret = c->host->alloc(n + 1)) == NULL)
        return -1;
    memcpy(c->secret, pw, n + 1);
    return 0;
}

/* connect_timeout of the connection's options: unset → the default, 0 → none, else at least 2 s
 * (as libpq's own rule). */
static void pg_connect_timeout(trifle_conn *c)
{
    PQconninfoOption *opts = PQconninfo(c->pg), *o;

    c->connect_ms = PG_CONNECT_TIMEOUT_MS;
    for (o = opts; o != NULL && o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "connect_timeout") == 0 && o->val != NULL && o->val[0] != '\0') {
            long s = strtol(o->val, NULL, 10);
            c->connect_ms = s <= 0 ? -1 : s < 2 ? 2000 : s > 86400 ? 86400000 : (int)s * 1000;
        }
    }
    PQconninfoFree(opts);
}

static int pg_open(trifle_conn **out, const trifle_host_api *host, const char *url,
                   const trifle_open_params *params, const char *const *opts, trifle_error *err)
{
    static const char *const prefixes[] = {"postgres://", "postgresql://", NULL};
    const char *table = "trifle_stats", *ping_table = NULL, *bad;
    const char **kw = NULL, **val = NULL;
    PQconninfoOption *parsed = NULL, *defs = NULL, *o;
    trifle_conn *c = NULL;
    char *perr = NULL;
    size_t i, n_opts = 0, k = 0;
    int mode, rc;

    if (out == NULL || host == NULL)
        return TRIFLE_EINVAL;
    *out = NULL;
    if ((rc = drv_open_url(host, params, url, prefixes, "postgres:// or postgresql://", &mode,
                           err)) != 0)
        return rc;
    if ((c = drv_calloc(host, sizeof(*c), err)) == NULL)
        return TRIFLE_ENOMEM;
    c->host = host;
    drv_buf_init(&c->sql, host, &c->oom);
    for (i = 0; i < sizeof(c->par) / sizeof(c->par[0]); i++)
        drv_buf_init(&c->par[i], host, &c->oom);
    drv_buf_init(&c->path, host, &c->oom);

    /* the URL itself: libpq's parser, which also gives us the password to mask */
    parsed = PQconninfoParse(url, &perr);
    if (parsed == NULL) {
        char text[300];
        if (perr == NULL) {
            rc = pg_oom(c, err);
            goto done;
        }
        // NOLINTNEXTLINE(readability-suspicious-call-argument): (out, size, text)
        pg_oneline(text, sizeof(text), perr);
        rc = pg_err(c, err, TRIFLE_ECONFIG, 0, "invalid driver URL: %s", text);
        goto done;
    }
    for (o = parsed; o->keyword != NULL; o++)
        if (strcmp(o->keyword, "password") == 0 && pg_set_secret(c, o->val) != 0) {
            rc = pg_oom(c, err);
            goto done;
        }

    for (i = 0; opts != NULL && opts[i] != NULL; i += 2)
        n_opts++;
    kw = host->alloc((n_opts + 4) * sizeof(*kw));
    val = host->alloc((n_opts + 4) * sizeof(*val));
    if (kw == NULL || val == NULL) {
        rc = pg_oom(c, err);
        goto done;
    }
    /* keywords are applied in order: defaults, then the URL, then URL parameters, then what the
     * driver cannot work without */
    kw[k] = "fallback_application_name";
    val[k++] = "trifle-c";
    kw[k] = "dbname";
    val[k++] = url;
    for (i = 0; opts != NULL && opts[i] != NULL; i += 2) {
        const char *name = opts[i], *value = opts[i + 1] != NULL ? opts[i + 1] : "";
        if (!drv_opt_sql(name, value, &table, &ping_table)) { /* a libpq connection keyword */
            if (defs == NULL && (defs = PQconndefaults()) == NULL) {
                rc = pg_oom(c, err);
                goto done;
            }
            if (!pg_keyword_known(defs, name)) {
                rc = pg_err(c, err, TRIFLE_ECONFIG, 0, "invalid driver URL: unknown parameter %s",
                            name);
                goto done;
            }
            if (strcmp(name, "client_encoding") == 0 && strcmp(value, "UTF8") != 0 &&
                strcmp(value, "utf8") != 0 && strcmp(value, "UTF-8") != 0) {
                rc = pg_err(c, err, TRIFLE_ECONFIG, 0,
                            "invalid driver URL: client_encoding must be UTF8 (keys are UTF-8)");
                goto done;
            }
            if (strcmp(name, "password") == 0 && pg_set_secret(c, value) != 0) {
                rc = pg_oom(c, err);
                goto done;
            }
            kw[k] = name;
            val[k++] = value;
        }
        if (opts[i + 1] == NULL)
            break;
    }
    /* keys and paths are UTF-8 (SPEC §3.1, §4.1) */
    kw[k] = "client_encoding";
    val[k++] = "UTF8";
    kw[k] = NULL;
    val[k] = NULL;
    if ((bad = drv_table_bad(table, ping_table, PG_NAME_MAX)) != NULL) {
        rc = pg_err(c, err, TRIFLE_ECONFIG, 0, "invalid table name: %s", bad);
        goto done;
    }
    c->mode = mode;
    drv_table_names(c->table, c->ping_table, table, ping_table);
    memcpy(c->marks_table, c->table, strlen(c->table));
    memcpy(c->marks_table + strlen(c->table), "_marks", 7);

    c->pg = PQconnectStartParams(kw, val, 1);
    if (c->pg == NULL) {
        rc = pg_oom(c, err);
        goto done;
    }
    /* SQLSTATEs in connection messages (`FATAL:  28P01: ...`), so failures map exactly */
    (void)PQsetErrorVerbosity(c->pg, PQERRORS_VERBOSE);
    (void)PQsetNoticeReceiver(c->pg, pg_notice, c);
    pg_connect_timeout(c);
    rc = pg_connect_wait(c, 0, err);
    if (rc == 0 && PQserverVersion(c->pg) < PG_MIN_SERVER)
        rc = pg_err(c, err, TRIFLE_ECONFIG, 0,
                    "postgres server %d is too old: 9.5 or newer is required",
                    PQserverVersion(c->pg));

done:
    if (perr != NULL)
        PQfreemem(perr);
    PQconninfoFree(parsed);
    PQconninfoFree(defs);
    host->free(kw);
    host->free(val);
    if (rc != 0) {
        pg_close(c);
        return rc;
    }
    *out = c;
    return TRIFLE_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Statements (SPEC §7.6, ERRATA minor 15: $1 key, $2 granularity, $3 at, $4 data)
 */

static const char *const pg_cols[] = {
    [TRIFLE_ID_FULL] = "key",
    [TRIFLE_ID_PARTIAL] = "key, at",
    [TRIFLE_ID_SEPARATED] = "key, granularity, at",
};

/* The text of statement st into c->sql (NUL-terminated); the number of parameters. */
static int pg_sql(trifle_conn *c, int st)
{
    static const char *const ucols[] = {
        [TRIFLE_ID_FULL] = "u.key",
        [TRIFLE_ID_PARTIAL] = "u.key, u.at",
        [TRIFLE_ID_SEPARATED] = "u.key, u.granularity, u.at",
    };
    static const char *const lock_arrays[] = {
        [TRIFLE_ID_FULL] = "$1::text[]",
        [TRIFLE_ID_PARTIAL] = "$1::text[], $2::timestamptz[]",
        [TRIFLE_ID_SEPARATED] = "$1::text[], $2::text[], $3::timestamptz[]",
    };
    static const char *const get[] = {
        [TRIFLE_ID_FULL] = " WHERE key = ANY($1::text[])",
        [TRIFLE_ID_PARTIAL] =
            " t JOIN unnest($1::text[], $2::timestamptz[]) AS u(key, at) ON t.key = u.key AND "
            "t.at = u.at",
        [TRIFLE_ID_SEPARATED] = " t JOIN unnest($1::text[], $2::text[], $3::timestamptz[]) AS "
                                "u(key, granularity, at) ON t.key = u.key AND t.granularity = "
                                "u.granularity AND t.at = u.at",
    };
    static const char *const get_head[] = {
        [TRIFLE_ID_FULL] = "SELECT key, data FROM ",
        [TRIFLE_ID_PARTIAL] = "SELECT t.key, floor(extract(epoch FROM t.at))::bigint AS at, "
                              "t.data FROM ",
        [TRIFLE_ID_SEPARATED] = "SELECT t.key, t.granularity, floor(extract(epoch FROM "
                                "t.at))::bigint AS at, t.data FROM ",
    };
    /* the statements with one table and a fixed text around it */
    static const struct {
        const char *head, *tail;
        int n;
    } simple[] = {
        [PG_ST_PING] = {"INSERT INTO ",
                        " (key, at, data) VALUES ($1, $2, $3::jsonb) ON CONFLICT (key) DO UPDATE "
                        "SET at = EXCLUDED.at, data = EXCLUDED.data",
                        3},
        [PG_ST_SCAN] = {"SELECT floor(extract(epoch FROM at))::bigint, data FROM ",
                        " WHERE key = $1 ORDER BY at DESC LIMIT 1", 1},
        [PG_ST_MARK] = {"INSERT INTO ",
                        " (name, seq) VALUES ($1, $2::bigint) ON CONFLICT (name) DO UPDATE SET "
                        "seq = EXCLUDED.seq",
                        2},
        [PG_ST_MARK_READ] = {"SELECT seq FROM ", " WHERE name = $1", 1},
    };
    drv_buf *b = &c->sql;
    int m = c->mode, n = m == TRIFLE_ID_FULL ? 2 : m == TRIFLE_ID_PARTIAL ? 3 : 4;

    b->len = 0;
    switch (st) {
    case PG_ST_INC:
    case PG_ST_SET:
    case PG_ST_LOCK:
        /* INSERT INTO <table> AS t (<cols>, data) SELECT u.<cols>, <data> FROM unnest(<arrays>)
         * AS u(<cols>[, data]) ON CONFLICT (<cols>) ...; LOCK takes no data array, and its ON
         * CONFLICT DO UPDATE locks the rows its WHERE refuses too, without writing them */
        drv_buf_puts(b, "INSERT INTO ");
        drv_buf_puts(b, c->table);
        drv_buf_puts(b, " AS t (");
        drv_buf_puts(b, pg_cols[m]);
        drv_buf_puts(b, ", data) SELECT ");
        drv_buf_puts(b, ucols[m]);
        drv_buf_puts(b, st == PG_ST_LOCK ? ", '{}'::jsonb FROM unnest(" : ", u.data FROM unnest(");
        drv_buf_puts(b, lock_arrays[m]);
        if (st != PG_ST_LOCK) {
            drv_buf_puts(b, ", $");
            drv_buf_putc(b, (char)('0' + n));
            drv_buf_puts(b, "::jsonb[]");
        }
        drv_buf_puts(b, ") AS u(");
        drv_buf_puts(b, pg_cols[m]);
        drv_buf_puts(b, st == PG_ST_LOCK ? ") ON CONFLICT (" : ", data) ON CONFLICT (");
        drv_buf_puts(b, pg_cols[m]);
        if (st == PG_ST_LOCK) {
            drv_buf_puts(b, ") DO UPDATE SET data = t.data WHERE false");
            n--;
        } else if (st == PG_ST_SET) {
            drv_buf_puts(b, ") DO UPDATE SET data = t.data || EXCLUDED.data");
        } else {
            drv_buf_puts(
                b, ") DO UPDATE SET data = t.data || (SELECT COALESCE(jsonb_object_agg(d.key, "
                   "(CASE WHEN jsonb_typeof(t.data -> d.key) = 'number' THEN (t.data ->> "
                   "d.key)::numeric ELSE 0 END) + (d.value #>> '{}')::numeric), '{}'::jsonb) "
                   "FROM jsonb_each(EXCLUDED.data) AS d)");
        }
        break;
    case PG_ST_GET:
        drv_buf_puts(b, get_head[m]);
        drv_buf_puts(b, c->table);
        drv_buf_puts(b, get[m]);
        n--;
        break;
    default: /* PING, SCAN, MARK, MARK_READ */
        drv_buf_puts(b, simple[st].head);
        drv_buf_puts(b, st == PG_ST_MARK || st == PG_ST_MARK_READ ? c->marks_table : c->ping_table);
        drv_buf_puts(b, simple[st].tail);
        n = simple[st].n;
        break;
    }
    drv_buf_putc(b, '\0');
    return n;
}

/* One request to the server. */
typedef struct pg_call {
    int st;          /* PG_ST_*, or -1 for the simple query `sql` */
    const char *sql; /* simple query text (several statements allowed) */
    int n;           /* parameters */
    const char *const *values;
    const int *lengths;
    const int *formats;
    const char *table; /* named when the statement's table is missing */
    int idempotent;    /* may be sent again after its reply was lost */
    int unknown;       /* out: sent, and the reply was lost */
} pg_call;

/* PQprepare st on the current session. 0, PG_LOST when the connection died, or an error. */
static int pg_prepare(trifle_conn *c, int st, const char *table, trifle_error *err)
{
    PGresult *r;
    int n, rc;

    n = pg_sql(c, st);
    if (c->oom)
        return pg_oom(c, err);
    r = PQprepare(c->pg, pg_st_names[st], c->sql.p, n, NULL);
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        c->prepared |= 1u << st;
        rc = 0;
    } else if (PQstatus(c->pg) != CONNECTION_OK) {
        rc = PG_LOST;
    } else if (r == NULL) {
        rc = pg_oom(c, err);
    } else {
        rc = pg_result_fail(c, r, table, err);
    }
    PQclear(r);
    return rc;
}

/*
 * Send q and wait for its outcome; on success *out is the result (the caller clears it). A
 * connection found dead before sending is reset once. Deadlock and serialisation failures are
 * retried PG_RETRIES times. A lost reply is retried on a new connection when q is idempotent or
 * the server said the statement failed; otherwise q->unknown is set and ECONN returned.
 */
static int pg_run(trifle_conn *c, pg_call *q, PGresult **out, trifle_error *err)
{
    int reconnected = 0, retries = 0, reprepared = 0, rc;

    *out = NULL;
    q->unknown = 0;
    for (;;) {
        PGresult *ok = NULL, *bad = NULL, *r;
        const char *state;
        int sent, known;

        if (!pg_alive(c)) {
            if (reconnected)
                return pg_err(c, err, TRIFLE_ECONN, 0, "connection to postgres lost");
            reconnected = 1;
            if ((rc = pg_reconnect(c, err)) != 0)
                return rc;
        }
        if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
            /* cannot happen with single statements; never write inside a stale transaction */
            PQclear(PQexec(c->pg, "ROLLBACK"));
        }
        if (q->st >= 0 && (c->prepared & (1u << q->st)) == 0) {
            rc = pg_prepare(c, q->st, q->table, err);
            if (rc == PG_LOST && !reconnected) {
                reconnected = 1;
                if ((rc = pg_reconnect(c, err)) != 0)
                    return rc;
                continue;
            }
            if (rc == PG_LOST)
                return pg_err(c, err, TRIFLE_ECONN, 0, "connection to postgres lost");
            if (rc != 0)
                return rc;
        }
        if (q->st >= 0)
            sent = PQsendQueryPrepared(c->pg, pg_st_names[q->st], q->n, q->values, q->lengths,
                                       q->formats, 0);
        else
            sent = PQsendQuery(c->pg, q->sql);
        if (!sent) {
            /* nothing reached the server (a Sync was not delivered): retry on a new session */
            if (PQstatus(c->pg) != CONNECTION_OK && !reconnected) {
                reconnected = 1;
                if ((rc = pg_reconnect(c, err)) != 0)
                    return rc;
                continue;
            }
            return pg_result_fail(c, NULL, q->table, err);
        }
        while ((r = PQgetResult(c->pg)) != NULL) {
            ExecStatusType s = PQresultStatus(r);
            if ((s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) && ok == NULL && bad == NULL)
                ok = r;
            else if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && bad == NULL)
                bad = r;
            else
                PQclear(r);
        }
        if (PQstatus(c->pg) == CONNECTION_OK && bad == NULL) {
            if (ok == NULL)
                return pg_result_fail(c, NULL, q->table, err);
            *out = ok;
            return 0;
        }
        state = bad != NULL ? PQresultErrorField(bad, PG_DIAG_SQLSTATE) : NULL;
        if (PQstatus(c->pg) != CONNECTION_OK) {
            /* the server reported the statement failed before it completed: nothing applied */
            known = ok == NULL && state != NULL;
            if ((q->idempotent || known) && !reconnected) {
                PQclear(ok);
                PQclear(bad);
                reconnected = 1;
                if ((rc = pg_reconnect(c, err)) != 0)
                    return rc;
                continue;
            }
            q->unknown = !known && !q->idempotent;
            {
                char text[300];
                pg_oneline(text, sizeof(text),
                           bad != NULL ? PQresultErrorMessage(bad) : PQerrorMessage(c->pg));
                rc = pg_err(c, err, TRIFLE_ECONN, pg_sqlstate_code(state),
                            "connection to postgres lost%s: %s",
                            q->unknown ? " (outcome unknown)" : "", text);
            }
            PQclear(ok);
            PQclear(bad);
            return rc;
        }
        PQclear(ok);
        if (pg_state_is(state, "26000") && q->st >= 0 && !reprepared) {
            /* our statement is gone (DISCARD ALL by a pooler): prepare it again, once */
            reprepared = 1;
            c->prepared &= ~(1u << q->st);
            PQclear(bad);
            continue;
        }
        if (pg_retry_conflict(c, state, &retries)) {
            PQclear(bad);
            continue;
        }
        rc = pg_result_fail(c, bad, q->table, err);
        PQclear(bad);
        return rc;
    }
}

/* ---------------------------------------------------------------------------------------------
 * setup / drop
 */

/* One transaction holding an advisory lock, so concurrent setups (and drops) of one table never
 * race inside CREATE TABLE IF NOT EXISTS (which can fail with 23505 on pg_type). */
static void pg_lock_sql(trifle_conn *c)
{
    c->sql.len = 0;
    drv_buf_puts(&c->sql, "SELECT pg_advisory_xact_lock(1953654380, hashtext('");
    drv_buf_puts(&c->sql, c->table);
    drv_buf_puts(&c->sql, "'));");
}

/* Start the DDL of setup or drop in c->sql: the advisory lock, then head and the data table. */
static void pg_ddl_start(trifle_conn *c, const char *head)
{
    c->oom = 0;
    pg_lock_sql(c);
    drv_buf_puts(&c->sql, head);
    drv_buf_puts(&c->sql, c->table);
}

static int pg_simple(trifle_conn *c, const char *table, trifle_error *err)
{
    pg_call q;
    PGresult *r;
    int rc;

    drv_buf_putc(&c->sql, '\0');
    if (c->oom)
        return pg_oom(c, err);
    memset(&q, 0, sizeof(q));
    q.st = -1;
    q.sql = c->sql.p;
    q.table = table;
    q.idempotent = 1;
    rc = pg_run(c, &q, &r, err);
    PQclear(r);
    return rc;
}

/* Append the DDL of the journal mark table (ABI 1.1) to c->sql. */
static void pg_marks_sql(trifle_conn *c)
{
    drv_buf_puts(&c->sql, "CREATE TABLE IF NOT EXISTS ");
    drv_buf_puts(&c->sql, c->marks_table);
    drv_buf_puts(&c->sql, " (name TEXT PRIMARY KEY, seq BIGINT NOT NULL);");
}

static int pg_setup(trifle_conn *c, trifle_error *err)
{
    static const char *const schema[] = {
        [TRIFLE_ID_FULL] = " (key VARCHAR(255) PRIMARY KEY, data JSONB NOT NULL DEFAULT "
                           "'{}'::jsonb);",
        [TRIFLE_ID_PARTIAL] = " (key VARCHAR(255) NOT NULL, at TIMESTAMPTZ NOT NULL, data JSONB "
                              "NOT NULL DEFAULT '{}'::jsonb, PRIMARY KEY (key, at));",
        [TRIFLE_ID_SEPARATED] = " (key VARCHAR(255) NOT NULL, granularity VARCHAR(255) NOT NULL, "
                                "at TIMESTAMPTZ NOT NULL, data JSONB NOT NULL DEFAULT "
                                "'{}'::jsonb, PRIMARY KEY (key, granularity, at));",
    };
    int rc;

    if (c == NULL)
        return TRIFLE_EINVAL;
    pg_ddl_start(c, "CREATE TABLE IF NOT EXISTS ");
    drv_buf_puts(&c->sql, schema[c->mode]);
    drv_buf_puts(&c->sql, "CREATE TABLE IF NOT EXISTS ");
    drv_buf_puts(&c->sql, c->ping_table);
    drv_buf_puts(&c->sql, " (key VARCHAR(255) PRIMARY KEY, at TIMESTAMPTZ NOT NULL, data JSONB NOT "
                          "NULL DEFAULT '{}'::jsonb);");
    pg_marks_sql(c);
    if ((rc = pg_simple(c, NULL, err)) == 0)
        c->marks_ready = 1;
    return rc;
}

static int pg_drop(trifle_conn *c, trifle_error *err)
{
    if (c == NULL)
        return TRIFLE_EINVAL;
    pg_ddl_start(c, "DROP TABLE IF EXISTS ");
    if (strcmp(c->table, c->ping_table) != 0) {
        drv_buf_puts(&c->sql, ", ");
        drv_buf_puts(&c->sql, c->ping_table);
    }
    if (strcmp(c->marks_table, c->ping_table) != 0) {
        drv_buf_puts(&c->sql, ", ");
        drv_buf_puts(&c->sql, c->marks_table);
    }
    drv_buf_putc(&c->sql, ';');
    c->marks_ready = 0;
    return pg_simple(c, NULL, err);
}

/* ---------------------------------------------------------------------------------------------
 * inc / set
 */

/* Parse a bigint column. */
static int pg_parse_int64(const char *s, int64_t *out)
{
    int neg = *s == '-';
    uint64_t v = 0;

    s += neg;
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_C(1) << 62) / 5)
            return 0;
        v = v * 10 + (unsigned)(*s - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return 0;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 1;
}

static int pg_ord_cmp(const void *pa, const void *pb)
{
    return drv_bucket_cmp(&((const pg_ord *)pa)->e->bucket, &((const pg_ord *)pb)->e->bucket);
}

/* Check the items before anything is sent. EDATA (with *failed) for an identifier that cannot be
 * stored (ERRATA I4), EINVAL for a call that breaks the ABI contract. */
static int pg_check_items(trifle_conn *c, const trifle_entry *items, size_t n, ptrdiff_t *failed,
                          trifle_error *err)
{
    size_t i, l;

    if (n > INT32_MAX)
        return pg_err(c, err, TRIFLE_EINVAL, 0, "too many items in one call: %zu", n);
    for (i = 0; i < n; i++) {
        const trifle_bucket *b = &items[i].bucket;
        if (b->id == NULL || (c->mode == TRIFLE_ID_SEPARATED && b->granularity == NULL) ||
            items[i].leaves == NULL || items[i].n_leaves == 0)
            return pg_err(c, err, TRIFLE_EINVAL, 0, "item %zu is incomplete", i);
        if (tu_utf8_count(b->id) > PG_ID_MAX ||
            (c->mode == TRIFLE_ID_SEPARATED && tu_utf8_count(b->granularity) > PG_ID_MAX)) {
            *failed = (ptrdiff_t)i;
            return pg_err(c, err, TRIFLE_EDATA, 0,
                          "identifier of item %zu is longer than %d characters: %.64s...", i,
                          PG_ID_MAX, b->id);
        }
        if (c->mode != TRIFLE_ID_FULL && !pg_at_ok(b->at))
            return pg_err(c, err, TRIFLE_EINVAL, 0, "time out of range: %lld (item %zu)",
                          (long long)b->at, i);
        for (l = 0; l < items[i].n_leaves; l++) {
            const trifle_leaf *lf = &items[i].leaves[l];
            if (lf->path == NULL || lf->path[0] == '\0' || !isfinite(lf->value) ||
                (l > 0 && strcmp(items[i].leaves[l - 1].path, lf->path) >= 0))
                return pg_err(c, err, TRIFLE_EINVAL, 0,
                              "leaves of item %zu are not finite, unique and sorted by path", i);
        }
    }
    return 0;
}

/* The parameters of the INC/SET statement for items[0..n) (n >= 1) into c->par, values and
 * lengths (*np of them): the items are checked (EDATA sets *failed), sorted by identifier into
 * c->ord so every writer takes its row locks in one order, and checked for repeated buckets. */
static int pg_write_params(trifle_conn *c, const trifle_entry *items, size_t n, ptrdiff_t *failed,
                           const char *values[4], int lengths[4], int *np, trifle_error *err)
{
    const int m = c->mode;
    drv_buf *data;
    size_t i;
    int rc;

    if ((rc = pg_check_items(c, items, n, failed, err)) != 0)
        return rc;
    if (drv_array_reserve(c->host, (void **)&c->ord, &c->cap_ord, n, sizeof(*c->ord)) != 0)
        return pg_oom(c, err);
    for (i = 0; i < n; i++) {
        c->ord[i].e = &items[i];
        c->ord[i].i = i;
    }
    /* one lock order for every writer: by identifier */
    qsort(c->ord, n, sizeof(*c->ord), pg_ord_cmp);
    for (i = 1; i < n; i++) {
        if (drv_bucket_same(m, &c->ord[i - 1].e->bucket, &c->ord[i].e->bucket))
            return pg_err(c, err, TRIFLE_EINVAL, 0, "items %zu and %zu name the same bucket %s",
                          c->ord[i - 1].i, c->ord[i].i, c->ord[i].e->bucket.id);
    }

    *np = m == TRIFLE_ID_FULL ? 2 : m == TRIFLE_ID_PARTIAL ? 3 : 4;
    pg_array_begin(&c->par[0], PG_OID_TEXT, n);
    if (m == TRIFLE_ID_SEPARATED)
        pg_array_begin(&c->par[1], PG_OID_TEXT, n);
    if (m != TRIFLE_ID_FULL)
        pg_array_begin(&c->par[*np - 2], PG_OID_TIMESTAMPTZ, n);
    data = &c->par[*np - 1];
    pg_array_begin(data, PG_OID_JSONB, n);
    for (i = 0; i < n && !c->oom; i++) {
        const trifle_entry *e = c->ord[i].e;
        size_t at;

        pg_array_text(&c->par[0], e->bucket.id, strlen(e->bucket.id));
        if (m == TRIFLE_ID_SEPARATED)
            pg_array_text(&c->par[1], e->bucket.granularity, strlen(e->bucket.granularity));
        if (m != TRIFLE_ID_FULL)
            pg_array_at(&c->par[*np - 2], e->bucket.at);
        at = data->len;
        pg_put_u32(data, 0);   /* patched below */
        drv_buf_putc(data, 1); /* jsonb's binary format version */
        drv_buf_putc(data, '{');
        drv_buf_put_members(data, &c->path, "", e->leaves, e->n_leaves, drv_buf_put_jstr);
        drv_buf_putc(data, '}');
        if (!c->oom)
            pg_patch_u32(data, at, (uint32_t)(data->len - at - 4));
    }
    if (c->oom)
        return pg_oom(c, err);
    for (i = 0; i < (size_t)*np; i++) {
        if (c->par[i].len > INT32_MAX)
            return pg_err(c, err, TRIFLE_EINVAL, 0, "batch of %zu items is too large to send", n);
        values[i] = c->par[i].p;
        lengths[i] = (int)c->par[i].len;
    }
    return 0;
}

static const int pg_binary[4] = {1, 1, 1, 1};

/* The parameters of the LOCK statement: the buckets of both lists (checked already), sorted by
 * identifier like every write, a bucket named in both lists once. */
static int pg_lock_params(trifle_conn *c, const trifle_entry *set_items, size_t n_set,
                          const trifle_entry *inc_items, size_t n_inc, const char *values[4],
                          int lengths[4], int *np, trifle_error *err)
{
    const int m = c->mode;
    size_t n = n_set + n_inc, i, nd = 0;

    if (drv_array_reserve(c->host, (void **)&c->ord, &c->cap_ord, n, sizeof(*c->ord)) != 0)
        return pg_oom(c, err);
    for (i = 0; i < n; i++) {
        c->ord[i].e = i < n_set ? &set_items[i] : &inc_items[i - n_set];
        c->ord[i].i = i;
    }
    qsort(c->ord, n, sizeof(*c->ord), pg_ord_cmp);
    *np = m == TRIFLE_ID_FULL ? 1 : m == TRIFLE_ID_PARTIAL ? 2 : 3;
    pg_array_begin(&c->par[0], PG_OID_TEXT, 0); /* element counts are patched below */
    if (m == TRIFLE_ID_SEPARATED)
        pg_array_begin(&c->par[1], PG_OID_TEXT, 0);
    if (m != TRIFLE_ID_FULL)
        pg_array_begin(&c->par[*np - 1], PG_OID_TIMESTAMPTZ, 0);
    for (i = 0; i < n; i++) {
        const trifle_bucket *b = &c->ord[i].e->bucket;
        if (i > 0 && drv_bucket_same(m, &c->ord[i - 1].e->bucket, b))
            continue;
        nd++;
        pg_array_text(&c->par[0], b->id, strlen(b->id));
        if (m == TRIFLE_ID_SEPARATED)
            pg_array_text(&c->par[1], b->granularity, strlen(b->granularity));
        if (m != TRIFLE_ID_FULL)
            pg_array_at(&c->par[*np - 1], b->at);
    }
    if (c->oom)
        return pg_oom(c, err);
    for (i = 0; i < (size_t)*np; i++) {
        if (c->par[i].len > INT32_MAX)
            return pg_err(c, err, TRIFLE_EINVAL, 0, "batch of %zu items is too large to send", n);
        pg_patch_u32(&c->par[i], 12, (uint32_t)nd);
        values[i] = c->par[i].p;
        lengths[i] = (int)c->par[i].len;
    }
    return 0;
}

static int pg_write(trifle_conn *c, const trifle_entry *items, size_t n, int is_set,
                    trifle_write_result *res, trifle_error *err)
{
    const char *values[4];
    int lengths[4];
    ptrdiff_t failed = -1;
    PGresult *r = NULL;
    pg_call q;
    int rc, np = 0;

    if (c == NULL || (n > 0 && items == NULL))
        return TRIFLE_EINVAL;
    if (n == 0)
        return TRIFLE_OK;
    c->oom = 0;
    memset(&q, 0, sizeof(q));
    if ((rc = pg_write_params(c, items, n, &failed, values, lengths, &np, err)) != 0)
        goto done;
    q.st = is_set ? PG_ST_SET : PG_ST_INC;
    q.n = np;
    q.values = values;
    q.lengths = lengths;
    q.formats = pg_binary;
    q.table = c->table;
    rc = pg_run(c, &q, &r, err);
    PQclear(r);
    if (rc == TRIFLE_EDATA && n == 1)
        failed = 0; /* value too long (a column narrower than ours): the one item is at fault */

done:
    if (rc != 0)
        TRIFLE_WRITE_RESULT_SET(res, 0, failed, q.unknown);
    return rc;
}

DRV_DEFINE_INC_SET(pg_inc, pg_set, pg_write)

/* ---------------------------------------------------------------------------------------------
 * Journal marks (ABI 1.1): the table "<table>_marks" (name TEXT PRIMARY KEY, seq BIGINT NOT
 * NULL), created by setup and, for a database set up by an older version, once per connection by
 * write_marked. write_marked is one explicit transaction: BEGIN, (with both lists) the LOCK
 * statement, the SET statement, the INC statement (the same statements as set and inc), the mark
 * upsert, COMMIT. A lone statement cannot do it: one statement cannot update a row twice (a bucket
 * may be in both lists). LOCK creates the missing rows and locks all of them in identifier order
 * first, so the two writing statements wait for nobody and the lock order stays the one every
 * inc and set uses.
 */

/* CREATE TABLE IF NOT EXISTS for the mark table, under setup's advisory lock. */
static int pg_marks_create(trifle_conn *c, trifle_error *err)
{
    int rc;

    pg_lock_sql(c);
    pg_marks_sql(c);
    if ((rc = pg_simple(c, NULL, err)) == 0)
        c->marks_ready = 1;
    return rc;
}

/* One statement inside write_marked's transaction: the prepared st with binary parameters, or
 * the simple query sql when st < 0. No retry here: on failure *state gets the SQLSTATE ("" when
 * there is none) and *lost says whether the connection died. */
static int pg_txn_exec(trifle_conn *c, int st, const char *sql, int n, const char *const *values,
                       const int *lengths, const int *formats, const char *table, char state[6],
                       int *lost, trifle_error *err)
{
    PGresult *r;
    ExecStatusType s;
    const char *sqlstate;
    int rc;

    state[0] = '\0';
    *lost = 0;
    r = st >= 0 ? PQexecPrepared(c->pg, pg_st_names[st], n, values, lengths, formats, 0)
                : PQexec(c->pg, sql);
    s = PQresultStatus(r);
    if ((s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) && PQstatus(c->pg) == CONNECTION_OK) {
        PQclear(r);
        return 0;
    }
    sqlstate = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (sqlstate != NULL && strlen(sqlstate) == 5)
        memcpy(state, sqlstate, 6);
    if (PQstatus(c->pg) != CONNECTION_OK) {
        char text[300];
        *lost = 1;
        pg_oneline(text, sizeof(text),
                   r != NULL && PQresultErrorMessage(r)[0] != '\0' ? PQresultErrorMessage(r)
                                                                   : PQerrorMessage(c->pg));
        rc = pg_err(c, err, TRIFLE_ECONN, pg_sqlstate_code(sqlstate),
                    "connection to postgres lost: %s", text);
    } else {
        rc = pg_result_fail(c, r, table, err);
    }
    PQclear(r);
    return rc;
}

/* Prepare what write_marked sends (outside its transaction, where a failed PREPARE would abort
 * it). 0, PG_LOST, or an error. */
static int pg_marked_prepare(trifle_conn *c, size_t n_set, size_t n_inc, trifle_error *err)
{
    int rc;

    if (n_set > 0 && !(c->prepared & (1u << PG_ST_SET)) &&
        (rc = pg_prepare(c, PG_ST_SET, c->table, err)) != 0)
        return rc;
    if (n_set > 0 && n_inc > 0 && !(c->prepared & (1u << PG_ST_LOCK)) &&
        (rc = pg_prepare(c, PG_ST_LOCK, c->table, err)) != 0)
        return rc;
    if (n_inc > 0 && !(c->prepared & (1u << PG_ST_INC)) &&
        (rc = pg_prepare(c, PG_ST_INC, c->table, err)) != 0)
        return rc;
    if (!(c->prepared & (1u << PG_ST_MARK)) &&
        (rc = pg_prepare(c, PG_ST_MARK, c->marks_table, err)) != 0)
        return rc;
    return 0;
}

/* In pg_marked_txn: the n items (from index first of the call on) through statement st
 * (PG_ST_SET or PG_ST_INC), nothing when n is 0. EDATA sets *failed. */
static int pg_marked_write(trifle_conn *c, int st, const trifle_entry *items, size_t n,
                           size_t first, const char *values[4], int lengths[4], ptrdiff_t *failed,
                           char state[6], int *lost, trifle_error *err)
{
    ptrdiff_t f = -1;
    int np = 0, rc;

    if (n == 0)
        return 0;
    if ((rc = pg_write_params(c, items, n, &f, values, lengths, &np, err)) == 0)
        rc = pg_txn_exec(c, st, NULL, np, values, lengths, pg_binary, c->table, state, lost, err);
    if (rc == TRIFLE_EDATA)
        *failed = f >= 0 ? (ptrdiff_t)first + f : n == 1 ? (ptrdiff_t)first : -1;
    return rc;
}

/* BEGIN, the SET statement, the INC statement, the mark, COMMIT: one attempt. *committing is set
 * once COMMIT is sent. EDATA sets *failed (set items first, then inc items). */
static int pg_marked_txn(trifle_conn *c, const trifle_entry *set_items, size_t n_set,
                         const trifle_entry *inc_items, size_t n_inc, const trifle_mark *mark,
                         ptrdiff_t *failed, char state[6], int *lost, int *committing,
                         trifle_error *err)
{
    const char *values[4];
    int lengths[4], np = 0, rc;
    char seq[24];

    *committing = 0;
    if ((rc = pg_txn_exec(c, -1, "BEGIN", 0, NULL, NULL, NULL, NULL, state, lost, err)) != 0)
        return rc;
    if (n_set > 0 && n_inc > 0) {
        /* Two statements would take their row locks in two sorted runs, and a concurrent writer
         * could hold a row of the second run while waiting for one of the first: lock (and
         * create) every row in one sorted run first, as a lone inc or set does. */
        if ((rc = pg_lock_params(c, set_items, n_set, inc_items, n_inc, values, lengths, &np,
                                 err)) != 0 ||
            (rc = pg_txn_exec(c, PG_ST_LOCK, NULL, np, values, lengths, pg_binary, c->table, state,
                              lost, err)) != 0)
            return rc;
    }
    if ((rc = pg_marked_write(c, PG_ST_SET, set_items, n_set, 0, values, lengths, failed, state,
                              lost, err)) != 0 ||
        (rc = pg_marked_write(c, PG_ST_INC, inc_items, n_inc, n_set, values, lengths, failed, state,
                              lost, err)) != 0)
        return rc;
    (void)snprintf(seq, sizeof(seq), "%llu", (unsigned long long)mark->seq);
    values[0] = mark->name;
    values[1] = seq;
    lengths[0] = (int)strlen(mark->name);
    lengths[1] = (int)strlen(seq);
    /* text parameters: the name as it is, the seq as decimal text */
    if ((rc = pg_txn_exec(c, PG_ST_MARK, NULL, 2, values, lengths, NULL, c->marks_table, state,
                          lost, err)) != 0)
        return rc;
    *committing = 1;
    return pg_txn_exec(c, -1, "COMMIT", 0, NULL, NULL, NULL, NULL, state, lost, err);
}

static int pg_write_marked(trifle_conn *c, const trifle_entry *set_items, size_t n_set,
                           const trifle_entry *inc_items, size_t n_inc, const trifle_mark *mark,
                           trifle_write_result *res, trifle_error *err)
{
    int reconnected = 0, retries = 0, reprepared = 0, unknown = 0, lost = 0, committing = 0, rc;
    ptrdiff_t failed = -1;
    char state[6] = "";

    if (c == NULL || mark == NULL || mark->name == NULL || mark->seq > (uint64_t)INT64_MAX ||
        (n_set > 0 && set_items == NULL) || (n_inc > 0 && inc_items == NULL))
        return TRIFLE_EINVAL;
    c->oom = 0;
    /* everything that can be refused without the server is refused before BEGIN */
    if ((rc = pg_check_items(c, set_items, n_set, &failed, err)) != 0)
        goto done;
    if ((rc = pg_check_items(c, inc_items, n_inc, &failed, err)) != 0) {
        if (failed >= 0)
            failed += (ptrdiff_t)n_set;
        goto done;
    }
    if (!c->marks_ready && (rc = pg_marks_create(c, err)) != 0)
        goto done;
    for (;;) {
        if (!pg_alive(c)) {
            if (reconnected) {
                rc = pg_err(c, err, TRIFLE_ECONN, 0, "connection to postgres lost");
                break;
            }
            reconnected = 1;
            if ((rc = pg_reconnect(c, err)) != 0)
                break;
        }
        if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
            PQclear(PQexec(c->pg, "ROLLBACK"));
        rc = pg_marked_prepare(c, n_set, n_inc, err);
        if (rc == PG_LOST && !reconnected) {
            reconnected = 1;
            if ((rc = pg_reconnect(c, err)) != 0)
                break;
            continue;
        }
        if (rc == PG_LOST) {
            rc = pg_err(c, err, TRIFLE_ECONN, 0, "connection to postgres lost");
            break;
        }
        if (rc != 0)
            break;
        failed = -1;
        rc = pg_marked_txn(c, set_items, n_set, inc_items, n_inc, mark, &failed, state, &lost,
                           &committing, err);
        if (rc == 0)
            break;
        if (lost && committing) {
            /* COMMIT was sent and its reply lost: the core reads the mark back to know */
            unknown = 1;
            break;
        }
        if (lost) {
            /* the transaction died uncommitted: one more try on a new session */
            if (reconnected)
                break;
            reconnected = 1;
            if ((rc = pg_reconnect(c, err)) != 0)
                break;
            continue;
        }
        PQclear(PQexec(c->pg, "ROLLBACK"));
        if (pg_state_is(state, "26000") && !reprepared) {
            /* our statements are gone (DISCARD ALL by a pooler): prepare them again, once */
            reprepared = 1;
            c->prepared = 0;
            continue;
        }
        if (pg_retry_conflict(c, state, &retries)) {
            continue;
        }
        break;
    }
    if (rc == TRIFLE_ECONFIG || pg_state_is(state, "42P01"))
        c->marks_ready = 0; /* a table went away: the next call creates the mark table again */

done:
    if (rc != 0)
        TRIFLE_WRITE_RESULT_SET(res, 0, rc == TRIFLE_EDATA ? failed : -1, unknown);
    return rc;
}

/* The stored seq of journal `name`; 0 when the mark table or the row does not exist. */
static int pg_mark_read(trifle_conn *c, const char *name, uint64_t *seq, trifle_error *err)
{
    trifle_error e;
    const char *values[1];
    PGresult *r = NULL;
    pg_call q;
    int64_t v;
    int rc;

    if (c == NULL || name == NULL || seq == NULL)
        return TRIFLE_EINVAL;
    *seq = 0;
    c->oom = 0;
    memset(&e, 0, sizeof(e));
    values[0] = name;
    memset(&q, 0, sizeof(q));
    q.st = PG_ST_MARK_READ;
    q.n = 1;
    q.values = values;
    q.idempotent = 1;
    if ((rc = pg_run(c, &q, &r, &e)) != 0) {
        if (e.native == pg_sqlstate_code("42P01"))
            return 0; /* set up by a version without marks: nothing is marked yet */
        if (err != NULL)
            *err = e;
        return rc;
    }
    if (PQntuples(r) > 0) {
        if (PQgetisnull(r, 0, 0) || !pg_parse_int64(PQgetvalue(r, 0, 0), &v) || v < 0)
            rc = pg_err(c, err, TRIFLE_EDRIVER, 0, "invalid seq of journal %s in table %s", name,
                        c->marks_table);
        else
            *seq = (uint64_t)v;
    }
    PQclear(r);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * get
 */

/* Where one get's rows go. */
typedef struct pg_get_ctx {
    trifle_conn *c;
    trifle_sink *sink;
    size_t index; /* first bucket index of the row's identifier */
} pg_get_ctx;

static int pg_get_leaf(void *ctx, const char *path, size_t len, double v)
{
    pg_get_ctx *g = ctx;
    size_t i;
    int rc = 0;

    (void)len;
    for (i = g->index; i != SIZE_MAX && rc == 0; i = g->c->bk.chain[i])
        rc = g->c->host->emit(g->sink, i, path, v);
    return rc;
}

static int pg_get(trifle_conn *c, const trifle_bucket *buckets, size_t n, trifle_sink *sink,
                  trifle_error *err)
{
    const int m = c != NULL ? c->mode : 0;
    const int np = m == TRIFLE_ID_FULL ? 1 : m == TRIFLE_ID_PARTIAL ? 2 : 3;
    const char *values[3];
    int lengths[3], formats[3] = {1, 1, 1};
    size_t i;
    PGresult *r = NULL;
    pg_get_ctx ctx;
    pg_call q;
    int rc = 0, row, rows;

    if (c == NULL || (n > 0 && (buckets == NULL || sink == NULL)))
        return TRIFLE_EINVAL;
    if (n == 0)
        return TRIFLE_OK;
    c->oom = 0;
    if (n > INT32_MAX)
        return pg_err(c, err, TRIFLE_EINVAL, 0, "too many buckets in one call: %zu", n);
    if (drv_buckets_reset(&c->bk, c->host, n) != 0)
        return pg_oom(c, err);

    /* the distinct identifiers go to the server; chain[] links the indexes naming each one */
    pg_array_begin(&c->par[0], PG_OID_TEXT, 0); /* element counts are patched below */
    if (m == TRIFLE_ID_SEPARATED)
        pg_array_begin(&c->par[1], PG_OID_TEXT, 0);
    if (m != TRIFLE_ID_FULL)
        pg_array_begin(&c->par[np - 1], PG_OID_TIMESTAMPTZ, 0);
    for (i = 0; i < n; i++) {
        const trifle_bucket *b = &buckets[i];
        const char *g = m == TRIFLE_ID_SEPARATED ? b->granularity : "";
        int64_t at = m == TRIFLE_ID_FULL ? 0 : b->at;
        size_t id_len, g_len;

        if (b->id == NULL || g == NULL)
            return pg_err(c, err, TRIFLE_EINVAL, 0, "bucket %zu is incomplete", i);
        if (m != TRIFLE_ID_FULL && !pg_at_ok(at))
            return pg_err(c, err, TRIFLE_EINVAL, 0, "time out of range: %lld (bucket %zu)",
                          (long long)at, i);
        id_len = strlen(b->id);
        g_len = strlen(g);
        if (!drv_buckets_add(&c->bk, buckets, i, m))
            continue; /* named again (a get may repeat a bucket): every index gets the row */
        pg_array_text(&c->par[0], b->id, id_len);
        if (m == TRIFLE_ID_SEPARATED)
            pg_array_text(&c->par[1], g, g_len);
        if (m != TRIFLE_ID_FULL)
            pg_array_at(&c->par[np - 1], at);
    }
    if (c->oom)
        return pg_oom(c, err);
    for (i = 0; i < (size_t)np; i++) {
        if (c->par[i].len > INT32_MAX)
            return pg_err(c, err, TRIFLE_EINVAL, 0, "get of %zu buckets is too large to send", n);
        pg_patch_u32(&c->par[i], 12, (uint32_t)c->bk.n);
        values[i] = c->par[i].p;
        lengths[i] = (int)c->par[i].len;
    }

    memset(&q, 0, sizeof(q));
    q.st = PG_ST_GET;
    q.n = np;
    q.values = values;
    q.lengths = lengths;
    q.formats = formats;
    q.table = c->table;
    q.idempotent = 1;
    if ((rc = pg_run(c, &q, &r, err)) != 0)
        return rc;

    ctx.c = c;
    ctx.sink = sink;
    rows = PQntuples(r);
    for (row = 0; row < rows && rc == 0; row++) {
        const int data_col = PQnfields(r) - 1;
        const char *key = PQgetvalue(r, row, 0), *g = "";
        size_t key_len = (size_t)PQgetlength(r, row, 0), g_len = 0;
        int64_t at = 0;

        if (PQgetisnull(r, row, 0) || PQgetisnull(r, row, data_col))
            continue;
        if (m == TRIFLE_ID_SEPARATED) {
            g = PQgetvalue(r, row, 1);
            g_len = (size_t)PQgetlength(r, row, 1);
        }
        if (m != TRIFLE_ID_FULL && !pg_parse_int64(PQgetvalue(r, row, data_col - 1), &at))
            continue;
        ctx.index = drv_buckets_find(&c->bk, buckets, m, key, key_len, g, g_len, at);
        if (ctx.index == SIZE_MAX)
            continue;
        rc = pg_flatten(c, PQgetvalue(r, row, data_col), (size_t)PQgetlength(r, row, data_col),
                        pg_get_leaf, &ctx);
        if (rc != 0)
            rc = rc == TRIFLE_ENOMEM
                     ? pg_oom(c, err)
                     : pg_err(c, err, rc, 0, "cannot deliver the values of bucket %zu", ctx.index);
    }
    PQclear(r);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * ping / scan
 */

static int pg_ping(trifle_conn *c, const char *key, int64_t at, const trifle_leaf *leaves, size_t n,
                   trifle_error *err)
{
    char at_text[PG_AT_LEN + 1];
    const char *values[3];
    PGresult *r = NULL;
    drv_buf *data;
    pg_call q;
    int rc;

    if (c == NULL || key == NULL || (n > 0 && leaves == NULL))
        return TRIFLE_EINVAL;
    c->oom = 0;
    if ((rc = drv_ping_check(c->host, c->secret, pg_at_ok(at), at, key, PG_ID_MAX, leaves, n,
                             err)) != 0)
        return rc;
    (void)tu_time_format(at_text, at); /* in range: pg_at_ok() */

    /* {"at":"<RFC 3339>","data.<path>":<v>,...}: the SQLite flat layout (ERRATA minor 15) */
    data = &c->par[2];
    data->len = 0;
    drv_buf_puts(data, "{\"at\":\"");
    drv_buf_puts(data, at_text);
    drv_buf_putc(data, '"');
    if (n > 0)
        drv_buf_putc(data, ',');
    drv_buf_put_members(data, &c->path, "data.", leaves, n, drv_buf_put_jstr);
    drv_buf_putc(data, '}');
    drv_buf_putc(data, '\0');
    if (c->oom)
        return pg_oom(c, err);
    values[0] = key;
    values[1] = at_text;
    values[2] = data->p;

    memset(&q, 0, sizeof(q));
    q.st = PG_ST_PING;
    q.n = 3;
    q.values = values;
    q.table = c->ping_table;
    q.idempotent = 1; /* a replacement: sending it twice is harmless */
    rc = pg_run(c, &q, &r, err);
    PQclear(r);
    return rc;
}

static int pg_scan_leaf(void *ctx, const char *path, size_t len, double v)
{
    pg_get_ctx *g = ctx;

    return drv_ping_emit(g->c->host, g->sink, path, len, v);
}

static int pg_scan(trifle_conn *c, const char *key, int64_t *at_out, trifle_sink *sink,
                   trifle_error *err)
{
    const char *values[1];
    PGresult *r = NULL;
    pg_get_ctx ctx;
    pg_call q;
    int64_t at;
    int rc;

    if (c == NULL || key == NULL || at_out == NULL || sink == NULL)
        return TRIFLE_EINVAL;
    c->oom = 0;
    values[0] = key;
    memset(&q, 0, sizeof(q));
    q.st = PG_ST_SCAN;
    q.n = 1;
    q.values = values;
    q.table = c->ping_table;
    q.idempotent = 1;
    if ((rc = pg_run(c, &q, &r, err)) != 0)
        return rc;
    if (PQntuples(r) == 0) {
        rc = pg_err(c, err, TRIFLE_ENOTFOUND, 0, "no ping for key %s", key);
        goto done;
    }
    if (PQgetisnull(r, 0, 0) || !pg_parse_int64(PQgetvalue(r, 0, 0), &at)) {
        rc = pg_err(c, err, TRIFLE_EDRIVER, 0, "invalid ping time for key %s", key);
        goto done;
    }
    ctx.c = c;
    ctx.sink = sink;
    ctx.index = 0;
    if (!PQgetisnull(r, 0, 1))
        rc = pg_flatten(c, PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1), pg_scan_leaf, &ctx);
    if (rc != 0) {
        rc = rc == TRIFLE_ENOMEM ? pg_oom(c, err)
                                 : pg_err(c, err, rc, 0, "cannot deliver the ping of key %s", key);
        goto done;
    }
    *at_out = at;

done:
    PQclear(r);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * The plugin's one export
 */

DRV_SQL_DRIVER(pg, PG_NAME, "1.1.0", "postgres", "postgresql");

TRIFLE_DRIVER_DEFINE(postgres, pg_driver)
