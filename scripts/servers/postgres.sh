# shellcheck shell=bash
# scripts/servers/postgres.sh -- PostgreSQL: one throw-away cluster (TRIFLE_TEST_URI_POSTGRES, _BADPASS,
# TRIFLE_TEST_PG_SOCKET_DIR), also the storage of FerretDB's postgresql handler.
# Sourced by scripts/test-servers.sh (after common.sh), not run on its own. Defines
# pg_start, pg_stop, pg_ready (exit 0 when it answers) and pg_env (prints export lines for
# env.sh); they read DIR (the state directory), TIMEOUT and SERVERS.

PG_DB=trifle_test
PG_FERRET_DB=ferretdb
PG_USER=trifle

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
