/* The fault driver: a test fixture, not part of libtrifle. tests/fault_driver.c is built as
 * tests/plugins/trifle_fault.so; like any driver it exports exactly one symbol,
 * trifle_driver_fault_init.
 *
 * It wraps another driver plugin and simulates a process crash right after the backend committed
 * a write, before the core could do its own bookkeeping (the journal of docs/durability.md):
 *
 *  Inner plugin  TRIFLE_FAULT_INNER=/abs/path/trifle_<name>.so, read once by the entry function.
 *                A driver's capabilities are fixed when it is loaded, before any URL is seen, so
 *                the inner plugin is named in the environment rather than in the URL. The entry
 *                dlopens it, calls its trifle_driver_<name>_init with the host API the wrapper
 *                was given, and declares the inner driver's capabilities and optional members
 *                (ping/scan, drop, write_marked/mark_read) exactly. Without the variable, or when
 *                the inner plugin cannot be loaded, the entry fails with TRIFLE_ECONFIG.
 *  URL           `fault:<inner URL>`, e.g. `fault:sqlite:/tmp/x.db?table=t`: the inner driver is
 *                opened with `<inner URL>` and every option except the wrapper's own:
 *                  `fault_exit_after_commit=N`  after the N-th successful inc, set or
 *                      write_marked (counted over every wrapper connection of the process) has
 *                      returned from the inner driver, call _exit(86) instead of returning to the
 *                      core: the store holds the write, the caller never learns it. N >= 1;
 *                      0 (the default) never exits.
 *                Any other `fault_*` option is refused (TRIFLE_ECONFIG). The identifier mode
 *                and separator arrive typed (open_params, ABI 1.3) and go on typed to an inner
 *                driver with open_params, or as `trifle.joined`/`trifle.separator` to an older
 *                one.
 *  Forwarding    every other member is the inner driver's, called with the inner connection.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <trifle/driver.h>

#include "drv_support.h"

#define FT_EXIT_CODE 86 /* what a crashed child exits with */
#define FT_NAME_MAX 64  /* bytes of the inner driver's name */

struct trifle_conn {
    const trifle_host_api *host;
    trifle_conn *inner;
    long exit_after; /* fault_exit_after_commit, 0 = never */
};

static trifle_driver ft_driver; /* filled by the entry from the inner driver's table */
static trifle_driver ft_inner;  /* the inner table, zero-extended to this ABI's size */
static void *ft_handle;         /* dlopen handle of the inner plugin (kept until exit) */
static atomic_long ft_commits;  /* successful writes of every wrapper connection */

/* ---------------------------------------------------------------------------------------------
 * Connection */

static void ft_close(trifle_conn *c)
{
    if (c == NULL)
        return;
    ft_inner.close(c->inner);
    c->host->free(c);
}

static int ft_open(trifle_conn **out, const trifle_host_api *host, const char *url,
                   const trifle_open_params *params, const char *const *opts, trifle_error *err)
{
    static const char *const mode_names[] = {"full", "partial", "separated"};
    const char **inner_opts = NULL;
    trifle_conn *c;
    size_t n = 0, k = 0, i;
    int rc;

    if (out == NULL || host == NULL)
        return TRIFLE_EINVAL;
    *out = NULL;
    if (url == NULL || strncmp(url, "fault:", 6) != 0 || url[6] == '\0') {
        host->error_set(err, TRIFLE_ECONFIG, 0, "invalid driver URL: expected fault:<inner URL>");
        return TRIFLE_ECONFIG;
    }
    if ((c = drv_calloc(host, sizeof(*c), err)) == NULL)
        return TRIFLE_ENOMEM;
    c->host = host;
    for (i = 0; opts != NULL && opts[i] != NULL; i += 2) {
        n++;
        if (opts[i + 1] == NULL)
            break;
    }
    if ((inner_opts = host->alloc((2 * n + 5) * sizeof(*inner_opts))) == NULL) {
        rc = drv_oom(host, err);
        goto done;
    }
    if (ft_inner.open_params == NULL) { /* an inner driver of ABI 1.0-1.2 */
        inner_opts[k++] = "trifle.joined";
        inner_opts[k++] = params->id_mode >= 0 && params->id_mode <= TRIFLE_ID_SEPARATED
                              ? mode_names[params->id_mode]
                              : "invalid";
        inner_opts[k++] = "trifle.separator";
        inner_opts[k++] = params->separator;
    }
    for (i = 0; i < 2 * n; i += 2) {
        const char *name = opts[i], *value = opts[i + 1] != NULL ? opts[i + 1] : "";
        char *end;

        if (strncmp(name, "fault_", 6) != 0) {
            inner_opts[k++] = name;
            inner_opts[k++] = value;
            continue;
        }
        if (strcmp(name, "fault_exit_after_commit") != 0) {
            host->error_set(err, TRIFLE_ECONFIG, 0, "invalid driver URL: unknown parameter %s",
                            name);
            rc = TRIFLE_ECONFIG;
            goto done;
        }
        errno = 0;
        c->exit_after = strtol(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || c->exit_after < 0) {
            host->error_set(err, TRIFLE_ECONFIG, 0,
                            "invalid driver URL: fault_exit_after_commit must be a count >= 0, "
                            "not \"%s\"",
                            value);
            rc = TRIFLE_ECONFIG;
            goto done;
        }
    }
    inner_opts[k] = NULL;
    if (ft_inner.open_params != NULL)
        rc = ft_inner.open_params(&c->inner, host, url + 6, params, inner_opts, err);
    else
        rc = ft_inner.open(&c->inner, host, url + 6, inner_opts, err);
done:
    host->free(inner_opts);
    if (rc != 0) {
        if (c->inner != NULL)
            ft_inner.close(c->inner); /* a half-open inner connection */
        host->free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* A write returned rc from the inner driver: the crash point of fault_exit_after_commit. */
static int ft_after_write(const trifle_conn *c, int rc)
{
    if (rc == 0 && c->exit_after > 0 && atomic_fetch_add(&ft_commits, 1) + 1 >= c->exit_after)
        _exit(FT_EXIT_CODE);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Forwarded members */

static int ft_setup(trifle_conn *c, trifle_error *err)
{
    return ft_inner.setup(c->inner, err);
}

static int ft_inc(trifle_conn *c, const trifle_entry *items, size_t n, trifle_write_result *res,
                  trifle_error *err)
{
    return ft_after_write(c, ft_inner.inc(c->inner, items, n, res, err));
}

static int ft_set(trifle_conn *c, const trifle_entry *items, size_t n, trifle_write_result *res,
                  trifle_error *err)
{
    return ft_after_write(c, ft_inner.set(c->inner, items, n, res, err));
}

static int ft_get(trifle_conn *c, const trifle_bucket *buckets, size_t n, trifle_sink *sink,
                  trifle_error *err)
{
    return ft_inner.get(c->inner, buckets, n, sink, err);
}

static int ft_ping(trifle_conn *c, const char *key, int64_t at, const trifle_leaf *leaves, size_t n,
                   trifle_error *err)
{
    return ft_inner.ping(c->inner, key, at, leaves, n, err);
}

static int ft_scan(trifle_conn *c, const char *key, int64_t *at_out, trifle_sink *sink,
                   trifle_error *err)
{
    return ft_inner.scan(c->inner, key, at_out, sink, err);
}

static int ft_drop(trifle_conn *c, trifle_error *err)
{
    return ft_inner.drop(c->inner, err);
}

static int ft_write_marked(trifle_conn *c, const trifle_entry *set_items, size_t n_set,
                           const trifle_entry *inc_items, size_t n_inc, const trifle_mark *mark,
                           trifle_write_result *res, trifle_error *err)
{
    return ft_after_write(
        c, ft_inner.write_marked(c->inner, set_items, n_set, inc_items, n_inc, mark, res, err));
}

static int ft_mark_read(trifle_conn *c, const char *name, uint64_t *seq, trifle_error *err)
{
    return ft_inner.mark_read(c->inner, name, seq, err);
}

/* ---------------------------------------------------------------------------------------------
 * The entry */

static const char *const ft_schemes[] = {"fault", NULL};

/* Load TRIFLE_FAULT_INNER and fill ft_inner and ft_driver. */
static int ft_load(const trifle_host_api *host, trifle_error *err)
{
    const char *path = getenv("TRIFLE_FAULT_INNER"), *base;
    const trifle_driver *inner = NULL;
    trifle_driver_init_fn init;
    char sym_name[FT_NAME_MAX + 32];
    size_t len;
    void *sym;
    int rc;

    if (path == NULL || path[0] != '/') {
        host->error_set(err, TRIFLE_ECONFIG, 0,
                        "fault driver: set TRIFLE_FAULT_INNER to the absolute path of the inner "
                        "driver plugin (trifle_<name>.so)");
        return TRIFLE_ECONFIG;
    }
    base = strrchr(path, '/') + 1;
    len = strlen(base);
    if (strncmp(base, "trifle_", 7) != 0 || len <= 10 || len - 10 > FT_NAME_MAX ||
        strcmp(base + len - 3, ".so") != 0) {
        host->error_set(err, TRIFLE_ECONFIG, 0, "fault driver: %s is not named trifle_<name>.so",
                        path);
        return TRIFLE_ECONFIG;
    }
    memcpy(sym_name, "trifle_driver_", 14);
    memcpy(sym_name + 14, base + 7, len - 10);
    memcpy(sym_name + 14 + len - 10, "_init", 6);
    if (ft_handle == NULL && (ft_handle = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
        host->error_set(err, TRIFLE_ECONFIG, 0, "fault driver: cannot load %s: %s", path,
                        dlerror());
        return TRIFLE_ECONFIG;
    }
    if ((sym = dlsym(ft_handle, sym_name)) == NULL) {
        host->error_set(err, TRIFLE_ECONFIG, 0, "fault driver: %s exports no %s", path, sym_name);
        return TRIFLE_ECONFIG;
    }
    memcpy(&init, &sym, sizeof(init)); /* object → function pointer, the POSIX way */
    if ((rc = init(host, &inner, err)) != 0)
        return rc;
    if (inner == NULL || inner->abi_major != TRIFLE_DRIVER_ABI_MAJOR ||
        inner->abi_minor > TRIFLE_DRIVER_ABI_MINOR ||
        inner->struct_size < offsetof(trifle_driver, drop)) {
        host->error_set(err, TRIFLE_EABI, 0, "fault driver: %s has another driver ABI", path);
        return TRIFLE_EABI;
    }
    memset(&ft_inner, 0, sizeof(ft_inner));
    memcpy(&ft_inner, inner,
           inner->struct_size < sizeof(ft_inner) ? inner->struct_size : sizeof(ft_inner));
    ft_driver = (trifle_driver){
        TRIFLE_DRIVER_HEADER,
        .name = "fault",
        .version = "1.0.0",
        .caps = ft_inner.caps,
        .schemes = ft_schemes,
        .open_params = ft_open,
        .close = ft_close,
        .setup = ft_setup,
        .inc = ft_inc,
        .set = ft_set,
        .get = ft_get,
        .ping = ft_inner.ping != NULL ? ft_ping : NULL,
        .scan = ft_inner.scan != NULL ? ft_scan : NULL,
        .drop = ft_inner.drop != NULL ? ft_drop : NULL,
        .write_marked = ft_inner.write_marked != NULL ? ft_write_marked : NULL,
        .mark_read = ft_inner.mark_read != NULL ? ft_mark_read : NULL,
        .unload = ft_inner.unload, /* the inner entry ran once, from ours: undo it with ours */
    };
    return 0;
}

TRIFLE_DRIVER_EXPORT int trifle_driver_fault_init(const trifle_host_api *host,
                                                  const trifle_driver **out, trifle_error *err);
TRIFLE_DRIVER_EXPORT int trifle_driver_fault_init(const trifle_host_api *host,
                                                  const trifle_driver **out, trifle_error *err)
{
    int rc;

    if (out == NULL)
        return TRIFLE_EINVAL;
    *out = NULL;
    if (host == NULL || host->abi_major != TRIFLE_DRIVER_ABI_MAJOR)
        return TRIFLE_EABI;
    if ((rc = ft_load(host, err)) != 0)
        return rc;
    *out = &ft_driver;
    return 0;
}
