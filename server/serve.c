/* `trifle serve`: start-up, the signal loop and the graceful shutdown (SPEC §9, §11.4, §12;
 * ERRATA minor 21, 22).
 *
 * Start-up: block SIGTERM/SIGINT/SIGPIPE before any thread exists, read the configuration (or
 * build the zero-config default), check data_dir and keep a descriptor of it, bind the listening
 * socket, start Simple Stats, open every source (running `setup` where configured), start
 * libmicrohttpd. The main thread then waits for a signal with sigtimedwait(), refreshing the
 * buffer counters once a second; libtrifle never sees a signal.
 *
 * Shutdown: stop accepting (the listening socket is closed), answer requests that arrive on open
 * connections with 503 + Connection: close, wait for running requests (at most
 * http.shutdown_timeout_ms), stop libmicrohttpd, close every source (its final flush), save Simple
 * Stats. Every 201 was given after the write was accepted by the source's buffer, and closing the
 * source writes the buffer, so an accepted write is lost only if a close fails, and then the exit
 * status is 1 (ERRATA minor 22). */
#include "srv_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Request/response pools: small buffers are reused, big ones go back to the heap. */
#define POOL_DEFAULT_ITEM 4096
#define POOL_MAX_ITEM (256 * 1024)
#define POOL_MAX_COUNT 1024
#define POOL_MAX_SIZE (32 * 1024 * 1024)

static void log_handler(int level, const char *origin, const char *message, void *payload)
{
    (void)payload;
    srv_log(level, "%s: %s", origin, message);
}

/* A failed flush is kept and retried by the buffer; outage.c turns the failures into three kinds
 * of log lines instead of one line each. */
static void flush_error_handler(const trifle_error *err, void *payload)
{
    srv_source *s = payload;

    srv_outage_failed(&s->outage, err);
}

static int errno_text(char *buf, size_t size, int e)
{
    if (strerror_r(e, buf, size) != 0)
        (void)snprintf(buf, size, "error %d", e);
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Listening                                                                                    */

static int addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return 1;
        return memcmp(in6->sin6_addr.s6_addr, v4mapped, 12) == 0 &&
               in6->sin6_addr.s6_addr[12] == 127;
    }
    return 0;
}

static int resolve(const srv_listen_addr *a, struct addrinfo **res, char *reason, size_t size)
{
    struct addrinfo hints;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(a->host, a->port, &hints, res);
    if (rc != 0) {
        (void)snprintf(reason, size, "%s", gai_strerror(rc));
        return -1;
    }
    return 0;
}

/* SPEC §12.1: without a configuration file only loopback addresses (or a unix socket) are served.
 */
static int check_loopback(const srv_listen_addr *a, const char *text, trifle_error *err)
{
    struct addrinfo *res = NULL, *ai;
    char reason[256];
    int ok = 1;

    if (a->is_unix)
        return 0;
    if (resolve(a, &res, reason, sizeof(reason)) != 0)
        return srv_error(err, TRIFLE_ECONFIG, "http.listen: cannot resolve %s: %s", text, reason);
    for (ai = res; ai != NULL; ai = ai->ai_next)
        if (!addr_is_loopback(ai->ai_addr))
            ok = 0;
    freeaddrinfo(res);
    if (!ok)
        return srv_error(err, TRIFLE_ECONFIG,
                         "http.listen: refusing to listen on non-loopback address %s without a "
                         "configuration file (use --config)",
                         text);
    return 0;
}

/* Bind (listen() comes later, in start_listening()); the bound address (port 0 chosen by the
 * kernel) goes to @p shown. Binding first reports a taken or forbidden address before the sources
 * are opened; listening only after they are open means a client is refused, not queued, while
 * the journals replay. */
static int open_listener(srv_server *s, const srv_listen_addr *a, char *shown, size_t size,
                         trifle_error *err)
{
    char where[4200];
    char reason[256];
    int fd = -1, one = 1;

    if (s->listen_from_cli)
        (void)snprintf(where, sizeof(where), "--listen");
    else if (s->cfg->listen_line > 0)
        (void)snprintf(where, sizeof(where), "%s:%zu:%zu: http.listen", s->cfg->file,
                       s->cfg->listen_line, s->cfg->listen_col);
    else
        (void)snprintf(where, sizeof(where), "http.listen");
    if (a->is_unix) {
        struct sockaddr_un un;
        struct stat st;
        memset(&un, 0, sizeof(un));
        un.sun_family = AF_UNIX;
        memcpy(un.sun_path, a->path, strlen(a->path) + 1);
        /* a socket file left by a previous run is replaced; any other file is not */
        if (lstat(a->path, &st) == 0 && S_ISSOCK(st.st_mode))
            (void)unlink(a->path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&un, sizeof(un)) != 0)
            goto fail;
        (void)snprintf(shown, size, "unix:%s", a->path);
    } else {
        struct addrinfo *res = NULL, *ai;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char host[128], port[16];
        int e = 0;
        if (resolve(a, &res, reason, sizeof(reason)) != 0)
            return srv_error(err, TRIFLE_ECONFIG, "%s: cannot resolve %s: %s", where,
                             s->cfg->listen, reason);
        for (ai = res; ai != NULL; ai = ai->ai_next) {
            fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
            if (fd < 0) {
                e = errno;
                continue;
            }
            (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0)
                break;
            e = errno;
            close(fd);
            fd = -1;
        }
        freeaddrinfo(res);
        if (fd < 0) {
            errno = e;
            goto fail;
        }
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
            getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
                        NI_NUMERICHOST | NI_NUMERICSERV) == 0)
            (void)snprintf(shown, size, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
        else
            (void)snprintf(shown, size, "%s", s->cfg->listen);
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        goto fail;
    s->listen_fd = fd;
    s->listen_backlog = a->is_unix ? 1024 : 4096;
    return 0;
fail:
    errno_text(reason, sizeof(reason), errno);
    if (fd >= 0)
        close(fd);
    return srv_error(err, TRIFLE_ECONFIG, "%s: cannot listen on %s: %s", where, s->cfg->listen,
                     reason);
}

static int start_listening(srv_server *s, trifle_error *err)
{
    char reason[256];

    if (listen(s->listen_fd, s->listen_backlog) == 0)
        return 0;
    errno_text(reason, sizeof(reason), errno);
    return srv_error(err, TRIFLE_ECONFIG, "http.listen: cannot listen on %s: %s", s->cfg->listen,
                     reason);
}

/* ------------------------------------------------------------------------------------------- */
/* Sources                                                                                      */

/* mkdir -p for the journal directory of a source (mode 0750, like data_dir's own files). */
static int make_dirs(const char *path, char *reason, size_t size)
{
    char buf[4096];
    size_t n = strlen(path), i;

    if (n == 0 || n >= sizeof(buf)) {
        (void)snprintf(reason, size, "path too long");
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST) {
            errno_text(reason, size, errno);
            return -1;
        }
        buf[i] = path[i];
    }
    return 0;
}

/* A buffer-flusher is "running" while it has something to write. */
static int flusher_state(void *payload)
{
    const srv_source *s = payload;
    trifle_buffer_counters c = TRIFLE_BUFFER_COUNTERS_INIT;

    if (s->t == NULL || trifle_buffer_stats(s->t, &c) != 0)
        return SRV_THREAD_IDLE;
    return c.pending_entries > 0 ? SRV_THREAD_RUNNING : SRV_THREAD_IDLE;
}

static int source_error(const srv_config *c, size_t i, int rc, const trifle_error *e,
                        trifle_error *err)
{
    const srv_source_config *sc = &c->sources[i];

    if (c->file != NULL)
        return srv_error(err, rc, "%s:%s: sources[%zu].driver: %s", c->file, sc->where, i,
                         e->message);
    return srv_error(err, rc, "sources[%zu] (%s): %s", i, sc->id, e->message);
}

/* A note the journal replay of a source found (trifle_config_set_note_handler). */
static int note_handler(void *payload, const void *note, size_t len)
{
    srv_source *src = payload;

    return srv_idem_noted(src->idem, src->cfg->id, note, len);
}

static int open_sources(srv_server *s, trifle_error *err)
{
    size_t i, j;
    int rc;

    if ((s->sources = calloc(s->cfg->n_sources, sizeof(*s->sources))) == NULL)
        return srv_error(err, TRIFLE_ENOMEM, "out of memory");
    s->n_sources = s->cfg->n_sources;
    for (i = 0; i < s->n_sources; i++) {
        srv_source *src = &s->sources[i];
        const trifle_config *eff;
        const char *enabled, *async;
        trifle_error e = TRIFLE_ERROR_INIT;
        trifle_buffer_counters bc = TRIFLE_BUFFER_COUNTERS_INIT;
        int64_t t0;
        src->cfg = &s->cfg->sources[i];
        (void)snprintf(src->category, sizeof(src->category), "buffer.%s", src->cfg->id);
        atomic_init(&src->journal_refused, 0);
        atomic_init(&src->journal_refused_new, 0);
        atomic_init(&src->journal_logged_ms, 0);
        if (srv_outage_init(&src->outage) != 0)
            return srv_error(err, TRIFLE_ERROR, "cannot create a mutex");
        if (src->cfg->journal_dir != NULL) {
            char reason[160];
            if (make_dirs(src->cfg->journal_dir, reason, sizeof(reason)) != 0)
                return srv_error(err, TRIFLE_ECONFIG, "sources[%zu] (%s): journal %s: %s", i,
                                 src->cfg->id, src->cfg->journal_dir, reason);
        }
        /* trifle_open() replays the journal (and tries to store it) before it returns, so every
         * write acknowledged before a crash is pending again before the listener opens; the
         * notes of the replayed calls advance their Idempotency-Keys (idempotency.c) */
        src->idem = s->idem;
        trifle_config_set_note_handler(src->cfg->lib, note_handler, src);
        t0 = srv_monotonic_ms();
        if ((rc = trifle_open(&src->t, src->cfg->lib, &e)) != 0)
            return source_error(s->cfg, i, rc, &e, err);
        t0 = srv_monotonic_ms() - t0;
        trifle_set_error_handler(src->t, flush_error_handler, src);
        if (src->cfg->setup && (rc = trifle_setup(src->t, &e)) != 0)
            return source_error(s->cfg, i, rc, &e, err);
        {
            /* passwords never reach the log (SPEC §11.2) */
            char masked[512], desc[64];
            (void)trifle_url_mask(masked, sizeof(masked), src->cfg->driver);
            (void)trifle_describe(src->t, desc, sizeof(desc));
            srv_log(TRIFLE_LOG_INFO, "source %s: %s (%s%s%s)", src->cfg->id, masked, desc,
                    src->cfg->read_only ? ", read-only" : "", src->cfg->setup ? ", setup" : "");
        }
        if (src->cfg->journal_dir != NULL && trifle_buffer_stats(src->t, &bc) == 0) {
            const char *sync = trifle_config_get(trifle_get_config(src->t), "buffer.journal_sync");
            srv_log(TRIFLE_LOG_INFO,
                    "source %s: journal %s (sync %s), opened and replayed in %" PRId64
                    " ms, %" PRIu64 " entries pending%s",
                    src->cfg->id, src->cfg->journal_dir, sync != NULL ? sync : "?", t0,
                    bc.pending_entries,
                    bc.pending_entries > 0 ? " (not stored yet: retried in the background)" : "");
        }
        src->zone = trifle_get_zone(src->t);
        /* the effective configuration: URL parameters override source keys (ERRATA I8) */
        eff = trifle_get_config(src->t);
        src->n_granularities = trifle_config_granularity_count(eff);
        if ((src->granularities = calloc(src->n_granularities + 1, sizeof(char *))) == NULL)
            return srv_error(err, TRIFLE_ENOMEM, "out of memory");
        for (j = 0; j < src->n_granularities; j++)
            src->granularities[j] = trifle_config_granularity(eff, j);
        src->default_granularity = src->cfg->default_granularity;
        for (j = 0; src->default_granularity == NULL && j < src->n_granularities; j++)
            if (strcmp(src->granularities[j], "1h") == 0)
                src->default_granularity = src->granularities[j];
        for (j = 0; src->default_granularity == NULL && j < src->n_granularities; j++)
            if (strcmp(src->granularities[j], "1d") == 0)
                src->default_granularity = src->granularities[j];
        if (src->default_granularity == NULL)
            src->default_granularity = src->granularities[0];
        enabled = trifle_config_get(eff, "buffer.enabled");
        async = trifle_config_get(eff, "buffer.async");
        if (enabled != NULL && strcmp(enabled, "true") == 0 && async != NULL &&
            strcmp(async, "true") == 0) {
            char role[96];
            (void)snprintf(role, sizeof(role), "buffer-flusher:%s", src->cfg->id);
            (void)srv_thread_register(role, SRV_THREAD_IDLE, flusher_state, src);
        }
    }
    return 0;
}

/* Files DELETE must refuse (SPEC §10.7, ERRATA minor 21). */
static int protect(srv_server *s, const char *dir, const char *name)
{
    srv_protected *p = realloc(s->protected_files, (s->n_protected + 1) * sizeof(*p));

    if (p == NULL)
        return -1;
    s->protected_files = p;
    p[s->n_protected].dir = strdup(dir);
    p[s->n_protected].name = strdup(name);
    if (p[s->n_protected].dir == NULL || p[s->n_protected].name == NULL) {
        free(p[s->n_protected].dir);
        free(p[s->n_protected].name);
        return -1;
    }
    s->n_protected++;
    return 0;
}

static int protect_files(srv_server *s, trifle_error *err)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    const srv_config *c = s->cfg;
    char dir[4096], name[1024];
    size_t i, k;

    (void)snprintf(dir, sizeof(dir), "%s/stats", c->data_dir);
    if (protect(s, dir, "simple") != 0 || protect(s, dir, "simple.tmp") != 0 ||
        protect(s, c->data_dir, "tokens") != 0 || protect(s, c->data_dir, "tokens.tmp") != 0)
        return srv_error(err, TRIFLE_ENOMEM, "out of memory");
    for (i = 0; i < c->n_sources; i++) {
        const char *file = c->sources[i].sqlite_file, *slash;
        /* every file of a journal directory but the `*.corrupt` files the replay set aside */
        if (c->sources[i].journal_dir != NULL && protect(s, c->sources[i].journal_dir, "*") != 0)
            return srv_error(err, TRIFLE_ENOMEM, "out of memory");
        if (file == NULL)
            continue;
        slash = strrchr(file, '/');
        if (slash == NULL)
            (void)snprintf(dir, sizeof(dir), ".");
        else
            (void)snprintf(dir, sizeof(dir), "%.*s", slash == file ? 1 : (int)(slash - file), file);
        for (k = 0; k < sizeof(suffixes) / sizeof(suffixes[0]); k++) {
            (void)snprintf(name, sizeof(name), "%s%s", slash != NULL ? slash + 1 : file,
                           suffixes[k]);
            if (protect(s, dir, name) != 0)
                return srv_error(err, TRIFLE_ENOMEM, "out of memory");
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Simple Stats                                                                                 */

/* The Simple Stats consumer and checkpoint threads list themselves in /debug/threads. */
static _Thread_local srv_thread *stats_thread;

static void stats_thread_hook(const char *role, int event, void *payload)
{
    (void)payload;
    switch (event) {
    case TRIFLE_SIMPLE_THREAD_START:
        stats_thread = srv_thread_register(role, SRV_THREAD_RUNNING, NULL, NULL);
        break;
    case TRIFLE_SIMPLE_THREAD_RUNNING:
        srv_thread_set_state(stats_thread, SRV_THREAD_RUNNING);
        break;
    case TRIFLE_SIMPLE_THREAD_IDLE:
        srv_thread_set_state(stats_thread, SRV_THREAD_IDLE);
        break;
    case TRIFLE_SIMPLE_THREAD_EXIT:
        srv_thread_retire(stats_thread);
        stats_thread = NULL;
        break;
    default:
        break;
    }
}

static int start_stats(srv_server *s, trifle_simple_label **labels, trifle_error *err)
{
    srv_config *c = s->cfg;
    trifle_simple_options o = c->stats;
    size_t i;
    int rc;

    *labels = NULL;
    s->stats_enabled = o.enabled;
    o.data_dir = c->data_dir;
    o.node_name = c->node_name;
    o.node_id = c->node_id;
    if (c->n_labels > 0) {
        if ((*labels = calloc(c->n_labels, sizeof(**labels))) == NULL)
            return srv_error(err, TRIFLE_ENOMEM, "out of memory");
        for (i = 0; i < c->n_labels; i++) {
            (*labels)[i].name = c->labels[i].name;
            (*labels)[i].value = c->labels[i].value;
        }
    }
    o.prometheus_labels = *labels;
    o.n_prometheus_labels = c->n_labels;
    if ((rc = trifle_simple_configure(&o, err)) != 0)
        return rc;
    trifle_simple_set_thread_hook(stats_thread_hook, NULL);
    if ((rc = trifle_simple_start(err)) != 0)
        return rc;
    if (!o.enabled)
        return 0;
    if ((rc = trifle_simple_register("system", trifle_simple_system_provider,
                                     c->stats_storage ? c->data_dir : NULL, err)) != 0 ||
        (c->stats_storage && (rc = trifle_simple_register("disk", trifle_simple_disk_provider,
                                                          c->data_dir, err)) != 0) ||
        (rc = trifle_simple_register("pool", srv_pools_provider, s, err)) != 0)
        return rc;
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* The run                                                                                      */

static void check_outages(srv_server *s)
{
    int64_t now = srv_monotonic_ms();
    size_t i;

    for (i = 0; i < s->n_sources; i++) {
        trifle_buffer_counters c = TRIFLE_BUFFER_COUNTERS_INIT;
        if (s->sources[i].t != NULL && trifle_buffer_stats(s->sources[i].t, &c) == 0)
            srv_outage_tick(&s->sources[i].outage, s->sources[i].cfg->id, &c, now);
    }
}

/* Wait for SIGTERM/SIGINT, refreshing the buffer counters once a second (or once per stats
 * checkpoint when that is more often, so a checkpoint never saves stale buffer figures). */
static int wait_for_signal(srv_server *s, const sigset_t *set)
{
    int64_t ms =
        s->cfg->stats.checkpoint_interval_ms < 1000 ? s->cfg->stats.checkpoint_interval_ms : 1000;

    for (;;) {
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT)
            return sig;
        if (sig < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        srv_counters_refresh(s);
        check_outages(s);
    }
}

static void drain_requests(srv_server *s)
{
    int64_t deadline = srv_monotonic_ms() + s->cfg->shutdown_timeout_ms;
    long left;

    while ((left = atomic_load(&s->active)) > 0 && srv_monotonic_ms() < deadline) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (left > 0)
        srv_log(TRIFLE_LOG_WARN, "%ld request(s) still running after %d ms: closing them", left,
                s->cfg->shutdown_timeout_ms);
}

/* Close every source (final flush). Returns 0 or the first close failure. */
static int close_sources(srv_server *s, trifle_error *err)
{
    size_t i;
    int first = 0;

    for (i = 0; i < s->n_sources; i++) {
        trifle_error e = TRIFLE_ERROR_INIT;
        int rc;
        if (s->sources[i].t == NULL)
            continue;
        rc = trifle_close(s->sources[i].t, &e);
        if (rc != 0) {
            srv_log(TRIFLE_LOG_ERROR, "source %s: close failed: %s", s->sources[i].cfg->id,
                    e.message);
            if (first == 0)
                first = srv_error(err, rc, "source %s: %s", s->sources[i].cfg->id, e.message);
        }
    }
    return first;
}

static int prepare_data_dir(srv_server *s, int zero_config, trifle_error *err)
{
    char reason[160];

    if (zero_config && mkdir(s->cfg->data_dir, 0750) != 0 && errno != EEXIST) {
        errno_text(reason, sizeof(reason), errno);
        return srv_error(err, TRIFLE_ECONFIG, "data_dir: cannot create %s: %s", s->cfg->data_dir,
                         reason);
    }
    s->data_fd = open(s->cfg->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->data_fd < 0) {
        errno_text(reason, sizeof(reason), errno);
        return srv_error(err, TRIFLE_ECONFIG, "data_dir: %s: %s", s->cfg->data_dir, reason);
    }
    if (zero_config && access(s->cfg->data_dir, W_OK | X_OK) != 0)
        return srv_error(err, TRIFLE_ECONFIG, "data_dir: %s: not writable", s->cfg->data_dir);
    return 0;
}

int srv_serve(const srv_options *opts, trifle_error *err)
{
    srv_server s;
    srv_config *cfg = NULL;
    sigset_t set;
    srv_listen_addr addr;
    trifle_simple_label *labels = NULL;
    const char *reason;
    char shown[300];
    int zero = opts->config_path == NULL, rc = 0, stats_started = 0, bound_unix = 0, sig;
    size_t i;

    memset(&s, 0, sizeof(s));
    s.data_fd = -1;
    s.listen_fd = -1;
    s.dispatch = srv_dispatch; /* the handlers, for the transport (routes.c) */
    atomic_init(&s.connections, 0);
    atomic_init(&s.active, 0);
    atomic_init(&s.stopping, 0);
    if (pthread_mutex_init(&s.counters_lock, NULL) != 0)
        return srv_error(err, TRIFLE_ERROR, "cannot create a mutex");

    /* every thread created from here on inherits the mask: only sigtimedwait() sees them */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    sigdelset(&set, SIGPIPE);
    trifle_set_log_handler(TRIFLE_LOG_WARN, log_handler, NULL);
    srv_threads_reset();

    rc = zero ? srv_config_default(&cfg, err) : srv_config_load(&cfg, opts->config_path, err);
    if (rc != 0)
        goto done;
    s.cfg = cfg;
    if (opts->listen != NULL) {
        char *l;
        if (srv_listen_parse(&addr, opts->listen, &reason) != 0) {
            rc = srv_error(err, TRIFLE_ECONFIG, "--listen: invalid listen address \"%s\": %s",
                           opts->listen, reason);
            goto done;
        }
        if ((l = strdup(opts->listen)) == NULL) {
            rc = srv_error(err, TRIFLE_ENOMEM, "out of memory");
            goto done;
        }
        free(cfg->listen);
        cfg->listen = l;
        s.listen_from_cli = 1;
    }
    (void)srv_listen_parse(&addr, cfg->listen, &reason);
    if (zero && (rc = check_loopback(&addr, cfg->listen, err)) != 0)
        goto done;
    if (cfg->driver_path == NULL && opts->driver_path != NULL) {
        for (i = 0; i < cfg->n_sources; i++) {
            trifle_error e = TRIFLE_ERROR_INIT;
            if ((rc = trifle_config_set(cfg->sources[i].lib, "driver_path", opts->driver_path,
                                        &e)) != 0) {
                rc = srv_error(err, rc, "--driver-path: %s", e.message);
                goto done;
            }
        }
    }
    if ((rc = prepare_data_dir(&s, zero, err)) != 0)
        goto done;
    if (zero && (rc = srv_tokens_file_load(cfg, s.data_fd, err)) != 0)
        goto done;
    if (cfg->n_tokens == 0)
        srv_log(TRIFLE_LOG_WARN, "no tokens configured: every authenticated endpoint answers 401");
    if ((rc = open_listener(&s, &addr, shown, sizeof(shown), err)) != 0)
        goto done;
    bound_unix = addr.is_unix;

    (void)srv_thread_register("main", SRV_THREAD_IDLE, NULL, NULL);
    for (i = 0; i < (size_t)cfg->threads; i++)
        (void)srv_thread_register("http-worker", SRV_THREAD_IDLE, NULL, NULL);
    if ((rc = srv_pool_init(&s.request_pool, "http_request", POOL_DEFAULT_ITEM, POOL_MAX_ITEM,
                            POOL_MAX_COUNT, POOL_MAX_SIZE)) != 0 ||
        (rc = srv_pool_init(&s.response_pool, "http_response", POOL_DEFAULT_ITEM, POOL_MAX_ITEM,
                            POOL_MAX_COUNT, POOL_MAX_SIZE)) != 0) {
        rc = srv_error(err, rc, "cannot create the buffer pools");
        goto done;
    }
    if ((rc = start_stats(&s, &labels, err)) != 0)
        goto done;
    stats_started = 1;
    /* the library says what a replay did at INFO; afterwards WARN only, since the drivers log
     * each reconnection at INFO and an outage has its own lines (outage.c) */
    /* issue 13: the Idempotency-Keys of writes, before the sources: their journal replay hands
     * over the notes of the calls it finds (idempotency.c) */
    if ((rc = srv_idem_open(&s.idem, s.data_fd, cfg->data_dir, cfg->idempotency_window_s, err)) !=
        0)
        goto done;
    trifle_set_log_handler(TRIFLE_LOG_INFO, log_handler, NULL);
    rc = open_sources(&s, err);
    trifle_set_log_handler(TRIFLE_LOG_WARN, log_handler, NULL);
    if (rc == 0 && srv_idem_sync(s.idem) != 0)
        rc = srv_error(err, TRIFLE_EIO, "data_dir: %s/idempotency.log: cannot sync: %s",
                       cfg->data_dir, strerror(errno));
    if (rc != 0 || (rc = protect_files(&s, err)) != 0)
        goto done;
    /* issue 15: saved dashboards and monitors (after the sources: monitors read them) */
    if ((rc = srv_dashboards_open(&s, err)) != 0 || (rc = srv_monitors_start(&s, err)) != 0)
        goto done;
    if ((rc = srv_transponders_open(&s, err)) != 0) /* issue #13 */
        goto done;
    if ((rc = start_listening(&s, err)) != 0 || (rc = srv_http_start(&s, err)) != 0)
        goto done;
    srv_log(TRIFLE_LOG_INFO, "listening on %s%s (%zu source%s, %d threads, data in %s)",
            addr.is_unix ? "" : "http://", shown, s.n_sources, s.n_sources == 1 ? "" : "s",
            cfg->threads, cfg->data_dir);

    sig = wait_for_signal(&s, &set);
    srv_log(TRIFLE_LOG_INFO, "%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    atomic_store(&s.stopping, 1);
    srv_http_quiesce(&s);
    drain_requests(&s);
    srv_http_stop(&s);

done:
    /* also the path of a failed start-up: every step copes with what was not done */
    srv_http_stop(&s);
    if (s.listen_fd >= 0)
        close(s.listen_fd);
    srv_monitors_stop(&s); /* before the sources close: it reads them */
    srv_dashboards_close(&s);
    srv_transponders_close(&s);
    srv_idem_close(s.idem);
    s.idem = NULL;
    {
        trifle_error e = TRIFLE_ERROR_INIT;
        int crc = close_sources(&s, &e);
        if (crc != 0 && rc == 0) {
            /* ERRATA minor 22: unwritten operations make the exit status 1 */
            rc = crc;
            if (err != NULL)
                *err = e;
        }
    }
    if (stats_started) {
        trifle_error e = TRIFLE_ERROR_INIT;
        srv_counters_refresh(&s);
        (void)trifle_simple_unregister("pool");
        (void)trifle_simple_unregister("disk");
        (void)trifle_simple_unregister("system");
        if (trifle_simple_stop(&e) != 0)
            srv_log(TRIFLE_LOG_ERROR, "stats: %s", e.message);
        trifle_simple_set_thread_hook(NULL, NULL);
    }
    trifle_simple_reset();
    for (i = 0; i < s.n_sources; i++) {
        trifle_free(s.sources[i].t);
        free(s.sources[i].granularities);
        srv_outage_destroy(&s.sources[i].outage);
    }
    free(s.sources);
    for (i = 0; i < s.n_protected; i++) {
        free(s.protected_files[i].dir);
        free(s.protected_files[i].name);
    }
    free(s.protected_files);
    srv_pool_destroy(&s.request_pool);
    srv_pool_destroy(&s.response_pool);
    if (s.data_fd >= 0)
        close(s.data_fd);
    if (bound_unix)
        (void)unlink(addr.path);
    free(labels);
    srv_config_free(cfg);
    srv_threads_reset();
    trifle_set_log_handler(TRIFLE_LOG_WARN, NULL, NULL);
    pthread_mutex_destroy(&s.counters_lock);
    /* the mask stays: a SIGPIPE or a second SIGTERM pending now must not end the process */
    if (rc == 0)
        srv_log(TRIFLE_LOG_INFO, "stopped");
    return rc;
}
