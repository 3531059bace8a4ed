/* The target under test, as the runner (runner.c) resolved it and --oom (oom.c) uses it: the URL
 * of a namespace, the temp directory, the build's plugin directory. Apart from runner.c because
 * oom.c needs them and runner.c calls oom.c: with them in runner.c the two called each other. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef TRIFLE_BUILD_PLUGIN_DIR
#define TRIFLE_BUILD_PLUGIN_DIR ""
#endif

static const char *const mode_names[] = {"full", "partial", "separated"};

const char *conf_mode_name(int mode)
{
    return mode >= 0 && mode < 3 ? mode_names[mode] : "?";
}

void conf_register_build_dir(void)
{
    if (TRIFLE_BUILD_PLUGIN_DIR[0] != '\0' && access(TRIFLE_BUILD_PLUGIN_DIR, F_OK) == 0)
        (void)trifle_driver_dir_add(TRIFLE_BUILD_PLUGIN_DIR, NULL);
}

int conf_target_tmpdir(conf_target *t)
{
    const char *base = getenv("TMPDIR");

    if (t->tmpdir[0] != '\0')
        return 0;
    (void)snprintf(t->tmpdir, sizeof(t->tmpdir), "%s/trfl-conf.XXXXXX",
                   base != NULL && base[0] == '/' ? base : "/tmp");
    if (mkdtemp(t->tmpdir) == NULL) {
        (void)fprintf(stderr, "trifle-conformance: cannot make a temp directory %s: %s\n",
                      t->tmpdir, strerror(errno));
        t->tmpdir[0] = '\0';
        return -1;
    }
    return 0;
}

/* Copy of url without the query parameters called n1 or n2, which the runner sets itself. */
static char *url_strip(const char *url, const char *n1, const char *n2)
{
    const char *q = strchr(url, '?'), *p;
    size_t url_len = strlen(url);
    char *out = malloc(url_len + 1), *w;
    char sep = '?';

    if (out == NULL)
        return NULL;
    if (q == NULL) {
        memcpy(out, url, url_len + 1);
        return out;
    }
    memcpy(out, url, (size_t)(q - url));
    w = out + (q - url);
    for (p = q + 1; *p != '\0';) {
        size_t len = strcspn(p, "&"), nlen = strcspn(p, "=&");

        if (len > 0 && !(nlen == strlen(n1) && strncmp(p, n1, nlen) == 0) &&
            !(nlen == strlen(n2) && strncmp(p, n2, nlen) == 0)) {
            *w++ = sep;
            memcpy(w, p, len);
            w += len;
            sep = '&';
        }
        p += len;
        if (*p == '&')
            p++;
    }
    *w = '\0';
    return out;
}

char *conf_target_url(conf_target *t, const char *ns, int mode)
{
    char *base, *url;
    size_t n;

    if (t->url != NULL) {
        base = url_strip(t->url, t->ns_param, "joined");
    } else {
        if (t->temp_url == NULL || conf_target_tmpdir(t) != 0)
            return NULL;
        n = strlen(t->temp_url) + strlen(t->tmpdir) + strlen(ns) + 1;
        if ((base = malloc(n)) != NULL)
            (void)snprintf(base, n, t->temp_url, t->tmpdir, ns);
    }
    if (base == NULL)
        return NULL;
    n = strlen(base) + strlen(t->ns_param) + strlen(ns) + 32;
    if ((url = malloc(n)) != NULL)
        (void)snprintf(url, n, "%s%c%s=%s&joined=%s", base, strchr(base, '?') != NULL ? '&' : '?',
                       t->ns_param, ns, conf_mode_name(mode));
    free(base);
    return url;
}
