/* The write-ahead journal (journal_int.h; docs/journal-format.md has the format with examples).
 *
 * Directory. `journal.id` holds the journal's name (32 lowercase hex digits and a newline, written
 * once: tmp file, fsync, rename, fsync of the directory). `lock` is flock()ed for as long as the
 * journal is open. Segments are `seg-<first seq as 16 lowercase hex digits>.tj`, so the names sort
 * in journal order; damaged bytes moved out of a segment go to `<segment>.corrupt` (`.corrupt.1`,
 * `.corrupt.2`, ... when that name is taken). Other files are ignored.
 *
 * Encoding. Every integer is little-endian, fixed width, written byte by byte (no struct is ever
 * written as it is, so the format does not depend on the compiler or the CPU).
 *
 *   segment header, 64 bytes           record, 20 bytes + body
 *   0   8  magic "TRFLJRNL"            0   4  body length L (<= 16 MiB)
 *   8   4  format version (2; 1 read)  4   4  CRC-32C over bytes 0..3 and 8..20+L
 *   12  4  header size (64)            8   8  sequence number
 *   16  8  first sequence number       16  4  type (1 .. 65535)
 *   24 32  journal name (ASCII hex)    20  L  body
 *   56  4  CRC-32C of bytes 0..55
 *   60  4  zero
 *
 * Inside a segment the first record has the header's sequence number and each next one the
 * previous number + 1; a segment's first sequence number is above every record of the segments
 * before it (gaps are possible where records were lost to damage or segments were released).
 * CRC-32C is the Castagnoli CRC (reflected polynomial 0x82F63B78, initial value and final xor
 * 0xFFFFFFFF; "123456789" gives 0xE3069283). None of the libraries the product may link offers it
 * (zlib's crc32 uses another polynomial), so it is here: slicing-by-8 tables, and the SSE4.2
 * instruction when the CPU has it.
 *
 * Threads. Appends are serialised by the caller and touch no journal lock except when a segment
 * starts (and, under INTERVAL, to wake a sleeping sync thread). `smu` guards the sync state
 * (synced_seq, the one fdatasync in flight, the failure range) and the descriptor the syncers
 * use: the appender swaps the descriptor only with `smu` held and no fdatasync in flight, so a
 * syncer's descriptor stays open while it syncs, and an fdatasync never holds up an append to the
 * same segment (only the switch to a new segment waits, and it syncs the old one anyway). `lmu`
 * guards the list of segments that release walks. Neither lock is taken with the other held. */
#include "journal_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc_int.h"
#include "error_int.h"
#include "thread_int.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define JOURNAL_CRC_SSE42 1
#include <nmmintrin.h>
#endif

#define HEADER_SIZE 64
#define RECORD_HEADER 20
/* Version 2 adds record type 5 (a call with its caller's note). A version-1 reader would skip
 * such records as unknown types and lose their calls, so segments are written as version 2, which
 * it refuses instead; version 1 segments are still read. */
#define FORMAT_VERSION 2
#define FORMAT_VERSION_MIN 1
#define MAX_BODY ((size_t)16 << 20) /* a larger length field is damage, never an allocation */
#define MAX_TYPE 0xFFFF
#define READ_CHUNK ((size_t)1 << 20)
#define SEG_NAME_LEN 23 /* "seg-" + 16 hex + ".tj" */
#define NAME_FILE "journal.id"
#define NAME_TMP "journal.id.tmp"
#define LOCK_FILE "lock"

static const unsigned char magic[8] = {'T', 'R', 'F', 'L', 'J', 'R', 'N', 'L'};

/* ---------------------------------------------------------------------------------------------
 * CRC-32C */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_hw;

static void crc_init(void)
{
    uint32_t i, k;

    for (i = 0; i < 256; i++) {
        uint32_t c = i;
        for (k = 0; k < 8; k++)
            c = (c & 1) != 0 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (i = 0; i < 256; i++)
        for (k = 1; k < 8; k++)
            crc_table[k][i] = (crc_table[k - 1][i] >> 8) ^ crc_table[0][crc_table[k - 1][i] & 0xff];
#ifdef JOURNAL_CRC_SSE42
    crc_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
}

uint32_t trifle__crc32c_portable(uint32_t crc, const void *data, size_t n)
{
    const unsigned char *p = data;

    (void)pthread_once(&crc_once, crc_init);
    crc = ~crc;
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        uint32_t hi =
            (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^
              crc_table[2][(hi >> 8) & 0xff] ^ crc_table[1][(hi >> 16) & 0xff] ^
              crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n-- > 0)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#ifdef JOURNAL_CRC_SSE42
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const void *data,
                                                               size_t n)
{
    const unsigned char *p = data;
    uint32_t c = ~crc;

#ifdef __x86_64__
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8); /* x86 is little-endian: byte order as the table code reads it */
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
#endif
    while (n >= 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        c = _mm_crc32_u32(c, v);
        p += 4;
        n -= 4;
    }
    while (n-- > 0)
        c = _mm_crc32_u8(c, *p++);
    return ~c;
}
#endif

uint32_t trifle__crc32c(uint32_t crc, const void *data, size_t n)
{
    (void)pthread_once(&crc_once, crc_init);
#ifdef JOURNAL_CRC_SSE42
    if (crc_hw)
        return crc32c_sse42(crc, data, n);
#endif
    return trifle__crc32c_portable(crc, data, n);
}

/* ---------------------------------------------------------------------------------------------
 * Encoding */

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static int is_name(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static void encode_header(unsigned char *h, uint64_t first, const char *name)
{
    memcpy(h, magic, sizeof(magic));
    put32(h + 8, FORMAT_VERSION);
    put32(h + 12, HEADER_SIZE);
    put64(h + 16, first);
    memcpy(h + 24, name, 32);
    put32(h + 56, trifle__crc32c(0, h, 56));
    put32(h + 60, 0);
}

/* Header checks, worst first; HDR_NEWER is the only one that is not damage. */
enum { HDR_OK = 0, HDR_MAGIC, HDR_CRC, HDR_NEWER, HDR_VERSION, HDR_FIELDS };

static int check_header(const unsigned char *h, uint64_t *first, const char **name)
{
    if (memcmp(h, magic, sizeof(magic)) != 0)
        return HDR_MAGIC;
    if (get32(h + 56) != trifle__crc32c(0, h, 56))
        return HDR_CRC;
    if (get32(h + 8) > FORMAT_VERSION)
        return HDR_NEWER;
    if (get32(h + 8) < FORMAT_VERSION_MIN)
        return HDR_VERSION;
    if (get32(h + 12) != HEADER_SIZE || get64(h + 16) == 0 || get32(h + 60) != 0 ||
        !is_name((const char *)h + 24, 32))
        return HDR_FIELDS;
    *first = get64(h + 16);
    *name = (const char *)h + 24;
    return HDR_OK;
}

static const char *header_problem(int hc)
{
    static const char *const text[] = {
        [HDR_MAGIC] = "not a journal segment header (bad magic)",
        [HDR_CRC] = "segment header CRC mismatch",
        [HDR_VERSION] = "unknown segment format version",
    };

    if (hc > 0 && (size_t)hc < sizeof(text) / sizeof(text[0]) && text[hc] != NULL)
        return text[hc];
    return "invalid segment header fields";
}

typedef struct jrec {
    uint64_t seq;
    int type;
    size_t len;
    const unsigned char *body;
} jrec;

enum { REC_OK = 0, REC_TORN, REC_BADLEN, REC_BADCRC, REC_BADTYPE, REC_BADSEQ };

/* Check the record at p, of which avail bytes exist, against the sequence number it must have. */
static int check_record(const unsigned char *p, size_t avail, uint64_t expect, jrec *r)
{
    uint32_t len, crc, type;

    if (avail < RECORD_HEADER)
        return REC_TORN;
    len = get32(p);
    if (len > MAX_BODY)
        return REC_BADLEN;
    if (avail - RECORD_HEADER < len)
        return REC_TORN;
    crc = trifle__crc32c(trifle__crc32c(0, p, 4), p + 8, (size_t)12 + len);
    if (crc != get32(p + 4))
        return REC_BADCRC;
    type = get32(p + 16);
    if (type == 0 || type > MAX_TYPE)
        return REC_BADTYPE;
    r->seq = get64(p + 8);
    if (r->seq != expect)
        return REC_BADSEQ;
    r->type = (int)type;
    r->len = len;
    r->body = p + RECORD_HEADER;
    return REC_OK;
}

size_t trifle__journal_scan_image(const unsigned char *image, size_t len,
                                  trifle__journal_record_fn fn, void *ctx)
{
    uint64_t expect;
    const char *name;
    size_t off = HEADER_SIZE;
    jrec r;

    if (image == NULL || len < HEADER_SIZE || check_header(image, &expect, &name) != HDR_OK)
        return 0;
    while (off < len && check_record(image + off, len - off, expect, &r) == REC_OK) {
        off += RECORD_HEADER + r.len;
        expect++;
        if (fn != NULL && fn(ctx, r.seq, r.type, r.body, r.len) != 0)
            break;
    }
    return off;
}

/* ---------------------------------------------------------------------------------------------
 * The journal object */

typedef struct jseg {
    uint64_t first, last; /* last = first - 1 while empty; the current segment's grows */
} jseg;

struct trifle__journal {
    char *dir;
    int dirfd, lockfd;
    int sync;
    int64_t interval_ms;
    uint64_t segment_bytes;
    char name[33];

    /* append side: written by the appender only (fd also under smu) */
    int fd;             /* current segment, -1 before the first append */
    uint64_t cur_first; /* its first sequence number */
    uint64_t cur_size;  /* its length in bytes */
    int broken;         /* could not be cut back after a failed write: start a new segment */
    uint64_t fsize;     /* RLIMIT_FSIZE when the segment started or a write came up short */
    int replayed, appended;
    unsigned char *frame;
    size_t frame_cap;
    _Atomic uint64_t last_seq;
    atomic_int rotate; /* a sync failed on the current segment: start a new one */

    /* segments, oldest first; the last one is current when fd >= 0 */
    trifle__mutex lmu;
    jseg *segs;
    size_t n_segs, cap_segs;
    int list_current; /* the last entry is the segment being appended to */

    /* sync state */
    trifle__mutex smu;
    pthread_cond_t synced; /* a sync finished (syncers, rotation) */
    pthread_cond_t tick;   /* wakes the interval thread (close) */
    int syncing;           /* an fdatasync is in flight (by whoever set this) */
    uint64_t synced_seq;
    uint64_t fail_lo, fail_hi; /* records in (fail_lo, fail_hi] may be lost: a sync failed */
    int fail_errno;
    uint64_t fail_first; /* the segment that failed */
    int stop, has_thread, interval_failing;
    atomic_int idle; /* the interval thread waits for an append (see interval_main) */
    pthread_t thread;

    /* counters */
    _Atomic uint64_t n_records, n_bytes, n_syncs, n_created, n_deleted, n_corrupt;
};

/* errno as text, without strerror (not thread-safe). */
static void errtext(int e, char *buf, size_t n)
{
    if (strerror_r(e, buf, n) != 0)
        (void)snprintf(buf, n, "error %d", e);
}

/* TRIFLE_EIO with "<what>: <errno text>"; native = errno. */
static int io_error(trifle_error *err, int e, const char *fmt, ...) TRIFLE_PRINTF(3, 4);
static int io_error(trifle_error *err, int e, const char *fmt, ...)
{
    char what[512], why[128];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    errtext(e, why, sizeof(why));
    (void)trifle__error(err, TRIFLE_EIO, "%s: %s", what, why);
    if (err != NULL)
        err->native = e;
    return TRIFLE_EIO;
}

static void seg_name(char *buf, size_t n, uint64_t first)
{
    (void)snprintf(buf, n, "seg-%016" PRIx64 ".tj", first);
}

/* "seg-<16 lowercase hex>.tj" → its number; 0 for any other name. */
static uint64_t parse_seg_name(const char *s)
{
    uint64_t v = 0;
    size_t i;

    if (strlen(s) != SEG_NAME_LEN || memcmp(s, "seg-", 4) != 0 || strcmp(s + 20, ".tj") != 0 ||
        !is_name(s + 4, 16))
        return 0;
    for (i = 4; i < 20; i++)
        v = v << 4 | (uint64_t)(s[i] <= '9' ? s[i] - '0' : s[i] - 'a' + 10);
    return v;
}

static int fsync_dir(trifle__journal *j, trifle_error *err)
{
    if (fsync(j->dirfd) != 0)
        return io_error(err, errno, "cannot sync journal directory %s", j->dir);
    return 0;
}

/* pwrite all of p at off (EINTR retried). Returns 0 or an errno; *done = bytes written. */
static int pwrite_all(int fd, const void *p, size_t n, uint64_t off, size_t *done)
{
    *done = 0;
    while (*done < n) {
        ssize_t w = pwrite(fd, (const char *)p + *done, n - *done, (off_t)(off + *done));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (w == 0)
            return EIO;
        *done += (size_t)w;
    }
    return 0;
}

/* pread up to n bytes at off (EINTR retried, stops at end of file). Returns 0 or an errno. */
static int pread_all(int fd, void *p, size_t n, uint64_t off, size_t *got)
{
    *got = 0;
    while (*got < n) {
        ssize_t r = pread(fd, (char *)p + *got, n - *got, (off_t)(off + *got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

/* A write that starts at or past RLIMIT_FSIZE raises SIGXFSZ, whose default action kills the
 * process; when the signal is ignored, caught or blocked the write fails with EFBIG instead (a
 * write that starts below the limit and would cross it is only cut short). A library must not
 * change the process's signal dispositions, so when (and only when) a write could reach the limit
 * and the disposition is still the default, the signal is blocked for the calling thread
 * (pthread_sigmask) around that write, and one that the write raised is taken off the thread's
 * pending set (sigtimedwait, no wait) before the old mask comes back. An application that ignores,
 * catches or blocks SIGXFSZ itself is left alone.
 *
 * Reading the limit costs a system call, about a third of an append, so the append path keeps it
 * from when its segment started (and from its last short write) and makes its first attempt
 * unguarded when the record ends below that limit: such a write can come up short but cannot
 * raise the signal, and whatever is left goes through the guard. What this does not cover is an
 * application that lowers the limit below the current segment's size while the journal is open:
 * it gets SIGXFSZ as any write of its own there would. */
typedef struct xfsz_guard {
    int active;
    sigset_t old;
} xfsz_guard;

/* RLIMIT_FSIZE now; UINT64_MAX when there is none. */
static uint64_t fsize_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_FSIZE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return UINT64_MAX;
    return (uint64_t)rl.rlim_cur;
}

static void xfsz_enter(xfsz_guard *g, uint64_t end)
{
    struct sigaction sa;
    sigset_t set;

    g->active = 0;
    if (end <= fsize_limit())
        return;
    if (sigaction(SIGXFSZ, NULL, &sa) != 0 || sa.sa_handler != SIG_DFL)
        return;
    (void)sigemptyset(&set);
    (void)sigaddset(&set, SIGXFSZ);
    if (pthread_sigmask(SIG_BLOCK, &set, &g->old) != 0)
        return;
    if (sigismember(&g->old, SIGXFSZ) == 1) {
        /* the application blocks it already: its business */
        (void)pthread_sigmask(SIG_SETMASK, &g->old, NULL);
        return;
    }
    g->active = 1;
}

static void xfsz_leave(xfsz_guard *g)
{
    sigset_t set, pending;
    struct timespec zero = {0, 0};

    if (!g->active)
        return;
    (void)sigemptyset(&set);
    (void)sigaddset(&set, SIGXFSZ);
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGXFSZ) == 1)
        (void)sigtimedwait(&set, NULL, &zero);
    (void)pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static int guarded_pwrite(int fd, const void *p, size_t n, uint64_t off, size_t *done)
{
    xfsz_guard g;
    int e;

    xfsz_enter(&g, off + n);
    e = pwrite_all(fd, p, n, off, done);
    xfsz_leave(&g);
    return e;
}

/* ---------------------------------------------------------------------------------------------
 * Sync */

static int sync_failed_error(trifle__journal *j, trifle_error *err)
{
    char name[SEG_NAME_LEN + 1];

    seg_name(name, sizeof(name), j->fail_first);
    return io_error(err, j->fail_errno, "cannot sync journal segment %s/%s", j->dir, name);
}

/* Group commit, with smu held: returns once every record up to seq is on disk. One caller at a
 * time runs fdatasync (without smu, so appends and the other callers go on); the others wait for
 * it and look again, and usually find their record covered by it. */
/* Under smu: count an fdatasync of the segment starting at record first, which covers the records
 * up to upto, and record its outcome e (0 or an errno). After a failed fdatasync the kernel may
 * have dropped the dirty pages, and a later fdatasync can succeed without them: those records stay
 * failed. */
static void sync_done(trifle__journal *j, int e, uint64_t upto, uint64_t first)
{
    atomic_fetch_add_explicit(&j->n_syncs, 1, memory_order_relaxed);
    if (e == 0) {
        if (upto > j->synced_seq)
            j->synced_seq = upto;
        return;
    }
    if (j->fail_hi == 0 || j->synced_seq < j->fail_lo)
        j->fail_lo = j->synced_seq;
    if (upto > j->fail_hi)
        j->fail_hi = upto;
    j->fail_errno = e;
    j->fail_first = first;
}

static int sync_locked(trifle__journal *j, uint64_t seq, trifle_error *err)
{
    for (;;) {
        uint64_t target, first;
        int fd, e = 0;

        if (seq > j->fail_lo && seq <= j->fail_hi)
            return sync_failed_error(j, err);
        if (j->synced_seq >= seq)
            return 0;
        if (j->syncing) {
            (void)pthread_cond_wait(&j->synced, &j->smu);
            continue;
        }
        /* every record up to target has been written to fd or to a segment synced before */
        target = atomic_load_explicit(&j->last_seq, memory_order_acquire);
        fd = j->fd;
        first = j->cur_first;
        if (fd < 0) {
            j->synced_seq = target;
            continue;
        }
        j->syncing = 1;
        trifle__mutex_unlock(&j->smu);
        if (fdatasync(fd) != 0)
            e = errno;
        trifle__mutex_lock(&j->smu);
        j->syncing = 0;
        sync_done(j, e, target, first);
        if (e != 0)
            atomic_store(&j->rotate, 1); /* appends move to a new segment */
        (void)pthread_cond_broadcast(&j->synced);
    }
}

int trifle__journal_sync_to(trifle__journal *j, uint64_t seq, trifle_error *err)
{
    uint64_t last = atomic_load_explicit(&j->last_seq, memory_order_acquire);
    int rc;

    if (seq > last)
        seq = last; /* nothing beyond the last record can be waited for */
    trifle__mutex_lock(&j->smu);
    rc = sync_locked(j, seq, err);
    trifle__mutex_unlock(&j->smu);
    return rc;
}

uint64_t trifle__journal_synced_seq(trifle__journal *j)
{
    uint64_t s;

    trifle__mutex_lock(&j->smu);
    s = j->synced_seq;
    trifle__mutex_unlock(&j->smu);
    return s;
}

static void cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, int64_t ms)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    (void)pthread_cond_timedwait(c, m, &ts);
}

/* TRIFLE__JSYNC_INTERVAL: one fdatasync per interval when something was appended since the last
 * one. With nothing to sync the thread sleeps without a timeout (`idle`) until an append wakes
 * it, so an idle journal costs no wakeups; the first record after that is synced an interval
 * later, like any other. A failure is logged when it starts and when it ends, not at every tick.
 *
 * The handshake with append is Dekker's: the thread stores idle = 1 and then reads last_seq, the
 * appender stores last_seq and then reads idle (all sequentially consistent), so at least one of
 * them sees the other; the thread holds smu from its check into pthread_cond_wait, and the
 * appender takes smu to signal, so the signal cannot come between the two. */
static void *interval_main(void *arg)
{
    trifle__journal *j = arg;

    trifle__mutex_lock(&j->smu);
    while (!j->stop) {
        uint64_t last;

        cond_wait_ms(&j->tick, &j->smu, j->interval_ms);
        if (j->stop)
            break;
        last = atomic_load(&j->last_seq);
        if (last > j->synced_seq && !j->syncing) {
            trifle_error err = TRIFLE_ERROR_INIT;
            if (sync_locked(j, last, &err) != 0) {
                if (!j->interval_failing)
                    trifle__log(TRIFLE_LOG_WARN, "core", "%s", err.message);
                j->interval_failing = 1;
            } else if (j->interval_failing) {
                trifle__log(TRIFLE_LOG_WARN, "core", "journal %s: syncing works again", j->dir);
                j->interval_failing = 0;
            }
        } else if (last <= j->synced_seq) {
            atomic_store(&j->idle, 1);
            if (atomic_load(&j->last_seq) <= j->synced_seq && !j->stop)
                (void)pthread_cond_wait(&j->tick, &j->smu);
            atomic_store(&j->idle, 0);
        }
    }
    trifle__mutex_unlock(&j->smu);
    return NULL;
}

/* After an append: wake the interval thread if it sleeps for want of work. */
static void wake_interval(trifle__journal *j)
{
    if (atomic_load(&j->idle) != 0 && atomic_exchange(&j->idle, 0) != 0) {
        trifle__mutex_lock(&j->smu);
        (void)pthread_cond_signal(&j->tick);
        trifle__mutex_unlock(&j->smu);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Segment list */

static int segs_push(trifle__journal *j, uint64_t first, uint64_t last)
{
    if (j->n_segs == j->cap_segs) {
        size_t cap = j->cap_segs == 0 ? 16 : 2 * j->cap_segs;
        jseg *s = trifle__reallocarray(j->segs, cap, sizeof(*s));
        if (s == NULL)
            return TRIFLE_ENOMEM;
        j->segs = s;
        j->cap_segs = cap;
    }
    j->segs[j->n_segs].first = first;
    j->segs[j->n_segs].last = last;
    j->n_segs++;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The segment numbers in the directory, ascending; *out is caller-owned (trifle__free). */
static int list_segments(trifle__journal *j, uint64_t **out, size_t *n, trifle_error *err)
{
    uint64_t *v = NULL;
    size_t cap = 0;
    struct dirent *e;
    DIR *d;
    int fd;

    *out = NULL;
    *n = 0;
    fd = openat(j->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        int e0 = errno;
        if (fd >= 0)
            (void)close(fd);
        return io_error(err, e0, "cannot list journal directory %s", j->dir);
    }
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        uint64_t first = parse_seg_name(e->d_name);
        if (first == 0)
            continue;
        if (*n == cap) {
            uint64_t *nv;
            cap = cap == 0 ? 16 : 2 * cap;
            if ((nv = trifle__reallocarray(v, cap, sizeof(*v))) == NULL) {
                trifle__free(v);
                (void)closedir(d);
                return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
            }
            v = nv;
        }
        v[(*n)++] = first;
        errno = 0;
    }
    if (errno != 0) {
        int e0 = errno;
        trifle__free(v);
        (void)closedir(d);
        *n = 0;
        return io_error(err, e0, "cannot list journal directory %s", j->dir);
    }
    (void)closedir(d);
    if (*n > 1)
        qsort(v, *n, sizeof(*v), cmp_u64);
    *out = v;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The name */

static int random_name(char *name, trifle_error *err)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[16];
    size_t got, i;
    int fd, e;

    if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) < 0)
        return io_error(err, errno, "cannot open /dev/urandom");
    e = 0;
    for (got = 0; got < sizeof(raw) && e == 0;) {
        ssize_t r = read(fd, raw + got, sizeof(raw) - got);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0)
            e = EIO;
        else if (errno != EINTR)
            e = errno;
    }
    (void)close(fd);
    if (e != 0)
        return io_error(err, e, "cannot read /dev/urandom");
    for (i = 0; i < 16; i++) {
        name[2 * i] = hex[raw[i] >> 4];
        name[2 * i + 1] = hex[raw[i] & 15];
    }
    name[32] = '\0';
    return 0;
}

/* A name file lost while segments remain: take the name from the first readable header, so the
 * store's marks keep matching. 1 when found. */
static int name_from_segments(trifle__journal *j, char *name)
{
    uint64_t *firsts = NULL;
    size_t n = 0, i;
    int found = 0;

    if (list_segments(j, &firsts, &n, NULL) != 0)
        return 0;
    for (i = 0; i < n && !found; i++) {
        char sn[SEG_NAME_LEN + 1];
        unsigned char h[HEADER_SIZE];
        uint64_t first;
        const char *hn;
        size_t got;
        int fd;

        seg_name(sn, sizeof(sn), firsts[i]);
        if ((fd = openat(j->dirfd, sn, O_RDONLY | O_CLOEXEC)) < 0)
            continue;
        if (pread_all(fd, h, sizeof(h), 0, &got) == 0 && got == sizeof(h) &&
            check_header(h, &first, &hn) == HDR_OK) {
            memcpy(name, hn, 32);
            name[32] = '\0';
            found = 1;
        }
        (void)close(fd);
    }
    trifle__free(firsts);
    return found;
}

static int write_name(trifle__journal *j, const char *name, trifle_error *err)
{
    char text[34];
    size_t done;
    int fd, e;

    memcpy(text, name, 32);
    text[32] = '\n';
    text[33] = '\0';
    fd = openat(j->dirfd, NAME_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return io_error(err, errno, "cannot create %s/%s", j->dir, NAME_TMP);
    e = guarded_pwrite(fd, text, 33, 0, &done);
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e != 0) {
        (void)unlinkat(j->dirfd, NAME_TMP, 0);
        return io_error(err, e, "cannot write %s/%s", j->dir, NAME_TMP);
    }
    if (renameat(j->dirfd, NAME_TMP, j->dirfd, NAME_FILE) != 0) {
        e = errno;
        (void)unlinkat(j->dirfd, NAME_TMP, 0);
        return io_error(err, e, "cannot rename %s/%s to %s", j->dir, NAME_TMP, NAME_FILE);
    }
    return fsync_dir(j, err);
}

static int load_name(trifle__journal *j, trifle_error *err)
{
    char text[64];
    size_t got;
    int fd, e;

    fd = openat(j->dirfd, NAME_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc;
        if (errno != ENOENT)
            return io_error(err, errno, "cannot open %s/%s", j->dir, NAME_FILE);
        if (!name_from_segments(j, j->name) && (rc = random_name(j->name, err)) != 0)
            return rc;
        return write_name(j, j->name, err);
    }
    e = pread_all(fd, text, sizeof(text), 0, &got);
    (void)close(fd);
    if (e != 0)
        return io_error(err, e, "cannot read %s/%s", j->dir, NAME_FILE);
    /* A changed name would make the store's marks unknown and replay everything again: refuse
     * rather than guess. */
    if (!((got == 32 || (got == 33 && text[32] == '\n')) && is_name(text, 32)))
        return trifle__error(err, TRIFLE_EIO,
                             "journal name file %s/%s is damaged: expected 32 lowercase hex digits",
                             j->dir, NAME_FILE);
    memcpy(j->name, text, 32);
    j->name[32] = '\0';
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Open, close */

static void fsync_parent(const char *dir)
{
    const char *slash = strrchr(dir, '/');
    char *parent;
    int fd;

    if (slash == NULL)
        parent = trifle__strdup(".");
    else
        parent = trifle__strndup(dir, slash == dir ? 1 : (size_t)(slash - dir));
    if (parent == NULL)
        return;
    if ((fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        (void)fsync(fd);
        (void)close(fd);
    }
    trifle__free(parent);
}

/* The interval thread takes no signals meant for the application. */
static int start_thread(trifle__journal *j)
{
    sigset_t all, old;
    int rc;

    (void)sigfillset(&all);
    (void)pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&j->thread, NULL, interval_main, j);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return rc;
    j->has_thread = 1;
    return 0;
}

int trifle__journal_open(trifle__journal **out, const trifle__journal_options *o, trifle_error *err)
{
    trifle__journal *j;
    int rc;

    *out = NULL;
    if (o == NULL || o->dir == NULL || o->dir[0] == '\0')
        return trifle__error(err, TRIFLE_EINVAL, "journal directory required");
    if (o->sync < TRIFLE__JSYNC_NONE || o->sync > TRIFLE__JSYNC_ALWAYS)
        return trifle__error(err, TRIFLE_EINVAL, "invalid journal sync policy %d", o->sync);
    if (o->sync == TRIFLE__JSYNC_INTERVAL && (o->interval_ms < 1 || o->interval_ms > 60000))
        return trifle__error(err, TRIFLE_EINVAL,
                             "journal sync interval %" PRId64 " ms out of range 1..60000",
                             o->interval_ms);
    if (o->segment_bytes < 4096)
        return trifle__error(err, TRIFLE_EINVAL,
                             "journal segment size %" PRId64 " below the minimum of 4096 bytes",
                             o->segment_bytes);
    if ((j = trifle__calloc(1, sizeof(*j))) == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    j->dirfd = j->lockfd = j->fd = -1;
    j->sync = o->sync;
    j->interval_ms = o->interval_ms;
    j->segment_bytes = (uint64_t)o->segment_bytes;
    (void)trifle__mutex_init(&j->lmu);
    (void)trifle__mutex_init(&j->smu);
    trifle__cond_init_monotonic(&j->synced);
    trifle__cond_init_monotonic(&j->tick);
    if ((j->dir = trifle__strdup(o->dir)) == NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto fail;
    }
    if (mkdir(j->dir, 0777) == 0)
        fsync_parent(j->dir);
    else if (errno != EEXIST) {
        rc = io_error(err, errno, "cannot create journal directory %s", j->dir);
        goto fail;
    }
    if ((j->dirfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = io_error(err, errno, "cannot open journal directory %s", j->dir);
        goto fail;
    }
    if ((j->lockfd = openat(j->dirfd, LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0666)) < 0) {
        rc = io_error(err, errno, "cannot open %s/%s", j->dir, LOCK_FILE);
        goto fail;
    }
    while ((rc = flock(j->lockfd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        if (errno == EWOULDBLOCK)
            rc =
                trifle__error(err, TRIFLE_EBUSY, "journal %s is in use by another process", j->dir);
        else
            rc = io_error(err, errno, "cannot lock %s/%s", j->dir, LOCK_FILE);
        goto fail;
    }
    if ((rc = load_name(j, err)) != 0)
        goto fail;
    if (j->sync == TRIFLE__JSYNC_INTERVAL && start_thread(j) != 0) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "cannot start the journal sync thread");
        goto fail;
    }
    *out = j;
    return 0;
fail:
    trifle__journal_close(j);
    return rc;
}

const char *trifle__journal_name(const trifle__journal *j)
{
    return j->name;
}

const char *trifle__journal_dir(const trifle__journal *j)
{
    return j->dir;
}

uint64_t trifle__journal_last_seq(const trifle__journal *j)
{
    return atomic_load_explicit(&((trifle__journal *)j)->last_seq, memory_order_acquire);
}

void trifle__journal_get_stats(trifle__journal *j, trifle__journal_stats *out)
{
    out->records = atomic_load_explicit(&j->n_records, memory_order_relaxed);
    out->bytes = atomic_load_explicit(&j->n_bytes, memory_order_relaxed);
    out->syncs = atomic_load_explicit(&j->n_syncs, memory_order_relaxed);
    out->segments_created = atomic_load_explicit(&j->n_created, memory_order_relaxed);
    out->segments_deleted = atomic_load_explicit(&j->n_deleted, memory_order_relaxed);
    out->corrupt_files = atomic_load_explicit(&j->n_corrupt, memory_order_relaxed);
}

void trifle__journal_close(trifle__journal *j)
{
    if (j == NULL)
        return;
    if (j->has_thread)
        trifle__thread_stop(&j->smu, &j->tick, &j->stop, j->thread);
    if (j->fd >= 0) {
        trifle_error err = TRIFLE_ERROR_INIT;
        trifle__mutex_lock(&j->smu);
        if (sync_locked(j, atomic_load(&j->last_seq), &err) != 0)
            trifle__log(TRIFLE_LOG_WARN, "core", "%s", err.message);
        trifle__mutex_unlock(&j->smu);
        (void)close(j->fd);
    }
    if (j->lockfd >= 0)
        (void)close(j->lockfd); /* releases the flock */
    if (j->dirfd >= 0)
        (void)close(j->dirfd);
    (void)pthread_cond_destroy(&j->synced);
    (void)pthread_cond_destroy(&j->tick);
    trifle__mutex_destroy(&j->smu);
    trifle__mutex_destroy(&j->lmu);
    trifle__free(j->segs);
    trifle__free(j->frame);
    trifle__free(j->dir);
    trifle__free(j);
}

/* ---------------------------------------------------------------------------------------------
 * Replay */

/* A window on a segment file: [off, off + len) of the file is in buf. */
typedef struct reader {
    int fd;
    uint64_t size;
    unsigned char *buf;
    size_t cap;
    uint64_t off;
    size_t len;
} reader;

/* Make want bytes at off available (fewer only at the end of the file): *p points at them and
 * *avail counts them. 0, or an errno / -1 for out of memory. */
static int rd_window(reader *r, uint64_t off, size_t want, const unsigned char **p, size_t *avail)
{
    size_t need, got;
    int e;

    if (off < r->off || off + want > r->off + r->len) {
        uint64_t left = off < r->size ? r->size - off : 0;
        need = want > READ_CHUNK ? want : READ_CHUNK;
        if (need > left)
            need = (size_t)left;
        if (need > r->cap) {
            unsigned char *nb = trifle__realloc(r->buf, need);
            if (nb == NULL)
                return -1;
            r->buf = nb;
            r->cap = need;
        }
        r->off = off;
        r->len = 0;
        if ((e = pread_all(r->fd, r->buf, need, off, &got)) != 0)
            return e;
        r->len = got;
    }
    *p = r->buf + (off - r->off);
    *avail = (size_t)(r->off + r->len - off);
    if (*avail > want)
        *avail = want;
    return 0;
}

/* Move bytes [off, size) of segment `name` to a new `<name>.corrupt[.N]` and cut the segment
 * there (delete it when off is inside the header), then log one warning with the reason. A
 * failure to move is part of the same warning and leaves the bytes where they are: appends go to
 * a new segment anyway, so a damaged tail left in place does no harm. */
static void move_damage(trifle__journal *j, reader *r, const char *name, uint64_t off,
                        const char *reason)
{
    char cname[SEG_NAME_LEN + 32], why[128] = "", fail[160] = "";
    unsigned char buf[8192];
    uint64_t at;
    int cfd = -1, e = 0, i;

    for (i = 0; i < 1000; i++) {
        if (i == 0)
            (void)snprintf(cname, sizeof(cname), "%s.corrupt", name);
        else
            (void)snprintf(cname, sizeof(cname), "%s.corrupt.%d", name, i);
        cfd = openat(j->dirfd, cname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (cfd >= 0 || errno != EEXIST)
            break;
    }
    if (cfd < 0) {
        e = errno;
        (void)snprintf(fail, sizeof(fail), "cannot create %s", cname);
        goto report;
    }
    for (at = off; at < r->size && e == 0;) {
        size_t want = r->size - at < sizeof(buf) ? (size_t)(r->size - at) : sizeof(buf), got, done;
        if ((e = pread_all(r->fd, buf, want, at, &got)) != 0 || got == 0)
            break;
        e = guarded_pwrite(cfd, buf, got, at - off, &done);
        at += got;
    }
    if (e == 0 && fsync(cfd) != 0)
        e = errno;
    if (close(cfd) != 0 && e == 0)
        e = errno;
    if (e == 0 && fsync(j->dirfd) != 0)
        e = errno;
    if (e != 0) {
        (void)snprintf(fail, sizeof(fail), "cannot copy to %s", cname);
        (void)unlinkat(j->dirfd, cname, 0);
        goto report;
    }
    atomic_fetch_add_explicit(&j->n_corrupt, 1, memory_order_relaxed);
    if (off < HEADER_SIZE) {
        if (unlinkat(j->dirfd, name, 0) != 0 || fsync(j->dirfd) != 0) {
            e = errno;
            (void)snprintf(fail, sizeof(fail), "copied to %s but cannot delete the segment", cname);
        }
    } else if (ftruncate(r->fd, (off_t)off) != 0 || fdatasync(r->fd) != 0) {
        e = errno;
        (void)snprintf(fail, sizeof(fail), "copied to %s but cannot cut the segment", cname);
    }
report:
    if (fail[0] != '\0') {
        errtext(e, why, sizeof(why));
        trifle__log(TRIFLE_LOG_WARN, "core",
                    "journal segment %s/%s: %s at byte %" PRIu64 "; %s: %s; left in place", j->dir,
                    name, reason, off, fail, why);
    } else {
        trifle__log(TRIFLE_LOG_WARN, "core",
                    "journal segment %s/%s: %s at byte %" PRIu64 "; %" PRIu64
                    " bytes from there moved to %s/%s",
                    j->dir, name, reason, off, r->size - off, j->dir, cname);
    }
}

/* Replay one segment. *last is the highest sequence number delivered so far (0 = none); the
 * segment is added to the list unless it was removed. */
static int replay_segment(trifle__journal *j, reader *r, uint64_t num, uint64_t *last,
                          trifle__journal_record_fn fn, void *ctx, trifle_error *err)
{
    char name[SEG_NAME_LEN + 1], reason[160];
    const unsigned char *p;
    const char *hname;
    uint64_t first, off, expect;
    struct stat st;
    size_t avail;
    int rc = 0, e, hc;
    jrec rec;

    seg_name(name, sizeof(name), num);
    r->fd = openat(j->dirfd, name, O_RDWR | O_CLOEXEC);
    r->off = 0;
    r->len = 0;
    if (r->fd < 0)
        return io_error(err, errno, "cannot open journal segment %s/%s", j->dir, name);
    if (fstat(r->fd, &st) != 0) {
        rc = io_error(err, errno, "cannot stat journal segment %s/%s", j->dir, name);
        goto done;
    }
    r->size = (uint64_t)st.st_size;
    if (r->size == 0) {
        /* created, then the process died before its header was written: holds nothing */
        if (unlinkat(j->dirfd, name, 0) != 0)
            rc = io_error(err, errno, "cannot delete empty journal segment %s/%s", j->dir, name);
        goto done;
    }
    if ((e = rd_window(r, 0, HEADER_SIZE, &p, &avail)) != 0)
        goto read_error;
    if (avail < HEADER_SIZE) {
        move_damage(j, r, name, 0, "torn segment header");
        goto done;
    }
    hc = check_header(p, &first, &hname);
    if (hc == HDR_NEWER) {
        rc = trifle__error(err, TRIFLE_EIO,
                           "journal segment %s/%s has format version %" PRIu32
                           "; this libtrifle reads version %d",
                           j->dir, name, get32(p + 8), FORMAT_VERSION);
        goto done;
    }
    if (hc != HDR_OK) {
        move_damage(j, r, name, 0, header_problem(hc));
        goto done;
    }
    if (memcmp(hname, j->name, 32) != 0) {
        (void)snprintf(reason, sizeof(reason), "segment of another journal (%.32s)", hname);
        move_damage(j, r, name, 0, reason);
        goto done;
    }
    if (first != num || first <= *last) {
        (void)snprintf(reason, sizeof(reason),
                       "segment header says first sequence number %" PRIu64 " (file name %" PRIu64
                       ", previous record %" PRIu64 ")",
                       first, num, *last);
        move_damage(j, r, name, 0, reason);
        goto done;
    }
    off = HEADER_SIZE;
    expect = first;
    while (off < r->size) {
        size_t len;
        int cr;

        if ((e = rd_window(r, off, RECORD_HEADER, &p, &avail)) != 0)
            goto read_error;
        len = avail >= RECORD_HEADER ? get32(p) : 0;
        if (avail >= RECORD_HEADER && len <= MAX_BODY &&
            (e = rd_window(r, off, RECORD_HEADER + len, &p, &avail)) != 0)
            goto read_error;
        cr = check_record(p, avail, expect, &rec);
        if (cr != REC_OK) {
            switch (cr) {
            case REC_TORN:
                (void)snprintf(reason, sizeof(reason), "torn record");
                break;
            case REC_BADLEN:
                (void)snprintf(reason, sizeof(reason), "record length %zu over the limit", len);
                break;
            case REC_BADCRC:
                (void)snprintf(reason, sizeof(reason), "record CRC mismatch");
                break;
            case REC_BADTYPE:
                (void)snprintf(reason, sizeof(reason), "invalid record type %" PRIu32,
                               get32(p + 16));
                break;
            default:
                (void)snprintf(reason, sizeof(reason),
                               "sequence number %" PRIu64 " where %" PRIu64 " was expected",
                               rec.seq, expect);
                break;
            }
            move_damage(j, r, name, off, reason);
            break;
        }
        if (fn != NULL && (rc = fn(ctx, rec.seq, rec.type, rec.body, rec.len)) != 0)
            goto done;
        off += RECORD_HEADER + rec.len;
        expect++;
    }
    if (expect - 1 > *last)
        *last = expect - 1;
    trifle__mutex_lock(&j->lmu);
    if (segs_push(j, first, expect - 1) != 0)
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    trifle__mutex_unlock(&j->lmu);
    goto done;
read_error:
    if (e < 0)
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    else
        rc = io_error(err, e, "cannot read journal segment %s/%s", j->dir, name);
done:
    (void)close(r->fd);
    r->fd = -1;
    return rc;
}

int trifle__journal_replay(trifle__journal *j, trifle__journal_record_fn fn, void *ctx,
                           trifle_error *err)
{
    reader r = {-1, 0, NULL, 0, 0, 0};
    uint64_t *nums = NULL, last = 0, floor;
    size_t n = 0, i;
    int rc;

    if (j->appended)
        return trifle__error(err, TRIFLE_EINVAL, "journal %s: replay after append", j->dir);
    trifle__mutex_lock(&j->lmu);
    j->n_segs = 0;
    trifle__mutex_unlock(&j->lmu);
    j->replayed = 0;
    if ((rc = list_segments(j, &nums, &n, err)) != 0)
        return rc;
    for (i = 0; i < n && rc == 0; i++)
        rc = replay_segment(j, &r, nums[i], &last, fn, ctx, err);
    trifle__free(nums);
    trifle__free(r.buf);
    if (rc != 0)
        return rc;
    floor = atomic_load(&j->last_seq);
    if (last > floor)
        atomic_store(&j->last_seq, last);
    trifle__mutex_lock(&j->smu);
    j->synced_seq = atomic_load(&j->last_seq);
    trifle__mutex_unlock(&j->smu);
    j->replayed = 1;
    return 0;
}

void trifle__journal_seq_floor(trifle__journal *j, uint64_t floor)
{
    if (floor <= atomic_load(&j->last_seq))
        return;
    atomic_store(&j->last_seq, floor);
    if (j->fd >= 0)
        j->broken = 1; /* keep sequence numbers consecutive inside a segment */
    trifle__mutex_lock(&j->smu);
    if (j->fd < 0 && j->synced_seq < floor)
        j->synced_seq = floor;
    trifle__mutex_unlock(&j->smu);
}

/* ---------------------------------------------------------------------------------------------
 * Append */

/* Start a new segment for records from first on: create it (with its header, and the directory
 * synced), then, with no fdatasync in flight, sync the old one and switch to the new one. */
static int start_segment(trifle__journal *j, uint64_t first, trifle_error *err)
{
    char name[SEG_NAME_LEN + 1], why[128];
    unsigned char h[HEADER_SIZE];
    uint64_t old_last = atomic_load(&j->last_seq);
    int fd, old = j->fd, e, reuse = 0, rc;
    size_t done;

    seg_name(name, sizeof(name), first);
    /* the only segment that can have this number is an empty one left by replay (a failed first
     * append before a restart): it holds nothing, so it is started again */
    trifle__mutex_lock(&j->lmu);
    if (j->n_segs > 0 && j->segs[j->n_segs - 1].first == first && old < 0 &&
        j->segs[j->n_segs - 1].last < first)
        reuse = 1;
    trifle__mutex_unlock(&j->lmu);
    fd = openat(j->dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC | (reuse ? O_TRUNC : O_EXCL), 0666);
    if (fd < 0)
        return io_error(err, errno, "cannot create journal segment %s/%s", j->dir, name);
    encode_header(h, first, j->name);
    if ((e = guarded_pwrite(fd, h, sizeof(h), 0, &done)) != 0) {
        (void)close(fd);
        (void)unlinkat(j->dirfd, name, 0);
        return io_error(err, e, "cannot write journal segment %s/%s", j->dir, name);
    }
    if ((rc = fsync_dir(j, err)) != 0) {
        (void)close(fd);
        (void)unlinkat(j->dirfd, name, 0);
        return rc;
    }
    atomic_fetch_add_explicit(&j->n_created, 1, memory_order_relaxed);

    trifle__mutex_lock(&j->smu);
    while (j->syncing)
        (void)pthread_cond_wait(&j->synced, &j->smu);
    if (old >= 0 && j->synced_seq < old_last) {
        /* one fdatasync per segment whatever the policy: close() then covers all of them */
        e = fdatasync(old) != 0 ? errno : 0;
        sync_done(j, e, old_last, j->cur_first);
        if (e != 0) {
            errtext(e, why, sizeof(why));
            trifle__log(TRIFLE_LOG_WARN, "core",
                        "journal %s: cannot sync segment %016" PRIx64 " before closing it: %s",
                        j->dir, j->cur_first, why);
        }
    } else if (old < 0 && j->synced_seq < old_last) {
        j->synced_seq = old_last;
    }
    j->fd = fd;
    j->cur_first = first;
    (void)pthread_cond_broadcast(&j->synced);
    trifle__mutex_unlock(&j->smu);
    if (old >= 0)
        (void)close(old);
    j->cur_size = HEADER_SIZE;
    j->fsize = fsize_limit();
    j->broken = 0;
    atomic_store(&j->rotate, 0);

    trifle__mutex_lock(&j->lmu);
    if (reuse)
        j->n_segs--;
    else if (old >= 0 && j->list_current && j->n_segs > 0)
        j->segs[j->n_segs - 1].last = old_last;
    rc = segs_push(j, first, first - 1);
    j->list_current = rc == 0;
    trifle__mutex_unlock(&j->lmu);
    if (rc != 0) /* cannot happen after reuse; the segment stays and is found by the next replay */
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    return 0;
}

/* Write the frame (n bytes) at the segment's offset at; see xfsz_enter for the first attempt. */
static int write_record(trifle__journal *j, size_t n, uint64_t at)
{
    size_t done = 0, more;
    int e;

    if (at + n <= j->fsize) {
        ssize_t w;
        while ((w = pwrite(j->fd, j->frame, n, (off_t)at)) < 0 && errno == EINTR)
            ;
        if (w == (ssize_t)n)
            return 0;
        if (w < 0)
            return errno;
        done = (size_t)w;
    }
    j->fsize = fsize_limit();
    e = guarded_pwrite(j->fd, j->frame + done, n - done, at + done, &more);
    return e;
}

int trifle__journal_append(trifle__journal *j, int type, const void *body, size_t len,
                           uint64_t *seq, trifle_error *err)
{
    uint64_t s, at;
    size_t n = RECORD_HEADER + len;
    char name[SEG_NAME_LEN + 1];
    int e, rc;

    if (!j->replayed)
        return trifle__error(err, TRIFLE_EINVAL, "journal %s: append before replay", j->dir);
    if (type < 1 || type > MAX_TYPE)
        return trifle__error(err, TRIFLE_EINVAL, "invalid journal record type %d", type);
    if (len > MAX_BODY)
        return trifle__error(err, TRIFLE_EINVAL,
                             "journal record of %zu bytes is over the limit of %zu", len, MAX_BODY);
    if (len > 0 && body == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: journal record body");
    s = atomic_load_explicit(&j->last_seq, memory_order_relaxed) + 1;
    if (j->fd < 0 || j->broken || atomic_load(&j->rotate) != 0 ||
        (j->cur_size > HEADER_SIZE && j->cur_size + n > j->segment_bytes)) {
        if ((rc = start_segment(j, s, err)) != 0)
            return rc;
    }
    j->appended = 1;
    if (n > j->frame_cap) {
        size_t cap = n < 256 ? 256 : n;
        unsigned char *f = trifle__realloc(j->frame, cap);
        if (f == NULL)
            return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        j->frame = f;
        j->frame_cap = cap;
    }
    put32(j->frame, (uint32_t)len);
    put64(j->frame + 8, s);
    put32(j->frame + 16, (uint32_t)type);
    if (len > 0)
        memcpy(j->frame + RECORD_HEADER, body, len);
    put32(j->frame + 4, trifle__crc32c(trifle__crc32c(0, j->frame, 4), j->frame + 8, 12 + len));

    at = j->cur_size;
    if ((e = write_record(j, n, at)) != 0) {
        seg_name(name, sizeof(name), j->cur_first);
        if (ftruncate(j->fd, (off_t)at) != 0) {
            /* the record may be partly (or wholly) in the file: never write after it, and never
             * give its number to another record */
            j->broken = 1;
            atomic_store_explicit(&j->last_seq, s, memory_order_release);
        }
        return io_error(err, e, "cannot append to journal segment %s/%s", j->dir, name);
    }
    j->cur_size = at + n;
    atomic_store(&j->last_seq, s); /* sequentially consistent: see interval_main */
    atomic_fetch_add_explicit(&j->n_records, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&j->n_bytes, n, memory_order_relaxed);
    if (j->has_thread)
        wake_interval(j);
    *seq = s;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Release */

void trifle__journal_release(trifle__journal *j, uint64_t upto)
{
    char name[SEG_NAME_LEN + 1], why[128];
    size_t keep_from = 0, limit, i;
    int deleted = 0;

    trifle__mutex_lock(&j->lmu);
    /* the current segment (the last one once an append started it) is never deleted */
    limit = j->list_current && j->n_segs > 0 ? j->n_segs - 1 : j->n_segs;
    while (keep_from < limit && j->segs[keep_from].last <= upto) {
        seg_name(name, sizeof(name), j->segs[keep_from].first);
        if (unlinkat(j->dirfd, name, 0) != 0 && errno != ENOENT) {
            errtext(errno, why, sizeof(why));
            trifle__log(TRIFLE_LOG_WARN, "core", "cannot delete journal segment %s/%s: %s", j->dir,
                        name, why);
            break;
        }
        deleted++;
        keep_from++;
    }
    if (keep_from > 0) {
        for (i = keep_from; i < j->n_segs; i++)
            j->segs[i - keep_from] = j->segs[i];
        j->n_segs -= keep_from;
    }
    trifle__mutex_unlock(&j->lmu);
    if (deleted > 0) {
        trifle_error err = TRIFLE_ERROR_INIT;
        atomic_fetch_add_explicit(&j->n_deleted, (uint64_t)deleted, memory_order_relaxed);
        if (fsync_dir(j, &err) != 0)
            trifle__log(TRIFLE_LOG_WARN, "core", "%s", err.message);
    }
}
