#!/usr/bin/env bash
# The modelpool demo: one broker, one ~256 MiB safetensors model, three worker
# processes sharing it. Installs what is missing, builds, runs, and cleans up
# after itself (no segment, socket or process is left behind).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

./scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target modelpoold mp_worker modelpoolctl

work=$(mktemp -d /tmp/modelpool-demo.XXXXXX)
run_dir="$work/run"
broker_pid=""
holders=()
cleanup() {
  for p in "${holders[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ -n "$broker_pid" ]] && kill -0 "$broker_pid" 2>/dev/null; then
    kill -TERM "$broker_pid"; wait "$broker_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo
echo "== 1. a sample model"
/usr/bin/python3 scripts/make_sample_model.py "$work/models/demo/tiny-llm.safetensors" 256

shmem_kb() { awk '/^Shmem:/ {print $2}' /proc/meminfo; }
shmem_before=$(shmem_kb)

echo
echo "== 2. the broker"
mkfifo "$work/ready"
build/broker/modelpoold --models "$work/models" --run-dir "$run_dir" --remove-on-exit \
  >"$work/ready" 2>"$work/broker.log" &
broker_pid=$!
read -r ready_line <"$work/ready"
echo "$ready_line"
echo "   (log: $(head -n 1 "$work/broker.log" | cut -c1-160)...)"

echo
echo "== 3. three workers acquire demo/tiny-llm.safetensors at the same time"
for i in 1 2 3; do
  mkfifo "$work/in$i" "$work/out$i"
  build/clientlib/mp_worker --socket "$run_dir/modelpool.sock" --model demo/tiny-llm.safetensors \
    --verify "$work/models/demo/tiny-llm.safetensors" --hold <"$work/in$i" >"$work/out$i" &
  holders+=($!)
  exec {fd}>"$work/in$i"   # keeps the worker's stdin open: it holds the model until we close it
  eval "hold$i=$fd"
  exec {fd}<"$work/out$i"
  eval "out$i=$fd"
done
for i in 1 2 3; do
  eval "read -r line <&\$out$i"
  /usr/bin/python3 - "$line" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
if not r["ok"]:
    sys.exit(f"worker failed: {r}")
print(f"worker pid {r['pid']}: {r['size'] / 2**20:.1f} MiB, generation {r['generation']}, "
      f"bytes match the file: {r['file_ok']}, checksum ok: {r['checksum_ok']}, "
      f"RssShmem {r['rss_shmem_kb'] / 1024:.1f} MiB, Pss of the mapping {r['map_pss_kb'] / 1024:.1f} MiB")
PY
done
shmem_after=$(shmem_kb)
model_kb=$(( $(stat -c %s "$work/models/demo/tiny-llm.safetensors") / 1024 ))
echo
echo "== 4. what it cost"
awk -v b="$shmem_before" -v a="$shmem_after" -v m="$model_kb" 'BEGIN {
  printf "Shmem rose by %.1f MiB for a %.1f MiB model shared by 3 workers: %.2fx the model\n",
         (a - b) / 1024, m / 1024, (a - b) / m }'
echo
build/clientlib/modelpoolctl --run-dir "$run_dir" stats

echo
echo "== 5. workers release, broker stops"
for i in 1 2 3; do eval "exec {hold$i}>&-"; done
for p in "${holders[@]}"; do wait "$p"; done
holders=()
kill -TERM "$broker_pid"; wait "$broker_pid"; broker_pid=""
left=$( (ls /dev/shm/modelpool "$run_dir"/modelpool.sock "$run_dir"/modelpool.admin.sock 2>/dev/null || true) | wc -l)
echo "broker exited cleanly; segment and sockets left behind: $left"
[[ "$left" == 0 ]]
