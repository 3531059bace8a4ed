/* trifle-conformance: one generic suite for every storage driver plugin (SPEC §7.10, ERRATA I13,
 * I16, B1, minor 12).
 *
 *   trifle-conformance [--driver NAME|PATH] [DRIVER_URL] [--driver-path DIRS] [--only GLOB]
 *                      [--list] [--tap] [--threads N] [--oom] [--namespace-param NAME]
 *                      [--skip-file FILE] [--server-flavor NAME] [--vectors DIR] [--verbose]
 *
 * Each case runs in its own namespace `trfl_c_<pid>_<n>`, passed as a URL parameter and dropped
 * afterwards. Output is one TAP line per case and a closing `N passed, N failed, N skipped`.
 * Exit status: 0 no failure, 1 a failure (or no server under CI), 2 usage, 77 no server (a ctest
 * skip). The test vectors come from --vectors DIR, else from the installed kit beside this
 * program (<prefix>/share/trifle-1/vectors), else from the source tree it was built from.
 * See docs/driver-guide.md. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef TRIFLE_BUILD_PLUGIN_DIR
#define TRIFLE_BUILD_PLUGIN_DIR ""
#endif
#ifndef TRIFLE_VECTORS_DIR
#define TRIFLE_VECTORS_DIR ""
#endif
#ifndef TRIFLE_VECTORS_REL
#define TRIFLE_VECTORS_REL ""
#endif
#ifndef TRIFLE_SOURCE_DIR
#define TRIFLE_SOURCE_DIR ""
#endif

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_SKIP 77

/* What the runner knows about the built-in drivers: the URL parameter that names a namespace
 * (SPEC §7.5-§7.8) and, for a driver that needs no server, the URL of a temp file. */
static const struct known_driver {
    const char *name;
    const char *ns_param;
    const char *temp_url;
} known_drivers[] = {
    {"sqlite", "table", "sqlite:%s/%s.db"},
    {"postgres", "table", NULL},
    {"redis", "prefix", NULL},
    {"mongo", "collection", NULL},
};

typedef struct options {
    const char *driver;
    const char *url;
    const char *driver_path;
    const char *only;
    const char *ns_param;
    const char *skip_file;
    const char *flavor;
    const char *vectors;
    int list, tap, oom, verbose;
    int threads;
} options;

/* One line of a conformance.skip file. */
typedef struct skip_rule {
    char *flavor; /* NULL: always */
    char *glob;
    char *reason;
    int line;
} skip_rule;

/* One case of the table, expanded for an identifier mode. */
typedef struct instance {
    const conf_case *k;
    char name[128];
    int mode;
    char na[256]; /* why it is not applicable to this driver, "" when it runs */
} instance;

static const conf_case *const *case_tables(void)
{
    static const conf_case *const tables[] = {
        conf_cases_write,  conf_cases_read,    conf_cases_ping,
        conf_cases_handle, conf_cases_vectors, conf_cases_concurrency,
        conf_cases_mark,   conf_cases_calls,   NULL};
    return tables;
}

static void usage(FILE *f)
{
    (void)fputs(
        "usage: trifle-conformance [--driver NAME|PATH] [DRIVER_URL] [--driver-path DIRS]\n"
        "                          [--only GLOB[,GLOB...]] [--list] [--tap] [--threads N] [--oom]\n"
        "                          [--namespace-param NAME] [--skip-file FILE]\n"
        "                          [--server-flavor NAME] [--vectors DIR] [--verbose]\n"
        "The URL defaults to $TRIFLE_TEST_URI_<NAME>; sqlite uses a temp file per case.\n"
        "The test vectors default to the installed kit's share/trifle-1/vectors.\n"
        "Exit: 0 no failure, 1 failure, 2 usage, 77 no server (1 with CI=true or\n"
        "TRIFLE_TEST_STRICT=1). See docs/driver-guide.md.\n",
        f);
}

/* `--name value` or `--name=value`; advances *i past a separate value. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **out)
{
    size_t n = strlen(name);

    if (strncmp(argv[*i], name, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *out = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        (void)fprintf(stderr, "trifle-conformance: %s needs a value\n", name);
        return -1;
    }
    *out = argv[++*i];
    return 1;
}

static int parse_args(options *o, int argc, char **argv)
{
    const char *threads = NULL;
    int i, r;

    memset(o, 0, sizeof(*o));
    o->threads = 8;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--list") == 0)
            o->list = 1;
        else if (strcmp(a, "--tap") == 0)
            o->tap = 1;
        else if (strcmp(a, "--oom") == 0)
            o->oom = 1;
        else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0)
            o->verbose = 1;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if ((r = opt_value(argc, argv, &i, "--driver", &o->driver)) != 0 ||
                   (r = opt_value(argc, argv, &i, "--driver-path", &o->driver_path)) != 0 ||
                   (r = opt_value(argc, argv, &i, "--only", &o->only)) != 0 ||
                   (r = opt_value(argc, argv, &i, "--threads", &threads)) != 0 ||
                   (r = opt_value(argc, argv, &i, "--namespace-param", &o->ns_param)) != 0 ||
                   (r = opt_value(argc, argv, &i, "--skip-file", &o->skip_file)) != 0 ||
                   (r = opt_value(argc, argv, &i, "--server-flavor", &o->flavor)) != 0 ||
                   (r = opt_value(argc, argv, &i, "--vectors", &o->vectors)) != 0) {
            if (r < 0)
                return -1;
        } else if (a[0] == '-') {
            (void)fprintf(stderr, "trifle-conformance: unknown option %s\n", a);
            return -1;
        } else if (o->url == NULL) {
            o->url = a;
        } else {
            (void)fprintf(stderr, "trifle-conformance: more than one DRIVER_URL (%s)\n", a);
            return -1;
        }
    }
    if (threads != NULL) {
        char *end;
        long n = strtol(threads, &end, 10);

        if (*threads == '\0' || *end != '\0' || n < 1 || n > 64) {
            (void)fprintf(stderr, "trifle-conformance: --threads must be 1 to 64, not %s\n",
                          threads);
            return -1;
        }
        o->threads = (int)n;
    }
    if (o->ns_param != NULL && o->ns_param[0] == '\0') {
        (void)fputs("trifle-conformance: --namespace-param must not be empty\n", stderr);
        return -1;
    }
    if (o->driver == NULL && o->url == NULL) {
        (void)fputs("trifle-conformance: give --driver NAME|PATH or a DRIVER_URL\n", stderr);
        return -1;
    }
    if (o->oom && o->driver == NULL) {
        (void)fputs("trifle-conformance: --oom needs --driver\n", stderr);
        return -1;
    }
    return 0;
}

static int is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The test vectors directory: --vectors DIR as given; else TRIFLE_VECTORS_REL from the directory
 * of this program, which is where `cmake --install` puts them under any prefix; else the source
 * tree the runner was built from (a build-tree run, or no /proc). NULL when --vectors names no
 * directory. */
static const char *vectors_find(const char *given, char *buf, size_t size)
{
    const char *rel = TRIFLE_VECTORS_REL;
    char exe[4096];
    char *slash;
    ssize_t n;

    if (given != NULL) {
        errno = 0;
        if (is_dir(given))
            return given;
        (void)fprintf(stderr, "trifle-conformance: --vectors %s: %s\n", given,
                      errno != 0 ? strerror(errno) : "not a directory");
        return NULL;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0 && TRIFLE_VECTORS_REL[0] != '\0') {
        exe[n] = '\0';
        /* the program's directory, then one level up per leading "../" of the relative path */
        for (slash = strrchr(exe, '/'); slash != NULL && strncmp(rel, "../", 3) == 0; rel += 3) {
            *slash = '\0';
            slash = strrchr(exe, '/');
        }
        if (slash != NULL) {
            *slash = '\0';
            if ((size_t)snprintf(buf, size, "%s/%s", exe, rel) < size && is_dir(buf))
                return buf;
        }
    }
    return TRIFLE_VECTORS_DIR;
}

static int strict_mode(void)
{
    const char *ci = getenv("CI"), *strict = getenv("TRIFLE_TEST_STRICT");

    return (ci != NULL && strcmp(ci, "true") == 0) || (strict != NULL && strcmp(strict, "1") == 0);
}

/* No server to test against: a ctest skip, or a failure where a missing server must not pass. */
static int no_server(const char *why)
{
    if (strict_mode()) {
        (void)fprintf(stderr, "trifle-conformance: %s (failing: CI=true or TRIFLE_TEST_STRICT=1)\n",
                      why);
        printf("0 passed, 1 failed, 0 skipped\n");
        return EXIT_FAIL;
    }
    printf("# SKIP %s\n0 passed, 0 failed, 0 skipped\n", why);
    return EXIT_SKIP;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);

    if (p == NULL) {
        (void)fputs("trifle-conformance: out of memory\n", stderr);
        exit(EXIT_FAIL);
    }
    return p;
}

/* TRIFLE_TEST_URI_<NAME>-style variable names: prefix + the upper-cased driver name. */
static void env_name(char *buf, size_t size, const char *prefix, const char *name)
{
    size_t i = strlen(prefix);

    (void)snprintf(buf, size, "%s%s", prefix, name);
    for (; buf[i] != '\0'; i++)
        if (buf[i] >= 'a' && buf[i] <= 'z')
            buf[i] = (char)(buf[i] - 'a' + 'A');
}

static int no_server_for(const char *name)
{
    char why[256], var[96];

    env_name(var, sizeof(var), "TRIFLE_TEST_URI_", name);
    (void)snprintf(why, sizeof(why), "no %s server: set %s or pass a DRIVER_URL", name, var);
    return no_server(why);
}

/* First half of target resolution, without libtrifle (--oom must not call the library before it
 * installs its allocator): the name of a --driver, the plugin directories. 0 or EXIT_USAGE. */
static int target_init(conf_target *t, const options *o)
{
    memset(t, 0, sizeof(*t));
    t->driver = o->driver;
    if (o->driver != NULL && strchr(o->driver, '/') != NULL) {
        /* a plugin file: trifle_<name>.so names the driver; its directory is searched first so
         * that handles, which find plugins by URL scheme, load the same file */
        const char *base = strrchr(o->driver, '/') + 1;
        size_t len = strlen(base), dlen = (size_t)(base - o->driver - 1);
        size_t size = dlen + 2 + (o->driver_path != NULL ? strlen(o->driver_path) + 1 : 0);

        if (strncmp(base, "trifle_", 7) != 0 || len <= 10 || strcmp(base + len - 3, ".so") != 0 ||
            len - 10 >= sizeof(t->name)) {
            (void)fprintf(stderr,
                          "trifle-conformance: plugin file %s is not named trifle_<name>.so\n",
                          o->driver);
            return EXIT_USAGE;
        }
        memcpy(t->name, base + 7, len - 10);
        if ((t->driver_path = malloc(size)) == NULL)
            return EXIT_FAIL;
        (void)snprintf(t->driver_path, size, "%.*s%s%s", (int)(dlen == 0 ? 1 : dlen), o->driver,
                       o->driver_path != NULL ? ":" : "",
                       o->driver_path != NULL ? o->driver_path : "");
    } else {
        if (o->driver != NULL) {
            size_t nlen = strlen(o->driver);

            if (nlen >= sizeof(t->name)) {
                (void)fprintf(stderr, "trifle-conformance: driver name too long: %s\n", o->driver);
                return EXIT_USAGE;
            }
            memcpy(t->name, o->driver, nlen + 1);
        }
        if (o->driver_path != NULL)
            t->driver_path = xstrdup(o->driver_path);
    }
    return 0;
}

/* Second half, once the name is known: namespace parameter, URL or temp file URL. */
static void target_finish(conf_target *t, const options *o)
{
    const struct known_driver *k = NULL;
    size_t i;

    for (i = 0; i < sizeof(known_drivers) / sizeof(known_drivers[0]); i++)
        if (strcmp(known_drivers[i].name, t->name) == 0)
            k = &known_drivers[i];
    t->ns_param = o->ns_param != NULL ? o->ns_param : k != NULL ? k->ns_param : "table";
    t->url = o->url;
    if (t->url == NULL) {
        char var[96];
        const char *v;

        env_name(var, sizeof(var), "TRIFLE_TEST_URI_", t->name);
        if ((v = getenv(var)) != NULL && v[0] != '\0')
            t->url = v;
    }
    if (t->url == NULL && k != NULL)
        t->temp_url = k->temp_url;
}

static void target_rm_tmpdir(conf_target *t)
{
    DIR *d;
    struct dirent *e;
    char path[1024];

    if (t->tmpdir[0] == '\0' || (d = opendir(t->tmpdir)) == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        (void)snprintf(path, sizeof(path), "%s/%s", t->tmpdir, e->d_name);
        (void)unlink(path);
    }
    closedir(d);
    (void)rmdir(t->tmpdir);
    t->tmpdir[0] = '\0';
}

/* ---- conformance.skip ---------------------------------------------------------------------- */

/* Lines: `<case-glob> <reason>` or `[<flavor>] <case-glob> <reason>`; `#` starts a comment.
 * A flavored line applies only when the server flavor (--server-flavor,
 * TRIFLE_TEST_SERVER_FLAVOR_<NAME>, TRIFLE_TEST_SERVER_FLAVOR) is <flavor>. */
static int skips_load(const char *path, int required, skip_rule **out, size_t *n_out)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    int lineno = 0;
    skip_rule *v = NULL;
    size_t n = 0;

    *out = NULL;
    *n_out = 0;
    if (f == NULL) {
        if (errno == ENOENT && !required)
            return 0; /* a driver without deviations has no file */
        (void)fprintf(stderr, "trifle-conformance: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *p = line, *flavor = NULL, *glob, *reason, *end;
        skip_rule *nv;

        lineno++;
        p[strcspn(p, "\r\n")] = '\0';
        p += strspn(p, " \t");
        if (*p == '\0' || *p == '#')
            continue;
        if (*p == '[') {
            if ((end = strchr(p, ']')) == NULL) {
                (void)fprintf(stderr, "%s:%d: unclosed [flavor]\n", path, lineno);
                (void)fclose(f);
                free(v);
                return -1;
            }
            *end = '\0';
            flavor = p + 1;
            p = end + 1 + strspn(end + 1, " \t");
        }
        glob = p;
        p += strcspn(p, " \t");
        if (*p == '\0') {
            (void)fprintf(stderr, "%s:%d: a reason is required after the case glob\n", path,
                          lineno);
            (void)fclose(f);
            free(v);
            return -1;
        }
        *p++ = '\0';
        reason = p + strspn(p, " \t");
        if ((nv = realloc(v, (n + 1) * sizeof(*v))) == NULL) {
            (void)fclose(f);
            free(v);
            return -1;
        }
        v = nv;
        v[n].flavor = flavor != NULL ? xstrdup(flavor) : NULL;
        v[n].glob = xstrdup(glob);
        v[n].reason = xstrdup(reason);
        v[n].line = lineno;
        n++;
    }
    (void)fclose(f);
    *out = v;
    *n_out = n;
    return 0;
}

static void skips_free(skip_rule *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(v[i].flavor);
        free(v[i].glob);
        free(v[i].reason);
    }
    free(v);
}

static const skip_rule *skips_match(const skip_rule *v, size_t n, const char *flavor,
                                    const char *name)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (v[i].flavor != NULL && (flavor == NULL || strcmp(v[i].flavor, flavor) != 0))
            continue;
        if (fnmatch(v[i].glob, name, 0) == 0)
            return &v[i];
    }
    return NULL;
}

/* --only GLOB[,GLOB...] */
static int selected(const char *only, const char *name)
{
    char glob[256];
    const char *p = only;

    if (only == NULL)
        return 1;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");

        if (len > 0 && len < sizeof(glob)) {
            memcpy(glob, p, len);
            glob[len] = '\0';
            if (fnmatch(glob, name, 0) == 0)
                return 1;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* ---- cases ---------------------------------------------------------------------------------- */

/* TRIFLE_CAP_* names, by bit: bit i is 1u << i. */
static const char *const cap_names[] = {
    "MODE_PARTIAL", "MODE_SEPARATED", "PING",         "TTL",   "ATOMIC_BATCH",
    "SETUP",        "EXACT_DOUBLES",  "JOURNAL_MARK", "CALLS",
};
_Static_assert(TRIFLE_CAP_CALLS == 1u << (sizeof(cap_names) / sizeof(cap_names[0]) - 1),
               "cap_names ends at TRIFLE_CAP_CALLS");

static void caps_text(char *buf, size_t size, uint64_t caps)
{
    size_t i, len = 0;

    buf[0] = '\0';
    for (i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++)
        if (caps & (UINT64_C(1) << i))
            len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "%s%s",
                                    len > 0 ? "|" : "", cap_names[i]);
    if (len == 0)
        (void)snprintf(buf, size, "none");
}

static void explain_na(char *buf, size_t size, const char *verb, uint64_t bits)
{
    char caps[128];

    caps_text(caps, sizeof(caps), bits);
    (void)snprintf(buf, size, "driver %s %s", verb, caps);
}

static instance *cases_expand(uint64_t caps, size_t *n_out)
{
    const conf_case *const *tables = case_tables();
    instance *v = NULL;
    size_t n = 0, cap = 0, t;

    for (t = 0; tables[t] != NULL; t++) {
        const conf_case *k;

        for (k = tables[t]; k->name != NULL; k++) {
            int modes = (k->flags & CONF_PER_MODE) ? 3 : 1, m;

            for (m = 0; m < modes; m++) {
                instance *in;
                uint64_t needs = k->needs;

                if (n == cap) {
                    cap = cap == 0 ? 64 : cap * 2;
                    if ((v = realloc(v, cap * sizeof(*v))) == NULL) {
                        (void)fputs("trifle-conformance: out of memory\n", stderr);
                        exit(EXIT_FAIL);
                    }
                }
                in = &v[n++];
                memset(in, 0, sizeof(*in));
                in->k = k;
                in->mode = m;
                if (k->flags & CONF_PER_MODE)
                    (void)snprintf(in->name, sizeof(in->name), "%s.%s", k->name, conf_mode_name(m));
                else
                    (void)snprintf(in->name, sizeof(in->name), "%s", k->name);
                if (m == TRIFLE_ID_PARTIAL)
                    needs |= TRIFLE_CAP_MODE_PARTIAL;
                if (m == TRIFLE_ID_SEPARATED)
                    needs |= TRIFLE_CAP_MODE_SEPARATED;
                if ((caps & needs) != needs)
                    explain_na(in->na, sizeof(in->na), "lacks", needs & ~caps);
                else if ((caps & k->lacks) != 0)
                    explain_na(in->na, sizeof(in->na), "declares", caps & k->lacks);
            }
        }
    }
    *n_out = n;
    return v;
}

/* A reason on one line (TAP). */
static void one_line(char *s)
{
    for (; *s != '\0'; s++)
        if (*s == '\n' || *s == '\r')
            *s = ' ';
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Remove the case's namespace through the driver's optional drop. */
static void ns_drop(conf_ctx *c)
{
    trifle_storage *st;
    int rc;

    if ((st = conf_storage(c, NULL)) == NULL)
        return;
    trifle_error_clear(&c->err);
    rc = trifle_storage_drop(st, &c->err);
    if (rc != 0 && rc != TRIFLE_ENOTSUP)
        conf_fail_err(c, "drop", rc);
    conf_release(c);
}

typedef struct totals {
    int passed, failed, skipped;
} totals;

static void run_one(conf_target *t, const options *o, uint64_t caps, const instance *in, int n,
                    const skip_rule *rule, totals *tot)
{
    conf_ctx c;
    char ns[64];
    char *url;
    double t0 = now_s(), dt;
    int rc;

    if (rule != NULL) {
        printf("ok %d - %s # SKIP %s (conformance.skip:%d)\n", n, in->name, rule->reason,
               rule->line);
        (void)fflush(stdout);
        tot->skipped++;
        return;
    }
    /* minor 12: only [A-Za-z0-9_], well under the 58-byte table name limit */
    (void)snprintf(ns, sizeof(ns), "trfl_c_%ld_%d", (long)getpid(), n);
    if ((url = conf_target_url(t, ns, in->mode)) == NULL) {
        printf("not ok %d - %s: cannot build the driver URL\n", n, in->name);
        tot->failed++;
        return;
    }
    memset(&c, 0, sizeof(c));
    c.name = in->name;
    c.url = url;
    c.ns = ns;
    c.ns_param = t->ns_param;
    c.driver = t->driver;
    c.driver_path = t->driver_path;
    c.vectors_dir = o->vectors;
    c.mode = in->mode;
    c.caps = caps;
    c.threads = o->threads;
    if (!(in->k->flags & CONF_BARE) && (c.st = conf_storage(&c, NULL)) != NULL &&
        !(in->k->flags & CONF_NO_SETUP)) {
        trifle_error_clear(&c.err);
        if ((rc = trifle_storage_setup(c.st, &c.err)) != 0)
            conf_fail_err(&c, "setup", rc);
    }
    if (!c.failed)
        in->k->run(&c);
    conf_release(&c);
    ns_drop(&c);
    dt = now_s() - t0;
    one_line(c.reason);
    if (c.failed) {
        printf("not ok %d - %s: %s\n", n, in->name, c.reason);
        tot->failed++;
    } else if (c.skipped) {
        printf("ok %d - %s # SKIP %s\n", n, in->name, c.reason);
        tot->skipped++;
    } else {
        printf("ok %d - %s\n", n, in->name);
        tot->passed++;
    }
    if (dt >= 2.0)
        printf("# %s took %.1f s\n", in->name, dt);
    (void)fflush(stdout);
    free(url);
}

/* Can the server be reached at all? 0 yes, else the exit status to end with. */
static int probe(conf_target *t)
{
    conf_ctx c;
    char ns[64];
    char *url;
    int rc = 0;

    (void)snprintf(ns, sizeof(ns), "trfl_c_%ld_0", (long)getpid());
    if ((url = conf_target_url(t, ns, TRIFLE_ID_FULL)) == NULL)
        return EXIT_FAIL;
    memset(&c, 0, sizeof(c));
    c.url = url;
    c.ns = ns;
    c.driver = t->driver;
    c.driver_path = t->driver_path;
    if ((c.st = conf_storage(&c, NULL)) != NULL) {
        trifle_error_clear(&c.err);
        if ((rc = trifle_storage_setup(c.st, &c.err)) != 0)
            conf_fail_err(&c, "setup", rc);
        else if ((rc = trifle_storage_drop(c.st, &c.err)) != 0 && rc != TRIFLE_ENOTSUP)
            conf_fail_err(&c, "drop", rc);
    }
    conf_release(&c);
    free(url);
    if (!c.failed)
        return 0;
    if (c.err.code == TRIFLE_ECONN || c.err.code == TRIFLE_ETIMEDOUT) {
        char why[1200]; /* "<case> server not reachable: " + reason[1024] */

        (void)snprintf(why, sizeof(why), "%s server not reachable: %s", t->name, c.reason);
        return no_server(why);
    }
    (void)fprintf(stderr, "trifle-conformance: %s\n", c.reason);
    return EXIT_FAIL;
}

static void log_to_stderr(int level, const char *origin, const char *message, void *payload)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};

    (void)payload;
    (void)fprintf(stderr, "[%s %s] %s\n", origin, level >= 0 && level <= 3 ? names[level] : "?",
                  message);
}

static const char *server_flavor(const options *o, const conf_target *t)
{
    char var[96];
    const char *v;

    if (o->flavor != NULL)
        return o->flavor;
    env_name(var, sizeof(var), "TRIFLE_TEST_SERVER_FLAVOR_", t->name);
    if ((v = getenv(var)) != NULL && v[0] != '\0')
        return v;
    if ((v = getenv("TRIFLE_TEST_SERVER_FLAVOR")) != NULL && v[0] != '\0')
        return v;
    return NULL;
}

int main(int argc, char **argv)
{
    options o;
    conf_target t;
    const trifle_driver *drv = NULL;
    trifle_error err = TRIFLE_ERROR_INIT;
    instance *cases = NULL;
    size_t n_cases = 0, i;
    skip_rule *skips = NULL;
    size_t n_skips = 0;
    char skip_path[1024] = "", caps[128], vectors[4096];
    const char *flavor;
    totals tot = {0, 0, 0};
    int rc, n, planned = 0;

    if (parse_args(&o, argc, argv) != 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if ((o.vectors = vectors_find(o.vectors, vectors, sizeof(vectors))) == NULL)
        return EXIT_USAGE;
    if ((rc = target_init(&t, &o)) != 0)
        return rc;
    if (o.oom) {
        target_finish(&t, &o);
        if (t.url == NULL && t.temp_url == NULL) {
            free(t.driver_path);
            return no_server_for(t.name);
        }
        rc = conf_oom_main(&t, o.tap);
        target_rm_tmpdir(&t);
        free(t.driver_path);
        return rc;
    }
    if (o.verbose)
        trifle_set_log_handler(TRIFLE_LOG_DEBUG, log_to_stderr, NULL);
    conf_register_build_dir();
    if (t.name[0] == '\0' && trifle_driver_for_url(t.name, sizeof(t.name), o.url, &err) != 0) {
        (void)fprintf(stderr, "trifle-conformance: %s\n", err.message);
        return EXIT_USAGE;
    }
    target_finish(&t, &o);
    if (trifle_driver_load(&drv, t.driver != NULL ? t.driver : t.name, t.driver_path, &err) != 0) {
        (void)fprintf(stderr, "trifle-conformance: %s\n", err.message);
        free(t.driver_path);
        return EXIT_FAIL;
    }
    caps_text(caps, sizeof(caps), drv->caps);
    cases = cases_expand(drv->caps, &n_cases);

    if (o.list) {
        for (i = 0, n = 0; i < n_cases; i++) {
            if (!selected(o.only, cases[i].name))
                continue;
            if (cases[i].na[0] != '\0')
                printf("n/a %s  (%s)\n", cases[i].name, cases[i].na);
            else
                printf("%d %s\n", ++n, cases[i].name);
        }
        rc = 0;
        goto done;
    }
    if (t.url == NULL && t.temp_url == NULL) {
        rc = no_server_for(t.name);
        goto done;
    }
    if (o.skip_file != NULL)
        (void)snprintf(skip_path, sizeof(skip_path), "%s", o.skip_file);
    else if (TRIFLE_SOURCE_DIR[0] != '\0')
        (void)snprintf(skip_path, sizeof(skip_path), "%s/drivers/%s/conformance.skip",
                       TRIFLE_SOURCE_DIR, t.name);
    if (skip_path[0] != '\0' && skips_load(skip_path, o.skip_file != NULL, &skips, &n_skips) != 0) {
        rc = EXIT_FAIL;
        goto done;
    }
    flavor = server_flavor(&o, &t);
    if ((rc = probe(&t)) != 0)
        goto done;

    for (i = 0; i < n_cases; i++)
        if (cases[i].na[0] == '\0' && selected(o.only, cases[i].name))
            planned++;
    if (o.tap)
        printf("1..%d\n", planned);
    printf("# trifle-conformance %s: driver %s %s (ABI %u.%u), caps %s%s%s\n", trifle_version(),
           drv->name, drv->version != NULL ? drv->version : "?", (unsigned)drv->abi_major,
           (unsigned)drv->abi_minor, caps, flavor != NULL ? ", server flavor " : "",
           flavor != NULL ? flavor : "");
    printf("# vectors %s\n", o.vectors);
    (void)fflush(stdout);
    for (i = 0, n = 0; i < n_cases; i++) {
        if (cases[i].na[0] != '\0' || !selected(o.only, cases[i].name))
            continue;
        n++;
        run_one(&t, &o, drv->caps, &cases[i], n, skips_match(skips, n_skips, flavor, cases[i].name),
                &tot);
    }
    printf("%d passed, %d failed, %d skipped\n", tot.passed, tot.failed, tot.skipped);
    rc = tot.failed > 0 ? EXIT_FAIL : 0;
done:
    fflush(stdout);
    skips_free(skips, n_skips);
    free(cases);
    target_rm_tmpdir(&t);
    free(t.driver_path);
    trifle_shutdown();
    return rc;
}
