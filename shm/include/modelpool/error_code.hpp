// File: modelpool/error_code.hpp
//
// The error codes of wire protocol v1, shared by the broker, the client
// library and every binding. Each code has one snake_case spelling on the
// wire (see docs/protocol.md); `to_string` and `error_code_from_string`
// convert between the two. Thread-safe: pure functions over constant tables.
#ifndef MODELPOOL_ERROR_CODE_HPP_
#define MODELPOOL_ERROR_CODE_HPP_

#include <optional>
#include <string_view>

namespace modelpool {

enum class ErrorCode : int {
  kOk = 0,
  kBadRequest,    // malformed frame, not JSON, wrong field types
  kUnknownOp,     // "op" names no operation on this socket
  kInvalidName,   // model name is empty, absolute, has "..", or is too long
  kNotFound,      // no such model file, handle or tensor
  kTooLarge,      // the model can never fit the budget
  kPoolFull,      // no room now: everything evictable is referenced/pinned
  kLoadFailed,    // reading or validating the file failed
  kForbidden,     // the name escapes the models root, or admin op on worker socket
  kStaleHandle,   // the handle was released already or never existed
  kShuttingDown,  // the broker is stopping
  kUnavailable,   // (client side) the broker cannot be reached
  kProtocol,      // (client side) the broker's reply did not follow the protocol
  kInternal,      // a bug or an unexpected system error; the broker lives on
};

// The wire spelling of `code`, e.g. "pool_full". Never empty.
std::string_view to_string(ErrorCode code) noexcept;

// The code spelled `text`, or nullopt when `text` is no known code.
std::optional<ErrorCode> error_code_from_string(std::string_view text) noexcept;

}  // namespace modelpool

#endif  // MODELPOOL_ERROR_CODE_HPP_
