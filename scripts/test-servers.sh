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
PG_DB=trifle_test
PG_FERRET_DB=ferretdb
PG_USER=trifle
MONGO_DB=trifle_test
MY_DB=trifle_test
MY_USER=trifle

die() { printf 'test-servers: error: %s\n' "$*" >&2; exit 1; }
note() { printf 'test-servers: %s\n' "$*"; }

# Prints the last lines of a server log to stderr, then fails.
die_log() {
    local log=$1
    shift
    printf 'test-servers: error: %s\n' "$*" >&2
    if [[ -s $log ]]; then
        printf -- '--- last lines of %s ---\n' "$log" >&2
        tail -n 25 "$log" >&2
        printf -- '---\n' >&2
    fi
    exit 1
}

# ---- processes and ports ---------------------------------------------------------------------------

# Reads a PID file; prints the pid when that process is alive and its command line contains
# $2 (so a recycled pid of an unrelated process is never taken for ours).
live_pid() {
    local file=$1 needle=$2 pid cmd
    [[ -s $file ]] || return 1
    read -r pid <"$file" || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ $cmd == *"$needle"* ]] || return 1
    printf '%s\n' "$pid"
}

# Sends TERM to a pid, waits up to 10 s, then KILLs it. A process that leads its own process
# group (servers are started with setsid or daemonize) gets the signal for the whole group.
end_pid() {
    local pid=$1 i target stat
    target=$pid
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 0
    stat=${stat##*) }
    read -r _ _ i _ <<<"$stat"
    if [[ $i == "$pid" ]]; then
        target=-$pid
    fi
    kill -TERM -- "$target" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        # a child of this shell (a server started by this very run) lingers as a zombie
        [[ $(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 0
        sleep 0.1
    done
    kill -KILL -- "$target" 2>/dev/null || true
    return 0
}

# Ends every server process (postgres, redis-server, ferretdb, mariadbd) whose command line names $1 or
# whose working directory is inside $1: the leftovers of a run whose PID files were lost. Only
# processes tied to that path are touched, never another instance.
sweep() {
    local path=$1 d pid comm cwd cmd
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        comm=$(cat "$d/comm" 2>/dev/null) || continue
        case $comm in postgres | redis-server | ferretdb | mariadbd) ;; *) continue ;; esac
        cwd=$(readlink "$d/cwd" 2>/dev/null) || cwd=
        cwd=${cwd% (deleted)}
        cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || cmd=
        if [[ $cwd == "$path" || $cwd == "$path"/* || $cmd == *"$path/"* || $cmd == *"$path "* ]]; then
            end_pid "$pid"
        fi
    done
}

# True when a TCP port on this machine is in use in any state (listening, or connections that
# would make bind fail); read from /proc so that no extra tool is needed.
port_in_use() {
    local hex
    hex=$(printf ':%04X ' "$1")
    grep -qsF -- "$hex" /proc/net/tcp /proc/net/tcp6
}

# Prints a free loopback port in 20000..59999 (or $1 when given: then it must be free).
pick_port() {
    local fixed=${1:-} p i
    if [[ -n $fixed ]]; then
        port_in_use "$fixed" && die "port $fixed is in use"
        printf '%s\n' "$fixed"
        return
    fi
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        port_in_use "$p" || { printf '%s\n' "$p"; return; }
    done
    die "no free TCP port found"
}

# Waits until "$@" succeeds, at most $TIMEOUT seconds; fails early when pid $1 dies.
wait_for() {
    local pid=$1 deadline=$((SECONDS + TIMEOUT))
    shift
    until "$@" >/dev/null 2>&1; do
        [[ $pid == - ]] || kill -0 "$pid" 2>/dev/null || return 2
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# ---- PostgreSQL --------------------------------------------------------------------------------------

pg_bindir() {
    local d best=
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/initdb && -x $d/pg_ctl ]] && best=$d
    done
    [[ -n $best ]] || die "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin (run scripts/install-deps.sh)"
    printf '%s\n' "$best"
}

# postgres refuses to run as root: as root, its commands run as the unprivileged `postgres` user.
as_pg() {
    if ((EUID == 0)); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# The cluster lives in DIR/postgres unless the postgres user cannot reach DIR or the socket path
# would be too long for a unix socket (107 bytes); then in a private directory under /tmp,
# recorded in DIR/postgres.base so that stop removes it.
pg_base() {
    if [[ -s $DIR/postgres.base ]]; then
        cat "$DIR/postgres.base"
    else
        printf '%s\n' "$DIR/postgres"
    fi
}

# Chooses where the next cluster goes (see pg_base).
pg_choose_base() {
    local base=$DIR/postgres
    rm -f "$DIR/postgres.base"
    if ((${#base} > 80)) || { ((EUID == 0)) && ! runuser -u postgres -- test -x "$DIR"; }; then
        base=$(mktemp -d "${TMPDIR:-/tmp}/trifle-pg.XXXXXX")
        printf '%s\n' "$base" >"$DIR/postgres.base"
    fi
}

pg_ready() {
    local port
    port=$(cat "$DIR/postgres.port" 2>/dev/null) || return 1
    live_pid "$DIR/postgres.pid" "$(pg_base)/data" >/dev/null || return 1
    "$(pg_bindir)/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres -t 2
}

pg_psql() {
    local data port
    data=$(pg_base)/data
    port=$(cat "$DIR/postgres.port")
    psql -X -q -v ON_ERROR_STOP=1 -h "$data" -p "$port" -U postgres -d postgres "$@"
}

pg_stop() {
    local base data pid
    base=$(pg_base)
    data=$base/data
    # pg_ctl reads the postmaster's pid from the data directory; immediate: the data is thrown
    # away anyway.
    if [[ -s $data/postmaster.pid ]]; then
        as_pg "$(pg_bindir)/pg_ctl" stop -D "$data" -m immediate -w -t 20 >/dev/null 2>&1 || true
    fi
    if pid=$(live_pid "$DIR/postgres.pid" "$data"); then
        end_pid "$pid"
    fi
    sweep "$data"
    rm -rf "$base"
    rm -f "$DIR/postgres.pid" "$DIR/postgres.port" "$DIR/postgres.password" "$DIR/postgres.base"
}

pg_start() {
    local bin base data port log pw
    bin=$(pg_bindir)
    pg_choose_base
    base=$(pg_base)
    data=$base/data
    log=$base/postgres.log # where the postgres user can write
    port=$(pick_port "${TRIFLE_PG_PORT:-}")
    pw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')

    mkdir -p "$base"
    : >"$log"
    if ((EUID == 0)); then
        chown postgres: "$base" "$log"
    fi
    # trust only on the unix socket in the data directory (used here, for setup); TCP needs a
    # password (scram-sha-256), so a wrong one fails as it would in production.
    as_pg "$bin/initdb" -D "$data" -U postgres -E UTF8 --no-locale --no-sync \
        --auth-local=trust --auth-host=scram-sha-256 >>"$log" 2>&1 ||
        die_log "$log" "initdb failed"
    cat >>"$data/postgresql.conf" <<EOF

# trifle-c test cluster (scripts/test-servers.sh): loopback only, throw-away, fast.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$data'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 64MB
password_encryption = 'scram-sha-256'
log_min_messages = warning
log_min_error_statement = panic
EOF
    printf '%s\n' "$port" >"$DIR/postgres.port"
    as_pg "$bin/pg_ctl" start -D "$data" -l "$log" -w -t "$TIMEOUT" >/dev/null 2>&1 ||
        die_log "$log" "PostgreSQL did not start on 127.0.0.1:$port within ${TIMEOUT}s"
    head -n 1 "$data/postmaster.pid" >"$DIR/postgres.pid"
    wait_for - "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres -t 2 ||
        die_log "$log" "PostgreSQL does not answer on 127.0.0.1:$port"

    pg_psql >>"$log" 2>&1 <<EOF || die_log "$log" "creating role $PG_USER / database $PG_DB failed"
CREATE ROLE $PG_USER LOGIN PASSWORD '$pw';
CREATE DATABASE $PG_DB OWNER $PG_USER;
CREATE DATABASE $PG_FERRET_DB OWNER $PG_USER;
EOF
    pg_psql -d "$PG_FERRET_DB" -v db="$PG_FERRET_DB" >>"$log" 2>&1 <<'EOF' || die_log "$log" "preparing the FerretDB database failed"
-- FerretDB's postgresql handler pushes an equality filter down as `_jsonb->$1 @> $2`, which no
-- index FerretDB creates (btree on `_jsonb->'field'`) can serve: every update statement would
-- scan its whole collection (O(n) per update, 20,000 upserts into 10,000 documents: minutes). A
-- GIN index on the fields of the driver's filters (key, at) serves `@>` exactly, and custom plans
-- (the parameter $1 folded into the expression) let the planner match it. Only the plans change:
-- FerretDB keeps its own index list, and every answer stays the same.
ALTER DATABASE :"db" SET plan_cache_mode = force_custom_plan;
CREATE FUNCTION trifle_ferretdb_gin() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM pg_event_trigger_ddl_commands()
             WHERE command_tag = 'CREATE TABLE' AND object_type = 'table' LOOP
        -- FerretDB's own metadata table per database has no such fields
        CONTINUE WHEN r.object_identity LIKE '%._ferretdb_database_metadata';
        EXECUTE format('CREATE INDEX ON %s USING gin ((_jsonb->''key'') jsonb_path_ops) WITH (fastupdate = off)', r.object_identity);
        EXECUTE format('CREATE INDEX ON %s USING gin ((_jsonb->''at'') jsonb_path_ops) WITH (fastupdate = off)', r.object_identity);
    END LOOP;
END
$fn$;
CREATE EVENT TRIGGER trifle_ferretdb_gin ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
    EXECUTE FUNCTION trifle_ferretdb_gin();
EOF
    printf '%s\n' "$pw" >"$DIR/postgres.password"
    chmod 600 "$DIR/postgres.password"
    # The password is needed over TCP, and a wrong one is refused.
    PGPASSWORD=$pw psql -X -q -w -h 127.0.0.1 -p "$port" -U "$PG_USER" -d "$PG_DB" -c 'SELECT 1' \
        >/dev/null 2>>"$log" || die_log "$log" "cannot log in as $PG_USER over TCP"
    if PGPASSWORD=wrong-$pw psql -X -q -w -h 127.0.0.1 -p "$port" -U "$PG_USER" -d "$PG_DB" \
        -c 'SELECT 1' >/dev/null 2>&1; then
        die "PostgreSQL accepted a wrong password: check $data/pg_hba.conf"
    fi
}

pg_env() {
    local port pw
    port=$(cat "$DIR/postgres.port")
    pw=$(cat "$DIR/postgres.password")
    printf "export TRIFLE_TEST_URI_POSTGRES='postgres://%s:%s@127.0.0.1:%s/%s'\n" "$PG_USER" "$pw" "$port" "$PG_DB"
    printf "export TRIFLE_TEST_URI_POSTGRES_BADPASS='postgres://%s:wrong-%s@127.0.0.1:%s/%s'\n" "$PG_USER" "$pw" "$port" "$PG_DB"
    printf "export TRIFLE_TEST_PG_SOCKET_DIR='%s'\n" "$(pg_base)/data"
}

# ---- Redis ---------------------------------------------------------------------------------------------
# Two instances: "redis" without a password (TRIFLE_TEST_URI_REDIS, and TRIFLE_TEST_URI_REDIS_UNIX
# for its unix socket), and "redis-auth" with `requirepass` set to a random password
# (TRIFLE_TEST_URI_REDIS_AUTH, and _BADPASS with a wrong one), so that a password login, NOAUTH
# and a wrong password meet a real server.

redis_inst_ready() { # name
    local name=$1 port pw=
    port=$(cat "$DIR/$name.port" 2>/dev/null) || return 1
    live_pid "$DIR/$name.pid" ":$port" >/dev/null || return 1
    [[ ! -s $DIR/$name.password ]] || pw=$(cat "$DIR/$name.password")
    # REDISCLI_AUTH: the password stays out of the process list
    [[ $(REDISCLI_AUTH=$pw redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]
}

redis_ready() {
    redis_inst_ready redis && redis_inst_ready redis-auth
}

redis_inst_stop() { # name
    local name=$1 port pid
    port=$(cat "$DIR/$name.port" 2>/dev/null) || port=
    if [[ -n $port ]] && pid=$(live_pid "$DIR/$name.pid" ":$port"); then
        end_pid "$pid"
    fi
    sweep "$DIR/$name"
    rm -rf "${DIR:?}/$name" "$DIR/$name.pid" "$DIR/$name.port" "$DIR/$name.password" "$DIR/$name.conf"
}

redis_stop() {
    redis_inst_stop redis
    redis_inst_stop redis-auth
}

redis_inst_start() { # name fixed-port [password]
    local name=$1 port log pw=${3:-}
    local -a sock=()
    port=$(pick_port "$2")
    # The password-free instance also listens on a unix socket (TRIFLE_TEST_URI_REDIS_UNIX) when
    # its path fits in sun_path (107 bytes).
    if [[ -z $pw && ${#DIR} -lt 80 ]]; then
        sock=(--unixsocket "$DIR/$name/redis.sock" --unixsocketperm 700)
    fi
    log=$DIR/$name.log
    mkdir -p "$DIR/$name"
    : >"$log"
    printf '%s\n' "$port" >"$DIR/$name.port"
    # the configuration file (mode 600) carries the password, not the command line
    (umask 077 && : >"$DIR/$name.conf")
    if [[ -n $pw ]]; then
        printf 'requirepass %s\n' "$pw" >"$DIR/$name.conf"
        (umask 077 && printf '%s\n' "$pw" >"$DIR/$name.password")
    fi
    redis-server "$DIR/$name.conf" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --dir "$DIR/$name" --pidfile "$DIR/$name.pid" --logfile "$log" "${sock[@]}" \
        >>"$log" 2>&1 ||
        die_log "$log" "redis-server ($name) did not start"
    wait_for - test -s "$DIR/$name.pid" || die_log "$log" "redis-server ($name) wrote no PID file"
    wait_for - redis_inst_ready "$name" ||
        die_log "$log" "Redis ($name) does not answer PING on 127.0.0.1:$port within ${TIMEOUT}s"
}

redis_start() {
    command -v redis-server >/dev/null || die "redis-server not found (run scripts/install-deps.sh)"
    redis_inst_start redis "${TRIFLE_REDIS_PORT:-}"
    redis_inst_start redis-auth "${TRIFLE_REDIS_AUTH_PORT:-}" "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
}

redis_env() {
    local port pw
    printf "export TRIFLE_TEST_URI_REDIS='redis://127.0.0.1:%s/0'\n" "$(cat "$DIR/redis.port")"
    if [[ -S $DIR/redis/redis.sock ]]; then
        printf "export TRIFLE_TEST_URI_REDIS_UNIX='redis+unix://%s'\n" "$DIR/redis/redis.sock"
    fi
    port=$(cat "$DIR/redis-auth.port")
    pw=$(cat "$DIR/redis-auth.password")
    printf "export TRIFLE_TEST_URI_REDIS_AUTH='redis://:%s@127.0.0.1:%s/0'\n" "$pw" "$port"
    printf "export TRIFLE_TEST_URI_REDIS_BADPASS='redis://:wrong-%s@127.0.0.1:%s/0'\n" "$pw" "$port"
}

# ---- Redis Cluster -----------------------------------------------------------------------------------
# Three masters (redis-cluster/0..2), each `cluster-enabled yes` on its own free loopback port, joined
# with `redis-cli --cluster create ... --cluster-replicas 0` (slots split in three ranges); ready when
# every node reports cluster_state:ok. TRIFLE_TEST_URI_REDIS_CLUSTER names all three nodes (the
# driver needs only one to discover the others). DIR/redis-cluster.port and .pid list the nodes' ports
# and pids, comma-separated.

RCL_NODES=3

rcluster_ports() { tr ',' '\n' 2>/dev/null <"$DIR/redis-cluster.port"; }

rcluster_node_ready() { # index port
    live_pid "$DIR/redis-cluster/$1.pid" ":$2" >/dev/null || return 1
    [[ $(redis-cli -h 127.0.0.1 -p "$2" cluster info 2>/dev/null | tr -d '\r') == *cluster_state:ok* ]]
}

rcluster_ready() {
    local -a ports
    local i
    mapfile -t ports < <(rcluster_ports)
    ((${#ports[@]} == RCL_NODES)) || return 1
    for ((i = 0; i < RCL_NODES; i++)); do
        rcluster_node_ready "$i" "${ports[i]}" || return 1
    done
}

rcluster_stop() {
    local -a ports
    local i pid
    mapfile -t ports < <(rcluster_ports)
    for ((i = 0; i < ${#ports[@]}; i++)); do
        if pid=$(live_pid "$DIR/redis-cluster/$i.pid" ":${ports[i]}"); then
            end_pid "$pid"
        fi
    done
    sweep "$DIR/redis-cluster"
    rm -rf "${DIR:?}/redis-cluster" "$DIR/redis-cluster.port" "$DIR/redis-cluster.pid" \
        "$DIR/redis-cluster.log"
}

rcluster_start() {
    local i port log=$DIR/redis-cluster.log
    local -a ports=() addrs=()
    command -v redis-server >/dev/null || die "redis-server not found (run scripts/install-deps.sh)"
    mkdir -p "$DIR/redis-cluster"
    : >"$log"
    for ((i = 0; i < RCL_NODES; i++)); do
        # pick_port only checks /proc/net/tcp: the node's cluster bus (port + 10000) must be free too
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            port=$(pick_port)
            ((port + 10000 < 65536)) && ! port_in_use $((port + 10000)) &&
                [[ " ${ports[*]} " != *" $port "* ]] && break
        done
        ports+=("$port")
        addrs+=("127.0.0.1:$port")
        mkdir -p "$DIR/redis-cluster/$i"
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --cluster-enabled yes --cluster-config-file "$DIR/redis-cluster/$i/nodes.conf" \
            --cluster-node-timeout 5000 --daemonize yes --dir "$DIR/redis-cluster/$i" \
            --pidfile "$DIR/redis-cluster/$i.pid" --logfile "$DIR/redis-cluster/$i.log" \
            >>"$log" 2>&1 || die_log "$DIR/redis-cluster/$i.log" "redis-server (cluster node $i) did not start"
    done
    (IFS=, && printf '%s\n' "${ports[*]}" >"$DIR/redis-cluster.port")
    for ((i = 0; i < RCL_NODES; i++)); do
        wait_for - test -s "$DIR/redis-cluster/$i.pid" ||
            die_log "$DIR/redis-cluster/$i.log" "redis-server (cluster node $i) wrote no PID file"
        wait_for - redis-cli -h 127.0.0.1 -p "${ports[i]}" ping ||
            die_log "$DIR/redis-cluster/$i.log" "cluster node $i does not answer PING on 127.0.0.1:${ports[i]}"
    done
    (for ((i = 0; i < RCL_NODES; i++)); do cat "$DIR/redis-cluster/$i.pid"; done) | paste -sd, \
        >"$DIR/redis-cluster.pid"
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >>"$log" 2>&1 ||
        die_log "$log" "redis-cli --cluster create failed"
    wait_for - rcluster_ready ||
        die_log "$log" "Redis Cluster did not reach cluster_state:ok within ${TIMEOUT}s"
}

rcluster_env() {
    local -a ports
    local p list=
    mapfile -t ports < <(rcluster_ports)
    for p in "${ports[@]}"; do list+=${list:+,}127.0.0.1:$p; done
    printf "export TRIFLE_TEST_URI_REDIS_CLUSTER='redis_cluster://%s'\n" "$list"
}

# ---- FerretDB (MongoDB wire protocol) --------------------------------------------------------------

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

# ---- MariaDB (the mysql driver) ---------------------------------------------------------------------
# mariadb-install-db into DIR/mysql/data, then mariadbd on 127.0.0.1:<free port> and a unix socket,
# grant tables on. An init file (mode 600, read at every start, idempotent) creates the database
# and the user `trifle` with a random password for TCP and for the socket, with rights on the
# databases `trifle_*` (so that a missing one is "unknown database", 1049, not "access denied");
# root keeps its unix_socket login only. Throw-away and fast: no binary log, no fsync at commit.

my_base() { # where the data and the socket live (sun_path holds 107 bytes)
    if [[ -s $DIR/mysql.base ]]; then
        cat "$DIR/mysql.base"
    else
        printf '%s\n' "$DIR/mysql"
    fi
}

my_client() { # user password port [client args...]: the command-line client over TCP
    local user=$1 pw=$2 port=$3
    shift 3
    # MYSQL_PWD: the password stays out of the process list
    MYSQL_PWD=$pw mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P "$port" -u "$user" "$@"
}

mysql_ready() {
    local port pw
    port=$(cat "$DIR/mysql.port" 2>/dev/null) || return 1
    pw=$(cat "$DIR/mysql.password" 2>/dev/null) || return 1
    live_pid "$DIR/mysql.pid" "$(my_base)/data" >/dev/null || return 1
    my_client "$MY_USER" "$pw" "$port" -N -B -e 'SELECT 1' "$MY_DB" >/dev/null 2>&1
}

mysql_stop() {
    local base pid
    base=$(my_base)
    if pid=$(live_pid "$DIR/mysql.pid" "$base/data"); then
        end_pid "$pid"
    fi
    sweep "$base/data"
    rm -rf "$base"
    rm -f "$DIR/mysql.pid" "$DIR/mysql.port" "$DIR/mysql.password" "$DIR/mysql.base" \
        "$DIR/mysql.init.sql"
}

mysql_start() {
    local base data port log pw pid rc=0 user
    command -v mariadbd >/dev/null || die "mariadbd not found (run scripts/install-deps.sh)"
    rm -f "$DIR/mysql.base"
    if ((${#DIR} > 80)); then
        base=$(mktemp -d "${TMPDIR:-/tmp}/trifle-my.XXXXXX")
        printf '%s\n' "$base" >"$DIR/mysql.base"
    fi
    base=$(my_base)
    data=$base/data
    log=$DIR/mysql.log
    port=$(pick_port "${TRIFLE_MYSQL_PORT:-}")
    pw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    user=$(id -un)
    mkdir -p "$base"
    : >"$log"
    printf '%s\n' "$port" >"$DIR/mysql.port"
    mariadb-install-db --no-defaults --datadir="$data" --user="$user" --skip-test-db \
        --auth-root-authentication-method=socket --skip-name-resolve >>"$log" 2>&1 ||
        die_log "$log" "mariadb-install-db failed"
    (umask 077 && cat >"$DIR/mysql.init.sql" <<EOF
CREATE DATABASE IF NOT EXISTS $MY_DB CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS '$MY_USER'@'127.0.0.1' IDENTIFIED BY '$pw';
CREATE USER IF NOT EXISTS '$MY_USER'@'localhost' IDENTIFIED BY '$pw';
GRANT ALL ON \`trifle\_%\`.* TO '$MY_USER'@'127.0.0.1';
GRANT ALL ON \`trifle\_%\`.* TO '$MY_USER'@'localhost';
EOF
    )
    (umask 077 && printf '%s\n' "$pw" >"$DIR/mysql.password")
    # --user: mariadbd runs as root only when told so; the files belong to this user anyway.
    setsid mariadbd --no-defaults --user="$user" --datadir="$data" --socket="$base/mysqld.sock" \
        --port="$port" --bind-address=127.0.0.1 --pid-file="$DIR/mysql.pid" --log-error="$log" \
        --init-file="$DIR/mysql.init.sql" --skip-name-resolve --skip-log-bin \
        --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --innodb-buffer-pool-size=128M \
        --max-connections=300 --character-set-server=utf8mb4 </dev/null >>"$log" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$DIR/mysql.pid"
    wait_for "$pid" mysql_ready || rc=$?
    ((rc == 0)) || die_log "$log" "MariaDB $( ((rc == 2)) && echo exited || echo 'does not answer') on 127.0.0.1:$port"
    # The password is needed over TCP, and a wrong one is refused.
    if my_client "$MY_USER" "wrong-$pw" "$port" -e 'SELECT 1' "$MY_DB" >/dev/null 2>&1; then
        die "MariaDB accepted a wrong password"
    fi
}

mysql_env() {
    local port pw sock
    port=$(cat "$DIR/mysql.port")
    pw=$(cat "$DIR/mysql.password")
    sock=$(my_base)/mysqld.sock
    printf "export TRIFLE_TEST_URI_MYSQL='mysql://%s:%s@127.0.0.1:%s/%s'\n" "$MY_USER" "$pw" "$port" "$MY_DB"
    printf "export TRIFLE_TEST_URI_MYSQL_BADPASS='mysql://%s:wrong-%s@127.0.0.1:%s/%s'\n" "$MY_USER" "$pw" "$port" "$MY_DB"
    printf "export TRIFLE_TEST_URI_MYSQL_UNIX='mysql://%s:%s@localhost/%s?socket=%s'\n" "$MY_USER" "$pw" "$MY_DB" "$sock"
    printf "export TRIFLE_TEST_MYSQL_SOCKET='%s'\n" "$sock"
}

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
