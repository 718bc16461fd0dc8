// File: clientlib/node/test/gguf_split.test.js
//
// A GGUF split set (llama.cpp's gguf-split layout, three parts) against a
// real broker, acquired by its first part's name as one Model: files() lists
// the parts in order, the tensors span them in file order, and each tensor's
// dtype, shape and bytes equal an independent read of its part on disk, as a
// view of that part's one buffer over the pool (zero copy).
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');

const { Client } = require('..');
const { Broker } = require('./helpers/broker');
const { V, readGguf, writeGgufSplit } = require('./helpers/gguf');

// [[name, dtype, ne]] per part; ne innermost first, as GGUF stores it.
const PARTS = [
  [['token_embd.weight', 'F32', [8, 4]], ['blk.0.attn_norm.weight', 'F32', [8]]],
  [['blk.0.ffn_up.weight', 'Q8_0', [64, 2]], ['blk.0.ffn_gate.weight', 'I16', [8, 3]],
   ['blk.0.ffn_down.weight', 'F16', [8, 2]]],
  [['output.weight', 'F32', [8, 2, 2]]],
];
const CLASS = { F32: Float32Array, I16: Int16Array };

let dir;
let parts;  // the parts' paths
let broker;
let client;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-node-split-'));
  parts = writeGgufSplit(path.join(dir, 'org', 'tiny'), PARTS,
                         [['general.architecture', V.STR, 'llama'],
                          ['general.name', V.STR, 'tiny split']]);
  broker = await Broker.start(dir);
  client = await Client.connect({ socket: broker.socket });
});

after(async () => {
  client?.close();
  await broker?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function assertSameBytes(view, buf, what) {
  assert.equal(view.byteLength, buf.length, what);
  assert.ok(Buffer.from(view.buffer, view.byteOffset, view.byteLength).equals(buf), what);
}

test('a split set is one model whose tensors span its parts, zero-copy', async () => {
  const m = await client.acquire('org/tiny-00001-of-00003.gguf');
  assert.equal(m.format, 'gguf');
  const names = parts.map((p) => path.basename(p));
  assert.deepEqual(names, ['tiny-00001-of-00003.gguf', 'tiny-00002-of-00003.gguf',
                           'tiny-00003-of-00003.gguf']);
  // The parts, in order, all weights; no other file.
  assert.deepEqual(m.files(), parts.map((p) => ({ name: path.basename(p),
                                                  size: fs.statSync(p).size, format: 'gguf',
                                                  weights: true })));
  const want = parts.map(readGguf);
  assert.deepEqual(m.tensorNames(), want.flatMap((w) => w.tensors.map((t) => t.name)));
  assert.deepEqual(m.tensorNames(), PARTS.flat().map(([name]) => name));

  want.forEach((w, i) => {
    const file = m.file(names[i]);
    assertSameBytes(file, w.bytes, names[i]);
    for (const t of w.tensors) {
      const got = m.tensor(t.name);
      assert.equal(got.dtype, t.dtype, t.name);
      assert.deepEqual(got.shape, [...t.ne].reverse(), t.name);  // row-major
      assert.ok(got.data instanceof (CLASS[t.dtype] || Uint8Array), `${t.name}: ${got.data}`);
      assertSameBytes(got.data, t.bytes, t.name);
      // Zero copy: a view of its own part's one buffer, at its offset there.
      assert.equal(got.data.buffer, file.buffer, t.name);
      assert.equal(got.data.byteOffset, t.offset, t.name);
    }
  });

  // bytes(), size and metadata() are the first part's.
  assert.equal(m.size, m.files()[0].size);
  assert.equal(m.bytes().buffer, m.file(names[0]).buffer);
  assert.deepEqual(m.metadata(), want[0].metadata);
  assert.equal(m.metadata()['general.name'], 'tiny split');
  assert.deepEqual([m.metadata()['split.no'], m.metadata()['split.count']], [0, 3]);
  m.release();
});
