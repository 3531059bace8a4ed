/* The endpoints: which handler answers each route that http.c recognised. http.c calls this
 * through srv_server.dispatch, which serve.c sets, so the transport (http.c) names no handler and
 * the handlers (api.c, admin.c, files.c, ...) use the transport without a cycle. */
#include "srv_int.h"

void srv_dispatch(srv_request *r, int route)
{
    switch (route) {
    case R_HEALTH:
        srv_api_health(r);
        break;
    case R_SOURCE:
        srv_api_source(r);
        break;
    case R_METRICS_GET:
        srv_api_metrics_get(r);
        break;
    case R_METRICS_POST:
        srv_api_metrics_post(r);
        break;
    case R_QUERY:
        srv_api_metrics_query(r);
        break;
    case R_STATS:
        srv_admin_stats(r, 0);
        break;
    case R_STATS_PROMETHEUS:
        srv_admin_stats(r, 1);
        break;
    case R_THREADS:
        srv_admin_threads(r);
        break;
    case R_POOLS:
        srv_admin_pools(r);
        break;
    case R_FILES_LIST_ALL:
        srv_files_list(r, 1);
        break;
    case R_FILES_LIST:
        srv_files_list(r, 0);
        break;
    case R_FILES_DELETE:
        srv_files_delete(r);
        break;
    case R_WEB:
        srv_web_get(r);
        break;
    case R_SOURCES:
        srv_web_sources(r);
        break;
    case R_DASHBOARDS:
    case R_DASHBOARD:
        srv_dashboards_handle(r, route == R_DASHBOARD);
        break;
    case R_MONITORS:
    case R_MONITOR:
        srv_monitors_handle(r, route == R_MONITOR);
        break;
    case R_TRANSPONDERS:
    case R_TRANSPONDER:
        srv_transponders_handle(r, route == R_TRANSPONDER);
        break;
    default:
        srv_respond_detail(r, 404, "Page not found");
        break;
    }
}
