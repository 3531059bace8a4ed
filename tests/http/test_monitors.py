"""Monitors over real HTTP (issue 15): a webhook receiver on loopback gets exactly one alert when
the tracked values cross the threshold and one recovery when they fall back, a restart in between
sends nothing twice, a failing webhook is retried, reported in /stats and the log and does not
slow ingestion, and bad monitors are refused with the field named."""
import http.server
import json
import os
import threading
import time
from datetime import datetime, timezone

import harness
from harness import READER, WRITER, Server, ServerTestCase, base_config, free_port

MONITORS = """\
monitors:
  tick_ms: 50
  webhook_timeout_ms: 1000
  webhook_retries: 2
  webhook_backoff_ms: 100
"""


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every POST."""

    def __init__(self):
        self.events = []
        self.headers = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.events.append(json.loads(body))
                    outer.headers.append(dict(self.headers))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def wait_for(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.snapshot()) >= n:
                return self.snapshot()
            time.sleep(0.05)
        return self.snapshot()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class MonitorsTest(ServerTestCase):

    SERVER = dict(name="mon", source_extra="    granularities: [1m, 1h]\n", extra=MONITORS)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rx = Receiver()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.rx.close()
        super().tearDownClass()

    def monitor(self, **over):
        m = {"name": "load", "key": "event::load", "value_path": "count", "aggregator": "sum",
             "window": "1h", "granularity": "1m", "condition": ">", "threshold": 5,
             "interval_s": 1, "webhook_url": "http://127.0.0.1:%d/hook" % self.rx.port}
        m.update(over)
        return m

    def track(self, key, count):
        st, _, raw, _ = self.srv.request("POST", "/api/v1/metrics",
                                         {"key": key, "at": now_iso(), "values": {"count": count}},
                                         token=WRITER)
        self.assertEqual(st, 201, raw)

    def get_monitor(self, mid):
        st, _, raw, doc = self.srv.request("GET", "/api/v1/monitors/" + mid, token=READER)
        self.assertEqual(st, 200, raw)
        return doc["data"]

    def wait_state(self, mid, state, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.get_monitor(mid)
            if m["state"] == state:
                return m
            time.sleep(0.05)
        self.fail("monitor %s never reached %s: %s" % (mid, state, m))

    def test_alert_restart_recover(self):
        st, _, raw, doc = self.srv.request("POST", "/api/v1/monitors",
                                           {"monitor": self.monitor()}, token=WRITER)
        self.assertEqual(st, 201, raw)
        mid = doc["data"]["id"]
        self.assertEqual(doc["data"]["state"], "unknown")
        # first evaluation: no data, so ok, and nothing is sent for unknown -> ok
        self.wait_state(mid, "ok")
        self.track("event::load", 3)
        time.sleep(1.5)
        self.assertEqual(self.rx.snapshot(), [])
        self.track("event::load", 4)  # sum 7 > 5
        events = self.rx.wait_for(1)
        self.assertEqual(len(events), 1, events)
        ev = events[0]
        self.assertEqual(ev["event"], "monitor.alert")
        self.assertEqual((ev["state"], ev["previous_state"], ev["value"]), ("alert", "ok", 7))
        self.assertEqual(ev["source"], "main")
        self.assertEqual(ev["monitor"]["id"], mid)
        self.assertEqual(ev["monitor"]["threshold"], 5)
        self.assertRegex(ev["event_id"], r"^[0-9a-f]{16}$")
        self.assertEqual(self.rx.headers[0]["X-Trifle-Event"], "monitor.alert")
        self.assertEqual(self.rx.headers[0]["X-Trifle-Event-Id"], ev["event_id"])
        m = self.wait_state(mid, "alert")
        self.assertEqual([h["state"] for h in m["history"]], ["ok", "alert"])

        # a restart while alerting must not send the alert again
        self.restart_class_server()
        m = self.get_monitor(mid)
        self.assertEqual(m["state"], "alert")
        before = m["evaluated_at"]
        deadline = time.monotonic() + 10
        while self.get_monitor(mid)["evaluated_at"] == before and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.2)  # at least one more evaluation after the restart
        self.assertEqual(len(self.rx.snapshot()), 1, self.rx.snapshot())

        self.track("event::load", -7)  # back to 0
        events = self.rx.wait_for(2)
        self.assertEqual(len(events), 2, events)
        self.assertEqual(events[1]["event"], "monitor.recovered")
        self.assertEqual((events[1]["state"], events[1]["previous_state"], events[1]["value"]),
                         ("ok", "alert", 0))
        time.sleep(1.5)
        self.assertEqual(len(self.rx.snapshot()), 2)
        m = self.get_monitor(mid)
        self.assertEqual([h["state"] for h in m["history"]], ["ok", "alert", "ok"])
        self.assertEqual(m["outbox"], [])
        self.assertEqual(m["delivery"]["status"], "ok")
        st, _, _, doc = self.srv.request("DELETE", "/api/v1/monitors/" + mid, token=WRITER)
        self.assertEqual(st, 200)

    def test_failing_webhook(self):
        dead = free_port()  # nothing listens there
        st, _, raw, doc = self.srv.request(
            "POST", "/api/v1/monitors",
            self.monitor(key="event::fail", threshold=0,
                         webhook_url="http://127.0.0.1:%d/x" % dead), token=WRITER)
        self.assertEqual(st, 201, raw)
        mid = doc["data"]["id"]
        self.track("event::fail", 1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            m = self.get_monitor(mid)
            if m.get("delivery", {}).get("status") == "failing" and m["outbox"] == []:
                break  # retried webhook_retries times, then dropped
            time.sleep(0.05)
        self.assertEqual(m["delivery"]["status"], "failing", m)
        self.assertIn("127.0.0.1", m["delivery"]["error"])
        self.assertEqual(m["outbox"], [], m)
        # ingestion is not slowed by the failing webhook
        t0 = time.monotonic()
        for _ in range(20):
            self.track("event::other", 1)
        self.assertLess(time.monotonic() - t0, 2.0)
        st, _, raw, doc = self.srv.request("GET", "/stats", token=READER)
        self.assertEqual(st, 200, raw)
        w = doc["monitors"]["webhook"]
        self.assertEqual(w["failed_attempts"], 3)  # the first try and webhook_retries: 2
        self.assertEqual(w["dropped"], 1)
        self.assertGreaterEqual(w["failing"], 1)
        log = self.srv.stderr()
        self.assertIn("webhook http://127.0.0.1:%d/x failed 3 times" % dead, log)
        self.srv.request("DELETE", "/api/v1/monitors/" + mid, token=WRITER)

    def test_invalid_monitors(self):
        cases = [
            ({}, "key", "is required"),
            ({"value_path": "a.*"}, "value_path", "must not contain *"),
            ({"aggregator": "avg"}, "aggregator", "must be sum, mean, min or max"),
            ({"window": "1mo"}, "window",
             "must be a duration such as 15m (s, m, h, d or w; at most 400 days)"),
            ({"granularity": "5m"}, "granularity", "is not one of the source's granularities"),
            ({"condition": "=="}, "condition", "must be >, >=, < or <="),
            ({"threshold": "5"}, "threshold", "must be a number"),
            ({"interval_s": 0.5}, "interval_s", "must be a whole number of seconds, 1 to 86400"),
            ({"enabled": 1}, "enabled", "must be true or false"),
            ({"webhook_url": "ftp://127.0.0.1/x"}, "webhook_url",
             "must be an http:// or https:// URL"),
            ({"webhook_url": "http://10.1.2.3/x"}, "webhook_url",
             "host is not allowed by monitors.webhook_allow"),
            ({"webhook_url": "http://[::ffff:192.168.0.1]/x"}, "webhook_url",
             "host is not allowed by monitors.webhook_allow"),
        ]
        for over, field, message in cases:
            body = {} if over == {} else self.monitor(**over)
            st, _, raw, doc = self.srv.request("POST", "/api/v1/monitors", body, token=WRITER)
            self.assertEqual(st, 422, (over, raw))
            self.assertEqual(doc, {"errors": {"detail": "%s: %s" % (field, message),
                                              "field": field}}, over)
        # loopback by name and by IPv6 are allowed by default
        for url in ("http://localhost:1/x", "http://[::1]:1/x"):
            st, _, raw, doc = self.srv.request("POST", "/api/v1/monitors",
                                               self.monitor(webhook_url=url, enabled=False),
                                               token=WRITER)
            self.assertEqual(st, 201, raw)
            self.srv.request("DELETE", "/api/v1/monitors/" + doc["data"]["id"], token=WRITER)
        self.assertEqual(self.srv.request("POST", "/api/v1/monitors", self.monitor(),
                                          token=READER)[0], 403)


class AllowListTest(ServerTestCase):
    """monitors.webhook_allow replaces the loopback default."""

    def test_allow_list(self):
        d = self.fresh_dir("allow")
        cfg = base_config(os.path.join(d, "data"), os.path.join(d, "data", "s.db")) + \
            "monitors:\n  webhook_allow: [10.0.0.0/8, hooks.example.com]\n"
        with Server(d, cfg) as srv:
            def create(url):
                body = {"key": "k", "value_path": "count", "aggregator": "sum", "window": "1h",
                        "granularity": "1h", "condition": ">", "threshold": 1,
                        "webhook_url": url, "enabled": False}
                return srv.request("POST", "/api/v1/monitors", body, token=WRITER)
            self.assertEqual(create("http://10.20.30.40:8080/x")[0], 201)
            self.assertEqual(create("https://hooks.example.com/x")[0], 201)
            st, _, raw, doc = create("http://127.0.0.1/x")  # loopback no longer listed
            self.assertEqual(st, 422, raw)
            self.assertEqual(doc["errors"]["field"], "webhook_url")

    def test_bad_entry(self):
        d = self.fresh_dir("allow-bad")
        cfg = base_config(os.path.join(d, "data"), os.path.join(d, "data", "s.db")) + \
            "monitors:\n  webhook_allow: [10.0.0.0/33]\n"
        srv = Server(d, cfg).start(expect_failure=True)
        self.assertNotEqual(srv.wait(), 0)
        self.assertIn("monitors.webhook_allow[0]", srv.stderr())
        srv.stop()


if __name__ == "__main__":
    harness.run_main()
