# File: bench/harness/targets.py
#
# The performance targets, each a ratio computed from medians of
# the same run, with PASS / FAIL / NOT MEASURED and the numbers behind it.
from harness.common import med, ratio


def _target(name, want, value, ok, detail):
    if value is None:
        return {"target": name, "want": want, "value": None, "verdict": "NOT MEASURED",
                "detail": detail}
    return {"target": name, "want": want, "value": value,
            "verdict": "PASS" if ok(value) else "FAIL", "detail": detail}


def _mp(scenario, *path):
    node = scenario.get("methods", {}).get("modelpool", {})
    for p in path:
        node = node.get(p) if isinstance(node, dict) else None
    return node


def evaluate(results):
    out = []
    mem = results.get("memory", {})
    worst, worst_n = None, None
    mp = mem.get("methods", {}).get("modelpool", {})
    if mp and mp.get("status") is None:
        worst_n = max(mp, key=lambda n: med(mp[n]["footprint_x"]))
        worst = med(mp[worst_n]["footprint_x"])
    out.append(_target("memory, modelpool, N=1..8 workers", "<= 1.05x one model", worst,
                       lambda v: v <= 1.05,
                       _why(mem, f"worst at N={worst_n}: Σ(Pss+VmPTE) of workers + broker's "
                            "segment Pss")))

    cold = results.get("cold_start", {})
    ms = cold.get("methods", {})
    t_mp = med(_mp(cold, "all_bytes_ms"))
    t_mmap = med(ms.get("mmap", {}).get("all_bytes_ms"))
    t_read = med(ms.get("read", {}).get("all_bytes_ms"))
    mmap_pmd = med(ms.get("mmap", {}).get("pmd_mapped_fraction"))
    pmd_note = "" if mmap_pmd is None else f" (mmap got {mmap_pmd:.0%} in 2 MiB pages)"
    out.append(_target("cold start 1 GiB, modelpool vs private mmap", "mmap / modelpool >= 1.0",
                       ratio(t_mmap, t_mp), lambda v: v >= 1.0,
                       _why(cold, f"all bytes: modelpool {_ms(t_mp)}, mmap {_ms(t_mmap)}"
                            + pmd_note)))
    out.append(_target("cold start 1 GiB, modelpool vs private read()",
                       "read / modelpool >= 5.0", ratio(t_read, t_mp), lambda v: v >= 5.0,
                       _why(cold, f"all bytes: modelpool {_ms(t_mp)}, read {_ms(t_read)}")))

    default = ms.get("modelpool_default", {})  # issue 22: the broker's own huge tmpfs
    t_default = med(default.get("all_bytes_ms"))
    out.append(_target("cold start 1 GiB, default install (its own huge tmpfs) vs private mmap",
                       "mmap / modelpool_default >= 1.0", ratio(t_mmap, t_default),
                       lambda v: v >= 1.0,
                       default.get("reason") or _why(cold, f"all bytes: default install "
                                                           f"{_ms(t_default)}, mmap "
                                                           f"{_ms(t_mmap)}" + pmd_note)))

    huge = ms.get("modelpool_hugepages", {})
    t_huge = med(huge.get("all_bytes_ms"))
    out.append(_target("cold start 1 GiB, huge-page pool (huge=always tmpfs) vs private mmap",
                       "mmap / modelpool_hugepages >= 20.0", ratio(t_mmap, t_huge),
                       lambda v: v >= 20.0,
                       huge.get("reason") or _why(cold, f"all bytes: huge-page pool "
                                                        f"{_ms(t_huge)}, mmap {_ms(t_mmap)}"
                                                        + pmd_note)))

    ctl = results.get("control", {})
    for label in ("1 thread, one CPU", "1 thread, two CPUs"):
        row = next((r for r in ctl.get("rows", []) if r.get("label") == label), {})
        out.append(_target(f"warm acquire+release p50, {label}",
                           "<= 2.0x raw ping-pong p50, same placement",
                           row.get("p50_over_pingpong"), lambda v: v <= 2.0,
                           _why(ctl, f"pair {_us(row, 'modelpool')} vs round trip "
                                f"{_us(row, 'pingpong')}")))

    ev = results.get("eviction", {})
    worst_ev, basis = None, ""
    rows = ev.get("rows", [])
    if rows and all((r.get("gdsf") or {}).get("byte_hit_rate_vs_lru_worst") is not None
                    for r in rows):
        w = min(rows, key=lambda r: r["gdsf"]["byte_hit_rate_vs_lru_worst"])
        worst_ev = w["gdsf"]["byte_hit_rate_vs_lru_worst"]
        gaps = ", ".join(f"{med(r['gdsf']['byte_hit_rate_vs_belady']):.2f} at alpha {r['alpha']}"
                         for r in rows)
        basis = (f"worst trace at alpha {w['alpha']} ({ev.get('seeds')} seeds per alpha); "
                 f"gdsf byte hit rate / belady's: {gaps}")
    out.append(_target("eviction: cost-aware (gdsf) byte hit rate vs lru, every trace",
                       "gdsf / lru >= 1.0 on every trace", worst_ev, lambda v: v >= 1.0,
                       _why(ev, basis)))

    load = results.get("load", {})
    warm = [r for r in load.get("rows", []) if r["temp"] == "warm"]
    vals = [r.get("pool_over_naive") for r in warm]
    worst_load, basis = None, ""
    if warm and None not in vals:
        w = min(warm, key=lambda r: r["pool_over_naive"])
        worst_load = w["pool_over_naive"]
        basis = (f"worst at {w['bytes'] >> 20} MiB: pool {med(w['pool']):.2f} GB/s, naive "
                 f"{med(w['naive']):.2f} GB/s")
    out.append(_target("load from page cache vs naive write() into /dev/shm",
                       "pool / naive >= 1.0 at every size", worst_load, lambda v: v >= 1.0,
                       _why(load, basis)))
    big = max(warm, key=lambda r: r["bytes"]) if warm else {}
    for m, label in (("pool_huge", "huge=always tmpfs"), ("pool_hugetlb", "hugetlbfs")):
        huge_pool = big.get(m) or {}
        out.append(_target(f"load from page cache into a huge-page pool ({label}) vs memcpy",
                           "huge pool / memcpy >= 0.5 (largest size)",
                           big.get(m + "_over_memcpy"), lambda v: v >= 0.5,
                           huge_pool.get("reason") or _why(
                               load, f"{big.get('bytes', 0) >> 20} MiB: {label} pool "
                               f"{huge_pool.get('median') or 0:.2f} GB/s, memcpy "
                               f"{load.get('memcpy_gbps') or 0:.2f} GB/s")))
    out += _repository(results.get("repository", {}))
    out += _remote(results.get("remote", {}))
    return out


def _repository(repo):
    """Scenario 7: one copy for N workers (the target), and the expectations
    for the cold and the warm acquire of a repository, as ratios."""
    out = []
    why = repo.get("reason") if repo.get("status") == "not measured" else None
    if not repo:
        why = "not run (--only)"
    mem, cold, warm = repo.get("memory", {}), repo.get("cold", {}), repo.get("warm", {})
    size = f"{repo['bytes'] / (1 << 20):.0f} MiB" if "bytes" in repo else "?"
    n = mem.get("workers", "N")
    shmem = med(mem.get("shmem_delta_x"))
    out.append(_target(f"memory, repository held by N={n} workers", "Shmem rise <= 1.05x "
                       "the repository", shmem, lambda v: v <= 1.05,
                       why or f"{size}: Shmem +{_mib(mem.get('shmem_delta_mib'))}, every "
                       f"worker touched all tensors"))
    rise = med(mem.get("rss_anon_rise_max_mib"))
    out.append(_target(f"memory, repository held by N={n} workers: RssAnon per worker",
                       "rise <= 0.05x the repository", None if rise is None or "bytes" not in
                       repo else rise * (1 << 20) / repo["bytes"], lambda v: v <= 0.05,
                       why or f"largest rise {_mib(mem.get('rss_anon_rise_max_mib'), 1)} "
                       "across acquire + touch"))
    t_repo, t_shards = (med((cold.get(m) or {}).get("ms")) for m in ("repository", "shards"))
    out.append(_target("cold load of a repository vs its shards one by one (fresh broker)",
                       "whole / shard by shard <= 1.10 (about 1.0 or better)",
                       cold.get("repository_over_shards"), lambda v: v <= 1.10,
                       why or f"{size}: whole {_ms(t_repo)}, shard by shard {_ms(t_shards)}"))
    p_repo, p_file = ((warm.get(m) or {}).get("p50_us") for m in ("repository", "file"))
    out.append(_target("warm acquire+release of a repository vs of one file",
                       "whole / one file <= 2.0 (p50)", warm.get("repository_over_file"),
                       lambda v: v <= 2.0,
                       why or f"p50 {_fmt_us(p_repo)} vs {_fmt_us(p_file)}"))
    return out


def _remote(rem):
    """Scenario 8: a download into the pool against download-then-load, the
    disk tier against the origin, and one origin transfer for three nodes."""
    why = rem.get("reason") if rem.get("status") == "not measured" else None
    if not rem:
        why = "not run (--only)"
    ms = rem.get("ms", {})
    size = f"{rem['bytes'] / (1 << 20):.0f} MiB" if "bytes" in rem else "?"
    tool = rem.get("downloader", "curl")
    out = [_target("cold remote load vs download then load (fresh brokers)",
                   f"({tool} + load) / broker's download >= 1.0", rem.get("curl_over_remote"),
                   lambda v: v >= 1.0,
                   why or f"{size}: broker {_ms(med(ms.get('remote_s')))}, {tool} "
                   f"{_ms(med(ms.get('curl_download_s')))} + load "
                   f"{_ms(med(ms.get('curl_load_s')))}")]
    requests = rem.get("tier_origin_requests_max")
    out.append(_target("second broker from the disk tier vs the origin download",
                       ">= 1.0 with 0 origin requests", rem.get("remote_over_tier"),
                       lambda v: v >= 1.0 and requests == 0,
                       why or f"tier {_ms(med(ms.get('tier_s')))} vs origin "
                       f"{_ms(med(ms.get('remote_s')))}; origin requests {requests}, disk hits "
                       f"{rem.get('tier_disk_hits')}"))
    out.append(_target(f"{rem.get('nodes', 3)} nodes through one caching proxy: origin bytes",
                       "== 1.00x the model (worst repetition)", rem.get("nodes_origin_x_max"),
                       lambda v: round(v, 2) == 1.0,
                       why or f"{size}, all at once; wall "
                       f"{_ms(med(ms.get('nodes_wall_s')))} (origin's access log)"))
    return out


def _mib(s, digits=0):
    v = med(s)
    return "n/a" if v is None else f"{v:.{digits}f} MiB"


def _fmt_us(s):
    v = med(s)
    return "n/a" if v is None else f"{v:.1f} µs"


def _us(row, src):
    v = med((row.get(src) or {}).get("p50_us"))
    return "n/a" if v is None else f"{v:.1f} µs"


def _ms(v):
    return "n/a" if v is None else f"{v:.0f} ms"


def _why(scenario, detail):
    """`detail`, or why the modelpool side of `scenario` was not measured."""
    if scenario.get("status") == "not measured":
        return scenario.get("reason", "")
    mp = scenario.get("methods", {}).get("modelpool")
    if isinstance(mp, dict) and mp.get("status") == "not measured":
        return mp["reason"]
    for r in scenario.get("rows", []):
        for k in ("modelpool", "pool"):
            v = r.get(k)
            if isinstance(v, dict) and v.get("status") == "not measured":
                return v["reason"]
    return detail
