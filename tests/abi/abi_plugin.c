/* One driver source, built many times with -D flags into good, odd and broken plugins for the
 * loader's ABI checks (tests/abi/test_abi.c). ABI_NAME is the driver name (file trifle_<name>.so,
 * entry trifle_driver_<name>_init); the flags below each break one thing:
 *
 *   ABI_TABLE_MAJOR=n / ABI_TABLE_MINOR=n   the table claims another ABI version
 *   ABI_STRUCT_SIZE=n                        the table claims another struct_size
 *   ABI_OLD_LAYOUT                           the table is the ABI 1.0 layout, declared as such
 *   ABI_PADDED                               the table sits in a larger struct and says so
 *   ABI_NULL_INC / ABI_NULL_CLOSE            a required member is NULL
 *   ABI_NULL_SCAN                            TRIFLE_CAP_PING declared without scan
 *   ABI_NO_PING                              neither ping nor scan, and no TRIFLE_CAP_PING
 *   ABI_CAPS=bits                            the capability bits (default: all modes and ping)
 *   ABI_TABLE_NAME="x" / ABI_NULL_NAME       the name in the table
 *   ABI_VERSION=x / ABI_NULL_VERSION         the version in the table
 *   ABI_NO_ENTRY                             the entry symbol has another name
 *   ABI_INIT_FAILS                           the entry returns TRIFLE_ECONFIG with a message
 *   ABI_NO_TABLE                             the entry succeeds without a table
 *   ABI_UNDEFINED                            calls a function nobody defines (dlopen fails)
 *   ABI_NO_OPEN / ABI_NO_OPEN_PARAMS         open / open_params (ABI 1.3) is NULL
 *   ABI_INIT_HOOK=n                          the entry is TRIFLE_DRIVER_DEFINE_WITH_INIT with a
 *                                            hook returning n (a message too when n < 0)
 *
 * Every table of the current layout has an unload hook that appends the driver name and a newline
 * to the file named by $TRIFLE_ABI_UNLOAD_LOG (when set). get() reports how the connection was
 * opened: for each bucket it emits `id_mode` (the trifle_id_mode the driver was given) and
 * `core_opts` (how many `trifle.*` options it saw).
 *
 * The operations are minimal but real: open allocates through the host, so a leak in the
 * loader's or the storage layer's error paths shows under valgrind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <trifle/driver.h>

#ifndef ABI_NAME
#error "ABI_NAME must be defined"
#endif

#define ABI_STR2(x) #x
#define ABI_STR(x) ABI_STR2(x)

/* Some variants leave an operation out of the table. */
#if defined(__GNUC__) || defined(__clang__)
#define ABI_MAYBE_UNUSED __attribute__((unused))
#else
#define ABI_MAYBE_UNUSED
#endif

struct trifle_conn {
    const trifle_host_api *host;
    int id_mode;   /* as given by trifle.joined or trifle_open_params */
    int core_opts; /* trifle.* options seen by open */
};

#ifdef ABI_UNDEFINED
int abi_symbol_nobody_defines(void);
#endif

/* Count the trifle.* options and read trifle.joined into c->id_mode. */
static void ab_opts(trifle_conn *c, const char *const *opts)
{
    size_t i;

    for (i = 0; opts != NULL && opts[i] != NULL && opts[i + 1] != NULL; i += 2) {
        if (strncmp(opts[i], "trifle.", 7) != 0)
            continue;
        c->core_opts++;
        if (strcmp(opts[i], "trifle.joined") == 0)
            c->id_mode = strcmp(opts[i + 1], "partial") == 0     ? TRIFLE_ID_PARTIAL
                         : strcmp(opts[i + 1], "separated") == 0 ? TRIFLE_ID_SEPARATED
                         : strcmp(opts[i + 1], "full") == 0      ? TRIFLE_ID_FULL
                                                                 : -1;
    }
}

static int ab_open(trifle_conn **out, const trifle_host_api *host, const char *url,
                   const char *const *opts, trifle_error *err)
{
    trifle_conn *c;

    (void)url;
#ifdef ABI_UNDEFINED
    if (abi_symbol_nobody_defines() != 0)
        return TRIFLE_ERROR;
#endif
    *out = NULL;
    if ((c = host->alloc(sizeof(*c))) == NULL) {
        host->error_set(err, TRIFLE_ENOMEM, 0, "out of memory");
        return TRIFLE_ENOMEM;
    }
    c->host = host;
    c->id_mode = -1;
    c->core_opts = 0;
    ab_opts(c, opts);
    *out = c;
    return 0;
}

ABI_MAYBE_UNUSED static int ab_open_params(trifle_conn **out, const trifle_host_api *host,
                                           const char *url, const trifle_open_params *params,
                                           const char *const *opts, trifle_error *err)
{
    int rc = ab_open(out, host, url, opts, err);

    if (rc == 0 && TRIFLE_OPEN_PARAMS_HAS(params, id_mode))
        (*out)->id_mode = params->id_mode;
    return rc;
}

ABI_MAYBE_UNUSED static void ab_unload(void)
{
    const char *log = getenv("TRIFLE_ABI_UNLOAD_LOG");
    FILE *f;

    if (log != NULL && (f = fopen(log, "a")) != NULL) {
        (void)fputs(ABI_STR(ABI_NAME) "\n", f);
        (void)fclose(f);
    }
}

ABI_MAYBE_UNUSED static void ab_close(trifle_conn *c)
{
    if (c != NULL)
        c->host->free(c);
}

static int ab_setup(trifle_conn *c, trifle_error *err)
{
    (void)c;
    (void)err;
    return 0;
}

static int ab_write(trifle_conn *c, const trifle_entry *items, size_t n, trifle_write_result *res,
                    trifle_error *err)
{
    (void)c;
    (void)items;
    (void)n;
    (void)res;
    (void)err;
    return 0;
}

static int ab_get(trifle_conn *c, const trifle_bucket *buckets, size_t n, trifle_sink *sink,
                  trifle_error *err)
{
    size_t i;
    int rc;

    (void)buckets;
    (void)err;
    for (i = 0; i < n; i++)
        if ((rc = c->host->emit(sink, i, "id_mode", c->id_mode)) != 0 ||
            (rc = c->host->emit(sink, i, "core_opts", c->core_opts)) != 0)
            return rc;
    return 0;
}

ABI_MAYBE_UNUSED static int ab_ping(trifle_conn *c, const char *key, int64_t at,
                                    const trifle_leaf *leaves, size_t n, trifle_error *err)
{
    (void)c;
    (void)key;
    (void)at;
    (void)leaves;
    (void)n;
    (void)err;
    return 0;
}

ABI_MAYBE_UNUSED static int ab_scan(trifle_conn *c, const char *key, int64_t *at_out,
                                    trifle_sink *sink, trifle_error *err)
{
    (void)at_out;
    (void)sink;
    c->host->error_set(err, TRIFLE_ENOTFOUND, 0, "no ping for %s", key);
    return TRIFLE_ENOTFOUND;
}

#ifndef ABI_TABLE_MAJOR
#define ABI_TABLE_MAJOR TRIFLE_DRIVER_ABI_MAJOR
#endif
#ifndef ABI_TABLE_MINOR
#define ABI_TABLE_MINOR TRIFLE_DRIVER_ABI_MINOR
#endif
#ifndef ABI_CAPS
#ifdef ABI_NO_PING
#define ABI_CAPS (TRIFLE_CAP_MODE_PARTIAL | TRIFLE_CAP_MODE_SEPARATED)
#else
#define ABI_CAPS (TRIFLE_CAP_MODE_PARTIAL | TRIFLE_CAP_MODE_SEPARATED | TRIFLE_CAP_PING)
#endif
#endif
#ifdef ABI_NULL_NAME
#define ABI_TABLE_NAME_VALUE NULL
#elif defined(ABI_TABLE_NAME)
#define ABI_TABLE_NAME_VALUE ABI_TABLE_NAME
#else
#define ABI_TABLE_NAME_VALUE ABI_STR(ABI_NAME)
#endif
#ifdef ABI_NULL_VERSION
#define ABI_VERSION_VALUE NULL
#elif defined(ABI_VERSION)
#define ABI_VERSION_VALUE ABI_STR(ABI_VERSION)
#else
#define ABI_VERSION_VALUE "0.0.1"
#endif

static const char *const ab_schemes[] = {ABI_STR(ABI_NAME), "abi", NULL};

/* The members, in table order, for both layouts below. */
#define ABI_MEMBERS                                                                \
    ABI_TABLE_NAME_VALUE, ABI_VERSION_VALUE, ABI_CAPS, ab_schemes, ABI_OPEN_VALUE, \
        ABI_CLOSE_VALUE, ab_setup, ABI_INC_VALUE, ab_write, ab_get, ABI_PING_VALUE, ABI_SCAN_VALUE
/* The members after `scan` of the current layout. */
#define ABI_TAIL                                                                                \
    NULL /* drop: optional */, NULL /* write_marked */, NULL /* mark_read */, NULL /* calls */, \
        ABI_OPEN_PARAMS_VALUE, ab_unload, NULL /* query */
#ifdef ABI_NO_OPEN
#define ABI_OPEN_VALUE NULL
#else
#define ABI_OPEN_VALUE ab_open
#endif
#ifdef ABI_NO_OPEN_PARAMS
#define ABI_OPEN_PARAMS_VALUE NULL
#else
#define ABI_OPEN_PARAMS_VALUE ab_open_params
#endif
#ifdef ABI_NULL_INC
#define ABI_INC_VALUE NULL
#else
#define ABI_INC_VALUE ab_write
#endif
#ifdef ABI_NULL_CLOSE
#define ABI_CLOSE_VALUE NULL
#else
#define ABI_CLOSE_VALUE ab_close
#endif
#ifdef ABI_NO_PING
#define ABI_PING_VALUE NULL
#define ABI_SCAN_VALUE NULL
#elif defined(ABI_NULL_SCAN)
#define ABI_PING_VALUE ab_ping
#define ABI_SCAN_VALUE NULL
#else
#define ABI_PING_VALUE ab_ping
#define ABI_SCAN_VALUE ab_scan
#endif

#if defined(ABI_OLD_LAYOUT)
/* The ABI 1.0 layout, frozen here: once members are appended to trifle_driver, this fixture is
 * a driver built for an older minor, which must load with the new members NULL. */
typedef struct abi_driver_1_0 {
    uint32_t abi_major, abi_minor;
    size_t struct_size;
    const char *name, *version;
    uint64_t caps;
    const char *const *schemes;
    int (*open)(trifle_conn **, const trifle_host_api *, const char *, const char *const *,
                trifle_error *);
    void (*close)(trifle_conn *);
    int (*setup)(trifle_conn *, trifle_error *);
    int (*inc)(trifle_conn *, const trifle_entry *, size_t, trifle_write_result *, trifle_error *);
    int (*set)(trifle_conn *, const trifle_entry *, size_t, trifle_write_result *, trifle_error *);
    int (*get)(trifle_conn *, const trifle_bucket *, size_t, trifle_sink *, trifle_error *);
    int (*ping)(trifle_conn *, const char *, int64_t, const trifle_leaf *, size_t, trifle_error *);
    int (*scan)(trifle_conn *, const char *, int64_t *, trifle_sink *, trifle_error *);
} abi_driver_1_0;
ABI_MAYBE_UNUSED static const abi_driver_1_0 ab_table_storage = {1, 0, sizeof(abi_driver_1_0),
                                                                 ABI_MEMBERS};
#define ABI_TABLE_PTR ((const trifle_driver *)(const void *)&ab_table_storage)
#elif defined(ABI_PADDED)
/* A driver whose table is followed by private data it counts in struct_size. */
ABI_MAYBE_UNUSED static const struct {
    trifle_driver table;
    char private_tail[64];
} ab_table_storage = {
    {ABI_TABLE_MAJOR, ABI_TABLE_MINOR, sizeof(trifle_driver) + 64, ABI_MEMBERS, ABI_TAIL}, {0}};
#define ABI_TABLE_PTR (&ab_table_storage.table)
#else
#ifndef ABI_STRUCT_SIZE
#define ABI_STRUCT_SIZE sizeof(trifle_driver)
#endif
ABI_MAYBE_UNUSED static const trifle_driver ab_table_storage = {
    ABI_TABLE_MAJOR, ABI_TABLE_MINOR, ABI_STRUCT_SIZE, ABI_MEMBERS, ABI_TAIL};
#define ABI_TABLE_PTR (&ab_table_storage)
#endif

#ifdef ABI_NO_ENTRY
#define ABI_ENTRY_NAME nothing_to_see
#else
#define ABI_ENTRY_NAME ABI_NAME
#endif

#ifdef ABI_INIT_HOOK
/* The real TRIFLE_DRIVER_DEFINE_WITH_INIT, with a hook that returns ABI_INIT_HOOK. */
static int ab_init_hook(const trifle_host_api *host, trifle_error *err)
{
    if (ABI_INIT_HOOK < 0)
        host->error_set(err, ABI_INIT_HOOK, 0, "client library refused to start");
    return ABI_INIT_HOOK;
}

/* One more level, so that ABI_ENTRY_NAME expands before the macro pastes it. */
#define ABI_DEFINE(n, table, hook) TRIFLE_DRIVER_DEFINE_WITH_INIT(n, table, hook)
ABI_DEFINE(ABI_ENTRY_NAME, *ABI_TABLE_PTR, ab_init_hook(host, err))
#else
/* The entry, written out as TRIFLE_DRIVER_DEFINE does, with the failure switches. Two levels of
 * macros so that ABI_ENTRY_NAME expands before it is pasted. */
#define ABI_ENTRY2(n) trifle_driver_##n##_init
#define ABI_ENTRY(n) ABI_ENTRY2(n)

TRIFLE_DRIVER_EXPORT int ABI_ENTRY(ABI_ENTRY_NAME)(const trifle_host_api *host,
                                                   const trifle_driver **out, trifle_error *err);
TRIFLE_DRIVER_EXPORT int ABI_ENTRY(ABI_ENTRY_NAME)(const trifle_host_api *host,
                                                   const trifle_driver **out, trifle_error *err)
{
    if (out == NULL)
        return TRIFLE_EINVAL;
    *out = NULL;
    if (host == NULL || host->abi_major != TRIFLE_DRIVER_ABI_MAJOR)
        return TRIFLE_EABI;
#ifdef ABI_INIT_FAILS
    host->error_set(err, TRIFLE_ECONFIG, 0, "client library refused to start");
    return TRIFLE_ECONFIG;
#else
    (void)err;
#endif
#ifndef ABI_NO_TABLE
    *out = ABI_TABLE_PTR;
#endif
    return TRIFLE_OK;
}
#endif
