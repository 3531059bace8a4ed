"""The dashboard's page and saved dashboards over real HTTP (issue 15): GET / and its files,
their security headers, GET /api/v1/sources, /api/v1/dashboards CRUD, its checks, the read-only
token, and that dashboards survive a restart."""
import json
import os

import harness
from harness import READER, STAR, WRITER, NOBODY, ServerTestCase

WIDGET = {"title": "Signups", "key": "event::signup", "paths": ["count", "duration"],
          "mode": "timeline", "granularity": "1h", "range": "7d"}


class DashboardsTest(ServerTestCase):
    SERVER = dict(name="dash", source_extra="    granularities: [1m, 1h, 1d]\n")

    def create(self, body, token=WRITER):
        return self.srv.request("POST", "/api/v1/dashboards", body, token=token)

    # --- the page ------------------------------------------------------------------------------

    def test_page_and_headers(self):
        st, h, raw, _ = self.srv.request("GET", "/")
        self.assertEqual(st, 200, raw)
        self.assertEqual(h["content-type"], "text/html; charset=utf-8")
        self.assertEqual(h["x-content-type-options"], "nosniff")
        csp = h["content-security-policy"]
        self.assertIn("script-src 'self'", csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertIn("frame-ancestors 'none'", csp)
        if b"not built into this server" in raw:
            self.skipTest("dashboard not built in (TRIFLE_DASHBOARD)")
        self.assertNotIn(b"<script>", raw)  # no inline script
        for path, ctype in (("/assets/app.js", "text/javascript"),
                            ("/assets/app.css", "text/css"),
                            ("/assets/uPlot.min.js", "text/javascript"),
                            ("/assets/uPlot.min.css", "text/css")):
            st, h, raw, _ = self.srv.request("GET", path)
            self.assertEqual(st, 200, path)
            self.assertTrue(h["content-type"].startswith(ctype), h)
            self.assertIn("max-age=", h["cache-control"])
            self.assertGreater(len(raw), 100)
            # a revalidation with the ETag is answered 304 without a body
            st, h2, raw2, _ = self.srv.request("GET", path, headers={"If-None-Match": h["etag"]})
            self.assertEqual((st, raw2), (304, b""))
        st, _, _, _ = self.srv.request("GET", "/assets/nope.js")
        self.assertEqual(st, 404)

    def test_api_is_no_store(self):
        st, h, _, _ = self.srv.request("GET", "/api/v1/dashboards", token=READER)
        self.assertEqual(st, 200)
        self.assertEqual(h["cache-control"], "no-store")
        self.assertEqual(h["x-content-type-options"], "nosniff")

    def test_sources(self):
        st, _, raw, doc = self.srv.request("GET", "/api/v1/sources", token=READER)
        self.assertEqual(st, 200, raw)
        self.assertEqual(doc["data"], [{"id": "main", "name": "Main", "type": "project",
                                        "read": True, "write": False,
                                        "granularities": ["1m", "1h", "1d"],
                                        "default_granularity": "1h", "time_zone": "UTC"}])
        _, _, _, doc = self.srv.request("GET", "/api/v1/sources", token=WRITER)
        self.assertTrue(doc["data"][0]["write"])
        self.assertDetail(self.srv.request("GET", "/api/v1/sources", token=NOBODY), 401,
                          "Bad token")
        self.assertDetail(self.srv.request("GET", "/api/v1/sources"), 401, "Bad token")

    # --- CRUD ----------------------------------------------------------------------------------

    def test_crud(self):
        st, _, raw, doc = self.create({"dashboard": {"name": "Ops", "widgets": [WIDGET]}})
        self.assertEqual(st, 201, raw)
        d = doc["data"]
        self.assertRegex(d["id"], r"^[0-9a-f]{16}$")
        self.assertEqual(d["name"], "Ops")
        self.assertEqual(d["widgets"], [dict(WIDGET, aggregator="sum")])
        self.assertEqual(d["created_at"], d["updated_at"])
        st, _, _, doc = self.srv.request("GET", "/api/v1/dashboards/" + d["id"], token=READER)
        self.assertEqual((st, doc["data"]), (200, d))
        _, _, _, doc = self.srv.request("GET", "/api/v1/dashboards", token=STAR)
        self.assertIn(d, doc["data"])
        # replace: id and created_at stay
        w2 = dict(WIDGET, mode="aggregate", aggregator="max",
                  range={"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00+01:00"})
        st, _, raw, doc = self.srv.request("PUT", "/api/v1/dashboards/" + d["id"],
                                           {"name": "Ops 2", "widgets": [w2]}, token=WRITER)
        self.assertEqual(st, 200, raw)
        self.assertEqual(doc["data"]["id"], d["id"])
        self.assertEqual(doc["data"]["created_at"], d["created_at"])
        self.assertEqual(doc["data"]["widgets"][0]["range"], w2["range"])
        st, _, raw, doc = self.srv.request("DELETE", "/api/v1/dashboards/" + d["id"],
                                           token=WRITER)
        self.assertEqual((st, doc), (200, {"data": {"id": d["id"], "deleted": True}}), raw)
        self.assertDetail(self.srv.request("GET", "/api/v1/dashboards/" + d["id"],
                                           token=READER), 404, "Page not found")
        self.assertDetail(self.srv.request("DELETE", "/api/v1/dashboards/" + d["id"],
                                           token=WRITER), 404, "Page not found")

    def test_read_only_token_cannot_change(self):
        _, _, _, doc = self.create({"name": "Keep", "widgets": []})
        did = doc["data"]["id"]
        for method, path, body in (("POST", "/api/v1/dashboards", {"name": "x"}),
                                   ("PUT", "/api/v1/dashboards/" + did, {"name": "x"}),
                                   ("DELETE", "/api/v1/dashboards/" + did, None)):
            for token in (READER, STAR):
                self.assertDetail(self.srv.request(method, path, body, token=token), 403,
                                  "Forbidden")
        _, _, _, doc = self.srv.request("GET", "/api/v1/dashboards/" + did, token=READER)
        self.assertEqual(doc["data"]["name"], "Keep")

    def test_invalid_fields_are_named(self):
        cases = [
            ({}, "name", "name: is required"),
            ({"name": 3}, "name", "name: must be a string"),
            ({"name": "x", "widgets": {}}, "widgets", "widgets: must be a list"),
            ({"name": "x", "widgets": [3]}, "widgets[0]", "widgets[0]: must be an object"),
            ({"name": "x", "widgets": [dict(WIDGET, mode="pie")]}, "widgets[0].mode",
             "widgets[0].mode: must be timeline, category or aggregate"),
            ({"name": "x", "widgets": [WIDGET, dict(WIDGET, granularity="5m")]},
             "widgets[1].granularity",
             "widgets[1].granularity: is not one of the source's granularities"),
            ({"name": "x", "widgets": [dict(WIDGET, paths=[])]}, "widgets[0].paths",
             "widgets[0].paths: must be a list of 1 to 10 value paths"),
            ({"name": "x", "widgets": [dict(WIDGET, paths=["a", "b.*"])]},
             "widgets[0].paths[1]", "widgets[0].paths[1]: must be a non-empty dotted path "
             "without *"),
            ({"name": "x", "widgets": [dict(WIDGET, range="1y")]}, "widgets[0].range",
             "widgets[0].range: must be 24h, 7d, 30d, 90d or {from, to}"),
            ({"name": "x", "widgets": [dict(WIDGET, range={"from": "2026-01-01", "to": "x"})]},
             "widgets[0].range.from",
             "widgets[0].range.from: must be an ISO 8601 time with an offset"),
            ({"name": "x", "widgets": [dict(WIDGET, key="")]}, "widgets[0].key",
             "widgets[0].key: must not be empty"),
            ([1], "body", "body: must be a JSON object"),
        ]
        for body, field, detail in cases:
            st, _, raw, doc = self.create(body)
            self.assertEqual(st, 422, (body, raw))
            self.assertEqual(doc, {"errors": {"detail": detail, "field": field}}, body)
        st, _, _, _ = self.create("{not json")
        self.assertEqual(st, 400)

    def test_survives_restart_and_is_per_source(self):
        _, _, _, doc = self.create({"name": "Persisted", "widgets": [WIDGET]})
        did = doc["data"]["id"]
        path = os.path.join(self.dir, "data", "dashboards", "main.json")
        with open(path) as f:
            self.assertIn(did, [d["id"] for d in json.load(f)])
        self.restart_class_server()
        st, _, _, doc = self.srv.request("GET", "/api/v1/dashboards/" + did, token=READER)
        self.assertEqual((st, doc["data"]["name"]), (200, "Persisted"))


if __name__ == "__main__":
    harness.run_main()
