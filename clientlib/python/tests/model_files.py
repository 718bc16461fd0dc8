"""Writers of small safetensors and GGUF files for the tests (no safetensors or
gguf package here): the published layouts, written by hand."""

import json
import struct

import numpy as np

# numpy dtype -> safetensors dtype (BF16 is given explicitly, as uint16 bits).
ST_DTYPES = {
    np.dtype(np.bool_): "BOOL", np.dtype(np.uint8): "U8", np.dtype(np.int8): "I8",
    np.dtype(np.int16): "I16", np.dtype(np.uint16): "U16", np.dtype(np.float16): "F16",
    np.dtype(np.int32): "I32", np.dtype(np.uint32): "U32", np.dtype(np.float32): "F32",
    np.dtype(np.float64): "F64", np.dtype(np.int64): "I64", np.dtype(np.uint64): "U64",
    np.dtype(np.complex64): "C64", np.dtype(np.complex128): "C128",
}


def write_safetensors(path, tensors, metadata=None, align=64):
    """tensors: {name: ndarray or (dtype, ndarray)}; the data section starts at
    a multiple of `align` (the header is padded with spaces, as the format allows)."""
    header, chunks, offset = {}, [], 0
    for name, value in tensors.items():
        dtype, arr = value if isinstance(value, tuple) else (ST_DTYPES[value.dtype], value)
        data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((-(8 + len(text))) % align)
    blob = struct.pack("<Q", len(text)) + text + b"".join(chunks)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return blob


GGML_F32, GGML_F16, GGML_Q8_0, GGML_I32, GGML_BF16 = 0, 1, 8, 26, 30
_GGUF_STRING, _GGUF_UINT32 = 8, 4


def _gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def write_gguf(path, tensors, kv=None, alignment=32):
    """tensors: [(name, ggml_type, ne (ne[0] innermost), data bytes)];
    kv: {key: str}. GGUF version 3."""
    kv = kv or {}
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)))
    for key, value in kv.items():
        out += _gguf_str(key) + struct.pack("<I", _GGUF_STRING) + _gguf_str(value)
    offset, data = 0, bytearray()
    for name, ggml_type, ne, blob in tensors:
        data += b"\0" * ((-len(data)) % alignment)
        offset = len(data)
        out += _gguf_str(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
        out += struct.pack("<IQ", ggml_type, offset)
        data += blob
    out += b"\0" * ((-len(out)) % alignment)
    blob = bytes(out + data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return blob
