"""The configuration file (SPEC §12, ERRATA I8, I12, minor 21): every error names
<file>:<line>:<column>: <key path>: <message> and exits 4; `${NAME}` substitution and relative
paths."""
import json
import os
import re
import socket
import subprocess

import harness
from harness import READER, WRITER, Server, ServerTestCase, digest

TOKENS = f"""\
tokens:
  - name: writer
    sha256: "{digest(WRITER)}"
    grants: [{{source: main, read: true, write: true}}]
"""


def good(data="data", extra_top="", source_extra="", tokens=TOKENS):
    return f"""\
http:
  listen: "127.0.0.1:0"
data_dir: {data}
{extra_top}
sources:
  - id: main
    driver: "sqlite:data/c.db"
{source_extra}
{tokens}"""


class ConfigErrorTest(ServerTestCase):
    def run_config(self, text, env=None, args=()):
        d = self.fresh_dir("cfg")
        path = os.path.join(d, "trifle.yaml")
        with open(path, "w") as f:
            f.write(text)
        e = dict(os.environ)
        e.pop("TRIFLE_CONFIG", None)
        e.update(env or {})
        p = subprocess.run([harness.TRIFLE, "serve", "--config", path, *args], cwd=d, env=e,
                           capture_output=True, timeout=30)
        lines = p.stderr.decode().strip().splitlines()
        self.assertTrue(lines, "no error output")
        err = json.loads(lines[-1])["error"]
        return p.returncode, err, path

    def expect(self, text, where, message, env=None, code=4, args=()):
        rc, err, path = self.run_config(text, env, args)
        self.assertEqual(rc, code, err)
        if where is None:
            self.assertRegex(err["message"], message)
        else:
            self.assertEqual(err["message"], "%s:%s: %s" % (path, where, message))
        if code == 4:
            self.assertEqual(err["code"], "ECONFIG")

    def expect_each(self, cases, make=lambda text: text):
        """expect() for every (text, where, message) of cases, each as a subtest; the
        configuration is make(text) (a good() with text in its place, say)."""
        for text, where, message in cases:
            with self.subTest(where=where):
                self.expect(make(text), where, message)

    def test_unknown_keys(self):
        self.expect_each([
            (good() + "colour: blue\n", "13:1: colour", "unknown configuration key colour"),
            (good(source_extra="    colour: blue"), "8:5: sources[0].colour",
             "unknown configuration key sources[0].colour"),
            (good(source_extra="    buffer: {size: 10, sizes: 1}"), "8:24: sources[0].buffer.sizes",
             "unknown configuration key sources[0].buffer.sizes"),
            (good(extra_top="http2: {}"), "4:1: http2", "unknown configuration key http2"),
            (good(extra_top="stats: {persist: true, colour: 1}"), "4:24: stats.colour",
             "unknown configuration key stats.colour"),
        ])

    def test_library_values(self):
        self.expect_each([
            ("time_zone: Mars/Base", "8:16: sources[0].time_zone", "unknown time zone: Mars/Base"),
            ("granularities: [1h, 5x, 1d]", "8:25: sources[0]",
             'invalid granularity "5x" in granularities[1]'),
            ("granularities: []", "8:20: sources[0]", "granularities must not be empty"),
            ("week_start: someday", "8:17: sources[0].week_start", "invalid week start: someday"),
            ("joined: diagonal", "8:13: sources[0].joined", "invalid identifier mode: diagonal"),
            ("buffer:\n      size: 0", "9:13: sources[0].buffer.size",
             "invalid buffer option size: 0"),
            ("max_points: 0", "8:17: sources[0].max_points", "invalid option max_points: 0"),
            ("read_only: maybe", "8:16: sources[0].read_only", "invalid option read_only: maybe"),
            ("default_granularity: 1m\n    granularities: [1h]", "8:26: sources[0]",
             "default_granularity 1m is not one of granularities (1h)"),
        ], make=lambda text: good(source_extra="    " + text))

    def test_server_values(self):
        listen = '  listen: "127.0.0.1:0"'
        self.expect_each([
            (good(extra_top="limits: {max_body_bytes: 0}"), "4:26: limits.max_body_bytes",
             "invalid option max_body_bytes: 0"),
            (good().replace(listen, listen + "\n  threads: 0"), "3:12: http.threads",
             "invalid option threads: 0"),
            (good().replace('"127.0.0.1:0"', "localhost"), "2:11: http.listen",
             'invalid listen address "localhost": expected host:port'),
            (good(extra_top="stats: {buffer_size: 0}"), "4:22: stats.buffer_size",
             "invalid stats option buffer_size: 0"),
            (good(extra_top="stats: {prometheus_labels: {__x: y}}"),
             "4:29: stats.prometheus_labels.__x", "invalid stats option prometheus_labels: __x"),
            (good(extra_top="stats: {enabled: perhaps}"), "4:18: stats.enabled",
             "invalid stats option enabled: perhaps"),
            # the server's own stats keys (server/config.c, not the module's parser): same wording
            (good(extra_top="stats: {public: perhaps}"), "4:17: stats.public",
             "invalid stats option public: perhaps"),
            (good(extra_top="stats: {include_storage_stats_in_api: 2}"),
             "4:39: stats.include_storage_stats_in_api",
             "invalid stats option include_storage_stats_in_api: 2"),
            # null means "none" only where none makes sense
            (good().replace(listen, listen + "\n  threads: ~"), "3:12: http.threads",
             "a value is required (remove the key for its default)"),
        ])

    def test_structure(self):
        cfg_dir = os.path.join(self.tmp, "cfg")
        self.expect_each([
            (good().replace("sources:\n  - id: main\n    driver: \"sqlite:data/c.db\"\n",
                            "sources: []\n"), "5:10: sources", "sources must not be empty"),
            (good().replace('    driver: "sqlite:data/c.db"\n', "    name: x\n"),
             "6:5: sources[0]", "driver required"),
            (good().replace("  - id: main\n", "  - id: \"bad id\"\n"), "6:9: sources[0].id",
             'invalid source id "bad id" (expected ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$)'),
            (good(source_extra='  - id: main\n    driver: "sqlite:data/d.db"'), "8:5: sources[1]",
             "duplicate source id main (also sources[0])"),
            (good().replace("data_dir: data\n", ""), "1:1: data_dir", "data_dir required"),
            (good(data="missing"), "3:11: data_dir",
             "%s/missing: No such file or directory" % cfg_dir),
            (good(data="trifle.yaml"), "3:11: data_dir",
             "%s/trifle.yaml: not a directory" % cfg_dir),
            (good().replace("http:\n", "http:\n  listen: x\n"), "3:3: http.listen",
             "duplicate key (first at line 2)"),
            ("sources: [\n", "2:1: sources[0]",
             "invalid YAML: did not find expected node content while parsing a flow node"),
            ("- a\n- b\n", "1:1: (document)", "expected a mapping, got a sequence"),
            (good(source_extra="    granularities: {a: 1}"), "8:20: sources[0].granularities",
             "expected a sequence, got a mapping"),
        ])

    def test_tokens(self):
        twice = TOKENS + "  - {name: again, sha256: \"%s\"}\n" % digest(WRITER).upper()
        self.expect_each([
            (good(tokens=TOKENS.replace("source: main", "source: nosuch")),
             "12:23: tokens[0].grants[0].source",
             'unknown source nosuch (grants name a configured source id or "*")'),
            (good(tokens=TOKENS.replace(digest(WRITER), digest(WRITER)[:63])),
             "11:13: tokens[0].sha256",
             "sha256 must be 64 hex digits (printf '%s' \"$TOKEN\" | sha256sum)"),
            (good(tokens=twice), "13:27: tokens[1].sha256", "duplicate sha256 (also tokens[0])"),
            (good(tokens=TOKENS + "    expires_at: tomorrow\n"), "13:17: tokens[0].expires_at",
             "invalid time: tomorrow (expected RFC 3339 with an offset)"),
            (good(tokens="tokens:\n  - {name: x}\n"), "10:5: tokens[0]", "sha256 required"),
        ])

    def test_environment(self):
        text = good().replace('"sqlite:data/c.db"', '"sqlite:${TRIFLE_TEST_UNSET_VARIABLE}/c.db"')
        self.expect(text, "7:13: sources[0].driver",
                    "environment variable TRIFLE_TEST_UNSET_VARIABLE is not set")
        text = good().replace('"sqlite:data/c.db"', '"sqlite:${BROKEN"')
        self.expect(text, "7:13: sources[0].driver",
                    'unterminated ${ in "sqlite:${BROKEN" (write $${ for a literal ${)')

    def test_driver_open_errors(self):
        text = good().replace('"sqlite:data/c.db"', '"sqlite:data/c.db?colour=red"')
        self.expect(text, "7:13: sources[0].driver",
                    "invalid driver URL: unknown parameter colour")

    def test_unbindable_listen(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        try:
            text = good().replace('"127.0.0.1:0"', '"127.0.0.1:%d"' % port)
            self.expect(text, "2:11: http.listen",
                        "cannot listen on 127.0.0.1:%d: Address already in use" % port)
        finally:
            s.close()

    def test_journal_keys(self):
        self.expect(good(source_extra="    buffer: {journal_sync: sometimes}"),
                    "8:28: sources[0].buffer.journal_sync",
                    "invalid buffer option journal_sync: sometimes (expected always, none or "
                    "interval:<ms> with 1..60000 ms)")
        self.expect(good(source_extra="    buffer: {journal_sync: \"interval:0\"}"),
                    "8:28: sources[0].buffer.journal_sync",
                    "invalid buffer option journal_sync: interval:0 (expected always, none or "
                    "interval:<ms> with 1..60000 ms)")
        self.expect(good(source_extra="    buffer: {journal_segment_bytes: 100}"),
                    "8:37: sources[0].buffer.journal_segment_bytes",
                    "invalid buffer option journal_segment_bytes: 100")
        self.expect(good(source_extra="    buffer: {journal: \"\"}"),
                    "8:23: sources[0].buffer.journal",
                    "invalid option journal: empty (true, false or a directory)")
        two = good(source_extra="    buffer: {journal: wal}\n  - id: other\n"
                                "    driver: \"sqlite:data/o.db\"\n    buffer: {journal: ./wal}")
        self.expect(two, "9:5: sources[1]", "journal %s/wal is also the journal of sources[0]"
                    % os.path.join(self.tmp, "cfg"))
        # without a buffer, a POST is stored before its 201: a journal there is a mistake
        self.expect(good(source_extra="    buffer: {enabled: false, journal: true}"),
                    "8:39: sources[0].buffer.journal",
                    "a journal needs the buffer (buffer.enabled is false)")

    def test_missing_file(self):
        d = self.fresh_dir("missing")
        p = subprocess.run([harness.TRIFLE, "serve", "--config", os.path.join(d, "nope.yaml")],
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 4)
        self.assertIn("nope.yaml: cannot read the configuration file: No such file",
                      p.stderr.decode())


class ConfigValuesTest(ServerTestCase):
    def test_substitution_escape_and_relative_paths(self):
        d = self.fresh_dir("subst")
        os.makedirs(os.path.join(d, "dbs"))
        text = good(source_extra='    name: "$${NOT_SUBSTITUTED} for ${TRIFLE_TEST_OWNER}"\n'
                                 '    week_start: sun\n    granularities: "1h, 1d"')
        text = text.replace('"sqlite:data/c.db"', '"sqlite:${TRIFLE_TEST_DB_DIR}/c.db?table=t1"')
        srv = Server(d, text, env={"TRIFLE_TEST_OWNER": "ops", "TRIFLE_TEST_DB_DIR": "dbs"},
                     cwd="/")
        with srv:
            st, _, raw, doc = srv.request("GET", "/api/v1/source", token=WRITER)
            self.assertEqual(st, 200, raw)
            self.assertEqual(doc["data"]["display_name"], "${NOT_SUBSTITUTED} for ops")
            self.assertEqual(doc["data"]["available_granularities"], ["1h", "1d"])
            self.assertEqual(srv.request("POST", "/api/v1/metrics",
                                         {"key": "k", "at": "2026-01-01T00:00:00Z",
                                          "values": {"n": 1}}, token=WRITER)[0], 201)
        # relative to the file's directory, not the working directory (/)
        self.assertTrue(os.path.exists(os.path.join(d, "dbs", "c.db")))
        self.assertTrue(os.path.isdir(os.path.join(d, "data", "stats")))

    def test_url_parameter_wins_over_source_key(self):
        d = self.fresh_dir("precedence")
        text = good(source_extra="    joined: partial").replace(
            '"sqlite:data/c.db"', '"sqlite:data/p.db?joined=separated"')
        with Server(d, text) as srv:
            self.assertEqual(srv.request("POST", "/api/v1/metrics",
                                         {"key": "k", "at": "2026-01-01T00:00:00Z",
                                          "values": {"n": 1}}, token=WRITER)[0], 201)
        import sqlite3
        con = sqlite3.connect(os.path.join(d, "data", "p.db"))
        cols = [r[1] for r in con.execute("PRAGMA table_info(trifle_stats)")]
        con.close()
        self.assertEqual(cols, ["key", "granularity", "at", "data"])

    def test_journal_directories(self):
        """On by default under <data_dir>/journal/<id>; off with journal: false or without a
        buffer; another directory by name (relative to the configuration file)."""
        d = self.fresh_dir("journal")
        extra = f"""\
  - id: quiet
    driver: "sqlite:data/q.db"
    buffer: {{journal: false}}
  - id: direct
    driver: "sqlite:data/r.db"
    buffer: {{enabled: false}}
  - id: elsewhere
    driver: "sqlite:data/e.db"
    buffer: {{journal: wal/elsewhere, journal_sync: always}}
  - id: lazy
    driver: "sqlite:data/l.db"
    buffer: {{journal: on, journal_sync: "interval:50"}}
"""
        with Server(d, good(source_extra=extra)) as srv:
            log = srv.stderr()
        journal = os.path.join(d, "data", "journal")
        self.assertEqual(sorted(os.listdir(journal)), ["lazy", "main"])
        self.assertTrue(os.path.isdir(os.path.join(d, "wal", "elsewhere")))
        self.assertIn("source main: journal %s/main (sync interval:5)" % journal, log)
        self.assertIn("source lazy: journal %s/lazy (sync interval:50)" % journal, log)
        self.assertIn("source elsewhere: journal %s (sync always)"
                      % os.path.join(d, "wal", "elsewhere"), log)
        self.assertNotIn("source quiet: journal", log)
        self.assertNotIn("source direct: journal", log)

    def test_example_configuration_loads(self):
        """The SPEC §12 example, with paths and the postgres source adapted."""
        d = self.fresh_dir("example")
        text = f"""\
http:
  listen: "127.0.0.1:0"
  threads: 8
  read_timeout_ms: 10000
  write_timeout_ms: 10000
  shutdown_timeout_ms: 10000
data_dir: data
node:
  id: node-1
  name: node-1
limits:
  max_body_bytes: 1048576
  max_points: 100000
  max_connections: 256
  max_list_entries: 10000
sources:
  - id: main
    name: Main
    driver: "sqlite:stats.db?table=trifle_stats"
    time_zone: Europe/Bratislava
    week_start: monday
    granularities: [1m, 1h, 1d, 1w, 1mo, 1q, 1y]
    joined: full
    separator: "::"
    system_tracking: true
    read_only: false
    setup: true
    connections: 4
    default_timeframe: 24h
    default_granularity: 1h
    buffer:
      enabled: true
      duration_ms: 1000
      size: 256
      aggregate: true
      async: true
      max_pending: 100000
      full_policy: block
      block_timeout_ms: 30000
      retry_initial_ms: 100
      retry_max_ms: 30000
      close_timeout_ms: 10000
tokens:
  - name: ingest
    sha256: "8d6c5ff55560589ecfd35d5e7dc912ef41a36364a97fa609a59c2657707b1003"
    grants:
      - {{source: main, read: true, write: true}}
  - name: dashboards
    sha256: "9e9898a47f951d89b169e6c8da9eb7c8dea9d874a418183d9d58e60603fea118"
    expires_at: "2027-01-01T00:00:00Z"
    grants:
      - {{source: "*", read: true}}
  - name: ops
    sha256: "c1cdd76c124c6c33acc52466834cbc02a4cd27258a0903844414de732577c6cc"
    admin: true
    grants: []
stats:
  enabled: true
  persist: true
  no_buffer: true
  include_storage_stats_in_api: true
  buffer_size: 1000
  flush_interval_ms: 1000
  checkpoint_interval_ms: 10000
  public: false
  prometheus_labels: {{type: trifle}}
"""
        with Server(d, text) as srv:
            st, _, raw, doc = srv.request("GET", "/api/v1/source",
                                          token="trf_example_ingest_token_0001")
            self.assertEqual(st, 200, raw)
            self.assertEqual(doc["data"]["time_zone"], "Europe/Bratislava")
            self.assertEqual(srv.request("GET", "/stats",
                                         token="trf_example_admin_token_0003")[0], 200)


if __name__ == "__main__":
    harness.run_main()
