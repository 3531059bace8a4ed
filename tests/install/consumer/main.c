/* Uses the installed library: loads the installed sqlite plugin from the directory given. */
#include <stdio.h>

#include <trifle/trifle.h>

int main(int argc, char **argv)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    const trifle_driver *drv = NULL;

    if (argc < 2)
        return 2;
    if (trifle_driver_load(&drv, "sqlite", argv[1], &err) != 0) {
        fprintf(stderr, "load: %s\n", err.message);
        return 1;
    }
    printf("trifle %s, driver %s %s\n", trifle_version(), drv->name, drv->version);
    return 0;
}
