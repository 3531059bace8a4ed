"""Start-up and shutdown (SPEC §9, §10.3, §11.4, §12.1; ERRATA I18, minor 21, 22): the zero-config
token flow, graceful shutdown without losing an accepted write, Simple Stats surviving kill -9,
limits.max_connections, and the exit status of a failed final flush."""
import hashlib
import json
import os
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import threading
import time

import harness
from harness import ADMIN, WRITER, Server, ServerTestCase, base_config

TOKEN = re.compile(r"\btrf_[A-Za-z0-9_-]{43}\b")


class ZeroConfigTest(ServerTestCase):
    def test_token_flow(self):
        d = self.fresh_dir("zero")
        srv = Server(d, args=["--listen", "127.0.0.1:0"]).start()
        try:
            tokens = TOKEN.findall(srv.stderr())
            self.assertEqual(len(tokens), 1, srv.stderr())
            token = tokens[0]
            data = os.path.join(d, "trifle-data")
            path = os.path.join(data, "tokens")
            with open(path) as f:
                stored = f.read()
            self.assertNotIn(token, stored)
            self.assertIn(hashlib.sha256(token.encode()).hexdigest(), stored)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
            self.assertTrue(os.path.exists(os.path.join(data, "trifle.db")))
            body = {"key": "zero", "at": "2026-01-01T00:00:00Z", "values": {"n": 1}}
            self.assertEqual(srv.request("POST", "/api/v1/metrics", body, token=token)[0], 201)
            self.assertEqual(srv.request("GET", "/debug/threads", token=token)[0], 200)
            st, _, _, doc = srv.request("GET", "/api/v1/source", token=token)
            self.assertEqual(doc["data"]["id"], "main")
            self.assertReason(srv.request("DELETE", "/_local/files/tokens", token=token), 409,
                              "file in use")
            self.assertReason(srv.request("DELETE", "/_local/files/trifle.db", token=token), 409,
                              "file in use")
            self.assertEqual(srv.terminate(), 0)
        finally:
            srv.stop()
        # the second start prints nothing and accepts the same token
        srv = Server(d, args=["--listen", "127.0.0.1:0"]).start()
        try:
            self.assertEqual(TOKEN.findall(srv.stderr()), [])
            st, _, raw, doc = srv.request(
                "GET", "/api/v1/metrics?key=zero&from=2026-01-01T00:00:00Z"
                "&to=2026-01-01T00:00:00Z&granularity=1d", token=token)
            self.assertEqual(st, 200, raw)
            self.assertEqual(doc["data"]["values"], [{"n": 1}])
        finally:
            srv.stop()

    def test_refuses_non_loopback(self):
        d = self.fresh_dir("zero-public")
        for addr in ("0.0.0.0:0", "[::]:0"):
            p = subprocess.run([harness.TRIFLE, "serve", "--listen", addr], cwd=d,
                               capture_output=True, timeout=30,
                               env={k: v for k, v in os.environ.items() if k != "TRIFLE_CONFIG"})
            self.assertEqual(p.returncode, 4, p.stderr)
            err = json.loads(p.stderr.decode().strip().splitlines()[-1])["error"]
            self.assertEqual(err["message"],
                             "http.listen: refusing to listen on non-loopback address %s without "
                             "a configuration file (use --config)" % addr)
        # nothing was created
        self.assertFalse(os.path.exists(os.path.join(d, "trifle-data", "tokens")))


def burst(srv, token, key, n_threads, per_thread, created, stop_after=None):
    """POST from several keep-alive connections; count 201s in created[0]."""
    body = json.dumps({"key": key, "at": "2026-01-10T12:00:00Z", "values": {"n": 1}})
    lock = threading.Lock()

    def worker():
        conn = srv.connection(timeout=30)
        try:
            for _ in range(per_thread):
                try:
                    st = srv.request("POST", "/api/v1/metrics", body,
                                     {"Content-Type": "application/json"}, token=token,
                                     conn=conn)[0]
                except (OSError, http_errors()):
                    conn.close()
                    conn = srv.connection(timeout=30)
                    continue
                if st == 201:
                    with lock:
                        created[0] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(n_threads)]
    for t in threads:
        t.start()
    if stop_after is not None:
        stop_after()
    for t in threads:
        t.join()


def http_errors():
    import http.client
    return http.client.HTTPException


class ShutdownTest(ServerTestCase):
    def config(self, d, extra=""):
        # a buffer that never flushes on its own: every write waits for the final flush
        return base_config(os.path.join(d, "data"), os.path.join(d, "data", "b.db"),
                           source_extra="    buffer:\n      duration_ms: 0\n      size: 1000000\n"
                                        "      max_pending: 1000000\n" + extra)

    def read_total(self, d, key):
        con = sqlite3.connect(os.path.join(d, "data", "b.db"))
        try:
            rows = con.execute("SELECT data FROM trifle_stats WHERE key LIKE ?",
                               (key + "::1d::%",)).fetchall()
        finally:
            con.close()
        return sum(json.loads(r[0]).get("n", 0) for r in rows)

    def test_sigterm_keeps_every_accepted_write(self):
        d = self.fresh_dir("sigterm")
        srv = Server(d, self.config(d)).start()
        created = [0]
        burst(srv, WRITER, "burst::a", 4, 150, created)
        self.assertEqual(created[0], 600)
        self.assertEqual(self.read_total(d, "burst::a"), 0, "flushed before shutdown")
        # and a burst that is cut by SIGTERM half-way
        created_b = [0]
        burst(srv, WRITER, "burst::b", 4, 400, created_b,
              stop_after=lambda: (time.sleep(0.2), srv.proc.send_signal(signal.SIGTERM)))
        self.assertEqual(srv.wait(), 0, srv.stderr())
        srv.stop()
        self.assertIn("SIGTERM: shutting down", srv.stderr())
        self.assertEqual(self.read_total(d, "burst::a"), 600)
        self.assertGreater(created_b[0], 0)
        self.assertEqual(self.read_total(d, "burst::b"), created_b[0])
        # a restart reads them back through the API
        with Server(d, self.config(d)) as srv2:
            st, _, raw, doc = srv2.request(
                "GET", "/api/v1/metrics?key=burst::a&from=2026-01-10T00:00:00Z"
                "&to=2026-01-10T00:00:00Z&granularity=1d", token=WRITER)
            self.assertEqual(doc["data"]["values"], [{"n": 600}], raw)

    def test_sigint(self):
        d = self.fresh_dir("sigint")
        srv = Server(d, self.config(d)).start()
        self.assertEqual(srv.request("POST", "/api/v1/metrics",
                                     {"key": "int", "at": "2026-01-10T00:00:00Z",
                                      "values": {"n": 2}}, token=WRITER)[0], 201)
        self.assertEqual(srv.terminate(signal.SIGINT), 0)
        srv.stop()
        self.assertEqual(self.read_total(d, "int"), 2)

    def test_failed_final_flush_exits_1(self):
        d = self.fresh_dir("flushfail")
        srv = Server(d, self.config(d, "      close_timeout_ms: 300\n      retry_initial_ms: 50\n"
                                       "      retry_max_ms: 100\n")).start()
        self.assertEqual(srv.request("POST", "/api/v1/metrics",
                                     {"key": "lost", "at": "2026-01-10T00:00:00Z",
                                      "values": {"n": 1}}, token=WRITER)[0], 201)
        con = sqlite3.connect(os.path.join(d, "data", "b.db"))
        con.execute("ALTER TABLE trifle_stats RENAME TO moved_away")
        con.commit()
        con.close()
        rc = srv.terminate()
        srv.stop()
        self.assertEqual(rc, 1, srv.stderr())
        err = json.loads(srv.stderr().strip().splitlines()[-1])["error"]
        self.assertRegex(err["message"], r"^source main: \d+ buffered operations could not be "
                                         r"written: ")


class BufferFullTest(ServerTestCase):
    def test_503_when_the_buffer_is_full(self):
        """full_policy: error → 503 with Retry-After (SPEC §9.1, ERRATA minor 8); a store error
        is 500; the unwritten operations make the exit status 1."""
        d = self.fresh_dir("full")
        cfg = base_config(os.path.join(d, "data"), os.path.join(d, "data", "f.db"),
                          source_extra="    setup: false\n    granularities: [1d]\n"
                                       "    system_tracking: false\n"
                                       "    buffer: {size: 1, max_pending: 2, full_policy: error,"
                                       " duration_ms: 0, close_timeout_ms: 200,"
                                       " retry_initial_ms: 50, retry_max_ms: 100}")
        srv = Server(d, cfg).start()
        try:
            statuses = []
            for i in range(6):
                st, h, raw, doc = srv.request("POST", "/api/v1/metrics",
                                              {"key": "full::%d" % i, "at": "2026-01-01T00:00:00Z",
                                               "values": {"n": 1}}, token=WRITER)
                statuses.append(st)
                if st == 503:
                    self.assertEqual(doc, {"errors": {"detail": "Service unavailable"}})
                    self.assertEqual(h.get("retry-after"), "1")
            self.assertIn(201, statuses)
            self.assertIn(503, statuses)
            self.assertEqual(set(statuses), {201, 503})
            # reading needs the failing flush: a storage error is 500
            self.assertDetail(srv.request("GET", "/api/v1/metrics?key=full::0&from=2026-01-01T00"
                                          ":00:00Z&to=2026-01-01T00:00:00Z&granularity=1d",
                                          token=WRITER), 500, "Internal server error")
            self.assertEqual(srv.terminate(), 1)
        finally:
            srv.stop()


class PersistenceTest(ServerTestCase):
    def test_simple_stats_survive_kill_9(self):
        d = self.fresh_dir("kill9")
        cfg = base_config(os.path.join(d, "data"), os.path.join(d, "data", "k.db"))
        srv = Server(d, cfg).start()
        body = {"key": "k9", "at": "2026-01-01T00:00:00Z", "values": {"n": 1}}
        for _ in range(20):
            self.assertEqual(srv.request("POST", "/api/v1/metrics", body, token=WRITER)[0], 201)
        time.sleep(0.6)  # checkpoint_interval_ms is 100
        srv.kill()
        srv.stop()
        with Server(d, cfg) as srv2:
            st, _, raw, doc = srv2.request("GET", "/stats", token=ADMIN)
            self.assertEqual(st, 200, raw)
            self.assertEqual(doc["stats"]["api"]["metrics.track"], 20)
            self.assertGreaterEqual(doc["stats"]["http"]["requests"], 21)
            # the buffer counters also resume from the saved totals
            self.assertGreaterEqual(doc["stats"]["buffer.main"]["operations"], 20)


class ConnectionLimitTest(ServerTestCase):
    def test_503_beyond_max_connections(self):
        d = self.fresh_dir("conns")
        cfg = base_config(os.path.join(d, "data"), os.path.join(d, "data", "c.db"),
                          limits="  max_connections: 2")
        with Server(d, cfg) as srv:
            held = [socket.create_connection((srv.host, srv.port)) for _ in range(2)]
            time.sleep(0.2)
            try:
                st, h, raw, doc = srv.request("GET", "/health")
                self.assertEqual(st, 503, raw)
                self.assertEqual(doc, {"errors": {"detail": "Service unavailable"}})
                self.assertEqual(h.get("retry-after"), "1")
                self.assertEqual(h.get("connection"), "close")
            finally:
                for s in held:
                    s.close()
            deadline = time.monotonic() + 5
            while srv.request("GET", "/health")[0] != 200:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)


if __name__ == "__main__":
    harness.run_main()
