#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what is missing, builds, starts throw-away
# servers on loopback and runs every test:
#   1. release build, -Werror, every ctest (unit, ABI, headers, fuzz replay, CLI, conformance on
#      every driver, interop)
#   2. the same suite under ASan+UBSan, except conformance.mongo and interop (see there)
#   3. ThreadSanitizer over the threaded parts (buffer, journal, Simple Stats)
#   4. valgrind memcheck over the unit and ABI tests
#   5. libFuzzer on every fuzz target for a bounded time (clang)
# and ends with one line "N passed, N failed, N skipped" over all of it.
# Environment: CI=true makes a missing server a failure (TRIFLE_TEST_STRICT=1);
# TRIFLE_TEST_QUICK=1 runs step 1 only; TRIFLE_FUZZ_SECONDS (default 20) per fuzz target.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
JOBS=${TRIFLE_JOBS:-2}
FUZZ_SECONDS=${TRIFLE_FUZZ_SECONDS:-20}
WORK=$(mktemp -d /tmp/trifle-test.XXXXXX)
LOGS="$ROOT/build/test-logs"
mkdir -p "$LOGS"
passed=0 failed=0 skipped=0

log() { printf '\n=== %s\n' "$*"; }

cleanup() {
    if [ -x "$ROOT/scripts/test-servers.sh" ] || [ -f "$ROOT/scripts/test-servers.sh" ]; then
        bash "$ROOT/scripts/test-servers.sh" stop "$WORK/servers" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Adds the counts of one ctest log to the totals.
count_ctest() {
    local logfile=$1 total nfail nskip
    total=$(grep -Eo 'tests failed out of [0-9]+' "$logfile" | tail -1 | grep -Eo '[0-9]+$' || echo 0)
    nfail=$(grep -Eo '[0-9]+ tests failed out of' "$logfile" | tail -1 | grep -Eo '^[0-9]+' || echo 0)
    nskip=$(grep -cE '\*\*\*Skipped|Not Run|Disabled' "$logfile" || true)
    [ -n "$total" ] || total=0
    [ -n "$nfail" ] || nfail=0
    # skipped tests are not counted as failed by ctest's summary
    passed=$((passed + total - nfail - nskip))
    failed=$((failed + nfail))
    skipped=$((skipped + nskip))
    if [ "$total" -eq 0 ]; then
        echo "no tests ran in $logfile" >&2
        failed=$((failed + 1))
    fi
}

run_ctest() { # name builddir [ctest args...]
    local name=$1 dir=$2
    shift 2
    log "ctest: $name"
    (cd "$dir" && ctest -j"$JOBS" --output-on-failure "$@") 2>&1 | tee "$LOGS/$name.log"
    count_ctest "$LOGS/$name.log"
}

build() { # builddir cmake-args...
    local dir=$1
    shift
    cmake -S "$ROOT" -B "$dir" -G Ninja "$@" >"$LOGS/configure-$(basename "$dir").log" 2>&1 &&
        cmake --build "$dir" -j"$JOBS" 2>&1 | tail -n 40
    return "${PIPESTATUS[0]}"
}

log "installing dependencies"
bash "$ROOT/scripts/install-deps.sh" || { echo "dependency installation failed"; exit 1; }
[ -f "$HOME/.cache/trifle/env.sh" ] && . "$HOME/.cache/trifle/env.sh"

if [ "${CI:-}" = "true" ]; then
    export TRIFLE_TEST_STRICT=1
fi

if [ -f "$ROOT/scripts/test-servers.sh" ]; then
    log "starting test servers"
    if bash "$ROOT/scripts/test-servers.sh" start "$WORK/servers"; then
        # shellcheck disable=SC1091
        . "$WORK/servers/env.sh"
    else
        echo "test servers did not start; server-backed conformance cases will be skipped (or fail under CI)"
    fi
fi

log "release build (-Werror)"
if build "$ROOT/build/release" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRIFLE_WERROR=ON; then
    run_ctest release "$ROOT/build/release"
else
    echo "release build failed"
    failed=$((failed + 1))
fi

if [ "${TRIFLE_TEST_QUICK:-0}" != "1" ]; then
    log "ASan+UBSan build"
    if build "$ROOT/build/asan" -DCMAKE_BUILD_TYPE=Debug -DTRIFLE_WERROR=ON \
        -DTRIFLE_SANITIZER=address,undefined; then
        # Left out here, run in the release stage only:
        #  * conformance.mongo: on FerretDB it is bound by the server (one update command per item,
        #    ERRATA B3: 60,000 round trips in batch.10000.*, 4-5 minutes), so a sanitized client
        #    would add those minutes again for little; unit.driver_mongo still runs the driver under
        #    ASan+UBSan here, errors, reconnects and forked writers included.
        #  * interop (label interop): Go programs and the trifle CLI exchanging data; it checks
        #    formats, not memory, and compiling its Go test binary is the slow part.
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
            run_ctest asan "$ROOT/build/asan" -E '^conformance[.]mongo$' -LE '^interop$'
    else
        echo "sanitizer build failed"
        failed=$((failed + 1))
    fi

    log "ThreadSanitizer build"
    # The code with threads of its own: the buffer and its flush thread, the journal (group
    # commit, the interval thread), Simple Stats' threads, and the handle's locks.
    if build "$ROOT/build/tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRIFLE_WERROR=ON \
        -DTRIFLE_SANITIZER=thread -DTRIFLE_BUILD_CLI=OFF; then
        TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
            run_ctest tsan "$ROOT/build/tsan" -R '^unit[.](buffer|journal|durability|simple|trifle)$'
    else
        echo "thread sanitizer build failed"
        failed=$((failed + 1))
    fi

    log "valgrind memcheck"
    if [ -d "$ROOT/build/release" ]; then
        # --child-silent-after-fork: the crash tests (unit.durability) kill children that leave
        # everything allocated on purpose; the parents, which run the same code, are checked.
        TRIFLE_TEST_LIGHT=1 run_ctest memcheck "$ROOT/build/release" -T memcheck --timeout 900 -R '^(unit\.|abi\.)' \
            --overwrite MemoryCheckCommandOptions="--error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --child-silent-after-fork=yes --suppressions=$ROOT/tests/valgrind.supp"
    fi

    log "libFuzzer (${FUZZ_SECONDS}s per target)"
    if CC=clang-14 build "$ROOT/build/fuzz" -DCMAKE_BUILD_TYPE=Debug -DTRIFLE_BUILD_FUZZ=ON \
        -DTRIFLE_BUILD_CLI=OFF; then
        for f in "$ROOT"/build/fuzz/tests/fuzz/fuzz_*_libfuzzer; do
            [ -x "$f" ] || continue
            name=$(basename "$f" _libfuzzer)
            name=${name#fuzz_}
            corpus="$WORK/corpus-$name"
            mkdir -p "$corpus"
            cp -r "$ROOT/tests/fuzz/corpus/$name/." "$corpus/" 2>/dev/null || true
            if "$f" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
                -artifact_prefix="$LOGS/fuzz-$name-" "$corpus" >"$LOGS/fuzz-$name.log" 2>&1; then
                echo "fuzz.$name: ok ($(grep -Eo 'stat::number_of_executed_units: [0-9]+' "$LOGS/fuzz-$name.log" | grep -Eo '[0-9]+$' || echo '?') runs)"
                passed=$((passed + 1))
            else
                echo "fuzz.$name: FAILED (see $LOGS/fuzz-$name.log)"
                tail -n 30 "$LOGS/fuzz-$name.log"
                failed=$((failed + 1))
            fi
        done
    else
        echo "fuzz build failed"
        failed=$((failed + 1))
    fi
fi

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
