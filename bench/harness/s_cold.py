# File: bench/harness/s_cold.py
#
# Scenario 1, worker cold start: a fresh process gets every byte of a 1 GiB
# model, (a) read() into its own buffer, (b) mmap(MAP_PRIVATE) of the file
# + touch every page, (c) modelpool connect + acquire + touch every page with
# the model resident, (d) the same on huge pages (later). The file is in the
# page cache for (a) and (b), their best case. The limit -- a fresh process
# mapping a plain 1 GiB /dev/shm file (4 KiB pages), with and without
# MAP_POPULATE -- runs as two more methods. Methods are interleaved per
# repetition; times are from just before the spawn, so process start-up is
# included for all of them.
import os

from harness.broker import Broker, modelpool_ready
from harness.common import (GiB, ensure_file, model_name, log, med, metric, not_measured, ratio,
                            rotated, run_json, summary, warm_page_cache)
from harness.s_limits import spawn_worker

METHODS = ["read", "mmap", "modelpool", "shm_limit", "shm_populate_limit"]


def run(ctx):
    size = GiB
    name = model_name(size)
    path = ensure_file(ctx, name, size)
    warm_page_cache(ctx, path)
    plain = ctx.shm_path("plain")
    run_json(ctx, "mp_bench_file", "naive", "--path", path, "--dest", plain, "--keep")
    why_not = modelpool_ready(ctx)
    broker = None
    if not why_not:
        broker = Broker(ctx, "cold", ctx.data_dir, 2 * size)
        broker.admin("load", model=name)  # resident before any worker starts
    first = {m: [] for m in METHODS}
    done = {m: [] for m in METHODS}
    faults = {m: [] for m in METHODS}
    try:
        for rep in range(ctx.reps):
            for method in rotated(METHODS, rep):
                if method == "modelpool":
                    if broker is None:
                        continue
                    lines = spawn_worker(ctx, "--mode", "modelpool", "--socket", broker.socket,
                                         "--model", name)
                elif method.startswith("shm"):
                    extra = ["--populate"] if "populate" in method else []
                    lines = spawn_worker(ctx, "--mode", "shm", "--path", plain, *extra)
                else:
                    lines = spawn_worker(ctx, "--mode", method, "--path", path)
                first[method].append(metric(lines, "first_byte_ns") / 1e6)
                done[method].append(metric(lines, "all_bytes_ns") / 1e6)
                faults[method].append(metric(lines, "minor_faults"))
        if broker is not None:
            stats = broker.stats()
            if stats.get("loads", 0) != 1:
                log(f"cold start: expected 1 load, broker reports {stats.get('loads')}")
    finally:
        os.unlink(plain)  # give the 1 GiB back before the next scenario
        if broker is not None:
            broker.stop()
    out = {"status": "measured", "bytes": size, "methods": {}}
    for m in METHODS[:3] + ["modelpool_hugepages"] + METHODS[3:]:
        if m == "modelpool_hugepages":
            out["methods"][m] = not_measured(
                "huge-page pool (--segment-dir on a huge=always tmpfs / hugetlbfs) comes later")
        elif m == "modelpool" and why_not:
            out["methods"][m] = not_measured(why_not)
        else:
            out["methods"][m] = {"first_byte_ms": summary(first[m]),
                                 "all_bytes_ms": summary(done[m]),
                                 "minor_faults": summary(faults[m])}
    mp = out["methods"]["modelpool"]
    if "all_bytes_ms" in mp:
        t = med(mp["all_bytes_ms"])
        out["ratios"] = {
            "mmap_over_modelpool": ratio(med(out["methods"]["mmap"]["all_bytes_ms"]), t),
            "read_over_modelpool": ratio(med(out["methods"]["read"]["all_bytes_ms"]), t),
        }
    log("cold start: " + ", ".join(
        f"{m} {med(v['all_bytes_ms']):.0f} ms" for m, v in out["methods"].items()
        if "all_bytes_ms" in v))
    return out
