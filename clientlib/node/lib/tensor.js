// File: clientlib/node/lib/tensor.js
//
// A tensor as JavaScript sees it: { name, dtype, shape, data }, where data
// is a typed array over the pool's bytes (no copy) of the class that matches
// the dtype, or a Uint8Array of the raw bytes where JavaScript has none
// (F16, BF16, FP8, BOOL, complex, GGUF's quantised blocks). shape is in
// row-major order: as the file says for safetensors, reversed from GGUF's
// innermost-first order. The object and its shape are frozen; data cannot
// be (V8 refuses to freeze a non-empty typed array): a store into it hits a
// read-only page and kills the process with SIGSEGV (see README.md).
'use strict';

// safetensors and GGUF spell these dtypes alike; both formats and every
// host we build for are little-endian, like JavaScript's typed arrays there.
const TYPED = {
  F64: Float64Array, F32: Float32Array,
  I64: BigInt64Array, U64: BigUint64Array,
  I32: Int32Array, U32: Uint32Array,
  I16: Int16Array, U16: Uint16Array,
  I8: Int8Array, U8: Uint8Array,
};

function typedClass(dtype, nbytes) {
  const T = TYPED[dtype];
  return T && nbytes % T.BYTES_PER_ELEMENT === 0 ? T : Uint8Array;
}

// info: {name, dtype, shape, file, offset, nbytes} from
// NativeModel.tensorInfos(), offset into the model's file `file`.
// format: that file's. buffer: the ArrayBuffer over that file;
// slice(offset, nbytes): an ArrayBuffer over just those bytes of it, for a
// tensor whose offset is not a multiple of its element size (typed arrays
// need an aligned offset).
function makeTensor(info, format, buffer, slice) {
  const T = typedClass(info.dtype, info.nbytes);
  const n = info.nbytes / T.BYTES_PER_ELEMENT;
  const data = info.offset % T.BYTES_PER_ELEMENT === 0
    ? new T(buffer, info.offset, n)
    : new T(slice(info.offset, info.nbytes), 0, n);
  const dims = format === 'gguf' ? [...info.shape].reverse() : [...info.shape];
  return Object.freeze({ name: info.name, dtype: info.dtype, shape: Object.freeze(dims), data });
}

module.exports = { makeTensor, typedClass };
