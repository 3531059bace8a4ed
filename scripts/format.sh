#!/usr/bin/env bash
# format.sh: clang-format (the .clang-format at the top) over the tracked C sources and headers.
#
# Usage: scripts/format.sh [--check] [FILE...]
#   (none)    rewrite the files in place
#   --check   change nothing; list the files that are not formatted, print a count of the lines
#             that would change, and exit 1 if there is any
# FILE... limits it to those files (default: every tracked *.c and *.h except generated ones).
# Environment: CLANG_FORMAT (default clang-format; the settings are written for version 14).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
check=0
if [[ ${1:-} == --check ]]; then
    check=1
    shift
elif [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -/{/^set -/d;s/^# \{0,1\}//;p;}' "$0"
    exit 0
fi
command -v "$CLANG_FORMAT" >/dev/null || {
    echo "format.sh: $CLANG_FORMAT not found (run scripts/install-deps.sh)" >&2
    exit 2
}

if (($# > 0)); then
    files=("$@")
else
    # server/web_assets.h is generated (the dashboard's files as C arrays)
    mapfile -t files < <(git ls-files -- '*.c' '*.h' | grep -v -x -e 'server/web_assets.h')
fi

if ((check == 0)); then
    "$CLANG_FORMAT" -i --style=file -- "${files[@]}"
    exit 0
fi

bad=0 lines=0
for f in "${files[@]}"; do
    n=$("$CLANG_FORMAT" --style=file -- "$f" | diff -- "$f" - | grep -c '^<' || true)
    if ((n > 0)); then
        printf '%s: %d line(s) not formatted\n' "$f" "$n"
        bad=$((bad + 1))
        lines=$((lines + n))
    fi
done
if ((bad > 0)); then
    printf 'format.sh: %d of %d files, %d lines, differ from .clang-format (scripts/format.sh fixes them)\n' \
        "$bad" "${#files[@]}" "$lines"
    exit 1
fi
printf 'format.sh: %d files formatted\n' "${#files[@]}"
