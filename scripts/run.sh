#!/usr/bin/env bash
# The main job (README): install what is missing, build, then start `trifle serve` on the embedded
# SQLite default (data in ./trifle-data, 127.0.0.1:8080; the first start prints an access token).
# Extra arguments go to `trifle serve` (e.g. --config FILE, --listen ADDR).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/scripts/install-deps.sh"
cmake -S "$ROOT" -B "$ROOT/build/release" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$ROOT/build/release" -j"${TRIFLE_JOBS:-2}"
exec "$ROOT/build/release/trifle" serve "$@"
