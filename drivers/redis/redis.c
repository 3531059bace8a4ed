/*
 * trifle_redis.so: the Redis storage driver (SPEC §7.7, §11.2; ERRATA B6, B8, I1, I5, I15, I19).
 *
 * Layout. One hash per bucket at join(sep, prefix, id), whose fields are packed paths and whose
 * values are decimal text (SPEC §4.5); the ping of a key is the hash join(sep, prefix, key, "ping")
 * with the field `at` (RFC 3339 UTC) and `data.<path>` fields. Only the full identifier mode
 * exists, so `id` is always `key<sep>G<sep>unix`. The journal marks of ABI 1.1 are the hash
 * join(sep, prefix, "marks"): field = journal name, value = seq in decimal.
 *
 * Protocol. Requests are written as RESP text into one buffer per connection and sent with one
 * send(MSG_NOSIGNAL) loop (hiredis 0.14's own writer could raise SIGPIPE), so a pipeline of n
 * commands is one buffer and one round trip: `get` is n HGETALLs, `ping` is MULTI/DEL/HSET/EXEC.
 * hiredis connects and parses the replies.
 *
 * Writes. Every inc/set/write_marked call is exactly one EVALSHA of rd_script (SCRIPT LOAD once
 * per connection, EVAL when the server answers NOSCRIPT); write_marked's sets, incs and mark are
 * one script run, so they are stored together or not at all. The script checks the whole batch
 * first (key types, and for increments that every stored value is a number HINCRBYFLOAT accepts),
 * then writes: a batch is applied completely or not at all, and a check failure replies
 * `TRIFLE_EDATA <i> ...`, which becomes TRIFLE_EDATA with failed_item = i. The script follows
 * SPEC §7.7 with the ERRATA I1 fixes: HSET in chunks of at most 1,000 pairs taken straight from
 * ARGV with unpack(ARGV, i, j), and the number check also asks that tonumber() is finite (and that
 * a value with non-zero digits does not underflow to 0, which HINCRBYFLOAT's strtold rejects).
 * Nothing is unpacked in proportion to the batch, so 10,000 items stay within Lua's limits.
 *
 * Connections. A hiredis 0.14 context is replaced, never repaired: after any context error, or
 * when the idle socket turns out to be closed by the server (a poll() before each call), the next
 * call connects anew, authenticates and selects the database (ERRATA I15). A request that could
 * not be sent completely is retried once on a fresh connection (the server never runs an
 * incomplete command); a read-only request whose first reply was lost is retried once too. A
 * write whose reply was lost is reported with outcome_unknown = 1 and never resent.
 *
 * Cluster. Built with RD_CLUSTER_PLUGIN, this file is trifle_redis_cluster.so (README.md, "Redis
 * Cluster"): a connection knows every node (rd_node), reads the slot map with CLUSTER SLOTS, and
 * rd_run() sends each call as per-node pipelines of one-key units, following MOVED and ASK. Each
 * bucket is its own script run, so a call is atomic per bucket only, and there are no journal
 * marks. The plain driver runs the same code with one node and one pipeline.
 *
 * Threads: a connection is used by one thread at a time and holds no thread-local state.
 */
#include <hiredis/hiredis.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <trifle/driver.h>

#include "drv_support.h"
#include "rd_slot.h"

#define RD_NAME "redis"
#define RD_VERSION "1.1.0"
#define RD_DEFAULT_PORT 6379
#define RD_DEFAULT_TIMEOUT_MS 5000
#define RD_MAX_TIMEOUT_MS 86400000 /* one day */
#define RD_SCAN_COUNT "1000"       /* keys per SCAN step in drop */
#define RD_AT_LEN 20               /* "2025-01-15T08:00:00Z" */
#ifdef RD_CLUSTER_PLUGIN
#define RD_CLUSTER 1 /* trifle_redis_cluster.so (see the driver table at the end) */
#else
#define RD_CLUSTER 0
#endif

/* The write script: SPEC §7.7 with ERRATA I1, and the journal mark of ABI 1.1. ARGV[1] is the
 * number of items nk; KEYS[i] (i <= nk) is the hash of item i, and ARGV holds, per item, n_inc and
 * n_set followed by n_inc (field, delta) and n_set (field, value) pairs. With a mark, KEYS[nk + 1]
 * is the mark hash and the two ARGV after the items are the journal name and seq. Everything is
 * checked before anything is written: the key types (the mark hash's too) and, for increments,
 * that each stored value is a number, unless an earlier item of the call sets that field of the
 * same hash (a write_marked flush sets, then increments, one bucket; `setf` records the fields
 * set so far only when a call has both kinds). */
static const char rd_script[] =
    "local function isnum(s)\n"
    "  if #s > 5000 then return false end\n"
    "  if not (s:find('^[+-]?%d+%.?%d*$') or s:find('^[+-]?%.%d+$')\n"
    "      or s:find('^[+-]?%d+%.?%d*[eE][+-]?%d+$') or s:find('^[+-]?%.%d+[eE][+-]?%d+$')) then\n"
    "    return false\n"
    "  end\n"
    "  local n = tonumber(s)\n"
    "  if n == nil or n ~= n or n == math.huge or n == -math.huge then return false end\n"
    "  return n ~= 0 or s:match('^[^eE]*'):find('[1-9]') == nil\n"
    "end\n"
    "local nk, p = tonumber(ARGV[1]), 2\n"
    "local first, ninc, nset, anyinc, anyset = {}, {}, {}, false, false\n"
    "for i = 1, nk do\n"
    "  local a, b = tonumber(ARGV[p]), tonumber(ARGV[p + 1])\n"
    "  first[i], ninc[i], nset[i] = p + 2, a, b\n"
    "  anyinc, anyset = anyinc or a > 0, anyset or b > 0\n"
    "  p = p + 2 + 2 * (a + b)\n"
    "end\n"
    "local setf = {}\n"
    "if #KEYS > nk then\n"
    "  local t = redis.call('TYPE', KEYS[nk + 1]).ok\n"
    "  if t ~= 'hash' and t ~= 'none' then\n"
    "    return redis.error_reply('ERR journal mark key ' .. KEYS[nk + 1] .. ' is not a hash')\n"
    "  end\n"
    "end\n"
    "for i = 1, nk do\n"
    "  local k = KEYS[i]\n"
    "  if ninc[i] > 0 then\n"
    "    local q, j, sf = first[i], 0, setf[k]\n"
    "    while j < ninc[i] do\n"
    "      local m, f = math.min(ninc[i] - j, 1000), {}\n"
    "      for x = 1, m do f[x] = ARGV[q + 2 * (j + x - 1)] end\n"
    "      local r = redis.pcall('HMGET', k, unpack(f))\n"
    "      if r.err then\n"
    "        if string.sub(r.err, 1, 9) == 'WRONGTYPE' then\n"
    "          return redis.error_reply('TRIFLE_EDATA ' .. (i - 1) .. ' wrong type ' .. k)\n"
    "        end\n"
    "        return r\n"
    "      end\n"
    "      for x = 1, m do\n"
    "        if r[x] and not isnum(r[x]) and not (sf and sf[f[x]]) then\n"
    "          return redis.error_reply('TRIFLE_EDATA ' .. (i - 1) .. ' not a number '\n"
    "            .. k .. ' ' .. f[x])\n"
    "        end\n"
    "      end\n"
    "      j = j + m\n"
    "    end\n"
    "  else\n"
    "    local t = redis.call('TYPE', k).ok\n"
    "    if t ~= 'hash' and t ~= 'none' then\n"
    "      return redis.error_reply('TRIFLE_EDATA ' .. (i - 1) .. ' wrong type ' .. k)\n"
    "    end\n"
    "  end\n"
    "  if anyinc and anyset and nset[i] > 0 then\n"
    "    local t, q = setf[k] or {}, first[i] + 2 * ninc[i]\n"
    "    for x = 0, nset[i] - 1 do t[ARGV[q + 2 * x]] = true end\n"
    "    setf[k] = t\n"
    "  end\n"
    "end\n"
    "for i = 1, nk do\n"
    "  local k, q = KEYS[i], first[i]\n"
    "  for _ = 1, ninc[i] do\n"
    "    redis.call('HINCRBYFLOAT', k, ARGV[q], ARGV[q + 1])\n"
    "    q = q + 2\n"
    "  end\n"
    "  local left = nset[i]\n"
    "  while left > 0 do\n"
    "    local m = math.min(left, 1000)\n"
    "    redis.call('HSET', k, unpack(ARGV, q, q + 2 * m - 1))\n"
    "    q = q + 2 * m\n"
    "    left = left - m\n"
    "  end\n"
    "end\n"
    "if #KEYS > nk then redis.call('HSET', KEYS[nk + 1], ARGV[p], ARGV[p + 1]) end\n"
    "return nk\n";

/* One server: the plain driver has exactly one, the cluster driver one per node it has heard of
 * (seeds, CLUSTER SLOTS, MOVED/ASK replies). Connected lazily, replaced after any failure. */
typedef struct rd_node {
    redisContext *ctx;
    int broken;    /* the context must be replaced before the next command */
    int need_load; /* cluster: SCRIPT LOAD before the next script on this node */
    char *host;    /* NULL for a Unix socket (trifle_conn.path) */
    int port;
    char addr[128]; /* "127.0.0.1:6379" or the socket path, for messages */
    /* this round's pipeline (rd_round_run): c->cmd[req_off..+req_len), c->pos[pos_off..+ncmds) */
    size_t req_off, req_len, pos_off, ncmds;
    int load_rc;           /* its SCRIPT LOAD failed: ... */
    trifle_error load_err; /* ... and why */
} rd_node;

/* Per-unit routing state of rd_run() on a cluster (a unit: the commands of one key). */
typedef struct rd_unit {
    uint16_t slot;
    unsigned char state;   /* RD_U_* */
    unsigned char bounced; /* redirected this round: the unit's other replies say nothing new */
    unsigned char lost;    /* a connection failure already cost the unit its one retry */
    int ask;               /* node index of an ASK redirect for the next round, else -1 */
    int moved;             /* node index of a MOVED redirect this round, else -1 */
} rd_unit;

#define RD_SLOTS 16384
#define RD_NO_NODE UINT16_MAX

struct trifle_conn {
    const trifle_host_api *host;
    rd_node *cur; /* the node commands go to (rd_call, rd_connect) */
    rd_node **nodes;
    size_t n_nodes, cap_nodes;
    int cluster;   /* the redis_cluster driver: keys are routed by hash slot */
    int oom;       /* an allocation failed while building the current request */
    int no_unlink; /* the server has no UNLINK (Redis < 4): drop uses DEL */
    int have_sha;  /* sha holds the SHA-1 of rd_script from SCRIPT LOAD */
    char sha[41];
    /* where to connect */
    char *path; /* Unix socket path */
    char *user; /* NULL: AUTH <password> (or no AUTH without a password) */
    char *password;
    long db;
    int timeout_ms;
    /* key layout */
    char *prefix; /* "<prefix><sep>", or "" for an empty prefix */
    size_t prefix_len;
    size_t prefix_raw_len; /* the prefix without the separator */
    char sep[17];
    size_t sep_len;
    drv_buf cmd;   /* RESP text of the request being built */
    drv_buf aux;   /* the next request, built while reading replies (drop) */
    drv_buf hello; /* AUTH/SELECT/PING of a new connection */
    drv_buf key;   /* cluster: the key whose slot is being computed */
    /* cluster routing */
    uint16_t *slot_node; /* RD_SLOTS node indexes (RD_NO_NODE: not served) */
    int refresh;         /* the slot map is stale: CLUSTER SLOTS before the next round */
    rd_unit *units;
    size_t cap_units;
    size_t *pos; /* per command of a node's pipeline: unit * ncmd + j, or an RD_POS_* marker */
    size_t cap_pos;
};

/* ---------------------------------------------------------------------------------------------
 * Buffers and RESP text
 */

/* Append a string literal (its length counted by the compiler). */
#define RD_PUT_LIT(b, lit) drv_buf_put((b), "" lit, sizeof(lit) - 1)

/* Decimal text of v into the end of tmp[24]; returns the first digit. */
static char *rd_utoa(char tmp[24], uint64_t v)
{
    char *p = tmp + 24;

    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return p;
}

/* `<tag><n>\r\n`: an array header (`*`) or a bulk string length (`$`). */
static void rd_hdr(drv_buf *b, char tag, size_t n)
{
    char tmp[24 + 3], *p = rd_utoa(tmp, n);
    size_t len = (size_t)(tmp + 24 - p);

    *--p = tag;
    memcpy(tmp + 24, "\r\n", 2);
    drv_buf_put(b, p, len + 3);
}

/* One bulk string argument made of two parts (either may be empty). */
static void rd_arg2(drv_buf *b, const char *s1, size_t n1, const char *s2, size_t n2)
{
    rd_hdr(b, '$', n1 + n2);
    drv_buf_put(b, s1, n1);
    drv_buf_put(b, s2, n2);
    RD_PUT_LIT(b, "\r\n");
}

static void rd_arg(drv_buf *b, const char *s, size_t n)
{
    rd_arg2(b, s, n, NULL, 0);
}

static void rd_arg_str(drv_buf *b, const char *s)
{
    rd_arg2(b, s, strlen(s), NULL, 0);
}

static void rd_arg_uint(drv_buf *b, uint64_t v)
{
    char tmp[24], *p = rd_utoa(tmp, v);

    rd_arg(b, p, (size_t)(tmp + 24 - p));
}

/* A finite double in canonical number text (SPEC §4.5). */
static void rd_arg_num(drv_buf *b, double v)
{
    char tmp[40];
    size_t n = b->host->format_double(tmp, v);

    rd_arg(b, tmp, n);
}

/* The hash of bucket identifier id: join(sep, prefix, id). */
static void rd_arg_key(trifle_conn *c, drv_buf *b, const char *id)
{
    rd_arg2(b, c->prefix, c->prefix_len, id, strlen(id));
}

/* ---------------------------------------------------------------------------------------------
 * Errors (STYLE §3): refused/lost → ECONN, timeout → ETIMEDOUT, NOAUTH/WRONGPASS → EAUTH,
 * WRONGTYPE and the script's TRIFLE_EDATA → EDATA, BUSY/LOADING → EBUSY, else EDRIVER. `native`
 * is the hiredis context error (REDIS_ERR_IO, REDIS_ERR_EOF, ...) for connection failures and 0
 * for error replies, whose text is the message.
 */

static int rd_oom(trifle_conn *c, trifle_error *err)
{
    c->oom = 0;
    c->host->error_set(err, TRIFLE_ENOMEM, 0, "out of memory");
    return TRIFLE_ENOMEM;
}

/* Does the context's error text end with strerror(e)? hiredis records an I/O failure only as
 * text, and the text is produced by the same strerror in the same locale. */
static int rd_errstr_is(const redisContext *ctx, int e)
{
    char text[128];
    size_t n, m;

    if (strerror_r(e, text, sizeof(text)) != 0)
        return 0;
    n = strlen(ctx->errstr);
    m = strlen(text);
    return m > 0 && n >= m && memcmp(ctx->errstr + n - m, text, m) == 0;
}

static int rd_ctx_timed_out(const redisContext *ctx)
{
    return ctx->err == REDIS_ERR_IO &&
           (rd_errstr_is(ctx, EAGAIN) || rd_errstr_is(ctx, EWOULDBLOCK) ||
            rd_errstr_is(ctx, ETIMEDOUT) || rd_errstr_is(ctx, EINPROGRESS));
}

/* A failure that a fresh connection may cure: the connection was lost, not slow. */
static int rd_ctx_retryable(const redisContext *ctx)
{
    return (ctx->err == REDIS_ERR_IO && !rd_ctx_timed_out(ctx)) || ctx->err == REDIS_ERR_EOF;
}

/* Report a failed context; the context is replaced before the next command. */
static int rd_ctx_fail(trifle_conn *c, const char *op, trifle_error *err)
{
    const redisContext *ctx = c->cur->ctx;
    int code;

    c->cur->broken = 1;
    if (ctx == NULL) {
        c->host->error_set(err, TRIFLE_ENOMEM, 0, "out of memory (redis context for %s)",
                           c->cur->addr);
        return TRIFLE_ENOMEM;
    }
    if (rd_ctx_timed_out(ctx)) {
        c->host->error_set(err, TRIFLE_ETIMEDOUT, ctx->err, "redis at %s: %s timed out after %d ms",
                           c->cur->addr, op, c->timeout_ms);
        return TRIFLE_ETIMEDOUT;
    }
    switch (ctx->err) {
    case REDIS_ERR_IO:
    case REDIS_ERR_EOF:
        code = TRIFLE_ECONN;
        break;
    case REDIS_ERR_OTHER: /* name resolution, bad socket path: only while connecting */
        code = strcmp(op, "connect") == 0 ? TRIFLE_ECONN : TRIFLE_EDRIVER;
        break;
    case REDIS_ERR_OOM:
        code = TRIFLE_ENOMEM;
        break;
    default:
        code = TRIFLE_EDRIVER;
        break;
    }
    if (strcmp(op, "connect") == 0)
        c->host->error_set(err, code, ctx->err, "cannot connect to redis at %s: %s", c->cur->addr,
                           ctx->errstr);
    else
        c->host->error_set(err, code, ctx->err, "redis at %s: %s failed: %s", c->cur->addr, op,
                           ctx->errstr);
    return code;
}

static int rd_starts(const redisReply *r, const char *word)
{
    size_t n = strlen(word);

    return r->len >= n && memcmp(r->str, word, n) == 0 && (r->len == n || r->str[n] == ' ');
}

/* Report an error reply of command op (about key, which may be NULL). */
static int rd_reply_fail(trifle_conn *c, const redisReply *r, const char *op, const char *key,
                         trifle_error *err)
{
    int code = TRIFLE_EDRIVER, len;

    if (r->type != REDIS_REPLY_ERROR) {
        c->host->error_set(err, TRIFLE_EDRIVER, 0, "redis %s: unexpected reply of type %d", op,
                           r->type);
        return TRIFLE_EDRIVER;
    }
    if (rd_starts(r, "NOAUTH") || rd_starts(r, "WRONGPASS") || strcmp(op, "AUTH") == 0 ||
        (r->len >= 20 && memcmp(r->str, "ERR invalid password", 20) == 0))
        code = TRIFLE_EAUTH;
    else if (rd_starts(r, "WRONGTYPE") || rd_starts(r, "TRIFLE_EDATA"))
        code = TRIFLE_EDATA;
    else if (rd_starts(r, "BUSY") || rd_starts(r, "LOADING"))
        code = TRIFLE_EBUSY;
    len = r->len > 200 ? 200 : (int)r->len;
    if (code == TRIFLE_EAUTH)
        c->host->error_set(err, code, 0, "redis at %s rejected the credentials: %.*s", c->cur->addr,
                           len, r->str);
    else if (rd_starts(r, "TRIFLE_EDATA"))
        c->host->error_set(err, code, 0, "%.*s", len, r->str);
    else if (key != NULL)
        c->host->error_set(err, code, 0, "redis %s %s: %.*s", op, key, len, r->str);
    else
        c->host->error_set(err, code, 0, "redis %s: %.*s", op, len, r->str);
    return code;
}

/* ---------------------------------------------------------------------------------------------
 * Connections
 */

static void rd_ctx_free(trifle_conn *c)
{
    if (c->cur->ctx != NULL)
        redisFree(c->cur->ctx);
    c->cur->ctx = NULL;
    c->cur->broken = 0;
}

/* Has the server closed the idle connection (restart, CLIENT KILL, idle timeout)? No reply is
 * pending between calls, so a readable socket means end of file, a reset or stray data. */
static int rd_dead(const trifle_conn *c)
{
    struct pollfd p;
    int n;

    p.fd = c->cur->ctx->fd;
    p.events = POLLIN;
    p.revents = 0;
    do
        n = poll(&p, 1, 0);
    while (n < 0 && errno == EINTR);
    return n != 0;
}

/* Record an I/O failure in the context the way hiredis does (REDIS_ERR_IO + strerror text). */
static void rd_set_io_error(redisContext *ctx, int e)
{
    ctx->err = REDIS_ERR_IO;
    if (strerror_r(e, ctx->errstr, sizeof(ctx->errstr)) != 0)
        (void)snprintf(ctx->errstr, sizeof(ctx->errstr), "I/O error %d", e);
}

/*
 * Write b[0..n) to the socket. hiredis 0.14 writes with write(2), which raises SIGPIPE in the
 * application when the server has reset the connection; a library must not do that, so requests
 * go out with send(MSG_NOSIGNAL) and hiredis only reads. A send timeout (SO_SNDTIMEO) reads as
 * EAGAIN, which rd_ctx_fail reports as ETIMEDOUT.
 */
static int rd_send(trifle_conn *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->cur->ctx->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rd_set_io_error(c->cur->ctx, w < 0 ? errno : EPIPE);
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Connect, set the command timeout, and authenticate and select the database in one round trip
 * (a PING when there is neither, so that a server wanting a password is noticed now). */
static int rd_connect(trifle_conn *c, trifle_error *err)
{
    struct timeval tv;
    redisReply *r = NULL;
    drv_buf *b = &c->hello;
    const char *op[2];
    int n = 0, i, rc = 0;

    rd_ctx_free(c);
    b->len = 0;
    if (c->password != NULL) {
        rd_hdr(b, '*', c->user != NULL ? 3 : 2);
        rd_arg(b, "AUTH", 4);
        if (c->user != NULL)
            rd_arg_str(b, c->user);
        rd_arg_str(b, c->password);
        op[n++] = "AUTH";
    }
    if (c->db != 0) {
        RD_PUT_LIT(b, "*2\r\n$6\r\nSELECT\r\n");
        rd_arg_uint(b, (uint64_t)c->db);
        op[n++] = "SELECT";
    }
    if (n == 0) {
        RD_PUT_LIT(b, "*1\r\n$4\r\nPING\r\n");
        op[n++] = "PING";
    }
    if (c->oom)
        return rd_oom(c, err);

    tv.tv_sec = c->timeout_ms / 1000;
    tv.tv_usec = (c->timeout_ms % 1000) * 1000;
    c->cur->ctx = c->cur->host != NULL ? redisConnectWithTimeout(c->cur->host, c->cur->port, tv)
                                       : redisConnectUnixWithTimeout(c->path, tv);
    if (c->cur->ctx == NULL || c->cur->ctx->err != 0)
        return rd_ctx_fail(c, "connect", err);
    if (redisSetTimeout(c->cur->ctx, tv) != REDIS_OK)
        return rd_ctx_fail(c, "connect", err);
    if (c->cur->host != NULL)
        (void)redisEnableKeepAlive(c->cur->ctx); /* best effort: notices dead peers while idle */
    if (rd_send(c, b->p, b->len) != 0)
        return rd_ctx_fail(c, "connect", err);
    for (i = 0; i < n; i++) {
        if (redisGetReply(c->cur->ctx, (void **)&r) != REDIS_OK || r == NULL)
            return rd_ctx_fail(c, "connect", err);
        if (rc == 0 && r->type == REDIS_REPLY_ERROR) {
            if (strcmp(op[i], "SELECT") == 0 && !rd_starts(r, "NOAUTH")) {
                c->host->error_set(err, TRIFLE_ECONFIG, 0,
                                   "redis at %s cannot select database %ld: %.*s", c->cur->addr,
                                   c->db, r->len > 200 ? 200 : (int)r->len, r->str);
                rc = TRIFLE_ECONFIG;
            } else {
                rc = rd_reply_fail(c, r, op[i], NULL, err);
            }
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (rc != 0)
        rd_ctx_free(c); /* never keep an unauthenticated connection */
    return rc;
}

/* Make sure there is a usable connection: connect again after a failure or a server-side close. */
static int rd_ensure(trifle_conn *c, trifle_error *err)
{
    if (c->cur->ctx != NULL && !c->cur->broken && c->cur->ctx->err == 0 && !rd_dead(c))
        return 0;
    if (c->cur->ctx != NULL && c->host->log != NULL)
        c->host->log(TRIFLE_LOG_INFO, RD_NAME, "reconnecting to redis at %s", c->cur->addr);
    return rd_connect(c, err);
}

/* Called with each reply of a pipeline, in order; the reply is freed afterwards. */
typedef int (*rd_reply_fn)(trifle_conn *c, size_t i, redisReply *r, void *payload,
                           trifle_error *err);

enum rd_retry {
    RD_READ,  /* no side effects, or idempotent: resend once when the first reply is lost */
    RD_WRITE, /* resend only when the request could not be sent; a lost reply is "unknown" */
};

/*
 * Send the n commands in c->cmd as one pipeline and pass every reply to fn. All replies are read
 * even after fn fails (fn is then no longer called), so the connection stays in step. A lost
 * connection before anything was received is retried once on a new connection as `retry` allows;
 * *unknown (may be NULL) is set when a write was sent but its reply was lost. A write pipeline of
 * several commands (the cluster's) is never resent: the commands sent in full before the send
 * failed may have run, so its outcome is unknown.
 */
static int rd_call(trifle_conn *c, size_t n, enum rd_retry retry, rd_reply_fn fn, void *payload,
                   int *unknown, const char *op, trifle_error *err)
{
    redisReply *r;
    size_t i;
    int attempt, rc;

    if (c->oom)
        return rd_oom(c, err);
    for (attempt = 0;; attempt++) {
        if ((rc = rd_ensure(c, err)) != 0)
            return rc;
        if (rd_send(c, c->cmd.p, c->cmd.len) != 0) {
            if (attempt == 0 && (retry == RD_READ || n == 1) && rd_ctx_retryable(c->cur->ctx))
                goto again;
            if (retry == RD_WRITE && n > 1 && unknown != NULL)
                *unknown = 1;
            return rd_ctx_fail(c, op, err);
        }
        for (i = 0; i < n; i++) {
            r = NULL;
            if (redisGetReply(c->cur->ctx, (void **)&r) != REDIS_OK || r == NULL) {
                if (i == 0 && retry == RD_READ && attempt == 0 && rd_ctx_retryable(c->cur->ctx))
                    goto again;
                if (retry == RD_WRITE && unknown != NULL)
                    *unknown = 1;
                if (rc != 0) { /* fn already reported the first failure */
                    c->cur->broken = 1;
                    return rc;
                }
                return rd_ctx_fail(c, op, err);
            }
            if (rc == 0)
                rc = fn(c, i, r, payload, err);
            freeReplyObject(r);
        }
        return rc;
    again:
        if (c->host->log != NULL)
            c->host->log(TRIFLE_LOG_WARN, RD_NAME, "redis at %s: %s: %s; reconnecting once",
                         c->cur->addr, op, c->cur->ctx->errstr);
        c->cur->broken = 1;
    }
}

/* ---------------------------------------------------------------------------------------------
 * URL and parameters (SPEC §11.2)
 */

/* Percent-decode s[0..n) into a new string. Returns 0, TRIFLE_ENOMEM, or TRIFLE_ECONFIG for a bad
 * escape or a NUL byte. */
static int rd_decode(const trifle_host_api *host, const char *s, size_t n, char **out)
{
    char *d = host->alloc(n + 1);

    *out = NULL;
    if (d == NULL)
        return TRIFLE_ENOMEM;
    if (tu_pct_decode(d, NULL, s, n, 0) != TU_PCT_OK) {
        host->free(d);
        return TRIFLE_ECONFIG;
    }
    *out = d;
    return 0;
}

/* A decimal integer in [lo, hi], the whole string. */
static int rd_parse_long(const char *s, size_t n, long lo, long hi, long *out)
{
    long v = 0;
    size_t i;

    if (n == 0 || n > 12)
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int rd_ieq_prefix(const char *s, const char *p)
{
    for (; *p != '\0'; s++, p++) {
        int a = (unsigned char)*s, b = (unsigned char)*p;
        if (a >= 'A' && a <= 'Z')
            a += 'a' - 'A';
        if (a != b)
            return 0;
    }
    return 1;
}

/* userinfo = [user] ":" password (both percent-decoded; an empty user means none). */
static int rd_parse_userinfo(trifle_conn *c, const char *s, size_t n, trifle_error *err)
{
    const char *colon = memchr(s, ':', n);
    int rc;

    if (colon == NULL) {
        c->host->error_set(err, TRIFLE_ECONFIG, 0,
                           "invalid driver URL: credentials must be [user]:password");
        return TRIFLE_ECONFIG;
    }
    if (colon > s && (rc = rd_decode(c->host, s, (size_t)(colon - s), &c->user)) != 0)
        goto fail;
    if ((rc = rd_decode(c->host, colon + 1, n - (size_t)(colon + 1 - s), &c->password)) != 0)
        goto fail;
    if (c->password[0] == '\0' && c->user == NULL) { /* "redis://:@host": no credentials */
        c->host->free(c->password);
        c->password = NULL;
    }
    return 0;
fail:
    if (rc == TRIFLE_ENOMEM)
        return rd_oom(c, err);
    c->host->error_set(err, TRIFLE_ECONFIG, 0,
                       "invalid driver URL: bad percent-encoding in the credentials");
    return TRIFLE_ECONFIG;
}

/* The node at host:port (host: n bytes, not NUL-terminated), added when new: its index, or -1
 * when out of memory. A NULL host is the Unix socket of the plain driver. */
static int rd_node_find(trifle_conn *c, const char *host, size_t n, int port)
{
    rd_node *node;
    size_t i;

    for (i = 0; i < c->n_nodes; i++) {
        node = c->nodes[i];
        if (node->port == port && (host == NULL ? node->host == NULL
                                                : node->host != NULL && strlen(node->host) == n &&
                                                      memcmp(node->host, host, n) == 0))
            return (int)i;
    }
    if (c->n_nodes >= RD_NO_NODE)
        return -1;
    if (c->n_nodes == c->cap_nodes) {
        size_t cap = c->cap_nodes == 0 ? 4 : 2 * c->cap_nodes;
        rd_node **v = c->host->realloc(c->nodes, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        c->nodes = v;
        c->cap_nodes = cap;
    }
    if ((node = c->host->alloc(sizeof(*node))) == NULL)
        return -1;
    memset(node, 0, sizeof(*node));
    node->port = port;
    node->need_load = 1;
    if (host != NULL) {
        if ((node->host = c->host->alloc(n + 1)) == NULL) {
            c->host->free(node);
            return -1;
        }
        memcpy(node->host, host, n);
        node->host[n] = '\0';
        if (memchr(host, ':', n) != NULL)
            (void)snprintf(node->addr, sizeof(node->addr), "[%s]:%d", node->host, port);
        else
            (void)snprintf(node->addr, sizeof(node->addr), "%s:%d", node->host, port);
    } else {
        (void)snprintf(node->addr, sizeof(node->addr), "%s", c->path);
    }
    c->nodes[c->n_nodes] = node;
    return (int)c->n_nodes++;
}

/* One `host[:port]` of the authority, s[0..n): a name, an IPv4 address or a bracketed IPv6
 * address; an empty host is 127.0.0.1. Adds the node. */
static int rd_parse_hostport(trifle_conn *c, const char *s, size_t n, trifle_error *err)
{
    const char *p = s, *end = s + n, *host = s, *host_end, *port = NULL;
    char *name = NULL;
    int rc, idx;
    long v = RD_DEFAULT_PORT;

    if (n > 0 && *p == '[') {
        host_end = memchr(p, ']', n);
        if (host_end == NULL) {
            c->host->error_set(err, TRIFLE_ECONFIG, 0, "invalid driver URL: missing ']'");
            return TRIFLE_ECONFIG;
        }
        host++;
        p = host_end + 1;
        if (p < end && *p != ':') {
            c->host->error_set(err, TRIFLE_ECONFIG, 0,
                               "invalid driver URL: unexpected text after ']'");
            return TRIFLE_ECONFIG;
        }
    } else {
        host_end = memchr(p, ':', n);
        if (host_end == NULL)
            host_end = end;
        p = host_end;
    }
    if (p < end)
        port = p + 1;
    if (host_end == host) {
        host = "127.0.0.1";
        host_end = host + 9;
    }
    if (port != NULL && rd_parse_long(port, (size_t)(end - port), 1, 65535, &v) != 0) {
        c->host->error_set(err, TRIFLE_ECONFIG, 0, "invalid driver URL: invalid port \"%.*s\"",
                           (int)(end - port > 32 ? 32 : end - port), port);
        return TRIFLE_ECONFIG;
    }
    if ((rc = rd_decode(c->host, host, (size_t)(host_end - host), &name)) != 0) {
        if (rc == TRIFLE_ENOMEM)
            return rd_oom(c, err);
        c->host->error_set(err, TRIFLE_ECONFIG, 0,
                           "invalid driver URL: bad percent-encoding in the host");
        return rc;
    }
    idx = rd_node_find(c, name, strlen(name), (int)v);
    c->host->free(name);
    if (idx < 0)
        return rd_oom(c, err);
    return 0;
}

/* redis://[[user]:password@]host[:port][/db], redis+unix://[[user]:password@]/path, or (the
 * cluster driver) redis_cluster://[[user]:password@]host[:port][,host[:port]...][/] */
static int rd_parse_url(trifle_conn *c, const char *url, int *db_given, trifle_error *err)
{
    const char *p, *end, *at, *slash, *comma;
    int rc, is_unix = 0, idx;
    long v;

    if (url == NULL) {
        c->host->error_set(err, TRIFLE_ECONFIG, 0, "invalid driver URL: missing URL");
        return TRIFLE_ECONFIG;
    }
    if (c->cluster && rd_ieq_prefix(url, "redis_cluster://")) {
        p = url + 16;
    } else if (c->cluster && rd_ieq_prefix(url, "redis+cluster://")) {
        p = url + 16;
    } else if (c->cluster) {
        c->host->error_set(err, TRIFLE_ECONFIG, 0,
                           "invalid driver URL: expected redis_cluster:// or redis+cluster://");
        return TRIFLE_ECONFIG;
    } else if (rd_ieq_prefix(url, "redis://")) {
        p = url + 8;
    } else if (rd_ieq_prefix(url, "redis+unix://")) {
        is_unix = 1;
        p = url + 13;
    } else if (rd_ieq_prefix(url, "rediss://")) {
        c->host->error_set(err, TRIFLE_ECONFIG, 0,
                           "invalid driver URL: TLS is not supported by this build");
        return TRIFLE_ECONFIG;
    } else {
        c->host->error_set(err, TRIFLE_ECONFIG, 0,
                           "invalid driver URL: expected redis:// or redis+unix://");
        return TRIFLE_ECONFIG;
    }
    end = p + strlen(p);
    slash = memchr(p, '/', (size_t)(end - p));
    if (slash == NULL)
        slash = end;
    /* the last '@' of the authority ends the credentials ('@' in a password should be %40) */
    for (at = slash; at > p && at[-1] != '@'; at--)
        ;
    if (at > p) {
        if ((rc = rd_parse_userinfo(c, p, (size_t)(at - 1 - p), err)) != 0)
            return rc;
        p = at;
    }

    if (is_unix) {
        if (p != slash) {
            c->host->error_set(err, TRIFLE_ECONFIG, 0,
                               "invalid driver URL: use redis+unix:///path/to/socket");
            return TRIFLE_ECONFIG;
        }
        if (slash == end || slash + 1 == end) {
            c->host->error_set(err, TRIFLE_ECONFIG, 0, "invalid driver URL: missing socket path");
            return TRIFLE_ECONFIG;
        }
        if ((rc = rd_decode(c->host, slash, (size_t)(end - slash), &c->path)) != 0) {
            if (rc == TRIFLE_ENOMEM)
                return rd_oom(c, err);
            c->host->error_set(err, TRIFLE_ECONFIG, 0,
                               "invalid driver URL: bad percent-encoding in the socket path");
            return rc;
        }
        if ((idx = rd_node_find(c, NULL, 0, 0)) < 0)
            return rd_oom(c, err);
        c->cur = c->nodes[idx];
        return 0;
    }

    /* one host[:port], or a comma-separated list of cluster seed nodes */
    do {
        comma = c->cluster ? memchr(p, ',', (size_t)(slash - p)) : NULL;
        if (comma == NULL)
            comma = slash;
        if (c->cluster && comma == p) {
            c->host->error_set(err, TRIFLE_ECONFIG, 0, "invalid driver URL: empty cluster node");
            return TRIFLE_ECONFIG;
        }
        if ((rc = rd_parse_hostport(c, p, (size_t)(comma - p), err)) != 0)
            return rc;
        p = comma + 1;
    } while (comma < slash);
    c->cur = c->nodes[0];
    if (slash + 1 < end) {
        if (rd_parse_long(slash + 1, (size_t)(end - slash - 1), 0, INT_MAX, &v) != 0) {
            c->host->error_set(err, TRIFLE_ECONFIG, 0,
                               "invalid driver URL: database must be a number, not \"%.*s\"",
                               (int)(end - slash - 1 > 32 ? 32 : end - slash - 1), slash + 1);
            return TRIFLE_ECONFIG;
        }
        if (c->cluster && v != 0) {
            c->host->error_set(err, TRIFLE_ECONFIG, 0,
                               "invalid driver URL: a Redis Cluster has only database 0, not %ld",
                               v);
            return TRIFLE_ECONFIG;
        }
        c->db = v;
        *db_given = 1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Time: proleptic Gregorian UTC, without the C library (no TZ, no locale).
 */

/* A ping's `at`: RFC 3339 (`T`, `t` or space; any fraction, floored; `Z` or an offset), or Unix
 * seconds (`1736935200`, `-5`). */
static int rd_time_parse(const char *s, size_t n, int64_t *out)
{
    size_t i;

    if (n > 0 && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))) {
        size_t neg = s[0] == '-';
        int64_t v = 0;
        /* at most 18 digits: beyond any printable year, and v cannot overflow */
        for (i = neg; i < n && i - neg < 18 && s[i] >= '0' && s[i] <= '9'; i++)
            v = v * 10 + (s[i] - '0');
        if (i == n && n > neg) {
            *out = neg ? -v : v;
            return 1;
        }
    }
    return tu_time_parse_rfc3339(s, n, out) == 0;
}

/* ---------------------------------------------------------------------------------------------
 * Routing. The plain driver sends a call's commands as one pipeline to its one server. The
 * cluster driver splits a call into units (the commands of one key: an HGETALL, a ping's
 * MULTI/DEL/HSET/EXEC, a one-key script run), sends each node the units of the slots it serves
 * as one pipeline, and retries the units that came back redirected: MOVED updates the slot map
 * (and a full CLUSTER SLOTS follows before the next round), ASK sends ASKING and the unit to the
 * named node once, TRYAGAIN (a multi-key command during a migration) waits a little, NOSCRIPT
 * loads the script on that node. A unit never runs twice: a redirect reply means it did not run.
 */

static int rd_is_str(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS;
}

enum { RD_U_PENDING, RD_U_DONE, RD_U_FAILED };

#define RD_POS_LOAD ((size_t)-1)   /* the reply of SCRIPT LOAD */
#define RD_POS_ASKING ((size_t)-2) /* the reply of ASKING */
#define RD_MAX_ROUNDS 16           /* redirect rounds before a call gives up */

/* An operation made of units of ncmd commands each (see the section comment). */
typedef struct rd_op {
    size_t ncmd; /* commands per unit */
    enum rd_retry retry;
    int script; /* the units run rd_script: SCRIPT LOAD it on nodes that lack it */
    const char *name;
    unsigned (*slot)(trifle_conn *c, size_t u, void *payload);          /* the unit's key's slot */
    void (*build)(trifle_conn *c, drv_buf *b, size_t u, void *payload); /* its commands */
    rd_reply_fn fn; /* called with i = u * ncmd + j, as if the call were one pipeline */
} rd_op;

/* One call of an operation: n units and the payload of op's functions; then the outcome. */
typedef struct rd_job {
    const rd_op *op;
    size_t n;
    void *payload;
    /* results */
    trifle_error *err;
    size_t first_failed; /* cluster: the lowest failed unit, else SIZE_MAX */
    int rc;              /* cluster: its status */
    int unknown;         /* a write was sent and its reply lost */
} rd_job;

/* The slot of the hash join(sep, prefix, a, b) (b may be NULL). */
static unsigned rd_slot_of(trifle_conn *c, const char *a, const char *b)
{
    c->key.len = 0;
    drv_buf_put(&c->key, c->prefix, c->prefix_len);
    drv_buf_put(&c->key, a, strlen(a));
    if (b != NULL) {
        drv_buf_put(&c->key, c->sep, c->sep_len);
        drv_buf_put(&c->key, b, strlen(b));
    }
    return c->oom ? 0 : rd_key_slot(c->key.p, c->key.len);
}

/* CLUSTER SLOTS: [[start, end, [ip, port, id...], replicas...], ...] into c->slot_node. An empty
 * or "?" ip means the node that answered. */
static int rd_slots_reply(trifle_conn *c, size_t i, redisReply *r, void *payload, trifle_error *err)
{
    const rd_node *asked = payload;
    size_t j;
    long long s;

    (void)i;
    if (r->type == REDIS_REPLY_ERROR && r->len >= 24 &&
        memcmp(r->str, "ERR This instance has cluster support disabled", 24) == 0) {
        c->host->error_set(err, TRIFLE_ECONFIG, 0,
                           "redis at %s is not a cluster node (cluster support disabled); use "
                           "redis:// for a single server",
                           asked->addr);
        return TRIFLE_ECONFIG;
    }
    if (r->type != REDIS_REPLY_ARRAY)
        return rd_reply_fail(c, r, "CLUSTER SLOTS", NULL, err);
    for (s = 0; s < RD_SLOTS; s++)
        c->slot_node[s] = RD_NO_NODE;
    for (j = 0; j < r->elements; j++) {
        const redisReply *e = r->element[j], *m;
        const char *h;
        size_t hn;
        int idx;

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2)
            goto bad;
        m = e->element[2];
        if (!rd_is_str(m->element[0]) || m->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[0]->integer < 0 || e->element[0]->integer > e->element[1]->integer ||
            e->element[1]->integer >= RD_SLOTS || m->element[1]->integer < 1 ||
            m->element[1]->integer > 65535)
            goto bad;
        h = m->element[0]->str;
        hn = m->element[0]->len;
        if (hn == 0 || (hn == 1 && h[0] == '?')) {
            h = asked->host;
            hn = strlen(h);
        }
        if ((idx = rd_node_find(c, h, hn, (int)m->element[1]->integer)) < 0)
            return rd_oom(c, err);
        for (s = e->element[0]->integer; s <= e->element[1]->integer; s++)
            c->slot_node[s] = (uint16_t)idx;
    }
    return 0;
bad:
    c->host->error_set(err, TRIFLE_EDRIVER, 0, "redis at %s: unexpected CLUSTER SLOTS reply",
                       asked->addr);
    return TRIFLE_EDRIVER;
}

/* Read the slot map from a node: the connected ones first, then the others (seeds included),
 * until one answers. */
static int rd_discover(trifle_conn *c, trifle_error *err)
{
    size_t k, n = c->n_nodes;
    int pass, rc = TRIFLE_ECONN;

    if (c->slot_node == NULL &&
        (c->slot_node = c->host->alloc(RD_SLOTS * sizeof(*c->slot_node))) == NULL)
        return rd_oom(c, err);
    for (pass = 0; pass < 2; pass++)
        for (k = 0; k < n; k++) {
            rd_node *node = c->nodes[k];
            if ((node->ctx != NULL && !node->broken) != (pass == 0))
                continue;
            c->cur = node;
            c->cmd.len = 0;
            RD_PUT_LIT(&c->cmd, "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n");
            rc = rd_call(c, 1, RD_READ, rd_slots_reply, node, NULL, "CLUSTER SLOTS", err);
            if (rc == 0) {
                c->refresh = 0;
                return 0;
            }
            if (rc != TRIFLE_ECONN && rc != TRIFLE_ETIMEDOUT)
                goto done; /* not a cluster, credentials, ...: another node will not differ */
        }
done:
    c->refresh = 1; /* the map may be half written: read it before it is used */
    return rc;
}

/* `host:port` (host may be empty: the node that replied) at s[0..n) into a node index. */
static int rd_endpoint(trifle_conn *c, const char *s, size_t n)
{
    const char *colon = NULL, *h;
    size_t i, hn;
    long port;
    int idx;

    for (i = n; i > 0; i--)
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    if (colon == NULL ||
        rd_parse_long(colon + 1, n - (size_t)(colon + 1 - s), 1, 65535, &port) != 0)
        return -1;
    h = s;
    hn = (size_t)(colon - s);
    if (hn >= 2 && h[0] == '[' && h[hn - 1] == ']') {
        h++;
        hn -= 2;
    }
    if (hn == 0) {
        h = c->cur->host;
        hn = strlen(h);
    }
    if ((idx = rd_node_find(c, h, hn, (int)port)) < 0)
        c->oom = 1; /* the next round reports it */
    return idx;
}

/* Is error reply r a redirect of unit u? Then record where it goes next and return 1. */
static int rd_redirect(trifle_conn *c, const rd_job *job, rd_unit *unit, const redisReply *r,
                       int *tryagain)
{
    const char *p, *end = r->str + r->len;
    int moved, idx;
    long slot;

    if (rd_starts(r, "TRYAGAIN")) {
        *tryagain = 1;
        return 1;
    }
    if (job->op->script && rd_starts(r, "NOSCRIPT")) {
        c->cur->need_load = 1;
        return 1;
    }
    if (!(moved = rd_starts(r, "MOVED")) && !rd_starts(r, "ASK"))
        return 0;
    p = r->str + (moved ? 6 : 4);
    for (slot = 0; p < end && *p >= '0' && *p <= '9' && slot < RD_SLOTS; p++)
        slot = slot * 10 + (*p - '0');
    if (p >= end || *p != ' ' || slot >= RD_SLOTS ||
        (idx = rd_endpoint(c, p + 1, (size_t)(end - p - 1))) < 0)
        return 0;
    if (moved) {
        c->slot_node[slot] = (uint16_t)idx;
        c->refresh = 1; /* a resharding moves many slots: read the whole map once */
        unit->ask = -1;
        unit->moved = idx;
    } else {
        unit->ask = idx;
    }
    return 1;
}

/* The state of one round of rd_run(). */
typedef struct rd_round {
    rd_job *job;
    int tryagain; /* a TRYAGAIN reply: wait a little before the next round */
} rd_round;

static void rd_unit_fail(trifle_conn *c, rd_job *job, size_t u, int rc, const trifle_error *e)
{
    c->units[u].state = RD_U_FAILED;
    if (u < job->first_failed) {
        job->first_failed = u;
        job->rc = rc;
        if (job->err != NULL)
            *job->err = *e;
    }
}

/* Reply r at position p of the pipeline of node c->cur. */
static void rd_take(trifle_conn *c, rd_round *rr, size_t p, redisReply *r)
{
    rd_job *job = rr->job;
    rd_node *node = c->cur;
    trifle_error e = TRIFLE_ERROR_INIT;
    rd_unit *unit;
    size_t u, j;
    int rc;

    if (p == RD_POS_ASKING)
        return; /* an error here makes the unit's command fail with MOVED */
    if (p == RD_POS_LOAD) {
        if (r->type == REDIS_REPLY_STRING && r->len == 40 && memcmp(r->str, c->sha, 40) == 0) {
            node->need_load = 0;
        } else if (r->type == REDIS_REPLY_STRING) {
            node->load_rc = TRIFLE_EDRIVER;
            c->host->error_set(&node->load_err, TRIFLE_EDRIVER, 0,
                               "redis at %s: SCRIPT LOAD returned another SHA-1", node->addr);
        } else {
            node->load_rc = rd_reply_fail(c, r, "SCRIPT LOAD", NULL, &node->load_err);
        }
        return;
    }
    u = p / job->op->ncmd;
    j = p % job->op->ncmd;
    unit = &c->units[u];
    if (unit->state != RD_U_PENDING)
        return;
    if (unit->bounced ||
        (r->type == REDIS_REPLY_ERROR && rd_redirect(c, job, unit, r, &rr->tryagain))) {
        /* the rest of the unit's replies (a MULTI's EXECABORT, ...) say nothing more */
        unit->bounced = j + 1 < job->op->ncmd;
        return;
    }
    if ((rc = job->op->fn(c, p, r, job->payload, &e)) != 0)
        rd_unit_fail(c, job, u, rc, &e);
    else if (j + 1 == job->op->ncmd)
        unit->state = RD_U_DONE;
}

/* Positions [from, ncmds) of node's pipeline got no reply: the connection failed (rc, e). A read,
 * or a unit that was not sent, is tried once more next round on a new connection; a write that
 * may have been sent fails with an unknown outcome. The slot map is read again (a failover, a
 * node removed). */
static void rd_node_lost(trifle_conn *c, rd_job *job, rd_node *node, size_t from, int sent, int rc,
                         const trifle_error *e)
{
    size_t i, p;

    c->refresh = 1;
    if (c->host->log != NULL)
        c->host->log(TRIFLE_LOG_WARN, RD_NAME, "%s", e->message);
    for (i = from; i < node->ncmds; i++) {
        rd_unit *unit;
        p = c->pos[node->pos_off + i];
        if (p == RD_POS_LOAD || p == RD_POS_ASKING)
            continue;
        unit = &c->units[p / job->op->ncmd];
        if (unit->state != RD_U_PENDING)
            continue;
        if ((!sent || job->op->retry == RD_READ) && !unit->lost) {
            unit->lost = 1;
            unit->bounced = 0;
            continue;
        }
        if (sent && job->op->retry == RD_WRITE)
            job->unknown = 1;
        rd_unit_fail(c, job, p / job->op->ncmd, rc, e);
    }
}

/* Room for n units and m pipeline positions. */
static int rd_reserve(trifle_conn *c, size_t n, size_t m)
{
    if (drv_array_reserve(c->host, (void **)&c->units, &c->cap_units, n, sizeof(*c->units)) != 0 ||
        drv_array_reserve(c->host, (void **)&c->pos, &c->cap_pos, m, sizeof(*c->pos)) != 0)
        return -1;
    return 0;
}

/* Append the pending units that go to node k to c->cmd (its slice of this round). */
static void rd_build_node(trifle_conn *c, rd_job *job, size_t k, size_t *cmds)
{
    rd_node *node = c->nodes[k];
    size_t u, j;

    node->req_off = c->cmd.len;
    node->pos_off = *cmds;
    node->load_rc = 0;
    for (u = 0; u < job->n; u++) {
        rd_unit *unit = &c->units[u];
        if (unit->state != RD_U_PENDING ||
            (size_t)(unit->ask >= 0 ? unit->ask : c->slot_node[unit->slot]) != k)
            continue;
        if (*cmds == node->pos_off && job->op->script && node->need_load) {
            RD_PUT_LIT(&c->cmd, "*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n");
            rd_arg(&c->cmd, rd_script, sizeof(rd_script) - 1);
            c->pos[(*cmds)++] = RD_POS_LOAD;
        }
        if (unit->ask >= 0) {
            RD_PUT_LIT(&c->cmd, "*1\r\n$6\r\nASKING\r\n");
            c->pos[(*cmds)++] = RD_POS_ASKING;
            unit->ask = -1;
        }
        unit->bounced = 0;
        job->op->build(c, &c->cmd, u, job->payload);
        for (j = 0; j < job->op->ncmd; j++)
            c->pos[(*cmds)++] = u * job->op->ncmd + j;
    }
    node->req_len = c->cmd.len - node->req_off;
    node->ncmds = *cmds - node->pos_off;
}

/* One round on a cluster: every node's pipeline is built, then all are sent, then the replies
 * are read, so that the masters work at the same time. */
static void rd_round_run(trifle_conn *c, rd_round *rr)
{
    rd_job *job = rr->job;
    trifle_error e = TRIFLE_ERROR_INIT;
    size_t k, i, cmds = 0, n_nodes = c->n_nodes; /* nodes a redirect adds wait for next round */
    int rc;

    c->cmd.len = 0;
    for (k = 0; k < n_nodes; k++)
        rd_build_node(c, job, k, &cmds);
    if (c->oom) {
        rc = rd_oom(c, &e);
        for (i = 0; i < job->n; i++)
            if (c->units[i].state == RD_U_PENDING)
                rd_unit_fail(c, job, i, rc, &e);
        return;
    }
    for (k = 0; k < n_nodes; k++) {
        rd_node *node = c->nodes[k];
        if (node->ncmds == 0)
            continue;
        c->cur = node;
        if ((rc = rd_ensure(c, &e)) != 0) {
            rd_node_lost(c, job, node, 0, 0, rc, &e);
            node->ncmds = 0;
        } else if (rd_send(c, c->cmd.p + node->req_off, node->req_len) != 0) {
            rc = rd_ctx_fail(c, job->op->name, &e);
            rd_node_lost(c, job, node, 0, 1, rc, &e);
            node->ncmds = 0;
        }
    }
    for (k = 0; k < n_nodes; k++) {
        rd_node *node = c->nodes[k];
        c->cur = node;
        for (i = 0; i < node->ncmds; i++) {
            redisReply *r = NULL;
            if (redisGetReply(node->ctx, (void **)&r) != REDIS_OK || r == NULL) {
                rc = rd_ctx_fail(c, job->op->name, &e);
                rd_node_lost(c, job, node, i, 1, rc, &e);
                break;
            }
            rd_take(c, rr, c->pos[node->pos_off + i], r);
            freeReplyObject(r);
        }
        for (i = 0; node->load_rc != 0 && i < node->ncmds; i++) {
            /* no script on the node: its units that are still open fail */
            size_t p = c->pos[node->pos_off + i];
            if (p != RD_POS_LOAD && p != RD_POS_ASKING &&
                c->units[p / job->op->ncmd].state == RD_U_PENDING)
                rd_unit_fail(c, job, p / job->op->ncmd, node->load_rc, &node->load_err);
        }
        node->ncmds = 0;
    }
}

/* Run job: on one server, one pipeline; on a cluster, per-node pipelines with redirects. */
static int rd_run(trifle_conn *c, rd_job *job, trifle_error *err)
{
    trifle_error e = TRIFLE_ERROR_INIT;
    rd_round rr;
    size_t u;
    int round, rc;

    job->err = err;
    job->first_failed = SIZE_MAX;
    job->rc = 0;
    job->unknown = 0;
    if (!c->cluster) {
        c->cmd.len = 0;
        for (u = 0; u < job->n; u++)
            job->op->build(c, &c->cmd, u, job->payload);
        return rd_call(c, job->n * job->op->ncmd, job->op->retry, job->op->fn, job->payload,
                       &job->unknown, job->op->name, err);
    }
    if (job->n == 0)
        return 0;
    if (job->n > SIZE_MAX / 4 / (job->op->ncmd + 1) / sizeof(size_t) ||
        rd_reserve(c, job->n, 0) != 0)
        return rd_oom(c, err);
    if ((c->slot_node == NULL || c->refresh) && (rc = rd_discover(c, err)) != 0)
        return rc;
    for (u = 0; u < job->n; u++) {
        c->units[u].slot = (uint16_t)job->op->slot(c, u, job->payload);
        c->units[u].state = RD_U_PENDING;
        c->units[u].bounced = 0;
        c->units[u].lost = 0;
        c->units[u].ask = -1;
        c->units[u].moved = -1;
    }
    if (c->oom)
        return rd_oom(c, err);
    for (round = 0;; round++) {
        int pending = 0;

        /* a unit: its commands and an ASKING; a node: a SCRIPT LOAD */
        if (rd_reserve(c, job->n, job->n * (job->op->ncmd + 1) + c->n_nodes) != 0) {
            rc = rd_oom(c, &e);
            for (u = 0; u < job->n; u++)
                if (c->units[u].state == RD_U_PENDING)
                    rd_unit_fail(c, job, u, rc, &e);
            break;
        }
        for (u = 0; u < job->n; u++)
            if (c->units[u].state == RD_U_PENDING && c->units[u].ask < 0 &&
                c->slot_node[c->units[u].slot] == RD_NO_NODE) {
                c->host->error_set(&e, TRIFLE_ECONN, 0,
                                   "redis cluster: no node serves hash slot %u (is the cluster "
                                   "state ok?)",
                                   (unsigned)c->units[u].slot);
                rd_unit_fail(c, job, u, TRIFLE_ECONN, &e);
            }
        rr.job = job;
        rr.tryagain = 0;
        rd_round_run(c, &rr);
        for (u = 0; u < job->n; u++)
            pending += c->units[u].state == RD_U_PENDING;
        if (pending == 0)
            break;
        if (round + 1 == RD_MAX_ROUNDS || (c->refresh && (rc = rd_discover(c, &e)) != 0)) {
            if (round + 1 == RD_MAX_ROUNDS) {
                rc = TRIFLE_EBUSY;
                c->host->error_set(&e, rc, 0,
                                   "redis cluster: %s still redirected after %d rounds (is a "
                                   "resharding stuck?)",
                                   job->op->name, RD_MAX_ROUNDS);
            }
            for (u = 0; u < job->n; u++)
                if (c->units[u].state == RD_U_PENDING)
                    rd_unit_fail(c, job, u, rc, &e);
            break;
        }
        for (u = 0; u < job->n; u++) {
            /* the node that answered MOVED knows better than a map read from a node that may
             * not have heard of the move yet */
            if (c->units[u].state == RD_U_PENDING && c->units[u].moved >= 0)
                c->slot_node[c->units[u].slot] = (uint16_t)c->units[u].moved;
            c->units[u].moved = -1;
        }
        if (rr.tryagain) { /* a migration is moving the unit's keys: give it a moment */
            struct timespec ts = {0, 2000000L * (round + 1)};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
        }
    }
    return job->rc;
}

/* ---------------------------------------------------------------------------------------------
 * Reading hashes
 */

/* Emit the numeric fields of an HGETALL reply whose names start with skip[0..skip_len). */
static int rd_emit_hash(trifle_conn *c, trifle_sink *sink, size_t index, const redisReply *r,
                        const char *skip, size_t skip_len, trifle_error *err)
{
    size_t j;
    double v;
    int rc;

    for (j = 0; j + 1 < r->elements; j += 2) {
        const redisReply *f = r->element[j], *val = r->element[j + 1];
        if (!rd_is_str(f) || !rd_is_str(val) || f->len <= skip_len ||
            memcmp(f->str, skip, skip_len) != 0 ||
            !drv_path_ok(f->str + skip_len, f->len - skip_len) ||
            c->host->parse_double(val->str, val->len, &v) != 0)
            continue;
        if ((rc = c->host->emit(sink, index, f->str + skip_len, v)) != 0) {
            c->host->error_set(err, rc, 0, "cannot deliver the leaves of bucket %zu", index);
            return rc;
        }
    }
    return 0;
}

typedef struct rd_get_ctx {
    const trifle_bucket *buckets;
    trifle_sink *sink;
} rd_get_ctx;

static int rd_get_reply(trifle_conn *c, size_t i, redisReply *r, void *payload, trifle_error *err)
{
    rd_get_ctx *g = payload;

    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) {
        char key[160];
        (void)snprintf(key, sizeof(key), "%s%s", c->prefix, g->buckets[i].id);
        return rd_reply_fail(c, r, "HGETALL", key, err);
    }
    return rd_emit_hash(c, g->sink, i, r, "", 0, err);
}

static unsigned rd_get_slot(trifle_conn *c, size_t u, void *payload)
{
    const rd_get_ctx *g = payload;

    return rd_slot_of(c, g->buckets[u].id, NULL);
}

static void rd_get_build(trifle_conn *c, drv_buf *b, size_t u, void *payload)
{
    const rd_get_ctx *g = payload;

    RD_PUT_LIT(b, "*2\r\n$7\r\nHGETALL\r\n");
    rd_arg_key(c, b, g->buckets[u].id);
}

static int rd_get(trifle_conn *c, const trifle_bucket *buckets, size_t n, trifle_sink *sink,
                  trifle_error *err)
{
    static const rd_op op = {1, RD_READ, 0, "HGETALL", rd_get_slot, rd_get_build, rd_get_reply};
    rd_get_ctx g;
    rd_job job = {.op = &op, .n = n, .payload = &g};
    size_t i;

    if (c == NULL || (buckets == NULL && n > 0) || sink == NULL)
        return TRIFLE_EINVAL;
    if (n == 0)
        return 0;
    for (i = 0; i < n; i++)
        if (buckets[i].id == NULL) {
            c->host->error_set(err, TRIFLE_EINVAL, 0, "bucket %zu has no identifier", i);
            return TRIFLE_EINVAL;
        }
    g.buckets = buckets;
    g.sink = sink;
    return rd_run(c, &job, err);
}

/* ---------------------------------------------------------------------------------------------
 * Writes
 */

/* The hash of the journal marks (ABI 1.1): join(sep, prefix, "marks"), `trfl::marks`. It cannot
 * be a bucket hash (those end in the bucket's digits) nor a ping hash (those end in "ping"). */
static void rd_arg_marks_key(trifle_conn *c, drv_buf *b)
{
    rd_arg2(b, c->prefix, c->prefix_len, "marks", 5);
}

/* Append the script's arguments for items (n_inc of them when inc, else n_set). */
static void rd_put_items(drv_buf *b, const trifle_entry *items, size_t n, int inc)
{
    size_t i, j;

    for (i = 0; i < n; i++) {
        const trifle_entry *e = &items[i];
        rd_arg_uint(b, inc ? e->n_leaves : 0);
        rd_arg_uint(b, inc ? 0 : e->n_leaves);
        for (j = 0; j < e->n_leaves; j++) {
            rd_arg_str(b, e->leaves[j].path);
            rd_arg_num(b, e->leaves[j].value);
        }
    }
}

/* Append the EVALSHA (or, after NOSCRIPT, EVAL) request of one inc, set or write_marked call to
 * b: the set items, then the inc items, then the mark (when not NULL). */
static void rd_build_write(trifle_conn *c, drv_buf *b, const trifle_entry *set_items, size_t n_set,
                           const trifle_entry *inc_items, size_t n_inc, const trifle_mark *mark,
                           int eval)
{
    size_t n = n_set + n_inc, argc = 4 + n, est = 160 + (eval ? sizeof(rd_script) : 0), i;

    for (i = 0; i < n; i++) {
        const trifle_entry *e = i < n_set ? &set_items[i] : &inc_items[i - n_set];
        argc += 2 + 2 * e->n_leaves;
        est += 48 + c->prefix_len + strlen(e->bucket.id) + 48 * e->n_leaves;
    }
    if (mark != NULL) {
        argc += 3;
        est += c->prefix_len + strlen(mark->name) + 64;
    }
    if (est > b->cap - b->len && drv_buf_grow(b, est) != 0)
        return;
    rd_hdr(b, '*', argc);
    if (eval) {
        rd_arg(b, "EVAL", 4);
        rd_arg(b, rd_script, sizeof(rd_script) - 1);
    } else {
        rd_arg(b, "EVALSHA", 7);
        rd_arg(b, c->sha, 40);
    }
    rd_arg_uint(b, n + (mark != NULL));
    for (i = 0; i < n_set; i++)
        rd_arg_key(c, b, set_items[i].bucket.id);
    for (i = 0; i < n_inc; i++)
        rd_arg_key(c, b, inc_items[i].bucket.id);
    if (mark != NULL)
        rd_arg_marks_key(c, b);
    rd_arg_uint(b, n);
    rd_put_items(b, set_items, n_set, 0);
    rd_put_items(b, inc_items, n_inc, 1);
    if (mark != NULL) {
        rd_arg_str(b, mark->name);
        rd_arg_uint(b, mark->seq);
    }
}

static int rd_load_reply(trifle_conn *c, size_t i, redisReply *r, void *payload, trifle_error *err)
{
    (void)i;
    (void)payload;
    if (r->type != REDIS_REPLY_STRING || r->len != 40)
        return rd_reply_fail(c, r, "SCRIPT LOAD", NULL, err);
    memcpy(c->sha, r->str, 40);
    c->sha[40] = '\0';
    c->have_sha = 1;
    c->cur->need_load = 0;
    return 0;
}

typedef struct rd_write_ctx {
    size_t n;
    ptrdiff_t failed;
    int noscript;
} rd_write_ctx;

static int rd_write_reply(trifle_conn *c, size_t i, redisReply *r, void *payload, trifle_error *err)
{
    rd_write_ctx *w = payload;
    const char *p;
    long long idx = 0;

    (void)i;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == (long long)w->n)
        return 0;
    if (r->type == REDIS_REPLY_ERROR && rd_starts(r, "NOSCRIPT")) {
        w->noscript = 1;
        return TRIFLE_ENOTFOUND; /* handled by the caller: nothing ran */
    }
    if (r->type == REDIS_REPLY_ERROR && rd_starts(r, "TRIFLE_EDATA")) {
        for (p = r->str + 13; p < r->str + r->len && *p >= '0' && *p <= '9'; p++)
            idx = idx * 10 + (*p - '0');
        if (idx < (long long)w->n)
            w->failed = (ptrdiff_t)idx;
    }
    if (r->type != REDIS_REPLY_ERROR) {
        c->host->error_set(err, TRIFLE_EDRIVER, 0, "redis EVALSHA: unexpected reply (type %d)",
                           r->type);
        return TRIFLE_EDRIVER;
    }
    return rd_reply_fail(c, r, "EVALSHA", NULL, err);
}

/* The identifiers and leaf paths of items are set (`first` numbers them in messages). */
static int rd_check_items(trifle_conn *c, const trifle_entry *items, size_t n, size_t first,
                          trifle_error *err)
{
    size_t i, j;

    if (items == NULL && n > 0)
        return TRIFLE_EINVAL;
    for (i = 0; i < n; i++) {
        if (items[i].bucket.id == NULL || (items[i].leaves == NULL && items[i].n_leaves > 0)) {
            c->host->error_set(err, TRIFLE_EINVAL, 0, "item %zu has no identifier or leaves",
                               first + i);
            return TRIFLE_EINVAL;
        }
        for (j = 0; j < items[i].n_leaves; j++)
            if (items[i].leaves[j].path == NULL) {
                c->host->error_set(err, TRIFLE_EINVAL, 0, "item %zu leaf %zu has no path",
                                   first + i, j);
                return TRIFLE_EINVAL;
            }
    }
    return 0;
}

/* The cluster's inc and set: one script run per item (its key's slot), so each bucket is written
 * whole or not at all, but a call is not atomic across buckets. */
typedef struct rd_cl_write_ctx {
    const trifle_entry *items;
    int inc;
} rd_cl_write_ctx;

static unsigned rd_cl_write_slot(trifle_conn *c, size_t u, void *payload)
{
    const rd_cl_write_ctx *w = payload;

    return rd_slot_of(c, w->items[u].bucket.id, NULL);
}

static void rd_cl_write_build(trifle_conn *c, drv_buf *b, size_t u, void *payload)
{
    const rd_cl_write_ctx *w = payload;

    if (w->inc)
        rd_build_write(c, b, NULL, 0, &w->items[u], 1, NULL, 0);
    else
        rd_build_write(c, b, &w->items[u], 1, NULL, 0, NULL, 0);
}

static int rd_cl_write_reply(trifle_conn *c, size_t i, redisReply *r, void *payload,
                             trifle_error *err)
{
    rd_write_ctx w = {1, -1, 0};
    int rc;

    (void)payload;
    rc = rd_write_reply(c, i, r, &w, err);
    if (w.noscript) { /* rd_redirect() retries NOSCRIPT: this is a bug, not a server state */
        c->host->error_set(err, TRIFLE_EDRIVER, 0, "redis EVALSHA: unexpected NOSCRIPT reply");
        return TRIFLE_EDRIVER;
    }
    return rc;
}

/* On failure: `applied` counts the leading items that are stored; when a later item is stored
 * too (or its reply was lost), the outcome is reported unknown, as the core cannot be told which
 * items beyond `applied` went in. */
static int rd_cl_write(trifle_conn *c, const trifle_entry *items, size_t n, int inc,
                       trifle_write_result *res, trifle_error *err)
{
    static const rd_op op = {
        1, RD_WRITE, 1, "EVALSHA", rd_cl_write_slot, rd_cl_write_build, rd_cl_write_reply};
    rd_cl_write_ctx w;
    rd_job job = {.op = &op, .n = n, .payload = &w};
    size_t applied, u;
    int rc, unknown;

    if (!c->have_sha) {
        /* any node: the others get SCRIPT LOAD in front of their first script (rd_run) */
        if ((c->slot_node == NULL || c->refresh) && (rc = rd_discover(c, err)) != 0)
            goto fail;
        c->cmd.len = 0;
        RD_PUT_LIT(&c->cmd, "*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n");
        rd_arg(&c->cmd, rd_script, sizeof(rd_script) - 1);
        if ((rc = rd_call(c, 1, RD_READ, rd_load_reply, NULL, NULL, "SCRIPT LOAD", err)) != 0)
            goto fail;
    }
    w.items = items;
    w.inc = inc;
    if ((rc = rd_run(c, &job, err)) == 0)
        return 0;
    if (job.first_failed == SIZE_MAX) /* failed before any unit was sent */
        goto fail;
    for (applied = 0; applied < n && c->units[applied].state == RD_U_DONE; applied++)
        ;
    unknown = job.unknown;
    for (u = applied + 1; u < n && !unknown; u++)
        unknown = c->units[u].state == RD_U_DONE;
    TRIFLE_WRITE_RESULT_SET(res, applied, rc == TRIFLE_EDATA ? (ptrdiff_t)job.first_failed : -1,
                            unknown);
    return rc;
fail:
    TRIFLE_WRITE_RESULT_SET(res, 0, -1, 0);
    return rc;
}

/* One run of rd_script: the set items, the inc items and, when mark is not NULL, the mark. */
static int rd_write(trifle_conn *c, const trifle_entry *set_items, size_t n_set,
                    const trifle_entry *inc_items, size_t n_inc, const trifle_mark *mark,
                    trifle_write_result *res, trifle_error *err)
{
    rd_write_ctx w;
    int rc, unknown = 0;

    if (c == NULL)
        return TRIFLE_EINVAL;
    if (n_set + n_inc == 0 && mark == NULL)
        return 0;
    if ((rc = rd_check_items(c, set_items, n_set, 0, err)) != 0 ||
        (rc = rd_check_items(c, inc_items, n_inc, n_set, err)) != 0)
        return rc;
    if (c->cluster && mark == NULL) /* write_marked is not in the cluster driver's table */
        return n_set > 0 ? rd_cl_write(c, set_items, n_set, 0, res, err)
                         : rd_cl_write(c, inc_items, n_inc, 1, res, err);
    w.n = n_set + n_inc;
    w.failed = -1;
    w.noscript = 0;
    if (!c->have_sha) {
        c->cmd.len = 0;
        RD_PUT_LIT(&c->cmd, "*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n");
        rd_arg(&c->cmd, rd_script, sizeof(rd_script) - 1);
        if ((rc = rd_call(c, 1, RD_READ, rd_load_reply, NULL, NULL, "SCRIPT LOAD", err)) != 0)
            goto done;
    }
    c->cmd.len = 0;
    rd_build_write(c, &c->cmd, set_items, n_set, inc_items, n_inc, mark, 0);
    rc = rd_call(c, 1, RD_WRITE, rd_write_reply, &w, &unknown, "EVALSHA", err);
    if (rc != 0 && w.noscript) {
        /* the server lost its script cache (restart, SCRIPT FLUSH): EVAL also reloads it */
        w.noscript = 0;
        c->cmd.len = 0;
        rd_build_write(c, &c->cmd, set_items, n_set, inc_items, n_inc, mark, 1);
        rc = rd_call(c, 1, RD_WRITE, rd_write_reply, &w, &unknown, "EVAL", err);
        if (rc != 0 && w.noscript) {
            c->host->error_set(err, TRIFLE_EDRIVER, 0, "redis EVAL: unexpected NOSCRIPT reply");
            rc = TRIFLE_EDRIVER;
        }
    }
done:
    if (rc != 0)
        TRIFLE_WRITE_RESULT_SET(res, 0, rc == TRIFLE_EDATA ? w.failed : -1, unknown);
    return rc;
}

static int rd_inc(trifle_conn *c, const trifle_entry *items, size_t n, trifle_write_result *res,
                  trifle_error *err)
{
    return rd_write(c, NULL, 0, items, n, NULL, res, err);
}

static int rd_set(trifle_conn *c, const trifle_entry *items, size_t n, trifle_write_result *res,
                  trifle_error *err)
{
    return rd_write(c, items, n, NULL, 0, NULL, res, err);
}

#ifndef RD_CLUSTER_PLUGIN /* journal marks: the plain driver only */
/* ABI 1.1: the whole flush and the mark in one script run, so they are stored together or not at
 * all (the script checks everything before its first write). */
static int rd_write_marked(trifle_conn *c, const trifle_entry *set_items, size_t n_set,
                           const trifle_entry *inc_items, size_t n_inc, const trifle_mark *mark,
                           trifle_write_result *res, trifle_error *err)
{
    if (c == NULL || mark == NULL || mark->name == NULL)
        return TRIFLE_EINVAL;
    return rd_write(c, set_items, n_set, inc_items, n_inc, mark, res, err);
}

typedef struct rd_mark_ctx {
    const char *name;
    uint64_t *seq;
} rd_mark_ctx;

static int rd_mark_reply(trifle_conn *c, size_t i, redisReply *r, void *payload, trifle_error *err)
{
    rd_mark_ctx *m = payload;
    uint64_t v = 0;
    size_t j;

    (void)i;
    if (r->type == REDIS_REPLY_NIL)
        return 0;
    if (r->type != REDIS_REPLY_STRING)
        return rd_reply_fail(c, r, "HGET", m->name, err);
    for (j = 0; j < r->len && r->str[j] >= '0' && r->str[j] <= '9' && v <= (uint64_t)INT64_MAX / 10;
         j++)
        v = v * 10 + (uint64_t)(r->str[j] - '0');
    if (r->len == 0 || j != r->len || v > (uint64_t)INT64_MAX) {
        c->host->error_set(err, TRIFLE_EDRIVER, 0, "invalid seq \"%.*s\" of journal %s",
                           (int)(r->len > 40 ? 40 : r->len), r->str, m->name);
        return TRIFLE_EDRIVER;
    }
    *m->seq = v;
    return 0;
}

/* HGET <prefix><sep>marks <name>: 0 when there is no such field or hash. */
static int rd_mark_read(trifle_conn *c, const char *name, uint64_t *seq, trifle_error *err)
{
    rd_mark_ctx m;

    if (c == NULL || name == NULL || seq == NULL)
        return TRIFLE_EINVAL;
    *seq = 0;
    c->cmd.len = 0;
    RD_PUT_LIT(&c->cmd, "*3\r\n$4\r\nHGET\r\n");
    rd_arg_marks_key(c, &c->cmd);
    rd_arg_str(&c->cmd, name);
    m.name = name;
    m.seq = seq;
    return rd_call(c, 1, RD_READ, rd_mark_reply, &m, NULL, "HGET", err);
}
#endif

/* ---------------------------------------------------------------------------------------------
 * Ping and scan
 */

/* The ping hash of key: join(sep, prefix, key, "ping"). */
static void rd_arg_ping_key(trifle_conn *c, drv_buf *b, const char *key)
{
    size_t kn = strlen(key);

    rd_hdr(b, '$', c->prefix_len + kn + c->sep_len + 4);
    drv_buf_put(b, c->prefix, c->prefix_len);
    drv_buf_put(b, key, kn);
    drv_buf_put(b, c->sep, c->sep_len);
    RD_PUT_LIT(b, "ping\r\n");
}

static int rd_ping_reply(trifle_conn *c, size_t i, redisReply *r, void *payload, trifle_error *err)
{
    static const char *const ops[] = {"MULTI", "DEL", "HSET", "EXEC"};
    size_t j;

    (void)payload;
    if (r->type == REDIS_REPLY_ERROR)
        return rd_reply_fail(c, r, ops[i], NULL, err);
    if (i < 3)
        return 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        c->host->error_set(err, TRIFLE_EDRIVER, 0, "redis EXEC: transaction was not executed");
        return TRIFLE_EDRIVER;
    }
    for (j = 0; j < r->elements; j++)
        if (r->element[j]->type == REDIS_REPLY_ERROR)
            return rd_reply_fail(c, r->element[j], ops[j + 1], NULL, err);
    return 0;
}

typedef struct rd_ping_ctx {
    const char *key; /* first, for rd_ping_slot (rd_scan_ctx too) */
    const char *at_text;
    const trifle_leaf *leaves;
    size_t n;
} rd_ping_ctx;

/* The slot of the ping hash of a key; payload is an rd_ping_ctx or an rd_scan_ctx, which both
 * start with the key (C11 6.7.2.1: a pointer to a struct points to its first member). */
static unsigned rd_ping_slot(trifle_conn *c, size_t u, void *payload)
{
    const char *const *key = payload;

    (void)u;
    return rd_slot_of(c, *key, "ping");
}

static void rd_ping_build(trifle_conn *c, drv_buf *b, size_t u, void *payload)
{
    const rd_ping_ctx *pc = payload;
    size_t i;

    (void)u;
    RD_PUT_LIT(b, "*1\r\n$5\r\nMULTI\r\n*2\r\n$3\r\nDEL\r\n");
    rd_arg_ping_key(c, b, pc->key);
    rd_hdr(b, '*', 4 + 2 * pc->n);
    RD_PUT_LIT(b, "$4\r\nHSET\r\n");
    rd_arg_ping_key(c, b, pc->key);
    rd_arg(b, "at", 2);
    rd_arg(b, pc->at_text, RD_AT_LEN);
    for (i = 0; i < pc->n; i++) {
        rd_arg2(b, "data.", 5, pc->leaves[i].path, strlen(pc->leaves[i].path));
        rd_arg_num(b, pc->leaves[i].value);
    }
    RD_PUT_LIT(b, "*1\r\n$4\r\nEXEC\r\n");
}

static int rd_ping(trifle_conn *c, const char *key, int64_t at, const trifle_leaf *leaves, size_t n,
                   trifle_error *err)
{
    char at_text[RD_AT_LEN + 1];
    /* MULTI/DEL/HSET/EXEC replaces the ping whole, so resending it is harmless: RD_READ */
    static const rd_op op = {4, RD_READ, 0, "ping", rd_ping_slot, rd_ping_build, rd_ping_reply};
    rd_ping_ctx pc;
    rd_job job = {.op = &op, .n = 1, .payload = &pc};
    size_t i;

    if (c == NULL || key == NULL || (leaves == NULL && n > 0))
        return TRIFLE_EINVAL;
    if (tu_time_format(at_text, at) != 0) {
        c->host->error_set(err, TRIFLE_EINVAL, 0, "time out of range");
        return TRIFLE_EINVAL;
    }
    for (i = 0; i < n; i++)
        if (leaves[i].path == NULL) {
            c->host->error_set(err, TRIFLE_EINVAL, 0, "leaf %zu has no path", i);
            return TRIFLE_EINVAL;
        }
    pc.key = key;
    pc.at_text = at_text;
    pc.leaves = leaves;
    pc.n = n;
    return rd_run(c, &job, err);
}

typedef struct rd_scan_ctx {
    const char *key; /* first, for rd_ping_slot */
    int64_t *at_out;
    trifle_sink *sink;
} rd_scan_ctx;

static int rd_scan_reply(trifle_conn *c, size_t i, redisReply *r, void *payload, trifle_error *err)
{
    rd_scan_ctx *s = payload;
    const redisReply *at = NULL;
    size_t j;
    int64_t t;
    int rc;

    (void)i;
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
        return rd_reply_fail(c, r, "HGETALL", s->key, err);
    if (r->elements == 0) {
        c->host->error_set(err, TRIFLE_ENOTFOUND, 0, "no ping for key %s", s->key);
        return TRIFLE_ENOTFOUND;
    }
    for (j = 0; j + 1 < r->elements; j += 2)
        if (rd_is_str(r->element[j]) && r->element[j]->len == 2 &&
            memcmp(r->element[j]->str, "at", 2) == 0)
            at = r->element[j + 1];
    if (at == NULL || !rd_is_str(at) || !rd_time_parse(at->str, at->len, &t)) {
        c->host->error_set(err, TRIFLE_EDRIVER, 0, "invalid ping time \"%.*s\" for key %s",
                           at != NULL && rd_is_str(at) ? (int)(at->len > 40 ? 40 : at->len) : 0,
                           at != NULL && rd_is_str(at) ? at->str : "", s->key);
        return TRIFLE_EDRIVER;
    }
    if ((rc = rd_emit_hash(c, s->sink, 0, r, "data.", 5, err)) != 0)
        return rc;
    *s->at_out = t;
    return 0;
}

static void rd_scan_build(trifle_conn *c, drv_buf *b, size_t u, void *payload)
{
    const rd_scan_ctx *s = payload;

    (void)u;
    RD_PUT_LIT(b, "*2\r\n$7\r\nHGETALL\r\n");
    rd_arg_ping_key(c, b, s->key);
}

static int rd_scan(trifle_conn *c, const char *key, int64_t *at_out, trifle_sink *sink,
                   trifle_error *err)
{
    static const rd_op op = {1, RD_READ, 0, "HGETALL", rd_ping_slot, rd_scan_build, rd_scan_reply};
    rd_scan_ctx s;
    rd_job job = {.op = &op, .n = 1, .payload = &s};

    if (c == NULL || key == NULL || at_out == NULL || sink == NULL)
        return TRIFLE_EINVAL;
    s.key = key;
    s.at_out = at_out;
    s.sink = sink;
    return rd_run(c, &job, err);
}

/* ---------------------------------------------------------------------------------------------
 * Setup and drop
 */

static int rd_pong_reply(trifle_conn *c, size_t i, redisReply *r, void *payload, trifle_error *err)
{
    (void)i;
    (void)payload;
    if (r->type == REDIS_REPLY_STATUS && r->len == 4 && memcmp(r->str, "PONG", 4) == 0)
        return 0;
    return rd_reply_fail(c, r, "PING", NULL, err);
}

/* Does node k serve a slot (a cluster master)? */
static int rd_serves(const trifle_conn *c, size_t k)
{
    size_t s;

    for (s = 0; s < RD_SLOTS; s++)
        if (c->slot_node[s] == k)
            return 1;
    return 0;
}

/* Run fn on the server, or on a cluster on every master (after reading the slot map afresh). */
static int rd_each_master(trifle_conn *c, int (*fn)(trifle_conn *c, trifle_error *err),
                          trifle_error *err)
{
    size_t k;
    int rc;

    if (c->cluster && (rc = rd_discover(c, err)) != 0)
        return rc;
    for (k = 0; k < c->n_nodes; k++) {
        if (c->cluster && !rd_serves(c, k))
            continue;
        c->cur = c->nodes[k];
        if ((rc = fn(c, err)) != 0)
            return rc;
    }
    return 0;
}

static int rd_ping_node(trifle_conn *c, trifle_error *err)
{
    c->cmd.len = 0;
    RD_PUT_LIT(&c->cmd, "*1\r\n$4\r\nPING\r\n");
    return rd_call(c, 1, RD_READ, rd_pong_reply, NULL, NULL, "PING", err);
}

/* PING the server, or every master of a cluster. */
static int rd_setup(trifle_conn *c, trifle_error *err)
{
    if (c == NULL)
        return TRIFLE_EINVAL;
    return rd_each_master(c, rd_ping_node, err);
}

/* Append s[0..n) to b with Redis glob characters escaped. */
static void rd_put_glob(drv_buf *b, const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] == '*' || s[i] == '?' || s[i] == '[' || s[i] == ']' || s[i] == '\\')
            RD_PUT_LIT(b, "\\");
        drv_buf_put(b, s + i, 1);
    }
}

typedef struct rd_drop_ctx {
    char cursor[24];
    size_t n_keys;
} rd_drop_ctx;

/* SCAN reply: remember the cursor and build `UNLINK <keys>` into c->aux. */
static int rd_scan_page_reply(trifle_conn *c, size_t i, redisReply *r, void *payload,
                              trifle_error *err)
{
    rd_drop_ctx *d = payload;
    const redisReply *keys;
    size_t j;

    (void)i;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !rd_is_str(r->element[0]) ||
        r->element[0]->len >= sizeof(d->cursor) || r->element[1]->type != REDIS_REPLY_ARRAY)
        return rd_reply_fail(c, r, "SCAN", NULL, err);
    memcpy(d->cursor, r->element[0]->str, r->element[0]->len);
    d->cursor[r->element[0]->len] = '\0';
    keys = r->element[1];
    d->n_keys = 0;
    c->aux.len = 0;
    for (j = 0; j < keys->elements; j++)
        d->n_keys += rd_is_str(keys->element[j]);
    if (d->n_keys == 0)
        return 0;
    if (c->cluster) { /* one key per UNLINK: the keys of one command must share a slot */
        for (j = 0; j < keys->elements; j++)
            if (rd_is_str(keys->element[j])) {
                RD_PUT_LIT(&c->aux, "*2\r\n$6\r\nUNLINK\r\n");
                rd_arg(&c->aux, keys->element[j]->str, keys->element[j]->len);
            }
        return c->oom ? rd_oom(c, err) : 0;
    }
    rd_hdr(&c->aux, '*', 1 + d->n_keys);
    if (c->no_unlink)
        rd_arg(&c->aux, "DEL", 3);
    else
        rd_arg(&c->aux, "UNLINK", 6);
    for (j = 0; j < keys->elements; j++)
        if (rd_is_str(keys->element[j]))
            rd_arg(&c->aux, keys->element[j]->str, keys->element[j]->len);
    return c->oom ? rd_oom(c, err) : 0;
}

static int rd_unlink_reply(trifle_conn *c, size_t i, redisReply *r, void *payload,
                           trifle_error *err)
{
    int *unknown_command = payload;

    (void)i;
    if (r->type == REDIS_REPLY_INTEGER)
        return 0;
    if (!c->no_unlink && r->type == REDIS_REPLY_ERROR && r->len >= 19 &&
        memcmp(r->str, "ERR unknown command", 19) == 0) {
        *unknown_command = 1;
        return TRIFLE_ENOTSUP;
    }
    return rd_reply_fail(c, r, c->no_unlink ? "DEL" : "UNLINK", NULL, err);
}

/* SCAN the current node for the prefix's keys and UNLINK them. */
static int rd_drop_node(trifle_conn *c, trifle_error *err)
{
    rd_drop_ctx d;
    drv_buf tmp;
    size_t pat_off;
    int rc, unknown_command;

    memcpy(d.cursor, "0", 2);
    do {
        c->cmd.len = 0;
        RD_PUT_LIT(&c->cmd, "*6\r\n$4\r\nSCAN\r\n");
        rd_arg_str(&c->cmd, d.cursor);
        rd_arg(&c->cmd, "MATCH", 5);
        /* the pattern: glob-escaped "<prefix><sep>" then "*" */
        pat_off = c->aux.len = 0;
        rd_put_glob(&c->aux, c->prefix, c->prefix_len);
        RD_PUT_LIT(&c->aux, "*");
        if (c->oom)
            return rd_oom(c, err);
        rd_arg(&c->cmd, c->aux.p + pat_off, c->aux.len);
        rd_arg(&c->cmd, "COUNT", 5);
        rd_arg(&c->cmd, RD_SCAN_COUNT, sizeof(RD_SCAN_COUNT) - 1);
        if ((rc = rd_call(c, 1, RD_READ, rd_scan_page_reply, &d, NULL, "SCAN", err)) != 0)
            return rc;
        if (d.n_keys == 0)
            continue;
        /* the UNLINK built in c->aux becomes the request */
        tmp = c->cmd;
        c->cmd = c->aux;
        c->aux = tmp;
        unknown_command = 0;
        rc = rd_call(c, c->cluster ? d.n_keys : 1, RD_READ, rd_unlink_reply, &unknown_command, NULL,
                     "UNLINK", err);
        if (rc != 0 && unknown_command && !c->cluster) {
            /* Redis < 4: the same keys with DEL; the word follows the array header */
            char *p = memchr(c->cmd.p, '\n', c->cmd.len);
            c->no_unlink = 1;
            if (p == NULL || c->cmd.len - (size_t)(++p - c->cmd.p) < 12 ||
                memcmp(p, "$6\r\nUNLINK\r\n", 12) != 0) {
                c->host->error_set(err, TRIFLE_EDRIVER, 0, "redis UNLINK: unknown command");
                return TRIFLE_EDRIVER;
            }
            memmove(p + 9, p + 12, c->cmd.len - (size_t)(p + 12 - c->cmd.p));
            memcpy(p, "$3\r\nDEL\r\n", 9);
            c->cmd.len -= 3;
            rc = rd_call(c, 1, RD_READ, rd_unlink_reply, &unknown_command, NULL, "DEL", err);
        }
        if (rc != 0)
            return rc;
    } while (strcmp(d.cursor, "0") != 0);
    return 0;
}

/* Delete every key of the prefix; on a cluster, on every master. A key that a resharding moves
 * during the drop can be missed (or fail with MOVED): run drop again. */
static int rd_drop(trifle_conn *c, trifle_error *err)
{
    if (c == NULL)
        return TRIFLE_EINVAL;
    if (c->prefix_raw_len == 0) {
        c->host->error_set(err, TRIFLE_ENOTSUP, 0,
                           "redis drop needs a non-empty prefix (an empty prefix would match "
                           "every key of the database)");
        return TRIFLE_ENOTSUP;
    }
    return rd_each_master(c, rd_drop_node, err);
}

/* ---------------------------------------------------------------------------------------------
 * Open and close
 */

static void rd_close(trifle_conn *c)
{
    size_t k;

    if (c == NULL)
        return;
    for (k = 0; k < c->n_nodes; k++) {
        c->cur = c->nodes[k];
        rd_ctx_free(c);
        c->host->free(c->cur->host);
        c->host->free(c->cur);
    }
    c->host->free(c->nodes);
    c->host->free(c->slot_node);
    c->host->free(c->units);
    c->host->free(c->pos);
    drv_buf_free(&c->key);
    if (c->password != NULL) {
        volatile char *p = c->password;
        while (*p != '\0')
            *p++ = '\0';
    }
    c->host->free(c->password);
    c->host->free(c->user);
    c->host->free(c->path);
    c->host->free(c->prefix);
    drv_buf_free(&c->cmd);
    drv_buf_free(&c->aux);
    if (c->hello.p != NULL) /* it holds the password */
        memset(c->hello.p, 0, c->hello.cap);
    drv_buf_free(&c->hello);
    c->host->free(c);
}

static int rd_open_as(trifle_conn **out, const trifle_host_api *host, const char *url,
                      const trifle_open_params *params, const char *const *opts, int cluster,
                      trifle_error *err)
{
    const char *prefix = "trfl", *sep = drv_params_separator(params), *db_text = NULL;
    trifle_conn *c;
    size_t i, pn;
    int rc, db_given = 0;
    long v;

    if (out == NULL || host == NULL)
        return TRIFLE_EINVAL;
    *out = NULL;
    if (drv_params_mode(params) != TRIFLE_ID_FULL) {
        host->error_set(err, TRIFLE_ECONFIG, 0,
                        "redis driver supports only the full identifier mode");
        return TRIFLE_ECONFIG;
    }
    if ((c = drv_calloc(host, sizeof(*c), err)) == NULL)
        return TRIFLE_ENOMEM;
    c->host = host;
    c->timeout_ms = RD_DEFAULT_TIMEOUT_MS;
    c->cluster = cluster;
    drv_buf_init(&c->key, host, &c->oom);
    drv_buf_init(&c->cmd, host, &c->oom);
    drv_buf_init(&c->aux, host, &c->oom);
    drv_buf_init(&c->hello, host, &c->oom);

    for (i = 0; opts != NULL && opts[i] != NULL; i += 2) {
        const char *name = opts[i], *value = opts[i + 1] != NULL ? opts[i + 1] : "";
        if (drv_opt_is_core(name)) {
            /* applied by the core */
        } else if (strcmp(name, "prefix") == 0) {
            prefix = value;
        } else if (strcmp(name, "timeout_ms") == 0) {
            if (rd_parse_long(value, strlen(value), 1, RD_MAX_TIMEOUT_MS, &v) != 0) {
                host->error_set(err, TRIFLE_ECONFIG, 0, "invalid option timeout_ms: %s", value);
                rc = TRIFLE_ECONFIG;
                goto done;
            }
            c->timeout_ms = (int)v;
        } else if (strcmp(name, "db") == 0) {
            db_text = value;
        } else {
            host->error_set(err, TRIFLE_ECONFIG, 0, "invalid driver URL: unknown parameter %s",
                            name);
            rc = TRIFLE_ECONFIG;
            goto done;
        }
        if (opts[i + 1] == NULL)
            break;
    }
    c->sep_len = strlen(sep);
    if (c->sep_len == 0 || c->sep_len >= sizeof(c->sep)) {
        host->error_set(err, TRIFLE_ECONFIG, 0, "separator must be 1 to 16 bytes without NUL");
        rc = TRIFLE_ECONFIG;
        goto done;
    }
    memcpy(c->sep, sep, c->sep_len + 1);
    pn = strlen(prefix);
    c->prefix_raw_len = pn;
    c->prefix_len = pn != 0 ? pn + c->sep_len : 0;
    if ((c->prefix = host->alloc(c->prefix_len + 1)) == NULL) {
        rc = rd_oom(c, err);
        goto done;
    }
    memcpy(c->prefix, prefix, pn);
    if (pn != 0)
        memcpy(c->prefix + pn, sep, c->sep_len);
    c->prefix[c->prefix_len] = '\0';

    if ((rc = rd_parse_url(c, url, &db_given, err)) != 0)
        goto done;
    if (db_text != NULL) {
        if (rd_parse_long(db_text, strlen(db_text), 0, INT_MAX, &v) != 0) {
            host->error_set(err, TRIFLE_ECONFIG, 0, "invalid option db: %s", db_text);
            rc = TRIFLE_ECONFIG;
            goto done;
        }
        if (db_given && v != c->db) {
            host->error_set(err, TRIFLE_ECONFIG, 0,
                            "invalid driver URL: database /%ld and db=%ld disagree", c->db, v);
            rc = TRIFLE_ECONFIG;
            goto done;
        }
        if (cluster && v != 0) {
            host->error_set(err, TRIFLE_ECONFIG, 0,
                            "invalid option db: a Redis Cluster has only database 0, not %ld", v);
            rc = TRIFLE_ECONFIG;
            goto done;
        }
        c->db = v;
    }
    /* a cluster connects to a seed and reads its slot map; the other nodes connect when used */
    if ((rc = cluster ? rd_discover(c, err) : rd_connect(c, err)) != 0)
        goto done;
    *out = c;
    c = NULL;
done:
    rd_close(c);
    return rc;
}

/* This file builds two plugins (CMakeLists.txt): trifle_redis.so, and with RD_CLUSTER_PLUGIN
 * trifle_redis_cluster.so. They share every line but the table, because capabilities belong to
 * a driver table, not to a connection: on a cluster one call spans slots, and no script or
 * transaction may, so the cluster driver declares neither TRIFLE_CAP_ATOMIC_BATCH (a call is
 * atomic per bucket only) nor TRIFLE_CAP_JOURNAL_MARK (a mark cannot be stored together with
 * buckets of other slots; the core then replays its journal at least once). redis_cluster://
 * reaches its plugin without a core change (a plugin named like the scheme); the RFC 3986
 * spelling redis+cluster:// needs an entry in the core's scheme map. */
static const char *const rd_schemes[] = {
#ifdef RD_CLUSTER_PLUGIN
    "redis_cluster", "redis+cluster", NULL};
#else
    "redis", "redis+unix", NULL};
#endif

static int rd_open(trifle_conn **out, const trifle_host_api *host, const char *url,
                   const trifle_open_params *params, const char *const *opts, trifle_error *err)
{
    return rd_open_as(out, host, url, params, opts, RD_CLUSTER, err);
}

/* No TRIFLE_CAP_MODE_*: the core refuses partial and separated before open is called. */
/* clang-format off */
static const trifle_driver rd_driver = {
    TRIFLE_DRIVER_HEADER,
#ifdef RD_CLUSTER_PLUGIN
    .name = "redis_cluster",
    .caps = TRIFLE_CAP_PING | TRIFLE_CAP_SETUP,
#else
    .name = RD_NAME,
    .caps = TRIFLE_CAP_PING | TRIFLE_CAP_ATOMIC_BATCH | TRIFLE_CAP_SETUP | TRIFLE_CAP_JOURNAL_MARK,
    .write_marked = rd_write_marked,
    .mark_read = rd_mark_read,
#endif
    .version = RD_VERSION,
    .schemes = rd_schemes,
    .open_params = rd_open,
    .close = rd_close,
    .setup = rd_setup,
    .inc = rd_inc,
    .set = rd_set,
    .get = rd_get,
    .ping = rd_ping,
    .scan = rd_scan,
    .drop = rd_drop,
};
/* clang-format on */

#ifdef RD_CLUSTER_PLUGIN
TRIFLE_DRIVER_DEFINE(redis_cluster, rd_driver)
#else
TRIFLE_DRIVER_DEFINE(redis, rd_driver)
#endif
