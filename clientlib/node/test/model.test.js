// File: clientlib/node/test/model.test.js
//
// Model against a real broker: bytes and tensors equal an independent read
// of the file, typed array classes per dtype, zero copy, frozen tensors,
// views that outlive release(), release on garbage collection.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');
const v8 = require('node:v8');
const vm = require('node:vm');

const { Client, ModelpoolError } = require('..');
const { Broker, poll } = require('./helpers/broker');
const { readSafetensors, writeSafetensors } = require('./helpers/safetensors');

const ALL = [
  ['t.f64', 'F64', [7]], ['t.f32', 'F32', [4, 6]], ['t.f16', 'F16', [3, 5]],
  ['t.bf16', 'BF16', [2, 3]], ['t.i64', 'I64', [2, 2]], ['t.i32', 'I32', [3, 3]],
  ['t.i16', 'I16', [5]], ['t.i8', 'I8', [2, 3, 4]], ['t.u64', 'U64', [4]], ['t.u32', 'U32', [4]],
  ['t.u16', 'U16', [4]], ['t.u8', 'U8', [9]], ['t.bool', 'BOOL', [2, 3]], ['t.c64', 'C64', [3]],
  ['t.scalar', 'F32', []], ['t.empty', 'F32', [0, 4]],  // empty last: it shares its offset
];
const CLASS = { F64: Float64Array, F32: Float32Array, I64: BigInt64Array, I32: Int32Array,
                I16: Int16Array, I8: Int8Array, U64: BigUint64Array, U32: Uint32Array,
                U16: Uint16Array, U8: Uint8Array };

// gc() without --expose-gc on the command line as well.
const gc = globalThis.gc || (v8.setFlagsFromString('--expose-gc'), vm.runInNewContext('gc'));

let dir;
let broker;
let client;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-node-models-'));
  writeSafetensors(path.join(dir, 'org', 'all.safetensors'), ALL,
                   { metadata: { format: 'pt', author: 'tests' } });
  // Unpadded header: the data starts at an offset no element size divides.
  writeSafetensors(path.join(dir, 'org', 'odd.safetensors'),
                   [['w', 'F32', [3, 4]], ['b', 'I64', [3]]], { pad: false });
  fs.writeFileSync(path.join(dir, 'raw.bin'), Buffer.alloc(64 * 1024, 7));
  for (const name of ['gc1.bin', 'gc2.bin', 'view.bin']) {
    fs.writeFileSync(path.join(dir, name), Buffer.alloc(1 << 20, 1));
  }
  broker = await Broker.start(dir);
  client = await Client.connect({ socket: broker.socket });
});

after(async () => {
  client?.close();
  await broker?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function assertSameBytes(view, buf) {
  assert.equal(view.byteLength, buf.length);
  assert.ok(Buffer.from(view.buffer, view.byteOffset, view.byteLength).equals(buf));
}

test('bytes and tensors equal an independent read of the file', async () => {
  for (const name of ['org/all.safetensors', 'org/odd.safetensors']) {
    const want = readSafetensors(path.join(dir, name));
    const m = await client.acquire(name);
    assert.equal(m.format, 'safetensors');
    assert.equal(m.size, want.bytes.length);
    assertSameBytes(m.bytes(), want.bytes);
    assert.deepEqual(m.tensorNames(), want.tensors.map((t) => t.name));
    for (const w of want.tensors) {
      const t = m.tensor(w.name);
      assert.equal(t.dtype, w.dtype);
      assert.deepEqual(t.shape, w.shape);
      assert.ok(t.data instanceof (CLASS[w.dtype] || Uint8Array), `${w.name}: ${t.data}`);
      assertSameBytes(t.data, w.bytes);
    }
    m.release();
  }
});

test('views are zero-copy: tensors share the one buffer of bytes() where aligned', async () => {
  const want = readSafetensors(path.join(dir, 'org/all.safetensors'));
  const start = want.bytes.length - want.tensors.reduce((n, t) => n + t.bytes.length, 0);
  const m = await client.acquire('org/all.safetensors');
  const all = m.bytes();
  let shared = 0;
  for (const w of want.tensors) {
    const t = m.tensor(w.name);
    const aligned = (start + w.begin) % t.data.BYTES_PER_ELEMENT === 0;
    // Aligned: a view of the model's one ArrayBuffer at the tensor's offset.
    // Not: an ArrayBuffer of its own over the same pages (typed arrays need
    // aligned offsets), equal bytes checked by the test above.
    assert.equal(t.data.buffer === all.buffer, aligned, w.name);
    if (aligned) assert.equal(t.data.byteOffset, start + w.begin, w.name);
    shared += aligned;
  }
  assert.ok(shared >= 4, `${shared} tensors shared the buffer`);
  assert.equal(m.bytes().buffer, all.buffer);
  m.release();
});

test('tensors are frozen; typed arrays cannot be', async () => {
  const m = await client.acquire('org/all.safetensors');
  const t = m.tensor('t.f32');
  assert.ok(Object.isFrozen(t) && Object.isFrozen(t.shape) && Object.isFrozen(m));
  assert.throws(() => Object.freeze(t.data), TypeError);
  assert.deepEqual(m.metadata(), { format: 'pt', author: 'tests' });
  m.release();
});

test('a view stays valid after release() and keeps the broker reference', async () => {
  const m = await client.acquire('view.bin');
  const view = m.bytes();
  m.release();
  assert.ok(m.released && m.held);
  assert.equal(await broker.refs('view.bin'), 1);
  assert.ok(view.every((b) => b === 1));
  assert.throws(() => m.bytes(), (e) => e instanceof ModelpoolError && e.code === 'stale_handle');
});

test('release() with no view gives the reference back at once', async () => {
  const m = await client.acquire('raw.bin');
  assert.equal(await broker.refs('raw.bin'), 1);
  m.release();
  m.release();  // idempotent
  assert.ok(!m.held);
  assert.equal(await poll(async () => (await broker.refs('raw.bin')) === 0), true);
});

test('garbage collection releases a dropped model and its views', async () => {
  const drop = async () => {
    const a = await client.acquire('gc1.bin');
    const b = await client.acquire('gc2.bin');
    assert.equal(a.bytes()[0], 1);  // a view, dropped with its model
    return [a.name, b.name];
  };
  const names = await drop();
  for (const n of names) assert.equal(await broker.refs(n), 1);
  const released = await poll(async () => {
    gc();
    await new Promise((r) => setImmediate(r));  // Node-API finalizers run after the GC
    const refs = await Promise.all(names.map((n) => broker.refs(n)));
    return refs.every((r) => r === 0);
  }, { tries: 200, ms: 20_000 });
  assert.equal(released, true);
});
