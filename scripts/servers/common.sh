# shellcheck shell=bash
# scripts/servers/common.sh: helpers shared by the server files (messages, PIDs, ports, waiting),
# sourced by scripts/test-servers.sh before them. Uses TIMEOUT.

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
