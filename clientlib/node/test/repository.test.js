// File: clientlib/node/test/repository.test.js
//
// Models of several files against a real broker: a sharded safetensors
// repository below --models (two shards, an index that lists the second
// shard's tensors first, config.json and tokenizer.json) and a snapshot of a
// Hugging Face cache. files() in the model's order, file() bytes and tensors
// equal to an independent read of each file on disk, zero copy, not_found for
// a file the model lacks, views that outlive release().
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

const SHARD1 = 'model-00001-of-00002.safetensors';
const SHARD2 = 'model-00002-of-00002.safetensors';
const CONFIG = '{"model_type": "test", "hidden_size": 16}';
const COMMIT = 'c0ffee0000000000000000000000000000000001';

// gc() without --expose-gc on the command line as well.
const gc = globalThis.gc || (v8.setFlagsFromString('--expose-gc'), vm.runInNewContext('gc'));

let dir;    // --models
let cache;  // --hf-cache
let broker;
let client;

// A repository in `repo`: shard 1 with a padded header; shard 2 without, so
// that some of its tensors start at an offset their element size does not
// divide. Each shard's bytes differ from the other's (`seed`).
function writeRepository(repo) {
  writeSafetensors(path.join(repo, SHARD1),
                   [['embed.weight', 'F32', [8, 4]], ['l0.weight', 'I16', [4, 4]]], { seed: 1 });
  writeSafetensors(path.join(repo, SHARD2),
                   [['l1.weight', 'F32', [4, 4]], ['head.weight', 'I64', [3]]],
                   { seed: 2, pad: false });
  // The index lists shard 2's tensors first: the model's order is the index's.
  const weightMap = { 'l1.weight': SHARD2, 'head.weight': SHARD2,
                      'embed.weight': SHARD1, 'l0.weight': SHARD1 };
  fs.writeFileSync(path.join(repo, 'model.safetensors.index.json'),
                   JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  fs.writeFileSync(path.join(repo, 'config.json'), CONFIG);
  fs.writeFileSync(path.join(repo, 'tokenizer.json'), '{"version": "1.0"}');
}

// huggingface_hub's layout: models--ORG--NAME/{blobs/ID, snapshots/COMMIT/FILE
// -> ../../blobs/ID, refs/main}.
function writeHfCache(root) {
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-node-hf-staging-'));
  writeRepository(staging);
  const repo = path.join(root, 'models--org--m');
  const snapshot = path.join(repo, 'snapshots', COMMIT);
  fs.mkdirSync(path.join(repo, 'blobs'), { recursive: true });
  fs.mkdirSync(snapshot, { recursive: true });
  fs.readdirSync(staging).forEach((file, i) => {
    fs.renameSync(path.join(staging, file), path.join(repo, 'blobs', `blob${i}`));
    fs.symlinkSync(`../../blobs/blob${i}`, path.join(snapshot, file));
  });
  fs.rmdirSync(staging);
  fs.mkdirSync(path.join(repo, 'refs'));
  fs.writeFileSync(path.join(repo, 'refs', 'main'), COMMIT);
  return snapshot;
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-node-repo-'));
  cache = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-node-hf-'));
  writeRepository(path.join(dir, 'org', 'm'));
  fs.writeFileSync(path.join(dir, 'org', 'm', 'pytorch_model.bin'), 'pickled; never loaded');
  writeHfCache(cache);
  broker = await Broker.start(dir, { args: ['--hf-cache', cache] });
  client = await Client.connect({ socket: broker.socket });
});

after(async () => {
  client?.close();
  await broker?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(cache, { recursive: true, force: true });
});

function assertSameBytes(view, buf, what) {
  assert.equal(view.byteLength, buf.length, what);
  assert.ok(Buffer.from(view.buffer, view.byteOffset, view.byteLength).equals(buf), what);
}

const notFound = (e) => e instanceof ModelpoolError && e.code === 'not_found';

// Checks model `m`, whose files are those of `files` (a directory on disk).
function checkRepository(m, files) {
  assert.equal(m.format, 'safetensors');
  assert.deepEqual(m.files().map((f) => [f.name, f.weights, f.format]), [
    [SHARD2, true, 'safetensors'], [SHARD1, true, 'safetensors'],
    ['config.json', false, 'raw'], ['model.safetensors.index.json', false, 'raw'],
    ['tokenizer.json', false, 'raw'],
  ]);
  for (const f of m.files()) {
    const want = fs.readFileSync(path.join(files, f.name));
    assert.equal(f.size, want.length, f.name);
    assertSameBytes(m.file(f.name), want, f.name);
  }
  assert.equal(Buffer.from(m.file('config.json')).toString(), CONFIG);

  // Tensors span both shards in index order; each equals its shard's bytes.
  assert.deepEqual(m.tensorNames(), ['l1.weight', 'head.weight', 'embed.weight', 'l0.weight']);
  let unaligned = 0;
  for (const shard of [SHARD1, SHARD2]) {
    const want = readSafetensors(path.join(files, shard));
    const start = want.bytes.length - want.tensors.reduce((n, t) => n + t.bytes.length, 0);
    const file = m.file(shard);
    for (const w of want.tensors) {
      const t = m.tensor(w.name);
      assert.equal(t.dtype, w.dtype, w.name);
      assert.deepEqual(t.shape, w.shape, w.name);
      assertSameBytes(t.data, w.bytes, w.name);
      // Zero copy: aligned, a view of its file's one buffer; else a buffer
      // of its own over the same pages.
      const aligned = (start + w.begin) % t.data.BYTES_PER_ELEMENT === 0;
      assert.equal(t.data.buffer === file.buffer, aligned, w.name);
      unaligned += !aligned;
    }
  }
  assert.ok(unaligned > 0, 'no tensor at an unaligned offset: the slice path went untested');
  // bytes() is the first weights file's, the same buffer as its file().
  assert.equal(m.size, m.files()[0].size);
  assert.equal(m.bytes().buffer, m.file(SHARD2).buffer);
}

test('a repository: files in order, file() and tensors equal the files on disk', async () => {
  const m = await client.acquire('org/m');
  assert.equal(m.commit, '');
  checkRepository(m, path.join(dir, 'org', 'm'));
  m.release();
});

test('files() is frozen; a file the model lacks is not_found', async () => {
  const m = await client.acquire('org/m');
  assert.ok(Object.isFrozen(m.files()) && m.files().every((f) => Object.isFrozen(f)));
  assert.equal(m.files(), m.files());
  assert.throws(() => m.file('pytorch_model.bin'), notFound);  // present, never served
  assert.throws(() => m.file('missing.json'), notFound);
  assert.throws(() => m.file(''), notFound);
  assert.throws(() => m.file(0), TypeError);
  assert.throws(() => m.tensor('missing.weight'), notFound);
  m.release();
});

// Collects garbage until the broker holds no reference on `name`; true then.
function collected(name) {
  return poll(async () => {
    gc();
    await new Promise((r) => setImmediate(r));  // Node-API finalizers run after the GC
    return (await broker.refs(name)) === 0;
  }, { tries: 200, ms: 20_000 });
}

test('a file view outlives release() and holds the repository until collected', async () => {
  assert.equal(await collected('org/m'), true);  // the views of the tests before
  const keep = async () => {
    const m = await client.acquire('org/m');
    const config = m.file('config.json');
    m.release();
    assert.ok(m.released && m.held);
    assert.throws(() => m.file('config.json'), (e) => e.code === 'stale_handle');
    assert.throws(() => m.files(), (e) => e.code === 'stale_handle');
    return config;
  };
  let config = await keep();
  assert.equal(await broker.refs('org/m'), 1);
  assert.equal(Buffer.from(config).toString(), CONFIG);
  config = null;
  assert.equal(await collected('org/m'), true);
});

test('an hf: snapshot: its commit, its files and tensors', async () => {
  const m = await client.acquire('hf:org/m');
  assert.equal(m.commit, COMMIT);
  checkRepository(m, path.join(cache, 'models--org--m', 'snapshots', COMMIT));
  m.release();
});
