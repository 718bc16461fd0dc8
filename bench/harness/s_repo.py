# File: bench/harness/s_repo.py
#
# Scenario 7, a repository: a directory below --models holding a sharded
# safetensors model (4 shards of 64 F32 tensors, 2 GiB in all; quick
# 256 MiB), its model.safetensors.index.json and a config.json, acquired as
# one model (docs/protocol.md, "Models of several files"). Three measures,
# each against its baseline in the same run:
#   cold    one acquire of the repository (the broker loads every file) vs
#           acquiring its 4 shards one by one by their file names, each
#           method in a fresh broker per run, timed from the first request to
#           the last reply on one connection; the shards are in the page cache
#           (read just before) and fresh memory is backed first, for both;
#   warm    acquire+release of the resident repository vs of one resident
#           single-file model (its first shard by its own name), p50 over
#           `mp_bench_acquire`'s pairs, one thread;
#   memory  N = 3 workers each acquire the repository and touch every tensor
#           (`mp_bench_worker --tensors`): the rise of Shmem (/proc/meminfo)
#           from before the load to all of them holding it, over the
#           repository's bytes, and each worker's RssAnon rise.
# The repository is written once into the data dir (kept with --keep-data).
import json
import os
import shutil
import subprocess
import time

from harness.broker import Broker, Conn, modelpool_ready
from harness.common import (GiB, MiB, log, mapping_pss, med, meminfo, metric, not_measured,
                            proc_status, ratio, rotated, run_json, smaps_rollup, summary,
                            warm_page_cache)

SHARDS = 4
TENSORS_PER_SHARD = 64
COLS = 1024  # F32 columns per tensor row
WORKERS = 3
# Repositories up to this size (the quick one) load in ~0.15 s, where one
# stray fault moves a sample by 10%: each repetition runs their cold methods
# SMALL_RUNS times, interleaved.
SMALL_MAX = 512 * MiB
SMALL_RUNS = 3


def shard_name(k):
    return f"model-{k + 1:05d}-of-{SHARDS:05d}.safetensors"


def _header(names, tensor_bytes):
    header, begin = {}, 0
    for name in names:
        header[name] = {"dtype": "F32", "shape": [tensor_bytes // (4 * COLS), COLS],
                        "data_offsets": [begin, begin + tensor_bytes]}
        begin += tensor_bytes
    # Padded to 8 bytes with spaces, as writers do, so the data is aligned.
    text = json.dumps(header, separators=(",", ":"))
    return (text + " " * (-len(text) % 8)).encode()


def write_repo(path, total):
    """Writes the repository into `path`.tmp, fsyncs it and renames it to `path`."""
    tensor_bytes = total // (SHARDS * TENSORS_PER_SHARD)
    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    # Each tensor is a window of one pseudo-random block at its own offset:
    # distinct contents without generating every byte.
    block = os.urandom(tensor_bytes + MiB)
    weight_map, k = {}, 0
    for s in range(SHARDS):
        names = [f"model.layers.{k + i}.weight" for i in range(TENSORS_PER_SHARD)]
        header = _header(names, tensor_bytes)
        with open(os.path.join(tmp, shard_name(s)), "wb") as f:
            f.write(len(header).to_bytes(8, "little") + header)
            for _ in names:
                off = (k * 4099) % MiB
                f.write(block[off:off + tensor_bytes])
                k += 1
            f.flush()
            os.fsync(f.fileno())
        weight_map.update({n: shard_name(s) for n in names})
    index = {"metadata": {"total_size": k * tensor_bytes}, "weight_map": weight_map}
    config = {"architectures": ["BenchForCausalLM"], "model_type": "bench",
              "hidden_size": COLS, "num_hidden_layers": k, "torch_dtype": "float32"}
    for name, doc in (("model.safetensors.index.json", index), ("config.json", config)):
        with open(os.path.join(tmp, name), "w") as f:
            json.dump(doc, f, indent=2)
    os.rename(tmp, path)


def ensure_repo(ctx, total):
    """(name below the data dir, its shards' paths, all its bytes); written
    once: a directory whose shards have the expected sizes is reused."""
    name = f"repo-{total // MiB}m"
    path = os.path.join(ctx.data_dir, name)
    tensor_bytes = total // (SHARDS * TENSORS_PER_SHARD)
    shards = [os.path.join(path, shard_name(s)) for s in range(SHARDS)]

    def shard_size(s):
        names = [f"model.layers.{s * TENSORS_PER_SHARD + i}.weight"
                 for i in range(TENSORS_PER_SHARD)]
        return 8 + len(_header(names, tensor_bytes)) + TENSORS_PER_SHARD * tensor_bytes

    if not all(os.path.exists(p) and os.path.getsize(p) == shard_size(s)
               for s, p in enumerate(shards)):
        shutil.rmtree(path, ignore_errors=True)
        t0 = time.monotonic()
        write_repo(path, total)
        log(f"repository: wrote {name} in {time.monotonic() - t0:.1f} s")
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    return name, shards, size


def cold_once(ctx, method, name, shards, size):
    """Seconds from the first acquire to the last reply, in a fresh broker."""
    broker = Broker(ctx, "repo-cold", ctx.data_dir, 2 * size)
    try:
        run_json(ctx, "mp_bench_file", "backmem", "--bytes", size + 64 * MiB)
        for p in shards:
            warm_page_cache(ctx, p)
        conn = Conn(broker.socket)
        conn.call("hello", proto=1)
        models = [name] if method == "repository" else [f"{name}/{shard_name(s)}"
                                                        for s in range(SHARDS)]
        t0 = time.perf_counter()
        handles = [conn.call("acquire", model=m)["handle"] for m in models]
        secs = time.perf_counter() - t0
        for h in handles:
            conn.call("release", handle=h)
        conn.close()
        return secs
    finally:
        broker.stop()


def measure_cold(ctx, name, shards, size):
    methods = ["repository", "shards"]
    secs = {m: [] for m in methods}
    runs = SMALL_RUNS if size <= SMALL_MAX else 1
    for rep in range(ctx.reps):
        for method in [m for k in range(runs) for m in rotated(methods, rep + k)]:
            secs[method].append(cold_once(ctx, method, name, shards, size))
    out = {m: {"ms": summary([1e3 * s for s in v]),
               "gbps": summary([size / s / 1e9 for s in v])} for m, v in secs.items()}
    out["runs_per_rep"] = runs
    out["repository_over_shards"] = ratio(med(out["repository"]["ms"]), med(out["shards"]["ms"]))
    return out


def measure_warm(ctx, name, size):
    secs = 0.5 if ctx.quick else 1.0
    single = f"{name}/{shard_name(0)}"
    models = {"repository": name, "file": single}
    keys = ["p50_us", "p99_us", "acquire_p50_us", "release_p50_us", "ops"]
    data = {(m, k): [] for m in models for k in keys}
    with Broker(ctx, "repo-warm", ctx.data_dir, 2 * size) as broker:
        broker.admin("load", model=name)  # its first shard is then resident too
        for rep in range(ctx.reps):
            for m in rotated(list(models), rep):
                lines = run_json(ctx, "mp_bench_acquire", "--socket", broker.socket,
                                 "--model", models[m], "--seconds", secs)
                data[(m, "p50_us")].append(metric(lines, "pair_p50") / 1e3)
                data[(m, "p99_us")].append(metric(lines, "pair_p99") / 1e3)
                data[(m, "acquire_p50_us")].append(metric(lines, "acquire_p50") / 1e3)
                data[(m, "release_p50_us")].append(metric(lines, "release_p50") / 1e3)
                data[(m, "ops")].append(metric(lines, "ops"))
        loads = broker.stats().get("loads")
    out = {m: {k: summary(data[(m, k)]) for k in keys} for m in models}
    out.update({"file_model": single, "seconds_per_run": secs, "broker_loads": loads,
                "repository_over_file": ratio(med(out["repository"]["p50_us"]),
                                              med(out["file"]["p50_us"]))})
    return out


def hold(ctx, n, args):
    """Starts n holding workers together; (procs, JSON lines of each) once
    every one has touched its bytes."""
    procs, lines = [], []
    for _ in range(n):
        p = subprocess.Popen([ctx.prog("mp_bench_worker"), *args, "--hold"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ctx.procs.append(p)
        procs.append(p)
    for p in procs:
        mine = []
        for line in p.stdout:
            mine.append(json.loads(line))
            if mine[-1].get("metric") == "ready":
                break
        else:
            raise RuntimeError(f"worker {args} exited before ready ({p.wait()})")
        lines.append(mine)
    return procs, lines


def memory_once(ctx, name, size):
    with Broker(ctx, "repo-mem", ctx.data_dir, 2 * size) as broker:
        before = meminfo()
        procs, lines = hold(ctx, WORKERS, ["--mode", "modelpool", "--socket", broker.socket,
                                           "--model", name, "--tensors"])
        try:
            after = meminfo()
            pss = sum(smaps_rollup(p.pid)["Pss"] for p in procs)
            pte = sum(proc_status(p.pid).get("VmPTE", 0) for p in procs)
            broker_pss = mapping_pss(broker.pid, broker.segment)
            refs = next((r["refs"] for r in broker.admin("list")["models"]
                         if r["name"] == name), None)
        finally:
            for p in procs:
                p.stdin.close()
            for p in procs:
                p.wait(timeout=60)
    rise = [metric(ls, "rss_anon_after") - metric(ls, "rss_anon_before") for ls in lines]
    return {"shmem_delta_x": (after["Shmem"] - before["Shmem"]) / size,
            "shmem_delta_mib": (after["Shmem"] - before["Shmem"]) / MiB,
            "footprint_x": (pss + pte + broker_pss) / size,
            "rss_anon_rise_max_mib": max(rise) / MiB,
            "rss_anon_max_mib": max(metric(ls, "rss_anon_after") for ls in lines) / MiB,
            "touched_mib": lines[0][0]["bytes"] / MiB,  # every tensor's bytes
            "refs": refs}


def measure_memory(ctx, name, size):
    reps = 1 if ctx.quick else min(ctx.reps, 3)
    rows = [memory_once(ctx, name, size) for _ in range(reps)]
    out = {k: summary([r[k] for r in rows]) for k in rows[0] if k != "refs"}
    out.update({"workers": WORKERS, "reps": reps, "refs": rows[-1]["refs"]})
    return out


def run(ctx):
    why_not = modelpool_ready(ctx)
    if why_not:
        return not_measured(why_not)
    total = 256 * MiB if ctx.quick else 2 * GiB
    name, shards, size = ensure_repo(ctx, total)
    out = {"status": "measured", "repository": name, "bytes": size, "shards": SHARDS,
           "tensors": SHARDS * TENSORS_PER_SHARD,
           "shard_bytes": [os.path.getsize(p) for p in shards]}
    out["cold"] = measure_cold(ctx, name, shards, size)
    out["warm"] = measure_warm(ctx, name, size)
    out["memory"] = measure_memory(ctx, name, size)
    c, w, m = out["cold"], out["warm"], out["memory"]
    log(f"repository: {size / MiB:.0f} MiB, cold whole/shards "
        f"{c['repository_over_shards'] or 0:.2f}, warm whole/file "
        f"{w['repository_over_file'] or 0:.2f}, N={WORKERS} Shmem "
        f"{med(m['shmem_delta_x']):.3f}x, RssAnon rise {med(m['rss_anon_rise_max_mib']):.1f} MiB")
    return out
