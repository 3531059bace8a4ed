# shellcheck shell=bash
# scripts/servers/mongo.sh -- FerretDB, the MongoDB wire protocol over PostgreSQL or SQLite
# (TRIFLE_TEST_URI_MONGO, _BADPASS, TRIFLE_TEST_SERVER_FLAVOR_MONGO).
# Sourced by scripts/test-servers.sh (after common.sh), not run on its own. Defines
# mongo_start, mongo_stop, mongo_ready (exit 0 when it answers) and mongo_env (prints export lines for
# env.sh); they read DIR (the state directory), TIMEOUT and SERVERS.

MONGO_DB=trifle_test

ferretdb_bin() {
    local f
    for f in "${TRIFLE_FERRETDB:-}" "${TRIFLE_TOOLS_BIN:-${HOME:-/root}/.cache/trifle/bin}/ferretdb" \
        "$(command -v ferretdb || true)"; do
        [[ -n $f && -x $f ]] && { printf '%s\n' "$f"; return; }
    done
    die "ferretdb not found (run scripts/install-deps.sh, or set TRIFLE_FERRETDB)"
}

# A real MongoDB wire handshake with nothing but bash: sends OP_MSG {ping: 1, $db: "admin"} and
# expects a reply containing the BSON element ok: 1.0 (double).
mongo_ping() {
    local port=$1
    timeout 5 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        # header: length 51, requestID 1, responseTo 0, opCode 2013 (OP_MSG); flags 0; section
        # kind 0; BSON {ping: int32 1, $db: "admin"} (30 bytes).
        printf "\x33\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\xdd\x07\x00\x00\x00\x00\x00\x00\x00\x1e\x00\x00\x00\x10ping\x00\x01\x00\x00\x00\x02\$db\x00\x06\x00\x00\x00admin\x00\x00" >&3
        dd bs=4096 count=1 <&3 2>/dev/null | od -An -v -tx1 | tr -d " \n" | grep -q 016f6b00000000000000f03f
    ' mongo_ping "$port"
}

mongo_ready() {
    local port
    port=$(cat "$DIR/ferretdb.port" 2>/dev/null) || return 1
    live_pid "$DIR/ferretdb.pid" "127.0.0.1:$port" >/dev/null || return 1
    mongo_ping "$port"
}

mongo_stop() {
    local port pid
    port=$(cat "$DIR/ferretdb.port" 2>/dev/null) || port=
    if [[ -n $port ]] && pid=$(live_pid "$DIR/ferretdb.pid" "127.0.0.1:$port"); then
        end_pid "$pid"
    fi
    sweep "$DIR/ferretdb"
    rm -rf "$DIR/ferretdb" "$DIR/ferretdb.pid" "$DIR/ferretdb.port" "$DIR/ferretdb.handler"
}

# The backend FerretDB stores into. postgresql is the default because the sqlite handler filters
# only in Go: every update scans the whole collection (about 60 us per stored document: 200 ms
# per update at 3,000 documents), while the postgresql handler pushes the filter down to
# PostgreSQL, where the GIN indexes of pg_start serve it (about 2-3 ms per update at any size).
# Both answer the same (drivers/mongo/README.md).
ferretdb_handler() {
    local h=${TRIFLE_FERRETDB_HANDLER:-}
    if [[ -z $h ]]; then
        h=sqlite
        [[ " $SERVERS " != *" postgres "* ]] || h=postgresql
    fi
    case $h in
    sqlite) ;;
    postgresql)
        [[ " $SERVERS " == *" postgres "* ]] ||
            die "TRIFLE_FERRETDB_HANDLER=postgresql needs postgres in TRIFLE_TEST_SERVERS"
        ;;
    *) die "TRIFLE_FERRETDB_HANDLER must be postgresql or sqlite, not: $h" ;;
    esac
    printf '%s\n' "$h"
}

mongo_start() {
    local bin port log pid handler rc=0
    local -a backend
    bin=$(ferretdb_bin)
    handler=$(ferretdb_handler)
    port=$(pick_port "${TRIFLE_MONGO_PORT:-}")
    log=$DIR/ferretdb.log
    mkdir -p "$DIR/ferretdb/data"
    : >"$log"
    printf '%s\n' "$port" >"$DIR/ferretdb.port"
    if [[ $handler == postgresql ]]; then
        # Its own database of the test cluster, so that the postgres driver's tests never see
        # FerretDB's tables; each MongoDB database becomes a schema there.
        backend=(--handler=postgresql --postgresql-url="postgres://$PG_USER:$(cat "$DIR/postgres.password")@127.0.0.1:$(cat "$DIR/postgres.port")/$PG_FERRET_DB")
    else
        # One SQLite file per MongoDB database, under data/.
        backend=(--handler=sqlite --sqlite-url="file:$DIR/ferretdb/data/")
    fi
    printf '%s\n' "$handler" >"$DIR/ferretdb.handler"
    # --debug-addr=- : no debug HTTP listener (its default port 8088 would clash between runs);
    # --state-dir: FerretDB writes state.json there (default: the current directory).
    setsid "$bin" "${backend[@]}" \
        --listen-addr="127.0.0.1:$port" --debug-addr=- --state-dir="$DIR/ferretdb" \
        --telemetry=disable --log-level=info </dev/null >>"$log" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$DIR/ferretdb.pid"
    wait_for "$pid" grep -qF "Listening on TCP 127.0.0.1:$port" "$log" || rc=$?
    ((rc == 0)) || die_log "$log" "FerretDB $( ((rc == 2)) && echo exited || echo 'did not listen') on 127.0.0.1:$port"
    wait_for "$pid" mongo_ping "$port" ||
        die_log "$log" "FerretDB does not answer a MongoDB ping on 127.0.0.1:$port within ${TIMEOUT}s"
}

mongo_env() {
    printf "export TRIFLE_TEST_URI_MONGO='mongodb://127.0.0.1:%s/%s'\n" "$(cat "$DIR/ferretdb.port")" "$MONGO_DB"
    # FerretDB runs without authentication; any credentials are refused with code 18
    # (AuthenticationFailed), which is what a "bad credentials" test needs.
    printf "export TRIFLE_TEST_URI_MONGO_BADPASS='mongodb://trifle:wrong@127.0.0.1:%s/%s'\n" "$(cat "$DIR/ferretdb.port")" "$MONGO_DB"
    printf "export TRIFLE_TEST_MONGO_SERVER='ferretdb-v1.24.2-%s'\n" "$(cat "$DIR/ferretdb.handler")"
    # trifle-conformance applies the [ferretdb-<handler>] lines of drivers/mongo/conformance.skip
    # (FerretDB's deviations, ERRATA B1-B3) only when told the flavor.
    printf "export TRIFLE_TEST_SERVER_FLAVOR_MONGO='ferretdb-%s'\n" "$(cat "$DIR/ferretdb.handler")"
}
