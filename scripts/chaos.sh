#!/usr/bin/env bash
# The chaos test of broker restarts (issue 8): builds modelpoold and the
# chaos driver, then SIGKILLs and restarts the broker at random moments while
# client processes acquire, read and verify models (see
# tests/fault/chaos/chaos.hpp), and prints the summary. Exit 0 when every
# check passed.
#   ./scripts/chaos.sh               60 rounds (about a minute)
#   ./scripts/chaos.sh --quick       15 rounds, under a minute
#   ./scripts/chaos.sh --rounds N    N rounds
# Other options go to the driver: --seed S, --clients N, --grace S, --keep,
# --verbose. BUILD_DIR picks the build tree (default build/, as
# scripts/test.sh; e.g. BUILD_DIR=build-asan after scripts/test.sh --asan).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${BUILD_DIR:-build}
for arg in "$@"; do
  if [[ "$arg" == -h || "$arg" == --help ]]; then sed -n '2,12p' "$0"; exit 0; fi
done
if [[ ! -f "$dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMODELPOOL_WERROR=ON >/dev/null
fi
cmake --build "$dir" -j "$(nproc)" --target modelpoold modelpool_chaos
exec "$dir/tests/fault/chaos/modelpool_chaos" --broker "$dir/broker/modelpoold" "$@"
