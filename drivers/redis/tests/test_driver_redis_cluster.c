/* The Redis Cluster driver plugin (trifle_redis_cluster.so, drivers/redis/README.md) through its
 * ABI, as test_driver_redis.c does for the plain driver.
 *
 *  - offline: CRC16/XMODEM and hash-slot vectors (drivers/redis/rd_slot.h), URL errors, seeds
 *    that refuse connections;
 *  - on the three-master cluster of scripts/test-servers.sh (TRIFLE_TEST_URI_REDIS_CLUSTER): our
 *    slots agree with CLUSTER KEYSLOT; every bucket lands on the master of its slot under
 *    upstream's key and field names; a call is atomic per bucket, not across buckets; ASK and
 *    MOVED are followed; and a resharding that moves slots away and back while a forked writer
 *    increments keeps every total exact.
 *
 * The cluster is driven with redis-cli (CLUSTER SETSLOT, MIGRATE), which test-servers.sh needs
 * anyway. Without TRIFLE_TEST_URI_REDIS_CLUSTER the cluster tests are skipped and the program
 * exits 77 once the offline tests have passed (1 with CI=true or TRIFLE_TEST_STRICT=1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../rd_slot.h"
#include "driver_host.h"
#include "server_helpers.h"
#include "loader_int.h"
#include "trifle/driver.h"
#include "trifle/storage.h"

#define T0 INT64_C(1736935200) /* 2025-01-15T10:00:00Z */
#define MAX_NODES 8

static const trifle_driver *drv;
static const char *cluster_url; /* TRIFLE_TEST_URI_REDIS_CLUSTER, or NULL */
static int ports[MAX_NODES];    /* the seed nodes of the URL: the masters */
static size_t n_ports;
static char run_id[32]; /* "utc<pid>": prefixes of this run */

/* ---------------------------------------------------------------------------------------------
 * The cluster through redis-cli
 */

/* Run `redis-cli -p port <args>` (args: shell words, already quoted) and return its output
 * without the trailing newline, in a static buffer (one of four, so a few can be in use). */
static const char *cli(int port, const char *fmt, ...)
{
    static char out[4][8192];
    static int k;
    char cmd[2048];
    va_list ap;
    size_t n = 0, m;
    FILE *f;
    int len;

    k = (k + 1) % 4;
    len = snprintf(cmd, sizeof(cmd), "redis-cli -h 127.0.0.1 -p %d ", port);
    va_start(ap, fmt);
    (void)vsnprintf(cmd + len, sizeof(cmd) - (size_t)len, fmt, ap);
    va_end(ap);
    // NOLINTNEXTLINE(cert-env33-c): redis-cli against the test's own loopback servers
    if ((f = popen(cmd, "r")) == NULL)
        fail_msg("popen %s: %s", cmd, strerror(errno));
    while (n + 1 < sizeof(out[k]) && (m = fread(out[k] + n, 1, sizeof(out[k]) - 1 - n, f)) > 0)
        n += m;
    if (pclose(f) != 0)
        fail_msg("%s failed: %.*s", cmd, (int)n, out[k]);
    while (n > 0 && (out[k][n - 1] == '\n' || out[k][n - 1] == '\r'))
        n--;
    out[k][n] = '\0';
    return out[k];
}

static void cli_ok(int port, const char *fmt, const char *a, const char *b)
{
    const char *r = cli(port, fmt, a, b);

    if (strcmp(r, "OK") != 0)
        fail_msg("redis-cli -p %d %s: %s", port, fmt, r);
}

/* The node id of the master on port. */
static const char *node_id(int port)
{
    static char ids[MAX_NODES][64];
    size_t i;

    for (i = 0; i < n_ports; i++)
        if (ports[i] == port) {
            if (ids[i][0] == '\0')
                (void)snprintf(ids[i], sizeof(ids[i]), "%s", cli(port, "CLUSTER MYID"));
            return ids[i];
        }
    fail_msg("port %d is not a seed of %s", port, cluster_url);
    return NULL;
}

/* The index in ports[] of the master that owns slot s, from each node's own CLUSTER NODES line
 * (`<id> <addr> myself,master - 0 0 1 connected 0-5460 [93->-<id>] ...`). */
static size_t owner_of(unsigned s)
{
    size_t i;

    for (i = 0; i < n_ports; i++) {
        char line[8192], *p, *tok, *save = NULL;
        int field = 0;

        (void)snprintf(line, sizeof(line), "%s", cli(ports[i], "CLUSTER NODES"));
        if ((p = strstr(line, "myself")) == NULL)
            continue;
        while (p > line && p[-1] != '\n')
            p--;
        p[strcspn(p, "\n")] = '\0';
        for (tok = strtok_r(p, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
            unsigned lo, hi;
            if (++field <= 8 || tok[0] == '[')
                continue;
            /* redis-cli's CLUSTER NODES output; a single slot has no '-' */
            // NOLINTNEXTLINE(cert-err34-c): the count of fields read is the check
            if (sscanf(tok, "%u-%u", &lo, &hi) != 2)
                hi = lo = (unsigned)strtoul(tok, NULL, 10);
            if (s >= lo && s <= hi)
                return i;
        }
    }
    fail_msg("no master owns slot %u", s);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The driver
 */

/* Open the cluster (or url) with prefix "<run_id>_<name>". */
static int try_open(trifle_conn **c, const char *url, const char *name, trifle_error *err)
{
    static char prefix[96];
    const char *opts[] = {"prefix", prefix, NULL};

    (void)snprintf(prefix, sizeof(prefix), "%s_%s", run_id, name);
    *c = NULL;
    return test_host_open(drv, c, url, TRIFLE_ID_FULL, "::", opts, err);
}

static trifle_conn *open_ok(const char *name)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_conn *c;

    if (try_open(&c, cluster_url, name, &err) != 0)
        fail_msg("open %s: %s", cluster_url, err.message);
    return c;
}

/* Bucket (k<i>, 1h, T0) with one leaf "count" (or the given path) = v. */
typedef struct bucket {
    char id[64];
    trifle_leaf leaf;
    trifle_entry e;
} bucket;

static void bucket_init(bucket *b, size_t i, const char *path, double v)
{
    (void)snprintf(b->id, sizeof(b->id), "k%zu::1h::%lld", i, (long long)T0);
    b->leaf.path = path;
    b->leaf.value = v;
    b->e.bucket.id = b->id;
    b->e.bucket.key = "k";
    b->e.bucket.granularity = "1h";
    b->e.bucket.at = T0;
    b->e.leaves = &b->leaf;
    b->e.n_leaves = 1;
}

/* Increment "count" of buckets k0..k<n-1> by one in one call. */
static int inc_all(trifle_conn *c, size_t n, trifle_write_result *res, trifle_error *err)
{
    trifle_entry e[64];
    bucket b[64];
    size_t i;

    for (i = 0; i < n && i < 64; i++) {
        bucket_init(&b[i], i, "count", 1);
        e[i] = b[i].e;
    }
    return drv->inc(c, e, n, res, err);
}

/* "count" of bucket k<i>, read through the driver (0 when absent). */
static double count_of(trifle_conn *c, size_t i)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_sink *s = sink_new(1);
    bucket b;
    double v;

    bucket_init(&b, i, "count", 0);
    if (drv->get(c, &b.e.bucket, 1, s, &err) != 0)
        fail_msg("get %s: %s", b.id, err.message);
    v = sink_has(s, 0, "count") ? sink_value(s, 0, "count") : 0;
    sink_free(s);
    return v;
}

/* The stored hash of bucket k<i> of test name. */
static const char *hash_of(const char *name, size_t i)
{
    return test_fmt("%s_%s::k%zu::1h::%lld", run_id, name, i, (long long)T0);
}

/* ---------------------------------------------------------------------------------------------
 * Offline
 */

static void t_crc16(void **state)
{
    (void)state;
    assert_int_equal(rd_crc16("123456789", 9), 0x31C3);
    assert_int_equal(rd_crc16("", 0), 0);
    assert_int_equal(rd_key_slot("foo", 3), 12182);
    assert_int_equal(rd_key_slot("123456789", 9), 0x31C3 & 16383);
    /* a hash tag: the bytes between the first '{' and the first '}' after it */
    assert_int_equal(rd_key_slot("{user1000}.following", 20),
                     rd_key_slot("{user1000}.followers", 20));
    assert_int_equal(rd_key_slot("{user1000}.following", 20), rd_key_slot("user1000", 8));
    assert_int_equal(rd_key_slot("foo{bar}{zap}", 13), rd_key_slot("bar", 3));
    assert_int_equal(rd_key_slot("foo{{bar}}zap", 13), rd_crc16("{bar", 4) & 16383);
    /* an empty or unclosed tag hashes the whole key */
    assert_int_equal(rd_key_slot("foo{}{bar}", 10), rd_crc16("foo{}{bar}", 10) & 16383);
    assert_int_equal(rd_key_slot("{foo", 4), rd_crc16("{foo", 4) & 16383);
    assert_int_not_equal(rd_key_slot("{foo", 4), rd_key_slot("foo", 3));
    /* a slot is below 16384 whatever the CRC */
    assert_true(rd_key_slot("\xff\xff\xff\xff\xff\xff", 6) < 16384);
}

static void expect_open_error(const char *url, int code, const char *message)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_conn *c = NULL;
    int rc = try_open(&c, url, "bad", &err);

    test_open_refused(url, rc, c, &err, code, message);
}

static void t_url_errors(void **state)
{
    /* the status, the URL and what the message says */
    static const struct {
        int code;
        const char *url, *message;
    } bad[] = {
        {TRIFLE_ECONFIG, "redis://127.0.0.1:6379", "expected redis_cluster://"},
        {TRIFLE_ECONFIG, "redis_cluster://127.0.0.1:1,,127.0.0.1:2", "empty cluster node"},
        {TRIFLE_ECONFIG, "redis_cluster://127.0.0.1:1,127.0.0.1:99999", "invalid port \"99999\""},
        {TRIFLE_ECONFIG, "redis_cluster://127.0.0.1:1/2", "only database 0"},
        {TRIFLE_ECONFIG, "redis_cluster://[::1:1", "missing ']'"},
        /* port 1 refuses connections: every seed is tried, the last failure is reported */
        {TRIFLE_ECONN, "redis+cluster://127.0.0.1:1,127.0.0.1:1",
         "cannot connect to redis at 127.0.0.1:1"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_open_error(bad[i].url, bad[i].code, bad[i].message);
}

/* The plain server of test-servers.sh is no cluster node: a clear ECONFIG. */
static void t_not_a_cluster(void **state)
{
    const char *plain = getenv("TRIFLE_TEST_URI_REDIS");
    char url[256];
    int port = 0;

    (void)state;
    // NOLINTNEXTLINE(cert-err34-c): a URL of another shape skips the test
    if (plain == NULL || sscanf(plain, "redis://127.0.0.1:%d", &port) != 1)
        skip();
    (void)snprintf(url, sizeof(url), "redis_cluster://127.0.0.1:%d", port);
    expect_open_error(url, TRIFLE_ECONFIG, "is not a cluster node");
}

/* ---------------------------------------------------------------------------------------------
 * On the cluster
 */

/* Our slot of a key equals the server's, for bucket hashes, ping hashes and tags. */
static void t_slots_match_server(void **state)
{
    static const char *const keys[] = {
        "foo",
        "bar",
        "123456789",
        "{user1000}.following",
        "foo{}{bar}",
        "{foo",
        "a{b}c{d}",
        "trfl::page_views::1h::1736935200",
        "trfl::page_views::1d::1736899200",
        "trfl::page_views::ping",
        "trfl::__system__key__::1h::1736935200",
        "my:{tenant7}::orders::1mo::1735689600",
        "x::\xc3\xa9t\xc3\xa9::1w::1736726400",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        unsigned want = (unsigned)strtoul(cli(ports[0], "CLUSTER KEYSLOT '%s'", keys[i]), NULL, 10);
        if (rd_key_slot(keys[i], strlen(keys[i])) != want)
            fail_msg("slot of \"%s\": %u, the server says %u", keys[i],
                     rd_key_slot(keys[i], strlen(keys[i])), want);
    }
}

/* Each bucket is a hash on the master of its slot, named and filled as upstream's; get, ping,
 * scan and drop reach every node; a script cache flushed and connections killed on every master
 * cost nothing but a reload and a reconnect. */
static void t_layout(void **state)
{
    trifle_write_result res = {sizeof(res), 0, -1, 0};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_conn *c;
    trifle_leaf leaf = {"a.b", 7};
    trifle_sink *s;
    size_t i, j, used[MAX_NODES] = {0};
    int64_t at = 0;

    (void)state;
    c = open_ok("layout");
    if (drv->setup(c, &err) != 0)
        fail_msg("setup: %s", err.message);
    for (i = 0; i < 3; i++) {
        if (i == 1) /* every master forgets the script: NOSCRIPT, SCRIPT LOAD, the unit again */
            for (j = 0; j < n_ports; j++)
                assert_string_equal(cli(ports[j], "SCRIPT FLUSH"), "OK");
        if (i == 2) /* every master drops our connections: each is replaced before its call */
            for (j = 0; j < n_ports; j++)
                (void)cli(ports[j], "CLIENT KILL TYPE normal SKIPME yes");
        if (inc_all(c, 30, &res, &err) != 0)
            fail_msg("inc %zu: %s", i, err.message);
    }
    for (i = 0; i < 30; i++) {
        const char *h = hash_of("layout", i);
        size_t o = owner_of(rd_key_slot(h, strlen(h)));
        used[o]++;
        assert_string_equal(cli(ports[o], "HGET '%s' count", h), "3");
        assert_true(count_of(c, i) == 3);
    }
    for (i = 0; i < n_ports; i++)
        if (used[i] == 0)
            fail_msg("30 buckets and no key on master %d", ports[i]);
    if (drv->ping(c, "k0", T0, &leaf, 1, &err) != 0)
        fail_msg("ping: %s", err.message);
    s = sink_new(1);
    if (drv->scan(c, "k0", &at, s, &err) != 0)
        fail_msg("scan: %s", err.message);
    assert_true(at == T0);
    assert_true(sink_value(s, 0, "a.b") == 7);
    sink_free(s);
    {
        char ping[160];
        (void)snprintf(ping, sizeof(ping), "%s_layout::k0::ping", run_id);
        assert_string_equal(
            cli(ports[owner_of(rd_key_slot(ping, strlen(ping)))], "HGET '%s' at", ping),
            "2025-01-15T10:00:00Z");
    }
    test_drop_ok(drv, c);
    for (i = 0; i < 30; i++) {
        const char *h = hash_of("layout", i);
        assert_string_equal(cli(ports[owner_of(rd_key_slot(h, strlen(h)))], "EXISTS '%s'", h), "0");
    }
    drv->close(c);
}

/* A call is atomic per bucket: a bucket whose stored value is not a number is refused, and the
 * others of the call are stored; the result says so (applied = the leading stored items,
 * failed_item, and an unknown outcome because an item after the failed one went in). */
static void t_atomic_per_bucket(void **state)
{
    trifle_write_result res = {sizeof(res), 0, -1, 0};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_conn *c;
    const char *h1 = hash_of("atomic", 1);
    int rc;

    (void)state;
    c = open_ok("atomic");
    assert_string_equal(
        cli(ports[owner_of(rd_key_slot(h1, strlen(h1)))], "HSET '%s' count not-a-number", h1), "1");
    rc = inc_all(c, 3, &res, &err);
    assert_int_equal(rc, TRIFLE_EDATA);
    assert_true(strstr(err.message, "not a number") != NULL);
    assert_int_equal(res.applied, 1);
    assert_int_equal(res.failed_item, 1);
    assert_int_equal(res.outcome_unknown, 1);
    assert_true(count_of(c, 0) == 1);
    assert_true(count_of(c, 2) == 1);
    test_drop_ok(drv, c);
    drv->close(c);
}

/* test_oom_steps: open, and a fresh connection before each later step. */
static int oom_open(trifle_conn **c, void *ctx, trifle_error *err)
{
    (void)ctx;
    return try_open(c, cluster_url, "oom", err);
}

static int oom_write(trifle_conn *c, void *ctx, trifle_write_result *res, trifle_error *err)
{
    (void)ctx;
    return inc_all(c, 30, res, err);
}

/* Allocation failures (host->alloc returning NULL at every position in turn) in open, inc, get,
 * ping and scan: each fails with TRIFLE_ENOMEM, nothing sent, until the call succeeds; ASan and
 * valgrind see that nothing leaks. */
static void t_oom(void **state)
{
    trifle_leaf leaf = {"up", 1};
    test_oom_calls calls = {oom_open, oom_write, NULL, 30, "k0", T0, &leaf, NULL};
    trifle_bucket b[30];
    char ids[30][64];
    trifle_conn *c;
    size_t i;

    (void)state;
    for (i = 0; i < 30; i++) { /* the buckets inc_all() writes */
        (void)snprintf(ids[i], sizeof(ids[i]), "k%zu::1h::%lld", i, (long long)T0);
        b[i].id = ids[i];
        b[i].key = "k";
        b[i].granularity = "1h";
        b[i].at = T0;
    }
    calls.buckets = b;
    c = test_oom_steps(drv, &calls);
    /* the 30 incs went in once, whatever failed before */
    for (i = 0; i < 30; i++)
        assert_true(count_of(c, i) == 1);
    test_drop_ok(drv, c);
    drv->close(c);
}

/* Move slot s from master src to dst under load, the way redis-cli --cluster reshard does, but
 * slowly enough for writers to meet every state: MIGRATING/IMPORTING (keys still on src: served
 * there; keys already moved: ASK), then SETSLOT NODE everywhere (MOVED). When probe is not NULL,
 * check (with connection `asker`, whose slot map says src) that a moved key of the slot is
 * reached through ASK. */
static void migrate_slot(unsigned s, size_t src, size_t dst, trifle_conn *asker, size_t probe)
{
    char slot[16], keys[8192], *k, *save = NULL;
    size_t i, moved = 0;

    (void)snprintf(slot, sizeof(slot), "%u", s);
    cli_ok(ports[dst], "CLUSTER SETSLOT %s IMPORTING %s", slot, node_id(ports[src]));
    cli_ok(ports[src], "CLUSTER SETSLOT %s MIGRATING %s", slot, node_id(ports[dst]));
    sleep_ms(60);
    (void)snprintf(keys, sizeof(keys), "%s",
                   cli(ports[src], "CLUSTER GETKEYSINSLOT %s 1000", slot));
    for (k = strtok_r(keys, "\n", &save); k != NULL; k = strtok_r(NULL, "\n", &save)) {
        char port[16];
        (void)snprintf(port, sizeof(port), "%d", ports[dst]);
        if (strcmp(cli(ports[src], "MIGRATE 127.0.0.1 %s '' 0 5000 KEYS '%s'", port, k), "OK") != 0)
            fail_msg("MIGRATE %s failed", k);
        moved++;
        sleep_ms(25);
    }
    if (asker != NULL) {
        /* the key is gone from src, which answers ASK while the slot is migrating */
        const char *h = hash_of("reshard", probe);
        const char *r = cli(ports[src], "EXISTS '%s'", h);
        if (strstr(r, "ASK") == NULL)
            fail_msg("EXISTS %s on the migrating node: %s, want an ASK redirect", h, r);
        assert_true(count_of(asker, probe) >= 1);
    }
    sleep_ms(60);
    cli_ok(ports[dst], "CLUSTER SETSLOT %s NODE %s", slot, node_id(ports[dst]));
    cli_ok(ports[src], "CLUSTER SETSLOT %s NODE %s", slot, node_id(ports[dst]));
    for (i = 0; i < n_ports; i++)
        if (i != src && i != dst)
            cli_ok(ports[i], "CLUSTER SETSLOT %s NODE %s", slot, node_id(ports[dst]));
    assert_true(moved > 0);
}

#define RS_KEYS 24

static pid_t writer_pid; /* the running writer, ended by reshard_teardown if the test fails */

/* After a failure the writer may still run and a slot may be left half-moved: end the one and
 * let redis-cli close the other (a no-op when the cluster is in order). */
static int reshard_teardown(void **state)
{
    char cmd[128];

    (void)state;
    if (writer_pid > 0) {
        (void)kill(writer_pid, SIGKILL);
        (void)waitpid(writer_pid, NULL, 0);
        writer_pid = 0;
    }
    if (cluster_url != NULL) {
        (void)snprintf(cmd, sizeof(cmd),
                       "redis-cli --cluster fix 127.0.0.1:%d --cluster-yes >/dev/null 2>&1",
                       ports[0]);
        // NOLINTNEXTLINE(cert-env33-c): redis-cli against the test's own loopback servers
        if (system(cmd) != 0)
            (void)fprintf(stderr, "warning: %s failed\n", cmd);
    }
    return 0;
}

/* The forked writer: increments k0..k23 by one per call until its control pipe closes, then
 * reports the number of calls. Any failed call ends it with status 2. */
static void reshard_writer(int ctl, int out)
{
    trifle_write_result res = {sizeof(res), 0, -1, 0};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_conn *c;
    long rounds = 0;
    struct pollfd p = {ctl, POLLIN, 0};

    if (try_open(&c, cluster_url, "reshard", &err) != 0) {
        (void)fprintf(stderr, "writer: open: %s\n", err.message);
        _exit(2);
    }
    while (poll(&p, 1, 0) == 0) {
        if (inc_all(c, RS_KEYS, &res, &err) != 0) {
            (void)fprintf(stderr, "writer: inc %ld: %s\n", rounds, err.message);
            _exit(2);
        }
        rounds++;
    }
    drv->close(c);
    if (write(out, &rounds, sizeof(rounds)) != (ssize_t)sizeof(rounds))
        _exit(3);
    _exit(0);
}

/* Slots move from one master to the next and back while a forked writer increments 24 buckets
 * spread over all masters; every total then equals the writer's number of calls. */
static void t_reshard(void **state)
{
    trifle_conn *c, *stale;
    int ctl[2], out[2], status;
    unsigned slots[RS_KEYS];
    size_t i, j, n_slots = 0, src, dst, probe = 0;
    long rounds = 0;
    pid_t pid;
    struct timespec t0, t1;

    (void)state;
    /* the slots of the buckets on the first key's master */
    src = owner_of(rd_key_slot(hash_of("reshard", 0), strlen(hash_of("reshard", 0))));
    dst = (src + 1) % n_ports;
    for (i = 0; i < RS_KEYS; i++) {
        const char *h = hash_of("reshard", i);
        unsigned s = rd_key_slot(h, strlen(h));
        if (owner_of(s) != src)
            continue;
        for (j = 0; j < n_slots && slots[j] != s; j++)
            ;
        if (j == n_slots) {
            if (n_slots == 0)
                probe = i;
            slots[n_slots++] = s;
        }
    }
    assert_true(n_slots > 0);
    assert_int_equal(pipe(ctl), 0);
    assert_int_equal(pipe(out), 0);
    (void)clock_gettime(CLOCK_MONOTONIC, &t0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ctl[1]);
        close(out[0]);
        reshard_writer(ctl[0], out[1]);
    }
    writer_pid = pid;
    close(ctl[0]);
    close(out[1]);
    /* opened after the fork, so that the writer inherits no connection */
    c = open_ok("reshard");
    stale = open_ok("reshard"); /* keeps its slot map from before the move: meets MOVED */
    sleep_ms(200);
    assert_true(count_of(c, probe) >= 1); /* c learns the map now: src serves the probe */
    assert_true(count_of(stale, probe) >= 1);
    for (j = 0; j < n_slots; j++)
        migrate_slot(slots[j], src, dst, j == 0 ? c : NULL, probe);
    /* stale still routes the slots to src, which now answers MOVED */
    assert_true(count_of(stale, probe) >= 1);
    for (j = 0; j < n_slots; j++)
        assert_int_equal(owner_of(slots[j]), dst);
    sleep_ms(200);
    for (j = 0; j < n_slots; j++) /* and back, still under load */
        // NOLINTNEXTLINE(readability-suspicious-call-argument): moved back from dst to src
        migrate_slot(slots[j], dst, src, NULL, probe);
    sleep_ms(200);
    close(ctl[1]); /* stop */
    assert_int_equal(read(out[0], &rounds, sizeof(rounds)), (ssize_t)sizeof(rounds));
    close(out[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    writer_pid = 0;
    (void)clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the writer failed (status %d)", status);
    for (j = 0; j < n_slots; j++)
        assert_int_equal(owner_of(slots[j]), src);
    for (i = 0; i < RS_KEYS; i++) {
        double v = count_of(c, i);
        if (v != (double)rounds)
            fail_msg("k%zu: count %.17g after %ld calls", i, v, rounds);
    }
    printf("# reshard: %zu slots moved twice in %.1f s; %ld calls x %d buckets, totals exact\n",
           n_slots, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
           rounds, RS_KEYS);
    assert_true(rounds > 10);
    test_drop_ok(drv, c);
    drv->close(stale);
    drv->close(c);
}

/* The ports of the URL's seeds: redis_cluster://127.0.0.1:p1,127.0.0.1:p2,... */
static int parse_ports(const char *url)
{
    const char *p = strstr(url, "://");

    if (p == NULL)
        return -1;
    for (p += 3; n_ports < MAX_NODES && *p != '\0' && *p != '/' && *p != '?';) {
        const char *colon = strchr(p, ':');
        if (colon == NULL)
            return -1;
        ports[n_ports++] = (int)strtol(colon + 1, NULL, 10);
        p = colon + 1 + strcspn(colon + 1, ",/?");
        if (*p == ',')
            p++;
    }
    return n_ports >= 2 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest offline[] = {
        cmocka_unit_test(t_crc16),
        cmocka_unit_test(t_url_errors),
        cmocka_unit_test(t_not_a_cluster),
    };
    const struct CMUnitTest server[] = {
        cmocka_unit_test(t_slots_match_server),
        cmocka_unit_test(t_layout),
        cmocka_unit_test(t_atomic_per_bucket),
        cmocka_unit_test(t_oom),
        cmocka_unit_test_teardown(t_reshard, reshard_teardown),
    };
    int status;

    test_host_driver = "redis_cluster";
    (void)snprintf(run_id, sizeof(run_id), "utc%d", (int)getpid());
    drv = test_host_load(TRIFLE_BUILD_PLUGIN_DIR "/trifle_redis_cluster.so", "redis_cluster", NULL);
    if (drv == NULL)
        return 1;
    cluster_url = test_server_url("TRIFLE_TEST_URI_REDIS_CLUSTER", "cluster tests", &status);
    if (cluster_url != NULL && parse_ports(cluster_url) != 0) {
        (void)fprintf(stderr,
                      "TRIFLE_TEST_URI_REDIS_CLUSTER: expected redis_cluster://host:port,...\n");
        return 1;
    }
    return test_run_groups("redis_cluster driver", offline, sizeof(offline) / sizeof(offline[0]),
                           server, sizeof(server) / sizeof(server[0]), cluster_url, status);
}
