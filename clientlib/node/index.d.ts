// File: clientlib/node/index.d.ts
//
// TypeScript declarations of the package `modelpool` (lib/index.js).

/** The protocol's error codes (docs/protocol.md), plus `not_supported`. */
export type ErrorCode =
  | 'bad_request' | 'unknown_op' | 'invalid_name' | 'not_found' | 'too_large'
  | 'pool_full' | 'load_failed' | 'forbidden' | 'stale_handle' | 'shutting_down'
  | 'unavailable'     // the broker cannot be reached (client side)
  | 'protocol_error'  // the broker's reply broke the protocol (client side)
  | 'internal'
  | 'not_supported';  // this build of the binding cannot do it

/** Every error the package reports. `message` is the broker's or the library's text. */
export class ModelpoolError extends Error {
  constructor(message: string, code: ErrorCode);
  readonly name: 'ModelpoolError';
  code: ErrorCode;
}

/** Every code a ModelpoolError can carry. */
export const errorCodes: readonly ErrorCode[];
/** The version of the binding. */
export const version: string;

export interface ConnectOptions {
  /** The broker's worker socket. Default: $MODELPOOL_SOCKET, else
   *  RUN_DIR/modelpool.sock (RUN_DIR: $MODELPOOL_RUN_DIR, else
   *  $XDG_RUNTIME_DIR/modelpool, else /tmp/modelpool-$UID). */
  socket?: string;
  /** How long acquire() keeps trying to reach a broker that restarted
   *  (default $MODELPOOL_RECONNECT_TIMEOUT_MS as it is at connect(), else
   *  10000; 0: one attempt). */
  reconnectTimeoutMs?: number;
  /** Hand releases to the broker through a shared page when it offers one (default true). */
  releaseRing?: boolean;
}

export interface AcquireOptions {
  /** How long the broker may wait for room when the pool is full (default: the broker's). */
  waitMs?: number;
  /** Fault every page in before the Promise resolves. */
  populate?: boolean;
}

export type TensorData =
  | Float64Array | Float32Array | BigInt64Array | BigUint64Array | Int32Array | Uint32Array
  | Int16Array | Uint16Array | Int8Array | Uint8Array;

/** A tensor: frozen, `data` a view of the pool (no copy). `data` is a typed
 *  array of the dtype's class, or a Uint8Array of raw bytes where JavaScript
 *  has none (F16, BF16, F8_*, BOOL, C64, GGUF quantised blocks). Writing to
 *  `data` kills the process (SIGSEGV): the pages are read-only. */
export interface Tensor {
  readonly name: string;
  /** As the file spells it: 'F32', 'BF16', 'Q4_K', ... */
  readonly dtype: string;
  /** Row-major (GGUF's innermost-first order reversed). */
  readonly shape: readonly number[];
  readonly data: TensorData;
}

/** A file of a model (frozen). */
export interface ModelFile {
  /** As the model names it: 'model-00001-of-00002.safetensors', 'config.json'; for a
   *  model of one file, the model's name. */
  readonly name: string;
  readonly size: number;
  readonly format: 'raw' | 'safetensors' | 'gguf';
  /** Its tensors are the model's (a shard or a GGUF part); false for config.json and the like. */
  readonly weights: boolean;
}

/** A model acquired from the pool: one file, or several (a repository
 *  directory, an hf: snapshot, a GGUF split set) held as one. Views (bytes(),
 *  tensor().data, file()) stay valid while any value refers to them, even
 *  after release(): the broker reference is then held until the garbage
 *  collector has collected the last view. */
export class Model {
  private constructor();
  readonly name: string;
  /** Bytes of bytes(): for a model of several files, its first weights file's. */
  readonly size: number;
  readonly generation: number;
  /** xxh3-64 of the bytes as 16 hex digits, computed by the broker. */
  readonly checksum: string;
  /** The broker's handle (a broker restart gives it a new one); 0 after release(). */
  readonly handle: number;
  /** True when the broker needed no load. */
  readonly cached: boolean;
  readonly format: 'raw' | 'safetensors' | 'gguf';
  /** The commit an hf: name resolved to (40 hex digits); '' for other names. */
  readonly commit: string;
  /** release() was called. */
  readonly released: boolean;
  /** The broker reference is held: by the Model, or by views not yet collected. */
  readonly held: boolean;

  /** The model's bytes, a read-only view of the pool; for a model of several
   *  files, its first weights file's (see file()). Throws stale_handle after
   *  release(), not_supported for a model larger than one typed array may be
   *  (buffer.constants.MAX_LENGTH: 4 GiB on Node 20; tensor() still works). */
  bytes(): Uint8Array;
  /** Tensor names in file order (empty for raw models); for a model of
   *  several files, those of each weights file in turn, in files() order.
   *  Throws load_failed if a file's index is invalid, stale_handle after
   *  release(). */
  tensorNames(): string[];
  /** The tensor `name`; not_found if there is none. */
  tensor(name: string): Tensor;
  /** safetensors __metadata__ / GGUF key-values. */
  metadata(): Record<string, unknown>;
  /** The files of the model, frozen: one, named as the model, for a model of
   *  one file; else the weights files first, in index order (the order of
   *  first appearance in model.safetensors.index.json, or the split set's
   *  part order), then the small files (config.json, tokenizer.json, ...)
   *  sorted by name. Throws stale_handle after release(). */
  files(): readonly ModelFile[];
  /** The bytes of the file `name` (as files() names it), a read-only view of
   *  the pool (no copy) with the lifetime of bytes(). Throws not_found if the
   *  model has no such file, stale_handle after release(), not_supported for
   *  a file larger than one typed array may be. */
  file(name: string): Uint8Array;
  /** Gives the broker reference back now, or when the last view is
   *  collected. Idempotent. Also done on garbage collection of the Model
   *  and when the process exits. */
  release(): void;
}

/** A connection to a broker's worker socket. Usable from any number of
 *  concurrent async callers (requests are serialized); one per thread in
 *  worker_threads. Reconnects across a broker restart on the next acquire(). */
export class Client {
  private constructor();
  /** Throws unavailable when no broker answers, forbidden when the broker
   *  or its segment belongs to an unexpected user, protocol_error. */
  static connect(options?: ConnectOptions): Promise<Client>;
  /** Acquires `model`, loading it if needed, without blocking the event
   *  loop. Rejects with not_found, invalid_name, forbidden, too_large,
   *  pool_full, load_failed, shutting_down or unavailable. */
  acquire(model: string, options?: AcquireOptions): Promise<Model>;
  /** Drops the connection; Models acquired from it stay valid. */
  close(): void;
  readonly pool: string;
  readonly segmentPath: string;
  /** Page size of the segment's filesystem. */
  readonly pageSize: number;
}
