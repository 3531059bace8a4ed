/* trifle_query(): the SPEC §9.7 query (query.c) bound to a stats handle. Kept apart from query.c
 * so that the query logic links and is tested without the handle. */
#include "trifle/trifle.h"

#include "analysis_int.h"

#include <stdio.h>

#include "alloc_int.h"
#include "error_int.h"
#include "trifle_int.h"

static int read_values(trifle_series **out, const char *key, int64_t from, int64_t to,
                       const char *granularity, void *ctx, trifle_error *err)
{
    return trifle_values((trifle *)ctx, out, key, from, to, granularity, 0, err);
}

static int ask_driver(void *ctx, const char *key, const char *granularity, const char *request,
                      size_t len, int (*fn)(void *fctx, int status, const char *body, size_t len),
                      void *fctx, trifle_error *err)
{
    return trifle__query_remote((trifle *)ctx, key, granularity, request, len, fn, fctx, err);
}

int trifle_query(trifle_query_result **out, trifle *t, const char *request, size_t len, int flags,
                 trifle_error *err)
{
    return trifle_query_with_reader(out, t, request, len, flags, NULL, NULL, err);
}

int trifle_query_with_reader(trifle_query_result **out, trifle *t, const char *request, size_t len,
                             int flags, trifle_query_reader reader, void *payload,
                             trifle_error *err)
{
    const trifle_config *cfg;
    const char **list;
    trifle__query_env env;
    char who[64];
    size_t n, i;
    int rc;

    *out = NULL;
    if (t == NULL || request == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "trifle_query needs a handle and a request");
    cfg = trifle_get_config(t);
    n = trifle_config_granularity_count(cfg);
    list = trifle__calloc(n ? n : 1, sizeof(*list));
    if (list == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    for (i = 0; i < n; i++)
        list[i] = trifle_config_granularity(cfg, i);
    env.zone = trifle_get_zone(t);
    env.granularities = list;
    env.n_granularities = n;
    env.flags = flags;
    env.read = reader != NULL ? reader : read_values;
    env.ctx = reader != NULL ? payload : t;
    env.remote = NULL;
    env.remote_name = NULL;
    if (reader == NULL && trifle__answers_queries(t)) {
        /* the driver answers whole queries (ABI 1.4): its far side reads and computes */
        (void)snprintf(who, sizeof(who), "driver %s", trifle_driver_name(t));
        env.remote = ask_driver;
        env.remote_name = who;
    }
    rc = trifle__query_run(out, request, len, &env, err);
    trifle__free(list);
    return rc;
}
