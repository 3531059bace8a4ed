/* Test bodies the server-backed SQL drivers' tests run the same way (test_driver_postgres.c,
 * test_driver_mysql.c), each on the URL of a fresh namespace the caller made and drops: the
 * out-of-memory loop, eight processes incrementing one bucket, the throughput report, and
 * replies lost on the way. They use the failing allocator of server_helpers.h
 * (test_server_hooks() installed) and fail the test through cmocka. TRIFLE_TEST_LIGHT=1 (valgrind)
 * makes the loops ten times shorter. */
#ifndef TRIFLE_TEST_STORAGE_CASES_H
#define TRIFLE_TEST_STORAGE_CASES_H

#include "server_helpers.h"

/* Open url, set up, inc, (with_marks) write_marked and mark_read, get, ping and scan with
 * allocation 1, 2, ... failing until all succeed: every failure is TRIFLE_ENOMEM and nothing
 * leaks. */
void storage_case_oom(const char *url, int with_marks);

/* Eight forked processes each open url and increment one bucket; the sums are exact. driver
 * names the report line. */
void storage_case_concurrency(const char *driver, const char *url);

/* Report the rate of 1000-item incs and the time of a year-long get of hourly buckets. */
void storage_case_throughput(const char *driver, const char *url);

/* Through relay r (started by the caller; url opens driver through it): a write whose reply is
 * lost reports outcome_unknown (it was in fact applied, so a blind retry would count it twice), a
 * read whose reply is lost is simply sent again, a server that is down is ECONN with a known
 * outcome and the message "cannot connect to <driver>", and the next call after it is back
 * succeeds. The caller stops the relay and drops the namespace. */
void storage_case_outcome_unknown(const char *driver, const char *url, tcp_relay *r);

#endif
