/* Plugin loader internals (SPEC §7.1, STYLE §6 "Loader"). Never installed. */
#ifndef TRIFLE_LOADER_INT_H
#define TRIFLE_LOADER_INT_H

#include <stddef.h>

#include "trifle/driver.h"

/* Size of the ABI 1.0 operation table: everything up to and including `scan`. A driver table
 * with a smaller struct_size is refused. */
#define TRIFLE__DRIVER_SIZE_1_0 \
    (offsetof(trifle_driver, scan) + sizeof(((const trifle_driver *)0)->scan))

/* The host table handed to every driver (one static object, valid until exit). */
const trifle_host_api *trifle__host_api(void);

/* 1 when name matches [a-z][a-z0-9_]* and is at most 63 bytes, else 0. */
int trifle__driver_name_valid(const char *name);

/* 1 when a driver called name is loaded or a regular file trifle_<name>.so is in the search path
 * (driver_path, TRIFLE_DRIVER_PATH, trifle_driver_dir_add() directories, the installed plugin
 * directory), 0 when not, TRIFLE_ENOMEM. Loads nothing. Thread-safe. */
int trifle__driver_exists(const char *name, const char *driver_path);

#endif
