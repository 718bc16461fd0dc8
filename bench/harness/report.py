# File: bench/harness/report.py
#
# The Markdown summary of one run: host, targets with PASS/FAIL, then one
# table per scenario. Cells are "median [min-max]" over the repetitions;
# "not measured" cells say why. docs/benchmarks.md explains how to read it.
from harness.common import GiB, MiB, NOT_MEASURED, med


def cell(s, digits=1, scale=1.0):
    if s is None:
        return "–"
    if isinstance(s, dict) and s.get("status") == NOT_MEASURED:
        return NOT_MEASURED
    if isinstance(s, (int, float)):
        return f"{s * scale:.{digits}f}"
    a, lo, hi = (s[k] * scale for k in ("median", "min", "max"))
    if s["n"] == 1:
        return f"{a:.{digits}f}"
    return f"{a:.{digits}f} [{lo:.{digits}f}–{hi:.{digits}f}]"


def x(v, digits=2):
    return "–" if v is None else f"{v:.{digits}f}x"


def table(head, rows):
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def skipped(sc):
    return sc.get("status") == NOT_MEASURED and f"*{NOT_MEASURED}: {sc.get('reason')}*\n"


def render(doc):
    r, m = doc["results"], doc["meta"]
    out = [f"# modelpool bench — {m['host']} {m['date']}\n",
           f"`{m['command']}` · {m['reps']} repetitions · {m['duration_s']:.0f} s · "
           f"{m['cpu']} ({m['cores']} cores) · {m['mem_gib']:.1f} GiB RAM · kernel "
           f"{m['kernel']} · /dev/shm THP `{m['shmem_thp']}` · load avg at start "
           f"{m['loadavg']}\n",
           "Cells: median [min–max] over repetitions. GB/s = 1e9 bytes/s.\n",
           "## Targets\n",
           table(["target", "want", "measured", "verdict", "basis"],
                 [[t["target"], t["want"], "–" if t["value"] is None else f"{t['value']:.3f}",
                   f"**{t['verdict']}**", t["detail"]] for t in doc["targets"]])]
    sections = [("Machine limits (same run)", _limits), ("1. Worker cold start", _cold),
                ("2. Memory for N workers on one model", _memory),
                ("3. Load throughput into the pool", _load), ("4. Control plane", _control),
                ("5. Eviction quality (offline replay)", _eviction), ("6. Scaling", _scaling),
                ("7. A repository (a model of several files)", _repository),
                ("8. Remote origins", _remote),
                ("Micro-benchmarks (Google Benchmark)", _micro)]
    keys = ["limits", "cold_start", "memory", "load", "control", "eviction", "scaling",
            "repository", "remote", "micro"]
    for (title, fn), key in zip(sections, keys):
        out.append(f"## {title}\n")
        sc = r.get(key, {"status": NOT_MEASURED, "reason": "not run (--only)"})
        out.append(skipped(sc) or fn(sc, r))
        for png in doc.get("plots", {}).get(key, []):
            out.append(f"![{key}]({png})\n")
    return "\n".join(out)


def _limits(s, r):
    rows = [["memcpy, one thread", cell(s["memcpy_gbps"]) + " GB/s"],
            ["Unix socket 64 B round trip p50 / p99", cell(s["pingpong_p50_us"]) + " / "
             + cell(s["pingpong_p99_us"]) + " µs"]]
    cold = r.get("cold_start", {}).get("methods", {})
    for key, label in (("shm_limit", "fresh process: map + touch 1 GiB /dev/shm (4 KiB pages)"),
                       ("shm_populate_limit", "same with MAP_POPULATE"),
                       ("huge_tmpfs_limit", "same on a huge=always tmpfs (2 MiB pages)")):
        if "all_bytes_ms" in cold.get(key, {}):
            rows.append([label + " (scenario 1)", cell(cold[key]["all_bytes_ms"], 0) + " ms"])
    return ("Each scenario also measures its own limit within its repetitions (memcpy in 3, "
            "ping-pong in 4, /dev/shm mapping in 1).\n\n" + table(["limit", "value"], rows))


def _cold(s, r):
    ms = s["methods"]
    t_mp = med(ms["modelpool"].get("all_bytes_ms"))
    rows = []
    for name, v in ms.items():
        if v.get("status") == NOT_MEASURED:
            rows.append([name, NOT_MEASURED, NOT_MEASURED, "–", "–", v["reason"]])
            continue
        t = med(v["all_bytes_ms"])
        label = {"shm_limit": "limit: plain /dev/shm file",
                 "shm_populate_limit": "limit: same, MAP_POPULATE",
                 "modelpool_default": "modelpool_default (its own huge=within_size tmpfs)",
                 "modelpool_hugepages": "modelpool_hugepages (huge=always tmpfs)",
                 "modelpool_hugetlbfs": "modelpool_hugetlbfs (hugetlbfs)",
                 "huge_tmpfs_limit": "limit: plain file on a huge=always tmpfs"}.get(name, name)
        pmd = med(v.get("pmd_mapped_fraction"))
        rows.append([label, cell(v["first_byte_ms"], 2), cell(v["all_bytes_ms"], 0),
                     cell(v.get("minor_faults"), 0), "–" if pmd is None else f"{pmd:.0%}",
                     x(t / t_mp) if t_mp else "–"])
    return table(["method (1 GiB, fresh process)", "first byte ms", "all bytes ms",
                  "minor page faults", "mapped in 2 MiB pages", "time / modelpool's"], rows) + (
        "\nA private `mmap` is as fast as its page cache is large-paged: kernels whose "
        "filesystem caches files in large folios (ext4 and XFS on Linux 6.x) map a file read "
        "by readahead with 2 MiB entries, and no 4 KiB-page segment can match that; the "
        "huge-page pools can. The column says what each method got on this host.\n")


def _memory(s, _):
    head = ["N"] + [f"{m} footprint" for m in s["methods"]] + [f"{m} Δused MiB"
                                                                for m in s["methods"]]
    rows = []
    for n in s["counts"]:
        fp = [cell(v[str(n)]["footprint_x"], 3) + "x" if str(n) in v else NOT_MEASURED
              for v in s["methods"].values()]
        du = [cell(v[str(n)]["used_delta_mib"], 0) if str(n) in v else NOT_MEASURED
              for v in s["methods"].values()]
        rows.append([n] + fp + du)
    return (f"Model {s['bytes'] // MiB} MiB, {s['reps']} repetition(s). Footprint = "
            "Σ(Pss + page tables) of the workers + the broker's Pss of the segment, in "
            "multiples of the model; Δused = change of MemTotal−MemAvailable.\n\n"
            + table(head, rows))


def _load(s, _):
    rows = []
    for row in s["rows"]:
        rows.append([row["temp"], f"{row['bytes'] // MiB} MiB", cell(row["read"], 2),
                     cell(row.get("direct"), 2), cell(row["naive"], 2), cell(row["pool"], 2),
                     x(row.get("pool_over_memcpy")), x(row.get("pool_over_read")),
                     x(row.get("pool_over_naive")), cell(row.get("pool_huge"), 2),
                     x(row.get("pool_huge_over_memcpy")), cell(row.get("pool_hugetlb"), 2),
                     x(row.get("pool_hugetlb_over_memcpy"))])
    small = (f" ({s['reps'] * s['small_runs']} samples for files up to "
             f"{s['small_max'] // MiB} MiB)" if s.get("small_runs", 1) > 1 else "")
    return (f"{s['reps']} repetitions{small}. memcpy (same run): {s['memcpy_gbps']:.1f} GB/s. "
            "Cold = page cache dropped "
            f"(at most {100 * (s['cold_resident_fraction_max'] or 0):.0f}% of a file stayed "
            "cached). Huge = the pool's segment on a huge=always tmpfs, hugetlbfs = on "
            "hugetlbfs (2 MiB pages both).\n\n"
            + _kernel_note(s.get("kernel"))
            + table(["cache", "size", "read GB/s", "O_DIRECT GB/s", "naive GB/s", "pool GB/s",
                     "pool/memcpy", "pool/read", "pool/naive", "huge pool GB/s",
                     "huge/memcpy", "hugetlbfs pool GB/s", "hugetlbfs/memcpy"], rows))


def _kernel_note(k):
    """What the kernel did while the scenario filled fresh memory."""
    if not k:
        return ""
    parts = []
    if k.get("compact_stall") is not None:
        parts.append(f"{k['compact_stall']} direct compaction stalls")
    if k.get("thp_file_fallback") is not None:
        parts.append(f"{k['thp_file_fallback']} file huge pages that fell back to 4 KiB")
    if k.get("reported_bytes") is not None:
        parts.append(f"{k['reported_bytes'] / GiB:.1f} GiB of freed memory handed back to the "
                     "hypervisor by free page reporting (each 2 MiB of it costs a host fault "
                     "when next written: see docs/benchmarks.md)")
    return ("While this scenario ran, the kernel counted " + ", ".join(parts) + ".\n\n"
            if parts else "")


def _control(s, _):
    rows, split, frames = [], [], []
    for row in s["rows"]:
        mp, pp = row["modelpool"], row["pingpong"]
        fr = row.get("releases_as_frames")
        if fr:
            frames.append(f"{row['label']}: pair p50 {cell(fr['p50_us'])} µs, release p50 "
                          f"{cell(fr['release_p50_us'])} µs")
        nm = mp.get("status") == NOT_MEASURED
        rows.append([row.get("label", row["threads"]), cell(pp["p50_us"]), cell(pp["p99_us"]),
                     cell(pp["ops"], 0), NOT_MEASURED if nm else cell(mp["p50_us"]),
                     "–" if nm else cell(mp["p99_us"]), "–" if nm else cell(mp["ops"], 0),
                     x(row.get("p50_over_pingpong"))])
        if not nm and row["threads"] == 1:
            split.append(f"{row.get('label', '1 thread')}: acquire p50 "
                         f"{cell(mp['acquire_p50_us'])} µs, release p50 "
                         f"{cell(mp['release_p50_us'])} µs")
    note = ("\nThe pair split — " + "; ".join(split) + ".\n") if split else ""
    if frames:
        note += ("\nWith every release sent as a frame instead of through the release ring "
                 "(`ClientOptions::release_ring = false`) — " + "; ".join(frames) + ".\n")
    return table(["clients", "ping-pong p50 µs", "ping-pong p99 µs", "round trips/s",
                  "acquire+release p50 µs", "p99 µs", "pairs/s", "p50 / ping-pong"],
                 rows) + note


def _eviction(s, _):
    pol = s["policies"]
    rows = [[row["alpha"]] + [cell(row[p]["hit_rate"], 3) for p in pol]
            + [cell(row[p]["byte_hit_rate"], 3) for p in pol] for row in s["rows"]]
    own = [p for p in pol if not p.startswith("belady")]
    rel = [[row["alpha"]] + [cell(row[p]["hit_rate_vs_belady"], 2) for p in own]
           + [cell(row[p]["byte_hit_rate_vs_belady"], 2) for p in own] for row in s["rows"]]
    return (f"{s['models']} models, {s['requests']} requests, budget "
            f"{100 * s['budget_fraction']:.0f}% of all bytes, {s['seeds']} seeds.\n\n"
            + table(["alpha"] + [f"{p} hit" for p in pol] + [f"{p} byte hit" for p in pol],
                    rows)
            + "\nThe broker's policies relative to belady (per-seed ratios):\n\n"
            + table(["alpha"] + [f"{p} hit / belady" for p in own]
                    + [f"{p} byte hit / belady" for p in own], rel))


def _scaling(s, r):
    rows = [[row["models"], cell(row["p50_us"]), cell(row["p99_us"]), cell(row["ops"], 0),
             f"{row['broker_rss_anon_mib']:.1f}", f"{row['shmem_per_model_kib']:.0f}"]
            for row in s["rows"]]
    per = (f"Broker RssAnon per resident model: {cell(s['broker_rss_per_model_kib'])} KiB "
           f"(after {cell(s['broker_rss_first_load_mib'])} MiB for the first load); "
           f"per connected idle client: {cell(s['broker_rss_per_client_kib'])} KiB; "
           f"admin load of a 4 KiB model: {cell(s['small_load_ms'], 2)} ms. "
           + (s["note"] + ". " if s["note"] else "")
           + "Load time vs model size: see scenario 3 (seconds = bytes / GB/s).\n\n")
    return per + table(["resident models", "acquire+release p50 µs", "p99 µs", "pairs/s",
                        "broker RssAnon MiB", "Shmem per model KiB"], rows)


def _repository(s, _):
    c, w, m = s["cold"], s["warm"], s["memory"]
    runs = c.get("runs_per_rep", 1)
    cold = [[label, cell(c[k]["ms"], 0), cell(c[k]["gbps"], 2)]
            for k, label in (("repository", "whole repository, one acquire"),
                             ("shards", f"its {s['shards']} shards, one acquire each"))]
    warm = [[label, cell(w[k]["p50_us"]), cell(w[k]["p99_us"]), cell(w[k]["acquire_p50_us"]),
             cell(w[k]["release_p50_us"]), cell(w[k]["ops"], 0)]
            for k, label in (("repository", "whole repository"),
                             ("file", f"one file (`{w['file_model'].split('/')[-1]}`)"))]
    return (f"`{s['repository']}`: {s['shards']} safetensors shards, {s['tensors']} tensors, "
            f"{s['bytes'] / MiB:.0f} MiB with its index and config.json.\n\n"
            f"**Cold load** (a fresh broker per run, shards in the page cache, "
            f"{runs} run(s) per repetition): whole / shard by shard = "
            f"{x(c['repository_over_shards'])}.\n\n"
            + table(["acquire", "ms", "GB/s"], cold)
            + f"\n**Warm acquire+release** (resident, one thread, {w['seconds_per_run']} s per "
            f"run): whole / one file (p50) = {x(w['repository_over_file'])}.\n\n"
            + table(["model", "pair p50 µs", "p99 µs", "acquire p50 µs", "release p50 µs",
                     "pairs/s"], warm)
            + f"\n**Memory**, {m['workers']} workers each holding the repository and touching "
            f"every tensor ({m['reps']} repetition(s)): Shmem rise "
            f"{cell(m['shmem_delta_x'], 3)}x the repository ({cell(m['shmem_delta_mib'], 0)} "
            f"MiB); Σ(Pss + page tables) of the workers + the broker's segment Pss "
            f"{cell(m['footprint_x'], 3)}x; the largest RssAnon rise of a worker across acquire "
            f"+ touch {cell(m['rss_anon_rise_max_mib'])} MiB (its RssAnon then "
            f"{cell(m['rss_anon_max_mib'])} MiB); the broker counted {m['refs']} handles.\n")


def _remote(s, _):
    ms, v, tool = s["ms"], s["values"], s["downloader"]
    rows = [["broker: `modelpoolctl load`, download into the pool and its disk tier",
             cell(ms["remote_s"], 0), cell(v["remote_origin_x"], 3) + "x"],
            [f"{tool} to a models dir + `modelpoolctl load` (fresh broker)",
             f"{cell(ms['curl_s'], 0)} ({cell(ms['curl_download_s'], 0)} + "
             f"{cell(ms['curl_load_s'], 0)})", cell(v["curl_origin_x"], 3) + "x"],
            ["second broker, same disk tier", cell(ms["tier_s"], 0),
             f"{s['tier_origin_log_requests_max']} requests"],
            [f"{s['nodes']} brokers at once through one caching proxy (wall)",
             cell(ms["nodes_wall_s"], 0), cell(v["nodes_origin_x"], 3) + "x"]]
    return (f"`{s['model']}`, {s['bytes'] / MiB:.0f} MiB, on an nginx origin on loopback "
            f"(its file in the page cache for every method), {s['reps']} repetition(s).\n\n"
            + table(["method", "ms", "origin sent / model"], rows)
            + f"\n({tool} + load) / broker = {x(s['curl_over_remote'])}; origin / disk tier = "
            f"{x(s['remote_over_tier'])}, with {s['tier_origin_requests_max']} origin requests "
            f"and disk hits {s['tier_disk_hits']} in the second broker's stats; each node "
            f"received at least {cell(v['nodes_node_bytes_x'], 3)}x the model from the proxy.\n")


def _micro(s, _):
    note = f"*{s['note']}*\n\n" if s.get("note") else ""
    return note + table(["benchmark", "ns/op"], [[b["name"], f"{b['ns_per_op']:.0f}"]
                                                 for b in s["rows"]])
