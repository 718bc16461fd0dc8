#!/usr/bin/env bash
# Builds the bench programs and the broker in build-bench/ (Release) and runs
# the bench suite (docs/benchmarks.md). Results go to bench/results/.
#   ./scripts/bench.sh              whole suite, at most ~10 min on 2 cores
#   ./scripts/bench.sh --quick      smaller sizes, 3 repetitions, under 2 min
# Other options go to bench/run_bench.py (--reps N, --only a,b, --keep-data,
# --no-drop-caches, --data-dir DIR, --out-dir DIR; see --help).
set -euo pipefail
cd "$(dirname "$0")/.."

build=build-bench
jobs=${BENCH_JOBS:-$(nproc)}
if [[ " $* " == *" -h "* || " $* " == *" --help "* ]]; then
  sed -n '2,7p' "$0"
  exec /usr/bin/python3 bench/run_bench.py --help
fi

# -O2: GCC 12 at -O3 reports a false -Wrestrict in std::string code (GCC
# PR105329) and warnings are errors here.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" -DMODELPOOL_WERROR=ON \
  -DMODELPOOL_BUILD_TESTS=OFF -DMODELPOOL_BUILD_PYTHON=OFF -DMODELPOOL_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target mp_bench_all -j "$jobs"
if ! cmake --build "$build" --target modelpoold -j "$jobs"; then
  echo "bench.sh: modelpoold did not build; the modelpool columns will say 'not measured'" >&2
  rm -f "$build/broker/modelpoold"
fi

exec /usr/bin/python3 bench/run_bench.py --build-dir "$build" "$@"
