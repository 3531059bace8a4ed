/* Test bodies the server-backed SQL drivers' tests run the same way (test_driver_postgres.c,
 * test_driver_mysql.c), each on the URL of a fresh namespace the caller made and drops: the
 * out-of-memory loop, eight processes incrementing one bucket, and the throughput report. They
 * use the failing allocator of server_helpers.h (test_server_hooks() installed) and fail the
 * test through cmocka. TRIFLE_TEST_LIGHT=1 (valgrind) makes the loops ten times shorter. */
#ifndef TRIFLE_TEST_STORAGE_CASES_H
#define TRIFLE_TEST_STORAGE_CASES_H

/* Open url, set up, inc, (with_marks) write_marked and mark_read, get, ping and scan with
 * allocation 1, 2, ... failing until all succeed: every failure is TRIFLE_ENOMEM and nothing
 * leaks. */
void storage_case_oom(const char *url, int with_marks);

/* Eight forked processes each open url and increment one bucket; the sums are exact. driver
 * names the report line. */
void storage_case_concurrency(const char *driver, const char *url);

/* Report the rate of 1000-item incs and the time of a year-long get of hourly buckets. */
void storage_case_throughput(const char *driver, const char *url);

#endif
