# File: bench/harness/s_scaling.py
#
# Scenario 6, scaling: warm acquire+release latency (one thread, a random
# resident model per iteration) with 1 .. 10,000 resident 4 KiB models
# (quick: up to 1,000), the broker's memory per resident model (RssAnon,
# /proc/PID/status) and per connected idle client, and the segment memory
# per small model (Shmem). Load time vs model size comes from scenario 3.
# A 4 KiB model holds one 4 KiB page of memory and of the budget, but takes a
# 2 MiB extent of the segment's offset space: the broker gets a small budget
# and an offset space for all the models (--offset-space-factor), and
# watermark eviction is off so all stay resident. Should the segment ever
# hold much more than the models' pages, the count is capped to an eighth of
# MemAvailable (and the note says so) rather than exhaust the host.
import math
import os
import subprocess
import time

from harness.broker import Broker, BrokerError, modelpool_ready
from harness.common import (MiB, log, meminfo, metric, not_measured, proc_status, run_json,
                            summary)

EXTENT = 2 * MiB
SMALL = 4096


def make_small_files(ctx, n):
    d = os.path.join(ctx.data_dir, "small")
    os.makedirs(d, exist_ok=True)
    for i in range(n):
        p = os.path.join(d, f"m{i:05d}.bin")
        if not os.path.exists(p):
            with open(p, "wb") as f:
                f.write(os.urandom(SMALL))


def clients_cost(ctx, broker, count):
    """Broker RssAnon growth per idle connected client."""
    before = proc_status(broker.pid)["RssAnon"]
    p = subprocess.Popen([ctx.prog("mp_bench_clients"), "--socket", broker.socket,
                          "--count", str(count)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    ctx.procs.append(p)
    ok = any('"ready"' in line for line in p.stdout)
    after = proc_status(broker.pid)["RssAnon"] if ok else before
    p.stdin.close()
    p.wait(timeout=60)
    return (after - before) / count if ok else None


def measure_acquire(ctx, broker, n):
    samples = {"p50_us": [], "p99_us": [], "ops": []}
    for _ in range(ctx.reps):
        lines = run_json(ctx, "mp_bench_acquire", "--socket", broker.socket,
                         "--pattern", "small/m%05d.bin", "--count", n,
                         "--seconds", 0.25 if ctx.quick else 0.5)
        samples["p50_us"].append(metric(lines, "pair_p50") / 1e3)
        samples["p99_us"].append(metric(lines, "pair_p99") / 1e3)
        samples["ops"].append(metric(lines, "ops"))
    return {k: summary(v) for k, v in samples.items()}


def run(ctx):
    why_not = modelpool_ready(ctx)
    if why_not:
        return not_measured(why_not)
    counts = [1, 10, 100, 1000] if ctx.quick else [1, 10, 100, 1000, 10000]
    make_small_files(ctx, counts[-1])
    avail = meminfo()["MemAvailable"]
    budget = 256 * MiB  # 10,000 models hold 40 MiB of it
    factor = max(16, math.ceil(counts[-1] * EXTENT * 1.05 / budget))
    cap = counts[-1]
    notes, rows, loaded, load_s, oversized = [], [], 0, 0.0, False
    with Broker(ctx, "scale", ctx.data_dir, budget,
                extra=["--high-watermark", "1", "--low-watermark", "0.95",
                       "--offset-space-factor", str(factor)]) as broker:
        shm0, rss0 = meminfo()["Shmem"], proc_status(broker.pid)["RssAnon"]
        for n in counts:
            if n > cap:
                notes.append(f"{n} models not measured: capped at {cap}")
                n = cap
                if rows and rows[-1]["models"] >= n:
                    break
            t0 = time.perf_counter()
            try:
                while loaded < n:
                    broker.admin("load", model=f"small/m{loaded:05d}.bin")
                    loaded += 1
            except BrokerError as e:
                notes.append(f"stopped at {loaded} models: {e}")
                break
            finally:
                load_s += time.perf_counter() - t0
            shm_per_model = (meminfo()["Shmem"] - shm0) / loaded
            if shm_per_model > 16 * SMALL and n >= 100 and not oversized:
                oversized = True
                cap = min(cap, int(avail / 8 / shm_per_model))
                notes.append(f"the segment holds {shm_per_model / 1024:.0f} KiB of memory per "
                             f"4 KiB model, so the run stops at {cap} models (an eighth of "
                             f"MemAvailable)")
            st = proc_status(broker.pid)
            rows.append({"models": n, **measure_acquire(ctx, broker, n),
                         "broker_rss_anon_mib": st["RssAnon"] / MiB,
                         "broker_rss_shmem_mib": st.get("RssShmem", 0) / MiB,
                         "shmem_per_model_kib": shm_per_model / 1024})
        per_client = clients_cost(ctx, broker, 50 if ctx.quick else 200)
    out = {"status": "measured", "rows": rows, "note": "; ".join(notes),
           "models_loaded": loaded,
           "small_load_ms": 1e3 * load_s / loaded if loaded else None,
           # Slope from the first row: the first load also allocates the loader's buffers.
           "broker_rss_per_model_kib": ((rows[-1]["broker_rss_anon_mib"]
                                         - rows[0]["broker_rss_anon_mib"]) * 1024
                                        / (rows[-1]["models"] - rows[0]["models"])
                                        if len(rows) > 1 else None),
           "broker_rss_first_load_mib": (rows[0]["broker_rss_anon_mib"] - rss0 / MiB
                                         if rows else None),
           "broker_rss_per_client_kib": None if per_client is None else per_client / 1024}
    log(f"scaling: {loaded} models, " + ", ".join(
        f"N={r['models']} p50 {r['p50_us']['median']:.0f} us" for r in rows))
    return out
