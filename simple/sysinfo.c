/* System figures for Simple Stats (SPEC §10.4): the built-in `system` and `disk` providers and the
 * cached storage figures of a data directory. Storage figures are cached for 10 s per directory and
 * computed without any Simple Stats lock held, so a slow directory walk never blocks a writer. */
#include "simple_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "alloc_int.h"
#include "error_int.h"
#include "struct_int.h"

#define CACHE_MS 10000
#define CACHE_SLOTS 8
/* trifle_simple_storage as libtrifle 1.0 had it: the smallest struct_size accepted */
#define TRIFLE__SIMPLE_STORAGE_SIZE_1 TRIFLE__SIZE_THROUGH(trifle_simple_storage, store)
#define WALK_DEPTH 64

/* ---------------------------------------------------------------------------------------------
 * Storage */

typedef struct slot {
    char *dir;
    int64_t at;
    trifle_simple_storage st;
} slot;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static slot cache[CACHE_SLOTS];

/* Bytes of regular files below the directory open as dfd (consumed). Symlinks are not followed;
 * entries that vanish or cannot be read are skipped. */
static int64_t dir_size(int dfd, int depth)
{
    DIR *d = fdopendir(dfd);
    struct dirent *e;
    int64_t sum = 0;

    if (d == NULL) {
        (void)close(dfd);
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISREG(st.st_mode)) {
            if (st.st_size > 0 && sum <= INT64_MAX - (int64_t)st.st_size)
                sum += (int64_t)st.st_size;
        } else if (S_ISDIR(st.st_mode) && depth < WALK_DEPTH) {
            int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0) {
                int64_t sub = dir_size(fd, depth + 1);
                sum = sum <= INT64_MAX - sub ? sum + sub : INT64_MAX;
            }
        }
    }
    (void)closedir(d);
    return sum;
}

static int64_t mul_sat(uint64_t a, uint64_t b)
{
    if (a != 0 && b > (uint64_t)INT64_MAX / a)
        return INT64_MAX;
    return (int64_t)(a * b);
}

static int compute(trifle_simple_storage *out, const char *dir, trifle_error *err)
{
    struct statvfs vfs;
    char why[128];
    int fd;

    if (statvfs(dir, &vfs) != 0) {
        if (strerror_r(errno, why, sizeof(why)) != 0)
            (void)snprintf(why, sizeof(why), "error %d", errno);
        return trifle__error(err, TRIFLE_ERROR, "cannot stat %s: %s", dir, why);
    }
    out->all = mul_sat(vfs.f_blocks, vfs.f_frsize);
    out->free = mul_sat(vfs.f_bfree, vfs.f_frsize);
    out->available = mul_sat(vfs.f_bavail, vfs.f_frsize);
    out->used = out->all - out->free;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    out->store = fd >= 0 ? dir_size(fd, 0) : 0;
    return 0;
}

int trifle_simple_storage_stats(trifle_simple_storage *out, const char *data_dir, trifle_error *err)
{
    trifle_simple_storage st = TRIFLE_SIMPLE_STORAGE_INIT;
    int64_t now = trifle__simple_now_ms();
    size_t i, victim = 0;
    char *copy;
    int rc;

    if (out == NULL || data_dir == NULL || data_dir[0] == '\0')
        return trifle__error(err, TRIFLE_EINVAL, "data directory required");
    if (out->struct_size < TRIFLE__SIMPLE_STORAGE_SIZE_1)
        return trifle__error(err, TRIFLE_EINVAL,
                             "trifle_simple_storage.struct_size %zu is too small (initialise with "
                             "TRIFLE_SIMPLE_STORAGE_INIT)",
                             out->struct_size);
    pthread_mutex_lock(&cache_lock);
    for (i = 0; i < CACHE_SLOTS; i++)
        if (cache[i].dir != NULL && strcmp(cache[i].dir, data_dir) == 0 &&
            now - cache[i].at < CACHE_MS && now >= cache[i].at) {
            trifle__struct_out(out, &cache[i].st, sizeof(cache[i].st));
            pthread_mutex_unlock(&cache_lock);
            return 0;
        }
    pthread_mutex_unlock(&cache_lock);

    if ((rc = compute(&st, data_dir, err)) != 0)
        return rc;
    trifle__struct_out(out, &st, sizeof(st));

    copy = trifle__strdup(data_dir);
    pthread_mutex_lock(&cache_lock);
    for (i = 0; i < CACHE_SLOTS; i++) {
        if (cache[i].dir != NULL && strcmp(cache[i].dir, data_dir) == 0) {
            victim = i;
            break;
        }
        if (cache[i].dir == NULL || cache[i].at < cache[victim].at)
            victim = i;
    }
    if (copy != NULL) {
        trifle__free(cache[victim].dir);
        cache[victim].dir = copy;
        cache[victim].at = now;
        cache[victim].st = st;
    }
    pthread_mutex_unlock(&cache_lock);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Process figures */

static pthread_mutex_t cpu_lock = PTHREAD_MUTEX_INITIALIZER;
static int cpu_have;
static int64_t cpu_t0, cpu_c0, cpu_pct;

void trifle__sysinfo_reset(void)
{
    size_t i;

    pthread_mutex_lock(&cache_lock);
    for (i = 0; i < CACHE_SLOTS; i++) {
        trifle__free(cache[i].dir);
        cache[i].dir = NULL;
    }
    pthread_mutex_unlock(&cache_lock);
    pthread_mutex_lock(&cpu_lock);
    cpu_have = 0;
    pthread_mutex_unlock(&cpu_lock);
}

static int64_t tv_us(struct timeval tv)
{
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* Process CPU percent over the last window of at least 1 s (the first window starts with the
 * module; later ones start at the previous measurement). */
static int64_t cpu_percent(int64_t cpu_us)
{
    int64_t now = trifle__simple_now_ms(), pct;

    pthread_mutex_lock(&cpu_lock);
    if (!cpu_have) {
        int64_t up = trifle__simple_uptime_ms();
        cpu_have = 1;
        cpu_t0 = now;
        cpu_c0 = cpu_us;
        cpu_pct = up > 0 ? cpu_us / 10 / up : 0; /* us*100/(ms*1000) */
    } else if (now - cpu_t0 >= 1000) {
        cpu_pct = (cpu_us - cpu_c0) / 10 / (now - cpu_t0);
        cpu_t0 = now;
        cpu_c0 = cpu_us;
    }
    pct = cpu_pct < 0 ? 0 : cpu_pct;
    pthread_mutex_unlock(&cpu_lock);
    return pct;
}

/* Read a small /proc file into buf (NUL-terminated). 0 or -1. */
static int read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t len = 0;

    if (fd < 0)
        return -1;
    while (len + 1 < size) {
        ssize_t got = read(fd, buf + len, size - 1 - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    (void)close(fd);
    buf[len] = '\0';
    return len > 0 ? 0 : -1;
}

static int parse_u64(const char *s, int64_t *out)
{
    int64_t v = 0;
    int any = 0;

    while (*s == ' ' || *s == '\t')
        s++;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (INT64_MAX - (*s - '0')) / 10)
            return -1;
        v = v * 10 + (*s - '0');
        any = 1;
    }
    if (!any)
        return -1;
    *out = v;
    return 0;
}

int trifle_simple_system_provider(trifle_simple_writer *w, trifle_error *err, void *payload)
{
    struct rusage ru;
    char buf[8192];
    int64_t v;
    const char *p;

    (void)trifle_simple_writer_int(w, "uptime_in_ms", trifle__simple_uptime_ms());
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        int64_t user = tv_us(ru.ru_utime), sys = tv_us(ru.ru_stime);
        (void)trifle_simple_writer_int(w, "cpu", cpu_percent(user + sys));
        (void)trifle_simple_writer_int(w, "user_in_ms", user / 1000);
        (void)trifle_simple_writer_int(w, "sys_in_ms", sys / 1000);
    }
    if (read_small("/proc/self/statm", buf, sizeof(buf)) == 0) {
        long page = sysconf(_SC_PAGESIZE);
        p = strchr(buf, ' ');
        if (p != NULL && page > 0 && parse_u64(p + 1, &v) == 0)
            (void)trifle_simple_writer_int(w, "mem", mul_sat((uint64_t)v, (uint64_t)page));
    }
    if (read_small("/proc/self/status", buf, sizeof(buf)) == 0 &&
        (p = strstr(buf, "\nThreads:")) != NULL && parse_u64(p + 9, &v) == 0)
        (void)trifle_simple_writer_int(w, "threads", v);
    if (payload != NULL) {
        trifle_simple_storage st = TRIFLE_SIMPLE_STORAGE_INIT;
        int rc = trifle_simple_storage_stats(&st, (const char *)payload, err);
        if (rc != 0)
            return rc;
        (void)trifle_simple_writer_int(w, "store", st.store);
    }
    return 0;
}

int trifle_simple_disk_provider(trifle_simple_writer *w, trifle_error *err, void *payload)
{
    trifle_simple_storage st = TRIFLE_SIMPLE_STORAGE_INIT;
    int rc = trifle_simple_storage_stats(&st, (const char *)payload, err);

    if (rc != 0)
        return rc;
    (void)trifle_simple_writer_int(w, "all", st.all);
    (void)trifle_simple_writer_int(w, "available", st.available);
    (void)trifle_simple_writer_int(w, "free", st.free);
    (void)trifle_simple_writer_int(w, "used", st.used);
    return 0;
}
