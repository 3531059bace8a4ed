/* The loader against deliberately broken plugins (tests/abi/abi_plugin.c): each problem gives its
 * own code and exact message, nothing crashes, nothing leaks (run under valgrind), and plugins that
 * are merely old or odd still load. Public API only, linked against the shared libtrifle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <trifle/storage.h>

/* the abi_major fixture claims major 2 with this build's minor */
#define ABI_STR_(x) #x
#define ABI_STR(x) ABI_STR_(x)
#define ABI_MAJOR_WHAT "ABI 2." ABI_STR(TRIFLE_DRIVER_ABI_MINOR) " not supported"
#define ABI_MAJOR_REFUSED "driver abi_major: " ABI_MAJOR_WHAT

/* <dir>/trifle_<name>.so in @p path (512 bytes). */
static const char *so_in(char *path, const char *dir, const char *name)
{
    assert_true((size_t)snprintf(path, 512, "%s/trifle_%s.so", dir, name) < 512);
    return path;
}

/* The fixtures of tests/abi/abi_plugin.c, of its hook variants, and the named ones. */
static const char *plugin(const char *name)
{
    static char path[512];
    return so_in(path, ABI_PLUGIN_DIR, name);
}

static const char *hooked(const char *name)
{
    static char path[512];
    return so_in(path, ABI_HOOKS_DIR, name);
}

static const char *named(const char *name)
{
    static char path[512];
    return so_in(path, ABI_NAMED_DIR, name);
}

/* trifle_storage_open() of @p url through the plugin file @p file. */
static int open_file(trifle_storage **st, const char *file, const char *url, trifle_error *err)
{
    trifle_storage_options opts = TRIFLE_STORAGE_OPTIONS_INIT;

    opts.driver = file;
    return trifle_storage_open(st, url, &opts, err);
}

/* The driver table of the plugin @p file, which must load (leaving the error untouched). */
static const trifle_driver *load_ok(const char *file)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    const trifle_driver *d = NULL;

    if (trifle_driver_load(&d, file, NULL, &err) != 0)
        fail_msg("%s: %s", file, err.message);
    assert_non_null(d);
    assert_int_equal(err.code, 0); /* untouched on success */
    return d;
}

static void test_good_plugins_load(void **state)
{
    const trifle_driver *d;

    (void)state;
    d = load_ok(plugin("abi_ok"));
    assert_string_equal(d->name, "abi_ok");
    assert_string_equal(d->version, "0.0.1");
    assert_string_equal(d->schemes[0], "abi_ok");
    assert_non_null(d->scan);

    /* the 1.0 layout declared as such (an older minor once members are appended) */
    d = load_ok(plugin("abi_oldminor"));
    assert_int_equal(d->abi_minor, 0);
    assert_int_equal(d->struct_size, offsetof(trifle_driver, scan) + sizeof(d->scan));
    assert_non_null(d->inc);

    /* the 1.1 layout (members up to mark_read): calls, appended in 1.2, reads as NULL */
    d = load_ok(plugin("abi_minor1"));
    assert_int_equal(d->abi_minor, 1);
    assert_int_equal(d->struct_size, offsetof(trifle_driver, calls));
    assert_null(d->calls);
    assert_non_null(d->inc);

    /* the 1.3 layout (members up to unload): query, appended in 1.4, reads as NULL, and bit 9,
     * TRIFLE_CAP_QUERY since 1.4, is not taken from a 1.3 table */
    d = load_ok(plugin("abi_minor3"));
    assert_int_equal(d->abi_minor, 3);
    assert_int_equal(d->struct_size, offsetof(trifle_driver, query));
    assert_null(d->query);
    assert_int_equal(d->caps & TRIFLE_CAP_QUERY, 0);

    /* a larger struct_size than the core knows: the known part is copied */
    d = load_ok(plugin("abi_padded"));
    assert_int_equal(d->struct_size, sizeof(trifle_driver) + 64);
    assert_non_null(d->scan);

    /* ping and scan are optional without TRIFLE_CAP_PING */
    d = load_ok(plugin("abi_noping"));
    assert_null(d->ping);
    assert_null(d->scan);
}

static void expect_refused_at(const char *file, int code, const char *message)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    const trifle_driver *d = (const trifle_driver *)&err;
    int round;

    /* a refused plugin is not cached: asking again gives the same answer */
    for (round = 0; round < 2; round++) {
        assert_int_equal(trifle_driver_load(&d, file, NULL, &err), code);
        assert_null(d);
        assert_int_equal(err.code, code);
        assert_string_equal(err.message, message);
    }
}

/* The fixture @p name is refused with @p code and "driver <name>: <what>". */
static void expect_refused(const char *name, int code, const char *what)
{
    char message[512];

    (void)snprintf(message, sizeof(message), "driver %s: %s", name, what);
    expect_refused_at(plugin(name), code, message);
}

static void test_broken_plugins_are_refused(void **state)
{
    static const struct {
        const char *name;
        int code;
        const char *what; /* the message after "driver <name>: " */
    } cases[] = {
        {"abi_major", TRIFLE_EABI, ABI_MAJOR_WHAT},
        {"abi_newminor", TRIFLE_EABI,
         "ABI 1.5 not supported (this libtrifle has ABI 1.4: upgrade libtrifle)"},
        {"abi_noquery", TRIFLE_EABI,
         "required member query is NULL (TRIFLE_CAP_QUERY is declared)"},
        {"abi_nocalls", TRIFLE_EABI,
         "required member calls is NULL (TRIFLE_CAP_CALLS is declared)"},
        {"abi_short", TRIFLE_EABI, "struct_size 24 too small"},
        {"abi_nullinc", TRIFLE_EABI, "required member inc is NULL"},
        {"abi_nullclose", TRIFLE_EABI, "required member close is NULL"},
        {"abi_nullscan", TRIFLE_EABI, "required member scan is NULL (TRIFLE_CAP_PING is declared)"},
        {"abi_wrongname", TRIFLE_EABI, "name \"other\" does not match"},
        {"abi_nullname", TRIFLE_EABI, "name is NULL"},
        {"abi_noversion", TRIFLE_EABI, "version is NULL"},
        {"abi_emptyversion", TRIFLE_EABI, "version is empty"},
        {"abi_noentry", TRIFLE_EABI, "entry symbol trifle_driver_abi_noentry_init not found"},
        /* the entry's own code, not TRIFLE_EABI: the plugin is fine, its client library is not */
        {"abi_initfail", TRIFLE_ECONFIG,
         "trifle_driver_abi_initfail_init failed: client library refused to start"},
        {"abi_notable", TRIFLE_EABI, "trifle_driver_abi_notable_init returned no table"},
    };
    char want[1024];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_refused(cases[i].name, cases[i].code, cases[i].what);
    (void)snprintf(want, sizeof(want),
                   "driver abi_undef: %s: undefined symbol: abi_symbol_nobody_defines (check with "
                   "ldd)",
                   plugin("abi_undef"));
    expect_refused_at(plugin("abi_undef"), TRIFLE_EABI, want);
    (void)snprintf(want, sizeof(want), "driver abi_missing not found (searched: %s)",
                   plugin("abi_missing"));
    expect_refused_at(plugin("abi_missing"), TRIFLE_ENOTFOUND, want);
}

static void test_refused_by_name_too(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    const trifle_driver *d = NULL;

    (void)state;
    /* the search path finds the file; the checks are the same */
    assert_int_equal(trifle_driver_load(&d, "abi_major", ABI_PLUGIN_DIR, &err), TRIFLE_EABI);
    assert_string_equal(err.message, ABI_MAJOR_REFUSED);
    assert_int_equal(trifle_driver_load(&d, "abi_ok", ABI_PLUGIN_DIR, &err), 0);
    assert_non_null(d);
}

/* The leaf a trifle_leaf_fn looks for, and what it found. */
typedef struct wanted_leaf {
    const char *path;
    double value;
    int seen;
} wanted_leaf;

static int pick_leaf(size_t index, const char *path, double value, void *payload)
{
    wanted_leaf *w = payload;

    assert_int_equal(index, 0);
    if (strcmp(path, w->path) == 0) {
        w->value = value;
        w->seen++;
    }
    return 0;
}

static void test_no_ping_is_enotsup(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st = NULL;
    trifle_leaf leaf = {"up", 1};
    wanted_leaf none = {"up", 0, 0}; /* nothing reaches the callback */
    int64_t at = 0;

    (void)state;
    assert_int_equal(open_file(&st, plugin("abi_noping"), "abi:x", &err), 0);
    assert_int_equal(trifle_storage_ping(st, "k", 1, &leaf, 1, &err), TRIFLE_ENOTSUP);
    assert_string_equal(err.message, "driver does not support beam/scan");
    assert_int_equal(trifle_storage_scan(st, "k", &at, pick_leaf, &none, &err), TRIFLE_ENOTSUP);
    assert_int_equal(none.seen, 0);
    assert_string_equal(err.message, "driver does not support beam/scan");
    assert_string_equal(err.driver, "");
    err.code = 0;
    assert_int_equal(trifle_storage_setup(st, &err), 0);
    assert_int_equal(err.code, 0);
    trifle_storage_close(st);
}

static void expect_describe(const char *name, const char *url, const char *want)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st = NULL;
    char buf[64];

    if (open_file(&st, named(name), url, &err) != 0)
        fail_msg("%s: %s", url, err.message);
    assert_int_equal(trifle_storage_describe(st, buf, sizeof(buf)), strlen(want));
    assert_string_equal(buf, want);
    trifle_storage_close(st);
}

static void expect_mode_refused(const char *name, const char *url, const char *message)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st = NULL;

    assert_int_equal(open_file(&st, named(name), url, &err), TRIFLE_ECONFIG);
    assert_null(st);
    assert_string_equal(err.message, message);
}

static void test_describe_and_modes(void **state)
{
    (void)state;
    expect_describe("sqlite", "sqlite:x.db", "SQLiteDriver(J)");
    expect_describe("sqlite", "sqlite:x.db?joined=partial", "SQLiteDriver(P)");
    expect_describe("sqlite", "sqlite:x.db?joined=separated", "SQLiteDriver(S)");
    expect_describe("postgres", "postgres://h/db?joined=partial", "PostgresDriver(P)");
    expect_describe("mongo", "mongodb://h/db?joined=null", "MongoDriver(S)");
    expect_describe("redis", "redis://h/0", "RedisDriver(J)");
    expect_describe("halfway", "halfway:x?joined=partial", "HalfwayDriver(P)");
    /* SPEC §1: the redis message; a driver with some modes names the missing one */
    expect_mode_refused("redis", "redis://h/0?joined=partial",
                        "redis driver supports only the full identifier mode");
    expect_mode_refused("redis", "redis://:secret@h/0?joined=separated",
                        "redis driver supports only the full identifier mode");
    expect_mode_refused("halfway", "halfway:x?joined=separated",
                        "halfway driver does not support the separated identifier mode");
}

static void test_plugins_list(void **state)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_plugin_info *list = NULL;
    size_t n = 0, i, loaded = 0, failed = 0;

    (void)state;
    assert_int_equal(trifle_plugins_list(&list, &n, ABI_PLUGIN_DIR, &err), 0);
    assert_true(n >= 20);
    for (i = 0; i < n; i++) {
        if (i > 0)
            assert_true(strcmp(list[i - 1].name, list[i].name) < 0);
        if (strcmp(list[i].name, "abi_major") == 0)
            assert_string_equal(list[i].error, ABI_MAJOR_REFUSED);
        if (strcmp(list[i].name, "abi_ok") == 0) {
            assert_string_equal(list[i].error, "");
            assert_string_equal(list[i].version, "0.0.1");
            assert_string_equal(list[i].schemes, "abi_ok abi");
            assert_int_equal(list[i].caps,
                             TRIFLE_CAP_MODE_PARTIAL | TRIFLE_CAP_MODE_SEPARATED | TRIFLE_CAP_PING);
            assert_int_equal(list[i].abi_major, 1);
        }
        if (list[i].error[0] == '\0')
            loaded++;
        else
            failed++;
    }
    /* ok, oldminor, minor1, minor2, padded, noping load; the rest are refused */
    assert_int_equal(loaded, 6);
    assert_int_equal(failed, n - 6);
    trifle_mem_free(list);
}

/* Open the fixture at file with url, get one bucket and return the leaf `path` its get() reports
 * (tests/abi/abi_plugin.c: how the connection was opened). */
static double opened_with(const char *file, const char *url, const char *path)
{
    trifle_error err = TRIFLE_ERROR_INIT;
    trifle_storage *st = NULL;
    trifle_bucket b = {"k::1h::0", "k", "1h", 0};
    wanted_leaf want = {path, 0, 0};

    if (open_file(&st, file, url, &err) != 0)
        fail_msg("%s: %s", url, err.message);
    if (trifle_storage_get(st, &b, 1, pick_leaf, &want, &err) != 0)
        fail_msg("%s: get: %s", url, err.message);
    trifle_storage_close(st);
    assert_int_equal(want.seen, 1);
    return want.value;
}

/* ABI 1.3: a driver with open_params gets the mode typed and no trifle.* options; a driver of the
 * 1.2 layout still gets them as strings. */
static void test_id_mode_typed_and_string(void **state)
{
    static const char *const modes[] = {"full", "partial", "separated"};
    char url[64];
    int m;

    (void)state;
    for (m = 0; m < 3; m++) {
        (void)snprintf(url, sizeof(url), "abi:x?joined=%s", modes[m]);
        assert_int_equal(opened_with(hooked("abi_params"), url, "id_mode"), m);
        assert_int_equal(opened_with(hooked("abi_params"), url, "core_opts"), 0);
        assert_int_equal(opened_with(hooked("abi_minor2"), url, "id_mode"), m);
        assert_int_equal(opened_with(hooked("abi_minor2"), url, "core_opts"), 2);
        /* the default fixture sets both open and open_params: open_params wins */
        assert_int_equal(opened_with(plugin("abi_ok"), url, "core_opts"), 0);
    }
    expect_refused_at(hooked("abi_noopen"), TRIFLE_EABI,
                      "driver abi_noopen: required member open is NULL (and so is open_params)");
}

/* ABI 1.3: TRIFLE_DRIVER_DEFINE_WITH_INIT returns a failing hook's result, and the loader fails
 * the load with that code and the hook's message (or a generic one). */
static void test_init_hook_result(void **state)
{
    (void)state;
    assert_string_equal(load_ok(hooked("abi_hookok"))->name, "abi_hookok");
    expect_refused_at(hooked("abi_hookfail"), TRIFLE_ECONFIG,
                      "driver abi_hookfail: trifle_driver_abi_hookfail_init failed: client "
                      "library refused to start");
    expect_refused_at(hooked("abi_hookcode"), TRIFLE_EDRIVER,
                      "driver abi_hookcode: trifle_driver_abi_hookcode_init failed: init hook "
                      "failed (7)");
}

/* 1 when the unload log holds the line name. */
static int log_has(const char *log, const char *name)
{
    char line[128];
    FILE *f = fopen(log, "r");
    int found = 0;

    if (f == NULL)
        return 0;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strncmp(line, name, strlen(name)) == 0 && line[strlen(name)] == '\n';
    (void)fclose(f);
    return found;
}

/* ABI 1.3: trifle_shutdown() calls each loaded driver's unload hook; a refused table's hook runs
 * at once (its init hook ran); a driver of an older layout has none. */
static void test_unload_hook(void **state)
{
    char log[] = "/tmp/trifle_abi_unload_XXXXXX";
    trifle_error err = TRIFLE_ERROR_INIT;
    const trifle_driver *d = NULL;
    int fd;

    (void)state;
    assert_true((fd = mkstemp(log)) >= 0);
    (void)close(fd);
    trifle_shutdown(); /* what earlier tests loaded is forgotten before the log is set */
    assert_int_equal(setenv("TRIFLE_ABI_UNLOAD_LOG", log, 1), 0);
    assert_int_equal(trifle_driver_load(&d, hooked("abi_hookok"), NULL, &err), 0);
    assert_int_equal(trifle_driver_load(&d, hooked("abi_minor2"), NULL, &err), 0);
    assert_int_equal(trifle_driver_load(&d, hooked("abi_hookrefused"), NULL, &err), TRIFLE_EABI);
    assert_string_equal(err.message, "driver abi_hookrefused: name \"other\" does not match");
    assert_true(log_has(log, "abi_hookrefused"));
    assert_false(log_has(log, "abi_hookok"));
    trifle_shutdown();
    assert_true(log_has(log, "abi_hookok"));
    assert_false(log_has(log, "abi_minor2")); /* its table ends before unload */
    assert_int_equal(unsetenv("TRIFLE_ABI_UNLOAD_LOG"), 0);
    (void)unlink(log);
}

static int shutdown_all(void **state)
{
    (void)state;
    trifle_shutdown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_plugins_load),
        cmocka_unit_test(test_broken_plugins_are_refused),
        cmocka_unit_test(test_refused_by_name_too),
        cmocka_unit_test(test_no_ping_is_enotsup),
        cmocka_unit_test(test_describe_and_modes),
        cmocka_unit_test(test_plugins_list),
        cmocka_unit_test(test_id_mode_typed_and_string),
        cmocka_unit_test(test_init_hook_result),
        cmocka_unit_test(test_unload_hook),
    };

    return cmocka_run_group_tests(tests, NULL, shutdown_all);
}
