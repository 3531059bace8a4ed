"""The Trifle App compatible API over real HTTP (SPEC §9, ERRATA I9, minor 3, 18)."""
import json
import os

import harness
from harness import ADMIN, READER, STAR, WRITER, Server, ServerTestCase, base_config, gz

JSON = {"Content-Type": "application/json"}


class ApiTest(ServerTestCase):
    """One source `main`, so requests need no X-Trifle-Source-Id."""

    SERVER = dict(name="api", limits="  max_points: 50",
                  source_extra="    granularities: [1m, 1h, 1d]\n")

    def post(self, body, token=WRITER, headers=None):
        h = dict(JSON)
        h.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        return self.srv.request("POST", "/api/v1/metrics", body, h, token=token)

    def get(self, query, token=READER):
        return self.srv.request("GET", "/api/v1/metrics?" + query, token=token)

    # --- health and source -------------------------------------------------------------------

    def test_health(self):
        for path in ("/health", "/api/v1/health"):
            st, h, raw, doc = self.srv.request("GET", path)
            self.assertEqual(st, 200, raw)
            self.assertEqual(h["content-type"], "application/json; charset=utf-8")
            self.assertEqual(list(doc), ["status", "timestamp", "api_version", "server_version"])
            self.assertEqual(doc["status"], "ok")
            self.assertEqual(doc["api_version"], "v1")
            self.assertEqual(doc["server_version"], "1.0.0")
            self.assertRegex(doc["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    def test_source(self):
        st, _, raw, doc = self.srv.request("GET", "/api/v1/source", token=READER)
        self.assertEqual(st, 200, raw)
        self.assertEqual(raw.decode(), json.dumps({"data": {
            "api_version": "v1", "server_version": "1.0.0", "id": "main", "type": "project",
            "display_name": "Main", "default_timeframe": "24h", "default_granularity": "1h",
            "available_granularities": ["1m", "1h", "1d"], "time_zone": "UTC",
            "extensions": ["batch", "idempotency"]}},
            separators=(",", ":")))

    def test_keep_alive(self):
        conn = self.srv.connection()
        try:
            for _ in range(3):
                st, h, _, _ = self.srv.request("GET", "/api/v1/source", token=READER, conn=conn)
                self.assertEqual(st, 200)
                self.assertNotEqual(h.get("connection"), "close")
            # a 401 without a body keeps the connection too
            st, h, _, _ = self.srv.request("GET", "/api/v1/source", conn=conn)
            self.assertEqual(st, 401)
            st, _, _, _ = self.srv.request("GET", "/health", conn=conn)
            self.assertEqual(st, 200)
        finally:
            conn.close()

    def test_unknown_path_and_method(self):
        for method, path in (("GET", "/nope"), ("GET", "/api/v1/metrics/"), ("PUT", "/api/v1/metrics"),
                             ("DELETE", "/api/v1/source"), ("GET", "/api/v2/health"),
                             ("POST", "/health"), ("GET", "/api/v1/metrics/query")):
            self.assertDetail(self.srv.request(method, path, token=WRITER), 404, "Page not found")

    # --- POST /api/v1/metrics ----------------------------------------------------------------

    def test_track_then_read(self):
        body = {"key": "api::track", "at": "2026-01-24T00:10:00Z",
                "values": {"count": 1, "duration": 0.42}}
        st, h, raw, doc = self.post(body)
        self.assertEqual(st, 201, raw)
        self.assertEqual(raw, b'{"data":{"created":"ok"}}')
        self.assertEqual(h["content-type"], "application/json; charset=utf-8")
        self.post(dict(body, at="2026-01-24T00:40:00+00:00"))
        st, _, raw, doc = self.get("key=api::track&from=2026-01-24T00:00:00Z"
                                   "&to=2026-01-24T01:00:00Z&granularity=1h")
        self.assertEqual(st, 200, raw)
        self.assertEqual(raw, b'{"data":{"at":["2026-01-24T00:00:00Z","2026-01-24T01:00:00Z"],'
                              b'"values":[{"count":2,"duration":0.84},{}]}}')
        # skip_blanks (§1 booleans, ERRATA minor 3) and the system key when `key` is absent
        st, _, _, doc = self.get("key=api::track&from=2026-01-24T00:00:00Z"
                                 "&to=2026-01-24T01:00:00Z&granularity=1h&skip_blanks=yes")
        self.assertEqual(doc["data"]["at"], ["2026-01-24T00:00:00Z"])
        st, _, _, doc = self.get("from=2026-01-24T00:00:00Z&to=2026-01-24T00:00:00Z&granularity=1h")
        self.assertEqual(st, 200)
        self.assertEqual(doc["data"]["values"][0]["keys"]["api::track"], 2)

    def test_assert_and_untracked(self):
        base = {"key": "api::assert", "at": "2026-02-01T10:00:00Z"}
        self.assertEqual(self.post(dict(base, values={"v": 5}))[0], 201)
        self.assertEqual(self.post(dict(base, values={"v": 7}, operation=" ASSERT "))[0], 201)
        self.assertEqual(self.post(dict(base, values={"v": 1}, untracked=True))[0], 201)
        st, _, _, doc = self.get("key=api::assert&from=2026-02-01T10:00:00Z"
                                 "&to=2026-02-01T10:00:00Z&granularity=1h")
        self.assertEqual(doc["data"]["values"], [{"v": 8}])
        st, _, _, doc = self.get("from=2026-02-01T10:00:00Z&to=2026-02-01T10:00:00Z&granularity=1h")
        keys = doc["data"]["values"][0]["keys"]
        self.assertEqual(keys["api::assert"], 2)
        self.assertEqual(keys["__untracked__"], 1)

    def test_empty_values_is_201(self):
        st, _, raw, _ = self.post({"key": "api::empty", "at": "2026-01-01T00:00:00Z", "values": {}})
        self.assertEqual(st, 201, raw)

    def test_time_formats(self):
        for at in ("2026-03-01 10:00:00+0100", "2026-03-01t09:00:00.999z",
                   " 2026-03-01T09:00:00-00:00 "):
            st, _, raw, _ = self.post({"key": "api::times", "at": at, "values": {"n": 1}})
            self.assertEqual(st, 201, (at, raw))
        # `+` in a query string is a space: a space before the offset reads as `+`
        st, _, raw, doc = self.get("key=api::times&from=2026-03-01T10:00:00+01:00"
                                   "&to=2026-03-01T09:59:59Z&granularity=1h")
        self.assertEqual(st, 200, raw)
        self.assertEqual(doc["data"]["values"], [{"n": 3}])

    def test_post_bad_request(self):
        ok = {"key": "api::bad", "at": "2026-01-01T00:00:00Z", "values": {"n": 1}}
        cases = [
            b"{", b"[]", b'"text"', b"", b"null", b'{"key":"a",}', b"{'key':1}",
            json.dumps({k: v for k, v in ok.items() if k != "key"}),
            json.dumps({k: v for k, v in ok.items() if k != "at"}),
            json.dumps({k: v for k, v in ok.items() if k != "values"}),  # ERRATA I9: missing → 400
            json.dumps(dict(ok, key=5)),
            json.dumps(dict(ok, at=1767225600)),
            json.dumps(dict(ok, at="2026-01-01T00:00:00")),             # no offset
            json.dumps(dict(ok, at="yesterday")),
            json.dumps(dict(ok, at="1800-01-01T00:00:00Z")),            # out of range (I9)
            json.dumps(dict(ok, operation="increment")),
            json.dumps(dict(ok, operation=1)),
            json.dumps(dict(ok, untracked="yes")),
            json.dumps(dict(ok, key="__system__key__")),                # reserved (I9)
            json.dumps(dict(ok, key="")),
            json.dumps(dict(ok, key="a..b")),
            json.dumps(dict(ok, key="k" * 201)),
            json.dumps(dict(ok, key="a\u0000b")),
            b'{"key":"a","at":"2026-01-01T00:00:00Z","values":{"n":1}} x',
            b'\xff\xfe{}',
        ]
        for body in cases:
            with self.subTest(body=body):
                self.assertDetail(self.post(body), 400, "Bad request")

    def test_post_values_422(self):
        base = {"key": "api::v", "at": "2026-01-01T00:00:00Z"}
        cases = [
            ({"meta": {"bad": "x"}}, 'value at "meta.bad" is not a number', "meta.bad"),
            ({"count": True}, 'value at "count" is not a number', "count"),
            ({"a": [1]}, 'value at "a" is not a number', "a"),
            ({"a": None}, 'value at "a" is not a number', "a"),
            ([1], "values must be an object", None),
            ("x", "values must be an object", None),
            (None, "values must be an object", None),
        ]
        for values, message, path in cases:
            with self.subTest(values=values):
                st, _, raw, doc = self.post(dict(base, values=values))
                self.assertEqual(st, 422, raw)
                self.assertEqual(doc, {"errors": {"status": "error", "error": message,
                                                  "path": path}})
        # overflowing literals are "not finite" (ERRATA minor 23); the raw text reaches the parser
        st, _, raw, doc = self.post(b'{"key":"api::v","at":"2026-01-01T00:00:00Z",'
                                    b'"values":{"big":1e400}}')
        self.assertEqual(st, 422, raw)
        self.assertEqual(doc["errors"]["path"], "big")
        self.assertIn("not finite", doc["errors"]["error"])

    def test_duplicate_members_last_wins(self):
        body = (b'{"key":"api::dup","key":"api::dup2","at":"2026-01-05T00:00:00Z",'
                b'"values":{"n":1}}')
        self.assertEqual(self.post(body)[0], 201)
        st, _, _, doc = self.get("key=api::dup2&from=2026-01-05T00:00:00Z"
                                 "&to=2026-01-05T00:00:00Z&granularity=1d")
        self.assertEqual(doc["data"]["values"], [{"n": 1}])

    def test_escaped_member_names(self):
        body = (b'{"\\u006bey":"api::esc","at":"2026-01-06T00:00:00Z",'
                b'"values":{"n":1}}')
        self.assertEqual(self.post(body)[0], 201)

    # --- media types, encodings, sizes ------------------------------------------------------

    def test_content_types(self):
        body = json.dumps({"key": "api::ct", "at": "2026-01-01T00:00:00Z", "values": {"n": 1}})
        for ct, status in (("application/json; charset=utf-8", 201), ("Application/JSON", 201),
                           (None, 201), ("text/plain", 415), ("application/x-www-form-urlencoded", 415),
                           ("application/jsonx", 415)):
            h = {} if ct is None else {"Content-Type": ct}
            st, _, raw, doc = self.srv.request("POST", "/api/v1/metrics", body, h, token=WRITER)
            self.assertEqual(st, status, (ct, raw))
            if status == 415:
                self.assertEqual(doc, {"errors": {"detail": "Unsupported media type"}})

    def test_gzip(self):
        body = json.dumps({"key": "api::gzip", "at": "2026-01-07T00:00:00Z", "values": {"n": 2}})
        st, _, raw, _ = self.post(gz(body), headers={"Content-Encoding": "gzip"})
        self.assertEqual(st, 201, raw)
        # two concatenated gzip members are one body (RFC 1952)
        half = len(body) // 2
        st, _, raw, _ = self.post(gz(body[:half]) + gz(body[half:]),
                                  headers={"Content-Encoding": "GZIP"})
        self.assertEqual(st, 201, raw)
        st, _, _, doc = self.get("key=api::gzip&from=2026-01-07T00:00:00Z"
                                 "&to=2026-01-07T00:00:00Z&granularity=1d")
        self.assertEqual(doc["data"]["values"], [{"n": 4}])
        self.assertDetail(self.post(b"\x1f\x8b not gzip", headers={"Content-Encoding": "gzip"}),
                          400, "Bad request")
        self.assertDetail(self.post(gz(body)[:-6], headers={"Content-Encoding": "gzip"}),
                          400, "Bad request")
        for enc in ("br", "deflate", "gzip, gzip", "compress"):
            self.assertDetail(self.post(body, headers={"Content-Encoding": enc}), 415,
                              "Unsupported media type")

    def test_oversized_body(self):
        big = json.dumps({"key": "api::big", "at": "2026-01-01T00:00:00Z",
                          "values": {"pad%d" % i: i for i in range(8000)}})
        self.assertGreater(len(big), 65536)
        self.assertDetail(self.post(big), 413, "Payload too large")
        # chunked: the limit is counted as the body arrives
        conn = self.srv.connection()
        try:
            conn.putrequest("POST", "/api/v1/metrics")
            conn.putheader("Authorization", "Bearer " + WRITER)
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            data = big.encode()
            for i in range(0, len(data), 8192):
                chunk = data[i:i + 8192]
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.send(b"0\r\n\r\n")
            r = conn.getresponse()
            self.assertEqual(r.status, 413)
            self.assertEqual(json.loads(r.read()), {"errors": {"detail": "Payload too large"}})
        finally:
            conn.close()
        # after gzip decompression: a small compressed body that inflates past the limit
        bomb = b'{"key":"api::bomb","at":"2026-01-01T00:00:00Z","values":{"n":1},"pad":"' + \
            b" " * 200000 + b'"}'
        self.assertLess(len(gz(bomb)), 65536)
        self.assertDetail(self.post(gz(bomb), headers={"Content-Encoding": "gzip"}), 413,
                          "Payload too large")
        # just under the limit is fine
        fits = json.dumps({"key": "api::fits", "at": "2026-01-01T00:00:00Z", "values": {"n": 1},
                           "pad": "x" * 60000})
        self.assertEqual(self.post(fits)[0], 201)

    # --- GET /api/v1/metrics -----------------------------------------------------------------

    def test_get_bad_request(self):
        good = "key=k&from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z&granularity=1h"
        for q in (
            "key=k&to=2026-01-01T01:00:00Z&granularity=1h",
            "key=k&from=2026-01-01T00:00:00Z&granularity=1h",
            "key=k&from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z",
            "key=%20%20&from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z&granularity=1h",
            "key=k&from=2026-01-01T00:00:00&to=2026-01-01T01:00:00Z&granularity=1h",
            "key=k&from=2026-01-01&to=2026-01-01T01:00:00Z&granularity=1h",
            "key=k&from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z&granularity=5x",
            "key=k&from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z&granularity=2h",  # not listed
            "key=k&from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z&granularity=01h",
            good + "&skip_blanks=maybe",
            "key=%ZZ&from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z&granularity=1h",
            "key=a%00b&from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z&granularity=1h",
            # a timeline longer than limits.max_points (50)
            "key=k&from=2026-01-01T00:00:00Z&to=2026-01-02T01:00:00Z&granularity=1m",
        ):
            with self.subTest(q=q):
                self.assertDetail(self.get(q), 400, "Bad request")
        st, _, raw, _ = self.get(good + "&granularity=%201h%20")  # trimmed; last one wins
        self.assertEqual(st, 200, raw)

    # --- POST /api/v1/metrics/query ----------------------------------------------------------

    def query(self, body, token=READER):
        if isinstance(body, dict):
            body = json.dumps(body)
        return self.srv.request("POST", "/api/v1/metrics/query", body, JSON, token=token)

    def test_query(self):
        for at, n in (("2026-01-24T00:05:00Z", 40), ("2026-01-24T01:05:00Z", 2)):
            self.assertEqual(self.post({"key": "event::signup", "at": at,
                                        "values": {"count": n, "duration": 1}})[0], 201)
        q = {"key": "event::signup", "from": "2026-01-24T00:00:00Z", "to": "2026-01-24T01:00:00Z",
             "granularity": "1h", "mode": "aggregate", "value_path": "count", "aggregator": "sum"}
        st, h, raw, doc = self.query(q)
        self.assertEqual(st, 200, raw)
        self.assertEqual(h["content-type"], "application/json; charset=utf-8")
        self.assertEqual(raw, (
            b'{"data":{"status":"ok","aggregator":"sum","metric_key":"event::signup",'
            b'"value_path":"count","slices":1,"value":42,"values":[42],"count":1,'
            b'"timeframe":{"from":"2026-01-24T00:00:00Z","to":"2026-01-24T01:00:00Z",'
            b'"label":"custom","granularity":"1h"},"available_paths":["count","duration"],'
            b'"matched_paths":["count"],"table":{"columns":["at","count"],'
            b'"rows":[["2026-01-24T00:00:00Z",40],["2026-01-24T01:00:00Z",2]]}}}'))
        st, _, raw, doc = self.query(dict(q, aggregator="median"))
        self.assertEqual(st, 422, raw)
        self.assertEqual(doc, {"errors": {"status": "error",
                                          "error": 'Unsupported aggregator "median".',
                                          "allowed": ["max", "mean", "min", "sum"]}})
        # the bytes too: server/api.c draws the body from the outcome, message and extra fields
        self.assertEqual(raw, b'{"errors":{"status":"error","error":"Unsupported aggregator '
                              b'\\"median\\".","allowed":["max","mean","min","sum"]}}')
        st, _, raw, doc = self.query(dict(q, slices=0))
        self.assertEqual((st, raw), (422, b'{"errors":{"status":"error",'
                                          b'"error":"slices must be a positive integer."}}'))
        st, _, raw, doc = self.query(dict(q, value_path="nope"))
        self.assertEqual(st, 422, raw)
        self.assertEqual(doc["errors"]["missing_paths"], ["nope"])
        self.assertDetail(self.query(dict(q, granularity="7m")), 400, "Bad request")
        self.assertDetail(self.query(dict(q, mode="pie")), 400, "Bad request")
        self.assertDetail(self.query("[1]"), 400, "Bad request")
        self.assertDetail(self.query("{nope"), 400, "Bad request")
        st, _, raw, doc = self.query(dict(q, mode="timeline", slices=1))
        self.assertEqual(st, 200, raw)
        self.assertEqual(doc["data"]["formatter"], "timeline")
        # write-only grants cannot query: the writer token has read too; the admin has none
        self.assertDetail(self.query(q, token=ADMIN), 403, "Forbidden")
        self.assertEqual(self.query(q, token=STAR)[0], 200)


class CounterTest(ServerTestCase):
    """SPEC §10.9 counters through /stats."""

    def test_counters(self):
        d = self.fresh_dir("counters")
        cfg = base_config(os.path.join(d, "data"), os.path.join(d, "data", "c.db"))
        with Server(d, cfg) as srv:
            body = json.dumps({"key": "c", "at": "2026-01-01T00:00:00Z", "values": {"n": 1}})
            for _ in range(3):
                self.assertEqual(srv.request("POST", "/api/v1/metrics", body, JSON,
                                             token=WRITER)[0], 201)
            srv.request("POST", "/api/v1/metrics", body, JSON, token="trf_nobody_knows_me_123")
            st, h, raw, doc = srv.request("GET", "/stats", token=READER)
            self.assertEqual(st, 200, raw)
            self.assertEqual(h["content-type"], "application/json; charset=utf-8")
            stats = doc["stats"]
            self.assertEqual(stats["api"]["metrics.track"], 3)
            self.assertEqual(stats["api"]["auth_failed"], 1)
            self.assertGreaterEqual(stats["http"]["requests"], 5)
            self.assertEqual(stats["http"]["responses.2xx"], 3)
            self.assertEqual(stats["http"]["responses.4xx"], 1)
            self.assertGreater(stats["http"]["bytes_in"], 3 * len(body) - 1)
            self.assertGreater(stats["http"]["bytes_out"], 0)
            self.assertEqual(stats["buffer.main"]["operations"], 3)
            self.assertIn("pending_entries", stats["buffer.main"])
            self.assertIn("pool", doc)
            self.assertIn("system", doc)
            self.assertIn("disk", doc)
            self.assertEqual(doc["pool"]["bytes"]["http_request"]["acquired"], 3)


if __name__ == "__main__":
    harness.run_main()
