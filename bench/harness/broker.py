# File: bench/harness/broker.py
#
# A modelpoold started for one scenario: a scratch run dir, a unique pool
# name, ready once its worker socket answers `hello`; stopped with SIGTERM,
# after which its segment and run dir are removed. Also a minimal client of
# the wire protocol (4-byte little-endian length + JSON) for admin ops, so
# the driver needs nothing but the standard library.
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

from harness.common import log, pinned


class BrokerError(RuntimeError):
    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code


class Conn:
    """One connection to a worker or admin socket; calls are sequential."""

    def __init__(self, path, timeout=600):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.next_id = 1

    def call(self, op, **fields):
        req = dict(fields, op=op, id=self.next_id)
        self.next_id += 1
        payload = json.dumps(req).encode()
        self.sock.sendall(struct.pack("<I", len(payload)) + payload)
        (n,) = struct.unpack("<I", self._recv(4))
        reply = json.loads(self._recv(n))
        if not reply.get("ok"):
            err = reply.get("error", {})
            raise BrokerError(err.get("code", "?"), err.get("message", ""))
        return reply

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            buf += chunk
        return buf

    def close(self):
        self.sock.close()


class Broker:
    def __init__(self, ctx, scenario, models_dir, memory, extra=(), cpu=None):
        self.ctx = ctx
        self.pool = f"mpbench-{ctx.tag}-{scenario}"
        self.run_dir = tempfile.mkdtemp(prefix="mpbench-run-")
        self.socket = os.path.join(self.run_dir, self.pool + ".sock")
        self.admin_socket = os.path.join(self.run_dir, self.pool + ".admin.sock")
        self.segment = f"/dev/shm/{self.pool}"
        ctx.shm_files.append(self.segment)
        self.log_path = os.path.join(self.run_dir, "modelpoold.log")
        cmd = [ctx.broker_bin, "--models", models_dir, "--name", self.pool,
               "--run-dir", self.run_dir, "--memory", str(memory), "--log-level", "warn"]
        if "--huge-tmpfs" in broker_help(ctx.broker_bin):
            cmd += ["--huge-tmpfs", "no"]  # /dev/shm unless `extra` says otherwise (later wins)
        cmd += [*extra]
        if "--remove-on-exit" in broker_help(ctx.broker_bin):
            cmd.append("--remove-on-exit")
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=pinned(cpu))
        ctx.procs.append(self.proc)
        self.pid = self.proc.pid
        self._admin = None
        self._wait_ready()

    def _wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"modelpoold exited ({self.proc.returncode}): {self.log_tail()}")
            try:
                c = Conn(self.socket, timeout=5)
                c.call("hello", proto=1)
                c.close()
                return
            except (OSError, ConnectionError, BrokerError):
                time.sleep(0.02)
        raise RuntimeError(f"modelpoold not ready after {timeout}s: {self.log_tail()}")

    def admin(self, op, **fields):
        if self._admin is None:
            self._admin = Conn(self.admin_socket)
        return self._admin.call(op, **fields)

    def stats(self):
        return self.admin("stats")

    def log_tail(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def stop(self):
        if self._admin is not None:
            self._admin.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                log("modelpoold ignored SIGTERM for 20 s; killing it")
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()
        for path in (self.segment,):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


_help_cache = {}


def broker_help(binary):
    if binary not in _help_cache:
        try:
            out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
            _help_cache[binary] = out.stdout + out.stderr
        except OSError:
            _help_cache[binary] = ""
    return _help_cache[binary]


def modelpool_ready(ctx):
    """'' when broker and client are built, else why the pool is not measured."""
    if not ctx.broker_bin or not os.access(ctx.broker_bin, os.X_OK):
        return "broker (modelpoold) not built yet"
    probe = subprocess.run([ctx.prog("mp_bench_worker"), "--probe"], capture_output=True,
                           text=True)
    if '"modelpool_client": true' not in probe.stdout:
        return "client library (modelpool_client) not built yet"
    return ""
