"""Three Python worker processes share one copy of a model."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import model_files
from conftest import MiB, Broker
from procinfo import shmem_bytes

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = 96 * MiB


@pytest.fixture
def big_model(tmp_path):
    rng = np.random.default_rng(11)
    w = rng.standard_normal((SIZE // 4 // 1024 - 16, 1024), dtype=np.float32)
    b = rng.standard_normal(16 * 1024, dtype=np.float32)
    model_files.write_safetensors(tmp_path / "big.safetensors", {"w": w, "b": b})
    yield tmp_path, float(w.sum(dtype=np.float64) + b.sum(dtype=np.float64))
    (tmp_path / "big.safetensors").unlink()  # pytest keeps tmp dirs of recent runs


def test_three_workers_share_one_copy(big_model):
    models, want_sum = big_model
    size = (models / "big.safetensors").stat().st_size
    broker = Broker(models)
    workers = []
    try:
        before = shmem_bytes()
        for i in range(3):
            w = subprocess.Popen([sys.executable, os.path.join(HERE, "mp_worker.py"),
                                  broker.socket, "big.safetensors"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            workers.append(w)
            r = json.loads(w.stdout.readline() or '{"ok": false}')  # in order: one load, two hits
            assert r["ok"], r
            assert r["cached"] == (i > 0)
            assert r["in_segment"] and r["read_only"]
            assert r["sum"] == pytest.approx(want_sum, rel=1e-9)
        rise = shmem_bytes() - before
        assert broker.refs("big.safetensors") == 3
        # The pool holds the model once: Shmem grows by about 1x, not 3x.
        assert 0.9 * size < rise < 1.3 * size, (rise, size)
        stats = broker.admin("stats")
        assert stats["loads"] == 1 and stats["hits"] == 2
    finally:
        for w in workers:
            w.stdin.close()
        for w in workers:
            w.wait(timeout=60)
            w.stdout.close()
        broker.stop()
    assert all(w.returncode == 0 for w in workers)
