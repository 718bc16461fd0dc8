#!/usr/bin/python3
# File: bench/node/node_memory.py
#
# Node workers share one copy of a model (issue 23): starts a broker from a
# build tree, then N Node worker processes (hold_worker.js) that acquire one
# model and touch every page, and prints one line per metric:
#   shmem_rise_x    rise of Shmem (/proc/meminfo) from before the first
#                   acquire to all workers holding the model, over its size
#                   (the pool's one copy: ~1.0; a copy per worker would be N)
#   rss_anon_rise   each worker's RssAnon growth across acquire + touch
#                   (a private copy would add the model's size)
#   rss_shmem       each worker's RssShmem: the pool's pages it maps
# Exits 1 when shmem_rise_x > 1.05 or a worker's RssAnon grew by more than
# 5% of the model. Needs the Node addon built (BUILD/clientlib/node).
#   /usr/bin/python3 bench/node/node_memory.py [--build-dir build] [--size-mib 256] [--workers 3]
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from harness.broker import Broker  # noqa: E402
from harness.common import MiB, Ctx, meminfo  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = "model.safetensors"


def write_model(path, size):
    """A safetensors file of `size` bytes: one F32 tensor filling it."""
    header = b""
    for _ in range(2):  # the header's length depends on the tensor's
        n = (size - 8 - len(header)) // 4
        header = json.dumps({"w": {"dtype": "F32", "shape": [n],
                                   "data_offsets": [0, 4 * n]}}).encode()
        header += b" " * (size - 8 - len(header) - 4 * n)
    chunk = os.urandom(4 * MiB)
    with open(path, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header)
        left = 4 * n
        while left:
            left -= f.write(chunk[:min(left, len(chunk))])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--workers", type=int, default=3)
    args = ap.parse_args()
    build = os.path.abspath(args.build_dir)
    size = args.size_mib * MiB
    data_dir = tempfile.mkdtemp(prefix="mp-node-bench-", dir=build)  # a disk, not tmpfs
    ctx = Ctx(quick=True, reps=1, bin_dir=os.path.join(build, "bench"),
              broker_bin=os.path.join(build, "broker", "modelpoold"), data_dir=data_dir,
              tag=str(os.getpid()), drop_caches=False)
    env = dict(os.environ, MODELPOOL_BUILD_DIR=build)
    workers, rows, broker = [], [], None
    try:
        write_model(os.path.join(data_dir, MODEL), size)
        broker = Broker(ctx, "node", data_dir, 2 * size)
        before = meminfo()["Shmem"]
        for _ in range(args.workers):  # one at a time: one load, then hits
            w = subprocess.Popen(["node", os.path.join(HERE, "hold_worker.js"), broker.socket,
                                  MODEL], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True, env=env)
            ctx.procs.append(w)
            workers.append(w)
            line = w.stdout.readline()
            if not line:
                sys.exit(f"node_memory: a worker failed ({w.wait()})")
            rows.append(json.loads(line))
        rise = meminfo()["Shmem"] - before
        refs = next(r["refs"] for r in broker.admin("list")["models"] if r["name"] == MODEL)
    finally:
        for w in workers:
            w.stdin.close()
        for w in workers:
            w.wait(timeout=60)
        if broker is not None:
            broker.stop()
        ctx.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"model_mib {size / MiB:.0f}")
    print(f"workers {len(rows)} refs {refs} cached {[r['cached'] for r in rows]}")
    print(f"shmem_rise_mib {rise / MiB:.1f}")
    print(f"shmem_rise_x {rise / size:.3f}")
    anon = [r["after"]["RssAnon"] - r["before"]["RssAnon"] for r in rows]
    for i, r in enumerate(rows):
        print(f"worker{i} rss_anon_rise_mib {anon[i] / MiB:.1f} "
              f"rss_anon_mib {r['after']['RssAnon'] / MiB:.1f} "
              f"rss_shmem_mib {r['after']['RssShmem'] / MiB:.1f}")
    ok = rise <= 1.05 * size and all(a <= 0.05 * size for a in anon)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
