# File: bench/harness/s_remote.py
#
# Scenario 8, remote origins: a model no local source has, fetched by the
# broker from an nginx origin on loopback that this scenario starts (its own
# nginx.conf in a scratch dir). One model file, `org/big.raw`, 1 GiB (quick
# 128 MiB), in the origin's page cache for every method. Three measures,
# each against its baseline in the same run:
#   cold   `modelpoolctl load` in a broker with --origin and an empty disk
#          tier (download straight into the pool and the tier) vs what users
#          do without it: `curl -o` into a models dir, then `modelpoolctl
#          load` in a fresh broker on that dir (download time + load time;
#          neither counts a broker's start). Rotated per repetition.
#   tier   a second broker (new pool) on the first one's --disk-cache: its
#          load, served from the tier with no origin request (checked in its
#          stats and in the origin's access log), vs the cold download.
#   nodes  3 brokers, each its own pool and tier, all with --origin at one
#          nginx caching proxy (slice 1m, cache lock) in front of the
#          origin, load the model at the same time: the bytes the origin
#          sent (its access log) over the model's size, and the wall time.
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

from harness.broker import Broker
from harness.common import (GiB, MiB, ensure_file, log, med, model_name, not_measured, ratio,
                            rotated, run_json, summary, warm_page_cache)

NGINX = "/usr/sbin/nginx"
MODEL = "org/big.raw"
NODES = 3
LOAD_TIMEOUT = 600  # seconds for one download or load; a run that takes longer is broken
NGINX_CONF = """daemon off;
{user}
worker_processes 1;
pid {home}/nginx.pid;
error_log {home}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  log_format bench '$uri $status $body_bytes_sent';
  access_log {home}/access.log bench;
  {temp}
  sendfile on;
  {http_extra}
  server {{ listen 127.0.0.1:{port}; {server} }}
}}
"""
# The caching proxy: each 1 MiB slice fetched once, the others wait for it.
PROXY_CACHE = ("proxy_cache_path {home}/cache levels=1:2 keys_zone=models:10m max_size=10g "
               "inactive=1h use_temp_path=off;")
PROXY_SERVER = """location / {{
      slice 1m; proxy_cache models; proxy_cache_key $uri$is_args$args$slice_range;
      proxy_set_header Range $slice_range; proxy_http_version 1.1;
      proxy_cache_valid 200 206 1h; proxy_cache_lock on; proxy_cache_lock_timeout 60s;
      proxy_cache_lock_age 60s; proxy_pass {origin};
    }}"""


class Nginx:
    """One nginx (master + 1 worker, `daemon off`) on 127.0.0.1, everything it
    writes inside `home`; its access log has one `$uri $status
    $body_bytes_sent` line per request. A child in a session of its own, so
    stop() ends its worker too."""

    def __init__(self, ctx, home, server, http_extra=""):
        self.home = home
        self.access_log = os.path.join(home, "access.log")
        for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(home, "tmp", d), exist_ok=True)
        for _ in range(3):  # the port found free may be taken before nginx binds it
            self.port = _free_port()
            self._start(ctx, server, http_extra)
            if self._wait_ready():
                return
            self.stop()
        raise RuntimeError(f"nginx did not start: {self._errors()}")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _start(self, ctx, server, http_extra):
        user = ""
        if os.geteuid() == 0:  # else the worker runs as nobody and cannot read the scratch dir
            user = (f"user {pwd.getpwuid(os.geteuid()).pw_name} "
                    f"{grp.getgrgid(os.getegid()).gr_name};")
        h = self.home
        temp = " ".join(f"{k}_temp_path {h}/tmp/{k};"
                        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        path = os.path.join(h, "nginx.conf")
        with open(path, "w") as f:
            f.write(NGINX_CONF.format(home=h, user=user, temp=temp, http_extra=http_extra,
                                      port=self.port, server=server))
        self.stderr = open(os.path.join(h, "stderr.log"), "w")
        self.proc = subprocess.Popen([NGINX, "-p", h, "-c", path], stdin=subprocess.DEVNULL,
                                     stdout=self.stderr, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        ctx.procs.append(self.proc)

    def _wait_ready(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                time.sleep(0.02)
        return False

    def _errors(self):
        text = ""
        for name in ("stderr.log", "error.log"):
            try:
                with open(os.path.join(self.home, name)) as f:
                    text += f.read()[-1000:]
            except OSError:
                pass
        return text.strip()

    def log_offset(self):
        return os.path.getsize(self.access_log) if os.path.exists(self.access_log) else 0

    def sent_since(self, offset, uri="/" + MODEL):
        """(requests, body bytes) for `uri` logged after `offset`."""
        requests, sent = 0, 0
        with open(self.access_log) as f:
            f.seek(offset)
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[0] == uri:
                    requests += 1
                    sent += int(parts[2])
        return requests, sent

    def stop(self):
        """SIGTERM to the group (fast shutdown), SIGKILL if it has not gone in 10 s."""
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            if self._gone(wait):
                break
        self.stderr.close()

    def _gone(self, timeout):
        """Whether the master and its worker have exited within `timeout` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.proc.poll()  # reaps the master: a zombie still counts in its group
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.05)
        return False


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ctl(ctx):
    return os.path.join(os.path.dirname(os.path.dirname(ctx.broker_bin)), "clientlib",
                        "modelpoolctl")


def ctl_load_cmd(ctx, broker):
    return [_ctl(ctx), "--run-dir", broker.run_dir, "--pool", broker.pool, "load", MODEL]


def ctl_load(ctx, broker):
    """Seconds of `modelpoolctl load` (it returns once the model is loaded)."""
    t0 = time.perf_counter()
    out = subprocess.run(ctl_load_cmd(ctx, broker), capture_output=True, text=True,
                         timeout=LOAD_TIMEOUT)
    secs = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"modelpoolctl load failed ({out.returncode}): "
                           f"{out.stdout.strip()} {out.stderr.strip()} {broker.log_tail()}")
    return secs


def remote_broker(ctx, scenario, work, tier, size, origin_url):
    empty = tempfile.mkdtemp(prefix="models-", dir=work)
    return Broker(ctx, scenario, empty, max(2 * size, 256 * MiB),
                  extra=["--origin", origin_url, "--disk-cache", tier, "--disk-budget", "4GiB"])


def back_memory(ctx, n):
    """Fresh memory is backed by the host before a method fills it (as scenario 3)."""
    if ctx.has_prog("mp_bench_file"):
        run_json(ctx, "mp_bench_file", "backmem", "--bytes", n)


def remote_then_tier(ctx, origin, model_path, size, work):
    """(a) the cold download into a broker, then (2) a second broker on its tier."""
    tier = tempfile.mkdtemp(prefix="tier-", dir=work)
    back_memory(ctx, 2 * size + 64 * MiB)
    warm_page_cache(ctx, model_path)
    off = origin.log_offset()
    with remote_broker(ctx, "remote-a", work, tier, size, origin.url) as b:
        secs = ctl_load(ctx, b)
        st = b.stats()
    _, sent = origin.sent_since(off)
    back_memory(ctx, size + 64 * MiB)
    off = origin.log_offset()
    with remote_broker(ctx, "remote-tier", work, tier, size, origin.url) as b:
        tier_secs = ctl_load(ctx, b)
        st2 = b.stats()
    log_requests, _ = origin.sent_since(off)
    shutil.rmtree(tier, ignore_errors=True)
    o, o2 = st.get("origins", {}), st2.get("origins", {})
    return {"remote_s": secs, "remote_broker_load_s": st.get("load_seconds"),
            "remote_origin_x": sent / size, "remote_requests": o.get("requests"),
            "tier_s": tier_secs, "tier_broker_load_s": st2.get("load_seconds"),
            "tier_origin_requests": o2.get("requests"), "tier_disk_hits": o2.get("disk_hits"),
            "tier_origin_log_requests": log_requests}


def download(url, path):
    """curl, else Python's urllib; returns the downloader's name."""
    if shutil.which("curl"):
        subprocess.run(["curl", "-sS", "-o", path, url], check=True, timeout=LOAD_TIMEOUT)
        return "curl"
    with urllib.request.urlopen(url, timeout=60) as r, open(path, "wb") as f:
        shutil.copyfileobj(r, f, 1 << 20)
    return "python urllib"


def curl_then_load(ctx, origin, model_path, size, work):
    """(b) what users do: download into a models dir, then load it."""
    models = tempfile.mkdtemp(prefix="models-", dir=work)
    os.makedirs(os.path.join(models, "org"))
    back_memory(ctx, 2 * size + 64 * MiB)
    warm_page_cache(ctx, model_path)
    off = origin.log_offset()
    t0 = time.perf_counter()
    tool = download(f"{origin.url}/{MODEL}", os.path.join(models, MODEL))
    dl = time.perf_counter() - t0
    _, sent = origin.sent_since(off)
    with Broker(ctx, "remote-curl", models, max(2 * size, 256 * MiB)) as b:
        load = ctl_load(ctx, b)
    shutil.rmtree(models, ignore_errors=True)
    return {"curl_s": dl + load, "curl_download_s": dl, "curl_load_s": load,
            "curl_origin_x": sent / size, "downloader": tool}


def three_nodes(ctx, origin, model_path, size, work):
    """NODES brokers behind one caching proxy load the model at once."""
    home = tempfile.mkdtemp(prefix="proxy-", dir=work)
    proxy = Nginx(ctx, home, PROXY_SERVER.format(origin=origin.url),
                  http_extra=PROXY_CACHE.format(home=home))
    brokers, procs, tiers = [], [], []
    try:
        for k in range(NODES):
            tiers.append(tempfile.mkdtemp(prefix="tier-", dir=work))
            brokers.append(remote_broker(ctx, f"remote-node{k}", work, tiers[-1], size,
                                         proxy.url))
        warm_page_cache(ctx, model_path)
        off = origin.log_offset()
        t0 = time.perf_counter()
        procs = [subprocess.Popen(ctl_load_cmd(ctx, b), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for b in brokers]
        for p in procs:
            out, _ = p.communicate(timeout=LOAD_TIMEOUT)
            if p.returncode != 0:
                raise RuntimeError(f"modelpoolctl load through the proxy failed: {out.strip()}")
        wall = time.perf_counter() - t0
        node_x = [b.stats().get("origins", {}).get("bytes", 0) / size for b in brokers]
        requests, sent = origin.sent_since(off)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for b in brokers:
            b.stop()
        proxy.stop()
        for d in [home] + tiers:
            shutil.rmtree(d, ignore_errors=True)
    return {"nodes_wall_s": wall, "nodes_origin_x": sent / size, "nodes_origin_requests": requests,
            "nodes_node_bytes_x": min(node_x)}


def origin_home(ctx, work, size):
    """The origin's root, org/big.raw a link to the shared model file."""
    model_path = ensure_file(ctx, model_name(size), size)
    root = os.path.join(work, "origin", "root")
    os.makedirs(os.path.join(root, "org"))
    try:
        os.link(model_path, os.path.join(root, MODEL))
    except OSError:
        os.symlink(model_path, os.path.join(root, MODEL))
    return model_path, root


def summarise(rows, size, tool):
    keys = rows[0].keys() - {"downloader"}
    s = {k: summary([r[k] for r in rows]) for k in keys}
    ms = {k: summary([1e3 * r[k] for r in rows]) for k in keys if k.endswith("_s")}
    return {"status": "measured", "model": MODEL, "bytes": size, "downloader": tool,
            "nodes": NODES, "reps": len(rows), "ms": ms, "values": s,
            "curl_over_remote": ratio(med(s["curl_s"]), med(s["remote_s"])),
            "remote_over_tier": ratio(med(s["remote_s"]), med(s["tier_s"])),
            "tier_origin_requests_max": max(r["tier_origin_requests"] or 0 for r in rows),
            "tier_origin_log_requests_max": max(r["tier_origin_log_requests"] for r in rows),
            "tier_disk_hits": [r["tier_disk_hits"] for r in rows],
            "nodes_origin_x_max": max(r["nodes_origin_x"] for r in rows)}


def run(ctx):
    if not os.access(NGINX, os.X_OK):
        return not_measured(f"nginx not installed ({NGINX})")
    if not ctx.broker_bin or not os.access(ctx.broker_bin, os.X_OK):
        return not_measured("broker (modelpoold) not built yet")
    if not os.access(_ctl(ctx), os.X_OK):
        return not_measured("modelpoolctl not built yet")
    size = 128 * MiB if ctx.quick else GiB
    work = os.path.abspath(tempfile.mkdtemp(prefix="remote-", dir=ctx.data_dir))
    origin, rows = None, []
    try:
        model_path, root = origin_home(ctx, work, size)
        origin = Nginx(ctx, os.path.dirname(root), f"root {root};")
        methods = {"remote": remote_then_tier, "curl": curl_then_load}
        for rep in range(ctx.reps):
            row = {}
            for m in rotated(list(methods), rep):
                row.update(methods[m](ctx, origin, model_path, size, work))
            row.update(three_nodes(ctx, origin, model_path, size, work))
            log(f"remote: rep {rep + 1}: remote {row['remote_s']:.2f} s, {row['downloader']}+"
                f"load {row['curl_s']:.2f} s, tier {row['tier_s']:.2f} s, {NODES} nodes "
                f"{row['nodes_wall_s']:.2f} s, origin sent {row['nodes_origin_x']:.3f}x")
            rows.append(row)
    finally:
        if origin is not None:
            origin.stop()
        shutil.rmtree(work, ignore_errors=True)
    out = summarise(rows, size, rows[0]["downloader"])
    log(f"remote: {size / MiB:.0f} MiB, ({out['downloader']} + load) / remote "
        f"{out['curl_over_remote'] or 0:.2f}, remote / tier {out['remote_over_tier'] or 0:.2f} "
        f"({out['tier_origin_requests_max']} origin requests), {NODES} nodes: origin sent "
        f"{out['nodes_origin_x_max']:.3f}x the model")
    return out
