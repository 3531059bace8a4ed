/* The Idempotency-Key store of POST /api/v1/metrics (docs/http-api.md, "Idempotency-Key").
 *
 * A write request may carry `Idempotency-Key: <token>`. The server remembers, per source and key,
 * how many of the request's calls it has applied and, once it answered, the status it answered;
 * a repeat of a finished request gets that status again and applies nothing, a repeat of an
 * interrupted one (the server died, or a store failed, after calls 0..k-1) applies only calls k
 * onwards, and a repeat that arrives while the first is still being applied gets 409.
 *
 * Durability. The records live in `<data_dir>/idempotency.log`, one text line per change:
 *
 *     <expires unix> <status> <applied> <total> <source id> <key>\n
 *
 * (status 0: not finished). A line is appended after every applied call, before the next one
 * starts (write(2), so a killed process loses none of them), and the final line of a request is
 * fdatasync'ed before the response is sent, so a key the client saw answered is never forgotten.
 * A write may also name itself (`"id"` in a batch element, the journal origin and seq of the call
 * that a client buffered): such an id is a key of one call, kept the same way, so a client that
 * replays its journal after a crash sends the same ids and nothing is applied twice.
 *
 * A crash between a call's write into the source and the progress line that follows it is
 * covered by the source's journal: the call is written with trifle_write_noted(), whose note
 * (`<applied> <total> <key>` per key) lands in the same journal record, with the same write(2).
 * When the server starts, the log is loaded first, then each source's trifle_open() replays its
 * journal and hands every note to srv_idem_noted(), which advances the keys and logs the change
 * before the replayed calls are stored; the journal keeps a record until it is stored, and the
 * log holds what older records said. Without a journal (buffer or journal off) the window stays,
 * as docs/http-api.md says. At start-up the log is read (the last line of a key wins, expired keys
 * are dropped) and rewritten compacted through a temporary file and a rename; the same happens
 * while running once the log holds several lines per live key.
 *
 * Keys expire idempotency.window_s seconds after their last change (default 86400). Threads: one
 * mutex guards the table and the file; file writes happen under it (one short write per call). */
#include "srv_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IDEM_FILE "idempotency.log"
#define IDEM_TMP "idempotency.log.tmp"
#define IDEM_LINE_MAX 512

typedef struct idem_entry {
    struct idem_entry *next; /* hash chain */
    char *id;                /* "<source>\n<key>" */
    int64_t expires;
    int status; /* 0: not finished */
    size_t applied, total;
    int busy; /* a request is applying it now */
} idem_entry;

struct srv_idem {
    pthread_mutex_t lock;
    idem_entry **tab;
    size_t cap; /* power of two */
    size_t n;
    int fd; /* the log, O_APPEND */
    int data_fd;
    int64_t window_s;
    size_t lines; /* lines in the log since it was last compacted */
};

static uint64_t idem_hash(const char *s)
{
    uint64_t h = 1469598103934665603u;

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211u;
    }
    return h;
}

static idem_entry **idem_slot(srv_idem *d, const char *id)
{
    idem_entry **p = &d->tab[idem_hash(id) & (d->cap - 1)];

    while (*p != NULL && strcmp((*p)->id, id) != 0)
        p = &(*p)->next;
    return p;
}

static int idem_grow(srv_idem *d)
{
    size_t cap = d->cap * 2, i;
    idem_entry **tab = calloc(cap, sizeof(*tab));

    if (tab == NULL)
        return -1;
    for (i = 0; i < d->cap; i++) {
        idem_entry *e = d->tab[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            e->next = tab[idem_hash(e->id) & (cap - 1)];
            tab[idem_hash(e->id) & (cap - 1)] = e;
        }
    }
    free(d->tab);
    d->tab = tab;
    d->cap = cap;
    return 0;
}

/* The entry of @p id, created when missing (NULL when out of memory). */
static idem_entry *idem_get(srv_idem *d, const char *id, int create)
{
    idem_entry **p = idem_slot(d, id), *e;

    if (*p != NULL || !create)
        return *p;
    if (d->n + 1 > d->cap / 2 * 3 && idem_grow(d) == 0)
        p = idem_slot(d, id);
    if ((e = calloc(1, sizeof(*e))) == NULL || (e->id = strdup(id)) == NULL) {
        free(e);
        return NULL;
    }
    *p = e;
    d->n++;
    return e;
}

static void idem_remove(srv_idem *d, const char *id)
{
    idem_entry **p = idem_slot(d, id), *e = *p;

    if (e == NULL)
        return;
    *p = e->next;
    free(e->id);
    free(e);
    d->n--;
}

/* "<source>\n<key>" into out (the caller checked the lengths). */
static void idem_id(char *out, size_t size, const char *source, const char *key)
{
    (void)snprintf(out, size, "%s\n%s", source, key);
}

/* One log line for e. */
static int idem_line(char *out, size_t size, const idem_entry *e)
{
    const char *nl = strchr(e->id, '\n');

    return snprintf(out, size, "%" PRId64 " %d %zu %zu %.*s %s\n", e->expires, e->status,
                    e->applied, e->total, (int)(nl - e->id), e->id, nl + 1);
}

static int idem_compact(srv_idem *d);

static int idem_append(srv_idem *d, const idem_entry *e, int sync)
{
    char line[IDEM_LINE_MAX];
    int n = idem_line(line, sizeof(line), e);

    if (n <= 0 || (size_t)n >= sizeof(line) || srv_write_all(d->fd, line, (size_t)n) != 0)
        return -1;
    d->lines++;
    return sync ? fdatasync(d->fd) : 0;
}

/* Drop the expired keys that are not in use. Caller holds the lock. */
static void idem_purge(srv_idem *d, int64_t now)
{
    size_t i;

    for (i = 0; i < d->cap; i++) {
        idem_entry **p = &d->tab[i];
        while (*p != NULL) {
            idem_entry *e = *p;
            if (!e->busy && e->expires <= now) {
                *p = e->next;
                free(e->id);
                free(e);
                d->n--;
            } else {
                p = &e->next;
            }
        }
    }
}

/* A log that has grown to several lines per live key (every write appends one or two) is
 * rewritten with the live keys only, expired ones dropped; the running server so keeps the file
 * and the table in proportion to the keys of one window. Caller holds the lock. */
static void idem_maybe_compact(srv_idem *d)
{
    int old = d->fd;

    if (d->lines < 4 * d->n + 65536)
        return;
    idem_purge(d, srv_now());
    if (idem_compact(d) != 0) {
        srv_log(TRIFLE_LOG_ERROR, "idempotency: cannot compact the log: %s", strerror(errno));
        if (d->fd < 0)
            d->fd = old;
        return;
    }
    close(old);
}

/* Read the log (a missing file is empty): the last line of a key wins. Malformed lines (a torn
 * last line after a crash) are skipped. */
static int idem_load(srv_idem *d, int64_t now)
{
    char line[IDEM_LINE_MAX];
    FILE *f;
    int fd = openat(d->data_fd, IDEM_FILE, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    if ((f = fdopen(fd, "r")) == NULL) {
        close(fd);
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char source[80], key[300], id[400];
        long long expires;
        int status;
        size_t applied, total;
        idem_entry *e;

        /* written by idem_append() of this process; a line short of its six fields is skipped */
        // NOLINTNEXTLINE(cert-err34-c): the field count is the check
        if (strchr(line, '\n') == NULL || sscanf(line, "%lld %d %zu %zu %79s %299s", &expires,
                                                 &status, &applied, &total, source, key) != 6)
            continue;
        idem_id(id, sizeof(id), source, key);
        if ((int64_t)expires <= now) {
            idem_remove(d, id);
            continue;
        }
        if ((e = idem_get(d, id, 1)) == NULL) {
            (void)fclose(f);
            return -1;
        }
        e->expires = (int64_t)expires;
        e->status = status;
        e->applied = applied;
        e->total = total;
    }
    (void)fclose(f);
    return 0;
}

/* Rewrite the log with the live entries only, then open it for appending. */
static int idem_compact(srv_idem *d)
{
    char line[IDEM_LINE_MAX];
    size_t i, lines = 0;
    int fd = openat(d->data_fd, IDEM_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0)
        return -1;
    for (i = 0; i < d->cap; i++) {
        const idem_entry *e;
        for (e = d->tab[i]; e != NULL; e = e->next) {
            int n = idem_line(line, sizeof(line), e);
            if (n <= 0 || (size_t)n >= sizeof(line) || srv_write_all(fd, line, (size_t)n) != 0) {
                close(fd);
                return -1;
            }
            lines++;
        }
    }
    if (fsync(fd) != 0 || close(fd) != 0 ||
        renameat(d->data_fd, IDEM_TMP, d->data_fd, IDEM_FILE) != 0 || fsync(d->data_fd) != 0)
        return -1;
    d->fd = openat(d->data_fd, IDEM_FILE, O_WRONLY | O_APPEND | O_CLOEXEC);
    d->lines = lines;
    return d->fd < 0 ? -1 : 0;
}

int srv_idem_open(srv_idem **out, int data_fd, const char *data_dir, int64_t window_s,
                  trifle_error *err)
{
    srv_idem *d = calloc(1, sizeof(*d));
    char reason[128];

    *out = NULL;
    if (d == NULL || (d->tab = calloc(64, sizeof(*d->tab))) == NULL) {
        free(d);
        return srv_error(err, TRIFLE_ENOMEM, "out of memory");
    }
    d->cap = 64;
    d->fd = -1;
    d->data_fd = data_fd;
    d->window_s = window_s;
    if (pthread_mutex_init(&d->lock, NULL) != 0) {
        free(d->tab);
        free(d);
        return srv_error(err, TRIFLE_ENOMEM, "cannot create a mutex");
    }
    if (idem_load(d, srv_now()) != 0 || idem_compact(d) != 0) {
        if (strerror_r(errno, reason, sizeof(reason)) != 0)
            (void)snprintf(reason, sizeof(reason), "error %d", errno);
        srv_idem_close(d);
        return srv_error(err, TRIFLE_EIO, "data_dir: %s/%s: %s", data_dir, IDEM_FILE, reason);
    }
    *out = d;
    return 0;
}

void srv_idem_close(srv_idem *d)
{
    size_t i;

    if (d == NULL)
        return;
    for (i = 0; i < d->cap; i++) {
        idem_entry *e = d->tab[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            free(e->id);
            free(e);
        }
    }
    if (d->fd >= 0)
        close(d->fd);
    pthread_mutex_destroy(&d->lock);
    free(d->tab);
    free(d);
}

int srv_idem_key_ok(const char *key)
{
    size_t n = 0;

    if (key == NULL)
        return 0;
    for (; key[n] != '\0'; n++)
        if ((unsigned char)key[n] <= 0x20 || (unsigned char)key[n] >= 0x7f)
            return 0;
    return n >= 1 && n <= 255;
}

int srv_idem_begin(srv_idem *d, const char *source, const char *key, size_t total, int *status,
                   size_t *applied)
{
    char id[400];
    idem_entry *e;
    int64_t now = srv_now();
    int rc;

    *status = 0;
    *applied = 0;
    idem_id(id, sizeof(id), source, key);
    pthread_mutex_lock(&d->lock);
    e = idem_get(d, id, 0);
    if (e != NULL && e->expires <= now && !e->busy) {
        idem_remove(d, id);
        e = NULL;
    }
    if (e == NULL) {
        if ((e = idem_get(d, id, 1)) == NULL) {
            rc = SRV_IDEM_NOMEM;
            goto done;
        }
        e->total = total;
        e->expires = now + d->window_s;
        e->busy = 1;
        rc = SRV_IDEM_NEW;
    } else if (e->busy) {
        rc = SRV_IDEM_BUSY;
    } else if (e->total != total) {
        rc = SRV_IDEM_MISMATCH;
    } else if (e->status != 0) {
        *status = e->status;
        *applied = e->applied;
        rc = SRV_IDEM_REPLAY;
    } else {
        *applied = e->applied;
        e->busy = 1;
        rc = SRV_IDEM_RESUME;
    }
done:
    pthread_mutex_unlock(&d->lock);
    return rc;
}

int srv_idem_progress(srv_idem *d, const char *source, const char *key, size_t applied)
{
    char id[400];
    idem_entry *e;
    int rc = -1;

    idem_id(id, sizeof(id), source, key);
    pthread_mutex_lock(&d->lock);
    if ((e = idem_get(d, id, 0)) != NULL) {
        e->applied = applied;
        e->expires = srv_now() + d->window_s;
        rc = idem_append(d, e, 0);
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

int srv_idem_sync(srv_idem *d)
{
    int rc;

    pthread_mutex_lock(&d->lock);
    rc = fdatasync(d->fd);
    pthread_mutex_unlock(&d->lock);
    return rc;
}

int srv_idem_end(srv_idem *d, const char *source, const char *key, int status, size_t applied,
                 int sync)
{
    char id[400];
    idem_entry *e;
    int rc = 0;

    idem_id(id, sizeof(id), source, key);
    pthread_mutex_lock(&d->lock);
    if ((e = idem_get(d, id, 0)) != NULL) {
        e->busy = 0;
        if (applied == 0 && !(status >= 200 && status < 300)) {
            /* nothing applied (refused, or a store failure on the first call): forget the key,
             * so the request may be sent again as new; the log says so too */
            e->status = 0;
            e->expires = 0;
            rc = idem_append(d, e, 0);
            idem_remove(d, id);
        } else {
            /* finished (2xx), or stopped after `applied` calls: a repeat resumes from there */
            e->status = status >= 200 && status < 300 ? status : 0;
            e->applied = applied;
            e->expires = srv_now() + d->window_s;
            rc = idem_append(d, e, sync);
        }
    }
    if (rc == 0)
        idem_maybe_compact(d);
    pthread_mutex_unlock(&d->lock);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Notes in the source journals */

int srv_idem_note_put(char *note, size_t size, size_t *len, size_t applied, size_t total,
                      const char *key)
{
    int n;

    if (!srv_idem_key_ok(key) || applied == 0 || applied > total || *len >= size)
        return -1;
    n = snprintf(note + *len, size - *len, "%zu %zu %s\n", applied, total, key);
    if (n < 0 || (size_t)n >= size - *len)
        return -1;
    *len += (size_t)n;
    return 0;
}

/* A decimal count without sign or leading zeros, in [1, SIZE_MAX / 2]. */
static int note_count(const char *p, size_t n, size_t *out)
{
    size_t v = 0, i;

    if (n == 0 || n > 19 || p[0] == '0')
        return -1;
    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (size_t)(p[i] - '0');
    }
    if (v > SIZE_MAX / 2)
        return -1;
    *out = v;
    return 0;
}

int srv_idem_note_walk(const void *note, size_t len, srv_idem_note_fn fn, void *ctx)
{
    const char *p = note, *end = p + len;
    int bad = 0, rc;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *sp1, *sp2;
        char key[256];
        size_t applied, total, klen;

        if (nl == NULL) {
            bad++; /* a line without its end */
            break;
        }
        sp1 = memchr(p, ' ', (size_t)(nl - p));
        sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', (size_t)(nl - sp1 - 1)) : NULL;
        klen = sp2 != NULL ? (size_t)(nl - sp2 - 1) : 0;
        if (sp2 == NULL || note_count(p, (size_t)(sp1 - p), &applied) != 0 ||
            note_count(sp1 + 1, (size_t)(sp2 - sp1 - 1), &total) != 0 || applied > total ||
            klen == 0 || klen >= sizeof(key)) {
            bad++;
            p = nl + 1;
            continue;
        }
        memcpy(key, sp2 + 1, klen);
        key[klen] = '\0';
        if (strlen(key) != klen || !srv_idem_key_ok(key)) {
            bad++;
            p = nl + 1;
            continue;
        }
        if ((rc = fn(ctx, applied, total, key)) != 0)
            return rc;
        p = nl + 1;
    }
    return bad;
}

typedef struct noted_ctx {
    srv_idem *d;
    const char *source;
    int64_t now;
} noted_ctx;

/* One key of a replayed note. Caller holds the lock. */
static int noted_key(void *vctx, size_t applied, size_t total, const char *key)
{
    noted_ctx *x = vctx;
    char id[400];
    idem_entry *e;

    idem_id(id, sizeof(id), x->source, key);
    if ((e = idem_get(x->d, id, 1)) == NULL)
        return TRIFLE_ENOMEM;
    if (e->status != 0)
        return 0; /* finished: the log knew it already */
    if (e->total != 0 && e->total != total && e->applied > 0)
        return 0; /* another request under the same key: the log's record stands */
    if (e->total == total && e->applied >= applied)
        return 0; /* the log knew it already */
    e->total = total;
    e->applied = applied;
    e->status = applied == total ? 201 : 0; /* every call applied: the answer was a 201 */
    e->expires = x->now + x->d->window_s;
    return idem_append(x->d, e, 0) != 0 ? TRIFLE_EIO : 0;
}

int srv_idem_noted(srv_idem *d, const char *source, const void *note, size_t len)
{
    noted_ctx x = {d, source, srv_now()};
    int rc;

    pthread_mutex_lock(&d->lock);
    rc = srv_idem_note_walk(note, len, noted_key, &x);
    pthread_mutex_unlock(&d->lock);
    if (rc > 0) {
        srv_log(TRIFLE_LOG_WARN, "source %s: idempotency: %d malformed line%s in a journal note",
                source, rc, rc == 1 ? "" : "s");
        rc = 0;
    }
    return rc;
}
