"""Simple Stats over HTTP (SPEC §10.4-§10.6, §10.9; ERRATA B7): /stats, /stats/prometheus
(checked with promtool), /debug/threads, /debug/pool/bytes."""
import os
import shutil
import subprocess

import harness
from harness import ADMIN, READER, WRITER, Server, ServerTestCase, base_config


class StatsTest(ServerTestCase):
    SERVER = dict(name="stats", db="s.db",
                  stats="  prometheus_labels: {type: trifle-test, region: \"eu\\\"1\"}")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for i in range(3):
            cls.srv.request("POST", "/api/v1/metrics",
                            {"key": "s", "at": "2026-01-01T00:00:00Z", "values": {"n": i}},
                            token=WRITER)

    def test_stats_json(self):
        self.assertReason(self.srv.request("GET", "/stats"), 401, "Bad token")
        self.assertReason(self.srv.request("GET", "/stats", token="trf_not_a_known_token"), 401,
                          "Bad token")
        st, h, raw, doc = self.srv.request("GET", "/stats", token=READER)  # any valid token
        self.assertEqual(st, 200, raw)
        self.assertEqual(h["content-type"], "application/json; charset=utf-8")
        self.assertTrue(raw.startswith(b"{\n \""), raw[:20])  # one-space indentation
        self.assertEqual(sorted(doc), ["disk", "monitors", "pool", "stats", "system"])
        self.assertEqual(doc["stats"]["buffer.main"]["operations"], 3)
        for k in ("all", "free", "available", "used"):
            self.assertIsInstance(doc["disk"][k], int)
        self.assertIn("store", doc["system"])
        self.assertIn("uptime_in_ms", doc["system"])

    def test_prometheus(self):
        st, h, raw, _ = self.srv.request("GET", "/stats/prometheus", token=READER)
        self.assertEqual(st, 200, raw)
        self.assertEqual(h["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        text = raw.decode()
        self.assertTrue(text.endswith("\n"))
        self.assertIn('# TYPE stats_api_metrics_track_total counter', text)
        self.assertIn('stats_api_metrics_track_total{type="trifle-test",name="node-1",'
                      'id="node-1",region="eu\\"1"} 3', text)
        st, _, raw2, _ = self.srv.request("GET", "/stats?format=prometheus", token=READER)
        self.assertEqual(st, 200)
        self.assertIn(b"# TYPE", raw2)
        promtool = shutil.which("promtool")
        if promtool is None:
            if os.environ.get("CI"):
                self.fail("promtool is required in CI")
            self.skipTest("promtool not installed")
        p = subprocess.run([promtool, "check", "metrics"], input=raw, capture_output=True)
        self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())

    def test_debug_threads(self):
        for path in ("/debug/threads", "/debug/goroutines"):
            self.assertReason(self.srv.request("GET", path), 401, "Bad token")
            self.assertReason(self.srv.request("GET", path, token=WRITER), 403,
                              "admin token required")
            st, _, raw, doc = self.srv.request("GET", path, token=ADMIN)
            self.assertEqual(st, 200, raw)
            counts = [g["count"] for g in doc]
            self.assertEqual(counts, sorted(counts, reverse=True))
            roles = {}
            for g in doc:
                self.assertEqual(g["goroutine"], "%s [%s]" % (g["thread"], g["state"]))
                self.assertIn(g["state"], ("running", "idle", "blocked"))
                roles[g["thread"]] = roles.get(g["thread"], 0) + g["count"]
            self.assertEqual(roles["http-worker"], 2)
            self.assertEqual(roles["main"], 1)
            self.assertEqual(roles["buffer-flusher:main"], 1)
            self.assertEqual(roles["stats-checkpoint"], 1)
            # the thread answering is running
            self.assertTrue(any(g["thread"] == "http-worker" and g["state"] == "running"
                                for g in doc))

    def test_debug_pool_bytes(self):
        self.assertReason(self.srv.request("GET", "/debug/pool/bytes", token=READER), 403,
                          "admin token required")
        st, _, raw, doc = self.srv.request("GET", "/debug/pool/bytes", token=ADMIN)
        self.assertEqual(st, 200, raw)
        fields = ["allocated", "acquired", "returned", "dropped", "throttled", "inuse", "invalid",
                  "pool_size", "pool_items", "max_item_size", "default_item_size", "max_count",
                  "max_size"]
        self.assertEqual(sorted(doc), ["http_request", "http_response"])
        for tag in doc:
            self.assertEqual(list(doc[tag]), fields)
        self.assertGreaterEqual(doc["http_request"]["acquired"], 3)
        self.assertEqual(doc["http_request"]["invalid"], 0)
        # the response being built right now is in use (earlier ones may still be sending)
        self.assertGreaterEqual(doc["http_response"]["inuse"], 1)
        self.assertLessEqual(doc["http_response"]["inuse"], doc["http_response"]["acquired"])


class PublicAndDisabledTest(ServerTestCase):
    def test_public(self):
        d = self.fresh_dir("public")
        cfg = base_config(os.path.join(d, "data"), os.path.join(d, "data", "p.db"),
                          stats="  public: true\n  include_storage_stats_in_api: false\n"
                                "  persist: false\n  no_buffer: false\n  buffer_size: 4")
        with Server(d, cfg) as srv:
            st, _, raw, doc = srv.request("GET", "/stats")
            self.assertEqual(st, 200, raw)
            self.assertNotIn("disk", doc)
            self.assertNotIn("store", doc["system"])
            self.assertEqual(srv.request("GET", "/stats/prometheus")[0], 200)
            # the debug endpoints still need the admin token
            self.assertReason(srv.request("GET", "/debug/threads"), 401, "Bad token")
            st, _, _, doc = srv.request("GET", "/debug/threads", token=ADMIN)
            roles = {g["thread"] for g in doc}
            self.assertIn("stats-consumer", roles)
            self.assertNotIn("stats-checkpoint", roles)
        self.assertFalse(os.path.exists(os.path.join(d, "data", "stats", "simple")))

    def test_disabled(self):
        d = self.fresh_dir("disabled")
        cfg = base_config(os.path.join(d, "data"), os.path.join(d, "data", "p.db"),
                          stats="  enabled: false")
        with Server(d, cfg) as srv:
            for path in ("/stats", "/stats/prometheus"):
                self.assertDetail(srv.request("GET", path, token=ADMIN), 404, "Page not found")
            self.assertEqual(srv.request("POST", "/api/v1/metrics",
                                         {"key": "d", "at": "2026-01-01T00:00:00Z",
                                          "values": {"n": 1}}, token=WRITER)[0], 201)


if __name__ == "__main__":
    harness.run_main()
