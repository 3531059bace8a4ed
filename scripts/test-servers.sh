#!/usr/bin/env bash
# test-servers.sh: throw-away PostgreSQL, Redis, FerretDB and MariaDB servers for trifle-c's tests.
#
# Usage: scripts/test-servers.sh start|stop|status|env [DIR]
#   start   start the servers (those already running and answering are kept), wait until each
#           answers, write DIR/env.sh; a half-started previous run is cleaned up first
#   stop    stop the servers started in DIR and remove DIR
#   status  show each server; exit 0 when all answer, 3 otherwise
#   env     print DIR/env.sh
# DIR defaults to build/test-servers in the source tree. Every server listens on 127.0.0.1 only,
# on a free port, with its data under DIR; nothing system-wide (the Debian cluster, services) is
# used or touched. Source DIR/env.sh to get the TRIFLE_TEST_URI_* variables the tests read.
# Each server is one file under scripts/servers/ (a new one: a file there, and a line in server_fn
# and state_name below).
#
# Environment:
#   TRIFLE_TEST_SERVERS         which servers (default "postgres redis mongo mysql redis-cluster")
#   TRIFLE_TEST_SERVER_TIMEOUT  seconds to wait for each server (default 60)
#   TRIFLE_PG_PORT, TRIFLE_REDIS_PORT, TRIFLE_REDIS_AUTH_PORT, TRIFLE_MONGO_PORT,
#   TRIFLE_MYSQL_PORT           fixed ports instead of free ones
#   TRIFLE_FERRETDB             ferretdb binary (default: ~/.cache/trifle/bin/ferretdb, then PATH)
#   TRIFLE_FERRETDB_HANDLER     FerretDB backend: postgresql (default when postgres is started too:
#                               database "ferretdb" of the test cluster) or sqlite (files in DIR)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(dirname "$SCRIPT_DIR")
SERVERS=${TRIFLE_TEST_SERVERS:-postgres redis mongo mysql redis-cluster}
TIMEOUT=${TRIFLE_TEST_SERVER_TIMEOUT:-60}
MARKER=.trifle-test-servers

# One file per server under scripts/servers/ (its start, stop, ready and env functions), plus the
# helpers they share. All are sourced: stop ends every kind, whatever SERVERS says.
# shellcheck source=servers/common.sh
. "$SCRIPT_DIR/servers/common.sh"
for f in postgres redis redis-cluster mongo mysql; do
    # shellcheck disable=SC1090
    . "$SCRIPT_DIR/servers/$f.sh"
done
unset f

# ---- commands ------------------------------------------------------------------------------------------

server_fn() { # maps a name of $SERVERS to its function prefix
    case $1 in
    postgres) echo pg ;;
    redis) echo redis ;;
    mongo) echo mongo ;;
    mysql) echo mysql ;;
    redis-cluster) echo rcluster ;;
    *) die "unknown server in TRIFLE_TEST_SERVERS: $1 (postgres, redis, mongo, mysql, redis-cluster)" ;;
    esac
}

state_name() { # the file name stem of a server's PID and port files in DIR
    case $1 in
    postgres) echo postgres ;;
    redis) echo redis ;;
    mongo) echo ferretdb ;;
    mysql) echo mysql ;;
    redis-cluster) echo redis-cluster ;;
    esac
}

write_env() {
    local name tmp=$DIR/env.sh.tmp
    {
        printf '# Written by scripts/test-servers.sh start; source it before running the tests.\n'
        printf "export TRIFLE_TEST_SERVERS_DIR='%s'\n" "$DIR"
        for name in $SERVERS; do "$(server_fn "$name")_env"; done
    } >"$tmp"
    mv -f "$tmp" "$DIR/env.sh"
}

cmd_start() {
    local name fn t0 restarted=
    if [[ -e $DIR && ! -e $DIR/$MARKER ]]; then
        [[ -d $DIR && -z $(ls -A "$DIR") ]] || die "$DIR exists and was not made by this script; choose another DIR"
    fi
    for name in $SERVERS; do server_fn "$name" >/dev/null; done
    if [[ " $SERVERS " == *" mongo "* ]]; then
        ferretdb_handler >/dev/null # fails early on a bad TRIFLE_FERRETDB_HANDLER
    fi
    mkdir -p "$DIR"
    : >"$DIR/$MARKER"
    rm -f "$DIR/env.sh"
    for name in $SERVERS; do
        fn=$(server_fn "$name")
        if [[ $name == mongo && -n $restarted && $(cat "$DIR/ferretdb.handler" 2>/dev/null) == postgresql ]]; then
            : # its PostgreSQL backend was just replaced: start it afresh
        elif [[ $name == mongo && -s $DIR/ferretdb.handler &&
            $(cat "$DIR/ferretdb.handler") != "$(ferretdb_handler)" ]]; then
            : # another handler was asked for
        elif "${fn}_ready"; then
            note "$name: already running on 127.0.0.1:$(cat "$DIR/$(state_name "$name").port")"
            continue
        fi
        "${fn}_stop" # leftovers of a half-started run
        t0=$(date +%s%N)
        "${fn}_start"
        [[ $name != postgres ]] || restarted=1
        note "$name: started in $((($(date +%s%N) - t0) / 1000000)) ms"
    done
    write_env
    note "environment: $DIR/env.sh"
    sed -n 's/^export \(TRIFLE_TEST_URI_[A-Z_]*\)=.*/  \1/p' "$DIR/env.sh"
}

cmd_stop() {
    local name
    if [[ ! -e $DIR ]]; then
        note "nothing to stop in $DIR"
        return
    fi
    [[ -e $DIR/$MARKER ]] || die "$DIR was not made by this script; not touching it"
    for name in postgres redis mongo mysql redis-cluster; do "$(server_fn "$name")_stop"; done
    rm -rf "$DIR"
    note "stopped; removed $DIR"
}

cmd_status() {
    local name fn file all=0
    for name in $SERVERS; do
        fn=$(server_fn "$name")
        file=$(state_name "$name")
        if [[ -e $DIR/$MARKER ]] && "${fn}_ready"; then
            printf '%-9s up    pid %s, 127.0.0.1:%s\n' "$name" "$(cat "$DIR/$file.pid")" "$(cat "$DIR/$file.port")"
        else
            printf '%-9s down\n' "$name"
            all=3
        fi
    done
    return "$all"
}

usage() { sed -n '2,/^set -/{/^set -/d;s/^# \{0,1\}//;p;}' "$0"; }

cmd=${1:-}
DIR=${2:-$SRC_DIR/build/test-servers}
[[ $DIR == /* ]] || DIR=$PWD/$DIR
DIR=${DIR%/}
case $cmd in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cat "$DIR/env.sh" ;;
-h | --help | help) usage ;;
*) usage >&2; exit 2 ;;
esac
