/* Fuzz target: the YAML configuration loader (server/config.c, libyaml event parser) and the
 * listen-address parser. Any input must give a configuration or an error message of the form
 * `<file>:<line>:<column>: ...`, never a crash or a leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "srv_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/trifle-fuzz-config-XXXXXX";
    trifle_error err = TRIFLE_ERROR_INIT;
    srv_config *cfg = NULL;
    srv_listen_addr addr;
    const char *reason = NULL;
    char *text;
    int fd = mkstemp(path);

    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        unlink(path);
        return 0;
    }
    close(fd);
    if (srv_config_load(&cfg, path, &err) == 0)
        srv_config_free(cfg);
    else if (err.code == 0 || strncmp(err.message, path, strlen(path)) != 0)
        abort(); /* every failure names the file (ERRATA I12) */
    unlink(path);
    /* the same bytes as a listen address */
    if ((text = malloc(size + 1)) != NULL) {
        memcpy(text, data, size);
        text[size] = '\0';
        (void)srv_listen_parse(&addr, text, &reason);
        free(text);
    }
    return 0;
}
