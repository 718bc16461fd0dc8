"""Run inside a virtual environment where the modelpool package was installed
with pip (venv_install_test.sh): starts a real broker, then checks that the
installed package, not a build tree, reads a model's bytes; then its
tensors through numpy and torch when this interpreter has them, and says
why it skips them when it has not. Standard library only, so that it runs
where nothing but the package is installed.

    python installed_worker.py MODELPOOLD [--require-numpy] [--require-torch]

Prints one line per check ("ok: ...", "skip: ..."); exits 1 on a failure.
"""

import argparse
import importlib.util
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import uuid

START_TIMEOUT_S = 30


def write_safetensors(path, values):
    """One F32 tensor "w" of shape (2, len(values) // 2), as the format lays it out."""
    data = struct.pack(f"<{len(values)}f", *values)
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, len(values) // 2],
                               "data_offsets": [0, len(data)]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + data)


class Broker:
    def __init__(self, binary, models_dir, run_dir):
        self.pool = f"mpvenv-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.socket = os.path.join(run_dir, self.pool + ".sock")
        self.proc = subprocess.Popen(
            [binary, "--models", models_dir, "--name", self.pool, "--run-dir", run_dir,
             "--memory", "64MiB", "--log-level", "warn", "--remove-on-exit"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        line = self._first_line()
        if not line.startswith("modelpoold: ready"):
            self.stop()
            raise SystemExit(f"FAIL: modelpoold did not start: {line!r}")

    def _first_line(self):
        fd, buf = self.proc.stdout.fileno(), b""
        deadline = time.monotonic() + START_TIMEOUT_S
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
        return buf.split(b"\n")[0].decode(errors="replace")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def check(condition, what):
    if not condition:
        raise SystemExit(f"FAIL: {what}")
    print(f"ok: {what}", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("modelpoold")
    parser.add_argument("--require-numpy", action="store_true")
    parser.add_argument("--require-torch", action="store_true")
    args = parser.parse_args()

    import modelpool  # noqa: E402 - the package under test

    where = os.path.dirname(os.path.abspath(modelpool.__file__))
    check(where.startswith(os.path.abspath(sys.prefix) + os.sep),
          f"modelpool {modelpool.__version__} imported from this environment ({where})")
    check("numpy" not in sys.modules, "import modelpool does not import numpy")

    scratch = tempfile.mkdtemp(prefix="mp-venv-")
    try:
        models, run = os.path.join(scratch, "models"), os.path.join(scratch, "run")
        os.mkdir(models)
        raw = os.urandom(1 << 20)
        with open(os.path.join(models, "raw.bin"), "wb") as f:
            f.write(raw)
        values = [0.5, -1.0, 2.25, 3.0, 1e-3, 42.0]
        write_safetensors(os.path.join(models, "w.safetensors"), values)
        broker = Broker(args.modelpoold, models, run)
        try:
            client = modelpool.Client(socket=broker.socket)
            with client.acquire("raw.bin") as m:
                view = m.bytes()
                check(view.readonly and bytes(view) == raw,
                      "bytes() of a 1 MiB model match the file")
                del view
            has_numpy = importlib.util.find_spec("numpy") is not None
            if has_numpy:
                import numpy as np
                with client.acquire("w.safetensors") as m:
                    a = m.tensor("w")
                    check(a.shape == (2, 3) and not a.flags.writeable
                          and np.array_equal(a.ravel(), np.array(values, dtype=np.float32)),
                          f"numpy {np.__version__}: tensor() is a read-only (2, 3) float32 view")
                    del a
            elif args.require_numpy:
                raise SystemExit(f"FAIL: numpy is required but {sys.executable} has none")
            else:
                with client.acquire("w.safetensors") as m:
                    try:
                        m.tensor("w")
                        raised = ""
                    except ImportError as e:
                        raised = str(e)
                    check("numpy" in raised,
                          f"without numpy, tensor() raises ImportError ({raised})")
                print(f"skip: numpy: not installed for {sys.executable}", flush=True)
            if has_numpy and importlib.util.find_spec("torch") is not None:
                import torch
                with client.acquire("w.safetensors") as m:
                    t = m.state_dict()["w"]
                    check(t.dtype == torch.float32 and t.device.type == "cpu"
                          and t.flatten().tolist() == [float(np.float32(v)) for v in values],
                          f"torch {torch.__version__}: state_dict() tensor on the CPU, same values")
                    del t
            elif args.require_torch:
                raise SystemExit(f"FAIL: torch is required but {sys.executable} has none")
            else:
                print(f"skip: torch: not installed for {sys.executable}", flush=True)
            client.close()
        finally:
            broker.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
