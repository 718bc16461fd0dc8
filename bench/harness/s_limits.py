# File: bench/harness/s_limits.py
#
# The machine's limits on their own: single-thread memcpy bandwidth and a
# raw Unix-socket 64-byte ping-pong between two processes. The scenarios
# also measure the limit they are compared with inside their own
# repetitions, interleaved with their methods: memcpy in scenario 3,
# ping-pong in scenario 4, a fresh process mapping and touching every page
# of a plain 1 GiB /dev/shm file in scenario 1. The summary's limits table
# shows all of them.
import time

from harness.common import MiB, log, metric, rotated, run_json, summary


def spawn_worker(ctx, *args):
    """Runs one fresh mp_bench_worker; returns its JSON lines."""
    return run_json(ctx, "mp_bench_worker", *args, "--t0", time.monotonic_ns())


def memcpy_gbps(ctx):
    lines = run_json(ctx, "mp_bench_memcpy", "--bytes", 256 * MiB, "--passes", 5)
    return metric(lines, "bandwidth")


def run(ctx):
    series = {k: [] for k in ("memcpy_gbps", "pingpong_p50_us", "pingpong_p99_us")}
    for rep in range(ctx.reps):
        for step in rotated(["memcpy", "pingpong"], rep):
            if step == "memcpy":
                series["memcpy_gbps"].append(memcpy_gbps(ctx))
            else:
                secs = 0.5 if ctx.quick else 1.0
                lines = run_json(ctx, "mp_bench_pingpong", "--threads", 1, "--seconds", secs)
                series["pingpong_p50_us"].append(metric(lines, "p50") / 1e3)
                series["pingpong_p99_us"].append(metric(lines, "p99") / 1e3)
    out = {"status": "measured", **{k: summary(v) for k, v in series.items()}}
    log(f"limits: memcpy {out['memcpy_gbps']['median']:.1f} GB/s, ping-pong p50 "
        f"{out['pingpong_p50_us']['median']:.1f} us")
    return out
