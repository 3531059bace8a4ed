# shellcheck shell=bash
# scripts/servers/mysql.sh -- MariaDB for the mysql driver, over TCP and a unix socket
# (TRIFLE_TEST_URI_MYSQL, _BADPASS, _UNIX, TRIFLE_TEST_MYSQL_SOCKET).
# Sourced by scripts/test-servers.sh (after common.sh), not run on its own. Defines
# mysql_start, mysql_stop, mysql_ready (exit 0 when it answers) and mysql_env (prints export lines for
# env.sh); they read DIR (the state directory), TIMEOUT and SERVERS.

MY_DB=trifle_test
MY_USER=trifle

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
