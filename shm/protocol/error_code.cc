// File: shm/protocol/error_code.cc
//
// The one table that spells protocol error codes on the wire.
#include "modelpool/error_code.hpp"

#include <array>
#include <utility>

namespace modelpool {
namespace {

constexpr std::array<std::pair<ErrorCode, std::string_view>, 14> kNames{{
    {ErrorCode::kOk, "ok"},
    {ErrorCode::kBadRequest, "bad_request"},
    {ErrorCode::kUnknownOp, "unknown_op"},
    {ErrorCode::kInvalidName, "invalid_name"},
    {ErrorCode::kNotFound, "not_found"},
    {ErrorCode::kTooLarge, "too_large"},
    {ErrorCode::kPoolFull, "pool_full"},
    {ErrorCode::kLoadFailed, "load_failed"},
    {ErrorCode::kForbidden, "forbidden"},
    {ErrorCode::kStaleHandle, "stale_handle"},
    {ErrorCode::kShuttingDown, "shutting_down"},
    {ErrorCode::kUnavailable, "unavailable"},
    {ErrorCode::kProtocol, "protocol_error"},
    {ErrorCode::kInternal, "internal"},
}};

}  // namespace

std::string_view to_string(ErrorCode code) noexcept {
  for (const auto& [c, name] : kNames) {
    if (c == code) return name;
  }
  return "internal";
}

std::optional<ErrorCode> error_code_from_string(std::string_view text) noexcept {
  for (const auto& [c, name] : kNames) {
    if (name == text) return c;
  }
  return std::nullopt;
}

}  // namespace modelpool
