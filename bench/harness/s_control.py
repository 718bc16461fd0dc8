# File: bench/harness/s_control.py
#
# Scenario 4, the control plane: warm acquire + release of a resident model
# with 1, 4 and 16 client threads (one connection each), interleaved with
# the raw Unix-socket ping-pong at the same thread count. Reports p50/p99
# of one acquire+release pair, pairs per second, and the ratio of the pair's
# p50 to one ping-pong round trip (a pair is two round trips, so 2x is the
# floor for a request/reply design).
from harness.broker import Broker, modelpool_ready
from harness.common import (MiB, ensure_file, model_name, log, med, metric, not_measured, ratio,
                            rotated, run_json, summary)

THREADS = [1, 4, 16]


def run(ctx):
    name = model_name(MiB)
    ensure_file(ctx, name, MiB)
    secs = 0.5 if ctx.quick else 1.0
    why_not = modelpool_ready(ctx)
    broker = None
    if not why_not:
        broker = Broker(ctx, "ctl", ctx.data_dir, 256 * MiB)
        broker.admin("load", model=name)
    keys = ["p50_us", "p99_us", "ops", "acquire_p50_us", "release_p50_us"]
    data = {(src, t, k): [] for src in ("pingpong", "modelpool") for t in THREADS for k in keys}
    try:
        for rep in range(ctx.reps):
            for t in THREADS:
                for src in rotated(["pingpong", "modelpool"], rep):
                    if src == "pingpong":
                        lines = run_json(ctx, "mp_bench_pingpong", "--threads", t,
                                         "--seconds", secs)
                        p50, p99 = metric(lines, "p50"), metric(lines, "p99")
                    elif broker is not None:
                        lines = run_json(ctx, "mp_bench_acquire", "--socket", broker.socket,
                                         "--model", name, "--threads", t, "--seconds", secs)
                        p50, p99 = metric(lines, "pair_p50"), metric(lines, "pair_p99")
                    else:
                        continue
                    data[(src, t, "p50_us")].append(p50 / 1e3)
                    data[(src, t, "p99_us")].append(p99 / 1e3)
                    data[(src, t, "ops")].append(metric(lines, "ops"))
                    if src == "modelpool":
                        for k in ("acquire_p50", "release_p50"):
                            data[(src, t, k + "_us")].append(metric(lines, k) / 1e3)
    finally:
        if broker is not None:
            broker.stop()
    out = {"status": "measured", "seconds_per_run": secs, "rows": []}
    for t in THREADS:
        row = {"threads": t,
               "pingpong": {k: summary(data[("pingpong", t, k)]) for k in keys[:3]}}
        if why_not:
            row["modelpool"] = not_measured(why_not)
        else:
            row["modelpool"] = {k: summary(data[("modelpool", t, k)]) for k in keys}
            row["p50_over_pingpong"] = ratio(med(row["modelpool"]["p50_us"]),
                                             med(row["pingpong"]["p50_us"]))
        out["rows"].append(row)
    log("control: " + ", ".join(
        f"T={r['threads']} ratio {r.get('p50_over_pingpong') or 0:.2f}" for r in out["rows"]))
    return out
