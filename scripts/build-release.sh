#!/usr/bin/env bash
# Builds what a user builds with `cmake -DCMAKE_BUILD_TYPE=Release` (-O3), with
# warnings as errors, into build-release/: the daemon, modelpoolctl, the client
# library and the examples. The tests, bench and Python binding are left out
# to keep the CI step short; they are compiled by scripts/test.sh.
# CI runs it so that a warning only the optimiser sees at -O3 fails there
# first, not in a user's build.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  "") ;;
  -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
  *) echo "build-release.sh: unknown option $1" >&2; exit 2 ;;
esac

cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DMODELPOOL_WERROR=ON \
  -DMODELPOOL_BUILD_TESTS=OFF -DMODELPOOL_BUILD_BENCH=OFF -DMODELPOOL_BUILD_PYTHON=OFF >/dev/null
cmake --build build-release -j "$(nproc)"
