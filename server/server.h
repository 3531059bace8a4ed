/* `trifle serve` (SPEC §9, §10, §12): the entry point the `trifle` command calls. Not installed. */
#ifndef TRIFLE_SERVER_H
#define TRIFLE_SERVER_H

#include <trifle/trifle.h>

/* What the command line hands to the server. Every member may be NULL. */
typedef struct srv_options {
    const char *config_path; /* --config FILE / TRIFLE_CONFIG; NULL runs the zero-config default */
    const char *listen;      /* --listen ADDR: overrides http.listen */
    const char *driver_path; /* --driver-path DIRS: searched when the file sets no driver_path */
} srv_options;

/*
 * Run the server until SIGTERM or SIGINT, then shut down gracefully: stop accepting, finish the
 * running requests (at most http.shutdown_timeout_ms), close every source (final flush), save the
 * Simple Stats.
 *
 * Blocks SIGTERM, SIGINT and SIGPIPE in the calling thread before any thread starts (every thread
 * inherits the mask); call it from the main thread of a process that runs nothing else.
 *
 * Returns 0 after a clean shutdown; TRIFLE_ECONFIG for configuration errors (`<file>:<line>:
 * <column>: <key path>: <message>`, exit 4); TRIFLE_ENOTFOUND/TRIFLE_EABI for a driver plugin that
 * cannot be loaded; TRIFLE_EDRIVER when a source's final flush left operations unwritten (ERRATA
 * minor 22, exit 1); other codes for start-up failures. @p err names the culprit.
 */
int srv_serve(const srv_options *opts, trifle_error *err);

#endif
