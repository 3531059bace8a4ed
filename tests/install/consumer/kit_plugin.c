/* A third-party plugin built against the installed driver kit (drivers/support, installed as
 * libtrifle-driver-kit.a and <drv_support.h>) and the ABI 1.3 typed open parameters: an
 * in-memory store of one bucket, just enough for the install check to open it, write a leaf and
 * read it back through the installed libtrifle. */
#include <string.h>

#include <drv_support.h>
#include <trifle/driver.h>

struct trifle_conn {
    const trifle_host_api *host;
    int oom;
    drv_buf path; /* the one stored leaf's path */
    double value;
};

static int kd_open(trifle_conn **out, const trifle_host_api *host, const char *url,
                   const trifle_open_params *params, const char *const *opts, trifle_error *err)
{
    trifle_conn *c;
    size_t i;

    (void)url;
    *out = NULL;
    if (params->id_mode != TRIFLE_ID_FULL) {
        host->error_set(err, TRIFLE_ECONFIG, 0, "kitdemo stores the full identifier mode only");
        return TRIFLE_ECONFIG;
    }
    for (i = 0; opts[i] != NULL && opts[i + 1] != NULL; i += 2)
        if (!drv_opt_is_core(opts[i])) {
            host->error_set(err, TRIFLE_ECONFIG, 0, "unknown parameter %s", opts[i]);
            return TRIFLE_ECONFIG;
        }
    if ((c = drv_calloc(host, sizeof(*c), err)) == NULL)
        return TRIFLE_ENOMEM;
    c->host = host;
    drv_buf_init(&c->path, host, &c->oom);
    *out = c;
    return 0;
}

static void kd_close(trifle_conn *c)
{
    if (c == NULL)
        return;
    drv_buf_free(&c->path);
    c->host->free(c);
}

static int kd_write(trifle_conn *c, const trifle_entry *items, size_t n, trifle_write_result *res,
                    trifle_error *err)
{
    const trifle_leaf *l;

    (void)res;
    if (n == 0)
        return 0;
    l = &items[n - 1].leaves[0];
    if (!drv_path_ok(l->path, strlen(l->path))) {
        c->host->error_set(err, TRIFLE_EINVAL, 0, "bad path");
        return TRIFLE_EINVAL;
    }
    c->path.len = 0;
    drv_buf_puts(&c->path, l->path);
    drv_buf_zero(&c->path);
    if (c->oom) {
        c->oom = 0;
        return drv_oom(c->host, err);
    }
    c->value = l->value;
    return 0;
}

static int kd_get(trifle_conn *c, const trifle_bucket *buckets, size_t n, trifle_sink *sink,
                  trifle_error *err)
{
    size_t i;
    int rc = 0;

    (void)buckets;
    (void)err;
    /* every bucket holds the one leaf, once there is one */
    for (i = 0; rc == 0 && i < n && c->path.len > 0; i++)
        rc = c->host->emit(sink, i, c->path.p, c->value);
    return rc;
}

/* Nothing to create: the store lives in the connection. */
static int kd_setup(trifle_conn *c, trifle_error *err)
{
    (void)c;
    (void)err;
    return 0;
}

static const char *const kd_schemes[] = {"kitdemo", NULL};

static const trifle_driver kd_driver = {
    TRIFLE_DRIVER_HEADER,  .name = "kitdemo", .version = "0.0.1",     .caps = 0,
    .schemes = kd_schemes, .close = kd_close, .setup = kd_setup,      .inc = kd_write,
    .set = kd_write,       .get = kd_get,     .open_params = kd_open,
};

TRIFLE_DRIVER_DEFINE(kitdemo, kd_driver)
