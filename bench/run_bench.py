#!/usr/bin/python3
# File: bench/run_bench.py
#
# The bench driver (GitHub issue 7; docs/benchmarks.md): runs the machine
# limits and scenarios 1-8 with the programs built in build-bench/bench,
# interleaving baselines and modelpool within each repetition, and writes
#   bench/results/<host>-<date>-<HHMM>.json   every sample and summary
#   bench/results/<host>-<date>-<HHMM>.md     the summary with PASS/FAIL per target
#   bench/results/<host>-<date>-<HHMM>-*.png  plots
#   bench/results/latest.md, latest-*.png      copies of both under fixed
#                                              names (kept in the repository)
# Usually started by scripts/bench.sh, which builds first. Everything it
# creates in /dev/shm, the run dirs and its brokers is removed on exit; the
# model files in --data-dir too unless --keep-data.
import argparse
import json
import os
import platform
import shutil
import signal
import socket
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (plots, report, s_cold, s_control, s_eviction, s_limits,  # noqa: E402
                     s_load, s_memory, s_remote, s_repo, s_scaling, targets)
from harness.common import GiB, Ctx, log, not_measured  # noqa: E402

SCENARIOS = ["limits", "cold_start", "memory", "load", "control", "eviction", "scaling",
             "repository", "remote", "micro"]


def parse_args():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    ap.add_argument("--reps", type=int, help="repetitions (default 5, quick 3)")
    ap.add_argument("--only", default="", help="comma list of: " + ",".join(SCENARIOS))
    ap.add_argument("--build-dir", default=os.path.join(root, "build-bench"))
    ap.add_argument("--out-dir", default=os.path.join(root, "bench", "results"))
    ap.add_argument("--data-dir", help="model files; must be on a disk, not tmpfs "
                    "(default BUILD_DIR/bench-data)")
    ap.add_argument("--keep-data", action="store_true", help="keep model files for next run")
    ap.add_argument("--no-drop-caches", action="store_true",
                    help="cold loads: only POSIX_FADV_DONTNEED, never /proc/sys/vm/drop_caches")
    return ap.parse_args()


def machine_meta(args, started):
    with open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    try:
        with open("/sys/kernel/mm/transparent_hugepage/shmem_enabled") as f:
            thp = next(w for w in f.read().split() if w.startswith("[")).strip("[]")
    except (OSError, StopIteration):
        thp = "?"
    return {"host": socket.gethostname(), "date": time.strftime("%Y-%m-%d", started),
            "time": time.strftime("%H:%M:%S", started), "kernel": platform.release(),
            "cpu": cpu, "cores": os.cpu_count(), "mem_gib": mem_kib / (1 << 20),
            "shmem_thp": thp, "loadavg": " ".join(f"{v:.2f}" for v in os.getloadavg()),
            "quick": args.quick, "command": " ".join(["bench/run_bench.py"] + sys.argv[1:]),
            "root": os.geteuid() == 0}


def fs_type(path):
    """Filesystem type of `path`, from the longest matching /proc/mounts entry."""
    best, kind = "", "?"
    real = os.path.realpath(path)
    with open("/proc/mounts") as f:
        for line in f:
            _, mnt, typ = line.split()[:3]
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
                best, kind = mnt, typ
    return kind


def check_space(ctx):
    if fs_type(ctx.data_dir) in ("tmpfs", "ramfs"):
        log(f"warning: {ctx.data_dir} is on tmpfs: 'cold' loads will not be cold; use --data-dir")
    need = (2 if ctx.quick else 6) * GiB
    if not ctx.only or "repository" in ctx.only:
        need += (256 << 20) if ctx.quick else 2 * GiB  # the repository scenario's shards
    if not ctx.only or "remote" in ctx.only:
        need += (640 << 20) if ctx.quick else 5 * GiB  # its model, proxy cache and 3 disk tiers
    free = shutil.disk_usage(ctx.data_dir).free
    if free < need:
        sys.exit(f"run_bench: {ctx.data_dir} has {free / GiB:.1f} GiB free, needs {need / GiB}")


def run_scenarios(ctx, results):
    plan = [("limits", lambda: s_limits.run(ctx)), ("cold_start", lambda: s_cold.run(ctx)),
            ("memory", lambda: s_memory.run(ctx)),
            ("load", lambda: s_load.run(ctx)),
            ("control", lambda: s_control.run(ctx)), ("eviction", lambda: s_eviction.run_eviction(ctx)),
            ("scaling", lambda: s_scaling.run(ctx)), ("repository", lambda: s_repo.run(ctx)),
            ("remote", lambda: s_remote.run(ctx)),
            ("micro", lambda: s_eviction.run_micro(ctx))]
    for key, fn in plan:
        if ctx.only and key not in ctx.only:
            continue
        t0 = time.monotonic()
        log(f"{key} ...")
        try:
            results[key] = fn()
        except Exception as e:  # one broken scenario must not lose the others
            traceback.print_exc()
            results[key] = not_measured(f"failed: {e}")
        results[key]["seconds"] = time.monotonic() - t0


def main():
    args = parse_args()
    started = time.localtime()
    t_start = time.monotonic()
    bin_dir = os.path.join(args.build_dir, "bench")
    data_dir = args.data_dir or os.path.join(args.build_dir, "bench-data")
    os.makedirs(data_dir, exist_ok=True)
    os.makedirs(args.out_dir, exist_ok=True)
    ctx = Ctx(quick=args.quick, reps=args.reps or (3 if args.quick else 5), bin_dir=bin_dir,
              broker_bin=os.path.join(args.build_dir, "broker", "modelpoold"),
              data_dir=data_dir, tag=str(os.getpid()), drop_caches=not args.no_drop_caches,
              only=set(filter(None, args.only.split(","))))
    unknown = ctx.only - set(SCENARIOS)
    if unknown:
        sys.exit(f"run_bench: unknown scenario(s) {','.join(sorted(unknown))}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    check_space(ctx)
    meta = machine_meta(args, started)
    meta["reps"] = ctx.reps
    results = {}
    try:
        run_scenarios(ctx, results)
    finally:
        ctx.cleanup()
        if not args.keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)
    meta["duration_s"] = time.monotonic() - t_start
    doc = {"meta": meta, "results": results, "targets": targets.evaluate(results)}
    prefix = f"{meta['host']}-{meta['date']}-{time.strftime('%H%M', started)}"
    json_path = os.path.join(args.out_dir, prefix + ".json")
    with open(json_path, "w") as f:  # first, so a plotting bug cannot lose the numbers
        json.dump(doc, f, indent=1)
    try:
        doc["plots"] = plots.make_all(results, args.out_dir, prefix)
    except Exception:
        traceback.print_exc()
        doc["plots"] = {}
    with open(json_path, "w") as f:
        json.dump(doc, f, indent=1)
    with open(os.path.join(args.out_dir, prefix + ".md"), "w") as f:
        f.write(report.render(doc))
    # latest.md and its plots under fixed names, the ones the repository keeps.
    latest = dict(doc, plots=copy_latest_plots(doc.get("plots", {}), args.out_dir))
    with open(os.path.join(args.out_dir, "latest.md"), "w") as f:
        f.write(report.render(latest))
    log(f"done in {meta['duration_s']:.0f} s: {os.path.join(args.out_dir, prefix + '.md')}")
    for t in doc["targets"]:
        log(f"  {t['verdict']:12} {t['target']}")


def copy_latest_plots(plots, out_dir):
    """Copies each scenario's plots to latest-<scenario>[-i].png, drops the
    latest-*.png of scenarios this run did not plot; returns the new names."""
    out = {}
    for key, pngs in plots.items():
        out[key] = []
        for i, png in enumerate(pngs):
            name = f"latest-{key}.png" if len(pngs) == 1 else f"latest-{key}-{i}.png"
            shutil.copyfile(os.path.join(out_dir, png), os.path.join(out_dir, name))
            out[key].append(name)
    keep = {n for names in out.values() for n in names}
    for name in os.listdir(out_dir):
        if name.startswith("latest-") and name.endswith(".png") and name not in keep:
            os.remove(os.path.join(out_dir, name))
    return out


if __name__ == "__main__":
    main()
