#!/usr/bin/env python3
"""Black-box tests of the `trifle` command (SPEC §11, ERRATA minor 22, I11, I13).

Run by ctest as
    python3 test_cli.py --trifle BUILD/trifle --plugins BUILD/drivers --tmp DIR
Every case runs the real binary against a real SQLite file in its own temporary directory, with
every TRIFLE_* variable removed from the environment. TRIFLE_CLI_WRAPPER (e.g.
"valgrind --error-exitcode=99 --leak-check=full -q") is put in front of each run.

Only the Python standard library is used (and tests/http/harness.py for the arguments).
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
import harness  # noqa: E402  (tests/http/harness.py, found through the line above)

TRIFLE = None      # path of the binary under test
PLUGINS = None     # the build tree's plugin directory
TMP_ROOT = None    # where each case makes its directory
WRAPPER = shlex.split(os.environ.get("TRIFLE_CLI_WRAPPER", ""))

# Exit codes of SPEC §11.5.
EXIT_RUNTIME, EXIT_USAGE, EXIT_INPUT, EXIT_CONFIG, EXIT_DRIVER = 1, 2, 3, 4, 5


class Result:
    def __init__(self, proc):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def __repr__(self):
        return "exit %d\nstdout: %r\nstderr: %r" % (self.code, self.out, self.err)


class CliCase(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix=self.id().rsplit(".", 1)[-1] + "-", dir=TMP_ROOT)
        self.db = os.path.join(self.dir, "stats.db")
        self.url = "sqlite:" + self.db

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- running -----------------------------------------------------------------------------

    def run_cli(self, *args, env=None, stdin=None, exe=None):
        environ = {k: v for k, v in os.environ.items() if not k.startswith("TRIFLE_")}
        # No ~/.config/trifle/config.yaml of the machine's user may select a source.
        environ["XDG_CONFIG_HOME"] = self.dir
        environ.update(env or {})
        proc = subprocess.run(WRAPPER + [exe or TRIFLE] + [str(a) for a in args],
                              input=stdin, capture_output=True, text=True, env=environ,
                              cwd=self.dir, timeout=120)
        return Result(proc)

    def ok(self, *args, **kw):
        """Run a command that must succeed; return its parsed JSON document."""
        r = self.run_cli(*args, **kw)
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.err, "", r)
        self.assertTrue(r.out.endswith("\n"), r)
        if "--pretty" not in args and "TRIFLE_PRETTY" not in (kw.get("env") or {}):
            self.assertEqual(r.out.count("\n"), 1, "one compact line expected: %r" % r)
        return json.loads(r.out)

    def fails(self, exit_code, code, message, *args, **kw):
        """Run a command that must fail: empty stdout, one JSON error line, the given exit code.
        `message` is the exact message, or a callable checking it."""
        r = self.run_cli(*args, **kw)
        self.assertEqual(r.code, exit_code, r)
        self.assertEqual(r.out, "", r)
        self.assertTrue(r.err.endswith("\n") and r.err.count("\n") == 1, r)
        doc = json.loads(r.err)
        self.assertEqual(list(doc.keys()), ["error"], r)
        self.assertEqual(sorted(doc["error"].keys()), ["code", "message"], r)
        self.assertEqual(doc["error"]["code"], code, r)
        if callable(message):
            self.assertTrue(message(doc["error"]["message"]), r)
        else:
            self.assertEqual(doc["error"]["message"], message, r)
        return doc["error"]["message"]

    def setup_db(self, *extra):
        return self.ok("setup", "--driver", self.url, *extra)

    def track(self, key, values, at, *extra, command="track"):
        doc = self.ok(command, key, "--values", json.dumps(values), "--at", at,
                      "--driver", self.url, *extra)
        self.assertEqual(doc, {"status": "ok"})

    def values(self, key, frm, to, granularity, *extra):
        return self.ok("values", key, "--from", frm, "--to", to, "--granularity", granularity,
                       "--driver", self.url, *extra)


class TestInfo(CliCase):
    def test_version(self):
        r = self.run_cli("version")
        self.assertEqual((r.code, r.err), (0, ""), r)
        self.assertEqual(r.out, '{"version":"1.0.0","driver_abi":"1.4"}\n')

    def test_version_pretty(self):
        r = self.run_cli("--pretty", "version")
        self.assertEqual(r.out, '{\n  "version": "1.0.0",\n  "driver_abi": "1.4"\n}\n')

    def test_help_overview_lists_every_command(self):
        for args in (["help"], ["--help"], ["-h"]):
            r = self.run_cli(*args)
            self.assertEqual((r.code, r.err), (0, ""), r)
            self.assertTrue(r.out.startswith("Usage: trifle"), r)
            for command in ("setup", "track", "assert", "values", "beam", "scan", "query",
                            "keys", "serve", "mcp", "drivers", "version", "help"):
                self.assertIn("\n  %s " % command, r.out)

    def test_help_per_command(self):
        for command in ("setup", "track", "assert", "values", "beam", "scan", "query", "keys",
                        "serve", "mcp", "drivers", "version", "help"):
            texts = set()
            for args in (["help", command], [command, "--help"], [command, "-h"],
                         ["-h", command]):
                r = self.run_cli(*args)
                self.assertEqual((r.code, r.err), (0, ""), r)
                self.assertTrue(r.out.startswith("Usage: trifle %s" % command), r)
                texts.add(r.out)
            self.assertEqual(len(texts), 1, command)

    def test_help_of_unknown_command(self):
        self.fails(EXIT_USAGE, "USAGE", "unknown command: frobnicate", "help", "frobnicate")

    def test_drivers_lists_sqlite(self):
        doc = self.ok("drivers")
        self.assertEqual(list(doc.keys()), ["drivers"])
        sqlite = [d for d in doc["drivers"] if d["name"] == "sqlite"]
        self.assertEqual(len(sqlite), 1, doc)
        d = sqlite[0]
        self.assertEqual(list(d.keys()),
                         ["name", "path", "version", "abi", "schemes", "capabilities"])
        self.assertEqual(os.path.basename(d["path"]), "trifle_sqlite.so")
        self.assertEqual(os.path.realpath(os.path.dirname(d["path"])), os.path.realpath(PLUGINS))
        self.assertRegex(d["version"], r"^\d+\.\d+\.\d+")
        self.assertEqual(d["abi"], "1.4")
        self.assertIn("sqlite", d["schemes"])
        # SPEC §7.9: every identifier mode, beam/scan, all-or-nothing batches, real DDL; no TTL.
        self.assertEqual(d["capabilities"],
                         ["partial", "separated", "ping", "atomic_batch", "setup", "exact_doubles", "journal_mark"])

    def test_drivers_lists_a_broken_plugin_with_its_error(self):
        bad = os.path.join(self.dir, "plugins")
        os.mkdir(bad)
        with open(os.path.join(bad, "trifle_junk.so"), "w") as f:
            f.write("not an ELF file\n")
        doc = self.ok("drivers", "--driver-path", bad)
        junk = [d for d in doc["drivers"] if d["name"] == "junk"]
        self.assertEqual(len(junk), 1, doc)
        self.assertEqual(sorted(junk[0].keys()), ["error", "name", "path"])
        self.assertIn("junk", junk[0]["error"])


class TestWrites(CliCase):
    def test_setup(self):
        self.assertEqual(self.setup_db(),
                         {"status": "ok", "driver": "sqlite", "description": "SQLiteDriver(J)"})
        # idempotent
        self.assertEqual(self.setup_db()["status"], "ok")
        other = "sqlite:" + os.path.join(self.dir, "sep.db")
        self.assertEqual(self.ok("setup", "--driver", other, "--joined", "separated"),
                         {"status": "ok", "driver": "sqlite", "description": "SQLiteDriver(S)"})
        self.assertEqual(self.ok("setup", "--driver", other + "?joined=partial")["description"],
                         "SQLiteDriver(P)")

    def test_default_driver_is_trifle_db_in_the_current_directory(self):
        self.ok("setup")
        self.assertTrue(os.path.isfile(os.path.join(self.dir, "trifle.db")))
        self.assertEqual(self.ok("track", "k", "--values", '{"n":1}', "--at", "@3600"),
                         {"status": "ok"})
        doc = self.ok("values", "k", "--from", "@3600", "--to", "@3600", "--granularity", "1h")
        self.assertEqual(doc, {"at": ["1970-01-01T01:00:00Z"], "values": [{"n": 1}]})

    def test_track_then_values_in_a_non_utc_zone(self):
        self.setup_db()
        tz = ("--time-zone", "Europe/Bratislava")  # UTC+01:00 in January
        # 23:10 and 00:30 local: two different local days, one UTC day.
        self.track("event::logs", {"count": 2, "duration": {"db": 0.25}}, "2025-01-15T22:10:00Z", *tz)
        self.track("event::logs", {"count": 1}, "2025-01-15T23:30:00Z", *tz)
        days = self.values("event::logs", "2025-01-15", "2025-01-16", "1d", *tz)
        self.assertEqual(days, {
            "at": ["2025-01-15T00:00:00+01:00", "2025-01-16T00:00:00+01:00"],
            "values": [{"count": 2, "duration": {"db": 0.25}}, {"count": 1}]})
        hours = self.values("event::logs", "2025-01-15T23:00", "2025-01-16T01:00", "1h", *tz)
        self.assertEqual(hours, {
            "at": ["2025-01-15T23:00:00+01:00", "2025-01-16T00:00:00+01:00",
                   "2025-01-16T01:00:00+01:00"],
            "values": [{"count": 2, "duration": {"db": 0.25}}, {"count": 1}, {}]})
        # Read in UTC, day buckets start at 00:00Z: none was written (Bratislava days start at
        # 23:00Z), so the zone really decided the buckets.
        utc = self.values("event::logs", "2025-01-14T23:00:00Z", "2025-01-15T23:00:00Z", "1d",
                          "--time-zone", "UTC")
        self.assertEqual(utc["at"], ["2025-01-14T00:00:00Z", "2025-01-15T00:00:00Z"])
        self.assertEqual(utc["values"], [{}, {}])

    def test_system_key_counts_and_untracked(self):
        self.setup_db()
        at = "2026-01-15T10:20:00Z"
        self.track("a", {"n": 1}, at)
        self.track("a", {"n": 1}, at)
        self.track("b", {"n": 5}, at)
        self.track("a", {"n": 1}, at, "--untracked")
        doc = self.values("__system__key__", at, at, "1h")
        self.assertEqual(doc["values"], [{"count": 4, "keys": {"a": 2, "b": 1, "__untracked__": 1}}])
        # --untracked still writes the data to the key itself
        self.assertEqual(self.values("a", at, at, "1h")["values"], [{"n": 3}])
        # without system tracking nothing more is counted
        self.track("a", {"n": 1}, at, "--system-tracking", "false")
        self.assertEqual(self.values("__system__key__", at, at, "1d")["values"][0]["count"], 4)

    def test_assert_replaces_leaves_and_keeps_the_others(self):
        self.setup_db()
        at = "2026-01-15T10:20:00Z"
        self.track("q", {"jobs": 5, "done": 1}, at)
        self.track("q", {"jobs": 2}, at, command="assert")
        self.assertEqual(self.values("q", at, at, "1h")["values"], [{"done": 1, "jobs": 2}])
        self.track("q", {"jobs": 7}, at, "--untracked", command="assert")
        self.assertEqual(self.values("q", at, at, "1m")["values"], [{"done": 1, "jobs": 7}])
        self.assertEqual(self.values("__system__key__", at, at, "1h")["values"],
                         [{"count": 3, "keys": {"q": 2, "__untracked__": 1}}])

    def test_only_configured_granularities_are_written(self):
        self.setup_db()
        at = "2026-01-15T10:20:00Z"
        self.track("g", {"n": 1}, at, "--granularities", " 1h , 1d ")
        self.assertEqual(self.values("g", at, at, "1h")["values"], [{"n": 1}])
        self.assertEqual(self.values("g", at, at, "1m")["values"], [{}])

    def test_beam_and_scan(self):
        self.setup_db()
        self.assertEqual(self.ok("scan", "worker", "--driver", self.url),
                         {"at": None, "values": {}})
        self.track("worker", {"load": 0.5, "jobs": {"queued": 3}}, "2026-01-15T10:20:07Z",
                   command="beam")
        self.assertEqual(self.ok("scan", "worker", "--driver", self.url),
                         {"at": "2026-01-15T10:20:07Z",
                          "values": {"jobs": {"queued": 3}, "load": 0.5}})
        self.assertEqual(self.ok("scan", "--key", "worker", "--driver", self.url,
                                 "--time-zone", "Europe/Bratislava")["at"],
                         "2026-01-15T11:20:07+01:00")
        # a ping replaces the previous one completely
        self.track("worker", {"load": 1}, "2026-01-15T10:21:00Z", command="beam")
        self.assertEqual(self.ok("scan", "worker", "--driver", self.url),
                         {"at": "2026-01-15T10:21:00Z", "values": {"load": 1}})

    def test_skip_blanks(self):
        self.setup_db()
        self.track("s", {"n": 1}, "2026-01-15T11:30:00Z")
        full = self.values("s", "2026-01-15T10:00:00Z", "2026-01-15T12:00:00Z", "1h")
        self.assertEqual(full["values"], [{}, {"n": 1}, {}])
        skipped = self.values("s", "2026-01-15T10:00:00Z", "2026-01-15T12:00:00Z", "1h",
                              "--skip-blanks")
        self.assertEqual(skipped, {"at": ["2026-01-15T11:00:00Z"], "values": [{"n": 1}]})

    def test_pretty(self):
        self.setup_db()
        self.track("p", {"n": 1, "m": {"x": 0.5}}, "2026-01-15T11:30:00Z")
        args = ("values", "p", "--from", "2026-01-15T10:00:00Z", "--to", "2026-01-15T11:00:00Z",
                "--granularity", "1h", "--driver", self.url)
        compact = self.run_cli(*args)
        pretty = self.run_cli(*args, "--pretty")
        doc = json.loads(compact.out)
        self.assertEqual(pretty.out, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        self.assertIn('{}', pretty.out)  # empty buckets stay on one line
        # TRIFLE_PRETTY, overridden by --pretty=false
        self.assertEqual(self.run_cli(*args, env={"TRIFLE_PRETTY": "yes"}).out, pretty.out)
        self.assertEqual(self.run_cli(*args, "--pretty=false", env={"TRIFLE_PRETTY": "1"}).out,
                         compact.out)

    def test_values_from_file_and_stdin(self):
        self.setup_db()
        at = "2026-01-15T11:30:00Z"
        path = os.path.join(self.dir, "v.json")
        with open(path, "w") as f:
            f.write('{\n  "count": 2,\n  "meta": {"size": 10}\n}\n')
        self.ok("track", "f", "--values", "@" + path, "--at", at, "--driver", self.url)
        self.ok("track", "f", "--values=-", "--at", at, "--driver", self.url,
                stdin='{"count": 3}')
        self.assertEqual(self.values("f", at, at, "1h")["values"],
                         [{"count": 5, "meta": {"size": 10}}])

    def test_option_forms_and_double_dash(self):
        self.setup_db()
        at = "2026-01-15T11:30:00Z"
        # global options after the command, --name=value, and a key after `--`
        self.ok("track", "--values={\"n\":1}", "--at=" + at, "--driver=" + self.url,
                "--", "-dash-key")
        self.ok("--driver", self.url, "--granularity", "1h", "values", "--from", at, "--to", at,
                "--", "-dash-key")
        doc = self.ok("values", "--key=-dash-key", "--from", at, "--to", at, "--granularity=1h",
                      "--driver", self.url)
        self.assertEqual(doc["values"], [{"n": 1}])

    def test_time_arguments(self):
        self.setup_db()
        tz = ("--time-zone", "America/New_York")
        self.track("t", {"n": 1}, "@1736935200", *tz)  # 2025-01-15T10:00:00Z
        self.track("t", {"n": 2}, "2025-01-15T05:30", *tz)  # local wall time = 10:30Z
        self.track("t", {"n": 4}, "2025-01-15T11:59:59.999+01:00", *tz)  # floored: 10:59:59Z
        doc = self.values("t", "2025-01-15T10:00:00Z", "2025-01-15T10:00:00Z", "1h")
        self.assertEqual(doc["values"], [{"n": 7}])
        day = self.values("t", "2025-01-15", "2025-01-15", "1d", *tz)
        self.assertEqual(day, {"at": ["2025-01-15T00:00:00-05:00"], "values": [{"n": 7}]})
        # --at defaults to now
        self.ok("track", "t", "--values", '{"now":1}', "--driver", self.url)
        self.assertEqual(self.values("t", "now", "now", "1y")["values"][0]["now"], 1)

    def test_environment_and_precedence(self):
        env_db = os.path.join(self.dir, "env.db")
        flag_db = os.path.join(self.dir, "flag.db")
        env = {"TRIFLE_DRIVER": "sqlite:" + env_db, "TRIFLE_TIME_ZONE": "Europe/Bratislava",
               "TRIFLE_GRANULARITIES": "1h", "TRIFLE_SYSTEM_TRACKING": "off"}
        self.ok("setup", env=env)
        self.ok("setup", "--driver", "sqlite:" + flag_db, env=env)
        at = "2026-01-15T11:30:00Z"
        self.ok("track", "e", "--values", '{"n":1}', "--at", at, env=env)
        self.ok("track", "e", "--values", '{"n":10}', "--at", at, "--driver",
                "sqlite:" + flag_db, env=env)
        q = ("values", "e", "--from", at, "--to", at, "--granularity", "1h")
        from_env = self.ok(*q, env=env)
        self.assertEqual(from_env, {"at": ["2026-01-15T12:00:00+01:00"], "values": [{"n": 1}]})
        flagged = self.ok(*q, "--driver", "sqlite:" + flag_db, "--time-zone", "UTC", env=env)
        self.assertEqual(flagged, {"at": ["2026-01-15T11:00:00Z"], "values": [{"n": 10}]})
        # TRIFLE_GRANULARITIES=1h: no day bucket; TRIFLE_SYSTEM_TRACKING=off: no system counts
        self.assertEqual(self.ok("values", "e", "--from", at, "--to", at, "--granularity", "1d",
                                 env=env)["values"], [{}])
        self.assertEqual(self.ok("values", "__system__key__", "--from", at, "--to", at,
                                 "--granularity", "1h", env=env)["values"], [{}])
        # an empty variable counts as unset
        self.assertEqual(self.ok(*q, env=dict(env, TRIFLE_TIME_ZONE=""))["at"],
                         ["2026-01-15T11:00:00Z"])

    def test_bad_input_never_creates_the_database(self):
        fresh = os.path.join(self.dir, "fresh.db")
        self.fails(EXIT_INPUT, "EINVAL", "invalid time: bogus", "track", "k", "--values",
                   '{"n":1}', "--at", "bogus", "--driver", "sqlite:" + fresh)
        self.fails(EXIT_INPUT, "EINVAL", 'value at "n" is not a number', "track", "k",
                   "--values", '{"n":"x"}', "--driver", "sqlite:" + fresh)
        self.assertFalse(os.path.exists(fresh))


class TestErrors(CliCase):
    def setUp(self):
        super().setUp()
        self.setup_db()

    def test_bad_granularity(self):
        self.fails(EXIT_INPUT, "EINVAL", "invalid granularity: 5x", "values", "k", "--from",
                   "now", "--to", "now", "--granularity", "5x", "--driver", self.url)
        self.fails(EXIT_CONFIG, "ECONFIG", 'invalid granularity "5x" in granularities[1]',
                   "track", "k", "--values", '{"n":1}', "--granularities", "1h,5x",
                   "--driver", self.url)
        self.fails(EXIT_CONFIG, "ECONFIG", 'invalid granularity "5x" in granularities[0]',
                   "values", "k", "--from", "now", "--to", "now", "--granularity", "1h",
                   "--driver", self.url, env={"TRIFLE_GRANULARITIES": "5x"})

    def test_bad_time_zone(self):
        self.fails(EXIT_CONFIG, "ECONFIG", "unknown time zone: Mars/Olympus", "track", "k",
                   "--values", '{"n":1}', "--time-zone", "Mars/Olympus", "--driver", self.url)
        self.fails(EXIT_CONFIG, "ECONFIG", "unknown time zone: +01:00", "scan", "k",
                   "--driver", self.url, env={"TRIFLE_TIME_ZONE": "+01:00"})

    def test_bad_week_start(self):
        self.fails(EXIT_CONFIG, "ECONFIG", "invalid week start: someday", "track", "k",
                   "--values", '{"n":1}', "--week-start", "someday", "--driver", self.url)

    def test_bad_joined_separator_max_points(self):
        self.fails(EXIT_CONFIG, "ECONFIG", "invalid identifier mode: wide", "setup",
                   "--joined", "wide", "--driver", self.url)
        self.fails(EXIT_CONFIG, "ECONFIG", "separator must be 1 to 16 bytes without NUL",
                   "setup", "--separator", "x" * 17, "--driver", self.url)
        self.fails(EXIT_CONFIG, "ECONFIG", "invalid option max_points: 0", "setup",
                   "--max-points", "0", "--driver", self.url)

    def test_timeline_too_long(self):
        self.fails(EXIT_INPUT, "EINVAL", "timeline too long: more than 10 points", "values", "k",
                   "--from", "2026-01-15T00:00:00Z", "--to", "2026-01-15T01:00:00Z",
                   "--granularity", "1m", "--max-points", "10", "--driver", self.url)

    def test_non_numeric_leaf_names_its_path(self):
        self.fails(EXIT_INPUT, "EINVAL", 'value at "meta.bad" is not a number', "track", "k",
                   "--values", '{"count":1,"meta":{"bad":"x"}}', "--driver", self.url)
        self.fails(EXIT_INPUT, "EINVAL", "values must be an object", "beam", "k",
                   "--values", "[1]", "--driver", self.url)

    def test_malformed_json(self):
        self.fails(EXIT_INPUT, "EINVAL", lambda m: m.startswith("invalid JSON"), "track", "k",
                   "--values", '{"count":', "--driver", self.url)
        self.fails(EXIT_INPUT, "EINVAL", lambda m: m.startswith("invalid JSON"), "assert", "k",
                   "--values", "-", "--driver", self.url, stdin="")

    def test_unreadable_values_file(self):
        missing = os.path.join(self.dir, "missing.json")
        self.fails(EXIT_INPUT, "EINVAL",
                   "cannot read values from %s: No such file or directory" % missing,
                   "track", "k", "--values", "@" + missing, "--driver", self.url)

    def test_bad_time(self):
        for text in ("yesterday", "2026-13-01", "2026-01-15T10:00:00+1", ""):
            self.fails(EXIT_INPUT, "EINVAL", "invalid time: %s" % text, "track", "k",
                       "--values", '{"n":1}', "--at", text, "--driver", self.url)
        self.fails(EXIT_INPUT, "EINVAL", "invalid time: later", "values", "k", "--from", "now",
                   "--to", "later", "--granularity", "1h", "--driver", self.url)

    def test_reserved_and_invalid_keys(self):
        self.fails(EXIT_INPUT, "EINVAL", "reserved key: __system__key__", "track",
                   "__system__key__", "--values", '{"n":1}', "--driver", self.url)
        self.fails(EXIT_INPUT, "EINVAL", "reserved key: __system__key__", "beam",
                   "__system__key__", "--values", '{"n":1}', "--driver", self.url)
        self.fails(EXIT_INPUT, "EINVAL", "reserved key: __untracked__", "assert",
                   "__untracked__", "--values", '{"n":1}', "--driver", self.url)
        self.fails(EXIT_INPUT, "EINVAL", "invalid metric key", "track", "", "--values",
                   '{"n":1}', "--driver", self.url)
        self.fails(EXIT_INPUT, "EINVAL", "invalid metric key", "track", "a..b", "--values",
                   '{"n":1}', "--driver", self.url)

    def test_usage_errors(self):
        u = (EXIT_USAGE, "USAGE")
        self.fails(*u, "unknown command: frobnicate", "frobnicate")
        self.fails(*u, 'missing command (see "trifle help")')
        self.fails(*u, 'missing command (see "trifle help")', "--pretty")
        self.fails(*u, "unknown option: --frob", "version", "--frob")
        self.fails(*u, "unknown option: -x", "-x", "version")
        self.fails(*u, "option --pretty given more than once", "--pretty", "version", "--pretty")
        self.fails(*u, "option --driver given more than once", "setup", "--driver", self.url,
                   "--driver=" + self.url)
        self.fails(*u, "option --key given more than once", "scan", "--key", "a", "--key", "b")
        self.fails(*u, "metric key given twice (positional and --key)", "scan", "a",
                   "--key", "b", "--driver", self.url)
        self.fails(*u, "unexpected argument: extra", "scan", "a", "extra")
        self.fails(*u, "unexpected argument: x", "version", "x")
        self.fails(*u, "option --values requires a value", "track", "k", "--values")
        self.fails(*u, "option --values does not apply to scan", "scan", "k", "--values", "{}")
        self.fails(*u, "option --help takes no value", "--help=yes")
        self.fails(*u, "invalid value for --pretty: maybe", "--pretty=maybe", "version")
        self.fails(*u, "missing metric key (KEY or --key)", "track", "--values", "{}")
        self.fails(*u, "missing option --values", "track", "k")
        self.fails(*u, "missing option --granularity", "values", "k", "--from", "now", "--to",
                   "now")
        # --config is the client's file of sources outside serve (issue #13), but not for
        # commands that open no store
        self.fails(*u, "option --config does not apply to version", "version", "--config",
                   "x.yaml")
        # TRIFLE_CONFIG (the server's file) is ignored outside serve
        self.ok("scan", "k", "--driver", self.url, env={"TRIFLE_CONFIG": "/nonexistent.yaml"})

    def test_bad_pretty_environment(self):
        self.fails(EXIT_CONFIG, "ECONFIG", "invalid TRIFLE_PRETTY: sometimes", "version",
                   env={"TRIFLE_PRETTY": "sometimes"})

    def test_serve_refuses_public_address_without_config(self):
        # SPEC §12.1: the zero-config server never listens beyond loopback (tests/http covers
        # serving itself)
        self.fails(EXIT_CONFIG, "ECONFIG", lambda m: "refusing to listen on non-loopback" in m,
                   "serve", "--listen", "0.0.0.0:0")

    def test_unknown_scheme(self):
        self.fails(EXIT_CONFIG, "ECONFIG", "unknown driver: nosuch", "setup", "--driver",
                   "nosuch:whatever")

    def test_broken_plugin_is_a_driver_error(self):
        bad = os.path.join(self.dir, "plugins")
        os.mkdir(bad)
        with open(os.path.join(bad, "trifle_sqlite.so"), "w") as f:
            f.write("not an ELF file\n")
        self.fails(EXIT_DRIVER, "EABI", lambda m: m.startswith("driver sqlite: "), "setup",
                   "--driver", self.url, "--driver-path", bad)

    def test_passwords_are_never_printed(self):
        self.fails(EXIT_USAGE, "USAGE", "unexpected argument: postgres://user:***@db/x", "setup",
                   "postgres://user:s3cret@db/x")
        self.fails(EXIT_USAGE, "USAGE", "unknown command: redis://:***@db/0", "redis://:s3cret@db/0")
        for args in (["setup", "--driver", "postgres://user:s3cret@127.0.0.1:1/db"],
                     ["setup", "--driver", "redis://:s3cret@127.0.0.1:1/0"],
                     ["setup", "--driver", "sqlite:x.db?password=s3cret&bogus=1"],
                     ["setup", "--drvier=postgres://user:s3cret@127.0.0.1:1/db"]):
            r = self.run_cli(*args)
            self.assertNotEqual(r.code, 0, r)
            self.assertEqual(r.out, "", r)
            self.assertNotIn("s3cret", r.err, r)
            json.loads(r.err)

    def test_missing_table_points_at_setup(self):
        other = "sqlite:" + os.path.join(self.dir, "nosetup.db")
        r = self.run_cli("track", "k", "--values", '{"n":1}', "--driver", other)
        self.assertNotEqual(r.code, 0, r)
        self.assertEqual(r.out, "", r)
        self.assertIn("trifle setup", json.loads(r.err)["error"]["message"], r)


class TestQuery(CliCase):
    """`trifle query` maps its flags onto a SPEC §9.7 request (ERRATA I11 for the transponder)."""

    FROM, TO = "2026-01-24T00:00:00Z", "2026-01-24T01:00:00Z"

    def setUp(self):
        super().setUp()
        self.setup_db()
        self.track("event::signup", {"count": 40, "duration": 80}, "2026-01-24T00:10:00Z")
        self.track("event::signup", {"count": 2, "duration": 10}, "2026-01-24T01:59:59Z")

    def query(self, *extra):
        return ("query", "event::signup", "--from", self.FROM, "--to", self.TO,
                "--granularity", "1h", "--driver", self.url) + extra

    def query_fails(self, exit_code, message, *extra, **fields):
        r = self.run_cli(*self.query(*extra))
        self.assertEqual(r.code, exit_code, r)
        self.assertEqual(r.out, "", r)
        self.assertEqual(r.err.count("\n"), 1, r)
        error = json.loads(r.err)["error"]
        self.assertEqual(error.pop("message"), message, r)
        self.assertEqual(error.pop("code"), "EINVAL" if exit_code == EXIT_INPUT else "USAGE", r)
        self.assertEqual(error, fields, r)

    def test_aggregate(self):
        doc = self.ok(*self.query("--mode", "aggregate", "--value-path", "count",
                                  "--aggregator", "sum"))
        self.assertEqual(list(doc.keys()),
                         ["status", "aggregator", "metric_key", "value_path", "slices", "value",
                          "values", "count", "timeframe", "available_paths", "matched_paths",
                          "table"])
        self.assertEqual(doc["status"], "ok")
        self.assertEqual(doc["aggregator"], "sum")
        self.assertEqual(doc["metric_key"], "event::signup")
        self.assertEqual((doc["value"], doc["values"], doc["count"]), (42, [42], 1))
        self.assertEqual(doc["timeframe"], {"from": self.FROM, "to": self.TO, "label": "custom",
                                            "granularity": "1h"})
        self.assertEqual(doc["available_paths"], ["count", "duration"])
        self.assertEqual(doc["matched_paths"], ["count"])
        self.assertEqual(doc["table"], {"columns": ["at", "count"],
                                        "rows": [["2026-01-24T00:00:00Z", 40],
                                                 ["2026-01-24T01:00:00Z", 2]]})

    def test_timeline_with_slices(self):
        doc = self.ok(*self.query("--mode", "timeline", "--value-path", "count", "--slices", "2"))
        self.assertEqual(doc["formatter"], "timeline")
        self.assertEqual(doc["slices"], 2)
        self.assertEqual(doc["result"], {"count": [[{"at": "2026-01-24T00:00:00Z", "value": 40}],
                                                   [{"at": "2026-01-24T01:00:00Z", "value": 2}]]})

    def test_csv_and_table(self):
        args = ("--mode", "aggregate", "--value-path", "count", "--aggregator", "max")
        r = self.run_cli(*self.query(*args, "--format", "csv"))
        self.assertEqual((r.code, r.err), (0, ""), r)
        self.assertEqual(r.out, "at,count\n2026-01-24T00:00:00Z,40\n2026-01-24T01:00:00Z,2\n")
        r = self.run_cli(*self.query(*args, "--format=table", "--pretty"))
        self.assertEqual((r.code, r.err), (0, ""), r)
        self.assertEqual([line.split() for line in r.out.splitlines()],
                         [["at", "count"], ["2026-01-24T00:00:00Z", "40"],
                          ["2026-01-24T01:00:00Z", "2"]])

    def test_transponder(self):
        doc = self.ok(*self.query("--mode", "aggregate", "--aggregator", "sum",
                                  "--transpond-paths", "duration,count", "--expression", "a / b",
                                  "--response", "per_signup", "--value-path", "per_signup"))
        self.assertIn("per_signup", doc["available_paths"])
        self.assertEqual(doc["values"], [7])  # 80/40 + 10/2
        self.query_fails(EXIT_INPUT, "unexpected end of expression", "--mode", "aggregate",
                         "--aggregator", "sum", "--value-path", "count", "--transpond-paths",
                         "duration,count", "--expression", "a +", "--response", "x")

    def test_query_checks_keep_their_extra_fields(self):
        self.query_fails(EXIT_INPUT, 'Unsupported aggregator "median".', "--mode", "aggregate",
                         "--value-path", "count", "--aggregator", "median",
                         allowed=["max", "mean", "min", "sum"])
        self.query_fails(EXIT_INPUT, "Unknown path(s): nope", "--mode", "aggregate",
                         "--value-path", "nope", "--aggregator", "sum",
                         missing_paths=["nope"], available_paths=["count", "duration"])
        self.query_fails(EXIT_INPUT, "slices must be a positive integer.", "--mode", "timeline",
                         "--value-path", "count", "--slices", "0")
        self.query_fails(EXIT_INPUT, "Aggregator must be provided (options: max, mean, min, sum).",
                         "--mode", "aggregate", "--value-path", "count")

    def test_query_usage_errors(self):
        self.query_fails(EXIT_USAGE, "missing option --mode")
        self.query_fails(EXIT_USAGE, "invalid value for --format: xml (json, table or csv)",
                         "--mode", "timeline", "--format", "xml")


class TestInstalledBinary(CliCase):
    """ERRATA I13: a `trifle` outside the build tree never searches the build tree's plugins."""

    def setUp(self):
        super().setUp()
        self.exe = os.path.join(self.dir, "bin", "trifle")
        os.mkdir(os.path.dirname(self.exe))
        shutil.copy2(TRIFLE, self.exe)

    def test_build_tree_not_searched(self):
        doc = self.ok("drivers", exe=self.exe)
        for d in doc["drivers"]:
            self.assertNotEqual(os.path.realpath(os.path.dirname(d["path"])),
                                os.path.realpath(PLUGINS), doc)
        empty = os.path.join(self.dir, "empty")
        os.mkdir(empty)
        msg = self.fails(EXIT_DRIVER, "ENOTFOUND",
                         lambda m: m.startswith("driver sqlite not found (searched: "),
                         "setup", "--driver", self.url, "--driver-path", empty, exe=self.exe)
        self.assertIn(empty, msg)
        self.assertNotIn(PLUGINS, msg)

    def test_driver_path_and_environment_find_the_plugin(self):
        self.assertEqual(self.ok("setup", "--driver", self.url, "--driver-path", PLUGINS,
                                 exe=self.exe)["driver"], "sqlite")
        self.assertEqual(self.ok("setup", "--driver", self.url, exe=self.exe,
                                 env={"TRIFLE_DRIVER_PATH": PLUGINS})["driver"], "sqlite")
        doc = self.ok("drivers", "--driver-path", PLUGINS, exe=self.exe)
        self.assertIn("sqlite", [d["name"] for d in doc["drivers"]])


class TestFormats(CliCase):
    """--format json|table|csv on values, scan and keys (issue #13)."""

    def raw(self, *args, **kw):
        r = self.run_cli(*args, **kw)
        self.assertEqual((r.code, r.err), (0, ""), r)
        return r.out

    def setUp(self):
        super().setUp()
        self.setup_db()
        self.track("event::logs", {"count": 1, "duration": {"db": 0.25}}, "2026-01-15T10:20:00Z")
        self.track("event::logs", {"count": 2}, "2026-01-15T12:05:00Z")
        self.track('na\u00efve, "quoted"', {"n": 1}, "2026-01-15T10:00:00Z")
        self.track("a.b", {"n": 1}, "2026-01-16T10:00:00Z")

    def window(self, *extra):
        return ("--from", "2026-01-15T10:00:00Z", "--to", "2026-01-15T12:00:00Z",
                "--granularity", "1h", "--driver", self.url) + extra

    def test_values_table_and_csv(self):
        out = self.raw("values", "event::logs", *self.window("--format", "table"))
        self.assertEqual(out,
                         "at                    count  duration.db\n"
                         "2026-01-15T10:00:00Z  1      0.25\n"
                         "2026-01-15T11:00:00Z  -      -\n"
                         "2026-01-15T12:00:00Z  2      -\n")
        out = self.raw("values", "event::logs", *self.window("--format=csv"))
        self.assertEqual(out,
                         "at,count,duration.db\n"
                         "2026-01-15T10:00:00Z,1,0.25\n"
                         "2026-01-15T11:00:00Z,,\n"
                         "2026-01-15T12:00:00Z,2,\n")
        # json stays the default and the same document
        self.assertEqual(self.values("event::logs", "2026-01-15T10:00:00Z",
                                     "2026-01-15T12:00:00Z", "1h", "--format", "json"),
                         self.values("event::logs", "2026-01-15T10:00:00Z",
                                     "2026-01-15T12:00:00Z", "1h"))

    def test_values_table_in_a_time_zone_and_empty(self):
        out = self.raw("values", "event::logs", *self.window("--format", "csv", "--time-zone",
                                                             "Europe/Berlin", "--skip-blanks"))
        self.assertEqual(out, "at,count,duration.db\n"
                              "2026-01-15T11:00:00+01:00,1,0.25\n"
                              "2026-01-15T13:00:00+01:00,2,\n")
        out = self.raw("values", "never", *self.window("--format", "table", "--skip-blanks"))
        self.assertEqual(out, "at\n")

    def test_keys(self):
        args = ("keys", "--from", "2026-01-15", "--to", "2026-01-16", "--granularity", "1d",
                "--driver", self.url)
        self.assertEqual(self.ok(*args), {"keys": [
            {"key": "a.b", "count": 1},
            {"key": "event::logs", "count": 2},
            {"key": 'na\u00efve, "quoted"', "count": 1}]})
        # the window limits what is counted
        self.assertEqual(self.ok("keys", "--from", "2026-01-16", "--to", "2026-01-16",
                                 "--granularity", "1d", "--driver", self.url),
                         {"keys": [{"key": "a.b", "count": 1}]})
        # UTF-8 text counts as one column per character
        self.assertEqual(self.raw(*args, "--format", "table"),
                         "key              count\n"
                         "a.b              1\n"
                         "event::logs      2\n"
                         'na\u00efve, "quoted"  1\n')
        # RFC 4180: a field with a comma or a quote is quoted, quotes doubled
        self.assertEqual(self.raw(*args, "--format", "csv"),
                         'key,count\na.b,1\nevent::logs,2\n"na\u00efve, ""quoted""",1\n')
        self.assertEqual(self.ok("keys", "--from", "2020-01-01", "--to", "2020-01-01",
                                 "--granularity", "1d", "--driver", self.url), {"keys": []})

    def test_table_widths_are_terminal_columns(self):
        # CJK takes two columns, a combining accent none
        self.track("\u65e5\u672c", {"n": 1}, "2026-01-20T10:00:00Z")
        self.track("e\u0301x", {"n": 1}, "2026-01-20T10:00:00Z")
        self.track("abcde", {"n": 1}, "2026-01-20T10:00:00Z")
        out = self.raw("keys", "--from", "2026-01-20", "--to", "2026-01-20", "--granularity", "1d",
                       "--driver", self.url, "--format", "table")
        self.assertEqual(out, "key    count\n"
                              "abcde  1\n"
                              "e\u0301x     1\n"
                              "\u65e5\u672c   1\n")

    def test_keys_csv_quotes_line_breaks(self):
        self.track("two\nlines", {"n": 1}, "2026-01-15T10:00:00Z")
        out = self.raw("keys", "--from", "2026-01-15", "--to", "2026-01-15", "--granularity",
                       "1d", "--driver", self.url, "--format", "csv")
        self.assertIn('"two\nlines",1\n', out)

    def test_keys_needs_a_window(self):
        u = (EXIT_USAGE, "USAGE")
        self.fails(*u, "missing option --from", "keys", "--driver", self.url)
        self.fails(*u, "unexpected argument: k", "keys", "k", "--from", "now")
        self.fails(*u, "invalid value for --format: xml (json, table or csv)", "keys", "--from",
                   "now", "--to", "now", "--granularity", "1d", "--format", "xml",
                   "--driver", self.url)

    def test_scan_formats(self):
        self.track("worker::1", {"load": 0.75, "jobs": {"done": 3}}, "2026-01-15T10:20:07Z",
                   command="beam")
        scan = ("scan", "worker::1", "--driver", self.url)
        self.assertEqual(self.raw(*scan, "--format", "table"),
                         "at                    jobs.done  load\n"
                         "2026-01-15T10:20:07Z  3          0.75\n")
        self.assertEqual(self.raw(*scan, "--format", "csv"),
                         "at,jobs.done,load\n2026-01-15T10:20:07Z,3,0.75\n")
        self.assertEqual(self.raw("scan", "nothing", "--driver", self.url, "--format", "csv"),
                         "at\n")

    def test_query_table_counts_characters(self):
        self.track("k2", {"gr\u00f6\u00dfe": {"\u00e4": 1, "zz": 22}}, "2026-01-15T10:00:00Z")
        args = ("query", "k2", "--from", "2026-01-15T10:00:00Z", "--to", "2026-01-15T11:00:00Z",
                "--granularity", "1h", "--mode", "category", "--value-path", "gr\u00f6\u00dfe",
                "--driver", self.url)
        self.assertEqual(self.raw(*args, "--format", "table"),
                         "at                    gr\u00f6\u00dfe.zz  gr\u00f6\u00dfe.\u00e4\n"
                         "2026-01-15T10:00:00Z  22        1\n"
                         "2026-01-15T11:00:00Z  -         -\n")
        self.assertEqual(self.raw(*args, "--format", "csv"),
                         "at,gr\u00f6\u00dfe.zz,gr\u00f6\u00dfe.\u00e4\n"
                         "2026-01-15T10:00:00Z,22,1\n2026-01-15T11:00:00Z,,\n")

    def test_format_does_not_apply_to_writes(self):
        self.fails(EXIT_USAGE, "USAGE", "option --format does not apply to track", "track",
                   "k", "--values", "{}", "--format", "csv")


class TestConfigFile(CliCase):
    """--config FILE with named sources, --source NAME (issue #13)."""

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def setUp(self):
        super().setUp()
        self.other = os.path.join(self.dir, "other.db")
        self.cfg = self.write("trifle.yaml",
                              "source: main\n"
                              "sources:\n"
                              "  main:\n"
                              "    driver: sqlite:%s\n"
                              "  other:\n"
                              "    driver: sqlite:%s\n"
                              "    time_zone: Europe/Berlin\n"
                              "    granularities: [1h, 1d]\n" % (self.db, self.other))
        self.setup_db()
        self.ok("setup", "--driver", "sqlite:" + self.other)

    def scan(self, db):
        return self.ok("scan", "k", "--driver", "sqlite:" + db)

    def test_sources_are_selected_by_name(self):
        self.ok("beam", "k", "--values", '{"n":1}', "--config", self.cfg)
        self.assertEqual(self.scan(self.db)["values"], {"n": 1})
        self.assertEqual(self.scan(self.other)["values"], {})
        self.ok("beam", "k", "--values", '{"n":2}', "--at", "2026-01-15T10:00",
                "--config", self.cfg, "--source", "other")
        doc = self.scan(self.other)
        # the source's time zone applied to the local time given
        self.assertEqual(doc, {"at": "2026-01-15T09:00:00Z", "values": {"n": 2}})
        # TRIFLE_CLI_CONFIG and TRIFLE_SOURCE do the same
        doc = self.ok("scan", "k", env={"TRIFLE_CLI_CONFIG": self.cfg, "TRIFLE_SOURCE": "other"})
        self.assertEqual(doc, {"at": "2026-01-15T10:00:00+01:00", "values": {"n": 2}})

    def test_source_granularities_from_a_list(self):
        self.ok("track", "k", "--values", '{"n":1}', "--at", "2026-01-15T10:00:00Z",
                "--config", self.cfg, "--source", "other")
        g = self.ok("values", "k", "--from", "2026-01-15T10:00:00Z", "--to",
                    "2026-01-15T10:00:00Z", "--granularity", "1m", "--driver",
                    "sqlite:" + self.other)
        self.assertEqual(g["values"], [{}])
        g = self.ok("values", "k", "--from", "2026-01-15T10:00:00Z", "--to",
                    "2026-01-15T10:00:00Z", "--granularity", "1h", "--driver",
                    "sqlite:" + self.other)
        self.assertEqual(g["values"], [{"n": 1}])

    def test_flags_and_environment_win_over_the_file(self):
        third = os.path.join(self.dir, "third.db")
        self.ok("setup", "--driver", "sqlite:" + third)
        self.ok("beam", "k", "--values", '{"n":3}', "--config", self.cfg, "--driver",
                "sqlite:" + third)
        self.ok("beam", "k", "--values", '{"n":4}', "--config", self.cfg, "--source", "other",
                env={"TRIFLE_DRIVER": "sqlite:" + third, "TRIFLE_TIME_ZONE": "UTC"})
        self.assertEqual(self.scan(third)["values"], {"n": 4})
        self.assertEqual(self.scan(self.db)["values"], {})
        self.assertEqual(self.scan(self.other)["values"], {})

    def test_default_file_location(self):
        os.makedirs(os.path.join(self.dir, "xdg", "trifle"))
        with open(self.cfg) as f:
            self.write(os.path.join("xdg", "trifle", "config.yaml"), f.read())
        self.ok("beam", "k", "--values", '{"n":5}', "--source", "other",
                env={"XDG_CONFIG_HOME": os.path.join(self.dir, "xdg")})
        self.assertEqual(self.scan(self.other)["values"], {"n": 5})

    def test_errors_name_the_file_and_the_key(self):
        c = (EXIT_CONFIG, "ECONFIG")
        missing = os.path.join(self.dir, "missing.yaml")
        self.fails(*c, "cannot read config file %s: No such file or directory" % missing,
                   "scan", "k", "--config", missing)
        bad = self.write("bad.yaml", "sources:\n  main: [unclosed\n")
        self.fails(*c, lambda m: m.startswith(bad + ":3:1: invalid YAML: "), "scan", "k",
                   "--config", bad)
        self.fails(*c, 'unknown source "prod" in config file %s (known: main, other)' % self.cfg,
                   "scan", "k", "--config", self.cfg, "--source", "prod")
        self.write("typo.yaml", "sources:\n  main:\n    drvier: sqlite:x.db\n")
        typo = "typo.yaml"  # relative to the working directory: the message stays short
        self.fails(*c, typo + ":3:5: sources.main.drvier: unknown setting (driver, token, "
                   "granularities, time_zone, week_start, joined, separator, system_tracking, "
                   "max_points, driver_path)", "scan", "k", "--config", typo, "--source", "main")
        top = self.write("top.yaml", "driver: sqlite:x.db\n")
        self.fails(*c, top + ":1:1: driver: unknown key (sources, source)", "scan", "k",
                   "--config", top)
        empty = self.write("empty.yaml", "")
        self.fails(*c, "config file %s is empty" % empty, "scan", "k", "--config", empty)
        # a bad value is reported by the option it fills
        tz = self.write("tz.yaml", "source: x\nsources:\n  x:\n    time_zone: Mars/Base\n")
        r = self.run_cli("scan", "k", "--config", tz)
        self.assertEqual(r.code, EXIT_CONFIG, r)
        self.assertIn("Mars/Base", r.err)
        self.fails(EXIT_USAGE, "USAGE",
                   "--source main needs a config file (--config FILE or TRIFLE_CLI_CONFIG)",
                   "scan", "k", "--source", "main")


def main():
    global TRIFLE, PLUGINS, TMP_ROOT
    args, argv = harness.script_args(__doc__.splitlines()[0],
                                     plugins="the build tree's plugin directory")
    TRIFLE, PLUGINS, TMP_ROOT = args.trifle, args.plugins, args.tmp
    unittest.main(argv=argv, verbosity=2)


if __name__ == "__main__":
    main()
