#!/usr/bin/env python3
# File: tests/format/make_fixtures.py
#
# Writes model files for the format reader tests with writers independent of
# the C++ readers: safetensors from numpy arrays and from torch tensors (the
# published layout: u64 header length, JSON header, data; bytes from
# .tobytes()), GGUF v3 and v2 files per docs/gguf.md with metadata of every
# value type (nested arrays too) and tensors of several ggml types, including
# block-quantised Q8_0, Q4_0 and Q4_K with hand-built blocks. Next to them,
# expectations.json lists each file's format, metadata and every tensor's
# name, dtype, shape, file offset, size and bytes (hex) in file order.
#
#   make_fixtures.py OUT_DIR
#
# Needs numpy; torch is optional (expectations.json says whether it was used).
import json
import math
import os
import struct
import sys

import numpy as np

import gguf_writer

try:
    import torch
except ImportError:  # the torch fixture is skipped, not failed
    torch = None

NUMPY_DTYPES = {
    "float64": "F64", "float32": "F32", "float16": "F16", "int64": "I64", "int32": "I32",
    "int16": "I16", "int8": "I8", "uint8": "U8", "uint16": "U16", "uint32": "U32",
    "uint64": "U64", "bool": "BOOL",
}


def le_bytes(a):
    """Little-endian C-order bytes of a numpy array."""
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return a.tobytes()


def expect(name, dtype, shape, offset, data):
    return {"name": name, "dtype": dtype, "shape": [int(d) for d in shape], "offset": offset,
            "size": len(data), "hex": data.hex()}


def write_safetensors(path, tensors, metadata=None):
    """tensors: [(name, dtype, shape, bytes)] in data order. Returns expectations."""
    entries, begin = {}, 0
    for name, dtype, shape, data in tensors:
        entries[name] = {"dtype": dtype, "shape": list(shape),
                         "data_offsets": [begin, begin + len(data)]}
        begin += len(data)
    header = {} if metadata is None else {"__metadata__": metadata}
    for name in reversed(list(entries)):  # header order != data order on purpose
        header[name] = entries[name]
    text = json.dumps(header, ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)  # the reference writer pads with spaces
    data_start = 8 + len(text)
    out, exp = [struct.pack("<Q", len(text)), text], []
    for name, dtype, shape, data in tensors:
        exp.append(expect(name, dtype, shape, data_start + entries[name]["data_offsets"][0], data))
        out.append(data)
    with open(path, "wb") as f:
        f.write(b"".join(out))
    return {"format": "safetensors", "metadata": metadata or {}, "tensors": exp}


def numpy_safetensors(path):
    rng = np.random.default_rng(5)
    arrays = [
        ("embed.weight", rng.standard_normal((4, 6)).astype(np.float32)),
        ("layer.0.half", rng.standard_normal((3, 5)).astype(np.float16)),
        ("layer.0.double", np.array(math.pi)),  # 0-d
        ("ids", np.arange(-5, 5, dtype=np.int64).reshape(2, 5)),
        ("mask", np.array([True, False, True])),
        ("bytes", np.arange(7, dtype=np.uint8)),
        ("i8", np.array([-128, 0, 127], dtype=np.int8)),
        ("i16", np.array([-32768, 1, 32767], dtype=np.int16)),
        ("u16", np.array([0, 65535], dtype=np.uint16)),
        ("i32", np.array([[-(2**31), 2**31 - 1]], dtype=np.int32)),
        ("u32", np.array([2**32 - 1], dtype=np.uint32)),
        ("u64", np.array([2**64 - 1, 0], dtype=np.uint64)),
        ("big_endian_source", np.arange(6, dtype=">f4").reshape(3, 2)),
        ("empty", np.zeros((2, 0, 3), dtype=np.float32)),
    ]
    tensors = [(n, NUMPY_DTYPES[a.dtype.name], a.shape, le_bytes(a)) for n, a in arrays]
    meta = {"format": "np", "note": "ünïcödé ✓", "empty": ""}
    return write_safetensors(path, tensors, meta)


def torch_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret the bits
        return le_bytes(t.view(torch.int16).numpy())
    return le_bytes(t.numpy())


def torch_safetensors(path):
    torch.manual_seed(5)
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.float64: "F64", torch.int64: "I64", torch.int32: "I32", torch.int16: "I16",
             torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}
    tensors = [
        ("model.w", torch.randn(5, 3)),
        ("model.w_t", torch.randn(3, 4).t()),  # non-contiguous view, written contiguous
        ("model.bf16", torch.randn(2, 3, 4).to(torch.bfloat16)),
        ("model.f16", torch.randn(8).to(torch.float16)),
        ("model.f64", torch.randn(1, 1).to(torch.float64)),
        ("model.steps", torch.arange(12, dtype=torch.int64).reshape(3, 4)),
        ("model.i32", torch.tensor([-1, 2], dtype=torch.int32)),
        ("model.i16", torch.tensor([7], dtype=torch.int16)),
        ("model.i8", torch.tensor([-3, 3], dtype=torch.int8)),
        ("model.u8", torch.tensor([255, 0], dtype=torch.uint8)),
        ("model.keep", torch.tensor([True, True, False])),
    ]
    rows = [(n, names[t.dtype], tuple(t.shape), torch_bytes(t)) for n, t in tensors]
    return write_safetensors(path, rows, {"format": "pt"})


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_fixtures.py OUT_DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    files = {
        "numpy.safetensors": numpy_safetensors(os.path.join(out, "numpy.safetensors")),
        "empty.safetensors": write_safetensors(os.path.join(out, "empty.safetensors"), []),
        "v3.gguf": gguf_writer.fixture(os.path.join(out, "v3.gguf"), version=3, alignment=64),
        "v2.gguf": gguf_writer.fixture(os.path.join(out, "v2.gguf"), version=2, alignment=None),
    }
    if torch is not None:
        files["torch.safetensors"] = torch_safetensors(os.path.join(out, "torch.safetensors"))
    raw = bytes(range(256)) * 4
    with open(os.path.join(out, "weights.bin"), "wb") as f:
        f.write(raw)
    files["weights.bin"] = {"format": "raw", "metadata": {}, "tensors": []}
    with open(os.path.join(out, "expectations.json"), "w", encoding="utf-8") as f:
        json.dump({"torch": torch is not None, "files": files}, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
