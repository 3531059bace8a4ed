"""Scale-out (issue #14, docs/scaling.md): several `trifle serve` processes, each with its own
buffer and journal, write to one database behind any load balancer, and the stored totals equal
the sum of the 201s they answered.

For PostgreSQL (TRIFLE_TEST_URI_POSTGRES) and, when it is configured, a Redis Cluster
(TRIFLE_TEST_URI_REDIS_CLUSTER): three servers start on loopback with one source on the same
table/prefix; `wrk` (one process per server, as a load balancer spreading connections would)
POSTs to all three at once; then every server reports how many writes it answered 201 (its Simple
Stats counter `api.metrics.track`, exact, where wrk's own count misses responses still in flight
when its time ends), stops with SIGTERM (final flush), and the stored `count` is read back through
a fourth server. Stored must equal the sum of the three servers' 201s exactly.

A backend whose server is not configured is skipped, or fails under CI=true or
TRIFLE_TEST_STRICT=1; so does a missing wrk.
"""
import os
import shutil
import subprocess
import unittest

import harness
from harness import WRITER, Server, ServerTestCase, base_config

SERVERS = 3
DURATION = os.environ.get("TRIFLE_SCALEOUT_DURATION", "3s")
AT = "2026-04-01T08:30:00Z"
DAY = "from=2026-04-01T00:00:00Z&to=2026-04-01T00:00:00Z&granularity=1d"
STRICT = os.environ.get("CI") == "true" or os.environ.get("TRIFLE_TEST_STRICT") == "1"

POST_LUA = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
wrk.body = '{"key":"%s","at":"%s","values":{"count":1,"node":{"%s":1}}}'
"""


def separator(url):
    return "&" if "?" in url else "?"


class ScaleOutTest(ServerTestCase):
    def need(self, what, ok):
        if ok:
            return
        if STRICT:
            self.fail("%s is not available (CI=true)" % what)
        self.skipTest("%s is not available" % what)

    def run_cluster(self, name, driver):
        self.need("wrk", shutil.which("wrk") is not None)
        key = "scaleout::%s" % name
        servers = []
        try:
            for i in range(SERVERS):
                d = self.fresh_dir("%s-%d" % (name, i))
                cfg = base_config(os.path.join(d, "data"), "unused").replace(
                    '"sqlite:unused"', '"%s"' % driver)
                servers.append(Server(d, cfg).start())
            wrks = []
            for i, s in enumerate(servers):
                lua = os.path.join(s.workdir, "post.lua")
                with open(lua, "w") as f:
                    f.write(POST_LUA % (WRITER, key, AT, "n%d" % i))
                wrks.append(subprocess.Popen(
                    ["wrk", "-t1", "-c8", "-d" + DURATION, "-s", lua,
                     "http://%s/api/v1/metrics" % s.address],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
            for w in wrks:
                out, _ = w.communicate(timeout=120)
                self.assertEqual(w.returncode, 0, out)
            answered = []
            for s in servers:
                st, _, raw, doc = s.request("GET", "/stats", token=WRITER)
                self.assertEqual(st, 200, raw)
                answered.append(doc["stats"]["api"].get("metrics.track", 0))
            for s in servers:
                s.stop()  # SIGTERM: the final flush; exit status 0
            self.assertTrue(all(n > 0 for n in answered), answered)
            # read back through a fresh server on the same source
            d = self.fresh_dir("%s-reader" % name)
            cfg = base_config(os.path.join(d, "data"), "unused").replace(
                '"sqlite:unused"', '"%s"' % driver)
            with Server(d, cfg) as reader:
                st, _, raw, doc = reader.request(
                    "GET", "/api/v1/metrics?key=%s&%s" % (key, DAY), token=WRITER)
                self.assertEqual(st, 200, raw)
                values = doc["data"]["values"][0]
            self.assertEqual(values.get("count"), sum(answered),
                             "stored %s, answered 201 %s" % (values, answered))
            for i, n in enumerate(answered):
                self.assertEqual(values["node"]["n%d" % i], n, values)
            print("%s: %d servers answered %s = %d writes; stored %d" %
                  (name, SERVERS, answered, sum(answered), values["count"]))
        finally:
            for s in servers:
                s.kill()

    def test_postgres(self):
        base = os.environ.get("TRIFLE_TEST_URI_POSTGRES", "")
        self.need("TRIFLE_TEST_URI_POSTGRES", base != "")
        driver = "%s%stable=scaleout_%d" % (base, separator(base), os.getpid())
        self.run_cluster("postgres", driver)

    def test_redis_cluster(self):
        base = os.environ.get("TRIFLE_TEST_URI_REDIS_CLUSTER", "")
        self.need("TRIFLE_TEST_URI_REDIS_CLUSTER", base != "")
        driver = "%s%sprefix=scaleout%d" % (base, separator(base), os.getpid())
        self.run_cluster("redis-cluster", driver)


if __name__ == "__main__":
    harness.run_main()
