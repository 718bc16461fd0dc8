"""Models of several files from Python: a sharded safetensors repository below
--models, and a Hugging Face cache with two revisions that share a shard,
each read into a real torch module without a copy and checked against the
module it was saved from."""

import hashlib
import inspect
import json
import os

import numpy as np
import pytest

import model_files
import modelpool
from conftest import Broker
from procinfo import in_segment

torch = pytest.importorskip("torch")

SHARD1 = "model-00001-of-00002.safetensors"
SHARD2 = "model-00002-of-00002.safetensors"
INDEX = "model.safetensors.index.json"
CONFIG = json.dumps({"model_type": "test-block", "d_model": 32, "nhead": 4}).encode()
# Shard 1 holds the attention and the first linear layer, shard 2 the rest:
# the shared shard of the cache test is the larger one, so that holding it
# twice would show in bytes_used.
SHARD2_PREFIXES = ("linear2.", "norm1.", "norm2.")


def make_block(seed):
    torch.manual_seed(seed)
    block = torch.nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64,
                                             batch_first=True)
    return block.eval()


def shard_of(name):
    return SHARD2 if name.startswith(SHARD2_PREFIXES) else SHARD1


def shard_tensors(block):
    """{shard file: {name: ndarray}}, each in state_dict order."""
    shards = {SHARD1: {}, SHARD2: {}}
    for name, t in block.state_dict().items():
        shards[shard_of(name)][name] = t.detach().numpy()
    return shards


def index_json(weight_map):
    return json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}).encode()


def write_repository(directory, block, weight_map):
    """The block as two shards, their index (weight_map in its order) and
    config.json; {file name: its bytes}."""
    files = {name: model_files.write_safetensors(directory / name, tensors)
             for name, tensors in shard_tensors(block).items()}
    files[INDEX] = index_json(weight_map)
    files["config.json"] = CONFIG
    for name in (INDEX, "config.json"):
        (directory / name).write_bytes(files[name])
    return files


def load_zero_copy(module, state_dict):
    """load_state_dict(state_dict, assign=True) where torch has it (2.1+), else
    the same by hand: the module's parameters become the given tensors."""
    if "assign" in inspect.signature(module.load_state_dict).parameters:
        module.load_state_dict(state_dict, assign=True)
        return
    assert set(state_dict) == set(module.state_dict())
    for name, t in state_dict.items():
        owner, _, attr = name.rpartition(".")
        sub = module.get_submodule(owner) if owner else module
        if attr in sub._parameters:
            setattr(sub, attr, torch.nn.Parameter(t, requires_grad=False))
        else:
            sub.register_buffer(attr, t)


def forward(block, x):
    with torch.no_grad():
        return block(x)


def sample_input():
    return torch.randn(2, 5, 32, generator=torch.Generator().manual_seed(7))


def from_pool(m, client):
    """A fresh block (other weights) whose parameters are now the pool's pages."""
    block = make_block(seed=99)
    load_zero_copy(block, m.state_dict())
    for name, p in block.named_parameters():
        assert in_segment(p.data_ptr(), p.numel() * p.element_size(), client.segment_path), name
    return block


def address(mv):
    return np.frombuffer(mv, dtype=np.uint8).ctypes.data


def test_a_sharded_repository_is_one_torch_module_without_a_copy(tmp_path):
    original = make_block(seed=1)
    sd = original.state_dict()
    # The index lists shard 2's tensors first: that is the model's order.
    order = [n for n in sd if shard_of(n) == SHARD2] + [n for n in sd if shard_of(n) == SHARD1]
    repo = tmp_path / "models" / "org" / "block"
    files = write_repository(repo, original, {n: shard_of(n) for n in order})
    broker = Broker(tmp_path / "models")
    try:
        with modelpool.Client(socket=broker.socket) as c:
            with c.acquire("org/block") as m:
                listed = m.files()
                assert [f["name"] for f in listed] == [SHARD2, SHARD1, "config.json", INDEX]
                assert [f["weights"] for f in listed] == [True, True, False, False]
                assert [f["size"] for f in listed] == [len(files[f["name"]]) for f in listed]
                assert listed[0]["format"] == "safetensors"
                assert m.commit == ""

                config = m.file("config.json")
                assert isinstance(config, memoryview) and config.readonly
                assert bytes(config) == CONFIG
                assert in_segment(address(config), len(config), c.segment_path)
                assert bytes(m.file(SHARD1)) == files[SHARD1]
                with pytest.raises(modelpool.NotFound):
                    m.file("pytorch_model.bin")

                assert m.tensor_names() == order
                info = m.tensor_info("linear1.weight")
                assert info["file"] == SHARD1
                held = m.file(SHARD1)[info["offset"]:info["offset"] + info["nbytes"]]
                assert bytes(held) == sd["linear1.weight"].numpy().tobytes()
                np.testing.assert_array_equal(m.tensor("norm2.bias"), sd["norm2.bias"].numpy())

                block = from_pool(m, c)
            assert m.closed and m.held  # the module's parameters keep the model
            x = sample_input()
            assert torch.equal(forward(block, x), forward(original, x))
            del block, config, held
            assert not m.held
            with pytest.raises(modelpool.StaleHandle):
                m.file("config.json")
    finally:
        broker.stop()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def write_hf_snapshot(repo, commit, block, staging):
    """One revision of models--org--m, laid out as huggingface_hub does:
    blobs/SHA256 (shared across revisions), snapshots/COMMIT/FILE ->
    ../../blobs/SHA256. {file name: its bytes}."""
    files = write_repository(staging / commit, block,
                             {n: shard_of(n) for n in block.state_dict()})
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for name, data in files.items():
        (repo / "blobs" / sha256(data)).write_bytes(data)
        os.symlink(f"../../blobs/{sha256(data)}", snapshot / name)
    return files


def test_two_revisions_of_the_hf_cache_share_their_common_shard(tmp_path):
    v1 = make_block(seed=1)
    v2 = make_block(seed=1)
    with torch.no_grad():  # the second revision retrains the last layers only
        for name, p in v2.named_parameters():
            if shard_of(name) == SHARD2:
                p.add_(0.01)
    cache, repo = tmp_path / "hub", tmp_path / "hub" / "models--org--m"
    c1, c2 = hashlib.sha1(b"revision 1").hexdigest(), hashlib.sha1(b"revision 2").hexdigest()
    files1 = write_hf_snapshot(repo, c1, v1, tmp_path / "staging")
    files2 = write_hf_snapshot(repo, c2, v2, tmp_path / "staging")
    assert files1[SHARD1] == files2[SHARD1] and files1[SHARD2] != files2[SHARD2]
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(c1)
    (tmp_path / "models").mkdir()

    broker = Broker(tmp_path / "models", extra=("--hf-cache", str(cache)))
    try:
        with modelpool.Client(socket=broker.socket) as c:
            m1 = c.acquire("hf:org/m")
            assert m1.commit == c1
            used1 = broker.admin("stats")["bytes_used"]
            m2 = c.acquire(f"hf:org/m@{c2}")
            assert m2.commit == c2
            added = broker.admin("stats")["bytes_used"] - used1
            # The second revision brought in its own shard only.
            assert len(files2[SHARD2]) <= added < len(files1[SHARD1]), added
            assert [f["name"] for f in m2.files()][:2] == [SHARD1, SHARD2]
            assert bytes(m2.file(SHARD2)) == files2[SHARD2]
            assert bytes(m1.file(SHARD2)) == files1[SHARD2]

            x = sample_input()
            out1 = forward(from_pool(m1, c), x)
            out2 = forward(from_pool(m2, c), x)
            assert torch.equal(out1, forward(v1, x))
            assert torch.equal(out2, forward(v2, x))
            assert not torch.equal(out1, out2)
            m1.release()
            m2.release()
    finally:
        broker.stop()
