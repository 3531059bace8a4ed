/* trifle-bench-raw-mysql: the MySQL/MariaDB server's own upsert rate, the "raw limit" the mysql
 * flush is compared with (docs/BENCHMARKS.md).
 *
 *   trifle-bench-raw-mysql URL N [BATCH]
 *
 * URL is mysql://user:password@host:port/database (no percent escapes). N rows with distinct keys
 * and the workload's five leaves, written as multi-row `INSERT ... ON DUPLICATE KEY UPDATE data =
 * JSON_SET(data, <each leaf>, <stored> + <new>)` statements of BATCH rows (default 1000), each
 * statement in its own transaction, into a table with the upstream full layout. The statement is
 * written by hand with no trifle code: what the server can do at best with the upsert the driver
 * needs. Prints one JSON line: rows/s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mysql.h>

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The leaves of the workload (bench.c): the update adds each of them. */
static const char *const leaves[] = {"count", "duration", "lines", "meta.cache.hits", "meta.db"};

int main(int argc, char **argv)
{
    char user[128], pw[128], host[128], db[128];
    unsigned port = 3306;
    const char *p, *at, *colon, *slash;
    char *end = NULL, *sql;
    size_t cap, len;
    long n, batch = 1000, i;
    double t0, t1;
    MYSQL *my;
    int k;

    if (argc < 3 || argc > 4 || strncmp(argv[1], "mysql://", 8) != 0 ||
        (n = strtol(argv[2], &end, 10)) < 1 || *end != '\0' ||
        (argc == 4 && (batch = strtol(argv[3], &end, 10)) < 1)) {
        fprintf(stderr, "usage: trifle-bench-raw-mysql mysql://user:pw@host:port/db N [BATCH]\n");
        return 2;
    }
    p = argv[1] + 8;
    if ((at = strchr(p, '@')) == NULL || (slash = strchr(at, '/')) == NULL ||
        (colon = memchr(p, ':', (size_t)(at - p))) == NULL) {
        fprintf(stderr, "trifle-bench-raw-mysql: expected mysql://user:pw@host:port/db\n");
        return 2;
    }
    snprintf(user, sizeof(user), "%.*s", (int)(colon - p), p);
    snprintf(pw, sizeof(pw), "%.*s", (int)(at - colon - 1), colon + 1);
    p = at + 1;
    colon = memchr(p, ':', (size_t)(slash - p));
    snprintf(host, sizeof(host), "%.*s", (int)((colon != NULL ? colon : slash) - p), p);
    if (colon != NULL)
        port = (unsigned)atoi(colon + 1);
    snprintf(db, sizeof(db), "%.*s", (int)strcspn(slash + 1, "?"), slash + 1);

    my = mysql_init(NULL);
    if (my == NULL ||
        mysql_real_connect(my, host, user, pw, db, port, NULL, CLIENT_MULTI_STATEMENTS) == NULL ||
        mysql_query(my, "DROP TABLE IF EXISTS raw_upsert") != 0 ||
        mysql_query(my, "CREATE TABLE raw_upsert (`key` VARCHAR(255) PRIMARY KEY, "
                        "`data` JSON NOT NULL)") != 0)
        goto fail;
    cap = (size_t)batch * 200 + 4096;
    if ((sql = malloc(cap)) == NULL)
        return 1;
    t0 = now_s();
    for (i = 0; i < n;) {
        long b;

        len = (size_t)snprintf(sql, cap,
                               "START TRANSACTION;INSERT INTO raw_upsert (`key`, `data`) VALUES ");
        for (b = 0; b < batch && i < n; b++, i++)
            len += (size_t)snprintf(sql + len, cap - len,
                                    "%s('bench::event::1m::%ld','{\"count\":1,\"duration\":2.5,"
                                    "\"lines\":241,\"meta.cache.hits\":3,\"meta.db\":0.25}')",
                                    b > 0 ? "," : "", 1767225600L + i * 60);
        len += (size_t)snprintf(sql + len, cap - len,
                                " ON DUPLICATE KEY UPDATE `data` = JSON_SET(`data`");
        for (k = 0; k < 5; k++)
            len += (size_t)snprintf(sql + len, cap - len,
                                    ", '$.\"%s\"', JSON_EXTRACT(`data`, '$.\"%s\"') + "
                                    "JSON_EXTRACT(VALUES(`data`), '$.\"%s\"')",
                                    leaves[k], leaves[k], leaves[k]);
        len += (size_t)snprintf(sql + len, cap - len, ");COMMIT");
        if (mysql_real_query(my, sql, (unsigned long)len) != 0)
            goto fail;
        for (;;) { /* the three results of the text */
            MYSQL_RES *r = mysql_store_result(my);
            int st;
            if (r != NULL)
                mysql_free_result(r);
            if ((st = mysql_next_result(my)) < 0)
                break;
            if (st > 0)
                goto fail;
        }
    }
    t1 = now_s();
    (void)mysql_query(my, "DROP TABLE IF EXISTS raw_upsert");
    printf("{\"bench\":\"raw\",\"impl\":\"raw-mysql\",\"tool\":\"bench/raw_mysql.c (%ld-row "
           "INSERT ... ON DUPLICATE KEY UPDATE JSON_SET, one transaction each)\",\"rows\":%ld,"
           "\"seconds\":%.6f,\"rows_per_s\":%.1f}\n",
           batch, n, t1 - t0, (double)n / (t1 - t0));
    free(sql);
    mysql_close(my);
    return 0;

fail:
    fprintf(stderr, "trifle-bench-raw-mysql: %s\n", my != NULL ? mysql_error(my) : "out of memory");
    return 1;
}
