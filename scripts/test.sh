#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what is missing, builds, starts throw-away
# servers on loopback and runs every test:
#   1. release build, -Werror, every ctest (unit, ABI, headers, fuzz replay, CLI, conformance on
#      every driver, interop)
#   2. the same suite under ASan+UBSan, except conformance.mongo and interop (see there)
#   3. ThreadSanitizer over the threaded parts (buffer, journal, Simple Stats) and over
#      `trifle serve` under concurrent HTTP load (its thread pool, buffers and Simple Stats)
#   4. valgrind memcheck over the unit and ABI tests
#   5. libFuzzer on every fuzz target for a bounded time (clang)
#   6. clang-tidy (.clang-tidy) over every C file of the build (scripts/tidy.sh --all, about
#      4 minutes on two cores)
#   and "standalone": the tracked files alone, copied into an empty directory, build and pass the
#   unit and sqlite conformance tests there; no tracked file points outside the repository;
#   7. clang-format --check over every tracked C file (scripts/format.sh)
# and ends with one line "N passed, N failed, N skipped" over all of it.
# Environment: CI=true makes a missing server a failure (TRIFLE_TEST_STRICT=1);
# TRIFLE_TEST_QUICK=1 runs step 1 only; TRIFLE_FUZZ_SECONDS (default 20) per fuzz target;
# TRIFLE_TEST_ONLY="tsan tidy ..." runs only the named stages (release standalone asan tsan
# memcheck fuzz tidy format), e.g. to rerun one.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
JOBS=${TRIFLE_JOBS:-2}
FUZZ_SECONDS=${TRIFLE_FUZZ_SECONDS:-20}
WORK=$(mktemp -d /tmp/trifle-test.XXXXXX)
LOGS="$ROOT/build/test-logs"
mkdir -p "$LOGS"
passed=0 failed=0 skipped=0
ONLY=${TRIFLE_TEST_ONLY:-}
QUICK=${TRIFLE_TEST_QUICK:-0}

log() { printf '\n=== %s\n' "$*"; }

# True when stage $1 runs: every stage by default (TRIFLE_TEST_QUICK=1: release only), or the
# stages TRIFLE_TEST_ONLY names.
want() {
    if [ -n "$ONLY" ]; then
        [[ " $ONLY " == *" $1 "* ]]
    else
        [ "$QUICK" != 1 ] || [ "$1" = release ]
    fi
}

# Counts one pass or failure for a check that is not a ctest run.
count_rc() { # name rc
    if [ "$2" -eq 0 ]; then
        echo "$1: ok"
        passed=$((passed + 1))
    else
        echo "$1: FAILED"
        failed=$((failed + 1))
    fi
}

cleanup() {
    if [ -x "$ROOT/scripts/test-servers.sh" ] || [ -f "$ROOT/scripts/test-servers.sh" ]; then
        bash "$ROOT/scripts/test-servers.sh" stop "$WORK/servers" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Adds the results of one ctest run to the totals, read from the JUnit file ctest wrote (not from
# its text): a <failure> is failed, a <skipped> (SKIP_RETURN_CODE, disabled, not run) is skipped,
# anything else passed. A run without a readable file, or with no test, counts as one failure.
# A dashboard run (-T memcheck) writes no JUnit file; its Testing/<tag>/DynamicAnalysis-Test.xml
# has a <Test Status="passed|failed|notrun"> per test instead, and is read the same way.
count_junit() { # junit.xml name [dashboard.xml]
    local counts p f k
    counts=$(python3 - "$1" "${3:-}" <<'PY'
import sys
import xml.etree.ElementTree as ET
p = f = k = 0
try:
    if sys.argv[2]:
        for t in ET.parse(sys.argv[2]).getroot().iter("Test"):
            st = t.get("Status")
            if st is None:
                continue
            if st == "passed":
                p += 1
            elif st == "notrun":
                k += 1
            else:
                f += 1
    else:
        for tc in ET.parse(sys.argv[1]).getroot().iter("testcase"):
            if tc.find("failure") is not None or tc.find("error") is not None or tc.get("status") == "fail":
                f += 1
            elif tc.find("skipped") is not None or tc.get("status") in ("notrun", "disabled"):
                k += 1
            else:
                p += 1
except (OSError, ET.ParseError):
    print("0 0 0 missing")
    sys.exit(0)
print(p, f, k, "ok")
PY
)
    read -r p f k state <<<"$counts"
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + k))
    if [ "$state" != ok ] || [ $((p + f + k)) -eq 0 ]; then
        echo "no test results from ctest run $2 ($1)" >&2
        failed=$((failed + 1))
    fi
}

run_ctest() { # name builddir [ctest args...]
    local name=$1 dir=$2
    shift 2
    log "ctest: $name"
    local dash=""
    rm -f "$LOGS/$name.xml"
    (cd "$dir" && ctest -j"$JOBS" --output-on-failure --output-junit "$LOGS/$name.xml" "$@") 2>&1 |
        tee "$LOGS/$name.log"
    if [[ " $* " == *" -T "* && -f $dir/Testing/TAG ]]; then
        # every test's status is in DynamicAnalysis-Test.xml (DynamicAnalysis.xml lists only
        # the tests with defects)
        dash="$dir/Testing/$(head -n 1 "$dir/Testing/TAG")/DynamicAnalysis-Test.xml"
    fi
    count_junit "$LOGS/$name.xml" "$name" "$dash"
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

# the stages that talk to the throw-away servers
if [ -f "$ROOT/scripts/test-servers.sh" ] && { want release || want asan; }; then
    log "starting test servers"
    if bash "$ROOT/scripts/test-servers.sh" start "$WORK/servers"; then
        # shellcheck disable=SC1091
        . "$WORK/servers/env.sh"
    else
        echo "test servers did not start; server-backed conformance cases will be skipped (or fail under CI)"
    fi
fi

if want release; then
    log "release build (-Werror)"
    if build "$ROOT/build/release" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRIFLE_WERROR=ON; then
        run_ctest release "$ROOT/build/release"
    else
        echo "release build failed"
        failed=$((failed + 1))
    fi
fi

# --- standalone: the repository alone builds and passes its tests (docs/testing.md) ---------------
# The tracked files only (what a clone holds), copied into an empty directory with nothing beside
# it; a release -Werror build there and the ctests that read the in-repo vectors. Plus a check
# that no tracked file points outside the repository. The full suite is not repeated here.
if want standalone; then
    log "standalone: the repository alone"
    sa_start=$(date +%s)
    if ! git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
        echo "standalone: not a git checkout, skipped"
        skipped=$((skipped + 2))
    else
        # the patterns are written so that they do not match this script itself
        sa_refs=$(git -C "$ROOT" grep -n -E -e '[.][.]/shared' -e 'shared[/](spec|reference)' -- . 2>&1)
        case $? in
            1) echo "standalone.refs: ok"; passed=$((passed + 1)) ;;
            0) echo "standalone.refs: FAILED, tracked files refer to a path outside the repository:"
               echo "$sa_refs"; failed=$((failed + 1)) ;;
            *) echo "standalone.refs: FAILED, git grep: $sa_refs"; failed=$((failed + 1)) ;;
        esac
        sa_dir=$(mktemp -d /tmp/trifle-standalone.XXXXXX)
        mkdir "$sa_dir/repo"
        if (cd "$ROOT" && git ls-files -z | tar --null -T - -cf -) | tar -C "$sa_dir/repo" -xf - &&
            [ ! -e "$sa_dir/shared" ] &&
            cmake -S "$sa_dir/repo" -B "$sa_dir/repo/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
                -DTRIFLE_WERROR=ON >"$LOGS/configure-standalone.log" 2>&1 &&
            cmake --build "$sa_dir/repo/build" -j"$JOBS" >"$LOGS/build-standalone.log" 2>&1; then
            # the unit tests (they read every vector file), conformance.sqlite (the vector cases
            # through a handle), install.consumer (the installed kit finds its own vectors) and
            # docs.doxygen (the Doxyfile is tracked); the server-backed driver unit tests ran in
            # the release stage
            run_ctest standalone "$sa_dir/repo/build" \
                -R '^(unit[.]|conformance[.]sqlite$|install[.]consumer$|docs[.]doxygen$)' \
                -E '^unit[.](driver_(postgres|redis|redis_cluster|mongo|mysql)|simple[.]promtool)$'
        else
            echo "standalone build failed (see $LOGS/configure-standalone.log, $LOGS/build-standalone.log)"
            tail -n 40 "$LOGS/build-standalone.log" 2>/dev/null
            failed=$((failed + 1))
        fi
        rm -rf "$sa_dir"
    fi
    echo "standalone: $(($(date +%s) - sa_start)) s"
fi
# --- end standalone --------------------------------------------------------------------------

if want asan; then
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
fi

if want tsan; then
    log "ThreadSanitizer build"
    # The code with threads of its own: the buffer and its flush thread, the journal (group
    # commit, the interval thread), Simple Stats' threads, and the handle's locks; and `trifle
    # serve` (a TSan build of the CLI) under concurrent HTTP load: http.load (writers and readers
    # at once on 8 pool threads, a flushing buffer, Simple Stats), http.lifecycle (bursts cut by
    # SIGTERM) and http.stats. A report makes the unit test abort (halt_on_error) and the server
    # exit non-zero with "ThreadSanitizer" on its stderr, which tests/http/harness.py fails on.
    if build "$ROOT/build/tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRIFLE_WERROR=ON \
        -DTRIFLE_SANITIZER=thread; then
        TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
            run_ctest tsan "$ROOT/build/tsan" \
            -R '^(unit[.](buffer|buffer_threads|journal|durability|pool|simple|trifle)|http[.](load|lifecycle|stats))$'
    else
        echo "thread sanitizer build failed"
        failed=$((failed + 1))
    fi
fi

if want memcheck && [ -d "$ROOT/build/release" ]; then
    log "valgrind memcheck"
    # --child-silent-after-fork: the crash tests (unit.durability) kill children that leave
    # everything allocated on purpose; the parents, which run the same code, are checked.
    TRIFLE_TEST_LIGHT=1 run_ctest memcheck "$ROOT/build/release" -T memcheck --timeout 900 -R '^(unit\.|abi\.)' \
        --overwrite MemoryCheckCommandOptions="--error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --child-silent-after-fork=yes --suppressions=$ROOT/tests/valgrind.supp"
fi

if want fuzz; then
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

# clang-tidy on every C file in compile_commands.json (scripts/tidy.sh --all): the whole tree is
# clean and takes about 4 minutes on two cores, so a finding anywhere fails the run.
if want tidy; then
    log "clang-tidy (every C file)"
    bash "$ROOT/scripts/tidy.sh" --all "$ROOT/build/tidy" 2>&1 | tee "$LOGS/tidy.log"
    count_rc tidy "${PIPESTATUS[0]}"
fi

# clang-format --check: every tracked C source and header is formatted (scripts/format.sh rewrites).
if want format; then
    log "clang-format --check"
    bash "$ROOT/scripts/format.sh" --check 2>&1 | tee "$LOGS/format.log" | tail -n 30
    count_rc format "${PIPESTATUS[0]}"
fi

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
