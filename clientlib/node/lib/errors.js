// File: clientlib/node/lib/errors.js
//
// ModelpoolError, the one error class of the binding: `code` is the
// protocol's spelling of what went wrong (docs/protocol.md), the same codes
// as the C++ client's ErrorCode and the Python binding's exceptions, plus
// `not_supported` for what this build of the binding cannot do.
'use strict';

class ModelpoolError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}
Object.defineProperty(ModelpoolError.prototype, 'name', {
  value: 'ModelpoolError',
  writable: true,
  configurable: true,
});

module.exports = { ModelpoolError };
