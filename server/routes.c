/* The endpoints: which handler answers each route that http.c recognised. http.c calls this
 * through srv_server.dispatch, which serve.c sets, so the transport (http.c) names no handler and
 * the handlers (api.c, admin.c, files.c, ...) use the transport without a cycle. */
#include "srv_int.h"

/* The handlers that take the request alone, by route. */
static void (*const plain[])(srv_request *r) = {[R_HEALTH] = srv_api_health,
                                                [R_SOURCE] = srv_api_source,
                                                [R_METRICS_GET] = srv_api_metrics_get,
                                                [R_METRICS_POST] = srv_api_metrics_post,
                                                [R_QUERY] = srv_api_metrics_query,
                                                [R_THREADS] = srv_admin_threads,
                                                [R_POOLS] = srv_admin_pools,
                                                [R_FILES_DELETE] = srv_files_delete,
                                                [R_WEB] = srv_web_get,
                                                [R_SOURCES] = srv_web_sources};

/* The handlers of two routes each, told apart by a flag. */
static const struct {
    void (*fn)(srv_request *r, int flag);
    int flag;
} flagged[] = {[R_STATS] = {srv_admin_stats, 0},
               [R_STATS_PROMETHEUS] = {srv_admin_stats, 1},
               [R_FILES_LIST_ALL] = {srv_files_list, 1},
               [R_FILES_LIST] = {srv_files_list, 0},
               [R_DASHBOARDS] = {srv_dashboards_handle, 0},
               [R_DASHBOARD] = {srv_dashboards_handle, 1},
               [R_MONITORS] = {srv_monitors_handle, 0},
               [R_MONITOR] = {srv_monitors_handle, 1},
               [R_TRANSPONDERS] = {srv_transponders_handle, 0},
               [R_TRANSPONDER] = {srv_transponders_handle, 1}};

#define N(a) (sizeof(a) / sizeof((a)[0]))

void srv_dispatch(srv_request *r, int route)
{
    if (route > R_NONE && (size_t)route < N(plain) && plain[route] != NULL)
        plain[route](r);
    else if (route > R_NONE && (size_t)route < N(flagged) && flagged[route].fn != NULL)
        flagged[route].fn(r, flagged[route].flag);
    else
        srv_respond_detail(r, 404, "Page not found");
}
