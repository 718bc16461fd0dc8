#!/usr/bin/python3
"""A torch worker whose weights come from the pool, without a copy.

    modelpoold --models DIR --name demo --run-dir /tmp/mp &
    PYTHONPATH=build/clientlib/python /usr/bin/python3 \\
        clientlib/python/examples/torch_worker.py --models DIR --socket /tmp/mp/demo.sock

1. Builds a small torch.nn model (seeded) and saves its weights to
   DIR/examples/tiny_mlp.safetensors, written by hand after the published
   layout (8-byte little-endian header length, JSON header, data section).
2. Loads the same file the ordinary way (read it, copy into a fresh model).
3. Acquires it from the pool twice over: load_state_dict(m.state_dict())
   copies the pool's tensors into the model's own parameters; the zero-copy
   way assigns them as parameters (requires_grad=False), so the model's
   weights *are* the pool's pages (read-only: inference only).
4. Prints one JSON line; exits 0 when every output is bit-identical to the
   file-loaded model's and the zero-copy weights lie inside the pool.
"""

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch

import modelpool

NAME = "examples/tiny_mlp.safetensors"
TORCH_TO_ST = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
               torch.float64: "F64", torch.int64: "I64", torch.int32: "I32"}
ST_TO_TORCH = {v: k for k, v in TORCH_TO_ST.items()}
ALIGN = 64  # data section aligned like torch's own allocations (the pool maps pages)


class TinyMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = torch.nn.Linear(64, 128)
        self.l2 = torch.nn.Linear(128, 32)
        self.norm = torch.nn.LayerNorm(32)

    def forward(self, x):
        return self.norm(self.l2(torch.relu(self.l1(x))))


def save_safetensors(path, state_dict):
    header, chunks, offset = {}, [], 0
    for name, t in state_dict.items():
        data = t.detach().contiguous().cpu().view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": TORCH_TO_ST[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((-(8 + len(text))) % ALIGN)  # trailing spaces are valid JSON padding
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def load_safetensors(path):
    blob = path.read_bytes()
    (n,) = struct.unpack_from("<Q", blob)
    header = json.loads(blob[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        raw = np.frombuffer(blob, np.uint8, end - begin, 8 + n + begin).copy()
        out[name] = torch.from_numpy(raw).view(ST_TO_TORCH[e["dtype"]]).reshape(e["shape"])
    return out


def assign_without_copy(module, state_dict):
    """Makes the module's parameters and buffers the given tensors (shared)."""
    for name, t in state_dict.items():
        owner_name, _, attr = name.rpartition(".")
        owner = module.get_submodule(owner_name) if owner_name else module
        if attr in owner._parameters:
            setattr(owner, attr, torch.nn.Parameter(t, requires_grad=False))
        else:
            owner.register_buffer(attr, t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", required=True, type=Path, help="the broker's --models DIR")
    ap.add_argument("--socket", help="the broker's worker socket (default: Client())")
    args = ap.parse_args()

    torch.manual_seed(0)
    original = TinyMLP().eval()
    save_safetensors(args.models / NAME, original.state_dict())
    x = torch.randn(16, 64, generator=torch.Generator().manual_seed(1))

    from_file = TinyMLP().eval()
    from_file.load_state_dict(load_safetensors(args.models / NAME))

    client = modelpool.Client(socket=args.socket) if args.socket else modelpool.Client()
    with client.acquire(NAME) as m:
        copied = TinyMLP().eval()
        copied.load_state_dict(m.state_dict())
        shared = TinyMLP().eval()
        assign_without_copy(shared, m.state_dict())
        pool = np.frombuffer(m.bytes(), np.uint8).__array_interface__["data"][0]
    # The pool's tensors keep the model mapped (and referenced) while `shared` uses them.
    in_pool = all(pool <= p.data_ptr() and p.data_ptr() + p.numel() * p.element_size()
                  <= pool + m.size for p in shared.parameters())

    with torch.no_grad():
        want = from_file(x)
        outputs = {"original": original(x), "copied": copied(x), "shared": shared(x)}
    identical = {k: bool(torch.equal(v, want)) for k, v in outputs.items()}
    ok = all(identical.values()) and in_pool
    print(json.dumps({"ok": ok, "identical": identical, "zero_copy": in_pool,
                      "held_after_with": m.held, "model": NAME}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
