// File: shm/status.hpp
//
// Status and Result<T>: how errors travel inside the broker and the client
// library without exceptions crossing module boundaries (after abseil's
// Status/StatusOr). A Status is a protocol ErrorCode plus a human message;
// Result<T> holds either a T or a non-ok Status. Value types, not thread-safe
// beyond that.
#ifndef MODELPOOL_SHM_STATUS_HPP_
#define MODELPOOL_SHM_STATUS_HPP_

#include <cassert>
#include <string>
#include <utility>
#include <variant>

#include "modelpool/error_code.hpp"

namespace modelpool {

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return {}; }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "pool_full: no room for 3.0 GiB ..." for logs.
  std::string to_string() const {
    return std::string(modelpool::to_string(code_)) + ": " + message_;
  }

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value)
      : v_(std::move(value)) {
  }  // NOLINT(google-explicit-constructor): returned by value like StatusOr
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor): same
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

inline Status error(ErrorCode code, std::string message) { return {code, std::move(message)}; }

}  // namespace modelpool

#endif  // MODELPOOL_SHM_STATUS_HPP_
