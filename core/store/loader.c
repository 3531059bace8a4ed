/* The plugin loader (SPEC §7.1, ERRATA I13/I14, STYLE §6 "Loader" and "When versions differ").
 *
 * A driver is found by name in, in order: the caller's driver_path, TRIFLE_DRIVER_PATH, the
 * directories registered with trifle_driver_dir_add() (the CLI and the conformance runner add the
 * build tree this way, so the installed library never looks there), then the installed plugin
 * directory TRIFLE_PLUGIN_DIR. An argument with a '/' is a file. Only regular files load.
 *
 * dlopen(RTLD_NOW | RTLD_LOCAL): NOW so a missing client-library symbol fails here and not in the
 * middle of a write; LOCAL so two drivers' dependencies never meet. The entry symbol is called once
 * per loaded file under the loader mutex (the place for mongoc_init()), and every check of the
 * returned table that fails is TRIFLE_EABI naming the field. The core then copies
 * min(struct_size, sizeof) bytes into a zeroed table it owns and only ever calls through that
 * copy, so members appended after the driver was built read as NULL. A failing entry (its init
 * hook, ABI 1.3) fails the load with the entry's own code and message.
 *
 * Loaded drivers stay until trifle_shutdown(), which calls each one's unload hook (ABI 1.3) and
 * then dlclose()s it (never with TRIFLE_NO_DLCLOSE=1, so valgrind and ASan can still symbolise
 * plugin frames). */
#include "loader_int.h"

#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc_int.h"
#include "buf_int.h"
#include "error_int.h"
#include "numfmt_int.h"
#include "sink_int.h"
#include "trifle/storage.h"

#ifndef TRIFLE_PLUGIN_DIR
#define TRIFLE_PLUGIN_DIR "/usr/local/lib/trifle-1"
#endif

#define FILE_PREFIX "trifle_"
#define FILE_SUFFIX ".so"
#define PATH_CAP 4096

/* ---------------------------------------------------------------------------------------------
 * Host API: what a driver may call. */

static void host_error_set(trifle_error *err, int code, int native, const char *fmt, ...)
    TRIFLE_PRINTF(4, 5);
static void host_log(int level, const char *driver, const char *fmt, ...) TRIFLE_PRINTF(3, 4);

static void host_error_set(trifle_error *err, int code, int native, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || fmt == NULL) {
        if (err != NULL)
            (void)trifle__error(err, code, "%s", trifle_strerror(code));
        return;
    }
    va_start(ap, fmt);
    (void)trifle__verror(err, code, native, fmt, ap);
    va_end(ap);
}

static void host_log(int level, const char *driver, const char *fmt, ...)
{
    va_list ap;

    if (fmt == NULL)
        return;
    va_start(ap, fmt);
    trifle__vlog(level, driver != NULL ? driver : "driver", fmt, ap);
    va_end(ap);
}

static int host_parse_double(const char *text, size_t len, double *out)
{
    if (text == NULL || out == NULL)
        return TRIFLE_EINVAL;
    return trifle__parse_double(text, len, out) == 0 ? 0 : TRIFLE_EINVAL;
}

static const trifle_host_api host_api = {
    .abi_major = TRIFLE_DRIVER_ABI_MAJOR,
    .abi_minor = TRIFLE_DRIVER_ABI_MINOR,
    .struct_size = sizeof(trifle_host_api),
    .alloc = trifle__malloc,
    .realloc = trifle__realloc,
    .free = trifle__free,
    .error_set = host_error_set,
    .log = host_log,
    .emit = trifle__sink_emit,
    .format_double = trifle__fmt_double,
    .parse_double = host_parse_double,
};

const trifle_host_api *trifle__host_api(void)
{
    return &host_api;
}

/* ---------------------------------------------------------------------------------------------
 * State, all behind loader_lock. */

typedef struct loaded_driver {
    struct loaded_driver *next;
    char *name;
    char *path;
    dev_t dev;
    ino_t ino;
    void *handle;
    trifle_driver table; /* the core's validated copy; drivers are only called through it */
} loaded_driver;

typedef struct dir_list {
    char **dirs;
    size_t n, cap;
} dir_list;

/* A variable, not the macro: with minor 0 the comparison below is constant and compilers warn. */
static const uint32_t core_minor = TRIFLE_DRIVER_ABI_MINOR;

static pthread_mutex_t loader_lock = PTHREAD_MUTEX_INITIALIZER;
static loaded_driver *loaded;
static dir_list added_dirs; /* trifle_driver_dir_add() */

int trifle__driver_name_valid(const char *name)
{
    size_t i;

    if (name == NULL || !(name[0] >= 'a' && name[0] <= 'z'))
        return 0;
    for (i = 1; name[i] != '\0'; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '_'))
            return 0;
    return i <= 63;
}

static void dirs_free(dir_list *l)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        trifle__free(l->dirs[i]);
    trifle__free(l->dirs);
    memset(l, 0, sizeof(*l));
}

/* Append dir[0..n) unless empty or already listed. 0 or TRIFLE_ENOMEM. */
static int dirs_push(dir_list *l, const char *dir, size_t n)
{
    char **grown;
    size_t i;

    while (n > 1 && dir[n - 1] == '/')
        n--; /* "plugins/" and "plugins" are one directory */
    if (n == 0)
        return 0;
    for (i = 0; i < l->n; i++)
        if (strlen(l->dirs[i]) == n && memcmp(l->dirs[i], dir, n) == 0)
            return 0;
    if (l->n == l->cap) {
        size_t ncap = l->cap == 0 ? 8 : 2 * l->cap;
        if ((grown = trifle__reallocarray(l->dirs, ncap, sizeof(*grown))) == NULL)
            return TRIFLE_ENOMEM;
        l->dirs = grown;
        l->cap = ncap;
    }
    if ((l->dirs[l->n] = trifle__strndup(dir, n)) == NULL)
        return TRIFLE_ENOMEM;
    l->n++;
    return 0;
}

/* Append each directory of a colon-separated list (empty entries are skipped). */
static int dirs_split(dir_list *l, const char *list)
{
    size_t n;
    int rc;

    if (list == NULL)
        return 0;
    for (;; list += n + 1) {
        n = strcspn(list, ":");
        if ((rc = dirs_push(l, list, n)) != 0)
            return rc;
        if (list[n] == '\0')
            return 0;
    }
}

/* The search path in order; the caller holds loader_lock. */
static int dirs_build(dir_list *l, const char *driver_path)
{
    size_t i;
    int rc;

    memset(l, 0, sizeof(*l));
    if ((rc = dirs_split(l, driver_path)) != 0 ||
        (rc = dirs_split(l, getenv("TRIFLE_DRIVER_PATH"))) != 0)
        goto fail;
    for (i = 0; i < added_dirs.n; i++)
        if ((rc = dirs_push(l, added_dirs.dirs[i], strlen(added_dirs.dirs[i]))) != 0)
            goto fail;
    if ((rc = dirs_push(l, TRIFLE_PLUGIN_DIR, strlen(TRIFLE_PLUGIN_DIR))) != 0)
        goto fail;
    return 0;
fail:
    dirs_free(l);
    return rc;
}

/* "<dir>/trifle_<name>.so" into buf; 0, or -1 when it does not fit. */
static int plugin_file(char *buf, size_t size, const char *dir, const char *name)
{
    int n = snprintf(buf, size, "%s/" FILE_PREFIX "%s" FILE_SUFFIX, dir, name);

    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* First regular file trifle_<name>.so in the search path, into path. 0 or -1. */
static int find_file(const dir_list *l, const char *name, char *path, size_t size)
{
    struct stat sb;
    size_t i;

    for (i = 0; i < l->n; i++)
        if (plugin_file(path, size, l->dirs[i], name) == 0 && stat(path, &sb) == 0 &&
            S_ISREG(sb.st_mode))
            return 0;
    return -1;
}

static int no_dlclose(void)
{
    const char *v = getenv("TRIFLE_NO_DLCLOSE");

    return v != NULL && strcmp(v, "1") == 0;
}

/* Forget a driver: its unload hook (ABI 1.3; NULL for older tables), then dlclose. table is the
 * core's copy, or NULL when the entry never returned one. Caller holds loader_lock. */
static void unload(const trifle_driver *table, void *handle)
{
    if (table != NULL && table->unload != NULL)
        table->unload();
    if (handle != NULL && !no_dlclose())
        (void)dlclose(handle);
}

/* The code a failed entry returned, when it is a trifle_status; anything else is TRIFLE_EABI. */
static int entry_code(int rc)
{
    return rc < 0 && rc >= TRIFLE_EIO ? rc : TRIFLE_EABI;
}

static loaded_driver *find_loaded_name(const char *name)
{
    loaded_driver *d;

    for (d = loaded; d != NULL; d = d->next)
        if (strcmp(d->name, name) == 0)
            return d;
    return NULL;
}

/* Check the table a driver's entry returned and copy it into *copy (zeroed first). */
static int check_table(trifle_driver *copy, const char *name, const trifle_driver *t,
                       trifle_error *err)
{
    static const struct {
        const char *field;
        size_t offset;
    } required[] = {
        {"close", offsetof(trifle_driver, close)}, {"setup", offsetof(trifle_driver, setup)},
        {"inc", offsetof(trifle_driver, inc)},     {"set", offsetof(trifle_driver, set)},
        {"get", offsetof(trifle_driver, get)},
    };
    void (*member)(void);
    size_t i, n;

    memset(copy, 0, sizeof(*copy));
    if (t->abi_major != TRIFLE_DRIVER_ABI_MAJOR)
        return trifle__error(err, TRIFLE_EABI, "driver %s: ABI %u.%u not supported", name,
                             (unsigned)t->abi_major, (unsigned)t->abi_minor);
    if (t->abi_minor > TRIFLE_DRIVER_ABI_MINOR)
        return trifle__error(err, TRIFLE_EABI,
                             "driver %s: ABI %u.%u not supported (this libtrifle has ABI %d.%d: "
                             "upgrade libtrifle)",
                             name, (unsigned)t->abi_major, (unsigned)t->abi_minor,
                             TRIFLE_DRIVER_ABI_MAJOR, TRIFLE_DRIVER_ABI_MINOR);
    if (t->struct_size < TRIFLE__DRIVER_SIZE_1_0)
        return trifle__error(err, TRIFLE_EABI, "driver %s: struct_size %zu too small", name,
                             t->struct_size);
    n = t->struct_size < sizeof(*copy) ? t->struct_size : sizeof(*copy);
    memcpy(copy, t, n);
    if (copy->name == NULL)
        return trifle__error(err, TRIFLE_EABI, "driver %s: name is NULL", name);
    if (strcmp(copy->name, name) != 0)
        return trifle__error(err, TRIFLE_EABI, "driver %s: name \"%s\" does not match", name,
                             copy->name);
    if (copy->version == NULL || copy->version[0] == '\0')
        return trifle__error(err, TRIFLE_EABI, "driver %s: version is %s", name,
                             copy->version == NULL ? "NULL" : "empty");
    if (copy->open == NULL && copy->open_params == NULL)
        return trifle__error(err, TRIFLE_EABI,
                             "driver %s: required member open is NULL (and so is open_params)",
                             name);
    for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        memcpy(&member, (const char *)copy + required[i].offset, sizeof(member));
        if (member == NULL)
            return trifle__error(err, TRIFLE_EABI, "driver %s: required member %s is NULL", name,
                                 required[i].field);
    }
    if ((copy->caps & TRIFLE_CAP_PING) != 0 && (copy->ping == NULL || copy->scan == NULL))
        return trifle__error(err, TRIFLE_EABI,
                             "driver %s: required member %s is NULL (TRIFLE_CAP_PING is declared)",
                             name, copy->ping == NULL ? "ping" : "scan");
    if ((copy->caps & TRIFLE_CAP_JOURNAL_MARK) != 0 &&
        (copy->write_marked == NULL || copy->mark_read == NULL))
        return trifle__error(
            err, TRIFLE_EABI,
            "driver %s: required member %s is NULL (TRIFLE_CAP_JOURNAL_MARK is declared)", name,
            copy->write_marked == NULL ? "write_marked" : "mark_read");
    if ((copy->caps & TRIFLE_CAP_CALLS) != 0 && copy->calls == NULL)
        return trifle__error(
            err, TRIFLE_EABI,
            "driver %s: required member calls is NULL (TRIFLE_CAP_CALLS is declared)", name);
    if (copy->abi_minor < 4)
        copy->caps &= ~(uint64_t)TRIFLE_CAP_QUERY; /* bit 9 meant nothing before ABI 1.4 */
    if ((copy->caps & TRIFLE_CAP_QUERY) != 0 && copy->query == NULL)
        return trifle__error(
            err, TRIFLE_EABI,
            "driver %s: required member query is NULL (TRIFLE_CAP_QUERY is declared)", name);
    if (copy->abi_minor < core_minor)
        trifle__log(TRIFLE_LOG_INFO, "core",
                    "driver %s: built for ABI %u.%u, members added since then are unavailable",
                    name, (unsigned)copy->abi_major, (unsigned)copy->abi_minor);
    return 0;
}

/* The message of a failed dlopen: dlerror() usually starts with the path, which we print once. */
static int dlopen_error(trifle_error *err, const char *name, const char *path)
{
    const char *msg = dlerror();
    size_t n = strlen(path);

    if (msg == NULL)
        msg = "cannot load";
    if (strncmp(msg, path, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
        msg += n + 2;
    return trifle__error(err, TRIFLE_EABI, "driver %s: %s: %s (check with ldd)", name, path, msg);
}

/* Load the file at path as driver `name`, or find it already loaded. Caller holds loader_lock. */
static int load_file(const trifle_driver **out, const char *name, const char *path,
                     trifle_error *err)
{
    char symbol[128];
    struct stat sb;
    loaded_driver *d, *node = NULL;
    void *handle = NULL, *sym;
    trifle_driver_init_fn init;
    const trifle_driver *table = NULL, *unloading = NULL;
    trifle_error ierr = TRIFLE_ERROR_INIT;
    int rc;

    *out = NULL; /* on every failure, so no caller reads an unset table */
    if (stat(path, &sb) != 0)
        return trifle__error(err, TRIFLE_ENOTFOUND, "driver %s not found (searched: %s)", name,
                             path);
    if (!S_ISREG(sb.st_mode))
        return trifle__error(err, TRIFLE_ENOTFOUND, "driver %s: %s is not a regular file", name,
                             path);
    for (d = loaded; d != NULL; d = d->next) {
        if (d->dev == sb.st_dev && d->ino == sb.st_ino) {
            if (strcmp(d->name, name) != 0)
                return trifle__error(err, TRIFLE_EABI, "driver %s: name \"%s\" does not match",
                                     name, d->name);
            *out = &d->table;
            return 0;
        }
    }
    (void)dlerror();
    if ((handle = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL)
        return dlopen_error(err, name, path);
    (void)snprintf(symbol, sizeof(symbol), "trifle_driver_%s_init", name);
    if ((sym = dlsym(handle, symbol)) == NULL) {
        rc = trifle__error(err, TRIFLE_EABI, "driver %s: entry symbol %s not found", name, symbol);
        goto fail;
    }
    memcpy(&init, &sym, sizeof(init)); /* POSIX: dlsym results convert to function pointers */
    /* Allocate before the entry runs, so that after its init hook only a refused table can fail
     * the load, and that failure can call the table's unload hook. */
    if ((node = trifle__calloc(1, sizeof(*node))) == NULL ||
        (node->name = trifle__strdup(name)) == NULL ||
        (node->path = trifle__strdup(path)) == NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = init(&host_api, &table, &ierr)) != 0) {
        rc = trifle__error(err, entry_code(rc), "driver %s: %s failed: %s", name, symbol,
                           ierr.message[0] != '\0' ? ierr.message : trifle_strerror(rc));
        goto fail;
    }
    if (table == NULL) {
        rc = trifle__error(err, TRIFLE_EABI, "driver %s: %s returned no table", name, symbol);
        goto fail;
    }
    if ((rc = check_table(&node->table, name, table, err)) != 0) {
        unloading = &node->table; /* the entry's init hook ran: undo it */
        goto fail;
    }
    node->dev = sb.st_dev;
    node->ino = sb.st_ino;
    node->handle = handle;
    node->next = loaded;
    loaded = node;
    trifle__log(TRIFLE_LOG_INFO, "core", "loaded driver %s %s (ABI %u.%u) from %s", name,
                node->table.version, (unsigned)node->table.abi_major,
                (unsigned)node->table.abi_minor, path);
    *out = &node->table;
    return 0;
fail:
    unload(unloading, handle);
    if (node != NULL) {
        trifle__free(node->name);
        trifle__free(node->path);
        trifle__free(node);
    }
    return rc;
}

/* Split ".../trifle_<name>.so" into name (>= 64 bytes). 0 or -1. */
static int name_from_path(char *name, const char *path)
{
    const char *base = strrchr(path, '/');
    size_t n, pre = strlen(FILE_PREFIX), suf = strlen(FILE_SUFFIX);

    base = base != NULL ? base + 1 : path;
    n = strlen(base);
    if (n <= pre + suf || n - pre - suf > 63 || strncmp(base, FILE_PREFIX, pre) != 0 ||
        strcmp(base + n - suf, FILE_SUFFIX) != 0)
        return -1;
    memcpy(name, base + pre, n - pre - suf);
    name[n - pre - suf] = '\0';
    return trifle__driver_name_valid(name) ? 0 : -1;
}

static int not_found(trifle_error *err, const char *name, const dir_list *l)
{
    trifle__buf b = TRIFLE__BUF_INIT;
    size_t i;
    int rc;

    for (i = 0; i < l->n; i++) {
        if (i > 0)
            trifle__buf_puts(&b, ", ");
        trifle__buf_puts(&b, l->dirs[i]);
    }
    if (trifle__buf_failed(&b))
        rc = trifle__error(err, TRIFLE_ENOTFOUND, "driver %s not found", name);
    else
        rc = trifle__error(err, TRIFLE_ENOTFOUND, "driver %s not found (searched: %s)", name,
                           b.data != NULL ? b.data : "");
    trifle__buf_free(&b);
    return rc;
}

static int load_locked(const trifle_driver **out, const char *name_or_path, const char *driver_path,
                       trifle_error *err)
{
    char name[64], *path = NULL;
    loaded_driver *d;
    dir_list l;
    int rc;

    if (strchr(name_or_path, '/') != NULL) {
        if (name_from_path(name, name_or_path) != 0)
            return trifle__error(err, TRIFLE_ECONFIG,
                                 "invalid driver file name: %s (expected trifle_<name>.so)",
                                 name_or_path);
        return load_file(out, name, name_or_path, err);
    }
    if (!trifle__driver_name_valid(name_or_path))
        return trifle__error(err, TRIFLE_ECONFIG, "invalid driver name: %s", name_or_path);
    if ((d = find_loaded_name(name_or_path)) != NULL) {
        *out = &d->table;
        return 0;
    }
    if ((rc = dirs_build(&l, driver_path)) != 0)
        return trifle__error(err, rc, "out of memory");
    if ((path = trifle__malloc(PATH_CAP)) == NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    if (find_file(&l, name_or_path, path, PATH_CAP) != 0)
        rc = not_found(err, name_or_path, &l);
    else
        rc = load_file(out, name_or_path, path, err);
done:
    trifle__free(path);
    dirs_free(&l);
    return rc;
}

int trifle_driver_load(const trifle_driver **out, const char *name_or_path, const char *driver_path,
                       trifle_error *err)
{
    int rc;

    if (out == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: out is NULL");
    *out = NULL;
    if (name_or_path == NULL || name_or_path[0] == '\0')
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: driver name is empty");
    (void)pthread_mutex_lock(&loader_lock);
    rc = load_locked(out, name_or_path, driver_path, err);
    (void)pthread_mutex_unlock(&loader_lock);
    return rc;
}

int trifle__driver_exists(const char *name, const char *driver_path)
{
    char *path = NULL;
    dir_list l;
    int found;

    if (!trifle__driver_name_valid(name))
        return 0;
    (void)pthread_mutex_lock(&loader_lock);
    if (find_loaded_name(name) != NULL) {
        found = 1;
    } else if (dirs_build(&l, driver_path) != 0) {
        found = TRIFLE_ENOMEM;
    } else {
        if ((path = trifle__malloc(PATH_CAP)) == NULL)
            found = TRIFLE_ENOMEM;
        else
            found = find_file(&l, name, path, PATH_CAP) == 0;
        trifle__free(path);
        dirs_free(&l);
    }
    (void)pthread_mutex_unlock(&loader_lock);
    return found;
}

int trifle_driver_dir_add(const char *dir, trifle_error *err)
{
    int rc;

    if (dir == NULL || dir[0] == '\0')
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: plugin directory is empty");
    (void)pthread_mutex_lock(&loader_lock);
    rc = dirs_push(&added_dirs, dir, strlen(dir));
    (void)pthread_mutex_unlock(&loader_lock);
    return rc != 0 ? trifle__error(err, rc, "out of memory") : 0;
}

void trifle_shutdown(void)
{
    loaded_driver *d, *next;

    (void)pthread_mutex_lock(&loader_lock);
    for (d = loaded; d != NULL; d = next) {
        next = d->next;
        unload(&d->table, d->handle);
        trifle__free(d->name);
        trifle__free(d->path);
        trifle__free(d);
    }
    loaded = NULL;
    dirs_free(&added_dirs);
    (void)pthread_mutex_unlock(&loader_lock);
}

/* ---------------------------------------------------------------------------------------------
 * trifle_plugins_list */

typedef struct candidate {
    char *name;
    char *path;
} candidate;

static int candidate_cmp(const void *a, const void *b)
{
    return strcmp(((const candidate *)a)->name, ((const candidate *)b)->name);
}

/* Add every trifle_<name>.so regular file of dir whose name is not taken yet. */
static int scan_dir(candidate **c, size_t *n, size_t *cap, const char *dir)
{
    char name[64], path[PATH_CAP];
    struct dirent *e;
    struct stat sb;
    candidate *grown;
    size_t i;
    DIR *d;
    int rc = 0;

    if ((d = opendir(dir)) == NULL)
        return 0; /* a missing directory in a search path is not an error */
    while ((e = readdir(d)) != NULL) {
        if (name_from_path(name, e->d_name) != 0 || plugin_file(path, sizeof(path), dir, name))
            continue;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        for (i = 0; i < *n; i++)
            if (strcmp((*c)[i].name, name) == 0)
                break;
        if (i < *n)
            continue; /* first occurrence of a name wins */
        if (*n == *cap) {
            size_t ncap = *cap == 0 ? 8 : 2 * *cap;
            if ((grown = trifle__reallocarray(*c, ncap, sizeof(*grown))) == NULL) {
                rc = TRIFLE_ENOMEM;
                break;
            }
            *c = grown;
            *cap = ncap;
        }
        (*c)[*n].name = trifle__strdup(name);
        (*c)[*n].path = trifle__strdup(path);
        if ((*c)[*n].name == NULL || (*c)[*n].path == NULL) {
            trifle__free((*c)[*n].name);
            trifle__free((*c)[*n].path);
            rc = TRIFLE_ENOMEM;
            break;
        }
        (*n)++;
    }
    (void)closedir(d);
    return rc;
}

static void fill_info(trifle_plugin_info *info, const trifle_driver *t)
{
    size_t used = 0, k, len;

    tu_strlcpy_utf8(info->version, t->version, sizeof(info->version));
    info->abi_major = t->abi_major;
    info->abi_minor = t->abi_minor;
    info->caps = t->caps;
    for (k = 0; t->schemes != NULL && t->schemes[k] != NULL; k++) {
        len = strlen(t->schemes[k]);
        if (used + (used > 0) + len >= sizeof(info->schemes))
            break;
        if (used > 0)
            info->schemes[used++] = ' ';
        memcpy(info->schemes + used, t->schemes[k], len);
        used += len;
    }
    info->schemes[used] = '\0';
}

int trifle_plugins_list(trifle_plugin_info **out, size_t *n_out, const char *driver_path,
                        trifle_error *err)
{
    candidate *c = NULL;
    trifle_plugin_info *infos = NULL;
    const trifle_driver *t;
    trifle_error lerr;
    size_t n = 0, cap = 0, i;
    dir_list l;
    int rc;

    if (out == NULL || n_out == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid argument: out is NULL");
    *out = NULL;
    *n_out = 0;
    (void)pthread_mutex_lock(&loader_lock);
    if ((rc = dirs_build(&l, driver_path)) != 0) {
        (void)pthread_mutex_unlock(&loader_lock);
        return trifle__error(err, rc, "out of memory");
    }
    for (i = 0; i < l.n && rc == 0; i++)
        rc = scan_dir(&c, &n, &cap, l.dirs[i]);
    if (rc != 0) {
        rc = trifle__error(err, rc, "out of memory");
        goto done;
    }
    if (n > 0) {
        qsort(c, n, sizeof(*c), candidate_cmp);
        if ((infos = trifle__calloc(n, sizeof(*infos))) == NULL) {
            rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
            goto done;
        }
    }
    for (i = 0; i < n; i++) {
        tu_strlcpy_utf8(infos[i].name, c[i].name, sizeof(infos[i].name));
        tu_strlcpy_utf8(infos[i].path, c[i].path, sizeof(infos[i].path));
        trifle_error_clear(&lerr);
        if (load_file(&t, c[i].name, c[i].path, &lerr) == 0 && t != NULL)
            fill_info(&infos[i], t);
        else
            tu_strlcpy_utf8(infos[i].error, lerr.message, sizeof(infos[i].error));
    }
    *out = infos;
    *n_out = n;
    infos = NULL;
done:
    (void)pthread_mutex_unlock(&loader_lock);
    for (i = 0; i < n; i++) {
        trifle__free(c[i].name);
        trifle__free(c[i].path);
    }
    trifle__free(c);
    trifle__free(infos);
    dirs_free(&l);
    return rc;
}
