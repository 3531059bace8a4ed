#!/usr/bin/env bash
# The connection pool under load (issue #14, docs/scaling.md): `trifle serve` with one source on a
# database server, the buffer off (every POST is one driver call), `connections: POOL`, and wrk
# over keep-alive connections.
#
# Usage: DRIVER=postgres://… bench/pool_load.sh [TRIFLE_BINARY]
# Environment:
#   DRIVER          the source's driver URL (required; a fresh table is used per run)
#   POOL            the source's `connections` (default 1)
#   MODE            write: POST one track per request, spread over 64 keys (rows), so requests
#                   do not queue on one row's lock; read: GET one year of 1h buckets (8,760) of
#                   one key, filled first with batch POSTs (default write)
#   DURATION (5s), CONNECTIONS (wrk connections: 32 for write, 8 for read), SERVER_THREADS (16)
#   BENCH_JSON=FILE appends the result as one JSON line (bench/run.sh passes /dev/stdout)
#   BENCH_KEEP=1    keeps the work directory
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-$ROOT/build/release/trifle}
[ -x "$BIN" ] || { echo "trifle binary not found (pass its path)" >&2; exit 2; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)" >&2; exit 2; }
[ -n "${DRIVER:-}" ] || { echo "DRIVER is not set (a database URL)" >&2; exit 2; }
POOL=${POOL:-1}
MODE=${MODE:-write}
DURATION=${DURATION:-5s}
SERVER_THREADS=${SERVER_THREADS:-16}
case $MODE in
write) CONNECTIONS=${CONNECTIONS:-32} ;;
read) CONNECTIONS=${CONNECTIONS:-8} ;;
*) echo "MODE must be write or read (got $MODE)" >&2; exit 2 ;;
esac
TOKEN=trf_bench_pool_token_0000000001
TABLE=pool_${MODE}_$$_$RANDOM
case $DRIVER in *\?*) URL="$DRIVER&table=$TABLE" ;; *) URL="$DRIVER?table=$TABLE" ;; esac
# shellcheck source=bench/serve.sh
. "$ROOT/bench/serve.sh"
bench_work trifle-pool

bench_config <<YAML
limits:
  max_connections: 1024
  max_body_bytes: 4194304
sources:
  - id: main
    driver: "$URL"
    granularities: [1h, 1d]
    connections: $POOL
    system_tracking: ${SYSTEM_TRACKING:-true}
    buffer: {enabled: false}
YAML
bench_serve 300

if [ "$MODE" = read ]; then
    # one year of 1h buckets of bench::year, in batch POSTs of 730 calls
    python3 - "$ADDR" "$TOKEN" <<'PY'
import http.client, json, sys
addr, token = sys.argv[1], sys.argv[2]
host, port = addr.rsplit(":", 1)
c = http.client.HTTPConnection(host, int(port), timeout=60)
t0 = 1767225600  # 2026-01-01T00:00:00Z
for start in range(0, 8760, 730):
    body = [{"key": "bench::year", "at": t0 + 3600 * h, "values": {"count": 1, "hits": 3}}
            for h in range(start, start + 730)]
    for item in body:
        import datetime
        item["at"] = datetime.datetime.fromtimestamp(item["at"], datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    c.request("POST", "/api/v1/metrics", body=json.dumps(body),
              headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = c.getresponse()
    text = r.read()
    if r.status != 201:
        sys.exit("fill: %d %s" % (r.status, text[:200]))
PY
    cat >"$WORK/load.lua" <<LUA
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.path = "/api/v1/metrics?key=bench::year&from=2026-01-01T00:00:00Z&to=2026-12-31T23:00:00Z&granularity=1h"
LUA
else
    cat >"$WORK/load.lua" <<LUA
wrk.method = "POST"
wrk.path = "/api/v1/metrics"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
local n = 0
request = function()
    n = n + 1
    local body = '{"key":"bench::pool' .. (n % 64) .. '","at":"2026-01-10T12:00:00Z","values":{"count":1}}'
    return wrk.format(nil, nil, nil, body)
end
LUA
fi

wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s "$WORK/load.lua" "http://$ADDR/" >"$WORK/wrk.log" 2>&1 ||
    { cat "$WORK/wrk.log" >&2; exit 1; }
cat "$WORK/wrk.log"
RATE=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$WORK/wrk.log")
NON2XX=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$WORK/wrk.log")
NON2XX=${NON2XX:-0}
[ "$NON2XX" = 0 ] || { echo "$NON2XX responses were not 2xx" >&2; tail -20 "$WORK/server.log" >&2; exit 1; }
echo "pool $POOL, $MODE: $RATE requests/s ($CONNECTIONS wrk connections, $SERVER_THREADS server threads)"
if [ -n "${BENCH_JSON:-}" ]; then
    printf '{"bench":"pool","mode":"%s","pool":%s,"requests_per_s":%s,"connections":%s,"server_threads":%s}\n' \
        "$MODE" "$POOL" "$RATE" "$CONNECTIONS" "$SERVER_THREADS" >>"$BENCH_JSON"
fi
