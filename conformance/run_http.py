#!/usr/bin/env python3
"""conformance.http: trifle-conformance against the HTTP driver and a `trifle serve` it starts.

    run_http.py TRIFLE TRIFLE_CONFORMANCE [extra runner arguments...]

Each conformance case works in a namespace of its own, `trfl_c_<pid>_<n>`, passed in the URL
parameter the runner is told to use (--namespace-param). For the HTTP driver that parameter is
`source` (the X-Trifle-Source-Id header), so the server must have one source per case, named
with the runner's process id. The runner is therefore forked first and held on a pipe; the server is
configured with the sources for the child's pid, started on a free loopback port, and the child
then execs trifle-conformance with the server's URL. Each source is a SQLite file of its own.

The token travels in TRIFLE_TOKEN, not in the URL. Exit status: the runner's.
"""
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TOKEN = "trf_conformance_http_token_01"
LISTENING = re.compile(r"listening on http://(\S+)")


def main():
    if len(sys.argv) < 3:
        sys.stderr.write("usage: run_http.py TRIFLE TRIFLE_CONFORMANCE [runner args...]\n")
        return 2
    trifle, runner, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
    env = dict(os.environ, TRIFLE_TOKEN=TOKEN)
    listed = subprocess.run([runner, "--driver", "http", "--list"], env=env, check=True,
                            capture_output=True, text=True).stdout.splitlines()
    n_cases = len(listed)

    tmp = tempfile.mkdtemp(prefix="trfl-conf-http.")
    rfd, wfd = os.pipe()
    child = os.fork()
    if child == 0:  # the runner, once the server is up
        os.close(wfd)
        url = os.read(rfd, 4096).decode()
        os.close(rfd)
        if not url:
            os._exit(1)
        os.execve(runner, [runner, "--driver", "http", "--namespace-param", "source", "--tap"]
                  + extra + [url], env)
    os.close(rfd)
    server = None
    try:
        data = os.path.join(tmp, "data")
        os.mkdir(data)
        sources = "".join(
            f"  - id: trfl_c_{child}_{i}\n"
            f"    driver: \"sqlite:{tmp}/s{i}.db\"\n"
            f"    time_zone: UTC\n"
            f"    granularities: [1m, 1h, 1d, 1w, 1mo, 1q, 1y]\n"
            f"    buffer: {{enabled: false}}\n"
            for i in range(n_cases + 2))
        digest = hashlib.sha256(TOKEN.encode()).hexdigest()
        cfg = os.path.join(tmp, "trifle.yaml")
        with open(cfg, "w") as f:
            f.write(f"http:\n  listen: \"127.0.0.1:0\"\n  threads: 8\n"
                    f"data_dir: \"{data}\"\n"
                    f"limits:\n  max_points: 100000\n"
                    f"sources:\n{sources}"
                    f"tokens:\n  - name: conformance\n    sha256: \"{digest}\"\n"
                    f"    grants:\n      - {{source: \"*\", read: true, write: true}}\n")
        log = open(os.path.join(tmp, "serve.log"), "w+")
        server = subprocess.Popen([trifle, "serve", "--config", cfg], stdout=log, stderr=log)
        addr = None
        deadline = time.monotonic() + 30
        while addr is None and time.monotonic() < deadline:
            if server.poll() is not None:
                break
            log.seek(0)
            m = LISTENING.search(log.read())
            if m:
                addr = m.group(1)
            else:
                time.sleep(0.05)
        if addr is None:
            log.seek(0)
            sys.stderr.write("run_http: trifle serve did not start:\n" + log.read())
            os.write(wfd, b"")
            os.close(wfd)
            os.waitpid(child, 0)
            return 1
        os.write(wfd, f"http://{addr}".encode())
        os.close(wfd)
        _, status = os.waitpid(child, 0)
        return os.waitstatus_to_exitcode(status)
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
