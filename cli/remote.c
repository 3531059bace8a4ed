/* Requests to a Trifle API server (`trifle serve` or the Trifle App) for what is not a store
 * operation: the stored transponders of `trifle mcp` (docs/mcp.md). The driver URL is the HTTP
 * driver's, `http[s]://host[:port][/prefix]?token=...&source=...`; the token may come from
 * TRIFLE_TOKEN instead, so that it stays out of process listings; `ca=FILE` trusts a private CA as
 * the driver does. libcurl does the HTTP and TLS
 * (the HTTP driver uses it too); without libcurl at build time remote requests are ENOTSUP. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef TRIFLE_CLI_HAVE_CURL
#include <curl/curl.h>
#endif

void cli_url_shown(char *buf, size_t size, const char *url)
{
    char masked[2048];
    const char *p, *q;
    cli_buf b = CLI_BUF_INIT;

    (void)trifle_url_mask(masked, sizeof(masked), url);
    if (size == 0)
        return;
    if ((q = strchr(masked, '?')) == NULL) {
        (void)snprintf(buf, size, "%s", masked);
        return;
    }
    /* the HTTP driver's token= is a secret too: keep the name, drop the value */
    cli_buf_append(&b, masked, (size_t)(q - masked) + 1);
    for (p = q + 1; *p != '\0';) {
        size_t len = strcspn(p, "&");
        if (len >= 6 && strncmp(p, "token=", 6) == 0)
            cli_buf_puts(&b, "token=***");
        else
            cli_buf_append(&b, p, len);
        p += len;
        if (*p == '&') {
            cli_buf_putc(&b, '&');
            p++;
        }
    }
    (void)snprintf(buf, size, "%s", b.failed || b.data == NULL ? "(driver URL)" : b.data);
    cli_buf_free(&b);
}

int cli_remote_is(const char *driver_url)
{
    return driver_url != NULL &&
           (strncmp(driver_url, "http://", 7) == 0 || strncmp(driver_url, "https://", 8) == 0);
}

#ifdef TRIFLE_CLI_HAVE_CURL

static size_t collect(char *data, size_t size, size_t n, void *payload)
{
    cli_buf *b = payload;

    cli_buf_append(b, data, size * n);
    return b->failed ? 0 : size * n;
}

/* Query parameter @p name of @p query (after '?', '&'-separated), percent-decoded; NULL when
 * absent. Caller frees with curl_free(). */
static char *param(CURL *c, const char *query, const char *name)
{
    size_t n = strlen(name);
    const char *p = query;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '&');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len > n && strncmp(p, name, n) == 0 && p[n] == '=')
            return curl_easy_unescape(c, p + n + 1, (int)(len - n - 1), NULL);
        p = end != NULL ? end + 1 : NULL;
    }
    return NULL;
}

int cli_remote_request(char **out, long *status, const char *driver_url, const char *method,
                       const char *path, trifle_error *err)
{
    cli_buf url = CLI_BUF_INIT, body = CLI_BUF_INIT, header = CLI_BUF_INIT;
    struct curl_slist *headers = NULL;
    const char *q = strchr(driver_url, '?'), *env = getenv("TRIFLE_TOKEN");
    char *token = NULL, *source = NULL, *ca = NULL, shown[256];
    size_t base;
    CURLcode cc;
    CURL *c;
    int rc = 0;

    *out = NULL;
    *status = 0;
    if ((c = curl_easy_init()) == NULL)
        return cli_error(err, TRIFLE_ENOMEM, "out of memory");
    base = q != NULL ? (size_t)(q - driver_url) : strlen(driver_url);
    while (base > 0 && driver_url[base - 1] == '/')
        base--;
    cli_buf_append(&url, driver_url, base);
    cli_buf_puts(&url, path);
    if (q != NULL) {
        token = param(c, q + 1, "token");
        source = param(c, q + 1, "source");
        ca = param(c, q + 1, "ca"); /* the HTTP driver's CA file for a private certificate */
    }
    if (token == NULL && env != NULL && env[0] != '\0') {
        cli_buf_puts(&header, "Authorization: Bearer ");
        cli_buf_puts(&header, env);
    } else if (token != NULL) {
        cli_buf_puts(&header, "Authorization: Bearer ");
        cli_buf_puts(&header, token);
    }
    if (url.failed || header.failed) {
        rc = cli_error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    if (header.data != NULL)
        headers = curl_slist_append(headers, header.data);
    if (source != NULL && source[0] != '\0') {
        cli_buf src = CLI_BUF_INIT;
        cli_buf_puts(&src, "X-Trifle-Source-Id: ");
        cli_buf_puts(&src, source);
        if (!src.failed)
            headers = curl_slist_append(headers, src.data);
        cli_buf_free(&src);
    }
    headers = curl_slist_append(headers, "Accept: application/json");
    (void)curl_easy_setopt(c, CURLOPT_URL, url.data);
    (void)curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    (void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    (void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    (void)curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    (void)curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    (void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    (void)curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    (void)curl_easy_setopt(c, CURLOPT_USERAGENT, "trifle-cli");
    if (ca != NULL && ca[0] != '\0')
        (void)curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        cli_url_shown(shown, sizeof(shown), url.data);
        rc = cli_error(err, cc == CURLE_OPERATION_TIMEDOUT ? TRIFLE_ETIMEDOUT : TRIFLE_ECONN,
                       "%s %s: %s", method, shown, curl_easy_strerror(cc));
        goto done;
    }
    (void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (body.failed) {
        rc = cli_error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    *out = body.data != NULL ? body.data : strdup("");
    body.data = NULL;
    if (*out == NULL)
        rc = cli_error(err, TRIFLE_ENOMEM, "out of memory");
done:
    curl_slist_free_all(headers);
    curl_free(token);
    curl_free(source);
    curl_free(ca);
    curl_easy_cleanup(c);
    cli_buf_free(&url);
    cli_buf_free(&body);
    cli_buf_free(&header);
    return rc;
}

#else

int cli_remote_request(char **out, long *status, const char *driver_url, const char *method,
                       const char *path, trifle_error *err)
{
    (void)driver_url;
    (void)method;
    (void)path;
    *out = NULL;
    *status = 0;
    return cli_error(err, TRIFLE_ENOTSUP, "this trifle was built without libcurl");
}

#endif
