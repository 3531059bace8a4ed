"""kill -9 under load (issue #10): every write answered 201 survives, none is counted twice.

For each backend (SQLite; PostgreSQL, Redis and MySQL/MariaDB from the TRIFLE_TEST_URI_*
variables of scripts/test-servers.sh), CYCLES times:
  1. start `trifle serve` with a buffered source and its default journal (interval sync);
  2. THREADS client threads POST over their own keep-alive connection, one request at a time,
     each counting the 201 answers it received;
  3. after 1-2 s (random) the server gets SIGKILL while the load runs;
  4. it is started again on the same data directory (trifle_open replays the journal before
     the listener opens) and read back; the GET flushes the key's buckets first;
  5. the stored values are compared with what the clients saw.

Telling a lost or double-counted write from a request in flight at the kill. A request whose
answer never arrived may or may not have been applied, so "stored == 201s" alone cannot be
required, and "acked <= stored <= acked + in_flight" would let a double-counted acknowledged
write hide behind an in-flight request that was not applied. So every request of client thread N
(its k-th request, k = 1, 2, ...) tracks

    {"count": 1, "t": {"N": 1}, "s": {"N": k}}

on one key. A thread has at most one request in flight (the next is sent after the answer), so
after a thread saw a = its 201s, and has i = 0 or 1 request without an answer, exactly two
outcomes are correct:
    t.N == a      and s.N == a(a+1)/2                (the in-flight request was not applied)
    t.N == a + 1  and s.N == a(a+1)/2 + a + 1        (it was, i == 1)
Anything else is a loss (t.N < a: an acknowledged write missing) or a double count (a request
applied twice adds its k once more, which no correct outcome explains). The test asserts both
are 0 per thread, and that the total `count` equals the sum over the threads; it reports acked,
stored, in flight and in-flight-applied separately.

Backends whose server is not configured are skipped, or fail under CI=true or
TRIFLE_TEST_STRICT=1. TRIFLE_CRASH_SUMMARY=FILE writes the per-backend totals as JSON (read by
bench/run.sh for docs/BENCHMARKS.md). TRIFLE_CRASH_CYCLES changes the number of cycles.
"""
import http.client
import json
import os
import random
import sys
import threading
import time
import unittest

import harness
from harness import WRITER, Server, ServerTestCase, base_config

CYCLES = int(os.environ.get("TRIFLE_CRASH_CYCLES", "5"))
THREADS = 8
AT = "2026-03-01T12:00:00Z"
DAY = "from=2026-03-01T00:00:00Z&to=2026-03-01T00:00:00Z&granularity=1d"
STRICT = os.environ.get("CI") == "true" or os.environ.get("TRIFLE_TEST_STRICT") == "1"
SUMMARY = {}


class Client(threading.Thread):
    """One keep-alive connection, one request at a time."""

    def __init__(self, index, host, port, key, stop):
        super().__init__(daemon=True)
        self.index = index
        self.host, self.port, self.key, self.stop = host, port, key, stop
        self.acked = 0       # 201 answers received
        self.in_flight = 0   # 1: a request was sent and its answer never arrived
        self.refused = 0     # other statuses (not applied; counted apart)
        self.error = None

    def run(self):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = {"Authorization": "Bearer " + WRITER, "Content-Type": "application/json"}
        try:
            while not self.stop.is_set():
                # the k-th acknowledged request carries k; a refused one (not applied) is
                # followed by a request with the same k
                body = json.dumps({"key": self.key, "at": AT,
                                   "values": {"count": 1, "t": {str(self.index): 1},
                                              "s": {str(self.index): self.acked + 1}}})
                self.in_flight = 1
                conn.request("POST", "/api/v1/metrics", body=body, headers=headers)
                r = conn.getresponse()
                r.read()
                self.in_flight = 0
                if r.status == 201:
                    self.acked += 1
                else:
                    self.refused += 1
        except (OSError, http.client.HTTPException):
            pass  # the server was killed; in_flight tells whether a request was pending
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e
        finally:
            conn.close()


class CrashTest(ServerTestCase):
    def cycle(self, backend, driver, n, rows):
        d = self.fresh_dir("%s-%d" % (backend, n))
        data = os.path.join(d, "data")
        key = "crash::%s::%d" % (backend, n)
        cfg = base_config(data, "unused").replace('"sqlite:unused"', '"%s"' % driver)
        srv = Server(d, cfg)
        srv.start()
        stop = threading.Event()
        clients = [Client(i, srv.host, srv.port, key, stop) for i in range(THREADS)]
        for c in clients:
            c.start()
        time.sleep(1.0 + random.random())
        srv.kill()  # SIGKILL while the clients post
        srv.stop()  # closes its log, checks it for sanitizer reports
        stop.set()
        for c in clients:
            c.join(30)
            self.assertFalse(c.is_alive(), "a client thread did not end")
            self.assertIsNone(c.error)
        acked = sum(c.acked for c in clients)
        self.assertGreater(acked, 0, "no write was acknowledged before the kill")

        again = Server(d, cfg)
        with again:
            deadline = time.monotonic() + 60
            while True:
                st, _, raw, doc = again.request("GET", "/api/v1/metrics?key=%s&%s" % (key, DAY),
                                                token=WRITER)
                if st == 200:
                    break
                self.assertLess(time.monotonic(), deadline, "values: %s %r" % (st, raw))
                time.sleep(0.2)
            replay_log = again.stderr()
        v = doc["data"]["values"][0]
        t, s = v.get("t", {}), v.get("s", {})
        lost = double = applied = 0
        for c in clients:
            a, ti, si = c.acked, t.get(str(c.index), 0), s.get(str(c.index), 0)
            base = a * (a + 1) // 2
            if ti == a and si == base:
                continue
            if c.in_flight and ti == a + 1 and si == base + a + 1:
                applied += 1
                continue
            if ti < a:
                lost += a - ti
            else:
                double += max(ti - a - c.in_flight, 1)
        stored = v.get("count", 0)
        row = {"cycle": n, "acked": acked, "stored": stored,
               "in_flight": sum(c.in_flight for c in clients), "in_flight_applied": applied,
               "refused": sum(c.refused for c in clients), "lost": lost,
               "double_counted": double}
        sys.stderr.write("  %s cycle %d: %s\n" % (backend, n, json.dumps(row)))
        rows.append(row)  # before the checks: the summary shows a failed cycle too
        self.assertEqual(lost, 0, "%s: acknowledged writes lost: %s\n%s" % (backend, row, v))
        self.assertEqual(double, 0, "%s: writes counted twice: %s\n%s" % (backend, row, v))
        self.assertEqual(stored, sum(t.values()), v)
        self.assertEqual(stored, acked + applied, row)
        self.assertIn("source main: journal", replay_log)

    def backend(self, name, driver):
        rows = []
        try:
            for n in range(1, CYCLES + 1):
                self.cycle(name, driver, n, rows)
        finally:
            SUMMARY[name] = {k: sum(r[k] for r in rows)
                             for k in ("acked", "stored", "in_flight", "in_flight_applied",
                                       "lost", "double_counted")}
            SUMMARY[name].update(cycles=len(rows), runs=rows)

    def server_url(self, var, param):
        url = os.environ.get(var)
        if not url:
            if STRICT:
                self.fail("%s is not set (CI=true / TRIFLE_TEST_STRICT=1: a missing server "
                          "fails; start one with scripts/test-servers.sh)" % var)
            self.skipTest("%s is not set (scripts/test-servers.sh)" % var)
        name = "crash_%d_%d" % (os.getpid(), int(time.time()))
        return "%s%s%s=%s" % (url, "&" if "?" in url else "?", param, name)

    def test_sqlite(self):
        d = self.fresh_dir("sqlite-db")
        self.backend("sqlite", "sqlite:%s" % os.path.join(d, "crash.db"))

    def test_postgres(self):
        self.backend("postgres", self.server_url("TRIFLE_TEST_URI_POSTGRES", "table"))

    def test_redis(self):
        self.backend("redis", self.server_url("TRIFLE_TEST_URI_REDIS", "prefix"))

    def test_mysql(self):
        self.backend("mysql", self.server_url("TRIFLE_TEST_URI_MYSQL", "table"))

    @classmethod
    def tearDownClass(cls):
        out = os.environ.get("TRIFLE_CRASH_SUMMARY")
        if out and SUMMARY:
            with open(out, "w") as f:
                json.dump({"threads": THREADS, "cycles": CYCLES, "backends": SUMMARY}, f,
                          indent=1)
        super().tearDownClass()


if __name__ == "__main__":
    # a backend left out makes the whole test "skipped" for ctest (exit 77), not "passed"
    if len(sys.argv) > 1 and os.sep in sys.argv[1] and os.path.isfile(sys.argv[1]):
        harness.TRIFLE = os.path.abspath(sys.argv.pop(1))
    result = unittest.main(verbosity=2, exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    sys.exit(77 if result.skipped else 0)
