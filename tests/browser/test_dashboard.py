"""End-to-end test of the dashboard in a real browser (issue 15).

Starts `trifle serve` with seeded data (tests/http/harness.py), then runs dashboard.cjs: Node
drives Debian's Chromium through playwright-core (no browser download). Screenshots go to
$TRIFLE_ARTEFACTS (ctest sets build/.../tests/browser/artefacts).

Needs: chromium (or $TRIFLE_CHROMIUM), node, and playwright-core installed by
scripts/install-deps.sh into ~/.cache/trifle/browser or $TRIFLE_BROWSER_MODULES (or a
node_modules directory named by $TRIFLE_NODE_MODULES, or tests/browser/node_modules). When one is missing the test is skipped (exit 77), or fails when
CI=true or TRIFLE_TEST_STRICT=1.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "http"))
import harness  # noqa: E402
from harness import READER, WRITER, Server, base_config  # noqa: E402

STRICT = os.environ.get("CI") == "true" or os.environ.get("TRIFLE_TEST_STRICT") == "1"


def missing(what):
    print("browser test: %s" % what)
    sys.exit(1 if STRICT else 77)


def find_modules():
    browser_dir = os.environ.get("TRIFLE_BROWSER_MODULES")  # as in scripts/install-deps.sh
    for d in (os.environ.get("TRIFLE_NODE_MODULES"),
              browser_dir and os.path.join(browser_dir, "node_modules"),
              os.path.join(HERE, "node_modules"),
              os.path.join(os.path.expanduser("~"), ".cache", "trifle", "browser",
                           "node_modules")):
        if d and os.path.isfile(os.path.join(d, "playwright-core", "package.json")):
            return d
    return None


def iso(ts):
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def main():
    trifle = os.environ.get("TRIFLE_BIN") or (sys.argv[1] if len(sys.argv) > 1 else None)
    if not trifle or not os.path.exists(trifle):
        sys.exit("set TRIFLE_BIN to the trifle binary")
    harness.TRIFLE = trifle
    chromium = os.environ.get("TRIFLE_CHROMIUM") or shutil.which("chromium")
    node = shutil.which("node")
    modules = find_modules()
    if not chromium:
        missing("chromium not found (apt-get install chromium, or set TRIFLE_CHROMIUM)")
    if not node:
        missing("node not found")
    if not modules:
        missing("playwright-core not installed (run scripts/install-deps.sh)")
    artefacts = os.environ.get("TRIFLE_ARTEFACTS") or os.path.join(os.getcwd(), "artefacts")
    os.makedirs(artefacts, exist_ok=True)

    tmp = tempfile.mkdtemp(prefix="trifle-browser-")
    try:
        data = os.path.join(tmp, "data")
        os.makedirs(data)
        cfg = base_config(data, os.path.join(data, "stats.db"),
                          source_extra="    granularities: [1h, 1d]\n")
        with Server(tmp, cfg) as srv:
            st, _, raw, _ = srv.request("GET", "/")
            if b"not built into this server" in raw:
                missing("the dashboard is not built into trifle (TRIFLE_DASHBOARD)")
            # six hourly buckets of event::signup ending at the current hour, one of another key
            hour = int(time.time()) // 3600 * 3600
            hourly, daily = {}, {}
            for i in range(6):
                at = hour - i * 3600
                values = {"count": i + 1, "duration": 0.5 * (i + 1),
                          "country": {"US": i + 1, "UK": 1}}
                st, _, raw, _ = srv.request("POST", "/api/v1/metrics",
                                            {"key": "event::signup", "at": iso(at),
                                             "values": values}, token=WRITER)
                assert st == 201, raw
                hourly[iso(at)] = {"count": i + 1, "duration": 0.5 * (i + 1)}
                day = iso(at // 86400 * 86400)
                d = daily.setdefault(day, {"count": 0, "duration": 0})
                d["count"] += i + 1
                d["duration"] += 0.5 * (i + 1)
            st, _, raw, _ = srv.request("POST", "/api/v1/metrics",
                                        {"key": "event::login", "at": iso(hour),
                                         "values": {"count": 1}}, token=WRITER)
            assert st == 201, raw
            st, _, raw, _ = srv.request("POST", "/api/v1/monitors", {
                "name": "signups", "key": "event::signup", "value_path": "count",
                "aggregator": "sum", "window": "1d", "granularity": "1h", "condition": ">",
                "threshold": 100, "interval_s": 1,
                "webhook_url": "http://127.0.0.1:9/hook"}, token=WRITER)
            assert st == 201, raw
            spec = {"url": "http://%s" % srv.address, "writer": WRITER, "reader": READER,
                    "chromium": chromium, "modules": modules, "artefacts": artefacts,
                    "hourly": hourly, "daily": daily,
                    "country": {"country.US": 21, "country.UK": 6}}
            env = dict(os.environ, TRIFLE_BROWSER_SPEC=json.dumps(spec))
            rc = subprocess.call([node, os.path.join(HERE, "dashboard.cjs")], env=env,
                                 timeout=240)
            if rc != 0:
                print(srv.stderr()[-3000:])
            sys.exit(rc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
