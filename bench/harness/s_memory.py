# File: bench/harness/s_memory.py
#
# Scenario 2, memory for N = 1, 2, 4, 8 workers holding one model: private
# read(), private mmap and modelpool. All N workers are started together,
# touch every page and hold the bytes while we read /proc:
#   footprint = sum over workers of (Pss + VmPTE) + the broker's Pss of the
#               segment (modelpool) -- the physical memory the N workers
#               cost, shared pages split among their mappers;
#   system    = used memory (MemTotal - MemAvailable) and Shmem, as deltas
#               from just before the workers started (noisy on a busy host).
# The model's own resident copy (page cache or pool) is inside the footprint
# as soon as some worker maps it.
import subprocess
import time

from harness.broker import Broker, modelpool_ready
from harness.common import (GiB, MiB, ensure_file, model_name, log, mapping_pss, meminfo, not_measured,
                            proc_status, rotated, smaps_rollup, summary, used_bytes,
                            warm_page_cache)

METHODS = ["read", "mmap", "modelpool"]


def hold_workers(ctx, n, args):
    """Starts n holding workers, waits until all touched every page."""
    procs = []
    for _ in range(n):
        p = subprocess.Popen([ctx.prog("mp_bench_worker"), *args, "--hold",
                              "--t0", str(time.monotonic_ns())],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ctx.procs.append(p)
        procs.append(p)
    for p in procs:
        for line in p.stdout:
            if '"ready"' in line:
                break
        else:
            raise RuntimeError(f"worker {args} exited before ready ({p.wait()})")
    return procs


def release_workers(procs):
    for p in procs:
        p.stdin.close()
    for p in procs:
        p.wait(timeout=60)


def measure(ctx, n, args, broker, size):
    before = meminfo()
    procs = hold_workers(ctx, n, args)
    try:
        after = meminfo()
        pss = sum(smaps_rollup(p.pid)["Pss"] for p in procs)
        pte = sum(proc_status(p.pid).get("VmPTE", 0) for p in procs)
        broker_pss = mapping_pss(broker.pid, broker.segment) if broker else 0
    finally:
        release_workers(procs)
    footprint = pss + pte + broker_pss
    return {"footprint_x": footprint / size, "pss_mib": pss / MiB, "pte_mib": pte / MiB,
            "broker_segment_pss_mib": broker_pss / MiB,
            "used_delta_mib": (used_bytes(after) - used_bytes(before)) / MiB,
            "shmem_delta_mib": (after["Shmem"] - before["Shmem"]) / MiB}


def run(ctx):
    size = 256 * MiB if ctx.quick else GiB
    name = model_name(size)
    path = ensure_file(ctx, name, size)
    warm_page_cache(ctx, path)
    counts = [1, 2, 4, 8]
    reps = 1 if ctx.quick else 2
    why_not = modelpool_ready(ctx)
    broker = None
    if not why_not:
        broker = Broker(ctx, "mem", ctx.data_dir, 2 * size)
        broker.admin("load", model=name)
    rows = {m: {n: [] for n in counts} for m in METHODS}
    try:
        for rep in range(reps):
            for n in counts:
                for method in rotated(METHODS, rep + n):
                    if method == "modelpool":
                        if broker is None:
                            continue
                        args = ["--mode", "modelpool", "--socket", broker.socket, "--model", name]
                    else:
                        args = ["--mode", method, "--path", path]
                    b = broker if method == "modelpool" else None
                    rows[method][n].append(measure(ctx, n, args, b, size))
    finally:
        if broker is not None:
            broker.stop()
    out = {"status": "measured", "bytes": size, "reps": reps, "counts": counts, "methods": {}}
    for m in METHODS:
        if m == "modelpool" and why_not:
            out["methods"][m] = not_measured(why_not)
            continue
        out["methods"][m] = {
            str(n): {k: summary([r[k] for r in rows[m][n]]) for k in rows[m][n][0]}
            for n in counts}
    log("memory: " + ", ".join(
        f"{m} N=8 {v['8']['footprint_x']['median']:.2f}x" for m, v in out["methods"].items()
        if "8" in v))
    return out
