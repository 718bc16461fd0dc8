#!/usr/bin/env python3
"""Writes a sample safetensors model: several F32/F16 tensors of about SIZE MiB.

usage: make_sample_model.py OUT.safetensors [SIZE_MIB]

The file follows the published safetensors layout: an 8-byte little-endian
header length, a JSON header (dtype, shape, data_offsets per tensor, plus
__metadata__), then the tensor bytes. Uses numpy when present (Debian's
python3-numpy) and the standard library otherwise.
"""
import json
import os
import struct
import sys


def tensor_bytes(count, seed, dtype):
    try:
        import numpy as np
        rng = np.random.default_rng(seed)
        data = rng.standard_normal(count, dtype=np.float32) * 0.02
        return (data.astype(np.float16) if dtype == "F16" else data).tobytes()
    except ImportError:
        width = 2 if dtype == "F16" else 4
        return os.urandom(count * width)


def main():
    out = sys.argv[1]
    size_mib = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    hidden = 1024
    # (name, dtype, shape): an embedding, a few blocks, a head; scaled to size.
    layers = max(1, (size_mib * 2**20 - 2 * 32000 * hidden * 2) // (8 * hidden * hidden * 4 + 1))
    plan = [("embed.weight", "F16", [32000, hidden])]
    for i in range(layers):
        plan += [(f"blocks.{i}.attn.qkv.weight", "F32", [3 * hidden, hidden]),
                 (f"blocks.{i}.attn.out.weight", "F32", [hidden, hidden]),
                 (f"blocks.{i}.mlp.up.weight", "F32", [2 * hidden, hidden]),
                 (f"blocks.{i}.mlp.down.weight", "F32", [hidden, 2 * hidden]),
                 (f"blocks.{i}.norm.weight", "F32", [hidden])]
    plan.append(("lm_head.weight", "F16", [32000, hidden]))
    header = {"__metadata__": {"format": "pt", "model": "modelpool-demo", "layers": str(layers)}}
    offset = 0
    for name, dtype, shape in plan:
        n = 1
        for d in shape:
            n *= d
        nbytes = n * (2 if dtype == "F16" else 4)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # pad the header so the data section is 8-byte aligned
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for i, (name, dtype, shape) in enumerate(plan):
            n = 1
            for d in shape:
                n *= d
            f.write(tensor_bytes(n, i, dtype))
    print(f"wrote {out}: {len(plan)} tensors, {os.path.getsize(out) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
