# File: tests/format/gguf_writer.py
#
# A minimal GGUF v2/v3 writer following docs/gguf.md of ggml (u64 string
# lengths and array counts, ne[] as u64, tensor offsets relative to the data
# section, each tensor padded to general.alignment), and `fixture`, the GGUF
# test file of make_fixtures.py: metadata of every value type including
# nested arrays, tensors of plain and block-quantised ggml types.
import math
import struct

import numpy as np

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
PACK = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
        BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}

# name: (ggml type id, block size, bytes per block)
GGML = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q8_0": (8, 32, 34),
        "Q4_K": (12, 256, 144), "I8": (24, 1, 1), "I16": (25, 1, 2), "I32": (26, 1, 4),
        "I64": (27, 1, 8), "F64": (28, 1, 8), "BF16": (30, 1, 2)}


def pack_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def pack_value(vtype, v):
    if vtype == STR:
        return pack_string(v)
    if vtype == ARR:
        etype, items = v
        return struct.pack("<IQ", etype, len(items)) + b"".join(pack_value(etype, x) for x in items)
    return struct.pack(PACK[vtype], v)


def json_value(vtype, v):
    """The value as the reader's JSON metadata must show it."""
    if vtype == F32:
        return float(np.float32(v))
    if vtype == ARR:
        return [json_value(v[0], x) for x in v[1]]
    return v


def align_up(n, a):
    return (n + a - 1) // a * a


def write_gguf(path, version, alignment, kvs, tensors, infos_reversed=False):
    """kvs: [(key, type, value)]; tensors: [(name, dtype, ne, bytes)] in data order.
    Returns the expectations of the file (tensors in data order)."""
    align = alignment or 32
    if alignment is not None:
        kvs = [("general.alignment", U32, alignment)] + kvs
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    head += b"".join(pack_string(k) + struct.pack("<I", t) + pack_value(t, v) for k, t, v in kvs)
    infos, data, rel_offsets = [], b"", []
    for name, dtype, ne, payload in tensors:
        tid, block, tsize = GGML[dtype]
        assert ne[0] % block == 0 and len(payload) == ne[0] // block * tsize * math.prod(ne[1:])
        rel_offsets.append(len(data))
        infos.append(pack_string(name) + struct.pack("<I", len(ne)) +
                     struct.pack(f"<{len(ne)}Q", *ne) + struct.pack("<IQ", tid, len(data)))
        data += payload + b"\0" * (align_up(len(payload), align) - len(payload))
    head += b"".join(reversed(infos) if infos_reversed else infos)
    data_start = align_up(len(head), align)
    with open(path, "wb") as f:
        f.write(head + b"\0" * (data_start - len(head)) + data)
    exp = [{"name": n, "dtype": d, "shape": list(ne), "offset": data_start + off,
            "size": len(p), "hex": p.hex()} for (n, d, ne, p), off in zip(tensors, rel_offsets)]
    return {"format": "gguf", "metadata": {k: json_value(t, v) for k, t, v in kvs}, "tensors": exp}


def metadata():
    tokens = [f"tok{i}" for i in range(40)] + ["<s>", "</s>", "▁the", "ü"]
    return [
        ("general.architecture", STR, "llama"),
        ("general.name", STR, "fixture ünïcödé ✓"),
        ("test.u8", U8, 200), ("test.i8", I8, -100),
        ("test.u16", U16, 60000), ("test.i16", I16, -30000),
        ("test.u32", U32, 4000000000), ("test.i32", I32, -2000000000),
        ("test.u64", U64, 2**64 - 1), ("test.i64", I64, -(2**63)),
        ("test.f32", F32, -1.25), ("test.f64", F64, math.pi),
        ("test.true", BOOL, True), ("test.false", BOOL, False),
        ("test.empty_string", STR, ""),
        ("test.array.u8", ARR, (U8, [1, 2, 255])),
        ("test.array.f32", ARR, (F32, [0.5, -2.0, 0.1])),
        ("test.array.bool", ARR, (BOOL, [True, False])),
        ("test.array.i64", ARR, (I64, [-1, 2**62])),
        ("test.array.empty", ARR, (U32, [])),
        ("test.array.nested", ARR, (ARR, [(I32, [1, -2]), (I32, []), (I32, [3])])),
        ("test.array.nested_str", ARR, (ARR, [(STR, ["x"]), (STR, ["y", "zz"])])),
        ("test.array.deep", ARR, (ARR, [(ARR, [(ARR, [(U16, [7])])])])),
        ("tokenizer.ggml.tokens", ARR, (STR, tokens)),
        ("tokenizer.ggml.scores", ARR, (F32, [float(-i) for i in range(len(tokens))])),
    ]


def quant_blocks(rng):
    """Hand-built Q8_0 (f16 d, 32 x i8), Q4_0 (f16 d, 16 nibble bytes) and Q4_K
    (f16 d, f16 dmin, 12 scale bytes, 128 nibble bytes) blocks."""
    q8 = b"".join(np.float16(0.01 * (i + 1)).tobytes() +
                  rng.integers(-128, 128, 32, dtype=np.int8).tobytes() for i in range(6))
    q4 = b"".join(np.float16(0.5).tobytes() + rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
                  for _ in range(2))
    q4k = b"".join(np.array([0.25, 0.125], dtype="<f2").tobytes() +
                   rng.integers(0, 64, 12, dtype=np.uint8).tobytes() +
                   rng.integers(0, 256, 128, dtype=np.uint8).tobytes() for _ in range(2))
    return q8, q4, q4k


def fixture(path, version, alignment):
    rng = np.random.default_rng(version)
    f32 = rng.standard_normal((4, 8)).astype("<f4")
    bf16 = (rng.standard_normal(16).astype("<f4").view("<u4") >> 16).astype("<u2")
    q8, q4, q4k = quant_blocks(rng)
    tensors = [  # ne[] is numpy's shape reversed
        ("token_embd.weight", "F32", [8, 4], f32.tobytes()),
        ("blk.0.attn_norm.weight", "F16", [8], rng.standard_normal(8).astype("<f2").tobytes()),
        ("blk.0.ffn_up.weight", "Q8_0", [64, 3], q8),
        ("blk.0.ffn_gate.weight", "Q4_0", [32, 2], q4),
        ("blk.0.ffn_down.weight", "Q4_K", [256, 2], q4k),
        ("blk.0.bf16", "BF16", [4, 4], bf16.tobytes()),
        ("blk.0.4d", "F32", [2, 2, 3, 2], rng.standard_normal(24).astype("<f4").tobytes()),
        ("ints.i8", "I8", [3], np.array([-1, 0, 1], dtype="i1").tobytes()),
        ("ints.i16", "I16", [2], np.array([-300, 300], dtype="<i2").tobytes()),
        ("ints.i32", "I32", [2, 1], np.array([-7, 7], dtype="<i4").tobytes()),
        ("ints.i64", "I64", [1], np.array([-(2**40)], dtype="<i8").tobytes()),
        ("f64", "F64", [2], np.array([math.e, -0.0], dtype="<f8").tobytes()),
        ("empty", "F32", [0, 4], b""),
    ]
    return write_gguf(path, version, alignment, metadata(), tensors,
                      infos_reversed=(version == 2))
