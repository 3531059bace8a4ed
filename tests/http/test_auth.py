"""Authentication and authorisation (SPEC §9.2): every row of the table, in its order."""
import json

import harness
from harness import (ADMIN, EXPIRED, NOBODY, READER, STAR, WRITER, Server, ServerTestCase,
                     digest)

ALL_WRITE = "trf_test_all_write_token_07"
WRITE_ONLY = "trf_test_write_only_token_8"

POST_BODY = json.dumps({"key": "auth::k", "at": "2026-01-01T00:00:00Z", "values": {"n": 1}})


def config(d):
    return f"""\
http: {{listen: "127.0.0.1:0", threads: 2}}
data_dir: "{d}/data"
sources:
  - id: main
    driver: "sqlite:{d}/data/main.db"
  - id: archive
    name: Archive
    driver: "sqlite:{d}/data/archive.db"
    read_only: true
    setup: true
    granularities: [1d]
tokens:
  - {{name: writer, sha256: "{digest(WRITER)}", grants: [{{source: main, read: true, write: true}}]}}
  - {{name: reader, sha256: "{digest(READER)}", grants: [{{source: main, read: true}}]}}
  - {{name: star, sha256: "{digest(STAR)}", grants: [{{source: "*", read: true}}]}}
  - {{name: admin, sha256: "{digest(ADMIN)}", admin: true}}
  - {{name: expired, sha256: "{digest(EXPIRED)}", expires_at: "2001-01-01T00:00:00+02:00",
     grants: [{{source: "*", read: true, write: true}}]}}
  - name: all-write
    sha256: "{digest(ALL_WRITE).upper()}"
    grants: [{{source: "*", read: true, write: true}}]
  - {{name: write-only, sha256: "{digest(WRITE_ONLY)}", grants: [{{source: main, write: true}}]}}
"""


class AuthTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d = cls.fresh_dir("auth")
        cls.srv = Server(d, config(d)).start()

    def req(self, method, path, auth=None, source=None, body=None):
        h = {}
        if auth is not None:
            h["Authorization"] = auth
        if source is not None:
            h["X-Trifle-Source-Id"] = source
        if body is not None:
            h["Content-Type"] = "application/json"
        return self.srv.request(method, path, body, h)

    def test_step1_missing_or_malformed_authorization(self):
        # step 1 comes before step 2: no header and two sources still gives 401
        for auth in (None, "", "Basic " + WRITER, "Bearer", "Bearer ", "Bearer short",
                     "Bearer " + "x" * 513, "Bearer tok\x01en_0123456789abcdef", WRITER,
                     "Token " + WRITER):
            with self.subTest(auth=auth):
                self.assertDetail(self.req("GET", "/api/v1/source", auth), 401, "Bad token")
                self.assertDetail(self.req("GET", "/api/v1/source", auth, "main"), 401,
                                  "Bad token")

    def test_step2_missing_source_header(self):
        # before the token is looked up: an unknown token gets 400 too
        for token in (WRITER, NOBODY, EXPIRED):
            self.assertDetail(self.req("GET", "/api/v1/source", "Bearer " + token), 400,
                              "Missing X-Trifle-Source-Id header")

    def test_step3_unknown_or_expired_token(self):
        for token in (NOBODY, EXPIRED, WRITER + "x", WRITER.upper()):
            self.assertDetail(self.req("GET", "/api/v1/source", "Bearer " + token, "main"), 401,
                              "Bad token")
        # step 3 before step 4: a bad header with a bad token is 401
        self.assertDetail(self.req("GET", "/api/v1/source", "Bearer " + NOBODY, "bad id!"), 401,
                          "Bad token")

    def test_step4_invalid_source_header(self):
        for hdr in ("bad id!", "", "-main", ".x", "m" * 65, "main/x", "ma:in"):
            with self.subTest(hdr=hdr):
                self.assertDetail(self.req("GET", "/api/v1/source", "Bearer " + WRITER, hdr), 400,
                                  "Invalid X-Trifle-Source-Id header")

    def test_step5_unknown_source(self):
        for hdr in ("nosuch", "Main", "m" * 64):
            self.assertDetail(self.req("GET", "/api/v1/source", "Bearer " + WRITER, hdr), 401,
                              "Bad token")

    def test_step6_permissions(self):
        # a read token writing, no grant at all, a write to a read_only source
        self.assertDetail(self.req("POST", "/api/v1/metrics", "Bearer " + READER, "main",
                                   POST_BODY), 403, "Forbidden")
        self.assertDetail(self.req("GET", "/api/v1/source", "Bearer " + WRITER, "archive"), 403,
                          "Forbidden")
        self.assertDetail(self.req("GET", "/api/v1/source", "Bearer " + ADMIN, "main"), 403,
                          "Forbidden")
        self.assertDetail(self.req("POST", "/api/v1/metrics", "Bearer " + ALL_WRITE, "archive",
                                   POST_BODY), 403, "Forbidden")
        self.assertDetail(self.req("POST", "/api/v1/metrics", "Bearer " + STAR, "main",
                                   POST_BODY), 403, "Forbidden")
        # write-only: may write and see /source, may not read metrics
        self.assertEqual(self.req("POST", "/api/v1/metrics", "Bearer " + WRITE_ONLY, "main",
                                  POST_BODY)[0], 201)
        self.assertEqual(self.req("GET", "/api/v1/source", "Bearer " + WRITE_ONLY, "main")[0], 200)
        self.assertDetail(self.req("GET", "/api/v1/metrics?from=2026-01-01T00:00:00Z&to="
                                   "2026-01-01T00:00:00Z&granularity=1h",
                                   "Bearer " + WRITE_ONLY, "main"), 403, "Forbidden")

    def test_allowed(self):
        # scheme case-insensitive, whitespace around the token and the header trimmed
        for auth in ("Bearer " + WRITER, "bearer " + WRITER, "BEARER   " + WRITER + "  "):
            st, _, raw, doc = self.req("GET", "/api/v1/source", auth, "  main ")
            self.assertEqual(st, 200, raw)
            self.assertEqual(doc["data"]["id"], "main")
        st, _, raw, doc = self.req("GET", "/api/v1/source", "Bearer " + STAR, "archive")
        self.assertEqual(st, 200, raw)
        self.assertEqual(doc["data"]["type"], "database")
        self.assertEqual(doc["data"]["display_name"], "Archive")
        self.assertEqual(doc["data"]["available_granularities"], ["1d"])
        self.assertEqual(doc["data"]["default_granularity"], "1d")
        # the configured digest was upper case: compared case-insensitively
        self.assertEqual(self.req("POST", "/api/v1/metrics", "Bearer " + ALL_WRITE, "main",
                                  POST_BODY)[0], 201)
        st, _, raw, _ = self.req("GET", "/api/v1/metrics?key=auth::k&from=2026-01-01T00:00:00Z"
                                 "&to=2026-01-01T00:00:00Z&granularity=1d", "Bearer " + STAR,
                                 "archive")
        self.assertEqual(st, 200, raw)

    def test_health_needs_nothing(self):
        self.assertEqual(self.req("GET", "/health")[0], 200)
        self.assertEqual(self.req("GET", "/api/v1/health", "Bearer nonsense")[0], 200)

    def test_early_refusal_does_not_read_the_body(self):
        # a refused upload is answered at once and the connection closed
        st, h, raw, doc = self.req("POST", "/api/v1/metrics", None, "main", "x" * 100000)
        self.assertEqual(st, 401, raw)
        self.assertEqual(h.get("connection"), "close")

    def test_auth_failures_counted(self):
        before = self.srv.request("GET", "/stats", token=ADMIN)[3]["stats"]["api"].get(
            "auth_failed", 0)
        self.req("GET", "/api/v1/source")
        self.req("GET", "/api/v1/source", "Bearer " + READER, "archive")
        after = self.srv.request("GET", "/stats", token=ADMIN)[3]["stats"]["api"]["auth_failed"]
        self.assertEqual(after - before, 2)


if __name__ == "__main__":
    harness.run_main()
