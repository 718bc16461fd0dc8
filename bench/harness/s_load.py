# File: bench/harness/s_load.py
#
# Scenario 3, load throughput into the pool, 64 MiB .. 4 GiB (quick: up to
# 256 MiB), with the file in the page cache ("warm") and not ("cold":
# POSIX_FADV_DONTNEED on the file, plus `echo 1 > drop_caches` when root;
# the cold 4 GiB rows in the first repetition only).
# Per size, temperature and repetition, interleaved:
#   read     read() of the file into one reused buffer: the source's speed
#   direct   O_DIRECT read (cold only): the device's speed
#   naive    read() + write() into a fresh /dev/shm file: what a pool that
#            simply copies the file would do
#   pool     admin `load` into modelpoold (after `evict`), timed end to end
#   pool_huge  the same into a pool whose segment is on a huge=always tmpfs
#            (warm only; mounted for the run when root, docs/hugepages.md)
#   pool_hugetlb  the same on hugetlbfs, its 2 MiB pages added to the
#            kernel's pool when the mount is made, before any timing
# Before each method that fills fresh memory (naive, pool, pool_huge), as
# much anonymous memory is written and freed (mp_bench_file backmem): on a
# VM whose kernel reports free memory to the hypervisor, memory that sat
# free has been taken back and costs a host fault per page when next
# written, so every method starts from memory the host backs, as memcpy's
# buffers and the hugetlbfs pages do (docs/benchmarks.md).
# plus one memcpy measurement per repetition. GB/s are decimal (1e9 B/s);
# the pool's are also given as fractions of memcpy, of read() and of naive.
import contextlib
import time

from harness.broker import Broker, BrokerError, modelpool_ready
from harness.hugepages import huge_mount
from harness.s_limits import memcpy_gbps
from harness.common import (GiB, MiB, counters_delta, drop_page_cache, ensure_file,
                            kernel_counters, model_name, log, med, metric, not_measured, ratio,
                            rotated, run_json, summary, warm_page_cache)


def sizes_for(ctx):
    return [64 * MiB, 256 * MiB] if ctx.quick else [64 * MiB, 256 * MiB, GiB, 4 * GiB]


# Cold runs above this size go at the device's speed (a buffered cold read
# of 4 GiB took 8-11 s here, O_DIRECT 2-3 s): they run in the first
# repetition only, to keep the full suite within its 10 minutes.
COLD_ONCE_ABOVE = GiB
# Files up to this size load in tens of milliseconds, where one late page
# fault or host hiccup moves a sample by 10%: each repetition runs them
# SMALL_RUNS times, interleaved, so their medians rest on more samples.
SMALL_MAX = 256 * MiB
SMALL_RUNS = 3


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


HUGE_KINDS = {"pool_huge": "tmpfs", "pool_hugetlb": "hugetlbfs"}
FILLS_FRESH_MEMORY = {"naive", "pool", "pool_huge"}
KIND_LABEL = {"tmpfs": "a huge=always tmpfs", "hugetlbfs": "hugetlbfs"}


def huge_pool(ctx, stack, max_size, kind):
    """(broker, '') for a pool on a fresh `kind` mount, or (None, why not)."""
    d, why = stack.enter_context(huge_mount(kind, max_size + 64 * MiB))
    if why:
        return None, why
    try:
        broker = Broker(ctx, f"load-{kind}", ctx.data_dir, max_size + 32 * MiB,
                        extra=["--segment-dir", d, "--high-watermark", "1"])
    except RuntimeError as e:
        return None, f"modelpoold on {KIND_LABEL[kind]}: {e}"
    stack.callback(broker.stop)  # before the unmount (LIFO)
    page = broker.stats().get("page_size")
    if page != 2 * MiB:
        return None, f"the broker reports {page}-byte pages on {KIND_LABEL[kind]}"
    return broker, ""


def run_one(ctx, method, path, name, size, pools):
    # One pool holds the model at a time: two resident 4 GiB copies (plus the
    # page cache) would measure memory pressure, not loading.
    if method in pools:
        for other, b in pools.items():
            if other != method:
                evict_quietly(b, name)
        return time_pool_load(pools[method], name, size)
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
    pools, why = {}, {m: why_not for m in ["pool", *HUGE_KINDS]}
    huge = contextlib.ExitStack()
    if not why_not:
        pools["pool"] = Broker(ctx, "load", ctx.data_dir, int(max(sizes) / 0.8) + 512 * MiB)
        for m, kind in HUGE_KINDS.items():
            b, why[m] = huge_pool(ctx, huge, max(sizes), kind)
            if b is not None:
                pools[m] = b
    methods = {"warm": ["read", "naive", "pool", *HUGE_KINDS],
               "cold": ["read", "direct", "naive", "pool"]}
    gbps = {(t, m, s): [] for t in methods for m in methods[t] for s in sizes}
    residue, memcpy = [], []
    reps = ctx.reps if ctx.quick else min(ctx.reps, 3)  # 4 GiB runs dominate the suite's time
    counters0 = kernel_counters()
    try:
        for rep in range(reps):
            memcpy.append(memcpy_gbps(ctx))
            for s in sizes:
                name, path = files[s]
                for temp, ms in methods.items():
                    if temp == "cold" and s > COLD_ONCE_ABOVE and rep > 0:
                        continue
                    runs = SMALL_RUNS if s <= SMALL_MAX else 1
                    for method in [m for k in range(runs) for m in rotated(ms, rep + k)]:
                        if method.startswith("pool") and method not in pools:
                            continue
                        if method in FILLS_FRESH_MEMORY:
                            run_json(ctx, "mp_bench_file", "backmem", "--bytes", s + 64 * MiB)
                        if temp == "warm":
                            warm_page_cache(ctx, path)
                        else:
                            residue.append(drop_page_cache(ctx, path))
                        gbps[(temp, method, s)].append(run_one(ctx, method, path, name, s,
                                                               pools))
                for b in pools.values():
                    evict_quietly(b, name)
    finally:
        if "pool" in pools:
            pools["pool"].stop()
        huge.close()  # the huge-page brokers, then their mounts
    memcpy_med = summary(memcpy)["median"]
    out = {"status": "measured", "sizes": sizes, "memcpy_gbps": memcpy_med, "reps": reps,
           "small_runs": SMALL_RUNS, "small_max": SMALL_MAX,
           "cold_resident_fraction_max": max(residue) if residue else None,
           "kernel": counters_delta(counters0, kernel_counters()), "rows": []}
    for temp, ms in methods.items():
        for s in sizes:
            row = {"temp": temp, "bytes": s}
            for m in ms:
                if m.startswith("pool") and m not in pools:
                    row[m] = not_measured(why[m])
                else:
                    row[m] = summary(gbps[(temp, m, s)])
            if not why_not:
                pool = med(row["pool"])
                row["pool_over_memcpy"] = ratio(pool, memcpy_med)
                row["pool_over_read"] = ratio(pool, med(row["read"]))
                row["pool_over_naive"] = ratio(pool, med(row["naive"]))
            for m in HUGE_KINDS:
                if m in pools and m in row:
                    row[m + "_over_memcpy"] = ratio(med(row[m]), memcpy_med)
            out["rows"].append(row)
    log("load: " + ", ".join(
        f"{r['temp']} {r['bytes'] // MiB}M pool/naive {r.get('pool_over_naive') or 0:.2f}"
        for r in out["rows"]))
    return out
