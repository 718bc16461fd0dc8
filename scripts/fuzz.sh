#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan) in
# build-fuzz/ and runs each for a bounded time, starting from its seed corpus.
# Fails if any target crashes, leaks or breaks a contract; the input that did
# it is saved as build-fuzz/artifacts/<target>/crash-*.
# The "dispatch" target (the broker's dispatcher, service and pool in process,
# fed batches of JSON requests) needs the whole broker: it is built in the
# regular build tree (BUILD_DIR, default build/, GCC) without libFuzzer, and
# mutates its seeds for the same time (tests/fuzz/fuzz_replay_main.cc); its
# failing input is build-fuzz/artifacts/dispatch/crash-replay.
#   ./scripts/fuzz.sh                  every target, 30 s each
#   ./scripts/fuzz.sh --seconds 300    longer runs
#   ./scripts/fuzz.sh gguf frame       only these targets
#   ./scripts/fuzz.sh --max-len 65540  longer inputs (libFuzzer's default: 4096)
# New inputs found go to build-fuzz/corpus/<target> (kept between runs); the
# committed seeds in tests/fuzz/corpus are only read.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=30
max_len=()
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift ;;
    --max-len) max_len=(-max_len="$2"); shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
((${#targets[@]})) || targets=(safetensors gguf frame messages dispatch)
libfuzzer=()
for t in "${targets[@]}"; do [[ "$t" == dispatch ]] || libfuzzer+=("$t"); done

dir=build-fuzz
mkdir -p "$dir"
if ((${#libfuzzer[@]})); then
  # Standalone configure of tests/fuzz: needs only clang and nlohmann-json.
  CC=clang CXX=clang++ cmake -S tests/fuzz -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  if ! cmake --build "$dir" -j "$(nproc)" --target "${libfuzzer[@]/#/fuzz_}" >"$dir/build.log" 2>&1; then
    cat "$dir/build.log" >&2
    exit 1
  fi
fi
main=${BUILD_DIR:-build}
if [[ " ${targets[*]} " == *" dispatch "* ]]; then
  if [[ ! -f "$main/CMakeCache.txt" ]]; then
    cmake -S . -B "$main" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMODELPOOL_WERROR=ON >/dev/null
  fi
  if ! cmake --build "$main" -j "$(nproc)" --target modelpool_fuzz_dispatch >"$dir/build-dispatch.log" 2>&1; then
    cat "$dir/build-dispatch.log" >&2
    exit 1
  fi
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in "${targets[@]}"; do
  corpus="$dir/corpus/$t"
  artifacts="$dir/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  dict=()
  case "$t" in safetensors|messages|frame) dict=(-dict=tests/fuzz/json.dict) ;; esac
  echo "fuzz.sh: $t for ${seconds}s"
  if [[ "$t" == dispatch ]]; then
    bin=$(cd "$main" && pwd)/tests/fuzz/modelpool_fuzz_dispatch
    seeds=$PWD/tests/fuzz/corpus/dispatch
    if ! (cd "$artifacts" && "$bin" --mutate-seconds "$seconds" --seed "$RANDOM" "$seeds") \
        >"$dir/$t.log" 2>&1; then
      failed+=("$t")
      tail -n 40 "$dir/$t.log" >&2
    fi
  elif ! "$dir/fuzz_$t" "${dict[@]}" "${max_len[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "tests/fuzz/corpus/$t" \
      2>"$dir/$t.log"; then
    failed+=("$t")
    tail -n 40 "$dir/$t.log" >&2
  fi
  grep -E '^stat::number_of_executed_units|^Done [0-9]+ runs' "$dir/$t.log" | sed "s/^/  $t: /" || true
done
if ((${#failed[@]})); then
  echo "fuzz.sh: FAILED: ${failed[*]} (inputs in $dir/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets ran ${seconds}s without a crash"
