// File: clientlib/node/test/helpers/gguf.js
//
// Writes GGUF v3 files for the tests, as llama.cpp's gguf-split lays out a
// split set (PREFIX-0000N-of-0000M.gguf; split.no from 0, split.count and
// split.tensors.count in every part; the model's metadata in the first
// part), and reads any GGUF file back independently of the binding
// (fs.readFileSync and the header, per ggml's docs/gguf.md), so a test can
// compare what the pool serves with what is on disk.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const ALIGNMENT = 32;  // general.alignment's default; the writer leaves it out
// gguf_metadata_value_type
const V = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STR: 8, ARR: 9,
            U64: 10, I64: 11, F64: 12 };
const SCALAR = { [V.U8]: 1, [V.I8]: 1, [V.U16]: 2, [V.I16]: 2, [V.U32]: 4, [V.I32]: 4,
                 [V.F32]: 4, [V.BOOL]: 1, [V.U64]: 8, [V.I64]: 8, [V.F64]: 8 };
// A few ggml types: name -> [id, elements per block, bytes per block].
const GGML = { F32: [0, 1, 4], F16: [1, 1, 2], Q8_0: [8, 32, 34], I8: [24, 1, 1],
               I16: [25, 1, 2], I32: [26, 1, 4] };
const GGML_NAME = Object.fromEntries(Object.entries(GGML).map(([n, [id]]) => [id, n]));

const alignUp = (n, a) => Math.ceil(n / a) * a;

function str(s) {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(b.length));
  return Buffer.concat([len, b]);
}

function u32(v) { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; }
function u64(v) { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; }

// [key, type, value] with a string or a scalar of up to 32 bits.
function kv([key, type, value]) {
  let v;
  if (type === V.STR) {
    v = str(value);
  } else {
    v = Buffer.alloc(SCALAR[type]);
    const write = { [V.U16]: 'writeUInt16LE', [V.I32]: 'writeInt32LE', [V.U32]: 'writeUInt32LE' };
    v[write[type]](value);
  }
  return Buffer.concat([str(key), u32(type), v]);
}

function tensorBytes([, dtype, ne]) {
  const [, block, size] = GGML[dtype];
  return ne.reduce((a, b) => a * b, 1) / block * size;
}

// One GGUF v3 file: kvs [[key, type, value]], tensors [[name, dtype, ne]]
// (ne innermost first, as GGUF stores it), their bytes a fixed pattern of
// the tensor's position `k0 + k` in the set, each padded to the alignment.
function writeGguf(file, kvs, tensors, k0 = 0) {
  const infos = [];
  const data = [];
  let offset = 0;
  tensors.forEach((t, k) => {
    const [name, dtype, ne] = t;
    infos.push(Buffer.concat([str(name), u32(ne.length), ...ne.map(u64), u32(GGML[dtype][0]),
                              u64(offset)]));
    const n = tensorBytes(t);
    const blob = Buffer.alloc(alignUp(n, ALIGNMENT));
    for (let i = 0; i < n; i++) blob[i] = (i * 13 + (k0 + k) * 41 + 5) & 0xff;
    data.push(blob);
    offset += blob.length;
  });
  const head = Buffer.concat([Buffer.from('GGUF'), u32(3), u64(tensors.length), u64(kvs.length),
                              ...kvs.map(kv), ...infos]);
  const pad = Buffer.alloc(alignUp(head.length, ALIGNMENT) - head.length);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.concat([head, pad, ...data]));
}

// PREFIX-0000N-of-0000M.gguf for each of `parts` ([[name, dtype, ne]] each);
// `metadata` ([[key, type, value]]) goes to the first part. Returns the
// parts' paths.
function writeGgufSplit(prefix, parts, metadata = []) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const pad5 = (n) => String(n).padStart(5, '0');
  let k0 = 0;
  return parts.map((tensors, no) => {
    const file = `${prefix}-${pad5(no + 1)}-of-${pad5(parts.length)}.gguf`;
    const split = [['split.no', V.U16, no], ['split.count', V.U16, parts.length],
                   ['split.tensors.count', V.I32, total]];
    writeGguf(file, no === 0 ? [...metadata, ...split] : split, tensors, k0);
    k0 += tensors.length;
    return file;
  });
}

// {bytes, metadata, tensors: [{name, dtype, ne, offset, bytes}] in the
// order of the header}; offset from the start of the file. Metadata values
// of scalars and strings only (arrays are skipped).
function readGguf(file) {
  const bytes = fs.readFileSync(file);
  let at = 0;
  const take = (n) => { const b = bytes.subarray(at, at + n); at += n; return b; };
  const readU32 = () => take(4).readUInt32LE(0);
  const readU64 = () => Number(take(8).readBigUInt64LE(0));
  const readStr = () => take(readU64()).toString('utf8');
  const readValue = (type) => {
    if (type === V.STR) return readStr();
    if (type === V.ARR) {
      const [etype, n] = [readU32(), readU64()];
      for (let i = 0; i < n; i++) readValue(etype);
      return undefined;
    }
    const b = take(SCALAR[type]);
    const read = { [V.U8]: 'readUInt8', [V.I8]: 'readInt8', [V.U16]: 'readUInt16LE',
                   [V.I16]: 'readInt16LE', [V.U32]: 'readUInt32LE', [V.I32]: 'readInt32LE',
                   [V.F32]: 'readFloatLE', [V.BOOL]: 'readUInt8', [V.U64]: 'readBigUInt64LE',
                   [V.I64]: 'readBigInt64LE', [V.F64]: 'readDoubleLE' };
    return b[read[type]](0);
  };
  if (take(4).toString('latin1') !== 'GGUF') throw new Error(`${file}: not a GGUF file`);
  readU32();  // version
  const [nTensors, nKvs] = [readU64(), readU64()];
  const metadata = {};
  for (let i = 0; i < nKvs; i++) {
    const key = readStr();
    metadata[key] = readValue(readU32());
  }
  const infos = [];
  for (let i = 0; i < nTensors; i++) {
    const name = readStr();
    const ne = Array.from({ length: readU32() }, readU64);
    const dtype = GGML_NAME[readU32()];
    infos.push({ name, dtype, ne, rel: readU64() });
  }
  const start = alignUp(at, metadata['general.alignment'] || ALIGNMENT);
  const tensors = infos.map(({ name, dtype, ne, rel }) => {
    const n = tensorBytes([name, dtype, ne]);
    return { name, dtype, ne, offset: start + rel,
             bytes: bytes.subarray(start + rel, start + rel + n) };
  });
  return { bytes, metadata, tensors };
}

module.exports = { V, writeGgufSplit, readGguf };
