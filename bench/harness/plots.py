# File: bench/harness/plots.py
#
# PNG plots of one run (matplotlib, Agg backend, Debian's python3-matplotlib).
# Each plot shows medians with min-max error bars where there are
# repetitions. Returns {scenario key: [file names]} for the Markdown.
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from harness.common import MiB, NOT_MEASURED  # noqa: E402


def _err(summaries):
    med = [s["median"] for s in summaries]
    lo = [s["median"] - s["min"] for s in summaries]
    hi = [s["max"] - s["median"] for s in summaries]
    return med, [lo, hi]


def _measured(v):
    return isinstance(v, dict) and v.get("status") != NOT_MEASURED


def _save(fig, out_dir, prefix, key, made):
    name = f"{prefix}-{key}.png"
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, name), dpi=110)
    plt.close(fig)
    made.setdefault(key, []).append(name)


def make_all(results, out_dir, prefix):
    made = {}
    for key, fn in (("cold_start", _cold), ("memory", _memory), ("load", _load),
                    ("control", _control), ("eviction", _eviction), ("scaling", _scaling)):
        sc = results.get(key)
        if not sc or sc.get("status") == NOT_MEASURED:
            continue
        fig = fn(sc, results)
        if fig is not None:
            _save(fig, out_dir, prefix, key, made)
    return made


def _cold(s, r):
    names = [m for m, v in s["methods"].items() if _measured(v)]
    vals = [s["methods"][m]["all_bytes_ms"] for m in names]
    names = [n.replace("_limit", "\n(limit)").replace("shm_populate", "shm+populate")
             .replace("modelpool_", "modelpool\n") for n in names]
    fig, ax = plt.subplots(figsize=(max(7.0, 1.05 * len(names)), 3.5))
    med, err = _err(vals)
    ax.bar(names, med, yerr=err, capsize=4, color="tab:blue")
    ax.set_yscale("log")
    ax.set_ylabel("ms to every byte (log)")
    ax.set_title(f"Cold start, {s['bytes'] // MiB} MiB model, fresh process")
    return fig


def _memory(s, _):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for m, v in s["methods"].items():
        if not _measured(v):
            continue
        med, err = _err([v[str(n)]["footprint_x"] for n in s["counts"]])
        ax.errorbar(s["counts"], med, yerr=err, marker="o", capsize=3, label=m)
    ax.set_xlabel("workers N")
    ax.set_ylabel("memory / model size")
    ax.set_xticks(s["counts"])
    ax.set_title(f"Memory vs N, {s['bytes'] // MiB} MiB model")
    ax.legend()
    return fig


def _load(s, _):
    fig, ax = plt.subplots(figsize=(7, 4))
    styles = {"warm": "-", "cold": "--"}
    for temp in ("warm", "cold"):
        rows = [row for row in s["rows"] if row["temp"] == temp]
        for m in ("read", "direct", "naive", "pool", "pool_huge", "pool_hugetlb"):
            pts = [(row["bytes"] / MiB, row[m]) for row in rows if _measured(row.get(m))]
            if pts:
                med, err = _err([p[1] for p in pts])
                ax.errorbar([p[0] for p in pts], med, yerr=err, ls=styles[temp], marker="o",
                            capsize=3, label=f"{m} ({temp})")
    ax.axhline(s["memcpy_gbps"], color="gray", ls=":", label="memcpy")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("model size (MiB)")
    ax.set_ylabel("GB/s")
    ax.set_title("Load throughput")
    ax.legend(fontsize=7, ncol=2)
    return fig


def _control(s, _):
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    labels = [row.get("label", str(row["threads"])) for row in s["rows"]]
    xs = list(range(len(labels)))
    for i, (src, label) in enumerate((("pingpong", "raw ping-pong round trip"),
                                      ("modelpool", "acquire+release"))):
        vals = [row[src]["p50_us"] for row in s["rows"] if _measured(row[src])]
        if len(vals) == len(labels):
            med, err = _err(vals)
            ax.bar([v + (i - 0.5) * 0.38 for v in xs], med, width=0.38, yerr=err, capsize=3,
                   label=f"{label} p50")
    ax.set_yscale("log")
    ax.set_xticks(xs, labels, rotation=15, fontsize=8)
    ax.set_ylabel("µs (log)")
    ax.set_title("Control plane latency by client threads and placement")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _eviction(s, _):
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    alphas = [row["alpha"] for row in s["rows"]]
    for ax, metric, title in ((axes[0], "hit_rate", "hit rate"),
                              (axes[1], "byte_hit_rate", "byte hit rate")):
        for p in s["policies"]:
            med, err = _err([row[p][metric] for row in s["rows"]])
            ax.errorbar(alphas, med, yerr=err, marker="o", capsize=3, label=p,
                        ls="--" if p.startswith("belady") else "-")
        ax.set_xlabel("Zipf alpha")
        ax.set_title(title)
        ax.set_xticks(alphas)
    axes[0].legend(fontsize=8)
    return fig


def _scaling(s, _):
    if not s["rows"]:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    n = [row["models"] for row in s["rows"]]
    for k, label in (("p50_us", "p50"), ("p99_us", "p99")):
        med, err = _err([row[k] for row in s["rows"]])
        ax.errorbar(n, med, yerr=err, marker="o", capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("resident models")
    ax.set_ylabel("acquire+release µs")
    ax.set_title("Acquire latency vs resident models")
    ax.legend()
    return fig
