// File: clientlib/node/lib/index.js
//
// The package `modelpool`: Client, Model and ModelpoolError over the addon
// (src/). index.d.ts declares the same surface with its contracts; README.md
// explains view lifetime and why writes crash.
//
// What waits runs off the event loop: Client.connect() and acquire() return
// Promises, settled from the addon's own thread. Everything on Model is
// synchronous and cheap (no system call but the release's send).
'use strict';

const native = require('./addon');
const { ModelpoolError } = require('./errors');
const { makeTensor } = require('./tensor');

const kCreate = Symbol('modelpool.create');  // keeps the constructors private
// The longest typed array this Node makes (4 GiB on Node 20).
const MAX_VIEW_BYTES = require('node:buffer').constants.MAX_LENGTH;

function checkOptions(options, allowed, what) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') throw new TypeError(`${what} options must be an object`);
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) throw new TypeError(`unknown ${what} option '${key}'`);
  }
  return options;
}

class Model {
  #native;
  #buffer = null;   // the ArrayBuffer of bytes(), made on first use
  #bytesFile;       // the index in files() of the file bytes() views; -1: none
  #files = null;    // files(), frozen, made on first use
  #buffers = new Map();  // file index -> the ArrayBuffer over that file, made on first use
  #index = null;    // Map name -> tensor info, in file order

  constructor(token, nativeModel) {
    if (token !== kCreate) throw new TypeError('Models come from Client.acquire()');
    this.#native = nativeModel;
    const info = nativeModel.info();
    this.name = info.name;
    this.size = info.size;
    this.generation = info.generation;
    this.checksum = info.checksum;
    this.cached = info.cached;
    this.format = info.format;
    this.commit = info.commit;
    this.#bytesFile = info.bytesFile;
    Object.freeze(this);
  }

  #open() {
    if (this.#native.released) {
      throw new ModelpoolError(`model '${this.name}' was released`, 'stale_handle');
    }
    return this.#native;
  }

  #arrayBuffer() {
    const n = this.#open();
    if (this.#buffer === null) this.#buffer = n.buffer();
    return this.#buffer;
  }

  // The one ArrayBuffer over files()[i]; bytes()'s for the file bytes() views.
  #fileBuffer(i) {
    if (i === this.#bytesFile) return this.#arrayBuffer();
    const n = this.#open();
    let b = this.#buffers.get(i);
    if (b === undefined) {
      b = n.fileBuffer(i);
      this.#buffers.set(i, b);
    }
    return b;
  }

  #tensorIndex() {
    const n = this.#open();
    if (this.#index === null) {
      this.#index = new Map(n.tensorInfos().map((t) => [t.name, t]));
    }
    return this.#index;
  }

  bytes() {
    if (this.size > MAX_VIEW_BYTES) {
      throw new ModelpoolError(`model '${this.name}' has ${this.size} bytes, more than one ` +
                               `typed array can view here (${MAX_VIEW_BYTES}); use tensor()`,
                               'not_supported');
    }
    return new Uint8Array(this.#arrayBuffer());
  }

  tensorNames() {
    return [...this.#tensorIndex().keys()];
  }

  tensor(name) {
    if (typeof name !== 'string') throw new TypeError('tensor name must be a string');
    const info = this.#tensorIndex().get(name);
    if (info === undefined) {
      throw new ModelpoolError(`model '${this.name}' has no tensor '${name}'`, 'not_found');
    }
    const n = this.#native;
    const file = info.file;
    return makeTensor(info, this.files()[file].format, this.#fileBuffer(file),
                      (o, len) => n.slice(file, o, len));
  }

  metadata() {
    return JSON.parse(this.#open().metadataJson());
  }

  files() {
    const n = this.#open();
    if (this.#files === null) this.#files = Object.freeze(n.files().map((f) => Object.freeze(f)));
    return this.#files;
  }

  file(name) {
    if (typeof name !== 'string') throw new TypeError('file name must be a string');
    const files = this.files();
    const i = files.findIndex((f) => f.name === name);
    if (i < 0) throw new ModelpoolError(`model '${this.name}' has no file '${name}'`, 'not_found');
    if (files[i].size > MAX_VIEW_BYTES) {
      throw new ModelpoolError(`file '${name}' of model '${this.name}' has ${files[i].size} ` +
                               `bytes, more than one typed array can view here ` +
                               `(${MAX_VIEW_BYTES}); use tensor()`, 'not_supported');
    }
    return new Uint8Array(this.#fileBuffer(i));
  }

  release() {
    this.#buffer = null;
    this.#buffers.clear();
    this.#files = null;
    this.#index = null;
    this.#native.release();
  }

  // The broker's handle (a reconnect after a broker restart replaces it); 0 after release().
  get handle() {
    return this.#native.handle;
  }

  get released() {
    return this.#native.released;
  }

  // True while the broker reference is held: by this Model, or after
  // release() by a view that the garbage collector has not collected yet.
  get held() {
    return this.#native.held;
  }
}
if (typeof Symbol.dispose === 'symbol') {
  Model.prototype[Symbol.dispose] = function dispose() { this.release(); };
}

class Client {
  #native;

  constructor(token, nativeClient) {
    if (token !== kCreate) throw new TypeError('use Client.connect()');
    this.#native = nativeClient;
    Object.freeze(this);
  }

  static async connect(options) {
    const o = checkOptions(options, ['socket', 'reconnectTimeoutMs', 'releaseRing'], 'connect');
    if (o.socket !== undefined && typeof o.socket !== 'string') {
      throw new TypeError('socket must be a string');
    }
    const n = await native.connect(o.socket, o.reconnectTimeoutMs, o.releaseRing);
    return new Client(kCreate, n);
  }

  async acquire(name, options) {
    if (typeof name !== 'string') throw new TypeError('model name must be a string');
    const o = checkOptions(options, ['waitMs', 'populate'], 'acquire');
    const n = await this.#native.acquire(name, o.waitMs, Boolean(o.populate));
    return new Model(kCreate, n);
  }

  close() {
    this.#native.close();
  }

  get pool() { return this.#native.pool; }
  get segmentPath() { return this.#native.segmentPath; }
  get pageSize() { return this.#native.pageSize; }
}

const errorCodes = Object.freeze([...native.errorCodes, 'not_supported']);

module.exports = { Client, Model, ModelpoolError, errorCodes, version: native.version };
