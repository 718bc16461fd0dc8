"""state_dict(): torch tensors over the pool's pages, and the torch example."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from conftest import ALL_DTYPES, ALL_NAMES, BF16_BITS, Broker
from procinfo import in_segment

torch = pytest.importorskip("torch")

ALL = "org/all.safetensors"
EXAMPLES = os.environ.get("MODELPOOL_TEST_EXAMPLES",
                          os.path.join(os.path.dirname(__file__), "..", "examples"))


def test_state_dict_shares_the_pool_without_warning(client):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with client.acquire(ALL) as m:
            sd = m.state_dict()
    assert [str(w.message) for w in caught] == []
    assert list(sd) == ALL_NAMES
    for name, want in ALL_DTYPES.items():
        t = sd[name]
        assert tuple(t.shape) == want.shape, name
        if name in ("t.u16", "t.u32", "t.u64") and not hasattr(torch, "uint16"):
            want = want.view(want.dtype.str.replace("u", "i"))  # same bits, signed
        np.testing.assert_array_equal(t.numpy(), want, err_msg=name)
        if t.numel():
            assert in_segment(t.data_ptr(), t.numel() * t.element_size(), client.segment_path)
    assert m.held  # the tensors keep the model
    bf16 = sd["t.bf16"]
    assert bf16.dtype == torch.bfloat16
    assert bf16.flatten().view(torch.int16).numpy().view(np.uint16).tolist() == BF16_BITS.tolist()
    assert bf16[0, 0].item() == 1.0 and bf16[0, 1].item() == -2.0
    del sd, t, bf16
    assert not m.held


def test_gguf_state_dict(client):
    with client.acquire("org/small.gguf") as m:
        sd = m.state_dict()
    assert sd["tok.f32"].shape == (2, 3) and sd["tok.f32"].dtype == torch.float32
    assert sd["tok.bf16"].dtype == torch.bfloat16
    assert sd["blk.q8"].dtype == torch.uint8 and sd["blk.q8"].shape == (4, 68)


def test_writing_a_pool_tensor_kills_the_writer_not_the_pool(broker):
    # torch has no read-only tensors: the pages are PROT_READ, so an in-place
    # write is a SIGSEGV in the writer, and the pool's bytes stay intact.
    code = textwrap.dedent(f"""
        import modelpool
        m = modelpool.Client(socket={broker.socket!r}).acquire({ALL!r})
        t = m.state_dict()["t.f32"]
        print("writing", flush=True)
        t.add_(1)
        print("wrote", flush=True)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == -signal.SIGSEGV, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == "writing\n"
    import modelpool
    with modelpool.Client(socket=broker.socket) as c, c.acquire(ALL) as m:
        np.testing.assert_array_equal(m.tensor("t.f32"), ALL_DTYPES["t.f32"])


def test_torch_example_outputs_are_bit_identical(tmp_path):
    broker = Broker(tmp_path)
    try:
        r = subprocess.run([sys.executable, os.path.join(EXAMPLES, "torch_worker.py"),
                            "--models", str(tmp_path), "--socket", broker.socket],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, (r.stdout, r.stderr)
        out = json.loads(r.stdout)
        assert out["ok"] and out["zero_copy"] and out["held_after_with"]
        assert out["identical"] == {"original": True, "copied": True, "shared": True}
        assert broker.refs(out["model"]) == 0  # released when the worker exited
    finally:
        broker.stop()
