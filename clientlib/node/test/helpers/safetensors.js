// File: clientlib/node/test/helpers/safetensors.js
//
// Writes safetensors files for the tests, and reads them back independently
// of the binding (fs.readFileSync and the JSON header), so a test can compare
// what the pool serves with what is on disk.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const ITEM = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1,
               U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1, C64: 8 };

// tensors: [[name, dtype, shape]]; the bytes are a fixed pattern per tensor
// and `seed` (files written with different seeds differ).
// `pad`: pad the header to a multiple of 8 (as the reference writer does);
// without it the data may start at an odd offset.
function writeSafetensors(file, tensors, { metadata, pad = true, seed = 0 } = {}) {
  const header = {};
  const blobs = [];
  let offset = 0;
  tensors.forEach(([name, dtype, shape], k) => {
    const n = shape.reduce((a, b) => a * b, 1) * ITEM[dtype];
    const blob = Buffer.alloc(n);
    for (let i = 0; i < n; i++) blob[i] = (i * 31 + k * 7 + seed * 101 + 3) & 0xff;
    header[name] = { dtype, shape, data_offsets: [offset, offset + n] };
    blobs.push(blob);
    offset += n;
  });
  if (metadata) header.__metadata__ = metadata;
  let json = JSON.stringify(header);
  if (pad) json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(json), ...blobs]));
}

// {bytes, tensors: [{name, dtype, shape, bytes}] in file (offset) order, metadata}.
function readSafetensors(file) {
  const bytes = fs.readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  const start = 8 + n;
  const tensors = Object.entries(header)
    .filter(([name]) => name !== '__metadata__')
    .map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, begin: t.data_offsets[0],
                           bytes: bytes.subarray(start + t.data_offsets[0],
                                                 start + t.data_offsets[1]) }))
    .sort((a, b) => a.begin - b.begin);
  return { bytes, tensors, metadata: header.__metadata__ || {} };
}

module.exports = { writeSafetensors, readSafetensors };
