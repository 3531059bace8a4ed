"""Durable acknowledged writes in `trifle serve` (issue #10), short tests; the kill -9 cycles
are in test_crash.py.

- a write the journal cannot take is answered 503 + Retry-After (never 201), and after a restart
  the stored total equals the 201s exactly: nothing acknowledged was lost, nothing refused was
  stored;
- the journal's files cannot be deleted through /_local/files while the server runs;
- a store outage logs one line when it starts and one when it ends (not one per failed flush),
  and every write accepted during it is stored afterwards. The store is a private redis-server
  started by the test on a free port, killed and restarted on the same port.
"""
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import time
import unittest

import harness
from harness import ADMIN, WRITER, Server, ServerTestCase, base_config, free_port

DAY = "from=2026-03-01T00:00:00Z&to=2026-03-01T00:00:00Z&granularity=1d"


def body(key, n=1, extra=None):
    values = {"count": n}
    if extra:
        values.update(extra)
    return {"key": key, "at": "2026-03-01T12:00:00Z", "values": values}


def stored(srv, key):
    st, _, raw, doc = srv.request("GET", "/api/v1/metrics?key=%s&%s" % (key, DAY), token=WRITER)
    if st != 200:
        raise AssertionError("GET values: %s %r" % (st, raw))
    v = doc["data"]["values"][0]
    return v.get("count", 0)


class JournalFullTest(ServerTestCase):
    """RLIMIT_FSIZE (SIGXFSZ ignored, so a write past the limit fails with EFBIG) stands in for a
    full disk; it needs no privileges. The payload is large and the buffer does not flush while
    the test posts (one aggregated row at the end), so the journal reaches the limit long before
    the SQLite file or the server's log do."""

    LIMIT = 2 << 20

    def test_refused_write_is_503_and_nothing_acknowledged_is_lost(self):
        d = self.fresh_dir("full")
        data = os.path.join(d, "data")
        cfg = base_config(data, os.path.join(data, "full.db"),
                          source_extra="    buffer: {duration_ms: 60000, size: 100000, "
                                       "journal_segment_bytes: 1099511627776}")
        limit = self.LIMIT

        def limit_files():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        srv = Server(d, cfg)
        srv.preexec = limit_files
        filler = {"field_%03d_%s" % (i, "x" * 40): 1 for i in range(40)}
        created = refused = 0
        first_503 = None
        with srv:
            conn = srv.connection()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and refused < 20:
                st, h, raw, doc = srv.request("POST", "/api/v1/metrics",
                                              body("full::k", 1, filler), token=WRITER, conn=conn)
                if st == 201:
                    created += 1
                elif st == 503:
                    refused += 1
                    first_503 = first_503 or (h, doc)
                else:
                    self.fail("unexpected answer %s %r" % (st, raw))
            conn.close()
            st, _, raw, stats = srv.request("GET", "/stats", token=ADMIN)
            self.assertEqual(st, 200, raw)
            log = srv.stderr()
        self.assertEqual(stats["stats"]["buffer.main"].get("journal_refused"), refused, stats)
        self.assertGreater(created, 0)
        self.assertEqual(refused, 20, "the journal never refused a write (limit %d)" % limit)
        h, doc = first_503
        self.assertEqual(h.get("retry-after"), "1")
        self.assertEqual(doc, {"errors": {"detail": "Service unavailable"}})
        journal = os.path.join(data, "journal", "main")
        lines = [l for l in log.splitlines() if "the journal cannot take writes" in l]
        self.assertEqual(len(lines), 1, log)  # once, not once per refused write
        self.assertIn(journal, lines[0])
        # without the limit: what the journal holds is replayed; the total is exactly the 201s
        srv2 = Server(d, cfg)
        with srv2:
            self.assertEqual(stored(srv2, "full::k"), created)


class JournalDiskFullTest(ServerTestCase):
    """A real full disk: the journal directory is a 1 MiB tmpfs filled up by a file of the test
    (needs CAP_SYS_ADMIN for mount(8); skipped without it). When the file is removed, writes are
    taken again and the server says so once."""

    def test_full_disk_then_room_again(self):
        d = self.fresh_dir("disk")
        data = os.path.join(d, "data")
        journal = os.path.join(data, "journal", "main")
        os.makedirs(journal)
        m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", journal],
                           capture_output=True)
        if m.returncode != 0:
            self.skipTest("cannot mount a tmpfs: %s" % m.stderr.decode().strip())
        try:
            cfg = base_config(data, os.path.join(data, "disk.db"),
                              source_extra="    buffer: {journal_segment_bytes: 4194304}")
            with Server(d, cfg) as srv:
                conn = srv.connection()
                post = lambda: srv.request("POST", "/api/v1/metrics", body("disk::k"),
                                           token=WRITER, conn=conn)
                created = sum(post()[0] == 201 for _ in range(20))
                self.assertEqual(created, 20)
                filler = os.path.join(journal, "filler")
                with open(filler, "wb", buffering=0) as f:
                    try:
                        while True:
                            f.write(b"\0" * 4096)
                    except OSError:
                        pass
                # the segment's last page still has room for a few records
                for _ in range(1000):
                    first = post()
                    if first[0] != 201:
                        break
                    created += 1
                self.assertEqual(first[0], 503, first)
                self.assertEqual(first[1].get("retry-after"), "1")
                self.assertEqual(first[3], {"errors": {"detail": "Service unavailable"}})
                self.assertEqual([post()[0] for _ in range(9)], [503] * 9)
                os.unlink(filler)
                self.assertEqual(post()[0], 201)
                created += 1
                self.assertEqual(stored(srv, "disk::k"), created)
                conn.close()
                log = srv.stderr()
        finally:
            subprocess.run(["umount", journal], capture_output=True)
        refused = [l for l in log.splitlines() if "the journal cannot take writes" in l]
        again = [l for l in log.splitlines() if "the journal takes writes again" in l]
        self.assertEqual(len(refused), 1, log)
        self.assertIn(journal, refused[0])
        self.assertEqual(len(again), 1, log)
        self.assertIn("(9 more answered 503 since the last report)", again[0])


class IdempotencyWindowTest(ServerTestCase):
    """The instant between a call's journal write and the server's own record of it (issue #13):
    TRIFLE_TEST_SERVE_EXIT_AFTER_NOTED makes the server _exit right there, deterministically.
    The call's Idempotency-Key travels in the same journal record, so after the restart the
    replay knows the call was applied: the retry with the same key applies the rest once and
    answers the status of a finished request."""

    def kill_in_window(self, name, calls, exit_after, key):
        d = self.fresh_dir(name)
        data = os.path.join(d, "data")
        cfg = base_config(data, os.path.join(data, "s.db"))
        srv = Server(d, cfg, env={"TRIFLE_TEST_SERVE_EXIT_AFTER_NOTED": str(exit_after)}).start()
        with self.assertRaises((ConnectionError, OSError, http.client.HTTPException)):
            srv.request("POST", "/api/v1/metrics", calls, headers={"Idempotency-Key": key},
                        token=WRITER)
        self.assertEqual(srv.wait(), 86, srv.stderr())
        srv.stop()
        # the server's own log had not recorded the last call: that is the window
        with open(os.path.join(data, "idempotency.log")) as f:
            mine = [ln.split() for ln in f if ln.rstrip().endswith(" " + key)]
        recorded = int(mine[-1][2]) if mine else 0
        self.assertEqual(recorded, exit_after - 1, mine)
        srv = Server(d, cfg).start()
        self.addCleanup(srv.stop)
        return srv

    def test_batch_killed_after_a_journal_write(self):
        calls = [body("win", 1) for _ in range(5)]
        srv = self.kill_in_window("idem-batch", calls, 3, "k-batch-0001")
        self.assertEqual(stored(srv, "win"), 3)  # the journal's replay stored calls 1-3
        for _ in range(2):
            st, _, raw, doc = srv.request("POST", "/api/v1/metrics", calls,
                                          headers={"Idempotency-Key": "k-batch-0001"},
                                          token=WRITER)
            self.assertEqual(st, 201, raw)
            self.assertEqual(doc, {"data": {"created": "ok", "count": 5}})
            self.assertEqual(stored(srv, "win"), 5)  # calls 4 and 5 once, call 3 not again

    def test_last_call_killed_after_its_journal_write(self):
        """A single call: the kill leaves it applied and unanswered; the retry gets the 201 the
        request would have had and applies nothing."""
        srv = self.kill_in_window("idem-one", body("one", 7), 1, "k-single-0001")
        st, _, raw, doc = srv.request("POST", "/api/v1/metrics", body("one", 7),
                                      headers={"Idempotency-Key": "k-single-0001"},
                                      token=WRITER)
        self.assertEqual((st, doc), (201, {"data": {"created": "ok"}}), raw)
        self.assertEqual(stored(srv, "one"), 7)
        # a call's own id (a client's journal origin and seq) is kept the same way
        named = [dict(body("named", 2), id="0123abcd:42")]
        srv2 = self.kill_in_window("idem-id", named, 1, "k-named-0001")
        st, _, raw, _ = srv2.request("POST", "/api/v1/metrics", named,
                                     headers={"Idempotency-Key": "k-named-0002"}, token=WRITER)
        self.assertEqual(st, 201, raw)
        self.assertEqual(stored(srv2, "named"), 2)


class JournalFilesTest(ServerTestCase):
    def test_journal_files_are_in_use(self):
        d = self.fresh_dir("files")
        data = os.path.join(d, "data")
        with Server(d, base_config(data, os.path.join(data, "f.db"))) as srv:
            self.assertEqual(srv.request("POST", "/api/v1/metrics", body("files::k"),
                                         token=WRITER)[0], 201)
            journal = os.path.join(data, "journal", "main")
            names = sorted(os.listdir(journal))
            self.assertTrue(names, "the journal directory is empty after a write")
            for name in names:
                st, _, raw, doc = srv.request("DELETE", "/_local/files/journal%%2Fmain%%2F%s"
                                              % name, token=ADMIN)
                self.assertEqual(st, 409, raw)
                self.assertEqual(doc, {"status": 409, "error": {"reason": "file in use"}})
            # what a replay set aside is the operator's to remove
            with open(os.path.join(journal, "x.corrupt"), "w") as f:
                f.write("junk")
            st, _, raw, _ = srv.request("DELETE", "/_local/files/journal%2Fmain%2Fx.corrupt",
                                        token=ADMIN)
            self.assertEqual(st, 200, raw)
            self.assertEqual(sorted(os.listdir(journal)), names)


def redis_ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Redis:
    """A private redis-server with an fsync-always append-only file, so a SIGKILL keeps what it
    acknowledged."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no",
             "--logfile", os.path.join(self.dir, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not redis_ping(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("redis-server did not start on port %d" % self.port)
            time.sleep(0.05)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class OutageLogTest(ServerTestCase):
    def test_one_line_when_an_outage_starts_and_one_when_it_ends(self):
        if not shutil.which("redis-server"):
            if os.environ.get("CI") == "true" or os.environ.get("TRIFLE_TEST_STRICT") == "1":
                self.fail("redis-server not installed (CI=true / TRIFLE_TEST_STRICT=1)")
            self.skipTest("redis-server not installed")
        d = self.fresh_dir("outage")
        data = os.path.join(d, "data")
        redis = Redis(d)
        redis.start()
        try:
            cfg = base_config(data, os.path.join(data, "unused.db")).replace(
                '"sqlite:%s"' % os.path.join(data, "unused.db"),
                '"redis://127.0.0.1:%d/0?prefix=outage"' % redis.port).replace(
                "    time_zone: UTC\n",
                "    time_zone: UTC\n    buffer: {duration_ms: 100, retry_initial_ms: 50, "
                "retry_max_ms: 200}\n")
            with Server(d, cfg) as srv:
                conn = srv.connection()
                post = lambda: srv.request("POST", "/api/v1/metrics", body("outage::k"),
                                           token=WRITER, conn=conn)[0]
                before = sum(post() == 201 for _ in range(50))
                self.assertEqual(before, 50)
                self.assertEqual(stored(srv, "outage::k"), 50)  # read-your-writes: flushed
                redis.kill()
                during = 0
                t_end = time.monotonic() + 3
                while time.monotonic() < t_end:
                    self.assertEqual(post(), 201)  # the buffer takes them
                    during += 1
                    time.sleep(0.005)
                redis.start()  # same port, same append-only file
                deadline = time.monotonic() + 20
                while "the store works again" not in srv.stderr():
                    self.assertLess(time.monotonic(), deadline, srv.stderr())
                    time.sleep(0.1)
                self.assertEqual(stored(srv, "outage::k"), 50 + during)
                conn.close()
                log = srv.stderr()
        finally:
            redis.kill()
        started = [l for l in log.splitlines() if "writing to the store failed" in l]
        ended = [l for l in log.splitlines() if "the store works again" in l]
        self.assertEqual(len(started), 1, log)
        self.assertEqual(len(ended), 1, log)
        self.assertRegex(started[0], r"source main: writing to the store failed: redis: .*; "
                                     r"\d+ entries pending")
        self.assertRegex(ended[0], r"source main: the store works again after \d+\.\d s: "
                                   r"[1-9]\d* failed flushes; stored the [1-9]\d* entries that "
                                   r"were pending")
        # no line per failed flush
        self.assertLessEqual(len([l for l in log.splitlines() if "warning" in l.lower()]), 2, log)


if __name__ == "__main__":
    harness.run_main()
