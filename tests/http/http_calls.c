/* http_calls: drive trifle_http.so's calls() directly, as the core would, for the error-path tests
 * of tests/http/test_http_driver.py. One invocation is one calls() of N whole calls, so a server
 * that lists the `batch` extension gets them as JSON arrays.
 *
 *     http_calls PLUGIN URL KEY N [assert]
 *
 * Each call is {"count": 1} on KEY at 2025-01-15T10:00:00Z (track, or assert). Prints one JSON
 * line {"rc": "...", "applied": k, "unknown": 0|1, "native": n, "message": "..."} and exits 0 when
 * calls() succeeded, 1 when it failed, 2 on a usage or loading error. The driver options come from
 * the URL's query string, exactly as the core hands them over (no percent-decoding is needed for
 * the values the tests use). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_host.h"
#include "trifle/driver.h"
#include "trifle/error.h"

#define MAX_OPTS 32

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

int main(int argc, char **argv)
{
    const char *opts[2 * MAX_OPTS + 5];
    const trifle_driver *drv = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_write_result res;
    trifle_conn *conn = NULL;
    trifle_leaf leaf = {"count", 1};
    trifle_call *calls;
    char *base, *q;
    size_t n, i, k = 0;
    void *dl = NULL;
    int rc;

    if (argc < 5 || (argc == 6 && strcmp(argv[5], "assert") != 0) || argc > 6) {
        fputs("usage: http_calls PLUGIN URL KEY N [assert]\n", stderr);
        return 2;
    }
    if ((drv = test_host_load(argv[1], "http", &dl)) == NULL) {
        fprintf(stderr, "http_calls: cannot load the plugin %s\n", argv[1]);
        return 2;
    }
    /* the URL without its query string; the query's name=value pairs as options */
    base = strdup(argv[2]);
    if ((q = strchr(base, '?')) != NULL) {
        char *pair, *save = NULL;
        *q++ = '\0';
        for (pair = strtok_r(q, "&", &save); pair != NULL && k < 2 * MAX_OPTS;
             pair = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(pair, '=');
            if (eq == NULL)
                continue;
            *eq = '\0';
            opts[k++] = pair;
            opts[k++] = eq + 1;
        }
    }
    opts[k] = NULL;
    n = (size_t)strtoul(argv[4], NULL, 10);
    calls = calloc(n > 0 ? n : 1, sizeof(*calls));
    for (i = 0; i < n; i++) {
        calls[i].key = argv[3];
        calls[i].at = 1736935200; /* 2025-01-15T10:00:00Z */
        calls[i].op = argc == 6 ? TRIFLE_CALL_ASSERT : TRIFLE_CALL_TRACK;
        calls[i].leaves = &leaf;
        calls[i].n_leaves = 1;
    }
    memset(&res, 0, sizeof(res));
    res.struct_size = sizeof(res);
    res.failed_item = -1;
    rc = test_host_open(drv, &conn, base, TRIFLE_ID_FULL, "::", opts, &err);
    if (rc == 0)
        rc = drv->calls(conn, calls, n, &res, &err);
    printf("{\"rc\":");
    print_json_string(rc == 0 ? "OK" : trifle_status_name(rc));
    printf(",\"applied\":%zu,\"unknown\":%d,\"native\":%d,\"message\":", res.applied,
           res.outcome_unknown, err.native);
    print_json_string(err.message);
    printf("}\n");
    drv->close(conn);
    free(calls);
    free(base);
    dlclose(dl);
    return rc == 0 ? 0 : 1;
}
