# shellcheck shell=bash
# scripts/servers/redis.sh -- Redis: two throw-away instances, one without a password (also on a unix
# socket) and one with requirepass (TRIFLE_TEST_URI_REDIS, _UNIX, _AUTH, _BADPASS).
# Sourced by scripts/test-servers.sh (after common.sh), not run on its own. Defines
# redis_start, redis_stop, redis_ready (exit 0 when it answers) and redis_env (prints export lines for
# env.sh); they read DIR (the state directory), TIMEOUT and SERVERS.

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
