/*
 * Options, names, paths and hashing shared by the drivers (drv_support.h).
 */
#include "drv_support.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int drv_opt_mode(const char *value)
{
    if (strcmp(value, "full") == 0)
        return TRIFLE_ID_FULL;
    if (strcmp(value, "partial") == 0)
        return TRIFLE_ID_PARTIAL;
    if (strcmp(value, "separated") == 0)
        return TRIFLE_ID_SEPARATED;
    return -1;
}

int drv_params_mode(const trifle_open_params *params)
{
    if (params == NULL || !TRIFLE_OPEN_PARAMS_HAS(params, id_mode))
        return -1;
    switch (params->id_mode) {
    case TRIFLE_ID_FULL:
    case TRIFLE_ID_PARTIAL:
    case TRIFLE_ID_SEPARATED:
        return params->id_mode;
    default:
        return -1;
    }
}

int drv_open_mode(const trifle_host_api *host, const trifle_open_params *params, int *mode,
                  trifle_error *err)
{
    if ((*mode = drv_params_mode(params)) >= 0)
        return 0;
    host->error_set(err, TRIFLE_ECONFIG, 0, "invalid identifier mode: %d",
                    params != NULL && TRIFLE_OPEN_PARAMS_HAS(params, id_mode) ? params->id_mode
                                                                              : -1);
    return TRIFLE_ECONFIG;
}

int drv_open_url(const trifle_host_api *host, const trifle_open_params *params, const char *url,
                 const char *const *prefixes, const char *expected, int *mode, trifle_error *err)
{
    size_t i;
    int rc;

    if ((rc = drv_open_mode(host, params, mode, err)) != 0)
        return rc;
    for (i = 0; url != NULL && prefixes[i] != NULL; i++)
        if (strncmp(url, prefixes[i], strlen(prefixes[i])) == 0)
            return 0;
    host->error_set(err, TRIFLE_ECONFIG, 0, "invalid driver URL: expected %s", expected);
    return TRIFLE_ECONFIG;
}

/* drv_verr() with the arguments given here. */
static int drv_err(const trifle_host_api *host, const char *secret, trifle_error *err, int code,
                   const char *fmt, ...) TRIFLE_PRINTF(5, 6);

static int drv_err(const trifle_host_api *host, const char *secret, trifle_error *err, int code,
                   const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    code = drv_verr(host, secret, err, code, 0, fmt, ap);
    va_end(ap);
    return code;
}

int drv_ping_check(const trifle_host_api *host, const char *secret, int in_range, int64_t at,
                   const char *key, int id_max, const trifle_leaf *leaves, size_t n,
                   trifle_error *err)
{
    size_t i;

    if (!in_range)
        return drv_err(host, secret, err, TRIFLE_EINVAL, "time out of range: %lld", (long long)at);
    if (tu_utf8_count(key) > (size_t)id_max)
        return drv_err(host, secret, err, TRIFLE_EINVAL, "ping key is longer than %d characters",
                       id_max);
    for (i = 0; i < n; i++)
        if (leaves[i].path == NULL || leaves[i].path[0] == '\0' || !isfinite(leaves[i].value))
            return drv_err(host, secret, err, TRIFLE_EINVAL, "invalid ping leaf %zu", i);
    return 0;
}

int drv_ping_emit(const trifle_host_api *host, trifle_sink *sink, const char *path, size_t len,
                  double v)
{
    if (len <= 5 || memcmp(path, "data.", 5) != 0)
        return 0;
    return host->emit(sink, 0, path + 5, v);
}

const char *drv_params_separator(const trifle_open_params *params)
{
    if (params == NULL || !TRIFLE_OPEN_PARAMS_HAS(params, separator) || params->separator == NULL)
        return "::";
    return params->separator;
}

int drv_opt_is_core(const char *name)
{
    return strncmp(name, "trifle.", 7) == 0 || strcmp(name, "joined") == 0 ||
           strcmp(name, "separator") == 0 || strcmp(name, "system_tracking") == 0;
}

int drv_opt_sql(const char *name, const char *value, const char **table, const char **ping_table)
{
    if (drv_opt_is_core(name))
        return 1; /* the separator, for one, is already inside the bucket ids */
    if (strcmp(name, "table") == 0) {
        *table = value;
        return 1;
    }
    if (strcmp(name, "ping_table") == 0) {
        *ping_table = value;
        return 1;
    }
    return 0;
}

int drv_name_ok(const char *s, size_t max)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > max || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            return 0;
    }
    return 1;
}

const char *drv_table_bad(const char *table, const char *ping_table, size_t max)
{
    if (!drv_name_ok(table, max))
        return table;
    if (ping_table != NULL && !drv_name_ok(ping_table, max))
        return ping_table;
    return NULL;
}

void drv_table_names(char *table_out, char *ping_out, const char *table, const char *ping_table)
{
    size_t n = strlen(table);

    memcpy(table_out, table, n + 1);
    if (ping_table != NULL) {
        memcpy(ping_out, ping_table, strlen(ping_table) + 1);
    } else {
        memcpy(ping_out, table, n);
        memcpy(ping_out + n, "_ping", 6);
    }
}

int drv_path_ok(const char *p, size_t n)
{
    size_t i;

    if (n == 0 || p[0] == '.' || p[n - 1] == '.' || memchr(p, '\0', n) != NULL)
        return 0;
    for (i = 1; i < n; i++)
        if (p[i] == '.' && p[i - 1] == '.')
            return 0;
    return 1;
}

int drv_pathcmp(const char *a, size_t an, const char *b, size_t bn)
{
    int r = memcmp(a, b, an < bn ? an : bn);

    if (r != 0)
        return r;
    return an < bn ? -1 : an > bn;
}

uint32_t drv_bucket_hash(const char *id, size_t id_len, const char *g, size_t g_len, int64_t at)
{
    uint64_t h = UINT64_C(1469598103934665603);
    size_t i;

    for (i = 0; i < id_len; i++)
        h = (h ^ (unsigned char)id[i]) * UINT64_C(1099511628211);
    h = (h ^ 0xff) * UINT64_C(1099511628211);
    for (i = 0; i < g_len; i++)
        h = (h ^ (unsigned char)g[i]) * UINT64_C(1099511628211);
    h ^= (uint64_t)at * UINT64_C(0x9E3779B97F4A7C15);
    h ^= h >> 31;
    h *= UINT64_C(0xBF58476D1CE4E5B9);
    h ^= h >> 29;
    return (uint32_t)h;
}

void drv_scrub(char *msg, size_t size, const char *secret)
{
    char tmp[512];
    size_t n, i = 0, o = 0;

    if (secret == NULL || (n = strlen(secret)) == 0 || strstr(msg, secret) == NULL)
        return;
    while (msg[i] != '\0' && o + 1 < sizeof(tmp)) {
        if (strncmp(msg + i, secret, n) == 0) {
            size_t k;
            for (k = 0; k < 3 && o + 1 < sizeof(tmp); k++)
                tmp[o++] = '*';
            i += n;
        } else {
            tmp[o++] = msg[i++];
        }
    }
    tmp[o] = '\0';
    if (o >= size)
        o = size - 1;
    memcpy(msg, tmp, o);
    msg[o] = '\0';
}

int drv_verr(const trifle_host_api *host, const char *secret, trifle_error *err, int code,
             int native, const char *fmt, va_list ap)
{
    char msg[512];

    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        msg[0] = '\0';
    drv_scrub(msg, sizeof(msg), secret);
    host->error_set(err, code, native, "%s", msg);
    return code;
}

int drv_oom(const trifle_host_api *host, trifle_error *err)
{
    host->error_set(err, TRIFLE_ENOMEM, 0, "out of memory");
    return TRIFLE_ENOMEM;
}

char *drv_strdup(const trifle_host_api *host, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = host->alloc(n);

    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

void *drv_calloc(const trifle_host_api *host, size_t size, trifle_error *err)
{
    void *p = host->alloc(size);

    if (p == NULL) {
        (void)drv_oom(host, err);
        return NULL;
    }
    memset(p, 0, size);
    return p;
}
