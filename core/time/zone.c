/* Time zones (SPEC §2.2, ERRATA I7): IANA names resolved by GLib GTimeZone, plus a per-zone cache
 * of offset transitions so that floor() on the write path costs a few comparisons.
 *
 * Where offsets come from. GLib is the only source of offsets. GLib 2.74 has no transition API;
 * what it does expose is g_time_zone_find_interval(G_TIME_TYPE_UNIVERSAL, t), the index of the
 * interval holding instant t, which is non-decreasing in t, and g_time_zone_get_offset(interval).
 * Transitions are therefore found by bisection on the interval index: a range whose two ends lie in
 * the same interval holds no boundary, otherwise split it until the boundary is pinned to one
 * second. Interval boundaries that do not change the offset (abbreviation or isdst only) are not
 * transitions and are dropped. g_date_time_new_from_unix_utc() + g_date_time_get_utc_offset()
 * would give the same offsets but allocates two GDateTime objects per lookup; find_interval
 * allocates nothing. It is, however, a linear scan over the zone's intervals (GLib expands the
 * TZif footer rule into explicit intervals up to year 2999, ~2000 of them for a European zone),
 * about 0.2 us in 2025 and ~3 us near 2999: too slow for the write path, hence the cache.
 *
 * The cache. Instants are cut into blocks of 2^25 s (~388 days). The first query touching a block
 * finds that block's transitions by bisection (~50 GLib calls) and publishes them with an atomic
 * compare-and-swap; zones are shared read-only between threads, so a thread that loses the race
 * frees its copy and uses the winner's. Blocks are only kept between the first and the last GLib
 * interval boundary of the working domain (year 0 ... year 10000); outside it the offset is
 * constant. If a block cannot be allocated, the query is answered straight from GLib instead
 * (trifle__zone_*_direct), so lookups never fail. */
#include "trifle/time.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc_int.h"
#include "error_int.h"
#include "nocturnal_int.h"

#define BLOCK_SHIFT 25
#define BLOCK_SECONDS (INT64_C(1) << BLOCK_SHIFT)

/* Working domain: every instant any Nocturnal computation looks at (year floors reach year 1,
 * resolve() looks two days around a wall value, walls of 9999-12-31 reach into 10000). */
#define DOMAIN_LO (INT64_C(-62167219200) - 2 * 86400) /* 0000-01-01T00:00Z - 2 d */
#define DOMAIN_HI (INT64_C(253433923200) + 2 * 86400) /* 10001-01-01T00:00Z + 2 d */

typedef struct zone_block {
    int32_t off_start; /* offset in force just before the block's first second */
    size_t n;
    trifle__transition tr[]; /* ascending */
} zone_block;

struct trifle_zone {
    char *name;
    GTimeZone *tz;
    int64_t t_first;    /* first / last GLib interval boundary in the domain; */
    int64_t t_last;     /* t_first > t_last when the offset never changes */
    int32_t off_first;  /* offset before t_first */
    int32_t off_last;   /* offset from t_last on */
    int64_t block_base; /* block index of t_first */
    size_t n_blocks;
    _Atomic(zone_block *) *blocks;
};

static int64_t clamp_domain(int64_t t)
{
    return t < DOMAIN_LO ? DOMAIN_LO : t > DOMAIN_HI ? DOMAIN_HI : t;
}

static int interval_at(const trifle_zone *z, int64_t t)
{
    return g_time_zone_find_interval(z->tz, G_TIME_TYPE_UNIVERSAL, t);
}

static int32_t interval_offset(const trifle_zone *z, int interval)
{
    return g_time_zone_get_offset(z->tz, interval);
}

/* ---------------------------------------------------------------------------------------------
 * Bisection on GLib interval indexes */

typedef int (*scan_fn)(void *ctx, const trifle__transition *t); /* nonzero stops the scan */

/* Report the transitions T with lo < T <= hi (ilo, ihi: the intervals of lo and hi) in ascending
 * order, or descending when @p reverse. Returns nonzero when @p fn stopped the scan. The index is
 * non-decreasing in time, so equal ends mean no boundary in between; the recursion is at most
 * log2(hi - lo) deep (< 40 within the domain). */
static int scan(const trifle_zone *z, int64_t lo, int ilo, int64_t hi, int ihi, int reverse,
                scan_fn fn, void *ctx)
{
    if (ilo == ihi)
        return 0;
    if (hi - lo == 1) {
        trifle__transition t = {hi, interval_offset(z, ilo), interval_offset(z, ihi)};
        return t.before != t.after ? fn(ctx, &t) : 0;
    }
    int64_t mid = lo + (hi - lo) / 2;
    int imid = interval_at(z, mid);
    if (reverse)
        return scan(z, mid, imid, hi, ihi, 1, fn, ctx) || scan(z, lo, ilo, mid, imid, 1, fn, ctx);
    return scan(z, lo, ilo, mid, imid, 0, fn, ctx) || scan(z, mid, imid, hi, ihi, 0, fn, ctx);
}

static int take_first(void *ctx, const trifle__transition *t)
{
    *(trifle__transition *)ctx = *t;
    return 1;
}

/* The smallest t in (lo, hi] whose interval index is >= target (idx(lo) < target <= idx(hi)). */
static int64_t first_at_index(const trifle_zone *z, int64_t lo, int64_t hi, int target)
{
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (interval_at(z, mid) >= target)
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

int32_t trifle__zone_offset_direct(const trifle_zone *zone, int64_t at)
{
    if (zone == NULL)
        return 0;
    return interval_offset(zone, interval_at(zone, clamp_domain(at)));
}

/* The first transition of (lo, hi] found by bisection, the latest one when @p reverse. */
static int direct_first(const trifle_zone *zone, int64_t lo, int64_t hi, int reverse,
                        trifle__transition *out)
{
    if (zone == NULL)
        return 0;
    lo = clamp_domain(lo);
    hi = clamp_domain(hi);
    if (lo >= hi)
        return 0;
    return scan(zone, lo, interval_at(zone, lo), hi, interval_at(zone, hi), reverse, take_first,
                out);
}

int trifle__zone_prev_direct(const trifle_zone *zone, int64_t lower, int64_t at,
                             trifle__transition *out)
{
    return direct_first(zone, lower, at, 1, out);
}

int trifle__zone_next_direct(const trifle_zone *zone, int64_t at, int64_t upper,
                             trifle__transition *out)
{
    return direct_first(zone, at, upper, 0, out);
}

/* ---------------------------------------------------------------------------------------------
 * The block cache */

static int64_t block_of(int64_t t)
{
    /* floor(t / 2^25) without relying on the sign behaviour of >> */
    return trifle__floordiv(t, BLOCK_SECONDS);
}

typedef struct block_fill_ctx {
    zone_block *blk;
    size_t cap;
} block_fill_ctx;

static int block_append(void *ctx, const trifle__transition *t)
{
    block_fill_ctx *c = ctx;
    if (c->blk->n < c->cap)
        c->blk->tr[c->blk->n++] = *t;
    return 0;
}

static zone_block *block_fill(const trifle_zone *z, int64_t block)
{
    int64_t first = block * BLOCK_SECONDS;
    int64_t last = first + BLOCK_SECONDS - 1;
    int ilo = interval_at(z, first - 1);
    int ihi = interval_at(z, last);
    /* at most one transition per interval boundary in the block */
    size_t cap = ihi > ilo ? (size_t)(ihi - ilo) : 0;
    zone_block *blk = trifle__malloc(sizeof(*blk) + cap * sizeof(blk->tr[0]));
    if (blk == NULL)
        return NULL;
    blk->off_start = interval_offset(z, ilo);
    blk->n = 0;
    block_fill_ctx ctx = {blk, cap};
    (void)scan(z, first - 1, ilo, last, ihi, 0, block_append, &ctx);
    return blk;
}

/* The cached block holding t (t_first <= t <= t_last), filling it on first use; NULL when it
 * could not be allocated. */
static const zone_block *block_get(const trifle_zone *z, int64_t t)
{
    _Atomic(zone_block *) *slot = &z->blocks[block_of(t) - z->block_base];
    zone_block *blk = atomic_load_explicit(slot, memory_order_acquire);
    if (blk != NULL)
        return blk;
    blk = block_fill(z, block_of(t));
    if (blk == NULL)
        return NULL;
    zone_block *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(slot, &expected, blk, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        trifle__free(blk); /* another thread filled it first: identical content */
        return expected;
    }
    return blk;
}

void trifle__zone_lookup(const trifle_zone *zone, int64_t at, trifle__period *out)
{
    out->exact = 0;
    if (zone == NULL || at < zone->t_first) {
        out->offset = zone == NULL ? 0 : zone->off_first;
        out->since = INT64_MIN;
        return;
    }
    if (block_of(at) > block_of(zone->t_last)) {
        out->offset = zone->off_last;
        out->since = zone->t_last; /* there may be one at t_last itself */
        return;
    }
    const zone_block *blk = block_get(zone, at);
    if (blk == NULL) {
        out->offset = trifle__zone_offset_direct(zone, at);
        out->since = at; /* knows nothing: `at` itself may be a transition */
        return;
    }
    size_t i = 0;
    while (i < blk->n && blk->tr[i].at <= at)
        i++;
    if (i == 0) {
        out->offset = blk->off_start;
        out->since = block_of(at) * BLOCK_SECONDS - 1;
    } else {
        out->tr = blk->tr[i - 1];
        out->offset = out->tr.after;
        out->since = out->tr.at;
        out->exact = 1;
    }
}

int32_t trifle_zone_offset(const trifle_zone *zone, int64_t at)
{
    trifle__period p;
    trifle__zone_lookup(zone, at, &p);
    return p.offset;
}

int trifle__zone_prev(const trifle_zone *zone, int64_t lower, int64_t at, trifle__transition *out)
{
    if (zone == NULL || at < zone->t_first || lower >= zone->t_last || lower >= at)
        return 0;
    int64_t hi = at < zone->t_last ? at : zone->t_last;
    if (lower < zone->t_first)
        lower = zone->t_first - 1;
    for (int64_t b = block_of(hi); b >= block_of(lower + 1); b--) {
        const zone_block *blk = block_get(zone, b * BLOCK_SECONDS);
        if (blk == NULL)
            return trifle__zone_prev_direct(zone, lower, at, out);
        for (size_t i = blk->n; i-- > 0;) {
            if (blk->tr[i].at > hi)
                continue;
            if (blk->tr[i].at <= lower)
                return 0;
            *out = blk->tr[i];
            return 1;
        }
    }
    return 0;
}

int trifle__zone_next(const trifle_zone *zone, int64_t at, int64_t upper, trifle__transition *out)
{
    if (zone == NULL || upper < zone->t_first || at >= zone->t_last || at >= upper)
        return 0;
    int64_t lo = at < zone->t_first ? zone->t_first : at;
    if (upper > zone->t_last)
        upper = zone->t_last;
    for (int64_t b = block_of(lo); b <= block_of(upper); b++) {
        const zone_block *blk = block_get(zone, b * BLOCK_SECONDS);
        if (blk == NULL)
            return trifle__zone_next_direct(zone, at, upper, out);
        for (size_t i = 0; i < blk->n; i++) {
            if (blk->tr[i].at <= at)
                continue;
            if (blk->tr[i].at > upper)
                return 0;
            *out = blk->tr[i];
            return 1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Opening */

/* GLib's g_time_zone_new_identifier() also accepts fixed offsets ("+01:00", "Z"), POSIX TZ rules
 * ("GMT+1", "EST5", "CET-1CEST,M3.5.0,M10.5.0/3"), absolute and relative paths, and any TZif file
 * under the zoneinfo directory ("localtime" is the host's zone, "right/..." counts leap seconds).
 * None of these is an IANA name (SPEC §1 rejects them), so a name is accepted only when it is
 * spelled like one and the tz database has a TZif file by that name. Only "UTC" needs no file. */
static int name_is_iana(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 255)
        return 0;
    for (const char *c = name; *c != '\0';) {
        /* a component: a letter, then letters, digits, '_', '+' or '-' */
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z')))
            return 0;
        for (c++; *c != '\0' && *c != '/'; c++) {
            if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                  (*c >= '0' && *c <= '9') || *c == '_' || *c == '+' || *c == '-'))
                return 0;
        }
        if (*c == '/')
            c++; /* the next component must start with a letter: rejects "a//b" and "a/" */
        else
            break;
    }
    static const char *const not_zones[] = {"localtime", "posixrules"};
    for (size_t i = 0; i < sizeof(not_zones) / sizeof(not_zones[0]); i++) {
        if (strcmp(name, not_zones[i]) == 0)
            return 0;
    }
    if (strncmp(name, "posix/", 6) == 0 || strncmp(name, "right/", 6) == 0)
        return 0;
    return 1;
}

/* The zoneinfo directory GLib reads: $TZDIR, else the first of the two standard places that
 * exists (mirrors GLib's zone_info_base_dir()). */
static const char *zoneinfo_dir(void)
{
    const char *dir = g_getenv("TZDIR");
    if (dir != NULL && dir[0] != '\0')
        return dir;
    struct stat st;
    if (stat("/usr/share/zoneinfo", &st) == 0 && S_ISDIR(st.st_mode))
        return "/usr/share/zoneinfo";
    if (stat("/usr/share/lib/zoneinfo", &st) == 0 && S_ISDIR(st.st_mode))
        return "/usr/share/lib/zoneinfo";
    return "/usr/share/zoneinfo";
}

/* True when <zoneinfo>/<name> is a regular file that starts with the TZif magic. Only the magic is
 * read: GLib parses the file. */
static int tz_file_exists(const char *name)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s", zoneinfo_dir(), name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return 0;
    int fd;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return 0;
    struct stat st;
    char magic[4];
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && read(fd, magic, 4) == 4 &&
             memcmp(magic, "TZif", 4) == 0;
    (void)close(fd);
    return ok;
}

void trifle_zone_free(trifle_zone *zone)
{
    if (zone == NULL)
        return;
    for (size_t i = 0; i < zone->n_blocks; i++)
        trifle__free(atomic_load_explicit(&zone->blocks[i], memory_order_relaxed));
    trifle__free(zone->blocks);
    if (zone->tz != NULL)
        g_time_zone_unref(zone->tz);
    trifle__free(zone->name);
    trifle__free(zone);
}

int trifle_zone_open(trifle_zone **out, const char *name, trifle_error *err)
{
    int rc = 0;
    trifle_zone *z = NULL;
    if (out == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "trifle_zone_open: out is NULL");
    *out = NULL;
    if (name == NULL || !name_is_iana(name) || (strcmp(name, "UTC") != 0 && !tz_file_exists(name)))
        return trifle__error(err, TRIFLE_ECONFIG, "unknown time zone: %s", name ? name : "");
    if ((z = trifle__calloc(1, sizeof(*z))) == NULL || (z->name = trifle__strdup(name)) == NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    if ((z->tz = g_time_zone_new_identifier(name)) == NULL) {
        rc = trifle__error(err, TRIFLE_ECONFIG, "unknown time zone: %s", name);
        goto done;
    }

    int ilo = interval_at(z, DOMAIN_LO);
    int ihi = interval_at(z, DOMAIN_HI);
    z->off_first = interval_offset(z, ilo);
    z->off_last = interval_offset(z, ihi);
    if (ilo == ihi) {
        z->t_first = INT64_MAX;
        z->t_last = INT64_MIN;
    } else {
        z->t_first = first_at_index(z, DOMAIN_LO, DOMAIN_HI, ilo + 1);
        z->t_last = first_at_index(z, DOMAIN_LO, DOMAIN_HI, ihi);
        z->block_base = block_of(z->t_first);
        z->n_blocks = (size_t)(block_of(z->t_last) - z->block_base + 1);
        z->blocks = trifle__calloc(z->n_blocks, sizeof(z->blocks[0]));
        if (z->blocks == NULL) {
            z->n_blocks = 0;
            rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < z->n_blocks; i++)
            atomic_init(&z->blocks[i], NULL);
    }
    *out = z;
    z = NULL;
done:
    trifle_zone_free(z);
    return rc;
}

const char *trifle_zone_name(const trifle_zone *zone)
{
    return zone == NULL ? "UTC" : zone->name;
}
