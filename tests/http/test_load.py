"""Concurrent load on one `trifle serve`: writers and readers on keep-alive connections at once,
and an editor of saved dashboards, so the libmicrohttpd thread pool, the source's buffer and its
flush thread, Simple Stats, the dashboard store and the render paths all run in parallel. scripts/test.sh runs it under ThreadSanitizer (a TSan build of
`trifle`), where any race report in the server's stderr fails the test (harness.Server.stop); in
the release build it checks that no accepted write is lost under load.

TRIFLE_LOAD_REQUESTS sets the POSTs per writer (default 200).
"""
import json
import os
import sqlite3
import threading
import unittest

import harness
from harness import ADMIN, READER, WRITER, Server, ServerTestCase, base_config

WRITERS = 6
READERS = 3
PER_WRITER = int(os.environ.get("TRIFLE_LOAD_REQUESTS", "200"))
AT = "2026-01-10T12:00:00Z"
DAY = "from=2026-01-10T00:00:00Z&to=2026-01-10T00:00:00Z&granularity=1d"


class LoadTest(ServerTestCase):
    def test_concurrent_writers_and_readers(self):
        d = self.fresh_dir("load")
        db = os.path.join(d, "data", "load.db")
        # 8 pool threads; a buffer that flushes every 20 ms, so flushes race with the writes
        cfg = base_config(os.path.join(d, "data"), db,
                          http_extra="  threads: 8\n",
                          source_extra="    buffer:\n      duration_ms: 20\n")
        cfg = cfg.replace("  threads: 2\n", "", 1)
        srv = Server(d, cfg).start()
        created = [0] * WRITERS
        failures = []
        edits = [0]
        done = threading.Event()

        def writer(i):
            conn = srv.connection(timeout=60)
            try:
                for n in range(PER_WRITER):
                    body = {"key": "load::w%d" % (n % 3), "at": AT,
                            "values": {"count": 1, "by": {"w%d" % i: 1}}}
                    if n % 10 == 9:  # now and then an array body of two
                        body = [body, body]
                    st, _, raw, _ = srv.request("POST", "/api/v1/metrics", body, token=WRITER,
                                                conn=conn)
                    if st != 201:
                        failures.append("POST %d: %s" % (st, raw[:200]))
                        return
                    created[i] += 2 if isinstance(body, list) else 1
            finally:
                conn.close()

        def reader(i):
            paths = ["/api/v1/metrics?key=load::w0&" + DAY, "/stats", "/stats/prometheus",
                     "/api/v1/source", "/health"]
            conn = srv.connection(timeout=60)
            n = 0
            try:
                while not done.is_set():
                    path = paths[(n + i) % len(paths)]
                    st, _, raw, _ = srv.request("GET", path, token=READER, conn=conn)
                    if st != 200:
                        failures.append("GET %s %d: %s" % (path, st, raw[:200]))
                        return
                    n += 1
            finally:
                conn.close()

        def editor():
            # saved dashboards: a shared, persisted list changed while the others read and write
            conn = srv.connection(timeout=60)
            try:
                while not done.is_set():
                    st, _, raw, doc = srv.request("POST", "/api/v1/dashboards",
                                                  {"name": "load %d" % edits[0]}, token=WRITER,
                                                  conn=conn)
                    if st != 201:
                        failures.append("POST dashboard %d: %s" % (st, raw[:200]))
                        return
                    st, _, raw, _ = srv.request("GET", "/api/v1/dashboards", token=READER,
                                                conn=conn)
                    if st != 200:
                        failures.append("GET dashboards %d: %s" % (st, raw[:200]))
                        return
                    st, _, raw, _ = srv.request("DELETE", "/api/v1/dashboards/" + doc["data"]["id"],
                                                token=WRITER, conn=conn)
                    if st != 200:
                        failures.append("DELETE dashboard %d: %s" % (st, raw[:200]))
                        return
                    edits[0] += 1
            finally:
                conn.close()

        writers = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
        readers = [threading.Thread(target=reader, args=(i,)) for i in range(READERS)]
        readers.append(threading.Thread(target=editor))
        for t in writers + readers:
            t.start()
        for t in writers:
            t.join()
        # the admin view of every thread while the readers still run
        st, _, raw, _ = srv.request("GET", "/debug/threads", token=ADMIN)
        done.set()
        for t in readers:
            t.join()
        srv.stop()  # SIGTERM: the final flush; fails on a sanitizer report or a non-zero exit
        self.assertEqual(failures, [])
        self.assertGreater(edits[0], 0)
        self.assertEqual(st, 200, raw)

        total = sum(created)
        self.assertEqual(total, WRITERS * (PER_WRITER + PER_WRITER // 10))
        con = sqlite3.connect(db)
        try:
            rows = con.execute("SELECT data FROM trifle_stats WHERE key LIKE 'load::w%::1d::%'")
            stored = [json.loads(r[0]) for r in rows.fetchall()]  # flat dotted paths
        finally:
            con.close()
        self.assertEqual(sum(s.get("count", 0) for s in stored), total)
        for i in range(WRITERS):
            self.assertEqual(sum(s.get("by.w%d" % i, 0) for s in stored), created[i])


if __name__ == "__main__":
    harness.run_main()
