# File: bench/harness/s_cold.py
#
# Scenario 1, worker cold start: a fresh process gets every byte of a 1 GiB
# model, (a) read() into its own buffer, (b) mmap(MAP_PRIVATE) of the file
# + touch every page, (c) modelpool connect + acquire + touch every page with
# the model resident, (d) the same with the pool's segment on 2 MiB pages: a
# huge=always tmpfs (modelpool_hugepages) and hugetlbfs (modelpool_hugetlbfs),
# mounted for the run when root (docs/hugepages.md), and (e) the default
# install (modelpool_default): a broker started as root with no
# --segment-dir, which mounts a huge=within_size tmpfs of its own -- what the
# shipped systemd unit's mount gives too. The file is in the
# page cache for (a) and (b), their best case. The limits -- a fresh process
# mapping a plain 1 GiB /dev/shm file (4 KiB pages), with and without
# MAP_POPULATE, and a plain file on the huge=always tmpfs -- run as more
# methods. Methods are interleaved per repetition; times are from just
# before the spawn, so process start-up is included for all of them.
import contextlib
import os
import subprocess

from harness.broker import Broker, BrokerError, broker_help, modelpool_ready
from harness.common import (GiB, MiB, ensure_file, model_name, log, med, metric, not_measured,
                            ratio, rotated, run_json, summary, warm_page_cache)
from harness.hugepages import huge_mount
from harness.s_limits import spawn_worker

METHODS = ["read", "mmap", "modelpool", "shm_limit", "shm_populate_limit"]
HUGE_POOLS = {"modelpool_hugepages": "tmpfs", "modelpool_hugetlbfs": "hugetlbfs"}
HUGE_LIMIT = "huge_tmpfs_limit"  # a plain file on the huge=always tmpfs
DEFAULT = "modelpool_default"  # the broker's own huge tmpfs, as a default install has it


def _huge_pool(ctx, stack, kind, size, name):
    """(broker, mount dir, '') with `name` resident in a pool whose segment is
    on a fresh `kind` mount, or (None, None, why not). `stack` undoes it."""
    # The segment's header and catalog take 10 MiB; the tmpfs also holds
    # the plain-file limit.
    mount_size = (2 * size if kind == "tmpfs" else size) + 64 * MiB
    d, why = stack.enter_context(huge_mount(kind, mount_size))
    if why:
        return None, None, why
    try:
        # No watermark eviction: the model alone is above 85% of this budget.
        broker = Broker(ctx, f"cold-{kind}", ctx.data_dir, size + 32 * MiB,
                        extra=["--segment-dir", d, "--high-watermark", "1"])
    except RuntimeError as e:
        return None, None, f"modelpoold on {kind}: {e}"
    stack.callback(broker.stop)  # before the unmount (LIFO)
    page = broker.stats().get("page_size")
    if page != 2 * MiB:
        return None, None, f"the broker reports {page}-byte pages on the {kind} mount"
    try:
        broker.admin("load", model=name)
    except BrokerError as e:
        return None, None, f"load into the {kind} pool: {e}"
    return broker, d, ""


def _unmount_left(d):
    """Unmounts (detaches) a tmpfs a broker left at `d`, then removes `d`."""
    if os.path.ismount(d):
        log(f"cold start: {d} was left mounted; detaching it")
        subprocess.run(["umount", "-l", d], check=False)
    with contextlib.suppress(OSError):
        os.rmdir(d)
        os.rmdir(os.path.dirname(d))


def _default_pool(ctx, stack, size, name):
    """(broker, '') with `name` resident in a pool started as a default
    install starts it (root, no --segment-dir: the broker's own huge tmpfs),
    or (None, why not). `stack` undoes it, unmounting whatever is left."""
    if os.geteuid() != 0:
        return None, "needs root: the broker mounts its own tmpfs only as root"
    if "--huge-tmpfs" not in broker_help(ctx.broker_bin):
        return None, "this modelpoold has no --huge-tmpfs"
    try:
        # The harness passes --huge-tmpfs no; the later option wins.
        broker = Broker(ctx, "cold-default", ctx.data_dir, size + 32 * MiB,
                        extra=["--huge-tmpfs", "auto", "--high-watermark", "1"])
    except RuntimeError as e:
        return None, f"modelpoold (default install): {e}"
    tmpfs = os.path.join(broker.run_dir, broker.pool + ".tmpfs")
    stack.callback(_unmount_left, tmpfs)  # after the broker stopped (LIFO)
    stack.callback(broker.stop)
    stats = broker.stats()
    if not stats.get("segment_path", "").startswith(tmpfs + "/"):
        where = stats.get("segment_path")
        return None, f"the broker put its segment at {where}: {broker.log_tail()}"
    if stats.get("page_size") != 2 * MiB:
        return None, f"the broker reports {stats.get('page_size')}-byte pages on its own tmpfs"
    try:
        broker.admin("load", model=name)
    except BrokerError as e:
        return None, f"load into the default install's pool: {e}"
    return broker, ""


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
    huge = contextlib.ExitStack()
    pools, why_huge, huge_plain = {}, {}, None
    try:
        pools[DEFAULT], why_huge[DEFAULT] = (None, why_not) if why_not else \
            _default_pool(ctx, huge, size, name)
        for method, kind in HUGE_POOLS.items():
            if why_not:
                why_huge[method] = why_not
                continue
            pools[method], d, why_huge[method] = _huge_pool(ctx, huge, kind, size, name)
            if d and kind == "tmpfs":
                huge_plain = os.path.join(d, "plain")
                run_json(ctx, "mp_bench_file", "naive", "--path", path, "--dest", huge_plain,
                         "--keep")
        methods = METHODS + [m for m in [DEFAULT, *HUGE_POOLS] if pools.get(m)]
        methods += [HUGE_LIMIT] if huge_plain else []
        first = {m: [] for m in methods}
        done = {m: [] for m in methods}
        faults = {m: [] for m in methods}
        pmd = {m: [] for m in methods}
        for rep in range(ctx.reps):
            for method in rotated(methods, rep):
                if method.startswith("modelpool"):
                    b = pools.get(method, broker)
                    if b is None:
                        continue
                    lines = spawn_worker(ctx, "--mode", "modelpool", "--socket", b.socket,
                                         "--model", name)
                elif method == HUGE_LIMIT:
                    lines = spawn_worker(ctx, "--mode", "shm", "--path", huge_plain)
                elif method.startswith("shm"):
                    extra = ["--populate"] if "populate" in method else []
                    lines = spawn_worker(ctx, "--mode", "shm", "--path", plain, *extra)
                else:
                    lines = spawn_worker(ctx, "--mode", method, "--path", path)
                first[method].append(metric(lines, "first_byte_ns") / 1e6)
                done[method].append(metric(lines, "all_bytes_ns") / 1e6)
                faults[method].append(metric(lines, "minor_faults"))
                pmd[method].append(metric(lines, "pmd_mapped_bytes") / size)
        for b in [broker] + list(pools.values()):
            if b is not None and b.stats().get("loads", 0) != 1:
                log(f"cold start: expected 1 load, {b.pool} reports {b.stats().get('loads')}")
    finally:
        os.unlink(plain)  # give the 1 GiB back before the next scenario
        if broker is not None:
            broker.stop()
        huge.close()  # huge-page brokers, then their mounts and pages
    out = {"status": "measured", "bytes": size, "methods": {}}
    for m in METHODS[:3] + [DEFAULT, *HUGE_POOLS] + METHODS[3:] + [HUGE_LIMIT]:
        if (m == DEFAULT or m in HUGE_POOLS) and not pools.get(m):
            out["methods"][m] = not_measured(why_huge[m])
        elif m == "modelpool" and why_not:
            out["methods"][m] = not_measured(why_not)
        elif m in first:
            out["methods"][m] = {"first_byte_ms": summary(first[m]),
                                 "all_bytes_ms": summary(done[m]),
                                 "minor_faults": summary(faults[m]),
                                 "pmd_mapped_fraction": summary(pmd[m])}
    out["ratios"] = _ratios(out["methods"])
    log("cold start: " + ", ".join(
        f"{m} {med(v['all_bytes_ms']):.0f} ms" for m, v in out["methods"].items()
        if "all_bytes_ms" in v))
    return out


def _ratios(ms):
    """time(baseline) / time(pool) for each pool row that was measured."""
    out = {}
    for pool in ["modelpool", DEFAULT, *HUGE_POOLS]:
        t = med(ms[pool].get("all_bytes_ms"))
        if t is None:
            continue
        suffix = "" if pool == "modelpool" else "_" + pool.split("_", 1)[1]
        for base in ("mmap", "read") + (("modelpool",) if suffix else ()):
            out[f"{base}_over_modelpool{suffix}"] = ratio(med(ms[base].get("all_bytes_ms")), t)
    return out
