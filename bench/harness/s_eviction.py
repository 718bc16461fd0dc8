# File: bench/harness/s_eviction.py
#
# Scenario 5, eviction quality: the broker's own policies
# (make_eviction_policy, library modelpool_pool) replayed offline on Zipf
# traces (alpha 0.8, 1.0, 1.2; 50 models of log-uniform sizes 64 MiB ..
# 16 GiB; budget 20% of all bytes), next to Belady-size and its size-weighted
# variant computed with knowledge of the future. Several seeds per alpha
# (the repetitions). Also runs the Google Benchmark micro-benchmarks of the
# codec and the policies (mp_bench_micro) and keeps their ns/op.
import json
import subprocess

from harness.common import log, not_measured, run_json, summary

ALPHAS = [0.8, 1.0, 1.2]


def run_eviction(ctx):
    if not ctx.has_prog("mp_bench_eviction"):
        return not_measured("library modelpool_pool (broker/pool) not built yet")
    requests = 50000 if ctx.quick else 200000
    data = {}
    for alpha in ALPHAS:
        for seed in range(1, ctx.reps + 1):
            for line in run_json(ctx, "mp_bench_eviction", "--alpha", alpha, "--seed", seed,
                                 "--requests", requests):
                key = (alpha, line["policy"], line["metric"])
                data.setdefault(key, []).append(line["value"])
    policies = list(dict.fromkeys(k[1] for k in data))  # the broker's order, default first
    rows = []
    for alpha in ALPHAS:
        row = {"alpha": alpha}
        for p in policies:
            row[p] = {m: summary(data.get((alpha, p, m), []))
                      for m in ("hit_rate", "byte_hit_rate")}
            for m in ("hit_rate", "byte_hit_rate"):  # per seed, so trace noise cancels
                pairs = zip(data.get((alpha, p, m), []), data.get((alpha, "belady", m), []))
                row[p][m + "_vs_belady"] = summary([a / b for a, b in pairs if b])
            # Against LRU on the same trace (seed): the target is "on every trace".
            pairs = list(zip(data.get((alpha, p, "byte_hit_rate"), []),
                             data.get((alpha, "lru", "byte_hit_rate"), [])))
            per_trace = [a / b for a, b in pairs if b]
            row[p]["byte_hit_rate_vs_lru"] = summary(per_trace)
            row[p]["byte_hit_rate_vs_lru_worst"] = min(per_trace) if per_trace else None
        rows.append(row)
    log("eviction: " + ", ".join(
        f"a={r['alpha']} " + "/".join(f"{p} {r[p]['hit_rate']['median']:.2f}" for p in policies)
        for r in rows))
    return {"status": "measured", "policies": policies, "requests": requests,
            "models": 50, "budget_fraction": 0.2, "seeds": ctx.reps, "rows": rows}


def run_micro(ctx):
    if not ctx.has_prog("mp_bench_micro"):
        return not_measured("Google Benchmark (libbenchmark-dev) not found at configure time")
    min_time = "0.02" if ctx.quick else "0.1"  # seconds; libbenchmark 1.7 wants a bare number
    out = subprocess.run([ctx.prog("mp_bench_micro"), "--benchmark_format=json",
                          f"--benchmark_min_time={min_time}"],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        return not_measured(f"mp_bench_micro failed: {out.stderr.strip()[-300:]}")
    doc = json.loads(out.stdout)
    rows = [{"name": b["name"], "ns_per_op": b["real_time"] if b.get("time_unit") == "ns"
             else b["real_time"] * {"us": 1e3, "ms": 1e6}.get(b.get("time_unit"), 1)}
            for b in doc.get("benchmarks", [])]
    has_policy = any("OnAccess" in r["name"] for r in rows)
    return {"status": "measured", "rows": rows,
            "note": "" if has_policy else "policy micro-benchmarks need modelpool_pool"}
