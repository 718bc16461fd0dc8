// File: tests/format/format_test_util.cc
//
// The assertions shared by the format tests.
#include "tests/format/format_test_util.hpp"

namespace modelpool::format::testing {

::testing::AssertionResult index_is_sane(const TensorIndex& index, std::uint64_t file_size) {
  std::uint64_t prev_offset = 0;
  std::uint64_t reach = 0;
  for (const TensorInfo& t : index.tensors) {
    if (t.offset > file_size || t.size > file_size - t.offset) {
      return ::testing::AssertionFailure() << t.name << " leaves the file";
    }
    if (t.offset < prev_offset) return ::testing::AssertionFailure() << t.name << " out of order";
    if (t.size > 0 && t.offset < reach) {
      return ::testing::AssertionFailure() << t.name << " overlaps its predecessor";
    }
    for (std::int64_t d : t.shape) {
      if (d < 0) return ::testing::AssertionFailure() << t.name << " has a negative dimension";
    }
    prev_offset = t.offset;
    if (t.size > 0) reach = t.offset + t.size;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult fails_with(const Result<TensorIndex>& r, std::string_view reason) {
  if (r.ok()) return ::testing::AssertionFailure() << "parsed fine, expected: " << reason;
  if (r.status().code() != ErrorCode::kLoadFailed) {
    return ::testing::AssertionFailure() << "wrong code: " << r.status().to_string();
  }
  const std::string& msg = r.status().message();
  for (char c : msg) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return ::testing::AssertionFailure() << "message is not printable ASCII: " << msg;
    }
  }
  if (msg.find(reason) == std::string::npos) {
    return ::testing::AssertionFailure() << "message \"" << msg << "\" lacks \"" << reason << "\"";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace modelpool::format::testing
