"""`trifle serve` with a MySQL/MariaDB source (drivers/mysql): the server sets the tables up at
start-up, writes through the plugin and reads them back over HTTP, and the `trifle` CLI on the
same driver URL sees the same data.

The server is $TRIFLE_TEST_URI_MYSQL (scripts/test-servers.sh); without it the tests are skipped,
or fail under CI=true / TRIFLE_TEST_STRICT=1. Every run uses its own table, dropped at the end.
"""
import json
import os
import subprocess
import unittest

import harness
from harness import READER, WRITER, Server, ServerTestCase

URI = os.environ.get("TRIFLE_TEST_URI_MYSQL", "")
STRICT = os.environ.get("CI") == "true" or os.environ.get("TRIFLE_TEST_STRICT") == "1"
JSON = {"Content-Type": "application/json"}


def config(data_dir, driver):
    return f"""\
http:
  listen: "127.0.0.1:0"
  threads: 2
data_dir: "{data_dir}"
sources:
  - id: main
    name: Main
    driver: "{driver}"
    time_zone: Europe/Bratislava
    granularities: [1h, 1d]
    buffer:
      enabled: false
{harness.RW_TOKENS}"""


class MySQLSourceTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = None
        if not URI:
            return
        cls.table = "http_%d" % os.getpid()
        cls.driver = URI + ("&" if "?" in URI else "?") + "table=" + cls.table + "&joined=separated"
        d = cls.fresh_dir("mysql")
        cls.srv = Server(d, config(os.path.join(d, "data"), cls.driver)).start()

    @classmethod
    def tearDownClass(cls):
        if cls.srv is not None:
            cls.srv.stop()
            # drop what setup made (the CLI has no drop: the mariadb client does it)
            cls.sql("DROP TABLE IF EXISTS `%s`, `%s_ping`, `%s_marks`" % ((cls.table,) * 3))
        super().tearDownClass()

    @classmethod
    def sql(cls, statement):
        """Run one statement with the mariadb client; its output, or None without the client."""
        from urllib.parse import unquote, urlsplit
        u = urlsplit(URI)
        env = dict(os.environ, MYSQL_PWD=unquote(u.password or ""))
        try:
            p = subprocess.run(["mariadb", "--no-defaults", "--protocol=TCP", "-h", u.hostname,
                                "-P", str(u.port or 3306), "-u", unquote(u.username or ""), "-N",
                                "-B", "-e", statement, u.path.lstrip("/")],
                               env=env, capture_output=True, text=True, timeout=30)
        except FileNotFoundError:
            return None
        if p.returncode != 0:
            raise AssertionError("mariadb: %s: %s" % (statement, p.stderr))
        return p.stdout

    def setUp(self):
        if not URI:
            if STRICT:
                self.fail("TRIFLE_TEST_URI_MYSQL is not set")
            self.skipTest("TRIFLE_TEST_URI_MYSQL is not set (scripts/test-servers.sh)")

    def post(self, body):
        return self.srv.request("POST", "/api/v1/metrics", json.dumps(body), JSON, token=WRITER)

    def get(self, query):
        return self.srv.request("GET", "/api/v1/metrics?" + query, token=READER)

    def test_track_assert_read(self):
        # 2026-03-29 is the spring DST day in Bratislava: the 1d bucket starts at 23:00Z before
        at = "2026-03-29T10:15:00Z"
        for values in ({"count": 1, "duration": {"db": 0.25}}, {"count": 2, "duration": {"db": 0.5}}):
            st, _, raw, _ = self.post({"key": "http::mysql", "at": at, "values": values})
            self.assertEqual(st, 201, raw)
        st, _, raw, _ = self.post({"key": "http::mysql", "at": at, "values": {"gauge": 7},
                                   "operation": "assert"})
        self.assertEqual(st, 201, raw)
        st, _, raw, _ = self.post({"key": "http::other", "at": at, "values": {"n": 1},
                                   "untracked": True})
        self.assertEqual(st, 201, raw)

        st, _, raw, doc = self.get("key=http::mysql&from=2026-03-29T10:00:00Z"
                                   "&to=2026-03-29T11:00:00Z&granularity=1h")
        self.assertEqual(st, 200, raw)
        self.assertEqual(doc["data"]["at"], ["2026-03-29T12:00:00+02:00", "2026-03-29T13:00:00+02:00"])
        self.assertEqual(doc["data"]["values"], [{"count": 3, "duration": {"db": 0.75}, "gauge": 7}, {}])
        st, _, raw, doc = self.get("from=2026-03-29T10:00:00Z&to=2026-03-29T10:00:00Z&granularity=1d")
        self.assertEqual(st, 200, raw)
        self.assertEqual(doc["data"]["at"], ["2026-03-29T00:00:00+01:00"])
        self.assertEqual(doc["data"]["values"][0],
                         {"count": 4, "keys": {"http::mysql": 3, "__untracked__": 1}})

        # the same rows through the CLI, and as the server stores them (separated layout)
        out = subprocess.run([harness.TRIFLE, "--driver", self.driver, "--time-zone",
                              "Europe/Bratislava", "--granularities", "1h,1d", "values",
                              "http::mysql", "--from", at, "--to", at, "--granularity", "1d"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["values"], [{"count": 3, "duration": {"db": 0.75},
                                                             "gauge": 7}])
        rows = self.sql("SELECT `key`, granularity, CAST(`at` AS CHAR) FROM `%s` ORDER BY 1, 2"
                        % self.table)
        if rows is not None:
            self.assertIn("http::mysql\t1d\t2026-03-28 23:00:00.000000\n", rows)
            self.assertIn("__system__key__\t1h\t2026-03-29 10:00:00.000000\n", rows)


if __name__ == "__main__":
    harness.run_main()
