// File: clientlib/node/test/event_loop.test.js
//
// acquire() never blocks the event loop: while 8 models load (cold, so the
// broker spends a while filling fresh pages), a 5 ms interval keeps firing.
// The assertions are bounded in what they ask of a busy 2-core machine: the
// timer fires several times before the last acquire settles, and its worst
// lateness is a fraction of the time the acquires took (a blocked loop
// would make it all of it).
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');

const { Client } = require('..');
const { Broker } = require('./helpers/broker');

const MiB = 1 << 20;
const N = 8;
const SIZE = 16 * MiB;
const TICK_MS = 5;
let dir;
let broker;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-node-loop-'));
  for (let i = 0; i < N; i++) fs.writeFileSync(path.join(dir, `m${i}.bin`), Buffer.alloc(SIZE, i));
  broker = await Broker.start(dir, { memory: `${(N + 2) * 16}MiB` });
});

after(async () => {
  await broker?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test(`acquiring ${N} models at once does not block a timer`, async (t) => {
  const c = await Client.connect({ socket: broker.socket });
  let ticks = 0;
  let worst = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - TICK_MS);
    last = now;
    ticks++;
  }, TICK_MS);
  const t0 = performance.now();
  const pending = [];
  for (let i = 0; i < N; i++) pending.push(c.acquire(`m${i}.bin`));
  const callsMs = performance.now() - t0;
  let models;
  try {
    models = await Promise.all(pending);
  } finally {
    clearInterval(timer);
  }
  const totalMs = performance.now() - t0;
  t.diagnostic(`${N} acquires: calls ${callsMs.toFixed(1)} ms, settled after ${totalMs.toFixed(0)} ms, ` +
               `${ticks} ticks, worst lateness ${worst.toFixed(1)} ms`);
  assert.equal(models.length, N);
  for (let i = 0; i < N; i++) assert.equal(models[i].bytes()[SIZE - 1], i);
  assert.ok(models.every((m) => !m.cached), 'the loads were meant to be cold');
  assert.ok(ticks >= 3, `the timer fired ${ticks} times in ${totalMs.toFixed(0)} ms`);
  assert.ok(worst < Math.max(totalMs / 2, 50),
            `worst lateness ${worst.toFixed(1)} ms of ${totalMs.toFixed(0)} ms`);
  assert.ok(callsMs < totalMs / 2 || callsMs < 20, `the calls took ${callsMs.toFixed(1)} ms`);
  for (const m of models) m.release();
  c.close();
});
