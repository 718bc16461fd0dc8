// File: clientlib/node/test/helpers/broker.js
//
// A real modelpoold for the tests: a scratch run dir and a unique pool name,
// started and awaited through its ready line, stopped with SIGTERM and its
// segment removed; admin requests over its admin socket (4-byte
// little-endian length, then JSON). Bounded in time everywhere.
//
// Environment (set by ctest, clientlib/node/CMakeLists.txt):
//   MODELPOOL_TEST_BROKER   path of the modelpoold binary
'use strict';

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const START_TIMEOUT_MS = 60_000;
// util-linux's setpriv starts the broker with a parent-death signal, so that
// a test file that crashes leaves no broker behind (one would hold the test
// runner's stderr open, and the runner would wait for it for ever).
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));

function brokerBinary() {
  const bin = process.env.MODELPOOL_TEST_BROKER || '';
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(`MODELPOOL_TEST_BROKER=${JSON.stringify(bin)} is not an executable modelpoold`);
  }
  return bin;
}

// Resolves with the first line of `stream`; rejects on EOF or after `ms`.
function firstLine(stream, ms) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const done = (err, line) => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      if (err) reject(err); else resolve(line);
    };
    const onData = (chunk) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl >= 0) done(null, buf.slice(0, nl));
    };
    const onEnd = () => done(new Error(`modelpoold exited before it was ready: ${buf}`));
    const timer = setTimeout(() => done(new Error('modelpoold not ready in time')), ms);
    stream.setEncoding('utf8');
    stream.on('data', onData);
    stream.on('end', onEnd);
  });
}

class Broker {
  // modelpoold --models DIR --name <unique> --run-dir <scratch> --memory M,
  // then `args`. `runDir`/`pool` given: restart a broker on the same pool.
  static async start(modelsDir, { memory = '1GiB', runDir, pool, args = [] } = {}) {
    const b = new Broker();
    b.modelsDir = modelsDir;
    b.pool = pool || `mpnode-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
    b.runDir = runDir || fs.mkdtempSync(path.join(os.tmpdir(), 'mp-run-node-'));
    b.memory = memory;
    const argv = [brokerBinary(), '--models', modelsDir, '--name', b.pool, '--run-dir', b.runDir,
                  '--memory', memory, '--log-level', 'warn', '--huge-tmpfs', 'no',
                  '--remove-on-exit', ...args];
    if (SETPRIV) argv.unshift(SETPRIV, '--pdeathsig', 'SIGTERM');
    b.proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
    b.exited = new Promise((resolve) => b.proc.on('exit', (code, sig) => resolve({ code, sig })));
    const line = await firstLine(b.proc.stdout, START_TIMEOUT_MS);
    b.proc.stdout.resume();
    if (!line.startsWith('modelpoold: ready')) {
      await b.stop();
      throw new Error(`modelpoold did not start: ${line}`);
    }
    return b;
  }

  get socket() { return path.join(this.runDir, `${this.pool}.sock`); }
  get adminSocket() { return path.join(this.runDir, `${this.pool}.admin.sock`); }
  get segmentPath() { return `/dev/shm/${this.pool}`; }

  // One admin request; resolves with the reply object.
  admin(op, fields = {}, timeoutMs = 10_000) {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(this.adminSocket);
      const chunks = [];
      const timer = setTimeout(() => { s.destroy(); reject(new Error(`admin ${op}: timeout`)); },
                               timeoutMs);
      s.on('connect', () => {
        const body = Buffer.from(JSON.stringify({ op, ...fields }));
        const head = Buffer.alloc(4);
        head.writeUInt32LE(body.length);
        s.write(Buffer.concat([head, body]));
      });
      s.on('data', (c) => {
        chunks.push(c);
        const all = Buffer.concat(chunks);
        if (all.length >= 4 && all.length >= 4 + all.readUInt32LE(0)) {
          clearTimeout(timer);
          s.end();
          resolve(JSON.parse(all.subarray(4, 4 + all.readUInt32LE(0)).toString()));
        }
      });
      s.on('error', (e) => { clearTimeout(timer); reject(e); });
    });
  }

  // The broker's reference count of `name`; null when it is not resident.
  async refs(name) {
    const reply = await this.admin('list');
    const row = reply.models.find((m) => m.name === name);
    return row ? row.refs : null;
  }

  // SIGTERM (SIGKILL with `kill`), then waits; `keep`: leave the segment and
  // run dir for a restarted broker.
  async stop({ kill = false, keep = false } = {}) {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill(kill ? 'SIGKILL' : 'SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 30_000);
      await this.exited;
      clearTimeout(t);
    }
    if (!keep) {
      fs.rmSync(this.segmentPath, { force: true });
      fs.rmSync(this.runDir, { recursive: true, force: true });
    }
  }
}

// Polls `check` (async, returns truthy when done) up to `tries` times and
// `ms` in all, `stepMs` apart; returns its last value.
async function poll(check, { tries = 100, ms = 20_000, stepMs = 20 } = {}) {
  const deadline = Date.now() + ms;
  let v;
  for (let i = 0; i < tries && Date.now() < deadline; i++) {
    v = await check();
    if (v) return v;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return v;
}

module.exports = { Broker, poll };
