"""Fixtures: a real modelpoold on a scratch run dir with a unique pool name
(started and awaited through its ready line, stopped with SIGTERM, its
segment removed), admin requests, and /proc readings.

Environment (set by ctest, see clientlib/python/CMakeLists.txt):
  MODELPOOL_TEST_BROKER    path of the modelpoold binary
  PYTHONPATH               the built package (BUILD/clientlib/python)
"""

import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import uuid

import numpy as np
import pytest

import model_files

BROKER_BINARY = os.environ.get("MODELPOOL_TEST_BROKER", "")
MiB = 1 << 20
START_TIMEOUT_S = 60


class Broker:
    """modelpoold --models DIR --name <unique> --run-dir <scratch> --memory M."""

    def __init__(self, models_dir, memory="1GiB", extra=()):
        if not os.access(BROKER_BINARY, os.X_OK):
            pytest.fail(f"MODELPOOL_TEST_BROKER={BROKER_BINARY!r} is not an executable modelpoold")
        self.models_dir = str(models_dir)
        self.pool = f"mppy-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.run_dir = tempfile.mkdtemp(prefix="mp-run-py-")
        argv = [BROKER_BINARY, "--models", self.models_dir, "--name", self.pool,
                "--run-dir", self.run_dir, "--memory", memory, "--log-level", "warn",
                "--huge-tmpfs", "no", *extra]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        self.ready_line = self._read_line(START_TIMEOUT_S)
        if not self.ready_line.startswith("modelpoold: ready"):
            self.stop()
            pytest.fail(f"modelpoold did not start: {self.ready_line!r}")

    def _read_line(self, timeout_s):
        """The first stdout line; "" on EOF or when none comes within timeout_s."""
        fd, buf = self.proc.stdout.fileno(), b""
        deadline = time.monotonic() + timeout_s
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
        return buf.split(b"\n")[0].decode(errors="replace")

    @property
    def socket(self):
        return os.path.join(self.run_dir, self.pool + ".sock")

    @property
    def segment_path(self):
        return "/dev/shm/" + self.pool

    def admin(self, op, **fields):
        """One admin request (4-byte little-endian length, JSON); the reply."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(os.path.join(self.run_dir, self.pool + ".admin.sock"))
            body = json.dumps({"op": op, **fields}).encode()
            s.sendall(struct.pack("<I", len(body)) + body)
            (n,) = struct.unpack("<I", _recv_exact(s, 4))
            return json.loads(_recv_exact(s, n))

    def refs(self, name):
        for row in self.admin("list")["models"]:
            if row["name"] == name:
                return row["refs"]
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        if os.path.exists(self.segment_path):
            os.unlink(self.segment_path)
        shutil.rmtree(self.run_dir, ignore_errors=True)


def _recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the admin connection")
        buf += chunk
    return buf


# ---- the shared model set --------------------------------------------------

def _arange(dtype, shape):
    return (np.arange(int(np.prod(shape))) % 97 - 40).astype(dtype).reshape(shape)


# Every safetensors dtype numpy holds, plus BF16 (raw bits) and a scalar.
ALL_DTYPES = {
    "t.f16": _arange(np.float16, (3, 5)),
    "t.f32": _arange(np.float32, (4, 6)),
    "t.f64": _arange(np.float64, (7,)),
    "t.i8": _arange(np.int8, (2, 3, 4)),
    "t.i16": _arange(np.int16, (5,)),
    "t.i32": _arange(np.int32, (3, 3)),
    "t.i64": _arange(np.int64, (2, 2)),
    "t.u8": _arange(np.uint8, (9,)),
    "t.u16": _arange(np.uint16, (4,)),
    "t.u32": _arange(np.uint32, (4,)),
    "t.u64": _arange(np.uint64, (4,)),
    "t.bool": (np.arange(6) % 2 == 0).reshape(2, 3),
    "t.c64": _arange(np.complex64, (3,)),
    "t.scalar": np.array(3.5, dtype=np.float32),
    "t.empty": np.zeros((0, 4), dtype=np.float32),
}
# File order of org/all.safetensors. The empty tensor goes last: the reader
# lists tensors by offset, and an empty one shares its offset with the next.
ALL_NAMES = [n for n in ALL_DTYPES if n != "t.empty"] + ["t.bf16", "t.empty"]
BF16_BITS = np.array([0x3F80, 0xC000, 0x4049, 0x0000, 0x7F80, 0x3EAA], dtype=np.uint16)  # 1,-2,3.14..,0,inf,0.33


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    tensors = {name: ALL_DTYPES[name] for name in ALL_NAMES if name != "t.bf16"}
    tensors["t.bf16"] = ("BF16", BF16_BITS.reshape(2, 3))
    tensors = {name: tensors[name] for name in ALL_NAMES}
    model_files.write_safetensors(d / "org" / "all.safetensors", tensors,
                                  metadata={"format": "pt", "author": "tests"})
    rng = np.random.default_rng(5)
    q8 = rng.integers(0, 256, size=4 * 2 * 34, dtype=np.uint8).tobytes()  # 4 rows of 64 Q8_0 values
    model_files.write_gguf(d / "org" / "small.gguf", [
        ("tok.f32", model_files.GGML_F32, [3, 2], _arange(np.float32, (2, 3)).tobytes()),
        ("tok.f16", model_files.GGML_F16, [4], _arange(np.float16, (4,)).tobytes()),
        ("tok.i32", model_files.GGML_I32, [2, 2, 2], _arange(np.int32, (2, 2, 2)).tobytes()),
        ("tok.bf16", model_files.GGML_BF16, [6], BF16_BITS.tobytes()),
        ("blk.q8", model_files.GGML_Q8_0, [64, 4], q8),
    ], kv={"general.name": "small"})
    (d / "raw.bin").write_bytes(bytes(range(256)) * 64)
    bad = b'{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'  # 16 bytes promised, 0 given
    (d / "broken.safetensors").write_bytes(struct.pack("<Q", len(bad)) + bad)
    return d


@pytest.fixture(scope="session")
def broker(models_dir):
    b = Broker(models_dir)
    yield b
    b.stop()


@pytest.fixture
def client(broker):
    import modelpool
    with modelpool.Client(socket=broker.socket) as c:
        yield c


@pytest.fixture
def small_broker(tmp_path):
    """A 16 MiB pool holding two 10 MiB models, one at a time."""
    for name in ("a.bin", "b.bin"):
        (tmp_path / name).write_bytes(os.urandom(10 * MiB))
    (tmp_path / "huge.bin").write_bytes(b"\0" * (20 * MiB))
    b = Broker(tmp_path, memory="16MiB")
    yield b
    b.stop()
    for name in ("a.bin", "b.bin", "huge.bin"):
        (tmp_path / name).unlink()  # pytest keeps tmp dirs of recent runs
