/* `trifle`: the command-line client of libtrifle (SPEC §11). It uses the public API only.
 *
 * main() parses the command line, runs the command (which opens the store with the buffer disabled
 * and closes it again), then prints either the command's output on stdout or one JSON error line on
 * stderr, and exits with the code of SPEC §11.5. */
#include "cli.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* ERRATA I13: the plugins of the build tree are searched only by a `trifle` that runs from the
 * build tree itself, so an installed binary never looks there. The directory of /proc/self/exe
 * (symlinks resolved by the kernel) and the build directory are compared as files (device and
 * inode), which also holds when either is reached through a symlink. */
static void register_build_tree(void)
{
#if defined(TRIFLE_BUILD_DIR) && defined(TRIFLE_BUILD_PLUGIN_DIR)
    char exe[PATH_MAX];
    char *slash;
    struct stat here, build;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    if (n <= 0 || (size_t)n >= sizeof(exe) - 1)
        return;
    exe[n] = '\0';
    if ((slash = strrchr(exe, '/')) == NULL)
        return;
    slash[slash == exe ? 1 : 0] = '\0';
    if (stat(exe, &here) != 0 || stat(TRIFLE_BUILD_DIR, &build) != 0)
        return;
    if (here.st_dev == build.st_dev && here.st_ino == build.st_ino)
        (void)trifle_driver_dir_add(TRIFLE_BUILD_PLUGIN_DIR, NULL);
#endif
}

int main(int argc, char **argv)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    cli_args args;
    char *out = NULL, *extra = NULL;
    int rc, json = 1, status;

    register_build_tree();
    rc = cli_args_parse(&args, argc, argv, &err);
    if (rc == 0)
        rc = cli_run(&args, &out, &json, &extra, &err);
    if (rc == 0 && out != NULL) /* serve prints nothing on stdout */
        rc = cli_print(out, json, args.pretty, &err);
    status = rc == 0 ? 0 : cli_report(&err, extra);
    free(out);
    free(extra);
    cli_args_free(&args);
    trifle_shutdown();
    return status;
}
