// File: bench/node/hold_worker.js
//
// A Node worker process for node_memory.py: connects, acquires MODEL, reads
// one byte of every page of bytes() and of every tensor's data, prints one
// JSON line with its own RssAnon/RssShmem before and after, then holds the
// model until stdin closes.
//   node hold_worker.js SOCKET MODEL
'use strict';

const fs = require('node:fs');
const { Client } = require('../../clientlib/node');

function status() {
  const out = {};
  for (const line of fs.readFileSync('/proc/self/status', 'utf8').split('\n')) {
    const m = /^(RssAnon|RssShmem|RssFile):\s+(\d+) kB/.exec(line);
    if (m) out[m[1]] = Number(m[2]) * 1024;
  }
  return out;
}

(async () => {
  const [socket, model] = process.argv.slice(2);
  const c = await Client.connect({ socket });
  const before = status();
  const m = await c.acquire(model);
  const bytes = m.bytes();
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 4096) sum += bytes[i];
  for (const name of m.tensorNames()) {
    const data = new Uint8Array(m.tensor(name).data.buffer);  // one view: all pages again
    sum += data[0];
  }
  const after = status();
  console.log(JSON.stringify({ ready: true, size: m.size, cached: m.cached, sum, before, after }));
  process.stdin.resume();
  process.stdin.on('end', () => { m.release(); c.close(); });
})().catch((e) => {
  console.error(`hold_worker: ${e.code || ''} ${e.message}`);
  process.exit(1);
});
