#!/usr/bin/env bash
# Builds modelpool with warnings as errors and runs every test through ctest.
#   ./scripts/test.sh            normal build (build/)
#   ./scripts/test.sh --asan     ASan + UBSan build (build-asan/)
#   ./scripts/test.sh --tsan     TSan build (build-tsan/)
# Extra arguments after `--` go to ctest (e.g. -- -R integration).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=normal
ctest_args=()
while (($#)); do
  case "$1" in
    --asan) mode=asan ;;
    --tsan) mode=tsan ;;
    --) shift; ctest_args+=("$@"); break ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

./scripts/setup.sh

case "$mode" in
  normal) dir=build;      extra=() ;;
  asan)   dir=build-asan; extra=(-DMODELPOOL_SANITIZE=address -DMODELPOOL_BUILD_BENCH=OFF -DMODELPOOL_BUILD_PYTHON=OFF) ;;
  tsan)   dir=build-tsan; extra=(-DMODELPOOL_SANITIZE=thread -DMODELPOOL_BUILD_BENCH=OFF -DMODELPOOL_BUILD_PYTHON=OFF) ;;
esac

cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMODELPOOL_WERROR=ON "${extra[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
# The S3-compatible server the origin tests start (tests/origin/s3): without
# it they skip, saying so.
if command -v npm >/dev/null; then
  npm ci --prefix "$dir/tests/origin/s3" --no-audit --no-fund >/dev/null ||
    echo "test: s3rver could not be installed; the S3 origin tests will skip"
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
ctest --test-dir "$dir" --output-on-failure -j 2 "${ctest_args[@]}"
