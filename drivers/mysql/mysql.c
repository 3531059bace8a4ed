/*
 * trifle_mysql.so: the MySQL/MariaDB storage driver, over MariaDB Connector/C (libmariadb).
 *
 * Layout. The tables of trifle_stats_go and the Ruby gem (one per identifier mode), a ping table
 * and a journal mark table. `key` and `granularity` are VARCHAR(255) with a binary, no-pad
 * collation (identifiers are compared byte for byte: `K` is not `k`, `a ` is not `a`); `at` is
 * a zone-less DATETIME(6) holding UTC; `data` is JSON whose keys are packed paths stored flat
 * (`{"count": 3, "meta.duration": 6}`). drivers/mysql/README.md has the DDL.
 *
 * Writes. One transaction per inc/set/write_marked call, sent as one multi-statement text (one
 * round trip; a batch larger than the server's max_allowed_packet goes in several, inside the
 * same transaction). Each statement is a multi-row `INSERT ... ON DUPLICATE KEY UPDATE` whose
 * update merges on the server, under the row lock of the upsert, so concurrent writers never lose
 * an update and the client never reads before it writes:
 *  - set: `data = JSON_MERGE_PATCH(data, VALUES(data))`: one statement for the whole batch (keys
 *    are flat, so the patch replaces exactly the leaves given and keeps the others);
 *  - inc: `data = JSON_SET(data, p1, <stored p1 if numeric, else 0> + <new p1>, p2, ...)`: the
 *    paths are part of the statement, so items are grouped by their list of paths (a track gives
 *    two groups: the metric's items and the system items), one statement per group.
 * Sums are double additions on the server (both servers print doubles in shortest round-trip
 * form, and MySQL 8 stores them in binary), so increments keep full double precision. Strings go
 * to the server as hex literals (`_utf8mb4 X'...'`): nothing is escaped, no sql_mode or charset
 * can misread them; a leading `-` of a member name is spelled `\u002d` (my_put_key()). Items are
 * sent sorted by identifier; deadlocks (1213) and lock wait timeouts (1205) roll the transaction
 * back and it is sent again, up to three times. A sum beyond the double range (1690) rolls back
 * too, and the item that overflows is found by reading the stored values (EDATA, failed_item).
 *
 * Reads. One statement per get: `key IN (...)` (full), or the distinct keys, granularities and
 * times as three IN lists (a timeline is one key and one granularity); each returned row is
 * matched to the buckets asking for it exactly, through a hash table, and rows no bucket asked for
 * are ignored. Nested objects (foreign data) are flattened to dotted paths; the host sums
 * repeated paths.
 *
 * Connections. Before each call a connection the server has closed (restart, KILL, wait_timeout)
 * is noticed without a round trip and replaced. A write whose reply is lost after its last part
 * was sent is reported with outcome_unknown; reads, pings, setup and drop are sent again on the
 * new connection.
 *
 * Threads: a connection is used by one thread at a time and holds no thread-local state.
 */
#define _GNU_SOURCE /* dladdr, RTLD_NODELETE (my_init_once) */

#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <trifle/driver.h>

#include "drv_support.h"

#define MY_NAME "mysql"
#define MY_NAME_MAX 58 /* bytes of a table name: "<table>_ping" and "<table>_marks" fit in 64 */
#define MY_ID_MAX 255  /* characters of a VARCHAR(255) key or granularity */
#define MY_RETRIES 3   /* extra attempts after a deadlock or lock wait timeout */
#define MY_CONNECT_TIMEOUT 10 /* seconds, when the URL gives no connect_timeout */
#define MY_MAX_DEPTH 128      /* nesting flattened in stored JSON; deeper objects are skipped */
#define MY_AT_MIN INT64_C(-62135596800) /* 0001-01-01 00:00:00 */
#define MY_AT_MAX INT64_C(253402300799) /* 9999-12-31 23:59:59 */
#define MY_PACKET_DEFAULT (4u << 20)    /* when @@max_allowed_packet cannot be read */
#define MY_N_SSL 8                      /* ssl_* URL parameters */

/* The JSON_TYPE names of numbers on MariaDB and on MySQL 8. */
#define MY_NUMERIC_TYPES "('INTEGER','UNSIGNED INTEGER','DOUBLE','DECIMAL')"

/* One write item in the order it is sent. */
typedef struct my_ord {
    const trifle_entry *e;
    size_t i; /* index in the caller's list (set items first, then inc items) */
} my_ord;

/* An ssl_* URL parameter: the connector option it sets and its value. */
typedef struct my_ssl_opt {
    enum mysql_option opt;
    char *value;
} my_ssl_opt;

struct trifle_conn {
    const trifle_host_api *host;
    MYSQL *my;
    int mode;            /* enum trifle_id_mode */
    int oom;             /* an allocation failed during the current call */
    int mariadb;         /* the server is MariaDB (else MySQL) */
    int mark_ready;      /* the mark table is known to exist on this server */
    int mark_missing;    /* the last failure was the mark table missing */
    unsigned last_errno; /* the server's error number of the last failed statement */
    int ssl_enforce;     /* ssl_mode=required or stricter */
    int ssl_verify;      /* ssl_mode=verify_ca or verify_identity */
    int ssl_disabled;    /* ssl_mode=disabled */
    unsigned connect_timeout, read_timeout, write_timeout; /* seconds, 0 = the connector's */
    unsigned port;
    unsigned long packet; /* @@max_allowed_packet of the session */
    char *hostname, *user, *secret, *db, *socket;
    my_ssl_opt ssl[MY_N_SSL];
    size_t n_ssl;
    char table[MY_NAME_MAX + 1];
    char ping_table[MY_NAME_MAX + 6]; /* the default "<table>_ping" is 5 bytes longer */
    char mark_table[MY_NAME_MAX + 7]; /* "<table>_marks" */
    drv_buf sql;                      /* statement text being built */
    drv_buf path;                     /* path of the JSON member being read / written */
    drv_buf tmp;                      /* a JSON text or path being built */
    size_t *ends;                     /* write: end offset of each statement in sql */
    size_t cap_ends;
    my_ord *ord; /* write order */
    size_t cap_ord;
    drv_buckets bk; /* get: the distinct identifiers asked for */
};

/* ---------------------------------------------------------------------------------------------
 * Text
 */

/* Make room for n more bytes (drv_buf_grow() reallocates even when there is room). */
static int my_room(drv_buf *b, size_t n)
{
    return b->cap - b->len >= n && b->p != NULL ? 0 : drv_buf_grow(b, n);
}

/* Append s[0..n) as a utf8mb4 string literal in hex: nothing to escape, whatever the sql_mode
 * (NO_BACKSLASH_ESCAPES, ANSI_QUOTES) or the connection charset. */
static void my_put_str(drv_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    if (n == 0) {
        drv_buf_puts(b, "_utf8mb4''");
        return;
    }
    drv_buf_puts(b, "_utf8mb4 X'");
    if (my_room(b, 2 * n + 1) != 0)
        return;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        b->p[b->len++] = hex[ch >> 4];
        b->p[b->len++] = hex[ch & 15];
    }
    b->p[b->len++] = '\'';
}

static void my_put_cstr(drv_buf *b, const char *s)
{
    my_put_str(b, s, strlen(s));
}

/* A quoted identifier (table names are [A-Za-z0-9_]: nothing to double). */
static void my_put_ident(drv_buf *b, const char *name)
{
    drv_buf_putc(b, '`');
    drv_buf_puts(b, name);
    drv_buf_putc(b, '`');
}

static void my_put_u64(drv_buf *b, uint64_t v)
{
    char s[24];
    int n = snprintf(s, sizeof(s), "%llu", (unsigned long long)v);

    drv_buf_put(b, s, (size_t)n);
}

/* `'YYYY-MM-DD HH:MM:SS'`: the DATETIME(6) literal of Unix seconds at (range-checked), in UTC. */
static void my_put_at(drv_buf *b, int64_t at)
{
    char t[TU_TIME_LEN + 1];

    (void)tu_time_format(t, at);
    t[10] = ' ';
    drv_buf_putc(b, '\'');
    drv_buf_put(b, t, 19);
    drv_buf_putc(b, '\'');
}

/* Append s[0..n) as a JSON member name. A leading `-` is written `\u002d`: MariaDB's JSON path
 * parser rejects `$."-..."` (it takes the `-` for an array index such as `last-1`), and it matches
 * member names by their JSON text, so the documents and the paths spell the name the same way.
 * Every JSON reader decodes it to `-`. */
static void my_put_key(drv_buf *b, const char *s, size_t n)
{
    size_t mark = b->len;

    drv_buf_put_jstr(b, s, n);
    if (n > 0 && s[0] == '-' && !*b->oom && my_room(b, 5) == 0) {
        memmove(b->p + mark + 7, b->p + mark + 2, b->len - mark - 2);
        memcpy(b->p + mark + 1, "\\u002d", 6);
        b->len += 5;
    }
}

/* The JSON path `$."<path>"` of a flat key, as a hex literal. The member name is written the way
 * my_put_key() writes it into `data`, which is how MariaDB matches it. */
static void my_put_path(trifle_conn *c, drv_buf *b, const char *prefix, const char *path)
{
    c->path.len = 0;
    drv_buf_puts(&c->path, "$.");
    c->tmp.len = 0;
    drv_buf_puts(&c->tmp, prefix);
    drv_buf_puts(&c->tmp, path);
    if (c->oom)
        return;
    my_put_key(&c->path, c->tmp.p, c->tmp.len);
    if (!c->oom)
        my_put_str(b, c->path.p, c->path.len);
}

/* Append the JSON object `{"<prefix><path>":<v>,...}` of leaves. */
static void my_put_object(trifle_conn *c, drv_buf *b, const trifle_leaf *leaves, size_t n,
                          const char *prefix, const char *at_text)
{
    drv_buf_putc(b, '{');
    if (at_text != NULL) {
        drv_buf_puts(b, "\"at\":\"");
        drv_buf_puts(b, at_text);
        drv_buf_putc(b, '"');
        if (n > 0)
            drv_buf_putc(b, ',');
    }
    drv_buf_put_members(b, &c->path, prefix, leaves, n, my_put_key);
    drv_buf_putc(b, '}');
}

static int my_at_ok(int64_t at)
{
    return at >= MY_AT_MIN && at <= MY_AT_MAX;
}

/* ---------------------------------------------------------------------------------------------
 * Errors (STYLE §3). `native` is the server's or the connector's error number. The password never
 * appears in a message.
 */

DRV_DEFINE_ERR(my_err)

static int my_oom(trifle_conn *c, trifle_error *err)
{
    return drv_oom(c->host, err);
}

/* Is e a connector error meaning the connection is gone? */
static int my_lost_errno(unsigned e)
{
    return e == CR_SERVER_LOST || e == CR_SERVER_GONE_ERROR || e == CR_ERR_NET_READ ||
           (e >= 5013 && e <= 5015) /* CR_ERR_NET_READ, _WRITE, _UNCOMPRESS */ ||
           e == ER_CONNECTION_KILLED || e == ER_SERVER_SHUTDOWN || e == 4031 /* idle timeout */;
}

/* A failed connect: refused/unreachable → ECONN, credentials → EAUTH, an unknown database or a
 * bad option → ECONFIG. */
static int my_conn_fail(trifle_conn *c, MYSQL *my, trifle_error *err)
{
    unsigned e = my != NULL ? mysql_errno(my) : 0;
    const char *text = my != NULL ? mysql_error(my) : "out of memory";
    int code = TRIFLE_ECONN;

    if (e == ER_ACCESS_DENIED_ERROR || e == ER_DBACCESS_DENIED_ERROR ||
        e == 1698 /* ER_ACCESS_DENIED_NO_PASSWORD_ERROR */ || e == 1251 /* auth protocol */ ||
        e == 1862 /* password expired */ || e == 3118 /* account locked */ ||
        e == 4151 /* MariaDB account locked */ || e == CR_AUTH_PLUGIN_CANNOT_LOAD)
        code = TRIFLE_EAUTH;
    else if (e == ER_BAD_DB_ERROR)
        return my_err(c, err, TRIFLE_ECONFIG, (int)e,
                      "cannot connect to mysql: unknown database %s", c->db);
    else if (strstr(text, "timeout") != NULL || strstr(text, "(110)") != NULL)
        code = TRIFLE_ETIMEDOUT;
    return my_err(c, err, code, (int)e, "cannot connect to mysql: %s", text);
}

/* A server error on a working connection. `table` is named when the statement's table is
 * missing. */
static int my_result_fail(trifle_conn *c, const char *table, trifle_error *err)
{
    unsigned e = mysql_errno(c->my);
    const char *text = mysql_error(c->my);
    int code = TRIFLE_EDRIVER;

    c->last_errno = e;
    if (e == ER_NO_SUCH_TABLE && table != NULL) {
        /* the server names the table it misses ("Table 'db.t_ping' doesn't exist") */
        char quoted[MY_NAME_MAX + 10];
        (void)snprintf(quoted, sizeof(quoted), ".%s'", c->mark_table);
        if (strstr(text, quoted) != NULL) {
            table = c->mark_table;
            c->mark_ready = 0; /* dropped behind our back: created again by the next write */
            c->mark_missing = 1;
        } else {
            (void)snprintf(quoted, sizeof(quoted), ".%s'", c->ping_table);
            if (strstr(text, quoted) != NULL)
                table = c->ping_table;
        }
        return my_err(c, err, TRIFLE_ECONFIG, (int)e,
                      "table %s does not exist (run \"trifle setup\")", table);
    }
    if (e == ER_TABLEACCESS_DENIED_ERROR || e == ER_DBACCESS_DENIED_ERROR ||
        e == ER_ACCESS_DENIED_ERROR || e == ER_SPECIFIC_ACCESS_DENIED_ERROR)
        code = TRIFLE_EAUTH;
    else if (e == ER_LOCK_DEADLOCK || e == ER_LOCK_WAIT_TIMEOUT)
        code = TRIFLE_EBUSY;
    else if (e == ER_QUERY_INTERRUPTED || e == 3024 /* MySQL max_execution_time */ ||
             e == 1969 /* MariaDB max_statement_time */)
        code = TRIFLE_ETIMEDOUT;
    else if (my_lost_errno(e))
        code = TRIFLE_ECONN;
    else if (e == ER_DATA_TOO_LONG)
        code = TRIFLE_EDATA;
    return my_err(c, err, code, (int)e, "mysql error %u (%s): %s", e, mysql_sqlstate(c->my), text);
}

/* ---------------------------------------------------------------------------------------------
 * Stored JSON text → numeric leaves
 *
 * MariaDB keeps the text it was given (JSON is LONGTEXT with a JSON_VALID check), MySQL 8 prints
 * its binary JSON. Objects are flattened to dotted paths, numbers become doubles, everything else
 * is skipped; a number that does not fit a double is skipped like any non-numeric value.
 */

/* Call leaf() for each numeric leaf of the JSON object text[0..len) (drv_json_flatten). */
static int my_flatten(trifle_conn *c, const char *text, size_t len, drv_leaf_fn leaf, void *ctx)
{
    return drv_json_flatten(c->host, &c->path, MY_MAX_DEPTH, text, len, leaf, ctx);
}

/* ---------------------------------------------------------------------------------------------
 * Connection
 */

static char *my_strndup(trifle_conn *c, const char *s, size_t n)
{
    char *p = c->host->alloc(n + 1);

    if (p == NULL) {
        c->oom = 1;
        return NULL;
    }
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void my_wipe_free(trifle_conn *c, char *s)
{
    if (s != NULL)
        memset(s, 0, strlen(s));
    c->host->free(s);
}

/* Close the native handle (the next call connects again). */
static void my_disconnect(trifle_conn *c)
{
    if (c->my != NULL)
        mysql_close(c->my);
    c->my = NULL;
}

/* Connect with the parameters of the URL; on success c->my is a session in utf8mb4, autocommit,
 * with c->mariadb and c->packet known. */
static int my_connect(trifle_conn *c, trifle_error *err)
{
    const unsigned long flags = CLIENT_MULTI_STATEMENTS | CLIENT_MULTI_RESULTS | CLIENT_FOUND_ROWS;
    unsigned timeout = c->connect_timeout;
    MYSQL *my;
    MYSQL_RES *res;
    MYSQL_ROW row;
    size_t i;
    int rc = 0;

    my_disconnect(c);
    if ((my = mysql_init(NULL)) == NULL)
        return my_oom(c, err);
    if (mysql_options(my, MYSQL_SET_CHARSET_NAME, "utf8mb4") != 0 ||
        mysql_options(my, MYSQL_OPT_CONNECT_TIMEOUT, &timeout) != 0 ||
        (c->read_timeout > 0 && mysql_options(my, MYSQL_OPT_READ_TIMEOUT, &c->read_timeout) != 0) ||
        (c->write_timeout > 0 &&
         mysql_options(my, MYSQL_OPT_WRITE_TIMEOUT, &c->write_timeout) != 0)) {
        mysql_close(my);
        return my_err(c, err, TRIFLE_ECONFIG, 0, "mysql: the connector refused an option");
    }
    if (!c->ssl_disabled) {
        my_bool on = 1;
        for (i = 0; i < c->n_ssl; i++)
            if (mysql_options(my, c->ssl[i].opt, c->ssl[i].value) != 0)
                rc = 1;
        if (c->ssl_enforce && mysql_options(my, MYSQL_OPT_SSL_ENFORCE, &on) != 0)
            rc = 1;
        if (c->ssl_verify && mysql_options(my, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on) != 0)
            rc = 1;
        if (rc != 0) {
            mysql_close(my);
            return my_err(c, err, TRIFLE_ECONFIG, 0,
                          "mysql: the connector refused a TLS option (built without TLS?)");
        }
    }
    if (mysql_real_connect(my, c->hostname, c->user, c->secret != NULL ? c->secret : "", c->db,
                           c->port, c->socket, flags) == NULL) {
        rc = my_conn_fail(c, my, err);
        mysql_close(my);
        return rc;
    }
    if (c->ssl_enforce && !c->ssl_disabled && mysql_get_ssl_cipher(my) == NULL) {
        /* Connector/C 3.3 checks MYSQL_OPT_SSL_ENFORCE only together with certificate
         * verification: without it, a server without TLS gets a plain session */
        mysql_close(my);
        return my_err(c, err, TRIFLE_ECONN, CR_SSL_CONNECTION_ERROR,
                      "cannot connect to mysql: ssl_mode=required, but the server does not "
                      "support TLS");
    }
    c->my = my;
    c->mariadb = strstr(mysql_get_server_info(my), "MariaDB") != NULL;
    c->packet = MY_PACKET_DEFAULT;
    if (mysql_query(my, "SELECT @@max_allowed_packet") == 0 &&
        (res = mysql_store_result(my)) != NULL) {
        if ((row = mysql_fetch_row(res)) != NULL && row[0] != NULL) {
            unsigned long v = strtoul(row[0], NULL, 10);
            if (v >= 65536)
                c->packet = v;
        }
        mysql_free_result(res);
    }
    if (mysql_errno(my) != 0) {
        rc = my_result_fail(c, NULL, err);
        my_disconnect(c);
    }
    return rc;
}

/* Is the connection usable? A connection the server closed while we were idle (restart, KILL,
 * wait_timeout) has its error packet or end-of-file waiting in the socket: an idle session has
 * nothing to read. */
static int my_alive(trifle_conn *c)
{
    struct pollfd pfd;

    if (c->my == NULL)
        return 0;
    pfd.fd = (int)mysql_get_socket(c->my);
    pfd.events = POLLIN;
    pfd.revents = 0;
    if (pfd.fd < 0)
        return 0;
    return poll(&pfd, 1, 0) == 0;
}

static int my_reconnect(trifle_conn *c, trifle_error *err)
{
    if (c->host->log != NULL && c->my != NULL)
        c->host->log(TRIFLE_LOG_INFO, MY_NAME, "connection lost; reconnecting");
    return my_connect(c, err);
}

static void my_close(trifle_conn *c)
{
    size_t i;

    if (c == NULL)
        return;
    my_disconnect(c);
    drv_buf_free(&c->sql);
    drv_buf_free(&c->path);
    drv_buf_free(&c->tmp);
    c->host->free(c->ends);
    c->host->free(c->ord);
    drv_buckets_free(&c->bk, c->host);
    c->host->free(c->hostname);
    c->host->free(c->user);
    my_wipe_free(c, c->secret);
    c->host->free(c->db);
    c->host->free(c->socket);
    for (i = 0; i < c->n_ssl; i++)
        c->host->free(c->ssl[i].value);
    c->host->free(c);
}

/* Percent-decode s[0..n) into a new string; NULL with c->oom on failure, or with *bad set when
 * an escape is malformed or decodes to NUL. */
static char *my_decode(trifle_conn *c, const char *s, size_t n, int *bad)
{
    char *out = my_strndup(c, s, n);

    if (out != NULL && tu_pct_decode(out, NULL, s, n, 0) != TU_PCT_OK) {
        *bad = 1;
        my_wipe_free(c, out);
        return NULL;
    }
    return out;
}

/* Parse `mysql://[user[:password]@][host][:port][/database]` (no query string). Returns 0 or an
 * ECONFIG/ENOMEM error. */
static int my_parse_url(trifle_conn *c, const char *url, trifle_error *err)
{
    const char *p = url + 8, *end, *at, *colon, *hp, *he, *slash;
    int bad = 0;

    end = p + strlen(p);
    slash = memchr(p, '/', (size_t)(end - p));
    he = slash != NULL ? slash : end;
    at = NULL;
    for (hp = p; hp < he; hp++)
        if (*hp == '@')
            at = hp; /* the last '@' before the path: a password may contain '@' only escaped */
    hp = p;
    if (at != NULL) {
        colon = memchr(p, ':', (size_t)(at - p));
        if (colon != NULL) {
            c->user = my_decode(c, p, (size_t)(colon - p), &bad);
            if (c->user != NULL)
                c->secret = my_decode(c, colon + 1, (size_t)(at - colon - 1), &bad);
        } else {
            c->user = my_decode(c, p, (size_t)(at - p), &bad);
        }
        hp = at + 1;
    }
    if (!bad && !c->oom && hp < he) {
        const char *port = NULL, *hend = he;
        if (*hp == '[') { /* [IPv6] */
            const char *rb = memchr(hp, ']', (size_t)(he - hp));
            if (rb == NULL)
                return my_err(c, err, TRIFLE_ECONFIG, 0, "invalid driver URL: unclosed [ in host");
            c->hostname = my_strndup(c, hp + 1, (size_t)(rb - hp - 1));
            if (rb + 1 < he) {
                if (rb[1] != ':')
                    return my_err(c, err, TRIFLE_ECONFIG, 0, "invalid driver URL: bad host");
                port = rb + 2;
            }
        } else {
            const char *pc = memchr(hp, ':', (size_t)(he - hp));
            if (pc != NULL) {
                hend = pc;
                port = pc + 1;
            }
            if (hend > hp)
                c->hostname = my_decode(c, hp, (size_t)(hend - hp), &bad);
        }
        if (port != NULL) {
            unsigned long v = 0;
            const char *q;
            for (q = port; q < he && v <= 65535; q++) {
                if (*q < '0' || *q > '9')
                    break;
                v = v * 10 + (unsigned)(*q - '0');
            }
            if (q != he || q == port || v == 0 || v > 65535)
                return my_err(c, err, TRIFLE_ECONFIG, 0,
                              "invalid driver URL: port must be 1-65535");
            c->port = (unsigned)v;
        }
    }
    if (!bad && !c->oom && slash != NULL && slash + 1 < end)
        c->db = my_decode(c, slash + 1, (size_t)(end - slash - 1), &bad);
    if (c->oom)
        return my_oom(c, err);
    if (bad)
        return my_err(c, err, TRIFLE_ECONFIG, 0,
                      "invalid driver URL: bad percent escape in user, password, host or database");
    if (c->db == NULL || c->db[0] == '\0' || strchr(c->db, '/') != NULL)
        return my_err(c, err, TRIFLE_ECONFIG, 0,
                      "invalid driver URL: expected mysql://user:password@host:port/database");
    return 0;
}

/* A whole number of seconds in 0..86400 for a *_timeout parameter. */
static int my_seconds(const char *v, unsigned *out)
{
    unsigned long n = 0;
    const char *p;

    if (v[0] == '\0')
        return 0;
    for (p = v; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || n > 86400)
            return 0;
        n = n * 10 + (unsigned)(*p - '0');
    }
    if (n > 86400)
        return 0;
    *out = (unsigned)n;
    return 1;
}

static int my_ieq(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++)
        if ((*a >= 'A' && *a <= 'Z' ? *a + 32 : *a) != *b)
            return 0;
    return *a == '\0' && *b == '\0';
}

/* One URL parameter of this driver: 0, or an ECONFIG error. */
static int my_param(trifle_conn *c, const char *name, const char *value, trifle_error *err)
{
    static const struct {
        const char *name;
        enum mysql_option opt;
    } ssl_params[] = {
        {"ssl_ca", MYSQL_OPT_SSL_CA},           {"ssl_capath", MYSQL_OPT_SSL_CAPATH},
        {"ssl_cert", MYSQL_OPT_SSL_CERT},       {"ssl_key", MYSQL_OPT_SSL_KEY},
        {"ssl_cipher", MYSQL_OPT_SSL_CIPHER},   {"ssl_crl", MYSQL_OPT_SSL_CRL},
        {"ssl_crlpath", MYSQL_OPT_SSL_CRLPATH}, {"tls_version", MARIADB_OPT_TLS_VERSION},
    };
    size_t i;

    if (strcmp(name, "socket") == 0) {
        c->host->free(c->socket);
        if ((c->socket = my_strndup(c, value, strlen(value))) == NULL)
            return my_oom(c, err);
        return 0;
    }
    if (strcmp(name, "connect_timeout") == 0 || strcmp(name, "read_timeout") == 0 ||
        strcmp(name, "write_timeout") == 0) {
        unsigned *dst = name[0] == 'c'   ? &c->connect_timeout
                        : name[0] == 'r' ? &c->read_timeout
                                         : &c->write_timeout;
        if (!my_seconds(value, dst))
            return my_err(c, err, TRIFLE_ECONFIG, 0,
                          "invalid driver URL: %s must be whole seconds (0-86400), not %.40s", name,
                          value);
        return 0; /* connect_timeout=0: the connector's default */
    }
    if (strcmp(name, "ssl_mode") == 0) {
        c->ssl_disabled = c->ssl_enforce = c->ssl_verify = 0;
        if (my_ieq(value, "disabled"))
            c->ssl_disabled = 1;
        else if (my_ieq(value, "preferred"))
            ;
        else if (my_ieq(value, "required"))
            c->ssl_enforce = 1;
        else if (my_ieq(value, "verify_ca") || my_ieq(value, "verify_identity"))
            c->ssl_enforce = c->ssl_verify = 1;
        else
            return my_err(c, err, TRIFLE_ECONFIG, 0,
                          "invalid driver URL: ssl_mode must be disabled, preferred, required, "
                          "verify_ca or verify_identity, not %.40s",
                          value);
        return 0;
    }
    for (i = 0; i < sizeof(ssl_params) / sizeof(ssl_params[0]); i++) {
        if (strcmp(name, ssl_params[i].name) == 0) {
            if (c->n_ssl == MY_N_SSL)
                return my_err(c, err, TRIFLE_ECONFIG, 0,
                              "invalid driver URL: too many ssl_* "
                              "parameters");
            c->ssl[c->n_ssl].opt = ssl_params[i].opt;
            if ((c->ssl[c->n_ssl].value = my_strndup(c, value, strlen(value))) == NULL)
                return my_oom(c, err);
            c->n_ssl++;
            return 0;
        }
    }
    if (strcmp(name, "charset") == 0) {
        if (my_ieq(value, "utf8mb4"))
            return 0;
        return my_err(c, err, TRIFLE_ECONFIG, 0,
                      "invalid driver URL: charset must be utf8mb4 (keys are UTF-8)");
    }
    return my_err(c, err, TRIFLE_ECONFIG, 0, "invalid driver URL: unknown parameter %s", name);
}

static int my_open(trifle_conn **out, const trifle_host_api *host, const char *url,
                   const trifle_open_params *params, const char *const *opts, trifle_error *err)
{
    static const char *const prefixes[] = {"mysql://", NULL};
    const char *table = "trifle_stats", *ping_table = NULL, *bad;
    trifle_conn *c;
    size_t i;
    int mode, rc = 0;

    if (out == NULL || host == NULL)
        return TRIFLE_EINVAL;
    *out = NULL;
    if ((rc = drv_open_url(host, params, url, prefixes, "mysql://", &mode, err)) != 0)
        return rc;
    if ((c = drv_calloc(host, sizeof(*c), err)) == NULL)
        return TRIFLE_ENOMEM;
    c->host = host;
    c->connect_timeout = MY_CONNECT_TIMEOUT;
    drv_buf_init(&c->sql, host, &c->oom);
    drv_buf_init(&c->path, host, &c->oom);
    drv_buf_init(&c->tmp, host, &c->oom);

    if ((rc = my_parse_url(c, url, err)) != 0)
        goto done;
    for (i = 0; opts != NULL && opts[i] != NULL; i += 2) {
        const char *name = opts[i], *value = opts[i + 1] != NULL ? opts[i + 1] : "";
        if (!drv_opt_sql(name, value, &table, &ping_table) &&
            (rc = my_param(c, name, value, err)) != 0)
            goto done;
        if (opts[i + 1] == NULL)
            break;
    }
    if ((bad = drv_table_bad(table, ping_table, MY_NAME_MAX)) != NULL) {
        rc = my_err(c, err, TRIFLE_ECONFIG, 0, "invalid table name: %s", bad);
        goto done;
    }
    c->mode = mode;
    drv_table_names(c->table, c->ping_table, table, ping_table);
    (void)snprintf(c->mark_table, sizeof(c->mark_table), "%s_marks", c->table);
    if (c->socket != NULL && c->hostname == NULL) {
        /* the connector takes the socket only for "localhost" (or no host) */
        if ((c->hostname = my_strndup(c, "localhost", 9)) == NULL) {
            rc = my_oom(c, err);
            goto done;
        }
    }
    rc = my_connect(c, err);

done:
    if (rc != 0) {
        my_close(c);
        return rc;
    }
    *out = c;
    return TRIFLE_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Running statements
 */

/* One request: statement texts sql[0..ends[n-1]), statement k ending at ends[k]. */
typedef struct my_call {
    const char *sql;
    const size_t *ends; /* NULL: one text, sent as it is */
    size_t n_ends;
    size_t len;
    const char *table; /* named when the statement's table is missing */
    int idempotent;    /* may be sent again after its reply was lost */
    int txn;           /* the text is one transaction (START TRANSACTION ... COMMIT) */
    int want_rows;     /* keep the result set of the last statement that returned rows */
    int unknown;       /* out: sent, and the reply was lost */
} my_call;

/* Read every result of the request just sent. 0, or the errno of the first failure. *rows gets
 * the last result set when asked for. */
static unsigned my_drain(trifle_conn *c, int want_rows, MYSQL_RES **rows)
{
    for (;;) {
        MYSQL_RES *r = mysql_store_result(c->my);
        int st;

        if (r != NULL) {
            if (want_rows) {
                if (*rows != NULL)
                    mysql_free_result(*rows);
                *rows = r;
            } else {
                mysql_free_result(r);
            }
        } else if (mysql_field_count(c->my) != 0) {
            return mysql_errno(c->my) != 0 ? mysql_errno(c->my) : CR_OUT_OF_MEMORY;
        }
        st = mysql_next_result(c->my);
        if (st < 0)
            return 0;
        if (st > 0)
            return mysql_errno(c->my);
    }
}

/* Send q (in parts of at most c->packet bytes, cut between statements) and wait for its outcome;
 * on success *out is the result set asked for (the caller frees it). A connection found dead
 * before sending is replaced. Deadlocks and lock wait timeouts are retried MY_RETRIES times. A
 * lost reply is retried on a new connection when q is idempotent, or when the transaction's last
 * part was not sent yet (the server rolls back what it got); otherwise q->unknown is set and
 * ECONN returned. */
static int my_run(trifle_conn *c, my_call *q, MYSQL_RES **out, trifle_error *err)
{
    int reconnected = 0, retries = 0, rc;

    *out = NULL;
    q->unknown = 0;
    for (;;) {
        size_t start = 0, k = 0;
        unsigned e = 0;
        int last_sent = 0;

        if (!my_alive(c)) {
            if (reconnected)
                return my_err(c, err, TRIFLE_ECONN, 0, "connection to mysql lost");
            reconnected = 1;
            if ((rc = my_reconnect(c, err)) != 0)
                return rc;
        }
        while (start < q->len && e == 0) {
            size_t stop = q->len;
            if (q->ends != NULL) {
                /* as many whole statements as fit in a packet (at least one) */
                size_t j = k;
                stop = q->ends[j++];
                while (j < q->n_ends && q->ends[j] - start + 64 < c->packet)
                    stop = q->ends[j++];
                k = j;
            }
            last_sent = stop == q->len;
            if (mysql_real_query(c->my, q->sql + start, (unsigned long)(stop - start)) != 0)
                e = mysql_errno(c->my);
            else
                e = my_drain(c, q->want_rows, out);
            start = stop;
        }
        if (e == 0)
            return 0;
        if (*out != NULL) {
            mysql_free_result(*out);
            *out = NULL;
        }
        if (my_lost_errno(e) || e == CR_COMMANDS_OUT_OF_SYNC) {
            /* a transaction cut before its COMMIT was sent is rolled back by the server */
            int known = q->txn && !last_sent;
            if ((q->idempotent || known) && !reconnected) {
                reconnected = 1;
                if ((rc = my_reconnect(c, err)) != 0)
                    return rc;
                continue;
            }
            q->unknown = !known && !q->idempotent;
            rc = my_err(c, err, TRIFLE_ECONN, (int)e, "connection to mysql lost%s: %s",
                        q->unknown ? " (outcome unknown)" : "", mysql_error(c->my));
            my_disconnect(c);
            return rc;
        }
        /* a server error: the rest of the text was not run; end the transaction it opened */
        rc = my_result_fail(c, q->table, err);
        if (q->txn && mysql_query(c->my, "ROLLBACK") != 0) {
            my_disconnect(c); /* nothing was committed: the server rolls back on disconnect */
            return rc;
        }
        if ((e == ER_LOCK_DEADLOCK || e == ER_LOCK_WAIT_TIMEOUT) && retries < MY_RETRIES) {
            retries++;
            if (c->host->log != NULL)
                c->host->log(TRIFLE_LOG_WARN, MY_NAME, "%s; retrying (%d of %d)",
                             e == ER_LOCK_DEADLOCK ? "deadlock" : "lock wait timeout", retries,
                             MY_RETRIES);
            continue;
        }
        return rc;
    }
}

/* Run the idempotent text in c->sql (one or more statements on table); with want_rows, its result
 * set goes to *r. */
static int my_query(trifle_conn *c, const char *table, int want_rows, MYSQL_RES **r,
                    trifle_error *err)
{
    my_call q;

    *r = NULL;
    if (c->oom)
        return my_oom(c, err);
    memset(&q, 0, sizeof(q));
    q.sql = c->sql.p;
    q.len = c->sql.len;
    q.table = table;
    q.idempotent = 1;
    q.want_rows = want_rows;
    return my_run(c, &q, r, err);
}

/* Run the text in c->sql (one or more statements, idempotent). */
static int my_simple(trifle_conn *c, const char *table, trifle_error *err)
{
    MYSQL_RES *r;
    int rc = my_query(c, table, 0, &r, err);

    if (r != NULL)
        mysql_free_result(r);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * setup / drop
 */

/* The collation of identifier columns: binary and without trailing-space padding. */
static const char *my_id_collation(const trifle_conn *c)
{
    unsigned long v = mysql_get_server_version(c->my);

    if (c->mariadb)
        return "utf8mb4_nopad_bin"; /* MariaDB 10.2+ */
    return v >= 80017 ? "utf8mb4_0900_bin" : "utf8mb4_bin";
}

static void my_create_sql(trifle_conn *c, drv_buf *b, int data_table, int ping_table,
                          int mark_table)
{
    const char *coll = my_id_collation(c);

    if (data_table) {
        drv_buf_puts(b, "CREATE TABLE IF NOT EXISTS ");
        my_put_ident(b, c->table);
        drv_buf_puts(b, " (`key` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE ");
        drv_buf_puts(b, coll);
        drv_buf_puts(b, " NOT NULL, ");
        if (c->mode == TRIFLE_ID_SEPARATED) {
            drv_buf_puts(b, "`granularity` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE ");
            drv_buf_puts(b, coll);
            drv_buf_puts(b, " NOT NULL, ");
        }
        if (c->mode != TRIFLE_ID_FULL)
            drv_buf_puts(b, "`at` DATETIME(6) NOT NULL, ");
        drv_buf_puts(b, "`data` JSON NOT NULL, PRIMARY KEY (");
        drv_buf_puts(b, c->mode == TRIFLE_ID_FULL      ? "`key`"
                        : c->mode == TRIFLE_ID_PARTIAL ? "`key`, `at`"
                                                       : "`key`, `granularity`, `at`");
        drv_buf_puts(b, ")) DEFAULT CHARSET=utf8mb4;");
    }
    if (ping_table) {
        drv_buf_puts(b, "CREATE TABLE IF NOT EXISTS ");
        my_put_ident(b, c->ping_table);
        drv_buf_puts(b, " (`key` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE ");
        drv_buf_puts(b, coll);
        drv_buf_puts(b, " NOT NULL PRIMARY KEY, `at` DATETIME(6) NOT NULL, `data` JSON NOT NULL)"
                        " DEFAULT CHARSET=utf8mb4;");
    }
    if (mark_table) {
        drv_buf_puts(b, "CREATE TABLE IF NOT EXISTS ");
        my_put_ident(b, c->mark_table);
        drv_buf_puts(b, " (`name` VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL "
                        "PRIMARY KEY, `seq` BIGINT NOT NULL) DEFAULT CHARSET=utf8mb4;");
    }
}

static int my_ensure(trifle_conn *c, trifle_error *err)
{
    int rc;

    if (c->my == NULL && (rc = my_connect(c, err)) != 0)
        return rc;
    return 0;
}

/* Start a call that sends one text: no allocation failed yet, the connection made if it is not,
 * c->sql empty. TRIFLE_EINVAL when c is NULL. */
static int my_begin(trifle_conn *c, trifle_error *err)
{
    int rc;

    if (c == NULL)
        return TRIFLE_EINVAL;
    c->oom = 0;
    if ((rc = my_ensure(c, err)) != 0)
        return rc;
    c->sql.len = 0;
    return 0;
}

/* Append head, the table's name, where and the value as a string literal to c->sql. */
static void my_put_select(trifle_conn *c, const char *head, const char *table, const char *where,
                          const char *value)
{
    drv_buf_puts(&c->sql, head);
    my_put_ident(&c->sql, table);
    drv_buf_puts(&c->sql, where);
    my_put_cstr(&c->sql, value);
}

static int my_setup(trifle_conn *c, trifle_error *err)
{
    int rc = my_begin(c, err);

    if (rc != 0)
        return rc;
    my_create_sql(c, &c->sql, 1, 1, 1);
    if ((rc = my_simple(c, NULL, err)) == 0)
        c->mark_ready = 1;
    return rc;
}

static int my_drop(trifle_conn *c, trifle_error *err)
{
    int rc = my_begin(c, err);

    if (rc != 0)
        return rc;
    drv_buf_puts(&c->sql, "DROP TABLE IF EXISTS ");
    my_put_ident(&c->sql, c->table);
    if (strcmp(c->table, c->ping_table) != 0) {
        drv_buf_puts(&c->sql, ", ");
        my_put_ident(&c->sql, c->ping_table);
    }
    drv_buf_puts(&c->sql, ", ");
    my_put_ident(&c->sql, c->mark_table);
    c->mark_ready = 0;
    return my_simple(c, NULL, err);
}

/* ---------------------------------------------------------------------------------------------
 * inc / set / write_marked
 */

/* Receives one numeric leaf of bucket `index`: 0, or a failure that ends the read. */
typedef int (*my_deliver_fn)(void *dctx, size_t index, const char *path, double v);

static int my_read(trifle_conn *c, const trifle_bucket *buckets, size_t n, my_deliver_fn deliver,
                   void *dctx, trifle_error *err);

/* Which inc item overflows: the search of my_overflowing(). */
typedef struct my_ovf {
    const trifle_entry *inc;
    size_t found; /* the first inc item whose stored value + increment is not finite, or SIZE_MAX */
} my_ovf;

static int my_ovf_leaf(void *dctx, size_t index, const char *path, double v)
{
    my_ovf *o = dctx;
    const trifle_entry *e = &o->inc[index];
    size_t lo = 0, hi = e->n_leaves;

    while (lo < hi) { /* leaves are sorted by path */
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(e->leaves[mid].path, path);
        if (r == 0) {
            if (!isfinite(v + e->leaves[mid].value) && index < o->found)
                o->found = index;
            break;
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* The server refused a sum out of the double range (1690) and rolled the call back: read the
 * stored values of the inc items' buckets and find the first item that overflows, so that it can
 * be reported as EDATA. SIZE_MAX when none does (another writer changed the row since, or the
 * overflow came from two items of this call adding up). */
static size_t my_overflowing(trifle_conn *c, const trifle_entry *inc, size_t n)
{
    trifle_error ignored = TRIFLE_ERROR_INIT;
    trifle_bucket *b = c->host->alloc(n * sizeof(*b));
    my_ovf o = {inc, SIZE_MAX};
    size_t i;

    if (b == NULL)
        return SIZE_MAX;
    for (i = 0; i < n; i++)
        b[i] = inc[i].bucket;
    (void)my_read(c, b, n, my_ovf_leaf, &o, &ignored);
    c->host->free(b);
    return o.found;
}

/* The order of inc items: by their list of paths (items of one group are adjacent), then by
 * identifier. */
static int my_paths_cmp(const trifle_entry *a, const trifle_entry *b)
{
    size_t i;

    for (i = 0; i < a->n_leaves && i < b->n_leaves; i++) {
        int r = strcmp(a->leaves[i].path, b->leaves[i].path);
        if (r != 0)
            return r;
    }
    return a->n_leaves < b->n_leaves ? -1 : a->n_leaves > b->n_leaves;
}

static int my_ord_cmp_id(const void *pa, const void *pb)
{
    return drv_bucket_cmp(&((const my_ord *)pa)->e->bucket, &((const my_ord *)pb)->e->bucket);
}

static int my_ord_cmp_group(const void *pa, const void *pb)
{
    const my_ord *a = pa, *b = pb;
    int r = my_paths_cmp(a->e, b->e);

    return r != 0 ? r : drv_bucket_cmp(&a->e->bucket, &b->e->bucket);
}

/* Check the items before anything is sent. EDATA (with *failed, counted from base) for an
 * identifier that cannot be stored, EINVAL for a call that breaks the ABI contract. */
static int my_check_items(trifle_conn *c, const trifle_entry *items, size_t n, size_t base,
                          ptrdiff_t *failed, trifle_error *err)
{
    size_t i, l;

    for (i = 0; i < n; i++) {
        const trifle_bucket *b = &items[i].bucket;
        if (b->id == NULL || (c->mode == TRIFLE_ID_SEPARATED && b->granularity == NULL) ||
            items[i].leaves == NULL || items[i].n_leaves == 0)
            return my_err(c, err, TRIFLE_EINVAL, 0, "item %zu is incomplete", base + i);
        if (tu_utf8_count(b->id) > MY_ID_MAX ||
            (c->mode == TRIFLE_ID_SEPARATED && tu_utf8_count(b->granularity) > MY_ID_MAX)) {
            *failed = (ptrdiff_t)(base + i);
            return my_err(c, err, TRIFLE_EDATA, 0,
                          "identifier of item %zu is longer than %d characters: %.64s...", base + i,
                          MY_ID_MAX, b->id);
        }
        if (c->mode != TRIFLE_ID_FULL && !my_at_ok(b->at))
            return my_err(c, err, TRIFLE_EINVAL, 0, "time out of range: %lld (item %zu)",
                          (long long)b->at, base + i);
        for (l = 0; l < items[i].n_leaves; l++) {
            const trifle_leaf *lf = &items[i].leaves[l];
            if (lf->path == NULL || lf->path[0] == '\0' || !isfinite(lf->value) ||
                (l > 0 && strcmp(items[i].leaves[l - 1].path, lf->path) >= 0))
                return my_err(c, err, TRIFLE_EINVAL, 0,
                              "leaves of item %zu are not finite, unique and sorted by path",
                              base + i);
        }
    }
    return 0;
}

/* `INSERT INTO t (<cols>, data) VALUES ` */
static void my_insert_head(trifle_conn *c)
{
    static const char *const cols[] = {
        [TRIFLE_ID_FULL] = " (`key`, `data`) VALUES ",
        [TRIFLE_ID_PARTIAL] = " (`key`, `at`, `data`) VALUES ",
        [TRIFLE_ID_SEPARATED] = " (`key`, `granularity`, `at`, `data`) VALUES ",
    };

    drv_buf_puts(&c->sql, "INSERT INTO ");
    my_put_ident(&c->sql, c->table);
    drv_buf_puts(&c->sql, cols[c->mode]);
}

/* One row `(key, [granularity, at,] data)` of an item. */
static void my_insert_row(trifle_conn *c, const trifle_entry *e)
{
    drv_buf *b = &c->sql;

    drv_buf_putc(b, '(');
    my_put_cstr(b, e->bucket.id);
    if (c->mode == TRIFLE_ID_SEPARATED) {
        drv_buf_puts(b, ", ");
        my_put_cstr(b, e->bucket.granularity);
    }
    if (c->mode != TRIFLE_ID_FULL) {
        drv_buf_puts(b, ", ");
        my_put_at(b, e->bucket.at);
    }
    drv_buf_puts(b, ", ");
    c->tmp.len = 0;
    my_put_object(c, &c->tmp, e->leaves, e->n_leaves, "", NULL);
    if (!c->oom)
        my_put_str(b, c->tmp.p, c->tmp.len);
    drv_buf_putc(b, ')');
}

/* Append b->p[off..off+len) again (the room is made first: the bytes must not move while they
 * are copied). */
static void my_put_again(drv_buf *b, size_t off, size_t len)
{
    if (my_room(b, len) == 0) {
        memcpy(b->p + b->len, b->p + off, len);
        b->len += len;
    }
}

/* The update of an inc group whose items all have the leaves of e: each path becomes its stored
 * number (0 when missing or not a number) plus the new one. */
static void my_inc_update(trifle_conn *c, const trifle_entry *e)
{
    drv_buf *b = &c->sql;
    size_t l;

    drv_buf_puts(b, " ON DUPLICATE KEY UPDATE `data` = JSON_SET(COALESCE(`data`, JSON_OBJECT())");
    for (l = 0; l < e->n_leaves && !c->oom; l++) {
        size_t off, plen;
        drv_buf_puts(b, ", ");
        off = b->len;
        my_put_path(c, b, "", e->leaves[l].path);
        if (c->oom)
            return;
        /* the path literal is repeated below: copied from where it was just written */
        plen = b->len - off;
        drv_buf_puts(b, ", IF(JSON_TYPE(JSON_EXTRACT(`data`, ");
        my_put_again(b, off, plen);
        drv_buf_puts(b, ")) IN " MY_NUMERIC_TYPES ", JSON_EXTRACT(`data`, ");
        my_put_again(b, off, plen);
        drv_buf_puts(b, "), 0) + JSON_EXTRACT(VALUES(`data`), ");
        my_put_again(b, off, plen);
        drv_buf_putc(b, ')');
    }
    drv_buf_putc(b, ')');
}

/* Record the end of the statement just written into c->sql. */
static void my_end_stmt(trifle_conn *c, size_t *n_ends)
{
    drv_buf_putc(&c->sql, ';');
    if (c->oom)
        return;
    if (*n_ends == c->cap_ends &&
        drv_array_reserve(c->host, (void **)&c->ends, &c->cap_ends,
                          c->cap_ends < 16 ? 16 : 2 * c->cap_ends, sizeof(*c->ends)) != 0) {
        c->oom = 1;
        return;
    }
    c->ends[(*n_ends)++] = c->sql.len;
}

/* The statements of set items ord[0..n): one upsert that patches the stored objects. */
static void my_set_sql(trifle_conn *c, const my_ord *ord, size_t n, size_t *n_ends)
{
    size_t i;

    if (n == 0)
        return;
    my_insert_head(c);
    for (i = 0; i < n && !c->oom; i++) {
        if (i > 0)
            drv_buf_puts(&c->sql, ", ");
        my_insert_row(c, ord[i].e);
    }
    drv_buf_puts(&c->sql, " ON DUPLICATE KEY UPDATE `data` = JSON_MERGE_PATCH(COALESCE(`data`, "
                          "JSON_OBJECT()), VALUES(`data`))");
    my_end_stmt(c, n_ends);
}

/* The statements of inc items ord[0..n) (sorted by my_ord_cmp_group): one per list of paths. */
static void my_inc_sql(trifle_conn *c, const my_ord *ord, size_t n, size_t *n_ends)
{
    size_t i = 0;

    while (i < n && !c->oom) {
        size_t j = i + 1;
        while (j < n && my_paths_cmp(ord[i].e, ord[j].e) == 0)
            j++;
        my_insert_head(c);
        for (size_t k = i; k < j && !c->oom; k++) {
            if (k > i)
                drv_buf_puts(&c->sql, ", ");
            my_insert_row(c, ord[k].e);
        }
        my_inc_update(c, ord[i].e);
        my_end_stmt(c, n_ends);
        i = j;
    }
}

/* The whole write: set items, inc items and the mark in one transaction. */
static int my_write(trifle_conn *c, const trifle_entry *set_items, size_t n_set,
                    const trifle_entry *inc_items, size_t n_inc, const trifle_mark *mark,
                    trifle_write_result *res, trifle_error *err)
{
    ptrdiff_t failed = -1;
    MYSQL_RES *r = NULL;
    my_call q;
    size_t i, n_ends = 0, n = n_set + n_inc;
    int rc;

    memset(&q, 0, sizeof(q));
    c->oom = 0;
    if ((rc = my_check_items(c, set_items, n_set, 0, &failed, err)) != 0 ||
        (rc = my_check_items(c, inc_items, n_inc, n_set, &failed, err)) != 0)
        goto done;
    if (mark != NULL) {
        size_t len = mark->name != NULL ? strlen(mark->name) : 0;
        if (len == 0 || len > 64 || mark->seq == 0 || mark->seq > (uint64_t)INT64_MAX) {
            rc = my_err(c, err, TRIFLE_EINVAL, 0, "invalid journal mark");
            goto done;
        }
    }
    if ((rc = my_ensure(c, err)) != 0)
        goto done;
    if (drv_array_reserve(c->host, (void **)&c->ord, &c->cap_ord, n, sizeof(*c->ord)) != 0) {
        rc = my_oom(c, err);
        goto done;
    }
    for (i = 0; i < n_set; i++) {
        c->ord[i].e = &set_items[i];
        c->ord[i].i = i;
    }
    for (i = 0; i < n_inc; i++) {
        c->ord[n_set + i].e = &inc_items[i];
        c->ord[n_set + i].i = n_set + i;
    }
    /* one lock order for every writer: by identifier (inc: within each group of paths) */
    if (n_set > 1)
        qsort(c->ord, n_set, sizeof(*c->ord), my_ord_cmp_id);
    if (n_inc > 1)
        qsort(c->ord + n_set, n_inc, sizeof(*c->ord), my_ord_cmp_group);

    c->sql.len = 0;
    if (mark != NULL && !c->mark_ready) {
        my_create_sql(c, &c->sql, 0, 0, 1); /* before the transaction: DDL commits */
        if (c->oom) {
            rc = my_oom(c, err);
            goto done;
        }
        if ((rc = my_simple(c, NULL, err)) != 0)
            goto done;
        c->mark_ready = 1;
        c->sql.len = 0;
    }
    drv_buf_puts(&c->sql, "START TRANSACTION");
    my_end_stmt(c, &n_ends);
    my_set_sql(c, c->ord, n_set, &n_ends);
    my_inc_sql(c, c->ord + n_set, n_inc, &n_ends);
    if (mark != NULL) {
        drv_buf_puts(&c->sql, "INSERT INTO ");
        my_put_ident(&c->sql, c->mark_table);
        drv_buf_puts(&c->sql, " (`name`, `seq`) VALUES (");
        my_put_cstr(&c->sql, mark->name);
        drv_buf_puts(&c->sql, ", ");
        my_put_u64(&c->sql, mark->seq);
        drv_buf_puts(&c->sql, ") ON DUPLICATE KEY UPDATE `seq` = VALUES(`seq`)");
        my_end_stmt(c, &n_ends);
    }
    drv_buf_puts(&c->sql, "COMMIT");
    my_end_stmt(c, &n_ends);
    if (c->oom) {
        rc = my_oom(c, err);
        goto done;
    }
    q.sql = c->sql.p;
    q.len = c->sql.len;
    q.ends = c->ends;
    q.n_ends = n_ends;
    q.table = c->table;
    q.txn = 1;
    c->last_errno = 0;
    rc = my_run(c, &q, &r, err);
    if (r != NULL)
        mysql_free_result(r);
    if (rc == TRIFLE_EDATA && n == 1)
        failed = 0; /* the one item is at fault */
    if (rc == TRIFLE_EDRIVER && c->last_errno == ER_DATA_OUT_OF_RANGE && n_inc > 0) {
        size_t k = my_overflowing(c, inc_items, n_inc);
        if (k != SIZE_MAX) {
            failed = (ptrdiff_t)(n_set + k);
            rc = my_err(c, err, TRIFLE_EDATA, ER_DATA_OUT_OF_RANGE,
                        "increment of item %zu overflows the stored value beyond the double range",
                        n_set + k);
        }
    }

done:
    if (rc != 0)
        TRIFLE_WRITE_RESULT_SET(res, 0, failed, q.unknown);
    return rc;
}

/* inc (set 0) or set (1): my_write() with one of its lists. */
static int my_write_list(trifle_conn *c, const trifle_entry *items, size_t n, int set,
                         trifle_write_result *res, trifle_error *err)
{
    if (c == NULL || (n > 0 && items == NULL))
        return TRIFLE_EINVAL;
    if (n == 0)
        return TRIFLE_OK;
    return set ? my_write(c, items, n, NULL, 0, NULL, res, err)
               : my_write(c, NULL, 0, items, n, NULL, res, err);
}

DRV_DEFINE_INC_SET(my_inc, my_set, my_write_list)

static int my_write_marked(trifle_conn *c, const trifle_entry *set_items, size_t n_set,
                           const trifle_entry *inc_items, size_t n_inc, const trifle_mark *mark,
                           trifle_write_result *res, trifle_error *err)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    int rc;

    if (c == NULL || mark == NULL || (n_set > 0 && set_items == NULL) ||
        (n_inc > 0 && inc_items == NULL))
        return TRIFLE_EINVAL;
    c->mark_missing = 0;
    rc = my_write(c, set_items, n_set, inc_items, n_inc, mark, res, &e);
    if (rc == TRIFLE_ECONFIG && c->mark_missing)
        /* the mark table was dropped since this connection made it: make it again, once (the
         * failed transaction was rolled back) */
        rc = my_write(c, set_items, n_set, inc_items, n_inc, mark, res, &e);
    if (rc != 0 && err != NULL)
        *err = e;
    return rc;
}

static int my_mark_read(trifle_conn *c, const char *name, uint64_t *seq, trifle_error *err)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    MYSQL_RES *r = NULL;
    MYSQL_ROW row;
    int rc;

    if (c == NULL || name == NULL || seq == NULL)
        return TRIFLE_EINVAL;
    *seq = 0;
    if ((rc = my_begin(c, err)) != 0)
        return rc;
    my_put_select(c, "SELECT `seq` FROM ", c->mark_table, " WHERE `name` = ", name);
    if (c->oom)
        return my_oom(c, err);
    c->mark_missing = 0;
    rc = my_query(c, c->mark_table, 1, &r, &e);
    if (rc == TRIFLE_ECONFIG && c->mark_missing)
        return 0; /* no mark storage yet */
    if (rc != 0) {
        if (err != NULL)
            *err = e;
        return rc;
    }
    if (r != NULL && (row = mysql_fetch_row(r)) != NULL && row[0] != NULL) {
        char *end;
        unsigned long long v = strtoull(row[0], &end, 10);
        if (*end != '\0' || v > (unsigned long long)INT64_MAX)
            rc = my_err(c, err, TRIFLE_EDRIVER, 0, "invalid journal mark %s stored", name);
        else
            *seq = (uint64_t)v;
    }
    if (r != NULL)
        mysql_free_result(r);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * get
 */

/* Where one read's rows go. */
typedef struct my_get_ctx {
    trifle_conn *c;
    trifle_sink *sink;     /* scan */
    my_deliver_fn deliver; /* get */
    void *dctx;
    size_t index; /* first bucket index of the row's identifier */
} my_get_ctx;

static int my_get_leaf(void *ctx, const char *path, size_t len, double v)
{
    my_get_ctx *g = ctx;
    size_t i;
    int rc = 0;

    (void)len;
    for (i = g->index; i != SIZE_MAX && rc == 0; i = g->c->bk.chain[i])
        rc = g->deliver(g->dctx, i, path, v);
    return rc;
}

static int my_emit(void *dctx, size_t index, const char *path, double v)
{
    my_get_ctx *g = dctx;

    return g->c->host->emit(g->sink, index, path, v);
}

/* A DATETIME as the text protocol prints it (`YYYY-MM-DD HH:MM:SS[.ffffff]`) → Unix seconds. */
static int my_parse_at(const char *s, size_t n, int64_t *out)
{
    if (s == NULL || n < 19 || s[10] != ' ')
        return 0;
    return tu_time_parse19(s, out) == 0;
}

/* Append the values of one column of the distinct buckets as an IN list. `what`: 0 key, 1
 * granularity, 2 at. A value equal to one of the 8 before it is left out (a timeline repeats one
 * key and granularity); farther repeats are sent again, which the server ignores. */
static void my_in_list(trifle_conn *c, const trifle_bucket *buckets, size_t nd, int what)
{
    drv_buf *b = &c->sql;
    size_t i, j, shown = 0;

    drv_buf_puts(b, " IN (");
    for (i = 0; i < nd && !c->oom; i++) {
        const trifle_bucket *bk = &buckets[c->bk.first[i]];
        int seen = 0;
        for (j = i > 8 ? i - 8 : 0; j < i && !seen; j++) {
            const trifle_bucket *o = &buckets[c->bk.first[j]];
            seen = what == 0   ? strcmp(o->id, bk->id) == 0
                   : what == 1 ? strcmp(o->granularity, bk->granularity) == 0
                               : o->at == bk->at;
        }
        if (seen)
            continue;
        if (shown++ > 0)
            drv_buf_puts(b, ", ");
        if (what == 0)
            my_put_cstr(b, bk->id);
        else if (what == 1)
            my_put_cstr(b, bk->granularity);
        else
            my_put_at(b, bk->at);
    }
    drv_buf_putc(b, ')');
}

/* Read buckets[0..n) with one statement and hand each numeric leaf to deliver(dctx, index, …),
 * for every index naming the row's bucket. */
static int my_read(trifle_conn *c, const trifle_bucket *buckets, size_t n, my_deliver_fn deliver,
                   void *dctx, trifle_error *err)
{
    const int m = c->mode;
    size_t i;
    MYSQL_RES *r = NULL;
    MYSQL_ROW row;
    my_get_ctx ctx;
    int rc = 0;

    c->oom = 0;
    if (n > UINT32_MAX / 4)
        return my_err(c, err, TRIFLE_EINVAL, 0, "too many buckets in one call: %zu", n);
    if (drv_buckets_reset(&c->bk, c->host, n) != 0)
        return my_oom(c, err);

    /* the distinct identifiers; chain[] links the indexes naming each one */
    for (i = 0; i < n; i++) {
        const trifle_bucket *b = &buckets[i];
        const char *g = m == TRIFLE_ID_SEPARATED ? b->granularity : "";
        int64_t at = m == TRIFLE_ID_FULL ? 0 : b->at;

        if (b->id == NULL || g == NULL)
            return my_err(c, err, TRIFLE_EINVAL, 0, "bucket %zu is incomplete", i);
        if (m != TRIFLE_ID_FULL && !my_at_ok(at))
            return my_err(c, err, TRIFLE_EINVAL, 0, "time out of range: %lld (bucket %zu)",
                          (long long)at, i);
        (void)drv_buckets_add(&c->bk, buckets, i, m);
    }
    if ((rc = my_ensure(c, err)) != 0)
        return rc;

    c->sql.len = 0;
    drv_buf_puts(&c->sql, m == TRIFLE_ID_FULL      ? "SELECT `key`, `data` FROM "
                          : m == TRIFLE_ID_PARTIAL ? "SELECT `key`, `at`, `data` FROM "
                                                   : "SELECT `key`, `granularity`, `at`, `data` "
                                                     "FROM ");
    my_put_ident(&c->sql, c->table);
    drv_buf_puts(&c->sql, " WHERE `key`");
    my_in_list(c, buckets, c->bk.n, 0);
    if (m == TRIFLE_ID_SEPARATED) {
        drv_buf_puts(&c->sql, " AND `granularity`");
        my_in_list(c, buckets, c->bk.n, 1);
    }
    if (m != TRIFLE_ID_FULL) {
        drv_buf_puts(&c->sql, " AND `at`");
        my_in_list(c, buckets, c->bk.n, 2);
    }
    if ((rc = my_query(c, c->table, 1, &r, err)) != 0)
        return rc;
    if (r == NULL)
        return my_err(c, err, TRIFLE_EDRIVER, 0, "mysql: get returned no result set");

    memset(&ctx, 0, sizeof(ctx));
    ctx.c = c;
    ctx.deliver = deliver;
    ctx.dctx = dctx;
    while (rc == 0 && (row = mysql_fetch_row(r)) != NULL) {
        unsigned long *len = mysql_fetch_lengths(r);
        const unsigned data_col = m == TRIFLE_ID_FULL ? 1 : m == TRIFLE_ID_PARTIAL ? 2 : 3;
        const char *key = row[0], *g = "";
        size_t key_len = len[0], g_len = 0;
        int64_t at = 0;

        if (key == NULL || row[data_col] == NULL)
            continue;
        if (m == TRIFLE_ID_SEPARATED) {
            if ((g = row[1]) == NULL)
                continue;
            g_len = len[1];
        }
        if (m != TRIFLE_ID_FULL && !my_parse_at(row[data_col - 1], len[data_col - 1], &at))
            continue;
        ctx.index = drv_buckets_find(&c->bk, buckets, m, key, key_len, g, g_len, at);
        if (ctx.index == SIZE_MAX)
            continue;
        rc = my_flatten(c, row[data_col], len[data_col], my_get_leaf, &ctx);
        if (rc != 0)
            rc = rc == TRIFLE_ENOMEM
                     ? my_oom(c, err)
                     : my_err(c, err, rc, 0, "cannot deliver the values of bucket %zu", ctx.index);
    }
    mysql_free_result(r);
    return rc;
}

static int my_get(trifle_conn *c, const trifle_bucket *buckets, size_t n, trifle_sink *sink,
                  trifle_error *err)
{
    my_get_ctx e;

    if (c == NULL || (n > 0 && (buckets == NULL || sink == NULL)))
        return TRIFLE_EINVAL;
    if (n == 0)
        return TRIFLE_OK;
    memset(&e, 0, sizeof(e));
    e.c = c;
    e.sink = sink;
    return my_read(c, buckets, n, my_emit, &e, err);
}

/* ---------------------------------------------------------------------------------------------
 * ping / scan
 */

static int my_ping(trifle_conn *c, const char *key, int64_t at, const trifle_leaf *leaves, size_t n,
                   trifle_error *err)
{
    char at_text[TU_TIME_LEN + 1];
    int rc;

    if (c == NULL || key == NULL || (n > 0 && leaves == NULL))
        return TRIFLE_EINVAL;
    c->oom = 0;
    if ((rc = drv_ping_check(c->host, c->secret, my_at_ok(at), at, key, MY_ID_MAX, leaves, n,
                             err)) != 0)
        return rc;
    if ((rc = my_ensure(c, err)) != 0)
        return rc;
    (void)tu_time_format(at_text, at);

    /* {"at":"<RFC 3339>","data.<path>":<v>,...}: the flat layout of the other SQL drivers */
    c->sql.len = 0;
    drv_buf_puts(&c->sql, "INSERT INTO ");
    my_put_ident(&c->sql, c->ping_table);
    drv_buf_puts(&c->sql, " (`key`, `at`, `data`) VALUES (");
    my_put_cstr(&c->sql, key);
    drv_buf_puts(&c->sql, ", ");
    my_put_at(&c->sql, at);
    drv_buf_puts(&c->sql, ", ");
    c->tmp.len = 0;
    my_put_object(c, &c->tmp, leaves, n, "data.", at_text);
    if (!c->oom)
        my_put_str(&c->sql, c->tmp.p, c->tmp.len);
    drv_buf_puts(&c->sql, ") ON DUPLICATE KEY UPDATE `at` = VALUES(`at`), `data` = VALUES(`data`)");
    return my_simple(c, c->ping_table, err); /* a replacement: sending it twice is harmless */
}

static int my_scan_leaf(void *ctx, const char *path, size_t len, double v)
{
    my_get_ctx *g = ctx;

    return drv_ping_emit(g->c->host, g->sink, path, len, v);
}

static int my_scan(trifle_conn *c, const char *key, int64_t *at_out, trifle_sink *sink,
                   trifle_error *err)
{
    MYSQL_RES *r = NULL;
    MYSQL_ROW row;
    my_get_ctx ctx;
    int64_t at;
    int rc;

    if (c == NULL || key == NULL || at_out == NULL || sink == NULL)
        return TRIFLE_EINVAL;
    if ((rc = my_begin(c, err)) != 0)
        return rc;
    my_put_select(c, "SELECT `at`, `data` FROM ", c->ping_table, " WHERE `key` = ", key);
    drv_buf_puts(&c->sql, " ORDER BY `at` DESC LIMIT 1");
    if ((rc = my_query(c, c->ping_table, 1, &r, err)) != 0)
        return rc;
    if (r == NULL || (row = mysql_fetch_row(r)) == NULL) {
        rc = my_err(c, err, TRIFLE_ENOTFOUND, 0, "no ping for key %s", key);
        goto done;
    }
    {
        unsigned long *len = mysql_fetch_lengths(r);
        if (!my_parse_at(row[0], len[0], &at)) {
            rc = my_err(c, err, TRIFLE_EDRIVER, 0, "invalid ping time for key %s", key);
            goto done;
        }
        memset(&ctx, 0, sizeof(ctx));
        ctx.c = c;
        ctx.sink = sink;
        if (row[1] != NULL)
            rc = my_flatten(c, row[1], len[1], my_scan_leaf, &ctx);
    }
    if (rc != 0) {
        rc = rc == TRIFLE_ENOMEM ? my_oom(c, err)
                                 : my_err(c, err, rc, 0, "cannot deliver the ping of key %s", key);
        goto done;
    }
    *at_out = at;

done:
    if (r != NULL)
        mysql_free_result(r);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * The plugin's one export
 */

DRV_SQL_DRIVER(my, MY_NAME, "1.0.0", "mysql");

/* The entry's one-time work (the loader runs it once, under its mutex): mysql_library_init(),
 * which is not thread-safe, and pinning libmariadb in memory. Its one-time state (error texts,
 * client plugins, configuration paths) can only be freed by mysql_library_end(), which would
 * break any other user of the library in this process; pinned, the library and that state stay
 * together when trifle_shutdown() unloads this plugin, instead of being orphaned (and reported as
 * a leak by LeakSanitizer). */
static int my_init_once(void)
{
    void (*fn)(void) = (void (*)(void))mysql_init;
    void *sym;
    Dl_info info;

    memcpy(&sym, &fn, sizeof(sym)); /* function → object pointer, the POSIX way */
    if (dladdr(sym, &info) != 0 && info.dli_fname != NULL)
        (void)dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
    return mysql_library_init(0, NULL, NULL);
}

TRIFLE_DRIVER_DEFINE_WITH_INIT(mysql, my_driver, my_init_once())
