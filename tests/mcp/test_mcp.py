#!/usr/bin/env python3
"""`trifle mcp` driven by a real MCP client: the official Python SDK (`mcp` on PyPI).

Run by ctest as
    python3 test_mcp.py --trifle BUILD/trifle --tmp DIR
It starts `trifle mcp --driver sqlite:FILE` through the SDK's stdio client, goes through the
initialize handshake, lists tools, resources and templates, calls every tool, reads every
resource, and compares each answer with what `trifle values`, `trifle query` and `trifle keys`
print for the same inputs when run as subprocesses. Raw JSON-RPC error codes are checked by
writing lines to the server's stdin directly.

Without the SDK the test exits 77 (skipped), or fails under CI=true / TRIFLE_TEST_STRICT=1.
"""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
import harness  # noqa: E402  (tests/http/harness.py: script_args and, below, a real server)

TRIFLE = None
TMP_ROOT = None
STRICT = os.environ.get("CI") == "true" or os.environ.get("TRIFLE_TEST_STRICT") == "1"

try:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
except ImportError as e:  # pragma: no cover - depends on the machine
    if STRICT:
        print("the MCP Python SDK is missing (scripts/install-deps.sh installs it): %s" % e)
        sys.exit(1)
    print("skipped: the MCP Python SDK is not installed (%s)" % e)
    sys.exit(77)

WINDOW = {"from": "2026-01-15T00:00:00Z", "to": "2026-01-15T23:00:00Z", "granularity": "1h"}


def environ():
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIFLE_")}
    return env


def run_session(params, body, errlog_path=None):
    """Starts `trifle mcp` with params through the SDK's stdio client, does the initialize
    handshake and returns (its result, await body(session)); 60 s at most. The server's stderr
    goes to errlog_path, or to ours without one."""
    async def talk(errlog):
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as s:
                init = await s.initialize()
                return init, await body(s)

    async def main():
        if errlog_path is None:
            return await talk(sys.stderr)
        with open(errlog_path, "w") as errlog:
            return await talk(errlog)

    return asyncio.run(asyncio.wait_for(main(), 60))


async def list_transponders(session):
    """The list_transponders tool without arguments."""
    return await session.call_tool("list_transponders", {})


class McpCase(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix=self.id().rsplit(".", 1)[-1] + "-", dir=TMP_ROOT)
        self.env = environ()
        self.env["XDG_CONFIG_HOME"] = self.dir
        self.url = "sqlite:" + os.path.join(self.dir, "stats.db")
        self.cli("setup")
        for key, values, at in (
                ("event::logs", {"count": 1, "duration": {"db": 0.25}}, "2026-01-15T10:20:00Z"),
                ("event::logs", {"count": 2, "duration": {"db": 0.5}}, "2026-01-15T14:05:00Z"),
                ("event::signup", {"count": 1, "country": {"US": 2, "UK": 1}},
                 "2026-01-15T11:00:00Z"),
                ("odd key/\u00e9", {"n": 3}, "2026-01-15T12:00:00Z")):
            self.cli("track", key, "--values", json.dumps(values), "--at", at)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def cli(self, *args):
        """Run the CLI against the test database; return its parsed stdout."""
        proc = subprocess.run([TRIFLE, "--driver", self.url] + list(args), capture_output=True,
                              text=True, env=self.env, cwd=self.dir, timeout=60)
        self.assertEqual(proc.returncode, 0, proc)
        return json.loads(proc.stdout)

    def session(self, body):
        """Run `body(session)` against a fresh `trifle mcp` after the handshake."""
        params = StdioServerParameters(command=TRIFLE, args=["mcp", "--driver", self.url],
                                       env=self.env, cwd=self.dir)
        result = run_session(params, body, os.path.join(self.dir, "stderr.log"))
        self.assertQuietStderr()
        return result

    def assertQuietStderr(self):
        """The server wrote nothing to stderr (no sanitizer or valgrind report either)."""
        with open(os.path.join(self.dir, "stderr.log")) as f:
            self.assertEqual(f.read(), "")

    @staticmethod
    def text(result):
        """The one text item of a tool result, parsed."""
        assert len(result.content) == 1, result
        return json.loads(result.content[0].text)


class TestMcp(McpCase):
    def test_handshake_and_lists(self):
        async def body(s):
            return (await s.list_tools(), await s.list_resources(),
                    await s.list_resource_templates())

        init, (tools, resources, templates) = self.session(body)
        self.assertEqual(init.server_info.name, "trifle")
        self.assertEqual(init.server_info.version, self.cli("version")["version"])
        self.assertEqual(init.protocol_version, "2025-11-25")
        self.assertIsNotNone(init.capabilities.tools)
        self.assertIsNotNone(init.capabilities.resources)
        names = [t.name for t in tools.tools]
        self.assertEqual(names, ["list_metrics", "fetch_series", "aggregate_series",
                                 "format_timeline", "format_category", "write_metric"])
        by_name = {t.name: t for t in tools.tools}
        for t in tools.tools:
            self.assertEqual(t.input_schema["type"], "object")
            self.assertFalse(t.input_schema["additionalProperties"])
        self.assertEqual(by_name["aggregate_series"].input_schema["required"],
                         ["key", "value_path", "aggregator"])
        self.assertEqual(by_name["aggregate_series"].input_schema["properties"]["aggregator"]
                         ["enum"], ["sum", "mean", "min", "max"])
        self.assertEqual(by_name["write_metric"].input_schema["properties"]["values"]["type"],
                         "object")
        self.assertEqual(sorted(str(r.uri) for r in resources.resources),
                         ["trifle://metrics", "trifle://source"])
        self.assertEqual([t.uri_template for t in templates.resource_templates],
                         ["trifle://metrics/{key}"])

    def test_every_tool_matches_the_cli(self):
        key = "event::logs"

        async def body(s):
            out = {}
            out["list"] = await s.call_tool("list_metrics", dict(WINDOW, granularity="1d"))
            out["fetch"] = await s.call_tool("fetch_series", dict(WINDOW, key=key))
            out["fetch_skip"] = await s.call_tool("fetch_series",
                                                  dict(WINDOW, key=key, skip_blanks=True))
            out["aggregate"] = await s.call_tool(
                "aggregate_series", dict(WINDOW, key=key, value_path="duration.db",
                                         aggregator="max"))
            out["aggregate_sliced"] = await s.call_tool(
                "aggregate_series", dict(WINDOW, key=key, value_path="count", aggregator="sum",
                                         slices=4))
            out["timeline"] = await s.call_tool("format_timeline",
                                                dict(WINDOW, key=key, value_path="count"))
            out["category"] = await s.call_tool(
                "format_category", dict(WINDOW, key="event::signup", value_path="country"))
            out["write"] = await s.call_tool("write_metric", {
                "key": "written", "values": {"count": 2, "nested": {"x": 0.125}},
                "at": "2026-01-15T09:30:00Z"})
            out["assert"] = await s.call_tool("write_metric", {
                "key": "written", "values": {"count": 7}, "at": "2026-01-15T09:45:00Z",
                "mode": "assert"})
            return out

        w = ("--from", WINDOW["from"], "--to", WINDOW["to"])
        keys_before = self.cli("keys", *w, "--granularity", "1d")  # before write_metric
        _, out = self.session(body)
        for name, result in out.items():
            self.assertFalse(result.is_error, (name, result))
        self.assertEqual(self.text(out["list"]), keys_before)
        self.assertEqual(self.text(out["list"])["keys"],
                         [{"key": "event::logs", "count": 2}, {"key": "event::signup", "count": 1},
                          {"key": "odd key/\u00e9", "count": 1}])
        self.assertEqual(self.text(out["fetch"]),
                         self.cli("values", key, *w, "--granularity", "1h"))
        self.assertEqual(len(self.text(out["fetch"])["at"]), 24)
        self.assertEqual(self.text(out["fetch_skip"]),
                         self.cli("values", key, *w, "--granularity", "1h", "--skip-blanks"))
        q = ("query", key) + w + ("--granularity", "1h")
        self.assertEqual(self.text(out["aggregate"]),
                         self.cli(*q, "--mode", "aggregate", "--value-path", "duration.db",
                                  "--aggregator", "max"))
        self.assertEqual(self.text(out["aggregate"])["value"], 0.5)
        self.assertEqual(self.text(out["aggregate_sliced"]),
                         self.cli(*q, "--mode", "aggregate", "--value-path", "count",
                                  "--aggregator", "sum", "--slices", "4"))
        self.assertEqual(self.text(out["timeline"]),
                         self.cli(*q, "--mode", "timeline", "--value-path", "count"))
        self.assertEqual(self.text(out["category"]),
                         self.cli("query", "event::signup", *w, "--granularity", "1h", "--mode",
                                  "category", "--value-path", "country"))
        self.assertEqual(self.text(out["category"])["result"],
                         {"country.UK": 1, "country.US": 2})
        # structuredContent carries the same object as the text
        self.assertEqual(out["timeline"].structured_content, self.text(out["timeline"]))
        self.assertEqual(self.text(out["write"]), {"status": "ok"})
        self.assertEqual(self.text(out["assert"]), {"status": "ok"})
        self.assertEqual(self.cli("values", "written", "--from", "2026-01-15T09:00:00Z", "--to",
                                  "2026-01-15T09:00:00Z", "--granularity", "1h")["values"],
                         [{"count": 7, "nested": {"x": 0.125}}])

    def test_resources(self):
        async def body(s):
            return (await s.read_resource("trifle://source"),
                    await s.read_resource("trifle://metrics"),
                    await s.read_resource("trifle://metrics/odd%20key%2F%C3%A9"))

        _, (source, metrics, metric) = self.session(body)
        doc = json.loads(source.contents[0].text)
        self.assertEqual(doc["driver"], self.url)
        self.assertEqual(doc["time_zone"], "UTC")
        self.assertEqual(source.contents[0].mime_type, "application/json")
        # the last 24 hours: the 2026 data is older, so no keys, and 24 or 25 hourly buckets
        self.assertEqual(json.loads(metrics.contents[0].text), {"keys": []})
        series = json.loads(metric.contents[0].text)
        self.assertIn(len(series["at"]), (24, 25))
        self.assertEqual(series["values"], [{}] * len(series["at"]))

    def test_errors_are_tool_errors(self):
        async def body(s):
            out = {}
            out["bad_time"] = await s.call_tool("fetch_series", {"key": "k", "from": "soon"})
            out["missing"] = await s.call_tool("aggregate_series", {"key": "k"})
            out["unknown_arg"] = await s.call_tool("fetch_series", {"key": "k", "colour": 1})
            out["bad_type"] = await s.call_tool("fetch_series", {"key": 5})
            out["bad_slices"] = await s.call_tool("format_timeline", {
                "key": "k", "value_path": "count", "slices": 0})
            out["unknown_path"] = await s.call_tool("aggregate_series", dict(
                WINDOW, key="event::logs", value_path="nope", aggregator="sum"))
            out["bad_value"] = await s.call_tool("write_metric", {
                "key": "k", "values": {"count": "one"}})
            out["reserved"] = await s.call_tool("write_metric", {
                "key": "__system__key__", "values": {"count": 1}})
            # the server is still there after all of that
            out["after"] = await s.call_tool("list_metrics", dict(WINDOW, granularity="1d"))
            return out

        _, out = self.session(body)

        def error(name):
            self.assertTrue(out[name].is_error, (name, out[name]))
            return out[name].content[0].text

        self.assertEqual(json.loads(error("bad_time")),
                         {"error": {"code": "EINVAL", "message": "invalid time: soon"}})
        self.assertEqual(error("missing"), 'missing argument "value_path" for aggregate_series')
        self.assertEqual(error("unknown_arg"), 'unknown argument "colour" for fetch_series')
        self.assertEqual(error("bad_type"), 'argument "key" must be a string')
        self.assertEqual(error("bad_slices"), 'argument "slices" must be a positive integer')
        doc = json.loads(error("unknown_path"))
        self.assertEqual(doc["error"]["message"], "Unknown path(s): nope")
        self.assertEqual(doc["error"]["available_paths"], ["count", "duration.db"])
        doc = json.loads(error("bad_value"))
        self.assertEqual(doc["error"]["code"], "EINVAL")
        self.assertIn('"count"', doc["error"]["message"])
        self.assertEqual(json.loads(error("reserved"))["error"]["code"], "EINVAL")
        self.assertFalse(out["after"].is_error)


class TestRemote(McpCase):
    """list_transponders / delete_transponder and trifle://transponders against a real
    `trifle serve` (tests/http/harness.py starts it), reached with an http:// driver URL and the
    token in TRIFLE_TOKEN."""

    def setUp(self):
        super().setUp()
        self.h = harness
        os.makedirs(os.path.join(self.dir, "srv", "data"))
        cfg = harness.base_config(os.path.join(self.dir, "srv", "data"),
                                  os.path.join(self.dir, "srv", "data", "stats.db"))
        self.srv = harness.Server(os.path.join(self.dir, "srv"), cfg).start()
        self.ids = []
        for key in ("event::logs", "^api::"):
            st, _, raw, doc = self.srv.request("POST", "/api/v1/transponders", {
                "name": key, "key": key, "paths": ["count"], "expression": "a * 2",
                "response": "double"}, token=harness.WRITER)
            self.assertEqual(st, 201, raw)
            self.ids.append(doc["data"]["id"])

    def tearDown(self):
        if self.srv.proc is not None and self.srv.proc.poll() is None:
            self.srv.stop()
        super().tearDown()

    def remote(self, body, token=None):
        url = "http://%s/?source=main" % self.srv.address
        params = StdioServerParameters(command=TRIFLE, args=["mcp", "--driver", url],
                                       env=dict(self.env, TRIFLE_TOKEN=token or self.h.READER),
                                       cwd=self.dir)
        _, result = run_session(params, body, os.path.join(self.dir, "stderr.log"))
        self.assertQuietStderr()
        return result

    def test_transponder_tools(self):
        async def body(s):
            tools = [t.name for t in (await s.list_tools()).tools]
            resources = sorted(str(r.uri) for r in (await s.list_resources()).resources)
            listed = await s.call_tool("list_transponders", {})
            only = await s.call_tool("list_transponders", {"key": "^api::"})
            deleted = await s.call_tool("delete_transponder", {"id": self.ids[0]})
            again = await s.call_tool("delete_transponder", {"id": self.ids[0]})
            res = await s.read_resource("trifle://transponders")
            return tools, resources, listed, only, deleted, again, res

        tools, resources, listed, only, deleted, again, res = self.remote(body)
        self.assertEqual(tools[-2:], ["list_transponders", "delete_transponder"])
        self.assertIn("trifle://transponders", resources)
        self.assertFalse(listed.is_error, listed)
        _, _, _, direct = self.srv.request("GET", "/api/v1/transponders", token=self.h.READER)
        self.assertEqual(len(direct["data"]), 1)  # after the delete
        self.assertEqual([t["id"] for t in self.text(listed)["data"]], self.ids)
        self.assertEqual([t["key"] for t in self.text(only)["data"]], ["^api::"])
        self.assertFalse(deleted.is_error, deleted)
        self.assertEqual(self.text(deleted)["data"]["id"], self.ids[0])
        self.assertTrue(again.is_error)
        self.assertEqual(again.content[0].text,
                         'HTTP 404: {"errors":{"detail":"Page not found"}}')
        self.assertEqual(json.loads(res.contents[0].text), direct)

    def test_config_file_source_and_token(self):
        # a config file's source gives the URL, its token reaches the server as TRIFLE_TOKEN
        cfg = os.path.join(self.dir, "sources.yaml")
        with open(cfg, "w") as f:
            f.write("sources:\n  prod:\n    driver: http://%s/?source=main\n    token: %s\n"
                    % (self.srv.address, self.h.READER))
        params = StdioServerParameters(command=TRIFLE,
                                       args=["mcp", "--config", cfg, "--source", "prod"],
                                       env=self.env, cwd=self.dir)
        _, r = run_session(params, list_transponders)
        self.assertFalse(r.is_error, r)
        self.assertEqual([t["id"] for t in self.text(r)["data"]], self.ids)

    def test_token_in_the_url_is_never_shown(self):
        url = "http://%s/?source=main&token=%s" % (self.srv.address, self.h.READER)
        params = StdioServerParameters(command=TRIFLE, args=["mcp", "--driver", url],
                                       env=self.env, cwd=self.dir)

        async def body(s):
            return await s.read_resource("trifle://source"), await list_transponders(s)

        _, (source, listed) = run_session(params, body)
        self.assertFalse(listed.is_error, listed)  # the token in the URL was used
        self.assertEqual(json.loads(source.contents[0].text)["driver"],
                         "http://%s/?source=main&token=***" % self.srv.address)
        self.srv.stop()
        _, r = run_session(params, list_transponders)
        self.assertTrue(r.is_error)
        self.assertNotIn(self.h.READER, r.content[0].text)
        self.assertIn("GET http://%s/api/v1/transponders: " % self.srv.address,
                      r.content[0].text)

    def test_bad_token_is_a_tool_error(self):
        r = self.remote(list_transponders, token=self.h.NOBODY)
        self.assertTrue(r.is_error)
        self.assertEqual(r.content[0].text, 'HTTP 401: {"errors":{"detail":"Bad token"}}')

    def test_refused_connection_is_a_tool_error(self):
        self.srv.stop()
        r = self.remote(list_transponders)
        self.assertTrue(r.is_error)
        doc = json.loads(r.content[0].text)
        self.assertEqual(doc["error"]["code"], "ECONN")
        self.assertIn("/api/v1/transponders", doc["error"]["message"])


class TestJsonRpc(McpCase):
    """The wire: standard JSON-RPC error codes, notifications unanswered, version negotiation."""

    def exchange(self, lines):
        proc = subprocess.run([TRIFLE, "mcp", "--driver", self.url], input="".join(
            l + "\n" for l in lines), capture_output=True, text=True, env=self.env, cwd=self.dir,
            timeout=60)
        self.assertEqual((proc.returncode, proc.stderr), (0, ""), proc)
        return [json.loads(l) for l in proc.stdout.splitlines()]

    def test_error_codes(self):
        replies = self.exchange([
            '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":'
            '"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}',
            '{"jsonrpc":"2.0","method":"notifications/initialized"}',
            '{not json',
            '[{"jsonrpc":"2.0","id":2,"method":"ping"}]',
            '{"jsonrpc":"1.0","id":3,"method":"ping"}',
            '{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}',
            '{"jsonrpc":"2.0","id":4,"method":"no/such"}',
            '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":[1]}',
            '{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"nope"}}',
            '{"jsonrpc":"2.0","id":"s7","method":"resources/read","params":{"uri":"x://y"}}',
            '{"jsonrpc":"2.0","id":8,"method":"initialize","params":{}}',
            '{"jsonrpc":"2.0","method":"no/such/notification"}',
            '',
            '{"jsonrpc":"2.0","id":9,"method":"ping"}',
            '{"jsonrpc":"2.0","id":10,"method":"initialize","params":{"protocolVersion":'
            '"1999-01-01"}}',
        ])
        self.assertEqual(replies[0]["result"]["protocolVersion"], "2024-11-05")
        codes = [(r.get("id"), r["error"]["code"]) for r in replies[1:-2]]
        self.assertEqual(codes, [(None, -32700), (None, -32600), (3, -32600), (None, -32600),
                                 (4, -32601), (5, -32602), (6, -32602), ("s7", -32002),
                                 (8, -32602)])
        self.assertEqual(replies[-2], {"jsonrpc": "2.0", "id": 9, "result": {}})
        # an unknown version gets our newest one
        self.assertEqual(replies[-1]["result"]["protocolVersion"], "2025-11-25")


def main():
    global TRIFLE, TMP_ROOT
    args, argv = harness.script_args(__doc__.splitlines()[0])
    TRIFLE, TMP_ROOT = args.trifle, args.tmp
    harness.TRIFLE = TRIFLE
    unittest.main(argv=argv, verbosity=2)


if __name__ == "__main__":
    main()
