/* The write-ahead journal (core/buffer/journal.c) on real files: CRC-32C known answers,
 * append/replay across rotated segments, sequence floors, release, the directory lock, damage
 * handling (torn tail, flipped CRC, damaged header, a newer format), a full disk through
 * RLIMIT_FSIZE in a forked child (and a tiny tmpfs when mounting is allowed), group commit under
 * ALWAYS and the INTERVAL thread. TRIFLE_TEST_LIGHT=1 (valgrind) makes the threaded loops
 * shorter. */
#include "journal_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "oom_alloc.h"
#include "server_helpers.h"
#include "unit_helpers.h"
#include "vectors.h"
#include "trifle/common.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers */

static char tmp_root[256];
static char jdir[300];

/* Captured warnings (the interval thread may log too). */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_lines[16][512];
static int n_log;

static void log_handler(int level, const char *origin, const char *message, void *payload)
{
    (void)payload;
    (void)origin;
    if (level > TRIFLE_LOG_WARN)
        return;
    pthread_mutex_lock(&log_lock);
    if (n_log < 16)
        (void)snprintf(log_lines[n_log], sizeof(log_lines[n_log]), "%s", message);
    n_log++;
    pthread_mutex_unlock(&log_lock);
}

static int setup(void **state)
{
    (void)state;
    if (test_mkdtemp(tmp_root, sizeof(tmp_root), "journal") != 0)
        return -1;
    (void)snprintf(jdir, sizeof(jdir), "%s/j", tmp_root);
    n_log = 0;
    trifle_set_log_handler(TRIFLE_LOG_WARN, log_handler, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    (void)umount2(tmp_root, MNT_DETACH); /* test_full_disk_tmpfs, if it failed half-way */
    trifle_set_log_handler(TRIFLE_LOG_ERROR, NULL, NULL);
    test_rm_rf(tmp_root);
    return 0;
}

static trifle__journal *open_j(int sync, int64_t interval_ms, int64_t segment_bytes)
{
    trifle__journal_options o = {jdir, sync, interval_ms, segment_bytes};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle__journal *j = NULL;

    if (trifle__journal_open(&j, &o, &err) != 0)
        fail_msg("open %s: %s", jdir, err.message);
    return j;
}

/* The body of record seq in these tests: seq % 97 bytes derived from seq. */
static size_t body_for(uint64_t seq, unsigned char *buf)
{
    size_t n = (size_t)(seq % 97), i;
    for (i = 0; i < n; i++)
        buf[i] = (unsigned char)(seq * 31 + i * 7);
    return n;
}

static uint64_t append_ok(trifle__journal *j, uint64_t content_seq)
{
    unsigned char body[128];
    size_t n = body_for(content_seq, body);
    trifle_error err = TRIFLE_ERROR_INIT;
    uint64_t seq = 0;

    if (trifle__journal_append(j, TRIFLE__JREC_OP, body, n, &seq, &err) != 0)
        fail_msg("append: %s", err.message);
    return seq;
}

typedef struct got {
    uint64_t *seqs;
    size_t n, cap;
    int bad_body; /* a body differed from body_for(seq) */
    uint64_t stop_at;
} got;

static int collect(void *ctx, uint64_t seq, int type, const unsigned char *body, size_t len)
{
    got *g = ctx;
    unsigned char want[128];
    size_t n = body_for(seq, want);

    if (g->n == g->cap) {
        g->cap = g->cap == 0 ? 256 : 2 * g->cap;
        g->seqs = realloc(g->seqs, g->cap * sizeof(*g->seqs));
        assert_non_null(g->seqs);
    }
    g->seqs[g->n++] = seq;
    if (type != TRIFLE__JREC_OP || len != n || (n > 0 && memcmp(body, want, n) != 0))
        g->bad_body = 1;
    return g->stop_at != 0 && seq == g->stop_at ? 7 : 0;
}

static void replay_ok(trifle__journal *j, got *g)
{
    trifle_error err = TRIFLE_ERROR_INIT;

    memset(g, 0, sizeof(*g));
    if (trifle__journal_replay(j, collect, g, &err) != 0)
        fail_msg("replay: %s", err.message);
    assert_false(g->bad_body);
}

/* A journal opened as open_j() does and replayed, whatever it held. */
static trifle__journal *open_replayed(int sync, int64_t interval_ms, int64_t segment_bytes)
{
    trifle__journal *j = open_j(sync, interval_ms, segment_bytes);
    got g;

    replay_ok(j, &g);
    free(g.seqs);
    return j;
}

/* The records seen are exactly lo..hi, in order. */
static void expect_range(const got *g, size_t at, uint64_t lo, uint64_t hi)
{
    uint64_t s;

    for (s = lo; s <= hi; s++, at++) {
        assert_true(at < g->n);
        assert_int_equal(g->seqs[at], s);
    }
}

/* Sorted segment numbers in jdir. */
static size_t list_segs(uint64_t *out, size_t max)
{
    DIR *d = opendir(jdir);
    struct dirent *e;
    size_t n = 0, i, k;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        unsigned long long v;
        char tail[8];
        if (strlen(e->d_name) == 23 && sscanf(e->d_name, "seg-%16llx%3s", &v, tail) == 2 &&
            strcmp(tail, ".tj") == 0) {
            assert_true(n < max);
            out[n++] = (uint64_t)v;
        }
    }
    closedir(d);
    for (i = 1; i < n; i++)
        for (k = i; k > 0 && out[k - 1] > out[k]; k--) {
            uint64_t t = out[k];
            out[k] = out[k - 1];
            out[k - 1] = t;
        }
    return n;
}

static void seg_path(char *buf, size_t n, uint64_t first, const char *suffix)
{
    (void)snprintf(buf, n, "%s/seg-%016" PRIx64 ".tj%s", jdir, first, suffix);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Rewrite the format version in the header of segment @p seg, with a valid header CRC. */
static void set_version(const char *seg, unsigned char version)
{
    unsigned char h[64];
    uint32_t crc;
    int fd = open(seg, O_RDWR);

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, h, 64, 0), 64);
    h[8] = version;
    crc = trifle__crc32c(0, h, 56);
    h[56] = (unsigned char)crc;
    h[57] = (unsigned char)(crc >> 8);
    h[58] = (unsigned char)(crc >> 16);
    h[59] = (unsigned char)(crc >> 24);
    assert_int_equal(pwrite(fd, h, 64, 0), 64);
    close(fd);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    unsigned char *buf = (unsigned char *)test_read_file(path, len);

    assert_non_null(buf);
    return buf;
}

static void patch_byte(const char *path, off_t at, unsigned char xor_with)
{
    int fd = open(path, O_RDWR);
    unsigned char c;

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= xor_with;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

/* Byte offset of record seq in segment `first` (records of the tests' bodies). */
static off_t record_offset(uint64_t first, uint64_t seq)
{
    unsigned char tmp[128];
    off_t off = 64;
    uint64_t s;

    for (s = first; s < seq; s++)
        off += 20 + (off_t)body_for(s, tmp);
    return off;
}

/* Fill a journal: n records (content = seq) in 4 KiB segments, closed. */
static void fill(uint64_t n)
{
    trifle__journal *j = open_replayed(TRIFLE__JSYNC_NONE, 0, 4096);
    uint64_t i;

    for (i = 1; i <= n; i++)
        assert_int_equal(append_ok(j, i), i);
    trifle__journal_close(j);
}

/* ---------------------------------------------------------------------------------------------
 * CRC-32C */

static void test_crc32c(void **state)
{
    static const struct {
        const char *what;
        unsigned char fill; /* 0, 0xff, or 1 for ascending / 2 for descending */
        uint32_t crc;
    } rfc3720[] = {{"zeros", 0, 0x8A9136AAu},
                   {"ones", 0xff, 0x62A8AB43u},
                   {"ascending", 1, 0x46DD794Eu},
                   {"descending", 2, 0x113FDB5Cu}};
    unsigned char buf[32], big[1031];
    size_t i, k, split;
    uint32_t whole;

    (void)state;
    assert_int_equal(trifle__crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(trifle__crc32c_portable(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(trifle__crc32c(0, "", 0), 0);
    assert_int_equal(trifle__crc32c(0, "a", 1), 0xC1D04330u);
    for (i = 0; i < sizeof(rfc3720) / sizeof(rfc3720[0]); i++) {
        for (k = 0; k < 32; k++)
            buf[k] = rfc3720[i].fill == 1   ? (unsigned char)k
                     : rfc3720[i].fill == 2 ? (unsigned char)(31 - k)
                                            : rfc3720[i].fill;
        if (trifle__crc32c(0, buf, 32) != rfc3720[i].crc ||
            trifle__crc32c_portable(0, buf, 32) != rfc3720[i].crc)
            fail_msg("RFC 3720 vector %s", rfc3720[i].what);
    }
    /* every length and alignment, both implementations, and chaining */
    for (i = 0; i < sizeof(big); i++)
        big[i] = (unsigned char)(i * 131 + 17);
    for (i = 0; i < 64; i++)
        for (k = 0; k + i < sizeof(big); k += 97) {
            whole = trifle__crc32c_portable(0, big + i, k);
            assert_int_equal(trifle__crc32c(0, big + i, k), whole);
            split = k / 3;
            assert_int_equal(
                trifle__crc32c(trifle__crc32c(0, big + i, split), big + i + split, k - split),
                whole);
        }
}

/* ---------------------------------------------------------------------------------------------
 * Append, replay, release */

static void test_round_trip(void **state)
{
    const uint64_t n = 2000;
    uint64_t segs[256];
    trifle__journal *j;
    trifle__journal_stats st;
    char name[33];
    size_t nsegs, i;
    got g;

    (void)state;
    j = open_j(TRIFLE__JSYNC_NONE, 0, 4096);
    assert_int_equal(strlen(trifle__journal_name(j)), 32);
    assert_int_equal(strspn(trifle__journal_name(j), "0123456789abcdef"), 32);
    assert_string_equal(trifle__journal_dir(j), jdir);
    (void)snprintf(name, sizeof(name), "%s", trifle__journal_name(j));
    replay_ok(j, &g);
    assert_int_equal(g.n, 0);
    free(g.seqs);
    assert_int_equal(trifle__journal_last_seq(j), 0);
    for (i = 1; i <= n; i++)
        assert_int_equal(append_ok(j, i), i);
    assert_int_equal(trifle__journal_last_seq(j), n);
    trifle__journal_get_stats(j, &st);
    assert_int_equal(st.records, n);
    assert_true(st.segments_created > 10);
    trifle__journal_close(j);

    nsegs = list_segs(segs, 256);
    assert_int_equal(nsegs, st.segments_created);
    assert_int_equal(segs[0], 1);
    for (i = 0; i < nsegs; i++) { /* no segment above the limit (one record is below it) */
        char p[512];
        seg_path(p, sizeof(p), segs[i], "");
        assert_true(file_size(p) <= 4096);
    }

    /* reopen: same name, everything back in order, appends go on in a new segment */
    j = open_j(TRIFLE__JSYNC_NONE, 0, 4096);
    assert_string_equal(trifle__journal_name(j), name);
    replay_ok(j, &g);
    assert_int_equal(g.n, n);
    expect_range(&g, 0, 1, n);
    free(g.seqs);
    assert_int_equal(trifle__journal_last_seq(j), n);
    assert_int_equal(append_ok(j, n + 1), n + 1);
    assert_int_equal(list_segs(segs, 256), nsegs + 1);
    assert_int_equal(segs[nsegs], n + 1);

    /* a floor below the last record changes nothing; a floor above it moves to a new segment */
    trifle__journal_seq_floor(j, 5);
    assert_int_equal(append_ok(j, n + 2), n + 2);
    trifle__journal_seq_floor(j, 5000);
    assert_int_equal(append_ok(j, 5001), 5001);
    assert_int_equal(append_ok(j, 5002), 5002);
    trifle__journal_close(j);

    j = open_j(TRIFLE__JSYNC_NONE, 0, 4096);
    g.stop_at = 0;
    replay_ok(j, &g);
    assert_int_equal(g.n, n + 4);
    expect_range(&g, 0, 1, n + 2);
    expect_range(&g, n + 2, 5001, 5002);
    free(g.seqs);

    /* a floor set after replay and before the first append */
    trifle__journal_seq_floor(j, 9000);
    assert_int_equal(trifle__journal_last_seq(j), 9000);
    assert_int_equal(append_ok(j, 9001), 9001);
    trifle__journal_close(j);

    /* the callback can stop the replay, and appends wait for a finished replay */
    {
        trifle_error err = TRIFLE_ERROR_INIT;
        uint64_t seq;
        j = open_j(TRIFLE__JSYNC_NONE, 0, 4096);
        memset(&g, 0, sizeof(g));
        g.stop_at = 10;
        assert_int_equal(trifle__journal_replay(j, collect, &g, &err), 7);
        assert_int_equal(g.n, 10);
        free(g.seqs);
        assert_int_equal(trifle__journal_append(j, TRIFLE__JREC_OP, "x", 1, &seq, &err),
                         TRIFLE_EINVAL);
        replay_ok(j, &g);
        assert_int_equal(g.n, n + 5);
        free(g.seqs);
        assert_int_equal(trifle__journal_append(j, 0, "x", 1, &seq, &err), TRIFLE_EINVAL);
        assert_int_equal(trifle__journal_append(j, 70000, "x", 1, &seq, &err), TRIFLE_EINVAL);
        assert_int_equal(
            trifle__journal_append(j, TRIFLE__JREC_OP, NULL, (size_t)17 << 20, &seq, &err),
            TRIFLE_EINVAL);
        assert_non_null(strstr(err.message, "over the limit"));
        /* an empty body is a record too */
        assert_int_equal(trifle__journal_append(j, TRIFLE__JREC_CHECKPOINT, NULL, 0, &seq, &err),
                         0);
        assert_int_equal(seq, 9002);
        trifle__journal_close(j);
    }
    assert_int_equal(n_log, 0);
}

static void test_release(void **state)
{
    uint64_t segs[64], after[64], upto;
    trifle__journal *j;
    trifle__journal_stats st;
    size_t nsegs, n2, i;
    got g;

    (void)state;
    j = open_replayed(TRIFLE__JSYNC_INTERVAL, 50, 4096);
    for (i = 1; i <= 500; i++)
        append_ok(j, i);
    nsegs = list_segs(segs, 64);
    assert_true(nsegs >= 6);

    /* upto in the middle of the 4th segment: exactly the first three go */
    upto = segs[3] + 2;
    trifle__journal_release(j, upto);
    n2 = list_segs(after, 64);
    assert_int_equal(n2, nsegs - 3);
    for (i = 0; i < n2; i++)
        assert_int_equal(after[i], segs[i + 3]);
    trifle__journal_get_stats(j, &st);
    assert_int_equal(st.segments_deleted, 3);

    /* upto on the last record of a segment deletes it */
    trifle__journal_release(j, segs[5] - 1);
    assert_int_equal(list_segs(after, 64), nsegs - 5);
    assert_int_equal(after[0], segs[5]);

    /* everything stored: all but the current segment go */
    trifle__journal_release(j, UINT64_MAX);
    assert_int_equal(list_segs(after, 64), 1);
    assert_int_equal(after[0], segs[nsegs - 1]);
    assert_int_equal(append_ok(j, 501), 501);
    trifle__journal_close(j);

    /* a replayed journal: no segment is current before the first append, all can go */
    j = open_j(TRIFLE__JSYNC_NONE, 0, 4096);
    replay_ok(j, &g);
    assert_int_equal(g.seqs[0], segs[nsegs - 1]);
    assert_int_equal(g.seqs[g.n - 1], 501);
    free(g.seqs);
    trifle__journal_release(j, 500);
    assert_int_equal(list_segs(after, 64), 1);
    trifle__journal_release(j, 501);
    assert_int_equal(list_segs(after, 64), 0);
    assert_int_equal(append_ok(j, 502), 502);
    trifle__journal_close(j);
    j = open_j(TRIFLE__JSYNC_NONE, 0, 4096);
    replay_ok(j, &g);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.seqs[0], 502);
    free(g.seqs);
    trifle__journal_close(j);
}

static void test_lock(void **state)
{
    trifle__journal_options o = {jdir, TRIFLE__JSYNC_NONE, 0, 4096};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle__journal *a, *b = NULL;
    char want[400];

    (void)state;
    a = open_j(TRIFLE__JSYNC_NONE, 0, 4096);
    assert_int_equal(trifle__journal_open(&b, &o, &err), TRIFLE_EBUSY);
    assert_null(b);
    (void)snprintf(want, sizeof(want), "journal %s is in use by another process", jdir);
    assert_string_equal(err.message, want);
    trifle__journal_close(a);
    assert_int_equal(trifle__journal_open(&b, &o, &err), 0);
    trifle__journal_close(b);

    /* bad options */
    o.segment_bytes = 100;
    assert_int_equal(trifle__journal_open(&b, &o, &err), TRIFLE_EINVAL);
    o.segment_bytes = 4096;
    o.sync = TRIFLE__JSYNC_INTERVAL;
    o.interval_ms = 0;
    assert_int_equal(trifle__journal_open(&b, &o, &err), TRIFLE_EINVAL);
    o.dir = "/proc/trifle-no-such/j";
    o.sync = TRIFLE__JSYNC_NONE;
    assert_int_equal(trifle__journal_open(&b, &o, &err), TRIFLE_EIO);
    assert_non_null(strstr(err.message, "/proc/trifle-no-such/j"));
    trifle__journal_close(NULL);
}

static void test_name_file(void **state)
{
    char path[512], name[33];
    trifle__journal_options o = {jdir, TRIFLE__JSYNC_NONE, 0, 4096};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle__journal *j = NULL;
    got g;
    FILE *f;

    (void)state;
    fill(100);
    j = open_j(TRIFLE__JSYNC_NONE, 0, 4096);
    (void)snprintf(name, sizeof(name), "%s", trifle__journal_name(j));
    trifle__journal_close(j);

    /* lost: the name comes back from the segments, so the store's marks still match */
    (void)snprintf(path, sizeof(path), "%s/journal.id", jdir);
    assert_int_equal(unlink(path), 0);
    j = open_j(TRIFLE__JSYNC_NONE, 0, 4096);
    assert_string_equal(trifle__journal_name(j), name);
    replay_ok(j, &g);
    assert_int_equal(g.n, 100);
    free(g.seqs);
    trifle__journal_close(j);

    /* damaged: refused, never replaced */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a name\n", f);
    fclose(f);
    j = NULL;
    assert_int_equal(trifle__journal_open(&j, &o, &err), TRIFLE_EIO);
    assert_null(j);
    assert_non_null(strstr(err.message, path));
}

/* ---------------------------------------------------------------------------------------------
 * Damage */

static void test_torn_tail(void **state)
{
    uint64_t segs[64];
    char seg[512], corrupt[512];
    size_t nsegs, clen;
    off_t size, last_off;
    trifle__journal *j;
    trifle__journal_stats st;
    unsigned char *cbytes;
    char want[64];
    got g;

    (void)state;
    fill(300);
    nsegs = list_segs(segs, 64);
    seg_path(seg, sizeof(seg), segs[nsegs - 1], "");
    seg_path(corrupt, sizeof(corrupt), segs[nsegs - 1], ".corrupt");
    size = file_size(seg);
    last_off = record_offset(segs[nsegs - 1], 300);
    assert_int_equal(size, last_off + 20 + 300 % 97);
    assert_int_equal(truncate(seg, size - 10), 0); /* cut the last record in the middle */

    j = open_j(TRIFLE__JSYNC_NONE, 0, 4096);
    replay_ok(j, &g);
    assert_int_equal(g.n, 299);
    expect_range(&g, 0, 1, 299);
    free(g.seqs);
    assert_int_equal(trifle__journal_last_seq(j), 299);
    assert_int_equal(file_size(seg), last_off);
    cbytes = slurp(corrupt, &clen);
    assert_int_equal(clen, (size_t)(size - 10 - last_off));
    assert_int_equal(cbytes[0], 300 % 97); /* the torn record's length field */
    free(cbytes);
    trifle__journal_get_stats(j, &st);
    assert_int_equal(st.corrupt_files, 1);
    assert_int_equal(n_log, 1);
    assert_non_null(strstr(log_lines[0], seg));
    assert_non_null(strstr(log_lines[0], "torn record"));
    (void)snprintf(want, sizeof(want), "at byte %lld;", (long long)last_off);
    assert_non_null(strstr(log_lines[0], want));
    assert_non_null(strstr(log_lines[0], corrupt));

    /* appends go on, in a new segment, with the torn record's number */
    assert_int_equal(append_ok(j, 300), 300);
    trifle__journal_close(j);
    assert_int_equal(list_segs(segs, 64), nsegs + 1);
    assert_int_equal(segs[nsegs], 300);

    j = open_j(TRIFLE__JSYNC_NONE, 0, 4096);
    replay_ok(j, &g);
    assert_int_equal(g.n, 300);
    expect_range(&g, 0, 1, 300);
    free(g.seqs);
    trifle__journal_close(j);
    assert_int_equal(n_log, 1); /* nothing new to complain about */
}

static void test_crc_middle(void **state)
{
    uint64_t segs[64], mid, bad;
    char seg[512], corrupt[512];
    off_t size, off;
    trifle__journal *j;
    size_t nsegs, clen;
    unsigned char *cbytes;
    got g;

    (void)state;
    fill(400);
    nsegs = list_segs(segs, 64);
    assert_true(nsegs >= 4);
    mid = segs[1];
    bad = mid + (segs[2] - mid) / 2;
    seg_path(seg, sizeof(seg), mid, "");
    seg_path(corrupt, sizeof(corrupt), mid, ".corrupt");
    size = file_size(seg);
    off = record_offset(mid, bad);
    patch_byte(seg, off + 4, 0x01); /* the stored CRC */

    j = open_j(TRIFLE__JSYNC_NONE, 0, 4096);
    replay_ok(j, &g);
    /* everything before the flipped record, nothing after it in that segment, all later ones */
    expect_range(&g, 0, 1, bad - 1);
    expect_range(&g, bad - 1, segs[2], 400);
    assert_int_equal(g.n, (bad - 1) + (400 - segs[2] + 1));
    free(g.seqs);
    assert_int_equal(file_size(seg), off);
    cbytes = slurp(corrupt, &clen);
    assert_int_equal(clen, (size_t)(size - off));
    free(cbytes);
    assert_int_equal(n_log, 1);
    assert_non_null(strstr(log_lines[0], "CRC mismatch"));
    assert_non_null(strstr(log_lines[0], seg));
    assert_int_equal(append_ok(j, 401), 401);
    trifle__journal_close(j);

    /* a flipped body byte and a changed sequence number are caught the same way */
    n_log = 0;
    patch_byte(seg, record_offset(mid, mid + 1) + 20, 0x80);
    seg_path(seg, sizeof(seg), segs[2], "");
    {
        /* rewrite the record's seq and fix its CRC: only the sequence check can see it */
        unsigned char rec[20 + 128];
        off_t roff = record_offset(segs[2], segs[2] + 3);
        size_t len = body_for(segs[2] + 3, rec + 20);
        uint32_t crc;
        int fd = open(seg, O_RDWR);
        assert_true(fd >= 0);
        assert_int_equal(pread(fd, rec, 20 + len, roff), (ssize_t)(20 + len));
        rec[8] ^= 0x40;
        crc = trifle__crc32c(trifle__crc32c(0, rec, 4), rec + 8, 12 + len);
        rec[4] = (unsigned char)crc;
        rec[5] = (unsigned char)(crc >> 8);
        rec[6] = (unsigned char)(crc >> 16);
        rec[7] = (unsigned char)(crc >> 24);
        assert_int_equal(pwrite(fd, rec, 20 + len, roff), (ssize_t)(20 + len));
        close(fd);
    }
    j = open_j(TRIFLE__JSYNC_NONE, 0, 4096);
    replay_ok(j, &g);
    expect_range(&g, 0, 1, mid);
    expect_range(&g, mid, segs[2], segs[2] + 2);
    assert_int_equal(g.seqs[g.n - 1], 401);
    free(g.seqs);
    assert_int_equal(n_log, 2);
    assert_non_null(strstr(log_lines[0], "CRC mismatch"));
    assert_non_null(strstr(log_lines[1], "where"));
    trifle__journal_close(j);
    seg_path(corrupt, sizeof(corrupt), segs[2], ".corrupt");
    assert_true(file_size(corrupt) > 0);
    seg_path(corrupt, sizeof(corrupt), mid, ".corrupt.1"); /* .corrupt was taken */
    assert_true(file_size(corrupt) > 0);
}

static void test_damaged_header(void **state)
{
    uint64_t segs[64];
    char seg[512], corrupt[512];
    off_t size;
    trifle__journal *j;
    trifle_error err = TRIFLE_ERROR_INIT;
    size_t nsegs;
    got g;

    (void)state;
    fill(300);
    nsegs = list_segs(segs, 64);
    assert_true(nsegs >= 4);
    seg_path(seg, sizeof(seg), segs[1], "");
    seg_path(corrupt, sizeof(corrupt), segs[1], ".corrupt");
    size = file_size(seg);
    patch_byte(seg, 2, 0xff); /* magic */

    j = open_j(TRIFLE__JSYNC_NONE, 0, 4096);
    replay_ok(j, &g);
    expect_range(&g, 0, 1, segs[1] - 1);
    expect_range(&g, segs[1] - 1, segs[2], 300);
    free(g.seqs);
    assert_int_equal(file_size(seg), -1); /* the whole segment moved */
    assert_int_equal(file_size(corrupt), size);
    assert_int_equal(n_log, 1);
    assert_non_null(strstr(log_lines[0], "bad magic"));
    assert_non_null(strstr(log_lines[0], "at byte 0;"));
    trifle__journal_close(j);

    /* a header of a newer format (valid CRC) is not damage: replay refuses, moves nothing */
    {
        seg_path(seg, sizeof(seg), segs[2], "");
        set_version(seg, 3);
        size = file_size(seg);
        j = open_j(TRIFLE__JSYNC_NONE, 0, 4096);
        memset(&g, 0, sizeof(g));
        assert_int_equal(trifle__journal_replay(j, collect, &g, &err), TRIFLE_EIO);
        free(g.seqs);
        assert_non_null(strstr(err.message, "format version 3"));
        assert_non_null(strstr(err.message, seg));
        assert_int_equal(file_size(seg), size);
        trifle__journal_close(j);
    }

    /* a torn header and an empty file (a crash while creating a segment) */
    assert_int_equal(truncate(seg, 30), 0);
    seg_path(seg, sizeof(seg), 100000, "");
    fclose(fopen(seg, "w"));
    n_log = 0;
    j = open_replayed(TRIFLE__JSYNC_NONE, 0, 4096);
    assert_int_equal(file_size(seg), -1); /* empty: just removed */
    assert_int_equal(n_log, 1);
    assert_non_null(strstr(log_lines[0], "torn segment header"));
    trifle__journal_close(j);
}

/* In a child with RLIMIT_FSIZE at 1 byte: the damaged tail cannot be copied out, so it stays in
 * place, the warning says so, and replay delivers the good records all the same. */
static int unmovable_child(uint64_t bad, const char *seg, off_t size)
{
    trifle__journal_options o = {jdir, TRIFLE__JSYNC_NONE, 0, 4096};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle__journal *j = NULL;
    struct rlimit rl;
    char corrupt[600];
    got g;

    memset(&g, 0, sizeof(g));
    if (getrlimit(RLIMIT_FSIZE, &rl) != 0)
        return 10;
    rl.rlim_cur = 1;
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
        return 11;
    if (trifle__journal_open(&j, &o, &err) != 0)
        return 12;
    if (trifle__journal_replay(j, collect, &g, &err) != 0)
        return 13;
    if (g.n != 200 - 1 || g.seqs[bad - 2] != bad - 1 || g.seqs[bad - 1] != bad + 1 || g.bad_body)
        return 14; /* everything but the damaged record: it was the last of its segment */
    if (n_log != 1 || strstr(log_lines[0], "left in place") == NULL ||
        strstr(log_lines[0], "File too large") == NULL)
        return 15;
    (void)snprintf(corrupt, sizeof(corrupt), "%s.corrupt", seg);
    if (file_size(seg) != size || file_size(corrupt) != -1)
        return 16;
    trifle__journal_close(j);
    free(g.seqs);
    return 0;
}

/* Segments are written as format version 2; a version 1 segment (written before record type 5
 * existed) still replays, and 0 is no version at all. */
static void test_format_versions(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle__journal *j;
    uint64_t segs[8];
    char seg[512];
    unsigned char *image;
    size_t len;
    got g;

    (void)state;
    j = open_replayed(TRIFLE__JSYNC_NONE, 0, 1 << 20);
    append_ok(j, 1);
    append_ok(j, 2);
    trifle__journal_close(j);
    assert_int_equal(list_segs(segs, 8), 1);
    seg_path(seg, sizeof(seg), segs[0], "");
    image = slurp(seg, &len);
    assert_int_equal(image[8], 2); /* written as version 2 */
    free(image);
    set_version(seg, 1);
    j = open_j(TRIFLE__JSYNC_NONE, 0, 1 << 20);
    replay_ok(j, &g);
    assert_int_equal(g.n, 2);
    expect_range(&g, 0, 1, 2);
    free(g.seqs);
    trifle__journal_close(j);
    /* version 0 is damage: the segment is moved aside, nothing replays */
    set_version(seg, 0);
    j = open_j(TRIFLE__JSYNC_NONE, 0, 1 << 20);
    memset(&g, 0, sizeof(g));
    assert_int_equal(trifle__journal_replay(j, collect, &g, &err), 0);
    assert_int_equal(g.n, 0);
    free(g.seqs);
    trifle__journal_close(j);
}

static void test_damage_unmovable(void **state)
{
    uint64_t segs[64], bad;
    char seg[512];
    off_t size;
    pid_t pid;
    int status;
    got g;
    trifle__journal *j;

    (void)state;
    fill(200);
    assert_true(list_segs(segs, 64) >= 3);
    bad = segs[2] - 1; /* the last record of the second segment */
    seg_path(seg, sizeof(seg), segs[1], "");
    size = file_size(seg);
    patch_byte(seg, record_offset(segs[1], bad) + 4, 0x01);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(unmovable_child(bad, seg, size));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("child killed by signal %d", WTERMSIG(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("child check %d failed", WEXITSTATUS(status));
    /* without the limit the bytes move */
    j = open_j(TRIFLE__JSYNC_NONE, 0, 4096);
    replay_ok(j, &g);
    assert_int_equal(g.n, 199);
    free(g.seqs);
    trifle__journal_close(j);
    assert_int_equal(file_size(seg), record_offset(segs[1], bad));
    assert_int_equal(n_log, 1);
    assert_non_null(strstr(log_lines[0], "moved to"));
}

/* ---------------------------------------------------------------------------------------------
 * Full disk */

/* In a child: fill a journal up to RLIMIT_FSIZE. Exit codes name the failed check. */
static int full_disk_child(int ignore_sigxfsz)
{
    trifle__journal_options o = {jdir, TRIFLE__JSYNC_NONE, 0, 1 << 20};
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle__journal *j = NULL;
    struct rlimit rl;
    uint64_t seq, i;
    char seg[512];
    off_t before;
    unsigned char body[80];

    if (ignore_sigxfsz)
        (void)signal(SIGXFSZ, SIG_IGN);
    memset(body, 'b', sizeof(body));
    if (trifle__journal_open(&j, &o, &err) != 0 || trifle__journal_replay(j, NULL, NULL, &err))
        return 10;
    for (i = 0; i < 10; i++)
        if (trifle__journal_append(j, TRIFLE__JREC_OP, body, sizeof(body), &seq, &err) != 0)
            return 11;
    seg_path(seg, sizeof(seg), 1, ""); /* the only segment (no cmocka asserts in the child) */
    before = file_size(seg);
    if (getrlimit(RLIMIT_FSIZE, &rl) != 0)
        return 13;
    rl.rlim_cur = (rlim_t)before + 150; /* room for one more record and half of another */
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
        return 14;
    if (trifle__journal_append(j, TRIFLE__JREC_OP, body, sizeof(body), &seq, &err) != 0 ||
        seq != 11)
        return 15;
    if (trifle__journal_append(j, TRIFLE__JREC_OP, body, sizeof(body), &seq, &err) != TRIFLE_EIO)
        return 16;
    if (strstr(err.message, seg) == NULL || strstr(err.message, "File too large") == NULL)
        return 17;
    if (file_size(seg) != before + 100) /* cut back: nothing of the failed record */
        return 18;
    if (trifle__journal_append(j, TRIFLE__JREC_OP, body, sizeof(body), &seq, &err) != TRIFLE_EIO)
        return 19;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
        return 20;
    if (trifle__journal_append(j, TRIFLE__JREC_OP, body, sizeof(body), &seq, &err) != 0 ||
        seq != 12)
        return 21;
    trifle__journal_close(j);
    return 0;
}

static void run_full_disk(int ignore_sigxfsz)
{
    trifle__journal *j;
    int status;
    pid_t pid;
    got g;
    size_t i;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(full_disk_child(ignore_sigxfsz));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("child killed by signal %d", WTERMSIG(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("child check %d failed", WEXITSTATUS(status));
    /* exactly the twelve good records; the failed ones left nothing to find */
    j = open_j(TRIFLE__JSYNC_NONE, 0, 1 << 20);
    memset(&g, 0, sizeof(g));
    {
        trifle_error err = TRIFLE_ERROR_INIT;
        assert_int_equal(trifle__journal_replay(j, collect, &g, &err), 0);
    }
    assert_int_equal(g.n, 12);
    for (i = 0; i < 12; i++)
        assert_int_equal(g.seqs[i], i + 1);
    free(g.seqs);
    trifle__journal_close(j);
    assert_int_equal(n_log, 0); /* nothing damaged was left behind */
}

static void test_full_disk_rlimit(void **state)
{
    (void)state;
    run_full_disk(0);
}

static void test_full_disk_rlimit_ignored(void **state)
{
    (void)state;
    run_full_disk(1);
}

/* A 64 KiB tmpfs: ENOSPC for real. Needs CAP_SYS_ADMIN; skipped without it. */
static void test_full_disk_tmpfs(void **state)
{
    trifle__journal *j;
    trifle_error err = TRIFLE_ERROR_INIT;
    unsigned char body[1000];
    uint64_t seq = 0, good = 0, segs[8];
    off_t before;
    char seg[512];
    got g;
    int rc = 0;

    (void)state;
    if (mount("tmpfs", tmp_root, "tmpfs", 0, "size=64k") != 0) {
        skip();
        return;
    }
    memset(body, 'x', sizeof(body));
    j = open_replayed(TRIFLE__JSYNC_ALWAYS, 0, 1 << 20);
    seg_path(seg, sizeof(seg), 1, "");
    for (;;) {
        before = file_size(seg);
        rc = trifle__journal_append(j, TRIFLE__JREC_OP, body, sizeof(body), &seq, &err);
        if (rc != 0)
            break;
        assert_int_equal(trifle__journal_sync_to(j, seq, &err), 0);
        good = seq;
        assert_true(good < 1000);
    }
    assert_int_equal(rc, TRIFLE_EIO);
    assert_non_null(strstr(err.message, seg));
    assert_non_null(strstr(err.message, "No space left on device"));
    assert_int_equal(file_size(seg), before < 0 ? 64 : before);
    assert_int_equal(list_segs(segs, 8), 1);
    trifle__journal_close(j);
    j = open_j(TRIFLE__JSYNC_NONE, 0, 1 << 20);
    memset(&g, 0, sizeof(g));
    assert_int_equal(trifle__journal_replay(j, NULL, NULL, &err), 0);
    assert_int_equal(trifle__journal_last_seq(j), good);
    trifle__journal_close(j);
    assert_int_equal(n_log, 0);
    test_rm_rf(jdir);
    assert_int_equal(umount(tmp_root), 0);
}

/* ---------------------------------------------------------------------------------------------
 * Sync policies */

typedef struct gc_shared {
    trifle__journal *j;
    pthread_mutex_t append_lock; /* the buffer's lock: callers serialise appends */
    int per_thread;
    _Atomic int calls, failures, running;
} gc_shared;

/* Meanwhile, as the buffer's flush thread would: release what is synced, read the counters. */
static void *gc_releaser(void *arg)
{
    gc_shared *s = arg;
    trifle__journal_stats st;

    while (s->running > 0) {
        trifle__journal_release(s->j, trifle__journal_synced_seq(s->j));
        trifle__journal_get_stats(s->j, &st);
        if (st.records < st.segments_deleted)
            s->failures++;
        sched_yield();
    }
    return NULL;
}

static void *gc_worker(void *arg)
{
    gc_shared *s = arg;
    unsigned char body[80];
    int i;

    memset(body, 'g', sizeof(body));
    for (i = 0; i < s->per_thread; i++) {
        trifle_error err = TRIFLE_ERROR_INIT;
        uint64_t seq;
        pthread_mutex_lock(&s->append_lock);
        if (trifle__journal_append(s->j, TRIFLE__JREC_OP, body, sizeof(body), &seq, &err) != 0)
            s->failures++;
        pthread_mutex_unlock(&s->append_lock);
        if (trifle__journal_sync_to(s->j, seq, &err) != 0 || trifle__journal_synced_seq(s->j) < seq)
            s->failures++;
        s->calls++;
    }
    s->running--;
    return NULL;
}

/* Replay callback: the first sequence number and a count, failing on a gap. */
static int count_run(void *ctx, uint64_t seq, int type, const unsigned char *body, size_t len)
{
    got *g = ctx;

    (void)type;
    (void)body;
    (void)len;
    if (g->n == 0) {
        g->seqs = malloc(sizeof(*g->seqs));
        assert_non_null(g->seqs);
        g->seqs[0] = seq;
    } else if (seq != g->seqs[0] + g->n) {
        return 1;
    }
    g->n++;
    return 0;
}

static void test_group_commit(void **state)
{
    enum { THREADS = 8 };
    gc_shared s;
    pthread_t t[THREADS], rel;
    trifle__journal_stats st;
    got g;
    int i;

    (void)state;
    memset(&s, 0, sizeof(s));
    pthread_mutex_init(&s.append_lock, NULL);
    s.per_thread = test_light() ? 20 : 100;
    s.j = open_j(TRIFLE__JSYNC_ALWAYS, 0, 8192); /* small segments: rotations race syncs */
    replay_ok(s.j, &g);
    free(g.seqs);
    s.running = THREADS;
    for (i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, gc_worker, &s), 0);
    assert_int_equal(pthread_create(&rel, NULL, gc_releaser, &s), 0);
    for (i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_join(rel, NULL);
    assert_int_equal(s.failures, 0);
    assert_int_equal(s.calls, THREADS * s.per_thread);
    trifle__journal_get_stats(s.j, &st);
    assert_int_equal(st.records, (uint64_t)THREADS * s.per_thread);
    assert_int_equal(trifle__journal_synced_seq(s.j), st.records);
    /* callers shared fdatasyncs (the count includes one per segment rotation) */
    print_message("group commit: %d sync_to calls, %" PRIu64 " fdatasyncs, %" PRIu64 " segments\n",
                  s.calls, st.syncs, st.segments_created);
    assert_true(st.syncs < (uint64_t)s.calls);
    assert_true(st.segments_created > 1);
    trifle__journal_close(s.j);
    pthread_mutex_destroy(&s.append_lock);

    /* what was not released is there, in one run up to the last record; sync_to for nothing,
     * or beyond the last record, returns */
    s.j = open_j(TRIFLE__JSYNC_ALWAYS, 0, 4096);
    memset(&g, 0, sizeof(g));
    assert_int_equal(trifle__journal_replay(s.j, count_run, &g, NULL), 0);
    assert_true(g.n >= 1);
    assert_int_equal(g.seqs[0] + g.n - 1, (uint64_t)THREADS * s.per_thread);
    free(g.seqs);
    assert_int_equal(trifle__journal_last_seq(s.j), (uint64_t)THREADS * s.per_thread);
    assert_int_equal(trifle__journal_sync_to(s.j, 0, NULL), 0);
    assert_int_equal(trifle__journal_sync_to(s.j, 1u << 30, NULL), 0);
    trifle__journal_close(s.j);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_interval(void **state)
{
    trifle__journal *j;
    trifle__journal_stats st;
    int64_t t0;
    got g;
    int i;

    (void)state;
    j = open_replayed(TRIFLE__JSYNC_INTERVAL, 10, 1 << 20);
    /* idle: nothing to sync, no sync */
    sleep_ms(50);
    trifle__journal_get_stats(j, &st);
    assert_int_equal(st.syncs, 0);
    for (i = 1; i <= 20; i++)
        append_ok(j, (uint64_t)i);
    t0 = now_ms();
    do {
        sleep_ms(5);
        trifle__journal_get_stats(j, &st);
    } while (st.syncs == 0 && now_ms() - t0 < 5000);
    assert_true(st.syncs >= 1);
    t0 = now_ms();
    while (trifle__journal_synced_seq(j) < 20 && now_ms() - t0 < 5000)
        sleep_ms(5);
    assert_int_equal(trifle__journal_synced_seq(j), 20);
    trifle__journal_close(j);

    /* close wakes the thread at once, even with a long interval */
    j = open_replayed(TRIFLE__JSYNC_INTERVAL, 60000, 1 << 20);
    append_ok(j, 21);
    t0 = now_ms();
    trifle__journal_close(j);
    assert_true(now_ms() - t0 < 2000);

    j = open_j(TRIFLE__JSYNC_NONE, 0, 1 << 20);
    replay_ok(j, &g);
    assert_int_equal(g.n, 21);
    free(g.seqs);
    trifle__journal_close(j);
}

/* ---------------------------------------------------------------------------------------------
 * The in-memory scanner (the fuzz target's entry) */

static int count_cb(void *ctx, uint64_t seq, int type, const unsigned char *body, size_t len)
{
    (void)seq;
    (void)type;
    (void)body;
    (void)len;
    (*(size_t *)ctx)++;
    return 0;
}

static void test_scan_image(void **state)
{
    uint64_t segs[64];
    char seg[512];
    unsigned char *img;
    size_t len, count = 0, end;

    (void)state;
    fill(30);
    assert_int_equal(list_segs(segs, 64), 1);
    seg_path(seg, sizeof(seg), segs[0], "");
    img = slurp(seg, &len);
    assert_int_equal(trifle__journal_scan_image(img, len, count_cb, &count), len);
    assert_int_equal(count, 30);
    count = 0;
    end = record_offset(1, 30);
    assert_int_equal(trifle__journal_scan_image(img, len - 1, count_cb, &count), end);
    assert_int_equal(count, 29);
    assert_int_equal(trifle__journal_scan_image(img, 63, NULL, NULL), 0);
    assert_int_equal(trifle__journal_scan_image(img, 64, NULL, NULL), 64);
    img[30] ^= 1; /* the name is under the header CRC */
    assert_int_equal(trifle__journal_scan_image(img, len, NULL, NULL), 0);
    assert_int_equal(trifle__journal_scan_image(NULL, 0, NULL, NULL), 0);
    free(img);
}

/* ---------------------------------------------------------------------------------------------
 * Out of memory: allocation N fails, for N = 1, 2, ... until open, replay (with a damaged
 * segment to move) and appends all succeed; every run ends in TRIFLE_ENOMEM or success, with
 * nothing leaked. */

static void test_oom(void **state)
{
    uint64_t segs[64];
    char seg[512];
    long n;
    int done = 0;

    (void)state;
    fill(300);
    assert_true(list_segs(segs, 64) >= 3);
    seg_path(seg, sizeof(seg), segs[1], "");
    patch_byte(seg, record_offset(segs[1], segs[1] + 2) + 4, 0x01);
    for (n = 1; !done && n < 1000; n++) {
        trifle__journal_options o = {jdir, TRIFLE__JSYNC_NONE, 0, 4096};
        trifle_error err = TRIFLE_ERROR_INIT;
        trifle__journal *j = NULL;
        uint64_t seq = 0;
        int rc, i;

        oom_begin(n);
        rc = trifle__journal_open(&j, &o, &err);
        if (rc == 0)
            rc = trifle__journal_replay(j, NULL, NULL, &err);
        for (i = 0; rc == 0 && i < 200; i++) /* into a second new segment */
            rc = trifle__journal_append(j, TRIFLE__JREC_OP, "0123456789abcdef0123456789", 26, &seq,
                                        &err);
        trifle__journal_close(j);
        oom_end();
        if (rc != 0 && rc != TRIFLE_ENOMEM)
            fail_msg("allocation %ld: %d %s", n, rc, err.message);
        assert_int_equal(oom_live, 0);
        done = rc == 0;
    }
    assert_true(done);
    assert_true(n > 5); /* open, replay and append each allocate */
    seg_path(seg, sizeof(seg), segs[1], ".corrupt");
    assert_true(file_size(seg) > 0);
    seg_path(seg, sizeof(seg), segs[1], ".corrupt.1"); /* no empty leftovers from failed runs */
    assert_int_equal(file_size(seg), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crc_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_unmovable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_rlimit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_rlimit_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_tmpfs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_image, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oom, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
