/* Uses the installed library: loads the installed sqlite plugin from the directory given, or,
 * with a second argument `kitdemo`, the plugin built against the installed driver kit
 * (kit_plugin.c) from that directory, and writes and reads one leaf through it. */
#include <stdio.h>
#include <string.h>

#include <trifle/storage.h>
#include <trifle/trifle.h>

static int got(size_t index, const char *path, double value, void *payload)
{
    (void)index;
    if (strcmp(path, "count") == 0)
        *(double *)payload = value;
    return 0;
}

static int kitdemo(const char *dir)
{
    trifle_storage_options opts = TRIFLE_STORAGE_OPTIONS_INIT;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st = NULL;
    trifle_leaf leaf = {"count", 3};
    trifle_entry e = {{"k::1h::0", "k", "1h", 0}, &leaf, 1};
    double v = 0;
    int rc;

    opts.driver = "kitdemo";
    opts.driver_path = dir;
    if (trifle_storage_open(&st, "kitdemo:x", &opts, &err) != 0 ||
        trifle_storage_inc(st, &e, 1, NULL, &err) != 0 ||
        trifle_storage_get(st, &e.bucket, 1, got, &v, &err) != 0) {
        fprintf(stderr, "kitdemo: %s\n", err.message);
        trifle_storage_close(st);
        return 1;
    }
    trifle_storage_close(st);
    rc = trifle_storage_open(&st, "kitdemo:x?joined=partial", &opts, &err);
    if (rc == 0 || strstr(err.message, "only the full identifier mode") == NULL) {
        fprintf(stderr, "kitdemo: the partial mode was not refused (%s)\n", err.message);
        trifle_storage_close(st);
        return 1;
    }
    printf("kitdemo %g\n", v);
    return v == 3 ? 0 : 1;
}

int main(int argc, char **argv)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    const trifle_driver *drv = NULL;

    if (argc < 2)
        return 2;
    if (argc > 2 && strcmp(argv[2], "kitdemo") == 0)
        return kitdemo(argv[1]);
    if (trifle_driver_load(&drv, "sqlite", argv[1], &err) != 0) {
        fprintf(stderr, "load: %s\n", err.message);
        return 1;
    }
    printf("trifle %s, driver %s %s\n", trifle_version(), drv->name, drv->version);
    return 0;
}
