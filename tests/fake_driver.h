/* The fake driver: a test fixture, not part of libtrifle.
 *
 * tests/fake_driver.c is built as tests/plugins/trifle_fake.so. It implements the whole driver ABI
 * 1.1 in memory (every capability, journal marks included, every identifier mode; no drop) and,
 * like any driver, exports exactly one
 * symbol, trifle_driver_fake_init (the abi.exports ctest checks it). Tests reach its counters and
 * its fault injection through the ordinary storage API instead of extra exports:
 *
 *  URL          `fake:<db>`: connections with the same <db> share one in-process store, so a
 *               second connection (or a probe, below) sees what the first wrote. `fake:` is db "".
 *  Counters     trifle_storage_scan(st, FAKE_STATS_KEY, ...) emits, per operation
 *               <op> ∈ open close setup inc set get ping scan write_marked mark_read:
 *                 `<op>.calls`     calls so far
 *                 `<op>.items`     items (inc/set; write_marked: set plus inc items), buckets
 *                                  (get), leaves (ping), summed over calls
 *                 `<op>.leaves`    leaves of all items (inc/set/write_marked)
 *                 `<op>.failures`  injected failures
 *                 `<op>.batch.<k>` items of the k-th call (k from 0; the first 1024 calls)
 *               plus `buckets` (stored buckets with at least one leaf) and `pings`.
 *               Reading the counters is not counted.
 *  Faults       as URL parameters at open, or as leaves of trifle_storage_ping(st,
 *               FAKE_CONTROL_KEY, ...) (numbers; not counted):
 *                 `fail_<op>=N`    fail the N-th <op> call from now (1 = the next one)
 *                 `fail_count=K`   ... and the K-1 calls after it (default 1; -1 = every call
 *                                  until reset); applies to faults armed after it
 *               In a URL, `fail_open=1` fails that very open.
 *                 `fail_code=C`    status returned: a name (ECONN, EDATA, ...) or a negative
 *                                  number (default ECONN); `fail_native=N` sets err->native
 *                 `fail_applied=A` a failing inc/set first applies its first A items and reports
 *                                  applied = A
 *                 `fail_item=I`    ... applies items before I and reports failed_item = I,
 *                                  applied = I (use with fail_code=EDATA)
 *                 `fail_unknown=1` ... applies every item, then fails with outcome_unknown = 1
 *               A failing write_marked (`fail_write_marked=N`) is all or nothing: it stores
 *               nothing and reports applied = 0, with failed_item = fail_item when that is below
 *               its item count (set items first, then inc items); fail_applied is ignored. With
 *               fail_unknown=1 it stores every item and the mark, then fails with
 *               outcome_unknown = 1. `fail_mark_read=N` fails a mark_read.
 *                 `slow_inc_ms=N`  every inc (not write_marked) is counted, then sleeps
 *                                  N ms before it touches the store (0 = off; reset_stats
 *                                  turns it off)
 *                 `reset_stats=1`  zero the counters and disarm every fault (settings persist
 *                                  until then)
 *                 `reset_data=1`   forget every stored bucket, ping and journal mark
 *               `fake_probe=1` (URL only) opens a connection whose calls are not counted.
 *  Emission     URL parameters that make `get` behave like less tidy drivers, to test the core's
 *               sink: `get_order=reverse` emits buckets and leaves backwards, `get_split=1` emits
 *               every leaf twice with half its value, `get_misbehave=index|path` emits an index
 *               past the call's buckets or an empty path (and ignores emit's answer).
 *               An injected open failure names the URL, as client libraries that echo it do.
 *               `expire_after` is accepted and ignored; other parameters are rejected like the
 *               sqlite driver does (`invalid driver URL: unknown parameter <name>`).
 *  Contract     inc/set/write_marked check what SPEC §7.2 promises drivers (ids set and distinct
 *               within a call (within each list of a write_marked) for the mode, leaves non-empty,
 *               sorted, unique, finite) and fail with TRIFLE_EINVAL `fake: contract violation: ...`
 *               before applying anything, so core bugs surface. write_marked also refuses a mark
 *               whose seq is below the stored seq of its journal (driver.h: marks increase).
 *  Marks        write_marked stores the sets, then the incs, then the mark (name → seq) in the
 *               fake database, all or nothing; mark_read gives 0 for a journal never marked.
 *               Marks are shared by the connections of one <db> like the buckets are.
 *
 * The helpers below open a probe connection per call; they need the fake to be findable
 * (TRIFLE_TEST_PLUGIN_DIR is registered with trifle_driver_dir_add() when it is defined). */
#ifndef TRIFLE_TEST_FAKE_DRIVER_H
#define TRIFLE_TEST_FAKE_DRIVER_H

#include <stdio.h>
#include <string.h>

#include <trifle/storage.h>

#define FAKE_STATS_KEY "__fake__.stats"
#define FAKE_CONTROL_KEY "__fake__.control"

typedef struct fake_counter_query {
    const char *name;
    double value;
} fake_counter_query;

static inline int fake_counter_leaf(size_t index, const char *path, double value, void *payload)
{
    fake_counter_query *q = payload;

    (void)index;
    if (strcmp(path, q->name) == 0)
        q->value = value;
    return 0;
}

/* Open an uncounted connection to fake database db. */
static inline int fake_probe_open(trifle_storage **out, const char *db, trifle_error *err)
{
    char url[256];

#ifdef TRIFLE_TEST_PLUGIN_DIR
    if (trifle_driver_dir_add(TRIFLE_TEST_PLUGIN_DIR, err) != 0)
        return -1;
#endif
    (void)snprintf(url, sizeof(url), "fake:%s?fake_probe=1", db);
    return trifle_storage_open(out, url, NULL, err);
}

/* The counter `name` ("inc.calls", "inc.batch.0", "buckets") of fake database db: 0 when it was
 * not emitted, -1 when the probe failed. */
static inline double fake_counter(const char *db, const char *name)
{
    fake_counter_query q = {name, 0};
    trifle_storage *st = NULL;
    int64_t at = 0;
    int rc;

    if (fake_probe_open(&st, db, NULL) != 0)
        return -1;
    rc = trifle_storage_scan(st, FAKE_STATS_KEY, &at, fake_counter_leaf, &q, NULL);
    trifle_storage_close(st);
    return rc != 0 ? -1 : q.value;
}

/* Set one fault-injection or reset control (see above) of fake database db. 0 or a status. */
static inline int fake_control(const char *db, const char *name, double value)
{
    trifle_leaf leaf;
    trifle_storage *st = NULL;
    int rc;

    leaf.path = name;
    leaf.value = value;
    if ((rc = fake_probe_open(&st, db, NULL)) != 0)
        return rc;
    rc = trifle_storage_ping(st, FAKE_CONTROL_KEY, 0, &leaf, 1, NULL);
    trifle_storage_close(st);
    return rc;
}

#endif
