# Sourced by bench/http_load.sh and bench/pool_load.sh: one `trifle serve` in a work directory.
# The caller sets BIN (the trifle binary), TOKEN (the bench token) and SERVER_THREADS.

# bench_work NAME: makes the work directory WORK (/tmp/NAME.XXXXXX, with data/ in it) and traps
# EXIT to stop the server and remove WORK (BENCH_KEEP=1 keeps it and prints where it is).
bench_work() {
    WORK=$(mktemp -d "/tmp/$1.XXXXXX")
    mkdir -p "$WORK/data"
    SERVER_PID=
    trap bench_cleanup EXIT
}

bench_cleanup() {
    bench_stop_server
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "work directory: $WORK"; else rm -rf "$WORK"; fi
}

# bench_config: writes $WORK/trifle.yaml: the listener on a free loopback port with
# SERVER_THREADS threads and data_dir data, then the limits: and sources: sections on stdin,
# then the bench token (TOKEN, reads and writes source main) and stats without persist.
bench_config() {
    local sha
    sha=$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)
    {
        printf 'http:\n  listen: "127.0.0.1:0"\n  threads: %s\ndata_dir: data\n' "$SERVER_THREADS"
        cat
        printf 'tokens:\n  - name: bench\n    sha256: "%s"\n' "$sha"
        printf '    grants: [{source: main, read: true, write: true}]\nstats:\n  persist: false\n'
    } >"$WORK/trifle.yaml"
}

# bench_serve TRIES: starts "$BIN" serve with $WORK/trifle.yaml (stderr in $WORK/server.log),
# sets SERVER_PID, and sets ADDR to the host:port of its "listening on" line, polling every
# 0.05 s up to TRIES times; exits 1 with the log when the server dies or never listens.
bench_serve() {
    "$BIN" serve --config "$WORK/trifle.yaml" 2>"$WORK/server.log" &
    SERVER_PID=$!
    ADDR=
    for _ in $(seq 1 "$1"); do
        ADDR=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$WORK/server.log" | head -1)
        [ -n "$ADDR" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
        sleep 0.05
    done
    [ -n "$ADDR" ] || { echo "server did not start" >&2; cat "$WORK/server.log" >&2; exit 1; }
}

# bench_stop_server: SIGTERM to the server if it still runs, then waits for it (for the trap; a
# stop whose status matters is the caller's).
bench_stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
