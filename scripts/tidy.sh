#!/usr/bin/env bash
# tidy.sh: clang-tidy (the checks of .clang-tidy) over the C files of the project.
#
# Usage: scripts/tidy.sh [--all | --base REF] [BUILD_DIR]
#   (default)   the files changed since the merge base with REF (TRIFLE_TIDY_BASE, default main,
#               else origin/main), committed or not; a changed header is checked through one .c file
#               that includes it. On REF itself (nothing to compare), the files of the last commit.
#   --all       every file in compile_commands.json: about 4 minutes on two cores; the tidy stage
#               of scripts/test.sh (docs/testing.md, "The tsan, tidy and format stages")
#   BUILD_DIR   where compile_commands.json is (default build/tidy, configured here if missing)
# Exit status 0 when clang-tidy finds nothing (every check is an error, WarningsAsErrors), 1 when
# it finds something, 2 when it cannot run.
# Environment: TRIFLE_JOBS (default 2), RUN_CLANG_TIDY (default run-clang-tidy),
# CLANG_TIDY (default clang-tidy).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
JOBS=${TRIFLE_JOBS:-2}
RUN_CLANG_TIDY=${RUN_CLANG_TIDY:-run-clang-tidy}
CLANG_TIDY=${CLANG_TIDY:-clang-tidy}
BASE=${TRIFLE_TIDY_BASE:-}
all=0

die() { printf 'tidy.sh: %s\n' "$*" >&2; exit 2; }

while (($# > 0)); do
    case $1 in
    --all) all=1 ;;
    --base) shift; BASE=${1:-} ;;
    -h | --help) sed -n '2,/^set -/{/^set -/d;s/^# \{0,1\}//;p;}' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) break ;;
    esac
    shift
done
BUILD=${1:-$ROOT/build/tidy}
[[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD

command -v "$RUN_CLANG_TIDY" >/dev/null || die "$RUN_CLANG_TIDY not found (run scripts/install-deps.sh)"
command -v "$CLANG_TIDY" >/dev/null || die "$CLANG_TIDY not found (run scripts/install-deps.sh)"

# compile_commands.json: configuring is enough, nothing the checked files include is generated
if [[ ! -f $BUILD/compile_commands.json ]]; then
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
        >"$BUILD.configure.log" 2>&1 || die "cmake configure failed (see $BUILD.configure.log)"
fi

# Every source file in the database, relative to ROOT (generated ones under build/ left out).
mapfile -t known < <(python3 - "$BUILD/compile_commands.json" "$ROOT" <<'PY'
import json, os, sys
root = sys.argv[2].rstrip("/") + "/"
seen = set()
for e in json.load(open(sys.argv[1])):
    f = os.path.normpath(os.path.join(e.get("directory", ""), e["file"]))
    if f.startswith(root) and not f.startswith(root + "build/") and f.endswith(".c") and f not in seen:
        seen.add(f)
        print(f[len(root):])
PY
)
((${#known[@]} > 0)) || die "no C files in $BUILD/compile_commands.json"

if ((all)); then
    files=("${known[@]}")
    echo "tidy.sh: all ${#files[@]} files"
else
    if [[ -z $BASE ]]; then
        for b in main origin/main; do
            git rev-parse -q --verify "$b^{commit}" >/dev/null && { BASE=$b; break; }
        done
    fi
    [[ -n $BASE ]] || die "no base to compare with (set TRIFLE_TIDY_BASE or use --all)"
    mb=$(git merge-base HEAD "$BASE") || die "no merge base of HEAD and $BASE"
    if [[ $mb == $(git rev-parse HEAD) ]]; then
        # on the base itself: check what its last commit changed
        mb=$(git rev-parse -q --verify HEAD~1) || mb=$(git hash-object -t tree /dev/null)
    fi
    # committed since the merge base, and what the working tree changes on top
    mapfile -t changed < <(git diff --name-only --diff-filter=ACMR "$mb" -- '*.c' '*.h')
    declare -A pick=()
    for f in "${changed[@]}"; do
        case $f in
        *.c) pick[$f]=1 ;;
        *.h)
            # a header is checked through one .c file that includes it (HeaderFilterRegex reports
            # findings in the header itself), one in the header's own folder when there is one:
            # every includer of a public header would be most of the tree
            c=$(git grep -l -F "$(basename "$f")\"" -- "$(dirname "$f")/*.c" | head -n 1)
            [[ -n $c ]] || c=$(git grep -l -F "$(basename "$f")\"" -- '*.c' | head -n 1)
            [[ -z $c ]] || pick[$c]=1
            ;;
        esac
    done
    files=()
    for f in "${known[@]}"; do
        [[ -n ${pick[$f]:-} ]] && files+=("$f")
    done
    echo "tidy.sh: ${#files[@]} file(s) changed since $(git rev-parse --short "$mb") (merge base with $BASE)"
    if ((${#files[@]} == 0)); then
        exit 0
    fi
fi

# run-clang-tidy takes regular expressions; the paths are matched whole
regex=()
for f in "${files[@]}"; do
    regex+=("^$(printf '%s' "$ROOT/$f" | sed 's/[][\.*^$+?(){}|]/\\&/g')\$")
done
start=$(date +%s)
"$RUN_CLANG_TIDY" -p "$BUILD" -j "$JOBS" -quiet -clang-tidy-binary "$(command -v "$CLANG_TIDY")" \
    "${regex[@]}" 2>&1 | grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter|^Use -system-headers'
rc=${PIPESTATUS[0]}
echo "tidy.sh: ${#files[@]} file(s) in $(($(date +%s) - start)) s: $( ((rc == 0)) && echo clean || echo 'findings above')"
((rc == 0)) || exit 1
