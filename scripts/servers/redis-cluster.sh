# shellcheck shell=bash
# scripts/servers/redis-cluster.sh -- Redis Cluster: three throw-away masters joined into one cluster
# (TRIFLE_TEST_URI_REDIS_CLUSTER).
# Sourced by scripts/test-servers.sh (after common.sh), not run on its own. Defines
# rcluster_start, rcluster_stop, rcluster_ready (exit 0 when it answers) and rcluster_env (prints export lines for
# env.sh); they read DIR (the state directory), TIMEOUT and SERVERS.

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
