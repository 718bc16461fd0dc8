// File: clientlib/node/test/errors.test.js
//
// Every failure is a ModelpoolError with the protocol's code: the broker's
// refusals, the client's own (unavailable, stale_handle), the pool's limits
// (pool_full, too_large), and file() of a name the model lacks.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');

const modelpool = require('..');
const { Client, ModelpoolError } = modelpool;
const { Broker } = require('./helpers/broker');

const MiB = 1 << 20;
let dir;
let broker;
let client;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-node-errors-'));
  for (const name of ['a.bin', 'b.bin']) fs.writeFileSync(path.join(dir, name), Buffer.alloc(10 * MiB, 3));
  fs.writeFileSync(path.join(dir, 'huge.bin'), Buffer.alloc(20 * MiB));
  const bad = Buffer.from('{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(bad.length));
  fs.writeFileSync(path.join(dir, 'broken.safetensors'), Buffer.concat([len, bad]));
  broker = await Broker.start(dir, { memory: '16MiB' });
  client = await Client.connect({ socket: broker.socket });
});

after(async () => {
  client?.close();
  await broker?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function code(c) {
  return (e) => {
    assert.ok(e instanceof ModelpoolError, `not a ModelpoolError: ${e}`);
    assert.ok(e instanceof Error);
    assert.equal(e.name, 'ModelpoolError');
    assert.equal(e.code, c, e.message);
    return true;
  };
}

test('the error codes are the C++ client\'s, plus not_supported', () => {
  for (const c of ['not_found', 'pool_full', 'too_large', 'invalid_name', 'stale_handle',
                   'unavailable', 'protocol_error', 'not_supported']) {
    assert.ok(modelpool.errorCodes.includes(c), c);
  }
});

test('the broker\'s refusals carry its code', async () => {
  await assert.rejects(client.acquire('missing.bin'), code('not_found'));
  await assert.rejects(client.acquire('../etc/passwd'), (e) => {
    assert.ok(['invalid_name', 'forbidden'].includes(e.code), e.code);
    return e instanceof ModelpoolError;
  });
  await assert.rejects(client.acquire('huge.bin'), code('too_large'));
});

test('a full pool is pool_full', async () => {
  const a = await client.acquire('a.bin');
  try {
    await assert.rejects(client.acquire('b.bin', { waitMs: 0 }), code('pool_full'));
  } finally {
    a.release();
  }
});

test('an invalid file is load_failed', async () => {
  let m;
  try {
    m = await client.acquire('broken.safetensors');
  } catch (e) {
    code('load_failed')(e);  // refused by the broker, or ...
    return;
  }
  assert.throws(() => m.tensorNames(), code('load_failed'));  // ... by the index parser
  m.release();
});

test('client-side errors: unavailable, stale_handle, not_found tensor', async () => {
  await assert.rejects(Client.connect({ socket: path.join(dir, 'nobody.sock') }), code('unavailable'));
  const m = await client.acquire('a.bin');
  assert.equal(m.format, 'raw');
  assert.deepEqual(m.tensorNames(), []);
  assert.throws(() => m.tensor('w'), code('not_found'));
  m.release();
  assert.throws(() => m.tensorNames(), code('stale_handle'));
  const c = await Client.connect({ socket: broker.socket });
  c.close();
  await assert.rejects(c.acquire('a.bin'), code('unavailable'));
});

test('files() of a model of one file; file() of a name it lacks is not_found', async () => {
  const m = await client.acquire('a.bin');
  assert.deepEqual(m.files(), [{ name: 'a.bin', size: 10 * MiB, format: 'raw', weights: true }]);
  assert.throws(() => m.file('tokenizer.json'), code('not_found'));
  assert.throws(() => m.file(1), TypeError);
  m.release();
  assert.throws(() => m.files(), code('stale_handle'));
  assert.throws(() => m.file('a.bin'), code('stale_handle'));
});

test('bad arguments are TypeErrors', async () => {
  await assert.rejects(client.acquire(42), TypeError);
  await assert.rejects(client.acquire('a.bin', { wait: 5 }), TypeError);
  await assert.rejects(client.acquire('a.bin', { waitMs: -1 }), RangeError);
  await assert.rejects(Client.connect({ socket: 5 }), TypeError);
});
