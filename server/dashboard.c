/* The dashboard's page and files (issue 15): GET / and GET /assets/<file>, embedded at build time
 * (cmake/TrifleWebAssets.cmake), and GET /api/v1/sources, which tells the page what the token may
 * see.
 *
 * The page is static: it holds no data and no token. It signs in with a token the user pastes,
 * keeps it in sessionStorage and sends it as `Authorization: Bearer` to the same API as every
 * other client. So the files are public, cacheable (Cache-Control, strong ETag from the build),
 * and served with a Content-Security-Policy that allows scripts, styles and connections from this
 * origin only: no inline script, nothing from elsewhere, no framing. */
#include "srv_int.h"

#include <string.h>

#include <microhttpd.h>

#include "web_assets.h"

static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'";

static const char not_built[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<title>trifle serve</title></head><body>\n"
    "<h1>trifle serve</h1>\n<p>The dashboard was not built into this server: ";
static const char not_built_end[] =
    ".</p>\n<p>The HTTP API at <code>/api/v1</code> works as usual. To get the dashboard, build "
    "trifle where <code>npm</code> can reach the npm registry (it fetches the uPlot chart "
    "library), or see docs/dashboard.md.</p>\n</body></html>\n";

static void secure_headers(srv_request *r)
{
    srv_request_add_header(r, "Content-Security-Policy", csp);
    srv_request_add_header(r, "Referrer-Policy", "no-referrer");
    srv_request_add_header(r, "X-Frame-Options", "DENY");
}

void srv_web_get(srv_request *r)
{
    size_t n;
    const char *target = srv_request_path(r, &n);
    const char *inm = srv_request_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    const srv_web_asset *a;
    srv_buf b;

    srv_response_buf(r, &b);
    if (!srv_web_built) {
        if (n != 1) {
            srv_respond_detail(r, 404, "Page not found");
            return;
        }
        secure_headers(r);
        srv_request_add_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        srv_buf_puts(&b, not_built);
        srv_buf_puts(&b, srv_web_why); /* the build script keeps [A-Za-z0-9 .,:;@()/_=+-] only */
        srv_buf_puts(&b, not_built_end);
        srv_respond(r, 200, "text/html; charset=utf-8", &b);
        return;
    }
    for (a = srv_web_assets; a->path != NULL; a++)
        if (strlen(a->path) == n && memcmp(a->path, target, n) == 0)
            break;
    if (a->path == NULL) {
        srv_respond_detail(r, 404, "Page not found");
        return;
    }
    secure_headers(r);
    srv_request_add_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, a->cache_control);
    srv_request_add_header(r, MHD_HTTP_HEADER_ETAG, a->etag);
    if (inm != NULL && strstr(inm, a->etag) != NULL) {
        srv_respond(r, 304, a->content_type, &b);
        return;
    }
    srv_buf_append(&b, a->data, a->len);
    srv_respond(r, 200, a->content_type, &b);
}

/* `{"data":[{"id","name","type","read","write","granularities","default_granularity",
 * "time_zone"}, ...]}`: the sources the token holds a grant on, in configuration order. */
void srv_web_sources(srv_request *r)
{
    srv_server *s = srv_request_server(r);
    const srv_token *tok = srv_request_token(r);
    size_t i;
    int first = 1;
    srv_buf b;

    srv_response_buf(r, &b);
    srv_buf_puts(&b, "{\"data\":[");
    for (i = 0; i < s->n_sources; i++) {
        const srv_source *src = &s->sources[i];
        int rd = 0, wr = 0;
        srv_token_grant(tok, i, &rd, &wr);
        if (!rd && !wr)
            continue;
        if (!first)
            srv_buf_putc(&b, ',');
        first = 0;
        srv_buf_puts(&b, "{\"id\":");
        srv_buf_json_cstr(&b, src->cfg->id);
        srv_buf_puts(&b, ",\"name\":");
        srv_buf_json_cstr(&b, src->cfg->name != NULL ? src->cfg->name : src->cfg->id);
        srv_buf_puts(&b, src->cfg->read_only ? ",\"type\":\"database\"" : ",\"type\":\"project\"");
        srv_buf_puts(&b, rd ? ",\"read\":true" : ",\"read\":false");
        srv_buf_puts(&b, wr ? ",\"write\":true" : ",\"write\":false");
        srv_buf_puts(&b, ",\"granularities\":");
        srv_source_granularities_json(&b, src);
        srv_buf_puts(&b, ",\"default_granularity\":");
        srv_buf_json_cstr(&b, src->default_granularity);
        srv_buf_puts(&b, ",\"time_zone\":");
        srv_buf_json_cstr(&b, trifle_zone_name(src->zone));
        srv_buf_putc(&b, '}');
    }
    srv_buf_puts(&b, "]}");
    srv_respond(r, 200, "application/json; charset=utf-8", &b);
}
