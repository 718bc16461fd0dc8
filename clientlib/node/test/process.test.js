// File: clientlib/node/test/process.test.js
//
// The binding across threads and processes: worker_threads Workers (the
// addon is context-aware; a Worker's exit releases what it held), a store
// into a view (the writer dies of SIGSEGV, the pool is intact), and a
// broker restart (the Client reconnects; old views stay readable).
'use strict';

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');
const { Worker } = require('node:worker_threads');

const { Client } = require('..');
const { Broker, poll } = require('./helpers/broker');
const { writeSafetensors } = require('./helpers/safetensors');

const MiB = 1 << 20;
let dir;
let broker;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-node-proc-'));
  const pattern = Buffer.alloc(4 * MiB);
  for (let i = 0; i < pattern.length; i += 4096) pattern[i] = (i / 4096) & 0xff;
  fs.writeFileSync(path.join(dir, 'w.bin'), pattern);
  writeSafetensors(path.join(dir, 't.safetensors'), [['x', 'F32', [1024]]]);
  for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(dir, `c${i}.bin`), Buffer.alloc(8 * MiB, i));
  broker = await Broker.start(dir);
});

after(async () => {
  await broker?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function runWorker(data) {
  return new Promise((resolve, reject) => {
    const w = new Worker(path.join(__dirname, 'fixtures', 'worker.js'), { workerData: data });
    let msg;
    w.on('message', (m) => { msg = m; });
    w.on('error', reject);
    w.on('exit', (code) => (code === 0 ? resolve(msg) : reject(new Error(`worker exit ${code}`))));
  });
}

test('worker_threads: each Worker uses its own Client; exit releases what it held', async () => {
  const file = fs.readFileSync(path.join(dir, 'w.bin'));
  let want = 0;
  for (let i = 0; i < file.length; i += 4096) want += file[i];
  const results = await Promise.all([
    runWorker({ socket: broker.socket, model: 'w.bin' }),
    runWorker({ socket: broker.socket, model: 'w.bin' }),
    runWorker({ socket: broker.socket, model: 'w.bin', keep: true }),
  ]);
  for (const r of results) {
    assert.equal(r.error, undefined, `${r.code}: ${r.error}`);
    assert.deepEqual([r.sum, r.length], [want, file.length]);
  }
  const zero = await poll(async () => (await broker.refs('w.bin')) === 0);
  assert.equal(zero, true, 'the Workers\' references were not all released');
});

// Rounds: the first loads cold, the others settle at once, so that some
// acquire settles while its Worker is being terminated. On Node 18 that
// aborted the process while the addon let a Napi::Error out of a callback.
test('Workers terminated while their acquires run neither crash nor leak a reference', async () => {
  const models = ['c0.bin', 'c1.bin', 'c2.bin', 'c3.bin'];
  for (let round = 0; round < 20; round++) {
    const w = new Worker(path.join(__dirname, 'fixtures', 'abandon.js'),
                         { workerData: { socket: broker.socket, models } });
    await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
    await w.terminate();
  }
  const zero = await poll(async () => {
    const refs = await Promise.all(models.map((m) => broker.refs(m)));
    return refs.every((r) => !r);  // 0, or never loaded
  });
  assert.equal(zero, true);
});

test('a store into a view kills the writer with SIGSEGV; the pool is intact', async () => {
  const c = await Client.connect({ socket: broker.socket });
  const before_ = Buffer.from(fs.readFileSync(path.join(dir, 't.safetensors')));
  for (const what of ['bytes', 'tensor']) {
    const r = spawnSync(process.execPath, [path.join(__dirname, 'fixtures', 'write.js'),
                                           broker.socket, 't.safetensors', what],
                        { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.signal, 'SIGSEGV', `${what}: status ${r.status}, ${r.stdout} ${r.stderr}`);
    assert.equal(r.stdout, 'writing\n');
  }
  const m = await c.acquire('t.safetensors');
  assert.ok(Buffer.from(m.bytes()).equals(before_));
  m.release();
  c.close();
});

test('a Client reconnects across a broker restart; old views stay readable', async () => {
  const own = await Broker.start(dir, { memory: '64MiB' });
  let restarted;
  try {
    const c = await Client.connect({ socket: own.socket, reconnectTimeoutMs: 30_000 });
    const m = await c.acquire('w.bin');
    const view = m.bytes();
    const handle = m.handle;
    await own.stop({ kill: true, keep: true });
    assert.equal(view[4096], 1);  // the mapping outlives the broker
    restarted = await Broker.start(dir, { memory: '64MiB', runDir: own.runDir, pool: own.pool });
    const m2 = await c.acquire('w.bin');
    assert.equal(m2.cached, true, 'the restarted broker re-adopts the resident model');
    assert.equal(m2.bytes()[8192], 2);
    assert.equal(view[4096], 1);
    // The restarted broker protects the old Model again: it was re-acquired.
    assert.equal(await restarted.refs('w.bin'), 2);
    assert.ok(m.handle > 0 && m2.handle > 0 && m.handle !== m2.handle, `${handle} ${m.handle}`);
    m.release();
    m2.release();
    c.close();
  } finally {
    await (restarted || own).stop();
  }
});
