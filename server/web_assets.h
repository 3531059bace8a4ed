/* The dashboard's files, embedded at build time (cmake/TrifleWebAssets.cmake writes the table). */
#ifndef TRIFLE_SRV_WEB_ASSETS_H
#define TRIFLE_SRV_WEB_ASSETS_H

#include <stddef.h>

/* One file served by GET: its URL path, media type, Cache-Control and strong ETag. */
typedef struct srv_web_asset {
    const char *path;
    const char *content_type;
    const char *cache_control;
    const char *etag;
    const unsigned char *data;
    size_t len;
} srv_web_asset;

/* The files, ended by an entry whose path is NULL; empty when the dashboard is not built in. */
extern const srv_web_asset srv_web_assets[];
/* 1 when the dashboard is built in; else srv_web_why says why not. */
extern const int srv_web_built;
extern const char srv_web_why[];
extern const char srv_web_uplot_version[];

#endif
