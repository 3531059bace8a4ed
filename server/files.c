/* /_local/files: list and delete files under data_dir (SPEC §10.7, ERRATA I18, minor 21).
 *
 * Confinement never compares strings: the `:file` segment is decoded once and checked, then
 * opened component by component with openat(O_NOFOLLOW) starting from a descriptor of data_dir
 * taken at start-up, so `..`, absolute paths and symlinks cannot lead outside (INFINI's prefix
 * check let `../<dir>_backup` escape). Removal is unlinkat() on the parent descriptor; files the
 * server holds open are recognised by (directory device and inode, name), never by text. */
#include "srv_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILES_MAX_DEPTH 32
#define FILE_PATH_MAX 1024

static void respond_errno(srv_request *r, int e)
{
    char reason[160];

    if (strerror_r(e, reason, sizeof(reason)) != 0)
        (void)snprintf(reason, sizeof(reason), "error %d", e);
    srv_respond_reason(r, 500, reason);
}

/* Rule 1: decode `:file` exactly once and check it. Returns the decoded path (free()) or NULL
 * after answering 400 `invalid path` (or 500 when out of memory). */
static char *decode_file(srv_request *r)
{
    size_t n, o = 0;
    const char *raw = srv_request_file(r, &n);
    char *p;
    const char *c;

    if (n > 3 * FILE_PATH_MAX) {
        srv_respond_reason(r, 400, "invalid path");
        return NULL;
    }
    if ((p = malloc(n + 1)) == NULL) {
        srv_respond_reason(r, 500, "out of memory");
        return NULL;
    }
    if (tu_pct_decode(p, &o, raw, n, 0) != TU_PCT_OK)
        goto invalid;
    if (o == 0 || o > FILE_PATH_MAX || memchr(p, '\0', o) != NULL || strchr(p, '\\') != NULL ||
        p[0] == '/' || !tu_utf8_valid(p, o))
        goto invalid;
    for (c = p;;) {
        const char *slash = strchr(c, '/');
        size_t len = slash != NULL ? (size_t)(slash - c) : strlen(c);
        if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
            goto invalid;
        if (slash == NULL)
            break;
        c = slash + 1;
    }
    return p;
invalid:
    free(p);
    srv_respond_reason(r, 400, "invalid path");
    return NULL;
}

/* Rule 2: open every directory on the way with O_NOFOLLOW | O_DIRECTORY. On success *parent is a
 * descriptor of the last directory (close it unless it is data_fd), *last the final name inside
 * @p path, and *st its lstat. Otherwise a response was queued. */
static int walk(srv_request *r, char *path, int *parent, const char **last, struct stat *st)
{
    srv_server *s = srv_request_server(r);
    int fd = s->data_fd, e = 0, link = 0;
    char *comp = path, *slash;

    while ((slash = strchr(comp, '/')) != NULL) {
        struct stat lst;
        int next;
        *slash = '\0';
        next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) {
            e = errno;
            link =
                e == ELOOP || (e == ENOTDIR && fstatat(fd, comp, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
                               S_ISLNK(lst.st_mode));
        }
        *slash = '/';
        if (next < 0)
            goto fail;
        if (fd != s->data_fd)
            close(fd);
        fd = next;
        comp = slash + 1;
    }
    if (fstatat(fd, comp, st, AT_SYMLINK_NOFOLLOW) != 0) {
        e = errno;
        goto fail;
    }
    if (S_ISLNK(st->st_mode)) {
        link = 1;
        goto fail;
    }
    *parent = fd;
    *last = comp;
    return 0;
fail:
    if (link)
        srv_respond_reason(r, 403, "symlinks are not followed");
    else if (e == ENOENT || e == ENOTDIR)
        srv_respond_reason(r, 404, "file not found");
    else
        respond_errno(r, e);
    if (fd != s->data_fd)
        close(fd);
    return -1;
}

/* ------------------------------------------------------------------------------------------- */
/* Listing                                                                                      */

typedef struct list_ctx {
    size_t entries;
    size_t max;
    int truncated;
    int failed;
    srv_pool *pool;
} list_ctx;

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in directory @p fd (not closed), sorted in byte order. */
static int read_names(int fd, char ***out, size_t *n_out)
{
    int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;

    *out = NULL;
    *n_out = 0;
    if (dfd < 0)
        return -1;
    if ((d = fdopendir(dfd)) == NULL) {
        close(dfd);
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            char **bigger;
            cap = cap ? cap * 2 : 16;
            if ((bigger = realloc(names, cap * sizeof(*names))) == NULL)
                goto fail;
            names = bigger;
        }
        if ((names[n] = strdup(de->d_name)) == NULL)
            goto fail;
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(*names), name_cmp);
    *out = names;
    *n_out = n;
    return 0;
fail:
    while (n-- > 0)
        free(names[n]);
    free(names);
    closedir(d);
    return -1;
}

static void free_names(char **names, size_t n)
{
    while (n-- > 0)
        free(names[n]);
    free(names);
}

static void put_children(list_ctx *c, srv_buf *out, int dirfd, int depth, uint64_t *total);

/* One entry of @p dirfd named @p name, appended to @p out; *size gets its size. */
static void put_entry(list_ctx *c, srv_buf *out, int dirfd, const char *name, int depth,
                      uint64_t *size)
{
    struct stat st;
    char when[40];
    int type;
    srv_buf kids;
    uint64_t sz = 0;

    *size = 0;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return; /* removed meanwhile */
    c->entries++;
    type = S_ISREG(st.st_mode) ? 0 : S_ISDIR(st.st_mode) ? 1 : 2;
    srv_buf_init(&kids, c->pool);
    if (type == 0) {
        sz = (uint64_t)st.st_size;
    } else if (type == 1 && depth < FILES_MAX_DEPTH) {
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            put_children(c, &kids, fd, depth + 1, &sz);
            close(fd);
        }
    }
    (void)trifle_time_format(when, sizeof(when), (int64_t)st.st_mtime, NULL);
    if (out->len > 0 && out->data[out->len - 1] != '[')
        srv_buf_putc(out, ',');
    srv_buf_puts(out, "{\"name\":");
    srv_buf_json_cstr(out, name);
    srv_buf_puts(out, ",\"type\":");
    srv_buf_int(out, type);
    srv_buf_puts(out, ",\"size\":");
    srv_buf_uint(out, sz);
    srv_buf_puts(out, ",\"create_time\":");
    srv_buf_json_cstr(out, when);
    srv_buf_puts(out, ",\"children\":");
    if (type == 1 && kids.data != NULL)
        srv_buf_append(out, kids.data, kids.len);
    else
        srv_buf_puts(out, "null");
    srv_buf_putc(out, '}');
    if (kids.failed)
        c->failed = 1;
    srv_buf_release(&kids);
    *size = sz;
}

/* `[<entry>,...]` for the children of @p dirfd; *total gets the sum of their sizes. */
static void put_children(list_ctx *c, srv_buf *out, int dirfd, int depth, uint64_t *total)
{
    char **names = NULL;
    size_t n = 0, i;

    *total = 0;
    srv_buf_putc(out, '[');
    if (read_names(dirfd, &names, &n) == 0) {
        for (i = 0; i < n; i++) {
            uint64_t sz;
            if (c->entries >= c->max) {
                c->truncated = 1;
                break;
            }
            put_entry(c, out, dirfd, names[i], depth, &sz);
            *total += sz;
        }
    }
    srv_buf_putc(out, ']');
    free_names(names, n);
}

void srv_files_list(srv_request *r, int whole)
{
    srv_server *s = srv_request_server(r);
    list_ctx c = {0, s->cfg->max_list_entries, 0, 0, &s->response_pool};
    srv_buf b;
    uint64_t total;

    srv_response_buf(r, &b);
    srv_buf_puts(&b, "{\"disk\":");
    if (whole) {
        put_children(&c, &b, s->data_fd, 1, &total);
    } else {
        char *path = decode_file(r);
        const char *last;
        struct stat st;
        int parent;
        if (path == NULL) {
            srv_buf_release(&b);
            return;
        }
        if (walk(r, path, &parent, &last, &st) != 0) {
            free(path);
            srv_buf_release(&b);
            return;
        }
        srv_buf_putc(&b, '[');
        put_entry(&c, &b, parent, last, 1, &total);
        srv_buf_putc(&b, ']');
        if (parent != s->data_fd)
            close(parent);
        free(path);
    }
    srv_buf_puts(&b, c.truncated ? ",\"truncated\":true}" : ",\"truncated\":false}");
    if (c.failed)
        b.failed = 1;
    srv_respond(r, 200, "application/json; charset=utf-8", &b);
}

/* ------------------------------------------------------------------------------------------- */
/* Deleting                                                                                     */

static int in_use(srv_server *s, int parent, const char *name)
{
    struct stat here, there;
    size_t i;

    if (fstat(parent, &here) != 0)
        return 1; /* cannot tell: refuse */
    for (i = 0; i < s->n_protected; i++) {
        const srv_protected *p = &s->protected_files[i];
        size_t n = strlen(name);
        if (strcmp(p->name, "*") == 0) {
            /* a journal directory: its files are in use, the `*.corrupt` files set aside not */
            if (n >= 8 && strcmp(name + n - 8, ".corrupt") == 0)
                continue;
        } else if (strcmp(p->name, name) != 0) {
            continue;
        }
        if (stat(p->dir, &there) == 0 && there.st_dev == here.st_dev && there.st_ino == here.st_ino)
            return 1;
    }
    return 0;
}

void srv_files_delete(srv_request *r)
{
    srv_server *s = srv_request_server(r);
    char *path = decode_file(r), *shown = NULL;
    const char *last;
    struct stat st;
    int parent;
    srv_buf b;

    if (path == NULL)
        return;
    if ((shown = strdup(path)) == NULL) {
        free(path);
        srv_respond_reason(r, 500, "out of memory");
        return;
    }
    if (walk(r, path, &parent, &last, &st) != 0)
        goto done;
    if (!S_ISREG(st.st_mode)) {
        srv_respond_reason(r, 400, "not a regular file");
    } else if (in_use(s, parent, last)) {
        srv_respond_reason(r, 409, "file in use");
    } else if (unlinkat(parent, last, 0) != 0) {
        respond_errno(r, errno);
    } else {
        srv_response_buf(r, &b);
        srv_buf_puts(&b, "{\"acknowledged\":true,\"file\":");
        srv_buf_json_cstr(&b, shown);
        srv_buf_putc(&b, '}');
        srv_respond(r, 200, "application/json; charset=utf-8", &b);
    }
    if (parent != s->data_fd)
        close(parent);
done:
    free(path);
    free(shown);
}
