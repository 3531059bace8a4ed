#!/usr/bin/env bash
# Load benchmark of `trifle serve` (the server issue): wrk POSTs /api/v1/metrics over keep-alive
# connections against a buffered SQLite source; afterwards the server is stopped with SIGTERM
# (final flush) and the stored total is compared with the number of 201 responses wrk counted.
#
# Usage: bench/http_load.sh [TRIFLE_BINARY]          (default: build/release/trifle, then build/trifle)
# Environment: DURATION (10s), CONNECTIONS (64), WRK_THREADS (1), SERVER_THREADS (2),
#              JOURNAL: the source's write-ahead journal: off, interval (the server's default,
#              interval:5), always, none, or interval:<ms> (default interval),
#              BENCH_KEEP=1 keeps the work directory,
#              BENCH_JSON=FILE also appends the result as one JSON line to FILE (bench/run.sh
#              passes /dev/stdout: the line is then the last one printed).
# Prints requests/s, latency percentiles, and "totals match" or exits 1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-}
if [ -z "$BIN" ]; then
    for b in "$ROOT/build/release/trifle" "$ROOT/build/trifle"; do
        if [ -x "$b" ]; then BIN=$b; break; fi
    done
fi
[ -x "${BIN:-}" ] || { echo "trifle binary not found (pass its path)" >&2; exit 2; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)" >&2; exit 2; }

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-1}
SERVER_THREADS=${SERVER_THREADS:-2}
JOURNAL=${JOURNAL:-interval}
case $JOURNAL in
off) JOURNAL_YAML="journal: false" ;;
interval) JOURNAL_YAML="journal: true" ;;
always | none | interval:*) JOURNAL_YAML="journal_sync: \"$JOURNAL\"" ;;
*) echo "JOURNAL must be off, interval, always, none or interval:<ms> (got $JOURNAL)" >&2; exit 2 ;;
esac
TOKEN=trf_bench_load_token_000000001
# shellcheck source=bench/serve.sh
. "$ROOT/bench/serve.sh"
bench_work trifle-bench

bench_config <<YAML
limits:
  max_connections: 1024
sources:
  - id: main
    driver: "sqlite:data/bench.db"
    buffer: {enabled: true, duration_ms: 1000, size: 256, $JOURNAL_YAML}
YAML
bench_serve 200

cat > "$WORK/post.lua" <<LUA
-- every thread counts its 201 responses; done() sums them over the threads
local threads = {}
function setup(thread)
    table.insert(threads, thread)
end
function init(args)
    created = 0
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.body = '{"key":"bench::load","at":"2026-01-10T12:00:00Z","values":{"count":1,"duration":{"db":0.25}}}'
function response(status, headers, body)
    if status == 201 then
        created = created + 1
    end
end
function done(summary, latency, requests)
    local total = 0
    for _, t in ipairs(threads) do
        total = total + t:get("created")
    end
    io.write(string.format("requests: %d in %.2f s, non-2xx: %d, socket errors: %d\n",
        summary.requests, summary.duration / 1e6, summary.errors.status,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
    io.write(string.format("throughput: %.0f requests/s\n", summary.requests / (summary.duration / 1e6)))
    io.write(string.format("latency: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
        latency:percentile(50) / 1000, latency:percentile(90) / 1000,
        latency:percentile(99) / 1000, latency.max / 1000))
    io.write(string.format("created: %d\n", total))
end
LUA

# server CPU time (user + system clock ticks) before and after: requests per CPU second does not
# depend on what else the machine is running
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
CPU0=$(cpu_ticks)
echo "trifle serve on $ADDR ($SERVER_THREADS threads, journal $JOURNAL); wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION"
wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/post.lua" "http://$ADDR/api/v1/metrics" \
    | tee "$WORK/wrk.log"
CREATED=$(sed -n 's/^created: \([0-9]*\)$/\1/p' "$WORK/wrk.log")
CPU1=$(cpu_ticks)
TICKS=$(getconf CLK_TCK)
awk -v n="$CREATED" -v t=$((CPU1 - CPU0)) -v hz="$TICKS" 'BEGIN {
    s = t / hz; if (s <= 0) s = 1 / hz
    printf "server CPU: %.2f s for %d requests = %.1f us/request (%.0f requests per CPU second)\n", s, n, s * 1e6 / n, n / s }'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# the server's own count of accepted writes (Simple Stats api.metrics.track); wrk does not count
# the responses still in flight when its duration ends, so its 201s may be up to CONNECTIONS fewer.
# Those requests are still running when wrk returns (with journal_sync always, for up to one
# fdatasync), so the count is read until two reads 200 ms apart agree.
accepted() {
    curl -s -H "Authorization: Bearer $TOKEN" "http://$ADDR/stats" |
        sed -n 's/.*"metrics.track": \([0-9]*\).*/\1/p'
}
ACCEPTED=$(accepted)
for _ in $(seq 1 50); do
    sleep 0.2
    NOW=$(accepted)
    [ "$NOW" = "$ACCEPTED" ] && break
    ACCEPTED=$NOW
done

# graceful stop: the final flush writes whatever the buffer still holds
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || { echo "server exited with $?" >&2; cat "$WORK/server.log" >&2; exit 1; }
SERVER_PID=

STORED=$(cd "$WORK" && "$BIN" values bench::load --driver sqlite:data/bench.db \
    --from 2026-01-10T00:00:00Z --to 2026-01-10T00:00:00Z --granularity 1d |
    sed -n 's/.*"count":\([0-9]*\).*/\1/p')
echo "201 responses: $CREATED seen by wrk, $ACCEPTED sent by the server; stored count: ${STORED:-none}"
if [ -n "$STORED" ] && [ "$ACCEPTED" = "$STORED" ] && [ "$CREATED" -le "$STORED" ] &&
    [ "$STORED" -le $((CREATED + CONNECTIONS)) ]; then
    echo "totals match"
    if [ -n "${BENCH_JSON:-}" ]; then
        python3 - "$WORK/wrk.log" "$CREATED" "$ACCEPTED" "$STORED" "$((CPU1 - CPU0))" "$TICKS" \
            "$CONNECTIONS" "$WRK_THREADS" "$SERVER_THREADS" "$DURATION" "$JOURNAL" >>"$BENCH_JSON" <<'PY'
import json, re, sys
log = open(sys.argv[1], encoding="utf-8").read()
created, accepted, stored, ticks, hz = (int(v) for v in sys.argv[2:7])
row = {"bench": "http", "impl": "c", "created": created, "accepted": accepted, "stored": stored,
       "match": True, "connections": int(sys.argv[7]), "wrk_threads": int(sys.argv[8]),
       "server_threads": int(sys.argv[9]), "duration": sys.argv[10], "journal": sys.argv[11],
       "rps": float(re.search(r"throughput: ([0-9.]+)", log).group(1))}
m = re.search(r"latency: p50 ([0-9.]+) ms, p90 ([0-9.]+) ms, p99 ([0-9.]+) ms, max ([0-9.]+) ms", log)
row.update(zip(("p50_ms", "p90_ms", "p99_ms", "max_ms"), (float(x) for x in m.groups())))
cpu = max(ticks, 1) / hz
row["server_cpu_s"] = cpu
row["requests_per_cpu_s"] = accepted / cpu
print(json.dumps(row))
PY
    fi
else
    echo "MISMATCH: the stored total differs from the 201 responses" >&2
    exit 1
fi
