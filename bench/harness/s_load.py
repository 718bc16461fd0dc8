# File: bench/harness/s_load.py
#
# Scenario 3, load throughput into the pool, 64 MiB .. 4 GiB (quick: up to
# 256 MiB), with the file in the page cache ("warm") and not ("cold", up to
# 1 GiB: POSIX_FADV_DONTNEED on the file, plus `echo 1 > drop_caches` when
# root).
# Per size, temperature and repetition, interleaved:
#   read     read() of the file into one reused buffer: the source's speed
#   direct   O_DIRECT read (cold only): the device's speed
#   naive    read() + write() into a fresh /dev/shm file: what a pool that
#            simply copies the file would do
#   pool     admin `load` into modelpoold (after `evict`), timed end to end
#   pool_huge  the same into a pool whose segment is on a huge=always tmpfs
#            (warm only; mounted for the run when root, docs/hugepages.md)
# plus one memcpy measurement per repetition. GB/s are decimal (1e9 B/s);
# the pool's are also given as fractions of memcpy, of read() and of naive.
import contextlib
import time

from harness.broker import Broker, BrokerError, modelpool_ready
from harness.hugepages import huge_mount
from harness.s_limits import memcpy_gbps
from harness.common import (GiB, MiB, drop_page_cache, ensure_file, model_name, log, med, metric,
                            not_measured, ratio, rotated, run_json, summary, warm_page_cache)


def sizes_for(ctx):
    return [64 * MiB, 256 * MiB] if ctx.quick else [64 * MiB, 256 * MiB, GiB, 4 * GiB]


def cold_sizes_for(ctx):
    """Cold 4 GiB runs go at device speed, ~45 s each here: left out."""
    return [s for s in sizes_for(ctx) if s <= GiB]


def evict_quietly(broker, name):
    if broker is None:
        return
    try:
        broker.admin("evict", model=name)
    except BrokerError as e:
        if e.code != "not_found":
            raise


def time_pool_load(broker, name, size):
    evict_quietly(broker, name)
    t0 = time.perf_counter()
    broker.admin("load", model=name)
    return size / (time.perf_counter() - t0) / 1e9


def huge_pool(ctx, stack, max_size):
    """(broker, '') for a pool on a fresh huge=always tmpfs, or (None, why not)."""
    d, why = stack.enter_context(huge_mount("tmpfs", max_size + 64 * MiB))
    if why:
        return None, why
    try:
        broker = Broker(ctx, "load-huge", ctx.data_dir, max_size + 32 * MiB,
                        extra=["--segment-dir", d, "--high-watermark", "1"])
    except RuntimeError as e:
        return None, f"modelpoold on a huge=always tmpfs: {e}"
    stack.callback(broker.stop)  # before the unmount (LIFO)
    page = broker.stats().get("page_size")
    if page != 2 * MiB:
        return None, f"the broker reports {page}-byte pages on the huge=always tmpfs"
    return broker, ""


def run_one(ctx, method, path, name, size, broker, huge_broker=None):
    # One pool holds the model at a time: two resident 4 GiB copies (plus the
    # page cache) would measure memory pressure and compaction, not loading.
    if method == "pool":
        evict_quietly(huge_broker, name)
        return time_pool_load(broker, name, size)
    if method == "pool_huge":
        evict_quietly(broker, name)
        return time_pool_load(huge_broker, name, size)
    if method == "naive":
        lines = run_json(ctx, "mp_bench_file", "naive", "--path", path, "--dest",
                         ctx.shm_path("naive"))
    elif method == "direct":
        lines = run_json(ctx, "mp_bench_file", "read", "--path", path, "--direct")
    else:
        lines = run_json(ctx, "mp_bench_file", "read", "--path", path)
    return metric(lines, "throughput")


def run(ctx):
    sizes = sizes_for(ctx)
    files = {s: (model_name(s), ensure_file(ctx, model_name(s), s)) for s in sizes}
    why_not = modelpool_ready(ctx)
    broker = None
    huge = contextlib.ExitStack()
    huge_broker, why_huge = None, why_not
    if not why_not:
        broker = Broker(ctx, "load", ctx.data_dir, int(max(sizes) / 0.8) + 512 * MiB)
        huge_broker, why_huge = huge_pool(ctx, huge, max(sizes))
    methods = {"warm": ["read", "naive", "pool", "pool_huge"],
               "cold": ["read", "direct", "naive", "pool"]}
    temp_sizes = {"warm": sizes, "cold": cold_sizes_for(ctx)}
    gbps = {(t, m, s): [] for t in methods for m in methods[t] for s in temp_sizes[t]}
    residue, memcpy = [], []
    reps = ctx.reps if ctx.quick else min(ctx.reps, 3)  # 4 GiB runs dominate the suite's time
    try:
        for rep in range(reps):
            memcpy.append(memcpy_gbps(ctx))
            for s in sizes:
                name, path = files[s]
                for temp, ms in methods.items():
                    if s not in temp_sizes[temp]:
                        continue
                    for method in rotated(ms, rep):
                        if method == "pool" and broker is None:
                            continue
                        if method == "pool_huge" and huge_broker is None:
                            continue
                        if temp == "warm":
                            warm_page_cache(ctx, path)
                        else:
                            residue.append(drop_page_cache(ctx, path))
                        gbps[(temp, method, s)].append(run_one(ctx, method, path, name, s,
                                                               broker, huge_broker))
                for b in (broker, huge_broker):
                    evict_quietly(b, name)
    finally:
        if broker is not None:
            broker.stop()
        huge.close()  # the huge-page broker, then its mount
    memcpy_med = summary(memcpy)["median"]
    out = {"status": "measured", "sizes": sizes, "memcpy_gbps": memcpy_med, "reps": reps,
           "cold_resident_fraction_max": max(residue) if residue else None, "rows": []}
    for temp, ms in methods.items():
        for s in temp_sizes[temp]:
            row = {"temp": temp, "bytes": s}
            for m in ms:
                if m == "pool" and why_not:
                    row[m] = not_measured(why_not)
                elif m == "pool_huge" and huge_broker is None:
                    row[m] = not_measured(why_huge)
                else:
                    row[m] = summary(gbps[(temp, m, s)])
            if not why_not:
                pool = med(row["pool"])
                row["pool_over_memcpy"] = ratio(pool, memcpy_med)
                row["pool_over_read"] = ratio(pool, med(row["read"]))
                row["pool_over_naive"] = ratio(pool, med(row["naive"]))
            if huge_broker is not None and "pool_huge" in row:
                row["pool_huge_over_memcpy"] = ratio(med(row["pool_huge"]), memcpy_med)
            out["rows"].append(row)
    log("load: " + ", ".join(
        f"{r['temp']} {r['bytes'] // MiB}M pool/naive {r.get('pool_over_naive') or 0:.2f}"
        for r in out["rows"]))
    return out
