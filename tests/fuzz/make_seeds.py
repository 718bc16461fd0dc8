#!/usr/bin/env python3
# File: tests/fuzz/make_seeds.py
#
# Regenerates the seed corpora in tests/fuzz/corpus/: safetensors and GGUF
# files from tests/format/make_fixtures.py, plus a few tiny hand-made ones;
# frame streams (first byte = chunk size - 1, then length-prefixed frames);
# message payloads (one JSON document per file). Run it after changing a
# format fixture; the output is committed.
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

REQUESTS = [
    {"op": "hello", "id": 1},
    {"op": "acquire", "id": "a", "model": "org/llama.gguf", "wait_ms": 500},
    {"op": "release", "handle": 7},
    {"op": "load", "model": "m.safetensors", "pin": True},
    {"op": "evict", "model": "m"}, {"op": "stats"}, {"op": "list", "id": [1, {"x": None}]},
    {"op": "acquire", "id": 12, "model": "org/m.safetensors"},
    {"op": "release", "id": 13, "handle": 7, "reply": False},
]
REPLIES = [
    {"id": 1, "ok": True, "proto": 1, "pool": "p", "segment_path": "/dev/shm/p",
     "segment_size": 1 << 30, "page_size": 4096},
    {"id": 2, "ok": True, "handle": 3, "model": "m", "offset": 2097152, "size": 10,
     "generation": 1, "checksum": "00000000deadbeef", "format": "gguf", "cached": False},
    {"id": 3, "ok": False, "error": {"code": "pool_full", "message": "no room"}},
    {"ok": False, "error": {"code": "no_such_code", "message": "?"}},
    {"id": 4, "ok": True, "handle": 5, "model": "org/repo", "offset": 2097152, "size": 24,
     "generation": 1, "checksum": "00000000deadbeef", "format": "safetensors", "cached": True,
     "files": [{"name": "model-00001-of-00002.safetensors", "offset": 2097152, "size": 24,
                "generation": 1, "checksum": "00000000deadbeef", "format": "safetensors",
                "weights": True},
               {"name": "config.json", "offset": 4194304, "size": 2, "generation": 1,
                "checksum": "0000000000000001", "format": "raw", "weights": False}],
     "commit": "0123456789abcdef0123456789abcdef01234567"},
    {"id": 5, "ok": True, "handle": 6, "model": "r", "offset": 0, "size": 1, "generation": 1,
     "checksum": "00000000000000ff", "format": "raw",
     "files": [{"name": "a", "offset": 0, "size": 1, "generation": 1, "checksum": "ff",
                "format": "raw"}, [1], None]},
]


def gguf_arrays():
    """Metadata arrays of numbers, bools and strings (built, or skipped when
    a parse wants no metadata) and one F32 tensor."""
    def s(text):
        return struct.pack("<Q", len(text)) + text

    kvs = [
        s(b"general.architecture") + struct.pack("<I", 8) + s(b"llama"),
        s(b"scores") + struct.pack("<IIQ", 9, 6, 4) + struct.pack("<4f", 0, 1, 2, 3),
        s(b"flags") + struct.pack("<IIQ", 9, 7, 3) + bytes([0, 1, 0]),
        s(b"tokens") + struct.pack("<IIQ", 9, 8, 2) + s(b"a") + s(b"bc"),
    ]
    tensor = s(b"w") + struct.pack("<IQIQ", 1, 4, 0, 0)
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, len(kvs)) + b"".join(kvs) + tensor
    head += bytes(-len(head) % 32)
    return head + bytes(16)


def write(sub, name, data):
    os.makedirs(os.path.join(CORPUS, sub), exist_ok=True)
    with open(os.path.join(CORPUS, sub, name), "wb") as f:
        f.write(data)


def frame(payload):
    return struct.pack("<I", len(payload)) + payload


def main():
    with tempfile.TemporaryDirectory() as tmp:
        fixtures = os.path.join(HERE, "..", "format", "make_fixtures.py")
        subprocess.run([sys.executable, "-B", fixtures, tmp], check=True)
        for f in os.listdir(tmp):
            sub = {".safetensors": "safetensors", ".gguf": "gguf"}.get(os.path.splitext(f)[1])
            if sub:
                os.makedirs(os.path.join(CORPUS, sub), exist_ok=True)
                shutil.copy(os.path.join(tmp, f), os.path.join(CORPUS, sub, f))
    write("safetensors", "tiny.safetensors", struct.pack("<Q", 2) + b"{}")
    hdr = b'{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}'
    write("safetensors", "one.safetensors", struct.pack("<Q", len(hdr)) + hdr + b"xy")
    write("gguf", "header_only.gguf", b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
    write("gguf", "arrays.gguf", gguf_arrays())
    payloads = [json.dumps(m).encode() for m in REQUESTS + REPLIES]
    for i, p in enumerate(payloads):
        write("messages", f"msg{i:02d}.json", p)
    write("frame", "one_by_one", bytes([0]) + b"".join(frame(p) for p in payloads[:3]))
    write("frame", "chunks_of_7", bytes([6]) + b"".join(frame(p) for p in payloads))
    write("frame", "too_big", bytes([255]) + struct.pack("<I", 65537) + b"{}")
    write("frame", "empty_frame", bytes([3]) + struct.pack("<I", 0))


if __name__ == "__main__":
    main()
