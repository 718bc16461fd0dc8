#!/usr/bin/python3
# File: tests/bench/harness_smoke.py
#
# Runs bench/run_bench.py --quick --reps 1 with the programs of one build
# into a scratch directory and checks what an operator relies on: it exits 0;
# the JSON holds every scenario, each measured or not measured with a reason
# (a scenario that raised is a failure here); every target has a verdict;
# latest.md and the per-run summary exist and every plot they show is a PNG
# next to them; and the run left nothing behind (files in /dev/shm, mounts,
# huge pages added to the kernel's pool).
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIOS = ["limits", "cold_start", "memory", "load", "control", "eviction", "scaling",
             "repository", "remote", "micro"]
VERDICTS = {"PASS", "FAIL", "NOT MEASURED"}
HUGE = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"


def host_state():
    shm = set(os.listdir("/dev/shm"))
    with open("/proc/mounts") as f:
        mounts = {line.split()[1] for line in f if "mpbench" in line}
    pages = None
    if os.path.exists(HUGE):
        with open(HUGE) as f:
            pages = int(f.read())
    return shm, mounts, pages


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    args = ap.parse_args()
    problems = []
    shm_before, mounts_before, pages_before = host_state()
    scratch = tempfile.mkdtemp(prefix="bench-smoke-", dir=args.build_dir)
    try:
        out_dir = os.path.join(scratch, "results")
        cmd = ["/usr/bin/python3", os.path.join(ROOT, "bench", "run_bench.py"),
               "--build-dir", args.build_dir, "--quick", "--reps", "1",
               "--out-dir", out_dir, "--data-dir", os.path.join(scratch, "data")]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=540)
        sys.stdout.write(run.stdout[-4000:])
        sys.stdout.write(run.stderr[-8000:])
        if run.returncode != 0:
            problems.append(f"run_bench.py exited {run.returncode}")
        docs = glob.glob(os.path.join(out_dir, "*.json"))
        if len(docs) != 1:
            problems.append(f"expected one JSON result, found {docs}")
        else:
            with open(docs[0]) as f:
                doc = json.load(f)
            for key in SCENARIOS:
                r = doc["results"].get(key)
                if r is None:
                    problems.append(f"scenario {key} missing from the results")
                elif r.get("status") != "measured":
                    why = r.get("reason", "")
                    if not why or why.startswith("failed"):
                        problems.append(f"scenario {key} not measured: {why or '(no reason)'}")
            for t in doc["targets"]:
                if t.get("verdict") not in VERDICTS:
                    problems.append(f"target {t.get('target')} has verdict {t.get('verdict')}")
            stem = os.path.splitext(docs[0])[0]
            for md in (stem + ".md", os.path.join(out_dir, "latest.md")):
                if not os.path.exists(md):
                    problems.append(f"{md} missing")
                    continue
                with open(md) as f:
                    text = f.read()
                pngs = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
                if not pngs:
                    problems.append(f"{os.path.basename(md)} shows no plot")
                for png in pngs:
                    path = os.path.join(out_dir, png)
                    if not os.path.exists(path):
                        problems.append(f"{os.path.basename(md)} shows {png}, which is missing")
                        continue
                    with open(path, "rb") as f:
                        if f.read(8) != b"\x89PNG\r\n\x1a\n":
                            problems.append(f"{png} is not a PNG")
            if not any(os.path.basename(p).startswith("latest-")
                       for p in glob.glob(os.path.join(out_dir, "*.png"))):
                problems.append("no latest-*.png next to latest.md")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    shm_after, mounts_after, pages_after = host_state()
    if shm_after - shm_before:
        problems.append(f"left in /dev/shm: {sorted(shm_after - shm_before)}")
    if mounts_after - mounts_before:
        problems.append(f"left mounted: {sorted(mounts_after - mounts_before)}")
    if pages_after != pages_before:
        problems.append(f"nr_hugepages {pages_before} before, {pages_after} after")
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
