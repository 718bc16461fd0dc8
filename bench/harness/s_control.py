# File: bench/harness/s_control.py
#
# Scenario 4, the control plane: warm acquire + release of a resident model
# with 1, 4 and 16 client threads (one connection each), interleaved with
# the raw Unix-socket ping-pong at the same thread count and placement.
# Reports p50/p99 of one acquire+release pair, pairs per second, and the
# ratio of the pair's p50 to one ping-pong round trip. A pair is one round
# trip (acquire) plus one send (release asks for no reply), so 1x is the
# floor for a request/reply design.
#
# Placement decides what a round trip costs: with broker and worker on one
# CPU a round trip is two context switches; on two CPUs it is two cross-CPU
# wake-ups, which on a VM with idle vCPUs can cost ten times more. The
# one-thread rows therefore run both placements, pinned (the ping-pong's two
# processes pinned the same way), plus one left to the scheduler.
import os

from harness.broker import Broker, modelpool_ready
from harness.common import (MiB, ensure_file, model_name, log, med, metric, not_measured, ratio,
                            rotated, run_json, summary)

# (label, threads, server CPU, client CPU)
PLACEMENTS = [("1 thread, one CPU", 1, 0, 0), ("1 thread, two CPUs", 1, 0, 1),
              ("1 thread", 1, None, None), ("4 threads", 4, None, None),
              ("16 threads", 16, None, None)]


def placements():
    cpus = sorted(os.sched_getaffinity(0))
    out = []
    for label, t, server, client in PLACEMENTS:
        if server is None:
            out.append((label, t, None, None))
        elif len(cpus) >= 2 or server == client:
            out.append((label, t, cpus[server], cpus[client]))
    return out


def run(ctx):
    name = model_name(MiB)
    ensure_file(ctx, name, MiB)
    secs = 0.5 if ctx.quick else 1.0
    why_not = modelpool_ready(ctx)
    rows_def = placements()
    brokers = {}
    keys = ["p50_us", "p99_us", "ops", "acquire_p50_us", "release_p50_us"]
    data = {(src, label, k): [] for src in ("pingpong", "modelpool", "frames")
            for label, *_ in rows_def for k in keys}
    try:
        if not why_not:
            for server in sorted({p[2] for p in rows_def}, key=lambda c: -1 if c is None else c):
                b = Broker(ctx, "ctl" if server is None else f"ctl{server}", ctx.data_dir,
                           256 * MiB, cpu=server)
                b.admin("load", model=name)
                brokers[server] = b
        for rep in range(ctx.reps):
            for label, t, server, client in rows_def:
                srcs = ["pingpong", "modelpool"] + ([] if server is None else ["frames"])
                for src in rotated(srcs, rep):
                    if src == "pingpong":
                        pin = [] if server is None else ["--server-cpu", server,
                                                         "--client-cpu", client]
                        lines = run_json(ctx, "mp_bench_pingpong", "--threads", t,
                                         "--seconds", secs, *pin)
                        p50, p99 = metric(lines, "p50"), metric(lines, "p99")
                    elif brokers:
                        lines = run_json(ctx, "mp_bench_acquire", "--socket",
                                         brokers[server].socket, "--model", name, "--threads", t,
                                         "--seconds", secs, "--release-ring",
                                         0 if src == "frames" else 1, cpu=client)
                        p50, p99 = metric(lines, "pair_p50"), metric(lines, "pair_p99")
                    else:
                        continue
                    data[(src, label, "p50_us")].append(p50 / 1e3)
                    data[(src, label, "p99_us")].append(p99 / 1e3)
                    data[(src, label, "ops")].append(metric(lines, "ops"))
                    if src != "pingpong":
                        for k in ("acquire_p50", "release_p50"):
                            data[(src, label, k + "_us")].append(metric(lines, k) / 1e3)
    finally:
        for b in brokers.values():
            b.stop()
    out = {"status": "measured", "seconds_per_run": secs, "rows": []}
    for label, t, server, client in rows_def:
        row = {"label": label, "threads": t, "server_cpu": server, "client_cpu": client,
               "pingpong": {k: summary(data[("pingpong", label, k)]) for k in keys[:3]}}
        if why_not:
            row["modelpool"] = not_measured(why_not)
        else:
            row["modelpool"] = {k: summary(data[("modelpool", label, k)]) for k in keys}
            row["p50_over_pingpong"] = ratio(med(row["modelpool"]["p50_us"]),
                                             med(row["pingpong"]["p50_us"]))
            if server is not None:
                row["releases_as_frames"] = {k: summary(data[("frames", label, k)])
                                             for k in ("p50_us", "release_p50_us")}
        out["rows"].append(row)
    log("control: " + ", ".join(
        f"{r['label']} ratio {r.get('p50_over_pingpong') or 0:.2f}" for r in out["rows"]))
    return out
