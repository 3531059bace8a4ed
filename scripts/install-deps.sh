#!/usr/bin/env bash
# install-deps.sh: install everything trifle-c needs to build and test on Debian 12.
#
# Idempotent and fast when everything is present: packages are checked with dpkg-query, and
# `apt-get update` runs only when something is missing. FerretDB (the MongoDB-wire test server)
# is built from the Go module proxy into $TRIFLE_TOOLS_BIN (default ~/.cache/trifle/bin) when
# that binary is missing or is not v1.24.2, and ~/.cache/trifle/env.sh then exports
# TRIFLE_FERRETDB (its path) for scripts/test-servers.sh. The Go modules of tests/interop (the
# interop test, about 120 MB of zips) are fetched into the Go module cache too, so that the test
# itself only compiles.
#
# The dashboard's browser test drives Debian's chromium with playwright-core, pinned in
# tests/browser/package.json and package-lock.json; `npm ci` installs it into
# $TRIFLE_BROWSER_MODULES (default ~/.cache/trifle/browser), again only when it is missing or the
# lock file changed. It needs node >= 20 and npm on PATH (not installed here).
#
# The MCP test (tests/mcp) drives `trifle mcp` with the official MCP Python SDK, pinned below and
# installed with `python3 -m pip install --user` only when that version is not importable.
#
# Usage: scripts/install-deps.sh [--no-ferretdb] [--no-go-modules] [--no-browser] [--list]
#   --no-ferretdb     skip the FerretDB build (no Go toolchain, or no mongo tests wanted)
#   --no-go-modules   skip `go mod download` for tests/interop
#   --no-browser      skip the npm install of playwright-core for tests/browser
#   --list            print the Debian packages this script installs and exit
# Environment: TRIFLE_TOOLS_BIN (where ferretdb goes), GO (go binary; default: go on PATH,
# then /usr/local/go/bin/go).
set -euo pipefail

FERRETDB_MODULE=github.com/FerretDB/FerretDB
FERRETDB_VERSION=v1.24.2

PKGS_BUILD=(cmake ninja-build pkg-config gcc clang-14 libclang-rt-14-dev)
PKGS_LIBS=(libglib2.0-dev libcjson-dev libsqlite3-dev sqlite3 libpq-dev libhiredis-dev
           libmongoc-dev libbson-dev libmicrohttpd-dev libyaml-dev libcmocka-dev zlib1g-dev
           libcurl4-openssl-dev libmariadb-dev)
PKGS_SERVERS=(postgresql redis-server mariadb-server mariadb-client)
PKGS_TOOLS=(valgrind wrk prometheus jq curl doxygen chromium clang-tidy clang-format)
ALL_PKGS=("${PKGS_BUILD[@]}" "${PKGS_LIBS[@]}" "${PKGS_SERVERS[@]}" "${PKGS_TOOLS[@]}")

TOOLS_BIN=${TRIFLE_TOOLS_BIN:-${HOME:-/root}/.cache/trifle/bin}
SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
want_ferretdb=1
want_go_modules=1
want_browser=1
BROWSER_DIR=${TRIFLE_BROWSER_MODULES:-${HOME:-/root}/.cache/trifle/browser}

die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }
note() { printf 'install-deps: %s\n' "$*"; }

for arg in "$@"; do
    case $arg in
    --no-ferretdb) want_ferretdb=0 ;;
    --no-go-modules) want_go_modules=0 ;;
    --no-browser) want_browser=0 ;;
    --list) printf '%s\n' "${ALL_PKGS[@]}"; exit 0 ;;
    -h|--help) sed -n '2,/^set -/{/^set -/d;s/^# \{0,1\}//;p;}' "$0"; exit 0 ;;
    *) die "unknown argument: $arg (see --help)" ;;
    esac
done

# ---- Debian packages ---------------------------------------------------------------------------
# One dpkg-query for all (unknown packages are left out of its output).
declare -A pkg_status=()
while read -r name status; do
    pkg_status[${name%%:*}]=$status
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${ALL_PKGS[@]}" 2>/dev/null || true)
missing=()
for p in "${ALL_PKGS[@]}"; do
    [[ ${pkg_status[$p]:-} == installed ]] || missing+=("$p")
done

if ((${#missing[@]})); then
    SUDO=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "not root and no sudo: cannot install ${missing[*]}"
        SUDO=(sudo)
    fi
    note "installing ${#missing[@]} package(s): ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq || die "apt-get update failed"
    # The postgresql, redis-server and mariadb-server packages would start system-wide services; tests never use
    # them (scripts/test-servers.sh runs private instances), so keep them from starting here.
    # policy-rc.d only exists for the length of this install.
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod 755 "$policy"
        made_policy=1
    fi
    rc=0
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" >/tmp/trifle-apt.$$.log 2>&1 || rc=$?
    ((made_policy)) && "${SUDO[@]}" rm -f "$policy"
    if ((rc)); then
        tail -n 30 /tmp/trifle-apt.$$.log >&2
        rm -f /tmp/trifle-apt.$$.log
        die "apt-get install failed (exit $rc)"
    fi
    rm -f /tmp/trifle-apt.$$.log
    pkg_summary="installed ${missing[*]}"
else
    pkg_summary="all ${#ALL_PKGS[@]} present"
fi

# ---- FerretDB ------------------------------------------------------------------------------------
# Not `go install $FERRETDB_MODULE/cmd/ferretdb@$FERRETDB_VERSION`, for two reasons:
#  * go install asks the proxy for the module's version list (to report deprecations), which
#    the registry mirror here refuses (403), so the command fails before building anything;
#  * the binary it makes panics at start: FerretDB embeds build/version/version.txt, a file
#    generated by its own build tooling and absent from the module zip.
# So: download exactly that module version, copy it out of the read-only module cache, write
# version.txt, and build with FerretDB's own go.mod/go.sum (the same pins go install uses).
ferret_summary="skipped (--no-ferretdb)"
find_go() {
    local g=${GO:-$(command -v go || true)}
    [[ -n $g ]] || { [[ -x /usr/local/go/bin/go ]] && g=/usr/local/go/bin/go; }
    printf '%s\n' "$g"
}
ferretdb_ok() {
    local out
    [[ -x $TOOLS_BIN/ferretdb ]] || return 1
    out=$("$TOOLS_BIN/ferretdb" --version 2>/dev/null) || return 1
    [[ $'\n'$out$'\n' == *$'\n'"version: $FERRETDB_VERSION"$'\n'* ]]
}
if ((want_ferretdb)); then
    if ferretdb_ok; then
        ferret_summary="$FERRETDB_VERSION present"
    else
        GO=$(find_go)
        [[ -n $GO ]] || die "go not found (FerretDB needs Go >= 1.24; or pass --no-ferretdb)"
        note "building FerretDB $FERRETDB_VERSION with $("$GO" version) (about 3 CPU-minutes)"
        work=$(mktemp -d "${TMPDIR:-/tmp}/trifle-ferretdb.XXXXXX")
        trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
        dl=$(cd "$work" && GOFLAGS=-mod=mod "$GO" mod download -json \
            "$FERRETDB_MODULE@$FERRETDB_VERSION") ||
            die "go mod download $FERRETDB_MODULE@$FERRETDB_VERSION failed: $dl"
        srcdir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$dl")
        [[ -n $srcdir && -d $srcdir ]] || die "go mod download gave no module directory: $dl"
        cp -R "$srcdir" "$work/src"
        chmod -R u+w "$work/src"
        printf '%s\n' "$FERRETDB_VERSION" >"$work/src/build/version/version.txt"
        printf 'source\n' >"$work/src/build/version/package.txt"
        mkdir -p "$TOOLS_BIN"
        (cd "$work/src" && GOFLAGS=-mod=readonly "$GO" build -trimpath \
            -o "$TOOLS_BIN/ferretdb.new" ./cmd/ferretdb) || die "building FerretDB failed"
        mv -f "$TOOLS_BIN/ferretdb.new" "$TOOLS_BIN/ferretdb"
        ferretdb_ok || die "built $TOOLS_BIN/ferretdb does not report version $FERRETDB_VERSION"
        ferret_summary="$FERRETDB_VERSION built"
    fi
fi

# ---- Go modules of the interop test ---------------------------------------------------------------
# `go test` in tests/interop would otherwise download them inside its ctest time limit. Exactly
# the versions go.sum pins; a no-op (about 1 s) when the module cache has them.
gomod_summary="skipped (--no-go-modules)"
if ((want_go_modules)) && [[ -f $SRC_DIR/tests/interop/go.mod ]]; then
    GO=$(find_go)
    if [[ -z $GO ]]; then
        # the interop test then reports the missing toolchain itself (a failure under CI)
        gomod_summary="go not found: tests/interop cannot run"
    else
        (cd "$SRC_DIR/tests/interop" && GOFLAGS=-mod=readonly "$GO" mod download -x 2>&1) \
            >/tmp/trifle-gomod.$$.log || {
            tail -n 30 /tmp/trifle-gomod.$$.log >&2
            rm -f /tmp/trifle-gomod.$$.log
            die "go mod download in tests/interop failed"
        }
        n=$(grep -c '^# get .*: 200 OK' /tmp/trifle-gomod.$$.log || true)
        rm -f /tmp/trifle-gomod.$$.log
        gomod_summary="tests/interop modules present ($n file(s) fetched)"
    fi
fi

# ---- playwright-core for the browser test ----------------------------------------------------------
# npm ci into a cache outside the repository (nothing under node_modules is committed); a no-op
# when the installed lock file is the one in tests/browser. --ignore-scripts: playwright-core
# has no install script, and no browser is downloaded (the test uses the system chromium).
browser_summary="skipped (--no-browser)"
if ((want_browser)); then
    lock=$SRC_DIR/tests/browser/package-lock.json
    if cmp -s "$lock" "$BROWSER_DIR/package-lock.json" &&
        [[ -f $BROWSER_DIR/node_modules/playwright-core/package.json ]]; then
        browser_summary="playwright-core present ($BROWSER_DIR)"
    elif ! command -v npm >/dev/null; then
        # the browser test then reports it itself (a failure under CI)
        browser_summary="npm not found: tests/browser cannot run"
    else
        mkdir -p "$BROWSER_DIR"
        cp "$SRC_DIR/tests/browser/package.json" "$lock" "$BROWSER_DIR/"
        (cd "$BROWSER_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) ||
            die "npm ci of tests/browser (playwright-core) failed"
        browser_summary="playwright-core installed ($BROWSER_DIR)"
    fi
fi

# ---- the MCP Python SDK for tests/mcp --------------------------------------------------------------
# Into the user site of the python3 on PATH (the one ctest's FindPython3 picks first), so nothing
# system-wide changes; a no-op when the pinned version is importable.
MCP_SDK_VERSION=2.3.0
if python3 -c 'import sys, importlib.metadata as m; sys.exit(m.version("mcp") != sys.argv[1])' \
    "$MCP_SDK_VERSION" 2>/dev/null; then
    mcp_summary="mcp $MCP_SDK_VERSION present"
else
    python3 -m pip install --user --quiet "mcp==$MCP_SDK_VERSION" ||
        die "pip install of the MCP Python SDK (mcp==$MCP_SDK_VERSION) failed"
    mcp_summary="mcp $MCP_SDK_VERSION installed"
fi

# Tells later steps (scripts/test.sh sources it) where the tools are.
if ferretdb_ok; then
    env_file=${HOME:-/root}/.cache/trifle/env.sh
    mkdir -p "$(dirname "$env_file")"
    printf '# Written by scripts/install-deps.sh.\nexport TRIFLE_FERRETDB=%q\n' \
        "$TOOLS_BIN/ferretdb" >"$env_file.tmp"
    mv -f "$env_file.tmp" "$env_file"
fi

note "debian packages: $pkg_summary"
note "ferretdb: $ferret_summary ($TOOLS_BIN/ferretdb)"
note "go modules: $gomod_summary"
note "browser test: $browser_summary"
note "mcp python sdk: $mcp_summary"
