"""Stored transponders over real HTTP (issue #13): /api/v1/transponders CRUD with the App's shapes
and status codes, validation through the expression engine (422, changeset shape), the App's
grant mode "any" (a read-only token may change them), application on read to GET /metrics and
POST /metrics/query by exact key or regex, in `order`, never for the system key, and durability
across a restart. Also GET /api/v1/source carries every field trifle-cli reads."""
import json
import os
import urllib.parse

import harness
from harness import READER, STAR, WRITER, NOBODY, ServerTestCase

FROM, TO = "2026-01-15T10:00:00Z", "2026-01-15T11:00:00Z"


def metrics_path(key):
    return "/api/v1/metrics?" + urllib.parse.urlencode(
        {"key": key, "from": FROM, "to": TO, "granularity": "1h"})


class TranspondersTest(ServerTestCase):

    SERVER = dict(name="transponders", source_extra="    granularities: [1h, 1d]\n")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for key, values, at in (
                ("event::logs", {"count": 4, "duration": 2}, "2026-01-15T10:20:00Z"),
                ("event::logs", {"count": 1, "duration": 3}, "2026-01-15T11:05:00Z"),
                ("api::v1", {"hits": 10, "errors": 1}, "2026-01-15T10:00:00Z"),
                ("api::v2", {"hits": 5, "errors": 5}, "2026-01-15T10:00:00Z"),
                ("other", {"hits": 2, "errors": 1}, "2026-01-15T10:00:00Z")):
            st, _, raw, _ = cls.srv.request("POST", "/api/v1/metrics",
                                            {"key": key, "at": at, "values": values},
                                            token=WRITER)
            assert st == 201, raw

    def setUp(self):
        # every case starts without transponders
        _, _, _, doc = self.srv.request("GET", "/api/v1/transponders", token=WRITER)
        for t in doc["data"]:
            st, _, raw, _ = self.srv.request("DELETE", "/api/v1/transponders/" + t["id"],
                                             token=WRITER)
            self.assertEqual(st, 200, raw)

    def create(self, body, token=WRITER):
        return self.srv.request("POST", "/api/v1/transponders", body, token=token)

    def created(self, body, token=WRITER):
        st, _, raw, doc = self.create(body, token)
        self.assertEqual(st, 201, raw)
        return doc["data"]

    def values(self, key):
        st, _, raw, doc = self.srv.request("GET", metrics_path(key), token=READER)
        self.assertEqual(st, 200, raw)
        return doc["data"]["values"]

    # --- GET /source --------------------------------------------------------------------------

    def test_source_fields(self):
        st, _, raw, doc = self.srv.request("GET", "/api/v1/source", token=READER)
        self.assertEqual(st, 200, raw)
        d = doc["data"]
        for field in ("api_version", "server_version", "id", "type", "display_name",
                      "default_timeframe", "default_granularity", "available_granularities",
                      "time_zone"):
            self.assertIn(field, d)
        self.assertEqual((d["api_version"], d["id"], d["type"], d["display_name"]),
                         ("v1", "main", "project", "Main"))
        self.assertEqual(d["available_granularities"], ["1h", "1d"])
        self.assertEqual((d["default_granularity"], d["time_zone"]), ("1h", "UTC"))

    # --- CRUD ---------------------------------------------------------------------------------

    def test_crud_shapes(self):
        t = self.created({"transponder": {
            "name": "Mean duration", "key": "event::logs",
            "config": {"paths": ["duration", "count"], "expression": "a / b",
                       "response": "mean_duration"},
            "enabled": True, "order": 2}})
        self.assertEqual(len(t["id"]), 16)
        self.assertEqual({k: t[k] for k in t if k not in ("id", "created_at", "updated_at")}, {
            "name": "Mean duration", "key": "event::logs",
            "config": {"paths": ["duration", "count"], "expression": "a / b",
                       "response": "mean_duration"},
            "enabled": True, "order": 2, "source_type": "project", "source_id": "main"})
        # top-level fields, string enabled/order, comma-separated paths
        u = self.created({"name": "Twice", "key": "other", "paths": "hits, errors",
                          "expression": "a + b", "response": "sum", "enabled": "false",
                          "order": "1"})
        self.assertEqual((u["config"]["paths"], u["enabled"], u["order"]),
                         (["hits", "errors"], False, 1))
        st, _, raw, doc = self.srv.request("GET", "/api/v1/transponders", token=READER)
        self.assertEqual(st, 200, raw)
        self.assertEqual([x["id"] for x in doc["data"]], [u["id"], t["id"]])  # by order
        st, _, _, doc = self.srv.request("GET", "/api/v1/transponders/" + t["id"], token=READER)
        self.assertEqual((st, doc["data"]), (200, t))
        # PUT changes only what it gives
        st, _, raw, doc = self.srv.request("PUT", "/api/v1/transponders/" + u["id"],
                                           {"transponder": {"enabled": True}}, token=WRITER)
        self.assertEqual(st, 200, raw)
        self.assertEqual((doc["data"]["enabled"], doc["data"]["config"], doc["data"]["id"],
                          doc["data"]["created_at"]),
                         (True, u["config"], u["id"], u["created_at"]))
        st, _, raw, doc = self.srv.request("DELETE", "/api/v1/transponders/" + u["id"],
                                           token=WRITER)
        self.assertEqual((st, doc["data"]["id"]), (200, u["id"]), raw)
        for method in ("GET", "PUT", "DELETE"):
            self.assertDetail(self.srv.request(method, "/api/v1/transponders/" + u["id"],
                                               {"enabled": True}, token=WRITER),
                              404, "Page not found")

    def test_validation(self):
        good = {"key": "k", "config": {"paths": ["a"], "expression": "a * 2",
                                       "response": "r"}}
        cases = [
            ({"config": good["config"]}, "key", "can't be blank"),
            (dict(good, key=""), "key", "must be a non-empty string"),
            (dict(good, key="^(unclosed"), "key", None),
            ({"key": "k"}, "config", "can't be blank"),
            (dict(good, config={"paths": ["a"], "expression": "a +", "response": "r"}),
             "config", "unexpected end of expression"),
            (dict(good, config={"paths": ["a"], "expression": "b", "response": "r"}),
             "config", "unknown variable b"),
            (dict(good, config={"paths": [], "expression": "1", "response": "r"}),
             "config", "at least one path is required"),
            (dict(good, config={"paths": ["a"], "expression": "a"}),
             "config", "response path is required"),
            (dict(good, config={"paths": ["a.*"], "expression": "a", "response": "r"}),
             "config", "wildcard paths are not supported yet"),
            (dict(good, config={"paths": ["a"], "expression": "sqrt(a, a)", "response": "r"}),
             "config", "function sqrt expects 1 argument"),
            (dict(good, enabled="maybe"), "enabled", "is invalid"),
            (dict(good, order=1.5), "order", "is invalid"),
        ]
        for body, field, message in cases:
            st, _, raw, doc = self.create(body)
            self.assertEqual(st, 422, (body, raw))
            self.assertEqual(list(doc["errors"].keys()), [field], raw)
            if message is not None:
                self.assertEqual(doc["errors"][field], [message], raw)
            else:
                self.assertTrue(doc["errors"][field][0].startswith(
                    "is not a valid regular expression: "), raw)
        self.assertDetail(self.create("[1, 2]"), 422, "Invalid request parameters")
        self.assertDetail(self.create("{not json"), 400, "Bad request")
        # nothing was stored
        _, _, _, doc = self.srv.request("GET", "/api/v1/transponders", token=READER)
        self.assertEqual(doc["data"], [])

    def test_grants_are_any(self):
        # the App's mode "any": a read-only token may create and delete
        t = self.created({"key": "k", "paths": ["a"], "expression": "a", "response": "r"},
                         token=READER)
        st, _, _, _ = self.srv.request("DELETE", "/api/v1/transponders/" + t["id"], token=STAR)
        self.assertEqual(st, 200)
        st, _, _, _ = self.srv.request("GET", "/api/v1/transponders", token=NOBODY)
        self.assertEqual(st, 401)
        st, _, _, _ = self.srv.request("GET", "/api/v1/transponders")
        self.assertEqual(st, 401)
        st, _, _, _ = self.srv.request("PATCH", "/api/v1/transponders", token=WRITER)
        self.assertEqual(st, 404)

    # --- application on read ------------------------------------------------------------------

    def test_applied_by_exact_key_in_order(self):
        self.created({"name": "second", "key": "event::logs", "order": 2,
                      "config": {"paths": ["per_count"], "expression": "a * 100",
                                 "response": "percent"}})
        self.created({"name": "first", "key": "event::logs", "order": 1,
                      "config": {"paths": ["duration", "count"], "expression": "a / b",
                                 "response": "per_count"}})
        self.created({"name": "disabled", "key": "event::logs", "enabled": False,
                      "config": {"paths": ["count"], "expression": "a", "response": "nope"}})
        self.created({"name": "elsewhere", "key": "event::log",
                      "config": {"paths": ["count"], "expression": "a", "response": "nope"}})
        self.assertEqual(self.values("event::logs"), [
            {"count": 4, "duration": 2, "per_count": 0.5, "percent": 50},
            {"count": 1, "duration": 3, "per_count": 3, "percent": 300}])
        # derived paths are queryable
        st, _, raw, doc = self.srv.request("POST", "/api/v1/metrics/query", {
            "key": "event::logs", "from": FROM, "to": TO, "granularity": "1h",
            "mode": "aggregate", "value_path": "percent", "aggregator": "sum"}, token=READER)
        self.assertEqual(st, 200, raw)
        self.assertEqual(doc["data"]["value"], 350)
        self.assertIn("percent", doc["data"]["available_paths"])

    def test_applied_by_regex(self):
        self.created({"name": "error rate", "key": "^api::",
                      "config": {"paths": ["errors", "hits"], "expression": "a / b",
                                 "response": "rate"}})
        self.assertEqual(self.values("api::v1")[0], {"errors": 1, "hits": 10, "rate": 0.1})
        self.assertEqual(self.values("api::v2")[0], {"errors": 5, "hits": 5, "rate": 1})
        self.assertEqual(self.values("other")[0], {"errors": 1, "hits": 2})
        # anchored at the end too
        self.created({"name": "v2 only", "key": "v2$",
                      "config": {"paths": ["hits"], "expression": "a * 2", "response": "h2"}})
        self.assertEqual(self.values("api::v2")[0]["h2"], 10)
        self.assertNotIn("h2", self.values("api::v1")[0])

    def test_not_for_the_system_key(self):
        self.created({"key": "__system__key__",
                      "config": {"paths": ["count"], "expression": "a", "response": "copy"}})
        self.created({"key": "^__",
                      "config": {"paths": ["count"], "expression": "a", "response": "copy2"}})
        st, _, raw, doc = self.srv.request("GET", "/api/v1/metrics?" + urllib.parse.urlencode(
            {"from": FROM, "to": TO, "granularity": "1h"}), token=READER)
        self.assertEqual(st, 200, raw)
        for row in doc["data"]["values"]:
            self.assertNotIn("copy", row)
            self.assertNotIn("copy2", row)
        self.assertIn("keys", doc["data"]["values"][0])

    def test_a_transponder_that_cannot_apply_is_reported(self):
        # `count` is a number, so count.x cannot be written
        self.created({"name": "broken", "key": "event::logs",
                      "config": {"paths": ["duration"], "expression": "a", "response": "count.x"}})
        st, _, raw, doc = self.srv.request("GET", metrics_path("event::logs"), token=READER)
        self.assertEqual(st, 422, raw)
        self.assertEqual(doc, {"errors": {"status": "error", "error":
                                          "transponder broken: cannot write to response path "
                                          "count.x"}})

    def test_survives_restart(self):
        t = self.created({"name": "kept", "key": "other",
                          "config": {"paths": ["hits"], "expression": "a + 1",
                                     "response": "plus"}})
        path = os.path.join(self.dir, "data", "transponders", "main.json")
        with open(path) as f:
            self.assertEqual([x["id"] for x in json.load(f)], [t["id"]])
        self.assertFalse(os.path.exists(path + ".tmp"))
        self.restart_class_server()
        st, _, _, doc = self.srv.request("GET", "/api/v1/transponders/" + t["id"], token=READER)
        self.assertEqual((st, doc["data"]), (200, t))
        self.assertEqual(self.values("other")[0]["plus"], 3)


if __name__ == "__main__":
    harness.run_main()
