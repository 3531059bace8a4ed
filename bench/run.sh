#!/usr/bin/env bash
# bench/run.sh: trifle-c side by side with trifle_stats_go and with each backend's raw limit, in
# one run on one machine against the same servers; writes docs/BENCHMARKS.md.
#
# Usage: bench/run.sh [--reps N] [--quick] [--only BACKENDS] [--out FILE]
#   --reps N        repetitions of every measurement, the median is reported (default 3)
#   --quick         smaller N everywhere (a smoke run of the harness, numbers not for the doc)
#   --only LIST     backends to run, comma-separated (default: sqlite,postgres,redis,mongo,mysql,
#                   http,pool; http is the load test of `trifle serve`, bench/http_load.sh, with
#                   wrk; pool is its connection pool on unbuffered PostgreSQL, bench/pool_load.sh)
#   --out FILE      the report (default docs/BENCHMARKS.md); raw JSON lines go next to the build
#
# What it needs, and what it does when something is missing:
#   * the C side is built here (build/bench-release, Release, -DTRIFLE_BUILD_BENCH=ON);
#   * the Go side (bench/go) needs github.com/trifle-io/trifle_stats_go: from TRIFLE_GO_SRC (a
#     directory holding its source), else ~/.cache/trifle/trifle_stats_go, else the Go module
#     proxy; without it the Go columns read "n/a" and the report says why;
#   * servers: TRIFLE_TEST_URI_POSTGRES/_REDIS/_MONGO/_MYSQL when set, otherwise scripts/test-servers.sh
#     starts throw-away ones (stopped again at the end). A backend gets its rows when its driver
#     plugin was built and its server answers; the report lists the ones left out and why;
#   * raw limits: redis-benchmark (pipelined HINCRBYFLOAT), pgbench (batched upserts, -f), and
#     bench/raw_sqlite.c / bench/raw_mongo.c / bench/raw_mysql.c.
# Progress is drawn on stderr, on one line, only when stderr is a terminal.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$SRC/build/bench-release
OUT=$SRC/docs/BENCHMARKS.md
REPS=3
QUICK=0
ONLY=sqlite,postgres,redis,mongo,mysql,http,pool
COMMAND=$(printf 'bench/run.sh %s' "$*" | sed 's/ *$//')

while (($#)); do
    case $1 in
    --reps) REPS=${2:?--reps needs a number}; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --only) ONLY=${2:?--only needs a list}; shift 2 ;;
    --out) OUT=${2:?--out needs a file}; shift 2 ;;
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) printf 'run.sh: unknown argument %s (see --help)\n' "$1" >&2; exit 2 ;;
    esac
done
[[ $REPS =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --reps must be a positive integer" >&2; exit 2; }

TTY=0
[[ -t 2 ]] && TTY=1
STARTED=$(date +%s)
say() { # the progress line, redrawn in place; nothing when stderr is not a terminal
    ((TTY)) || return 0
    printf '\r\033[K[%3ds] %s' "$(($(date +%s) - STARTED))" "$*" >&2
}
note() { ((TTY)) && printf '\r\033[K' >&2; printf 'run.sh: %s\n' "$*" >&2; }

mkdir -p "$BUILD"
RESULTS=$BUILD/results.jsonl
META=$BUILD/meta.jsonl
WORK=$BUILD/work
: >"$RESULTS"
: >"$META"
rm -rf "$WORK"
mkdir -p "$WORK"

meta() { # meta KEY VALUE: facts for the report
    python3 -c 'import json,sys; print(json.dumps({"key":sys.argv[1],"value":sys.argv[2]}))' "$1" "$2" >>"$META"
}

# ---- build ------------------------------------------------------------------------------------
say "building the C side (Release)"
cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRIFLE_BUILD_BENCH=ON \
    -DTRIFLE_BUILD_TESTS=OFF -DTRIFLE_BUILD_SERVER=ON -DTRIFLE_BUILD_CLI=ON >"$BUILD/cmake.log" 2>&1 ||
    { cat "$BUILD/cmake.log" >&2; exit 1; }
cmake --build "$BUILD" -j2 >"$BUILD/build.log" 2>&1 || { tail -40 "$BUILD/build.log" >&2; exit 1; }
CB=$BUILD/bench/trifle-bench

say "building the Go side"
GO_BIN=$BUILD/go/trifle-bench-go
GO_WHY=""
GO_SRC_USED=""
rm -rf "$BUILD/go"
mkdir -p "$BUILD/go"
cp "$SRC/bench/go/go.mod" "$SRC/bench/go/main.go" "$BUILD/go/"
if ! command -v go >/dev/null; then
    GO_WHY="no go toolchain on PATH"
else
    gosrc=${TRIFLE_GO_SRC:-$HOME/.cache/trifle/trifle_stats_go}
    if [[ -f $gosrc/go.mod ]]; then
        (cd "$BUILD/go" && go mod edit -replace "github.com/trifle-io/trifle_stats_go=$gosrc")
        GO_SRC_USED="local copy in $gosrc: $(tr '\n' ' ' <"$gosrc/SOURCE.txt" 2>/dev/null | sed 's/ *Copied verbatim.*//' | cut -c1-400 || true)"
    elif (cd "$BUILD/go" && GOFLAGS=-mod=mod go get github.com/trifle-io/trifle_stats_go@latest) \
        >"$BUILD/go/get.log" 2>&1; then
        GO_SRC_USED="Go module proxy: $(cd "$BUILD/go" && go list -m github.com/trifle-io/trifle_stats_go)"
    else
        GO_WHY="trifle_stats_go is not available: the Go module proxy answered: $(grep -m1 -o 'reading.*\|server response.*' "$BUILD/go/get.log" | head -1)"
    fi
    if [[ -z $GO_WHY ]] && ! (cd "$BUILD/go" && GOFLAGS=-mod=mod go mod tidy && go build -o "$GO_BIN" .) \
        >"$BUILD/go/build.log" 2>&1; then
        GO_WHY="the Go side did not build: $(tail -3 "$BUILD/go/build.log" | tr '\n' ' ')"
    fi
fi
if [[ -n $GO_WHY ]]; then
    note "$GO_WHY"
    GO_BIN=""
fi
meta go_source "${GO_SRC_USED:-}"
meta go_missing "$GO_WHY"
meta go_version "$(go version 2>/dev/null || echo none)"

# ---- servers ----------------------------------------------------------------------------------
OWN_SERVERS=""
cleanup() {
    if [[ -n $OWN_SERVERS ]]; then
        "$SRC/scripts/test-servers.sh" stop "$OWN_SERVERS" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
want() { [[ ,$ONLY, == *,$1,* ]]; }
if { want postgres || want redis || want mongo || want mysql; } &&
    [[ -z ${TRIFLE_TEST_URI_POSTGRES:-}${TRIFLE_TEST_URI_REDIS:-}${TRIFLE_TEST_URI_MONGO:-}${TRIFLE_TEST_URI_MYSQL:-} ]]; then
    say "starting throw-away servers (scripts/test-servers.sh)"
    OWN_SERVERS=$BUILD/servers
    if "$SRC/scripts/test-servers.sh" start "$OWN_SERVERS" >"$BUILD/servers.log" 2>&1; then
        # shellcheck disable=SC1091
        . "$OWN_SERVERS/env.sh"
    else
        note "test servers did not start (see $BUILD/servers.log); only sqlite runs"
    fi
fi

plugin() { [[ -f $BUILD/drivers/trifle_$1.so ]]; }
BACKENDS=()
skip() { meta "skipped" "$1: $2"; note "skipping $1: $2"; }
for b in sqlite postgres redis mongo mysql; do
    want "$b" || continue
    if ! plugin "$b"; then
        skip "$b" "its driver plugin (trifle_$b.so) is not built in this tree yet"
        continue
    fi
    case $b in
    postgres) [[ -n ${TRIFLE_TEST_URI_POSTGRES:-} ]] && psql "$TRIFLE_TEST_URI_POSTGRES" -qAtc 'SELECT 1' >/dev/null 2>&1 ||
        { skip "$b" "no PostgreSQL server answers"; continue; } ;;
    redis) [[ -n ${TRIFLE_TEST_URI_REDIS:-} ]] && redis-cli -u "$TRIFLE_TEST_URI_REDIS" ping >/dev/null 2>&1 ||
        { skip "$b" "no Redis server answers"; continue; } ;;
    mongo) [[ -n ${TRIFLE_TEST_URI_MONGO:-} ]] ||
        { skip "$b" "no MongoDB-wire server (TRIFLE_TEST_URI_MONGO unset)"; continue; } ;;
    mysql) [[ -n ${TRIFLE_TEST_URI_MYSQL:-} ]] ||
        { skip "$b" "no MySQL/MariaDB server (TRIFLE_TEST_URI_MYSQL unset)"; continue; } ;;
    esac
    BACKENDS+=("$b")
done

# ---- measurement helpers ------------------------------------------------------------------------
# run TAGS... -- COMMAND...: runs one measurement, appends its JSON line with the tags merged in.
run() {
    local tags=() out
    while [[ $1 != -- ]]; do tags+=("$1"); shift; done
    shift
    if ! out=$("$@" 2>"$WORK/last.err"); then
        note "FAILED: $* : $(tail -2 "$WORK/last.err" | tr '\n' ' ')"
        python3 - "${tags[@]}" "$(tail -2 "$WORK/last.err" | tr '\n' ' ')" >>"$RESULTS" <<'EOF'
import json, sys
row = dict(t.split("=", 1) for t in sys.argv[1:-1])
row["failed"] = sys.argv[-1]
print(json.dumps(row))
EOF
        return 0
    fi
    printf '%s\n' "$out" | tail -1 | python3 -c '
import json, sys
row = json.loads(sys.stdin.read())
row.update(dict(t.split("=", 1) for t in sys.argv[1:]))
print(json.dumps(row))' "${tags[@]}" >>"$RESULTS"
}

# url BACKEND NAME: a fresh table / prefix / collection (or file) for one run
url() {
    local b=$1 name=$2
    case $b in
    sqlite) echo "sqlite:$WORK/$name.db" ;;
    postgres) echo "$TRIFLE_TEST_URI_POSTGRES?table=$name" ;;
    redis) echo "$TRIFLE_TEST_URI_REDIS?prefix=$name" ;;
    mongo) echo "$TRIFLE_TEST_URI_MONGO?collection=$name" ;;
    mysql) echo "$TRIFLE_TEST_URI_MYSQL?table=$name" ;;
    esac
}
fresh() { echo "b$(date +%s)${RANDOM}_$1"; } # runs in a subshell: no counter

# Per backend: N for unbuffered track (C, Go), buffered track (C, Go), flush (C, Go), the raw tool,
# and the values repetitions. Chosen so the whole run stays near 15 minutes on a 2-core machine
# (FerretDB upserts 100-1,000 documents/s there, depending on the load, hence its small N).
declare -A N_UNBUF_C=([sqlite]=2000 [postgres]=1000 [redis]=2000 [mongo]=100 [mysql]=1000)
declare -A N_UNBUF_GO=([sqlite]=1000 [postgres]=300 [redis]=500 [mongo]=60 [mysql]=300)
declare -A N_BUF_C=([sqlite]=200000 [postgres]=100000 [redis]=100000 [mongo]=500 [mysql]=100000)
declare -A N_BUF_GO=([sqlite]=1000 [postgres]=300 [redis]=500 [mongo]=60 [mysql]=300)
declare -A N_FLUSH_C=([sqlite]=100000 [postgres]=50000 [redis]=30000 [mongo]=500 [mysql]=50000)
declare -A N_FLUSH_GO=([sqlite]=1000 [postgres]=300 [redis]=500 [mongo]=60 [mysql]=300)
declare -A N_RAW=([sqlite]=200000 [postgres]=5 [redis]=1000000 [mongo]=2000 [mysql]=100000)
# values: timed calls per process (after one warm-up); upstream's buckets per call (its time is
# linear in them, one query per bucket; on FerretDB a whole year takes ~2 minutes per call)
declare -A VALUES_REPS=([sqlite]=3 [postgres]=3 [redis]=3 [mongo]=1 [mysql]=3)
declare -A GO_VALUES_BUCKETS=([sqlite]=8760 [postgres]=8760 [redis]=8760 [mongo]=240 [mysql]=8760)
N_INPROC_C=900000
N_INPROC_GO=50000
N_JOURNAL_ALWAYS=5000
N_MEMORY=1000000
if ((QUICK)); then
    for b in sqlite postgres redis mongo mysql; do
        N_UNBUF_C[$b]=$((N_UNBUF_C[$b] / 10 + 1)); N_UNBUF_GO[$b]=$((N_UNBUF_GO[$b] / 10 + 1))
        N_BUF_C[$b]=$((N_BUF_C[$b] / 10 + 1)); N_BUF_GO[$b]=$((N_BUF_GO[$b] / 10 + 1))
        N_FLUSH_C[$b]=$((N_FLUSH_C[$b] / 10 + 1)); N_FLUSH_GO[$b]=$((N_FLUSH_GO[$b] / 10 + 1))
    done
    N_RAW=([sqlite]=20000 [postgres]=2 [redis]=100000 [mongo]=100 [mysql]=10000)
    N_INPROC_C=200000
    N_INPROC_GO=5000
    N_JOURNAL_ALWAYS=500
    N_MEMORY=100000
fi

declare -A RAW_CLIENT=([mongo]=libmongoc-1.0 [mysql]=libmariadb)
raw_limit() { # raw_limit BACKEND REP
    local b=$1 rep=$2
    case $b in
    sqlite) run backend=sqlite rep="$rep" -- "$BUILD/bench/trifle-bench-raw-sqlite" "$WORK/raw.db" "${N_RAW[sqlite]}" ;;
    postgres)
        if ! command -v pgbench >/dev/null; then
            meta "raw_missing" "postgres: pgbench is not installed"
            return 0
        fi
        psql "$TRIFLE_TEST_URI_POSTGRES" -qc "DROP TABLE IF EXISTS raw_upsert; CREATE TABLE raw_upsert (key VARCHAR(255) PRIMARY KEY, data JSONB NOT NULL DEFAULT '{}'::jsonb);" >/dev/null 2>&1
        pgbench -n -f "$SRC/bench/pgbench_upsert.sql" -T "${N_RAW[postgres]}" -c 1 "$TRIFLE_TEST_URI_POSTGRES" \
            >"$WORK/pgbench.out" 2>&1 || true
        python3 - "$rep" "${N_RAW[postgres]}" "$WORK/pgbench.out" >>"$RESULTS" <<'EOF'
import json, re, sys
text = open(sys.argv[3], encoding="utf-8", errors="replace").read()
m = re.search(r"tps = ([0-9.]+)", text)
row = {"bench": "raw", "backend": "postgres", "rep": sys.argv[1],
       "tool": "pgbench -n -f bench/pgbench_upsert.sql -c 1 -T %s (1,000-row upserts)" % sys.argv[2]}
if m:
    row["rows_per_s"] = float(m.group(1)) * 1000
else:
    row["failed"] = text.strip().splitlines()[-1] if text.strip() else "pgbench failed"
print(json.dumps(row))
EOF
        psql "$TRIFLE_TEST_URI_POSTGRES" -qc "DROP TABLE IF EXISTS raw_upsert" >/dev/null 2>&1 || true ;;
    redis)
        if ! command -v redis-benchmark >/dev/null; then
            meta "raw_missing" "redis: redis-benchmark is not installed"
            return 0
        fi
        local host port
        host=$(python3 -c 'import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p.hostname or "127.0.0.1", p.port or 6379)' "$TRIFLE_TEST_URI_REDIS")
        read -r host port <<<"$host"
        redis-benchmark -h "$host" -p "$port" -c 1 -P 100 -n "${N_RAW[redis]}" -r 100000 --csv \
            HINCRBYFLOAT "rawbench:__rand_int__" f 1.5 >"$WORK/rb.out" 2>&1 || true
        python3 - "$rep" "${N_RAW[redis]}" "$WORK/rb.out" >>"$RESULTS" <<'EOF'
import csv, json, sys
text = open(sys.argv[3], encoding="utf-8", errors="replace").read()
rows = [r for r in csv.reader(text.splitlines()) if r and r[0].startswith("HINCRBYFLOAT")]
row = {"bench": "raw", "backend": "redis", "rep": sys.argv[1],
       "tool": "redis-benchmark -c 1 -P 100 -n %s HINCRBYFLOAT" % sys.argv[2]}
if rows:
    row["rows_per_s"] = float(rows[-1][1])
else:
    row["failed"] = "redis-benchmark printed no result"
print(json.dumps(row))
EOF
        redis-cli -u "$TRIFLE_TEST_URI_REDIS" --scan --pattern 'rawbench:*' | xargs -r -n 1000 redis-cli -u "$TRIFLE_TEST_URI_REDIS" del >/dev/null 2>&1 || true ;;
    mongo | mysql)
        # trifle-bench-raw-<backend>, built only when its client library is found
        local tool=$BUILD/bench/trifle-bench-raw-$b uri=TRIFLE_TEST_URI_${b^^}
        if [[ -x $tool ]]; then
            run backend="$b" rep="$rep" -- "$tool" "${!uri}" "${N_RAW[$b]}"
        else
            meta "raw_missing" "$b: trifle-bench-raw-$b was not built (${RAW_CLIENT[$b]} missing)"
        fi ;;
    esac
}

# ---- machine facts ------------------------------------------------------------------------------
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta command "$COMMAND"
meta nproc "$(nproc)"
meta cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
meta memory "$(free -h | awk '/^Mem:/ {print $2}')"
meta kernel "$(uname -sr)"
meta load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
meta commit "$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$SRC" diff --quiet 2>/dev/null || echo ' (modified)')"
meta cc "$(cc --version | head -1)"
meta reps "$REPS"
meta quick "$QUICK"
meta backends "${BACKENDS[*]:-}"

# ---- in-process buffered track, memory ----------------------------------------------------------
say "in-process buffered track: trifle-c, $N_INPROC_C calls x 3 rounds"
for ((r = 1; r <= REPS; r++)); do
    say "in-process buffered track (rep $r/$REPS)"
    run rep="$r" -- "$CB" inproc "$N_INPROC_C" --rounds 3
    [[ -n $GO_BIN ]] && run rep="$r" -- "$GO_BIN" inproc "$N_INPROC_GO" --rounds 3
    run rep="$r" -- "$CB" inproc "$N_INPROC_C" --rounds 3 --threads 2
    run rep="$r" -- "$CB" inproc "$N_INPROC_C" --rounds 3 --threads 4
    for js in none interval:5; do
        run rep="$r" -- "$CB" inproc "$N_INPROC_C" --rounds 3 --journal "$js"
    done
    # always: one fdatasync per call in one thread, so far fewer calls
    run rep="$r" -- "$CB" inproc "$N_JOURNAL_ALWAYS" --rounds 3 --journal always
done
say "memory of $N_MEMORY buffered buckets"
run -- "$CB" memory "$N_MEMORY"
if [[ -n $GO_BIN ]]; then
    calls=$(tail -1 "$RESULTS" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read()).get("calls", 0))')
    ((calls > 0)) && run -- "$GO_BIN" memory "$calls"
fi

# ---- per backend --------------------------------------------------------------------------------
for b in "${BACKENDS[@]}"; do
    for ((r = 1; r <= REPS; r++)); do
        say "$b: unbuffered track (rep $r/$REPS)"
        run backend="$b" rep="$r" -- "$CB" track "$(url "$b" "$(fresh cu)")" "${N_UNBUF_C[$b]}"
        [[ -n $GO_BIN ]] && run backend="$b" rep="$r" -- "$GO_BIN" track "$(url "$b" "$(fresh gu)")" "${N_UNBUF_GO[$b]}"
        say "$b: buffered track (rep $r/$REPS)"
        run backend="$b" rep="$r" -- "$CB" track "$(url "$b" "$(fresh cb)")" "${N_BUF_C[$b]}" --buffered
        [[ -n $GO_BIN ]] && run backend="$b" rep="$r" -- "$GO_BIN" track "$(url "$b" "$(fresh gb)")" "${N_BUF_GO[$b]}" --buffered
        say "$b: sustained flush (rep $r/$REPS)"
        run backend="$b" rep="$r" -- "$CB" flush "$(url "$b" "$(fresh cf)")" "${N_FLUSH_C[$b]}"
        [[ -n $GO_BIN ]] && run backend="$b" rep="$r" -- "$GO_BIN" flush "$(url "$b" "$(fresh gf)")" "${N_FLUSH_GO[$b]}"
        say "$b: raw limit (rep $r/$REPS)"
        raw_limit "$b" "$r"
    done
    say "$b: filling one year of 1h buckets"
    yname=$(fresh year)
    yurl=$(url "$b" "$yname")
    if [[ $b == mongo && -x $BUILD/bench/trifle-bench-raw-mongo ]]; then
        # FerretDB upserts slow down as the collection grows: insert the same documents directly
        run backend="$b" -- "$BUILD/bench/trifle-bench-raw-mongo" "$TRIFLE_TEST_URI_MONGO" --fill-year "$yname"
    else
        run backend="$b" -- "$CB" fill-year "$yurl"
    fi
    for ((r = 1; r <= REPS; r++)); do
        say "$b: values over 8,760 buckets (rep $r/$REPS)"
        run backend="$b" rep="$r" -- "$CB" values "$yurl" --reps "${VALUES_REPS[$b]}"
        [[ -n $GO_BIN ]] && run backend="$b" rep="$r" -- "$GO_BIN" values "$yurl" --reps "${VALUES_REPS[$b]}" \
            --buckets "${GO_VALUES_BUCKETS[$b]}"
    done
    # the data of this backend's runs is left in the throw-away servers / build dir
done

# ---- HTTP load: trifle serve on buffered SQLite, wrk over keep-alive ---------------------------
if want http; then
    if ! command -v wrk >/dev/null; then
        skip http "wrk is not installed (apt-get install wrk)"
    elif [[ ! -x $BUILD/trifle ]]; then
        skip http "the trifle command was not built"
    else
        # the write-ahead journal off, with the server's default (interval:5) and with `always`,
        # interleaved per repetition so a change in the machine's load hits all alike; `always`
        # once more with 32 server threads: a worker waits in the group commit, so with 2 threads
        # at most 2 requests share an fdatasync
        for ((r = 1; r <= REPS; r++)); do
            for v in off:2 interval:2 always:2 always:32; do
                j=${v%:*} t=${v#*:}
                say "http: wrk POST /api/v1/metrics, journal $j, $t threads (rep $r/$REPS)"
                # its JSON line is the last line of its stdout, which is what run() records
                run bench=http impl=c rep="$r" journal="$j" server_threads="$t" -- \
                    env BENCH_JSON=/dev/stdout JOURNAL="$j" SERVER_THREADS="$t" \
                    "$SRC/bench/http_load.sh" "$BUILD/trifle"
            done
        done
        # kill -9 under load (tests/http/test_crash.py): acknowledged vs stored per backend; the
        # summary is recorded even when the test fails, so a loss shows in the report
        say "http: kill -9 cycles (tests/http/test_crash.py)"
        rm -f "$WORK/crash.json"
        crash_ok=true
        TRIFLE_CRASH_SUMMARY=$WORK/crash.json python3 "$SRC/tests/http/test_crash.py" "$BUILD/trifle" \
            >"$WORK/crash.log" 2>&1 || crash_ok=false
        if [[ -s $WORK/crash.json ]]; then
            python3 - "$WORK/crash.json" "$crash_ok" >>"$RESULTS" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1], encoding="utf-8"))
for name, b in doc["backends"].items():
    row = {k: v for k, v in b.items() if k != "runs"}
    row.update(bench="crash", backend=name, threads=doc["threads"], passed=sys.argv[2] == "true")
    print(json.dumps(row))
EOF
        else
            note "the kill -9 test recorded nothing (see $WORK/crash.log)"
        fi
    fi
fi

# ---- the connection pool: trifle serve, unbuffered PostgreSQL, connections 1 and 4 ------------
if want pool; then
    if ! command -v wrk >/dev/null; then
        skip pool "wrk is not installed (apt-get install wrk)"
    elif [[ ! -x $BUILD/trifle ]]; then
        skip pool "the trifle command was not built"
    elif [[ -z ${TRIFLE_TEST_URI_POSTGRES:-} ]]; then
        skip pool "no PostgreSQL server (TRIFLE_TEST_URI_POSTGRES)"
    else
        # POSTs spread over 64 keys (with and without the system key, whose one row per bucket
        # every track updates), and GETs of 8,760 buckets from 8 clients; pools interleaved per
        # repetition so a change in the machine's load hits both alike
        for ((r = 1; r <= REPS; r++)); do
            for spec in write:true write:false read:true; do
                mode=${spec%:*} st=${spec#*:}
                for n in 1 4; do
                    say "pool: $mode, system tracking $st, connections $n (rep $r/$REPS)"
                    run bench=pool impl=c rep="$r" system_tracking="$st" -- \
                        env BENCH_JSON=/dev/stdout DRIVER="$TRIFLE_TEST_URI_POSTGRES" POOL="$n" \
                        MODE="$mode" SYSTEM_TRACKING="$st" "$SRC/bench/pool_load.sh" "$BUILD/trifle"
                done
            done
        done
    fi
fi

meta load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
meta seconds "$(($(date +%s) - STARTED))"
say "writing $OUT"
python3 "$SRC/bench/report.py" "$RESULTS" "$META" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
((TTY)) && printf '\r\033[K' >&2
printf 'run.sh: wrote %s in %ds (raw results: %s)\n' "$OUT" "$(($(date +%s) - STARTED))" "$RESULTS" >&2
