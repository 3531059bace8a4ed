/* The Redis driver plugin (SPEC §7.7) through its ABI: the test loads the built trifle_redis.so
 * with the core's loader, plays the host itself (allocator with failure injection, error_set,
 * emit into a sink, the core's number printer/parser) and calls the operation table directly.
 *
 * Three kinds of test:
 *  - offline: URL and parameter errors, a closed port (ECONN), a listener that never answers
 *    (ETIMEDOUT);
 *  - a scripted fake server (a forked child speaking RESP) for what a real server will not do on
 *    demand: refuse credentials, lose the reply of a write, forget the script, close an idle
 *    connection, hang;
 *  - a real server from TRIFLE_TEST_URI_REDIS, inspected with a small RESP client of this file
 *    (the test links no hiredis): key and field layout, the §7.7 script's all-or-nothing checks,
 *    large batches, ACL credentials, reconnect after CLIENT KILL, 8 processes × 2,000 incs, drop.
 *
 * Without TRIFLE_TEST_URI_REDIS the real-server tests are skipped and the program exits 77 once
 * everything else has passed (1 with CI=true or TRIFLE_TEST_STRICT=1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "driver_host.h"
#include "server_helpers.h"
#include "loader_int.h"
#include "trifle/driver.h"
#include "trifle/storage.h"

#define T0 INT64_C(1736935200) /* 2025-01-15T10:00:00Z */

static const trifle_driver *drv;
static const char *server_url; /* TRIFLE_TEST_URI_REDIS, or NULL */
static char run_id[32];        /* "ut<pid>": prefixes of this run */

/* ---------------------------------------------------------------------------------------------
 * Opening connections
 */

/* Open url in identifier mode `mode` with extra NULL-terminated name/value pairs (URL
 * parameters, already decoded). */
static int conn_open_mode(trifle_conn **c, const char *url, int mode, const char *const *extra,
                          trifle_error *err)
{
    *c = NULL;
    return test_host_open(drv, c, url, mode, "::", extra, err);
}

static int conn_open(trifle_conn **c, const char *url, const char *const *extra, trifle_error *err)
{
    return conn_open_mode(c, url, TRIFLE_ID_FULL, extra, err);
}

/* The test server's URL split into the driver URL and its query parameters. */
static char base_url[512];
static const char *base_params[8];

static void server_split(void)
{
    char *q, *p;
    size_t n = 0;
    static char query[512];

    (void)snprintf(base_url, sizeof(base_url), "%s", server_url);
    if ((q = strchr(base_url, '?')) == NULL)
        return;
    *q++ = '\0';
    (void)snprintf(query, sizeof(query), "%s", q);
    for (p = query; p != NULL && *p != '\0' && n + 2 < 8;) {
        char *amp = strchr(p, '&'), *eq;
        if (amp != NULL)
            *amp++ = '\0';
        if ((eq = strchr(p, '=')) != NULL) {
            *eq = '\0';
            base_params[n++] = p;
            base_params[n++] = eq + 1;
        }
        p = amp;
    }
}

/* Open the test server with prefix "<run_id>_<name>", separator sep and more pairs. */
static int server_try_open(trifle_conn **c, const char *name, const char *sep,
                           const char *const *extra, trifle_error *err)
{
    static char prefix[128];
    const char *opts[40] = {"prefix", prefix};
    size_t n = 2, i;

    (void)snprintf(prefix, sizeof(prefix), "%s_%s", run_id, name);
    for (i = 0; base_params[i] != NULL; i += 2)
        if (strcmp(base_params[i], "prefix") != 0) {
            opts[n++] = base_params[i];
            opts[n++] = base_params[i + 1];
        }
    while (extra != NULL && *extra != NULL && n < 38)
        opts[n++] = *extra++;
    opts[n] = NULL;
    *c = NULL;
    return test_host_open(drv, c, base_url, TRIFLE_ID_FULL, sep, opts, err);
}

static trifle_conn *server_open_sep(const char *name, const char *sep, const char *const *extra)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_conn *c = NULL;

    if (server_try_open(&c, name, sep, extra, &err) != 0)
        fail_msg("open %s: %s", base_url, err.message);
    return c;
}

static trifle_conn *server_open(const char *name)
{
    return server_open_sep(name, "::", NULL);
}

/* ---------------------------------------------------------------------------------------------
 * A small RESP client for looking at the server the way redis-cli does
 */

typedef struct rv {
    char type; /* + - : $ *, or 0 for a nil */
    long long i;
    char *s;
    size_t len;
    size_t n;
    struct rv **e;
} rv;

static void rv_free(rv *v)
{
    if (v != NULL) {
        while (v->n > 0)
            rv_free(v->e[--v->n]);
        free(v->e);
        free(v->s);
        free(v);
    }
}

/* Parse one value of b[*pos..len): 1 complete, 0 incomplete, -1 malformed. */
static int rv_parse(const char *b, size_t len, size_t *pos, rv **out)
{
    const char *line = b + *pos, *end;
    size_t p = *pos, i;
    long long n;
    rv *v;

    *out = NULL;
    if (p >= len || (end = memchr(line, '\n', len - p)) == NULL)
        return 0;
    if (end == line || end[-1] != '\r')
        return -1;
    v = calloc(1, sizeof(*v));
    assert_non_null(v);
    v->type = line[0];
    p = (size_t)(end + 1 - b);
    switch (v->type) {
    case '+':
    case '-':
        v->len = (size_t)(end - 1 - (line + 1));
        v->s = strndup(line + 1, v->len);
        break;
    case ':':
        v->i = strtoll(line + 1, NULL, 10);
        break;
    case '$':
    case '*':
        n = strtoll(line + 1, NULL, 10);
        if (n < 0) { /* a null bulk string or array */
            v->type = 0;
        } else if (v->type == '$') {
            if (len - p < (size_t)n + 2) {
                rv_free(v);
                return 0;
            }
            v->len = (size_t)n;
            v->s = malloc(v->len + 1);
            memcpy(v->s, b + p, v->len);
            v->s[v->len] = '\0';
            p += v->len + 2;
        } else {
            v->e = calloc((size_t)n + 1, sizeof(*v->e));
            for (i = 0; i < (size_t)n; i++) {
                int rc = rv_parse(b, len, &p, &v->e[i]);
                if (rc != 1) {
                    v->n = i;
                    rv_free(v);
                    return rc;
                }
                v->n = i + 1;
            }
        }
        break;
    default:
        rv_free(v);
        return -1;
    }
    *pos = p;
    *out = v;
    return 1;
}

typedef struct rconn {
    int fd;
    char *buf;
    size_t len, cap, off; /* buf[off..len) is unread */
} rconn;

/* Read one complete value from fd; NULL at end of file. */
static rv *rconn_read(rconn *c)
{
    for (;;) {
        size_t pos = c->off;
        rv *v = NULL;
        int rc = rv_parse(c->buf, c->len, &pos, &v);
        ssize_t got;

        assert_true(rc >= 0);
        if (rc == 1) {
            c->off = pos;
            return v;
        }
        if (c->off > 0) { /* keep only the unread part */
            memmove(c->buf, c->buf + c->off, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        }
        if (c->cap - c->len < 65536) {
            c->cap = c->cap * 2 + 65536;
            c->buf = realloc(c->buf, c->cap);
            assert_non_null(c->buf);
        }
        got = read(c->fd, c->buf + c->len, c->cap - c->len);
        if (got <= 0)
            return NULL;
        c->len += (size_t)got;
    }
}

static void write_all(int fd, const char *p, size_t n)
{
    size_t off = 0;
    ssize_t w;

    /* until all is sent, the peer has gone (0), or a write fails other than by a signal */
    while (off < n && (w = write(fd, p + off, n - off)) != 0) {
        if (w > 0)
            off += (size_t)w;
        else if (errno != EINTR)
            return;
    }
}

/* Send argv[0..argc) (lengths from strlen, or lens when given) and read the reply. */
static rv *rconn_cmdv(rconn *c, int argc, const char *const *argv, const size_t *lens)
{
    char hdr[32];
    int i;

    (void)snprintf(hdr, sizeof(hdr), "*%d\r\n", argc);
    write_all(c->fd, hdr, strlen(hdr));
    for (i = 0; i < argc; i++) {
        size_t n = lens != NULL ? lens[i] : strlen(argv[i]);
        (void)snprintf(hdr, sizeof(hdr), "$%zu\r\n", n);
        write_all(c->fd, hdr, strlen(hdr));
        write_all(c->fd, argv[i], n);
        write_all(c->fd, "\r\n", 2);
    }
    return rconn_read(c);
}

/* rconn_cmd(c, "HGETALL", key, NULL) */
static rv *rconn_cmd(rconn *c, ...)
{
    const char *argv[64];
    int argc = 0;
    va_list ap;

    va_start(ap, c);
    while (argc < 64 && (argv[argc] = va_arg(ap, const char *)) != NULL)
        argc++;
    va_end(ap);
    return rconn_cmdv(c, argc, argv, NULL);
}

/* Like rconn_cmd, for commands whose reply is not looked at beyond "not an error". */
#define RCMD_OK(c, ...)                             \
    do {                                            \
        rv *r_ = rconn_cmd((c), __VA_ARGS__, NULL); \
        assert_non_null(r_);                        \
        if (r_->type == '-')                        \
            fail_msg("redis: %s", r_->s);           \
        rv_free(r_);                                \
    } while (0)

static int tcp_connect(const char *h, int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (strcmp(h, "localhost") == 0)
        h = "127.0.0.1";
    assert_int_equal(inet_pton(AF_INET, h, &a.sin_addr), 1);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        fail_msg("connect %s:%d: %s", h, port, strerror(errno));
    return fd;
}

/* A raw connection to the test server (credentials and database from its URL). */
static rconn *rconn_open(void)
{
    rconn *c = calloc(1, sizeof(*c));
    char hostbuf[256] = "127.0.0.1", user[128] = "", pass[128] = "", db[16] = "";
    const char *p = base_url, *at, *slash;
    size_t i;
    int port = 6379;

    assert_non_null(c);
    if (strncmp(p, "redis+unix://", 13) == 0) {
        struct sockaddr_un a;
        p += 13;
        if ((at = strchr(p, '@')) != NULL)
            p = at + 1;
        memset(&a, 0, sizeof(a));
        a.sun_family = AF_UNIX;
        (void)snprintf(a.sun_path, sizeof(a.sun_path), "%.100s", p);
        c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
            fail_msg("connect %s: %s", a.sun_path, strerror(errno));
    } else {
        assert_memory_equal(p, "redis://", 8);
        p += 8;
        slash = strchr(p, '/');
        at = strchr(p, '@');
        if (at != NULL && (slash == NULL || at < slash)) {
            const char *colon = memchr(p, ':', (size_t)(at - p));
            if (colon != NULL) {
                (void)snprintf(user, sizeof(user), "%.*s", (int)(colon - p), p);
                (void)snprintf(pass, sizeof(pass), "%.*s", (int)(at - colon - 1), colon + 1);
            }
            p = at + 1;
        }
        i = strcspn(p, ":/");
        if (i > 0)
            (void)snprintf(hostbuf, sizeof(hostbuf), "%.*s", (int)i, p);
        if (p[i] == ':')
            port = (int)strtol(p + i + 1, NULL, 10);
        if (slash != NULL && slash[1] != '\0')
            (void)snprintf(db, sizeof(db), "%s", slash + 1);
        c->fd = tcp_connect(hostbuf, port);
    }
    if (pass[0] != '\0') {
        if (user[0] != '\0')
            RCMD_OK(c, "AUTH", user, pass);
        else
            RCMD_OK(c, "AUTH", pass);
    }
    for (i = 0; base_params[i] != NULL; i += 2)
        if (strcmp(base_params[i], "db") == 0)
            (void)snprintf(db, sizeof(db), "%s", base_params[i + 1]);
    if (db[0] != '\0')
        RCMD_OK(c, "SELECT", db);
    return c;
}

static void rconn_close(rconn *c)
{
    if (c == NULL)
        return;
    close(c->fd);
    free(c->buf);
    free(c);
}

/* HGET as a string ("" and a test failure when missing). */
static char *rget(rconn *c, const char *key, const char *field)
{
    static char out[256];
    rv *r = rconn_cmd(c, "HGET", key, field, NULL);

    assert_non_null(r);
    if (r->type != '$')
        fail_msg("HGET %s %s: no value (type %c)", key, field, r->type ? r->type : '0');
    (void)snprintf(out, sizeof(out), "%s", r->s);
    rv_free(r);
    return out;
}

static long long rint_cmd(rconn *c, const char *cmd, const char *key)
{
    rv *r = rconn_cmd(c, cmd, key, NULL);
    long long v;

    assert_non_null(r);
    assert_int_equal(r->type, ':');
    v = r->i;
    rv_free(r);
    return v;
}

/* ---------------------------------------------------------------------------------------------
 * Items
 */

typedef struct titem {
    char id[256];
    trifle_leaf leaves[8];
    trifle_entry e;
} titem;

/* An item for bucket (key, 1h, at) with the NULL-terminated leaves "path", value, ... */
static void titem_init(titem *t, const char *key, int64_t at, ...)
{
    va_list ap;
    const char *path;
    size_t n = 0;

    memset(t, 0, sizeof(*t));
    (void)snprintf(t->id, sizeof(t->id), "%s::1h::%lld", key, (long long)at);
    va_start(ap, at);
    while (n < 8 && (path = va_arg(ap, const char *)) != NULL) {
        t->leaves[n].path = path;
        t->leaves[n].value = va_arg(ap, double);
        n++;
    }
    va_end(ap);
    t->e.bucket.id = t->id;
    t->e.bucket.key = key;
    t->e.bucket.granularity = "1h";
    t->e.bucket.at = at;
    t->e.leaves = t->leaves;
    t->e.n_leaves = n;
}

static int do_write(trifle_conn *c, int is_set, const titem *items, size_t n,
                    trifle_write_result *res, trifle_error *err)
{
    trifle_entry e[16];
    size_t i;

    assert_true(n <= 16);
    for (i = 0; i < n; i++)
        e[i] = items[i].e;
    return (is_set ? drv->set : drv->inc)(c, e, n, res, err);
}

static void write_ok(trifle_conn *c, int is_set, const titem *items, size_t n)
{
    trifle_write_result res = TRIFLE_WRITE_RESULT_INIT;
    trifle_error err = TRIFLE_ERROR_INIT;

    if (do_write(c, is_set, items, n, &res, &err) != 0)
        fail_msg("%s: %s", is_set ? "set" : "inc", err.message);
}

/* get of one bucket (key, 1h, at). */
static trifle_sink *get1(trifle_conn *c, const char *key, int64_t at)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_bucket b;
    char id[256];
    trifle_sink *s = sink_new(1);

    (void)snprintf(id, sizeof(id), "%s::1h::%lld", key, (long long)at);
    b.id = id;
    b.key = key;
    b.granularity = "1h";
    b.at = at;
    if (drv->get(c, &b, 1, s, &err) != 0)
        fail_msg("get %s: %s", id, err.message);
    return s;
}

/* The full hash name of (key, 1h, at) under the prefix of test `name`. */
static const char *hkey(const char *name, const char *key, int64_t at)
{
    return test_fmt("%s_%s::%s::1h::%lld", run_id, name, key, (long long)at);
}

/* ---------------------------------------------------------------------------------------------
 * Offline: URL and parameters
 */

static void expect_open_error(const char *url, const char *const *extra, int code,
                              const char *message)
{
    trifle_conn *c = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    int rc = conn_open(&c, url, extra, &err);

    test_open_refused(url, rc, c, &err, code, message);
}

static void t_config_errors(void **state)
{
    static const char *const unknown[] = {"table", "x", NULL};
    static const char *const bad_timeout[] = {"timeout_ms", "0", NULL};
    static const char *const bad_timeout2[] = {"timeout_ms", "5s", NULL};
    static const char *const bad_db[] = {"db", "-1", NULL};
    static const char *const db3[] = {"db", "3", NULL};
    /* URL, options, and what the ECONFIG message says */
    static const struct {
        const char *url;
        const char *const *extra;
        const char *message;
    } bad[] = {
        {"redis://127.0.0.1:1", unknown, "invalid driver URL: unknown parameter table"},
        {"redis://127.0.0.1:1", bad_timeout, "invalid option timeout_ms: 0"},
        {"redis://127.0.0.1:1", bad_timeout2, "invalid option timeout_ms: 5s"},
        {"redis+unix:///tmp/x.sock", bad_db, "invalid option db: -1"},
        {"redis://127.0.0.1:1/2", db3, "disagree"},
        {"redis://127.0.0.1:99999", NULL, "invalid port \"99999\""},
        {"redis://127.0.0.1:x", NULL, "invalid port \"x\""},
        {"redis://127.0.0.1/abc", NULL, "database must be a number, not \"abc\""},
        {"redis://secret@127.0.0.1", NULL, "credentials must be [user]:password"},
        {"redis://:a%zz@127.0.0.1", NULL, "bad percent-encoding"},
        {"redis://[::1", NULL, "missing ']'"},
        {"redis+unix://", NULL, "missing socket path"},
        {"redis+unix://host/x.sock", NULL, "use redis+unix:///path/to/socket"},
        {"rediss://127.0.0.1", NULL, "TLS is not supported"},
        {"http://127.0.0.1", NULL, "expected redis://"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_open_error(bad[i].url, bad[i].extra, TRIFLE_ECONFIG, bad[i].message);
    /* the driver double-checks the mode the core already refused (SPEC §13.2 wording) */
    {
        trifle_conn *c = NULL;
        trifle_error err = TRIFLE_ERROR_INIT;

        assert_int_equal(conn_open_mode(&c, "redis://127.0.0.1:1", TRIFLE_ID_PARTIAL, NULL, &err),
                         TRIFLE_ECONFIG);
        assert_null(c);
        assert_string_equal(err.message, "redis driver supports only the full identifier mode");
    }
}

/* Through the core: the mode is refused before the driver is asked, and so is rediss://. */
static void t_core_refusals(void **state)
{
    trifle_storage_options o = TRIFLE_STORAGE_OPTIONS_INIT;
    trifle_storage *st = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;

    (void)state;
    o.driver_path = TRIFLE_BUILD_PLUGIN_DIR;
    assert_int_equal(trifle_storage_open(&st, "redis://127.0.0.1:1?joined=partial", &o, &err),
                     TRIFLE_ECONFIG);
    assert_string_equal(err.message, "redis driver supports only the full identifier mode");
    assert_null(st);
    o.joined = TRIFLE_ID_SEPARATED;
    assert_int_equal(trifle_storage_open(&st, "redis://127.0.0.1:1", &o, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "redis driver supports only the full identifier mode");
    o.joined = TRIFLE_ID_FULL;
    assert_int_equal(trifle_storage_open(&st, "rediss://127.0.0.1", &o, &err), TRIFLE_ECONFIG);
    assert_string_equal(err.message, "invalid driver URL: TLS is not supported by this build");
    /* an unknown parameter reaches the driver percent-decoded; the password never shows */
    assert_int_equal(trifle_storage_open(&st, "redis://:s3cret@127.0.0.1:1?ta%62le=x", &o, &err),
                     TRIFLE_ECONFIG);
    assert_string_equal(err.message, "invalid driver URL: unknown parameter table");
    assert_null(strstr(err.message, "s3cret"));
}

/* A port nobody listens on: bind one, note it, close it. */
static int closed_port(void)
{
    struct sockaddr_in a;
    socklen_t n = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void t_unreachable(void **state)
{
    char url[128];
    trifle_conn *c = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;

    (void)state;
    (void)snprintf(url, sizeof(url), "redis://:pw@127.0.0.1:%d", closed_port());
    assert_int_equal(conn_open(&c, url, NULL, &err), TRIFLE_ECONN);
    assert_null(c);
    assert_non_null(strstr(err.message, "cannot connect to redis at 127.0.0.1:"));
    assert_non_null(strstr(err.message, strerror(ECONNREFUSED)));
    assert_int_equal(err.native, 1 /* REDIS_ERR_IO */);
    assert_null(strstr(err.message, "pw"));
    assert_int_equal(conn_open(&c, "redis+unix:///nonexistent/trifle.sock", NULL, &err),
                     TRIFLE_ECONN);
    assert_non_null(strstr(err.message, "/nonexistent/trifle.sock"));
}

/* The TCP handshake completes in the kernel's backlog, but nobody ever answers the PING. */
static void t_timeout_open(void **state)
{
    static const char *const fast[] = {"timeout_ms", "200", NULL};
    char url[128];
    trifle_conn *c = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    int port, fd = test_listen(&port);

    (void)state;
    (void)snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    assert_int_equal(conn_open(&c, url, fast, &err), TRIFLE_ETIMEDOUT);
    assert_null(c);
    assert_non_null(strstr(err.message, "timed out after 200 ms"));
    close(fd);
}

/* ---------------------------------------------------------------------------------------------
 * A scripted fake server: a forked child that answers each command as the scenario says.
 */

#define FAKE_CLOSE ((const char *)1)  /* close the connection instead of answering */
#define FAKE_SILENT ((const char *)2) /* never answer; wait for the client to go away */
/* a reply starting with '!' is sent without the '!', then the connection is closed */

/* The answer to command number `cmd` (0-based) of connection number `conn`. */
typedef const char *(*fake_fn)(int conn, int cmd, const rv *argv);

typedef struct fake {
    pid_t pid;
    int port;
    char url[128];
} fake;

static int arg_is(const rv *a, size_t i, const char *s)
{
    return a->n > i && a->e[i]->s != NULL && strcasecmp(a->e[i]->s, s) == 0;
}

static void fake_serve(int lfd, fake_fn fn)
{
    int conn;

    for (conn = 0;; conn++) {
        rconn rc = {accept(lfd, NULL, NULL), NULL, 0, 0, 0};
        int cmd;
        if (rc.fd < 0)
            _exit(2);
        for (cmd = 0;; cmd++) {
            rv *a = rconn_read(&rc);
            const char *reply;
            if (a == NULL)
                break;
            reply = fn(conn, cmd, a);
            rv_free(a);
            if (reply == FAKE_CLOSE)
                break;
            if (reply == FAKE_SILENT) {
                char tmp[4096];
                while (read(rc.fd, tmp, sizeof(tmp)) > 0)
                    ;
                break;
            }
            if (reply[0] == '!') { /* answer, then hang up */
                write_all(rc.fd, reply + 1, strlen(reply + 1));
                break;
            }
            write_all(rc.fd, reply, strlen(reply));
        }
        close(rc.fd);
        free(rc.buf);
    }
}

static pid_t fake_pid; /* the running fake server, killed by fake_teardown if a test fails */

static fake fake_start(fake_fn fn, const char *params)
{
    fake f;
    int lfd = test_listen(&f.port);

    (void)snprintf(f.url, sizeof(f.url), "redis://127.0.0.1:%d%s", f.port, params);
    f.pid = fork();
    assert_true(f.pid >= 0);
    if (f.pid == 0) {
        (void)signal(SIGPIPE, SIG_IGN);
        alarm(60); /* never outlive a stuck test run */
        fake_serve(lfd, fn);
        _exit(0);
    }
    close(lfd);
    fake_pid = f.pid;
    return f;
}

static void fake_stop(fake *f)
{
    int status;

    (void)kill(f->pid, SIGKILL);
    (void)waitpid(f->pid, &status, 0);
    fake_pid = 0;
}

static int fake_teardown(void **state)
{
    fake f;

    (void)state;
    if (fake_pid > 0) {
        f.pid = fake_pid;
        fake_stop(&f);
    }
    return 0;
}

#define SHA "0123456789abcdef0123456789abcdef01234567"
#define SHA_REPLY "$40\r\n" SHA "\r\n"

/* Commands every scenario answers the same way. */
static const char *fake_common(const rv *a)
{
    if (arg_is(a, 0, "PING"))
        return "+PONG\r\n";
    if (arg_is(a, 0, "SCRIPT"))
        return SHA_REPLY;
    return NULL;
}

/* A scenario that answers the common commands, and command cmd (NULL: any other) with first on
 * connection 0 and later on the others; anything else is an error. */
typedef struct fake_script {
    const char *cmd, *first, *later;
} fake_script;

static const fake_script *fake_scene; /* what fake_scripted plays (read by the forked server) */

static const char *fake_scripted(int conn, int cmd, const rv *a)
{
    const char *r = fake_common(a);

    (void)cmd;
    if (r != NULL)
        return r;
    if (fake_scene->cmd == NULL || arg_is(a, 0, fake_scene->cmd))
        return conn == 0 ? fake_scene->first : fake_scene->later;
    return "-ERR unexpected\r\n";
}

/* A fake server playing scene. */
static fake fake_play(const fake_script *scene)
{
    fake_scene = scene;
    return fake_start(fake_scripted, "");
}

static const char *fake_noauth(int conn, int cmd, const rv *a)
{
    (void)conn, (void)cmd, (void)a;
    return "-NOAUTH Authentication required.\r\n";
}

static const char *fake_wrongpass(int conn, int cmd, const rv *a)
{
    (void)conn, (void)cmd;
    if (arg_is(a, 0, "AUTH"))
        return a->n == 3 && strcmp(a->e[1]->s, "alice") == 0
                   ? "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
                   : "-ERR unexpected AUTH form\r\n";
    return "-NOAUTH Authentication required.\r\n";
}

static void t_fake_auth(void **state)
{
    fake f = fake_start(fake_noauth, "");
    trifle_conn *c = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    char url[160];

    (void)state;
    assert_int_equal(conn_open(&c, f.url, NULL, &err), TRIFLE_EAUTH);
    assert_non_null(strstr(err.message, "rejected the credentials: NOAUTH"));
    fake_stop(&f);

    f = fake_start(fake_wrongpass, "");
    (void)snprintf(url, sizeof(url), "redis://alice:hunter2@127.0.0.1:%d", f.port);
    assert_int_equal(conn_open(&c, url, NULL, &err), TRIFLE_EAUTH);
    assert_non_null(strstr(err.message, "WRONGPASS"));
    assert_null(strstr(err.message, "hunter2"));
    fake_stop(&f);
}

/* The write reaches the server, which closes the connection without answering. */
static const fake_script lost_reply = {"EVALSHA", FAKE_CLOSE, FAKE_CLOSE};

static void t_fake_lost_reply(void **state)
{
    fake f = fake_play(&lost_reply);
    trifle_conn *c = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_write_result res = TRIFLE_WRITE_RESULT_INIT;
    titem it;

    (void)state;
    assert_int_equal(conn_open(&c, f.url, NULL, &err), 0);
    titem_init(&it, "k", T0, "a", 1.0, NULL);
    assert_int_equal(do_write(c, 0, &it, 1, &res, &err), TRIFLE_ECONN);
    assert_int_equal(res.outcome_unknown, 1);
    assert_int_equal(res.applied, 0);
    assert_int_equal(res.failed_item, -1);
    assert_non_null(strstr(err.message, "EVALSHA failed"));
    /* write_marked too: the script may have run, mark included */
    {
        trifle_mark m = {"j", 3};
        res = (trifle_write_result)TRIFLE_WRITE_RESULT_INIT;
        assert_int_equal(drv->write_marked(c, NULL, 0, &it.e, 1, &m, &res, &err), TRIFLE_ECONN);
        assert_int_equal(res.outcome_unknown, 1);
        assert_int_equal(res.applied, 0);
        assert_int_equal(res.failed_item, -1);
    }
    drv->close(c);
    fake_stop(&f);
}

/* The server forgot the script: EVALSHA → NOSCRIPT, then EVAL (carrying the script) works. */
static const char *fake_noscript(int conn, int cmd, const rv *a)
{
    const char *r = fake_common(a);

    (void)conn, (void)cmd;
    if (r != NULL)
        return r;
    if (arg_is(a, 0, "EVALSHA"))
        return "-NOSCRIPT No matching script. Please use EVAL.\r\n";
    if (arg_is(a, 0, "EVAL") && a->n > 3 && strstr(a->e[1]->s, "HINCRBYFLOAT") != NULL &&
        arg_is(a, 2, "2"))
        return ":2\r\n";
    return "-ERR unexpected\r\n";
}

/* The script reports stored data in the way of item 1. */
#define EDATA_REPLY "-TRIFLE_EDATA 1 not a number trfl::k::1h::0 a\r\n"
static const fake_script edata = {NULL, EDATA_REPLY, EDATA_REPLY};

static void t_fake_script_replies(void **state)
{
    fake f = fake_start(fake_noscript, "");
    trifle_conn *c = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_write_result res = TRIFLE_WRITE_RESULT_INIT;
    titem it[2];

    (void)state;
    titem_init(&it[0], "k", T0, "a", 1.0, NULL);
    titem_init(&it[1], "k", T0 + 3600, "a", 1.0, NULL);
    assert_int_equal(conn_open(&c, f.url, NULL, &err), 0);
    assert_int_equal(do_write(c, 0, it, 2, &res, &err), 0);
    drv->close(c);
    fake_stop(&f);

    f = fake_play(&edata);
    assert_int_equal(conn_open(&c, f.url, NULL, &err), 0);
    assert_int_equal(do_write(c, 0, it, 2, &res, &err), TRIFLE_EDATA);
    assert_int_equal(res.failed_item, 1);
    assert_int_equal(res.applied, 0);
    assert_int_equal(res.outcome_unknown, 0);
    assert_string_equal(err.message, "TRIFLE_EDATA 1 not a number trfl::k::1h::0 a");
    drv->close(c);
    fake_stop(&f);
}

/* Connection 0 answers one write and hangs up (idle timeout, restart); connection 1 works. */
static const fake_script idle_close = {"EVALSHA", "!:1\r\n", ":1\r\n"};

/* The first HGETALL loses the connection before any reply; the read is retried once. */
static const fake_script read_retry = {"HGETALL", FAKE_CLOSE, "*2\r\n$1\r\na\r\n$1\r\n5\r\n"};

static void t_fake_reconnect(void **state)
{
    fake f;
    trifle_conn *c = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_write_result res = TRIFLE_WRITE_RESULT_INIT;
    trifle_sink *s;
    titem it;

    (void)state;
    /* the second write must not be sent on the dead connection, where its reply would be
     * lost (ECONN + outcome_unknown): poll() notices the close and the driver reconnects */
    f = fake_play(&idle_close);
    assert_int_equal(conn_open(&c, f.url, NULL, &err), 0);
    titem_init(&it, "k", T0, "a", 1.0, NULL);
    assert_int_equal(do_write(c, 0, &it, 1, &res, &err), 0);
    sleep_ms(50); /* let the FIN arrive */
    log_info = 0;
    if (do_write(c, 0, &it, 1, &res, &err) != 0)
        fail_msg("write after a server-side close: %s", err.message);
    assert_int_equal(log_info, 1); /* "reconnecting to redis at ..." */
    drv->close(c);
    fake_stop(&f);

    f = fake_play(&read_retry);
    assert_int_equal(conn_open(&c, f.url, NULL, &err), 0);
    log_warn = 0;
    s = get1(c, "k", T0);
    assert_true(sink_value(s, 0, "a") == 5.0);
    assert_int_equal(log_warn, 1);
    sink_free(s);
    drv->close(c);
    fake_stop(&f);
}

/* HGETALL never answered: ETIMEDOUT; the next call works on a new connection. */
static const fake_script slow = {"HGETALL", FAKE_SILENT, "*0\r\n"};

static void t_fake_timeout(void **state)
{
    static const char *const fast[] = {"timeout_ms", "200", NULL};
    fake f = fake_play(&slow);
    trifle_conn *c = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_bucket b = {"k::1h::0", "k", "1h", 0};
    trifle_sink *s = sink_new(1);

    (void)state;
    assert_int_equal(conn_open(&c, f.url, fast, &err), 0);
    assert_int_equal(drv->get(c, &b, 1, s, &err), TRIFLE_ETIMEDOUT);
    assert_non_null(strstr(err.message, "HGETALL timed out after 200 ms"));
    assert_int_equal(drv->get(c, &b, 1, s, &err), 0);
    assert_int_equal(s->emits, 0);
    sink_free(s);
    drv->close(c);
    fake_stop(&f);
}

/* Connection 0 resets (closes with unread data) after the first HGETALL of a request of
 * several megabytes, while the driver is still sending it: the send fails (ECONNRESET), and the
 * read is sent again on a new connection. The test keeps SIGPIPE's default action, so a write
 * that raised it would end the program. */
static const fake_script reset = {"HGETALL", FAKE_CLOSE, "*0\r\n"};

static void t_fake_reset(void **state)
{
    enum { N = 200000 }; /* about 9 MB of HGETALLs: more than the socket buffers hold */
    fake f = fake_play(&reset);
    trifle_conn *c = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_bucket *b = calloc(N, sizeof(*b));
    trifle_sink *s = sink_new(N);
    size_t i;

    (void)state;
    assert_non_null(b);
    for (i = 0; i < N; i++)
        b[i].id = "some_metric_key::1h::1736935200";
    assert_int_equal(conn_open(&c, f.url, NULL, &err), 0);
    log_warn = 0;
    if (drv->get(c, b, N, s, &err) != 0)
        fail_msg("get after a reset: %s", err.message);
    assert_int_equal(log_warn, 1);
    assert_int_equal(s->emits, 0);
    sink_free(s);
    free(b);
    drv->close(c);
    fake_stop(&f);
}

/* ---------------------------------------------------------------------------------------------
 * Real server: layout as redis-cli sees it
 */

static void t_layout(void **state)
{
    trifle_conn *c;
    rconn *r;
    titem it[3];
    trifle_sink *s;

    (void)state;
    c = server_open("layout");
    r = rconn_open();
    titem_init(&it[0], "event", T0, "count", 1.0, "meta.duration", 2.5, NULL);
    titem_init(&it[1], "__system__key__", T0, "count", 1.0, "keys.event", 1.0, NULL);
    write_ok(c, 0, it, 2);
    write_ok(c, 0, it, 2);
    assert_string_equal(rget(r, hkey("layout", "event", T0), "count"), "2");
    assert_string_equal(rget(r, hkey("layout", "event", T0), "meta.duration"), "5");
    assert_string_equal(rget(r, hkey("layout", "__system__key__", T0), "keys.event"), "2");
    assert_int_equal(rint_cmd(r, "HLEN", hkey("layout", "event", T0)), 2);

    /* set: canonical number text (SPEC §4.5); other leaves of the bucket are kept */
    titem_init(&it[2], "event", T0, "big", 1e21, "ratio", 0.1, "tiny", 1.5e-7, "neg", -0.0, NULL);
    write_ok(c, 1, &it[2], 1);
    assert_string_equal(rget(r, hkey("layout", "event", T0), "big"), "1e+21");
    assert_string_equal(rget(r, hkey("layout", "event", T0), "ratio"), "0.1");
    assert_string_equal(rget(r, hkey("layout", "event", T0), "tiny"), "1.5e-7");
    assert_string_equal(rget(r, hkey("layout", "event", T0), "neg"), "0");
    assert_string_equal(rget(r, hkey("layout", "event", T0), "count"), "2");

    /* increments of a set value: HINCRBYFLOAT reads 1e+21 and keeps decimal text */
    titem_init(&it[2], "event", T0, "big", 1.0, "ratio", 0.2, NULL);
    write_ok(c, 0, &it[2], 1);
    s = get1(c, "event", T0);
    assert_true(sink_value(s, 0, "big") == 1e21 + 1);
    assert_true(fabs(sink_value(s, 0, "ratio") - 0.3) < 1e-15);
    assert_true(sink_value(s, 0, "count") == 2.0);
    assert_true(sink_value(s, 0, "meta.duration") == 5.0);
    sink_free(s);

    test_drop_ok(drv, c);
    assert_int_equal(rint_cmd(r, "EXISTS", hkey("layout", "event", T0)), 0);
    rconn_close(r);
    drv->close(c);
}

/* SPEC §3.2: prefix `custom` and separator `--` give `custom--events--1h--1738407600`; an empty
 * prefix leaves the part out. */
static void t_prefix_separator(void **state)
{
    static const char *const custom[] = {"prefix", "custom_ut", NULL};
    static const char *const empty[] = {"prefix", "", NULL};
    char key[128];
    trifle_conn *c;
    rconn *r;
    titem it;
    trifle_error err = TRIFLE_ERROR_INIT;

    (void)state;
    r = rconn_open();
    c = server_open_sep("sep", "--", custom);
    memset(&it, 0, sizeof(it));
    titem_init(&it, "x", 0, "n", 3.0, NULL);
    (void)snprintf(it.id, sizeof(it.id), "events%d--1h--1738407600", (int)getpid());
    write_ok(c, 0, &it, 1);
    (void)snprintf(key, sizeof(key), "custom_ut--events%d--1h--1738407600", (int)getpid());
    assert_string_equal(rget(r, key, "n"), "3");
    RCMD_OK(r, "DEL", key);
    drv->close(c);

    c = server_open_sep("sep", "::", empty);
    (void)snprintf(it.id, sizeof(it.id), "%s_bare::1h::0", run_id);
    write_ok(c, 1, &it, 1);
    assert_string_equal(rget(r, it.id, "n"), "3");
    RCMD_OK(r, "DEL", it.id);
    /* drop refuses to wipe the whole database */
    assert_int_equal(drv->drop(c, &err), TRIFLE_ENOTSUP);
    assert_non_null(strstr(err.message, "non-empty prefix"));
    drv->close(c);
    rconn_close(r);
}

static void t_ping_layout(void **state)
{
    trifle_leaf l[2] = {{"up", 1.0}, {"load.avg", 0.25}};
    trifle_conn *c;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_sink *s;
    rconn *r;
    int64_t at = 0;
    char key[160];
    rv *v;

    (void)state;
    c = server_open("ping");
    r = rconn_open();
    (void)snprintf(key, sizeof(key), "%s_ping::health::ping", run_id);
    assert_int_equal(drv->ping(c, "health", T0 + 7, l, 2, &err), 0);
    assert_string_equal(rget(r, key, "at"), "2025-01-15T10:00:07Z");
    assert_string_equal(rget(r, key, "data.up"), "1");
    assert_string_equal(rget(r, key, "data.load.avg"), "0.25");
    /* a new ping replaces the old one whole */
    assert_int_equal(drv->ping(c, "health", T0 + 60, l, 1, &err), 0);
    assert_int_equal(rint_cmd(r, "HLEN", key), 2);
    s = sink_new(1);
    assert_int_equal(drv->scan(c, "health", &at, s, &err), 0);
    assert_true(at == T0 + 60);
    assert_true(sink_value(s, 0, "up") == 1.0);
    assert_false(sink_has(s, 0, "load.avg"));
    sink_free(s);

    /* foreign forms: integer seconds, an offset, non-numeric and malformed data fields */
    RCMD_OK(r, "DEL", key);
    RCMD_OK(r, "HSET", key, "at", "1736935200", "data.x", "4", "data.s", "text", "data..y", "1",
            "other", "9");
    s = sink_new(1);
    assert_int_equal(drv->scan(c, "health", &at, s, &err), 0);
    assert_true(at == T0);
    assert_true(sink_value(s, 0, "x") == 4.0);
    assert_int_equal(s->b[0].n, 1);
    sink_free(s);
    RCMD_OK(r, "HSET", key, "at", "2025-01-15T12:00:00.9+02:00");
    s = sink_new(1);
    assert_int_equal(drv->scan(c, "health", &at, s, &err), 0);
    assert_true(at == T0);
    sink_free(s);
    RCMD_OK(r, "HSET", key, "at", "-86400");
    s = sink_new(1);
    assert_int_equal(drv->scan(c, "health", &at, s, &err), 0);
    assert_true(at == -86400);
    sink_free(s);
    RCMD_OK(r, "HSET", key, "at", "99999999999999999999"); /* would overflow int64 */
    s = sink_new(1);
    assert_int_equal(drv->scan(c, "health", &at, s, &err), TRIFLE_EDRIVER);
    sink_free(s);
    RCMD_OK(r, "HSET", key, "at", "yesterday");
    s = sink_new(1);
    assert_int_equal(drv->scan(c, "health", &at, s, &err), TRIFLE_EDRIVER);
    assert_non_null(strstr(err.message, "invalid ping time \"yesterday\""));
    assert_int_equal(s->emits, 0);
    sink_free(s);

    s = sink_new(1);
    assert_int_equal(drv->scan(c, "nobody", &at, s, &err), TRIFLE_ENOTFOUND);
    sink_free(s);
    v = rconn_cmd(r, "SET", key, "x", NULL);
    rv_free(v);
    s = sink_new(1);
    assert_int_equal(drv->scan(c, "health", &at, s, &err), TRIFLE_EDATA);
    assert_non_null(strstr(err.message, "WRONGTYPE"));
    sink_free(s);
    /* ping replaces whatever the key held */
    assert_int_equal(drv->ping(c, "health", T0, l, 2, &err), 0);
    test_drop_ok(drv, c);
    rconn_close(r);
    drv->close(c);
}

/* Only values matching the §7.7 number pattern that parse finite are read. */
static void t_get_skips(void **state)
{
    static const char *const fields[][3] = {
        {"ok.int", "7", "7"},     {"ok.plus", "+3", "3"},   {"ok.dot", "5.", "5"},
        {"ok.lead", ".5", "0.5"}, {"ok.exp", "1E2", "100"}, {"ok.neg", "-2.5e-1", "-0.25"},
        {"no.text", "abc", NULL}, {"no.hex", "0x10", NULL}, {"no.space", " 5", NULL},
        {"no.inf", "inf", NULL},  {"no.nan", "nan", NULL},  {"no.huge", "1e999", NULL},
        {"no.empty", "", NULL},   {"no.trail", "5 ", NULL}, {"a..b", "1", NULL},
        {".a", "1", NULL},        {"a.", "1", NULL},
    };
    trifle_conn *c;
    rconn *r;
    trifle_sink *s;
    size_t i, n = sizeof(fields) / sizeof(fields[0]);

    (void)state;
    c = server_open("skips");
    r = rconn_open();
    for (i = 0; i < n; i++)
        RCMD_OK(r, "HSET", hkey("skips", "k", T0), fields[i][0], fields[i][1]);
    s = get1(c, "k", T0);
    for (i = 0; i < n; i++) {
        if (fields[i][2] == NULL)
            assert_false(sink_has(s, 0, fields[i][0]));
        else
            assert_true(sink_value(s, 0, fields[i][0]) == strtod(fields[i][2], NULL));
    }
    sink_free(s);
    test_drop_ok(drv, c);
    rconn_close(r);
    drv->close(c);
}

/* get: one pipeline for many buckets, order kept, gaps empty, a wrong-type key is EDATA. */
static void t_get_many(void **state)
{
    enum { N = 8760 };
    trifle_conn *c;
    trifle_bucket *b = calloc(N, sizeof(*b));
    char(*ids)[64] = calloc(N, 64);
    titem it[16];
    trifle_sink *s;
    trifle_error err = TRIFLE_ERROR_INIT;
    rconn *r;
    size_t i;

    (void)state;
    c = server_open("many");
    for (i = 0; i < 16; i++)
        titem_init(&it[i], "m", T0 + (int64_t)i * 3600 * 500, "v", (double)i, NULL);
    write_ok(c, 0, it, 16);
    for (i = 0; i < N; i++) {
        (void)snprintf(ids[i], 64, "m::1h::%lld", (long long)(T0 + (int64_t)i * 3600));
        b[i].id = ids[i];
        b[i].key = "m";
        b[i].granularity = "1h";
        b[i].at = T0 + (int64_t)i * 3600;
    }
    s = sink_new(N);
    assert_int_equal(drv->get(c, b, N, s, &err), 0);
    assert_int_equal(s->emits, 16); /* v = 0 is stored too */
    for (i = 0; i < 16; i++)
        assert_true(sink_value(s, i * 500, "v") == (double)i);
    sink_free(s);
    s = sink_new(N);
    r = rconn_open();
    RCMD_OK(r, "SET", hkey("many", "m", T0 + 3600), "not a hash");
    assert_int_equal(drv->get(c, b, N, s, &err), TRIFLE_EDATA);
    assert_non_null(strstr(err.message, "WRONGTYPE"));
    assert_non_null(strstr(err.message, hkey("many", "m", T0 + 3600)));
    /* the connection stayed in step: the next call reads the right replies */
    sink_free(s);
    s = sink_new(1);
    assert_int_equal(drv->get(c, &b[500], 1, s, &err), 0);
    assert_true(sink_value(s, 0, "v") == 1.0);
    sink_free(s);
    test_drop_ok(drv, c);
    rconn_close(r);
    drv->close(c);
    free(b);
    free(ids);
}

/* ---------------------------------------------------------------------------------------------
 * Real server: the script's all-or-nothing checks (ERRATA I1, I5)
 */

static void expect_edata(trifle_conn *c, int is_set, const titem *it, size_t n, ptrdiff_t item,
                         const char *message)
{
    trifle_write_result res = TRIFLE_WRITE_RESULT_INIT;
    trifle_error err = TRIFLE_ERROR_INIT;

    assert_int_equal(do_write(c, is_set, it, n, &res, &err), TRIFLE_EDATA);
    assert_int_equal(res.failed_item, item);
    assert_int_equal(res.applied, 0);
    assert_int_equal(res.outcome_unknown, 0);
    if (strstr(err.message, message) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.message, message);
}

static void t_edata_atomic(void **state)
{
    static const char *const bad[] = {"abc", "1e5000", "-1e400", "1e-5000", "0x10", " 1", ""};
    trifle_conn *c;
    rconn *r;
    titem it[3];
    trifle_sink *s;
    size_t i;
    char msg[200];

    (void)state;
    c = server_open("edata");
    r = rconn_open();
    titem_init(&it[0], "a", T0, "n", 1.0, NULL);
    titem_init(&it[1], "b", T0, "n", 1.0, "x", 1.0, NULL);
    titem_init(&it[2], "c", T0, "n", 1.0, NULL);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        RCMD_OK(r, "HSET", hkey("edata", "b", T0), "x", bad[i]);
        (void)snprintf(msg, sizeof(msg), "TRIFLE_EDATA 1 not a number %s x",
                       hkey("edata", "b", T0));
        expect_edata(c, 0, it, 3, 1, msg);
        assert_int_equal(rint_cmd(r, "EXISTS", hkey("edata", "a", T0)), 0);
        assert_int_equal(rint_cmd(r, "HLEN", hkey("edata", "b", T0)), 1); /* only x */
    }
    /* values HINCRBYFLOAT takes, including foreign integers and forms we never write */
    RCMD_OK(r, "HSET", hkey("edata", "b", T0), "x", "0e-5000", "n", "+.5e1");
    write_ok(c, 0, it, 3);
    s = get1(c, "b", T0);
    assert_true(sink_value(s, 0, "x") == 1.0);
    assert_true(sink_value(s, 0, "n") == 6.0);
    sink_free(s);

    /* a key of another type: inc and set alike, nothing applied */
    RCMD_OK(r, "DEL", hkey("edata", "a", T0), hkey("edata", "b", T0), hkey("edata", "c", T0));
    RCMD_OK(r, "RPUSH", hkey("edata", "c", T0), "x");
    (void)snprintf(msg, sizeof(msg), "TRIFLE_EDATA 2 wrong type %s", hkey("edata", "c", T0));
    expect_edata(c, 0, it, 3, 2, msg);
    expect_edata(c, 1, it, 3, 2, msg);
    assert_int_equal(rint_cmd(r, "EXISTS", hkey("edata", "a", T0)), 0);
    assert_int_equal(rint_cmd(r, "EXISTS", hkey("edata", "b", T0)), 0);
    /* set overwrites a non-numeric value (only increments need numbers) */
    RCMD_OK(r, "DEL", hkey("edata", "c", T0));
    RCMD_OK(r, "HSET", hkey("edata", "b", T0), "x", "text");
    write_ok(c, 1, it, 3);
    assert_string_equal(rget(r, hkey("edata", "b", T0), "x"), "1");
    test_drop_ok(drv, c);
    rconn_close(r);
    drv->close(c);
}

/* 10,000 items in one call, and one item of 5,000 set leaves (HSET chunks of 1,000). */
static void t_big_batches(void **state)
{
    enum { N = 10000, L = 5000 };
    trifle_conn *c;
    trifle_entry *e = calloc(N, sizeof(*e));
    trifle_leaf *l = calloc(L, sizeof(*l)), three[3] = {{"a", 1}, {"b.c", 0.5}, {"d", -2}};
    char(*ids)[48] = calloc(N, 48), (*paths)[16] = calloc(L, 16);
    trifle_write_result res = TRIFLE_WRITE_RESULT_INIT;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_sink *s;
    rconn *r;
    size_t i;

    (void)state;
    c = server_open("big");
    for (i = 0; i < N; i++) {
        (void)snprintf(ids[i], 48, "b%zu::1h::%lld", i % 97, (long long)(T0 + (int64_t)i * 3600));
        e[i].bucket.id = ids[i];
        e[i].leaves = three;
        e[i].n_leaves = 3;
    }
    assert_int_equal(drv->inc(c, e, N, &res, &err), 0);
    assert_int_equal(drv->inc(c, e, N, &res, &err), 0);
    r = rconn_open();
    {
        char k[128];
        (void)snprintf(k, sizeof(k), "%s_big::%s", run_id, ids[N - 1]);
        assert_string_equal(rget(r, k, "a"), "2");
        assert_string_equal(rget(r, k, "b.c"), "1");
        assert_string_equal(rget(r, k, "d"), "-4");
    }

    for (i = 0; i < L; i++) {
        (void)snprintf(paths[i], 16, "p%05zu", i);
        l[i].path = paths[i];
        l[i].value = (double)i;
    }
    e[0].leaves = l;
    e[0].n_leaves = L;
    assert_int_equal(drv->set(c, e, 1, &res, &err), 0);
    assert_int_equal(drv->inc(c, e, 1, &res, &err), 0);
    s = sink_new(1);
    assert_int_equal(drv->get(c, &e[0].bucket, 1, s, &err), 0);
    assert_int_equal(s->b[0].n, L + 3);
    assert_true(sink_value(s, 0, "p04999") == 2 * 4999.0);
    assert_true(sink_value(s, 0, "a") == 2.0);
    sink_free(s);
    test_drop_ok(drv, c);
    rconn_close(r);
    drv->close(c);
    free(e);
    free(l);
    free(ids);
    free(paths);
}

/* ---------------------------------------------------------------------------------------------
 * Real server: journal marks (ABI 1.1)
 */

static int marked(trifle_conn *c, const titem *set, size_t n_set, const titem *inc, size_t n_inc,
                  const char *name, uint64_t seq, trifle_write_result *res, trifle_error *err)
{
    trifle_entry es[8], ei[8];
    trifle_mark m = {name, seq};
    size_t i;

    assert_true(n_set <= 8 && n_inc <= 8);
    for (i = 0; i < n_set; i++)
        es[i] = set[i].e;
    for (i = 0; i < n_inc; i++)
        ei[i] = inc[i].e;
    *res = (trifle_write_result)TRIFLE_WRITE_RESULT_INIT;
    return drv->write_marked(c, es, n_set, ei, n_inc, &m, res, err);
}

/* The mark hash `<prefix><sep>marks`; the script's checks cover the whole call, so a refused item
 * leaves data and mark as they were; an inc may follow a set of the same field that replaces a
 * value it could not add to; drop removes the hash. */
static void t_marks(void **state)
{
    trifle_write_result res;
    trifle_error err = TRIFLE_ERROR_INIT;
    char mkey[128], msg[200];
    trifle_conn *c;
    titem s[2], i[3];
    trifle_sink *sk;
    rconn *r;

    (void)state;
    c = server_open("marks");
    r = rconn_open();
    (void)snprintf(mkey, sizeof(mkey), "%s_marks::marks", run_id);
    assert_int_equal(test_mark_read(drv, c, "j1"), 0);
    RCMD_OK(r, "HSET", hkey("marks", "k", T0), "count", "2", "x", "text");
    /* set count=5, x=1 on k; inc k2 and k: k = {count 7, x 2, y 0.5}; x was text before */
    titem_init(&s[0], "k", T0, "count", 5.0, "x", 1.0, NULL);
    titem_init(&i[0], "k2", T0, "count", 2.0, "y", 0.5, NULL);
    titem_init(&i[1], "k", T0, "count", 2.0, "x", 1.0, "y", 0.5, NULL);
    assert_int_equal(marked(c, s, 1, i, 2, "j1", 7, &res, &err), 0);
    sk = get1(c, "k", T0);
    assert_true(sink_value(sk, 0, "count") == 7.0);
    assert_true(sink_value(sk, 0, "x") == 2.0);
    assert_true(sink_value(sk, 0, "y") == 0.5);
    sink_free(sk);
    assert_string_equal(rget(r, hkey("marks", "k2", T0), "count"), "2");
    assert_string_equal(rget(r, mkey, "j1"), "7");
    assert_int_equal(test_mark_read(drv, c, "j1"), 7);
    assert_int_equal(test_mark_read(drv, c, "j2"), 0);
    assert_int_equal(marked(c, NULL, 0, NULL, 0, "j2", (uint64_t)INT64_MAX, &res, &err), 0);
    assert_true(test_mark_read(drv, c, "j2") == (uint64_t)INT64_MAX);
    assert_int_equal(rint_cmd(r, "HLEN", mkey), 2);

    /* inc item 1 meets a stored text value: EDATA 1 + 1 set item, nothing written */
    RCMD_OK(r, "HSET", hkey("marks", "t", T0), "x", "text");
    titem_init(&s[0], "new1", T0, "n", 1.0, NULL);
    titem_init(&i[0], "new2", T0, "n", 1.0, NULL);
    titem_init(&i[1], "t", T0, "x", 1.0, NULL);
    titem_init(&i[2], "new3", T0, "n", 1.0, NULL);
    assert_int_equal(marked(c, s, 1, i, 3, "j1", 8, &res, &err), TRIFLE_EDATA);
    assert_int_equal(res.failed_item, 2);
    assert_int_equal(res.applied, 0);
    assert_int_equal(res.outcome_unknown, 0);
    (void)snprintf(msg, sizeof(msg), "TRIFLE_EDATA 2 not a number %s x", hkey("marks", "t", T0));
    assert_string_equal(err.message, msg);
    assert_int_equal(rint_cmd(r, "EXISTS", hkey("marks", "new1", T0)), 0);
    assert_int_equal(rint_cmd(r, "EXISTS", hkey("marks", "new2", T0)), 0);
    assert_int_equal(test_mark_read(drv, c, "j1"), 7);
    /* a set item of another type is counted first */
    RCMD_OK(r, "RPUSH", hkey("marks", "l", T0), "x");
    titem_init(&s[1], "l", T0, "n", 1.0, NULL);
    assert_int_equal(marked(c, s, 2, i, 3, "j1", 8, &res, &err), TRIFLE_EDATA);
    assert_int_equal(res.failed_item, 1);
    assert_int_equal(test_mark_read(drv, c, "j1"), 7);
    /* a mark key of another type: refused before anything is written */
    RCMD_OK(r, "DEL", mkey);
    RCMD_OK(r, "RPUSH", mkey, "x");
    assert_int_equal(marked(c, s, 1, i, 1, "j1", 8, &res, &err), TRIFLE_EDRIVER);
    assert_int_equal(res.failed_item, -1);
    assert_non_null(strstr(err.message, "is not a hash"));
    assert_int_equal(rint_cmd(r, "EXISTS", hkey("marks", "new1", T0)), 0);
    RCMD_OK(r, "DEL", mkey);
    assert_int_equal(marked(c, s, 1, i, 1, "j1", 8, &res, &err), 0);
    assert_int_equal(test_mark_read(drv, c, "j1"), 8);
    /* drop removes the mark hash with the rest */
    test_drop_ok(drv, c);
    assert_int_equal(rint_cmd(r, "EXISTS", mkey), 0);
    assert_int_equal(test_mark_read(drv, c, "j1"), 0);
    rconn_close(r);
    drv->close(c);
}

/* ---------------------------------------------------------------------------------------------
 * Real server: connections
 */

static void t_database_select(void **state)
{
    char saved[sizeof(base_url)], other[8], key[160], *slash;
    const char *const db[] = {"db", other, NULL};
    trifle_conn *c;
    rconn *r;
    titem it;
    long mine = 0;
    size_t i;

    (void)state;
    /* the test server's database (URL path or db parameter), and another one */
    slash = strncmp(base_url, "redis://", 8) == 0 ? strchr(base_url + 8, '/') : NULL;
    if (slash != NULL && slash[1] != '\0')
        mine = strtol(slash + 1, NULL, 10);
    for (i = 0; base_params[i] != NULL; i += 2)
        if (strcmp(base_params[i], "db") == 0)
            mine = strtol(base_params[i + 1], NULL, 10);
    (void)snprintf(other, sizeof(other), "%d", mine == 5 ? 6 : 5);
    memcpy(saved, base_url, sizeof(saved));
    if (slash != NULL)
        *slash = '\0'; /* db=N instead of /N */
    c = server_open_sep("db", "::", db);
    memcpy(base_url, saved, sizeof(saved));
    titem_init(&it, "k", T0, "n", 1.0, NULL);
    write_ok(c, 0, &it, 1);
    r = rconn_open();
    assert_int_equal(rint_cmd(r, "EXISTS", hkey("db", "k", T0)), 0);
    RCMD_OK(r, "SELECT", other);
    assert_int_equal(rint_cmd(r, "EXISTS", hkey("db", "k", T0)), 1);
    (void)snprintf(key, sizeof(key), "%s", hkey("db", "k", T0));
    RCMD_OK(r, "DEL", key);
    rconn_close(r);
    drv->close(c);
}

/* Redis 6 ACL users: AUTH user pass; a wrong password is EAUTH; AUTH pass without a configured
 * password is EAUTH too. */
static void t_auth(void **state)
{
    char user[64], url[600], hostport[256];
    const char *p;
    trifle_conn *c = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    rconn *r;
    rv *v;
    size_t n;

    (void)state;
    if (strncmp(base_url, "redis://", 8) != 0)
        skip();
    p = strrchr(base_url + 8, '@');
    p = p != NULL ? p + 1 : base_url + 8;
    n = strcspn(p, "/");
    (void)snprintf(hostport, sizeof(hostport), "%.*s", (int)n, p);
    (void)snprintf(user, sizeof(user), "trifle_%s", run_id);
    r = rconn_open();
    v = rconn_cmd(r, "ACL", "SETUSER", user, "on", ">pa:ss@word", "~*", "+@all", NULL);
    if (v == NULL || v->type == '-') { /* Redis < 6 or no ACL permission */
        rv_free(v);
        rconn_close(r);
        skip();
        return; /* not reached: skip() does not return, which the analyser cannot see */
    }
    rv_free(v);
    (void)snprintf(url, sizeof(url), "redis://%s:pa%%3Ass%%40word@%s", user, hostport);
    assert_int_equal(conn_open(&c, url, NULL, &err), 0);
    assert_int_equal(drv->setup(c, &err), 0);
    drv->close(c);
    (void)snprintf(url, sizeof(url), "redis://%s:wrong@%s", user, hostport);
    assert_int_equal(conn_open(&c, url, NULL, &err), TRIFLE_EAUTH);
    assert_non_null(strstr(err.message, "WRONGPASS"));
    assert_null(strstr(err.message, "wrong@"));
    RCMD_OK(r, "ACL", "DELUSER", user);
    v = rconn_cmd(r, "CONFIG", "GET", "requirepass", NULL);
    if (v != NULL && v->type == '*' && v->n == 2 && v->e[1]->len == 0) {
        (void)snprintf(url, sizeof(url), "redis://:nopassword@%s", hostport);
        assert_int_equal(conn_open(&c, url, NULL, &err), TRIFLE_EAUTH);
    }
    rv_free(v);
    rconn_close(r);
}

/* A password-protected server (`requirepass`: scripts/test-servers.sh's second Redis,
 * TRIFLE_TEST_URI_REDIS_AUTH and _BADPASS): the right password works end to end, a wrong one is
 * EAUTH (WRONGPASS), no password is EAUTH (NOAUTH), and no password appears in a message. */
static void t_requirepass(void **state)
{
    const char *good = getenv("TRIFLE_TEST_URI_REDIS_AUTH");
    const char *bad = getenv("TRIFLE_TEST_URI_REDIS_BADPASS");
    const char *ci = getenv("CI"), *strict = getenv("TRIFLE_TEST_STRICT");
    char prefix[64], pw[256], none[512];
    const char *const extra[] = {"prefix", prefix, NULL};
    const char *at, *colon;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_conn *c = NULL;
    trifle_sink *s;
    titem it;

    (void)state;
    if (good == NULL || bad == NULL || good[0] == '\0' || bad[0] == '\0') {
        if ((ci != NULL && strcmp(ci, "true") == 0) || (strict != NULL && strcmp(strict, "1") == 0))
            fail_msg("TRIFLE_TEST_URI_REDIS_AUTH/_BADPASS are not set (CI/TRIFLE_TEST_STRICT)");
        skip();
        return; /* not reached: skip() does not return, which the analyser cannot see */
    }
    /* redis://:<pw>@host:port/db: the password, and the same URL without credentials */
    assert_int_equal(strncmp(good, "redis://:", 9), 0);
    colon = good + 8;
    at = strrchr(colon, '@');
    assert_non_null(at);
    assert_true((size_t)(at - colon - 1) < sizeof(pw) && at - colon > 1);
    (void)snprintf(pw, sizeof(pw), "%.*s", (int)(at - colon - 1), colon + 1);
    (void)snprintf(none, sizeof(none), "redis://%s", at + 1);
    (void)snprintf(prefix, sizeof(prefix), "%s_auth", run_id);

    assert_int_equal(conn_open(&c, good, extra, &err), 0);
    assert_int_equal(drv->setup(c, &err), 0);
    titem_init(&it, "k", T0, "n", 2.5, NULL);
    write_ok(c, 0, &it, 1);
    write_ok(c, 0, &it, 1);
    s = get1(c, "k", T0);
    assert_true(sink_value(s, 0, "n") == 5.0);
    sink_free(s);
    test_drop_ok(drv, c);
    drv->close(c);

    c = NULL;
    assert_int_equal(conn_open(&c, bad, extra, &err), TRIFLE_EAUTH);
    assert_null(c);
    assert_non_null(strstr(err.message, "WRONGPASS"));
    assert_null(strstr(err.message, "wrong-"));
    assert_null(strstr(err.message, pw));

    assert_int_equal(conn_open(&c, none, extra, &err), TRIFLE_EAUTH);
    assert_null(c);
    assert_non_null(strstr(err.message, "NOAUTH"));
}

/* Kill every server-side client whose local port is one of this process's sockets except the
 * raw connection's: the driver's connection. Returns the number killed. */
static long long kill_my_clients(rconn *r)
{
    struct sockaddr_in a;
    socklen_t n = sizeof(a);
    rv *v = rconn_cmd(r, "CLIENT", "LIST", NULL);
    long long killed = 0;
    char *line;
    int fd, mine;

    assert_non_null(v);
    assert_int_equal(getsockname(r->fd, (struct sockaddr *)&a, &n), 0);
    mine = ntohs(a.sin_port);
    for (line = v->s; line != NULL && *line != '\0'; line = strchr(line, '\n'), line += !!line) {
        const char *addr = strstr(line, " addr="), *colon;
        int port;
        if (addr == NULL || (colon = strchr(addr + 6, ':')) == NULL)
            continue;
        port = (int)strtol(colon + 1, NULL, 10);
        if (port == mine)
            continue;
        for (fd = 3; fd < 256; fd++) {
            n = sizeof(a);
            if (fd != r->fd && getsockname(fd, (struct sockaddr *)&a, &n) == 0 &&
                a.sin_family == AF_INET && ntohs(a.sin_port) == port) {
                char target[64];
                rv *k;
                (void)snprintf(target, sizeof(target), "%.*s", (int)strcspn(addr + 6, " \n"),
                               addr + 6);
                k = rconn_cmd(r, "CLIENT", "KILL", "ADDR", target, NULL);
                killed += k != NULL && k->type == ':' ? k->i : 0; /* the filter form counts */
                rv_free(k);
            }
        }
    }
    rv_free(v);
    return killed;
}

static void t_reconnect(void **state)
{
    trifle_conn *c;
    rconn *r;
    titem it;
    trifle_sink *s;
    trifle_error err = TRIFLE_ERROR_INIT;

    (void)state;
    if (strncmp(base_url, "redis://", 8) != 0)
        skip(); /* finds the driver's connection by TCP port */
    c = server_open("reco");
    r = rconn_open();
    titem_init(&it, "k", T0, "n", 1.0, NULL);
    write_ok(c, 0, &it, 1);
    assert_true(kill_my_clients(r) >= 1); /* connections a failed test leaked count too */
    sleep_ms(20);
    log_info = 0;
    write_ok(c, 0, &it, 1); /* applied exactly once on the new connection */
    assert_int_equal(log_info, 1);
    assert_string_equal(rget(r, hkey("reco", "k", T0), "n"), "2");
    assert_true(kill_my_clients(r) >= 1); /* connections a failed test leaked count too */
    sleep_ms(20);
    s = get1(c, "k", T0);
    assert_true(sink_value(s, 0, "n") == 2.0);
    sink_free(s);
    /* the script cache emptied behind our back: EVALSHA → NOSCRIPT → EVAL */
    RCMD_OK(r, "SCRIPT", "FLUSH");
    write_ok(c, 0, &it, 1);
    write_ok(c, 0, &it, 1);
    assert_string_equal(rget(r, hkey("reco", "k", T0), "n"), "4");
    assert_int_equal(drv->setup(c, &err), 0);
    test_drop_ok(drv, c);
    rconn_close(r);
    drv->close(c);
}

/* 8 processes × 2,000 incs of the same leaves: exact totals (scripts run atomically). */
static void t_concurrency(void **state)
{
    enum { P = 8, K = 2000 };
    pid_t pids[P];
    trifle_conn *c;
    trifle_sink *s;
    int i, status;

    (void)state;
    for (i = 0; i < P; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            trifle_conn *cc = server_open("conc");
            titem it;
            int k, bad = 0;
            titem_init(&it, "k", T0, "n", 1.0, "f.half", 0.5, "f.quarter", 0.25, NULL);
            for (k = 0; k < K; k++) {
                trifle_write_result res = TRIFLE_WRITE_RESULT_INIT;
                trifle_error err = TRIFLE_ERROR_INIT;
                bad |= do_write(cc, 0, &it, 1, &res, &err) != 0;
            }
            drv->close(cc);
            _exit(bad);
        }
    }
    for (i = 0; i < P; i++) {
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    c = server_open("conc"); /* only now: a child must not inherit (and leak) it */
    s = get1(c, "k", T0);
    assert_true(sink_value(s, 0, "n") == P * K);
    assert_true(sink_value(s, 0, "f.half") == P * K * 0.5);
    assert_true(sink_value(s, 0, "f.quarter") == P * K * 0.25);
    sink_free(s);
    test_drop_ok(drv, c);
    drv->close(c);
}

/* drop deletes exactly the keys under "<prefix><sep>", glob characters in the prefix included. */
static void t_drop(void **state)
{
    char prefix[64], other[64], k1[128], k2[128], k3[128];
    const char *const glob[] = {"prefix", prefix, NULL};
    trifle_conn *c = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    rconn *r;
    titem it;
    int i;

    (void)state;
    (void)snprintf(prefix, sizeof(prefix), "%s_d*[a]?\\", run_id);
    (void)snprintf(other, sizeof(other), "%s_dx[a]z\\", run_id); /* what the raw glob matches */
    (void)snprintf(k1, sizeof(k1), "%s::k::1h::0", other);
    (void)snprintf(k2, sizeof(k2), "%s::k::1h::0", prefix);
    (void)snprintf(k3, sizeof(k3), "%s:k", prefix);
    c = server_open_sep("unused", "::", glob);
    r = rconn_open();
    RCMD_OK(r, "HSET", k1, "n", "1");
    RCMD_OK(r, "HSET", k3, "n", "1");
    titem_init(&it, "k", 0, "n", 1.0, NULL);
    write_ok(c, 0, &it, 1);
    for (i = 0; i < 2500; i++) { /* several SCAN pages */
        titem_init(&it, "many", (int64_t)i * 3600, "n", 1.0, NULL);
        write_ok(c, 0, &it, 1);
    }
    assert_int_equal(rint_cmd(r, "EXISTS", k2), 1);
    assert_int_equal(drv->drop(c, &err), 0);
    assert_int_equal(rint_cmd(r, "EXISTS", k2), 0);
    assert_int_equal(rint_cmd(r, "EXISTS", k1), 1);
    assert_int_equal(rint_cmd(r, "EXISTS", k3), 1);
    {
        rv *v = rconn_cmd(r, "KEYS", "*", NULL);
        size_t j, left = 0;
        for (j = 0; j < v->n; j++)
            left += strncmp(v->e[j]->s, prefix, strlen(prefix)) == 0;
        assert_int_equal(left, 1); /* k3 only */
        rv_free(v);
    }
    RCMD_OK(r, "DEL", k1, k3);
    rconn_close(r);
    drv->close(c);
}

/* test_oom_steps: open, and a fresh connection before each later step. */
static int oom_open(trifle_conn **c, void *ctx, trifle_error *err)
{
    (void)ctx;
    return server_try_open(c, "oom", "::", NULL, err);
}

static int oom_write(trifle_conn *c, void *it, trifle_write_result *res, trifle_error *err)
{
    return do_write(c, 0, it, 1, res, err);
}

/* Every allocation of open, inc, get, ping and scan may fail: ENOMEM, nothing leaked (ASan and
 * valgrind check the leaks), and each operation works once allocations succeed again. */
static void t_oom(void **state)
{
    trifle_leaf l = {"up", 1.0};
    test_oom_calls calls = {oom_open, oom_write, NULL, 1, "k", T0, &l, NULL};
    trifle_conn *c;
    titem it;

    (void)state;
    titem_init(&it, "k", T0, "n", 1.0, NULL);
    calls.buckets = &it.e.bucket;
    calls.ctx = &it;
    c = test_oom_steps(drv, &calls);
    test_drop_ok(drv, c);
    drv->close(c);
}

int main(void)
{
    const struct CMUnitTest offline[] = {
        cmocka_unit_test(t_config_errors),
        cmocka_unit_test(t_core_refusals),
        cmocka_unit_test(t_unreachable),
        cmocka_unit_test(t_timeout_open),
        cmocka_unit_test_teardown(t_fake_auth, fake_teardown),
        cmocka_unit_test_teardown(t_fake_lost_reply, fake_teardown),
        cmocka_unit_test_teardown(t_fake_script_replies, fake_teardown),
        cmocka_unit_test_teardown(t_fake_reconnect, fake_teardown),
        cmocka_unit_test_teardown(t_fake_timeout, fake_teardown),
        cmocka_unit_test_teardown(t_fake_reset, fake_teardown),
    };
    const struct CMUnitTest server[] = {
        cmocka_unit_test(t_layout),      cmocka_unit_test(t_prefix_separator),
        cmocka_unit_test(t_ping_layout), cmocka_unit_test(t_get_skips),
        cmocka_unit_test(t_get_many),    cmocka_unit_test(t_edata_atomic),
        cmocka_unit_test(t_big_batches), cmocka_unit_test(t_database_select),
        cmocka_unit_test(t_auth),        cmocka_unit_test(t_reconnect),
        cmocka_unit_test(t_concurrency), cmocka_unit_test(t_drop),
        cmocka_unit_test(t_oom),         cmocka_unit_test(t_requirepass),
        cmocka_unit_test(t_marks),
    };
    int status;

    /* SIGPIPE keeps its default action: a driver write that raised it would end the program */
    test_host_driver = "redis";
    (void)snprintf(run_id, sizeof(run_id), "ut%d", (int)getpid());
    if ((drv = test_host_load(TRIFLE_BUILD_PLUGIN_DIR "/trifle_redis.so", "redis", NULL)) == NULL)
        return 1;
    server_url = test_server_url("TRIFLE_TEST_URI_REDIS", "real-server tests", &status);
    if (server_url != NULL)
        server_split();
    return test_run_groups("redis driver", offline, sizeof(offline) / sizeof(offline[0]), server,
                           sizeof(server) / sizeof(server[0]), server_url, status);
}
