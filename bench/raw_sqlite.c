/* trifle-bench-raw-sqlite: SQLite's own upsert rate, the "raw limit" the sqlite flush is
 * compared with (docs/BENCHMARKS.md).
 *
 *   trifle-bench-raw-sqlite PATH N
 *
 * One prepared `INSERT ... ON CONFLICT (key) DO UPDATE SET data = excluded.data` executed N times
 * with distinct keys inside one transaction, into a table shaped like the driver's (full mode),
 * on a connection set up like the driver's (WAL, synchronous=NORMAL). The data is a flat JSON
 * object of the workload's five leaves. Prints one JSON line: rows/s including the commit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(sqlite3 *db, const char *what)
{
    fprintf(stderr, "trifle-bench-raw-sqlite: %s: %s\n", what,
            db != NULL ? sqlite3_errmsg(db) : "");
    sqlite3_close(db);
    return 1;
}

int main(int argc, char **argv)
{
    static const char data[] =
        "{\"count\":1,\"duration\":2.5,\"lines\":241,\"meta.cache.hits\":3,\"meta.db\":0.25}";
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char key[64], *end = NULL;
    double t0, t1;
    long n, i;

    if (argc != 3 || (n = strtol(argv[2], &end, 10)) < 1 || *end != '\0') {
        fprintf(stderr, "usage: trifle-bench-raw-sqlite PATH N\n");
        return 2;
    }
    if (sqlite3_open(argv[1], &db) != SQLITE_OK)
        return fail(db, "open");
    if (sqlite3_exec(
            db,
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;"
            "DROP TABLE IF EXISTS raw_upsert;"
            "CREATE TABLE raw_upsert (key TEXT PRIMARY KEY, data TEXT NOT NULL DEFAULT '{}');",
            NULL, NULL, NULL) != SQLITE_OK)
        return fail(db, "setup");
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO raw_upsert (key, data) VALUES (?, ?) ON CONFLICT (key) DO "
                           "UPDATE SET data = excluded.data;",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(db, "prepare");
    t0 = now_s();
    if (sqlite3_exec(db, "BEGIN IMMEDIATE;", NULL, NULL, NULL) != SQLITE_OK)
        return fail(db, "begin");
    for (i = 0; i < n; i++) {
        int len = snprintf(key, sizeof(key), "bench::event::1m::%ld", 1767225600L + i * 60);

        sqlite3_bind_text(st, 1, key, len, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, data, (int)sizeof(data) - 1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            return fail(db, "upsert");
        sqlite3_reset(st);
    }
    if (sqlite3_exec(db, "COMMIT;", NULL, NULL, NULL) != SQLITE_OK)
        return fail(db, "commit");
    t1 = now_s();
    sqlite3_finalize(st);
    sqlite3_close(db);
    printf("{\"bench\":\"raw\",\"backend\":\"sqlite\",\"tool\":\"C loop, one transaction\","
           "\"rows\":%ld,\"seconds\":%.6f,\"rows_per_s\":%.1f}\n",
           n, t1 - t0, (double)n / (t1 - t0));
    return 0;
}
