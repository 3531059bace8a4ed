"""Black-box harness for `trifle serve`: starts the real binary on a free loopback port with a
temporary data directory and configuration, and talks HTTP to it with http.client.

Only the Python 3 standard library is used. The binary comes from the TRIFLE_BIN environment
variable (set by ctest) or the first command-line argument.
"""
import gzip
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

TRIFLE = os.environ.get("TRIFLE_BIN", "trifle")

# Tokens used by every configuration below: (plaintext, sha256 hex).
def digest(token):
    return hashlib.sha256(token.encode()).hexdigest()

WRITER = "trf_test_writer_token_0001"
READER = "trf_test_reader_token_0002"
ADMIN = "trf_test_admin_token_00003"
STAR = "trf_test_star_reader_00004"
EXPIRED = "trf_test_expired_token_005"
NOBODY = "trf_test_unknown_token_0006"

# The start of a `tokens:` section: WRITER reads and writes source `main`, READER reads it.
RW_TOKENS = f"""\
tokens:
  - name: writer
    sha256: "{digest(WRITER)}"
    grants:
      - {{source: main, read: true, write: true}}
  - name: reader
    sha256: "{digest(READER)}"
    grants:
      - {{source: main, read: true}}
"""

LISTENING = re.compile(r"listening on (?:http://)?(\S+)")


def base_config(data_dir, db_path, extra_sources="", stats="", limits="", http_extra="",
                source_extra=""):
    """A configuration with source `main` (and optional more) and the five test tokens."""
    return f"""\
http:
  listen: "127.0.0.1:0"
  threads: 2
  shutdown_timeout_ms: 5000
{http_extra}
data_dir: "{data_dir}"
node:
  id: node-1
  name: node-1
limits:
  max_body_bytes: 65536
{limits}
sources:
  - id: main
    name: Main
    driver: "sqlite:{db_path}"
    time_zone: UTC
{source_extra}
{extra_sources}
{RW_TOKENS}  - name: admin
    sha256: "{digest(ADMIN)}"
    admin: true
    grants: []
  - name: star
    sha256: "{digest(STAR)}"
    grants:
      - {{source: "*", read: true}}
  - name: expired
    sha256: "{digest(EXPIRED)}"
    expires_at: "2001-01-01T00:00:00Z"
    grants:
      - {{source: main, read: true, write: true}}
stats:
  checkpoint_interval_ms: 100
{stats}
"""


class Server:
    """One `trifle serve` process. Use as a context manager or call stop()."""

    def __init__(self, workdir, config_text=None, args=(), env=None, cwd=None):
        self.workdir = workdir
        self.config = None
        if config_text is not None:
            self.config = os.path.join(workdir, "trifle.yaml")
            with open(self.config, "w") as f:
                f.write(config_text)
        self.args = list(args)
        self.env = dict(os.environ)
        self.env.pop("TRIFLE_CONFIG", None)
        if env:
            self.env.update(env)
        self.cwd = cwd or workdir
        self.proc = None
        self.preexec = None  # a callable run in the child before exec (resource limits)
        self.address = None
        self.stderr_path = os.path.join(workdir, "stderr-%d.log" % time.monotonic_ns())

    def command(self):
        cmd = [TRIFLE, "serve"]
        if self.config is not None:
            cmd += ["--config", self.config]
        return cmd + self.args

    def start(self, expect_failure=False, timeout=15.0):
        self.stderr_file = open(self.stderr_path, "w+")
        self.proc = subprocess.Popen(self.command(), cwd=self.cwd, env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr_file,
                                     preexec_fn=self.preexec)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.stderr()
            m = LISTENING.search(text)
            if m:
                self.address = m.group(1)
                return self
            if self.proc.poll() is not None:
                if expect_failure:
                    return self
                raise AssertionError("server exited with %s:\n%s" % (self.proc.returncode, text))
            time.sleep(0.02)
        if expect_failure:
            return self
        self.kill()
        raise AssertionError("server did not start:\n" + self.stderr())

    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    @property
    def host(self):
        return self.address.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self):
        return int(self.address.rsplit(":", 1)[1])

    def connection(self, timeout=10):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, token=None, conn=None):
        """Returns (status, headers dict (lower-case names), raw body, parsed JSON or None)."""
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = "Bearer " + token
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        own = conn is None
        c = conn or self.connection()
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            raw = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            try:
                doc = json.loads(raw) if raw else None
            except ValueError:
                doc = None
            return r.status, hdrs, raw, doc
        finally:
            if own:
                c.close()

    def wait(self, timeout=30):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def terminate(self, sig=signal.SIGTERM, timeout=30):
        self.proc.send_signal(sig)
        return self.wait(timeout)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        """SIGTERM if still running; then the exit status must be 0 and stderr must hold no
        sanitizer report (ASan/UBSan/LSan builds run the same tests)."""
        rc = None
        if self.proc and self.proc.poll() is None:
            rc = self.terminate()
        if getattr(self, "stderr_file", None):
            self.stderr_file.close()
            self.stderr_file = None
        text = self.stderr() if self.proc else ""
        for marker in ("Sanitizer", "runtime error:"):
            if marker in text:
                raise AssertionError("sanitizer report from trifle serve:\n" + text)
        if rc not in (None, 0):
            raise AssertionError("trifle serve exited with %s:\n%s" % (rc, text))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def gz(data):
    return gzip.compress(data if isinstance(data, bytes) else data.encode())


class ServerTestCase(unittest.TestCase):
    """A fresh temp directory per test class, with helpers for configs, and optionally one server
    the class's tests share: set SERVER to start_class_server's arguments to have setUpClass
    start it (or call start_class_server); tearDownClass stops it."""

    SERVER = None
    srv = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="trifle-http-")
        if cls.SERVER is not None:
            cls.start_class_server(**cls.SERVER)

    @classmethod
    def tearDownClass(cls):
        if cls.srv is not None:
            cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def start_class_server(cls, name, db="stats.db", extra="", **config):
        """Starts the class's server in fresh_dir(name) (cls.dir) with base_config (cls.cfg): its
        data directory and the SQLite file db in it, base_config's keyword arguments, then
        extra appended to the text."""
        cls.dir = cls.fresh_dir(name)
        data = os.path.join(cls.dir, "data")
        cls.cfg = base_config(data, os.path.join(data, db), **config) + extra
        cls.srv = Server(cls.dir, cls.cfg).start()
        return cls.srv

    @classmethod
    def restart_class_server(cls):
        """Stops the class's server and starts it again on the same directory and configuration."""
        cls.srv.stop()
        cls.srv = Server(cls.dir, cls.cfg).start()

    @classmethod
    def fresh_dir(cls, name):
        d = os.path.join(cls.tmp, name)
        os.makedirs(os.path.join(d, "data"), exist_ok=True)
        return d

    def assertDetail(self, response, status, detail):
        st, _, raw, doc = response
        self.assertEqual(st, status, raw)
        self.assertEqual(doc, {"errors": {"detail": detail}}, raw)

    def assertReason(self, response, status, reason):
        st, _, raw, doc = response
        self.assertEqual(st, status, raw)
        self.assertEqual(doc, {"status": status, "error": {"reason": reason}}, raw)


def run_main():
    import sys
    global TRIFLE
    if len(sys.argv) > 1 and os.sep in sys.argv[1] and os.path.isfile(sys.argv[1]):
        TRIFLE = os.path.abspath(sys.argv.pop(1))
    if not os.path.exists(TRIFLE) and shutil.which(TRIFLE) is None:
        sys.exit("trifle binary not found: set TRIFLE_BIN or pass its path")
    unittest.main(verbosity=2)


def script_args(description, **dirs):
    """Parses what ctest passes a test script: --trifle BIN, --NAME DIR for each NAME=help in
    dirs (required), and --tmp DIR (optional; created). The paths come back absolute, tmp None
    when not given. Returns the arguments and the argv for unittest.main (script and the rest)."""
    import argparse
    import sys
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--trifle", required=True, help="the trifle binary under test")
    for name, text in dirs.items():
        parser.add_argument("--" + name, required=True, help=text)
    parser.add_argument("--tmp", default=None, help="directory for temporary files")
    args, rest = parser.parse_known_args()
    for name in ("trifle", *dirs):
        setattr(args, name, os.path.abspath(getattr(args, name)))
    if args.tmp:
        os.makedirs(args.tmp, exist_ok=True)
        args.tmp = os.path.abspath(args.tmp)
    return args, [sys.argv[0]] + rest


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
