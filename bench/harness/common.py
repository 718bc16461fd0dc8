# File: bench/harness/common.py
#
# What every scenario of the bench driver shares: the run context (options,
# paths, results), running a bench program and parsing its JSON lines,
# reading /proc, summarising repetitions (median, min, max) and cleaning up
# every file and process the run created.
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

NOT_MEASURED = "not measured"


@dataclass
class Ctx:
    """One bench run: options, where things are, and what was measured."""
    quick: bool
    reps: int
    bin_dir: str             # build-bench/bench
    broker_bin: str          # build-bench/broker/modelpoold ('' if not built)
    data_dir: str            # model files (on a disk, not tmpfs)
    tag: str                 # unique per run: names /dev/shm files and pools
    drop_caches: bool
    only: set = field(default_factory=set)
    results: dict = field(default_factory=dict)
    shm_files: list = field(default_factory=list)
    procs: list = field(default_factory=list)

    def prog(self, name):
        return os.path.join(self.bin_dir, name)

    def has_prog(self, name):
        return os.access(self.prog(name), os.X_OK)

    def shm_path(self, what):
        path = f"/dev/shm/mpbench-{self.tag}-{what}"
        self.shm_files.append(path)
        return path

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for path in self.shm_files:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pinned(cpu):
    """A preexec_fn that runs the child (and every thread it starts) on `cpu`."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def run_json(ctx, name, *args, timeout=300, cpu=None):
    """Runs bench program `name` (on CPU `cpu` if given), returns its JSON lines as dicts."""
    cmd = [ctx.prog(name)] + [str(a) for a in args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                         preexec_fn=pinned(cpu))
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def metric(lines, name, **labels):
    """The value of the first line with metric `name` and matching labels."""
    for line in lines:
        if line.get("metric") == name and all(line.get(k) == v for k, v in labels.items()):
            return line["value"]
    raise KeyError(f"no metric {name} {labels} in {lines}")


def summary(samples):
    """{median, min, max, n, samples} of a list of numbers (None if empty)."""
    vals = [v for v in samples if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals),
            "n": len(vals), "samples": vals}


def med(s):
    return None if s is None else s["median"]


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def rotated(items, rep):
    """`items` rotated by `rep`, so no method always runs first."""
    k = rep % len(items)
    return items[k:] + items[:k]


def meminfo():
    """/proc/meminfo in bytes."""
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, rest = line.split(":", 1)
            out[key] = int(rest.split()[0]) * 1024
    return out


# Free page reporting: a guest kernel hands freed 2 MiB blocks back to the
# hypervisor, and the next write to them costs a host fault. Not every kernel
# exports the count.
PAGE_REPORTING_KIB = "/sys/module/page_reporting/parameters/reported_kib"


def kernel_counters():
    """Counters that explain slow fills of fresh memory: direct compaction
    stalls, file huge pages that fell back to 4 KiB, and bytes handed back to
    the hypervisor (None where the kernel does not say)."""
    want = {"compact_stall", "thp_file_alloc", "thp_file_fallback"}
    out = {k: None for k in want}
    with open("/proc/vmstat") as f:
        for line in f:
            k, v = line.split()
            if k in want:
                out[k] = int(v)
    try:
        with open(PAGE_REPORTING_KIB) as f:
            out["reported_bytes"] = int(f.read()) * 1024
    except (OSError, ValueError):
        out["reported_bytes"] = None
    return out


def counters_delta(before, after):
    return {k: (None if before[k] is None or after[k] is None else after[k] - before[k])
            for k in before}


def used_bytes(mi):
    return mi["MemTotal"] - mi["MemAvailable"]


def smaps_rollup(pid):
    """Rss, Pss, Pss_Anon, Pss_File, Pss_Shmem ... of `pid`, in bytes."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[-1] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return out


def proc_status(pid):
    """VmRSS, RssAnon, RssShmem, VmPTE ... of `pid`, in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return out


def mapping_pss(pid, path_part):
    """Sum of Pss over the mappings of `pid` whose path contains `path_part`."""
    total, inside = 0, False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if head and "-" in head[0] and len(head) >= 5:
                inside = len(head) >= 6 and path_part in head[5]
            elif inside and head and head[0] == "Pss:":
                total += int(head[1]) * 1024
    return total


def drop_page_cache(ctx, path):
    """Evicts `path` from the page cache; returns the fraction still cached."""
    if ctx.drop_caches and os.geteuid() == 0:
        subprocess.run(["sync"], check=False)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1\n")
    return metric(run_json(ctx, "mp_bench_file", "uncache", "--path", path), "resident")


def warm_page_cache(ctx, path):
    run_json(ctx, "mp_bench_file", "cache", "--path", path)


def model_name(size):
    """Scenarios share files by size: model-1024m.bin, model-64m.bin, ..."""
    return f"model-{size // (1 << 20)}m.bin"


def ensure_file(ctx, name, size):
    """A model file of `size` bytes of pseudo-random data in ctx.data_dir."""
    path = os.path.join(ctx.data_dir, name)
    if not (os.path.exists(path) and os.path.getsize(path) == size):
        run_json(ctx, "mp_bench_file", "mkfile", "--path", path, "--bytes", size, timeout=900)
    return path


def not_measured(reason):
    return {"status": NOT_MEASURED, "reason": reason}


GiB = 1 << 30
MiB = 1 << 20
